//! The journal archive (issue 19): each engine's journal, streamed by its bus thread to a
//! JetStream stream, and rebuilt from it into a journal directory that replays exactly as the
//! one on disk.
//!
//! The bus thread follows the journal's segment files as the engine writes them ([`Tailer`]):
//! it reads from where it got to, takes the whole valid records there ([`journal::whole_records`]:
//! a record being appended, or filled in place and not yet sealed, is not taken until it is
//! whole), and publishes them as they lie on disk, one message per chunk of records, each
//! acknowledged by the server before the next. Nothing is ever read from the engine thread or
//! its memory: the files are the source, so an archive that fell behind (the server away) catches
//! up from them, and the run's last records are archived after the engine has stopped.
//!
//! | subject | payload |
//! |---|---|
//! | `{prefix}.journal.{engine}.{run}` | a segment's header (`Rm-Offset: 0`), or whole records from `Rm-Offset` on |
//!
//! `{run}` is `{start unix ms}-{run id, hex}`: runs of an engine sort by their start. Headers:
//! `Rm-Segment`, `Rm-Offset`, `Rm-Records` (how many records), `Rm-Last-Seq`. The stream
//! (`{prefix}_journal`, the prefix's dots as `_`) keeps messages for `[bus] archive_days`
//! (30 by default).
//!
//! [`Rebuild`] writes chunks back at their offsets: the segment files then hold the header and
//! the records, and the end of a file is an end of data (`journal/FORMAT.md`), so the journal
//! reads, verifies and replays as the one on disk did. Chunks come from the network and are
//! treated as untrusted: their positions are checked here, their records by the journal reader
//! (CRC, sequence) when the rebuilt journal is read.

use journal::{record_len, segment_path, whole_records, SEGMENT_HEADER_LEN};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// The most bytes of records one message carries (a record larger than this goes alone).
pub const MAX_CHUNK: usize = 256 << 10;
/// The largest offset a chunk may have (a segment is at most 4 GiB): a hostile message cannot
/// make a sparse file of absurd size.
pub const MAX_OFFSET: u64 = 1 << 32;
/// The most segments a rebuilt journal may have.
pub const MAX_SEGMENTS: u64 = 1 << 20;

/// A piece of the journal as it lies on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The segment.
    pub segment: u64,
    /// Where in the segment file (0: the segment header).
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Whole records in it (0 for a header).
    pub records: u64,
    /// The last record's sequence number.
    pub last_seq: Option<u64>,
}

/// What the journal has for the archive now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A chunk to publish (then [`Tailer::advance`]).
    Chunk(Chunk),
    /// The segment is done (the next one holds records): [`Tailer::roll`].
    Roll,
    /// Nothing new yet.
    Idle,
}

/// Follows a journal directory's segment files from the start.
#[derive(Debug, Clone)]
pub struct Tailer {
    dir: PathBuf,
    segment: u64,
    /// 0 until the segment's header is published, then where its next record starts.
    offset: u64,
}

impl Tailer {
    /// From segment 0's header on.
    pub fn new(dir: &Path) -> Tailer {
        Tailer {
            dir: dir.to_path_buf(),
            segment: 0,
            offset: 0,
        }
    }

    /// From where an earlier one got to ([`Tailer::position`]).
    pub fn at(dir: &Path, segment: u64, offset: u64) -> Tailer {
        Tailer {
            dir: dir.to_path_buf(),
            segment,
            offset,
        }
    }

    /// Where it has got to: (segment, offset).
    pub fn position(&self) -> (u64, u64) {
        (self.segment, self.offset)
    }

    /// What is there to publish from the current position.
    pub fn next(&self) -> std::io::Result<Next> {
        let path = segment_path(&self.dir, self.segment);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Next::Idle),
            Err(e) => return Err(e),
        };
        if self.offset == 0 {
            let mut h = vec![0u8; SEGMENT_HEADER_LEN];
            let n = read_at(&file, &mut h, 0)?;
            if n < SEGMENT_HEADER_LEN || h.iter().all(|&b| b == 0) {
                return Ok(Next::Idle);
            }
            return Ok(Next::Chunk(Chunk {
                segment: self.segment,
                offset: 0,
                bytes: h,
                records: 0,
                last_seq: None,
            }));
        }
        // The first record's length says how much to read at least.
        let mut head = [0u8; 8];
        let got = read_at(&file, &mut head, self.offset)?;
        let first = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let want = if got == 8 && first > 0 {
            record_len(first).max(MAX_CHUNK)
        } else {
            MAX_CHUNK
        };
        let mut buf = vec![0u8; want];
        let n = read_at(&file, &mut buf, self.offset)?;
        buf.truncate(n);
        let (len, records, last_seq) = whole_records(&buf);
        if len > 0 {
            buf.truncate(len);
            return Ok(Next::Chunk(Chunk {
                segment: self.segment,
                offset: self.offset,
                bytes: buf,
                records,
                last_seq,
            }));
        }
        // Nothing here: the segment is done once the next one holds a record (the writer
        // starts a segment only when a record does not fit in the one before; a next segment
        // preallocated ahead reads as zeros).
        let next = segment_path(&self.dir, self.segment + 1);
        let Ok(f) = std::fs::File::open(&next) else {
            return Ok(Next::Idle);
        };
        let mut first = vec![0u8; MAX_CHUNK];
        let n = read_at(&f, &mut first, SEGMENT_HEADER_LEN as u64)?;
        first.truncate(n);
        Ok(if whole_records(&first).1 > 0 {
            Next::Roll
        } else {
            Next::Idle
        })
    }

    /// `c` (from [`Tailer::next`]) was published.
    pub fn advance(&mut self, c: &Chunk) {
        self.offset = if c.offset == 0 {
            SEGMENT_HEADER_LEN as u64
        } else {
            c.offset + c.bytes.len() as u64
        };
    }

    /// On to the next segment.
    pub fn roll(&mut self) {
        self.segment += 1;
        self.offset = 0;
    }
}

/// Reads as much of `buf` as the file has at `at`.
fn read_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Where a run's archive got to when its bus thread stopped: the rest (the journal's close
/// record, written after the engine stopped) is published once the journal is closed
/// ([`crate::bus::archive_rest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The NATS server.
    pub url: String,
    /// The subjects' prefix and the retention, for the stream.
    pub prefix: String,
    /// The run's subject.
    pub subject: String,
    /// The run token.
    pub run: String,
    /// The tailer's position: (segment, offset).
    pub position: (u64, u64),
    /// Records archived so far.
    pub records: u64,
    /// A chunk published without its acknowledgement seen: published again first, exactly as
    /// it was (a chunk read anew from its offset may have grown, and the server would drop it
    /// as the duplicate of this one).
    pub unacked: Option<Chunk>,
}

/// Why a chunk cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    /// The directory exists and is not empty: nothing of a user's is overwritten.
    #[error("{0} exists and is not empty: give a new directory (nothing there is overwritten)")]
    NotEmpty(PathBuf),
    /// A chunk's position or size is impossible.
    #[error("segment {segment} offset {offset} ({len} bytes): {why}")]
    BadChunk {
        /// Its segment.
        segment: u64,
        /// Its offset.
        offset: u64,
        /// Its length.
        len: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// Writing failed.
    #[error("writing {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: String,
    },
}

/// Writes chunks back into a new journal directory.
#[derive(Debug)]
pub struct Rebuild {
    dir: PathBuf,
    /// Segments written.
    pub segments: u64,
    /// Records written.
    pub records: u64,
}

impl Rebuild {
    /// Into `dir`, which must not exist or be empty.
    pub fn new(dir: &Path) -> Result<Rebuild, RebuildError> {
        if let Ok(mut d) = std::fs::read_dir(dir) {
            if d.next().is_some() {
                return Err(RebuildError::NotEmpty(dir.to_path_buf()));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| RebuildError::Io {
            path: dir.to_path_buf(),
            error: e.to_string(),
        })?;
        Ok(Rebuild {
            dir: dir.to_path_buf(),
            segments: 0,
            records: 0,
        })
    }

    /// Places one chunk at its position.
    pub fn put(&mut self, c: &Chunk) -> Result<(), RebuildError> {
        let bad = |why| RebuildError::BadChunk {
            segment: c.segment,
            offset: c.offset,
            len: c.bytes.len(),
            why,
        };
        if c.segment >= MAX_SEGMENTS {
            return Err(bad("more segments than a journal has"));
        }
        if c.offset == 0 {
            if c.bytes.len() != SEGMENT_HEADER_LEN {
                return Err(bad("a segment header is 64 bytes"));
            }
        } else if c.offset < SEGMENT_HEADER_LEN as u64
            || c.offset % 8 != 0
            || c.offset + c.bytes.len() as u64 > MAX_OFFSET
            || c.bytes.is_empty()
        {
            return Err(bad(
                "records start at a multiple of 8 after the header, within 4 GiB",
            ));
        }
        let path = segment_path(&self.dir, c.segment);
        let io = |e: std::io::Error| RebuildError::Io {
            path: path.clone(),
            error: e.to_string(),
        };
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        f.write_all_at(&c.bytes, c.offset).map_err(io)?;
        if c.offset == 0 {
            self.segments += 1;
        }
        self.records += c.records;
        Ok(())
    }
}

/// The subject token of a run: `{start unix ms}-{run id, hex}`.
pub fn run_token(start_unix_ms: u64, run_id: u64) -> String {
    format!("{start_unix_ms}-{run_id:016x}")
}

/// A run token's start time, for picking the newest (`None`: not one of ours).
pub fn run_start(token: &str) -> Option<u64> {
    let (ms, id) = token.split_once('-')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    ms.parse().ok()
}

/// A run token's run id (`None`: not one of ours). A live run's session tag (its client order
/// ids) is its run id, so a standby knows its leader's ids from the token it follows.
pub fn run_id(token: &str) -> Option<u64> {
    run_start(token)?;
    u64::from_str_radix(token.split_once('-')?.1, 16).ok()
}

/// The archive's stream name for subjects under `prefix`.
pub fn stream_name(prefix: &str) -> String {
    format!("{}_journal", prefix.replace('.', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::{Durability, Reader, RecoveryMode, Writer, WriterOptions};

    fn writer(dir: &Path) -> Writer {
        Writer::create(
            dir,
            WriterOptions {
                segment_size: 1 << 14,
                durability: Durability::None,
                header_hash: [3; 32],
                created_ns: 9,
            },
        )
        .unwrap()
    }

    /// Everything there is now, published.
    fn drain(t: &mut Tailer, out: &mut Vec<Chunk>) {
        loop {
            match t.next().unwrap() {
                Next::Chunk(c) => {
                    t.advance(&c);
                    out.push(c);
                }
                Next::Roll => t.roll(),
                Next::Idle => return,
            }
        }
    }

    #[test]
    fn a_journal_followed_while_written_rebuilds_record_for_record() {
        let tmp = test_support::TempDir::new("archive-tail");
        let (src, dst) = (tmp.join("src"), tmp.join("dst"));
        let mut w = writer(&src);
        let mut t = Tailer::new(&src);
        let mut chunks = Vec::new();
        // Across several segments of 16 KiB, followed as it grows.
        for k in 0..600u32 {
            let payload = vec![(k % 251) as u8; 20 + (k as usize * 37) % 300];
            w.append(2, i64::from(k), &payload).unwrap();
            if k % 50 == 0 {
                w.housekeeping().unwrap();
                drain(&mut t, &mut chunks);
            }
        }
        w.close().unwrap();
        drain(&mut t, &mut chunks);
        assert!(t.position().0 >= 5, "{:?}", t.position());
        let mut r = Rebuild::new(&dst).unwrap();
        for c in &chunks {
            r.put(c).unwrap();
        }
        assert_eq!(r.records, 600);
        let (a, b) = (
            Reader::open(&src, RecoveryMode::Strict).unwrap(),
            Reader::open(&dst, RecoveryMode::Strict).unwrap(),
        );
        let ra: Vec<_> = a.records().map(|r| r.unwrap()).collect();
        let rb: Vec<_> = b.records().map(|r| r.unwrap()).collect();
        assert_eq!(ra, rb);
        assert_eq!(a.header(), b.header());
        // Nothing is published twice: the sequence numbers run on.
        let seqs: Vec<u64> = chunks.iter().filter_map(|c| c.last_seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rebuild_refuses_a_used_directory_and_impossible_chunks() {
        let tmp = test_support::TempDir::new("archive-rebuild");
        std::fs::write(tmp.join("mine.txt"), b"keep").unwrap();
        assert!(matches!(
            Rebuild::new(tmp.path()),
            Err(RebuildError::NotEmpty(_))
        ));
        assert_eq!(std::fs::read(tmp.join("mine.txt")).unwrap(), b"keep");
        let mut r = Rebuild::new(&tmp.join("new")).unwrap();
        let c = |segment, offset, len| Chunk {
            segment,
            offset,
            bytes: vec![1; len],
            records: 0,
            last_seq: None,
        };
        for bad in [
            c(0, 0, 10),
            c(0, 8, 8),
            c(0, 68, 8),
            c(0, 64, 0),
            c(0, MAX_OFFSET, 8),
            c(MAX_SEGMENTS, 64, 8),
        ] {
            assert!(
                matches!(r.put(&bad), Err(RebuildError::BadChunk { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn run_tokens_sort_by_start() {
        let t = run_token(1_700_000_000_123, 0xabc);
        assert_eq!(t, "1700000000123-0000000000000abc");
        assert_eq!(run_start(&t), Some(1_700_000_000_123));
        assert_eq!(run_id(&t), Some(0xabc));
        assert_eq!(run_id("1700000000123-xyz"), None);
        assert_eq!(run_start("x-0000000000000abc"), None);
        assert_eq!(run_start("12-abc"), None);
        assert_eq!(stream_name("firm.mm"), "firm_mm_journal");
    }
}
