//! Risk: the mode in force, the clamp on the desired ladders, and the orders risk forces out
//! (cancel-all when halted, the stop-loss flatten).
//!
//! Modes by precedence: halts (kill switch, daily loss limit, circuit breaker, invalid or
//! one-sided book, stale book), then reduce-only (operator, foreign order seen by reconciliation,
//! stop loss, inventory), then normal.

use crate::config::{Fx, InstrumentConfig, OnStopLoss};
use crate::emit::Emitter;
use crate::engine::Inst;
use crate::event::{Side, TopOfBook};
use crate::instrument::InstrumentKind;
use crate::intent::{Mode, ModeReason, Sink, TimeInForce};
use crate::limits::OrderBudget;
use crate::pricer::{Ladder, Layer};
use crate::stats::EngineStats;

const NS_PER_DAY: i64 = 86_400_000_000_000;

/// The mode now in force, by precedence: halts, then reduce-only, then normal.
pub(crate) fn evaluate_mode(
    inst: &mut Inst,
    two_sided: bool,
    fv: Option<Fx>,
    now: i64,
) -> (Mode, ModeReason) {
    let cfg = &inst.cfg;
    let mut breaker = false;
    if let Some(fv) = fv {
        let pnl = inst.pos.total_pnl(&cfg.instrument, fv);
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
        let unreal = inst.pos.unrealized(&cfg.instrument, fv);
        let notional = Fx::from_num(inst.pos.cost.unsigned_abs().min(i64::MAX as u128) as i64);
        if inst.pos.qty != 0
            && Fx::from_num(unreal.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
                < -(cfg.stop_loss.saturating_mul(notional))
        {
            inst.stop_loss_latched = true;
        }
    }
    let stale = now.saturating_sub(inst.last_book_ns) > cfg.stale_after_ns;
    if inst.flatten_requested {
        return (Mode::Halted, ModeReason::Flatten);
    }
    if inst.operator_halt {
        return (Mode::Halted, ModeReason::KillSwitch);
    }
    if inst.loss_limit_hit {
        return (Mode::Halted, ModeReason::DailyLossLimit);
    }
    if inst.firm.is_some_and(|f| f.halt) {
        return (Mode::Halted, ModeReason::FirmLoss);
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
    if inst.clock_fault {
        return (Mode::Halted, ModeReason::ClockFault);
    }
    if inst.order_entry_down {
        return (Mode::Halted, ModeReason::OrderEntry);
    }
    if inst.operator_reduce_only {
        return (Mode::ReduceOnly, ModeReason::Operator);
    }
    if inst.foreign_order {
        return (Mode::ReduceOnly, ModeReason::ForeignOrder);
    }
    if inst.stop_loss_latched {
        return (Mode::ReduceOnly, ModeReason::StopLoss);
    }
    let net_max = fv.map_or(cfg.net_max, |fv| position_cap(cfg, fv));
    if ratio_at_least(
        inst.pos.qty.unsigned_abs(),
        net_max.max(1).unsigned_abs(),
        cfg.reduce_only_thresh,
    ) {
        return (Mode::ReduceOnly, ModeReason::Inventory);
    }
    (Mode::Normal, ModeReason::None)
}

/// Whether `Fx::from_num(num) / Fx::from_num(den) >= thresh` (`den ≥ 1`), without dividing: the
/// quotient's bits are ⌊num · 2⁶⁴ / den⌋, at least `thresh`'s bits `t > 0` exactly when
/// num · 2⁶⁴ ≥ t · den.
#[inline]
fn ratio_at_least(num: u64, den: u64, thresh: Fx) -> bool {
    let t = thresh.to_bits();
    if t <= 0 {
        return true;
    }
    match (t as u128).checked_mul(u128::from(den)) {
        Some(need) => u128::from(num) << 64 >= need,
        // t · den ≥ 2¹²⁸ > num · 2⁶⁴.
        None => false,
    }
}

/// The notional units of one lot at fair value `fv`: `fv` ticks (rounded up) × one lot for
/// linear and spot, the contract size for inverse.
#[inline]
fn notional_per_lot(cfg: &InstrumentConfig, fv: Fx) -> i64 {
    match cfg.instrument.kind {
        InstrumentKind::Inverse => cfg.instrument.contract_ticks,
        _ => fv.ceil().to_num::<i64>(),
    }
}

/// The position cap in lots at fair value `fv`: `net_max`, or less where `max_notional` binds
/// ([`notional_per_lot`]).
pub(crate) fn position_cap(cfg: &InstrumentConfig, fv: Fx) -> i64 {
    let Some(max) = cfg.max_notional else {
        return cfg.net_max;
    };
    let per_lot = i128::from(notional_per_lot(cfg, fv));
    if per_lot <= 0 {
        return cfg.net_max;
    }
    (max / per_lot).min(cfg.net_max as i128) as i64
}

/// The firm-wide room, lots: `(buy, sell)` the open orders may add to the position `pos` under
/// the bus's last [`crate::FirmLimit`], at fair value `fv` ([`notional_per_lot`]).
/// Closing a position is never blocked: a short may always be bought back to flat and a long
/// sold. Unbounded (`i64::MAX`) before any limit arrives.
pub(crate) fn firm_room(inst: &Inst, fv: Fx, pos: i64) -> (i64, i64) {
    let Some(f) = inst.firm else {
        return (i64::MAX, i64::MAX);
    };
    let per_lot = notional_per_lot(&inst.cfg, fv).max(1);
    let long = f.long_units.div_euclid(per_lot);
    let short = f.short_units.div_euclid(per_lot);
    (
        long.saturating_sub(pos).max(pos.saturating_neg()).max(0),
        short.saturating_add(pos).max(pos).max(0),
    )
}

/// What a spot account can still trade, lots: `(buy, sell)`. Sells are bounded by the base held
/// (unless margin is allowed), buys by the quote held at fair value `fv`. Unbounded (`i64::MAX`)
/// for derivatives.
pub(crate) fn balance_room(inst: &Inst, fv: Fx) -> (i64, i64) {
    let Some(b) = inst.cfg.balances else {
        return (i64::MAX, i64::MAX);
    };
    if b.allow_margin {
        return (i64::MAX, i64::MAX);
    }
    let base = (b.base_lots as i128 + inst.pos.base_change_lots() as i128).max(0);
    let quote = (b.quote_units + inst.pos.cash).max(0);
    let px = fv.ceil().to_num::<i128>().max(1);
    let buy = quote / px;
    (
        buy.min(i64::MAX as i128) as i64,
        base.min(i64::MAX as i128) as i64,
    )
}

/// Clamps both desired ladders to what `mode` allows: nothing when halted, only the reducing
/// side (trimmed to the position) in reduce-only, `batch_cap` of exposure per side otherwise;
/// every side within the position cap (`net_max`, `max_notional`), the firm-wide room
/// ([`firm_room`]) and, on spot, within the balances.
pub(crate) fn clamp(inst: &mut Inst, mode: Mode, fv: Option<Fx>) {
    let pos = inst.pos.qty;
    let cap = inst.cfg.batch_cap;
    let Some(fv) = fv else {
        return;
    };
    let limit = position_cap(&inst.cfg, fv);
    let (bid_room, ask_room, trim) = match mode {
        Mode::Halted => (0, 0, false),
        Mode::ReduceOnly => (
            if pos < 0 { -pos } else { 0 },
            if pos > 0 { pos } else { 0 },
            true,
        ),
        Mode::Normal => {
            let (firm_buy, firm_sell) = firm_room(inst, fv, pos);
            let (hedge_buy, hedge_sell) = inst.hedge_room;
            (
                (cap - pos)
                    .min(limit - pos)
                    .min(firm_buy)
                    .min(hedge_buy)
                    .max(0),
                (cap + pos)
                    .min(limit + pos)
                    .min(firm_sell)
                    .min(hedge_sell)
                    .max(0),
                false,
            )
        }
    };
    let (can_buy, can_sell) = balance_room(inst, fv);
    let (bid_room, ask_room) = (bid_room.min(can_buy), ask_room.min(can_sell));
    clamp_side(&inst.cfg, Side::Bid, fv, bid_room, trim, &mut inst.bids);
    clamp_side(&inst.cfg, Side::Ask, fv, ask_room, trim, &mut inst.asks);
}

/// Risk clamp on one side's desired ladder, in one pass over the prefix sums of layer sizes,
/// nearest the touch first:
/// - price band: a layer further than `max_deviation · fv` from fair value ends the ladder;
/// - minimum notional: a layer below it is dropped;
/// - `room` (lots): the largest prefix whose total fits is kept, the last layer trimmed to fit
///   when `trim_last` (reduce-only sizing) and it stays at or above `min_qty`.
pub(crate) fn clamp_side(
    cfg: &InstrumentConfig,
    side: Side,
    fv: Fx,
    room: i64,
    trim_last: bool,
    ladder: &mut Ladder,
) {
    let band = fv.saturating_mul(cfg.max_deviation);
    let inst = &cfg.instrument;
    let mut kept = 0usize;
    let mut total = 0i64;
    for k in 0..ladder.as_slice().len() {
        let l = ladder.as_slice()[k];
        let away = match side {
            Side::Bid => fv - Fx::from_num(l.price),
            Side::Ask => Fx::from_num(l.price) - fv,
        };
        if away > band {
            break;
        }
        let mut qty = l.qty;
        if total + qty > room {
            if !trim_last {
                break;
            }
            qty = room - total;
            if qty < inst.min_qty_lots.max(1) {
                break;
            }
        }
        if !inst.meets_min_notional(l.price, qty) {
            continue;
        }
        total += qty;
        ladder.set(
            kept,
            Layer {
                price: l.price,
                qty,
            },
        );
        kept += 1;
        if total >= room {
            break;
        }
    }
    ladder.truncate(kept);
}

/// Cancels every cancellable order (forced: exempt from the cancel budget).
pub(crate) fn cancel_all(
    inst: &mut Inst,
    now: i64,
    emitter: &mut Emitter,
    stats: &mut EngineStats,
    sink: &mut impl Sink,
) {
    let id = inst.id;
    // Orders taken over at reconciliation wait for order entry to come up (the requote then
    // decides), through the halts of a session not yet ready (order entry down, the book not yet
    // synced or stale, the clock); a kill switch, a loss limit or a circuit breaker cancels them
    // too.
    use crate::ModeReason as R;
    let keep_adopted = inst.order_entry_down
        && matches!(
            inst.reason,
            R::OrderEntry | R::BookInvalid | R::BookStale | R::ClockFault
        );
    // The operator's flatten order crosses the spread as IOC: the venue ends it at once.
    let keep = inst.flatten_cid.filter(|_| inst.flatten_requested);
    inst.orders.cancel_open(keep_adopted, keep, |o| {
        emitter.cancel(id, o.side, o.client_order_id, true, now, stats, sink);
    });
}

/// [`flatten`] when something asks for it: the operator's `Command::Flatten` (until `Resume`), or
/// a stop loss with `on_stop_loss = "flatten"`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn flatten_when_due(
    inst: &mut Inst,
    reason: ModeReason,
    top: Option<TopOfBook>,
    now: i64,
    budget: &mut OrderBudget,
    emitter: &mut Emitter,
    stats: &mut EngineStats,
    sink: &mut impl Sink,
) {
    let stop_loss = inst.cfg.on_stop_loss == OnStopLoss::Flatten && reason == ModeReason::StopLoss;
    if inst.flatten_requested || stop_loss {
        flatten(inst, top, now, budget, emitter, stats, sink);
    }
}

/// Sends one IOC order across the touch for the whole position (a spot instrument: what its
/// balances allow), unless one is already in flight, the position is flat, there is no top of
/// book or no venue order budget. Used by the stop loss's flatten and the operator's
/// `Command::Flatten` (retried at each requote until flat).
#[allow(clippy::too_many_arguments)]
fn flatten(
    inst: &mut Inst,
    top: Option<TopOfBook>,
    now: i64,
    budget: &mut OrderBudget,
    emitter: &mut Emitter,
    stats: &mut EngineStats,
    sink: &mut impl Sink,
) {
    let pos = inst.pos.qty;
    if inst.flatten_cid.is_some() || pos == 0 {
        return;
    }
    let Some(t) = top else {
        return;
    };
    // Cross the spread for the whole position; IOC so nothing rests.
    let (side, px) = if pos > 0 {
        (Side::Ask, t.bid_price)
    } else {
        (Side::Bid, t.ask_price)
    };
    if !budget.available(now) {
        return;
    }
    // Spot: never sell more than is held, nor buy more than the quote pays for.
    let (can_buy, can_sell) = balance_room(inst, Fx::from_num(px));
    let qty = pos
        .abs()
        .min(if side == Side::Ask { can_sell } else { can_buy });
    if qty <= 0 {
        return;
    }
    if let Some(cid) = inst.orders.place(side, px, qty, TimeInForce::Ioc) {
        budget.take(now);
        inst.flatten_cid = Some(cid);
        emitter.place(
            inst.id,
            side,
            TimeInForce::Ioc,
            cid,
            px,
            qty,
            now,
            stats,
            sink,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricer::build_ladders;
    use crate::pricer::tests::{cfg, touch};

    #[test]
    fn ratio_at_least_is_the_quotient_compared() {
        let threshs = [-1.0, 0.0, 1e-19, 0.5, 0.7, 0.999_999, 1.0, 1.5, 1e6, 4e18];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for k in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let num = (x >> (k % 64)) >> 1;
            let den = ((x.rotate_left(23) >> (k % 61)) >> 1).max(1);
            let q = Fx::from_num(num) / Fx::from_num(den);
            for t in threshs.map(Fx::from_num) {
                assert_eq!(ratio_at_least(num, den, t), q >= t, "{num} {den} {t}");
                let t1 = Fx::from_bits(q.to_bits() + 1);
                assert_eq!(ratio_at_least(num, den, t1), q >= t1, "{num} {den} {t1}");
                assert!(ratio_at_least(num, den, q));
            }
        }
    }

    #[test]
    fn clamp_keeps_the_largest_prefix_that_fits() {
        let c = cfg("");
        let t = touch(1000, 1001);
        let fv = Fx::from_num(1000.5);
        let (mut b, mut a) = (Ladder::default(), Ladder::default());
        build_ladders(
            &c,
            &t,
            fv,
            fv,
            5,
            5,
            &crate::adapt::Shape::NONE,
            &mut b,
            &mut a,
        );
        clamp_side(&c, Side::Bid, fv, 5, false, &mut b);
        assert_eq!(b.total_qty(), 4, "two layers of 2 fit in 5");
        clamp_side(&c, Side::Ask, fv, 5, true, &mut a);
        assert_eq!(
            a.as_slice().iter().map(|l| l.qty).collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }
}
