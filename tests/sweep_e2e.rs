//! `ringmaker sweep`'s promise: each combination's result equals a single backtest of that
//! config. A 3 × 3 grid over the shipped USD-M recording, decoded once, run on two threads; every
//! row's whole report (the engine's `on_event` latency aside: it is timed) against a backtest of
//! the recording with that config. The spot sample (two files, another sync rule) too.

use ringmaker_tests::{config_text, spot, usdm};
use runtime::backtest::{self, Decoded};
use runtime::host::NoRecorder;
use runtime::report::Report;
use runtime::sweep::{self, Axis};

/// The report as JSON, without its timing.
fn figures(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v.as_object_mut().unwrap().remove("on_event_latency_ns");
    v
}

fn check(config: &str, data: Vec<std::path::PathBuf>, sets: &[&str]) {
    let text = config_text(config);
    let axes: Vec<Axis> = sets.iter().map(|s| Axis::parse(s).unwrap()).collect();
    let configs = sweep::configs(&text, &axes).unwrap();
    assert_eq!(configs.len(), 9);
    let base = runtime::config::RunConfig::from_toml(&text).unwrap();
    // The data as `backtest` reads it; the sweep's runs do not read it again.
    let settings = ringmaker_tests::readme_settings(data);
    let decoded = Decoded::decode(&base.engine, &settings.data).unwrap();
    let rows = sweep::run(configs.clone(), &decoded, &settings, 2, &|_| {}).unwrap();
    assert_eq!(rows.len(), 9);
    let mut distinct = std::collections::BTreeSet::new();
    for ((combination, cfg), row) in configs.iter().zip(&rows) {
        assert_eq!(&row.combination, combination);
        let (o, _) = backtest::run(&cfg.engine, &settings, NoRecorder, &mut |_| {}).unwrap();
        let want = figures(&Report::new(&cfg.engine, &o));
        assert_eq!(
            figures(&row.report),
            want,
            "{}",
            sweep::label(&axes, combination)
        );
        distinct.insert(format!("{:?}", sweep::column(&row.report, "total_pnl")));
    }
    assert!(distinct.len() > 1, "the swept values change the result");
}

#[test]
fn each_row_of_a_3_by_3_sweep_equals_its_single_backtest() {
    check(
        "default.toml",
        vec![usdm()],
        &[
            "quote.start_offset=0.5,1,2",
            "risk.cancel_budget_per_min=50,100,200",
        ],
    );
}

#[test]
fn the_spot_sample_sweeps_the_same_way() {
    check(
        "spot-btcusdt.toml",
        spot().to_vec(),
        &["quote.start_offset=1,2,4", "quote.layers=2,4,6"],
    );
}
