//! The live order-entry session of `ringmaker run --live` from the run config's `[venue]`: the
//! venue's endpoints, the REST side on its thread and the WebSocket session.

use crate::config::RunConfig;
use anyhow::Context as _;
use gateway::binance::rest::{RestClient, RestOptions};
use gateway::binance::session::{OrderEntryEndpoints, Session, SessionInstrument, SessionOptions};
use gateway::binance::sign::{Credentials, Signer};
use gateway::binance::worker::{Worker, WorkerOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How the session of a run that leads its engine name by a lease (`runtime::lease`) is set up.
#[derive(Debug)]
pub struct Leading {
    /// Open while the lease is valid: the session sends nothing while it is shut.
    pub gate: Arc<gateway::SendGate>,
    /// The run's session tag (its client order ids): the run's id on the bus, which a standby
    /// that takes over reads from the run's archive token.
    pub session_tag: u64,
    /// The predecessor's open orders, for a standby that took over its journal.
    pub inherited: Option<gateway::binance::session::Inherited>,
}

/// The session for `cfg`'s instruments signing with `creds`, and the REST base the market data
/// should follow (`None`: Binance production or testnet, by `testnet`). `leading`: a run that
/// leads its engine name by a lease.
pub fn session(
    cfg: &RunConfig,
    venue_url: Option<&str>,
    ca_cert: Option<&Path>,
    testnet: bool,
    creds: Credentials,
    leading: Option<Leading>,
) -> anyhow::Result<(Option<String>, Session<Credentials>)> {
    for i in &cfg.engine.instruments {
        anyhow::ensure!(
            i.venue == engine::VenueFlavour::BinanceUsdm,
            "{}: live order entry is built for Binance USDⓈ-M only (this instrument is {})",
            i.instrument.symbol.as_str(),
            i.venue.name()
        );
    }
    let oe = &cfg.live.order_entry;
    // The engine's order budgets stay under the account's limits at the venue: the engine
    // throttles itself, and the session's own check of the venue's counts never has to.
    let (per_10s, per_min) = cfg.engine.venue_limits[engine::VenueFlavour::BinanceUsdm.index()];
    anyhow::ensure!(
        per_10s <= oe.account_orders_per_10s && per_min <= oe.account_orders_per_min,
        "the engine's order budgets ({per_10s} per 10 s, {per_min} per minute) exceed the \
         account's limits at the venue ([venue] account_orders_per_10s = {}, \
         account_orders_per_min = {}): lower [engine] orders_per_10s / orders_per_min",
        oe.account_orders_per_10s,
        oe.account_orders_per_min
    );
    let url = venue_url
        .map(str::to_string)
        .or_else(|| oe.rest_url.clone());
    let endpoints = match (&url, testnet) {
        (Some(u), _) => OrderEntryEndpoints::from_rest_url(u)
            .map_err(|e| anyhow::anyhow!("the venue's REST base {u}: {e}"))?,
        (None, true) => OrderEntryEndpoints::testnet(),
        (None, false) => OrderEntryEndpoints::binance(),
    };
    let creds = Arc::new(creds);
    let tls = feeds::net::tls::client_config(ca_cert)?;
    let signer: Arc<dyn Signer + Send + Sync> = Arc::clone(&creds) as _;
    let rest = RestClient::new(
        &endpoints.rest,
        ca_cert,
        signer,
        RestOptions {
            recv_window_ms: oe.recv_window_ms,
            ..RestOptions::default()
        },
    )
    .with_context(|| format!("the venue's REST base {}", endpoints.rest))?;
    let symbols: Vec<String> = cfg
        .engine
        .instruments
        .iter()
        .map(|i| i.instrument.symbol.as_str().to_string())
        .collect();
    let worker = Worker::spawn(
        rest,
        symbols.clone(),
        WorkerOptions {
            countdown: (oe.countdown_secs > 0).then(|| Duration::from_secs(oe.countdown_secs)),
            countdown_every: Duration::from_secs(oe.countdown_every_secs.max(1)),
            keepalive_every: Duration::from_secs(oe.keepalive_secs),
            // The gateway polls many times a second; a few seconds without one is a dead thread.
            alive_within: Duration::from_secs(5),
        },
    )?;
    let instruments = cfg
        .engine
        .instruments
        .iter()
        .zip(symbols)
        .map(|(i, symbol)| SessionInstrument {
            symbol,
            instrument: i.instrument,
        })
        .collect();
    let opts = SessionOptions {
        ack_timeout: Duration::from_millis(oe.ack_timeout_ms),
        recv_window_ms: oe.recv_window_ms,
        order_headroom: oe.order_headroom,
        ..SessionOptions::default()
    };
    let opts = match leading {
        Some(l) => SessionOptions {
            gate: Some(l.gate),
            session_tag: l.session_tag,
            inherited: l.inherited,
            ..opts
        },
        None => opts,
    };
    let session = Session::new(creds, &endpoints, tls, instruments, worker, opts);
    Ok((url, session))
}
