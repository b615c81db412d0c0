//! Reader for recorded sessions: `<local_receive_ns> <raw JSON>` per line, gzip or plain text.
//!
//! Several files are read in sequence and file order is arrival order (the recorder's local
//! timestamps are not strictly monotonic across streams; see `tests/data/PROVENANCE.md`). A line
//! that is not `<digits> <payload>` is a [`LineError`]: the caller counts it and carries on. A
//! file that cannot be decompressed to the end is reported once and reading continues with the
//! next file. The line buffer is reused: reading allocates nothing once warmed up.

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A recording file that cannot be opened at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot open recording {path}")]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Why one line was skipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// No space separating the timestamp from the payload, or an empty payload.
    #[error("{file}:{line}: expected `<local_ns> <json>`")]
    Shape {
        /// File path.
        file: String,
        /// 1-based line number.
        line: u64,
    },
    /// The timestamp is not a non-negative integer that fits in i64 nanoseconds.
    #[error("{file}:{line}: bad local timestamp")]
    Timestamp {
        /// File path.
        file: String,
        /// 1-based line number.
        line: u64,
    },
    /// The file could not be read (or decompressed) past this line; the rest of it is skipped.
    #[error("{file}: read error after line {line}, skipping the rest of the file: {source}")]
    Io {
        /// File path.
        file: String,
        /// Last line read successfully.
        line: u64,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// One recorded message. `json` may be modified in place by the decoder.
#[derive(Debug)]
pub struct RecordLine<'a> {
    /// Local receive time, ns.
    pub local_ns: i64,
    /// The raw payload.
    pub json: &'a mut [u8],
    /// Which file (index into the paths given).
    pub file: usize,
    /// 1-based line number in that file.
    pub line: u64,
}

/// Where the line just read sits in the reader's buffer (valid until the next read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineInfo {
    /// Local receive time, ns.
    pub(crate) local_ns: i64,
    /// Which file (index into the paths given).
    pub(crate) file: usize,
    /// 1-based line number in that file.
    pub(crate) line: u64,
    /// Offset of the payload in the buffer.
    start: usize,
}

/// Counters of a reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Lines read (good and bad).
    pub lines: u64,
    /// Lines skipped as malformed, plus files cut short by a read error.
    pub bad_lines: u64,
    /// Files opened.
    pub files: u64,
}

/// Reads one or more recording files as one stream of lines.
pub struct RecordingReader {
    paths: Vec<PathBuf>,
    next_file: usize,
    current: Option<Box<dyn BufRead + Send>>,
    line_no: u64,
    buf: Vec<u8>,
    stats: ReaderStats,
}

impl std::fmt::Debug for RecordingReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingReader")
            .field("paths", &self.paths)
            .field("next_file", &self.next_file)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl RecordingReader {
    /// Checks that every file can be opened, then reads them in the order given.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<RecordingReader, OpenError> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        for p in &paths {
            File::open(p).map_err(|source| OpenError {
                path: p.clone(),
                source,
            })?;
        }
        Ok(RecordingReader {
            paths,
            next_file: 0,
            current: None,
            line_no: 0,
            buf: Vec::with_capacity(64 * 1024),
            stats: ReaderStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The files being read.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    fn open_next(&mut self) -> Option<Result<(), LineError>> {
        let path = self.paths.get(self.next_file)?.clone();
        self.next_file += 1;
        self.line_no = 0;
        self.stats.files += 1;
        let io_err = |source| LineError::Io {
            file: path.display().to_string(),
            line: 0,
            source,
        };
        let mut file = match File::open(&path) {
            Ok(f) => BufReader::with_capacity(256 * 1024, f),
            Err(e) => return Some(Err(io_err(e))),
        };
        let gz = match file.fill_buf() {
            Ok(b) => b.starts_with(&[0x1f, 0x8b]),
            Err(e) => return Some(Err(io_err(e))),
        };
        self.current = Some(if gz {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(file)
        });
        Some(Ok(()))
    }

    /// The next line, a line error to count, or `None` at the end of the last file.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<RecordLine<'_>, LineError>> {
        Some(self.read_line()?.map(|info| RecordLine {
            local_ns: info.local_ns,
            json: &mut self.buf[info.start..],
            file: info.file,
            line: info.line,
        }))
    }

    /// The payload of the line just read by [`RecordingReader::read_line`] (which `info` must
    /// be the answer of: the buffer holds that line until the next read).
    #[inline]
    pub(crate) fn payload(&mut self, info: &LineInfo) -> &mut [u8] {
        let start = info.start.min(self.buf.len());
        &mut self.buf[start..]
    }

    /// Reads the next line into the buffer and says where it is: [`RecordingReader::next`]
    /// without the borrow, so that a reader can hold a line read ahead (a merge of several
    /// recordings looks at each one's next line before choosing).
    pub(crate) fn read_line(&mut self) -> Option<Result<LineInfo, LineError>> {
        loop {
            if self.current.is_none() {
                match self.open_next()? {
                    Ok(()) => {}
                    Err(e) => {
                        self.stats.bad_lines += 1;
                        return Some(Err(e));
                    }
                }
            }
            let reader = self.current.as_mut()?;
            self.buf.clear();
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.current = None;
                    continue;
                }
                Ok(_) => {}
                Err(source) => {
                    self.current = None;
                    self.stats.bad_lines += 1;
                    return Some(Err(LineError::Io {
                        file: self.paths[self.next_file - 1].display().to_string(),
                        line: self.line_no,
                        source,
                    }));
                }
            }
            self.line_no += 1;
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if self.buf.is_empty() {
                // Blank lines (a trailing newline at the end of a file) are not messages.
                continue;
            }
            self.stats.lines += 1;
            let file = self.next_file - 1;
            let line = self.line_no;
            let err_file = || self.paths[file].display().to_string();
            let Some(sp) = self.buf.iter().position(|&c| c == b' ') else {
                self.stats.bad_lines += 1;
                return Some(Err(LineError::Shape {
                    file: err_file(),
                    line,
                }));
            };
            if sp + 1 >= self.buf.len() {
                self.stats.bad_lines += 1;
                return Some(Err(LineError::Shape {
                    file: err_file(),
                    line,
                }));
            }
            let Some(local_ns) = parse_ns(&self.buf[..sp]) else {
                self.stats.bad_lines += 1;
                return Some(Err(LineError::Timestamp {
                    file: err_file(),
                    line,
                }));
            };
            return Some(Ok(LineInfo {
                local_ns,
                file,
                line,
                start: sp + 1,
            }));
        }
    }
}

fn parse_ns(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as i64)?;
    }
    Some(v)
}

/// Recorded messages in memory: `(local_ns, payload)` in arrival order.
pub type RecordedMessages = Vec<(i64, Vec<u8>)>;

/// Reads a whole recording into memory, for benches and tests. Bad lines are skipped; their
/// count is returned alongside.
pub fn read_all<P: AsRef<Path>>(paths: &[P]) -> Result<(RecordedMessages, u64), OpenError> {
    let mut r = RecordingReader::open(paths)?;
    let mut out = Vec::new();
    while let Some(line) = r.next() {
        if let Ok(l) = line {
            out.push((l.local_ns, l.json.to_vec()));
        }
    }
    Ok((out, r.stats().bad_lines))
}

/// Decompresses `reader` fully (gzip if it starts with the gzip magic) — a helper for tests that
/// build modified recordings.
pub fn decompress_all(mut reader: impl Read) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzip_files_in_sequence_and_counts_bad_lines() {
        let dir = std::env::temp_dir().join(format!("rm-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("a.txt");
        std::fs::write(
            &plain,
            b"1 {\"a\":1}\nnot-a-line\n2 \n-5 {}\r\n3 {\"b\":2}\n\n",
        )
        .unwrap();
        let gz = dir.join("b.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"4 {\"c\":3}\n99999999999999999999 {}\n")
            .unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();

        let mut r = RecordingReader::open(&[&plain, &gz]).unwrap();
        let mut good = Vec::new();
        let mut bad = 0;
        while let Some(l) = r.next() {
            match l {
                Ok(l) => good.push((
                    l.local_ns,
                    String::from_utf8(l.json.to_vec()).unwrap(),
                    l.file,
                    l.line,
                )),
                Err(_) => bad += 1,
            }
        }
        assert_eq!(
            good,
            vec![
                (1, "{\"a\":1}".to_string(), 0, 1),
                (3, "{\"b\":2}".to_string(), 0, 5),
                (4, "{\"c\":3}".to_string(), 1, 1)
            ]
        );
        assert_eq!(bad, 4);
        assert_eq!(
            r.stats(),
            ReaderStats {
                lines: 7,
                bad_lines: 4,
                files: 2
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_gzip_is_reported_not_fatal() {
        let dir = std::env::temp_dir().join(format!("rm-rec-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..2000 {
            writeln!(enc, "{i} {{\"n\":{i}}}").unwrap();
        }
        let bytes = enc.finish().unwrap();
        let cut = dir.join("cut.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let whole = dir.join("whole.gz");
        std::fs::write(&whole, &bytes).unwrap();
        let mut r = RecordingReader::open(&[&cut, &whole]).unwrap();
        let (mut good, mut io) = (0, 0);
        while let Some(l) = r.next() {
            match l {
                Ok(_) => good += 1,
                Err(LineError::Io { .. }) => io += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(io, 1);
        assert!(good > 2000 && good < 4000, "{good}");
        assert!(RecordingReader::open(&[dir.join("missing.gz")]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
