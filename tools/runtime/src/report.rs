//! `report.json`: the backtest's figures, in human units (quote currency, base units, bps).
//!
//! Definitions (also in the README):
//! - `pnl.realized`: closed PnL on average cost, before fees; `pnl.unrealized`: the open
//!   position marked at the final fair value against its average cost; `pnl.fees`: fees paid
//!   (negative = rebates received); `pnl.total = realized + unrealized − fees`.
//! - `traded.qty`: the sum of our fill quantities; `traded.notional`: Σ price × qty.
//! - `quoting.uptime`: the share of valid-book time during which we had a live order on both
//!   sides; `quoting.mean_spread_bps`: our best ask − best bid over that time, in bps of mid.
//! - `markouts`: mean of `side · (mid(t + h) − fill price) / fill price` over fills, in bps:
//!   positive means the market moved our way (no adverse selection).

use crate::backtest::Outcome;
use serde::Serialize;

/// The report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Symbol.
    pub symbol: String,
    /// Simulated duration, seconds.
    pub duration_s: f64,
    /// Inputs the engine consumed (market events, reports, timers).
    pub events: u64,
    /// Recording lines read and skipped.
    pub lines: Lines,
    /// PnL in quote currency.
    pub pnl: Pnl,
    /// Traded volume.
    pub traded: Traded,
    /// Fills.
    pub fills: Fills,
    /// Orders.
    pub orders: Orders,
    /// Position, base units.
    pub position: PositionStats,
    /// Max drawdown of total PnL from its running peak, quote currency.
    pub max_drawdown: f64,
    /// Quoting quality.
    pub quoting: Quoting,
    /// Fill markouts (adverse selection), bps.
    pub markouts: Markouts,
    /// Engine `on_event` latency, ns (engine + journal append, measured by the driver).
    pub on_event_latency_ns: Latency,
    /// Share of time in each mode.
    pub modes: Modes,
    /// Book health: valid share, diffs, gaps.
    pub book: BookHealth,
    /// What makes the run's figures doubtful (e.g. a book valid for less than half of it).
    pub warnings: Vec<String>,
}

/// Lines read.
#[derive(Debug, Serialize)]
pub struct Lines {
    /// Read.
    pub read: u64,
    /// Skipped (bad).
    pub bad: u64,
    /// Of those, skipped because their receive time jumped more than an hour ahead.
    pub time_jumps: u64,
    /// The first few skipped, each with where it is and why.
    pub first_skipped: Vec<String>,
}

/// PnL, quote currency.
#[derive(Debug, Serialize)]
pub struct Pnl {
    /// Realized on average cost, before fees.
    pub realized: f64,
    /// Open position at the final fair value.
    pub unrealized: f64,
    /// Fees paid (negative: rebates).
    pub fees: f64,
    /// realized + unrealized − fees.
    pub total: f64,
}

/// Volume.
#[derive(Debug, Serialize)]
pub struct Traded {
    /// Base units.
    pub qty: f64,
    /// Quote currency.
    pub notional: f64,
}

/// Fill counts.
#[derive(Debug, Serialize)]
pub struct Fills {
    /// Fill reports that changed the position.
    pub count: u64,
    /// As maker.
    pub maker: u64,
    /// As taker.
    pub taker: u64,
    /// maker / count.
    pub maker_ratio: f64,
}

/// Order flow.
#[derive(Debug, Serialize)]
pub struct Orders {
    /// Placed.
    pub placed: u64,
    /// Cancels confirmed.
    pub cancelled: u64,
    /// Rejected by the venue.
    pub rejected: u64,
    /// Of which post-only would-take rejects.
    pub post_only_rejects: u64,
    /// Cancel intents per started minute: mean.
    pub cancels_per_min_mean: f64,
    /// Cancel intents in the busiest minute bucket.
    pub cancels_per_min_max: u64,
    /// Most discretionary (budgeted) cancels in any 60 s window.
    pub discretionary_cancels_max_per_60s: usize,
    /// The configured cancel budget per minute.
    pub cancel_budget_per_min: u32,
    /// placed / fills.
    pub order_to_fill: f64,
}

/// Position over the run, base units.
#[derive(Debug, Serialize)]
pub struct PositionStats {
    /// Lowest.
    pub min: f64,
    /// Highest.
    pub max: f64,
    /// At the end.
    #[serde(rename = "final")]
    pub final_: f64,
    /// Time-weighted mean of |position|.
    pub mean_abs: f64,
    /// The configured net max.
    pub net_max: f64,
}

/// Quoting.
#[derive(Debug, Serialize)]
pub struct Quoting {
    /// Valid-book time, seconds.
    pub valid_book_s: f64,
    /// Share of valid-book time with both sides quoted.
    pub uptime: f64,
    /// Mean quoted spread at our touch, bps of mid.
    pub mean_spread_bps: f64,
}

/// How much of the run the book could be trusted.
#[derive(Debug, Serialize)]
pub struct BookHealth {
    /// Share of the run's simulated time with a valid book (0 to 1).
    pub valid_share: f64,
    /// Depth diffs applied to the book.
    pub diffs_applied: u64,
    /// Sequence gaps (each invalidates the book until a snapshot bridges the stream again).
    pub gaps: u64,
    /// Times the book became valid again after a gap.
    pub resyncs: u64,
    /// Diffs that left the book crossed (each invalidated it and asked for a snapshot).
    pub crossed: u64,
    /// Snapshots asked of the market source (at the start and after gaps).
    pub snapshot_requests: u64,
}

/// Below this share of valid-book time a run is said to be meaningless (warning; `--strict`
/// makes it an error).
pub const MIN_VALID_SHARE: f64 = 0.5;

/// Markouts.
#[derive(Debug, Serialize)]
pub struct Markouts {
    /// 1 s.
    pub s1_bps: Option<f64>,
    /// 5 s.
    pub s5_bps: Option<f64>,
    /// 30 s.
    pub s30_bps: Option<f64>,
    /// Fills included at 30 s.
    pub fills_at_30s: usize,
}

/// Percentiles, ns.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
    /// Samples.
    pub count: u64,
}

/// Share of simulated time per mode.
#[derive(Debug, Serialize)]
pub struct Modes {
    /// Normal.
    pub normal: f64,
    /// Reduce-only.
    pub reduce_only: f64,
    /// Halted (includes waiting for the first snapshot).
    pub halted: f64,
}

impl Report {
    /// Builds the report from a finished backtest.
    pub fn new(symbol: &str, o: &Outcome) -> Report {
        let m = &o.metrics;
        let u = m.unit;
        let pos = m.final_position.unwrap_or_default();
        let unreal = m.final_fv.map_or(0, |fv| pos.unrealized(&m.instrument, fv));
        let (maker, taker) = (pos.maker_fills, pos.taker_fills);
        let fills = maker + taker;
        let os = m.order_stats.unwrap_or_default();
        let duration_ns = (m.span.1 - m.span.0).max(1);
        let cancels: u64 = m.cancels_per_min.iter().sum();
        let mode_total = m.mode_ns.iter().sum::<i64>().max(1) as f64;
        let h = &o.on_event_ns;
        let mean_mid = if m.mids.is_empty() {
            f64::NAN
        } else {
            m.mids.iter().map(|x| x.1).sum::<f64>() / m.mids.len() as f64
        };
        Report {
            symbol: symbol.to_owned(),
            duration_s: duration_ns as f64 / 1e9,
            events: o.events,
            lines: Lines {
                read: o.lines.0,
                bad: o.lines.1,
                time_jumps: o.feed.time_jumps,
                first_skipped: o.skipped.clone(),
            },
            pnl: Pnl {
                realized: pos.realized as f64 * u,
                unrealized: unreal as f64 * u,
                fees: pos.fees as f64 * u,
                total: (pos.realized + unreal - pos.fees) as f64 * u,
            },
            traded: Traded {
                qty: pos.traded_qty as f64 * m.lot,
                notional: pos.traded_notional as f64 * m.notional_unit,
            },
            fills: Fills {
                count: fills,
                maker,
                taker,
                maker_ratio: if fills > 0 {
                    maker as f64 / fills as f64
                } else {
                    0.0
                },
            },
            orders: Orders {
                placed: os.placed,
                cancelled: os.cancelled,
                rejected: os.rejected,
                post_only_rejects: os.post_only_rejects,
                // Over the same minute buckets as the max, so the mean can never exceed it (over
                // the run's exact length, a last partial minute made it do so).
                cancels_per_min_mean: cancels as f64 / m.minute_buckets().max(1) as f64,
                cancels_per_min_max: m.cancels_per_min.iter().copied().max().unwrap_or(0),
                discretionary_cancels_max_per_60s: m.max_discretionary_cancels_per_minute(),
                cancel_budget_per_min: m.cancel_budget,
                order_to_fill: if fills > 0 {
                    os.placed as f64 / fills as f64
                } else {
                    f64::INFINITY
                },
            },
            position: PositionStats {
                min: m.pos_min as f64 * m.lot,
                max: m.pos_max as f64 * m.lot,
                final_: pos.qty as f64 * m.lot,
                mean_abs: m.abs_pos_ns / duration_ns as f64 * m.lot,
                net_max: m.net_max as f64 * m.lot,
            },
            max_drawdown: m.max_drawdown as f64 * u,
            quoting: Quoting {
                valid_book_s: m.valid_ns as f64 / 1e9,
                uptime: if m.valid_ns > 0 {
                    m.quoted_ns as f64 / m.valid_ns as f64
                } else {
                    0.0
                },
                mean_spread_bps: if m.quoted_ns > 0 {
                    m.spread_ticks_ns / m.quoted_ns as f64 / mean_mid * 1e4
                } else {
                    f64::NAN
                },
            },
            markouts: Markouts {
                s1_bps: m.markout_bps(1_000_000_000).map(|x| x.0),
                s5_bps: m.markout_bps(5_000_000_000).map(|x| x.0),
                s30_bps: m.markout_bps(30_000_000_000).map(|x| x.0),
                fills_at_30s: m.markout_bps(30_000_000_000).map_or(0, |x| x.1),
            },
            on_event_latency_ns: Latency {
                p50: h.value_at_quantile(0.5),
                p90: h.value_at_quantile(0.9),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                count: h.len(),
            },
            modes: Modes {
                normal: m.mode_ns[0] as f64 / mode_total,
                reduce_only: m.mode_ns[1] as f64 / mode_total,
                halted: m.mode_ns[2] as f64 / mode_total,
            },
            book: BookHealth {
                valid_share: valid_share(m.valid_ns, duration_ns),
                diffs_applied: o.sync.diffs_applied,
                gaps: o.sync.gaps,
                resyncs: o.sync.resyncs,
                crossed: o.feed.crossed_books,
                snapshot_requests: o.feed.snapshot_requests,
            },
            warnings: Vec::new(),
        }
        .with_warnings()
    }

    fn with_warnings(mut self) -> Report {
        if self.lines.time_jumps > 0 {
            self.warnings.push(time_jump_warning(self.lines.time_jumps));
        }
        let other_bad = self.lines.bad - self.lines.time_jumps.min(self.lines.bad);
        if other_bad > 0 {
            self.warnings.push(format!(
                "{other_bad} input line(s) could not be used (bad lines, undecodable messages, a \
                 damaged file){}",
                self.lines
                    .first_skipped
                    .first()
                    .map_or(String::new(), |f| format!("; the first: {f}"))
            ));
        }
        if self.book.valid_share < MIN_VALID_SHARE {
            self.warnings.push(format!(
                "the book was valid for only {:.1}% of the run ({} gaps, {} resyncs, {} snapshot \
                 requests): the figures say little; check the instrument's venue flavour, tick \
                 and lot against the data",
                self.book.valid_share * 100.0,
                self.book.gaps,
                self.book.resyncs,
                self.book.snapshot_requests
            ));
        }
        self
    }

    /// The human summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:+.2}"));
        format!(
            "backtest {sym}: {dur:.1} s simulated, {ev} events\n\
             \x20 PnL        total {tot:+.4}  (realized {re:+.4}, unrealized {un:+.4}, fees {fe:+.4})\n\
             \x20 traded     {q:.3} ({n:.2} notional), {fills} fills, maker ratio {mr:.1}%\n\
             \x20 orders     {pl} placed, {ca} cancelled, {rj} rejected ({po} post-only), order/fill {of:.1}\n\
             \x20 cancels    {cm:.1}/min mean, {cx}/min max; discretionary max {dm} per 60 s (budget {cb})\n\
             \x20 position   min {pmin:+.3}, max {pmax:+.3}, final {pf:+.3}, mean |pos| {pa:.4} (net max {nm})\n\
             \x20 drawdown   {dd:.4}\n\
             \x20 quoting    uptime {up:.1}% of {vb:.1} s valid book, mean spread {sp:.2} bps\n\
             \x20 markouts   1 s {m1} bps, 5 s {m5} bps, 30 s {m30} bps\n\
             \x20 on_event   p50 {l50} ns, p99 {l99} ns, p99.9 {l999} ns\n\
             \x20 book       valid {bv:.1}% of the run, {bd} diffs applied, {bg} gaps, {br} resyncs\n{warn}",
            bv = self.book.valid_share * 100.0,
            bd = self.book.diffs_applied,
            bg = self.book.gaps,
            br = self.book.resyncs,
            warn = self
                .warnings
                .iter()
                .map(|w| format!("  WARNING    {w}\n"))
                .collect::<String>(),
            sym = self.symbol,
            dur = self.duration_s,
            ev = self.events,
            tot = self.pnl.total,
            re = self.pnl.realized,
            un = self.pnl.unrealized,
            fe = self.pnl.fees,
            q = self.traded.qty,
            n = self.traded.notional,
            fills = self.fills.count,
            mr = self.fills.maker_ratio * 100.0,
            pl = self.orders.placed,
            ca = self.orders.cancelled,
            rj = self.orders.rejected,
            po = self.orders.post_only_rejects,
            of = self.orders.order_to_fill,
            cm = self.orders.cancels_per_min_mean,
            cx = self.orders.cancels_per_min_max,
            dm = self.orders.discretionary_cancels_max_per_60s,
            cb = self.orders.cancel_budget_per_min,
            pmin = self.position.min,
            pmax = self.position.max,
            pf = self.position.final_,
            pa = self.position.mean_abs,
            nm = self.position.net_max,
            dd = self.max_drawdown,
            up = self.quoting.uptime * 100.0,
            vb = self.quoting.valid_book_s,
            sp = self.quoting.mean_spread_bps,
            m1 = f(self.markouts.s1_bps),
            m5 = f(self.markouts.s5_bps),
            m30 = f(self.markouts.s30_bps),
            l50 = self.on_event_latency_ns.p50,
            l99 = self.on_event_latency_ns.p99,
            l999 = self.on_event_latency_ns.p999,
        )
    }
}

/// `valid_ns` as a share of `span_ns` (0 when the span is empty).
pub fn valid_share(valid_ns: i64, span_ns: i64) -> f64 {
    if span_ns <= 0 {
        0.0
    } else {
        (valid_ns as f64 / span_ns as f64).clamp(0.0, 1.0)
    }
}

/// The warning for inputs skipped because their time jumped too far ahead.
pub fn time_jump_warning(n: u64) -> String {
    format!(
        "{n} input(s) skipped: their receive time was more than 1 h after the previous input's \
         (a garbled timestamp, or two recordings in one: run them apart)"
    )
}
