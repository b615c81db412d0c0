//! Public market data: the replay of the recordings (the venue clock, the books, the streams) and
//! the REST answers built from it (`exchangeInfo`, `depth`, `premiumIndex`).
//!
//! ## Instruments
//!
//! Every instrument of the engine config is served (all Binance USDⓈ-M, each symbol once:
//! [`check_instruments`]), each from its own recording: the `--data` files are bound to
//! instruments as the backtest binds them (`[VENUE:]SYMBOL=PATH`, or by the symbol a file's
//! streams name) and replayed merged in receive-time order ([`feeds::MergedSource`]), through one
//! feed handler, into one book per symbol ([`SymbolMarket`]).
//!
//! ## The venue clock
//!
//! The venue clock is the recordings' exchange time, in ms since the epoch. Lines before every
//! book is first synced (the diffs buffered ahead of each recording's snapshot) are consumed at
//! start as a warm-up, their book events handed to the exchange core as they are read; the
//! clock's origin `E0` is the latest event time `E` of the books' first applied diffs. With `--speed X > 0`, the clock reads `E0 + X · (wall time since the replay
//! started)`, and a message is published once the clock reaches its `E`: the recording's pace
//! scaled by `X`, with the clock running on after the last message. With `--speed 0` messages are
//! replayed as fast as possible and the clock is the largest `E` replayed so far; once the data
//! ends it runs on at wall pace from there. The clock never goes back.
//!
//! A manual clock (`--manual-clock`, [`Clock::manual`]) stands at `E0` until a client moves it
//! (`POST /venue/clock`, [`Clock::advance_to`]); the replay then publishes every message up to
//! that time, matching at each message's own `E`, and ticks at each second and at the new time
//! before the call answers ([`Clock::has_reached`]). Nothing then depends on the wall clock: the
//! same data, requests and clock steps give the same responses, order ids, fills and streams.

use crate::api::Exchange;
use crate::faults::Faults;
use engine::{Event, Instrument, OrderBook, Side};
use feeds::{
    DataSpec, Decoder, DepthHeader, FeedHandler, Input, MarketSource, MergedSource, SyncSink,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The funding rate every `premiumIndex` and `markPrice` reports.
pub const FUNDING_RATE: &str = "0.00010000";
/// Funding interval (8 h), ms.
pub const FUNDING_INTERVAL_MS: i64 = 8 * 3600 * 1000;
/// The `limit` values `/fapi/v1/depth` accepts.
pub const DEPTH_LIMITS: [usize; 7] = [5, 10, 20, 50, 100, 500, 1000];

/// Locks a mutex, carrying on after a panic elsewhere (the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The venue clock (see the module documentation).
#[derive(Debug)]
pub struct Clock {
    speed: f64,
    /// Moved only by [`Clock::advance_to`] (`--manual-clock`).
    manual: bool,
    origin_ms: AtomicI64,
    last_ms: AtomicI64,
    /// Manual clock: the latest time the replay has fully caught up with.
    reached_ms: AtomicI64,
    started: Mutex<Option<Instant>>,
    ended: Mutex<Option<Instant>>,
}

impl Clock {
    /// A clock at `speed` (0: as fast as possible), not started.
    pub fn new(speed: f64) -> Clock {
        Clock {
            speed,
            manual: false,
            origin_ms: AtomicI64::new(0),
            last_ms: AtomicI64::new(0),
            reached_ms: AtomicI64::new(i64::MIN),
            started: Mutex::new(None),
            ended: Mutex::new(None),
        }
    }

    /// A manual clock: it stands at the replay's origin until [`Clock::advance_to`] moves it.
    pub fn manual() -> Clock {
        Clock {
            manual: true,
            ..Clock::new(0.0)
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual
    }

    /// Starts the clock at `origin_ms` (the first replayed message's `E`).
    pub fn start(&self, origin_ms: i64) {
        self.origin_ms.store(origin_ms, Ordering::SeqCst);
        self.last_ms.store(origin_ms, Ordering::SeqCst);
        *lock(&self.started) = Some(Instant::now());
    }

    /// The clock's origin `E0`, ms since the epoch (0 before it starts).
    pub fn origin_ms(&self) -> i64 {
        self.origin_ms.load(Ordering::SeqCst)
    }

    /// A message of time `e_ms` was replayed (speed 0 moves the clock to it).
    pub fn replayed(&self, e_ms: i64) {
        if !self.manual {
            self.last_ms.fetch_max(e_ms, Ordering::SeqCst);
        }
    }

    /// The data ended.
    pub fn end(&self) {
        let mut e = lock(&self.ended);
        if e.is_none() {
            *e = Some(Instant::now());
        }
    }

    /// Manual clock: moves the time to `to_ms` (never back); the time now. The replay catches
    /// up behind it ([`Clock::caught_up`]).
    pub fn advance_to(&self, to_ms: i64) -> i64 {
        self.last_ms.fetch_max(to_ms, Ordering::SeqCst).max(to_ms)
    }

    /// Manual clock: the replay has published everything up to `t_ms` and ticked at it.
    pub fn caught_up(&self, t_ms: i64) {
        self.reached_ms.fetch_max(t_ms, Ordering::SeqCst);
    }

    /// Manual clock: whether the replay has caught up with `t_ms`.
    pub fn has_reached(&self, t_ms: i64) -> bool {
        self.reached_ms.load(Ordering::SeqCst) >= t_ms
    }

    /// The venue time now, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        let last = self.last_ms.load(Ordering::SeqCst);
        if self.manual {
            return last;
        }
        let t = if self.speed > 0.0 {
            match *lock(&self.started) {
                Some(s) => {
                    self.origin_ms.load(Ordering::SeqCst)
                        + (s.elapsed().as_secs_f64() * 1000.0 * self.speed) as i64
                }
                None => last,
            }
        } else {
            match *lock(&self.ended) {
                Some(e) => last + e.elapsed().as_millis() as i64,
                None => last,
            }
        };
        let t = t.max(last);
        self.last_ms.fetch_max(t, Ordering::SeqCst);
        t
    }
}

/// Which routed path a stream is served on (Binance USDⓈ-M, 2026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamClass {
    /// High-frequency book data (`@depth...`, `@bookTicker`): `/public`, and the un-routed paths.
    Public,
    /// Regular market data (`@trade`, `@aggTrade`, `@markPrice...`): `/market` only.
    Market,
}

/// The class of a stream name (`btcusdt@depth@100ms`), `None` for a name this venue does not
/// know: the project's one routing table, [`feeds::net::routes::stream_route`], which the live
/// feed opens its URLs by.
pub fn stream_class(name: &str) -> Option<StreamClass> {
    feeds::net::routes::stream_route(name).map(|r| match r {
        feeds::net::routes::StreamRoute::Public => StreamClass::Public,
        feeds::net::routes::StreamRoute::Market => StreamClass::Market,
    })
}

/// Which streams a WebSocket connection's path may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/public/...`: book data.
    Public,
    /// `/market/...`: regular market data.
    Market,
    /// `/ws`, `/stream` without a routed prefix: book data only, as on Binance.
    Unrouted,
}

impl Route {
    /// Whether a stream of `class` is delivered on this route.
    pub fn carries(self, class: StreamClass) -> bool {
        matches!(
            (self, class),
            (Route::Public | Route::Unrouted, StreamClass::Public)
                | (Route::Market, StreamClass::Market)
        )
    }
}

/// One stream message: the stream name and the payload (the `data` object, as sent).
#[derive(Debug)]
pub struct Published {
    /// Stream name.
    pub stream: Arc<str>,
    /// The payload JSON.
    pub data: Arc<str>,
}

struct Sub {
    id: u64,
    route: Route,
    streams: Vec<String>,
    tx: SyncSender<Arc<Published>>,
}

/// Fan-out of stream messages to the subscribed connections, each with a bounded queue: a
/// subscriber whose queue is full is dropped (its connection sees the channel close and
/// disconnects), so memory never grows with a slow client.
#[derive(Default)]
pub struct Hub {
    subs: Mutex<Vec<Sub>>,
    next_id: std::sync::atomic::AtomicU64,
    faults: std::sync::OnceLock<Arc<Faults>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscribers", &lock(&self.subs).len())
            .finish()
    }
}

impl Hub {
    /// Registers a subscriber on `route` with a queue of `queue` messages.
    pub fn register(&self, route: Route, queue: usize) -> (u64, Receiver<Arc<Published>>) {
        let (tx, rx) = sync_channel(queue.max(1));
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.subs).push(Sub {
            id,
            route,
            streams: Vec::new(),
            tx,
        });
        (id, rx)
    }

    /// Removes a subscriber.
    pub fn unregister(&self, id: u64) {
        lock(&self.subs).retain(|s| s.id != id);
    }

    /// Adds streams to a subscriber (already present: no change). `false`: the subscriber is gone.
    pub fn subscribe(&self, id: u64, names: &[String]) -> bool {
        let mut subs = lock(&self.subs);
        let Some(s) = subs.iter_mut().find(|s| s.id == id) else {
            return false;
        };
        for n in names {
            if !s.streams.contains(n) {
                s.streams.push(n.clone());
            }
        }
        true
    }

    /// Removes streams from a subscriber.
    pub fn unsubscribe(&self, id: u64, names: &[String]) {
        if let Some(s) = lock(&self.subs).iter_mut().find(|s| s.id == id) {
            s.streams.retain(|x| !names.contains(x));
        }
    }

    /// A subscriber's streams, in the order subscribed.
    pub fn list(&self, id: u64) -> Vec<String> {
        lock(&self.subs)
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.streams.clone())
            .unwrap_or_default()
    }

    /// Sets the fault schedule every published message passes through (once).
    pub fn set_faults(&self, faults: Arc<Faults>) {
        let _ = self.faults.set(faults);
    }

    /// Sends a message to every subscriber of its stream whose route carries it (after the
    /// stream faults, which may drop or truncate it, whether or not anyone listens).
    pub fn publish(&self, stream: &str, data: String) {
        let Some(class) = stream_class(stream) else {
            return;
        };
        let data = match self.faults.get() {
            Some(f) => match f.on_stream(stream, data, i64::MIN) {
                Some(d) => d,
                None => return,
            },
            None => data,
        };
        let mut subs = lock(&self.subs);
        if !subs
            .iter()
            .any(|s| s.route.carries(class) && s.streams.iter().any(|n| n == stream))
        {
            return;
        }
        let msg = Arc::new(Published {
            stream: Arc::from(stream),
            data: Arc::from(data),
        });
        subs.retain(|s| {
            if !(s.route.carries(class) && s.streams.iter().any(|n| n == stream)) {
                return true;
            }
            match s.tx.try_send(Arc::clone(&msg)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }
}

/// The replayed book and what `/depth` reports with it.
#[derive(Debug)]
pub struct BookView {
    /// The synced book.
    pub book: OrderBook,
    /// `u` of the last applied diff.
    pub last_update_id: u64,
    /// `E` of the last applied diff, ms.
    pub event_ms: i64,
    /// `T` of the last applied diff, ms.
    pub transact_ms: i64,
}

/// One replayed instrument: its book and what the REST answers say of it.
#[derive(Debug)]
pub struct SymbolMarket {
    /// The instrument.
    pub instrument: Instrument,
    /// Lower-case symbol (`btcusdt`), the stream-name prefix.
    pub stream_symbol: String,
    /// The book.
    pub view: Mutex<BookView>,
}

/// Market state shared by the replay thread and the connections.
#[derive(Debug)]
pub struct Market {
    /// The replayed instruments, by instrument id (the config's order).
    pub symbols: Vec<SymbolMarket>,
    /// The venue clock.
    pub clock: Clock,
    /// The stream fan-out.
    pub hub: Hub,
    /// Set when the data ran out.
    pub ended: AtomicBool,
}

impl Market {
    /// The instrument of `symbol` (any case), if the venue lists it.
    pub fn symbol(&self, symbol: &str) -> Option<&SymbolMarket> {
        self.symbols
            .iter()
            .find(|m| m.instrument.symbol.eq_ignore_case(symbol.as_bytes()))
    }
}

impl SymbolMarket {
    /// The mid price in ticks ×2 (`bid + ask`), if the book has both sides.
    pub fn mid_x2(&self) -> Option<i64> {
        let v = lock(&self.view);
        Some(v.book.best_bid()? + v.book.best_ask()?)
    }

    /// `price_x2 / 2` ticks as a decimal with 8 places.
    pub fn half_price(&self, ticks_x2: i64) -> String {
        let t = self.instrument.tick;
        let tick = t.mantissa() as f64 / 10f64.powi(t.scale() as i32);
        format!("{:.8}", ticks_x2 as f64 * tick / 2.0)
    }

    /// `/fapi/v1/depth`: `{"lastUpdateId","E","T","bids","asks"}`, `limit` levels a side.
    pub fn depth_json(&self, limit: usize) -> String {
        let v = lock(&self.view);
        let side = |s: Side| -> Vec<[String; 2]> {
            v.book
                .levels(s)
                .take(limit)
                .map(|(p, q)| {
                    [
                        self.instrument.tick.format(p),
                        self.instrument.book_lot.format(q),
                    ]
                })
                .collect()
        };
        json!({
            "lastUpdateId": v.last_update_id,
            "E": v.event_ms,
            "T": v.transact_ms,
            "bids": side(Side::Bid),
            "asks": side(Side::Ask),
        })
        .to_string()
    }

    /// One `premiumIndex` object at `now_ms`.
    pub fn premium_index(&self, now_ms: i64) -> Value {
        let mid = self
            .mid_x2()
            .map(|m| self.half_price(m))
            .unwrap_or_else(|| "0.00000000".into());
        json!({
            "symbol": self.instrument.symbol.as_str(),
            "markPrice": mid,
            "indexPrice": mid,
            "estimatedSettlePrice": mid,
            "lastFundingRate": FUNDING_RATE,
            "interestRate": "0.00010000",
            "nextFundingTime": next_funding(now_ms),
            "time": now_ms,
        })
    }

    /// A `markPriceUpdate` stream payload at `now_ms`, if the book has a mid.
    pub fn mark_price_event(&self, now_ms: i64) -> Option<String> {
        let mid = self.half_price(self.mid_x2()?);
        Some(
            json!({
                "e": "markPriceUpdate",
                "E": now_ms,
                "s": self.instrument.symbol.as_str(),
                "p": mid,
                "i": mid,
                "P": mid,
                "r": FUNDING_RATE,
                "T": next_funding(now_ms),
            })
            .to_string(),
        )
    }
}

/// The next 8-hour funding boundary after `now_ms`.
pub fn next_funding(now_ms: i64) -> i64 {
    (now_ms.div_euclid(FUNDING_INTERVAL_MS) + 1) * FUNDING_INTERVAL_MS
}

/// `GET /fapi/v1/exchangeInfo` for the instruments of an engine config.
pub fn exchange_info(cfg: &engine::Config, now_ms: i64) -> String {
    let mut assets: Vec<String> = Vec::new();
    let mut symbols = Vec::new();
    for ic in &cfg.instruments {
        let i = &ic.instrument;
        for a in [i.quote_asset.as_str(), i.base_asset.as_str()] {
            if !assets.iter().any(|x| x == a) {
                assets.push(a.to_string());
            }
        }
        let tick = i.tick.format(1);
        let step = i.lot.format(1);
        let min_qty = i.lot.format(i.min_qty_lots.max(1));
        symbols.push(json!({
            "symbol": i.symbol.as_str(),
            "pair": i.symbol.as_str(),
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000i64,
            "onboardDate": 1569398400000i64,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": i.base_asset.as_str(),
            "quoteAsset": i.quote_asset.as_str(),
            "marginAsset": i.quote_asset.as_str(),
            "pricePrecision": i.tick.display_scale(),
            "quantityPrecision": i.lot.display_scale(),
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
                {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000", "minQty": min_qty},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "maxQty": "120", "minQty": min_qty},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": i.notional_unit().format(i.min_notional_units)},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }));
    }
    json!({
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": assets.iter().map(|a| json!({"asset": a, "marginAvailable": true, "autoAssetExchange": null})).collect::<Vec<_>>(),
        "symbols": symbols,
    })
    .to_string()
}

/// Splits a recorded line `{"stream":"name","data":{...}}` into the stream name and the exact
/// bytes of `data`; `None` for anything else (a REST snapshot line).
pub fn split_envelope(line: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let rest = text.strip_prefix("{\"stream\":\"")?;
    let q = rest.find('"')?;
    let stream = &rest[..q];
    let data = rest[q + 1..]
        .strip_prefix(",\"data\":")?
        .strip_suffix('}')?;
    Some((stream, data))
}

/// The integer after `"E":` in a payload, ms.
pub fn event_time(json: &str) -> Option<i64> {
    int_field(json, "\"E\":")
}

/// The first integer after `key` (`"T":`) in a payload.
fn int_field(json: &str, key: &str) -> Option<i64> {
    let i = json.find(key)? + key.len();
    let digits: &str = &json[i..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Applies a handler's book events to one instrument's shared book, keeps every event for the
/// exchange, and notes the last applied diff.
struct Collect<'a> {
    view: &'a mut BookView,
    events: &'a mut Vec<Event>,
    applied: bool,
}

impl SyncSink for Collect<'_> {
    fn event(&mut self, ev: &Event) {
        self.events.push(*ev);
        if ev.kind().is_book() {
            let _ = self.view.book.apply(ev);
        }
    }

    fn diff_applied(&mut self, hdr: &DepthHeader) {
        self.view.last_update_id = hdr.final_id;
        self.view.event_ms = hdr.venue_time_ns / 1_000_000;
        self.view.transact_ms = self.view.event_ms;
        self.applied = true;
    }
}

/// Diffs merged over an interval (`@depth` 250 ms, `@depth@100ms`, `@depth@500ms`): `U` of the
/// first, `u` and `E`/`T` of the last, `pu` of the first, each level's last quantity.
#[derive(Debug)]
struct Merged {
    /// The instrument (index into [`Market::symbols`]).
    inst: usize,
    stream: String,
    interval_ms: i64,
    window_end: i64,
    first: Option<(u64, u64)>, // (U, pu)
    last: (u64, i64, i64),     // (u, E, T)
    bids: BTreeMap<i64, (String, String)>,
    asks: BTreeMap<i64, (String, String)>,
}

#[derive(serde::Deserialize)]
struct Diff {
    #[serde(rename = "E")]
    e: i64,
    #[serde(rename = "T")]
    t: i64,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    pu: u64,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

impl Merged {
    fn new(inst: usize, stream: String, interval_ms: i64) -> Merged {
        Merged {
            inst,
            stream,
            interval_ms,
            window_end: 0,
            first: None,
            last: (0, 0, 0),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        }
    }

    fn flush(&mut self, m: &Market) {
        let Some((first, pu)) = self.first.take() else {
            return;
        };
        let (u, e, t) = self.last;
        let symbol = m.symbols[self.inst].instrument.symbol;
        let bids: Vec<_> = self.bids.values().rev().map(|(p, q)| [p, q]).collect();
        let asks: Vec<_> = self.asks.values().map(|(p, q)| [p, q]).collect();
        let data = json!({"e":"depthUpdate","E":e,"T":t,"s":symbol.as_str(),"U":first,"u":u,"pu":pu,"b":bids,"a":asks});
        m.hub.publish(&self.stream, data.to_string());
        self.bids.clear();
        self.asks.clear();
    }

    fn on_diff(&mut self, d: &Diff, m: &Market) {
        if self.first.is_some() && d.e >= self.window_end {
            self.flush(m);
        }
        if self.first.is_none() {
            self.first = Some((d.first, d.pu));
            self.window_end = (d.e.div_euclid(self.interval_ms) + 1) * self.interval_ms;
        }
        self.last = (d.u, d.e, d.t);
        let inst = &m.symbols[self.inst].instrument;
        for (side, levels) in [(&mut self.bids, &d.b), (&mut self.asks, &d.a)] {
            for [p, q] in levels {
                if let Ok(t) = inst.price_to_ticks(p.as_bytes()) {
                    side.insert(t, (p.clone(), q.clone()));
                }
            }
        }
    }

    fn on_time(&mut self, now_ms: i64, m: &Market) {
        if self.first.is_some() && now_ms >= self.window_end {
            self.flush(m);
        }
    }
}

/// The replay: recordings → feed handler → books, exchange, streams.
pub struct Replay {
    market: Arc<Market>,
    exchange: Arc<dyn Exchange>,
    source: MergedSource,
    handler: FeedHandler,
    events: Vec<Event>,
    merged: Vec<Merged>,
    next_mark_s: i64,
    last_tick: Instant,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One line of the recordings, read but not yet applied.
struct Pending {
    json: Vec<u8>,
    local_ns: i64,
    /// The instrument whose recording the line is from.
    inst: usize,
    /// Stream name and payload, for a stream message.
    envelope: Option<(String, String)>,
    /// The payload's `E`, ms.
    e_ms: Option<i64>,
}

/// Why the venue cannot serve a config's instruments.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config has no instrument.
    #[error("the config has no instrument")]
    NoInstrument,
    /// An instrument of another venue than Binance USDⓈ-M.
    #[error(
        "instrument {symbol} is on {venue}: this venue is Binance USDⓈ-M (binance-usdm) only; \
         give a config whose instruments are all binance-usdm"
    )]
    NotUsdm {
        /// The symbol.
        symbol: String,
        /// Its venue's name.
        venue: &'static str,
    },
    /// Two instruments with the same symbol.
    #[error("instrument {0} is listed twice in the config")]
    Duplicate(String),
}

/// Checks that the venue can serve `cfg`'s instruments: at least one, all Binance USDⓈ-M, no
/// symbol twice.
pub fn check_instruments(cfg: &engine::Config) -> Result<(), ServeError> {
    if cfg.instruments.is_empty() {
        return Err(ServeError::NoInstrument);
    }
    for (i, ic) in cfg.instruments.iter().enumerate() {
        let symbol = ic.instrument.symbol;
        if ic.venue != engine::VenueFlavour::BinanceUsdm {
            return Err(ServeError::NotUsdm {
                symbol: symbol.as_str().to_string(),
                venue: ic.venue.name(),
            });
        }
        if cfg.instruments[..i]
            .iter()
            .any(|o| o.instrument.symbol == symbol)
        {
            return Err(ServeError::Duplicate(symbol.as_str().to_string()));
        }
    }
    Ok(())
}

impl Replay {
    /// Opens one recording per instrument of the config (`data`, bound as `--data` binds them:
    /// [`feeds::bind_config`]) and replays them, merged in time order, until every book is
    /// synced (the warm-up, see the module documentation). The warm-up's market events go to
    /// `exchange` as they are applied, so its matching books start where the venue's do.
    pub fn open(
        cfg: &engine::Config,
        data: &[DataSpec],
        clock: Clock,
        exchange: Arc<dyn Exchange>,
    ) -> anyhow::Result<Replay> {
        check_instruments(cfg)?;
        let files = feeds::bind_config(cfg, data)?;
        let source = MergedSource::open(&files)?;
        let instruments: Vec<Instrument> = cfg.instruments.iter().map(|c| c.instrument).collect();
        let rules: Vec<_> = cfg
            .instruments
            .iter()
            .map(|c| Some(feeds::sync_rule(c.venue)))
            .collect();
        let handler = FeedHandler::with_decoder_and_window(
            Decoder::new(&instruments),
            &rules,
            cfg.book_slots,
        );
        let symbols: Vec<SymbolMarket> = instruments
            .iter()
            .map(|&instrument| SymbolMarket {
                instrument,
                stream_symbol: instrument.symbol.as_str().to_ascii_lowercase(),
                view: Mutex::new(BookView {
                    book: OrderBook::new(cfg.book_slots),
                    last_update_id: 0,
                    event_ms: 0,
                    transact_ms: 0,
                }),
            })
            .collect();
        let merged = symbols
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                [("depth", 250), ("depth@100ms", 100), ("depth@500ms", 500)]
                    .into_iter()
                    .map(move |(k, ms)| Merged::new(i, format!("{}@{k}", s.stream_symbol), ms))
            })
            .collect();
        let market = Arc::new(Market {
            symbols,
            clock,
            hub: Hub::default(),
            ended: AtomicBool::new(false),
        });
        let mut r = Replay {
            market,
            exchange,
            source,
            handler,
            events: Vec::new(),
            merged,
            next_mark_s: 0,
            last_tick: Instant::now(),
        };
        // Warm-up: until every book has applied a diff.
        while let Some(unsynced) = r
            .market
            .symbols
            .iter()
            .position(|s| lock(&s.view).last_update_id == 0)
        {
            let Some(mut p) = r.fetch() else {
                anyhow::bail!(
                    "the recordings never sync a {} book (no snapshot bridging the diffs?)",
                    r.market.symbols[unsynced].instrument.symbol.as_str()
                );
            };
            r.apply(&mut p);
            if !r.events.is_empty() {
                let t = p.e_ms.unwrap_or(0);
                r.exchange.on_market(&r.events, t);
            }
        }
        let origin = r
            .market
            .symbols
            .iter()
            .map(|s| lock(&s.view).event_ms)
            .max()
            .unwrap_or(0);
        r.market.clock.start(origin);
        r.next_mark_s = origin / 1000 + 1;
        Ok(r)
    }

    /// The shared market state.
    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    /// Reads the next good line; `None` at the end of the data.
    fn fetch(&mut self) -> Option<Pending> {
        loop {
            let Ok(Input::Message {
                json,
                local_ns,
                instrument,
            }) = self.source.next_input()?
            else {
                continue;
            };
            let envelope = split_envelope(json).map(|(s, d)| (s.to_string(), d.to_string()));
            let e_ms = match &envelope {
                Some((_, d)) => event_time(d),
                None => std::str::from_utf8(json).ok().and_then(event_time),
            };
            return Some(Pending {
                json: json.to_vec(),
                local_ns,
                inst: instrument.map_or(0, usize::from),
                envelope,
                e_ms,
            });
        }
    }

    /// Decodes a line into its instrument's book (and [`Replay::events`]).
    fn apply(&mut self, p: &mut Pending) {
        self.events.clear();
        let Some(sm) = self.market.symbols.get(p.inst) else {
            return;
        };
        let mut view = lock(&sm.view);
        let mut sink = Collect {
            view: &mut view,
            events: &mut self.events,
            applied: false,
        };
        let id = engine::InstrumentId::try_from(p.inst).ok();
        let _ = self
            .handler
            .on_message_for(&mut p.json, p.local_ns, id, &mut sink);
        let applied = sink.applied;
        if applied {
            if let Some(t) = p
                .envelope
                .as_ref()
                .and_then(|(_, d)| int_field(d, "\"T\":"))
            {
                view.transact_ms = t;
            }
        }
    }

    /// Replays the rest of the data, then keeps the clock ticking, until `stop`.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        let m = Arc::clone(&self.market);
        let exchange = Arc::clone(&self.exchange);
        let speed = m.clock.speed;
        let manual = m.clock.is_manual();
        // Manual clock: the time of the replay itself (the messages' E), which the exchange
        // matches at; the clock (what requests see) is the time the client moved it to.
        let mut replay_ms = m.clock.origin_ms();
        while !stop.load(Ordering::SeqCst) {
            if m.ended.load(Ordering::SeqCst) {
                let now = m.clock.now_ms();
                if !manual || !m.clock.has_reached(now) {
                    self.tick(now);
                    m.clock.caught_up(now);
                }
                std::thread::sleep(Duration::from_millis(if manual { 1 } else { 20 }));
                continue;
            }
            let Some(mut p) = self.fetch() else {
                m.ended.store(true, Ordering::SeqCst);
                m.clock.end();
                continue;
            };
            if let (true, Some(e)) = (speed > 0.0 || manual, p.e_ms) {
                let mut now = m.clock.now_ms();
                while e > now {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if manual {
                        if !m.clock.has_reached(now) {
                            self.tick(now);
                            replay_ms = replay_ms.max(now);
                            m.clock.caught_up(now);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    } else {
                        if self.last_tick.elapsed() >= Duration::from_millis(20) {
                            self.tick(now);
                        }
                        let wait_ms = ((e - now) as f64 / speed).clamp(0.0, 20.0);
                        std::thread::sleep(Duration::from_micros((wait_ms * 1000.0) as u64 + 50));
                    }
                    now = m.clock.now_ms();
                }
                if manual && e / 1000 >= self.next_mark_s {
                    // Each second's mark price and timers at that second, in replay order.
                    replay_ms = replay_ms.max(e / 1000 * 1000);
                    self.tick(replay_ms);
                }
            }
            self.apply(&mut p);
            if let Some(e) = p.e_ms {
                m.clock.replayed(e);
                replay_ms = replay_ms.max(e);
            }
            let now = if manual { replay_ms } else { m.clock.now_ms() };
            if !self.events.is_empty() {
                exchange.on_market(&self.events, now);
            }
            if let Some((stream, data)) = p.envelope {
                self.publish(p.inst, &stream, data);
            }
            if !manual && self.last_tick.elapsed() >= Duration::from_millis(20) {
                self.tick(now);
            }
        }
    }

    /// Publishes a recorded stream message of instrument `inst`, and what is derived from it
    /// (merged depth windows, `aggTrade`).
    fn publish(&mut self, inst: usize, stream: &str, data: String) {
        let m = Arc::clone(&self.market);
        let kind = stream.split_once('@').map(|x| x.1).unwrap_or("");
        match kind {
            "depth@0ms" | "depth" | "depth@100ms" | "depth@250ms" | "depth@500ms" => {
                if let Ok(d) = serde_json::from_str::<Diff>(&data) {
                    for g in &mut self.merged {
                        if g.inst == inst && g.stream != stream {
                            g.on_diff(&d, &m);
                        }
                    }
                }
            }
            // The venue publishes its own mark prices, every second from its book (as it answers
            // `premiumIndex`); a recording's (a live session's, which subscribes them) would
            // come twice, with other values.
            "markPrice" | "markPrice@1s" => return,
            "trade" => {
                if let (Some(agg), Some(sm)) = (agg_trade(&data), m.symbols.get(inst)) {
                    m.hub
                        .publish(&format!("{}@aggTrade", sm.stream_symbol), agg);
                }
            }
            _ => {}
        }
        m.hub.publish(stream, data);
    }

    /// Periodic work: the exchange's clock, merged depth windows, mark prices.
    fn tick(&mut self, now: i64) {
        self.last_tick = Instant::now();
        self.exchange.on_time(now);
        let m = Arc::clone(&self.market);
        for g in &mut self.merged {
            g.on_time(now, &m);
        }
        // Marks older than an hour behind the clock are skipped: nobody could read them, and a
        // clock far ahead must not hold the replay in this loop.
        self.next_mark_s = self.next_mark_s.max(now / 1000 - 3600);
        while now / 1000 >= self.next_mark_s {
            let t = self.next_mark_s * 1000;
            for sm in &m.symbols {
                if let Some(ev) = sm.mark_price_event(t) {
                    m.hub
                        .publish(&format!("{}@markPrice@1s", sm.stream_symbol), ev.clone());
                    if self.next_mark_s % 3 == 0 {
                        m.hub
                            .publish(&format!("{}@markPrice", sm.stream_symbol), ev);
                    }
                }
            }
            self.next_mark_s += 1;
        }
    }
}

/// An `aggTrade` payload made from a `trade` payload (one trade per aggregate).
pub fn agg_trade(trade: &str) -> Option<String> {
    let v: Value = serde_json::from_str(trade).ok()?;
    let t = v.get("t")?.as_u64()?;
    Some(
        json!({
            "e": "aggTrade",
            "E": v.get("E")?,
            "a": t,
            "s": v.get("s")?,
            "p": v.get("p")?,
            "q": v.get("q")?,
            "f": t,
            "l": t,
            "T": v.get("T")?,
            "m": v.get("m")?,
        })
        .to_string(),
    )
}

/// The weight of `GET /fapi/v1/depth` by `limit`.
pub fn depth_weight(limit: usize) -> u32 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}
