//! The `ringmaker` tool's library: the engine host, the backtest driver, its metrics, report and
//! plots, and the journal's record layer and replay. `src/main.rs` is the command line.

pub mod backtest;
pub mod hlog;
pub mod host;
pub mod live;
pub mod metrics;
pub mod plots;
pub mod record;
pub mod report;
