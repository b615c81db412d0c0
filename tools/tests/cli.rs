//! The `ringmaker` binary as a user runs it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn ringmaker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(args)
        .output()
        .expect("run ringmaker")
}

fn summary_value(stderr: &str, key: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in summary:\n{stderr}"))
}

#[test]
fn book_prints_one_tsv_line_per_applied_diff() {
    let usdm = data("binance-usdm/btcusdt_20240808.gz");
    let out = ringmaker(&[
        "book",
        "--data",
        usdm.to_str().unwrap(),
        "--tick",
        "0.10",
        "--lot",
        "0.001",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6_547);
    assert_eq!(lines[0], "5123107853551\t61800.20\t2.909\t61800.30\t1.072");
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 5, "{l}");
        let (bid, ask): (f64, f64) = (f[1].parse().unwrap(), f[3].parse().unwrap());
        assert!(bid < ask, "crossed line {l}");
    }
    assert_eq!(summary_value(&stderr, "lines read"), 93_954);
    assert_eq!(summary_value(&stderr, "bad lines"), 0);
    assert_eq!(summary_value(&stderr, "diffs applied"), 6_547);
    assert_eq!(summary_value(&stderr, "gaps"), 0);
    assert_eq!(summary_value(&stderr, "resyncs"), 0);
    assert_eq!(summary_value(&stderr, "crossed books"), 0);
}

/// The USD-M recording as plain text, with the `nth` depth diff line removed and a garbage line
/// inserted after it.
fn damaged_copy(dir: &Path, nth_diff: usize) -> (PathBuf, u64) {
    let mut gz = Vec::new();
    std::fs::File::open(data("binance-usdm/btcusdt_20240808.gz"))
        .unwrap()
        .read_to_end(&mut gz)
        .unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let mut out = std::fs::File::create(dir.join("damaged.txt")).unwrap();
    let mut seen = 0;
    let mut removed_u = 0;
    for line in text.lines() {
        if line.contains("\"e\":\"depthUpdate\"") {
            seen += 1;
            if seen == nth_diff {
                let at = line.find("\"u\":").unwrap() + 4;
                removed_u = line[at..].split(',').next().unwrap().parse().unwrap();
                writeln!(
                    out,
                    "12345 {{\"stream\":\"btcusdt@depth@0ms\",\"data\":{{truncated"
                )
                .unwrap();
                continue;
            }
        }
        writeln!(out, "{line}").unwrap();
    }
    (dir.join("damaged.txt"), removed_u)
}

#[test]
fn a_missing_diff_is_one_gap_and_silences_the_book() {
    let dir = std::env::temp_dir().join(format!("ringmaker-cli-gap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (path, removed_u) = damaged_copy(&dir, 3_000);
    let out = ringmaker(&[
        "book",
        "--data",
        path.to_str().unwrap(),
        "--symbol",
        "BTCUSDT",
        "--tick",
        "0.10",
        "--lot",
        "0.001",
    ]);
    assert!(out.status.success(), "a gap is never fatal");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(summary_value(&stderr, "gaps"), 1);
    assert_eq!(summary_value(&stderr, "bad lines"), 1);
    assert!(
        stderr.contains("damaged.txt:"),
        "the bad line is named: {stderr}"
    );
    assert!(stderr.contains("INVALID"), "{stderr}");
    // Diffs 5..2999 were printed (2,995 of them); nothing after the gap.
    let ids: Vec<u64> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2_995);
    assert!(ids.iter().all(|&u| u < removed_u));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_and_missing_files_are_clear_errors() {
    let out = ringmaker(&[
        "book",
        "--data",
        "/nonexistent.gz",
        "--tick",
        "0.10",
        "--lot",
        "0.001",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot open recording /nonexistent.gz"),
        "{err}"
    );
    let usdm = data("binance-usdm/btcusdt_20240808.gz");
    let out = ringmaker(&[
        "book",
        "--data",
        usdm.to_str().unwrap(),
        "--tick",
        "0.1x",
        "--lot",
        "0.001",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid step size \"0.1x\""), "{err}");
}

#[test]
fn spot_files_in_sequence() {
    let a = data("binance-spot/btcusdt_20240808.gz");
    let b = data("binance-spot/btcusdt_20240809.gz");
    let out = ringmaker(&[
        "book",
        "--data",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--tick",
        "0.01",
        "--lot",
        "0.00000001",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("spot (U = previous u + 1)"), "{stderr}");
    assert_eq!(summary_value(&stderr, "gaps"), 0);
    assert_eq!(summary_value(&stderr, "crossed books"), 0);
    assert_eq!(summary_value(&stderr, "diffs applied"), 6_493);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        6_493
    );
}
