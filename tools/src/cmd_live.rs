//! The live market data of `ringmaker run --market live` and `ringmaker record`: a
//! [`feeds::net::NetSource`] for the config's instruments (Binance production, or the venue a
//! `--venue-url` names), optionally recorded.

use anyhow::Context as _;
use feeds::net::{routes::Endpoints, NetInstrument, NetOptions, NetSource};
use feeds::record::{RecordOptions, Recorder, RecorderThread, ThreadOptions, ThreadReport};
use feeds::{FeedHandler, MarketFeed};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Where the live data comes from and what to do with it.
#[derive(Debug, Clone)]
pub struct LiveArgs {
    /// The venue's REST base (`None`: Binance production).
    pub venue_url: Option<String>,
    /// Trust only this PEM file's certificates (`None`: the web roots).
    pub ca_cert: Option<PathBuf>,
    /// Binance's USDⓈ-M testnet streams (when `venue_url` is `None`).
    pub testnet: bool,
    /// The diff-depth stream kind.
    pub depth_stream: String,
    /// Record under this directory.
    pub record: Option<PathBuf>,
    /// Sleep when idle rather than spin (`[cpu] idle = "backoff"`).
    pub idle_backoff: bool,
}

/// A running recorder.
#[derive(Debug)]
pub struct Recording {
    thread: RecorderThread,
    dir: PathBuf,
}

impl Recording {
    /// Finishes the files; one line for the summary.
    pub fn finish(self) -> String {
        let ThreadReport {
            result,
            errors,
            queue,
        } = self.thread.finish();
        let (files, failed) = match &result {
            Ok(s) => (s.files.len(), 0),
            Err(e) => (e.summary.files.len(), e.errors.len()),
        };
        let mut line = format!(
            "{files} file(s) under {}, {} message(s) dropped behind",
            self.dir.display(),
            queue.dropped_full
        );
        if failed > 0 || !errors.is_empty() {
            line.push_str(&format!(
                "; {} error(s), first: {}",
                failed + errors.len(),
                errors
                    .first()
                    .map(|e| e.to_string())
                    .or_else(|| result.err().map(|e| e.to_string()))
                    .unwrap_or_default()
            ));
        }
        line
    }
}

/// The host clock, in one line: whether `adjtimex` says it is synchronised, its error bounds,
/// the PTP hardware clocks.
pub fn clock_line() -> String {
    match feeds::net::clockcheck::host_clock() {
        Ok(h) => {
            let ptp = if h.ptp.is_empty() {
                "none".to_string()
            } else {
                h.ptp
                    .iter()
                    .map(|p| match &p.clock_name {
                        Some(c) => format!("{} ({c})", p.name),
                        None => p.name.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{} (adjtimex: maxerror {} us, esterror {} us); PTP clocks: {ptp}",
                if h.state.synchronised {
                    "synchronised"
                } else {
                    "NOT synchronised"
                },
                h.state.maxerror_us,
                h.state.esterror_us
            )
        }
        Err(e) => format!("unknown ({e})"),
    }
}

/// The live feed for `cfg` (not yet connected: it connects on its first read), and the recorder
/// if `args.record` asks for one.
pub fn open(
    cfg: &engine::Config,
    args: &LiveArgs,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(
    MarketFeed<NetSource>,
    Option<Recording>,
    Arc<feeds::net::NetCounters>,
)> {
    let tls = feeds::net::tls::client_config(args.ca_cert.as_deref())?;
    let mut opts = NetOptions::new(tls);
    if args.testnet && args.venue_url.is_none() {
        opts.endpoints = vec![Endpoints {
            rest: gateway::binance::session::OrderEntryEndpoints::testnet().rest,
            ws: "wss://fstream.binancefuture.com".into(),
            venue: engine::VenueFlavour::BinanceUsdm,
        }];
    }
    if let Some(url) = &args.venue_url {
        opts.endpoints = engine::VenueFlavour::ALL
            .into_iter()
            .map(|v| Endpoints::from_rest_url(url, v))
            .collect::<Result<_, _>>()
            .with_context(|| format!("--venue-url {url}"))?;
    }
    anyhow::ensure!(
        feeds::net::routes::stream_route(&format!("x@{}", args.depth_stream))
            .is_some_and(|_| args.depth_stream.starts_with("depth")),
        "--depth-stream {}: not a depth stream (depth, depth@100ms, depth@250ms, depth@500ms, depth@0ms)",
        args.depth_stream
    );
    opts.depth_stream = args.depth_stream.clone();
    if args.idle_backoff {
        opts.idle_sleep = Some(std::time::Duration::from_micros(50));
    }
    let insts = NetInstrument::of_config(cfg);
    let mut source = NetSource::new(&insts, opts, stop)?;
    let recording = match &args.record {
        Some(dir) => {
            let keys: Vec<_> = insts.iter().map(|i| (i.id, i.symbol, i.venue)).collect();
            let rec = Recorder::create(dir, &keys, RecordOptions::default())
                .with_context(|| format!("--record {}", dir.display()))?;
            let thread = RecorderThread::spawn(rec, ThreadOptions::default())?;
            source.record_to(thread.sender());
            Some(Recording {
                thread,
                dir: dir.clone(),
            })
        }
        None => None,
    };
    let counters = source.counters();
    Ok((
        MarketFeed::new(source, FeedHandler::from_config(cfg)),
        recording,
        counters,
    ))
}
