//! Faults on demand over real TLS on 127.0.0.1: each fault fires where the spec says, and a
//! client sees it as it would on Binance.

mod common;

use common::{connect, request_full, wall_ms, ws, Tls, KEY, SECRET};
use serde_json::Value;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::TempDir;
use tungstenite::{Message, WebSocket};
use venue::api::Exchange;
use venue::auth::hmac_hex;
use venue::faults::{parse, SpecError};
use venue::server::VenueHandle;
use venue::NoExchange;

fn start_full(
    name: &str,
    speed: f64,
    spec: &str,
    control: bool,
    exchange: Arc<dyn Exchange>,
) -> (VenueHandle, TempDir) {
    common::start_venue(
        name,
        |cfg| {
            cfg.speed = speed;
            cfg.faults = if spec.is_empty() {
                Vec::new()
            } else {
                parse(spec, None).expect("a good spec")
            };
            cfg.faults_control = control;
        },
        exchange,
    )
}

fn start(name: &str, speed: f64, spec: &str) -> (VenueHandle, TempDir) {
    start_full(name, speed, spec, false, Arc::new(NoExchange))
}

fn sim_exchange() -> Arc<dyn Exchange> {
    common::sim_exchange(test_support::default_config())
}

/// One request on its own connection; `None` if no response came within `timeout`.
fn request_within(
    h: &VenueHandle,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
    timeout: Duration,
) -> Option<(u16, Value)> {
    request_full(h, method, path, headers, body, timeout).map(|(s, _, v)| (s, v))
}

fn request(h: &VenueHandle, method: &str, path: &str, body: &str) -> (u16, Value) {
    request_within(h, method, path, "", body, Duration::from_secs(10)).expect("a response")
}

/// A signed REST request of the HMAC test account (query string signed).
fn signed(
    h: &VenueHandle,
    method: &str,
    path: &str,
    params: &str,
    timeout: Duration,
) -> Option<(u16, Value)> {
    let q = format!("{params}&recvWindow=60000&timestamp={}", wall_ms());
    let sig = hmac_hex(SECRET.as_bytes(), q.as_bytes());
    request_within(
        h,
        method,
        &format!("{path}?{q}&signature={sig}"),
        &format!("X-MBX-APIKEY: {KEY}\r\n"),
        "",
        timeout,
    )
}

enum Next {
    Text(String),
    Nothing,
    Closed,
}

fn next_text(ws: &mut WebSocket<Tls>, timeout: Duration) -> Next {
    ws.get_ref().sock.set_read_timeout(Some(timeout)).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Next::Text(t),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Next::Nothing
            }
            Err(_) => return Next::Closed,
        }
    }
}

fn next_json(ws: &mut WebSocket<Tls>, timeout: Duration) -> Option<Value> {
    match next_text(ws, timeout) {
        Next::Text(t) => Some(serde_json::from_str(&t).expect("valid JSON")),
        Next::Nothing => None,
        Next::Closed => panic!("the stream closed"),
    }
}

#[test]
fn parse_errors_name_the_bad_part() {
    let err = |s: &str| parse(s, None).unwrap_err();
    assert_eq!(err("nope@at=1s"), SpecError::UnknownFault("nope".into()));
    assert!(matches!(err("gap@at=10"), SpecError::BadValue { ref param, .. } if param == "at=10"));
    assert!(err("gap@at=10").to_string().contains("`at=10`"));
    assert!(matches!(
        err("drop-connections@at=1s;rest-5xx@every=0"),
        SpecError::BadValue { ref fault, ref param, .. } if fault == "rest-5xx" && param == "every=0"
    ));
    assert!(matches!(
        err("drop-connections@every=60"),
        SpecError::BadValue { ref param, .. } if param == "every=60"
    ));
    assert!(matches!(
        err("drop-connections@at=1s,stream=btcusdt@bookTicker"),
        SpecError::UnknownParam { ref param, .. } if param == "stream=btcusdt@bookTicker"
    ));
    assert!(matches!(err("gap@at"), SpecError::MalformedParam { ref param, .. } if param == "at"));
    assert!(matches!(
        err("freeze@stream=btcusdt@depth@0ms,at=1s"),
        SpecError::Missing { want: "for=", .. }
    ));
    assert!(matches!(
        err("ack-delay"),
        SpecError::Missing { want: "ms=", .. }
    ));
    assert!(matches!(err("listenkey-expire"), SpecError::Missing { .. }));
    assert!(matches!(
        err("malformed@stream=btcusdt@nosuch,at=1s"),
        SpecError::BadValue { .. }
    ));
    assert_eq!(err(" ; "), SpecError::Empty);
    // The control endpoint's "now" fills a missing at=.
    let f = parse("listenkey-expire", Some(12_000)).unwrap();
    assert_eq!(f[0].to_string(), "listenkey-expire@at=12s");
}

/// Binance's sync procedure: the snapshot, then the first diff bridging it, then the pu chain.
/// Returns the u the book is at.
fn sync(h: &VenueHandle, ws: &mut WebSocket<Tls>, pending: &mut Vec<Value>) -> u64 {
    let (s, snap) = request(h, "GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=1000", "");
    assert_eq!(s, 200);
    let last = snap["lastUpdateId"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let d = if pending.is_empty() {
            match next_json(ws, Duration::from_millis(200)) {
                Some(v) => v["data"].clone(),
                None => continue,
            }
        } else {
            pending.remove(0)
        };
        let (first, u) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        if u < last {
            continue;
        }
        assert!(first <= last && last <= u, "U {first} ≤ {last} ≤ u {u}");
        return u;
    }
    panic!("no diff bridged the snapshot {last}");
}

#[test]
fn gap_breaks_the_pu_chain_once_at_its_time_and_a_resync_recovers() {
    let (h, _d) = start("faults-gap", 20.0, "gap@at=30s");
    let at = h.origin_ms() + 30_000;
    let mut ws = ws(&h, "/public/stream?streams=btcusdt@depth@0ms");
    let mut buffered = Vec::new();
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        if let Some(v) = next_json(&mut ws, Duration::from_millis(50)) {
            buffered.push(v["data"].clone());
        }
    }
    let mut prev = sync(&h, &mut ws, &mut buffered);
    let (mut prev_e, mut gaps, mut after) = (0i64, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && after < 50 {
        let Some(v) = next_json(&mut ws, Duration::from_millis(200)) else {
            continue;
        };
        let d = &v["data"];
        let (pu, u, e) = (
            d["pu"].as_u64().unwrap(),
            d["u"].as_u64().unwrap(),
            d["E"].as_i64().unwrap(),
        );
        if pu != prev {
            gaps += 1;
            // The message dropped is the first at or after the fault's time.
            assert!(
                prev_e < at && at <= e,
                "gap between E {prev_e} and {e}, fault at {at}"
            );
            // Resync: a fresh snapshot bridges the stream again.
            prev = sync(&h, &mut ws, &mut vec![d.clone()]);
            continue;
        }
        prev = u;
        prev_e = e;
        if gaps > 0 {
            after += 1;
        }
    }
    assert_eq!(gaps, 1, "one gap");
    assert!(
        after >= 50,
        "the chain held after the resync ({after} diffs)"
    );
    h.shutdown();
}

#[test]
fn drop_connections_at_a_time_closes_a_stream_connection() {
    let (h, _d) = start("faults-drop", 20.0, "drop-connections@at=20s");
    let at = h.origin_ms() + 20_000;
    let mut ws = ws(&h, "/public/ws/btcusdt@bookTicker");
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "not closed ({got} messages)");
        match next_text(&mut ws, Duration::from_millis(200)) {
            Next::Text(_) => got += 1,
            Next::Nothing => {}
            Next::Closed => break,
        }
    }
    assert!(got > 10, "messages before the drop: {got}");
    assert!(h.now_ms() >= at, "closed before the fault's time");
    // The venue still serves new connections.
    assert_eq!(request(&h, "GET", "/fapi/v1/ping", "").0, 200);
    h.shutdown();
}

#[test]
fn rest_5xx_every_3_answers_the_third_request_503() {
    let (h, _d) = start("faults-5xx", 10.0, "rest-5xx@every=3");
    let statuses: Vec<(u16, Value)> = (0..4)
        .map(|_| request(&h, "GET", "/fapi/v1/time", ""))
        .collect();
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    assert_eq!(statuses[2].0, 503);
    assert_eq!(statuses[2].1["code"], -1001);
    assert_eq!(
        statuses[2].1["msg"],
        "Internal error; unable to process your request. Please try again."
    );
    assert_eq!(statuses[3].0, 200);
    h.shutdown();
}

#[test]
fn freeze_drops_a_streams_messages_for_its_window() {
    let (h, _d) = start(
        "faults-freeze",
        25.0,
        "freeze@stream=btcusdt@bookTicker,at=20s,for=30s",
    );
    let (from, to) = (h.origin_ms() + 20_000, h.origin_ms() + 50_000);
    let mut ws = ws(
        &h,
        "/public/stream?streams=btcusdt@bookTicker/btcusdt@depth@0ms",
    );
    let (mut before, mut inside, mut after, mut depth_inside) = (0, 0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && after < 20 {
        let Some(v) = next_json(&mut ws, Duration::from_millis(200)) else {
            continue;
        };
        let e = v["data"]["E"].as_i64().unwrap();
        let inw = (from..to).contains(&e);
        match v["stream"].as_str().unwrap() {
            "btcusdt@bookTicker" if e < from => before += 1,
            "btcusdt@bookTicker" if inw => inside += 1,
            "btcusdt@bookTicker" => after += 1,
            _ if inw => depth_inside += 1,
            _ => {}
        }
    }
    assert!(before > 10, "bookTickers before the freeze: {before}");
    assert_eq!(inside, 0, "bookTickers inside the freeze");
    assert!(after >= 20, "bookTickers after the freeze: {after}");
    assert!(depth_inside > 10, "the other stream ran on: {depth_inside}");
    h.shutdown();
}

#[test]
fn malformed_sends_one_truncated_message() {
    let (h, _d) = start(
        "faults-malformed",
        20.0,
        "malformed@stream=btcusdt@bookTicker,at=20s",
    );
    let mut ws = ws(&h, "/public/ws/btcusdt@bookTicker");
    let (mut good, mut bad) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        if let Next::Text(t) = next_text(&mut ws, Duration::from_millis(200)) {
            match serde_json::from_str::<Value>(&t) {
                Ok(_) => good += 1,
                Err(_) => {
                    bad += 1;
                    assert!(t.starts_with("{\"e\":\"bookTicker\""), "{t}");
                }
            }
        }
    }
    assert_eq!(bad, 1);
    assert!(good > 10);
    h.shutdown();
}

#[test]
fn listenkey_expire_sends_listen_key_expired_then_closes() {
    let (h, _d) = start_full(
        "faults-listenkey",
        20.0,
        "listenkey-expire@at=40s",
        false,
        sim_exchange(),
    );
    let (s, v) = request_within(
        &h,
        "POST",
        "/fapi/v1/listenKey",
        &format!("X-MBX-APIKEY: {KEY}\r\n"),
        "",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(s, 200, "{v}");
    let key = v["listenKey"].as_str().unwrap().to_string();
    let mut ws = ws(&h, &format!("/private/ws?listenKey={key}"));
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut expired = None;
    loop {
        assert!(Instant::now() < deadline, "no close");
        match next_text(&mut ws, Duration::from_millis(200)) {
            Next::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["e"] == "listenKeyExpired" {
                    expired = Some(v);
                }
            }
            Next::Nothing => {}
            Next::Closed => break,
        }
    }
    let ev = expired.expect("listenKeyExpired before the close");
    assert_eq!(ev["listenKey"], key.as_str());
    assert!(ev["E"].as_i64().unwrap() >= h.origin_ms() + 40_000);
    // The key is gone.
    let (s, _) = request_within(
        &h,
        "PUT",
        "/fapi/v1/listenKey",
        &format!("X-MBX-APIKEY: {KEY}\r\n"),
        "",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_ne!(s, 200);
    h.shutdown();
}

#[test]
fn ack_drop_places_the_order_without_answering() {
    let (h, _d) = start_full(
        "faults-ackdrop",
        10.0,
        "ack-drop@every=2",
        false,
        sim_exchange(),
    );
    let (_, snap) = request(&h, "GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=5", "");
    let bid: f64 = snap["bids"][0][0].as_str().unwrap().parse().unwrap();
    let price = format!("{:.1}", (bid * 0.99 * 10.0).floor() / 10.0);
    let place = |id: &str| {
        signed(
            &h,
            "POST",
            "/fapi/v1/order",
            &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.010&price={price}&newClientOrderId={id}"),
            Duration::from_secs(2),
        )
    };
    let first = place("faults-ack-1").expect("the first placement is answered");
    assert_eq!(first.0, 200, "{}", first.1);
    assert!(
        place("faults-ack-2").is_none(),
        "the second placement was answered"
    );
    let (s, open) = signed(
        &h,
        "GET",
        "/fapi/v1/openOrders",
        "symbol=BTCUSDT",
        Duration::from_secs(5),
    )
    .expect("openOrders answers");
    assert_eq!(s, 200, "{open}");
    let ids: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["clientOrderId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"faults-ack-1") && ids.contains(&"faults-ack-2"),
        "{ids:?}"
    );
    h.shutdown();
}

#[test]
fn the_control_endpoint_applies_a_fault_and_is_404_without_the_flag() {
    let (h, _d) = start("faults-nocontrol", 10.0, "");
    assert_eq!(request(&h, "GET", "/venue/faults", "").0, 404);
    assert_eq!(
        request(&h, "POST", "/venue/faults", "rest-5xx@every=1").0,
        404
    );
    assert_eq!(request(&h, "GET", "/fapi/v1/ping", "").0, 200);
    h.shutdown();

    let (h, _d) = start_full("faults-control", 10.0, "", true, Arc::new(NoExchange));
    assert_eq!(request(&h, "GET", "/fapi/v1/ping", "").0, 200);
    let (s, v) = request(&h, "POST", "/venue/faults", "bogus@at=1s");
    assert_eq!(s, 400, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("bogus"), "{v}");
    let (s, v) = request(&h, "POST", "/venue/faults", "rest-5xx@every=1");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, serde_json::json!({"applied": ["rest-5xx@every=1"]}));
    assert_eq!(request(&h, "GET", "/fapi/v1/ping", "").0, 503);
    let (s, v) = request(&h, "GET", "/venue/faults", "");
    assert_eq!(s, 200);
    assert_eq!(v["schedule"][0]["fault"], "rest-5xx@every=1");
    assert_eq!(v["fired"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["fired"][0]["fault"], "rest-5xx@every=1");
    h.shutdown();
}

#[test]
fn rest_timeout_every_2_holds_the_second_request_unanswered() {
    let (h, _d) = start("faults-rest-timeout", 10.0, "rest-timeout@every=2");
    let within = |t| request_within(&h, "GET", "/fapi/v1/time", "", "", t);
    let first = within(Duration::from_secs(5)).expect("the first request is answered");
    assert_eq!(first.0, 200, "{}", first.1);
    let t0 = Instant::now();
    assert!(
        within(Duration::from_secs(2)).is_none(),
        "the second request was answered"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "the held connection closed early ({:?})",
        t0.elapsed()
    );
    let third = within(Duration::from_secs(5)).expect("the third request is answered");
    assert_eq!(third.0, 200, "{}", third.1);
    h.shutdown();
}

/// A price well under the best bid, on the tick (0.1), for a GTX buy that rests.
fn resting_bid(h: &VenueHandle) -> String {
    let (_, snap) = request(h, "GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=5", "");
    let bid: f64 = snap["bids"][0][0].as_str().unwrap().parse().unwrap();
    format!("{:.1}", (bid * 0.99 * 10.0).floor() / 10.0)
}

/// The clientOrderIds of the test account's open BTCUSDT orders.
fn open_order_ids(h: &VenueHandle) -> Vec<String> {
    let (s, open) = signed(
        h,
        "GET",
        "/fapi/v1/openOrders",
        "symbol=BTCUSDT",
        Duration::from_secs(5),
    )
    .expect("openOrders answers");
    assert_eq!(s, 200, "{open}");
    open.as_array()
        .unwrap()
        .iter()
        .map(|o| o["clientOrderId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ack_delay_holds_a_rest_placement_response_for_its_ms() {
    let (h, _d) = start_full(
        "faults-ackdelay",
        10.0,
        "ack-delay@ms=800",
        false,
        sim_exchange(),
    );
    let price = resting_bid(&h);
    // A request that is not a placement is not delayed.
    let t0 = Instant::now();
    assert_eq!(request(&h, "GET", "/fapi/v1/time", "").0, 200);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "a non-placement was delayed ({:?})",
        t0.elapsed()
    );
    let t0 = Instant::now();
    let (s, v) = signed(
        &h,
        "POST",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.010&price={price}&newClientOrderId=faults-delay-1"),
        Duration::from_secs(5),
    )
    .expect("the placement is answered");
    let took = t0.elapsed();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["clientOrderId"], "faults-delay-1", "{v}");
    assert!(
        took >= Duration::from_millis(780),
        "answered after {took:?}, before the 800 ms delay"
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(open_order_ids(&h).contains(&"faults-delay-1".to_string()));
    h.shutdown();
}

#[test]
fn ack_drop_on_the_websocket_api_places_the_order_without_answering() {
    let (h, _d) = start_full(
        "faults-ackdrop-ws",
        10.0,
        "ack-drop@every=1",
        false,
        sim_exchange(),
    );
    let price = resting_bid(&h);
    let mut api = ws(&h, "/ws-fapi/v1");
    let mut params = serde_json::json!({
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX",
        "quantity": "0.010", "price": price, "newClientOrderId": "faults-wsdrop-1",
        "apiKey": KEY, "recvWindow": 60000, "timestamp": wall_ms(),
    });
    let p = params.as_object_mut().unwrap();
    let payload = venue::auth::ws_payload(p);
    p.insert(
        "signature".into(),
        hmac_hex(SECRET.as_bytes(), payload.as_bytes()).into(),
    );
    let req = serde_json::json!({"id": "place-1", "method": "order.place", "params": params});
    api.send(Message::Text(req.to_string())).unwrap();
    assert_eq!(
        next_json(&mut api, Duration::from_secs(2)),
        None,
        "the placement was answered"
    );
    assert!(
        open_order_ids(&h).contains(&"faults-wsdrop-1".to_string()),
        "the order was not placed"
    );
    // The connection stays up and answers what is not a placement.
    let ping = serde_json::json!({"id": "ping-1", "method": "ping"});
    api.send(Message::Text(ping.to_string())).unwrap();
    let v = next_json(&mut api, Duration::from_secs(2)).expect("ping answered");
    assert_eq!(v["id"], "ping-1", "{v}");
    h.shutdown();
}

/// Writes one keep-alive GET on `s` and reads its response; `Err` if the connection failed.
fn keep_alive_get(s: &mut Tls, path: &str) -> std::io::Result<(u16, String)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes())?;
    s.flush()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Ok((status, body));
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn drop_connections_cuts_a_keep_alive_rest_connection() {
    let (h, _d) = start("faults-drop-rest", 10.0, "drop-connections@at=20s");
    let at = h.origin_ms() + 20_000;
    let mut s = connect(&h);
    s.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // Keep-alive works before the fault: two requests on one connection.
    for _ in 0..2 {
        let (status, body) = keep_alive_get(&mut s, "/fapi/v1/time").expect("answered");
        assert_eq!(status, 200, "{body}");
    }
    assert!(h.now_ms() < at, "the fault's time passed during the setup");
    let deadline = Instant::now() + Duration::from_secs(8);
    while h.now_ms() < at + 2_000 {
        assert!(Instant::now() < deadline, "the venue clock stalled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = keep_alive_get(&mut s, "/fapi/v1/time");
    assert!(
        after.is_err(),
        "the keep-alive connection still answered: {after:?}"
    );
    // A new connection works.
    let mut s2 = connect(&h);
    let (status, body) = keep_alive_get(&mut s2, "/fapi/v1/time").expect("a new connection");
    assert_eq!(status, 200, "{body}");
    h.shutdown();
}

#[test]
fn gap_breaks_the_pu_chain_of_a_merged_depth_stream_at_its_time() {
    let (h, _d) = start("faults-gap-merged", 20.0, "gap@at=30s");
    let at = h.origin_ms() + 30_000;
    let mut ws = ws(&h, "/public/stream?streams=btcusdt@depth@100ms");
    let (mut prev, mut prev_e) = (None::<u64>, 0i64);
    let (mut gaps, mut before, mut after) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && after < 30 {
        let Some(v) = next_json(&mut ws, Duration::from_millis(200)) else {
            continue;
        };
        assert_eq!(v["stream"], "btcusdt@depth@100ms");
        let d = &v["data"];
        let (pu, u, e) = (
            d["pu"].as_u64().unwrap(),
            d["u"].as_u64().unwrap(),
            d["E"].as_i64().unwrap(),
        );
        if let Some(p) = prev {
            if pu != p {
                gaps += 1;
                assert!(
                    prev_e < at && at <= e,
                    "gap between E {prev_e} and {e}, fault at {at}"
                );
            } else if gaps == 0 {
                before += 1;
            } else {
                after += 1;
            }
        }
        prev = Some(u);
        prev_e = e;
    }
    assert!(before > 5, "chained diffs before the gap: {before}");
    assert_eq!(gaps, 1, "one gap");
    assert!(after >= 30, "the chain held after the gap ({after} diffs)");
    h.shutdown();
}

/// The firing times of a fault repeating every `period_ms` from `first_ms` (venue ms) that fall
/// in `(after, up_to]`.
fn firings(first_ms: i64, period_ms: i64, after: i64, up_to: i64) -> Vec<i64> {
    (0..)
        .map(|k| first_ms + k * period_ms)
        .skip_while(|t| *t <= after)
        .take_while(|t| *t <= up_to)
        .collect()
}

/// The one firing in `(a, b]`, or a panic naming what was there.
fn the_firing_between(fired: &[i64], a: i64, b: i64, what: &str) -> i64 {
    let hits: Vec<i64> = fired
        .iter()
        .copied()
        .filter(|t| a < *t && *t <= b)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{what} between E {a} and {b}: firings {hits:?}"
    );
    hits[0]
}

#[test]
fn gap_every_2s_breaks_the_pu_chain_once_per_period() {
    let (h, _d) = start("faults-gap-every", 2.0, "gap@every=2s");
    let o = h.origin_ms();
    let mut ws = ws(&h, "/public/stream?streams=btcusdt@depth@0ms");
    let (mut prev, mut first_e, mut last_e) = (None::<(u64, i64)>, None::<i64>, 0i64);
    let (mut breaks, mut chained) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    // 11 s of venue time: firings at +2, +4, +6, +8 and +10 s.
    while last_e < o + 11_000 {
        assert!(
            Instant::now() < deadline,
            "the stream stalled at E {last_e}"
        );
        let Some(v) = next_json(&mut ws, Duration::from_millis(200)) else {
            continue;
        };
        let d = &v["data"];
        let (pu, u, e) = (
            d["pu"].as_u64().unwrap(),
            d["u"].as_u64().unwrap(),
            d["E"].as_i64().unwrap(),
        );
        match prev {
            Some((p, prev_e)) if pu != p => breaks.push((prev_e, e)),
            Some(_) => chained += 1,
            None => first_e = Some(e),
        }
        prev = Some((u, e));
        last_e = e;
    }
    // Every firing after the first message broke the chain once, between the last message
    // before it and the first at or after it; nothing else broke it.
    let fired = firings(o, 2_000, first_e.unwrap(), last_e);
    assert!(fired.len() >= 4, "firings seen: {fired:?}");
    let at: Vec<i64> = breaks
        .iter()
        .map(|&(a, b)| the_firing_between(&fired, a, b, "a pu break"))
        .collect();
    assert_eq!(at, fired, "one pu break per 2 s of venue time");
    assert!(chained > 100, "chained diffs: {chained}");
    h.shutdown();
}

#[test]
fn freeze_every_2s_leaves_a_hole_at_each_repeat_and_nowhere_else() {
    let (h, _d) = start(
        "faults-freeze-every",
        2.0,
        "freeze@stream=btcusdt@depth@0ms,at=1s,for=500ms,every=2s",
    );
    let o = h.origin_ms();
    // Windows [o+1 s, o+1.5 s), [o+3 s, o+3.5 s), ...
    let window = |e: i64| (e - o - 1_000).rem_euclid(2_000) < 500;
    let mut ws = ws(
        &h,
        "/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker",
    );
    let (mut depth, mut tickers_inside) = (Vec::<i64>::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while depth.last().is_none_or(|e| *e < o + 10_000) {
        assert!(Instant::now() < deadline, "the stream stalled at {depth:?}");
        let Some(v) = next_json(&mut ws, Duration::from_millis(200)) else {
            continue;
        };
        let e = v["data"]["E"].as_i64().unwrap();
        match v["stream"].as_str().unwrap() {
            "btcusdt@depth@0ms" => depth.push(e),
            _ if window(e) => tickers_inside += 1,
            _ => {}
        }
    }
    let inside: Vec<i64> = depth.iter().copied().filter(|e| window(*e)).collect();
    assert!(inside.is_empty(), "depth diffs inside a freeze: {inside:?}");
    // Each window after the first diff is a hole of ≥ 500 ms; every hole of 500 ms holds one.
    let starts = firings(o + 1_000, 2_000, depth[0], depth[depth.len() - 1] - 500);
    assert!(starts.len() >= 4, "windows seen: {starts:?}");
    let holes: Vec<(i64, i64)> = depth
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(a, b)| b - a >= 500)
        .collect();
    let held: Vec<i64> = holes
        .iter()
        .map(|&(a, b)| the_firing_between(&starts, a, b - 500, "a hole of ≥ 500 ms"))
        .collect();
    assert_eq!(held, starts, "one hole per 2 s of venue time");
    assert!(tickers_inside > 10, "bookTickers ran on: {tickers_inside}");
    h.shutdown();
}

#[test]
fn malformed_every_2s_sends_one_invalid_message_per_repeat() {
    let (h, _d) = start(
        "faults-malformed-every",
        2.0,
        "malformed@stream=btcusdt@bookTicker,every=2s",
    );
    let o = h.origin_ms();
    let mut ws = ws(&h, "/public/ws/btcusdt@bookTicker");
    // Good messages' E, and for each bad one how many good ones came before it.
    let (mut good, mut bad_at) = (Vec::<i64>::new(), Vec::<usize>::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while good.last().is_none_or(|e| *e < o + 11_000) {
        assert!(Instant::now() < deadline, "the stream stalled");
        let t = match next_text(&mut ws, Duration::from_millis(200)) {
            Next::Text(t) => t,
            Next::Nothing => continue,
            Next::Closed => panic!("the stream closed"),
        };
        match serde_json::from_str::<Value>(&t) {
            Ok(v) => good.push(v["E"].as_i64().unwrap()),
            Err(_) => {
                assert!(t.starts_with("{\"e\":\"bookTicker\""), "{t}");
                assert!(!good.is_empty(), "the first message was the bad one");
                bad_at.push(good.len());
            }
        }
    }
    let fired = firings(o, 2_000, good[0], good[good.len() - 1]);
    assert!(fired.len() >= 4, "firings seen: {fired:?}");
    // Each bad message is the first at or after its firing: between the good ones around it
    // (the loop ends on a good one).
    let at: Vec<i64> = bad_at
        .iter()
        .map(|&i| the_firing_between(&fired, good[i - 1], good[i], "an invalid message"))
        .collect();
    assert_eq!(at, fired, "one invalid message per 2 s of venue time");
    h.shutdown();
}
