//! Helpers for the unit tests: a temporary directory removed on drop, default options.

use crate::{Durability, WriterOptions};
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("rmj-unit-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        TempDir(d)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn opts(segment_size: u64) -> WriterOptions {
    WriterOptions {
        segment_size,
        durability: Durability::None,
        header_hash: [0xab; 32],
        created_ns: 1_000,
    }
}
