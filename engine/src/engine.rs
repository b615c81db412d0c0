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
//!
//! This module holds the per-instrument state and the wiring; each stage is its own module:
//! `pricer` (fair value → ladders), `risk` (mode, clamp, forced cancels), `diff` (ladders against
//! working orders), `reconcile` (the venue's view), and `emit`, through which every intent leaves.

use crate::adapt::{self, AdaptState, Shape};
use crate::book::{BboOffer, BboOverlay, OrderBook};
use crate::config::{Config, Fx, InstrumentConfig, ReloadRefused, TopOfBookSource};
use crate::emit::Emitter;
use crate::event::{
    reject_code, Command, Event, EventKind, ExecKind, ExecReport, FirmLimit, InstrumentId,
};
use crate::hedge_config::HedgeGroup;
use crate::intent::{Mode, ModeChange, ModeReason, Sink};
use crate::limits::{CircuitBreaker, OrderBudget, TokenBucket, MINUTE_NS};
use crate::orders::{OrderState, OrderTable, ReportOutcome};
use crate::position::Position;
use crate::pricer::{self, Ladder};
use crate::stage::{NoClock, Stage, StageClock};
use crate::stats::EngineStats;
use crate::{diff, hedge, reconcile, risk};

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
    /// Total PnL at the start of the engine's current day (UTC, engine time), money units: the
    /// daily loss limit is checked against the total's fall from it.
    pub day_start_pnl: i128,
    /// Where the last requote wanted layer 0 (ticks), bid then ask; `None` for a side it did not
    /// quote (empty desired ladder).
    pub desired_best: [Option<i64>; 2],
    /// The latest funding rate the venue announced, in units of 10^-8 (`None`: no mark price
    /// yet, as on spot). From [`InstrumentView::mark`].
    pub funding_rate_e8: Option<i64>,
    /// The latest mark price, index price and funding the venue announced.
    pub mark: Option<MarkState>,
    /// The adaptive spreads' state (`[instrument.quote.adapt]`; `None` without the section).
    pub adapt: Option<AdaptView>,
}

/// What `[instrument.quote.adapt]` did to an instrument's quotes: its estimate, the last
/// requote's shape, and counters since the estimators were built (at start, and again when a
/// reload changes the section). Read for reports; the engine does not use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptView {
    /// Realized volatility, bps of fair value per √s (`None` until the estimator has warmed
    /// up).
    pub sigma_bps: Option<Fx>,
    /// The scale the last requote applied to the grid's distances, bid then ask (1: as
    /// configured; before the first requote, 1).
    pub scale: [Fx; 2],
    /// The nearest layers the last requote left out, bid then ask.
    pub pull: [usize; 2],
    /// Requotes priced with the section (with a book to price from).
    pub requotes: u64,
    /// Of those, requotes whose offsets volatility widened.
    pub widened_vol: u64,
    /// Requotes that toxicity (VPIN or the trade imbalance) widened.
    pub widened_toxic: u64,
    /// Requotes that pulled the nearest layers of a side.
    pub pulled: u64,
    /// Requotes whose layer 0 a model (`model = "glft"` or `"avellaneda_stoikov"`) set.
    pub modelled: u64,
}

/// The latest [`EventKind::MarkPrice`] of an instrument, as the engine holds it: journaled with
/// its event, shown in [`InstrumentView`], and the funding rate leans the reservation price
/// when `quote.adapt.funding_skew` is set (a mark price older than `funding_stale_ms` is not
/// used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkState {
    /// Mark price, ticks (rounded to the nearest tick by the decoder).
    pub mark_price: i64,
    /// Index price, ticks (likewise).
    pub index_price: i64,
    /// Funding rate of the next funding, units of 10^-8 (negative: shorts pay longs).
    pub funding_rate_e8: i64,
    /// Next funding time, ms since the Unix epoch (0: none).
    pub next_funding_ms: i64,
    /// The engine's time when it arrived (its local receive time, forced monotonic), ns.
    pub time_ns: i64,
}

/// The engine's state for one instrument, shared by the stages (`pricer`, `risk`, `diff`).
#[derive(Debug)]
pub(crate) struct Inst {
    pub(crate) cfg: InstrumentConfig,
    pub(crate) id: InstrumentId,
    pub(crate) book: OrderBook,
    pub(crate) orders: OrderTable,
    pub(crate) pos: Position,
    /// The venue time (ns) of the newest venue position taken ([`EventKind::ReconcilePosition`]):
    /// a fill reported later but done at or before it is already in the position (0: none).
    pub(crate) pos_as_of_venue_ns: i64,
    pub(crate) mode: Mode,
    pub(crate) reason: ModeReason,
    pub(crate) dirty: bool,
    pub(crate) operator_halt: bool,
    /// The host clock failed its check (a feed's `ClockFault`, until its `ClockOk`).
    pub(crate) clock_fault: bool,
    /// The live order-entry link is down or unreconciled (`OrderEntryDown`, until
    /// `OrderEntryUp`).
    pub(crate) order_entry_down: bool,
    pub(crate) operator_reduce_only: bool,
    /// Reconciliation saw an open foreign order: reduce-only until the operator's `Normal`.
    pub(crate) foreign_order: bool,
    pub(crate) cancel_all_requested: bool,
    /// The operator's flatten (`Command::Flatten`), until `Resume`.
    pub(crate) flatten_requested: bool,
    /// The firm-wide limits from the bus (`Command::FirmLimit`); `None` until one arrives.
    pub(crate) firm: Option<FirmLimit>,
    pub(crate) loss_limit_hit: bool,
    pub(crate) stop_loss_latched: bool,
    pub(crate) flatten_cid: Option<u64>,
    /// The last best bid/offer newer than the depth book (cleared on reset and invalid).
    pub(crate) top: BboOverlay,
    pub(crate) last_book_ns: i64,
    pub(crate) last_ratio: Fx,
    pub(crate) fair_value: Option<Fx>,
    pub(crate) day: i64,
    pub(crate) day_start_pnl: i128,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) cancel_budget: TokenBucket,
    /// Desired bids of the current requote, nearest the touch first.
    pub(crate) bids: Ladder,
    /// Desired asks of the current requote, nearest the touch first.
    pub(crate) asks: Ladder,
    /// The last diff that had nothing to do, to skip the same one again.
    pub(crate) quiet: diff::QuietDiff,
    /// The latest mark price and funding (`EventKind::MarkPrice`); `None` until one arrives.
    pub(crate) mark: Option<MarkState>,
    /// The adaptive-spread estimators (`[instrument.quote.adapt]`).
    pub(crate) adapt: Option<AdaptState>,
    /// A quoted instrument of a `[[hedge]]` group: the group's delta in its lots, which skews
    /// its quotes in place of its own position (`None`: no group, or unknown).
    pub(crate) hedge_skew: Option<i64>,
    /// A quoted instrument of a `[[hedge]]` group: what its open orders may add to the group's
    /// delta before the hard limit, lots `(buy, sell)`; unbounded otherwise.
    pub(crate) hedge_room: (i64, i64),
}

impl Inst {
    /// Forgets the stop-loss flatten order once `cid`, if it is that order, is done.
    pub(crate) fn forget_flatten_if_done(&mut self, cid: u64) {
        if self.flatten_cid == Some(cid)
            && self
                .orders
                .get(cid)
                .is_none_or(|o| o.state == OrderState::Done)
        {
            self.flatten_cid = None;
        }
    }
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    insts: Vec<Inst>,
    now_ns: i64,
    emitter: Emitter,
    /// One order budget per venue (its account's limits), by [`crate::VenueFlavour::index`].
    budgets: [OrderBudget; 3],
    /// The limits the budgets were built from (a reload rebuilds only what changed).
    venue_limits: [(u32, u32); 3],
    /// Each book's window (fixed at start).
    book_slots: usize,
    stats: EngineStats,
    /// `[engine] adopt_unknown_orders`.
    adopt_unknown: bool,
    /// The diff's buffers, reused by every requote.
    scratch: Box<diff::Scratch>,
    /// `[[hedge]]` groups, and their state (same order).
    hedge_cfg: Vec<HedgeGroup>,
    hedges: Vec<hedge::GroupState>,
}

/// One `[[hedge]]` group's state, for reports and metrics.
#[derive(Debug, Clone, Copy)]
pub struct HedgeView<'a> {
    /// Its configuration.
    pub config: &'a HedgeGroup,
    /// Its delta, 10^-[`crate::DELTA_SCALE`] of the base asset (`None`: an inverse member
    /// without a fair value yet).
    pub delta: Option<i128>,
    /// When |delta| last left the band, engine time (`None`: inside it).
    pub breach_since: Option<i64>,
    /// Every member's book valid, fresh (not stale) and with a fair value.
    pub valid: bool,
    /// Active hedges' worst-case cost today (UTC, engine time), quote currency.
    pub cost_today: Fx,
    /// The same since the start.
    pub cost_total: Fx,
    /// Counters.
    pub stats: hedge::HedgeStats,
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
                clock_fault: false,
                order_entry_down: false,
                operator_reduce_only: false,
                foreign_order: false,
                cancel_all_requested: false,
                flatten_requested: false,
                firm: None,
                loss_limit_hit: false,
                stop_loss_latched: false,
                pos_as_of_venue_ns: 0,
                flatten_cid: None,
                top: BboOverlay::default(),
                last_book_ns: 0,
                last_ratio: Fx::ZERO,
                fair_value: None,
                day: i64::MIN,
                day_start_pnl: 0,
                breaker: CircuitBreaker::new(c.circuit_window_ns, c.max_price_change),
                cancel_budget: TokenBucket::new(c.cancel_budget_per_min, MINUTE_NS),
                bids: Ladder::default(),
                asks: Ladder::default(),
                quiet: diff::QuietDiff::new(),
                mark: None,
                adapt: c.adapt.as_ref().map(AdaptState::new),
                hedge_skew: None,
                hedge_room: (i64::MAX, i64::MAX),
            })
            .collect();
        Engine {
            insts,
            now_ns: i64::MIN,
            emitter: Emitter::default(),
            budgets: cfg
                .venue_limits
                .map(|(per_10s, per_min)| OrderBudget::new(per_10s, per_min)),
            venue_limits: cfg.venue_limits,
            book_slots: cfg.book_slots,
            stats: EngineStats::default(),
            adopt_unknown: cfg.adopt_unknown_orders,
            scratch: diff::Scratch::boxed(),
            hedges: cfg.hedges.iter().map(hedge::GroupState::new).collect(),
            hedge_cfg: cfg.hedges.clone(),
        }
    }

    /// Applies a reloaded config (the operator's hot reload), or refuses it and changes nothing
    /// ([`Config::reload_refusal`]). Every instrument takes the new parameters and requotes at the
    /// next batch end; orders, positions, PnL and books are kept. A changed circuit-breaker window
    /// or threshold starts a fresh breaker, a changed cancel budget a full bucket, changed venue
    /// order limits fresh budgets; unchanged ones keep their state. Off the hot path: it copies the
    /// config (the host journals the new config with it, so a replay applies it at the same point).
    pub fn reconfigure(&mut self, cfg: &Config) -> Result<(), ReloadRefused> {
        let running = self.insts.iter().map(|i| &i.cfg);
        if let Some(r) =
            crate::config::reload_refusal(running, self.book_slots, &self.hedge_cfg, cfg)
        {
            return Err(r);
        }
        for (inst, new) in self.insts.iter_mut().zip(&cfg.instruments) {
            if inst.cfg.circuit_window_ns != new.circuit_window_ns
                || inst.cfg.max_price_change != new.max_price_change
            {
                inst.breaker = CircuitBreaker::new(new.circuit_window_ns, new.max_price_change);
            }
            if inst.cfg.cancel_budget_per_min != new.cancel_budget_per_min {
                inst.cancel_budget = TokenBucket::new(new.cancel_budget_per_min, MINUTE_NS);
            }
            if inst.cfg.adapt != new.adapt {
                // New parameters, new estimators (they warm up again).
                inst.adapt = new.adapt.as_ref().map(AdaptState::new);
            }
            inst.cfg = new.clone();
            inst.quiet.forget();
            inst.dirty = true;
        }
        for (k, limits) in cfg.venue_limits.iter().enumerate() {
            if self.venue_limits[k] != *limits {
                self.budgets[k] = OrderBudget::new(limits.0, limits.1);
            }
        }
        self.venue_limits = cfg.venue_limits;
        self.adopt_unknown = cfg.adopt_unknown_orders;
        // The members are the same (checked above): only limits change.
        for ((st, old), new) in self.hedges.iter_mut().zip(&self.hedge_cfg).zip(&cfg.hedges) {
            st.reconfigure(old, new);
        }
        self.hedge_cfg = cfg.hedges.clone();
        Ok(())
    }

    /// Each venue's order budget at the engine's time ([`crate::VenueFlavour::index`] order):
    /// places in the last 10 s and the last minute, each with its limit. Counts a window of up to
    /// the limit's size: for metrics, not for the hot path.
    pub fn order_budget_usage(&self) -> [[(u32, u32); 2]; 3] {
        let now = self.now_ns;
        [
            self.budgets[0].used(now),
            self.budgets[1].used(now),
            self.budgets[2].used(now),
        ]
    }

    /// Discretionary cancels of instrument `id` in the last minute, and its budget.
    pub fn cancel_budget_usage(&self, id: InstrumentId) -> Option<(u32, u32)> {
        self.insts
            .get(id as usize)
            .map(|i| i.cancel_budget.used(self.now_ns))
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
            day_start_pnl: i.day_start_pnl,
            desired_best: [
                i.bids.as_slice().first().map(|l| l.price),
                i.asks.as_slice().first().map(|l| l.price),
            ],
            funding_rate_e8: i.mark.map(|m| m.funding_rate_e8),
            mark: i.mark,
            adapt: i.adapt.as_ref().map(|a| AdaptView {
                sigma_bps: a.sigma_bps(),
                scale: a.scale,
                pull: a.pull,
                requotes: a.requotes,
                widened_vol: a.widened_vol,
                widened_toxic: a.widened_toxic,
                pulled: a.pulled,
                modelled: a.modelled,
            }),
        })
    }

    /// Number of `[[hedge]]` groups.
    pub fn hedge_groups(&self) -> usize {
        self.hedges.len()
    }

    /// A read-only view of hedge group `g` (config order).
    pub fn hedge(&self, g: usize) -> Option<HedgeView<'_>> {
        let (cfg, st) = (self.hedge_cfg.get(g)?, self.hedges.get(g)?);
        // Synced and fresh: a book that stopped updating (stale) prices nothing.
        let valid = cfg.quoted.iter().chain(&cfg.hedges).all(|&id| {
            let i = &self.insts[id as usize];
            i.book.is_valid()
                && i.fair_value.is_some()
                && !matches!(i.reason, ModeReason::BookStale | ModeReason::BookInvalid)
        });
        Some(HedgeView {
            config: cfg,
            delta: st.delta,
            breach_since: st.breach_since,
            valid,
            cost_today: st.cost_today,
            cost_total: st.cost_total,
            stats: st.stats,
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
                risk::cancel_all(inst, now, &mut self.emitter, &mut self.stats, sink);
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
            EventKind::Trade => {
                if let Some(a) = &mut inst.adapt {
                    match ev.as_trade() {
                        Some(t) => a.on_trade(now, t.price, t.qty, t.aggressor),
                        None => self.stats.malformed += 1,
                    }
                }
            }
            // Kept for whoever prices with it; not a reason to requote (nothing is dirtied).
            EventKind::MarkPrice => match ev.as_mark_price() {
                Some(m) => {
                    self.stats.mark_prices += 1;
                    inst.mark = Some(MarkState {
                        mark_price: m.mark_price,
                        index_price: m.index_price,
                        funding_rate_e8: m.funding_rate_e8,
                        next_funding_ms: m.next_funding_ms,
                        time_ns: now,
                    });
                }
                None => self.stats.malformed += 1,
            },
            EventKind::ExecReport => {
                let Some(r) = ev.as_exec() else {
                    self.stats.malformed += 1;
                    return;
                };
                if ev.is_saturated() {
                    self.stats.exec_saturated += 1;
                    return;
                }
                Self::count_reject(&r, &mut self.stats);
                match inst.orders.on_report(&r) {
                    // A fill done at or before the venue position last taken is in it already:
                    // its report (late, or held while that position was asked for) completes
                    // the order, not the position again.
                    ReportOutcome::Applied(Some(_)) | ReportOutcome::LateFill(..)
                        if ev.venue_time_ns > 0 && ev.venue_time_ns <= inst.pos_as_of_venue_ns =>
                    {
                        self.stats.fills_in_venue_position += 1;
                    }
                    ReportOutcome::Applied(Some((side, px, qty)))
                    | ReportOutcome::LateFill(side, px, qty) => {
                        inst.pos
                            .on_fill(&inst.cfg.instrument, side, px, qty, r.fee, r.taker);
                        if inst.pos.qty == 0 {
                            inst.stop_loss_latched = false;
                        }
                    }
                    _ => {}
                }
                inst.forget_flatten_if_done(r.client_order_id);
                inst.dirty = true;
            }
            // A reading of the host clock, for the journal: nothing to do, nothing to requote.
            EventKind::Control if ev.as_control() == Some(Command::ClockReading) => {}
            EventKind::Control => {
                match ev.as_control() {
                    Some(Command::Halt) => inst.operator_halt = true,
                    Some(Command::Resume) => {
                        inst.operator_halt = false;
                        inst.flatten_requested = false;
                        inst.loss_limit_hit = false;
                        // A new baseline: the loss that tripped the limit is not counted twice.
                        inst.day_start_pnl = inst.fair_value.map_or(inst.day_start_pnl, |fv| {
                            inst.pos.total_pnl(&inst.cfg.instrument, fv)
                        });
                    }
                    Some(Command::ReduceOnly) => inst.operator_reduce_only = true,
                    Some(Command::Normal) => {
                        inst.operator_reduce_only = false;
                        inst.foreign_order = false;
                    }
                    Some(Command::CancelAll) => inst.cancel_all_requested = true,
                    Some(Command::Flatten) => inst.flatten_requested = true,
                    // Applied with the reload record before it (`Engine::reconfigure`).
                    Some(Command::Reload) => {}
                    Some(Command::ClockFault) => inst.clock_fault = true,
                    Some(Command::ClockOk) => inst.clock_fault = false,
                    Some(Command::OrderEntryDown) => inst.order_entry_down = true,
                    Some(Command::OrderEntryUp) => {
                        inst.order_entry_down = false;
                        inst.orders.adopted_seen();
                    }
                    Some(Command::FirmLimit) => match ev.as_firm_limit() {
                        Some(l) => inst.firm = Some(l),
                        None => self.stats.malformed += 1,
                    },
                    Some(Command::ClockReading) | None => self.stats.malformed += 1,
                }
                inst.dirty = true;
            }
            EventKind::ReconcileOrder => match ev.as_reconcile_order() {
                Some(v) => {
                    let adopt = self.adopt_unknown;
                    reconcile::venue_order(
                        inst,
                        &v,
                        adopt,
                        now,
                        &mut self.emitter,
                        &mut self.stats,
                        sink,
                    )
                }
                None => self.stats.malformed += 1,
            },
            EventKind::ReconcilePosition => match ev.as_reconcile_position() {
                // The position right after a fill, in stream order: it holds every fill
                // reported before it and none after, so from here on every fill reported
                // moves the position, even one in the snapshot's venue millisecond. One older
                // than the last snapshot would undo fills the snapshot holds.
                Some(v) if v.streamed => {
                    if ev.venue_time_ns >= inst.pos_as_of_venue_ns {
                        reconcile::venue_position(inst, &v, &mut self.stats);
                        inst.pos_as_of_venue_ns = 0;
                    } else {
                        self.stats.stale_streamed_positions += 1;
                    }
                }
                Some(v) => {
                    reconcile::venue_position(inst, &v, &mut self.stats);
                    inst.pos_as_of_venue_ns = inst.pos_as_of_venue_ns.max(ev.venue_time_ns);
                }
                None => self.stats.malformed += 1,
            },
            EventKind::Timer => {}
        }
    }

    /// Counts a reject or cancel reject by the venue's code.
    #[inline]
    fn count_reject(r: &ExecReport, stats: &mut EngineStats) {
        if !matches!(r.kind, ExecKind::Rejected | ExecKind::CancelRejected) {
            return;
        }
        match r.reject_code {
            0 | reject_code::POST_ONLY_WOULD_TAKE => {}
            reject_code::UNKNOWN_ORDER => stats.rejects_unknown_order += 1,
            reject_code::RATE_LIMIT => stats.rejects_rate_limited += 1,
            _ => stats.rejects_other += 1,
        }
    }

    /// The requote point: for each instrument whose state changed, price, check and diff.
    #[inline]
    pub fn on_batch_end(&mut self, sink: &mut impl Sink) {
        self.on_batch_end_timed(sink, &mut NoClock);
    }

    /// [`Engine::on_batch_end`], telling `clock` where each stage ends.
    pub fn on_batch_end_timed(&mut self, sink: &mut impl Sink, clock: &mut impl StageClock) {
        let now = self.now_ns;
        for (g, st) in self.hedge_cfg.iter().zip(self.hedges.iter_mut()) {
            hedge::prepare(g, st, &mut self.insts, now);
        }
        for k in 0..self.insts.len() {
            if self.insts[k].dirty {
                self.insts[k].dirty = false;
                self.stats.requotes += 1;
                clock.start();
                self.requote(k, sink, clock);
            }
        }
        if !self.hedges.is_empty() {
            let mut cx = hedge::Ctx {
                insts: &mut self.insts,
                budgets: &mut self.budgets,
                emitter: &mut self.emitter,
                stats: &mut self.stats,
                sink,
                now,
            };
            for (g, st) in self.hedge_cfg.iter().zip(self.hedges.iter_mut()) {
                hedge::plan(g, st, &mut cx);
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

    fn requote(&mut self, k: usize, sink: &mut impl Sink, clock: &mut impl StageClock) {
        let now = self.now_ns;
        let inst = &mut self.insts[k];

        // ---- pricing -------------------------------------------------------------------
        let top = inst.top.top_of_book(&inst.book);
        let fv = top.map(|t| pricer::fair_value(inst.cfg.fair_value, &t));
        if let Some(fv) = fv {
            inst.fair_value = Some(fv);
        }
        let pos = inst.pos.qty;
        // In a hedge group, the group's delta skews the quotes (toward reducing it).
        let skew_pos = inst.hedge_skew.unwrap_or(pos);
        let ratio = pricer::inventory_ratio(
            skew_pos,
            inst.cfg.net_max,
            inst.cfg.skew_hysteresis,
            inst.last_ratio,
        );
        inst.last_ratio = ratio;
        inst.bids.clear();
        inst.asks.clear();
        // A hedge instrument quotes no grid: the planner places its orders after the requotes.
        if let (Some(t), Some(fv), false) = (top, fv, inst.cfg.hedge_only) {
            let shape = match (&mut inst.adapt, &inst.cfg.adapt) {
                (Some(a), Some(c)) => {
                    a.on_fair_value(c, now, fv);
                    let funding = inst
                        .mark
                        .filter(|m| now.saturating_sub(m.time_ns) <= c.funding_stale_ns)
                        .map(|m| m.funding_rate_e8);
                    let q = adapt::inventory_in_layers(skew_pos, inst.cfg.layer_size);
                    let max_depth = fv.saturating_mul(inst.cfg.max_deviation) / 2;
                    a.shape(c, now, fv, q, funding, max_depth)
                }
                _ => Shape::NONE,
            };
            // A model's depths carry the inventory skew; the grid's reservation price does.
            let r = match shape.depth0 {
                Some(_) => fv,
                None => pricer::reservation(fv, ratio, inst.cfg.skew_coeff),
            }
            .saturating_add(shape.shift);
            let (nb, na) = pricer::layer_counts(inst.cfg.layers, pos, inst.cfg.net_max);
            pricer::build_ladders(
                &inst.cfg,
                &t,
                fv,
                r,
                nb,
                na,
                &shape,
                &mut inst.bids,
                &mut inst.asks,
            );
        }
        clock.mark(Stage::Pricing);

        // ---- risk: mode, then the clamp ------------------------------------------------
        let (mode, reason) = risk::evaluate_mode(inst, top.is_some(), fv, now);
        if reason == ModeReason::BookStale && inst.reason != ModeReason::BookStale {
            self.stats.stale_periods += 1;
        }
        Self::set_mode(inst, mode, reason, now, sink);
        risk::clamp(inst, mode, fv);
        clock.mark(Stage::Risk);

        // ---- diff ----------------------------------------------------------------------
        if mode == Mode::Halted || inst.cancel_all_requested {
            inst.cancel_all_requested = false;
            risk::cancel_all(inst, now, &mut self.emitter, &mut self.stats, sink);
        }
        // The operator's flatten (halted) or the stop loss's (reduce-only).
        risk::flatten_when_due(
            inst,
            reason,
            top,
            now,
            &mut self.budgets[inst.cfg.venue.index()],
            &mut self.emitter,
            &mut self.stats,
            sink,
        );
        if mode == Mode::Halted || inst.cfg.hedge_only {
            clock.mark(Stage::Diff);
            return;
        }
        diff::diff(
            inst,
            mode,
            now,
            &mut self.budgets[inst.cfg.venue.index()],
            &mut self.emitter,
            &mut self.stats,
            sink,
            &mut self.scratch,
        );
        clock.mark(Stage::Diff);
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
