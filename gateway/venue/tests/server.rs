//! The venue over real TLS on 127.0.0.1: REST, the market streams, the book-sync procedure,
//! live subscriptions, routing, and hostile input.

mod common;

use common::{connect, next_json, sim_exchange as sim_exchange_for, ws, Tls, KEY, SECRET};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::TempDir;
use tungstenite::Message;
use venue::api::Exchange;
use venue::auth::hmac_hex;
use venue::server::{Limits, VenueHandle};
use venue::NoExchange;

fn start_on(
    name: &str,
    speed: f64,
    limits: Limits,
    exchange: Arc<dyn Exchange>,
) -> (VenueHandle, TempDir) {
    common::start_venue(
        name,
        |cfg| {
            cfg.speed = speed;
            cfg.limits = limits;
        },
        exchange,
    )
}

fn start_with(name: &str, speed: f64, limits: Limits) -> (VenueHandle, TempDir) {
    start_on(name, speed, limits, Arc::new(NoExchange))
}

/// The exchange core with the example accounts (signed requests on the wall clock accepted).
fn sim_exchange() -> Arc<dyn Exchange> {
    sim_exchange_for(test_support::default_config())
}

fn start(name: &str, speed: f64) -> (VenueHandle, TempDir) {
    start_with(name, speed, Limits::default())
}

/// Sends raw bytes as a request and reads the response (the server closes after it).
fn raw_request(h: &VenueHandle, bytes: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let mut s = connect(h);
    s.write_all(bytes).unwrap();
    s.flush().unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn get(h: &VenueHandle, path: &str) -> (u16, Vec<(String, String)>, Value) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let (s, hd, b) = raw_request(h, req.as_bytes());
    (s, hd, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

#[test]
fn public_rest_endpoints_answer_in_binance_shapes() {
    let (h, _d) = start("venue-rest", 1.0);
    let (s, hd, v) = get(&h, "/fapi/v1/ping");
    assert_eq!((s, v.clone()), (200, serde_json::json!({})));
    assert!(hd
        .iter()
        .any(|(k, v)| k == "x-mbx-used-weight-1m" && v.parse::<u32>().unwrap() >= 1));

    let (s, _, v) = get(&h, "/fapi/v1/time");
    assert_eq!(s, 200);
    let t = v["serverTime"].as_i64().unwrap();
    // The venue clock is the recording's time (8 August 2024), not the wall clock.
    assert!((1_723_161_250_000..1_723_161_700_000).contains(&t), "{t}");

    let (s, _, v) = get(&h, "/fapi/v1/exchangeInfo");
    assert_eq!(s, 200);
    assert_eq!(v["timezone"], "UTC");
    let limits = v["rateLimits"].as_array().unwrap();
    assert_eq!(limits.len(), 3);
    assert_eq!(limits[0]["limit"], 2400);
    let sym = &v["symbols"][0];
    assert_eq!(sym["symbol"], "BTCUSDT");
    let filter = |t: &str| {
        sym["filters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filterType"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(filter("PRICE_FILTER")["tickSize"], "0.10");
    assert_eq!(filter("LOT_SIZE")["stepSize"], "0.001");
    assert_eq!(filter("LOT_SIZE")["minQty"], "0.001");
    assert!(filter("MIN_NOTIONAL")["notional"]
        .as_str()
        .unwrap()
        .starts_with("100"));
    for f in ["MARKET_LOT_SIZE", "PERCENT_PRICE"] {
        filter(f);
    }

    let (s, hd, v) = get(&h, "/fapi/v1/depth?symbol=BTCUSDT&limit=5");
    assert_eq!(s, 200);
    assert_eq!(v["bids"].as_array().unwrap().len(), 5);
    assert_eq!(v["asks"].as_array().unwrap().len(), 5);
    assert!(v["lastUpdateId"].as_u64().unwrap() > 0);
    let bid: f64 = v["bids"][0][0].as_str().unwrap().parse().unwrap();
    let ask: f64 = v["asks"][0][0].as_str().unwrap().parse().unwrap();
    assert!(bid < ask && bid > 50_000.0);
    let w0: u32 = hd
        .iter()
        .find(|(k, _)| k == "x-mbx-used-weight-1m")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let (_, hd, _) = get(&h, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000");
    let w1: u32 = hd
        .iter()
        .find(|(k, _)| k == "x-mbx-used-weight-1m")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_eq!(w1 - w0, 20, "depth limit 1000 weighs 20");

    let (s, _, v) = get(&h, "/fapi/v1/depth?symbol=ETHUSDT");
    assert_eq!((s, v["code"].as_i64()), (400, Some(-1121)));
    let (s, _, _) = get(&h, "/fapi/v1/depth?symbol=BTCUSDT&limit=7");
    assert_eq!(s, 400);

    let (s, _, v) = get(&h, "/fapi/v1/premiumIndex?symbol=BTCUSDT");
    assert_eq!(s, 200);
    assert_eq!(v["lastFundingRate"], "0.00010000");
    let mark: f64 = v["markPrice"].as_str().unwrap().parse().unwrap();
    assert!(mark > 50_000.0);
    assert_eq!(v["nextFundingTime"].as_i64().unwrap() % (8 * 3_600_000), 0);

    let (s, _, v) = get(&h, "/fapi/v1/nothing");
    assert_eq!((s, v["code"].as_i64()), (404, Some(-5000)));
    h.shutdown();
}

#[test]
fn hostile_input_gets_an_error_and_the_server_keeps_serving() {
    let (h, _d) = start("venue-hostile", 1.0);
    // Not HTTP.
    let (s, _, _) = raw_request(&h, b"\x00\x01\x02 hello\r\n\r\n");
    assert_eq!(s, 400);
    // A body over 64 KiB.
    let (s, _, _) = raw_request(
        &h,
        b"POST /fapi/v1/order HTTP/1.1\r\nContent-Length: 999999\r\n\r\n",
    );
    assert_eq!(s, 413);
    // A head over 16 KiB.
    let mut big = b"GET /fapi/v1/ping HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    big.extend_from_slice(b"\r\n\r\n");
    let (s, _, _) = raw_request(&h, &big);
    assert_eq!(s, 400);
    // Garbage instead of a TLS handshake, and a client that connects and leaves.
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(h.addr()).unwrap();
        let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]);
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\n\r\n");
        drop(tcp);
        drop(TcpStream::connect(h.addr()).unwrap());
    }
    // Keep-alive: two requests on one connection.
    let mut s = connect(&h);
    s.write_all(b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\nGET /fapi/v1/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("serverTime"));
    // Still serving.
    let (s, _, v) = get(&h, "/fapi/v1/ping");
    assert_eq!((s, v), (200, serde_json::json!({})));
    h.shutdown();
}

/// Best bid and ask of a local book.
fn top(bids: &BTreeMap<i64, f64>, asks: &BTreeMap<i64, f64>) -> (Option<i64>, Option<i64>) {
    (
        bids.keys().next_back().copied(),
        asks.keys().next().copied(),
    )
}

fn ticks(p: &Value) -> i64 {
    (p.as_str().unwrap().parse::<f64>().unwrap() * 10.0).round() as i64
}

fn apply(side: &mut BTreeMap<i64, f64>, levels: &Value) {
    for l in levels.as_array().unwrap() {
        let q: f64 = l[1].as_str().unwrap().parse().unwrap();
        if q == 0.0 {
            side.remove(&ticks(&l[0]));
        } else {
            side.insert(ticks(&l[0]), q);
        }
    }
}

#[test]
fn a_client_following_binances_sync_procedure_keeps_the_book_of_the_book_ticker() {
    let (h, _d) = start("venue-sync", 25.0);
    let mut ws = ws(
        &h,
        "/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker",
    );
    // 1. Buffer the stream.
    let mut buffered = Vec::new();
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if let Some(v) = next_json(&mut ws, Duration::from_millis(100)) {
            buffered.push(v);
        }
    }
    // 2. Snapshot.
    let (s, _, snap) = get(&h, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000");
    assert_eq!(s, 200);
    let last_id = snap["lastUpdateId"].as_u64().unwrap();
    let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
    apply(&mut bids, &snap["bids"]);
    apply(&mut asks, &snap["asks"]);
    let mut prev_u: Option<u64> = None;
    let mut depth_tops: HashMap<u64, (Option<i64>, Option<i64>)> = HashMap::new();
    let mut ticker_tops: HashMap<u64, (Option<i64>, Option<i64>)> = HashMap::new();
    let (mut diffs, mut envelopes) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut pending = buffered.into_iter();
    while Instant::now() < deadline {
        let v = match pending.next() {
            Some(v) => v,
            None => match next_json(&mut ws, Duration::from_millis(200)) {
                Some(v) => v,
                None => continue,
            },
        };
        envelopes += 1;
        let stream = v["stream"].as_str().expect("combined envelope").to_string();
        let d = &v["data"];
        match stream.as_str() {
            "btcusdt@depth@0ms" => {
                assert_eq!(d["e"], "depthUpdate");
                let (first, u, pu) = (
                    d["U"].as_u64().unwrap(),
                    d["u"].as_u64().unwrap(),
                    d["pu"].as_u64().unwrap(),
                );
                // 3. Drop what the snapshot already holds.
                if u < last_id {
                    continue;
                }
                match prev_u {
                    // 4. The first event bridges the snapshot.
                    None => assert!(
                        first <= last_id && last_id <= u,
                        "U {first} ≤ {last_id} ≤ u {u}"
                    ),
                    // 5. Then the pu chain.
                    Some(p) => assert_eq!(pu, p, "pu chain broken"),
                }
                prev_u = Some(u);
                apply(&mut bids, &d["b"]);
                apply(&mut asks, &d["a"]);
                diffs += 1;
                depth_tops.insert(u, top(&bids, &asks));
            }
            "btcusdt@bookTicker" => {
                assert_eq!(d["e"], "bookTicker");
                ticker_tops.insert(
                    d["u"].as_u64().unwrap(),
                    (Some(ticks(&d["b"])), Some(ticks(&d["a"]))),
                );
            }
            other => panic!("unexpected stream {other}"),
        }
    }
    assert!(diffs > 50, "only {diffs} diffs applied");
    assert!(envelopes > 500, "only {envelopes} messages");
    let matched: Vec<_> = ticker_tops
        .iter()
        .filter_map(|(u, t)| depth_tops.get(u).map(|d| (u, t, d)))
        .collect();
    assert!(
        matched.len() >= 3,
        "only {} bookTickers at a depth update id",
        matched.len()
    );
    for (u, t, d) in matched {
        assert_eq!(t, d, "top of book at update id {u}");
    }
    h.shutdown();
}

#[test]
fn live_subscriptions_and_routing_by_path() {
    let (h, _d) = start("venue-subscribe", 25.0);
    let mut public = ws(&h, "/public/ws");
    public
        .send(Message::Text(
            r#"{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}"#.into(),
        ))
        .unwrap();
    let mut got_reply = false;
    let mut got_ticker = false;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !(got_reply && got_ticker) {
        match next_json(&mut public, Duration::from_millis(200)) {
            Some(v) if v.get("id").is_some() => {
                assert_eq!(v, serde_json::json!({"result": null, "id": 1}));
                got_reply = true;
            }
            Some(v) => {
                assert_eq!(v["e"], "bookTicker", "a raw payload, no envelope");
                got_ticker = true;
            }
            None => {}
        }
    }
    assert!(got_reply && got_ticker);
    public
        .send(Message::Text(
            r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#.into(),
        ))
        .unwrap();
    public
        .send(Message::Text(r#"{"method":"NOPE","id":4}"#.into()))
        .unwrap();
    public
        .send(Message::Text(
            r#"{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":5}"#.into(),
        ))
        .unwrap();
    let mut replies = HashMap::new();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && replies.len() < 3 {
        if let Some(v) = next_json(&mut public, Duration::from_millis(200)) {
            if let Some(id) = v.get("id").and_then(Value::as_i64) {
                replies.insert(id, v);
            }
        }
    }
    assert_eq!(
        replies[&3],
        serde_json::json!({"result": ["btcusdt@bookTicker"], "id": 3})
    );
    for id in [4, 5] {
        assert_eq!(
            replies[&id],
            serde_json::json!({"error": {"code": 2, "msg": "Invalid request"}, "id": id})
        );
    }

    // Trades live on /market: an un-routed connection subscribed to them gets nothing.
    let mut unrouted = ws(&h, "/ws/btcusdt@trade");
    let mut market = ws(
        &h,
        "/market/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@markPrice@1s",
    );
    let mut seen = HashMap::new();
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until && seen.len() < 3 {
        if let Some(v) = next_json(&mut market, Duration::from_millis(200)) {
            let stream = v["stream"].as_str().unwrap().to_string();
            let e = v["data"]["e"].as_str().unwrap().to_string();
            seen.insert(stream, e);
        }
    }
    assert_eq!(seen.get("btcusdt@trade").map(String::as_str), Some("trade"));
    assert_eq!(
        seen.get("btcusdt@aggTrade").map(String::as_str),
        Some("aggTrade")
    );
    assert_eq!(
        seen.get("btcusdt@markPrice@1s").map(String::as_str),
        Some("markPriceUpdate")
    );
    assert_eq!(next_json(&mut unrouted, Duration::from_millis(500)), None);
    h.shutdown();
}

#[test]
fn the_server_pings_and_closes_a_client_that_floods_it() {
    let limits = Limits {
        ping_interval: Duration::from_millis(200),
        ..Limits::default()
    };
    let (h, _d) = start_with("venue-ping", 1.0, limits);
    let mut c = ws(&h, "/public/ws");
    c.get_ref()
        .sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut pinged = false;
    while !pinged {
        match c.read().expect("a ping before the timeout") {
            Message::Ping(_) => pinged = true,
            _ => continue,
        }
    }
    // More than 10 messages in a second: closed.
    for i in 0..15 {
        let _ = c.send(Message::Text(format!(
            r#"{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}"#
        )));
    }
    let until = Instant::now() + Duration::from_secs(5);
    let mut closed = false;
    while Instant::now() < until {
        match c.read() {
            Ok(Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "a flooding client is disconnected");
    h.shutdown();
}

/// One request on a keep-alive connection: status, headers (names lower-cased), body as JSON.
fn keep_alive(
    s: &mut Tls,
    method: &str,
    path: &str,
    headers: &str,
) -> (u16, Vec<(String, String)>, Value) {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.lines();
            let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let len: usize = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
            if buf.len() >= end + 4 + len {
                let body = &buf[end + 4..end + 4 + len];
                let body = serde_json::from_slice(body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()));
                return (status.unwrap(), headers, body);
            }
        }
        let n = s.read(&mut chunk).expect("a response");
        assert!(n > 0, "the connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `X-MBX-USED-WEIGHT-1M`.
fn used(headers: &[(String, String)]) -> u32 {
    header(headers, "x-mbx-used-weight-1m")
        .expect("X-MBX-USED-WEIGHT-1M")
        .parse()
        .unwrap()
}

/// `Retry-After`, seconds.
fn retry_after(headers: &[(String, String)]) -> i64 {
    header(headers, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap()
}

/// Seconds from `now_ms` to the end of its venue minute, rounded up (Binance's `Retry-After`).
fn to_minute_end_s(now_ms: i64) -> i64 {
    (60_000 - now_ms.rem_euclid(60_000) + 999) / 1000
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A signed GET path of the HMAC account (query string signed, wall-clock timestamp).
fn signed_path(path: &str, params: &str) -> String {
    let ts = wall_ms();
    let q = if params.is_empty() {
        format!("recvWindow=60000&timestamp={ts}")
    } else {
        format!("{params}&recvWindow=60000&timestamp={ts}")
    };
    let sig = hmac_hex(SECRET.as_bytes(), q.as_bytes());
    format!("{path}?{q}&signature={sig}")
}

/// Waits until at least `room_ms` of the venue minute is left, so that a burst of requests
/// stays in one minute's weight window; that minute (venue ms / 60,000).
fn minute_with_room(h: &VenueHandle, room_ms: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = h.now_ms();
        if 60_000 - now.rem_euclid(60_000) >= room_ms {
            return now.div_euclid(60_000);
        }
        assert!(Instant::now() < deadline, "the venue clock stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const DEPTH_1000: &str = "/fapi/v1/depth?symbol=BTCUSDT&limit=1000";

#[test]
fn public_and_signed_requests_of_an_ip_share_one_weight_budget_on_the_venue_clock() {
    let (h, _d) = start_on(
        "venue-weight-shared",
        1.0,
        Limits::default(),
        sim_exchange(),
    );
    let mut s = connect(&h);
    let key = format!("X-MBX-APIKEY: {KEY}\r\n");
    let minute = minute_with_room(&h, 10_000);
    // Every request of the burst in the same venue minute (the weight window).
    let mut req = |path: &str, headers: &str| {
        let before = h.now_ms();
        let r = keep_alive(&mut s, "GET", path, headers);
        let after = h.now_ms();
        assert_eq!(
            after.div_euclid(60_000),
            minute,
            "the burst ran past its venue minute"
        );
        (r, before, after)
    };
    let open_orders = || signed_path("/fapi/v1/openOrders", ""); // 40 without a symbol
                                                                 // One public (20), one signed (40), one public (1): the header reports the sum.
    let ((st, hd, v), _, _) = req(DEPTH_1000, "");
    assert_eq!((st, used(&hd)), (200, 20), "{v}");
    let ((st, hd, v), _, _) = req(&open_orders(), &key);
    assert_eq!((st, used(&hd)), (200, 60), "{v}");
    let ((st, hd, v), _, _) = req("/fapi/v1/ping", "");
    assert_eq!((st, used(&hd)), (200, 61), "{v}");
    // The WebSocket API's requests (account.balance: 5) charge the same budget.
    let mut api = ws(&h, "/ws-fapi/v1");
    let mut params =
        serde_json::json!({"apiKey": KEY, "recvWindow": 60000, "timestamp": wall_ms()});
    let p = params.as_object_mut().unwrap();
    let payload = venue::auth::ws_payload(p);
    p.insert(
        "signature".into(),
        hmac_hex(SECRET.as_bytes(), payload.as_bytes()).into(),
    );
    let call = serde_json::json!({"id": 1, "method": "account.balance", "params": params});
    api.send(Message::Text(call.to_string())).unwrap();
    let v = next_json(&mut api, Duration::from_secs(5)).expect("account.balance answered");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT", "{v}");
    assert_eq!(v["rateLimits"][0]["count"], 66, "{v}");
    let ((st, hd, v), _, _) = req("/fapi/v1/ping", "");
    assert_eq!((st, used(&hd)), (200, 67), "{v}");
    let mut total = 67;
    // Half the budget on signed requests...
    for _ in 0..29 {
        let ((st, hd, v), _, _) = req(&open_orders(), &key);
        total += 40;
        assert_eq!((st, used(&hd)), (200, total), "{v}");
    }
    // ...the rest on public ones, until the public endpoint answers 429.
    let mut limited = None;
    for _ in 0..100 {
        let ((st, hd, v), before, after) = req(DEPTH_1000, "");
        if st == 200 {
            total += 20;
            assert_eq!(used(&hd), total);
            continue;
        }
        limited = Some((st, hd, v, before, after));
        break;
    }
    let (st, hd, v, before, after) = limited.expect("a 429 within the budget");
    assert_eq!(total, 2387, "the public requests were refused at {total}");
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["code"], -1003, "{v}");
    assert_eq!(used(&hd), 2387, "a refused request weighs nothing");
    let retry = retry_after(&hd);
    assert!(
        (to_minute_end_s(after)..=to_minute_end_s(before)).contains(&retry),
        "Retry-After {retry} is not the venue minute's end (venue time {before}..{after})"
    );
    // A signed request is refused too: the public requests used its budget.
    let ((st, hd, v), _, _) = req(&open_orders(), &key);
    assert_eq!((st, used(&hd)), (429, 2387), "{v}");
    assert!(retry_after(&hd) >= 1);
    // Eight more refusals make ten, the eleventh is a 418 ban, public or signed.
    for i in 0..8 {
        let ((st, _, v), _, _) = req(DEPTH_1000, "");
        assert_eq!(st, 429, "refusal {}: {v}", i + 3);
    }
    let ((st, hd, v), _, _) = req(DEPTH_1000, "");
    assert_eq!((st, retry_after(&hd)), (418, 120), "{v}");
    assert_eq!(v["code"], -1003, "{v}");
    let ((st, hd, v), _, _) = req("/fapi/v1/ping", "");
    assert_eq!(st, 418, "{v}");
    assert!((119..=120).contains(&retry_after(&hd)), "{hd:?}");
    let ((st, _, v), _, _) = req(&signed_path("/fapi/v2/balance", ""), &key);
    assert_eq!(st, 418, "{v}");
    h.shutdown();
}

#[test]
fn public_weight_without_an_exchange_is_limited_per_venue_minute() {
    // Speed 10: a venue minute is 6 s of wall time.
    let (h, _d) = start("venue-weight-public", 10.0);
    let mut s = connect(&h);
    let minute = minute_with_room(&h, 30_000);
    let mut limited = None;
    for i in 1..=130u32 {
        let before = h.now_ms();
        let (st, hd, v) = keep_alive(&mut s, "GET", DEPTH_1000, "");
        let after = h.now_ms();
        assert_eq!(
            after.div_euclid(60_000),
            minute,
            "the burst ran past its venue minute"
        );
        if st == 200 {
            assert_eq!(used(&hd), 20 * i);
            continue;
        }
        limited = Some((i, st, hd, v, before, after));
        break;
    }
    let (i, st, hd, v, before, after) = limited.expect("a 429 within 130 requests");
    assert_eq!((i, st), (121, 429), "{v}");
    assert_eq!(v["code"], -1003, "{v}");
    assert_eq!(used(&hd), 2400, "a refused request weighs nothing");
    let retry = retry_after(&hd);
    assert!(
        (to_minute_end_s(after)..=to_minute_end_s(before)).contains(&retry),
        "Retry-After {retry} is not the venue minute's end (venue time {before}..{after})"
    );
    // The next venue minute (seconds of wall time later) has a fresh budget.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.now_ms().div_euclid(60_000) == minute {
        assert!(Instant::now() < deadline, "the venue clock stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (st, hd, v) = keep_alive(&mut s, "GET", "/fapi/v1/ping", "");
    assert_eq!((st, used(&hd)), (200, 1), "{v}");
    h.shutdown();
}
