//! What a backtest's `[[hedge]]` groups did: the delta over time, the share of the valid-book
//! time it stayed inside the band, the hedge orders and fills, their cost, and the lag from a
//! breach back into the band. Fed by the backtest driver after every batch; bounded memory
//! (the plot series thins itself, the lags go into a histogram, and only open hedge orders are
//! remembered).

use engine::{
    fee_in_base, Engine, ExecKind, ExecReport, HedgeStats, InstrumentId, InstrumentKind, Intent,
    IntentKind, Side, TimeInForce, DELTA_SCALE, SPOT_BASE_FEE_UNITS_PER_LOT,
};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// One point of the delta plot.
#[derive(Debug, Clone, Copy)]
pub struct DeltaPoint {
    /// Engine time, ns.
    pub t: i64,
    /// The group's delta, base asset (NaN: unknown).
    pub delta: f64,
}

/// A hedge order while it may still fill: how it was decided.
#[derive(Debug, Clone, Copy)]
struct HedgeOrder {
    instrument: InstrumentId,
    side: Side,
    /// The hedge instrument's mid when the order was decided, ticks.
    mid: f64,
    /// Where it meant to trade, ticks: its own price (passive), the far touch (active).
    reference: f64,
}

/// A group's hedging over a run.
#[derive(Debug)]
pub struct HedgeMetrics {
    /// The group's index in the config.
    pub group: usize,
    /// Its name.
    pub name: String,
    /// Base asset (the delta's unit).
    pub base_asset: String,
    /// The hedge instruments' quote asset (the costs' unit).
    pub quote_asset: String,
    /// The band, base asset.
    pub band: f64,
    /// The hard limit, base asset.
    pub hard_limit: f64,
    /// The age limit, ms.
    pub max_age_ms: f64,
    hedges: Vec<InstrumentId>,
    /// Each hedge instrument's grids, by instrument id (only the group's are used).
    instruments: Vec<engine::Instrument>,
    last: Option<(i64, Option<f64>, bool)>,
    /// Time with every member's book valid, ns.
    pub valid_ns: i64,
    /// Of it, time with |delta| ≤ band.
    pub in_band_ns: i64,
    /// Of it, time with |delta| ≥ the hard limit.
    pub at_hard_ns: i64,
    /// Largest |delta| seen with valid books, base asset.
    pub max_abs_delta: f64,
    /// Mean |delta| over valid-book time (accumulated, base asset × ns).
    abs_delta_ns: f64,
    breach: Option<i64>,
    /// Breach → back inside the band, ms.
    pub lags_ms: Histogram<u64>,
    /// The plot series.
    pub points: Vec<DeltaPoint>,
    plot_every: i64,
    orders: BTreeMap<u64, HedgeOrder>,
    /// Passive hedge orders placed.
    pub passive_orders: u64,
    /// Active hedge orders placed.
    pub active_orders: u64,
    /// Hedge fills as maker, and their volume (base asset).
    pub maker_fills: (u64, f64),
    /// Hedge fills as taker, and their volume (base asset).
    pub taker_fills: (u64, f64),
    /// Fees of the hedge fills, quote currency (negative: rebates).
    pub fees: f64,
    /// The spread paid: each fill's reference price against the mid when it was decided, quote
    /// currency (negative: a passive hedge earned it).
    pub spread: f64,
    /// Slippage: each fill's price against its reference, quote currency.
    pub slippage: f64,
    /// The engine's counters at the end.
    pub stats: HedgeStats,
    /// Active hedges' worst-case cost as the engine's governor counted it, quote currency.
    pub governor_cost: f64,
}

/// Every delta unit is this much of the base asset.
fn base(units: i128) -> f64 {
    units as f64 / 10f64.powi(DELTA_SCALE as i32)
}

fn step(g: &engine::Grid) -> f64 {
    g.mantissa() as f64 / 10f64.powi(g.scale() as i32)
}

impl HedgeMetrics {
    /// One per group of `engine`.
    pub fn all(engine: &Engine, cfg: &engine::Config) -> Vec<HedgeMetrics> {
        (0..engine.hedge_groups())
            .filter_map(|g| {
                let v = engine.hedge(g)?;
                let c = v.config;
                let first = |ids: &[InstrumentId]| &cfg.instruments[ids[0] as usize].instrument;
                Some(HedgeMetrics {
                    group: g,
                    name: c.name.clone(),
                    base_asset: first(&c.quoted).base_asset.as_str().to_owned(),
                    quote_asset: first(&c.hedges).quote_asset.as_str().to_owned(),
                    band: base(c.band),
                    hard_limit: base(c.hard_limit),
                    max_age_ms: c.max_age_ns as f64 / 1e6,
                    hedges: c.hedges.clone(),
                    instruments: cfg.instruments.iter().map(|i| i.instrument).collect(),
                    last: None,
                    valid_ns: 0,
                    in_band_ns: 0,
                    at_hard_ns: 0,
                    max_abs_delta: 0.0,
                    abs_delta_ns: 0.0,
                    breach: None,
                    lags_ms: Histogram::new_with_bounds(1, 86_400_000, 3)
                        .expect("static histogram bounds"),
                    points: Vec::new(),
                    plot_every: 1_000_000,
                    orders: BTreeMap::new(),
                    passive_orders: 0,
                    active_orders: 0,
                    maker_fills: (0, 0.0),
                    taker_fills: (0, 0.0),
                    fees: 0.0,
                    spread: 0.0,
                    slippage: 0.0,
                    stats: v.stats,
                    governor_cost: 0.0,
                })
            })
            .collect()
    }

    /// The group's state after a batch at `t`.
    pub fn sample(&mut self, t: i64, engine: &Engine) {
        let Some(v) = engine.hedge(self.group) else {
            return;
        };
        let delta = v.delta.map(base);
        if let Some((t0, Some(d), true)) = self.last {
            let dt = (t - t0).max(0);
            self.valid_ns += dt;
            if d.abs() <= self.band {
                self.in_band_ns += dt;
            }
            if d.abs() >= self.hard_limit {
                self.at_hard_ns += dt;
            }
            self.abs_delta_ns += d.abs() * dt as f64;
        }
        if let (Some(d), true) = (delta, v.valid) {
            self.max_abs_delta = self.max_abs_delta.max(d.abs());
        }
        match (self.breach, v.breach_since) {
            (Some(since), None) => {
                let ms = ((t - since) as f64 / 1e6).ceil().max(1.0) as u64;
                self.lags_ms.saturating_record(ms);
                self.breach = None;
            }
            (None, Some(since)) => self.breach = Some(since),
            _ => {}
        }
        if self
            .points
            .last()
            .is_none_or(|p| t - p.t >= self.plot_every)
        {
            crate::metrics::thin_when_full(&mut self.points, &mut self.plot_every);
            self.points.push(DeltaPoint {
                t,
                delta: delta.unwrap_or(f64::NAN),
            });
        }
        self.last = Some((t, delta, v.valid));
        self.stats = v.stats;
        self.governor_cost = v.cost_total.to_num::<f64>();
    }

    /// An intent the engine just made (`engine` as it made it).
    pub fn on_intent(&mut self, i: &Intent, engine: &Engine) {
        if i.kind != IntentKind::Place || !self.hedges.contains(&i.instrument) {
            return;
        }
        let Some(v) = engine.instrument(i.instrument) else {
            return;
        };
        let (Some(b), Some(a)) = (v.book.best_bid(), v.book.best_ask()) else {
            return;
        };
        let active = i.tif == TimeInForce::Ioc;
        let reference = match (active, i.side) {
            (false, _) => i.price,
            (true, Side::Bid) => a,
            (true, Side::Ask) => b,
        };
        if active {
            self.active_orders += 1;
        } else {
            self.passive_orders += 1;
        }
        self.orders.insert(
            i.client_order_id,
            HedgeOrder {
                instrument: i.instrument,
                side: i.side,
                mid: (b + a) as f64 / 2.0,
                reference: reference as f64,
            },
        );
    }

    /// An execution report of `instrument`.
    pub fn on_report(&mut self, instrument: InstrumentId, x: &ExecReport) {
        if !self.hedges.contains(&instrument) {
            return;
        }
        let Some(o) = self.orders.get(&x.client_order_id).copied() else {
            return;
        };
        if o.instrument != instrument {
            return;
        }
        if matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill) && x.last_qty > 0 {
            let inst = &self.instruments[instrument as usize];
            let qty_base = match inst.kind {
                // Contracts of a contract size in USD: their base at the fill's price.
                InstrumentKind::Inverse => {
                    x.last_qty as f64 * inst.contract_ticks as f64 / x.last_price as f64
                }
                _ => x.last_qty as f64 * step(&inst.lot),
            };
            let tick = step(&inst.tick);
            let s = if o.side == Side::Bid { 1.0 } else { -1.0 };
            // Quote currency per tick of price move: base × tick (linear, spot); for inverse the
            // same at the fill's price.
            let per_tick = qty_base * tick;
            self.spread += s * (o.reference - o.mid) * per_tick;
            self.slippage += s * (x.last_price as f64 - o.reference) * per_tick;
            let price = x.last_price as f64 * tick;
            self.fees += if fee_in_base(inst, o.side) {
                x.fee as f64 / SPOT_BASE_FEE_UNITS_PER_LOT as f64 * step(&inst.lot) * price
            } else {
                let money = inst.money_unit().to_f64(i128::from(x.fee));
                if inst.kind == InstrumentKind::Inverse {
                    money * price
                } else {
                    money
                }
            };
            let f = if x.taker {
                &mut self.taker_fills
            } else {
                &mut self.maker_fills
            };
            f.0 += 1;
            f.1 += qty_base;
        }
        if matches!(
            x.kind,
            ExecKind::Fill | ExecKind::Canceled | ExecKind::Rejected | ExecKind::Expired
        ) {
            self.orders.remove(&x.client_order_id);
        }
    }

    /// Share of the valid-book time with |delta| inside the band.
    pub fn in_band_share(&self) -> f64 {
        if self.valid_ns > 0 {
            self.in_band_ns as f64 / self.valid_ns as f64
        } else {
            0.0
        }
    }

    /// Mean |delta| over the valid-book time, base asset.
    pub fn mean_abs_delta(&self) -> f64 {
        if self.valid_ns > 0 {
            self.abs_delta_ns / self.valid_ns as f64
        } else {
            0.0
        }
    }

    /// Hedge orders still tracked (open): bounded by the hedge instruments' order slots.
    pub fn tracked_orders(&self) -> usize {
        self.orders.len()
    }
}
