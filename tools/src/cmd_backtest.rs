//! `ringmaker backtest`.

use anyhow::Context;
use engine::Config;
use indicatif::{ProgressBar, ProgressStyle};
use ringmaker::backtest::{self, QueueKind, Settings};
use ringmaker::record::JournalRecorder;
use ringmaker::report::Report;
use ringmaker::{hlog, plots};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `ringmaker backtest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Engine config (TOML).
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Recording files, read in the order given.
    #[arg(long, num_args = 1.., default_value = "tests/data/binance-usdm/btcusdt_20240808.gz")]
    data: Vec<PathBuf>,
    /// Output directory: report.json, plots/, latency.hlog, journal/.
    #[arg(long, default_value = "out/backtest")]
    out: PathBuf,
    /// Queue-position model of the simulated venue.
    #[arg(long, value_enum, default_value_t = Queue::RiskAverse)]
    queue: Queue,
    /// Power of the probabilistic queue model's share function.
    #[arg(long, default_value_t = 2.0)]
    queue_power: f64,
    /// Order-entry latency (engine → venue), microseconds.
    #[arg(long, default_value_t = 2_000)]
    entry_latency_us: u64,
    /// Response latency (venue → engine), microseconds.
    #[arg(long, default_value_t = 2_000)]
    response_latency_us: u64,
    /// Journal segment size, MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Queue {
    /// Only trades advance our place in the queue.
    RiskAverse,
    /// Level decreases also advance it, by a power-law share.
    Prob,
}

/// Removes a previous run's outputs from `out` (only files this command writes).
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
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading config {}", a.config.display()))?;
    let cfg = Config::from_toml(&text).with_context(|| format!("config {}", a.config.display()))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    clear_previous(&a.out)?;
    let settings = Settings {
        data: a.data.clone(),
        queue: match a.queue {
            Queue::RiskAverse => QueueKind::RiskAverse,
            Queue::Prob => QueueKind::Prob {
                power: a.queue_power,
            },
        },
        entry_latency_ns: (a.entry_latency_us * 1_000) as i64,
        response_latency_ns: (a.response_latency_us * 1_000) as i64,
        timer_interval_ns: 100_000_000,
    };
    let journal_dir = a.out.join("journal");
    let recorder = JournalRecorder::create(&journal_dir, &cfg, a.segment_mib << 20, 0)?;

    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} backtest {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    };
    let mut progress = |lines: u64| bar.set_message(format!("{lines} lines"));
    let started = std::time::Instant::now();
    let (outcome, recorder) = backtest::run(&cfg, &settings, recorder, &mut progress)?;
    bar.finish_and_clear();
    let appended = recorder.appended();
    recorder.close()?;
    let wall = started.elapsed();

    let symbol = cfg.instruments[0].instrument.symbol.to_string();
    let report = Report::new(&symbol, &outcome);
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(a.out.join("report.json"), json + "\n")
        .with_context(|| format!("writing {}", a.out.join("report.json").display()))?;
    plots::write_all(&outcome.metrics, &a.out.join("plots"))?;
    hlog::write(
        &a.out.join("latency.hlog"),
        "on_event",
        &outcome.intervals,
        Duration::from_secs(1),
    )?;
    print!("{}", report.summary());
    println!(
        "  run        {:.2} s wall, {:.2} M events/s; journal {} records",
        wall.as_secs_f64(),
        outcome.events as f64 / wall.as_secs_f64() / 1e6,
        appended
    );
    println!(
        "  wrote      {0}/report.json, {0}/plots/{{mid,position,pnl}}.png, {0}/latency.hlog, {0}/journal/",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
