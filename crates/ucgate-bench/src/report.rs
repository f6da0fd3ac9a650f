//! Summaries: one JSON line on stdout, a human summary on stderr.
