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
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 8192];
    let mut n = 0;
    let (status, ctype, body) = loop {
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
