//! The event cache: a recording decoded once, kept as the events the feed handler made of it, so
//! that the next backtest of the same recordings skips reading, inflating, decoding and syncing.
//!
//! # Key
//!
//! A cache file is named by the hex SHA-256 of everything its events depend on:
//!
//! * this format's version, the event layout ([`Event::LAYOUT_VERSION`]), the crate version, and
//!   the size and modification time of the running executable (a rebuilt binary may decode
//!   differently: its cache entries are new ones);
//! * the config's parts that decoding reads: the books' window (`book_slots`) and each
//!   instrument's definition and venue flavour, in id order (quoting, risk and adapt settings
//!   are not part of it: a backtest of other quoting parameters over the same recording hits);
//! * each recording bound to each instrument, in order: its length and the SHA-256 of its bytes
//!   (so a file changed in place, or another file at the same path, is another entry).
//!
//! # Format (little-endian)
//!
//! ```text
//! header  "RMEVCACH" | version u32 | key [32]
//! chunk   1u8 | events u32 | batches u32 | events × 64 bytes (Event::write_bytes)
//!             | batches × (end u32, receive time i64) | lines read so far u64 | CRC-32C u32
//! ...
//! end     2u8 | length u32 | what decoding counted (Meta) | CRC-32C u32
//! ```
//!
//! Each CRC covers its record from the tag on. Records are checked as they are read: a damaged
//! one (a bad CRC, a cut, counts that disagree, bytes after the end record) is reported, and the
//! backtest decodes the recordings instead, from where the entry stopped being usable (decoding
//! gives the same batches in the same order, so those already consumed are skipped), and writes
//! the entry again.
//!
//! # Writing and eviction
//!
//! A new entry is written beside its final name (`<key>.rmev.tmp-<pid>`) and renamed into place
//! when complete, so a reader never sees half a file and two runs writing the same entry do not
//! mix. After writing, the oldest entries (by modification time; a hit refreshes it) are removed
//! until the directory's entries fit the size limit. Only files named `*.rmev` that start with
//! this format's magic are ever removed.

use anyhow::Context;
use engine::{Config, Event};
use feeds::{FeedStats, SyncStats};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of a cache file.
pub const MAGIC: &[u8; 8] = b"RMEVCACH";
/// Format version (in the header and the key).
pub const VERSION: u32 = 1;
/// Extension of a cache entry.
pub const EXTENSION: &str = "rmev";
/// Default size limit of a cache directory, MiB.
pub const DEFAULT_MAX_MIB: u64 = 2048;

const TAG_CHUNK: u8 = 1;
const TAG_END: u8 = 2;
const HEADER_LEN: usize = 8 + 4 + 32;
/// Largest record accepted when reading (a chunk holds at most a few MiB).
const MAX_RECORD: u64 = 1 << 30;
/// Most skipped-line notes kept in the end record.
const MAX_NOTES: usize = 64;

/// The cache directory a user's runs share: `$XDG_CACHE_HOME/ringmaker/events`, else
/// `$HOME/.cache/ringmaker/events`; `None` with neither set.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("ringmaker").join("events"))
}

/// A cache key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key of `files` (by instrument id, as [`feeds::bind_config`] binds them) decoded for
    /// `cfg`. Reads every file through once (SHA-256).
    pub fn of(cfg: &Config, files: &[Vec<PathBuf>]) -> anyhow::Result<Key> {
        let mut h = Sha256::new();
        h.update(b"ringmaker event cache\n");
        h.update(VERSION.to_le_bytes());
        h.update(Event::LAYOUT_VERSION.to_le_bytes());
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0]);
        if let Some(meta) = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
        {
            h.update(meta.len().to_le_bytes());
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            h.update(mtime.to_le_bytes());
        }
        h.update((cfg.book_slots as u64).to_le_bytes());
        for inst in &cfg.instruments {
            h.update(format!("{:?}|{:?}\n", inst.instrument, inst.venue).as_bytes());
        }
        for (id, paths) in files.iter().enumerate() {
            for path in paths {
                let mut f =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                let mut fh = Sha256::new();
                let n = std::io::copy(&mut f, &mut fh)
                    .with_context(|| format!("reading {}", path.display()))?;
                h.update((id as u64).to_le_bytes());
                h.update(n.to_le_bytes());
                h.update(fh.finalize());
            }
        }
        Ok(Key(h.finalize().into()))
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The entry's path in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.{EXTENSION}", self.hex()))
    }
}

/// What decoding counted, kept with the events (a backtest from the cache reports the same).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// Lines read, lines skipped.
    pub lines: (u64, u64),
    /// Notes on the first skipped lines.
    pub skipped: Vec<String>,
    /// Feed handler counters.
    pub feed: FeedStats,
    /// Book sync counters over every instrument.
    pub sync: SyncStats,
    /// Book sync counters per instrument (by id).
    pub sync_by_instrument: Vec<SyncStats>,
    /// Batches of events held.
    pub batches: u64,
    /// Events held.
    pub events: u64,
}

fn feed_words(f: &FeedStats) -> [u64; 11] {
    let FeedStats {
        messages,
        decode_errors,
        depth_messages,
        bbo,
        trades,
        mark_prices,
        ignored,
        snapshot_requests,
        snapshots_unavailable,
        time_jumps,
        crossed_books,
    } = *f;
    [
        messages,
        decode_errors,
        depth_messages,
        bbo,
        trades,
        mark_prices,
        ignored,
        snapshot_requests,
        snapshots_unavailable,
        time_jumps,
        crossed_books,
    ]
}

fn feed_of(w: [u64; 11]) -> FeedStats {
    let [messages, decode_errors, depth_messages, bbo, trades, mark_prices, ignored, snapshot_requests, snapshots_unavailable, time_jumps, crossed_books] =
        w;
    FeedStats {
        messages,
        decode_errors,
        depth_messages,
        bbo,
        trades,
        mark_prices,
        ignored,
        snapshot_requests,
        snapshots_unavailable,
        time_jumps,
        crossed_books,
    }
}

fn sync_words(s: &SyncStats) -> [u64; 7] {
    let SyncStats {
        snapshots,
        diffs_applied,
        diffs_stale,
        gaps,
        snapshots_too_old,
        resyncs,
        buffer_overflows,
    } = *s;
    [
        snapshots,
        diffs_applied,
        diffs_stale,
        gaps,
        snapshots_too_old,
        resyncs,
        buffer_overflows,
    ]
}

fn sync_of(w: [u64; 7]) -> SyncStats {
    let [snapshots, diffs_applied, diffs_stale, gaps, snapshots_too_old, resyncs, buffer_overflows] =
        w;
    SyncStats {
        snapshots,
        diffs_applied,
        diffs_stale,
        gaps,
        snapshots_too_old,
        resyncs,
        buffer_overflows,
    }
}

impl Meta {
    fn encode(&self, out: &mut Vec<u8>) {
        fn put(out: &mut Vec<u8>, v: u64) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.lines.0, self.lines.1, self.batches, self.events] {
            put(out, v);
        }
        feed_words(&self.feed)
            .into_iter()
            .chain(sync_words(&self.sync))
            .for_each(|v| put(out, v));
        put(out, self.sync_by_instrument.len() as u64);
        for s in &self.sync_by_instrument {
            sync_words(s).into_iter().for_each(|v| put(out, v));
        }
        let notes = &self.skipped[..self.skipped.len().min(MAX_NOTES)];
        put(out, notes.len() as u64);
        for n in notes {
            put(out, n.len() as u64);
            out.extend_from_slice(n.as_bytes());
        }
    }

    fn decode(b: &[u8]) -> Option<Meta> {
        let at = std::cell::Cell::new(0usize);
        let word = || -> Option<u64> {
            let i = at.get();
            let v = u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?);
            at.set(i + 8);
            Some(v)
        };
        let lines = (word()?, word()?);
        let (batches, events) = (word()?, word()?);
        let mut fw = [0u64; 11];
        for w in fw.iter_mut() {
            *w = word()?;
        }
        let mut sw = [0u64; 7];
        for w in sw.iter_mut() {
            *w = word()?;
        }
        let n = word()?;
        if n > u16::MAX as u64 + 1 {
            return None;
        }
        let mut by = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let mut w = [0u64; 7];
            for x in w.iter_mut() {
                *x = word()?;
            }
            by.push(sync_of(w));
        }
        let notes = word()?;
        if notes > MAX_NOTES as u64 {
            return None;
        }
        let mut skipped = Vec::with_capacity(notes as usize);
        for _ in 0..notes {
            let len = word()? as usize;
            let i = at.get();
            let text = b.get(i..i.checked_add(len)?)?;
            at.set(i + len);
            skipped.push(String::from_utf8(text.to_vec()).ok()?);
        }
        (at.get() == b.len()).then_some(Meta {
            lines,
            skipped,
            feed: feed_of(fw),
            sync: sync_of(sw),
            sync_by_instrument: by,
            batches,
            events,
        })
    }
}

/// One batch boundary of a chunk: the end (exclusive) of its events, and their receive time.
pub type BatchEnd = (u32, i64);

/// Writes a new cache entry as chunks arrive; renamed into place by [`CacheWriter::finish`].
/// Dropped without finishing, it removes its temporary file.
#[derive(Debug)]
pub struct CacheWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    dst: PathBuf,
    buf: Vec<u8>,
    batches: u64,
    events: u64,
}

impl CacheWriter {
    /// Starts the entry of `key` in `dir` (created if missing).
    pub fn create(dir: &Path, key: &Key) -> anyhow::Result<CacheWriter> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the event cache {}", dir.display()))?;
        let dst = key.path_in(dir);
        let tmp = dir.join(format!(
            "{}.{EXTENSION}.tmp-{}",
            key.hex(),
            std::process::id()
        ));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut head = Vec::with_capacity(HEADER_LEN);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&key.0);
        out.write_all(&head)
            .with_context(|| format!("writing {}", tmp.display()))?;
        Ok(CacheWriter {
            out: Some(out),
            tmp,
            dst,
            buf: Vec::new(),
            batches: 0,
            events: 0,
        })
    }

    /// Appends one chunk: `events`, cut into batches by `batches`, after `lines` lines read.
    pub fn chunk(
        &mut self,
        events: &[Event],
        batches: &[BatchEnd],
        lines: u64,
    ) -> anyhow::Result<()> {
        let b = &mut self.buf;
        b.clear();
        b.push(TAG_CHUNK);
        b.extend_from_slice(&(events.len() as u32).to_le_bytes());
        b.extend_from_slice(&(batches.len() as u32).to_le_bytes());
        let mut one = [0u8; Event::SIZE];
        for e in events {
            e.write_bytes(&mut one);
            b.extend_from_slice(&one);
        }
        for (end, t) in batches {
            b.extend_from_slice(&end.to_le_bytes());
            b.extend_from_slice(&t.to_le_bytes());
        }
        b.extend_from_slice(&lines.to_le_bytes());
        let crc = crc32c::crc32c(b);
        b.extend_from_slice(&crc.to_le_bytes());
        self.batches += batches.len() as u64;
        self.events += events.len() as u64;
        let out = self.out.as_mut().context("the cache entry is closed")?;
        out.write_all(b)
            .with_context(|| format!("writing {}", self.tmp.display()))
    }

    /// Writes the end record (`meta`, with this writer's batch and event totals), syncs nothing
    /// (a cache entry can be made again) and renames the entry into place.
    pub fn finish(mut self, meta: &Meta) -> anyhow::Result<PathBuf> {
        let meta = Meta {
            batches: self.batches,
            events: self.events,
            ..meta.clone()
        };
        let mut body = Vec::new();
        meta.encode(&mut body);
        let b = &mut self.buf;
        b.clear();
        b.push(TAG_END);
        b.extend_from_slice(&(body.len() as u32).to_le_bytes());
        b.extend_from_slice(&body);
        let crc = crc32c::crc32c(b);
        b.extend_from_slice(&crc.to_le_bytes());
        let mut out = self.out.take().context("the cache entry is closed")?;
        out.write_all(b)
            .and_then(|()| out.flush())
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        drop(out);
        std::fs::rename(&self.tmp, &self.dst)
            .with_context(|| format!("renaming {} into place", self.tmp.display()))?;
        Ok(self.dst.clone())
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Why a cache entry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The entry.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a complete entry of this key.
    #[error("{path} is not a usable event cache entry: {why}")]
    Corrupt {
        /// The entry.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// Reads a cache entry's chunks, checking each as it goes.
#[derive(Debug)]
pub struct CacheReader {
    r: BufReader<File>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Events and batches read so far.
    events: u64,
    batches: u64,
    /// The end record, once read and checked.
    meta: Option<Meta>,
}

enum Record {
    Chunk,
    End(Box<Meta>),
}

impl CacheReader {
    /// The entry of `key` in `dir`: `Ok(None)` when there is none; an error when it exists but
    /// cannot be read or holds another key. The rest is checked as it is read
    /// ([`CacheReader::next_chunk`]). Opening refreshes the entry's modification time (for
    /// eviction).
    pub fn open(dir: &Path, key: &Key) -> Result<Option<CacheReader>, CacheError> {
        let path = key.path_in(dir);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let _ = file.set_modified(std::time::SystemTime::now());
        let mut rd = CacheReader {
            r: BufReader::with_capacity(1 << 20, file),
            path,
            buf: Vec::new(),
            events: 0,
            batches: 0,
            meta: None,
        };
        rd.header(key)?;
        Ok(Some(rd))
    }

    /// The next chunk into `events` and `batches` (cleared first), checked; the lines read by
    /// then. `Ok(None)` after the end record, once it is checked too (its counts are the
    /// chunks', nothing follows it): [`CacheReader::meta`] then holds it. An error when the
    /// entry is damaged: the chunks given before it were whole and right, the rest is unusable.
    pub fn next_chunk(
        &mut self,
        events: &mut Vec<Event>,
        batches: &mut Vec<BatchEnd>,
    ) -> Result<Option<u64>, CacheError> {
        if self.meta.is_some() {
            return Ok(None);
        }
        match self.record(events, batches)? {
            Some(Record::Chunk) => {
                self.events += events.len() as u64;
                self.batches += batches.len() as u64;
                let b = &self.buf;
                let at = b.len() - 12;
                Ok(Some(u64::from_le_bytes(
                    b[at..at + 8].try_into().unwrap_or_default(),
                )))
            }
            Some(Record::End(meta)) => {
                let mut extra = [0u8; 1];
                match self.r.read(&mut extra) {
                    Ok(0) => {}
                    Ok(_) => return Err(self.corrupt("bytes follow its end record")),
                    Err(source) => return Err(self.io(source)),
                }
                if (meta.events, meta.batches) != (self.events, self.batches) || self.batches == 0 {
                    return Err(self.corrupt(&format!(
                        "its end record counts {} events in {} batches, its chunks {} in {}",
                        meta.events, meta.batches, self.events, self.batches
                    )));
                }
                self.meta = Some(*meta);
                Ok(None)
            }
            None => Err(self.corrupt("it ends before its end record")),
        }
    }

    /// What decoding counted, once [`CacheReader::next_chunk`] has read the end record.
    pub fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }

    /// The entry's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> CacheError {
        CacheError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, why: &str) -> CacheError {
        CacheError::Corrupt {
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    fn header(&mut self, key: &Key) -> Result<(), CacheError> {
        let mut head = [0u8; HEADER_LEN];
        self.read_exact(&mut head, "it is shorter than its header")?;
        if &head[..8] != MAGIC {
            return Err(self.corrupt("it does not start with the event cache's magic"));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != VERSION {
            return Err(self.corrupt(&format!("format version {version}, not {VERSION}")));
        }
        if head[12..] != key.0 {
            return Err(self.corrupt("its header holds another key"));
        }
        Ok(())
    }

    fn read_exact(&mut self, to: &mut [u8], short: &str) -> Result<(), CacheError> {
        match self.r.read_exact(to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(self.corrupt(short)),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Reads one record into `self.buf` (tag to CRC), checks it, and decodes it.
    fn record(
        &mut self,
        events: &mut Vec<Event>,
        batches: &mut Vec<BatchEnd>,
    ) -> Result<Option<Record>, CacheError> {
        events.clear();
        batches.clear();
        let mut tag = [0u8; 1];
        match self.r.read(&mut tag) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(self.io(e)),
        }
        let body_len = match tag[0] {
            TAG_CHUNK => {
                let mut counts = [0u8; 8];
                self.read_exact(&mut counts, "a chunk is cut short")?;
                let ne = u32::from_le_bytes([counts[0], counts[1], counts[2], counts[3]]) as u64;
                let nb = u32::from_le_bytes([counts[4], counts[5], counts[6], counts[7]]) as u64;
                self.buf.clear();
                self.buf.push(TAG_CHUNK);
                self.buf.extend_from_slice(&counts);
                ne * Event::SIZE as u64 + nb * 12 + 8
            }
            TAG_END => {
                let mut len = [0u8; 4];
                self.read_exact(&mut len, "the end record is cut short")?;
                self.buf.clear();
                self.buf.push(TAG_END);
                self.buf.extend_from_slice(&len);
                u32::from_le_bytes(len) as u64
            }
            t => return Err(self.corrupt(&format!("a record of unknown kind {t}"))),
        };
        if body_len > MAX_RECORD {
            return Err(self.corrupt(&format!("a record claims {body_len} bytes")));
        }
        let start = self.buf.len();
        self.buf.resize(start + body_len as usize + 4, 0);
        let mut body = std::mem::take(&mut self.buf);
        let read = self.read_exact(&mut body[start..], "a record is cut short");
        self.buf = body;
        read?;
        let n = self.buf.len() - 4;
        let crc = u32::from_le_bytes(self.buf[n..].try_into().unwrap_or_default());
        if crc32c::crc32c(&self.buf[..n]) != crc {
            return Err(self.corrupt("a record's CRC does not match"));
        }
        let b = &self.buf[..n];
        if b[0] == TAG_END {
            return match Meta::decode(&b[5..]) {
                Some(m) => Ok(Some(Record::End(Box::new(m)))),
                None => Err(self.corrupt("its end record does not decode")),
            };
        }
        let ne = u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize;
        let nb = u32::from_le_bytes([b[5], b[6], b[7], b[8]]) as usize;
        let ev_bytes = &b[9..9 + ne * Event::SIZE];
        events.reserve(ne);
        for one in ev_bytes.chunks_exact(Event::SIZE) {
            match Event::from_bytes(one) {
                Some(e) => events.push(e),
                None => return Err(self.corrupt("an event does not decode")),
            }
        }
        let mut at = 9 + ne * Event::SIZE;
        let mut prev = 0u32;
        for _ in 0..nb {
            let end = u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default());
            let t = i64::from_le_bytes(b[at + 4..at + 12].try_into().unwrap_or_default());
            at += 12;
            if end <= prev || end as usize > ne {
                return Err(self.corrupt("a batch's bounds are out of order"));
            }
            prev = end;
            batches.push((end, t));
        }
        if ne > 0 && prev as usize != ne {
            return Err(self.corrupt("a chunk's batches do not cover its events"));
        }
        Ok(Some(Record::Chunk))
    }
}

/// Removes the oldest entries of `dir` (by modification time) until its entries hold at most
/// `max_bytes`; never `keep`. Only `*.rmev` files that start with [`MAGIC`] are touched; errors
/// are ignored (another run may be evicting too). Returns the entries removed.
pub fn evict(dir: &Path, max_bytes: u64, keep: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXTENSION))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            m.is_file()
                .then(|| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len(), p))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    let mut removed = Vec::new();
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if path == keep || !starts_with_magic(&path) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            removed.push(path);
        }
    }
    removed
}

fn starts_with_magic(path: &Path) -> bool {
    let mut m = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .is_ok()
        && &m == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::TempDir;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn meta() -> Meta {
        Meta {
            lines: (1000, 3),
            skipped: vec!["line 7: bad".into(), "line 9: worse".into()],
            feed: FeedStats {
                messages: 990,
                bbo: 12,
                ..FeedStats::default()
            },
            sync: SyncStats {
                diffs_applied: 40,
                ..SyncStats::default()
            },
            sync_by_instrument: vec![SyncStats {
                gaps: 2,
                ..SyncStats::default()
            }],
            batches: 0,
            events: 0,
        }
    }

    /// Writes two chunks (3 events in 2 batches, then 1 in 1) with `meta`; returns the path.
    fn write(dir: &Path, k: &Key) -> PathBuf {
        let mut w = CacheWriter::create(dir, k).unwrap();
        let ev: Vec<Event> = (0..4).map(|i| Event::timer(100 + i)).collect();
        w.chunk(&ev[..3], &[(1, 100), (3, 101)], 10).unwrap();
        w.chunk(&ev[3..], &[(1, 103)], 20).unwrap();
        w.finish(&meta()).unwrap()
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let d = TempDir::new("evcache-rt");
        let path = write(d.path(), &key(1));
        assert_eq!(path, key(1).path_in(d.path()));
        let mut r = CacheReader::open(d.path(), &key(1)).unwrap().unwrap();
        let (mut ev, mut b) = (Vec::new(), Vec::new());
        assert_eq!(r.next_chunk(&mut ev, &mut b).unwrap(), Some(10));
        assert_eq!(
            ev,
            (0..3).map(|i| Event::timer(100 + i)).collect::<Vec<_>>()
        );
        assert_eq!(b, [(1, 100), (3, 101)]);
        assert_eq!(r.next_chunk(&mut ev, &mut b).unwrap(), Some(20));
        assert_eq!((ev, b), (vec![Event::timer(103)], vec![(1, 103)]));
        assert_eq!(
            r.next_chunk(&mut Vec::new(), &mut Vec::new()).unwrap(),
            None
        );
        // Absent: no entry, no error; no temporary file left behind.
        assert!(CacheReader::open(d.path(), &key(2)).unwrap().is_none());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn every_damaged_entry_is_refused_with_a_reason() {
        let d = TempDir::new("evcache-bad");
        let path = write(d.path(), &key(1));
        let good = std::fs::read(&path).unwrap();
        // Damage shows at the latest when the entry is read to its end.
        let refuse = |bytes: &[u8], what: &str| {
            std::fs::write(&path, bytes).unwrap();
            let read_through = || -> Result<(), CacheError> {
                let Some(mut r) = CacheReader::open(d.path(), &key(1))? else {
                    panic!("{what}: absent");
                };
                let (mut ev, mut b) = (Vec::new(), Vec::new());
                while r.next_chunk(&mut ev, &mut b)?.is_some() {}
                Ok(())
            };
            match read_through() {
                Err(CacheError::Corrupt { why, .. }) => why,
                other => panic!("{what}: {other:?}"),
            }
        };
        // Every single flipped byte, and every cut.
        for at in 0..good.len() {
            let mut b = good.clone();
            b[at] ^= 0x5a;
            refuse(&b, &format!("byte {at} flipped"));
        }
        for len in 0..good.len() {
            refuse(&good[..len], &format!("cut at {len}"));
        }
        let mut long = good.clone();
        long.push(0);
        assert!(refuse(&long, "trailing").contains("follow"));
        // Another key's entry under this key's name.
        let other = write(d.path(), &key(3));
        std::fs::rename(other, &path).unwrap();
        assert!(
            matches!(CacheReader::open(d.path(), &key(1)), Err(CacheError::Corrupt { why, .. }) if why.contains("another key"))
        );
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_nothing() {
        let d = TempDir::new("evcache-drop");
        let mut w = CacheWriter::create(d.path(), &key(1)).unwrap();
        w.chunk(&[Event::timer(1)], &[(1, 1)], 1).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn eviction_removes_the_oldest_entries_and_nothing_else() {
        let d = TempDir::new("evcache-evict");
        let old = write(d.path(), &key(1));
        let mid = write(d.path(), &key(2));
        let new = write(d.path(), &key(3));
        let t0 = std::time::SystemTime::now() - std::time::Duration::from_secs(300);
        for (i, p) in [&old, &mid, &new].into_iter().enumerate() {
            let f = File::options().write(true).open(p).unwrap();
            f.set_modified(t0 + std::time::Duration::from_secs(60 * i as u64))
                .unwrap();
        }
        // Not ours: another extension, and a `.rmev` that is not a cache entry.
        let user = d.path().join("notes.txt");
        std::fs::write(&user, vec![b'x'; 4096]).unwrap();
        let fake = d.path().join("mine.rmev");
        std::fs::write(&fake, vec![b'y'; 4096]).unwrap();
        let size = std::fs::metadata(&old).unwrap().len();
        // Room for two entries (and the fake): the oldest goes.
        let removed = evict(d.path(), 2 * size + 4096, &new);
        assert_eq!(removed, vec![old.clone()]);
        // Room for none: all but `keep` and the files that are not entries.
        let removed = evict(d.path(), 0, &new);
        assert_eq!(removed, vec![mid.clone()]);
        assert!(new.exists() && user.exists() && fake.exists());
    }

    #[test]
    fn the_key_follows_the_files_bytes_and_the_decoding_config() {
        let d = TempDir::new("evcache-key");
        let f = d.path().join("rec.jsonl");
        std::fs::write(&f, b"one\n").unwrap();
        let cfg = engine::Config::from_toml(&test_support::config_text("default.toml")).unwrap();
        let k1 = Key::of(&cfg, &[vec![f.clone()]]).unwrap();
        assert_eq!(k1, Key::of(&cfg, &[vec![f.clone()]]).unwrap());
        std::fs::write(&f, b"two\n").unwrap();
        let k2 = Key::of(&cfg, &[vec![f.clone()]]).unwrap();
        assert_ne!(k1, k2);
        let mut wider = cfg.clone();
        wider.book_slots += 1;
        assert_ne!(k2, Key::of(&wider, &[vec![f.clone()]]).unwrap());
        assert!(Key::of(&cfg, &[vec![d.path().join("missing")]]).is_err());
    }
}
