//! Venue market data for ringmaker: one feed handler (decode + book sync per instrument, the
//! sync rule taken from each instrument's venue flavour) reading from a [`MarketSource`]
//! (recording files, in-memory lines, a journal, later a socket), with the venue's wire code in a
//! namespace of its own ([`binance`]). With several instruments, each recording is bound to one
//! ([`binding`]) and the recordings are merged in time order ([`MergedSource`]). A live feed's
//! messages are recorded in the same format, one file set per instrument ([`record`]).
//!
//! `feeds` knows the venue's wire format and nothing of strategy: its output is the engine's
//! fixed-size [`engine::Event`]s.

#![deny(missing_docs)]

pub mod binance;
pub mod binding;
pub mod handler;
pub mod local_book;
pub mod merge;
pub mod net;
pub mod normalize;
pub mod record;
pub mod recording;
pub mod source;

pub use binance::decode::{
    self, DecodeError, DecodeStats, Decoder, DepthHeader, IgnoreReason, Message, SnapshotHeader,
};
pub use binance::sync::{self, BookSync, DiffOutcome, SyncRule, SyncSink, SyncState, SyncStats};
pub use binding::{
    bind, bind_config, resolve, sniff, BindError, DataSpec, Flavour, Key, Sniffed, Target,
};
pub use handler::{sync_rule, FeedHandler, FeedStats, MarketFeed, Step};
pub use local_book::{BookObserver, BookState, LocalBook, LocalBookStats};
pub use merge::MergedSource;
pub use normalize::{recorded_events, RecordedEvents};
pub use record::{
    salvage, FinishError, Invalid, QueueStats, RecordError, RecordOptions, RecordSender,
    RecordStats, RecordSummary, Recorder, RecorderThread, Salvaged, ThreadOptions, ThreadReport,
};
pub use recording::{LineError, OpenError, ReaderStats, RecordLine, RecordingReader};
pub use source::{
    Input, MarketSource, MemorySource, Peek, RecordingSource, SnapshotReply, SourceCounts,
    SourceError, WireStages,
};
