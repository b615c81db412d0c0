//! HdrHistogram interval logs (`latency.hlog`): the standard text format, V2 compressed
//! histograms, readable by HdrHistogram's tools (`HistogramLogProcessor`) and `ringmaker hist`.

use anyhow::Context;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// The largest uncompressed histogram payload [`check_encoded`] lets a decoder allocate for
/// (ours are a few KB; a histogram of 1 ns .. 60 s at 5 significant digits is under 16 MB).
pub const MAX_PAYLOAD: usize = 64 << 20;

/// Checks the length fields of an encoded (V2, deflate) histogram from a log before a decoder
/// sizes its buffers by them: a 128-byte line can otherwise ask for 4 GiB. The outer length must
/// fit the bytes given, and the inner payload length must fit [`MAX_PAYLOAD`] and what that many
/// compressed bytes can expand to.
pub fn check_encoded(raw: &[u8]) -> anyhow::Result<()> {
    use std::io::Read as _;
    let word = |b: &[u8], at: usize| -> Option<usize> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let outer = word(raw, 4).context("a histogram shorter than its header")?;
    anyhow::ensure!(
        outer <= raw.len() - 8,
        "a histogram claims {outer} compressed bytes, {} follow",
        raw.len() - 8
    );
    let mut head = [0u8; 8];
    flate2::read::ZlibDecoder::new(&raw[8..8 + outer])
        .read_exact(&mut head)
        .context("a histogram's compressed payload does not start with a header")?;
    let inner = word(&head, 4).context("inner header")?;
    // zlib expands at most about 1032:1.
    anyhow::ensure!(
        inner <= MAX_PAYLOAD && inner <= outer.saturating_mul(1032),
        "a histogram claims a payload of {inner} bytes (from {outer} compressed): corrupt"
    );
    Ok(())
}

/// Intervals written as they complete, by a thread of their own that owns the log file, so a run
/// holds a fixed number of histograms however long it is (a one-hour gap in a recording is 3,600
/// one-second intervals: kept in memory, 220 KB each, that was 790 MB). Histograms are recycled:
/// [`IntervalStream::push`] hands back an empty one of the same bounds, so a steady run allocates
/// none. The order and content of the log are those of the pushes.
#[derive(Debug)]
pub struct IntervalStream {
    tx: Option<std::sync::mpsc::SyncSender<(i64, Histogram<u64>)>>,
    back: std::sync::mpsc::Receiver<Histogram<u64>>,
    spare: Vec<Histogram<u64>>,
    template: Histogram<u64>,
    writer: Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
}

/// Histograms in flight between the run and the log writer (and so the most a run holds).
const IN_FLIGHT: usize = 4;

impl IntervalStream {
    /// Creates `path` and starts its writer; intervals are `interval` long, tagged `tag`, and
    /// histograms have `template`'s bounds.
    pub fn create(
        path: &Path,
        tag: &str,
        interval: Duration,
        template: &Histogram<u64>,
    ) -> anyhow::Result<IntervalStream> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let tag = Tag::new(tag)
            .context("a tag has no spaces, commas or colons")?
            .as_str()
            .to_owned();
        let (tx, rx) = std::sync::mpsc::sync_channel::<(i64, Histogram<u64>)>(IN_FLIGHT);
        let (back_tx, back) = std::sync::mpsc::sync_channel::<Histogram<u64>>(IN_FLIGHT + 1);
        let shown = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("hlog".into())
            .spawn(move || -> anyhow::Result<u64> {
                let mut file = std::io::BufWriter::new(file);
                let mut ser = V2DeflateSerializer::new();
                let Ok((base, first)) = rx.recv() else {
                    return Ok(0);
                };
                let start = UNIX_EPOCH + Duration::from_nanos(base.max(0) as u64);
                let mut w = IntervalLogWriterBuilder::new()
                    .add_comment("ringmaker latency log: values in ns")
                    .with_start_time(start)
                    .with_base_time(start)
                    .with_max_value_divisor(1.0)
                    .begin_log_with(&mut file, &mut ser)
                    .with_context(|| format!("writing the header of {shown}"))?;
                let tag = Tag::new(&tag).context("tag checked above")?;
                let mut written = 0u64;
                let mut next = Some((base, first));
                while let Some((t, mut h)) = next.take() {
                    let rel = Duration::from_nanos((t - base).max(0) as u64);
                    w.write_histogram(&h, rel, interval, Some(tag))
                        .map_err(|e| anyhow::anyhow!("writing a histogram to {shown}: {e:?}"))?;
                    written += 1;
                    h.reset();
                    // The run may have finished and dropped its end: then the histogram goes.
                    let _ = back_tx.try_send(h);
                    next = rx.recv().ok();
                }
                drop(w);
                std::io::Write::flush(&mut file).with_context(|| format!("flushing {shown}"))?;
                Ok(written)
            })
            .context("starting the latency log writer")?;
        Ok(IntervalStream {
            tx: Some(tx),
            back,
            spare: Vec::with_capacity(IN_FLIGHT + 1),
            template: Histogram::new_from(template),
            writer: Some(writer),
        })
    }

    /// Queues `hist` (the interval that started at `start_ns`) for writing and leaves an empty
    /// histogram of the same bounds in its place. Blocks only while four intervals wait.
    pub fn push(&mut self, start_ns: i64, hist: &mut Histogram<u64>) {
        while let Ok(h) = self.back.try_recv() {
            self.spare.push(h);
        }
        let empty = self
            .spare
            .pop()
            .unwrap_or_else(|| Histogram::new_from(&self.template));
        let full = std::mem::replace(hist, empty);
        if let Some(tx) = &self.tx {
            if tx.send((start_ns, full)).is_err() {
                // The writer failed; `finish` reports why.
                self.tx = None;
            }
        }
    }

    /// Writes what is queued, closes the file, and says how many intervals it holds.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.tx = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => anyhow::bail!("the latency log writer panicked"),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    fn hist() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
    }

    #[test]
    fn encoded_histograms_with_absurd_lengths_are_refused_before_decoding() {
        use hdrhistogram::serialization::Serializer as _;
        let mut h = hist();
        h.record(123).unwrap();
        let mut raw = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut raw).unwrap();
        check_encoded(&raw).unwrap();
        // Outer length larger than the bytes.
        let mut bad = raw.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(check_encoded(&bad).is_err());
        // Truncated.
        assert!(check_encoded(&raw[..6]).is_err());
        assert!(check_encoded(&raw[..12]).is_err());
        // A V2 header claiming a 2 GiB payload (valid otherwise: 3 digits, 1..1000), compressed
        // into a few bytes: hdrhistogram sized a 2 GiB buffer from it.
        let mut inner = Vec::new();
        inner.extend_from_slice(&0x1c84_9313u32.to_be_bytes());
        inner.extend_from_slice(&(2u32 << 30).to_be_bytes());
        inner.extend_from_slice(&0u32.to_be_bytes());
        inner.extend_from_slice(&3u32.to_be_bytes());
        inner.extend_from_slice(&1i64.to_be_bytes());
        inner.extend_from_slice(&1000i64.to_be_bytes());
        inner.extend_from_slice(&1.0f64.to_be_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &inner).unwrap();
        let zipped = z.finish().unwrap();
        let mut evil = Vec::new();
        evil.extend_from_slice(&raw[..4]);
        evil.extend_from_slice(&(zipped.len() as u32).to_be_bytes());
        evil.extend_from_slice(&zipped);
        let e = check_encoded(&evil).unwrap_err();
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    #[test]
    fn a_stream_writes_every_interval_in_order_and_recycles_histograms() {
        let dir = test_support::TempDir::new("hlog-stream");
        let path = dir.join("t.hlog");
        let mut s =
            IntervalStream::create(&path, "on_event", Duration::from_secs(1), &hist()).unwrap();
        let mut h = hist();
        for k in 0..100i64 {
            h.record((k + 1) as u64).unwrap();
            s.push(1_000_000_000 + k * 1_000_000_000, &mut h);
            assert!(h.is_empty(), "an empty one takes its place");
        }
        assert_eq!(s.finish().unwrap(), 100);
        let bytes = std::fs::read(&path).unwrap();
        let mut de = Deserializer::new();
        let mut maxes = Vec::new();
        for e in IntervalLogIterator::new(&bytes) {
            if let Ok(LogEntry::Interval(i)) = e {
                use base64::Engine as _;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .unwrap();
                let h: Histogram<u64> = de.deserialize(&mut &raw[..]).unwrap();
                maxes.push(h.max());
            }
        }
        assert_eq!(maxes, (1..=100u64).collect::<Vec<_>>());
    }
}
