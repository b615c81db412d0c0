//! The session's REST side, on a thread of its own (blocking HTTPS never runs on the gateway
//! thread): the listenKey (created on request, kept alive on a timer), the dead-man switch
//! (`countdownCancelAll`, armed for every symbol and refreshed while the gateway thread is
//! alive), the reconciliation queries (open orders and position per symbol) and the cancel-all
//! backstop at the end.
//!
//! The gateway thread talks to it through two bounded channels: [`Job`]s in, [`Done`]s out,
//! polled without blocking.
//!
//! # The send gate
//!
//! With a [`SendGate`] ([`Worker::set_gate`]; the session sets its own), nothing that touches
//! orders is sent while the gate is closed: no dead-man switch refresh (nor disarm), no
//! cancel-all, no reconciliation query, nothing at the end (no cancel-all, no open-orders
//! query, and the listenKey is not closed: it is the account's, and the engine that holds the
//! lease now streams on it). A job asked before the gate closed is dropped when its turn comes:
//! a [`Job::Snapshot`] is answered with an error, a [`Job::CancelAll`] not at all, a
//! [`Job::Shutdown`] with every instrument's open orders unknown. Each is counted
//! ([`RestCounters::gated_jobs`]). The listenKey's keepalive goes on (it extends the key's
//! validity and touches no order), so a gate that opens again finds its user stream's key
//! still valid. The gate is checked before each request, so a lease that lapses during the
//! end's cancel-all stops it at the next symbol.

use super::rest::{OpenOrder, PositionRisk, RestClient, RestError};
use crate::SendGate;
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use engine::InstrumentId;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the session asks of the REST side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Create (or fetch the active) listenKey.
    ListenKey,
    /// The venue's open orders and position of one instrument, for reconciliation round `.1`.
    Snapshot(InstrumentId, u32),
    /// Cancel every open order of every symbol now (the WebSocket API is lost: quotes are
    /// pulled over REST, the other channel).
    CancelAll,
    /// Cancel every open order of every symbol, disarm the dead-man switch where nothing is
    /// left, close the listenKey, and end the thread.
    Shutdown {
        /// Cancel everything (the backstop after the session's own cancels).
        cancel_all: bool,
    },
}

/// What the REST side answers.
#[derive(Debug)]
pub enum Done {
    /// A listenKey (or why there is none).
    ListenKey(Result<String, RestError>),
    /// The listenKey's keepalive failed: the key is gone (a new one is needed, the user stream
    /// reconnected and reconciled).
    KeyLost(RestError),
    /// One instrument's open orders and position, for reconciliation round `.1`.
    Snapshot(
        InstrumentId,
        u32,
        Result<(Vec<OpenOrder>, Option<PositionRisk>), RestError>,
    ),
    /// The cancel-all after a lost WebSocket API: whether it went through for every symbol.
    CancelledAll(bool),
    /// The end: open orders left per instrument after the backstop (`None`: unknown).
    Shutdown(Vec<Option<usize>>),
}

/// Counters the REST side keeps (shared, read for the summary).
#[derive(Debug, Default)]
pub struct RestCounters {
    /// `countdownCancelAll` refreshes that succeeded.
    pub countdown_refreshes: AtomicU64,
    /// ... and that failed.
    pub countdown_failures: AtomicU64,
    /// listenKey keepalives that succeeded.
    pub keepalives: AtomicU64,
    /// REST calls that failed (any).
    pub failures: AtomicU64,
    /// Calls answered 429, or refused locally during the back-off that follows one.
    pub rate_limited: AtomicU64,
    /// Calls answered 418 (banned), or refused locally during the ban.
    pub banned: AtomicU64,
    /// Jobs dropped because the send gate was closed when their turn came (see the module
    /// documentation).
    pub gated_jobs: AtomicU64,
}

/// The REST side's timing.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// The dead-man switch's countdown (`None`: not armed).
    pub countdown: Option<Duration>,
    /// How often it is refreshed.
    pub countdown_every: Duration,
    /// How often the listenKey is kept alive (Binance: valid 60 minutes).
    pub keepalive_every: Duration,
    /// The gateway thread counts as alive while it polled within this: past it the switch is no
    /// longer refreshed, and the venue cancels everything when the countdown runs out.
    pub alive_within: Duration,
}

/// The handle the session holds.
#[derive(Debug)]
pub struct Worker {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// Wall time (ms) of the gateway thread's last poll: the heartbeat the switch follows (0
    /// until the first poll: the switch is armed once the gateway thread runs). Stored with
    /// `Release`, read with `Acquire`.
    pub heartbeat_ms: Arc<AtomicI64>,
    /// Counters.
    pub counters: Arc<RestCounters>,
    thread: Option<JoinHandle<()>>,
    stopped: Arc<AtomicBool>,
    gate: Arc<OnceLock<Arc<SendGate>>>,
}

/// Wall time in ms.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Worker {
    /// Starts the thread for `symbols` (index = instrument id).
    pub fn spawn(
        rest: RestClient,
        symbols: Vec<String>,
        opts: WorkerOptions,
    ) -> std::io::Result<Worker> {
        let (jobs_tx, jobs_rx) = bounded::<Job>(64);
        let (done_tx, done_rx) = bounded::<Done>(64);
        // No poll yet: the switch is not armed before the gateway thread runs (and, for a
        // gated session, before its gate is known: see `set_gate`).
        let heartbeat_ms = Arc::new(AtomicI64::new(0));
        let counters = Arc::new(RestCounters::default());
        let stopped = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(OnceLock::new());
        let thread = {
            let shared = Shared {
                heartbeat_ms: Arc::clone(&heartbeat_ms),
                c: Arc::clone(&counters),
                stopped: Arc::clone(&stopped),
                gate: Arc::clone(&gate),
            };
            std::thread::Builder::new()
                .name("rm-rest".into())
                .spawn(move || run(rest, symbols, opts, jobs_rx, done_tx, shared))?
        };
        Ok(Worker {
            jobs: jobs_tx,
            done: done_rx,
            heartbeat_ms,
            counters,
            thread: Some(thread),
            stopped,
            gate,
        })
    }

    /// Follows `gate` from now on (see the module documentation); false if a gate was set
    /// already (the first one stays). Set before the first heartbeat, it also covers the
    /// switch's first arming.
    pub fn set_gate(&self, gate: Arc<SendGate>) -> bool {
        self.gate.set(gate).is_ok()
    }

    /// Asks for `job`; false if the queue is full or the thread is gone (ask again later).
    pub fn ask(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// The next answer, if one is ready.
    pub fn poll(&self) -> Option<Done> {
        match self.done.try_recv() {
            Ok(d) => Some(d),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Waits up to `limit` for the answer to a [`Job::Shutdown`] (what it returns), skipping
    /// any other answer still queued.
    pub fn finish(&mut self, limit: Duration) -> Option<Vec<Option<usize>>> {
        let deadline = Instant::now() + limit;
        let mut out = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.done.recv_timeout(left) {
                Ok(Done::Shutdown(v)) => {
                    out = Some(v);
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        if let Some(t) = self.thread.take() {
            if out.is_some() || self.stopped.load(Ordering::Acquire) {
                let _ = t.join();
            }
        }
        out
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The thread ends when its job channel closes (dropped with `self`).
        self.stopped.store(true, Ordering::Release);
    }
}

/// What the thread shares with its handle.
struct Shared {
    heartbeat_ms: Arc<AtomicI64>,
    c: Arc<RestCounters>,
    stopped: Arc<AtomicBool>,
    gate: Arc<OnceLock<Arc<SendGate>>>,
}

fn run(
    rest: RestClient,
    symbols: Vec<String>,
    opts: WorkerOptions,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    shared: Shared,
) {
    let Shared {
        heartbeat_ms,
        c,
        stopped,
        gate,
    } = shared;
    // Whether a request that touches orders may go out now (no gate: always).
    let sendable = || gate.get().is_none_or(|g| g.is_open(Instant::now()));
    let gated = || {
        c.gated_jobs.fetch_add(1, Ordering::Relaxed);
    };
    let fail = |e: &RestError| {
        c.failures.fetch_add(1, Ordering::Relaxed);
        match e {
            RestError::RateLimited { .. } => c.rate_limited.fetch_add(1, Ordering::Relaxed),
            RestError::Banned { .. } => c.banned.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    };
    // A failure worth another try in the same job (a 5xx, a timeout; never a 429 back-off).
    let again = |e: &RestError| {
        fail(e);
        matches!(e, RestError::Server { .. } | RestError::Transport(_))
    };
    let mut have_key = false;
    let mut next_keepalive = Instant::now() + opts.keepalive_every;
    // Armed at the gateway thread's first poll, then refreshed.
    let mut next_countdown = Instant::now();
    loop {
        let now = Instant::now();
        if let Some(cd) = opts.countdown {
            let alive = wall_ms() - heartbeat_ms.load(Ordering::Acquire)
                <= opts.alive_within.as_millis() as i64;
            if now >= next_countdown && !(alive && sendable()) {
                // Due, but the gateway thread is gone (or has not started) or the gate is
                // closed: looked at again shortly (not in a tight loop).
                next_countdown = now + Duration::from_millis(50);
            } else if now >= next_countdown {
                for s in &symbols {
                    if !sendable() {
                        break;
                    }
                    match rest.countdown_cancel_all(s, cd.as_millis() as u64) {
                        Ok(()) => c.countdown_refreshes.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            fail(&e);
                            c.countdown_failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                next_countdown = now + opts.countdown_every;
            }
        }
        if have_key && now >= next_keepalive {
            next_keepalive = now + opts.keepalive_every;
            match rest.listen_key_keepalive() {
                Ok(()) => {
                    c.keepalives.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    fail(&e);
                    have_key = false;
                    if done.send(Done::KeyLost(e)).is_err() {
                        break;
                    }
                }
            }
        }
        let wait = next_keepalive
            .min(if opts.countdown.is_some() {
                next_countdown
            } else {
                next_keepalive
            })
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(200));
        let job = match jobs.recv_timeout(wait) {
            Ok(j) => j,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let answer = match job {
            Job::ListenKey => {
                let r = rest.listen_key_start();
                match &r {
                    Ok(_) => {
                        have_key = true;
                        next_keepalive = Instant::now() + opts.keepalive_every;
                    }
                    Err(e) => fail(e),
                }
                Done::ListenKey(r)
            }
            Job::Snapshot(i, round) if !sendable() => {
                gated();
                Done::Snapshot(
                    i,
                    round,
                    Err(RestError::Transport("the send gate is closed".into())),
                )
            }
            Job::Snapshot(i, round) => {
                let r = match symbols.get(i as usize) {
                    Some(s) => rest
                        .open_orders(s)
                        .and_then(|o| rest.position(s).map(|p| (o, p))),
                    None => Err(RestError::Transport(format!("no instrument {i}"))),
                };
                if let Err(e) = &r {
                    fail(e);
                }
                Done::Snapshot(i, round, r)
            }
            Job::CancelAll if !sendable() => {
                // The orders are another engine's now: not a failure, nothing to answer.
                gated();
                continue;
            }
            Job::CancelAll => {
                // Every symbol tried, whatever the others did (while the gate stays open).
                let mut ok = true;
                for s in &symbols {
                    ok &= sendable() && retry(|| rest.cancel_all(s), &again).is_ok();
                }
                Done::CancelledAll(ok)
            }
            Job::Shutdown { cancel_all } => {
                // The last word: each call tried a few times (a 5xx or a timeout is worth a
                // retry here; a 429 back-off is not waited out). Each only while the gate is
                // open: once it closes, what is left is unknown and nothing more is sent.
                if !sendable() {
                    gated();
                }
                let mut left = Vec::with_capacity(symbols.len());
                for s in &symbols {
                    if !sendable() {
                        left.push(None);
                        continue;
                    }
                    if cancel_all {
                        let _ = retry(|| rest.cancel_all(s), &again);
                    }
                    let open = if sendable() {
                        retry(|| rest.open_orders(s), &again).ok().map(|o| o.len())
                    } else {
                        None
                    };
                    // Disarmed only over nothing: with orders left (or unknown) the switch
                    // stays armed and the venue cancels them when it runs out.
                    if opts.countdown.is_some() && open == Some(0) && sendable() {
                        let _ = retry(|| rest.countdown_cancel_all(s, 0), &again);
                    }
                    left.push(open);
                }
                // The account's key: closed only by the engine that still holds the lease.
                if have_key && sendable() {
                    let _ = retry(|| rest.listen_key_close(), &again);
                }
                let _ = done.send(Done::Shutdown(left));
                break;
            }
        };
        if done.send(answer).is_err() {
            break;
        }
    }
    stopped.store(true, Ordering::Release);
}

/// `call` up to three times while `again` says its error is worth a retry (200 ms apart).
fn retry<T>(
    mut call: impl FnMut() -> Result<T, RestError>,
    again: &impl Fn(&RestError) -> bool,
) -> Result<T, RestError> {
    let mut tries = 0;
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(e) if tries < 2 && again(&e) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}
