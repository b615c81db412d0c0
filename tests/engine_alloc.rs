//! The engine's hot path allocates nothing: a counting global allocator watches 100,000
//! recorded events (decoded by `feeds`) go through `on_event` / `on_batch_end` after warm-up,
//! first into the engine alone, then through the paper pipeline's engine-thread path (a
//! `Deferred` journal recorder flushed into the mapped journal after each batch).

use engine::Engine;
use feeds::{recorded_events, SyncRule};
use ringmaker_tests::{coinm, config_text, default_config, spot, usdm, Responder};
use runtime::host::{Deferred, Host, NoRecorder, Recorder};
use runtime::record::JournalRecorder;
use test_support::alloc::{Counter, CountingAlloc, Counts};
use test_support::TempDir;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Feeds the recording through `host` (the venue's reports back in after each batch) and
/// counts allocations over 100,000 events after 2,000 batches of warm-up. `after_batch` runs
/// after each batch end, inside the counted window (the paper pipeline's journal flush).
/// Counted on this thread, the one that runs the engine, its recorder and the stand-in venue.
fn count_hot_path<R: Recorder>(
    host: &mut Host<R>,
    after_batch: impl FnMut(&mut Host<R>),
) -> Counts {
    count_on(
        &default_config(),
        &[usdm()],
        SyncRule::Futures,
        0,
        host,
        after_batch,
    )
}

/// [`count_hot_path`] for any config and recording; every `fill_every`-th place is filled.
fn count_on<R: Recorder>(
    cfg: &engine::Config,
    data: &[std::path::PathBuf],
    rule: SyncRule,
    fill_every: u64,
    host: &mut Host<R>,
    after_batch: impl FnMut(&mut Host<R>),
) -> Counts {
    count_with(cfg, data, rule, fill_every, host, after_batch, |_| None)
}

/// [`count_on`], with `inject(k)`'s event (if any) at the end of batch `k`, as the bus thread
/// publishes into the input ring.
fn count_with<R: Recorder>(
    cfg: &engine::Config,
    data: &[std::path::PathBuf],
    rule: SyncRule,
    fill_every: u64,
    host: &mut Host<R>,
    after_batch: impl FnMut(&mut Host<R>),
    inject: impl FnMut(usize) -> Option<engine::Event>,
) -> Counts {
    let insts: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
    let rec = recorded_events(data, &insts, rule).unwrap();
    let batches: Vec<&[engine::Event]> = rec.batches().collect();
    count_batches(&batches, fill_every, host, after_batch, inject)
}

/// [`count_with`] over batches already decoded.
fn count_batches<R: Recorder>(
    batches: &[&[engine::Event]],
    fill_every: u64,
    host: &mut Host<R>,
    mut after_batch: impl FnMut(&mut Host<R>),
    mut inject: impl FnMut(usize) -> Option<engine::Event>,
) -> Counts {
    let mut venue = Responder::new(4096, false);
    venue.fill_every = fill_every;
    let mut reports = Vec::with_capacity(4096);
    let mut counted_events = 0u64;
    let mut intents_before = 0;
    let mut counter: Option<Counter> = None;
    for (k, batch) in batches.iter().enumerate() {
        if k == 2_000 {
            intents_before = venue.count;
            counter = Some(Counter::start());
        }
        for ev in batch.iter() {
            host.event(ev, &mut venue);
        }
        if let Some(ev) = inject(k) {
            host.event(&ev, &mut venue);
        }
        host.batch_end(&mut venue);
        after_batch(host);
        reports.clear();
        reports.append(&mut venue.pending);
        for r in &reports {
            host.event(r, &mut venue);
        }
        host.batch_end(&mut venue);
        after_batch(host);
        if counter.is_some() {
            counted_events += (batch.len() + reports.len()) as u64;
            if counted_events >= 100_000 {
                break;
            }
        }
    }
    let counts = counter.map(Counter::stop).unwrap_or_default();
    assert!(
        counted_events >= 100_000,
        "only {counted_events} events after warm-up"
    );
    assert!(
        venue.count > intents_before,
        "the engine quoted while counted"
    );
    counts
}

/// The engine alone, then the paper pipeline's engine-thread path — the engine behind a
/// `Deferred` journal recorder, flushed into the mapped journal after every batch end (segments
/// large enough that no roll-over, which creates a file, falls in the window).
#[test]
fn engine_hot_path_makes_zero_allocations_after_warm_up() {
    let cfg = default_config();
    let mut bare = Host::new(Engine::new(&cfg), NoRecorder);
    assert_eq!(
        count_hot_path(&mut bare, |_| {}),
        Counts::ZERO,
        "engine alone: allocations, deallocations, reallocations on the hot path"
    );

    let tmp = TempDir::new("engine-alloc-journal");
    let dir = tmp.join("journal");
    let recorder = JournalRecorder::create(&dir, &cfg, 256 << 20, 0).unwrap();
    let mut host = Host::new(Engine::new(&cfg), Deferred::new(recorder, 8192));
    let counts = count_hot_path(&mut host, |h| h.recorder.flush());
    assert_eq!(
        counts,
        Counts::ZERO,
        "engine + deferred journal: allocations, deallocations, reallocations on the hot path"
    );
    let recorder = host.recorder.into_inner();
    assert!(recorder.events() > 100_000, "{}", recorder.events());
    recorder.close().unwrap();
    // What was journaled this way replays: same records, same order.
    let outcome = runtime::record::replay(&dir).unwrap();
    assert!(
        matches!(outcome, runtime::record::ReplayOutcome::Identical { .. }),
        "{outcome:?}"
    );
}

/// Issue 12: the inverse and spot paths (coin-valued fills, base-asset fees, balance rooms) and
/// the linear one, with fills, allocate nothing either.
#[test]
fn every_instrument_kind_fills_without_allocating() {
    for (name, data, rule) in [
        ("default.toml", vec![usdm()], SyncRule::Futures),
        (
            "coinm-btcusd-perp.toml",
            coinm().to_vec(),
            SyncRule::Futures,
        ),
        ("spot-btcusdt.toml", spot().to_vec(), SyncRule::Spot),
    ] {
        let cfg = engine::Config::from_toml(&config_text(name)).unwrap();
        let mut host = Host::new(Engine::new(&cfg), NoRecorder);
        let counts = count_on(&cfg, &data, rule, 7, &mut host, |_| {});
        assert_eq!(counts, Counts::ZERO, "{name}: allocations on the hot path");
        let v = host.engine.instrument(0).unwrap();
        assert!(
            v.position.maker_fills >= 5,
            "{name}: the fills reached the position ({})",
            v.position.maker_fills
        );
    }
}

/// Issue 17: every adaptive-spread estimator fed (volatility, VPIN and imbalance from the
/// trades, the intensity fit and GLFT for layer 0) allocates nothing either.
#[test]
fn spreads_that_adapt_allocate_nothing() {
    for model in ["grid", "glft", "avellaneda_stoikov"] {
        // The shipped adapt section, with every other signal switched on after its last line.
        let extra = format!(
            "vpin_bucket = \"5\"\nvpin_widen = 1.0\nimbalance_widen = 1.0\nimbalance_pull = 0.8\n\
             funding_skew = 1.0\nmodel = \"{model}\""
        );
        let text: String = config_text("default.toml")
            .lines()
            .flat_map(|l| {
                let more = l.starts_with("vol_max_scale").then(|| extra.clone());
                std::iter::once(l.to_owned()).chain(more)
            })
            .map(|l| l + "\n")
            .collect();
        assert!(
            text.contains("vpin_bucket"),
            "the shipped config changed shape"
        );
        let cfg = engine::Config::from_toml(&text).unwrap();
        let mut host = Host::new(Engine::new(&cfg), NoRecorder);
        let counts = count_on(&cfg, &[usdm()], SyncRule::Futures, 7, &mut host, |_| {});
        assert_eq!(counts, Counts::ZERO, "{model}: allocations on the hot path");
    }
}

/// Issue 19: the firm's limits from the bus (a new room every 50 batches, its halt now and then)
/// clamp the ladders and bound the places without allocating.
#[test]
fn firm_limits_allocate_nothing() {
    let cfg = default_config();
    let mut host = Host::new(Engine::new(&cfg), NoRecorder);
    // Rooms from 0 to about 1,200 USD a side at 61,000 USD (tick·lot units of 0.0001 USD).
    let counts = count_with(
        &cfg,
        &[usdm()],
        SyncRule::Futures,
        7,
        &mut host,
        |_| {},
        |k| {
            (k % 50 == 0).then(|| {
                let room = ((k / 50) % 7) as i64 * 2_000_000;
                engine::Event::firm_limit(
                    0,
                    0,
                    &engine::FirmLimit {
                        long_units: room,
                        short_units: 12_000_000 - room,
                        halt: k % 1_000 == 500,
                    },
                )
            })
        },
    );
    assert_eq!(
        counts,
        Counts::ZERO,
        "firm limits: allocations on the hot path"
    );
    // The limits were in force: the rooms refused places, the halt changed modes.
    let stats = host.engine.stats();
    assert_eq!(stats.malformed, 0);
    assert!(stats.places_risk_refused > 0, "{stats:?}");
}

/// Issue 20: a `[[hedge]]` group (the perpetual quoted, spot its hedge instrument) on both
/// recordings merged: the delta, the quoted side's room and skew, passive and active hedge
/// orders, their cancels and the governor allocate nothing.
#[test]
fn hedging_allocates_nothing() {
    // A short age limit, so that active hedges follow the passive ones within the window.
    let text =
        config_text("hedge-perp-spot-btcusdt.toml").replace("max_age_ms = 3000", "max_age_ms = 50");
    assert!(
        text.contains("max_age_ms = 50"),
        "the shipped config changed shape"
    );
    let run = runtime::config::RunConfig::from_toml(&text).unwrap();
    let cfg = &run.engine;
    // Both recordings merged and synced, as the backtest binds them: its journal's market
    // events, in their batches.
    let tmp = TempDir::new("engine-alloc-hedge");
    let dir = tmp.join("journal");
    let mut data = vec![usdm()];
    data.extend(spot());
    let rec = JournalRecorder::create_run(&dir, &run, 64 << 20, 0, runtime::record::Keep::Durable)
        .unwrap();
    let settings = ringmaker_tests::readme_settings(data);
    let (_, rec) = runtime::backtest::run(cfg, &settings, rec, &mut |_| {}).unwrap();
    rec.close().unwrap();
    let mut source = runtime::backtest::JournalSource::open(&dir).unwrap();
    let mut owned: Vec<Vec<engine::Event>> = Vec::new();
    while let Some(Ok(feeds::Input::Events { events, .. })) =
        feeds::MarketSource::next_input(&mut source)
    {
        owned.push(events.to_vec());
    }
    let batches: Vec<&[engine::Event]> = owned.iter().map(|b| b.as_slice()).collect();
    let mut host = Host::new(Engine::new(cfg), NoRecorder);
    // The counters when counting starts: after_batch runs twice a batch, and counting starts at
    // batch 2,000 (reading them is a copy: nothing allocated).
    let (mut calls, mut at_start) = (0usize, None);
    let counts = count_batches(
        &batches,
        3,
        &mut host,
        |h| {
            if calls == 4_000 {
                at_start = h.engine.hedge(0).map(|v| v.stats);
            }
            calls += 1;
        },
        |_| None,
    );
    assert_eq!(counts, Counts::ZERO, "hedging: allocations on the hot path");
    // The hedge worked while counted: both planners placed orders.
    let (s, s0) = (host.engine.hedge(0).unwrap().stats, at_start.unwrap());
    assert!(
        s.passive > s0.passive && s.active_age + s.active_hard > s0.active_age + s0.active_hard,
        "{s0:?} → {s:?}"
    );
}
