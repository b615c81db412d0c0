//! Operations for a running pipeline: the Prometheus endpoint (`[ops] metrics_listen`), the
//! control socket (`ringmaker ctl`), hot reload (`ctl reload`, SIGHUP). All of it runs on one
//! "ops" thread on the housekeeping core; the hot threads only publish atomics
//! ([`state`]) and consume commands from the input ring like any other input.
//!
//! | file | what |
//! |---|---|
//! | [`state`] | what the engine, feed and gateway threads publish |
//! | [`metrics`] | the OpenMetrics text of a scrape |
//! | [`control`] | the control socket, its commands, the `ctl` client |
//! | [`reload`] | re-reading the config: validation, what may change live, the diff |

pub mod control;
pub mod metrics;
pub mod reload;
pub mod state;

pub use state::OpsState;

use crate::config::RunConfig;
use crate::live::shared::Shared;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The metrics listener, bound before the threads start (so the address, with a port the OS
/// picked, can be said at once).
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Binds `addr` (port 0: any free port).
    pub fn bind(addr: SocketAddr) -> anyhow::Result<MetricsListener> {
        use anyhow::Context;
        let listener = TcpListener::bind(addr).with_context(|| {
            format!("binding the metrics endpoint [ops] metrics_listen = {addr}")
        })?;
        listener
            .set_nonblocking(true)
            .context("making the metrics listener non-blocking")?;
        let addr = listener
            .local_addr()
            .context("the metrics listener's address")?;
        Ok(MetricsListener { listener, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// What the ops thread serves.
#[derive(Debug)]
pub struct OpsThread {
    /// `/metrics`.
    pub metrics: Option<MetricsListener>,
    /// The control socket.
    pub control: Option<control::ControlServer>,
    /// Control requests from the bus link ([`crate::bus`]), answered as the socket's are.
    pub bus: Option<crossbeam_channel::Receiver<crate::bus::Request>>,
    /// The run's config (grids and limits for the exposition; a reload's replaces it).
    pub config: RunConfig,
    /// Unix time the run started, s.
    pub start_time: f64,
}

/// What the ops thread leaves behind.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpsEnd {
    /// Commands it published into the input ring.
    pub controls_published: u64,
    /// Scrapes served.
    pub scrapes: u64,
}

/// Serves until [`Shared::ops_stop`]: scrapes, control requests, SIGHUP reloads.
pub fn run(mut t: OpsThread, shared: Arc<Shared>) -> OpsEnd {
    let mut end = OpsEnd::default();
    loop {
        if shared.ops_stop.load(Ordering::Acquire) {
            break;
        }
        if let Some(m) = &t.metrics {
            while let Ok((stream, _)) = m.listener.accept() {
                // After a reload, the limits it set.
                let config = t.control.as_ref().map_or(&t.config, |c| c.config());
                let cx = metrics::Context {
                    config,
                    shared: &shared,
                    start_time: t.start_time,
                };
                if serve_http(stream, &cx).is_ok() {
                    end.scrapes += 1;
                }
            }
        }
        if let Some(rx) = &t.bus {
            while let Ok(req) = rx.try_recv() {
                let answer = match &mut t.control {
                    Some(c) => c.answer(&req.line, &shared),
                    None => "error: this run has no control (no output folder)\n".to_owned(),
                };
                let _ = req.answer.send(answer);
            }
        }
        if let Some(c) = &mut t.control {
            c.poll(&shared);
            if shared.reload_requested.swap(false, Ordering::AcqRel) {
                let answer = c.reload_from_signal(&shared);
                eprint!("ringmaker run: SIGHUP: reload {answer}");
            }
            end.controls_published = c.published();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    end
}

/// One HTTP/1.1 exchange: `GET /metrics` gets the exposition (OpenMetrics when the `Accept`
/// header asks for it, as Prometheus does; the classic text format otherwise), anything else a
/// 404 or 405; the connection is closed after it. Timeouts bound what a slow client costs.
fn serve_http(stream: TcpStream, cx: &metrics::Context<'_>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 8192];
    let mut n = 0;
    // However slowly a client sends its request, it gets 2 s in all.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let (status, ctype, body) = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        let k = (&stream).read(&mut buf[n..])?;
        if k == 0 {
            return Ok(());
        }
        n += k;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..n]) {
            Ok(httparse::Status::Complete(_)) => {
                let path = req.path.unwrap_or("");
                let path = path.split('?').next().unwrap_or("");
                // Prometheus asks for OpenMetrics; anything else gets the classic format.
                let openmetrics = req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
                });
                break match (req.method, path) {
                    (Some("GET"), "/metrics") if openmetrics => {
                        ("200 OK", metrics::CONTENT_TYPE, metrics::render(cx))
                    }
                    (Some("GET"), "/metrics") => (
                        "200 OK",
                        metrics::CLASSIC_CONTENT_TYPE,
                        metrics::to_classic(&metrics::render(cx)),
                    ),
                    (Some("GET"), _) => (
                        "404 Not Found",
                        "text/plain; charset=utf-8",
                        "ringmaker serves /metrics\n".to_owned(),
                    ),
                    _ => (
                        "405 Method Not Allowed",
                        "text/plain; charset=utf-8",
                        "GET only\n".to_owned(),
                    ),
                };
            }
            Ok(httparse::Status::Partial) if n < buf.len() => continue,
            _ => {
                break (
                    "400 Bad Request",
                    "text/plain; charset=utf-8",
                    "bad request\n".to_owned(),
                )
            }
        };
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    (&stream).write_all(head.as_bytes())?;
    (&stream).write_all(body.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::clock::ReplayClock;
    use crate::live::rings;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicBool;

    fn config() -> RunConfig {
        RunConfig::from_toml(&test_support::config_text("default.toml")).unwrap()
    }

    /// Sends `bytes` (then half-closes) and reads the answer to the end.
    fn exchange(mut s: impl Read + Write, bytes: &[u8]) -> String {
        let _ = s.write_all(bytes);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn hostile_clients_get_an_answer_or_a_closed_connection_and_the_thread_serves_on() {
        let dir = test_support::TempDir::new("ops-hostile");
        let cfg = config();
        let shared = Arc::new(
            Shared::new(
                Arc::new(AtomicBool::new(false)),
                ReplayClock::new(0.0, quanta::Clock::new()),
            )
            .with_instruments(cfg.engine.instruments.len()),
        );
        let r = rings::build(64, 64);
        let control = control::ControlServer::bind(
            dir.path(),
            r.input.clone(),
            quanta::Clock::new(),
            0,
            None,
            cfg.clone(),
            String::new(),
        )
        .unwrap();
        let metrics = MetricsListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = metrics.addr();
        let t = OpsThread {
            metrics: Some(metrics),
            control: Some(control),
            bus: None,
            config: cfg,
            start_time: 0.0,
        };
        let h = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || run(t, shared))
        };
        let sock = dir.path().join(control::SOCKET_NAME);
        let http = |req: &[u8]| exchange(std::net::TcpStream::connect(addr).unwrap(), req);
        let ctl = |req: &[u8]| exchange(UnixStream::connect(&sock).unwrap(), req);

        assert!(http(b"GET /metrics HTTP/1.1\r\n\r\n").contains("ringmaker_position_limit"));
        assert!(http(b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(http(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(http(b"\x00\xff garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(http(&[b'A'; 9000]).starts_with("HTTP/1.1 400"));
        // Nothing sent at all, the connection held open: the thread gives up after its 2 s.
        let idle = std::net::TcpStream::connect(addr).unwrap();
        let t0 = std::time::Instant::now();
        assert!(http(b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        assert!(t0.elapsed() < Duration::from_secs(5));
        drop(idle);

        assert!(ctl(b"bogus\n").starts_with("error: unknown command"));
        assert!(ctl(b"halt a b\n").starts_with("error: one instrument at most"));
        assert!(ctl(b"halt ETHUSDT\n").contains("no instrument \"ETHUSDT\""));
        assert!(
            ctl(b"\xff\xfe\n").is_empty(),
            "not UTF-8: closed without an answer"
        );
        assert!(ctl(b"\n").starts_with("error: unknown command"));
        let status = ctl(b"status\n");
        assert!(status.starts_with("ok\nbinance-usdm:BTCUSDT"), "{status}");
        let reload = ctl(b"reload\n");
        assert!(
            reload.starts_with("refused: this run has no config file"),
            "{reload}"
        );
        // Stopping: commands that would change something are refused.
        shared.stop.store(true, Ordering::Relaxed);
        assert!(ctl(b"halt\n").starts_with("error: the run is stopping"));
        assert!(ctl(b"status\n").starts_with("ok\n"));

        shared.ops_stop.store(true, Ordering::Release);
        let end = h.join().unwrap();
        assert!(end.scrapes >= 2, "{end:?}");
        assert_eq!(end.controls_published, 0);
        assert!(!sock.exists(), "the socket goes with the server");
    }
}
