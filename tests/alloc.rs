//! The feed hot path allocates nothing once warm: a counting global allocator watches the USDⓈ-M
//! recording go through `LocalBook::on_message` (decode → sync → book) and through
//! `Decoder::decode` alone (with mark prices mixed in too), after a warm-up on the first 10,000
//! messages.
//!
//! Counting is per thread (the test harness and other tests allocate on their own threads), and
//! only between `Counter::start` and `Counter::stop`. Each message is first copied into a scratch
//! buffer sized for the largest one, so the copy itself never allocates. When a message does
//! allocate, the failure names the message (index, kind, size, decode result) and the allocation.

use engine::Instrument;
use feeds::{recording::read_all, Decoder, LocalBook, Message, SyncRule};
use test_support::alloc::{Counter, CountingAlloc, Counts};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const WARM_UP: usize = 10_000;

fn futures() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").expect("instrument")
}

fn kind_of(json: &[u8]) -> &'static str {
    let has = |needle: &[u8]| json.windows(needle.len()).any(|w| w == needle);
    if json.starts_with(b"{\"lastUpdateId\"") {
        "REST depth snapshot"
    } else if has(b"\"depthUpdate\"") {
        "depthUpdate diff"
    } else if has(b"\"bookTicker\"") || has(b"@bookTicker") {
        "bookTicker"
    } else if has(b"\"markPriceUpdate\"") {
        "markPriceUpdate"
    } else if has(b"\"aggTrade\"") {
        "aggTrade"
    } else if has(b"\"trade\"") {
        "trade"
    } else {
        "other"
    }
}

fn describe(r: &Result<Message, feeds::DecodeError>) -> String {
    match r {
        Ok(Message::Depth(_)) => "Ok(Depth)".into(),
        Ok(Message::Snapshot(_)) => "Ok(Snapshot)".into(),
        Ok(Message::Event(e)) => format!("Ok(Event {:?})", e.kind()),
        Ok(Message::Ignored(why)) => format!("Ok(Ignored {why:?})"),
        Err(e) => format!("Err({e})"),
    }
}

/// One message that allocated while counting.
struct Offender {
    index: usize,
    kind: &'static str,
    len: usize,
    result: String,
    delta: Counts,
}

/// Feeds every message after the warm-up through `step`, counting allocations per message.
/// Returns the totals and the first offenders (recorded with counting paused).
fn measure(
    messages: &[(i64, Vec<u8>)],
    mut step: impl FnMut(&mut [u8], i64) -> Result<Message, feeds::DecodeError>,
) -> (Counts, Vec<Offender>, usize) {
    let max_len = messages.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
    let mut scratch: Vec<u8> = Vec::with_capacity(max_len);
    let mut offenders: Vec<Offender> = Vec::with_capacity(16);
    let mut errors = 0usize;
    for (ns, msg) in &messages[..WARM_UP] {
        scratch.clear();
        scratch.extend_from_slice(msg);
        let _ = step(&mut scratch, *ns);
    }
    let counter = Counter::start();
    let mut before = counter.read();
    for (i, (ns, msg)) in messages.iter().enumerate().skip(WARM_UP) {
        scratch.clear();
        scratch.extend_from_slice(msg);
        let r = step(&mut scratch, *ns);
        let after = counter.read();
        let allocated = !after.since(before).is_zero();
        // `r` is dropped (and an `Err`'s string freed) below, outside the measured window only
        // if it allocated; otherwise it holds nothing to free.
        if allocated || r.is_err() {
            counter.pause();
            errors += r.is_err() as usize;
            if allocated && offenders.len() < offenders.capacity() {
                offenders.push(Offender {
                    index: i,
                    kind: kind_of(msg),
                    len: msg.len(),
                    result: describe(&r),
                    delta: after.since(before),
                });
            }
            drop(r);
            counter.resume();
        }
        before = counter.read();
    }
    (counter.stop(), offenders, errors)
}

fn report(what: &str, measured: usize, totals: Counts, offenders: &[Offender], errors: usize) {
    let mut msg = format!(
        "{what}: {} allocs, {} deallocs, {} reallocs over {measured} messages after a \
         {WARM_UP}-message warm-up ({errors} decode errors)",
        totals.allocs, totals.deallocs, totals.reallocs
    );
    for o in offenders {
        msg.push_str(&format!(
            "\n  message #{} ({}, {} bytes) -> {}: {} alloc / {} dealloc / {} realloc, last size {}",
            o.index,
            o.kind,
            o.len,
            o.result,
            o.delta.allocs,
            o.delta.deallocs,
            o.delta.reallocs,
            o.delta.last_size
        ));
    }
    assert!(totals.is_zero(), "{msg}");
    eprintln!("{msg}");
}

fn usdm_messages() -> Vec<(i64, Vec<u8>)> {
    let (messages, bad) = read_all(&[ringmaker_tests::usdm()]).expect("read the USD-M recording");
    assert_eq!(bad, 0);
    assert!(
        messages.len() > WARM_UP + 80_000,
        "{} messages",
        messages.len()
    );
    messages
}

#[test]
fn local_book_allocates_nothing_once_warm() {
    let messages = usdm_messages();
    let mut lb = LocalBook::new(
        futures(),
        Some(SyncRule::Futures),
        engine::OrderBook::DEFAULT_SLOTS,
    );
    let (totals, offenders, errors) =
        measure(&messages, |json, ns| lb.on_message(json, ns, &mut ()));
    report(
        "LocalBook::on_message",
        messages.len() - WARM_UP,
        totals,
        &offenders,
        errors,
    );
    // The run did real work: the book synced and applied the diffs.
    assert!(
        lb.sync_stats().diffs_applied > 5_000,
        "{:?}",
        lb.sync_stats()
    );
    assert!(lb.book().is_valid());
}

#[test]
fn decoder_allocates_nothing_once_warm() {
    let messages = usdm_messages();
    let mut d = Decoder::new(&[futures()]);
    let (totals, offenders, errors) = measure(&messages, |json, ns| d.decode(json, ns));
    report(
        "Decoder::decode",
        messages.len() - WARM_UP,
        totals,
        &offenders,
        errors,
    );
    assert_eq!(d.stats().errors, 0);
}

/// Mark prices (`markPriceUpdate`, which the recording lacks) decode without allocating: one
/// after every 50th recorded message, enveloped or bare, funding of either sign, with the rest
/// of the feed around them.
#[test]
fn mark_prices_decode_without_allocating_once_warm() {
    let mut messages = Vec::new();
    let mut marks = 0u64;
    for (k, (ns, msg)) in usdm_messages().into_iter().enumerate() {
        messages.push((ns, msg));
        if k % 50 == 0 {
            let r = if k % 100 == 0 {
                "0.00038167"
            } else {
                "-0.00012500"
            };
            let data = format!(
                r#"{{"e":"markPriceUpdate","E":{},"s":"BTCUSDT","p":"61794.15000000","i":"61784.62659091","P":"61784.25641265","r":"{r}","T":1723190400000}}"#,
                1_723_161_256_000 + k as u64
            );
            let json = if k % 150 == 0 {
                data
            } else {
                format!(r#"{{"stream":"btcusdt@markPrice@1s","data":{data}}}"#)
            };
            messages.push((ns, json.into_bytes()));
            marks += 1;
        }
    }
    let mut d = Decoder::new(&[futures()]);
    let mut decoded_marks = 0u64;
    let (totals, offenders, errors) = measure(&messages, |json, ns| {
        let r = d.decode(json, ns);
        if let Ok(Message::Event(e)) = &r {
            decoded_marks += u64::from(e.as_mark_price().is_some());
        }
        r
    });
    report(
        "Decoder::decode with mark prices",
        messages.len() - WARM_UP,
        totals,
        &offenders,
        errors,
    );
    assert_eq!(d.stats().errors, 0);
    assert!(
        decoded_marks > marks / 2 && decoded_marks > 1_000,
        "{decoded_marks} of {marks} mark prices measured"
    );
}

#[test]
fn counting_allocator_sees_allocations() {
    // The harness itself: a Vec allocated while counting is seen, and its free too.
    let counter = Counter::start();
    let v: Vec<u64> = Vec::with_capacity(7);
    drop(std::hint::black_box(v));
    let c = counter.stop();
    assert_eq!((c.allocs, c.deallocs), (1, 1), "{c:?}");
}

/// The feed thread's whole path — a market source, the feed handler (decode, sync, snapshot
/// requests, stamping) and a sink — allocates nothing once warm: `MarketFeed` over the recording
/// in memory, its events applied to a book, after the first 10,000 messages.
#[test]
fn market_feed_allocates_nothing_once_warm() {
    use feeds::{BookState, FeedHandler, MarketFeed, MemorySource};
    let messages = usdm_messages();
    let mut feed = MarketFeed::new(
        MemorySource::new(&messages),
        FeedHandler::with_rule(&[futures()], SyncRule::Futures),
    );
    let mut state = BookState::new(engine::OrderBook::DEFAULT_SLOTS);
    let mut quiet = ();
    for _ in 0..WARM_UP {
        let mut sink = state.sink(&mut quiet);
        assert!(feed.next(&mut sink).is_some());
    }
    let counter = Counter::start();
    let mut steps = 0usize;
    loop {
        let mut sink = state.sink(&mut quiet);
        if feed.next(&mut sink).is_none() {
            break;
        }
        steps += 1;
    }
    let c = counter.stop();
    assert_eq!(steps, messages.len() - WARM_UP);
    assert!(c.is_zero(), "MarketFeed::next allocated: {c:?}");
    let sync = feed.handler().sync_totals();
    assert!(sync.diffs_applied > 5_000, "{sync:?}");
    assert!(state.book().is_valid());
}

/// Bound decoding ([`Decoder::decode_for`], what a recording bound to its instrument goes
/// through) allocates nothing once warm, fast path included: the USD-M messages decoded for the
/// second of two instruments with their symbol (spot BTCUSDT first).
#[test]
fn bound_decoder_allocates_nothing_once_warm() {
    let messages = usdm_messages();
    let spot = Instrument::new("BTCUSDT", "0.01", "0.00000001", "0.00001", "5").unwrap();
    let mut d = Decoder::new(&[spot, futures()]);
    let (totals, offenders, errors) = measure(&messages, |json, ns| d.decode_for(json, ns, 1));
    report(
        "Decoder::decode_for",
        messages.len() - WARM_UP,
        totals,
        &offenders,
        errors,
    );
    assert_eq!(d.stats().errors, 0);
    assert!(d.stats().decoded > 80_000, "{:?}", d.stats());
}

/// The backtest's feed with two instruments — a [`feeds::MergedSource`] over the USD-M and the
/// spot recordings (read from the gzip files, one line ahead each), the bound feed handler, a
/// sink — allocates nothing once warm, up to the end of the first file of either.
#[test]
fn merged_recording_feed_allocates_nothing_once_warm() {
    use feeds::{BookState, FeedHandler, MarketFeed, MergedSource};
    let [spot_file, _] = ringmaker_tests::spot();
    let spot = Instrument::new("BTCUSDT", "0.01", "0.00000001", "0.00001", "5").unwrap();
    let mut feed = MarketFeed::new(
        MergedSource::open(&[vec![ringmaker_tests::usdm()], vec![spot_file]]).unwrap(),
        FeedHandler::new(&[
            (futures(), Some(SyncRule::Futures)),
            (spot, Some(SyncRule::Spot)),
        ]),
    );
    // One book for both: only the allocations matter here.
    let mut state = BookState::new(1 << 21);
    let mut quiet = ();
    for _ in 0..WARM_UP {
        let mut sink = state.sink(&mut quiet);
        assert!(feed.next(&mut sink).is_some());
    }
    // 93,954 + 41,249 lines; the first of the two files ends after step 135,000.
    const STEPS: usize = 130_000;
    let counter = Counter::start();
    for _ in WARM_UP..STEPS {
        let mut sink = state.sink(&mut quiet);
        if feed.next(&mut sink).is_none() {
            break;
        }
    }
    let c = counter.stop();
    assert_eq!(feed.counts(), (STEPS as u64, 0));
    assert!(
        c.is_zero(),
        "MarketFeed<MergedSource>::next allocated: {c:?}"
    );
    let h = feed.handler();
    assert!(h.all_synced());
    // 6,551 USD-M diffs and 3,451 spot ones in the files.
    assert!(
        h.sync_stats(0).diffs_applied > 6_000,
        "{:?}",
        h.sync_stats(0)
    );
    assert!(
        h.sync_stats(1).diffs_applied > 3_000,
        "{:?}",
        h.sync_stats(1)
    );
}
