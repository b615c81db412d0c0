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
use runtime::live::{self, Hop};
use runtime::record::{JournalRecorder, Keep};
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
    let (first, last) = ringmaker_benches::first_and_last_core();
    let extra = match bus {
        Some((url, _)) => {
            format!("[bus]\nurl = \"{url}\"\nengine = \"bench\"\nheartbeat_ms = 50\n")
        }
        None => String::new(),
    };
    let cfg = ringmaker_benches::pinned_run_config(first, last, false, &extra);
    let out = std::env::temp_dir().join(format!(
        "ringmaker-bench-bus-{}-{}",
        std::process::id(),
        bus.is_some()
    ));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    let recorder =
        JournalRecorder::create_run(&out.join("journal"), &cfg, 64 << 20, 0, Keep::Durable)
            .expect("journal");
    let mut settings = ringmaker_benches::pipeline_settings(&out, false, Some(seconds));
    settings.speed = 2.0;
    settings.ops.control_dir = Some(out.clone());
    let done = Arc::new(AtomicBool::new(false));
    let client = bus.map(|(url, what)| {
        let (done, url) = (Arc::clone(&done), url.to_owned());
        std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: first });
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
    let (summary, recorder) = live::run(&cfg, &settings, recorder).expect("paper run");
    done.store(true, Ordering::Relaxed);
    let round_trips = client.map(|c| c.join().expect("bus client"));
    recorder.close().expect("journal close");
    let _ = std::fs::remove_dir_all(&out);
    (summary, round_trips)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let seconds = if smoke { 3.0 } else { 120.0 };
    let Some(bin) = test_support::nats::nats_server() else {
        println!("bus_overhead: no nats-server (Debian's nats-server package): nothing measured");
        return;
    };
    let server = test_support::nats::NatsServer::start(&bin);
    let url = server.url.clone();
    let (off, _) = run(seconds, None);
    let (on, _) = run(seconds, Some((&url, Client::Status)));
    let (_, round_trips) = run(seconds / 4.0, Some((&url, Client::HaltResume)));
    drop(server);
    for (name, s) in [
        ("bus off (baseline)", &off),
        (
            "bus on, heartbeat every 50 ms, status over the bus every 250 ms",
            &on,
        ),
    ] {
        ringmaker_benches::print_header(&format!(
            "{name}: first {seconds} s at 2x ({} events, {} intents, threads {})",
            s.counters.engine_events,
            s.counters.engine_intents,
            s.pinning.describe()
        ));
        for hop in [Hop::TickToIntent, Hop::ConsumeIntent, Hop::PublishConsume] {
            if let Some(h) = s.hop(hop) {
                ringmaker_benches::print_row(hop.tag(), h);
            }
        }
    }
    if let Some(h) = &round_trips {
        ringmaker_benches::print_header(
            "firm-wide halt / resume over the bus (a third run, a quarter as long): connect, \
             publish the request, the engine's ack held",
        );
        ringmaker_benches::print_row("ctl --bus round trip", h);
    }
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
