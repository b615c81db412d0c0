//! What the bus link (issue 19) costs the hot path, and how long a firm-wide halt takes: the
//! paper pipeline on the shipped recording against a real `nats-server` on loopback (with
//! JetStream, as the tests run it): the baseline without `[bus]`, then with it on, its heartbeat
//! every 50 ms (ten times the default 500 ms) and a client asking `status` over the bus every
//! 250 ms (the engine does the same work as in the baseline); compared: tick-to-intent, the
//! engine's consume-to-intent and the input ring's publish-to-consume (HdrHistograms of the same
//! run shape). Then a third run in which the client sends `halt` and `resume` alternately every
//! 250 ms, each timed as `ringmaker ctl --bus` does it: connect, publish the request, hold the
//! engine's ack (which waits until the engine has consumed the command: the ack carries the
//! resulting mode).
//!
//! Threads pinned as in `ops_overhead` (engine on the last core, everything else, the bus thread,
//! the server and the client included, on the first).
//!
//! `nats-server` is found as the tests find it (`test_support::nats`); without one the bench
//! says so and measures nothing (with `RINGMAKER_REQUIRE_NATS=1`, as in CI, it fails).
//!
//! A fourth run has `[firm]` on too (a limit far above what the run uses): its `FirmLimit`
//! events, one per heartbeat, through the input ring, against the same baseline.
//!
//! Run: `cargo bench -p ringmaker-benches --bench bus_overhead` (the first 120 s of the recording
//! at 2x pace, three times, then 30 s: about 6.5 minutes); `-- --test`: 3 s, 3 s, 3 s and 0.75 s.

use hdrhistogram::Histogram;
use runtime::live;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the client does during a run with the bus on.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// `status` over the bus every 250 ms: the engine does as without the bus.
    Status,
    /// The same, with `[firm]` on: a limit far above what the run uses (the engine quotes as
    /// without it), so the cost seen is the bus thread's `FirmLimit` events through the input
    /// ring (a new room at every heartbeat, as the use moves with the fair value).
    Firm,
    /// `halt` and `resume` alternately, every 250 ms: the firm-wide halt, timed.
    HaltResume,
}

fn run(seconds: f64, bus: Option<(&str, Client)>) -> (live::Summary, Option<Histogram<u64>>) {
    let extra = match bus {
        Some((url, what)) => {
            let mut e = format!("[bus]\nurl = \"{url}\"\nengine = \"bench\"\nheartbeat_ms = 50\n");
            if what == Client::Firm {
                // A second engine never heard, with a sliver of a share: the bench's room then
                // follows its use, so it changes at every heartbeat.
                e.push_str(
                    "[firm]\nshares = { bench = 1.0, ghost = 0.001 }\n[[firm.asset]]\n\
                     asset = \"BTC\"\ngross_notional = 1e9\nnet_notional = 1e9\n",
                );
            }
            e
        }
        None => String::new(),
    };
    let client = bus.map(|(url, what)| -> ringmaker_benches::BenchClient {
        let url = url.to_owned();
        Box::new(move |done: Arc<AtomicBool>, _out| {
            let mut h = ringmaker_benches::latency_histogram();
            // Until the run is up and on the bus.
            std::thread::sleep(Duration::from_secs(1));
            let mut halt = true;
            while !done.load(Ordering::Relaxed) {
                let verb = match (what, halt) {
                    (Client::Status | Client::Firm, _) => "status",
                    (Client::HaltResume, true) => "halt",
                    (Client::HaltResume, false) => "resume",
                };
                let t = Instant::now();
                let acks = runtime::bus::request(
                    &url,
                    "ringmaker",
                    Some("bench"),
                    verb,
                    Some(1),
                    Duration::from_secs(2),
                );
                if acks.is_ok_and(|a| a.first().is_some_and(|k| k.result == "ok")) {
                    h.saturating_record(t.elapsed().as_nanos() as u64);
                    halt = !halt;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            h
        })
    });
    let tag = match bus {
        None => "bus-off",
        Some((_, Client::Status)) => "bus-status",
        Some((_, Client::Firm)) => "bus-firm",
        Some((_, Client::HaltResume)) => "bus-halt",
    };
    ringmaker_benches::paper_run_beside(tag, seconds, &extra, client)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let seconds = if smoke { 3.0 } else { 120.0 };
    let Some(bin) = test_support::nats::nats_server_or_skip("bus_overhead") else {
        return;
    };
    let server = test_support::nats::NatsServer::start(&bin);
    let url = server.url.clone();
    let (off, _) = run(seconds, None);
    let (on, _) = run(seconds, Some((&url, Client::Status)));
    let (firm, _) = run(seconds, Some((&url, Client::Firm)));
    let (_, round_trips) = run(seconds / 4.0, Some((&url, Client::HaltResume)));
    drop(server);
    ringmaker_benches::print_paper_hops("bus off (baseline)", seconds, &off);
    ringmaker_benches::print_paper_hops(
        "bus on, heartbeat every 50 ms, status over the bus every 250 ms",
        seconds,
        &on,
    );
    ringmaker_benches::print_paper_hops(
        "bus and [firm] on: a FirmLimit event at every 50 ms heartbeat, status every 250 ms",
        seconds,
        &firm,
    );
    println!(
        "[firm] run: {} FirmLimit events through the input ring",
        firm.counters.firm_limits
    );
    if let Some(h) = &round_trips {
        ringmaker_benches::print_header(
            "firm-wide halt / resume over the bus (a third run, a quarter as long): connect, \
             publish the request, the engine's ack held",
        );
        ringmaker_benches::print_row("ctl --bus round trip", h);
    }
    ringmaker_benches::print_on_off(&off, &on);
    println!("with [firm]:");
    ringmaker_benches::print_on_off(&off, &firm);
}
