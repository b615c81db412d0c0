//! Following a journal while it is written, from outside the writer (the bus thread's archive):
//! which bytes from a record position on are whole, valid records, and where each segment is.

use crate::format::{decode_slot, segment_file_name, Slot};
use std::path::{Path, PathBuf};

/// The whole valid records at the start of `bytes` (the contents of a segment from a record
/// position on, as read so far): `(bytes, records, last sequence number)`. Stops at the end
/// marker, at a record the end of `bytes` cuts short, and at anything not yet valid (a record
/// being appended, or one filled in place and not yet sealed, reads as one of those): call again
/// with more bytes later. Never panics, never reads outside `bytes`.
pub fn whole_records(bytes: &[u8]) -> (usize, u64, Option<u64>) {
    let mut it = records_in(bytes);
    let (mut n, mut last) = (0u64, None);
    for r in it.by_ref() {
        n += 1;
        last = Some(r.seq);
    }
    (it.offset(), n, last)
}

/// The whole valid records at the start of `bytes` (as [`whole_records`] counts them), one by
/// one: what a follower of the journal (a hot standby reading the archive) feeds its engine.
/// Never panics, never reads outside `bytes`.
pub fn records_in(bytes: &[u8]) -> WholeRecords<'_> {
    WholeRecords { bytes, off: 0 }
}

/// The iterator of [`records_in`].
#[derive(Debug, Clone)]
pub struct WholeRecords<'a> {
    bytes: &'a [u8],
    off: usize,
}

impl WholeRecords<'_> {
    /// Bytes taken so far: where the next record would start.
    pub fn offset(&self) -> usize {
        self.off
    }
}

impl<'a> Iterator for WholeRecords<'a> {
    type Item = crate::Record<'a>;

    fn next(&mut self) -> Option<crate::Record<'a>> {
        match decode_slot(self.bytes, self.off) {
            Slot::Record(r, len) => {
                self.off += len;
                Some(r)
            }
            _ => None,
        }
    }
}

/// The path of segment `n` of the journal in `dir` (`seg-00000042.rmj`).
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(segment_file_name(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, Writer, WriterOptions, SEGMENT_HEADER_LEN};

    #[test]
    fn whole_records_stop_at_the_end_a_cut_and_damage() {
        let dir = std::env::temp_dir().join(format!("rmj-tail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = Writer::create(
            &dir,
            WriterOptions {
                segment_size: 1 << 16,
                durability: Durability::None,
                header_hash: [0; 32],
                created_ns: 0,
            },
        )
        .unwrap();
        for k in 0..5u8 {
            w.append(7, i64::from(k), &[k; 13]).unwrap();
        }
        w.flush().unwrap();
        let seg = std::fs::read(segment_path(&dir, 0)).unwrap();
        let body = &seg[SEGMENT_HEADER_LEN..];
        let one = crate::record_len(13);
        assert_eq!(whole_records(body), (5 * one, 5, Some(5)));
        // Cut inside the fourth record: three whole ones.
        assert_eq!(whole_records(&body[..3 * one + 9]), (3 * one, 3, Some(3)));
        assert_eq!(whole_records(&[]), (0, 0, None));
        // A flipped bit in the second: only the first.
        let mut bad = body.to_vec();
        bad[one + 30] ^= 1;
        assert_eq!(whole_records(&bad), (one, 1, Some(1)));
        // One by one, as written; stopping where the count stops.
        let got: Vec<(u16, u64, i64, Vec<u8>)> = records_in(body)
            .map(|r| (r.kind, r.seq, r.timestamp_ns, r.payload.to_vec()))
            .collect();
        let want: Vec<(u16, u64, i64, Vec<u8>)> = (0..5u8)
            .map(|k| (7, u64::from(k) + 1, i64::from(k), vec![k; 13]))
            .collect();
        assert_eq!(got, want);
        let mut it = records_in(&bad);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(it.offset(), one);
        w.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
