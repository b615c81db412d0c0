//! The ringmaker engine: the pure, single-threaded business-logic processor.
//!
//! [`Engine`] runs book → pricer → risk → diff for several instruments, driven only by
//! [`Event`]s and emitting [`Intent`]s and [`ModeChange`]s to a [`Sink`].
//!
//! No I/O, no threads, no clock reads. Everything here works in integer ticks and lots; decimal
//! strings are converted exactly at the edge ([`Instrument`]). Events are fixed-size, one cache
//! line each ([`Event`]). The per-instrument L2 book ([`OrderBook`]) is preallocated and updates a
//! level in O(1).
//!
//! One module per stage: `book` (depth book, best bid/offer overlay), `pricer` (fair value,
//! reservation price, grid; `adapt` and `signals` make its spreads adapt), `risk` (mode, clamp, forced cancels), `diff` (working orders against
//! the desired ladders), `reconcile` (the venue's view against ours), `emit` (the one place an
//! intent is numbered and sent); `orders` and `position` hold the per-instrument state they act on,
//! and `engine` wires them.
#![deny(missing_docs)]

mod adapt;
mod book;
mod config;
mod diff;
mod emit;
#[allow(clippy::module_inception)]
mod engine;
mod event;
mod hedge;
mod hedge_config;
mod instrument;
mod intent;
mod limits;
mod orders;
mod position;
mod pricer;
mod reconcile;
mod risk;
mod signals;
mod stage;
mod stats;

pub use adapt::{AdaptConfig, AdaptSection, QuoteModel};
pub use book::{BboOffer, BboOverlay, BookError, Levels, OrderBook, NO_ASK, NO_BID};
pub use config::{
    Balances, BalancesSection, Config, ConfigError, ConfigFile, EngineSection, FairValue,
    FeeSection, Fx, InstrumentConfig, InstrumentSection, OffsetUnit, OnStopLoss, QuoteSection,
    ReloadRefused, RiskSection, TopOfBookSource, VenueFlavour, MAX_LAYERS,
};
pub use engine::{AdaptView, Engine, HedgeView, InstrumentView, MarkState};
pub use event::{
    reject_code, BookStatusReason, ClockReading, Command, Event, EventKind, ExecKind, ExecReport,
    FirmLimit, InstrumentId, LevelUpdate, MarkPriceUpdate, Side, TopOfBook, TradePrint, VenueOrder,
    VenuePosition, FLAG_ASK, FLAG_BUYER_MAKER, FLAG_LAST_IN_MSG, FLAG_POST_ONLY_REJECT,
    FLAG_SATURATED, FLAG_SNAPSHOT, FLAG_TAKER, FLAG_VENUE_OPEN, FUNDING_RATE_DECIMALS, MAX_48,
    MIN_48,
};
pub use hedge::{delta_units, lots_for_delta, HedgeStats, DELTA_SCALE};
pub use hedge_config::{HedgeGroup, HedgeSection};
pub use instrument::{
    assets_from_symbol, signed_decimal_to_units, DecimalError, Grid, Instrument, InstrumentError,
    InstrumentKind, InstrumentSpec, MoneyUnit, Symbol, INVERSE_MONEY_SCALE, MAX_SCALE,
    SPOT_BASE_FEE_UNITS_PER_LOT,
};
pub use intent::{Intent, IntentKind, Mode, ModeChange, ModeReason, Sink, TimeInForce};
pub use orders::{Order, OrderState, OrderStats, OrderTable, ORDER_SLOTS};
pub use position::{fee_in_base, Position};
pub use stage::{NoClock, Stage, StageClock};
pub use stats::EngineStats;
