//! What the pipeline's threads share: stop flags, the shutdown handshake, the replay clock and
//! the counters. Nothing here is locked.
//!
//! # The shutdown handshake
//!
//! 1. A stop is requested (signal, end of data, `--duration`, or a thread failure: [`Shared::stop`]
//!    / [`Shared::abort`]). The feed stops reading and sets [`Shared::feed_done`]; the timer stops.
//! 2. The coordinator publishes `Halt` and `CancelAll` for every instrument into the input ring
//!    and then stores how many in [`Shared::controls_published`] (`Release`).
//! 3. The engine, after the batch end that follows the last of them, stores the count it has
//!    consumed in [`Shared::controls_consumed`] (`Release`, after publishing that batch's cancel
//!    intents). Likewise, after every batch with execution reports it stores how many reports it
//!    has consumed in [`Shared::reports_consumed`].
//! 4. The gateway, once `controls_consumed == controls_published` (`Acquire`), delivers whatever
//!    the simulated venue still has in flight without waiting for the wall clock, and leaves when
//!    nothing is in flight, nothing waits to be published, the engine has consumed every report
//!    it published (`reports_consumed`, `Acquire`) and the output ring is empty. The `Acquire`
//!    load sees every intent the engine published before its `Release` store, so "empty" is
//!    final: with the feed, timer and control gone, the gateway's reports were the engine's only
//!    input.
//! 5. The gateway drops the last input producer; the engine's poller reports `Shutdown` once it
//!    has read everything, and the engine thread hands the journal back for the final flush.

use super::clock::ReplayClock;
use super::counters::Counters;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Shared by all threads of one run.
#[derive(Debug)]
pub struct Shared {
    /// Stop requested from outside (SIGINT / SIGTERM set it; see [`super::signals`]).
    pub stop: Arc<AtomicBool>,
    /// A thread failed (setup, journal): stop as if signalled and report an error.
    pub abort: AtomicBool,
    /// The feed has stopped publishing (and dropped its producer).
    pub feed_done: AtomicBool,
    /// Shutdown commands the coordinator published (written once, `Release`).
    pub controls_published: CachePadded<AtomicU64>,
    /// Shutdown commands the engine has consumed and answered (`Release` after the batch end).
    pub controls_consumed: CachePadded<AtomicU64>,
    /// Execution reports the engine has consumed and answered (`Release` after the batch end).
    pub reports_consumed: CachePadded<AtomicU64>,
    /// Intents held on the engine thread because the output ring was full (`Release`); the
    /// gateway's shutdown drain waits for zero.
    pub output_backlog: CachePadded<AtomicU64>,
    /// Quoting was halted because the output ring stayed full.
    pub output_halted: AtomicBool,
    /// Housekeeping: write the last interval and leave.
    pub housekeeping_stop: AtomicBool,
    /// The replay clock.
    pub replay: ReplayClock,
    /// A live feed: the median offset of its receive stamps behind the venue's event times, ns
    /// (`i64::MIN`: none yet), updated once a second.
    pub clock_offset_ns: AtomicI64,
    /// A live feed's clock check is failing (quotes pulled).
    pub clock_failing: AtomicBool,
    /// The kernel clock's state, read by housekeeping once a second of a live run (`adjtimex`
    /// is a syscall: off the feed thread), read by the feed for its check and its journaled
    /// reading.
    pub kernel_clock: KernelClock,
    /// The gateway thread, parked while idle on a shared core ([`GatewayWake`]).
    pub gateway_wake: GatewayWake,
    /// Counters.
    pub counters: Counters,
    /// What the hot threads publish for the metrics endpoint and the control socket.
    pub ops: super::ops::OpsState,
    /// The ops thread: leave.
    pub ops_stop: AtomicBool,
    /// SIGHUP: reload the config (the ops thread clears it).
    pub reload_requested: Arc<AtomicBool>,
    /// `[cpu] idle = "backoff"`: the engine thread sleeps when idle instead of spinning.
    pub idle_backoff: bool,
}

/// How the engine wakes a gateway that sleeps while idle (it shares a core with the feed, so it
/// cannot spin): the gateway says it is about to park, checks the output ring once more, parks
/// with a timeout; the engine, after a batch that published intents, unparks it if it said so.
/// One atomic load per such batch on the engine thread, and a futex wake only when the gateway
/// really sleeps: intents reach the gateway in a wake-up, not at the end of its sleep.
#[derive(Debug, Default)]
pub struct GatewayWake {
    parked: AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl GatewayWake {
    /// The gateway thread registers itself (once, at its start).
    pub fn register(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    /// The gateway: park for at most `d` unless `more()` (checked after saying so) finds work.
    pub fn park(&self, d: std::time::Duration, more: impl FnOnce() -> bool) {
        self.parked.store(true, Ordering::SeqCst);
        // Pairs with the fence in `wake`: either the engine sees `parked`, or this check sees
        // its intents.
        std::sync::atomic::fence(Ordering::SeqCst);
        if !more() {
            std::thread::park_timeout(d);
        }
        self.parked.store(false, Ordering::Relaxed);
    }

    /// The engine, after publishing intents: wake the gateway if it sleeps.
    #[inline]
    pub fn wake(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

impl Shared {
    /// Shared state for a run at `replay`'s speed, stopped by `stop`.
    pub fn new(stop: Arc<AtomicBool>, replay: ReplayClock) -> Shared {
        Shared {
            stop,
            abort: AtomicBool::new(false),
            feed_done: AtomicBool::new(false),
            controls_published: CachePadded::new(AtomicU64::new(0)),
            controls_consumed: CachePadded::new(AtomicU64::new(0)),
            reports_consumed: CachePadded::new(AtomicU64::new(0)),
            output_backlog: CachePadded::new(AtomicU64::new(0)),
            output_halted: AtomicBool::new(false),
            housekeeping_stop: AtomicBool::new(false),
            replay,
            clock_offset_ns: AtomicI64::new(i64::MIN),
            clock_failing: AtomicBool::new(false),
            kernel_clock: KernelClock::default(),
            gateway_wake: GatewayWake::default(),
            counters: Counters::default(),
            ops: super::ops::OpsState::new(0),
            ops_stop: AtomicBool::new(false),
            reload_requested: Arc::new(AtomicBool::new(false)),
            idle_backoff: false,
        }
    }

    /// With operations state for `n` instruments.
    pub fn with_instruments(mut self, n: usize) -> Shared {
        self.ops = super::ops::OpsState::new(n);
        self
    }

    /// With operations state for `n` `[[hedge]]` groups too.
    pub fn with_hedge_groups(mut self, n: usize) -> Shared {
        self.ops = std::mem::take(&mut self.ops).with_hedge_groups(n);
        self
    }

    /// Whether the feed and the timer should stop.
    #[inline]
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }

    /// Whether the engine has answered every shutdown command (the gateway may drain).
    pub fn engine_halted(&self) -> bool {
        let published = self.controls_published.load(Ordering::Acquire);
        published > 0 && self.controls_consumed.load(Ordering::Acquire) >= published
    }
}

/// The last `adjtimex` reading, shared without a lock: a sequence lock over plain atomics
/// (one writer, housekeeping; readers retry later on a torn read instead of waiting).
#[derive(Debug, Default)]
pub struct KernelClock {
    /// Even: stable; odd: being written; 0: never written.
    seq: AtomicU64,
    /// 0: the read failed; 1: a reading is held.
    held: AtomicU64,
    rc: AtomicI64,
    status: AtomicI64,
    maxerror_us: AtomicI64,
    esterror_us: AtomicI64,
    offset: AtomicI64,
}

impl KernelClock {
    /// Stores a reading (`None`: `adjtimex` failed). One writer at a time.
    pub fn store(&self, raw: Option<(i32, i32, i64, i64, i64)>) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        let (rc, status, maxe, este, off) = raw.unwrap_or_default();
        self.held.store(u64::from(raw.is_some()), Ordering::Relaxed);
        self.rc.store(i64::from(rc), Ordering::Relaxed);
        self.status.store(i64::from(status), Ordering::Relaxed);
        self.maxerror_us.store(maxe, Ordering::Relaxed);
        self.esterror_us.store(este, Ordering::Relaxed);
        self.offset.store(off, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::AcqRel);
    }

    /// Reads and stores the kernel clock now.
    pub fn refresh(&self) {
        self.store(feeds::net::clockcheck::clock_state().ok().map(|s| {
            (
                state_rc(s.state),
                s.status,
                s.maxerror_us,
                s.esterror_us,
                s.offset,
            )
        }));
    }

    /// The last reading: `None` if never written or torn (try again later), `Some(None)` if
    /// `adjtimex` failed, else the state.
    pub fn load(&self) -> Option<Option<feeds::net::clockcheck::ClockState>> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 == 0 || s1 % 2 == 1 {
            return None;
        }
        let held = self.held.load(Ordering::Relaxed) == 1;
        let rc = self.rc.load(Ordering::Relaxed) as i32;
        let status = self.status.load(Ordering::Relaxed) as i32;
        let maxe = self.maxerror_us.load(Ordering::Relaxed);
        let este = self.esterror_us.load(Ordering::Relaxed);
        let off = self.offset.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 {
            return None;
        }
        Some(
            held.then(|| {
                feeds::net::clockcheck::ClockState::from_parts(rc, status, maxe, este, off)
            }),
        )
    }
}

/// `adjtimex`'s return value for a state (the inverse of the parse).
fn state_rc(s: feeds::net::clockcheck::TimeState) -> i32 {
    use feeds::net::clockcheck::TimeState as T;
    match s {
        T::Ok => libc::TIME_OK,
        T::Insert => libc::TIME_INS,
        T::Delete => libc::TIME_DEL,
        T::LeapInProgress => libc::TIME_OOP,
        T::Wait => libc::TIME_WAIT,
        T::Error => libc::TIME_ERROR,
        T::Other(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feeds::net::clockcheck::{ClockState, TimeState};

    #[test]
    fn the_kernel_clock_cell_gives_back_what_was_stored() {
        let c = KernelClock::default();
        assert_eq!(c.load(), None, "never written");
        c.store(Some((libc::TIME_OK, 0, 12, 3, 7)));
        let s = c.load().expect("written").expect("held");
        assert_eq!(s, ClockState::from_parts(libc::TIME_OK, 0, 12, 3, 7));
        assert!(s.synchronised && s.state == TimeState::Ok);
        c.store(Some((
            libc::TIME_ERROR,
            libc::STA_UNSYNC,
            16_000_000,
            16_000_000,
            0,
        )));
        assert!(!c.load().unwrap().unwrap().synchronised);
        c.store(None);
        assert_eq!(c.load(), Some(None), "a failed read is held as such");
        c.refresh();
        assert!(c.load().is_some());
    }
}
