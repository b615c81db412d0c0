//! The live order-entry session at Binance USDⓈ-M: a [`Venue`] over the WebSocket API, the
//! user data stream and the REST side ([`super::worker`]).
//!
//! # Links and phases
//!
//! Two WebSocket connections, both busy-polled from the gateway thread on the feed's
//! connection code (`feeds::net::conn::Conn`: mio, rustls, in-place TLS 1.3): the **WebSocket
//! API** (`/ws-fapi/v1`: `order.place`, `order.cancel`, `order.status`, each signed on its own)
//! and the **user data stream** (`/private/ws?listenKey=…&events=ORDER_TRADE_UPDATE/
//! ACCOUNT_UPDATE/listenKeyExpired`: the `events` allow-list includes the expiry, which would
//! otherwise be silent).
//!
//! The session is *down* until both are open and it has **reconciled**: it asks the REST side
//! for every instrument's open orders and position, queries the status of every order still in
//! flight, and publishes what it learnt as reconciliation events (journaled like every input):
//! one [`EventKind::ReconcileOrder`](engine::EventKind) per order open at the venue, one
//! [`EventKind::ReconcilePosition`](engine::EventKind) per instrument. The engine applies them
//! (missed fills, orders gone, orphans cancelled, a different position adopted with a
//! correction). Once the orphan cancels are answered it publishes
//! [`Command::OrderEntryUp`]; until then the engine quotes nothing
//! ([`Command::OrderEntryDown`], published at start and whenever either link is lost).
//!
//! # Never lose track of an order
//!
//! - A place is written to the socket with a client order id derived from the engine's
//!   deterministic id and this session's tag ([`ClientIds`]): never reused, never re-sent under
//!   a new id. An order without an answer after `ack_timeout`, or answered `-1006` / `-1007`
//!   (status unknown), is queried with `order.status`; the answer becomes a reconciliation
//!   event.
//! - While the WebSocket API is down, places are refused at once (a reject with `-1001`,
//!   disconnected) and cancels wait (bounded) to go out first when it is back.
//! - Reports come twice (the API's answer and the user stream's `ORDER_TRADE_UPDATE`) and in
//!   any order; the engine's order state machine drops duplicates by state and cumulative
//!   quantity.
//! - The position a reconciliation takes carries its venue time (`positionRisk`'s
//!   `updateTime`): a fill done by then is in it, so its report, held during the reconciliation
//!   or simply late, completes the engine's order without moving the engine's position again.
//!   That time is a millisecond, so a fill done in it just after the snapshot looks held too:
//!   each `ACCOUNT_UPDATE` on the user stream (the position right after a fill, sent after that
//!   fill's report) goes to the engine as a *streamed* position, which settles it; one older
//!   than the snapshot is not applied.
//!
//! # Rate limits
//!
//! Every WebSocket API answer carries the venue's counts (`rateLimits`). The session keeps the
//! latest (plus what it sent since) and refuses a place locally (`-1015`, too many orders) that
//! would pass `order_headroom` of a limit; after a `429` it sends nothing but cancels until the
//! venue's `retryAfter` (so a retry loop can never run into a `418`).
//!
//! # The send gate
//!
//! A leader engine of a failover pair holds a lease; once its renewal has not been confirmed
//! within the lease's time to live it must assume a standby has taken over and adopted its
//! orders, and send nothing more ([`crate::gate`]). With a gate
//! ([`SessionOptions::gate`]; none: always open), the session checks it at every poll (with the
//! loop's clock read) and at every intent (with the one clock read the intent needs anyway).
//! While it is closed:
//!
//! - Nothing is written to either WebSocket: no place, cancel or `order.status`, no connect or
//!   reconnect. A place from the engine is refused at once as while the WebSocket API is down
//!   (`-1001`, counted in [`SessionStats::refused_down`]); a cancel waits (bounded) as then.
//! - The REST side is asked nothing: no cancel-all, no reconciliation snapshot. The gateway
//!   thread's heartbeat is marked dead at once and no longer refreshed, so the dead-man switch
//!   (`countdownCancelAll`) is no longer refreshed from here (the new leader refreshes its
//!   own); the REST side also follows the gate itself, dropping a job asked just before it
//!   closed ([`super::worker`], "The send gate"). The listenKey's keepalive goes on (it touches
//!   no order).
//! - The first poll or intent that finds it closed takes the session down as a lost link does
//!   ([`Command::OrderEntryDown`] for every instrument if it was not down, every request in
//!   flight to be asked about later), but without the REST cancel-all a lost link asks for:
//!   both connections are dropped (not closed: a close would still flush what is queued), and
//!   [`SessionStats::gate_closed`] counts it. [`Venue::next_due`] says nothing is owed (the
//!   shutdown drain does not wait for answers that cannot come).
//! - When it opens again (not fenced), the session goes the way of any lost link: connect,
//!   reconcile, [`Command::OrderEntryUp`]. A fenced gate never opens again.
//! - The end ([`Venue::close`]) with the gate closed sends nothing (no cancel, no cancel-all,
//!   no open-orders query, the switch not disarmed, the listenKey not closed: the account's
//!   orders and key are the new leader's); it returns within about a second, and the open
//!   orders at the end are unknown.
//!
//! # Secrets
//!
//! The credentials stay behind [`Signer`]; requests are signed into reusable buffers and never
//! logged. The listenKey goes into the user stream's path only.

use super::cid::{ClientIdOf, ClientIds};
use super::rest::RestError;
use super::sign::Signer;
use super::wire::{
    self, Decoder, OrderSpec, RateLimitKind, RequestWriter, Response, ResponseBody, UserEvent,
};
use super::worker::{wall_ms, Done, Job, Worker};
use crate::{SendGate, Venue};
use engine::{
    Command, Event, ExecKind, ExecReport, Instrument, InstrumentId, Intent, IntentKind, VenueOrder,
    VenuePosition,
};
use feeds::net::conn::{Conn, ConnOptions, Poll};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Binance's code for "disconnected": a place refused because the WebSocket API is down.
pub const CODE_DISCONNECTED: i16 = -1001;
/// Binance's code for "too many requests / orders": refused locally before the venue would.
pub const CODE_TOO_MANY_ORDERS: i16 = -1015;
/// The order does not exist at the venue.
const CODE_NO_SUCH_ORDER: i32 = -2013;
/// A cancel for an order the venue does not know (any more).
const CODE_UNKNOWN_ORDER: i32 = -2011;
/// After a cancel was refused, the next cancel of the same order waits this long (a halted
/// engine re-cancels a working order at every batch: without a pause, a refusal that repeats
/// would become a request storm, then a 429, then a ban).
const RECANCEL_PAUSE: Duration = Duration::from_secs(1);

/// Where the session connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEntryEndpoints {
    /// REST base, `https://host[:port]`.
    pub rest: String,
    /// WebSocket API host and port (path `/ws-fapi/v1`).
    pub api: (String, u16),
    /// User data stream host and port (path `/private/ws`).
    pub user: (String, u16),
}

impl OrderEntryEndpoints {
    /// Binance USDⓈ-M production.
    pub fn binance() -> OrderEntryEndpoints {
        OrderEntryEndpoints {
            rest: "https://fapi.binance.com".into(),
            api: ("ws-fapi.binance.com".into(), 443),
            user: ("fstream.binance.com".into(), 443),
        }
    }

    /// Binance USDⓈ-M testnet.
    pub fn testnet() -> OrderEntryEndpoints {
        OrderEntryEndpoints {
            rest: "https://testnet.binancefuture.com".into(),
            api: ("testnet.binancefuture.com".into(), 443),
            user: ("fstream.binancefuture.com".into(), 443),
        }
    }

    /// Everything on the host and port of one REST base (`https://127.0.0.1:PORT`, as
    /// `ringmaker venue` prints it).
    pub fn from_rest_url(url: &str) -> Result<OrderEntryEndpoints, String> {
        let e =
            feeds::net::routes::Endpoints::from_rest_url(url, engine::VenueFlavour::BinanceUsdm)
                .map_err(|e| e.to_string())?;
        let (h, p) = e.rest_host_port();
        Ok(OrderEntryEndpoints {
            rest: e.rest.clone(),
            api: (h.to_string(), p),
            user: (h.to_string(), p),
        })
    }
}

/// One instrument the session trades (index = the engine's instrument id).
#[derive(Debug, Clone)]
pub struct SessionInstrument {
    /// The venue's symbol (`BTCUSDT`).
    pub symbol: String,
    /// Its grids.
    pub instrument: Instrument,
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// An order without an answer this long is queried (`order.status`).
    pub ack_timeout: Duration,
    /// `recvWindow` of every signed request, ms.
    pub recv_window_ms: u32,
    /// Reconnect back-off: first pause and cap (jittered, doubling).
    pub reconnect_min: Duration,
    /// Cap of the reconnect back-off.
    pub reconnect_max: Duration,
    /// Requests in flight at most; a place beyond is refused locally.
    pub max_in_flight: usize,
    /// Cancels held while the WebSocket API is down, at most.
    pub max_held_cancels: usize,
    /// Share of a venue order limit the session uses at most (0–1).
    pub order_headroom: f64,
    /// Distinguishes this run's client order ids from every other run's (e.g. its start time).
    pub session_tag: u64,
    /// The send gate a failover lease keeps (see the module documentation, "The send gate");
    /// `None`: always open. The session hands it to its REST side too.
    pub gate: Option<Arc<SendGate>>,
    /// Orders a predecessor run placed that this session's engine holds open: a hot standby
    /// that took over its leader's journal starts with the leader's orders (see
    /// [`Inherited`]).
    pub inherited: Option<Inherited>,
}

/// The orders a session inherits from the run before it (a hot standby's takeover): the engine
/// holds them open from the predecessor's journal, under the predecessor's session tag.
///
/// The session writes their ids in the predecessor's form (`ClientIds` of its tag), so cancels
/// reach them, and asks the venue for the status of each in its first reconciliation, as for an
/// order whose answer was lost: the answer (open, filled, or gone: cancelled by the
/// predecessor's dead-man switch, never placed) is a reconciliation event, so the engine ends
/// the ones the venue no longer has instead of cancelling them for ever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherited {
    /// The predecessor's session tag.
    pub session_tag: u64,
    /// `(instrument, engine client order id, side)` of each order the engine holds open.
    pub orders: Vec<(InstrumentId, u64, engine::Side)>,
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            ack_timeout: Duration::from_secs(5),
            recv_window_ms: 5_000,
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(30),
            max_in_flight: 1_024,
            max_held_cancels: 4_096,
            order_headroom: 0.9,
            session_tag: wall_ms() as u64,
            gate: None,
            inherited: None,
        }
    }
}

/// Counters for the run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// `order.place` requests written.
    pub places: u64,
    /// `order.cancel` requests written.
    pub cancels: u64,
    /// `order.status` queries written.
    pub status_queries: u64,
    /// Places the venue accepted (API answers).
    pub accepted: u64,
    /// Places the venue refused (API answers), post-only would-take included.
    pub rejected: u64,
    /// ... of which post-only would-take (`-5022`).
    pub post_only_rejects: u64,
    /// Cancels the venue refused (`-2011` and others).
    pub cancel_rejects: u64,
    /// Fills (user stream `TRADE` reports).
    pub fills: u64,
    /// Positions from the user stream's `ACCOUNT_UPDATE`s passed to the engine.
    pub streamed_positions: u64,
    /// Places refused locally: the WebSocket API was down or unreconciled.
    pub refused_down: u64,
    /// Places refused locally: a rate limit's headroom, a 429 back-off or a full in-flight table.
    pub refused_limits: u64,
    /// WebSocket API answers with a `429` (back-off started).
    pub too_many_requests: u64,
    /// WebSocket API answers with a `418` (banned; never expected: the back-off after a 429
    /// stops everything but cancels).
    pub banned: u64,
    /// REST calls that failed (any reason, the REST side's own retries included).
    pub rest_failures: u64,
    /// REST calls answered 429 or refused during the back-off.
    pub rest_rate_limited: u64,
    /// REST calls answered 418 or refused during the ban.
    pub rest_banned: u64,
    /// Dead-man switch refreshes that succeeded.
    pub countdown_refreshes: u64,
    /// ... and that failed.
    pub countdown_failures: u64,
    /// Connections of the WebSocket API opened (the first included).
    pub api_connects: u64,
    /// Connections of the user data stream opened (the first included).
    pub user_connects: u64,
    /// Links lost (either).
    pub disconnects: u64,
    /// listenKey expiries the stream announced, or keepalives that failed.
    pub key_expiries: u64,
    /// Reconciliations completed.
    pub reconciliations: u64,
    /// Orders reconciled open at the venue.
    pub reconciled_orders: u64,
    /// Messages that did not decode (counted, skipped).
    pub decode_errors: u64,
    /// Answers or reports for ids this session does not know (other sessions' or foreign).
    pub unknown_reports: u64,
    /// `order.status` queries the venue answered with an error (other than "no such order").
    pub status_errors: u64,
    /// The last error code the venue answered any request with (0: none).
    pub last_error_code: i32,
    /// Held cancels dropped because the hold was full (reconciliation settles those orders).
    pub dropped_cancels: u64,
    /// REST cancel-alls sent because the WebSocket API was lost.
    pub rest_cancel_alls: u64,
    /// ... that failed for some symbol (the dead-man switch still runs).
    pub rest_cancel_all_failures: u64,
    /// Open orders per instrument summed, as the venue said after the end (`u64::MAX`: unknown,
    /// as always after an end with the send gate closed).
    pub open_at_end: u64,
    /// Times the session found its send gate closed after it had been open (the lease lapsed or
    /// was fenced): each took it down without a REST cancel-all and stopped every send until
    /// the gate opened again.
    pub gate_closed: u64,
    /// Orders inherited from the predecessor run ([`Inherited`]), each asked about.
    pub inherited_orders: u64,
    /// Jobs the REST side dropped because the send gate was closed when their turn came
    /// (snapshots, cancel-alls, the end's requests).
    pub rest_gated: u64,
}

/// What a request in flight was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    Place,
    Cancel,
    Status,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    req: u64,
    kind: ReqKind,
    instrument: InstrumentId,
    cid: u64,
    side: engine::Side,
    /// When it was written, or last queried.
    at: Instant,
    /// Its answer is unknown (timed out, lost with the link, -1006/-1007): a status query is due.
    unknown: bool,
    /// An orphan's cancel sent during reconciliation (holds `OrderEntryUp` back).
    orphan: bool,
    /// A status query after a cancel the venue did not know the order for (`-2011`): if the
    /// order is open after all, the cancel is reported rejected (and tried again, paced).
    after_cancel_reject: bool,
    /// Status queries sent for it so far: each waits twice as long as the one before
    /// (`ack_timeout` × 2^tries, at most 30 s), so a slow venue is not asked in a storm.
    tries: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Links not both open.
    Down,
    /// Snapshots and status queries under way.
    Reconciling { snapshots_left: usize },
    /// The reconciliation events are published; waiting for the engine to have consumed them
    /// (`mark`: the session's event count after the last of them) and for the orphan cancels it
    /// answers them with (`seen`: consumed, its intents readable).
    Settling { mark: u64, seen: bool },
    /// Quoting may go on.
    Up,
}

/// A venue order limit as last reported, plus what was sent since.
#[derive(Debug, Clone, Copy, Default)]
struct Limit {
    window_ms: i64,
    limit: u32,
    count: u32,
    /// When the count was reported (ms) and orders sent since.
    at_ms: i64,
    since: u32,
}

/// The Binance USDⓈ-M order-entry session (see the module documentation).
pub struct Session<S: Signer> {
    signer: Arc<S>,
    ids: ClientIds,
    instruments: Vec<SessionInstrument>,
    opts: SessionOptions,
    api: Conn,
    user: Conn,
    /// Where the links go, to make them anew when the send gate drops them.
    api_at: (String, u16),
    user_at: (String, u16),
    tls: Arc<rustls::ClientConfig>,
    conn_opts: ConnOptions,
    /// The send gate was found closed (at a poll, an intent or the end) and the session took
    /// itself down for it; true from the start with a gate, until a poll finds it open.
    gate_shut: bool,
    user_key: Option<String>,
    key_asked: bool,
    api_retry: (Instant, Duration),
    user_retry: (Instant, Duration),
    worker: Worker,
    writer: RequestWriter,
    decoder: Decoder,
    /// `(id, instrument)` for the decoders.
    table: Vec<(InstrumentId, Instrument)>,
    cid_buf: Vec<u8>,
    next_req: u64,
    in_flight: Vec<InFlight>,
    held_cancels: VecDeque<Intent>,
    /// Ids of earlier sessions' orders seen in reconciliation, sorted by engine id: (engine id,
    /// the venue's string),
    /// kept for the session (cancels and status queries of them use the venue's string).
    earlier: Vec<(u64, [u8; 36], usize)>,
    phase: Phase,
    /// Reconciliation events gathered until the snapshot is complete.
    staged: Vec<Event>,
    /// User-stream reports that came while the snapshot was under way: published after its
    /// events (a fill of an order the snapshot reports, e.g. one to be adopted, must reach the
    /// engine after the order does, or it is dropped as unknown).
    held_reports: Vec<Event>,
    out_buf: Vec<Event>,
    limits: [Limit; 4],
    backoff_until: Option<Instant>,
    stats: SessionStats,
    jitter: u64,
    closed: bool,
    /// Open orders per instrument the venue reported after the end (`None`: unknown).
    open_at_end: Vec<Option<usize>>,
    /// Events handed to the gateway so far (the gateway publishes them in order).
    emitted: u64,
    /// A REST cancel-all was asked for since the WebSocket API was last lost.
    rest_cancel_asked: bool,
    /// Orders whose cancel was refused, and until when the next cancel waits.
    recancel_after: Vec<(u64, Instant)>,
    /// Cancels waiting for their order's pause to end.
    paced: Vec<(Intent, Instant)>,
    /// The reconciliation round (answers of an earlier one are stale).
    round: u32,
    /// Snapshots to ask for again, and when.
    snapshot_retry: Vec<(InstrumentId, Instant)>,
    /// The pause before asking again for a snapshot that failed (doubles, reset when reconciled).
    snapshot_pause: Duration,
}

impl<S: Signer> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: Signer> Session<S> {
    /// A session for `instruments` (index = instrument id), connecting to `endpoints` with
    /// `tls`; the REST side runs on `worker`. Nothing connects before the first poll.
    pub fn new(
        signer: Arc<S>,
        endpoints: &OrderEntryEndpoints,
        tls: Arc<rustls::ClientConfig>,
        instruments: Vec<SessionInstrument>,
        worker: Worker,
        opts: SessionOptions,
    ) -> Session<S> {
        let conn_opts = ConnOptions {
            // The WebSocket API and the user stream can be quiet for long: the venue pings.
            silence: Duration::from_secs(15 * 60),
            max_message: 1 << 20,
            ..ConnOptions::default()
        };
        let api = Conn::new(
            &endpoints.api.0,
            endpoints.api.1,
            "/ws-fapi/v1",
            Arc::clone(&tls),
            conn_opts.clone(),
        );
        let user = Conn::new(
            &endpoints.user.0,
            endpoints.user.1,
            "/private/ws",
            Arc::clone(&tls),
            conn_opts.clone(),
        );
        if let Some(g) = &opts.gate {
            // Before the first heartbeat: the REST side follows it from its first request.
            worker.set_gate(Arc::clone(g));
        }
        let now = Instant::now();
        let max = opts.max_in_flight.max(1);
        let table = instruments
            .iter()
            .enumerate()
            .map(|(k, i)| (k as InstrumentId, i.instrument))
            .collect();
        let mut s = Session {
            signer,
            ids: ClientIds::new(opts.session_tag),
            instruments,
            api,
            user,
            api_at: endpoints.api.clone(),
            user_at: endpoints.user.clone(),
            tls,
            conn_opts,
            gate_shut: opts.gate.is_some(),
            user_key: None,
            key_asked: false,
            api_retry: (now, opts.reconnect_min),
            user_retry: (now, opts.reconnect_min),
            worker,
            writer: RequestWriter::new(opts.recv_window_ms),
            decoder: Decoder::new(),
            table,
            cid_buf: Vec::with_capacity(64),
            next_req: 1,
            in_flight: Vec::with_capacity(max),
            held_cancels: VecDeque::with_capacity(opts.max_held_cancels),
            earlier: Vec::with_capacity(4096),
            phase: Phase::Down,
            staged: Vec::with_capacity(1024),
            held_reports: Vec::with_capacity(1024),
            out_buf: Vec::with_capacity(256),
            limits: [Limit::default(); 4],
            backoff_until: None,
            stats: SessionStats::default(),
            jitter: opts.session_tag | 1,
            closed: false,
            open_at_end: Vec::new(),
            emitted: 0,
            rest_cancel_asked: false,
            round: 0,
            snapshot_retry: Vec::with_capacity(16),
            recancel_after: Vec::with_capacity(256),
            paced: Vec::with_capacity(256),
            snapshot_pause: Duration::from_millis(500),
            opts,
        };
        if let Some(inh) = s.opts.inherited.take() {
            s.inherit(&inh, now);
        }
        s
    }

    /// Takes over the predecessor's open orders (see [`Inherited`]): their ids in its form,
    /// and a status query for each, due at the first reconciliation. Beyond the room for ids
    /// of earlier sessions or for requests in flight, the rest are left to the venue's
    /// open-orders snapshot (which reports every one still open).
    fn inherit(&mut self, inh: &Inherited, now: Instant) {
        let theirs = ClientIds::new(inh.session_tag);
        let mut buf = Vec::with_capacity(ClientIds::LEN);
        for &(instrument, cid, side) in &inh.orders {
            if (instrument as usize) >= self.instruments.len()
                || self.earlier.len() >= self.earlier.capacity()
                || self.in_flight.len() >= self.in_flight.capacity() / 2
                || self.earlier_of(cid).is_some()
            {
                continue;
            }
            buf.clear();
            theirs.write(cid, &mut buf);
            let mut b = [0u8; 36];
            let n = buf.len().min(36);
            b[..n].copy_from_slice(&buf[..n]);
            let at = self.earlier.partition_point(|e| e.0 < cid);
            self.earlier.insert(at, (cid, b, n));
            self.in_flight.push(InFlight {
                req: self.next_req,
                kind: ReqKind::Status,
                instrument,
                cid,
                side,
                at: now,
                unknown: true,
                orphan: false,
                after_cancel_reject: false,
                tries: 0,
            });
            self.next_req += 1;
            self.stats.inherited_orders += 1;
        }
    }

    /// Whether the session is connected and reconciled.
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// When to try a lost link again after a failure with back-off `b`, and the next back-off
    /// (jittered half-to-all of `b`, doubling up to `reconnect_max`).
    fn next_retry(&mut self, b: Duration) -> (Instant, Duration) {
        let pause = self.jittered(b);
        (Instant::now() + pause, (b * 2).min(self.opts.reconnect_max))
    }

    fn jittered(&mut self, d: Duration) -> Duration {
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        d.mul_f64(0.5 + (self.jitter % 1000) as f64 / 2000.0)
    }

    /// The venue's string for engine id `cid` (into `cid_buf`): an earlier session's for an
    /// order of that session, else this session's.
    fn client_id(&mut self, cid: u64) {
        self.cid_buf.clear();
        // An earlier run's order keeps its string for good: the engine never issues its id
        // again (it reserves every id of its own the venue reports), so there is no clash.
        match self.earlier.binary_search_by_key(&cid, |e| e.0) {
            Ok(k) => {
                let (_, s, n) = &self.earlier[k];
                self.cid_buf.extend_from_slice(&s[..*n]);
            }
            Err(_) => self.ids.write(cid, &mut self.cid_buf),
        }
    }

    /// An earlier session's order by engine id (`earlier` is sorted: a binary search, not a
    /// scan of up to 4,096 entries on every place and cancel after a restart).
    fn earlier_of(&self, cid: u64) -> Option<&(u64, [u8; 36], usize)> {
        self.earlier
            .binary_search_by_key(&cid, |e| e.0)
            .ok()
            .map(|k| &self.earlier[k])
    }

    /// Engine id for a venue client order id string, if it is ours (this or an earlier session).
    fn engine_id(&mut self, s: &[u8], remember: bool) -> Option<u64> {
        match self.ids.parse(s) {
            ClientIdOf::This(c) => Some(c),
            ClientIdOf::Earlier(c) => {
                if remember
                    && self.earlier.len() < self.earlier.capacity()
                    && s.len() <= 36
                    && self.earlier_of(c).is_none()
                {
                    let mut b = [0u8; 36];
                    b[..s.len()].copy_from_slice(s);
                    let at = self.earlier.partition_point(|e| e.0 < c);
                    self.earlier.insert(at, (c, b, s.len()));
                }
                Some(c)
            }
            ClientIdOf::Foreign => None,
        }
    }

    fn emit_all(&mut self, cmd: Command, now_ns: i64) {
        for i in 0..self.instruments.len() {
            self.out_buf
                .push(Event::control(i as InstrumentId, now_ns, cmd));
        }
    }

    /// Whether the send gate allows sending at `now` (no gate: always).
    #[inline]
    fn sendable(&self, now: Instant) -> bool {
        self.opts.gate.as_ref().is_none_or(|g| g.is_open(now))
    }

    /// The send gate is closed (found at a poll, an intent or the end): down as on a lost link, but
    /// without the REST cancel-all, the links dropped, the switch's heartbeat dead. Once per
    /// closing.
    fn shut_by_gate(&mut self, now: Instant, now_ns: i64) {
        if self.gate_shut {
            return;
        }
        self.gate_shut = true;
        self.stats.gate_closed += 1;
        // The dead-man switch is no longer refreshed from here, from now (not after the
        // heartbeat's `alive_within`).
        self.worker.heartbeat_ms.store(0, Ordering::Release);
        // Dropped, not closed: a close frame would flush what is still queued behind it.
        if !self.api.is_closed() {
            self.api = Conn::new(
                &self.api_at.0,
                self.api_at.1,
                "/ws-fapi/v1",
                Arc::clone(&self.tls),
                self.conn_opts.clone(),
            );
        }
        if !self.user.is_closed() {
            self.user = Conn::new(
                &self.user_at.0,
                self.user_at.1,
                "/private/ws",
                Arc::clone(&self.tls),
                self.conn_opts.clone(),
            );
        }
        // Connect at once when the gate opens again.
        self.api_retry = (now, self.opts.reconnect_min);
        self.user_retry = (now, self.opts.reconnect_min);
        self.go_down(now_ns);
    }

    fn link_lost(&mut self, now_ns: i64) {
        self.stats.disconnects += 1;
        // Never with the send gate closed: the orders are another engine's then.
        if !self.api.is_open() && !self.rest_cancel_asked && !self.gate_shut {
            // The WebSocket API is gone: pull the quotes over REST at once rather than wait for
            // the reconnect (the engine's own cancels wait for it and then find them gone).
            self.rest_cancel_asked = self.worker.ask(Job::CancelAll);
            if self.rest_cancel_asked {
                self.stats.rest_cancel_alls += 1;
            }
        }
        self.go_down(now_ns);
    }

    /// Down: the engine told (once), the reconciliation under way dropped, every answer owed
    /// asked about after the reconnect.
    fn go_down(&mut self, now_ns: i64) {
        if self.phase != Phase::Down {
            self.emit_all(Command::OrderEntryDown, now_ns);
        }
        self.phase = Phase::Down;
        self.staged.clear();
        // The reports are the venue's word whatever happened to the snapshot: published now.
        self.out_buf.extend_from_slice(&self.held_reports);
        self.held_reports.clear();
        // Every answer still owed is lost with the link: ask after reconnecting.
        for f in &mut self.in_flight {
            f.unknown = true;
        }
    }

    fn reject(&mut self, i: &Intent, code: i16, now_ns: i64) {
        let kind = match i.kind {
            IntentKind::Place => ExecKind::Rejected,
            IntentKind::Cancel => ExecKind::CancelRejected,
        };
        let r = ExecReport {
            reject_code: code,
            ..ExecReport::new(kind, i.client_order_id, 0, 0, 0)
        };
        self.out_buf.push(Event::exec(i.instrument, 0, now_ns, r));
    }

    fn order_limit_full(&self) -> bool {
        let now = wall_ms();
        self.limits.iter().any(|l| {
            l.limit > 0 && now - l.at_ms < l.window_ms && {
                let used = l.count + l.since + 1;
                used as f64 > l.limit as f64 * self.opts.order_headroom
            }
        })
    }

    /// Writes a cancel or a status query for `f` (the client id in `cid_buf`); false if the
    /// link failed (it is closed; the request stays in flight, its status asked later).
    fn write_request(&mut self, f: InFlight) -> bool {
        let Some(si) = self.instruments.get(f.instrument as usize) else {
            return true;
        };
        let ts = wall_ms();
        let bytes = match f.kind {
            ReqKind::Place => return true,
            ReqKind::Cancel => {
                self.writer
                    .cancel(&*self.signer, f.req, ts, &si.instrument, &self.cid_buf)
            }
            ReqKind::Status => {
                self.writer
                    .status(&*self.signer, f.req, ts, &si.instrument, &self.cid_buf)
            }
        };
        match bytes {
            Ok(b) => self.api.send_text(b).is_ok(),
            // Nothing the writer refuses comes from the engine's own ids and grids; counted.
            Err(_) => {
                self.stats.decode_errors += 1;
                true
            }
        }
    }

    /// A place at `now` (the caller's clock read).
    fn send_place(&mut self, i: &Intent, now_ns: i64, now: Instant) {
        if self.phase != Phase::Up || !self.api.is_open() {
            self.stats.refused_down += 1;
            self.reject(i, CODE_DISCONNECTED, now_ns);
            return;
        }
        let backing_off = self.backoff_until.is_some_and(|t| now < t);
        if backing_off
            || self.in_flight.len() >= self.in_flight.capacity()
            || self.order_limit_full()
        {
            self.stats.refused_limits += 1;
            self.reject(i, CODE_TOO_MANY_ORDERS, now_ns);
            return;
        }
        let Some(si) = self.instruments.get(i.instrument as usize) else {
            self.reject(i, CODE_DISCONNECTED, now_ns);
            return;
        };
        let instrument = si.instrument;
        self.client_id(i.client_order_id);
        let req = self.next_req;
        self.next_req += 1;
        let spec = OrderSpec {
            instrument: &instrument,
            client_id: &self.cid_buf,
            side: i.side,
            tif: i.tif,
            price: i.price,
            qty: i.qty,
        };
        let bytes = match self.writer.place(&*self.signer, req, wall_ms(), &spec) {
            Ok(b) => b,
            Err(_) => {
                // A price or quantity the wire refuses (not positive): refused here.
                self.stats.refused_limits += 1;
                self.reject(i, CODE_TOO_MANY_ORDERS, now_ns);
                return;
            }
        };
        // In flight before it is written: whatever happens to the socket, it is accounted for.
        self.in_flight.push(InFlight {
            req,
            kind: ReqKind::Place,
            instrument: i.instrument,
            cid: i.client_order_id,
            side: i.side,
            at: now,
            unknown: false,
            orphan: false,
            after_cancel_reject: false,
            tries: 0,
        });
        for l in &mut self.limits {
            l.since += 1;
        }
        self.stats.places += 1;
        if let Err(_e) = self.api.send_text(bytes) {
            // Maybe written in part: its status is asked after the reconnect.
            self.link_lost(now_ns);
        }
    }

    /// The next cancel of `cid` waits [`RECANCEL_PAUSE`].
    fn pace_cancels_of(&mut self, cid: u64) {
        let until = Instant::now() + RECANCEL_PAUSE;
        let v = &mut self.recancel_after;
        if let Some(k) = v.iter().position(|(c, _)| *c == cid) {
            v[k].1 = until;
        } else if v.len() < v.capacity() {
            v.push((cid, until));
        } else if let Some(e) = v.iter_mut().min_by_key(|e| e.1) {
            // Full: the pause that ends soonest makes room.
            *e = (cid, until);
        }
    }

    /// Cancels whose pause is over go out.
    fn send_paced_cancels(&mut self, now: Instant, now_ns: i64) {
        self.recancel_after.retain(|e| e.1 > now);
        let mut k = 0;
        while k < self.paced.len() {
            let (i, due) = self.paced[k];
            if due <= now && self.phase != Phase::Down && self.api.is_open() {
                self.paced.swap_remove(k);
                self.send_cancel(&i, now_ns, false, now);
            } else {
                k += 1;
            }
        }
    }

    /// Holds a cancel until the WebSocket API can take it (bounded: beyond, dropped and
    /// counted; reconciliation settles that order).
    fn hold_cancel(&mut self, i: &Intent) {
        if self.held_cancels.len() < self.opts.max_held_cancels {
            self.held_cancels.push_back(*i);
        } else {
            self.stats.dropped_cancels += 1;
        }
    }

    /// A cancel at `now` (the caller's clock read).
    fn send_cancel(&mut self, i: &Intent, now_ns: i64, orphan: bool, now: Instant) {
        if let Some(&(_, until)) = self
            .recancel_after
            .iter()
            .find(|(c, _)| *c == i.client_order_id)
        {
            if until > now {
                if self
                    .paced
                    .iter()
                    .all(|(p, _)| p.client_order_id != i.client_order_id)
                {
                    if self.paced.len() < self.paced.capacity() {
                        self.paced.push((*i, until));
                    } else {
                        self.stats.dropped_cancels += 1;
                    }
                }
                return;
            }
        }
        // Held only while the WebSocket API itself is down (a lost user stream does not stop a
        // cancel from going out).
        if !self.api.is_open() {
            self.hold_cancel(i);
            return;
        }
        if self.in_flight.len() >= self.in_flight.capacity() {
            // Cancels are never refused for budget: hold it for the next poll.
            self.hold_cancel(i);
            return;
        }
        self.client_id(i.client_order_id);
        let f = InFlight {
            req: self.next_req,
            kind: ReqKind::Cancel,
            instrument: i.instrument,
            cid: i.client_order_id,
            side: i.side,
            at: now,
            unknown: false,
            orphan,
            after_cancel_reject: false,
            tries: 0,
        };
        self.next_req += 1;
        self.in_flight.push(f);
        self.stats.cancels += 1;
        if !self.write_request(f) {
            self.link_lost(now_ns);
        }
    }

    fn send_status(&mut self, k: usize, now_ns: i64) {
        let f = self.in_flight[k];
        self.client_id(f.cid);
        let q = InFlight {
            req: self.next_req,
            kind: ReqKind::Status,
            at: Instant::now(),
            unknown: false,
            tries: f.tries.saturating_add(u8::from(f.kind == ReqKind::Status)),
            ..f
        };
        self.next_req += 1;
        // The query replaces the request it asks about.
        self.in_flight[k] = q;
        self.stats.status_queries += 1;
        if !self.write_request(q) {
            self.link_lost(now_ns);
        }
    }

    fn take_in_flight(&mut self, req: u64) -> Option<InFlight> {
        let k = self.in_flight.iter().position(|f| f.req == req)?;
        Some(self.in_flight.swap_remove(k))
    }

    fn on_limits(&mut self, r: &Response) {
        let now = wall_ms();
        let mut k = 0;
        for l in r.rate_limits.as_slice() {
            if l.kind != RateLimitKind::Orders || k == self.limits.len() {
                continue;
            }
            self.limits[k] = Limit {
                window_ms: l.window_ms() as i64,
                limit: l.limit,
                count: l.count,
                at_ms: now,
                since: 0,
            };
            k += 1;
        }
    }

    /// After a 429: nothing but cancels until the fullest reported window has passed (at least
    /// 10 s when the answer names none).
    fn back_off(&mut self, r: &Response) {
        if r.status == 429 {
            self.stats.too_many_requests += 1;
        }
        let window = r
            .rate_limits
            .as_slice()
            .iter()
            .filter(|l| l.limit > 0 && l.count >= l.limit)
            .map(|l| l.window_ms())
            .max()
            .unwrap_or(10_000)
            .max(1_000);
        self.backoff_until = Some(Instant::now() + Duration::from_millis(window));
    }

    fn on_response(&mut self, now_ns: i64) {
        let msg = self.api.message();
        let r = match self.decoder.decode_response(msg, &self.table) {
            Ok(r) => r,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        self.on_limits(&r);
        if r.status == 418 {
            self.stats.banned += 1;
        }
        if r.status == 429 || r.status == 418 {
            self.back_off(&r);
        }
        if let ResponseBody::Error(e) = &r.body {
            self.stats.last_error_code = e.code;
        }
        let f = match r.id.and_then(|id| self.take_in_flight(id)) {
            Some(f) => f,
            None => {
                // A late answer to a query asked again since: still the order's state, taken
                // for the query that replaced it.
                let late = match &r.body {
                    ResponseBody::Order(o) => self.engine_id(o.client_id.as_bytes(), false),
                    _ => None,
                };
                let k = late.and_then(|cid| {
                    self.in_flight
                        .iter()
                        .position(|f| f.kind == ReqKind::Status && f.cid == cid)
                });
                match k {
                    Some(k) => self.in_flight.swap_remove(k),
                    None => {
                        self.stats.unknown_reports += 1;
                        return;
                    }
                }
            }
        };
        match r.body {
            ResponseBody::Error(e) if wire::outcome_unknown(r.status, &e) => {
                // The venue does not know either: ask (never re-send).
                self.in_flight.push(InFlight { unknown: true, ..f });
            }
            ResponseBody::Error(e) => match f.kind {
                ReqKind::Place => {
                    self.stats.rejected += 1;
                    if let Some(rep) = wire::place_rejected(r.status, &e, f.cid) {
                        if rep.post_only_reject {
                            self.stats.post_only_rejects += 1;
                        }
                        self.out_buf.push(Event::exec(f.instrument, 0, now_ns, rep));
                    }
                }
                ReqKind::Cancel => {
                    self.stats.cancel_rejects += 1;
                    if e.code == CODE_UNKNOWN_ORDER {
                        // The venue does not know it (filled, cancelled, expired, or never
                        // there): its status says which; the engine is told that instead of a
                        // reject it would answer with the same cancel.
                        self.in_flight.push(InFlight {
                            unknown: true,
                            after_cancel_reject: true,
                            ..f
                        });
                    } else if let Some(rep) = wire::cancel_rejected(r.status, &e, f.cid) {
                        self.pace_cancels_of(f.cid);
                        self.out_buf.push(Event::exec(f.instrument, 0, now_ns, rep));
                    }
                }
                ReqKind::Status if e.code == CODE_NO_SUCH_ORDER => {
                    // It never reached the venue: gone.
                    let v = VenueOrder {
                        client_order_id: f.cid,
                        venue_order_id: 0,
                        side: f.side,
                        price: 0,
                        qty: 0,
                        cum_qty: 0,
                        open: false,
                    };
                    self.push_reconcile(Event::reconcile_order(f.instrument, 0, now_ns, v));
                }
                // Ask again after the timeout.
                ReqKind::Status => {
                    self.stats.status_errors += 1;
                    self.in_flight.push(InFlight {
                        at: Instant::now(),
                        ..f
                    });
                }
            },
            ResponseBody::Order(o) => {
                let venue_ns = o.update_time_ms.saturating_mul(1_000_000);
                match f.kind {
                    ReqKind::Place => {
                        self.stats.accepted += 1;
                        let rep = ExecReport {
                            venue_order_id: o.order_id,
                            ..ExecReport::new(ExecKind::Ack, f.cid, 0, 0, 0)
                        };
                        self.out_buf
                            .push(Event::exec(f.instrument, venue_ns, now_ns, rep));
                    }
                    ReqKind::Cancel => {
                        let rep = ExecReport {
                            venue_order_id: o.order_id,
                            ..ExecReport::new(ExecKind::Canceled, f.cid, 0, 0, o.executed_qty)
                        };
                        self.out_buf
                            .push(Event::exec(f.instrument, venue_ns, now_ns, rep));
                    }
                    ReqKind::Status => {
                        let open = o.status.is_open();
                        let v = VenueOrder {
                            client_order_id: f.cid,
                            venue_order_id: o.order_id,
                            side: o.side,
                            price: o.price,
                            qty: o.orig_qty,
                            cum_qty: o.executed_qty,
                            open,
                        };
                        self.push_reconcile(Event::reconcile_order(
                            f.instrument,
                            venue_ns,
                            now_ns,
                            v,
                        ));
                        if open && f.after_cancel_reject {
                            // Working after all: the cancel was refused; it may be tried again.
                            self.pace_cancels_of(f.cid);
                            let rep = ExecReport {
                                reject_code: CODE_UNKNOWN_ORDER as i16,
                                venue_order_id: o.order_id,
                                ..ExecReport::new(ExecKind::CancelRejected, f.cid, 0, 0, 0)
                            };
                            self.out_buf
                                .push(Event::exec(f.instrument, venue_ns, now_ns, rep));
                        }
                    }
                }
            }
            // An answer that says nothing about the order: its status is asked.
            ResponseBody::ListenKey(_) | ResponseBody::Other | ResponseBody::Invalid(_) => {
                self.stats.decode_errors += 1;
                self.in_flight.push(InFlight { unknown: true, ..f });
            }
        }
    }

    fn push_reconcile(&mut self, ev: Event) {
        match self.phase {
            // Gathered with the snapshot, published together.
            Phase::Reconciling { .. } => self.staged.push(ev),
            // Settling: a late status answer goes straight to the engine.
            _ => self.out_buf.push(ev),
        }
    }

    /// A report from the user stream, to the engine. While the snapshot is under way, held
    /// until after it: a fill of an order the snapshot reports (an earlier run's, to be
    /// adopted) must reach the engine after the order does, or it is dropped as unknown; and a
    /// streamed position must come after the snapshot it is checked against.
    fn push_report(&mut self, ev: Event) {
        match self.phase {
            Phase::Reconciling { .. } => self.held_reports.push(ev),
            _ => self.out_buf.push(ev),
        }
    }

    fn on_user(&mut self, now_ns: i64) {
        let msg = self.user.message();
        let ev = match self.decoder.decode_user(msg, &self.table) {
            Ok(e) => e,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        match ev {
            UserEvent::Order(u) => {
                let Some(cid) = self.engine_id(u.client_id.as_bytes(), false) else {
                    self.stats.unknown_reports += 1;
                    return;
                };
                if let Some(rep) = wire::exec_report(&u, cid) {
                    if matches!(rep.kind, ExecKind::PartialFill | ExecKind::Fill) {
                        self.stats.fills += 1;
                    }
                    let venue_ns = u.transaction_time_ms.saturating_mul(1_000_000);
                    self.push_report(Event::exec(u.instrument, venue_ns, now_ns, rep));
                }
            }
            // The position right after a fill, in the stream's order (after that fill's
            // report): it settles a fill the last snapshot's millisecond made ambiguous.
            UserEvent::Account(a) => {
                let venue_ns = a.transaction_time_ms.max(0).saturating_mul(1_000_000);
                for p in a.positions() {
                    if p.side != wire::PositionSide::Both {
                        // Hedge mode's long or short leg: not a position this engine keeps.
                        self.stats.unknown_reports += 1;
                        continue;
                    }
                    let v = VenuePosition {
                        qty: p.qty,
                        entry_price: p.entry_price,
                        streamed: true,
                    };
                    self.stats.streamed_positions += 1;
                    self.push_report(Event::reconcile_position(p.instrument, venue_ns, now_ns, v));
                }
            }
            UserEvent::ListenKeyExpired { .. } => {
                self.stats.key_expiries += 1;
                self.user_key = None;
                self.user.close(feeds::net::conn::ConnError::Closed(None));
                self.link_lost(now_ns);
            }
            _ => {}
        }
    }

    fn on_snapshot(
        &mut self,
        i: InstrumentId,
        orders: Vec<super::rest::OpenOrder>,
        pos: Option<super::rest::PositionRisk>,
        now_ns: i64,
    ) {
        let Some(si) = self.instruments.get(i as usize).cloned() else {
            return;
        };
        let inst = &si.instrument;
        for o in &orders {
            let cid = self
                .engine_id(o.client_order_id.as_bytes(), true)
                // Foreign: an id the engine never has for this instrument.
                .unwrap_or(u64::MAX);
            let (Ok(price), Ok(qty), Ok(cum)) = (
                inst.price_to_ticks(o.price.as_bytes()),
                inst.qty_to_lots(o.orig_qty.as_bytes()),
                inst.qty_to_lots(o.executed_qty.as_bytes()),
            ) else {
                self.stats.decode_errors += 1;
                continue;
            };
            let v = VenueOrder {
                client_order_id: cid,
                venue_order_id: o.order_id,
                side: o.side,
                price,
                qty,
                cum_qty: cum,
                open: true,
            };
            self.stats.reconciled_orders += 1;
            self.staged.push(Event::reconcile_order(
                i,
                o.update_time_ms * 1_000_000,
                now_ns,
                v,
            ));
        }
        // The venue time of the position (its last change): fills done by then are in it.
        let as_of_ns = pos
            .as_ref()
            .map_or(0, |p| p.update_time_ms.max(0).saturating_mul(1_000_000));
        let p = match pos {
            None => Some(VenuePosition {
                qty: 0,
                entry_price: 0,
                streamed: false,
            }),
            Some(p) => match signed_lots(inst, &p.position_amt) {
                Some(0) => Some(VenuePosition {
                    qty: 0,
                    entry_price: 0,
                    streamed: false,
                }),
                // The entry price is an average: off the grid, to the nearest tick.
                Some(q) => wire::ticks_nearest(inst, &p.entry_price)
                    .ok()
                    .map(|px| VenuePosition {
                        qty: q,
                        entry_price: px,
                        streamed: false,
                    }),
                None => None,
            },
        };
        match p {
            Some(p) => self
                .staged
                .push(Event::reconcile_position(i, as_of_ns, now_ns, p)),
            None => self.stats.decode_errors += 1,
        }
    }

    fn pump_worker(&mut self, now_ns: i64) {
        while let Some(d) = self.worker.poll() {
            match d {
                Done::ListenKey(Ok(k)) => {
                    self.key_asked = false;
                    self.user_key = Some(k);
                }
                Done::ListenKey(Err(_)) => {
                    self.key_asked = false;
                    self.user_retry = self.next_retry(self.user_retry.1);
                }
                Done::KeyLost(_) => {
                    self.stats.key_expiries += 1;
                    self.user_key = None;
                    if self.user.is_open() {
                        self.user.close(feeds::net::conn::ConnError::Closed(None));
                        self.link_lost(now_ns);
                    }
                }
                // An answer for an earlier round (before the link was lost again) is stale.
                Done::Snapshot(_, round, _) if round != self.round => {}
                Done::Snapshot(i, _, Ok((orders, pos))) => {
                    if let Phase::Reconciling { snapshots_left } = self.phase {
                        self.on_snapshot(i, orders, pos, now_ns);
                        self.phase = Phase::Reconciling {
                            snapshots_left: snapshots_left.saturating_sub(1),
                        };
                    }
                }
                Done::Snapshot(i, _, Err(e)) => {
                    // Asked again later: after a 429 or a ban when it ends, else after a pause
                    // that doubles (never in a loop: every failed call is a request spent).
                    if matches!(self.phase, Phase::Reconciling { .. }) {
                        let wait = match e {
                            RestError::RateLimited { retry_after }
                            | RestError::Banned { retry_after } => retry_after,
                            _ => self.snapshot_pause,
                        };
                        self.snapshot_pause =
                            (self.snapshot_pause * 2).min(self.opts.reconnect_max);
                        self.snapshot_retry.push((i, Instant::now() + wait));
                    }
                }
                Done::CancelledAll(ok) => {
                    if !ok {
                        self.stats.rest_cancel_all_failures += 1;
                    }
                }
                Done::Shutdown(_) => {}
            }
        }
    }

    fn manage_links(&mut self, now: Instant, now_ns: i64) {
        // The WebSocket API.
        if self.api.is_closed() && now >= self.api_retry.0 && self.api.open().is_err() {
            self.api_retry = self.next_retry(self.api_retry.1);
        }
        // The user stream: a key first.
        if self.user.is_closed() && now >= self.user_retry.0 {
            match &self.user_key {
                None if !self.key_asked => {
                    self.key_asked = self.worker.ask(Job::ListenKey);
                }
                None => {}
                Some(k) => {
                    let path = format!(
                        "/private/ws?listenKey={k}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/listenKeyExpired"
                    );
                    self.user.set_path(&path);
                    if self.user.open().is_err() {
                        self.user_retry = self.next_retry(self.user_retry.1);
                    }
                }
            }
        }
        // Snapshots that failed, once their pause is over.
        if matches!(self.phase, Phase::Reconciling { .. }) {
            let mut k = 0;
            while k < self.snapshot_retry.len() {
                let (i, at) = self.snapshot_retry[k];
                if now >= at && self.worker.ask(Job::Snapshot(i, self.round)) {
                    self.snapshot_retry.swap_remove(k);
                } else {
                    k += 1;
                }
            }
        } else {
            self.snapshot_retry.clear();
        }
        // Both open: reconcile.
        if self.phase == Phase::Down && self.api.is_open() && self.user.is_open() {
            self.staged.clear();
            self.round = self.round.wrapping_add(1);
            let n = self.instruments.len();
            let mut asked = 0;
            for i in 0..n {
                if self
                    .worker
                    .ask(Job::Snapshot(i as InstrumentId, self.round))
                {
                    asked += 1;
                }
            }
            if asked == n {
                self.phase = Phase::Reconciling { snapshots_left: n };
                // Held cancels first, then the status of everything whose answer was lost.
                while let Some(c) = self.held_cancels.pop_front() {
                    if self.in_flight.len() >= self.in_flight.capacity() {
                        self.held_cancels.push_front(c);
                        break;
                    }
                    self.send_cancel(&c, now_ns, false, now);
                }
            }
        }
    }

    fn check_timeouts(&mut self, now: Instant, now_ns: i64) {
        if !self.api.is_open() || self.phase == Phase::Down {
            return;
        }
        let mut k = 0;
        while k < self.in_flight.len() {
            let f = self.in_flight[k];
            let wait = if f.kind == ReqKind::Status {
                (self.opts.ack_timeout * (1u32 << f.tries.min(6))).min(Duration::from_secs(30))
            } else {
                self.opts.ack_timeout
            };
            if f.unknown || now.duration_since(f.at) >= wait {
                self.send_status(k, now_ns);
                if !self.api.is_open() {
                    return;
                }
            }
            k += 1;
        }
    }

    fn maybe_up(&mut self, now_ns: i64) {
        // Status answers still owed hold the snapshot back; orphan cancels hold quoting back.
        let owed = |orphans: bool| {
            self.in_flight
                .iter()
                .any(|f| f.kind == ReqKind::Status || f.unknown || (orphans && f.orphan))
        };
        match self.phase {
            Phase::Reconciling { snapshots_left: 0 } if !owed(false) => {
                self.out_buf.extend_from_slice(&self.staged);
                self.staged.clear();
                self.out_buf.extend_from_slice(&self.held_reports);
                self.held_reports.clear();
                self.phase = Phase::Settling {
                    mark: self.emitted + self.out_buf.len() as u64,
                    seen: false,
                };
            }
            Phase::Settling { seen: true, .. } if !owed(true) => {
                self.snapshot_pause = Duration::from_millis(500);
                self.emit_all(Command::OrderEntryUp, now_ns);
                self.phase = Phase::Up;
                self.stats.reconciliations += 1;
            }
            _ => {}
        }
    }

    fn poll_links(&mut self, now: Instant, now_ns: i64) {
        for _ in 0..64 {
            match self.api.poll(now) {
                Poll::Pending => break,
                Poll::Opened => {
                    self.stats.api_connects += 1;
                    self.rest_cancel_asked = false;
                    self.api_retry.1 = self.opts.reconnect_min;
                }
                Poll::Message(_) => self.on_response(now_ns),
                Poll::Ended => {
                    self.api_retry = self.next_retry(self.api_retry.1);
                    self.link_lost(now_ns);
                    break;
                }
            }
        }
        for _ in 0..64 {
            match self.user.poll(now) {
                Poll::Pending => break,
                Poll::Opened => {
                    self.stats.user_connects += 1;
                    self.user_retry.1 = self.opts.reconnect_min;
                }
                Poll::Message(_) => self.on_user(now_ns),
                Poll::Ended => {
                    self.user_retry = self.next_retry(self.user_retry.1);
                    self.link_lost(now_ns);
                    break;
                }
            }
        }
    }
}

/// A signed decimal quantity in lots (`-0.012` → -12 on a 0.001 grid).
fn signed_lots(inst: &Instrument, s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(abs) => inst.qty_to_lots(abs.as_bytes()).ok().map(|q| -q),
        None => inst.qty_to_lots(s.as_bytes()).ok(),
    }
}

impl<S: Signer> Venue for Session<S> {
    type Stats = SessionStats;

    fn send(&mut self, intent: &Intent, now_ns: i64) {
        // One clock read for the send gate, the back-offs and the in-flight stamp.
        let now = Instant::now();
        if !self.sendable(now) {
            // Down now (not at the next poll: the gate may have opened again by then, and a
            // held cancel goes out only after a reconnect), then as while the WebSocket API is
            // down.
            self.shut_by_gate(now, now_ns);
            match intent.kind {
                IntentKind::Place => {
                    self.stats.refused_down += 1;
                    self.reject(intent, CODE_DISCONNECTED, now_ns);
                }
                IntentKind::Cancel => self.hold_cancel(intent),
            }
            return;
        }
        match intent.kind {
            IntentKind::Place => self.send_place(intent, now_ns, now),
            IntentKind::Cancel => {
                // An orphan's cancel during reconciliation holds quoting back until answered.
                let orphan = matches!(
                    self.phase,
                    Phase::Reconciling { .. } | Phase::Settling { .. }
                ) || self.earlier_of(intent.client_order_id).is_some();
                self.send_cancel(intent, now_ns, orphan, now)
            }
        }
    }

    fn poll(&mut self, now_ns: i64, out: &mut impl FnMut(&Event)) {
        // One clock read for the send gate and the loop's timeouts and back-offs (millisecond
        // matters).
        let now = Instant::now();
        let open = self.sendable(now);
        if open {
            self.gate_shut = false;
            self.worker.heartbeat_ms.store(wall_ms(), Ordering::Release);
        }
        if self.closed {
            return;
        }
        if open {
            self.pump_worker(now_ns);
            self.poll_links(now, now_ns);
            self.manage_links(now, now_ns);
            self.check_timeouts(now, now_ns);
            self.send_paced_cancels(now, now_ns);
            self.maybe_up(now_ns);
        } else {
            // Down (once), links dropped; nothing sent. The REST side's answers are still
            // taken (its channel is bounded), and find the session down.
            self.shut_by_gate(now, now_ns);
            self.pump_worker(now_ns);
        }
        for ev in &self.out_buf {
            out(ev);
        }
        self.emitted += self.out_buf.len() as u64;
        self.out_buf.clear();
    }

    fn on_consumed(&mut self, reports: u64) {
        if let Phase::Settling { mark, seen: false } = self.phase {
            if reports >= mark {
                self.phase = Phase::Settling { mark, seen: true };
            }
        }
    }

    fn follows_market(&self) -> bool {
        false
    }

    fn starts_down(&self) -> bool {
        true
    }

    fn next_due(&self) -> Option<i64> {
        // Live: something is owed while requests are in flight or cancels are held, unless the
        // send gate is closed (nothing owed can come before it opens).
        (!self.gate_shut && (!self.in_flight.is_empty() || !self.held_cancels.is_empty()))
            .then_some(0)
    }

    fn open_orders(&self, instrument: InstrumentId) -> usize {
        // What the venue said after the end (`close`); unknown counts as one.
        self.open_at_end
            .get(instrument as usize)
            .map_or(0, |n| n.unwrap_or(1))
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let now = Instant::now();
        if !self.sendable(now) {
            // The send gate is closed: nothing is sent (the REST side follows the gate too, and
            // ends without a request), the orders left are unknown. A REST call already under
            // way is not waited for long.
            self.shut_by_gate(now, 0);
            let _ = self.worker.ask(Job::Shutdown { cancel_all: false });
            let _ = self.worker.finish(Duration::from_secs(1));
            self.open_at_end = vec![None; self.instruments.len()];
            self.stats.open_at_end = u64::MAX;
            return;
        }
        let _ = self.worker.ask(Job::Shutdown { cancel_all: true });
        let left = self.worker.finish(Duration::from_secs(15));
        self.open_at_end = left.unwrap_or_else(|| vec![None; self.instruments.len()]);
        self.stats.open_at_end = if self.open_at_end.iter().all(|x| x.is_some()) {
            self.open_at_end.iter().map(|x| x.unwrap_or(0) as u64).sum()
        } else {
            u64::MAX
        };
        self.api.close(feeds::net::conn::ConnError::Closed(None));
        self.user.close(feeds::net::conn::ConnError::Closed(None));
    }

    fn link_counts(&self) -> Option<crate::venue::LinkCounts> {
        let c = &self.worker.counters;
        Some(crate::venue::LinkCounts {
            order_entry_connects: self.stats.api_connects,
            user_stream_connects: self.stats.user_connects,
            rate_limited: self.stats.too_many_requests
                + self.stats.banned
                + c.rate_limited.load(Ordering::Relaxed)
                + c.banned.load(Ordering::Relaxed),
        })
    }

    fn stats(&self) -> SessionStats {
        let c = &self.worker.counters;
        SessionStats {
            rest_failures: c.failures.load(Ordering::Relaxed),
            rest_rate_limited: c.rate_limited.load(Ordering::Relaxed),
            rest_banned: c.banned.load(Ordering::Relaxed),
            countdown_refreshes: c.countdown_refreshes.load(Ordering::Relaxed),
            countdown_failures: c.countdown_failures.load(Ordering::Relaxed),
            rest_gated: c.gated_jobs.load(Ordering::Relaxed),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Instrument {
        Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap()
    }

    #[test]
    fn endpoints_follow_one_rest_base_or_binances_hosts() {
        let e = OrderEntryEndpoints::from_rest_url("https://127.0.0.1:8443").unwrap();
        assert_eq!(e.rest, "https://127.0.0.1:8443");
        assert_eq!(e.api, ("127.0.0.1".to_string(), 8443));
        assert_eq!(e.user, e.api);
        assert!(OrderEntryEndpoints::from_rest_url("http://127.0.0.1:8443").is_err());
        assert!(OrderEntryEndpoints::from_rest_url("https://h/path").is_err());
        let p = OrderEntryEndpoints::binance();
        assert_eq!(p.api.0, "ws-fapi.binance.com");
        assert_eq!(p.user.0, "fstream.binance.com");
        let t = OrderEntryEndpoints::testnet();
        assert!(t.rest.contains("testnet") && t.api.0.contains("testnet"));
    }

    #[test]
    fn venue_position_amounts_become_signed_lots_or_nothing() {
        let i = btc();
        assert_eq!(signed_lots(&i, "0.032"), Some(32));
        assert_eq!(signed_lots(&i, "-0.012"), Some(-12));
        assert_eq!(signed_lots(&i, "0.000"), Some(0));
        assert_eq!(signed_lots(&i, "0"), Some(0));
        // Off the lot grid, not a number, empty: refused, never guessed.
        assert_eq!(signed_lots(&i, "0.0005"), None);
        assert_eq!(signed_lots(&i, "abc"), None);
        assert_eq!(signed_lots(&i, ""), None);
        assert_eq!(signed_lots(&i, "--1"), None);
    }

    #[test]
    fn default_options_are_sane() {
        let o = SessionOptions::default();
        assert!(o.ack_timeout >= Duration::from_millis(100));
        assert!(o.order_headroom > 0.0 && o.order_headroom <= 1.0);
        assert!(o.reconnect_min < o.reconnect_max);
        assert!(o.session_tag > 0, "a tag from the clock");
    }
}

/// The send gate against the local exchange (the core of `ringmaker venue`, in process), with
/// every request it is handed written down: what the session sends, and what it does not.
#[cfg(test)]
mod gate_tests {
    use super::*;
    use crate::binance::rest::{RestClient, RestOptions};
    use crate::binance::sign::{Credentials, Secret};
    use crate::binance::worker::WorkerOptions;
    use engine::{EventKind, Side, TimeInForce};
    use std::path::Path;
    use std::sync::Mutex;
    use venue::api::{Exchange, Request, Response as HttpResponse, UserStream};
    use venue::exchange::SimExchange;
    use venue::server::{ServerConfig, VenueHandle};

    /// The venue's HMAC test account (Binance's documented example key pair).
    const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
    const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
    const COUNTDOWN: &str = "POST /fapi/v1/countdownCancelAll";
    const KEEPALIVE: &str = "PUT /fapi/v1/listenKey";

    /// The exchange core, writing down each request it is handed: `METHOD /path` for REST,
    /// `ws METHOD` for the WebSocket API.
    struct Recording {
        inner: SimExchange,
        log: Mutex<Vec<String>>,
    }

    impl Exchange for Recording {
        fn rest(&self, req: &Request, now_ms: i64) -> Option<HttpResponse> {
            let line = format!("{} {}", req.method, req.path);
            self.log.lock().unwrap().push(line);
            self.inner.rest(req, now_ms)
        }

        fn ws_api(&self, conn: u64, peer: &str, text: &str, now_ms: i64) -> String {
            let method = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("method")?.as_str().map(str::to_string))
                .unwrap_or_default();
            self.log.lock().unwrap().push(format!("ws {method}"));
            self.inner.ws_api(conn, peer, text, now_ms)
        }

        fn user_stream(&self, key: &str, events: Option<&str>, now_ms: i64) -> Option<UserStream> {
            self.inner.user_stream(key, events, now_ms)
        }

        fn on_market(&self, events: &[Event], now_ms: i64) {
            self.inner.on_market(events, now_ms)
        }

        fn on_time(&self, now_ms: i64) {
            self.inner.on_time(now_ms)
        }

        fn charge_ip(
            &self,
            peer: &str,
            weight: u32,
            now_ms: i64,
        ) -> Option<venue::limits::Charged> {
            self.inner.charge_ip(peer, weight, now_ms)
        }

        fn expire_listen_keys(&self, now_ms: i64) -> usize {
            self.inner.expire_listen_keys(now_ms)
        }
    }

    struct Harness {
        venue: Option<VenueHandle>,
        ex: Arc<Recording>,
        session: Session<Credentials>,
        gate: Arc<SendGate>,
        symbol: String,
        seen: Vec<Event>,
        _dir: test_support::TempDir,
    }

    fn rest_client(h: &VenueHandle) -> RestClient {
        let creds = Arc::new(Credentials::hmac(KEY, &Secret::new(SECRET)).unwrap());
        RestClient::new(
            &h.rest_url(),
            Some(h.cert_path()),
            creds as _,
            RestOptions::default(),
        )
        .unwrap()
    }

    /// The in-process venue (its clock standing still: nothing trades, nothing expires) in front
    /// of a recording of every request, with the test accounts, in a directory of its own.
    fn recorded_venue(
        name: &str,
    ) -> (
        test_support::TempDir,
        engine::Config,
        Arc<Recording>,
        VenueHandle,
    ) {
        let dir = test_support::TempDir::new(name);
        let cfg = test_support::default_config();
        let mut sc = ServerConfig::new(vec![test_support::usdm()], cfg.clone());
        sc.manual_clock = true;
        sc.cert_dir = dir.join("cert");
        let accounts = venue::auth::Accounts::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/venue-accounts.toml"),
        )
        .unwrap();
        let ex = Arc::new(Recording {
            inner: SimExchange::new(cfg.clone(), accounts).accept_wall_clock_timestamps(),
            log: Mutex::new(Vec::new()),
        });
        let h = venue::server::Venue::start(sc, Arc::clone(&ex) as _).expect("venue starts");
        (dir, cfg, ex, h)
    }

    impl Harness {
        /// A venue (its clock standing still: nothing trades, nothing expires) and a session
        /// on it behind a gate that is `open` for a minute (or closed), with the dead-man switch
        /// refreshed every 100 ms.
        fn start(name: &str, open: bool) -> Harness {
            let (dir, cfg, ex, h) = recorded_venue(name);
            let inst = cfg.instruments[0].instrument;
            let symbol = inst.symbol.as_str().to_string();
            let worker = Worker::spawn(
                rest_client(&h),
                vec![symbol.clone()],
                WorkerOptions {
                    countdown: Some(Duration::from_secs(60)),
                    countdown_every: Duration::from_millis(100),
                    keepalive_every: Duration::from_secs(1_800),
                    alive_within: Duration::from_secs(5),
                },
            )
            .unwrap();
            let gate = Arc::new(SendGate::closed());
            if open {
                gate.open_until(Instant::now() + Duration::from_secs(60));
            }
            let creds = Arc::new(Credentials::hmac(KEY, &Secret::new(SECRET)).unwrap());
            let session = Session::new(
                creds,
                &OrderEntryEndpoints::from_rest_url(&h.rest_url()).unwrap(),
                feeds::net::tls::client_config(Some(h.cert_path())).unwrap(),
                vec![SessionInstrument {
                    symbol: symbol.clone(),
                    instrument: inst,
                }],
                worker,
                SessionOptions {
                    gate: Some(Arc::clone(&gate)),
                    ..SessionOptions::default()
                },
            );
            Harness {
                venue: Some(h),
                ex,
                session,
                gate,
                symbol,
                seen: Vec::new(),
                _dir: dir,
            }
        }

        /// One poll; its events kept in `seen`, the engine's consumption told as it would be.
        fn poll(&mut self) {
            let seen = &mut self.seen;
            self.session.poll(0, &mut |e| seen.push(*e));
            self.session.on_consumed(u64::MAX);
        }

        /// Polls for `d`.
        fn poll_for(&mut self, d: Duration) {
            let end = Instant::now() + d;
            while Instant::now() < end {
                self.poll();
                std::thread::sleep(Duration::from_micros(200));
            }
        }

        /// Polls until `f` holds (at most 15 s).
        fn poll_until(&mut self, what: &str, f: impl Fn(&Harness) -> bool) {
            let end = Instant::now() + Duration::from_secs(15);
            while !f(self) {
                assert!(Instant::now() < end, "never {what}: {:?}", self.session);
                self.poll();
                std::thread::sleep(Duration::from_micros(200));
            }
        }

        fn up(&mut self) {
            self.poll_until("up", |h| h.session.is_up());
        }

        /// The requests the exchange was handed, from the `from`th.
        fn requests(&self, from: usize) -> Vec<String> {
            self.ex.log.lock().unwrap()[from..].to_vec()
        }

        fn mark(&self) -> usize {
            self.ex.log.lock().unwrap().len()
        }

        fn report(&self, cid: u64, kind: ExecKind) -> Option<ExecReport> {
            self.seen
                .iter()
                .filter_map(|e| e.as_exec())
                .find(|r| r.client_order_id == cid && r.kind == kind)
        }

        fn controls(&self, cmd: Command) -> usize {
            self.seen
                .iter()
                .filter(|e| e.kind() == EventKind::Control && e.as_control() == Some(cmd))
                .count()
        }

        /// A post-only bid far under the market (it rests), acknowledged.
        fn place_resting(&mut self, cid: u64) {
            let place = Intent::place(0, Side::Bid, TimeInForce::PostOnly, cid, 500_000, 3, 0, 1);
            self.session.send(&place, 0);
            self.poll_until("acknowledged", |h| h.report(cid, ExecKind::Ack).is_some());
        }

        /// The venue's open orders now (asked on a REST client of the test's own).
        fn open_at_venue(&self) -> usize {
            let rest = rest_client(self.venue.as_ref().unwrap());
            rest.open_orders(&self.symbol).unwrap().len()
        }

        fn shutdown(mut self) {
            self.venue.take().unwrap().shutdown();
        }
    }

    /// What was sent since a mark besides the listenKey's keepalive and at most one dead-man
    /// switch refresh per symbol (one may have been under way on the REST thread when the gate
    /// closed): nothing, if the gate held.
    fn sent_past_the_gate(reqs: &[String]) -> Vec<String> {
        let mut countdowns = 0;
        reqs.iter()
            .filter(|r| {
                if r.as_str() == COUNTDOWN {
                    countdowns += 1;
                    return countdowns > 1;
                }
                r.as_str() != KEEPALIVE
            })
            .cloned()
            .collect()
    }

    #[test]
    fn a_gate_that_closes_while_up_stops_every_send_and_reopening_reconciles_again() {
        let mut h = Harness::start("gate-closes", true);
        h.up();
        h.poll_until("the switch armed", |h| {
            h.session.stats().countdown_refreshes > 0
        });
        let a = (1u64 << 40) | 1;
        h.place_resting(a);

        // The lease lapses.
        h.gate.open_until(Instant::now());
        let mark = h.mark();
        h.seen.clear();
        let b = (1u64 << 40) | 2;
        h.session.send(
            &Intent::place(0, Side::Bid, TimeInForce::PostOnly, b, 500_000, 3, 0, 2),
            0,
        );
        h.session
            .send(&Intent::cancel(0, Side::Bid, a, false, 0, 3), 0);
        h.poll_for(Duration::from_millis(300));
        let refreshes = h.session.stats().countdown_refreshes;
        h.poll_for(Duration::from_millis(500));

        assert_eq!(h.controls(Command::OrderEntryDown), 1, "down once");
        assert!(!h.session.is_up());
        let r = h.report(b, ExecKind::Rejected).expect("the place refused");
        assert_eq!(r.reject_code, CODE_DISCONNECTED);
        assert!(
            h.report(a, ExecKind::Canceled).is_none(),
            "the cancel is held"
        );
        assert_eq!(h.session.next_due(), None, "nothing owed while shut");
        let reqs = h.requests(mark);
        assert_eq!(sent_past_the_gate(&reqs), Vec::<String>::new(), "{reqs:?}");
        let st = h.session.stats();
        assert_eq!(
            st.countdown_refreshes, refreshes,
            "the switch is left alone"
        );
        assert_eq!(st.gate_closed, 1);
        assert_eq!(st.rest_cancel_alls, 0);
        assert_eq!(st.refused_down, 1);
        assert_eq!((st.api_connects, st.user_connects), (1, 1));
        assert_eq!(h.open_at_venue(), 1, "the order is left to the new leader");

        // The renewal is confirmed late: connect, reconcile, up; the held cancel goes out.
        let mark = h.mark();
        h.seen.clear();
        h.gate.open_until(Instant::now() + Duration::from_secs(60));
        h.up();
        assert_eq!(h.controls(Command::OrderEntryUp), 1);
        h.poll_until("the held cancel answered", |h| {
            h.report(a, ExecKind::Canceled).is_some()
        });
        h.poll_until("the switch refreshed again", |h| {
            h.session.stats().countdown_refreshes > refreshes
        });
        let reqs = h.requests(mark);
        assert!(
            reqs.iter().any(|r| r == "GET /fapi/v1/openOrders"),
            "{reqs:?}"
        );
        assert!(reqs.iter().any(|r| r == "ws order.cancel"), "{reqs:?}");
        let st = h.session.stats();
        assert_eq!(st.reconciliations, 2);
        assert_eq!((st.api_connects, st.user_connects), (2, 2));
        assert_eq!(st.gate_closed, 1);

        // An end with the gate open is the usual one: everything asked about and cancelled.
        h.session.close();
        let st = h.session.stats();
        assert_eq!(st.open_at_end, 0);
        assert_eq!(h.session.open_orders(0), 0);
        h.shutdown();
    }

    #[test]
    fn a_lapse_only_a_send_saw_still_takes_the_session_down_and_its_cancel_goes_out_later() {
        let mut h = Harness::start("gate-flicker", true);
        h.up();
        let a = (1u64 << 40) | 1;
        h.place_resting(a);
        h.seen.clear();
        // Closed for one cancel only: renewed before the next poll.
        h.gate.open_until(Instant::now());
        let mark = h.mark();
        h.session
            .send(&Intent::cancel(0, Side::Bid, a, false, 0, 2), 0);
        assert!(!h.session.is_up(), "down at the send");
        assert_eq!(h.requests(mark), Vec::<String>::new());
        h.gate.open_until(Instant::now() + Duration::from_secs(60));
        h.up();
        h.poll_until("the held cancel answered", |h| {
            h.report(a, ExecKind::Canceled).is_some()
        });
        assert_eq!(h.controls(Command::OrderEntryDown), 1);
        assert_eq!(h.controls(Command::OrderEntryUp), 1);
        let st = h.session.stats();
        assert_eq!((st.gate_closed, st.reconciliations), (1, 2));
        assert_eq!(st.rest_cancel_alls, 0);
        h.session.close();
        assert_eq!(h.session.stats().open_at_end, 0);
        h.shutdown();
    }

    #[test]
    fn a_fenced_gate_never_opens_again_and_the_end_sends_nothing() {
        let mut h = Harness::start("gate-fenced", true);
        h.up();
        let a = (1u64 << 40) | 1;
        h.place_resting(a);

        // Another engine holds the lease: a renewal after it changes nothing.
        h.gate.fence();
        h.gate.open_until(Instant::now() + Duration::from_secs(60));
        let mark = h.mark();
        h.seen.clear();
        h.poll_for(Duration::from_millis(500));
        assert!(h.gate.is_fenced());
        assert_eq!(h.controls(Command::OrderEntryDown), 1);
        assert_eq!(h.controls(Command::OrderEntryUp), 0);
        assert!(!h.session.is_up());
        h.session
            .send(&Intent::cancel(0, Side::Bid, a, false, 0, 2), 0);
        h.poll_for(Duration::from_millis(300));
        assert!(!h.session.is_up());

        // The end: prompt, nothing sent, the orders left unknown.
        let t = Instant::now();
        h.session.close();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let reqs = h.requests(mark);
        assert_eq!(sent_past_the_gate(&reqs), Vec::<String>::new(), "{reqs:?}");
        let st = h.session.stats();
        assert_eq!(st.open_at_end, u64::MAX);
        assert_eq!(h.session.open_orders(0), 1, "unknown counts as one");
        assert_eq!(st.gate_closed, 1);
        assert_eq!((st.api_connects, st.user_connects), (1, 1));
        assert_eq!(st.rest_cancel_alls, 0);
        assert_eq!(h.open_at_venue(), 1, "the order is left to the new leader");
        h.shutdown();
    }

    #[test]
    fn a_gate_that_never_opens_sends_nothing_at_all() {
        let mut h = Harness::start("gate-never", false);
        h.poll_for(Duration::from_millis(500));
        let b = (1u64 << 40) | 1;
        h.session.send(
            &Intent::place(0, Side::Bid, TimeInForce::PostOnly, b, 500_000, 3, 0, 1),
            0,
        );
        h.poll_for(Duration::from_millis(100));
        assert_eq!(
            h.report(b, ExecKind::Rejected).map(|r| r.reject_code),
            Some(CODE_DISCONNECTED)
        );
        let t = Instant::now();
        h.session.close();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // Not even the switch's first arming, nor a listenKey.
        assert_eq!(h.requests(0), Vec::<String>::new());
        let st = h.session.stats();
        assert_eq!((st.api_connects, st.user_connects), (0, 0));
        assert_eq!(st.gate_closed, 0, "never open, never closed");
        assert_eq!(st.countdown_refreshes, 0);
        assert_eq!(st.open_at_end, u64::MAX);
        h.shutdown();
    }

    #[test]
    fn the_rest_side_drops_order_jobs_asked_before_the_gate_closed() {
        let (_dir, cfg, ex, h) = recorded_venue("gate-worker");
        let symbol = cfg.instruments[0].instrument.symbol.as_str().to_string();
        let mut w = Worker::spawn(
            rest_client(&h),
            vec![symbol],
            WorkerOptions {
                countdown: Some(Duration::from_secs(60)),
                countdown_every: Duration::from_millis(50),
                keepalive_every: Duration::from_secs(1_800),
                alive_within: Duration::from_secs(5),
            },
        )
        .unwrap();
        let gate = Arc::new(SendGate::closed());
        assert!(w.set_gate(Arc::clone(&gate)));
        assert!(!w.set_gate(Arc::new(SendGate::closed())), "the first stays");
        // A gateway thread that is alive, behind a closed gate.
        w.heartbeat_ms.store(wall_ms(), Ordering::Release);
        assert!(w.ask(Job::CancelAll));
        assert!(w.ask(Job::Snapshot(0, 7)));
        let end = Instant::now() + Duration::from_secs(10);
        let answer = loop {
            if let Some(d) = w.poll() {
                break d;
            }
            assert!(Instant::now() < end, "no answer");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(matches!(answer, Done::Snapshot(0, 7, Err(_))), "{answer:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(w.poll().is_none(), "a gated cancel-all is not answered");
        assert!(w.ask(Job::Shutdown { cancel_all: true }));
        assert_eq!(w.finish(Duration::from_secs(5)), Some(vec![None]));
        assert_eq!(w.counters.gated_jobs.load(Ordering::Relaxed), 3);
        assert_eq!(w.counters.countdown_refreshes.load(Ordering::Relaxed), 0);
        assert_eq!(ex.log.lock().unwrap().clone(), Vec::<String>::new());
        drop(w);
        h.shutdown();
    }
}
