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
//! Run: `cargo bench -p ringmaker-benches --bench bus_overhead` (the first 120 s of the recording
//! at 2x pace, twice, then 30 s: about 4.5 minutes); `-- --test`: 3 s, 3 s and 0.75 s.

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
    /// `halt` and `resume` alternately, every 250 ms: the firm-wide halt, timed.
    HaltResume,
}

fn run(seconds: f64, bus: Option<(&str, Client)>) -> (live::Summary, Option<Histogram<u64>>) {
    let extra = match bus {
        Some((url, _)) => {
            format!("[bus]\nurl = \"{url}\"\nengine = \"bench\"\nheartbeat_ms = 50\n")
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
                    (Client::Status, _) => "status",
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
    let (_, round_trips) = run(seconds / 4.0, Some((&url, Client::HaltResume)));
    drop(server);
    ringmaker_benches::print_paper_hops("bus off (baseline)", seconds, &off);
    ringmaker_benches::print_paper_hops(
        "bus on, heartbeat every 50 ms, status over the bus every 250 ms",
        seconds,
        &on,
    );
    if let Some(h) = &round_trips {
        ringmaker_benches::print_header(
            "firm-wide halt / resume over the bus (a third run, a quarter as long): connect, \
             publish the request, the engine's ack held",
        );
        ringmaker_benches::print_row("ctl --bus round trip", h);
    }
    ringmaker_benches::print_on_off(&off, &on);
}
