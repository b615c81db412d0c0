//! Tests of the adaptive spreads: the config's limits, each signal's effect on the shape, and
//! (in `engine_tests.rs`) the quotes that come out.

use super::*;
use crate::config::Config;
use crate::pricer::tests::{cfg, cfg_text};

/// An instrument config with `[instrument.quote.adapt]` set to `body`.
fn adapt_cfg(body: &str) -> (crate::config::InstrumentConfig, AdaptConfig) {
    let c = cfg(&format!("[instrument.quote.adapt]\n{body}"));
    let a = c.adapt.clone().expect("the adapt section");
    (c, a)
}

/// The config error for an adapt section `body`.
fn adapt_err(body: &str) -> String {
    match Config::from_toml(&cfg_text(&format!("[instrument.quote.adapt]\n{body}"))) {
        Ok(_) => panic!("accepted: {body}"),
        Err(e) => e.to_string(),
    }
}

const S: i64 = 1_000_000_000;
const FV: i64 = 600_000; // 60,000 USD at a 0.10 tick

#[test]
fn absurd_adapt_values_are_refused_with_the_field_named() {
    for (body, field) in [
        ("vol_max_scale = 0.5", "vol_max_scale"),
        ("vol_max_scale = 1000.0", "vol_max_scale"),
        ("vol_ref_bps = 0.0", "vol_ref_bps"),
        ("vol_half_life_ms = 0", "vol_half_life_ms"),
        ("vol_half_life_ms = 99999999999", "vol_half_life_ms"),
        ("vpin_bucket = \"0\"", "vpin_bucket"),
        ("vpin_bucket = \"abc\"", "vpin_bucket"),
        ("vpin_bucket = \"0.0001\"", "vpin_bucket"),
        ("vpin_buckets = 0", "vpin_buckets"),
        ("vpin_buckets = 65", "vpin_buckets"),
        ("vpin_threshold = 1.0", "vpin_threshold"),
        ("vpin_widen = -1.0", "vpin_widen"),
        ("imbalance_pull = 0.0", "imbalance_pull"),
        ("imbalance_pull = 1.5", "imbalance_pull"),
        ("pull_layers = 0", "pull_layers"),
        ("funding_skew = nan", "funding_skew"),
        ("funding_max_bps = 1e9", "funding_max_bps"),
        ("gamma = 0.0", "gamma"),
        ("intensity_bins = 1", "intensity_bins"),
        ("intensity_bin_ticks = 0", "intensity_bin_ticks"),
        ("horizon_s = 0.0", "horizon_s"),
    ] {
        let e = adapt_err(body);
        assert!(
            e.contains(&format!("instrument[0].quote.adapt.{field}")),
            "{body}: {e}"
        );
    }
    // An unknown key is an error too (deny_unknown_fields), not silently ignored.
    assert!(adapt_err("vol_max = 2.0").contains("vol_max"));
}

#[test]
fn every_feature_is_off_by_default() {
    let (_, a) = adapt_cfg("");
    let mut st = AdaptState::new(&a);
    // A wild walk and one-sided flow change nothing when nothing is switched on.
    for k in 0..2_000i64 {
        let fv = Fx::from_num(FV + if k % 2 == 0 { 600 } else { -600 });
        st.on_fair_value(&a, k * S / 10, fv);
        st.on_trade(k * S / 10, FV + 1, 1_000, Side::Bid);
    }
    let s = st.shape(
        &a,
        200 * S,
        Fx::from_num(FV),
        Fx::ZERO,
        Some(50_000),
        Fx::MAX,
    );
    assert_eq!(s, Shape::NONE);
}

#[test]
fn volatility_widens_between_one_and_its_cap() {
    let (_, a) = adapt_cfg("vol_ref_bps = 1.0\nvol_max_scale = 3.0\nvol_half_life_ms = 10000");
    // Before warm-up: as configured.
    let mut st = AdaptState::new(&a);
    st.on_fair_value(&a, 0, Fx::from_num(FV));
    let s = st.shape(&a, 0, Fx::from_num(FV), Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.scale, [Fx::ONE; 2]);
    // A flat mid for a minute: no volatility, no widening.
    for k in 0..600 {
        st.on_fair_value(&a, k * S / 10, Fx::from_num(FV));
    }
    let s = st.shape(&a, 60 * S, Fx::from_num(FV), Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.scale, [Fx::ONE; 2]);
    // ±1 bp every 100 ms: σ ≈ 1 bp · √10 per √s ≈ 3.2 > 3: capped at 3.
    let mut hot = AdaptState::new(&a);
    for k in 0..600i64 {
        let fv = FV + if k % 2 == 0 { 60 } else { 0 };
        hot.on_fair_value(&a, k * S / 10, Fx::from_num(fv));
    }
    let sigma = hot.sigma_bps().unwrap();
    assert!(sigma > 2 && sigma < 4, "{sigma}");
    let s = hot.shape(&a, 60 * S, Fx::from_num(FV), Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.scale, [Fx::from_num(3); 2]);
    // Half that (±0.5 bp): σ ≈ 1.6, the scale is σ / vol_ref itself.
    let mut warm = AdaptState::new(&a);
    for k in 0..600i64 {
        let fv = FV + if k % 2 == 0 { 30 } else { 0 };
        warm.on_fair_value(&a, k * S / 10, Fx::from_num(fv));
    }
    let sigma = warm.sigma_bps().unwrap();
    let s = warm.shape(&a, 60 * S, Fx::from_num(FV), Fx::ZERO, None, Fx::MAX);
    assert!(s.scale[0] > 1 && s.scale[0] < 3, "{:?}", s.scale);
    assert!((s.scale[0] - sigma).abs() < Fx::from_num(1e-9));
    assert!(warm.widened_vol > 0);
}

#[test]
fn one_sided_flow_widens_and_pulls_the_side_it_runs_at() {
    let (_, a) = adapt_cfg(
        "vpin_bucket = \"0.010\"\nvpin_buckets = 4\nvpin_widen = 1.0\nvpin_threshold = 0.5\n\
         imbalance_widen = 1.0\nimbalance_threshold = 0.3\nimbalance_pull = 0.8\npull_layers = 2",
    );
    let fv = Fx::from_num(FV);
    // Buyers only (aggressor bid): VPIN 1 (both sides × 2), and the asks (the price runs up
    // through them) × 2 again and pulled.
    let mut st = AdaptState::new(&a);
    for k in 0..100 {
        st.on_trade(k * S / 100, FV + 1, 2, Side::Bid);
    }
    let s = st.shape(&a, S, fv, Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.scale[Side::Bid as usize], Fx::from_num(2));
    assert!(
        s.scale[Side::Ask as usize] > Fx::from_num(3.9),
        "{:?}",
        s.scale
    );
    assert_eq!(s.pull, [0, 2]);
    // Sellers only: the mirror image.
    let mut st = AdaptState::new(&a);
    for k in 0..100 {
        st.on_trade(k * S / 100, FV - 1, 2, Side::Ask);
    }
    let s = st.shape(&a, S, fv, Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.pull, [2, 0]);
    assert!(s.scale[Side::Bid as usize] > s.scale[Side::Ask as usize]);
    // Alternating flow: VPIN 0, no imbalance: as configured.
    let mut st = AdaptState::new(&a);
    for k in 0..100 {
        let side = if k % 2 == 0 { Side::Bid } else { Side::Ask };
        st.on_trade(k * S / 100, FV, 2, side);
    }
    let s = st.shape(&a, S, fv, Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.scale, [Fx::ONE; 2]);
    assert_eq!(s.pull, [0, 0]);
    assert_eq!(st.pulled, 0);
}

#[test]
fn funding_leans_toward_the_side_that_earns_it_within_its_cap() {
    let (_, a) = adapt_cfg("funding_skew = 1.0\nfunding_max_bps = 2.0");
    let fv = Fx::from_num(FV);
    let mut st = AdaptState::new(&a);
    // +1 bp funding (longs pay): the reservation price goes 1 bp down (60 ticks at 600,000).
    let s = st.shape(&a, 0, fv, Fx::ZERO, Some(10_000), Fx::MAX);
    assert_eq!(s.shift, Fx::from_num(-60));
    // −0.5 bp (shorts pay): 0.5 bp up.
    let s = st.shape(&a, 0, fv, Fx::ZERO, Some(-5_000), Fx::MAX);
    assert_eq!(s.shift, Fx::from_num(30));
    // 10 bps: capped at 2 bps.
    let s = st.shape(&a, 0, fv, Fx::ZERO, Some(100_000), Fx::MAX);
    assert_eq!(s.shift, Fx::from_num(-120));
    // No (fresh) mark price: no shift.
    let s = st.shape(&a, 0, fv, Fx::ZERO, None, Fx::MAX);
    assert_eq!(s.shift, Fx::ZERO);
}

#[test]
fn the_models_set_layer_zero_once_they_have_volatility_and_a_fit() {
    for model in ["glft", "avellaneda_stoikov"] {
        let (_, a) = adapt_cfg(&format!(
            "model = \"{model}\"\ngamma = 0.05\nvol_half_life_ms = 10000\n\
             intensity_bins = 8\nintensity_bin_ticks = 5\nintensity_window_ms = 1000"
        ));
        let mut st = AdaptState::new(&a);
        let fv = |k: i64| Fx::from_num(FV + if k % 2 == 0 { 20 } else { 0 });
        // Nothing fitted yet: the grid.
        st.on_fair_value(&a, 0, fv(0));
        assert_eq!(st.shape(&a, 0, fv(0), Fx::ZERO, None, Fx::MAX).depth0, None);
        // A minute of a moving mid and trades at falling rates with depth.
        let mut t = 0;
        for k in 0..600i64 {
            t = k * S / 10;
            st.on_fair_value(&a, t, fv(k));
            for d in 0..8i64 {
                // 8 trades at depth 0, 4 at 5, 2 at 10, ...
                // (from the window's fair value, FV + 20: every window starts at an even k).
                for _ in 0..(8 >> d.min(3)) {
                    st.on_trade(t, FV + 20 + d * 5, 1, Side::Bid);
                }
            }
        }
        let flat = st.shape(&a, t, fv(0), Fx::ZERO, None, Fx::MAX);
        let [b, a0] = flat.depth0.expect("fitted");
        assert!(b > 0 && b == a0, "{model}: flat is symmetric: {b} {a0}");
        // Long three layers: the bids go deeper, the asks nearer.
        let long = st.shape(&a, t, fv(0), Fx::from_num(3), None, Fx::MAX);
        let [lb, la] = long.depth0.unwrap();
        assert!(lb > b && la < a0, "{model}: {lb} {la} vs {b}");
        // Never beyond the cap, never negative.
        let capped = st.shape(&a, t, fv(0), Fx::from_num(1_000), None, Fx::from_num(50));
        let [cb, ca] = capped.depth0.unwrap();
        assert!(cb <= 50 && ca >= 0, "{model}: {cb} {ca}");
        assert!(st.modelled > 0);
    }
}

#[test]
fn the_same_inputs_give_the_same_shapes() {
    let (_, a) = adapt_cfg(
        "vol_max_scale = 2.0\nvpin_bucket = \"0.010\"\nvpin_widen = 1.0\nimbalance_widen = 1.0\n\
         imbalance_pull = 0.9\nfunding_skew = 1.0\nmodel = \"glft\"",
    );
    let run = || {
        let mut st = AdaptState::new(&a);
        let mut x: u64 = 7;
        let mut out = Vec::new();
        for k in 0..3_000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let fv = Fx::from_num(FV + (x >> 59) as i64 - 16);
            st.on_fair_value(&a, k * S / 20, fv);
            let side = if x & 1 == 0 { Side::Bid } else { Side::Ask };
            st.on_trade(
                k * S / 20,
                FV + ((x >> 40) & 31) as i64,
                ((x >> 20) & 7) as i64,
                side,
            );
            out.push(st.shape(
                &a,
                k * S / 20,
                fv,
                Fx::from_num((x >> 61) as i64 - 4),
                Some(3_000),
                Fx::MAX,
            ));
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn inventory_in_layers_is_the_fixed_point_quotient() {
    let sizes = [-5, 0, 1, 2, 3, 7, 1_000, i64::MAX];
    let positions = [
        0,
        1,
        -1,
        2,
        -3,
        999,
        -1_001,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
    ];
    for s in sizes {
        for p in positions {
            let old = crate::signals::fx_div(
                Fx::saturating_from_num(p),
                Fx::saturating_from_num(s.max(1)),
            );
            assert_eq!(inventory_in_layers(p, s), old, "{p} / {s}");
        }
    }
}
