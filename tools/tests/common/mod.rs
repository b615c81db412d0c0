//! What the end-to-end tests against `ringmaker venue` share: the venue as a child process on
//! the shipped recording, and the `ringmaker` binary.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A path under the workspace root.
pub fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Runs `ringmaker args` to the end.
pub fn ringmaker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(args)
        .output()
        .expect("run ringmaker")
}

/// `ringmaker venue` on the shipped recording at 10x: the process, its `rest=` and `cert=`.
/// Killed on drop.
pub struct VenueProc {
    pub child: Child,
    pub rest: String,
    pub cert: String,
}

impl Drop for VenueProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl VenueProc {
    /// `run` against this venue's live streams: `mode` (`--paper` or `--live`) and the
    /// arguments every such run shares (`depth@0ms`, `duration` seconds, `cfg`, `out`).
    pub fn run_args(&self, mode: &str, out: &Path, cfg: &Path, duration: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), mode.into()];
        if mode == "--paper" {
            a.extend(["--market".into(), "live".into()]);
        }
        for (k, v) in [
            ("--venue-url", self.rest.as_str()),
            ("--ca-cert", self.cert.as_str()),
            ("--depth-stream", "depth@0ms"),
            ("--duration", duration),
            ("--status-secs", "0"),
            ("--config", cfg.to_str().unwrap()),
            ("--out", out.to_str().unwrap()),
        ] {
            a.extend([k.to_string(), v.to_string()]);
        }
        a
    }
}

/// The venue with `faults`, public market data only.
pub fn venue(dir: &Path, faults: Option<&str>) -> VenueProc {
    venue_with(dir, faults, &[])
}

/// The venue with `faults` and `extra` arguments (e.g. `--accounts FILE`); its stderr goes to
/// `dir/venue.err`.
pub fn venue_with(dir: &Path, faults: Option<&str>, extra: &[&str]) -> VenueProc {
    let rec = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let mut args: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
    if let Some(f) = faults {
        args.extend(["--faults".into(), f.into()]);
    }
    venue_serving(dir, &root("configs/default.toml"), &[rec.into()], &args)
}

/// The venue at 10x serving `config`'s instruments from `data` (`--data` values), with `extra`
/// arguments; its stderr goes to `dir/venue.err`.
pub fn venue_serving(
    dir: &Path,
    config: &Path,
    data: &[std::ffi::OsString],
    extra: &[std::ffi::OsString],
) -> VenueProc {
    let cert_dir = dir.join("cert");
    let err = std::fs::File::create(dir.join("venue.err")).expect("venue stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringmaker"));
    cmd.args(["venue", "--speed", "10", "--data"])
        .args(data)
        .arg("--config")
        .arg(config)
        .arg("--cert-out")
        .arg(&cert_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(err);
    let mut child = cmd.spawn().expect("start the venue");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut rest, mut cert) = (String::new(), String::new());
    while rest.is_empty() || cert.is_empty() {
        let l = lines.next().expect("the venue prints its URLs").unwrap();
        if let Some(v) = l.strip_prefix("rest=") {
            rest = v.to_string();
        } else if let Some(v) = l.strip_prefix("cert=") {
            cert = v.to_string();
        }
    }
    VenueProc { child, rest, cert }
}

/// Polls `f` every 100 ms for up to `limit`; whether it came true.
pub fn eventually(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A tool installed by Debian's `prometheus` package: `$env` or on `PATH`. With
/// `RINGMAKER_REQUIRE_PROMTOOL=1` (tests/run-all.sh, CI) its absence fails the test.
pub fn tool(env: &str, name: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if p.is_none() && std::env::var("RINGMAKER_REQUIRE_PROMTOOL").as_deref() == Ok("1") {
        panic!("{name} is required (RINGMAKER_REQUIRE_PROMTOOL=1) and was not found");
    }
    p
}

/// `GET path` on `addr`: the body of a 200. HTTP/1.0, so the answer is never chunked.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.split(' ')
        .nth(1)
        .filter(|c| *c == "200")
        .map(|_| body.to_owned())
}

/// `promtool check metrics` on a scrape, when promtool is there (required with
/// `RINGMAKER_REQUIRE_PROMTOOL=1`).
pub fn promtool_check_metrics(text: &str) {
    let Some(p) = tool("RINGMAKER_PROMTOOL", "promtool") else {
        return;
    };
    let mut c = Command::new(p)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The venue's first test account (`configs/venue-accounts.toml`: Binance's documented example
/// key pair, public, not a secret of anyone's).
pub const API_KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
/// Its HMAC secret.
pub const API_SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

/// What the venue holds for the account of `creds` on `symbol`, asked over REST: (open orders,
/// position in lots of 0.001). A venue with a `rest-5xx` fault answers some calls 503: asked
/// again (five times at most).
pub fn account_state(
    v: &VenueProc,
    creds: gateway::binance::sign::Credentials,
    symbol: &str,
) -> (usize, i64) {
    use gateway::binance::rest::{RestClient, RestError, RestOptions};
    let signer: std::sync::Arc<dyn gateway::binance::sign::Signer + Send + Sync> =
        std::sync::Arc::new(creds);
    let rest = RestClient::new(
        &v.rest,
        Some(Path::new(&v.cert)),
        signer,
        RestOptions::default(),
    )
    .unwrap();
    let retry = |what: &str| -> Box<dyn Fn(RestError) -> bool> {
        let what = what.to_string();
        Box::new(move |e| {
            assert!(matches!(e, RestError::Server { .. }), "{what}: {e}");
            true
        })
    };
    let open = (0..5)
        .find_map(|_| rest.open_orders(symbol).map_err(retry("open orders")).ok())
        .expect("open orders")
        .len();
    let pos = (0..5)
        .find_map(|_| rest.position(symbol).map_err(retry("position")).ok())
        .expect("position")
        .map_or(0.0, |p| p.position_amt.parse::<f64>().unwrap());
    (open, (pos * 1000.0).round() as i64)
}
