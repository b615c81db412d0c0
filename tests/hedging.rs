//! Issue 20: delta hedging on the shipped USDⓈ-M and spot BTCUSDT samples run together.
//!
//! Quote the perpetual and hedge on spot (`configs/hedge-perp-spot-btcusdt.toml`), and the
//! reverse (`configs/hedge-spot-perp-btcusdt.toml`). Each must keep |delta| inside the band for
//! at least 95% of the valid-book time, replay identical, breach no limit, and every hedge
//! order must be justified by the journal alone: the test rebuilds each instrument's position
//! from the journaled execution reports, the group's delta and the breach's start at every
//! batch end, and checks each hedge intent against them (an IOC only at the hard limit or past
//! the age limit; never a passive and an active hedge order open together; always on the side
//! that reduces |delta|).

use engine::{delta_units, Config, Event, ExecKind, Intent, IntentKind, Side, TimeInForce};
use journal::{Reader, RecoveryMode};
use ringmaker_tests::{config_text, spot, usdm, TempDir};
use runtime::backtest::{self, Outcome};
use runtime::record::{
    self, events_in, JournalRecorder, Keep, ReplayOutcome, KIND_BATCH_END, KIND_EVENT, KIND_EVENTS,
    KIND_INTENT,
};
use runtime::report::Report;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A journaled backtest of the shipped config `name` on both samples.
fn run(name: &str) -> (Config, Outcome, PathBuf, TempDir) {
    let run = runtime::config::RunConfig::from_toml(&config_text(name)).unwrap();
    let tmp = TempDir::new(&format!("hedging-{name}"));
    let dir = tmp.join("journal");
    let mut data = vec![usdm()];
    data.extend(spot());
    let settings = ringmaker_tests::readme_settings(data);
    let rec = JournalRecorder::create_run(&dir, &run, 16 << 20, 0, Keep::Durable).unwrap();
    let (outcome, rec) = backtest::run(&run.engine, &settings, rec, &mut |_| {}).unwrap();
    rec.close().unwrap();
    (run.engine, outcome, dir, tmp)
}

/// What the journal says the hedging did.
#[derive(Debug, Default)]
struct Audit {
    passive: u64,
    active_age: u64,
    active_hard: u64,
    /// Largest number of hedge orders placed in any 60 s.
    max_per_minute: usize,
    /// Largest |position| of each instrument, lots.
    max_abs_pos: Vec<i64>,
}

/// Rebuilds positions, delta and breaches from the journal in `dir` and checks every hedge
/// intent against them (group 0 of `cfg`).
fn audit(cfg: &Config, dir: &Path) -> Audit {
    let g = &cfg.hedges[0];
    let n = cfg.instruments.len();
    let members: Vec<u16> = g.quoted.iter().chain(&g.hedges).copied().collect();
    let mut pos = vec![0i64; n];
    let mut out = Audit {
        max_abs_pos: vec![0; n],
        ..Audit::default()
    };
    // Every order placed: (instrument, side, tif); hedge orders still open.
    let mut placed: BTreeMap<u64, (u16, Side, TimeInForce)> = BTreeMap::new();
    let mut open_hedges: BTreeMap<u64, TimeInForce> = BTreeMap::new();
    let mut hedge_times: Vec<i64> = Vec::new();
    let (mut now, mut delta, mut since) = (i64::MIN, 0i128, None::<i64>);
    let reader = Reader::open(dir, RecoveryMode::Strict).unwrap();
    for rec in reader.records() {
        let rec = rec.unwrap();
        match rec.kind {
            KIND_EVENT | KIND_EVENTS => {
                for ev in events_in(rec.kind, rec.payload).unwrap() {
                    let ev: Event = ev.unwrap();
                    now = now.max(ev.local_time_ns);
                    let Some(x) = ev.as_exec() else {
                        continue;
                    };
                    if matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill) && x.last_qty > 0 {
                        let &(inst, side, _) = placed
                            .get(&x.client_order_id)
                            .expect("a fill of an order the engine placed");
                        assert_eq!(inst, ev.instrument());
                        pos[inst as usize] += match side {
                            Side::Bid => x.last_qty,
                            Side::Ask => -x.last_qty,
                        };
                        let m = &mut out.max_abs_pos[inst as usize];
                        *m = (*m).max(pos[inst as usize].abs());
                    }
                    if matches!(
                        x.kind,
                        ExecKind::Fill
                            | ExecKind::Canceled
                            | ExecKind::Rejected
                            | ExecKind::Expired
                    ) {
                        open_hedges.remove(&x.client_order_id);
                    }
                }
            }
            KIND_BATCH_END => {
                // The engine's delta and breach at this batch end (linear and spot: exact).
                delta = members
                    .iter()
                    .map(|&i| {
                        let c = &cfg.instruments[i as usize].instrument;
                        delta_units(c, pos[i as usize], None).unwrap()
                    })
                    .sum();
                if delta.abs() > g.band {
                    since.get_or_insert(now);
                } else {
                    since = None;
                }
            }
            KIND_INTENT => {
                let i = Intent::from_bytes(rec.payload).unwrap();
                if i.kind != IntentKind::Place {
                    continue;
                }
                placed.insert(i.client_order_id, (i.instrument, i.side, i.tif));
                if !g.hedges.contains(&i.instrument) {
                    continue;
                }
                let reducing = if delta > 0 { Side::Ask } else { Side::Bid };
                assert!(delta != 0, "a hedge order with no delta: {i:?}");
                assert_eq!(
                    i.side, reducing,
                    "a hedge that grows |delta| {delta}: {i:?}"
                );
                let others: Vec<TimeInForce> = open_hedges.values().copied().collect();
                match i.tif {
                    TimeInForce::Ioc => {
                        assert!(
                            others.is_empty(),
                            "an active hedge while other hedge orders are open ({others:?}): {i:?}"
                        );
                        let since = since.expect("an active hedge inside the band");
                        if delta.abs() >= g.hard_limit {
                            out.active_hard += 1;
                        } else {
                            assert!(
                                now - since >= g.max_age_ns,
                                "an active hedge {} ms into a breach of {delta} (age limit {} \
                                 ms, hard limit {}): {i:?}",
                                (now - since) / 1_000_000,
                                g.max_age_ns / 1_000_000,
                                g.hard_limit
                            );
                            out.active_age += 1;
                        }
                    }
                    TimeInForce::PostOnly => {
                        assert!(
                            others.is_empty(),
                            "a second hedge order while {others:?} is open: {i:?}"
                        );
                        assert!(since.is_some(), "a passive hedge inside the band: {i:?}");
                        out.passive += 1;
                    }
                }
                open_hedges.insert(i.client_order_id, i.tif);
                hedge_times.push(i.time_ns);
            }
            _ => {}
        }
    }
    out.max_per_minute = hedge_times
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            hedge_times[k..]
                .iter()
                .take_while(|&&u| u - t < 60_000_000_000)
                .count()
        })
        .max()
        .unwrap_or(0);
    out
}

/// The whole check of one config.
fn hedges_within_the_band(name: &str) {
    let (cfg, outcome, dir, _tmp) = run(name);
    let report = Report::new(&cfg, &outcome);
    let h = &report.hedging["btc"];
    let g = &cfg.hedges[0];
    eprintln!(
        "{name}: in band {:.2}% of {:.1} s, passive {}, active {} (age {}, hard {}), maker share \
         {:.1}%, cost {:+.4} {}",
        h.in_band_share * 100.0,
        h.valid_s,
        h.orders.passive,
        h.orders.active,
        h.orders.active_age,
        h.orders.active_hard,
        h.volume.maker_share * 100.0,
        h.cost.total,
        h.cost.currency
    );
    // The samples overlap for minutes: the group's books are valid and fresh together.
    assert!(h.valid_s > 300.0, "{} s of valid books", h.valid_s);
    assert!(
        h.in_band_share >= 0.95,
        "|delta| in band {:.2}% of the valid-book time",
        h.in_band_share * 100.0
    );
    // Both planners worked, passive first.
    assert!(
        h.orders.passive > 0 && h.orders.active > 0,
        "{:?}",
        h.orders
    );
    // Every hedge order justified from the journal, and counted as the engine counted it.
    let a = audit(&cfg, &dir);
    assert_eq!(
        (a.passive, a.active_age, a.active_hard),
        (h.orders.passive, h.orders.active_age, h.orders.active_hard),
        "the journal's hedges against the engine's counters"
    );
    // No limit breached: the hedge rate, every position cap, the hard limit, the cost cap.
    assert!(
        a.max_per_minute <= g.max_per_min as usize,
        "{} hedge orders in a minute (limit {})",
        a.max_per_minute,
        g.max_per_min
    );
    for (k, c) in cfg.instruments.iter().enumerate() {
        assert!(
            a.max_abs_pos[k] <= c.net_max,
            "instrument {k}: |position| {} lots past net_max {}",
            a.max_abs_pos[k],
            c.net_max
        );
    }
    assert!(
        h.max_abs_delta <= h.hard_limit + 1e-12,
        "|delta| {} past the hard limit {}",
        h.max_abs_delta,
        h.hard_limit
    );
    // The run spans one UTC midnight: at most two days' caps.
    let cap = g.cost_cap.to_num::<f64>();
    assert!(
        h.cost.governor_worst_case <= 2.0 * cap,
        "active hedges' worst case {} past two days' cap {cap}",
        h.cost.governor_worst_case
    );
    assert_eq!(h.orders.cost_capped, 0, "the cost cap held a hedge back");
    // The cost split adds up, and the maker share is the maker volume's.
    assert!((h.cost.total - (h.cost.fees + h.cost.spread + h.cost.slippage)).abs() < 1e-9);
    assert!(h.cost.fees > 0.0, "hedging paid no fees: {:?}", h.cost);
    let vol = h.volume.maker + h.volume.taker;
    assert!((h.volume.maker_share - h.volume.maker / vol).abs() < 1e-12);
    // And the run replays bit for bit.
    match record::replay(&dir).unwrap() {
        ReplayOutcome::Identical { intents, .. } => assert!(intents > 0),
        other => panic!("replay: {other:?}"),
    }
}

#[test]
fn perpetual_quoted_hedged_on_spot_stays_within_the_band() {
    hedges_within_the_band("hedge-perp-spot-btcusdt.toml");
}

#[test]
fn spot_quoted_hedged_on_the_perpetual_stays_within_the_band() {
    hedges_within_the_band("hedge-spot-perp-btcusdt.toml");
}
