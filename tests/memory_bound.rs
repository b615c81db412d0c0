//! Issue 11: a backtest's memory is bounded by its input, not by the simulated time it spans.
//! The USD-M sample's first 3,000 lines, then the same with 60 trades an hour (less a minute)
//! apart: 59 simulated hours of timer ticks, per-second latency intervals and plot samples.
//! Their peak resident memory must be about the same (before: a 220 KB histogram per simulated
//! second and a plot point every 250 ms were all kept — gigabytes for a day).
//!
//! One test in its own binary: it reads this process's peak resident set (`VmHWM`).

use runtime::backtest::{self, QueueKind, Settings};
use runtime::host::NoRecorder;
use std::io::Write;
use test_support::TempDir;

fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn fifty_nine_quiet_hours_need_no_more_memory_than_thirteen_seconds() {
    let dir = TempDir::new("memory-bound");
    let text = test_support::recording_text(&test_support::usdm());
    let lines: Vec<&str> = text.lines().take(3_000).collect();
    let last_t: i64 = lines[lines.len() - 1]
        .split_once(' ')
        .unwrap()
        .0
        .parse()
        .unwrap();
    let trade = lines
        .iter()
        .find(|l| l.contains("@trade"))
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1;
    let short = dir.join("short.txt");
    std::fs::write(&short, lines.join("\n") + "\n").unwrap();
    let long = dir.join("long.txt");
    let mut f = std::fs::File::create(&long).unwrap();
    writeln!(f, "{}", lines.join("\n")).unwrap();
    for k in 1..=60i64 {
        writeln!(f, "{} {trade}", last_t + k * 59 * 60 * 1_000_000_000).unwrap();
    }
    drop(f);
    let cfg = test_support::default_config();
    let run = |data: std::path::PathBuf, log: &str| {
        let s = Settings {
            data: vec![data.into()],
            queue: QueueKind::RiskAverse,
            entry_latency_ns: 2_000_000,
            response_latency_ns: 2_000_000,
            timer_interval_ns: 100_000_000,
            latency_log: Some(dir.join(log)),
            event_cache: None,
        };
        backtest::run(&cfg, &s, NoRecorder, &mut |_| {}).unwrap().0
    };
    let a = run(short, "short.hlog");
    let after_short = peak_kb();
    let b = run(long, "long.hlog");
    let after_long = peak_kb();
    assert!(b.events > a.events * 50, "{} vs {}", b.events, a.events);
    assert!(b.intervals > 200_000, "{}", b.intervals);
    let growth_mb = after_long.saturating_sub(after_short) / 1024;
    assert!(
        growth_mb < 16,
        "peak grew by {growth_mb} MB over 59 simulated hours ({after_short} -> {after_long} kB)"
    );
}
