//! Shared helpers for the benches: where the sample data lives, the instrument it is for, and
//! loading it into memory once (outside any timed loop).

use engine::Instrument;
use runtime::backtest::QueueKind;
use runtime::live::Settings;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The Binance USDⓈ-M BTCUSDT recording (93,954 messages, one REST snapshot).
pub const USDM_BTCUSDT: &str = "binance-usdm/btcusdt_20240808.gz";

/// `tests/data/<rel>` from the workspace root.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

/// BTCUSDT perpetual on USDⓈ-M: tick 0.10, lot 0.001, min qty 0.001, min notional 100 USDT.
pub fn btcusdt_usdm() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100")
        .expect("BTCUSDT futures instrument parameters are valid")
}

/// Reads a recording fully into memory as `(local_ns, payload)` pairs; panics (with the path) if
/// it cannot be opened or has malformed lines, since a bench over partial data would mislead.
pub fn load_recording(rel: &str) -> Vec<(i64, Vec<u8>)> {
    let path = data(rel);
    let (lines, bad) = feeds::recording::read_all(&[&path])
        .unwrap_or_else(|e| panic!("cannot read recording {}: {e}", path.display()));
    assert_eq!(bad, 0, "{} has {bad} malformed lines", path.display());
    assert!(!lines.is_empty(), "{} is empty", path.display());
    lines
}

/// `<workspace root>/<rel>`.
pub fn workspace(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// A latency histogram, ns: 1 ns to 60 s at 3 significant digits (fixed bounds: recording never
/// allocates).
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Prints a latency table's title and column heads (ns: count, p50, p90, p99, p99.9, max).
pub fn print_header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "(ns)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
}

/// Prints one row of a latency table (see [`print_header`]).
pub fn print_row(name: &str, h: &hdrhistogram::Histogram<u64>) {
    println!(
        "{name:<34} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

/// The shipped config with the pipeline's threads pinned: the feed on `first`, the engine on
/// `last`, the gateway and housekeeping on `first` (on `last` with `layout_engine`).
pub fn pinned_run_config(
    first: usize,
    last: usize,
    layout_engine: bool,
    extra: &str,
) -> runtime::config::RunConfig {
    let text =
        std::fs::read_to_string(workspace("configs/default.toml")).expect("configs/default.toml");
    let others = if layout_engine { last } else { first };
    let cpu = format!(
        "\n[cpu]\nengine = {last}\nfeeds = [{first}]\ngateway = {others}\nhousekeeping = {others}\n{extra}\n"
    );
    runtime::config::RunConfig::from_toml(&(text + &cpu)).expect("valid config")
}

/// The pipeline's settings at recorded pace: live market data (stopped by its `stop` flag),
/// or the shipped recording (`seconds` of it, or all of it).
pub fn pipeline_settings(out: &Path, live: bool, seconds: Option<f64>) -> Settings {
    Settings {
        data: if live {
            Vec::new()
        } else {
            vec![data(USDM_BTCUSDT).into()]
        },
        speed: 1.0,
        live,
        max_span_ns: if live {
            None
        } else {
            seconds.map(|s| (s * 1e9) as i64)
        },
        queue: QueueKind::RiskAverse,
        entry_latency_ns: 2_000_000,
        response_latency_ns: 2_000_000,
        timer_interval_ns: 100_000_000,
        hlog: out.join("latency.hlog"),
        hlog_interval: Duration::from_secs(1),
        status_every: None,
        stop: Arc::new(AtomicBool::new(false)),
        ops: Default::default(),
    }
}

/// `ringmaker venue` in this process replaying the shipped recording at recorded pace over TLS,
/// with the test accounts of `configs/venue-accounts.toml` when `accounts` (else market data
/// only), started from a thread pinned to `core` (the venue's threads inherit its affinity).
pub fn start_venue(
    cfg: &runtime::config::RunConfig,
    out: &Path,
    accounts: bool,
    core: Option<usize>,
) -> venue::VenueHandle {
    let mut sc = venue::ServerConfig::new(vec![data(USDM_BTCUSDT)], cfg.engine.clone());
    sc.cert_dir = out.join("cert");
    sc.speed = 1.0;
    let exchange: Arc<dyn venue::api::Exchange> = if accounts {
        let path = workspace("configs/venue-accounts.toml");
        let accts = venue::auth::Accounts::load(&path).expect("the test accounts");
        sc.accounts = Some(path);
        Arc::new(
            venue::exchange::SimExchange::new(cfg.engine.clone(), accts)
                .accept_wall_clock_timestamps(),
        )
    } else {
        Arc::new(venue::NoExchange)
    };
    std::thread::spawn(move || {
        if let Some(id) = core {
            core_affinity::set_for_current(core_affinity::CoreId { id });
        }
        venue::Venue::start(sc, exchange).expect("the venue starts")
    })
    .join()
    .expect("venue start thread")
}

/// The live market data of `venue` for `cfg`'s instruments (`depth@0ms`), and its counters.
pub fn live_market(
    cfg: &runtime::config::RunConfig,
    venue: &venue::VenueHandle,
    stop: Arc<AtomicBool>,
) -> (
    feeds::MarketFeed<feeds::net::NetSource>,
    Arc<feeds::net::NetCounters>,
) {
    let tls = feeds::net::tls::client_config(Some(venue.cert_path())).expect("its certificate");
    let mut opts = feeds::net::NetOptions::new(tls);
    opts.endpoints = vec![feeds::net::routes::Endpoints::from_rest_url(
        &venue.rest_url(),
        engine::VenueFlavour::BinanceUsdm,
    )
    .expect("the venue's URL")];
    opts.depth_stream = "depth@0ms".into();
    let insts = feeds::net::NetInstrument::of_config(&cfg.engine);
    let source = feeds::net::NetSource::new(&insts, opts, stop).expect("source");
    let counters = source.counters();
    (
        feeds::MarketFeed::new(source, feeds::FeedHandler::from_config(&cfg.engine)),
        counters,
    )
}

/// The first and last core this process may use (read before anything is pinned).
pub fn first_and_last_core() -> (usize, usize) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    match (ids.first(), ids.last()) {
        (Some(a), Some(b)) => (a.id, b.id),
        _ => (0, 0),
    }
}

/// Prints `name`'s p50 and p99 against their budgets (ns), and the sample count; a histogram
/// without samples is said to be not judged rather than meeting anything.
pub fn verdict(name: &str, h: &hdrhistogram::Histogram<u64>, p50_budget: u64, p99_budget: u64) {
    if h.is_empty() {
        println!(
            "{name}: no samples (not judged against p50 ≤ {p50_budget} ns, p99 ≤ {p99_budget} ns)"
        );
        return;
    }
    let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
    let met = |v: u64, b: u64| if v <= b { "met" } else { "MISSED" };
    println!(
        "{name}: p50 {p50} ns (budget ≤ {p50_budget}: {}), p99 {p99} ns (budget ≤ {p99_budget}: {}), {} samples",
        met(p50, p50_budget),
        met(p99, p99_budget),
        h.len()
    );
}

/// A fresh temp folder for a paper run of `cfg` named after `tag`, and the run's durable
/// journal in it (the caller closes the journal and removes the folder).
pub fn paper_out(
    tag: &str,
    cfg: &runtime::config::RunConfig,
) -> (PathBuf, runtime::record::JournalRecorder) {
    use runtime::record::{JournalRecorder, Keep};
    let out = std::env::temp_dir().join(format!("ringmaker-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    let recorder =
        JournalRecorder::create_run(&out.join("journal"), cfg, 64 << 20, 0, Keep::Durable)
            .expect("journal");
    (out, recorder)
}

/// A client thread's body for [`paper_run_beside`]: runs until its flag is set, then gives back
/// what it measured; given the run's output folder (its control socket).
pub type BenchClient =
    Box<dyn FnOnce(Arc<AtomicBool>, PathBuf) -> hdrhistogram::Histogram<u64> + Send>;

/// The paper pipeline pinned as [`pinned_run_config`] (`first`, `last` cores), `extra` appended
/// to the shipped config, on the first `seconds` of the shipped recording at 2x pace, with the
/// control socket in a temp folder named after `tag`; `client` (if any) runs on its own thread,
/// pinned to `first`, until the run ends (its flag is set then), and gives back a histogram.
pub fn paper_run_beside(
    tag: &str,
    seconds: f64,
    extra: &str,
    client: Option<BenchClient>,
) -> (runtime::live::Summary, Option<hdrhistogram::Histogram<u64>>) {
    use std::sync::atomic::Ordering;
    let (first, last) = first_and_last_core();
    let cfg = pinned_run_config(first, last, false, extra);
    let (out, recorder) = paper_out(tag, &cfg);
    let mut settings = pipeline_settings(&out, false, Some(seconds));
    settings.speed = 2.0;
    settings.ops.control_dir = Some(out.clone());
    let done = Arc::new(AtomicBool::new(false));
    let client = client.map(|c| {
        let (done, out) = (Arc::clone(&done), out.clone());
        std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: first });
            c(done, out)
        })
    });
    let (summary, recorder) = runtime::live::run(&cfg, &settings, recorder).expect("paper run");
    done.store(true, Ordering::Relaxed);
    let h = client.map(|c| c.join().expect("bench client"));
    recorder.close().expect("journal close");
    let _ = std::fs::remove_dir_all(&out);
    (summary, h)
}

/// Prints a paper run's hops (tick → intent, consume → intent, publish → consume) under `name`.
pub fn print_paper_hops(name: &str, seconds: f64, s: &runtime::live::Summary) {
    use runtime::live::Hop;
    print_header(&format!(
        "{name}: first {seconds} s at 2x ({} events, {} intents, threads {})",
        s.counters.engine_events,
        s.counters.engine_intents,
        s.pinning.describe()
    ));
    for hop in [Hop::TickToIntent, Hop::ConsumeIntent, Hop::PublishConsume] {
        if let Some(h) = s.hop(hop) {
            print_row(hop.tag(), h);
        }
    }
}

/// Prints `on`'s p50 and p99 over `off`'s for the hops that end in an intent.
pub fn print_on_off(off: &runtime::live::Summary, on: &runtime::live::Summary) {
    use runtime::live::Hop;
    for hop in [Hop::TickToIntent, Hop::ConsumeIntent] {
        if let (Some(a), Some(b)) = (off.hop(hop), on.hop(hop)) {
            let r = |q: f64| b.value_at_quantile(q) as f64 / a.value_at_quantile(q).max(1) as f64;
            println!(
                "{}: on / off p50 {:.2}x, p99 {:.2}x ({} and {} samples)",
                hop.tag(),
                r(0.5),
                r(0.99),
                a.len(),
                b.len()
            );
        }
    }
}
