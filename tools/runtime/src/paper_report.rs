//! `report.json` for a paper run (recorded or live market data): the backtest's report, built
//! from the run's journal.
//!
//! The pipeline's engine thread measures nothing beyond latency: PnL, fills, quoting time, book
//! validity and markouts come from the journal instead. It holds every input the engine took, in
//! the order it took them, and every batch end; fed again into a fresh engine they reproduce
//! the run exactly (what `ringmaker replay` checks), and the backtest's [`Metrics`] observe that
//! engine as the backtest driver observes its own: each intent, each fill (the position's
//! change on an execution report), a sample of the engine after each batch end at the batch's
//! time. The venue's counters, the feed's and the book sync's come from the run's [`Summary`].
//! `on_event_latency_ns` is the engine's `on_event` timed during this pass (as in a backtest,
//! one thread, no journal appends), not on the pipeline.

use crate::backtest::Outcome;
use crate::config::RunConfig;
use crate::hedge_metrics::HedgeMetrics;
use crate::live::Summary;
use crate::metrics::{Metrics, Sample};
use crate::record::{events_in, KIND_BATCH_END, KIND_EVENT, KIND_EVENTS};
use crate::report::Report;
use anyhow::Context;
use engine::{Engine, Intent, ModeChange, Sink};
use hdrhistogram::Histogram;
use std::path::Path;

#[derive(Default)]
struct Collect {
    intents: Vec<Intent>,
}

impl Sink for Collect {
    fn intent(&mut self, i: &Intent) {
        self.intents.push(*i);
    }
    fn mode_change(&mut self, _: &ModeChange) {}
}

/// The backtest's [`Outcome`] of the paper run that wrote the journal in `dir` and ended with
/// `summary`. The journal's own config builds the engine (it is what the run used).
pub fn outcome(dir: &Path, summary: &Summary) -> anyhow::Result<(RunConfig, Outcome)> {
    let (reader, run_cfg, _) = crate::record::open_journal(dir)?;
    let records = reader.records().skip(1);
    let cfg = &run_cfg.engine;
    let mut engine = Engine::new(cfg);
    let mut metrics: Vec<Metrics> = cfg
        .instruments
        .iter()
        .enumerate()
        .map(|(i, c)| Metrics::new(i as u16, c))
        .collect();
    let mut hedging = HedgeMetrics::all(&engine, cfg);
    let clock = quanta::Clock::new();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
    let mut out = Collect::default();
    let (mut events, mut batch_t) = (0u64, i64::MIN);
    for rec in records {
        let rec = rec.context("reading the journal")?;
        match rec.kind {
            KIND_EVENT | KIND_EVENTS => {
                for ev in events_in(rec.kind, rec.payload).into_iter().flatten() {
                    let ev = ev.with_context(|| format!("journal seq {}", rec.seq))?;
                    let id = ev.instrument();
                    let before = Sample::position(&engine, id);
                    let t0 = clock.raw();
                    engine.on_event(&ev, &mut out);
                    hist.saturating_record(clock.delta_as_nanos(t0, clock.raw()).max(1));
                    if let (Some(x), Some(m)) = (ev.as_exec(), metrics.get_mut(id as usize)) {
                        m.on_report(&x);
                        for h in hedging.iter_mut() {
                            h.on_report(id, &x);
                        }
                        let after = Sample::position(&engine, id);
                        if after != before {
                            m.on_fill(ev.local_time_ns, after - before, x.last_price, x.taker);
                        }
                    }
                    batch_t = batch_t.max(ev.local_time_ns);
                    events += 1;
                }
            }
            KIND_BATCH_END => {
                engine.on_batch_end(&mut out);
                for i in out.intents.drain(..) {
                    if let Some(m) = metrics.get_mut(i.instrument as usize) {
                        m.on_intent(&i);
                    }
                    for h in hedging.iter_mut() {
                        h.on_intent(&i, &engine);
                    }
                }
                if batch_t != i64::MIN {
                    for m in metrics.iter_mut() {
                        m.sample(batch_t, &Sample::of(&engine, m.id));
                    }
                    for h in hedging.iter_mut() {
                        h.sample(batch_t, &engine);
                    }
                }
            }
            // Intents and mode changes are the engine's own (reproduced above); the settings,
            // the close and any later kinds change nothing here.
            _ => {}
        }
    }
    for m in metrics.iter_mut() {
        m.finish(&engine);
    }
    let outcome = Outcome {
        metrics,
        hedging,
        sync_by_instrument: summary.sync_by_instrument.clone(),
        sim: summary.sim,
        engine: engine.stats(),
        on_event_ns: hist,
        intervals: 0,
        lines: (summary.counters.lines, summary.counters.bad_lines),
        skipped: Vec::new(),
        events,
        feed: summary.feed,
        sync: summary.sync,
        data_source: crate::backtest::DataSource::Decoded,
        cache_problems: Vec::new(),
    };
    Ok((run_cfg, outcome))
}

/// The paper run's `report.json` (see [`outcome`]).
pub fn report(dir: &Path, summary: &Summary) -> anyhow::Result<Report> {
    let (cfg, o) = outcome(dir, summary)?;
    Ok(Report::new(&cfg.engine, &o))
}
