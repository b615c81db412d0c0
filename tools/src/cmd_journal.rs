//! `ringmaker replay`, `ringmaker journal {dump,verify,stats}`, `ringmaker hist`.

use anyhow::Context;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use journal::{Reader, RecoveryMode};
use runtime::record::{self, kind_by_name, kind_name, ReplayOutcome};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ringmaker replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Journal directory (not with --bus: the journal then comes from the archive, rebuilt in
    /// --into DIR).
    #[arg(required_unless_present = "bus")]
    dir: Option<PathBuf>,
    /// Replay a run from the bus's journal archive (JetStream) instead: the NATS server.
    #[arg(long, value_name = "URL", requires_all = ["engine", "into"])]
    bus: Option<String>,
    /// With --bus: the engine whose run to replay.
    #[arg(long, value_name = "NAME")]
    engine: Option<String>,
    /// With --bus: the run (as `ringmaker run` printed it, `START-ID`); the engine's newest by
    /// default.
    #[arg(long, value_name = "RUN")]
    run: Option<String>,
    /// With --bus: the subjects' prefix (`[bus] prefix`).
    #[arg(long, default_value = "ringmaker")]
    prefix: String,
    /// With --bus: a new (or empty) directory to rebuild the journal in; it is kept.
    #[arg(long, value_name = "DIR")]
    into: Option<PathBuf>,
}

/// `ringmaker journal ...`.
#[derive(clap::Subcommand, Debug)]
pub enum JournalCmd {
    /// One readable line per record.
    Dump {
        /// Journal directory.
        dir: PathBuf,
        /// Only records of this kind: config, event, batch_end, intent, mode.
        #[arg(long)]
        kind: Option<String>,
        /// Only records from this sequence number on.
        #[arg(long, default_value_t = 0)]
        from_seq: u64,
    },
    /// Check every header and CRC; exit 1 with the location of the first corruption.
    Verify {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Counts per kind, time span, sizes.
    Stats {
        /// Journal directory.
        dir: PathBuf,
    },
}

/// Arguments of `ringmaker hist`.
#[derive(clap::Args, Debug)]
pub struct HistArgs {
    /// An HdrHistogram interval log (`.hlog`).
    file: PathBuf,
}

pub fn replay(a: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let dir = match (&a.bus, &a.dir) {
        (Some(url), dir) => {
            anyhow::ensure!(
                dir.is_none(),
                "with --bus the journal comes from the archive: give --into DIR, not a directory"
            );
            let (engine, into) = (
                a.engine.as_deref().unwrap_or_default(),
                a.into.clone().unwrap_or_default(),
            );
            let got = runtime::bus::fetch_journal(url, &a.prefix, engine, a.run.as_deref(), &into)?;
            outln!(
                "rebuilt run {} of {engine} from the archive: {} records in {} segment(s), {} \
                 message(s), in {}",
                got.run,
                got.records,
                got.segments,
                got.messages,
                into.display()
            )?;
            into
        }
        (None, Some(d)) => d.clone(),
        (None, None) => {
            anyhow::bail!("give a journal directory, or --bus URL --engine NAME --into DIR")
        }
    };
    match record::replay(&dir)? {
        ReplayOutcome::Identical {
            events,
            intents,
            reloads,
            ending,
            torn_tail,
        } => {
            outln!("identical: {events} events, {intents} intents")?;
            if reloads > 0 {
                outln!("hot reloads applied at their journaled points: {reloads}")?;
            }
            // Identical as far as it goes: say so when the journal's end is not a clean close.
            if let Some(t) = torn_tail {
                outln!(
                    "torn tail (a crash mid-append): segment {} offset {}, after seq {}",
                    t.segment,
                    t.offset,
                    t.last_good_seq
                )?;
            }
            if let Some(p) = ending.problem() {
                outln!("{p}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ReplayOutcome::Diverged { seq, expected, got } => {
            outln!("diverged at sequence {seq}")?;
            outln!("  expected: {expected}")?;
            outln!("  got:      {got}")?;
            Ok(ExitCode::from(1))
        }
    }
}

/// The last complete record of the journal in `dir`: kind, sequence number, payload.
fn last_record(dir: &std::path::Path) -> anyhow::Result<Option<(u16, u64, Vec<u8>)>> {
    let reader = Reader::open(dir, RecoveryMode::TolerateTornTail)?;
    let mut last = None;
    for rec in reader.records() {
        let rec = rec?;
        // Only a close record's payload matters.
        let payload = if rec.kind == record::KIND_CLOSE {
            rec.payload.to_vec()
        } else {
            Vec::new()
        };
        last = Some((rec.kind, rec.seq, payload));
    }
    Ok(last)
}

pub fn journal(cmd: &JournalCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        JournalCmd::Dump {
            dir,
            kind,
            from_seq,
        } => {
            // `event` and `events` both select every input (kinds 2 and 6).
            let want = match kind {
                Some(k) => Some(
                    match kind_by_name(k).with_context(|| {
                        format!("unknown kind {k:?}: config, event, batch_end, intent, mode")
                    })? {
                        record::KIND_EVENTS => record::KIND_EVENT,
                        k => k,
                    },
                ),
                None => None,
            };
            let reader = Reader::open(dir, RecoveryMode::TolerateTornTail)
                .with_context(|| format!("opening {}", dir.display()))?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for rec in reader.records() {
                let rec = rec?;
                // `--kind event` also selects events records (kind 6): both are inputs.
                let kind = if rec.kind == record::KIND_EVENTS {
                    record::KIND_EVENT
                } else {
                    rec.kind
                };
                if rec.seq < *from_seq || want.is_some_and(|k| k != kind) {
                    continue;
                }
                // One line per input: the events of an events record share its sequence
                // number and show their own local time.
                let line = match record::events_in(rec.kind, rec.payload)
                    .filter(|_| rec.kind == record::KIND_EVENTS)
                {
                    Some(evs) => {
                        let mut lines = String::new();
                        for ev in evs {
                            let (t, what) = match ev {
                                Ok(ev) => (ev.local_time_ns, record::describe_event(&ev)),
                                Err(e) => (rec.timestamp_ns, format!("{e:#}")),
                            };
                            lines.push_str(&format!("{}\t{t}\tevent\t{what}\n", rec.seq));
                        }
                        lines
                    }
                    None => format!(
                        "{}\t{}\t{}\t{}\n",
                        rec.seq,
                        rec.timestamp_ns,
                        kind_name(rec.kind),
                        record::describe(rec.kind, rec.payload)
                    ),
                };
                if let Err(e) = out.write_all(line.as_bytes()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::SUCCESS);
                    }
                    return Err(e.into());
                }
            }
            if let Some(t) = reader.torn_tail()? {
                errln!(
                    "torn tail: segment {} offset {} after seq {}",
                    t.segment,
                    t.offset,
                    t.last_good_seq
                );
            }
            match out.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r?,
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCmd::Verify { dir } => match journal::verify(dir) {
            Ok(s) => {
                let ending = record::Ending::of_last(
                    last_record(dir)?
                        .as_ref()
                        .map(|(k, q, p)| (*k, *q, p.as_slice())),
                );
                let word = if ending == record::Ending::Clean && s.torn_tail.is_none() {
                    "ok"
                } else {
                    "incomplete"
                };
                outln!(
                    "{word}: {} records in {} segments, last seq {}",
                    s.records,
                    s.segments,
                    s.last_seq
                )?;
                if let Some(t) = s.torn_tail {
                    outln!(
                        "torn tail (a crash mid-append): segment {} offset {}, after seq {}",
                        t.segment,
                        t.offset,
                        t.last_good_seq
                    )?;
                }
                match ending.problem() {
                    Some(p) => {
                        outln!("{p}")?;
                        Ok(ExitCode::from(1))
                    }
                    None => Ok(ExitCode::SUCCESS),
                }
            }
            Err(e) => {
                outln!("corrupt: {e}")?;
                Ok(ExitCode::from(1))
            }
        },
        JournalCmd::Stats { dir } => {
            let s = journal::verify(dir).with_context(|| format!("reading {}", dir.display()))?;
            outln!("segments      {}", s.segments)?;
            outln!("records       {} (last seq {})", s.records, s.last_seq)?;
            outln!(
                "bytes         {} on disk, {} payload",
                s.record_bytes,
                s.payload_bytes
            )?;
            // The span of what the engine saw: the config record (timestamp 0) is left out.
            let reader = Reader::open(dir, RecoveryMode::TolerateTornTail)?;
            let (mut first, mut last) = (None::<i64>, None::<i64>);
            for rec in reader.records() {
                let rec = rec?;
                if rec.kind != record::KIND_CONFIG {
                    first.get_or_insert(rec.timestamp_ns);
                    last = Some(rec.timestamp_ns);
                }
            }
            if let (Some(a), Some(b)) = (first, last) {
                outln!(
                    "time span     {:.3} s ({a} .. {b} ns)",
                    (b - a) as f64 / 1e9
                )?;
            }
            outln!("per kind:")?;
            for k in &s.per_kind {
                let events = if k.kind == record::KIND_EVENTS {
                    format!(" ({} events)", k.payload_bytes / engine::Event::SIZE as u64)
                } else {
                    String::new()
                };
                outln!(
                    "  {:<10} {:>10} records {:>12} payload bytes{events}",
                    kind_name(k.kind),
                    k.records,
                    k.payload_bytes
                )?;
            }
            if let Some(t) = s.torn_tail {
                outln!(
                    "torn tail     segment {} offset {} after seq {}",
                    t.segment,
                    t.offset,
                    t.last_good_seq
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn hist(a: &HistArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let mut per_tag: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| {
            anyhow::anyhow!(
                "{} is not an HdrHistogram interval log ({e:?})",
                a.file.display()
            )
        })?;
        if let LogEntry::Interval(ilh) = entry {
            let raw = base64_decode(ilh.encoded_histogram())
                .with_context(|| "an interval's histogram is not valid base64")?;
            runtime::hlog::check_encoded(&raw)
                .with_context(|| format!("in {}", a.file.display()))?;
            let h: Histogram<u64> = de
                .deserialize(&mut &raw[..])
                .map_err(|e| anyhow::anyhow!("decoding a histogram: {e:?}"))?;
            let tag = ilh
                .tag()
                .map_or("(untagged)".to_string(), |t| t.as_str().to_string());
            match per_tag.get_mut(&tag) {
                Some(acc) => acc
                    .add(&h)
                    .map_err(|e| anyhow::anyhow!("merging histograms: {e:?}"))?,
                None => {
                    per_tag.insert(tag, h);
                }
            }
        }
    }
    anyhow::ensure!(!per_tag.is_empty(), "no histograms in {}", a.file.display());
    outln!(
        "{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "tag",
        "count",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "p99.99",
        "max"
    )?;
    for (tag, h) in &per_tag {
        outln!(
            "{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            tag,
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(s.trim())?)
}
