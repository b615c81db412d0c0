//! Rate limits: request weight per IP per minute, orders per account per 10 s and per minute,
//! and the 418 ban of a client that keeps sending after 429s.
//!
//! Windows are fixed and aligned to the venue clock (a minute starts at a multiple of 60,000 ms,
//! ten seconds at a multiple of 10,000 ms), as Binance's interval counters are.
//!
//! An IP has one weight budget ([`IpWeights`]): its public market-data requests (answered by the
//! server), its signed REST requests and its WebSocket API requests all charge it, and
//! `X-MBX-USED-WEIGHT-1M` reports the sum.

use std::collections::BTreeMap;

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

/// The IP of a peer address (`127.0.0.1:54321` → `127.0.0.1`).
pub fn ip_of(peer: &str) -> &str {
    peer.rsplit_once(':').map_or(peer, |(ip, _)| ip)
}

/// The request weight of every IP: one [`IpState`] per IP, charged by each request in arrival
/// order on the venue clock. A request charged with a venue time earlier than one charged
/// before it (threads race between reading the clock and charging) counts at the later time, so
/// a minute's count never restarts behind the clock.
#[derive(Debug, Clone, Default)]
pub struct IpWeights {
    ips: BTreeMap<String, IpState>,
    last_ms: i64,
}

/// What [`IpWeights::charge`] did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    /// Allowed, or refused (429 / 418).
    pub charge: Charge,
    /// The IP's weight in the minute after the request (`X-MBX-USED-WEIGHT-1M`; a refused
    /// request adds nothing).
    pub used: u32,
    /// The venue time it was charged at, ms.
    pub now_ms: i64,
}

/// A refused request, as Binance answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 429 (rate limited) or 418 (banned).
    pub status: u16,
    /// `-1003`.
    pub code: i32,
    /// Binance's message.
    pub msg: String,
    /// Seconds until the client may retry (`Retry-After`): the minute's end for a 429, the
    /// ban's end for a 418.
    pub retry_after_s: i64,
}

impl IpWeights {
    /// Charges a request of `weight` from `peer` (an address; its IP is what counts) at
    /// `now_ms`.
    pub fn charge(&mut self, peer: &str, weight: u32, now_ms: i64) -> Charged {
        let now_ms = now_ms.max(self.last_ms);
        self.last_ms = now_ms;
        let ip = self.ips.entry(ip_of(peer).to_string()).or_default();
        let charge = ip.charge(weight, now_ms);
        Charged {
            charge,
            used: ip.used(now_ms),
            now_ms,
        }
    }

    /// The weight `peer`'s IP used in the minute of `now_ms`.
    pub fn used(&self, peer: &str, now_ms: i64) -> u32 {
        self.ips
            .get(ip_of(peer))
            .map_or(0, |s| s.used(now_ms.max(self.last_ms)))
    }
}

impl Charged {
    /// The refusal, `None` if the request is allowed.
    pub fn refusal(&self) -> Option<Refusal> {
        let (status, msg, retry_after_s) = match self.charge {
            Charge::Ok(_) => return None,
            Charge::Limited(s) => (
                429,
                format!("Too many requests; current limit of IP is {WEIGHT_PER_MIN} requests per minute. Please use WebSocket Streams for live updates to avoid polling the API."),
                s,
            ),
            Charge::Banned(s) => (
                418,
                format!("Way too many requests; IP banned until {}. Please use WebSocket Streams for live updates to avoid bans.", self.now_ms + s * 1000),
                s,
            ),
        };
        Some(Refusal {
            status,
            code: -1003,
            msg,
            retry_after_s,
        })
    }
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

    #[test]
    fn one_budget_per_ip_whatever_the_port_and_never_behind_the_clock() {
        let mut w = IpWeights::default();
        assert_eq!(w.charge("127.0.0.1:1000", 20, 59_000).used, 20);
        assert_eq!(w.charge("127.0.0.1:2000", 40, 59_500).used, 60);
        assert_eq!(w.charge("127.0.0.2:1000", 1, 59_500).used, 1);
        assert_eq!(w.used("127.0.0.1:3000", 59_900), 60);
        // The next minute starts afresh...
        assert_eq!(w.charge("127.0.0.1:1000", 1, 60_000).used, 1);
        // ...and a request that read the clock before it counts in it, not back in the last.
        let late = w.charge("127.0.0.1:1000", 1, 59_999);
        assert_eq!((late.used, late.now_ms), (2, 60_000));
        assert_eq!(w.used("127.0.0.1:1", 59_999), 2);
    }

    #[test]
    fn refusals_are_binances_429_and_418() {
        let mut w = IpWeights::default();
        assert_eq!(w.charge("1.2.3.4:5", WEIGHT_PER_MIN, 0).refusal(), None);
        let r = w.charge("1.2.3.4:5", 1, 45_500);
        assert_eq!((r.charge, r.used), (Charge::Limited(15), WEIGHT_PER_MIN));
        let r = r.refusal().unwrap();
        assert_eq!((r.status, r.code, r.retry_after_s), (429, -1003, 15));
        assert!(r
            .msg
            .starts_with("Too many requests; current limit of IP is 2400"));
        for _ in 1..STRIKES_BEFORE_BAN {
            assert_eq!(
                w.charge("1.2.3.4:6", 1, 45_500).refusal().unwrap().status,
                429
            );
        }
        let r = w.charge("1.2.3.4:7", 1, 46_000).refusal().unwrap();
        assert_eq!((r.status, r.code, r.retry_after_s), (418, -1003, 120));
        assert!(r.msg.contains("IP banned until 166000."), "{}", r.msg);
    }
}
