//! What hedging costs the engine, over the shipped USDⓈ-M and spot BTCUSDT samples run together
//! (their market events taken once from a journal, so no decoding is timed), simulated venue and
//! all, no journal written (`NoRecorder`). Three configs in one group:
//!
//! * `two_quoted`: `configs/usdm-spot-btcusdt.toml`, both instruments quoting (no hedge group):
//!   the baseline;
//! * `hedged_idle`: `configs/hedge-perp-spot-btcusdt.toml` with a band too wide to breach (the
//!   group's delta, rooms and skew computed at every batch end, no hedge order);
//! * `hedged`: the shipped hedge config as it runs.
//!
//! Elements = inputs the engine consumed; the ratios against `two_quoted` are what to read.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::Config;
use runtime::backtest::{self, JournalSource, QueueKind, Settings};
use runtime::host::NoRecorder;
use runtime::record::{JournalRecorder, Keep};
use std::hint::black_box;
use std::time::Duration;

fn settings(data: Vec<std::path::PathBuf>) -> Settings {
    Settings {
        data: feeds::DataSpec::plain(data),
        queue: QueueKind::RiskAverse,
        entry_latency_ns: 2_000_000,
        response_latency_ns: 2_000_000,
        timer_interval_ns: 100_000_000,
        latency_log: None,
        event_cache: None,
    }
}

fn config(name: &str, edit: impl Fn(String) -> String) -> Config {
    let text = std::fs::read_to_string(ringmaker_benches::workspace(&format!("configs/{name}")))
        .expect("a shipped config");
    Config::from_toml(&edit(text)).expect("valid config")
}

fn bench(c: &mut Criterion) {
    let data = vec![
        ringmaker_benches::data(ringmaker_benches::USDM_BTCUSDT),
        ringmaker_benches::data("binance-spot/btcusdt_20240808.gz"),
        ringmaker_benches::data("binance-spot/btcusdt_20240809.gz"),
    ];
    let hedged = config("hedge-perp-spot-btcusdt.toml", |t| t);
    let idle = config("hedge-perp-spot-btcusdt.toml", |t| {
        let t = t
            .replacen("band = \"0.004\"", "band = \"1000\"", 1)
            .replacen("hard_limit = \"0.010\"", "hard_limit = \"2000\"", 1);
        assert!(
            t.contains("band = \"1000\""),
            "the shipped config changed shape"
        );
        t
    });
    let two = config("usdm-spot-btcusdt.toml", |t| t);
    // One journaled run decodes both recordings; every timed run reads its market events.
    let dir = std::env::temp_dir().join(format!("ringmaker-bench-hedge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = runtime::config::RunConfig::from_engine(hedged.clone());
    let rec = JournalRecorder::create_run(&dir, &run, 64 << 20, 0, Keep::Durable).expect("journal");
    let (_, rec) = backtest::run(&hedged, &settings(data), rec, &mut |_| {}).expect("backtest");
    rec.close().expect("close journal");
    let journal = JournalSource::open(&dir).expect("read journal");
    let s = settings(Vec::new());
    let mut g = c.benchmark_group("hedge_backtest");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for (name, cfg) in [
        ("two_quoted", &two),
        ("hedged_idle", &idle),
        ("hedged", &hedged),
    ] {
        let (o, _) = backtest::run_source(
            cfg,
            &s,
            NoRecorder,
            &mut backtest::journal_feed(journal.clone()),
            &mut |_| {},
        )
        .expect("backtest");
        let h = o
            .hedging
            .first()
            .map(|h| (h.stats.passive, h.stats.active_age + h.stats.active_hard));
        println!(
            "hedge bench {name}: {} engine inputs, hedge orders (passive, active) {h:?}",
            o.events
        );
        g.throughput(Throughput::Elements(o.events));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut src = backtest::journal_feed(journal.clone());
                black_box(
                    backtest::run_source(cfg, &s, NoRecorder, &mut src, &mut |_| {})
                        .expect("run")
                        .0
                        .events,
                )
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
