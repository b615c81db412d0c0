//! Order entry for ringmaker.
//!
//! Today this crate holds the simulated venue used by backtests ([`sim`]): it takes the engine's
//! intents, matches them against a recorded market with a queue-position model, a latency model
//! and a fee model, and returns execution reports as engine events. The live pieces (intents →
//! signed venue requests, responses and user stream → events) will live beside it. See
//! `docs/ARCHITECTURE.md`.

pub mod sim;

pub use sim::{
    BpsFees, ConstantLatency, FeeModel, LatencyModel, ProbQueue, QueueModel, RiskAverseQueue,
    SimStats, SimVenue,
};
