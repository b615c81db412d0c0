//! What a paper or live run did, printed at its end.

use super::counters::CounterSnapshot;
use super::latency::Hop;
use super::pinning::PinPlan;
use engine::{EngineStats, InstrumentView};
use feeds::{FeedStats, SyncStats};
use gateway::binance::session::SessionStats;
use gateway::SimStats;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::Duration;

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The recording ended.
    EndOfData,
    /// `--duration` of recording time was replayed.
    Duration,
    /// SIGINT / SIGTERM.
    Signal,
    /// The journal stopped accepting records (everything before is intact).
    JournalFailed,
    /// Another run took over the engine name's lease: this one was fenced (it sent nothing
    /// more) and stopped.
    Fenced,
}

impl StopCause {
    fn describe(self) -> &'static str {
        match self {
            StopCause::EndOfData => "end of data",
            StopCause::Duration => "duration reached",
            StopCause::Signal => "stopped by signal",
            StopCause::JournalFailed => "journal failed",
            StopCause::Fenced => "fenced: another run took over the engine's lease",
        }
    }
}

/// One instrument at the end.
#[derive(Debug, Clone)]
pub struct InstrumentSummary {
    /// Symbol.
    pub symbol: String,
    /// Venue flavour (`binance-usdm`, ...).
    pub venue: String,
    /// Position, with its unit (`0.028 BTC`, `10 contracts`).
    pub position: String,
    /// Mode and reason, e.g. `Halted (Operator)`.
    pub mode: String,
    /// Total PnL (realized + unrealized − fees) at the last fair value, in `currency`.
    pub pnl: Option<f64>,
    /// The PnL currency: the quote asset, or the base coin for inverse.
    pub currency: String,
    /// Maker and taker fills.
    pub fills: (u64, u64),
}

impl InstrumentSummary {
    /// From the engine's view of one instrument.
    pub fn of(v: &InstrumentView<'_>) -> InstrumentSummary {
        let inst = &v.config.instrument;
        let unit = inst.money_unit();
        InstrumentSummary {
            symbol: inst.symbol.to_string(),
            venue: v.config.venue.name().to_owned(),
            position: format!(
                "{} {}",
                inst.lot.format(v.position.qty),
                match inst.kind {
                    engine::InstrumentKind::Inverse => "contracts".to_owned(),
                    _ => inst.base_asset.to_string(),
                }
            ),
            currency: inst.pnl_asset().to_string(),
            mode: format!("{:?} ({:?})", v.mode.0, v.mode.1),
            pnl: v
                .fair_value
                .map(|fv| unit.to_f64(v.position.total_pnl(inst, fv))),
            fills: (v.position.maker_fills, v.position.taker_fills),
        }
    }
}

/// The run's summary.
#[derive(Debug)]
pub struct Summary {
    /// Why it ended.
    pub cause: StopCause,
    /// Wall time from the threads' start to the end of the drain.
    pub wall: Duration,
    /// `--speed` (0: flat out).
    pub speed: f64,
    /// Recording time replayed, ns.
    pub replay_span_ns: i64,
    /// Counters.
    pub counters: CounterSnapshot,
    /// Engine counters.
    pub engine: EngineStats,
    /// Simulated venue counters (zeros with a live venue).
    pub sim: SimStats,
    /// The live order-entry session's counters (`None`: the simulated venue).
    pub session: Option<SessionStats>,
    /// Orders still resting at the simulated venue after the drain (0 after a clean stop).
    pub open_orders_at_venue: usize,
    /// The shutdown drain gave up.
    pub drain_timed_out: bool,
    /// Where the threads ran.
    pub pinning: PinPlan,
    /// Whole-run histogram per hop, ns.
    pub latency: Vec<(Hop, Histogram<u64>)>,
    /// Per instrument.
    pub instruments: Vec<InstrumentSummary>,
    /// Feed handler counters.
    pub feed: FeedStats,
    /// Book sync counters over every instrument.
    pub sync: SyncStats,
    /// Book sync counters per instrument (by id).
    pub sync_by_instrument: Vec<SyncStats>,
    /// Receive time with every book valid, and the whole span fed (ns).
    pub book_time: (i64, i64),
    /// A live feed: receive stamps behind the venue's event times.
    pub clock_offset: Option<super::feed::ClockOffset>,
    /// A live feed with `[feed] clock_check`: what the check did.
    pub clock_check: Option<super::feed::ClockCheckReport>,
    /// Quoting was halted because the output ring stayed full.
    pub output_halted: bool,
    /// Journal records appended.
    pub journal_records: u64,
    /// Events journaled (in events records).
    pub journal_events: u64,
    /// Where the bus's journal archive got to (the rest is published once the journal is
    /// closed).
    pub archive: Option<crate::archive::Resume>,
}

impl Summary {
    /// Share of the fed time with every book valid (0 to 1).
    pub fn valid_share(&self) -> f64 {
        crate::report::valid_share(self.book_time.0, self.book_time.1)
    }

    /// What makes the run doubtful: a book valid for less than half of it, quoting halted by a
    /// full output ring, intents that could not be sent.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.feed.time_jumps > 0 {
            w.push(crate::report::time_jump_warning(self.feed.time_jumps));
        }
        if self.valid_share() < crate::report::MIN_VALID_SHARE {
            w.push(format!(
                "the book was valid for only {:.1}% of the run ({} gaps, {} resyncs, {} snapshot \
                 requests): the figures say little; check the instrument's venue flavour, tick \
                 and lot against the data",
                self.valid_share() * 100.0,
                self.sync.gaps,
                self.sync.resyncs,
                self.feed.snapshot_requests
            ));
        }
        if self.output_halted {
            w.push(format!(
                "the output ring stayed full (gateway not keeping up): quoting was halted; {} \
                 intents waited in the engine's backlog",
                self.counters.output_backlogged
            ));
        }
        if self.counters.intents_lost > 0 {
            w.push(format!(
                "{} intents could not be sent (output ring and backlog full): the run was aborted",
                self.counters.intents_lost
            ));
        }
        let e = &self.engine;
        if e.reconcile_position_corrections > 0 {
            w.push(format!(
                "the venue's position differed from the engine's {} time(s) and was adopted \
                 (ReconcilePosition in the journal; PnL attribution keeps the correction apart)",
                e.reconcile_position_corrections
            ));
        }
        if e.reconcile_foreign_orders > 0 {
            w.push(format!(
                "{} order(s) on the account are not this engine's: the instrument went \
                 reduce-only until an operator's Normal",
                e.reconcile_foreign_orders
            ));
        }
        if e.reconcile_adopted > 0 {
            w.push(format!(
                "{} order(s) of an earlier run were found working and taken over \
                 ([engine] adopt_unknown_orders)",
                e.reconcile_adopted
            ));
        }
        if e.reconcile_orphans_cancelled > 0 {
            w.push(format!(
                "{} order(s) of an earlier run (or lost track of) were found working and cancelled",
                e.reconcile_orphans_cancelled
            ));
        }
        if let Some(v) = &self.session {
            if self.cause == StopCause::Fenced {
                w.push(
                    "fenced: the run that took over the engine owns its orders now; this run \
                     sent nothing at its end (no cancel, no cancel-all)"
                        .to_string(),
                );
            } else if v.open_at_end == u64::MAX {
                w.push(
                    "the venue's open orders after the end are unknown (the REST backstop \
                     failed): check the account; the dead-man switch stays armed and cancels \
                     within its countdown"
                        .to_string(),
                );
            } else if v.open_at_end > 0 {
                w.push(format!(
                    "{} order(s) still open at the venue after the end: check the account (the \
                     dead-man switch stays armed and cancels them within its countdown)",
                    v.open_at_end
                ));
            }
        }
        w
    }

    /// The histogram of `hop`.
    pub fn hop(&self, hop: Hop) -> Option<&Histogram<u64>> {
        self.latency.iter().find(|(h, _)| *h == hop).map(|(_, h)| h)
    }

    /// The text summary (one `key value` line each, keys left-aligned).
    pub fn render(&self) -> String {
        let c = &self.counters;
        let mut s = String::new();
        let speed = if self.speed <= 0.0 {
            "flat out".to_string()
        } else {
            format!("{}x", self.speed)
        };
        let kind = if self.session.is_some() {
            "live"
        } else {
            "paper"
        };
        let _ = writeln!(s, "{kind} run: {}", self.cause.describe());
        let _ = writeln!(
            s,
            "  replayed         {:.1} s of recording in {:.2} s wall ({speed})",
            self.replay_span_ns as f64 / 1e9,
            self.wall.as_secs_f64()
        );
        let _ = writeln!(s, "  threads          {}", self.pinning.describe());
        let _ = writeln!(s, "  lines            {} (bad {})", c.lines, c.bad_lines);
        let _ = writeln!(
            s,
            "  events           {} consumed in {} batches (feed {}, reports {}, timer {}, control {}{})",
            c.engine_events,
            c.engine_batches,
            c.feed_events,
            c.reports,
            c.timer_ticks,
            c.controls,
            // Only under [firm].
            if c.firm_limits > 0 {
                format!(", firm limits {}", c.firm_limits)
            } else {
                String::new()
            }
        );
        if self.session.is_some() {
            let _ = writeln!(s, "  intents          {}", c.engine_intents);
        } else {
            let _ = writeln!(
                s,
                "  intents          {} (venue: {} accepted, {} post-only rejects, {} fills, {} partial, {} cancels)",
                c.engine_intents,
                self.sim.accepted,
                self.sim.post_only_rejects,
                self.sim.fills,
                self.sim.partial_fills,
                self.sim.cancels
            );
        }
        let _ = writeln!(
            s,
            "  ring overflows   {} (events dropped {}, book invalidations published {}, resyncs requested {})",
            c.ring_overflows, c.dropped_events, c.overflow_invalids, c.resync_requests
        );
        let _ = writeln!(
            s,
            "  full ring        feed waited {} (flat out), intents retried {}, reports retried {}, timer ticks skipped {}, stamps dropped {}",
            c.feed_waits, c.output_retries, c.report_retries, c.timer_skipped, c.stamps_dropped
        );
        if let Some(v) = &self.session {
            let _ = writeln!(
                s,
                "  order entry      {} places ({} accepted, {} rejected of which {} post-only, {} refused down, {} refused for limits), {} cancels ({} refused), {} fills, {} positions streamed, {} status queries",
                v.places, v.accepted, v.rejected, v.post_only_rejects, v.refused_down, v.refused_limits,
                v.cancels, v.cancel_rejects, v.fills, v.streamed_positions, v.status_queries
            );
            let _ = writeln!(
                s,
                "  venue links      {} API connects, {} user-stream connects, {} lost, {} listenKey expiries, {} reconciliations ({} open orders found), {} 429s, {} 418s, {} decode errors, {} unknown reports",
                v.api_connects, v.user_connects, v.disconnects, v.key_expiries, v.reconciliations,
                v.reconciled_orders, v.too_many_requests + v.rest_rate_limited, v.banned + v.rest_banned,
                v.decode_errors, v.unknown_reports
            );
            let _ = writeln!(
                s,
                "  venue REST       {} dead-man switch refreshes ({} failed), {} cancel-alls on a lost WebSocket API ({} failed), {} calls failed; {} status queries refused, last venue error code {}",
                v.countdown_refreshes, v.countdown_failures, v.rest_cancel_alls, v.rest_cancel_all_failures,
                v.rest_failures, v.status_errors, v.last_error_code
            );
            if v.gate_closed + v.rest_gated + v.inherited_orders > 0 {
                let _ = writeln!(
                    s,
                    "  lease gate       shut {} times while up, {} REST jobs dropped while shut; {} orders inherited from the run taken over",
                    v.gate_closed, v.rest_gated, v.inherited_orders
                );
            }
        } else {
            let _ = writeln!(
                s,
                "  late intents     {} (reached the simulated venue after its clock)",
                self.sim.late_intents
            );
        }
        let _ = writeln!(
            s,
            "  output ring      {} intents backlogged, {} halts, {} lost",
            c.output_backlogged, c.output_halts, c.intents_lost
        );
        let _ = writeln!(
            s,
            "  book             valid {:.1}% of the run, {} diffs applied, {} gaps, {} resyncs, {} snapshot requests, {} stale periods",
            self.valid_share() * 100.0,
            self.sync.diffs_applied,
            self.sync.gaps,
            self.sync.resyncs,
            self.feed.snapshot_requests,
            self.engine.stale_periods
        );
        if self.feed.mark_prices > 0 {
            let _ = writeln!(
                s,
                "  mark prices      {} received, {} stored by the engine (mark, index, funding; not priced from)",
                self.feed.mark_prices, self.engine.mark_prices
            );
        }
        if let Some(o) = self.clock_offset {
            let _ = writeln!(
                s,
                "  venue offset     receive stamps {:.3} ms behind the venue's event times (median; p90-p10 {:.3} ms; last {} messages)",
                o.median_ns as f64 / 1e6,
                o.spread_ns as f64 / 1e6,
                o.samples
            );
        }
        if let Some(c) = self.clock_check {
            let _ = writeln!(
                s,
                "  clock check      {} fault(s) pulled quotes{}{}",
                c.faults,
                c.last_fault
                    .map(|v| format!(", last {v:?}"))
                    .unwrap_or_default(),
                if c.failing_at_end {
                    "; FAILING at the end"
                } else {
                    ""
                }
            );
        }
        for i in &self.instruments {
            let _ = writeln!(
                s,
                "  {:<16} position {}, pnl {}, fills {} maker / {} taker, mode {}",
                format!("{} ({})", i.symbol, i.venue),
                i.position,
                i.pnl.map_or("-".into(), |p| {
                    if i.currency.starts_with("USD") {
                        format!("{p:.2} {}", i.currency)
                    } else {
                        format!("{p:.8} {}", i.currency)
                    }
                }),
                i.fills.0,
                i.fills.1,
                i.mode
            );
        }
        let _ = writeln!(
            s,
            "  open orders      {} at the venue after the drain{}",
            self.open_orders_at_venue,
            if self.drain_timed_out {
                " (drain timed out)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "  latency (ns)     {:<16} {:>9} {:>8} {:>8} {:>8} {:>10}",
            "hop", "count", "p50", "p99", "p99.9", "max"
        );
        for (hop, h) in &self.latency {
            if h.is_empty() && hop.is_wire() {
                // Only a live feed measures from the wire.
                continue;
            }
            let _ = writeln!(
                s,
                "                   {:<16} {:>9} {:>8} {:>8} {:>8} {:>10}",
                hop.tag(),
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
        }
        let _ = writeln!(
            s,
            "  journal          {} records ({} events)",
            self.journal_records, self.journal_events
        );
        for w in self.warnings() {
            let _ = writeln!(s, "  WARNING          {w}");
        }
        s
    }
}
