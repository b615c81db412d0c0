//! The live-shaped pipeline: pinned threads and disruptor rings around the same engine and
//! journal a backtest uses, with the feed thread reading any [`feeds::MarketSource`] through the
//! feed handler and the gateway thread driving any [`::gateway::Venue`] ([`run_with`]). Paper mode
//! ([`run`], `ringmaker run --paper`) gives it a recording and the simulated venue.
//!
//! ```text
//!  feed thread ──────────┐                                  ┌──► gateway thread ──► SimVenue
//!  (recording, decode,   │   INPUT ring (multi-producer)    │    (behind the engine:  │
//!   book sync)           ├──► engine thread ────────────────┘     market data, time)  │
//!  timer thread ─────────┤   (busy-spin poller; Host:           OUTPUT ring ──────────┤
//!  control (shutdown) ───┤    on_event / on_batch_end,          (intents, 1 producer)  │
//!  gateway (reports) ◄───┘    journal appends)                                          │
//!        ▲                                                                              │
//!        └────────────────────── execution reports ◄────────────────────────────────────┘
//!  housekeeping thread: latency stamps → histograms → latency.hlog; status line
//!  ops thread: /metrics, the control socket (commands into the INPUT ring), hot reload
//! ```
//!
//! | file | what |
//! |---|---|
//! | [`config`] | `[cpu]` and `[rings]` from the config's TOML |
//! | [`pinning`], [`sys`], [`threads`] | the core plan, the OS calls (affinity, `SCHED_FIFO`, `mlockall`), the start-up handshake |
//! | [`rings`] | the two rings, their slots (event/intent + TSC stamps), source ids |
//! | [`clock`] | replay time at `--speed` or flat out |
//! | [`feed`], [`processor`], [`gateway`], [`timer`], [`housekeeping`] | one thread each |
//! | [`latency`] | per-hop stamps, histograms, the interval log |
//! | [`shared`], [`counters`] | stop flags, the shutdown handshake, counters |
//! | [`signals`] | SIGINT / SIGTERM, SIGHUP (reload) |
//! | [`ops`] | the metrics endpoint, the control socket, hot reload |
//! | [`pipeline`], [`summary`] | one run, its summary |
//!
//! # What is journaled, and why replay is exact
//!
//! Only the engine thread journals, through the [`crate::host::Host`]: each event it consumes,
//! each batch end, each intent and mode change, in that order. The records of a batch are held
//! in a buffer ([`crate::host::Deferred`]) and written right after the batch's intents are
//! published, so journaling is not on the way from tick to intent. Batches are what one poll of
//! the input ring returned ([`processor`]). Arrival order across the feed, gateway,
//! timer and control producers is decided by the ring, differently on every run; the journal
//! records the one order that happened, so `ringmaker replay` reproduces every intent. The
//! simulated venue's own view is not journaled; its reports are, as engine inputs.
//!
//! # Time and the simulated venue
//!
//! Events carry recording time; replay time runs at `--speed` against the wall clock, or with
//! the feed when flat out ([`clock`]). The venue runs on replay time with the backtest's latency
//! model ([`gateway`]). The engine reads no clock; TSC stamps for latency travel beside the
//! events in the ring slots and reach the histograms through per-thread queues ([`latency`]).
//!
//! # A full ring
//!
//! Paced, the feed never waits: a full input ring drops the message, invalidates the book
//! (`BookInvalid { RingOverflow }` as soon as there is room) and resets book sync, all counted
//! ([`feed`]). Flat out, the feed is the load and waits for room instead (counted). Timer ticks are skipped when full; execution reports and shutdown commands are
//! retried, never dropped; intents are retried by the engine.
//!
//! # Stopping
//!
//! End of data, `--duration`, SIGINT / SIGTERM or a journal failure: the feed and timer stop,
//! `Halt` + `CancelAll` go into the engine, the gateway delivers what is in flight, the rings
//! drain, and the engine thread hands back the journal for the final flush ([`shared`]).

pub mod clock;
pub mod config;
pub mod counters;
pub mod feed;
pub mod gateway;
pub mod housekeeping;
pub mod latency;
pub mod ops;
pub mod order_entry;
pub mod pinning;
pub mod pipeline;
pub mod processor;
pub mod rings;
pub mod shared;
pub mod signals;
pub mod summary;
pub mod sys;
pub mod threads;
pub mod timer;

pub use config::{CpuConfig, FeedConfig, LiveConfig, RingsConfig};
pub use latency::Hop;
pub use pipeline::{run, run_from, run_market, run_with, Begin, OpsSettings, Settings};
pub use summary::{StopCause, Summary};
