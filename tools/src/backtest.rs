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

use crate::host::{Host, Recorder};
use crate::metrics::{Metrics, Sample};
use anyhow::Context;
use engine::{Config, Engine, Event, Intent, ModeChange, Sink};
use feeds::{Normalizer, RecordingReader, SyncRule};
use gateway::sim::{
    BpsFees, ConstantLatency, FeeModel, ProbQueue, QueueModel, RiskAverseQueue, SimVenue,
};
use gateway::SimStats;
use hdrhistogram::Histogram;
use quanta::Clock;
use std::path::PathBuf;

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
    /// Recording files, in arrival order.
    pub data: Vec<PathBuf>,
    /// Queue model.
    pub queue: QueueKind,
    /// Engine → venue latency, ns.
    pub entry_latency_ns: i64,
    /// Venue → engine latency, ns.
    pub response_latency_ns: i64,
    /// Timer tick period, ns of simulated time.
    pub timer_interval_ns: i64,
}

/// What a backtest produced.
#[derive(Debug)]
pub struct Outcome {
    /// Metrics for the report and plots.
    pub metrics: Metrics,
    /// Venue counters.
    pub sim: SimStats,
    /// Engine counters.
    pub engine: engine::EngineStats,
    /// Latency of `on_event` (engine + journal append), ns.
    pub on_event_ns: Histogram<u64>,
    /// Per-second interval histograms of `on_event` latency: (sim start ns, histogram).
    pub intervals: Vec<(i64, Histogram<u64>)>,
    /// Lines read, lines skipped.
    pub lines: (u64, u64),
    /// Inputs consumed by the engine.
    pub events: u64,
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

/// Runs a backtest. `progress` is called now and then with the fraction of lines read.
pub fn run<R: Recorder>(
    cfg: &Config,
    settings: &Settings,
    recorder: R,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<(Outcome, R)> {
    let inst = cfg
        .instruments
        .first()
        .context("the config has no instrument")?;
    let fees = BpsFees::from_config(inst);
    let latency = ConstantLatency::new(settings.entry_latency_ns, settings.response_latency_ns);
    match settings.queue {
        QueueKind::RiskAverse => drive(
            cfg,
            settings,
            recorder,
            progress,
            RiskAverseQueue,
            latency,
            fees,
        ),
        QueueKind::Prob { power } => {
            let power = engine::Fx::checked_from_num(power)
                .filter(|p| *p > 0)
                .context("queue power must be a positive number")?;
            drive(
                cfg,
                settings,
                recorder,
                progress,
                ProbQueue::new(power),
                latency,
                fees,
            )
        }
    }
}

struct Driver<Q: QueueModel, F: FeeModel, R> {
    host: Host<R>,
    venue: SimVenue<Q, ConstantLatency, F>,
    out: Outbox,
    reports: Vec<Event>,
    clock: Clock,
    hist: Histogram<u64>,
    interval: Histogram<u64>,
    intervals: Vec<(i64, Histogram<u64>)>,
    interval_start: i64,
    metrics: Metrics,
    events: u64,
}

impl<Q: QueueModel, F: FeeModel, R: Recorder> Driver<Q, F, R> {
    /// One input into the engine, timed.
    #[inline]
    fn feed(&mut self, ev: &Event) {
        let t0 = self.clock.raw();
        self.host.event(ev, &mut self.out);
        let t1 = self.clock.raw();
        let ns = self.clock.delta_as_nanos(t0, t1).max(1);
        self.hist.saturating_record(ns);
        self.interval.saturating_record(ns);
        self.events += 1;
    }

    /// Ends a batch at `now` and sends what the engine decided.
    fn end_batch(&mut self, now: i64) {
        self.host.batch_end(&mut self.out);
        for i in self.out.intents.drain(..) {
            self.venue.on_intent(&i, i.time_ns);
            self.metrics.on_intent(&i);
        }
        self.metrics.sample(now, &Sample::of(&self.host.engine));
        if now - self.interval_start >= 1_000_000_000 {
            let done = std::mem::replace(&mut self.interval, new_hist());
            if !done.is_empty() {
                self.intervals.push((self.interval_start, done));
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
            self.venue
                .advance_to(due, &mut |r: &Event| reports.push(*r));
            if self.reports.is_empty() {
                continue;
            }
            for k in 0..self.reports.len() {
                let r = self.reports[k];
                let before = Sample::position(&self.host.engine, r.instrument());
                self.feed(&r);
                let after = Sample::position(&self.host.engine, r.instrument());
                if let (Some(x), true) = (r.as_exec(), after != before) {
                    self.metrics
                        .on_fill(r.local_time_ns, after - before, x.last_price, x.taker);
                }
            }
            self.end_batch(due);
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits: fixed bounds, so recording never allocates.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn drive<Q: QueueModel, F: FeeModel, R: Recorder>(
    cfg: &Config,
    settings: &Settings,
    recorder: R,
    progress: &mut dyn FnMut(u64),
    queue: Q,
    latency: ConstantLatency,
    fees: F,
) -> anyhow::Result<(Outcome, R)> {
    let instruments: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
    let mut reader = RecordingReader::open(&settings.data)?;
    let mut norm = Normalizer::new(&instruments, SyncRule::Futures);
    let mut d = Driver {
        host: Host::new(Engine::new(cfg), recorder),
        venue: SimVenue::new(instruments.len(), cfg.book_slots, queue, latency, fees),
        out: Outbox::default(),
        reports: Vec::with_capacity(1024),
        clock: Clock::new(),
        hist: new_hist(),
        interval: new_hist(),
        intervals: Vec::new(),
        interval_start: 0,
        metrics: Metrics::new(&cfg.instruments[0]),
        events: 0,
    };
    let mut last_t = i64::MIN;
    let mut next_timer = i64::MAX;
    let mut batch: Vec<Event> = Vec::with_capacity(8192);
    let mut lines = 0u64;
    let mut bad = 0u64;
    while let Some(line) = reader.next() {
        lines += 1;
        if lines % 4096 == 0 {
            progress(lines);
        }
        let l = match line {
            Ok(l) => l,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        let t = l.local_ns.max(last_t);
        if last_t == i64::MIN {
            next_timer = t + settings.timer_interval_ns;
            d.interval_start = t;
        }
        last_t = t;
        batch.clear();
        match norm.on_message(l.json, t) {
            Ok(evs) => batch.extend_from_slice(evs),
            Err(_) => {
                bad += 1;
                continue;
            }
        }
        d.run_due(t, &mut next_timer, settings.timer_interval_ns);
        if batch.is_empty() {
            continue;
        }
        for ev in batch.iter_mut() {
            ev.local_time_ns = t;
            d.venue.on_market(ev);
        }
        for ev in &batch {
            d.feed(ev);
        }
        d.end_batch(t);
        if lines % 256 == 0 {
            d.host.recorder.idle();
            if let Some(e) = d.host.recorder.failed() {
                anyhow::bail!(
                    "recording failed at line {lines}: {e}; every record before it is intact"
                );
            }
        }
    }
    // Let in-flight orders and reports settle (no new market data: the book is as last seen).
    if last_t != i64::MIN {
        let end = last_t + 1_000_000_000;
        d.run_due(end, &mut next_timer, settings.timer_interval_ns);
    }
    progress(lines);
    let Driver {
        host,
        venue,
        hist,
        interval,
        mut intervals,
        interval_start,
        mut metrics,
        events,
        ..
    } = d;
    if !interval.is_empty() {
        intervals.push((interval_start, interval));
    }
    metrics.finish(&host.engine);
    Ok((
        Outcome {
            metrics,
            sim: venue.stats(),
            engine: host.engine.stats(),
            on_event_ns: hist,
            intervals,
            lines: (lines, bad),
            events,
        },
        host.recorder,
    ))
}
