//! [`NetSource`]: the venue's live market streams as a [`MarketSource`] for the feed handler.
//!
//! One [`Conn`] per combined-stream URL (on USDⓈ-M one for `/public` book data and one for
//! `/market` trades and mark prices, per venue, [`super::routes`]), all driven by the feed thread, busy-polled:
//! [`MarketSource::next_input`] spins over them until a message arrives (or the stop flag is
//! set), never blocking in the kernel.
//!
//! # Book sync
//!
//! The feed handler asks for a snapshot at the start and after every gap. The request is held
//! until a depth diff of the instrument has arrived on the current connection (so the diffs that
//! must bridge the snapshot are being buffered, as Binance's procedure has it: a snapshot taken
//! before the first diff is buffered can miss the one diff that bridges it), then fetched on the [`SnapshotFetcher`] thread; the answer comes back as a
//! message bound to the instrument. A failed fetch is asked again a second later.
//!
//! # Reconnects
//!
//! A connection that ends (error, close, silence, its planned age) reports
//! [`Input::Disconnected`] for each instrument whose depth it carried (their books go invalid
//! and wait for a new snapshot), and is opened again after a jittered exponential backoff
//! ([`NetOptions::reconnect_min`] doubling to [`NetOptions::reconnect_max`], reset once a
//! connection has stayed open for a second).

use super::conn::{Conn, ConnError, ConnOptions, Poll};
use super::routes::{Endpoints, UrlError};
use super::snapshot::{FetchOptions, SnapshotFetcher};
use super::stamp::StampSource;
use crate::source::{Input, MarketSource, SnapshotReply, SourceCounts, SourceError};
use engine::{InstrumentId, Symbol, VenueFlavour};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One instrument the source carries.
#[derive(Debug, Clone)]
pub struct NetInstrument {
    /// Its id (its place in the config).
    pub id: InstrumentId,
    /// Venue symbol.
    pub symbol: Symbol,
    /// Its venue.
    pub venue: VenueFlavour,
}

impl NetInstrument {
    /// The instruments of `cfg`, by id.
    pub fn of_config(cfg: &engine::Config) -> Vec<NetInstrument> {
        cfg.instruments
            .iter()
            .enumerate()
            .map(|(i, c)| NetInstrument {
                id: i as InstrumentId,
                symbol: c.instrument.symbol,
                venue: c.venue,
            })
            .collect()
    }
}

/// How the source connects and what it subscribes.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Per venue, the endpoints (Binance production unless given).
    pub endpoints: Vec<Endpoints>,
    /// TLS client settings (see [`super::tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// The diff-depth stream kind (`depth@100ms`; also `depth`, `depth@0ms`, `depth@250ms`,
    /// `depth@500ms`).
    pub depth_stream: String,
    /// Subscribe `@bookTicker` too.
    pub book_ticker: bool,
    /// Subscribe `@trade` too.
    pub trades: bool,
    /// Subscribe `@markPrice@1s` too, for USDⓈ-M and COIN-M instruments (spot has no mark
    /// price); on USDⓈ-M it rides the `/market` route.
    pub mark_price: bool,
    /// `limit` of the REST snapshots.
    pub snapshot_limit: u32,
    /// First reconnect pause.
    pub reconnect_min: Duration,
    /// Longest reconnect pause.
    pub reconnect_max: Duration,
    /// Per connection.
    pub conn: ConnOptions,
    /// The snapshot thread's.
    pub fetch: FetchOptions,
    /// When nothing has arrived for a while, sleep this long between polls instead of spinning
    /// (`None`: busy-poll, for a feed thread on a core of its own; `Some`: a host whose hot
    /// threads share cores, where spinning takes the time the others need).
    pub idle_sleep: Option<Duration>,
}

impl NetOptions {
    /// Binance production, `depth@100ms`, bookTicker, trades and (futures) mark prices,
    /// 1,000-level snapshots.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> NetOptions {
        NetOptions {
            endpoints: VenueFlavour::ALL.map(Endpoints::binance).to_vec(),
            tls,
            depth_stream: "depth@100ms".into(),
            book_ticker: true,
            trades: true,
            mark_price: true,
            snapshot_limit: 1000,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            conn: ConnOptions::default(),
            fetch: FetchOptions::default(),
            idle_sleep: None,
        }
    }
}

/// Why the source could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No endpoints for an instrument's venue.
    #[error("no endpoints for {0}")]
    NoEndpoints(&'static str),
    /// A stream name no route knows.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The snapshot thread did not start.
    #[error("starting the snapshot thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What the source did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Connections opened (WebSocket upgraded).
    pub connects: u64,
    /// Connections that ended (each is reopened).
    pub disconnects: u64,
    /// Connections that could not be started (resolve, socket).
    pub connect_failures: u64,
    /// Messages received.
    pub messages: u64,
    /// Messages stamped by the kernel in software.
    pub stamped_software: u64,
    /// Messages stamped by the NIC.
    pub stamped_hardware: u64,
    /// Messages without a kernel stamp (a TSC reading instead).
    pub stamped_tsc: u64,
    /// Snapshot fetches started.
    pub snapshot_fetches: u64,
    /// Snapshot fetches that failed (asked again).
    pub snapshot_failures: u64,
    /// Pings answered.
    pub pongs: u64,
}

/// [`NetStats`] as shared counters: the feed thread adds, anyone may read
/// ([`NetSource::counters`]).
#[derive(Debug, Default)]
pub struct NetCounters {
    connects: AtomicU64,
    disconnects: AtomicU64,
    connect_failures: AtomicU64,
    messages: AtomicU64,
    stamped_software: AtomicU64,
    stamped_hardware: AtomicU64,
    stamped_tsc: AtomicU64,
    snapshot_fetches: AtomicU64,
    snapshot_failures: AtomicU64,
    pongs: AtomicU64,
}

impl NetCounters {
    /// The counts now.
    pub fn snapshot(&self) -> NetStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NetStats {
            connects: g(&self.connects),
            disconnects: g(&self.disconnects),
            connect_failures: g(&self.connect_failures),
            messages: g(&self.messages),
            stamped_software: g(&self.stamped_software),
            stamped_hardware: g(&self.stamped_hardware),
            stamped_tsc: g(&self.stamped_tsc),
            snapshot_fetches: g(&self.snapshot_fetches),
            snapshot_failures: g(&self.snapshot_failures),
            pongs: g(&self.pongs),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl std::fmt::Display for NetStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages ({} kernel software stamps, {} hardware, {} without: TSC), {} connects, \
             {} disconnects, {} failed connects, {} snapshots ({} failed), {} pings answered",
            self.messages,
            self.stamped_software,
            self.stamped_hardware,
            self.stamped_tsc,
            self.connects,
            self.disconnects,
            self.connect_failures,
            self.snapshot_fetches,
            self.snapshot_failures,
            self.pongs
        )
    }
}

struct Link {
    conn: Conn,
    venue: VenueFlavour,
    /// Instruments whose depth stream rides this connection.
    depth_of: Vec<InstrumentId>,
    /// When to try opening it again.
    retry_at: Instant,
    /// The current reconnect pause.
    backoff: Duration,
    /// Open, and a message came since.
    flowing: bool,
    opened_at: Option<Instant>,
    /// The connection's pong count already added to the counters.
    pongs_seen: u64,
}

/// The live market streams (see the module documentation).
pub struct NetSource {
    links: Vec<Link>,
    /// Per instrument: the depth link, the snapshot URL, wanted, in flight, retry time.
    snap: Vec<SnapState>,
    fetcher: SnapshotFetcher,
    opts: NetOptions,
    stop: Arc<AtomicBool>,
    /// Disconnects still to report.
    lost: Vec<(InstrumentId, i64)>,
    /// The snapshot body handed out last.
    body: Vec<u8>,
    /// The latency split of the stream message handed out last (`None` after a snapshot).
    stages: Option<crate::source::WireStages>,
    /// Round-robin start.
    next_link: usize,
    stats: Arc<NetCounters>,
    counts: SourceCounts,
    jitter: u64,
    /// Where what arrives is recorded, as received.
    recorder: Option<crate::record::RecordSender>,
    /// Keeps the kernel's software receive stamping on (see [`super::stamp::RxTimestampingHold`]);
    /// `None` if the kernel refused (reads then fall back to TSC stamps, counted).
    _stamping: Option<super::stamp::RxTimestampingHold>,
}

#[derive(Debug, Clone)]
struct SnapState {
    link: usize,
    url: String,
    /// `"<symbol>@<depth stream>"`, to see a depth diff of it go by.
    needle: Vec<u8>,
    /// A depth diff of it came on the current connection (the snapshot may be fetched).
    diff_seen: bool,
    wanted: bool,
    in_flight: bool,
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for NetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetSource")
            .field(
                "links",
                &self.links.iter().map(|l| l.conn.url()).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl NetSource {
    /// The connections for `instruments` (each instrument's depth, and bookTicker, trades and
    /// mark prices as `opts` say), not yet open: they open on the first [`MarketSource::next_input`]. `stop`
    /// ends `next_input` (it returns `None`).
    pub fn new(
        instruments: &[NetInstrument],
        opts: NetOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<NetSource, NetError> {
        let mut links: Vec<Link> = Vec::new();
        let mut snap = Vec::new();
        let n = instruments
            .iter()
            .map(|i| i.id as usize + 1)
            .max()
            .unwrap_or(0);
        snap.resize(
            n,
            SnapState {
                link: usize::MAX,
                url: String::new(),
                needle: Vec::new(),
                diff_seen: false,
                wanted: false,
                in_flight: false,
                retry_at: None,
            },
        );
        for venue in VenueFlavour::ALL {
            let of_venue: Vec<&NetInstrument> =
                instruments.iter().filter(|i| i.venue == venue).collect();
            if of_venue.is_empty() {
                continue;
            }
            let ends = opts
                .endpoints
                .iter()
                .find(|e| e.venue == venue)
                .ok_or(NetError::NoEndpoints(venue.name()))?;
            let mut streams = Vec::new();
            for i in &of_venue {
                let s = i.symbol.as_str().to_ascii_lowercase();
                streams.push(format!("{s}@{}", opts.depth_stream));
                if opts.book_ticker {
                    streams.push(format!("{s}@bookTicker"));
                }
                if opts.trades {
                    streams.push(format!("{s}@trade"));
                }
                if opts.mark_price && venue != VenueFlavour::BinanceSpot {
                    streams.push(format!("{s}@markPrice@1s"));
                }
            }
            let (host, port) = ends.ws_host_port();
            for path in ends.stream_paths(&streams)? {
                let depth_of: Vec<InstrumentId> = of_venue
                    .iter()
                    .filter(|i| {
                        let name = format!(
                            "{}@{}",
                            i.symbol.as_str().to_ascii_lowercase(),
                            opts.depth_stream
                        );
                        path.split(['=', '/']).any(|p| p == name)
                    })
                    .map(|i| i.id)
                    .collect();
                for &id in &depth_of {
                    let s = &mut snap[id as usize];
                    s.link = links.len();
                    let sym = instruments
                        .iter()
                        .find(|i| i.id == id)
                        .map_or(String::new(), |i| i.symbol.as_str().to_ascii_lowercase());
                    s.needle = format!("\"{sym}@{}\"", opts.depth_stream).into_bytes();
                    s.url = ends.depth_url(
                        instruments
                            .iter()
                            .find(|i| i.id == id)
                            .map_or("", |i| i.symbol.as_str()),
                        opts.snapshot_limit,
                    );
                }
                links.push(Link {
                    conn: Conn::new(host, port, &path, Arc::clone(&opts.tls), opts.conn.clone()),
                    venue,
                    depth_of,
                    retry_at: Instant::now(),
                    backoff: opts.reconnect_min,
                    flowing: false,
                    opened_at: None,
                    pongs_seen: 0,
                });
            }
        }
        let fetcher = SnapshotFetcher::spawn(Arc::clone(&opts.tls), opts.fetch.clone())?;
        let max = opts.conn.max_message.max(4096);
        Ok(NetSource {
            links,
            snap,
            fetcher,
            stop,
            lost: Vec::with_capacity(n.max(1)),
            body: Vec::with_capacity(max),
            stages: None,
            next_link: 0,
            stats: Arc::default(),
            counts: SourceCounts::default(),
            jitter: 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()),
            recorder: None,
            _stamping: super::stamp::RxTimestampingHold::new().ok(),
            opts,
        })
    }

    /// Records every message and snapshot as received (before it is parsed in place), through
    /// a recorder thread's sender (which never blocks: it drops and counts when behind).
    pub fn record_to(&mut self, sender: crate::record::RecordSender) {
        self.recorder = Some(sender);
    }

    /// What it did so far.
    pub fn stats(&self) -> NetStats {
        self.stats.snapshot()
    }

    /// The shared counters, to read from another thread while the source runs.
    pub fn counters(&self) -> Arc<NetCounters> {
        Arc::clone(&self.stats)
    }

    /// The stream URLs it opens.
    pub fn urls(&self) -> Vec<String> {
        self.links.iter().map(|l| l.conn.url()).collect()
    }

    /// Why each connection ended last (`None`: never ended).
    pub fn last_errors(&self) -> Vec<Option<ConnError>> {
        self.links
            .iter()
            .map(|l| l.conn.last_error().cloned())
            .collect()
    }

    fn jittered(&mut self, d: Duration) -> Duration {
        // xorshift64: half to all of the pause.
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let frac = 0.5 + (self.jitter % 1000) as f64 / 2000.0;
        d.mul_f64(frac)
    }

    /// Opens what is due, starts the snapshot fetches that may start.
    fn housekeep(&mut self, now: Instant) {
        for k in 0..self.links.len() {
            let l = &mut self.links[k];
            if l.conn.is_closed() && now >= l.retry_at {
                if let Err(e) = l.conn.open() {
                    bump(&self.stats.connect_failures);
                    let b = l.backoff;
                    l.backoff = (l.backoff * 2).min(self.opts.reconnect_max);
                    let pause = self.jittered(b);
                    let l = &mut self.links[k];
                    l.retry_at = now + pause;
                    l.conn.close(e);
                }
            }
        }
        for i in 0..self.snap.len() {
            let s = &self.snap[i];
            if !s.wanted || s.in_flight || s.link == usize::MAX {
                continue;
            }
            // Binance's procedure: the diffs are being buffered before the snapshot is asked.
            if s.retry_at.is_some_and(|t| now < t) || !s.diff_seen {
                continue;
            }
            if self.fetcher.request(i as InstrumentId, s.url.clone()) {
                bump(&self.stats.snapshot_fetches);
                let s = &mut self.snap[i];
                s.wanted = false;
                s.in_flight = true;
            }
        }
    }

    fn ended(&mut self, k: usize, now: Instant) {
        bump(&self.stats.disconnects);
        let wall = super::stamp::system_now_ns();
        let l = &mut self.links[k];
        let long_lived = l
            .opened_at
            .is_some_and(|t| now.duration_since(t) >= Duration::from_secs(1));
        if long_lived {
            l.backoff = self.opts.reconnect_min;
        }
        let b = l.backoff;
        l.backoff = (l.backoff * 2).min(self.opts.reconnect_max);
        l.flowing = false;
        l.opened_at = None;
        for &id in &l.depth_of {
            self.lost.push((id, wall));
            if let Some(s) = self.snap.get_mut(id as usize) {
                s.diff_seen = false;
            }
        }
        let pause = self.jittered(b);
        self.links[k].retry_at = now + pause;
    }
}

/// Empty polls before an idle feed sleeps (`NetOptions::idle_sleep`).
const IDLE_SPINS: u32 = 256;

impl MarketSource for NetSource {
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
        let mut spins = 0u32;
        // Empty polls in a row (`NetOptions::idle_sleep`).
        let mut idle_polls = 0u32;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some((instrument, local_ns)) = self.lost.pop() {
                return Some(Ok(Input::Disconnected {
                    instrument,
                    local_ns,
                }));
            }
            if let Some(s) = self.fetcher.poll() {
                let st = &mut self.snap[s.instrument as usize];
                st.in_flight = false;
                match s.body {
                    Ok(body) => {
                        self.body = body;
                        self.stages = None;
                        self.counts.read += 1;
                        if let Some(r) = &self.recorder {
                            r.snapshot(s.instrument, s.local_ns, &self.body);
                        }
                        return Some(Ok(Input::Message {
                            json: &mut self.body,
                            local_ns: s.local_ns,
                            instrument: Some(s.instrument),
                        }));
                    }
                    Err(_) => {
                        bump(&self.stats.snapshot_failures);
                        st.wanted = true;
                        st.retry_at = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            }
            let now = Instant::now();
            if spins % 64 == 0 {
                self.housekeep(now);
            }
            spins = spins.wrapping_add(1);
            let n = self.links.len();
            // What the connections' buffers already hold first (no socket call: a burst read
            // at once goes out without a poll of every socket between its messages), then the
            // sockets.
            for j in 0..2 * n {
                let k = (self.next_link + j) % n;
                let polled = if j < n {
                    self.links[k].conn.poll_buffered(now)
                } else {
                    self.links[k].conn.poll(now)
                };
                let pongs = self.links[k].conn.pongs;
                if pongs != self.links[k].pongs_seen {
                    self.stats
                        .pongs
                        .fetch_add(pongs - self.links[k].pongs_seen, Ordering::Relaxed);
                    self.links[k].pongs_seen = pongs;
                }
                match polled {
                    Poll::Pending => {}
                    Poll::Opened => {
                        bump(&self.stats.connects);
                        self.links[k].opened_at = Some(now);
                    }
                    Poll::Ended => self.ended(k, now),
                    Poll::Message(stamp) => {
                        self.next_link = (k + 1) % n;
                        bump(&self.stats.messages);
                        match stamp.source {
                            StampSource::Software => bump(&self.stats.stamped_software),
                            StampSource::Hardware => bump(&self.stats.stamped_hardware),
                            StampSource::Tsc => bump(&self.stats.stamped_tsc),
                        }
                        self.counts.read += 1;
                        let link = &mut self.links[k];
                        link.flowing = true;
                        if !link.depth_of.is_empty() {
                            // The stream name leads a combined message.
                            let msg = link.conn.message();
                            let head = &msg[..msg.len().min(80)];
                            for &id in &link.depth_of {
                                if let Some(s) = self.snap.get_mut(id as usize) {
                                    if !s.diff_seen && contains(head, &s.needle) {
                                        s.diff_seen = true;
                                    }
                                }
                            }
                        }
                        let link = &mut self.links[k];
                        self.stages = Some(link.conn.stages());
                        if let Some(r) = &self.recorder {
                            r.stream_any(link.venue, stamp.ns, link.conn.message());
                        }
                        return Some(Ok(Input::Message {
                            json: link.conn.message(),
                            local_ns: stamp.ns,
                            instrument: None,
                        }));
                    }
                }
            }
            idle_polls = idle_polls.saturating_add(1);
            match self.opts.idle_sleep {
                Some(d) if idle_polls > IDLE_SPINS => std::thread::sleep(d),
                _ => std::hint::spin_loop(),
            }
        }
    }

    fn wire_stages(&self) -> Option<crate::source::WireStages> {
        self.stages
    }

    fn request_snapshot(&mut self, instrument: InstrumentId) -> SnapshotReply {
        self.counts.snapshot_requests += 1;
        match self.snap.get_mut(instrument as usize) {
            Some(s) if s.link != usize::MAX => {
                s.wanted = true;
                s.retry_at = None;
                SnapshotReply::Pending
            }
            _ => SnapshotReply::Unavailable,
        }
    }

    fn counts(&self) -> SourceCounts {
        self.counts
    }

    fn reconnects(&self) -> u64 {
        // Every connect after each link's first.
        self.stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(self.links.len() as u64)
    }

    fn origin(&self) -> Option<String> {
        Some(format!("{} connections", self.links.len()))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Futures instruments also get `@markPrice@1s` — on USDⓈ-M on the `/market` route, where
    /// Binance serves it (an un-routed or `/public` subscription would never deliver) —, spot
    /// none; `mark_price = false` leaves it out.
    #[test]
    fn futures_subscribe_mark_prices_on_the_market_route_and_spot_does_not() {
        let inst = |id, s: &str, venue| NetInstrument {
            id,
            symbol: Symbol::new(s.as_bytes()).unwrap(),
            venue,
        };
        let insts = [
            inst(0, "BTCUSDT", VenueFlavour::BinanceUsdm),
            inst(1, "BTCUSDT", VenueFlavour::BinanceSpot),
            inst(2, "BTCUSD_PERP", VenueFlavour::BinanceCoinm),
        ];
        let tls = super::super::tls::client_config(None).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let src =
            NetSource::new(&insts, NetOptions::new(Arc::clone(&tls)), Arc::clone(&stop)).unwrap();
        assert_eq!(
            src.urls(),
            [
                "wss://fstream.binance.com:443/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker",
                "wss://fstream.binance.com:443/market/stream?streams=btcusdt@trade/btcusdt@markPrice@1s",
                "wss://dstream.binance.com:443/stream?streams=btcusd_perp@depth@100ms/btcusd_perp@bookTicker/btcusd_perp@trade/btcusd_perp@markPrice@1s",
                "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade",
            ]
        );
        let mut opts = NetOptions::new(tls);
        opts.mark_price = false;
        let src = NetSource::new(&insts[..1], opts, stop).unwrap();
        assert_eq!(
            src.urls(),
            [
                "wss://fstream.binance.com:443/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker",
                "wss://fstream.binance.com:443/market/stream?streams=btcusdt@trade",
            ]
        );
    }
}
