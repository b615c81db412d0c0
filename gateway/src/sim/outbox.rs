//! The venue's side of the user-data stream: turning fills and status changes into reports,
//! charging fees, and sending them down the response link.

use super::link::Link;
use super::{FeeModel, LatencyModel, SimStats};
use engine::{reject_code, Event, ExecKind, ExecReport, InstrumentId, Side};

/// Finished orders remembered to tell a late cancel (the order already filled, cancelled or
/// expired) from a cancel of an id the venue never saw; both get `CancelRejected`.
const RECENTLY_DONE: usize = 1024;
/// Reports in flight before the response link grows.
const REPORT_CAPACITY: usize = 16_384;

/// One of our orders resting in the venue's book.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resting<P> {
    pub(super) client_order_id: u64,
    /// The venue's id for it, from [`Outbox::new_venue_order_id`].
    pub(super) venue_order_id: u64,
    pub(super) side: Side,
    pub(super) price: i64,
    pub(super) qty: i64,
    pub(super) filled: i64,
    pub(super) queue: P,
    /// Lots traded at our price (aggressor on the other side) since the level's last update.
    pub(super) traded_since_level: i64,
}

impl<P> Resting<P> {
    #[inline]
    pub(super) fn remaining(&self) -> i64 {
        self.qty - self.filled
    }
}

/// Where reports go: the response link and everything needed to make a report.
#[derive(Debug)]
pub(super) struct Outbox<L, F> {
    pub(super) latency: L,
    pub(super) fees: F,
    pub(super) link: Link<Event>,
    pub(super) stats: SimStats,
    /// `(client_order_id, filled, venue_order_id)` of recently finished orders, a ring.
    done: Box<[(u64, i64, u64)]>,
    done_next: usize,
    /// The venue order id the next accepted order gets: 1, 2, ... (deterministic).
    next_venue_order_id: u64,
}

impl<L: LatencyModel, F: FeeModel> Outbox<L, F> {
    pub(super) fn new(latency: L, fees: F) -> Outbox<L, F> {
        Outbox {
            latency,
            fees,
            link: Link::with_capacity(REPORT_CAPACITY),
            stats: SimStats::default(),
            done: vec![(0, 0, 0); RECENTLY_DONE].into_boxed_slice(),
            done_next: 0,
            next_venue_order_id: 1,
        }
    }

    /// The venue's id for an order it accepts: a per-venue counter from 1, like a real venue's
    /// `orderId` but deterministic.
    pub(super) fn new_venue_order_id(&mut self) -> u64 {
        let id = self.next_venue_order_id;
        self.next_venue_order_id += 1;
        id
    }

    pub(super) fn report(&mut self, instrument: InstrumentId, venue_ns: i64, r: ExecReport) {
        let delay = self.latency.response_ns(&r, venue_ns).max(0);
        // Not before the previous report: the event carries the time it reaches the engine.
        let due = self.link.due_for(venue_ns.saturating_add(delay));
        self.link
            .send(due, Event::exec(instrument, venue_ns, due, r));
    }

    /// `(filled, venue_order_id)` of a recently finished order, if `client_order_id` is one.
    pub(super) fn recently_done(&self, client_order_id: u64) -> Option<(i64, u64)> {
        // Newest first: an id reused after the ring wrapped finds its latest life.
        let n = self.done.len();
        (1..=n)
            .map(|k| self.done[(self.done_next + n - k) % n])
            .find(|&(id, _, _)| id == client_order_id && id != 0)
            .map(|(_, filled, venue_id)| (filled, venue_id))
    }

    pub(super) fn remember_done(&mut self, client_order_id: u64, filled: i64, venue_order_id: u64) {
        self.done[self.done_next] = (client_order_id, filled, venue_order_id);
        self.done_next = (self.done_next + 1) % self.done.len();
    }

    /// A maker fill of up to `qty` lots of `o` at its limit price. Returns whether it is done.
    pub(super) fn maker_fill<P>(
        &mut self,
        instrument: InstrumentId,
        o: &mut Resting<P>,
        qty: i64,
        venue_ns: i64,
    ) -> bool {
        let qty = qty.min(o.remaining());
        if qty <= 0 {
            return o.remaining() <= 0;
        }
        o.filled += qty;
        let done = o.remaining() == 0;
        let fee = self.fees.fee(instrument, o.side, o.price, qty, false);
        self.stats.maker_lots += qty;
        self.stats.fees += i128::from(fee);
        if done {
            self.stats.fills += 1;
            self.remember_done(o.client_order_id, o.filled, o.venue_order_id);
        } else {
            self.stats.partial_fills += 1;
        }
        self.report(
            instrument,
            venue_ns,
            ExecReport {
                kind: if done {
                    ExecKind::Fill
                } else {
                    ExecKind::PartialFill
                },
                client_order_id: o.client_order_id,
                last_price: o.price,
                last_qty: qty,
                cum_qty: o.filled,
                fee,
                venue_order_id: o.venue_order_id,
                reject_code: 0,
                taker: false,
                post_only_reject: false,
            },
        );
        done
    }

    /// A report with no fill (ack, reject, cancel, expire, cancel reject). `venue_order_id` is
    /// 0 when the venue never accepted the order; `code` is the venue's error code for a reject
    /// or cancel reject (0 otherwise).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn status(
        &mut self,
        instrument: InstrumentId,
        venue_ns: i64,
        kind: ExecKind,
        client_order_id: u64,
        cum_qty: i64,
        venue_order_id: u64,
        code: i16,
    ) {
        self.report(
            instrument,
            venue_ns,
            ExecReport {
                kind,
                client_order_id,
                last_price: 0,
                last_qty: 0,
                cum_qty,
                fee: 0,
                venue_order_id,
                reject_code: code,
                taker: false,
                post_only_reject: code == reject_code::POST_ONLY_WOULD_TAKE,
            },
        );
    }
}
