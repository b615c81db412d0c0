//! What `ringmaker backtest` and `ringmaker run --paper` share: the simulated venue's options,
//! loading the config, and clearing a previous run's journal.

use anyhow::Context;
use feeds::{DataSpec, Key};
use runtime::backtest::QueueKind;
use runtime::config::RunConfig;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The config and the recordings a backtest (or a sweep of backtests) reads.
#[derive(clap::Args, Debug)]
pub struct InputArgs {
    /// Engine config (TOML).
    #[arg(long, default_value = "configs/default.toml")]
    pub config: std::path::PathBuf,
    /// Recording files: `PATH`, `SYMBOL=PATH` or `VENUE:SYMBOL=PATH` (e.g.
    /// `binance-spot:BTCUSDT=f.gz`). Each file is one instrument's: a plain PATH is bound by the
    /// symbol and flavour (futures / spot) its first lines show, or to the only instrument. The
    /// files of one instrument are read in the order given; the instruments' recordings are
    /// merged in time order.
    #[arg(long, num_args = 1.., default_value = "tests/data/binance-usdm/btcusdt_20240808.gz")]
    pub data: Vec<std::path::PathBuf>,
}

/// Where decoded recordings are kept between runs ([`runtime::event_cache`]).
#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    /// Directory of the event cache: the recordings decoded once, read back by the next
    /// backtest of the same recordings (default: `$XDG_CACHE_HOME/ringmaker/events`, else
    /// `~/.cache/ringmaker/events`).
    #[arg(long, value_name = "DIR")]
    event_cache: Option<std::path::PathBuf>,
    /// Decode the recordings every time: no event cache read or written.
    #[arg(long, conflicts_with = "event_cache")]
    no_event_cache: bool,
    /// Size limit of the event cache, MiB: after writing an entry, the least recently used are
    /// removed until the rest fit (only the cache's own `*.rmev` entries).
    #[arg(long, value_name = "MIB", default_value_t = runtime::event_cache::DEFAULT_MAX_MIB,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    event_cache_mib: u64,
}

impl CacheArgs {
    /// The cache these options name (`None`: off, or no home directory to put it in).
    pub fn cache(&self) -> Option<runtime::backtest::EventCache> {
        if self.no_event_cache {
            return None;
        }
        self.event_cache
            .clone()
            .or_else(runtime::event_cache::default_dir)
            .map(|dir| runtime::backtest::EventCache {
                dir,
                max_bytes: self.event_cache_mib << 20,
            })
    }
}

/// What to say of where a run's market events came from: a line for stdout (`None`: decoded
/// with no cache), and the cache's problems, each a warning for stderr.
pub fn data_source_line(source: &runtime::backtest::DataSource) -> Option<String> {
    use runtime::backtest::DataSource;
    match source {
        DataSource::Decoded => None,
        DataSource::Cache(p) => Some(format!("from the event cache {}", p.display())),
        DataSource::Cached { path, evicted } => Some(format!(
            "decoded, and kept in the event cache {}{}",
            path.display(),
            match evicted {
                0 => String::new(),
                n => format!(" ({n} older entries removed to stay within its size)"),
            }
        )),
    }
}

/// Simulated venue and journal options.
#[derive(clap::Args, Debug)]
pub struct VenueArgs {
    /// Queue-position model of the simulated venue.
    #[arg(long, value_enum, default_value_t = Queue::RiskAverse)]
    queue: Queue,
    /// Power of the probabilistic queue model's share function.
    #[arg(long, default_value_t = 2.0)]
    queue_power: f64,
    /// Order-entry latency (engine → venue), microseconds (at most an hour).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=MAX_LATENCY_US))]
    pub entry_latency_us: u64,
    /// Response latency (venue → engine), microseconds (at most an hour).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=MAX_LATENCY_US))]
    pub response_latency_us: u64,
    /// Journal segment size, MiB (1 to 1024).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub segment_mib: u64,
}

/// The largest simulated latency, µs: an hour. Beyond it the figures mean nothing, and ns of it
/// would near `i64`'s range.
const MAX_LATENCY_US: u64 = 3_600_000_000;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Queue {
    /// Only trades advance our place in the queue.
    RiskAverse,
    /// Level decreases also advance it, by a power-law share.
    Prob,
}

impl VenueArgs {
    /// The queue model chosen.
    pub fn queue(&self) -> QueueKind {
        match self.queue {
            Queue::RiskAverse => QueueKind::RiskAverse,
            Queue::Prob => QueueKind::Prob {
                power: self.queue_power,
            },
        }
    }

    /// Order-entry latency, ns.
    pub fn entry_ns(&self) -> i64 {
        (self.entry_latency_us * 1_000) as i64
    }

    /// Response latency, ns.
    pub fn response_ns(&self) -> i64 {
        (self.response_latency_us * 1_000) as i64
    }
}

/// Reads and validates a run config (the engine's sections and the runtime's).
pub fn load_config(path: &Path) -> anyhow::Result<RunConfig> {
    load_config_text(path).map(|(c, _)| c)
}

/// [`load_config`], with the text it was read from.
pub fn load_config_text(path: &Path) -> anyhow::Result<(RunConfig, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let cfg = RunConfig::from_toml(&text).with_context(|| format!("config {}", path.display()))?;
    Ok((cfg, text))
}

/// The `--data` arguments for the instruments of `cfg` (`PATH`, `SYMBOL=PATH` or
/// `VENUE:SYMBOL=PATH`; `X=` only when `X` names an instrument of `cfg`), each bound to its
/// instrument now — before any output is touched — and answered as explicit bindings (see
/// `feeds::binding`).
pub fn data_specs(args: &[PathBuf], cfg: &engine::Config) -> anyhow::Result<Vec<DataSpec>> {
    let keys = Key::of_config(cfg);
    let specs = args
        .iter()
        .map(|a| DataSpec::parse_for(a.as_os_str(), &keys))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(feeds::resolve(&keys, &specs)?)
}

/// Prints `warnings` on stderr; with `strict`, a run that has any fails (exit 1).
pub fn finish(command: &str, warnings: &[String], strict: bool) -> ExitCode {
    // Written, not `eprintln!`ed: a closed stderr must not turn a finished run into a panic.
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "ringmaker {command}: warning: {w}");
    }
    if strict && !warnings.is_empty() {
        let _ = writeln!(
            err,
            "ringmaker {command}: --strict: failing because of the warnings above"
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
