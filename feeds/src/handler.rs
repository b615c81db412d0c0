//! The feed handler: decode + book sync per instrument, the one place that turns venue messages
//! into the engine's events. `ringmaker book`, the backtest, the paper pipeline's feed thread and
//! (later) the live feed all go through it.
//!
//! - [`FeedHandler`] holds the decoder and one [`BookSync`] per instrument, each with the sync rule
//!   of its venue flavour ([`sync_rule`]); it decodes one message and sends the events it produces,
//!   in order, to a [`SyncSink`].
//! - It keeps its own copy of each book, fed the same events, and believes no diff that leaves the
//!   book crossed (best bid at or above best ask): a level update was missed, whatever the update
//!   ids say. The book is declared invalid (`BookInvalid { Crossed }`: the engine pulls its
//!   quotes), sync waits for a new snapshot and the source is asked for one, as after a gap
//!   (`docs/STRATEGY.md`, "Market data that cannot be true").
//! - [`MarketFeed`] puts a handler on a [`MarketSource`]: it reads, forces the receive time
//!   monotonic, stamps every event of a message with that time, and asks the source for a fresh
//!   snapshot whenever an instrument's book needs one (at the start and after every gap).
//!
//! # Time
//!
//! A message stamped earlier than the one before it (a recorder's streams are not strictly
//! ordered) is taken to arrive at the previous message's time, and every event it produces —
//! including diffs replayed from the sync buffer when a snapshot arrives — carries that time. So
//! everything downstream (engine, venue, journal) sees one non-decreasing clock.

use crate::binance::decode::{DecodeError, Decoder, DepthHeader, Message};
use crate::binance::sync::{BookSync, SyncRule, SyncSink, SyncState, SyncStats};
use crate::source::{Input, MarketSource, SnapshotReply, SourceError};
use engine::{
    BookStatusReason, Config, Event, EventKind, Instrument, InstrumentId, OrderBook, VenueFlavour,
};

/// The furthest an input's receive time may be ahead of the input before it: one hour. An input
/// further ahead (a garbled timestamp, a recording spliced from two sessions) is skipped and
/// counted ([`FeedStats::time_jumps`], [`Step::TimeJump`]): believed, it would make every
/// consumer of time (timer ticks, per-second statistics, the journal) fill the gap. A quiet hour
/// is still one input after the other; a recording that really resumes after more than an hour
/// is two recordings, to be run apart.
pub const MAX_TIME_JUMP_NS: i64 = 3_600 * 1_000_000_000;

/// The book-sync rule of a venue flavour.
pub fn sync_rule(venue: VenueFlavour) -> SyncRule {
    match venue {
        // COIN-M diffs carry `pu` like USDⓈ-M's.
        VenueFlavour::BinanceUsdm | VenueFlavour::BinanceCoinm => SyncRule::Futures,
        VenueFlavour::BinanceSpot => SyncRule::Spot,
    }
}

/// Counters of the handler; all monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Messages decoded (good or bad).
    pub messages: u64,
    /// Messages that failed to decode (skipped; a lost diff then shows as a gap).
    pub decode_errors: u64,
    /// Depth diffs decoded (applied or not).
    pub depth_messages: u64,
    /// Best bid/offer events passed on.
    pub bbo: u64,
    /// Trade events passed on.
    pub trades: u64,
    /// Mark price events passed on (`markPriceUpdate`).
    pub mark_prices: u64,
    /// Messages decoded but of no interest (other streams, unknown symbols).
    pub ignored: u64,
    /// Snapshots asked of the source (at the start and after gaps).
    pub snapshot_requests: u64,
    /// Requests the source could not answer.
    pub snapshots_unavailable: u64,
    /// Inputs skipped because their receive time was more than [`MAX_TIME_JUMP_NS`] ahead.
    pub time_jumps: u64,
    /// Diffs (or snapshots) that left a book crossed: each invalidated it and asked for a
    /// snapshot.
    pub crossed_books: u64,
}

#[derive(Debug)]
struct Book {
    sync: BookSync,
    /// The handler's own copy of the book, fed the events sync produces, to catch a diff that
    /// leaves it crossed (see [`FeedHandler`]).
    check: OrderBook,
    /// The rule is taken from the first diff (`pu` present: futures).
    auto_rule: bool,
    /// A snapshot was asked for and has not arrived.
    requested: bool,
}

/// Decoder plus one [`BookSync`] per instrument.
#[derive(Debug)]
pub struct FeedHandler {
    decoder: Decoder,
    books: Vec<Book>,
    stats: FeedStats,
}

impl FeedHandler {
    /// A handler for `instruments` (ids are positions), each with its own rule; `None` takes the
    /// rule from the first diff (one with `pu` is futures, one without spot).
    pub fn new(instruments: &[(Instrument, Option<SyncRule>)]) -> FeedHandler {
        let plain: Vec<Instrument> = instruments.iter().map(|i| i.0).collect();
        Self::with_decoder(
            Decoder::new(&plain),
            &instruments.iter().map(|i| i.1).collect::<Vec<_>>(),
        )
    }

    /// A handler for every instrument of an engine config, each with its venue flavour's rule.
    pub fn from_config(cfg: &Config) -> FeedHandler {
        let instruments: Vec<Instrument> = cfg.instruments.iter().map(|i| i.instrument).collect();
        let rules: Vec<_> = cfg
            .instruments
            .iter()
            .map(|i| Some(sync_rule(i.venue)))
            .collect();
        Self::with_decoder_and_window(Decoder::new(&instruments), &rules, cfg.book_slots)
    }

    /// All instruments with one rule.
    pub fn with_rule(instruments: &[Instrument], rule: SyncRule) -> FeedHandler {
        let v: Vec<_> = instruments.iter().map(|i| (*i, Some(rule))).collect();
        FeedHandler::new(&v)
    }

    /// A handler with no instrument, for sources that give events already synced (a journal):
    /// it passes them through and asks for no snapshot.
    pub fn passthrough() -> FeedHandler {
        Self::with_decoder(Decoder::new(&[]), &[])
    }

    /// With a decoder of the caller's (e.g. one that adopts the first symbol it sees); `rules`
    /// by instrument id.
    pub fn with_decoder(decoder: Decoder, rules: &[Option<SyncRule>]) -> FeedHandler {
        Self::with_decoder_and_window(decoder, rules, OrderBook::DEFAULT_SLOTS)
    }

    /// Like [`FeedHandler::with_decoder`], with the books' window (ticks) for the crossed-book
    /// check: the engine's, so both see the same levels.
    pub fn with_decoder_and_window(
        decoder: Decoder,
        rules: &[Option<SyncRule>],
        book_slots: usize,
    ) -> FeedHandler {
        let books = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Book {
                // Until the first diff says otherwise, an unknown rule is futures: a snapshot is
                // the same for both, and the first diff sets the rule before it is used.
                sync: BookSync::new(r.unwrap_or(SyncRule::Futures), i as InstrumentId),
                check: OrderBook::new(book_slots),
                auto_rule: r.is_none(),
                requested: false,
            })
            .collect();
        FeedHandler {
            decoder,
            books,
            stats: FeedStats::default(),
        }
    }

    /// Decodes one message and sends the events it produces to `sink`. A decode error changes
    /// nothing; if the message was a diff, the next diff will not chain and sync reports the gap.
    #[inline]
    pub fn on_message(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        sink: &mut impl SyncSink,
    ) -> Result<Message, DecodeError> {
        self.on_message_for(json, local_ns, None, sink)
    }

    /// Like [`FeedHandler::on_message`], for a message from a source bound to `instrument`
    /// (`Some`: a recording of that instrument; see [`Decoder::decode_for`]) or to none.
    #[inline]
    pub fn on_message_for(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        instrument: Option<InstrumentId>,
        sink: &mut impl SyncSink,
    ) -> Result<Message, DecodeError> {
        self.stats.messages += 1;
        let decoded = match instrument {
            Some(id) => self.decoder.decode_for(json, local_ns, id),
            None => self.decoder.decode(json, local_ns),
        };
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.stats.decode_errors += 1;
                return Err(e);
            }
        };
        match msg {
            Message::Depth(h) => {
                self.stats.depth_messages += 1;
                if let Some(b) = self.books.get_mut(h.instrument as usize) {
                    if b.auto_rule {
                        b.auto_rule = false;
                        b.sync.set_rule(if h.prev_final_id.is_some() {
                            SyncRule::Futures
                        } else {
                            SyncRule::Spot
                        });
                    }
                    let mut checked = Checked {
                        book: &mut b.check,
                        inner: sink,
                        crossed: false,
                    };
                    b.sync.on_diff(&h, self.decoder.levels(), &mut checked);
                    if checked.crossed {
                        self.stats.crossed_books += 1;
                        b.sync.invalidate(
                            BookStatusReason::Crossed,
                            h.final_id,
                            h.venue_time_ns,
                            h.local_time_ns,
                            &mut checked,
                        );
                    }
                }
            }
            Message::Snapshot(h) => {
                if let Some(b) = self.books.get_mut(h.instrument as usize) {
                    b.requested = false;
                    let mut checked = Checked {
                        book: &mut b.check,
                        inner: sink,
                        crossed: false,
                    };
                    b.sync.on_snapshot(&h, self.decoder.levels(), &mut checked);
                    if checked.crossed {
                        self.stats.crossed_books += 1;
                        b.sync.invalidate(
                            BookStatusReason::Crossed,
                            h.last_update_id,
                            h.venue_time_ns,
                            h.local_time_ns,
                            &mut checked,
                        );
                    }
                }
            }
            Message::Event(e) => {
                match e.kind() {
                    EventKind::Bbo => self.stats.bbo += 1,
                    EventKind::Trade => self.stats.trades += 1,
                    EventKind::MarkPrice => self.stats.mark_prices += 1,
                    _ => {}
                }
                sink.event(&e);
            }
            Message::Ignored(_) => self.stats.ignored += 1,
        }
        Ok(msg)
    }

    /// The connection for `instrument` was lost, or its events could not be delivered (a full
    /// ring): sync drops its buffer, says `BookInvalid { Disconnected }` to `sink` if the book
    /// was valid, and waits for a new snapshot (which the [`MarketFeed`] then asks for).
    pub fn disconnect(
        &mut self,
        instrument: InstrumentId,
        venue_ns: i64,
        local_ns: i64,
        sink: &mut impl SyncSink,
    ) {
        if let Some(b) = self.books.get_mut(instrument as usize) {
            let mut checked = Checked {
                book: &mut b.check,
                inner: sink,
                crossed: false,
            };
            b.sync.on_disconnect(venue_ns, local_ns, &mut checked);
        }
    }

    /// Instruments whose book needs a snapshot not yet asked for; marks them asked.
    fn take_snapshot_needs(&mut self, mut f: impl FnMut(InstrumentId)) {
        for (i, b) in self.books.iter_mut().enumerate() {
            if !b.requested && b.sync.needs_snapshot() {
                b.requested = true;
                f(i as InstrumentId);
            }
        }
    }

    /// Whether every instrument's book is synced (valid).
    #[inline]
    pub fn all_synced(&self) -> bool {
        self.books
            .iter()
            .all(|b| matches!(b.sync.state(), SyncState::Synced { .. }))
    }

    /// One instrument's sync machine.
    pub fn sync(&self, instrument: InstrumentId) -> Option<&BookSync> {
        self.books.get(instrument as usize).map(|b| &b.sync)
    }

    /// Sync counters of one instrument.
    pub fn sync_stats(&self, instrument: InstrumentId) -> SyncStats {
        self.sync(instrument)
            .map(BookSync::stats)
            .unwrap_or_default()
    }

    /// Sync counters summed over every instrument.
    pub fn sync_totals(&self) -> SyncStats {
        self.books.iter().fold(SyncStats::default(), |a, b| {
            let s = b.sync.stats();
            SyncStats {
                snapshots: a.snapshots + s.snapshots,
                diffs_applied: a.diffs_applied + s.diffs_applied,
                diffs_stale: a.diffs_stale + s.diffs_stale,
                gaps: a.gaps + s.gaps,
                snapshots_too_old: a.snapshots_too_old + s.snapshots_too_old,
                resyncs: a.resyncs + s.resyncs,
                buffer_overflows: a.buffer_overflows + s.buffer_overflows,
            }
        })
    }

    /// The rule in force for `instrument` (`None` while it is still to be taken from a diff).
    pub fn rule(&self, instrument: InstrumentId) -> Option<SyncRule> {
        let b = self.books.get(instrument as usize)?;
        (!b.auto_rule).then(|| b.sync.rule())
    }

    /// Handler counters.
    pub fn stats(&self) -> FeedStats {
        self.stats
    }

    /// The decoder (its instruments and counters).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Number of instruments.
    pub fn instruments(&self) -> usize {
        self.books.len()
    }
}

/// Applies the book events on their way to the caller's sink to the handler's own copy of the
/// book, and notes a diff that leaves it crossed.
struct Checked<'a, S> {
    book: &'a mut OrderBook,
    inner: &'a mut S,
    crossed: bool,
}

impl<S: SyncSink> SyncSink for Checked<'_, S> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        // A refused level (non-positive price) changes nothing here; the engine counts it.
        let _ = self.book.apply(ev);
        self.inner.event(ev);
    }

    #[inline]
    fn diff_applied(&mut self, hdr: &DepthHeader) {
        if self.book.is_valid() && self.book.is_crossed() {
            // Disowned: the caller hears of the invalidation that follows, not of a book to
            // use.
            self.crossed = true;
            return;
        }
        self.inner.diff_applied(hdr);
    }
}

/// What one [`MarketFeed::next`] did.
#[derive(Debug)]
pub enum Step {
    /// A message or a batch of events went through; its events (possibly none) reached the sink,
    /// all stamped `local_ns`.
    Input {
        /// The input's (monotonic) local receive time, ns.
        local_ns: i64,
    },
    /// The source could not give an input (a bad line): skipped.
    SourceError(SourceError),
    /// A message failed to decode: skipped.
    DecodeError {
        /// Its (monotonic) local receive time, ns.
        local_ns: i64,
        /// Why.
        error: DecodeError,
    },
    /// The input's receive time was more than [`MAX_TIME_JUMP_NS`] after the previous one's:
    /// skipped.
    TimeJump {
        /// Its receive time, ns.
        local_ns: i64,
        /// The previous input's, ns.
        previous_ns: i64,
    },
    /// The gate said stop before the input at `local_ns` was decoded (it is not processed).
    Stopped {
        /// The input's local receive time, ns.
        local_ns: i64,
    },
}

/// Stamps every event with the message's time on its way to the caller's sink.
struct Stamped<'a, S> {
    local_ns: i64,
    inner: &'a mut S,
}

impl<S: SyncSink> SyncSink for Stamped<'_, S> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        let mut e = *ev;
        e.local_time_ns = self.local_ns;
        self.inner.event(&e);
    }

    #[inline]
    fn diff_applied(&mut self, hdr: &DepthHeader) {
        self.inner.diff_applied(hdr);
    }
}

/// A [`FeedHandler`] reading a [`MarketSource`].
#[derive(Debug)]
pub struct MarketFeed<S> {
    source: S,
    handler: FeedHandler,
    time: FeedTime,
}

/// Receive time as the feed has seen it.
#[derive(Debug, Clone, Copy)]
struct FeedTime {
    first_ns: i64,
    last_ns: i64,
    valid_ns: i64,
}

impl FeedTime {
    /// Time moves to `t`: the time since the last input counts as valid if every book was.
    #[inline]
    fn advance(&mut self, t: i64, all_valid: bool) {
        if self.last_ns == i64::MIN {
            self.first_ns = t;
        } else if all_valid {
            self.valid_ns += t - self.last_ns;
        }
        self.last_ns = t;
    }
}

impl<S: MarketSource> MarketFeed<S> {
    /// `handler` reading `source`.
    pub fn new(source: S, handler: FeedHandler) -> MarketFeed<S> {
        MarketFeed {
            source,
            handler,
            time: FeedTime {
                first_ns: i64::MIN,
                last_ns: i64::MIN,
                valid_ns: 0,
            },
        }
    }

    /// The next input, its events to `sink`. `None` at the end of the source.
    #[inline]
    pub fn next(&mut self, sink: &mut impl SyncSink) -> Option<Step> {
        self.next_gated(sink, |_| true)
    }

    /// Like [`MarketFeed::next`], but `gate(local_ns)` is asked before a message is decoded
    /// (the paper feed waits there until the message is due, and stops there): `false` stops.
    pub fn next_gated(
        &mut self,
        sink: &mut impl SyncSink,
        mut gate: impl FnMut(i64) -> bool,
    ) -> Option<Step> {
        self.ask_snapshots();
        let input = match self.source.next_input()? {
            Ok(i) => i,
            Err(e) => return Some(Step::SourceError(e)),
        };
        let local_ns = match &input {
            Input::Message { local_ns, .. }
            | Input::Events { local_ns, .. }
            | Input::Disconnected { local_ns, .. } => *local_ns,
        };
        let previous_ns = self.time.last_ns;
        if previous_ns != i64::MIN && local_ns.saturating_sub(previous_ns) > MAX_TIME_JUMP_NS {
            self.handler.stats.time_jumps += 1;
            return Some(Step::TimeJump {
                local_ns,
                previous_ns,
            });
        }
        let t = local_ns.max(previous_ns);
        if !gate(t) {
            return Some(Step::Stopped { local_ns: t });
        }
        self.time.advance(t, self.handler.all_synced());
        let mut stamped = Stamped {
            local_ns: t,
            inner: sink,
        };
        let step = match input {
            Input::Message {
                json, instrument, ..
            } => match self
                .handler
                .on_message_for(json, t, instrument, &mut stamped)
            {
                Ok(_) => Step::Input { local_ns: t },
                Err(error) => Step::DecodeError { local_ns: t, error },
            },
            Input::Events { events, .. } => {
                for ev in events {
                    stamped.event(ev);
                }
                Step::Input { local_ns: t }
            }
            Input::Disconnected { instrument, .. } => {
                self.handler.disconnect(instrument, 0, t, &mut stamped);
                Step::Input { local_ns: t }
            }
        };
        self.ask_snapshots();
        Some(step)
    }

    /// Receive time from the first input to the last, and the part of it during which every
    /// instrument's book was synced (ns). A handler with no book (a journal's events) counts
    /// all of it as valid.
    pub fn book_time(&self) -> (i64, i64) {
        let t = self.time;
        if t.first_ns == i64::MIN {
            return (0, 0);
        }
        (t.valid_ns, t.last_ns - t.first_ns)
    }

    /// Asks the source for every snapshot a book needs and has not asked for yet.
    fn ask_snapshots(&mut self) {
        let (handler, source) = (&mut self.handler, &mut self.source);
        let mut unavailable = 0;
        let mut asked = 0;
        handler.take_snapshot_needs(|i| {
            asked += 1;
            if source.request_snapshot(i) == SnapshotReply::Unavailable {
                unavailable += 1;
            }
        });
        handler.stats.snapshot_requests += asked;
        handler.stats.snapshots_unavailable += unavailable;
    }

    /// The handler.
    pub fn handler(&self) -> &FeedHandler {
        &self.handler
    }

    /// The source, to act on it directly (tests, counters).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The handler, to reset an instrument's sync ([`FeedHandler::disconnect`]).
    pub fn handler_mut(&mut self) -> &mut FeedHandler {
        &mut self.handler
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Inputs read, and inputs skipped (bad lines, messages that failed to decode, time jumps).
    pub fn counts(&self) -> (u64, u64) {
        let c = self.source.counts();
        let h = &self.handler.stats;
        (c.read, c.bad + h.decode_errors + h.time_jumps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{MemorySource, SourceCounts};
    use engine::{EventKind, Instrument};

    fn inst() -> Instrument {
        Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "0").unwrap()
    }

    fn diff(t: i64, first: u64, last: u64, prev: u64) -> (i64, Vec<u8>) {
        (
            t,
            format!(
                r#"{{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":{first},"u":{last},"pu":{prev},"b":[["1.0","1"]],"a":[]}}}}"#
            )
            .into_bytes(),
        )
    }

    fn snapshot(t: i64, id: u64) -> (i64, Vec<u8>) {
        (
            t,
            format!(r#"{{"lastUpdateId":{id},"bids":[["0.9","2"]],"asks":[["1.1","3"]]}}"#)
                .into_bytes(),
        )
    }

    /// A source that counts requests and can refuse them.
    struct Counting<'a> {
        inner: MemorySource<'a>,
        refuse: bool,
        asked: Vec<InstrumentId>,
    }

    impl MarketSource for Counting<'_> {
        fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
            self.inner.next_input()
        }
        fn request_snapshot(&mut self, i: InstrumentId) -> SnapshotReply {
            self.asked.push(i);
            if self.refuse {
                SnapshotReply::Unavailable
            } else {
                SnapshotReply::Pending
            }
        }
        fn counts(&self) -> SourceCounts {
            self.inner.counts()
        }
    }

    fn run(
        lines: &[(i64, Vec<u8>)],
        refuse: bool,
    ) -> (
        Vec<Event>,
        Vec<InstrumentId>,
        FeedStats,
        (i64, i64),
        SyncStats,
    ) {
        let mut feed = MarketFeed::new(
            Counting {
                inner: MemorySource::new(lines),
                refuse,
                asked: Vec::new(),
            },
            FeedHandler::with_rule(&[inst()], SyncRule::Futures),
        );
        let mut out = Vec::new();
        while feed.next(&mut out).is_some() {}
        let (stats, time, sync) = (
            feed.handler().stats(),
            feed.book_time(),
            feed.handler().sync_totals(),
        );
        (out, feed.source.asked.clone(), stats, time, sync)
    }

    #[test]
    fn a_snapshot_is_asked_for_at_the_start_and_again_after_a_gap() {
        let lines = [
            diff(100, 5, 9, 4),
            snapshot(110, 7),
            diff(120, 10, 12, 9),
            // 13..=14 missing: a gap.
            diff(130, 15, 16, 14),
            diff(140, 17, 18, 16),
            snapshot(150, 17),
            diff(160, 19, 20, 18),
        ];
        let (out, asked, stats, (valid, span), sync) = run(&lines, false);
        assert_eq!(asked, vec![0, 0], "once at the start, once after the gap");
        assert_eq!(stats.snapshot_requests, 2);
        assert_eq!(stats.snapshots_unavailable, 0);
        assert_eq!((sync.gaps, sync.resyncs, sync.diffs_applied), (1, 1, 4));
        // Valid from the bridge (110) to the gap (130), then from the resync (160: the diff
        // at 150's snapshot bridges at 160) — time before an input counts by the state before it.
        assert_eq!(span, 60);
        assert_eq!(valid, (130 - 110) + (160 - 150));
        // Every event of a message carries its time; the buffered diff replayed at the
        // snapshot carries the snapshot's.
        let first_reset = out
            .iter()
            .find(|e| e.kind() == EventKind::BookReset)
            .unwrap();
        assert_eq!(first_reset.local_time_ns, 110);
        assert!(out
            .iter()
            .filter(|e| e.kind() == EventKind::BookLevel)
            .all(|e| e.local_time_ns >= 110));
    }

    /// [`Counting`] with a lost connection after `after` inputs.
    struct Dropping<'a> {
        inner: Counting<'a>,
        after: usize,
        given: usize,
    }

    impl MarketSource for Dropping<'_> {
        fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
            self.given += 1;
            if self.given == self.after + 1 {
                return Some(Ok(Input::Disconnected {
                    instrument: 0,
                    local_ns: 125,
                }));
            }
            self.inner.next_input()
        }
        fn request_snapshot(&mut self, i: InstrumentId) -> SnapshotReply {
            self.inner.request_snapshot(i)
        }
        fn counts(&self) -> SourceCounts {
            self.inner.counts()
        }
    }

    #[test]
    fn a_lost_connection_invalidates_the_book_and_asks_for_a_snapshot() {
        let lines = [
            diff(100, 5, 9, 4),
            snapshot(110, 7),
            diff(120, 10, 12, 9),
            // The connection is lost here; the next diff chains on, but the book must wait for
            // a snapshot of the new connection all the same.
            diff(130, 13, 14, 12),
            snapshot(140, 13),
            diff(150, 15, 16, 14),
        ];
        let mut feed = MarketFeed::new(
            Dropping {
                inner: Counting {
                    inner: MemorySource::new(&lines),
                    refuse: false,
                    asked: Vec::new(),
                },
                after: 3,
                given: 0,
            },
            FeedHandler::with_rule(&[inst()], SyncRule::Futures),
        );
        let mut out = Vec::new();
        while feed.next(&mut out).is_some() {}
        let invalid: Vec<&Event> = out
            .iter()
            .filter(|e| e.kind() == EventKind::BookInvalid)
            .collect();
        assert_eq!(invalid.len(), 1, "{out:?}");
        assert_eq!(invalid[0].local_time_ns, 125);
        assert_eq!(
            invalid[0].status_reason(),
            engine::BookStatusReason::Disconnected
        );
        assert_eq!(
            feed.source.inner.asked,
            vec![0, 0],
            "at the start and after the loss"
        );
        let valid = out
            .iter()
            .filter(|e| e.kind() == EventKind::BookValid)
            .count();
        assert_eq!(valid, 2, "valid again after the new snapshot");
        // No level between the loss and the new snapshot.
        assert!(out
            .iter()
            .filter(|e| e.kind() == EventKind::BookLevel)
            .all(|e| e.local_time_ns <= 120 || e.local_time_ns >= 140));
    }

    #[test]
    fn receive_time_is_forced_monotonic() {
        let lines = [snapshot(200, 7), diff(150, 5, 9, 4), diff(300, 10, 11, 9)];
        let (out, _, _, (_, span), _) = run(&lines, false);
        assert!(out
            .windows(2)
            .all(|w| w[0].local_time_ns <= w[1].local_time_ns));
        let valid = out
            .iter()
            .find(|e| e.kind() == EventKind::BookValid)
            .unwrap();
        assert_eq!(
            valid.local_time_ns, 200,
            "the late line arrives at the previous time"
        );
        assert_eq!(span, 100);
    }

    #[test]
    fn an_input_an_hour_and_more_ahead_is_skipped_and_counted() {
        let hour = MAX_TIME_JUMP_NS;
        let lines = [
            snapshot(100, 7),
            diff(110, 5, 9, 4),
            // Exactly an hour later: a quiet hour, believed.
            diff(110 + hour, 10, 11, 9),
            // A day ahead: skipped, and time does not move.
            diff(110 + hour + 24 * hour, 12, 13, 11),
            diff(120 + hour, 12, 13, 11),
        ];
        let (out, _, stats, (_, span), sync) = run(&lines, false);
        assert_eq!(stats.time_jumps, 1);
        assert_eq!(
            sync.diffs_applied, 3,
            "the skipped line's diff came again and chained"
        );
        assert_eq!(span, 20 + hour);
        assert!(out.iter().all(|e| e.local_time_ns <= 120 + hour));
    }

    /// Issue 11: a diff that leaves the book crossed is not believed: the book is declared
    /// invalid (reason `Crossed`), sync waits for a snapshot and one is asked for.
    #[test]
    fn a_diff_that_crosses_the_book_invalidates_it_and_asks_for_a_snapshot() {
        let crossing = |t: i64, first: u64, last: u64, prev: u64| {
            (
                t,
                format!(
                    r#"{{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":{first},"u":{last},"pu":{prev},"b":[["1.2","1"]],"a":[]}}}}"#
                )
                .into_bytes(),
            )
        };
        let lines = [
            snapshot(100, 7),
            diff(110, 5, 9, 4),
            // A bid at 1.2 over the 1.1 ask: crossed.
            crossing(120, 10, 11, 9),
            diff(130, 12, 13, 11),
        ];
        let (out, asked, stats, _, sync) = run(&lines, false);
        assert_eq!(stats.crossed_books, 1);
        assert_eq!(asked, vec![0, 0], "at the start and after the crossing");
        let inv: Vec<_> = out
            .iter()
            .filter(|e| e.kind() == EventKind::BookInvalid)
            .collect();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].status_reason(), BookStatusReason::Crossed);
        assert_eq!(inv[0].offending_update_id(), 11);
        // The crossing diff was applied (then disowned); the next one waits for a snapshot.
        assert_eq!(sync.diffs_applied, 2);
        assert!(matches!(
            out.last().map(|e| e.kind()),
            Some(EventKind::BookInvalid)
        ));
    }

    #[test]
    fn a_source_without_snapshots_is_counted() {
        let lines = [diff(100, 5, 9, 4), diff(110, 10, 12, 9)];
        let (out, asked, stats, (valid, _), _) = run(&lines, true);
        assert!(out.is_empty(), "nothing before a snapshot");
        assert_eq!(asked, vec![0], "asked once, not again for every diff");
        assert_eq!(stats.snapshots_unavailable, 1);
        assert_eq!(valid, 0);
    }

    #[test]
    fn venue_flavours_choose_the_sync_rule() {
        assert_eq!(sync_rule(VenueFlavour::BinanceUsdm), SyncRule::Futures);
        assert_eq!(sync_rule(VenueFlavour::BinanceCoinm), SyncRule::Futures);
        assert_eq!(sync_rule(VenueFlavour::BinanceSpot), SyncRule::Spot);
        let text = include_str!("../../configs/spot-btcusdt.toml");
        let cfg = Config::from_toml(text).unwrap();
        assert_eq!(FeedHandler::from_config(&cfg).rule(0), Some(SyncRule::Spot));
        let cut = text.find("\n[instrument.balances]").unwrap();
        let end = cut + text[cut..].find("\n\n").unwrap();
        let usdm = text[..cut].to_owned() + &text[end..];
        let usdm = Config::from_toml(&usdm.replace("venue = \"binance-spot\"\n", "")).unwrap();
        assert_eq!(
            FeedHandler::from_config(&usdm).rule(0),
            Some(SyncRule::Futures)
        );
        assert!(Config::from_toml(&text.replace("binance-spot", "binance-moon")).is_err());
    }

    #[test]
    fn a_passthrough_handler_asks_for_nothing() {
        let h = FeedHandler::passthrough();
        assert_eq!(h.instruments(), 0);
        assert!(h.all_synced());
    }

    /// USD-M and spot BTCUSDT, one recording each, merged: each recording's snapshot (no
    /// symbol) syncs its own instrument's book, and each instrument gets the diffs of its own
    /// file by its own rule, although both name the same symbol.
    #[test]
    fn same_symbol_instruments_each_get_their_own_recordings_messages() {
        use crate::merge::MergedSource;
        let dir = std::env::temp_dir().join(format!("rm-handler-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, lines: &[(i64, Vec<u8>)]| {
            let p = dir.join(name);
            let mut text = Vec::new();
            for (t, l) in lines {
                text.extend_from_slice(format!("{t} ").as_bytes());
                text.extend_from_slice(l);
                text.push(b'\n');
            }
            std::fs::write(&p, text).unwrap();
            p
        };
        let spot_diff = |t: i64, first: u64, last: u64, px: &str| {
            (
                t,
                format!(
                    r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{first},"u":{last},"b":[["{px}","1"]],"a":[]}}}}"#
                )
                .into_bytes(),
            )
        };
        let usdm = write(
            "usdm.txt",
            &[diff(100, 5, 9, 4), snapshot(110, 7), diff(130, 10, 12, 9)],
        );
        let spot = write(
            "spot.txt",
            &[
                spot_diff(105, 50, 60, "0.95"),
                snapshot(120, 55),
                spot_diff(125, 61, 62, "0.96"),
            ],
        );
        let spot_inst = Instrument::new("BTCUSDT", "0.01", "0.001", "0.001", "0").unwrap();
        let handler = FeedHandler::new(&[
            (inst(), Some(SyncRule::Futures)),
            (spot_inst, Some(SyncRule::Spot)),
        ]);
        let mut feed = MarketFeed::new(
            MergedSource::open(&[vec![usdm], vec![spot]]).unwrap(),
            handler,
        );
        let mut out = Vec::new();
        while let Some(step) = feed.next(&mut out) {
            assert!(matches!(step, Step::Input { .. }), "{step:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let h = feed.handler();
        assert!(h.all_synced(), "both books synced");
        assert_eq!(h.stats().decode_errors, 0);
        assert_eq!(h.sync_stats(0).snapshots, 1);
        assert_eq!(h.sync_stats(1).snapshots, 1);
        assert_eq!(h.sync_stats(0).diffs_applied, 2);
        assert_eq!(h.sync_stats(1).diffs_applied, 2);
        // Each instrument's levels on its own grid: USD-M 1.0 at a 0.10 tick, spot 0.95 and
        // 0.96 at a 0.01 tick.
        let bids = |id: InstrumentId| {
            out.iter()
                .filter(|e| e.instrument() == id && e.kind() == EventKind::BookLevel)
                .filter_map(|e| e.as_level())
                .filter(|l| !l.snapshot)
                .map(|l| l.price)
                .collect::<Vec<_>>()
        };
        assert_eq!(bids(0), [10, 10]);
        assert_eq!(bids(1), [95, 96]);
        // One snapshot request each, at the start, each to its own recording.
        assert_eq!(h.stats().snapshot_requests, 2);
        let per: Vec<_> = feed
            .source()
            .sources()
            .map(|s| s.counts().snapshot_requests)
            .collect();
        assert_eq!(per, [1, 1]);
    }
}
