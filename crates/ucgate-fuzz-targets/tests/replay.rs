//! Replays every committed fuzz input on stable: each file in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through
//! the same body the fuzz target runs (`ucgate_fuzz_targets::TARGETS`).
//! A crash reproducer added to `fuzz/regressions/` fails this test until
//! the bug is fixed. See `docs/fuzzing.md`.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};
use ucgate_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    v.sort();
    v
}

/// Runs every file of `kind` (`corpus` or `regressions`); returns how many
/// ran and the ones that panicked.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failed = Vec::new();
    for (name, body) in TARGETS {
        for file in files(&fuzz_dir().join(kind).join(name)) {
            let data = fs::read(&file).expect("readable fuzz input");
            ran += 1;
            if panic::catch_unwind(|| body(&data)).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    (ran, failed)
}

#[test]
fn every_corpus_file_passes() {
    let (ran, failed) = replay("corpus");
    assert!(ran >= TARGETS.len(), "only {ran} corpus files found");
    assert!(failed.is_empty(), "corpus inputs that fail: {failed:#?}");
}

#[test]
fn every_crash_reproducer_passes() {
    let (_, failed) = replay("regressions");
    assert!(
        failed.is_empty(),
        "crash reproducers that fail: {failed:#?}"
    );
}

#[test]
fn every_target_has_a_fuzz_target_file_and_seeds() {
    let mut on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "fuzz/fuzz_targets/ and TARGETS differ");
    for name in &listed {
        assert!(
            !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "no seeds in fuzz/corpus/{name}"
        );
    }
}
