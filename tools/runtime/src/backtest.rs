//! Backtest driver: recording → `feeds` decode and sync → engine → `gateway::sim` → execution
//! reports back into the engine. One thread, simulated time, deterministic.
//!
//! # Time
//!
//! Simulated time is the recording's local receive time, forced monotonic: a line stamped earlier
//! than the one before it (the recorder's streams are not strictly ordered) is treated as
//! arriving at the previous line's time, and every event it produces is restamped with that
//! time. Events replayed from the sync buffer when the snapshot arrives are stamped with the
//! snapshot's time. So the engine, the venue and the journal all see one non-decreasing clock.
//!
//! Before each market message, everything due at or before its time happens first, one due time
//! at a time: timer ticks (every `timer_interval`), and the venue's deliveries (orders reaching
//! it, reports reaching the engine). Intents the engine makes in reaction are sent at that time.

use crate::event_cache;
use crate::hedge_metrics::HedgeMetrics;
use crate::hlog::IntervalStream;
use crate::host::{Host, Recorder};
use crate::metrics::{Metrics, Sample};
use anyhow::Context;
use engine::{Config, Engine, Event, Intent, ModeChange, Sink};
use feeds::{
    DataSpec, FeedHandler, FeedStats, Input, MarketFeed, MarketSource, MergedSource, SnapshotReply,
    SourceCounts, SourceError, Step, SyncStats,
};
use gateway::sim::{BpsFees, ConstantLatency, ProbQueue, RiskAverseQueue, SimVenue};
use gateway::{SimStats, Venue};
use hdrhistogram::Histogram;
use quanta::Clock;
use std::path::PathBuf;
use std::sync::Arc;

/// The recordings of `data`, each bound to its instrument of `cfg` ([`feeds::bind_config`]: by
/// the argument, by the only instrument, or by what the file holds), merged in time order, one
/// recording per instrument ([`MergedSource`]).
pub fn open_recordings(cfg: &Config, data: &[DataSpec]) -> anyhow::Result<MergedSource> {
    let files = feeds::bind_config(cfg, data)?;
    Ok(MergedSource::open(&files)?)
}

/// Which queue-position model the simulated venue uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueueKind {
    /// Only trades advance our place in the queue.
    RiskAverse,
    /// Level decreases also advance it, by a power-law share.
    Prob {
        /// The power of the share function.
        power: f64,
    },
}

/// Backtest settings beyond the engine config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Recording files, each bound to one instrument of the config (explicitly, or by what it
    /// holds: [`feeds::binding`]); the files of one instrument in arrival order.
    pub data: Vec<DataSpec>,
    /// Queue model.
    pub queue: QueueKind,
    /// Engine → venue latency, ns.
    pub entry_latency_ns: i64,
    /// Venue → engine latency, ns.
    pub response_latency_ns: i64,
    /// Timer tick period, ns of simulated time.
    pub timer_interval_ns: i64,
    /// Where to write the per-second `on_event` latency intervals (an HdrHistogram interval
    /// log, of the calls timed: [`TIMED_EVERY`]), as they complete; `None`: only the whole-run
    /// histogram is kept.
    pub latency_log: Option<PathBuf>,
    /// The event cache to read the decoded recordings from, and to write them into on a miss
    /// ([`crate::event_cache`]); `None`: decode every time.
    pub event_cache: Option<EventCache>,
}

/// Where a backtest keeps decoded recordings ([`crate::event_cache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCache {
    /// The directory of its entries.
    pub dir: PathBuf,
    /// After writing an entry, the oldest are removed until the entries fit in this many bytes.
    pub max_bytes: u64,
}

/// Where a backtest's market events came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// Decoded from the recordings (no event cache, or one that could not be used).
    Decoded,
    /// Read from this event cache entry.
    Cache(PathBuf),
    /// Decoded from the recordings and written to this event cache entry; `evicted` older
    /// entries were removed to stay within the cache's size.
    Cached {
        /// The new entry.
        path: PathBuf,
        /// Entries removed.
        evicted: usize,
    },
}

/// What a backtest produced.
#[derive(Debug)]
pub struct Outcome {
    /// Metrics for the report and plots, one per instrument (by id).
    pub metrics: Vec<Metrics>,
    /// What each `[[hedge]]` group did (config order).
    pub hedging: Vec<HedgeMetrics>,
    /// Book sync counters per instrument (by id).
    pub sync_by_instrument: Vec<SyncStats>,
    /// Venue counters.
    pub sim: SimStats,
    /// Engine counters.
    pub engine: engine::EngineStats,
    /// Latency of `on_event` (engine + journal append), ns, of the calls timed: one in
    /// [`TIMED_EVERY`] and the first of each second of the latency log.
    pub on_event_ns: Histogram<u64>,
    /// Per-second intervals written to [`Settings::latency_log`].
    pub intervals: u64,
    /// Lines read, lines skipped.
    pub lines: (u64, u64),
    /// The first [`SKIPPED_SHOWN`] skipped lines, each with where it is and why.
    pub skipped: Vec<String>,
    /// Inputs consumed by the engine.
    pub events: u64,
    /// Feed handler counters (decode, snapshot requests).
    pub feed: FeedStats,
    /// Book sync counters over every instrument (diffs applied, gaps, resyncs).
    pub sync: SyncStats,
    /// Where the market events came from.
    pub data_source: DataSource,
    /// Why the event cache could not be read or written (the run decoded instead), each a
    /// sentence naming the entry.
    pub cache_problems: Vec<String>,
}

/// Collects the engine's intents for the venue.
#[derive(Default)]
struct Outbox {
    intents: Vec<Intent>,
    modes: u64,
}

impl Sink for Outbox {
    #[inline]
    fn intent(&mut self, i: &Intent) {
        self.intents.push(*i);
    }
    fn mode_change(&mut self, _: &ModeChange) {
        self.modes += 1;
    }
}

/// Market data from a journal: the market events (book, best bid/offer, trades) it holds, in
/// their batches, with no decoding. Execution reports, reconciliation, timers, controls and
/// outputs in it are skipped: the venue and the engine produce their own. Cloning is cheap (the events are shared) and
/// starts again from the first batch.
#[derive(Debug)]
pub struct JournalSource {
    data: Arc<JournalEvents>,
    next: usize,
}

#[derive(Debug)]
struct JournalEvents {
    events: Vec<Event>,
    times: Vec<i64>,
    batch_ends: Vec<usize>,
}

impl Clone for JournalSource {
    fn clone(&self) -> JournalSource {
        JournalSource {
            data: Arc::clone(&self.data),
            next: 0,
        }
    }
}

impl JournalSource {
    /// Reads the market events of the journal in `dir` (verifying every record).
    pub fn open(dir: &std::path::Path) -> anyhow::Result<JournalSource> {
        use crate::record::{events_in, KIND_BATCH_END, KIND_EVENT, KIND_EVENTS};
        let reader = journal::Reader::open(dir, journal::RecoveryMode::TolerateTornTail)
            .with_context(|| format!("opening {}", dir.display()))?;
        let mut events = Vec::new();
        let mut times = Vec::new();
        let mut batch_ends = Vec::new();
        for rec in reader.records() {
            let rec = rec?;
            match rec.kind {
                KIND_EVENT | KIND_EVENTS => {
                    for ev in events_in(rec.kind, rec.payload).into_iter().flatten() {
                        let ev = ev.with_context(|| format!("seq {}", rec.seq))?;
                        // Market data only: what the venue, the timer, the operator and
                        // reconciliation said belongs to that run, not to this one.
                        if ev.kind().is_market_data() {
                            times.push(ev.local_time_ns);
                            events.push(ev);
                        }
                    }
                }
                KIND_BATCH_END
                    if batch_ends.last() != Some(&events.len()) && !events.is_empty() =>
                {
                    batch_ends.push(events.len());
                }
                _ => {}
            }
        }
        if batch_ends.last() != Some(&events.len()) && !events.is_empty() {
            batch_ends.push(events.len());
        }
        Ok(JournalSource {
            data: Arc::new(JournalEvents {
                events,
                times,
                batch_ends,
            }),
            next: 0,
        })
    }

    /// Market events held.
    pub fn len(&self) -> usize {
        self.data.events.len()
    }

    /// Whether it holds no market event.
    pub fn is_empty(&self) -> bool {
        self.data.events.is_empty()
    }
}

impl MarketSource for JournalSource {
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
        let d = &*self.data;
        let end = *d.batch_ends.get(self.next)?;
        let start = if self.next == 0 {
            0
        } else {
            d.batch_ends[self.next - 1]
        };
        self.next += 1;
        Some(Ok(Input::Events {
            events: &d.events[start..end],
            local_ns: d.times[start],
        }))
    }

    /// A journal holds what the engine saw, already synced: there is no snapshot to fetch.
    fn request_snapshot(&mut self, _instrument: engine::InstrumentId) -> SnapshotReply {
        SnapshotReply::Unavailable
    }

    fn counts(&self) -> SourceCounts {
        SourceCounts {
            read: self.next as u64,
            ..SourceCounts::default()
        }
    }
}

/// The feed a backtest of `cfg` reads: `source` through a handler with each instrument's sync
/// rule (a journal's events pass through a handler with none).
pub fn feed<S: MarketSource>(cfg: &Config, source: S) -> MarketFeed<S> {
    MarketFeed::new(source, FeedHandler::from_config(cfg))
}

/// The feed of a journal's market events (already synced: no handler rules).
pub fn journal_feed(source: JournalSource) -> MarketFeed<JournalSource> {
    MarketFeed::new(source, FeedHandler::passthrough())
}

/// Runs a backtest on `settings.data`. `progress` is called now and then with lines read.
///
/// The recordings are read, inflated, decoded and synced on a second thread (`decode`), which
/// hands the engine thread chunks of ready events through a bounded channel (at most
/// [`CHUNKS_IN_FLIGHT`] waiting, their buffers recycled); with `settings.event_cache`, it reads
/// them from the cache entry of these recordings instead, or writes that entry as it decodes.
/// Either way the engine consumes the same events in the same batches as [`run_source`] on
/// [`feed`] would, so the outcome is the same.
pub fn run<R: Recorder>(
    cfg: &Config,
    settings: &Settings,
    recorder: R,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<(Outcome, R)> {
    let (producer, rx, back_tx) = spawn_decode(cfg, &settings.data, settings.event_cache.clone())?;
    let mut source = MarketFeed::new(ChunkSource::new(rx, back_tx), FeedHandler::passthrough());
    let ran = run_source(cfg, settings, recorder, &mut source, progress);
    // A producer still sending (the run stopped early) sees the channel closed and stops.
    drop(source);
    let end = match producer.join() {
        Ok(end) => end?,
        Err(_) => anyhow::bail!("the decode thread panicked"),
    };
    if end.complete && end.meta.batches == 0 {
        return Err(nothing_usable(end.meta.lines, &end.meta.skipped));
    }
    let (mut o, r) = ran?;
    let m = end.meta;
    o.lines = m.lines;
    o.skipped = m.skipped;
    o.feed = m.feed;
    o.sync = m.sync;
    o.sync_by_instrument = m.sync_by_instrument;
    o.data_source = end.source;
    o.cache_problems = end.problems;
    Ok((o, r))
}

/// Starts the decode thread on `data` (or its cache entry): the chunks come out of the receiver,
/// and go back (for reuse) through the sender.
#[allow(clippy::type_complexity)]
fn spawn_decode(
    cfg: &Config,
    data: &[DataSpec],
    cache: Option<EventCache>,
) -> anyhow::Result<(
    std::thread::JoinHandle<anyhow::Result<Produced>>,
    std::sync::mpsc::Receiver<Chunk>,
    std::sync::mpsc::SyncSender<Chunk>,
)> {
    anyhow::ensure!(!cfg.instruments.is_empty(), "the config has no instrument");
    let files = feeds::bind_config(cfg, data)?;
    let market = feed(cfg, MergedSource::open(&files)?);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT + 2);
    let job = Produce {
        cfg: cfg.clone(),
        files,
        market,
        cache,
        tx,
        back: back_rx,
    };
    let producer = std::thread::Builder::new()
        .name("decode".into())
        .spawn(move || job.run())
        .context("starting the decode thread")?;
    Ok((producer, rx, back_tx))
}

/// Chunks of decoded events that may wait for the engine thread (each at most
/// [`CHUNK_EVENTS`] events, unless one venue message alone holds more).
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// Events in a chunk (1 MiB of events).
pub const CHUNK_EVENTS: usize = 16_384;

/// Decoded events on their way from the decode thread to the engine thread: whole batches
/// (one venue message's events each), with their receive times.
#[derive(Debug)]
struct Chunk {
    events: Vec<Event>,
    batches: Vec<event_cache::BatchEnd>,
    /// Lines read when the chunk was sent (progress).
    lines: u64,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            events: Vec::with_capacity(CHUNK_EVENTS),
            batches: Vec::with_capacity(CHUNK_EVENTS / 4),
            lines: 0,
        }
    }
}

/// The engine thread's end of the decode thread's channel, as a [`MarketSource`] of ready
/// events (read through [`FeedHandler::passthrough`]).
struct ChunkSource {
    rx: std::sync::mpsc::Receiver<Chunk>,
    back: std::sync::mpsc::SyncSender<Chunk>,
    cur: Option<Chunk>,
    next: usize,
    batches: u64,
}

impl ChunkSource {
    fn new(rx: std::sync::mpsc::Receiver<Chunk>, back: std::sync::mpsc::SyncSender<Chunk>) -> Self {
        ChunkSource {
            rx,
            back,
            cur: None,
            next: 0,
            batches: 0,
        }
    }
}

impl MarketSource for ChunkSource {
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
        while self
            .cur
            .as_ref()
            .is_none_or(|c| self.next >= c.batches.len())
        {
            if let Some(done) = self.cur.take() {
                // Back to the decode thread for reuse; dropped if it has enough.
                let _ = self.back.try_send(done);
            }
            self.cur = Some(self.rx.recv().ok()?);
            self.next = 0;
        }
        let c = self.cur.as_ref()?;
        let start = match self.next {
            0 => 0,
            k => c.batches[k - 1].0 as usize,
        };
        let (end, local_ns) = c.batches[self.next];
        self.next += 1;
        self.batches += 1;
        Some(Ok(Input::Events {
            events: &c.events[start..end as usize],
            local_ns,
        }))
    }

    /// The decode thread synced the books already: there is no snapshot to fetch.
    fn request_snapshot(&mut self, _instrument: engine::InstrumentId) -> SnapshotReply {
        SnapshotReply::Unavailable
    }

    fn counts(&self) -> SourceCounts {
        SourceCounts {
            read: self.cur.as_ref().map_or(0, |c| c.lines),
            ..SourceCounts::default()
        }
    }
}

/// The decode thread's job: the recordings (or their cache entry) into chunks.
struct Produce {
    cfg: Config,
    files: Vec<Vec<PathBuf>>,
    market: MarketFeed<MergedSource>,
    cache: Option<EventCache>,
    tx: std::sync::mpsc::SyncSender<Chunk>,
    back: std::sync::mpsc::Receiver<Chunk>,
}

/// What the decode thread did.
struct Produced {
    meta: event_cache::Meta,
    source: DataSource,
    problems: Vec<String>,
    /// Every batch was handed over (`false`: the engine thread stopped taking them).
    complete: bool,
}

impl Produce {
    fn run(self) -> anyhow::Result<Produced> {
        let mut problems = Vec::new();
        let mut writer = None;
        let mut skip = 0;
        if let Some(cache) = self.cache.clone() {
            match event_cache::Key::of(&self.cfg, &self.files) {
                Err(e) => problems.push(format!("the event cache is not used: {e:#}")),
                Ok(key) => {
                    match event_cache::CacheReader::open(&cache.dir, &key) {
                        Ok(Some(reader)) => match self.replay_cache(reader) {
                            Ok(mut done) => {
                                done.problems = problems;
                                return Ok(done);
                            }
                            Err((e, sent)) => {
                                problems.push(format!(
                                    "{e}: decoded the recordings instead (from batch {sent})"
                                ));
                                skip = sent;
                            }
                        },
                        Ok(None) => {}
                        Err(e) => problems.push(format!("{e}: decoded the recordings instead")),
                    }
                    match event_cache::CacheWriter::create(&cache.dir, &key) {
                        Ok(w) => writer = Some((w, cache)),
                        Err(e) => problems.push(format!("the event cache is not written: {e:#}")),
                    }
                }
            }
        }
        self.decode(writer, skip, problems)
    }

    /// Decodes the recordings into chunks for the engine thread (and the cache entry being
    /// written), handing over all but the first `skip` batches (those the engine thread already
    /// has from a cache entry that turned out damaged).
    fn decode(
        mut self,
        mut writer: Option<(event_cache::CacheWriter, EventCache)>,
        skip: u64,
        mut problems: Vec<String>,
    ) -> anyhow::Result<Produced> {
        let mut chunk = Chunk::new();
        let mut batch: Vec<Event> = Vec::with_capacity(8192);
        let mut skipped = Vec::new();
        // Batches made, and made before the current chunk.
        let (mut batches, mut before) = (0u64, 0u64);
        let mut open = true;
        while open {
            batch.clear();
            let Some(step) = self.market.next(&mut batch) else {
                break;
            };
            let Some(t) = market_batch(step, &batch, &self.market, &mut skipped) else {
                continue;
            };
            if chunk.events.len() + batch.len() > CHUNK_EVENTS && !chunk.events.is_empty() {
                open = self.send(
                    &mut chunk,
                    &mut writer,
                    &mut problems,
                    skip.saturating_sub(before),
                );
                before = batches;
            }
            chunk.events.extend_from_slice(&batch);
            chunk.batches.push((chunk.events.len() as u32, t));
            batches += 1;
        }
        if open && !chunk.events.is_empty() {
            open = self.send(
                &mut chunk,
                &mut writer,
                &mut problems,
                skip.saturating_sub(before),
            );
        }
        let h = self.market.handler();
        let meta = event_cache::Meta {
            lines: self.market.counts(),
            skipped,
            feed: h.stats(),
            sync: h.sync_totals(),
            sync_by_instrument: (0..self.cfg.instruments.len())
                .map(|i| h.sync_stats(i as engine::InstrumentId))
                .collect(),
            batches,
            events: 0,
        };
        let mut source = DataSource::Decoded;
        // An entry only of a whole decoding (the engine thread may have stopped early).
        if let (Some((w, cache)), true, true) = (writer, open, batches > 0) {
            match w.finish(&meta) {
                Ok(path) => {
                    let evicted = event_cache::evict(&cache.dir, cache.max_bytes, &path).len();
                    source = DataSource::Cached { path, evicted };
                }
                Err(e) => problems.push(format!("the event cache is not written: {e:#}")),
            }
        }
        Ok(Produced {
            meta,
            source,
            problems,
            complete: open,
        })
    }

    /// Stamps `chunk` with the lines read so far, writes it to the cache entry being made and
    /// sends it, less its first `skip` batches (none left: not sent), leaving a cleared chunk in
    /// its place; `false` once the engine thread is gone.
    fn send(
        &mut self,
        chunk: &mut Chunk,
        writer: &mut Option<(event_cache::CacheWriter, EventCache)>,
        problems: &mut Vec<String>,
        skip: u64,
    ) -> bool {
        chunk.lines = self.market.counts().0;
        if let Some((w, _)) = writer {
            if let Err(e) = w.chunk(&chunk.events, &chunk.batches, chunk.lines) {
                problems.push(format!("the event cache is not written: {e:#}"));
                *writer = None;
            }
        }
        if skip >= chunk.batches.len() as u64 {
            chunk.events.clear();
            chunk.batches.clear();
            return true;
        }
        if skip > 0 {
            // Rare (a damaged cache entry): the chunk's tail, its batch ends moved down.
            let cut = chunk.batches[skip as usize - 1].0;
            chunk.events.drain(..cut as usize);
            chunk.batches.drain(..skip as usize);
            for b in chunk.batches.iter_mut() {
                b.0 -= cut;
            }
        }
        let mut next = self.back.try_recv().unwrap_or_else(|_| Chunk::new());
        next.events.clear();
        next.batches.clear();
        let full = std::mem::replace(chunk, next);
        self.tx.send(full).is_ok()
    }

    /// Hands the engine thread the chunks of a cache entry. An error when the entry turns out
    /// damaged, with the batches handed over before it (whole and right).
    fn replay_cache(
        &self,
        mut reader: event_cache::CacheReader,
    ) -> Result<Produced, (event_cache::CacheError, u64)> {
        let path = reader.path().to_path_buf();
        let mut sent = 0u64;
        let mut complete = true;
        loop {
            let mut chunk = self.back.try_recv().unwrap_or_else(|_| Chunk::new());
            match reader.next_chunk(&mut chunk.events, &mut chunk.batches) {
                Ok(Some(lines)) => chunk.lines = lines,
                Ok(None) => break,
                Err(e) => return Err((e, sent)),
            }
            sent += chunk.batches.len() as u64;
            if self.tx.send(chunk).is_err() {
                complete = false;
                break;
            }
        }
        let meta = match reader.meta() {
            Some(m) => m.clone(),
            // The engine thread stopped first: what was handed over.
            None => event_cache::Meta {
                batches: sent,
                ..event_cache::Meta::default()
            },
        };
        Ok(Produced {
            meta,
            source: DataSource::Cache(path),
            problems: Vec::new(),
            complete,
        })
    }
}

/// Runs a backtest on any market feed (`settings.data` is not used).
pub fn run_source<R: Recorder, S: MarketSource>(
    cfg: &Config,
    settings: &Settings,
    recorder: R,
    source: &mut MarketFeed<S>,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<(Outcome, R)> {
    anyhow::ensure!(!cfg.instruments.is_empty(), "the config has no instrument");
    let fees = BpsFees::from_configs(&cfg.instruments);
    let latency = ConstantLatency::new(settings.entry_latency_ns, settings.response_latency_ns);
    match settings.queue {
        QueueKind::RiskAverse => drive(
            cfg,
            settings,
            recorder,
            source,
            progress,
            SimVenue::new(
                cfg.instruments.len(),
                cfg.book_slots,
                RiskAverseQueue,
                latency,
                fees,
            )
            .with_instruments(&cfg.instruments),
        ),
        QueueKind::Prob { power } => {
            let power = engine::Fx::checked_from_num(power)
                .filter(|p| *p > 0)
                .context("queue power must be a positive number")?;
            drive(
                cfg,
                settings,
                recorder,
                source,
                progress,
                SimVenue::new(
                    cfg.instruments.len(),
                    cfg.book_slots,
                    ProbQueue::new(power),
                    latency,
                    fees,
                )
                .with_instruments(&cfg.instruments),
            )
        }
    }
}

struct Driver<V, R> {
    host: Host<R>,
    venue: V,
    out: Outbox,
    reports: Vec<Event>,
    clock: Clock,
    hist: Histogram<u64>,
    interval: Histogram<u64>,
    intervals: Option<IntervalStream>,
    interval_start: i64,
    metrics: Vec<Metrics>,
    hedging: Vec<HedgeMetrics>,
    events: u64,
    batches_since_idle: u32,
}

impl<V: Venue, R: Recorder> Driver<V, R> {
    /// One input into the engine; every [`TIMED_EVERY`]th, and the first of each interval of
    /// the latency log, timed.
    #[inline]
    fn feed(&mut self, ev: &Event) {
        if self.events % TIMED_EVERY == 0 || self.interval.is_empty() {
            let t0 = self.clock.raw();
            self.host.event(ev, &mut self.out);
            let t1 = self.clock.raw();
            let ns = self.clock.delta_as_nanos(t0, t1).max(1);
            self.hist.saturating_record(ns);
            self.interval.saturating_record(ns);
        } else {
            self.host.event(ev, &mut self.out);
        }
        self.events += 1;
    }

    /// Ends a batch at `now` and sends what the engine decided.
    fn end_batch(&mut self, now: i64) {
        self.host.batch_end(&mut self.out);
        // Journal housekeeping (segments ready, written pages out of the resident set) every 256
        // batches, timer and venue batches included: a quiet stretch of a recording is all timer
        // ticks and must not grow the resident journal.
        self.batches_since_idle += 1;
        if self.batches_since_idle >= 256 {
            self.batches_since_idle = 0;
            self.host.recorder.idle();
        }
        for i in self.out.intents.drain(..) {
            self.venue.send(&i, i.time_ns);
            if let Some(m) = self.metrics.get_mut(i.instrument as usize) {
                m.on_intent(&i);
            }
            for h in self.hedging.iter_mut() {
                h.on_intent(&i, &self.host.engine);
            }
        }
        for m in self.metrics.iter_mut() {
            m.sample(now, &Sample::of(&self.host.engine, m.id));
        }
        for h in self.hedging.iter_mut() {
            h.sample(now, &self.host.engine);
        }
        if now - self.interval_start >= 1_000_000_000 {
            if !self.interval.is_empty() {
                match &mut self.intervals {
                    Some(stream) => stream.push(self.interval_start, &mut self.interval),
                    None => self.interval.reset(),
                }
            }
            self.interval_start = now;
        }
    }

    /// Everything due at or before `t`: timer ticks and venue deliveries, one due time at a time.
    fn run_due(&mut self, t: i64, next_timer: &mut i64, timer_interval: i64) {
        loop {
            let venue_due = self.venue.next_due().unwrap_or(i64::MAX);
            let due = venue_due.min(*next_timer);
            if due > t {
                return;
            }
            if *next_timer <= venue_due {
                let tick = Event::timer(*next_timer);
                *next_timer += timer_interval;
                self.feed(&tick);
                self.end_batch(tick.local_time_ns);
                continue;
            }
            self.reports.clear();
            let reports = &mut self.reports;
            self.venue.poll(due, &mut |r: &Event| reports.push(*r));
            if self.reports.is_empty() {
                continue;
            }
            for k in 0..self.reports.len() {
                let r = self.reports[k];
                let before = Sample::position(&self.host.engine, r.instrument());
                self.feed(&r);
                let after = Sample::position(&self.host.engine, r.instrument());
                if let (Some(x), Some(m)) =
                    (r.as_exec(), self.metrics.get_mut(r.instrument() as usize))
                {
                    m.on_report(&x);
                    for h in self.hedging.iter_mut() {
                        h.on_report(r.instrument(), &x);
                    }
                    if after != before {
                        m.on_fill(r.local_time_ns, after - before, x.last_price, x.taker);
                    }
                }
            }
            self.end_batch(due);
        }
    }
}

/// One `on_event` call in this many is timed (and the first of each simulated second, so every
/// interval of the latency log has one): a sample of the calls, spread evenly over the run, so
/// the timing costs the run little. [`Outcome::on_event_ns`] holds the sampled calls.
pub const TIMED_EVERY: u64 = 16;

/// How many skipped lines a backtest names (the rest are counted).
pub const SKIPPED_SHOWN: usize = 10;

/// Remembers why a line was skipped, for the first [`SKIPPED_SHOWN`].
#[cold]
/// The receive time of a step that brought market events into `batch`; `None` for any other
/// step, noting a skipped input's place and reason in `skipped`.
fn market_batch<S: MarketSource>(
    step: Step,
    batch: &[Event],
    source: &MarketFeed<S>,
    skipped: &mut Vec<String>,
) -> Option<i64> {
    match step {
        Step::Input { local_ns } if !batch.is_empty() => Some(local_ns),
        Step::Input { .. } | Step::Stopped { .. } => None,
        Step::SourceError(e) => {
            // Says where itself (file and line).
            note_skipped(skipped, None, &e);
            None
        }
        Step::DecodeError { error, .. } => {
            note_skipped(skipped, source.source().origin(), &error);
            None
        }
        Step::TimeJump {
            local_ns,
            previous_ns,
        } => {
            let gap = format!(
                "receive time {:.1} h after the previous line's (more than 1 h: skipped)",
                (local_ns - previous_ns) as f64 / 3.6e12
            );
            note_skipped(skipped, source.source().origin(), &gap);
            None
        }
    }
}

/// Market data decoded once, for many backtests of configs that share its instruments
/// (`ringmaker sweep`): every batch of events the feed handler made of the recordings, with its
/// receive time, and what a backtest reports of the decoding (lines, skips, sync counters). A
/// backtest over it ([`Decoded::run`]) consumes exactly the inputs a backtest over the recordings
/// does, in the same batches, so its outcome is the same.
#[derive(Debug, Clone)]
pub struct Decoded {
    source: JournalSource,
    lines: (u64, u64),
    skipped: Vec<String>,
    feed: FeedStats,
    sync: SyncStats,
    sync_by_instrument: Vec<SyncStats>,
    data_source: DataSource,
    cache_problems: Vec<String>,
}

impl Decoded {
    /// Decodes `data` (bound to `cfg`'s instruments) through the feed handler once.
    pub fn decode(cfg: &Config, data: &[DataSpec]) -> anyhow::Result<Decoded> {
        Self::decode_with(cfg, data, None)
    }

    /// [`Decoded::decode`], reading the events from `cache` (or decoding and writing them
    /// there), as a backtest does ([`Settings::event_cache`]).
    pub fn decode_with(
        cfg: &Config,
        data: &[DataSpec],
        cache: Option<EventCache>,
    ) -> anyhow::Result<Decoded> {
        let (producer, rx, back) = spawn_decode(cfg, data, cache)?;
        let (mut events, mut times, mut batch_ends) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in rx.iter() {
            let mut start = 0;
            for &(end, t) in &chunk.batches {
                events.extend_from_slice(&chunk.events[start..end as usize]);
                times.resize(events.len(), t);
                batch_ends.push(events.len());
                start = end as usize;
            }
            let _ = back.try_send(chunk);
        }
        let end = match producer.join() {
            Ok(end) => end?,
            Err(_) => anyhow::bail!("the decode thread panicked"),
        };
        let m = end.meta;
        if batch_ends.is_empty() {
            return Err(nothing_usable(m.lines, &m.skipped));
        }
        Ok(Decoded {
            source: JournalSource {
                data: Arc::new(JournalEvents {
                    events,
                    times,
                    batch_ends,
                }),
                next: 0,
            },
            lines: m.lines,
            skipped: m.skipped,
            feed: m.feed,
            sync: m.sync,
            sync_by_instrument: m.sync_by_instrument,
            data_source: end.source,
            cache_problems: end.problems,
        })
    }

    /// Where the events came from.
    pub fn data_source(&self) -> &DataSource {
        &self.data_source
    }

    /// Why the event cache could not be read or written (the events were decoded instead).
    pub fn cache_problems(&self) -> &[String] {
        &self.cache_problems
    }

    /// Market events held.
    pub fn events(&self) -> usize {
        self.source.len()
    }

    /// A backtest of `cfg` (whose instruments must be the ones decoded for) over these events;
    /// `settings.data` is not read.
    pub fn run<R: Recorder>(
        &self,
        cfg: &Config,
        settings: &Settings,
        recorder: R,
    ) -> anyhow::Result<(Outcome, R)> {
        anyhow::ensure!(
            cfg.instruments.len() == self.sync_by_instrument.len(),
            "the config has {} instruments, the decoded data {}",
            cfg.instruments.len(),
            self.sync_by_instrument.len()
        );
        let mut src = journal_feed(self.source.clone());
        let (mut o, r) = run_source(cfg, settings, recorder, &mut src, &mut |_| {})?;
        // What the decoding counted, as a backtest of the recordings reports it.
        o.lines = self.lines;
        o.skipped = self.skipped.clone();
        o.feed = self.feed;
        o.sync = self.sync;
        o.sync_by_instrument = self.sync_by_instrument.clone();
        o.data_source = self.data_source.clone();
        Ok((o, r))
    }
}

/// The error of market data that gave no batch of events.
fn nothing_usable((lines, bad): (u64, u64), skipped: &[String]) -> anyhow::Error {
    let why = match skipped.first() {
        Some(first) => format!("; the first: {first}"),
        None => String::new(),
    };
    anyhow::anyhow!("the market data gave nothing usable: {lines} lines read, {bad} skipped{why}")
}

fn note_skipped(skipped: &mut Vec<String>, at: Option<String>, why: &dyn std::fmt::Display) {
    if skipped.len() < SKIPPED_SHOWN {
        match at {
            Some(at) => skipped.push(format!("{at}: {why}")),
            None => skipped.push(why.to_string()),
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits: fixed bounds, so recording never allocates.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// The backtest loop over any venue (the simulated one, for a recorded market).
fn drive<V: Venue<Stats = SimStats>, R: Recorder, S: MarketSource>(
    cfg: &Config,
    settings: &Settings,
    recorder: R,
    source: &mut MarketFeed<S>,
    progress: &mut dyn FnMut(u64),
    venue: V,
) -> anyhow::Result<(Outcome, R)> {
    let mut d = Driver {
        host: Host::new(Engine::new(cfg), recorder),
        venue,
        out: Outbox::default(),
        reports: Vec::with_capacity(1024),
        clock: Clock::new(),
        hist: new_hist(),
        interval: new_hist(),
        intervals: match &settings.latency_log {
            Some(p) => Some(IntervalStream::create(
                p,
                "on_event",
                std::time::Duration::from_secs(1),
                &new_hist(),
            )?),
            None => None,
        },
        interval_start: 0,
        metrics: cfg
            .instruments
            .iter()
            .enumerate()
            .map(|(i, c)| Metrics::new(i as u16, c))
            .collect(),
        hedging: Vec::new(),
        events: 0,
        batches_since_idle: 0,
    };
    d.hedging = HedgeMetrics::all(&d.host.engine, cfg);
    let mut last_t = i64::MIN;
    let mut next_timer = i64::MAX;
    let mut batch: Vec<Event> = Vec::with_capacity(8192);
    let mut batches = 0u64;
    let mut skipped: Vec<String> = Vec::new();
    loop {
        batch.clear();
        let Some(step) = source.next(&mut batch) else {
            break;
        };
        let Some(local_ns) = market_batch(step, &batch, source, &mut skipped) else {
            continue;
        };
        batches += 1;
        if batches % 4096 == 0 {
            progress(source.counts().0);
        }
        let t = local_ns.max(last_t);
        if last_t == i64::MIN {
            next_timer = t + settings.timer_interval_ns;
            d.interval_start = t;
        }
        last_t = t;
        d.run_due(t, &mut next_timer, settings.timer_interval_ns);
        for ev in batch.iter_mut() {
            ev.local_time_ns = t;
            d.venue.on_market(ev);
        }
        for ev in &batch {
            d.feed(ev);
        }
        d.end_batch(t);
        if batches % 256 == 0 {
            if let Some(e) = d.host.recorder.failed() {
                anyhow::bail!(
                    "recording failed after {batches} messages: {e}; every record before it is intact"
                );
            }
        }
    }
    // Let in-flight orders and reports settle (no new market data: the book is as last seen).
    if last_t != i64::MIN {
        let end = last_t + 1_000_000_000;
        d.run_due(end, &mut next_timer, settings.timer_interval_ns);
    }
    let (lines, bad) = source.counts();
    if batches == 0 {
        return Err(nothing_usable((lines, bad), &skipped));
    }
    let (feed_stats, sync_stats) = (source.handler().stats(), source.handler().sync_totals());
    let sync_by_instrument = (0..cfg.instruments.len())
        .map(|i| source.handler().sync_stats(i as engine::InstrumentId))
        .collect();
    progress(lines);
    if let Some(e) = d.host.recorder.failed() {
        anyhow::bail!("recording failed: {e}; every record before it is intact");
    }
    let Driver {
        host,
        venue,
        hist,
        mut interval,
        intervals,
        interval_start,
        mut metrics,
        hedging,
        events,
        ..
    } = d;
    let intervals = match intervals {
        Some(mut stream) => {
            if !interval.is_empty() {
                stream.push(interval_start, &mut interval);
            }
            stream.finish()?
        }
        None => 0,
    };
    for m in metrics.iter_mut() {
        m.finish(&host.engine);
    }
    Ok((
        Outcome {
            metrics,
            hedging,
            sync_by_instrument,
            sim: venue.stats(),
            engine: host.engine.stats(),
            on_event_ns: hist,
            intervals,
            lines: (lines, bad),
            skipped,
            events,
            feed: feed_stats,
            sync: sync_stats,
            data_source: DataSource::Decoded,
            cache_problems: Vec::new(),
        },
        host.recorder,
    ))
}
