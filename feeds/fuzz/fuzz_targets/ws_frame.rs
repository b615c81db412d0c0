//! cargo-fuzz entry point; the checks live in `ringmaker-fuzz-checks` (`feeds/fuzz/checks/src/ws_frame.rs`),
//! where the stable test suite runs them too (corpus regressions and random inputs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringmaker_fuzz_checks::ws_frame::fuzz(data));
