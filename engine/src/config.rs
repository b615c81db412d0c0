//! Engine configuration: TOML in, validated and compiled to integer / `fixed` values out.
//!
//! Every invalid value is an error that names the field, the value and the rule it breaks.
//! Coefficients are read as decimals and converted to [`Fx`] once, here; nothing on the order
//! path touches a float.

use crate::book::OrderBook;
use crate::instrument::{Instrument, InstrumentError, InstrumentKind, InstrumentSpec};
use fixed::types::I64F64;
use serde::Deserialize;

/// The engine's fixed-point type for prices in ticks and for coefficients.
pub type Fx = I64F64;

/// Most layers a side.
pub const MAX_LAYERS: usize = 64;

/// A configuration error: which field, what value, which rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML does not parse or has unknown / mistyped fields.
    #[error("config is not valid TOML for ringmaker: {0}")]
    Toml(String),
    /// A value breaks a rule.
    #[error("invalid {field} = {value}: {rule}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// The value given.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// An instrument's grids or minimums are invalid.
    #[error("instrument {symbol}: {source}")]
    Instrument {
        /// The symbol.
        symbol: String,
        /// What is wrong.
        #[source]
        source: InstrumentError,
    },
}

/// Which fair value to quote around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FairValue {
    /// (best bid + best ask) / 2.
    Mid,
    /// (bid · ask_qty + ask · bid_qty) / (bid_qty + ask_qty) of the top level.
    Microprice,
}

/// Where the top of book used for pricing comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopOfBookSource {
    /// The freshest of the depth book's touch and the last best bid/offer (`bookTicker`),
    /// compared by the venue's book update id (`u`): a best bid/offer newer than the last depth
    /// message applied is used until a depth message catches up; on a tie the depth book wins.
    /// The venue publishes `bookTicker` per top-of-book change, one small message, usually before
    /// the depth diff that carries the same change (which can hold hundreds of levels).
    #[default]
    Freshest,
    /// The depth book's touch only (best bid/offer events are ignored).
    DepthBook,
}

/// Which venue, and which of its markets, an instrument trades on. The engine itself treats every
/// flavour alike; the feed handler takes the book-sync rule from it and the gateway the venue's
/// order-entry dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
pub enum VenueFlavour {
    /// Binance USDⓈ-M (and USDC-M) perpetual futures.
    #[default]
    #[serde(rename = "binance-usdm")]
    BinanceUsdm,
    /// Binance COIN-M (inverse) futures.
    #[serde(rename = "binance-coinm")]
    BinanceCoinm,
    /// Binance spot.
    #[serde(rename = "binance-spot")]
    BinanceSpot,
}

impl VenueFlavour {
    /// Its place in [`VenueFlavour::ALL`] (and in per-venue tables).
    pub fn index(self) -> usize {
        match self {
            VenueFlavour::BinanceUsdm => 0,
            VenueFlavour::BinanceCoinm => 1,
            VenueFlavour::BinanceSpot => 2,
        }
    }

    /// Every flavour, in index order.
    pub const ALL: [VenueFlavour; 3] = [
        VenueFlavour::BinanceUsdm,
        VenueFlavour::BinanceCoinm,
        VenueFlavour::BinanceSpot,
    ];

    /// The name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            VenueFlavour::BinanceUsdm => "binance-usdm",
            VenueFlavour::BinanceCoinm => "binance-coinm",
            VenueFlavour::BinanceSpot => "binance-spot",
        }
    }
}

/// Unit of the grid offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetUnit {
    /// Basis points of fair value.
    Bps,
    /// Ticks.
    Ticks,
}

/// What to do when the stop loss is hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStopLoss {
    /// Quote only the reducing side.
    ReduceOnly,
    /// Send one IOC order for the whole position, then reduce-only.
    Flatten,
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Engine-wide settings.
    #[serde(default)]
    pub engine: EngineSection,
    /// One entry per instrument, in instrument-id order.
    #[serde(rename = "instrument")]
    pub instruments: Vec<InstrumentSection>,
    /// Hedge groups (`[[hedge]]`): quote some instruments, keep the delta near zero on others.
    #[serde(default, rename = "hedge")]
    pub hedges: Vec<crate::hedge_config::HedgeSection>,
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Venue order limit per 10 s (Binance USD-M: 300 per account).
    pub orders_per_10s: u32,
    /// Venue order limit per minute (Binance USD-M: 1,200 per account).
    pub orders_per_min: u32,
    /// Book window per instrument, ticks.
    pub book_slots: usize,
    /// Reconciliation: an order of ours open at the venue that the engine does not hold (an
    /// earlier run's, by its client order id) is taken over as a working order (`true`) instead
    /// of cancelled (`false`, the default).
    pub adopt_unknown_orders: bool,
    /// Order limits of one venue, where they differ from `orders_per_10s` / `orders_per_min`
    /// (`[engine.venues.binance-spot]`): each venue's account limits are its own, shared by the
    /// instruments on it.
    pub venues: std::collections::BTreeMap<VenueFlavour, VenueLimitsSection>,
}

/// `[engine.venues.<venue>]`: one venue's order limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueLimitsSection {
    /// Places per 10 s (default: `[engine] orders_per_10s`).
    pub orders_per_10s: Option<u32>,
    /// Places per minute (default: `[engine] orders_per_min`).
    pub orders_per_min: Option<u32>,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            orders_per_10s: 300,
            orders_per_min: 1200,
            book_slots: 1 << 20,
            adopt_unknown_orders: false,
            venues: Default::default(),
        }
    }
}

/// `[[instrument]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSection {
    /// Venue symbol.
    pub symbol: String,
    /// Venue flavour (default `binance-usdm`).
    #[serde(default)]
    pub venue: VenueFlavour,
    /// Linear, inverse or spot (default: the venue's: usdm linear, coinm inverse, spot spot).
    pub kind: Option<InstrumentKind>,
    /// Base asset (default: read from the symbol).
    pub base_asset: Option<String>,
    /// Quote asset (default: read from the symbol; `USD` for COIN-M).
    pub quote_asset: Option<String>,
    /// Tick size, decimal string.
    pub tick: String,
    /// Order lot (step) size, decimal string; contracts for inverse.
    pub lot: String,
    /// Market-data quantity grid (default: `lot`); `lot` must be a whole number of it.
    pub book_lot: Option<String>,
    /// Minimum order quantity, decimal string.
    pub min_qty: String,
    /// Minimum order notional (quote currency; USD for inverse), decimal string.
    pub min_notional: String,
    /// Inverse only: quote currency (USD) per contract.
    pub contract_size: Option<String>,
    /// Spot only: starting balances and whether selling beyond the base held is allowed.
    pub balances: Option<BalancesSection>,
    /// Quoting (a hedge instrument of a `[[hedge]]` group may leave it out: it quotes no grid,
    /// and prices its fair value from the mid).
    pub quote: Option<QuoteSection>,
    /// Risk.
    pub risk: RiskSection,
    /// Fees (for reports and the simulated venue).
    #[serde(default)]
    pub fees: FeeSection,
}

/// `[instrument.balances]` (spot).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancesSection {
    /// Base asset held at the start, decimal string on the lot grid.
    pub base: String,
    /// Quote asset held at the start, decimal string.
    pub quote: String,
    /// Whether the engine may sell more base than it holds (margin); default false.
    #[serde(default)]
    pub allow_margin: bool,
}

/// `[instrument.quote]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteSection {
    /// Mid or microprice.
    pub fair_value: FairValue,
    /// Where the top of book comes from (default: the freshest of depth book and best bid/offer).
    #[serde(default)]
    pub top_of_book: TopOfBookSource,
    /// Unit of `start_offset`, `first_spacing`, `max_spacing`, `tolerance`.
    pub offset_unit: OffsetUnit,
    /// Distance of layer 0 from the reservation price.
    pub start_offset: f64,
    /// Spacing between layers 0 and 1.
    pub first_spacing: f64,
    /// Each spacing is the previous one times this (> 1).
    pub multiplier: f64,
    /// Spacing cap.
    pub max_spacing: f64,
    /// Layers per side.
    pub layers: usize,
    /// Size of each layer, decimal string in base units.
    pub layer_size: String,
    /// Minimum spread between layer 0s, basis points of fair value.
    pub min_spread_bps: f64,
    /// Inventory skew coefficient: skew = -ratio · coeff · fv.
    pub skew_coeff: f64,
    /// Ratio changes smaller than this reuse the previous ratio.
    #[serde(default = "default_hysteresis")]
    pub skew_hysteresis: f64,
    /// Keep a working order within this distance of a desired layer (default 0.9 · start_offset).
    pub tolerance: Option<f64>,
    /// The keep-or-replace tolerance grows with a layer's distance from fair value: a layer `d`
    /// away keeps an order within `tolerance + tolerance_growth · d` (default 0: the same
    /// tolerance at every layer). Far layers matter less than their cancels cost.
    #[serde(default = "default_tolerance_growth")]
    pub tolerance_growth: f64,
    /// Working orders farther out than the deepest layer kept per side as a reserve instead of
    /// being cancelled (default 0), while the exposure they hold leaves room for every layer the
    /// strategy wants. Trailing layers after a move cost no cancel.
    #[serde(default)]
    pub keep_beyond: usize,
    /// Spreads that adapt: volatility, toxicity, funding, a model for layer 0 (absent: the
    /// fixed grid). See `docs/STRATEGY.md`.
    #[serde(default)]
    pub adapt: Option<crate::adapt::AdaptSection>,
}

fn default_tolerance_growth() -> f64 {
    0.0
}

fn default_hysteresis() -> f64 {
    0.05
}

/// `[instrument.risk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSection {
    /// Position cap, decimal string in base units.
    pub net_max: String,
    /// Worst-case batch cap (default `net_max`), decimal string.
    pub batch_cap: Option<String>,
    /// Inventory ratio at which only the reducing side is quoted.
    pub reduce_only_thresh: f64,
    /// Unrealized loss / position notional that trips the stop loss.
    pub stop_loss: f64,
    /// Reaction to the stop loss.
    pub on_stop_loss: OnStopLoss,
    /// Daily loss (realized + unrealized - fees since 00:00 UTC) in the PnL currency (quote;
    /// the base coin for inverse), decimal string.
    pub daily_loss_limit: String,
    /// Largest position notional, quote currency (USD for inverse); none by default.
    pub max_notional: Option<String>,
    /// Orders priced further than this share of fair value are refused.
    pub max_deviation: f64,
    /// A fair-value move larger than this share within `circuit_window_ms` halts.
    pub max_price_change: f64,
    /// Circuit breaker window, ms.
    pub circuit_window_ms: u64,
    /// No book update for this long (event time) pulls quotes.
    pub stale_after_ms: u64,
    /// Discretionary cancels allowed per minute on this instrument.
    pub cancel_budget_per_min: u32,
}

/// `[instrument.fees]`, basis points of notional; negative maker is a rebate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSection {
    /// Maker fee, bps.
    pub maker_bps: f64,
    /// Taker fee, bps.
    pub taker_bps: f64,
}

impl Default for FeeSection {
    fn default() -> Self {
        // Binance USD-M VIP 0 with BNB off.
        FeeSection {
            maker_bps: 2.0,
            taker_bps: 5.0,
        }
    }
}

/// A spot instrument's starting balances, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    /// Base held at the start, lots.
    pub base_lots: i64,
    /// Quote held at the start, money units (tick × lot).
    pub quote_units: i128,
    /// Selling beyond the base held is allowed.
    pub allow_margin: bool,
}

/// A validated engine configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Venue order limit per 10 s (the default of every venue).
    pub orders_per_10s: u32,
    /// Venue order limit per minute (the default of every venue).
    pub orders_per_min: u32,
    /// Each venue's limits `(per 10 s, per minute)`, indexed by [`VenueFlavour::index`].
    pub venue_limits: [(u32, u32); 3],
    /// Book window per instrument, ticks.
    pub book_slots: usize,
    /// Take over unknown orders of ours at reconciliation instead of cancelling them.
    pub adopt_unknown_orders: bool,
    /// Instruments by id.
    pub instruments: Vec<InstrumentConfig>,
    /// Hedge groups (`[[hedge]]`).
    pub hedges: Vec<crate::hedge_config::HedgeGroup>,
    /// The TOML it came from (journaled as the config record).
    pub source: String,
}

/// Why a config cannot replace the running one live (a hot reload): what it changes that the
/// engine cannot change under working orders and a position. Quote parameters, risk limits,
/// budgets, fees and the venue's order limits can change live; these cannot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadRefused {
    /// Instruments added or removed (ids are positions in the list, and every order, position
    /// and journal record is keyed by them).
    #[error(
        "the instrument set changed ({old} instruments → {new}): restart the run to change it"
    )]
    InstrumentCount {
        /// Instruments running.
        old: usize,
        /// Instruments in the new config.
        new: usize,
    },
    /// An instrument's identity or grid changed (symbol, venue, kind, tick, lot, contract size,
    /// minimums): working orders and the position are in the old units.
    #[error(
        "instrument {index} ({symbol}): its {what} changed; orders and the position are kept in \
         the old one: restart the run to change it"
    )]
    Instrument {
        /// Instrument id.
        index: usize,
        /// Its symbol in the running config.
        symbol: String,
        /// What changed.
        what: &'static str,
    },
    /// The `[[hedge]]` groups' members changed (their limits may change live).
    #[error("the [[hedge]] groups' instruments changed: restart the run to change them (band, limits, rates and caps may change live)")]
    HedgeGroups,
    /// `[engine] book_slots`: the books are allocated at start.
    #[error("[engine] book_slots changed ({old} → {new}): the books are allocated at start; restart the run to change it")]
    BookSlots {
        /// Running.
        old: usize,
        /// New.
        new: usize,
    },
}

impl Config {
    /// Whether `new` may replace `self` live ([`ReloadRefused`] says why not).
    pub fn reload_refusal(&self, new: &Config) -> Option<ReloadRefused> {
        reload_refusal(self.instruments.iter(), self.book_slots, &self.hedges, new)
    }
}

/// [`Config::reload_refusal`] of running instruments `old` (in id order) and book slots.
pub(crate) fn reload_refusal<'a>(
    old: impl ExactSizeIterator<Item = &'a InstrumentConfig>,
    book_slots: usize,
    hedges: &[crate::hedge_config::HedgeGroup],
    new: &Config,
) -> Option<ReloadRefused> {
    let members = |h: &[crate::hedge_config::HedgeGroup]| {
        h.iter()
            .map(|g| (g.quoted.clone(), g.hedges.clone()))
            .collect::<Vec<_>>()
    };
    if members(hedges) != members(&new.hedges) {
        return Some(ReloadRefused::HedgeGroups);
    }
    if old.len() != new.instruments.len() {
        return Some(ReloadRefused::InstrumentCount {
            old: old.len(),
            new: new.instruments.len(),
        });
    }
    if book_slots != new.book_slots {
        return Some(ReloadRefused::BookSlots {
            old: book_slots,
            new: new.book_slots,
        });
    }
    for (index, (a, b)) in old.zip(&new.instruments).enumerate() {
        let what = if a.venue != b.venue {
            "venue"
        } else if a.instrument != b.instrument {
            "instrument definition (symbol, kind, tick, lot, contract size or minimums)"
        } else if a.balances != b.balances {
            "starting balances"
        } else {
            continue;
        };
        return Some(ReloadRefused::Instrument {
            index,
            symbol: a.instrument.symbol.as_str().to_owned(),
            what,
        });
    }
    None
}

/// One instrument's validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrumentConfig {
    /// Grids and minimums.
    pub instrument: Instrument,
    /// The venue and market it trades on.
    pub venue: VenueFlavour,
    /// Fair value flavour.
    pub fair_value: FairValue,
    /// Top-of-book source for pricing and the post-only guard.
    pub top_of_book: TopOfBookSource,
    /// Offset unit.
    pub offset_unit: OffsetUnit,
    /// Cumulative distance of each layer from the reservation price, in `offset_unit`.
    pub layer_distance: Vec<Fx>,
    /// Layers per side.
    pub layers: usize,
    /// Layer size, lots.
    pub layer_size: i64,
    /// Minimum spread, bps of fv.
    pub min_spread_bps: Fx,
    /// Skew coefficient.
    pub skew_coeff: Fx,
    /// Skew hysteresis.
    pub skew_hysteresis: Fx,
    /// Tolerance in `offset_unit`.
    pub tolerance: Fx,
    /// Growth of the tolerance per unit of a layer's distance from fair value.
    pub tolerance_growth: Fx,
    /// Orders kept beyond the deepest layer per side.
    pub keep_beyond: usize,
    /// `[instrument.quote.adapt]`, validated.
    pub adapt: Option<crate::adapt::AdaptConfig>,
    /// Position cap, lots.
    pub net_max: i64,
    /// Batch cap, lots.
    pub batch_cap: i64,
    /// Reduce-only threshold (ratio).
    pub reduce_only_thresh: Fx,
    /// Stop loss (ratio).
    pub stop_loss: Fx,
    /// Stop-loss reaction.
    pub on_stop_loss: OnStopLoss,
    /// Daily loss limit, money units (the PnL currency).
    pub daily_loss_limit: i64,
    /// Largest position notional, notional units.
    pub max_notional: Option<i128>,
    /// Spot: starting balances (`None` for derivatives).
    pub balances: Option<Balances>,
    /// Price band (ratio of fv).
    pub max_deviation: Fx,
    /// Circuit breaker threshold (ratio).
    pub max_price_change: Fx,
    /// Circuit window, ns.
    pub circuit_window_ns: i64,
    /// Stale book threshold, ns.
    pub stale_after_ns: i64,
    /// Discretionary cancels per minute.
    pub cancel_budget_per_min: u32,
    /// Maker fee, bps (negative: rebate).
    pub maker_fee_bps: Fx,
    /// Taker fee, bps.
    pub taker_fee_bps: Fx,
    /// A hedge instrument of a `[[hedge]]` group: it quotes no grid; its orders are the hedge's.
    pub hedge_only: bool,
}

pub(crate) fn invalid(
    field: impl Into<String>,
    value: impl ToString,
    rule: &'static str,
) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        value: value.to_string(),
        rule,
    }
}

pub(crate) fn fx(field: &str, v: f64) -> Result<Fx, ConfigError> {
    if !v.is_finite() {
        return Err(invalid(field, v, "must be a finite number"));
    }
    Fx::checked_from_num(v).ok_or_else(|| invalid(field, v, "out of range"))
}

impl Config {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        // The path of the field goes with a type error ("instrument[0].quote.start_offset:
        // invalid type: string, expected f64"), as it does with a range error.
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::Toml(e.message().to_owned()))?;
        let file: ConfigFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                ConfigError::Toml(inner.message().to_owned())
            } else {
                ConfigError::Toml(format!("{path}: {}", inner.message()))
            }
        })?;
        Self::validate(file, text.to_owned())
    }

    /// Validates a parsed file.
    pub fn validate(file: ConfigFile, source: String) -> Result<Config, ConfigError> {
        let e = &file.engine;
        if e.orders_per_10s == 0 {
            return Err(invalid("engine.orders_per_10s", 0, "must be at least 1"));
        }
        if e.orders_per_min == 0 {
            return Err(invalid("engine.orders_per_min", 0, "must be at least 1"));
        }
        if !(4096..=OrderBook::MAX_SLOTS).contains(&e.book_slots) {
            return Err(invalid(
                "engine.book_slots",
                e.book_slots,
                "must be between 4096 and 2^26",
            ));
        }
        let mut venue_limits = [(e.orders_per_10s, e.orders_per_min); 3];
        for (v, l) in &e.venues {
            let lim = &mut venue_limits[v.index()];
            if let Some(n) = l.orders_per_10s {
                lim.0 = n;
            }
            if let Some(n) = l.orders_per_min {
                lim.1 = n;
            }
            if lim.0 == 0 || lim.1 == 0 {
                return Err(invalid(
                    format!("engine.venues.{}", v.name()),
                    format!("{} / {}", lim.0, lim.1),
                    "orders_per_10s and orders_per_min must be at least 1",
                ));
            }
        }
        if file.instruments.is_empty() {
            return Err(invalid("instrument", "[]", "at least one instrument"));
        }
        if file.instruments.len() > u16::MAX as usize {
            return Err(invalid(
                "instrument",
                file.instruments.len(),
                "at most 65535 instruments",
            ));
        }
        let members = crate::hedge_config::members(&file.hedges, &file.instruments)?;
        let mut hedge_only = vec![false; file.instruments.len()];
        for &id in members.iter().flat_map(|(_, hedge)| hedge) {
            hedge_only[id as usize] = true;
        }
        let mut instruments = Vec::with_capacity(file.instruments.len());
        for (i, s) in file.instruments.iter().enumerate() {
            instruments.push(instrument(i, s, hedge_only[i])?);
        }
        // One symbol may trade on several venues (BTCUSDT on USDⓈ-M and on spot): an
        // instrument is its (symbol, venue) pair, and each pair is there at most once.
        for (i, a) in instruments.iter().enumerate() {
            if instruments[..i]
                .iter()
                .any(|b| b.instrument.symbol == a.instrument.symbol && b.venue == a.venue)
            {
                return Err(invalid(
                    format!("instrument[{i}].symbol"),
                    format!("{} on {}", a.instrument.symbol, a.venue.name()),
                    "each (symbol, venue) pair at most once",
                ));
            }
        }
        let hedges = crate::hedge_config::validate(&file.hedges, members, &instruments)?;
        Ok(Config {
            orders_per_10s: e.orders_per_10s,
            orders_per_min: e.orders_per_min,
            venue_limits,
            book_slots: e.book_slots,
            adopt_unknown_orders: e.adopt_unknown_orders,
            instruments,
            hedges,
            source,
        })
    }
}

/// What a hedge instrument without `[instrument.quote]` prices with: the mid, no grid.
fn hedge_quote(s: &InstrumentSection) -> QuoteSection {
    QuoteSection {
        fair_value: FairValue::Mid,
        top_of_book: TopOfBookSource::default(),
        offset_unit: OffsetUnit::Bps,
        start_offset: 1.0,
        first_spacing: 1.0,
        multiplier: 2.0,
        max_spacing: 1.0,
        layers: 1,
        layer_size: s.min_qty.clone(),
        min_spread_bps: 0.0,
        skew_coeff: 0.0,
        skew_hysteresis: default_hysteresis(),
        tolerance: None,
        tolerance_growth: 0.0,
        keep_beyond: 0,
        adapt: None,
    }
}

fn instrument(
    i: usize,
    s: &InstrumentSection,
    hedge_only: bool,
) -> Result<InstrumentConfig, ConfigError> {
    let f = |name: &str| format!("instrument[{i}].{name}");
    let venue_kind = match s.venue {
        VenueFlavour::BinanceUsdm => InstrumentKind::Linear,
        VenueFlavour::BinanceCoinm => InstrumentKind::Inverse,
        VenueFlavour::BinanceSpot => InstrumentKind::Spot,
    };
    let kind = s.kind.unwrap_or(venue_kind);
    if kind != venue_kind {
        return Err(invalid(
            f("kind"),
            kind.name(),
            "does not match the venue (binance-usdm is linear, binance-coinm inverse, binance-spot spot)",
        ));
    }
    let inst = Instrument::from_spec(&InstrumentSpec {
        symbol: &s.symbol,
        kind,
        tick: &s.tick,
        lot: &s.lot,
        book_lot: s.book_lot.as_deref(),
        min_qty: &s.min_qty,
        min_notional: &s.min_notional,
        contract_size: s.contract_size.as_deref(),
        base_asset: s.base_asset.as_deref(),
        quote_asset: s.quote_asset.as_deref(),
    })
    .map_err(|source| ConfigError::Instrument {
        symbol: s.symbol.clone(),
        source,
    })?;
    let default_quote;
    let q = match (&s.quote, hedge_only) {
        (Some(q), _) => q,
        (None, true) => {
            default_quote = hedge_quote(s);
            &default_quote
        }
        (None, false) => {
            return Err(invalid(
                f("quote"),
                "(missing)",
                "a quoted instrument needs [instrument.quote] (only a [[hedge]] group's hedge \
                 instrument may leave it out)",
            ))
        }
    };
    let r = &s.risk;
    let lots = |name: &str, v: &str| {
        inst.lot
            .to_steps(v.as_bytes())
            .map_err(|_| invalid(f(name), v, "a decimal quantity on the lot grid"))
    };

    if q.layers == 0 || q.layers > MAX_LAYERS {
        return Err(invalid(
            f("quote.layers"),
            q.layers,
            "between 1 and 64 layers a side",
        ));
    }
    let start = fx(&f("quote.start_offset"), q.start_offset)?;
    if start < 0 {
        return Err(invalid(
            f("quote.start_offset"),
            q.start_offset,
            "must be >= 0",
        ));
    }
    let first = fx(&f("quote.first_spacing"), q.first_spacing)?;
    if first <= 0 {
        return Err(invalid(
            f("quote.first_spacing"),
            q.first_spacing,
            "must be > 0",
        ));
    }
    let mult = fx(&f("quote.multiplier"), q.multiplier)?;
    if mult <= 1 {
        return Err(invalid(
            f("quote.multiplier"),
            q.multiplier,
            "must be > 1 (a geometric grid widens outwards)",
        ));
    }
    let max_spacing = fx(&f("quote.max_spacing"), q.max_spacing)?;
    if max_spacing < first {
        return Err(invalid(
            f("quote.max_spacing"),
            q.max_spacing,
            "must be >= first_spacing",
        ));
    }
    let mut layer_distance = Vec::with_capacity(q.layers);
    let (mut d, mut spacing) = (start, first);
    for _ in 0..q.layers {
        layer_distance.push(d);
        d = d.saturating_add(spacing.min(max_spacing));
        spacing = spacing.saturating_mul(mult);
    }
    let layer_size = lots("quote.layer_size", &q.layer_size)?;
    if layer_size < inst.min_qty_lots.max(1) {
        return Err(invalid(
            f("quote.layer_size"),
            &q.layer_size,
            "must be at least the instrument's min_qty",
        ));
    }
    let min_spread_bps = fx(&f("quote.min_spread_bps"), q.min_spread_bps)?;
    if min_spread_bps < 0 {
        return Err(invalid(
            f("quote.min_spread_bps"),
            q.min_spread_bps,
            "must be >= 0",
        ));
    }
    let skew_coeff = fx(&f("quote.skew_coeff"), q.skew_coeff)?;
    if !(0..=1).contains(&skew_coeff) {
        return Err(invalid(
            f("quote.skew_coeff"),
            q.skew_coeff,
            "must be in [0, 1]",
        ));
    }
    let skew_hysteresis = fx(&f("quote.skew_hysteresis"), q.skew_hysteresis)?;
    if !(0..1).contains(&skew_hysteresis) {
        return Err(invalid(
            f("quote.skew_hysteresis"),
            q.skew_hysteresis,
            "must be in [0, 1)",
        ));
    }
    let tolerance = match q.tolerance {
        Some(t) => fx(&f("quote.tolerance"), t)?,
        None => start * Fx::from_num(0.9),
    };
    if tolerance < 0 {
        return Err(invalid(
            f("quote.tolerance"),
            q.tolerance.unwrap_or_default(),
            "must be >= 0",
        ));
    }
    let tolerance_growth = fx(&f("quote.tolerance_growth"), q.tolerance_growth)?;
    if !(0..=1).contains(&tolerance_growth) {
        return Err(invalid(
            f("quote.tolerance_growth"),
            q.tolerance_growth,
            "must be in [0, 1]",
        ));
    }

    if q.keep_beyond > MAX_LAYERS {
        return Err(invalid(
            f("quote.keep_beyond"),
            q.keep_beyond as f64,
            "must be at most 64 (the most layers a side)",
        ));
    }

    let adapt = match &q.adapt {
        Some(a) => Some(crate::adapt::validate(a, &f, &|s: &str| {
            inst.book_qty(s.as_bytes()).ok()
        })?),
        None => None,
    };

    let net_max = lots("risk.net_max", &r.net_max)?;
    // Fills are reported in 48-bit lots (the execution report's layout); a position cap past
    // that could not be reported, let alone priced without overflow.
    if net_max > crate::event::MAX_48 {
        return Err(invalid(
            f("risk.net_max"),
            &r.net_max,
            "at most 2^47 - 1 lots (the largest quantity an execution report carries)",
        ));
    }
    if net_max < layer_size {
        return Err(invalid(
            f("risk.net_max"),
            &r.net_max,
            "must be at least layer_size",
        ));
    }
    let batch_cap = match &r.batch_cap {
        Some(b) => lots("risk.batch_cap", b)?,
        None => net_max,
    };
    if batch_cap <= 0 || batch_cap > net_max {
        return Err(invalid(
            f("risk.batch_cap"),
            r.batch_cap.as_deref().unwrap_or(""),
            "must be in (0, net_max]",
        ));
    }
    let reduce_only_thresh = fx(&f("risk.reduce_only_thresh"), r.reduce_only_thresh)?;
    if reduce_only_thresh <= 0 || reduce_only_thresh > 1 {
        return Err(invalid(
            f("risk.reduce_only_thresh"),
            r.reduce_only_thresh,
            "must be in (0, 1]",
        ));
    }
    // The skew keeps working over [0, reduce_only_thresh); with hysteresis the ratio can lag by
    // skew_hysteresis, so the threshold must sit above it or the skew range is empty.
    if reduce_only_thresh <= skew_hysteresis {
        return Err(invalid(
            f("risk.reduce_only_thresh"),
            r.reduce_only_thresh,
            "must be above quote.skew_hysteresis (else the skew range is empty)",
        ));
    }
    let stop_loss = fx(&f("risk.stop_loss"), r.stop_loss)?;
    if stop_loss <= 0 || stop_loss >= 1 {
        return Err(invalid(
            f("risk.stop_loss"),
            r.stop_loss,
            "must be in (0, 1)",
        ));
    }
    let daily_units = inst
        .money_unit()
        .parse(&r.daily_loss_limit, false)
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| {
            invalid(
                f("risk.daily_loss_limit"),
                &r.daily_loss_limit,
                "a positive decimal amount of the PnL currency (quote; the base coin for inverse)",
            )
        })?;
    if daily_units <= 0 {
        // A positive amount that rounds to nothing says the grid is too coarse, not that the
        // amount is not positive.
        let positive = r
            .daily_loss_limit
            .trim()
            .parse::<f64>()
            .is_ok_and(|v| v > 0.0);
        return Err(invalid(
            f("risk.daily_loss_limit"),
            &r.daily_loss_limit,
            if positive {
                "is less than one money unit (tick × lot of quote): raise it, or check tick and lot"
            } else {
                "must be > 0"
            },
        ));
    }
    let max_notional =
        match &r.max_notional {
            None => None,
            Some(m) => match inst.notional_unit().parse(m, false) {
                Ok(v) if v > 0 => Some(v),
                _ => return Err(invalid(
                    f("risk.max_notional"),
                    m,
                    "a positive decimal amount of quote currency (USD for inverse), at least one \
                     tick × lot",
                )),
            },
        };
    let balances =
        match (&s.balances, kind) {
            (Some(b), InstrumentKind::Spot) => {
                let base_lots = lots("balances.base", &b.base)?;
                let quote_units = inst.money_unit().parse(&b.quote, false).map_err(|_| {
                    invalid(
                        f("balances.quote"),
                        &b.quote,
                        "a decimal amount of the quote asset (>= 0)",
                    )
                })?;
                if base_lots > crate::event::MAX_48 {
                    return Err(invalid(
                        f("balances.base"),
                        &b.base,
                        "at most 2^47 - 1 lots",
                    ));
                }
                Some(Balances {
                    base_lots,
                    quote_units,
                    allow_margin: b.allow_margin,
                })
            }
            (Some(_), _) => {
                return Err(invalid(
                    f("balances"),
                    "[instrument.balances]",
                    "only a spot instrument has balances",
                ))
            }
            (None, InstrumentKind::Spot) => return Err(invalid(
                f("balances"),
                "(missing)",
                "a spot instrument needs [instrument.balances] base and quote (what the account \
                 holds at the start; sells are bounded by the base held)",
            )),
            (None, _) => None,
        };
    let max_deviation = fx(&f("risk.max_deviation"), r.max_deviation)?;
    if max_deviation <= 0 || max_deviation >= 1 {
        return Err(invalid(
            f("risk.max_deviation"),
            r.max_deviation,
            "must be in (0, 1)",
        ));
    }
    let max_price_change = fx(&f("risk.max_price_change"), r.max_price_change)?;
    if max_price_change <= 0 || max_price_change >= 1 {
        return Err(invalid(
            f("risk.max_price_change"),
            r.max_price_change,
            "must be in (0, 1)",
        ));
    }
    if r.circuit_window_ms == 0 || r.circuit_window_ms > 86_400_000 {
        return Err(invalid(
            f("risk.circuit_window_ms"),
            r.circuit_window_ms,
            "must be in [1, 86400000]",
        ));
    }
    if r.stale_after_ms == 0 || r.stale_after_ms > 3_600_000 {
        return Err(invalid(
            f("risk.stale_after_ms"),
            r.stale_after_ms,
            "must be in [1, 3600000]",
        ));
    }
    if r.cancel_budget_per_min == 0 {
        return Err(invalid(
            f("risk.cancel_budget_per_min"),
            0,
            "must be at least 1 (the engine must be able to requote)",
        ));
    }
    let maker_fee_bps = fx(&f("fees.maker_bps"), s.fees.maker_bps)?;
    let taker_fee_bps = fx(&f("fees.taker_bps"), s.fees.taker_bps)?;
    if maker_fee_bps.abs() > 100 || taker_fee_bps.abs() > 100 {
        return Err(invalid(
            f("fees"),
            format!("{} / {}", s.fees.maker_bps, s.fees.taker_bps),
            "fees must be within ±100 bps",
        ));
    }
    Ok(InstrumentConfig {
        instrument: inst,
        venue: s.venue,
        fair_value: q.fair_value,
        top_of_book: q.top_of_book,
        offset_unit: q.offset_unit,
        layer_distance,
        layers: q.layers,
        layer_size,
        min_spread_bps,
        skew_coeff,
        skew_hysteresis,
        tolerance,
        tolerance_growth,
        keep_beyond: q.keep_beyond,
        adapt,
        net_max,
        batch_cap,
        reduce_only_thresh,
        stop_loss,
        on_stop_loss: r.on_stop_loss,
        daily_loss_limit: daily_units,
        max_notional,
        balances,
        max_deviation,
        max_price_change,
        circuit_window_ns: r.circuit_window_ms as i64 * 1_000_000,
        stale_after_ns: r.stale_after_ms as i64 * 1_000_000,
        cancel_budget_per_min: r.cancel_budget_per_min,
        maker_fee_bps,
        taker_fee_bps,
        hedge_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[instrument]]
symbol = "BTCUSDT"
tick = "0.10"
lot = "0.001"
min_qty = "0.001"
min_notional = "100"
[instrument.quote]
fair_value = "microprice"
offset_unit = "bps"
start_offset = 0.5
first_spacing = 0.5
multiplier = 1.15
max_spacing = 10.0
layers = 18
layer_size = "0.002"
min_spread_bps = 0.5
skew_coeff = 0.002
skew_hysteresis = 0.05
[instrument.risk]
net_max = "0.100"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "500"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 1000
cancel_budget_per_min = 50
"#;

    fn with(from: &str, to: &str) -> Result<Config, ConfigError> {
        assert!(GOOD.contains(from), "{from}");
        Config::from_toml(&GOOD.replacen(from, to, 1))
    }

    #[test]
    fn the_good_config_is_valid_and_compiled() {
        let c = Config::from_toml(GOOD).unwrap();
        let i = &c.instruments[0];
        assert_eq!(
            (i.layers, i.layer_size, i.net_max, i.batch_cap),
            (18, 2, 100, 100)
        );
        // 500 USDT / (0.1 × 0.001) = 5,000,000 tick·lots.
        assert_eq!(i.daily_loss_limit, 5_000_000);
        assert_eq!(i.tolerance, Fx::from_num(0.5) * Fx::from_num(0.9));
        assert_eq!(i.layer_distance.len(), 18);
        assert!(i.layer_distance.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(c.source, GOOD);
    }

    #[test]
    fn every_invalid_value_names_the_field_the_value_and_the_rule() {
        let cases = [
            (
                "multiplier = 1.15",
                "multiplier = 1.0",
                "instrument[0].quote.multiplier",
                "must be > 1",
            ),
            (
                "multiplier = 1.15",
                "multiplier = 0.5",
                "quote.multiplier = 0.5",
                "must be > 1",
            ),
            (
                "layers = 18",
                "layers = 0",
                "quote.layers = 0",
                "between 1 and 64",
            ),
            // Issue 11: quantities past what an execution report carries are refused, not
            // wrapped or saturated into nonsense fees.
            (
                "net_max = \"0.100\"",
                "net_max = \"500000000000000\"",
                "risk.net_max = 500000000000000",
                "at most 2^47 - 1 lots",
            ),
            // Issue 11: a positive limit that rounds to nothing on a coarse grid says so.
            (
                "tick = \"0.10\"",
                "tick = \"1000000\"",
                "risk.daily_loss_limit = 500",
                "less than one money unit",
            ),
            (
                "daily_loss_limit = \"500\"",
                "daily_loss_limit = \"-5\"",
                "risk.daily_loss_limit = -5",
                "a positive decimal amount",
            ),
            (
                "layers = 18",
                "layers = 65",
                "quote.layers = 65",
                "between 1 and 64",
            ),
            (
                "reduce_only_thresh = 0.7",
                "reduce_only_thresh = 1.5",
                "risk.reduce_only_thresh = 1.5",
                "(0, 1]",
            ),
            (
                "reduce_only_thresh = 0.7",
                "reduce_only_thresh = 0.04",
                "risk.reduce_only_thresh = 0.04",
                "skew range is empty",
            ),
            (
                "skew_hysteresis = 0.05",
                "skew_hysteresis = 1.0",
                "quote.skew_hysteresis = 1",
                "[0, 1)",
            ),
            (
                "min_spread_bps = 0.5",
                "min_spread_bps = 0.5\ntolerance = -1.0",
                "quote.tolerance = -1",
                "must be >= 0",
            ),
            (
                "stop_loss = 0.05",
                "stop_loss = 0.0",
                "risk.stop_loss = 0",
                "(0, 1)",
            ),
            (
                "max_deviation = 0.15",
                "max_deviation = 1.5",
                "risk.max_deviation = 1.5",
                "(0, 1)",
            ),
            (
                "max_price_change = 0.10",
                "max_price_change = -0.1",
                "risk.max_price_change = -0.1",
                "(0, 1)",
            ),
            (
                "circuit_window_ms = 60000",
                "circuit_window_ms = 0",
                "risk.circuit_window_ms = 0",
                "[1, 86400000]",
            ),
            (
                "stale_after_ms = 1000",
                "stale_after_ms = 0",
                "risk.stale_after_ms = 0",
                "[1, 3600000]",
            ),
            (
                "cancel_budget_per_min = 50",
                "cancel_budget_per_min = 0",
                "risk.cancel_budget_per_min = 0",
                "at least 1",
            ),
            (
                "layer_size = \"0.002\"",
                "layer_size = \"0.0005\"",
                "quote.layer_size = 0.0005",
                "lot grid",
            ),
            (
                "layer_size = \"0.002\"",
                "layer_size = \"0\"",
                "quote.layer_size = 0",
                "min_qty",
            ),
            (
                "net_max = \"0.100\"",
                "net_max = \"0.001\"",
                "risk.net_max = 0.001",
                "at least layer_size",
            ),
            (
                "net_max = \"0.100\"",
                "net_max = \"0.100\"\nbatch_cap = \"0.2\"",
                "risk.batch_cap = 0.2",
                "(0, net_max]",
            ),
            (
                "daily_loss_limit = \"500\"",
                "daily_loss_limit = \"-5\"",
                "risk.daily_loss_limit = -5",
                "PnL currency",
            ),
            (
                "daily_loss_limit = \"500\"",
                "daily_loss_limit = \"0\"",
                "risk.daily_loss_limit = 0",
                "must be > 0",
            ),
            (
                "max_spacing = 10.0",
                "max_spacing = 0.1",
                "quote.max_spacing = 0.1",
                ">= first_spacing",
            ),
            (
                "first_spacing = 0.5",
                "first_spacing = 0.0",
                "quote.first_spacing = 0",
                "must be > 0",
            ),
            (
                "start_offset = 0.5",
                "start_offset = -0.5",
                "quote.start_offset = -0.5",
                "must be >= 0",
            ),
            (
                "skew_coeff = 0.002",
                "skew_coeff = 2.0",
                "quote.skew_coeff = 2",
                "[0, 1]",
            ),
        ];
        for (from, to, field_value, rule) in cases {
            let e = with(from, to).unwrap_err().to_string();
            assert!(e.contains(field_value), "{to}: {e}");
            assert!(e.contains(rule), "{to}: {e}");
        }
    }

    /// Issue 11: a type error names its field as a range error does.
    #[test]
    fn type_errors_name_the_field() {
        for (from, to, path) in [
            (
                "start_offset = 0.5",
                "start_offset = \"abc\"",
                "instrument[0].quote.start_offset",
            ),
            ("layers = 18", "layers = -3", "instrument[0].quote.layers"),
            (
                "net_max = \"0.100\"",
                "net_max = 0.1",
                "instrument[0].risk.net_max",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let e = Config::from_toml(&GOOD.replacen(from, to, 1))
                .unwrap_err()
                .to_string();
            assert!(e.contains(path), "{to}: {e}");
        }
    }

    #[test]
    fn structural_errors_are_reported() {
        assert!(matches!(
            with("layers = 18", "layers = 18\nbogus = 1"),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            with("fair_value = \"microprice\"", "fair_value = \"vwap\""),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            with(
                "fair_value = \"microprice\"",
                "fair_value = \"microprice\"\ntop_of_book = \"bbo_only\""
            ),
            Err(ConfigError::Toml(_))
        ));
        let c = with(
            "fair_value = \"microprice\"",
            "fair_value = \"microprice\"\ntop_of_book = \"depth_book\"",
        )
        .unwrap();
        assert_eq!(c.instruments[0].top_of_book, TopOfBookSource::DepthBook);
        // Absent: the freshest of depth book and best bid/offer.
        let c = Config::from_toml(GOOD).unwrap();
        assert_eq!(c.instruments[0].top_of_book, TopOfBookSource::Freshest);
        let e = with("tick = \"0.10\"", "tick = \"0.1x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("BTCUSDT") && e.contains("0.1x"), "{e}");
        let two = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[instrument]]").unwrap()..]);
        let e = Config::from_toml(&two).unwrap_err().to_string();
        assert!(
            e.contains("instrument[1].symbol") && e.contains("at most once"),
            "{e}"
        );
        let e = Config::from_toml("[engine]\norders_per_10s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("instrument"), "{e}");
    }

    /// The same symbol on two venues is two instruments; the same (symbol, venue) twice is
    /// refused.
    #[test]
    fn one_symbol_may_trade_on_several_venues_but_each_pair_once() {
        let block = &GOOD[GOOD.find("[[instrument]]").unwrap()..];
        let spot = block.replace(
            "symbol = \"BTCUSDT\"\n",
            "symbol = \"BTCUSDT\"\nvenue = \"binance-spot\"\n",
        ) + "[instrument.balances]\nbase = \"1\"\nquote = \"100000\"\n";
        let c = Config::from_toml(&format!("{GOOD}\n{spot}")).unwrap();
        assert_eq!(c.instruments.len(), 2);
        assert_eq!(c.instruments[0].venue, VenueFlavour::BinanceUsdm);
        assert_eq!(c.instruments[1].venue, VenueFlavour::BinanceSpot);
        assert_eq!(
            c.instruments[0].instrument.symbol,
            c.instruments[1].instrument.symbol
        );
        // The default venue is binance-usdm: written out, it is the same pair.
        let usdm = block.replace(
            "symbol = \"BTCUSDT\"\n",
            "symbol = \"BTCUSDT\"\nvenue = \"binance-usdm\"\n",
        );
        let e = Config::from_toml(&format!("{GOOD}\n{usdm}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("instrument[1].symbol")
                && e.contains("binance-usdm")
                && e.contains("at most once"),
            "{e}"
        );
        let e = Config::from_toml(&format!("{spot}\n{GOOD}\n{spot}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("instrument[2].symbol") && e.contains("binance-spot"),
            "{e}"
        );
    }

    /// Issue 12: each kind's own rules, each broken rule a named error.
    #[test]
    fn instrument_kinds_and_their_rules() {
        let coinm = |extra: &str| {
            GOOD.replacen(
                "symbol = \"BTCUSDT\"\ntick = \"0.10\"\nlot = \"0.001\"\nmin_qty = \"0.001\"\nmin_notional = \"100\"",
                &format!(
                    "symbol = \"BTCUSD_PERP\"\nvenue = \"binance-coinm\"\ntick = \"0.1\"\nlot = \"1\"\n\
                     min_qty = \"1\"\nmin_notional = \"0\"\n{extra}"
                ),
                1,
            )
            .replace("layer_size = \"0.002\"", "layer_size = \"1\"")
            .replace("net_max = \"0.100\"", "net_max = \"50\"")
            .replace("daily_loss_limit = \"500\"", "daily_loss_limit = \"0.01\"")
        };
        // COIN-M: inverse by default, contracts of 100 USD, the loss limit in BTC.
        let c = Config::from_toml(&coinm("contract_size = \"100\"")).unwrap();
        let i = &c.instruments[0];
        assert_eq!(i.instrument.kind, InstrumentKind::Inverse);
        assert_eq!(i.instrument.contract_ticks, 1_000);
        assert_eq!(
            (
                i.instrument.base_asset.as_str(),
                i.instrument.quote_asset.as_str()
            ),
            ("BTC", "USD")
        );
        assert_eq!(i.instrument.pnl_asset().as_str(), "BTC");
        // 0.01 BTC in 10^-12 units.
        assert_eq!(i.daily_loss_limit, 10_000_000_000);
        // Notional: 3 contracts are 300 USD at any price (3,000 ticks of 0.1 USD).
        assert_eq!(i.instrument.notional(1, 3), 3_000);
        let err = |text: &str| Config::from_toml(text).unwrap_err().to_string();
        let cases = [
            (coinm(""), "needs contract_size"),
            (
                coinm("contract_size = \"100\"\nkind = \"linear\""),
                "does not match the venue",
            ),
            (coinm("contract_size = \"0.05\""), "whole number of ticks"),
            (coinm("contract_size = \"-1\""), "contract_size"),
            (
                GOOD.replacen(
                    "min_notional = \"100\"",
                    "min_notional = \"100\"\ncontract_size = \"100\"",
                    1,
                ),
                "only an inverse instrument has a contract size",
            ),
            (
                GOOD.replacen(
                    "min_notional = \"100\"",
                    "min_notional = \"100\"\nbook_lot = \"0.0003\"",
                    1,
                ),
                "whole number",
            ),
            (
                GOOD.replacen(
                    "min_notional = \"100\"",
                    "min_notional = \"100\"\n[instrument.balances]\nbase = \"1\"\nquote = \"1\"",
                    1,
                ),
                "only a spot instrument has balances",
            ),
            (
                GOOD.replacen(
                    "symbol = \"BTCUSDT\"",
                    "symbol = \"BTCUSDT\"\nvenue = \"binance-spot\"",
                    1,
                ),
                "a spot instrument needs [instrument.balances]",
            ),
            (
                GOOD.replacen("symbol = \"BTCUSDT\"", "symbol = \"WEIRDSYM\"", 1),
                "set base_asset and quote_asset",
            ),
            (
                GOOD.replacen(
                    "daily_loss_limit = \"500\"",
                    "daily_loss_limit = \"500\"\nmax_notional = \"0\"",
                    1,
                ),
                "risk.max_notional",
            ),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "want {want:?}: {e}");
        }
        // Assets named outright need no suffix to read.
        let named = GOOD.replacen(
            "symbol = \"BTCUSDT\"",
            "symbol = \"WEIRDSYM\"\nbase_asset = \"WEIRD\"\nquote_asset = \"SYM\"",
            1,
        );
        assert_eq!(
            Config::from_toml(&named).unwrap().instruments[0]
                .instrument
                .quote_asset
                .as_str(),
            "SYM"
        );
        // Spot: balances on the lot grid, the book on its own finer grid.
        let spot = GOOD.replacen(
            "symbol = \"BTCUSDT\"\ntick = \"0.10\"\nlot = \"0.001\"",
            "symbol = \"BTCUSDT\"\nvenue = \"binance-spot\"\ntick = \"0.01\"\nlot = \"0.00001\"\nbook_lot = \"0.00000001\"\n\
             [instrument.balances]\nbase = \"0.5\"\nquote = \"1000\"",
            1,
        );
        // The balances table must come after the instrument's own keys: move the rest below it.
        let spot = {
            let (head, tail) = spot.split_at(spot.find("[instrument.balances]").unwrap());
            let (bal, rest) = tail.split_at(tail.find("min_qty").unwrap());
            let (own, sections) = rest.split_at(rest.find("[instrument.quote]").unwrap());
            format!("{head}{own}{bal}{sections}")
        };
        let c = Config::from_toml(&spot).unwrap_or_else(|e| panic!("{e}\n{spot}"));
        let i = &c.instruments[0];
        assert_eq!(i.instrument.kind, InstrumentKind::Spot);
        assert_eq!(i.instrument.book_units_per_lot, 1_000);
        let b = i.balances.unwrap();
        assert_eq!((b.base_lots, b.allow_margin), (50_000, false));
        assert_eq!(i.instrument.money_unit().format(b.quote_units), "1000");
    }

    /// Each venue's order limits are its own: spot's 50 per 10 s does not bind USD-M.
    #[test]
    fn order_limits_per_venue() {
        let text = format!(
            "[engine]\norders_per_10s = 300\norders_per_min = 1200\n\
             [engine.venues.binance-spot]\norders_per_10s = 50\n{GOOD}"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.venue_limits, [(300, 1200), (300, 1200), (50, 1200)]);
        let bad = text.replace("orders_per_10s = 50", "orders_per_10s = 0");
        let e = Config::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("engine.venues.binance-spot"), "{e}");
        let unknown = text.replace("binance-spot]", "binance-moon]");
        assert!(Config::from_toml(&unknown).is_err());
    }
}
