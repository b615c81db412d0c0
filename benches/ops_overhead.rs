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
use runtime::live;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run(seconds: f64, ops: bool) -> (live::Summary, Option<Histogram<u64>>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let extra = if ops {
        format!("[ops]\nmetrics_listen = \"127.0.0.1:{port}\"\n")
    } else {
        "[ops]\ncontrol = false\n".to_owned()
    };
    let tag = format!("ops-{ops}");
    let client = ops.then(|| -> ringmaker_benches::BenchClient {
        Box::new(move |done: Arc<AtomicBool>, out: std::path::PathBuf| {
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
    ringmaker_benches::paper_run_beside(&tag, seconds, &extra, client)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let seconds = if smoke { 2.0 } else { 120.0 };
    let (off, _) = run(seconds, false);
    let (on, scrapes) = run(seconds, true);
    ringmaker_benches::print_paper_hops("operations off (baseline)", seconds, &off);
    ringmaker_benches::print_paper_hops("operations on, scraped every 100 ms", seconds, &on);
    if let Some(h) = &scrapes {
        ringmaker_benches::print_header("the scrape, as the client sees it (connect to last byte)");
        ringmaker_benches::print_row("GET /metrics", h);
    }
    ringmaker_benches::print_on_off(&off, &on);
}
