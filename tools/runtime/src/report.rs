//! `report.json`: the backtest's figures, in human units, each money figure with its currency.
//!
//! One section per instrument (`instruments`, keyed by symbol, or `venue:SYMBOL` when two
//! instruments share a symbol) and a `portfolio` in one reporting currency. Definitions (also in
//! the README, field by field):
//! - `pnl.realized`: closed PnL on average cost, before fees; `pnl.unrealized`: the open
//!   position marked at the final fair value against its average cost; `pnl.fees`: fees paid
//!   (negative = rebates received); `pnl.total = realized + unrealized − fees`. All in
//!   `pnl.currency`: the quote asset for linear and spot, the base coin for inverse (COIN-M).
//!   Spot fees on buys are charged in the base asset (`pnl.fees_base`) and enter `pnl.fees`
//!   valued at the final fair value.
//! - `traded.qty`: the sum of our fill quantities (`traded.qty_unit`: base asset or contracts);
//!   `traded.notional`: Σ price × qty, or contracts × contract size for inverse, in
//!   `traded.notional_currency`.
//! - `quoting.uptime`: the share of valid-book time during which we had a live order on both
//!   sides; `quoting.mean_spread_bps`: our best ask − best bid over that time, in bps of mid.
//! - `quoting.both_within_bps`: the share of valid-book time with our best bid and best ask both
//!   within 2, 5 and 10 bps of mid; `quoting.stale_share`: per side, the share of valid-book time
//!   the engine wanted a layer 0 there and our best live order was missing or farther than the
//!   instrument's tolerance from it.
//! - `cancels`: cancel intents, discretionary (budgeted) and forced; how far the discretionary
//!   ones' orders were from the same side's touch when the cancel was sent.
//! - `fill_rate`: per side, fill reports and place intents.
//! - `markouts_by_distance`: `markouts` at 1 s and 5 s over the fills in each band of distance
//!   from mid at the fill.
//! - `pnl_decomposition`: `spread_capture` (each fill marked at the mid at its time against its
//!   price), `inventory` (realized + unrealized − spread capture: what the position's moves
//!   made after the fills) and `fees`; `spread_capture + inventory − fees = pnl.total`.
//! - `markouts`: mean of `side · (mid(t + h) − fill price) / fill price` over fills, in bps:
//!   positive means the market moved our way (no adverse selection).
//! - `adapt` (only for an instrument with `[instrument.quote.adapt]`; absent otherwise):
//!   `model` (`grid`, `glft`, `avellaneda_stoikov`); `requotes`, the requotes priced with the
//!   section; of those `widened_by_volatility`, `widened_by_toxicity` (VPIN or the trade
//!   imbalance), `sides_pulled` (a side's nearest layers left out) and `model_quotes` (layer 0
//!   set by the model), each also in `share_of_requotes` (`null` with no requote);
//!   `sigma_bps_per_sqrt_s`: the volatility estimate (bps of fair value per √s) weighted by the
//!   valid-book time it held, as the `quoting` shares are taken (only the time after its
//!   warm-up): `p50`, `p90`, `max`, and `final` (at the end of the run; `null` before warm-up);
//!   `mean_scale`: per side, the time-weighted mean of the scale applied to the grid's
//!   distances over valid-book time (1: as configured, 2: twice as far).
//! - `portfolio`: every instrument's PnL, fees and traded notional converted into the reporting
//!   currency (the first instrument's quote asset) at the run's own final fair values, through
//!   the shortest chain of the run's instruments (BTC → USDT through BTCUSDT; USD → BTC → USDT
//!   through BTCUSD_PERP and BTCUSDT); what no chain reaches is listed in `unconverted` and left
//!   out.

use crate::backtest::Outcome;
use crate::metrics::Metrics;
use engine::{Config, Fx, InstrumentKind};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Simulated duration, seconds.
    pub duration_s: f64,
    /// Inputs the engine consumed (market events, reports, timers).
    pub events: u64,
    /// Recording lines read and skipped.
    pub lines: Lines,
    /// Per instrument, in config order, keyed by [`InstrumentReport::key`].
    #[serde(serialize_with = "by_key")]
    pub instruments: Vec<InstrumentReport>,
    /// Every instrument in one reporting currency.
    pub portfolio: Portfolio,
    /// Each `[[hedge]]` group, by its name (absent without groups).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub hedging: std::collections::BTreeMap<String, crate::hedge_report::HedgingReport>,
    /// Book health over the whole run: counts summed over the instruments, `valid_share` the
    /// lowest instrument's.
    pub book: BookHealth,
    /// Engine `on_event` latency, ns (engine + journal append, measured by the driver).
    pub on_event_latency_ns: Latency,
    /// What makes the run's figures doubtful (e.g. a book valid for less than half of it).
    pub warnings: Vec<String>,
}

fn by_key<S: Serializer>(v: &[InstrumentReport], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(v.len()))?;
    for r in v {
        m.serialize_entry(&r.key, r)?;
    }
    m.end()
}

/// One instrument's figures.
#[derive(Debug, Serialize)]
pub struct InstrumentReport {
    /// Its key in `instruments`: the symbol, or `venue:SYMBOL` when another instrument of the
    /// config has the same symbol.
    #[serde(skip)]
    pub key: String,
    /// Symbol.
    pub symbol: String,
    /// Venue (`binance-usdm`, `binance-coinm`, `binance-spot`).
    pub venue: String,
    /// `linear`, `inverse` or `spot`.
    pub kind: String,
    /// PnL, in `pnl.currency`.
    pub pnl: Pnl,
    /// Traded volume.
    pub traded: Traded,
    /// Fills.
    pub fills: Fills,
    /// Orders.
    pub orders: Orders,
    /// Position, in `position.unit`.
    pub position: PositionStats,
    /// Max drawdown of total PnL from its running peak, in `pnl.currency`.
    pub max_drawdown: f64,
    /// Quoting quality.
    pub quoting: Quoting,
    /// Fill markouts (adverse selection), bps.
    pub markouts: Markouts,
    /// Cancels: discretionary, forced, and where the discretionary ones' orders were.
    pub cancels: Cancels,
    /// Fills per order placed, per side.
    pub fill_rate: PerSide<SideFillRate>,
    /// Markouts of the fills by their distance from mid at the fill.
    pub markouts_by_distance: MarkoutsByDistance,
    /// PnL split into spread capture, inventory and fees, in `pnl.currency`.
    pub pnl_decomposition: PnlDecomposition,
    /// Share of time in each mode.
    pub modes: Modes,
    /// Book health: valid share, diffs, gaps.
    pub book: InstrumentBook,
    /// Spot: balances at the start and the end, valued in the quote asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<SpotBalances>,
    /// What `[instrument.quote.adapt]` did to the quotes (absent without the section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapt: Option<AdaptReport>,
}

/// The adaptive spreads over the run.
#[derive(Debug, Serialize)]
pub struct AdaptReport {
    /// Where layer 0 sat: `grid`, `glft` or `avellaneda_stoikov`.
    pub model: String,
    /// Requotes priced with the section (with a book to price from).
    pub requotes: u64,
    /// Requotes whose offsets volatility widened (the grid only: a model takes σ itself).
    pub widened_by_volatility: u64,
    /// Requotes that toxicity (VPIN, or the trade imbalance on one side) widened.
    pub widened_by_toxicity: u64,
    /// Requotes that pulled the nearest layers of the side the trade flow ran at.
    pub sides_pulled: u64,
    /// Requotes whose layer 0 the model set.
    pub model_quotes: u64,
    /// Each count as a share of `requotes` (`null` with no requote).
    pub share_of_requotes: AdaptShares,
    /// The volatility estimate over valid-book time, bps of fair value per √s.
    pub sigma_bps_per_sqrt_s: SigmaStats,
    /// Time-weighted mean scale on the grid's distances over valid-book time (1: as
    /// configured).
    pub mean_scale: PerSide<f64>,
}

/// [`AdaptReport`]'s counts as shares of its requotes.
#[derive(Debug, Serialize)]
pub struct AdaptShares {
    /// widened_by_volatility / requotes.
    pub widened_by_volatility: Option<f64>,
    /// widened_by_toxicity / requotes.
    pub widened_by_toxicity: Option<f64>,
    /// sides_pulled / requotes.
    pub sides_pulled: Option<f64>,
    /// model_quotes / requotes.
    pub model_quotes: Option<f64>,
}

/// The volatility estimate, time-weighted over valid-book time after its warm-up (`null`
/// when it never warmed up).
#[derive(Debug, Serialize)]
pub struct SigmaStats {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// At the end of the run.
    #[serde(rename = "final")]
    pub final_: Option<f64>,
}

impl AdaptReport {
    /// `m`'s adaptive spreads (`None` without the section); `model` the instrument's.
    pub fn of(m: &Metrics, model: Option<engine::QuoteModel>) -> Option<AdaptReport> {
        let a = m.adapt.as_ref()?;
        let c = a.counts;
        let share = |n: u64| (c.requotes > 0).then(|| n as f64 / c.requotes as f64);
        let [bid, ask] = a.mean_scale();
        Some(AdaptReport {
            model: model.unwrap_or_default().name().to_owned(),
            requotes: c.requotes,
            widened_by_volatility: c.widened_vol,
            widened_by_toxicity: c.widened_toxic,
            sides_pulled: c.pulled,
            model_quotes: c.modelled,
            share_of_requotes: AdaptShares {
                widened_by_volatility: share(c.widened_vol),
                widened_by_toxicity: share(c.widened_toxic),
                sides_pulled: share(c.pulled),
                model_quotes: share(c.modelled),
            },
            sigma_bps_per_sqrt_s: SigmaStats {
                p50: a.sigma_quantile(0.5),
                p90: a.sigma_quantile(0.9),
                max: a.sigma_max,
                final_: a.final_sigma_bps,
            },
            mean_scale: PerSide { bid, ask },
        })
    }

    /// The summary's line.
    pub fn summary(&self) -> String {
        let num = |x: Option<f64>| x.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        let pct = |x: Option<f64>| x.map_or("n/a".to_owned(), |v| format!("{:.1}%", v * 100.0));
        let s = &self.sigma_bps_per_sqrt_s;
        let r = &self.share_of_requotes;
        format!(
            "  adapt      {model}: σ p50 {p50}, p90 {p90}, max {max}, final {fin} bps/√s; mean scale bid {sb:.3}, ask {sa:.3}; of {n} requotes widened by volatility {wv}, by toxicity {wt}, pulled {pl}, model {mq}\n",
            model = self.model,
            p50 = num(s.p50),
            p90 = num(s.p90),
            max = num(s.max),
            fin = num(s.final_),
            sb = self.mean_scale.bid,
            sa = self.mean_scale.ask,
            n = self.requotes,
            wv = pct(r.widened_by_volatility),
            wt = pct(r.widened_by_toxicity),
            pl = pct(r.sides_pulled),
            mq = pct(r.model_quotes),
        )
    }
}

/// A spot account's balances.
#[derive(Debug, Serialize)]
pub struct SpotBalances {
    /// Base asset.
    pub base_asset: String,
    /// Quote asset.
    pub quote_asset: String,
    /// Base held at the start.
    pub start_base: f64,
    /// Quote held at the start.
    pub start_quote: f64,
    /// Base held at the end (fills less base fees).
    pub end_base: f64,
    /// Quote held at the end (fills less quote fees).
    pub end_quote: f64,
    /// The first fair value of the run (what the start is valued at), quote per base.
    pub start_price: f64,
    /// The final fair value (what the end is valued at).
    pub end_price: f64,
    /// start_quote + start_base × start_price.
    pub start_value: f64,
    /// end_quote + end_base × end_price: the base inventory valued at the end.
    pub end_value: f64,
    /// end_value − start_value: `pnl.total` plus the starting base's revaluation.
    pub change: f64,
    /// Selling beyond the base held was allowed.
    pub allow_margin: bool,
}

/// The portfolio in one currency.
#[derive(Debug, Serialize)]
pub struct Portfolio {
    /// The reporting currency (the first instrument's quote asset).
    pub currency: String,
    /// Σ realized, converted.
    pub realized: f64,
    /// Σ unrealized, converted.
    pub unrealized: f64,
    /// Σ fees, converted.
    pub fees: f64,
    /// Σ total PnL, converted (= realized + unrealized − fees).
    pub total: f64,
    /// Σ traded notional, converted.
    pub traded_notional: f64,
    /// The rates used, one per currency converted.
    pub conversions: Vec<Conversion>,
    /// Figures that could not be converted (no chain of the run's prices links their currency
    /// to the reporting currency), e.g. `"ETHUSDC's PnL (in USDC)"`: left out of the sums.
    pub unconverted: Vec<String>,
}

/// One conversion rate.
#[derive(Debug, Serialize)]
pub struct Conversion {
    /// From this currency.
    pub from: String,
    /// Into the reporting currency at this rate.
    pub rate: f64,
    /// Where the rate comes from (`BTCUSDT final fair value`).
    pub source: String,
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

/// PnL, in its currency.
#[derive(Debug, Serialize)]
pub struct Pnl {
    /// The PnL currency: the quote asset, or the base coin for inverse.
    pub currency: String,
    /// Realized on average cost, before fees.
    pub realized: f64,
    /// Open position at the final fair value.
    pub unrealized: f64,
    /// Fees paid (negative: rebates), base-asset fees valued at the final fair value.
    pub fees: f64,
    /// Spot: the part of the fees charged in the base asset (buys), in the base asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fees_base: Option<f64>,
    /// realized + unrealized − fees.
    pub total: f64,
}

/// Volume.
#[derive(Debug, Serialize)]
pub struct Traded {
    /// Quantity, in `qty_unit`.
    pub qty: f64,
    /// The base asset, or `contracts` for inverse.
    pub qty_unit: String,
    /// Notional, in `notional_currency`.
    pub notional: f64,
    /// The quote asset (USD for inverse).
    pub notional_currency: String,
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

/// Position over the run, in `unit` (for spot: the base balance's change from the start).
#[derive(Debug, Serialize)]
pub struct PositionStats {
    /// The base asset, or `contracts` for inverse.
    pub unit: String,
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
    /// Share of valid-book time with both our best bid and ask within N bps of mid.
    pub both_within_bps: WithinBps,
    /// Share of valid-book time each side's quote was stale: the engine wanted a layer 0 there
    /// and our best live order was missing or farther than the tolerance from it.
    pub stale_share: PerSide<f64>,
}

/// A figure per side.
#[derive(Debug, Serialize)]
pub struct PerSide<T> {
    /// Bid (buys).
    pub bid: T,
    /// Ask (sells).
    pub ask: T,
}

/// Shares of valid-book time by distance from mid (keys: bps).
#[derive(Debug, Serialize)]
pub struct WithinBps {
    /// Within 2 bps.
    #[serde(rename = "2")]
    pub bps2: f64,
    /// Within 5 bps.
    #[serde(rename = "5")]
    pub bps5: f64,
    /// Within 10 bps.
    #[serde(rename = "10")]
    pub bps10: f64,
}

/// Cancel intents.
#[derive(Debug, Serialize)]
pub struct Cancels {
    /// Discretionary (budgeted) cancels.
    pub discretionary: u64,
    /// Forced by risk or mode (exempt from the budget).
    pub forced: u64,
    /// Share of discretionary cancels whose order was within 10 bps of the same side's touch
    /// when the cancel was sent (`null` with no discretionary cancel; a cancel whose order or
    /// touch is unknown counts as not within).
    pub discretionary_within_10bps_share: Option<f64>,
    /// Percentiles of that distance, bps of the touch (over the cancels where it is known).
    pub discretionary_distance_bps: Percentiles,
}

/// Two percentiles (nearest rank); `null` with no value.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th.
    pub p90: Option<f64>,
}

/// One side's fills per order placed.
#[derive(Debug, Serialize)]
pub struct SideFillRate {
    /// Fill reports that changed the position on this side.
    pub fills: u64,
    /// Place intents on this side.
    pub placed: u64,
    /// fills / placed (`null` with nothing placed).
    pub fills_per_placed: Option<f64>,
}

/// Markouts by the fill's distance from mid (keys: the band in bps, lower edge included).
#[derive(Debug, Serialize)]
pub struct MarkoutsByDistance {
    /// 0 to 2 bps.
    #[serde(rename = "0-2")]
    pub b0: DistanceMarkouts,
    /// 2 to 5 bps.
    #[serde(rename = "2-5")]
    pub b2: DistanceMarkouts,
    /// 5 to 10 bps.
    #[serde(rename = "5-10")]
    pub b5: DistanceMarkouts,
    /// 10 to 25 bps.
    #[serde(rename = "10-25")]
    pub b10: DistanceMarkouts,
    /// 25 bps and beyond.
    #[serde(rename = "25+")]
    pub b25: DistanceMarkouts,
}

/// The markouts of one band of fills.
#[derive(Debug, Serialize)]
pub struct DistanceMarkouts {
    /// Fills in the band.
    pub fills: usize,
    /// Mean markout at 1 s, bps (as `markouts.s1_bps`).
    pub s1_bps: Option<f64>,
    /// Mean markout at 5 s, bps.
    pub s5_bps: Option<f64>,
}

/// Where the PnL came from, in `pnl.currency`.
#[derive(Debug, Serialize)]
pub struct PnlDecomposition {
    /// Σ over fills of the fill marked at the mid at its time against its price: what the
    /// quotes' distance from mid earned (negative: paid) before the market moved.
    pub spread_capture: f64,
    /// realized + unrealized − spread capture: what holding the position made as the market
    /// moved after the fills.
    pub inventory: f64,
    /// Fees paid (as `pnl.fees`).
    pub fees: f64,
}

impl PnlDecomposition {
    /// The split of `m`'s final PnL (as [`Pnl`] figures it: the final position marked at the
    /// final fair value, base-asset fees valued there too).
    pub fn of(m: &Metrics) -> PnlDecomposition {
        let inst = &m.instrument;
        let money = inst.money_unit();
        let pos = m.final_position.unwrap_or_default();
        let unreal = m.final_fv.map_or(0, |fv| pos.unrealized(inst, fv));
        let base_fees = m.final_fv.map_or(0, |fv| pos.base_fees_value(fv));
        let spread_capture = m.spread_capture() * money.to_f64(1);
        PnlDecomposition {
            spread_capture,
            inventory: money.to_f64(pos.realized + unreal) - spread_capture,
            fees: money.to_f64(pos.fees + base_fees),
        }
    }
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
    /// Times quotes were pulled because a book had no update for `stale_after_ms`.
    pub stale_periods: u64,
}

/// One instrument's book health.
#[derive(Debug, Serialize)]
pub struct InstrumentBook {
    /// Share of the run's simulated time with this instrument's book valid (0 to 1).
    pub valid_share: f64,
    /// Depth diffs applied to the book.
    pub diffs_applied: u64,
    /// Sequence gaps (each invalidates the book until a snapshot bridges the stream again).
    pub gaps: u64,
    /// Times the book became valid again after a gap.
    pub resyncs: u64,
    /// Snapshots applied.
    pub snapshots: u64,
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
    /// Builds the report from a finished backtest of `cfg`.
    pub fn new(cfg: &Config, o: &Outcome) -> Report {
        let keys = keys(cfg);
        let instruments: Vec<InstrumentReport> = o
            .metrics
            .iter()
            .zip(keys)
            .map(|(m, key)| {
                let model = cfg
                    .instruments
                    .get(m.id as usize)
                    .and_then(|c| c.adapt.as_ref())
                    .map(|a| a.model);
                InstrumentReport::new(key, m, o, model)
            })
            .collect();
        let duration_ns = o
            .metrics
            .iter()
            .map(|m| m.span.1 - m.span.0)
            .max()
            .unwrap_or(0)
            .max(1);
        let h = &o.on_event_ns;
        let valid_share = instruments
            .iter()
            .map(|r| r.book.valid_share)
            .fold(f64::INFINITY, f64::min);
        Report {
            duration_s: duration_ns as f64 / 1e9,
            events: o.events,
            lines: Lines {
                read: o.lines.0,
                bad: o.lines.1,
                time_jumps: o.feed.time_jumps,
                first_skipped: o.skipped.clone(),
            },
            portfolio: Portfolio::new(&instruments, &o.metrics),
            hedging: o
                .hedging
                .iter()
                .map(|h| {
                    (
                        h.name.clone(),
                        crate::hedge_report::HedgingReport::new(cfg, h),
                    )
                })
                .collect(),
            book: BookHealth {
                valid_share: if valid_share.is_finite() {
                    valid_share
                } else {
                    0.0
                },
                diffs_applied: o.sync.diffs_applied,
                gaps: o.sync.gaps,
                resyncs: o.sync.resyncs,
                crossed: o.feed.crossed_books,
                snapshot_requests: o.feed.snapshot_requests,
                stale_periods: o.engine.stale_periods,
            },
            instruments,
            on_event_latency_ns: Latency {
                p50: h.value_at_quantile(0.5),
                p90: h.value_at_quantile(0.9),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                count: h.len(),
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
        let many = self.instruments.len() > 1;
        for r in &self.instruments {
            if r.book.valid_share < MIN_VALID_SHARE {
                self.warnings.push(format!(
                    "the {}book was valid for only {:.1}% of the run ({} gaps, {} resyncs, {} \
                     snapshots applied): the figures say little; check the instrument's venue \
                     flavour, tick and lot against the data",
                    if many {
                        format!("{} ", r.key)
                    } else {
                        String::new()
                    },
                    r.book.valid_share * 100.0,
                    r.book.gaps,
                    r.book.resyncs,
                    r.book.snapshots
                ));
            }
        }
        if !self.portfolio.unconverted.is_empty() {
            self.warnings.push(format!(
                "the portfolio in {} leaves out {}: no instrument of the run prices their \
                 currency against it",
                self.portfolio.currency,
                self.portfolio.unconverted.join(", ")
            ));
        }
        self
    }

    /// The human summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "backtest {syms}: {dur:.1} s simulated, {ev} events\n",
            syms = self
                .instruments
                .iter()
                .map(|r| r.key.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            dur = self.duration_s,
            ev = self.events,
        );
        let many = self.instruments.len() > 1;
        for r in &self.instruments {
            if many {
                out.push_str(&format!("  [{}] {} {}\n", r.key, r.venue, r.kind));
            }
            out.push_str(&r.summary());
        }
        let p = &self.portfolio;
        if many || !p.conversions.is_empty() {
            let dp = decimals(&p.currency);
            out.push_str(&format!(
                "  portfolio  total {tot:+.dp$} {cur}  (realized {re:+.dp$}, unrealized {un:+.dp$}, fees {fe:+.dp$}){conv}\n",
                tot = p.total,
                cur = p.currency,
                re = p.realized,
                un = p.unrealized,
                fe = p.fees,
                conv = if p.conversions.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {}",
                        p.conversions
                            .iter()
                            .map(|c| format!("1 {} = {:.2} {} ({})", c.from, c.rate, p.currency, c.source))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ));
        }
        for (name, h) in &self.hedging {
            out.push_str(&h.summary(name));
        }
        out.push_str(&format!(
            "  on_event   p50 {} ns, p99 {} ns, p99.9 {} ns\n",
            self.on_event_latency_ns.p50,
            self.on_event_latency_ns.p99,
            self.on_event_latency_ns.p999
        ));
        for w in &self.warnings {
            out.push_str(&format!("  WARNING    {w}\n"));
        }
        out
    }
}

/// Decimals to print an amount of `currency` with: 8 for coins, 4 for everything else.
fn decimals(currency: &str) -> usize {
    match currency {
        "USDT" | "USDC" | "USD" | "FDUSD" | "BUSD" | "TUSD" | "DAI" | "EUR" | "TRY" | "BRL" => 4,
        _ => 8,
    }
}

/// Each instrument's key in the report: its symbol, or `venue:SYMBOL` when another instrument
/// of the config has the same symbol.
pub fn keys(cfg: &Config) -> Vec<String> {
    let sym = |i: usize| cfg.instruments[i].instrument.symbol;
    (0..cfg.instruments.len())
        .map(|i| {
            let shared = (0..cfg.instruments.len()).any(|j| j != i && sym(j) == sym(i));
            if shared {
                format!("{}:{}", cfg.instruments[i].venue.name(), sym(i))
            } else {
                sym(i).to_string()
            }
        })
        .collect()
}

impl InstrumentReport {
    fn new(
        key: String,
        m: &Metrics,
        o: &Outcome,
        model: Option<engine::QuoteModel>,
    ) -> InstrumentReport {
        let inst = &m.instrument;
        let money = inst.money_unit();
        let notional = inst.notional_unit();
        let lot = inst.lot.format(1).parse::<f64>().unwrap_or(f64::NAN);
        let pos = m.final_position.unwrap_or_default();
        let unreal = m.final_fv.map_or(0, |fv| pos.unrealized(inst, fv));
        let base_fees = m.final_fv.map_or(0, |fv| pos.base_fees_value(fv));
        let fees = pos.fees + base_fees;
        let (maker, taker) = (pos.maker_fills, pos.taker_fills);
        let fills = maker + taker;
        let os = m.order_stats.unwrap_or_default();
        let duration_ns = (m.span.1 - m.span.0).max(1);
        let cancels: u64 = m.cancels_per_min.iter().sum();
        let mode_total = m.mode_ns.iter().sum::<i64>().max(1) as f64;
        let mean_mid = if m.mids.is_empty() {
            f64::NAN
        } else {
            m.mids.iter().map(|x| x.1).sum::<f64>() / m.mids.len() as f64
        };
        let qty_unit = match inst.kind {
            InstrumentKind::Inverse => "contracts".to_owned(),
            _ => inst.base_asset.to_string(),
        };
        let sync = o
            .sync_by_instrument
            .get(m.id as usize)
            .copied()
            .unwrap_or_default();
        let price = |fv: Option<Fx>| fv.map_or(f64::NAN, |fv| fv.to_num::<f64>() * tick(m));
        let share = |ns: i64| {
            if m.valid_ns > 0 {
                (ns as f64 / m.valid_ns as f64).clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let by_side = m.fills_by_side();
        let rate = |k: usize| SideFillRate {
            fills: by_side[k],
            placed: m.placed_by_side[k],
            fills_per_placed: (m.placed_by_side[k] > 0)
                .then(|| by_side[k] as f64 / m.placed_by_side[k] as f64),
        };
        let distances = m.known_cancel_distances();
        let rank = |q: f64| {
            (!distances.is_empty()).then(|| {
                let k = ((q * distances.len() as f64).ceil() as usize).clamp(1, distances.len());
                distances[k - 1]
            })
        };
        let discretionary = m.discretionary_cancels.len() as u64;
        let near = distances
            .iter()
            .filter(|d| **d <= crate::metrics::NEAR_TOUCH_BPS)
            .count();
        let [b0, b2, b5, b10, b25] = m.markouts_by_distance().map(|b| DistanceMarkouts {
            fills: b.fills,
            s1_bps: b.s1_bps,
            s5_bps: b.s5_bps,
        });
        let balances = m.balances.map(|b| {
            let base_unit = lot;
            let start_base = b.base_lots as f64 * base_unit;
            let start_quote = money.to_f64(b.quote_units);
            let end_base = (b.base_lots as f64 + pos.qty as f64) * base_unit
                - pos.fees_base as f64 / engine::SPOT_BASE_FEE_UNITS_PER_LOT as f64 * base_unit;
            let end_quote = money.to_f64(b.quote_units + pos.cash);
            let (p0, p1) = (price(m.first_fv), price(m.final_fv));
            SpotBalances {
                base_asset: inst.base_asset.to_string(),
                quote_asset: inst.quote_asset.to_string(),
                start_base,
                start_quote,
                end_base,
                end_quote,
                start_price: p0,
                end_price: p1,
                start_value: start_quote + start_base * p0,
                end_value: end_quote + end_base * p1,
                change: end_quote + end_base * p1 - (start_quote + start_base * p0),
                allow_margin: b.allow_margin,
            }
        });
        InstrumentReport {
            key,
            symbol: inst.symbol.to_string(),
            venue: m.venue.name().to_owned(),
            kind: inst.kind.name().to_owned(),
            pnl: Pnl {
                currency: inst.pnl_asset().to_string(),
                realized: money.to_f64(pos.realized),
                unrealized: money.to_f64(unreal),
                fees: money.to_f64(fees),
                fees_base: (inst.kind == InstrumentKind::Spot).then(|| {
                    pos.fees_base as f64 / engine::SPOT_BASE_FEE_UNITS_PER_LOT as f64 * lot
                }),
                total: money.to_f64(pos.realized + unreal - fees),
            },
            traded: Traded {
                qty: pos.traded_qty as f64 * lot,
                qty_unit: qty_unit.clone(),
                notional: notional.to_f64(pos.traded_notional),
                notional_currency: inst.quote_asset.to_string(),
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
                unit: qty_unit,
                min: m.pos_min as f64 * lot,
                max: m.pos_max as f64 * lot,
                final_: pos.qty as f64 * lot,
                mean_abs: m.abs_pos_ns / duration_ns as f64 * lot,
                net_max: m.net_max as f64 * lot,
            },
            max_drawdown: money.to_f64(m.max_drawdown),
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
                both_within_bps: WithinBps {
                    bps2: share(m.both_within_ns[0]),
                    bps5: share(m.both_within_ns[1]),
                    bps10: share(m.both_within_ns[2]),
                },
                stale_share: PerSide {
                    bid: share(m.stale_ns[0]),
                    ask: share(m.stale_ns[1]),
                },
            },
            cancels: Cancels {
                discretionary,
                forced: m.forced_cancels,
                discretionary_within_10bps_share: (discretionary > 0)
                    .then(|| near as f64 / discretionary as f64),
                discretionary_distance_bps: Percentiles {
                    p50: rank(0.5),
                    p90: rank(0.9),
                },
            },
            fill_rate: PerSide {
                bid: rate(0),
                ask: rate(1),
            },
            markouts_by_distance: MarkoutsByDistance {
                b0,
                b2,
                b5,
                b10,
                b25,
            },
            pnl_decomposition: PnlDecomposition::of(m),
            markouts: Markouts {
                s1_bps: m.markout_bps(1_000_000_000).map(|x| x.0),
                s5_bps: m.markout_bps(5_000_000_000).map(|x| x.0),
                s30_bps: m.markout_bps(30_000_000_000).map(|x| x.0),
                fills_at_30s: m.markout_bps(30_000_000_000).map_or(0, |x| x.1),
            },
            modes: Modes {
                normal: m.mode_ns[0] as f64 / mode_total,
                reduce_only: m.mode_ns[1] as f64 / mode_total,
                halted: m.mode_ns[2] as f64 / mode_total,
            },
            book: InstrumentBook {
                valid_share: valid_share(m.valid_ns, duration_ns),
                diffs_applied: sync.diffs_applied,
                gaps: sync.gaps,
                resyncs: sync.resyncs,
                snapshots: sync.snapshots,
            },
            balances,
            adapt: AdaptReport::of(m, model),
        }
    }

    /// This instrument's lines of the summary.
    pub fn summary(&self) -> String {
        let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:+.2}"));
        let dp = decimals(&self.pnl.currency);
        let cur = &self.pnl.currency;
        let base_fee = self.pnl.fees_base.map_or(String::new(), |b| {
            format!(", of which {b:.8} {} on buys", self.position.unit)
        });
        let balances = self.balances.as_ref().map_or(String::new(), |b| {
            format!(
                "  balances   {sb:.5} {ba} + {sq:.2} {qa} → {eb:.5} {ba} + {eq:.2} {qa}; value {sv:.2} → {ev:.2} {qa} ({ch:+.4}, base valued at the end)\n",
                sb = b.start_base,
                ba = b.base_asset,
                sq = b.start_quote,
                qa = b.quote_asset,
                eb = b.end_base,
                eq = b.end_quote,
                sv = b.start_value,
                ev = b.end_value,
                ch = b.change,
            )
        });
        format!(
            "  PnL        total {tot:+.dp$} {cur}  (realized {re:+.dp$}, unrealized {un:+.dp$}, fees {fe:+.dp$}{base_fee})\n\
             \x20 traded     {q:.3} {qu} ({n:.2} {nc} notional), {fills} fills, maker ratio {mr:.1}%\n\
             \x20 orders     {pl} placed, {ca} cancelled, {rj} rejected ({po} post-only), order/fill {of:.1}\n\
             \x20 cancels    {cm:.1}/min mean, {cx}/min max; discretionary max {dm} per 60 s (budget {cb})\n\
             \x20 position   min {pmin:+.3}, max {pmax:+.3}, final {pf:+.3}, mean |pos| {pa:.4} (net max {nm}) {qu}\n\
             {balances}\
             \x20 drawdown   {dd:.dp$} {cur}\n\
             \x20 quoting    uptime {up:.1}% of {vb:.1} s valid book, mean spread {sp:.2} bps\n\
             \x20 markouts   1 s {m1} bps, 5 s {m5} bps, 30 s {m30} bps\n\
             \x20 near mid   both sides within 5 bps {w5:.1}% of valid book; stale bid {sb:.1}%, ask {sa:.1}%; discretionary cancels within 10 bps of the touch {dn}\n\
             {adapt}\
             \x20 PnL split  spread capture {sc:+.dp$}, inventory {iv:+.dp$}, fees {fe:+.dp$} {cur}\n\
             \x20 book       valid {bv:.1}% of the run, {bd} diffs applied, {bg} gaps, {br} resyncs\n",
            bv = self.book.valid_share * 100.0,
            bd = self.book.diffs_applied,
            bg = self.book.gaps,
            br = self.book.resyncs,
            tot = self.pnl.total,
            re = self.pnl.realized,
            un = self.pnl.unrealized,
            fe = self.pnl.fees,
            q = self.traded.qty,
            qu = self.traded.qty_unit,
            n = self.traded.notional,
            nc = self.traded.notional_currency,
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
            w5 = self.quoting.both_within_bps.bps5 * 100.0,
            sb = self.quoting.stale_share.bid * 100.0,
            sa = self.quoting.stale_share.ask * 100.0,
            dn = self
                .cancels
                .discretionary_within_10bps_share
                .map_or("n/a".to_owned(), |x| format!("{:.1}%", x * 100.0)),
            sc = self.pnl_decomposition.spread_capture,
            iv = self.pnl_decomposition.inventory,
            adapt = self
                .adapt
                .as_ref()
                .map_or(String::new(), AdaptReport::summary),
        )
    }
}

/// One tick in the quote currency, as a float (for reports).
fn tick(m: &Metrics) -> f64 {
    m.instrument
        .tick
        .format(1)
        .parse::<f64>()
        .unwrap_or(f64::NAN)
}

impl Portfolio {
    fn new(reports: &[InstrumentReport], metrics: &[Metrics]) -> Portfolio {
        let currency = metrics
            .first()
            .map_or_else(String::new, |m| m.instrument.quote_asset.to_string());
        // base → quote at each instrument's final fair value.
        let prices: Vec<(String, String, f64, String)> = metrics
            .iter()
            .filter_map(|m| {
                let fv = m.final_fv?;
                let p = fv.to_num::<f64>() * tick(m);
                (p.is_finite() && p > 0.0).then(|| {
                    (
                        m.instrument.base_asset.to_string(),
                        m.instrument.quote_asset.to_string(),
                        p,
                        format!("{} final fair value", m.instrument.symbol),
                    )
                })
            })
            .collect();
        // Every currency the run's prices reach from the reporting currency, breadth first in
        // instrument order (deterministic): an edge base → quote at price p gives
        // rate(base) = p × rate(quote) and rate(quote) = rate(base) / p, where rate(X) is units
        // of the reporting currency per X. USD reaches USDT through BTCUSD_PERP and BTCUSDT.
        let mut rates: Vec<(String, f64, String)> = vec![(currency.clone(), 1.0, String::new())];
        let mut k = 0;
        while k < rates.len() {
            let (known, r, via) = rates[k].clone();
            for (b, q, p, src) in &prices {
                let next = if *q == known {
                    Some((b.clone(), r * p))
                } else if *b == known {
                    Some((q.clone(), r / p))
                } else {
                    None
                };
                if let Some((cur, rate)) = next {
                    if !rates.iter().any(|x| x.0 == cur) {
                        let source = if via.is_empty() {
                            src.clone()
                        } else {
                            format!("{via}, then {src}")
                        };
                        rates.push((cur, rate, source));
                    }
                }
            }
            k += 1;
        }
        let rate = |from: &str| {
            rates
                .iter()
                .find(|x| x.0 == from)
                .map(|x| (x.1, x.2.clone()))
        };
        let mut p = Portfolio {
            currency: currency.clone(),
            realized: 0.0,
            unrealized: 0.0,
            fees: 0.0,
            total: 0.0,
            traded_notional: 0.0,
            conversions: Vec::new(),
            unconverted: Vec::new(),
        };
        let used = |p: &mut Portfolio, from: &String, rate: f64, source: String| {
            if *from != currency && !p.conversions.iter().any(|c| &c.from == from) {
                p.conversions.push(Conversion {
                    from: from.clone(),
                    rate,
                    source,
                });
            }
        };
        for r in reports {
            match rate(&r.pnl.currency) {
                Some((pr, src)) => {
                    used(&mut p, &r.pnl.currency, pr, src);
                    p.realized += r.pnl.realized * pr;
                    p.unrealized += r.pnl.unrealized * pr;
                    p.fees += r.pnl.fees * pr;
                    p.total += r.pnl.total * pr;
                }
                None => p
                    .unconverted
                    .push(format!("{}'s PnL (in {})", r.key, r.pnl.currency)),
            }
            match rate(&r.traded.notional_currency) {
                Some((nr, src)) => {
                    used(&mut p, &r.traded.notional_currency, nr, src);
                    p.traded_notional += r.traded.notional * nr;
                }
                None => p.unconverted.push(format!(
                    "{}'s notional (in {})",
                    r.key, r.traded.notional_currency
                )),
            }
        }
        p
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

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
