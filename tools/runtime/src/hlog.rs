//! HdrHistogram interval logs (`latency.hlog`): the standard text format, V2 compressed
//! histograms, readable by HdrHistogram's tools (`HistogramLogProcessor`) and `ringmaker hist`.

use anyhow::Context;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Writes `(start ns, histogram)` intervals, each `interval` long, tagged `tag`. Timestamps are
/// relative to the first interval's start; the log's start time is that start (simulated time).
pub fn write(
    path: &Path,
    tag: &str,
    intervals: &[(i64, Histogram<u64>)],
    interval: Duration,
) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let base = intervals.first().map_or(0, |(t, _)| *t);
    let start = UNIX_EPOCH + Duration::from_nanos(base.max(0) as u64);
    let mut ser = V2DeflateSerializer::new();
    let mut w = IntervalLogWriterBuilder::new()
        .add_comment("ringmaker latency log: values in ns")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1.0)
        .begin_log_with(&mut file, &mut ser)
        .context("writing the log header")?;
    let tag = Tag::new(tag).context("a tag has no spaces, commas or colons")?;
    for (t, h) in intervals {
        let rel = Duration::from_nanos((t - base).max(0) as u64);
        w.write_histogram(h, rel, interval, Some(tag))
            .map_err(|e| anyhow::anyhow!("writing a histogram: {e:?}"))?;
    }
    drop(w);
    std::io::Write::flush(&mut file).context("flushing the log")?;
    Ok(())
}
