//! See `ucgate_fuzz_targets::forwarded` (the body, replayed on stable by its tests).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ucgate_fuzz_targets::forwarded::run(data));
