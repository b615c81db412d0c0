//! `ringmaker run --paper`: the live-shaped pipeline (pinned threads, disruptor rings) on a
//! recording, against the simulated venue. See `ringmaker::live`.

use anyhow::Context;
use engine::Config;
use ringmaker::backtest::QueueKind;
use ringmaker::live::{self, signals, Settings};
use ringmaker::record::JournalRecorder;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Arguments of `ringmaker run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Paper trading: a recording stands in for the venue's feed and the simulated venue for
    /// order entry. (Live order entry is not built yet; this flag is required.)
    #[arg(long)]
    paper: bool,
    /// Engine config (TOML), with optional [cpu] and [rings] sections.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Recording files, read in the order given.
    #[arg(long, num_args = 1.., default_value = "tests/data/binance-usdm/btcusdt_20240808.gz")]
    data: Vec<PathBuf>,
    /// Replay speed: 1 = recorded pace, 10 = ten times faster, 0 = flat out.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Stop after this many seconds of recording time.
    #[arg(long)]
    duration: Option<f64>,
    /// Output directory: journal/, latency.hlog.
    #[arg(long, default_value = "out/paper")]
    out: PathBuf,
    /// Queue-position model of the simulated venue.
    #[arg(long, value_enum, default_value_t = Queue::RiskAverse)]
    queue: Queue,
    /// Power of the probabilistic queue model's share function.
    #[arg(long, default_value_t = 2.0)]
    queue_power: f64,
    /// Order-entry latency (engine → venue), microseconds of replay time.
    #[arg(long, default_value_t = 2_000)]
    entry_latency_us: u64,
    /// Response latency (venue → engine), microseconds of replay time.
    #[arg(long, default_value_t = 2_000)]
    response_latency_us: u64,
    /// Journal segment size, MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Seconds between status lines (0: none).
    #[arg(long, default_value_t = 5)]
    status_secs: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Queue {
    /// Only trades advance our place in the queue.
    RiskAverse,
    /// Level decreases also advance it, by a power-law share.
    Prob,
}

/// Removes a previous run's journal from `out` (only files ringmaker writes).
fn clear_previous(out: &Path) -> anyhow::Result<()> {
    let journal = out.join("journal");
    if journal.exists() {
        for entry in std::fs::read_dir(&journal)? {
            let p = entry?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ours = name.starts_with("seg-") || name == ".lock" || name.ends_with(".tmp");
            anyhow::ensure!(
                ours,
                "{} holds {name}, which ringmaker did not write; choose another --out",
                journal.display()
            );
        }
        std::fs::remove_dir_all(&journal)
            .with_context(|| format!("removing the previous {}", journal.display()))?;
    }
    Ok(())
}

pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        a.paper,
        "only paper mode exists yet: add --paper (live order entry is not built)"
    );
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading config {}", a.config.display()))?;
    let cfg = Config::from_toml(&text).with_context(|| format!("config {}", a.config.display()))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    clear_previous(&a.out)?;
    let stop = Arc::new(AtomicBool::new(false));
    signals::register(&stop)?;
    let settings = Settings {
        data: a.data.clone(),
        speed: a.speed,
        max_span_ns: a.duration.map(|s| (s * 1e9) as i64),
        queue: match a.queue {
            Queue::RiskAverse => QueueKind::RiskAverse,
            Queue::Prob => QueueKind::Prob {
                power: a.queue_power,
            },
        },
        entry_latency_ns: (a.entry_latency_us * 1_000) as i64,
        response_latency_ns: (a.response_latency_us * 1_000) as i64,
        timer_interval_ns: 100_000_000,
        hlog: a.out.join("latency.hlog"),
        hlog_interval: Duration::from_secs(1),
        status_every: (a.status_secs > 0).then(|| Duration::from_secs(a.status_secs)),
        stop,
    };
    let created_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let recorder = JournalRecorder::create(
        &a.out.join("journal"),
        &cfg,
        a.segment_mib << 20,
        created_ns,
    )?;
    let (summary, recorder) = live::run(&cfg, &settings, recorder)?;
    let closed = recorder.close();
    print!("{}", summary.render());
    println!(
        "  wrote            {0}/journal/, {0}/latency.hlog",
        a.out.display()
    );
    closed.context("flushing the journal")?;
    if summary.cause == live::StopCause::JournalFailed {
        anyhow::bail!("the journal stopped accepting records; every record before is intact");
    }
    Ok(ExitCode::SUCCESS)
}
