//! The Binance USDⓈ-M wire format of order entry: signed WebSocket API requests out, their
//! responses and the user data stream in, and the engine's execution reports from them.
//!
//! - [`RequestWriter`] writes the JSON text of `order.place` / `order.cancel` / `order.modify`
//!   / `order.status` (signed) and `userDataStream.start/ping/stop` (API key only) requests into
//!   buffers it reuses.
//! - [`Decoder`] decodes WebSocket API responses ([`Decoder::decode_response`]) and user data
//!   stream events ([`Decoder::decode_user`]) in place with simd-json, keeping its scratch
//!   buffers and tape between messages.
//! - [`exec_report`], [`place_rejected`] and [`cancel_rejected`] turn what was decoded into the
//!   engine's [`ExecReport`]s.
//!
//! Once warmed up (the first messages of each size), nothing here allocates: requests are
//! written into the writer's buffers, decoded values are fixed-size (strings in [`InlineStr`],
//! rate limits in a fixed array), errors are `Copy`. Prices and quantities are exact integers on
//! the instrument's grids, written and read without floats.
//!
//! Nothing from the network can make this module panic: malformed input is a [`WireError`],
//! an event type or field it does not know is skipped.
//!
//! # Signing
//!
//! Every signed request carries `apiKey`, `timestamp` (ms) and `recvWindow` (ms) among its
//! params; the payload signed is every param but `signature`, sorted by name, as `k=v&k=v`, the
//! values exactly as in the JSON (strings without quotes, numbers as written); `signature` is
//! the last param. Numbers (`timestamp`, `recvWindow`) go as JSON numbers, everything else as
//! strings. The request `id` is a number the caller chooses, echoed in the response.

use std::fmt;

use engine::{ExecKind, ExecReport, Grid, Instrument, InstrumentId, Side, TimeInForce};
use simd_json::{Node, StaticNode, Tape};

use crate::binance::sign::Signer;

/// Default `recvWindow`, ms (Binance's default).
pub const DEFAULT_RECV_WINDOW_MS: u32 = 5_000;
/// Largest `recvWindow` Binance accepts, ms.
pub const MAX_RECV_WINDOW_MS: u32 = 60_000;
/// Rate limit entries a [`Response`] keeps (Binance sends at most three: request weight per
/// minute, orders per 10 s and per minute).
pub const MAX_RATE_LIMITS: usize = 4;
/// Positions an [`AccountUpdate`] keeps (those of the symbols traded here).
pub const MAX_POSITIONS: usize = 8;
/// Longest client order id Binance accepts.
pub const CLIENT_ID_CAPACITY: usize = 36;
/// Bytes of an error message kept.
pub const MSG_CAPACITY: usize = 120;
/// Bytes of a listen key kept (Binance's are 64).
pub const LISTEN_KEY_CAPACITY: usize = 72;
/// Bytes of an asset name kept.
pub const ASSET_CAPACITY: usize = 16;

/// Bytes of simd-json scratch reserved up front: user data events and order responses are
/// around 1 KB; a larger message grows the buffers once.
const INPUT_CAPACITY: usize = 16 * 1024;
/// Tape nodes reserved up front.
const TAPE_CAPACITY: usize = 1024;
/// Most params a request has (`order.place`: 11).
const MAX_PARAMS: usize = 12;

/// Why a message could not be decoded, or a request not written. `Copy`, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not valid JSON.
    #[error("invalid JSON (near byte {at})")]
    Json {
        /// Where simd-json stopped.
        at: usize,
    },
    /// Valid JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type or a value out of range.
    #[error("bad field `{0}`")]
    BadField(&'static str),
    /// A price, quantity or amount that is not a decimal on the instrument's grid.
    #[error("bad decimal in `{field}`: {err}")]
    Decimal {
        /// Which field.
        field: &'static str,
        /// Why.
        err: engine::DecimalError,
    },
    /// An order of a symbol not in the instrument table.
    #[error("symbol not in the instrument table")]
    UnknownSymbol,
    /// A request value holding a byte that may not go on the wire (empty, non-ASCII, a quote,
    /// `&`, `=`...; a client order id outside `[.A-Z:/a-z0-9_-]{1,36}`).
    #[error("`{0}` is empty or holds a byte that may not go on the wire")]
    BadText(&'static str),
    /// A price or quantity in a request that is not positive.
    #[error("`{0}` must be positive")]
    NotPositive(&'static str),
}

// ---------------------------------------------------------------------------------------------
// Small fixed-size values

/// A string of at most `N` bytes stored inline (no heap), so decoded values stay `Copy`. A
/// longer string is cut at the last character boundary that fits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InlineStr<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    /// The first `N` bytes of `s` (fewer if `N` falls inside a character).
    pub fn new(s: &str) -> InlineStr<N> {
        let mut len = s.len().min(N);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        let mut buf = [0u8; N];
        buf[..len].copy_from_slice(&s.as_bytes()[..len]);
        InlineStr { len, buf }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Always a whole-character prefix of a `str`.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len.min(N)]
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr {
            len: 0,
            buf: [0u8; N],
        }
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// An order as [`RequestWriter::place`] and [`RequestWriter::modify`] write it.
#[derive(Debug, Clone, Copy)]
pub struct OrderSpec<'a> {
    /// The instrument: its symbol and grids.
    pub instrument: &'a Instrument,
    /// `newClientOrderId` (place) or `origClientOrderId` (modify): `[.A-Z:/a-z0-9_-]{1,36}`,
    /// e.g. [`ClientIds::encode`](crate::binance::cid::ClientIds::encode).
    pub client_id: &'a [u8],
    /// Side.
    pub side: Side,
    /// `GTX` for post-only, `IOC` (place only; a modify keeps the order's).
    pub tif: TimeInForce,
    /// Limit price, ticks (> 0).
    pub price: i64,
    /// Quantity, lots (> 0; for a modify the new total quantity, filled part included).
    pub qty: i64,
}

/// A `userDataStream.*` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStreamOp {
    /// `userDataStream.start`: a listen key (the active one if there is one), valid 60 min.
    Start,
    /// `userDataStream.ping`: extends the listen key by 60 min.
    Ping,
    /// `userDataStream.stop`: closes it.
    Stop,
}

/// A request param value.
#[derive(Clone, Copy)]
enum Val<'a> {
    /// A JSON string (checked for the wire).
    Str(&'a [u8]),
    /// A JSON number.
    Int(i64),
    /// A JSON string: `steps` on a grid, as a decimal.
    Steps(&'a Grid, i64),
}

/// `fmt::Write` into a byte vector (no allocation once it has room).
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes WebSocket API requests into buffers it reuses: the returned bytes are the text frame
/// to send, valid until the next call.
#[derive(Debug, Clone)]
pub struct RequestWriter {
    /// The signing payload of the last request.
    payload: Vec<u8>,
    /// The last request.
    out: Vec<u8>,
    recv_window_ms: u32,
}

impl Default for RequestWriter {
    fn default() -> Self {
        RequestWriter::new(DEFAULT_RECV_WINDOW_MS)
    }
}

impl RequestWriter {
    /// A writer whose signed requests carry `recvWindow = recv_window_ms` (clamped to
    /// `1..=60_000`, Binance's bounds).
    pub fn new(recv_window_ms: u32) -> RequestWriter {
        RequestWriter {
            payload: Vec::with_capacity(512),
            out: Vec::with_capacity(1024),
            recv_window_ms: recv_window_ms.clamp(1, MAX_RECV_WINDOW_MS),
        }
    }

    /// The `recvWindow` sent, ms.
    pub fn recv_window_ms(&self) -> u32 {
        self.recv_window_ms
    }

    /// The signing payload of the last signed request (for logs and tests: it holds no secret).
    pub fn last_payload(&self) -> &[u8] {
        &self.payload
    }

    /// `order.place`: `type=LIMIT`, `timeInForce=GTX` (post-only) or `IOC`,
    /// `newOrderRespType=RESULT` (the answer carries the order as the venue left it).
    pub fn place<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        timestamp_ms: i64,
        o: &OrderSpec<'_>,
    ) -> Result<&[u8], WireError> {
        check_client_id(o.client_id, "newClientOrderId")?;
        positive(o)?;
        let tif: &[u8] = match o.tif {
            TimeInForce::PostOnly => b"GTX",
            TimeInForce::Ioc => b"IOC",
        };
        let inst = o.instrument;
        self.signed(
            signer,
            id,
            "order.place",
            timestamp_ms,
            &[
                ("newClientOrderId", Val::Str(o.client_id)),
                ("newOrderRespType", Val::Str(b"RESULT")),
                ("price", Val::Steps(&inst.tick, o.price)),
                ("quantity", Val::Steps(&inst.lot, o.qty)),
                ("side", Val::Str(side_name(o.side))),
                ("symbol", Val::Str(inst.symbol.as_bytes())),
                ("timeInForce", Val::Str(tif)),
                ("type", Val::Str(b"LIMIT")),
            ],
        )
    }

    /// `order.cancel` of our order `client_id` (`origClientOrderId`).
    pub fn cancel<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        timestamp_ms: i64,
        instrument: &Instrument,
        client_id: &[u8],
    ) -> Result<&[u8], WireError> {
        self.by_client_id(
            signer,
            id,
            "order.cancel",
            timestamp_ms,
            instrument,
            client_id,
        )
    }

    /// `order.status` of our order `client_id` (`origClientOrderId`).
    pub fn status<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        timestamp_ms: i64,
        instrument: &Instrument,
        client_id: &[u8],
    ) -> Result<&[u8], WireError> {
        self.by_client_id(
            signer,
            id,
            "order.status",
            timestamp_ms,
            instrument,
            client_id,
        )
    }

    /// `order.modify` of our order `o.client_id` (`origClientOrderId`) to `o.price` and
    /// `o.qty` (`o.tif` is not sent: the order keeps its own). Binance re-queues a modified
    /// order, and cancels a post-only one that would now take.
    pub fn modify<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        timestamp_ms: i64,
        o: &OrderSpec<'_>,
    ) -> Result<&[u8], WireError> {
        check_client_id(o.client_id, "origClientOrderId")?;
        positive(o)?;
        let inst = o.instrument;
        self.signed(
            signer,
            id,
            "order.modify",
            timestamp_ms,
            &[
                ("origClientOrderId", Val::Str(o.client_id)),
                ("price", Val::Steps(&inst.tick, o.price)),
                ("quantity", Val::Steps(&inst.lot, o.qty)),
                ("side", Val::Str(side_name(o.side))),
                ("symbol", Val::Str(inst.symbol.as_bytes())),
            ],
        )
    }

    /// `userDataStream.start` / `ping` / `stop`: the API key alone, not signed.
    pub fn user_stream<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        op: UserStreamOp,
    ) -> Result<&[u8], WireError> {
        let method = match op {
            UserStreamOp::Start => "userDataStream.start",
            UserStreamOp::Ping => "userDataStream.ping",
            UserStreamOp::Stop => "userDataStream.stop",
        };
        let key = signer.api_key().as_bytes();
        check_text(key, "apiKey")?;
        self.write::<S>(None, id, method, &[("apiKey", Val::Str(key))])
    }

    fn by_client_id<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        method: &'static str,
        timestamp_ms: i64,
        instrument: &Instrument,
        client_id: &[u8],
    ) -> Result<&[u8], WireError> {
        check_client_id(client_id, "origClientOrderId")?;
        self.signed(
            signer,
            id,
            method,
            timestamp_ms,
            &[
                ("origClientOrderId", Val::Str(client_id)),
                ("symbol", Val::Str(instrument.symbol.as_bytes())),
            ],
        )
    }

    /// A signed request: `params` plus `apiKey`, `recvWindow` and `timestamp`.
    fn signed<S: Signer + ?Sized>(
        &mut self,
        signer: &S,
        id: u64,
        method: &'static str,
        timestamp_ms: i64,
        params: &[(&'static str, Val<'_>)],
    ) -> Result<&[u8], WireError> {
        let key = signer.api_key().as_bytes();
        check_text(key, "apiKey")?;
        let mut all = [("", Val::Int(0)); MAX_PARAMS];
        let n = params.len() + 3;
        if n > MAX_PARAMS {
            // Unreachable from the public methods (at most 8 + 3).
            return Err(WireError::BadField("params"));
        }
        all[..params.len()].copy_from_slice(params);
        all[params.len()] = ("apiKey", Val::Str(key));
        all[params.len() + 1] = ("recvWindow", Val::Int(i64::from(self.recv_window_ms)));
        all[params.len() + 2] = ("timestamp", Val::Int(timestamp_ms));
        for (name, v) in &all[..n] {
            if let Val::Str(s) = v {
                check_text(s, name)?;
            }
        }
        let all = &mut all[..n];
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.write(Some(signer), id, method, all)
    }

    /// Writes the request (params in the order given, values already checked) and, when
    /// signing, its payload and `signature`.
    fn write<S: Signer + ?Sized>(
        &mut self,
        signer: Option<&S>,
        id: u64,
        method: &'static str,
        params: &[(&'static str, Val<'_>)],
    ) -> Result<&[u8], WireError> {
        let RequestWriter { payload, out, .. } = self;
        payload.clear();
        out.clear();
        out.extend_from_slice(b"{\"id\":");
        write_int(out, id as i128);
        out.extend_from_slice(b",\"method\":\"");
        out.extend_from_slice(method.as_bytes());
        out.extend_from_slice(b"\",\"params\":{");
        for (k, (name, v)) in params.iter().enumerate() {
            if k > 0 {
                payload.push(b'&');
                out.push(b',');
            }
            payload.extend_from_slice(name.as_bytes());
            payload.push(b'=');
            let start = payload.len();
            let quoted = match *v {
                Val::Str(s) => {
                    payload.extend_from_slice(s);
                    true
                }
                Val::Int(x) => {
                    write_int(payload, i128::from(x));
                    false
                }
                Val::Steps(grid, steps) => {
                    // Writing into a Vec cannot fail.
                    let _ = grid.write(steps, &mut Bytes(payload));
                    true
                }
            };
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            let value = payload.get(start..).unwrap_or_default();
            if quoted {
                out.push(b'"');
                out.extend_from_slice(value);
                out.push(b'"');
            } else {
                out.extend_from_slice(value);
            }
        }
        if let Some(signer) = signer {
            out.extend_from_slice(b",\"signature\":\"");
            let sig_start = out.len();
            signer.sign_into(payload, out);
            // A signer writes hex or base64; anything else would break the JSON.
            let sig = out.get(sig_start..).unwrap_or_default();
            if sig.is_empty()
                || !sig
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"+/=%".contains(&b))
            {
                return Err(WireError::BadText("signature"));
            }
            out.push(b'"');
        } else {
            payload.clear();
        }
        out.extend_from_slice(b"}}");
        Ok(out)
    }
}

fn positive(o: &OrderSpec<'_>) -> Result<(), WireError> {
    if o.price <= 0 {
        return Err(WireError::NotPositive("price"));
    }
    if o.qty <= 0 {
        return Err(WireError::NotPositive("quantity"));
    }
    Ok(())
}

/// A value safe in both a JSON string and a `k=v&` payload: printable ASCII, no `"`, `\`, `&`,
/// `=`, not empty.
fn check_text(s: &[u8], field: &'static str) -> Result<(), WireError> {
    let ok = !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'&' | b'='));
    if ok {
        Ok(())
    } else {
        Err(WireError::BadText(field))
    }
}

/// Binance's rule for client order ids: `^[\.A-Z\:/a-z0-9_-]{1,36}$`.
fn check_client_id(s: &[u8], field: &'static str) -> Result<(), WireError> {
    let ok = (1..=CLIENT_ID_CAPACITY).contains(&s.len())
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(WireError::BadText(field))
    }
}

fn write_int(out: &mut Vec<u8>, v: i128) {
    // Writing into a Vec cannot fail.
    let _ = fmt::Write::write_fmt(&mut Bytes(out), format_args!("{v}"));
}

fn side_name(s: Side) -> &'static [u8] {
    match s {
        Side::Bid => b"BUY",
        Side::Ask => b"SELL",
    }
}

// ---------------------------------------------------------------------------------------------
// Decoded values

/// An order's status (`X`, `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// `NEW`: working, nothing filled.
    New,
    /// `PARTIALLY_FILLED`: working, part filled.
    PartiallyFilled,
    /// `FILLED`: done, all filled.
    Filled,
    /// `CANCELED`: done.
    Canceled,
    /// `EXPIRED` (an IOC's rest, a post-only modified into the book...): done.
    Expired,
    /// `EXPIRED_IN_MATCH` (self-trade prevention): done.
    ExpiredInMatch,
    /// Anything else (`NEW_INSURANCE`, `NEW_ADL`...).
    Other,
}

impl OrderStatus {
    fn parse(s: &[u8]) -> OrderStatus {
        match s {
            b"NEW" => OrderStatus::New,
            b"PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
            b"FILLED" => OrderStatus::Filled,
            b"CANCELED" => OrderStatus::Canceled,
            b"EXPIRED" => OrderStatus::Expired,
            b"EXPIRED_IN_MATCH" => OrderStatus::ExpiredInMatch,
            _ => OrderStatus::Other,
        }
    }

    /// Whether the order is still working (`NEW`, `PARTIALLY_FILLED`).
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }
}

/// What an `ORDER_TRADE_UPDATE` reports (`x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecType {
    /// `NEW`: the order is working.
    New,
    /// `TRADE`: a fill.
    Trade,
    /// `CANCELED`.
    Canceled,
    /// `EXPIRED`.
    Expired,
    /// `AMENDMENT`: modified (`order.modify`).
    Amendment,
    /// `CALCULATED`: a liquidation or ADL fill.
    Calculated,
    /// Anything else.
    Other,
}

impl ExecType {
    fn parse(s: &[u8]) -> ExecType {
        match s {
            b"NEW" => ExecType::New,
            b"TRADE" => ExecType::Trade,
            b"CANCELED" => ExecType::Canceled,
            b"EXPIRED" => ExecType::Expired,
            b"AMENDMENT" => ExecType::Amendment,
            b"CALCULATED" => ExecType::Calculated,
            _ => ExecType::Other,
        }
    }
}

/// An order's time in force as the venue reports it (`f`, `timeInForce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireTif {
    /// `GTC`.
    Gtc,
    /// `GTX`: post-only.
    Gtx,
    /// `IOC`.
    Ioc,
    /// `FOK`.
    Fok,
    /// Anything else (`GTD`), or absent.
    Other,
}

impl WireTif {
    fn parse(s: &[u8]) -> WireTif {
        match s {
            b"GTC" => WireTif::Gtc,
            b"GTX" => WireTif::Gtx,
            b"IOC" => WireTif::Ioc,
            b"FOK" => WireTif::Fok,
            _ => WireTif::Other,
        }
    }
}

/// A Binance error: `{"code": -2011, "msg": "Unknown order sent."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiError {
    /// Binance's error code (`-5022`, `-2011`, `-1021`...).
    pub code: i32,
    /// The message, cut to [`MSG_CAPACITY`] bytes.
    pub msg: InlineStr<MSG_CAPACITY>,
}

/// The kind of a rate limit (`rateLimitType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitKind {
    /// `REQUEST_WEIGHT`: per IP.
    RequestWeight,
    /// `ORDERS`: per account.
    Orders,
    /// Anything else (`RAW_REQUESTS`...).
    Other,
}

/// The unit of a rate limit's window (`interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    /// `SECOND`.
    Second,
    /// `MINUTE`.
    Minute,
    /// `HOUR`.
    Hour,
    /// `DAY`.
    Day,
    /// Anything else.
    Other,
}

impl Interval {
    /// The unit in ms (0 for [`Interval::Other`]).
    pub fn ms(self) -> u64 {
        match self {
            Interval::Second => 1_000,
            Interval::Minute => 60_000,
            Interval::Hour => 3_600_000,
            Interval::Day => 86_400_000,
            Interval::Other => 0,
        }
    }
}

/// One `rateLimits` entry: `count` of `limit` used in the window of `interval_num` ×
/// `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// What is counted.
    pub kind: RateLimitKind,
    /// The window's unit.
    pub interval: Interval,
    /// The window's length in units.
    pub interval_num: u32,
    /// The limit.
    pub limit: u32,
    /// Used so far in the window.
    pub count: u32,
}

impl RateLimit {
    /// The window, ms.
    pub fn window_ms(&self) -> u64 {
        self.interval
            .ms()
            .saturating_mul(u64::from(self.interval_num))
    }
}

/// The `rateLimits` of a response, at most [`MAX_RATE_LIMITS`] (further entries and entries
/// not understood are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    len: usize,
    list: [RateLimit; MAX_RATE_LIMITS],
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            len: 0,
            list: [RateLimit {
                kind: RateLimitKind::Other,
                interval: Interval::Other,
                interval_num: 0,
                limit: 0,
                count: 0,
            }; MAX_RATE_LIMITS],
        }
    }
}

impl RateLimits {
    /// The entries, in the order sent.
    pub fn as_slice(&self) -> &[RateLimit] {
        &self.list[..self.len.min(MAX_RATE_LIMITS)]
    }

    /// The first entry of `kind` with a window of `window_ms`.
    pub fn find(&self, kind: RateLimitKind, window_ms: u64) -> Option<&RateLimit> {
        self.as_slice()
            .iter()
            .find(|r| r.kind == kind && r.window_ms() == window_ms)
    }

    fn push(&mut self, r: RateLimit) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = r;
            self.len += 1;
        }
    }
}

/// An order as a WebSocket API response carries it (`order.place` with
/// `newOrderRespType=RESULT`, `order.cancel`, `order.modify`, `order.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderResult {
    /// The instrument (`symbol`).
    pub instrument: InstrumentId,
    /// `clientOrderId`.
    pub client_id: InlineStr<CLIENT_ID_CAPACITY>,
    /// `orderId`.
    pub order_id: u64,
    /// `status`.
    pub status: OrderStatus,
    /// `side`.
    pub side: Side,
    /// `timeInForce` ([`WireTif::Other`] when absent).
    pub tif: WireTif,
    /// `price`, ticks (0 for a market order; an off-grid price is rounded to the nearest tick).
    pub price: i64,
    /// `origQty`, lots.
    pub orig_qty: i64,
    /// `executedQty`, lots.
    pub executed_qty: i64,
    /// `updateTime`, ms (0 when absent).
    pub update_time_ms: i64,
}

/// What a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// An order (`result` with an `orderId`).
    Order(OrderResult),
    /// A listen key (`userDataStream.start` / `ping`).
    ListenKey(InlineStr<LISTEN_KEY_CAPACITY>),
    /// An error (`error`).
    Error(ApiError),
    /// A `result` this module does not decode (account queries, `{}`), or none.
    Other,
    /// A `result` that could not be decoded (an unknown symbol, an off-grid quantity...): the
    /// request id is still known, so the caller can settle the request.
    Invalid(WireError),
}

/// A WebSocket API response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The request's `id` (`None` when it is not a `u64`: `null` for a request the venue could
    /// not read, or a string id).
    pub id: Option<u64>,
    /// The HTTP-like status: 200, 400 (the request was refused), 401, 403, 418 / 429 (rate
    /// limits), 5xx (the outcome is unknown).
    pub status: u16,
    /// What it carries.
    pub body: ResponseBody,
    /// The `rateLimits` after this request.
    pub rate_limits: RateLimits,
}

/// An `ORDER_TRADE_UPDATE` (its `o` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderUpdate {
    /// The instrument (`s`).
    pub instrument: InstrumentId,
    /// The client order id (`c`; cut to [`CLIENT_ID_CAPACITY`] bytes).
    pub client_id: InlineStr<CLIENT_ID_CAPACITY>,
    /// Side (`S`).
    pub side: Side,
    /// Time in force (`f`).
    pub tif: WireTif,
    /// What happened (`x`).
    pub exec_type: ExecType,
    /// The order's status after it (`X`).
    pub status: OrderStatus,
    /// The venue's order id (`i`).
    pub order_id: u64,
    /// This fill's quantity, lots (`l`).
    pub last_qty: i64,
    /// Filled so far, lots (`z`).
    pub cum_qty: i64,
    /// This fill's price, ticks (`L`; 0 when not a fill). A liquidation fill's price may be off
    /// the grid: it is rounded to the nearest tick and [`OrderUpdate::off_grid`] set.
    pub last_price: i64,
    /// The order's limit price, ticks (`p`; 0 for a market order; rounded like `last_price`).
    pub price: i64,
    /// The order's quantity, lots (`q`).
    pub orig_qty: i64,
    /// This fill's fee (`n`) in units of one tick × one lot of quote, rounded up (Binance prints
    /// 8 decimals, finer than the unit); negative is a rebate. 0 when absent.
    pub fee: i64,
    /// The fee's asset (`N`; empty when absent).
    pub fee_asset: InlineStr<ASSET_CAPACITY>,
    /// Whether `fee_asset` is the instrument's quote asset, the unit of `fee` (else `fee` counts
    /// units of another asset, e.g. BNB).
    pub fee_in_quote: bool,
    /// The fill was as maker (`m`).
    pub maker: bool,
    /// The trade id (`t`; 0 when not a fill).
    pub trade_id: u64,
    /// Event time (`E`), ms.
    pub event_time_ms: i64,
    /// Transaction time (`T` of the order, else of the event), ms.
    pub transaction_time_ms: i64,
    /// `last_price` or `price` was off the tick grid and rounded.
    pub off_grid: bool,
}

/// Which side of a hedge-mode account a position is (`ps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PositionSide {
    /// `BOTH`: one-way mode.
    Both,
    /// `LONG` (hedge mode).
    Long,
    /// `SHORT` (hedge mode).
    Short,
}

/// One position of an `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionUpdate {
    /// The instrument (`s`).
    pub instrument: InstrumentId,
    /// Signed position, lots (`pa`; long > 0).
    pub qty: i64,
    /// Entry price (`ep`) rounded to the nearest tick; 0 when flat.
    pub entry_price: i64,
    /// Position side (`ps`; `BOTH` when absent).
    pub side: PositionSide,
}

/// An `ACCOUNT_UPDATE`: the positions of the symbols in the instrument table (others are
/// skipped, and so are balances).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountUpdate {
    /// Event time (`E`), ms.
    pub event_time_ms: i64,
    /// Transaction time (`T`), ms.
    pub transaction_time_ms: i64,
    len: usize,
    list: [PositionUpdate; MAX_POSITIONS],
    /// Positions of known symbols beyond [`MAX_POSITIONS`], not kept.
    pub dropped: usize,
}

impl AccountUpdate {
    /// The positions kept, in the order sent.
    pub fn positions(&self) -> &[PositionUpdate] {
        &self.list[..self.len.min(MAX_POSITIONS)]
    }
}

/// A user data stream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEvent {
    /// `ORDER_TRADE_UPDATE` of a symbol in the instrument table.
    Order(OrderUpdate),
    /// `ACCOUNT_UPDATE`.
    Account(AccountUpdate),
    /// `listenKeyExpired`: the stream ends; start a new listen key and reconcile.
    ListenKeyExpired {
        /// Event time (`E`), ms.
        event_time_ms: i64,
    },
    /// `ORDER_TRADE_UPDATE` of a symbol not in the table (not ours to track).
    OtherSymbol,
    /// Any other event (`TRADE_LITE`, `MARGIN_CALL`, `ALGO_UPDATE`...).
    Other,
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes responses and user data events in place (simd-json), keeping its scratch buffers
/// and tape: one per connection thread.
///
/// `instruments` maps symbols to the engine's instruments: `(id, instrument)`, matched on
/// `instrument.symbol` (case-insensitively); a handful of entries.
pub struct Decoder {
    buffers: simd_json::Buffers,
    tape: Option<Tape<'static>>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with its buffers reserved.
    pub fn new() -> Decoder {
        Decoder {
            buffers: simd_json::Buffers::new(INPUT_CAPACITY),
            tape: Some(Tape(Vec::with_capacity(TAPE_CAPACITY)).reset()),
        }
    }

    /// Decodes one WebSocket API response. `buf` is modified (simd-json unescapes in place).
    pub fn decode_response(
        &mut self,
        buf: &mut [u8],
        instruments: &[(InstrumentId, Instrument)],
    ) -> Result<Response, WireError> {
        self.with_tape(buf, |n| response(n, instruments))
    }

    /// Decodes one user data stream event (bare, or in a combined-stream
    /// `{"stream":..,"data":{..}}` envelope). `buf` is modified (simd-json unescapes in place).
    pub fn decode_user(
        &mut self,
        buf: &mut [u8],
        instruments: &[(InstrumentId, Instrument)],
    ) -> Result<UserEvent, WireError> {
        self.with_tape(buf, |n| user(n, instruments))
    }

    fn with_tape<R>(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&[Node<'_>]) -> Result<R, WireError>,
    ) -> Result<R, WireError> {
        let mut tape = match self.tape.take() {
            Some(t) => t.reset(),
            None => Tape::null().reset(),
        };
        let r = match simd_json::fill_tape(buf, &mut self.buffers, &mut tape) {
            Ok(()) => f(&tape.0),
            Err(e) => Err(WireError::Json { at: e.index() }),
        };
        self.tape = Some(tape.reset());
        r
    }
}

fn response(
    n: &[Node<'_>],
    instruments: &[(InstrumentId, Instrument)],
) -> Result<Response, WireError> {
    if !matches!(n.first(), Some(Node::Object { .. })) {
        return Err(WireError::NotAnObject);
    }
    let mut id = None;
    let mut status = None;
    let mut result = None;
    let mut error = None;
    let mut limits = None;
    members(n, 0, "response", |k, v| {
        match k {
            "id" => id = u64_at(n, v),
            "status" => {
                status = Some(
                    u64_at(n, v)
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or(WireError::BadField("status"))?,
                )
            }
            "result" => result = Some(v),
            "error" => error = Some(v),
            "rateLimits" => limits = Some(v),
            _ => {}
        }
        Ok(())
    })?;
    let status = status.ok_or(WireError::MissingField("status"))?;
    let rate_limits = match limits {
        Some(at) => rate_limits(n, at),
        None => RateLimits::default(),
    };
    let body = match (error, result) {
        (Some(at), _) if !matches!(n.get(at), Some(Node::Static(StaticNode::Null))) => {
            match api_error(n, at) {
                Ok(e) => ResponseBody::Error(e),
                Err(e) => ResponseBody::Invalid(e),
            }
        }
        (_, Some(at)) => match result_body(n, at, instruments) {
            Ok(b) => b,
            Err(e) => ResponseBody::Invalid(e),
        },
        _ => ResponseBody::Other,
    };
    Ok(Response {
        id,
        status,
        body,
        rate_limits,
    })
}

fn api_error(n: &[Node<'_>], at: usize) -> Result<ApiError, WireError> {
    let mut code = None;
    let mut msg = InlineStr::default();
    members(n, at, "error", |k, v| {
        match k {
            "code" => {
                code = Some(
                    i64_at(n, v)
                        .and_then(|c| i32::try_from(c).ok())
                        .ok_or(WireError::BadField("code"))?,
                )
            }
            "msg" => msg = InlineStr::new(str_at(n, v, "msg")?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(ApiError {
        code: code.ok_or(WireError::MissingField("code"))?,
        msg,
    })
}

fn result_body(
    n: &[Node<'_>],
    at: usize,
    instruments: &[(InstrumentId, Instrument)],
) -> Result<ResponseBody, WireError> {
    if !matches!(n.get(at), Some(Node::Object { .. })) {
        return Ok(ResponseBody::Other);
    }
    let mut symbol = None;
    let mut client_id = None;
    let mut order_id = None;
    let mut status = None;
    let mut side = None;
    let mut tif = WireTif::Other;
    let mut price = None;
    let mut orig_qty = None;
    let mut executed_qty = None;
    let mut update_time_ms = 0;
    let mut listen_key = None;
    members(n, at, "result", |k, v| {
        match k {
            "symbol" => symbol = Some(str_at(n, v, "symbol")?),
            "clientOrderId" => client_id = Some(str_at(n, v, "clientOrderId")?),
            "orderId" => order_id = Some(u64_at(n, v).ok_or(WireError::BadField("orderId"))?),
            "status" => status = Some(OrderStatus::parse(str_at(n, v, "status")?.as_bytes())),
            "side" => side = Some(side_at(n, v, "side")?),
            "timeInForce" => tif = WireTif::parse(str_at(n, v, "timeInForce")?.as_bytes()),
            "price" => price = Some(str_at(n, v, "price")?),
            "origQty" => orig_qty = Some(str_at(n, v, "origQty")?),
            "executedQty" => executed_qty = Some(str_at(n, v, "executedQty")?),
            "updateTime" => update_time_ms = ms_at(n, v, "updateTime")?,
            "listenKey" => listen_key = Some(str_at(n, v, "listenKey")?),
            _ => {}
        }
        Ok(())
    })?;
    let Some(order_id) = order_id else {
        return Ok(match listen_key {
            Some(k) => ResponseBody::ListenKey(InlineStr::new(k)),
            None => ResponseBody::Other,
        });
    };
    let (id, inst) = lookup(
        instruments,
        symbol.ok_or(WireError::MissingField("symbol"))?,
    )?;
    let (price, _) = price_nearest(
        inst,
        price.ok_or(WireError::MissingField("price"))?,
        "price",
    )?;
    Ok(ResponseBody::Order(OrderResult {
        instrument: id,
        client_id: InlineStr::new(client_id.ok_or(WireError::MissingField("clientOrderId"))?),
        order_id,
        status: status.ok_or(WireError::MissingField("status"))?,
        side: side.ok_or(WireError::MissingField("side"))?,
        tif,
        price,
        orig_qty: lots(
            inst,
            orig_qty.ok_or(WireError::MissingField("origQty"))?,
            "origQty",
        )?,
        executed_qty: lots(
            inst,
            executed_qty.ok_or(WireError::MissingField("executedQty"))?,
            "executedQty",
        )?,
        update_time_ms,
    }))
}

fn rate_limits(n: &[Node<'_>], at: usize) -> RateLimits {
    let mut out = RateLimits::default();
    let Some(&Node::Array { len, .. }) = n.get(at) else {
        return out;
    };
    let mut i = at + 1;
    for _ in 0..len {
        if let Some(r) = rate_limit(n, i) {
            out.push(r);
        }
        i = skip(n, i);
    }
    out
}

fn rate_limit(n: &[Node<'_>], at: usize) -> Option<RateLimit> {
    let mut kind = None;
    let mut interval = None;
    let mut num = None;
    let mut limit = None;
    let mut count = None;
    let u32_of = |v| u64_at(n, v).and_then(|x| u32::try_from(x).ok());
    members(n, at, "rateLimits", |k, v| {
        match k {
            "rateLimitType" => {
                kind = str_at(n, v, "rateLimitType").ok().map(|s| match s {
                    "REQUEST_WEIGHT" => RateLimitKind::RequestWeight,
                    "ORDERS" => RateLimitKind::Orders,
                    _ => RateLimitKind::Other,
                })
            }
            "interval" => {
                interval = str_at(n, v, "interval").ok().map(|s| match s {
                    "SECOND" => Interval::Second,
                    "MINUTE" => Interval::Minute,
                    "HOUR" => Interval::Hour,
                    "DAY" => Interval::Day,
                    _ => Interval::Other,
                })
            }
            "intervalNum" => num = u32_of(v),
            "limit" => limit = u32_of(v),
            "count" => count = u32_of(v),
            _ => {}
        }
        Ok(())
    })
    .ok()?;
    Some(RateLimit {
        kind: kind?,
        interval: interval?,
        interval_num: num?,
        limit: limit?,
        count: count?,
    })
}

fn user(
    n: &[Node<'_>],
    instruments: &[(InstrumentId, Instrument)],
) -> Result<UserEvent, WireError> {
    if !matches!(n.first(), Some(Node::Object { .. })) {
        return Err(WireError::NotAnObject);
    }
    // A combined-stream envelope: the event is its `data`.
    let mut root = 0;
    let mut has_e = false;
    members(n, 0, "event", |k, v| {
        match k {
            "e" => has_e = true,
            "data" => root = v,
            _ => {}
        }
        Ok(())
    })?;
    if has_e {
        root = 0;
    }
    let mut kind = None;
    let mut event_ms = 0;
    let mut tx_ms = 0;
    let mut order = None;
    let mut account = None;
    members(n, root, "data", |k, v| {
        match k {
            "e" => kind = Some(str_at(n, v, "e")?),
            "E" => event_ms = ms_at(n, v, "E")?,
            "T" => tx_ms = ms_at(n, v, "T")?,
            "o" => order = Some(v),
            "a" => account = Some(v),
            _ => {}
        }
        Ok(())
    })?;
    match kind.ok_or(WireError::MissingField("e"))? {
        "ORDER_TRADE_UPDATE" => {
            let at = order.ok_or(WireError::MissingField("o"))?;
            match order_update(n, at, instruments, event_ms, tx_ms)? {
                Some(u) => Ok(UserEvent::Order(u)),
                None => Ok(UserEvent::OtherSymbol),
            }
        }
        "ACCOUNT_UPDATE" => {
            let at = account.ok_or(WireError::MissingField("a"))?;
            account_update(n, at, instruments, event_ms, tx_ms).map(UserEvent::Account)
        }
        "listenKeyExpired" => Ok(UserEvent::ListenKeyExpired {
            event_time_ms: event_ms,
        }),
        _ => Ok(UserEvent::Other),
    }
}

/// The `o` object of an `ORDER_TRADE_UPDATE`; `None` for a symbol not in the table.
fn order_update(
    n: &[Node<'_>],
    at: usize,
    instruments: &[(InstrumentId, Instrument)],
    event_ms: i64,
    tx_ms: i64,
) -> Result<Option<OrderUpdate>, WireError> {
    let mut s = None;
    let mut c = None;
    let mut side = None;
    let mut tif = WireTif::Other;
    let mut x = None;
    let mut status = None;
    let mut i = None;
    let (mut l, mut z, mut big_l, mut p, mut q) = (None, None, None, None, None);
    let mut fee = None;
    let mut fee_asset = "";
    let mut maker = false;
    let mut trade_id = 0;
    let mut order_tx = None;
    members(n, at, "o", |k, v| {
        match k {
            "s" => s = Some(str_at(n, v, "s")?),
            "c" => c = Some(str_at(n, v, "c")?),
            "S" => side = Some(side_at(n, v, "S")?),
            "f" => tif = WireTif::parse(str_at(n, v, "f")?.as_bytes()),
            "x" => x = Some(ExecType::parse(str_at(n, v, "x")?.as_bytes())),
            "X" => status = Some(OrderStatus::parse(str_at(n, v, "X")?.as_bytes())),
            "i" => i = Some(u64_at(n, v).ok_or(WireError::BadField("i"))?),
            "l" => l = Some(str_at(n, v, "l")?),
            "z" => z = Some(str_at(n, v, "z")?),
            "L" => big_l = Some(str_at(n, v, "L")?),
            "p" => p = Some(str_at(n, v, "p")?),
            "q" => q = Some(str_at(n, v, "q")?),
            "n" => fee = Some(str_at(n, v, "n")?),
            "N" => fee_asset = str_at(n, v, "N")?,
            "m" => maker = bool_at(n, v).ok_or(WireError::BadField("m"))?,
            "t" => trade_id = u64_at(n, v).ok_or(WireError::BadField("t"))?,
            "T" => order_tx = Some(ms_at(n, v, "T")?),
            _ => {}
        }
        Ok(())
    })?;
    let Some((id, inst)) = find(instruments, s.ok_or(WireError::MissingField("s"))?) else {
        return Ok(None);
    };
    let (last_price, off_l) = price_nearest(inst, big_l.ok_or(WireError::MissingField("L"))?, "L")?;
    let (price, off_p) = price_nearest(inst, p.ok_or(WireError::MissingField("p"))?, "p")?;
    let fee = match fee {
        Some(f) => fee_units(inst, f)?,
        None => 0,
    };
    Ok(Some(OrderUpdate {
        instrument: id,
        client_id: InlineStr::new(c.ok_or(WireError::MissingField("c"))?),
        side: side.ok_or(WireError::MissingField("S"))?,
        tif,
        exec_type: x.ok_or(WireError::MissingField("x"))?,
        status: status.ok_or(WireError::MissingField("X"))?,
        order_id: i.ok_or(WireError::MissingField("i"))?,
        last_qty: lots(inst, l.ok_or(WireError::MissingField("l"))?, "l")?,
        cum_qty: lots(inst, z.ok_or(WireError::MissingField("z"))?, "z")?,
        last_price,
        price,
        orig_qty: lots(inst, q.ok_or(WireError::MissingField("q"))?, "q")?,
        fee,
        fee_asset: InlineStr::new(fee_asset),
        fee_in_quote: inst.quote_asset.as_bytes() == fee_asset.as_bytes(),
        maker,
        trade_id,
        event_time_ms: event_ms,
        transaction_time_ms: order_tx.unwrap_or(tx_ms),
        off_grid: off_l || off_p,
    }))
}

fn account_update(
    n: &[Node<'_>],
    at: usize,
    instruments: &[(InstrumentId, Instrument)],
    event_ms: i64,
    tx_ms: i64,
) -> Result<AccountUpdate, WireError> {
    let mut out = AccountUpdate {
        event_time_ms: event_ms,
        transaction_time_ms: tx_ms,
        len: 0,
        list: [PositionUpdate {
            instrument: 0,
            qty: 0,
            entry_price: 0,
            side: PositionSide::Both,
        }; MAX_POSITIONS],
        dropped: 0,
    };
    let mut positions = None;
    members(n, at, "a", |k, v| {
        if k == "P" {
            positions = Some(v);
        }
        Ok(())
    })?;
    let Some(at) = positions else {
        return Ok(out);
    };
    let Some(&Node::Array { len, .. }) = n.get(at) else {
        return Err(WireError::BadField("P"));
    };
    let mut i = at + 1;
    for _ in 0..len {
        if let Some(p) = position(n, i, instruments)? {
            match out.list.get_mut(out.len) {
                Some(slot) => {
                    *slot = p;
                    out.len += 1;
                }
                None => out.dropped += 1,
            }
        }
        i = skip(n, i);
    }
    Ok(out)
}

fn position(
    n: &[Node<'_>],
    at: usize,
    instruments: &[(InstrumentId, Instrument)],
) -> Result<Option<PositionUpdate>, WireError> {
    let (mut s, mut pa, mut ep) = (None, None, None);
    let mut side = PositionSide::Both;
    members(n, at, "P", |k, v| {
        match k {
            "s" => s = Some(str_at(n, v, "s")?),
            "pa" => pa = Some(str_at(n, v, "pa")?),
            "ep" => ep = Some(str_at(n, v, "ep")?),
            "ps" => {
                side = match str_at(n, v, "ps")? {
                    "BOTH" => PositionSide::Both,
                    "LONG" => PositionSide::Long,
                    "SHORT" => PositionSide::Short,
                    _ => return Err(WireError::BadField("ps")),
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    let Some((id, inst)) = find(instruments, s.ok_or(WireError::MissingField("s"))?) else {
        return Ok(None);
    };
    let pa = pa.ok_or(WireError::MissingField("pa"))?;
    let (neg, abs) = match pa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, pa),
    };
    let qty = lots(inst, abs, "pa")?;
    let entry_price = match ep {
        Some(e) => price_nearest(inst, e, "ep")?.0,
        None => 0,
    };
    Ok(Some(PositionUpdate {
        instrument: id,
        qty: if neg { -qty } else { qty },
        entry_price,
        side,
    }))
}

// ---------------------------------------------------------------------------------------------
// Execution reports

/// The engine's report of an `ORDER_TRADE_UPDATE` of our order `cid` (the caller has matched
/// `u.client_id` to it, e.g. with [`ClientIds::parse`](crate::binance::cid::ClientIds::parse)):
///
/// | `x` | `X` | report |
/// |---|---|---|
/// | `NEW` | | `Ack` |
/// | `TRADE`, `CALCULATED` (with a fill) | `FILLED` | `Fill` |
/// | `TRADE`, `CALCULATED` (with a fill) | other | `PartialFill` |
/// | `CANCELED` | | `Canceled` |
/// | `EXPIRED` | `EXPIRED`, `EXPIRED_IN_MATCH` | `Expired` |
/// | `AMENDMENT`, other | | `None` |
///
/// A post-only order that would take never gets here: Binance (and `ringmaker venue`) refuse
/// it in the `order.place` answer with `-5022` ([`place_rejected`]). A fee in another asset
/// than the quote (`fee_in_quote` false) is reported as 0.
pub fn exec_report(u: &OrderUpdate, cid: u64) -> Option<ExecReport> {
    let base = |kind| ExecReport {
        venue_order_id: u.order_id,
        ..ExecReport::new(kind, cid, 0, 0, u.cum_qty)
    };
    match u.exec_type {
        ExecType::New => Some(base(ExecKind::Ack)),
        ExecType::Trade | ExecType::Calculated if u.last_qty > 0 => {
            let kind = if u.status == OrderStatus::Filled {
                ExecKind::Fill
            } else {
                ExecKind::PartialFill
            };
            Some(ExecReport {
                last_price: u.last_price,
                last_qty: u.last_qty,
                fee: if u.fee_in_quote { u.fee } else { 0 },
                taker: !u.maker,
                ..base(kind)
            })
        }
        ExecType::Canceled => Some(base(ExecKind::Canceled)),
        ExecType::Expired => Some(base(ExecKind::Expired)),
        _ => None,
    }
}

/// Whether an error answer leaves the outcome of the request unknown: HTTP 5xx, `-1006`
/// (unexpected response) and `-1007` (timeout; "execution status unknown"). Query the order
/// (`order.status`) instead of concluding.
pub fn outcome_unknown(status: u16, e: &ApiError) -> bool {
    status >= 500 || matches!(e.code, -1006 | -1007)
}

/// The engine's report of an `order.place` error answer for our order `cid`: `Rejected` with
/// the code (`post_only_reject` for `-5022`, a post-only order that would take). `None` when
/// the outcome is unknown ([`outcome_unknown`]).
pub fn place_rejected(status: u16, e: &ApiError, cid: u64) -> Option<ExecReport> {
    if outcome_unknown(status, e) {
        return None;
    }
    Some(ExecReport {
        reject_code: reject_code(e.code),
        post_only_reject: e.code == i32::from(engine::reject_code::POST_ONLY_WOULD_TAKE),
        ..ExecReport::new(ExecKind::Rejected, cid, 0, 0, 0)
    })
}

/// The engine's report of an `order.cancel` error answer for our order `cid`: `CancelRejected`
/// with the code (`-2011` unknown order, `-2013` no such order, `-1003` rate limit...). `None`
/// when the outcome is unknown ([`outcome_unknown`]).
pub fn cancel_rejected(status: u16, e: &ApiError, cid: u64) -> Option<ExecReport> {
    if outcome_unknown(status, e) {
        return None;
    }
    Some(ExecReport {
        reject_code: reject_code(e.code),
        ..ExecReport::new(ExecKind::CancelRejected, cid, 0, 0, 0)
    })
}

/// A Binance code as the engine's `i16` (codes are -1000..-9999; anything else saturates).
fn reject_code(code: i32) -> i16 {
    i16::try_from(code).unwrap_or(if code < 0 { i16::MIN } else { i16::MAX })
}

// ---------------------------------------------------------------------------------------------
// Tape and decimal helpers

/// Calls `f(key, value node)` for each member of the object at `at`; `BadField(field)` if it
/// is not an object.
fn members<'a>(
    n: &[Node<'a>],
    at: usize,
    field: &'static str,
    mut f: impl FnMut(&'a str, usize) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let Some(&Node::Object { len, .. }) = n.get(at) else {
        return Err(WireError::BadField(field));
    };
    let mut i = at + 1;
    for _ in 0..len {
        let Some(Node::String(k)) = n.get(i) else {
            return Err(WireError::BadField(field));
        };
        f(k, i + 1)?;
        i = skip(n, i + 1);
    }
    Ok(())
}

/// The node after the value at `i`, nested values skipped.
fn skip(n: &[Node<'_>], i: usize) -> usize {
    match n.get(i) {
        Some(Node::Object { count, .. } | Node::Array { count, .. }) => {
            i.saturating_add(1).saturating_add(*count)
        }
        _ => i.saturating_add(1),
    }
}

fn u64_at(n: &[Node<'_>], i: usize) -> Option<u64> {
    match n.get(i)? {
        Node::Static(StaticNode::U64(v)) => Some(*v),
        Node::Static(StaticNode::I64(v)) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn i64_at(n: &[Node<'_>], i: usize) -> Option<i64> {
    match n.get(i)? {
        Node::Static(StaticNode::U64(v)) => i64::try_from(*v).ok(),
        Node::Static(StaticNode::I64(v)) => Some(*v),
        _ => None,
    }
}

/// A time in ms (non-negative `i64`).
fn ms_at(n: &[Node<'_>], i: usize, field: &'static str) -> Result<i64, WireError> {
    u64_at(n, i)
        .and_then(|v| i64::try_from(v).ok())
        .ok_or(WireError::BadField(field))
}

fn bool_at(n: &[Node<'_>], i: usize) -> Option<bool> {
    match n.get(i)? {
        Node::Static(StaticNode::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn str_at<'a>(n: &[Node<'a>], i: usize, field: &'static str) -> Result<&'a str, WireError> {
    match n.get(i) {
        Some(Node::String(s)) => Ok(s),
        _ => Err(WireError::BadField(field)),
    }
}

fn side_at(n: &[Node<'_>], i: usize, field: &'static str) -> Result<Side, WireError> {
    match str_at(n, i, field)? {
        "BUY" => Ok(Side::Bid),
        "SELL" => Ok(Side::Ask),
        _ => Err(WireError::BadField(field)),
    }
}

fn find<'t>(
    instruments: &'t [(InstrumentId, Instrument)],
    symbol: &str,
) -> Option<(InstrumentId, &'t Instrument)> {
    instruments
        .iter()
        .find(|(_, i)| i.symbol.eq_ignore_case(symbol.as_bytes()))
        .map(|(id, i)| (*id, i))
}

fn lookup<'t>(
    instruments: &'t [(InstrumentId, Instrument)],
    symbol: &str,
) -> Result<(InstrumentId, &'t Instrument), WireError> {
    find(instruments, symbol).ok_or(WireError::UnknownSymbol)
}

fn lots(inst: &Instrument, s: &str, field: &'static str) -> Result<i64, WireError> {
    inst.qty_to_lots(s.as_bytes())
        .map_err(|err| WireError::Decimal { field, err })
}

/// A non-negative decimal price (an average entry price, a liquidation fill) in ticks of
/// `inst`: exact when on the grid, else the nearest tick (ties up).
pub fn ticks_nearest(inst: &Instrument, s: &str) -> Result<i64, WireError> {
    price_nearest(inst, s, "price").map(|(t, _)| t)
}

/// A non-negative price in ticks: exact when on the grid (0 allowed), else rounded to the
/// nearest tick (ties up) with `true`.
fn price_nearest(
    inst: &Instrument,
    s: &str,
    field: &'static str,
) -> Result<(i64, bool), WireError> {
    match inst.tick.to_steps(s.as_bytes()) {
        Ok(t) => Ok((t, false)),
        Err(engine::DecimalError::OffGrid) => {
            let t = to_units(
                s.as_bytes(),
                u128::from(inst.tick.mantissa()),
                inst.tick.scale(),
                Round::Nearest,
            )
            .map_err(|err| WireError::Decimal { field, err })?;
            Ok((t, true))
        }
        Err(err) => Err(WireError::Decimal { field, err }),
    }
}

/// A fee (`n`, quote asset, may be negative) in units of one tick × one lot, rounded towards
/// +∞ (a cost never looks smaller than it was).
fn fee_units(inst: &Instrument, s: &str) -> Result<i64, WireError> {
    let unit = inst.notional_unit();
    let err = |err| WireError::Decimal { field: "n", err };
    match s.strip_prefix('-') {
        Some(abs) => to_units(abs.as_bytes(), unit.mantissa, unit.scale, Round::Down)
            .map(|v| -v)
            .map_err(err),
        None => to_units(s.as_bytes(), unit.mantissa, unit.scale, Round::Up).map_err(err),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Round {
    Down,
    Up,
    Nearest,
}

/// A plain non-negative decimal (`digits` or `digits.digits`) in units of
/// `mantissa × 10^-scale`, rounded.
fn to_units(
    s: &[u8],
    mantissa: u128,
    scale: u8,
    round: Round,
) -> Result<i64, engine::DecimalError> {
    use engine::DecimalError as E;
    if s.is_empty() {
        return Err(E::Empty);
    }
    if s.first() == Some(&b'-') {
        return Err(E::Negative);
    }
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &s[s.len()..]),
    };
    if int.is_empty() || (s.contains(&b'.') && frac.is_empty()) {
        return Err(E::NotNumeric);
    }
    // Trailing zeros change nothing; digits past 30 decimals cannot change the result at any
    // scale the grids use (≤ 18).
    let mut frac = &frac[..frac.len().min(30)];
    while let [rest @ .., b'0'] = frac {
        frac = rest;
    }
    let mut digits: u128 = 0;
    for &b in int.iter().chain(frac) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(E::NotNumeric);
        }
        digits = digits
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(d)))
            .ok_or(E::Overflow)?;
    }
    // value = digits / 10^frac; units = value / (mantissa / 10^scale).
    let (num, den) = (
        digits
            .checked_mul(pow10(u32::from(scale))?)
            .ok_or(E::Overflow)?,
        pow10(frac.len() as u32)?
            .checked_mul(mantissa)
            .ok_or(E::Overflow)?,
    );
    if den == 0 {
        return Err(E::Overflow);
    }
    let (q, r) = (num / den, num % den);
    let q = match round {
        Round::Down => q,
        Round::Up => q + u128::from(r != 0),
        Round::Nearest => q + u128::from(r >= den - r),
    };
    i64::try_from(q).map_err(|_| E::Overflow)
}

fn pow10(e: u32) -> Result<u128, engine::DecimalError> {
    10u128.checked_pow(e).ok_or(engine::DecimalError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;
    use proptest::prelude::*;

    /// Binance's documented example HMAC key pair (public, the venue's test account).
    const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
    const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
    const CID: &[u8] = b"rm0000000000007-0001000000000005";

    /// A test-only HMAC-SHA256 signer.
    struct Hmac {
        key: String,
        secret: Vec<u8>,
    }

    impl Signer for Hmac {
        fn api_key(&self) -> &str {
            &self.key
        }

        fn sign_into(&self, payload: &[u8], out: &mut Vec<u8>) {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret).unwrap();
            mac.update(payload);
            for b in mac.finalize().into_bytes() {
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 15)]);
            }
        }
    }

    fn signer() -> Hmac {
        Hmac {
            key: KEY.into(),
            secret: SECRET.as_bytes().to_vec(),
        }
    }

    fn btc() -> Instrument {
        Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap()
    }

    fn table() -> Vec<(InstrumentId, Instrument)> {
        vec![
            (3, btc()),
            (
                5,
                Instrument::new("ETHUSDT", "0.01", "0.001", "0.001", "20").unwrap(),
            ),
        ]
    }

    fn spec(inst: &Instrument) -> OrderSpec<'_> {
        OrderSpec {
            instrument: inst,
            client_id: CID,
            side: Side::Bid,
            tif: TimeInForce::PostOnly,
            price: 617_002,
            qty: 2,
        }
    }

    /// What the venue checks: the payload it rebuilds from the JSON params equals ours, and the
    /// signature verifies.
    fn venue_accepts(req: &[u8], payload: &[u8]) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(req).unwrap();
        let params = v["params"].as_object().unwrap();
        assert_eq!(
            venue::auth::ws_payload(params).as_bytes(),
            payload,
            "{}",
            String::from_utf8_lossy(req)
        );
        let account = venue::auth::Account {
            api_key: KEY.into(),
            hmac_secret: Some(venue::auth::Secret::new(SECRET)),
            ed25519: None,
            balances: Default::default(),
            leverage: 20,
        };
        let sig = params["signature"].as_str().unwrap();
        assert!(venue::auth::verify(
            &account,
            std::str::from_utf8(payload).unwrap(),
            sig
        ));
        v
    }

    #[test]
    fn place_byte_exact() {
        let inst = btc();
        let mut w = RequestWriter::default();
        let req = w
            .place(&signer(), 7, 1_700_000_000_000, &spec(&inst))
            .unwrap()
            .to_vec();
        // The payload and signature were computed independently (Python's hmac).
        let payload = "apiKey=dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83\
            &newClientOrderId=rm0000000000007-0001000000000005&newOrderRespType=RESULT\
            &price=61700.20&quantity=0.002&recvWindow=5000&side=BUY&symbol=BTCUSDT\
            &timeInForce=GTX&timestamp=1700000000000&type=LIMIT";
        assert_eq!(w.last_payload(), payload.as_bytes());
        let want = concat!(
            r#"{"id":7,"method":"order.place","params":{"#,
            r#""apiKey":"dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83","#,
            r#""newClientOrderId":"rm0000000000007-0001000000000005","#,
            r#""newOrderRespType":"RESULT","price":"61700.20","quantity":"0.002","#,
            r#""recvWindow":5000,"side":"BUY","symbol":"BTCUSDT","timeInForce":"GTX","#,
            r#""timestamp":1700000000000,"type":"LIMIT","#,
            r#""signature":"49f4e5c908744267f325981558cd32fd00fca51ab3b7a1b42e3d4e66d8c74df6"}}"#
        );
        assert_eq!(String::from_utf8(req.clone()).unwrap(), want);
        venue_accepts(&req, payload.as_bytes());
    }

    #[test]
    fn every_request_is_accepted_by_the_venue_verifier() {
        let inst = btc();
        let s = signer();
        let mut w = RequestWriter::new(1_500);
        let ioc = OrderSpec {
            side: Side::Ask,
            tif: TimeInForce::Ioc,
            ..spec(&inst)
        };
        let req = w.place(&s, 1, 5, &ioc).unwrap().to_vec();
        let v = venue_accepts(&req, &w.payload);
        assert_eq!(v["params"]["timeInForce"], "IOC");
        assert_eq!(v["params"]["side"], "SELL");
        assert_eq!(v["params"]["recvWindow"], 1500);
        let req = w.cancel(&s, 2, 6, &inst, CID).unwrap().to_vec();
        let v = venue_accepts(&req, &w.payload);
        assert_eq!(v["method"], "order.cancel");
        assert_eq!(
            v["params"]["origClientOrderId"],
            std::str::from_utf8(CID).unwrap()
        );
        let req = w.status(&s, 3, 7, &inst, CID).unwrap().to_vec();
        assert_eq!(venue_accepts(&req, &w.payload)["method"], "order.status");
        let req = w.modify(&s, 4, 8, &spec(&inst)).unwrap().to_vec();
        let v = venue_accepts(&req, &w.payload);
        assert_eq!(v["method"], "order.modify");
        assert!(v["params"].get("timeInForce").is_none());
        assert_eq!(v["params"]["price"], "61700.20");
        for (op, method) in [
            (UserStreamOp::Start, "userDataStream.start"),
            (UserStreamOp::Ping, "userDataStream.ping"),
            (UserStreamOp::Stop, "userDataStream.stop"),
        ] {
            let req = w.user_stream(&s, 9, op).unwrap();
            let v: serde_json::Value = serde_json::from_slice(req).unwrap();
            assert_eq!(
                v,
                serde_json::json!({"id": 9, "method": method, "params": {"apiKey": KEY}})
            );
        }
        assert_eq!(RequestWriter::new(0).recv_window_ms(), 1);
        assert_eq!(RequestWriter::new(90_000).recv_window_ms(), 60_000);
    }

    #[test]
    fn requests_refuse_what_may_not_go_on_the_wire() {
        let inst = btc();
        let s = signer();
        let mut w = RequestWriter::default();
        for bad in [&b""[..], b"has space", b"quote\"", b"a&b=c", &[b'x'; 37]] {
            let o = OrderSpec {
                client_id: bad,
                ..spec(&inst)
            };
            assert_eq!(
                w.place(&s, 1, 1, &o).unwrap_err(),
                WireError::BadText("newClientOrderId")
            );
            assert_eq!(
                w.cancel(&s, 1, 1, &inst, bad).unwrap_err(),
                WireError::BadText("origClientOrderId")
            );
        }
        let o = OrderSpec {
            price: 0,
            ..spec(&inst)
        };
        assert_eq!(
            w.place(&s, 1, 1, &o).unwrap_err(),
            WireError::NotPositive("price")
        );
        let o = OrderSpec {
            qty: -1,
            ..spec(&inst)
        };
        assert_eq!(
            w.modify(&s, 1, 1, &o).unwrap_err(),
            WireError::NotPositive("quantity")
        );
        let bad_key = Hmac {
            key: "k\"ey".into(),
            secret: vec![1],
        };
        assert_eq!(
            w.place(&bad_key, 1, 1, &spec(&inst)).unwrap_err(),
            WireError::BadText("apiKey")
        );
        assert_eq!(
            w.user_stream(&bad_key, 1, UserStreamOp::Start).unwrap_err(),
            WireError::BadText("apiKey")
        );
    }

    proptest! {
        #[test]
        fn signed_requests_verify(
            id: u64,
            ts in 0i64..=i64::MAX,
            price in 1i64..=(1 << 47),
            qty in 1i64..=(1 << 40),
            cid in "[.A-Z:/a-z0-9_-]{1,36}",
            ask: bool,
            ioc: bool,
        ) {
            let inst = btc();
            let o = OrderSpec {
                instrument: &inst,
                client_id: cid.as_bytes(),
                side: if ask { Side::Ask } else { Side::Bid },
                tif: if ioc { TimeInForce::Ioc } else { TimeInForce::PostOnly },
                price,
                qty,
            };
            let mut w = RequestWriter::default();
            let req = w.place(&signer(), id, ts, &o).unwrap().to_vec();
            let v = venue_accepts(&req, &w.payload);
            prop_assert_eq!(v["id"].as_u64(), Some(id));
            prop_assert_eq!(inst.price_to_ticks(v["params"]["price"].as_str().unwrap().as_bytes()), Ok(price));
            prop_assert_eq!(inst.qty_to_lots(v["params"]["quantity"].as_str().unwrap().as_bytes()), Ok(qty));
            let req = w.modify(&signer(), id, ts, &o).unwrap().to_vec();
            venue_accepts(&req, &w.payload);
        }
    }

    // ---- responses

    fn response_of(text: &str) -> Result<Response, WireError> {
        let mut buf = text.as_bytes().to_vec();
        Decoder::new().decode_response(&mut buf, &table())
    }

    fn user_of(text: &str) -> Result<UserEvent, WireError> {
        let mut buf = text.as_bytes().to_vec();
        Decoder::new().decode_user(&mut buf, &table())
    }

    /// An `order.place` answer as `ringmaker venue` writes it.
    const PLACED: &str = r#"{"id":7,"status":200,"result":{"orderId":12,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"rm0000000000007-0001000000000005","price":"61700.20","avgPrice":"0","origQty":"0.002","executedQty":"0.000","cumQuote":"0.00000000","timeInForce":"GTX","type":"LIMIT","reduceOnly":false,"closePosition":false,"side":"BUY","positionSide":"BOTH","stopPrice":"0","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT","priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0,"time":1700000000000,"updateTime":1700000000001},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":3},{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":1},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200,"count":1}]}"#;
    const GTX_REJECT: &str = r#"{"id":8,"status":400,"error":{"code":-5022,"msg":"Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history"},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":4}]}"#;

    #[test]
    fn order_response() {
        let r = response_of(PLACED).unwrap();
        assert_eq!((r.id, r.status), (Some(7), 200));
        let ResponseBody::Order(o) = r.body else {
            panic!("{r:?}")
        };
        assert_eq!(
            o,
            OrderResult {
                instrument: 3,
                client_id: InlineStr::new("rm0000000000007-0001000000000005"),
                order_id: 12,
                status: OrderStatus::New,
                side: Side::Bid,
                tif: WireTif::Gtx,
                price: 617_002,
                orig_qty: 2,
                executed_qty: 0,
                update_time_ms: 1_700_000_000_001,
            }
        );
        let rl = r.rate_limits;
        assert_eq!(rl.as_slice().len(), 3);
        let w = rl.find(RateLimitKind::RequestWeight, 60_000).unwrap();
        assert_eq!((w.limit, w.count), (2400, 3));
        let o10 = rl.find(RateLimitKind::Orders, 10_000).unwrap();
        assert_eq!(
            (o10.interval, o10.interval_num, o10.limit, o10.count),
            (Interval::Second, 10, 300, 1)
        );
        assert!(rl.find(RateLimitKind::Orders, 60_000).is_some());
    }

    #[test]
    fn order_response_fixture() {
        // Binance's documented REST order answer is the `result` of the WebSocket API's.
        let order = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/binance-fixtures/futures/http_json/order_response.json"
        ))
        .unwrap();
        let r = response_of(&format!(
            r#"{{"id":"a-string-id","status":200,"result":{order}}}"#
        ))
        .unwrap();
        assert_eq!((r.id, r.status), (None, 200));
        assert!(r.rate_limits.as_slice().is_empty());
        let ResponseBody::Order(o) = r.body else {
            panic!("{r:?}")
        };
        assert_eq!(o.client_id.as_str(), "testOrder123");
        assert_eq!(
            (o.order_id, o.price, o.orig_qty, o.executed_qty),
            (12_345_678, 500_000, 1, 0)
        );
        assert_eq!(
            (o.side, o.status, o.tif),
            (Side::Bid, OrderStatus::New, WireTif::Gtc)
        );
        assert_eq!(o.update_time_ms, 1_625_474_304_765);
    }

    #[test]
    fn error_responses() {
        let r = response_of(GTX_REJECT).unwrap();
        assert_eq!((r.id, r.status), (Some(8), 400));
        let ResponseBody::Error(e) = r.body else {
            panic!("{r:?}")
        };
        assert_eq!(e.code, -5022);
        assert_eq!(e.msg.as_bytes().len(), MSG_CAPACITY);
        assert!(e
            .msg
            .as_str()
            .starts_with("Due to the order could not be executed as maker"));
        let rep = place_rejected(r.status, &e, 99).unwrap();
        assert_eq!(rep.kind, ExecKind::Rejected);
        assert_eq!(
            (rep.client_order_id, rep.reject_code, rep.post_only_reject),
            (99, -5022, true)
        );

        // The venue's answer to a frame it cannot read.
        let r = response_of(
            r#"{"id":null,"status":400,"error":{"code":-1000,"msg":"Malformed request."}}"#,
        )
        .unwrap();
        assert_eq!(r.id, None);
        let ResponseBody::Error(e) = r.body else {
            panic!("{r:?}")
        };
        assert_eq!((e.code, e.msg.as_str()), (-1000, "Malformed request."));

        let r = response_of(
            r#"{"id":3,"status":400,"error":{"code":-2011,"msg":"Unknown order sent."}}"#,
        )
        .unwrap();
        let ResponseBody::Error(e) = r.body else {
            panic!("{r:?}")
        };
        let rep = cancel_rejected(r.status, &e, 5).unwrap();
        assert_eq!(
            (rep.kind, rep.reject_code, rep.post_only_reject),
            (ExecKind::CancelRejected, -2011, false)
        );
        let rep = place_rejected(
            400,
            &ApiError {
                code: -4164,
                msg: InlineStr::new("too small"),
            },
            5,
        )
        .unwrap();
        assert_eq!(
            (rep.kind, rep.reject_code, rep.post_only_reject),
            (ExecKind::Rejected, -4164, false)
        );
        let rep = place_rejected(
            429,
            &ApiError {
                code: -1015,
                msg: InlineStr::default(),
            },
            5,
        )
        .unwrap();
        assert_eq!(rep.reject_code, -1015);

        // Outcome unknown: no report, the order is to be queried.
        let timeout = ApiError { code: -1007, msg: InlineStr::new("Timeout waiting for response from backend server. Send status unknown; execution status unknown.") };
        assert!(place_rejected(408, &timeout, 1).is_none());
        assert!(cancel_rejected(408, &timeout, 1).is_none());
        let busy = ApiError {
            code: -1008,
            msg: InlineStr::default(),
        };
        assert!(place_rejected(503, &busy, 1).is_none());
        assert!(place_rejected(400, &busy, 1).is_some());
        assert_eq!(reject_code(-70_000), i16::MIN);
    }

    #[test]
    fn other_responses() {
        let r = response_of(r#"{"id":1,"status":200,"result":{"listenKey":"xs0mRXdAKlIPDRFrlPcw0qI41Eh3ixNntmymGyhrhgqo7L6FuLaWArTD7RLP"},"rateLimits":[]}"#).unwrap();
        assert_eq!(
            r.body,
            ResponseBody::ListenKey(InlineStr::new(
                "xs0mRXdAKlIPDRFrlPcw0qI41Eh3ixNntmymGyhrhgqo7L6FuLaWArTD7RLP"
            ))
        );
        assert_eq!(
            response_of(r#"{"id":2,"status":200,"result":{}}"#)
                .unwrap()
                .body,
            ResponseBody::Other
        );
        assert_eq!(
            response_of(r#"{"id":2,"status":200,"result":[1,2]}"#)
                .unwrap()
                .body,
            ResponseBody::Other
        );
        assert_eq!(
            response_of(r#"{"id":2,"status":200,"result":null,"error":null}"#)
                .unwrap()
                .body,
            ResponseBody::Other
        );
        // A result the module cannot read keeps the id.
        let r = response_of(&PLACED.replace("BTCUSDT", "DOGEUSDT")).unwrap();
        assert_eq!(
            (r.id, r.body),
            (Some(7), ResponseBody::Invalid(WireError::UnknownSymbol))
        );
        let r =
            response_of(&PLACED.replace(r#""origQty":"0.002""#, r#""origQty":"0.0025""#)).unwrap();
        assert_eq!(
            r.body,
            ResponseBody::Invalid(WireError::Decimal {
                field: "origQty",
                err: engine::DecimalError::OffGrid
            })
        );
        // Entries not understood are skipped; more than MAX_RATE_LIMITS are dropped.
        let many = r#"{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":1}"#;
        let r = response_of(&format!(
            r#"{{"id":1,"status":200,"rateLimits":[{many},{{"x":1}},7,{many},{many},{many},{many}]}}"#
        ))
        .unwrap();
        assert_eq!(r.rate_limits.as_slice().len(), MAX_RATE_LIMITS);
    }

    #[test]
    fn malformed_responses() {
        assert!(matches!(response_of(""), Err(WireError::Json { .. })));
        assert!(matches!(
            response_of("{\"id\":1,"),
            Err(WireError::Json { .. })
        ));
        assert_eq!(response_of("[1]"), Err(WireError::NotAnObject));
        assert_eq!(
            response_of(r#"{"id":1}"#),
            Err(WireError::MissingField("status"))
        );
        assert_eq!(
            response_of(r#"{"id":1,"status":70000}"#),
            Err(WireError::BadField("status"))
        );
        assert_eq!(
            response_of(r#"{"id":1,"status":"200"}"#),
            Err(WireError::BadField("status"))
        );
        assert_eq!(
            response_of(r#"{"id":1,"status":400,"error":{"msg":"x"}}"#)
                .unwrap()
                .body,
            ResponseBody::Invalid(WireError::MissingField("code"))
        );
    }

    // ---- user data

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../tests/data/binance-fixtures/futures/user_data_json/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Events as `ringmaker venue` writes them.
    const VENUE_NEW: &str = r#"{"e":"ORDER_TRADE_UPDATE","E":1700000000001,"T":1700000000001,"o":{"s":"BTCUSDT","c":"rm0000000000007-0001000000000005","S":"BUY","o":"LIMIT","f":"GTX","q":"0.002","p":"61700.20","ap":"0","sp":"0","x":"NEW","X":"NEW","i":12,"l":"0.000","z":"0.000","L":"0","n":"0","N":"USDT","T":1700000000001,"t":0,"b":"123.40400000","a":"0","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0","pP":false,"si":0,"ss":0,"V":"NONE","pm":"NONE","gtd":0}}"#;
    const VENUE_FILL: &str = r#"{"e":"ORDER_TRADE_UPDATE","E":1700000000002,"T":1700000000002,"o":{"s":"BTCUSDT","c":"rm0000000000007-0001000000000005","S":"BUY","o":"LIMIT","f":"GTX","q":"0.002","p":"61700.20","ap":"61700.20000000","sp":"0","x":"TRADE","X":"FILLED","i":12,"l":"0.002","z":"0.002","L":"61700.20","n":"0.02468008","N":"USDT","T":1700000000002,"t":5,"b":"0","a":"0","m":true,"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0","pP":false,"si":0,"ss":0,"V":"NONE","pm":"NONE","gtd":0}}"#;

    #[test]
    fn order_update_fixtures() {
        let UserEvent::Order(u) = user_of(&fixture("order_update_trade.json")).unwrap() else {
            panic!()
        };
        assert_eq!(
            u,
            OrderUpdate {
                instrument: 3,
                client_id: InlineStr::new("TEST"),
                side: Side::Bid,
                tif: WireTif::Gtc,
                exec_type: ExecType::Trade,
                status: OrderStatus::PartiallyFilled,
                order_id: 8_886_774,
                last_qty: 1,
                cum_qty: 1,
                last_price: 71_005,
                price: 71_005,
                orig_qty: 1,
                // 0.01 USDT in units of 0.1 × 0.001.
                fee: 100,
                fee_asset: InlineStr::new("USDT"),
                fee_in_quote: true,
                maker: true,
                trade_id: 12_345_678,
                event_time_ms: 1_568_879_465_651,
                transaction_time_ms: 1_568_879_465_651,
                off_grid: false,
            }
        );
        let r = exec_report(&u, 77).unwrap();
        assert_eq!(
            r,
            ExecReport {
                venue_order_id: 8_886_774,
                fee: 100,
                ..ExecReport::new(ExecKind::PartialFill, 77, 71_005, 1, 1)
            }
        );
        // A trailing stop's NEW (price "0", stop price off the grid, not read).
        let UserEvent::Order(u) = user_of(&fixture("order_update_new.json")).unwrap() else {
            panic!()
        };
        assert_eq!(
            (u.exec_type, u.status, u.price, u.last_price, u.fee),
            (ExecType::New, OrderStatus::New, 0, 0, 0)
        );
        assert_eq!(exec_report(&u, 1).map(|r| r.kind), Some(ExecKind::Ack));
    }

    #[test]
    fn venue_order_updates() {
        let UserEvent::Order(u) = user_of(VENUE_NEW).unwrap() else {
            panic!()
        };
        assert_eq!(
            (u.tif, u.exec_type, u.last_qty, u.cum_qty),
            (WireTif::Gtx, ExecType::New, 0, 0)
        );
        assert_eq!(
            exec_report(&u, 5),
            Some(ExecReport {
                venue_order_id: 12,
                ..ExecReport::new(ExecKind::Ack, 5, 0, 0, 0)
            })
        );
        let UserEvent::Order(u) = user_of(VENUE_FILL).unwrap() else {
            panic!()
        };
        // 0.02468008 USDT is 246.8008 units of 0.0001: rounded up.
        assert_eq!((u.fee, u.maker, u.trade_id), (247, true, 5));
        let r = exec_report(&u, 5).unwrap();
        assert_eq!(
            (r.kind, r.last_price, r.last_qty, r.cum_qty, r.taker),
            (ExecKind::Fill, 617_002, 2, 2, false)
        );

        let with = |x: &str, st: &str| {
            let t = VENUE_NEW.replace(
                r#""x":"NEW","X":"NEW""#,
                &format!(r#""x":"{x}","X":"{st}""#),
            );
            let UserEvent::Order(u) = user_of(&t).unwrap() else {
                panic!("{t}")
            };
            exec_report(&u, 5).map(|r| r.kind)
        };
        assert_eq!(with("CANCELED", "CANCELED"), Some(ExecKind::Canceled));
        assert_eq!(with("EXPIRED", "EXPIRED"), Some(ExecKind::Expired));
        assert_eq!(with("EXPIRED", "EXPIRED_IN_MATCH"), Some(ExecKind::Expired));
        assert_eq!(with("AMENDMENT", "NEW"), None);
        assert_eq!(with("SOMETHING_NEW", "NEW"), None);
        // A trade report without a quantity is no fill.
        assert_eq!(with("TRADE", "PARTIALLY_FILLED"), None);
        let partial = VENUE_FILL.replace(r#""X":"FILLED""#, r#""X":"PARTIALLY_FILLED""#);
        let UserEvent::Order(u) = user_of(&partial).unwrap() else {
            panic!()
        };
        assert_eq!(
            exec_report(&u, 5).map(|r| r.kind),
            Some(ExecKind::PartialFill)
        );
        // A taker fill, a rebate, a fee in BNB.
        let t = VENUE_FILL
            .replace(r#""m":true"#, r#""m":false"#)
            .replace(r#""n":"0.02468008""#, r#""n":"-0.00012345""#);
        let UserEvent::Order(u) = user_of(&t).unwrap() else {
            panic!()
        };
        let r = exec_report(&u, 5).unwrap();
        assert_eq!((r.taker, r.fee), (true, -1));
        let t = VENUE_FILL.replace(r#""N":"USDT""#, r#""N":"BNB""#);
        let UserEvent::Order(u) = user_of(&t).unwrap() else {
            panic!()
        };
        assert!(!u.fee_in_quote);
        assert_eq!((u.fee, exec_report(&u, 5).unwrap().fee), (247, 0));
    }

    #[test]
    fn liquidation_fill_off_the_grid() {
        // An auto-close fill (x CALCULATED) at an average price off the 0.10 grid, without
        // fee fields, on the order's own `T`.
        let t = r#"{"e":"ORDER_TRADE_UPDATE","T":1,"E":2,"o":{"s":"BTCUSDT","c":"autoclose-1","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910.00","ap":"9910.12","sp":"0","x":"CALCULATED","X":"FILLED","i":9,"l":"0.014","z":"0.014","L":"9910.16","T":3,"t":4,"m":false}}"#;
        let UserEvent::Order(u) = user_of(t).unwrap() else {
            panic!()
        };
        assert_eq!((u.last_price, u.price, u.off_grid), (99_102, 99_100, true));
        assert_eq!(
            (u.fee, u.fee_asset.as_str(), u.fee_in_quote),
            (0, "", false)
        );
        assert_eq!((u.event_time_ms, u.transaction_time_ms), (2, 3));
        let r = exec_report(&u, 1).unwrap();
        assert_eq!((r.kind, r.taker, r.last_qty), (ExecKind::Fill, true, 14));
    }

    #[test]
    fn account_updates() {
        let UserEvent::Account(a) = user_of(&fixture("account_update.json")).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.event_time_ms, a.transaction_time_ms, a.dropped),
            (1_564_745_798_939, 1_564_745_798_939, 0)
        );
        let p = a.positions();
        assert_eq!(
            p,
            &[
                PositionUpdate {
                    instrument: 3,
                    qty: 0,
                    entry_price: 0,
                    side: PositionSide::Both
                },
                PositionUpdate {
                    instrument: 3,
                    qty: 20_000,
                    entry_price: 65_636,
                    side: PositionSide::Long
                },
                PositionUpdate {
                    instrument: 3,
                    qty: -10_000,
                    entry_price: 65_638,
                    side: PositionSide::Short
                },
            ]
        );
        // The venue's: an average entry price with 8 decimals, rounded to the nearest tick.
        let t = r#"{"e":"ACCOUNT_UPDATE","E":5,"T":5,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"9999.97531992","cw":"9999.97531992","bc":"0"}],"P":[{"s":"BTCUSDT","pa":"-0.003","ep":"61700.26666666","bep":"61700.26666666","cr":"0","up":"0","mt":"cross","iw":"0","ps":"BOTH"},{"s":"XRPUSDT","pa":"100","ep":"0.5","ps":"BOTH"}]}}"#;
        let UserEvent::Account(a) = user_of(t).unwrap() else {
            panic!()
        };
        assert_eq!(
            a.positions(),
            &[PositionUpdate {
                instrument: 3,
                qty: -3,
                entry_price: 617_003,
                side: PositionSide::Both
            }]
        );
        let many: Vec<String> = (0..MAX_POSITIONS + 2)
            .map(|k| format!(r#"{{"s":"ETHUSDT","pa":"{k}","ep":"1"}}"#))
            .collect();
        let t = format!(
            r#"{{"e":"ACCOUNT_UPDATE","E":5,"T":5,"a":{{"P":[{}]}}}}"#,
            many.join(",")
        );
        let UserEvent::Account(a) = user_of(&t).unwrap() else {
            panic!()
        };
        assert_eq!((a.positions().len(), a.dropped), (MAX_POSITIONS, 2));
        assert_eq!(
            a.positions()[1],
            PositionUpdate {
                instrument: 5,
                qty: 1000,
                entry_price: 100,
                side: PositionSide::Both
            }
        );
    }

    #[test]
    fn other_user_events() {
        assert_eq!(
            user_of(r#"{"e":"listenKeyExpired","E":1576653824250,"listenKey":"abc"}"#),
            Ok(UserEvent::ListenKeyExpired {
                event_time_ms: 1_576_653_824_250
            })
        );
        // In a combined-stream envelope.
        assert_eq!(
            user_of(r#"{"stream":"abc","data":{"e":"listenKeyExpired","E":7}}"#),
            Ok(UserEvent::ListenKeyExpired { event_time_ms: 7 })
        );
        for t in [
            r#"{"e":"TRADE_LITE","E":1,"T":1,"s":"BTCUSDT","c":"TEST","S":"BUY","q":"0.001","p":"7100.50","i":1,"l":"0.001","L":"7100.50","t":1,"m":true}"#,
            r#"{"e":"MARGIN_CALL","E":1,"cw":"3.16812045","p":[]}"#,
            r#"{"e":"ALGO_UPDATE","E":1,"o":{"caid":"x"}}"#,
            r#"{"e":"SOMETHING_NEW","E":1}"#,
        ] {
            assert_eq!(user_of(t), Ok(UserEvent::Other), "{t}");
        }
        assert_eq!(
            user_of(&VENUE_NEW.replace("BTCUSDT", "SOLUSDT")),
            Ok(UserEvent::OtherSymbol)
        );
        // The symbol's case does not matter.
        assert!(matches!(
            user_of(&VENUE_NEW.replace("BTCUSDT", "btcusdt")),
            Ok(UserEvent::Order(_))
        ));
    }

    #[test]
    fn malformed_user_events() {
        assert!(matches!(user_of("{"), Err(WireError::Json { .. })));
        assert!(matches!(user_of("nul"), Err(WireError::Json { .. })));
        assert_eq!(user_of("\"x\""), Err(WireError::NotAnObject));
        assert_eq!(user_of("{}"), Err(WireError::MissingField("e")));
        assert_eq!(user_of(r#"{"e":1}"#), Err(WireError::BadField("e")));
        assert_eq!(
            user_of(r#"{"e":"ORDER_TRADE_UPDATE","E":1}"#),
            Err(WireError::MissingField("o"))
        );
        assert_eq!(
            user_of(r#"{"e":"ORDER_TRADE_UPDATE","E":-1,"o":{}}"#),
            Err(WireError::BadField("E"))
        );
        assert_eq!(
            user_of(&VENUE_NEW.replace(r#""S":"BUY""#, r#""S":"UP""#)),
            Err(WireError::BadField("S"))
        );
        assert_eq!(
            user_of(&VENUE_NEW.replace(r#""i":12,"#, "")),
            Err(WireError::MissingField("i"))
        );
        assert_eq!(
            user_of(&VENUE_NEW.replace(r#""q":"0.002""#, r#""q":"0.0021""#)),
            Err(WireError::Decimal {
                field: "q",
                err: engine::DecimalError::OffGrid
            })
        );
        assert_eq!(
            user_of(&VENUE_FILL.replace(r#""n":"0.02468008""#, r#""n":"1e-3""#)),
            Err(WireError::Decimal {
                field: "n",
                err: engine::DecimalError::NotNumeric
            })
        );
        assert_eq!(
            user_of(r#"{"e":"ACCOUNT_UPDATE","E":1,"a":{"P":{}}}"#),
            Err(WireError::BadField("P"))
        );
    }

    #[test]
    fn decimals_to_units() {
        let nearest = |s: &str| to_units(s.as_bytes(), 1, 1, Round::Nearest);
        assert_eq!(nearest("9910.12"), Ok(99_101));
        assert_eq!(nearest("9910.15"), Ok(99_102));
        assert_eq!(nearest("9910.14999999"), Ok(99_101));
        assert_eq!(nearest("0"), Ok(0));
        assert_eq!(nearest("0.04"), Ok(0));
        assert_eq!(nearest("7.000000000000000000000000000000000000009"), Ok(70));
        assert_eq!(to_units(b"0.00012345", 1, 4, Round::Up), Ok(2));
        assert_eq!(to_units(b"0.00012345", 1, 4, Round::Down), Ok(1));
        assert_eq!(to_units(b"0.0001", 1, 4, Round::Up), Ok(1));
        // A 0.5 unit (tick 0.5 = mantissa 5, scale 1).
        assert_eq!(to_units(b"1.24", 5, 1, Round::Nearest), Ok(2));
        assert_eq!(to_units(b"1.25", 5, 1, Round::Nearest), Ok(3));
        assert_eq!(
            to_units(b"", 1, 1, Round::Up),
            Err(engine::DecimalError::Empty)
        );
        assert_eq!(
            to_units(b"-1", 1, 1, Round::Up),
            Err(engine::DecimalError::Negative)
        );
        for bad in [&b"1."[..], b".5", b"1.2.3", b"1e5", b" 1", b"0x1"] {
            assert_eq!(
                to_units(bad, 1, 1, Round::Up),
                Err(engine::DecimalError::NotNumeric),
                "{bad:?}"
            );
        }
        assert_eq!(
            to_units(b"99999999999999999999", 1, 1, Round::Up),
            Err(engine::DecimalError::Overflow)
        );
        assert_eq!(
            to_units(&[b'9'; 60], 1, 1, Round::Up),
            Err(engine::DecimalError::Overflow)
        );
    }

    #[test]
    fn inline_str_cuts_at_a_character() {
        let s: InlineStr<4> = InlineStr::new("abé!");
        assert_eq!(s.as_str(), "abé");
        let s: InlineStr<3> = InlineStr::new("abé");
        assert_eq!(s.as_str(), "ab");
        assert_eq!(format!("{s} {s:?}"), "ab \"ab\"");
        assert!(InlineStr::<0>::new("x").is_empty());
    }

    // ---- robustness

    /// Everything the decoders are fed in the tests above.
    fn seeds() -> Vec<String> {
        let mut v: Vec<String> = [PLACED, GTX_REJECT, VENUE_NEW, VENUE_FILL]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for f in [
            "order_update_new.json",
            "order_update_trade.json",
            "account_update.json",
        ] {
            v.push(fixture(f));
        }
        v.push(r#"{"e":"listenKeyExpired","E":1576653824250,"listenKey":"abc"}"#.into());
        v.push(r#"{"id":1,"status":200,"result":{"listenKey":"abc"},"rateLimits":[]}"#.into());
        v
    }

    /// Decodes `bytes` both ways with warm decoders, twice (the same answer each time), and
    /// checks what the values promise.
    fn decode_all(d: &mut Decoder, bytes: &[u8]) {
        let t = table();
        let mut a = bytes.to_vec();
        let mut b = bytes.to_vec();
        let r1 = d.decode_response(&mut a, &t);
        let r2 = d.decode_response(&mut b, &t);
        assert_eq!(r1, r2);
        if let Ok(r) = r1 {
            assert!(r.rate_limits.as_slice().len() <= MAX_RATE_LIMITS);
            if let ResponseBody::Order(o) = r.body {
                assert!(o.client_id.as_bytes().len() <= CLIENT_ID_CAPACITY);
                assert!(o.orig_qty >= 0 && o.executed_qty >= 0 && o.price >= 0);
            }
            if let ResponseBody::Error(e) = r.body {
                assert!(e.msg.as_bytes().len() <= MSG_CAPACITY);
            }
        }
        let (mut a, mut b) = (bytes.to_vec(), bytes.to_vec());
        let u1 = d.decode_user(&mut a, &t);
        let u2 = d.decode_user(&mut b, &t);
        assert_eq!(u1, u2);
        match u1 {
            Ok(UserEvent::Order(u)) => {
                assert!(u.last_qty >= 0 && u.cum_qty >= 0 && u.orig_qty >= 0);
                assert!(u.last_price >= 0 && u.price >= 0);
                let _ = exec_report(&u, 1);
            }
            Ok(UserEvent::Account(a)) => assert!(a.positions().len() <= MAX_POSITIONS),
            _ => {}
        }
    }

    /// Replaces the `k`-th JSON value (in document order) with `with`.
    fn replace_nth(v: &mut serde_json::Value, k: &mut usize, with: &serde_json::Value) -> bool {
        if *k == 0 {
            *v = with.clone();
            return true;
        }
        *k -= 1;
        match v {
            serde_json::Value::Object(m) => m.values_mut().any(|x| replace_nth(x, k, with)),
            serde_json::Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, k, with)),
            _ => false,
        }
    }

    fn odd_values() -> Vec<serde_json::Value> {
        use serde_json::json;
        vec![
            json!(null),
            json!(true),
            json!(-1),
            json!(0),
            json!(1.5),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(""),
            json!("0"),
            json!("-0.001"),
            json!("1e5"),
            json!("99999999999999999999999"),
            json!("0.0000000001"),
            json!("BTCUSDT"),
            json!("ORDER_TRADE_UPDATE"),
            json!("ACCOUNT_UPDATE"),
            json!("TRADE"),
            json!("FILLED"),
            json!("é\u{0}\"\\"),
            json!([]),
            json!({}),
            json!([{}]),
            json!({"o": {}, "a": []}),
            json!({"e": "ORDER_TRADE_UPDATE"}),
            json!("x".repeat(300)),
        ]
    }

    const TOKENS: &[&[u8]] = &[
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"-",
        b"0",
        b"1e999",
        b"null",
        b"\\u0000",
        b"\\",
        b"\"e\":\"ACCOUNT_UPDATE\"",
        b"\"o\":{",
        b"\xff",
        b"\xe9",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_all(&mut Decoder::new(), &bytes);
        }

        #[test]
        fn mutated_seeds_never_panic(
            seed in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>(), any::<prop::sample::Index>()), 0..6),
        ) {
            let seeds = seeds();
            let mut b = seeds[seed.index(seeds.len())].as_bytes().to_vec();
            for (at, op, byte, tok) in edits {
                let i = at.index(b.len() + 1);
                match op {
                    0 if i < b.len() => b[i] = byte,
                    1 => {
                        let t = TOKENS[tok.index(TOKENS.len())];
                        b.splice(i..i, t.iter().copied());
                    }
                    2 if i < b.len() => {
                        let end = (i + 1 + usize::from(byte % 16)).min(b.len());
                        b.drain(i..end);
                    }
                    _ => b.truncate(i),
                }
            }
            decode_all(&mut Decoder::new(), &b);
        }

        #[test]
        fn json_mutations_of_seeds_never_panic(
            seed in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..4),
        ) {
            let seeds = seeds();
            let mut v: serde_json::Value = serde_json::from_str(&seeds[seed.index(seeds.len())]).unwrap();
            let odd = odd_values();
            for (at, with) in edits {
                let mut k = at.index(256);
                replace_nth(&mut v, &mut k, &odd[with.index(odd.len())]);
            }
            decode_all(&mut Decoder::new(), v.to_string().as_bytes());
        }
    }

    #[test]
    fn one_warm_decoder_over_everything() {
        // A decoder reused across good and bad messages gives each the answer a fresh one does.
        let mut warm = Decoder::new();
        let t = table();
        for s in seeds()
            .iter()
            .chain(["{", "[]", "{\"e\":{}}"].map(String::from).iter())
        {
            let (mut a, mut b) = (s.clone().into_bytes(), s.clone().into_bytes());
            assert_eq!(
                warm.decode_user(&mut a, &t),
                Decoder::new().decode_user(&mut b, &t)
            );
            let (mut a, mut b) = (s.clone().into_bytes(), s.clone().into_bytes());
            assert_eq!(
                warm.decode_response(&mut a, &t),
                Decoder::new().decode_response(&mut b, &t)
            );
        }
    }
}
