//! Venue market data for ringmaker: Binance decoders (simd-json, allocation-free once warm), the
//! local-book sync state machine, and the recorded-session reader.
//!
//! `feeds` knows the venue's wire format and nothing of strategy: its output is the engine's
//! fixed-size [`engine::Event`]s.

pub mod decode;
mod depth_fast;
pub mod local_book;
pub mod normalize;
pub mod recording;
pub mod sync;

pub use decode::{
    DecodeError, DecodeStats, Decoder, DepthHeader, IgnoreReason, Message, SnapshotHeader,
};
pub use local_book::{BookObserver, LocalBook, LocalBookStats};
pub use normalize::{recorded_events, Normalizer, RecordedEvents};
pub use recording::{LineError, OpenError, ReaderStats, RecordLine, RecordingReader};
pub use sync::{BookSync, DiffOutcome, SyncRule, SyncSink, SyncState, SyncStats};
