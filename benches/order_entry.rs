//! Intent published → the signed request written to the socket (issue 15), live against
//! `ringmaker venue` in this process over TLS 1.3 on 127.0.0.1, with the simulated venue as the
//! baseline in the same run.
//!
//! Two phases, one process, one run, the same pinning (feed on the first core; engine on the
//! last; gateway, housekeeping and timer on the first; the venue's threads on the last: it
//! stands in for an exchange that is not on the feed's core):
//!
//! 1. **Live order entry.** The venue (with the test accounts of `configs/venue-accounts.toml`)
//!    replays the shipped USDⓈ-M recording at recorded pace; `run --live`'s pipeline follows
//!    its streams and sends real signed `order.place` / `order.cancel` requests over the
//!    WebSocket API for N seconds.
//! 2. **Baseline: the simulated venue** on the same live streams (`run --paper --market live`):
//!    the same engine, rings and gateway loop, with an in-memory `send`.
//!
//! Hops (hdrhistogram, ns): `intent_gateway` (intent published → the gateway read it: the
//! gateway's wait, sleeping when it shares a core), `gateway_send` (read → `send` returned: for
//! the session, sign + frame + encrypt + `write`) and `intent_sent` (their sum: the issue's
//! hop). Run: `cargo bench -p ringmaker-benches --bench order_entry` (`-- --seconds N`, default
//! 60; `-- --test`: 3 s each).

use runtime::live::{self, Hop};
use runtime::record::{JournalRecorder, Keep};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The venue's first test account (Binance's documented example pair: public, no one's secret).
const API_KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const API_SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

const HOPS: [Hop; 3] = [Hop::IntentGateway, Hop::GatewaySend, Hop::IntentSent];

fn run(
    cfg: &runtime::config::RunConfig,
    out: &std::path::Path,
    seconds: f64,
    venue_core: usize,
    live_orders: bool,
) -> live::Summary {
    let venue = ringmaker_benches::start_venue(cfg, out, live_orders, Some(venue_core));
    let s = ringmaker_benches::pipeline_settings(out, true, None);
    let (market, _) = ringmaker_benches::live_market(cfg, &venue, Arc::clone(&s.stop));
    let name = if live_orders { "live" } else { "sim" };
    let recorder = JournalRecorder::create_run(
        &out.join(format!("journal-{name}")),
        cfg,
        64 << 20,
        0,
        Keep::Durable,
    )
    .expect("journal");
    let stop = Arc::clone(&s.stop);
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Release);
    });
    let (summary, recorder) = if live_orders {
        let creds = gateway::binance::sign::Credentials::hmac(
            API_KEY,
            &gateway::binance::sign::Secret::new(API_SECRET),
        )
        .expect("the test account's key");
        let (_, session) = live::order_entry::session(
            cfg,
            Some(&venue.rest_url()),
            Some(venue.cert_path()),
            false,
            creds,
            None,
        )
        .expect("the session");
        live::run_with(cfg, &s, recorder, market, session).expect("live run")
    } else {
        live::run_market(cfg, &s, recorder, market).expect("paper run")
    };
    recorder.close().expect("journal close");
    let _ = timer.join();
    venue.shutdown();
    summary
}

fn print(title: &str, s: &live::Summary) {
    ringmaker_benches::print_header(title);
    for (hop, h) in &s.latency {
        if HOPS.contains(hop) {
            ringmaker_benches::print_row(hop.tag(), h);
        }
    }
}

fn p50(s: &live::Summary, hop: Hop) -> u64 {
    s.latency
        .iter()
        .find(|(h, _)| *h == hop)
        .map_or(0, |(_, h)| h.value_at_quantile(0.5))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test");
    let seconds = args
        .windows(2)
        .find(|w| w[0] == "--seconds")
        .map(|w| w[1].parse::<f64>().expect("--seconds takes a number"))
        .unwrap_or(if smoke { 3.0 } else { 60.0 });
    let (first, last) = ringmaker_benches::first_and_last_core();
    println!(
        "order_entry: feed core {first}, engine core {last}, gateway/housekeeping/timer on core {first}, venue threads on core {last}; {seconds} s per phase"
    );
    let out = std::env::temp_dir().join(format!(
        "ringmaker-bench-order-entry-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    // The dead-man switch refreshed often enough for a venue at recorded pace.
    let cfg = ringmaker_benches::pinned_run_config(
        first,
        last,
        false,
        "[venue]\ncountdown_secs = 120\ncountdown_every_secs = 30",
    );

    let live_s = run(&cfg, &out.join("live"), seconds, last, true);
    let sess = live_s.session.unwrap_or_default();
    print(
        &format!(
            "1. live order entry over loopback TLS ({} intents: {} places written, {} cancels, {} fills; threads {})",
            live_s.counters.engine_intents,
            sess.places,
            sess.cancels,
            sess.fills,
            live_s.pinning.describe()
        ),
        &live_s,
    );
    let sim_s = run(&cfg, &out.join("sim"), seconds, last, false);
    print(
        &format!(
            "2. baseline: the simulated venue on the same streams ({} intents)",
            sim_s.counters.engine_intents
        ),
        &sim_s,
    );
    let (live_send, sim_send) = (
        p50(&live_s, Hop::GatewaySend),
        p50(&sim_s, Hop::GatewaySend),
    );
    println!(
        "\ngateway_send p50: live {live_send} ns, simulated {sim_send} ns ({:.1}x); intent_sent p50: live {} ns, simulated {} ns",
        live_send as f64 / sim_send.max(1) as f64,
        p50(&live_s, Hop::IntentSent),
        p50(&sim_s, Hop::IntentSent)
    );
    let _ = std::fs::remove_dir_all(&out);
}
