//! The ringmaker journal: an append-only, mmap'd, CRC-checked log of every event the engine
//! consumes and every intent it emits. It knows bytes and record kinds, nothing of the engine.
//! The on-disk format is specified in `journal/FORMAT.md`.
//!
//! ```text
//! Writer::create(dir, WriterOptions { segment_size, durability, header_hash, created_ns })
//! Writer::open_append(dir, WriterOptions)              // recover (torn tail zeroed), continue
//! writer.append(kind: u16, timestamp_ns: i64, payload: &[u8]) -> Result<u64 /* seq */>
//! writer.append_with_flags(kind, flags: u16, timestamp_ns, payload) -> Result<u64>
//! writer.housekeeping() -> Result<()>    // off the hot path: next segment, msync, unmap
//! writer.flush() / writer.close()        // msync(MS_SYNC)
//!
//! Reader::open(dir, RecoveryMode::{Strict, TolerateTornTail}) -> Result<Reader>
//! reader.records() -> impl Iterator<Item = Result<Record<'_>>>   // CRC + sequence checked
//! reader.torn_tail() -> Result<Option<TornTail>>
//! reader.truncate_torn_tail() -> Result<Option<TornTail>>
//!
//! verify(dir) -> Result<VerifySummary>   // for `ringmaker journal verify` / `stats`
//! ```
//!
//! The append hot path is a memcpy and a CRC32C into a preallocated mapped segment: no syscall,
//! no allocation (`tests/alloc.rs` proves the latter). Everything that needs the kernel —
//! preallocating the next segment with `posix_fallocate`, msync, unmapping a finished segment —
//! happens in [`Writer::housekeeping`], which the owner calls when it is idle.
//!
//! ```
//! use journal::{Durability, Reader, RecoveryMode, Writer, WriterOptions};
//! let dir = std::env::temp_dir().join(format!("rmj-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let opts = WriterOptions {
//!     segment_size: 1 << 16,
//!     durability: Durability::None,
//!     header_hash: [0; 32],
//!     created_ns: 0,
//! };
//! let mut w = Writer::create(&dir, opts)?;
//! assert_eq!(w.append(7, 1_000, b"event")?, 1);
//! w.close()?;
//! let r = Reader::open(&dir, RecoveryMode::Strict)?;
//! let rec = r.records().next().unwrap()?;
//! assert_eq!((rec.kind, rec.seq, rec.payload), (7, 1, &b"event"[..]));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), journal::JournalError>(())
//! ```
#![deny(missing_docs)]

mod error;
mod format;
mod reader;
mod segment;
mod sys;
mod tail;
#[cfg(test)]
mod test_util;
mod verify;
mod writer;

pub use error::{CorruptionReason, JournalError};
pub use format::{
    max_payload, record_len, Record, SegmentHeader, FORMAT_VERSION, MAGIC, SEGMENT_HEADER_LEN,
};
pub use reader::{Reader, Records, RecoveryMode, TornTail};
pub use tail::{records_in, segment_path, whole_records, WholeRecords};
pub use verify::{verify, KindStats, VerifySummary};
pub use writer::{
    Durability, Writer, WriterOptions, PREFAULT_WINDOW, RESIDENT_BEHIND, WARM_WINDOW,
};
