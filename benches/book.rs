//! One book level apply, on a realistically deep book with realistic updates.
//!
//! Both books are pre-filled from the recording's REST snapshot (1,000 levels a side), then each
//! iteration applies the next level of the recording's depth diffs (every level of every diff
//! that follows the snapshot, in order, cycling), and reads the best price of the side it touched.
//! So touch changes, deep levels, inserts and removals all come in the recorded proportions.
//!
//! * `order_book_set_level`: `engine::OrderBook::set_level` (price-indexed array + bitmap).
//! * `btreemap` (baseline): one `BTreeMap<i64, i64>` per side, best via `last_key_value` /
//!   `first_key_value` after each update.
//!
//! One iteration is one level (`Throughput::Elements(1)`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::{BookError, OrderBook, Side};
use feeds::{Decoder, Message};
use ringmaker_benches::{btcusdt_usdm, load_recording, USDM_BTCUSDT};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

#[derive(Clone, Copy)]
struct Update {
    side: Side,
    price: i64,
    qty: i64,
}

/// The snapshot's levels and the levels of every diff that follows it (`u >= lastUpdateId`).
fn snapshot_and_updates() -> (Vec<Update>, Vec<Update>) {
    let lines = load_recording(USDM_BTCUSDT);
    let mut dec = Decoder::new(&[btcusdt_usdm()]);
    let to_updates = |dec: &Decoder, out: &mut Vec<Update>| {
        for ev in dec.levels() {
            let l = ev.as_level().expect("decoder levels are BookLevel events");
            out.push(Update {
                side: l.side,
                price: l.price,
                qty: l.qty,
            });
        }
    };
    let mut snapshot = Vec::new();
    let mut snapshot_id = None;
    let mut updates = Vec::new();
    let mut scratch = Vec::new();
    for (ns, line) in &lines {
        scratch.clear();
        scratch.extend_from_slice(line);
        match dec.decode(&mut scratch, *ns) {
            Ok(Message::Snapshot(h)) if snapshot_id.is_none() => {
                snapshot_id = Some(h.last_update_id);
                to_updates(&dec, &mut snapshot);
            }
            Ok(Message::Depth(h)) => {
                if snapshot_id.is_some_and(|l| h.final_id >= l) {
                    to_updates(&dec, &mut updates);
                }
            }
            Ok(_) => {}
            Err(e) => panic!("recorded message at {ns} does not decode: {e}"),
        }
    }
    assert!(snapshot_id.is_some(), "the recording has a depth snapshot");
    assert!(
        !updates.is_empty(),
        "the recording has diffs after its snapshot"
    );
    (snapshot, updates)
}

/// The baseline book.
#[derive(Default)]
struct BTreeBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl BTreeBook {
    /// Sets a level (qty 0 removes it) and returns the new best price of that side.
    #[inline]
    fn set_level(&mut self, side: Side, price: i64, qty: i64) -> Option<i64> {
        let map = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if qty == 0 {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
        match side {
            Side::Bid => self.bids.last_key_value().map(|(&p, _)| p),
            Side::Ask => self.asks.first_key_value().map(|(&p, _)| p),
        }
    }
}

/// Sets a level on the engine book and returns the new best price of that side.
#[inline]
fn set_order_book(book: &mut OrderBook, u: Update) -> Option<i64> {
    // Validated once over the whole sequence in `bench_book`: the only error is `OutOfWindow`
    // (a far-off level, counted and ignored by the book, as live).
    let r = book.set_level(u.side, u.price, u.qty);
    debug_assert!(
        matches!(r, Ok(()) | Err(BookError::OutOfWindow(_))),
        "{r:?}"
    );
    match u.side {
        Side::Bid => book.best_bid(),
        Side::Ask => book.best_ask(),
    }
}

fn filled_order_book(snapshot: &[Update]) -> OrderBook {
    let mut book = OrderBook::new(OrderBook::DEFAULT_SLOTS);
    for u in snapshot {
        book.set_level(u.side, u.price, u.qty)
            .expect("snapshot level fits the book");
    }
    book
}

fn filled_btree(snapshot: &[Update]) -> BTreeBook {
    let mut book = BTreeBook::default();
    for u in snapshot {
        book.set_level(u.side, u.price, u.qty);
    }
    book
}

fn bench_book(c: &mut Criterion) {
    let (snapshot, updates) = snapshot_and_updates();

    // One full pass on both: they must agree on every best price, and nothing may be refused.
    let mut ob = filled_order_book(&snapshot);
    let mut bt = filled_btree(&snapshot);
    let (mut touch_moves, mut prev) = (0u64, (ob.best_bid(), ob.best_ask()));
    for (i, &u) in updates.iter().enumerate() {
        // Far-off levels outside the window are counted and ignored, as in the live book.
        match ob.set_level(u.side, u.price, u.qty) {
            Ok(()) | Err(BookError::OutOfWindow(_)) => {}
            Err(e) => panic!("update {i} refused: {e}"),
        }
        let best = bt.set_level(u.side, u.price, u.qty);
        let ob_best = match u.side {
            Side::Bid => ob.best_bid(),
            Side::Ask => ob.best_ask(),
        };
        assert_eq!(ob_best, best, "books disagree after update {i}");
        let now = (ob.best_bid(), ob.best_ask());
        touch_moves += u64::from(now != prev);
        prev = now;
    }
    eprintln!(
        "book bench: {} snapshot levels, {} updates cycled, {:.1}% move the touch, \
         {} outside the window, depth after one pass {} bids / {} asks",
        snapshot.len(),
        updates.len(),
        100.0 * touch_moves as f64 / updates.len() as f64,
        ob.out_of_window(),
        ob.depth(Side::Bid),
        ob.depth(Side::Ask),
    );

    let mut g = c.benchmark_group("book_level_apply");
    g.throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(60);

    let mut book = filled_order_book(&snapshot);
    let mut i = 0;
    g.bench_function("order_book_set_level", |b| {
        b.iter(|| {
            let u = updates[i];
            i = if i + 1 == updates.len() { 0 } else { i + 1 };
            set_order_book(&mut book, black_box(u))
        })
    });

    let mut book = filled_btree(&snapshot);
    let mut i = 0;
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let u = updates[i];
            i = if i + 1 == updates.len() { 0 } else { i + 1 };
            let u = black_box(u);
            book.set_level(u.side, u.price, u.qty)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_book);
criterion_main!(benches);
