//! The housekeeping thread (off the hot path, on the housekeeping core): turns the hot threads'
//! latency stamps into histograms, writes them to `latency.hlog` every interval, and prints a
//! status line every few seconds. Journal housekeeping is not here: the engine thread owns the
//! journal writer and does it in its idle gaps (see [`super::processor`]).

use super::counters::CounterSnapshot;
use super::latency::{Hop, HopHistograms, IntervalLog, StampRx};
use super::ops::state::LatencyBuckets;
use super::shared::Shared;
use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use quanta::Clock;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Housekeeping settings.
#[derive(Debug, Clone)]
pub struct HousekeepingSettings {
    /// Where the interval log goes.
    pub hlog: PathBuf,
    /// Interval length.
    pub interval: Duration,
    /// Status line period (`None`: quiet).
    pub status_every: Option<Duration>,
}

/// Runs until [`Shared::housekeeping_stop`], then writes the last interval. Returns the whole
/// run's histograms.
pub fn run(
    mut rx: StampRx,
    settings: &HousekeepingSettings,
    clock: Clock,
    shared: Arc<Shared>,
) -> anyhow::Result<HopHistograms> {
    let mut file = std::fs::File::create(&settings.hlog)
        .with_context(|| format!("creating {}", settings.hlog.display()))?;
    let mut ser = V2DeflateSerializer::new();
    let started = SystemTime::now();
    let mut log = IntervalLog::begin(&mut file, &mut ser, started)?;
    let mut h = HopHistograms::default();
    let mut interval_start = started;
    let mut last_status = Instant::now();
    let mut last_counts = shared.counters.snapshot();
    let wall0 = Instant::now();
    let mut halt_said = false;
    let mut clock_read = Instant::now();
    loop {
        if shared.replay.is_live() && clock_read.elapsed() >= Duration::from_secs(1) {
            // `adjtimex` here, not on the feed thread, which takes the reading from `Shared`.
            shared.kernel_clock.refresh();
            clock_read = Instant::now();
        }
        let done = shared.housekeeping_stop.load(Ordering::Acquire);
        // Said as soon as it happens, not only in the summary.
        if !halt_said && shared.output_halted.load(Ordering::Acquire) {
            halt_said = true;
            let _ = writeln!(
                std::io::stderr(),
                "ringmaker run: quoting HALTED: the output ring stayed full for over {} µs (the \
                 gateway is not keeping up); orders are being cancelled, see the summary",
                super::processor::OUTPUT_WAIT_NS / 1_000
            );
        }
        rx.drain(&clock, &mut h);
        let now = SystemTime::now();
        let interval_due =
            now.duration_since(interval_start).unwrap_or_default() >= settings.interval;
        if interval_due || done {
            publish_latency(&shared, &h);
            log.write_interval(&h, interval_start, now)?;
            h.reset_interval();
            interval_start = now;
        }
        if done {
            return Ok(h);
        }
        if let Some(every) = settings.status_every {
            if last_status.elapsed() >= every {
                let counts = shared.counters.snapshot();
                let _ = writeln!(
                    std::io::stderr(),
                    "{}",
                    status_line(
                        &shared,
                        &h,
                        &counts,
                        &last_counts,
                        wall0.elapsed(),
                        last_status.elapsed()
                    )
                );
                last_counts = counts;
                last_status = Instant::now();
            }
        }
        // A stamp queue holds 65,536 by default: 5 ms of even a flat-out run.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each hop's whole-run histogram in the metrics endpoint's buckets (at every interval).
fn publish_latency(shared: &Shared, h: &HopHistograms) {
    let q: Vec<(&'static str, LatencyBuckets)> = Hop::ALL
        .iter()
        .filter(|hop| !h.total(**hop).is_empty())
        .map(|hop| (hop.tag(), LatencyBuckets::of(h.total(*hop))))
        .collect();
    if let Ok(mut l) = shared.ops.latency.lock() {
        *l = q;
    }
}

fn status_line(
    shared: &Shared,
    h: &HopHistograms,
    now: &CounterSnapshot,
    before: &CounterSnapshot,
    wall: Duration,
    period: Duration,
) -> String {
    let replay = match (shared.replay.start_ns(), shared.replay.progress()) {
        (Some(t0), p) if p != i64::MIN => format!("{:.1}", (p - t0) as f64 / 1e9),
        _ => "-".into(),
    };
    let rate = (now.engine_events - before.engine_events) as f64 / period.as_secs_f64().max(1e-9);
    let tti = h.total(Hop::TickToIntent);
    let offset = shared
        .clock_offset_ns
        .load(std::sync::atomic::Ordering::Relaxed);
    let venue_offset = if offset == i64::MIN {
        String::new()
    } else {
        format!(" | venue offset {:.3} ms", offset as f64 / 1e6)
    };
    let clock = if shared
        .clock_failing
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        " | clock FAULT: quotes pulled"
    } else {
        ""
    };
    format!(
        "[{:>6.1}s] replay {replay} s | events {} ({:.0}/s) batches {} intents {} reports {} | \
         overflows {} dropped {} | tick-to-intent p50 {} ns p99 {} ns{venue_offset}{clock}",
        wall.as_secs_f64(),
        now.engine_events,
        rate,
        now.engine_batches,
        now.engine_intents,
        now.reports,
        now.ring_overflows,
        now.dropped_events,
        tti.value_at_quantile(0.5),
        tti.value_at_quantile(0.99),
    )
}
