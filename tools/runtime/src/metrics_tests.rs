use super::*;
use engine::{ExecKind, ExecReport, Side, TimeInForce};

fn metrics() -> Metrics {
    let cfg = test_support::default_config();
    Metrics::new(0, &cfg.instruments[0])
}

/// A valid-book sample at mid 10 000 ticks with our best `bid` / `ask` and where the engine
/// wants layer 0 (`want`), tolerance `tol` ticks.
fn at(bid: Option<i64>, ask: Option<i64>, want: [Option<i64>; 2], tol: i64) -> Sample {
    Sample {
        mode: Mode::Normal,
        valid: true,
        mid: Some(10_000.0),
        fv: Some(Fx::from_num(10_000)),
        bid,
        ask,
        pos: 0,
        pnl: 0,
        touch: [Some(9_999), Some(10_001)],
        desired: want,
        tol,
        adapt: None,
    }
}

fn invalid() -> Sample {
    Sample {
        valid: false,
        mid: None,
        ..at(None, None, [None; 2], 0)
    }
}

#[test]
fn both_within_and_stale_are_shares_of_valid_book_time() {
    let mut m = metrics();
    // [0, 10): 4 bps each side (within 5 and 10, not 2); the ask 1 tick off its layer 0, over
    // a tolerance of 0: stale.
    m.sample(
        0,
        &at(Some(9_996), Some(10_004), [Some(9_996), Some(10_003)], 0),
    );
    // [10, 30): 1 bps each side, where wanted.
    m.sample(
        10,
        &at(Some(9_999), Some(10_001), [Some(9_999), Some(10_001)], 0),
    );
    // [30, 40): no valid book: counts nowhere.
    m.sample(30, &invalid());
    // [40, 50): no bid where one is wanted (stale); an ask 20 ticks away where none is wanted
    // (not stale); one side only, so not "both within".
    m.sample(40, &at(None, Some(10_020), [Some(9_999), None], 0));
    // Within tolerance (2 ticks off, tolerance 2) is not stale.
    m.sample(
        50,
        &at(Some(9_997), Some(10_003), [Some(9_999), Some(10_001)], 2),
    );
    m.sample(60, &invalid());
    assert_eq!(m.valid_ns, 50);
    assert_eq!(m.both_within_ns, [20, 40, 40]);
    assert_eq!(m.stale_ns, [10, 10]);
}

#[test]
fn a_run_with_no_valid_book_measures_nothing() {
    let mut m = metrics();
    m.sample(0, &invalid());
    m.sample(100, &invalid());
    assert_eq!(m.valid_ns, 0);
    assert_eq!(m.both_within_ns, [0; 3]);
    assert_eq!(m.stale_ns, [0; 2]);
    assert_eq!(m.markouts_by_distance(), [BucketMarkouts::default(); 5]);
    assert_eq!(m.spread_capture(), 0.0);
}

#[test]
fn cancels_are_measured_against_the_touch_of_their_batch() {
    let mut m = metrics();
    let tif = TimeInForce::PostOnly;
    m.on_intent(&Intent::place(0, Side::Bid, tif, 1, 9_989, 1, 5, 0));
    m.on_intent(&Intent::place(0, Side::Ask, tif, 2, 10_050, 1, 5, 1));
    m.on_intent(&Intent::place(0, Side::Ask, tif, 3, 10_002, 1, 5, 2));
    m.sample(5, &at(None, None, [None; 2], 0));
    m.on_intent(&Intent::cancel(0, Side::Bid, 1, false, 10, 3));
    m.on_intent(&Intent::cancel(0, Side::Ask, 2, false, 10, 4));
    m.on_intent(&Intent::cancel(0, Side::Ask, 3, true, 10, 5));
    // Never placed (as far as these metrics saw): its distance is unknown.
    m.on_intent(&Intent::cancel(0, Side::Bid, 99, false, 10, 6));
    assert!(
        m.discretionary_distance_bps.is_empty(),
        "resolved at the sample"
    );
    m.sample(10, &at(None, None, [None; 2], 0));
    assert_eq!(m.placed_by_side, [1, 2]);
    assert_eq!(m.forced_cancels, 1);
    assert_eq!(m.discretionary_cancels, vec![10, 10, 10]);
    let d = &m.discretionary_distance_bps;
    assert_eq!(d.len(), 3);
    // Bid at 9 989 against a best bid of 9 999: 10 ticks of 9 999.
    assert!((d[0].unwrap() - 10.0 / 9_999.0 * 1e4).abs() < 1e-9);
    // Ask at 10 050 against a best ask of 10 001.
    assert!((d[1].unwrap() - 49.0 / 10_001.0 * 1e4).abs() < 1e-9);
    assert_eq!(d[2], None);
    let known = m.known_cancel_distances();
    assert_eq!(known.len(), 2);
    assert!(known[0] < known[1]);
}

#[test]
fn a_cancel_left_at_the_end_is_resolved_by_finish() {
    let cfg = test_support::default_config();
    let engine = Engine::new(&cfg);
    let mut m = Metrics::new(0, &cfg.instruments[0]);
    m.on_intent(&Intent::place(
        0,
        Side::Bid,
        TimeInForce::PostOnly,
        1,
        100,
        1,
        0,
        0,
    ));
    m.on_intent(&Intent::cancel(0, Side::Bid, 1, false, 1, 1));
    m.finish(&engine);
    // An engine with no book: the touch, hence the distance, is unknown.
    assert_eq!(m.discretionary_distance_bps, vec![None]);
}

fn fill(t: i64, qty: i64, price: i64) -> Fill {
    Fill {
        t,
        qty,
        price,
        taker: false,
    }
}

#[test]
fn markouts_by_distance_and_spread_capture() {
    let mut m = metrics();
    m.mids = vec![
        (0, 10_000.0),
        (1_000_000_000, 10_010.0),
        (5_000_000_000, 10_020.0),
    ];
    m.span = (0, 10_000_000_000);
    m.fills = vec![
        fill(0, 2, 9_999),   // 1 bps from mid: 0–2
        fill(0, -1, 10_003), // 3 bps: 2–5
        fill(0, 1, 9_950),   // 50 bps: 25+
        fill(-1, 1, 9_000),  // before the first mid: no bucket, no capture
    ];
    let b = m.markouts_by_distance();
    assert_eq!(b.map(|b| b.fills), [1, 1, 0, 0, 1]);
    let bps = |mid: f64, p: f64, sign: f64| sign * (mid - p) / p * 1e4;
    assert!((b[0].s1_bps.unwrap() - bps(10_010.0, 9_999.0, 1.0)).abs() < 1e-9);
    assert!((b[0].s5_bps.unwrap() - bps(10_020.0, 9_999.0, 1.0)).abs() < 1e-9);
    assert!((b[1].s1_bps.unwrap() - bps(10_010.0, 10_003.0, -1.0)).abs() < 1e-9);
    assert!((b[4].s5_bps.unwrap() - bps(10_020.0, 9_950.0, 1.0)).abs() < 1e-9);
    assert_eq!(b[2].s1_bps, None);
    // (10 000 − 9 999) × 2 + (10 003 − 10 000) × 1 + (10 000 − 9 950) × 1.
    assert_eq!(m.spread_capture(), 55.0);
    assert_eq!(m.fills_by_side(), [3, 1]);
}

#[test]
fn done_orders_are_forgotten_and_a_later_cancel_of_one_is_unknown() {
    let mut m = metrics();
    let tif = TimeInForce::PostOnly;
    for cid in 1..=4 {
        m.on_intent(&Intent::place(0, Side::Bid, tif, cid, 9_990, 2, 0, cid));
    }
    assert_eq!(m.tracked_orders(), 4);
    m.on_report(&ExecReport::new(ExecKind::Ack, 1, 0, 0, 0));
    m.on_report(&ExecReport::new(ExecKind::PartialFill, 1, 9_990, 1, 1));
    assert_eq!(
        m.tracked_orders(),
        4,
        "acked and partly filled: still cancellable"
    );
    m.on_report(&ExecReport::new(ExecKind::Fill, 1, 9_990, 1, 2));
    m.on_report(&ExecReport::new(ExecKind::Rejected, 2, 0, 0, 0));
    m.on_report(&ExecReport::new(ExecKind::Expired, 3, 0, 0, 0));
    assert_eq!(m.tracked_orders(), 1);
    m.on_intent(&Intent::cancel(0, Side::Bid, 4, false, 1, 5));
    m.on_intent(&Intent::cancel(0, Side::Bid, 1, false, 1, 6));
    assert_eq!(m.tracked_orders(), 0);
    m.sample(1, &at(None, None, [None; 2], 0));
    let d = &m.discretionary_distance_bps;
    assert!(d[0].is_some() && d[1].is_none(), "{d:?}");
}

/// `s` with the adaptive spreads' state: σ, scale per side, counters.
fn adapted(s: Sample, sigma: Option<f64>, scale: [f64; 2], counts: [u64; 5]) -> Sample {
    Sample {
        adapt: Some(AdaptSample {
            sigma_bps: sigma,
            scale,
            counts,
        }),
        ..s
    }
}

#[test]
fn adapt_figures_are_weighted_by_valid_book_time() {
    let mut m = metrics();
    assert!(m.adapt.is_some(), "the default config has the section");
    let q = at(None, None, [None; 2], 0);
    // [0, 10): not warmed up, scale 1; [10, 40): σ 1.0, bid 1.5 / ask 2.0; [40, 50): no valid
    // book (σ 9 counts nowhere); [50, 60): σ 0.5, scale 1.
    m.sample(0, &adapted(q, None, [1.0; 2], [1, 0, 0, 0, 0]));
    m.sample(10, &adapted(q, Some(1.0), [1.5, 2.0], [2, 1, 0, 0, 0]));
    let gone = Sample {
        valid: false,
        mid: None,
        ..q
    };
    m.sample(40, &adapted(gone, Some(9.0), [3.0; 2], [2, 1, 0, 0, 0]));
    m.sample(50, &adapted(q, Some(0.5), [1.0; 2], [3, 1, 1, 0, 0]));
    // A reload rebuilt the estimators: the counters start again, and add up.
    m.sample(60, &adapted(q, Some(0.5), [1.0; 2], [1, 0, 0, 1, 0]));
    let a = m.adapt.as_ref().unwrap();
    assert_eq!(a.valid_ns, 50);
    assert_eq!(m.valid_ns, 50);
    let [bid, ask] = a.mean_scale();
    assert!((bid - (10.0 + 45.0 + 10.0) / 50.0).abs() < 1e-12, "{bid}");
    assert!((ask - (10.0 + 60.0 + 10.0) / 50.0).abs() < 1e-12, "{ask}");
    // σ held 30 ns at 1.0 and 10 at 0.5 (the warm-up and the invalid book do not count).
    // To the histogram's 3 significant digits.
    let near = |q: f64, want: f64| {
        let got = a.sigma_quantile(q).unwrap();
        assert!((got - want).abs() <= want * 1e-3, "q {q}: {got} vs {want}");
    };
    near(0.5, 1.0);
    near(0.2, 0.5);
    assert_eq!(a.sigma_max, Some(1.0));
    assert_eq!(
        a.counts,
        AdaptCounts {
            requotes: 4,
            widened_vol: 1,
            widened_toxic: 1,
            pulled: 1,
            modelled: 0,
        }
    );
    assert_eq!(a.points.len(), 1, "one plot point per 250 ms");
}

#[test]
fn no_adapt_section_no_adapt_metrics() {
    let mut cfg = test_support::default_config();
    cfg.instruments[0].adapt = None;
    let mut m = Metrics::new(0, &cfg.instruments[0]);
    m.sample(0, &at(None, None, [None; 2], 0));
    m.sample(10, &at(None, None, [None; 2], 0));
    assert!(m.adapt.is_none());
    let engine = Engine::new(&cfg);
    m.finish(&engine);
    assert!(m.adapt.is_none());
}
