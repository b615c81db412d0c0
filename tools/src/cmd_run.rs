//! `ringmaker run --paper`: the live-shaped pipeline (pinned threads, disruptor rings) on a
//! recording or live market data, against the simulated venue; `ringmaker run --live`: the same
//! pipeline on live market data with live order entry at Binance USDⓈ-M
//! (`gateway::binance::session`). See `runtime::live`.

use crate::cmd_common::{data_specs, finish, load_config_text, VenueArgs};
use crate::out_dir::Staged;
use anyhow::Context as _;
use runtime::live::{self, signals, Settings};
use runtime::record::{JournalRecorder, Keep};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Arguments of `ringmaker run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Paper trading: a recording (or, with `--market live`, the venue's live streams) and the
    /// simulated venue for order entry.
    #[arg(long, conflicts_with = "live")]
    paper: bool,
    /// Live trading: the venue's live streams and real orders over its WebSocket API, with the
    /// API key from the environment (`RINGMAKER_API_KEY` and `RINGMAKER_API_SECRET`, or
    /// `RINGMAKER_ED25519_KEY_FILE`). The end (`--duration`, SIGINT, SIGTERM) cancels
    /// everything and waits for the answers. Binance production unless `--testnet`,
    /// `--venue-url` or `[venue] rest_url` names another venue.
    #[arg(long)]
    live: bool,
    /// With `--live`: Binance's USDⓈ-M testnet (market data and order entry).
    #[arg(long, requires = "live")]
    testnet: bool,
    /// Run config (TOML): the engine's sections, and optional `cpu` and `rings` tables.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Recording files: `PATH`, `SYMBOL=PATH` or `VENUE:SYMBOL=PATH` (e.g.
    /// `binance-spot:BTCUSDT=f.gz`). Each file is one instrument's: a plain PATH is bound by the
    /// symbol and flavour (futures / spot) its first lines show, or to the only instrument. The
    /// files of one instrument are read in the order given; the instruments' recordings are
    /// merged in time order.
    #[arg(long, num_args = 1.., default_value = "tests/data/binance-usdm/btcusdt_20240808.gz")]
    data: Vec<PathBuf>,
    /// Replay speed: 1 = recorded pace, 10 = ten times faster, 0 = flat out.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Stop after this many seconds of recording time (of receive time with `--market live`).
    #[arg(long)]
    duration: Option<f64>,
    /// Where the market data comes from: `recording` (`--data`), or `live`: the venue's
    /// streams over TLS WebSockets (Binance production, or `--venue-url`), shadow trading
    /// against the simulated venue.
    #[arg(long, value_enum, default_value_t = Market::Recording)]
    market: Market,
    /// With `--market live`: the venue's REST base (what `ringmaker venue` prints as `rest=`,
    /// e.g. `https://127.0.0.1:PORT`); the stream URLs follow by Binance's paths. Default:
    /// Binance production.
    #[arg(long, value_name = "URL")]
    venue_url: Option<String>,
    /// With `--market live`: trust only the certificates of this PEM file (the `cert=` that
    /// `ringmaker venue` prints). Default: the public web roots.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// With `--market live`: the diff-depth stream to follow (`depth`, `depth@100ms`,
    /// `depth@250ms`, `depth@500ms`, or the undocumented `depth@0ms`).
    #[arg(long, default_value = "depth@100ms")]
    depth_stream: String,
    /// With `--market live`: record what arrived, as received, under `DIR/<venue>/` in the
    /// recordings' format (`<symbol>_<YYYYMMDD>_<HH>.gz`, rotated hourly), for later backtests.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Output directory: journal/, latency.hlog.
    #[arg(long, default_value = "out/paper")]
    out: PathBuf,
    #[command(flatten)]
    venue: VenueArgs,
    /// Seconds between status lines (0: none).
    #[arg(long, default_value_t = 5)]
    status_secs: u64,
    /// Exit 1 when the run is doubtful (the book valid for less than half of it, quoting
    /// halted by a full output ring).
    #[arg(long)]
    strict: bool,
    /// The firm's NATS server (`nats://HOST:PORT`): heartbeats and firm-wide control on the
    /// bus; overrides `[bus] url`.
    #[arg(long, value_name = "URL")]
    bus: Option<String>,
    /// This engine's name on the bus; overrides `[bus] engine`.
    #[arg(long, value_name = "NAME")]
    engine: Option<String>,
    /// With `--live` on a bus: a hot standby for the engine name. It follows the leader's
    /// journal from the bus's archive and replays it through its own engine (sending nothing);
    /// when the leader's lease lapses (`[bus] lease_ms` after its last renewal) it takes the
    /// lease, continues the leader's journal, reconciles with the venue and quotes. A live run
    /// on a bus without `--standby` refuses to start while another run holds the lease.
    #[arg(long, requires = "live")]
    standby: bool,
}

impl Args {
    /// Whether `--market` was given on the command line (clap fills the default otherwise).
    fn market_given(&self) -> bool {
        std::env::args().any(|a| a == "--market" || a.starts_with("--market="))
    }
}

/// Where `run` takes its market data from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Market {
    /// The `--data` recordings.
    Recording,
    /// The venue's live streams.
    Live,
}

pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    if let Some(d) = a.duration {
        anyhow::ensure!(
            d.is_finite() && d > 0.0 && d * 1e9 < i64::MAX as f64,
            "--duration must be a positive number of seconds, not {d}"
        );
    }
    anyhow::ensure!(
        a.paper || a.live,
        "say how orders are handled: --paper (the simulated venue) or --live (real orders)"
    );
    anyhow::ensure!(
        !(a.live && a.market == Market::Recording && a.market_given()),
        "--live trades on the venue's live streams: leave out --market recording"
    );
    let (mut cfg, config_text) = load_config_text(&a.config)?;
    if a.bus.is_some() {
        cfg.live.bus.url = a.bus.clone();
    }
    if a.engine.is_some() {
        cfg.live.bus.engine = a.engine.clone();
    }
    cfg.live
        .bus
        .check()
        .context("the bus (--bus / --engine, or [bus] in the config)")?;
    if let Err((field, value, rule)) = cfg.live.firm.check_engine(
        cfg.live
            .bus
            .url
            .as_ref()
            .and(cfg.live.bus.engine.as_deref()),
    ) {
        anyhow::bail!("invalid {field} = {value}: {rule}");
    }
    let cfg = cfg;
    let live_market = a.market == Market::Live || a.live;
    // A live run on a bus leads its engine name by a lease, and its gateway sends only while
    // the lease is valid (`runtime::lease`).
    let bus_url = cfg.live.bus.url.clone().filter(|_| a.live);
    anyhow::ensure!(
        !a.standby || bus_url.is_some(),
        "--standby follows a leader over the bus: give --bus URL and --engine NAME (or [bus] url \
         and engine)"
    );
    anyhow::ensure!(
        !a.standby || cfg.live.bus.archive,
        "--standby follows the leader's journal from the bus's archive: [bus] archive must be on"
    );
    let gate = bus_url
        .is_some()
        .then(|| Arc::new(gateway::SendGate::closed()));
    let identity = runtime::bus::new_run();
    let run_token = runtime::archive::run_token(identity.1, identity.0);
    // With --live: the order-entry session, set up before anything is written (a missing key
    // or a bad endpoint ends the command here). A standby's starts when it takes over: until
    // then it sends nothing at all.
    let (venue_url, mut order_entry, mut standby_creds) = if a.live {
        let creds = gateway::binance::sign::Credentials::from_env()
            .context("--live needs the account's API key in the environment")?;
        if a.standby {
            let url = a
                .venue_url
                .clone()
                .or_else(|| cfg.live.order_entry.rest_url.clone());
            (url, None, Some(creds))
        } else {
            let (url, session) = live::order_entry::session(
                &cfg,
                a.venue_url.as_deref(),
                a.ca_cert.as_deref(),
                a.testnet,
                creds,
                gate.clone().map(|gate| live::order_entry::Leading {
                    gate,
                    session_tag: identity.0,
                    inherited: None,
                }),
            )?;
            (url, Some(session), None)
        }
    } else {
        (a.venue_url.clone(), None, None)
    };
    anyhow::ensure!(
        live_market || (a.venue_url.is_none() && a.ca_cert.is_none() && a.record.is_none()),
        "--venue-url, --ca-cert and --record go with --market live"
    );
    let data = if live_market {
        Vec::new()
    } else {
        data_specs(&a.data, &cfg.engine)?
    };
    // Built beside the previous run, swapped in only if the run succeeds (a failed session keeps
    // its journal apart, as OUT/failed-<pid>/).
    let staged = Staged::begin(&a.out, &["journal", "latency.hlog", "report.json"])?;
    let dir = staged.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    signals::register(&stop)?;
    let reload = Arc::new(AtomicBool::new(false));
    signals::register_reload(&reload)?;
    if let (true, Some(d)) = (live_market, a.duration) {
        // Live, `--duration` ends the run at the first message past it; a venue that has gone
        // silent sends none, so the wall clock ends it too (a second later).
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("duration".into())
            .spawn(move || {
                let until = std::time::Instant::now() + Duration::from_secs_f64(d + 1.0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && std::time::Instant::now() < until
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            })?;
    }
    let settings = Settings {
        data,
        speed: a.speed,
        live: live_market,
        max_span_ns: a.duration.map(|s| (s * 1e9) as i64),
        queue: a.venue.queue(),
        entry_latency_ns: a.venue.entry_ns(),
        response_latency_ns: a.venue.response_ns(),
        timer_interval_ns: 100_000_000,
        hlog: dir.join("latency.hlog"),
        hlog_interval: Duration::from_secs(1),
        status_every: (a.status_secs > 0).then(|| Duration::from_secs(a.status_secs)),
        stop,
        ops: live::OpsSettings {
            control_dir: Some(a.out.clone()),
            config_path: Some(std::path::absolute(&a.config).unwrap_or_else(|_| a.config.clone())),
            config_text,
            reload: Some(reload),
            journal_dir: Some(dir.join("journal")),
        },
    };
    let created_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut keeper = None;
    let mut begun = None;
    let recorder = match (&bus_url, &gate, a.standby) {
        (Some(url), Some(gate), true) => {
            let bus = &cfg.live.bus;
            let engine = bus.engine.clone().unwrap_or_default();
            let took = match runtime::standby::follow(runtime::standby::Follow {
                url,
                prefix: &bus.prefix,
                engine: &engine,
                config: &cfg,
                journal_dir: &dir.join("journal"),
                ttl: Duration::from_millis(bus.lease_ms),
                run: &run_token,
                gate: Arc::clone(gate),
                stop: &settings.stop,
            }) {
                Ok(t) => t,
                Err(e) => {
                    // What it rebuilt of the leader's journal is kept, for a look at why.
                    let place = staged.keep_failed();
                    return Err(e.context(format!(
                        "the standby stopped; the leader's journal as far as it followed is in \
                         {}",
                        place.display()
                    )));
                }
            };
            let Some(took) = took else {
                _ = writeln!(
                    std::io::stderr(),
                    "ringmaker run: standby: stopped before taking over: nothing was sent, \
                     nothing is kept"
                );
                return Ok(ExitCode::SUCCESS);
            };
            keeper = Some(runtime::lease::Keeper::start(
                url,
                &bus.prefix,
                took.held,
                Arc::clone(&settings.stop),
            )?);
            // The session starts now (this run leads), with the leader's open orders.
            let inherited = match &took.start {
                runtime::standby::Start::Continue {
                    replayer, leader, ..
                } => runtime::archive::run_id(leader).map(|tag| {
                    gateway::binance::session::Inherited {
                        session_tag: tag,
                        orders: replayer.open_orders(),
                    }
                }),
                runtime::standby::Start::Fresh { .. } => None,
            };
            if let Some(creds) = standby_creds.take() {
                order_entry = Some(
                    live::order_entry::session(
                        &cfg,
                        a.venue_url.as_deref(),
                        a.ca_cert.as_deref(),
                        a.testnet,
                        creds,
                        Some(live::order_entry::Leading {
                            gate: Arc::clone(gate),
                            session_tag: identity.0,
                            inherited,
                        }),
                    )?
                    .1,
                );
            }
            match took.start {
                runtime::standby::Start::Continue {
                    replayer,
                    dir: journal,
                    leader,
                    last_seq,
                    last_ns,
                } => {
                    let (rec, engine, pending) = runtime::standby::continue_journal(
                        replayer,
                        &journal,
                        &cfg,
                        a.venue.segment_mib << 20,
                        last_ns,
                        created_ns,
                    )?;
                    _ = writeln!(
                        std::io::stderr(),
                        "ringmaker run: standby: taking over run {leader}: its journal goes on \
                         here after seq {last_seq} ({pending} outputs of its last batch \
                         journaled); the session reconciles with the venue before quoting"
                    );
                    begun = Some(Box::new(engine));
                    rec
                }
                runtime::standby::Start::Fresh { why } => {
                    _ = writeln!(
                        std::io::stderr(),
                        "ringmaker run: standby: taking over with a run of its own: {why}"
                    );
                    JournalRecorder::create_run(
                        &dir.join("journal"),
                        &cfg,
                        a.venue.segment_mib << 20,
                        created_ns,
                        Keep::Durable,
                    )?
                }
            }
        }
        _ => JournalRecorder::create_run(
            &dir.join("journal"),
            &cfg,
            a.venue.segment_mib << 20,
            created_ns,
            Keep::Durable,
        )?,
    };
    let (summary, recorder, net) = if live_market {
        let (market, recording, counters) = crate::cmd_live::open(
            &cfg.engine,
            &crate::cmd_live::LiveArgs {
                venue_url: venue_url.clone(),
                testnet: a.testnet && venue_url.is_none(),
                ca_cert: a.ca_cert.clone(),
                depth_stream: a.depth_stream.clone(),
                record: a.record.clone(),
                idle_backoff: cfg.live.cpu.idle == runtime::live::config::IdleMode::Backoff,
            },
            Arc::clone(&settings.stop),
        )?;
        let clock = crate::cmd_live::clock_line();
        if let (Some(url), Some(gate), None) = (&bus_url, &gate, &keeper) {
            // The lease, taken as late as possible (a start that outlasts it would lose it).
            let bus = &cfg.live.bus;
            let held = runtime::lease::take_for_run(
                url,
                &bus.prefix,
                bus.engine.as_deref().unwrap_or_default(),
                Duration::from_millis(bus.lease_ms),
                &run_token,
                Arc::clone(gate),
            )?;
            keeper = Some(runtime::lease::Keeper::start(
                url,
                &bus.prefix,
                held,
                Arc::clone(&settings.stop),
            )?);
        }
        let (summary, recorder) = match order_entry {
            Some(session) => live::run_from(
                &cfg,
                &settings,
                recorder,
                market,
                session,
                live::Begin {
                    engine: begun,
                    lease: keeper.as_ref().map(|k| Arc::clone(&k.counters)),
                    run: Some(identity),
                },
            )?,
            None => live::run_market(&cfg, &settings, recorder, market)?,
        };
        let report = recording.map(|r| r.finish());
        (
            summary,
            recorder,
            Some((report, counters.snapshot(), clock)),
        )
    } else {
        let (summary, recorder) = live::run(&cfg, &settings, recorder)?;
        (summary, recorder, None)
    };
    // The run is over and its shutdown has cancelled its orders: the lease goes (at once to a
    // standby), unless another run took it.
    let lease = keeper.map(runtime::lease::Keeper::finish);
    let closed = recorder.close();
    if let (Ok(()), Some(r)) = (&closed, &summary.archive) {
        // The journal's close record, and whatever else the bus thread had not got to.
        match runtime::bus::archive_rest(r, &dir.join("journal")) {
            Ok(n) => {
                _ = writeln!(
                    std::io::stderr(),
                    "ringmaker run: bus: journal archived: {n} records, run {} (ringmaker replay \
                 --bus URL --engine NAME --run {} --into DIR)",
                    r.run,
                    r.run
                )
            }
            Err(e) => {
                _ = writeln!(
                std::io::stderr(),
                "ringmaker run: warning: bus: {e:#}: the archive is short of the journal's end \
                 (the journal on disk has every record)"
            )
            }
        }
    }
    // The backtest's report, from the journal just closed (see `runtime::paper_report`).
    let report = closed
        .is_ok()
        .then(|| write_report(&dir, &summary))
        .transpose();
    let hedging = match &report {
        Ok(Some(lines)) => lines.clone(),
        _ => Vec::new(),
    };
    let failure = if let Err(e) = closed {
        Some(e.context("flushing the journal"))
    } else if let Err(e) = report {
        Some(e.context("writing report.json from the journal"))
    } else if summary.cause == live::StopCause::Fenced {
        Some(anyhow::anyhow!(
            "fenced: another run took over engine {:?}; this run sent nothing to the venue after \
             its lease lapsed",
            cfg.live.bus.engine.as_deref().unwrap_or_default()
        ))
    } else if summary.cause == live::StopCause::JournalFailed {
        Some(anyhow::anyhow!(
            "the journal stopped accepting records; every record before is intact"
        ))
    } else if let Some((_, stats, _)) = net.as_ref().filter(|n| n.1.messages == 0) {
        Some(anyhow::anyhow!(
            "nothing arrived from the venue ({} connection attempt(s) ended, {} failed to \
             start): check --venue-url and --ca-cert",
            stats.disconnects,
            stats.connect_failures
        ))
    } else if summary.counters.intents_lost > 0 {
        Some(anyhow::anyhow!(
            "{} intents could not be sent (output ring and backlog full); the journal holds \
             everything the engine did",
            summary.counters.intents_lost
        ))
    } else {
        None
    };
    if failure.is_none()
        && summary.counters.feed_events == 0
        && summary.cause != live::StopCause::Signal
    {
        // Nothing happened: nothing to keep (the staging directory goes).
        anyhow::bail!(
            "the market data gave nothing usable: {} lines read, {} skipped",
            summary.counters.lines,
            summary.counters.bad_lines
        );
    }
    let place = match &failure {
        None => {
            staged.commit()?;
            a.out.clone()
        }
        Some(_) => staged.keep_failed(),
    };
    // A closed stdout (`| head`) must not turn the end of a run into a panic: the journal is
    // closed by now and the summary is only a report.
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", summary.render());
    if let Some(l) = &lease {
        let _ = writeln!(
            out,
            "  lease            {} renewals ({} unanswered), {}",
            l.renewals,
            l.unanswered,
            if l.fenced {
                "fenced"
            } else if l.released {
                "released"
            } else {
                "not released (it lapses by itself)"
            }
        );
    }
    if let Some((rec, stats, clock)) = &net {
        let _ = writeln!(out, "  live feed        {stats}");
        let _ = writeln!(out, "  host clock       {clock}");
        if let Some(r) = rec {
            let _ = writeln!(out, "  recorded         {r}");
        }
    }
    for line in &hedging {
        let _ = write!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "  wrote            {0}/report.json, {0}/journal/, {0}/latency.hlog",
        place.display()
    );
    if let Some(e) = failure {
        return Err(e.context(format!("what the run wrote is kept in {}", place.display())));
    }
    Ok(finish("run", &summary.warnings(), a.strict))
}

/// Writes `dir/report.json`: the backtest's report of this run, built from its journal.
/// Returns the summary's line of each `[[hedge]]` group.
fn write_report(dir: &std::path::Path, summary: &live::Summary) -> anyhow::Result<Vec<String>> {
    let report = runtime::paper_report::report(&dir.join("journal"), summary)?;
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(report
        .hedging
        .iter()
        .map(|(name, h)| {
            h.summary(name)
                .replacen("  hedge ", "  hedge            ", 1)
        })
        .collect())
}
