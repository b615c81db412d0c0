//! `ringmaker run --paper --market live` end to end against `ringmaker venue` over TLS on
//! localhost: both real binaries, the shipped recording replayed by the venue at 10x.

use std::path::{Path, PathBuf};
use std::process::Output;
use test_support::TempDir;

mod common;
use common::{ringmaker, root, venue, VenueProc};

/// A 12 s (wall, = receive time) paper run on the venue's live streams; its output.
fn paper_live(v: &VenueProc, out: &Path, record: Option<&Path>) -> Output {
    paper_live_with(v, out, record, &root("configs/default.toml"), "12")
}

fn paper_live_with(
    v: &VenueProc,
    out: &Path,
    record: Option<&Path>,
    cfg: &Path,
    duration: &str,
) -> Output {
    let owned = v.run_args("--paper", out, cfg, duration);
    let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();
    if let Some(r) = record {
        args.extend(["--record", r.to_str().unwrap()]);
    }
    let o = ringmaker(&args);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `ringmaker book` rows (update id → the rest of the row) of `files`.
fn book_rows(files: &[PathBuf]) -> std::collections::BTreeMap<String, String> {
    let mut args = vec!["book", "--tick", "0.10", "--lot", "0.001", "--data"];
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    args.extend(names.iter().map(String::as_str));
    let o = ringmaker(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, rest)| (id.to_string(), rest.to_string()))
        .collect()
}

#[test]
fn a_live_paper_run_keeps_a_valid_book_records_what_arrived_and_replays_identically() {
    let dir = TempDir::new("live-paper");
    let v = venue(dir.path(), None);
    let out = dir.join("out");
    let rec = dir.join("rec");
    let o = paper_live(&v, &out, Some(&rec));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The book was valid at least 99% of the run.
    let valid: f64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("book             valid "))
        .and_then(|r| r.split('%').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no book line:\n{stdout}"));
    assert!(valid >= 99.0, "book valid {valid}%:\n{stdout}");
    assert!(stdout.contains("recorded         1 file(s)"), "{stdout}");
    // The same report.json as a backtest, with how long the book was valid.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let share = report["book"]["valid_share"].as_f64().unwrap();
    assert!(share >= 0.99, "report.json valid_share {share}");
    assert!(
        report["instruments"]["BTCUSDT"]["orders"]["placed"].as_u64() > Some(0),
        "{report}"
    );
    // What was recorded reads back through `book` as the source does, row for row.
    let files: Vec<PathBuf> = std::fs::read_dir(rec.join("binance-usdm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let got = book_rows(&files);
    let want = book_rows(&[root("tests/data/binance-usdm/btcusdt_20240808.gz")]);
    assert!(got.len() > 500, "{} rows recorded", got.len());
    for (id, row) in &got {
        assert_eq!(want.get(id), Some(row), "update id {id}");
    }
    // The journal replays identically.
    let j = out.join("journal");
    let r = ringmaker(&["replay", j.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && text.contains("identical"), "{text}");
    // The engine received the venue's mark prices (`btcusdt@markPrice@1s`, on the `/market`
    // route): one a second of venue time, 12 s at 10x, journaled as inputs with the venue's
    // funding rate (0.0001) and the next 8-hour boundary.
    let dump = ringmaker(&["journal", "dump", j.to_str().unwrap(), "--kind", "event"]);
    assert!(dump.status.success());
    let text = String::from_utf8_lossy(&dump.stdout);
    let marks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\tMarkPrice inst=0 "))
        .collect();
    assert!(marks.len() >= 30, "{} mark prices journaled", marks.len());
    for l in &marks {
        assert!(l.contains(" funding_e8=10000 "), "{l}");
        let next: i64 = l
            .rsplit_once("next_funding_ms=")
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{l}"));
        assert_eq!(next % (8 * 3600 * 1000), 0, "{l}");
    }
    assert!(stdout.contains("mark prices"), "{stdout}");
    // And the recording holds them, as they arrived.
    let recorded = test_support::recording_text(&files[0]);
    assert!(
        recorded.matches("\"e\":\"markPriceUpdate\"").count() >= marks.len(),
        "the recording has fewer mark prices than the journal"
    );
}

#[test]
fn after_dropped_connections_and_a_gap_the_book_is_valid_again_within_a_second_and_never_quoted_invalid(
) {
    let dir = TempDir::new("live-faults");
    // Venue time at 10x: connections cut every 20 s (2 s of wall time), a diff dropped at 35 s.
    let v = venue(
        dir.path(),
        Some("drop-connections@every=20s;gap@at=35s,stream=btcusdt@depth@0ms"),
    );
    let out = dir.join("out");
    paper_live(&v, &out, None);
    let j = out.join("journal");
    let dump = ringmaker(&["journal", "dump", j.to_str().unwrap()]);
    let text = String::from_utf8(dump.stdout).unwrap();
    // (local ns, what) of book status changes and placements, in journal order.
    let mut invalid_since: Option<i64> = None;
    let (mut invalids, mut disconnects, mut gaps, mut recoveries) = (0, 0, 0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.splitn(4, '\t').collect();
        if f.len() < 4 {
            continue;
        }
        let t: i64 = f[1].parse().unwrap_or(0);
        if f[2] == "event" && f[3].starts_with("BookInvalid") {
            invalids += 1;
            disconnects += usize::from(f[3].contains("Disconnected"));
            gaps += usize::from(f[3].contains("SequenceGap"));
            invalid_since.get_or_insert(t);
        } else if f[2] == "event" && f[3].starts_with("BookValid") {
            if let Some(t0) = invalid_since.take() {
                assert!(
                    t - t0 < 1_000_000_000,
                    "valid again {} ms after",
                    (t - t0) / 1_000_000
                );
                recoveries += 1;
            }
        } else if f[2] == "intent" && f[3].starts_with("Place") {
            assert!(
                invalid_since.is_none(),
                "a quote while the book was invalid: {l}"
            );
        }
    }
    // A fault in the run's last second may leave it no time to recover.
    if let Some(t0) = invalid_since {
        let last: i64 = text
            .lines()
            .filter_map(|l| l.split('\t').nth(1)?.parse().ok())
            .max()
            .unwrap_or(0);
        assert!(
            last - t0 < 1_000_000_000,
            "the run ended invalid for {} ms",
            (last - t0) / 1_000_000
        );
    }
    assert!(
        disconnects >= 3 && gaps >= 1,
        "{invalids} invalids: {disconnects} disconnects, {gaps} gaps"
    );
    assert!(recoveries >= 4, "{recoveries}");
}

#[test]
fn a_failing_clock_check_pulls_quotes_and_replays() {
    let dir = TempDir::new("live-clock");
    let v = venue(dir.path(), None);
    // The venue replays 2024: its event times are far behind our clock (a drift), and a host
    // without NTP is unsynchronised too; either fails the check.
    let cfg = dir.join("cfg.toml");
    let text = std::fs::read_to_string(root("configs/default.toml")).unwrap();
    std::fs::write(&cfg, format!("{text}\n[feed]\nclock_check = true\n")).unwrap();
    let out = dir.join("out");
    let o = paper_live_with(&v, &out, None, &cfg, "5");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("clock check      1 fault(s) pulled quotes"),
        "{stdout}"
    );
    let j = out.join("journal");
    let dump = ringmaker(&["journal", "dump", j.to_str().unwrap()]);
    let text = String::from_utf8(dump.stdout).unwrap();
    let fault = text
        .lines()
        .position(|l| l.contains("Control inst=0 ClockFault"))
        .unwrap_or_else(|| panic!("no ClockFault in the journal"));
    assert!(
        text.lines().any(|l| l.contains("(ClockFault)")),
        "the engine never halted for it"
    );
    // The clock as the feed read it, journaled once a second: the venue offset (years, since
    // the venue replays 2024) and the check failing from the fault on.
    let readings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ClockReading"))
        .collect();
    assert!(
        (3..=8).contains(&readings.len()),
        "{} readings in 5 s: {readings:?}",
        readings.len()
    );
    let offset_ms = |l: &str| -> f64 {
        l.split("offset_ms=")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let last = readings.last().unwrap();
    assert!(offset_ms(last) > 365.0 * 86_400e3, "{last}");
    assert!(
        last.contains(" FAILING") && last.contains("adjtimex="),
        "{last}"
    );
    for l in text.lines().skip(fault) {
        let f: Vec<&str> = l.splitn(4, '\t').collect();
        assert!(
            !(f.len() == 4 && f[2] == "intent" && f[3].starts_with("Place")),
            "a quote after the clock fault: {l}"
        );
    }
    let r = ringmaker(&["replay", j.to_str().unwrap()]);
    let t = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && t.contains("identical"), "{t}");
}

#[test]
fn a_live_run_with_no_venue_ends_at_its_duration_and_fails() {
    let dir = TempDir::new("live-novenue");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let out = dir.join("out");
    let started = std::time::Instant::now();
    let o = ringmaker(&[
        "run",
        "--paper",
        "--market",
        "live",
        "--venue-url",
        &url,
        "--duration",
        "2",
        "--status-secs",
        "0",
        "--config",
        root("configs/default.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it did not end"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("nothing arrived from the venue"),
        "{stderr}"
    );
}
