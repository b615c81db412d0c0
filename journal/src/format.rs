//! The on-disk format: segment header and record layout, encoding and decoding. The normative
//! description is `journal/FORMAT.md`; the constants here are the ones it names.
//!
//! All integers are little-endian. Decoding treats the bytes as untrusted: it never panics and
//! never reads outside the slice it is given.

use crate::error::{CorruptionReason, JournalError};

/// The first 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"RMJRNL\0\x01";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the segment header; the first record starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Length of a record header (length, kind, flags, sequence, timestamp).
pub const RECORD_HEADER_LEN: usize = 24;
/// Length of the CRC32C that follows each record's payload.
pub const RECORD_CRC_LEN: usize = 4;
/// Every record starts at a multiple of this offset.
pub const RECORD_ALIGN: usize = 8;
/// The smallest segment size a writer accepts.
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// The sequence number of a journal's first record.
pub const FIRST_SEQ: u64 = 1;

/// The fields of a segment header (see `FORMAT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's index, equal to the `N` in its file name `seg-N.rmj`.
    pub segment: u64,
    /// When the segment was created, in ns, as given by the writer's caller.
    pub created_ns: u64,
    /// Hash of the engine version and config that wrote the journal, as given by the caller.
    pub header_hash: [u8; 32],
}

/// One journaled record, borrowed from the reader's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// What the payload is (an engine event, an intent, a config record, ...); never 0.
    pub kind: u16,
    /// Caller-defined flags.
    pub flags: u16,
    /// The record's sequence number: 1 for the first record, +1 for each record after it.
    pub seq: u64,
    /// The caller's timestamp, in ns.
    pub timestamp_ns: i64,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// The on-disk size of a record with a payload of `payload_len` bytes (header, payload, CRC,
/// padding to 8 bytes).
#[inline]
pub const fn record_len(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN + payload_len + RECORD_CRC_LEN + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// The largest payload a segment of `segment_size` bytes can hold.
pub const fn max_payload(segment_size: usize) -> usize {
    let room = (segment_size - SEGMENT_HEADER_LEN) & !(RECORD_ALIGN - 1);
    room - RECORD_HEADER_LEN - RECORD_CRC_LEN
}

/// `seg-00000042.rmj`.
pub(crate) fn segment_file_name(segment: u64) -> String {
    format!("seg-{segment:08}.rmj")
}

/// The segment index of a file named `seg-<at least 8 decimal digits>.rmj`, else `None`.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".rmj")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// CRC32C of a segment header: bytes 0..12 and 16..64 (the CRC field itself is skipped).
fn header_crc(h: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&h[..12]), &h[16..SEGMENT_HEADER_LEN])
}

impl SegmentHeader {
    /// The 64 header bytes.
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[16..24].copy_from_slice(&self.segment.to_le_bytes());
        h[24..32].copy_from_slice(&self.created_ns.to_le_bytes());
        h[32..64].copy_from_slice(&self.header_hash);
        let crc = header_crc(&h);
        h[12..16].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Checks and decodes the header at the start of `file`, the bytes of segment `segment`.
    /// Magic first, then version (a later version may lay the rest out differently), then CRC,
    /// then that the stored index matches the file name.
    pub(crate) fn decode(segment: u64, file: &[u8]) -> Result<Self, JournalError> {
        if file.len() < SEGMENT_HEADER_LEN {
            return Err(JournalError::HeaderTruncated {
                segment,
                len: file.len() as u64,
            });
        }
        let h = &file[..SEGMENT_HEADER_LEN];
        if h[0..8] != MAGIC {
            let mut found = [0u8; 8];
            found.copy_from_slice(&h[0..8]);
            return Err(JournalError::BadMagic { segment, found });
        }
        let version = u32_at(h, 8);
        if version != FORMAT_VERSION {
            return Err(JournalError::UnsupportedVersion {
                segment,
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored = u32_at(h, 12);
        let computed = header_crc(h);
        if stored != computed {
            return Err(JournalError::HeaderCrc {
                segment,
                stored,
                computed,
            });
        }
        let header = SegmentHeader {
            segment: u64_at(h, 16),
            created_ns: u64_at(h, 24),
            header_hash: h[32..64].try_into().expect("32 bytes"),
        };
        if header.segment != segment {
            return Err(JournalError::HeaderMismatch {
                segment,
                what: "segment index in header differs from the file name",
            });
        }
        Ok(header)
    }
}

/// Writes one record into `buf`, which is exactly `record_len(payload.len())` bytes of
/// never-written (zero) segment space. A memcpy and a CRC: no allocation, no syscall.
#[inline]
pub(crate) fn encode_record(
    buf: &mut [u8],
    kind: u16,
    flags: u16,
    seq: u64,
    timestamp_ns: i64,
    payload: &[u8],
) {
    buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + payload.len()].copy_from_slice(payload);
    seal_record(buf, kind, flags, seq, timestamp_ns, payload.len());
}

/// Completes a record whose payload (`payload_len` bytes) is already in place at
/// `buf[24..24 + payload_len]`: writes the header, the CRC and the padding. `buf` is exactly
/// `record_len(payload_len)` bytes. Until this runs the header bytes are zero, which a reader
/// takes for the end of data (a payload written behind it is a torn tail).
#[inline]
pub(crate) fn seal_record(
    buf: &mut [u8],
    kind: u16,
    flags: u16,
    seq: u64,
    timestamp_ns: i64,
    payload_len: usize,
) {
    let body = RECORD_HEADER_LEN + payload_len;
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    h[4..6].copy_from_slice(&kind.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..24].copy_from_slice(&timestamp_ns.to_le_bytes());
    buf[..RECORD_HEADER_LEN].copy_from_slice(&h);
    let crc = crc32c::crc32c(&buf[..body]);
    buf[body..body + RECORD_CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    // Padding: fresh space is zero already; writing it keeps the record self-contained.
    buf[body + RECORD_CRC_LEN..].fill(0);
}

/// What is found at one record position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot<'a> {
    /// A valid record (CRC matches, padding zero) of `len` bytes on disk.
    Record(Record<'a>, usize),
    /// The end-of-data marker: 8 zero bytes, or fewer than 8 bytes left, all zero. Whether the
    /// rest of the segment is zero is the caller's check.
    End,
    /// Damage: not a valid record, not the end marker.
    Damaged(CorruptionReason),
}

/// Decodes the record position at `off` (a multiple of 8, at least the header length) in the
/// bytes `seg` of a whole segment file.
#[inline]
pub(crate) fn decode_slot(seg: &[u8], off: usize) -> Slot<'_> {
    let rest = seg.get(off..).unwrap_or(&[]);
    if rest.len() < 8 {
        if rest.iter().all(|&b| b == 0) {
            return Slot::End;
        }
        return Slot::Damaged(CorruptionReason::Truncated {
            needed: record_len(0) as u64,
            available: rest.len() as u64,
        });
    }
    if u64_at(rest, 0) == 0 {
        return Slot::End;
    }
    let len = u32_at(rest, 0) as usize;
    let total = record_len(len);
    if total > rest.len() {
        return Slot::Damaged(CorruptionReason::Truncated {
            needed: total as u64,
            available: rest.len() as u64,
        });
    }
    let body = RECORD_HEADER_LEN + len;
    let stored = u32_at(rest, body);
    let computed = crc32c::crc32c(&rest[..body]);
    if stored != computed {
        return Slot::Damaged(CorruptionReason::BadCrc { stored, computed });
    }
    if rest[body + RECORD_CRC_LEN..total].iter().any(|&b| b != 0) {
        return Slot::Damaged(CorruptionReason::BadPadding);
    }
    let record = Record {
        kind: u16_at(rest, 4),
        flags: u16_at(rest, 6),
        seq: u64_at(rest, 8),
        timestamp_ns: u64_at(rest, 16) as i64,
        payload: &rest[RECORD_HEADER_LEN..body],
    };
    Slot::Record(record, total)
}

/// Whether every byte is zero (vectorises; used on the tails of segments).
pub(crate) fn is_zero(bytes: &[u8]) -> bool {
    let (head, words, tail) = {
        // SAFETY: every bit pattern is a valid u64; `align_to` only reinterprets the aligned
        // middle of the slice and leaves the unaligned ends as bytes.
        unsafe { bytes.align_to::<u64>() }
    };
    head.iter().all(|&b| b == 0)
        && words
            .chunks(8)
            .all(|c| c.iter().fold(0, |a, &w| a | w) == 0)
        && tail.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn record_len_is_aligned_and_covers_crc() {
        assert_eq!(record_len(0), 32);
        assert_eq!(record_len(4), 32);
        assert_eq!(record_len(5), 40);
        assert_eq!(record_len(64), 96);
        for n in 0..100 {
            let l = record_len(n);
            assert_eq!(l % RECORD_ALIGN, 0);
            assert!(l >= RECORD_HEADER_LEN + n + RECORD_CRC_LEN);
            assert!(l < RECORD_HEADER_LEN + n + RECORD_CRC_LEN + RECORD_ALIGN);
        }
    }

    #[test]
    fn max_payload_fits_exactly() {
        for size in [4096usize, 8192, 65536] {
            let max = max_payload(size);
            assert!(SEGMENT_HEADER_LEN + record_len(max) <= size);
            assert!(SEGMENT_HEADER_LEN + record_len(max + RECORD_ALIGN) > size);
        }
    }

    #[test]
    fn header_round_trip_and_checks() {
        let h = SegmentHeader {
            segment: 7,
            created_ns: 123,
            header_hash: [9; 32],
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(7, &bytes).unwrap(), h);
        assert!(matches!(
            SegmentHeader::decode(8, &bytes),
            Err(JournalError::HeaderMismatch { segment: 8, .. })
        ));
        let mut bad = bytes;
        bad[0] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(7, &bad),
            Err(JournalError::BadMagic { .. })
        ));
        let mut bad = bytes;
        bad[8] = 2;
        assert!(matches!(
            SegmentHeader::decode(7, &bad),
            Err(JournalError::UnsupportedVersion { found: 2, .. })
        ));
        let mut bad = bytes;
        bad[40] ^= 0x80;
        assert!(matches!(
            SegmentHeader::decode(7, &bad),
            Err(JournalError::HeaderCrc { .. })
        ));
        assert!(matches!(
            SegmentHeader::decode(7, &bytes[..63]),
            Err(JournalError::HeaderTruncated { len: 63, .. })
        ));
    }

    #[test]
    fn record_round_trip_and_damage() {
        let payload = b"hello, journal";
        let mut seg = vec![0u8; SEGMENT_HEADER_LEN + 256];
        let off = SEGMENT_HEADER_LEN;
        let n = record_len(payload.len());
        encode_record(&mut seg[off..off + n], 3, 5, 42, -7, payload);
        let Slot::Record(r, len) = decode_slot(&seg, off) else {
            panic!("not a record")
        };
        assert_eq!(len, n);
        assert_eq!(
            r,
            Record {
                kind: 3,
                flags: 5,
                seq: 42,
                timestamp_ns: -7,
                payload
            }
        );
        assert_eq!(decode_slot(&seg, off + n), Slot::End);
        // Every single-bit flip inside the record is detected.
        for bit in 0..n * 8 {
            let mut s = seg.clone();
            s[off + bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode_slot(&s, off), Slot::Damaged(_)),
                "bit {bit} undetected"
            );
        }
        // Truncation anywhere inside is damage or (if only zero bytes remain) the end.
        for cut in off + 1..off + n {
            assert!(matches!(decode_slot(&seg[..cut], off), Slot::Damaged(_)));
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(3), "seg-00000003.rmj");
        assert_eq!(parse_segment_file_name("seg-00000003.rmj"), Some(3));
        assert_eq!(
            parse_segment_file_name("seg-123456789.rmj"),
            Some(123_456_789)
        );
        assert_eq!(parse_segment_file_name("seg-0003.rmj"), None);
        assert_eq!(parse_segment_file_name("seg-00000003.rmj.tmp"), None);
        assert_eq!(parse_segment_file_name("seg-0000000x.rmj"), None);
    }

    #[test]
    fn zero_check() {
        let mut v = vec![0u8; 1000];
        assert!(is_zero(&v));
        assert!(is_zero(&v[3..997]));
        for i in [0, 1, 7, 8, 500, 998, 999] {
            v[i] = 1;
            assert!(!is_zero(&v), "{i}");
            v[i] = 0;
        }
    }
}
