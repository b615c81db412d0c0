//! `report.json`'s `hedging` section: one entry per `[[hedge]]` group, by its name.
//!
//! - `in_band_share`: share of the valid-book time (every member's book valid) with |delta|
//!   inside the band; `at_hard_limit_share` the share at or past the hard limit.
//! - `orders`: passive and active hedge orders placed, the active ones by their reason (age or
//!   hard limit), and what held hedges back.
//! - `cost`, in the hedge instruments' quote currency: `fees`; `spread` (each fill's reference
//!   price against the mid when the hedge was decided: the far touch for an active hedge, its
//!   own price for a passive one, so a passive hedge earns a negative spread); `slippage` (each
//!   fill against its reference); `governor_worst_case`, the active hedges as the engine's cost
//!   cap counted them (price limit plus taker fee).
//! - `lag_ms`: from |delta| leaving the band to its return inside it.
//! - `volume.maker_share`: the maker fills' share of the hedge volume (base asset).

use crate::hedge_metrics::HedgeMetrics;
use engine::Config;
use serde::Serialize;

/// One group's hedging.
#[derive(Debug, Serialize)]
pub struct HedgingReport {
    /// The quoted instruments, by their report keys.
    pub quoted: Vec<String>,
    /// The hedge instruments, by their report keys.
    pub hedge: Vec<String>,
    /// The delta's unit.
    pub base_asset: String,
    /// The band, base asset.
    pub band: f64,
    /// The hard limit, base asset.
    pub hard_limit: f64,
    /// The age limit, ms.
    pub max_age_ms: f64,
    /// Time with every member's book valid, s.
    pub valid_s: f64,
    /// Share of it with |delta| ≤ band.
    pub in_band_share: f64,
    /// Share of it with |delta| ≥ the hard limit.
    pub at_hard_limit_share: f64,
    /// Largest |delta| with valid books, base asset.
    pub max_abs_delta: f64,
    /// Mean |delta| over the valid-book time, base asset.
    pub mean_abs_delta: f64,
    /// Times |delta| left the band.
    pub breaches: u64,
    /// Hedge orders.
    pub orders: HedgeOrders,
    /// Hedge fills and volume.
    pub volume: HedgeVolume,
    /// What hedging cost.
    pub cost: HedgeCost,
    /// Breach → back inside the band.
    pub lag_ms: LagStats,
}

/// Hedge orders placed, and held back.
#[derive(Debug, Serialize)]
pub struct HedgeOrders {
    /// Post-only at the touch.
    pub passive: u64,
    /// IOC at the price limit.
    pub active: u64,
    /// Active because the breach reached `max_age_ms`.
    pub active_age: u64,
    /// Active because |delta| reached the hard limit.
    pub active_hard: u64,
    /// Passive orders cancelled to follow the touch or the delta.
    pub reprices: u64,
    /// Passive orders cancelled to make way for an active one.
    pub cancelled_for_active: u64,
    /// Hedge orders a rate budget held back (batches).
    pub rate_limited: u64,
    /// Breaches whose active hedge the cost cap held back.
    pub cost_capped: u64,
    /// Active hedges held back: the far touch past the price limit (batches).
    pub beyond_price_limit: u64,
    /// Breaches no hedge instrument could take (halted, no book, no room, below minimum).
    pub no_route: u64,
}

/// Hedge fills and volume.
#[derive(Debug, Serialize)]
pub struct HedgeVolume {
    /// Fills as maker (passive hedges).
    pub maker_fills: u64,
    /// Fills as taker (active hedges).
    pub taker_fills: u64,
    /// Maker volume, base asset.
    pub maker: f64,
    /// Taker volume, base asset.
    pub taker: f64,
    /// Maker volume / all hedge volume (0 without hedge volume).
    pub maker_share: f64,
}

/// Hedge cost, quote currency (positive: paid).
#[derive(Debug, Serialize)]
pub struct HedgeCost {
    /// Its currency.
    pub currency: String,
    /// Fees (negative: rebates).
    pub fees: f64,
    /// Spread paid against the mid when the hedge was decided.
    pub spread: f64,
    /// Fills against the price meant.
    pub slippage: f64,
    /// Sum of the three.
    pub total: f64,
    /// The active hedges at their worst case, as the cost cap counts them.
    pub governor_worst_case: f64,
}

/// Lag statistics, ms.
#[derive(Debug, Serialize)]
pub struct LagStats {
    /// Breaches that ended.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// Mean.
    pub mean: f64,
    /// Longest.
    pub max: u64,
}

impl HedgingReport {
    /// The report of `h`, a group of `cfg`.
    pub fn new(cfg: &Config, h: &HedgeMetrics) -> HedgingReport {
        let keys = crate::report::keys(cfg);
        let names = |ids: &[engine::InstrumentId]| -> Vec<String> {
            ids.iter()
                .filter_map(|&i| keys.get(i as usize).cloned())
                .collect()
        };
        let g = &cfg.hedges[h.group];
        let s = &h.stats;
        let all = h.maker_fills.1 + h.taker_fills.1;
        let lag = &h.lags_ms;
        let empty = lag.is_empty();
        HedgingReport {
            quoted: names(&g.quoted),
            hedge: names(&g.hedges),
            base_asset: h.base_asset.clone(),
            band: h.band,
            hard_limit: h.hard_limit,
            max_age_ms: h.max_age_ms,
            valid_s: h.valid_ns as f64 / 1e9,
            in_band_share: h.in_band_share(),
            at_hard_limit_share: if h.valid_ns > 0 {
                h.at_hard_ns as f64 / h.valid_ns as f64
            } else {
                0.0
            },
            max_abs_delta: h.max_abs_delta,
            mean_abs_delta: h.mean_abs_delta(),
            breaches: s.breaches,
            orders: HedgeOrders {
                passive: s.passive,
                active: s.active_age + s.active_hard,
                active_age: s.active_age,
                active_hard: s.active_hard,
                reprices: s.reprices,
                cancelled_for_active: s.cancelled_for_active,
                rate_limited: s.rate_limited,
                cost_capped: s.cost_capped,
                beyond_price_limit: s.beyond_price_limit,
                no_route: s.no_route,
            },
            volume: HedgeVolume {
                maker_fills: h.maker_fills.0,
                taker_fills: h.taker_fills.0,
                maker: h.maker_fills.1,
                taker: h.taker_fills.1,
                maker_share: if all > 0.0 {
                    h.maker_fills.1 / all
                } else {
                    0.0
                },
            },
            cost: HedgeCost {
                currency: h.quote_asset.clone(),
                fees: h.fees,
                spread: h.spread,
                slippage: h.slippage,
                total: h.fees + h.spread + h.slippage,
                governor_worst_case: h.governor_cost,
            },
            lag_ms: LagStats {
                count: lag.len(),
                p50: if empty { 0 } else { lag.value_at_quantile(0.5) },
                p90: if empty { 0 } else { lag.value_at_quantile(0.9) },
                mean: if empty { 0.0 } else { lag.mean() },
                max: if empty { 0 } else { lag.max() },
            },
        }
    }

    /// One line of the run's summary.
    pub fn summary(&self, name: &str) -> String {
        let c = &self.cost;
        format!(
            "  hedge {name}  |delta| in band {ib:.1}% of {v:.1} s valid book (band {b} {a}), max {mx:.5}, mean {mn:.5}; \
             orders passive {p}, active {ac} (age {ag}, hard {ha}); maker share {ms:.1}%; \
             cost fees {fe:+.4}, spread {sp:+.4}, slippage {sl:+.4} {cur}; lag p50 {l50} ms, max {lmax} ms\n",
            ib = self.in_band_share * 100.0,
            v = self.valid_s,
            b = self.band,
            a = self.base_asset,
            mx = self.max_abs_delta,
            mn = self.mean_abs_delta,
            p = self.orders.passive,
            ac = self.orders.active,
            ag = self.orders.active_age,
            ha = self.orders.active_hard,
            ms = self.volume.maker_share * 100.0,
            fe = c.fees,
            sp = c.spread,
            sl = c.slippage,
            cur = c.currency,
            l50 = self.lag_ms.p50,
            lmax = self.lag_ms.max,
        )
    }
}
