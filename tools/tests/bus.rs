//! The bus link end to end (issue 19) against a real `nats-server` with JetStream on loopback
//! (Debian's `nats-server` package: `tests/run-all.sh` installs it and sets
//! `RINGMAKER_REQUIRE_NATS=1`, so CI cannot skip this): two paper engines publish heartbeats;
//! one `ringmaker ctl --bus ... halt` stops both within a second and each acknowledges with its
//! mode; a command for one engine reaches that one only; a bad request gets an error ack; the
//! commands are in both journals, which replay identical; the bus URL's password appears in
//! no output, journal or report.

mod common;

use common::{ringmaker, root};
use runtime::bus::{self, Heartbeat};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_engine(url: &str, name: &str, out: &Path) -> Proc {
    start_engine_with(url, name, out, &root("configs/default.toml"))
}

fn start_engine_with(url: &str, name: &str, out: &Path, config: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(["run", "--paper", "--speed", "1", "--duration", "120"])
        .args(["--status-secs", "0", "--config"])
        .arg(config)
        .arg("--data")
        .arg(root("tests/data/binance-usdm/btcusdt_20240808.gz"))
        .arg("--out")
        .arg(out)
        // Small segments: the journal archive follows the journal across them.
        .args(["--segment-mib", "1"])
        .args(["--bus", url, "--engine", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringmaker run");
    Proc(child)
}

/// The latest heartbeat of each of `names` once every one of them satisfies `ok`.
fn heartbeats_until(
    url: &str,
    names: &[&str],
    limit: Duration,
    ok: impl Fn(&Heartbeat) -> bool,
) -> Vec<Heartbeat> {
    let seen = bus::watch_heartbeats(url, "ringmaker", limit, |hs| {
        names
            .iter()
            .all(|n| hs.iter().rev().find(|h| h.engine == *n).is_some_and(&ok))
    })
    .expect("watch heartbeats");
    names
        .iter()
        .map(|n| {
            seen.iter()
                .rev()
                .find(|h| h.engine == *n)
                .unwrap_or_else(|| panic!("no heartbeat from {n} in {limit:?}: {seen:?}"))
                .clone()
        })
        .collect()
}

fn mode(h: &Heartbeat) -> &str {
    h.instruments[0].mode.as_str()
}

/// `ringmaker ctl --bus url args`: exit code, stdout, stderr, and how long it took.
fn ctl(url: &str, args: &[&str]) -> (i32, String, String, Duration) {
    let t0 = Instant::now();
    let mut all = vec!["ctl", "--bus", url];
    all.extend_from_slice(args);
    let out = ringmaker(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t0.elapsed(),
    )
}

#[test]
fn two_engines_share_the_bus_and_stop_together_on_one_command() {
    let Some(bin) = test_support::nats::nats_server_or_skip("bus") else {
        return;
    };
    let dir = test_support::TempDir::new("bus-e2e");
    let nats = test_support::nats::NatsServer::start(&bin);
    let url = nats.url.clone();
    // The second engine's URL carries credentials (a server without auth ignores them): the
    // password must show nowhere.
    let secret_url = url.replace("nats://", "nats://trader:Pa55-w0rd-bus@");
    let (out_a, out_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = start_engine(&url, "eng-a", &out_a);
    let mut b = start_engine(&secret_url, "eng-b", &out_b);

    // Both publish, with their state: quoting once their books are synced.
    let hs = heartbeats_until(&url, &["eng-a", "eng-b"], Duration::from_secs(60), |h| {
        mode(h) == "normal" && h.instruments[0].open_lots.iter().all(|&l| l > 0)
    });
    for h in &hs {
        assert_eq!(h.instruments[0].key, "binance-usdm:BTCUSDT");
        assert_eq!(h.heartbeat_ms, 500);
        assert!(h.seq >= 1 && h.journal.records > 0, "{h:?}");
        assert!(h.instruments[0].open_notional[0] > 0.0, "{h:?}");
        assert!(!h.stopping);
    }

    // One command, every engine: each acknowledges with its resulting mode, within a second.
    let (code, stdout, stderr, took) = ctl(&url, &["--expect", "2", "halt"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(took < Duration::from_secs(1), "halt took {took:?}");
    for name in ["eng-a", "eng-b"] {
        assert!(stdout.contains(&format!("{name}: ok")), "{stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name}: binance-usdm:BTCUSDT"))
                    && l.contains("halted (kill_switch)")),
            "{stdout}"
        );
    }
    let hs = heartbeats_until(&url, &["eng-a", "eng-b"], Duration::from_secs(10), |h| {
        mode(h) == "halted"
    });
    assert_eq!(hs.len(), 2);

    // One engine by name: the other stays halted.
    let (code, stdout, _, _) = ctl(&url, &["--engine", "eng-b", "resume"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with("eng-b: ok") && !stdout.contains("eng-a"),
        "{stdout}"
    );
    let hs = heartbeats_until(&url, &["eng-a", "eng-b"], Duration::from_secs(10), |h| {
        (h.engine == "eng-a") == (mode(h) == "halted")
    });
    assert_eq!((mode(&hs[0]), mode(&hs[1])), ("halted", "normal"));

    // A request no engine can take: every engine answers with an error, the exit code says so.
    let (code, stdout, _, _) = ctl(&url, &["--expect", "2", "halt", "ETHUSDT"]);
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(
        stdout.matches("no instrument \"ETHUSDT\"").count(),
        2,
        "{stdout}"
    );
    // What no operator would send: every engine answers with an error ack, and goes on.
    for bad in ["x".repeat(2000), "halt\nresume".to_owned()] {
        let acks = bus::request(
            &url,
            "ringmaker",
            None,
            &bad,
            Some(2),
            Duration::from_secs(5),
        )
        .expect("the bus");
        assert_eq!(acks.len(), 2, "{acks:?}");
        assert!(
            acks.iter()
                .all(|a| a.result.starts_with("error: a request is one line")),
            "{acks:?}"
        );
    }
    // An engine nobody runs: no ack, exit 2 with the reason.
    let (code, _, stderr, _) = ctl(&url, &["--engine", "eng-z", "--wait-ms", "300", "halt"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("0 engine(s) acknowledged"), "{stderr}");

    // A peer whose heartbeats stop (the process frozen) goes stale for the other, and live
    // again when they come back.
    // SAFETY: `kill` reads no memory of ours; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(b.0.id() as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(2_500));
    // SAFETY: as above.
    unsafe { libc::kill(b.0.id() as i32, libc::SIGCONT) };
    heartbeats_until(&url, &["eng-b"], Duration::from_secs(10), |h| {
        mode(h) == "normal"
    });
    std::thread::sleep(Duration::from_millis(200));

    // Both stop cleanly, the last heartbeat says so.
    for p in [&a, &b] {
        // SAFETY: `kill` reads no memory of ours; the pid is our own child's, not yet reaped.
        unsafe { libc::kill(p.0.id() as i32, libc::SIGINT) };
    }
    let mut outputs = Vec::new();
    for p in [&mut a, &mut b] {
        let mut text = String::new();
        if let Some(mut o) = p.0.stdout.take() {
            std::io::Read::read_to_string(&mut o, &mut text).unwrap();
        }
        if let Some(mut e) = p.0.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        }
        let status = p.0.wait().unwrap();
        assert!(status.success(), "{status:?}\n{text}");
        outputs.push(text);
    }
    for (text, name) in outputs.iter().zip(["eng-a", "eng-b"]) {
        assert!(text.contains(&format!("as engine \"{name}\"")), "{text}");
        assert!(text.contains("ringmaker run: bus: "), "{text}");
        // The two requests no operator would send, each refused once.
        assert!(text.contains(" requests (2 refused)"), "{text}");
        assert!(
            !text.contains("Pa55-w0rd-bus"),
            "the bus password in the output:\n{text}"
        );
    }
    assert!(
        outputs[1].contains("nats://***@127.0.0.1:"),
        "{}",
        outputs[1]
    );
    // What eng-a saw of eng-b: live, stale while frozen (no heartbeat for 3 periods), live.
    let seen: Vec<&str> = outputs[0]
        .lines()
        .filter_map(|l| l.strip_prefix("ringmaker run: bus: peer eng-b is "))
        .collect();
    assert!(seen.len() >= 3, "{}", outputs[0]);
    assert_eq!(seen[0], "live", "{}", outputs[0]);
    assert!(
        seen[1].starts_with("stale (no heartbeat for "),
        "{}",
        outputs[0]
    );
    assert_eq!(seen[2], "live", "{}", outputs[0]);
    assert!(
        !outputs[0].contains("another run publishes heartbeats"),
        "{}",
        outputs[0]
    );

    // The bus's commands are journaled inputs: in each journal, and replayed identical.
    for (out, halts, resumes) in [(&out_a, 1, 0), (&out_b, 1, 1)] {
        let journal = out.join("journal");
        let dump = ringmaker(&["journal", "dump", journal.to_str().unwrap()]);
        let dump = String::from_utf8_lossy(&dump.stdout);
        // The shutdown's own halt comes on top of the bus's.
        assert_eq!(
            dump.matches("event\tControl inst=0 Halt").count(),
            halts + 1,
            "{out:?}"
        );
        assert_eq!(
            dump.matches("event\tControl inst=0 Resume").count(),
            resumes,
            "{out:?}"
        );
        let replay = ringmaker(&["replay", journal.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&replay.stdout);
        assert!(text.lines().any(|l| l.starts_with("identical: ")), "{text}");
        for f in ["report.json", "journal"] {
            let p = out.join(f);
            let bytes = if p.is_dir() {
                std::fs::read_dir(&p)
                    .unwrap()
                    .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap_or_default())
                    .collect()
            } else {
                std::fs::read(&p).unwrap()
            };
            assert!(
                !bytes.windows(13).any(|w| w == b"Pa55-w0rd-bus"),
                "the bus password in {p:?}"
            );
        }
    }
}

#[test]
fn ctl_over_a_bus_nobody_serves_fails_with_the_reason() {
    let port = test_support::nats::free_port();
    let url = format!("nats://alice:hunter2@127.0.0.1:{port}");
    let (code, stdout, stderr, took) = ctl(&url, &["halt"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("the bus at nats://***@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// One sample of the run's `/metrics` on `port` (`None`: not there, or no answer).
fn metric(port: u16, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_run_whose_bus_is_away_trades_on_and_joins_when_it_comes() {
    let Some(bin) = test_support::nats::nats_server_or_skip("bus") else {
        return;
    };
    let dir = test_support::TempDir::new("bus-away");
    // A port nobody serves yet: the run starts anyway.
    let port = test_support::nats::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let out = dir.path().join("run");
    // With its metrics endpoint, to watch the link from Prometheus' side.
    let mport = test_support::nats::free_port();
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(root("configs/default.toml")).unwrap()
            + &format!("\n[ops]\nmetrics_listen = \"127.0.0.1:{mport}\"\n"),
    )
    .unwrap();
    let mut run = start_engine_with(&url, "late", &out, &cfg);
    assert!(
        common::eventually(Duration::from_secs(30), || {
            metric(mport, "ringmaker_bus_heartbeats_total{result=\"dropped\"}") >= Some(2.0)
        }),
        "heartbeats dropped while the bus is away"
    );
    assert_eq!(metric(mport, "ringmaker_bus_connected"), Some(0.0));
    assert!(
        run.0.try_wait().unwrap().is_none(),
        "the run ended while its bus was away"
    );
    // The server comes up on that port: the link connects on its own and heartbeats flow.
    let server = test_support::nats::NatsServer::start_on(&bin, port);
    let hs = heartbeats_until(&url, &["late"], Duration::from_secs(30), |h| {
        mode(h) == "normal"
    });
    assert_eq!(hs[0].engine, "late");
    assert_eq!(metric(mport, "ringmaker_bus_connected"), Some(1.0));
    assert!(metric(mport, "ringmaker_bus_heartbeats_total{result=\"sent\"}") >= Some(1.0));
    assert_eq!(
        metric(mport, "ringmaker_reconnects_total{link=\"bus\"}"),
        Some(0.0)
    );
    let (code, stdout, _, _) = ctl(&url, &["--engine", "late", "status"]);
    assert_eq!(code, 0, "{stdout}");
    // On into its journal's second segment (1 MiB each), for the archive to follow a roll-over.
    heartbeats_until(&url, &["late"], Duration::from_secs(60), |h| {
        h.journal.segment >= 1
    });
    // SAFETY: `kill` reads no memory of ours; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let mut text = String::new();
    if let Some(mut e) = run.0.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
    }
    assert!(run.0.wait().unwrap().success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ringmaker run: bus: "))
        .unwrap_or_else(|| panic!("{text}"));
    let dropped: u64 = line
        .split(" heartbeats (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    // Those due while it was away were dropped (counted), not queued.
    assert!(dropped >= 1, "{line}");
    assert!(line.contains("1 connects"), "{line}");

    // The journal archive caught up from the files once the server came: the run streamed to
    // JetStream rebuilds into a journal that replays identical and holds the same records.
    assert!(
        text.contains("ringmaker run: bus: journal archived: "),
        "{text}"
    );
    let journal = out.join("journal");
    let rebuilt = dir.path().join("rebuilt");
    let replay_from_bus = |engine: &str, into: &Path| {
        ringmaker(&[
            "replay",
            "--bus",
            &url,
            "--engine",
            engine,
            "--into",
            into.to_str().unwrap(),
        ])
    };
    let replay = replay_from_bus("late", &rebuilt);
    let said = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(said.contains("rebuilt run "), "{said}");
    assert!(said.lines().any(|l| l.starts_with("identical: ")), "{said}");
    let dump = |d: &Path| {
        let o = ringmaker(&["journal", "dump", d.to_str().unwrap()]);
        assert!(o.status.success());
        o.stdout
    };
    let (a, b) = (dump(&journal), dump(&rebuilt));
    assert!(
        !a.is_empty() && a == b,
        "the archived journal differs from the one on disk"
    );
    let segments = std::fs::read_dir(&rebuilt).unwrap().count();
    assert!(
        segments >= 2,
        "{segments} segment(s): the test wants a roll-over"
    );
    // Into a directory that holds something: refused, nothing touched.
    let replay = replay_from_bus("late", dir.path());
    assert_eq!(replay.status.code(), Some(2));
    assert!(out.join("journal").exists());
    // An engine the archive never saw.
    let replay = replay_from_bus("nobody", &dir.path().join("none"));
    assert_eq!(replay.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains("no run of engine nobody"),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    drop(server);
}
