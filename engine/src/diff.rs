//! Diff: desired ladders against working orders, turned into cancels and places.
//!
//! One merge pass per side keeps every working order within `tolerance` of a desired layer of
//! the same size (its queue priority is worth more than a tick), cancels the rest within the
//! cancel budget, then places the uncovered layers within the venue order budget and the
//! exposure limit. Every intent goes out through the [`Emitter`].

use crate::config::{Fx, OffsetUnit, MAX_LAYERS};
use crate::emit::Emitter;
use crate::engine::Inst;
use crate::event::Side;
use crate::intent::{Mode, Sink, TimeInForce};
use crate::limits::OrderBudget;
use crate::orders::{OrderState, ORDER_SLOTS};
use crate::pricer::Ladder;
use crate::stats::EngineStats;

/// Working orders of one side gathered for the diff: (price, cid, qty), sorted nearest first.
struct Working {
    items: [(i64, u64, i64); ORDER_SLOTS],
    len: usize,
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

/// `growth × n` ticks, floored to whole ticks and saturated to `i64`: the fixed-point product
/// `growth.saturating_mul_int(n).floor()`. When the magnitudes' leading zeros show that the
/// bits' product fits in 127 bits (always, for the sizes a config has), a plain multiply and
/// shift give the same bits without the checked 128-bit multiply's library call.
#[inline]
fn growth_ticks(growth: Fx, n: i64) -> i64 {
    let bits = growth.to_bits();
    if bits.unsigned_abs().leading_zeros() + (n.unsigned_abs() as u128).leading_zeros() >= 129 {
        ((bits * i128::from(n)) >> Fx::FRAC_NBITS) as i64
    } else {
        growth
            .saturating_mul_int(i128::from(n))
            .floor()
            .saturating_to_num::<i64>()
    }
}

/// The saturating sum of the working orders' sizes. Sizes are never negative in practice, and
/// then the saturating sum is the exact sum capped at `i64::MAX`: summed in `i128` without
/// the serial chain of saturating adds (a negative size takes the saturating fold, in order).
fn open_total(items: &[(i64, u64, i64)]) -> i64 {
    let (sum, negative) = items.iter().fold((0i128, false), |(s, n), w| {
        (s + i128::from(w.2), n | (w.2 < 0))
    });
    if negative {
        items.iter().fold(0i64, |a, w| a.saturating_add(w.2))
    } else {
        sum.min(i128::from(i64::MAX)) as i64
    }
}

/// What the diff depends on besides the ladders, when it finds nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuietKey {
    /// Fair value's whole ticks (distances and the tolerance's growth are taken from it).
    fv: Option<i64>,
    /// The tolerance, ticks.
    tol: i64,
    mode: Mode,
    pos: i64,
    /// What a spot account can still trade.
    room: (i64, i64),
    /// [`crate::orders::OrderTable::version`]: the working orders, their states and sizes.
    orders: u64,
}

/// The last diff of an instrument that had nothing to do: every desired layer covered by a
/// kept order, nothing to cancel. Such a diff changes nothing (no intent, no counter, no
/// budget, no order), and the diff is a function of the ladders and the key, so a diff with
/// the same ladders and key would again do nothing: it is skipped. Most requotes are that
/// case (fair value moves on nearly every depth message; its whole-tick ladders mostly do not).
#[derive(Debug, Clone)]
pub(crate) struct QuietDiff {
    valid: bool,
    key: QuietKey,
    bids: Ladder,
    asks: Ladder,
}

impl QuietDiff {
    /// Nothing remembered.
    pub(crate) fn new() -> QuietDiff {
        QuietDiff {
            valid: false,
            key: QuietKey {
                fv: None,
                tol: 0,
                mode: Mode::Halted,
                pos: 0,
                room: (0, 0),
                orders: 0,
            },
            bids: Ladder::default(),
            asks: Ladder::default(),
        }
    }

    /// Forgets it (the instrument's config changed).
    pub(crate) fn forget(&mut self) {
        self.valid = false;
    }

    /// Whether a quiet diff is remembered.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> bool {
        self.valid
    }

    #[inline]
    fn holds(&self, key: &QuietKey, bids: &Ladder, asks: &Ladder) -> bool {
        self.valid
            && self.key == *key
            && self.bids.as_slice() == bids.as_slice()
            && self.asks.as_slice() == asks.as_slice()
    }
}

/// A working order to cancel, with its priority.
#[derive(Debug, Clone, Copy)]
struct Cancel {
    /// 0: forced (reduce-only on the growing side); 1: at risk; 2: the rest.
    class: u8,
    /// The order within its class: ticks from fair value (negated for the orders at risk, so
    /// the deepest through the market goes first).
    distance: i64,
    side: Side,
    cid: u64,
    forced: bool,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            class: 0,
            distance: 0,
            side: Side::Bid,
            cid: 0,
            forced: false,
        }
    }
}

/// The cancels of one requote (both sides: at most every slot).
struct Cancels {
    items: [Cancel; 2 * ORDER_SLOTS],
    len: usize,
}

/// The diff's working space (about 22 KB), allocated once with the engine and reused by every
/// requote: only the lengths are reset, so a requote neither zeroes nor copies the arrays.
pub(crate) struct Scratch {
    working: Working,
    cancels: Cancels,
}

impl Scratch {
    /// Empty buffers, on the heap.
    pub(crate) fn boxed() -> Box<Scratch> {
        Box::new(Scratch {
            working: Working {
                items: [(0, 0, 0); ORDER_SLOTS],
                len: 0,
            },
            cancels: Cancels {
                items: [Cancel::default(); 2 * ORDER_SLOTS],
                len: 0,
            },
        })
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("working", &self.working.len)
            .field("cancels", &self.cancels.len)
            .finish()
    }
}

impl Cancels {
    #[inline]
    fn push(&mut self, c: Cancel) {
        if self.len < self.items.len() {
            self.items[self.len] = c;
            self.len += 1;
        }
    }
}

/// One merge pass per side, then cancels (nearest the touch first), then places
/// (alternating sides, nearest the touch first), each within its budget and the exposure
/// limit.
// `j` walks both sides' ladders and coverage flags in step.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub(crate) fn diff(
    inst: &mut Inst,
    mode: Mode,
    now: i64,
    budget: &mut OrderBudget,
    emitter: &mut Emitter,
    stats: &mut EngineStats,
    sink: &mut impl Sink,
    scratch: &mut Scratch,
) {
    let tol = match inst.cfg.offset_unit {
        OffsetUnit::Ticks => inst.cfg.tolerance,
        OffsetUnit::Bps => inst.fair_value.map_or(Fx::ZERO, |fv| {
            // `/ 10_000` on the bits, without a 128-bit division.
            crate::pricer::bps_of(fv.saturating_mul(inst.cfg.tolerance))
        }),
    }
    .floor()
    .to_num::<i64>();
    // A layer `d` ticks farther from fair value than its side's layer 0 keeps an order within
    // `tol + growth · d` of it: layer 0 keeps the plain tolerance, the far layers a wider one.
    let fv = inst.fair_value.map(|f| f.saturating_to_num::<i64>());
    let growth = inst.cfg.tolerance_growth;
    let tol_at = |price: i64, d0: i64| -> i64 {
        let d = fv.map_or(0, |fv| price.saturating_sub(fv).saturating_abs());
        tol.saturating_add(growth_ticks(growth, d.saturating_sub(d0).max(0)))
    };
    // What the open orders may add up to on each side: on spot, what the account can still
    // trade; under `[firm]`, the firm's room (both unbounded otherwise). A hard bound on every
    // place, as the batch cap is: orders kept from before never make room for more.
    let room = match inst.fair_value {
        Some(fv) => {
            let (buy, sell) = crate::risk::balance_room(inst, fv);
            let (firm_buy, firm_sell) = crate::risk::firm_room(inst, fv, inst.pos.qty);
            (buy.min(firm_buy), sell.min(firm_sell))
        }
        None => (i64::MAX, i64::MAX),
    };
    // In a hedge group: what the group's hard limit leaves ([`crate::hedge::prepare`]).
    let room = (room.0.min(inst.hedge_room.0), room.1.min(inst.hedge_room.1));
    let key = QuietKey {
        fv,
        tol,
        mode,
        pos: inst.pos.qty,
        room,
        orders: inst.orders.version(),
    };
    if inst.quiet.holds(&key, &inst.bids, &inst.asks) {
        return;
    }
    // Per side: which desired layers are already covered by a kept order.
    let mut covered = [[false; MAX_LAYERS]; 2];
    let Scratch { working, cancels } = scratch;
    // Orders not wanted any more, both sides, spent on in priority order below.
    cancels.len = 0;
    for side in [Side::Bid, Side::Ask] {
        gather(inst, side, working);
        let desired = match side {
            Side::Bid => inst.bids.as_slice(),
            Side::Ask => inst.asks.as_slice(),
        };
        let closer = |a: i64, b: i64| match side {
            Side::Bid => a > b,
            Side::Ask => a < b,
        };
        // In reduce-only, orders on the side that grows the position must go whatever the
        // budget says; so must the orders of a side that holds more than its hedge group's hard
        // limit leaves (the group's delta moved under them: a hedge filled).
        let hedge_room = match side {
            Side::Bid => inst.hedge_room.0,
            Side::Ask => inst.hedge_room.1,
        };
        let forced = (mode == Mode::ReduceOnly
            && match side {
                Side::Bid => inst.pos.qty >= 0,
                Side::Ask => inst.pos.qty <= 0,
            })
            || open_total(&working.items[..working.len]) > hedge_room;
        let best_wanted = desired.first().map(|d| d.price);
        let d0 = match (best_wanted, fv) {
            (Some(b), Some(fv)) => b.saturating_sub(fv).saturating_abs(),
            _ => 0,
        };
        // Orders farther out than the deepest layer may be kept as a reserve (see below).
        let keep_beyond = if mode == Mode::Normal && !desired.is_empty() {
            inst.cfg.keep_beyond
        } else {
            0
        };
        let mut beyond = 0usize;
        let mut reserve_start = 0usize;
        let mut going = 0i64;
        let (mut i, mut j) = (0, 0);
        while i < working.len {
            let (wp, cid, wq) = working.items[i];
            if j < desired.len() {
                let d = desired[j];
                if (wp - d.price).abs() <= tol_at(d.price, d0) && wq == d.qty {
                    covered[side as usize][j] = true;
                    i += 1;
                    j += 1;
                    continue;
                }
                if !closer(wp, d.price) {
                    j += 1;
                    continue;
                }
            } else if beyond < keep_beyond {
                // Past the deepest layer: kept (for now) as a reserve.
                if beyond == 0 {
                    reserve_start = i;
                }
                beyond += 1;
                i += 1;
                continue;
            }
            // No desired layer for this order: a cancel. At risk: nearer the market than the
            // strategy's best price on this side (the market moved through it), or on a side it
            // no longer quotes.
            let at_risk = best_wanted.is_none_or(|b| closer(wp, b));
            let class = if forced {
                0
            } else if at_risk {
                1
            } else {
                2
            };
            // At risk: the one deepest through the market first; the rest nearest first.
            let from_fv = fv.map_or(0, |fv| wp.saturating_sub(fv).saturating_abs());
            let distance = if class == 1 { -from_fv } else { from_fv };
            cancels.push(Cancel {
                class,
                distance,
                side,
                cid,
                forced,
            });
            going = going.saturating_add(wq);
            i += 1;
        }
        if beyond > 0 {
            // The reserve must not stand in the way of the quotes that matter: if the uncovered
            // layers of the nearer half of the ladder would not fit in the exposure left
            // (`batch_cap`, and on spot the balances) once the other cancels are done, the
            // farthest reserve orders go. A deeper layer waits: swapping one far order for
            // another would spend a cancel for nothing.
            let (cap_room, funded_room) = match side {
                Side::Bid => (inst.cfg.batch_cap.saturating_sub(inst.pos.qty), room.0),
                Side::Ask => (inst.cfg.batch_cap.saturating_add(inst.pos.qty), room.1),
            };
            let near = desired.len().div_ceil(2);
            let needed: i64 = desired[..near]
                .iter()
                .zip(covered[side as usize].iter())
                .filter(|(_, &c)| !c)
                .map(|(l, _)| l.qty)
                .sum();
            // What stays open once the cancels already in flight and these are done.
            let staying: i64 = open_total(&working.items[..working.len]).saturating_sub(going);
            let mut excess = staying
                .saturating_add(needed)
                .saturating_sub(cap_room.min(funded_room));
            let mut k = reserve_start + beyond;
            while excess > 0 && k > reserve_start {
                k -= 1;
                let (wp, cid, wq) = working.items[k];
                cancels.push(Cancel {
                    class: 2,
                    distance: fv.map_or(0, |fv| wp.saturating_sub(fv).saturating_abs()),
                    side,
                    cid,
                    forced,
                });
                excess = excess.saturating_sub(wq);
            }
        }
    }
    // Forced first, then the orders at risk (deepest through the market first), then the rest
    // nearest fair value first (far layers matter least): the cancel budget goes where a stale
    // quote costs the most.
    let pending = &mut cancels.items[..cancels.len];
    pending.sort_unstable_by_key(|c| (c.class, c.distance, c.side, c.cid));
    for c in pending.iter() {
        if c.forced || inst.cancel_budget.try_take(now) {
            if inst.orders.cancel_sent(c.cid) {
                emitter.cancel(inst.id, c.side, c.cid, c.forced, now, stats, sink);
            }
        } else {
            stats.cancels_deferred += 1;
        }
    }
    // Places, alternating sides from the touch outwards.
    let (nb, na) = (inst.bids.as_slice().len(), inst.asks.as_slice().len());
    let quiet = cancels.len == 0 && covered[0][..nb].iter().chain(&covered[1][..na]).all(|&c| c);
    inst.quiet.valid = quiet;
    if quiet {
        inst.quiet.key = key;
        inst.quiet.bids.copy_from(&inst.bids);
        inst.quiet.asks.copy_from(&inst.asks);
        return;
    }
    let cap = inst.cfg.batch_cap;
    let pos = inst.pos.qty;
    let (can_buy, can_sell) = room;
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
            // Spot: every open order locks its balance, as on the venue: the sells open, this
            // one included, within the base held; the buys within what the quote pays for.
            // Under `[firm]`: every open order on the side within the firm's room.
            let funded = match side {
                Side::Bid => open_buy + l.qty <= can_buy,
                Side::Ask => open_sell + l.qty <= can_sell,
            };
            if !ok || !funded {
                stats.places_risk_refused += 1;
                continue;
            }
            if !budget.available(now) {
                stats.places_rate_limited += 1;
                continue;
            }
            let Some(cid) = inst
                .orders
                .place(side, l.price, l.qty, TimeInForce::PostOnly)
            else {
                continue;
            };
            budget.take(now);
            match side {
                Side::Bid => open_buy += l.qty,
                Side::Ask => open_sell += l.qty,
            }
            emitter.place(
                inst.id,
                side,
                TimeInForce::PostOnly,
                cid,
                l.price,
                l.qty,
                now,
                stats,
                sink,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_total_is_the_saturating_fold() {
        let fold = |v: &[(i64, u64, i64)]| v.iter().fold(0i64, |a, w| a.saturating_add(w.2));
        let cases: [&[i64]; 6] = [
            &[],
            &[2, 2, 2],
            &[i64::MAX, 1, 5],
            &[i64::MAX / 2, i64::MAX / 2, 3],
            &[i64::MAX, -1, 1],
            &[-5, i64::MIN, 7, i64::MAX],
        ];
        for c in cases {
            let v: Vec<(i64, u64, i64)> = c.iter().map(|&q| (0, 0, q)).collect();
            assert_eq!(open_total(&v), fold(&v), "{c:?}");
        }
    }

    #[test]
    fn growth_times_whole_ticks_is_the_fixed_point_product() {
        let growths = [0.0, 1.0, 0.5, 1.3, -2.0, 1e9, 9e18].map(Fx::from_num);
        for g in growths.into_iter().chain([Fx::MAX, Fx::MIN, Fx::DELTA]) {
            for n in [0i64, 1, 7, 1_000_000, i64::MAX] {
                assert_eq!(
                    g.saturating_mul_int(i128::from(n)),
                    g.saturating_mul(Fx::saturating_from_num(n)),
                    "{g} x {n}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn growth_ticks_is_the_floored_saturated_product(
            bits in proptest::prop_oneof![
                proptest::num::i128::ANY,
                -(1i128 << 80)..(1i128 << 80),
                -(1i128 << 66)..(1i128 << 66),
            ],
            n in proptest::prop_oneof![proptest::num::i64::ANY, -(1i64 << 40)..(1i64 << 40), 0i64..1000],
        ) {
            let g = Fx::from_bits(bits);
            let want = g.saturating_mul_int(i128::from(n)).floor().saturating_to_num::<i64>();
            proptest::prop_assert_eq!(growth_ticks(g, n), want);
        }
    }
}
