use super::*;
use crate::metrics::Fill;
use engine::Side;

fn instrument_config(file: &str) -> engine::InstrumentConfig {
    let text = test_support::config_text(file);
    let cfg = crate::config::RunConfig::from_toml(&text).expect("a shipped config");
    cfg.engine.instruments[0].clone()
}

/// A fill: time, signed lots, price ticks, fee (money units; spot buys: 10^-6 lot).
type TestFill = (i64, i64, i64, i64);

/// `m` with `fills` (time, signed lots, price ticks, fee) applied to a position, mids from
/// `mids`, marked at `fv` at the end.
fn run(cfg: &engine::InstrumentConfig, fills: &[TestFill], mids: &[(i64, f64)]) -> Metrics {
    let mut m = Metrics::new(0, cfg);
    let mut pos = engine::Position::default();
    for &(t, qty, price, fee) in fills {
        let side = if qty > 0 { Side::Bid } else { Side::Ask };
        pos.on_fill(&cfg.instrument, side, price, qty.abs(), fee, false);
        m.fills.push(Fill {
            t,
            qty,
            price,
            taker: false,
        });
    }
    m.mids = mids.to_vec();
    m.span = (0, mids.last().map_or(0, |x| x.0));
    m.final_position = Some(pos);
    m.final_fv = mids.last().map(|x| Fx::from_num(x.1));
    m
}

fn total(m: &Metrics) -> f64 {
    let inst = &m.instrument;
    let pos = m.final_position.unwrap();
    inst.money_unit()
        .to_f64(pos.total_pnl(inst, m.final_fv.unwrap()))
}

fn assert_adds_up(m: &Metrics) -> PnlDecomposition {
    let d = PnlDecomposition::of(m);
    let t = total(m);
    let sum = d.spread_capture + d.inventory - d.fees;
    assert!(
        (sum - t).abs() <= 1e-9 * t.abs().max(1.0),
        "{d:?} adds up to {sum}, the total is {t}"
    );
    d
}

/// Around 60 000 USD a BTC at 0.10 a tick: 600 000 ticks (linear, spot); COIN-M's tick differs,
/// so its prices are scaled from the mid.
fn path(mid0: f64) -> (Vec<TestFill>, Vec<(i64, f64)>) {
    let p = |x: f64| (mid0 * x).round() as i64;
    let fills = vec![
        (10, 3, p(0.9999), 5),
        (20, -1, p(1.0004), 5),
        (30, -1, p(0.9998), 3),
    ];
    let mids = vec![
        (0, mid0),
        (20, (mid0 * 1.0002).round()),
        (30, (mid0 * 0.9995).round()),
        (40, (mid0 * 0.9996).round()),
    ];
    (fills, mids)
}

#[test]
fn linear_decomposition_adds_up_and_captures_the_half_spread() {
    let cfg = instrument_config("default.toml");
    let (fills, mids) = path(600_000.0);
    let m = run(&cfg, &fills, &mids);
    let d = assert_adds_up(&m);
    // Money units of 0.10 × 0.001 USDT (whatever the shipped grid is, the same arithmetic):
    // 3 × (600 000 − 599 940) + (600 240 − 600 120) − (599 700 − 599 880).
    let ticks = 3.0 * 60.0 + 120.0 + (599_880.0 - 599_700.0);
    let unit = cfg.instrument.money_unit().to_f64(1);
    assert!((d.spread_capture - ticks * unit).abs() < 1e-9, "{d:?}");
}

#[test]
fn spot_decomposition_adds_up_with_base_fees() {
    let cfg = instrument_config("spot-btcusdt.toml");
    let (fills, mids) = path(600_000.0);
    let d = assert_adds_up(&run(&cfg, &fills, &mids));
    assert!(d.spread_capture > 0.0);
}

#[test]
fn inverse_decomposition_adds_up_in_coin() {
    let cfg = instrument_config("coinm-btcusd-perp.toml");
    let (fills, mids) = path(600_000.0);
    let m = run(&cfg, &fills, &mids);
    let d = assert_adds_up(&m);
    // Every fill was on the good side of its mid: the capture is positive, and in coin: a
    // few contracts 2 to 5 bps from 60 000 USD capture well under a thousandth of a coin.
    assert!(d.spread_capture > 0.0 && d.spread_capture < 1e-3, "{d:?}");
}

#[test]
fn no_fills_no_split() {
    let cfg = instrument_config("default.toml");
    let m = Metrics::new(0, &cfg);
    let d = PnlDecomposition::of(&m);
    assert_eq!((d.spread_capture, d.inventory, d.fees), (0.0, 0.0, 0.0));
}
