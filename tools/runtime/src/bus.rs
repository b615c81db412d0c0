//! The bus link: an engine's place on the firm's NATS server (`[bus]`, issue 19).
//!
//! It runs on a thread of its own (the housekeeping core), with the official `async-nats` client
//! on a single-threaded Tokio runtime that lives on that thread only: nothing asynchronous touches
//! the engine, feed or gateway threads, and the engine thread never waits on the network.
//!
//! | subject | who publishes | what |
//! |---|---|---|
//! | `{prefix}.heartbeat.{engine}` | each engine, every `heartbeat_ms` | [`Heartbeat`] (JSON): modes, positions, open exposure, PnL, journal progress |
//! | `{prefix}.ctl.all` | `ringmaker ctl --bus URL VERB` | a control request line (`VERB [INSTRUMENT]`), for every engine |
//! | `{prefix}.ctl.engine.{engine}` | `ringmaker ctl --bus URL --engine NAME VERB` | the same, for one engine |
//! | `{prefix}.ack.{engine}` | the engine that took a request | [`Ack`] (JSON): its answer and resulting modes; also sent to the request's reply subject |
//! | `{prefix}.journal.{engine}.{run}` | each engine, into the JetStream stream `{prefix}_journal` | its journal as on disk ([`crate::archive`]) |
//!
//! A control request from the bus is answered by the run's ops thread exactly as one from the
//! control socket ([`crate::live::ops::control`]): its engine commands go into the input ring, so
//! the engine journals them as inputs and a replay reproduces them at the same point; the answer
//! waits until the engine has consumed them, so the ack carries the mode they produced.
//!
//! The link connects in the background and reconnects on its own; while the server is away,
//! heartbeats are dropped (counted), never queued without bound, and the run goes on. Nothing a
//! server sends can stop the thread: a request that is not text, too long, or unknown gets an
//! error ack.

use crate::config::RunConfig;
use crate::live::ops::OpsState;
use crate::live::shared::Shared;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::live::config::BusConfig;

/// The longest control request taken from the bus, bytes.
pub const MAX_REQUEST: usize = 1024;

/// How long the bus thread waits for the ops thread's answer to a request (the ops thread itself
/// waits up to [`crate::live::ops::control::ANSWER_WAIT`] for the engine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(8);

/// Whether `s` is one NATS subject token as the bus's names use them: 1 to 64 ASCII letters,
/// digits, `-` or `_`.
pub fn is_token(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The server address a `[bus] url` names (`nats://`, `tls://` or none; an optional
/// `user:password@`), or `None` if it names none.
pub fn server_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("nats://")
        .or_else(|| url.strip_prefix("tls://"))
        .unwrap_or(url);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (host, port) = host_port.rsplit_once(':')?;
    (!host.is_empty()
        && !host.contains('/')
        && !host.contains(char::is_whitespace)
        && port.parse::<u16>().is_ok_and(|p| p > 0))
    .then(|| host_port.to_owned())
}

/// `url` with any `user:password@` replaced by `***@`: what logs, errors and acks may show.
pub fn redact_url(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((scheme_user, host)) => {
            let scheme = scheme_user
                .split_once("://")
                .map_or(String::new(), |(s, _)| format!("{s}://"));
            format!("{scheme}***@{host}")
        }
        None => url.to_owned(),
    }
}

/// The firm-wide subjects under one prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (checked by [`BusConfig::check`]).
    pub fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// Where `engine` publishes its heartbeat.
    pub fn heartbeat(&self, engine: &str) -> String {
        format!("{}.heartbeat.{engine}", self.prefix)
    }

    /// Every engine's heartbeats.
    pub fn heartbeats(&self) -> String {
        format!("{}.heartbeat.*", self.prefix)
    }

    /// Control requests for every engine.
    pub fn ctl_all(&self) -> String {
        format!("{}.ctl.all", self.prefix)
    }

    /// Control requests for `engine` alone.
    pub fn ctl_engine(&self, engine: &str) -> String {
        format!("{}.ctl.engine.{engine}", self.prefix)
    }

    /// Where `engine` publishes its acks.
    pub fn ack(&self, engine: &str) -> String {
        format!("{}.ack.{engine}", self.prefix)
    }
}

/// One instrument in a heartbeat or an ack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstrumentState {
    /// `venue:SYMBOL`.
    pub key: String,
    /// `normal`, `reduce_only` or `halted`.
    pub mode: String,
    /// Why.
    pub reason: String,
    /// Signed position, lots.
    pub position_lots: i64,
    /// Open orders' remaining quantity, bid then ask, lots.
    pub open_lots: [i64; 2],
    /// The open orders' notional if all filled at the fair value, bid then ask, in the
    /// instrument's quote units (for inverse contracts, contracts × contract size).
    pub open_notional: [f64; 2],
    /// The position's notional at the fair value (signed), the same units.
    pub position_notional: f64,
    /// Total PnL at the fair value, in `pnl_asset`.
    pub pnl: f64,
    /// PnL since the start of the engine's day, in `pnl_asset`.
    pub daily_pnl: f64,
    /// The PnL's asset (`USDT`, `BTC`, ...).
    pub pnl_asset: String,
    /// The base asset (`BTC`): which `[[firm.asset]]` limits the instrument is under.
    #[serde(default)]
    pub asset: String,
    /// The quote asset (`USDT`; `USD` for inverse): the notionals' unit.
    #[serde(default)]
    pub quote: String,
    /// `daily_pnl` in USD with the stablecoins at par (an inverse instrument's at the fair
    /// value); `None` when it cannot be said in USD.
    #[serde(default)]
    pub daily_pnl_usd: Option<f64>,
}

/// What an engine publishes on `{prefix}.heartbeat.{engine}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The engine's name.
    pub engine: String,
    /// This run of it (random at start): two runs under one name are a mistake the peers see.
    #[serde(default)]
    pub run_id: u64,
    /// 1, 2, 3, ... for this run (a gap: heartbeats lost; back to 1: the engine restarted).
    pub seq: u64,
    /// Wall clock when it was built, ms since the Unix epoch.
    pub unix_ms: u64,
    /// The period, ms (a peer is missing after a few of them).
    pub heartbeat_ms: u64,
    /// The last heartbeat of a run that is stopping.
    pub stopping: bool,
    /// Per instrument, in the config's order.
    pub instruments: Vec<InstrumentState>,
    /// The journal: segment being written, records written, bytes used.
    pub journal: JournalProgress,
    /// This engine's claims on the firm's limits (`[firm]`; empty without it).
    #[serde(default)]
    pub claims: Vec<crate::firm::Claim>,
    /// The digest of its `[firm]` section ([`crate::firm::FirmConfig::digest`]): engines that
    /// share a budget must carry the same.
    #[serde(default)]
    pub firm: Option<String>,
    /// The last heartbeat heard from each live peer: `[run_id, seq]` by name (a peer raises a
    /// claim only once every other has heard it).
    #[serde(default)]
    pub heard: std::collections::BTreeMap<String, [u64; 2]>,
}

/// How far the engine's journal has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalProgress {
    /// The segment being written.
    pub segment: u64,
    /// Records written.
    pub records: u64,
    /// Bytes used.
    pub bytes: u64,
}

/// What an engine publishes for a control request, on `{prefix}.ack.{engine}` and to the
/// request's reply subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The engine's name.
    pub engine: String,
    /// The request as received (`VERB [INSTRUMENT]`, at most [`MAX_REQUEST`] bytes shown).
    pub request: String,
    /// The answer's first line: `ok`, `refused: ...` or `error: ...`.
    pub result: String,
    /// The whole answer, as `ringmaker ctl --out` prints it.
    pub answer: String,
    /// The modes after the request.
    pub instruments: Vec<InstrumentState>,
}

/// Every instrument's state as the engine thread last published it.
pub fn instrument_states(cfg: &RunConfig, ops: &OpsState) -> Vec<InstrumentState> {
    cfg.engine
        .instruments
        .iter()
        .zip(ops.instruments.iter())
        .map(|(c, g)| {
            let (mode, reason) = g.mode();
            let inst = &c.instrument;
            let money = |v: i64| inst.money_unit().to_f64(i128::from(v));
            let fv = f64::from_bits(g.fair_value_ticks.load(Ordering::Relaxed));
            // Notional of `lots` at the fair value (to the nearest tick): price × quantity, or
            // contracts × contract size for an inverse instrument ([`engine::Instrument::notional`]).
            let notional = |lots: i64| {
                if fv.is_finite() && fv > 0.0 {
                    inst.notional_unit()
                        .to_f64(inst.notional(fv.round() as i64, lots))
                } else {
                    0.0
                }
            };
            let open_lots = [
                g.open_lots[0].load(Ordering::Relaxed),
                g.open_lots[1].load(Ordering::Relaxed),
            ];
            let position_lots = g.position_lots.load(Ordering::Relaxed);
            let daily_pnl = money(g.daily.load(Ordering::Relaxed));
            let pnl_asset = inst.pnl_asset();
            let daily_pnl_usd = if crate::firm::usd_at_par(pnl_asset.as_str()) {
                Some(daily_pnl)
            } else if inst.kind == engine::InstrumentKind::Inverse
                && crate::firm::usd_at_par(inst.quote_asset.as_str())
                && fv.is_finite()
                && fv > 0.0
            {
                let price = fv.round() * inst.tick.mantissa() as f64
                    / 10f64.powi(i32::from(inst.tick.scale()));
                Some(daily_pnl * price)
            } else {
                None
            };
            InstrumentState {
                key: crate::live::ops::metrics::key(c),
                mode: mode.name().into(),
                reason: reason.name().into(),
                position_lots,
                open_lots,
                open_notional: open_lots.map(notional),
                position_notional: notional(position_lots),
                pnl: money(g.total.load(Ordering::Relaxed)),
                daily_pnl,
                pnl_asset: pnl_asset.as_str().to_owned(),
                asset: inst.base_asset.as_str().to_owned(),
                quote: inst.quote_asset.as_str().to_owned(),
                daily_pnl_usd,
            }
        })
        .collect()
}

/// A heartbeat of the run's state now.
pub fn heartbeat(
    cfg: &RunConfig,
    bus: &BusConfig,
    ops: &OpsState,
    run_id: u64,
    seq: u64,
    stopping: bool,
) -> Heartbeat {
    let e = &ops.engine;
    Heartbeat {
        engine: bus.engine.clone().unwrap_or_default(),
        run_id,
        seq,
        unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        heartbeat_ms: bus.heartbeat_ms,
        stopping,
        instruments: instrument_states(cfg, ops),
        journal: JournalProgress {
            segment: e.journal_segment.load(Ordering::Relaxed),
            records: e.journal_records.load(Ordering::Relaxed),
            bytes: e.journal_bytes.load(Ordering::Relaxed),
        },
        claims: Vec::new(),
        heard: Default::default(),
        firm: None,
    }
}

/// The most peers one engine keeps track of; heartbeats from further names are ignored (and
/// counted): memory is bounded whatever the bus carries.
pub const MAX_PEERS: usize = 256;

/// What a peer is, as far as its heartbeats tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Heard within three of its periods (and at least 1 s).
    Live,
    /// Not heard for longer: for firm-wide limits, counted as using its whole allocation.
    Stale,
    /// Its last heartbeat said it was stopping.
    Stopped,
}

impl PeerState {
    /// As logged and labelled.
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Live => "live",
            PeerState::Stale => "stale",
            PeerState::Stopped => "stopped",
        }
    }
}

/// One other engine on the bus.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its last heartbeat.
    pub last: Heartbeat,
    /// When that arrived.
    pub seen: Instant,
    /// What it is now.
    pub state: PeerState,
}

/// The other engines on the bus, by name, from their heartbeats.
#[derive(Debug)]
pub struct Peers {
    me: String,
    my_run: u64,
    map: std::collections::BTreeMap<String, Peer>,
    /// Heartbeats from names past [`MAX_PEERS`].
    pub ignored: u64,
    /// Heartbeats under this engine's own name from another run of it.
    pub name_conflicts: u64,
}

/// A peer's change of state, to be said.
pub type Transition = (String, PeerState, Option<Duration>);

impl Peers {
    /// The peers of engine `me`, run `my_run`.
    pub fn new(me: &str, my_run: u64) -> Peers {
        Peers {
            me: me.to_owned(),
            my_run,
            map: Default::default(),
            ignored: 0,
            name_conflicts: 0,
        }
    }

    /// A heartbeat arrived at `now`: the peer's change of state, if any. One under this
    /// engine's own name is ours (nothing) or another run's (counted, and the caller warns).
    pub fn on_heartbeat(&mut self, hb: Heartbeat, now: Instant) -> Option<Transition> {
        if hb.engine == self.me {
            if hb.run_id != self.my_run {
                self.name_conflicts += 1;
            }
            return None;
        }
        let state = if hb.stopping {
            PeerState::Stopped
        } else {
            PeerState::Live
        };
        let full = self.map.len() >= MAX_PEERS;
        match self.map.get_mut(&hb.engine) {
            Some(p) => {
                let was = p.state;
                p.last = hb;
                p.seen = now;
                p.state = state;
                (was != state).then(|| (p.last.engine.clone(), state, None))
            }
            None if full => {
                self.ignored += 1;
                None
            }
            None => {
                let name = hb.engine.clone();
                self.map.insert(
                    name.clone(),
                    Peer {
                        last: hb,
                        seen: now,
                        state,
                    },
                );
                Some((name, state, None))
            }
        }
    }

    /// Live peers not heard for three of their periods (at least 1 s) by `now` become stale:
    /// their changes of state, with how long each has been silent.
    pub fn expire(&mut self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        for (name, p) in self.map.iter_mut() {
            let limit = Duration::from_millis(p.last.heartbeat_ms.saturating_mul(3).max(1_000));
            let silent = now.saturating_duration_since(p.seen);
            if p.state == PeerState::Live && silent > limit {
                p.state = PeerState::Stale;
                out.push((name.clone(), PeerState::Stale, Some(silent)));
            }
        }
        out
    }

    /// Peers live, stale and stopped.
    pub fn counts(&self) -> [u64; 3] {
        let mut c = [0; 3];
        for p in self.map.values() {
            c[p.state as usize] += 1;
        }
        c
    }

    /// A peer by name.
    pub fn get(&self, name: &str) -> Option<&Peer> {
        self.map.get(name)
    }

    /// Every peer as the firm's limits count it, by name.
    pub fn views(&self) -> Vec<crate::firm::PeerView<'_>> {
        self.map
            .values()
            .map(|p| crate::firm::PeerView {
                state: p.state,
                last: &p.last,
            })
            .collect()
    }

    /// The last heartbeat heard from each live peer, `[run_id, seq]` by name.
    pub fn heard(&self) -> std::collections::BTreeMap<String, [u64; 2]> {
        self.map
            .iter()
            .filter(|(_, p)| p.state == PeerState::Live)
            .map(|(n, p)| (n.clone(), [p.last.run_id, p.last.seq]))
            .collect()
    }
}

/// A control request from the bus, handed to the ops thread, which answers it as it answers the
/// control socket.
#[derive(Debug)]
pub struct Request {
    /// `VERB [INSTRUMENT]`.
    pub line: String,
    /// Where the answer goes.
    pub answer: crossbeam_channel::Sender<String>,
}

/// The bus thread's counters, in [`OpsState::bus`] (the metrics endpoint shows them).
#[derive(Debug, Default)]
pub struct BusCounters {
    /// The run has a bus link (1) or not (0).
    pub enabled: AtomicU64,
    /// Connected to the server now (1) or not (0).
    pub connected: AtomicU64,
    /// Heartbeats handed to the client.
    pub heartbeats: AtomicU64,
    /// Heartbeats dropped (the server away: not connected when one was due).
    pub heartbeats_dropped: AtomicU64,
    /// Control requests taken from the bus.
    pub requests: AtomicU64,
    /// Requests refused before the ops thread saw them (not text, too long, no answer).
    pub requests_refused: AtomicU64,
    /// Connections made (the first included).
    pub connects: AtomicU64,
    /// Connections lost.
    pub disconnects: AtomicU64,
    /// Other engines on the bus, live, stale and stopped (gauges).
    pub peers: [AtomicU64; 3],
    /// Heartbeats under this engine's own name from another run.
    pub name_conflicts: AtomicU64,
    /// The firm's limits as last planned (`[firm]` on), for `/metrics`.
    pub firm: std::sync::Mutex<Option<FirmGauges>>,
    /// Journal records archived (acknowledged by the server).
    pub archive_records: AtomicU64,
    /// Journal bytes archived.
    pub archive_bytes: AtomicU64,
    /// Archive publishes or reads that failed (retried from where they were).
    pub archive_failures: AtomicU64,
    /// Heartbeats from a peer whose `[firm]` differs from this engine's.
    pub firm_mismatches: AtomicU64,
    /// The engine name's lease (a live run that leads its engine name).
    pub lease: std::sync::OnceLock<Arc<crate::lease::LeaseCounters>>,
}

/// The firm's limits as last planned by the bus thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirmGauges {
    /// This engine's claims.
    pub claims: Vec<crate::firm::Claim>,
    /// Per instrument, the room `(buy, sell)`, USD (`INFINITY`: not limited).
    pub room_usd: Vec<(f64, f64)>,
    /// The firm's PnL today as counted, USD.
    pub firm_pnl_usd: f64,
    /// The firm's daily loss limit is hit.
    pub halted: bool,
}

/// What the bus thread runs with.
pub struct BusLink {
    /// `[bus]`, checked, with `url` and `engine` set.
    pub bus: BusConfig,
    /// The run's config (instrument keys and units for the heartbeat).
    pub config: RunConfig,
    /// To the ops thread.
    pub requests: crossbeam_channel::Sender<Request>,
    /// The run's journal directory, archived to the bus's JetStream stream (`[bus] archive`).
    pub journal_dir: Option<std::path::PathBuf>,
    /// Into the engine's input ring: the firm's limits (`[firm]` on), with the clock that stamps
    /// their publication.
    pub input: Option<(crate::live::rings::InputProducer, quanta::Clock)>,
    /// This run on the bus: `(run id, start ms)` ([`new_run`]); the archive's run token.
    pub run: (u64, u64),
}

/// A new run's identity on the bus: `(run id, start ms)`, distinct per process and start.
pub fn new_run() -> (u64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let id = now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32);
    (id, now.as_millis() as u64)
}

/// What the bus thread leaves behind: its counters' final values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BusEnd {
    /// Heartbeats handed to the client.
    pub heartbeats: u64,
    /// Heartbeats dropped.
    pub heartbeats_dropped: u64,
    /// Control requests taken from the bus.
    pub requests: u64,
    /// Requests refused before the ops thread saw them.
    pub requests_refused: u64,
    /// Connections made.
    pub connects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Journal records archived.
    pub archive_records: u64,
    /// Archive failures.
    pub archive_failures: u64,
    /// Where the journal archive got to, for the rest once the journal is closed.
    pub archive: Option<crate::archive::Resume>,
}

impl std::fmt::Debug for BusLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusLink")
            .field("bus", &self.bus)
            .field("firm", &self.input.is_some())
            .finish_non_exhaustive()
    }
}

impl BusCounters {
    fn end(&self) -> BusEnd {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BusEnd {
            heartbeats: l(&self.heartbeats),
            heartbeats_dropped: l(&self.heartbeats_dropped),
            requests: l(&self.requests),
            requests_refused: l(&self.requests_refused),
            connects: l(&self.connects),
            disconnects: l(&self.disconnects),
            archive_records: l(&self.archive_records),
            archive_failures: l(&self.archive_failures),
            archive: None,
        }
    }
}

/// The bus thread: heartbeats and control until the run's engine has stopped
/// ([`Shared::housekeeping_stop`]) or the run is aborted, then a last heartbeat (`stopping`)
/// and a flush. Errors (a runtime that cannot start) are returned, never panicked.
pub fn run(link: BusLink, shared: Arc<Shared>) -> anyhow::Result<BusEnd> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("the bus thread's runtime: {e}"))?;
    rt.block_on(serve(link, shared))
}

async fn serve(mut link: BusLink, shared: Arc<Shared>) -> anyhow::Result<BusEnd> {
    let url = link.bus.url.clone().unwrap_or_default();
    let engine = link.bus.engine.clone().unwrap_or_default();
    let subjects = Subjects::new(&link.bus.prefix);
    let counters = &shared.ops.bus;
    counters.enabled.store(1, Ordering::Relaxed);
    let events = Arc::clone(&shared);
    let client = async_nats::ConnectOptions::new()
        .name(format!("ringmaker {engine}"))
        .retry_on_initial_connect()
        .event_callback(move |e| {
            let shared = Arc::clone(&events);
            async move {
                let c = &shared.ops.bus;
                match e {
                    async_nats::Event::Connected => {
                        c.connects.fetch_add(1, Ordering::Relaxed);
                        c.connected.store(1, Ordering::Relaxed);
                    }
                    async_nats::Event::Disconnected => {
                        c.disconnects.fetch_add(1, Ordering::Relaxed);
                        c.connected.store(0, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        })
        .connect(url.as_str())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the bus at {}: {}",
                redact_url(&url),
                redact_error(&e.to_string(), &url)
            )
        })?;

    // Control: every engine's subject and this one's, answered one at a time.
    let mut subs = Vec::new();
    for subject in [subjects.ctl_all(), subjects.ctl_engine(&engine)] {
        subs.push(
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| anyhow::anyhow!("subscribing to {subject}: {e}"))?,
        );
    }
    let control = {
        let client = client.clone();
        let link_cfg = link.config.clone();
        let requests = link.requests.clone();
        let shared = Arc::clone(&shared);
        let engine = engine.clone();
        let ack_subject = subjects.ack(&engine);
        tokio::spawn(async move {
            let mut merged = futures_util::stream::select_all(subs);
            while let Some(msg) = merged.next().await {
                let counters = &shared.ops.bus;
                counters.requests.fetch_add(1, Ordering::Relaxed);
                let (request, answer) = match std::str::from_utf8(&msg.payload) {
                    Ok(s) if s.len() <= MAX_REQUEST && !s.contains('\n') => {
                        let line = s.trim().to_owned();
                        (line.clone(), ask_ops(&requests, line).await)
                    }
                    _ => (
                        String::from_utf8_lossy(&msg.payload[..msg.payload.len().min(64)])
                            .into_owned(),
                        Err(format!(
                            "error: a request is one line of UTF-8 text, {MAX_REQUEST} bytes \
                             at most\n"
                        )),
                    ),
                };
                // Refused here (not text, too long) or by the ops thread's absence: counted
                // once either way.
                let answer = answer.unwrap_or_else(|e| {
                    counters.requests_refused.fetch_add(1, Ordering::Relaxed);
                    e
                });
                let ack = Ack {
                    engine: engine.clone(),
                    request,
                    result: answer.lines().next().unwrap_or("").to_owned(),
                    answer,
                    instruments: instrument_states(&link_cfg, &shared.ops),
                };
                let body = serde_json::to_vec(&ack).unwrap_or_default();
                if let Some(reply) = msg.reply {
                    let _ = client.publish(reply, body.clone().into()).await;
                }
                let _ = client.publish(ack_subject.clone(), body.into()).await;
                let _ = client.flush().await;
            }
        })
    };

    // The other engines, from their heartbeats (this run's own included, to catch a second run
    // under the same name).
    let (run_id, start_ms) = link.run;
    let peers = Arc::new(std::sync::Mutex::new(Peers::new(&engine, run_id)));
    let mut heard = client
        .subscribe(subjects.heartbeats())
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to {}: {e}", subjects.heartbeats()))?;
    let my_firm = link
        .config
        .live
        .firm
        .is_on()
        .then(|| link.config.live.firm.digest());
    let listen = {
        let (peers, shared) = (Arc::clone(&peers), Arc::clone(&shared));
        let my_firm = my_firm.clone();
        let engine_name = engine.clone();
        let mut warned = std::collections::BTreeSet::new();
        tokio::spawn(async move {
            while let Some(m) = heard.next().await {
                let Ok(hb) = serde_json::from_slice::<Heartbeat>(&m.payload) else {
                    continue;
                };
                if let (Some(mine), Some(theirs)) = (&my_firm, &hb.firm) {
                    if mine != theirs && hb.engine != engine_name {
                        shared
                            .ops
                            .bus
                            .firm_mismatches
                            .fetch_add(1, Ordering::Relaxed);
                        // Once per peer (at most the peers kept).
                        if warned.len() < MAX_PEERS && warned.insert(hb.engine.clone()) {
                            let _ = writeln!(
                                std::io::stderr(),
                                "ringmaker run: warning: firm: engine {:?} runs another [firm] \
                                 section ({theirs}, this one {mine}): engines that share a \
                                 budget must carry the same; its claims are counted as it \
                                 publishes them",
                                hb.engine
                            );
                        }
                    }
                }
                let Ok(mut p) = peers.lock() else { return };
                let conflicts = p.name_conflicts;
                let change = p.on_heartbeat(hb, Instant::now());
                if p.name_conflicts > conflicts {
                    let n = shared
                        .ops
                        .bus
                        .name_conflicts
                        .fetch_add(1, Ordering::Relaxed);
                    if n == 0 {
                        let _ = writeln!(
                            std::io::stderr(),
                            "ringmaker run: warning: bus: another run publishes heartbeats as \
                             engine {:?}: each engine needs a name of its own (after a failover: \
                             the fenced predecessor, until it stops)",
                            p.me
                        );
                    }
                }
                publish_peers(&p, change.into_iter().collect(), &shared.ops.bus);
            }
        })
    };

    let period = Duration::from_millis(link.bus.heartbeat_ms);
    let hb_subject = subjects.heartbeat(&engine);
    let mut archive = match (&link.journal_dir, link.bus.archive) {
        (Some(dir), true) => Some(ArchiveLink::new(
            &client, &link.bus, &engine, run_id, start_ms, dir,
        )),
        _ => None,
    };
    // The only producer the bus thread holds: released at the shutdown (the engine stops once
    // every producer is gone).
    let mut firm = match (link.input.take(), link.config.live.firm.is_on()) {
        (Some((input, clock)), true) => Some(FirmLink::new(
            crate::firm::Firm::new(link.config.live.firm.clone(), &engine, run_id),
            input,
            clock,
            link.config.engine.instruments.len(),
        )),
        _ => None,
    };
    let mut seq = 0u64;
    let mut next = Instant::now();
    loop {
        if let Ok(mut p) = peers.lock() {
            let changes = p.expire(Instant::now());
            publish_peers(&p, changes, counters);
        }
        // Stopped after the engine (the last heartbeat shows the shutdown's halt), or at once
        // when the run is aborted.
        let stopping = shared.housekeeping_stop.load(Ordering::Acquire)
            || shared.abort.load(Ordering::Acquire);
        if stopping || Instant::now() >= next {
            seq += 1;
            // While the server is away a heartbeat is dropped (counted), not queued in the
            // client: a stale one is worth nothing, and a full client buffer would stall this
            // thread. Peers see the gap in `seq`.
            let connected = client.connection_state() == async_nats::connection::State::Connected;
            let mut hb = heartbeat(&link.config, &link.bus, &shared.ops, run_id, seq, stopping);
            hb.firm.clone_from(&my_firm);
            let plan = match (&firm, peers.lock()) {
                (Some(f), Ok(p)) => {
                    hb.heard = p.heard();
                    let plan = f.firm.plan(&hb.instruments, &p.views(), connected);
                    hb.claims = plan.claims.clone();
                    Some(plan)
                }
                _ => None,
            };
            let sent = connected && {
                let body = serde_json::to_vec(&hb).unwrap_or_default();
                client
                    .publish(hb_subject.clone(), body.into())
                    .await
                    .is_ok()
            };
            let counter = if sent {
                &counters.heartbeats
            } else {
                &counters.heartbeats_dropped
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let (Some(f), Some(mut plan)) = (&mut firm, plan) {
                if sent {
                    f.firm.published(&plan, seq);
                } else if plan.raised {
                    // Nobody heard the risen claims: the engine gets none of the rise.
                    if let Ok(p) = peers.lock() {
                        plan = f.firm.plan(&hb.instruments, &p.views(), false);
                    }
                }
                if !stopping {
                    f.apply(&plan, &link.config, &shared);
                }
            }
            next += period;
            if next < Instant::now() {
                next = Instant::now() + period;
            }
        }
        if stopping {
            break;
        }
        if let Some(f) = &mut firm {
            // A limit the full input ring refused, again.
            f.flush(&shared);
        }
        if let Some(a) = &mut archive {
            if client.connection_state() == async_nats::connection::State::Connected {
                // Never past the next heartbeat: a slow server delays the archive, not the
                // heartbeats the firm counts on.
                a.pump(counters, 16, next).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20).min(period)).await;
    }
    control.abort();
    listen.abort();
    if let Some(a) = &mut archive {
        // What the engine wrote up to its stop; the rest (the journal's close record) once the
        // journal is closed (`archive_rest`).
        if client.connection_state() == async_nats::connection::State::Connected {
            a.pump(counters, 64, Instant::now() + Duration::from_secs(5))
                .await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    let mut end = counters.end();

    end.archive = archive.map(|a| crate::archive::Resume {
        url: url.clone(),
        prefix: link.bus.prefix.clone(),
        subject: a.subject,
        run: a.run,
        position: a.tailer.position(),
        records: end.archive_records,
        unacked: a.unacked.clone(),
    });
    Ok(end)
}

/// The journal archive on the bus thread: the segment files followed
/// ([`crate::archive::Tailer`]) and published to JetStream, each chunk acknowledged before the
/// next.
struct ArchiveLink {
    js: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Config,
    stream_ready: bool,
    subject: String,
    run: String,
    tailer: crate::archive::Tailer,
    /// The chunk last published without an acknowledgement seen.
    unacked: Option<crate::archive::Chunk>,
    warned: bool,
    /// After a failure, not before this (a server without JetStream is not asked 50 times a
    /// second).
    retry_at: Instant,
}

impl ArchiveLink {
    fn new(
        client: &async_nats::Client,
        bus: &BusConfig,
        engine: &str,
        run_id: u64,
        start_ms: u64,
        dir: &std::path::Path,
    ) -> ArchiveLink {
        let run = crate::archive::run_token(start_ms, run_id);
        ArchiveLink {
            js: async_nats::jetstream::new(client.clone()),
            stream: async_nats::jetstream::stream::Config {
                name: crate::archive::stream_name(&bus.prefix),
                subjects: vec![format!("{}.journal.>", bus.prefix)],
                max_age: Duration::from_secs(u64::from(bus.archive_days) * 86_400),
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            },
            stream_ready: false,
            subject: format!("{}.journal.{engine}.{run}", bus.prefix),
            run,
            tailer: crate::archive::Tailer::new(dir),
            unacked: None,
            warned: false,
            retry_at: Instant::now(),
        }
    }

    fn fail(&mut self, counters: &BusCounters, what: String) {
        counters.archive_failures.fetch_add(1, Ordering::Relaxed);
        self.retry_at = Instant::now() + Duration::from_secs(1);
        self.warn(&what);
    }

    /// Said once a run.
    fn warn(&mut self, what: &str) {
        if !self.warned {
            self.warned = true;
            let _ = writeln!(
                std::io::stderr(),
                "ringmaker run: warning: bus: journal archive: {what} (retried; counted in \
                 ringmaker_bus_archive_failures_total)"
            );
        }
    }

    /// Publishes up to `budget` chunks of what the journal has now, each acknowledged, until
    /// `deadline` at the latest (a chunk not acknowledged by then is published again later; the
    /// server drops the duplicate).
    async fn pump(&mut self, counters: &BusCounters, budget: usize, deadline: Instant) {
        // At least a little time to answer, however late it is.
        let wait = || {
            deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(50), Duration::from_secs(2))
        };
        if Instant::now() < self.retry_at {
            return;
        }
        if !self.stream_ready {
            match tokio::time::timeout(wait(), self.js.get_or_create_stream(self.stream.clone()))
                .await
            {
                Ok(Ok(_)) => self.stream_ready = true,
                Ok(Err(e)) => {
                    let name = self.stream.name.clone();
                    return self.fail(counters, format!("the stream {name}: {e}"));
                }
                Err(_) => return self.fail(counters, "no answer about the stream".into()),
            }
        }
        for _ in 0..budget {
            // A chunk whose acknowledgement was not seen goes again exactly as it was: the
            // server drops it if it has it (the same message id), and a chunk grown since
            // (more records whole) would be dropped as that duplicate, its new records lost.
            let c = match self.unacked.take() {
                Some(c) => c,
                None => match self.tailer.next() {
                    Ok(crate::archive::Next::Chunk(c)) => c,
                    Ok(crate::archive::Next::Roll) => {
                        self.tailer.roll();
                        continue;
                    }
                    Ok(crate::archive::Next::Idle) => return,
                    Err(e) => return self.fail(counters, format!("reading the journal: {e}")),
                },
            };
            match publish_chunk(&self.js, &self.subject, &self.run, &c, wait()).await {
                Ok(()) => {
                    self.tailer.advance(&c);
                    counters
                        .archive_records
                        .fetch_add(c.records, Ordering::Relaxed);
                    counters
                        .archive_bytes
                        .fetch_add(c.bytes.len() as u64, Ordering::Relaxed);
                }
                Err(ChunkError::Late(e)) => {
                    // Not acknowledged before the next heartbeat: the same chunk goes again at
                    // the next turn (the server drops it if it has it); no pause, the server
                    // answers, only slowly.
                    self.unacked = Some(c);
                    counters.archive_failures.fetch_add(1, Ordering::Relaxed);
                    self.warn(&e);
                    return;
                }
                Err(ChunkError::Failed(e)) => {
                    self.unacked = Some(c);
                    return self.fail(counters, e);
                }
            }
        }
    }
}

/// Why a chunk was not seen acknowledged.
enum ChunkError {
    /// No acknowledgement in the time given (the server may have it).
    Late(String),
    /// The publish failed.
    Failed(String),
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Late(e) | ChunkError::Failed(e) => f.write_str(e),
        }
    }
}

/// Publishes one chunk of a run's journal and waits (2 s at most) for the server's
/// acknowledgement.
async fn publish_chunk(
    js: &async_nats::jetstream::Context,
    subject: &str,
    run: &str,
    c: &crate::archive::Chunk,
    wait: Duration,
) -> Result<(), ChunkError> {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Rm-Segment", c.segment.to_string().as_str());
    h.insert("Rm-Offset", c.offset.to_string().as_str());
    h.insert("Rm-Records", c.records.to_string().as_str());
    if let Some(s) = c.last_seq {
        h.insert("Rm-Last-Seq", s.to_string().as_str());
    }
    // A chunk published again (its ack lost) is dropped by the server as a duplicate.
    let id = format!("{run}-{}-{}", c.segment, c.offset);
    h.insert("Nats-Msg-Id", id.as_str());
    let sent = async {
        let ack = js
            .publish_with_headers(subject.to_owned(), h, c.bytes.clone().into())
            .await
            .map_err(|e| format!("publishing: {e}"))?;
        ack.await.map_err(|e| format!("publishing: {e}"))
    };
    match tokio::time::timeout(wait, sent).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ChunkError::Failed(e)),
        Err(_) => Err(ChunkError::Late(format!(
            "no acknowledgement within {} ms",
            wait.as_millis()
        ))),
    }
}

/// The rest of a run's journal, once it is closed (its close record, written after the engine
/// stopped): published from where the bus thread got to, on a connection of its own. The
/// records archived in all.
pub fn archive_rest(r: &crate::archive::Resume, dir: &std::path::Path) -> anyhow::Result<u64> {
    as_client(&r.url, "ringmaker archive", |client| async move {
        let js = async_nats::jetstream::new(client.clone());
        let mut t = crate::archive::Tailer::at(dir, r.position.0, r.position.1);
        let mut records = r.records;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut unacked = r.unacked.clone();
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the journal archive did not catch up within 10 s"
            );
            let next = match unacked.take() {
                Some(c) => crate::archive::Next::Chunk(c),
                None => t.next()?,
            };
            match next {
                crate::archive::Next::Chunk(c) => {
                    publish_chunk(&js, &r.subject, &r.run, &c, Duration::from_secs(2))
                        .await
                        .map_err(|e| anyhow::anyhow!("the journal archive: {e}"))?;
                    t.advance(&c);
                    records += c.records;
                }
                crate::archive::Next::Roll => t.roll(),
                crate::archive::Next::Idle => break,
            }
        }
        let _ = client.flush().await;
        Ok(records)
    })
}

/// The firm's limits on the bus thread: the plan's rooms turned into [`engine::FirmLimit`]
/// events on the input ring, one per instrument whenever it changes.
struct FirmLink {
    firm: crate::firm::Firm,
    /// `None` once the run's shutdown has begun: no input after the shutdown's commands.
    input: Option<crate::live::rings::InputProducer>,
    clock: quanta::Clock,
    /// The last limit the engine was given, and one still to give (the ring was full).
    sent: Vec<Option<engine::FirmLimit>>,
    due: Vec<Option<engine::FirmLimit>>,
    halted: bool,
}

impl FirmLink {
    fn new(
        firm: crate::firm::Firm,
        input: crate::live::rings::InputProducer,
        clock: quanta::Clock,
        n: usize,
    ) -> Self {
        FirmLink {
            firm,
            input: Some(input),
            clock,
            sent: vec![None; n],
            due: vec![None; n],
            halted: false,
        }
    }

    /// The plan's limits, for each instrument whose limit changed.
    fn apply(&mut self, plan: &crate::firm::Plan, cfg: &RunConfig, shared: &Shared) {
        if plan.halt != self.halted {
            self.halted = plan.halt;
            let _ = writeln!(
                std::io::stderr(),
                "ringmaker run: firm: {} (the firm's PnL today, as counted: {:.2} USD; daily \
                 loss limit {} USD)",
                if plan.halt {
                    "the firm's daily loss limit is hit: every instrument halts"
                } else {
                    "the firm's daily loss is back within its limit: quoting again"
                },
                plan.firm_pnl,
                self.firm.config().daily_loss.unwrap_or(0.0)
            );
        }
        if let Ok(mut g) = shared.ops.bus.firm.lock() {
            *g = Some(FirmGauges {
                claims: plan.claims.clone(),
                room_usd: plan.room.clone(),
                firm_pnl_usd: plan.firm_pnl,
                halted: plan.halt,
            });
        }
        for (k, (c, &(long, short))) in cfg.engine.instruments.iter().zip(&plan.room).enumerate() {
            let unit = c.instrument.notional_unit().to_f64(1);
            let l = engine::FirmLimit {
                long_units: crate::firm::to_units(long, unit),
                short_units: crate::firm::to_units(short, unit),
                halt: plan.halt,
            };
            if self.sent[k] != Some(l) {
                self.due[k] = Some(l);
            }
        }
        self.flush(shared);
    }

    /// Publishes the limits due; one the full ring refuses stays due. Once the run's shutdown
    /// has begun (`ops_stop`), nothing more: the producer is dropped.
    fn flush(&mut self, shared: &Shared) {
        if shared.ops_stop.load(Ordering::Acquire) {
            self.input = None;
        }
        let Some(input) = self.input.as_mut() else {
            return;
        };
        for k in 0..self.due.len() {
            let Some(l) = self.due[k] else { continue };
            let mut ev = engine::Event::firm_limit(k as u16, shared.replay.now().unwrap_or(0), &l);
            ev.source = crate::live::rings::SRC_BUS;
            let t = self.clock.raw();
            let ok = input.try_publish(|s| {
                s.event = ev;
                s.t_decode = 0;
                s.t_publish = t;
            });
            if !ok {
                return;
            }
            crate::live::counters::Counters::add(&shared.counters.firm_limits, 1);
            self.sent[k] = Some(l);
            self.due[k] = None;
        }
    }
}

/// Says each peer's change of state (stderr) and stores the counts for `/metrics`.
fn publish_peers(p: &Peers, changes: Vec<Transition>, counters: &BusCounters) {
    for (name, state, silent) in changes {
        let _ = match silent {
            Some(d) => writeln!(
                std::io::stderr(),
                "ringmaker run: bus: peer {name} is {} (no heartbeat for {} ms)",
                state.name(),
                d.as_millis()
            ),
            None => writeln!(
                std::io::stderr(),
                "ringmaker run: bus: peer {name} is {}",
                state.name()
            ),
        };
    }
    for (g, n) in counters.peers.iter().zip(p.counts()) {
        g.store(n, Ordering::Relaxed);
    }
}

/// Hands `line` to the ops thread and waits (off the runtime's thread) for its answer.
async fn ask_ops(
    requests: &crossbeam_channel::Sender<Request>,
    line: String,
) -> Result<String, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    requests
        .try_send(Request { line, answer: tx })
        .map_err(|_| "error: the run's ops thread is busy or gone\n".to_owned())?;
    tokio::task::spawn_blocking(move || rx.recv_timeout(ANSWER_TIMEOUT))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| "error: the run's ops thread did not answer in time\n".to_owned())
}

/// Runs `body` with a client connected to `url` (5 s at most to connect) on a single-threaded
/// runtime of the calling thread's own: the clients of `ringmaker ctl --bus`, the tests and the
/// bench. The URL's credentials never reach an error.
pub(crate) fn as_client<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    url: &str,
    name: &str,
    body: impl FnOnce(async_nats::Client) -> F,
) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("a runtime for the bus client: {e}"))?;
    rt.block_on(async {
        let shown = redact_url(url);
        let client = tokio::time::timeout(
            Duration::from_secs(5),
            async_nats::ConnectOptions::new().name(name).connect(url),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the bus at {shown} within 5 s"))?
        .map_err(|e| {
            anyhow::anyhow!("the bus at {shown}: {}", redact_error(&e.to_string(), url))
        })?;
        body(client).await
    })
}

/// The messages of `sub` that are JSON `T`s (others skipped), in arrival order, until `enough`
/// says so or `wait` has passed.
async fn gather<T: serde::de::DeserializeOwned>(
    sub: &mut async_nats::Subscriber,
    wait: Duration,
    mut enough: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    while !enough(&got) {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(m)) => {
                if let Ok(x) = serde_json::from_slice::<T>(&m.payload) {
                    got.push(x);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    got
}

/// `text` with `url`'s credentials, wherever they appear in it, replaced.
fn redact_error(text: &str, url: &str) -> String {
    match url
        .rsplit_once('@')
        .and_then(|(a, _)| a.split_once("://").map(|(_, u)| u).or(Some(a)))
    {
        Some(userinfo) if !userinfo.is_empty() => text.replace(userinfo, "***"),
        _ => text.to_owned(),
    }
}

/// `ringmaker ctl --bus`: sends `line` (`VERB [INSTRUMENT]`) to every engine under `prefix`, or
/// to `engine` alone, and gathers the acks until `expect` have come or `wait` has passed. The
/// acks in arrival order; an error when the server cannot be reached.
pub fn request(
    url: &str,
    prefix: &str,
    engine: Option<&str>,
    line: &str,
    expect: Option<usize>,
    wait: Duration,
) -> anyhow::Result<Vec<Ack>> {
    as_client(url, "ringmaker ctl", |client| async move {
        let subjects = Subjects::new(prefix);
        let subject = match engine {
            Some(e) => subjects.ctl_engine(e),
            None => subjects.ctl_all(),
        };
        let inbox = client.new_inbox();
        let mut replies = client.subscribe(inbox.clone()).await?;
        client
            .publish_with_reply(subject, inbox, line.to_owned().into())
            .await?;
        client.flush().await?;
        Ok(gather(&mut replies, wait, |acks: &[Ack]| {
            expect.is_some_and(|n| acks.len() >= n)
        })
        .await)
    })
}

/// Listens to every engine's heartbeats under `prefix` until `until` says it has seen enough or
/// `wait` has passed; the heartbeats in arrival order (what is not a [`Heartbeat`] is skipped).
pub fn watch_heartbeats(
    url: &str,
    prefix: &str,
    wait: Duration,
    until: impl FnMut(&[Heartbeat]) -> bool,
) -> anyhow::Result<Vec<Heartbeat>> {
    as_client(url, "ringmaker watch", |client| async move {
        let mut sub = client.subscribe(Subjects::new(prefix).heartbeats()).await?;
        Ok(gather(&mut sub, wait, until).await)
    })
}

/// What [`fetch_journal`] rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedJournal {
    /// The run (`{start ms}-{run id}`).
    pub run: String,
    /// Messages read.
    pub messages: u64,
    /// Segments and records written.
    pub segments: u64,
    /// Records written.
    pub records: u64,
}

/// The runs of `engine` in the archive under `prefix`, oldest first, with their message counts.
pub fn archived_runs(url: &str, prefix: &str, engine: &str) -> anyhow::Result<Vec<(String, u64)>> {
    as_client(url, "ringmaker replay", |client| async move {
        runs_of(&client, prefix, engine).await
    })
}

async fn runs_of(
    client: &async_nats::Client,
    prefix: &str,
    engine: &str,
) -> anyhow::Result<Vec<(String, u64)>> {
    use futures_util::TryStreamExt as _;
    let js = async_nats::jetstream::new(client.clone());
    let name = crate::archive::stream_name(prefix);
    let stream = js
        .get_stream(&name)
        .await
        .map_err(|e| anyhow::anyhow!("the journal archive (stream {name}): {e}"))?;
    let head = format!("{prefix}.journal.{engine}.");
    let mut info = stream.info_with_subjects(format!("{head}*")).await?;
    let mut runs = Vec::new();
    while let Some((subject, count)) = info.try_next().await? {
        if let Some(run) = subject.strip_prefix(&head) {
            if let Some(start) = crate::archive::run_start(run) {
                runs.push((start, run.to_owned(), count as u64));
            }
        }
    }
    runs.sort();
    Ok(runs.into_iter().map(|(_, r, n)| (r, n)).collect())
}

/// The journal chunk an archive message carries (its position in the headers, see
/// [`publish_chunk`]).
pub(crate) fn chunk_of(m: &async_nats::Message) -> anyhow::Result<crate::archive::Chunk> {
    let num = |k: &str| -> anyhow::Result<u64> {
        m.headers
            .as_ref()
            .and_then(|h| h.get(k))
            .and_then(|v| v.as_str().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("an archive message without {k}"))
    };
    Ok(crate::archive::Chunk {
        segment: num("Rm-Segment")?,
        offset: num("Rm-Offset")?,
        records: num("Rm-Records").unwrap_or(0),
        last_seq: num("Rm-Last-Seq").ok(),
        bytes: m.payload.to_vec(),
    })
}

/// Rebuilds a run of `engine` (`run`, or its newest) from the journal archive into `into` (a new
/// or empty directory).
pub fn fetch_journal(
    url: &str,
    prefix: &str,
    engine: &str,
    run: Option<&str>,
    into: &std::path::Path,
) -> anyhow::Result<FetchedJournal> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    if std::fs::read_dir(into).is_ok_and(|mut d| d.next().is_some()) {
        return Err(crate::archive::RebuildError::NotEmpty(into.to_path_buf()).into());
    }
    as_client(url, "ringmaker replay", |client| async move {
        let runs = runs_of(&client, prefix, engine).await?;
        let (run, total) =
            match run {
                Some(r) => runs.iter().find(|(x, _)| x == r).cloned().ok_or_else(|| {
                    anyhow::anyhow!("no run {r} of engine {engine} in the archive")
                })?,
                None => runs
                    .last()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("no run of engine {engine} in the archive"))?,
            };
        let js = async_nats::jetstream::new(client.clone());
        let stream = js
            .get_stream(crate::archive::stream_name(prefix))
            .await
            .map_err(|e| anyhow::anyhow!("the journal archive: {e}"))?;
        let mut rebuild = crate::archive::Rebuild::new(into)?;
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: format!("{prefix}.journal.{engine}.{run}"),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("reading the journal archive: {e}"))?;
        let mut got = 0u64;
        while got < total {
            let mut batch = consumer
                .fetch()
                .max_messages(256)
                .expires(Duration::from_secs(2))
                .messages()
                .await
                .map_err(|e| anyhow::anyhow!("reading the journal archive: {e}"))?;
            let before = got;
            while let Some(m) = batch.next().await {
                let m = m.map_err(|e| anyhow::anyhow!("reading the journal archive: {e}"))?;
                rebuild.put(&chunk_of(&m)?)?;
                got += 1;
            }
            anyhow::ensure!(
                got > before,
                "the archive holds {total} messages for run {run}, {got} arrived"
            );
        }
        Ok(FetchedJournal {
            run,
            messages: got,
            segments: rebuild.segments,
            records: rebuild.records,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert!(is_token("ny4-btc_1"));
        for bad in ["", "a.b", "a b", "*", ">", "é", &"x".repeat(65)] {
            assert!(!is_token(bad), "{bad:?}");
        }
        assert_eq!(
            server_of("nats://127.0.0.1:4222").as_deref(),
            Some("127.0.0.1:4222")
        );
        assert_eq!(
            server_of("tls://u:p@h.example:4443").as_deref(),
            Some("h.example:4443")
        );
        assert_eq!(server_of("h:1").as_deref(), Some("h:1"));
        for bad in [
            "",
            "nats://",
            "nats://h",
            "nats://h:0",
            "nats://h:x",
            "nats://:4222",
            "h:99999",
        ] {
            assert_eq!(server_of(bad), None, "{bad:?}");
        }
        assert_eq!(
            redact_url("nats://alice:s3cret@h:4222"),
            "nats://***@h:4222"
        );
        assert_eq!(redact_url("h:4222"), "h:4222");
        assert_eq!(
            redact_error("bad creds alice:s3cret at h", "nats://alice:s3cret@h:1"),
            "bad creds *** at h"
        );
        assert_eq!(redact_error("x", "nats://h:1"), "x");
    }

    #[test]
    fn the_shipped_example_is_valid_and_its_engine_the_defaults() {
        let c = RunConfig::from_toml(&test_support::config_text("bus-example.toml")).unwrap();
        let d = RunConfig::from_toml(&test_support::config_text("default.toml")).unwrap();
        assert_eq!(c.live.bus.url.as_deref(), Some("nats://10.0.0.5:4222"));
        assert_eq!(c.live.bus.engine.as_deref(), Some("ny4-btc-usdm"));
        assert_eq!(c.engine.instruments, d.engine.instruments);
        // Its [firm] is valid for both engines of the desk.
        for name in ["ny4-btc-usdm", "ny4-eth-usdm"] {
            assert_eq!(c.live.firm.check_engine(Some(name)), Ok(()));
        }
        assert_eq!(c.live.firm.asset.len(), 2);
    }

    fn hb(engine: &str, run_id: u64, stopping: bool) -> Heartbeat {
        Heartbeat {
            engine: engine.into(),
            run_id,
            seq: 1,
            unix_ms: 0,
            heartbeat_ms: 500,
            stopping,
            instruments: Vec::new(),
            journal: JournalProgress {
                segment: 0,
                records: 0,
                bytes: 0,
            },
            claims: Vec::new(),
            heard: Default::default(),
            firm: None,
        }
    }

    #[test]
    fn peers_go_live_stale_live_and_stopped() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Peers::new("me", 7);
        assert_eq!(p.on_heartbeat(hb("me", 7, false), at(0)), None);
        let first = p.on_heartbeat(hb("b", 1, false), at(0));
        assert_eq!(first, Some(("b".into(), PeerState::Live, None)));
        assert_eq!(p.on_heartbeat(hb("b", 1, false), at(500)), None);
        // Three periods of 500 ms, but at least 1 s: still live at 1.5 s after the last.
        assert!(p.expire(at(2_000)).is_empty());
        let stale = p.expire(at(2_001));
        assert_eq!(stale.len(), 1);
        assert_eq!((stale[0].0.as_str(), stale[0].1), ("b", PeerState::Stale));
        assert!(p.expire(at(5_000)).is_empty(), "said once");
        assert_eq!(p.counts(), [0, 1, 0]);
        assert_eq!(
            p.on_heartbeat(hb("b", 1, false), at(5_000)),
            Some(("b".into(), PeerState::Live, None))
        );
        assert_eq!(
            p.on_heartbeat(hb("b", 1, true), at(5_100)),
            Some(("b".into(), PeerState::Stopped, None))
        );
        // A stopped peer never goes stale.
        assert!(p.expire(at(60_000)).is_empty());
        assert_eq!(p.counts(), [0, 0, 1]);
        assert_eq!(p.name_conflicts, 0);
        // Another run under this engine's name.
        assert_eq!(p.on_heartbeat(hb("me", 8, false), at(0)), None);
        assert_eq!(p.name_conflicts, 1);
        assert!(p.get("me").is_none());
    }

    #[test]
    fn peers_are_bounded() {
        let now = Instant::now();
        let mut p = Peers::new("me", 0);
        for k in 0..MAX_PEERS + 10 {
            p.on_heartbeat(hb(&format!("e{k}"), 0, false), now);
        }
        assert_eq!(p.counts().iter().sum::<u64>(), MAX_PEERS as u64);
        assert_eq!(p.ignored, 10);
        // One already known is still heard.
        assert!(p.on_heartbeat(hb("e0", 0, true), now).is_some());
    }

    #[test]
    fn subjects() {
        let s = Subjects::new("firm.mm");
        assert_eq!(s.heartbeat("e1"), "firm.mm.heartbeat.e1");
        assert_eq!(s.ctl_all(), "firm.mm.ctl.all");
        // An engine named "all" cannot take the every-engine subject.
        assert_eq!(s.ctl_engine("all"), "firm.mm.ctl.engine.all");
        assert_eq!(s.ack("e1"), "firm.mm.ack.e1");
    }

    #[test]
    fn a_heartbeat_holds_the_published_state() {
        let cfg = RunConfig::from_toml(&test_support::config_text("default.toml")).unwrap();
        let ops = OpsState::new(cfg.engine.instruments.len());
        let g = &ops.instruments[0];
        g.position_lots.store(-3, Ordering::Relaxed);
        g.open_lots[0].store(10, Ordering::Relaxed);
        g.fair_value_ticks
            .store(600_000.0f64.to_bits(), Ordering::Relaxed);
        g.mode.store(engine::Mode::Halted as u64, Ordering::Relaxed);
        ops.engine.journal_records.store(42, Ordering::Relaxed);
        let bus = BusConfig {
            url: Some("nats://127.0.0.1:4222".into()),
            engine: Some("e1".into()),
            ..BusConfig::default()
        };
        let hb = heartbeat(&cfg, &bus, &ops, 99, 7, false);
        let back: Heartbeat = serde_json::from_slice(&serde_json::to_vec(&hb).unwrap()).unwrap();
        assert_eq!(back, hb);
        assert_eq!(
            (hb.engine.as_str(), hb.seq, hb.journal.records),
            ("e1", 7, 42)
        );
        let i = &hb.instruments[0];
        assert_eq!(i.key, "binance-usdm:BTCUSDT");
        assert_eq!(i.mode, "halted");
        assert_eq!(i.position_lots, -3);
        // 10 lots of 0.001 BTC at 60,000.0 USDT (600,000 ticks of 0.10): 600 USDT.
        assert!(
            (i.open_notional[0] - 600.0).abs() < 1e-9,
            "{}",
            i.open_notional[0]
        );
        assert!(
            (i.position_notional + 180.0).abs() < 1e-9,
            "{}",
            i.position_notional
        );
    }
}
