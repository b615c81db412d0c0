//! The ringmaker engine: the pure, single-threaded business-logic processor.
//!
//! No I/O, no threads, no clock reads. Everything here works in integer ticks and lots; decimal
//! strings are converted exactly at the edge ([`instrument`]). Events are fixed-size, one cache
//! line each ([`event`]). The per-instrument L2 book ([`book`]) is preallocated and updates a
//! level in O(1).

pub mod book;
pub mod event;
pub mod instrument;

pub use book::{BookError, OrderBook};
pub use event::{
    BookStatusReason, Event, EventKind, InstrumentId, LevelUpdate, Side, TopOfBook, TradePrint,
};
pub use instrument::{DecimalError, Grid, Instrument, InstrumentError, Symbol};
