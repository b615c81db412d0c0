//! Order entry for ringmaker — not built yet.
//!
//! This crate will turn the engine's order intents into signed venue requests and venue
//! responses / user-stream messages back into engine events, and will hold the simulated venue
//! used by backtests (`gateway::sim`). See `docs/ARCHITECTURE.md`. It deliberately exports
//! nothing until those pieces exist, so nothing can depend on a placeholder.
