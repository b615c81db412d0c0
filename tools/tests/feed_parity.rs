//! `ringmaker book`, `ringmaker backtest` and `ringmaker run --paper` read market data through
//! the one feed handler: on the same recording they apply the same number of diffs with the same
//! gaps — on the USD-M sample, on the two-file spot sample (spot sync rule), and on a USD-M copy
//! with one diff missing (one gap, nothing applied after it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use test_support::TempDir;

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn ringmaker(args: &[String]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .env("XDG_CACHE_HOME", test_support::isolated_cache_home())
        .args(args)
        .output()
        .expect("run ringmaker");
    assert!(
        out.status.success(),
        "ringmaker {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// (diffs applied, gaps) as each command reports them.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Applied {
    diffs: u64,
    gaps: u64,
}

fn number_after(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
}

fn book(data: &[PathBuf], tick: &str, lot: &str) -> Applied {
    let mut args: Vec<String> = ["book", "--tick", tick, "--lot", lot, "--data"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(data.iter().map(|p| s(p)));
    let out = ringmaker(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    Applied {
        diffs: number_after(&err, "diffs applied"),
        gaps: number_after(&err, "gaps"),
    }
}

fn backtest(config: &Path, data: &[PathBuf], out: &Path) -> Applied {
    let mut args: Vec<String> = vec![
        "backtest".into(),
        "--quiet".into(),
        "--config".into(),
        s(config),
        "--out".into(),
        s(out),
        "--data".into(),
    ];
    args.extend(data.iter().map(|p| s(p)));
    ringmaker(&args);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("report is JSON");
    Applied {
        diffs: report["book"]["diffs_applied"]
            .as_u64()
            .expect("diffs_applied"),
        gaps: report["book"]["gaps"].as_u64().expect("gaps"),
    }
}

/// The summary's `book` line: "valid X% of the run, N diffs applied, G gaps, ...".
fn paper(config: &Path, data: &[PathBuf], out: &Path) -> Applied {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--paper".into(),
        "--speed".into(),
        "0".into(),
        "--status-secs".into(),
        "0".into(),
        "--config".into(),
        s(config),
        "--out".into(),
        s(out),
        "--data".into(),
    ];
    args.extend(data.iter().map(|p| s(p)));
    let o = ringmaker(&args);
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("book "))
        .unwrap_or_else(|| panic!("no book line in:\n{text}"));
    let field = |name: &str| -> u64 {
        line.split(',')
            .find_map(|part| part.trim().strip_suffix(name))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{name}` in {line}"))
    };
    Applied {
        diffs: field("diffs applied"),
        gaps: field("gaps"),
    }
}

fn all_three(config: &Path, data: &[PathBuf], tick: &str, lot: &str, tmp: &TempDir) -> Applied {
    let b = book(data, tick, lot);
    let t = backtest(config, data, &tmp.join("backtest"));
    let p = paper(config, data, &tmp.join("paper"));
    assert_eq!(b, t, "book vs backtest");
    assert_eq!(b, p, "book vs run --paper");
    b
}

#[test]
fn usdm_sample_book_backtest_and_paper_apply_the_same_diffs() {
    let tmp = TempDir::new("parity-usdm");
    let a = all_three(
        &root("configs/default.toml"),
        &[root("tests/data/binance-usdm/btcusdt_20240808.gz")],
        "0.10",
        "0.001",
        &tmp,
    );
    // tests/data/PROVENANCE.md: four diffs end before the snapshot, 6,547 are applied.
    assert_eq!(
        a,
        Applied {
            diffs: 6547,
            gaps: 0
        }
    );
}

#[test]
fn spot_sample_syncs_by_the_spot_rule_in_all_three() {
    let tmp = TempDir::new("parity-spot");
    let a = all_three(
        &root("configs/spot-btcusdt.toml"),
        &[
            root("tests/data/binance-spot/btcusdt_20240808.gz"),
            root("tests/data/binance-spot/btcusdt_20240809.gz"),
        ],
        "0.01",
        "0.00000001",
        &tmp,
    );
    assert_eq!(
        a,
        Applied {
            diffs: 6493,
            gaps: 0
        }
    );
}

#[test]
fn a_missing_diff_is_the_same_one_gap_in_all_three() {
    let tmp = TempDir::new("parity-gap");
    let text = test_support::recording_text(&test_support::usdm());
    let path = tmp.join("one-diff-missing.txt");
    let mut out = std::fs::File::create(&path).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        if line.contains("\"e\":\"depthUpdate\"") {
            seen += 1;
            if seen == 3_000 {
                continue;
            }
        }
        writeln!(out, "{line}").unwrap();
    }
    drop(out);
    let a = all_three(
        &root("configs/default.toml"),
        &[path],
        "0.10",
        "0.001",
        &tmp,
    );
    assert_eq!(a.gaps, 1);
    // Diffs 5..=2,999 of the file are applied (the first four end before the snapshot); the
    // recording holds no second snapshot, so nothing after the gap is.
    assert_eq!(a.diffs, 2_995);
}
