//! The journal's errors: one typed enum for everything the writer, the reader and `verify` can
//! report, each variant saying what went wrong, where, and what the caller should do about it.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with a journal.
///
/// Positions are given as segment index (the `N` of `seg-N.rmj`) and byte offset inside that
/// segment file, so `ringmaker journal verify` output points at the damaged bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file-system call failed. The operation (`op`) and path say which; nothing already
    /// written is lost by this error.
    #[error("journal I/O error: {op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"mmap"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// A segment could not be preallocated because the disk (or the process's file-size limit)
    /// is full. Every record up to and including `last_seq` is intact and readable; the append
    /// that needed the space was not written. Free space, then append again (or halt: the
    /// engine must not run unjournaled).
    #[error(
        "no space to preallocate journal segment {path} ({bytes} bytes): {source}; every record \
         up to seq {last_seq} is intact; free disk space and retry, or halt"
    )]
    NoSpace {
        /// The segment file that could not be preallocated.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The last sequence number written (0 if none).
        last_seq: u64,
        /// `ENOSPC`, `EDQUOT` or `EFBIG` from `posix_fallocate`.
        source: io::Error,
    },

    /// `msync` failed after a record was written: the record is in the journal (in the page
    /// cache) under `last_seq`, but its durability against power loss is not known. Treat as
    /// fatal for the durability promise: halt.
    #[error("journal msync of {path} failed after seq {last_seq}: {source}; halt")]
    SyncFailed {
        /// The segment being synced.
        path: PathBuf,
        /// The last sequence number written.
        last_seq: u64,
        /// The operating system's error.
        source: io::Error,
    },

    /// [`Writer::create`](crate::Writer::create) found segment files in the directory. Use
    /// [`Writer::open_append`](crate::Writer::open_append) to continue that journal, or another
    /// directory.
    #[error(
        "{dir} already holds a journal; open it with Writer::open_append or use a new directory"
    )]
    AlreadyExists {
        /// The journal directory.
        dir: PathBuf,
    },

    /// The directory holds no segment file.
    #[error("{dir} holds no journal (no seg-*.rmj file)")]
    NoJournal {
        /// The directory searched.
        dir: PathBuf,
    },

    /// Another writer (or a repair) holds the journal's directory lock.
    #[error("{dir} is locked by another journal writer; stop it first")]
    Locked {
        /// The journal directory.
        dir: PathBuf,
    },

    /// Segment files must be numbered 0, 1, 2, ... without holes; this one is missing.
    #[error(
        "journal segment {segment} is missing (segments must be numbered from 0 without gaps)"
    )]
    MissingSegment {
        /// The index of the missing segment.
        segment: u64,
    },

    /// A segment file is shorter than a segment header.
    #[error("journal segment {segment} is {len} bytes long, shorter than its header")]
    HeaderTruncated {
        /// The segment index.
        segment: u64,
        /// The file's length.
        len: u64,
    },

    /// A segment does not start with the journal magic: not a ringmaker journal file.
    #[error("journal segment {segment} has wrong magic {found:02x?}: not a ringmaker journal")]
    BadMagic {
        /// The segment index.
        segment: u64,
        /// The first 8 bytes found.
        found: [u8; 8],
    },

    /// A segment was written in a format version this build cannot read. Use a matching
    /// `ringmaker` build.
    #[error(
        "journal segment {segment} has format version {found}; this build reads version \
         {supported}"
    )]
    UnsupportedVersion {
        /// The segment index.
        segment: u64,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// A segment header's CRC does not match: the header is damaged.
    #[error("journal segment {segment} header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderCrc {
        /// The segment index.
        segment: u64,
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC of the header bytes.
        computed: u32,
    },

    /// A segment header is intact but does not belong here: its index differs from its file
    /// name, or its engine/config hash differs from segment 0's (or from the writer's, on
    /// [`Writer::open_append`](crate::Writer::open_append): a journal holds one engine build and
    /// config; start a new directory for a new one).
    #[error("journal segment {segment} header mismatch: {what}")]
    HeaderMismatch {
        /// The segment index.
        segment: u64,
        /// Which field differs.
        what: &'static str,
    },

    /// A record is damaged and valid data follows it (or, in a non-last segment, anything
    /// follows it): records after this point cannot be trusted to be complete. The journal
    /// needs an operator: copy it aside and investigate; do not append to it.
    #[error(
        "journal corruption in segment {segment} at offset {offset} (seq {sequence}): {reason}"
    )]
    Corruption {
        /// The segment index.
        segment: u64,
        /// Byte offset of the damaged record inside the segment file.
        offset: u64,
        /// The sequence number the damaged record should carry (last good + 1).
        sequence: u64,
        /// What is wrong there.
        reason: CorruptionReason,
    },

    /// Strict mode found a torn tail: the last record was only partly written (a crash during
    /// an append). Every record before it is valid. Open in
    /// [`RecoveryMode::TolerateTornTail`](crate::RecoveryMode::TolerateTornTail) to read them.
    #[error(
        "journal has a torn tail in segment {segment} at offset {offset} after seq \
         {last_good_seq}; open in tolerant mode to recover"
    )]
    TornTail {
        /// The segment index.
        segment: u64,
        /// Byte offset of the partial record.
        offset: u64,
        /// The last valid sequence number (0 if none).
        last_good_seq: u64,
    },

    /// A record does not fit in one segment. Use larger segments.
    #[error(
        "journal record payload of {len} bytes exceeds the maximum of {max} for this segment size"
    )]
    RecordTooLarge {
        /// The payload length.
        len: usize,
        /// The largest payload a segment of the configured size holds.
        max: usize,
    },

    /// Kind 0 is reserved: an all-zero record header marks the end of written data.
    #[error("journal record kind 0 is reserved (it marks the end of data)")]
    ReservedKind,

    /// [`WriterOptions`](crate::WriterOptions) are unusable.
    #[error("invalid journal writer options: {0}")]
    InvalidOptions(&'static str),
}

/// What is wrong with a damaged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionReason {
    /// The CRC32C stored after the payload does not match the record's bytes.
    BadCrc {
        /// The CRC stored in the record.
        stored: u32,
        /// The CRC of the record's bytes.
        computed: u32,
    },
    /// The record (header, claimed payload length and CRC) runs past the end of the segment.
    Truncated {
        /// Bytes the record claims to need.
        needed: u64,
        /// Bytes left in the segment.
        available: u64,
    },
    /// The padding after the CRC (up to the next 8-byte boundary) is not zero.
    BadPadding,
    /// A valid record carries the wrong sequence number.
    SequenceGap {
        /// The sequence number expected (previous + 1).
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// The end-of-data marker (8 zero bytes) is followed by non-zero bytes: data after a hole.
    DataAfterEnd,
    /// The segment's records stop before the next segment's first record: the segment was cut
    /// short (at a record boundary) or lost its last records. Blamed on this segment, not on the
    /// next one whose first record merely shows the gap.
    EndsEarly {
        /// The sequence number the next record should have had.
        expected: u64,
        /// The next segment's first sequence number.
        next_segment_starts_at: u64,
    },
}

impl std::fmt::Display for CorruptionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::BadCrc { stored, computed } => {
                write!(
                    f,
                    "record CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::Truncated { needed, available } => write!(
                f,
                "record needs {needed} bytes but only {available} remain in the segment"
            ),
            Self::BadPadding => f.write_str("non-zero padding after the record CRC"),
            Self::SequenceGap { expected, found } => {
                write!(f, "sequence gap: expected {expected}, found {found}")
            }
            Self::DataAfterEnd => f.write_str("non-zero bytes after the end-of-data marker"),
            Self::EndsEarly {
                expected,
                next_segment_starts_at,
            } => write!(
                f,
                "the segment ends before seq {expected}, but the next segment starts at seq \
                 {next_segment_starts_at}: this segment was cut short or lost its last records"
            ),
        }
    }
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
