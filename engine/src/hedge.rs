//! Delta hedging: keep each `[[hedge]]` group's net delta near zero by trading its hedge
//! instruments.
//!
//! At every batch end, before the requotes, [`prepare`] sums the group's delta (every member's
//! position in base-asset units, [`delta_units`]), dates a breach of the band, and gives each
//! quoted instrument its skew (the group's delta in its own lots) and its room on the side that
//! grows |delta| (the hard limit less the delta). After the requotes, [`plan`] decides the hedge:
//!
//! - |delta| inside the band: nothing new; a passive order that would not overshoot past the
//!   band on the other side is left to fill, any other is cancelled;
//! - outside the band: one passive order (post-only at the touch) for the whole delta on the
//!   cheapest hedge instrument that can take it, re-priced when the touch moves away;
//! - outside the band for `max_age_ms`, or at the hard limit: the passive order is cancelled
//!   and, once the venue has ended it, an IOC at the price limit (`max_slippage_bps` past fair
//!   value) takes the delta. Never a passive and an active order for the same delta at once.
//!
//! Every hedge order spends the group's rate budget and the venue's order budget, stays within
//! the hedge instrument's mode, position cap, balances and firm room, and leaves through the
//! [`Emitter`] like every other intent: journaled, replayed, reported.

use crate::config::Fx;
use crate::emit::Emitter;
use crate::engine::Inst;
use crate::event::{InstrumentId, Side, TopOfBook};
use crate::hedge_config::HedgeGroup;
use crate::instrument::{Instrument, InstrumentKind, INVERSE_MONEY_SCALE};
use crate::intent::{Mode, Sink, TimeInForce};
use crate::limits::{OrderBudget, TokenBucket, MINUTE_NS};
use crate::stats::EngineStats;

/// Delta is counted in 10^-12 of the base asset (an integer): exact for any lot of at most 12
/// decimals; an inverse contract's delta (contracts × contract size / price) is rounded down to
/// it, as its money value is.
pub const DELTA_SCALE: u32 = 12;
const _: () = assert!(INVERSE_MONEY_SCALE as u32 == DELTA_SCALE);

const NS_PER_DAY: i64 = 86_400_000_000_000;

/// Delta units in one lot of a linear or spot instrument.
#[inline]
fn units_per_lot(inst: &Instrument) -> i128 {
    let scale = DELTA_SCALE.saturating_sub(inst.lot.scale() as u32);
    i128::from(inst.lot.mantissa()).saturating_mul(10i128.pow(scale))
}

/// The base-asset delta of `qty` lots (signed: long positive), in delta units: linear and spot
/// `qty × lot`; inverse `qty × contract_size / fv` at the engine's fair value `fv` (ticks),
/// rounded down. `None` for an inverse position without a fair value.
pub fn delta_units(inst: &Instrument, qty: i64, fv: Option<Fx>) -> Option<i128> {
    if qty == 0 {
        return Some(0);
    }
    match inst.kind {
        InstrumentKind::Inverse => {
            let fv = fv.filter(|f| *f >= 1)?;
            Some(inst.value_at(fv, qty))
        }
        _ => Some(i128::from(qty).saturating_mul(units_per_lot(inst))),
    }
}

/// How many lots of `inst` carry `delta` (≥ 0) delta units at fair value `fv`: rounded to the
/// nearest lot (`nearest`) or down. `None` for an inverse instrument without a fair value.
pub fn lots_for_delta(
    inst: &Instrument,
    delta: i128,
    fv: Option<Fx>,
    nearest: bool,
) -> Option<i64> {
    let delta = delta.max(0);
    let (num, den) = match inst.kind {
        InstrumentKind::Inverse => {
            // contracts = delta · 10^-12 · price / contract_size, the price to 2^-16 tick.
            let fv16 = fv.filter(|f| *f >= 1)?.to_bits() >> 48;
            (
                delta.saturating_mul(fv16),
                i128::from(inst.contract_ticks)
                    .saturating_mul(10i128.pow(DELTA_SCALE))
                    .saturating_mul(1 << 16),
            )
        }
        _ => (delta, units_per_lot(inst)),
    };
    if den <= 0 {
        return None;
    }
    let lots = if nearest {
        num.saturating_add(den / 2) / den
    } else {
        num / den
    };
    Some(lots.min(i128::from(i64::MAX)) as i64)
}

/// What a group's hedging did, counted since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HedgeStats {
    /// Times |delta| left the band.
    pub breaches: u64,
    /// Passive hedge orders placed (post-only at the touch).
    pub passive: u64,
    /// Active hedge orders placed because the breach reached `max_age_ms`.
    pub active_age: u64,
    /// Active hedge orders placed because |delta| reached the hard limit.
    pub active_hard: u64,
    /// Passive orders cancelled to re-price or resize them.
    pub reprices: u64,
    /// Passive orders cancelled to make way for an active hedge.
    pub cancelled_for_active: u64,
    /// Hedge orders a full rate budget (the group's or the venue's) held back.
    pub rate_limited: u64,
    /// Active hedges the daily cost cap held back (counted once per breach).
    pub cost_capped: u64,
    /// Active hedges held back because the far touch was beyond the price limit.
    pub beyond_price_limit: u64,
    /// Hedges that no hedge instrument could take (halted, no book, no room, below minimum).
    pub no_route: u64,
}

/// The engine's state of one hedge group.
#[derive(Debug)]
pub(crate) struct GroupState {
    /// The group's delta, delta units (`None`: an inverse member without a fair value).
    pub(crate) delta: Option<i128>,
    /// When |delta| last left the band (`None`: inside it).
    pub(crate) breach_since: Option<i64>,
    /// The passive order working, (hedge instrument, client order id).
    passive: Option<(InstrumentId, u64)>,
    /// The active order in flight.
    active: Option<(InstrumentId, u64)>,
    /// Hedge orders in the last minute.
    rate: TokenBucket,
    /// The UTC day (engine time) `cost_today` is of.
    day: i64,
    /// Active hedges' worst-case cost today, quote currency.
    pub(crate) cost_today: Fx,
    /// The same over the whole run.
    pub(crate) cost_total: Fx,
    /// The cost cap held back this breach's active hedge (counted once).
    capped: bool,
    /// No hedge instrument could take this breach's hedge (counted once).
    unrouted: bool,
    pub(crate) stats: HedgeStats,
}

impl GroupState {
    pub(crate) fn new(g: &HedgeGroup) -> GroupState {
        GroupState {
            delta: Some(0),
            breach_since: None,
            passive: None,
            active: None,
            rate: TokenBucket::new(g.max_per_min, MINUTE_NS),
            day: i64::MIN,
            cost_today: Fx::ZERO,
            cost_total: Fx::ZERO,
            capped: false,
            unrouted: false,
            stats: HedgeStats::default(),
        }
    }

    /// Counts a hedge no instrument could take, once per breach.
    fn note_unrouted(&mut self) {
        if !self.unrouted {
            self.unrouted = true;
            self.stats.no_route += 1;
        }
    }

    /// The group's limits changed (a reload): a new rate budget if its size changed.
    pub(crate) fn reconfigure(&mut self, old: &HedgeGroup, new: &HedgeGroup) {
        if old.max_per_min != new.max_per_min {
            self.rate = TokenBucket::new(new.max_per_min, MINUTE_NS);
        }
    }
}

/// The group's delta from its members' positions and fair values.
fn group_delta(g: &HedgeGroup, insts: &[Inst]) -> Option<i128> {
    let mut sum = 0i128;
    for &id in g.quoted.iter().chain(&g.hedges) {
        let i = &insts[id as usize];
        sum = sum.saturating_add(delta_units(&i.cfg.instrument, i.pos.qty, i.fair_value)?);
    }
    Some(sum)
}

/// Before the requotes: the delta, the breach's start, and each quoted instrument's skew and
/// room (dirtied when they change).
pub(crate) fn prepare(g: &HedgeGroup, st: &mut GroupState, insts: &mut [Inst], now: i64) {
    st.delta = group_delta(g, insts);
    let Some(delta) = st.delta else {
        return;
    };
    if delta.abs() > g.band {
        if st.breach_since.is_none() {
            st.breach_since = Some(now);
            st.stats.breaches += 1;
            st.capped = false;
            st.unrouted = false;
        }
    } else {
        st.breach_since = None;
    }
    for &id in &g.quoted {
        let i = &mut insts[id as usize];
        let (inst, fv) = (&i.cfg.instrument, i.fair_value);
        let lots = |d: i128, nearest: bool| lots_for_delta(inst, d, fv, nearest);
        let skew = lots(delta.abs(), true).map(|l| if delta < 0 { -l } else { l });
        let room = (
            lots(g.hard_limit.saturating_sub(delta), false).unwrap_or(0),
            lots(g.hard_limit.saturating_add(delta), false).unwrap_or(0),
        );
        if i.hedge_skew != skew || i.hedge_room != room {
            i.hedge_skew = skew;
            i.hedge_room = room;
            i.dirty = true;
        }
    }
}

/// Whether `o` (a tracked hedge order) is still open.
fn open(insts: &[Inst], o: Option<(InstrumentId, u64)>) -> bool {
    o.is_some_and(|(id, cid)| {
        insts[id as usize]
            .orders
            .get(cid)
            .is_some_and(|o| o.is_open())
    })
}

/// What a hedge instrument can take on `side` now, lots: its mode (nothing halted; only
/// reducing its position in reduce-only), its position cap, the firm's room and its balances.
fn room(inst: &Inst, side: Side, fv: Fx) -> i64 {
    let pos = inst.pos.qty;
    let (buy, sell) = match inst.mode {
        Mode::Halted => (0, 0),
        Mode::ReduceOnly => ((-pos).max(0), pos.max(0)),
        Mode::Normal => {
            let cap = crate::risk::position_cap(&inst.cfg, fv);
            let (fb, fs) = crate::risk::firm_room(inst, fv, pos);
            ((cap - pos).min(fb), (cap + pos).min(fs))
        }
    };
    let (can_buy, can_sell) = crate::risk::balance_room(inst, fv);
    let open = inst.orders.open_qty(side);
    match side {
        Side::Bid => buy.min(can_buy),
        Side::Ask => sell.min(can_sell),
    }
    .saturating_sub(open)
    .max(0)
}

/// A hedge instrument able to take the delta: its top of book, fair value, and the lots.
#[derive(Debug, Clone, Copy)]
struct Route {
    id: InstrumentId,
    top: TopOfBook,
    fv: Fx,
    qty: i64,
    /// The band in its lots.
    band_lots: i64,
}

/// The hedge instrument for `delta` on `side`: the one already working a hedge order, else the
/// cheapest (maker fee when passive, taker fee plus half the spread when active, in bps; ties
/// to the first listed) that has a book, is not halted, and can take at least its minimum.
/// `held`, the passive order working (on its instrument, it is the only candidate): its
/// remaining size counts as room, since it is the hedge's own.
fn route(
    g: &HedgeGroup,
    insts: &[Inst],
    side: Side,
    delta: i128,
    active: bool,
    held: Option<(InstrumentId, crate::Order)>,
) -> Option<Route> {
    let mut best: Option<(Fx, Route)> = None;
    for &id in &g.hedges {
        if held.is_some_and(|(p, _)| p != id) {
            continue;
        }
        let own = held
            .filter(|(_, o)| o.side == side)
            .map_or(0, |(_, o)| o.remaining());
        let i = &insts[id as usize];
        let (Some(top), Some(fv)) = (i.top.top_of_book(&i.book), i.fair_value) else {
            continue;
        };
        // A fair value under one tick prices nothing (and is divided by below).
        if i.mode == Mode::Halted || !i.book.is_valid() || fv < 1 {
            continue;
        }
        let inst = &i.cfg.instrument;
        let want = lots_for_delta(inst, delta.abs(), Some(fv), true).unwrap_or(0);
        let qty = want.min(room(i, side, fv).saturating_add(own));
        let px = match side {
            Side::Bid => top.ask_price,
            Side::Ask => top.bid_price,
        };
        if qty < inst.min_qty_lots.max(1) || !inst.meets_min_notional(px, qty) {
            continue;
        }
        let cost = if active {
            let half_spread = Fx::from_num(top.ask_price - top.bid_price) / 2;
            i.cfg.taker_fee_bps + half_spread / fv * Fx::from_num(10_000)
        } else {
            i.cfg.maker_fee_bps
        };
        let r = Route {
            id,
            top,
            fv,
            qty,
            band_lots: lots_for_delta(inst, g.band, Some(fv), false).unwrap_or(0),
        };
        if best.is_none_or(|(c, _)| cost < c) {
            best = Some((cost, r));
        }
    }
    best.map(|(_, r)| r)
}

/// Where the engine's hedging acts: the instruments, budgets and outputs it shares with quoting.
pub(crate) struct Ctx<'a, S: Sink> {
    pub(crate) insts: &'a mut [Inst],
    pub(crate) budgets: &'a mut [OrderBudget; 3],
    pub(crate) emitter: &'a mut Emitter,
    pub(crate) stats: &'a mut EngineStats,
    pub(crate) sink: &'a mut S,
    pub(crate) now: i64,
}

impl<S: Sink> Ctx<'_, S> {
    /// Cancels a tracked order; `forced` ones skip the instrument's cancel budget. Whether the
    /// cancel went out.
    fn cancel(&mut self, (id, cid): (InstrumentId, u64), forced: bool) -> bool {
        let inst = &mut self.insts[id as usize];
        let Some(side) = inst.orders.get(cid).map(|o| o.side) else {
            return false;
        };
        if !forced && !inst.cancel_budget.try_take(self.now) {
            self.stats.cancels_deferred += 1;
            return false;
        }
        if !inst.orders.cancel_sent(cid) {
            return false;
        }
        self.emitter
            .cancel(id, side, cid, forced, self.now, self.stats, self.sink);
        true
    }

    /// Places a hedge order within the group's and the venue's budgets.
    fn place(
        &mut self,
        st: &mut GroupState,
        id: InstrumentId,
        side: Side,
        tif: TimeInForce,
        price: i64,
        qty: i64,
    ) -> Option<u64> {
        let inst = &mut self.insts[id as usize];
        let budget = &mut self.budgets[inst.cfg.venue.index()];
        if !st.rate.available(self.now) || !budget.available(self.now) {
            st.stats.rate_limited += 1;
            return None;
        }
        let cid = inst.orders.place(side, price, qty, tif)?;
        st.rate.try_take(self.now);
        budget.take(self.now);
        self.emitter.place(
            id, side, tif, cid, price, qty, self.now, self.stats, self.sink,
        );
        Some(cid)
    }
}

/// `x` bps of `fv`, ticks (rounded down).
#[inline]
fn bps_ticks(fv: Fx, bps: Fx) -> i64 {
    crate::pricer::bps_of(fv.saturating_mul(bps))
        .floor()
        .saturating_to_num::<i64>()
}

/// The worst-case cost of an IOC for `qty` lots at `limit` on `inst`, quote currency: its
/// notional times (the limit's distance from fair value + the taker fee) in bps.
fn worst_cost(inst: &Inst, fv: Fx, limit: i64, qty: i64) -> Fx {
    let i = &inst.cfg.instrument;
    let notional = i.notional_unit().to_fx(i.notional(limit, qty));
    let away = (Fx::from_num(limit) - fv).abs() / fv;
    notional.saturating_mul(away + crate::pricer::bps_of(inst.cfg.taker_fee_bps.max(Fx::ZERO)))
}

/// After the requotes: the group's hedge orders (see the module's documentation).
pub(crate) fn plan<S: Sink>(g: &HedgeGroup, st: &mut GroupState, cx: &mut Ctx<'_, S>) {
    let now = cx.now;
    if now.div_euclid(NS_PER_DAY) != st.day {
        st.day = now.div_euclid(NS_PER_DAY);
        st.cost_today = Fx::ZERO;
    }
    if !open(cx.insts, st.active) {
        st.active = None;
    }
    if !open(cx.insts, st.passive) {
        st.passive = None;
    }
    // An IOC in flight finishes first: the delta it takes is not yet known.
    if st.active.is_some() {
        return;
    }
    let Some(delta) = st.delta else {
        return;
    };
    let side = if delta > 0 { Side::Ask } else { Side::Bid };
    let active_due = st.breach_since.map(|since| {
        if delta.abs() >= g.hard_limit {
            Some(true)
        } else if now.saturating_sub(since) >= g.max_age_ns {
            Some(false)
        } else {
            None
        }
    });
    let passive = st
        .passive
        .and_then(|(id, cid)| cx.insts[id as usize].orders.get(cid).map(|o| (id, *o)));
    match active_due {
        // Past the age or hard limit: the passive order goes first, then one IOC.
        Some(Some(hard)) => {
            if let Some((id, o)) = passive {
                if cx.cancel((id, o.client_order_id), true) {
                    st.stats.cancelled_for_active += 1;
                }
                return;
            }
            let Some(r) = route(g, cx.insts, side, delta, true, None) else {
                st.note_unrouted();
                return;
            };
            let slip = bps_ticks(r.fv, g.slippage_bps);
            let fv_ticks = r.fv.floor().saturating_to_num::<i64>();
            let (limit, reaches) = match side {
                Side::Bid => {
                    let l = fv_ticks.saturating_add(slip);
                    (l, r.top.ask_price <= l)
                }
                Side::Ask => {
                    let l = r.fv.ceil().saturating_to_num::<i64>().saturating_sub(slip);
                    (l, r.top.bid_price >= l)
                }
            };
            if !reaches {
                st.stats.beyond_price_limit += 1;
                return;
            }
            let cost = worst_cost(&cx.insts[r.id as usize], r.fv, limit, r.qty);
            if st.cost_today.saturating_add(cost) > g.cost_cap {
                if !st.capped {
                    st.capped = true;
                    st.stats.cost_capped += 1;
                }
                return;
            }
            if let Some(cid) = cx.place(st, r.id, side, TimeInForce::Ioc, limit, r.qty) {
                st.active = Some((r.id, cid));
                st.cost_today = st.cost_today.saturating_add(cost);
                st.cost_total = st.cost_total.saturating_add(cost);
                if hard {
                    st.stats.active_hard += 1;
                } else {
                    st.stats.active_age += 1;
                }
            }
        }
        // Outside the band: one passive order at the touch for the whole delta.
        Some(None) => {
            let Some(r) = route(g, cx.insts, side, delta, false, passive) else {
                if let Some((id, o)) = passive {
                    // Its instrument can no longer take the hedge (halted, no room).
                    if cx.cancel((id, o.client_order_id), true) {
                        st.stats.reprices += 1;
                    }
                } else {
                    st.note_unrouted();
                }
                return;
            };
            let touch = match side {
                Side::Bid => r.top.bid_price,
                Side::Ask => r.top.ask_price,
            };
            if let Some((id, o)) = passive {
                let behind = match side {
                    Side::Bid => touch - o.price,
                    Side::Ask => o.price - touch,
                };
                let keep = o.side == side
                    && (r.qty - o.remaining()).abs() <= r.band_lots
                    && (0..=bps_ticks(r.fv, g.reprice_bps)).contains(&behind);
                if !keep
                    && o.state != crate::OrderState::PendingCancel
                    && cx.cancel((id, o.client_order_id), false)
                {
                    st.stats.reprices += 1;
                }
                return;
            }
            if let Some(cid) = cx.place(st, r.id, side, TimeInForce::PostOnly, touch, r.qty) {
                st.passive = Some((r.id, cid));
                st.stats.passive += 1;
            }
        }
        // Inside the band: a passive order may finish if it does not overshoot past the band.
        None => {
            let Some((id, o)) = passive else {
                return;
            };
            if o.state == crate::OrderState::PendingCancel {
                return;
            }
            let i = &cx.insts[id as usize];
            let band_lots =
                lots_for_delta(&i.cfg.instrument, g.band, i.fair_value, false).unwrap_or(0);
            let need =
                lots_for_delta(&i.cfg.instrument, delta.abs(), i.fair_value, true).unwrap_or(0);
            let reduces = delta != 0 && o.side == side;
            if (!reduces || o.remaining() > need.saturating_add(band_lots))
                && cx.cancel((id, o.client_order_id), false)
            {
                st.stats.reprices += 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "hedge_tests.rs"]
mod tests;
