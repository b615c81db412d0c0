//! What a backtest measures as it runs: fills, quoting state over time, PnL path, order flow.
//! Time-weighted figures use simulated time between consecutive samples (one per batch).

use engine::OrderState;
use engine::{Engine, Fx, InstrumentConfig, InstrumentKind, Intent, IntentKind, Mode, OffsetUnit};
use engine::{ExecKind, ExecReport, Side};
use std::collections::HashMap;

const MINUTE_NS: i64 = 60_000_000_000;

/// The distances from mid (bps) at which [`Metrics::both_within_ns`] measures both sides.
pub const WITHIN_BPS: [f64; 3] = [2.0, 5.0, 10.0];

/// The lower edges (bps from mid) of the fill buckets of [`Metrics::markouts_by_distance`]; the
/// last bucket has no upper edge.
pub const DISTANCE_EDGES_BPS: [f64; 5] = [0.0, 2.0, 5.0, 10.0, 25.0];

/// A discretionary cancel counts as near the touch within this many bps of it.
pub const NEAR_TOUCH_BPS: f64 = 10.0;

/// Markouts of a set of fills: how many, and the mean at 1 s and 5 s (see
/// [`Metrics::markout_bps`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BucketMarkouts {
    /// Fills in the bucket.
    pub fills: usize,
    /// Mean markout at 1 s, bps.
    pub s1_bps: Option<f64>,
    /// Mean markout at 5 s, bps.
    pub s5_bps: Option<f64>,
}

/// The most plot points a run keeps (about 1 MB; with `[instrument.quote.adapt]`, as many
/// [`AdaptPoint`]s besides, about 0.5 MB); see [`Metrics::sample`].
pub const MAX_POINTS: usize = 1 << 14;

/// One fill of ours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    /// Simulated time it reached the engine, ns.
    pub t: i64,
    /// Signed quantity, lots (buy > 0).
    pub qty: i64,
    /// Price, ticks.
    pub price: i64,
    /// As taker.
    pub taker: bool,
}

/// A point of the plotted series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Simulated time, ns.
    pub t: i64,
    /// Mid, ticks (NaN when the book has no two sides).
    pub mid: f64,
    /// Our best live bid, ticks.
    pub bid: Option<i64>,
    /// Our best live ask, ticks.
    pub ask: Option<i64>,
    /// Position, lots.
    pub pos: i64,
    /// Total PnL (realized + unrealized − fees), money units.
    pub pnl: f64,
}

/// A point of the adaptive spreads' plotted series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptPoint {
    /// Simulated time, ns.
    pub t: i64,
    /// Volatility estimate, bps per √s (NaN before it warmed up).
    pub sigma_bps: f64,
    /// Scale on the grid's distances, bid then ask (1: as configured).
    pub scale: [f64; 2],
}

/// The adaptive spreads' state at one instant (from [`engine::AdaptView`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptSample {
    /// Volatility estimate, bps per √s (`None`: not warmed up).
    pub sigma_bps: Option<f64>,
    /// Scale the last requote applied to the grid's distances, bid then ask.
    pub scale: [f64; 2],
    /// The engine's counters, in [`AdaptCounts`] order: requotes, widened by volatility,
    /// widened by toxicity, sides pulled, model quotes.
    pub counts: [u64; 5],
}

impl AdaptSample {
    /// Reads an engine's view.
    pub fn of(v: &engine::AdaptView) -> AdaptSample {
        AdaptSample {
            sigma_bps: v.sigma_bps.map(|x| x.to_num::<f64>()),
            scale: v.scale.map(|x| x.to_num::<f64>()),
            counts: [
                v.requotes,
                v.widened_vol,
                v.widened_toxic,
                v.pulled,
                v.modelled,
            ],
        }
    }
}

/// The adaptive spreads' counters over a run (summed across a reload that rebuilt the
/// estimators).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdaptCounts {
    /// Requotes priced with `[instrument.quote.adapt]`.
    pub requotes: u64,
    /// Requotes whose offsets volatility widened.
    pub widened_vol: u64,
    /// Requotes that toxicity (VPIN, trade imbalance) widened.
    pub widened_toxic: u64,
    /// Requotes that pulled a side's nearest layers.
    pub pulled: u64,
    /// Requotes whose layer 0 a model set.
    pub modelled: u64,
}

/// What `[instrument.quote.adapt]` did over a run, accumulated from the samples.
#[derive(Debug)]
pub struct AdaptMetrics {
    /// The engine's counters.
    pub counts: AdaptCounts,
    /// The counters at the previous sample (what the next one adds to).
    last_counts: [u64; 5],
    /// σ (in units of 10^-4 bps per √s) weighted by the valid-book time it held, ns: only the
    /// time with an estimate (after warm-up).
    pub sigma_e4_ns: hdrhistogram::Histogram<u64>,
    /// The largest σ held over valid-book time, bps per √s.
    pub sigma_max: Option<f64>,
    /// Σ scale × time over valid-book time, bid then ask (scale · ns).
    pub scale_ns: [f64; 2],
    /// Valid-book time the state was known, ns (what [`AdaptMetrics::scale_ns`] divides by).
    pub valid_ns: i64,
    /// σ at the end of the run, bps per √s.
    pub final_sigma_bps: Option<f64>,
    /// Downsampled σ and scale for the plot (every `plot_every` ns).
    pub points: Vec<AdaptPoint>,
    plot_every: i64,
}

impl Default for AdaptMetrics {
    fn default() -> AdaptMetrics {
        AdaptMetrics {
            counts: AdaptCounts::default(),
            last_counts: [0; 5],
            // Auto-resizing from 3 significant digits: grows to the largest σ seen, no further.
            sigma_e4_ns: hdrhistogram::Histogram::new(3).expect("3 significant digits are valid"),
            sigma_max: None,
            scale_ns: [0.0; 2],
            valid_ns: 0,
            final_sigma_bps: None,
            points: Vec::new(),
            plot_every: PLOT_EVERY_NS,
        }
    }
}

impl AdaptMetrics {
    /// Adds what the counters did since the previous sample (a counter that went back was
    /// rebuilt by a reload: all of it is new).
    fn absorb(&mut self, now: &[u64; 5]) {
        let mut d = [0u64; 5];
        for (k, x) in d.iter_mut().enumerate() {
            *x = if now[k] >= self.last_counts[k] {
                now[k] - self.last_counts[k]
            } else {
                now[k]
            };
        }
        self.last_counts = *now;
        let c = &mut self.counts;
        c.requotes += d[0];
        c.widened_vol += d[1];
        c.widened_toxic += d[2];
        c.pulled += d[3];
        c.modelled += d[4];
    }

    /// `prev` held for `dt` ns of valid-book time.
    fn held(&mut self, prev: &AdaptSample, dt: i64) {
        self.valid_ns += dt;
        for k in 0..2 {
            self.scale_ns[k] += prev.scale[k] * dt as f64;
        }
        if let Some(sig) = prev.sigma_bps.filter(|s| s.is_finite() && *s >= 0.0) {
            if dt > 0 {
                // Grows to hold the value; the only failure left is an index past usize.
                let _ = self
                    .sigma_e4_ns
                    .record_n((sig * 1e4).round() as u64, dt as u64);
            }
            self.sigma_max = Some(self.sigma_max.map_or(sig, |m| m.max(sig)));
        }
    }

    /// The time-weighted quantile `q` of σ over valid-book time, bps per √s (`None`: no
    /// estimate was ever held).
    pub fn sigma_quantile(&self, q: f64) -> Option<f64> {
        let h = &self.sigma_e4_ns;
        if h.is_empty() {
            return None;
        }
        let v = h.median_equivalent(h.value_at_quantile(q)) as f64 / 1e4;
        Some(self.sigma_max.map_or(v, |m| v.min(m)))
    }

    /// The time-weighted mean scale per side over valid-book time (1 with none).
    pub fn mean_scale(&self) -> [f64; 2] {
        if self.valid_ns > 0 {
            self.scale_ns.map(|x| x / self.valid_ns as f64)
        } else {
            [1.0; 2]
        }
    }
}

/// How often a run's plot points are taken at first, ns of simulated time.
const PLOT_EVERY_NS: i64 = 250_000_000;

/// The engine's state at one instant, as the metrics need it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    mode: Mode,
    valid: bool,
    mid: Option<f64>,
    fv: Option<Fx>,
    bid: Option<i64>,
    ask: Option<i64>,
    pos: i64,
    pnl: i128,
    /// The book's best bid and ask, ticks.
    touch: [Option<i64>; 2],
    /// Where the engine wants layer 0, bid then ask, ticks.
    desired: [Option<i64>; 2],
    /// The requote tolerance, whole ticks (as the engine's diff rounds it).
    tol: i64,
    /// The adaptive spreads' state (`None` without `[instrument.quote.adapt]`).
    adapt: Option<AdaptSample>,
}

impl Sample {
    /// Reads `instrument` of `engine`.
    pub fn of(engine: &Engine, instrument: u16) -> Sample {
        let Some(v) = engine.instrument(instrument) else {
            return Sample {
                mode: Mode::Halted,
                valid: false,
                mid: None,
                fv: None,
                bid: None,
                ask: None,
                pos: 0,
                pnl: 0,
                touch: [None; 2],
                desired: [None; 2],
                tol: 0,
                adapt: None,
            };
        };
        let mid = match (v.book.best_bid(), v.book.best_ask()) {
            (Some(b), Some(a)) => Some((b + a) as f64 / 2.0),
            _ => None,
        };
        // Our best live quote per side: the open orders by price, from the touch inwards, to
        // the first one live (usually the first).
        let live = |&(price, cid): &(i64, u64)| {
            v.orders
                .get(cid)
                .filter(|o| o.state == OrderState::Live)
                .map(|_| price)
        };
        let bid = v
            .orders
            .open_by_price(Side::Bid)
            .iter()
            .rev()
            .find_map(live);
        let ask = v.orders.open_by_price(Side::Ask).iter().find_map(live);
        let fv = v.fair_value;
        // The tolerance as the engine's diff takes it: ticks, or bps of the fair value, floored.
        let tol = match v.config.offset_unit {
            OffsetUnit::Ticks => v.config.tolerance,
            OffsetUnit::Bps => fv.map_or(Fx::ZERO, |fv| {
                fv.saturating_mul(v.config.tolerance) / 10_000
            }),
        }
        .floor()
        .to_num::<i64>();
        Sample {
            mode: v.mode.0,
            valid: v.book.is_valid() && mid.is_some(),
            mid,
            fv,
            bid,
            ask,
            pos: v.position.qty,
            pnl: fv.map_or(v.position.realized - v.position.fees, |fv| {
                v.position.total_pnl(&v.config.instrument, fv)
            }),
            touch: [v.book.best_bid(), v.book.best_ask()],
            desired: v.desired_best,
            tol,
            adapt: v.adapt.as_ref().map(AdaptSample::of),
        }
    }

    /// Position of `instrument`, lots.
    pub fn position(engine: &Engine, instrument: u16) -> i64 {
        engine.instrument(instrument).map_or(0, |v| v.position.qty)
    }
}

/// Accumulated metrics.
#[derive(Debug)]
pub struct Metrics {
    /// The instrument's id (its place in the config).
    pub id: u16,
    /// The instrument (kind, grids, units).
    pub instrument: engine::Instrument,
    /// The instrument's venue.
    pub venue: engine::VenueFlavour,
    /// Spot: the starting balances.
    pub balances: Option<engine::Balances>,
    /// One money unit in the PnL currency (tick × lot of quote; 10^-12 coin for inverse).
    pub unit: f64,
    /// One notional unit in the quote currency.
    pub notional_unit: f64,
    /// Tick size in quote currency.
    pub tick: f64,
    /// Lot size in base units.
    pub lot: f64,
    /// Our fills.
    pub fills: Vec<Fill>,
    /// Mid changes: (t, mid ticks).
    pub mids: Vec<(i64, f64)>,
    /// Downsampled series for plots (every `plot_every` ns).
    pub points: Vec<Point>,
    plot_every: i64,
    /// Places / cancels (all, discretionary) per minute bucket.
    pub places_per_min: Vec<u64>,
    /// Cancels per minute bucket.
    pub cancels_per_min: Vec<u64>,
    /// Times of discretionary cancels (budgeted).
    pub discretionary_cancels: Vec<i64>,
    /// Per discretionary cancel (in the order of [`Metrics::discretionary_cancels`]): how far
    /// the cancelled order was from the same side's touch when the cancel was sent, bps of the
    /// touch; `None` when its price or that touch is unknown.
    pub discretionary_distance_bps: Vec<Option<f64>>,
    /// Cancels forced by risk or mode (exempt from the budget).
    pub forced_cancels: u64,
    /// Place intents per side (bid, ask).
    pub placed_by_side: [u64; 2],
    /// Simulated time with a valid book and both our best bid and ask within each of
    /// [`WITHIN_BPS`] of mid, ns.
    pub both_within_ns: [i64; 3],
    /// Simulated time with a valid book and a side's quote stale (bid, ask), ns: the engine
    /// wants a layer 0 on that side and our best live order there is missing or farther than
    /// the tolerance from it.
    pub stale_ns: [i64; 2],
    /// Side and price of the orders placed, by client order id (forgotten when cancelled).
    order_prices: HashMap<u64, (Side, i64)>,
    /// Discretionary cancels of this batch, waiting for the batch's sample (the touch they
    /// were sent against): the order's side and price.
    pending_cancels: Vec<(Side, Option<i64>)>,
    /// The cancel budget per minute.
    pub cancel_budget: u32,
    /// Net max, lots.
    pub net_max: i64,
    start: Option<i64>,
    last: Option<(i64, Sample)>,
    /// Simulated time with a valid book, ns.
    pub valid_ns: i64,
    /// Simulated time with a valid book and both sides quoted, ns.
    pub quoted_ns: i64,
    /// Σ quoted spread (ticks) × time, while both sides quoted.
    pub spread_ticks_ns: f64,
    /// Σ |position| × time (lots·ns).
    pub abs_pos_ns: f64,
    /// Position extremes, lots.
    pub pos_min: i64,
    /// Position extremes, lots.
    pub pos_max: i64,
    /// Peak PnL, money units.
    pub pnl_peak: i128,
    /// Max drawdown from a peak, money units.
    pub max_drawdown: i128,
    /// Simulated start and end, ns.
    pub span: (i64, i64),
    /// Time in each mode, ns: normal, reduce-only, halted.
    pub mode_ns: [i64; 3],
    /// Final engine figures, filled by [`Metrics::finish`].
    pub final_position: Option<engine::Position>,
    /// Final fair value, ticks.
    pub final_fv: Option<Fx>,
    /// The first fair value of the run, ticks (what starting balances are valued at).
    pub first_fv: Option<Fx>,
    /// Engine order counters at the end.
    pub order_stats: Option<engine::OrderStats>,
    /// What `[instrument.quote.adapt]` did (`None`: the instrument has no such section, and
    /// no reload gave it one).
    pub adapt: Option<AdaptMetrics>,
}

impl Metrics {
    /// Metrics for instrument `id`.
    pub fn new(id: u16, cfg: &InstrumentConfig) -> Metrics {
        let g = |s: String| s.parse::<f64>().unwrap_or(f64::NAN);
        let tick = g(cfg.instrument.tick.format(1));
        let lot = g(cfg.instrument.lot.format(1));
        Metrics {
            id,
            instrument: cfg.instrument,
            venue: cfg.venue,
            balances: cfg.balances,
            unit: cfg.instrument.money_unit().to_f64(1),
            notional_unit: cfg.instrument.notional_unit().to_f64(1),
            tick,
            lot,
            fills: Vec::new(),
            mids: Vec::new(),
            points: Vec::new(),
            plot_every: PLOT_EVERY_NS,
            places_per_min: Vec::new(),
            cancels_per_min: Vec::new(),
            discretionary_cancels: Vec::new(),
            discretionary_distance_bps: Vec::new(),
            forced_cancels: 0,
            placed_by_side: [0; 2],
            both_within_ns: [0; 3],
            stale_ns: [0; 2],
            order_prices: HashMap::new(),
            pending_cancels: Vec::new(),
            cancel_budget: cfg.cancel_budget_per_min,
            net_max: cfg.net_max,
            start: None,
            last: None,
            valid_ns: 0,
            quoted_ns: 0,
            spread_ticks_ns: 0.0,
            abs_pos_ns: 0.0,
            pos_min: 0,
            pos_max: 0,
            pnl_peak: 0,
            max_drawdown: 0,
            span: (0, 0),
            mode_ns: [0; 3],
            final_position: None,
            final_fv: None,
            first_fv: None,
            order_stats: None,
            adapt: cfg.adapt.is_some().then(AdaptMetrics::default),
        }
    }

    fn minute(&mut self, t: i64) -> usize {
        let start = *self.start.get_or_insert(t);
        ((t - start).max(0) / MINUTE_NS) as usize
    }

    /// Minute buckets the run spans from its first intent to its end (each one started, the
    /// last possibly partial): what per-minute means divide by.
    pub fn minute_buckets(&self) -> usize {
        let spanned = self
            .start
            .map_or(0, |s| ((self.span.1 - s).max(0) / MINUTE_NS) as usize + 1);
        spanned
            .max(self.cancels_per_min.len())
            .max(self.places_per_min.len())
    }

    /// An intent the engine sent.
    pub fn on_intent(&mut self, i: &Intent) {
        let m = self.minute(i.time_ns);
        let v = match i.kind {
            IntentKind::Place => &mut self.places_per_min,
            IntentKind::Cancel => &mut self.cancels_per_min,
        };
        if v.len() <= m {
            v.resize(m + 1, 0);
        }
        v[m] += 1;
        match i.kind {
            IntentKind::Place => {
                self.placed_by_side[i.side as usize] += 1;
                self.order_prices
                    .insert(i.client_order_id, (i.side, i.price));
            }
            IntentKind::Cancel => {
                let placed = self.order_prices.remove(&i.client_order_id);
                if i.forced {
                    self.forced_cancels += 1;
                } else {
                    self.discretionary_cancels.push(i.time_ns);
                    // The side the cancel names; the price if we saw the order placed.
                    let price = placed.filter(|p| p.0 == i.side).map(|p| p.1);
                    self.pending_cancels.push((i.side, price));
                }
            }
        }
    }

    /// Gives this batch's discretionary cancels their distance from `touch` (bid, ask).
    fn resolve_cancels(&mut self, touch: [Option<i64>; 2]) {
        for (side, price) in self.pending_cancels.drain(..) {
            let d = match (price, touch[side as usize]) {
                (Some(p), Some(t)) if t > 0 => Some((p - t).abs() as f64 / t as f64 * 1e4),
                _ => None,
            };
            self.discretionary_distance_bps.push(d);
        }
    }

    /// An execution report reached the engine: an order that is done (filled, rejected,
    /// expired, cancelled) is forgotten, so the prices kept for cancels stay as few as the
    /// orders that can still be cancelled.
    pub fn on_report(&mut self, x: &ExecReport) {
        if matches!(
            x.kind,
            ExecKind::Fill | ExecKind::Canceled | ExecKind::Rejected | ExecKind::Expired
        ) {
            self.order_prices.remove(&x.client_order_id);
        }
    }

    /// The orders whose price is kept for their cancel (placed, not yet done or cancelled).
    pub fn tracked_orders(&self) -> usize {
        self.order_prices.len()
    }

    /// A fill of ours reached the engine.
    pub fn on_fill(&mut self, t: i64, qty: i64, price: i64, taker: bool) {
        self.fills.push(Fill {
            t,
            qty,
            price,
            taker,
        });
    }

    /// The engine's state after a batch at `t`.
    pub fn sample(&mut self, t: i64, s: &Sample) {
        self.start.get_or_insert(t);
        if let Some((t0, prev)) = self.last {
            let dt = (t - t0).max(0);
            if prev.valid {
                self.valid_ns += dt;
                if let (Some(b), Some(a)) = (prev.bid, prev.ask) {
                    self.quoted_ns += dt;
                    self.spread_ticks_ns += (a - b) as f64 * dt as f64;
                    if let Some(mid) = prev.mid {
                        for (k, n) in WITHIN_BPS.iter().enumerate() {
                            if b as f64 >= mid * (1.0 - n / 1e4)
                                && a as f64 <= mid * (1.0 + n / 1e4)
                            {
                                self.both_within_ns[k] += dt;
                            }
                        }
                    }
                }
                for (k, best) in [prev.bid, prev.ask].into_iter().enumerate() {
                    if let Some(want) = prev.desired[k] {
                        if best.is_none_or(|p| (p - want).abs() > prev.tol) {
                            self.stale_ns[k] += dt;
                        }
                    }
                }
            }
            if let (true, Some(pa), Some(a)) = (prev.valid, &prev.adapt, &mut self.adapt) {
                a.held(pa, dt);
            }
            self.abs_pos_ns += prev.pos.unsigned_abs() as f64 * dt as f64;
            self.mode_ns[prev.mode as usize] += dt;
        } else {
            self.span.0 = t;
        }
        self.span.1 = t;
        self.resolve_cancels(s.touch);
        if let Some(mid) = s.mid {
            if self.mids.last().is_none_or(|&(_, m)| m != mid) {
                self.mids.push((t, mid));
            }
        }
        self.pos_min = self.pos_min.min(s.pos);
        self.pos_max = self.pos_max.max(s.pos);
        if self.first_fv.is_none() {
            self.first_fv = s.fv;
        }
        if s.fv.is_some() {
            self.pnl_peak = self.pnl_peak.max(s.pnl);
            self.max_drawdown = self.max_drawdown.max(self.pnl_peak - s.pnl);
        }
        if self
            .points
            .last()
            .is_none_or(|p| t - p.t >= self.plot_every)
        {
            thin_when_full(&mut self.points, &mut self.plot_every);
            self.points.push(Point {
                t,
                mid: s.mid.unwrap_or(f64::NAN),
                bid: s.bid,
                ask: s.ask,
                pos: s.pos,
                pnl: s.pnl as f64,
            });
        }
        if let Some(sa) = &s.adapt {
            let a = self.adapt.get_or_insert_with(AdaptMetrics::default);
            a.absorb(&sa.counts);
            if a.points.last().is_none_or(|p| t - p.t >= a.plot_every) {
                thin_when_full(&mut a.points, &mut a.plot_every);
                a.points.push(AdaptPoint {
                    t,
                    sigma_bps: sa.sigma_bps.unwrap_or(f64::NAN),
                    scale: sa.scale,
                });
            }
        }
        self.last = Some((t, *s));
    }

    /// Records the engine's final state.
    pub fn finish(&mut self, engine: &Engine) {
        self.resolve_cancels(Sample::of(engine, self.id).touch);
        if let Some(v) = engine.instrument(self.id) {
            self.final_position = Some(*v.position);
            self.final_fv = v.fair_value;
            self.order_stats = Some(v.orders.stats());
            if let (Some(va), Some(a)) = (&v.adapt, &mut self.adapt) {
                let sa = AdaptSample::of(va);
                a.absorb(&sa.counts);
                a.final_sigma_bps = sa.sigma_bps;
            }
        }
    }

    /// Mid (ticks) at or just before `t`.
    pub fn mid_at(&self, t: i64) -> Option<f64> {
        let k = self.mids.partition_point(|&(ts, _)| ts <= t);
        (k > 0).then(|| self.mids[k - 1].1)
    }

    /// Mean markout of our fills at horizon `h` ns, in bps of the fill price: positive means
    /// the market moved our way after the fill. Fills closer than `h` to the end are left out.
    pub fn markout_bps(&self, h: i64) -> Option<(f64, usize)> {
        self.markout_bps_of(h, |_| true)
    }

    /// [`Metrics::markout_bps`] over the fills `keep` keeps.
    fn markout_bps_of(&self, h: i64, keep: impl Fn(&Fill) -> bool) -> Option<(f64, usize)> {
        let end = self.span.1;
        let (mut sum, mut n) = (0.0, 0usize);
        for f in self.fills.iter().filter(|f| keep(f)) {
            if f.t + h > end {
                continue;
            }
            let Some(m) = self.mid_at(f.t + h) else {
                continue;
            };
            let sign = if f.qty > 0 { 1.0 } else { -1.0 };
            sum += sign * (m - f.price as f64) / f.price as f64 * 1e4;
            n += 1;
        }
        (n > 0).then(|| (sum / n as f64, n))
    }

    /// The largest number of discretionary cancels inside any 60 s window.
    pub fn max_discretionary_cancels_per_minute(&self) -> usize {
        let t = &self.discretionary_cancels;
        let (mut best, mut lo) = (0, 0);
        for hi in 0..t.len() {
            while t[hi] - t[lo] >= MINUTE_NS {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }
}

impl Metrics {
    /// A fill's distance from the mid at its time, bps of that mid (`None`: no mid yet).
    pub fn fill_distance_bps(&self, f: &Fill) -> Option<f64> {
        let mid = self.mid_at(f.t).filter(|m| *m > 0.0)?;
        Some((f.price as f64 - mid).abs() / mid * 1e4)
    }

    /// Our fills bucketed by [`Metrics::fill_distance_bps`] at the edges of
    /// [`DISTANCE_EDGES_BPS`] (each bucket holds its lower edge), with their markouts at 1 s
    /// and 5 s. Fills before the first mid are in no bucket.
    pub fn markouts_by_distance(&self) -> [BucketMarkouts; 5] {
        let bucket = |f: &Fill| {
            self.fill_distance_bps(f).map(|d| {
                DISTANCE_EDGES_BPS
                    .iter()
                    .rposition(|e| d >= *e)
                    .unwrap_or(0)
            })
        };
        std::array::from_fn(|k| {
            let keep = |f: &Fill| bucket(f) == Some(k);
            BucketMarkouts {
                fills: self.fills.iter().filter(|f| keep(f)).count(),
                s1_bps: self.markout_bps_of(1_000_000_000, keep).map(|x| x.0),
                s5_bps: self.markout_bps_of(5_000_000_000, keep).map(|x| x.0),
            }
        })
    }

    /// Our fills per side (bid: buys, ask: sells).
    pub fn fills_by_side(&self) -> [u64; 2] {
        let buys = self.fills.iter().filter(|f| f.qty > 0).count() as u64;
        [buys, self.fills.len() as u64 - buys]
    }

    /// Spread capture, money units: Σ over fills of the fill's value marked at the mid at its
    /// time against its price — `(mid − price) × qty` for a buy, `(price − mid) × qty` for a
    /// sell on linear and spot instruments; on inverse ones the same in coin,
    /// `qty × contract size × (1/price − 1/mid)` for a buy (through the engine's
    /// [`engine::Instrument::value`], as the position values fills). Fills before the first mid
    /// add nothing (their whole result is left to the inventory term).
    pub fn spread_capture(&self) -> f64 {
        let inst = &self.instrument;
        self.fills
            .iter()
            .filter_map(|f| {
                let mid = self.mid_at(f.t)?;
                Some(match inst.kind {
                    InstrumentKind::Inverse => {
                        let at_mid = inst.value_at(Fx::from_num(mid), f.qty);
                        let at_price = inst.value(f.price, f.qty);
                        (inst.direction() * (at_mid - at_price)) as f64
                    }
                    _ => (mid - f.price as f64) * f.qty as f64,
                })
            })
            .sum()
    }

    /// The discretionary cancels' distances from the touch that are known, ascending.
    pub fn known_cancel_distances(&self) -> Vec<f64> {
        let mut d: Vec<f64> = self
            .discretionary_distance_bps
            .iter()
            .flatten()
            .copied()
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }
}

/// Bounded by design: a full series keeps every other point and is sampled half as often from
/// here on, so a plot covers the whole run in at most [`MAX_POINTS`] points.
pub(crate) fn thin_when_full<T>(points: &mut Vec<T>, every: &mut i64) {
    if points.len() >= MAX_POINTS {
        let mut k = 0;
        points.retain(|_| {
            k += 1;
            k % 2 == 1
        });
        *every = every.saturating_mul(2);
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
