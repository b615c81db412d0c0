//! What the hot threads publish for operations: plain atomics, one writing thread each, read by
//! the ops thread when it serves a scrape or answers a control command.
//!
//! The engine thread writes [`InstGauges`] and [`EngineGauges`] ([`publish`]) every
//! [`PUBLISH_EVERY_NS`] between batches, and at once after a batch with an operator command,
//! before it says the command was consumed (so a `ringmaker ctl` answer reads the mode that
//! command produced). Values are the engine's own
//! integers (lots, ticks, money units); the ops thread converts them with the instrument's grids.
//! Nothing here allocates, locks or blocks the writer: a scrape reads whatever was last stored.

use engine::{Engine, ExecKind, InstrumentId, Mode, ModeReason, Side};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// How often the engine thread refreshes the gauges (between batches), ns.
pub const PUBLISH_EVERY_NS: u64 = 250_000_000;

/// Reject codes told apart per instrument; further codes count as `other`.
pub const REJECT_CODES: usize = 8;

/// "No value" for a price stored as ticks.
pub const NO_PRICE: i64 = i64::MIN;

/// One instrument's published state.
#[derive(Debug)]
pub struct InstGauges {
    /// Signed position, lots.
    pub position_lots: AtomicI64,
    /// Open orders (pending, working or being cancelled), bid then ask.
    pub open_orders: [AtomicI64; 2],
    /// Their remaining quantity, lots.
    pub open_lots: [AtomicI64; 2],
    /// Fair value, ticks, as `f64` bits (`NaN`: none yet).
    pub fair_value_ticks: AtomicU64,
    /// The book's best bid and ask, ticks ([`NO_PRICE`]: none).
    pub market_best: [AtomicI64; 2],
    /// Our best bid and ask (the working order nearest the touch), ticks ([`NO_PRICE`]: none).
    pub quote_best: [AtomicI64; 2],
    /// Realized PnL, money units (fees not included).
    pub realized: AtomicI64,
    /// Unrealized PnL at the fair value, money units.
    pub unrealized: AtomicI64,
    /// Fees paid (positive: a cost), money units, base-asset fees valued at the fair value.
    pub fees: AtomicI64,
    /// Total PnL at the fair value, money units.
    pub total: AtomicI64,
    /// PnL since the start of the engine's day (what the daily loss limit is checked against),
    /// money units.
    pub daily: AtomicI64,
    /// [`Mode`] as its code.
    pub mode: AtomicU64,
    /// [`ModeReason`] as its code.
    pub reason: AtomicU64,
    /// The book is valid (1) or not (0).
    pub book_valid: AtomicU64,
    /// Orders placed.
    pub placed: AtomicU64,
    /// Cancels sent at the requote's discretion (they spend the cancel budget).
    pub cancels_requote: AtomicU64,
    /// Cancels forced by mode or risk (exempt from the budget).
    pub cancels_risk: AtomicU64,
    /// Fills as maker, and as taker.
    pub fills: [AtomicU64; 2],
    /// Quantity traded, lots.
    pub traded_lots: AtomicU64,
    /// Discretionary cancels in the last minute.
    pub cancel_budget_used: AtomicU64,
    /// Rejects by code: (code, count) pairs filled in order of first sight (code 0: free).
    pub rejects: [(AtomicI64, AtomicU64); REJECT_CODES],
    /// Rejects with a code that found no free pair.
    pub rejects_other: AtomicU64,
    /// Written by the feed thread: sequence gaps.
    pub gaps: AtomicU64,
    /// Written by the feed thread: resyncs (fresh snapshots).
    pub resyncs: AtomicU64,
}

impl Default for InstGauges {
    fn default() -> Self {
        InstGauges {
            position_lots: AtomicI64::new(0),
            open_orders: Default::default(),
            open_lots: Default::default(),
            fair_value_ticks: AtomicU64::new(f64::NAN.to_bits()),
            market_best: [AtomicI64::new(NO_PRICE), AtomicI64::new(NO_PRICE)],
            quote_best: [AtomicI64::new(NO_PRICE), AtomicI64::new(NO_PRICE)],
            realized: AtomicI64::new(0),
            unrealized: AtomicI64::new(0),
            fees: AtomicI64::new(0),
            total: AtomicI64::new(0),
            daily: AtomicI64::new(0),
            mode: AtomicU64::new(Mode::Halted as u64),
            reason: AtomicU64::new(ModeReason::BookInvalid as u64),
            book_valid: AtomicU64::new(0),
            placed: AtomicU64::new(0),
            cancels_requote: AtomicU64::new(0),
            cancels_risk: AtomicU64::new(0),
            fills: Default::default(),
            traded_lots: AtomicU64::new(0),
            cancel_budget_used: AtomicU64::new(0),
            rejects: Default::default(),
            rejects_other: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        }
    }
}

impl InstGauges {
    /// The mode and its reason as last published.
    pub fn mode(&self) -> (Mode, ModeReason) {
        let mode = Mode::ALL
            .get(self.mode.load(Relaxed) as usize)
            .copied()
            .unwrap_or(Mode::Halted);
        let reason = ModeReason::ALL
            .get(self.reason.load(Relaxed) as usize)
            .copied()
            .unwrap_or(ModeReason::None);
        (mode, reason)
    }

    /// Counts a reject with the venue's `code` (the engine thread, as reports go by).
    #[inline]
    pub fn count_reject(&self, code: i16) {
        let code = i64::from(code);
        for (c, n) in &self.rejects {
            let seen = c.load(Relaxed);
            if seen == code || seen == 0 {
                if seen == 0 {
                    c.store(code, Relaxed);
                }
                n.fetch_add(1, Relaxed);
                return;
            }
        }
        self.rejects_other.fetch_add(1, Relaxed);
    }
}

/// Engine-wide published state.
#[derive(Debug, Default)]
pub struct EngineGauges {
    /// Places the exposure check refused.
    pub risk_refused: AtomicU64,
    /// Places skipped for lack of venue order budget.
    pub rate_limited: AtomicU64,
    /// Discretionary cancels deferred for lack of cancel budget.
    pub cancels_deferred: AtomicU64,
    /// Per venue (by `VenueFlavour::index`): places in the last 10 s, its limit, places in the
    /// last minute, its limit.
    pub order_budget: [[AtomicU64; 4]; 3],
    /// Journal: the segment being written.
    pub journal_segment: AtomicU64,
    /// Journal: bytes used.
    pub journal_bytes: AtomicU64,
    /// Journal: records written.
    pub journal_records: AtomicU64,
    /// Times the engine thread published (0: nothing yet).
    pub publishes: AtomicU64,
}

/// Written by the gateway thread from a live venue session's counters.
#[derive(Debug, Default)]
pub struct VenueGauges {
    /// A live order-entry session is running (the fields below mean something).
    pub live: AtomicU64,
    /// WebSocket API connects after the first.
    pub api_reconnects: AtomicU64,
    /// User data stream connects after the first.
    pub user_reconnects: AtomicU64,
    /// Requests the venue refused with 429 / 418.
    pub rate_limited: AtomicU64,
}

/// Operator commands and reloads, written by the ops thread.
#[derive(Debug, Default)]
pub struct ControlGauges {
    /// Commands answered, by [`super::control::Verb`] index.
    pub commands: [AtomicU64; super::control::Verb::ALL.len()],
    /// Reloads applied.
    pub reloads_applied: AtomicU64,
    /// Reloads refused (invalid, or a change that cannot be made live).
    pub reloads_refused: AtomicU64,
}

/// One `[[hedge]]` group's published state.
#[derive(Debug, Default)]
pub struct HedgeGauges {
    /// The group's delta, 10^-12 of the base asset (`i64::MIN`: unknown).
    pub delta_units: AtomicI64,
    /// |delta| is outside the band (1) or not (0).
    pub breaching: AtomicU64,
    /// Hedge orders placed: passive, active for the age limit, active for the hard limit.
    pub orders: [AtomicU64; 3],
    /// Hedges held back: by a rate budget, by the cost cap, by the price limit, for want of a
    /// hedge instrument able to take them.
    pub held_back: [AtomicU64; 4],
    /// Active hedges' worst-case cost today, quote currency, as `f64` bits.
    pub cost_today: AtomicU64,
}

/// Everything operations reads.
#[derive(Debug, Default)]
pub struct OpsState {
    /// Per instrument, by id.
    pub instruments: Box<[InstGauges]>,
    /// Per `[[hedge]]` group, in config order.
    pub hedges: Box<[HedgeGauges]>,
    /// Engine-wide.
    pub engine: EngineGauges,
    /// The live venue session.
    pub venue: VenueGauges,
    /// Market data connects after the first (the feed thread).
    pub market_reconnects: AtomicU64,
    /// Operator commands.
    pub control: ControlGauges,
    /// The bus link (`[bus]`), written by its thread.
    pub bus: crate::bus::BusCounters,
    /// A hot reload handed from the ops thread to the engine thread: taken when the engine
    /// consumes the `Reload` command published right after it was put here. Touched twice per
    /// reload, never on the way from tick to intent.
    pub pending_reload: Mutex<Option<Box<engine::Config>>>,
    /// What the engine said of the last reload it was handed (`None`: applied).
    pub reload_answer: Mutex<Option<String>>,
    /// Housekeeping: each hop's whole-run latency in the endpoint's buckets, renewed at every
    /// latency interval (hops without samples left out).
    pub latency: Mutex<Vec<(&'static str, LatencyBuckets)>>,
}

impl OpsState {
    /// State for `n` instruments.
    pub fn new(n: usize) -> OpsState {
        OpsState {
            instruments: (0..n).map(|_| InstGauges::default()).collect(),
            ..OpsState::default()
        }
    }

    /// With state for `n` hedge groups.
    pub fn with_hedge_groups(mut self, n: usize) -> OpsState {
        self.hedges = (0..n).map(|_| HedgeGauges::default()).collect();
        self
    }

    /// One instrument's gauges.
    #[inline]
    pub fn instrument(&self, id: InstrumentId) -> Option<&InstGauges> {
        self.instruments.get(id as usize)
    }
}

/// Intents the engine produced, counted by the engine thread as they go out: places, and
/// cancels by reason.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntentCounts {
    /// Places.
    pub placed: u64,
    /// Discretionary cancels.
    pub cancels_requote: u64,
    /// Forced cancels.
    pub cancels_risk: u64,
}

/// The mode of every instrument.
pub fn publish_modes(ops: &OpsState, engine: &Engine) {
    for (k, g) in ops.instruments.iter().enumerate() {
        if let Some(v) = engine.instrument(k as InstrumentId) {
            g.mode.store(v.mode.0 as u64, Relaxed);
            g.reason.store(v.mode.1 as u64, Relaxed);
        }
    }
}

/// Everything (the engine thread, between batches, every [`PUBLISH_EVERY_NS`]).
pub fn publish(
    ops: &OpsState,
    engine: &Engine,
    intents: &[IntentCounts],
    journal: (u64, u64, u64),
) {
    publish_modes(ops, engine);
    let clamp = |v: i128| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    for (k, g) in ops.instruments.iter().enumerate() {
        let id = k as InstrumentId;
        let Some(v) = engine.instrument(id) else {
            continue;
        };
        let inst = &v.config.instrument;
        let pos = v.position;
        g.position_lots.store(pos.qty, Relaxed);
        for (s, side) in [Side::Bid, Side::Ask].into_iter().enumerate() {
            let by_price = v.orders.open_by_price(side);
            g.open_orders[s].store(by_price.len() as i64, Relaxed);
            g.open_lots[s].store(v.orders.open_qty(side), Relaxed);
            let best = match side {
                Side::Bid => by_price.last(),
                Side::Ask => by_price.first(),
            };
            g.quote_best[s].store(best.map_or(NO_PRICE, |b| b.0), Relaxed);
        }
        let book_valid = v.book.is_valid();
        g.book_valid.store(book_valid as u64, Relaxed);
        let (bid, ask) = if book_valid {
            (v.book.best_bid(), v.book.best_ask())
        } else {
            (None, None)
        };
        g.market_best[0].store(bid.unwrap_or(NO_PRICE), Relaxed);
        g.market_best[1].store(ask.unwrap_or(NO_PRICE), Relaxed);
        g.fair_value_ticks.store(
            v.fair_value
                .map_or(f64::NAN, |fv| fv.to_num::<f64>())
                .to_bits(),
            Relaxed,
        );
        g.realized.store(clamp(pos.realized), Relaxed);
        if let Some(fv) = v.fair_value {
            g.unrealized.store(clamp(pos.unrealized(inst, fv)), Relaxed);
            g.fees
                .store(clamp(pos.fees + pos.base_fees_value(fv)), Relaxed);
            let total = pos.total_pnl(inst, fv);
            g.total.store(clamp(total), Relaxed);
            g.daily.store(clamp(total - v.day_start_pnl), Relaxed);
        } else {
            g.fees.store(clamp(pos.fees), Relaxed);
        }
        g.fills[0].store(pos.maker_fills, Relaxed);
        g.fills[1].store(pos.taker_fills, Relaxed);
        g.traded_lots.store(pos.traded_qty.max(0) as u64, Relaxed);
        if let Some(c) = intents.get(k) {
            g.placed.store(c.placed, Relaxed);
            g.cancels_requote.store(c.cancels_requote, Relaxed);
            g.cancels_risk.store(c.cancels_risk, Relaxed);
        }
        if let Some((used, _)) = engine.cancel_budget_usage(id) {
            g.cancel_budget_used.store(u64::from(used), Relaxed);
        }
    }
    for (k, h) in ops.hedges.iter().enumerate() {
        let Some(v) = engine.hedge(k) else {
            continue;
        };
        h.delta_units.store(
            v.delta.map_or(i64::MIN, |d| clamp(d).max(i64::MIN + 1)),
            Relaxed,
        );
        h.breaching
            .store(u64::from(v.breach_since.is_some()), Relaxed);
        let s = v.stats;
        for (slot, n) in h
            .orders
            .iter()
            .zip([s.passive, s.active_age, s.active_hard])
        {
            slot.store(n, Relaxed);
        }
        let held = [
            s.rate_limited,
            s.cost_capped,
            s.beyond_price_limit,
            s.no_route,
        ];
        for (slot, n) in h.held_back.iter().zip(held) {
            slot.store(n, Relaxed);
        }
        h.cost_today
            .store(v.cost_today.to_num::<f64>().to_bits(), Relaxed);
    }
    let st = engine.stats();
    let e = &ops.engine;
    e.risk_refused.store(st.places_risk_refused, Relaxed);
    e.rate_limited.store(st.places_rate_limited, Relaxed);
    e.cancels_deferred.store(st.cancels_deferred, Relaxed);
    for (venue, usage) in engine.order_budget_usage().iter().enumerate() {
        let [(u10, c10), (u60, c60)] = *usage;
        for (slot, v) in e.order_budget[venue].iter().zip([u10, c10, u60, c60]) {
            slot.store(u64::from(v), Relaxed);
        }
    }
    let (segment, bytes, records) = journal;
    e.journal_segment.store(segment, Relaxed);
    e.journal_bytes.store(bytes, Relaxed);
    e.journal_records.store(records, Relaxed);
    e.publishes.fetch_add(1, Relaxed);
}

/// Whether an execution report is a reject with a code worth counting.
#[inline]
pub fn reject_code(r: &engine::ExecReport) -> Option<i16> {
    (matches!(r.kind, ExecKind::Rejected | ExecKind::CancelRejected) && r.reject_code != 0)
        .then_some(r.reject_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_hold_every_value_once() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in [500, 1_000, 1_500, 40_000, 3_000_000_000] {
            h.record(v).unwrap();
        }
        let b = LatencyBuckets::of(&h);
        assert_eq!(b.count, 5);
        assert_eq!(b.counts.len(), LATENCY_BOUNDS_NS.len() + 1);
        assert_eq!(b.counts.iter().sum::<u64>(), 5);
        assert_eq!(b.counts[0], 2, "≤ 1 µs: 500 ns and 1 µs");
        assert_eq!(b.counts[1], 1, "≤ 2 µs");
        assert_eq!(b.counts[5], 1, "≤ 50 µs");
        assert_eq!(*b.counts.last().unwrap(), 1, "past 1 s");
        assert!((b.sum_seconds - 3.000043).abs() < 0.01, "{}", b.sum_seconds);
    }

    #[test]
    fn rejects_are_counted_by_code_in_a_fixed_table_then_as_other() {
        let g = InstGauges::default();
        for code in [-5022, -2011, -5022] {
            g.count_reject(code);
        }
        assert_eq!(g.rejects[0].0.load(Relaxed), -5022);
        assert_eq!(g.rejects[0].1.load(Relaxed), 2);
        assert_eq!(g.rejects[1].0.load(Relaxed), -2011);
        for code in 1..=20 {
            g.count_reject(-(code as i16));
        }
        let told: u64 = g.rejects.iter().map(|(_, n)| n.load(Relaxed)).sum();
        assert_eq!(told + g.rejects_other.load(Relaxed), 23);
        assert!(g.rejects_other.load(Relaxed) > 0);
    }
}

/// Upper bounds of the latency buckets the endpoint exposes, ns (and `+Inf` after them): 1 µs to
/// 1 s in 1-2-5 steps.
pub const LATENCY_BOUNDS_NS: [u64; 19] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
];

/// One hop's latency as a Prometheus histogram: values per bucket (not cumulative), the last one
/// past [`LATENCY_BOUNDS_NS`]; their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyBuckets {
    /// Values in each bucket: `LATENCY_BOUNDS_NS.len() + 1` of them.
    pub counts: Vec<u64>,
    /// Sum of the values, s.
    pub sum_seconds: f64,
    /// Values.
    pub count: u64,
}

impl LatencyBuckets {
    /// From a histogram of ns.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> LatencyBuckets {
        let mut counts = Vec::with_capacity(LATENCY_BOUNDS_NS.len() + 1);
        let mut below = 0u64;
        for b in LATENCY_BOUNDS_NS {
            let upto = h.count_between(0, b).min(h.len());
            counts.push(upto.saturating_sub(below));
            below = below.max(upto);
        }
        counts.push(h.len().saturating_sub(below));
        LatencyBuckets {
            counts,
            sum_seconds: h.mean() * h.len() as f64 / 1e9,
            count: h.len(),
        }
    }
}
