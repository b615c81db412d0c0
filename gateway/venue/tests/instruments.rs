//! Several USDⓈ-M instruments on one venue: every instrument of the config is replayed from its
//! own recording (merged in time order), with its own book, `/depth`, streams and order entry.
//!
//! The second instrument's recording is derived from the shipped BTCUSDT one (renamed ETHUSDT,
//! on a 0.01 tick): real message flow, a different symbol and grid.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::TempDir;
use venue::server::{ServerConfig, Venue, VenueHandle};

/// `configs/default.toml` plus an ETHUSDT perpetual on a 0.01 tick (the book window widened
/// for it, as configs/usdm-spot-btcusdt.toml does for spot's 0.01 tick).
fn two_instruments() -> engine::Config {
    let text = test_support::config_text("default.toml")
        .replace("book_slots = 262144", "book_slots = 2097152");
    let inst = &text[text.find("[[instrument]]").unwrap()..];
    let eth = inst
        .replace("\"BTCUSDT\"", "\"ETHUSDT\"")
        .replace("tick = \"0.10\"", "tick = \"0.01\"");
    engine::Config::from_toml(&format!("{text}\n{eth}")).expect("two-instrument config")
}

/// The first `lines` lines of the shipped recording, renamed ETHUSDT, as a plain file.
fn eth_recording(dir: &TempDir, lines: usize) -> std::path::PathBuf {
    let text = test_support::recording_text(&test_support::usdm());
    let mut out = String::new();
    for l in text.lines().take(lines) {
        out.push_str(
            &l.replace("btcusdt@", "ethusdt@")
                .replace("\"BTCUSDT\"", "\"ETHUSDT\""),
        );
        out.push('\n');
    }
    let path = dir.join("ethusdt.txt");
    std::fs::write(&path, out).unwrap();
    path
}

fn start(name: &str) -> (VenueHandle, TempDir) {
    let dir = TempDir::new(name);
    let cfg = two_instruments();
    let eth = eth_recording(&dir, 30_000);
    // Plain files: each is bound by the symbol its streams name.
    let mut sc = ServerConfig::new(vec![eth, test_support::usdm()], cfg.clone());
    sc.speed = 2.0;
    sc.cert_dir = dir.join("cert");
    (
        Venue::start(sc, sim_exchange(cfg)).expect("venue starts"),
        dir,
    )
}

fn best(depth: &Value, side: &str) -> f64 {
    depth[side][0][0].as_str().unwrap().parse().unwrap()
}

#[test]
fn every_instrument_of_the_config_is_replayed_with_its_own_book_streams_and_orders() {
    let (h, _d) = start("venue-two-instruments");

    // exchangeInfo lists both, each with its own grid.
    let (s, info) = get(&h, "/fapi/v1/exchangeInfo");
    assert_eq!(s, 200);
    let symbols: Vec<(&str, &str)> = info["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["symbol"].as_str().unwrap(),
                s["filters"][0]["tickSize"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(symbols, [("BTCUSDT", "0.10"), ("ETHUSDT", "0.01")]);

    // A book per symbol, each at its own replay point; an unknown symbol is -1121.
    for sym in ["BTCUSDT", "ETHUSDT", "ethusdt"] {
        let (s, d) = get(&h, &format!("/fapi/v1/depth?symbol={sym}&limit=5"));
        assert_eq!(s, 200, "{sym}: {d}");
        assert!(d["lastUpdateId"].as_u64().unwrap() > 0);
        assert!(best(&d, "bids") < best(&d, "asks"), "{sym} crossed: {d}");
    }
    let (s, d) = get(&h, "/fapi/v1/depth?symbol=XRPUSDT");
    assert_eq!((s, d["code"].as_i64()), (400, Some(-1121)));

    // premiumIndex: one object per symbol without `symbol`.
    let (_, p) = get(&h, "/fapi/v1/premiumIndex");
    let marks: BTreeSet<&str> = p
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(marks, BTreeSet::from(["BTCUSDT", "ETHUSDT"]));
    let (_, p) = get(&h, "/fapi/v1/premiumIndex?symbol=ETHUSDT");
    assert_eq!(p["symbol"], "ETHUSDT");
    assert!(p["markPrice"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);

    // Streams of both symbols on one combined connection, each message its own symbol's; the
    // merged depth stream of the second symbol is made from its own diffs (an unbroken pu chain).
    let mut public = ws(
        &h,
        "/public/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker/ethusdt@depth@100ms",
    );
    let mut market = ws(
        &h,
        "/market/stream?streams=ethusdt@aggTrade/ethusdt@markPrice@1s",
    );
    let mut seen = BTreeSet::new();
    let mut last_u: Option<u64> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && seen.len() < 5 {
        for w in [&mut public, &mut market] {
            let Some(m) = next_json(w, Duration::from_millis(50)) else {
                continue;
            };
            let stream = m["stream"].as_str().unwrap().to_string();
            let data = &m["data"];
            let prefix = stream.split('@').next().unwrap().to_ascii_uppercase();
            assert_eq!(data["s"].as_str(), Some(prefix.as_str()), "{m}");
            if stream == "ethusdt@depth@100ms" {
                if let Some(u) = last_u {
                    assert_eq!(data["pu"].as_u64(), Some(u), "pu chain broken: {m}");
                }
                last_u = data["u"].as_u64();
            }
            seen.insert(stream);
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(
            [
                "btcusdt@bookTicker",
                "ethusdt@bookTicker",
                "ethusdt@depth@100ms",
                "ethusdt@aggTrade",
                "ethusdt@markPrice@1s"
            ]
            .map(String::from)
        )
    );

    // Order entry on the second symbol matches its own book: a post-only bid far through the
    // ask is -5022, one below the bid rests; open orders are per symbol.
    let (_, d) = get(&h, "/fapi/v1/depth?symbol=ETHUSDT&limit=5");
    let (bid, ask) = (best(&d, "bids"), best(&d, "asks"));
    let through = format!("{:.2}", ask + 50.0);
    let (s, r) = signed(
        &h,
        "POST",
        "/fapi/v1/order",
        &format!(
            "symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={through}"
        ),
    );
    assert_eq!((s, r["code"].as_i64()), (400, Some(-5022)), "{r}");
    let below = format!("{:.2}", bid - 50.0);
    let (s, r) = signed(
        &h,
        "POST",
        "/fapi/v1/order",
        &format!("symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={below}"),
    );
    assert_eq!((s, r["status"].as_str()), (200, Some("NEW")), "{r}");
    assert_eq!(r["price"].as_str(), Some(below.as_str()));
    let (_, eth) = signed(&h, "GET", "/fapi/v1/openOrders", "symbol=ETHUSDT");
    let (_, btc) = signed(&h, "GET", "/fapi/v1/openOrders", "symbol=BTCUSDT");
    assert_eq!(
        (eth.as_array().unwrap().len(), btc.as_array().unwrap().len()),
        (1, 0)
    );
    // A market buy on the second symbol fills against its book and moves its position only.
    let (s, r) = signed(
        &h,
        "POST",
        "/fapi/v1/order",
        "symbol=ETHUSDT&side=BUY&type=MARKET&quantity=0.003",
    );
    assert_eq!((s, r["status"].as_str()), (200, Some("FILLED")), "{r}");
    assert_eq!(r["executedQty"].as_str(), Some("0.003"));
    let id = r["orderId"].as_u64().unwrap();
    let (_, q) = signed(
        &h,
        "GET",
        "/fapi/v1/order",
        &format!("symbol=ETHUSDT&orderId={id}"),
    );
    assert_eq!(q["status"].as_str(), Some("FILLED"), "{q}");
    let (_, risk) = signed(&h, "GET", "/fapi/v2/positionRisk", "");
    let amt = |sym: &str| -> String {
        risk.as_array()
            .unwrap()
            .iter()
            .find(|p| p["symbol"] == sym)
            .map(|p| p["positionAmt"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        (amt("ETHUSDT"), amt("BTCUSDT")),
        ("0.003".into(), "0.000".into()),
        "{risk}"
    );
    h.shutdown();
}

#[test]
fn an_instrument_without_a_recording_or_of_another_venue_is_refused() {
    let dir = TempDir::new("venue-instruments-refused");
    // Two instruments, one recording: the ETHUSDT book would never exist.
    let mut sc = ServerConfig::new(vec![test_support::usdm()], two_instruments());
    sc.cert_dir = dir.join("cert");
    let e = Venue::start(sc, Arc::new(venue::NoExchange)).unwrap_err();
    assert!(
        format!("{e:#}").contains("ETHUSDT (binance-usdm) has no recording"),
        "{e:#}"
    );
    // A spot instrument: not this venue's.
    let cfg =
        engine::Config::from_toml(&test_support::config_text("usdm-spot-btcusdt.toml")).unwrap();
    let mut sc = ServerConfig::new(test_support::spot().to_vec(), cfg);
    sc.cert_dir = dir.join("cert");
    let e = Venue::start(sc, Arc::new(venue::NoExchange)).unwrap_err();
    assert!(format!("{e:#}").contains("USDⓈ-M"), "{e:#}");
}
