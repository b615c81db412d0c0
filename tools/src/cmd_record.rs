//! `ringmaker record`: record the venue's live market data without trading, in the recordings'
//! format, for later backtests.

use crate::cmd_live::{self, LiveArgs};
use feeds::MarketSource as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `ringmaker record`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config whose instruments are recorded (one file set per instrument).
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Where to write: `OUT/<venue>/<symbol>_<YYYYMMDD>_<HH>.gz`, rotated hourly (UTC).
    #[arg(long)]
    out: PathBuf,
    /// The venue's REST base (what `ringmaker venue` prints as `rest=`); default: Binance
    /// production.
    #[arg(long, value_name = "URL")]
    venue_url: Option<String>,
    /// Trust only the certificates of this PEM file (default: the public web roots).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The diff-depth stream to record (`depth@100ms`, `depth`, `depth@250ms`, `depth@500ms`,
    /// `depth@0ms`).
    #[arg(long, default_value = "depth@100ms")]
    depth_stream: String,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
}

/// Records until the duration or a signal.
pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    if let Some(d) = a.duration {
        anyhow::ensure!(
            d.is_finite() && d > 0.0 && d < 1e9,
            "--duration must be a positive number of seconds, not {d}"
        );
    }
    let cfg = crate::cmd_common::load_config(&a.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    runtime::live::signals::register(&stop)?;
    let (mut feed, recording, counters) = cmd_live::open(
        &cfg.engine,
        &LiveArgs {
            venue_url: a.venue_url.clone(),
            testnet: false,
            ca_cert: a.ca_cert.clone(),
            depth_stream: a.depth_stream.clone(),
            record: Some(a.out.clone()),
            idle_backoff: cfg.live.cpu.idle == runtime::live::config::IdleMode::Backoff,
        },
        Arc::clone(&stop),
    )?;
    let started = Instant::now();
    if let Some(d) = a.duration {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("record-timer".into())
            .spawn(move || {
                let until = started + Duration::from_secs_f64(d);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                stop.store(true, Ordering::Relaxed);
            })?;
    }
    let clock = cmd_live::clock_line();
    // The feed handler runs too: it keeps the book synced (asking for snapshots after gaps, so
    // the recording holds them) and says how much of the time it was valid.
    let mut events = Vec::with_capacity(8192);
    while feed.next(&mut events).is_some() {
        events.clear();
    }
    let (valid_ns, span_ns) = feed.book_time();
    let sync = feed.handler().sync_totals();
    let lines = feed.source().counts().read;
    drop(feed);
    let rec = recording.map(|r| r.finish()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ringmaker record: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "  live feed        {}", counters.snapshot());
    let _ = writeln!(
        out,
        "  book             valid {:.1}% of the run, {} diffs applied, {} gaps, {} resyncs ({} inputs)",
        if span_ns > 0 { 100.0 * valid_ns as f64 / span_ns as f64 } else { 0.0 },
        sync.diffs_applied,
        sync.gaps,
        sync.resyncs,
        lines
    );
    let _ = writeln!(out, "  host clock       {clock}");
    let _ = writeln!(out, "  recorded         {rec}");
    Ok(if counters.snapshot().messages == 0 {
        let _ = writeln!(std::io::stderr(), "ringmaker record: nothing arrived");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
