//! What operations cost the hot path: the paper pipeline on the shipped recording twice, the
//! baseline with operations off (no metrics endpoint, no control socket) and then with both on
//! and a client scraping `/metrics` every 100 ms (ten times a usual 1 s scrape interval) and
//! asking `ctl status` every second. Compared: tick-to-intent and the engine's consume-to-intent
//! (HdrHistograms of the same run shape), and the scrape's own duration as the client sees it.
//!
//! Threads pinned as in `ring_hop` (engine on the last core, everything else on the first; the
//! ops thread and the scraping client share the first core with the feed).
//!
//! Run: `cargo bench -p ringmaker-benches --bench ops_overhead` (the first 120 s of the
//! recording at 2x pace, twice: about 2 minutes); `-- --test`: 2 s each.

use hdrhistogram::Histogram;
use runtime::live::{self, Hop};
use runtime::record::{JournalRecorder, Keep};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run(seconds: f64, ops: bool) -> (live::Summary, Option<Histogram<u64>>) {
    let (first, last) = ringmaker_benches::first_and_last_core();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let extra = if ops {
        format!("[ops]\nmetrics_listen = \"127.0.0.1:{port}\"\n")
    } else {
        "[ops]\ncontrol = false\n".to_owned()
    };
    let cfg = ringmaker_benches::pinned_run_config(first, last, false, &extra);
    let out = std::env::temp_dir().join(format!(
        "ringmaker-bench-ops-{}-{}",
        std::process::id(),
        ops
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
    let client = ops.then(|| {
        let (done, out) = (Arc::clone(&done), out.clone());
        std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: first });
            let mut h = ringmaker_benches::latency_histogram();
            let mut last_ctl = Instant::now();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
                    let mut body = Vec::new();
                    if s.read_to_end(&mut body).is_ok() && body.starts_with(b"HTTP/1.1 200") {
                        h.saturating_record(t.elapsed().as_nanos() as u64);
                    }
                }
                if last_ctl.elapsed() >= Duration::from_secs(1) {
                    last_ctl = Instant::now();
                    let _ = runtime::live::ops::control::request(&out, "status");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            h
        })
    });
    let (summary, recorder) = live::run(&cfg, &settings, recorder).expect("paper run");
    done.store(true, Ordering::Relaxed);
    let scrapes = client.map(|c| c.join().expect("scraper"));
    recorder.close().expect("journal close");
    let _ = std::fs::remove_dir_all(&out);
    (summary, scrapes)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let seconds = if smoke { 2.0 } else { 120.0 };
    let (off, _) = run(seconds, false);
    let (on, scrapes) = run(seconds, true);
    for (name, s) in [
        ("operations off (baseline)", &off),
        ("operations on, scraped every 100 ms", &on),
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
    if let Some(h) = &scrapes {
        ringmaker_benches::print_header("the scrape, as the client sees it (connect to last byte)");
        ringmaker_benches::print_row("GET /metrics", h);
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
