//! The engine's input events: fixed-size, `#[repr(C)]`, `Copy`, one 64-byte cache line.
//!
//! Every event carries its kind, instrument, source, the venue's event time and the local receive
//! time (both ns). The body is five 64-bit words whose meaning depends on the kind; typed
//! constructors and accessors ([`Event::level`], [`Event::bbo`], ...) are the only way in and out,
//! so there is no `unsafe` and no invalid state to read.

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
            _ => return None,
        })
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
            _ => BookStatusReason::None,
        }
    }
}

/// Flag: the level is on the ask side (else bid).
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
    /// The fill was as taker (the order crossed); post-only orders never are.
    pub taker: bool,
    /// For `Rejected`: the reject was a post-only (GTX, `-5022`) would-take.
    pub post_only_reject: bool,
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
}

impl Command {
    fn from_u16(v: u16) -> Option<Command> {
        Some(match v {
            1 => Command::Halt,
            2 => Command::Resume,
            3 => Command::ReduceOnly,
            4 => Command::Normal,
            5 => Command::CancelAll,
            _ => return None,
        })
    }
}

/// Flag (exec reports): the fill was as taker.
pub const FLAG_TAKER: u8 = 1 << 4;
/// Flag (exec reports): a post-only would-take reject.
pub const FLAG_POST_ONLY_REJECT: u8 = 1 << 5;

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

    /// An execution report.
    pub fn exec(instrument: InstrumentId, venue_ns: i64, local_ns: i64, r: ExecReport) -> Event {
        let mut e = Event::new(EventKind::ExecReport, instrument, venue_ns, local_ns);
        e.aux = r.kind as u16;
        e.flags = if r.taker { FLAG_TAKER } else { 0 }
            | if r.post_only_reject {
                FLAG_POST_ONLY_REJECT
            } else {
                0
            };
        e.body = [
            r.client_order_id as i64,
            r.last_price,
            r.last_qty,
            r.cum_qty,
            r.fee,
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
        Some(ExecReport {
            kind: ExecKind::from_u16(self.aux)?,
            client_order_id: self.body[0] as u64,
            last_price: self.body[1],
            last_qty: self.body[2],
            cum_qty: self.body[3],
            fee: self.body[4],
            taker: self.flags & FLAG_TAKER != 0,
            post_only_reject: self.flags & FLAG_POST_ONLY_REJECT != 0,
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
}
