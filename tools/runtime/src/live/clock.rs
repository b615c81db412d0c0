//! Replay time: the recording's clock, as the paper pipeline sees it.
//!
//! Every event carries the recording's local receive time, so the engine, the simulated venue
//! and the journal share one time axis, as in a backtest. How fast that axis moves against the
//! wall clock is the `--speed`:
//!
//! - **speed > 0**: replay time = first line's time + wall time since the feed started × speed.
//!   The feed sleeps until each line is due; the timer ticks and the venue's latencies follow
//!   the wall clock.
//! - **flat out** (`--speed 0`): replay time is wherever the feed has got to (the time of the
//!   last message it published). Timers and the venue advance with it.
//! - **live** ([`ReplayClock::live`], a network feed): replay time is the wall clock (ns since
//!   the UNIX epoch, the domain of the kernel's receive stamps), read from `CLOCK_REALTIME` at
//!   each call; nothing is paced (a message is due when it arrives).

use quanta::Clock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
struct Anchor {
    rec_ns: i64,
    raw: u64,
}

/// The replay clock, shared by the feed (which anchors and advances it), the timer and the
/// gateway.
#[derive(Debug)]
pub struct ReplayClock {
    speed: f64,
    live: bool,
    clock: Clock,
    anchor: OnceLock<Anchor>,
    /// Time of the last message the feed published. Written by the feed only (`Release`), read
    /// by the others (`Acquire`): a reader that sees `t` also sees the events published before.
    progress: AtomicI64,
}

impl ReplayClock {
    /// A clock running at `speed` (0: flat out), reading the TSC through `clock`.
    pub fn new(speed: f64, clock: Clock) -> ReplayClock {
        ReplayClock {
            speed,
            live: false,
            clock,
            anchor: OnceLock::new(),
            progress: AtomicI64::new(i64::MIN),
        }
    }

    /// The wall clock, for a live feed: started now at the wall time, never pacing.
    pub fn live(clock: Clock) -> ReplayClock {
        let wall = wall_now_ns();
        let c = ReplayClock {
            speed: 1.0,
            live: true,
            anchor: OnceLock::new(),
            progress: AtomicI64::new(i64::MIN),
            clock,
        };
        let _ = c.anchor.set(Anchor {
            rec_ns: wall,
            raw: c.clock.raw(),
        });
        c
    }

    /// Whether this is the wall clock of a live feed.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Does the feed wait for each message's time? Not flat out, and not live (a live message
    /// is due when it arrives).
    pub fn paces(&self) -> bool {
        !self.flat_out() && !self.live
    }

    /// Flat out (no pacing)?
    pub fn flat_out(&self) -> bool {
        self.speed <= 0.0
    }

    /// Starts the clock at recording time `rec_ns`, now (the feed, at its first line).
    pub fn start(&self, rec_ns: i64) {
        let _ = self.anchor.set(Anchor {
            rec_ns,
            raw: self.clock.raw(),
        });
    }

    /// The recording time the clock started at, once started.
    pub fn start_ns(&self) -> Option<i64> {
        self.anchor.get().map(|a| a.rec_ns)
    }

    /// The feed published everything up to recording time `rec_ns`.
    pub fn advance(&self, rec_ns: i64) {
        self.progress.store(rec_ns, Ordering::Release);
    }

    /// The time of the last message the feed published (`i64::MIN` before the first).
    pub fn progress(&self) -> i64 {
        self.progress.load(Ordering::Acquire)
    }

    /// Replay time now, once started.
    pub fn now(&self) -> Option<i64> {
        if self.live {
            // `CLOCK_REALTIME` itself (the vDSO, no syscall): the kernel's receive stamps are on
            // it, and a TSC run from one anchor drifts from it by the calibration's error
            // (tens of µs a minute), which would bias every wire hop.
            return Some(wall_now_ns());
        }
        let a = self.anchor.get()?;
        if self.flat_out() {
            let p = self.progress();
            return (p != i64::MIN).then_some(p);
        }
        let wall = self.clock.delta_as_nanos(a.raw, self.clock.raw());
        Some(a.rec_ns + (wall as f64 * self.speed) as i64)
    }

    /// How long until recording time `rec_ns` is due on the wall clock (zero when due or flat
    /// out). A live clock is the wall clock: the feed does not pace it ([`ReplayClock::paces`]),
    /// but the timer waits on it for its next tick.
    pub fn until(&self, rec_ns: i64) -> Duration {
        match (self.flat_out(), self.now()) {
            (false, Some(now)) if rec_ns > now => {
                Duration::from_nanos(((rec_ns - now) as f64 / self.speed) as u64)
            }
            _ => Duration::ZERO,
        }
    }
}

/// Nanoseconds since the UNIX epoch on `CLOCK_REALTIME` (0 before 1970).
fn wall_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_clock_follows_the_wall_at_speed() {
        let (clock, mock) = Clock::mock();
        let c = ReplayClock::new(10.0, clock);
        assert_eq!(c.now(), None);
        c.start(1_000);
        assert_eq!(c.now(), Some(1_000));
        mock.increment(Duration::from_millis(1));
        assert_eq!(c.now(), Some(1_000 + 10_000_000));
        assert_eq!(c.until(1_000 + 20_000_000), Duration::from_millis(1));
        assert_eq!(c.until(0), Duration::ZERO);
    }

    #[test]
    fn live_clock_is_the_wall_clock_and_never_paces() {
        let (clock, mock) = Clock::mock();
        let c = ReplayClock::live(clock);
        let t0 = c.now().expect("started at once");
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        assert!((wall - t0).abs() < 5_000_000_000, "{wall} vs {t0}");
        c.start(5); // the feed's first message does not move it
        mock.increment(Duration::from_secs(3600)); // nor does the TSC: it reads the wall clock
        let t1 = c.now().expect("live");
        assert!(t1 >= t0 && t1 - t0 < 5_000_000_000, "{t0} → {t1}");
        // The timer waits on it for a later tick: a live clock that said "due now" for every
        // time made the timer thread spin a core.
        let wait = c.until(t1 + 60_000_000_000);
        assert!(
            wait <= Duration::from_secs(60) && wait > Duration::from_secs(55),
            "{wait:?}"
        );
        assert_eq!(c.until(t0), Duration::ZERO);
        assert!(!c.flat_out() && c.is_live() && !c.paces());
    }

    #[test]
    fn flat_out_clock_is_the_feeds_progress() {
        let (clock, mock) = Clock::mock();
        let c = ReplayClock::new(0.0, clock);
        c.start(5);
        assert_eq!(c.now(), None, "nothing published yet");
        c.advance(42);
        mock.increment(Duration::from_secs(1));
        assert_eq!(c.now(), Some(42));
        assert_eq!(c.until(1_000_000), Duration::ZERO);
    }
}
