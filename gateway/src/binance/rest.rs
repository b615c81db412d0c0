//! A blocking, signed REST client for Binance USDⓈ-M: the calls around order entry (the listen
//! key of the user data stream, the dead-man switch, reconciliation queries, cancel-all), made
//! from a housekeeping thread, never on the hot path; and the one order `ringmaker emergency
//! flatten` sends ([`RestClient::place_market_reduce_only`]).
//!
//! - Signed requests carry their parameters in the query string, then `timestamp` and
//!   `recvWindow`; the signature of that query string, exactly as sent, is appended as
//!   `&signature=` (URL-encoded: an Ed25519 signature is base64).
//! - Every response's `X-MBX-USED-WEIGHT-1M` and `X-MBX-ORDER-COUNT-10S/-1M` are kept
//!   ([`RestClient::usage`]).
//! - After an HTTP 429 (or a 418 ban) the client refuses every call until the `Retry-After` has
//!   passed, without sending anything: a caller that retries in a loop cannot escalate a rate
//!   limit into a ban.
//! - No error carries the query string (it holds the signature), the signature or a secret.

use super::sign::Signer;
use engine::Side;
use serde::Deserialize;
use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the client talks to the venue.
#[derive(Debug, Clone)]
pub struct RestOptions {
    /// `recvWindow` of signed requests, ms (1 to [`MAX_RECV_WINDOW_MS`]; default 5,000).
    pub recv_window_ms: u32,
    /// Time allowed for one whole request (connect, send, read).
    pub timeout: Duration,
    /// The largest response body accepted.
    pub max_body: u64,
}

impl Default for RestOptions {
    fn default() -> RestOptions {
        RestOptions {
            recv_window_ms: 5000,
            timeout: Duration::from_secs(10),
            max_body: 4 << 20,
        }
    }
}

/// Why a call failed. Never carries the query string, the signature or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// Rate limited (HTTP 429): nothing is sent until `retry_after` has passed; this call may
    /// not have been sent at all.
    #[error("rate limited (HTTP 429): no request is sent for {retry_after:?}")]
    RateLimited {
        /// Time left until requests may be sent again.
        retry_after: Duration,
    },
    /// The IP is banned (HTTP 418): nothing is sent until `retry_after` has passed.
    #[error("IP banned (HTTP 418): no request is sent for {retry_after:?}")]
    Banned {
        /// Time left until the ban ends.
        retry_after: Duration,
    },
    /// The venue refused the request with a Binance error (`{"code":-2011,"msg":"..."}`); `code`
    /// is 0 if the body was not one.
    #[error("venue error {code} (HTTP {status}): {msg}")]
    Venue {
        /// The HTTP status.
        status: u16,
        /// Binance's error code.
        code: i64,
        /// Binance's message.
        msg: String,
    },
    /// The venue failed (HTTP 5xx): the outcome of the request is unknown.
    #[error("venue server error (HTTP {status})")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// No answer: connect, TLS, timeout, a cut connection.
    #[error("transport: {0}")]
    Transport(String),
    /// A successful answer that is not what the endpoint returns.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// The client could not be made (base URL, TLS settings).
    #[error("REST client settings: {0}")]
    Config(String),
    /// A parameter the client refuses to send (nothing was sent).
    #[error("not sent: {0}")]
    Param(String),
}

/// The request counters the venue reported last (`None`: no response carried that header yet;
/// the order counters come with order requests only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `X-MBX-USED-WEIGHT-1M`: the IP's request weight in the current minute.
    pub used_weight_1m: Option<u32>,
    /// `X-MBX-ORDER-COUNT-10S`: the account's orders in the current 10 s.
    pub order_count_10s: Option<u32>,
    /// `X-MBX-ORDER-COUNT-1M`: the account's orders in the current minute.
    pub order_count_1m: Option<u32>,
    /// When the last response arrived.
    pub updated: Option<Instant>,
}

/// An open order (`GET /fapi/v1/openOrders`). Decimals stay strings: the caller converts them
/// with the instrument's grids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    /// The symbol (`BTCUSDT`).
    pub symbol: String,
    /// The client order id.
    pub client_order_id: String,
    /// The venue's order id.
    pub order_id: u64,
    /// Buy ([`Side::Bid`]) or sell ([`Side::Ask`]).
    pub side: Side,
    /// Limit price.
    pub price: String,
    /// Quantity ordered.
    pub orig_qty: String,
    /// Quantity filled.
    pub executed_qty: String,
    /// `NEW`, `PARTIALLY_FILLED`, ...
    pub status: String,
    /// `GTC`, `GTX`, `IOC`, ...
    pub time_in_force: String,
    /// Last update, venue ms since the epoch.
    pub update_time_ms: i64,
}

/// The one-way-mode position of a symbol (`GET /fapi/v3/positionRisk`, `positionSide` `BOTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRisk {
    /// The symbol.
    pub symbol: String,
    /// Signed position size (negative: short).
    pub position_amt: String,
    /// Average entry price.
    pub entry_price: String,
    /// Last update, venue ms since the epoch.
    pub update_time_ms: i64,
}

/// An order as the venue answered its placement (`POST /fapi/v1/order` with
/// `newOrderRespType=RESULT`: a `MARKET` order's fills are in the answer). Decimals stay strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    /// The symbol.
    pub symbol: String,
    /// The venue's order id.
    pub order_id: u64,
    /// The client order id.
    pub client_order_id: String,
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED`, `EXPIRED`, ...
    pub status: String,
    /// Quantity ordered.
    pub orig_qty: String,
    /// Quantity filled.
    pub executed_qty: String,
    /// Average fill price (`"0"` or absent before a fill).
    pub avg_price: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// No credentials.
    Public,
    /// The API key header only.
    Key,
    /// The API key header and a signature.
    Signed,
}

#[derive(Debug, Default)]
struct Gate {
    usage: Usage,
    /// No request until then; `true`: a ban (418), `false`: a rate limit (429).
    blocked: Option<(Instant, bool)>,
}

/// A blocking signed REST client for one API key at Binance USDⓈ-M (or `ringmaker venue`).
///
/// Calls take `&self`; the client is meant for one housekeeping thread (two threads calling at
/// once may both send before either sees a 429).
pub struct RestClient {
    base: String,
    agent: ureq::Agent,
    signer: Arc<dyn Signer + Send + Sync>,
    opts: RestOptions,
    gate: Mutex<Gate>,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .field("opts", &self.opts)
            .field("gate", &*self.lock())
            .finish_non_exhaustive()
    }
}

/// The largest `recvWindow` Binance accepts, ms.
pub const MAX_RECV_WINDOW_MS: u32 = 60_000;

/// `Retry-After` when a 429 has none (Binance's limits are per minute).
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// `Retry-After` when a 418 has none (Binance's first ban).
const DEFAULT_BAN_WAIT: Duration = Duration::from_secs(120);

impl RestClient {
    /// A client for `base_url` (`https://fapi.binance.com`, or a test venue's REST URL), trusting
    /// the certificates of `ca_cert` (PEM) or, with `None`, the public web roots; requests are
    /// signed by `signer`.
    pub fn new(
        base_url: &str,
        ca_cert: Option<&Path>,
        signer: Arc<dyn Signer + Send + Sync>,
        opts: RestOptions,
    ) -> Result<RestClient, RestError> {
        let base = base_url.trim_end_matches('/');
        let Some(host) = base.strip_prefix("https://") else {
            return Err(RestError::Config(format!(
                "the base URL must be https://HOST[:PORT]: {base:?}"
            )));
        };
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return Err(RestError::Config(format!(
                "the base URL must be https://HOST[:PORT] with no path: {base:?}"
            )));
        }
        if !(1..=MAX_RECV_WINDOW_MS).contains(&opts.recv_window_ms) {
            return Err(RestError::Config(format!(
                "recvWindow must be 1 to {MAX_RECV_WINDOW_MS} ms, not {}",
                opts.recv_window_ms
            )));
        }
        let tls = feeds::net::tls::client_config(ca_cert)
            .map_err(|e| RestError::Config(e.to_string()))?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls)
            .timeout(opts.timeout)
            // The API key header must not follow a redirect elsewhere.
            .redirects(0)
            .https_only(true)
            .user_agent(concat!("ringmaker/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(RestClient {
            base: base.to_string(),
            agent,
            signer,
            opts,
            gate: Mutex::new(Gate::default()),
        })
    }

    /// The counters of the last responses.
    pub fn usage(&self) -> Usage {
        self.lock().usage
    }

    /// How long calls are still refused after a 429 or 418 (`None`: they are sent).
    pub fn blocked_for(&self) -> Option<Duration> {
        let g = self.lock();
        g.blocked
            .and_then(|(until, _)| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// `POST /fapi/v1/listenKey`: the user data stream's listen key (a new one, or the active
    /// one, whose validity is extended).
    pub fn listen_key_start(&self) -> Result<String, RestError> {
        #[derive(Deserialize)]
        struct Resp {
            #[serde(rename = "listenKey")]
            listen_key: String,
        }
        let body = self.call("POST", "/fapi/v1/listenKey", &[], Auth::Key)?;
        Ok(decode::<Resp>(&body)?.listen_key)
    }

    /// `PUT /fapi/v1/listenKey`: extends the listen key's validity by 60 minutes.
    pub fn listen_key_keepalive(&self) -> Result<(), RestError> {
        self.call("PUT", "/fapi/v1/listenKey", &[], Auth::Key)
            .map(drop)
    }

    /// `DELETE /fapi/v1/listenKey`: closes the user data stream.
    pub fn listen_key_close(&self) -> Result<(), RestError> {
        self.call("DELETE", "/fapi/v1/listenKey", &[], Auth::Key)
            .map(drop)
    }

    /// `POST /fapi/v1/countdownCancelAll`: arms the dead-man switch of `symbol` (every open
    /// order of it is cancelled unless it is armed again within `countdown_ms`); 0 disarms it.
    pub fn countdown_cancel_all(&self, symbol: &str, countdown_ms: u64) -> Result<(), RestError> {
        let ms = countdown_ms.to_string();
        self.call(
            "POST",
            "/fapi/v1/countdownCancelAll",
            &[("symbol", symbol), ("countdownTime", &ms)],
            Auth::Signed,
        )
        .map(drop)
    }

    /// `GET /fapi/v1/openOrders`: the open orders of `symbol`.
    pub fn open_orders(&self, symbol: &str) -> Result<Vec<OpenOrder>, RestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            symbol: String,
            client_order_id: String,
            order_id: u64,
            side: String,
            price: String,
            orig_qty: String,
            executed_qty: String,
            status: String,
            time_in_force: String,
            update_time: i64,
        }
        let body = self.call(
            "GET",
            "/fapi/v1/openOrders",
            &[("symbol", symbol)],
            Auth::Signed,
        )?;
        decode::<Vec<Raw>>(&body)?
            .into_iter()
            .map(|r| {
                let side = match r.side.as_str() {
                    "BUY" => Side::Bid,
                    "SELL" => Side::Ask,
                    other => {
                        return Err(RestError::Decode(format!(
                            "order {}: side {other:?}",
                            r.order_id
                        )))
                    }
                };
                Ok(OpenOrder {
                    symbol: r.symbol,
                    client_order_id: r.client_order_id,
                    order_id: r.order_id,
                    side,
                    price: r.price,
                    orig_qty: r.orig_qty,
                    executed_qty: r.executed_qty,
                    status: r.status,
                    time_in_force: r.time_in_force,
                    update_time_ms: r.update_time,
                })
            })
            .collect()
    }

    /// `GET /fapi/v3/positionRisk`: the one-way-mode position (`positionSide` `BOTH`) of
    /// `symbol`; `None` if the venue lists none (v3 lists only symbols with a position or open
    /// orders: no position).
    pub fn position(&self, symbol: &str) -> Result<Option<PositionRisk>, RestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            symbol: String,
            position_side: String,
            position_amt: String,
            entry_price: String,
            update_time: i64,
        }
        let body = self.call(
            "GET",
            "/fapi/v3/positionRisk",
            &[("symbol", symbol)],
            Auth::Signed,
        )?;
        Ok(decode::<Vec<Raw>>(&body)?
            .into_iter()
            .find(|r| r.position_side == "BOTH" && r.symbol.eq_ignore_ascii_case(symbol))
            .map(|r| PositionRisk {
                symbol: r.symbol,
                position_amt: r.position_amt,
                entry_price: r.entry_price,
                update_time_ms: r.update_time,
            }))
    }

    /// `DELETE /fapi/v1/allOpenOrders`: cancels every open order of `symbol`.
    pub fn cancel_all(&self, symbol: &str) -> Result<(), RestError> {
        self.call(
            "DELETE",
            "/fapi/v1/allOpenOrders",
            &[("symbol", symbol)],
            Auth::Signed,
        )
        .map(drop)
    }

    /// `POST /fapi/v1/order`: a `MARKET` order with `reduceOnly=true` for `quantity` (a plain
    /// positive decimal on the symbol's step, e.g. `"0.013"`) under `client_order_id`
    /// (`[.A-Z:/a-z0-9_-]{1,36}`, Binance's rule), answered with its fills
    /// (`newOrderRespType=RESULT`). The venue refuses it (`-2022`) if it would not shrink the
    /// position. A parameter outside those rules is [`RestError::Param`], and nothing is sent.
    ///
    /// Not retried here: after a [`RestError::Transport`] or [`RestError::Server`] the order may
    /// or may not exist; read the position before sending another.
    pub fn place_market_reduce_only(
        &self,
        symbol: &str,
        side: Side,
        quantity: &str,
        client_order_id: &str,
    ) -> Result<PlacedOrder, RestError> {
        check_market_order(symbol, quantity, client_order_id)?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            symbol: String,
            order_id: u64,
            client_order_id: String,
            status: String,
            orig_qty: String,
            executed_qty: String,
            #[serde(default)]
            avg_price: Option<String>,
        }
        let body = self.call(
            "POST",
            "/fapi/v1/order",
            &market_reduce_only_params(symbol, side, quantity, client_order_id),
            Auth::Signed,
        )?;
        let r = decode::<Raw>(&body)?;
        Ok(PlacedOrder {
            symbol: r.symbol,
            order_id: r.order_id,
            client_order_id: r.client_order_id,
            status: r.status,
            orig_qty: r.orig_qty,
            executed_qty: r.executed_qty,
            avg_price: r.avg_price.unwrap_or_else(|| "0".into()),
        })
    }

    /// `GET /fapi/v1/time`: the venue's clock, ms since the epoch.
    pub fn server_time(&self) -> Result<i64, RestError> {
        #[derive(Deserialize)]
        struct Resp {
            #[serde(rename = "serverTime")]
            server_time: i64,
        }
        let body = self.call("GET", "/fapi/v1/time", &[], Auth::Public)?;
        Ok(decode::<Resp>(&body)?.server_time)
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        // The gate holds plain values: a panic elsewhere cannot leave it half-updated.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses the call while a 429 or 418 holds.
    fn check_gate(&self) -> Result<(), RestError> {
        let mut g = self.lock();
        if let Some((until, banned)) = g.blocked {
            let now = Instant::now();
            if now < until {
                let retry_after = until - now;
                return Err(if banned {
                    RestError::Banned { retry_after }
                } else {
                    RestError::RateLimited { retry_after }
                });
            }
            g.blocked = None;
        }
        Ok(())
    }

    /// Sends one request and returns the body of a 2xx answer.
    fn call(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        auth: Auth,
    ) -> Result<Vec<u8>, RestError> {
        self.check_gate()?;
        let mut query = String::with_capacity(256);
        for (k, v) in params {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(k);
            query.push('=');
            url_encode_into(v.as_bytes(), &mut query);
        }
        let mut signature = Vec::new();
        if auth == Auth::Signed {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!(
                "timestamp={}&recvWindow={}",
                wall_ms(),
                self.opts.recv_window_ms
            ));
            self.signer.sign_into(query.as_bytes(), &mut signature);
        }
        let signature = String::from_utf8_lossy(&signature).into_owned();
        let mut url = String::with_capacity(self.base.len() + path.len() + query.len() + 128);
        url.push_str(&self.base);
        url.push_str(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        if auth == Auth::Signed {
            url.push_str("&signature=");
            url_encode_into(signature.as_bytes(), &mut url);
        }
        let clean = |s: String| scrub(s, &[&url, &query, &signature]);

        let mut req = self.agent.request(method, &url);
        if auth != Auth::Public {
            req = req.set("X-MBX-APIKEY", self.signer.api_key());
        }
        let res = match method {
            // An explicit empty body: `Content-Length: 0`.
            "POST" | "PUT" => req.send_bytes(&[]),
            _ => req.call(),
        };
        let resp = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(RestError::Transport(clean(describe_transport(&t))))
            }
        };
        let status = resp.status();
        let retry_after = resp
            .header("Retry-After")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        self.record(&resp);
        let mut body = Vec::new();
        let read = resp
            .into_reader()
            .take(self.opts.max_body + 1)
            .read_to_end(&mut body);
        match status {
            429 | 418 => {
                let banned = status == 418;
                let retry_after = retry_after.unwrap_or(if banned {
                    DEFAULT_BAN_WAIT
                } else {
                    DEFAULT_RATE_LIMIT_WAIT
                });
                self.block(retry_after, banned);
                return Err(if banned {
                    RestError::Banned { retry_after }
                } else {
                    RestError::RateLimited { retry_after }
                });
            }
            500..=599 => return Err(RestError::Server { status }),
            _ => {}
        }
        if let Err(e) = read {
            return Err(RestError::Transport(clean(format!(
                "reading the body: {e}"
            ))));
        }
        if body.len() as u64 > self.opts.max_body {
            return Err(RestError::Decode(format!(
                "the body is larger than {} bytes",
                self.opts.max_body
            )));
        }
        if (200..300).contains(&status) {
            return Ok(body);
        }
        #[derive(Deserialize)]
        struct BinanceError {
            code: i64,
            msg: String,
        }
        Err(match serde_json::from_slice::<BinanceError>(&body) {
            Ok(e) => RestError::Venue {
                status,
                code: e.code,
                msg: clean(e.msg),
            },
            Err(_) => RestError::Venue {
                status,
                code: 0,
                msg: clean(String::from_utf8_lossy(&body).chars().take(200).collect()),
            },
        })
    }

    fn record(&self, resp: &ureq::Response) {
        let num = |h: &str| resp.header(h).and_then(|v| v.trim().parse::<u32>().ok());
        let mut g = self.lock();
        let u = &mut g.usage;
        if let Some(v) = num("X-MBX-USED-WEIGHT-1M") {
            u.used_weight_1m = Some(v);
        }
        if let Some(v) = num("X-MBX-ORDER-COUNT-10S") {
            u.order_count_10s = Some(v);
        }
        if let Some(v) = num("X-MBX-ORDER-COUNT-1M") {
            u.order_count_1m = Some(v);
        }
        u.updated = Some(Instant::now());
    }

    fn block(&self, wait: Duration, banned: bool) {
        let until = Instant::now() + wait;
        let mut g = self.lock();
        // A ban outlasts a rate limit; a later end wins.
        g.blocked = Some(match g.blocked {
            Some((u, b)) if u > until => (u, b || banned),
            _ => (until, banned),
        });
    }
}

/// The parameters of a reduce-only market order, in the order sent.
fn market_reduce_only_params<'a>(
    symbol: &'a str,
    side: Side,
    quantity: &'a str,
    client_order_id: &'a str,
) -> [(&'static str, &'a str); 7] {
    [
        ("symbol", symbol),
        (
            "side",
            match side {
                Side::Bid => "BUY",
                Side::Ask => "SELL",
            },
        ),
        ("type", "MARKET"),
        ("quantity", quantity),
        ("reduceOnly", "true"),
        ("newClientOrderId", client_order_id),
        ("newOrderRespType", "RESULT"),
    ]
}

/// Refuses what Binance would refuse anyway, before anything is signed or sent.
fn check_market_order(
    symbol: &str,
    quantity: &str,
    client_order_id: &str,
) -> Result<(), RestError> {
    if symbol.is_empty()
        || symbol.len() > 32
        || !symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(RestError::Param(format!("symbol {symbol:?}")));
    }
    let plain = match quantity.split_once('.') {
        None => !quantity.is_empty() && quantity.bytes().all(|b| b.is_ascii_digit()),
        Some((i, f)) => {
            !i.is_empty()
                && !f.is_empty()
                && i.bytes().all(|b| b.is_ascii_digit())
                && f.bytes().all(|b| b.is_ascii_digit())
        }
    };
    if !plain || quantity.len() > 40 || quantity.bytes().all(|b| b == b'0' || b == b'.') {
        return Err(RestError::Param(format!(
            "quantity {quantity:?}: a positive plain decimal"
        )));
    }
    if client_order_id.is_empty()
        || client_order_id.len() > 36
        || !client_order_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b))
    {
        return Err(RestError::Param(format!(
            "newClientOrderId {client_order_id:?}: 1 to 36 of [.A-Z:/a-z0-9_-]"
        )));
    }
    Ok(())
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RestError> {
    serde_json::from_slice(body).map_err(|e| RestError::Decode(e.to_string()))
}

/// Wall-clock ms since the epoch (requests are stamped with the local clock).
fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Percent-encodes `bytes` into `out`: everything but `A-Z a-z 0-9 - _ . ~`.
fn url_encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// A transport error without its URL (which holds the signed query).
fn describe_transport(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

/// `s` with every non-empty one of `secrets` replaced by `<redacted>`.
fn scrub(mut s: String, secrets: &[&str]) -> String {
    for x in secrets {
        if !x.is_empty() && s.contains(x) {
            s = s.replace(x, "<redacted>");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_unreserved_and_encodes_the_rest() {
        let mut s = String::new();
        url_encode_into(b"BTCUSDT-1_2.3~", &mut s);
        assert_eq!(s, "BTCUSDT-1_2.3~");
        s.clear();
        url_encode_into(b"a+b/c=d& e", &mut s);
        assert_eq!(s, "a%2Bb%2Fc%3Dd%26%20e");
    }

    #[test]
    fn scrub_removes_every_secret() {
        let s = scrub(
            "https://h/p?x=1&signature=abc: refused at abc".to_string(),
            &["https://h/p?x=1&signature=abc", "abc", ""],
        );
        assert_eq!(s, "<redacted>: refused at <redacted>");
    }

    #[test]
    fn a_reduce_only_market_order_is_written_as_binance_documents_it() {
        let p = market_reduce_only_params("BTCUSDT", Side::Ask, "0.013", "rm-flat-x-1");
        let mut q = String::new();
        for (k, v) in p {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(k);
            q.push('=');
            url_encode_into(v.as_bytes(), &mut q);
        }
        assert_eq!(
            q,
            "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.013&reduceOnly=true&\
             newClientOrderId=rm-flat-x-1&newOrderRespType=RESULT"
        );
        assert_eq!(
            market_reduce_only_params("BTCUSDT", Side::Bid, "1", "c")[1],
            ("side", "BUY")
        );
    }

    #[test]
    fn bad_order_parameters_are_refused_before_sending() {
        assert_eq!(check_market_order("BTCUSDT", "0.013", "rm-flat-1"), Ok(()));
        assert_eq!(check_market_order("BTCUSDT_240927", "2", "a"), Ok(()));
        assert_eq!(
            check_market_order("BTC/USDT", "2", "a"),
            Err(RestError::Param("symbol \"BTC/USDT\"".into()))
        );
        for q in [
            "", "0", "0.000", "-1", "1e3", ".5", "5.", "1.2.3", "0x10", " 1", "1&a=b",
        ] {
            let e = check_market_order("BTCUSDT", q, "c").unwrap_err();
            assert!(matches!(e, RestError::Param(_)), "{q:?}: {e:?}");
        }
        for c in ["", "a b", "x".repeat(37).as_str(), "a&b", "é"] {
            let e = check_market_order("BTCUSDT", "1", c).unwrap_err();
            assert!(matches!(e, RestError::Param(_)), "{c:?}: {e:?}");
        }
        for s in ["", "BTC&USDT", "btc usdt"] {
            assert!(check_market_order(s, "1", "c").is_err(), "{s:?}");
        }
    }

    #[test]
    fn a_base_url_must_be_https_without_a_path() {
        let signer: Arc<dyn Signer + Send + Sync> = Arc::new(
            super::super::sign::Credentials::hmac("k", &super::super::sign::Secret::new("s"))
                .unwrap(),
        );
        for bad in [
            "http://fapi.binance.com",
            "fapi.binance.com",
            "https://",
            "https://h/fapi",
            "https://u@h",
        ] {
            let e = RestClient::new(bad, None, Arc::clone(&signer), RestOptions::default())
                .unwrap_err();
            assert!(matches!(e, RestError::Config(_)), "{bad}: {e:?}");
        }
        for recv_window_ms in [0, MAX_RECV_WINDOW_MS + 1] {
            let opts = RestOptions {
                recv_window_ms,
                ..RestOptions::default()
            };
            let e = RestClient::new("https://h", None, Arc::clone(&signer), opts).unwrap_err();
            assert!(matches!(e, RestError::Config(_)), "{e:?}");
        }
        let c = RestClient::new(
            "https://fapi.binance.com/",
            None,
            signer,
            RestOptions::default(),
        )
        .unwrap();
        assert_eq!(c.base, "https://fapi.binance.com");
        assert_eq!(c.usage(), Usage::default());
        assert_eq!(c.blocked_for(), None);
    }
}
