//! The signed REST client against `ringmaker venue` started in-process over TLS, on a manual
//! clock (it stands still unless a test moves it): listen key, dead-man switch, open orders,
//! position, cancel-all, HMAC and Ed25519 signatures, a bad signature, and a 429 after which
//! nothing more is sent.

use gateway::binance::rest::{RestClient, RestError, RestOptions};
use gateway::binance::sign::{hmac_sha256_hex, Credentials, Secret};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use venue::api::{Exchange, Request, Response, UserStream};
use venue::server::{ServerConfig, Venue, VenueHandle};

/// The HMAC test account of `configs/venue-accounts.toml` (Binance's published example keys).
const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
/// The Ed25519 test account (python-binance's published test key).
const ED_KEY: &str = "ed25519-test-key-python-binance";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venue's exchange core, counting what reaches it: every REST request it answers and
/// every public request the server charges through it.
struct Counting {
    inner: Arc<dyn Exchange>,
    seen: AtomicUsize,
}

impl Counting {
    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Exchange for Counting {
    fn rest(&self, req: &Request, now_ms: i64) -> Option<Response> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.inner.rest(req, now_ms)
    }
    fn ws_api(&self, conn: u64, peer: &str, text: &str, now_ms: i64) -> String {
        self.inner.ws_api(conn, peer, text, now_ms)
    }
    fn user_stream(&self, key: &str, events: Option<&str>, now_ms: i64) -> Option<UserStream> {
        self.inner.user_stream(key, events, now_ms)
    }
    fn on_market(&self, events: &[engine::Event], now_ms: i64) {
        self.inner.on_market(events, now_ms)
    }
    fn on_time(&self, now_ms: i64) {
        self.inner.on_time(now_ms)
    }
    fn charge_ip(&self, peer: &str, weight: u32, now_ms: i64) -> Option<venue::limits::Charged> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.inner.charge_ip(peer, weight, now_ms)
    }
    fn expire_listen_keys(&self, now_ms: i64) -> usize {
        self.inner.expire_listen_keys(now_ms)
    }
}

/// A venue on the shipped USDⓈ-M recording with a manual clock, and a plain HTTPS agent
/// trusting it (for the test's own requests).
struct Setup {
    h: VenueHandle,
    ex: Arc<Counting>,
    agent: ureq::Agent,
    dir: test_support::TempDir,
}

fn start(name: &str) -> Setup {
    start_with(name, "")
}

/// As [`start`], with the venue's faults (`rest-5xx@every=1`...).
fn start_with(name: &str, faults: &str) -> Setup {
    let dir = test_support::TempDir::new(name);
    let cfg = test_support::default_config();
    let mut sc = ServerConfig::new(vec![test_support::usdm()], cfg.clone());
    sc.manual_clock = true;
    sc.cert_dir = dir.join("cert");
    if !faults.is_empty() {
        sc.faults = venue::faults::parse(faults, None).unwrap();
    }
    let accounts =
        venue::auth::Accounts::load(&root().join("configs/venue-accounts.toml")).unwrap();
    let ex = Arc::new(Counting {
        inner: Arc::new(
            venue::exchange::SimExchange::new(cfg, accounts).accept_wall_clock_timestamps(),
        ),
        seen: AtomicUsize::new(0),
    });
    let h = Venue::start(sc, Arc::clone(&ex) as Arc<dyn Exchange>).expect("venue starts");
    let tls = feeds::net::tls::client_config(Some(h.cert_path())).unwrap();
    let agent = ureq::AgentBuilder::new()
        .tls_config(tls)
        .timeout(Duration::from_secs(70))
        .build();
    Setup { h, ex, agent, dir }
}

impl Setup {
    fn client(&self, creds: Credentials) -> RestClient {
        RestClient::new(
            &self.h.rest_url(),
            Some(self.h.cert_path()),
            Arc::new(creds),
            RestOptions {
                recv_window_ms: 60_000,
                ..RestOptions::default()
            },
        )
        .unwrap()
    }

    fn hmac_client(&self) -> RestClient {
        self.client(Credentials::hmac(KEY, &Secret::new(SECRET)).unwrap())
    }

    /// A request of the test's own: status, a header, the body as JSON.
    fn raw(&self, method: &str, path_query: &str, key: bool) -> (u16, Option<String>, Value) {
        let url = format!("{}{path_query}", self.h.rest_url());
        let mut req = self.agent.request(method, &url);
        if key {
            req = req.set("X-MBX-APIKEY", KEY);
        }
        let res = if method == "POST" {
            req.set("Content-Type", "application/x-www-form-urlencoded")
                .send_bytes(&[])
        } else {
            req.call()
        };
        let r = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path_query}: {e}"),
        };
        let status = r.status();
        let weight = r.header("X-MBX-USED-WEIGHT-1M").map(str::to_string);
        let body = r.into_string().unwrap();
        (
            status,
            weight,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// A signed request of the HMAC account, parameters in the query.
    fn signed(&self, method: &str, path: &str, params: &str) -> (u16, Value) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let q = format!("{params}&recvWindow=60000&timestamp={ts}");
        let mut sig = Vec::new();
        hmac_sha256_hex(SECRET.as_bytes(), q.as_bytes(), &mut sig);
        let sig = String::from_utf8(sig).unwrap();
        let (s, _, v) = self.raw(method, &format!("{path}?{q}&signature={sig}"), true);
        (s, v)
    }

    /// Moves the manual clock by `ms` (and waits for the replay to catch up): the venue time.
    fn advance(&self, ms: i64) -> i64 {
        let url = format!("{}/venue/clock", self.h.rest_url());
        let r = self
            .agent
            .post(&url)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!("advance={ms}"))
            .expect("the clock moves");
        let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        v["venueTime"].as_i64().unwrap()
    }

    /// The best bid and ask, in ticks of 0.1.
    fn touch(&self) -> (i64, i64) {
        let (s, _, d) = self.raw("GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=5", false);
        assert_eq!(s, 200, "{d}");
        let px = |side: &str| -> i64 {
            let p: f64 = d[side][0][0].as_str().unwrap().parse().unwrap();
            (p * 10.0).round() as i64
        };
        (px("bids"), px("asks"))
    }

    /// Places a GTC limit order of 0.002 at `ticks`: the response.
    fn place(&self, side: &str, ticks: i64, cid: &str) -> Value {
        let (s, v) = self.signed(
            "POST",
            "/fapi/v1/order",
            &format!(
                "symbol=BTCUSDT&side={side}&type=LIMIT&timeInForce=GTC&quantity=0.002&price={}&newClientOrderId={cid}",
                price(ticks)
            ),
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("NEW")), "{v}");
        v
    }
}

fn price(ticks: i64) -> String {
    format!("{}.{}", ticks / 10, ticks % 10)
}

/// A decimal price in ticks of 0.1.
fn ticks_of(p: &str) -> i64 {
    (p.parse::<f64>().unwrap() * 10.0).round() as i64
}

fn venue_code(e: &RestError) -> Option<i64> {
    match e {
        RestError::Venue { code, .. } => Some(*code),
        _ => None,
    }
}

#[test]
fn listen_key_countdown_open_orders_position_and_cancel_all() {
    let s = start("gateway-rest-lifecycle");
    let c = s.hmac_client();
    assert_eq!(c.server_time().unwrap(), s.h.now_ms());
    s.advance(2_000);

    // The listen key: the same key while it is active; after a close, a keepalive fails.
    let key = c.listen_key_start().unwrap();
    assert!(!key.is_empty());
    assert_eq!(c.listen_key_start().unwrap(), key);
    c.listen_key_keepalive().unwrap();
    c.listen_key_close().unwrap();
    let e = c.listen_key_keepalive().unwrap_err();
    assert_eq!(venue_code(&e), Some(-1125), "{e:?}");
    assert!(c.usage().used_weight_1m.is_some_and(|w| w > 0));

    // Two resting orders, read back.
    let (bid, ask) = s.touch();
    assert!(c.open_orders("BTCUSDT").unwrap().is_empty());
    let b = s.place("BUY", bid - 1000, "rm-b1");
    s.place("SELL", ask + 1000, "rm-s1");
    let mut open = c.open_orders("BTCUSDT").unwrap();
    open.sort_by_key(|o| o.order_id);
    assert_eq!(open.len(), 2, "{open:?}");
    let o = &open[0];
    assert_eq!(o.symbol, "BTCUSDT");
    assert_eq!(o.client_order_id, "rm-b1");
    assert_eq!(Some(o.order_id), b["orderId"].as_u64());
    assert_eq!(o.side, engine::Side::Bid);
    // The venue prints prices with the symbol's price precision (`61700.00`).
    assert_eq!(ticks_of(&o.price), bid - 1000, "{o:?}");
    assert_eq!(
        (o.orig_qty.as_str(), o.executed_qty.as_str()),
        ("0.002", "0.000")
    );
    assert_eq!(
        (o.status.as_str(), o.time_in_force.as_str()),
        ("NEW", "GTC")
    );
    assert!(o.update_time_ms > 0);
    assert_eq!(open[1].side, engine::Side::Ask);
    assert_eq!(open[1].client_order_id, "rm-s1");
    assert_eq!(ticks_of(&open[1].price), ask + 1000);

    // The dead-man switch armed for 1 s and not refreshed: the orders go when it runs out.
    c.countdown_cancel_all("BTCUSDT", 1_000).unwrap();
    s.advance(2_000);
    assert!(c.open_orders("BTCUSDT").unwrap().is_empty());
    // Armed and disarmed: the orders stay.
    let (bid, ask) = s.touch();
    s.place("BUY", bid - 1000, "rm-b2");
    s.place("SELL", ask + 1000, "rm-s2");
    c.countdown_cancel_all("BTCUSDT", 1_000).unwrap();
    c.countdown_cancel_all("BTCUSDT", 0).unwrap();
    s.advance(2_000);
    assert_eq!(c.open_orders("BTCUSDT").unwrap().len(), 2);

    // Flat, then long after a market buy fills.
    let flat = c.position("BTCUSDT").unwrap();
    assert!(
        flat.as_ref()
            .is_none_or(|p| p.position_amt.parse::<f64>() == Ok(0.0)),
        "{flat:?}"
    );
    let (st, v) = s.signed(
        "POST",
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.003",
    );
    assert_eq!((st, v["status"].as_str()), (200, Some("FILLED")), "{v}");
    let p = c.position("BTCUSDT").unwrap().expect("a position");
    assert_eq!(
        (p.symbol.as_str(), p.position_amt.as_str()),
        ("BTCUSDT", "0.003")
    );
    assert!(p.entry_price.parse::<f64>().unwrap() > 0.0, "{p:?}");
    assert!(p.update_time_ms > 0);

    // Cancel-all leaves nothing open.
    c.cancel_all("BTCUSDT").unwrap();
    assert!(c.open_orders("BTCUSDT").unwrap().is_empty());
    // An unknown symbol is the venue's error, typed.
    let e = c.open_orders("NOPEUSDT").unwrap_err();
    assert_eq!(venue_code(&e), Some(-1121), "{e:?}");
    s.h.shutdown();
}

#[cfg(unix)]
#[test]
fn ed25519_signatures_and_bad_signatures() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = start("gateway-rest-signatures");
    s.advance(2_000);

    // Ed25519 from a 0600 key file: base64 signatures (with `+`, `/`, `=`) URL-encoded.
    let pem = std::fs::read_to_string(
        root().join("tests/data/signatures/python-binance_ed25519_test_key.pem"),
    )
    .unwrap();
    let path = s.dir.join("ed25519.pem");
    std::fs::write(&path, &pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ed = s.client(Credentials::ed25519_key_file(ED_KEY, &path).unwrap());
    for _ in 0..20 {
        assert!(ed.open_orders("BTCUSDT").unwrap().is_empty());
    }
    ed.countdown_cancel_all("BTCUSDT", 0).unwrap();
    assert!(ed.listen_key_start().is_ok());

    // A wrong secret: -1022, and neither the secret nor a signature in the error.
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let bad = s.client(Credentials::hmac(KEY, &Secret::new(wrong)).unwrap());
    let e = bad.open_orders("BTCUSDT").unwrap_err();
    assert!(
        matches!(
            &e,
            RestError::Venue {
                status: 400,
                code: -1022,
                ..
            }
        ),
        "{e:?}"
    );
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains(wrong) && !text.contains("signature="),
        "{text}"
    );
    // What the bad key signs is refused, whatever the call.
    let e = bad.cancel_all("BTCUSDT").unwrap_err();
    assert_eq!(venue_code(&e), Some(-1022), "{e:?}");
    // An unknown API key: -2015.
    let stranger = s.client(Credentials::hmac("nobody", &Secret::new(SECRET)).unwrap());
    let e = stranger.listen_key_start().unwrap_err();
    assert!(
        matches!(
            &e,
            RestError::Venue {
                status: 401,
                code: -2015,
                ..
            }
        ),
        "{e:?}"
    );
    s.h.shutdown();
}

#[test]
fn after_a_429_nothing_is_sent_until_retry_after() {
    let s = start("gateway-rest-429");
    let now = s.advance(2_000);
    // Far enough from the end of the venue minute that the limit holds (the clock stands
    // still, so it holds for the whole test).
    let left = 60_000 - now.rem_euclid(60_000);
    if left < 20_000 {
        s.advance(left + 1_000);
    }
    // Fill the minute's weight with public depth requests (20 each) up to the limit, 2,400.
    let mut used = 0;
    for _ in 0..200 {
        let (st, w, v) = s.raw("GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=1000", false);
        assert_eq!(st, 200, "{v}");
        used = w.unwrap().parse::<u32>().unwrap();
        if used + 20 > 2400 {
            break;
        }
    }
    assert!(used > 2390, "{used}");

    // The client's next request is refused: 429 and a Retry-After.
    let c = s.hmac_client();
    let before = s.ex.seen();
    let e = c.countdown_cancel_all("BTCUSDT", 60_000).unwrap_err();
    let RestError::RateLimited { retry_after } = e else {
        panic!("{e:?}")
    };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));
    assert_eq!(s.ex.seen(), before + 1);
    assert_eq!(c.usage().used_weight_1m, Some(used));
    assert!(c.blocked_for().is_some());

    // Every call now is refused without being sent.
    for _ in 0..5 {
        for r in [
            c.countdown_cancel_all("BTCUSDT", 60_000).map(drop),
            c.open_orders("BTCUSDT").map(drop),
            c.position("BTCUSDT").map(drop),
            c.cancel_all("BTCUSDT").map(drop),
            c.listen_key_start().map(drop),
            c.server_time().map(drop),
        ] {
            assert!(
                matches!(r, Err(RestError::RateLimited { retry_after: r }) if r <= retry_after),
                "{r:?}"
            );
        }
    }
    assert_eq!(s.ex.seen(), before + 1, "a refused call reached the venue");
    // The venue saw one strike: another request is a 429, not the 418 that 30 would have made.
    let (st, _) = s.signed("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT");
    assert_eq!(st, 429);

    // Keep sending past the strikes: banned. A 418 is its own error, and it too stops sending.
    let mut banned = false;
    for _ in 0..20 {
        let (st, _, _) = s.raw("GET", "/fapi/v1/time", false);
        if st == 418 {
            banned = true;
            break;
        }
        assert_eq!(st, 429);
    }
    assert!(banned);
    let c = s.hmac_client();
    let before = s.ex.seen();
    let e = c.open_orders("BTCUSDT").unwrap_err();
    let RestError::Banned { retry_after } = e else {
        panic!("{e:?}")
    };
    assert!(retry_after >= Duration::from_secs(60), "{retry_after:?}");
    let e = c.server_time().unwrap_err();
    assert!(matches!(e, RestError::Banned { .. }), "{e:?}");
    assert_eq!(s.ex.seen(), before + 1);
    s.h.shutdown();
}

#[test]
fn server_errors_and_timeouts_are_typed_and_carry_no_query() {
    let s = start_with("gateway-rest-5xx", "rest-5xx@every=1");
    let c = s.hmac_client();
    assert_eq!(
        c.open_orders("BTCUSDT").unwrap_err(),
        RestError::Server { status: 503 }
    );
    // A 5xx does not stop the client.
    assert_eq!(c.blocked_for(), None);
    assert_eq!(
        c.server_time().unwrap_err(),
        RestError::Server { status: 503 }
    );
    s.h.shutdown();

    let s = start_with("gateway-rest-timeout", "rest-timeout@every=1");
    let c = RestClient::new(
        &s.h.rest_url(),
        Some(s.h.cert_path()),
        Arc::new(Credentials::hmac(KEY, &Secret::new(SECRET)).unwrap()),
        RestOptions {
            recv_window_ms: 60_000,
            timeout: Duration::from_millis(500),
            ..RestOptions::default()
        },
    )
    .unwrap();
    let e = c.countdown_cancel_all("BTCUSDT", 60_000).unwrap_err();
    let RestError::Transport(msg) = &e else {
        panic!("{e:?}")
    };
    let text = format!("{e} {e:?}");
    for secret in ["signature", "timestamp=", "symbol=", SECRET] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(!msg.is_empty());
    s.h.shutdown();
}
