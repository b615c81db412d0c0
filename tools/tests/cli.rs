//! The `ringmaker` binary as a user runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

/// The binary, its event cache in this test process's own cache home (not the user's).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringmaker"));
    c.env("XDG_CACHE_HOME", test_support::isolated_cache_home());
    c
}

fn ringmaker(args: &[&str]) -> Output {
    bin().args(args).output().expect("run ringmaker")
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
    let text = test_support::recording_text(&test_support::usdm());
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
    let dir = test_support::TempDir::new("cli-gap");
    let (path, removed_u) = damaged_copy(dir.path(), 3_000);
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

fn root(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn backtest_writes_report_plots_hlog_and_a_journal_that_replays() {
    let out = test_support::TempDir::new("cli-bt");
    let o = out.path().to_str().unwrap();
    let cfg = root("configs/default.toml");
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let r = ringmaker(&[
        "backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", o,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8(r.stdout).unwrap();
    assert!(stdout.contains("backtest BTCUSDT"), "{stdout}");
    for f in [
        "report.json",
        "plots/mid.png",
        "plots/position.png",
        "plots/pnl.png",
        "plots/distance.png",
        "plots/adapt.png",
        "latency.hlog",
    ] {
        let p = out.join(f);
        assert!(
            p.metadata().map(|m| m.len() > 1000).unwrap_or(false),
            "{} missing or tiny",
            p.display()
        );
    }
    let png = std::fs::read(out.join("plots/mid.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let report: String = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(report.contains("\"maker_ratio\""), "{report}");
    // The shipped config adapts its spreads: the report, the summary and the plots say how.
    assert!(report.contains("\"adapt\": {"), "{report}");
    assert!(stdout.contains("\n  adapt      grid: σ p50 "), "{stdout}");
    assert!(
        stdout.contains("/plots/{mid,position,pnl,distance,adapt}.png"),
        "{stdout}"
    );

    // Rerunning into the same directory replaces the previous run (adapt.png included).
    let r = ringmaker(&[
        "backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", o,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    // Without [instrument.quote.adapt]: no section, no line, no plot.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let (head, rest) = text.split_once("[instrument.quote.adapt]").unwrap();
    let plain = format!("{head}{}", &rest[rest.find("[instrument.risk]").unwrap()..]);
    let plain_cfg = out.join("plain.toml");
    std::fs::write(&plain_cfg, plain).unwrap();
    let plain_out = out.join("plain");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        plain_cfg.to_str().unwrap(),
        "--data",
        &data,
        "--out",
        plain_out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let plain_stdout = String::from_utf8(r.stdout).unwrap();
    assert!(!plain_stdout.contains("  adapt  "), "{plain_stdout}");
    assert!(
        plain_stdout.contains("/plots/{mid,position,pnl,distance}.png"),
        "{plain_stdout}"
    );
    assert!(!plain_out.join("plots/adapt.png").exists());
    let plain_report = std::fs::read_to_string(plain_out.join("report.json")).unwrap();
    assert!(!plain_report.contains("\"adapt\""), "{plain_report}");

    let j = out.join("journal");
    let js = j.to_str().unwrap();
    let r = ringmaker(&["replay", js]);
    assert!(r.status.success());
    let s = String::from_utf8(r.stdout).unwrap();
    assert!(s.starts_with("identical: "), "{s}");

    let r = ringmaker(&["journal", "verify", js]);
    assert!(r.status.success());
    let r = ringmaker(&["journal", "stats", js]);
    let s = String::from_utf8(r.stdout).unwrap();
    assert!(
        s.contains("intent") && s.contains("event") && s.contains("batch_end"),
        "{s}"
    );
    let r = ringmaker(&[
        "journal",
        "dump",
        js,
        "--kind",
        "intent",
        "--from-seq",
        "1000",
    ]);
    let s = String::from_utf8(r.stdout).unwrap();
    let first: u64 = s
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first >= 1000);
    assert!(s.lines().all(|l| l.split('\t').nth(2) == Some("intent")));
    let r = ringmaker(&["journal", "dump", js, "--kind", "bogus"]);
    assert_eq!(r.status.code(), Some(2));
    // Inputs are journaled in events records: one dump line per input, `event` or `events`.
    let ev = ringmaker(&[
        "journal",
        "dump",
        js,
        "--kind",
        "event",
        "--from-seq",
        "150000",
    ]);
    let evs = ringmaker(&[
        "journal",
        "dump",
        js,
        "--kind",
        "events",
        "--from-seq",
        "150000",
    ]);
    assert!(ev.status.success() && evs.status.success());
    assert_eq!(ev.stdout, evs.stdout);
    let s = String::from_utf8(ev.stdout).unwrap();
    assert!(s.lines().count() > 1_000, "{}", s.lines().count());
    assert!(s.lines().all(|l| l.split('\t').nth(2) == Some("event")));

    let r = ringmaker(&["hist", out.join("latency.hlog").to_str().unwrap()]);
    let s = String::from_utf8(r.stdout).unwrap();
    assert!(r.status.success() && s.contains("on_event"), "{s}");

    // Damage a record in the middle of the first segment: verify names it and fails.
    let seg = std::fs::read_dir(&j)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rmj"))
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[1_000_000] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    let r = ringmaker(&["journal", "verify", js]);
    assert_eq!(r.status.code(), Some(1));
    let s = String::from_utf8(r.stdout).unwrap();
    assert!(s.contains("corrupt") && s.contains("segment"), "{s}");
}

/// A run whose book was valid for less than half of it says so on stderr and in its summary;
/// with `--strict` it fails.
#[test]
fn a_mostly_invalid_book_warns_and_strict_fails() {
    let out = test_support::TempDir::new("cli-strict");
    let o = out.path().to_str().unwrap();
    let cfg = root("configs/default.toml");
    let (a, b) = (
        root("tests/data/binance-spot/btcusdt_20240808.gz"),
        root("tests/data/binance-spot/btcusdt_20240809.gz"),
    );
    // The spot sample given plainly to the USD-M config: refused before the run, naming what
    // the file holds (futures instrument, spot diffs).
    let r = ringmaker(&[
        "backtest", "--quiet", "--config", &cfg, "--out", o, "--data", &a, &b,
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("fits no instrument") && stderr.contains("without `pu`"),
        "{stderr}"
    );
    // Bound explicitly (the user's word), the USD-M config (futures rule, 0.001 lots) runs on
    // the spot sample and its book is mostly invalid.
    let (ba, bb) = (format!("BTCUSDT={a}"), format!("BTCUSDT={b}"));
    let args = [
        "backtest", "--quiet", "--config", &cfg, "--out", o, "--data", &ba, &bb,
    ];
    let r = ringmaker(&args);
    assert!(r.status.success(), "without --strict a warning only");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
    );
    assert!(stdout.contains("WARNING"), "{stdout}");
    assert!(
        stderr.contains("warning: the book was valid for only"),
        "{stderr}"
    );
    let mut strict = args.to_vec();
    strict.push("--strict");
    let r = ringmaker(&strict);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // The right config passes strict.
    let spot = root("configs/spot-btcusdt.toml");
    let r = ringmaker(&[
        "backtest", "--quiet", "--strict", "--config", &spot, "--out", o, "--data", &a, &b,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // `book` on the spot files with the futures rule: one gap, then invalid to the end.
    let r = ringmaker(&[
        "book",
        "--strict",
        "--venue",
        "futures",
        "--tick",
        "0.01",
        "--lot",
        "0.00000001",
        "--data",
        &a,
        &b,
    ]);
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(summary_value(&stderr, "gaps"), 1, "{stderr}");
    assert!(
        stderr.contains("warning: the book was valid for only"),
        "{stderr}"
    );
}

/// The journal holds the engine's part of the config and a digest of the rest: nothing of
/// `[venue]` or `[ops]` (where credentials could be named) reaches it, a credential in `[venue]`
/// is refused, and replay still works.
#[test]
fn the_journal_never_holds_the_venue_section_or_credentials() {
    let out = test_support::TempDir::new("cli-secrets");
    let cfg_path = out.join("with-venue.toml");
    let mut text = std::fs::read_to_string(root("configs/default.toml")).unwrap();
    text.push_str(
        "\n[venue]\nrest_url = \"https://venue.example:9443\"\ncountdown_secs = 60\n\
         [ops]\nmetrics_listen = \"127.0.0.1:9100\"\n",
    );
    std::fs::write(&cfg_path, &text).unwrap();
    let o = out.join("run");
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        cfg_path.to_str().unwrap(),
        "--data",
        &data,
        "--out",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // A credential in [venue] or [ops] is refused outright (keys come from the environment
    // only), and its value is never repeated.
    for (section, key) in [
        ("venue", "api_key"),
        ("ops", "token_env"),
        ("ops", "private_key_file"),
    ] {
        let bad = out.join(format!("key-in-{section}-{key}.toml"));
        std::fs::write(
            &bad,
            format!(
                "{}\n[{section}]\n{key} = \"abcdef0123456789\"\n",
                std::fs::read_to_string(root("configs/default.toml")).unwrap()
            ),
        )
        .unwrap();
        let r = ringmaker(&[
            "backtest",
            "--quiet",
            "--config",
            bad.to_str().unwrap(),
            "--data",
            &data,
            "--out",
            out.join("bad").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(key), "{err}");
        assert!(
            !err.contains("abcdef0123456789"),
            "the value is not repeated: {err}"
        );
    }
    let mut journal = Vec::new();
    for e in std::fs::read_dir(o.join("journal")).unwrap() {
        journal.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    let hay = String::from_utf8_lossy(&journal);
    for secret in ["venue.example", "[venue]", "9100"] {
        assert!(!hay.contains(secret), "{secret} reached the journal");
    }
    assert!(
        hay.contains("[[instrument]]"),
        "the engine's part is journaled"
    );
    let r = ringmaker(&["replay", o.join("journal").to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&r.stdout).starts_with("identical: "),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = ringmaker(&[
        "journal",
        "dump",
        o.join("journal").to_str().unwrap(),
        "--kind",
        "settings",
    ]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("settings digest"));
}

/// Every command ends quietly when its standard output is a closed pipe (`| head`): no panic, no
/// error message. (Issue 11: `journal stats`, `journal verify`, `replay`, `hist` and `backtest`
/// panicked.)
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    use std::process::Stdio;
    let out = test_support::TempDir::new("cli-pipe");
    let o = out.path().to_str().unwrap();
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let cfg = root("configs/default.toml");
    let r = ringmaker(&[
        "backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", o,
    ]);
    assert!(r.status.success());
    let j = out.join("journal");
    let js = j.to_str().unwrap();
    let hlog = out.join("latency.hlog");
    let hs = hlog.to_str().unwrap();
    let bt = out.join("again");
    let bts = bt.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["journal", "stats", js],
        vec!["journal", "verify", js],
        vec!["journal", "dump", js],
        vec!["replay", js],
        vec!["hist", hs],
        vec!["book", "--data", &data, "--tick", "0.10", "--lot", "0.001"],
        vec![
            "backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", bts,
        ],
    ];
    for args in commands {
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command writes anything.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert!(
            o.status.success() || o.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            o.status
        );
    }
}

/// A line stamped a day after the one before it is skipped and said, not believed: the run's
/// simulated time stays that of the recording (issue 11: the backtest filled the day with timer
/// ticks and per-second histograms).
#[test]
fn a_timestamp_a_day_ahead_is_skipped_and_said() {
    let out = test_support::TempDir::new("cli-jump");
    let text = test_support::recording_text(&test_support::usdm());
    let last = text.lines().last().unwrap();
    let (t, json) = last.split_once(' ').unwrap();
    let t: i64 = t.parse().unwrap();
    let path = out.join("jump.txt");
    std::fs::write(
        &path,
        format!("{text}{} {json}\n", t + 86_400 * 1_000_000_000),
    )
    .unwrap();
    let o = out.join("run");
    let args = [
        "backtest",
        "--quiet",
        "--config",
        &root("configs/default.toml"),
        "--data",
        path.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
    ];
    let r = ringmaker(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("more than 1 h after"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["lines"]["time_jumps"], 1);
    assert!(
        report["duration_s"].as_f64().unwrap() < 400.0,
        "{}",
        report["duration_s"]
    );
    let mut strict = args.to_vec();
    strict.push("--strict");
    assert_eq!(ringmaker(&strict).status.code(), Some(1));
}

/// `--duration` is a positive, finite number of seconds, as `--speed` is checked.
#[test]
fn a_meaningless_duration_is_refused() {
    for d in ["nan", "inf", "-5", "0"] {
        let flag = format!("--duration={d}");
        let r = ringmaker(&["run", "--paper", &flag, "--out", "/nonexistent/x"]);
        assert_eq!(r.status.code(), Some(2), "--duration {d}");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains("--duration"), "{d}: {stderr}");
    }
}

/// A tiny `.hlog` whose histogram header claims a 2 GiB payload is a clear error, not an abort
/// (issue 11: a 128-byte file asked for 2 GiB).
#[test]
fn an_hlog_with_an_absurd_histogram_header_is_an_error() {
    let out = test_support::TempDir::new("cli-hlog");
    let path = out.join("evil.hlog");
    std::fs::write(
        &path,
        "#[StartTime: 1.000 (seconds since epoch)]\n\
         \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n\
         Tag=x,0.000,1.000,1.000,HISTFAAAABp4nJNpmSzcwAAHzFCaEcp9Yf8BwgIAVF8D5Q==\n",
    )
    .unwrap();
    let r = ringmaker(&["hist", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("corrupt"), "{stderr}");
}

/// A recording that yields nothing usable is an error (exit 2), not a zero report (issue 11):
/// empty, not gzip, binary, a directory, or lines that do not fit the instrument's grid.
#[test]
fn a_recording_with_nothing_usable_is_an_error() {
    let out = test_support::TempDir::new("cli-unusable");
    let empty = out.join("empty.gz");
    std::fs::write(&empty, b"").unwrap();
    let binary = out.join("binary.gz");
    std::fs::write(
        &binary,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let text = out.join("no-timestamps.txt");
    std::fs::write(&text, "{\"a\":1}\n{\"b\":2}\n").unwrap();
    let coarse = out.join("coarse.toml");
    std::fs::write(
        &coarse,
        std::fs::read_to_string(root("configs/default.toml"))
            .unwrap()
            .replace("tick = \"0.10\"", "tick = \"100000\""),
    )
    .unwrap();
    let usdm = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let cfg = root("configs/default.toml");
    let o = out.join("run");
    let os = o.to_str().unwrap();
    let dir = out.path().to_str().unwrap().to_owned();
    let cases: Vec<(String, String)> = vec![
        (cfg.clone(), empty.to_str().unwrap().into()),
        (cfg.clone(), binary.to_str().unwrap().into()),
        (cfg.clone(), text.to_str().unwrap().into()),
        (cfg.clone(), dir),
        (coarse.to_str().unwrap().into(), usdm),
    ];
    for (config, data) in &cases {
        let r = ringmaker(&[
            "backtest", "--quiet", "--config", config, "--data", data, "--out", os,
        ]);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{config} {data}: {stderr}");
        assert!(stderr.contains("nothing usable"), "{data}: {stderr}");
    }
    let r = ringmaker(&[
        "book",
        "--tick",
        "0.10",
        "--lot",
        "0.001",
        "--data",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let r = ringmaker(&[
        "run",
        "--paper",
        "--speed",
        "0",
        "--status-secs",
        "0",
        "--out",
        os,
        "--data",
        binary.to_str().unwrap(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A gzip cut short is said on stderr and in the summary, with where, not only counted
/// (issue 11).
#[test]
fn a_truncated_gzip_is_said() {
    let out = test_support::TempDir::new("cli-trunc");
    let gz = std::fs::read(root("tests/data/binance-usdm/btcusdt_20240808.gz")).unwrap();
    let cut = out.join("cut.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let o = out.join("run");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        &root("configs/default.toml"),
        "--data",
        cut.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
    );
    for text in [&stdout, &stderr] {
        assert!(text.contains("cut.gz: read error after line"), "{text}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o.join("report.json")).unwrap()).unwrap();
    assert!(report["lines"]["first_skipped"][0]
        .as_str()
        .unwrap()
        .contains("read error"));
}

/// Sizes and amounts from the command line and the config are checked before anything is
/// allocated or multiplied (issue 11: `--book-slots` aborted, `--entry-latency-us` wrapped to 0).
#[test]
fn absurd_sizes_and_latencies_are_clear_errors() {
    let out = test_support::TempDir::new("cli-sizes");
    let o = out.join("run");
    let os = o.to_str().unwrap();
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    for args in [
        vec![
            "book",
            "--tick",
            "0.1",
            "--lot",
            "0.001",
            "--book-slots",
            "99999999999999",
            "--data",
            &data,
        ],
        vec![
            "book",
            "--tick",
            "0.1",
            "--lot",
            "0.001",
            "--book-slots",
            "12",
            "--data",
            &data,
        ],
        vec![
            "backtest",
            "--quiet",
            "--entry-latency-us",
            "18446744073709551",
            "--out",
            os,
            "--data",
            &data,
        ],
        vec![
            "backtest",
            "--quiet",
            "--response-latency-us",
            "18446744073709551615",
            "--out",
            os,
            "--data",
            &data,
        ],
        vec![
            "backtest",
            "--quiet",
            "--segment-mib",
            "0",
            "--out",
            os,
            "--data",
            &data,
        ],
    ] {
        let r = ringmaker(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
    let cfg = out.join("huge-ring.toml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(root("configs/default.toml")).unwrap()
            + "\n[rings]\ninput = 1073741824\n",
    )
    .unwrap();
    let r = ringmaker(&[
        "run",
        "--paper",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        os,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("rings.input"));
}

/// Past the file-size limit (RLIMIT_FSIZE: 3 MiB here, a 64 MiB segment) the journal fails as on
/// a full disk: a clear error, exit 2, no `.tmp` left behind (issue 11: SIGXFSZ killed the
/// process and left a `.tmp`).
#[test]
fn a_file_size_limit_is_a_clean_no_space_error() {
    let out = test_support::TempDir::new("cli-fsize");
    let o = out.join("run");
    let script = format!(
        "ulimit -f 3072; exec {} backtest --quiet --config {} --data {} --out {}",
        env!("CARGO_BIN_EXE_ringmaker"),
        root("configs/default.toml"),
        root("tests/data/binance-usdm/btcusdt_20240808.gz"),
        o.display()
    );
    let r = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no space") || stderr.contains("File too large"),
        "{stderr}"
    );
    // The failed run's staging directory is gone with its journal; nothing is left behind.
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            }
            out.push(p);
        }
    }
    let mut left = Vec::new();
    walk(&o, &mut left);
    assert!(
        left.iter()
            .all(|p| p.file_name().unwrap() == ".ringmaker.lock"),
        "{left:?}"
    );
}

/// `--out` never deletes what ringmaker did not write, a failed re-run leaves the previous run
/// whole, and a second run into the same `--out` while one is running is refused (issue 11).
#[test]
fn out_is_replaced_only_by_a_successful_run_and_never_loses_a_users_files() {
    let out = test_support::TempDir::new("cli-out");
    let o = out.join("run");
    let os = o.to_str().unwrap();
    let cfg = root("configs/default.toml");
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let ok = ringmaker(&[
        "backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", os,
    ]);
    assert!(ok.status.success());
    let report = std::fs::read(o.join("report.json")).unwrap();
    let segments = std::fs::read_dir(o.join("journal")).unwrap().count();
    // A re-run that fails (a missing data file) leaves the previous run as it was.
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        &cfg,
        "--data",
        "/nonexistent.gz",
        "--out",
        os,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(std::fs::read(o.join("report.json")).unwrap(), report);
    assert_eq!(
        std::fs::read_dir(o.join("journal")).unwrap().count(),
        segments
    );
    let r = ringmaker(&["replay", o.join("journal").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&r.stdout).starts_with("identical"));
    // A user's folder inside journal/, even one named like a segment, stops the run before
    // anything is touched (the previous version deleted every `seg-*` entry, folders included).
    std::fs::create_dir_all(o.join("journal/seg-notes")).unwrap();
    std::fs::write(o.join("journal/seg-notes/mine.txt"), "keep").unwrap();
    let r = ringmaker(&[
        "backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", os,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("did not write"));
    assert_eq!(
        std::fs::read_to_string(o.join("journal/seg-notes/mine.txt")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read(o.join("report.json")).unwrap(), report);
    std::fs::remove_dir_all(o.join("journal/seg-notes")).unwrap();
    // Two runs into one --out at once: one of them is refused (the lock), the survivor's journal
    // replays.
    let spawn = || {
        bin()
            .args([
                "run",
                "--paper",
                "--speed",
                "0",
                "--status-secs",
                "0",
                "--config",
                &cfg,
            ])
            .args(["--data", &data, "--out", os])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)), "{codes:?}");
    if codes.contains(&Some(2)) {
        let refused = if a.status.code() == Some(2) { &a } else { &b };
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("another ringmaker run"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
    let r = ringmaker(&["replay", o.join("journal").to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&r.stdout).starts_with("identical"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A journal that lost its trailing segments is not "ok" and not silently "identical"
/// (issue 11: both passed). 1 MiB segments, the last two with data removed.
#[test]
fn a_journal_missing_its_end_is_reported_incomplete() {
    let out = test_support::TempDir::new("cli-end");
    let o = out.join("run");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--segment-mib",
        "1",
        "--config",
        &root("configs/default.toml"),
        "--data",
        &root("tests/data/binance-usdm/btcusdt_20240808.gz"),
        "--out",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let j = o.join("journal");
    let js = j.to_str().unwrap();
    let r = ringmaker(&["journal", "verify", js]);
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stdout).starts_with("ok: "));
    let mut segs: Vec<_> = std::fs::read_dir(&j)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rmj"))
        .collect();
    segs.sort();
    assert!(segs.len() > 10, "{}", segs.len());
    // The preallocated next segment (empty) and the last one with records go.
    for p in &segs[segs.len() - 2..] {
        std::fs::remove_file(p).unwrap();
    }
    let r = ringmaker(&["journal", "verify", js]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("incomplete: "), "{stdout}");
    assert!(stdout.contains("no clean close"), "{stdout}");
    let r = ringmaker(&["replay", js]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.starts_with("identical: "), "{stdout}");
    assert!(stdout.contains("no clean close"), "{stdout}");
}

/// A diff that crosses the book is not believed (issue 11: the book stayed crossed for 2,870
/// diffs while the engine quoted normally): `book` and `backtest` both see one crossing, the book
/// is invalid from there (the recording has no later snapshot), and nothing after it is printed
/// as a book.
#[test]
fn a_diff_that_crosses_the_book_invalidates_it() {
    let out = test_support::TempDir::new("cli-crossed");
    let text = test_support::recording_text(&test_support::usdm());
    let path = out.join("crossed.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let mut line = line.to_owned();
        if line.contains("\"e\":\"depthUpdate\"") {
            seen += 1;
            if seen == 3_000 {
                // A bid far above every ask.
                line = line.replacen("\"b\":[", "\"b\":[[\"70000.00\",\"1.000\"],", 1);
            }
        }
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let p = path.to_str().unwrap();
    let r = ringmaker(&["book", "--tick", "0.10", "--lot", "0.001", "--data", p]);
    assert!(r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(summary_value(&stderr, "crossed books"), 1, "{stderr}");
    let tsv = String::from_utf8_lossy(&r.stdout);
    // 2,995 diffs applied before the crossing one (the first four end before the snapshot).
    assert_eq!(tsv.lines().count(), 2_995, "{stderr}");
    assert!(tsv.lines().all(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        f[1].parse::<f64>().unwrap() < f[3].parse::<f64>().unwrap()
    }));
    let o = out.join("run");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        &root("configs/default.toml"),
        "--data",
        p,
        "--out",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["book"]["crossed"], 1);
    assert!(report["book"]["valid_share"].as_f64().unwrap() < 0.9);
}

/// Standard output that cannot be written (a full disk: `/dev/full`) is a clear error, exit 2,
/// never a panic.
#[test]
fn an_unwritable_stdout_is_a_clear_error() {
    use std::process::Stdio;
    let out = test_support::TempDir::new("cli-full");
    let o = out.join("run");
    let os = o.to_str().unwrap();
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let cfg = root("configs/default.toml");
    assert!(
        ringmaker(&["backtest", "--quiet", "--config", &cfg, "--data", &data, "--out", os])
            .status
            .success()
    );
    let j = o.join("journal");
    let js = j.to_str().unwrap();
    for args in [
        vec!["journal", "stats", js],
        vec!["replay", js],
        vec!["book", "--data", &data, "--tick", "0.10", "--lot", "0.001"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let r = bin()
            .args(&args)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("No space left"), "{args:?}: {stderr}");
    }
}

/// A two-instrument config: BTCUSDT on USD-M (`configs/default.toml`'s) and on spot
/// (`configs/spot-btcusdt.toml`'s), written into `dir`.
fn usdm_and_spot_config(dir: &Path) -> String {
    let block = |rel: &str| {
        let text = std::fs::read_to_string(root(rel)).unwrap();
        text[text.find("[[instrument]]").unwrap()..].to_owned()
    };
    let path = dir.join("two.toml");
    std::fs::write(
        &path,
        format!(
            "[engine]\norders_per_10s = 300\norders_per_min = 1200\nbook_slots = 2097152\n\n{}\n{}",
            block("configs/default.toml"),
            block("configs/spot-btcusdt.toml")
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// With several instruments, a recording that fits none of them, an instrument left without a
/// recording, or a binding that names no instrument (or a symbol on two venues) is an error
/// naming the file or the instrument: exit 2, nothing run.
#[test]
fn a_recording_bound_to_no_instrument_or_an_instrument_without_one_is_exit_2() {
    let tmp = test_support::TempDir::new("cli-bind");
    let config = usdm_and_spot_config(tmp.path());
    let usdm = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let spot = root("tests/data/binance-spot/btcusdt_20240808.gz");
    let eth = tmp.join("ethusdt.txt");
    std::fs::write(
        &eth,
        "1 {\"stream\":\"ethusdt@depth@0ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1,\"T\":1,\
         \"s\":\"ETHUSDT\",\"U\":5,\"u\":9,\"pu\":4,\"b\":[],\"a\":[]}}\n\
         2 {\"lastUpdateId\":7,\"bids\":[],\"asks\":[]}\n",
    )
    .unwrap();
    let eth = eth.to_str().unwrap().to_owned();
    let out = tmp.join("out");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[&usdm, &spot, &eth],
            &["ethusdt.txt", "fits no instrument", "ethusdt"],
        ),
        (
            &[&usdm],
            &[
                "instrument BTCUSDT (binance-spot) has no recording",
                "binance-spot:BTCUSDT=PATH",
            ],
        ),
        (
            &[&format!("BTCUSDT={usdm}"), &spot],
            &["BTCUSDT is on several venues", "VENUE:BTCUSDT=PATH"],
        ),
        (
            &[&format!("ETHUSDT={usdm}"), &spot],
            &[
                "ETHUSDT is not an instrument here",
                "BTCUSDT (binance-spot)",
            ],
        ),
    ];
    for (data, said) in cases {
        for command in ["backtest", "run"] {
            let mut args = vec![command, "--config", &config, "--out", out];
            if command == "run" {
                args.extend(["--paper", "--speed", "0", "--status-secs", "0"]);
            } else {
                args.push("--quiet");
            }
            args.push("--data");
            args.extend(data.iter());
            let r = ringmaker(&args);
            let stderr = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{command} {data:?}: {stderr}");
            for s in *said {
                assert!(
                    stderr.contains(s),
                    "{command} {data:?}: no `{s}` in {stderr}"
                );
            }
        }
    }
    assert!(!Path::new(out).exists(), "nothing was run");
    // `book` follows one symbol: a binding to another is refused.
    let r = ringmaker(&[
        "book",
        "--tick",
        "0.10",
        "--lot",
        "0.001",
        "--symbol",
        "ETHUSDT",
        "--data",
        &format!("BTCUSDT={usdm}"),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`book` follows ETHUSDT"), "{stderr}");
}

/// `--data VENUE:SYMBOL=PATH` binds a file without reading it, in any order; `book` takes its
/// symbol and sync rule from it; and a file whose name looks like a binding is read as the file
/// when it is one.
#[test]
fn data_bindings_on_the_command_line() {
    let tmp = test_support::TempDir::new("cli-bindings");
    let config = usdm_and_spot_config(tmp.path());
    let usdm = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let spot1 = root("tests/data/binance-spot/btcusdt_20240808.gz");
    let spot2 = root("tests/data/binance-spot/btcusdt_20240809.gz");
    let out = tmp.join("bt");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        &config,
        "--out",
        out.to_str().unwrap(),
        "--data",
        &format!("binance-spot:BTCUSDT={spot1}"),
        &format!("binance-usdm:BTCUSDT={usdm}"),
        &format!("binance-spot:btcusdt={spot2}"),
    ]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(out.join("report.json").is_file());
    // Both books, each with its own recording's diffs.
    assert!(stdout.contains("6547 diffs applied, 0 gaps"), "{stdout}");
    assert!(stdout.contains("6493 diffs applied, 0 gaps"), "{stdout}");
    let replay = ringmaker(&["replay", out.join("journal").to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&replay.stdout).starts_with("identical: "),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );

    // `book` with spot bindings: the symbol and the spot rule from them.
    let r = ringmaker(&[
        "book",
        "--tick",
        "0.01",
        "--lot",
        "0.00000001",
        "--data",
        &format!("binance-spot:BTCUSDT={spot1}"),
        &format!("binance-spot:BTCUSDT={spot2}"),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(
        stderr.contains("BTCUSDT, sync rule spot (U = previous u + 1)"),
        "{stderr}"
    );
    assert_eq!(summary_value(&stderr, "diffs applied"), 6_493);

    // A file named `BTCUSDT=copy.gz` (BTCUSDT is the default config's symbol) given plainly.
    std::fs::copy(&usdm, tmp.join("BTCUSDT=copy.gz")).unwrap();
    let r = bin()
        .current_dir(tmp.path())
        .args([
            "backtest",
            "--quiet",
            "--config",
            &root("configs/default.toml"),
            "--out",
            "plain",
            "--data",
            "BTCUSDT=copy.gz",
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(tmp.join("plain/report.json").is_file());
}

/// `ringmaker sweep` on the shipped recording: a 3 × 2 grid, its CSV (one row per combination,
/// the default combination's figures those of `ringmaker backtest`), summary and heatmap; bad
/// arguments refused before anything is written.
#[test]
fn sweep_writes_a_row_per_combination_a_ranked_summary_and_a_heatmap() {
    let out = test_support::TempDir::new("cli-sweep");
    let o = out.join("sweep");
    let data = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let config = root("configs/default.toml");
    let r = ringmaker(&[
        "sweep",
        "--config",
        &config,
        "--data",
        &data,
        "--set",
        "quote.start_offset=2,1,0.5",
        "--set",
        "risk.cancel_budget_per_min=50,100",
        "--jobs",
        "2",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let csv = std::fs::read_to_string(o.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(lines[0].starts_with("quote.start_offset,risk.cancel_budget_per_min,total_pnl,"));
    assert!(std::fs::metadata(o.join("heatmap.png")).unwrap().len() > 1000);
    let summary = std::fs::read_to_string(o.join("summary.txt")).unwrap();
    assert!(summary.starts_with("sweep: 6 backtests"), "{summary}");
    // The default combination (2, 50) against `ringmaker backtest` with the default config.
    let b = out.join("bt");
    let r = ringmaker(&[
        "backtest",
        "--quiet",
        "--config",
        &config,
        "--data",
        &data,
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("report.json")).unwrap()).unwrap();
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&row[..2], &["2", "50"]);
    assert_eq!(
        row[2].parse::<f64>().unwrap(),
        report["portfolio"]["total"].as_f64().unwrap()
    );
    assert_eq!(
        row[5].parse::<f64>().unwrap(),
        report["portfolio"]["fees"].as_f64().unwrap()
    );
    // Refused up front: a key that is no engine parameter, an objective that is no column, a
    // change of the instruments, a value the config rejects.
    for (args, says) in [
        (vec!["--set", "quote.no_such=1,2"], "invalid"),
        (
            vec!["--set", "quote.start_offset=1", "--objective", "luck"],
            "--objective luck",
        ),
        (
            vec!["--set", "instrument[0].tick=\"0.01\""],
            "keeps the instruments",
        ),
        (vec!["--set", "quote.start_offset=-1,1"], "invalid"),
        (vec!["--set", "nosection=1"], "say which section"),
    ] {
        let mut a = vec!["sweep", "--config", &config, "--data", &data, "--out"];
        let bad = out.join("bad");
        a.push(bad.to_str().unwrap());
        a.extend(args);
        let r = ringmaker(&a);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{says}: {err}");
        assert!(!bad.join("results.csv").exists());
    }
}
