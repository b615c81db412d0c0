//! The hot standby end to end (issue 19), against `ringmaker venue` over TLS and a real
//! `nats-server` with JetStream, every process a real `ringmaker run --live`:
//!
//! 1. a leader quotes; a standby follows its journal from the archive, replaying it;
//! 2. the leader is frozen (SIGSTOP): its lease lapses, the standby takes over and is quoting
//!    within 5 s; the leader, woken (SIGCONT), finds itself fenced, sends nothing and exits
//!    non-zero;
//! 3. a second standby follows the new leader, which is then killed (`kill -9`): the second
//!    standby is quoting within 5 s;
//! 4. from the venue's own log of every order request: no client order id was placed twice, and
//!    nothing came from the frozen leader after the takeover;
//! 5. the last leader's journal continues the first two runs' sequences (its first records are
//!    theirs, record for record), and one replay of it covers all three runs, identical.

mod common;

use common::{ringmaker, root, venue_with, VenueProc};
use runtime::bus::{self, Heartbeat};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const API_KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const API_SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
/// How soon a standby must be quoting after its leader is gone.
const TAKEOVER: Duration = Duration::from_secs(5);

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn signal(&self, sig: i32) {
        // SAFETY: `kill` reads no memory of ours; the pid is our own child's, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(v: &VenueProc, d: &Path, name: &str, url: &str, standby: bool) -> Proc {
    start_with(v, d, name, url, standby, &d.join("run.toml"))
}

fn start_with(v: &VenueProc, d: &Path, name: &str, url: &str, standby: bool, cfg: &Path) -> Proc {
    let cfg = cfg.to_path_buf();
    let log = d.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringmaker"));
    c.args(v.run_args("--live", &d.join(name), &cfg, "120"))
        .args(["--bus", url, "--engine", "eng"])
        .env("RINGMAKER_API_KEY", API_KEY)
        .env("RINGMAKER_API_SECRET", API_SECRET)
        .env_remove("RINGMAKER_ED25519_KEY_FILE")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    if standby {
        c.arg("--standby");
    }
    Proc {
        child: c.spawn().expect("start ringmaker run --live"),
        log,
    }
}

/// Whether `h` shows the engine quoting both sides.
fn quoting(h: &Heartbeat) -> bool {
    h.instruments[0].mode == "normal" && h.instruments[0].open_lots.iter().all(|&l| l > 0)
}

/// The first heartbeat of engine `eng` from a run other than `not` that shows it quoting, within
/// `wait`.
fn quoting_run(url: &str, not: &[u64], wait: Duration) -> Option<Heartbeat> {
    let seen = bus::watch_heartbeats(url, "ringmaker", wait, |hs| {
        hs.iter()
            .any(|h| h.engine == "eng" && !not.contains(&h.run_id) && quoting(h))
    })
    .expect("watch the bus");
    seen.into_iter()
        .find(|h| h.engine == "eng" && !not.contains(&h.run_id) && quoting(h))
}

/// The journal's dump, one line per record.
fn dump(journal: &Path) -> Vec<String> {
    let o = ringmaker(&["journal", "dump", journal.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| {
            l.split('\t')
                .next()
                .is_some_and(|s| s.parse::<u64>().is_ok())
        })
        .map(str::to_owned)
        .collect()
}

/// The journal a run left in `out` (committed, kept as failed, or staged by a killed run).
fn journal_of(out: &Path) -> PathBuf {
    let j = out.join("journal");
    if j.exists() {
        return j;
    }
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if (name.starts_with("failed-") || name.starts_with(".ringmaker-new-"))
            && p.join("journal").exists()
        {
            return p.join("journal");
        }
    }
    panic!("no journal in {}", out.display())
}

#[derive(Debug)]
struct Request {
    wall_ms: i64,
    from: String,
    op: String,
    cids: Vec<String>,
    ok: bool,
}

fn order_log(path: &Path) -> Vec<Request> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            Request {
                wall_ms: j["wall_ms"].as_i64().unwrap(),
                from: j["from"].to_string(),
                op: j["op"].as_str().unwrap().to_owned(),
                cids: j["client_order_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect(),
                ok: j["ok"].as_bool().unwrap(),
            }
        })
        .collect()
}

/// `rm` and the 13 digits of a run's session tag: what every client order id of that run
/// starts with.
fn tag(cid: &str) -> &str {
    &cid[..15]
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_standby_takes_over_a_frozen_and_a_killed_leader_and_continues_its_journal() {
    let Some(bin) = test_support::nats::nats_server_or_skip("failover") else {
        return;
    };
    let dir = test_support::TempDir::new("failover");
    let d = dir.path();
    let nats = test_support::nats::NatsServer::start(&bin);
    let url = nats.url.clone();
    let orders = d.join("orders.jsonl");
    let v = venue_with(
        d,
        None,
        &[
            "--accounts",
            root("configs/venue-accounts.toml").to_str().unwrap(),
            "--order-log",
            orders.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(root("configs/default.toml")).unwrap();
    std::fs::write(
        d.join("run.toml"),
        // Two live runs, the venue and the server share this host's cores: idle hot threads
        // sleep rather than spin ([cpu] idle), or they starve the server and the lease.
        format!(
            "{text}\n[bus]\nheartbeat_ms = 100\nlease_ms = 2000\n\n[cpu]\nidle = \"backoff\"\n"
        ),
    )
    .unwrap();

    // 1. The leader quotes; a second live run of the same engine without --standby is refused.
    let leader = start(&v, d, "leader", &url, false);
    let first = quoting_run(&url, &[], Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the leader never quoted:\n{}", leader.log()));
    let second = Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(v.run_args("--live", &d.join("second"), &d.join("run.toml"), "5"))
        .args(["--bus", &url, "--engine", "eng"])
        .env("RINGMAKER_API_KEY", API_KEY)
        .env("RINGMAKER_API_SECRET", API_SECRET)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(
        said.contains("already trading") && said.contains("--standby"),
        "{said}"
    );

    // The standby follows it, replaying; its metrics endpoint serves the lease once it leads.
    let metrics = format!("127.0.0.1:{}", test_support::nats::free_port());
    let run_toml = std::fs::read_to_string(d.join("run.toml")).unwrap();
    std::fs::write(
        d.join("standby.toml"),
        format!("{run_toml}\n[ops]\nmetrics_listen = \"{metrics}\"\n"),
    )
    .unwrap();
    let standby = start_with(&v, d, "standby", &url, true, &d.join("standby.toml"));
    assert!(
        common::eventually(Duration::from_secs(20), || standby
            .log()
            .contains("caught up with run")),
        "the standby never replayed:\n{}",
        standby.log()
    );

    // 2. The leader frozen: the standby quotes within 5 s.
    leader.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    let frozen_ms = wall_ms();
    let taken = quoting_run(&url, &[first.run_id], TAKEOVER + Duration::from_secs(5));
    let took = frozen.elapsed();
    let taken = taken.unwrap_or_else(|| panic!("no takeover:\n{}", standby.log()));
    assert!(
        took <= TAKEOVER,
        "the standby quoted {took:?} after the leader froze"
    );
    let log = standby.log();
    assert!(
        log.contains("took the lease") && log.contains("taking over run"),
        "{log}"
    );

    // The new leader's lease, on its /metrics (which promtool accepts).
    let text = common::http_get(&metrics, "/metrics").expect("the new leader's metrics");
    for series in [
        "ringmaker_lease_held 1",
        "ringmaker_lease_fenced 0",
        "ringmaker_lease_renewals_total{result=\"confirmed\"}",
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }
    common::promtool_check_metrics(&text);

    // Woken, the old leader is fenced: it sends nothing, stops, and says so.
    leader.signal(libc::SIGCONT);
    let mut leader = leader;
    let status = leader.child.wait().unwrap();
    let log = leader.log();
    assert!(!status.success(), "{log}");
    assert!(log.contains("fenced"), "{log}");
    assert!(
        log.contains("lease            ") && log.contains(", fenced"),
        "{log}"
    );

    // 3. A second standby follows the new leader, which is killed.
    let standby2 = start(&v, d, "standby2", &url, true);
    assert!(
        common::eventually(Duration::from_secs(30), || {
            let l = standby2.log();
            l.contains("following run") && l.contains("caught up with run")
        }),
        "the second standby never caught up:\n{}",
        standby2.log()
    );
    // The new leader's archive holds its predecessor's records too: the second standby reads
    // them all before it is hot.
    std::thread::sleep(Duration::from_secs(2));
    let mut standby = standby;
    standby.child.kill().unwrap();
    let killed = Instant::now();
    let killed_ms = wall_ms();
    let last = quoting_run(
        &url,
        &[first.run_id, taken.run_id],
        TAKEOVER + Duration::from_secs(5),
    );
    let took2 = killed.elapsed();
    assert!(
        last.is_some() && took2 <= TAKEOVER,
        "the second standby quoted after {took2:?}:\n{}\nthe first standby's log:\n{}",
        standby2.log(),
        standby.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    standby2.signal(libc::SIGTERM);
    let mut standby2 = standby2;
    let status = standby2.child.wait().unwrap();
    let log2 = standby2.log();
    eprintln!("the second standby's log:\n{log2}");
    assert!(status.success(), "{log2}");
    assert!(log2.contains(", released"), "{log2}");

    // 4. The venue's log.
    let reqs = order_log(&orders);
    let places: Vec<&str> = reqs
        .iter()
        .filter(|r| r.op == "order.place" && r.ok)
        .flat_map(|r| r.cids.iter().map(String::as_str))
        .collect();
    let distinct: BTreeSet<&str> = places.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        places.len(),
        "a client order id placed twice"
    );
    // Each run places under a tag of its own; three runs placed.
    let leader_tag = tag(reqs
        .iter()
        .find(|r| r.op == "order.place" && r.wall_ms < frozen_ms)
        .expect("the leader placed")
        .cids[0]
        .as_str())
    .to_owned();
    let tags: BTreeSet<&str> = places.iter().map(|c| tag(c)).collect();
    assert_eq!(tags.len(), 3, "{tags:?}");
    // Nothing from the frozen leader after it froze: no place under its tag, nothing at all on
    // its WebSocket API connection(s).
    let leader_conns: BTreeSet<&str> = reqs
        .iter()
        .filter(|r| r.op == "order.place" && r.cids.iter().any(|c| tag(c) == leader_tag))
        .map(|r| r.from.as_str())
        .collect();
    for r in reqs.iter().filter(|r| r.wall_ms > frozen_ms) {
        assert!(
            !(r.op == "order.place" && r.cids.iter().any(|c| tag(c) == leader_tag)),
            "a place of the fenced leader after the takeover: {r:?}"
        );
        assert!(
            !leader_conns.contains(r.from.as_str()),
            "a request on the fenced leader's connection after the takeover: {r:?}"
        );
    }
    // The killed leader placed nothing after its death (a sanity check of the log's times).
    let second_tag = tags
        .iter()
        .find(|t| {
            **t != leader_tag
                && reqs
                    .iter()
                    .any(|r| r.wall_ms < killed_ms && r.cids.iter().any(|c| tag(c) == **t))
        })
        .expect("the first standby placed")
        .to_string();
    assert!(!reqs.iter().any(|r| r.wall_ms > killed_ms + 100
        && r.op == "order.place"
        && r.cids.iter().any(|c| tag(c) == second_tag)));

    // 5. The journals: the last one holds the first two's records, and replays identical.
    let (j1, j2, j3) = (
        journal_of(&d.join("leader")),
        journal_of(&d.join("standby")),
        journal_of(&d.join("standby2")),
    );
    let (d1, d2, d3) = (dump(&j1), dump(&j2), dump(&j3));
    let settings_at = |d: &[String]| -> Vec<usize> {
        d.iter()
            .enumerate()
            .filter(|(_, l)| l.split('\t').nth(2) == Some("settings"))
            .map(|(k, _)| k)
            .collect()
    };
    // A settings record starts each run: the leader's at seq 2, each takeover's after.
    let (s2, s3) = (settings_at(&d2), settings_at(&d3));
    assert_eq!(s2.len(), 2, "{s2:?}");
    assert_eq!(s3.len(), 3, "{s3:?}");
    assert_eq!(
        d2[..s2[1]],
        d1[..s2[1]],
        "the standby's journal starts with the leader's"
    );
    assert_eq!(
        d3[..s3[2]],
        d2[..s3[2]],
        "the second's starts with the first standby's"
    );
    // The sequence goes on without a gap or a repeat (an events record is several lines).
    let mut seq = 0u64;
    for l in &d3 {
        let s: u64 = l.split('\t').next().unwrap().parse().unwrap();
        assert!(s == seq || s == seq + 1, "seq {s} after {seq}: {l}");
        seq = s;
    }
    let replay = ringmaker(&["replay", j3.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(text.lines().any(|l| l.starts_with("identical: ")), "{text}");
    let mut ops = std::collections::BTreeMap::new();
    for r in &reqs {
        *ops.entry((r.op.as_str(), r.ok)).or_insert(0u32) += 1;
    }
    eprintln!("requests at the venue: {ops:?}");
    // The inherited orders are asked about, not cancelled for ever: a refused cancel is rare.
    let refused = ops.get(&("order.cancel", false)).copied().unwrap_or(0);
    assert!(refused as usize <= places.len(), "{ops:?}");
    eprintln!(
        "takeovers: {took:?} after SIGSTOP, {took2:?} after kill -9; {} places, {} records",
        places.len(),
        d3.len()
    );
    drop(v);
}
