//! The send gate: whether this engine may send anything to the venue right now.
//!
//! # Why
//!
//! Engines run in pairs for failover: a leader and a hot standby, fenced by a lease in a NATS
//! key-value bucket. The leader renews its lease well within the lease's time to live; when a
//! renewal has not been confirmed within that time, the lease may have lapsed at the server,
//! and the leader must assume that a standby has taken it over and adopted its orders. From
//! that moment those orders are the new leader's: the old one must not place, cancel or
//! cancel-all anything (a cancel-all on the shared account would pull the new leader's quotes;
//! a place would add an order nobody tracks). It must send nothing at all until its lease is
//! confirmed again, or, once another engine is known to hold the lease, ever again.
//!
//! # How
//!
//! [`SendGate`] is that permission, shared (in an `Arc`) between the lease's renewal thread,
//! which writes it, and the gateway thread, which reads it on every loop of its busy poll:
//!
//! - [`SendGate::open_until`]: the renewal thread says sending is allowed until a deadline (the
//!   time the confirmed renewal was *sent*, plus the lease's time to live, less a margin: the
//!   server's clock for the lease started no earlier than the send). It may move the deadline
//!   earlier or later; a deadline in the past closes the gate.
//! - [`SendGate::fence`]: another engine holds the lease. Closed for good: a later
//!   [`SendGate::open_until`] is ignored.
//! - [`SendGate::is_open`]: the reader's check, with the time it already read for its loop:
//!   two atomic loads and a comparison, no system call, no allocation, no lock.
//!
//! The gate closes by itself when its deadline passes: nothing has to run on time for a leader
//! whose renewal thread is stuck (or whose process is starved) to stop sending, since the
//! reader compares the deadline with its own clock.
//!
//! A gate starts closed ([`SendGate::closed`]): an engine sends nothing before it holds the
//! lease. What the order-entry session does while the gate is closed is documented with it
//! ([`crate::binance::session`], "The send gate").

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Permission to send to the venue, until a deadline, shared between a lease's renewal thread
/// (the writer) and the gateway thread (the reader). See the [module documentation](self).
pub struct SendGate {
    /// The origin of `until_ns`.
    epoch: Instant,
    /// Sending is allowed while the reader's clock is before this, in ns after `epoch`
    /// (0: closed).
    until_ns: AtomicU64,
    /// Another engine holds the lease: closed for good.
    fenced: AtomicBool,
}

impl SendGate {
    /// A gate closed until it is first opened ([`SendGate::open_until`]).
    pub fn closed() -> SendGate {
        SendGate {
            epoch: Instant::now(),
            until_ns: AtomicU64::new(0),
            fenced: AtomicBool::new(false),
        }
    }

    /// Sending is allowed until `until` (exclusive), unless the gate is fenced. Moves the
    /// deadline earlier or later; one at or before the gate's creation closes it.
    ///
    /// The store is a release: whatever the writer did before (e.g. record the lease's revision)
    /// is visible to a reader that sees the new deadline.
    pub fn open_until(&self, until: Instant) {
        if self.fenced.load(Ordering::Acquire) {
            return;
        }
        let ns = until.saturating_duration_since(self.epoch).as_nanos();
        self.until_ns
            .store(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Closed for good: another engine holds the lease. Irreversible; every later
    /// [`SendGate::open_until`] is ignored.
    pub fn fence(&self) {
        // The flag first: a reader that sees the deadline cleared sees the fence too, and one
        // that races an `open_until` still reads the flag before it reads the deadline.
        self.fenced.store(true, Ordering::Release);
        self.until_ns.store(0, Ordering::Release);
    }

    /// Whether sending is allowed at `now` (the reader's clock): not fenced and before the
    /// deadline. Two atomic loads; no system call, no allocation.
    #[inline]
    pub fn is_open(&self, now: Instant) -> bool {
        if self.fenced.load(Ordering::Acquire) {
            return false;
        }
        let until = self.until_ns.load(Ordering::Acquire);
        until != 0 && now.saturating_duration_since(self.epoch).as_nanos() < u128::from(until)
    }

    /// Whether the gate is fenced (closed for good).
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// The deadline as last set, for status and metrics (it may be past already); `None` when
    /// the gate was never opened, was closed at or before its creation, or is fenced.
    pub fn until(&self) -> Option<Instant> {
        if self.is_fenced() {
            return None;
        }
        match self.until_ns.load(Ordering::Acquire) {
            0 => None,
            ns => self.epoch.checked_add(Duration::from_nanos(ns)),
        }
    }
}

impl std::fmt::Debug for SendGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = Instant::now();
        f.debug_struct("SendGate")
            .field("open", &self.is_open(now))
            .field("fenced", &self.is_fenced())
            .field(
                "left",
                &self.until().map(|u| u.saturating_duration_since(now)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_new_gate_is_closed() {
        let g = SendGate::closed();
        let now = Instant::now();
        assert!(!g.is_open(now));
        assert!(!g.is_open(now + Duration::from_secs(3600)));
        assert!(!g.is_fenced());
        assert_eq!(g.until(), None);
    }

    #[test]
    fn an_open_gate_is_open_until_its_deadline_and_closed_from_it() {
        let g = SendGate::closed();
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(10);
        g.open_until(until);
        assert!(g.is_open(t0));
        assert!(g.is_open(until - Duration::from_nanos(1)));
        assert!(!g.is_open(until), "the deadline itself is closed");
        assert!(!g.is_open(until + Duration::from_secs(1)));
        // Within a nanosecond (the stored resolution).
        let u = g.until().unwrap();
        assert!(u <= until && until - u < Duration::from_nanos(2));
        // Later, then earlier, then in the past.
        g.open_until(t0 + Duration::from_secs(20));
        assert!(g.is_open(until));
        g.open_until(t0 + Duration::from_secs(5));
        assert!(!g.is_open(t0 + Duration::from_secs(6)));
        assert!(g.is_open(t0 + Duration::from_secs(4)));
        g.open_until(t0);
        assert!(!g.is_open(t0));
        assert!(!g.is_open(Instant::now()));
    }

    #[test]
    fn a_deadline_before_the_gate_was_made_keeps_it_closed() {
        let before = Instant::now();
        let g = SendGate::closed();
        g.open_until(before);
        assert!(!g.is_open(Instant::now()));
        assert_eq!(g.until(), None);
    }

    #[test]
    fn a_fence_is_for_good() {
        let g = SendGate::closed();
        let t0 = Instant::now();
        g.open_until(t0 + Duration::from_secs(60));
        assert!(g.is_open(t0));
        g.fence();
        assert!(g.is_fenced());
        assert!(!g.is_open(t0));
        assert_eq!(g.until(), None);
        g.open_until(t0 + Duration::from_secs(120));
        assert!(!g.is_open(t0));
        assert!(!g.is_open(t0 + Duration::from_secs(1)));
        assert!(g.is_fenced());
        assert_eq!(g.until(), None);
    }

    #[test]
    fn a_reader_on_another_thread_sees_the_writer() {
        let g = Arc::new(SendGate::closed());
        let saw_open = Arc::new(AtomicBool::new(false));
        let reader = {
            let (g, saw_open) = (Arc::clone(&g), Arc::clone(&saw_open));
            std::thread::spawn(move || {
                // Open, then fenced: once fenced it never reads open again.
                let deadline = Instant::now() + Duration::from_secs(10);
                while !g.is_open(Instant::now()) {
                    assert!(Instant::now() < deadline, "never opened");
                    std::hint::spin_loop();
                }
                saw_open.store(true, Ordering::Release);
                while !g.is_fenced() {
                    assert!(Instant::now() < deadline, "never fenced");
                    std::hint::spin_loop();
                }
                for _ in 0..10_000 {
                    assert!(!g.is_open(Instant::now()));
                }
            })
        };
        g.open_until(Instant::now() + Duration::from_secs(60));
        while !saw_open.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        g.fence();
        g.open_until(Instant::now() + Duration::from_secs(60));
        reader.join().unwrap();
    }
}
