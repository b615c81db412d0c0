//! A synced local book for one instrument: decoder → book sync → [`OrderBook`], in one object.
//!
//! This is what `ringmaker book`, the end-to-end tests and the recording benches drive. In the
//! live pipeline the same three pieces are split across threads (decode and sync on the feed
//! thread, the book on the engine thread), with the events between them on a ring.

use crate::decode::{DecodeError, Decoder, DepthHeader, Message};
use crate::sync::{BookSync, SyncRule, SyncSink, SyncStats};
use engine::{Event, EventKind, Instrument, OrderBook};

/// Told what happens to the book.
pub trait BookObserver {
    /// A diff was applied; `book` is the state after it.
    fn diff_applied(&mut self, _hdr: &DepthHeader, _book: &OrderBook) {}
    /// A best-bid/offer or trade event arrived; `book` is the local book at that moment.
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

/// Decoder, sync machine and book for one instrument.
#[derive(Debug)]
pub struct LocalBook {
    decoder: Decoder,
    rule: Option<SyncRule>,
    sync: Option<BookSync>,
    book: OrderBook,
    stats: LocalBookStats,
}

struct Applier<'a, O> {
    book: &'a mut OrderBook,
    stats: &'a mut LocalBookStats,
    obs: &'a mut O,
}

impl<O: BookObserver> SyncSink for Applier<'_, O> {
    #[inline]
    fn event(&mut self, ev: &Event) {
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
            decoder,
            rule,
            sync: rule.map(|r| BookSync::new(r, 0)),
            book: OrderBook::new(book_slots),
            stats: LocalBookStats::default(),
        }
    }

    /// Decodes one message and applies it. A decode error leaves the book untouched; if the
    /// message was a diff, the next diff will not chain and the sync machine reports the gap.
    pub fn on_message(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        obs: &mut impl BookObserver,
    ) -> Result<Message, DecodeError> {
        let msg = self.decoder.decode(json, local_ns)?;
        match msg {
            Message::Depth(hdr) => {
                self.stats.depth_messages += 1;
                let rule = match self.rule {
                    Some(r) => r,
                    None => {
                        let r = if hdr.prev_final_id.is_some() {
                            SyncRule::Futures
                        } else {
                            SyncRule::Spot
                        };
                        self.rule = Some(r);
                        if let Some(s) = &mut self.sync {
                            s.set_rule(r);
                        }
                        r
                    }
                };
                let sync = self.sync.get_or_insert_with(|| BookSync::new(rule, 0));
                let mut sink = Applier {
                    book: &mut self.book,
                    stats: &mut self.stats,
                    obs,
                };
                sync.on_diff(&hdr, self.decoder.levels(), &mut sink);
            }
            Message::Snapshot(hdr) => {
                // Before any diff the rule may still be unknown: a snapshot is the same for both,
                // and the first diff sets the rule (see the `Depth` arm).
                let rule = self.rule.unwrap_or(SyncRule::Futures);
                let sync = self.sync.get_or_insert_with(|| BookSync::new(rule, 0));
                let mut sink = Applier {
                    book: &mut self.book,
                    stats: &mut self.stats,
                    obs,
                };
                sync.on_snapshot(&hdr, self.decoder.levels(), &mut sink);
            }
            Message::Event(ev) => {
                match ev.kind() {
                    EventKind::Bbo => self.stats.bbo += 1,
                    EventKind::Trade => self.stats.trades += 1,
                    _ => {}
                }
                obs.market_event(&ev, &self.book);
            }
            Message::Ignored(_) => {}
        }
        Ok(msg)
    }

    /// The book.
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The decoder (its instruments and counters).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Sync counters (zero until the first depth message).
    pub fn sync_stats(&self) -> SyncStats {
        self.sync.as_ref().map(|s| s.stats()).unwrap_or_default()
    }

    /// The sync rule in force, once known.
    pub fn rule(&self) -> Option<SyncRule> {
        self.rule
    }

    /// Book-side counters.
    pub fn stats(&self) -> LocalBookStats {
        self.stats
    }
}
