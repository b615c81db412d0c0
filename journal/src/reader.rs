//! The verifying reader: maps every segment of a journal read-only and iterates its records in
//! sequence order, checking every CRC, every sequence number and the torn-tail rule of
//! `FORMAT.md`.

use crate::error::{CorruptionReason, JournalError};
use crate::format::{
    decode_slot, is_zero, record_len, Record, SegmentHeader, Slot, FIRST_SEQ, SEGMENT_HEADER_LEN,
};
use crate::segment;
use memmap2::Mmap;
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// What the reader does when it finds damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Any damage, a torn tail included, ends iteration with an error
    /// ([`JournalError::TornTail`] or [`JournalError::Corruption`]).
    Strict,
    /// A torn tail (damage that nothing valid follows: see `FORMAT.md`) ends iteration
    /// cleanly and is reported by [`Reader::torn_tail`]; anything else is still
    /// [`JournalError::Corruption`]. What a writer's recovery does after a crash.
    TolerateTornTail,
}

/// Where a torn tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// The segment holding the partial record.
    pub segment: u64,
    /// Byte offset of the partial record in that segment file.
    pub offset: u64,
    /// The last valid sequence number before it (0 if none).
    pub last_good_seq: u64,
}

/// Where the data of a journal ends, as found by a complete pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct End {
    /// Position of the segment in `Reader::segments` (equal to its index).
    pub segment: usize,
    /// Offset of the first byte after the last valid record (where a torn tail starts).
    pub offset: usize,
    pub last_seq: u64,
    pub last_timestamp_ns: Option<i64>,
    pub torn: Option<TornTail>,
}

#[derive(Debug)]
struct MappedSegment {
    path: PathBuf,
    header: SegmentHeader,
    map: Mmap,
}

/// A journal opened for reading. See [`Reader::records`].
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    mode: RecoveryMode,
    segments: Vec<MappedSegment>,
    end: Cell<Option<End>>,
}

impl Reader {
    /// Opens the journal in `dir`: lists and maps its segments and checks every segment header
    /// (magic, version, CRC, index, and the engine/config hash against segment 0's). Records are
    /// checked as they are iterated.
    pub fn open(dir: impl AsRef<Path>, mode: RecoveryMode) -> Result<Reader, JournalError> {
        let dir = dir.as_ref();
        let files = segment::list(dir)?;
        if files.is_empty() {
            return Err(JournalError::NoJournal { dir: dir.into() });
        }
        let mut segments: Vec<MappedSegment> = Vec::with_capacity(files.len());
        for (expected, (index, path)) in files.into_iter().enumerate() {
            if index != expected as u64 {
                return Err(JournalError::MissingSegment {
                    segment: expected as u64,
                });
            }
            let map = segment::map_read(&path)?;
            let header = SegmentHeader::decode(index, &map)?;
            if let Some(first) = segments.first() {
                if first.header.header_hash != header.header_hash {
                    return Err(JournalError::HeaderMismatch {
                        segment: index,
                        what: "engine/config hash differs from segment 0's",
                    });
                }
            }
            segments.push(MappedSegment { path, header, map });
        }
        Ok(Reader {
            dir: dir.into(),
            mode,
            segments,
            end: Cell::new(None),
        })
    }

    /// Segment 0's header: the engine/config hash and the journal's creation time.
    pub fn header(&self) -> &SegmentHeader {
        &self.segments[0].header
    }

    /// The number of segment files (preallocated, still empty ones included).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The recovery mode this reader was opened with.
    pub fn mode(&self) -> RecoveryMode {
        self.mode
    }

    /// Iterates the records from the first, verifying each. After the first error the iterator
    /// ends.
    pub fn records(&self) -> Records<'_> {
        Records {
            reader: self,
            seg: 0,
            off: SEGMENT_HEADER_LEN,
            expected: FIRST_SEQ,
            last_ts: None,
            data_end: (0, SEGMENT_HEADER_LEN),
            done: false,
        }
    }

    /// The torn tail, if the journal ends in one. Needs a complete pass: the first call makes
    /// one unless an iterator already reached the end (errors of that pass are returned; a
    /// strict reader's own `TornTail` error is not one of them).
    pub fn torn_tail(&self) -> Result<Option<TornTail>, JournalError> {
        Ok(self.end()?.torn)
    }

    /// Zeroes a torn tail on disk (the partial record's bytes), so that a writer can continue
    /// after the last valid record, and returns what it removed. Takes the journal's directory
    /// lock: fails with [`JournalError::Locked`] while a writer is live.
    pub fn truncate_torn_tail(&mut self) -> Result<Option<TornTail>, JournalError> {
        let _lock = segment::lock_dir(&self.dir)?;
        self.truncate_torn_tail_locked()
    }

    /// [`Reader::truncate_torn_tail`] for a caller that already holds the directory lock.
    pub(crate) fn truncate_torn_tail_locked(&mut self) -> Result<Option<TornTail>, JournalError> {
        let end = self.end()?;
        let Some(torn) = end.torn else {
            return Ok(None);
        };
        let seg = &self.segments[end.segment];
        let data: &[u8] = &seg.map;
        // Zero from the partial record to the last non-zero byte of the segment.
        let from = torn.offset as usize;
        let to = from
            + data[from..]
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |i| i + 1);
        segment::zero_range(&seg.path, from as u64, to as u64)?;
        self.end.set(Some(End { torn: None, ..end }));
        Ok(Some(torn))
    }

    /// The end of the data, making a complete pass if none was made yet.
    pub(crate) fn end(&self) -> Result<End, JournalError> {
        if let Some(end) = self.end.get() {
            return Ok(end);
        }
        for r in self.records() {
            match r {
                Ok(_) | Err(JournalError::TornTail { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self
            .end
            .get()
            .expect("a pass without error records the end"))
    }

    /// The torn-tail rule of `FORMAT.md`: damage at `off` in segment `seg` is a torn tail iff
    /// nothing valid follows it: every later segment is empty (only zeroes after its header),
    /// and no valid record carrying a later sequence number starts at any 8-byte-aligned
    /// offset after `off` in the segment.
    fn is_torn_tail(&self, seg: usize, off: usize, last_good: u64) -> bool {
        if self.segments[seg + 1..]
            .iter()
            .any(|s| !is_zero(&s.map[SEGMENT_HEADER_LEN..]))
        {
            return false;
        }
        let data: &[u8] = &self.segments[seg].map;
        // A record appended after the damaged one carries a sequence number just above the last
        // good one (at most one per minimal record's worth of space); checking that before the
        // CRC keeps the work on arbitrary bytes linear.
        let max_seq = last_good + 1 + (data.len().saturating_sub(off) / record_len(0)) as u64;
        let mut o = off + 8;
        while o + 16 <= data.len() {
            let seq = u64::from_le_bytes(data[o + 8..o + 16].try_into().expect("8 bytes"));
            if seq > last_good && seq <= max_seq && matches!(decode_slot(data, o), Slot::Record(..))
            {
                return false;
            }
            o += 8;
        }
        true
    }
}

impl<'r> IntoIterator for &'r Reader {
    type Item = Result<Record<'r>, JournalError>;
    type IntoIter = Records<'r>;

    fn into_iter(self) -> Records<'r> {
        self.records()
    }
}

/// Iterator over a journal's records; see [`Reader::records`].
#[derive(Debug)]
pub struct Records<'r> {
    reader: &'r Reader,
    seg: usize,
    off: usize,
    expected: u64,
    last_ts: Option<i64>,
    /// Segment and offset just after the last valid record: where a writer continues.
    data_end: (usize, usize),
    done: bool,
}

impl<'r> Records<'r> {
    fn finish(&mut self, torn: Option<TornTail>) {
        self.done = true;
        let (segment, offset) = match torn {
            Some(_) => (self.seg, self.off),
            None => self.data_end,
        };
        self.reader.end.set(Some(End {
            segment,
            offset,
            last_seq: self.expected - 1,
            last_timestamp_ns: self.last_ts,
            torn,
        }));
    }

    #[cold]
    fn damage(&mut self, reason: CorruptionReason) -> Option<Result<Record<'r>, JournalError>> {
        self.done = true;
        let segment = self.seg as u64;
        let last_good_seq = self.expected - 1;
        if self.reader.is_torn_tail(self.seg, self.off, last_good_seq) {
            let torn = TornTail {
                segment,
                offset: self.off as u64,
                last_good_seq,
            };
            self.finish(Some(torn));
            return match self.reader.mode {
                RecoveryMode::TolerateTornTail => None,
                RecoveryMode::Strict => Some(Err(JournalError::TornTail {
                    segment,
                    offset: torn.offset,
                    last_good_seq,
                })),
            };
        }
        Some(Err(JournalError::Corruption {
            segment,
            offset: self.off as u64,
            sequence: self.expected,
            reason,
        }))
    }
}

impl<'r> Iterator for Records<'r> {
    type Item = Result<Record<'r>, JournalError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let segments = &self.reader.segments;
        loop {
            let data: &'r [u8] = &segments[self.seg].map;
            match decode_slot(data, self.off) {
                Slot::Record(record, len) => {
                    if record.seq != self.expected {
                        self.done = true;
                        if self.off == SEGMENT_HEADER_LEN && self.seg > 0 {
                            // The first record of a segment: what is missing is the end of the
                            // segment before, where the records stopped.
                            let (seg, off) = if self.data_end.0 + 1 == self.seg {
                                self.data_end
                            } else {
                                (self.seg - 1, SEGMENT_HEADER_LEN)
                            };
                            return Some(Err(JournalError::Corruption {
                                segment: seg as u64,
                                offset: off as u64,
                                sequence: self.expected,
                                reason: CorruptionReason::EndsEarly {
                                    expected: self.expected,
                                    next_segment_starts_at: record.seq,
                                },
                            }));
                        }
                        return Some(Err(JournalError::Corruption {
                            segment: self.seg as u64,
                            offset: self.off as u64,
                            sequence: self.expected,
                            reason: CorruptionReason::SequenceGap {
                                expected: self.expected,
                                found: record.seq,
                            },
                        }));
                    }
                    self.off += len;
                    self.expected += 1;
                    self.last_ts = Some(record.timestamp_ns);
                    self.data_end = (self.seg, self.off);
                    return Some(Ok(record));
                }
                Slot::End => {
                    if self.off < data.len() && !is_zero(&data[self.off..]) {
                        return self.damage(CorruptionReason::DataAfterEnd);
                    }
                    if self.seg + 1 < segments.len() {
                        self.seg += 1;
                        self.off = SEGMENT_HEADER_LEN;
                        continue;
                    }
                    self.finish(None);
                    return None;
                }
                Slot::Damaged(reason) => return self.damage(reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_record, segment_file_name};
    use crate::test_util::{opts, TempDir};
    use crate::Writer;

    /// A journal of `n` 40-byte-payload records (72 bytes on disk each) in 4 KiB segments.
    fn journal(name: &str, n: u64) -> TempDir {
        let d = TempDir::new(name);
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        for i in 0..n {
            w.append(1, i as i64, &[i as u8; 40]).unwrap();
        }
        w.close().unwrap();
        d
    }

    fn seg_path(d: &TempDir, i: u64) -> PathBuf {
        d.path().join(segment_file_name(i))
    }

    fn patch(d: &TempDir, seg: u64, off: usize, bytes: &[u8]) {
        let p = seg_path(d, seg);
        let mut v = std::fs::read(&p).unwrap();
        v[off..off + bytes.len()].copy_from_slice(bytes);
        std::fs::write(&p, v).unwrap();
    }

    fn count(r: &Reader) -> Result<u64, JournalError> {
        let mut n = 0;
        for rec in r.records() {
            rec?;
            n += 1;
        }
        Ok(n)
    }

    #[test]
    fn clean_journal_has_no_torn_tail() {
        let d = journal("clean", 10);
        let r = Reader::open(d.path(), RecoveryMode::Strict).unwrap();
        assert_eq!(r.torn_tail().unwrap(), None);
        assert_eq!(count(&r).unwrap(), 10);
        assert_eq!(r.header().header_hash, [0xab; 32]);
    }

    #[test]
    fn half_written_last_record_is_a_torn_tail() {
        let d = journal("torn", 10);
        let off = SEGMENT_HEADER_LEN + 10 * 72;
        // The first half of an 11th record: header and part of the payload, no CRC.
        let mut rec = [0u8; 72];
        encode_record(&mut rec, 1, 0, 11, 0, &[9; 40]);
        patch(&d, 0, off, &rec[..30]);

        let r = Reader::open(d.path(), RecoveryMode::Strict).unwrap();
        assert!(matches!(
            count(&r),
            Err(JournalError::TornTail {
                segment: 0,
                last_good_seq: 10,
                ..
            })
        ));
        let mut r = Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(count(&r).unwrap(), 10);
        let torn = TornTail {
            segment: 0,
            offset: off as u64,
            last_good_seq: 10,
        };
        assert_eq!(r.torn_tail().unwrap(), Some(torn));
        assert_eq!(r.truncate_torn_tail().unwrap(), Some(torn));
        assert_eq!(r.torn_tail().unwrap(), None);
        let r = Reader::open(d.path(), RecoveryMode::Strict).unwrap();
        assert_eq!(count(&r).unwrap(), 10);
    }

    #[test]
    fn damage_followed_by_a_valid_record_is_corruption() {
        let d = journal("mid", 10);
        let off = SEGMENT_HEADER_LEN + 4 * 72;
        patch(&d, 0, off + 30, &[0xff]);
        for mode in [RecoveryMode::Strict, RecoveryMode::TolerateTornTail] {
            let r = Reader::open(d.path(), mode).unwrap();
            match count(&r) {
                Err(JournalError::Corruption {
                    segment: 0,
                    offset,
                    sequence: 5,
                    reason: CorruptionReason::BadCrc { .. },
                }) => assert_eq!(offset, off as u64),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_hole_followed_by_data_is_corruption() {
        let d = journal("hole", 10);
        let off = SEGMENT_HEADER_LEN + 4 * 72;
        patch(&d, 0, off, &[0; 72]);
        let r = Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap();
        assert!(matches!(
            count(&r),
            Err(JournalError::Corruption {
                sequence: 5,
                reason: CorruptionReason::DataAfterEnd,
                ..
            })
        ));
    }

    #[test]
    fn sequence_gap_is_corruption() {
        let d = journal("gap", 3);
        let off = SEGMENT_HEADER_LEN + 3 * 72;
        let mut rec = [0u8; 72];
        encode_record(&mut rec, 1, 0, 5, 0, &[9; 40]);
        patch(&d, 0, off, &rec);
        let r = Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap();
        assert!(matches!(
            count(&r),
            Err(JournalError::Corruption {
                sequence: 4,
                reason: CorruptionReason::SequenceGap {
                    expected: 4,
                    found: 5
                },
                ..
            })
        ));
    }

    #[test]
    fn damage_in_a_segment_followed_by_data_in_the_next_is_corruption() {
        // 56 records of 72 bytes fill a 4 KiB segment exactly; 120 span three segments.
        let d = journal("seg", 120);
        let off = SEGMENT_HEADER_LEN + 55 * 72;
        assert_eq!(off + 72, 4096);
        patch(&d, 0, off + 50, &[0xee]);
        let r = Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap();
        assert!(matches!(
            count(&r),
            Err(JournalError::Corruption {
                segment: 0,
                sequence: 56,
                ..
            })
        ));
    }

    #[test]
    fn missing_segment_and_mismatched_headers() {
        let d = journal("missing", 120);
        std::fs::remove_file(seg_path(&d, 1)).unwrap();
        assert!(matches!(
            Reader::open(d.path(), RecoveryMode::Strict),
            Err(JournalError::MissingSegment { segment: 1 })
        ));
        let d = journal("hash", 120);
        let p = seg_path(&d, 1);
        let mut v = std::fs::read(&p).unwrap();
        let h = SegmentHeader {
            segment: 1,
            created_ns: 0,
            header_hash: [0xcd; 32],
        };
        v[..SEGMENT_HEADER_LEN].copy_from_slice(&h.encode());
        std::fs::write(&p, v).unwrap();
        assert!(matches!(
            Reader::open(d.path(), RecoveryMode::Strict),
            Err(JournalError::HeaderMismatch { segment: 1, .. })
        ));
        let empty = TempDir::new("none");
        std::fs::create_dir_all(empty.path()).unwrap();
        assert!(matches!(
            Reader::open(empty.path(), RecoveryMode::Strict),
            Err(JournalError::NoJournal { .. })
        ));
    }
}
