//! End-to-end: the real recordings through decode → sync → book.

use engine::{Event, Instrument, OrderBook, TopOfBook};
use feeds::decode::DepthHeader;
use feeds::{BookObserver, LocalBook, Message, RecordingReader, SyncRule};
use ringmaker_tests::{spot, usdm};
use std::path::Path;

/// A top of book as (bid px, bid qty, ask px, ask qty).
type TopTuple = (i64, i64, i64, i64);

/// Everything the tests want to know about one run.
#[derive(Default)]
struct Trace {
    /// (U, u) of each applied diff, in order.
    applied: Vec<(u64, u64)>,
    /// Each ticker seen after sync: (ticker, index into `applied` of the last applied diff,
    /// our top of book at that moment as (bid px, bid qty, ask px, ask qty)).
    tickers: Vec<(TopOfBook, usize, Option<TopTuple>)>,
    crossed_after_diff: u64,
    invalid_events: u64,
}

fn top(book: &OrderBook) -> Option<TopTuple> {
    let (b, bq) = book.best_bid_level()?;
    let (a, aq) = book.best_ask_level()?;
    Some((b, bq, a, aq))
}

impl BookObserver for Trace {
    fn diff_applied(&mut self, hdr: &DepthHeader, book: &OrderBook) {
        assert!(book.is_valid(), "a diff was applied to an invalid book");
        self.applied.push((hdr.first_id, hdr.final_id));
        if book.is_crossed() {
            self.crossed_after_diff += 1;
        }
    }

    fn market_event(&mut self, ev: &Event, book: &OrderBook) {
        if let (Some(t), false) = (ev.as_bbo(), self.applied.is_empty()) {
            if book.is_valid() {
                self.tickers.push((t, self.applied.len() - 1, top(book)));
            }
        }
    }

    fn status(&mut self, ev: &Event, _book: &OrderBook) {
        if ev.kind() == engine::EventKind::BookInvalid {
            self.invalid_events += 1;
        }
    }
}

fn run(paths: &[impl AsRef<Path>], inst: Instrument) -> (LocalBook, Trace, u64) {
    let mut local = LocalBook::new(inst, None, OrderBook::DEFAULT_SLOTS);
    let mut trace = Trace::default();
    let mut reader = RecordingReader::open(paths).expect("open recording");
    let mut snapshot_id = 0;
    while let Some(line) = reader.next() {
        let l = line.expect("the shipped recordings have no bad lines");
        match local.on_message(l.json, l.local_ns, &mut trace) {
            Ok(Message::Snapshot(h)) => snapshot_id = h.last_update_id,
            Ok(_) => {}
            Err(e) => panic!("decode error in shipped recording: {e}"),
        }
    }
    (local, trace, snapshot_id)
}

fn btc_usdm() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap()
}

#[test]
fn usdm_recording_syncs_and_matches_every_comparable_book_ticker() {
    let (local, trace, l) = run(&[usdm()], btc_usdm());
    assert_eq!(local.rule(), Some(SyncRule::Futures));
    let s = local.sync_stats();
    assert_eq!(s.snapshots, 1);
    assert_eq!(l, 5_123_107_852_948);
    assert_eq!(s.diffs_applied, 6_547);
    assert_eq!(trace.applied.len(), 6_547);
    assert_eq!((s.gaps, s.resyncs, s.snapshots_too_old), (0, 0, 0));
    assert_eq!(local.stats().depth_messages, 6_551);
    assert_eq!(
        s.diffs_stale, 4,
        "the snapshot is bridged by the diff after four stale ones"
    );
    // The documented bridge condition holds for the first diff applied.
    let (u0, u1) = trace.applied[0];
    assert!(u0 <= l && l <= u1, "bridge: {u0} <= {l} <= {u1}");
    assert_eq!((local.stats().crossed, trace.crossed_after_diff), (0, 0));
    assert_eq!(trace.invalid_events, 0);
    assert!(local.book().is_valid());

    // A ticker is comparable when its id t satisfies u_k <= t < U_(k+1).
    let mut compared = 0;
    for (t, k, ours) in &trace.tickers {
        let after_k = t.update_id >= trace.applied[*k].1;
        let before_next = trace
            .applied
            .get(k + 1)
            .is_none_or(|next| t.update_id < next.0);
        if after_k && before_next {
            compared += 1;
            assert_eq!(
                *ours,
                Some((t.bid_price, t.bid_qty, t.ask_price, t.ask_qty)),
                "top of book differs from bookTicker u={}",
                t.update_id
            );
        }
    }
    assert_eq!(compared, 126);
}

#[test]
fn spot_recordings_sync_by_the_spot_rule_across_the_file_boundary() {
    // Spot book quantities carry 8 decimals (a resting 25.42618900 at 200000.00 appears), finer
    // than the 0.00001 order step, so the book's quantity grid is 1e-8.
    let inst = Instrument::new("BTCUSDT", "0.01", "0.00000001", "0.00001", "5").unwrap();
    let paths = spot();
    let (local, trace, l) = run(&paths, inst);
    assert_eq!(local.rule(), Some(SyncRule::Spot));
    let s = local.sync_stats();
    assert_eq!(l, 50_093_239_218);
    let (u0, u1) = trace.applied[0];
    assert!(
        u0 <= l + 1 && l < u1,
        "spot bridge: {u0} <= {} <= {u1}",
        l + 1
    );
    assert_eq!((s.gaps, s.resyncs, s.snapshots_too_old), (0, 0, 0));
    assert_eq!(s.diffs_applied, 6_493);
    assert_eq!((local.stats().crossed, trace.crossed_after_diff), (0, 0));
    // Every applied diff chains by U == previous u + 1, including across the two files.
    for w in trace.applied.windows(2) {
        assert_eq!(w[1].0, w[0].1 + 1);
    }
    // The first file ends at local 1723161600000..; diffs from the second file were applied.
    let first_file_last_u = {
        let mut r = RecordingReader::open(&paths[..1]).unwrap();
        let mut last = 0;
        let mut d = feeds::Decoder::new(&[inst]);
        while let Some(Ok(l)) = r.next() {
            if let Ok(Message::Depth(h)) = d.decode(l.json, l.local_ns) {
                last = h.final_id;
            }
        }
        last
    };
    let crossing = trace
        .applied
        .iter()
        .position(|&(_, u)| u == first_file_last_u)
        .expect("last diff of the first file was applied");
    assert!(crossing + 1 < trace.applied.len());
    assert!(local.book().is_valid());
}

#[test]
fn spot_with_the_order_step_as_book_grid_reports_gaps_instead_of_rounding() {
    // With the 0.00001 order step, the 8-decimal book quantities are off-grid: those diffs are
    // rejected (never rounded), and the chain break is reported as a gap.
    let inst = Instrument::new("BTCUSDT", "0.01", "0.00001", "0.00001", "5").unwrap();
    let mut local = LocalBook::new(inst, None, OrderBook::DEFAULT_SLOTS);
    let mut trace = Trace::default();
    let mut reader = RecordingReader::open(&spot()).unwrap();
    let mut errors = 0;
    while let Some(Ok(l)) = reader.next() {
        if local.on_message(l.json, l.local_ns, &mut trace).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0);
    assert_eq!(
        local.sync_stats().gaps,
        1,
        "one gap, then no snapshot to resync from"
    );
    assert_eq!(trace.invalid_events, 1);
    assert!(!local.book().is_valid());
}
