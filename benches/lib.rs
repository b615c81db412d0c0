//! Shared helpers for the benches: where the sample data lives.

use std::path::PathBuf;

/// `tests/data/<rel>` from the workspace root.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}
