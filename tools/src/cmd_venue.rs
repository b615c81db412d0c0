//! `ringmaker venue`: a Binance USDⓈ-M exchange on localhost over TLS, replaying recordings as
//! its public market data.

use anyhow::Context as _;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `ringmaker venue`.
#[derive(Parser, Debug)]
pub struct Args {
    /// Recordings to replay as the market data: `PATH`, `SYMBOL=PATH` or `VENUE:SYMBOL=PATH`,
    /// one or more files for every instrument of the config (all Binance USDⓈ-M). A plain PATH
    /// is bound by the symbol its first lines show, or to the only instrument; the files of one
    /// instrument are read in the order given; the instruments' recordings are replayed merged
    /// in time order.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Engine config: its instruments (Binance USDⓈ-M) are the symbols served (exchangeInfo,
    /// books, streams, order entry).
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Address to listen on (port 0: a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Replay speed: 1 is the recorded pace, 0 as fast as possible, at most 10000.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// A manual venue clock: it stands at the replay's start until `POST /venue/clock` (from
    /// 127.0.0.1; `advance=MS` or `to=MS`) moves it, answering once everything up to then is
    /// replayed. For deterministic sessions: the same data, requests and clock steps give the
    /// same responses, order ids, fills and streams. `--speed` is not used.
    #[arg(long)]
    manual_clock: bool,
    /// Where to write the certificate (`cert.pem`) clients should trust.
    #[arg(long, default_value = "venue-cert")]
    cert_out: PathBuf,
    /// Accounts file (`[[account]]` tables: api_key, hmac_secret and/or ed25519_public_key,
    /// balances; see configs/venue-accounts.toml): enables order entry and user data.
    #[arg(long)]
    accounts: Option<PathBuf>,
    // The grammar's brackets are not intra-doc links (clap shows this text as `--help`).
    #[allow(rustdoc::broken_intra_doc_links)]
    /// Faults on demand, deterministic on the venue clock, each logged on stderr when it fires.
    /// SPEC := FAULT (';' FAULT)*; FAULT := NAME ['@' KEY=VALUE (',' KEY=VALUE)*]; durations
    /// `500ms`, `30s`, `2m` of venue-clock time since the replay start; COUNT: every N-th
    /// request. Faults: drop-connections@at=DUR|every=DUR; gap@at=DUR|every=DUR[,stream=S];
    /// freeze@stream=S,at=DUR,for=DUR[,every=DUR]; malformed@stream=S,at=DUR|every=DUR;
    /// rest-5xx@every=COUNT|at=DUR; rest-timeout@every=COUNT|at=DUR;
    /// ack-delay@ms=N[,every=COUNT]; ack-drop@every=COUNT|at=DUR;
    /// listenkey-expire@at=DUR|every=DUR. Example:
    /// `gap@at=10s;rest-5xx@every=50;freeze@stream=btcusdt@depth@0ms,at=20s,for=5s`.
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,
    /// Serve `GET`/`POST /venue/faults` (to 127.0.0.1 only): list the fault schedule, apply a
    /// SPEC now. Off by default (404).
    #[arg(long)]
    faults_control: bool,
    /// With `--accounts`: write every order request the venue answers (place, modify, cancel,
    /// batch, cancel-all, dead-man switch; REST and WebSocket API) to FILE as JSON lines: wall
    /// and venue time, where it came from, the client order id(s) and the answer. The file is
    /// created; an existing one is refused.
    #[arg(long, value_name = "FILE", requires = "accounts")]
    order_log: Option<PathBuf>,
}

/// Runs the venue until SIGINT or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading config {}", args.config.display()))?;
    let engine = engine::Config::from_toml(&text)
        .with_context(|| format!("config {}", args.config.display()))?;
    let faults = match &args.faults {
        Some(spec) => match venue::faults::parse(spec, None) {
            Ok(f) => f,
            Err(e) => {
                errln!("ringmaker venue: --faults: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Vec::new(),
    };
    venue::market::check_instruments(&engine)
        .with_context(|| format!("config {}", args.config.display()))?;
    let data = crate::cmd_common::data_specs(&args.data, &engine)?;
    for d in &data {
        std::fs::metadata(&d.path).with_context(|| format!("recording {}", d.path.display()))?;
    }
    // The exchange core: the accounts' orders matched on the simulated venue's models. Without
    // an accounts file the venue serves public market data only (private endpoints: 404).
    let exchange: Arc<dyn venue::api::Exchange> = match &args.accounts {
        Some(path) => {
            let accounts = venue::auth::Accounts::load(path)
                .with_context(|| format!("accounts {}", path.display()))?;
            let mut x = venue::exchange::SimExchange::new(engine.clone(), accounts)
                .accept_wall_clock_timestamps();
            if let Some(log) = &args.order_log {
                let f = std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .open(log)
                    .with_context(|| format!("--order-log {}", log.display()))?;
                x = x.with_order_log(f);
            }
            Arc::new(x)
        }
        None => Arc::new(venue::NoExchange),
    };
    let mut cfg = venue::ServerConfig::new(Vec::new(), engine);
    cfg.data = data;
    cfg.listen = args.listen;
    cfg.speed = args.speed;
    cfg.manual_clock = args.manual_clock;
    cfg.cert_dir = args.cert_out.clone();
    cfg.accounts = args.accounts.clone();
    cfg.faults = faults;
    cfg.faults_control = args.faults_control;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    let handle = venue::Venue::start(cfg, exchange)?;
    let cert = std::fs::canonicalize(handle.cert_path())
        .unwrap_or_else(|_| handle.cert_path().to_path_buf());
    outln!("rest={}", handle.rest_url())?;
    outln!("ws={}", handle.ws_url())?;
    outln!("cert={}", cert.display())?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.shutdown();
    Ok(ExitCode::SUCCESS)
}
