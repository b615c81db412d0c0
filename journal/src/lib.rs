//! The ringmaker journal — not built yet.
//!
//! This crate will hold the mmap'd, append-only journal of every event the engine consumes and
//! every intent it emits, its on-disk format (`journal/FORMAT.md`), the writer, the verifying
//! reader and recovery modes. See `docs/ARCHITECTURE.md`. It deliberately exports nothing until
//! those pieces exist.
