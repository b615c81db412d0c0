//! Helpers shared by the workspace's tests: a counting global allocator to prove that hot
//! paths allocate nothing ([`alloc`]), self-removing temp dirs ([`TempDir`]), the default engine
//! config ([`default_config`]), the shipped recordings ([`data`], [`usdm`], [`spot`]) and a real
//! NATS server ([`nats`]).
//!
//! A global allocator is per binary, so each allocation test declares its own
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;` (see [`alloc`]).

#![deny(missing_docs)]

pub mod alloc;
mod fs;
pub mod nats;

pub use fs::{isolated_cache_home, TempDir};

use std::path::PathBuf;

/// `tests/data/<rel>`.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(rel)
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

/// The two shipped COIN-M BTCUSD_PERP recordings, in arrival order.
pub fn coinm() -> [PathBuf; 2] {
    [
        data("binance-coinm/btcusd_perp_20240808.gz"),
        data("binance-coinm/btcusd_perp_20240809.gz"),
    ]
}

/// The text of `configs/<name>`.
pub fn config_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `configs/default.toml`, the engine config the README's commands use.
pub fn default_config() -> engine::Config {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/default.toml"
    ))
    .expect("configs/default.toml");
    engine::Config::from_toml(&text).expect("default config is valid")
}

/// A recording's text, decompressed (gzip members in sequence), for tests that edit a copy.
pub fn recording_text(path: &std::path::Path) -> String {
    use std::io::Read;
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("decompressing {}: {e}", path.display()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_are_found() {
        assert!(usdm().is_file(), "{}", usdm().display());
        for p in spot() {
            assert!(p.is_file(), "{}", p.display());
        }
        assert!(!default_config().instruments.is_empty());
    }
}
