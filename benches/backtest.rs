//! Backtest throughput, in engine inputs per second, over the whole shipped USD-M recording with
//! `configs/default.toml`: recording → decode + sync → engine → simulated venue → reports back.
//!
//! * `from_json_recording`: the recording's lines already in memory (no gzip, no disk), so the
//!   decode, sync, engine and venue are what is measured.
//! * `from_journal`: the market events of a journal written by a first run (no decoding).
//! * Baselines in the same group: `json_source_only` and `journal_source_only` produce the same
//!   market batches without the engine or the venue, so the ratio shows what the backtest adds.
//!
//! `replay/replay_journal`: `ringmaker replay` on that journal (engine rebuilt, every input fed,
//! every intent compared), against reading and CRC-checking the journal alone.
//!
//! No journal is written in the timed runs (`NoRecorder`). Elements = inputs the engine consumed
//! (market events, execution reports, timer ticks).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::{Config, Event};
use feeds::{MarketFeed, MarketSource, MemorySource};
use runtime::backtest::{self, JournalSource, QueueKind, Settings};
use runtime::host::NoRecorder;
use runtime::record::JournalRecorder;
use std::hint::black_box;
use std::time::Duration;

fn settings() -> Settings {
    Settings {
        data: vec![],
        queue: QueueKind::RiskAverse,
        entry_latency_ns: 2_000_000,
        response_latency_ns: 2_000_000,
        timer_interval_ns: 100_000_000,
        latency_log: None,
        event_cache: None,
    }
}

fn drain<S: MarketSource>(src: &mut MarketFeed<S>) -> usize {
    let mut out: Vec<Event> = Vec::with_capacity(8192);
    let mut n = 0;
    while src.next(&mut out).is_some() {
        n += out.len();
        out.clear();
    }
    n
}

fn bench(c: &mut Criterion) {
    let text = std::fs::read_to_string(ringmaker_benches::workspace("configs/default.toml"))
        .expect("configs/default.toml");
    let cfg = Config::from_toml(&text).expect("valid config");
    let lines = ringmaker_benches::load_recording(ringmaker_benches::USDM_BTCUSDT);
    let s = settings();

    // One journaled run to read back from, and the element counts.
    let dir = std::env::temp_dir().join(format!("ringmaker-bench-bt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rec = JournalRecorder::create(&dir, &cfg, 64 << 20, 0).expect("journal");
    let (first, rec) = backtest::run_source(
        &cfg,
        &s,
        rec,
        &mut backtest::feed(&cfg, MemorySource::new(&lines)),
        &mut |_| {},
    )
    .expect("backtest");
    rec.close().expect("close journal");
    let journal = JournalSource::open(&dir).expect("read journal");
    let (from_journal, _) = backtest::run_source(
        &cfg,
        &s,
        NoRecorder,
        &mut backtest::journal_feed(journal.clone()),
        &mut |_| {},
    )
    .expect("backtest");
    println!(
        "backtest bench: {} lines, {} engine inputs from JSON, {} from the journal ({} market events), {} fills",
        lines.len(),
        first.events,
        from_journal.events,
        journal.len(),
        first.metrics[0].fills.len()
    );

    let mut g = c.benchmark_group("backtest_throughput");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(first.events));
    g.bench_function("from_json_recording", |b| {
        b.iter(|| {
            let mut src = backtest::feed(&cfg, MemorySource::new(&lines));
            black_box(
                backtest::run_source(&cfg, &s, NoRecorder, &mut src, &mut |_| {})
                    .expect("run")
                    .0
                    .events,
            )
        })
    });
    g.bench_function("json_source_only", |b| {
        b.iter(|| black_box(drain(&mut backtest::feed(&cfg, MemorySource::new(&lines)))))
    });
    g.throughput(Throughput::Elements(from_journal.events));
    g.bench_function("from_journal", |b| {
        b.iter(|| {
            let mut journal = backtest::journal_feed(journal.clone());
            black_box(
                backtest::run_source(&cfg, &s, NoRecorder, &mut journal, &mut |_| {})
                    .expect("run")
                    .0
                    .events,
            )
        })
    });
    g.bench_function("journal_source_only", |b| {
        b.iter(|| black_box(drain(&mut backtest::journal_feed(journal.clone()))))
    });
    g.finish();

    // Replay: rebuild the engine from the journal, feed every journaled input, compare every
    // intent (what `ringmaker replay` does). Baseline: reading and CRC-checking the journal alone.
    let mut g = c.benchmark_group("replay");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(first.events));
    g.bench_function("replay_journal", |b| {
        b.iter(|| {
            let out = runtime::record::replay(&dir).expect("replay");
            assert!(matches!(
                out,
                runtime::record::ReplayOutcome::Identical { .. }
            ));
            black_box(out)
        })
    });
    g.bench_function("read_journal_only", |b| {
        b.iter(|| {
            let r = journal::Reader::open(&dir, journal::RecoveryMode::Strict).expect("open");
            black_box(
                r.records()
                    .map(|x| x.expect("record").payload.len())
                    .sum::<usize>(),
            )
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
