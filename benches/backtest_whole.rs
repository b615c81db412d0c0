//! The whole backtest from the raw recording (issue 18), in one run, with its baselines:
//!
//! * `decode_only` (the baseline): the shipped USD-M recording read from disk, inflated, decoded
//!   and synced into book events by the backtest's own feed (`runtime::backtest::feed` over
//!   `open_recordings`), drained with no engine.
//! * `whole_backtest`: what `ringmaker backtest --quiet` does, through the same library entry
//!   points (`backtest::run`: the recording decoded on a second thread, a `JournalRecorder` on a
//!   thread of its own, the per-second `latency.hlog`; then
//!   `Report::new` and `report.json`), into a temporary directory. The plots (drawn by the binary
//!   crate, not the library) are not part of it.
//! * `whole_from_cache`: the same, the recording read from the event cache (written by a first
//!   run before timing) instead of decoded.
//! * `engine_venue`: the engine and the simulated venue alone, over the recording decoded
//!   beforehand into memory (`Decoded::run` with no recorder, no latency log, no report): the
//!   events per second the throughput target counts.
//! * `sweep_8_jobs2` against `sequential_8`: `runtime::sweep::run` of 8 configs over one decoded
//!   data set (read from the event cache, as `ringmaker sweep` does once the recording is in
//!   it) on 2 threads, against the same 8 run one after another (`jobs = 1`).
//!
//! Each timed call is recorded on its own; the medians (warm-up calls included) and their ratios
//! are printed at the end.

use criterion::{criterion_group, criterion_main, Criterion};
use engine::Event;
use feeds::{DataSpec, Key};
use runtime::backtest::{self, DataSource, Decoded, EventCache, QueueKind, Settings};
use runtime::config::RunConfig;
use runtime::host::{NoRecorder, Threaded};
use runtime::record::{JournalRecorder, Keep};
use runtime::report::Report;
use runtime::sweep::{self, Axis};
use std::cell::RefCell;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

fn settings(data: Vec<DataSpec>, latency_log: Option<std::path::PathBuf>) -> Settings {
    Settings {
        data,
        queue: QueueKind::RiskAverse,
        entry_latency_ns: 2_000_000,
        response_latency_ns: 2_000_000,
        timer_interval_ns: 100_000_000,
        latency_log,
        event_cache: None,
    }
}

/// The engine and the simulated venue alone over events decoded beforehand (in memory): no
/// journal, no latency log, no report. Engine inputs consumed.
fn engine_venue(cfg: &engine::Config, decoded: &Decoded) -> u64 {
    let (outcome, _) = decoded
        .run(cfg, &settings(Vec::new(), None), NoRecorder)
        .expect("backtest");
    outcome.events
}

/// Read + inflate + decode + sync, no engine: market events produced.
fn decode_only(cfg: &engine::Config, data: &[DataSpec]) -> usize {
    let mut src = backtest::feed(
        cfg,
        backtest::open_recordings(cfg, data).expect("open recording"),
    );
    let mut out: Vec<Event> = Vec::with_capacity(8192);
    let mut n = 0;
    while src.next(&mut out).is_some() {
        n += out.len();
        out.clear();
    }
    n
}

/// `ringmaker backtest` (less the plots) into `dir`: journal (on its own thread),
/// latency.hlog, report.json; the recording decoded on a second thread, or read from the event
/// cache `cache`.
fn whole(run_cfg: &RunConfig, data: &[DataSpec], dir: &Path, cache: Option<&Path>) -> u64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("out dir");
    let cfg = &run_cfg.engine;
    let mut s = settings(data.to_vec(), Some(dir.join("latency.hlog")));
    s.event_cache = cache.map(|c| EventCache {
        dir: c.to_path_buf(),
        max_bytes: 1 << 30,
    });
    let rec = Threaded::spawn(
        JournalRecorder::create_run(
            &dir.join("journal"),
            run_cfg,
            64 << 20,
            0,
            Keep::Reproducible,
        )
        .expect("journal"),
        "journal",
    )
    .expect("journal thread");
    let (outcome, rec) = backtest::run(cfg, &s, rec, &mut |_| {}).expect("backtest");
    if cache.is_some() {
        assert!(
            matches!(
                outcome.data_source,
                DataSource::Cache(_) | DataSource::Cached { .. }
            ),
            "{:?} {:?}",
            outcome.data_source,
            outcome.cache_problems
        );
    }
    rec.into_inner()
        .expect("journal thread")
        .close()
        .expect("close journal");
    let report = Report::new(cfg, &outcome);
    let json = serde_json::to_string_pretty(&report).expect("report json");
    std::fs::write(dir.join("report.json"), json + "\n").expect("write report.json");
    outcome.events
}

/// Runs `f` once per iteration, noting each call's time in `times`.
fn timed<'a, T, F: FnMut() -> T + 'a>(
    times: &'a RefCell<Vec<f64>>,
    mut f: F,
) -> impl FnMut(u64) -> Duration + 'a {
    move |iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            black_box(f());
            let e = t.elapsed();
            times.borrow_mut().push(e.as_secs_f64());
            total += e;
        }
        total
    }
}

/// The median of what was timed; `None` if that bench did not run.
fn median(v: &RefCell<Vec<f64>>) -> Option<f64> {
    let mut v = v.borrow().clone();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn bench(c: &mut Criterion) {
    let text = std::fs::read_to_string(ringmaker_benches::workspace("configs/default.toml"))
        .expect("configs/default.toml");
    let run_cfg = RunConfig::from_toml(&text).expect("valid config");
    let cfg = &run_cfg.engine;
    let path = ringmaker_benches::data(ringmaker_benches::USDM_BTCUSDT);
    let keys = Key::of_config(cfg);
    let spec = DataSpec::parse_for(path.as_os_str(), &keys).expect("data spec");
    let data = feeds::resolve(&keys, &[spec]).expect("bind the recording");
    let axes = [
        Axis::parse("quote.start_offset=1,2,3,4").expect("axis"),
        Axis::parse("engine.orders_per_10s=100,300").expect("axis"),
    ];
    let configs = sweep::configs(&text, &axes).expect("sweep configs");
    assert_eq!(configs.len(), 8);
    let dir = std::env::temp_dir().join(format!("ringmaker-bench-whole-{}", std::process::id()));

    let cache = dir.with_extension("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let events = decode_only(cfg, &data);
    let inputs = whole(&run_cfg, &data, &dir, None);
    // Writes the cache entry the `whole_from_cache` calls read.
    assert_eq!(whole(&run_cfg, &data, &dir, Some(&cache)), inputs);
    let decoded = Decoded::decode(cfg, &data).expect("decode");
    println!(
        "backtest_whole: {} ({} market events decoded, {} engine inputs in the backtest)",
        path.display(),
        events,
        inputs
    );

    let (t_decode, t_whole, t_cached, t_core, t_sweep, t_seq) = (
        RefCell::new(Vec::new()),
        RefCell::new(Vec::new()),
        RefCell::new(Vec::new()),
        RefCell::new(Vec::new()),
        RefCell::new(Vec::new()),
        RefCell::new(Vec::new()),
    );
    let mut g = c.benchmark_group("backtest_whole");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("decode_only", |b| {
        b.iter_custom(timed(&t_decode, || decode_only(cfg, &data)))
    });
    g.bench_function("whole_backtest", |b| {
        b.iter_custom(timed(&t_whole, || whole(&run_cfg, &data, &dir, None)))
    });
    g.bench_function("whole_from_cache", |b| {
        b.iter_custom(timed(&t_cached, || {
            whole(&run_cfg, &data, &dir, Some(&cache))
        }))
    });
    g.bench_function("engine_venue", |b| {
        b.iter_custom(timed(&t_core, || engine_venue(cfg, &decoded)))
    });
    let sweep_of = |jobs: usize| {
        // As `ringmaker sweep` does once the recording is in the event cache.
        let decoded = Decoded::decode_with(
            cfg,
            &data,
            Some(EventCache {
                dir: cache.clone(),
                max_bytes: 1 << 30,
            }),
        )
        .expect("decode");
        assert!(matches!(decoded.data_source(), DataSource::Cache(_)));
        let rows = sweep::run(
            configs.clone(),
            &decoded,
            &settings(Vec::new(), None),
            jobs,
            &|_| {},
        )
        .expect("sweep");
        rows.len()
    };
    g.bench_function("sweep_8_jobs2", |b| {
        b.iter_custom(timed(&t_sweep, || sweep_of(2)))
    });
    g.bench_function("sequential_8", |b| {
        b.iter_custom(timed(&t_seq, || sweep_of(1)))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&cache);

    // A filter (`cargo bench ... -- engine_venue`) or profiling runs only some: the summary says
    // what was timed and leaves out what was not.
    let (d, w, c, e, s, q) = (
        median(&t_decode),
        median(&t_whole),
        median(&t_cached),
        median(&t_core),
        median(&t_sweep),
        median(&t_seq),
    );
    println!("\nbacktest_whole medians (s), every timed call:");
    for (name, t, v) in [
        ("decode_only", d, &t_decode),
        ("whole_backtest", w, &t_whole),
        ("whole_from_cache", c, &t_cached),
        ("engine_venue", e, &t_core),
        ("sweep_8_jobs2", s, &t_sweep),
        ("sequential_8", q, &t_seq),
    ] {
        match t {
            Some(t) => println!("  {name:<16} {t:>8.4}  ({} calls)", v.borrow().len()),
            None => println!("  {name:<16}      not run"),
        }
    }
    if let (Some(w), Some(d)) = (w, d) {
        println!("  whole_backtest / decode_only  {:>6.2}", w / d);
    }
    if let (Some(c), Some(d)) = (c, d) {
        println!("  whole_from_cache / decode_only {:>5.2}", c / d);
    }
    if let Some(e) = e {
        println!(
            "  engine_venue: {:.2} M events/s ({inputs} inputs)",
            inputs as f64 / e / 1e6
        );
    }
    if let Some(c) = c {
        println!(
            "  whole_from_cache: {:.2} M events/s",
            inputs as f64 / c / 1e6
        );
    }
    if let (Some(q), Some(s)) = (q, s) {
        println!("  sequential_8 / sweep_8_jobs2  {:>6.2}", q / s);
    }
    if let (Some(s), Some(w)) = (s, w) {
        println!("  sweep_8_jobs2 / whole_backtest {:>5.2}", s / w);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
