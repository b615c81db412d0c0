//! Shared helpers for the integration tests.

use std::path::PathBuf;

/// `tests/data/<rel>`.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data").join(rel)
}

/// The shipped USDⓈ-M BTCUSDT recording.
pub fn usdm() -> PathBuf {
    data("binance-usdm/btcusdt_20240808.gz")
}

/// The two shipped spot BTCUSDT recordings, in arrival order.
pub fn spot() -> [PathBuf; 2] {
    [
        data("binance-spot/btcusdt_20240808.gz"),
        data("binance-spot/btcusdt_20240809.gz"),
    ]
}

/// A unique scratch directory under the target dir's temp area.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringmaker-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}
