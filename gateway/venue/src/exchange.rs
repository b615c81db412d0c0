//! The exchange core: [`SimExchange`] implements [`Exchange`] with one [`SimVenue`] per account
//! (each account's orders are its own; every account sees the same recorded market).
//!
//! # Orders
//!
//! - `LIMIT` + `GTX`: post-only; one that would take is rejected with `-5022`.
//! - `LIMIT` + `IOC`: takes the book up to its price (level by level, as taker); the rest
//!   expires. `LIMIT` + `FOK`: the same when the book up to its price fills it whole; otherwise
//!   nothing fills and it expires (`NEW`, then `EXPIRED`).
//! - `LIMIT` + `GTC`: rests as a maker order when it does not cross. One that crosses on
//!   arrival takes the book up to its price like an IOC, and its rest rests at its price, as on
//!   Binance (`PARTIALLY_FILLED`, open, cancellable). The recording still shows the liquidity it
//!   took (the simulated venue does not deplete the recorded book), so while the recorded book
//!   crosses it the rest is *parked*: held out of matching, with no fills. Once the recorded
//!   opposite touch has moved past its price it joins the simulated venue's book as a maker
//!   order at that price (the back of that level's queue) and fills from then on. A GTC modified
//!   to a crossing price is parked the same way; a GTX one is cancelled.
//! - `MARKET`: an IOC with a limit 10 % through the venue's touch.
//! - `reduceOnly`: rejected with `-2022` unless it shrinks the position without flipping it.
//!   Only checked at placement.
//! - Price off the tick grid `-4014`, quantity off the step `-4023`, quantity below `minQty`
//!   `-4003`... as Binance; notional below the minimum `-4164` (reduce-only exempt); a
//!   `newClientOrderId` equal to an open order's `-4116`. Missing ids become `x-venue…` ids.
//! - Order ids come from one counter across accounts, from 1: deterministic.
//! - Responses report the order after the venue has processed it (an IOC's fills included), like
//!   `newOrderRespType=RESULT`.
//!
//! # Not implemented
//!
//! Stop and trailing orders, `closePosition`, hedge mode (`positionSide` is always `BOTH`),
//! `priceMatch`, self-trade prevention, margin checks and liquidation, funding, mark price (the
//! book's mid stands in for it), `GTD`.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Mutex;

use engine::{
    Config, Event, EventKind, ExecKind, ExecReport, InstrumentConfig, Intent, Side, TimeInForce,
};
use gateway::sim::{BpsFees, ConstantLatency, RiskAverseQueue, SimVenue};
use serde_json::{json, Map, Value};

use crate::api::{Exchange, Request, Response, UserStream};
use crate::auth::{self, Accounts};
use crate::limits::{
    Charged, IpWeights, OrderCounts, ORDERS_PER_10S, ORDERS_PER_MIN, WEIGHT_PER_MIN,
};

/// Events a user stream buffers before its reader is cut off.
pub const USER_STREAM_CAPACITY: usize = 4096;
/// Listen key lifetime, ms.
pub const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1000;
/// Finished orders kept queryable per account.
pub const FINISHED_KEPT: usize = 10_000;
/// Money is kept in units of 10^-8 of the asset.
const E8: i128 = 100_000_000;

type Sim = SimVenue<RiskAverseQueue, ConstantLatency, BpsFees>;

/// Low 48 bits: the order id part of a client order id.
const ORDER_ID_MASK: u64 = (1 << 48) - 1;

/// The simulated venue's client order id of the venue's order `order_id` on instrument `inst`.
/// The engine's convention puts the instrument in a client order id's top 16 bits (an
/// [`Event`] execution report keeps only the low 48 and takes the top from its instrument), so
/// a bare order id would come back from any instrument but the first as another id.
fn sim_cid(inst: usize, order_id: u64) -> u64 {
    ((inst as u64) << 48) | (order_id & ORDER_ID_MASK)
}

/// The reports account `sim` gives back by `t_ns`, (instrument, report), with client order ids
/// as the venue's order ids again (see [`sim_cid`]).
fn sim_reports(sim: &mut Sim, t_ns: i64) -> Vec<(usize, ExecReport)> {
    let mut reports = Vec::new();
    sim.advance_to(t_ns, &mut |ev: &Event| {
        if let Some(mut r) = ev.as_exec() {
            r.client_order_id &= ORDER_ID_MASK;
            reports.push((ev.instrument() as usize, r));
        }
    });
    reports
}

/// A Binance error: HTTP status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status (400, 401, 429...).
    pub status: u16,
    /// Binance error code.
    pub code: i32,
    /// Message.
    pub msg: String,
}

fn err(status: u16, code: i32, msg: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        msg: msg.into(),
    }
}

fn bad(code: i32, msg: impl Into<String>) -> ApiError {
    err(400, code, msg)
}

/// Parses a decimal into units of 10^-8; `None` if malformed or with more than 8 decimals.
pub fn parse_money(s: &str) -> Option<i128> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 8 {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let f: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i128>().ok()? * 10i128.pow(8 - frac.len() as u32)
    };
    let v = i.checked_mul(E8)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

/// Formats units of 10^-8 with `decimals` decimals (rounded toward zero).
pub fn fmt_e8(v: i128, decimals: u32) -> String {
    let neg = v < 0;
    let a = v.unsigned_abs();
    let int = a / E8 as u128;
    let frac = (a % E8 as u128) / 10u128.pow(8 - decimals);
    let sign = if neg && (int != 0 || frac != 0) {
        "-"
    } else {
        ""
    };
    if decimals == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac:0w$}", w = decimals as usize)
    }
}

/// Order status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::PartiallyFilled => "PARTIALLY_FILLED",
            Status::Filled => "FILLED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }

    fn open(self) -> bool {
        matches!(self, Status::New | Status::PartiallyFilled)
    }
}

/// One order of one account.
#[derive(Debug, Clone)]
struct Order {
    order_id: u64,
    client_id: String,
    inst: usize,
    side: Side,
    /// `LIMIT` or `MARKET`.
    kind: &'static str,
    /// `GTC`, `GTX`, `IOC`.
    tif: &'static str,
    price: i64,
    qty: i64,
    cum: i64,
    /// Lots filled before the simulated venue's current order for it (a modified or parked
    /// order is re-placed there as a fresh order whose cumulative quantity restarts at 0).
    cum_base: i64,
    /// Σ price × qty of fills, tick × lot units.
    cum_quote: i128,
    status: Status,
    reduce_only: bool,
    time: i64,
    update_time: i64,
    /// The rest of a GTC order that crossed on arrival, held out of the simulated venue while
    /// the recorded book still crosses it (see the module documentation).
    parked: bool,
}

/// A position (one-way mode).
#[derive(Debug, Clone, Copy, Default)]
struct Position {
    /// Signed lots.
    qty: i64,
    /// Σ price × qty of the open position, tick × lot units (≥ 0).
    cost: i128,
    update_time: i64,
}

/// A user data stream reader.
#[derive(Debug)]
struct Stream {
    tx: SyncSender<String>,
    allow: Option<Vec<String>>,
}

impl Stream {
    fn wants(&self, e: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.iter().any(|x| x == e))
    }
}

#[derive(Debug)]
struct ListenKey {
    key: String,
    expires: i64,
    streams: Vec<Stream>,
}

/// One account's state.
#[derive(Debug)]
struct AccountState {
    sim: Sim,
    /// Orders by order id (open and recently finished).
    orders: BTreeMap<u64, Order>,
    positions: Vec<Position>,
    /// Wallet balances, asset → 10^-8 units.
    wallet: BTreeMap<String, i128>,
    counts: OrderCounts,
    /// countdownCancelAll deadlines by instrument.
    countdown: BTreeMap<usize, i64>,
    listen: Option<ListenKey>,
    /// Parked orders (ids, oldest first).
    parked: Vec<u64>,
}

#[derive(Debug)]
struct State {
    cfg: Config,
    accounts: Accounts,
    accts: Vec<AccountState>,
    /// Request weight per IP: signed REST, WebSocket API and (through
    /// [`Exchange::charge_ip`]) the server's public endpoints.
    ips: IpWeights,
    next_order_id: u64,
    next_trade_id: u64,
    listen_seq: u64,
    intent_seq: u64,
    /// The latest venue time fed to the simulated venues, ns.
    sim_ns: i64,
    now_ms: i64,
    /// Signed requests' `timestamp` may also be within `recvWindow` of the wall clock (see
    /// [`SimExchange::accept_wall_clock_timestamps`]).
    wall_clock_auth: bool,
    /// Where every order request is written ([`SimExchange::with_order_log`]).
    order_log: Option<std::io::LineWriter<std::fs::File>>,
}

/// The exchange core. See the [module docs](self).
#[derive(Debug)]
pub struct SimExchange {
    state: Mutex<State>,
}

impl SimExchange {
    /// An exchange for `accounts`, trading the instruments of `cfg`.
    pub fn new(cfg: Config, accounts: Accounts) -> SimExchange {
        let accts = accounts
            .list
            .iter()
            .map(|a| AccountState {
                sim: SimVenue::new(
                    cfg.instruments.len(),
                    cfg.book_slots,
                    RiskAverseQueue,
                    ConstantLatency::new(0, 0),
                    BpsFees::from_configs(&cfg.instruments),
                )
                .with_instruments(&cfg.instruments),
                orders: BTreeMap::new(),
                positions: vec![Position::default(); cfg.instruments.len()],
                wallet: a
                    .balances
                    .iter()
                    .map(|(k, v)| (k.clone(), parse_money(v).unwrap_or(0)))
                    .collect(),
                counts: OrderCounts::default(),
                countdown: BTreeMap::new(),
                listen: None,
                parked: Vec::new(),
            })
            .collect();
        SimExchange {
            state: Mutex::new(State {
                cfg,
                accounts,
                accts,
                ips: IpWeights::default(),
                next_order_id: 1,
                next_trade_id: 1,
                listen_seq: 0,
                intent_seq: 0,
                sim_ns: i64::MIN,
                now_ms: 0,
                wall_clock_auth: false,
                order_log: None,
            }),
        }
    }

    /// Accepts a signed request whose `timestamp` is within its `recvWindow` of either the venue
    /// clock (the replay's recorded time) or the wall clock. A client signs with its own clock,
    /// as it would against Binance, where the two are the same; against a replay of 2024 data
    /// only the wall clock makes sense to it, while a client that synced to `GET /fapi/v1/time`
    /// signs on the venue clock. Matching, ids and event times stay on the venue clock. Off by
    /// default (tests drive the venue clock alone, deterministically); `ringmaker venue` sets it.
    pub fn accept_wall_clock_timestamps(self) -> SimExchange {
        self.lock().wall_clock_auth = true;
        self
    }

    /// Writes every order request (place, modify, cancel, batch, cancel-all, dead-man switch),
    /// over REST or the WebSocket API, as one JSON line to `file` as it is answered: the wall
    /// time (ms), the venue time, where it came from (`ws` with the connection's id, or `rest`
    /// with the peer's address), the operation, the symbol, the client order id(s) and the
    /// answer (`ok`, or the error `code`). An audit of what the venue saw, e.g. that no client
    /// order id was used twice and that a fenced engine sent nothing after a failover.
    pub fn with_order_log(self, file: std::fs::File) -> SimExchange {
        self.lock().order_log = Some(std::io::LineWriter::new(file));
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The wall clock, ms since the epoch.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Request parameters, in the order sent, values decoded.
type Params = Vec<(String, String)>;

fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

fn form(s: &str) -> Params {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                auth::url_decode(k).unwrap_or_else(|| k.to_string()),
                auth::url_decode(v).unwrap_or_else(|| v.to_string()),
            )
        })
        .collect()
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// API key and signature.
    Signed,
    /// API key only (listen keys).
    Key,
}

/// `(operation, IP weight, security)` of a REST endpoint.
fn rest_op(method: &str, path: &str, params: &Params) -> Option<(&'static str, u32, Security)> {
    use Security::*;
    Some(match (method, path) {
        ("POST", "/fapi/v1/order") => ("order.place", 0, Signed),
        ("GET", "/fapi/v1/order") => ("order.status", 1, Signed),
        ("DELETE", "/fapi/v1/order") => ("order.cancel", 1, Signed),
        ("PUT", "/fapi/v1/order") => ("order.modify", 1, Signed),
        ("POST", "/fapi/v1/batchOrders") => ("batchOrders", 5, Signed),
        ("DELETE", "/fapi/v1/allOpenOrders") => ("allOpenOrders", 1, Signed),
        ("GET", "/fapi/v1/openOrders") => (
            "openOrders",
            if get(params, "symbol").is_some() {
                1
            } else {
                40
            },
            Signed,
        ),
        ("GET", "/fapi/v2/positionRisk" | "/fapi/v3/positionRisk") => {
            ("account.position", 5, Signed)
        }
        ("GET", "/fapi/v2/account" | "/fapi/v3/account") => ("account.status", 5, Signed),
        ("GET", "/fapi/v2/balance" | "/fapi/v3/balance") => ("account.balance", 5, Signed),
        ("POST", "/fapi/v1/countdownCancelAll") => ("countdownCancelAll", 10, Signed),
        ("POST", "/fapi/v1/listenKey") => ("userDataStream.start", 1, Key),
        ("PUT", "/fapi/v1/listenKey") => ("userDataStream.ping", 1, Key),
        ("DELETE", "/fapi/v1/listenKey") => ("userDataStream.stop", 1, Key),
        _ => return None,
    })
}

/// `(IP weight, security)` of a WebSocket API method.
fn ws_op(method: &str) -> Option<(&'static str, u32, Security)> {
    use Security::*;
    Some(match method {
        "order.place" => ("order.place", 0, Signed),
        "order.cancel" => ("order.cancel", 1, Signed),
        "order.modify" => ("order.modify", 1, Signed),
        "order.status" => ("order.status", 1, Signed),
        "account.status" => ("account.status", 5, Signed),
        "account.position" => ("account.position", 5, Signed),
        "account.balance" => ("account.balance", 5, Signed),
        "userDataStream.start" => ("userDataStream.start", 1, Key),
        "userDataStream.ping" => ("userDataStream.ping", 1, Key),
        "userDataStream.stop" => ("userDataStream.stop", 1, Key),
        _ => return None,
    })
}

/// The operations the order log ([`SimExchange::with_order_log`]) writes.
fn is_logged_op(op: &str) -> bool {
    matches!(
        op,
        "order.place"
            | "order.modify"
            | "order.cancel"
            | "batchOrders"
            | "allOpenOrders"
            | "countdownCancelAll"
    )
}

impl State {
    /// One line of the order log, if there is one and `op` is an order operation.
    fn log_order(&mut self, from: Value, op: &str, p: &Params, res: Result<(), i32>, now_ms: i64) {
        if !is_logged_op(op) {
            return;
        }
        let Some(w) = self.order_log.as_mut() else {
            return;
        };
        let cids: Vec<String> = match get(p, "batchOrders") {
            Some(list) => serde_json::from_str::<Vec<Map<String, Value>>>(list)
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m.get("newClientOrderId")?.as_str().map(str::to_owned))
                .collect(),
            None => ["newClientOrderId", "origClientOrderId"]
                .iter()
                .filter_map(|k| get(p, k).map(str::to_owned))
                .collect(),
        };
        let line = json!({
            "wall_ms": wall_ms(),
            "venue_ms": now_ms,
            "from": from,
            "op": op,
            "symbol": get(p, "symbol"),
            "client_order_ids": cids,
            "ok": res.is_ok(),
            "code": res.err(),
        });
        use std::io::Write as _;
        if writeln!(w, "{line}").is_err() {
            // A full disk ends the log, not the venue.
            self.order_log = None;
        }
    }
}

fn is_order_op(op: &str) -> bool {
    matches!(op, "order.place" | "order.modify" | "batchOrders")
}

impl State {
    /// Charges IP weight; `Err` is the 429/418 response pieces.
    fn charge(&mut self, peer: &str, weight: u32, now_ms: i64) -> Result<u32, (ApiError, i64)> {
        let c = self.ips.charge(peer, weight, now_ms);
        match c.refusal() {
            None => Ok(c.used),
            Some(r) => Err((err(r.status, r.code, r.msg), r.retry_after_s)),
        }
    }

    fn used_weight(&self, peer: &str, now_ms: i64) -> u32 {
        self.ips.used(peer, now_ms)
    }

    /// Authenticates: the account index.
    fn authenticate(
        &self,
        api_key: Option<&str>,
        sec: Security,
        payload_sig: Option<(String, String)>,
        params: &Params,
        now_ms: i64,
    ) -> Result<usize, ApiError> {
        let Some(key) = api_key else {
            return Err(err(401, -2014, "API-key format invalid."));
        };
        let Some(a) = self.accounts.find(key) else {
            return Err(err(
                401,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ));
        };
        if sec == Security::Key {
            return Ok(a);
        }
        let on_venue =
            auth::check_time(get(params, "timestamp"), get(params, "recvWindow"), now_ms);
        let checked = match on_venue {
            Err(_) if self.wall_clock_auth => auth::check_time(
                get(params, "timestamp"),
                get(params, "recvWindow"),
                wall_ms(),
            ),
            other => other,
        };
        checked.map_err(|(c, m)| bad(c, m))?;
        let Some((payload, sig)) = payload_sig else {
            return Err(bad(
                -1102,
                "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
            ));
        };
        if !auth::verify(&self.accounts.list[a], &payload, &sig) {
            return Err(bad(-1022, "Signature for this request is not valid."));
        }
        Ok(a)
    }

    fn inst_of(&self, params: &Params) -> Result<usize, ApiError> {
        let Some(sym) = get(params, "symbol") else {
            return Err(bad(
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            ));
        };
        self.cfg
            .instruments
            .iter()
            .position(|c| c.instrument.symbol.eq_ignore_case(sym.as_bytes()))
            .ok_or_else(|| bad(-1121, "Invalid symbol."))
    }

    fn icfg(&self, inst: usize) -> &InstrumentConfig {
        &self.cfg.instruments[inst]
    }

    /// 10^-8 quote units in one tick × lot.
    fn ticklot_e8(&self, inst: usize) -> i128 {
        let i = &self.icfg(inst).instrument;
        let m = i.tick.mantissa() as i128 * i.lot.mantissa() as i128;
        let s = i.tick.scale() as i32 + i.lot.scale() as i32;
        if s <= 8 {
            m * 10i128.pow((8 - s) as u32)
        } else {
            // Finer than 10^-8: rounds to 0 per unit; not a grid of the shipped instruments.
            m / 10i128.pow((s - 8) as u32)
        }
    }

    fn tick_e8(&self, inst: usize) -> i128 {
        let t = &self.icfg(inst).instrument.tick;
        t.mantissa() as i128 * 10i128.pow(8 - t.scale() as u32)
    }

    fn price_str(&self, inst: usize, ticks: i64) -> String {
        self.icfg(inst).instrument.tick.format(ticks)
    }

    fn qty_str(&self, inst: usize, lots: i64) -> String {
        self.icfg(inst).instrument.lot.format(lots)
    }

    fn quote_asset(&self, inst: usize) -> String {
        self.icfg(inst).instrument.quote_asset.as_str().to_string()
    }

    fn symbol(&self, inst: usize) -> String {
        self.icfg(inst).instrument.symbol.as_str().to_string()
    }

    /// Feeds the simulated venues up to `t_ns` and applies their reports.
    fn pump(&mut self, a: usize, t_ns: i64) {
        let reports = sim_reports(&mut self.accts[a].sim, t_ns);
        let filled = reports
            .iter()
            .any(|(_, r)| matches!(r.kind, ExecKind::Fill | ExecKind::PartialFill));
        for (inst, r) in reports {
            self.apply(a, inst, &r);
        }
        if filled {
            self.trim_reduce_only(a, t_ns / 1_000_000);
        }
    }

    /// What reduce-only orders on `side` may still add, lots: the position they reduce, less
    /// the reduce-only orders already open on that side (0 when the side does not reduce).
    fn reduce_only_room(&self, a: usize, inst: usize, side: Side) -> i64 {
        let pos = self.accts[a].positions[inst].qty;
        let reducible = match side {
            Side::Bid => (-pos).max(0),
            Side::Ask => pos.max(0),
        };
        let open: i64 = self.accts[a]
            .orders
            .values()
            .filter(|o| o.inst == inst && o.side == side && o.reduce_only && o.status.open())
            .map(|o| o.qty - o.cum)
            .sum();
        reducible - open
    }

    /// After a fill: reduce-only orders that the position no longer covers are cancelled, the
    /// newest first, as Binance does, so that they can never grow (or flip) the position.
    fn trim_reduce_only(&mut self, a: usize, now_ms: i64) {
        for inst in 0..self.accts[a].positions.len() {
            for side in [Side::Bid, Side::Ask] {
                while self.reduce_only_room(a, inst, side) < 0 {
                    let newest = self.accts[a]
                        .orders
                        .values()
                        .filter(|o| {
                            o.inst == inst && o.side == side && o.reduce_only && o.status.open()
                        })
                        .max_by_key(|o| o.order_id)
                        .cloned();
                    let Some(o) = newest else { break };
                    if self.cancel_one(a, &o, now_ms).is_err() {
                        break;
                    }
                    if self.accts[a]
                        .orders
                        .get(&o.order_id)
                        .is_some_and(|x| x.status.open())
                    {
                        // The venue did not take it out (already done there): stop here.
                        break;
                    }
                }
            }
        }
    }

    /// Venue time for an action at `now_ms`: never behind what the venues have seen.
    fn tick_clock(&mut self, now_ms: i64) -> i64 {
        self.now_ms = self.now_ms.max(now_ms);
        self.sim_ns = self.sim_ns.max(now_ms.saturating_mul(1_000_000));
        self.sim_ns
    }

    /// One execution report from account `a`'s venue.
    fn apply(&mut self, a: usize, inst: usize, r: &ExecReport) {
        let now = self.now_ms;
        let Some(o) = self.accts[a].orders.get_mut(&r.client_order_id) else {
            return;
        };
        match r.kind {
            ExecKind::Ack => {
                o.status = Status::New;
                o.update_time = now;
                let o = o.clone();
                self.emit_order(a, &o, "NEW", None);
            }
            ExecKind::PartialFill | ExecKind::Fill => {
                o.cum = o.cum_base + r.cum_qty;
                o.cum_quote += r.last_price as i128 * r.last_qty as i128;
                o.status = if r.kind == ExecKind::Fill || o.cum >= o.qty {
                    Status::Filled
                } else {
                    Status::PartiallyFilled
                };
                o.update_time = now;
                let o = o.clone();
                let trade_id = self.next_trade_id;
                self.next_trade_id += 1;
                let rp = self.fill_position(a, inst, o.side, r.last_price, r.last_qty, r.fee);
                let fill = Fill {
                    price: r.last_price,
                    qty: r.last_qty,
                    fee: r.fee,
                    maker: !r.taker,
                    trade_id,
                    realized: rp,
                };
                self.emit_order(a, &o, "TRADE", Some(&fill));
                self.emit_account(a, inst);
            }
            ExecKind::Canceled => {
                o.status = Status::Canceled;
                o.update_time = now;
                let o = o.clone();
                self.emit_order(a, &o, "CANCELED", None);
            }
            ExecKind::Expired => {
                o.status = Status::Expired;
                o.update_time = now;
                let o = o.clone();
                self.emit_order(a, &o, "EXPIRED", None);
            }
            _ => {}
        }
        self.prune(a);
    }

    /// Drops the oldest finished orders beyond [`FINISHED_KEPT`].
    fn prune(&mut self, a: usize) {
        let orders = &mut self.accts[a].orders;
        let finished = orders.values().filter(|o| !o.status.open()).count();
        if finished > FINISHED_KEPT {
            let drop: Vec<u64> = orders
                .values()
                .filter(|o| !o.status.open())
                .take(finished - FINISHED_KEPT)
                .map(|o| o.order_id)
                .collect();
            for id in drop {
                orders.remove(&id);
            }
        }
    }

    /// Applies a fill to the position and wallet; the realized PnL in 10^-8 quote.
    fn fill_position(
        &mut self,
        a: usize,
        inst: usize,
        side: Side,
        price: i64,
        qty: i64,
        fee: i64,
    ) -> i128 {
        let unit = self.ticklot_e8(inst);
        let asset = self.quote_asset(inst);
        let now = self.now_ms;
        let p = &mut self.accts[a].positions[inst];
        let signed = if side == Side::Bid { qty } else { -qty };
        let mut realized: i128 = 0;
        if p.qty == 0 || (p.qty > 0) == (signed > 0) {
            p.qty += signed;
            p.cost += price as i128 * qty as i128;
        } else {
            let close = qty.min(p.qty.abs());
            let avg_cost = p.cost * close as i128 / p.qty.abs() as i128;
            let value = price as i128 * close as i128;
            realized = if p.qty > 0 {
                value - avg_cost
            } else {
                avg_cost - value
            };
            p.cost -= avg_cost;
            p.qty += if signed > 0 { close } else { -close };
            let rest = qty - close;
            if rest > 0 {
                p.qty += if signed > 0 { rest } else { -rest };
                p.cost = price as i128 * rest as i128;
            }
            if p.qty == 0 {
                p.cost = 0;
            }
        }
        p.update_time = now;
        let realized = realized * unit;
        *self.accts[a].wallet.entry(asset).or_insert(0) += realized - fee as i128 * unit;
        realized
    }

    fn mark(&self, a: usize, inst: usize) -> Option<i64> {
        let b = self.accts[a].sim.book(inst as u16)?;
        Some((b.best_bid()? + b.best_ask()?) / 2)
    }

    /// Unrealized PnL of a position, 10^-8 quote.
    fn unrealized(&self, a: usize, inst: usize) -> i128 {
        let p = self.accts[a].positions[inst];
        match self.mark(a, inst) {
            Some(m) if p.qty != 0 => {
                (m as i128 * p.qty as i128 - if p.qty > 0 { p.cost } else { -p.cost })
                    * self.ticklot_e8(inst)
            }
            _ => 0,
        }
    }

    /// Entry price in 10^-8 quote.
    fn entry_e8(&self, a: usize, inst: usize) -> i128 {
        let p = self.accts[a].positions[inst];
        if p.qty == 0 {
            0
        } else {
            p.cost * self.tick_e8(inst) / p.qty.abs() as i128
        }
    }

    fn send_user(&mut self, a: usize, event: &str, text: String) {
        if let Some(l) = self.accts[a].listen.as_mut() {
            l.streams.retain(|s| {
                if !s.wants(event) {
                    return true;
                }
                match s.tx.try_send(text.clone()) {
                    Ok(()) => true,
                    // A reader that does not keep up is cut off.
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
                }
            });
        }
    }

    fn open_notional(&self, a: usize, inst: usize, side: Side) -> i128 {
        self.accts[a]
            .orders
            .values()
            .filter(|o| o.inst == inst && o.side == side && o.status.open())
            .map(|o| o.price as i128 * (o.qty - o.cum) as i128)
            .sum::<i128>()
            * self.ticklot_e8(inst)
    }

    fn emit_order(&mut self, a: usize, o: &Order, x: &str, fill: Option<&Fill>) {
        if self.accts[a].listen.is_none() {
            return;
        }
        let now = self.now_ms;
        let unit = self.ticklot_e8(o.inst);
        let asset = self.quote_asset(o.inst);
        let (l, lp, n, t, m, rp) = match fill {
            Some(f) => (
                self.qty_str(o.inst, f.qty),
                self.price_str(o.inst, f.price),
                fmt_e8(f.fee as i128 * unit, 8),
                f.trade_id,
                f.maker,
                fmt_e8(f.realized, 8),
            ),
            None => (
                self.qty_str(o.inst, 0),
                "0".into(),
                "0".into(),
                0,
                false,
                "0".into(),
            ),
        };
        let ev = json!({
            "e": "ORDER_TRADE_UPDATE", "E": now, "T": now,
            "o": {
                "s": self.symbol(o.inst), "c": o.client_id, "S": side_name(o.side),
                "o": o.kind, "f": o.tif, "q": self.qty_str(o.inst, o.qty),
                "p": self.price_str(o.inst, o.price), "ap": self.avg_price(o), "sp": "0",
                "x": x, "X": o.status.name(), "i": o.order_id, "l": l,
                "z": self.qty_str(o.inst, o.cum), "L": lp, "n": n, "N": asset, "T": now,
                "t": t,
                "b": fmt_e8(self.open_notional(a, o.inst, Side::Bid), 8),
                "a": fmt_e8(self.open_notional(a, o.inst, Side::Ask), 8),
                "m": m, "R": o.reduce_only, "wt": "CONTRACT_PRICE", "ot": o.kind, "ps": "BOTH",
                "cp": false, "rp": rp, "pP": false, "si": 0, "ss": 0, "V": "NONE",
                "pm": "NONE", "gtd": 0,
            }
        });
        self.send_user(a, "ORDER_TRADE_UPDATE", ev.to_string());
    }

    fn emit_account(&mut self, a: usize, inst: usize) {
        if self.accts[a].listen.is_none() {
            return;
        }
        let now = self.now_ms;
        let asset = self.quote_asset(inst);
        let wb = self.accts[a].wallet.get(&asset).copied().unwrap_or(0);
        let p = self.accts[a].positions[inst];
        let entry = self.entry_e8(a, inst);
        let ev = json!({
            "e": "ACCOUNT_UPDATE", "E": now, "T": now,
            "a": {
                "m": "ORDER",
                "B": [{"a": asset, "wb": fmt_e8(wb, 8), "cw": fmt_e8(wb, 8), "bc": "0"}],
                "P": [{
                    "s": self.symbol(inst), "pa": self.qty_str(inst, p.qty),
                    "ep": fmt_e8(entry, 8), "bep": fmt_e8(entry, 8), "cr": "0",
                    "up": fmt_e8(self.unrealized(a, inst), 8), "mt": "cross", "iw": "0",
                    "ps": "BOTH",
                }],
            }
        });
        self.send_user(a, "ACCOUNT_UPDATE", ev.to_string());
    }

    fn avg_price(&self, o: &Order) -> String {
        if o.cum == 0 {
            return "0".into();
        }
        fmt_e8(o.cum_quote * self.tick_e8(o.inst) / o.cum as i128, 8)
    }

    fn order_json(&self, o: &Order) -> Value {
        let unit = self.ticklot_e8(o.inst);
        json!({
            "orderId": o.order_id, "symbol": self.symbol(o.inst), "status": o.status.name(),
            "clientOrderId": o.client_id, "price": self.price_str(o.inst, o.price),
            "avgPrice": self.avg_price(o), "origQty": self.qty_str(o.inst, o.qty),
            "executedQty": self.qty_str(o.inst, o.cum),
            "cumQuote": fmt_e8(o.cum_quote * unit, 8), "timeInForce": o.tif, "type": o.kind,
            "reduceOnly": o.reduce_only, "closePosition": false, "side": side_name(o.side),
            "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
            "priceProtect": false, "origType": o.kind, "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": o.time,
            "updateTime": o.update_time,
        })
    }

    /// Runs one operation for account `a`.
    fn op(&mut self, a: usize, op: &str, p: &Params, now_ms: i64) -> Result<Value, ApiError> {
        match op {
            "order.place" => self.place(a, p, now_ms),
            "order.status" => {
                let o = self.find_order(a, p)?;
                Ok(self.order_json(&o))
            }
            "order.cancel" => self.cancel(a, p, now_ms),
            "order.modify" => self.modify(a, p, now_ms),
            "batchOrders" => {
                let list = get(p, "batchOrders").ok_or_else(|| {
                    bad(-1102, "Mandatory parameter 'batchOrders' was not sent, was empty/null, or malformed.")
                })?;
                let v: Vec<Map<String, Value>> = serde_json::from_str(list)
                    .map_err(|_| bad(-1130, "Invalid data sent for a parameter."))?;
                if v.is_empty() || v.len() > 5 {
                    return Err(bad(-1130, "Invalid data sent for a parameter."));
                }
                let out: Vec<Value> = v
                    .iter()
                    .map(|m| {
                        let params = json_params(m);
                        match self.place(a, &params, now_ms) {
                            Ok(v) => v,
                            Err(e) => json!({"code": e.code, "msg": e.msg}),
                        }
                    })
                    .collect();
                Ok(Value::Array(out))
            }
            "allOpenOrders" => {
                let inst = self.inst_of(p)?;
                self.cancel_all(a, inst, now_ms);
                Ok(json!({"code": 200, "msg": "The operation of cancel all open order is done."}))
            }
            "openOrders" => {
                let inst = match get(p, "symbol") {
                    Some(_) => Some(self.inst_of(p)?),
                    None => None,
                };
                let v: Vec<Value> = self.accts[a]
                    .orders
                    .values()
                    .filter(|o| o.status.open() && inst.is_none_or(|i| i == o.inst))
                    .map(|o| self.order_json(o))
                    .collect();
                Ok(Value::Array(v))
            }
            "account.position" => {
                let inst = match get(p, "symbol") {
                    Some(_) => Some(self.inst_of(p)?),
                    None => None,
                };
                let v: Vec<Value> = (0..self.cfg.instruments.len())
                    .filter(|i| inst.is_none_or(|x| x == *i))
                    .map(|i| self.position_json(a, i))
                    .collect();
                Ok(Value::Array(v))
            }
            "account.status" => Ok(self.account_json(a)),
            "account.balance" => Ok(Value::Array(self.balances_json(a))),
            "countdownCancelAll" => {
                let inst = self.inst_of(p)?;
                let ms: i64 = get(p, "countdownTime")
                    .and_then(|v| v.parse().ok())
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| bad(-1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, or malformed."))?;
                if ms == 0 {
                    self.accts[a].countdown.remove(&inst);
                } else {
                    self.accts[a].countdown.insert(inst, now_ms + ms);
                }
                Ok(json!({"symbol": self.symbol(inst), "countdownTime": ms.to_string()}))
            }
            "userDataStream.start" => {
                let key = match &mut self.accts[a].listen {
                    Some(l) => {
                        l.expires = now_ms + LISTEN_KEY_TTL_MS;
                        l.key.clone()
                    }
                    None => {
                        self.listen_seq += 1;
                        let key = auth::hmac_hex(
                            self.accounts.list[a].api_key.as_bytes(),
                            format!("listenKey{}", self.listen_seq).as_bytes(),
                        );
                        self.accts[a].listen = Some(ListenKey {
                            key: key.clone(),
                            expires: now_ms + LISTEN_KEY_TTL_MS,
                            streams: Vec::new(),
                        });
                        key
                    }
                };
                Ok(json!({"listenKey": key}))
            }
            "userDataStream.ping" => match &mut self.accts[a].listen {
                Some(l) => {
                    l.expires = now_ms + LISTEN_KEY_TTL_MS;
                    Ok(json!({"listenKey": l.key}))
                }
                None => Err(bad(-1125, "This listenKey does not exist.")),
            },
            "userDataStream.stop" => {
                self.accts[a].listen = None;
                Ok(json!({}))
            }
            _ => Err(bad(
                -1000,
                "An unknown error occurred while processing the request.",
            )),
        }
    }

    fn position_json(&self, a: usize, inst: usize) -> Value {
        let p = self.accts[a].positions[inst];
        let lev = self.accounts.list[a].leverage;
        let mark = self.mark(a, inst).unwrap_or(0);
        let notional = mark as i128 * p.qty as i128 * self.ticklot_e8(inst);
        let entry = fmt_e8(self.entry_e8(a, inst), 8);
        json!({
            "symbol": self.symbol(inst), "positionAmt": self.qty_str(inst, p.qty),
            "entryPrice": entry, "markPrice": fmt_e8(mark as i128 * self.tick_e8(inst), 8),
            "unRealizedProfit": fmt_e8(self.unrealized(a, inst), 8),
            "liquidationPrice": "0", "leverage": lev.to_string(),
            "maxNotionalValue": "250000", "marginType": "cross", "isolatedMargin": "0.00000000",
            "isAutoAddMargin": "false", "positionSide": "BOTH",
            "notional": fmt_e8(notional, 8), "isolatedWallet": "0",
            "updateTime": p.update_time, "breakEvenPrice": entry,
        })
    }

    fn balances_json(&self, a: usize) -> Vec<Value> {
        let now = self.now_ms;
        self.accts[a]
            .wallet
            .iter()
            .map(|(asset, wb)| {
                let up: i128 = (0..self.cfg.instruments.len())
                    .filter(|i| &self.quote_asset(*i) == asset)
                    .map(|i| self.unrealized(a, i))
                    .sum();
                json!({
                    "accountAlias": "SimVenue", "asset": asset, "balance": fmt_e8(*wb, 8),
                    "crossWalletBalance": fmt_e8(*wb, 8), "crossUnPnl": fmt_e8(up, 8),
                    "availableBalance": fmt_e8(*wb + up, 8), "maxWithdrawAmount": fmt_e8(*wb, 8),
                    "marginAvailable": true, "updateTime": now,
                })
            })
            .collect()
    }

    fn account_json(&self, a: usize) -> Value {
        let wallet: i128 = self.accts[a].wallet.values().sum();
        let up: i128 = (0..self.cfg.instruments.len())
            .map(|i| self.unrealized(a, i))
            .sum();
        let z = "0.00000000";
        let assets: Vec<Value> = self.accts[a]
            .wallet
            .iter()
            .map(|(asset, wb)| {
                json!({
                    "asset": asset, "walletBalance": fmt_e8(*wb, 8), "unrealizedProfit": z,
                    "marginBalance": fmt_e8(*wb, 8), "maintMargin": z, "initialMargin": z,
                    "positionInitialMargin": z, "openOrderInitialMargin": z,
                    "crossWalletBalance": fmt_e8(*wb, 8), "crossUnPnl": z,
                    "availableBalance": fmt_e8(*wb, 8), "maxWithdrawAmount": fmt_e8(*wb, 8),
                    "marginAvailable": true, "updateTime": self.now_ms,
                })
            })
            .collect();
        let positions: Vec<Value> = (0..self.cfg.instruments.len())
            .map(|i| {
                let p = self.accts[a].positions[i];
                json!({
                    "symbol": self.symbol(i), "initialMargin": "0", "maintMargin": "0",
                    "unrealizedProfit": fmt_e8(self.unrealized(a, i), 8),
                    "positionInitialMargin": "0", "openOrderInitialMargin": "0",
                    "leverage": self.accounts.list[a].leverage.to_string(), "isolated": false,
                    "entryPrice": fmt_e8(self.entry_e8(a, i), 8), "maxNotional": "250000",
                    "bidNotional": fmt_e8(self.open_notional(a, i, Side::Bid), 8),
                    "askNotional": fmt_e8(self.open_notional(a, i, Side::Ask), 8),
                    "positionSide": "BOTH", "positionAmt": self.qty_str(i, p.qty),
                    "updateTime": p.update_time,
                })
            })
            .collect();
        json!({
            "feeTier": 0, "canTrade": true, "canDeposit": true, "canWithdraw": true,
            "updateTime": 0, "multiAssetsMargin": false, "tradeGroupId": -1,
            "totalInitialMargin": z, "totalMaintMargin": z,
            "totalWalletBalance": fmt_e8(wallet, 8), "totalUnrealizedProfit": fmt_e8(up, 8),
            "totalMarginBalance": fmt_e8(wallet + up, 8), "totalPositionInitialMargin": z,
            "totalOpenOrderInitialMargin": z, "totalCrossWalletBalance": fmt_e8(wallet, 8),
            "totalCrossUnPnl": fmt_e8(up, 8), "availableBalance": fmt_e8(wallet + up, 8),
            "maxWithdrawAmount": fmt_e8(wallet, 8), "assets": assets, "positions": positions,
        })
    }

    fn find_order(&self, a: usize, p: &Params) -> Result<Order, ApiError> {
        let inst = self.inst_of(p)?;
        let found = if let Some(id) = get(p, "orderId") {
            let id: u64 = id.parse().map_err(|_| {
                bad(
                    -1102,
                    "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed.",
                )
            })?;
            self.accts[a].orders.get(&id)
        } else if let Some(c) = get(p, "origClientOrderId") {
            // The newest order with that client id.
            self.accts[a]
                .orders
                .values()
                .rev()
                .find(|o| o.client_id == c)
        } else {
            return Err(bad(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            ));
        };
        match found {
            Some(o) if o.inst == inst => Ok(o.clone()),
            _ => Err(bad(-2013, "Order does not exist.")),
        }
    }

    fn place(&mut self, a: usize, p: &Params, now_ms: i64) -> Result<Value, ApiError> {
        let inst = self.inst_of(p)?;
        let side = match get(p, "side") {
            Some("BUY") => Side::Bid,
            Some("SELL") => Side::Ask,
            Some(_) => return Err(bad(-1117, "Invalid side.")),
            None => {
                return Err(bad(
                    -1102,
                    "Mandatory parameter 'side' was not sent, was empty/null, or malformed.",
                ))
            }
        };
        let kind: &'static str = match get(p, "type") {
            Some("LIMIT") => "LIMIT",
            Some("MARKET") => "MARKET",
            Some(_) => return Err(bad(-1116, "Invalid orderType.")),
            None => {
                return Err(bad(
                    -1102,
                    "Mandatory parameter 'type' was not sent, was empty/null, or malformed.",
                ))
            }
        };
        let tif: &'static str = if kind == "MARKET" {
            "GTC"
        } else {
            match get(p, "timeInForce") {
                Some("GTC") => "GTC",
                Some("GTX") => "GTX",
                Some("IOC") => "IOC",
                Some("FOK") => "FOK",
                Some(_) => return Err(bad(-1115, "Invalid timeInForce.")),
                None => return Err(bad(
                    -1102,
                    "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
                )),
            }
        };
        let ins = self.icfg(inst).instrument;
        let qty =
            match get(p, "quantity") {
                None => return Err(bad(
                    -1102,
                    "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
                )),
                Some(q) => match ins.qty_to_lots(q.as_bytes()) {
                    Ok(v) => v,
                    Err(engine::DecimalError::OffGrid) => {
                        return Err(bad(
                            -4023,
                            format!("Quantity not increased by step size {}.", ins.lot),
                        ))
                    }
                    Err(_) => {
                        return Err(bad(
                            -1111,
                            "Precision is over the maximum defined for this asset.",
                        ))
                    }
                },
            };
        if qty <= 0 {
            return Err(bad(-4003, "Quantity less than or equal to zero."));
        }
        if qty < ins.min_qty_lots {
            return Err(bad(-4004, "Quantity less than min quantity."));
        }
        let (touch_bid, touch_ask) = {
            let b = self.accts[a].sim.book(inst as u16);
            (b.and_then(|b| b.best_bid()), b.and_then(|b| b.best_ask()))
        };
        let price =
            if kind == "MARKET" {
                let t = if side == Side::Bid {
                    touch_ask
                } else {
                    touch_bid
                };
                let Some(t) = t else {
                    return Err(bad(
                        -2010,
                        "Order would immediately trigger, but the book is empty.",
                    ));
                };
                if side == Side::Bid {
                    t + t / 10
                } else {
                    (t - t / 10).max(1)
                }
            } else {
                match get(p, "price") {
                    None => return Err(bad(
                        -1102,
                        "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
                    )),
                    Some(s) => match ins.price_to_ticks(s.as_bytes()) {
                        Ok(v) if v > 0 => v,
                        Ok(_) => return Err(bad(-4001, "Price less than 0.")),
                        Err(engine::DecimalError::OffGrid) => {
                            return Err(bad(
                                -4014,
                                format!("Price not increased by tick size {}.", ins.tick),
                            ))
                        }
                        Err(_) => {
                            return Err(bad(
                                -1111,
                                "Precision is over the maximum defined for this asset.",
                            ))
                        }
                    },
                }
            };
        let reduce_only = get(p, "reduceOnly") == Some("true");
        if reduce_only {
            // With the reduce-only orders already open on this side: all of them filled must
            // not take the position past zero.
            let room = self.reduce_only_room(a, inst, side);
            let ok = qty <= room;
            if !ok {
                return Err(bad(-2022, "ReduceOnly Order is rejected."));
            }
        } else {
            let notional_px = if kind == "MARKET" {
                if side == Side::Bid {
                    touch_ask
                } else {
                    touch_bid
                }
                .unwrap_or(price)
            } else {
                price
            };
            if ins.notional(notional_px, qty) < ins.min_notional_units {
                return Err(bad(
                    -4164,
                    format!(
                    "Order's notional must be no smaller than {} (unless you choose reduce only).",
                    ins.notional_unit().format(ins.min_notional_units)
                ),
                ));
            }
        }
        let client_id = match get(p, "newClientOrderId") {
            Some(c) => {
                if c.is_empty()
                    || c.len() > 36
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
                {
                    return Err(bad(-4015, "Client order id is not valid."));
                }
                if self.accts[a]
                    .orders
                    .values()
                    .any(|o| o.status.open() && o.client_id == c)
                {
                    return Err(bad(-4116, "ClientOrderId is duplicated."));
                }
                c.to_string()
            }
            None => format!("x-venue{:016}", self.next_order_id),
        };
        if let Err(m) = self.accts[a].counts.take(now_ms) {
            return Err(err(429, -1015, m));
        }
        if self.accts[a].sim.open_orders(inst as u16) >= gateway::sim::MAX_OPEN_ORDERS {
            return Err(bad(-2025, "Reach max open order limit."));
        }
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let t_ns = self.tick_clock(now_ms);
        self.accts[a].orders.insert(
            order_id,
            Order {
                order_id,
                client_id,
                inst,
                side,
                kind,
                tif,
                price,
                qty,
                cum: 0,
                cum_base: 0,
                cum_quote: 0,
                status: Status::New,
                reduce_only,
                time: now_ms,
                update_time: now_ms,
                parked: false,
            },
        );
        let sim_tif = match tif {
            "GTX" | "GTC" if kind == "LIMIT" => TimeInForce::PostOnly,
            _ => TimeInForce::Ioc,
        };
        if tif == "FOK" && self.fillable(a, inst, side, price) < qty {
            // Fill or kill: the book up to its price cannot fill it whole, so nothing fills.
            let mut o = self.accts[a].orders[&order_id].clone();
            self.emit_order(a, &o, "NEW", None);
            o.status = Status::Expired;
            self.emit_order(a, &o, "EXPIRED", None);
            self.accts[a].orders.insert(order_id, o);
            self.prune(a);
            let o = self.accts[a].orders[&order_id].clone();
            return Ok(self.order_json(&o));
        }
        let rejected = self.submit(a, inst, side, sim_tif, order_id, price, qty, t_ns, false);
        let rejected = match rejected {
            // A crossing GTC takes like an IOC; its rest is parked.
            Some(r) if r.post_only_reject && tif == "GTC" => self.submit(
                a,
                inst,
                side,
                TimeInForce::Ioc,
                order_id,
                price,
                qty,
                t_ns,
                true,
            ),
            r => r,
        };
        if let Some(r) = rejected {
            self.accts[a].orders.remove(&order_id);
            return Err(if r.post_only_reject {
                bad(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history")
            } else {
                bad(-2010, "Order would immediately trigger.")
            });
        }
        let o = self.accts[a].orders[&order_id].clone();
        Ok(self.order_json(&o))
    }

    /// Lots the simulated venue's book holds against a `side` order up to `price` (what an IOC
    /// there would take).
    fn fillable(&self, a: usize, inst: usize, side: Side, price: i64) -> i64 {
        let Some(book) = self.accts[a].sim.book(inst as u16) else {
            return 0;
        };
        let (opposite, crosses): (Side, fn(i64, i64) -> bool) = match side {
            Side::Bid => (Side::Ask, |p, limit| p <= limit),
            Side::Ask => (Side::Bid, |p, limit| p >= limit),
        };
        book.levels(opposite)
            .take_while(|&(p, _)| crosses(p, price))
            .map(|(_, q)| q.max(0))
            .fold(0i64, |a, q| a.saturating_add(q))
    }

    /// Sends a place to the venue and processes it now; the report if it was rejected.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        a: usize,
        inst: usize,
        side: Side,
        tif: TimeInForce,
        id: u64,
        price: i64,
        qty: i64,
        t_ns: i64,
        park_rest: bool,
    ) -> Option<ExecReport> {
        self.intent_seq += 1;
        let intent = Intent::place(
            inst as u16,
            side,
            tif,
            sim_cid(inst, id),
            price,
            qty,
            t_ns,
            self.intent_seq,
        );
        self.accts[a].sim.on_intent(&intent, t_ns);
        let reports = sim_reports(&mut self.accts[a].sim, t_ns);
        let filled = reports
            .iter()
            .any(|(_, r)| matches!(r.kind, ExecKind::Fill | ExecKind::PartialFill));
        let mut rejected = None;
        for (i, r) in reports {
            if r.kind == ExecKind::Rejected && r.client_order_id == id {
                rejected = Some(r);
            } else if park_rest && r.kind == ExecKind::Expired && r.client_order_id == id {
                self.park(a, id);
            } else {
                self.apply(a, i, &r);
            }
        }
        if filled {
            // A taker fill at placement moves the position as a resting fill does.
            self.trim_reduce_only(a, t_ns / 1_000_000);
        }
        rejected
    }

    /// Sends a cancel of `o` to account `a`'s simulated venue at `now_ms` and returns the reports
    /// it gives back at once: (instrument, report).
    fn sim_cancel(&mut self, a: usize, o: &Order, now_ms: i64) -> Vec<(usize, ExecReport)> {
        let t_ns = self.tick_clock(now_ms);
        self.intent_seq += 1;
        let intent = Intent::cancel(
            o.inst as u16,
            o.side,
            sim_cid(o.inst, o.order_id),
            true,
            t_ns,
            self.intent_seq,
        );
        self.accts[a].sim.on_intent(&intent, t_ns);
        sim_reports(&mut self.accts[a].sim, t_ns)
    }

    fn cancel_one(&mut self, a: usize, o: &Order, now_ms: i64) -> Result<(), ApiError> {
        if self.unpark_entry(a, o.order_id) {
            // Not in the simulated venue: cancelled here.
            let now = self.tick_clock(now_ms) / 1_000_000;
            if let Some(m) = self.accts[a].orders.get_mut(&o.order_id) {
                m.status = Status::Canceled;
                m.update_time = now;
                let m = m.clone();
                self.emit_order(a, &m, "CANCELED", None);
            }
            self.prune(a);
            return Ok(());
        }
        let reports = self.sim_cancel(a, o, now_ms);
        let mut res = Ok(());
        for (i, r) in reports {
            if r.kind == ExecKind::CancelRejected && r.client_order_id == o.order_id {
                res = Err(bad(-2011, "Unknown order sent."));
            }
            self.apply(a, i, &r);
        }
        res
    }

    fn cancel(&mut self, a: usize, p: &Params, now_ms: i64) -> Result<Value, ApiError> {
        let o = self.find_order(a, p)?;
        if !o.status.open() {
            return Err(bad(-2011, "Unknown order sent."));
        }
        self.cancel_one(a, &o, now_ms)?;
        let o = self.accts[a].orders[&o.order_id].clone();
        Ok(self.order_json(&o))
    }

    fn cancel_all(&mut self, a: usize, inst: usize, now_ms: i64) {
        let open: Vec<Order> = self.accts[a]
            .orders
            .values()
            .filter(|o| o.inst == inst && o.status.open())
            .cloned()
            .collect();
        for o in open {
            let _ = self.cancel_one(a, &o, now_ms);
        }
    }

    /// `order.modify` / `PUT /fapi/v1/order`: LIMIT only; cancels and re-places with the same
    /// ids (the queue place is lost). A GTX order that would now cross is cancelled (`EXPIRED`
    /// is not used: Binance reports the cancel); a GTC one is parked.
    fn modify(&mut self, a: usize, p: &Params, now_ms: i64) -> Result<Value, ApiError> {
        let o = self.find_order(a, p)?;
        if !o.status.open() {
            return Err(bad(-2013, "Order does not exist."));
        }
        if o.kind != "LIMIT" {
            return Err(bad(-4000, "Invalid order status."));
        }
        let ins = self.icfg(o.inst).instrument;
        let price = get(p, "price")
            .ok_or_else(|| {
                bad(
                    -1102,
                    "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
                )
            })
            .and_then(|s| {
                ins.price_to_ticks(s.as_bytes()).map_err(|_| {
                    bad(
                        -4014,
                        format!("Price not increased by tick size {}.", ins.tick),
                    )
                })
            })?;
        let qty = get(p, "quantity")
            .ok_or_else(|| {
                bad(
                    -1102,
                    "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
                )
            })
            .and_then(|s| {
                ins.qty_to_lots(s.as_bytes()).map_err(|_| {
                    bad(
                        -4023,
                        format!("Quantity not increased by step size {}.", ins.lot),
                    )
                })
            })?;
        if qty <= o.cum || price <= 0 {
            return Err(bad(-4003, "Quantity less than or equal to zero."));
        }
        if price == o.price && qty == o.qty {
            return Err(bad(-5027, "No need to modify the order."));
        }
        if let Err(m) = self.accts[a].counts.take(now_ms) {
            return Err(err(429, -1015, m));
        }
        // Take the order out of the venue without a CANCELED event (a parked one is not in
        // it), then re-place the rest.
        if !self.unpark_entry(a, o.order_id) {
            let reports = self.sim_cancel(a, &o, now_ms);
            for (i, r) in reports {
                if r.kind != ExecKind::Canceled {
                    self.apply(a, i, &r);
                }
            }
        }
        let t_ns = self.tick_clock(now_ms);
        let cur = self.accts[a].orders[&o.order_id].clone();
        if !cur.status.open() {
            return Ok(self.order_json(&cur));
        }
        let rest = qty - cur.cum;
        if let Some(m) = self.accts[a].orders.get_mut(&o.order_id) {
            m.price = price;
            m.qty = qty;
            m.update_time = now_ms;
        }
        let rejected = self.submit_modified(a, &cur, price, rest, t_ns);
        if rejected && cur.tif == "GTC" {
            // A GTC moved through the book rests (parked) as a crossing GTC does.
            self.park(a, o.order_id);
            let m = self.accts[a].orders[&o.order_id].clone();
            self.emit_order(a, &m, "AMENDMENT", None);
        } else if rejected {
            if let Some(m) = self.accts[a].orders.get_mut(&o.order_id) {
                m.status = Status::Canceled;
            }
            let m = self.accts[a].orders[&o.order_id].clone();
            self.emit_order(a, &m, "CANCELED", None);
        } else {
            let m = self.accts[a].orders[&o.order_id].clone();
            self.emit_order(a, &m, "AMENDMENT", None);
        }
        let m = self.accts[a].orders[&o.order_id].clone();
        Ok(self.order_json(&m))
    }

    fn submit_modified(&mut self, a: usize, o: &Order, price: i64, rest: i64, t_ns: i64) -> bool {
        // The venue sees a fresh order for the rest: its reports count from what was filled.
        if let Some(m) = self.accts[a].orders.get_mut(&o.order_id) {
            m.cum_base = m.cum;
        }
        self.intent_seq += 1;
        let intent = Intent::place(
            o.inst as u16,
            o.side,
            TimeInForce::PostOnly,
            sim_cid(o.inst, o.order_id),
            price,
            rest,
            t_ns,
            self.intent_seq,
        );
        self.accts[a].sim.on_intent(&intent, t_ns);
        let reports = sim_reports(&mut self.accts[a].sim, t_ns);
        let mut rejected = false;
        for (i, r) in reports {
            match r.kind {
                ExecKind::Rejected => rejected = true,
                // The re-placed order's ack is not a new order.
                ExecKind::Ack => {}
                _ => self.apply(a, i, &r),
            }
        }
        rejected
    }

    /// Parks order `id` of account `a` (if it is still open): its rest waits out of the
    /// simulated venue until the recorded book no longer crosses it ([`State::unpark_due`]).
    fn park(&mut self, a: usize, id: u64) {
        let acct = &mut self.accts[a];
        if let Some(o) = acct.orders.get_mut(&id) {
            if o.status.open() && !o.parked {
                o.parked = true;
                acct.parked.push(id);
            }
        }
    }

    /// Takes order `id` off account `a`'s parked list; whether it was parked.
    fn unpark_entry(&mut self, a: usize, id: u64) -> bool {
        let acct = &mut self.accts[a];
        let Some(k) = acct.parked.iter().position(|&p| p == id) else {
            return false;
        };
        acct.parked.remove(k);
        if let Some(o) = acct.orders.get_mut(&id) {
            o.parked = false;
        }
        true
    }

    /// Places in the simulated venue, as post-only at their price, the parked orders of account
    /// `a` that the book no longer crosses (oldest first); the others stay parked.
    fn unpark_due(&mut self, a: usize) {
        if self.accts[a].parked.is_empty() {
            return;
        }
        let t_ns = self.sim_ns;
        for id in self.accts[a].parked.clone() {
            let Some(o) = self.accts[a].orders.get(&id).cloned() else {
                self.unpark_entry(a, id);
                continue;
            };
            let crossed = self.accts[a]
                .sim
                .book(o.inst as u16)
                .is_some_and(|b| match o.side {
                    Side::Bid => b.best_ask().is_some_and(|p| p <= o.price),
                    Side::Ask => b.best_bid().is_some_and(|p| p >= o.price),
                });
            if crossed {
                continue;
            }
            self.unpark_entry(a, id);
            if self.submit_modified(a, &o, o.price, o.qty - o.cum, t_ns) {
                // The best bid/offer still crosses it: parked again.
                self.park(a, id);
            }
        }
    }

    /// Expires listen keys and fires countdowns due at `now_ms`.
    fn on_clock(&mut self, now_ms: i64) {
        self.tick_clock(now_ms);
        for a in 0..self.accts.len() {
            let due: Vec<usize> = self.accts[a]
                .countdown
                .iter()
                .filter(|(_, t)| **t <= now_ms)
                .map(|(i, _)| *i)
                .collect();
            for inst in due {
                self.accts[a].countdown.remove(&inst);
                self.cancel_all(a, inst, now_ms);
            }
            let expired = self.accts[a]
                .listen
                .as_ref()
                .is_some_and(|l| l.expires <= now_ms);
            if expired {
                self.expire_listen_key(a, now_ms);
            }
        }
    }

    /// Sends `listenKeyExpired` on account `a`'s listen key and drops it (closing its streams).
    fn expire_listen_key(&mut self, a: usize, now_ms: i64) -> bool {
        let Some(key) = self.accts[a].listen.as_ref().map(|l| l.key.clone()) else {
            return false;
        };
        let ev = json!({"e": "listenKeyExpired", "E": now_ms, "listenKey": key});
        self.send_user(a, "listenKeyExpired", ev.to_string());
        // Dropping the senders closes the streams.
        self.accts[a].listen = None;
        true
    }

    fn rate_limits(&self, a: Option<usize>, peer: &str, orders: bool, now_ms: i64) -> Value {
        let mut v = vec![json!({
            "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
            "limit": WEIGHT_PER_MIN, "count": self.used_weight(peer, now_ms),
        })];
        if let (Some(a), true) = (a, orders) {
            let (s10, m1) = self.accts[a].counts.counts(now_ms);
            v.push(json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": ORDERS_PER_10S, "count": s10}));
            v.push(json!({"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": ORDERS_PER_MIN, "count": m1}));
        }
        Value::Array(v)
    }
}

/// A fill for a user data event.
#[derive(Debug, Clone, Copy)]
struct Fill {
    price: i64,
    qty: i64,
    fee: i64,
    maker: bool,
    trade_id: u64,
    realized: i128,
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Bid => "BUY",
        Side::Ask => "SELL",
    }
}

fn json_params(m: &Map<String, Value>) -> Params {
    m.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

impl Exchange for SimExchange {
    fn rest(&self, req: &Request, now_ms: i64) -> Option<Response> {
        let mut params = form(&req.query);
        params.extend(form(&req.body));
        let (op, weight, sec) = rest_op(&req.method, &req.path, &params)?;
        let mut st = self.lock();
        st.tick_clock(now_ms);
        let mut resp = match st.charge(&req.peer, weight, now_ms) {
            Err((e, retry)) => {
                let mut r = Response::error(e.status, e.code, &e.msg);
                r.headers.push(("Retry-After".into(), retry.to_string()));
                r
            }
            Ok(_) => {
                let res = st
                    .authenticate(
                        req.header("x-mbx-apikey"),
                        sec,
                        auth::rest_payload(&req.query, &req.body),
                        &params,
                        now_ms,
                    )
                    .and_then(|a| st.op(a, op, &params, now_ms).map(|v| (a, v)));
                let outcome = res.as_ref().map(|_| ()).map_err(|e| e.code);
                st.log_order(json!({"rest": req.peer}), op, &params, outcome, now_ms);
                match res {
                    Ok((a, v)) => {
                        let mut r = Response::ok(v.to_string());
                        if is_order_op(op) {
                            let (s10, m1) = st.accts[a].counts.counts(now_ms);
                            r.headers
                                .push(("X-MBX-ORDER-COUNT-10S".into(), s10.to_string()));
                            r.headers
                                .push(("X-MBX-ORDER-COUNT-1M".into(), m1.to_string()));
                        }
                        r
                    }
                    Err(e) => Response::error(e.status, e.code, &e.msg),
                }
            }
        };
        resp.headers.insert(
            0,
            (
                "X-MBX-USED-WEIGHT-1M".into(),
                st.used_weight(&req.peer, now_ms).to_string(),
            ),
        );
        Some(resp)
    }

    fn ws_api(&self, conn: u64, peer: &str, text: &str, now_ms: i64) -> String {
        let mut st = self.lock();
        st.tick_clock(now_ms);
        let req: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                return json!({"id": null, "status": 400, "error": {"code": -1000, "msg": "Malformed request."}}).to_string()
            }
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let empty = Map::new();
        let pmap = req
            .get("params")
            .and_then(|p| p.as_object())
            .unwrap_or(&empty);
        let params = json_params(pmap);
        let method = req.get("method").and_then(|m| m.as_str()).unwrap_or("");
        let Some((op, weight, sec)) = ws_op(method) else {
            return json!({"id": id, "status": 400, "error": {"code": -1102, "msg": "Unknown method."},
                "rateLimits": st.rate_limits(None, peer, false, now_ms)}).to_string();
        };
        if let Err((e, retry)) = st.charge(peer, weight, now_ms) {
            return json!({"id": id, "status": e.status, "error": {"code": e.code, "msg": e.msg, "data": {"retryAfter": now_ms + retry * 1000}},
                "rateLimits": st.rate_limits(None, peer, false, now_ms)}).to_string();
        }
        let sig = get(&params, "signature").map(|s| (auth::ws_payload(pmap), s.to_string()));
        let auth = st.authenticate(get(&params, "apiKey"), sec, sig, &params, now_ms);
        let res = auth.clone().and_then(|a| st.op(a, op, &params, now_ms));
        let outcome = res.as_ref().map(|_| ()).map_err(|e| e.code);
        st.log_order(json!({"ws": conn}), op, &params, outcome, now_ms);
        let rl = st.rate_limits(auth.ok(), peer, is_order_op(op), now_ms);
        match res {
            Ok(v) => json!({"id": id, "status": 200, "result": v, "rateLimits": rl}).to_string(),
            Err(e) => json!({"id": id, "status": e.status, "error": {"code": e.code, "msg": e.msg}, "rateLimits": rl}).to_string(),
        }
    }

    fn user_stream(
        &self,
        listen_key: &str,
        events: Option<&str>,
        now_ms: i64,
    ) -> Option<UserStream> {
        let mut st = self.lock();
        st.on_clock(now_ms);
        let a = st
            .accts
            .iter()
            .position(|a| a.listen.as_ref().is_some_and(|l| l.key == listen_key))?;
        let (tx, rx) = sync_channel(USER_STREAM_CAPACITY);
        let allow = events.map(|e| {
            e.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        });
        st.accts[a]
            .listen
            .as_mut()?
            .streams
            .push(Stream { tx, allow });
        Some(rx)
    }

    fn on_market(&self, events: &[Event], now_ms: i64) {
        let mut st = self.lock();
        st.on_clock(now_ms);
        let t = st.sim_ns;
        for ev in events {
            if matches!(
                ev.kind(),
                EventKind::ExecReport | EventKind::Timer | EventKind::Control
            ) {
                continue;
            }
            let mut ev = *ev;
            // The venue clock, not the recording's.
            ev.local_time_ns = t;
            for a in 0..st.accts.len() {
                st.accts[a].sim.on_market(&ev);
                st.pump(a, t);
                st.unpark_due(a);
            }
        }
    }

    fn on_time(&self, now_ms: i64) {
        let mut st = self.lock();
        st.on_clock(now_ms);
        let t = st.sim_ns;
        for a in 0..st.accts.len() {
            st.pump(a, t);
            st.unpark_due(a);
        }
    }

    /// The public endpoints' weight, on the counter of the signed requests.
    fn charge_ip(&self, peer: &str, weight: u32, now_ms: i64) -> Option<Charged> {
        Some(self.lock().ips.charge(peer, weight, now_ms))
    }

    fn expire_listen_keys(&self, now_ms: i64) -> usize {
        let mut st = self.lock();
        st.on_clock(now_ms);
        (0..st.accts.len())
            .filter(|&a| st.expire_listen_key(a, now_ms))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        assert_eq!(parse_money("10000"), Some(10_000 * E8));
        assert_eq!(parse_money("0.5"), Some(E8 / 2));
        assert_eq!(parse_money("-1.00000001"), Some(-E8 - 1));
        assert_eq!(parse_money("1.000000001"), None);
        assert_eq!(parse_money("x"), None);
        assert_eq!(fmt_e8(-E8 - 1, 8), "-1.00000001");
        assert_eq!(fmt_e8(123 * E8 / 10, 2), "12.30");
        assert_eq!(fmt_e8(0, 0), "0");
    }
}
