//! Reconciliation: the venue's view of orders and the position, checked against ours.
//!
//! The gateway publishes [`EventKind::ReconcileOrder`](crate::EventKind) and
//! [`EventKind::ReconcilePosition`](crate::EventKind) events at start and after every reconnect
//! (from the venue's open-orders, order-status and position queries); they are journaled and
//! replayed like every other input. The venue is the truth about what happened; the engine is
//! the truth about what it wants. Rules:
//!
//! - **Missed fill** — an order of ours whose venue cumulative quantity is ahead of ours: the
//!   missing quantity is applied to the order and to the position at the order's limit price
//!   (a maker fill, no fee: the fee is unknown here), counted in `reconcile_missed_fills`.
//! - **Gone at the venue** — an order we hold open (pending-new, live, pending-cancel) that the
//!   venue says is not open: marked done, counted in `reconcile_closed`.
//! - **Orphan** — an order open at the venue that we do not hold open, whose client order id is
//!   one of this instrument's (`instrument << 48 | ...`, e.g. from before a restart or a slot
//!   reused): a forced cancel is sent for it, counted in `reconcile_orphans_cancelled`; with
//!   `[engine] adopt_unknown_orders = true` one we do not hold at all (its slot free) is taken
//!   over instead as a working order (`reconcile_adopted`: its exposure counts, and the next
//!   requote keeps or cancels it like any other). Either way its id is never issued again.
//! - **Foreign order** — an open venue order whose id is not this engine's (placed by a person
//!   or another system on the same account): nothing is sent for it (it is not ours to cancel),
//!   it is counted in `reconcile_foreign_orders`, and the instrument goes **reduce-only**
//!   (`ModeReason::ForeignOrder`) until the operator's `Normal`: its exposure is unknown to the
//!   risk checks, so the engine stops adding to the position, but keeps quoting the side that
//!   reduces it (halting would also stop unwinding).
//! - **Position** — a venue position quantity different from ours: ours is corrected to the
//!   venue's (quantity and average entry price), realized PnL and fees untouched, and the change
//!   is recorded on the position ([`Position::corrections`](crate::Position),
//!   `correction_qty`, `correction_cost`) so PnL attribution can tell it from trading; counted in
//!   `reconcile_position_corrections`. The same quantity is left alone (the venue's entry price
//!   is rounded, ours is exact).
//!
//! Every rule marks the instrument for a requote; none allocates.

use crate::emit::Emitter;
use crate::engine::Inst;
use crate::event::{VenueOrder, VenuePosition};
use crate::intent::Sink;
use crate::orders::Reconciled;
use crate::stats::EngineStats;

/// Applies the venue's view of one order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn venue_order(
    inst: &mut Inst,
    v: &VenueOrder,
    adopt: bool,
    now: i64,
    emitter: &mut Emitter,
    stats: &mut EngineStats,
    sink: &mut impl Sink,
) {
    inst.dirty = true;
    match inst.orders.reconcile(v) {
        Reconciled::Known {
            missed_fill,
            closed,
            open_at_venue_only,
        } => {
            if let Some((side, price, qty)) = missed_fill {
                inst.pos
                    .on_fill(&inst.cfg.instrument, side, price, qty, 0, false);
                if inst.pos.qty == 0 {
                    inst.stop_loss_latched = false;
                }
                stats.reconcile_missed_fills += 1;
            }
            if closed {
                stats.reconcile_closed += 1;
            }
            if open_at_venue_only {
                cancel_orphan(inst, v, now, emitter, stats, sink);
            }
            inst.forget_flatten_if_done(v.client_order_id);
        }
        Reconciled::Unknown if v.open => {
            if v.client_order_id >> 48 == u64::from(inst.id) {
                // Its id is never issued again, whatever happens to it.
                inst.orders.reserve(v.client_order_id);
                if adopt && inst.orders.adopt(v) {
                    stats.reconcile_adopted += 1;
                } else {
                    cancel_orphan(inst, v, now, emitter, stats, sink);
                }
            } else {
                stats.reconcile_foreign_orders += 1;
                inst.foreign_order = true;
            }
        }
        // Finished and not ours to track: nothing at stake.
        Reconciled::Unknown => {}
    }
}

/// A forced cancel for an order open at the venue that we do not hold open.
fn cancel_orphan(
    inst: &Inst,
    v: &VenueOrder,
    now: i64,
    emitter: &mut Emitter,
    stats: &mut EngineStats,
    sink: &mut impl Sink,
) {
    stats.reconcile_orphans_cancelled += 1;
    emitter.cancel(inst.id, v.side, v.client_order_id, true, now, stats, sink);
}

/// Applies the venue's view of the position.
pub(crate) fn venue_position(inst: &mut Inst, v: &VenuePosition, stats: &mut EngineStats) {
    if v.qty == inst.pos.qty {
        return;
    }
    inst.pos
        .correct_to(&inst.cfg.instrument, v.qty, v.entry_price);
    if inst.pos.qty == 0 {
        inst.stop_loss_latched = false;
    }
    stats.reconcile_position_corrections += 1;
    inst.dirty = true;
}
