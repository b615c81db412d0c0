//! The exchange core driven directly (no server): the shipped USD-M recording through
//! `on_market`, signed REST and WebSocket API requests, user data, limits; every response's and
//! event's field set checked against Binance's documented examples.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::Signer;
use engine::{Config, EventKind};
use feeds::{recorded_events, SyncRule};
use serde_json::{json, Value};
use venue::api::{Exchange, Request, Response, UserStream};
use venue::auth::{hmac_hex, Accounts};
use venue::exchange::SimExchange;

const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
const ED_KEY: &str = "ed25519-test-key-python-binance";
const PEER: &str = "127.0.0.1:5000";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> Value {
    let p = root().join("tests/data/binance-fixtures/futures").join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// `got` has exactly the fixture's fields (less `skip`, which Binance sends only for other
/// order types).
fn same_fields(got: &Value, want: &Value, skip: &[&str], extra: &[&str]) {
    let mut w = keys(want);
    for s in skip {
        w.remove(*s);
    }
    for e in extra {
        w.insert(e.to_string());
    }
    assert_eq!(keys(got), w, "field set of {got}");
}

struct Venue {
    ex: SimExchange,
    now: i64,
}

impl Venue {
    fn rest(&self, method: &str, path: &str, params: &str, key: &str) -> (Response, Value) {
        self.rest_at(method, path, params, key, self.now, SECRET)
    }

    fn rest_at(
        &self,
        method: &str,
        path: &str,
        params: &str,
        key: &str,
        ts: i64,
        secret: &str,
    ) -> (Response, Value) {
        let q = if params.is_empty() {
            format!("timestamp={ts}")
        } else {
            format!("{params}&timestamp={ts}")
        };
        let sig = hmac_hex(secret.as_bytes(), q.as_bytes());
        let signed = format!("{q}&signature={sig}");
        // Signed POST/PUT bodies as form data, others in the query.
        let (query, body) = if method == "POST" || method == "PUT" {
            (String::new(), signed)
        } else {
            (signed, String::new())
        };
        let req = Request {
            method: method.into(),
            path: path.into(),
            query,
            body,
            headers: vec![("x-mbx-apikey".into(), key.into())],
            peer: PEER.into(),
        };
        let r = self.ex.rest(&req, self.now).expect("an endpoint");
        let v = serde_json::from_str(&r.body).unwrap();
        (r, v)
    }

    fn ws(&self, method: &str, mut params: Value) -> Value {
        let p = params.as_object_mut().unwrap();
        p.insert("apiKey".into(), KEY.into());
        p.insert("timestamp".into(), self.now.into());
        let payload = venue::auth::ws_payload(p);
        p.insert(
            "signature".into(),
            hmac_hex(SECRET.as_bytes(), payload.as_bytes()).into(),
        );
        let req = json!({"id": "req-1", "method": method, "params": params});
        serde_json::from_str(&self.ex.ws_api(7, PEER, &req.to_string(), self.now)).unwrap()
    }

    fn ws_ed(&self, signing: &ed25519_dalek::SigningKey, method: &str, mut params: Value) -> Value {
        let p = params.as_object_mut().unwrap();
        p.insert("apiKey".into(), ED_KEY.into());
        p.insert("timestamp".into(), self.now.into());
        let payload = venue::auth::ws_payload(p);
        let sig = base64::engine::general_purpose::STANDARD
            .encode(signing.sign(payload.as_bytes()).to_bytes());
        p.insert("signature".into(), sig.into());
        let req = json!({"id": 9, "method": method, "params": params});
        serde_json::from_str(&self.ex.ws_api(8, "127.0.0.2:1", &req.to_string(), self.now)).unwrap()
    }
}

fn drain(s: &UserStream) -> Vec<Value> {
    s.try_iter()
        .map(|t| serde_json::from_str(&t).unwrap())
        .collect()
}

/// The default config's exchange fed from the shipped USD-M recording, batch by batch, with the
/// newest best bid and offer.
struct Replayed {
    v: Venue,
    rec: feeds::RecordedEvents,
    inst: engine::Instrument,
    /// Batches fed so far.
    fed: usize,
    bid: i64,
    ask: i64,
}

impl Replayed {
    fn new() -> Replayed {
        let cfg = Config::from_toml(
            &std::fs::read_to_string(root().join("configs/default.toml")).unwrap(),
        )
        .unwrap();
        let insts: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
        let rec = recorded_events(&[test_support::usdm()], &insts, SyncRule::Futures).unwrap();
        let ex = SimExchange::new(
            cfg,
            Accounts::load(&root().join("configs/venue-accounts.toml")).unwrap(),
        );
        Replayed {
            v: Venue { ex, now: 0 },
            rec,
            inst: insts[0],
            fed: 0,
            bid: 0,
            ask: 0,
        }
    }

    /// Feeds the next `n` batches, at their receive times.
    fn feed(&mut self, n: usize) {
        let ends = &self.rec.batch_ends;
        let until = (self.fed + n).min(ends.len());
        for k in self.fed..until {
            let start = if k == 0 { 0 } else { ends[k - 1] };
            let batch = &self.rec.events[start..ends[k]];
            self.v.now = batch[0].local_time_ns / 1_000_000;
            self.v.ex.on_market(batch, self.v.now);
            for e in batch {
                if let Some(b) = e.as_bbo() {
                    (self.bid, self.ask) = (b.bid_price, b.ask_price);
                }
            }
        }
        self.fed = until;
    }

    /// `ticks` as a price.
    fn px(&self, ticks: i64) -> String {
        self.inst.tick.format(ticks)
    }
}

#[test]
fn exchange_over_the_recording() {
    let cfg =
        Config::from_toml(&std::fs::read_to_string(root().join("configs/default.toml")).unwrap())
            .unwrap();
    let insts: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
    let rec = recorded_events(&[test_support::usdm()], &insts, SyncRule::Futures).unwrap();
    let accounts = Accounts::load(&root().join("configs/venue-accounts.toml")).unwrap();
    let ins = insts[0];
    let mut v = Venue {
        ex: SimExchange::new(cfg.clone(), accounts),
        now: 0,
    };

    // Feed until the book is valid and some depth has arrived.
    let mut start = 0;
    let mut valid_at = None;
    let mut bbo = (0i64, 0i64);
    let feed_until =
        |v: &mut Venue, start: &mut usize, stop: &mut dyn FnMut(&engine::Event) -> bool| {
            let mut prev = *start;
            for &end in rec.batch_ends.iter().filter(|&&e| e > *start) {
                let batch = &rec.events[prev..end];
                v.now = batch[0].local_time_ns / 1_000_000;
                v.ex.on_market(batch, v.now);
                prev = end;
                if batch.iter().any(&mut *stop) {
                    break;
                }
            }
            *start = prev;
        };
    let mut seen = 0;
    feed_until(&mut v, &mut start, &mut |e| {
        if e.kind() == EventKind::BookValid {
            valid_at = Some(e.local_time_ns);
        }
        if let Some(b) = e.as_bbo() {
            bbo = (b.bid_price, b.ask_price);
            if valid_at.is_some() {
                seen += 1;
            }
        }
        seen > 50
    });
    assert!(valid_at.is_some());
    let (bid, ask) = bbo;
    let px = |t: i64| ins.tick.format(t);

    // Listen key and user stream.
    let (r, lk) = v.rest("POST", "/fapi/v1/listenKey", "", KEY);
    assert_eq!(r.status, 200, "{lk}");
    let key = lk["listenKey"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    let (_, lk2) = v.rest("POST", "/fapi/v1/listenKey", "", KEY);
    assert_eq!(
        lk2["listenKey"],
        key.as_str(),
        "a POST while active returns the same key"
    );
    let stream =
        v.ex.user_stream(&key, Some("ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"), v.now)
            .unwrap();
    assert!(v.ex.user_stream("nope", None, v.now).is_none());

    // Post-only bid at the touch: NEW, user data NEW.
    let (r, o) = v.rest(
        "POST",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}&newClientOrderId=bid1", px(bid)),
        KEY,
    );
    assert_eq!(r.status, 200, "{o}");
    assert_eq!(o["status"], "NEW");
    assert_eq!(o["clientOrderId"], "bid1");
    assert_eq!(o["timeInForce"], "GTX");
    same_fields(&o, &fixture("http_json/order_response.json"), &[], &[]);
    let hdr = |r: &Response, h: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == h)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(hdr(&r, "X-MBX-ORDER-COUNT-10S").as_deref(), Some("1"));
    assert!(hdr(&r, "X-MBX-USED-WEIGHT-1M").is_some());
    let bid_id = o["orderId"].as_u64().unwrap();
    let evs = drain(&stream);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["e"], "ORDER_TRADE_UPDATE");
    assert_eq!(evs[0]["o"]["x"], "NEW");
    assert_eq!(evs[0]["o"]["X"], "NEW");
    assert_eq!(evs[0]["o"]["i"], bid_id);
    let otu = fixture("user_data_json/order_update_new.json");
    same_fields(&evs[0], &otu, &[], &[]);
    same_fields(&evs[0]["o"], &otu["o"], &["AP", "cr"], &["pm", "gtd"]);

    // Duplicate client id among open orders.
    let (r, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}&newClientOrderId=bid1", px(bid - 10)),
        KEY,
    );
    assert_eq!((r.status, e["code"].as_i64()), (400, Some(-4116)));

    // A crossing post-only: -5022, nothing on the stream.
    let (r, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        &format!(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}",
            px(ask)
        ),
        KEY,
    );
    assert_eq!((r.status, e["code"].as_i64()), (400, Some(-5022)), "{e}");
    assert!(drain(&stream).is_empty());
    // Off-grid price, min notional.
    let (_, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price=100.05",
        KEY,
    );
    assert_eq!(e["code"], -4014);
    let (_, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        &format!(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.001&price={}",
            px(bid - 100)
        ),
        KEY,
    );
    assert_eq!(e["code"], -4164);

    // Wait for a fill: ORDER_TRADE_UPDATE TRADE then ACCOUNT_UPDATE.
    let mut fills = Vec::new();
    feed_until(&mut v, &mut start, &mut |_| {
        fills.extend(drain(&stream));
        fills.iter().any(|e| e["o"]["X"] == "FILLED")
    });
    fills.extend(drain(&stream));
    let trade = fills
        .iter()
        .find(|e| e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["x"] == "TRADE")
        .expect("a fill");
    assert!(matches!(
        trade["o"]["X"].as_str(),
        Some("FILLED" | "PARTIALLY_FILLED")
    ));
    assert_eq!(trade["o"]["m"], true);
    assert_eq!(trade["o"]["L"], px(bid).as_str());
    same_fields(
        &trade["o"],
        &fixture("user_data_json/order_update_trade.json")["o"],
        &["AP", "cr"],
        &["pm", "gtd"],
    );
    let acct = fills
        .iter()
        .find(|e| e["e"] == "ACCOUNT_UPDATE")
        .expect("account update");
    let au = fixture("user_data_json/account_update.json");
    same_fields(acct, &au, &[], &[]);
    same_fields(&acct["a"], &au["a"], &[], &[]);
    same_fields(&acct["a"]["B"][0], &au["a"]["B"][0], &[], &[]);
    same_fields(&acct["a"]["P"][0], &au["a"]["P"][0], &[], &[]);
    assert_eq!(acct["a"]["P"][0]["pa"], "0.002");

    // Order status over REST.
    let (_, st) = v.rest(
        "GET",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={bid_id}"),
        KEY,
    );
    assert_eq!(st["status"], "FILLED");
    assert_eq!(st["executedQty"], "0.002");

    // Position.
    let (_, pr) = v.rest("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", KEY);
    assert_eq!(pr[0]["positionAmt"], "0.002");
    same_fields(
        &pr[0],
        &fixture("http_json/position_risk.json")[0],
        &[],
        &[],
    );
    let (_, acc) = v.rest("GET", "/fapi/v2/account", "", KEY);
    let ai = fixture("http_json/account_info_v2.json");
    same_fields(&acc, &ai, &[], &[]);
    same_fields(&acc["assets"][0], &ai["assets"][0], &[], &[]);
    same_fields(&acc["positions"][0], &ai["positions"][0], &[], &[]);
    let (_, bal) = v.rest("GET", "/fapi/v2/balance", "", KEY);
    same_fields(&bal[0], &fixture("http_json/balance.json")[0], &[], &[]);

    // reduceOnly that would grow the long: -2022; one that shrinks it is fine.
    let (_, e) = v.rest("POST", "/fapi/v1/order", &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.001&price={}&reduceOnly=true", px(bid - 100)), KEY);
    assert_eq!(e["code"], -2022);
    let (_, e) = v.rest("POST", "/fapi/v1/order", &format!("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTX&quantity=0.003&price={}&reduceOnly=true", px(ask + 1000)), KEY);
    assert_eq!(e["code"], -2022);
    // Two reduce-only sells that each fit the 0.002 long but together would flip it: the second
    // is refused while the first is open (each alone was accepted before).
    let (_, first) = v.rest("POST", "/fapi/v1/order", &format!("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}&reduceOnly=true", px(ask + 1000)), KEY);
    assert_eq!(first["status"], "NEW", "{first}");
    let (_, e) = v.rest("POST", "/fapi/v1/order", &format!("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTX&quantity=0.001&price={}&reduceOnly=true", px(ask + 1200)), KEY);
    assert_eq!(e["code"], -2022, "{e}");
    let (_, gone) = v.rest(
        "DELETE",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={}", first["orderId"]),
        KEY,
    );
    assert_eq!(gone["status"], "CANCELED", "{gone}");

    // WebSocket API: place, status, cancel.
    let r = v.ws("order.place", json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.002", "price": px(bid - 500)}));
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["id"], "req-1");
    same_fields(
        &r["result"],
        &fixture("http_json/order_response.json"),
        &[],
        &[],
    );
    assert_eq!(r["rateLimits"].as_array().unwrap().len(), 3);
    let ws_id = r["result"]["orderId"].as_u64().unwrap();
    assert!(r["result"]["clientOrderId"]
        .as_str()
        .unwrap()
        .starts_with("x-"));
    let (_, open) = v.rest("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", KEY);
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["orderId"], ws_id);
    let r = v.ws(
        "order.status",
        json!({"symbol": "BTCUSDT", "orderId": ws_id}),
    );
    assert_eq!(r["result"]["status"], "NEW");
    drain(&stream);
    let r = v.ws(
        "order.cancel",
        json!({"symbol": "BTCUSDT", "orderId": ws_id}),
    );
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
    let evs = drain(&stream);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["o"]["X"], "CANCELED");
    let r = v.ws(
        "order.cancel",
        json!({"symbol": "BTCUSDT", "orderId": ws_id}),
    );
    assert_eq!(r["status"], 400);
    assert_eq!(r["error"]["code"], -2011);
    let (_, open) = v.rest("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", KEY);
    assert!(open.as_array().unwrap().is_empty());
    let r = v.ws("account.position", json!({"symbol": "BTCUSDT"}));
    assert_eq!(r["result"][0]["positionAmt"], "0.002");

    // A reduce-only sell resting for the whole long; a regular market sell then closes the long:
    // the reduce-only order, which would now open a short, is cancelled at once.
    let (_, ro) = v.rest("POST", "/fapi/v1/order", &format!("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}&reduceOnly=true", px(ask + 1000)), KEY);
    assert_eq!(ro["status"], "NEW", "{ro}");
    let (_, mkt) = v.rest(
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.002",
        KEY,
    );
    assert_eq!(mkt["status"], "FILLED", "{mkt}");
    let (_, pr) = v.rest("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", KEY);
    assert_eq!(pr[0]["positionAmt"], "0.000", "{pr}");
    let (_, q) = v.rest(
        "GET",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={}", ro["orderId"]),
        KEY,
    );
    assert_eq!(q["status"], "CANCELED", "{q}");

    // Authentication failures.
    let (r, e) = v.rest_at(
        "GET",
        "/fapi/v1/openOrders",
        "symbol=BTCUSDT",
        KEY,
        v.now,
        "wrong",
    );
    assert_eq!((r.status, e["code"].as_i64()), (400, Some(-1022)));
    let (_, e) = v.rest_at(
        "GET",
        "/fapi/v1/openOrders",
        "symbol=BTCUSDT",
        KEY,
        v.now - 5001,
        SECRET,
    );
    assert_eq!(e["code"], -1021);
    let (_, e) = v.rest_at(
        "GET",
        "/fapi/v1/openOrders",
        "symbol=BTCUSDT",
        KEY,
        v.now + 1001,
        SECRET,
    );
    assert_eq!(e["code"], -1021);
    let (r, e) = v.rest("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", "unknown");
    assert_eq!((r.status, e["code"].as_i64()), (401, Some(-2015)));
    let mut bad = json!({"symbol": "BTCUSDT", "orderId": 1, "apiKey": KEY, "timestamp": v.now});
    bad["signature"] = "00".into();
    let r: Value = serde_json::from_str(&v.ex.ws_api(
        7,
        PEER,
        &json!({"id": 3, "method": "order.status", "params": bad}).to_string(),
        v.now,
    ))
    .unwrap();
    assert_eq!(r["error"]["code"], -1022);

    // Flood on the Ed25519 account over the WS API: -1015 after 300 orders in 10 s.
    let pem = std::fs::read_to_string(
        root().join("tests/data/signatures/python-binance_ed25519_test_key.pem"),
    )
    .unwrap();
    let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let mut limited = None;
    for i in 0..310 {
        let r = v.ws_ed(&signing, "order.place", json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.002", "price": px(bid - 1000 - i)}));
        if r["status"] != 200 {
            limited = Some((i, r));
            break;
        }
        // Cancels cost weight, not orders: keep below the 200 open orders limit.
        let c = v.ws_ed(
            &signing,
            "order.cancel",
            json!({"symbol": "BTCUSDT", "orderId": r["result"]["orderId"]}),
        );
        assert_eq!(c["result"]["status"], "CANCELED");
    }
    let (i, r) = limited.expect("limited");
    assert_eq!(i, 300, "{r}");
    assert_eq!(r["status"], 429);
    assert_eq!(r["error"]["code"], -1015);
    // The HMAC account is not affected (per account), and REST says 429 too once it floods.
    let (r, _) = v.rest(
        "POST",
        "/fapi/v1/order",
        &format!(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}",
            px(bid - 2000)
        ),
        KEY,
    );
    assert_eq!(r.status, 200);

    // REST weight: 2400 per minute per IP, then 429 with Retry-After, then 418.
    let mut codes = Vec::new();
    for _ in 0..520 {
        let (r, _) = v.rest("GET", "/fapi/v2/balance", "", KEY);
        codes.push(r.status);
        if r.status == 418 {
            assert!(hdr(&r, "Retry-After").is_some());
            break;
        }
        if r.status == 429 {
            assert!(hdr(&r, "Retry-After").is_some());
        }
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert_eq!(codes.last(), Some(&418));

    // Listen key expiry: listenKeyExpired is filtered out by the allow-list; the stream closes.
    let s2 = v.ex.user_stream(&key, None, v.now).unwrap();
    v.ex.on_time(v.now + 61 * 60 * 1000);
    let last: Vec<Value> = s2
        .iter()
        .map(|t| serde_json::from_str(&t).unwrap())
        .collect();
    assert_eq!(last.last().unwrap()["e"], "listenKeyExpired");
    let rest: Vec<String> = stream.iter().collect();
    assert!(rest.iter().all(|t| !t.contains("listenKeyExpired")));
}

#[test]
fn deterministic_responses() {
    let run = || {
        let mut r = Replayed::new();
        let mut out = Vec::new();
        for _ in 0..20 {
            r.feed(2000);
            let (_, o) = r.v.rest(
                "POST",
                "/fapi/v1/order",
                &format!(
                    "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}",
                    r.px(r.bid)
                ),
                KEY,
            );
            out.push(o.to_string());
            let (_, p) = r.v.rest("GET", "/fapi/v2/positionRisk", "", KEY);
            out.push(p.to_string());
        }
        out
    };
    let a = run();
    assert!(a.len() > 10);
    assert_eq!(a, run());
}

#[test]
fn batch_modify_cancel_all_and_countdown() {
    let mut r = Replayed::new();
    r.feed(3000);
    let (bid, inst) = (r.bid, r.inst);
    let px = |t: i64| inst.tick.format(t);
    let v = &mut r.v;
    let batch = json!([
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.002", "price": px(bid - 300)},
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.001", "price": px(bid - 300)},
    ]);
    let enc: String = batch
        .to_string()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (r, out) = v.rest(
        "POST",
        "/fapi/v1/batchOrders",
        &format!("batchOrders={enc}"),
        KEY,
    );
    assert_eq!(r.status, 200, "{out}");
    assert_eq!(out[0]["status"], "NEW");
    assert_eq!(
        out[1]["code"], -4164,
        "one bad order does not fail the batch"
    );
    let id = out[0]["orderId"].as_u64().unwrap();
    let (_, m) = v.rest(
        "PUT",
        "/fapi/v1/order",
        &format!(
            "symbol=BTCUSDT&orderId={id}&side=BUY&quantity=0.003&price={}",
            px(bid - 400)
        ),
        KEY,
    );
    assert_eq!(m["origQty"], "0.003", "{m}");
    assert_eq!(m["price"], px(bid - 400).as_str());
    assert_eq!(m["status"], "NEW");
    let (_, c) = v.rest(
        "POST",
        "/fapi/v1/countdownCancelAll",
        "symbol=BTCUSDT&countdownTime=120000",
        KEY,
    );
    assert_eq!(c["countdownTime"], "120000");
    v.ex.on_time(v.now + 119_999);
    let (_, open) = v.rest("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", KEY);
    assert_eq!(open.as_array().unwrap().len(), 1);
    v.now += 120_000;
    v.ex.on_time(v.now);
    let (_, open) = v.rest("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", KEY);
    assert!(
        open.as_array().unwrap().is_empty(),
        "the countdown cancelled everything"
    );
    let (_, st) = v.rest(
        "GET",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    assert_eq!(st["status"], "CANCELED");
    let (_, _) = v.rest(
        "POST",
        "/fapi/v1/order",
        &format!(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.002&price={}",
            px(bid - 300)
        ),
        KEY,
    );
    let (_, all) = v.rest("DELETE", "/fapi/v1/allOpenOrders", "symbol=BTCUSDT", KEY);
    assert_eq!(all["code"], 200);
    let (_, open) = v.rest("GET", "/fapi/v1/openOrders", "", KEY);
    assert!(open.as_array().unwrap().is_empty());
}

#[test]
fn a_crossing_gtc_takes_then_its_rest_rests_and_joins_the_book_once_uncrossed() {
    let mut rp = Replayed::new();
    rp.feed(3000);
    let ask = rp.ask;
    let (_, lk) = rp.v.rest("POST", "/fapi/v1/listenKey", "", KEY);
    let stream =
        rp.v.ex
            .user_stream(lk["listenKey"].as_str().unwrap(), None, rp.v.now)
            .unwrap();
    let px = rp.px(ask);
    // 100 BTC at the touch: more than the touch holds, so it takes the touch and its rest rests.
    let (r, o) = rp.v.rest(
        "POST",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=100&price={px}"),
        KEY,
    );
    assert_eq!(r.status, 200, "{o}");
    assert_eq!(o["status"], "PARTIALLY_FILLED", "{o}");
    let taken: f64 = o["executedQty"].as_str().unwrap().parse().unwrap();
    assert!(taken > 0.0 && taken < 100.0, "{o}");
    let id = o["orderId"].as_u64().unwrap();
    let events = drain(&stream);
    let execs: Vec<&str> = events
        .iter()
        .filter(|e| e["e"] == "ORDER_TRADE_UPDATE")
        .map(|e| e["o"]["x"].as_str().unwrap())
        .collect();
    assert_eq!(execs.first(), Some(&"NEW"), "{events:?}");
    assert!(
        execs.contains(&"TRADE") && !execs.contains(&"EXPIRED"),
        "{execs:?}"
    );
    assert!(events
        .iter()
        .filter(|e| e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["x"] == "TRADE")
        .all(|e| e["o"]["m"] == false));
    let (_, open) =
        rp.v.rest("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", KEY);
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    // While the recording still shows asks at its price (the liquidity it took), it gets no
    // more fills; once the ask is above it, it is a resting bid and fills as a maker.
    let price = ask;
    let mut uncrossed = false;
    let mut maker = 0;
    for _ in 0..200 {
        rp.feed(50);
        let crossed_now = rp.ask <= price;
        for e in drain(&stream) {
            if e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["i"] == id && e["o"]["x"] == "TRADE" {
                assert!(uncrossed, "filled while the book crossed it: {e}");
                assert_eq!(e["o"]["m"], true, "{e}");
                maker += 1;
            }
        }
        uncrossed |= !crossed_now;
        if maker > 0 {
            break;
        }
    }
    assert!(uncrossed, "the recording never moved above the order");
    assert!(maker > 0, "no maker fill once it rested");
    // Its fills count from what it took at placement, at its price: quantity and average
    // price whole across the two lives of the order (the simulated venue fills a resting order
    // the recorded book crosses in full, so this 100 BTC bid may be done).
    let (_, q) = rp.v.rest(
        "GET",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    let qty = |k: &str| q[k].as_str().unwrap().parse::<f64>().unwrap();
    assert!(
        qty("executedQty") > taken && qty("executedQty") <= 100.0,
        "{q}"
    );
    assert!(
        qty("avgPrice") <= ask as f64 / 10.0 + 1e-9,
        "a buy above its limit: {q}"
    );
    let (r, c) = rp.v.rest(
        "DELETE",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    if q["status"] == "FILLED" {
        assert_eq!(qty("executedQty"), 100.0, "{q}");
        assert_eq!(c["code"], -2011, "{c}");
    } else {
        assert_eq!(q["status"], "PARTIALLY_FILLED", "{q}");
        assert_eq!(
            (r.status, c["status"].as_str()),
            (200, Some("CANCELED")),
            "{c}"
        );
    }
}

#[test]
fn a_parked_gtc_cancels_and_modifies_without_the_simulated_venue() {
    let mut r = Replayed::new();
    r.feed(3000);
    let (bid, ask, inst) = (r.bid, r.ask, r.inst);
    let px = |t: i64| inst.tick.format(t);
    let v = &r.v;
    let place = |v: &Venue| {
        let (_, o) = v.rest(
            "POST",
            "/fapi/v1/order",
            &format!(
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=100&price={}",
                px(ask)
            ),
            KEY,
        );
        assert_eq!(o["status"], "PARTIALLY_FILLED", "{o}");
        o["orderId"].as_u64().unwrap()
    };
    // Cancel while parked.
    let id = place(v);
    let (r, c) = v.rest(
        "DELETE",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    assert_eq!(
        (r.status, c["status"].as_str()),
        (200, Some("CANCELED")),
        "{c}"
    );
    let (_, c) = v.rest(
        "DELETE",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    assert_eq!(c["code"], -2011, "a second cancel: {c}");
    // Modify while parked to a price below the bid: it joins the book at once (NEW rest).
    let id = place(v);
    let (r, m) = v.rest(
        "PUT",
        "/fapi/v1/order",
        &format!(
            "symbol=BTCUSDT&side=BUY&orderId={id}&quantity=100&price={}",
            px(bid - 100)
        ),
        KEY,
    );
    assert_eq!(r.status, 200, "{m}");
    assert_eq!(
        (m["status"].as_str(), m["price"].as_str()),
        (Some("PARTIALLY_FILLED"), Some(px(bid - 100).as_str()))
    );
    // In the simulated venue now: a cancel goes through it and succeeds.
    let (r, c) = v.rest(
        "DELETE",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    assert_eq!(
        (r.status, c["status"].as_str()),
        (200, Some("CANCELED")),
        "{c}"
    );
    // countdownCancelAll reaches a parked order too.
    let id = place(v);
    let (_, _) = v.rest("DELETE", "/fapi/v1/allOpenOrders", "symbol=BTCUSDT", KEY);
    let (_, q) = v.rest(
        "GET",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&orderId={id}"),
        KEY,
    );
    assert_eq!(q["status"], "CANCELED", "{q}");
}

#[test]
fn fok_fills_whole_or_nothing_and_bad_sides_are_binances_codes() {
    let mut r = Replayed::new();
    r.feed(3000);
    let ask = r.ask;
    let v = &r.v;
    let (_, lk) = v.rest("POST", "/fapi/v1/listenKey", "", KEY);
    let stream =
        v.ex.user_stream(lk["listenKey"].as_str().unwrap(), None, v.now)
            .unwrap();
    let px = r.px(ask + 50);
    let fok = |qty: &str| {
        v.rest(
            "POST",
            "/fapi/v1/order",
            &format!(
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=FOK&quantity={qty}&price={px}"
            ),
            KEY,
        )
        .1
    };
    // More than the book holds up to its price: nothing fills.
    let o = fok("500");
    assert_eq!(
        (o["status"].as_str(), o["executedQty"].as_str()),
        (Some("EXPIRED"), Some("0.000")),
        "{o}"
    );
    assert_eq!(o["timeInForce"], "FOK");
    let xs: Vec<String> = drain(&stream)
        .iter()
        .filter(|e| e["e"] == "ORDER_TRADE_UPDATE")
        .map(|e| {
            format!(
                "{}/{}",
                e["o"]["x"].as_str().unwrap(),
                e["o"]["X"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(xs, ["NEW/NEW", "EXPIRED/EXPIRED"]);
    // A small one fills whole.
    let o = fok("0.003");
    assert_eq!(
        (o["status"].as_str(), o["executedQty"].as_str()),
        (Some("FILLED"), Some("0.003")),
        "{o}"
    );
    let (_, risk) = v.rest("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", KEY);
    assert_eq!(risk[0]["positionAmt"], "0.003", "{risk}");
    // Sides: missing is -1102, unknown -1117.
    let (r, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&type=MARKET&quantity=0.003",
        KEY,
    );
    assert_eq!((r.status, e["code"].as_i64()), (400, Some(-1102)), "{e}");
    let (_, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=HOLD&type=MARKET&quantity=0.003",
        KEY,
    );
    assert_eq!(e["code"], -1117, "{e}");
    let (_, e) = v.rest(
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=STOP&quantity=0.003",
        KEY,
    );
    assert_eq!(e["code"], -1116, "{e}");
}
