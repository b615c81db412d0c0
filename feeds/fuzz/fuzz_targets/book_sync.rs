//! cargo-fuzz entry point; the checks live in `ringmaker-fuzz-checks` (`feeds/fuzz/checks/src/book_sync.rs`),
//! where the stable test suite runs them too (corpus regressions and random inputs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringmaker_fuzz_checks::book_sync::fuzz(data));
