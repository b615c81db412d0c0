//! The business-logic processor: book → pricer → risk → diff, one deterministic state machine.
//!
//! ```text
//! Engine::new(&Config)                   allocates everything up front
//! engine.on_event(&Event, &mut impl Sink)    never allocates, never panics, never blocks
//! engine.on_batch_end(&mut impl Sink)        requote point: the input ring is drained
//! ```
//!
//! Time is what the events say: the engine's `now` is the largest local receive time seen
//! (forced monotonic). Requoting happens only at the end of a batch, for instruments whose
//! state changed, so bursts coalesce.

use crate::book::{BboOffer, FreshTop, OrderBook};
use crate::config::{Config, Fx, InstrumentConfig, OnStopLoss, TopOfBookSource};
use crate::event::{Command, Event, EventKind, InstrumentId, Side};
use crate::intent::{Intent, Mode, ModeChange, ModeReason, Sink, TimeInForce};
use crate::limits::{CircuitBreaker, TokenBucket};
use crate::orders::{OrderState, OrderTable, ReportOutcome, ORDER_SLOTS};
use crate::position::Position;
use crate::pricer::{self, Ladder, Touch};

const NS_PER_DAY: i64 = 86_400_000_000_000;
const MINUTE_NS: i64 = 60_000_000_000;

/// A stage of the requote, for per-stage timing in benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Fair value, reservation price, grid.
    Pricing,
    /// Risk clamp and mode.
    Risk,
    /// Diff against working orders and intent emission.
    Diff,
}

/// Told when each stage of a requote ends. The engine never reads a clock itself; a bench
/// passes one that does. [`NoClock`] is the zero-cost default.
pub trait StageClock {
    /// Called at the start of a requote.
    fn start(&mut self) {}
    /// Called when `stage` has finished.
    fn mark(&mut self, stage: Stage);
}

/// A [`StageClock`] that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClock;

impl StageClock for NoClock {
    #[inline(always)]
    fn mark(&mut self, _stage: Stage) {}
}

/// Engine-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Events consumed.
    pub events: u64,
    /// Intents emitted.
    pub intents: u64,
    /// Requotes run.
    pub requotes: u64,
    /// Events for an instrument id the engine does not have.
    pub unknown_instrument: u64,
    /// Malformed events (bad exec kind, bad command).
    pub malformed: u64,
    /// Book levels the book refused.
    pub book_errors: u64,
    /// Events whose time went backwards (time was held at the previous value).
    pub time_regressions: u64,
    /// Places skipped for lack of venue order budget.
    pub places_rate_limited: u64,
    /// Places skipped because the exposure check refused them.
    pub places_risk_refused: u64,
    /// Discretionary cancels deferred for lack of cancel budget.
    pub cancels_deferred: u64,
    /// Cancels forced by mode or risk (exempt from the cancel budget).
    pub forced_cancels: u64,
    /// Best bid/offer events newer than the depth book (their top is priced from).
    pub bbo_used: u64,
    /// Best bid/offer events not newer than the depth book or the last one used, or arriving
    /// while the book is not valid (ignored: the depth book already holds what they say).
    pub bbo_behind: u64,
    /// Best bid/offer events refused as malformed (crossed, empty or non-positive side).
    pub bbo_refused: u64,
}

/// Per-instrument snapshot for reports.
#[derive(Debug, Clone, Copy)]
pub struct InstrumentView<'a> {
    /// Configuration.
    pub config: &'a InstrumentConfig,
    /// Book.
    pub book: &'a OrderBook,
    /// Orders.
    pub orders: &'a OrderTable,
    /// Position and PnL.
    pub position: &'a Position,
    /// Mode and its reason.
    pub mode: (Mode, ModeReason),
    /// Last fair value (ticks), if priced.
    pub fair_value: Option<Fx>,
}

#[derive(Debug)]
struct Inst {
    cfg: InstrumentConfig,
    id: InstrumentId,
    book: OrderBook,
    orders: OrderTable,
    pos: Position,
    mode: Mode,
    reason: ModeReason,
    dirty: bool,
    operator_halt: bool,
    operator_reduce_only: bool,
    cancel_all_requested: bool,
    loss_limit_hit: bool,
    stop_loss_latched: bool,
    flatten_cid: Option<u64>,
    /// The last best bid/offer newer than the depth book (cleared on reset and invalid).
    top: FreshTop,
    last_book_ns: i64,
    last_ratio: Fx,
    fair_value: Option<Fx>,
    day: i64,
    day_start_pnl: i128,
    breaker: CircuitBreaker,
    cancel_budget: TokenBucket,
    bids: Ladder,
    asks: Ladder,
}

/// Working orders of one side gathered for the diff: (price, cid, qty), sorted nearest first.
struct Working {
    items: [(i64, u64, i64); ORDER_SLOTS],
    len: usize,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    insts: Vec<Inst>,
    now_ns: i64,
    seq: u64,
    orders_10s: TokenBucket,
    orders_1m: TokenBucket,
    stats: EngineStats,
}

impl Engine {
    /// Builds an engine; every buffer is allocated here.
    pub fn new(cfg: &Config) -> Engine {
        let insts = cfg
            .instruments
            .iter()
            .enumerate()
            .map(|(i, c)| Inst {
                cfg: c.clone(),
                id: i as InstrumentId,
                book: OrderBook::new(cfg.book_slots),
                orders: OrderTable::new(i as InstrumentId),
                pos: Position::default(),
                mode: Mode::Halted,
                reason: ModeReason::BookInvalid,
                dirty: false,
                operator_halt: false,
                operator_reduce_only: false,
                cancel_all_requested: false,
                loss_limit_hit: false,
                stop_loss_latched: false,
                flatten_cid: None,
                top: FreshTop::default(),
                last_book_ns: 0,
                last_ratio: Fx::ZERO,
                fair_value: None,
                day: i64::MIN,
                day_start_pnl: 0,
                breaker: CircuitBreaker::new(c.circuit_window_ns, c.max_price_change),
                cancel_budget: TokenBucket::new(c.cancel_budget_per_min, MINUTE_NS),
                bids: Ladder::default(),
                asks: Ladder::default(),
            })
            .collect();
        Engine {
            insts,
            now_ns: i64::MIN,
            seq: 0,
            orders_10s: TokenBucket::new(cfg.orders_per_10s, 10_000_000_000),
            orders_1m: TokenBucket::new(cfg.orders_per_min, MINUTE_NS),
            stats: EngineStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The engine's time: the latest event time seen, ns.
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// Number of instruments.
    pub fn instruments(&self) -> usize {
        self.insts.len()
    }

    /// A read-only view of one instrument.
    pub fn instrument(&self, id: InstrumentId) -> Option<InstrumentView<'_>> {
        self.insts.get(id as usize).map(|i| InstrumentView {
            config: &i.cfg,
            book: &i.book,
            orders: &i.orders,
            position: &i.pos,
            mode: (i.mode, i.reason),
            fair_value: i.fair_value,
        })
    }

    /// Consumes one event. Never allocates, never panics, never blocks.
    #[inline]
    pub fn on_event(&mut self, ev: &Event, sink: &mut impl Sink) {
        self.stats.events += 1;
        if ev.local_time_ns < self.now_ns {
            self.stats.time_regressions += 1;
        } else {
            self.now_ns = ev.local_time_ns;
        }
        let now = self.now_ns;
        if ev.kind() == EventKind::Timer {
            for i in &mut self.insts {
                i.dirty = true;
            }
            return;
        }
        let Some(inst) = self.insts.get_mut(ev.instrument() as usize) else {
            self.stats.unknown_instrument += 1;
            return;
        };
        match ev.kind() {
            EventKind::BookLevel => {
                if inst.book.apply(ev).is_err() {
                    self.stats.book_errors += 1;
                }
                inst.last_book_ns = now;
                inst.dirty = true;
            }
            EventKind::BookReset => {
                let _ = inst.book.apply(ev);
                inst.top.clear();
                inst.last_book_ns = now;
                inst.dirty = true;
            }
            EventKind::BookValid => {
                let _ = inst.book.apply(ev);
                inst.last_book_ns = now;
                inst.dirty = true;
            }
            EventKind::BookInvalid => {
                let _ = inst.book.apply(ev);
                inst.top.clear();
                inst.dirty = true;
                // Pull quotes now, not at the end of the batch.
                Self::set_mode(inst, Mode::Halted, ModeReason::BookInvalid, now, sink);
                self.seq = Self::cancel_all(inst, now, self.seq, &mut self.stats, sink);
            }
            EventKind::Bbo => {
                if inst.cfg.top_of_book == TopOfBookSource::DepthBook {
                    return;
                }
                let Some(t) = ev.as_bbo() else {
                    self.stats.malformed += 1;
                    return;
                };
                match inst.top.offer(t, &inst.book) {
                    BboOffer::Used => {
                        self.stats.bbo_used += 1;
                        inst.dirty = true;
                    }
                    BboOffer::Behind => self.stats.bbo_behind += 1,
                    BboOffer::Refused => self.stats.bbo_refused += 1,
                }
            }
            EventKind::Trade => {}
            EventKind::ExecReport => {
                let Some(r) = ev.as_exec() else {
                    self.stats.malformed += 1;
                    return;
                };
                match inst.orders.on_report(&r) {
                    ReportOutcome::Applied(Some((side, px, qty)))
                    | ReportOutcome::LateFill(side, px, qty) => {
                        inst.pos.on_fill(side, px, qty, r.fee, r.taker);
                        if inst.pos.qty == 0 {
                            inst.stop_loss_latched = false;
                        }
                    }
                    _ => {}
                }
                if inst.flatten_cid == Some(r.client_order_id)
                    && inst
                        .orders
                        .get(r.client_order_id)
                        .is_none_or(|o| o.state == OrderState::Done)
                {
                    inst.flatten_cid = None;
                }
                inst.dirty = true;
            }
            EventKind::Control => {
                match ev.as_control() {
                    Some(Command::Halt) => inst.operator_halt = true,
                    Some(Command::Resume) => {
                        inst.operator_halt = false;
                        inst.loss_limit_hit = false;
                        // A new baseline: the loss that tripped the limit is not counted twice.
                        inst.day_start_pnl = inst
                            .fair_value
                            .map_or(inst.day_start_pnl, |fv| inst.pos.total_pnl(fv));
                    }
                    Some(Command::ReduceOnly) => inst.operator_reduce_only = true,
                    Some(Command::Normal) => inst.operator_reduce_only = false,
                    Some(Command::CancelAll) => inst.cancel_all_requested = true,
                    None => self.stats.malformed += 1,
                }
                inst.dirty = true;
            }
            EventKind::Timer => {}
        }
    }

    /// The requote point: for each instrument whose state changed, price, check and diff.
    #[inline]
    pub fn on_batch_end(&mut self, sink: &mut impl Sink) {
        self.on_batch_end_timed(sink, &mut NoClock);
    }

    /// [`Engine::on_batch_end`], telling `clock` where each stage ends.
    pub fn on_batch_end_timed(&mut self, sink: &mut impl Sink, clock: &mut impl StageClock) {
        for k in 0..self.insts.len() {
            if self.insts[k].dirty {
                self.insts[k].dirty = false;
                self.stats.requotes += 1;
                clock.start();
                self.requote(k, sink, clock);
            }
        }
    }

    fn set_mode(inst: &mut Inst, mode: Mode, reason: ModeReason, now: i64, sink: &mut impl Sink) {
        if inst.mode != mode || inst.reason != reason {
            sink.mode_change(&ModeChange {
                instrument: inst.id,
                from: inst.mode,
                to: mode,
                reason,
                time_ns: now,
            });
            inst.mode = mode;
            inst.reason = reason;
        }
    }

    /// Cancels every cancellable order (forced: exempt from the cancel budget).
    fn cancel_all(
        inst: &mut Inst,
        now: i64,
        mut seq: u64,
        stats: &mut EngineStats,
        sink: &mut impl Sink,
    ) -> u64 {
        let id = inst.id;
        inst.orders.cancel_all_open(|o| {
            sink.intent(&Intent::cancel(
                id,
                o.side,
                o.client_order_id,
                true,
                now,
                seq,
            ));
            seq += 1;
            stats.intents += 1;
            stats.forced_cancels += 1;
        });
        seq
    }

    fn requote(&mut self, k: usize, sink: &mut impl Sink, clock: &mut impl StageClock) {
        let now = self.now_ns;
        let inst = &mut self.insts[k];

        // ---- pricing -------------------------------------------------------------------
        let touch = Self::touch(inst);
        let fv = touch.map(|t| pricer::fair_value(inst.cfg.fair_value, &t));
        if let Some(fv) = fv {
            inst.fair_value = Some(fv);
        }
        let pos = inst.pos.qty;
        let ratio = pricer::inventory_ratio(
            pos,
            inst.cfg.net_max,
            inst.cfg.skew_hysteresis,
            inst.last_ratio,
        );
        inst.last_ratio = ratio;
        inst.bids.clear();
        inst.asks.clear();
        if let (Some(t), Some(fv)) = (touch, fv) {
            let r = pricer::reservation(fv, ratio, inst.cfg.skew_coeff);
            let (nb, na) = pricer::layer_counts(inst.cfg.layers, pos, inst.cfg.net_max);
            pricer::build_ladders(&inst.cfg, &t, fv, r, nb, na, &mut inst.bids, &mut inst.asks);
        }
        clock.mark(Stage::Pricing);

        // ---- risk: mode, then the clamp ------------------------------------------------
        let (mode, reason) = Self::evaluate_mode(inst, touch.is_some(), fv, now);
        Self::set_mode(inst, mode, reason, now, sink);
        let cap = inst.cfg.batch_cap;
        let (bid_room, ask_room, trim) = match mode {
            Mode::Halted => (0, 0, false),
            Mode::ReduceOnly => (
                if pos < 0 { -pos } else { 0 },
                if pos > 0 { pos } else { 0 },
                true,
            ),
            Mode::Normal => ((cap - pos).max(0), (cap + pos).max(0), false),
        };
        if let Some(fv) = fv {
            pricer::clamp_side(&inst.cfg, Side::Bid, fv, bid_room, trim, &mut inst.bids);
            pricer::clamp_side(&inst.cfg, Side::Ask, fv, ask_room, trim, &mut inst.asks);
        }
        clock.mark(Stage::Risk);

        // ---- diff ----------------------------------------------------------------------
        if mode == Mode::Halted || inst.cancel_all_requested {
            inst.cancel_all_requested = false;
            self.seq = Self::cancel_all(inst, now, self.seq, &mut self.stats, sink);
            if mode == Mode::Halted {
                clock.mark(Stage::Diff);
                return;
            }
        }
        if inst.cfg.on_stop_loss == OnStopLoss::Flatten
            && reason == ModeReason::StopLoss
            && inst.flatten_cid.is_none()
            && pos != 0
        {
            if let Some(t) = touch {
                // Cross the spread for the whole position; IOC so nothing rests.
                let (side, px) = if pos > 0 {
                    (Side::Ask, t.bid)
                } else {
                    (Side::Bid, t.ask)
                };
                if self.orders_10s.available(now) && self.orders_1m.available(now) {
                    if let Some(cid) = inst.orders.place(side, px, pos.abs(), TimeInForce::Ioc) {
                        self.orders_10s.try_take(now);
                        self.orders_1m.try_take(now);
                        inst.flatten_cid = Some(cid);
                        sink.intent(&Intent::place(
                            inst.id,
                            side,
                            TimeInForce::Ioc,
                            cid,
                            px,
                            pos.abs(),
                            now,
                            self.seq,
                        ));
                        self.seq += 1;
                        self.stats.intents += 1;
                    }
                }
            }
        }
        self.seq = Self::diff(
            inst,
            mode,
            now,
            self.seq,
            &mut self.orders_10s,
            &mut self.orders_1m,
            &mut self.stats,
            sink,
        );
        clock.mark(Stage::Diff);
    }

    /// The top of book to price from: the last best bid/offer while it is newer than the depth
    /// book (by venue update id), else the depth book's touch; `None` if one-sided or crossed.
    #[inline]
    fn touch(inst: &Inst) -> Option<Touch> {
        if let Some(b) = inst.top.newer_than(&inst.book) {
            return Some(Touch {
                bid: b.bid_price,
                bid_qty: b.bid_qty,
                ask: b.ask_price,
                ask_qty: b.ask_qty,
            });
        }
        match (inst.book.best_bid_level(), inst.book.best_ask_level()) {
            (Some((bid, bid_qty)), Some((ask, ask_qty))) if bid < ask => Some(Touch {
                bid,
                bid_qty,
                ask,
                ask_qty,
            }),
            _ => None,
        }
    }

    /// The mode now in force, by precedence: halts, then reduce-only, then normal.
    fn evaluate_mode(
        inst: &mut Inst,
        two_sided: bool,
        fv: Option<Fx>,
        now: i64,
    ) -> (Mode, ModeReason) {
        let cfg = &inst.cfg;
        let mut breaker = false;
        if let Some(fv) = fv {
            let pnl = inst.pos.total_pnl(fv);
            let day = now.div_euclid(NS_PER_DAY);
            if day != inst.day {
                inst.day = day;
                inst.day_start_pnl = pnl;
            }
            if pnl - inst.day_start_pnl < -(cfg.daily_loss_limit as i128) {
                inst.loss_limit_hit = true;
            }
            breaker = inst.breaker.observe(now, fv);
            // Stop loss: unrealized < -stop_loss · |cost|.
            let unreal = inst.pos.unrealized(fv);
            let notional = Fx::from_num(inst.pos.cost.unsigned_abs().min(i64::MAX as u128) as i64);
            if inst.pos.qty != 0
                && Fx::from_num(unreal.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
                    < -(cfg.stop_loss.saturating_mul(notional))
            {
                inst.stop_loss_latched = true;
            }
        }
        let stale = now.saturating_sub(inst.last_book_ns) > cfg.stale_after_ns;
        if inst.operator_halt {
            return (Mode::Halted, ModeReason::KillSwitch);
        }
        if inst.loss_limit_hit {
            return (Mode::Halted, ModeReason::DailyLossLimit);
        }
        if breaker {
            return (Mode::Halted, ModeReason::CircuitBreaker);
        }
        if !inst.book.is_valid() || !two_sided {
            return (Mode::Halted, ModeReason::BookInvalid);
        }
        if stale {
            return (Mode::Halted, ModeReason::BookStale);
        }
        if inst.operator_reduce_only {
            return (Mode::ReduceOnly, ModeReason::Operator);
        }
        if inst.stop_loss_latched {
            return (Mode::ReduceOnly, ModeReason::StopLoss);
        }
        let ratio = Fx::from_num(inst.pos.qty.unsigned_abs()) / Fx::from_num(cfg.net_max);
        if ratio >= cfg.reduce_only_thresh {
            return (Mode::ReduceOnly, ModeReason::Inventory);
        }
        (Mode::Normal, ModeReason::None)
    }

    /// Working post-only orders of one side, nearest the touch first (the order table keeps
    /// them sorted by price, so nothing is sorted here).
    fn gather(inst: &Inst, side: Side, out: &mut Working) {
        out.len = 0;
        let mut push = |&(price, cid): &(i64, u64)| {
            if let Some(o) = inst.orders.get(cid) {
                if o.tif == TimeInForce::PostOnly
                    && matches!(o.state, OrderState::PendingNew | OrderState::Live)
                {
                    out.items[out.len] = (price, cid, o.qty);
                    out.len += 1;
                }
            }
        };
        let sorted = inst.orders.open_by_price(side);
        match side {
            // Highest bid first; equal prices by ascending id, as before.
            Side::Bid => {
                let mut k = sorted.len();
                while k > 0 {
                    let p = sorted[k - 1].0;
                    let mut j = k;
                    while j > 0 && sorted[j - 1].0 == p {
                        j -= 1;
                    }
                    sorted[j..k].iter().for_each(&mut push);
                    k = j;
                }
            }
            Side::Ask => sorted.iter().for_each(push),
        }
    }

    /// One merge pass per side, then cancels (nearest the touch first), then places
    /// (alternating sides, nearest the touch first), each within its budget and the exposure
    /// limit.
    // `j` walks both sides' ladders and coverage flags in step.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    fn diff(
        inst: &mut Inst,
        mode: Mode,
        now: i64,
        mut seq: u64,
        orders_10s: &mut TokenBucket,
        orders_1m: &mut TokenBucket,
        stats: &mut EngineStats,
        sink: &mut impl Sink,
    ) -> u64 {
        let tol = match inst.cfg.offset_unit {
            crate::config::OffsetUnit::Ticks => inst.cfg.tolerance,
            crate::config::OffsetUnit::Bps => inst.fair_value.map_or(Fx::ZERO, |fv| {
                fv.saturating_mul(inst.cfg.tolerance) / 10_000
            }),
        }
        .floor()
        .to_num::<i64>();
        // Per side: which desired layers are already covered by a kept order.
        let mut covered = [[false; crate::config::MAX_LAYERS]; 2];
        let mut working = Working {
            items: [(0, 0, 0); ORDER_SLOTS],
            len: 0,
        };
        for side in [Side::Bid, Side::Ask] {
            Self::gather(inst, side, &mut working);
            let desired = match side {
                Side::Bid => inst.bids.as_slice(),
                Side::Ask => inst.asks.as_slice(),
            };
            let closer = |a: i64, b: i64| match side {
                Side::Bid => a > b,
                Side::Ask => a < b,
            };
            let (mut i, mut j) = (0, 0);
            while i < working.len {
                let (wp, cid, wq) = working.items[i];
                if j < desired.len() {
                    let d = desired[j];
                    if (wp - d.price).abs() <= tol && wq == d.qty {
                        covered[side as usize][j] = true;
                        i += 1;
                        j += 1;
                        continue;
                    }
                    if !closer(wp, d.price) {
                        j += 1;
                        continue;
                    }
                }
                // No desired layer for this order: cancel it. In reduce-only, orders on the side
                // that grows the position must go whatever the budget says.
                let forced = mode == Mode::ReduceOnly
                    && match side {
                        Side::Bid => inst.pos.qty >= 0,
                        Side::Ask => inst.pos.qty <= 0,
                    };
                if forced || inst.cancel_budget.try_take(now) {
                    if inst.orders.cancel_sent(cid) {
                        sink.intent(&Intent::cancel(inst.id, side, cid, forced, now, seq));
                        seq += 1;
                        stats.intents += 1;
                        if forced {
                            stats.forced_cancels += 1;
                        }
                    }
                } else {
                    stats.cancels_deferred += 1;
                }
                i += 1;
            }
        }
        // Places, alternating sides from the touch outwards.
        let (nb, na) = (inst.bids.as_slice().len(), inst.asks.as_slice().len());
        let cap = inst.cfg.batch_cap;
        let pos = inst.pos.qty;
        let mut open_buy = inst.orders.open_qty(Side::Bid);
        let mut open_sell = inst.orders.open_qty(Side::Ask);
        for j in 0..nb.max(na) {
            for side in [Side::Bid, Side::Ask] {
                let (n, ladder) = match side {
                    Side::Bid => (nb, &inst.bids),
                    Side::Ask => (na, &inst.asks),
                };
                if j >= n || covered[side as usize][j] {
                    continue;
                }
                let l = ladder.as_slice()[j];
                // Worst case if every open order on this side fills, plus this one.
                let ok = match (side, mode) {
                    (Side::Bid, Mode::ReduceOnly) => pos + open_buy + l.qty <= 0,
                    (Side::Ask, Mode::ReduceOnly) => pos - open_sell - l.qty >= 0,
                    (Side::Bid, _) => pos + open_buy + l.qty <= cap,
                    (Side::Ask, _) => pos - open_sell - l.qty >= -cap,
                };
                if !ok {
                    stats.places_risk_refused += 1;
                    continue;
                }
                if !(orders_10s.available(now) && orders_1m.available(now)) {
                    stats.places_rate_limited += 1;
                    continue;
                }
                let Some(cid) = inst
                    .orders
                    .place(side, l.price, l.qty, TimeInForce::PostOnly)
                else {
                    continue;
                };
                orders_10s.try_take(now);
                orders_1m.try_take(now);
                match side {
                    Side::Bid => open_buy += l.qty,
                    Side::Ask => open_sell += l.qty,
                }
                sink.intent(&Intent::place(
                    inst.id,
                    side,
                    TimeInForce::PostOnly,
                    cid,
                    l.price,
                    l.qty,
                    now,
                    seq,
                ));
                seq += 1;
                stats.intents += 1;
            }
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExecKind, ExecReport, LevelUpdate, TopOfBook};
    use crate::intent::IntentKind;

    pub(crate) const CFG: &str = r#"
[engine]
orders_per_10s = 300
orders_per_min = 1200
book_slots = 4096

[[instrument]]
symbol = "BTCUSDT"
tick = "0.10"
lot = "0.001"
min_qty = "0.001"
min_notional = "0.1"
[instrument.quote]
fair_value = "mid"
offset_unit = "ticks"
start_offset = 2.0
first_spacing = 2.0
multiplier = 1.5
max_spacing = 8.0
layers = 3
layer_size = "0.002"
min_spread_bps = 0.0
skew_coeff = 0.001
[instrument.risk]
net_max = "0.010"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "0.01"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 1000
cancel_budget_per_min = 4
"#;

    #[derive(Default)]
    struct Out {
        intents: Vec<Intent>,
        modes: Vec<ModeChange>,
    }
    impl Sink for Out {
        fn intent(&mut self, i: &Intent) {
            self.intents.push(*i);
        }
        fn mode_change(&mut self, m: &ModeChange) {
            self.modes.push(*m);
        }
    }

    const MS: i64 = 1_000_000;

    fn level(side: Side, price: i64, qty: i64, t: i64, last: bool) -> Event {
        Event::level(
            0,
            0,
            t,
            LevelUpdate {
                side,
                price,
                qty,
                update_id: 1,
                last_in_msg: last,
                snapshot: false,
            },
        )
    }

    /// An engine with a valid book 1000 / 1001 at time `t`.
    fn synced(t: i64) -> (Engine, Out) {
        let mut e = Engine::new(&Config::from_toml(CFG).unwrap());
        let mut o = Out::default();
        e.on_event(&Event::book_reset(0, 0, t, 1), &mut o);
        e.on_event(&level(Side::Bid, 1000, 50, t, false), &mut o);
        e.on_event(&level(Side::Ask, 1001, 50, t, true), &mut o);
        e.on_event(&Event::book_valid(0, 0, t, 1), &mut o);
        e.on_batch_end(&mut o);
        (e, o)
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        e: &mut Engine,
        o: &mut Out,
        kind: ExecKind,
        cid: u64,
        px: i64,
        last: i64,
        cum: i64,
        t: i64,
    ) {
        let r = ExecReport {
            kind,
            client_order_id: cid,
            last_price: px,
            last_qty: last,
            cum_qty: cum,
            fee: 0,
            taker: false,
            post_only_reject: false,
        };
        e.on_event(&Event::exec(0, 0, t, r), o);
    }

    fn ack_all(e: &mut Engine, o: &mut Out, t: i64) {
        let ids: Vec<(IntentKind, u64)> = o
            .intents
            .iter()
            .map(|i| (i.kind, i.client_order_id))
            .collect();
        for (k, cid) in ids {
            let kind = if k == IntentKind::Place {
                ExecKind::Ack
            } else {
                ExecKind::Canceled
            };
            report(e, o, kind, cid, 0, 0, 0, t);
        }
        o.intents.clear();
        e.on_batch_end(o);
    }

    #[test]
    fn quotes_a_symmetric_grid_once_synced() {
        let (_, o) = synced(0);
        assert_eq!(o.modes.len(), 1);
        assert_eq!(
            (o.modes[0].to, o.modes[0].reason),
            (Mode::Normal, ModeReason::None)
        );
        let bids: Vec<i64> = o
            .intents
            .iter()
            .filter(|i| i.side == Side::Bid)
            .map(|i| i.price)
            .collect();
        let asks: Vec<i64> = o
            .intents
            .iter()
            .filter(|i| i.side == Side::Ask)
            .map(|i| i.price)
            .collect();
        // fv 1000.5; distances 2, 4, 7: floor / ceil.
        assert_eq!(bids, [998, 996, 993]);
        assert_eq!(asks, [1003, 1005, 1008]);
        // Alternating from the touch outwards, seq from 0.
        assert_eq!(
            o.intents.iter().map(|i| i.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        assert!(o
            .intents
            .iter()
            .all(|i| i.tif == TimeInForce::PostOnly && i.qty == 2));
    }

    #[test]
    fn an_unchanged_book_requotes_to_nothing_and_small_moves_keep_queue_priority() {
        let (mut e, mut o) = synced(0);
        ack_all(&mut e, &mut o, MS);
        assert!(o.intents.is_empty());
        // Same book again.
        e.on_event(&level(Side::Bid, 1000, 50, 2 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        assert!(o.intents.is_empty());
        // A one-tick move of fair value is within tolerance (1.8 ticks): nothing changes.
        e.on_event(&level(Side::Ask, 1001, 0, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 1002, 50, 3 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        assert!(o.intents.is_empty(), "{:?}", o.intents);
    }

    #[test]
    fn a_fill_skews_quotes_down_and_a_big_move_cancels_before_placing() {
        let (mut e, mut o) = synced(0);
        let first_bid = o.intents[0].client_order_id;
        ack_all(&mut e, &mut o, MS);
        report(&mut e, &mut o, ExecKind::Fill, first_bid, 998, 2, 2, 2 * MS);
        e.on_batch_end(&mut o);
        let v = e.instrument(0).unwrap();
        assert_eq!(v.position.qty, 2);
        // Market moves up 10 ticks: orders out of tolerance are cancelled (within budget 4),
        // and cancels on a side precede that side's places.
        o.intents.clear();
        e.on_event(&level(Side::Bid, 1000, 0, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 1001, 0, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Bid, 1010, 50, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 1011, 50, 3 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        let first_place = o
            .intents
            .iter()
            .position(|i| i.kind == IntentKind::Place)
            .unwrap();
        assert!(o.intents[..first_place]
            .iter()
            .all(|i| i.kind == IntentKind::Cancel));
        assert!(o.intents[first_place..]
            .iter()
            .all(|i| i.kind == IntentKind::Place));
        // The fill's requote spent one of the 4 cancels a minute (long: bid layers thin from 3
        // to 2); three are left for the five orders now out of tolerance.
        assert_eq!(first_place, 3, "cancel budget of 4 per minute");
        assert_eq!(e.stats().cancels_deferred, 2);
        // Long 2 of 10: ratio 0.2, skew -0.2 · 0.001 · 1010.5 ≈ -0.2 ticks: bid 0 at floor(1008.3).
        let bid0 = o
            .intents
            .iter()
            .find(|i| i.kind == IntentKind::Place && i.side == Side::Bid)
            .unwrap();
        assert_eq!(bid0.price, 1008);
    }

    #[test]
    fn book_invalid_pulls_everything_at_once_and_valid_requotes() {
        let (mut e, mut o) = synced(0);
        ack_all(&mut e, &mut o, MS);
        e.on_event(
            &Event::book_invalid(
                0,
                0,
                2 * MS,
                crate::event::BookStatusReason::SequenceGap,
                1,
                3,
            ),
            &mut o,
        );
        assert_eq!(o.intents.len(), 6, "cancels go out before the batch ends");
        assert!(o
            .intents
            .iter()
            .all(|i| i.kind == IntentKind::Cancel && i.forced));
        assert_eq!(o.modes.last().unwrap().reason, ModeReason::BookInvalid);
        e.on_batch_end(&mut o);
        assert_eq!(o.intents.len(), 6, "nothing quoted while invalid");
    }

    #[test]
    fn stale_book_halts_until_an_update() {
        let (mut e, mut o) = synced(0);
        ack_all(&mut e, &mut o, MS);
        e.on_event(&Event::timer(1_500 * MS), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(o.modes.last().unwrap().reason, ModeReason::BookStale);
        assert_eq!(
            o.intents
                .iter()
                .filter(|i| i.kind == IntentKind::Cancel)
                .count(),
            6
        );
        ack_all(&mut e, &mut o, 1_501 * MS);
        e.on_event(&level(Side::Bid, 1000, 51, 1_600 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
        assert_eq!(o.intents.len(), 6);
    }

    #[test]
    fn inventory_past_the_threshold_is_reduce_only_and_never_crosses_zero() {
        let (mut e, mut o) = synced(0);
        let bids: Vec<u64> = o
            .intents
            .iter()
            .filter(|i| i.side == Side::Bid)
            .map(|i| i.client_order_id)
            .collect();
        ack_all(&mut e, &mut o, MS);
        // Three bids of 2 fill, then one more order fills: position 8 of 10 ≥ 0.7.
        for (k, cid) in bids.iter().enumerate() {
            report(
                &mut e,
                &mut o,
                ExecKind::Fill,
                *cid,
                998 - k as i64,
                2,
                2,
                2 * MS,
            );
        }
        e.on_batch_end(&mut o);
        ack_all(&mut e, &mut o, 3 * MS);
        let more: Vec<u64> = e
            .instrument(0)
            .unwrap()
            .orders
            .open()
            .filter(|o| o.side == Side::Bid)
            .map(|o| o.client_order_id)
            .collect();
        report(&mut e, &mut o, ExecKind::Fill, more[0], 995, 2, 2, 4 * MS);
        o.intents.clear();
        e.on_batch_end(&mut o);
        assert_eq!(e.instrument(0).unwrap().position.qty, 8);
        assert_eq!(o.modes.last().unwrap().reason, ModeReason::Inventory);
        ack_all(&mut e, &mut o, 5 * MS);
        let v = e.instrument(0).unwrap();
        assert_eq!(
            v.orders.open_qty(Side::Bid),
            0,
            "no buying in reduce-only when long"
        );
        assert!(
            v.orders.open_qty(Side::Ask) <= 8,
            "sells never take the position through zero"
        );
    }

    #[test]
    fn kill_switch_halts_until_resume() {
        let (mut e, mut o) = synced(0);
        ack_all(&mut e, &mut o, MS);
        e.on_event(&Event::control(0, 2 * MS, Command::Halt), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(o.modes.last().unwrap().reason, ModeReason::KillSwitch);
        assert_eq!(o.intents.len(), 6);
        ack_all(&mut e, &mut o, 3 * MS);
        assert!(o.intents.is_empty());
        e.on_event(&Event::control(0, 4 * MS, Command::Resume), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
        assert_eq!(o.intents.len(), 6);
    }

    #[test]
    fn daily_loss_limit_halts() {
        let (mut e, mut o) = synced(0);
        let bid = o.intents[0].client_order_id;
        ack_all(&mut e, &mut o, MS);
        report(&mut e, &mut o, ExecKind::Fill, bid, 998, 2, 2, 2 * MS);
        e.on_batch_end(&mut o);
        // Limit 0.01 USDT = 100 tick·lots. Long 2 lots from 998, marked at 940.5: -115
        // (a 6% move, inside the circuit breaker's 10%).
        e.on_event(&level(Side::Bid, 1000, 0, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 1001, 0, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Bid, 940, 5, 3 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 941, 5, 3 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(o.modes.last().unwrap().reason, ModeReason::DailyLossLimit);
    }

    #[test]
    fn circuit_breaker_halts_on_a_fast_move() {
        let (mut e, mut o) = synced(0);
        ack_all(&mut e, &mut o, MS);
        e.on_event(&level(Side::Ask, 1001, 0, 2 * MS, false), &mut o);
        e.on_event(&level(Side::Bid, 1000, 0, 2 * MS, false), &mut o);
        e.on_event(&level(Side::Bid, 1200, 5, 2 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 1201, 5, 2 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(o.modes.last().unwrap().reason, ModeReason::CircuitBreaker);
    }

    #[test]
    fn unknown_instruments_and_bad_reports_are_counted_not_fatal() {
        let (mut e, mut o) = synced(0);
        e.on_event(&Event::control(9, MS, Command::Halt), &mut o);
        assert_eq!(e.stats().unknown_instrument, 1);
        report(&mut e, &mut o, ExecKind::Fill, 0xdead_beef, 1, 1, 1, MS);
        assert_eq!(e.instrument(0).unwrap().orders.stats().unknown_reports, 1);
        assert_eq!(e.instrument(0).unwrap().position.qty, 0);
        // Time going backwards is held, counted.
        e.on_event(&Event::timer(0), &mut o);
        assert_eq!(e.stats().time_regressions, 1);
        assert_eq!(e.now_ns(), MS);
    }

    fn bbo(bid: i64, ask: i64, u: u64, t: i64) -> Event {
        Event::bbo(
            0,
            0,
            t,
            TopOfBook {
                bid_price: bid,
                bid_qty: 10,
                ask_price: ask,
                ask_qty: 10,
                update_id: u,
            },
        )
    }

    /// A depth message (update id `u`) moving the whole book to `bid` / `bid + 1`.
    fn depth_to(e: &mut Engine, o: &mut Out, from: i64, bid: i64, u: u64, t: i64) {
        let lvl = |side, price, qty, last| {
            Event::level(
                0,
                0,
                t,
                LevelUpdate {
                    side,
                    price,
                    qty,
                    update_id: u,
                    last_in_msg: last,
                    snapshot: false,
                },
            )
        };
        e.on_event(&lvl(Side::Bid, from, 0, false), o);
        e.on_event(&lvl(Side::Ask, from + 1, 0, false), o);
        e.on_event(&lvl(Side::Bid, bid, 50, false), o);
        e.on_event(&lvl(Side::Ask, bid + 1, 50, true), o);
    }

    fn best_place(o: &Out, side: Side) -> Option<i64> {
        let px = o
            .intents
            .iter()
            .filter(|i| i.kind == IntentKind::Place && i.side == side)
            .map(|i| i.price);
        match side {
            Side::Bid => px.max(),
            Side::Ask => px.min(),
        }
    }

    #[test]
    fn a_bbo_newer_than_the_depth_book_is_priced_from() {
        let (mut e, mut o) = synced(0);
        // Book 1000 / 1001, mid 1000.5: layer 0 at 2 ticks → bid 998, ask 1003.
        assert_eq!(best_place(&o, Side::Bid), Some(998));
        assert_eq!(best_place(&o, Side::Ask), Some(1003));
        ack_all(&mut e, &mut o, MS);
        o.intents.clear();
        // The top moves up 10 ticks; the depth message has not come yet.
        e.on_event(&bbo(1010, 1011, 5, 2 * MS), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(best_place(&o, Side::Bid), Some(1008), "{:?}", o.intents);
        assert_eq!(best_place(&o, Side::Ask), Some(1013));
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1010.5))
        );
        assert_eq!((e.stats().bbo_used, e.stats().bbo_behind), (1, 0));
        // The depth message with the same update id catches up: same touch, nothing to do.
        ack_all(&mut e, &mut o, 3 * MS);
        o.intents.clear();
        depth_to(&mut e, &mut o, 1000, 1010, 5, 4 * MS);
        e.on_batch_end(&mut o);
        assert!(o.intents.is_empty(), "{:?}", o.intents);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1010.5))
        );
    }

    #[test]
    fn a_bbo_not_newer_than_the_depth_book_is_ignored() {
        let (mut e, mut o) = synced(0);
        o.intents.clear();
        // The book is at update id 1 (the snapshot): a BBO with id 1 is not newer.
        e.on_event(&bbo(1010, 1011, 1, MS), &mut o);
        e.on_batch_end(&mut o);
        assert!(o.intents.is_empty());
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1000.5))
        );
        // A depth message at id 9, then a BBO at id 7 (arrived late): ignored.
        depth_to(&mut e, &mut o, 1000, 1020, 9, 2 * MS);
        e.on_event(&bbo(1030, 1031, 7, 3 * MS), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1020.5))
        );
        // A newer BBO, then an older one than it: the newer one stays.
        e.on_event(&bbo(1040, 1041, 12, 4 * MS), &mut o);
        e.on_event(&bbo(1050, 1051, 11, 4 * MS), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1040.5))
        );
        assert_eq!((e.stats().bbo_used, e.stats().bbo_behind), (1, 3));
        // A depth message newer than the BBO wins again.
        depth_to(&mut e, &mut o, 1020, 1005, 13, 5 * MS);
        e.on_batch_end(&mut o);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1005.5))
        );
    }

    #[test]
    fn malformed_bbos_are_refused_and_invalid_books_clear_the_bbo() {
        let (mut e, mut o) = synced(0);
        for (bid, ask, bq, aq) in [
            (1011, 1010, 1, 1),
            (1010, 1010, 1, 1),
            (0, 5, 1, 1),
            (5, 6, 0, 1),
            (5, 6, 1, -1),
        ] {
            let t = TopOfBook {
                bid_price: bid,
                bid_qty: bq,
                ask_price: ask,
                ask_qty: aq,
                update_id: 50,
            };
            e.on_event(&Event::bbo(0, 0, MS, t), &mut o);
        }
        e.on_batch_end(&mut o);
        assert_eq!(e.stats().bbo_refused, 5);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1000.5))
        );
        // A BBO newer than the book, then the book goes invalid: the BBO is dropped, and one
        // arriving before the book is valid again is ignored.
        e.on_event(&bbo(1010, 1011, 5, 2 * MS), &mut o);
        e.on_event(
            &Event::book_invalid(
                0,
                0,
                2 * MS,
                crate::event::BookStatusReason::SequenceGap,
                5,
                7,
            ),
            &mut o,
        );
        e.on_event(&bbo(1020, 1021, 9, 3 * MS), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(e.instrument(0).unwrap().mode.0, Mode::Halted);
        assert_eq!((e.stats().bbo_used, e.stats().bbo_behind), (1, 1));
        // Resynced at id 20 with the book at 1000 / 1001: the old BBOs do not come back.
        e.on_event(&Event::book_reset(0, 0, 4 * MS, 20), &mut o);
        e.on_event(&level(Side::Bid, 1000, 50, 4 * MS, false), &mut o);
        e.on_event(&level(Side::Ask, 1001, 50, 4 * MS, true), &mut o);
        e.on_event(&Event::book_valid(0, 0, 4 * MS, 20), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(e.instrument(0).unwrap().mode.0, Mode::Normal);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1000.5))
        );
    }

    #[test]
    fn top_of_book_depth_book_ignores_bbos() {
        let cfg = CFG.replace(
            "fair_value = \"mid\"",
            "fair_value = \"mid\"\ntop_of_book = \"depth_book\"",
        );
        let mut e = Engine::new(&Config::from_toml(&cfg).unwrap());
        let mut o = Out::default();
        e.on_event(&Event::book_reset(0, 0, 0, 1), &mut o);
        e.on_event(&level(Side::Bid, 1000, 50, 0, false), &mut o);
        e.on_event(&level(Side::Ask, 1001, 50, 0, true), &mut o);
        e.on_event(&Event::book_valid(0, 0, 0, 1), &mut o);
        e.on_event(&bbo(1010, 1011, 5, MS), &mut o);
        e.on_batch_end(&mut o);
        assert_eq!(
            e.instrument(0).unwrap().fair_value,
            Some(Fx::from_num(1000.5))
        );
        assert_eq!(e.stats().bbo_used + e.stats().bbo_behind, 0);
    }
}
