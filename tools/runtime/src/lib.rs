//! ringmaker's runtime: everything between the venue and the engine that is not the command line.
//!
//! The `ringmaker` binary (`tools/src/`) parses arguments, calls this library, prints and plots;
//! benches and tests import this library, never the binary crate.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the run config: the engine's part (journaled) and the runtime's sections |
//! | [`host`] | the one place that feeds the engine, with a [`host::Recorder`] (the journal) |
//! | [`record`] | the journal's record layer: the recorder, replay, record kinds |
//! | [`backtest`] | the backtest driver: a market source, the engine, a venue, on one thread |
//! | [`live`] | the live-shaped pipeline: pinned threads, disruptor rings, feed, engine and gateway threads |
//! | [`metrics`], [`hedge_metrics`], [`report`], [`hlog`] | what a run measured (per instrument, per hedge group), its report, HdrHistogram interval logs |
//! | [`paper_report`] | a paper run's `report.json`, from its journal |
#![deny(missing_docs)]

pub mod archive;
pub mod backtest;
pub mod bus;
pub mod config;
pub mod doctor;
pub mod event_cache;
pub mod firm;
pub mod hedge_metrics;
pub mod hedge_report;
pub mod hlog;
pub mod host;
pub mod lease;
pub mod live;
pub mod metrics;
pub mod paper_report;
pub mod record;
pub mod report;
pub mod standby;
pub mod sweep;
