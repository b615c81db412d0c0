//! Order tracking for one instrument: a fixed table of slots, deterministic client order ids.
//!
//! A client order id is `instrument << 48 | slot << 40 | generation`, the generation counting
//! placements on this instrument. Looking one up is a shift and a compare; replaying the same
//! events yields the same ids. Finished orders stay in their slot (state `Done`) until the slot is
//! reused, so a late fill for a cancelled order can still be attributed and counted.

use crate::event::{ExecKind, ExecReport, InstrumentId, Side, VenueOrder};
use crate::intent::TimeInForce;

/// Slots per instrument.
pub const ORDER_SLOTS: usize = 256;
const GEN_BITS: u32 = 40;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

/// Life cycle of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Slot never used.
    Free,
    /// Sent, not yet acknowledged.
    PendingNew,
    /// Working at the venue.
    Live,
    /// A cancel is in flight; the order may still fill.
    PendingCancel,
    /// Filled, cancelled, rejected or expired.
    Done,
}

/// One order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// Client order id.
    pub client_order_id: u64,
    /// Side.
    pub side: Side,
    /// Limit price, ticks.
    pub price: i64,
    /// Original quantity, lots.
    pub qty: i64,
    /// Filled so far, lots.
    pub filled: i64,
    /// State.
    pub state: OrderState,
    /// Time in force.
    pub tif: TimeInForce,
    /// The venue's order id, once a report or a reconciliation carried one (0 until then).
    pub venue_order_id: u64,
    /// Taken over at reconciliation and not yet seen by a quoting engine: the halt that holds
    /// quoting until order entry is up leaves it working (the first requote after keeps or
    /// cancels it like any other).
    pub adopted: bool,
}

impl Order {
    /// Quantity that can still fill.
    #[inline]
    pub fn remaining(&self) -> i64 {
        (self.qty - self.filled).max(0)
    }

    /// Counts towards exposure: sent and not known to be finished.
    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            OrderState::PendingNew | OrderState::Live | OrderState::PendingCancel
        )
    }
}

const EMPTY: Order = Order {
    client_order_id: 0,
    side: Side::Bid,
    price: 0,
    qty: 0,
    filled: 0,
    state: OrderState::Free,
    tif: TimeInForce::PostOnly,
    venue_order_id: 0,
    adopted: false,
};

/// What an execution report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Applied; if it carried a fill, `(side, price, qty)` of the new fill.
    Applied(Option<(Side, i64, i64)>),
    /// The id is not one of ours (or its slot was reused).
    Unknown,
    /// Already seen (a repeated ack, a fill with no new quantity): ignored.
    Duplicate,
    /// A fill for an order already finished (e.g. the cancel ack overtook it): still counted.
    LateFill(Side, i64, i64),
}

/// What the venue's view of one order did to the table ([`OrderTable::reconcile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reconciled {
    /// Not an order in this table (another instrument's or a foreign id, or its slot reused).
    Unknown,
    /// One of ours.
    Known {
        /// The venue had filled more than we knew: `(side, order price, missing lots)`, now
        /// applied to the order.
        missed_fill: Option<(Side, i64, i64)>,
        /// We had it open, the venue says it is not: now done.
        closed: bool,
        /// The venue has it open but we hold it finished: it is working without us.
        open_at_venue_only: bool,
    },
}

/// Counters of report anomalies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderStats {
    /// Orders placed.
    pub placed: u64,
    /// Cancels sent.
    pub cancels_sent: u64,
    /// Orders acknowledged.
    pub acked: u64,
    /// Orders cancelled (confirmed).
    pub cancelled: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Post-only would-take rejects.
    pub post_only_rejects: u64,
    /// Orders expired.
    pub expired: u64,
    /// Cancels the venue refused.
    pub cancel_rejects: u64,
    /// Reports for unknown ids.
    pub unknown_reports: u64,
    /// Duplicate reports.
    pub duplicate_reports: u64,
    /// Fills that arrived after the order was finished.
    pub late_fills: u64,
    /// Fills whose `last_qty` disagreed with the cumulative quantity (the cumulative wins).
    pub inconsistent_fills: u64,
    /// Placements refused because every slot was open.
    pub table_full: u64,
    /// Orders open at the venue taken over at reconciliation (`adopt_unknown_orders`).
    pub adopted: u64,
}

/// The order table of one instrument.
///
/// Besides the slots it keeps a dense list of the open ones and the open quantity per side, so
/// the requote touches only live orders and exposure is O(1).
#[derive(Debug, Clone)]
pub struct OrderTable {
    instrument: InstrumentId,
    slots: Box<[Order; ORDER_SLOTS]>,
    /// Slots of open orders, dense in `open_list[..open_len]`, in no particular order.
    open_list: [u16; ORDER_SLOTS],
    /// Position of each open slot in `open_list`.
    open_pos: [u16; ORDER_SLOTS],
    open_len: usize,
    /// Remaining quantity of open orders, by side.
    open_qty: [i64; 2],
    /// Open orders of each side as (price, client order id), ascending, kept sorted as orders
    /// open and close (a memmove of a few dozen entries), so a requote never sorts.
    by_price: Box<[[(i64, u64); ORDER_SLOTS]; 2]>,
    by_price_len: [usize; 2],
    next_gen: u64,
    cursor: usize,
    stats: OrderStats,
    /// Bumped by every call that may change the table ([`OrderTable::version`]): each
    /// mutating method bumps it once, at its start (`cancel_all_open` through `cancel_open`).
    version: u64,
}

impl OrderTable {
    /// An empty table.
    pub fn new(instrument: InstrumentId) -> OrderTable {
        OrderTable {
            instrument,
            slots: Box::new([EMPTY; ORDER_SLOTS]),
            open_list: [0; ORDER_SLOTS],
            open_pos: [0; ORDER_SLOTS],
            open_len: 0,
            open_qty: [0; 2],
            by_price: Box::new([[(0, 0); ORDER_SLOTS]; 2]),
            by_price_len: [0; 2],
            next_gen: 1,
            cursor: 0,
            stats: OrderStats::default(),
            version: 0,
        }
    }

    /// Counters.
    pub fn stats(&self) -> OrderStats {
        self.stats
    }

    /// A number that changes whenever the table may have: every call that takes it mutably
    /// moves it on, whether or not it changed anything. Equal versions mean an equal table.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// All slots (open and finished).
    pub fn iter(&self) -> impl Iterator<Item = &Order> {
        self.slots.iter()
    }

    /// Open orders (pending-new, live, pending-cancel), in no particular order.
    #[inline]
    pub fn open(&self) -> impl Iterator<Item = &Order> {
        self.open_list[..self.open_len]
            .iter()
            .map(|&s| &self.slots[s as usize])
    }

    /// Sum of remaining quantity of open orders on `side` (exposure if everything fills).
    #[inline]
    pub fn open_qty(&self, side: Side) -> i64 {
        self.open_qty[side as usize]
    }

    /// Open orders on `side` as (price, client order id), in ascending price (then id) order.
    #[inline]
    pub fn open_by_price(&self, side: Side) -> &[(i64, u64)] {
        let k = side as usize;
        &self.by_price[k][..self.by_price_len[k]]
    }

    fn opened(&mut self, s: usize) {
        self.open_pos[s] = self.open_len as u16;
        self.open_list[self.open_len] = s as u16;
        self.open_len += 1;
        let o = self.slots[s];
        self.open_qty[o.side as usize] += o.remaining();
        let (k, key) = (o.side as usize, (o.price, o.client_order_id));
        let n = self.by_price_len[k];
        let at = self.by_price[k][..n].partition_point(|e| *e < key);
        self.by_price[k].copy_within(at..n, at + 1);
        self.by_price[k][at] = key;
        self.by_price_len[k] = n + 1;
    }

    /// The order in slot `s` just finished: drop it from the open list and the open quantity
    /// (its remaining quantity, after any fill that finished it).
    fn closed(&mut self, s: usize) {
        let p = self.open_pos[s] as usize;
        self.open_len -= 1;
        let last = self.open_list[self.open_len];
        self.open_list[p] = last;
        self.open_pos[last as usize] = p as u16;
        let o = self.slots[s];
        self.open_qty[o.side as usize] -= o.remaining();
        let (k, key) = (o.side as usize, (o.price, o.client_order_id));
        let n = self.by_price_len[k];
        let at = self.by_price[k][..n].partition_point(|e| *e < key);
        if at < n && self.by_price[k][at] == key {
            self.by_price[k].copy_within(at + 1..n, at);
            self.by_price_len[k] = n - 1;
        }
    }

    fn slot_of(&self, cid: u64) -> Option<usize> {
        if (cid >> 48) as InstrumentId != self.instrument {
            return None;
        }
        let slot = ((cid >> GEN_BITS) & 0xff) as usize;
        (self.slots[slot].client_order_id == cid && self.slots[slot].state != OrderState::Free)
            .then_some(slot)
    }

    /// The order with this id, if tracked.
    pub fn get(&self, cid: u64) -> Option<&Order> {
        self.slot_of(cid).map(|s| &self.slots[s])
    }

    /// Records a new order and returns its client order id, or `None` if every slot is open.
    pub fn place(&mut self, side: Side, price: i64, qty: i64, tif: TimeInForce) -> Option<u64> {
        self.version = self.version.wrapping_add(1);
        for k in 0..ORDER_SLOTS {
            let s = (self.cursor + k) % ORDER_SLOTS;
            if !self.slots[s].is_open() {
                let cid = (self.instrument as u64) << 48
                    | (s as u64) << GEN_BITS
                    | (self.next_gen & GEN_MASK);
                self.next_gen += 1;
                self.cursor = (s + 1) % ORDER_SLOTS;
                self.slots[s] = Order {
                    client_order_id: cid,
                    side,
                    price,
                    qty,
                    filled: 0,
                    state: OrderState::PendingNew,
                    tif,
                    venue_order_id: 0,
                    adopted: false,
                };
                self.opened(s);
                self.stats.placed += 1;
                return Some(cid);
            }
        }
        self.stats.table_full += 1;
        None
    }

    /// Marks a cancel as sent. Returns false if the order is not cancellable.
    pub fn cancel_sent(&mut self, cid: u64) -> bool {
        self.version = self.version.wrapping_add(1);
        match self.slot_of(cid) {
            Some(s)
                if matches!(
                    self.slots[s].state,
                    OrderState::PendingNew | OrderState::Live
                ) =>
            {
                self.slots[s].state = OrderState::PendingCancel;
                self.stats.cancels_sent += 1;
                true
            }
            _ => false,
        }
    }

    /// Marks every pending-new or live order as cancelling, calling `f` for each.
    pub fn cancel_all_open(&mut self, f: impl FnMut(&Order)) {
        self.cancel_open(false, None, f);
    }

    /// [`OrderTable::cancel_all_open`], leaving adopted orders working when `keep_adopted`, and
    /// the order `keep` (a flatten order in flight) alone.
    pub(crate) fn cancel_open(
        &mut self,
        keep_adopted: bool,
        keep: Option<u64>,
        mut f: impl FnMut(&Order),
    ) {
        self.version = self.version.wrapping_add(1);
        for k in 0..self.open_len {
            let o = &mut self.slots[self.open_list[k] as usize];
            if (keep_adopted && o.adopted) || keep == Some(o.client_order_id) {
                continue;
            }
            if matches!(o.state, OrderState::PendingNew | OrderState::Live) {
                o.state = OrderState::PendingCancel;
                self.stats.cancels_sent += 1;
                f(o);
            }
        }
        // Still open: a cancel in flight counts until confirmed.
    }

    /// Never issues `cid` (an id of this instrument the venue reported, e.g. an earlier run's):
    /// new ids' generations start past it.
    pub(crate) fn reserve(&mut self, cid: u64) {
        self.version = self.version.wrapping_add(1);
        if (cid >> 48) as InstrumentId == self.instrument {
            self.next_gen = self.next_gen.max((cid & GEN_MASK) + 1);
        }
    }

    /// Takes an order open at the venue that the table does not hold (an earlier run's, with an
    /// id of this instrument) as one of its own, working, with what the venue says of it.
    /// False (nothing changed) when its slot holds an open order, the id is another
    /// instrument's, or the venue's figures are not those of a working order.
    pub(crate) fn adopt(&mut self, v: &VenueOrder) -> bool {
        self.version = self.version.wrapping_add(1);
        let cid = v.client_order_id;
        if (cid >> 48) as InstrumentId != self.instrument
            || !v.open
            || v.qty <= 0
            || v.price <= 0
            || !(0..v.qty).contains(&v.cum_qty)
        {
            return false;
        }
        let s = ((cid >> GEN_BITS) & 0xff) as usize;
        if self.slots[s].is_open() {
            return false;
        }
        self.reserve(cid);
        self.slots[s] = Order {
            client_order_id: cid,
            side: v.side,
            price: v.price,
            qty: v.qty,
            filled: v.cum_qty,
            state: OrderState::Live,
            tif: TimeInForce::PostOnly,
            venue_order_id: v.venue_order_id,
            adopted: true,
        };
        self.opened(s);
        self.stats.adopted += 1;
        true
    }

    /// Quoting resumed: adopted orders are ordinary ones from here on.
    pub(crate) fn adopted_seen(&mut self) {
        self.version = self.version.wrapping_add(1);
        for k in 0..self.open_len {
            self.slots[self.open_list[k] as usize].adopted = false;
        }
    }

    /// Applies the venue's view of one order: records its venue id, applies fill quantity we
    /// missed (at the order's price), closes it if the venue no longer has it open, and treats an
    /// open order still pending-new as acknowledged.
    pub(crate) fn reconcile(&mut self, v: &VenueOrder) -> Reconciled {
        self.version = self.version.wrapping_add(1);
        let Some(s) = self.slot_of(v.client_order_id) else {
            return Reconciled::Unknown;
        };
        let o = &mut self.slots[s];
        if v.venue_order_id != 0 {
            o.venue_order_id = v.venue_order_id;
        }
        let was_open = o.is_open();
        let missing = v.cum_qty.min(o.qty) - o.filled;
        let mut missed_fill = None;
        if missing > 0 {
            o.filled += missing;
            missed_fill = Some((o.side, o.price, missing));
            if was_open {
                self.open_qty[o.side as usize] -= missing;
            }
        }
        let o = self.slots[s];
        let mut closed = false;
        if o.is_open() && (!v.open || o.filled >= o.qty) {
            self.slots[s].state = OrderState::Done;
            self.closed(s);
            closed = true;
        } else if v.open && o.state == OrderState::PendingNew {
            self.slots[s].state = OrderState::Live;
            self.stats.acked += 1;
        }
        Reconciled::Known {
            missed_fill,
            closed,
            open_at_venue_only: v.open && !self.slots[s].is_open(),
        }
    }

    /// Applies an execution report.
    pub fn on_report(&mut self, r: &ExecReport) -> ReportOutcome {
        self.version = self.version.wrapping_add(1);
        let Some(s) = self.slot_of(r.client_order_id) else {
            self.stats.unknown_reports += 1;
            return ReportOutcome::Unknown;
        };
        let o = &mut self.slots[s];
        if r.venue_order_id != 0 {
            o.venue_order_id = r.venue_order_id;
        }
        match r.kind {
            ExecKind::Ack => match o.state {
                OrderState::PendingNew => {
                    o.state = OrderState::Live;
                    self.stats.acked += 1;
                    ReportOutcome::Applied(None)
                }
                // The cancel went out before the ack: still cancelling.
                OrderState::PendingCancel if o.filled == 0 => {
                    self.stats.acked += 1;
                    ReportOutcome::Applied(None)
                }
                _ => {
                    self.stats.duplicate_reports += 1;
                    ReportOutcome::Duplicate
                }
            },
            ExecKind::PartialFill | ExecKind::Fill => {
                let new = r.cum_qty.min(o.qty) - o.filled;
                if new <= 0 {
                    self.stats.duplicate_reports += 1;
                    return ReportOutcome::Duplicate;
                }
                if new != r.last_qty {
                    self.stats.inconsistent_fills += 1;
                }
                let was_open = o.is_open();
                o.filled += new;
                let fill = (o.side, r.last_price, new);
                if !was_open {
                    self.stats.late_fills += 1;
                    return ReportOutcome::LateFill(fill.0, fill.1, fill.2);
                }
                self.open_qty[o.side as usize] -= new;
                if o.state == OrderState::PendingNew {
                    // A fill implies the ack.
                    self.stats.acked += 1;
                    o.state = OrderState::Live;
                }
                if r.kind == ExecKind::Fill || o.filled >= o.qty {
                    o.state = OrderState::Done;
                    self.closed(s);
                }
                ReportOutcome::Applied(Some(fill))
            }
            ExecKind::Canceled | ExecKind::Expired | ExecKind::Rejected => {
                if o.state == OrderState::Done {
                    self.stats.duplicate_reports += 1;
                    return ReportOutcome::Duplicate;
                }
                o.state = OrderState::Done;
                self.closed(s);
                match r.kind {
                    ExecKind::Canceled => self.stats.cancelled += 1,
                    ExecKind::Expired => self.stats.expired += 1,
                    _ => {
                        self.stats.rejected += 1;
                        if r.post_only_reject {
                            self.stats.post_only_rejects += 1;
                        }
                    }
                }
                ReportOutcome::Applied(None)
            }
            ExecKind::CancelRejected => {
                self.stats.cancel_rejects += 1;
                if o.state == OrderState::PendingCancel {
                    // The venue did not cancel it; if it is gone, its fill or cancel report
                    // follows. Until then treat it as working (it still counts as exposure).
                    o.state = OrderState::Live;
                }
                ReportOutcome::Applied(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(kind: ExecKind, cid: u64, px: i64, last: i64, cum: i64) -> ExecReport {
        ExecReport::new(kind, cid, px, last, cum)
    }

    #[test]
    fn ids_are_deterministic_and_decode_to_their_slot() {
        let mut a = OrderTable::new(3);
        let mut b = OrderTable::new(3);
        for _ in 0..600 {
            let x = a.place(Side::Bid, 1, 1, TimeInForce::PostOnly).unwrap();
            let y = b.place(Side::Bid, 1, 1, TimeInForce::PostOnly).unwrap();
            assert_eq!(x, y);
            assert_eq!(x >> 48, 3);
            assert!(a.get(x).is_some());
            a.on_report(&rep(ExecKind::Rejected, x, 0, 0, 0));
            b.on_report(&rep(ExecKind::Rejected, y, 0, 0, 0));
        }
    }

    #[test]
    fn life_cycle_with_partial_fills_duplicates_and_a_late_fill() {
        let mut t = OrderTable::new(0);
        let id = t.place(Side::Ask, 100, 10, TimeInForce::PostOnly).unwrap();
        assert_eq!(t.open_qty(Side::Ask), 10);
        assert_eq!(
            t.on_report(&rep(ExecKind::Ack, id, 0, 0, 0)),
            ReportOutcome::Applied(None)
        );
        assert_eq!(
            t.on_report(&rep(ExecKind::Ack, id, 0, 0, 0)),
            ReportOutcome::Duplicate
        );
        assert_eq!(
            t.on_report(&rep(ExecKind::PartialFill, id, 100, 4, 4)),
            ReportOutcome::Applied(Some((Side::Ask, 100, 4)))
        );
        assert_eq!(
            t.on_report(&rep(ExecKind::PartialFill, id, 100, 4, 4)),
            ReportOutcome::Duplicate
        );
        assert!(t.cancel_sent(id));
        assert_eq!(t.open_qty(Side::Ask), 6, "a cancel in flight still counts");
        // A fill while cancelling counts.
        assert_eq!(
            t.on_report(&rep(ExecKind::PartialFill, id, 100, 2, 6)),
            ReportOutcome::Applied(Some((Side::Ask, 100, 2)))
        );
        assert_eq!(
            t.on_report(&rep(ExecKind::Canceled, id, 0, 0, 6)),
            ReportOutcome::Applied(None)
        );
        assert_eq!(t.open_qty(Side::Ask), 0);
        // The venue's fill report overtaken by the cancel ack: still counted.
        assert_eq!(
            t.on_report(&rep(ExecKind::Fill, id, 100, 1, 7)),
            ReportOutcome::LateFill(Side::Ask, 100, 1)
        );
        assert_eq!(
            t.on_report(&rep(ExecKind::Ack, 12345, 0, 0, 0)),
            ReportOutcome::Unknown
        );
        let s = t.stats();
        assert_eq!(
            (s.duplicate_reports, s.late_fills, s.unknown_reports),
            (2, 1, 1)
        );
    }

    #[test]
    fn open_orders_stay_sorted_by_price_as_they_open_and_close() {
        let mut t = OrderTable::new(0);
        let mut ids = Vec::new();
        for p in [105, 101, 103, 101, 110] {
            ids.push(t.place(Side::Bid, p, 1, TimeInForce::PostOnly).unwrap());
        }
        let prices: Vec<i64> = t.open_by_price(Side::Bid).iter().map(|e| e.0).collect();
        assert_eq!(prices, [101, 101, 103, 105, 110]);
        t.on_report(&rep(ExecKind::Canceled, ids[2], 0, 0, 0));
        t.on_report(&rep(ExecKind::Fill, ids[1], 101, 1, 1));
        let left: Vec<(i64, u64)> = t.open_by_price(Side::Bid).to_vec();
        assert_eq!(left, [(101, ids[3]), (105, ids[0]), (110, ids[4])]);
        assert!(t.open_by_price(Side::Ask).is_empty());
        assert_eq!(t.open_qty(Side::Bid), 3);
    }

    #[test]
    fn a_full_table_refuses_placements() {
        let mut t = OrderTable::new(0);
        for _ in 0..ORDER_SLOTS {
            assert!(t.place(Side::Bid, 1, 1, TimeInForce::PostOnly).is_some());
        }
        assert!(t.place(Side::Bid, 1, 1, TimeInForce::PostOnly).is_none());
        assert_eq!(t.stats().table_full, 1);
    }

    #[test]
    fn reconcile_records_the_venue_id_applies_missed_fills_and_closes() {
        let mut t = OrderTable::new(1);
        let a = t.place(Side::Bid, 100, 4, TimeInForce::PostOnly).unwrap();
        let b = t.place(Side::Ask, 110, 4, TimeInForce::PostOnly).unwrap();
        let v = |cid, cum, open| VenueOrder {
            client_order_id: cid,
            venue_order_id: 500 + (cid & 0xf),
            side: Side::Bid,
            price: 100,
            qty: 4,
            cum_qty: cum,
            open,
        };
        // Open at the venue, pending here: the ack we missed; 1 lot filled we missed.
        assert_eq!(
            t.reconcile(&v(a, 1, true)),
            Reconciled::Known {
                missed_fill: Some((Side::Bid, 100, 1)),
                closed: false,
                open_at_venue_only: false
            }
        );
        let o = *t.get(a).unwrap();
        assert_eq!(
            (o.state, o.filled, o.venue_order_id),
            (OrderState::Live, 1, 500 + (a & 0xf))
        );
        assert_eq!(t.open_qty(Side::Bid), 3);
        // The venue filled the rest and closed it.
        assert_eq!(
            t.reconcile(&v(a, 4, false)),
            Reconciled::Known {
                missed_fill: Some((Side::Bid, 100, 3)),
                closed: true,
                open_at_venue_only: false
            }
        );
        assert_eq!(t.get(a).unwrap().state, OrderState::Done);
        assert_eq!(t.open_qty(Side::Bid), 0);
        assert!(t.open_by_price(Side::Bid).is_empty());
        // Finished here, open there: it works without us.
        assert_eq!(
            t.reconcile(&v(a, 4, true)),
            Reconciled::Known {
                missed_fill: None,
                closed: false,
                open_at_venue_only: true
            }
        );
        // Gone at the venue, unfilled.
        let gone = VenueOrder {
            side: Side::Ask,
            price: 110,
            ..v(b, 0, false)
        };
        assert!(matches!(
            t.reconcile(&gone),
            Reconciled::Known { closed: true, .. }
        ));
        assert_eq!(t.open().count(), 0);
        // Not ours.
        assert_eq!(t.reconcile(&v(2 << 48 | 5, 0, true)), Reconciled::Unknown);
    }
}
