//! Local order book synchronisation: snapshot + diff stream → a book the engine can trust.
//!
//! One [`BookSync`] per instrument, following Binance's documented procedure (see
//! `docs/VENUE.md`), with the rule chosen by venue flavour ([`SyncRule`]):
//!
//! 1. Buffer diffs until a snapshot arrives ([`SyncState::AwaitingSnapshot`]).
//! 2. On the snapshot (`lastUpdateId = L`): reset the book to it, drop buffered diffs that end
//!    before it (futures `u < L`, spot `u <= L`).
//! 3. The first diff applied must bridge it: futures `U <= L <= u`, spot `U <= L + 1 <= u`. When
//!    one does, the book is valid ([`SyncState::Synced`]). If the first remaining diff starts after
//!    the snapshot, the snapshot is too old: book invalid, wait for a newer one.
//! 4. Every later diff must chain: futures `pu == previous u`, spot `U == previous u + 1`. If one
//!    does not, that is a gap: emit book-invalid, buffer from the offending diff on, and wait for a
//!    new snapshot. Nothing is ever applied across a gap.
//!
//! Output goes to a [`SyncSink`]: book events in order (reset, levels, valid / invalid), plus a
//! call after each diff is applied. Buffers are preallocated and double-buffered, so steady-state
//! operation allocates nothing.

use crate::binance::decode::{DepthHeader, SnapshotHeader};
use engine::{BookStatusReason, Event, InstrumentId};

/// Which continuity rule the venue uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRule {
    /// USDⓈ-M / USDC-M futures: bridge `U <= L <= u`, chain on `pu == previous u`.
    Futures,
    /// Spot: bridge `U <= L + 1 <= u`, chain on `U == previous u + 1`.
    Spot,
}

/// Where the sync machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Buffering diffs; a (new) snapshot is needed.
    AwaitingSnapshot,
    /// Snapshot applied; waiting for the diff that bridges it.
    Bridging {
        /// The snapshot's `lastUpdateId`.
        snapshot_id: u64,
    },
    /// Valid; the last applied diff ended at `last_final_id`.
    Synced {
        /// `u` of the last applied diff.
        last_final_id: u64,
    },
}

/// What happened to one diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOutcome {
    /// Held until a snapshot arrives.
    Buffered,
    /// Older than the snapshot: dropped.
    Stale,
    /// Applied to the book.
    Applied,
    /// Broke the chain (or could not bridge the snapshot): book invalid, now buffering.
    Gap,
}

/// Receives what the sync machine produces.
pub trait SyncSink {
    /// A book event, in order.
    fn event(&mut self, ev: &Event);
    /// Called after all levels of an applied diff have been passed to [`SyncSink::event`].
    fn diff_applied(&mut self, _hdr: &DepthHeader) {}
}

impl SyncSink for Vec<Event> {
    fn event(&mut self, ev: &Event) {
        self.push(*ev);
    }
}

/// Counters; all monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Snapshots received.
    pub snapshots: u64,
    /// Diffs applied to the book.
    pub diffs_applied: u64,
    /// Diffs dropped as older than a snapshot.
    pub diffs_stale: u64,
    /// Diffs that broke the chain while synced.
    pub gaps: u64,
    /// Snapshots that no buffered or later diff could bridge.
    pub snapshots_too_old: u64,
    /// Times the book became valid again after having been invalidated.
    pub resyncs: u64,
    /// Times the wait buffer overflowed and was discarded.
    pub buffer_overflows: u64,
}

#[derive(Debug, Clone, Copy)]
struct Buffered {
    hdr: DepthHeader,
    start: usize,
    len: usize,
}

#[derive(Debug)]
struct DiffBuffer {
    diffs: Vec<Buffered>,
    levels: Vec<Event>,
}

impl DiffBuffer {
    fn with_capacity(diffs: usize, levels: usize) -> DiffBuffer {
        DiffBuffer {
            diffs: Vec::with_capacity(diffs),
            levels: Vec::with_capacity(levels),
        }
    }

    fn clear(&mut self) {
        self.diffs.clear();
        self.levels.clear();
    }

    fn fits(&self, levels: usize) -> bool {
        self.diffs.len() < self.diffs.capacity()
            && self.levels.len() + levels <= self.levels.capacity()
    }
}

/// Everything but the buffers, so a step can run while one buffer is drained into the other.
#[derive(Debug)]
struct Core {
    rule: SyncRule,
    instrument: InstrumentId,
    state: SyncState,
    ever_valid: bool,
    stats: SyncStats,
}

impl Core {
    /// One diff, whatever the state.
    fn step(
        &mut self,
        hdr: &DepthHeader,
        levels: &[Event],
        pending: &mut DiffBuffer,
        sink: &mut impl SyncSink,
    ) -> DiffOutcome {
        match self.state {
            SyncState::AwaitingSnapshot => {
                self.buffer(pending, hdr, levels);
                DiffOutcome::Buffered
            }
            SyncState::Bridging { snapshot_id } => {
                self.bridge(snapshot_id, hdr, levels, pending, sink)
            }
            SyncState::Synced { last_final_id } => {
                self.chain(last_final_id, hdr, levels, pending, sink)
            }
        }
    }

    fn bridge(
        &mut self,
        snapshot_id: u64,
        hdr: &DepthHeader,
        levels: &[Event],
        pending: &mut DiffBuffer,
        sink: &mut impl SyncSink,
    ) -> DiffOutcome {
        // The id the bridging diff must cover: futures L, spot L + 1.
        let target = match self.rule {
            SyncRule::Futures => snapshot_id,
            SyncRule::Spot => snapshot_id.saturating_add(1),
        };
        if hdr.final_id < target {
            self.stats.diffs_stale += 1;
            return DiffOutcome::Stale;
        }
        if hdr.first_id > target {
            // Starts after the snapshot: the diffs that would bridge it are gone.
            self.stats.snapshots_too_old += 1;
            self.invalidate(
                BookStatusReason::SnapshotTooOld,
                snapshot_id,
                hdr.first_id,
                hdr,
                sink,
            );
            self.buffer(pending, hdr, levels);
            return DiffOutcome::Gap;
        }
        for ev in levels {
            sink.event(ev);
        }
        self.stats.diffs_applied += 1;
        self.state = SyncState::Synced {
            last_final_id: hdr.final_id,
        };
        if self.ever_valid {
            self.stats.resyncs += 1;
        }
        self.ever_valid = true;
        sink.event(&Event::book_valid(
            self.instrument,
            hdr.venue_time_ns,
            hdr.local_time_ns,
            hdr.final_id,
        ));
        sink.diff_applied(hdr);
        DiffOutcome::Applied
    }

    fn chain(
        &mut self,
        last_final_id: u64,
        hdr: &DepthHeader,
        levels: &[Event],
        pending: &mut DiffBuffer,
        sink: &mut impl SyncSink,
    ) -> DiffOutcome {
        let (chained, offending) = match self.rule {
            SyncRule::Futures => (
                hdr.prev_final_id == Some(last_final_id),
                hdr.prev_final_id.unwrap_or(hdr.first_id),
            ),
            SyncRule::Spot => (
                Some(hdr.first_id) == last_final_id.checked_add(1),
                hdr.first_id,
            ),
        };
        if !chained {
            self.stats.gaps += 1;
            self.invalidate(
                BookStatusReason::SequenceGap,
                last_final_id,
                offending,
                hdr,
                sink,
            );
            self.buffer(pending, hdr, levels);
            return DiffOutcome::Gap;
        }
        for ev in levels {
            sink.event(ev);
        }
        self.stats.diffs_applied += 1;
        self.state = SyncState::Synced {
            last_final_id: hdr.final_id,
        };
        sink.diff_applied(hdr);
        DiffOutcome::Applied
    }

    fn invalidate(
        &mut self,
        reason: BookStatusReason,
        last_good: u64,
        offending: u64,
        hdr: &DepthHeader,
        sink: &mut impl SyncSink,
    ) {
        self.state = SyncState::AwaitingSnapshot;
        sink.event(&Event::book_invalid(
            self.instrument,
            hdr.venue_time_ns,
            hdr.local_time_ns,
            reason,
            last_good,
            offending,
        ));
    }

    fn buffer(&mut self, buf: &mut DiffBuffer, hdr: &DepthHeader, levels: &[Event]) {
        if !buf.fits(levels.len()) {
            self.stats.buffer_overflows += 1;
            buf.clear();
            if !buf.fits(levels.len()) {
                // One diff larger than the whole buffer cannot be kept. The snapshot that ends
                // the wait either postdates it (fine) or fails to bridge (reported).
                return;
            }
        }
        let start = buf.levels.len();
        buf.levels.extend_from_slice(levels);
        buf.diffs.push(Buffered {
            hdr: *hdr,
            start,
            len: levels.len(),
        });
    }
}

/// The book-sync state machine for one instrument.
#[derive(Debug)]
pub struct BookSync {
    core: Core,
    pending: DiffBuffer,
    draining: DiffBuffer,
}

impl BookSync {
    /// Default buffer: diffs held while waiting for a snapshot.
    pub const DEFAULT_MAX_DIFFS: usize = 4096;
    /// Default buffer: levels held while waiting for a snapshot.
    pub const DEFAULT_MAX_LEVELS: usize = 1 << 18;

    /// A sync machine with the default buffer sizes.
    pub fn new(rule: SyncRule, instrument: InstrumentId) -> BookSync {
        Self::with_capacity(
            rule,
            instrument,
            Self::DEFAULT_MAX_DIFFS,
            Self::DEFAULT_MAX_LEVELS,
        )
    }

    /// A sync machine holding at most `max_diffs` diffs / `max_levels` levels while it waits.
    /// When a diff would not fit, the buffer is discarded (counted in `buffer_overflows`): the
    /// snapshot that ends the wait is newer than those diffs in the normal case, and if it is not,
    /// it fails to bridge and another is requested. Never silent, never wrong.
    pub fn with_capacity(
        rule: SyncRule,
        instrument: InstrumentId,
        max_diffs: usize,
        max_levels: usize,
    ) -> BookSync {
        BookSync {
            core: Core {
                rule,
                instrument,
                state: SyncState::AwaitingSnapshot,
                ever_valid: false,
                stats: SyncStats::default(),
            },
            pending: DiffBuffer::with_capacity(max_diffs, max_levels),
            draining: DiffBuffer::with_capacity(max_diffs, max_levels),
        }
    }

    /// Current state.
    pub fn state(&self) -> SyncState {
        self.core.state
    }

    /// Counters.
    pub fn stats(&self) -> SyncStats {
        self.core.stats
    }

    /// Whether a (new) snapshot should be fetched.
    pub fn needs_snapshot(&self) -> bool {
        self.core.state == SyncState::AwaitingSnapshot
    }

    /// The sync rule in force.
    pub fn rule(&self) -> SyncRule {
        self.core.rule
    }

    /// Sets the rule when it was not known at construction (a snapshot arrived before any diff
    /// told the flavour). Call it before the first diff; later it would mix two rules.
    pub fn set_rule(&mut self, rule: SyncRule) {
        self.core.rule = rule;
    }

    /// Diffs waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.pending.diffs.len()
    }

    /// Feeds one diff and its levels (as decoded).
    pub fn on_diff(
        &mut self,
        hdr: &DepthHeader,
        levels: &[Event],
        sink: &mut impl SyncSink,
    ) -> DiffOutcome {
        self.core.step(hdr, levels, &mut self.pending, sink)
    }

    /// Feeds a snapshot and its levels: resets the book to it and replays buffered diffs.
    pub fn on_snapshot(
        &mut self,
        hdr: &SnapshotHeader,
        levels: &[Event],
        sink: &mut impl SyncSink,
    ) -> SyncState {
        let core = &mut self.core;
        core.stats.snapshots += 1;
        sink.event(&Event::book_reset(
            core.instrument,
            hdr.venue_time_ns,
            hdr.local_time_ns,
            hdr.last_update_id,
        ));
        for ev in levels {
            sink.event(ev);
        }
        core.state = SyncState::Bridging {
            snapshot_id: hdr.last_update_id,
        };
        // Replay what was buffered; whatever must wait again goes back into `pending`.
        std::mem::swap(&mut self.pending, &mut self.draining);
        for b in &self.draining.diffs {
            let lv = &self.draining.levels[b.start..b.start + b.len];
            core.step(&b.hdr, lv, &mut self.pending, sink);
        }
        self.draining.clear();
        core.state
    }

    /// The connection dropped (or the stream was otherwise lost): the book is invalid until a new
    /// snapshot is bridged. Buffered diffs are discarded: they belong to the old connection.
    pub fn on_disconnect(&mut self, venue_ns: i64, local_ns: i64, sink: &mut impl SyncSink) {
        self.invalidate(BookStatusReason::Disconnected, 0, venue_ns, local_ns, sink);
    }

    /// The book can no longer be trusted for `reason` (the diff with final id `offending` left it
    /// crossed, say): as on a disconnect, the buffer goes, `BookInvalid { reason }` is said and
    /// sync waits for a new snapshot.
    pub fn invalidate(
        &mut self,
        reason: BookStatusReason,
        offending: u64,
        venue_ns: i64,
        local_ns: i64,
        sink: &mut impl SyncSink,
    ) {
        let last = match self.core.state {
            SyncState::Synced { last_final_id } => last_final_id,
            SyncState::Bridging { snapshot_id } => snapshot_id,
            SyncState::AwaitingSnapshot => 0,
        };
        self.pending.clear();
        self.core.state = SyncState::AwaitingSnapshot;
        sink.event(&Event::book_invalid(
            self.core.instrument,
            venue_ns,
            local_ns,
            reason,
            last,
            offending,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{EventKind, LevelUpdate, Side};

    fn diff(first: u64, last: u64, prev: Option<u64>) -> (DepthHeader, Vec<Event>) {
        let hdr = DepthHeader {
            instrument: 0,
            first_id: first,
            final_id: last,
            prev_final_id: prev,
            venue_time_ns: 0,
            local_time_ns: 0,
        };
        let lv = LevelUpdate {
            side: Side::Bid,
            price: 100 + last as i64,
            qty: 1,
            update_id: last,
            last_in_msg: true,
            snapshot: false,
        };
        (hdr, vec![Event::level(0, 0, 0, lv)])
    }

    fn snap(id: u64) -> SnapshotHeader {
        SnapshotHeader {
            instrument: 0,
            last_update_id: id,
            venue_time_ns: 0,
            local_time_ns: 0,
        }
    }

    #[derive(Default)]
    struct Rec {
        kinds: Vec<EventKind>,
        applied: Vec<u64>,
    }
    impl SyncSink for Rec {
        fn event(&mut self, ev: &Event) {
            self.kinds.push(ev.kind());
        }
        fn diff_applied(&mut self, hdr: &DepthHeader) {
            self.applied.push(hdr.final_id);
        }
    }

    fn feed(
        s: &mut BookSync,
        r: &mut Rec,
        first: u64,
        last: u64,
        prev: Option<u64>,
    ) -> DiffOutcome {
        let (h, l) = diff(first, last, prev);
        s.on_diff(&h, &l, r)
    }

    #[test]
    fn futures_buffer_bridge_and_chain() {
        let mut s = BookSync::new(SyncRule::Futures, 0);
        let mut r = Rec::default();
        assert_eq!(feed(&mut s, &mut r, 1, 5, Some(0)), DiffOutcome::Buffered);
        assert_eq!(feed(&mut s, &mut r, 6, 9, Some(5)), DiffOutcome::Buffered);
        assert_eq!(feed(&mut s, &mut r, 10, 14, Some(9)), DiffOutcome::Buffered);
        assert!(s.needs_snapshot());
        // L = 9: drop u < 9 (1..5), bridge with 6 <= 9 <= 9, then chain 10..14.
        let st = s.on_snapshot(&snap(9), &[], &mut r);
        assert_eq!(st, SyncState::Synced { last_final_id: 14 });
        assert_eq!(r.applied, vec![9, 14]);
        assert_eq!(
            r.kinds,
            vec![
                EventKind::BookReset,
                EventKind::BookLevel,
                EventKind::BookValid,
                EventKind::BookLevel
            ]
        );
        assert_eq!(s.stats().diffs_stale, 1);
        assert_eq!(feed(&mut s, &mut r, 15, 20, Some(14)), DiffOutcome::Applied);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn futures_gap_invalidates_and_a_new_snapshot_resyncs() {
        let mut s = BookSync::new(SyncRule::Futures, 0);
        let mut r = Rec::default();
        s.on_snapshot(&snap(9), &[], &mut r);
        assert!(matches!(s.state(), SyncState::Bridging { snapshot_id: 9 }));
        assert_eq!(feed(&mut s, &mut r, 3, 8, Some(2)), DiffOutcome::Stale);
        assert_eq!(feed(&mut s, &mut r, 9, 12, Some(8)), DiffOutcome::Applied);
        // pu 13 != 12: a gap. Nothing more is applied until a snapshot bridges.
        assert_eq!(feed(&mut s, &mut r, 14, 15, Some(13)), DiffOutcome::Gap);
        assert_eq!(
            feed(&mut s, &mut r, 16, 18, Some(15)),
            DiffOutcome::Buffered
        );
        assert_eq!(
            feed(&mut s, &mut r, 19, 22, Some(18)),
            DiffOutcome::Buffered
        );
        assert_eq!(r.applied, vec![12]);
        assert_eq!(*r.kinds.last().unwrap(), EventKind::BookInvalid);
        assert_eq!(s.stats().gaps, 1);
        s.on_snapshot(&snap(17), &[], &mut r);
        assert_eq!(s.state(), SyncState::Synced { last_final_id: 22 });
        assert_eq!(r.applied, vec![12, 18, 22]);
        assert_eq!(s.stats().resyncs, 1);
    }

    #[test]
    fn a_snapshot_older_than_every_diff_is_reported() {
        let mut s = BookSync::new(SyncRule::Futures, 0);
        let mut r = Rec::default();
        feed(&mut s, &mut r, 50, 60, Some(49));
        feed(&mut s, &mut r, 61, 70, Some(60));
        // L = 40 < U = 50: no diff covers it.
        s.on_snapshot(&snap(40), &[], &mut r);
        assert!(s.needs_snapshot());
        assert_eq!(s.stats().snapshots_too_old, 1);
        assert!(r.applied.is_empty());
        assert_eq!(s.buffered(), 2, "kept for the next snapshot");
        s.on_snapshot(&snap(65), &[], &mut r);
        assert_eq!(s.state(), SyncState::Synced { last_final_id: 70 });
        assert_eq!(
            s.stats().resyncs,
            0,
            "never valid before: the first sync is not a resync"
        );
    }

    #[test]
    fn spot_rules() {
        let mut s = BookSync::new(SyncRule::Spot, 0);
        let mut r = Rec::default();
        feed(&mut s, &mut r, 1, 10, None);
        feed(&mut s, &mut r, 11, 20, None);
        feed(&mut s, &mut r, 21, 25, None);
        // L = 10: drop u <= 10, bridge U <= 11 <= u.
        s.on_snapshot(&snap(10), &[], &mut r);
        assert_eq!(r.applied, vec![20, 25]);
        assert_eq!(feed(&mut s, &mut r, 26, 30, None), DiffOutcome::Applied);
        assert_eq!(feed(&mut s, &mut r, 32, 40, None), DiffOutcome::Gap);
    }

    #[test]
    fn buffer_overflow_is_counted_and_safe() {
        let mut s = BookSync::with_capacity(SyncRule::Futures, 0, 2, 100);
        let mut r = Rec::default();
        feed(&mut s, &mut r, 1, 1, Some(0));
        feed(&mut s, &mut r, 2, 2, Some(1));
        feed(&mut s, &mut r, 3, 3, Some(2));
        assert_eq!(s.stats().buffer_overflows, 1);
        assert_eq!(s.buffered(), 1);
        // The bridging diff (1) was discarded: this snapshot cannot be bridged.
        s.on_snapshot(&snap(1), &[], &mut r);
        assert!(s.needs_snapshot());
        assert!(r.applied.is_empty());
    }

    #[test]
    fn disconnect_invalidates_and_discards_the_buffer() {
        let mut s = BookSync::new(SyncRule::Futures, 0);
        let mut r = Rec::default();
        s.on_snapshot(&snap(1), &[], &mut r);
        feed(&mut s, &mut r, 1, 2, Some(0));
        s.on_disconnect(0, 0, &mut r);
        assert!(s.needs_snapshot());
        assert_eq!(*r.kinds.last().unwrap(), EventKind::BookInvalid);
        assert_eq!(feed(&mut s, &mut r, 3, 4, Some(2)), DiffOutcome::Buffered);
    }
}
