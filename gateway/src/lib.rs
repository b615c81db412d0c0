//! Order entry for ringmaker: one venue interface ([`Venue`]: intents in, execution reports out,
//! `poll(now)`, the next due time) and its implementations.
//!
//! Today that is the simulated venue used by backtests and paper runs ([`sim`]): it takes the
//! engine's intents, matches them against a recorded market with a queue-position model, a
//! latency model and a fee model, and returns execution reports as engine events. The Binance
//! order-entry session (intents → signed venue requests, responses and user stream → events) will
//! implement the same trait beside it. See `docs/ARCHITECTURE.md`.

#![deny(missing_docs)]

pub mod binance;
pub mod gate;
pub mod sim;
mod venue;

pub use gate::SendGate;
pub use venue::{LinkCounts, Venue};

pub use sim::{
    BpsFees, ConstantLatency, FeeModel, LatencyModel, ProbQueue, QueueModel, RiskAverseQueue,
    SimStats, SimVenue,
};
