//! Recording what a live feed received, in the format the backtest reads
//! ([`crate::RecordingReader`]): gzip text, one message per line, `<local_ns> <raw JSON>`.
//!
//! # Files
//!
//! One file set per instrument, so that every file binds to one instrument ([`crate::binding`]):
//!
//! ```text
//! DIR/<venue>/<symbol>_<YYYYMMDD>_<HH>.gz        e.g. DIR/binance-usdm/btcusdt_20240808_23.gz
//! DIR/<venue>/<symbol>_<YYYYMMDD>_<HH>_<NNN>.gz  the same hour again (a name already taken)
//! ```
//!
//! `<venue>` is [`VenueFlavour::name`], `<symbol>` the symbol in lower case (as the streams name
//! it), and `YYYYMMDD_HH` the UTC hour of the first line's `local_ns`. Within a venue directory
//! the names of one symbol sort in time order (`_23.gz` < `_23_001.gz` < `_23_002.gz` < the next
//! hour), so `ls DIR/binance-usdm/btcusdt_*.gz` lists a session's files in the order
//! [`crate::bind`] and the reader need them: the files of one instrument continue each other.
//!
//! A new file starts when a line's UTC hour (by its `local_ns`) is later than the current file's.
//! Local timestamps of different streams are not strictly monotonic (see
//! `tests/data/PROVENANCE.md`), so the hour only moves forward: a line stamped a little before
//! the current file's hour goes into the current file, in arrival order, which is what the reader
//! replays. An hour with no line has no file.
//!
//! # What a file holds
//!
//! Stream messages exactly as received, in the combined-stream envelope
//! (`{"stream":"btcusdt@depth@0ms","data":{...}}`: [`Recorder::stream`]), and REST snapshot
//! bodies (`{"lastUpdateId":...}`: [`Recorder::snapshot`]). The envelope is what names the
//! instrument (`<symbol>@...`) for [`crate::sniff`] and the decoder, so a stream message must
//! carry one, naming the instrument it is recorded for; a feed on raw streams (`/ws/<stream>`,
//! payload only) records with [`Recorder::stream_payload`], which writes
//! `{"stream":"<name>","data":<payload>}`: the bytes a combined-stream connection would have
//! delivered, the payload untouched. A snapshot is written where it arrived among the streams,
//! so the backtest syncs its book where the live feed did.
//!
//! Bytes are written as given with two exceptions, both invisible to a JSON reader: trailing
//! `\r`/`\n` are dropped (the reader drops them too) and a `\r` or `\n` inside a message (JSON
//! whitespace; pretty-printed REST bodies) becomes a space, since a line is one message
//! ([`RecordStats::newlines_replaced`]).
//!
//! # Writing, finishing, crashes
//!
//! A file is written under a `.partial` name (`btcusdt_20240808_23.gz.partial`, created with
//! `O_EXCL`) and published under its final name only once complete: gzip trailer written, data
//! `fsync`ed, hard-linked to the final name (which fails rather than replace a file that appeared
//! meanwhile: then the next free suffix is taken), the `.partial` name removed, the directory
//! `fsync`ed. A reader listing `*.gz` never sees a half-written file, and a file already present
//! is never overwritten, truncated or deleted: a taken name (final or `.partial`) is skipped for
//! the next suffix. (On a file system without hard links the recorder checks that the final name
//! is free and renames: the one place where a file created in that instant could be replaced.)
//!
//! Each open file's lines go through a fixed buffer of [`RecordOptions::buffer_bytes`] into the
//! compressor, which writes to the file. A flush (every [`RecordOptions::flush_every_ns`] of
//! local time per file, at every [`Recorder::flush`], and before a file is finished) hands the
//! buffer to the compressor with a gzip *sync flush* and writes the result to the file, so that
//! everything written so far can be decompressed from the file as it stands.
//!
//! What a stop leaves:
//!
//! - [`Recorder::finish`] (or dropping the recorder): every file finished and published.
//! - a crash (the process killed, no destructor run): every finished hour is intact under its
//!   final name; the current hour is a `.partial` file holding every line up to its last flush,
//!   whole and in order, and possibly some after it: a valid gzip stream cut short, which
//!   [`crate::RecordingReader`] reads line by line to the cut, reporting the cut once as a
//!   [`crate::LineError::Io`] and dropping the incomplete line, and which `zcat` reads too (with a
//!   complaint at the end). A flush puts the data in the kernel: it survives the process, not
//!   the machine; a finished file is `fsync`ed and survives both. [`salvage`] copies what a
//!   `.partial` holds into a complete file; [`Recorder::stale_partials`] lists the ones a previous
//!   session left.
//!
//! # Errors
//!
//! Nothing panics. An I/O error (full disk, a read-only directory, ...) is a
//! [`RecordError::Io`] naming the path and the operation, counted in [`RecordStats::io_errors`],
//! and it is one instrument's business: the recorder stays usable. That instrument's current file
//! is abandoned as it stands: kept under its `.partial` name (readable to its last complete
//! write, as after a crash; not published, as it is not whole) and never written again. Its
//! lines are then dropped and counted ([`RecordStats::dropped_io`], the call answering `Ok`) for
//! [`RecordOptions::retry_after_ns`] of local time, after which the next line opens a new file
//! (a new suffix); the other instruments go on. A recording resumed after an error starts
//! without a snapshot (the recorder fetches nothing): the backtest's book for that instrument
//! waits for the next snapshot line.
//!
//! A message that names no instrument of the recorder (an unknown id, or for
//! [`Recorder::stream_any`] a stream of another symbol) is counted ([`RecordStats::unknown`]) and
//! skipped. A message that cannot be recorded as given (a negative time, an empty body, a stream
//! message without its envelope or naming another instrument's symbol) is counted
//! ([`RecordStats::rejected`]), skipped and answered with [`RecordError::Invalid`].
//!
//! # Off the hot path
//!
//! Compression and file I/O take microseconds to milliseconds: the recorder belongs on a thread
//! of its own. [`RecorderThread`] is one: the feed copies each message into a preallocated
//! buffer from a pool and queues it without blocking; when the pool is empty (the recorder is
//! behind) the message is dropped and counted instead of stalling the feed.

use crate::recording::{LineError, RecordingReader};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use engine::{InstrumentId, Symbol, VenueFlavour};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Nanoseconds in an hour.
const HOUR_NS: i64 = 3_600_000_000_000;
/// Suffixes tried for a name (`_001` to `_999`) before [`RecordError::NoFreeName`].
pub const MAX_SUFFIX: u32 = 999;
/// What a file being written is named: the final name and this.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Why a message was not recorded as given ([`RecordError::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// A negative local time (the reader reads `<digits> <json>`).
    #[error("negative local time")]
    NegativeTime,
    /// Nothing but whitespace to record.
    #[error("empty message")]
    Empty,
    /// A stream message without the combined-stream envelope `{"stream":"...","data":...}`,
    /// which names the instrument (record raw-stream payloads with
    /// [`Recorder::stream_payload`]).
    #[error("no combined-stream envelope {{\"stream\":...}} (raw payloads: stream_payload)")]
    NoEnvelope,
    /// A stream name that is not printable ASCII without `"` and `\`.
    #[error("malformed stream name")]
    StreamName,
    /// A stream of another symbol than the instrument's: its file would hold two instruments.
    #[error("the stream names another symbol")]
    OtherSymbol,
    /// A snapshot body that is not a JSON object.
    #[error("a snapshot body that is not a JSON object")]
    NotAnObject,
}

/// An error of the recorder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// An I/O operation on a recording file or directory failed.
    #[error("recording {}: cannot {op}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`create`, `write`, `flush`, `finish`, `sync`, `publish`, ...).
        op: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An instrument id given twice to [`Recorder::create`].
    #[error("instrument {id} is given twice")]
    DuplicateId {
        /// The id.
        id: InstrumentId,
    },
    /// Two instruments whose files would be the same (same venue and symbol).
    #[error("instruments {first} and {second} are both {symbol} on {venue}: one file set each")]
    SameFiles {
        /// The first id.
        first: InstrumentId,
        /// The second id.
        second: InstrumentId,
        /// The symbol.
        symbol: String,
        /// The venue name.
        venue: &'static str,
    },
    /// A symbol that cannot name a file.
    #[error("symbol {symbol:?} cannot name a file: ASCII letters, digits, `_`, `-`, `.` only")]
    BadSymbol {
        /// The symbol.
        symbol: String,
    },
    /// Every suffix of a name is taken.
    #[error("{}: no free name for {base}.gz ({MAX_SUFFIX} suffixes taken)", dir.display())]
    NoFreeName {
        /// The directory.
        dir: PathBuf,
        /// The name without suffix and extension.
        base: String,
    },
    /// A message not recorded (counted in [`RecordStats::rejected`]).
    #[error("instrument {instrument}: message not recorded: {reason}")]
    Invalid {
        /// The instrument it was given for.
        instrument: InstrumentId,
        /// Why.
        reason: Invalid,
    },
    /// Not a `.partial` recording file ([`salvage`]).
    #[error("{}: not a recording's .partial file (<symbol>_<YYYYMMDD>_<HH>[_NNN].gz.partial)", path.display())]
    NotPartial {
        /// The path given.
        path: PathBuf,
    },
    /// The recorder thread could not start, or stopped by panicking (a bug).
    #[error("the recorder thread {0}")]
    Thread(&'static str),
}

impl RecordError {
    fn io(path: &Path, op: &'static str, source: io::Error) -> RecordError {
        RecordError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}

/// Settings of a [`Recorder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOptions {
    /// gzip level, 0 (store) to 9. Default 6.
    pub level: u32,
    /// Line buffer of each open file, bytes (a longer message goes to the compressor directly).
    /// Default 64 KiB.
    pub buffer_bytes: usize,
    /// Local time between automatic flushes of a file, ns (0: only [`Recorder::flush`] and
    /// rotation). Default 1 s.
    pub flush_every_ns: i64,
    /// After an I/O error, how long an instrument's lines are dropped before a new file is
    /// tried, ns of local time. Default 10 s.
    pub retry_after_ns: i64,
}

impl Default for RecordOptions {
    fn default() -> RecordOptions {
        RecordOptions {
            level: 6,
            buffer_bytes: 64 << 10,
            flush_every_ns: 1_000_000_000,
            retry_after_ns: 10_000_000_000,
        }
    }
}

/// Counters of a [`Recorder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Lines written (streams and snapshots).
    pub lines: u64,
    /// Of which snapshots.
    pub snapshots: u64,
    /// Bytes of the lines written, uncompressed (timestamps and newlines included).
    pub bytes: u64,
    /// Messages naming no instrument of the recorder, skipped.
    pub unknown: u64,
    /// Messages not recorded as given ([`RecordError::Invalid`]), skipped.
    pub rejected: u64,
    /// Lines in which a `\r` or `\n` became a space.
    pub newlines_replaced: u64,
    /// Files finished and published.
    pub files: u64,
    /// I/O errors.
    pub io_errors: u64,
    /// Lines lost to I/O errors: the line that met the error, and the lines of an instrument
    /// whose file had failed, until its retry.
    pub dropped_io: u64,
    /// Files abandoned after an I/O error (left under their `.partial` name).
    pub abandoned: u64,
}

/// What a finished recording session wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Files finished and published, in the order they were finished.
    pub files: Vec<PathBuf>,
    /// Files abandoned after an I/O error, under their `.partial` names ([`salvage`]).
    pub abandoned: Vec<PathBuf>,
    /// The counters.
    pub stats: RecordStats,
}

/// [`Recorder::finish`] could not finish every file: what was written, and why the rest was not.
#[derive(Debug, thiserror::Error)]
#[error("{} recording file(s) could not be finished; first: {}", errors.len(), errors.first().map_or(String::new(), |e| e.to_string()))]
pub struct FinishError {
    /// What was written (the files that could not be finished are in `abandoned`).
    pub summary: Box<RecordSummary>,
    /// Why.
    pub errors: Vec<RecordError>,
}

/// The name of the file of `symbol` for the hour of `local_ns`, without suffix:
/// `btcusdt_20240808_23.gz` (see the module documentation).
pub fn file_name(symbol: &Symbol, local_ns: i64) -> String {
    format!(
        "{}_{}.gz",
        symbol.as_str().to_ascii_lowercase(),
        hour_stamp(local_ns.div_euclid(HOUR_NS))
    )
}

/// `YYYYMMDD_HH` of an hour since the epoch (UTC).
fn hour_stamp(hour: i64) -> String {
    let (y, m, d) = civil_from_days(hour.div_euclid(24));
    format!("{y:04}{m:02}{d:02}_{:02}", hour.rem_euclid(24))
}

/// The proleptic Gregorian date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `base.gz` or `base_NNN.gz`.
fn suffixed(base: &str, n: u32) -> String {
    if n == 0 {
        format!("{base}.gz")
    } else {
        format!("{base}_{n:03}.gz")
    }
}

fn partial_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// Whether something (a file, a directory, a dangling link) has this name.
fn taken(path: &Path) -> Result<bool, RecordError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RecordError::io(path, "look up", e)),
    }
}

/// Creates the `.partial` file of the first name from suffix `from` whose final and `.partial`
/// names are both free: (suffix, final name, partial name, file).
fn create_free(
    dir: &Path,
    base: &str,
    from: u32,
) -> Result<(u32, PathBuf, PathBuf, File), RecordError> {
    for n in from..=MAX_SUFFIX {
        let name = dir.join(suffixed(base, n));
        let partial = partial_of(&name);
        if taken(&name)? || taken(&partial)? {
            continue;
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
        {
            Ok(f) => return Ok((n, name, partial, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(RecordError::io(&partial, "create", e)),
        }
    }
    Err(RecordError::NoFreeName {
        dir: dir.to_path_buf(),
        base: base.to_owned(),
    })
}

/// Gives the complete file `partial` its final name, the first free one from suffix `from` on,
/// without replacing anything, and syncs the directory. The final name. A name is free if
/// nothing has it and no `.partial` file is being written for it, other than `partial` itself
/// or `source` (the file [`salvage`] copies).
fn publish(
    dir: &Path,
    base: &str,
    from: u32,
    partial: &Path,
    source: Option<&Path>,
) -> Result<PathBuf, RecordError> {
    for k in from..=MAX_SUFFIX {
        let name = dir.join(suffixed(base, k));
        let its_partial = partial_of(&name);
        let ours = its_partial == partial || Some(its_partial.as_path()) == source;
        if !ours && taken(&its_partial)? {
            continue;
        }
        match fs::hard_link(partial, &name) {
            Ok(()) => {
                // The file is published; were the `.partial` name to stay (it cannot, where a
                // link could be made), it would be a second name of the same complete file.
                let _ = fs::remove_file(partial);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                // No hard links here (or no room for one): a rename, if the name is free.
                if taken(&name)? {
                    continue;
                }
                fs::rename(partial, &name).map_err(|e| RecordError::io(partial, "publish", e))?;
            }
        }
        sync_dir(dir)?;
        return Ok(name);
    }
    Err(RecordError::NoFreeName {
        dir: dir.to_path_buf(),
        base: base.to_owned(),
    })
}

fn sync_dir(dir: &Path) -> Result<(), RecordError> {
    let r = File::open(dir).and_then(|d| d.sync_all());
    match r {
        // Some file systems cannot sync a directory: nothing more to be done there.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r.map_err(|e| RecordError::io(dir, "sync", e)),
    }
}

/// Whether this process may create files in `dir` (`access(2)`, `W_OK | X_OK`).
fn writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; `access` only reads it.
    let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The stream name of a combined-stream envelope, `{"stream":"<name>",...` (whitespace allowed
/// between tokens); `None` if `raw` does not start so or the name holds an escape.
pub fn envelope_stream(raw: &[u8]) -> Option<&[u8]> {
    let skip_ws = |i: usize| {
        i + raw.get(i..).map_or(0, |r| {
            r.iter().take_while(|c| c.is_ascii_whitespace()).count()
        })
    };
    let mut i = 0;
    for token in [&b"{"[..], b"\"stream\"", b":"] {
        i = skip_ws(i);
        if !raw.get(i..)?.starts_with(token) {
            return None;
        }
        i += token.len();
    }
    i = skip_ws(i);
    let rest = raw.get(i..)?.strip_prefix(b"\"")?;
    let name = &rest[..rest.iter().position(|&c| c == b'"')?];
    valid_stream_name(name).then_some(name)
}

/// Printable ASCII without `"` or `\`, not empty.
fn valid_stream_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
}

/// The symbol a stream name names: `btcusdt` of `btcusdt@depth@0ms`.
fn stream_symbol(name: &[u8]) -> &[u8] {
    name.split(|&c| c == b'@').next().unwrap_or(name)
}

/// `json` without the trailing `\r`/`\n` the reader would drop; `None` if nothing but
/// whitespace is left.
fn trim_message(json: &[u8]) -> Option<&[u8]> {
    let end = json.len()
        - json
            .iter()
            .rev()
            .take_while(|&&c| c == b'\n' || c == b'\r')
            .count();
    let json = &json[..end];
    (!json.iter().all(u8::is_ascii_whitespace)).then_some(json)
}

/// Writes `ts pieces...\n`, each `\r`/`\n` in the pieces as a space. Whether one was replaced.
fn emit(w: &mut impl Write, ts: &[u8], pieces: &[&[u8]]) -> io::Result<bool> {
    w.write_all(ts)?;
    w.write_all(b" ")?;
    let mut replaced = false;
    for piece in pieces {
        let mut rest = *piece;
        while let Some(at) = rest.iter().position(|&c| c == b'\n' || c == b'\r') {
            w.write_all(&rest[..at])?;
            w.write_all(b" ")?;
            rest = &rest[at + 1..];
            replaced = true;
        }
        w.write_all(rest)?;
    }
    w.write_all(b"\n")?;
    Ok(replaced)
}

/// The decimal digits of `v` at the end of `buf`.
fn digits(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// The file under the compressor: fails every write once abandoned, so that dropping the
/// compressor of an abandoned file (which tries to write the gzip trailer) adds nothing to it.
struct Sink {
    file: File,
    abandoned: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.abandoned {
            return Err(io::Error::other("recording file abandoned"));
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// One instrument's file being written.
struct OpenFile {
    /// Its hour since the epoch.
    hour: i64,
    /// `btcusdt_20240808_23`.
    base: String,
    /// Its suffix (0: none).
    suffix: u32,
    /// The name it is written under.
    partial: PathBuf,
    enc: GzEncoder<Sink>,
    /// Whole lines not yet given to the compressor (capacity: `buffer_bytes`).
    pending: Vec<u8>,
    /// Lines written since the last flush.
    dirty: bool,
    /// Local time of the last flush (or of the opening).
    flushed_ns: i64,
}

impl OpenFile {
    fn drain(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.enc.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        let r = self.drain().and_then(|()| self.enc.flush());
        r.map_err(|e| RecordError::io(&self.partial, "flush", e))?;
        self.dirty = false;
        Ok(())
    }

    /// Writes the trailer, syncs, publishes. On error the file is left as it stands.
    fn finish(mut self, dir: &Path) -> Result<PathBuf, (RecordError, PathBuf)> {
        let partial = self.partial.clone();
        let fail = |op, e| (RecordError::io(&partial, op, e), partial.clone());
        if let Err(e) = self.drain().and_then(|()| self.enc.try_finish()) {
            self.abandon();
            return Err(fail("finish", e));
        }
        let sink = match self.enc.finish() {
            Ok(s) => s,
            Err(e) => return Err(fail("finish", e)),
        };
        if let Err(e) = sink.file.sync_all() {
            return Err(fail("sync", e));
        }
        drop(sink);
        publish(dir, &self.base, self.suffix, &partial, None).map_err(|e| (e, partial.clone()))
    }

    /// Leaves the file as it stands: syncs what reached it, writes nothing more.
    fn abandon(&mut self) {
        self.enc.get_mut().abandoned = true;
        let _ = self.enc.get_ref().file.sync_data();
    }
}

/// One instrument's recording.
struct Lane {
    id: InstrumentId,
    symbol: Symbol,
    venue: VenueFlavour,
    /// `DIR/<venue>`.
    dir: PathBuf,
    /// The symbol in lower case.
    stem: String,
    file: Option<OpenFile>,
    /// After an I/O error: lines before this local time are dropped.
    paused_until: Option<i64>,
    /// The last line's local time.
    last_ns: i64,
}

/// What to write: the pieces of one line.
enum Body<'a> {
    /// A message as given.
    Raw(&'a [u8]),
    /// A raw-stream payload, in the envelope of `stream`.
    Wrapped { stream: &'a [u8], payload: &'a [u8] },
}

/// Writes what a live feed received, one file set per instrument. See the module documentation.
pub struct Recorder {
    dir: PathBuf,
    opts: RecordOptions,
    lanes: Vec<Lane>,
    /// Lane of each instrument id (`u32::MAX`: none).
    by_id: Vec<u32>,
    stats: RecordStats,
    files: Vec<PathBuf>,
    abandoned: Vec<PathBuf>,
    stale: Vec<PathBuf>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("instruments", &self.lanes.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder writing under `dir` for `instruments` (id, venue symbol, venue). Creates
    /// `dir/<venue>` for each venue and checks it is writable; opens no file until a line
    /// arrives. Each (venue, symbol) once; symbols of ASCII letters, digits, `_`, `-`, `.`.
    pub fn create(
        dir: impl AsRef<Path>,
        instruments: &[(InstrumentId, Symbol, VenueFlavour)],
        opts: RecordOptions,
    ) -> Result<Recorder, RecordError> {
        let dir = dir.as_ref().to_path_buf();
        let mut lanes: Vec<Lane> = Vec::with_capacity(instruments.len());
        let mut by_id = Vec::new();
        for &(id, symbol, venue) in instruments {
            let stem = symbol.as_str().to_ascii_lowercase();
            let ok = !stem.starts_with('.')
                && stem
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
            if !ok {
                return Err(RecordError::BadSymbol { symbol: stem });
            }
            if let Some(other) = lanes.iter().find(|l| l.venue == venue && l.stem == stem) {
                return Err(RecordError::SameFiles {
                    first: other.id,
                    second: id,
                    symbol: symbol.as_str().to_owned(),
                    venue: venue.name(),
                });
            }
            let slot = usize::from(id);
            if by_id.len() <= slot {
                by_id.resize(slot + 1, u32::MAX);
            }
            if by_id[slot] != u32::MAX {
                return Err(RecordError::DuplicateId { id });
            }
            by_id[slot] = lanes.len() as u32;
            lanes.push(Lane {
                id,
                symbol,
                venue,
                dir: dir.join(venue.name()),
                stem,
                file: None,
                paused_until: None,
                last_ns: 0,
            });
        }
        let mut stale = Vec::new();
        for lane in &lanes {
            if lanes
                .iter()
                .take_while(|l| l.id != lane.id)
                .any(|l| l.venue == lane.venue)
            {
                continue; // this venue's directory is done
            }
            fs::create_dir_all(&lane.dir)
                .map_err(|e| RecordError::io(&lane.dir, "create the directory", e))?;
            writable(&lane.dir).map_err(|e| RecordError::io(&lane.dir, "write into", e))?;
            let entries =
                fs::read_dir(&lane.dir).map_err(|e| RecordError::io(&lane.dir, "list", e))?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // `<stem>_<YYYYMMDD>_...`
                let ours = lanes.iter().any(|l| {
                    l.venue == lane.venue
                        && name.strip_prefix(l.stem.as_str()).is_some_and(|rest| {
                            let b = rest.as_bytes();
                            b.len() > 10
                                && b[0] == b'_'
                                && b[1..9].iter().all(u8::is_ascii_digit)
                                && b[9] == b'_'
                        })
                });
                if ours && name.ends_with(PARTIAL_SUFFIX) {
                    stale.push(entry.path());
                }
            }
        }
        stale.sort();
        Ok(Recorder {
            dir,
            opts: RecordOptions {
                level: opts.level.min(9),
                buffer_bytes: opts.buffer_bytes.max(1),
                ..opts
            },
            lanes,
            by_id,
            stats: RecordStats::default(),
            files: Vec::new(),
            abandoned: Vec::new(),
            stale,
        })
    }

    /// The directory recorded into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The counters.
    pub fn stats(&self) -> RecordStats {
        self.stats
    }

    /// Files finished and published so far, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// `.partial` files of these instruments found at [`Recorder::create`]: left by a session
    /// that crashed or met an I/O error (see [`salvage`]). The recorder leaves them alone.
    pub fn stale_partials(&self) -> &[PathBuf] {
        &self.stale
    }

    /// The instrument a combined-stream message of `venue` is for, by the symbol its stream
    /// names (`btcusdt@depth@0ms`: `BTCUSDT`, any case).
    pub fn instrument_for(&self, venue: VenueFlavour, raw: &[u8]) -> Option<InstrumentId> {
        let symbol = stream_symbol(envelope_stream(raw)?);
        self.lanes
            .iter()
            .find(|l| l.venue == venue && l.symbol.eq_ignore_case(symbol))
            .map(|l| l.id)
    }

    /// Records a stream message of `instrument`, exactly as received: the combined-stream
    /// envelope `{"stream":"<symbol>@...","data":{...}}`, whose stream names the instrument's
    /// symbol. An unknown instrument is counted and skipped.
    pub fn stream(
        &mut self,
        instrument: InstrumentId,
        local_ns: i64,
        raw: &[u8],
    ) -> Result<(), RecordError> {
        self.record(instrument, local_ns, Body::Raw(raw), false)
    }

    /// Records a combined-stream message of `venue`, for the instrument its stream names
    /// ([`Recorder::instrument_for`]); a message naming none of them is counted and skipped.
    pub fn stream_any(
        &mut self,
        venue: VenueFlavour,
        local_ns: i64,
        raw: &[u8],
    ) -> Result<(), RecordError> {
        match self.instrument_for(venue, raw) {
            Some(id) => self.stream(id, local_ns, raw),
            None => {
                self.stats.unknown += 1;
                Ok(())
            }
        }
    }

    /// Records a raw-stream payload (a connection to `/ws/<stream>` delivers no envelope) as
    /// `{"stream":"<stream>","data":<payload>}`, what a combined-stream connection would have
    /// delivered; the payload is written as given.
    pub fn stream_payload(
        &mut self,
        instrument: InstrumentId,
        local_ns: i64,
        stream: &str,
        payload: &[u8],
    ) -> Result<(), RecordError> {
        let body = Body::Wrapped {
            stream: stream.as_bytes(),
            payload,
        };
        self.record(instrument, local_ns, body, false)
    }

    /// Records the body of a REST depth snapshot of `instrument` (`{"lastUpdateId":...}`), as
    /// received, where it arrived among the streams.
    pub fn snapshot(
        &mut self,
        instrument: InstrumentId,
        local_ns: i64,
        body: &[u8],
    ) -> Result<(), RecordError> {
        self.record(instrument, local_ns, Body::Raw(body), true)
    }

    fn record(
        &mut self,
        instrument: InstrumentId,
        local_ns: i64,
        body: Body<'_>,
        snapshot: bool,
    ) -> Result<(), RecordError> {
        let Some(&lane) = self.by_id.get(usize::from(instrument)) else {
            self.stats.unknown += 1;
            return Ok(());
        };
        let Some(lane) = self.lanes.get_mut(lane as usize) else {
            self.stats.unknown += 1;
            return Ok(());
        };
        let invalid = |reason| RecordError::Invalid { instrument, reason };
        let checked = check(lane, local_ns, &body, snapshot);
        let (stream, json) = match checked {
            Ok(parts) => parts,
            Err(reason) => {
                self.stats.rejected += 1;
                return Err(invalid(reason));
            }
        };
        let mut ts = [0u8; 20];
        let ts = digits(local_ns as u64, &mut ts);
        let wrapped: [&[u8]; 5];
        let pieces: &[&[u8]] = match stream {
            Some(name) => {
                wrapped = [b"{\"stream\":\"", name, b"\",\"data\":", json, b"}"];
                &wrapped
            }
            None => std::slice::from_ref(&json),
        };
        let out = lane.write(&self.opts, local_ns, ts, pieces, &mut self.files);
        match out {
            Ok((len, replaced)) => {
                self.stats.lines += 1;
                self.stats.snapshots += u64::from(snapshot);
                self.stats.bytes += len as u64;
                self.stats.newlines_replaced += u64::from(replaced);
                self.stats.files = self.files.len() as u64;
                Ok(())
            }
            Err(Dropped::Paused) => {
                self.stats.dropped_io += 1;
                Ok(())
            }
            Err(Dropped::Error(e, abandoned)) => {
                self.stats.dropped_io += 1;
                self.stats.io_errors += 1;
                self.stats.files = self.files.len() as u64;
                if let Some(p) = abandoned {
                    self.stats.abandoned += 1;
                    self.abandoned.push(p);
                }
                lane.paused_until = Some(local_ns.saturating_add(self.opts.retry_after_ns));
                Err(e)
            }
        }
    }

    /// Flushes every open file to the kernel (a gzip sync flush: all written so far can be
    /// read from the files as they stand). An error abandons that file (see the module
    /// documentation); the first error is returned, all are counted.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        let mut first = None;
        for lane in &mut self.lanes {
            let Some(f) = lane.file.as_mut() else {
                continue;
            };
            if !f.dirty {
                continue;
            }
            if let Err(e) = f.flush() {
                if let Some(mut f) = lane.file.take() {
                    f.abandon();
                    self.abandoned.push(f.partial.clone());
                    self.stats.abandoned += 1;
                }
                self.stats.io_errors += 1;
                lane.paused_until = Some(lane.last_ns.saturating_add(self.opts.retry_after_ns));
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Finishes and publishes every open file. What was written, or what was written and why
    /// some files could not be finished (they stay under their `.partial` names).
    pub fn finish(mut self) -> Result<RecordSummary, FinishError> {
        let errors = self.finish_all();
        let summary = RecordSummary {
            files: std::mem::take(&mut self.files),
            abandoned: std::mem::take(&mut self.abandoned),
            stats: self.stats,
        };
        if errors.is_empty() {
            Ok(summary)
        } else {
            Err(FinishError {
                summary: Box::new(summary),
                errors,
            })
        }
    }

    fn finish_all(&mut self) -> Vec<RecordError> {
        let mut errors = Vec::new();
        for lane in &mut self.lanes {
            let Some(f) = lane.file.take() else { continue };
            match f.finish(&lane.dir) {
                Ok(path) => self.files.push(path),
                Err((e, partial)) => {
                    self.stats.io_errors += 1;
                    self.stats.abandoned += 1;
                    self.abandoned.push(partial);
                    errors.push(e);
                }
            }
        }
        self.stats.files = self.files.len() as u64;
        errors
    }
}

impl Drop for Recorder {
    /// Finishes the open files as [`Recorder::finish`] does, errors ignored.
    fn drop(&mut self) {
        let _ = self.finish_all();
    }
}

/// The envelope's stream name (if one is to be written) and the message, or why not.
fn check<'a>(
    lane: &Lane,
    local_ns: i64,
    body: &Body<'a>,
    snapshot: bool,
) -> Result<(Option<&'a [u8]>, &'a [u8]), Invalid> {
    if local_ns < 0 {
        return Err(Invalid::NegativeTime);
    }
    let names_lane = |name: &[u8]| lane.symbol.eq_ignore_case(stream_symbol(name));
    match *body {
        Body::Raw(raw) => {
            let json = trim_message(raw).ok_or(Invalid::Empty)?;
            if snapshot {
                if json.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{') {
                    return Err(Invalid::NotAnObject);
                }
            } else {
                let name = envelope_stream(json).ok_or(Invalid::NoEnvelope)?;
                if !names_lane(name) {
                    return Err(Invalid::OtherSymbol);
                }
            }
            Ok((None, json))
        }
        Body::Wrapped { stream, payload } => {
            if !valid_stream_name(stream) {
                return Err(Invalid::StreamName);
            }
            if !names_lane(stream) {
                return Err(Invalid::OtherSymbol);
            }
            Ok((Some(stream), trim_message(payload).ok_or(Invalid::Empty)?))
        }
    }
}

/// Why a line was not written.
enum Dropped {
    /// The lane is paused after an error.
    Paused,
    /// An I/O error; the file abandoned, if one was.
    Error(RecordError, Option<PathBuf>),
}

impl Lane {
    /// Writes one line: rotates, opens, writes, flushes as due. Its length, and whether a
    /// newline was replaced.
    fn write(
        &mut self,
        opts: &RecordOptions,
        local_ns: i64,
        ts: &[u8],
        pieces: &[&[u8]],
        files: &mut Vec<PathBuf>,
    ) -> Result<(usize, bool), Dropped> {
        if let Some(until) = self.paused_until {
            if local_ns < until {
                return Err(Dropped::Paused);
            }
            self.paused_until = None;
        }
        self.last_ns = local_ns;
        let hour = local_ns / HOUR_NS;
        if self.file.as_ref().is_some_and(|f| hour > f.hour) {
            if let Some(f) = self.file.take() {
                match f.finish(&self.dir) {
                    Ok(path) => files.push(path),
                    Err((e, partial)) => return Err(Dropped::Error(e, Some(partial))),
                }
            }
        }
        if self.file.is_none() {
            self.file = Some(
                self.open(opts, hour, local_ns)
                    .map_err(|e| Dropped::Error(e, None))?,
            );
        }
        let Some(f) = self.file.as_mut() else {
            return Err(Dropped::Paused); // not reached: opened above
        };
        let len = ts.len() + 2 + pieces.iter().map(|p| p.len()).sum::<usize>();
        let capacity = f.pending.capacity();
        let written = (|| {
            if f.pending.len() + len > capacity {
                f.drain()?;
            }
            if len > capacity {
                emit(&mut f.enc, ts, pieces)
            } else {
                emit(&mut f.pending, ts, pieces)
            }
        })();
        let replaced = match written {
            Ok(r) => r,
            Err(e) => {
                let e = RecordError::io(&f.partial, "write", e);
                return Err(self.abandon(e));
            }
        };
        f.dirty = true;
        if opts.flush_every_ns > 0 && local_ns.saturating_sub(f.flushed_ns) >= opts.flush_every_ns {
            f.flushed_ns = local_ns;
            if let Err(e) = f.flush() {
                return Err(self.abandon(e));
            }
        }
        Ok((len, replaced))
    }

    fn abandon(&mut self, e: RecordError) -> Dropped {
        let partial = self.file.take().map(|mut f| {
            f.abandon();
            f.partial.clone()
        });
        Dropped::Error(e, partial)
    }

    fn open(
        &self,
        opts: &RecordOptions,
        hour: i64,
        local_ns: i64,
    ) -> Result<OpenFile, RecordError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| RecordError::io(&self.dir, "create the directory", e))?;
        let base = format!("{}_{}", self.stem, hour_stamp(hour));
        let (suffix, _, partial, file) = create_free(&self.dir, &base, 0)?;
        let sink = Sink {
            file,
            abandoned: false,
        };
        Ok(OpenFile {
            hour,
            base,
            suffix,
            partial,
            enc: GzEncoder::new(sink, Compression::new(opts.level)),
            pending: Vec::with_capacity(opts.buffer_bytes),
            dirty: false,
            flushed_ns: local_ns,
        })
    }
}

/// What [`salvage`] made of a `.partial` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvaged {
    /// The complete file written.
    pub path: PathBuf,
    /// Lines copied.
    pub lines: u64,
    /// Malformed lines left out.
    pub bad_lines: u64,
    /// Whether the `.partial` file was cut short (a crash, an I/O error) rather than whole.
    pub cut: bool,
}

/// Copies the lines of a `.partial` recording file (left by a crash or an I/O error) into a
/// complete file of its final name, or the next free suffix, published as the recorder
/// publishes (see the module documentation), and leaves the `.partial` file in place for its
/// owner to delete. Every whole line the file holds is copied, in order; an incomplete last line
/// is left out.
pub fn salvage(partial: &Path) -> Result<Salvaged, RecordError> {
    let not_partial = || RecordError::NotPartial {
        path: partial.to_path_buf(),
    };
    let name = partial
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(not_partial)?;
    let stem = name
        .strip_suffix(PARTIAL_SUFFIX)
        .and_then(|n| n.strip_suffix(".gz"))
        .ok_or_else(not_partial)?;
    // `<symbol>_<YYYYMMDD>_<HH>` with an optional `_NNN`.
    let (base, n) = match stem.rsplit_once('_') {
        Some((head, n))
            if n.len() == 3
                && n.bytes().all(|c| c.is_ascii_digit())
                && head.rsplit_once('_').is_some_and(|(_, hh)| hh.len() == 2) =>
        {
            (head, n.parse().unwrap_or(0))
        }
        _ => (stem, 0),
    };
    let dir = partial.parent().unwrap_or(Path::new("."));
    let mut reader = RecordingReader::open(&[partial])
        .map_err(|e| RecordError::io(&e.path, "open", e.source))?;
    let (_, _, temp, file) = create_free(dir, base, 0)?;
    let mut enc = GzEncoder::new(
        Sink {
            file,
            abandoned: false,
        },
        Compression::default(),
    );
    let mut out = Salvaged {
        path: PathBuf::new(),
        lines: 0,
        bad_lines: 0,
        cut: false,
    };
    let mut ts = [0u8; 20];
    let mut written: io::Result<()> = Ok(());
    while let Some(line) = reader.next() {
        match line {
            Ok(l) => {
                let ts = digits(l.local_ns as u64, &mut ts);
                written = emit(&mut enc, ts, &[l.json]).map(|_| ());
                if written.is_err() {
                    break;
                }
                out.lines += 1;
            }
            Err(LineError::Io { .. }) => out.cut = true,
            Err(_) => out.bad_lines += 1,
        }
    }
    let sink = written
        .and_then(|()| enc.finish())
        .and_then(|s| s.file.sync_all().map(|()| s))
        .map_err(|e| RecordError::io(&temp, "write", e))?;
    drop(sink);
    // Under the name the `.partial` file was to have, if it is free (the `.partial` file is
    // the one salvaged), or the next free one.
    out.path = publish(dir, base, n, &temp, Some(partial))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The recorder on a thread of its own.

/// Settings of a [`RecorderThread`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadOptions {
    /// Buffers in the pool: messages that can wait for the recorder. Default 4,096.
    pub slots: usize,
    /// Capacity each buffer starts with, bytes. Default 4 KiB.
    pub slot_bytes: usize,
    /// A buffer that grew past this for a long message is shrunk back to `slot_bytes` when the
    /// recorder returns it. Default 16 KiB.
    pub keep_bytes: usize,
    /// Longer messages are dropped and counted. Default 1 MiB (a 5,000-level spot snapshot is
    /// about 300 KB).
    pub max_message: usize,
    /// When no message has come for this long, the recorder flushes. Default 250 ms.
    pub idle_flush: Duration,
    /// Errors kept for the report (all are counted). Default 64.
    pub keep_errors: usize,
}

impl Default for ThreadOptions {
    fn default() -> ThreadOptions {
        ThreadOptions {
            slots: 4_096,
            slot_bytes: 4 << 10,
            keep_bytes: 16 << 10,
            max_message: 1 << 20,
            idle_flush: Duration::from_millis(250),
            keep_errors: 64,
        }
    }
}

/// Counters of the queue to a [`RecorderThread`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages queued.
    pub queued: u64,
    /// Dropped: every buffer in use (the recorder is behind).
    pub dropped_full: u64,
    /// Dropped: longer than [`ThreadOptions::max_message`].
    pub dropped_too_large: u64,
    /// Dropped: the recorder thread had stopped.
    pub dropped_stopped: u64,
    /// Messages the recorder has taken (recorded, skipped or refused).
    pub processed: u64,
    /// Errors the recorder answered ([`RecordError`]).
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Shared {
    queued: AtomicU64,
    dropped_full: AtomicU64,
    dropped_too_large: AtomicU64,
    dropped_stopped: AtomicU64,
    processed: AtomicU64,
    errors: AtomicU64,
    /// The recorder's counters, as of its last batch.
    stats: Mutex<RecordStats>,
}

impl Shared {
    fn queue_stats(&self) -> QueueStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueStats {
            queued: get(&self.queued),
            dropped_full: get(&self.dropped_full),
            dropped_too_large: get(&self.dropped_too_large),
            dropped_stopped: get(&self.dropped_stopped),
            processed: get(&self.processed),
            errors: get(&self.errors),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Stream(InstrumentId),
    /// A raw-stream payload: the buffer holds the stream name (this long), then the payload.
    Payload(InstrumentId, usize),
    Any(VenueFlavour),
    Snapshot(InstrumentId),
}

#[derive(Debug)]
enum Msg {
    Line {
        kind: Kind,
        local_ns: i64,
        buf: Vec<u8>,
    },
    Flush,
    Stop,
}

/// The feed's side of a [`RecorderThread`]: queues copies of messages without blocking. Cheap
/// to clone (one per connection thread, say).
#[derive(Debug, Clone)]
pub struct RecordSender {
    tx: Sender<Msg>,
    free: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    max_message: usize,
}

impl RecordSender {
    /// Queues [`Recorder::stream`]. Whether it was queued (else dropped and counted).
    pub fn stream(&self, instrument: InstrumentId, local_ns: i64, raw: &[u8]) -> bool {
        self.send(Kind::Stream(instrument), local_ns, &[raw])
    }

    /// Queues [`Recorder::stream_any`].
    pub fn stream_any(&self, venue: VenueFlavour, local_ns: i64, raw: &[u8]) -> bool {
        self.send(Kind::Any(venue), local_ns, &[raw])
    }

    /// Queues [`Recorder::stream_payload`].
    pub fn stream_payload(
        &self,
        instrument: InstrumentId,
        local_ns: i64,
        stream: &str,
        payload: &[u8],
    ) -> bool {
        let kind = Kind::Payload(instrument, stream.len());
        self.send(kind, local_ns, &[stream.as_bytes(), payload])
    }

    /// Queues [`Recorder::snapshot`].
    pub fn snapshot(&self, instrument: InstrumentId, local_ns: i64, body: &[u8]) -> bool {
        self.send(Kind::Snapshot(instrument), local_ns, &[body])
    }

    /// Asks the recorder to flush its files. Whether the request was queued.
    pub fn flush(&self) -> bool {
        self.tx.try_send(Msg::Flush).is_ok()
    }

    /// The queue's counters.
    pub fn queue_stats(&self) -> QueueStats {
        self.shared.queue_stats()
    }

    /// The recorder's counters, as of the last batch it took.
    pub fn record_stats(&self) -> RecordStats {
        self.shared
            .stats
            .lock()
            .map_or_else(|p| *p.into_inner(), |s| *s)
    }

    fn send(&self, kind: Kind, local_ns: i64, pieces: &[&[u8]]) -> bool {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let count = |a: &AtomicU64| {
            a.fetch_add(1, Ordering::Relaxed);
            false
        };
        if len > self.max_message {
            return count(&self.shared.dropped_too_large);
        }
        let mut buf = match self.free.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty) => return count(&self.shared.dropped_full),
            Err(TryRecvError::Disconnected) => return count(&self.shared.dropped_stopped),
        };
        buf.clear();
        for p in pieces {
            buf.extend_from_slice(p);
        }
        match self.tx.try_send(Msg::Line {
            kind,
            local_ns,
            buf,
        }) {
            Ok(()) => {
                self.shared.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_)) => count(&self.shared.dropped_full),
            Err(TrySendError::Disconnected(_)) => count(&self.shared.dropped_stopped),
        }
    }
}

/// What a [`RecorderThread`] did.
#[derive(Debug)]
pub struct ThreadReport {
    /// The recorder's [`Recorder::finish`].
    pub result: Result<RecordSummary, FinishError>,
    /// The first errors the recorder answered while running ([`ThreadOptions::keep_errors`]);
    /// [`QueueStats::errors`] counts them all.
    pub errors: Vec<RecordError>,
    /// The queue's counters.
    pub queue: QueueStats,
}

/// What the recorder thread returns: its recorder's finish, the errors kept.
type Outcome = (Result<RecordSummary, FinishError>, Vec<RecordError>);

/// A [`Recorder`] on a thread of its own, fed by [`RecordSender`]s through a bounded queue of
/// preallocated buffers (`crossbeam-channel`).
///
/// The feed's side never blocks and, once the buffers have grown to the messages' sizes,
/// never allocates: it takes a free buffer from the pool, copies the message into it and queues
/// it; when no buffer is free (the recorder is [`ThreadOptions::slots`] messages behind) the
/// message is dropped and counted ([`QueueStats::dropped_full`]). A message longer than the
/// buffer it gets grows that buffer (an allocation on the feed's thread); the recorder shrinks
/// buffers grown past [`ThreadOptions::keep_bytes`] back to `slot_bytes` when it returns them.
/// Memory of the pool: `slots × slot_bytes` to begin with, at most `slots × keep_bytes` once
/// the recorder has caught up, and never more than `slots × max_message`.
///
/// The thread records in arrival order, flushes when idle for [`ThreadOptions::idle_flush`],
/// and at [`RecorderThread::finish`] (or drop) records what was queued before it, finishes the
/// files and stops; later messages are dropped and counted.
#[derive(Debug)]
pub struct RecorderThread {
    sender: RecordSender,
    handle: Option<JoinHandle<Outcome>>,
}

impl RecorderThread {
    /// Starts a thread named `recorder` running `recorder`.
    pub fn spawn(recorder: Recorder, opts: ThreadOptions) -> Result<RecorderThread, RecordError> {
        let slots = opts.slots.max(1);
        // Room for every buffer plus control messages: a line never finds the queue full.
        let (tx, rx) = crossbeam_channel::bounded(slots + 64);
        let (free_tx, free) = crossbeam_channel::bounded(slots);
        for _ in 0..slots {
            let _ = free_tx.try_send(Vec::with_capacity(opts.slot_bytes));
        }
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(recorder, rx, free_tx, thread_shared, opts))
            .map_err(|_| RecordError::Thread("could not start"))?;
        Ok(RecorderThread {
            sender: RecordSender {
                tx,
                free,
                shared,
                max_message: opts.max_message,
            },
            handle: Some(handle),
        })
    }

    /// A sender for the feed.
    pub fn sender(&self) -> RecordSender {
        self.sender.clone()
    }

    /// Records what was queued, finishes the files, stops the thread.
    pub fn finish(mut self) -> ThreadReport {
        self.stop()
    }

    fn stop(&mut self) -> ThreadReport {
        // Blocks only while the queue is full of control messages: the thread drains it.
        let _ = self.sender.tx.send(Msg::Stop);
        let (result, errors) = match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => (
                Err(FinishError {
                    summary: Box::default(),
                    errors: vec![RecordError::Thread("panicked")],
                }),
                Vec::new(),
            ),
        };
        ThreadReport {
            result,
            errors,
            queue: self.sender.queue_stats(),
        }
    }
}

impl Drop for RecorderThread {
    /// Stops the thread as [`RecorderThread::finish`] does.
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.stop();
        }
    }
}

fn run(
    mut rec: Recorder,
    rx: Receiver<Msg>,
    free: Sender<Vec<u8>>,
    shared: Arc<Shared>,
    opts: ThreadOptions,
) -> Outcome {
    let mut errors = Vec::new();
    let mut dirty = false;
    let share = |rec: &Recorder| {
        if let Ok(mut s) = shared.stats.lock() {
            *s = rec.stats();
        }
    };
    let keep = |e: RecordError, errors: &mut Vec<RecordError>| {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        if errors.len() < opts.keep_errors {
            errors.push(e);
        }
    };
    loop {
        let msg = match rx.recv_timeout(opts.idle_flush) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                if dirty {
                    dirty = false;
                    if let Err(e) = rec.flush() {
                        keep(e, &mut errors);
                    }
                    share(&rec);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Msg::Line {
                kind,
                local_ns,
                mut buf,
            } => {
                let r = match kind {
                    Kind::Stream(id) => rec.stream(id, local_ns, &buf),
                    Kind::Any(venue) => rec.stream_any(venue, local_ns, &buf),
                    Kind::Payload(id, n) => {
                        let (name, payload) = buf.split_at(n.min(buf.len()));
                        let name = std::str::from_utf8(name).unwrap_or("\\");
                        rec.stream_payload(id, local_ns, name, payload)
                    }
                    Kind::Snapshot(id) => rec.snapshot(id, local_ns, &buf),
                };
                shared.processed.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = r {
                    keep(e, &mut errors);
                }
                dirty = true;
                if buf.capacity() > opts.keep_bytes {
                    buf = Vec::with_capacity(opts.slot_bytes);
                }
                let _ = free.try_send(buf);
            }
            Msg::Flush => {
                if let Err(e) = rec.flush() {
                    keep(e, &mut errors);
                }
                dirty = false;
            }
            Msg::Stop => break,
        }
        if rx.is_empty() {
            share(&rec);
        }
    }
    // Lines queued before the stop were taken above (one queue, in order); later ones find the
    // queue gone and are counted as dropped.
    drop(rx);
    let result = rec.finish();
    if let Ok(mut s) = shared.stats.lock() {
        *s = match &result {
            Ok(summary) => summary.stats,
            Err(e) => e.summary.stats,
        };
    }
    (result, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_name_utc_dates() {
        assert_eq!(hour_stamp(0), "19700101_00");
        // 2024-08-08 23:54:15 UTC and 2024-08-09 00:00:00.0016 UTC.
        assert_eq!(
            hour_stamp(1_723_161_255_030_314_667 / HOUR_NS),
            "20240808_23"
        );
        assert_eq!(
            hour_stamp(1_723_161_600_001_658_384 / HOUR_NS),
            "20240809_00"
        );
        // Leap days, century rules, the end of i64 nanoseconds.
        let day = |y: i64, m: u32, d: u32| {
            (0..200_000)
                .find(|&n| civil_from_days(n) == (y, m, d))
                .unwrap()
        };
        assert_eq!(civil_from_days(day(2000, 2, 29) + 1), (2000, 3, 1));
        assert_eq!(civil_from_days(day(2100, 2, 28) + 1), (2100, 3, 1));
        assert_eq!(civil_from_days(day(2024, 12, 31) + 1), (2025, 1, 1));
        assert_eq!(hour_stamp(i64::MAX / HOUR_NS), "22620411_23");
        let sym = Symbol::new(b"BTCUSD_PERP").unwrap();
        assert_eq!(
            file_name(&sym, 1_723_161_255_030_314_667),
            "btcusd_perp_20240808_23.gz"
        );
    }

    #[test]
    fn suffixed_names_sort_in_time_order() {
        let mut names = vec![
            suffixed("btcusdt_20240809_00", 0),
            suffixed("btcusdt_20240808_23", 10),
            suffixed("btcusdt_20240808_23", 2),
            suffixed("btcusdt_20240808_23", 0),
            suffixed("btcusdt_20240808_22", 999),
        ];
        names.sort();
        assert_eq!(
            names,
            [
                "btcusdt_20240808_22_999.gz",
                "btcusdt_20240808_23.gz",
                "btcusdt_20240808_23_002.gz",
                "btcusdt_20240808_23_010.gz",
                "btcusdt_20240809_00.gz"
            ]
        );
    }

    #[test]
    fn envelopes_name_their_stream() {
        let s = |raw: &str| {
            envelope_stream(raw.as_bytes()).map(|n| String::from_utf8_lossy(n).into_owned())
        };
        assert_eq!(
            s(r#"{"stream":"btcusdt@depth@0ms","data":{}}"#).as_deref(),
            Some("btcusdt@depth@0ms")
        );
        assert_eq!(
            s(" {\n \"stream\" : \"btcusdt@trade\",\"data\":{}}").as_deref(),
            Some("btcusdt@trade")
        );
        assert_eq!(s(r#"{"data":{},"stream":"btcusdt@trade"}"#), None);
        assert_eq!(s(r#"{"stream":" btcusdt","data":{}}"#), None);
        assert_eq!(s(r#"{"stream":"a\"b","data":{}}"#), None);
        assert_eq!(s(r#"{"stream":"","data":{}}"#), None);
        assert_eq!(s(r#"{"stream":"abc"#), None);
        assert_eq!(s(r#"{"e":"depthUpdate"}"#), None);
        assert_eq!(s(""), None);
        assert_eq!(s("{"), None);
        assert_eq!(stream_symbol(b"btcusdt@depth@0ms"), b"btcusdt");
        assert_eq!(stream_symbol(b"btcusdt"), b"btcusdt");
    }

    #[test]
    fn lines_keep_their_bytes_but_not_their_newlines() {
        let mut out = Vec::new();
        assert!(!emit(&mut out, b"12", &[b"{\"a\": 1}"]).unwrap());
        assert!(emit(&mut out, b"3", &[b"{\r\n\"a\":", b"\n1}"]).unwrap());
        assert_eq!(out, b"12 {\"a\": 1}\n3 {  \"a\": 1}\n");
        assert_eq!(trim_message(b"{}\r\n\n"), Some(&b"{}"[..]));
        assert_eq!(trim_message(b" \r\n"), None);
        assert_eq!(trim_message(b""), None);
        let mut buf = [0u8; 20];
        assert_eq!(digits(0, &mut buf), b"0");
        assert_eq!(digits(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
