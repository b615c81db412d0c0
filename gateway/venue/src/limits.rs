//! Rate limits: request weight per IP per minute, orders per account per 10 s and per minute,
//! and the 418 ban of a client that keeps sending after 429s.
//!
//! Windows are fixed and aligned to the venue clock (a minute starts at a multiple of 60,000 ms,
//! ten seconds at a multiple of 10,000 ms), as Binance's interval counters are.

/// Request weight per IP per minute.
pub const WEIGHT_PER_MIN: u32 = 2400;
/// Orders per account per 10 s.
pub const ORDERS_PER_10S: u32 = 300;
/// Orders per account per minute.
pub const ORDERS_PER_MIN: u32 = 1200;
/// Requests a client may send while rate limited (after its first 429 of the window) before it
/// is banned.
pub const STRIKES_BEFORE_BAN: u32 = 10;
/// First ban, ms (Binance: 2 minutes, escalating to 3 days).
pub const FIRST_BAN_MS: i64 = 120_000;
/// Longest ban, ms.
pub const MAX_BAN_MS: i64 = 3 * 24 * 3_600_000;

/// A counter over fixed windows of `len_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    start: i64,
    count: u32,
}

impl Window {
    /// The count in the window holding `now_ms`.
    pub fn count(&self, len_ms: i64, now_ms: i64) -> u32 {
        if now_ms.div_euclid(len_ms) * len_ms == self.start {
            self.count
        } else {
            0
        }
    }

    /// Adds `n` in the window holding `now_ms`; the new count.
    pub fn add(&mut self, len_ms: i64, now_ms: i64, n: u32) -> u32 {
        let start = now_ms.div_euclid(len_ms) * len_ms;
        if start != self.start {
            self.start = start;
            self.count = 0;
        }
        self.count = self.count.saturating_add(n);
        self.count
    }

    /// Ms until the window holding `now_ms` ends.
    pub fn remaining_ms(len_ms: i64, now_ms: i64) -> i64 {
        len_ms - now_ms.rem_euclid(len_ms)
    }
}

/// One IP's weight and ban state.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpState {
    /// Weight in the current minute.
    pub weight: Window,
    /// Requests refused with 429 in the current minute.
    pub strikes: Window,
    /// Banned until (ms), 0 if not.
    pub banned_until: i64,
    /// Length of the last ban, ms (doubles on each new ban).
    pub last_ban_ms: i64,
}

/// The answer of [`IpState::charge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Allowed; the weight used in this minute.
    Ok(u32),
    /// 429: over the limit; retry after this many seconds.
    Limited(i64),
    /// 418: banned; retry after this many seconds.
    Banned(i64),
}

impl IpState {
    /// Charges a request of `weight` at `now_ms`.
    pub fn charge(&mut self, weight: u32, now_ms: i64) -> Charge {
        if now_ms < self.banned_until {
            return Charge::Banned(ceil_s(self.banned_until - now_ms));
        }
        let used = self.weight.count(60_000, now_ms);
        if used + weight > WEIGHT_PER_MIN {
            let strikes = self.strikes.add(60_000, now_ms, 1);
            if strikes > STRIKES_BEFORE_BAN {
                let ban = if self.last_ban_ms == 0 {
                    FIRST_BAN_MS
                } else {
                    (self.last_ban_ms * 2).min(MAX_BAN_MS)
                };
                self.last_ban_ms = ban;
                self.banned_until = now_ms + ban;
                return Charge::Banned(ceil_s(ban));
            }
            return Charge::Limited(ceil_s(Window::remaining_ms(60_000, now_ms)));
        }
        Charge::Ok(self.weight.add(60_000, now_ms, weight))
    }

    /// Weight used in the minute of `now_ms`.
    pub fn used(&self, now_ms: i64) -> u32 {
        self.weight.count(60_000, now_ms)
    }
}

fn ceil_s(ms: i64) -> i64 {
    (ms + 999) / 1000
}

/// One account's order counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderCounts {
    /// Orders in the current 10 s.
    pub ten_s: Window,
    /// Orders in the current minute.
    pub minute: Window,
}

impl OrderCounts {
    /// Counts one new order at `now_ms`; `Err` with Binance's `-1015` message when over a
    /// limit (the order is not counted then).
    pub fn take(&mut self, now_ms: i64) -> Result<(), String> {
        if self.ten_s.count(10_000, now_ms) >= ORDERS_PER_10S {
            return Err(format!(
                "Too many new orders; current limit is {ORDERS_PER_10S} orders per TEN_SECONDS."
            ));
        }
        if self.minute.count(60_000, now_ms) >= ORDERS_PER_MIN {
            return Err(format!(
                "Too many new orders; current limit is {ORDERS_PER_MIN} orders per MINUTE."
            ));
        }
        self.ten_s.add(10_000, now_ms, 1);
        self.minute.add(60_000, now_ms, 1);
        Ok(())
    }

    /// `(per 10 s, per minute)` counts at `now_ms`.
    pub fn counts(&self, now_ms: i64) -> (u32, u32) {
        (
            self.ten_s.count(10_000, now_ms),
            self.minute.count(60_000, now_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_on_boundaries() {
        let mut w = Window::default();
        assert_eq!(w.add(10_000, 5, 3), 3);
        assert_eq!(w.count(10_000, 9_999), 3);
        assert_eq!(w.count(10_000, 10_000), 0);
        assert_eq!(w.add(10_000, 10_001, 1), 1);
    }

    #[test]
    fn orders_limit_per_10s_then_minute() {
        let mut c = OrderCounts::default();
        for _ in 0..ORDERS_PER_10S {
            c.take(0).unwrap();
        }
        assert!(c.take(1).unwrap_err().contains("TEN_SECONDS"));
        assert_eq!(c.counts(1), (300, 300));
        for s in 1..4 {
            for _ in 0..ORDERS_PER_10S {
                c.take(s * 10_000).unwrap();
            }
        }
        assert!(c.take(40_000).unwrap_err().contains("MINUTE"));
        assert!(c.take(60_000).is_ok());
    }

    #[test]
    fn weight_429_then_418_escalating() {
        let mut ip = IpState::default();
        assert_eq!(ip.charge(2400, 0), Charge::Ok(2400));
        assert_eq!(ip.charge(1, 30_000), Charge::Limited(30));
        for _ in 1..STRIKES_BEFORE_BAN {
            assert!(matches!(ip.charge(1, 30_000), Charge::Limited(_)));
        }
        assert_eq!(ip.charge(1, 30_000), Charge::Banned(120));
        assert_eq!(ip.charge(1, 149_999), Charge::Banned(1));
        assert_eq!(ip.charge(1, 150_000), Charge::Ok(1));
        ip.charge(2399, 150_000);
        for _ in 0..=STRIKES_BEFORE_BAN {
            ip.charge(1, 151_000);
        }
        assert_eq!(ip.banned_until, 151_000 + 240_000);
    }
}
