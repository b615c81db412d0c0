//! The venue's server: one TLS port routed by path as Binance USDⓈ-M routes today. Each
//! connection gets a thread (at most [`Limits::max_connections`]); its HTTP/1.1 request head
//! decides between REST (keep-alive) and a WebSocket upgrade: market streams (`/ws`, `/stream`,
//! `/public/...`, `/market/...`), the WebSocket API (`/ws-fapi/v1`) and user data
//! (`/private/ws`). Public market data is answered here; everything else goes to the
//! [`Exchange`].

use crate::api::{Exchange, Request, Response, UserStream};
use crate::faults::{AckFault, Fault, Faults, RestFault, HOLD};
use crate::http::{self, param, query_params, ReadError};
use crate::limits::{Charged, IpWeights};
use crate::market::{self, Clock, Market, Published, Replay, Route};
use crate::tls::Tls;
use anyhow::Context as _;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Connection limits and timers.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most connections open at once; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Time to read one whole HTTP request (and the idle time allowed between keep-alive
    /// requests).
    pub request_timeout: Duration,
    /// WebSocket: the server's ping interval (Binance: 3 minutes).
    pub ping_interval: Duration,
    /// WebSocket: a connection with no pong for this long is closed (Binance: 10 minutes).
    pub pong_timeout: Duration,
    /// WebSocket: largest connection age (Binance: 24 h).
    pub max_age: Duration,
    /// WebSocket market streams: most incoming messages a second (Binance: 10).
    pub max_incoming_per_sec: u32,
    /// WebSocket market streams: most streams on one connection (Binance: 1,024).
    pub max_streams: usize,
    /// Stream messages queued for one connection; a connection that falls further behind is
    /// disconnected.
    pub subscriber_queue: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            request_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(180),
            pong_timeout: Duration::from_secs(600),
            max_age: Duration::from_secs(24 * 3600),
            max_incoming_per_sec: 10,
            max_streams: 1024,
            subscriber_queue: 4096,
        }
    }
}

/// What the venue serves and where.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The recordings: one or more files per instrument of the config, bound to instruments as
    /// `--data` binds them (`[VENUE:]SYMBOL=PATH`, or by what a file holds).
    pub data: Vec<feeds::DataSpec>,
    /// The engine config: its instruments make `exchangeInfo`.
    pub engine: engine::Config,
    /// The address to listen on (`127.0.0.1:0`: a free port).
    pub listen: SocketAddr,
    /// Replay speed (1: recorded pace; 0: as fast as possible). Not used with `manual_clock`.
    pub speed: f64,
    /// A manual venue clock (`--manual-clock`): it stands still until `POST /venue/clock`
    /// (from 127.0.0.1) moves it, for deterministic sessions (see [`crate::market`]).
    pub manual_clock: bool,
    /// Where `cert.pem` is written.
    pub cert_dir: PathBuf,
    /// The accounts file, for the exchange core.
    pub accounts: Option<PathBuf>,
    /// Connection limits and timers.
    pub limits: Limits,
    /// Faults on demand (`--faults SPEC`, parsed by [`crate::faults::parse`]).
    pub faults: Vec<Fault>,
    /// Whether `/venue/faults` is served (to 127.0.0.1 only; otherwise 404).
    pub faults_control: bool,
}

impl ServerConfig {
    /// Defaults for everything but the data and the engine config: `127.0.0.1:0`, speed 1,
    /// `./venue-cert`. `data`: plain files, bound to instruments by what they hold (or to the
    /// only instrument); set [`ServerConfig::data`] for explicit bindings.
    pub fn new(data: Vec<PathBuf>, engine: engine::Config) -> ServerConfig {
        ServerConfig {
            data: feeds::DataSpec::plain(data),
            engine,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            speed: 1.0,
            manual_clock: false,
            cert_dir: PathBuf::from("venue-cert"),
            accounts: None,
            limits: Limits::default(),
            faults: Vec::new(),
            faults_control: false,
        }
    }
}

/// An exchange with nothing but the public data: every other REST path is 404, the WebSocket
/// API answers an error, no listen key exists.
#[derive(Debug, Default)]
pub struct NoExchange;

impl Exchange for NoExchange {
    fn rest(&self, _req: &Request, _now_ms: i64) -> Option<Response> {
        None
    }

    fn ws_api(&self, _conn: u64, _peer: &str, text: &str, _now_ms: i64) -> String {
        let id = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("id").cloned())
            .unwrap_or(Value::Null);
        json!({"id": id, "status": 400, "error": {"code": -1000, "msg": "No order entry on this venue."}})
            .to_string()
    }

    fn user_stream(&self, _key: &str, _events: Option<&str>, _now_ms: i64) -> Option<UserStream> {
        None
    }

    fn on_market(&self, _events: &[engine::Event], _now_ms: i64) {}

    fn on_time(&self, _now_ms: i64) {}
}

struct Shared {
    tls: Arc<rustls::ServerConfig>,
    market: Arc<Market>,
    exchange: Arc<dyn Exchange>,
    engine: engine::Config,
    limits: Limits,
    stop: Arc<AtomicBool>,
    connections: AtomicUsize,
    next_conn: AtomicU64,
    /// Request weight per IP when the exchange keeps none ([`Exchange::charge_ip`] is `None`).
    weights: std::sync::Mutex<IpWeights>,
    faults: Arc<Faults>,
}

/// The venue: start it, read its URLs, shut it down.
pub struct Venue;

impl std::fmt::Debug for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Venue")
    }
}

/// A running venue.
#[derive(Debug)]
pub struct VenueHandle {
    addr: SocketAddr,
    cert_path: PathBuf,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    market: Arc<Market>,
}

impl Venue {
    /// Generates the certificate, opens the recordings and replays them up to the first synced
    /// book, binds the port, and starts the replay and accept threads.
    pub fn start(cfg: ServerConfig, exchange: Arc<dyn Exchange>) -> anyhow::Result<VenueHandle> {
        if !(0.0..=MAX_SPEED).contains(&cfg.speed) {
            anyhow::bail!(
                "--speed must be a number from 0 to {MAX_SPEED} (0: as fast as possible), not {}",
                cfg.speed
            );
        }
        if cfg.data.is_empty() {
            anyhow::bail!("no recording given (--data)");
        }
        let tls = Tls::generate(&cfg.cert_dir)?;
        let clock = if cfg.manual_clock {
            Clock::manual()
        } else {
            Clock::new(cfg.speed)
        };
        let replay = Replay::open(&cfg.engine, &cfg.data, clock, Arc::clone(&exchange))?;
        let market = Arc::clone(replay.market());
        let faults = Arc::new(Faults::new(cfg.faults, cfg.faults_control));
        faults.set_origin(market.clock.origin_ms());
        market.hub.set_faults(Arc::clone(&faults));
        let listener = TcpListener::bind(cfg.listen)
            .with_context(|| format!("listening on {}", cfg.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            tls: tls.config,
            market: Arc::clone(&market),
            exchange: Arc::clone(&exchange),
            engine: cfg.engine,
            limits: cfg.limits,
            stop: Arc::clone(&stop),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            weights: Default::default(),
            faults: Arc::clone(&faults),
        });
        let replay_stop = Arc::clone(&stop);
        let t1 = std::thread::Builder::new()
            .name("venue-replay".into())
            .spawn(move || replay.run(replay_stop))?;
        let t3 = {
            let (stop, market, exchange) = (
                Arc::clone(&stop),
                Arc::clone(&market),
                Arc::clone(&exchange),
            );
            std::thread::Builder::new()
                .name("venue-faults".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let now = market.clock.now_ms();
                        if faults.on_time(now) {
                            exchange.expire_listen_keys(now);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })?
        };
        let t2 = std::thread::Builder::new()
            .name("venue-accept".into())
            .spawn(move || accept_loop(listener, shared))?;
        Ok(VenueHandle {
            addr,
            cert_path: tls.cert_path,
            stop,
            threads: vec![t1, t2, t3],
            market,
        })
    }
}

impl VenueHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`.
    pub fn rest_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `wss://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("wss://{}", self.addr)
    }

    /// The certificate (PEM) clients should trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The venue clock now, ms.
    pub fn now_ms(&self) -> i64 {
        self.market.clock.now_ms()
    }

    /// The venue clock's origin (the replay start, which fault times count from), ms.
    pub fn origin_ms(&self) -> i64 {
        self.market.clock.origin_ms()
    }

    /// Whether the replay has run out of data.
    pub fn data_ended(&self) -> bool {
        self.market.ended.load(Ordering::SeqCst)
    }

    /// Stops accepting, tells every connection to close, and waits for the replay and accept
    /// threads (connection threads notice within their poll interval).
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for VenueHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, peer)) => {
                let n = shared.connections.fetch_add(1, Ordering::SeqCst);
                if n >= shared.limits.max_connections {
                    shared.connections.fetch_sub(1, Ordering::SeqCst);
                    drop(tcp);
                    continue;
                }
                let s = Arc::clone(&shared);
                let spawned =
                    std::thread::Builder::new()
                        .name("venue-conn".into())
                        .spawn(move || {
                            serve_connection(&s, tcp, peer);
                            s.connections.fetch_sub(1, Ordering::SeqCst);
                        });
                if spawned.is_err() {
                    shared.connections.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if http::is_timeout(&e) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

type TlsStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// How often a blocked read wakes to check the stop flag and deadlines.
const POLL: Duration = Duration::from_millis(100);

fn serve_connection(shared: &Shared, tcp: TcpStream, peer: SocketAddr) {
    if tcp.set_nonblocking(false).is_err()
        || tcp.set_read_timeout(Some(POLL)).is_err()
        || tcp
            .set_write_timeout(Some(Duration::from_secs(10)))
            .is_err()
    {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&shared.tls)) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let peer_s = peer.to_string();
    let mut buf = Vec::new();
    // drop-connections: a keep-alive connection closes when the generation moves.
    let generation = shared.faults.generation();
    let stop = || shared.stop.load(Ordering::Relaxed) || shared.faults.generation() != generation;
    loop {
        let deadline = Instant::now() + shared.limits.request_timeout;
        match http::read_request(&mut stream, &mut buf, deadline, &stop, &peer_s) {
            Ok(p) => {
                if let Some(key) = p.ws_key {
                    upgrade(shared, stream, p.req, &key, buf);
                    return;
                }
                let Some(resp) = rest_with_faults(shared, &p.req) else {
                    hold(shared, stream, &stop);
                    return;
                };
                if http::write_response(&mut stream, &resp, p.keep_alive).is_err() || !p.keep_alive
                {
                    close_tls(stream);
                    return;
                }
            }
            Err(ReadError::Bad(status, msg)) => {
                let resp = Response::error(status, -1100, msg);
                let _ = http::write_response(&mut stream, &resp, false);
                close_tls(stream);
                return;
            }
            // An idle keep-alive connection ends with a TLS close, not a bare FIN.
            Err(ReadError::Timeout) => {
                close_tls(stream);
                return;
            }
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
        }
    }
}

/// Holds a request unanswered until the client gives up (closes), [`HOLD`] passes, the server
/// stops or the connections are dropped; then closes the connection.
fn hold(shared: &Shared, mut stream: TlsStream, stop: &impl http::Stop) {
    let until = Instant::now() + HOLD;
    let mut chunk = [0u8; 1024];
    while Instant::now() < until && !stop.stopped() && !shared.stop.load(Ordering::Relaxed) {
        match std::io::Read::read(&mut stream, &mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if http::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
    let _ = stream.sock.shutdown(std::net::Shutdown::Both);
}

/// A REST request through the faults: the control endpoint, `rest-5xx`, `rest-timeout`, then
/// the request and the `ack-*` faults of an order placement. `None`: hold it unanswered.
fn rest_with_faults(shared: &Shared, req: &Request) -> Option<Response> {
    if req.path == "/venue/faults" {
        return Some(fault_control(shared, req));
    }
    if req.path == "/venue/clock" {
        return Some(clock_control(shared, req));
    }
    let now = shared.market.clock.now_ms();
    let target = format!("{} {}", req.method, req.path);
    match shared.faults.on_rest(now, &target) {
        RestFault::Pass => {}
        RestFault::Fail => {
            return Some(Response::error(
                503,
                -1001,
                "Internal error; unable to process your request. Please try again.",
            ))
        }
        RestFault::Hold => return None,
    }
    let resp = rest(shared, req);
    if req.method == "POST" && req.path == "/fapi/v1/order" {
        let now = shared.market.clock.now_ms();
        match shared.faults.on_ack(now, &target) {
            AckFault::Send => {}
            AckFault::Delay(d) => std::thread::sleep(d),
            AckFault::Drop => return None,
        }
    }
    Some(resp)
}

/// `GET /venue/faults` (the schedule and what fired), `POST /venue/faults` (a spec applied now):
/// only with `--faults-control`, only from 127.0.0.1; otherwise 404 as any unknown path.
fn fault_control(shared: &Shared, req: &Request) -> Response {
    let faults = &shared.faults;
    if !faults.control() || ip_of(&req.peer) != "127.0.0.1" {
        return not_found(req);
    }
    match req.method.as_str() {
        "GET" => Response::ok(faults.report().to_string()),
        "POST" => {
            let now = faults.since_start(shared.market.clock.now_ms());
            match crate::faults::parse(&req.body, Some(now)) {
                Ok(list) => {
                    let applied: Vec<String> = list.iter().map(|f| f.to_string()).collect();
                    faults.add(list);
                    Response::ok(json!({ "applied": applied }).to_string())
                }
                Err(e) => Response::error(400, -1100, &e.to_string()),
            }
        }
        _ => not_found(req),
    }
}

/// The fastest `--speed` (0, as fast as possible, aside): 10,000× runs a day of venue time in
/// under 9 s.
pub const MAX_SPEED: f64 = 10_000.0;

/// How long `POST /venue/clock` waits for the replay to catch up before it answers 503.
const CLOCK_CATCH_UP: Duration = Duration::from_secs(60);

/// `GET /venue/clock` (`{"venueTime","origin","ended"}`) and `POST /venue/clock` with
/// `advance=MS` or `to=MS` (form or query): moves a manual clock and answers once the replay has
/// caught up. Only with `--manual-clock`, only from 127.0.0.1; otherwise 404 as any unknown path.
fn clock_control(shared: &Shared, req: &Request) -> Response {
    let clock = &shared.market.clock;
    if !clock.is_manual() || ip_of(&req.peer) != "127.0.0.1" {
        return not_found(req);
    }
    let state = |t: i64| {
        json!({
            "venueTime": t,
            "origin": clock.origin_ms(),
            "ended": shared.market.ended.load(Ordering::SeqCst),
        })
        .to_string()
    };
    match req.method.as_str() {
        "GET" => Response::ok(state(clock.now_ms())),
        "POST" => {
            let mut params = query_params(&req.query);
            params.extend(query_params(&req.body));
            let now = clock.now_ms();
            let num = |k: &str| param(&params, k).map(|v| v.parse::<i64>().ok());
            // At most a day a step: the replay publishes every second's mark price on the way.
            const MAX_STEP_MS: i64 = 86_400_000;
            let bad = |msg: String| Response::error(400, -1100, &msg);
            let to = match (num("advance"), num("to")) {
                (Some(Some(ms)), None) if (0..=MAX_STEP_MS).contains(&ms) => now + ms,
                (None, Some(Some(t))) if t < now => {
                    return bad(format!(
                        "the clock does not go back: to={t} is before now ({now})"
                    ))
                }
                (None, Some(Some(t))) if t - now <= MAX_STEP_MS => t,
                (None, Some(Some(t))) => {
                    return bad(format!(
                    "to={t} is more than a day ({MAX_STEP_MS} ms) after now ({now}): step in days"
                ))
                }
                _ => {
                    return bad(format!(
                        "give one of advance=MS (0 to {MAX_STEP_MS}) or to=MS (venue ms since the \
                         epoch, at most a day ahead)"
                    ))
                }
            };
            let t = clock.advance_to(to);
            let deadline = Instant::now() + CLOCK_CATCH_UP;
            while !clock.has_reached(t) {
                if Instant::now() > deadline || shared.stop.load(Ordering::SeqCst) {
                    return Response::error(
                        503,
                        -1001,
                        "the replay did not catch up with the clock in time",
                    );
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Response::ok(state(t))
        }
        _ => not_found(req),
    }
}

fn close_tls(mut s: TlsStream) {
    s.conn.send_close_notify();
    let _ = s.conn.complete_io(&mut s.sock);
    let _ = s.sock.shutdown(std::net::Shutdown::Write);
}

/// Binance's answer to a path it does not serve.
fn not_found(req: &Request) -> Response {
    let path: String = req.path.chars().take(200).collect();
    Response::error(
        404,
        -5000,
        &format!("Path {path}, Method {} is invalid", req.method),
    )
}

fn rest(shared: &Shared, req: &Request) -> Response {
    let now = shared.market.clock.now_ms();
    let public = req.method == "GET"
        && matches!(
            req.path.as_str(),
            "/fapi/v1/ping"
                | "/fapi/v1/time"
                | "/fapi/v1/exchangeInfo"
                | "/fapi/v1/depth"
                | "/fapi/v1/premiumIndex"
        );
    if !public {
        return shared
            .exchange
            .rest(req, now)
            .unwrap_or_else(|| not_found(req));
    }
    let params = query_params(&req.query);
    let (w, resp) = match req.path.as_str() {
        "/fapi/v1/ping" => (1, Response::ok("{}")),
        "/fapi/v1/time" => (1, Response::ok(json!({ "serverTime": now }).to_string())),
        "/fapi/v1/exchangeInfo" => (1, Response::ok(market::exchange_info(&shared.engine, now))),
        "/fapi/v1/depth" => {
            let limit = match param(&params, "limit") {
                None => Some(500),
                Some(l) => l
                    .parse::<usize>()
                    .ok()
                    .filter(|l| market::DEPTH_LIMITS.contains(l)),
            };
            match (param(&params, "symbol"), limit) {
                (None, _) | (Some(""), _) => (1, mandatory("symbol")),
                (Some(s), l) => match (shared.market.symbol(s), l) {
                    (None, _) => (1, invalid_symbol()),
                    (Some(_), None) => (
                        1,
                        Response::error(
                            400,
                            -1130,
                            "Data sent for parameter 'limit' is not valid.",
                        ),
                    ),
                    (Some(sm), Some(l)) => {
                        (market::depth_weight(l), Response::ok(sm.depth_json(l)))
                    }
                },
            }
        }
        _ => match param(&params, "symbol") {
            None => (
                10,
                Response::ok(
                    Value::Array(
                        shared
                            .market
                            .symbols
                            .iter()
                            .map(|sm| sm.premium_index(now))
                            .collect(),
                    )
                    .to_string(),
                ),
            ),
            Some(s) => match shared.market.symbol(s) {
                Some(sm) => (1, Response::ok(sm.premium_index(now).to_string())),
                None => (1, invalid_symbol()),
            },
        },
    };
    let charged = charge_ip(shared, &req.peer, w, now);
    let mut resp = match charged.refusal() {
        Some(r) => {
            let mut e = Response::error(r.status, r.code, &r.msg);
            e.headers
                .push(("Retry-After".into(), r.retry_after_s.to_string()));
            e
        }
        None => resp,
    };
    resp.headers
        .push(("X-MBX-USED-WEIGHT-1M".into(), charged.used.to_string()));
    resp
}

/// Charges a public request's weight to its IP: on the exchange's counter (which its signed
/// requests charge too), or on the server's own when the exchange keeps none.
fn charge_ip(shared: &Shared, peer: &str, weight: u32, now_ms: i64) -> Charged {
    shared
        .exchange
        .charge_ip(peer, weight, now_ms)
        .unwrap_or_else(|| market::lock(&shared.weights).charge(peer, weight, now_ms))
}

fn ip_of(peer: &str) -> &str {
    peer.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(peer)
}

fn mandatory(name: &str) -> Response {
    Response::error(
        400,
        -1102,
        &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

fn invalid_symbol() -> Response {
    Response::error(400, -1121, "Invalid symbol.")
}

/// What a WebSocket connection is for.
enum Session {
    Streams {
        id: u64,
        rx: Receiver<Arc<Published>>,
        combined: bool,
    },
    Api {
        conn: u64,
        peer: String,
        /// Responses held back by `ack-delay`, with when they are due.
        delayed: Vec<(Instant, String)>,
    },
    /// User data: `/private/ws?listenKey=K` (raw events of one key) or `/private/stream`
    /// (combined `{"stream":K,"data":event}`; listen keys given in the URL or by SUBSCRIBE, as
    /// Binance's own connectors do).
    User {
        subs: Vec<(String, UserStream)>,
        combined: bool,
        events: Option<String>,
    },
}

fn upgrade(shared: &Shared, mut stream: TlsStream, req: Request, key: &str, leftover: Vec<u8>) {
    let params = query_params(&req.query);
    let path = req.path.trim_end_matches('/');
    let split_streams = |s: &str| -> Vec<String> {
        s.split('/')
            .filter(|x| !x.is_empty())
            .map(http::percent_decode)
            .collect()
    };
    // (route, combined, initial streams) for a market-stream path.
    let streams_of = |prefix: &str, route: Route| -> Option<(Route, bool, Vec<String>)> {
        let rest = path.strip_prefix(prefix)?;
        if rest == "/stream" {
            Some((
                route,
                true,
                split_streams(param(&params, "streams").unwrap_or("")),
            ))
        } else if rest == "/ws" {
            Some((route, false, Vec::new()))
        } else {
            rest.strip_prefix("/ws/")
                .map(|s| (route, false, split_streams(s)))
        }
    };
    enum Kind {
        Streams(Route, bool, Vec<String>),
        Api,
        User,
    }
    let kind = if path == "/ws-fapi/v1" {
        Some(Kind::Api)
    } else if path == "/private/ws" || path == "/private/stream" {
        Some(Kind::User)
    } else {
        streams_of("/public", Route::Public)
            .or_else(|| streams_of("/market", Route::Market))
            .or_else(|| streams_of("", Route::Unrouted))
            .map(|(r, c, s)| Kind::Streams(r, c, s))
    };
    let version_ok = req.header("sec-websocket-version") == Some("13");
    let Some(kind) = kind.filter(|_| req.method == "GET" && version_ok) else {
        let resp = if version_ok {
            not_found(&req)
        } else {
            Response::error(400, -1100, "unsupported WebSocket version")
        };
        let _ = http::write_response(&mut stream, &resp, false);
        close_tls(stream);
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if std::io::Write::write_all(&mut stream, head.as_bytes()).is_err()
        || std::io::Write::flush(&mut stream).is_err()
    {
        return;
    }
    let config = WebSocketConfig {
        max_message_size: Some(1 << 20),
        max_frame_size: Some(1 << 20),
        ..WebSocketConfig::default()
    };
    let mut ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config));
    let now = shared.market.clock.now_ms();
    let hub = &shared.market.hub;
    let session = match kind {
        Kind::Streams(route, combined, initial) => {
            let (id, rx) = hub.register(route, shared.limits.subscriber_queue);
            let valid: Vec<String> = initial
                .into_iter()
                .filter(|s| market::stream_class(s).is_some())
                .take(shared.limits.max_streams)
                .collect();
            hub.subscribe(id, &valid);
            Session::Streams { id, rx, combined }
        }
        Kind::Api => Session::Api {
            conn: shared.next_conn.fetch_add(1, Ordering::SeqCst),
            peer: req.peer.clone(),
            delayed: Vec::new(),
        },
        Kind::User => {
            let combined = path == "/private/stream";
            let events = param(&params, "events").map(str::to_owned);
            let mut subs = Vec::new();
            match param(&params, "listenKey") {
                Some(key) => match shared.exchange.user_stream(key, events.as_deref(), now) {
                    Some(rx) => subs.push((key.to_owned(), rx)),
                    None => {
                        close_ws(&mut ws, 1008, "Invalid or expired listenKey.");
                        return;
                    }
                },
                None if !combined => {
                    close_ws(&mut ws, 1008, "Invalid or expired listenKey.");
                    return;
                }
                None => {}
            }
            Session::User {
                subs,
                combined,
                events,
            }
        }
    };
    let id = match &session {
        Session::Streams { id, .. } => Some(*id),
        _ => None,
    };
    run_ws(shared, &mut ws, session);
    if let Some(id) = id {
        hub.unregister(id);
    }
}

fn close_ws(ws: &mut WebSocket<TlsStream>, code: u16, reason: &str) {
    let _ = ws.close(Some(CloseFrame {
        code: code.into(),
        reason: reason.to_string().into(),
    }));
    // Give the client a moment to answer the close.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if http::is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    let _ = ws.get_mut().sock.shutdown(std::net::Shutdown::Both);
}

/// The WebSocket loop: outgoing messages from the session, incoming frames, pings, limits.
fn run_ws(shared: &Shared, ws: &mut WebSocket<TlsStream>, mut session: Session) {
    let limits = &shared.limits;
    let started = Instant::now();
    let mut last_pong = Instant::now();
    let mut last_ping = Instant::now();
    let mut window = (Instant::now(), 0u32);
    let generation = shared.faults.generation();
    let _ = ws
        .get_ref()
        .sock
        .set_read_timeout(Some(Duration::from_millis(1)));
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return close_ws(ws, 1001, "Server shutting down.");
        }
        if shared.faults.generation() != generation {
            // drop-connections: cut, no close frame.
            let _ = ws.get_mut().sock.shutdown(std::net::Shutdown::Both);
            return;
        }
        if started.elapsed() >= limits.max_age {
            return close_ws(ws, 1000, "Connection reached its maximum age.");
        }
        if last_pong.elapsed() >= limits.pong_timeout {
            return close_ws(ws, 1008, "No pong received in time.");
        }
        if last_ping.elapsed() >= limits.ping_interval {
            last_ping = Instant::now();
            let stamp = shared.market.clock.now_ms().to_string();
            if ws.write(Message::Ping(stamp.into_bytes())).is_err() {
                return;
            }
        }
        // Outgoing.
        let mut out: Vec<String> = Vec::new();
        let wait = Duration::from_millis(10);
        match &mut session {
            Session::Streams { rx, combined, .. } => {
                let fmt = |m: Arc<Published>| {
                    if *combined {
                        format!("{{\"stream\":\"{}\",\"data\":{}}}", m.stream, m.data)
                    } else {
                        m.data.to_string()
                    }
                };
                match rx.recv_timeout(wait) {
                    Ok(m) => {
                        out.push(fmt(m));
                        while let Ok(m) = rx.try_recv() {
                            out.push(fmt(m));
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return close_ws(
                            ws,
                            1008,
                            "Too slow: the connection fell behind the stream.",
                        );
                    }
                }
            }
            Session::User { subs, combined, .. } => {
                let mut ended = false;
                subs.retain(|(key, rx)| loop {
                    match rx.try_recv() {
                        Ok(m) if *combined => {
                            out.push(format!("{{\"stream\":\"{key}\",\"data\":{m}}}"))
                        }
                        Ok(m) => out.push(m),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break true,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                            ended = true;
                            break false;
                        }
                    }
                });
                if ended && !*combined && subs.is_empty() {
                    for m in out {
                        let _ = ws.write(Message::Text(m));
                    }
                    return close_ws(ws, 1000, "The listenKey expired or was closed.");
                }
                if out.is_empty() {
                    std::thread::sleep(wait);
                }
            }
            Session::Api { delayed, .. } => {
                let now = Instant::now();
                delayed.retain(|(due, m)| {
                    if *due <= now {
                        out.push(m.clone());
                        false
                    } else {
                        true
                    }
                });
            }
        }
        for m in out {
            if ws.write(Message::Text(m)).is_err() {
                return;
            }
        }
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if http::is_timeout(&e) => {}
            Err(_) => return,
        }
        // Incoming.
        let timeout = matches!(session, Session::Api { .. }).then_some(wait);
        if let Some(t) = timeout {
            let _ = ws.get_ref().sock.set_read_timeout(Some(t));
        }
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e)) if http::is_timeout(&e) => continue,
            Err(_) => return,
        };
        let is_api = matches!(session, Session::Api { .. });
        if !is_api {
            if window.0.elapsed() >= Duration::from_secs(1) {
                window = (Instant::now(), 0);
            }
            window.1 += 1;
            if window.1 > limits.max_incoming_per_sec {
                return close_ws(ws, 1008, "Too many messages: at most 10 a second.");
            }
        }
        match msg {
            Message::Pong(_) => last_pong = Instant::now(),
            Message::Text(text) => {
                let reply = match &mut session {
                    Session::Streams { id, .. } => Some(control(shared, *id, &text)),
                    Session::Api {
                        conn,
                        peer,
                        delayed,
                    } => {
                        let reply = shared.exchange.ws_api(
                            *conn,
                            peer,
                            &text,
                            shared.market.clock.now_ms(),
                        );
                        let placement = serde_json::from_str::<Value>(&text).is_ok_and(|v| {
                            v.get("method").and_then(Value::as_str) == Some("order.place")
                        });
                        if placement {
                            let now = shared.market.clock.now_ms();
                            match shared.faults.on_ack(now, "WebSocket API order.place") {
                                AckFault::Send => Some(reply),
                                AckFault::Drop => None,
                                AckFault::Delay(d) => {
                                    delayed.push((Instant::now() + d, reply));
                                    None
                                }
                            }
                        } else {
                            Some(reply)
                        }
                    }
                    Session::User { combined: true, .. } => {
                        Some(user_control(shared, &mut session, &text))
                    }
                    Session::User { .. } => None,
                };
                if let Some(r) = reply {
                    if ws.write(Message::Text(r)).is_err() {
                        return;
                    }
                }
            }
            Message::Close(_) => {
                // tungstenite answers the close; drain until it reports the end.
                let _ = ws.flush();
            }
            _ => {}
        }
    }
}

/// A live-subscription request on a market-stream connection: the reply frame.
fn control(shared: &Shared, id: u64, text: &str) -> String {
    let hub = &shared.market.hub;
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return invalid(Value::Null),
    };
    let req_id = v.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = matches!(req_id, Value::Number(_) | Value::String(_) | Value::Null);
    if !id_ok {
        return invalid(Value::Null);
    }
    let names = || -> Option<Vec<String>> {
        let p = v.get("params")?.as_array()?;
        if p.is_empty() {
            return None;
        }
        p.iter()
            .map(|x| {
                x.as_str()
                    .filter(|s| market::stream_class(s).is_some())
                    .map(str::to_string)
            })
            .collect()
    };
    match v.get("method").and_then(Value::as_str) {
        Some("SUBSCRIBE") => match names() {
            Some(n) if hub.list(id).len() + n.len() <= shared.limits.max_streams => {
                hub.subscribe(id, &n);
                json!({"result": null, "id": req_id}).to_string()
            }
            _ => invalid(req_id),
        },
        Some("UNSUBSCRIBE") => match names() {
            Some(n) => {
                hub.unsubscribe(id, &n);
                json!({"result": null, "id": req_id}).to_string()
            }
            None => invalid(req_id),
        },
        Some("LIST_SUBSCRIPTIONS") => json!({"result": hub.list(id), "id": req_id}).to_string(),
        _ => invalid(req_id),
    }
}

/// SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS of listen keys on `/private/stream`: the reply.
fn user_control(shared: &Shared, session: &mut Session, text: &str) -> String {
    let Session::User { subs, events, .. } = session else {
        return invalid(Value::Null);
    };
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return invalid(Value::Null);
    };
    let req_id = v.get("id").cloned().unwrap_or(Value::Null);
    let keys: Option<Vec<String>> = v.get("params").and_then(Value::as_array).map(|p| {
        p.iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    });
    let now = shared.market.clock.now_ms();
    match (v.get("method").and_then(Value::as_str), keys) {
        (Some("SUBSCRIBE"), Some(keys)) if !keys.is_empty() => {
            for key in keys {
                if subs.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                if subs.len() >= shared.limits.max_streams {
                    return invalid(req_id);
                }
                match shared.exchange.user_stream(&key, events.as_deref(), now) {
                    Some(rx) => subs.push((key, rx)),
                    None => return invalid(req_id),
                }
            }
            json!({"result": null, "id": req_id}).to_string()
        }
        (Some("UNSUBSCRIBE"), Some(keys)) => {
            subs.retain(|(k, _)| !keys.contains(k));
            json!({"result": null, "id": req_id}).to_string()
        }
        (Some("LIST_SUBSCRIPTIONS"), _) => {
            let list: Vec<&str> = subs.iter().map(|(k, _)| k.as_str()).collect();
            json!({"result": list, "id": req_id}).to_string()
        }
        _ => invalid(req_id),
    }
}

fn invalid(id: Value) -> String {
    json!({"error": {"code": 2, "msg": "Invalid request"}, "id": id}).to_string()
}
