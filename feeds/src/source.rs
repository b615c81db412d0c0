//! Where a feed handler's input comes from: a [`MarketSource`].
//!
//! A source hands out one input at a time — a raw venue message (recording files, in-memory
//! lines, later a socket) or events already decoded and book-synced (a journal) — and can be asked
//! for a fresh snapshot of one instrument's book after a gap ([`MarketSource::request_snapshot`]).
//! A recording answers with its next snapshot line, if it has one; a live source fetches one over
//! REST and delivers it as a later message; a journal of synced events has nothing to give.

use crate::recording::{LineError, LineInfo, OpenError, RecordingReader};
use engine::{Event, InstrumentId};
use std::path::Path;

/// One input from a market source.
#[derive(Debug)]
pub enum Input<'a> {
    /// A raw venue message: its bytes (parsed in place, hence mutable) and local receive time.
    Message {
        /// The message as received.
        json: &'a mut [u8],
        /// Local receive time, ns.
        local_ns: i64,
        /// The instrument the source is bound to (a recording of one instrument): the message
        /// is decoded for it alone ([`crate::Decoder::decode_for`]). `None` for a source bound
        /// to no instrument (in-memory lines, a socket carrying several): the message names its
        /// instrument by its symbol.
        instrument: Option<InstrumentId>,
    },
    /// The connection that carried `instrument`'s market data was lost (a live source): its book
    /// is invalid from now (`BookInvalid { Disconnected }`) until a new snapshot bridges the
    /// diffs of the new connection.
    Disconnected {
        /// The instrument.
        instrument: InstrumentId,
        /// Local time the loss was seen, ns.
        local_ns: i64,
    },
    /// Events already decoded and book-synced (e.g. read back from a journal), one venue
    /// message's worth, passed through unchanged.
    Events {
        /// The events, in order.
        events: &'a [Event],
        /// Local receive time, ns.
        local_ns: i64,
    },
}

/// What a source does with a request for a fresh snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReply {
    /// A snapshot will arrive as a later input, if the source has one (a recording delivers its
    /// next snapshot line; a live source fetches one).
    Pending,
    /// The source has none to give: the book stays invalid.
    Unavailable,
}

/// Why the source could not give an input (the input is skipped; reading goes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A recording line that is not `<local_ns> <json>`, or a file that stopped decompressing.
    #[error(transparent)]
    Line(#[from] LineError),
    /// A journal record that could not be read.
    #[error("{0}")]
    Record(String),
}

/// Inputs read and skipped, snapshot requests received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Inputs read (lines, records, messages), good or bad.
    pub read: u64,
    /// Inputs the source itself could not give (bad lines).
    pub bad: u64,
    /// Snapshot requests received.
    pub snapshot_requests: u64,
}

/// Where one network message was on its way through the feed thread: the wall time its completing
/// socket read returned (the kernel's receive stamp is the message's `local_ns`, on the same
/// clock), and TSC stamps (`quanta::Clock::raw`) of that read, of the decryption of the TLS
/// record that completed it and of its WebSocket frame's completion. The latency split of a live
/// feed: kernel → user read, TLS decrypt, WebSocket frame, then decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStages {
    /// Wall time (ns since the UNIX epoch, `CLOCK_REALTIME`) when the read returned.
    pub read_wall_ns: i64,
    /// TSC when the read returned.
    pub read: u64,
    /// TSC when the TLS record holding the message's last bytes was decrypted.
    pub tls: u64,
    /// TSC when the message's frame was complete (payload copied out).
    pub frame: u64,
    /// For a message that was already complete in the connection's buffers behind earlier ones
    /// (several in one TLS record or one read): TSC when the poll that took it out began (it
    /// waited from `tls` to here while the ones ahead were decoded and published). 0 otherwise.
    pub queued: u64,
}

/// A stream of market inputs.
pub trait MarketSource {
    /// The next input; `None` at the end. An `Err` is one skipped input, not the end.
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>>;
    /// Asks for a fresh snapshot of `instrument`'s book (after a gap, or at the start).
    fn request_snapshot(&mut self, instrument: InstrumentId) -> SnapshotReply;
    /// Counters so far.
    fn counts(&self) -> SourceCounts;
    /// Connections re-established after a loss (a network source; 0 for a file).
    fn reconnects(&self) -> u64 {
        0
    }
    /// Where the last input came from (e.g. `file.gz:123`), for messages about it.
    fn origin(&self) -> Option<String> {
        None
    }
    /// The last input's way through a network connection ([`WireStages`]); `None` for a file,
    /// a snapshot, or a source that does not measure it.
    fn wire_stages(&self) -> Option<WireStages> {
        None
    }
}

/// Recording files (`<local_ns> <json>` lines, gzip or plain), read in order; bound to one
/// instrument ([`RecordingSource::open_bound`]: the recording of that instrument, its messages
/// decoded for it alone) or to none.
#[derive(Debug)]
pub struct RecordingSource {
    reader: RecordingReader,
    bound: Option<InstrumentId>,
    /// A line read ahead ([`RecordingSource::peek`]) and not yet given.
    ahead: Option<Result<LineInfo, LineError>>,
    read: u64,
    bad: u64,
    snapshot_requests: u64,
    last: Option<(usize, u64)>,
}

/// What a recording's next line is, seen ahead ([`RecordingSource::peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// A line received at this local time, ns.
    Line(i64),
    /// A line the source cannot give (a [`SourceError`] comes next).
    Bad,
}

impl RecordingSource {
    /// Opens the files, in arrival order, bound to no instrument (each message names its
    /// instrument by its symbol).
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<RecordingSource, OpenError> {
        Ok(RecordingSource {
            reader: RecordingReader::open(paths)?,
            bound: None,
            ahead: None,
            read: 0,
            bad: 0,
            snapshot_requests: 0,
            last: None,
        })
    }

    /// Opens the files of one instrument's recording, in arrival order: every message is
    /// decoded for `instrument` ([`Input::Message`]'s `instrument`).
    pub fn open_bound<P: AsRef<Path>>(
        paths: &[P],
        instrument: InstrumentId,
    ) -> Result<RecordingSource, OpenError> {
        let mut s = RecordingSource::open(paths)?;
        s.bound = Some(instrument);
        Ok(s)
    }

    /// The instrument the recording is bound to.
    pub fn instrument(&self) -> Option<InstrumentId> {
        self.bound
    }

    /// The reader (its counters and paths).
    pub fn reader(&self) -> &RecordingReader {
        &self.reader
    }

    /// The next line, read ahead and kept (its bytes stay in the reader's buffer) until
    /// [`MarketSource::next_input`] gives it; `None` at the end.
    pub fn peek(&mut self) -> Option<Peek> {
        if self.ahead.is_none() {
            self.ahead = Some(self.reader.read_line()?);
        }
        match self.ahead.as_ref()? {
            Ok(info) => Some(Peek::Line(info.local_ns)),
            Err(_) => Some(Peek::Bad),
        }
    }
}

impl MarketSource for RecordingSource {
    #[inline]
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
        let line = match self.ahead.take() {
            Some(l) => l,
            None => self.reader.read_line()?,
        };
        self.read += 1;
        match line {
            Ok(info) => {
                self.last = Some((info.file, info.line));
                Some(Ok(Input::Message {
                    json: self.reader.payload(&info),
                    local_ns: info.local_ns,
                    instrument: self.bound,
                }))
            }
            Err(e) => {
                self.bad += 1;
                Some(Err(e.into()))
            }
        }
    }

    /// A recording cannot fetch: the snapshot it gives is the next snapshot line it holds, if
    /// any (the shipped samples hold one, at the start). Until one arrives the book stays invalid.
    fn request_snapshot(&mut self, _instrument: InstrumentId) -> SnapshotReply {
        self.snapshot_requests += 1;
        SnapshotReply::Pending
    }

    fn counts(&self) -> SourceCounts {
        SourceCounts {
            read: self.read,
            bad: self.bad,
            snapshot_requests: self.snapshot_requests,
        }
    }

    fn origin(&self) -> Option<String> {
        let (file, line) = self.last?;
        let path = self.reader.paths().get(file)?;
        Some(format!("{}:{line}", path.display()))
    }
}

/// Recorded lines already in memory (`(local_ns, json)`), e.g. for benches: each is copied into a
/// scratch buffer before parsing, so the lines stay intact for the next run.
#[derive(Debug)]
pub struct MemorySource<'a> {
    lines: &'a [(i64, Vec<u8>)],
    next: usize,
    scratch: Vec<u8>,
    snapshot_requests: u64,
}

impl<'a> MemorySource<'a> {
    /// A source over `lines`.
    pub fn new(lines: &'a [(i64, Vec<u8>)]) -> MemorySource<'a> {
        let longest = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
        MemorySource {
            lines,
            next: 0,
            scratch: Vec::with_capacity(longest),
            snapshot_requests: 0,
        }
    }
}

impl MarketSource for MemorySource<'_> {
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
        let (t, json) = self.lines.get(self.next)?;
        self.next += 1;
        self.scratch.clear();
        self.scratch.extend_from_slice(json);
        Some(Ok(Input::Message {
            json: &mut self.scratch,
            local_ns: *t,
            instrument: None,
        }))
    }

    fn request_snapshot(&mut self, _instrument: InstrumentId) -> SnapshotReply {
        self.snapshot_requests += 1;
        SnapshotReply::Pending
    }

    fn counts(&self) -> SourceCounts {
        SourceCounts {
            read: self.next as u64,
            bad: 0,
            snapshot_requests: self.snapshot_requests,
        }
    }
}
