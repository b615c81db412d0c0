//! Wiring one paper run: config, rings, threads, the shutdown, the summary.

use super::clock::ReplayClock;
use super::feed::{Feed, FeedEnd, FeedReport};
use super::gateway::{self, GatewayEnd, GatewayRings, Idle};
use super::housekeeping::{self, HousekeepingSettings};
use super::latency::StampRx;
use super::pinning::{self, Role};
use super::processor::{self, ProcessorEnd};
use super::rings::{self, InputProducer, SRC_CONTROL};
use super::shared::Shared;
use super::summary::{InstrumentSummary, StopCause, Summary};
use super::sys;
use super::threads::{self, Startup};
use crate::backtest::QueueKind;
use crate::config::RunConfig;
use crate::host::Host;
use crate::record::JournalRecorder;
use ::gateway::binance::session::SessionStats;
use ::gateway::sim::{BpsFees, ConstantLatency, ProbQueue, RiskAverseQueue, SimVenue};
use ::gateway::{SimStats, Venue};
use anyhow::{bail, Context};
use engine::{Command, Engine, Event};
use feeds::{DataSpec, FeedHandler, MarketFeed, MarketSource};
use quanta::Clock;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Paper-run settings beyond the config file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Recording files, each bound to one instrument of the config (explicitly, or by what it
    /// holds: [`feeds::binding`]); the files of one instrument in arrival order.
    pub data: Vec<DataSpec>,
    /// Replay speed: 1 = recorded pace, N = N times faster, 0 = flat out. Not used with `live`.
    pub speed: f64,
    /// The market data is a live network feed ([`run_market`] with a `feeds::net::NetSource`):
    /// the clock is the wall clock and nothing is paced.
    pub live: bool,
    /// Stop after this much recording time (ns).
    pub max_span_ns: Option<i64>,
    /// The simulated venue's queue model.
    pub queue: QueueKind,
    /// Engine → venue latency, ns of replay time.
    pub entry_latency_ns: i64,
    /// Venue → engine latency, ns of replay time.
    pub response_latency_ns: i64,
    /// Timer tick period, ns of replay time.
    pub timer_interval_ns: i64,
    /// The latency interval log.
    pub hlog: PathBuf,
    /// Latency interval length.
    pub hlog_interval: Duration,
    /// Status line period (`None`: quiet).
    pub status_every: Option<Duration>,
    /// Set from outside (signals) to stop the run cleanly.
    pub stop: Arc<AtomicBool>,
    /// Operations: where the control socket goes, the config file a reload re-reads.
    pub ops: OpsSettings,
}

/// Operations settings of a run beyond `[ops]`.
#[derive(Debug, Clone, Default)]
pub struct OpsSettings {
    /// The folder of the control socket (`ctl.sock`; the run's `--out`). `None`: no control
    /// socket, whatever `[ops] control` says.
    pub control_dir: Option<PathBuf>,
    /// The config file (re-read by a reload; `None`: the run has none to re-read).
    pub config_path: Option<PathBuf>,
    /// Its text as loaded (a reload prints the difference from it).
    pub config_text: String,
    /// Set by SIGHUP: reload.
    pub reload: Option<Arc<AtomicBool>>,
    /// The run's journal directory (the bus's archive follows it; `None`: no archive).
    pub journal_dir: Option<PathBuf>,
}

/// Runs the paper pipeline (`settings.data` through the feed handler, the simulated venue with
/// `settings`' models) until the recording ends, `max_span_ns` is reached or `stop` is set, then
/// halts and cancels everything, drains the rings and returns the summary and the journal
/// recorder (for the caller to close). Pinning warnings are printed to stderr as they are found.
pub fn run(
    run_cfg: &RunConfig,
    settings: &Settings,
    recorder: JournalRecorder,
) -> anyhow::Result<(Summary, JournalRecorder)> {
    let cfg = &run_cfg.engine;
    anyhow::ensure!(!cfg.instruments.is_empty(), "the config has no instrument");
    let market = MarketFeed::new(
        crate::backtest::open_recordings(cfg, &settings.data)?,
        FeedHandler::from_config(cfg),
    );
    run_market(run_cfg, settings, recorder, market)
}

/// [`run`] on any market feed (a live network source), against the simulated venue with
/// `settings`' models.
pub fn run_market<S>(
    run_cfg: &RunConfig,
    settings: &Settings,
    recorder: JournalRecorder,
    market: MarketFeed<S>,
) -> anyhow::Result<(Summary, JournalRecorder)>
where
    S: MarketSource + Send + 'static,
{
    let cfg = &run_cfg.engine;
    anyhow::ensure!(!cfg.instruments.is_empty(), "the config has no instrument");
    let latency = ConstantLatency::new(settings.entry_latency_ns, settings.response_latency_ns);
    let fees = BpsFees::from_configs(&cfg.instruments);
    let (n, slots) = (cfg.instruments.len(), cfg.book_slots);
    match settings.queue {
        QueueKind::RiskAverse => {
            let venue = SimVenue::new(n, slots, RiskAverseQueue, latency, fees)
                .with_instruments(&cfg.instruments);
            run_with(run_cfg, settings, recorder, market, venue)
        }
        QueueKind::Prob { power } => {
            let power = engine::Fx::checked_from_num(power)
                .filter(|p| *p > 0)
                .context("queue power must be a positive number")?;
            let venue = SimVenue::new(n, slots, ProbQueue::new(power), latency, fees)
                .with_instruments(&cfg.instruments);
            run_with(run_cfg, settings, recorder, market, venue)
        }
    }
}

/// The pipeline over any market source and any venue: the feed thread reads `market`, the
/// gateway thread drives `venue`. (The summary speaks the simulated venue's counters; a live
/// venue brings its own with the live gateway.)
pub fn run_with<S, V>(
    run_cfg: &RunConfig,
    settings: &Settings,
    recorder: JournalRecorder,
    market: MarketFeed<S>,
    venue: V,
) -> anyhow::Result<(Summary, JournalRecorder)>
where
    S: MarketSource + Send + 'static,
    V: Venue + Send + 'static,
    V::Stats: VenueStats + Send,
{
    run_from(run_cfg, settings, recorder, market, venue, Begin::default())
}

/// How a run begins beyond its config: a live run that leads its engine name, or a standby that
/// took over its leader's journal.
#[derive(Debug, Default)]
pub struct Begin {
    /// The engine to run (a standby's, with its leader's state): `None`, a new one.
    pub engine: Option<Box<Engine>>,
    /// The counters of the engine name's lease this run holds ([`crate::lease::Keeper`]), for
    /// `/metrics`.
    pub lease: Option<Arc<crate::lease::LeaseCounters>>,
    /// This run's identity on the bus: `(run id, start ms)` (`None`: made by the bus thread).
    pub run: Option<(u64, u64)>,
}

/// [`run_with`], beginning as `begin` says.
pub fn run_from<S, V>(
    run_cfg: &RunConfig,
    settings: &Settings,
    recorder: JournalRecorder,
    market: MarketFeed<S>,
    venue: V,
    begin: Begin,
) -> anyhow::Result<(Summary, JournalRecorder)>
where
    S: MarketSource + Send + 'static,
    V: Venue + Send + 'static,
    V::Stats: VenueStats + Send,
{
    let Begin {
        engine: begun,
        lease,
        run: run_identity,
    } = begin;
    anyhow::ensure!(
        settings.speed >= 0.0 && settings.speed.is_finite(),
        "--speed must be 0 (flat out) or a positive number, not {}",
        settings.speed
    );
    let (cfg, live) = (&run_cfg.engine, &run_cfg.live);
    let plan = pinning::plan(&live.cpu, &pinning::available_cores())?;
    for w in &plan.warnings {
        let _ = writeln!(std::io::stderr(), "ringmaker run: warning: {w}");
    }
    if live.cpu.mlockall {
        sys::lock_all_memory()
            .map_err(|e| anyhow::anyhow!(sys::permission_hint(&e, "mlockall")))?;
    }

    // Everything allocated before any thread starts: rings, stamp queues, engine, venue.
    let clock = Clock::new();
    let replay = if settings.live {
        ReplayClock::live(clock.clone())
    } else {
        ReplayClock::new(settings.speed, clock.clone())
    };
    let mut shared = Shared::new(Arc::clone(&settings.stop), replay)
        .with_instruments(cfg.instruments.len())
        .with_hedge_groups(cfg.hedges.len());
    if let Some(r) = &settings.ops.reload {
        shared.reload_requested = Arc::clone(r);
    }
    if let Some(l) = lease {
        let _ = shared.ops.bus.lease.set(l);
    }
    shared.idle_backoff = live.cpu.idle == super::config::IdleMode::Backoff;
    let shared = Arc::new(shared);
    // The metrics endpoint is bound before anything starts: a taken port ends the run here.
    let metrics = match live.ops.metrics_addr() {
        Some(addr) => {
            let m = super::ops::MetricsListener::bind(addr)?;
            let _ = writeln!(
                std::io::stderr(),
                "ringmaker run: metrics at http://{}/metrics",
                m.addr()
            );
            Some(m)
        }
        None => None,
    };
    if settings.live {
        // The feed's first clock check has a reading; housekeeping renews it every second.
        shared.kernel_clock.refresh();
    }
    let r = rings::build(live.rings.input, live.rings.output);
    let mut stamps = StampRx::default();
    let feed_stamps = stamps.channel(live.rings.latency, Arc::clone(&shared));
    let engine_stamps = stamps.channel(live.rings.latency, Arc::clone(&shared));
    let gateway_stamps = stamps.channel(live.rings.latency, Arc::clone(&shared));
    let host = Host::new(begun.map_or_else(|| Engine::new(cfg), |e| *e), recorder);

    let n_inst = cfg.instruments.len();
    let started = Instant::now();
    // The bus link's control requests are answered by the ops thread, through the control
    // server (as the socket's are).
    let bus_on = live.bus.url.is_some();
    let has_ops =
        metrics.is_some() || bus_on || (settings.ops.control_dir.is_some() && live.ops.control);
    let startup = Startup::new(
        plan.clone(),
        5 + usize::from(has_ops) + usize::from(bus_on),
        Arc::clone(&shared),
    );
    let mut control: InputProducer = r.input.clone();
    // Controls published before the shutdown's (the engine counts every one it consumes).
    let mut early_controls = 0u64;
    if venue.starts_down() {
        // Before any market data: the engine quotes nothing until the session has reconciled.
        for i in 0..n_inst as u16 {
            publish_control(
                &mut control,
                Event::control(i, 0, Command::OrderEntryDown),
                &clock,
            )?;
        }
        super::counters::Counters::add(&shared.counters.controls, n_inst as u64);
        early_controls = n_inst as u64;
    }
    if live.firm.is_on() {
        // No room on either side until the bus thread has heard the firm (closing a position
        // is never blocked): before its first limit, an engine under `[firm]` adds nothing.
        let none = engine::FirmLimit {
            long_units: 0,
            short_units: 0,
            halt: false,
        };
        for i in 0..n_inst as u16 {
            let mut ev = Event::firm_limit(i, 0, &none);
            ev.source = super::rings::SRC_BUS;
            let t = clock.raw();
            anyhow::ensure!(
                control.try_publish(|s| {
                    s.event = ev;
                    s.t_decode = 0;
                    s.t_publish = t;
                }),
                "the input ring has no room for the firm's first limits"
            );
        }
        super::counters::Counters::add(&shared.counters.firm_limits, n_inst as u64);
    }
    let control_server = match (&settings.ops.control_dir, live.ops.control || bus_on) {
        (Some(dir), true) => Some(super::ops::control::ControlServer::bind(
            dir,
            r.input.clone(),
            clock.clone(),
            early_controls,
            settings.ops.config_path.clone(),
            run_cfg.clone(),
            settings.ops.config_text.clone(),
        )?),
        _ => None,
    };
    let (bus_tx, bus_rx) = crossbeam_channel::bounded::<crate::bus::Request>(16);
    let ops_h = if has_ops {
        let t = super::ops::OpsThread {
            metrics,
            control: control_server,
            bus: bus_on.then_some(bus_rx),
            config: run_cfg.clone(),
            start_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        let shared = Arc::clone(&shared);
        Some(threads::spawn(
            "ops",
            Role::Housekeeping,
            &startup,
            move |go| {
                if go {
                    super::ops::run(t, shared)
                } else {
                    super::ops::OpsEnd::default()
                }
            },
        )?)
    } else {
        None
    };
    let bus_h = if bus_on {
        let link = crate::bus::BusLink {
            bus: live.bus.clone(),
            config: run_cfg.clone(),
            requests: bus_tx,
            input: live.firm.is_on().then(|| (r.input.clone(), clock.clone())),
            journal_dir: settings.ops.journal_dir.clone(),
            run: run_identity.unwrap_or_else(crate::bus::new_run),
        };
        let _ = writeln!(
            std::io::stderr(),
            "ringmaker run: bus {} as engine {:?}",
            crate::bus::redact_url(live.bus.url.as_deref().unwrap_or("")),
            live.bus.engine.as_deref().unwrap_or("")
        );
        let shared = Arc::clone(&shared);
        Some(threads::spawn(
            "bus",
            Role::Housekeeping,
            &startup,
            move |go| {
                if go {
                    crate::bus::run(link, shared)
                } else {
                    Ok(Default::default())
                }
            },
        )?)
    } else {
        drop(bus_tx);
        None
    };
    let timer_producer = r.input.clone();
    let gateway_producer = r.input.clone();
    let mut feed = Feed::new(
        market,
        r.input,
        feed_stamps,
        clock.clone(),
        Arc::clone(&shared),
        settings.max_span_ns,
    );
    let fc = &live.feed;
    if settings.live && fc.clock_check {
        feed = feed.with_clock_check(feeds::net::clockcheck::ClockLimits {
            require_synchronised: fc.require_clock_sync,
            max_error_us: None,
            max_offset_ns: fc.max_clock_offset_ms.saturating_mul(1_000_000),
            min_offset_ns: fc.min_clock_offset_ms.saturating_mul(1_000_000),
            min_samples: fc.clock_min_samples,
        });
    }
    let feed_h = threads::spawn("feed", Role::Feed, &startup, move |go| {
        if go {
            feed.run()
        } else {
            FeedReport {
                end: FeedEnd::Stopped,
                feed: Default::default(),
                sync: Default::default(),
                sync_by_instrument: Vec::new(),
                book_time: (0, 0),
                clock_offset: None,
                clock_check: None,
            }
        }
    })?;
    let engine_h = {
        let (input, output, clock, shared) =
            (r.engine_input, r.output, clock.clone(), Arc::clone(&shared));
        threads::spawn("engine", Role::Engine, &startup, move |go| {
            if go {
                processor::run(host, n_inst, input, output, engine_stamps, clock, shared)
            } else {
                (host, ProcessorEnd::default())
            }
        })?
    };
    let gw_rings = GatewayRings {
        intents: r.gateway_output,
        events: r.gateway_input,
        reports: gateway_producer,
        gate: r.gate.clone(),
    };
    // The gateway busy-polls only on a core of its own.
    let gateway_idle = match plan.gateway {
        Some(g)
            if live.cpu.idle == super::config::IdleMode::Spin
                && [plan.engine, plan.feed, plan.housekeeping]
                    .iter()
                    .all(|c| *c != Some(g)) =>
        {
            Idle::Spin
        }
        _ => Idle::backoff(settings.entry_latency_ns, settings.speed),
    };
    let gateway_h = spawn_gateway(
        venue,
        n_inst,
        gw_rings,
        gateway_idle,
        gateway_stamps,
        &clock,
        &shared,
        &startup,
    )?;
    let timer_h = {
        let (clock, shared, every) = (
            clock.clone(),
            Arc::clone(&shared),
            settings.timer_interval_ns,
        );
        threads::spawn("timer", Role::Housekeeping, &startup, move |go| {
            if go {
                super::timer::run(timer_producer, every, clock, shared)
            }
        })?
    };
    let hk_settings = HousekeepingSettings {
        hlog: settings.hlog.clone(),
        interval: settings.hlog_interval,
        status_every: settings.status_every,
    };
    let hk_h = {
        let (clock, shared) = (clock.clone(), Arc::clone(&shared));
        threads::spawn("housekeeping", Role::Housekeeping, &startup, move |go| {
            if go {
                housekeeping::run(stamps, &hk_settings, clock, shared).map(Some)
            } else {
                Ok(None)
            }
        })?
    };
    let setup = startup.release();

    // Wait for the feed to finish (end of data, duration, signal or abort).
    let has_control = settings.ops.control_dir.is_some() && live.ops.control;
    while setup.is_ok() && !feed_h.is_finished() {
        if !has_control && shared.reload_requested.swap(false, Ordering::AcqRel) {
            // Never silently: the change in the file is not applied.
            let _ = writeln!(
                std::io::stderr(),
                "ringmaker run: SIGHUP: no reload: hot reload needs the control socket ([ops] \
                 control = true); the running config is kept"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let feed_report = join(feed_h, "feed")?;
    let feed_end = feed_report.end;
    join(timer_h, "timer")?;
    // No operator command after this point: the shutdown's count includes theirs.
    shared.ops_stop.store(true, Ordering::Release);
    let ops_end = match ops_h {
        Some(h) => join(h, "ops")?,
        None => Default::default(),
    };

    // Halt (cancels every working order and quotes nothing more) and cancel-all, per
    // instrument. `CancelAll` alone would requote at the same batch end.
    if setup.is_ok() {
        let t = shared.replay.now().unwrap_or(0);
        let mut n = 0u64;
        for i in 0..n_inst as u16 {
            for cmd in [Command::Halt, Command::CancelAll] {
                publish_control(&mut control, Event::control(i, t, cmd), &clock)?;
                n += 1;
            }
        }
        super::counters::Counters::add(&shared.counters.controls, n);
        shared.controls_published.store(
            early_controls + ops_end.controls_published + n,
            Ordering::Release,
        );
    }
    drop(control);
    let gw_end = join(gateway_h, "gateway")?;
    let (host, proc_end) = join(engine_h, "engine")?;
    shared.housekeeping_stop.store(true, Ordering::Release);
    let latency = join(hk_h, "housekeeping")?.context("writing the latency log")?;
    let mut archive = None;
    if let Some(h) = bus_h {
        // After the engine: the last heartbeat shows the shutdown's halt.
        match join(h, "bus")? {
            Ok(b) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "ringmaker run: bus: {} heartbeats ({} dropped), {} requests ({} refused), \
                     {} connects, {} disconnects{}",
                    b.heartbeats,
                    b.heartbeats_dropped,
                    b.requests,
                    b.requests_refused,
                    b.connects,
                    b.disconnects,
                    match &b.archive {
                        Some(a) => format!(
                            "; journal archive: {} records so far ({} failures), run {}",
                            b.archive_records, b.archive_failures, a.run
                        ),
                        None => String::new(),
                    }
                );
                archive = b.archive;
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "ringmaker run: warning: bus: {e:#}");
            }
        }
    }
    setup.map_err(|e| anyhow::anyhow!("thread setup failed: {e}"))?;

    let cause = match (proc_end.journal_failed, feed_end) {
        (true, _) => StopCause::JournalFailed,
        _ if shared
            .ops
            .bus
            .lease
            .get()
            .is_some_and(|l| l.fenced.load(Ordering::Acquire) == 1) =>
        {
            StopCause::Fenced
        }
        (false, FeedEnd::EndOfData) => StopCause::EndOfData,
        (false, FeedEnd::Duration) => StopCause::Duration,
        (false, FeedEnd::Stopped) => StopCause::Signal,
    };
    let instruments = (0..n_inst as u16)
        .filter_map(|i| host.engine.instrument(i).map(|v| InstrumentSummary::of(&v)))
        .collect();
    let replay_span_ns = match (shared.replay.start_ns(), shared.replay.progress()) {
        (Some(a), b) if b != i64::MIN => b - a,
        _ => 0,
    };
    let summary = Summary {
        cause,
        wall: started.elapsed(),
        speed: settings.speed,
        replay_span_ns,
        counters: shared.counters.snapshot(),
        engine: host.engine.stats(),
        sim: gw_end.sim.sim(),
        session: gw_end.sim.session(),
        open_orders_at_venue: gw_end.open_orders,
        drain_timed_out: gw_end.drain_timed_out,
        pinning: plan,
        latency: latency.map(|h| h.into_totals()).unwrap_or_default(),
        instruments,
        feed: feed_report.feed,
        sync: feed_report.sync,
        sync_by_instrument: feed_report.sync_by_instrument,
        book_time: feed_report.book_time,
        clock_offset: feed_report.clock_offset,
        clock_check: feed_report.clock_check,
        output_halted: shared.output_halted.load(Ordering::Acquire),
        journal_records: host.recorder.appended(),
        journal_events: host.recorder.events(),
        archive,
    };
    Ok((summary, host.recorder))
}

#[allow(clippy::too_many_arguments)]
fn spawn_gateway<V>(
    venue: V,
    instruments: usize,
    rings: GatewayRings,
    idle: Idle,
    stamps: super::latency::StampTx,
    clock: &Clock,
    shared: &Arc<Shared>,
    startup: &Arc<Startup>,
) -> std::io::Result<JoinHandle<GatewayEnd<V::Stats>>>
where
    V: Venue + Send + 'static,
    V::Stats: Send,
{
    let (clock, shared) = (clock.clone(), Arc::clone(shared));
    threads::spawn("gateway", Role::Gateway, startup, move |go| {
        if go {
            gateway::run(venue, instruments, rings, idle, stamps, clock, shared)
        } else {
            GatewayEnd {
                sim: venue.stats(),
                drain_timed_out: false,
                open_orders: 0,
            }
        }
    })
}

/// What the summary takes from a venue's counters.
pub trait VenueStats: Copy {
    /// The simulated venue's counters (zeros for a live venue).
    fn sim(&self) -> SimStats;
    /// The live session's counters (`None` for the simulated venue).
    fn session(&self) -> Option<SessionStats>;
}

impl VenueStats for SimStats {
    fn sim(&self) -> SimStats {
        *self
    }
    fn session(&self) -> Option<SessionStats> {
        None
    }
}

impl VenueStats for SessionStats {
    fn sim(&self) -> SimStats {
        SimStats::default()
    }
    fn session(&self) -> Option<SessionStats> {
        Some(*self)
    }
}

/// Publishes a command; it must get in (the engine keeps draining the ring).
fn publish_control(p: &mut InputProducer, mut ev: Event, clock: &Clock) -> anyhow::Result<()> {
    ev.source = SRC_CONTROL;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = clock.raw();
        let ok = p.try_publish(|s| {
            s.event = ev;
            s.t_decode = 0;
            s.t_publish = t;
        });
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the input ring stayed full for 10 s: the engine is not consuming");
        }
        std::thread::yield_now();
    }
}

fn join<T>(h: JoinHandle<T>, name: &str) -> anyhow::Result<T> {
    h.join()
        .map_err(|_| anyhow::anyhow!("the {name} thread panicked"))
}
