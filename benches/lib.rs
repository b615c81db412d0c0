//! Shared helpers for the benches: where the sample data lives, the instrument it is for, and
//! loading it into memory once (outside any timed loop).

use engine::Instrument;
use std::path::PathBuf;

/// The Binance USDⓈ-M BTCUSDT recording (93,954 messages, one REST snapshot).
pub const USDM_BTCUSDT: &str = "binance-usdm/btcusdt_20240808.gz";

/// `tests/data/<rel>` from the workspace root.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

/// BTCUSDT perpetual on USDⓈ-M: tick 0.10, lot 0.001, min qty 0.001, min notional 100 USDT.
pub fn btcusdt_usdm() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100")
        .expect("BTCUSDT futures instrument parameters are valid")
}

/// Reads a recording fully into memory as `(local_ns, payload)` pairs; panics (with the path) if
/// it cannot be opened or has malformed lines, since a bench over partial data would mislead.
pub fn load_recording(rel: &str) -> Vec<(i64, Vec<u8>)> {
    let path = data(rel);
    let (lines, bad) = feeds::recording::read_all(&[&path])
        .unwrap_or_else(|e| panic!("cannot read recording {}: {e}", path.display()));
    assert_eq!(bad, 0, "{} has {bad} malformed lines", path.display());
    assert!(!lines.is_empty(), "{} is empty", path.display());
    lines
}

/// `<workspace root>/<rel>`.
pub fn workspace(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// A latency histogram, ns: 1 ns to 60 s at 3 significant digits (fixed bounds: recording never
/// allocates).
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Prints a latency table's title and column heads (ns: count, p50, p90, p99, p99.9, max).
pub fn print_header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "(ns)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
}

/// Prints one row of a latency table (see [`print_header`]).
pub fn print_row(name: &str, h: &hdrhistogram::Histogram<u64>) {
    println!(
        "{name:<34} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}
