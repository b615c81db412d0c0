//! The simulated venue: order life cycle and matching against the recorded market.

use super::link::Link;
use super::outbox::{Outbox, Resting};
use super::{FeeModel, LatencyModel, LevelChange, QueueModel, SimStats};
use engine::{
    reject_code, BboOffer, BboOverlay, Event, EventKind, ExecKind, ExecReport, InstrumentId,
    Intent, IntentKind, LevelUpdate, OrderBook, Side, TimeInForce, TopOfBook, TradePrint,
};

/// Open orders per instrument (Binance futures' default `MAX_NUM_ORDERS`). A place beyond it is
/// rejected.
pub const MAX_OPEN_ORDERS: usize = 200;
/// Reject code for a place the venue refuses outright (bad price or quantity, too many open
/// orders, a duplicate client order id): Binance's generic `NEW_ORDER_REJECTED`.
const REJECT_NEW_ORDER: i16 = -2010;
/// Reject code for an order on a symbol the venue does not list (`-1121` invalid symbol).
const REJECT_BAD_SYMBOL: i16 = -1121;
/// Ticks above a side's lowest resting price that [`Market::marks`] covers: a side whose
/// orders span more is looked up in [`Market::prices`] instead.
const MARK_SPAN: i64 = 16_384;
/// Intents in flight before the entry link grows.
const ENTRY_CAPACITY: usize = 4096;

/// The lowest of a side's distinct resting prices (ascending) when [`Market::marks`] holds
/// them as bits: they span fewer than [`MARK_SPAN`] ticks.
#[inline]
fn marked(prices: &[i64]) -> Option<i64> {
    match (prices.first(), prices.last()) {
        (Some(&lo), Some(&hi)) if hi - lo < MARK_SPAN => Some(lo),
        _ => None,
    }
}

/// The venue's view of one instrument.
#[derive(Debug)]
struct Market<P> {
    book: OrderBook,
    /// Between a reset / invalid and the next valid the book is being rebuilt: levels are
    /// applied but neither move queues nor fill orders.
    synced: bool,
    /// The last valid best bid/offer that was newer than the depth book when it arrived, by the
    /// engine's rule ([`BboOverlay`]). It is the venue's top of book while its update id is ahead of
    /// the book's; once the depth diffs catch up (a tie included) the book wins again. Cleared on
    /// reset and invalid.
    top: BboOverlay,
    /// Our resting orders in arrival (time priority) order.
    resting: Vec<Resting<P>>,
    /// The lowest and highest price of `resting`'s bids and of its asks (`(i64::MAX, i64::MIN)`
    /// for a side with none), or `None` once `resting` changed since they were taken: a depth
    /// level outside them can neither move our queues nor fill us, so it skips the scan.
    bounds: Option<[(i64, i64); 2]>,
    /// The distinct prices of `resting`'s bids and of its asks, ascending; taken with `bounds`
    /// (valid while it is `Some`). A depth level at none of them moves no queue of ours, so
    /// most levels between our lowest and highest price skip the scan too. Capacity kept.
    prices: [Vec<i64>; 2],
    /// The same prices as bits, a side's bit `p - lowest` set for each (taken with `prices`)
    /// when they span fewer than [`MARK_SPAN`] ticks ([`marked`]): most depth levels inside
    /// our bounds are at none of our prices, and one bit answers that without the search's
    /// chain of dependent loads. Only the words of the prices set are cleared again.
    marks: [Box<[u64]>; 2],
    /// Market-data quantity units in one order lot (1 unless the book's grid is finer, as on
    /// spot): recorded quantities are turned into lots as they arrive, book levels and best
    /// bid/offer quantities rounded up (a part of a lot still takes its place in the queue and
    /// still marks the level), trade quantities rounded down (only whole lots fill an order).
    book_units_per_lot: i64,
}

impl<P> Market<P> {
    /// [`Market::bounds`], taken again (with [`Market::prices`], whose ends they are) if
    /// `resting` changed.
    #[inline]
    fn resting_bounds(&mut self) -> [(i64, i64); 2] {
        if let Some(b) = self.bounds {
            debug_assert!(
                self.prices
                    .iter()
                    .zip([Side::Bid, Side::Ask])
                    .all(|(p, side)| self
                        .resting
                        .iter()
                        .all(|o| o.side != side || p.binary_search(&o.price).is_ok())),
                "resting changed without clearing its bounds"
            );
            return b;
        }
        // The bits of the previous prices go first (their words only), while `prices` still
        // holds what they were set from.
        for (prices, marks) in self.prices.iter().zip(&mut self.marks) {
            if let Some(lo) = marked(prices) {
                for &p in prices {
                    marks[((p - lo) / 64) as usize] = 0;
                }
            }
        }
        let mut b = [(i64::MAX, i64::MIN); 2];
        for (k, side) in [Side::Bid, Side::Ask].into_iter().enumerate() {
            let prices = &mut self.prices[k];
            prices.clear();
            prices.extend(
                self.resting
                    .iter()
                    .filter(|o| o.side == side)
                    .map(|o| o.price),
            );
            prices.sort_unstable();
            prices.dedup();
            if let (Some(&lo), Some(&hi)) = (prices.first(), prices.last()) {
                b[k] = (lo, hi);
                if marked(prices).is_some() {
                    for &p in prices.iter() {
                        let i = (p - lo) as usize;
                        self.marks[k][i / 64] |= 1 << (i % 64);
                    }
                }
            }
        }
        self.bounds = Some(b);
        b
    }

    /// Whether an order of ours rests at `price` on `side`; valid after
    /// [`Market::resting_bounds`], for a `price` within that side's bounds.
    #[inline]
    fn rests_at(&self, side: Side, price: i64) -> bool {
        let (prices, marks) = (&self.prices[side as usize], &self.marks[side as usize]);
        match marked(prices) {
            Some(lo) => {
                let i = price.wrapping_sub(lo);
                // Outside the bounds (a caller's mistake) is simply not ours.
                (0..MARK_SPAN).contains(&i) && marks[i as usize / 64] >> (i % 64) & 1 != 0
            }
            None => prices.binary_search(&price).is_ok(),
        }
    }

    /// The stored best bid/offer while it is newer than the depth book (by venue update id).
    #[inline]
    fn fresh_bbo(&self) -> Option<TopOfBook> {
        self.top.newer_than(&self.book)
    }

    /// The venue's newest best bid and ask: the best bid/offer while it is newer than the depth
    /// book, else the book's.
    #[inline]
    fn touch(&self) -> (Option<i64>, Option<i64>) {
        match self.fresh_bbo() {
            Some(b) => (Some(b.bid_price), Some(b.ask_price)),
            None => (self.book.best_bid(), self.book.best_ask()),
        }
    }

    /// The market's quantity at `price` on `side` as the venue has it now: while the best
    /// bid/offer is newer than the book, the touch's quantity at its price and nothing at a
    /// better price on that side (those levels are gone); the book's elsewhere.
    #[inline]
    fn level_qty(&self, side: Side, price: i64) -> i64 {
        if let Some(b) = self.fresh_bbo() {
            let (touch, qty, better) = match side {
                Side::Bid => (b.bid_price, b.bid_qty, price > b.bid_price),
                Side::Ask => (b.ask_price, b.ask_qty, price < b.ask_price),
            };
            if price == touch {
                return qty;
            }
            if better {
                return 0;
            }
        }
        self.book.qty_at(side, price)
    }
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
                    top: BboOverlay::default(),
                    resting: Vec::with_capacity(MAX_OPEN_ORDERS),
                    bounds: None,
                    prices: [
                        Vec::with_capacity(MAX_OPEN_ORDERS),
                        Vec::with_capacity(MAX_OPEN_ORDERS),
                    ],
                    marks: [0, 1].map(|_| vec![0; MARK_SPAN as usize / 64].into_boxed_slice()),
                    book_units_per_lot: 1,
                })
                .collect(),
            entry: Link::with_capacity(ENTRY_CAPACITY),
            out: Outbox::new(latency, fees),
            now_ns: i64::MIN,
        }
    }

    /// Takes each instrument's market-data quantity grid from its config (see
    /// [`SimVenue::set_book_units_per_lot`]); instrument ids are positions in `cfgs`.
    pub fn with_instruments(mut self, cfgs: &[engine::InstrumentConfig]) -> Self {
        for (i, c) in cfgs.iter().enumerate() {
            self.set_book_units_per_lot(i as InstrumentId, c.instrument.book_units_per_lot);
        }
        self
    }

    /// Sets how many market-data quantity units make one order lot for `instrument`
    /// ([`engine::Instrument::book_units_per_lot`]; 1, the default, when the grids are the same).
    pub fn set_book_units_per_lot(&mut self, instrument: InstrumentId, units: i64) {
        if let Some(m) = self.markets.get_mut(instrument as usize) {
            m.book_units_per_lot = units.max(1);
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
    /// the venue's book and queue positions; a best bid/offer newer than the book becomes the
    /// venue's top of book; trades, book changes and newer best bid/offers fill resting orders.
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
                if let Some(mut l) = ev.as_level() {
                    l.qty = lots_up(l.qty, m.book_units_per_lot);
                    Self::on_level(&self.queue, &mut self.out, m, inst, &l, t);
                }
            }
            EventKind::BookReset | EventKind::BookInvalid => {
                let _ = m.book.apply(ev);
                m.synced = false;
                m.top.clear();
            }
            EventKind::BookValid => {
                let _ = m.book.apply(ev);
                m.synced = true;
                Self::on_resync(&self.queue, &mut self.out, m, inst, t);
            }
            EventKind::Trade => {
                if let Some(mut tr) = ev.as_trade() {
                    tr.qty = tr.qty.div_euclid(m.book_units_per_lot);
                    Self::on_trade(&self.queue, &mut self.out, m, inst, &tr, t);
                }
            }
            EventKind::Bbo => {
                if let Some(mut b) = ev.as_bbo() {
                    b.bid_qty = lots_up(b.bid_qty, m.book_units_per_lot);
                    b.ask_qty = lots_up(b.ask_qty, m.book_units_per_lot);
                    Self::on_bbo(&mut self.out, m, inst, b, t);
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
            let (kind, code) = match intent.kind {
                IntentKind::Place => {
                    self.out.stats.rejects += 1;
                    (ExecKind::Rejected, REJECT_BAD_SYMBOL)
                }
                IntentKind::Cancel => {
                    self.out.stats.cancel_rejects_unknown += 1;
                    (ExecKind::CancelRejected, reject_code::UNKNOWN_ORDER)
                }
            };
            self.out.status(inst, t, kind, cid, 0, 0, code);
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
                    self.out
                        .status(inst, t, ExecKind::Rejected, cid, 0, 0, REJECT_NEW_ORDER);
                    return;
                }
                match intent.tif {
                    TimeInForce::PostOnly => {
                        // Judged on the venue's newest top of book (a best bid/offer ahead of
                        // the depth diffs counts), as the real venue judges it.
                        let (best_bid, best_ask) = m.touch();
                        let would_take = match intent.side {
                            Side::Bid => best_ask.is_some_and(|a| intent.price >= a),
                            Side::Ask => best_bid.is_some_and(|b| intent.price <= b),
                        };
                        if would_take {
                            self.out.stats.post_only_rejects += 1;
                            self.out.status(
                                inst,
                                t,
                                ExecKind::Rejected,
                                cid,
                                0,
                                0,
                                reject_code::POST_ONLY_WOULD_TAKE,
                            );
                            return;
                        }
                        self.out.stats.accepted += 1;
                        let venue_order_id = self.out.new_venue_order_id();
                        self.out
                            .status(inst, t, ExecKind::Ack, cid, 0, venue_order_id, 0);
                        // The queue it joins is the newest known: a fresher best bid/offer's
                        // quantity at its touch. Later depth diffs move it as usual.
                        let level = m.level_qty(intent.side, intent.price);
                        m.bounds = None;
                        m.resting.push(Resting {
                            client_order_id: cid,
                            venue_order_id,
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
            m.bounds = None;
            out.stats.cancels += 1;
            out.remember_done(cid, o.filled, o.venue_order_id);
            out.status(
                inst,
                t,
                ExecKind::Canceled,
                cid,
                o.filled,
                o.venue_order_id,
                0,
            );
            return;
        }
        // Finished or never seen: the venue says "unknown order" either way.
        let (cum, venue_order_id) = match out.recently_done(cid) {
            Some(done) => {
                out.stats.cancel_rejects_too_late += 1;
                done
            }
            None => {
                out.stats.cancel_rejects_unknown += 1;
                (0, 0)
            }
        };
        out.status(
            inst,
            t,
            ExecKind::CancelRejected,
            cid,
            cum,
            venue_order_id,
            reject_code::UNKNOWN_ORDER,
        );
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
        let venue_order_id = out.new_venue_order_id();
        out.status(inst, t, ExecKind::Ack, cid, 0, venue_order_id, 0);
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
            let fee = out.fees.fee(inst, intent.side, price, qty, true);
            out.stats.taker_lots += qty;
            out.stats.fees += i128::from(fee);
            if done {
                out.stats.fills += 1;
                out.remember_done(cid, filled, venue_order_id);
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
                    venue_order_id,
                    reject_code: 0,
                    taker: true,
                    post_only_reject: false,
                },
            );
        }
        if filled < intent.qty {
            out.stats.expired += 1;
            out.remember_done(cid, filled, venue_order_id);
            out.status(inst, t, ExecKind::Expired, cid, filled, venue_order_id, 0);
        }
    }

    /// A recorded level update: queue positions at that level, then orders it crosses, unless
    /// its message is older than the best bid/offer the venue already has.
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
        // A diff older than the stored best bid/offer describes a top of book the venue has
        // already moved past: an order accepted against the newer top may rest where that diff
        // still shows a level (the depth book is catching up), and must not fill on it. A
        // crossing the order really met before that top was reported by a best bid/offer of
        // its own (every change of the touch is).
        let behind_bbo = m.top.stored().is_some_and(|b| b.update_id > l.update_id);
        // Most levels are far from every order of ours: then the scan below would do nothing.
        let [bids, asks] = m.resting_bounds();
        let ours = match l.side {
            Side::Bid => bids,
            Side::Ask => asks,
        };
        let moves_a_queue =
            new != prev && ours.0 <= l.price && l.price <= ours.1 && m.rests_at(l.side, l.price);
        let may_fill = new > 0
            && !behind_bbo
            && match l.side {
                // An ask of ours crosses a bid level at or above it; a bid of ours, an ask
                // level at or below it ([`crosses`]).
                Side::Bid => asks.0 <= l.price,
                Side::Ask => l.price <= bids.1,
            };
        if !moves_a_queue && !may_fill {
            return;
        }
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
            } else if new > 0 && !behind_bbo {
                any_done |= Self::fill_if_crossed(out, inst, o, l.price, t);
            }
        }
        if any_done {
            m.resting.retain(|o| o.remaining() > 0);
            m.bounds = None;
        }
    }

    /// A best bid/offer. A well-formed one newer than both the depth book and the stored one,
    /// arriving while the book is synced, becomes the venue's top of book (the engine's rule),
    /// and resting orders it crosses fill as for a crossing depth update. Anything else
    /// (malformed, mid-resync, or not newer than what the venue has) is ignored.
    ///
    /// Queue positions do not move on a best bid/offer: the depth diff carrying the same change
    /// follows and moves them (with the trades since), and moving them here too would count the
    /// change twice.
    fn on_bbo(
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        b: TopOfBook,
        t: i64,
    ) {
        if !m.synced || m.top.offer(b, &m.book) != BboOffer::Used {
            return;
        }
        Self::fill_crossed(out, m, inst, (Some(b.bid_price), Some(b.ask_price)), t);
    }

    /// Fills every resting order that the top of book `(best_bid, best_ask)` crosses; see
    /// [`Self::fill_if_crossed`].
    fn fill_crossed(
        out: &mut Outbox<L, F>,
        m: &mut Market<Q::Pos>,
        inst: InstrumentId,
        (best_bid, best_ask): (Option<i64>, Option<i64>),
        t: i64,
    ) {
        // Nothing of ours crosses unless the best ask is at or below our highest bid or the
        // best bid at or above our lowest ask (most tops, on every best bid/offer): then the
        // scan below would fill nothing.
        let [bids, asks] = m.resting_bounds();
        let may_cross =
            best_ask.is_some_and(|a| a <= bids.1) || best_bid.is_some_and(|b| b >= asks.0);
        if !may_cross {
            return;
        }
        let mut any_done = false;
        for o in m.resting.iter_mut() {
            let opposite = match o.side {
                Side::Bid => best_ask,
                Side::Ask => best_bid,
            };
            if let Some(p) = opposite {
                any_done |= Self::fill_if_crossed(out, inst, o, p, t);
            }
        }
        if any_done {
            m.resting.retain(|o| o.remaining() > 0);
            m.bounds = None;
        }
    }

    /// Someone else's order rests at `other`, on the side opposite `o`: if that price trades
    /// with ours, it would have traded with us first, so `o` is filled, completely, as maker, at
    /// its price. Returns whether `o` is done (the caller drops finished orders).
    ///
    /// Completely, whatever the other order's size, and whatever the queue ahead of `o`: a book
    /// cannot rest locked or crossed, so every market order at our price (and better) on our
    /// side has traded or left, and the order resting against us is what remained of an order
    /// that went through all of them. This holds for a depth update, a resync and a best
    /// bid/offer alike; a best bid/offer is the same change as the depth diff that follows it,
    /// only seen first, so it fills what that diff would fill, earlier.
    fn fill_if_crossed(
        out: &mut Outbox<L, F>,
        inst: InstrumentId,
        o: &mut Resting<Q::Pos>,
        other: i64,
        t: i64,
    ) -> bool {
        crosses(o.side, o.price, other) && out.maker_fill(inst, o, o.remaining(), t)
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
        for o in m.resting.iter_mut() {
            queue.on_resync(&mut o.queue, m.book.qty_at(o.side, o.price));
            o.traded_since_level = 0;
        }
        // After a reset or invalid no best bid/offer is stored (cleared, and ignored until
        // valid): this is the book's touch.
        let touch = m.touch();
        Self::fill_crossed(out, m, inst, touch, t);
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
            m.bounds = None;
        }
    }
}

/// Market-data units → lots, rounded up.
#[inline]
fn lots_up(units: i64, per_lot: i64) -> i64 {
    if per_lot == 1 {
        units
    } else {
        units.div_euclid(per_lot) + i64::from(units.rem_euclid(per_lot) != 0)
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

impl<Q: QueueModel, L: LatencyModel, F: FeeModel> crate::Venue for SimVenue<Q, L, F> {
    type Stats = SimStats;

    #[inline]
    fn send(&mut self, intent: &Intent, now_ns: i64) {
        self.on_intent(intent, now_ns);
    }

    #[inline]
    fn poll(&mut self, now_ns: i64, out: &mut impl FnMut(&Event)) {
        self.advance_to(now_ns, out);
    }

    #[inline]
    fn next_due(&self) -> Option<i64> {
        SimVenue::next_due(self)
    }

    #[inline]
    fn on_market(&mut self, ev: &Event) {
        SimVenue::on_market(self, ev);
    }

    fn open_orders(&self, instrument: InstrumentId) -> usize {
        SimVenue::open_orders(self, instrument)
    }

    fn stats(&self) -> SimStats {
        SimVenue::stats(self)
    }
}

#[cfg(test)]
mod marks_tests {
    use super::*;
    use proptest::prelude::*;

    fn market() -> Market<()> {
        Market {
            book: OrderBook::new(4096),
            synced: true,
            top: BboOverlay::default(),
            resting: Vec::new(),
            bounds: None,
            prices: [Vec::new(), Vec::new()],
            marks: [0, 1].map(|_| vec![0; MARK_SPAN as usize / 64].into_boxed_slice()),
            book_units_per_lot: 1,
        }
    }

    fn resting(side: Side, price: i64) -> Resting<()> {
        Resting {
            client_order_id: 0,
            venue_order_id: 0,
            side,
            price,
            qty: 1,
            filled: 0,
            queue: (),
            traded_since_level: 0,
        }
    }

    proptest! {
        /// Through any sequence of order sets (narrow, and wider than the bits cover), a
        /// price is ours exactly when an order of that side rests there: bits left from an
        /// earlier set never answer for a later one.
        #[test]
        fn rests_at_is_membership(
            sets in prop::collection::vec(
                (prop::collection::vec((any::<bool>(), 0i64..40_000), 0..40), 0i64..3),
                1..8,
            ),
            probes in prop::collection::vec(0i64..40_000, 64),
        ) {
            let mut m = market();
            for (orders, spread) in sets {
                m.resting.clear();
                for (bid, off) in &orders {
                    // A narrow set most of the time, one past the bits' span otherwise.
                    let p = 1_000_000 + off / (1 + 8 * (2 - spread).max(0));
                    m.resting.push(resting(if *bid { Side::Bid } else { Side::Ask }, p));
                }
                m.bounds = None;
                let b = m.resting_bounds();
                for side in [Side::Bid, Side::Ask] {
                    let (lo, hi) = b[side as usize];
                    for &q in &probes {
                        let p = 1_000_000 + q / (1 + 8 * (2 - spread).max(0));
                        if p < lo || p > hi {
                            continue;
                        }
                        let want = m.resting.iter().any(|o| o.side == side && o.price == p);
                        prop_assert_eq!(m.rests_at(side, p), want, "side {:?} price {}", side, p);
                    }
                    for o in m.resting.iter().filter(|o| o.side == side) {
                        prop_assert!(m.rests_at(side, o.price));
                    }
                }
            }
        }
    }
}
