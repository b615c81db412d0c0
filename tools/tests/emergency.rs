//! `ringmaker emergency cancel-all|flatten` against `ringmaker venue` (both real binaries, TLS on
//! localhost, the shipped recording replayed at 10x): a `ringmaker run --live` is killed with
//! `-9` while it has orders working, and the emergency command, talking to the venue over REST
//! alone, leaves the account with nothing open (and, with `flatten`, flat). What the venue holds
//! is read back independently over REST.

use gateway::binance::rest::{RestClient, RestError, RestOptions};
use gateway::binance::sign::{Credentials, Secret, Signer};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::TempDir;

mod common;
use common::{eventually, root, venue_with, VenueProc};

/// The venue's first test account (`configs/venue-accounts.toml`: Binance's documented example
/// key pair, public, not a secret of anyone's).
const API_KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const API_SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

fn accounts_venue(dir: &Path) -> VenueProc {
    let accounts = root("configs/venue-accounts.toml");
    venue_with(dir, None, &["--accounts", accounts.to_str().unwrap()])
}

/// The default config with a dead-man countdown long enough that the venue never cancels for
/// the test (600 s of venue time: a minute of wall time at 10x).
fn config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root("configs/default.toml")).unwrap();
    let p = dir.join("cfg.toml");
    std::fs::write(
        &p,
        format!("{text}\n[venue]\ncountdown_secs = 600\ncountdown_every_secs = 5\n"),
    )
    .unwrap();
    p
}

fn with_keys(mut c: Command) -> Command {
    c.env("RINGMAKER_API_KEY", API_KEY)
        .env("RINGMAKER_API_SECRET", API_SECRET)
        .env_remove("RINGMAKER_ED25519_KEY_FILE");
    c
}

/// `ringmaker emergency ACTION` against `v` with the test account's keys and `extra`
/// arguments; standard input from `stdin`.
fn emergency_cmd(v: &VenueProc, action: &str, cfg: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["--venue-url", &v.rest, "--ca-cert", &v.cert];
    args.extend_from_slice(extra);
    emergency_args(action, cfg, &args)
}

/// `ringmaker emergency ACTION --config CFG ARGS...` with the test account's keys.
fn emergency_args(action: &str, cfg: &Path, args: &[&str]) -> Command {
    let mut c = with_keys(Command::new(env!("CARGO_BIN_EXE_ringmaker")));
    c.args(["emergency", action, "--config"])
        .arg(cfg)
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Runs `c` to its end, killing it (and failing) after `limit`: nothing may hang.
fn finish(mut c: Command, limit: Duration) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, limit)
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let end = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The test account's REST client at `v`.
fn client(v: &VenueProc) -> RestClient {
    let creds = Credentials::hmac(API_KEY, &Secret::new(API_SECRET)).unwrap();
    let signer: Arc<dyn Signer + Send + Sync> = Arc::new(creds);
    RestClient::new(
        &v.rest,
        Some(Path::new(&v.cert)),
        signer,
        RestOptions::default(),
    )
    .unwrap()
}

/// What the venue holds for the test account: (open orders, position in lots of 0.001).
fn venue_state(v: &VenueProc) -> (usize, i64) {
    let rest = client(v);
    let open = rest.open_orders("BTCUSDT").expect("open orders").len();
    let pos = rest
        .position("BTCUSDT")
        .expect("position")
        .map_or(0.0, |p| p.position_amt.parse::<f64>().unwrap());
    (open, (pos * 1000.0).round() as i64)
}

/// A `ringmaker run --live` against `v` until `ready` says so about the venue's state, then
/// killed with SIGKILL: the engine dead, whatever it had working left at the venue.
fn kill_a_live_run_when(
    v: &VenueProc,
    dir: &Path,
    cfg: &Path,
    ready: impl Fn((usize, i64)) -> bool,
) {
    let mut c = with_keys(Command::new(env!("CARGO_BIN_EXE_ringmaker")));
    c.args(v.run_args("--live", &dir.join("out"), cfg, "60"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let ok = eventually(Duration::from_secs(40), || ready(venue_state(v)));
    child.kill().unwrap(); // SIGKILL: no cancel, no disarm
    child.wait().unwrap();
    assert!(ok, "the live run never got there: {:?}", venue_state(v));
}

/// A pseudo-terminal: `(master, slave)`; the slave is a terminal for the child's stdin.
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd as _;
    // SAFETY: plain libc calls on a descriptor this function owns; the name buffer is large
    // enough and NUL-terminated by ptsname_r on success.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0, "grantpt");
        assert_eq!(libc::unlockpt(m), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (std::fs::File::from_raw_fd(m), slave)
    }
}

#[test]
fn cancel_all_after_a_kill_9_leaves_no_open_orders_and_asks_first() {
    let dir = TempDir::new("emergency-cancel-all");
    let v = accounts_venue(dir.path());
    let cfg = config(dir.path());
    kill_a_live_run_when(&v, dir.path(), &cfg, |(open, _)| open > 5);
    let left = venue_state(&v).0;
    assert!(left > 0);

    // No terminal and no --yes: refused, nothing sent.
    let o = finish(
        emergency_cmd(&v, "cancel-all", &cfg, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("BTCUSDT") && out.contains("open order(s)"),
        "{}",
        text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--yes") && err.contains("nothing was done"),
        "{err}"
    );
    assert!(venue_state(&v).0 > 0, "orders cancelled without a yes");

    // At a terminal, anything but "yes" aborts.
    let (mut master, slave) = pty();
    let mut c = emergency_cmd(&v, "cancel-all", &cfg, &[]);
    c.stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    master.write_all(b"no\n").unwrap();
    let o = wait_output(child, Duration::from_secs(60));
    drop(master);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("type yes to cancel"), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("aborted: nothing was done"),
        "{}",
        text(&o)
    );
    assert!(venue_state(&v).0 > 0, "orders cancelled after a no");

    // --yes: everything cancelled, read back, and said.
    let o = finish(
        emergency_cmd(&v, "cancel-all", &cfg, &["--yes"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("cancel-all:") && out.contains(", 0 left"),
        "{out}"
    );
    eprintln!("left at the kill: {left}\n{out}");
    assert_eq!(venue_state(&v).0, 0, "{out}");
    for stream in [&o.stdout, &o.stderr] {
        assert!(!contains(stream, API_SECRET));
    }
    // Again: nothing to do.
    let o = finish(
        emergency_cmd(&v, "cancel-all", &cfg, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
}

#[test]
fn flatten_after_a_kill_9_closes_the_position_with_a_reduce_only_market_order() {
    let dir = TempDir::new("emergency-flatten");
    let v = accounts_venue(dir.path());
    let cfg = config(dir.path());
    kill_a_live_run_when(&v, dir.path(), &cfg, |(open, pos)| open > 0 && pos != 0);
    // First the orders (so that no fill moves the position any more), then the position.
    let o = finish(
        emergency_cmd(&v, "cancel-all", &cfg, &["--yes", "--symbol", "btcusdt"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("the position stays (flatten closes it)"),
        "{out}"
    );
    let (open, pos) = venue_state(&v);
    assert_eq!(open, 0);
    assert_ne!(
        pos, 0,
        "no position left to flatten (fills after the kill closed it)"
    );

    let o = finish(
        emergency_cmd(&v, "flatten", &cfg, &["--yes"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let side = if pos > 0 { "SELL" } else { "BUY" };
    let qty = format!("{}.{:03}", pos.abs() / 1000, pos.abs() % 1000);
    assert!(
        out.contains(&format!(
            "flatten: {side} {qty} at market, reduce-only (rm-flat-"
        )),
        "{out}"
    );
    assert!(out.contains("flatten: flat (position"), "{out}");
    eprintln!("{out}");
    assert_eq!(venue_state(&v), (0, 0), "{out}");

    // Flat and nothing open: nothing to do, nothing asked.
    let o = finish(
        emergency_cmd(&v, "flatten", &cfg, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("nothing to do: no open orders, no position"),
        "{out}"
    );
}

#[test]
fn bad_keys_configs_and_venues_are_refused_clearly_and_never_show_the_secret() {
    let dir = TempDir::new("emergency-refusals");
    let v = accounts_venue(dir.path());
    let cfg = config(dir.path());
    let limit = Duration::from_secs(60);

    // A flat account with nothing open: nothing to do (the already-flat path of flatten).
    let o = finish(emergency_cmd(&v, "flatten", &cfg, &["--yes"]), limit);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("position 0"),
        "{}",
        text(&o)
    );

    // A reduce-only market order on a flat account: the venue refuses it (-2022).
    let e = client(&v)
        .place_market_reduce_only("BTCUSDT", engine::Side::Ask, "0.010", "rm-flat-test-0")
        .unwrap_err();
    assert!(matches!(e, RestError::Venue { code: -2022, .. }), "{e:?}");
    assert_eq!(venue_state(&v), (0, 0));

    // A secret the venue does not accept (-1022), a key it does not know (401 -2015).
    let wrong = "f00d".repeat(16);
    for (key, secret, code) in [
        (API_KEY, wrong.as_str(), "-1022"),
        ("not-an-account-key", API_SECRET, "-2015"),
    ] {
        let mut c = emergency_cmd(&v, "cancel-all", &cfg, &["--yes"]);
        c.env("RINGMAKER_API_KEY", key)
            .env("RINGMAKER_API_SECRET", secret);
        let o = finish(c, limit);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let all = text(&o);
        assert!(all.contains(code), "{all}");
        assert!(all.contains("NOT DONE"), "{all}");
        for s in [secret, API_SECRET, API_KEY] {
            assert!(!all.contains(s), "a key or secret in the output:\n{all}");
        }
    }

    // Missing credentials: exit 2, the variable named, no value shown.
    let mut c = emergency_cmd(&v, "cancel-all", &cfg, &["--yes"]);
    c.env_remove("RINGMAKER_API_KEY");
    let o = finish(c, limit);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("RINGMAKER_API_KEY"), "{}", text(&o));
    assert!(!text(&o).contains(API_SECRET));
    let mut c = emergency_cmd(&v, "cancel-all", &cfg, &["--yes"]);
    c.env_remove("RINGMAKER_API_SECRET");
    let o = finish(c, limit);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("RINGMAKER_API_SECRET"), "{}", text(&o));
    assert!(!text(&o).contains(API_KEY));

    // Usage and config: exit 2, nothing sent.
    let (rest, cert) = (v.rest.as_str(), v.cert.as_str());
    for (args, says) in [
        (
            &[
                "--symbol",
                "ETHUSDT",
                "--venue-url",
                rest,
                "--ca-cert",
                cert,
            ][..],
            "--symbol ETHUSDT: not an instrument of the config",
        ),
        (&["--venue-url", "http://127.0.0.1:1"][..], "https://"),
        (
            &["--venue-url", rest, "--ca-cert", "/nonexistent/cert.pem"][..],
            "cert.pem",
        ),
        (
            &["--venue-url", rest, "--ca-cert", cert, "extra"][..],
            "extra",
        ),
        (&["--venue-url", rest, "--bogus"][..], "--bogus"),
    ] {
        let mut all = vec!["--yes"];
        all.extend_from_slice(args);
        let extra = args;
        let o = finish(emergency_args("cancel-all", &cfg, &all), limit);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{extra:?}: {}", text(&o));
    }
    let o = finish(
        emergency_cmd(&v, "cancel-all", Path::new("/nonexistent.toml"), &["--yes"]),
        limit,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Nobody listening: transport errors, bounded, not done.
    let t0 = Instant::now();
    let o = finish(
        emergency_args(
            "cancel-all",
            &cfg,
            &["--yes", "--venue-url", "https://127.0.0.1:1"],
        ),
        limit,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("cannot read what the venue holds"),
        "{}",
        text(&o)
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());

    // An instrument on a venue emergency does not speak: refused by name, exit 1.
    let o = finish(
        emergency_cmd(
            &v,
            "flatten",
            &root("configs/coinm-btcusd-perp.toml"),
            &["--yes"],
        ),
        limit,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("NOT HANDLED"), "{}", text(&o));
    assert!(text(&o).contains("binance-coinm"), "{}", text(&o));
}
