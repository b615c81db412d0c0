//! Rate limits and the price circuit breaker, all driven by event time (never a clock read).

use crate::config::Fx;

/// A rate limit of at most `capacity` actions in any window of `window_ns` (a sliding window,
/// exact): an action is allowed when the `capacity`-th most recent one is at least a window old.
/// Driven by event time only; the ring of recent action times is allocated once.
///
/// Time only frees capacity, so an engine that stops spending recovers on its own: it can never
/// lock itself out. Stricter than a token bucket, which allows up to twice its capacity in one
/// window (a full burst, then the refill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    window_ns: i64,
    /// Times of the last `capacity` actions, oldest at `head`.
    times: Box<[i64]>,
    head: usize,
}

impl TokenBucket {
    /// At most `capacity` (≥ 1) actions per `window_ns`.
    pub(crate) fn new(capacity: u32, window_ns: i64) -> TokenBucket {
        TokenBucket {
            window_ns,
            times: vec![i64::MIN / 2; capacity.max(1) as usize].into_boxed_slice(),
            head: 0,
        }
    }

    /// Whether an action is allowed at `now_ns` (without spending).
    #[inline]
    pub(crate) fn available(&self, now_ns: i64) -> bool {
        now_ns.saturating_sub(self.times[self.head]) >= self.window_ns
    }

    /// Spends one action if allowed at `now_ns`.
    #[inline]
    pub(crate) fn try_take(&mut self, now_ns: i64) -> bool {
        if !self.available(now_ns) {
            return false;
        }
        self.times[self.head] = now_ns;
        self.head = (self.head + 1) % self.times.len();
        true
    }

    /// Actions taken in the window ending at `now_ns`, and the capacity.
    pub(crate) fn used(&self, now_ns: i64) -> (u32, u32) {
        let used = self
            .times
            .iter()
            .filter(|&&t| now_ns.saturating_sub(t) < self.window_ns)
            .count();
        (used as u32, self.times.len() as u32)
    }

    /// Actions still allowed at `now_ns`.
    #[cfg(test)]
    pub(crate) fn tokens(&self, now_ns: i64) -> i64 {
        self.times
            .iter()
            .filter(|&&t| now_ns.saturating_sub(t) >= self.window_ns)
            .count() as i64
    }
}

/// The venue's order-rate limits shared by every instrument of one engine: at most
/// `orders_per_10s` places in any 10 s and `orders_per_min` in any minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderBudget {
    per_10s: TokenBucket,
    per_min: TokenBucket,
}

impl OrderBudget {
    pub(crate) fn new(orders_per_10s: u32, orders_per_min: u32) -> OrderBudget {
        OrderBudget {
            per_10s: TokenBucket::new(orders_per_10s, 10_000_000_000),
            per_min: TokenBucket::new(orders_per_min, MINUTE_NS),
        }
    }

    /// Whether one more place is allowed at `now_ns` under both limits (without spending).
    #[inline]
    pub(crate) fn available(&self, now_ns: i64) -> bool {
        self.per_10s.available(now_ns) && self.per_min.available(now_ns)
    }

    /// Places in the last 10 s and the last minute at `now_ns`, each with its limit.
    pub(crate) fn used(&self, now_ns: i64) -> [(u32, u32); 2] {
        [self.per_10s.used(now_ns), self.per_min.used(now_ns)]
    }

    /// Spends one place under both limits (call after [`OrderBudget::available`]).
    #[inline]
    pub(crate) fn take(&mut self, now_ns: i64) {
        self.per_10s.try_take(now_ns);
        self.per_min.try_take(now_ns);
    }
}

/// One minute, ns.
pub(crate) const MINUTE_NS: i64 = 60_000_000_000;

const BUCKETS: usize = 16;

/// Fair-value circuit breaker over a sliding window of 16 buckets (granularity window / 16):
/// trips when the highest and lowest fair value seen in the window differ by more than
/// `max_change` of the lowest. Clears by itself once the move has left the window.
#[derive(Debug, Clone)]
pub(crate) struct CircuitBreaker {
    bucket_ns: i64,
    max_change: Fx,
    /// Per bucket: (bucket index, min, max); index -1 is empty.
    buckets: [(i64, Fx, Fx); BUCKETS],
}

impl CircuitBreaker {
    /// A breaker for moves above `max_change` (ratio) within `window_ns`.
    pub(crate) fn new(window_ns: i64, max_change: Fx) -> CircuitBreaker {
        CircuitBreaker {
            bucket_ns: (window_ns / BUCKETS as i64).max(1),
            max_change,
            buckets: [(-1, Fx::ZERO, Fx::ZERO); BUCKETS],
        }
    }

    /// Records `fv` at `now_ns` and says whether the window holds a move beyond the limit.
    pub(crate) fn observe(&mut self, now_ns: i64, fv: Fx) -> bool {
        let idx = now_ns.max(0) / self.bucket_ns;
        let slot = &mut self.buckets[(idx as usize) % BUCKETS];
        if slot.0 != idx {
            *slot = (idx, fv, fv);
        } else {
            slot.1 = slot.1.min(fv);
            slot.2 = slot.2.max(fv);
        }
        let (mut lo, mut hi) = (fv, fv);
        for &(i, mn, mx) in &self.buckets {
            if i >= 0 && idx - i < BUCKETS as i64 {
                lo = lo.min(mn);
                hi = hi.max(mx);
            }
        }
        lo > 0 && (hi - lo) > self.max_change.saturating_mul(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_capacity_in_any_window() {
        let mut b = TokenBucket::new(3, 60_000);
        assert!(b.try_take(0) && b.try_take(10) && b.try_take(20));
        assert!(!b.try_take(30));
        assert_eq!(b.tokens(30), 0);
        assert!(!b.try_take(59_999));
        assert!(b.try_take(60_000));
        assert!(!b.try_take(60_009));
        assert!(b.try_take(60_010));
        // Idle for a long time: a full window's worth again, never more.
        assert_eq!(b.tokens(10_000_000), 3);
        assert!(b.try_take(10_000_000) && b.try_take(10_000_000) && b.try_take(10_000_000));
        assert!(!b.try_take(10_000_000));
        // Any window of 60,000 ns holds at most 3 actions, under a dense random-ish schedule.
        let mut b = TokenBucket::new(3, 60_000);
        let mut taken = Vec::new();
        let mut t = 0;
        for k in 0..10_000i64 {
            t += (k * 7919) % 13_000;
            if b.try_take(t) {
                taken.push(t);
            }
        }
        for w in taken.windows(4) {
            assert!(w[3] - w[0] >= 60_000);
        }
    }

    #[test]
    fn circuit_breaker_trips_and_clears() {
        let mut c = CircuitBreaker::new(16_000, Fx::from_num(0.10));
        assert!(!c.observe(0, Fx::from_num(100)));
        assert!(!c.observe(1_000, Fx::from_num(109)));
        assert!(c.observe(2_000, Fx::from_num(111)));
        // 100 has left the window (16 buckets of 1,000 ns later).
        assert!(!c.observe(17_500, Fx::from_num(111)));
    }
}
