//! End-to-end backtest of the shipped recording with the default config, checked from its
//! journal and its report; and replay of that journal, intact and edited.

use engine::{Event, EventKind, ExecKind, Intent, IntentKind};
use journal::{Durability, Reader, RecoveryMode, Writer, WriterOptions};
use ringmaker_tests::{default_config, usdm, TempDir};
use runtime::backtest::{self, Outcome, Settings};
use runtime::record::{
    self, JournalRecorder, Keep, ReplayOutcome, KIND_EVENT, KIND_EVENTS, KIND_INTENT,
};
use runtime::report::Report;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn settings(data: Vec<PathBuf>) -> Settings {
    ringmaker_tests::readme_settings(data)
}

/// One backtest shared by the tests in this file: (outcome, journal dir).
fn run() -> &'static (Outcome, PathBuf) {
    static RUN: OnceLock<(Outcome, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let cfg = default_config();
        // Shared by every test in the file until the process ends.
        let dir = TempDir::new("backtest-e2e")
            .keep_until_exit()
            .join("journal");
        let rec = JournalRecorder::create(&dir, &cfg, 16 << 20, 0).unwrap();
        let settings = settings(vec![usdm()]);
        let (outcome, rec) = backtest::run(&cfg, &settings, rec, &mut |_| {}).unwrap();
        rec.close().unwrap();
        (outcome, dir)
    })
}

fn journal_events(dir: &Path) -> (Vec<Event>, Vec<Intent>) {
    let r = Reader::open(dir, RecoveryMode::Strict).unwrap();
    let (mut evs, mut ints) = (Vec::new(), Vec::new());
    for rec in r.records() {
        let rec = rec.unwrap();
        match rec.kind {
            KIND_EVENT | KIND_EVENTS => evs.extend(
                record::events_in(rec.kind, rec.payload)
                    .unwrap()
                    .map(|e| e.unwrap()),
            ),
            KIND_INTENT => ints.push(Intent::from_bytes(rec.payload).unwrap()),
            _ => {}
        }
    }
    (evs, ints)
}

#[test]
fn position_never_passes_net_max_and_every_fill_is_accounted() {
    let (outcome, dir) = run();
    let cfg = default_config();
    let net_max = cfg.instruments[0].net_max;
    let (events, _) = journal_events(dir);
    // Replay the position from the journaled fills alone: it never leaves ±net max.
    let mut pos = 0i64;
    let mut fills = 0u64;
    let mut qty = 0i64;
    let mut sides = std::collections::HashMap::new();
    let (_, intents) = journal_events(dir);
    for i in intents.iter().filter(|i| i.kind == IntentKind::Place) {
        sides.insert(i.client_order_id, i.side);
    }
    let mut cum = std::collections::HashMap::new();
    for ev in events.iter().filter(|e| e.kind() == EventKind::ExecReport) {
        let x = ev.as_exec().unwrap();
        if matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill) {
            let prev = cum.insert(x.client_order_id, x.cum_qty).unwrap_or(0);
            let new = x.cum_qty - prev;
            assert_eq!(new, x.last_qty);
            let side = sides[&x.client_order_id];
            pos += if side == engine::Side::Bid { new } else { -new };
            assert!(
                pos.abs() <= net_max,
                "position {pos} beyond net max {net_max}"
            );
            fills += 1;
            qty += new;
        }
    }
    assert!(
        fills > 50,
        "the default config trades on the shipped recording ({fills} fills)"
    );
    let report = Report::new(&default_config(), outcome);
    let lot = outcome.metrics[0].lot;
    let r = &report.instruments[0];
    assert_eq!(r.fills.count, fills);
    // Traded quantity in the report = the sum of the fills.
    assert!((r.traded.qty - qty as f64 * lot).abs() < 1e-9);
    let m = &outcome.metrics[0];
    assert_eq!(m.fills.iter().map(|f| f.qty.abs()).sum::<i64>(), qty);
    assert!(m.pos_max <= net_max && m.pos_min >= -net_max);
    // Fills on both sides.
    assert!(m.fills.iter().any(|f| f.qty > 0) && m.fills.iter().any(|f| f.qty < 0));
}

#[test]
fn report_figures_hold_together() {
    let (outcome, _) = run();
    let cfg = default_config();
    let report = Report::new(&cfg, outcome);
    let r = &report.instruments[0];
    // Discretionary cancels within the budget in every 60 s window.
    assert!(
        r.orders.discretionary_cancels_max_per_60s
            <= cfg.instruments[0].cancel_budget_per_min as usize
    );
    // Post-only only: every fill as maker (flatten-on-stop-loss is off in the default config).
    assert_eq!(r.fills.taker, 0);
    assert_eq!(r.fills.maker_ratio, 1.0);
    assert!(r.quoting.uptime > 0.95, "quote uptime {}", r.quoting.uptime);
    let tot = r.pnl.realized + r.pnl.unrealized - r.pnl.fees;
    assert!((r.pnl.total - tot).abs() < 1e-9, "{} vs {tot}", r.pnl.total);
    assert!(r.pnl.fees > 0.0, "the default maker fee is positive");
    assert!(report.duration_s > 340.0 && report.duration_s < 350.0);
    assert!(r.markouts.s1_bps.is_some() && r.markouts.s30_bps.is_some());
    // One call in TIMED_EVERY is timed, and the first of each simulated second.
    let sampled = outcome.events.div_ceil(backtest::TIMED_EVERY);
    let count = report.on_event_latency_ns.count;
    assert!(
        count >= sampled && count <= sampled + report.duration_s as u64 + 2,
        "{count} timed of {} events",
        outcome.events
    );
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "duration_s",
        "events",
        "lines",
        "instruments",
        "portfolio",
        "book",
        "on_event_latency_ns",
        "warnings",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    let inst = &json["instruments"]["BTCUSDT"];
    for key in [
        "symbol",
        "venue",
        "kind",
        "pnl",
        "traded",
        "fills",
        "orders",
        "position",
        "max_drawdown",
        "quoting",
        "markouts",
        "modes",
        "book",
    ] {
        assert!(inst.get(key).is_some(), "report.json's BTCUSDT lacks {key}");
    }
    assert_eq!(inst["pnl"]["currency"], "USDT");
    assert_eq!(inst["kind"], "linear");
    // One instrument in USDT: the portfolio is that instrument, unconverted.
    assert_eq!(json["portfolio"]["currency"], "USDT");
    assert_eq!(json["portfolio"]["total"], inst["pnl"]["total"]);
    assert!(json["portfolio"]["conversions"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// The figures that explain the PnL (issue 17): present, shares in [0, 1], counts consistent
/// with the rest of the report, and the PnL split adding up to the total.
fn check_explained(r: &runtime::report::InstrumentReport, inst: &serde_json::Value) {
    for key in [
        "cancels",
        "fill_rate",
        "markouts_by_distance",
        "pnl_decomposition",
    ] {
        assert!(
            inst.get(key).is_some(),
            "report.json's instrument lacks {key}"
        );
    }
    for n in ["2", "5", "10"] {
        assert!(inst["quoting"]["both_within_bps"][n].is_f64(), "within {n}");
    }
    for b in ["0-2", "2-5", "5-10", "10-25", "25+"] {
        assert!(
            inst["markouts_by_distance"][b]["fills"].is_u64(),
            "bucket {b}"
        );
    }
    let q = &r.quoting;
    let w = &q.both_within_bps;
    let shares = [
        w.bps2,
        w.bps5,
        w.bps10,
        q.stale_share.bid,
        q.stale_share.ask,
    ];
    assert!(shares.iter().all(|s| (0.0..=1.0).contains(s)), "{shares:?}");
    assert!(w.bps2 <= w.bps5 && w.bps5 <= w.bps10 && w.bps10 <= q.uptime + 1e-12);
    let c = &r.cancels;
    if let Some(s) = c.discretionary_within_10bps_share {
        assert!((0.0..=1.0).contains(&s), "{s}");
    }
    if let (Some(p50), Some(p90)) = (
        c.discretionary_distance_bps.p50,
        c.discretionary_distance_bps.p90,
    ) {
        assert!(0.0 <= p50 && p50 <= p90);
    }
    assert_eq!(
        inst["cancels"]["max_discretionary_per_60s"],
        serde_json::Value::Null,
        "the 60 s maximum stays in orders, not repeated"
    );
    let f = &r.fill_rate;
    assert_eq!(f.bid.fills + f.ask.fills, r.fills.count);
    assert_eq!(f.bid.placed + f.ask.placed, r.orders.placed);
    let b = &r.markouts_by_distance;
    let bucketed = [&b.b0, &b.b2, &b.b5, &b.b10, &b.b25]
        .iter()
        .map(|x| x.fills as u64)
        .sum::<u64>();
    // Every fill came after the first mid (nothing is quoted before the book): all bucketed.
    assert_eq!(bucketed, r.fills.count);
    let d = &r.pnl_decomposition;
    assert_eq!(d.fees, r.pnl.fees);
    let sum = d.spread_capture + d.inventory - d.fees;
    assert!(
        (sum - r.pnl.total).abs() < 1e-9,
        "{d:?} adds up to {sum}, the total is {}",
        r.pnl.total
    );
    let text = r.summary();
    assert!(
        text.contains("  near mid   both sides within 5 bps "),
        "{text}"
    );
    assert!(text.contains("  PnL split  spread capture "), "{text}");
}

/// The `adapt` section of an instrument with `[instrument.quote.adapt]`: shares in [0, 1] that
/// agree with the counts, σ percentiles in order, scales at least 1 (the section only widens),
/// and the summary's line.
fn check_adapt(r: &runtime::report::InstrumentReport, inst: &serde_json::Value) {
    let a = r
        .adapt
        .as_ref()
        .expect("the config has [instrument.quote.adapt]");
    let j = &inst["adapt"];
    assert!(j.is_object(), "{inst}");
    for key in [
        "model",
        "requotes",
        "widened_by_volatility",
        "widened_by_toxicity",
        "sides_pulled",
        "model_quotes",
        "share_of_requotes",
        "sigma_bps_per_sqrt_s",
        "mean_scale",
    ] {
        assert!(j.get(key).is_some(), "adapt lacks {key}: {j}");
    }
    assert!(a.requotes > 0);
    let s = &a.share_of_requotes;
    for (n, share) in [
        (a.widened_by_volatility, s.widened_by_volatility),
        (a.widened_by_toxicity, s.widened_by_toxicity),
        (a.sides_pulled, s.sides_pulled),
        (a.model_quotes, s.model_quotes),
    ] {
        assert!(n <= a.requotes, "{n} of {} requotes", a.requotes);
        let share = share.unwrap();
        assert!((0.0..=1.0).contains(&share), "{share}");
        assert!((share - n as f64 / a.requotes as f64).abs() < 1e-12);
    }
    let sig = &a.sigma_bps_per_sqrt_s;
    let (p50, p90, max) = (sig.p50.unwrap(), sig.p90.unwrap(), sig.max.unwrap());
    assert!(0.0 < p50 && p50 <= p90 && p90 <= max, "{sig:?}");
    assert!(sig.final_.is_some_and(|f| f >= 0.0), "{sig:?}");
    assert!(j["sigma_bps_per_sqrt_s"].get("final").is_some());
    let sc = &a.mean_scale;
    assert!(sc.bid >= 1.0 && sc.ask >= 1.0, "{sc:?}");
    let text = r.summary();
    assert!(text.contains("\n  adapt      "), "{text}");
}

#[test]
fn the_report_explains_the_pnl_and_says_the_same_twice() {
    let (outcome, _) = run();
    let cfg = default_config();
    let report = Report::new(&cfg, outcome);
    let json = serde_json::to_value(&report).unwrap();
    check_explained(&report.instruments[0], &json["instruments"]["BTCUSDT"]);
    check_adapt(&report.instruments[0], &json["instruments"]["BTCUSDT"]);
    // The default config quotes both sides and fills on both.
    let r = &report.instruments[0];
    // The shipped recording is volatile enough for the shipped vol_ref to widen the grid, on
    // both sides alike (volatility alone is on), at most 2x (vol_max_scale).
    let a = r.adapt.as_ref().unwrap();
    assert_eq!(a.model, "grid");
    assert!(a.widened_by_volatility > 0, "{a:?}");
    assert_eq!(
        (a.widened_by_toxicity, a.sides_pulled, a.model_quotes),
        (0, 0, 0)
    );
    assert_eq!(a.mean_scale.bid, a.mean_scale.ask);
    assert!(a.mean_scale.bid > 1.0 && a.mean_scale.bid <= 2.0, "{a:?}");
    // Every priced requote went through the section: no more than the engine's requotes.
    assert!(a.requotes <= outcome.engine.requotes);
    assert!(r.fill_rate.bid.fills > 0 && r.fill_rate.ask.fills > 0);
    assert!(r.cancels.discretionary > 0);
    assert!(r.quoting.both_within_bps.bps10 > 0.0);
    // Prices are kept only for orders that can still be cancelled.
    assert!(outcome.metrics[0].tracked_orders() <= engine::ORDER_SLOTS);
    // A second run of the same inputs: the same figures (event time only).
    let tmp = TempDir::new("backtest-e2e-again");
    let rec = JournalRecorder::create(&tmp.join("journal"), &cfg, 16 << 20, 0).unwrap();
    let (again, rec) = backtest::run(&cfg, &settings(vec![usdm()]), rec, &mut |_| {}).unwrap();
    rec.close().unwrap();
    let json2 = serde_json::to_value(Report::new(&cfg, &again)).unwrap();
    assert_eq!(json["instruments"], json2["instruments"]);
}

/// The shipped recording with a `markPriceUpdate` line (combined-stream envelope, as recorded
/// live) after the first line of each second of receive time: mark just under half a tick above
/// the last trade price (rounds down to it), index exactly half a tick above (rounds up), funding
/// alternating in sign, the next 8-hour boundary.
/// Each is stamped with the receive time of the line before it. Returns the file and how many.
fn with_mark_prices(dir: &Path) -> (PathBuf, u64) {
    use std::io::Write;
    let text = test_support::recording_text(&usdm());
    let path = dir.join("btcusdt_marks.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let inst = default_config().instruments[0].instrument;
    let (mut next_s, mut n, mut price, mut event_ms) = (0i64, 0u64, None::<i64>, 0i64);
    let field = |l: &str, key: &str| -> Option<String> {
        let at = l.find(key)? + key.len();
        let rest = &l[at..];
        Some(rest[..rest.find([',', '}'])?].trim_matches('"').to_string())
    };
    for line in text.lines() {
        writeln!(gz, "{line}").unwrap();
        let ns: i64 = line.split_once(' ').unwrap().0.parse().unwrap();
        if line.contains(r#""e":"trade""#) {
            price = field(line, r#""p":"#).map(|p| inst.price_to_ticks(p.as_bytes()).unwrap());
            event_ms = field(line, r#""E":"#).unwrap().parse().unwrap();
        }
        let Some(t) = price.filter(|_| ns / 1_000_000_000 >= next_s) else {
            continue;
        };
        next_s = ns / 1_000_000_000 + 1;
        let eight_h = 8 * 3_600_000;
        let r = if n % 2 == 0 {
            "0.00010000"
        } else {
            "-0.00002500"
        };
        let p = format!("{}.{}", t / 10, t % 10);
        writeln!(
            gz,
            r#"{ns} {{"stream":"btcusdt@markPrice@1s","data":{{"e":"markPriceUpdate","E":{event_ms},"s":"BTCUSDT","p":"{p}4999999","P":"{p}","i":"{p}5","r":"{r}","T":{}}}}}"#,
            (event_ms / eight_h + 1) * eight_h
        )
        .unwrap();
        n += 1;
    }
    gz.finish().unwrap();
    (path, n)
}

/// A recording with mark prices backtests to exactly the same quotes, fills and report as the
/// same recording without them: the engine stores each one (journaled in time order, replayed)
/// and requotes for none.
#[test]
fn mark_prices_in_a_recording_reach_the_engine_and_change_no_figure() {
    let (outcome, dir) = run();
    let tmp = TempDir::new("backtest-e2e-marks");
    let (data, n) = with_mark_prices(tmp.path());
    assert!(n > 300, "{n} mark prices for 345 s");
    let cfg = default_config();
    let jdir = tmp.join("journal");
    let rec = JournalRecorder::create(&jdir, &cfg, 16 << 20, 0).unwrap();
    let (marked, rec) = backtest::run(&cfg, &settings(vec![data]), rec, &mut |_| {}).unwrap();
    rec.close().unwrap();
    assert_eq!(marked.feed.mark_prices, n);
    assert_eq!(marked.engine.mark_prices, n);
    assert_eq!(marked.events, outcome.events + n);
    assert_eq!(marked.lines, (outcome.lines.0 + n, outcome.lines.1));
    let (base, with) = (outcome.engine, marked.engine);
    assert_eq!(
        (with.requotes, with.intents, with.malformed),
        (base.requotes, base.intents, base.malformed),
        "a mark price is no reason to requote"
    );
    let json = |o: &Outcome| serde_json::to_value(Report::new(&cfg, o)).unwrap();
    let (a, b) = (json(outcome), json(&marked));
    for key in ["instruments", "portfolio", "book"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    // Journaled in time order among the other inputs, each as decoded.
    let (events, intents) = journal_events(&jdir);
    assert_eq!(intents, journal_events(dir).1);
    let marks: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind() == EventKind::MarkPrice)
        .collect();
    assert_eq!(marks.len() as u64, n);
    assert!(events
        .windows(2)
        .all(|w| w[0].local_time_ns <= w[1].local_time_ns));
    for (k, e) in marks.iter().enumerate() {
        let m = e.as_mark_price().unwrap();
        assert_eq!(m.funding_rate_e8, if k % 2 == 0 { 10_000 } else { -2_500 });
        // Just under half a tick rounds down to the trade's tick, half a tick up by one.
        assert_eq!(m.index_price, m.mark_price + 1, "{m:?}");
        assert_eq!(m.next_funding_ms % (8 * 3_600_000), 0);
        assert!(m.next_funding_ms * 1_000_000 > e.venue_time_ns);
    }
    assert!(matches!(
        record::replay(&jdir).unwrap(),
        ReplayOutcome::Identical { events, .. } if events == marked.events
    ));
}

#[test]
fn the_backtest_journal_replays_identically() {
    let (outcome, dir) = run();
    match record::replay(dir).unwrap() {
        ReplayOutcome::Identical {
            events,
            intents,
            reloads,
            ending,
            torn_tail,
        } => {
            assert_eq!(events, outcome.events);
            assert_eq!(reloads, 0);
            assert!(intents > 100);
            assert_eq!(ending, record::Ending::Clean);
            assert!(torn_tail.is_none());
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn an_edited_input_is_reported_at_the_right_sequence() {
    let (_, dir) = run();
    // Copy the journal, turning one operator-free input into a kill switch: the engine must
    // then cancel everything at the next batch end, which the original journal does not hold.
    let reader = Reader::open(dir, RecoveryMode::Strict).unwrap();
    let recs: Vec<(u16, i64, Vec<u8>, u64)> = reader
        .records()
        .map(|r| {
            r.map(|r| (r.kind, r.timestamp_ns, r.payload.to_vec(), r.seq))
                .unwrap()
        })
        .collect();
    // An event late in the run, followed by at least one journaled intent.
    let edit = recs
        .iter()
        .rposition(|r| r.0 == KIND_EVENTS && r.3 < recs.len() as u64 * 9 / 10)
        .unwrap();
    let tmp = TempDir::new("replay-edit");
    let out = tmp.join("journal");
    let mut w = Writer::create(
        &out,
        WriterOptions {
            segment_size: 16 << 20,
            durability: Durability::None,
            header_hash: reader.header().header_hash,
            created_ns: 0,
        },
    )
    .unwrap();
    for (k, (kind, t, payload, _)) in recs.iter().enumerate() {
        if k == edit {
            // The record's first input becomes the halt; the rest of the record is kept.
            let ev = Event::from_bytes(&payload[..Event::SIZE]).unwrap();
            let halt = Event::control(0, ev.local_time_ns, engine::Command::Halt);
            let mut edited = payload.clone();
            edited[..Event::SIZE].copy_from_slice(&halt.to_bytes());
            w.append(*kind, *t, &edited).unwrap();
        } else {
            w.append(*kind, *t, payload).unwrap();
        }
    }
    w.close().unwrap();
    let edited_seq = recs[edit].3;
    match record::replay(&out).unwrap() {
        ReplayOutcome::Diverged { seq, expected, got } => {
            // The engine emits the halt's mode change at the batch end that follows the edit;
            // the journal holds something else (or nothing) at that point.
            let next_batch = recs[edit..]
                .iter()
                .find(|r| r.0 == record::KIND_BATCH_END)
                .unwrap()
                .3;
            assert!(seq > edited_seq);
            assert_eq!(
                seq,
                next_batch + 1,
                "edit at {edited_seq}, batch end at {next_batch}: expected {expected}, got {got}"
            );
            assert!(got.contains("KillSwitch"), "{got}");
        }
        ReplayOutcome::Identical { .. } => panic!("an edited input must diverge"),
    }
}

/// `configs/spot-btcusdt.toml` on the two-file spot sample: the spot sync rule keeps the book
/// valid for the whole run, the engine trades both sides, and the journal replays identically.
#[test]
fn the_spot_sample_backtests_by_the_spot_rule() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/spot-btcusdt.toml"
    ))
    .unwrap();
    let run = runtime::config::RunConfig::from_toml(&text).unwrap();
    let cfg = &run.engine;
    assert_eq!(cfg.instruments[0].venue, engine::VenueFlavour::BinanceSpot);
    let tmp = TempDir::new("backtest-spot");
    let dir = tmp.join("journal");
    let rec = JournalRecorder::create_run(&dir, &run, 16 << 20, 0, Keep::Reproducible).unwrap();
    let settings = settings(ringmaker_tests::spot().to_vec());
    let (outcome, rec) = backtest::run(cfg, &settings, rec, &mut |_| {}).unwrap();
    rec.close().unwrap();
    let report = Report::new(cfg, &outcome);
    assert!(
        report.book.valid_share >= 0.99,
        "valid {:.4}",
        report.book.valid_share
    );
    assert_eq!((report.book.gaps, report.book.diffs_applied), (0, 6493));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let json = serde_json::to_value(&report).unwrap();
    check_explained(&report.instruments[0], &json["instruments"]["BTCUSDT"]);
    let buys = outcome.metrics[0]
        .fills
        .iter()
        .filter(|f| f.qty > 0)
        .count();
    let sells = outcome.metrics[0]
        .fills
        .iter()
        .filter(|f| f.qty < 0)
        .count();
    assert!(
        buys > 0 && sells > 0,
        "fills on both sides: {buys} buys, {sells} sells"
    );
    match record::replay(&dir).unwrap() {
        ReplayOutcome::Identical { intents, .. } => assert!(intents > 0),
        other => panic!("spot journal diverged: {other:?}"),
    }
}

/// The default (USD-M) config on the spot sample, bound to it explicitly (given plainly, the
/// files are refused: they are spot's): the futures rule cannot sync spot diffs, and the report
/// says so instead of passing silently.
#[test]
fn a_run_whose_book_was_mostly_invalid_carries_a_warning() {
    let cfg = default_config();
    let mut settings = settings(Vec::new());
    settings.data = ringmaker_tests::spot()
        .into_iter()
        .map(|p| feeds::DataSpec::bound(feeds::Target::parse("BTCUSDT").unwrap(), p))
        .collect();
    let (outcome, _) =
        backtest::run(&cfg, &settings, runtime::host::NoRecorder, &mut |_| {}).unwrap();
    let report = Report::new(&cfg, &outcome);
    assert!(report.book.valid_share < 0.5, "{}", report.book.valid_share);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("the book was valid for only")),
        "{:?}",
        report.warnings
    );
    assert!(report.summary().contains("WARNING"), "{}", report.summary());
    // And the USD-M run of the shared test has none.
    assert!(Report::new(&cfg, &run().0).warnings.is_empty());
}

/// Issue 11: the report's cancel figures agree with each other: a mean per minute can never
/// exceed the busiest minute (the default run reported 52.1 mean against a 50 max, the mean
/// being taken over the run's exact length and the max over started minutes).
#[test]
fn cancels_per_minute_mean_never_exceeds_the_max() {
    let report = Report::new(&default_config(), &run().0);
    let o = &report.instruments[0].orders;
    assert!(o.cancels_per_min_max > 0);
    assert!(
        o.cancels_per_min_mean <= o.cancels_per_min_max as f64,
        "mean {} > max {}",
        o.cancels_per_min_mean,
        o.cancels_per_min_max
    );
}

/// Two instruments with one symbol: BTCUSDT on USDⓈ-M (as in `configs/default.toml`) and on spot
/// (as in `configs/spot-btcusdt.toml`: 0.01 tick, 0.00001 order lot, 8-decimal book quantities,
/// balances), each venue with its own order limits: the shipped `configs/usdm-spot-btcusdt.toml`.
fn usdm_and_spot_config() -> runtime::config::RunConfig {
    runtime::config::RunConfig::from_toml(&ringmaker_tests::config_text("usdm-spot-btcusdt.toml"))
        .unwrap()
}

/// Two instruments, one recording each (USD-M BTCUSDT, spot BTCUSDT over its two files), bound
/// by what the files hold and merged in time order: both books sync (each from the REST
/// snapshot of its own recording, which names no symbol), both instruments place orders and get
/// fills, and the journal replays identically. The same files bound explicitly, in another
/// order, give the very same run. (Before recordings were bound, the snapshot lines were dropped
/// with several instruments: no book synced and no order was placed.)
#[test]
fn two_instruments_on_one_symbol_both_sync_trade_and_replay() {
    let run = usdm_and_spot_config();
    let cfg = &run.engine;
    assert_eq!(cfg.instruments.len(), 2);
    assert_eq!(cfg.instruments[1].venue, engine::VenueFlavour::BinanceSpot);
    let [spot1, spot2] = ringmaker_tests::spot();
    let tmp = TempDir::new("backtest-two");
    let backtest_into = |dir: &Path, data: Vec<feeds::DataSpec>| {
        let rec = JournalRecorder::create_run(dir, &run, 16 << 20, 0, Keep::Reproducible).unwrap();
        let mut s = settings(Vec::new());
        s.data = data;
        let (outcome, rec) = backtest::run(cfg, &s, rec, &mut |_| {}).unwrap();
        rec.close().unwrap();
        outcome
    };
    // Plain paths, spot first: each bound by its streams' symbol and its diffs' flavour.
    let dir = tmp.join("sniffed");
    let outcome = backtest_into(
        &dir,
        feeds::DataSpec::plain([spot1.clone(), spot2.clone(), usdm()]),
    );
    for (i, s) in outcome.sync_by_instrument.iter().enumerate() {
        assert_eq!(
            (s.snapshots, s.gaps, s.resyncs),
            (1, 0, 0),
            "instrument {i}: {s:?}"
        );
    }
    // The counts of the one-instrument runs: 6,547 diffs applied on USD-M, 6,493 on spot.
    assert_eq!(outcome.sync_by_instrument[0].diffs_applied, 6_547);
    assert_eq!(outcome.sync_by_instrument[1].diffs_applied, 6_493);
    assert_eq!(outcome.feed.decode_errors, 0);

    let (events, intents) = journal_events(&dir);
    let per = |id: u16| {
        let valid = events
            .iter()
            .filter(|e| e.instrument() == id && e.kind() == EventKind::BookValid)
            .count();
        let placed = intents
            .iter()
            .filter(|i| i.instrument == id && i.kind == IntentKind::Place)
            .count();
        let fills = events
            .iter()
            .filter(|e| e.instrument() == id)
            .filter_map(|e| e.as_exec())
            .filter(|x| matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill))
            .count();
        (valid, placed, fills)
    };
    for id in [0, 1] {
        let (valid, placed, fills) = per(id);
        assert_eq!(valid, 1, "instrument {id}: book valid once");
        assert!(placed > 50, "instrument {id}: {placed} orders placed");
        assert!(fills > 10, "instrument {id}: {fills} fills");
    }
    // Spot prices are on the 0.01 grid, USD-M's on the 0.10 one: each instrument got the
    // levels of its own recording (BTCUSDT ~61,800: 6.18M ticks of 0.01, 618k of 0.10).
    let level_px = |id: u16| {
        events
            .iter()
            .filter(|e| e.instrument() == id)
            .find_map(|e| e.as_level())
            .unwrap()
            .price
    };
    assert!((500_000..700_000).contains(&level_px(0)), "{}", level_px(0));
    assert!(
        (5_000_000..7_000_000).contains(&level_px(1)),
        "{}",
        level_px(1)
    );

    match record::replay(&dir).unwrap() {
        ReplayOutcome::Identical {
            events: n, intents, ..
        } => {
            assert_eq!(n, outcome.events);
            assert!(intents > 100);
        }
        other => panic!("two-instrument journal diverged: {other:?}"),
    }

    // The report: one section per instrument, keyed by venue (both are BTCUSDT), each within
    // its own limits; the portfolio (both in USDT) is their sum.
    let report = Report::new(cfg, &outcome);
    let keys: Vec<&str> = report.instruments.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["binance-usdm:BTCUSDT", "binance-spot:BTCUSDT"]);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["instruments"]["binance-spot:BTCUSDT"]["balances"].is_object());
    for (r, c) in report.instruments.iter().zip(&cfg.instruments) {
        let net_max = c.net_max as f64 * c.instrument.lot.format(1).parse::<f64>().unwrap();
        assert!(
            r.position.max <= net_max && r.position.min >= -net_max,
            "{}: {:?}",
            r.key,
            r.position
        );
        assert!(
            r.orders.discretionary_cancels_max_per_60s <= c.cancel_budget_per_min as usize,
            "{}",
            r.key
        );
        assert_eq!(r.pnl.currency, "USDT");
    }
    let p = &report.portfolio;
    assert_eq!((p.currency.as_str(), p.conversions.len()), ("USDT", 0));
    let sum = |f: &dyn Fn(&runtime::report::InstrumentReport) -> f64| {
        report.instruments.iter().map(f).sum::<f64>()
    };
    assert!((p.total - sum(&|r| r.pnl.total)).abs() < 1e-9);
    assert!((p.fees - sum(&|r| r.pnl.fees)).abs() < 1e-9);
    assert!((p.traded_notional - sum(&|r| r.traded.notional)).abs() < 1e-6);
    assert!((p.total - (p.realized + p.unrealized - p.fees)).abs() < 1e-9);
    // The instruments do not touch each other: the USD-M figures are the one-instrument run's.
    let alone = Report::new(&default_config(), &self::run().0);
    let (a, b) = (&alone.instruments[0], &report.instruments[0]);
    assert_eq!((a.fills.count, a.pnl.total), (b.fills.count, b.pnl.total));

    // Bound explicitly, the USD-M file last: the same merge, the same run.
    let target = |t: &str| feeds::Target::parse(t).unwrap();
    let explicit = backtest_into(
        &tmp.join("explicit"),
        vec![
            feeds::DataSpec::bound(target("binance-spot:BTCUSDT"), spot1),
            feeds::DataSpec::bound(target("binance-spot:btcusdt"), spot2),
            feeds::DataSpec::bound(target("binance-usdm:BTCUSDT"), usdm()),
        ],
    );
    assert_eq!(explicit.events, outcome.events);
    assert_eq!(explicit.sync_by_instrument, outcome.sync_by_instrument);
    assert_eq!(journal_events(&tmp.join("explicit")), (events, intents));
}

/// The report's figures and the journal's inputs and intents of a run, to compare runs (the
/// `on_event` timings left out).
fn figures(
    cfg: &engine::Config,
    o: &Outcome,
    journal: &Path,
) -> (serde_json::Value, Vec<Event>, Vec<Intent>) {
    let mut json = serde_json::to_value(Report::new(cfg, o)).unwrap();
    json.as_object_mut().unwrap().remove("on_event_latency_ns");
    let (events, intents) = journal_events(journal);
    (json, events, intents)
}

/// The decode thread, the event cache written, read back, and damaged: the same backtest each
/// time, and the same as decoding on the engine thread itself.
#[test]
fn the_decode_thread_and_the_event_cache_change_nothing() {
    let cfg = default_config();
    let (reference, ref_dir) = run();
    let want = figures(&cfg, reference, ref_dir);
    let tmp = TempDir::new("backtest-cache");
    let cache = tmp.join("cache");
    let mut s = settings(vec![usdm()]);
    s.event_cache = Some(backtest::EventCache {
        dir: cache.clone(),
        max_bytes: 1 << 30,
    });
    let run_into = |name: &str, s: &Settings| {
        let dir = tmp.join(name);
        let rec = JournalRecorder::create(&dir, &cfg, 16 << 20, 0).unwrap();
        let (o, rec) = backtest::run(&cfg, s, rec, &mut |_| {}).unwrap();
        rec.close().unwrap();
        let got = figures(&cfg, &o, &dir);
        (o, got)
    };
    // Decoded on the engine thread (no decode thread): the reference's figures.
    {
        let dir = tmp.join("direct");
        let rec = JournalRecorder::create(&dir, &cfg, 16 << 20, 0).unwrap();
        let mut src = backtest::feed(&cfg, backtest::open_recordings(&cfg, &s.data).unwrap());
        let (o, rec) = backtest::run_source(&cfg, &s, rec, &mut src, &mut |_| {}).unwrap();
        rec.close().unwrap();
        assert_eq!(figures(&cfg, &o, &dir), want, "decoded in place");
    }
    // A miss writes the entry; a hit reads it.
    let (o, got) = run_into("miss", &s);
    let entry = match &o.data_source {
        backtest::DataSource::Cached { path, evicted: 0 } => path.clone(),
        other => panic!("{other:?}"),
    };
    assert!(o.cache_problems.is_empty(), "{:?}", o.cache_problems);
    assert_eq!(got, want, "miss");
    let (o, got) = run_into("hit", &s);
    assert_eq!(o.data_source, backtest::DataSource::Cache(entry.clone()));
    assert_eq!(got, want, "hit");
    // A sweep's decoding reads the same entry, and runs the same backtest from it.
    {
        let d = backtest::Decoded::decode_with(&cfg, &s.data, s.event_cache.clone()).unwrap();
        assert_eq!(d.data_source(), &backtest::DataSource::Cache(entry.clone()));
        let plain = backtest::Decoded::decode(&cfg, &s.data).unwrap();
        assert_eq!(plain.data_source(), &backtest::DataSource::Decoded);
        assert_eq!(d.events(), plain.events());
        let dir = tmp.join("decoded");
        let rec = JournalRecorder::create(&dir, &cfg, 16 << 20, 0).unwrap();
        let (o, rec) = d.run(&cfg, &settings(Vec::new()), rec).unwrap();
        rec.close().unwrap();
        assert_eq!(
            figures(&cfg, &o, &dir),
            want,
            "sweep decoding from the cache"
        );
    }
    // The journal written on a thread of its own (as `ringmaker backtest` does): the same
    // files, byte for byte.
    {
        let dir = tmp.join("threaded");
        let rec = runtime::host::Threaded::spawn(
            JournalRecorder::create(&dir, &cfg, 16 << 20, 0).unwrap(),
            "journal",
        )
        .unwrap();
        let (o, rec) = backtest::run(&cfg, &s, rec, &mut |_| {}).unwrap();
        rec.into_inner().unwrap().close().unwrap();
        assert_eq!(figures(&cfg, &o, &dir), want, "threaded journal");
        let files = |d: &Path| {
            let mut v: Vec<(std::ffi::OsString, Vec<u8>)> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
                .collect();
            v.sort();
            v
        };
        let (a, b) = (files(&tmp.join("hit")), files(&dir));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(x == y, "{:?} differs", x.0);
        }
    }
    // A damaged entry: said, decoded instead, written again.
    let mut bytes = std::fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&entry, &bytes).unwrap();
    let (o, got) = run_into("damaged", &s);
    assert!(matches!(&o.data_source, backtest::DataSource::Cached { path, .. } if *path == entry));
    assert_eq!(o.cache_problems.len(), 1, "{:?}", o.cache_problems);
    assert!(
        o.cache_problems[0].contains("CRC"),
        "{:?}",
        o.cache_problems
    );
    assert_eq!(got, want, "damaged");
    let (o, _) = run_into("healed", &s);
    assert_eq!(o.data_source, backtest::DataSource::Cache(entry.clone()));
    // Damaged at its very end (every batch already handed over), and cut short: the same.
    let whole = std::fs::read(&entry).unwrap();
    let mut last = whole.clone();
    *last.last_mut().unwrap() ^= 1;
    for (name, bytes) in [("end", &last[..]), ("cut", &whole[..whole.len() * 2 / 3])] {
        std::fs::write(&entry, bytes).unwrap();
        let (o, got) = run_into(name, &s);
        assert!(
            matches!(&o.data_source, backtest::DataSource::Cached { .. }),
            "{name}: {:?}",
            o.data_source
        );
        assert_eq!(o.cache_problems.len(), 1, "{name}: {:?}", o.cache_problems);
        assert_eq!(got, want, "{name}");
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            whole,
            "{name}: written again"
        );
    }
    // A cache directory that cannot be made: said, and the run goes on.
    std::fs::write(tmp.join("file"), b"x").unwrap();
    s.event_cache = Some(backtest::EventCache {
        dir: tmp.join("file").join("cache"),
        max_bytes: 1 << 30,
    });
    let (o, got) = run_into("unwritable", &s);
    assert_eq!(o.data_source, backtest::DataSource::Decoded);
    assert!(
        o.cache_problems.iter().any(|p| p.contains("not written")),
        "{:?}",
        o.cache_problems
    );
    assert_eq!(got, want, "unwritable");
}
