//! What the server hands the exchange core, and what it gets back: an HTTP request already
//! parsed (method, path, query and form parameters in the order sent, headers), and a response
//! (status, headers, JSON body). The WebSocket API speaks JSON text frames, one request per frame.

/// A parsed HTTP request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: String,
    /// The path, without the query (`/fapi/v1/order`).
    pub path: String,
    /// The query string exactly as sent (what a signature covers), without the `?`.
    pub query: String,
    /// The body exactly as sent (`application/x-www-form-urlencoded` for signed POSTs).
    pub body: String,
    /// Headers, names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The client's address (`127.0.0.1:54321`), for per-IP limits.
    pub peer: String,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code (200, 400, 401, 404, 418, 429, 5xx).
    pub status: u16,
    /// Extra headers (`X-MBX-USED-WEIGHT-1M`, `Retry-After`, ...).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

impl Response {
    /// 200 with a JSON body.
    pub fn ok(body: impl Into<String>) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A Binance error body `{"code":-1022,"msg":"..."}` with an HTTP status.
    pub fn error(status: u16, code: i32, msg: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: serde_json::json!({ "code": code, "msg": msg }).to_string(),
        }
    }
}

/// A user data stream: the events (JSON text, one per message) of one listen key, as the exchange
/// produces them. The server forwards each to the WebSocket, honouring the `events` allow-list
/// the exchange already applied. Closed (disconnected) when the key expires or is deleted, after
/// a last `listenKeyExpired` event.
pub type UserStream = std::sync::mpsc::Receiver<String>;

/// The exchange core behind the server: accounts, orders, matching, user data. Everything that
/// is not public market data goes through it. Times are the venue clock in ms since the epoch
/// (the replay clock: recorded time, scaled by `--speed`), which the server passes in so that a
/// run is deterministic for the same data and requests.
pub trait Exchange: Send + Sync {
    /// A REST request the server does not answer itself (anything but the public market-data
    /// endpoints). `None`: not an endpoint of this exchange (the server answers 404).
    fn rest(&self, req: &Request, now_ms: i64) -> Option<Response>;

    /// One WebSocket API request (a JSON text frame on `/ws-fapi/v1`) from the connection
    /// `conn` (a server-assigned id, stable for the connection's life): the response frame.
    fn ws_api(&self, conn: u64, peer: &str, text: &str, now_ms: i64) -> String;

    /// Opens the user data stream of `listen_key` with the `events` allow-list
    /// (`ORDER_TRADE_UPDATE/ACCOUNT_UPDATE`, `None`: every event); `None` if the key is unknown
    /// or expired.
    fn user_stream(
        &self,
        listen_key: &str,
        events: Option<&str>,
        now_ms: i64,
    ) -> Option<UserStream>;

    /// Market events of the replay (book levels, resets, best bid/offer, trades), in order, at
    /// the venue clock: the exchange matches resting orders against them.
    fn on_market(&self, events: &[engine::Event], now_ms: i64);

    /// The venue clock advanced to `now_ms` with no market event (latencies fall due, listen
    /// keys expire).
    fn on_time(&self, now_ms: i64);

    /// Charges `weight` of request weight to `peer`'s IP at `now_ms` on the exchange's own
    /// per-IP counter, the one its signed REST and WebSocket API requests charge: the server
    /// charges the public market-data endpoints through it, so that an IP has one budget and
    /// `X-MBX-USED-WEIGHT-1M` reports the sum. `None` (the default): this exchange keeps no
    /// per-IP counter, and the server charges its own with the same rules.
    fn charge_ip(&self, _peer: &str, _weight: u32, _now_ms: i64) -> Option<crate::limits::Charged> {
        None
    }

    /// Expires every listen key now (the `listenkey-expire` fault): each sends
    /// `listenKeyExpired` on its streams, which then close. The number expired; the default
    /// (an exchange without listen keys) does nothing.
    fn expire_listen_keys(&self, _now_ms: i64) -> usize {
        0
    }
}
