//! Public market data: the replay of the recordings (the venue clock, the book, the streams) and
//! the REST answers built from it (`exchangeInfo`, `depth`, `premiumIndex`).
//!
//! ## The venue clock
//!
//! The venue clock is the recording's exchange time, in ms since the epoch. Lines before the book
//! is first synced (the diffs buffered ahead of the recording's snapshot) are consumed at start
//! as a warm-up; the clock's origin `E0` is the event time `E` of the first message replayed
//! after that. With `--speed X > 0`, the clock reads `E0 + X · (wall time since the replay
//! started)`, and a message is published once the clock reaches its `E`: the recording's pace
//! scaled by `X`, with the clock running on after the last message. With `--speed 0` messages are
//! replayed as fast as possible and the clock is the largest `E` replayed so far; once the data
//! ends it runs on at wall pace from there. The clock never goes back.

use crate::api::Exchange;
use crate::faults::Faults;
use engine::{Event, EventKind, Instrument, OrderBook, Side};
use feeds::{Decoder, DepthHeader, FeedHandler, RecordingReader, SyncSink};
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
    origin_ms: AtomicI64,
    last_ms: AtomicI64,
    started: Mutex<Option<Instant>>,
    ended: Mutex<Option<Instant>>,
}

impl Clock {
    /// A clock at `speed` (0: as fast as possible), not started.
    pub fn new(speed: f64) -> Clock {
        Clock {
            speed,
            origin_ms: AtomicI64::new(0),
            last_ms: AtomicI64::new(0),
            started: Mutex::new(None),
            ended: Mutex::new(None),
        }
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
        self.last_ms.fetch_max(e_ms, Ordering::SeqCst);
    }

    /// The data ended.
    pub fn end(&self) {
        let mut e = lock(&self.ended);
        if e.is_none() {
            *e = Some(Instant::now());
        }
    }

    /// The venue time now, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        let last = self.last_ms.load(Ordering::SeqCst);
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
/// know.
pub fn stream_class(name: &str) -> Option<StreamClass> {
    let (symbol, kind) = name.split_once('@')?;
    if symbol.is_empty()
        || !symbol
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return None;
    }
    match kind {
        "depth" | "depth@0ms" | "depth@100ms" | "depth@250ms" | "depth@500ms" | "bookTicker" => {
            Some(StreamClass::Public)
        }
        "trade" | "aggTrade" | "markPrice" | "markPrice@1s" => Some(StreamClass::Market),
        _ => None,
    }
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

/// Market state shared by the replay thread and the connections.
#[derive(Debug)]
pub struct Market {
    /// The replayed instrument.
    pub instrument: Instrument,
    /// Lower-case symbol (`btcusdt`), the stream-name prefix.
    pub stream_symbol: String,
    /// The book.
    pub view: Mutex<BookView>,
    /// The venue clock.
    pub clock: Clock,
    /// The stream fan-out.
    pub hub: Hub,
    /// Set when the data ran out.
    pub ended: AtomicBool,
}

impl Market {
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

/// Applies a handler's book events to the shared book, keeps every event for the exchange, and
/// notes the last applied diff.
struct Collect<'a> {
    view: &'a mut BookView,
    events: &'a mut Vec<Event>,
    applied: bool,
}

impl SyncSink for Collect<'_> {
    fn event(&mut self, ev: &Event) {
        self.events.push(*ev);
        if !matches!(ev.kind(), EventKind::Bbo | EventKind::Trade) {
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
    s: String,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

impl Merged {
    fn new(stream: String, interval_ms: i64) -> Merged {
        Merged {
            stream,
            interval_ms,
            window_end: 0,
            first: None,
            last: (0, 0, 0),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        }
    }

    fn flush(&mut self, symbol: &str, hub: &Hub) {
        let Some((first, pu)) = self.first.take() else {
            return;
        };
        let (u, e, t) = self.last;
        let bids: Vec<_> = self.bids.values().rev().map(|(p, q)| [p, q]).collect();
        let asks: Vec<_> = self.asks.values().map(|(p, q)| [p, q]).collect();
        let data = json!({"e":"depthUpdate","E":e,"T":t,"s":symbol,"U":first,"u":u,"pu":pu,"b":bids,"a":asks});
        hub.publish(&self.stream, data.to_string());
        self.bids.clear();
        self.asks.clear();
    }

    fn on_diff(&mut self, d: &Diff, inst: &Instrument, hub: &Hub) {
        if self.first.is_some() && d.e >= self.window_end {
            self.flush(&d.s, hub);
        }
        if self.first.is_none() {
            self.first = Some((d.first, d.pu));
            self.window_end = (d.e.div_euclid(self.interval_ms) + 1) * self.interval_ms;
        }
        self.last = (d.u, d.e, d.t);
        for (side, levels) in [(&mut self.bids, &d.b), (&mut self.asks, &d.a)] {
            for [p, q] in levels {
                if let Ok(t) = inst.price_to_ticks(p.as_bytes()) {
                    side.insert(t, (p.clone(), q.clone()));
                }
            }
        }
    }

    fn on_time(&mut self, now_ms: i64, symbol: &str, hub: &Hub) {
        if self.first.is_some() && now_ms >= self.window_end {
            self.flush(symbol, hub);
        }
    }
}

/// The replay: recordings → feed handler → book, exchange, streams.
pub struct Replay {
    market: Arc<Market>,
    reader: RecordingReader,
    handler: FeedHandler,
    events: Vec<Event>,
    merged: Vec<Merged>,
    next_mark_s: i64,
    last_tick: Instant,
    /// The warm-up's market events (the snapshot and the diffs up to the first one applied),
    /// handed to the exchange when [`Replay::run`] starts: its matching books need them too.
    warmup: Vec<Event>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

/// One line of the recording, read but not yet applied.
struct Pending {
    json: Vec<u8>,
    local_ns: i64,
    /// Stream name and payload, for a stream message.
    envelope: Option<(String, String)>,
    /// The payload's `E`, ms.
    e_ms: Option<i64>,
}

impl Replay {
    /// Opens the recordings for the config's first instrument and replays them until its book is
    /// synced (the warm-up, see the module documentation).
    pub fn open(
        cfg: &engine::Config,
        data: &[std::path::PathBuf],
        speed: f64,
    ) -> anyhow::Result<Replay> {
        let ic = cfg
            .instruments
            .first()
            .ok_or_else(|| anyhow::anyhow!("the config has no instrument"))?;
        let instrument = ic.instrument;
        let reader = RecordingReader::open(data)?;
        let handler = FeedHandler::with_decoder_and_window(
            Decoder::new(&[instrument]),
            &[Some(feeds::sync_rule(ic.venue))],
            cfg.book_slots,
        );
        let stream_symbol = instrument.symbol.as_str().to_ascii_lowercase();
        let merged = [("depth", 250), ("depth@100ms", 100), ("depth@500ms", 500)]
            .into_iter()
            .map(|(k, ms)| Merged::new(format!("{stream_symbol}@{k}"), ms))
            .collect();
        let market = Arc::new(Market {
            instrument,
            stream_symbol,
            view: Mutex::new(BookView {
                book: OrderBook::new(cfg.book_slots),
                last_update_id: 0,
                event_ms: 0,
                transact_ms: 0,
            }),
            clock: Clock::new(speed),
            hub: Hub::default(),
            ended: AtomicBool::new(false),
        });
        let mut r = Replay {
            market,
            reader,
            handler,
            events: Vec::new(),
            merged,
            next_mark_s: 0,
            last_tick: Instant::now(),
            warmup: Vec::new(),
        };
        // Warm-up: until the first applied diff.
        while lock(&r.market.view).last_update_id == 0 {
            let Some(mut p) = r.fetch() else {
                anyhow::bail!(
                    "the recordings never sync a {} book (no snapshot bridging the diffs?)",
                    r.market.instrument.symbol.as_str()
                );
            };
            r.apply(&mut p);
            r.warmup.extend_from_slice(&r.events);
        }
        let origin = lock(&r.market.view).event_ms;
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
            let Ok(line) = self.reader.next()? else {
                continue;
            };
            let envelope = split_envelope(line.json).map(|(s, d)| (s.to_string(), d.to_string()));
            let e_ms = match &envelope {
                Some((_, d)) => event_time(d),
                None => std::str::from_utf8(line.json).ok().and_then(event_time),
            };
            return Some(Pending {
                json: line.json.to_vec(),
                local_ns: line.local_ns,
                envelope,
                e_ms,
            });
        }
    }

    /// Decodes a line into the book (and [`Replay::events`]).
    fn apply(&mut self, p: &mut Pending) {
        self.events.clear();
        let mut view = lock(&self.market.view);
        let mut sink = Collect {
            view: &mut view,
            events: &mut self.events,
            applied: false,
        };
        let _ = self.handler.on_message(&mut p.json, p.local_ns, &mut sink);
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
    pub fn run(mut self, exchange: Arc<dyn Exchange>, stop: Arc<AtomicBool>) {
        let m = Arc::clone(&self.market);
        let speed = m.clock.speed;
        // The exchange's books start where the server's did: from the snapshot.
        let warmup = std::mem::take(&mut self.warmup);
        if !warmup.is_empty() {
            exchange.on_market(&warmup, m.clock.now_ms());
        }
        while !stop.load(Ordering::SeqCst) {
            if m.ended.load(Ordering::SeqCst) {
                let now = m.clock.now_ms();
                self.tick(&*exchange, now);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let Some(mut p) = self.fetch() else {
                m.ended.store(true, Ordering::SeqCst);
                m.clock.end();
                continue;
            };
            if let (true, Some(e)) = (speed > 0.0, p.e_ms) {
                let mut now = m.clock.now_ms();
                while e > now {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if self.last_tick.elapsed() >= Duration::from_millis(20) {
                        self.tick(&*exchange, now);
                    }
                    let wait_ms = ((e - now) as f64 / speed).clamp(0.0, 20.0);
                    std::thread::sleep(Duration::from_micros((wait_ms * 1000.0) as u64 + 50));
                    now = m.clock.now_ms();
                }
            }
            self.apply(&mut p);
            if let Some(e) = p.e_ms {
                m.clock.replayed(e);
            }
            let now = m.clock.now_ms();
            if !self.events.is_empty() {
                exchange.on_market(&self.events, now);
            }
            if let Some((stream, data)) = p.envelope {
                self.publish(&stream, data);
            }
            if self.last_tick.elapsed() >= Duration::from_millis(20) {
                self.tick(&*exchange, now);
            }
        }
    }

    fn publish(&mut self, stream: &str, data: String) {
        let m = Arc::clone(&self.market);
        let kind = stream.split_once('@').map(|x| x.1).unwrap_or("");
        match kind {
            "depth@0ms" | "depth" | "depth@100ms" | "depth@250ms" | "depth@500ms" => {
                if let Ok(d) = serde_json::from_str::<Diff>(&data) {
                    for g in &mut self.merged {
                        if g.stream != stream {
                            g.on_diff(&d, &m.instrument, &m.hub);
                        }
                    }
                }
            }
            "trade" => {
                if let Some(agg) = agg_trade(&data) {
                    m.hub.publish(&format!("{}@aggTrade", m.stream_symbol), agg);
                }
            }
            _ => {}
        }
        m.hub.publish(stream, data);
    }

    /// Periodic work: the exchange's clock, merged depth windows, mark prices.
    fn tick(&mut self, exchange: &dyn Exchange, now: i64) {
        self.last_tick = Instant::now();
        exchange.on_time(now);
        let m = Arc::clone(&self.market);
        let symbol = m.instrument.symbol.as_str().to_string();
        for g in &mut self.merged {
            g.on_time(now, &symbol, &m.hub);
        }
        while now / 1000 >= self.next_mark_s {
            let t = self.next_mark_s * 1000;
            if let Some(ev) = m.mark_price_event(t) {
                m.hub
                    .publish(&format!("{}@markPrice@1s", m.stream_symbol), ev.clone());
                if self.next_mark_s % 3 == 0 {
                    m.hub.publish(&format!("{}@markPrice", m.stream_symbol), ev);
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
