//! The checks behind the cargo-fuzz targets in `feeds/fuzz/`, as a library: the fuzz targets
//! call them on nightly with libFuzzer, and `tests/corpus.rs` calls them on the stable
//! toolchain (CI has no nightly) with the committed regression inputs, seeds cut from the real
//! recordings, and random and mutated inputs from proptest. One module per target; each
//! `fuzz(data)` must never panic.

#![allow(missing_docs)]

pub mod book_sync;
pub mod decimal;
pub mod decode_any;
pub mod recording_line;
pub mod ws_frame;
