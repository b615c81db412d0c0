//! A synced local book for one instrument: the [`FeedHandler`] (decoder → book sync) applying
//! its events to an [`OrderBook`], in one object.
//!
//! This is what `ringmaker book`, the end-to-end tests and the recording benches drive. In the
//! live pipeline the same three pieces are split across threads (decode and sync on the feed
//! thread, the book on the engine thread), with the events between them on a ring.

use crate::binance::decode::{DecodeError, Decoder, DepthHeader, Message};
use crate::binance::sync::{SyncRule, SyncSink, SyncStats};
use crate::handler::FeedHandler;
use engine::{Event, EventKind, Instrument, OrderBook};

/// Told what happens to the book.
pub trait BookObserver {
    /// A diff was applied; `book` is the state after it.
    fn diff_applied(&mut self, _hdr: &DepthHeader, _book: &OrderBook) {}
    /// A market event that is not a book event (best bid/offer, trade, mark price) arrived;
    /// `book` is the local book at that moment.
    fn market_event(&mut self, _ev: &Event, _book: &OrderBook) {}
    /// A book status event (reset, valid, invalid) was applied.
    fn status(&mut self, _ev: &Event, _book: &OrderBook) {}
}

/// An observer that ignores everything.
impl BookObserver for () {}

/// Counters beyond the decoder's and the sync machine's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalBookStats {
    /// Diffs after which the book was crossed (best bid ≥ best ask).
    pub crossed: u64,
    /// Levels the book refused (negative quantity, non-positive price).
    pub rejected_levels: u64,
    /// Depth diffs decoded (applied or not).
    pub depth_messages: u64,
    /// Best bid/offer events.
    pub bbo: u64,
    /// Trade events.
    pub trades: u64,
}

/// A book and its counters, fed by a [`FeedHandler`] through [`BookState::sink`]. `ringmaker
/// book` drives one from a [`crate::MarketFeed`]; [`LocalBook`] pairs one with its own handler.
#[derive(Debug)]
pub struct BookState {
    book: OrderBook,
    stats: LocalBookStats,
}

impl BookState {
    /// An empty, invalid book of `book_slots` ticks.
    pub fn new(book_slots: usize) -> BookState {
        BookState {
            book: OrderBook::new(book_slots),
            stats: LocalBookStats::default(),
        }
    }

    /// The sink that applies a handler's events to the book, telling `obs`.
    pub fn sink<'a, O: BookObserver>(&'a mut self, obs: &'a mut O) -> impl SyncSink + 'a {
        Applier {
            book: &mut self.book,
            stats: &mut self.stats,
            obs,
        }
    }

    /// The book.
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// Crossed books and rejected levels (the other fields are the handler's: see
    /// [`LocalBook::stats`]).
    pub fn stats(&self) -> LocalBookStats {
        self.stats
    }
}

/// Feed handler and book for one instrument.
#[derive(Debug)]
pub struct LocalBook {
    handler: FeedHandler,
    state: BookState,
}
struct Applier<'a, O> {
    book: &'a mut OrderBook,
    stats: &'a mut LocalBookStats,
    obs: &'a mut O,
}

impl<O: BookObserver> SyncSink for Applier<'_, O> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        if !ev.kind().is_book() {
            self.obs.market_event(ev, self.book);
            return;
        }
        if self.book.apply(ev).is_err() {
            self.stats.rejected_levels += 1;
        }
        if ev.kind() != EventKind::BookLevel {
            self.obs.status(ev, self.book);
        }
    }

    #[inline]
    fn diff_applied(&mut self, hdr: &DepthHeader) {
        if self.book.is_crossed() {
            self.stats.crossed += 1;
        }
        self.obs.diff_applied(hdr, self.book);
    }
}

impl LocalBook {
    /// A local book for `instrument`. With `rule = None` the rule is chosen from the first depth
    /// message: one with `pu` is futures, one without is spot.
    pub fn new(instrument: Instrument, rule: Option<SyncRule>, book_slots: usize) -> LocalBook {
        Self::with_decoder(Decoder::new(&[instrument]), rule, book_slots)
    }

    /// Like [`LocalBook::new`], with a decoder of the caller's (e.g. one that adopts the first
    /// symbol it sees).
    pub fn with_decoder(decoder: Decoder, rule: Option<SyncRule>, book_slots: usize) -> LocalBook {
        LocalBook {
            handler: FeedHandler::with_decoder_and_window(decoder, &[rule], book_slots),
            state: BookState::new(book_slots),
        }
    }

    /// Decodes one message and applies it. A decode error leaves the book untouched; if the
    /// message was a diff, the next diff will not chain and the sync machine reports the gap.
    #[inline]
    pub fn on_message(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        obs: &mut impl BookObserver,
    ) -> Result<Message, DecodeError> {
        let mut sink = self.state.sink(obs);
        self.handler.on_message(json, local_ns, &mut sink)
    }

    /// The book.
    pub fn book(&self) -> &OrderBook {
        self.state.book()
    }

    /// The feed handler (decoder, sync machine, counters).
    pub fn handler(&self) -> &FeedHandler {
        &self.handler
    }

    /// The decoder (its instruments and counters).
    pub fn decoder(&self) -> &Decoder {
        self.handler.decoder()
    }

    /// Sync counters.
    pub fn sync_stats(&self) -> SyncStats {
        self.handler.sync_stats(0)
    }

    /// The sync rule in force, once known.
    pub fn rule(&self) -> Option<SyncRule> {
        self.handler.rule(0)
    }

    /// Book-side counters.
    pub fn stats(&self) -> LocalBookStats {
        let h = self.handler.stats();
        LocalBookStats {
            depth_messages: h.depth_messages,
            bbo: h.bbo,
            trades: h.trades,
            crossed: h.crossed_books,
            ..self.state.stats()
        }
    }
}
