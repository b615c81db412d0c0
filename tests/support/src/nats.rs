//! A real `nats-server` for the bus tests and bench: found as Debian's `nats-server` package
//! installs it, started with JetStream on a free loopback port, killed on drop.

use crate::TempDir;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// [`nats_server`], or `None` after saying on stderr that `test` is skipped for want of one.
pub fn nats_server_or_skip(test: &str) -> Option<PathBuf> {
    let found = nats_server();
    if found.is_none() {
        eprintln!(
            "{test}: skipped: no nats-server (Debian's nats-server package; tests/run-all.sh \
             installs it)"
        );
    }
    found
}

/// `nats-server`: `$RINGMAKER_NATS_SERVER`, on `PATH`, or in `/usr/sbin` (where Debian's package
/// puts it). With `RINGMAKER_REQUIRE_NATS=1` (tests/run-all.sh, CI) its absence panics, so a
/// test cannot skip silently.
pub fn nats_server() -> Option<PathBuf> {
    let found = std::env::var_os("RINGMAKER_NATS_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("nats-server"))
                    .find(|p| p.is_file())
            })
        })
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()));
    if found.is_none() && std::env::var("RINGMAKER_REQUIRE_NATS").as_deref() == Ok("1") {
        panic!("nats-server is required (RINGMAKER_REQUIRE_NATS=1) and was not found");
    }
    found
}

/// A free TCP port on loopback (free when asked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running server; killed (and its store removed) on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    _store: TempDir,
}

impl NatsServer {
    /// Starts `bin` with JetStream on a free loopback port and waits until it listens.
    pub fn start(bin: &std::path::Path) -> NatsServer {
        NatsServer::start_on(bin, free_port())
    }

    /// [`NatsServer::start`] on `port` (a test that needs the port before the server).
    pub fn start_on(bin: &std::path::Path, port: u16) -> NatsServer {
        let store = TempDir::new("nats-js");
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "nats-server did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
