//! `verify`: one verifying pass over a whole journal, with the statistics that
//! `ringmaker journal verify` / `stats` print.

use crate::error::JournalError;
use crate::format::{record_len, SegmentHeader};
use crate::reader::{Reader, RecoveryMode, TornTail};
use std::path::Path;

/// Records and payload bytes of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindStats {
    /// The record kind.
    pub kind: u16,
    /// How many records of that kind.
    pub records: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
}

/// What [`verify`] found in a journal whose every record checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// Segment files, preallocated empty ones included.
    pub segments: u64,
    /// Valid records.
    pub records: u64,
    /// Sequence number of the last valid record (0 if none).
    pub last_seq: u64,
    /// Timestamp of the first record.
    pub first_timestamp_ns: Option<i64>,
    /// Timestamp of the last valid record.
    pub last_timestamp_ns: Option<i64>,
    /// On-disk bytes of the valid records (headers, payloads, CRCs, padding).
    pub record_bytes: u64,
    /// Payload bytes of the valid records.
    pub payload_bytes: u64,
    /// Per kind, in kind order; kinds without records are left out.
    pub per_kind: Vec<KindStats>,
    /// Segment 0's header (engine/config hash, creation time).
    pub header: SegmentHeader,
    /// A torn tail after the last valid record (the previous writer crashed mid-append).
    pub torn_tail: Option<TornTail>,
}

/// Reads the whole journal in `dir`, checking every segment header, record CRC and sequence
/// number, and summarises it. A torn tail is tolerated and reported in the summary; any other
/// damage is the error ([`JournalError::Corruption`] names the segment, offset and sequence).
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifySummary, JournalError> {
    let reader = Reader::open(dir, RecoveryMode::TolerateTornTail)?;
    let mut per_kind = vec![(0u64, 0u64); 1 << 16];
    let mut records = 0u64;
    let mut record_bytes = 0u64;
    let mut payload_bytes = 0u64;
    let mut first_timestamp_ns = None;
    let mut last = None;
    for r in reader.records() {
        let r = r?;
        let n = r.payload.len() as u64;
        let k = &mut per_kind[r.kind as usize];
        k.0 += 1;
        k.1 += n;
        records += 1;
        payload_bytes += n;
        record_bytes += record_len(r.payload.len()) as u64;
        first_timestamp_ns.get_or_insert(r.timestamp_ns);
        last = Some((r.seq, r.timestamp_ns));
    }
    let per_kind = per_kind
        .iter()
        .enumerate()
        .filter(|(_, &(records, _))| records > 0)
        .map(|(kind, &(records, payload_bytes))| KindStats {
            kind: kind as u16,
            records,
            payload_bytes,
        })
        .collect();
    Ok(VerifySummary {
        segments: reader.segment_count() as u64,
        records,
        last_seq: last.map_or(0, |(s, _)| s),
        first_timestamp_ns,
        last_timestamp_ns: last.map(|(_, t)| t),
        record_bytes,
        payload_bytes,
        per_kind,
        header: *reader.header(),
        torn_tail: reader.torn_tail()?,
    })
}
