//! The ringmaker engine: the pure, single-threaded business-logic processor.
//!
//! [`Engine`] runs book → pricer → risk → diff for several instruments, driven only by
//! [`Event`]s and emitting [`Intent`]s and [`ModeChange`]s to a [`Sink`].
//!
//! No I/O, no threads, no clock reads. Everything here works in integer ticks and lots; decimal
//! strings are converted exactly at the edge ([`instrument`]). Events are fixed-size, one cache
//! line each ([`event`]). The per-instrument L2 book ([`book`]) is preallocated and updates a
//! level in O(1).

pub mod book;
pub mod config;
#[allow(clippy::module_inception)]
pub mod engine;
pub mod event;
pub mod instrument;
pub mod intent;
pub mod limits;
pub mod orders;
pub mod position;
pub mod pricer;

pub use book::{BboOffer, BookError, FreshTop, OrderBook};
pub use config::{Config, ConfigError, Fx, InstrumentConfig, VenueFlavour};
pub use engine::{Engine, EngineStats, InstrumentView, NoClock, Stage, StageClock};
pub use event::{
    BookStatusReason, Command, Event, EventKind, ExecKind, ExecReport, InstrumentId, LevelUpdate,
    Side, TopOfBook, TradePrint,
};
pub use instrument::{DecimalError, Grid, Instrument, InstrumentError, Symbol};
pub use intent::{Intent, IntentKind, Mode, ModeChange, ModeReason, Sink, TimeInForce};
