//! Rate limits and the price circuit breaker, all driven by event time (never a clock read).

use crate::config::Fx;

/// A token bucket as a GCRA (generic cell rate algorithm): `capacity` actions per `window_ns`,
/// bursts up to `capacity`, refilled continuously by event time. Integer maths only.
///
/// Time only moves the bucket forward, so an engine that stops spending refills on its own:
/// it can never lock itself out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Time one token takes to refill, ns.
    interval_ns: i64,
    /// How far ahead of now the theoretical arrival time may run (burst).
    tolerance_ns: i64,
    /// Theoretical arrival time of the next action.
    tat_ns: i64,
}

impl TokenBucket {
    /// `capacity` actions per `window_ns` (capacity ≥ 1).
    pub fn new(capacity: u32, window_ns: i64) -> TokenBucket {
        let capacity = capacity.max(1) as i64;
        let interval_ns = (window_ns / capacity).max(1);
        TokenBucket {
            interval_ns,
            tolerance_ns: interval_ns * (capacity - 1),
            tat_ns: i64::MIN / 2,
        }
    }

    /// Whether an action is allowed at `now_ns` (without spending).
    #[inline]
    pub fn available(&self, now_ns: i64) -> bool {
        self.tat_ns.max(now_ns) - now_ns <= self.tolerance_ns
    }

    /// Spends one token if one is available at `now_ns`.
    #[inline]
    pub fn try_take(&mut self, now_ns: i64) -> bool {
        let tat = self.tat_ns.max(now_ns);
        if tat - now_ns > self.tolerance_ns {
            return false;
        }
        self.tat_ns = tat + self.interval_ns;
        true
    }

    /// Tokens available at `now_ns`.
    pub fn tokens(&self, now_ns: i64) -> i64 {
        let used = (self.tat_ns.max(now_ns) - now_ns + self.interval_ns - 1) / self.interval_ns;
        (self.tolerance_ns / self.interval_ns + 1 - used).max(0)
    }
}

const BUCKETS: usize = 16;

/// Fair-value circuit breaker over a sliding window of 16 buckets (granularity window / 16):
/// trips when the highest and lowest fair value seen in the window differ by more than
/// `max_change` of the lowest. Clears by itself once the move has left the window.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    bucket_ns: i64,
    max_change: Fx,
    /// Per bucket: (bucket index, min, max); index -1 is empty.
    buckets: [(i64, Fx, Fx); BUCKETS],
}

impl CircuitBreaker {
    /// A breaker for moves above `max_change` (ratio) within `window_ns`.
    pub fn new(window_ns: i64, max_change: Fx) -> CircuitBreaker {
        CircuitBreaker {
            bucket_ns: (window_ns / BUCKETS as i64).max(1),
            max_change,
            buckets: [(-1, Fx::ZERO, Fx::ZERO); BUCKETS],
        }
    }

    /// Records `fv` at `now_ns` and says whether the window holds a move beyond the limit.
    pub fn observe(&mut self, now_ns: i64, fv: Fx) -> bool {
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
    fn bucket_allows_a_burst_then_refills_with_time() {
        let mut b = TokenBucket::new(3, 60_000);
        assert!(b.try_take(0) && b.try_take(0) && b.try_take(0));
        assert!(!b.try_take(0));
        assert_eq!(b.tokens(0), 0);
        assert!(!b.try_take(19_999));
        assert!(b.try_take(20_000));
        // Idle for a long time: back to a full burst, never more.
        assert_eq!(b.tokens(10_000_000), 3);
        assert!(b.try_take(10_000_000) && b.try_take(10_000_000) && b.try_take(10_000_000));
        assert!(!b.try_take(10_000_000));
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
