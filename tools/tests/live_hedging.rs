//! Issue 20, live: a `[[hedge]]` group through `ringmaker run --live` against `ringmaker venue`
//! over TLS, both real binaries. Live order entry reaches Binance USDⓈ-M only, so the group
//! quotes BTCUSDT and hedges on a second USDⓈ-M perpetual of the same base, BTCUSDC. Its market
//! data is the shipped BTCUSDT recording with the symbol renamed (no BTCUSDC recording is
//! shipped): the two books move together, as the two perpetuals do.
//!
//! The hedge orders are real signed orders on the venue's WebSocket API: passive post-only ones
//! and IOCs, on BTCUSDC only, never sent twice; at the end the venue's positions (asked over REST)
//! are the engine's, nothing is left open, and the journal replays identical.

use gateway::binance::sign::{Credentials, Secret};
use std::io::{Read, Write};
use std::path::Path;
use test_support::TempDir;

mod common;
use common::{account_state, ringmaker, root, venue_serving, API_KEY, API_SECRET};

/// The shipped perpetual/spot hedge config with spot replaced by a BTCUSDC perpetual: the
/// engine's part (what the venue serves), and the run's (plus `[venue]` and `[cpu]`).
fn config(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let text = std::fs::read_to_string(root("configs/hedge-perp-spot-btcusdt.toml")).unwrap();
    let spot = text
        .find("# ---- spot BTCUSDT")
        .expect("the shipped config's spot section");
    let perp = text
        .find("# ---- USDⓈ-M BTCUSDT")
        .expect("its perpetual section");
    let (head, quoted) = (&text[..perp], &text[perp..spot]);
    let head = head
        .replace(
            "quoted = [\"binance-usdm:BTCUSDT\"]",
            "quoted = [\"BTCUSDT\"]",
        )
        .replace(
            "hedge = [\"binance-spot:BTCUSDT\"]",
            "hedge = [\"BTCUSDC\"]",
        );
    // The hedge instrument: the perpetual's grids and risk, no quote section, USDC's minimum.
    let q = quoted.find("[instrument.quote]").unwrap();
    let r = quoted.find("[instrument.risk]").unwrap();
    let hedge = format!("{}{}", &quoted[..q], &quoted[r..])
        .replace("symbol = \"BTCUSDT\"", "symbol = \"BTCUSDC\"")
        .replace("min_notional = \"100\"", "min_notional = \"5\"");
    let engine = format!("{head}{quoted}{hedge}");
    let (e, r) = (dir.join("engine.toml"), dir.join("cfg.toml"));
    std::fs::write(&e, &engine).unwrap();
    std::fs::write(
        &r,
        format!(
            "{engine}\n[venue]\ncountdown_secs = 120\ncountdown_every_secs = 2\n\n\
             [cpu]\nidle = \"backoff\"\n"
        ),
    )
    .unwrap();
    (e, r)
}

/// The shipped BTCUSDT recording as BTCUSDC (stream names and symbols renamed), plain text.
fn btcusdc_recording(dir: &Path) -> std::path::PathBuf {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root("tests/data/binance-usdm/btcusdt_20240808.gz")).unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    let p = dir.join("btcusdc.txt");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(
            text.replace("btcusdt", "btcusdc")
                .replace("BTCUSDT", "BTCUSDC")
                .as_bytes(),
        )
        .unwrap();
    p
}

#[test]
fn a_live_group_hedges_on_the_second_perpetual_and_ends_with_the_venues_view_equal_to_the_engines()
{
    let dir = TempDir::new("live-hedging");
    let (engine_cfg, cfg) = config(dir.path());
    let usdc = btcusdc_recording(dir.path());
    let log = dir.join("orders.jsonl");
    let v = venue_serving(
        dir.path(),
        &engine_cfg,
        &[
            format!(
                "BTCUSDT={}",
                root("tests/data/binance-usdm/btcusdt_20240808.gz").display()
            )
            .into(),
            format!("BTCUSDC={}", usdc.display()).into(),
        ],
        &[
            "--accounts".into(),
            root("configs/venue-accounts.toml").into(),
            "--order-log".into(),
            log.clone().into(),
        ],
    );
    let out = dir.join("out");
    // Twenty seconds of wall time at 10x: over three minutes of the recording.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(v.run_args("--live", &out, &cfg, "20"))
        .env("RINGMAKER_API_KEY", API_KEY)
        .env("RINGMAKER_API_SECRET", API_SECRET)
        .env_remove("RINGMAKER_ED25519_KEY_FILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && stdout.contains("live run: duration reached"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The hedging as the run reports it.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let h = &report["hedging"]["btc"];
    let passive = h["orders"]["passive"].as_u64().unwrap();
    let active = h["orders"]["active"].as_u64().unwrap();
    eprintln!(
        "live hedging: passive {passive}, active {active}, in band {:.1}% of {:.1} s, maker share \
         {:.1}%",
        h["in_band_share"].as_f64().unwrap() * 100.0,
        h["valid_s"].as_f64().unwrap(),
        h["volume"]["maker_share"].as_f64().unwrap() * 100.0
    );
    assert!(passive > 0, "no passive hedge: {h}");
    let fills = report["instruments"]["BTCUSDC"]["fills"]["count"]
        .as_u64()
        .unwrap();
    assert!(fills > 0, "no hedge filled: {h}");
    // At the venue: the hedge orders, placed on BTCUSDC over the WebSocket API, each id once.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let places: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["op"] == "order.place" && l["symbol"] == "BTCUSDC")
        .collect();
    assert!(
        places.len() as u64 >= passive + active,
        "{} places on BTCUSDC at the venue, the engine says {passive} passive and {active} active",
        places.len()
    );
    let mut ids: Vec<&str> = places
        .iter()
        .flat_map(|l| l["client_order_ids"].as_array().unwrap())
        .map(|id| id.as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a client order id placed twice");
    // What the venue holds, asked independently: nothing open, each position the engine's.
    for symbol in ["BTCUSDT", "BTCUSDC"] {
        let creds = Credentials::hmac(API_KEY, &Secret::new(API_SECRET)).unwrap();
        let (open, pos) = account_state(&v, creds, symbol);
        assert_eq!(open, 0, "{symbol}: orders left open at the venue");
        let engine = report["instruments"][symbol]["position"]["final"]
            .as_f64()
            .unwrap();
        assert_eq!(
            pos,
            (engine * 1000.0).round() as i64,
            "{symbol}: venue vs engine"
        );
    }
    // The session replays bit for bit.
    let r = ringmaker(&["replay", out.join("journal").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && text.contains("identical"), "{text}");
}
