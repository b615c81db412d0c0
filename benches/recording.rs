//! Decode + sync + apply of the whole USDⓈ-M BTCUSDT recording, already in memory.
//!
//! The recording is read once, outside the timed loop, and kept pristine. Each message is copied
//! into one reused scratch buffer before it is handed over (simd-json unescapes in place); the
//! copy is in both variants.
//!
//! * `local_book`: a fresh `feeds::LocalBook` per iteration (built outside the timer) fed every
//!   message: simd-json decode, normalization, snapshot/diff sync and `OrderBook` apply.
//! * `serde_json_ignored_any` (baseline): `serde_json::from_slice::<IgnoredAny>` of every message,
//!   i.e. the cost of merely parsing the JSON with a standard parser.
//!
//! `Throughput::Elements(messages)`, so criterion reports messages per second.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use engine::{Instrument, OrderBook};
use feeds::LocalBook;
use ringmaker_benches::{btcusdt_usdm, load_recording, USDM_BTCUSDT};
use serde::de::IgnoredAny;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Feeds every message to `book`; returns the number that failed to decode.
fn feed_all(book: &mut LocalBook, lines: &[(i64, Vec<u8>)], scratch: &mut Vec<u8>) -> u64 {
    let mut errors = 0;
    for (ns, line) in lines {
        scratch.clear();
        scratch.extend_from_slice(line);
        errors += u64::from(book.on_message(scratch, *ns, &mut ()).is_err());
    }
    errors
}

/// Parses every message with serde_json into `IgnoredAny`; returns the number that failed.
fn parse_all(lines: &[(i64, Vec<u8>)], scratch: &mut Vec<u8>) -> u64 {
    let mut errors = 0;
    for (_, line) in lines {
        scratch.clear();
        scratch.extend_from_slice(line);
        errors += u64::from(serde_json::from_slice::<IgnoredAny>(scratch).is_err());
    }
    errors
}

fn fresh_book(inst: Instrument) -> LocalBook {
    LocalBook::new(inst, None, OrderBook::DEFAULT_SLOTS)
}

fn bench_recording(c: &mut Criterion) {
    let inst = btcusdt_usdm();
    let lines = load_recording(USDM_BTCUSDT);
    let max_len = lines.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    let mut scratch = Vec::with_capacity(max_len);

    // One untimed pass of each: everything must decode, and the book must end up synced.
    let mut check = fresh_book(inst);
    assert_eq!(
        feed_all(&mut check, &lines, &mut scratch),
        0,
        "decode errors"
    );
    let sync = check.sync_stats();
    assert!(
        check.book().is_valid(),
        "book not valid at the end: {sync:?}"
    );
    assert_eq!(sync.gaps, 0, "sequence gaps in the recording: {sync:?}");
    let st = check.stats();
    eprintln!(
        "recording bench: {} messages ({} depth, {} bbo, {} trades), {} diffs applied, \
         {} crossed, {} rejected levels",
        lines.len(),
        st.depth_messages,
        st.bbo,
        st.trades,
        sync.diffs_applied,
        st.crossed,
        st.rejected_levels,
    );
    drop(check);
    assert_eq!(
        parse_all(&lines, &mut scratch),
        0,
        "serde_json parse errors"
    );

    let mut g = c.benchmark_group("recording_usdm_btcusdt");
    g.throughput(Throughput::Elements(lines.len() as u64))
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);

    g.bench_function("local_book", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut book = fresh_book(inst);
                let start = Instant::now();
                let errors = feed_all(&mut book, black_box(&lines), &mut scratch);
                total += start.elapsed();
                assert_eq!(errors, 0, "decode errors in a timed pass");
                black_box(book.book().best_bid());
            }
            total
        })
    });
    g.bench_function("serde_json_ignored_any", |b| {
        b.iter(|| parse_all(black_box(&lines), &mut scratch))
    });
    g.finish();
}

criterion_group!(benches, bench_recording);
criterion_main!(benches);
