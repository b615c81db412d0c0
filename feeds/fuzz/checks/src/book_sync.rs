//! Arbitrary bytes read as a sequence of depth diffs, snapshots and disconnects, fed to a
//! `BookSync` whose output is applied to an `OrderBook`.
//!
//! Checked after every step: no panic; the book never holds a zero (or negative) quantity level;
//! `levels()` is strictly best-first, agrees with `best_bid` / `best_ask`, `qty_at` and `depth`;
//! nothing is applied across a gap (an applied diff either bridges the latest snapshot or chains
//! onto the previous applied diff); `DiffOutcome` and `state()` agree.
//!
//! In "differential" mode (default buffer sizes, no disconnects) the same messages are also
//! written as JSON and fed to a `LocalBook`, whose book must equal the hand-wired one.
//!
//! Layout: byte 0 = mode (bit 0 spot/futures, bit 1 small buffers + disconnects), then ops.

use engine::{Event, EventKind, Instrument, LevelUpdate, OrderBook, Side};
use feeds::{
    BookSync, DepthHeader, DiffOutcome, LocalBook, SnapshotHeader, SyncRule, SyncSink, SyncState,
};
use std::fmt::Write;

const SLOTS: usize = 4096;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn u64(&mut self) -> Option<u64> {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8()?;
        }
        Some(u64::from_le_bytes(b))
    }
}

/// Applies sync output to a book and checks the sync contract as it goes.
struct Checker {
    rule: SyncRule,
    book: OrderBook,
    /// Latest snapshot id, while no diff has been applied on top of it.
    bridging: Option<u64>,
    /// `u` of the last applied diff since the latest snapshot.
    last_applied: Option<u64>,
    /// A book-invalid was emitted and no snapshot has arrived since.
    invalid: bool,
    saw_valid: bool,
    /// An applied diff left the book crossed: the feed handler's rule (`BookInvalid { Crossed }`
    /// and a resync) follows the call, here as there.
    crossed: bool,
}

impl SyncSink for Checker {
    fn event(&mut self, ev: &Event) {
        match ev.kind() {
            EventKind::BookReset => {
                self.bridging = Some(ev.status_update_id());
                self.last_applied = None;
                self.invalid = false;
            }
            EventKind::BookInvalid => {
                self.invalid = true;
                self.bridging = None;
                self.last_applied = None;
            }
            EventKind::BookValid => {
                assert!(!self.invalid, "book-valid while invalid");
                self.saw_valid = true;
            }
            EventKind::BookLevel => {
                let l = ev.as_level().unwrap();
                if !l.snapshot {
                    assert!(!self.invalid, "diff level applied across a gap: {l:?}");
                    assert!(
                        self.bridging.is_some() || self.last_applied.is_some(),
                        "diff level applied with no snapshot: {l:?}"
                    );
                } else {
                    assert!(
                        self.bridging.is_some() && self.last_applied.is_none(),
                        "snapshot level outside a snapshot: {l:?}"
                    );
                }
            }
            k => panic!("unexpected event kind {k:?}"),
        }
        let _ = self.book.apply(ev);
    }

    fn diff_applied(&mut self, hdr: &DepthHeader) {
        assert!(!self.invalid, "diff applied across a gap: {hdr:?}");
        match (self.bridging, self.last_applied) {
            (Some(l), None) => {
                let target = match self.rule {
                    SyncRule::Futures => l,
                    SyncRule::Spot => l.saturating_add(1),
                };
                assert!(
                    hdr.first_id <= target && target <= hdr.final_id,
                    "first diff does not bridge snapshot {l}: {hdr:?}"
                );
                assert!(self.saw_valid, "bridged without book-valid");
            }
            (_, Some(prev)) => match self.rule {
                SyncRule::Futures => assert_eq!(hdr.prev_final_id, Some(prev), "{hdr:?}"),
                SyncRule::Spot => assert_eq!(Some(hdr.first_id), prev.checked_add(1), "{hdr:?}"),
            },
            (None, None) => panic!("diff applied without any snapshot: {hdr:?}"),
        }
        self.bridging = None;
        self.last_applied = Some(hdr.final_id);
        self.saw_valid = false;
        if self.book.is_valid() && self.book.is_crossed() {
            self.crossed = true;
        }
    }
}

/// The feed handler's crossed-book rule, applied after a sync call as the handler does.
fn crossed_rule(sync: &mut BookSync, ck: &mut Checker, id: u64) {
    if std::mem::take(&mut ck.crossed) {
        sync.invalidate(engine::BookStatusReason::Crossed, id, 0, 0, ck);
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        assert!(!ck.book.is_valid());
    }
}

fn check_book(b: &OrderBook) {
    for side in [Side::Bid, Side::Ask] {
        let mut prev: Option<i64> = None;
        let mut n = 0;
        for (p, q) in b.levels(side) {
            assert!(q > 0, "{side:?} level {p} has qty {q}");
            assert_eq!(b.qty_at(side, p), q);
            if let Some(pp) = prev {
                match side {
                    Side::Bid => assert!(p < pp, "bids not descending: {pp} then {p}"),
                    Side::Ask => assert!(p > pp, "asks not ascending: {pp} then {p}"),
                }
            }
            prev = Some(p);
            n += 1;
        }
        assert_eq!(n, b.depth(side), "{side:?} depth");
        let best = match side {
            Side::Bid => b.best_bid(),
            Side::Ask => b.best_ask(),
        };
        assert_eq!(best, b.levels(side).next().map(|(p, _)| p));
    }
    assert_eq!(
        b.is_crossed(),
        matches!((b.best_bid(), b.best_ask()), (Some(x), Some(y)) if x >= y)
    );
}

fn book_eq(a: &OrderBook, b: &OrderBook) {
    for side in [Side::Bid, Side::Ask] {
        assert!(
            a.levels(side).eq(b.levels(side)),
            "{side:?} differs from LocalBook"
        );
    }
    assert_eq!(a.is_valid(), b.is_valid());
}

fn inst() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "0").unwrap()
}

fn json_levels(out: &mut String, levels: &[Event], side: Side) {
    let i = inst();
    out.push('[');
    let mut first = true;
    for l in levels
        .iter()
        .filter_map(Event::as_level)
        .filter(|l| l.side == side)
    {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(
            out,
            "[\"{}\",\"{}\"]",
            i.tick.format(l.price),
            i.lot.format(l.qty)
        );
    }
    out.push(']');
}

fn read_levels(
    r: &mut Bytes<'_>,
    center: &mut i64,
    max: u8,
    snapshot: bool,
    update_id: u64,
) -> Option<Vec<Event>> {
    let n = r.u8()? % max;
    let mut v = Vec::with_capacity(n as usize);
    // Decoded messages list bids first, then asks.
    let mut raw = Vec::new();
    for _ in 0..n {
        let sel = r.u8()?;
        let off = r.u16()? as i16 as i64;
        let side = if sel & 1 == 0 { Side::Bid } else { Side::Ask };
        // Mostly near the touch, sometimes anywhere in (and beyond) the window.
        let off = if sel & 2 == 0 { off % 64 } else { off };
        let price = (*center + off).max(1);
        let qty = if sel & 4 == 0 {
            0
        } else {
            ((sel >> 3) % 8) as i64
        };
        raw.push((side, price, qty));
    }
    raw.sort_by_key(|&(s, _, _)| s);
    for (i, &(side, price, qty)) in raw.iter().enumerate() {
        let level = LevelUpdate {
            side,
            price,
            qty,
            update_id,
            last_in_msg: i + 1 == raw.len(),
            snapshot,
        };
        v.push(Event::level(0, 0, 0, level));
    }
    if let Some(d) = r.u8() {
        // Drift the market, occasionally by a lot (forces recentring / out-of-window levels).
        *center = (*center + (d as i8 as i64) * if d & 0x80 != 0 { 97 } else { 1 }).max(1);
    }
    Some(v)
}

/// One fuzz input: must never panic (see the module docs for what is checked).
pub fn fuzz(data: &[u8]) {
    let mut r = Bytes(data);
    let Some(mode) = r.u8() else { return };
    let rule = if mode & 1 == 0 {
        SyncRule::Futures
    } else {
        SyncRule::Spot
    };
    let small = mode & 2 != 0;
    let mut sync = if small {
        BookSync::with_capacity(
            rule,
            0,
            1 + (mode >> 2) as usize % 8,
            1 + (mode >> 5) as usize * 3,
        )
    } else {
        BookSync::new(rule, 0)
    };
    let mut local = (!small).then(|| LocalBook::new(inst(), Some(rule), SLOTS));
    let mut ck = Checker {
        rule,
        book: OrderBook::new(SLOTS),
        bridging: None,
        last_applied: None,
        invalid: false,
        saw_valid: false,
        crossed: false,
    };
    let mut last_u: u64 = 1_000;
    let mut center: i64 = 600_000;
    let mut json = String::new();
    while let Some(op) = r.u8() {
        json.clear();
        match op % 8 {
            // Diffs, mostly chained.
            0..=4 => {
                let Some(g) = r.u8() else { break };
                let (first, prev) = match g {
                    0..=199 => (last_u.saturating_add(1), last_u),
                    200..=219 => (
                        last_u.saturating_add(2 + (g % 5) as u64),
                        last_u.saturating_add(1 + (g % 5) as u64),
                    ),
                    220..=239 => (
                        last_u.saturating_sub((g % 7) as u64),
                        last_u.saturating_sub(1 + (g % 7) as u64),
                    ),
                    240..=249 => (last_u.saturating_add(1), last_u ^ 1),
                    _ => {
                        let Some(x) = r.u64() else { break };
                        (x, x.wrapping_sub(1))
                    }
                };
                let Some(len) = r.u8() else { break };
                let last = first.saturating_add((len % 6) as u64);
                let Some(levels) = read_levels(&mut r, &mut center, 8, false, last) else {
                    break;
                };
                let hdr = DepthHeader {
                    instrument: 0,
                    first_id: first,
                    final_id: last,
                    prev_final_id: (rule == SyncRule::Futures).then_some(prev),
                    venue_time_ns: 0,
                    local_time_ns: 0,
                };
                last_u = last_u.max(last);
                let before = sync.state();
                let out = sync.on_diff(&hdr, &levels, &mut ck);
                match out {
                    DiffOutcome::Applied => {
                        assert_eq!(
                            sync.state(),
                            SyncState::Synced {
                                last_final_id: last
                            },
                            "{hdr:?}"
                        );
                        assert!(!matches!(before, SyncState::AwaitingSnapshot));
                    }
                    DiffOutcome::Gap => assert_eq!(sync.state(), SyncState::AwaitingSnapshot),
                    DiffOutcome::Buffered => {
                        assert_eq!(before, SyncState::AwaitingSnapshot);
                        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
                    }
                    DiffOutcome::Stale => assert!(matches!(before, SyncState::Bridging { .. })),
                }
                crossed_rule(&mut sync, &mut ck, last);
                if local.is_some() {
                    let _ = write!(json, "{{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"U\":{first},\"u\":{last},");
                    if rule == SyncRule::Futures {
                        let _ = write!(json, "\"pu\":{prev},");
                    }
                    json.push_str("\"b\":");
                    json_levels(&mut json, &levels, Side::Bid);
                    json.push_str(",\"a\":");
                    json_levels(&mut json, &levels, Side::Ask);
                    json.push('}');
                }
            }
            // Snapshots, near the stream (so some bridge and some are too old or too new).
            5 | 6 => {
                let Some(g) = r.u8() else { break };
                let id = last_u.saturating_add(3).saturating_sub((g % 16) as u64);
                let Some(levels) = read_levels(&mut r, &mut center, 24, true, id) else {
                    break;
                };
                let hdr = SnapshotHeader {
                    instrument: 0,
                    last_update_id: id,
                    venue_time_ns: 0,
                    local_time_ns: 0,
                };
                let st = sync.on_snapshot(&hdr, &levels, &mut ck);
                assert_eq!(st, sync.state());
                crossed_rule(&mut sync, &mut ck, id);
                if local.is_some() {
                    let _ = write!(json, "{{\"lastUpdateId\":{id},\"bids\":");
                    json_levels(&mut json, &levels, Side::Bid);
                    json.push_str(",\"asks\":");
                    json_levels(&mut json, &levels, Side::Ask);
                    json.push('}');
                }
            }
            // Disconnects (only without the LocalBook twin, which has no such input).
            _ => {
                if local.is_none() {
                    sync.on_disconnect(0, 0, &mut ck);
                    assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
                    assert!(!ck.book.is_valid());
                }
            }
        }
        check_book(&ck.book);
        if let Some(lb) = &mut local {
            if !json.is_empty() {
                let mut bytes = json.clone().into_bytes();
                lb.on_message(&mut bytes, 0, &mut ())
                    .unwrap_or_else(|e| panic!("{e}: {json}"));
            }
            check_book(lb.book());
            book_eq(&ck.book, lb.book());
            assert_eq!(lb.sync_stats(), sync.stats());
        }
    }
}
