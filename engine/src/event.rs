//! The engine's input events: fixed-size, `#[repr(C)]`, `Copy`, one 64-byte cache line.
//!
//! Every event carries its kind, instrument, source, the venue's event time and the local receive
//! time (both ns). The body is five 64-bit words whose meaning depends on the kind; typed
//! constructors and accessors ([`Event::level`], [`Event::bbo`], ...) are the only way in and out,
//! so there is no `unsafe` and no invalid state to read.
//!
//! # Byte layout
//!
//! [`Event::to_bytes`], little-endian, the journal's payload for an event:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | kind ([`EventKind`] as `u8`) |
//! | 1 | flags (`FLAG_*`) |
//! | 2..4 | instrument (`u16`) |
//! | 4..6 | source (`u16`) |
//! | 6..8 | aux (`u16`: exec kind, command, book status reason) |
//! | 8..16 | venue time, ns (`i64`) |
//! | 16..24 | local receive time, ns (`i64`) |
//! | 24..64 | body: five 64-bit words, by kind |
//!
//! The execution report body ([`EventKind::ExecReport`]) is full, so it packs:
//!
//! | bytes | field |
//! |---|---|
//! | 24..30 | low 48 bits of the client order id (the high 16 bits are the instrument, see `orders`) |
//! | 30..32 | venue reject code (`i16`, e.g. `-5022`, `-2011`, `-1003`; 0 for none) |
//! | 32..40 | venue order id (`u64`, 0 when the venue gave none) |
//! | 40..46 | last price, ticks (48-bit two's complement) |
//! | 46..52 | last quantity, lots (48-bit) |
//! | 52..58 | cumulative quantity, lots (48-bit) |
//! | 58..64 | fee, tick·lot units (48-bit, negative is a rebate) |
//!
//! 48 bits hold ±1.4·10^14: a BTCUSDT price in 0.10 ticks needs 10^6, a fee in tick·lot units of
//! a 100-BTC fill about 10^9. A value outside the range is never wrapped: [`Event::exec`]
//! saturates it and sets [`FLAG_SATURATED`]; a client order id whose high 16 bits are not the
//! event's instrument is stored as id 0 of the instrument (never a live id) with the same flag.
//!
//! A mark price ([`EventKind::MarkPrice`]) uses four of the five words, in order: mark price
//! (ticks), index price (ticks), funding rate (10^-8), next funding time (ms); the fifth is 0.

/// Index of an instrument inside one engine (dense, from 0).
pub type InstrumentId = u16;

/// Side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    /// Buy side.
    Bid = 0,
    /// Sell side.
    Ask = 1,
}

/// What an [`Event`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum EventKind {
    /// One price level of a depth message (diff or snapshot): absolute quantity, 0 removes it.
    BookLevel = 1,
    /// Clear the book; snapshot levels follow. The book is not valid until `BookValid`.
    BookReset = 2,
    /// The book is synced with the venue and may be quoted against.
    BookValid = 3,
    /// The book can no longer be trusted (gap, stale, overflow): pull quotes.
    BookInvalid = 4,
    /// Best bid and offer from the venue's book-ticker stream.
    Bbo = 5,
    /// A public trade.
    Trade = 6,
    /// An execution report for one of our orders (ack, fill, cancel, reject, expire).
    ExecReport = 7,
    /// A timer tick: lets the engine act on time alone (stale book, budget refill).
    Timer = 8,
    /// An operator command (halt, resume, reduce-only, cancel-all).
    Control = 9,
    /// Reconciliation: the venue's view of one of the account's orders on this instrument.
    ReconcileOrder = 10,
    /// Reconciliation: the venue's view of the position on this instrument.
    ReconcilePosition = 11,
    /// The venue's mark price, index price and funding rate (Binance `markPriceUpdate`, USDⓈ-M
    /// and COIN-M). Stored per instrument; never a reason to requote.
    MarkPrice = 12,
}

impl EventKind {
    /// The kind for a stored discriminant (journal decoding), if it is one.
    pub fn from_u8(v: u8) -> Option<EventKind> {
        Some(match v {
            1 => EventKind::BookLevel,
            2 => EventKind::BookReset,
            3 => EventKind::BookValid,
            4 => EventKind::BookInvalid,
            5 => EventKind::Bbo,
            6 => EventKind::Trade,
            7 => EventKind::ExecReport,
            8 => EventKind::Timer,
            9 => EventKind::Control,
            10 => EventKind::ReconcileOrder,
            11 => EventKind::ReconcilePosition,
            12 => EventKind::MarkPrice,
            _ => return None,
        })
    }

    /// A book event: level, reset, valid or invalid (what the order book applies).
    #[inline]
    pub fn is_book(self) -> bool {
        matches!(
            self,
            EventKind::BookLevel
                | EventKind::BookReset
                | EventKind::BookValid
                | EventKind::BookInvalid
        )
    }

    /// Market data: what a feed publishes about the market (book events, best bid/offer,
    /// trades, mark prices), as against execution reports, the timer, the operator and
    /// reconciliation, which belong to one run.
    #[inline]
    pub fn is_market_data(self) -> bool {
        self.is_book()
            || matches!(
                self,
                EventKind::Bbo | EventKind::Trade | EventKind::MarkPrice
            )
    }
}

/// Why a book became invalid (or was reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum BookStatusReason {
    /// No particular reason (valid, reset from a snapshot).
    None = 0,
    /// A diff did not chain onto the previous one (`pu` mismatch, or spot `U != u + 1`).
    SequenceGap = 1,
    /// The snapshot is older than every buffered diff: nothing bridges it.
    SnapshotTooOld = 2,
    /// The feed buffered more diffs than it has room for while waiting for a snapshot.
    BufferOverflow = 3,
    /// A diff carried a level that could not be decoded; the book would silently diverge.
    BadLevel = 4,
    /// The input ring was full and events were dropped.
    RingOverflow = 5,
    /// The feed disconnected.
    Disconnected = 6,
    /// No update for longer than the configured stale time.
    Stale = 7,
    /// A diff left the book crossed (best bid at or above best ask): a level update was missed,
    /// whatever the ids say.
    Crossed = 8,
}

impl BookStatusReason {
    fn from_u16(v: u16) -> BookStatusReason {
        match v {
            1 => BookStatusReason::SequenceGap,
            2 => BookStatusReason::SnapshotTooOld,
            3 => BookStatusReason::BufferOverflow,
            4 => BookStatusReason::BadLevel,
            5 => BookStatusReason::RingOverflow,
            6 => BookStatusReason::Disconnected,
            7 => BookStatusReason::Stale,
            8 => BookStatusReason::Crossed,
            _ => BookStatusReason::None,
        }
    }
}

/// Flag: the level (or the reconciled order) is on the ask side (else bid).
pub const FLAG_ASK: u8 = 1 << 0;
/// Flag: last level of one venue message; the book is consistent after it.
pub const FLAG_LAST_IN_MSG: u8 = 1 << 1;
/// Flag: the level comes from a snapshot, not a diff.
pub const FLAG_SNAPSHOT: u8 = 1 << 2;
/// Flag (trades): the buyer was the maker, i.e. the aggressor sold.
pub const FLAG_BUYER_MAKER: u8 = 1 << 3;

/// One engine input: 64 bytes, one cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Event {
    kind: EventKind,
    flags: u8,
    instrument: InstrumentId,
    /// Which producer published it (feed, gateway, timer...); set by the caller.
    pub source: u16,
    aux: u16,
    /// The venue's event time, ns since the Unix epoch (0 when the venue sends none).
    pub venue_time_ns: i64,
    /// Local receive time, ns (socket timestamp where available, else the recording's).
    pub local_time_ns: i64,
    body: [i64; 5],
}

const _: () = assert!(std::mem::size_of::<Event>() == 64);
const _: () = assert!(std::mem::align_of::<Event>() == 64);

/// A book level carried by a [`EventKind::BookLevel`] event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelUpdate {
    /// Bid or ask.
    pub side: Side,
    /// Price in ticks.
    pub price: i64,
    /// Absolute quantity in lots; 0 removes the level.
    pub qty: i64,
    /// The venue message's final update id (`u`, or the snapshot's `lastUpdateId`).
    pub update_id: u64,
    /// Last level of its venue message.
    pub last_in_msg: bool,
    /// From a snapshot rather than a diff.
    pub snapshot: bool,
}

/// Best bid and offer ([`EventKind::Bbo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopOfBook {
    /// Best bid price, ticks.
    pub bid_price: i64,
    /// Best bid quantity, lots.
    pub bid_qty: i64,
    /// Best ask price, ticks.
    pub ask_price: i64,
    /// Best ask quantity, lots.
    pub ask_qty: i64,
    /// The venue's book update id at this top of book.
    pub update_id: u64,
}

/// A public trade ([`EventKind::Trade`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradePrint {
    /// Price, ticks.
    pub price: i64,
    /// Quantity, lots.
    pub qty: i64,
    /// The venue's trade id (first trade id for aggregated trades).
    pub trade_id: u64,
    /// Number of venue trades aggregated into this print (1 for a plain trade).
    pub count: u32,
    /// The aggressor's side: `Ask` when the buyer was the maker.
    pub aggressor: Side,
}

/// Decimals of [`MarkPriceUpdate::funding_rate_e8`]: the rate is a count of 10^-8.
pub const FUNDING_RATE_DECIMALS: u8 = 8;

/// The venue's mark price, index price and funding ([`EventKind::MarkPrice`]), from Binance's
/// `markPriceUpdate` stream (`<symbol>@markPrice`, `@markPrice@1s`; USDⓈ-M and COIN-M).
///
/// Mark and index prices are averages the venue computes and carries to 8 decimals, not prices
/// anyone quotes: they are put on the tick grid by rounding to the nearest tick (half a tick up),
/// unlike book and trade prices, which must be on the grid exactly. The funding rate is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkPriceUpdate {
    /// Mark price (`p`), ticks, rounded to the nearest tick.
    pub mark_price: i64,
    /// Index price (`i`), ticks, rounded to the nearest tick.
    pub index_price: i64,
    /// Funding rate of the next funding (`r`), in units of 10^-8, exact: `"0.00038167"` is
    /// 38,167, `"-0.00012500"` is -12,500 (negative: shorts pay longs). 0 for a contract without
    /// funding (COIN-M delivery contracts send `"r":""`).
    pub funding_rate_e8: i64,
    /// Next funding time (`T`), ms since the Unix epoch; 0 when none (delivery contracts).
    pub next_funding_ms: i64,
}

/// What an execution report says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum ExecKind {
    /// The venue accepted the order; it is working.
    Ack = 1,
    /// Part of the order traded; it keeps working.
    PartialFill = 2,
    /// The rest of the order traded; it is done.
    Fill = 3,
    /// The order was cancelled (by us or the venue); it is done.
    Canceled = 4,
    /// The venue refused the order (a post-only order that would take included); it is done.
    Rejected = 5,
    /// The order expired; it is done.
    Expired = 6,
    /// The venue refused a cancel (e.g. `-2011` unknown order); the order's state is unchanged.
    CancelRejected = 7,
}

impl ExecKind {
    /// The kind for a stored discriminant, if it is one.
    pub fn from_u16(v: u16) -> Option<ExecKind> {
        Some(match v {
            1 => ExecKind::Ack,
            2 => ExecKind::PartialFill,
            3 => ExecKind::Fill,
            4 => ExecKind::Canceled,
            5 => ExecKind::Rejected,
            6 => ExecKind::Expired,
            7 => ExecKind::CancelRejected,
            _ => return None,
        })
    }
}

/// An execution report ([`EventKind::ExecReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecReport {
    /// What happened.
    pub kind: ExecKind,
    /// Our client order id.
    pub client_order_id: u64,
    /// Price of this fill, ticks (0 when not a fill).
    pub last_price: i64,
    /// Quantity of this fill, lots (0 when not a fill).
    pub last_qty: i64,
    /// Cumulative filled quantity of the order after this report, lots.
    pub cum_qty: i64,
    /// Fee of this fill in quote units of one tick × one lot; negative is a rebate.
    pub fee: i64,
    /// The venue's order id (0 when the report carries none, e.g. a reject before the venue
    /// created the order).
    pub venue_order_id: u64,
    /// The venue's error code for a reject or cancel reject (Binance: `-5022` post-only would
    /// take, `-2011` unknown order, `-1003` rate limit); 0 for none.
    pub reject_code: i16,
    /// The fill was as taker (the order crossed); post-only orders never are.
    pub taker: bool,
    /// For `Rejected`: the reject was a post-only (GTX, `-5022`) would-take.
    pub post_only_reject: bool,
}

impl ExecReport {
    /// A report of `kind` for order `client_order_id` with this fill (price, quantity of this
    /// fill, cumulative quantity; zeros for a report without one), no fee, no venue order id, no
    /// reject code, maker, not a post-only reject. Set the other fields with struct update syntax.
    pub fn new(
        kind: ExecKind,
        client_order_id: u64,
        last_price: i64,
        last_qty: i64,
        cum_qty: i64,
    ) -> ExecReport {
        ExecReport {
            kind,
            client_order_id,
            last_price,
            last_qty,
            cum_qty,
            fee: 0,
            venue_order_id: 0,
            reject_code: 0,
            taker: false,
            post_only_reject: false,
        }
    }
}

/// An operator command ([`EventKind::Control`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum Command {
    /// Kill switch: cancel everything, quote nothing until `Resume`.
    Halt = 1,
    /// Clear an operator halt or a loss-limit halt.
    Resume = 2,
    /// Quote only the side that reduces the position.
    ReduceOnly = 3,
    /// Leave operator reduce-only.
    Normal = 4,
    /// Cancel every working order once (quoting resumes at the next requote).
    CancelAll = 5,
    /// The host clock failed its check (unsynchronised, or the receive stamps drifted past the
    /// configured limit from the venue's event times): quote nothing until `ClockOk`. Apart from
    /// the operator's halt: neither clears the other.
    ClockFault = 6,
    /// The host clock passes its check again.
    ClockOk = 7,
    /// What a live feed read of the host clock ([`ClockReading`], [`Event::clock_reading`]):
    /// journaled once a second so a session's journal says what its clock was. Changes nothing
    /// in the engine (faults are [`Command::ClockFault`]).
    ClockReading = 8,
    /// The live order-entry link is down, or up again but not yet reconciled with the venue
    /// (the venue's open orders and position not yet applied): quote nothing until
    /// `OrderEntryUp`. Published by a live venue session at start and whenever its WebSocket
    /// API or user data stream is lost. Apart from the operator's halt: neither clears the
    /// other.
    OrderEntryDown = 9,
    /// The order-entry session is connected and reconciled: the engine's view of its orders and
    /// position matches the venue's (every reconciliation event was published before this).
    OrderEntryUp = 10,
    /// The operator's flatten: halt (cancel every working order, quote nothing) and close the
    /// position with IOC orders across the touch until it is flat; until `Resume`.
    Flatten = 11,
    /// The operator reloaded the config: the journal holds the new engine config (a reload
    /// record) right before this event, and the engine has applied it. The event itself marks
    /// every instrument for a requote under the new parameters.
    Reload = 12,
    /// The firm-wide limits, from the bus ([`FirmLimit`], [`Event::firm_limit`]): how far this
    /// instrument's position plus its open orders may reach on each side, given what the other
    /// engines sharing the firm's budget report, and whether the firm's daily loss limit is hit.
    /// In force until the next one; a run without `[firm]` never sends one.
    FirmLimit = 13,
}

/// The firm-wide limits on one instrument ([`Command::FirmLimit`]), in the instrument's
/// notional units (those of `risk.max_notional`: tick·lot for linear and spot, ticks of quote
/// per contract for inverse), applied at the engine's own fair value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmLimit {
    /// The most the position plus the open bids may reach (long), notional units; may be 0 or
    /// negative (no buying, except to close a short).
    pub long_units: i64,
    /// The most the short position plus the open asks may reach, notional units.
    pub short_units: i64,
    /// The firm's daily loss is past its limit: quote nothing while it is.
    pub halt: bool,
}

/// The host clock as a live feed saw it ([`Command::ClockReading`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// Median of (receive stamp − venue event time) over the recent messages, ns (`None`: no
    /// message with a venue time yet).
    pub offset_ns: Option<i64>,
    /// The spread (p90 − p10) of those offsets, ns.
    pub spread_ns: Option<i64>,
    /// `adjtimex` says the kernel clock is synchronised (`None`: it could not be read).
    pub synchronised: Option<bool>,
    /// `adjtimex`'s `maxerror`, µs.
    pub maxerror_us: i64,
    /// `adjtimex`'s `esterror`, µs.
    pub esterror_us: i64,
    /// The configured clock check was failing (quotes pulled).
    pub failing: bool,
}

impl Command {
    fn from_u16(v: u16) -> Option<Command> {
        Some(match v {
            1 => Command::Halt,
            2 => Command::Resume,
            3 => Command::ReduceOnly,
            4 => Command::Normal,
            5 => Command::CancelAll,
            6 => Command::ClockFault,
            7 => Command::ClockOk,
            8 => Command::ClockReading,
            9 => Command::OrderEntryDown,
            10 => Command::OrderEntryUp,
            11 => Command::Flatten,
            12 => Command::Reload,
            13 => Command::FirmLimit,
            _ => return None,
        })
    }
}

/// Flag (exec reports): the fill was as taker.
pub const FLAG_TAKER: u8 = 1 << 4;
/// Flag (exec reports): a post-only would-take reject.
pub const FLAG_POST_ONLY_REJECT: u8 = 1 << 5;
/// Flag (exec reports): a field did not fit its packed width (48 bits for prices, quantities
/// and the fee; the client order id's high 16 bits must be the instrument) and was saturated.
/// The report's numbers cannot be trusted; the engine counts it and ignores it.
pub const FLAG_SATURATED: u8 = 1 << 6;
/// Flag (reconcile order): the venue says the order is open (working).
pub const FLAG_VENUE_OPEN: u8 = 1 << 7;

/// Reject codes the engine tells apart (Binance's).
pub mod reject_code {
    /// Post-only (GTX) order would take: rejected.
    pub const POST_ONLY_WOULD_TAKE: i16 = -5022;
    /// Unknown order (cancel of an order the venue does not have, or no longer has open).
    pub const UNKNOWN_ORDER: i16 = -2011;
    /// Too many requests: rate limit.
    pub const RATE_LIMIT: i16 = -1003;
}

/// The low 48 bits of a word.
const MASK48: u64 = (1 << 48) - 1;
/// Largest value of a 48-bit signed field.
pub const MAX_48: i64 = (1 << 47) - 1;
/// Smallest value of a 48-bit signed field.
pub const MIN_48: i64 = -(1 << 47);

/// `v` clamped to the 48-bit signed range; sets `saturated` when it did not fit.
#[inline]
fn sat48(v: i64, saturated: &mut bool) -> i64 {
    if v > MAX_48 {
        *saturated = true;
        MAX_48
    } else if v < MIN_48 {
        *saturated = true;
        MIN_48
    } else {
        v
    }
}

/// Four 48-bit signed values packed into three words, little-endian, in order.
#[inline]
fn pack48x4(v: [i64; 4]) -> [i64; 3] {
    let mut b = [0u8; 24];
    for (k, x) in v.iter().enumerate() {
        b[6 * k..6 * k + 6].copy_from_slice(&x.to_le_bytes()[..6]);
    }
    let w = |i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[8 * i..8 * i + 8]);
        i64::from_le_bytes(x)
    };
    [w(0), w(1), w(2)]
}

/// The inverse of [`pack48x4`], sign-extending each value.
#[inline]
fn unpack48x4(w: [i64; 3]) -> [i64; 4] {
    let mut b = [0u8; 24];
    for (k, x) in w.iter().enumerate() {
        b[8 * k..8 * k + 8].copy_from_slice(&x.to_le_bytes());
    }
    let mut out = [0i64; 4];
    for (k, o) in out.iter_mut().enumerate() {
        let mut x = [0u8; 8];
        x[..6].copy_from_slice(&b[6 * k..6 * k + 6]);
        *o = (i64::from_le_bytes(x) << 16) >> 16;
    }
    out
}

/// The venue's view of one order ([`EventKind::ReconcileOrder`]), from an open-orders query or
/// an order-status query after a reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueOrder {
    /// The order's client order id as the venue has it (ours, or a foreign one).
    pub client_order_id: u64,
    /// The venue's order id.
    pub venue_order_id: u64,
    /// Side.
    pub side: Side,
    /// Limit price, ticks.
    pub price: i64,
    /// Original quantity, lots.
    pub qty: i64,
    /// Cumulative filled quantity, lots.
    pub cum_qty: i64,
    /// Whether the venue has it open (working); else it is finished.
    pub open: bool,
}

/// The venue's view of the position ([`EventKind::ReconcilePosition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenuePosition {
    /// Signed position, lots (long > 0).
    pub qty: i64,
    /// Average entry price, ticks (rounded to the tick at the edge; 0 when flat).
    pub entry_price: i64,
    /// `false`: a snapshot (taken by asking the venue), holding every fill done by its venue
    /// time. `true`: from the user stream (an account update, which follows the report of the
    /// fill that caused it), the position right after that fill.
    pub streamed: bool,
}

impl Event {
    fn new(kind: EventKind, instrument: InstrumentId, venue_ns: i64, local_ns: i64) -> Event {
        Event {
            kind,
            flags: 0,
            instrument,
            source: 0,
            aux: 0,
            venue_time_ns: venue_ns,
            local_time_ns: local_ns,
            body: [0; 5],
        }
    }

    /// A book level.
    pub fn level(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        level: LevelUpdate,
    ) -> Event {
        let mut e = Event::new(EventKind::BookLevel, instrument, venue_ns, local_ns);
        e.flags = if level.side == Side::Ask { FLAG_ASK } else { 0 }
            | if level.last_in_msg {
                FLAG_LAST_IN_MSG
            } else {
                0
            }
            | if level.snapshot { FLAG_SNAPSHOT } else { 0 };
        e.body = [level.price, level.qty, level.update_id as i64, 0, 0];
        e
    }

    /// Book reset (a snapshot follows); `update_id` is the snapshot's `lastUpdateId`.
    pub fn book_reset(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        update_id: u64,
    ) -> Event {
        let mut e = Event::new(EventKind::BookReset, instrument, venue_ns, local_ns);
        e.body[0] = update_id as i64;
        e
    }

    /// The book is synced as of `update_id`.
    pub fn book_valid(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        update_id: u64,
    ) -> Event {
        let mut e = Event::new(EventKind::BookValid, instrument, venue_ns, local_ns);
        e.body[0] = update_id as i64;
        e
    }

    /// The book is invalid; `last_good` is the last update id applied, `offending` the id that broke it.
    pub fn book_invalid(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        reason: BookStatusReason,
        last_good: u64,
        offending: u64,
    ) -> Event {
        let mut e = Event::new(EventKind::BookInvalid, instrument, venue_ns, local_ns);
        e.aux = reason as u16;
        e.body[0] = last_good as i64;
        e.body[1] = offending as i64;
        e
    }

    /// Best bid/offer.
    pub fn bbo(instrument: InstrumentId, venue_ns: i64, local_ns: i64, top: TopOfBook) -> Event {
        let mut e = Event::new(EventKind::Bbo, instrument, venue_ns, local_ns);
        e.body = [
            top.bid_price,
            top.bid_qty,
            top.ask_price,
            top.ask_qty,
            top.update_id as i64,
        ];
        e
    }

    /// A public trade.
    pub fn trade(instrument: InstrumentId, venue_ns: i64, local_ns: i64, t: TradePrint) -> Event {
        let mut e = Event::new(EventKind::Trade, instrument, venue_ns, local_ns);
        if t.aggressor == Side::Ask {
            e.flags = FLAG_BUYER_MAKER;
        }
        e.body = [t.price, t.qty, t.trade_id as i64, t.count as i64, 0];
        e
    }

    /// An execution report, packed as the module doc says. Values that do not fit are
    /// saturated, never wrapped, and flagged with [`FLAG_SATURATED`].
    pub fn exec(instrument: InstrumentId, venue_ns: i64, local_ns: i64, r: ExecReport) -> Event {
        let mut e = Event::new(EventKind::ExecReport, instrument, venue_ns, local_ns);
        e.aux = r.kind as u16;
        let mut saturated = false;
        let cid_low = if r.client_order_id >> 48 == u64::from(instrument) {
            r.client_order_id & MASK48
        } else {
            saturated = true;
            0
        };
        let tail = pack48x4([
            sat48(r.last_price, &mut saturated),
            sat48(r.last_qty, &mut saturated),
            sat48(r.cum_qty, &mut saturated),
            sat48(r.fee, &mut saturated),
        ]);
        e.flags = if r.taker { FLAG_TAKER } else { 0 }
            | if r.post_only_reject {
                FLAG_POST_ONLY_REJECT
            } else {
                0
            }
            | if saturated { FLAG_SATURATED } else { 0 };
        e.body = [
            ((u64::from(r.reject_code as u16) << 48) | cid_low) as i64,
            r.venue_order_id as i64,
            tail[0],
            tail[1],
            tail[2],
        ];
        e
    }

    /// Reconciliation: the venue's view of one order.
    pub fn reconcile_order(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        o: VenueOrder,
    ) -> Event {
        let mut e = Event::new(EventKind::ReconcileOrder, instrument, venue_ns, local_ns);
        e.flags = if o.side == Side::Ask { FLAG_ASK } else { 0 }
            | if o.open { FLAG_VENUE_OPEN } else { 0 };
        e.body = [
            o.client_order_id as i64,
            o.venue_order_id as i64,
            o.price,
            o.qty,
            o.cum_qty,
        ];
        e
    }

    /// Reconciliation: the venue's view of the position.
    pub fn reconcile_position(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        p: VenuePosition,
    ) -> Event {
        let mut e = Event::new(EventKind::ReconcilePosition, instrument, venue_ns, local_ns);
        e.body = [p.qty, p.entry_price, i64::from(p.streamed), 0, 0];
        e
    }

    /// The venue's mark price and funding: body `[mark, index, funding rate, next funding ms,
    /// 0]`.
    pub fn mark_price(
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        m: MarkPriceUpdate,
    ) -> Event {
        let mut e = Event::new(EventKind::MarkPrice, instrument, venue_ns, local_ns);
        e.body = [
            m.mark_price,
            m.index_price,
            m.funding_rate_e8,
            m.next_funding_ms,
            0,
        ];
        e
    }

    /// A timer tick at local time `local_ns` (the engine's notion of now).
    pub fn timer(local_ns: i64) -> Event {
        Event::new(EventKind::Timer, 0, 0, local_ns)
    }

    /// An operator command for one instrument.
    pub fn control(instrument: InstrumentId, local_ns: i64, cmd: Command) -> Event {
        let mut e = Event::new(EventKind::Control, instrument, 0, local_ns);
        e.aux = cmd as u16;
        e
    }

    /// The execution report, if this is a well-formed [`EventKind::ExecReport`].
    #[inline]
    pub fn as_exec(&self) -> Option<ExecReport> {
        if self.kind != EventKind::ExecReport {
            return None;
        }
        let w0 = self.body[0] as u64;
        let [last_price, last_qty, cum_qty, fee] =
            unpack48x4([self.body[2], self.body[3], self.body[4]]);
        Some(ExecReport {
            kind: ExecKind::from_u16(self.aux)?,
            client_order_id: (u64::from(self.instrument) << 48) | (w0 & MASK48),
            last_price,
            last_qty,
            cum_qty,
            fee,
            venue_order_id: self.body[1] as u64,
            reject_code: (w0 >> 48) as u16 as i16,
            taker: self.flags & FLAG_TAKER != 0,
            post_only_reject: self.flags & FLAG_POST_ONLY_REJECT != 0,
        })
    }

    /// For [`EventKind::ExecReport`]: a field was saturated ([`FLAG_SATURATED`]).
    #[inline]
    pub fn is_saturated(&self) -> bool {
        self.kind == EventKind::ExecReport && self.flags & FLAG_SATURATED != 0
    }

    /// The venue's view of one order, if this is a [`EventKind::ReconcileOrder`].
    #[inline]
    pub fn as_reconcile_order(&self) -> Option<VenueOrder> {
        (self.kind == EventKind::ReconcileOrder).then(|| VenueOrder {
            client_order_id: self.body[0] as u64,
            venue_order_id: self.body[1] as u64,
            side: if self.flags & FLAG_ASK != 0 {
                Side::Ask
            } else {
                Side::Bid
            },
            price: self.body[2],
            qty: self.body[3],
            cum_qty: self.body[4],
            open: self.flags & FLAG_VENUE_OPEN != 0,
        })
    }

    /// The venue's view of the position, if this is a [`EventKind::ReconcilePosition`].
    #[inline]
    pub fn as_reconcile_position(&self) -> Option<VenuePosition> {
        (self.kind == EventKind::ReconcilePosition).then(|| VenuePosition {
            qty: self.body[0],
            entry_price: self.body[1],
            streamed: self.body[2] != 0,
        })
    }

    /// The mark price and funding, if this is a [`EventKind::MarkPrice`].
    #[inline]
    pub fn as_mark_price(&self) -> Option<MarkPriceUpdate> {
        (self.kind == EventKind::MarkPrice).then(|| MarkPriceUpdate {
            mark_price: self.body[0],
            index_price: self.body[1],
            funding_rate_e8: self.body[2],
            next_funding_ms: self.body[3],
        })
    }

    /// A [`Command::ClockReading`] for `instrument` at `local_ns`.
    pub fn clock_reading(instrument: InstrumentId, local_ns: i64, r: &ClockReading) -> Event {
        let mut e = Event::control(instrument, local_ns, Command::ClockReading);
        e.body[0] = r.offset_ns.unwrap_or(i64::MIN);
        e.body[1] = r.spread_ns.unwrap_or(i64::MIN);
        e.body[2] = r.maxerror_us;
        e.body[3] = r.esterror_us;
        e.body[4] = i64::from(r.synchronised.is_some())
            | i64::from(r.synchronised == Some(true)) << 1
            | i64::from(r.failing) << 2;
        e
    }

    /// A firm-wide limit for `instrument` ([`Command::FirmLimit`]).
    pub fn firm_limit(instrument: InstrumentId, local_ns: i64, l: &FirmLimit) -> Event {
        let mut e = Event::control(instrument, local_ns, Command::FirmLimit);
        e.body[0] = l.long_units;
        e.body[1] = l.short_units;
        e.body[2] = i64::from(l.halt);
        e
    }

    /// The firm-wide limit, if this is a well-formed [`Command::FirmLimit`].
    pub fn as_firm_limit(&self) -> Option<FirmLimit> {
        if self.as_control()? != Command::FirmLimit || !matches!(self.body[2], 0 | 1) {
            return None;
        }
        Some(FirmLimit {
            long_units: self.body[0],
            short_units: self.body[1],
            halt: self.body[2] == 1,
        })
    }

    /// The clock reading, if this is a [`Command::ClockReading`].
    pub fn as_clock_reading(&self) -> Option<ClockReading> {
        if self.as_control()? != Command::ClockReading {
            return None;
        }
        let opt = |v: i64| (v != i64::MIN).then_some(v);
        let flags = self.body[4];
        Some(ClockReading {
            offset_ns: opt(self.body[0]),
            spread_ns: opt(self.body[1]),
            synchronised: (flags & 1 != 0).then_some(flags & 2 != 0),
            maxerror_us: self.body[2],
            esterror_us: self.body[3],
            failing: flags & 4 != 0,
        })
    }

    /// The command, if this is a well-formed [`EventKind::Control`].
    #[inline]
    pub fn as_control(&self) -> Option<Command> {
        if self.kind != EventKind::Control {
            return None;
        }
        Command::from_u16(self.aux)
    }

    /// Flags a book level as the last of its venue message (decoders set it once the whole
    /// message is read). No effect on other kinds.
    #[inline]
    pub fn mark_last_in_msg(&mut self) {
        if self.kind == EventKind::BookLevel {
            self.flags |= FLAG_LAST_IN_MSG;
        }
    }

    /// Bytes of [`Event::to_bytes`].
    pub const SIZE: usize = 64;

    /// Version of the byte layout of [`Event::to_bytes`]: 2 since execution reports carry the
    /// venue order id and reject code (48-bit packed fields). Journal writers pin it in their
    /// header hash, so a journal of another layout is not misread. A new kind (such as
    /// [`EventKind::MarkPrice`]) changes no existing layout and leaves it as it is: older
    /// journals read the same, and an older reader calls the new kind undecodable.
    pub const LAYOUT_VERSION: u32 = 2;

    /// The event as 64 little-endian bytes (the journal's payload for it).
    #[inline]
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        self.write_bytes(&mut b);
        b
    }

    /// Writes [`Event::to_bytes`] into `b` (e.g. straight into a journal record).
    #[inline]
    pub fn write_bytes(&self, b: &mut [u8; Self::SIZE]) {
        b[0] = self.kind as u8;
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.instrument.to_le_bytes());
        b[4..6].copy_from_slice(&self.source.to_le_bytes());
        b[6..8].copy_from_slice(&self.aux.to_le_bytes());
        b[8..16].copy_from_slice(&self.venue_time_ns.to_le_bytes());
        b[16..24].copy_from_slice(&self.local_time_ns.to_le_bytes());
        for (k, w) in self.body.iter().enumerate() {
            b[24 + 8 * k..32 + 8 * k].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Decodes [`Event::to_bytes`]; `None` if the bytes are not exactly 64 or the kind is unknown.
    pub fn from_bytes(b: &[u8]) -> Option<Event> {
        let b: &[u8; 64] = b.try_into().ok()?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let i64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            i64::from_le_bytes(w)
        };
        let mut body = [0i64; 5];
        for (k, w) in body.iter_mut().enumerate() {
            *w = i64_at(24 + 8 * k);
        }
        Some(Event {
            kind: EventKind::from_u8(b[0])?,
            flags: b[1],
            instrument: u16_at(2),
            source: u16_at(4),
            aux: u16_at(6),
            venue_time_ns: i64_at(8),
            local_time_ns: i64_at(16),
            body,
        })
    }

    /// The event's kind.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The instrument it concerns.
    #[inline]
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }

    /// Raw flag bits (`FLAG_*`).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The level, if this is a [`EventKind::BookLevel`].
    #[inline]
    pub fn as_level(&self) -> Option<LevelUpdate> {
        (self.kind == EventKind::BookLevel).then(|| LevelUpdate {
            side: if self.flags & FLAG_ASK != 0 {
                Side::Ask
            } else {
                Side::Bid
            },
            price: self.body[0],
            qty: self.body[1],
            update_id: self.body[2] as u64,
            last_in_msg: self.flags & FLAG_LAST_IN_MSG != 0,
            snapshot: self.flags & FLAG_SNAPSHOT != 0,
        })
    }

    /// The top of book, if this is a [`EventKind::Bbo`].
    #[inline]
    pub fn as_bbo(&self) -> Option<TopOfBook> {
        (self.kind == EventKind::Bbo).then(|| TopOfBook {
            bid_price: self.body[0],
            bid_qty: self.body[1],
            ask_price: self.body[2],
            ask_qty: self.body[3],
            update_id: self.body[4] as u64,
        })
    }

    /// The trade, if this is a [`EventKind::Trade`].
    #[inline]
    pub fn as_trade(&self) -> Option<TradePrint> {
        (self.kind == EventKind::Trade).then(|| TradePrint {
            price: self.body[0],
            qty: self.body[1],
            trade_id: self.body[2] as u64,
            count: self.body[3] as u32,
            aggressor: if self.flags & FLAG_BUYER_MAKER != 0 {
                Side::Ask
            } else {
                Side::Bid
            },
        })
    }

    /// For book status events: the update id (reset / valid: as of; invalid: last good).
    #[inline]
    pub fn status_update_id(&self) -> u64 {
        self.body[0] as u64
    }

    /// For [`EventKind::BookInvalid`]: the update id that broke the chain.
    #[inline]
    pub fn offending_update_id(&self) -> u64 {
        self.body[1] as u64
    }

    /// For [`EventKind::BookInvalid`]: why.
    #[inline]
    pub fn status_reason(&self) -> BookStatusReason {
        BookStatusReason::from_u16(self.aux)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_round_trip_through_accessors() {
        let l = LevelUpdate {
            side: Side::Ask,
            price: 618002,
            qty: 14,
            update_id: 5123107837557,
            last_in_msg: true,
            snapshot: false,
        };
        let e = Event::level(3, 1, 2, l);
        assert_eq!(e.as_level(), Some(l));
        let mut first = Event::level(
            3,
            1,
            2,
            LevelUpdate {
                last_in_msg: false,
                ..l
            },
        );
        first.mark_last_in_msg();
        assert_eq!(first, e);
        let mut t = Event::timer(5);
        t.mark_last_in_msg();
        assert_eq!(t, Event::timer(5));
        assert_eq!(e.as_bbo(), None);
        assert_eq!(e.instrument(), 3);
        let t = TradePrint {
            price: 1,
            qty: 2,
            trade_id: 3,
            count: 1,
            aggressor: Side::Ask,
        };
        assert_eq!(Event::trade(0, 0, 0, t).as_trade(), Some(t));
        let top = TopOfBook {
            bid_price: 1,
            bid_qty: 2,
            ask_price: 3,
            ask_qty: 4,
            update_id: 5,
        };
        assert_eq!(Event::bbo(0, 0, 0, top).as_bbo(), Some(top));
        let inv = Event::book_invalid(0, 0, 0, BookStatusReason::SequenceGap, 10, 12);
        assert_eq!(inv.status_reason(), BookStatusReason::SequenceGap);
        assert_eq!(inv.status_update_id(), 10);
        assert_eq!(inv.offending_update_id(), 12);
        for k in 0..=255u8 {
            if let Some(kind) = EventKind::from_u8(k) {
                assert_eq!(kind as u8, k);
            }
        }
        for ev in [e, inv, Event::bbo(1, 2, 3, top), Event::timer(9)] {
            assert_eq!(Event::from_bytes(&ev.to_bytes()), Some(ev));
        }
        assert_eq!(Event::from_bytes(&[0u8; 64]), None);
        assert_eq!(Event::from_bytes(&[1u8; 63]), None);
    }

    fn exec_report(cid: u64) -> ExecReport {
        ExecReport {
            kind: ExecKind::PartialFill,
            client_order_id: cid,
            last_price: 618_002,
            last_qty: 14,
            cum_qty: 20,
            fee: -37,
            venue_order_id: 8_389_765_123_456_789,
            reject_code: 0,
            taker: true,
            post_only_reject: false,
        }
    }

    #[test]
    fn exec_reports_carry_venue_id_reject_code_and_negative_fees() {
        let cid = 3u64 << 48 | 7 << 40 | 123_456;
        let r = exec_report(cid);
        let e = Event::exec(3, 1, 2, r);
        assert_eq!(e.as_exec(), Some(r));
        assert!(!e.is_saturated());
        assert_eq!(Event::from_bytes(&e.to_bytes()), Some(e));
        let rej = ExecReport {
            kind: ExecKind::Rejected,
            last_price: 0,
            last_qty: 0,
            cum_qty: 0,
            fee: 0,
            venue_order_id: 0,
            reject_code: reject_code::POST_ONLY_WOULD_TAKE,
            taker: false,
            post_only_reject: true,
            ..r
        };
        let e = Event::exec(3, 1, 2, rej);
        assert_eq!(e.as_exec(), Some(rej));
        // The byte layout of the module doc.
        let b = e.to_bytes();
        assert_eq!(&b[24..30], &(cid & MASK48).to_le_bytes()[..6]);
        assert_eq!(&b[30..32], &(-5022i16).to_le_bytes());
        let b = Event::exec(3, 1, 2, r).to_bytes();
        assert_eq!(&b[32..40], &r.venue_order_id.to_le_bytes());
        assert_eq!(&b[40..46], &618_002i64.to_le_bytes()[..6]);
        assert_eq!(&b[46..52], &14i64.to_le_bytes()[..6]);
        assert_eq!(&b[52..58], &20i64.to_le_bytes()[..6]);
        assert_eq!(&b[58..64], &(-37i64).to_le_bytes()[..6]);
    }

    #[test]
    fn exec_extremes_fit_exactly_and_beyond_saturate_with_a_flag() {
        let cid = u64::from(u16::MAX) << 48 | MASK48;
        let edge = ExecReport {
            last_price: MAX_48,
            last_qty: MIN_48,
            cum_qty: MAX_48,
            fee: MIN_48,
            venue_order_id: u64::MAX,
            reject_code: i16::MIN,
            ..exec_report(cid)
        };
        let e = Event::exec(u16::MAX, 0, 0, edge);
        assert_eq!(e.as_exec(), Some(edge));
        assert!(!e.is_saturated());
        let e = Event::exec(
            u16::MAX,
            0,
            0,
            ExecReport {
                reject_code: i16::MAX,
                ..edge
            },
        );
        assert_eq!(e.as_exec().map(|r| r.reject_code), Some(i16::MAX));

        let over = ExecReport {
            last_price: MAX_48 + 1,
            last_qty: i64::MIN,
            cum_qty: i64::MAX,
            fee: MIN_48 - 1,
            ..exec_report(0)
        };
        let e = Event::exec(0, 0, 0, over);
        assert!(e.is_saturated());
        assert_ne!(e.flags() & FLAG_SATURATED, 0);
        let got = e.as_exec().unwrap();
        assert_eq!(
            (got.last_price, got.last_qty, got.cum_qty, got.fee),
            (MAX_48, MIN_48, MAX_48, MIN_48)
        );
        // A client order id of another instrument does not fit: id 0 of this one, flagged.
        let e = Event::exec(2, 0, 0, exec_report(5u64 << 48 | 9));
        assert!(e.is_saturated());
        assert_eq!(e.as_exec().map(|r| r.client_order_id), Some(2u64 << 48));
    }

    #[test]
    fn reconcile_events_round_trip() {
        let o = VenueOrder {
            client_order_id: 1u64 << 48 | 5,
            venue_order_id: 42,
            side: Side::Ask,
            price: 618_002,
            qty: 3,
            cum_qty: 1,
            open: true,
        };
        let e = Event::reconcile_order(1, 2, 3, o);
        assert_eq!(e.kind(), EventKind::ReconcileOrder);
        assert_eq!(e.as_reconcile_order(), Some(o));
        assert_eq!(e.as_reconcile_position(), None);
        assert_eq!(e.as_exec(), None);
        let closed = VenueOrder {
            side: Side::Bid,
            open: false,
            ..o
        };
        assert_eq!(
            Event::reconcile_order(1, 2, 3, closed).as_reconcile_order(),
            Some(closed)
        );
        let p = VenuePosition {
            qty: -7,
            entry_price: 618_000,
            streamed: false,
        };
        let e = Event::reconcile_position(1, 2, 3, p);
        assert_eq!(e.as_reconcile_position(), Some(p));
        assert_eq!(e.as_reconcile_order(), None);
        let streamed = VenuePosition {
            streamed: true,
            ..p
        };
        let s = Event::reconcile_position(1, 2, 3, streamed);
        assert_eq!(s.as_reconcile_position(), Some(streamed));
        for ev in [e, s, Event::reconcile_order(1, 2, 3, o)] {
            assert_eq!(Event::from_bytes(&ev.to_bytes()), Some(ev));
        }
        assert_eq!(EventKind::from_u8(10), Some(EventKind::ReconcileOrder));
        assert_eq!(EventKind::from_u8(11), Some(EventKind::ReconcilePosition));
        assert_eq!(EventKind::from_u8(12), Some(EventKind::MarkPrice));
        assert_eq!(EventKind::from_u8(13), None);
    }

    #[test]
    fn mark_prices_round_trip_with_negative_funding_and_the_byte_layout() {
        let m = MarkPriceUpdate {
            mark_price: 117_942,
            index_price: 117_846,
            funding_rate_e8: -38_167,
            next_funding_ms: 1_562_306_400_000,
        };
        let e = Event::mark_price(4, 1_562_305_380_000_000_000, 9, m);
        assert_eq!(e.kind(), EventKind::MarkPrice);
        assert_eq!(e.instrument(), 4);
        assert_eq!(e.as_mark_price(), Some(m));
        assert_eq!(
            (e.as_trade(), e.as_bbo(), e.as_level(), e.as_exec()),
            (None, None, None, None)
        );
        assert_eq!(Event::timer(1).as_mark_price(), None);
        let b = e.to_bytes();
        assert_eq!(b[0], 12);
        assert_eq!(&b[24..32], &117_942i64.to_le_bytes());
        assert_eq!(&b[32..40], &117_846i64.to_le_bytes());
        assert_eq!(&b[40..48], &(-38_167i64).to_le_bytes());
        assert_eq!(&b[48..56], &1_562_306_400_000i64.to_le_bytes());
        assert_eq!(&b[56..64], &[0u8; 8]);
        assert_eq!(Event::from_bytes(&b), Some(e));
        assert!(EventKind::MarkPrice.is_market_data() && !EventKind::MarkPrice.is_book());
        assert!(EventKind::BookInvalid.is_book() && EventKind::Trade.is_market_data());
        assert!(!EventKind::ExecReport.is_market_data() && !EventKind::Timer.is_market_data());
    }

    proptest::proptest! {
        #[test]
        fn mark_price_round_trips_through_bytes(
            inst in proptest::prelude::any::<u16>(),
            times in proptest::array::uniform2(proptest::prelude::any::<i64>()),
            vals in proptest::array::uniform4(proptest::prelude::any::<i64>()),
        ) {
            let m = MarkPriceUpdate {
                mark_price: vals[0],
                index_price: vals[1],
                funding_rate_e8: vals[2],
                next_funding_ms: vals[3],
            };
            let e = Event::mark_price(inst, times[0], times[1], m);
            proptest::prop_assert_eq!(e.as_mark_price(), Some(m));
            let back = Event::from_bytes(&e.to_bytes());
            proptest::prop_assert_eq!(back, Some(e));
            proptest::prop_assert_eq!(back.and_then(|e| e.as_mark_price()), Some(m));
        }

        #[test]
        fn exec_round_trips_in_range_and_saturates_out_of_it(
            inst in proptest::prelude::any::<u16>(),
            low in 0u64..=MASK48,
            venue_order_id in proptest::prelude::any::<u64>(),
            reject_code in proptest::prelude::any::<i16>(),
            vals in proptest::array::uniform4(proptest::prelude::any::<i64>()),
            small in proptest::array::uniform4(MIN_48..=MAX_48),
            kind in 1u16..=7,
            taker in proptest::prelude::any::<bool>(),
        ) {
            let kind = ExecKind::from_u16(kind).unwrap();
            let cid = u64::from(inst) << 48 | low;
            let mk = |v: [i64; 4]| ExecReport {
                kind,
                client_order_id: cid,
                last_price: v[0],
                last_qty: v[1],
                cum_qty: v[2],
                fee: v[3],
                venue_order_id,
                reject_code,
                taker,
                post_only_reject: !taker,
            };
            let r = mk(small);
            let e = Event::exec(inst, 1, 2, r);
            proptest::prop_assert_eq!(e.as_exec(), Some(r));
            proptest::prop_assert!(!e.is_saturated());
            proptest::prop_assert_eq!(Event::from_bytes(&e.to_bytes()), Some(e));
            let r = mk(vals);
            let e = Event::exec(inst, 1, 2, r);
            let fits = vals.iter().all(|v| (MIN_48..=MAX_48).contains(v));
            proptest::prop_assert_eq!(e.is_saturated(), !fits);
            let got = e.as_exec().unwrap();
            let clamped = vals.map(|v| v.clamp(MIN_48, MAX_48));
            proptest::prop_assert_eq!(
                [got.last_price, got.last_qty, got.cum_qty, got.fee],
                clamped
            );
            proptest::prop_assert_eq!(got.client_order_id, cid);
        }

        #[test]
        fn garbage_bytes_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 64)) {
            if let Some(e) = Event::from_bytes(&b) {
                let _ = (e.as_exec(), e.as_reconcile_order(), e.as_reconcile_position());
                let _ = (e.as_level(), e.as_bbo(), e.as_trade(), e.as_control());
                let _ = (e.as_mark_price(), e.as_clock_reading());
                proptest::prop_assert_eq!(Event::from_bytes(&e.to_bytes()), Some(e));
            }
        }
    }
}
