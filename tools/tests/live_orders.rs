//! `ringmaker run --live` end to end against `ringmaker venue` over TLS on localhost: both real
//! binaries, the shipped recording replayed by the venue at 10x, real signed orders on the
//! venue's WebSocket API, its user data stream and REST. What the venue holds at the end is
//! read back independently over REST and compared with what the engine says.

use gateway::binance::sign::{Credentials, Secret};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use test_support::TempDir;

mod common;
use common::{eventually, ringmaker, root, venue_with, VenueProc, API_KEY, API_SECRET};

fn accounts_venue(dir: &Path, faults: Option<&str>) -> VenueProc {
    let accounts = root("configs/venue-accounts.toml");
    venue_with(dir, faults, &["--accounts", accounts.to_str().unwrap()])
}

/// The default config plus `extra` (a `[venue]` table).
fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root("configs/default.toml")).unwrap();
    let p = dir.join("cfg.toml");
    std::fs::write(&p, format!("{text}\n{extra}\n")).unwrap();
    p
}

fn live_cmd(v: &VenueProc, out: &Path, cfg: &Path, duration: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringmaker"));
    c.args(v.run_args("--live", out, cfg, duration))
        .env("RINGMAKER_API_KEY", API_KEY)
        .env("RINGMAKER_API_SECRET", API_SECRET)
        .env_remove("RINGMAKER_ED25519_KEY_FILE");
    c
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn live(v: &VenueProc, out: &Path, cfg: &Path, duration: &str) -> Output {
    let o = live_cmd(v, out, cfg, duration).output().expect("run");
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// What the venue holds for the HMAC account: (open orders, position in lots of 0.001).
fn venue_state(v: &VenueProc) -> (usize, i64) {
    venue_state_of(
        v,
        Credentials::hmac(API_KEY, &Secret::new(API_SECRET)).unwrap(),
    )
}

/// What the venue holds for the account of `creds`.
fn venue_state_of(v: &VenueProc, creds: Credentials) -> (usize, i64) {
    common::account_state(v, creds, "BTCUSDT")
}

/// The engine's final position (lots of 0.001) from the run's report.json.
fn engine_position(out: &Path) -> i64 {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let btc = report["instruments"]["BTCUSDT"]["position"]["final"]
        .as_f64()
        .unwrap_or_else(|| panic!("no final position in {report}"));
    (btc * 1000.0).round() as i64
}

/// The number just before ` word` in `line` (`233 places` → 233).
fn count_before(line: &str, word: &str) -> u64 {
    let i = line
        .find(&format!(" {word}"))
        .unwrap_or_else(|| panic!("no {word:?} in {line}"));
    let head = &line[..i];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |k| k + 1);
    head[start..]
        .parse()
        .unwrap_or_else(|_| panic!("no number before {word:?} in {line}"))
}

/// The summary line that starts with `label`.
fn summary_line<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line:\n{stdout}"))
}

fn dump(journal: &Path) -> String {
    let o = ringmaker(&["journal", "dump", journal.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn replays_identically(journal: &Path) {
    let r = ringmaker(&["replay", journal.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && text.contains("identical"), "{text}");
}

#[test]
fn a_live_run_places_fills_and_cancels_and_ends_with_the_venues_view_equal_to_the_engines() {
    let dir = TempDir::new("live-orders");
    let v = accounts_venue(dir.path(), None);
    let cfg = config(
        dir.path(),
        "[venue]\ncountdown_secs = 120\ncountdown_every_secs = 2\n",
    );
    let out = dir.join("out");
    // Twelve seconds of wall time at 10x: two minutes of the recording.
    let o = live(&v, &out, &cfg, "12");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("live run: duration reached"), "{stdout}");
    let line = summary_line(&stdout, "order entry");
    assert!(count_before(line, "places") > 20, "{line}");
    assert!(count_before(line, "cancels") > 5, "{line}");
    assert!(count_before(line, "fills") > 0, "{line}");
    // What the venue holds, asked independently: nothing open, the engine's position.
    let (open, venue_pos) = venue_state(&v);
    assert_eq!(open, 0, "orders left open at the venue");
    assert_eq!(
        venue_pos,
        engine_position(&out),
        "position: venue vs engine"
    );
    assert!(
        stdout.contains("open orders      0 at the venue after the drain"),
        "{stdout}"
    );
    // Reconciled once, before any order: the first Place follows OrderEntryUp.
    let text = dump(&out.join("journal"));
    let up = text.find("OrderEntryUp").expect("OrderEntryUp journaled");
    let down = text
        .find("OrderEntryDown")
        .expect("OrderEntryDown journaled");
    let first_place = text.find("intent\tPlace").expect("a Place");
    assert!(
        down < up && up < first_place,
        "down {down}, up {up}, place {first_place}"
    );
    assert!(
        text.contains("ReconcilePosition inst=0 qty=0"),
        "a flat start"
    );
    replays_identically(&out.join("journal"));
}

#[test]
fn the_api_key_and_secret_appear_nowhere_in_the_output_directory_or_the_logs() {
    let dir = TempDir::new("live-secrets");
    let v = accounts_venue(dir.path(), None);
    // With the metrics endpoint on: the scrapes and a control answer are checked too.
    let cfg = config(dir.path(), "[ops]\nmetrics_listen = \"127.0.0.1:0\"");
    let out = dir.join("out");
    let mut child = live_cmd(&v, &out, &cfg, "6")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut r = std::io::BufReader::new(err);
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) > 0 {
            if let Some(a) = line
                .trim()
                .strip_prefix("ringmaker run: metrics at http://")
            {
                let _ = tx.send(a.trim_end_matches("/metrics").to_owned());
            }
            all.extend_from_slice(line.as_bytes());
            line.clear();
        }
        all
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("metrics address");
    let mut scrapes = Vec::new();
    let live_session = eventually(Duration::from_secs(20), || {
        let text = scrape(&addr);
        let seen = text.contains("ringmaker_reconnects_total{link=\"order_entry\"}")
            && text.contains("ringmaker_orders_placed_total");
        scrapes.push(text);
        seen
    });
    assert!(
        live_session,
        "{}",
        scrapes.last().cloned().unwrap_or_default()
    );
    let status = common::ringmaker(&["ctl", "--out", out.to_str().unwrap(), "status"]);
    assert!(status.status.success(), "{status:?}");
    let o = child.wait_with_output().unwrap();
    let stderr_bytes = stderr.join().unwrap();
    assert!(
        o.status.success(),
        "{}",
        String::from_utf8_lossy(&stderr_bytes)
    );
    for needle in [API_SECRET, API_KEY] {
        for text in &scrapes {
            assert!(!text.contains(needle), "in a scrape");
        }
        assert!(
            !contains(&status.stdout, needle.as_bytes()),
            "in ctl status"
        );
        assert!(!contains(&stderr_bytes, needle.as_bytes()), "in stderr");
    }
    let files = files_under(&out);
    assert!(files.len() >= 3, "{files:?}");
    for needle in [API_SECRET, API_KEY] {
        assert!(!contains(&o.stdout, needle.as_bytes()), "in stdout");
        assert!(!contains(&o.stderr, needle.as_bytes()), "in stderr");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(!contains(&bytes, needle.as_bytes()), "in {}", f.display());
        }
    }
    // A key the venue refuses: the run ends with a clear error that does not repeat the secret.
    let o = live_cmd(&v, &dir.join("out2"), &cfg, "3")
        .env("RINGMAKER_API_SECRET", "0".repeat(64))
        .output()
        .unwrap();
    for stream in [&o.stdout, &o.stderr] {
        assert!(!contains(stream, "0".repeat(64).as_bytes()));
        assert!(!contains(stream, API_KEY.as_bytes()));
    }
    // No key at all: refused before anything starts.
    let o = live_cmd(&v, &dir.join("out3"), &cfg, "3")
        .env_remove("RINGMAKER_API_KEY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("RINGMAKER_API_KEY"), "{err}");
    assert!(!contains(&o.stderr, API_SECRET.as_bytes()));
}

/// `GET /metrics` on `addr` (empty when it fails).
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

#[test]
fn after_kill_9_the_venue_cancels_everything_when_the_dead_man_switch_runs_out() {
    let dir = TempDir::new("live-kill-countdown");
    let v = accounts_venue(dir.path(), None);
    // 20 s of venue time (2 s of wall time at 10x), refreshed every second of wall time.
    let cfg = config(
        dir.path(),
        "[venue]\ncountdown_secs = 20\ncountdown_every_secs = 1\n",
    );
    let mut child = live_cmd(&v, &dir.join("out"), &cfg, "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || venue_state(&v).0 > 5),
        "the run never had orders working"
    );
    // Refreshed while alive: orders stay for longer than one countdown.
    std::thread::sleep(Duration::from_secs(3));
    assert!(venue_state(&v).0 > 0, "orders gone while the run was alive");
    child.kill().unwrap(); // SIGKILL: no cancel, no disarm
    child.wait().unwrap();
    let left = venue_state(&v).0;
    assert!(left > 0, "nothing was left working to test the switch");
    assert!(
        eventually(Duration::from_secs(8), || venue_state(&v).0 == 0),
        "{left} orders still open 8 s after the kill"
    );
}

#[test]
fn a_restart_after_kill_9_adopts_the_position_and_cancels_the_leftovers_before_it_quotes() {
    let dir = TempDir::new("live-kill-restart");
    let v = accounts_venue(dir.path(), None);
    // A long countdown: the leftovers are still there at the restart.
    let cfg = config(
        dir.path(),
        "[venue]\ncountdown_secs = 600\ncountdown_every_secs = 5\n",
    );
    let mut child = live_cmd(&v, &dir.join("out1"), &cfg, "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(30), || {
        let (open, pos) = venue_state(&v);
        open > 5 && pos != 0
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        ready,
        "the first run never held a position and working orders"
    );
    let (left, pos_at_kill) = venue_state(&v);
    let out = dir.join("out2");
    let o = live(&v, &out, &cfg, "6");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let text = dump(&out.join("journal"));
    let up = text.find("OrderEntryUp").expect("reconciled");
    let first_place = text.find("intent\tPlace").expect("quoting resumed");
    assert!(up < first_place, "a Place before the reconciliation ended");
    // Before quoting: every leftover reported, cancelled, and the cancel answered.
    let before = &text[..up];
    let reconciled = before.matches("event\tReconcileOrder").count();
    assert!(
        reconciled >= left.min(1),
        "{reconciled} orders reconciled, {left} left"
    );
    let cancels: Vec<&str> = before
        .lines()
        .filter(|l| l.contains("intent\tCancel"))
        .filter_map(|l| l.split("cid=").nth(1)?.split(' ').next())
        .collect();
    assert!(!cancels.is_empty(), "no leftover cancelled");
    // Answered: an execution report for it, or (the venue no longer knew it: filled or gone
    // meanwhile) its status as a reconciliation event, after the cancel.
    for cid in &cancels {
        let tag = format!("cid={cid} ");
        let lines: Vec<&str> = before.lines().collect();
        let sent = lines
            .iter()
            .position(|l| l.contains("intent\tCancel") && l.contains(&tag))
            .unwrap();
        assert!(
            lines[sent + 1..]
                .iter()
                .any(|l| l.contains(&tag)
                    && (l.contains("ExecReport") || l.contains("ReconcileOrder"))),
            "the cancel of {cid} was not answered before quoting resumed"
        );
    }
    // The position adopted: the venue's, not zero.
    let adopted = before
        .lines()
        .find_map(|l| l.split("ReconcilePosition inst=0 qty=").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|q| q.parse::<i64>().ok())
        .expect("a ReconcilePosition");
    assert_ne!(
        adopted, 0,
        "the position at the restart (venue had {pos_at_kill} at the kill)"
    );
    // And at the end the venue and the engine agree.
    let (open, venue_pos) = venue_state(&v);
    assert_eq!(open, 0, "{stdout}");
    assert_eq!(venue_pos, engine_position(&out), "{stdout}");
    replays_identically(&out.join("journal"));
}

#[test]
fn under_venue_faults_every_order_is_accounted_for_and_no_id_is_sent_twice() {
    let dir = TempDir::new("live-faults-orders");
    // Venue time at 10x: every 7th placement's answer lost, every connection cut every 30 s,
    // the listenKey expired early at 40 s, every 5th REST call a 503.
    let v = accounts_venue(
        dir.path(),
        Some(
            "ack-drop@every=7;drop-connections@every=30s;listenkey-expire@at=40s;rest-5xx@every=5",
        ),
    );
    let cfg = config(
        dir.path(),
        "[venue]\nack_timeout_ms = 500\ncountdown_secs = 120\ncountdown_every_secs = 2\n",
    );
    // The Ed25519 account this time (its key file must be private to its owner).
    let key = dir.join("ed25519.pem");
    std::fs::copy(
        root("tests/data/signatures/python-binance_ed25519_test_key.pem"),
        &key,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = dir.join("out");
    let o = live_cmd(&v, &out, &cfg, "12")
        .env("RINGMAKER_API_KEY", "ed25519-test-key-python-binance")
        .env_remove("RINGMAKER_API_SECRET")
        .env("RINGMAKER_ED25519_KEY_FILE", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let entry = summary_line(&stdout, "order entry");
    let links = summary_line(&stdout, "venue links");
    assert!(count_before(entry, "status queries") > 0, "{entry}");
    // Every fill is followed by the position after it, which the engine checks its own against.
    if count_before(entry, "fills") > 0 {
        assert!(count_before(entry, "positions streamed") > 0, "{entry}");
    }
    assert!(count_before(links, "lost") >= 2, "{links}");
    assert!(count_before(links, "listenKey expiries") >= 1, "{links}");
    assert!(count_before(links, "reconciliations") >= 3, "{links}");
    assert_eq!(count_before(links, "429s"), 0, "{stdout}");
    let rest = summary_line(&stdout, "venue REST");
    assert!(
        count_before(rest, "dead-man switch refreshes") > 0,
        "{rest}"
    );
    // Each lost WebSocket API pulled the quotes over REST at once.
    assert!(
        count_before(rest, "cancel-alls on a lost WebSocket API") >= 1,
        "{rest}"
    );
    // Every place intent was written once at most (a lost answer is asked about, never re-sent
    // under a new id): the journal's Place intents are the places written plus those refused.
    let text = dump(&out.join("journal"));
    let place_intents = text.matches("intent\tPlace").count() as u64;
    let written = count_before(entry, "places");
    let refused = count_before(entry, "refused down") + count_before(entry, "refused for limits");
    assert_eq!(place_intents, written + refused, "{entry}");
    let mut cids: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("intent\tPlace"))
        .filter_map(|l| l.split("cid=").nth(1)?.split(' ').next())
        .collect();
    let n = cids.len();
    cids.sort_unstable();
    cids.dedup();
    assert_eq!(cids.len(), n, "an engine id placed twice");
    // Nothing the venue saw is unaccounted for: nothing left open, the same position.
    let creds = Credentials::ed25519_key_file("ed25519-test-key-python-binance", &key).unwrap();
    let (open, venue_pos) = venue_state_of(&v, creds);
    assert_eq!(open, 0);
    assert_eq!(venue_pos, engine_position(&out), "{stdout}");
    assert_eq!(count_before(links, "418s"), 0, "{links}");
    replays_identically(&out.join("journal"));
}

#[test]
fn sigterm_cancels_everything_and_waits_for_the_answers_before_it_exits() {
    let dir = TempDir::new("live-sigterm");
    let v = accounts_venue(dir.path(), None);
    let cfg = config(
        dir.path(),
        "[venue]\ncountdown_secs = 600\ncountdown_every_secs = 5\n",
    );
    let out = dir.join("out");
    let child = live_cmd(&v, &out, &cfg, "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || venue_state(&v).0 > 5),
        "the run never had orders working"
    );
    // SAFETY: kill(2) on our own child's pid, a plain syscall.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("live run:"), "{stdout}");
    // Nothing left working, with the long dead-man countdown still far away: the run's own
    // cancels did it.
    let (open, venue_pos) = venue_state(&v);
    assert_eq!(open, 0, "{stdout}");
    assert_eq!(venue_pos, engine_position(&out), "{stdout}");
    replays_identically(&out.join("journal"));
}

#[test]
fn engine_budgets_above_the_accounts_limits_are_refused_before_anything_starts() {
    let dir = TempDir::new("live-budgets");
    let v = accounts_venue(dir.path(), None);
    let text = std::fs::read_to_string(root("configs/default.toml"))
        .unwrap()
        .replace("orders_per_10s = 300", "orders_per_10s = 400");
    let cfg = dir.join("cfg.toml");
    std::fs::write(&cfg, text).unwrap();
    let o = live_cmd(&v, &dir.join("out"), &cfg, "3").output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("account_orders_per_10s = 300"), "{err}");
    assert!(!dir.join("out").exists(), "nothing written");
    assert_eq!(venue_state(&v).0, 0);
}

#[test]
fn with_adopt_unknown_orders_a_restart_takes_the_leftovers_over_instead_of_cancelling_them() {
    let dir = TempDir::new("live-kill-adopt");
    let v = accounts_venue(dir.path(), None);
    let text = std::fs::read_to_string(root("configs/default.toml"))
        .unwrap()
        .replacen("[engine]\n", "[engine]\nadopt_unknown_orders = true\n", 1);
    assert!(text.contains("adopt_unknown_orders = true"));
    let cfg = dir.join("cfg.toml");
    std::fs::write(
        &cfg,
        format!("{text}\n[venue]\ncountdown_secs = 600\ncountdown_every_secs = 5\n"),
    )
    .unwrap();
    let mut child = live_cmd(&v, &dir.join("out1"), &cfg, "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(30), || venue_state(&v).0 > 5);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "the first run never had working orders");
    let out = dir.join("out2");
    let o = live(&v, &out, &cfg, "6");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("taken over"), "{stderr}");
    let text = dump(&out.join("journal"));
    let up = text.find("OrderEntryUp").expect("reconciled");
    let before = &text[..up];
    assert!(
        before.contains("event\tReconcileOrder"),
        "leftovers reported"
    );
    let why: Vec<&str> = before
        .lines()
        .filter(|l| l.contains("intent\t") || l.contains("Reconcile") || l.contains("Control"))
        .collect();
    assert!(
        !before.contains("intent\tCancel"),
        "a leftover cancelled instead of taken over:\n{}",
        why.join("\n")
    );
    // Whatever the engine did with them afterwards, the venue and the engine agree at the end.
    let (open, venue_pos) = venue_state(&v);
    assert_eq!(open, 0);
    assert_eq!(venue_pos, engine_position(&out));
    replays_identically(&out.join("journal"));
}
