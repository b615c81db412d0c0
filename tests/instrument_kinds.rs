//! Issue 12: every instrument kind right, end to end on the shipped samples.
//!
//! - COIN-M BTCUSD_PERP (inverse): notional = contracts × 100 USD, PnL and fees in BTC, no daily
//!   loss limit tripped by a phantom loss (before: 40 contracts were 2.47 M of notional and a
//!   −1,016 "loss" halted the run), and a loss limit said in BTC does trip on a real BTC loss.
//! - Spot BTCUSDT: never sells more base than held; the report values the base at the end.

use engine::{Config, ModeReason};
use journal::{Reader, RecoveryMode};
use ringmaker_tests::{coinm, config_text, spot, TempDir};
use runtime::backtest::{self, Outcome, Settings};
use runtime::record::{self, JournalRecorder, Keep, ReplayOutcome, KIND_MODE};
use runtime::report::Report;
use std::path::{Path, PathBuf};

fn settings(data: Vec<PathBuf>) -> Settings {
    ringmaker_tests::readme_settings(data)
}

/// A journaled backtest of `text` on `data`: (config, outcome, journal dir, temp dir).
fn run(text: &str, data: Vec<PathBuf>, name: &str) -> (Config, Outcome, PathBuf, TempDir) {
    let run = runtime::config::RunConfig::from_toml(text).unwrap();
    let tmp = TempDir::new(name);
    let dir = tmp.join("journal");
    let rec = JournalRecorder::create_run(&dir, &run, 16 << 20, 0, Keep::Durable).unwrap();
    let (outcome, rec) = backtest::run(&run.engine, &settings(data), rec, &mut |_| {}).unwrap();
    rec.close().unwrap();
    (run.engine, outcome, dir, tmp)
}

/// Every mode change journaled: (instrument, reason).
fn mode_reasons(dir: &Path) -> Vec<(u16, ModeReason)> {
    let r = Reader::open(dir, RecoveryMode::Strict).unwrap();
    r.records()
        .map(|rec| rec.unwrap())
        .filter(|rec| rec.kind == KIND_MODE)
        .map(|rec| {
            let m = engine::ModeChange::from_bytes(rec.payload).unwrap();
            (m.instrument, m.reason)
        })
        .collect()
}

#[test]
fn coinm_inverse_backtest_in_contracts_and_coin() {
    let (cfg, outcome, dir, _tmp) = run(
        &config_text("coinm-btcusd-perp.toml"),
        coinm().to_vec(),
        "kinds-coinm",
    );
    let report = Report::new(&cfg, &outcome);
    let r = &report.instruments[0];
    assert_eq!(
        (r.kind.as_str(), r.pnl.currency.as_str()),
        ("inverse", "BTC")
    );
    assert_eq!(r.traded.qty_unit, "contracts");
    assert_eq!(r.traded.notional_currency, "USD");
    assert!(r.fills.count > 50, "{} fills", r.fills.count);
    // Traded notional = contracts × contract size, exactly.
    assert_eq!(r.traded.notional, r.traded.qty * 100.0);
    // The book: every diff after the snapshot applied, as the provenance says.
    assert_eq!((r.book.diffs_applied, r.book.gaps), (44_772, 0));
    // Fees in BTC: 2 bps maker of each fill's coin value, about notional × 2 bps / price.
    let price = r.balances.as_ref().map_or(61_700.0, |b| b.end_price);
    let approx = r.traded.notional * 2e-4 / price;
    assert!(
        (r.pnl.fees - approx).abs() < approx * 0.01,
        "fees {} BTC vs ≈{approx}",
        r.pnl.fees
    );
    // A maker's loss on 37 kUSD of volume is a few 10^-4 BTC, not the 10^3 of quote units the
    // linear formula gave.
    assert!(r.pnl.total.abs() < 0.01, "total {} BTC", r.pnl.total);
    assert!(
        (r.pnl.total - (r.pnl.realized + r.pnl.unrealized - r.pnl.fees)).abs() < 1e-12,
        "{:?}",
        r.pnl
    );
    // No daily loss limit tripped (0.01 BTC in the config).
    let reasons = mode_reasons(&dir);
    assert!(!reasons.is_empty());
    assert!(
        !reasons
            .iter()
            .any(|&(_, why)| why == ModeReason::DailyLossLimit),
        "{reasons:?}"
    );
    // The portfolio is in USD at the run's final price.
    assert_eq!(report.portfolio.currency, "USD");
    assert_eq!(report.portfolio.conversions.len(), 1);
    assert!(report.portfolio.unconverted.is_empty());
    let rate = report.portfolio.conversions[0].rate;
    assert!((60_000.0..63_000.0).contains(&rate), "{rate}");
    assert!((report.portfolio.total - r.pnl.total * rate).abs() < 1e-9);
    match record::replay(&dir).unwrap() {
        ReplayOutcome::Identical { intents, .. } => assert!(intents > 0),
        other => panic!("COIN-M journal diverged: {other:?}"),
    }
}

/// The loss limit is in BTC: set below the run's real loss, it trips.
#[test]
fn coinm_loss_limit_is_in_coin() {
    let text = config_text("coinm-btcusd-perp.toml").replace(
        "daily_loss_limit = \"0.01\"",
        "daily_loss_limit = \"0.00005\"",
    );
    let (_, _, dir, _tmp) = run(&text, coinm().to_vec(), "kinds-coinm-limit");
    let reasons = mode_reasons(&dir);
    assert!(
        reasons
            .iter()
            .any(|&(_, why)| why == ModeReason::DailyLossLimit),
        "a 0.00005 BTC limit trips on the run's ~0.0002 BTC loss: {reasons:?}"
    );
}

/// Spot: starting with no BTC, every sell is of BTC bought earlier in the run: the base balance
/// never goes below zero, whatever the fills.
#[test]
fn spot_never_sells_beyond_the_base_held() {
    let text = config_text("spot-btcusdt.toml").replace("base = \"0.05\"", "base = \"0\"");
    assert!(text.contains("base = \"0\""));
    let (cfg, outcome, dir, _tmp) = run(&text, spot().to_vec(), "kinds-spot");
    let m = &outcome.metrics[0];
    let mut held = 0i64;
    let (mut buys, mut sells) = (0, 0);
    for f in &m.fills {
        held += f.qty;
        assert!(held >= 0, "sold beyond the base held: {held} lots");
        if f.qty > 0 {
            buys += 1;
        } else {
            sells += 1;
        }
    }
    assert!(buys > 0 && sells > 0, "{buys} buys, {sells} sells");
    let report = Report::new(&cfg, &outcome);
    let r = &report.instruments[0];
    let b = r.balances.as_ref().expect("spot balances");
    assert_eq!((b.start_base, b.base_asset.as_str()), (0.0, "BTC"));
    assert!(b.end_base >= 0.0, "{}", b.end_base);
    // The end valued in USDT: quote + base × final price; its change from the start is the
    // run's PnL (nothing held at the start to revalue).
    assert!((b.end_value - (b.end_quote + b.end_base * b.end_price)).abs() < 1e-6);
    assert!(
        (b.change - r.pnl.total).abs() < 0.01,
        "change {} vs PnL {}",
        b.change,
        r.pnl.total
    );
    assert_eq!(r.pnl.currency, "USDT");
    assert!(
        r.pnl.fees_base.is_some_and(|f| f > 0.0),
        "buys pay fees in BTC"
    );
    match record::replay(&dir).unwrap() {
        ReplayOutcome::Identical { intents, .. } => assert!(intents > 0),
        other => panic!("spot journal diverged: {other:?}"),
    }
}

/// Three instruments, three kinds, one run: USD-M and spot BTCUSDT and COIN-M BTCUSD_PERP, each
/// recording bound by what it holds. The portfolio is in USDT (the first instrument's quote):
/// BTC converts through BTCUSDT, USD through BTCUSD_PERP then BTCUSDT; every figure is
/// converted, the sums add up, and the journal replays identically.
#[test]
fn three_kinds_in_one_run_report_one_portfolio() {
    let two = config_text("usdm-spot-btcusdt.toml");
    let coinm_cfg = config_text("coinm-btcusd-perp.toml");
    let coinm_inst = &coinm_cfg[coinm_cfg.find("[[instrument]]").unwrap()..];
    let text = format!("{two}\n{coinm_inst}");
    let mut data = vec![ringmaker_tests::usdm()];
    data.extend(spot());
    data.extend(coinm());
    let (cfg, outcome, dir, _tmp) = run(&text, data, "kinds-three");
    let report = Report::new(&cfg, &outcome);
    let keys: Vec<&str> = report.instruments.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "binance-usdm:BTCUSDT",
            "binance-spot:BTCUSDT",
            "BTCUSD_PERP"
        ]
    );
    for r in &report.instruments {
        assert!(r.fills.count > 10, "{}: {} fills", r.key, r.fills.count);
        assert!(
            r.book.valid_share > 0.99,
            "{}: {:?}",
            r.key,
            r.book.valid_share
        );
    }
    assert_eq!(report.instruments[2].pnl.currency, "BTC");
    // The two BTCUSDT instruments have `[instrument.quote.adapt]`, the COIN-M one does not: its
    // report has no `adapt` (absent, not null) and its summary no such line.
    let json = serde_json::to_value(&report).unwrap();
    for (k, r) in report.instruments.iter().enumerate() {
        let has = k < 2;
        assert_eq!(r.adapt.is_some(), has, "{}", r.key);
        assert_eq!(
            json["instruments"][&r.key].get("adapt").is_some(),
            has,
            "{}",
            r.key
        );
        assert_eq!(r.summary().contains("  adapt      "), has, "{}", r.key);
        assert_eq!(outcome.metrics[k].adapt.is_some(), has, "{}", r.key);
    }
    let p = &report.portfolio;
    assert_eq!(p.currency, "USDT");
    assert!(p.unconverted.is_empty(), "{:?}", p.unconverted);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let rate = |c: &str| p.conversions.iter().find(|x| x.from == c).unwrap().rate;
    let (btc, usd) = (rate("BTC"), rate("USD"));
    assert!((60_000.0..63_000.0).contains(&btc), "{btc}");
    // USD in USDT through the two BTC prices: within a few bps of 1.
    assert!((usd - 1.0).abs() < 0.01, "{usd}");
    let cm = &report.instruments[2];
    let expect_total =
        report.instruments[0].pnl.total + report.instruments[1].pnl.total + cm.pnl.total * btc;
    assert!(
        (p.total - expect_total).abs() < 1e-6,
        "{} vs {expect_total}",
        p.total
    );
    let expect_notional = report.instruments[0].traded.notional
        + report.instruments[1].traded.notional
        + cm.traded.notional * usd;
    assert!((p.traded_notional - expect_notional).abs() < 1e-6);
    match record::replay(&dir).unwrap() {
        ReplayOutcome::Identical { intents, .. } => assert!(intents > 0),
        other => panic!("three-instrument journal diverged: {other:?}"),
    }
}
