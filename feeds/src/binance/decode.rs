//! Binance market-data decoding with simd-json, into the engine's fixed-size events.
//!
//! One [`Decoder`] per feed thread. It owns simd-json's scratch buffers, the tape, and the level
//! buffer, and reuses all three, so once warmed up a decode allocates nothing. Decoding walks the
//! tape once: keys are matched on their bytes, numbers are read from the tape, and decimal
//! strings go straight onto the instrument's tick / lot grid.
//!
//! Understood: the combined-stream envelope `{"stream":..,"data":{..}}` and bare payloads;
//! USDⓈ-M / USDC-M `depthUpdate` (with `pu`), spot `depthUpdate` (without), `bookTicker` (futures
//! with `e`/`E`, spot without), `trade`, `aggTrade`, `markPriceUpdate` (USDⓈ-M and COIN-M;
//! see [`MAX_FUNDING_RATE_E8`]), and the REST depth snapshot (`{"lastUpdateId",..,"bids","asks"}`).
//! Other stream payloads (klines, tickers...) decode to [`Message::Ignored`]; anything malformed
//! is a [`DecodeError`].

use crate::binance::depth_fast::{self, Fast};
use engine::{
    signed_decimal_to_units, DecimalError, Event, Instrument, InstrumentId, LevelUpdate,
    MarkPriceUpdate, Side, Symbol, TopOfBook, TradePrint, FUNDING_RATE_DECIMALS,
};
use simd_json::{Node, StaticNode, Tape};

/// The largest funding rate magnitude a `markPriceUpdate` may announce, in 10^-8: 100% of the
/// position's value per funding interval. Binance caps real rates at a few percent; a value
/// beyond this is not a rate but a broken message, refused as `BadField("r")`.
pub const MAX_FUNDING_RATE_E8: i64 = 100_000_000;

/// Header of a depth diff; its levels are in [`Decoder::levels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthHeader {
    /// Instrument the diff belongs to.
    pub instrument: InstrumentId,
    /// First update id in the event (`U`).
    pub first_id: u64,
    /// Final update id in the event (`u`).
    pub final_id: u64,
    /// Final update id of the previous event (`pu`); futures only.
    pub prev_final_id: Option<u64>,
    /// Venue event time (`E`), ns.
    pub venue_time_ns: i64,
    /// Local receive time, ns.
    pub local_time_ns: i64,
}

/// Header of a REST depth snapshot; its levels are in [`Decoder::levels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Instrument the snapshot belongs to.
    pub instrument: InstrumentId,
    /// `lastUpdateId`.
    pub last_update_id: u64,
    /// Venue time (`E` where present, else 0), ns.
    pub venue_time_ns: i64,
    /// Local receive time, ns.
    pub local_time_ns: i64,
}

/// What one message decoded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A depth diff; levels in [`Decoder::levels`], the last one flagged `last_in_msg`.
    Depth(DepthHeader),
    /// A full depth snapshot; levels in [`Decoder::levels`], flagged `snapshot`.
    Snapshot(SnapshotHeader),
    /// A self-contained event: best bid/offer, trade or mark price.
    Event(Event),
    /// Valid, but nothing the engine consumes (another stream type, or another symbol).
    Ignored(IgnoreReason),
}

/// Why a valid message was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// A stream type the engine does not consume (kline, ticker, ...).
    OtherStream,
    /// A symbol this decoder was not configured for.
    OtherSymbol,
}

/// A message that could not be decoded. The message is dropped; nothing was emitted for it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid JSON, but not an object or not a message shape we know.
    #[error("unrecognised message shape")]
    UnknownShape,
    /// A required field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type or an impossible value.
    #[error("bad field `{0}`")]
    BadField(&'static str),
    /// A price or quantity string could not be put on the instrument's grid.
    #[error("bad decimal in `{field}`: {err}")]
    Decimal {
        /// Which field.
        field: &'static str,
        /// Why.
        err: DecimalError,
    },
    /// A REST snapshot carries no symbol and this decoder serves several instruments: the
    /// source must say whose it is ([`Decoder::decode_for`], [`Decoder::decode_snapshot`]).
    #[error(
        "depth snapshot without a symbol on a multi-instrument decoder, from a source bound to no \
         instrument"
    )]
    SnapshotWithoutSymbol,
}

/// Which instruments a message may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Any instrument of the decoder, by the symbol the message names.
    Any,
    /// One instrument: the message came from a source bound to it (a recording of that
    /// instrument). A payload naming another symbol is ignored; a REST snapshot (no symbol) is
    /// that instrument's.
    Bound(InstrumentId),
    /// A REST snapshot known to be this instrument's, whatever it says.
    Snapshot(InstrumentId),
}

/// Counters kept by a decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Messages decoded into something the engine consumes.
    pub decoded: u64,
    /// Valid messages ignored.
    pub ignored: u64,
    /// Messages rejected with a [`DecodeError`].
    pub errors: u64,
}

/// Binance market-data decoder for a fixed set of instruments.
pub struct Decoder {
    instruments: Vec<Instrument>,
    adopt_first_symbol: bool,
    buffers: simd_json::Buffers,
    tape: Option<Tape<'static>>,
    levels: Vec<Event>,
    stats: DecodeStats,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("instruments", &self.instruments)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Levels reserved up front; a snapshot of 1,000 a side fits without growing.
const LEVEL_CAPACITY: usize = 4096;
/// Bytes of simd-json scratch reserved up front (the largest recorded line is ~42 KB).
const INPUT_CAPACITY: usize = 64 * 1024;

impl Decoder {
    /// A decoder for these instruments; instrument ids are their positions in the slice.
    pub fn new(instruments: &[Instrument]) -> Decoder {
        Decoder {
            instruments: instruments.to_vec(),
            adopt_first_symbol: false,
            buffers: simd_json::Buffers::new(INPUT_CAPACITY),
            tape: Some(Tape(Vec::with_capacity(LEVEL_CAPACITY * 3 + 64)).reset()),
            levels: Vec::with_capacity(LEVEL_CAPACITY),
            stats: DecodeStats::default(),
        }
    }

    /// A single-instrument decoder that takes its symbol from the first message naming one
    /// (`instrument.symbol` is replaced). Messages for any other symbol are then ignored.
    pub fn adopting_first_symbol(instrument: Instrument) -> Decoder {
        let mut d = Decoder::new(&[instrument]);
        d.adopt_first_symbol = true;
        d
    }

    /// The instruments served, by id.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// Levels of the last [`Message::Depth`] or [`Message::Snapshot`].
    pub fn levels(&self) -> &[Event] {
        &self.levels
    }

    /// Counters so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Decodes one message. `json` is modified in place (simd-json unescapes into it).
    pub fn decode(&mut self, json: &mut [u8], local_ns: i64) -> Result<Message, DecodeError> {
        self.decode_inner(json, local_ns, Route::Any)
    }

    /// Decodes one message from a source bound to `instrument` (a recording of that
    /// instrument): a REST snapshot, which names no symbol, is `instrument`'s; a stream payload
    /// for `instrument`'s symbol is `instrument`'s even when another instrument of the decoder
    /// has the same symbol (one symbol on two venues); a payload for any other symbol is
    /// [`IgnoreReason::OtherSymbol`]. An `instrument` the decoder does not have is
    /// `BadField("instrument")`. Same fast path, same allocation-free decoding as
    /// [`Decoder::decode`].
    #[inline]
    pub fn decode_for(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        instrument: InstrumentId,
    ) -> Result<Message, DecodeError> {
        self.decode_inner(json, local_ns, Route::Bound(instrument))
    }

    /// Decodes a REST depth snapshot for a known instrument (the REST body names no symbol).
    pub fn decode_snapshot(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        instrument: InstrumentId,
    ) -> Result<Message, DecodeError> {
        self.decode_inner(json, local_ns, Route::Snapshot(instrument))
    }

    /// Decodes with the general simd-json path only, skipping the depth fast path. For benches
    /// and the differential tests that hold the two paths to the same output.
    pub fn decode_general(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
    ) -> Result<Message, DecodeError> {
        self.levels.clear();
        self.decode_tape(json, local_ns, Route::Any)
    }

    /// [`Decoder::decode_for`] with the general simd-json path only (see
    /// [`Decoder::decode_general`]).
    pub fn decode_general_for(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        instrument: InstrumentId,
    ) -> Result<Message, DecodeError> {
        self.levels.clear();
        self.decode_tape(json, local_ns, Route::Bound(instrument))
    }

    fn decode_inner(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        route: Route,
    ) -> Result<Message, DecodeError> {
        self.levels.clear();
        // The fast path looks the symbol up in a slice of instruments whose first has id
        // `first`: all of them, or only the bound one.
        let fast = match route {
            _ if self.adopt_first_symbol => None,
            Route::Any => Some((&self.instruments[..], 0)),
            Route::Bound(id) => self
                .instruments
                .get(id as usize..=id as usize)
                .map(|one| (one, id)),
            Route::Snapshot(_) => None,
        };
        if let Some((instruments, first)) = fast {
            match depth_fast::decode_depth(json, local_ns, instruments, first, &mut self.levels) {
                Fast::Depth(h) => {
                    self.stats.decoded += 1;
                    return Ok(Message::Depth(h));
                }
                Fast::Error(e) => {
                    self.levels.clear();
                    self.stats.errors += 1;
                    return Err(e);
                }
                Fast::Fallback => {}
            }
        }
        self.decode_tape(json, local_ns, route)
    }

    fn decode_tape(
        &mut self,
        json: &mut [u8],
        local_ns: i64,
        route: Route,
    ) -> Result<Message, DecodeError> {
        let mut tape = match self.tape.take() {
            Some(t) => t.reset(),
            None => Tape::null().reset(),
        };
        let result = match simd_json::fill_tape(json, &mut self.buffers, &mut tape) {
            Ok(()) => self.normalize(&tape.0, local_ns, route),
            Err(e) => Err(DecodeError::Json(e.to_string())),
        };
        self.tape = Some(tape.reset());
        match &result {
            Ok(Message::Ignored(_)) => self.stats.ignored += 1,
            Ok(_) => self.stats.decoded += 1,
            Err(_) => {
                self.levels.clear();
                self.stats.errors += 1;
            }
        }
        result
    }

    fn normalize(
        &mut self,
        n: &[Node<'_>],
        local_ns: i64,
        route: Route,
    ) -> Result<Message, DecodeError> {
        let root = Fields::read(n, 0)?;
        if let Some(data) = root.data {
            let f = Fields::read(n, data)?;
            let stream_is_ticker = root.stream.is_some_and(|s| s.ends_with("@bookTicker"));
            return self.payload(n, &f, local_ns, stream_is_ticker, route);
        }
        if root.last_update_id.is_some() {
            return self.snapshot(n, &root, local_ns, route);
        }
        self.payload(n, &root, local_ns, false, route)
    }

    fn payload(
        &mut self,
        n: &[Node<'_>],
        f: &Fields<'_>,
        local_ns: i64,
        stream_is_ticker: bool,
        route: Route,
    ) -> Result<Message, DecodeError> {
        let kind = match f.e {
            Some(e) => e,
            // Spot bookTicker has no `e`: know it by its stream name or its fields.
            None if stream_is_ticker || (f.u.is_some() && f.big_b.is_some()) => "bookTicker",
            None if f.last_update_id.is_some() => return Err(DecodeError::SnapshotWithoutSymbol),
            None => return Err(DecodeError::UnknownShape),
        };
        if !matches!(
            kind,
            "depthUpdate" | "bookTicker" | "trade" | "aggTrade" | "markPriceUpdate"
        ) {
            return Ok(Message::Ignored(IgnoreReason::OtherStream));
        }
        let sym = f.s.ok_or(DecodeError::MissingField("s"))?;
        let Some(id) = self.route_symbol(route, sym.as_bytes())? else {
            return Ok(Message::Ignored(IgnoreReason::OtherSymbol));
        };
        let inst = self.instruments[id as usize];
        // A mark price's `T` is the next funding time, not the event's.
        let venue_ms = if kind == "markPriceUpdate" {
            f.big_e
        } else {
            f.big_e.or(f.big_t)
        };
        let venue_ns = match venue_ms {
            Some(ms) => ms_to_ns(ms, "E")?,
            None => 0,
        };
        match kind {
            "depthUpdate" => {
                let first_id = f.big_u.ok_or(DecodeError::MissingField("U"))?;
                let final_id = f.u.ok_or(DecodeError::MissingField("u"))?;
                if final_id < first_id {
                    return Err(DecodeError::BadField("u"));
                }
                let bids = f.b.ok_or(DecodeError::MissingField("b"))?;
                let asks = f.a.ok_or(DecodeError::MissingField("a"))?;
                self.levels_from(
                    n,
                    bids,
                    &inst,
                    id,
                    Side::Bid,
                    final_id,
                    false,
                    venue_ns,
                    local_ns,
                    "b",
                )?;
                self.levels_from(
                    n,
                    asks,
                    &inst,
                    id,
                    Side::Ask,
                    final_id,
                    false,
                    venue_ns,
                    local_ns,
                    "a",
                )?;
                self.flag_last();
                Ok(Message::Depth(DepthHeader {
                    instrument: id,
                    first_id,
                    final_id,
                    prev_final_id: f.pu,
                    venue_time_ns: venue_ns,
                    local_time_ns: local_ns,
                }))
            }
            "bookTicker" => {
                let update_id = f.u.ok_or(DecodeError::MissingField("u"))?;
                let top = TopOfBook {
                    bid_price: price(&inst, str_at(n, f.b, "b")?, "b")?,
                    bid_qty: qty(&inst, f.big_b.ok_or(DecodeError::MissingField("B"))?, "B")?,
                    ask_price: price(&inst, str_at(n, f.a, "a")?, "a")?,
                    ask_qty: qty(&inst, f.big_a.ok_or(DecodeError::MissingField("A"))?, "A")?,
                    update_id,
                };
                Ok(Message::Event(Event::bbo(id, venue_ns, local_ns, top)))
            }
            "markPriceUpdate" => {
                let next_funding = f.big_t.ok_or(DecodeError::MissingField("T"))?;
                // A time the engine can hold in ns too (`T` 0: no funding, delivery contracts).
                ms_to_ns(next_funding, "T")?;
                let m = MarkPriceUpdate {
                    mark_price: computed_price(
                        &inst,
                        f.p.ok_or(DecodeError::MissingField("p"))?,
                        "p",
                    )?,
                    index_price: computed_price(&inst, str_at(n, f.i, "i")?, "i")?,
                    funding_rate_e8: funding_rate(str_at(n, f.r, "r")?)?,
                    next_funding_ms: next_funding as i64,
                };
                Ok(Message::Event(Event::mark_price(id, venue_ns, local_ns, m)))
            }
            _ => {
                let agg = kind == "aggTrade";
                let trade_id = if agg {
                    num(n, f.a).ok_or(DecodeError::MissingField("a"))?
                } else {
                    f.t.ok_or(DecodeError::MissingField("t"))?
                };
                let count = if agg {
                    let (first, last) = (
                        f.f.ok_or(DecodeError::MissingField("f"))?,
                        f.l.ok_or(DecodeError::MissingField("l"))?,
                    );
                    let c = last.checked_sub(first).ok_or(DecodeError::BadField("l"))?;
                    u32::try_from(c + 1).map_err(|_| DecodeError::BadField("l"))?
                } else {
                    1
                };
                let buyer_maker = f.m.ok_or(DecodeError::MissingField("m"))?;
                let t = TradePrint {
                    price: price(&inst, f.p.ok_or(DecodeError::MissingField("p"))?, "p")?,
                    qty: qty(&inst, f.q.ok_or(DecodeError::MissingField("q"))?, "q")?,
                    trade_id,
                    count,
                    aggressor: if buyer_maker { Side::Ask } else { Side::Bid },
                };
                Ok(Message::Event(Event::trade(id, venue_ns, local_ns, t)))
            }
        }
    }

    fn snapshot(
        &mut self,
        n: &[Node<'_>],
        f: &Fields<'_>,
        local_ns: i64,
        route: Route,
    ) -> Result<Message, DecodeError> {
        let known = |id: InstrumentId| (id as usize) < self.instruments.len();
        let id = match (route, f.s) {
            (Route::Snapshot(id) | Route::Bound(id), _) if !known(id) => {
                return Err(DecodeError::BadField("instrument"))
            }
            (Route::Snapshot(id), _) | (Route::Bound(id), None) => id,
            (Route::Bound(_) | Route::Any, Some(sym)) => {
                match self.route_symbol(route, sym.as_bytes())? {
                    Some(id) => id,
                    None => return Ok(Message::Ignored(IgnoreReason::OtherSymbol)),
                }
            }
            (Route::Any, None) if self.instruments.len() == 1 => 0,
            (Route::Any, None) => return Err(DecodeError::SnapshotWithoutSymbol),
        };
        let inst = self.instruments[id as usize];
        let last_update_id = f
            .last_update_id
            .ok_or(DecodeError::MissingField("lastUpdateId"))?;
        let venue_ns = match f.big_e {
            Some(ms) => ms_to_ns(ms, "E")?,
            None => 0,
        };
        let bids = f.bids.ok_or(DecodeError::MissingField("bids"))?;
        let asks = f.asks.ok_or(DecodeError::MissingField("asks"))?;
        self.levels_from(
            n,
            bids,
            &inst,
            id,
            Side::Bid,
            last_update_id,
            true,
            venue_ns,
            local_ns,
            "bids",
        )?;
        self.levels_from(
            n,
            asks,
            &inst,
            id,
            Side::Ask,
            last_update_id,
            true,
            venue_ns,
            local_ns,
            "asks",
        )?;
        self.flag_last();
        Ok(Message::Snapshot(SnapshotHeader {
            instrument: id,
            last_update_id,
            venue_time_ns: venue_ns,
            local_time_ns: local_ns,
        }))
    }

    /// The instrument a payload naming `sym` is for, on `route` (`None`: another symbol).
    #[inline]
    fn route_symbol(
        &mut self,
        route: Route,
        sym: &[u8],
    ) -> Result<Option<InstrumentId>, DecodeError> {
        match route {
            Route::Bound(id) => {
                self.adopt(sym);
                match self.instruments.get(id as usize) {
                    Some(i) => Ok(i.symbol.eq_ignore_case(sym).then_some(id)),
                    None => Err(DecodeError::BadField("instrument")),
                }
            }
            Route::Any | Route::Snapshot(_) => Ok(self.instrument_for(sym)),
        }
    }

    /// An adopting decoder takes `sym` as its instrument's symbol, once.
    #[inline]
    fn adopt(&mut self, sym: &[u8]) {
        if self.adopt_first_symbol {
            self.adopt_first_symbol = false;
            if let Some(s) = Symbol::new(sym) {
                self.instruments[0].symbol = s;
            }
        }
    }

    fn instrument_for(&mut self, sym: &[u8]) -> Option<InstrumentId> {
        self.adopt(sym);
        self.instruments
            .iter()
            .position(|i| i.symbol.eq_ignore_case(sym))
            .map(|p| p as InstrumentId)
    }

    /// Appends the `[price, qty]` pairs of the array at node `at`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn levels_from(
        &mut self,
        n: &[Node<'_>],
        at: usize,
        inst: &Instrument,
        id: InstrumentId,
        side: Side,
        update_id: u64,
        snapshot: bool,
        venue_ns: i64,
        local_ns: i64,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        let Some(&Node::Array { len, .. }) = n.get(at) else {
            return Err(DecodeError::BadField(field));
        };
        let mut i = at + 1;
        for _ in 0..len {
            let (p, q) = match (n.get(i), n.get(i + 1), n.get(i + 2)) {
                (
                    Some(&Node::Array { len: l, .. }),
                    Some(Node::String(p)),
                    Some(Node::String(q)),
                ) if l >= 2 => (*p, *q),
                _ => return Err(DecodeError::BadField(field)),
            };
            let level = LevelUpdate {
                side,
                price: price(inst, p, field)?,
                qty: qty(inst, q, field)?,
                update_id,
                last_in_msg: false,
                snapshot,
            };
            self.levels
                .push(Event::level(id, venue_ns, local_ns, level));
            i = skip(n, i);
        }
        Ok(())
    }

    fn flag_last(&mut self) {
        if let Some(last) = self.levels.last_mut() {
            last.mark_last_in_msg();
        }
    }
}

#[inline]
fn price(inst: &Instrument, s: &str, field: &'static str) -> Result<i64, DecodeError> {
    inst.price_to_ticks(s.as_bytes())
        .map_err(|err| DecodeError::Decimal { field, err })
}

#[inline]
fn qty(inst: &Instrument, s: &str, field: &'static str) -> Result<i64, DecodeError> {
    inst.book_qty(s.as_bytes())
        .map_err(|err| DecodeError::Decimal { field, err })
}

/// A price the venue computes (mark, index): to the nearest tick.
#[inline]
fn computed_price(inst: &Instrument, s: &str, field: &'static str) -> Result<i64, DecodeError> {
    inst.price_to_ticks_nearest(s.as_bytes())
        .map_err(|err| DecodeError::Decimal { field, err })
}

/// A `markPriceUpdate`'s `r`: exact, in 10^-8; `""` (a contract without funding) is 0.
#[inline]
fn funding_rate(s: &str) -> Result<i64, DecodeError> {
    if s.is_empty() {
        return Ok(0);
    }
    let r = signed_decimal_to_units(s.as_bytes(), FUNDING_RATE_DECIMALS)
        .map_err(|err| DecodeError::Decimal { field: "r", err })?;
    if r.abs() > MAX_FUNDING_RATE_E8 {
        return Err(DecodeError::BadField("r"));
    }
    Ok(r)
}

fn ms_to_ns(ms: u64, field: &'static str) -> Result<i64, DecodeError> {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| ms.checked_mul(1_000_000))
        .ok_or(DecodeError::BadField(field))
}

/// Index of the node after the value at `i` (skipping nested values).
#[inline]
fn skip(n: &[Node<'_>], i: usize) -> usize {
    match n.get(i) {
        Some(Node::Object { count, .. }) | Some(Node::Array { count, .. }) => i + 1 + count,
        _ => i + 1,
    }
}

#[inline]
fn num(n: &[Node<'_>], at: Option<usize>) -> Option<u64> {
    match n.get(at?)? {
        Node::Static(StaticNode::U64(v)) => Some(*v),
        Node::Static(StaticNode::I64(v)) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn str_at<'a>(
    n: &[Node<'a>],
    at: Option<usize>,
    field: &'static str,
) -> Result<&'a str, DecodeError> {
    match n.get(at.ok_or(DecodeError::MissingField(field))?) {
        Some(Node::String(s)) => Ok(s),
        _ => Err(DecodeError::BadField(field)),
    }
}

/// The fields of one object we may need, read in one pass. Node indexes for values whose type
/// depends on the message (`b`/`a` are arrays in depth, strings in bookTicker, a number in aggTrade)
/// and for those only one message kind reads (`i`, `r`: a mark price's index price and funding
/// rate), so another kind's odd value there is not an error.
#[derive(Default)]
struct Fields<'a> {
    stream: Option<&'a str>,
    data: Option<usize>,
    e: Option<&'a str>,
    big_e: Option<u64>,
    big_t: Option<u64>,
    s: Option<&'a str>,
    big_u: Option<u64>,
    u: Option<u64>,
    pu: Option<u64>,
    b: Option<usize>,
    a: Option<usize>,
    big_b: Option<&'a str>,
    big_a: Option<&'a str>,
    p: Option<&'a str>,
    q: Option<&'a str>,
    t: Option<u64>,
    m: Option<bool>,
    f: Option<u64>,
    l: Option<u64>,
    i: Option<usize>,
    r: Option<usize>,
    last_update_id: Option<u64>,
    bids: Option<usize>,
    asks: Option<usize>,
}

impl<'a> Fields<'a> {
    #[inline]
    fn read(n: &[Node<'a>], at: usize) -> Result<Fields<'a>, DecodeError> {
        let Some(&Node::Object { len, .. }) = n.get(at) else {
            return Err(DecodeError::UnknownShape);
        };
        let mut f = Fields::default();
        let mut i = at + 1;
        for _ in 0..len {
            let Some(Node::String(key)) = n.get(i) else {
                return Err(DecodeError::UnknownShape);
            };
            let v = i + 1;
            let s = |field| match n.get(v) {
                Some(Node::String(s)) => Ok(Some(*s)),
                _ => Err(DecodeError::BadField(field)),
            };
            let u = |field| match num(n, Some(v)) {
                Some(x) => Ok(Some(x)),
                None => Err(DecodeError::BadField(field)),
            };
            match key.as_bytes() {
                b"stream" => f.stream = s("stream")?,
                b"data" => f.data = Some(v),
                b"e" => f.e = s("e")?,
                b"E" => f.big_e = u("E")?,
                b"T" => f.big_t = u("T")?,
                b"s" => f.s = s("s")?,
                b"U" => f.big_u = u("U")?,
                b"u" => f.u = u("u")?,
                b"pu" => f.pu = u("pu")?,
                b"b" => f.b = Some(v),
                b"a" => f.a = Some(v),
                b"B" => f.big_b = s("B")?,
                b"A" => f.big_a = s("A")?,
                b"p" => f.p = s("p")?,
                b"q" => f.q = s("q")?,
                b"t" => f.t = u("t")?,
                b"m" => {
                    f.m = match n.get(v) {
                        Some(Node::Static(StaticNode::Bool(b))) => Some(*b),
                        _ => return Err(DecodeError::BadField("m")),
                    }
                }
                b"f" => f.f = u("f")?,
                b"l" => f.l = u("l")?,
                b"i" => f.i = Some(v),
                b"r" => f.r = Some(v),
                b"lastUpdateId" => f.last_update_id = u("lastUpdateId")?,
                b"bids" => f.bids = Some(v),
                b"asks" => f.asks = Some(v),
                _ => {}
            }
            i = skip(n, v);
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Instrument {
        Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap()
    }

    fn dec(d: &mut Decoder, s: &str) -> Result<Message, DecodeError> {
        let mut b = s.as_bytes().to_vec();
        d.decode(&mut b, 7)
    }

    #[test]
    fn futures_depth_update_in_envelope() {
        let mut d = Decoder::new(&[btc()]);
        let m = dec(&mut d, r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":10,"u":20,"pu":9,"b":[["61800.20","0.014"],["61800.10","0.000"]],"a":[["61800.30","1.5"]]}}"#).unwrap();
        let Message::Depth(h) = m else {
            panic!("{m:?}")
        };
        assert_eq!((h.first_id, h.final_id, h.prev_final_id), (10, 20, Some(9)));
        assert_eq!(h.venue_time_ns, 1_723_161_256_299_000_000);
        assert_eq!(h.local_time_ns, 7);
        let lv: Vec<_> = d.levels().iter().map(|e| e.as_level().unwrap()).collect();
        assert_eq!(lv.len(), 3);
        assert_eq!(
            (lv[0].side, lv[0].price, lv[0].qty),
            (Side::Bid, 618002, 14)
        );
        assert_eq!((lv[1].price, lv[1].qty), (618001, 0));
        assert_eq!(
            (lv[2].side, lv[2].price, lv[2].qty),
            (Side::Ask, 618003, 1500)
        );
        assert!(!lv[0].last_in_msg && !lv[1].last_in_msg && lv[2].last_in_msg);
        assert!(lv.iter().all(|l| l.update_id == 20 && !l.snapshot));
    }

    #[test]
    fn spot_depth_and_ticker_without_e() {
        let spot = Instrument::new("BTCUSDT", "0.01", "0.00001", "0.00001", "5").unwrap();
        let mut d = Decoder::new(&[spot]);
        let m = dec(&mut d, r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"]],"a":[]}}"#).unwrap();
        let Message::Depth(h) = m else { panic!() };
        assert_eq!(h.prev_final_id, None);
        assert!(d.levels()[0].as_level().unwrap().last_in_msg);
        let m = dec(&mut d, r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#).unwrap();
        let Message::Event(e) = m else { panic!() };
        let t = e.as_bbo().unwrap();
        assert_eq!(
            (t.bid_price, t.bid_qty, t.ask_price, t.ask_qty, t.update_id),
            (6183763, 378826, 6183764, 154698, 50093239212)
        );
        assert_eq!(e.venue_time_ns, 0);
    }

    #[test]
    fn trades_and_agg_trades() {
        let mut d = Decoder::new(&[btc()]);
        let Message::Event(e) = dec(&mut d, r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#).unwrap() else { panic!() };
        let t = e.as_trade().unwrap();
        assert_eq!(
            (t.price, t.qty, t.trade_id, t.count, t.aggressor),
            (618003, 6, 5266583935, 1, Side::Bid)
        );
        let agg = r#"{"e":"aggTrade","E":123456789,"a":5933014,"s":"BTCUSDT","p":"0.10","q":"100","f":100,"l":105,"T":123456785,"m":true}"#;
        let Message::Event(e) = dec(&mut d, agg).unwrap() else {
            panic!()
        };
        let t = e.as_trade().unwrap();
        assert_eq!(
            (t.price, t.qty, t.trade_id, t.count, t.aggressor),
            (1, 100_000, 5933014, 6, Side::Ask)
        );
        assert_eq!(e.venue_time_ns, 123_456_789_000_000);
    }

    /// The USDⓈ-M example of Binance's docs (`tests/data/binance-fixtures`), pretty-printed
    /// as it is, bare and in a combined-stream envelope.
    #[test]
    fn mark_price_fixture() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/binance-fixtures/futures/market_data_json/mark_price_stream.json");
        let fixture = std::fs::read_to_string(path).unwrap();
        let enveloped = format!(
            r#"{{"stream":"btcusdt@markPrice@1s","data":{}}}"#,
            fixture.trim()
        );
        let mut d = Decoder::new(&[btc()]);
        for json in [fixture.as_str(), &enveloped] {
            let Ok(Message::Event(e)) = dec(&mut d, json) else {
                panic!("{json}")
            };
            assert_eq!(e.kind(), engine::EventKind::MarkPrice);
            assert_eq!(e.instrument(), 0);
            assert_eq!(e.venue_time_ns, 1_562_305_380_000_000_000, "`E`, not `T`");
            assert_eq!(e.local_time_ns, 7);
            assert_eq!(
                e.as_mark_price(),
                Some(MarkPriceUpdate {
                    // 11794.15: half a tick, up; 11784.62659091: to 11784.6.
                    mark_price: 117_942,
                    index_price: 117_846,
                    funding_rate_e8: 38_167,
                    next_funding_ms: 1_562_306_400_000,
                })
            );
        }
        assert_eq!(d.stats().decoded, 2);
        // Another symbol's is ignored, as trades are.
        let eth = fixture.replace("BTCUSDT", "ETHUSDT");
        assert_eq!(
            dec(&mut d, &eth),
            Ok(Message::Ignored(IgnoreReason::OtherSymbol))
        );
    }

    #[test]
    fn mark_price_negative_funding_and_coinm_shapes() {
        let mut d = Decoder::new(&[btc()]);
        let neg = r#"{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1723161256000,"s":"BTCUSDT","p":"61800.24","i":"61790.05000000","P":"61801.00","r":"-0.00012500","T":1723190400000}}"#;
        let Ok(Message::Event(e)) = dec(&mut d, neg) else {
            panic!()
        };
        let m = e.as_mark_price().unwrap();
        assert_eq!(
            (
                m.mark_price,
                m.index_price,
                m.funding_rate_e8,
                m.next_funding_ms
            ),
            (618_002, 617_901, -12_500, 1_723_190_400_000)
        );
        // COIN-M perpetual (with `ps`) on its 0.1 tick, and a delivery contract: no funding
        // (`"r":""`, `T` 0).
        let perp = Instrument::from_spec(&engine::InstrumentSpec {
            symbol: "BTCUSD_PERP",
            kind: engine::InstrumentKind::Inverse,
            tick: "0.1",
            lot: "1",
            min_qty: "1",
            min_notional: "0",
            contract_size: Some("100"),
            ..engine::InstrumentSpec::default()
        })
        .unwrap();
        let delivery = Instrument {
            symbol: Symbol::new(b"BTCUSD_201225").unwrap(),
            ..perp
        };
        let mut d = Decoder::new(&[perp, delivery]);
        let coinm = r#"{"stream":"btcusd_perp@markPrice@1s","data":{"e":"markPriceUpdate","E":1596095725000,"s":"BTCUSD_PERP","ps":"BTCUSD","p":"10934.62615417","P":"10962.17178236","i":"10933.62615417","r":"0.00010000","T":1596096000000}}"#;
        let Ok(Message::Event(e)) = dec(&mut d, coinm) else {
            panic!()
        };
        assert_eq!(e.instrument(), 0);
        let m = e.as_mark_price().unwrap();
        assert_eq!(
            (
                m.mark_price,
                m.index_price,
                m.funding_rate_e8,
                m.next_funding_ms
            ),
            (109_346, 109_336, 10_000, 1_596_096_000_000)
        );
        let quarterly = r#"{"e":"markPriceUpdate","E":1596095725000,"s":"BTCUSD_201225","p":"10934.62615417","P":"10962.17178236","i":"10933.62615417","r":"","T":0}"#;
        let Ok(Message::Event(e)) = dec(&mut d, quarterly) else {
            panic!()
        };
        assert_eq!(e.instrument(), 1);
        let m = e.as_mark_price().unwrap();
        assert_eq!((m.funding_rate_e8, m.next_funding_ms), (0, 0));
        // Bound to an instrument, as a recording is.
        let mut b = coinm.as_bytes().to_vec();
        assert!(matches!(d.decode_for(&mut b, 7, 0), Ok(Message::Event(e)) if e.instrument() == 0));
        let mut b = coinm.as_bytes().to_vec();
        assert_eq!(
            d.decode_for(&mut b, 7, 1),
            Ok(Message::Ignored(IgnoreReason::OtherSymbol))
        );
    }

    #[test]
    fn malformed_mark_prices_are_typed_errors() {
        let mut d = Decoder::new(&[btc()]);
        let good = r#"{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"11794.15","i":"11784.6","r":"0.00038167","T":2}"#;
        assert!(matches!(dec(&mut d, good), Ok(Message::Event(_))));
        type Check = fn(&DecodeError) -> bool;
        let with = |from: &str, to: &str| good.replacen(from, to, 1);
        let cases: Vec<(String, Check)> = vec![
            (with(r#""p":"11794.15","#, ""), |e| {
                matches!(e, DecodeError::MissingField("p"))
            }),
            (with(r#""i":"11784.6","#, ""), |e| {
                matches!(e, DecodeError::MissingField("i"))
            }),
            (with(r#","r":"0.00038167""#, ""), |e| {
                matches!(e, DecodeError::MissingField("r"))
            }),
            (with(r#","T":2"#, ""), |e| {
                matches!(e, DecodeError::MissingField("T"))
            }),
            (with(r#""s":"BTCUSDT","#, ""), |e| {
                matches!(e, DecodeError::MissingField("s"))
            }),
            (with(r#""11794.15""#, "11794.15"), |e| {
                matches!(e, DecodeError::BadField("p"))
            }),
            (with(r#""11784.6""#, "null"), |e| {
                matches!(e, DecodeError::BadField("i"))
            }),
            (with(r#""0.00038167""#, "0.00038167"), |e| {
                matches!(e, DecodeError::BadField("r"))
            }),
            (with("11794.15", "-11794.15"), |e| {
                matches!(
                    e,
                    DecodeError::Decimal {
                        field: "p",
                        err: DecimalError::Negative
                    }
                )
            }),
            (with("11794.15", "0.04"), |e| {
                matches!(
                    e,
                    DecodeError::Decimal {
                        field: "p",
                        err: DecimalError::OffGrid
                    }
                )
            }),
            (with("11794.15", "1e4"), |e| {
                matches!(
                    e,
                    DecodeError::Decimal {
                        field: "p",
                        err: DecimalError::NotNumeric
                    }
                )
            }),
            (with("11784.6", "99999999999999999999999999999"), |e| {
                matches!(
                    e,
                    DecodeError::Decimal {
                        field: "i",
                        err: DecimalError::Overflow
                    }
                )
            }),
            (with("0.00038167", "0.000381675"), |e| {
                matches!(
                    e,
                    DecodeError::Decimal {
                        field: "r",
                        err: DecimalError::OffGrid
                    }
                )
            }),
            (with("0.00038167", "--0.1"), |e| {
                matches!(
                    e,
                    DecodeError::Decimal {
                        field: "r",
                        err: DecimalError::NotNumeric
                    }
                )
            }),
            (with("0.00038167", "1.00000001"), |e| {
                matches!(e, DecodeError::BadField("r"))
            }),
            (with("0.00038167", "-1.5"), |e| {
                matches!(e, DecodeError::BadField("r"))
            }),
            (with(r#""T":2"#, r#""T":-2"#), |e| {
                matches!(e, DecodeError::BadField("T"))
            }),
            (with(r#""T":2"#, r#""T":9223372036855"#), |e| {
                matches!(e, DecodeError::BadField("T"))
            }),
            (with(r#""E":1"#, r#""E":99999999999999999"#), |e| {
                matches!(e, DecodeError::BadField("E"))
            }),
        ];
        for (s, ok) in &cases {
            let e = dec(&mut d, s).unwrap_err();
            assert!(ok(&e), "{s}: {e:?}");
            assert!(d.levels().is_empty());
        }
        assert_eq!(d.stats().errors, cases.len() as u64);
        // The largest rate there is, both signs, and a `T` that is 0.
        for r in ["1.00000000", "-1"] {
            assert!(matches!(
                dec(&mut d, &with("0.00038167", r)),
                Ok(Message::Event(_))
            ));
        }
        let Ok(Message::Event(e)) = dec(&mut d, &with(r#""T":2"#, r#""T":0"#)) else {
            panic!()
        };
        assert_eq!(e.as_mark_price().map(|m| m.next_funding_ms), Some(0));
        // Another kind's `i` or `r` of any type is nothing to it.
        let trade = r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.0","q":"1","m":true,"i":[1],"r":null}"#;
        assert!(matches!(dec(&mut d, trade), Ok(Message::Event(e)) if e.as_trade().is_some()));
    }

    #[test]
    fn snapshot_and_other_messages() {
        let mut d = Decoder::new(&[btc()]);
        let m = dec(&mut d, r#"{"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,"bids":[["61800.20","2.909"]],"asks":[["61800.30","0.5"],["61800.40","1"]]}"#).unwrap();
        let Message::Snapshot(h) = m else { panic!() };
        assert_eq!(h.last_update_id, 5123107852948);
        assert_eq!(d.levels().len(), 3);
        assert!(d.levels().iter().all(|e| e.as_level().unwrap().snapshot));
        assert_eq!(
            dec(
                &mut d,
                r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT"}}"#
            ),
            Ok(Message::Ignored(IgnoreReason::OtherStream))
        );
        assert_eq!(
            dec(
                &mut d,
                r#"{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1.0","q":"1","m":true}"#
            ),
            Ok(Message::Ignored(IgnoreReason::OtherSymbol))
        );
        assert_eq!(
            d.stats(),
            DecodeStats {
                decoded: 1,
                ignored: 2,
                errors: 0
            }
        );
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let mut d = Decoder::new(&[btc()]);
        type Check = fn(&DecodeError) -> bool;
        let cases: &[(&str, Check)] = &[
            (r#"{"e":"depthUpdate""#, |e| {
                matches!(e, DecodeError::Json(_))
            }),
            (r#"[1,2]"#, |e| matches!(e, DecodeError::UnknownShape)),
            (
                r#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[],"a":[["1.05","1"]]}"#,
                |e| {
                    matches!(
                        e,
                        DecodeError::Decimal {
                            field: "a",
                            err: DecimalError::OffGrid
                        }
                    )
                },
            ),
            (
                r#"{"e":"depthUpdate","s":"BTCUSDT","U":3,"u":2,"b":[],"a":[]}"#,
                |e| matches!(e, DecodeError::BadField("u")),
            ),
            (
                r#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[["1.0"]],"a":[]}"#,
                |e| matches!(e, DecodeError::BadField("b")),
            ),
            (
                r#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"b":[],"a":[]}"#,
                |e| matches!(e, DecodeError::MissingField("u")),
            ),
            (
                r#"{"e":"depthUpdate","s":"BTCUSDT","U":-1,"u":2,"b":[],"a":[]}"#,
                |e| matches!(e, DecodeError::BadField("U")),
            ),
            (
                r#"{"e":"trade","s":"BTCUSDT","t":1,"p":"-1.0","q":"1","m":true}"#,
                |e| {
                    matches!(
                        e,
                        DecodeError::Decimal {
                            field: "p",
                            err: DecimalError::Negative
                        }
                    )
                },
            ),
            (
                r#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1.0","q":"1","m":"yes"}"#,
                |e| matches!(e, DecodeError::BadField("m")),
            ),
            (
                r#"{"e":"bookTicker","s":"BTCUSDT","u":1,"b":"1.0","B":"1","a":"x","A":"1"}"#,
                |e| matches!(e, DecodeError::Decimal { field: "a", .. }),
            ),
            (
                r#"{"e":"trade","E":99999999999999999,"s":"BTCUSDT","t":1,"p":"1.0","q":"1","m":true}"#,
                |e| matches!(e, DecodeError::BadField("E")),
            ),
            (r#"{"foo":1}"#, |e| matches!(e, DecodeError::UnknownShape)),
        ];
        for (s, ok) in cases {
            let e = dec(&mut d, s).unwrap_err();
            assert!(ok(&e), "{s}: {e:?}");
            assert!(d.levels().is_empty());
        }
        assert_eq!(d.stats().errors, cases.len() as u64);
    }

    #[test]
    fn adopts_the_first_symbol() {
        let mut d = Decoder::adopting_first_symbol(
            Instrument::new("ANYUSDT", "0.10", "0.001", "0.001", "0").unwrap(),
        );
        assert!(matches!(
            dec(
                &mut d,
                r#"{"e":"trade","s":"ETHUSDT","t":1,"p":"1.0","q":"1","m":true}"#
            ),
            Ok(Message::Event(_))
        ));
        assert_eq!(d.instruments()[0].symbol.as_str(), "ETHUSDT");
        assert_eq!(
            dec(
                &mut d,
                r#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1.0","q":"1","m":true}"#
            ),
            Ok(Message::Ignored(IgnoreReason::OtherSymbol))
        );
    }

    /// A decoder of two instruments with one symbol (USD-M and spot BTCUSDT) and a source bound
    /// to one of them: the bare REST snapshot is the bound instrument's, a payload of the
    /// symbol goes to the bound instrument (not the first of that symbol), another symbol is
    /// ignored; unbound, the snapshot cannot be placed.
    #[test]
    fn bound_decoding_routes_to_the_bound_instrument() {
        let spot = Instrument::new("BTCUSDT", "0.01", "0.00000001", "0.00001", "5").unwrap();
        let mut d = Decoder::new(&[btc(), spot]);
        let snap =
            r#"{"lastUpdateId":9,"bids":[["61800.20","2.909"]],"asks":[["61800.30","0.5"]]}"#;
        let mut b = snap.as_bytes().to_vec();
        assert_eq!(d.decode(&mut b, 7), Err(DecodeError::SnapshotWithoutSymbol));
        for id in [0, 1] {
            let mut b = snap.as_bytes().to_vec();
            let Ok(Message::Snapshot(h)) = d.decode_for(&mut b, 7, id) else {
                panic!("snapshot for {id}")
            };
            assert_eq!((h.instrument, h.last_update_id), (id, 9));
            assert!(d.levels().iter().all(|e| e.instrument() == id));
        }
        // On the spot grid (0.01 tick, 1e-8 lot) when bound to the spot instrument.
        assert_eq!(d.levels()[0].as_level().unwrap().price, 6_180_020);
        assert_eq!(d.levels()[0].as_level().unwrap().qty, 290_900_000);
        let diff = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":10,"u":20,"pu":9,"b":[["61800.20","0.014"]],"a":[["61800.30","1.5"]]}}"#;
        let ticker = r#"{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"61800.20","B":"1","a":"61800.30","A":"2"}}"#;
        let eth = r#"{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1.0","q":"1","m":true}"#;
        for id in [0u16, 1] {
            // The fast path and the general one alike.
            for general in [false, true] {
                let mut b = diff.as_bytes().to_vec();
                let m = if general {
                    d.decode_general_for(&mut b, 7, id)
                } else {
                    d.decode_for(&mut b, 7, id)
                };
                let Ok(Message::Depth(h)) = m else {
                    panic!("{m:?}")
                };
                assert_eq!(h.instrument, id, "general {general}");
                assert_eq!(d.levels().len(), 2);
                assert!(d.levels().iter().all(|e| e.instrument() == id));
            }
            let mut b = ticker.as_bytes().to_vec();
            let Ok(Message::Event(e)) = d.decode_for(&mut b, 7, id) else {
                panic!()
            };
            assert_eq!(e.instrument(), id);
            let mut b = eth.as_bytes().to_vec();
            assert_eq!(
                d.decode_for(&mut b, 7, id),
                Ok(Message::Ignored(IgnoreReason::OtherSymbol))
            );
        }
        // Unbound, the symbol picks the first instrument that has it.
        let mut b = diff.as_bytes().to_vec();
        assert!(matches!(d.decode(&mut b, 7), Ok(Message::Depth(h)) if h.instrument == 0));
        // A snapshot naming another symbol is not the bound instrument's.
        let mut b = br#"{"lastUpdateId":9,"s":"ETHUSDT","bids":[],"asks":[]}"#.to_vec();
        assert_eq!(
            d.decode_for(&mut b, 7, 1),
            Ok(Message::Ignored(IgnoreReason::OtherSymbol))
        );
        // An instrument the decoder does not have.
        for m in [snap, diff, ticker] {
            let mut b = m.as_bytes().to_vec();
            assert_eq!(
                d.decode_for(&mut b, 7, 2),
                Err(DecodeError::BadField("instrument")),
                "{m}"
            );
        }
    }
}
