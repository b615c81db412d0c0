//! Operations end to end: a paper run with the metrics endpoint on, scraped and checked, scraped
//! by a real Prometheus with the shipped alert rules, and linted by `promtool check metrics`
//! (both from Debian's `prometheus` package: `tests/run-all.sh` installs it and sets
//! `RINGMAKER_REQUIRE_PROMTOOL=1`, so CI cannot skip them); `ringmaker ctl` halt, resume,
//! reload (valid, invalid, a change that cannot be made live), SIGHUP, flatten; then the metrics,
//! the journal and its replay must agree with what was done.

mod common;

use common::{http_get, root, tool};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The run as a child process; killed on drop if still there.
struct Run {
    child: Child,
    metrics: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cfg: &Path, out: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args([
            "run",
            "--paper",
            "--speed",
            "1",
            "--duration",
            "200",
            "--status-secs",
            "0",
        ])
        .arg("--config")
        .arg(cfg)
        .arg("--data")
        .arg(root("tests/data/binance-usdm/btcusdt_20240808.gz"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringmaker run");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("ringmaker run: metrics at http://") {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_owned());
            }
        }
    });
    let metrics = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the run says where its metrics are");
    Run { child, metrics }
}

/// Sends `sig` to the run (it handles SIGHUP and SIGINT).
fn signal(run: &Run, sig: i32) {
    // SAFETY: `kill` reads no memory of ours; the pid is our own child's, not yet reaped (`Run`
    // waits for it only on drop).
    let r = unsafe { libc::kill(run.child.id() as i32, sig) };
    assert_eq!(r, 0, "kill({sig})");
}

/// `GET /metrics` (the classic format: no Accept header asking for OpenMetrics).
fn scrape_text(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// Samples by `name{labels}` as printed.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (k, v) = line.rsplit_once(' ').expect("a sample line");
        m.insert(k.to_owned(), v.parse::<f64>().expect("a number"));
    }
    m
}

fn sample(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no {key} in the scrape: {:?}", m.keys().collect::<Vec<_>>()))
}

const INST: &str = "instrument=\"binance-usdm:BTCUSDT\"";

/// Scrapes until `ok` holds (30 s at most).
fn scrape_until(
    addr: &str,
    what: &str,
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = parse(&scrape_text(addr));
        if ok(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ctl(out: &Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .arg("ctl")
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("run ringmaker ctl");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A real Prometheus (Debian's package) scraping the run every second with the shipped alert
/// rules loaded: the run's series arrive through its OpenMetrics scrape and every rule loads and
/// evaluates. Killed on drop.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_checks(bin: &Path, dir: &Path, target: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let web = format!("127.0.0.1:{port}");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: ringmaker\n    static_configs:\n      - targets: [\"{target}\"]\n",
            root("configs/prometheus/alerts.yml").display()
        ),
    )
    .unwrap();
    let _p = Prometheus(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.err")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let query = |q: &str| -> Option<serde_json::Value> {
        let body = http_get(&web, &format!("/api/v1/query?query={q}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"].as_array().filter(|r| !r.is_empty())?;
        Some(v)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let wait = |q: &str| loop {
        if let Some(v) = query(q) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has no {q}: {}",
            std::fs::read_to_string(dir.join("prometheus.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let up = wait("up%7Bjob%3D%22ringmaker%22%7D");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let limit = wait("ringmaker_position_limit");
    assert_eq!(
        limit["data"]["result"][0]["metric"]["instrument"], "binance-usdm:BTCUSDT",
        "{limit}"
    );
    assert_eq!(limit["data"]["result"][0]["value"][1], "0.1", "{limit}");
    // Counters keep their names through OpenMetrics; the histogram is one.
    wait("ringmaker_orders_placed_total");
    wait("ringmaker_hop_latency_seconds_bucket");
    // Every shipped rule loaded and evaluates without error against the real series.
    let shipped = std::fs::read_to_string(root("configs/prometheus/alerts.yml"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert: "))
        .count();
    assert!(shipped >= 19, "{shipped}");
    let rules = loop {
        let body = http_get(&web, "/api/v1/rules").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let rules: Vec<serde_json::Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        if rules.len() == shipped
            && rules
                .iter()
                .all(|r| r["lastEvaluation"] != "0001-01-01T00:00:00Z")
        {
            break rules;
        }
        assert!(Instant::now() < deadline, "the rules did not load: {v}");
        std::thread::sleep(Duration::from_millis(250));
    };
    for r in &rules {
        assert_eq!(r["health"], "ok", "{r}");
    }
}

/// Metric names the shipped alert rules and dashboard use.
fn names_used() -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for f in [
        "configs/prometheus/alerts.yml",
        "configs/grafana/ringmaker.json",
    ] {
        let text = std::fs::read_to_string(root(f)).unwrap();
        let mut rest = text.as_str();
        while let Some(k) = rest.find("ringmaker_") {
            let tail = &rest[k..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
                .unwrap_or(tail.len());
            let before = rest[..k].chars().last();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '#' || c == '/') {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names.into_iter().collect()
}

#[test]
fn metrics_control_and_reload_agree_with_the_journal_and_its_replay() {
    let dir = test_support::TempDir::new("ops-e2e");
    let base = std::fs::read_to_string(root("configs/default.toml")).unwrap();
    let base = format!("{base}\n[ops]\nmetrics_listen = \"127.0.0.1:0\"\n");
    assert!(base.contains("start_offset = 2.0 "));
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, &base).unwrap();
    let out = dir.path().join("out");
    let run = start(&cfg, &out);
    let addr = run.metrics.clone();

    // ---- the scrape: quoting, with the config's limits ---------------------------------
    let m = scrape_until(&addr, "quotes", |m| {
        m.get(&format!("ringmaker_orders_placed_total{{{INST}}}"))
            .is_some_and(|v| *v > 0.0)
            && m.get(&format!("ringmaker_mode{{{INST},mode=\"normal\"}}")) == Some(&1.0)
            && m.keys().any(|k| {
                k.starts_with("ringmaker_hop_latency_seconds_count{hop=\"tick_to_intent\"}")
            })
    });
    assert_eq!(
        sample(&m, &format!("ringmaker_position_limit{{{INST}}}")),
        0.1
    );
    assert_eq!(
        sample(&m, &format!("ringmaker_cancel_budget_per_minute{{{INST}}}")),
        50.0
    );
    assert_eq!(sample(&m, &format!("ringmaker_book_valid{{{INST}}}")), 1.0);
    assert_eq!(sample(&m, "ringmaker_build_info{version=\"0.3.0\"}"), 1.0);
    assert!(sample(&m, "ringmaker_journal_bytes") > 0.0);
    assert!(sample(&m, "ringmaker_engine_events_total") > 0.0);
    let bid = sample(
        &m,
        &format!("ringmaker_market_best_price{{{INST},side=\"bid\"}}"),
    );
    let ask = sample(
        &m,
        &format!("ringmaker_market_best_price{{{INST},side=\"ask\"}}"),
    );
    let fv = sample(&m, &format!("ringmaker_fair_value{{{INST}}}"));
    // The fair value is priced from the freshest top of book (a bookTicker may be newer than
    // the depth book these come from): near the touch, not always inside it.
    assert!(
        bid < ask && (fv - (bid + ask) / 2.0).abs() < 10.0,
        "{bid} {fv} {ask}"
    );
    assert!((50_000.0..80_000.0).contains(&fv), "{fv}");
    assert_eq!(
        sample(&m, &format!("ringmaker_open_orders{{{INST},side=\"bid\"}}"))
            + sample(&m, &format!("ringmaker_open_orders{{{INST},side=\"ask\"}}")),
        m.iter()
            .filter(|(k, _)| k.starts_with("ringmaker_open_orders{"))
            .map(|(_, v)| v)
            .sum::<f64>()
    );
    // Every metric the shipped alerts and dashboard use is served (those of a live venue
    // session, a live clock or the bus aside: a paper run from a recording has none of them).
    let text = scrape_text(&addr);
    let live_only = [
        "ringmaker_clock_offset_seconds",
        "ringmaker_clock_synchronised",
        "ringmaker_clock_maxerror_seconds",
        "ringmaker_venue_rate_limited_total",
        // A run with [bus] only (tools/tests/bus.rs and firm.rs scrape them).
        "ringmaker_bus_connected",
        "ringmaker_bus_peers",
        "ringmaker_bus_archive_records_total",
        // A live run that leads its engine name by a lease (tools/tests/failover.rs scrapes
        // them).
        "ringmaker_lease_held",
        "ringmaker_lease_fenced",
        // A run with [firm] only (tools/tests/firm.rs scrapes it).
        "ringmaker_firm_halted",
        "ringmaker_firm_claim_usd",
        "ringmaker_firm_room_usd",
        "ringmaker_firm_pnl_usd",
    ];
    for name in names_used() {
        if live_only.contains(&name.as_str()) {
            continue;
        }
        // A family without samples yet (no reject so far) is announced by its TYPE line.
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} "))
                    || l.starts_with(&format!("# TYPE {base} histogram"))),
            "{name} is used by configs/ but not served"
        );
    }
    if let Some(p) = tool("RINGMAKER_PROMETHEUS", "prometheus") {
        prometheus_checks(&p, dir.path(), &addr);
    }
    common::promtool_check_metrics(&text);
    // The socket is the run user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("ctl.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // ---- halt, resume ------------------------------------------------------------------
    let (code, said) = ctl(&out, &["halt"]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.starts_with("ok\n") && said.contains("halted (kill_switch)"),
        "{said}"
    );
    let m = parse(&scrape_text(&addr));
    assert_eq!(
        sample(&m, &format!("ringmaker_mode{{{INST},mode=\"halted\"}}")),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            &format!("ringmaker_mode_reason{{{INST},reason=\"kill_switch\"}}")
        ),
        1.0
    );
    let (code, said) = ctl(&out, &["resume", "BTCUSDT"]);
    assert_eq!(code, 0, "{said}");
    assert!(!said.contains("kill_switch"), "{said}");
    let (code, said) = ctl(&out, &["status"]);
    assert_eq!(code, 0, "{said}");
    let (code, said) = ctl(&out, &["halt", "ETHUSDT"]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("no instrument \"ETHUSDT\""), "{said}");

    // ---- reload: valid, invalid, not live-changeable, SIGHUP ---------------------------
    std::fs::write(
        &cfg,
        base.replace("start_offset = 2.0 ", "start_offset = 1.0 ")
            .replace("cancel_budget_per_min = 50", "cancel_budget_per_min = 60"),
    )
    .unwrap();
    let (code, said) = ctl(&out, &["reload"]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("instrument[0].quote.start_offset: 2.0 → 1.0")
            && said.contains("instrument[0].risk.cancel_budget_per_min: 50 → 60"),
        "{said}"
    );
    // The endpoint serves the limits in force.
    let m = parse(&scrape_text(&addr));
    assert_eq!(
        sample(&m, &format!("ringmaker_cancel_budget_per_minute{{{INST}}}")),
        60.0
    );
    std::fs::write(
        &cfg,
        base.replace("start_offset = 2.0 ", "start_offset = -1.0 "),
    )
    .unwrap();
    let (code, said) = ctl(&out, &["reload"]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.starts_with("refused: ") && said.contains("is not a valid config"),
        "{said}"
    );
    assert!(said.contains("the running config is kept"), "{said}");
    std::fs::write(
        &cfg,
        base.replace("start_offset = 2.0 ", "start_offset = 1.0 ")
            .replace("tick = \"0.10\"", "tick = \"0.20\""),
    )
    .unwrap();
    let (code, said) = ctl(&out, &["reload"]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("instrument definition"), "{said}");
    std::fs::write(
        &cfg,
        base.replace("start_offset = 2.0 ", "start_offset = 1.5 "),
    )
    .unwrap();
    signal(&run, libc::SIGHUP);
    let m = scrape_until(&addr, "the SIGHUP reload", |m| {
        m.get("ringmaker_config_reloads_total{result=\"applied\"}") == Some(&2.0)
    });
    assert_eq!(
        sample(&m, "ringmaker_config_reloads_total{result=\"refused\"}"),
        2.0
    );
    assert_eq!(
        sample(&m, "ringmaker_control_commands_total{command=\"reload\"}"),
        4.0
    );
    assert_eq!(
        sample(&m, "ringmaker_control_commands_total{command=\"halt\"}"),
        2.0
    );
    assert_eq!(
        sample(&m, "ringmaker_control_commands_total{command=\"resume\"}"),
        1.0
    );

    // ---- flatten, then stop ----------------------------------------------------------------
    let (code, said) = ctl(&out, &["flatten"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("halted (flatten)"), "{said}");
    // SIGINT asks the run to stop cleanly.
    signal(&run, libc::SIGINT);
    let mut run = run;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        !out.join("ctl.sock").exists(),
        "the socket goes with the run"
    );
    let (code, said) = ctl(&out, &["status"]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("no run is answering"), "{said}");

    // ---- the journal holds what was done, and replays it --------------------------------
    let journal = out.join("journal");
    let dump = common::ringmaker(&["journal", "dump", journal.to_str().unwrap()]);
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    let count = |s: &str| dump.lines().filter(|l| l.contains(s)).count();
    assert_eq!(
        count("Control inst=0 Halt"),
        1 + 1,
        "the operator's and the shutdown's"
    );
    assert_eq!(count("Control inst=0 Resume"), 1);
    assert_eq!(count("Control inst=0 Reload"), 2);
    assert_eq!(count("\treload\t"), 2);
    assert_eq!(count("Control inst=0 Flatten"), 1);
    assert!(dump.contains("(KillSwitch)") && dump.contains("(Flatten)"));
    let replay = common::ringmaker(&["replay", journal.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{said}");
    assert!(said.starts_with("identical: "), "{said}");
    assert!(
        said.contains("hot reloads applied at their journaled points: 2"),
        "{said}"
    );
}
