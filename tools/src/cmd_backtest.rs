//! `ringmaker backtest`.

use crate::cmd_common::{
    data_source_line, data_specs, finish, load_config, CacheArgs, InputArgs, VenueArgs,
};
use crate::out_dir::Staged;
use crate::plots;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use runtime::backtest::{self, Settings};
use runtime::host::Threaded;
use runtime::record::{JournalRecorder, Keep};
use runtime::report::Report;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `ringmaker backtest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// Output directory: report.json, plots/, latency.hlog, journal/.
    #[arg(long, default_value = "out/backtest")]
    out: PathBuf,
    #[command(flatten)]
    venue: VenueArgs,
    #[command(flatten)]
    cache: CacheArgs,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Exit 1 when the run is doubtful (e.g. the book was valid for less than half of it).
    #[arg(long)]
    strict: bool,
}

pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    let run_cfg = load_config(&a.input.config)?;
    let cfg = &run_cfg.engine;
    let data = data_specs(&a.input.data, cfg)?;
    // Built beside the previous run, swapped in at the end only if everything succeeded.
    let staged = Staged::begin(&a.out, &["journal", "report.json", "plots", "latency.hlog"])?;
    let dir = staged.path().to_path_buf();
    let settings = Settings {
        data,
        queue: a.venue.queue(),
        entry_latency_ns: a.venue.entry_ns(),
        response_latency_ns: a.venue.response_ns(),
        timer_interval_ns: 100_000_000,
        latency_log: Some(dir.join("latency.hlog")),
        event_cache: a.cache.cache(),
    };
    let journal_dir = dir.join("journal");
    // The journal is written on a thread of its own ([`Threaded`]): the same records.
    let recorder = Threaded::spawn(
        JournalRecorder::create_run(
            &journal_dir,
            &run_cfg,
            a.venue.segment_mib << 20,
            0,
            Keep::Reproducible,
        )?,
        "journal",
    )
    .context("starting the journal writer")?;

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
    let (outcome, recorder) = backtest::run(cfg, &settings, recorder, &mut progress)?;
    bar.finish_and_clear();
    let recorder = recorder.into_inner()?;
    let (appended, journaled_events) = (recorder.appended(), recorder.events());
    recorder.close()?;
    let wall = started.elapsed();

    let report = Report::new(cfg, &outcome);
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(dir.join("report.json"), json + "\n")
        .with_context(|| format!("writing {}", dir.join("report.json").display()))?;
    let keys = runtime::report::keys(cfg);
    let mut plot_dirs = plots::write_each(&outcome.metrics, &keys, &dir.join("plots"))?;
    plot_dirs.extend(plots::write_hedging(&outcome.hedging, &dir.join("plots"))?);
    staged.commit()?;

    outln!("{}", report.summary().trim_end())?;
    outln!(
        "  run        {:.2} s wall, {:.2} M events/s; journal {} records ({} events)",
        wall.as_secs_f64(),
        outcome.events as f64 / wall.as_secs_f64() / 1e6,
        appended,
        journaled_events
    )?;
    if let Some(line) = data_source_line(&outcome.data_source) {
        outln!("  events     {line}")?;
    }
    for p in &outcome.cache_problems {
        eprintln!("warning: {p}");
    }
    outln!(
        "  wrote      {0}/report.json, {1}, {0}/latency.hlog, {0}/journal/",
        a.out.display(),
        plot_dirs
            .iter()
            .map(|(d, files)| {
                let names: Vec<&str> = files.iter().map(|f| f.trim_end_matches(".png")).collect();
                format!("{}/{d}/{{{}}}.png", a.out.display(), names.join(","))
            })
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(finish("backtest", &report.warnings, a.strict))
}
