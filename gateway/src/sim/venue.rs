//! The simulated venue: order life cycle and matching against the recorded market.

use super::link::Link;
use super::outbox::{Outbox, Resting};
use super::{FeeModel, LatencyModel, LevelChange, QueueModel, SimStats};
use engine::{
    Event, EventKind, ExecKind, ExecReport, InstrumentId, Intent, IntentKind, LevelUpdate,
    OrderBook, Side, TimeInForce, TradePrint,
};

/// Open orders per instrument (Binance futures' default `MAX_NUM_ORDERS`). A place beyond it is
/// rejected.
pub const MAX_OPEN_ORDERS: usize = 200;
/// Intents in flight before the entry link grows.
const ENTRY_CAPACITY: usize = 4096;

/// The venue's view of one instrument.
#[derive(Debug)]
struct Market<P> {
    book: OrderBook,
    /// Between a reset / invalid and the next valid the book is being rebuilt: levels are
    /// applied but neither move queues nor fill orders.
    synced: bool,
    /// Our resting orders in arrival (time priority) order.
    resting: Vec<Resting<P>>,
}

/// A simulated Binance futures venue over a recorded market. See the [module docs](super).
///
/// Everything is allocated in [`SimVenue::new`]: books, order slots, message queues. Processing
/// an event or an intent allocates only if more messages are in flight than preallocated
/// (counted in [`SimStats::queue_growths`]).
#[derive(Debug)]
pub struct SimVenue<Q: QueueModel, L: LatencyModel, F: FeeModel> {
    queue: Q,
    markets: Vec<Market<Q::Pos>>,
    entry: Link<Intent>,
    out: Outbox<L, F>,
    /// The venue's clock: the latest time it has processed.
    now_ns: i64,
}

impl<Q: QueueModel, L: LatencyModel, F: FeeModel> SimVenue<Q, L, F> {
    /// A venue for `instruments` instruments (ids `0..instruments`), each with a book of
    /// `book_slots` ticks (see [`OrderBook::new`]).
    pub fn new(instruments: usize, book_slots: usize, queue: Q, latency: L, fees: F) -> Self {
        SimVenue {
            queue,
            markets: (0..instruments)
                .map(|_| Market {
                    book: OrderBook::new(book_slots),
                    synced: false,
                    resting: Vec::with_capacity(MAX_OPEN_ORDERS),
                })
                .collect(),
            entry: Link::with_capacity(ENTRY_CAPACITY),
            out: Outbox::new(latency, fees),
            now_ns: i64::MIN,
        }
    }

    /// Processes everything due up to `now_ns`: intents reaching the venue, then reports
    /// reaching the engine, which are passed to `out` in delivery order (ties in the order the
    /// venue produced them). Call before each market event and at the end of the recording.
    pub fn advance_to(&mut self, now_ns: i64, out: &mut impl FnMut(&Event)) {
        self.arrive_until(now_ns);
        self.now_ns = self.now_ns.max(now_ns);
        while let Some((_, ev)) = self.out.link.pop_due(now_ns) {
            self.out.stats.reports += 1;
            out(&ev);
        }
    }

    /// A recorded market event at its local time: book levels, reset, valid and invalid update
    /// the venue's book and queue positions; trades and book changes fill resting orders.
    /// Other kinds are ignored. Intents reaching the venue up to the event's time are processed
    /// first.
    pub fn on_market(&mut self, ev: &Event) {
        let t = ev.local_time_ns;
        self.arrive_until(t);
        self.now_ns = self.now_ns.max(t);
        let t = self.now_ns;
        let inst = ev.instrument();
        let Some(m) = self.markets.get_mut(inst as usize) else {
            return;
        };
        match ev.kind() {
            EventKind::BookLevel => {
                if let Some(l) = ev.as_level() {
                    Self::on_level(&self.queue, &mut self.out, m, inst, &l, t);
                }
            }
            EventKind::BookReset | EventKind::BookInvalid => {
                let _ = m.book.apply(ev);
                m.synced = false;
            }
            EventKind::BookValid => {
                let _ = m.book.apply(ev);
                m.synced = true;
                Self::on_resync(&self.queue, &mut self.out, m, inst, t);
            }
            EventKind::Trade => {
                if let Some(tr) = ev.as_trade() {
                    Self::on_trade(&self.queue, &mut self.out, m, inst, &tr, t);
                }
            }
            _ => {}
        }
    }

    /// An intent the engine sent at `now_ns`; it reaches the venue `entry` later (and never
    /// before an intent sent earlier, nor before the venue's clock).
    pub fn on_intent(&mut self, intent: &Intent, now_ns: i64) {
        self.out.stats.intents += 1;
        let delay = self.out.latency.entry_ns(intent, now_ns).max(0);
        let mut arrive = now_ns.saturating_add(delay);
        if arrive < self.now_ns {
            self.out.stats.late_intents += 1;
            arrive = self.now_ns;
        }
        self.entry.send(arrive, *intent);
    }

    /// The earliest time something is pending: an intent in flight to the venue or a report in
    /// flight to the engine.
    pub fn next_due(&self) -> Option<i64> {
        match (self.entry.next_due(), self.out.link.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        let mut s = self.out.stats;
        s.queue_growths = self.entry.grown() + self.out.link.grown();
        s
    }

    /// The venue's copy of an instrument's recorded book.
    pub fn book(&self, instrument: InstrumentId) -> Option<&OrderBook> {
        self.markets.get(instrument as usize).map(|m| &m.book)
    }

    /// Open orders resting on an instrument.
    pub fn open_orders(&self, instrument: InstrumentId) -> usize {
        self.markets
            .get(instrument as usize)
            .map_or(0, |m| m.resting.len())
    }

    /// Whole lots ahead of a resting order in its level's queue, if it is resting.
    pub fn queue_ahead(&self, instrument: InstrumentId, client_order_id: u64) -> Option<i64> {
        let m = self.markets.get(instrument as usize)?;
        let o = m
            .resting
            .iter()
            .find(|o| o.client_order_id == client_order_id)?;
        Some(self.queue.ahead(&o.queue))
    }

    /// Processes intents that reach the venue at or before `t`.
    fn arrive_until(&mut self, t: i64) {
        while let Some((at, intent)) = self.entry.pop_due(t) {
            self.now_ns = self.now_ns.max(at);
            self.on_arrival(&intent, self.now_ns);
        }
    }

    /// An intent reaches the venue at `t`.
    fn on_arrival(&mut self, intent: &Intent, t: i64) {
        let inst = intent.instrument;
        let cid = intent.client_order_id;
        let Some(m) = self.markets.get_mut(inst as usize) else {
            let kind = match intent.kind {
                IntentKind::Place => {
                    self.out.stats.rejects += 1;
                    ExecKind::Rejected
                }
                IntentKind::Cancel => {
                    self.out.stats.cancel_rejects_unknown += 1;
                    ExecKind::CancelRejected
                }
            };
            self.out.status(inst, t, kind, cid, 0, false);
            return;
        };
        match intent.kind {
            IntentKind::Cancel => Self::cancel(&mut self.out, m, inst, cid, t),
            IntentKind::Place => {
                let invalid = intent.price <= 0
                    || intent.qty <= 0
                    || m.resting.len() >= MAX_OPEN_ORDERS
                    || m.resting.iter().any(|o| o.client_order_id == cid);
                if invalid {
                    self.out.stats.rejects += 1;
                    self.out.status(inst, t, ExecKind::Rejected, cid, 0, false);
                    return;
                }
                match intent.tif {
                    TimeInForce::PostOnly => {
                        let would_take = match intent.side {
                            Side::Bid => m.book.best_ask().is_some_and(|a| intent.price >= a),
                            Side::Ask => m.book.best_bid().is_some_and(|b| intent.price <= b),
                        };
                        if would_take {
                            self.out.stats.post_only_rejects += 1;
                            self.out.status(inst, t, ExecKind::Rejected, cid, 0, true);
                            return;
                        }
                        self.out.stats.accepted += 1;
                        self.out.status(inst, t, ExecKind::Ack, cid, 0, false);
                        let level = m.book.qty_at(intent.side, intent.price);
                        m.resting.push(Resting {
                            client_order_id: cid,
                            side: intent.side,
                            price: intent.price,
                            qty: intent.qty,
                            filled: 0,
                            queue: self.queue.join(level),
                            traded_since_level: 0,
                        });
                    }
                    TimeInForce::Ioc => Self::ioc(&mut self.out, m, inst, intent, t),
                }
            }
        }
    }

    /// A cancel reaches the venue.
    fn cancel(
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        cid: u64,
        t: i64,
    ) {
        if let Some(i) = m.resting.iter().position(|o| o.client_order_id == cid) {
            // `Vec::remove` keeps the others in time priority; never reallocates.
            let o = m.resting.remove(i);
            out.stats.cancels += 1;
            out.remember_done(cid, o.filled);
            out.status(inst, t, ExecKind::Canceled, cid, o.filled, false);
            return;
        }
        let cum = match out.recently_done(cid) {
            Some(filled) => {
                out.stats.cancel_rejects_too_late += 1;
                filled
            }
            None => {
                out.stats.cancel_rejects_unknown += 1;
                0
            }
        };
        out.status(inst, t, ExecKind::CancelRejected, cid, cum, false);
    }

    /// An IOC order: takes from the venue's book, level by level, up to its limit; the rest
    /// expires. The recorded book is not depleted (the next recorded update sets it anyway), so
    /// two IOC orders close together can take the same quantity: market impact is not modelled.
    fn ioc(
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        intent: &Intent,
        t: i64,
    ) {
        let cid = intent.client_order_id;
        out.stats.accepted += 1;
        out.status(inst, t, ExecKind::Ack, cid, 0, false);
        let opposite = match intent.side {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        };
        let mut filled = 0;
        for (price, level_qty) in m.book.levels(opposite) {
            let crosses = match intent.side {
                Side::Bid => price <= intent.price,
                Side::Ask => price >= intent.price,
            };
            if !crosses || filled == intent.qty {
                break;
            }
            let qty = level_qty.min(intent.qty - filled);
            if qty <= 0 {
                continue;
            }
            filled += qty;
            let done = filled == intent.qty;
            let fee = out.fees.fee(inst, price, qty, true);
            out.stats.taker_lots += qty;
            out.stats.fees += i128::from(fee);
            if done {
                out.stats.fills += 1;
                out.remember_done(cid, filled);
            } else {
                out.stats.partial_fills += 1;
            }
            out.report(
                inst,
                t,
                ExecReport {
                    kind: if done {
                        ExecKind::Fill
                    } else {
                        ExecKind::PartialFill
                    },
                    client_order_id: cid,
                    last_price: price,
                    last_qty: qty,
                    cum_qty: filled,
                    fee,
                    taker: true,
                    post_only_reject: false,
                },
            );
        }
        if filled < intent.qty {
            out.stats.expired += 1;
            out.remember_done(cid, filled);
            out.status(inst, t, ExecKind::Expired, cid, filled, false);
        }
    }

    /// A recorded level update: queue positions at that level, then orders it crosses.
    fn on_level(
        queue: &Q,
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        l: &LevelUpdate,
        t: i64,
    ) {
        let prev = m.book.qty_at(l.side, l.price);
        if m.book.apply_level(l).is_err() {
            out.stats.book_errors += 1;
            return;
        }
        if !m.synced || m.resting.is_empty() {
            return;
        }
        let new = m.book.qty_at(l.side, l.price);
        let mut any_done = false;
        for o in m.resting.iter_mut() {
            if o.side == l.side {
                if o.price == l.price && new != prev {
                    let change = LevelChange {
                        prev_qty: prev,
                        new_qty: new,
                        traded_since: o.traded_since_level,
                    };
                    queue.on_level_change(&mut o.queue, change);
                    o.traded_since_level = 0;
                }
            } else if new > 0 && crosses(o.side, o.price, l.price) {
                // Someone else's order now rests at a price that trades with ours: it would
                // have traded with us first. Filled completely, as maker, at our price.
                any_done |= out.maker_fill(inst, o, o.remaining(), t);
            }
        }
        if any_done {
            m.resting.retain(|o| o.remaining() > 0);
        }
    }

    /// The book is synced again: cap queue positions at what the levels now hold, and fill
    /// orders the new book crosses.
    fn on_resync(
        queue: &Q,
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        t: i64,
    ) {
        let (best_bid, best_ask) = (m.book.best_bid(), m.book.best_ask());
        let mut any_done = false;
        for o in m.resting.iter_mut() {
            queue.on_resync(&mut o.queue, m.book.qty_at(o.side, o.price));
            o.traded_since_level = 0;
            let opposite_best = match o.side {
                Side::Bid => best_ask,
                Side::Ask => best_bid,
            };
            if opposite_best.is_some_and(|p| crosses(o.side, o.price, p)) {
                any_done |= out.maker_fill(inst, o, o.remaining(), t);
            }
        }
        if any_done {
            m.resting.retain(|o| o.remaining() > 0);
        }
    }

    /// A public trade: through our price fills completely; at our price it eats the queue ahead,
    /// then fills us. Several of our orders at the trade's price share it in time priority.
    fn on_trade(
        queue: &Q,
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        tr: &TradePrint,
        t: i64,
    ) {
        if tr.qty <= 0 || m.resting.is_empty() {
            return;
        }
        // The aggressor sold (`Ask`): our bids are the makers, and vice versa.
        let maker = match tr.aggressor {
            Side::Ask => Side::Bid,
            Side::Bid => Side::Ask,
        };
        // Lots of this trade already given to our earlier orders at the trade's price: an order
        // that joined later stands behind them.
        let mut given = 0;
        let mut any_done = false;
        for o in m.resting.iter_mut() {
            if o.side != maker {
                continue;
            }
            let through = match o.side {
                Side::Bid => tr.price < o.price,
                Side::Ask => tr.price > o.price,
            };
            if through {
                any_done |= out.maker_fill(inst, o, o.remaining(), t);
            } else if tr.price == o.price {
                o.traded_since_level += tr.qty;
                let reach = queue.on_trade(&mut o.queue, tr.qty - given);
                let qty = reach.min(o.remaining());
                given += qty;
                any_done |= out.maker_fill(inst, o, qty, t);
            }
        }
        if any_done {
            m.resting.retain(|o| o.remaining() > 0);
        }
    }
}

/// Whether a market order resting at `other` (on the side opposite ours) trades with our order
/// on `side` at `ours`.
#[inline]
fn crosses(side: Side, ours: i64, other: i64) -> bool {
    match side {
        Side::Bid => other <= ours,
        Side::Ask => other >= ours,
    }
}
