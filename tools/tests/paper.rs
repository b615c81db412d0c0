//! `ringmaker run --paper` end to end: the threaded pipeline over the shipped recording, its
//! journal replayed by `ringmaker replay`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use test_support::TempDir;

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn recording() -> String {
    root("tests/data/binance-usdm/btcusdt_20240808.gz")
        .to_string_lossy()
        .into_owned()
}

fn default_config() -> String {
    root("configs/default.toml").to_string_lossy().into_owned()
}

/// A fresh directory under the system temp dir, removed when the test ends.
fn scratch(name: &str) -> TempDir {
    TempDir::new(&format!("paper-{name}"))
}

fn ringmaker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(args)
        .output()
        .expect("run ringmaker")
}

fn paper_args<'a>(config: &'a str, out: &'a str, speed: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--paper",
        "--config",
        config,
        "--out",
        out,
        "--speed",
        speed,
        "--status-secs",
        "0",
    ]
}

/// The number after `key` on the summary line that starts with it.
fn summary_value(stdout: &str, key: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in summary:\n{stdout}"))
}

/// `journal verify` accepts it and `replay` reproduces every intent.
fn assert_journal_replays(journal: &Path) {
    let j = journal.to_str().unwrap();
    let verify = ringmaker(&["journal", "verify", j]);
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let replay = ringmaker(&["replay", j]);
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success() && stdout.starts_with("identical: "),
        "replay: {stdout}{}",
        String::from_utf8_lossy(&replay.stderr)
    );
}

fn check_success(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn flat_out_run_replays_identical() {
    let dir = scratch("flat");
    let (config, out) = (default_config(), dir.path().to_string_lossy().into_owned());
    let data = recording();
    let mut args = paper_args(&config, &out, "0");
    args.extend(["--data", &data]);
    let stdout = check_success(&ringmaker(&args));
    assert!(stdout.starts_with("paper run: end of data"), "{stdout}");
    assert_eq!(summary_value(&stdout, "lines"), 93_954);
    // Flat out the feed waits for room: nothing is dropped, the book stays valid.
    assert_eq!(summary_value(&stdout, "ring overflows"), 0, "{stdout}");
    assert!(summary_value(&stdout, "intents") > 100, "{stdout}");
    assert_eq!(summary_value(&stdout, "open orders"), 0, "{stdout}");
    assert_journal_replays(&dir.join("journal"));
    // report.json: the backtest's report of this run, built from its journal, agrees with the
    // run's own summary (fills, position) and says how long the book was valid.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let btc = &report["instruments"]["BTCUSDT"];
    let line = stdout
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("BTCUSDT (binance-usdm) position")
        })
        .unwrap_or_else(|| panic!("no instrument line:\n{stdout}"));
    let maker = btc["fills"]["maker"].as_u64().unwrap();
    assert!(maker > 0, "{report}");
    assert!(
        line.contains(&format!("fills {maker} maker / 0 taker")),
        "{line} vs {btc}"
    );
    let pos = btc["position"]["final"].as_f64().unwrap();
    assert!(
        line.contains(&format!("position {pos:.3} BTC")),
        "{line} vs {pos}"
    );
    // Valid from the first sync to the end: never invalidated after it. The share is of wall
    // time here (a paper run's clock), and the wait for the first snapshot is in it: flat out the
    // run lasts about half a second, so a loaded machine that holds up the feed thread for
    // 15 ms before the first sync takes 3 % off (seen in CI with the test binaries in parallel).
    let book = &report["book"];
    for k in ["gaps", "resyncs", "crossed", "stale_periods"] {
        assert_eq!(book[k], 0, "{k}: {book}");
    }
    let valid = book["valid_share"].as_f64().unwrap();
    assert!(valid > 0.9 && valid <= 1.0, "{valid}");
    assert_eq!(report["lines"]["read"], 93_954);
    // The figures that explain the PnL, from the journal as in a backtest.
    let split = &btc["pnl_decomposition"];
    let sum = split["spread_capture"].as_f64().unwrap() + split["inventory"].as_f64().unwrap()
        - split["fees"].as_f64().unwrap();
    let total = btc["pnl"]["total"].as_f64().unwrap();
    assert!((sum - total).abs() < 1e-9, "{split} vs {total}");
    let within5 = btc["quoting"]["both_within_bps"]["5"].as_f64().unwrap();
    assert!(within5 > 0.0 && within5 <= 1.0, "{within5}");
    assert!(btc["cancels"]["discretionary"].as_u64().is_some(), "{btc}");
    assert_eq!(
        btc["fill_rate"]["bid"]["fills"].as_u64().unwrap()
            + btc["fill_rate"]["ask"]["fills"].as_u64().unwrap(),
        btc["fills"]["count"].as_u64().unwrap()
    );
    // One tag per hop in the latency log.
    let hist = ringmaker(&["hist", dir.join("latency.hlog").to_str().unwrap()]);
    let table = check_success(&hist);
    for tag in [
        "decode_publish",
        "publish_consume",
        "consume_intent",
        "intent_gateway",
        "tick_to_intent",
    ] {
        assert!(table.contains(tag), "{tag} missing:\n{table}");
    }
}

#[test]
fn sigint_halfway_leaves_a_journal_that_replays() {
    let dir = scratch("sigint");
    let (config, out) = (default_config(), dir.path().to_string_lossy().into_owned());
    let data = recording();
    let mut args = paper_args(&config, &out, "1");
    args.extend(["--data", &data]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringmaker");
    std::thread::sleep(Duration::from_millis(1200));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `kill` only sends a signal; `pid` is our child, which has not been reaped (we
    // still hold it and have not waited), so the pid cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = check_success(&child.wait_with_output().unwrap());
    assert!(
        stdout.starts_with("paper run: stopped by signal"),
        "{stdout}"
    );
    // Halt + cancel-all went in; every order was cancelled before the end.
    assert!(stdout.contains("control 2)"), "{stdout}");
    assert_eq!(summary_value(&stdout, "open orders"), 0, "{stdout}");
    let lines = summary_value(&stdout, "lines");
    assert!(
        lines > 50 && lines < 93_954,
        "stopped halfway: {lines} lines"
    );
    assert_journal_replays(&dir.join("journal"));
}

#[test]
fn eight_slot_input_ring_overflows_visibly_and_loses_no_record() {
    let dir = scratch("tiny");
    let config = dir.join("tiny.toml");
    let mut text = std::fs::read_to_string(default_config()).unwrap();
    text.push_str("\n[rings]\ninput = 8\n");
    std::fs::write(&config, text).unwrap();
    let out = dir.join("out");
    let (config, out_s) = (
        config.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    let data = recording();
    // Paced (the feed stands in for a socket and never waits): 30 s of recording at 20x.
    let mut args = paper_args(&config, &out_s, "20");
    args.extend(["--data", &data, "--duration", "30"]);
    let stdout = check_success(&ringmaker(&args));
    assert!(
        stdout.starts_with("paper run: duration reached"),
        "{stdout}"
    );
    let overflows = summary_value(&stdout, "ring overflows");
    assert!(overflows > 0, "{stdout}");
    assert!(
        stdout.contains("book invalidations published 1"),
        "{stdout}"
    );
    assert_journal_replays(&out.join("journal"));
    // The engine saw why its book went invalid.
    let dump = ringmaker(&[
        "journal",
        "dump",
        out.join("journal").to_str().unwrap(),
        "--kind",
        "event",
    ]);
    let events = check_success(&dump);
    assert!(
        events.contains("reason=RingOverflow"),
        "no RingOverflow event"
    );
}

/// Two instruments with one symbol (USD-M and spot BTCUSDT), one recording each, through the
/// paper pipeline flat out: the merged feed syncs both books, both instruments get fills, and the
/// journal replays.
#[test]
fn two_instruments_paper_run_trades_both_and_replays() {
    let dir = scratch("two");
    let block = |rel: &str| {
        let text = std::fs::read_to_string(root(rel)).unwrap();
        text[text.find("[[instrument]]").unwrap()..].to_owned()
    };
    let config = dir.join("two.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\norders_per_10s = 300\norders_per_min = 1200\nbook_slots = 2097152\n\n{}\n{}",
            block("configs/default.toml"),
            block("configs/spot-btcusdt.toml")
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let (config, out_s) = (
        config.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    let spot = root("tests/data/binance-spot/btcusdt_20240808.gz")
        .to_string_lossy()
        .into_owned();
    let data = recording();
    let mut args = paper_args(&config, &out_s, "0");
    args.extend(["--data", &spot, &data]);
    let stdout = check_success(&ringmaker(&args));
    assert_eq!(summary_value(&stdout, "lines"), 93_954 + 41_249, "{stdout}");
    assert!(
        stdout.contains(" 0 gaps, 0 resyncs, 2 snapshot requests"),
        "{stdout}"
    );
    // One summary line per instrument, each with fills.
    let fills: Vec<u64> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("BTCUSDT"))
        .map(|l| {
            l.split("fills ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no fills in {l}"))
        })
        .collect();
    assert_eq!(fills.len(), 2, "{stdout}");
    assert!(fills.iter().all(|&f| f > 10), "{stdout}");
    assert_journal_replays(&out.join("journal"));
}
