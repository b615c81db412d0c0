//! The appending writer: a memcpy and a CRC per record into a preallocated, mmap'd segment; the
//! syscalls (preallocating the next segment, msync, unmapping a finished one) happen in
//! [`Writer::housekeeping`], which the owner calls off the hot path.

use crate::error::JournalError;
use crate::format::{
    encode_record, max_payload, record_len, seal_record, segment_file_name, SegmentHeader,
    FIRST_SEQ, MIN_SEGMENT_SIZE, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::reader::{Reader, RecoveryMode};
use crate::segment::{self, WritableSegment};
use crate::sys;
use std::fs::File;
use std::path::{Path, PathBuf};

/// How far ahead of the write position [`Writer::housekeeping`] dirties pages, so that appends
/// between two housekeeping calls take no page fault as long as they write less than this.
pub const PREFAULT_WINDOW: usize = 4 << 20;

/// Written bytes further than this behind the write position are taken out of the process's
/// resident set by [`Writer::housekeeping`] (they stay in the page cache and on their way to
/// disk), so a writer's memory is bounded by this and the windows ahead, not by the segment size.
pub const RESIDENT_BEHIND: usize = 4 << 20;

/// The least [`Writer::housekeeping`] releases at once (fewer, larger `madvise` calls).
const RELEASE_CHUNK: usize = 4 << 20;

/// Bytes ahead of the write position that [`Writer::housekeeping`] brings into the cache
/// (about 700 events: a large depth message with its batch end and intents).
pub const WARM_WINDOW: usize = 64 << 10;

/// What a write survives; see `FORMAT.md` ("Durability"). Every mode survives a crash of the
/// process (the mapping is `MAP_SHARED`: written bytes are in the kernel's page cache the
/// moment the memcpy ends). Only an msync/fsync that returned survives power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Never msync while running (only [`Writer::flush`] / [`Writer::close`] do). Power loss
    /// loses whatever the kernel had not written back yet (Linux: dirty pages older than
    /// `vm.dirty_expire_centisecs`, 30 s by default, are written back).
    None,
    /// [`Writer::housekeeping`] starts write-back (`msync(MS_ASYNC)` plus, on Linux,
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`) of the records written since the last one, once
    /// `every_records` records or `every_ns` of journal time (record timestamps) have passed;
    /// 0 disables that trigger. Does not wait: power loss can still lose the last interval.
    PeriodicAsync {
        /// Start write-back after this many records (0: never by count).
        every_records: u64,
        /// Start write-back after this much record time, in ns (0: never by time).
        every_ns: u64,
    },
    /// `msync(MS_SYNC)` on the append path after every `n` records: survives power loss up to
    /// the last synced record, but an append that syncs blocks for a disk flush
    /// (milliseconds). Not for the engine's hot path.
    SyncEvery(u64),
}

/// How to create or reopen a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Size of each segment file in bytes: a multiple of 4096, at least 4096. The largest
    /// record payload is `segment_size - 92` (rounded down to 8).
    pub segment_size: u64,
    /// When to msync.
    pub durability: Durability,
    /// Hash of the engine version and config, stored in every segment header.
    pub header_hash: [u8; 32],
    /// Creation time of the first segment, in ns (the library never reads a clock: later
    /// segments take the newest record timestamp when they are prepared).
    pub created_ns: u64,
}

/// A finished segment waiting for [`Writer::housekeeping`] to sync and unmap it.
#[derive(Debug)]
struct Retired {
    seg: WritableSegment,
    synced_to: usize,
    written: usize,
}

/// Appends records to a journal directory. Owns the directory's journal lock.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    _lock: File,
    opts: WriterOptions,
    max_payload: usize,
    cur: WritableSegment,
    /// Where the next record goes in `cur`.
    pos: usize,
    /// Usable length of `cur` (its length rounded down to 8).
    cap: usize,
    /// Start of the bytes of `cur` not yet msynced.
    synced_to: usize,
    /// End of the bytes of `cur` taken out of the resident set ([`RESIDENT_BEHIND`]).
    released_to: usize,
    next: Option<WritableSegment>,
    retired: Option<Retired>,
    next_seq: u64,
    newest_ts: i64,
    records_since_sync: u64,
    ts_at_last_sync: i64,
    /// The record being filled by [`Writer::extend`], if any (sealed before anything else).
    open: Option<OpenRecord>,
    /// Bytes used (headers and records) in the segments this writer finished.
    finished_bytes: u64,
}

/// A record whose payload is being written in place at `pos`; its header is written when it is
/// sealed.
#[derive(Debug, Clone, Copy)]
struct OpenRecord {
    kind: u16,
    /// Payload bytes written so far.
    len: usize,
    /// Payload bytes it may grow to (space for it is reserved in the segment).
    limit: usize,
    /// The newest timestamp of its chunks.
    timestamp_ns: i64,
}

impl Writer {
    /// Creates a new journal in `dir` (created if missing) with segment 0 preallocated.
    /// Refuses a directory that already holds segment files ([`JournalError::AlreadyExists`]).
    pub fn create(dir: impl AsRef<Path>, opts: WriterOptions) -> Result<Writer, JournalError> {
        let dir = dir.as_ref();
        check_options(&opts)?;
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create_dir", dir, e))?;
        let lock = segment::lock_dir(dir)?;
        if !segment::list(dir)?.is_empty() {
            return Err(JournalError::AlreadyExists { dir: dir.into() });
        }
        segment::remove_stale_tmp(dir)?;
        let header = SegmentHeader {
            segment: 0,
            created_ns: opts.created_ns,
            header_hash: opts.header_hash,
        };
        let mut cur = segment::create(dir, opts.segment_size, &header, 0)?;
        cur.touch(SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN + PREFAULT_WINDOW);
        Ok(Self::assemble(
            dir,
            lock,
            opts,
            cur,
            SEGMENT_HEADER_LEN,
            None,
            FIRST_SEQ,
            None,
        ))
    }

    /// Reopens the journal in `dir` to append after its last valid record. Recovers like the
    /// reader's [`RecoveryMode::TolerateTornTail`]: a torn tail is zeroed first; mid-file
    /// corruption is an error (the journal needs an operator, not more data). The journal's
    /// engine/config hash must equal `opts.header_hash` ([`JournalError::HeaderMismatch`]).
    /// Existing segments keep their size (the last one is grown back to `opts.segment_size` if
    /// it is shorter, e.g. trimmed by [`Writer::close_unsynced`]); new ones get
    /// `opts.segment_size`.
    pub fn open_append(dir: impl AsRef<Path>, opts: WriterOptions) -> Result<Writer, JournalError> {
        let dir = dir.as_ref();
        check_options(&opts)?;
        let lock = segment::lock_dir(dir)?;
        let mut reader = Reader::open(dir, RecoveryMode::TolerateTornTail)?;
        if reader.header().header_hash != opts.header_hash {
            return Err(JournalError::HeaderMismatch {
                segment: 0,
                what: "engine/config hash differs from the writer's",
            });
        }
        reader.truncate_torn_tail_locked()?;
        let end = reader.end()?;
        let segment_count = reader.segment_count();
        drop(reader);
        segment::remove_stale_tmp(dir)?;
        let index = end.segment as u64;
        let path = dir.join(segment_file_name(index));
        // A segment trimmed by `close_unsynced` gets its room back, so appends go on in it.
        segment::grow(&path, opts.segment_size, end.last_seq)?;
        let cur = segment::open_writable(&path, index)?;
        // A spare segment prepared by the previous writer is reused if it has the size this
        // writer promises for new segments (so the largest record fits); otherwise preparing
        // the next segment renames a new one over it.
        let next = if end.segment + 1 < segment_count {
            let path = dir.join(segment_file_name(index + 1));
            let spare = segment::open_writable(&path, index + 1)?;
            (spare.map.len() as u64 == opts.segment_size).then_some(spare)
        } else {
            None
        };
        Ok(Self::assemble(
            dir,
            lock,
            opts,
            cur,
            end.offset,
            next,
            end.last_seq + 1,
            end.last_timestamp_ns,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: &Path,
        lock: File,
        opts: WriterOptions,
        cur: WritableSegment,
        pos: usize,
        next: Option<WritableSegment>,
        next_seq: u64,
        last_ts: Option<i64>,
    ) -> Writer {
        let cap = cur.map.len() & !7;
        let newest_ts = last_ts.unwrap_or(opts.created_ns.min(i64::MAX as u64) as i64);
        Writer {
            dir: dir.into(),
            _lock: lock,
            max_payload: max_payload(opts.segment_size as usize),
            opts,
            cur,
            pos,
            cap,
            synced_to: pos,
            released_to: 0,
            next,
            retired: None,
            next_seq,
            newest_ts,
            records_since_sync: 0,
            finished_bytes: 0,
            ts_at_last_sync: newest_ts,
            open: None,
        }
    }

    /// Appends a record with flags 0. See [`Writer::append_with_flags`].
    #[inline]
    pub fn append(
        &mut self,
        kind: u16,
        timestamp_ns: i64,
        payload: &[u8],
    ) -> Result<u64, JournalError> {
        self.append_with_flags(kind, 0, timestamp_ns, payload)
    }

    /// Appends a record and returns its sequence number.
    ///
    /// The hot path is a memcpy and a CRC into the mapped segment: no syscall, no allocation
    /// (except with [`Durability::SyncEvery`]). When the record does not fit in the current
    /// segment the writer moves to the next one, which [`Writer::housekeeping`] normally has
    /// prepared; if it has not, the append prepares it inline (the slow path: file creation,
    /// `posix_fallocate`, fsync, mmap — milliseconds), and on failure (e.g.
    /// [`JournalError::NoSpace`]) returns the error with nothing written and every earlier
    /// record intact. Kind 0 is reserved.
    #[inline]
    pub fn append_with_flags(
        &mut self,
        kind: u16,
        flags: u16,
        timestamp_ns: i64,
        payload: &[u8],
    ) -> Result<u64, JournalError> {
        if kind == 0 {
            return Err(JournalError::ReservedKind);
        }
        self.seal()?;
        if payload.len() > self.max_payload {
            return Err(JournalError::RecordTooLarge {
                len: payload.len(),
                max: self.max_payload,
            });
        }
        let total = record_len(payload.len());
        if self.pos + total > self.cap {
            self.roll(timestamp_ns)?;
            debug_assert!(
                self.pos + total <= self.cap,
                "a fresh segment holds max_payload"
            );
        }
        let seq = self.next_seq;
        encode_record(
            &mut self.cur.map[self.pos..self.pos + total],
            kind,
            flags,
            seq,
            timestamp_ns,
            payload,
        );
        self.pos += total;
        self.next_seq = seq + 1;
        self.newest_ts = self.newest_ts.max(timestamp_ns);
        self.records_since_sync += 1;
        if let Durability::SyncEvery(n) = self.opts.durability {
            if self.records_since_sync >= n {
                self.sync_current()?;
            }
        }
        Ok(seq)
    }

    /// Appends `chunk` to the payload of an open record of `kind`, written in place: a memcpy,
    /// no CRC, no header yet. A record is opened (with room for `max_len` payload bytes, at most
    /// the segment's largest payload) when none is open, when the open one is of another kind,
    /// or when `chunk` would take it past its room; the open one is sealed first.
    ///
    /// The record is sealed — header and CRC written, sequence number taken — by
    /// [`Writer::seal`], by the next [`Writer::append`], and by `flush`, `close` and
    /// `housekeeping`. Until then its bytes are not a record: a crash leaves them as a torn tail.
    /// So a caller appending many small payloads (a venue message's book levels) pays one header
    /// and one CRC pass for the lot, and seals at its own commit point.
    #[inline]
    pub fn extend(
        &mut self,
        kind: u16,
        timestamp_ns: i64,
        chunk: &[u8],
        max_len: usize,
    ) -> Result<(), JournalError> {
        let dst = self.reserve(kind, timestamp_ns, chunk.len(), max_len)?;
        dst.copy_from_slice(chunk);
        Ok(())
    }

    /// [`Writer::extend`] with a chunk of `N` bytes that `fill` writes straight into the
    /// mapped segment (no intermediate copy). The bytes are zero when `fill` gets them.
    #[inline]
    pub fn extend_with<const N: usize>(
        &mut self,
        kind: u16,
        timestamp_ns: i64,
        max_len: usize,
        fill: impl FnOnce(&mut [u8; N]),
    ) -> Result<(), JournalError> {
        let dst = self.reserve(kind, timestamp_ns, N, max_len)?;
        if let Some(dst) = dst.first_chunk_mut::<N>() {
            fill(dst);
        }
        Ok(())
    }

    /// The next `n` payload bytes of the open record (opening one as [`Writer::extend`] says),
    /// counted as written.
    #[inline]
    fn reserve(
        &mut self,
        kind: u16,
        timestamp_ns: i64,
        n: usize,
        max_len: usize,
    ) -> Result<&mut [u8], JournalError> {
        let fits = matches!(&self.open, Some(o) if o.kind == kind && o.len + n <= o.limit);
        if !fits {
            self.open_record(kind, timestamp_ns, n, max_len)?;
        }
        let at = match &mut self.open {
            Some(o) => {
                let at = self.pos + RECORD_HEADER_LEN + o.len;
                o.len += n;
                if timestamp_ns > o.timestamp_ns {
                    o.timestamp_ns = timestamp_ns;
                }
                at
            }
            None => unreachable!("open_record opens a record or returns its error"),
        };
        Ok(&mut self.cur.map[at..at + n])
    }

    /// Seals the open record, if any, and returns its sequence number.
    #[inline]
    pub fn seal(&mut self) -> Result<Option<u64>, JournalError> {
        let Some(o) = self.open.take() else {
            return Ok(None);
        };
        let total = record_len(o.len);
        let seq = self.next_seq;
        seal_record(
            &mut self.cur.map[self.pos..self.pos + total],
            o.kind,
            0,
            seq,
            o.timestamp_ns,
            o.len,
        );
        self.pos += total;
        self.next_seq = seq + 1;
        self.newest_ts = self.newest_ts.max(o.timestamp_ns);
        self.records_since_sync += 1;
        if let Durability::SyncEvery(n) = self.opts.durability {
            if self.records_since_sync >= n {
                self.sync_current()?;
            }
        }
        Ok(Some(seq))
    }

    /// Seals any open record and opens one for at least `need` payload bytes.
    #[cold]
    #[inline(never)]
    fn open_record(
        &mut self,
        kind: u16,
        timestamp_ns: i64,
        need: usize,
        max_len: usize,
    ) -> Result<(), JournalError> {
        if kind == 0 {
            return Err(JournalError::ReservedKind);
        }
        self.seal()?;
        if need > self.max_payload {
            return Err(JournalError::RecordTooLarge {
                len: need,
                max: self.max_payload,
            });
        }
        let limit = max_len.clamp(need, self.max_payload);
        if self.pos + record_len(limit) > self.cap {
            self.roll(timestamp_ns)?;
        }
        self.open = Some(OpenRecord {
            kind,
            len: 0,
            limit,
            timestamp_ns,
        });
        Ok(())
    }

    /// The sequence number the next record will get (an open record takes it when sealed).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The segment being written (its index).
    pub fn segment(&self) -> u64 {
        self.cur.index
    }

    /// Bytes this writer has used: segment headers and records (padding included) of the
    /// segments it finished, and of the current one up to the write position (an open record
    /// counts once sealed). Preallocated space not yet written is not counted.
    pub fn used_bytes(&self) -> u64 {
        self.finished_bytes + self.pos as u64
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the next segment is already prepared.
    pub fn next_segment_ready(&self) -> bool {
        self.next.is_some()
    }

    /// Off-hot-path upkeep; call it regularly from the owner (e.g. when the engine's input ring
    /// is drained). It
    /// * unmaps a finished segment, first starting its write-back if the durability mode syncs;
    /// * in [`Durability::PeriodicAsync`], starts write-back of the current segment when due;
    /// * dirties the pages up to [`PREFAULT_WINDOW`] bytes ahead of the write position, so that
    ///   appends until the next call take no page fault;
    /// * reads the cache lines up to [`WARM_WINDOW`] bytes ahead into
    ///   the caller's cache, so that appends write into cached lines instead of waiting on
    ///   memory for each (in the paper pipeline this took a 264-level depth message's journaling
    ///   from about 20 ns to about 5 ns a level);
    /// * once the current segment is half full, prepares the next one (create, `posix_fallocate`,
    ///   header, fsync, rename, mmap), so that the append that rolls over only swaps pointers.
    ///
    /// An error (e.g. [`JournalError::NoSpace`] while preparing) leaves the writer usable:
    /// appends go on into the current segment, and the next call (or the append that needs the
    /// new segment) tries again.
    pub fn housekeeping(&mut self) -> Result<(), JournalError> {
        self.seal()?;
        if let Some(r) = self.retired.take() {
            if r.written > r.synced_to && !matches!(self.opts.durability, Durability::None) {
                self.flush_async(&r.seg, r.synced_to, r.written)?;
            }
        }
        self.cur.touch(self.pos, self.pos + PREFAULT_WINDOW);
        self.cur.warm(self.pos, self.pos + WARM_WINDOW);
        // Written data far enough behind the position leaves the resident set (it stays in the
        // page cache): memory does not grow with the journal.
        let behind = self.pos.saturating_sub(RESIDENT_BEHIND);
        if behind >= self.released_to + RELEASE_CHUNK {
            self.cur.release(self.released_to, behind);
            self.released_to = behind;
        }
        if let Durability::PeriodicAsync {
            every_records,
            every_ns,
        } = self.opts.durability
        {
            let by_count = every_records > 0 && self.records_since_sync >= every_records;
            let by_time = every_ns > 0
                && self.records_since_sync > 0
                && self.newest_ts.saturating_sub(self.ts_at_last_sync) >= every_ns as i64;
            if by_count || by_time {
                self.flush_async(&self.cur, self.synced_to, self.pos)?;
                self.synced_to = self.pos;
                self.records_since_sync = 0;
                self.ts_at_last_sync = self.newest_ts;
            }
        }
        // Last, so that a full disk does not hold up the syncs above.
        if self.next.is_none() && self.pos >= self.cap / 2 {
            let created = self.newest_ts.max(0) as u64;
            let mut next = self.prepare_next(created)?;
            next.touch(SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN + PREFAULT_WINDOW);
            self.next = Some(next);
        }
        Ok(())
    }

    /// msyncs (`MS_SYNC`) everything written and not yet synced: after it returns, every record
    /// appended so far survives power loss.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.seal()?;
        if let Some(r) = self.retired.take() {
            if r.written > r.synced_to {
                r.seg
                    .map
                    .flush_range(r.synced_to, r.written - r.synced_to)
                    .map_err(|source| self.sync_error(r.seg.index, source))?;
            }
        }
        self.sync_current()
    }

    /// Flushes ([`Writer::flush`]) and closes. Dropping a writer without closing loses nothing
    /// to a process crash, but does not sync for power loss.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.flush()
    }

    /// Seals the open record and closes without syncing: every record is in the page cache
    /// (a crash of this process loses none), and the kernel writes them back in its own time;
    /// power loss before then can lose them. For journals that can be made again (a backtest's).
    ///
    /// It also gives back the space preallocated past the data: the last segment is truncated to
    /// the end of its records and a spare segment to its header (`FORMAT.md`, "Trimmed
    /// segments"), so a finished journal takes the disk space of its records, not a whole
    /// segment's. A reader that has this journal mapped while it closes could fault on the cut
    /// pages, so this is only for journals that nobody follows as they are written.
    pub fn close_unsynced(mut self) -> Result<(), JournalError> {
        self.seal()?;
        let Writer {
            dir,
            _lock: lock,
            cur,
            pos,
            next,
            retired,
            ..
        } = self;
        // Unmapped first: dirty pages of a shared mapping stay in the page cache, and no mapping
        // outlives the cut.
        drop(retired);
        trim_segment(&dir, cur, pos)?;
        if let Some(spare) = next {
            trim_segment(&dir, spare, SEGMENT_HEADER_LEN)?;
        }
        drop(lock);
        Ok(())
    }

    /// Moves to the next segment (the slow path of an append).
    #[cold]
    #[inline(never)]
    fn roll(&mut self, timestamp_ns: i64) -> Result<(), JournalError> {
        let next = match self.next.take() {
            Some(next) => next,
            None => self.prepare_next(timestamp_ns.max(0) as u64)?,
        };
        if matches!(self.opts.durability, Durability::SyncEvery(_)) {
            self.sync_current()?;
        }
        let old = std::mem::replace(&mut self.cur, next);
        let retired = Retired {
            seg: old,
            synced_to: self.synced_to,
            written: self.pos,
        };
        self.finished_bytes += self.pos as u64;
        // If housekeeping has not collected the previous one, its munmap happens here.
        drop(self.retired.replace(retired));
        self.pos = SEGMENT_HEADER_LEN;
        self.synced_to = SEGMENT_HEADER_LEN;
        self.released_to = 0;
        self.cap = self.cur.map.len() & !7;
        Ok(())
    }

    fn prepare_next(&self, created_ns: u64) -> Result<WritableSegment, JournalError> {
        let header = SegmentHeader {
            segment: self.cur.index + 1,
            created_ns,
            header_hash: self.opts.header_hash,
        };
        segment::create(
            &self.dir,
            self.opts.segment_size,
            &header,
            self.next_seq - 1,
        )
    }

    fn sync_current(&mut self) -> Result<(), JournalError> {
        if self.pos > self.synced_to {
            self.cur
                .map
                .flush_range(self.synced_to, self.pos - self.synced_to)
                .map_err(|source| self.sync_error(self.cur.index, source))?;
            self.synced_to = self.pos;
        }
        self.records_since_sync = 0;
        self.ts_at_last_sync = self.newest_ts;
        Ok(())
    }

    fn flush_async(
        &self,
        seg: &WritableSegment,
        from: usize,
        to: usize,
    ) -> Result<(), JournalError> {
        seg.map
            .flush_async_range(from, to - from)
            .and_then(|()| sys::start_writeback(&seg.file, from as u64, (to - from) as u64))
            .map_err(|source| self.sync_error(seg.index, source))
    }

    #[cold]
    fn sync_error(&self, index: u64, source: std::io::Error) -> JournalError {
        JournalError::SyncFailed {
            path: self.dir.join(segment_file_name(index)),
            last_seq: self.next_seq - 1,
            source,
        }
    }
}

fn check_options(opts: &WriterOptions) -> Result<(), JournalError> {
    if opts.segment_size < MIN_SEGMENT_SIZE || opts.segment_size % 4096 != 0 {
        return Err(JournalError::InvalidOptions(
            "segment_size must be a multiple of 4096 and at least 4096",
        ));
    }
    if usize::try_from(opts.segment_size).is_err() || opts.segment_size > i64::MAX as u64 {
        return Err(JournalError::InvalidOptions(
            "segment_size does not fit in memory",
        ));
    }
    if opts.durability == Durability::SyncEvery(0) {
        return Err(JournalError::InvalidOptions(
            "SyncEvery(0): use SyncEvery(1) or more",
        ));
    }
    Ok(())
}

/// Unmaps `seg` and truncates its file to `len` bytes (the end of its data).
fn trim_segment(dir: &Path, seg: WritableSegment, len: usize) -> Result<(), JournalError> {
    let WritableSegment {
        index, file, map, ..
    } = seg;
    drop(map);
    file.set_len(len as u64)
        .map_err(|e| JournalError::io("truncate", dir.join(segment_file_name(index)), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::max_payload;
    use crate::reader::{Reader, RecoveryMode};
    use crate::test_util::{opts, TempDir};

    fn read_all(dir: &Path) -> Vec<(u16, u64, i64, Vec<u8>)> {
        let r = Reader::open(dir, RecoveryMode::Strict).unwrap();
        r.records()
            .map(|r| {
                let r = r.unwrap();
                (r.kind, r.seq, r.timestamp_ns, r.payload.to_vec())
            })
            .collect()
    }

    #[test]
    fn appends_round_trip_across_segments_with_and_without_housekeeping() {
        for housekeep in [false, true] {
            let d = TempDir::new("roll");
            let mut w = Writer::create(d.path(), opts(4096)).unwrap();
            let mut expected = Vec::new();
            for i in 0..500u64 {
                let payload = vec![i as u8; (i % 90) as usize];
                let seq = w
                    .append(1 + (i % 3) as u16, i as i64 * 10, &payload)
                    .unwrap();
                assert_eq!(seq, i + 1);
                expected.push((1 + (i % 3) as u16, i + 1, i as i64 * 10, payload));
                if housekeep {
                    w.housekeeping().unwrap();
                }
            }
            w.close().unwrap();
            assert_eq!(read_all(d.path()), expected);
            assert!(segment::list(d.path()).unwrap().len() > 5);
        }
    }

    /// A model of `extend`/`append` interleavings: what the reader must return.
    #[test]
    fn extended_records_round_trip_across_segments() {
        let d = TempDir::new("extend");
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        let mut expected: Vec<(u16, u64, i64, Vec<u8>)> = Vec::new();
        let mut open: Option<(u16, i64, Vec<u8>)> = None;
        let mut next_seq = 1u64;
        type Rec = (u16, u64, i64, Vec<u8>);
        fn seal(open: &mut Option<(u16, i64, Vec<u8>)>, expected: &mut Vec<Rec>, seq: &mut u64) {
            if let Some((k, t, p)) = open.take() {
                expected.push((k, *seq, t, p));
                *seq += 1;
            }
        }
        // Chunks of 8..64 bytes into records of at most 200 bytes, kinds 6 and 7, with plain
        // appends and explicit seals in between, in 4 KiB segments (many rolls).
        for i in 0..3_000u64 {
            let op = i % 11;
            if op == 10 {
                seal(&mut open, &mut expected, &mut next_seq);
                let seq = w.append(3, i as i64, &[i as u8; 12]).unwrap();
                assert_eq!(seq, next_seq);
                expected.push((3, next_seq, i as i64, vec![i as u8; 12]));
                next_seq += 1;
            } else if op == 7 && i % 2 == 0 {
                let sealed = w.seal().unwrap();
                let had = open.is_some();
                seal(&mut open, &mut expected, &mut next_seq);
                assert_eq!(sealed.is_some(), had);
            } else {
                let kind = if i % 97 < 80 { 6 } else { 7 };
                let chunk = vec![(i * 7) as u8; 8 + (i % 57) as usize];
                let room = match &open {
                    Some((k, _, p)) => *k == kind && p.len() + chunk.len() <= 200,
                    None => false,
                };
                if !room {
                    seal(&mut open, &mut expected, &mut next_seq);
                    open = Some((kind, i as i64, Vec::new()));
                }
                let o = open.as_mut().unwrap();
                o.1 = o.1.max(i as i64);
                o.2.extend_from_slice(&chunk);
                w.extend(kind, i as i64, &chunk, 200).unwrap();
            }
        }
        seal(&mut open, &mut expected, &mut next_seq);
        w.close().unwrap();
        let got = read_all(d.path());
        assert_eq!(got.len(), expected.len());
        assert_eq!(got, expected);
        assert!(segment::list(d.path()).unwrap().len() > 5);
    }

    #[test]
    fn an_unsealed_record_is_a_torn_tail_and_reopening_continues() {
        let d = TempDir::new("unsealed");
        let mut w = Writer::create(d.path(), opts(8192)).unwrap();
        w.append(1, 1, b"kept").unwrap();
        w.extend(6, 2, &[5u8; 64], 640).unwrap();
        w.extend(6, 3, &[6u8; 64], 640).unwrap();
        assert_eq!(w.seal().unwrap(), Some(2));
        w.extend(6, 4, &[7u8; 64], 640).unwrap();
        // A crash now: the third record's payload is written, its header is not.
        drop(w);
        assert!(matches!(
            Reader::open(d.path(), RecoveryMode::Strict)
                .unwrap()
                .records()
                .find_map(|r| r.err()),
            Some(JournalError::TornTail { .. })
        ));
        let r = Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap();
        let got: Vec<_> = r.records().map(|r| r.unwrap().payload.to_vec()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], [[5u8; 64], [6u8; 64]].concat());
        let mut w = Writer::open_append(d.path(), opts(8192)).unwrap();
        w.extend(6, 5, &[8u8; 64], 640).unwrap();
        w.close().unwrap();
        let got = read_all(d.path());
        assert_eq!(got.len(), 3);
        assert_eq!((got[2].0, got[2].1, got[2].2), (6, 3, 5));
        assert_eq!(got[2].3, vec![8u8; 64]);
    }

    #[test]
    fn extend_refuses_what_cannot_fit_and_kind_zero() {
        let d = TempDir::new("extend-bad");
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        assert!(matches!(
            w.extend(0, 0, b"x", 64),
            Err(JournalError::ReservedKind)
        ));
        assert!(matches!(
            w.extend(6, 0, &[1u8; 8192], 64),
            Err(JournalError::RecordTooLarge { .. })
        ));
        // A chunk larger than max_len still fits in a record of its own.
        w.extend(6, 0, &[2u8; 300], 64).unwrap();
        w.extend(6, 0, &[3u8; 8], 64).unwrap();
        w.close().unwrap();
        let got = read_all(d.path());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].3.len(), 300);
        assert_eq!(got[1].3, vec![3u8; 8]);
    }

    #[test]
    fn create_refuses_an_existing_journal() {
        let d = TempDir::new("exists");
        Writer::create(d.path(), opts(4096))
            .unwrap()
            .close()
            .unwrap();
        assert!(matches!(
            Writer::create(d.path(), opts(4096)),
            Err(JournalError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn a_second_writer_is_locked_out() {
        let d = TempDir::new("lock");
        let _w = Writer::create(d.path(), opts(4096)).unwrap();
        assert!(matches!(
            Writer::open_append(d.path(), opts(4096)),
            Err(JournalError::Locked { .. })
        ));
    }

    #[test]
    fn rejects_bad_input() {
        let d = TempDir::new("bad");
        for size in [0, 4095, 4097, 2048] {
            assert!(matches!(
                Writer::create(d.path(), opts(size)),
                Err(JournalError::InvalidOptions(_))
            ));
        }
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        assert!(matches!(
            w.append(0, 0, b"x"),
            Err(JournalError::ReservedKind)
        ));
        let max = max_payload(4096);
        assert!(matches!(
            w.append(1, 0, &vec![0; max + 1]),
            Err(JournalError::RecordTooLarge { .. })
        ));
        // The largest record fits, twice (the second one in a new segment).
        assert_eq!(w.append(1, 0, &vec![7; max]).unwrap(), 1);
        assert_eq!(w.append(1, 0, &vec![8; max]).unwrap(), 2);
        w.close().unwrap();
        assert_eq!(read_all(d.path()).len(), 2);
    }

    #[test]
    fn open_append_continues_the_sequence() {
        let d = TempDir::new("append");
        let mut w = Writer::create(d.path(), opts(8192)).unwrap();
        for i in 0..100 {
            w.append(2, i, b"first run").unwrap();
        }
        w.housekeeping().unwrap();
        drop(w); // no close: a process crash keeps everything in the page cache
        let mut w = Writer::open_append(d.path(), opts(8192)).unwrap();
        assert_eq!(w.next_seq(), 101);
        for i in 0..100 {
            w.append(3, 1000 + i, b"second run").unwrap();
        }
        w.close().unwrap();
        let all = read_all(d.path());
        assert_eq!(all.len(), 200);
        assert!(all.iter().enumerate().all(|(i, r)| r.1 == i as u64 + 1));
        assert_eq!(all[150].0, 3);

        let mut other = opts(8192);
        other.header_hash = [1; 32];
        assert!(matches!(
            Writer::open_append(d.path(), other),
            Err(JournalError::HeaderMismatch { .. })
        ));
    }

    #[test]
    fn open_append_on_an_empty_journal_and_a_missing_one() {
        let d = TempDir::new("empty");
        assert!(matches!(
            Writer::open_append(d.path(), opts(4096)),
            Err(JournalError::Io { .. })
        ));
        std::fs::create_dir_all(d.path()).unwrap();
        assert!(matches!(
            Writer::open_append(d.path(), opts(4096)),
            Err(JournalError::NoJournal { .. })
        ));
        Writer::create(d.path(), opts(4096))
            .unwrap()
            .close()
            .unwrap();
        let mut w = Writer::open_append(d.path(), opts(4096)).unwrap();
        assert_eq!(w.append(1, 5, b"a").unwrap(), 1);
        w.close().unwrap();
        assert_eq!(read_all(d.path()).len(), 1);
    }

    #[test]
    fn durability_modes_write_the_same_journal() {
        for durability in [
            Durability::SyncEvery(1),
            Durability::SyncEvery(7),
            Durability::PeriodicAsync {
                every_records: 10,
                every_ns: 0,
            },
            Durability::PeriodicAsync {
                every_records: 0,
                every_ns: 50,
            },
        ] {
            let d = TempDir::new("durability");
            let mut o = opts(4096);
            o.durability = durability;
            let mut w = Writer::create(d.path(), o).unwrap();
            for i in 0..200 {
                w.append(1, i, &[i as u8; 40]).unwrap();
                if i % 5 == 0 {
                    w.housekeeping().unwrap();
                }
            }
            w.close().unwrap();
            assert_eq!(read_all(d.path()).len(), 200, "{durability:?}");
        }
    }

    #[test]
    fn close_unsynced_seals_the_open_record_and_loses_nothing() {
        let d = TempDir::new("unsynced");
        let mut w = Writer::create(d.path(), opts(8192)).unwrap();
        for i in 0..300u64 {
            w.append(1, i as i64, &i.to_le_bytes()).unwrap();
        }
        w.extend(6, 300, &[7; 16], 64).unwrap();
        w.close_unsynced().unwrap();
        let recs = read_all(d.path());
        assert_eq!(recs.len(), 301);
        assert_eq!(recs[299].3, 299u64.to_le_bytes());
        assert_eq!((recs[300].0, recs[300].3.as_slice()), (6, &[7u8; 16][..]));
    }

    fn file_lens(dir: &Path) -> Vec<u64> {
        segment::list(dir)
            .unwrap()
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .collect()
    }

    #[test]
    fn close_unsynced_gives_back_the_preallocated_space_and_a_reopen_appends_on() {
        let d = TempDir::new("trim");
        let mut w = Writer::create(d.path(), opts(8192)).unwrap();
        // Past half of segment 1, so that housekeeping prepares a spare segment 2.
        let mut n = 0u64;
        while !(w.cur.index == 1 && w.next_segment_ready()) {
            w.append(1, n as i64, &[n as u8; 40]).unwrap();
            w.housekeeping().unwrap();
            n += 1;
        }
        let end = w.pos as u64;
        w.close_unsynced().unwrap();
        // Segment 0 was full-size (a retired one keeps its size), 1 ends at its data, the spare
        // is its header.
        assert_eq!(
            file_lens(d.path()),
            vec![8192, end, SEGMENT_HEADER_LEN as u64]
        );
        let recs = read_all(d.path());
        assert_eq!(recs.len() as u64, n);
        assert!(recs
            .iter()
            .enumerate()
            .all(|(i, r)| r.3 == [i as u8; 40] && r.1 == FIRST_SEQ + i as u64));
        // A writer reopening it grows segment 1 back and appends on in it.
        let mut w = Writer::open_append(d.path(), opts(8192)).unwrap();
        assert_eq!((w.cur.index, w.pos as u64), (1, end));
        w.append(2, n as i64, b"after").unwrap();
        w.close().unwrap();
        assert_eq!(file_lens(d.path())[1], 8192);
        let recs = read_all(d.path());
        assert_eq!(recs.len() as u64, n + 1);
        assert_eq!(recs.last().unwrap().3, b"after");
        // Strict reading also accepts a trimmed journal that ends at the end of a file exactly.
        let w = Writer::open_append(d.path(), opts(8192)).unwrap();
        w.close_unsynced().unwrap();
        assert_eq!(read_all(d.path()).len() as u64, n + 1);
    }

    #[test]
    fn housekeeping_prepares_the_next_segment_at_half() {
        let d = TempDir::new("half");
        let mut w = Writer::create(d.path(), opts(8192)).unwrap();
        w.housekeeping().unwrap();
        assert!(!w.next_segment_ready());
        while w.pos < w.cap / 2 {
            w.append(1, 0, &[1; 64]).unwrap();
        }
        w.housekeeping().unwrap();
        assert!(w.next_segment_ready());
        assert_eq!(segment::list(d.path()).unwrap().len(), 2);
        // A spare segment is fine for readers and is reused by the next writer.
        drop(w);
        let w = Writer::open_append(d.path(), opts(8192)).unwrap();
        assert!(w.next_segment_ready());
    }
}

#[cfg(test)]
mod touch_tests {
    use super::*;
    use crate::test_util::{opts, TempDir};

    /// Dirtying pages ahead (zeros written with `pwrite`, then a byte a page through the
    /// mapping) starts exactly at the write position, mid-page included: the bytes written
    /// before it stay, the bytes after it are zero, and the records read back.
    #[test]
    fn touching_ahead_keeps_what_is_written_and_zeroes_only_what_is_not() {
        let d = TempDir::new("touch");
        let mut w = Writer::create(d.path(), opts(1 << 16)).unwrap();
        // Several records, ending mid-page.
        for i in 0..40u8 {
            w.append(1, i64::from(i), &[i | 0x80; 77]).unwrap();
        }
        let pos = w.pos;
        assert_ne!(pos % 4096, 0);
        w.cur.touched = 0; // as if nothing had been touched: the whole rest is zero-filled
        w.housekeeping().unwrap();
        let path = d.path().join(segment_file_name(0));
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[pos..].iter().all(|&b| b == 0));
        assert_eq!(&bytes[..pos], &w.cur.map[..pos]);
        for i in 40..60u8 {
            w.append(1, i64::from(i), &[i | 0x80; 77]).unwrap();
        }
        w.close_unsynced().unwrap();
        let r = crate::reader::Reader::open(d.path(), crate::reader::RecoveryMode::Strict).unwrap();
        let got: Vec<u8> = r.records().map(|r| r.unwrap().payload[0]).collect();
        assert_eq!(got, (0..60u8).map(|i| i | 0x80).collect::<Vec<_>>());
    }
}
