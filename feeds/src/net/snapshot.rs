//! REST depth snapshots, off the hot path: a [`SnapshotFetcher`] thread takes requests from the
//! feed thread over a bounded queue, fetches each over HTTPS (`ureq` on rustls) with retries, and
//! hands the body back, stamped with the wall-clock time it arrived, for the feed thread to pass
//! through the feed handler as that instrument's snapshot (the documented sync procedure: buffer
//! the diffs, fetch a snapshot, bridge).
//!
//! The feed thread never blocks on it: [`SnapshotFetcher::request`] and [`SnapshotFetcher::poll`]
//! are `try_send`/`try_recv`. Each request is tried up to [`FetchOptions::attempts`] times, with
//! a doubling pause from [`FetchOptions::first_backoff`] (a 429 or 418 waits its `Retry-After`
//! instead); the last failure comes back as a [`SnapshotError`] for the caller to count and ask
//! again later.

use engine::InstrumentId;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How snapshots are fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Tries per request (≥ 1).
    pub attempts: u32,
    /// The pause after the first failure; doubled after each further one, at most
    /// [`FetchOptions::max_backoff`].
    pub first_backoff: Duration,
    /// The longest pause between tries.
    pub max_backoff: Duration,
    /// Connect and read timeout of one try.
    pub timeout: Duration,
    /// The largest body accepted (a 1,000-level snapshot is about 60 KB).
    pub max_body: u64,
    /// Requests that may wait (more are refused by [`SnapshotFetcher::request`]).
    pub queue: usize,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_body: 16 << 20,
            queue: 64,
        }
    }
}

/// Why a snapshot could not be fetched (after every try).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The venue answered with an error status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of the body (Binance's `{"code":..,"msg":..}`).
        body: String,
    },
    /// No answer (connect, TLS, timeout, a cut connection).
    #[error("transport: {0}")]
    Transport(String),
    /// A body larger than [`FetchOptions::max_body`].
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
}

/// A fetched snapshot (or why not).
#[derive(Debug)]
pub struct Snapshot {
    /// The instrument it was asked for.
    pub instrument: InstrumentId,
    /// Wall-clock time the body was read, ns since the UNIX epoch.
    pub local_ns: i64,
    /// Tries it took.
    pub attempts: u32,
    /// The body, or why there is none.
    pub body: Result<Vec<u8>, SnapshotError>,
}

struct Request {
    instrument: InstrumentId,
    url: String,
}

/// The snapshot thread (see the module documentation). Dropping it stops the thread.
#[derive(Debug)]
pub struct SnapshotFetcher {
    tx: Option<SyncSender<Request>>,
    rx: Receiver<Snapshot>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "snapshot of {} from {}", self.instrument, self.url)
    }
}

impl SnapshotFetcher {
    /// Starts the thread, fetching over TLS with `tls` (see [`crate::net::tls::client_config`]).
    pub fn spawn(
        tls: Arc<rustls::ClientConfig>,
        opts: FetchOptions,
    ) -> std::io::Result<SnapshotFetcher> {
        let (tx, requests) = sync_channel::<Request>(opts.queue.max(1));
        let (done, rx) = sync_channel::<Snapshot>(opts.queue.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls)
            .timeout_connect(opts.timeout)
            .timeout_read(opts.timeout)
            .timeout_write(opts.timeout)
            .build();
        let thread = std::thread::Builder::new()
            .name("feed-snapshots".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        let req = match requests.recv_timeout(Duration::from_millis(50)) {
                            Ok(r) => r,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => return,
                        };
                        let (body, attempts) = fetch_with_retries(&agent, &req.url, &opts, &stop);
                        let snap = Snapshot {
                            instrument: req.instrument,
                            local_ns: wall_ns(),
                            attempts,
                            body,
                        };
                        if done.send(snap).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(SnapshotFetcher {
            tx: Some(tx),
            rx,
            stop,
            thread: Some(thread),
        })
    }

    /// Asks for `instrument`'s snapshot from `url` without waiting; `false` if the queue is full
    /// or the thread is gone (ask again later).
    pub fn request(&self, instrument: InstrumentId, url: String) -> bool {
        match self
            .tx
            .as_ref()
            .map(|tx| tx.try_send(Request { instrument, url }))
        {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// A finished fetch, if one is ready (never waits).
    pub fn poll(&self) -> Option<Snapshot> {
        self.rx.try_recv().ok()
    }

    /// Waits up to `timeout` for a finished fetch (for callers off the hot path, and tests).
    pub fn wait(&self, timeout: Duration) -> Option<Snapshot> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for SnapshotFetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Wall-clock ns since the UNIX epoch.
fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn fetch_with_retries(
    agent: &ureq::Agent,
    url: &str,
    opts: &FetchOptions,
    stop: &AtomicBool,
) -> (Result<Vec<u8>, SnapshotError>, u32) {
    let mut backoff = opts.first_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (res, retry_after) = fetch_once(agent, url, opts.max_body);
        let retryable = match &res {
            Ok(_) => false,
            Err(SnapshotError::Status { status, .. }) => {
                *status == 429 || *status == 418 || *status >= 500
            }
            Err(SnapshotError::Transport(_)) => true,
            Err(SnapshotError::TooLarge(_)) => false,
        };
        if !retryable || attempt >= opts.attempts.max(1) {
            return (res, attempt);
        }
        let pause = retry_after.unwrap_or(backoff).min(opts.max_backoff);
        // Sleep in slices so that a stop is not held up.
        let until = std::time::Instant::now() + pause;
        while std::time::Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return (res, attempt);
            }
            std::thread::sleep(Duration::from_millis(10).min(pause));
        }
        backoff = (backoff * 2).min(opts.max_backoff);
    }
}

/// One try: the body or the error, and a `Retry-After` if the venue sent one.
fn fetch_once(
    agent: &ureq::Agent,
    url: &str,
    max_body: u64,
) -> (Result<Vec<u8>, SnapshotError>, Option<Duration>) {
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            let retry = r
                .header("Retry-After")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut body = String::new();
            let _ = r.into_reader().take(512).read_to_string(&mut body);
            return (Err(SnapshotError::Status { status, body }), retry);
        }
        Err(e) => return (Err(SnapshotError::Transport(e.to_string())), None),
    };
    let mut body = Vec::with_capacity(64 << 10);
    match resp.into_reader().take(max_body + 1).read_to_end(&mut body) {
        Ok(n) if n as u64 > max_body => (Err(SnapshotError::TooLarge(max_body)), None),
        Ok(_) => (Ok(body), None),
        Err(e) => (Err(SnapshotError::Transport(e.to_string())), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_venue_is_a_transport_error_after_every_try() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = FetchOptions {
            attempts: 3,
            first_backoff: Duration::from_millis(5),
            ..FetchOptions::default()
        };
        let f =
            SnapshotFetcher::spawn(crate::net::tls::client_config(None).unwrap(), opts).unwrap();
        assert!(f.request(
            7,
            format!("https://127.0.0.1:{port}/fapi/v1/depth?symbol=X")
        ));
        let s = f.wait(Duration::from_secs(20)).expect("an answer");
        assert_eq!((s.instrument, s.attempts), (7, 3));
        assert!(
            matches!(s.body, Err(SnapshotError::Transport(_))),
            "{:?}",
            s.body
        );
        assert!(f.poll().is_none());
    }
}
