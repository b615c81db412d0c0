//! Shared helpers for the journal's integration tests.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use journal::{Durability, Reader, RecoveryMode, WriterOptions};
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub use test_support::TempDir;

pub const HASH: [u8; 32] = [0x5a; 32];

pub fn opts(segment_size: u64) -> WriterOptions {
    WriterOptions {
        segment_size,
        durability: Durability::None,
        header_hash: HASH,
        created_ns: 1_700_000_000_000_000_000,
    }
}

/// An owned copy of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub kind: u16,
    pub flags: u16,
    pub seq: u64,
    pub timestamp_ns: i64,
    pub payload: Vec<u8>,
}

/// Reads every record; `Err` is the first error (the records before it are dropped).
pub fn read_all(dir: &Path, mode: RecoveryMode) -> Result<Vec<Owned>, journal::JournalError> {
    let r = Reader::open(dir, mode)?;
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec?;
        out.push(Owned {
            kind: rec.kind,
            flags: rec.flags,
            seq: rec.seq,
            timestamp_ns: rec.timestamp_ns,
            payload: rec.payload.to_vec(),
        });
    }
    Ok(out)
}

/// Reads records until the first error, returning both.
pub fn read_until_error(
    dir: &Path,
    mode: RecoveryMode,
) -> (Vec<Owned>, Option<journal::JournalError>) {
    let r = match Reader::open(dir, mode) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    for rec in r.records() {
        match rec {
            Ok(rec) => out.push(Owned {
                kind: rec.kind,
                flags: rec.flags,
                seq: rec.seq,
                timestamp_ns: rec.timestamp_ns,
                payload: rec.payload.to_vec(),
            }),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Copies the journal files of `from` into the (empty) directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("seg-{segment:08}.rmj"))
}

/// A deterministic payload for record `i`.
pub fn payload(i: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (i as usize * 31 + j * 7) as u8 | 1)
        .collect()
}
