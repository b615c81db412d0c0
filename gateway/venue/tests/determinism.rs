//! The venue is deterministic end to end: with a manual clock (`--manual-clock`), the same data,
//! the same client requests and the same clock steps give the same responses, order ids, fills,
//! user data events and market streams, byte for byte, over real TLS.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use test_support::TempDir;
use tungstenite::Message;
use venue::auth::hmac_hex;
use venue::server::{ServerConfig, Venue, VenueHandle};

/// Collects every text frame of a WebSocket on its own thread (so that no queue fills while
/// the test is busy elsewhere) until `stop`.
fn collect(
    h: &VenueHandle,
    path: &str,
    stop: &Arc<AtomicBool>,
) -> (JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let mut w = ws(h, path);
    w.get_ref()
        .sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let (o, stop, path) = (Arc::clone(&out), Arc::clone(stop), path.to_string());
    let t = std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match w.read() {
                Ok(Message::Text(t)) => o.lock().unwrap().push(t.to_string()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("{path}: {e}"),
            }
        }
    });
    (t, out)
}

/// Moves the manual clock by `ms`; the new venue time.
fn advance(h: &VenueHandle, ms: i64) -> i64 {
    let (s, _, v) = request_full(
        h,
        "POST",
        "/venue/clock",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("advance={ms}"),
        Duration::from_secs(70),
    )
    .expect("a response");
    assert_eq!(s, 200, "{v}");
    v["venueTime"].as_i64().unwrap()
}

/// One scripted session on a fresh venue: everything the client saw, in order.
fn session(name: &str) -> Vec<String> {
    let dir = TempDir::new(name);
    let cfg = test_support::default_config();
    let mut sc = ServerConfig::new(vec![test_support::usdm()], cfg.clone());
    sc.manual_clock = true;
    sc.cert_dir = dir.join("cert");
    let h = Venue::start(sc, sim_exchange(cfg)).expect("venue starts");
    let mut seen: Vec<String> = Vec::new();
    let mut log = |what: &str, v: &Value| seen.push(format!("{what} {v}"));

    let (_, k) = signed(&h, "POST", "/fapi/v1/listenKey", "");
    let key = k["listenKey"].as_str().unwrap().to_string();
    log("listenKey", &k);
    let stop = Arc::new(AtomicBool::new(false));
    let streams = [
        format!("/private/ws?listenKey={key}"),
        "/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker".to_string(),
        "/market/stream?streams=btcusdt@trade/btcusdt@markPrice@1s".to_string(),
    ];
    let collectors: Vec<_> = streams.iter().map(|p| collect(&h, p, &stop)).collect();
    let mut api = ws(&h, "/ws-fapi/v1");

    log("clock", &json!(advance(&h, 2_000)));
    let (_, depth) = get(&h, "/fapi/v1/depth?symbol=BTCUSDT&limit=20");
    log("depth", &depth);
    let px = |v: &Value, side: &str| -> f64 { v[side][0][0].as_str().unwrap().parse().unwrap() };
    let (bid, ask) = (px(&depth, "bids"), px(&depth, "asks"));
    // Post-only quotes at and near the touch on both sides: some fill as the replay trades.
    for i in 0..4 {
        for (side, p) in [
            ("BUY", bid - 0.1 * i as f64),
            ("SELL", ask + 0.1 * i as f64),
        ] {
            let (_, r) = signed(
                &h,
                "POST",
                "/fapi/v1/order",
                &format!("symbol=BTCUSDT&side={side}&type=LIMIT&timeInForce=GTX&quantity=0.002&price={p:.1}&newClientOrderId=q{side}{i}"),
            );
            log("place", &r);
        }
    }
    // One over the WebSocket API.
    let mut params = serde_json::Map::new();
    for (k, v) in [
        ("symbol", "BTCUSDT".to_string()),
        ("side", "BUY".into()),
        ("type", "LIMIT".into()),
        ("timeInForce", "GTX".into()),
        ("quantity", "0.005".into()),
        ("price", format!("{:.1}", bid - 1.0)),
        ("apiKey", KEY.into()),
        ("timestamp", wall_ms().to_string()),
        ("recvWindow", "60000".into()),
    ] {
        params.insert(k.into(), Value::String(v));
    }
    let sig = hmac_hex(
        SECRET.as_bytes(),
        venue::auth::ws_payload(&params).as_bytes(),
    );
    params.insert("signature".into(), Value::String(sig));
    api.send(Message::text(
        json!({"id": "p1", "method": "order.place", "params": params}).to_string(),
    ))
    .unwrap();
    let mut r = next_json(&mut api, Duration::from_secs(10)).expect("a WebSocket API response");
    r["rateLimits"] = Value::Null; // request weight counts REST and WS together: kept below
    log("ws order.place", &r);

    log("clock", &json!(advance(&h, 30_000)));
    for (path, q) in [
        ("/fapi/v1/openOrders", "symbol=BTCUSDT"),
        ("/fapi/v2/positionRisk", ""),
        ("/fapi/v2/account", ""),
    ] {
        let (_, v) = signed(&h, "GET", path, q);
        log(path, &v);
    }
    let (_, r) = signed(
        &h,
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.003",
    );
    log("market", &r);
    log("clock", &json!(advance(&h, 10_000)));
    let (_, r) = signed(&h, "DELETE", "/fapi/v1/allOpenOrders", "symbol=BTCUSDT");
    log("cancel all", &r);
    log("clock", &json!(advance(&h, 1_000)));
    for id in 1..=10 {
        let (_, v) = signed(
            &h,
            "GET",
            "/fapi/v1/order",
            &format!("symbol=BTCUSDT&orderId={id}"),
        );
        log("order", &v);
    }
    // Let the collectors drain what was published, then stop them.
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    for ((t, out), path) in collectors.into_iter().zip(&streams) {
        t.join().unwrap();
        let msgs = out.lock().unwrap();
        assert!(!msgs.is_empty(), "{path}: nothing received");
        for m in msgs.iter() {
            seen.push(format!("{} {m}", path.split('?').next().unwrap()));
        }
    }
    h.shutdown();
    seen
}

#[test]
fn the_same_requests_and_clock_steps_give_the_same_session_byte_for_byte() {
    let a = session("venue-determinism-a");
    let b = session("venue-determinism-b");
    // The session did something worth comparing: orders rested and some filled as makers.
    let fills = a
        .iter()
        .filter(|l| {
            l.starts_with("/private/ws")
                && l.contains("\"x\":\"TRADE\"")
                && l.contains("\"m\":true")
        })
        .count();
    assert!(fills > 0, "no maker fill in the session");
    assert!(a.iter().any(|l| l.starts_with("/public/stream")));
    assert_eq!(a.len(), b.len(), "sessions differ in length");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "sessions differ at line {i}");
    }
}

/// A recording that holds mark prices (a live session's, which subscribes them) is replayed
/// without them: the venue's own, one a second from its book, are the only ones on the stream.
#[test]
fn recorded_mark_prices_are_not_published_twice() {
    let dir = TempDir::new("venue-recorded-marks");
    let text = test_support::recording_text(&test_support::usdm());
    let mut rec = String::new();
    let mut injected = 0;
    for (k, line) in text.lines().take(20_000).enumerate() {
        rec.push_str(line);
        rec.push('\n');
        let e_ms = line
            .split_once(r#""E":"#)
            .and_then(|(_, r)| r.split([',', '}']).next())
            .and_then(|v| v.parse::<i64>().ok());
        if let (0, Some(e)) = (k % 100, e_ms) {
            let (ns, _) = line.split_once(' ').unwrap();
            rec.push_str(&format!(
                r#"{ns} {{"stream":"btcusdt@markPrice@1s","data":{{"e":"markPriceUpdate","E":{e},"s":"BTCUSDT","p":"1.00000000","i":"1.00000000","P":"1.00000000","r":"-0.00099999","T":{}}}}}"#,
                (e / 28_800_000 + 1) * 28_800_000
            ));
            rec.push('\n');
            injected += 1;
        }
    }
    assert!(injected > 50);
    let path = dir.join("marks.txt");
    std::fs::write(&path, rec).unwrap();
    let cfg = test_support::default_config();
    let mut sc = ServerConfig::new(vec![path], cfg);
    sc.manual_clock = true;
    sc.cert_dir = dir.join("cert");
    let h = Venue::start(sc, Arc::new(venue::NoExchange)).expect("venue starts");
    let stop = Arc::new(AtomicBool::new(false));
    let (t, out) = collect(&h, "/market/stream?streams=btcusdt@markPrice@1s", &stop);
    advance(&h, 1_000);
    advance(&h, 6_000);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    let got = out.lock().unwrap().clone();
    assert!(got.len() >= 5, "{got:?}");
    let mut seconds = Vec::new();
    for m in &got {
        assert!(
            !m.contains("-0.00099999"),
            "a recorded mark price went out: {m}"
        );
        let v: Value = serde_json::from_str(m).unwrap();
        seconds.push(v["data"]["E"].as_i64().unwrap() / 1000);
    }
    let n = seconds.len();
    seconds.dedup();
    assert_eq!(seconds.len(), n, "one mark price a second: {got:?}");
    h.shutdown();
}

#[test]
fn the_clock_control_is_404_without_the_flag_and_rejects_bad_steps() {
    let dir = TempDir::new("venue-clock-control");
    let mut sc = ServerConfig::new(vec![test_support::usdm()], test_support::default_config());
    sc.cert_dir = dir.join("cert");
    let h = Venue::start(sc.clone(), Arc::new(venue::NoExchange)).unwrap();
    let (s, _) = get(&h, "/venue/clock");
    assert_eq!(s, 404);
    h.shutdown();
    sc.manual_clock = true;
    let h = Venue::start(sc, Arc::new(venue::NoExchange)).unwrap();
    let (s, v) = get(&h, "/venue/clock");
    assert_eq!(s, 200);
    let t0 = v["venueTime"].as_i64().unwrap();
    assert_eq!(t0, v["origin"].as_i64().unwrap());
    // It stands still by itself.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&h, "/fapi/v1/time").1["serverTime"].as_i64(), Some(t0));
    let far = format!("to={}", t0 + 86_400_001);
    for body in [
        "",
        "advance=-5",
        "advance=x",
        "advance=86400001",
        "advance=99999999999999999999",
        "to=1",
        far.as_str(),
        "advance=1&to=2",
    ] {
        let (s, _, v) =
            request_full(&h, "POST", "/venue/clock", "", body, Duration::from_secs(5)).unwrap();
        assert_eq!((s, v["code"].as_i64()), (400, Some(-1100)), "{body}: {v}");
    }
    assert_eq!(advance(&h, 1_500), t0 + 1_500);
    assert_eq!(
        get(&h, "/fapi/v1/time").1["serverTime"].as_i64(),
        Some(t0 + 1_500)
    );
    // The book moved with it: the depth snapshot's E is at most the clock, and past the start.
    let (_, d) = get(&h, "/fapi/v1/depth?symbol=BTCUSDT&limit=5");
    let e = d["E"].as_i64().unwrap();
    assert!(
        e > t0 && e <= t0 + 1_500,
        "E {e} not in ({t0}, {}]",
        t0 + 1_500
    );
    h.shutdown();
}

#[test]
fn absurd_speeds_are_refused() {
    let dir = TempDir::new("venue-speeds");
    for speed in [-1.0, f64::NAN, f64::INFINITY, 1e12] {
        let mut sc = ServerConfig::new(vec![test_support::usdm()], test_support::default_config());
        sc.cert_dir = dir.join("cert");
        sc.speed = speed;
        let e = Venue::start(sc, Arc::new(venue::NoExchange)).unwrap_err();
        assert!(e.to_string().contains("--speed must be"), "{speed}: {e}");
    }
}
