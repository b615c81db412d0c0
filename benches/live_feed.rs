//! Kernel receive stamp → intent published, live over loopback TLS at recorded pace, with the
//! split of every stage, in HdrHistograms (issue 14's latency budget: p50 ≤ 20 µs, p99 ≤ 100 µs).
//!
//! Three phases, one process, one run:
//!
//! 1. **Baseline: the machine's own stalls.** One thread spins on the feed's core and one on the
//!    engine's, reading the TSC; every gap between two reads is a stall (an interrupt, another
//!    thread on the core, the hypervisor). The histogram is what a message arriving at a random
//!    instant would wait for the spinner to come back (jHiccup's measure: each gap recorded with
//!    one sample per microsecond of it). Nothing the feed does can be faster than this.
//!    Then the floor of `kernel_read`: a plain loopback TCP sender and a reader spinning with the
//!    feed's own stamped `recvmsg` (no TLS, no WebSocket): kernel stamp → read returned.
//! 2. **Live.** `ringmaker venue` (in this process, its threads unpinned) replays the shipped
//!    USDⓈ-M recording at recorded pace over TLS on 127.0.0.1; the live paper pipeline
//!    (`runtime::live::run_market` on a `feeds::net::NetSource`, `depth@0ms`) follows it, feed
//!    thread pinned to the first core, engine to the last. Every hop the pipeline measures is
//!    printed; the wire hops split `wire_decode` into `kernel_read` (kernel stamp → the read that
//!    completed the message returned), `read_tls`, `tls_frame` (and `queued`: behind earlier
//!    messages of one record) and `frame_decode`; `wire_to_intent` is the budget's hop (one
//!    sample per batch that sent an order), `wire_engine_done` the same to the end of the
//!    engine's work for every market batch.
//! 3. **The same pipeline from the recording file** (no network), the same span at the same
//!    pace: what the ring and the engine cost without the wire, for comparison.
//!
//! Run: `cargo bench -p ringmaker-benches --bench live_feed` (about 5 minutes:
//! `-- --seconds N` for N seconds of each pipeline phase, default 120; `-- --test`: 3 s each,
//! a smoke run). `-- --layout engine`: gateway, housekeeping and timer threads on the engine's
//! core instead of the feed's. `-- --venue-core engine|feed|any`: where the venue's threads
//! run (default `engine`: the venue stands in for the exchange, which is not on the feed's core
//! in production; over loopback the sender's core also does the receive path's softirq work,
//! which a real NIC's interrupts do on a core chosen by IRQ affinity).

use hdrhistogram::Histogram;
use quanta::Clock;
use runtime::live::{self, Hop};
use runtime::record::{JournalRecorder, Keep};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUDGET_P50_NS: u64 = 20_000;
const BUDGET_P99_NS: u64 = 100_000;

/// The first and last core this process may use (read before anything is pinned).
fn cores() -> (Option<usize>, Option<usize>) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    match (ids.first(), ids.last()) {
        (Some(a), Some(b)) if a.id != b.id => (Some(a.id), Some(b.id)),
        (Some(a), _) => (Some(a.id), Some(a.id)),
        _ => (None, None),
    }
}

/// Phase 1: spinners on `cores`, each gap between two TSC reads over 1 µs recorded as the
/// waits of a message arriving during it (one sample per µs of the gap, from the gap down).
fn stalls(secs: f64, cores: &[usize]) -> Vec<(usize, Histogram<u64>, u64)> {
    let clock = Clock::new();
    let handles: Vec<_> = cores
        .iter()
        .map(|&core| {
            let clock = clock.clone();
            std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                let mut h = ringmaker_benches::latency_histogram();
                let end = Instant::now() + Duration::from_secs_f64(secs);
                let (mut last, mut loops, mut over_1us) = (clock.raw(), 0u64, 0u64);
                while loops & 0xfff != 0 || Instant::now() < end {
                    let now = clock.raw();
                    let gap = clock.delta_as_nanos(last, now);
                    if gap > 1_000 {
                        over_1us += 1;
                        // A message landing in the gap waits from the gap's length down to 0.
                        h.record_correct(gap, 1_000).expect("in range");
                    }
                    last = now;
                    loops += 1;
                }
                // The time not stalled: waits under 1 µs, one sample per µs spun.
                let spun_us = (secs * 1e6) as u64 - h.len().min((secs * 1e6) as u64);
                h.record_n(1, spun_us).expect("in range");
                (core, h, over_1us)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("stall thread"))
        .collect()
}

/// Phase 1b: the floor of `kernel_read` on this host: a plain TCP sender on `sender_core`
/// writes 400 bytes every 2 ms over loopback (no TLS, no WebSocket); a reader spinning on
/// `reader_core` with the feed's own stamped `recvmsg` records kernel receive stamp → read
/// returned, and how long the `recvmsg` that returned data took.
fn raw_reads(n: usize, reader_core: usize, sender_core: usize) -> (Histogram<u64>, Histogram<u64>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let sender = std::thread::spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: sender_core });
        let (mut s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let buf = [7u8; 400];
        for _ in 0..n {
            std::thread::sleep(Duration::from_millis(2));
            s.write_all(&buf).expect("write");
        }
    });
    let reader = std::thread::spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: reader_core });
        let tcp = mio::net::TcpStream::connect(addr).expect("connect");
        let mut s = feeds::net::stamp::StampedTcpStream::new(tcp);
        let (mut stamp_to_read, mut call) = (
            ringmaker_benches::latency_histogram(),
            ringmaker_benches::latency_histogram(),
        );
        let mut buf = vec![0u8; 64 << 10];
        let (mut got, end) = (0usize, Instant::now() + Duration::from_secs(60));
        while got < n * 400 && Instant::now() < end {
            let t0 = Instant::now();
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    let took = t0.elapsed().as_nanos() as u64;
                    let now = feeds::net::stamp::system_now_ns();
                    got += k;
                    call.saturating_record(took.max(1));
                    if let Some(st) = s.last_stamp() {
                        stamp_to_read.saturating_record((now - st.ns).max(1) as u64);
                    }
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        (stamp_to_read, call)
    });
    sender.join().expect("sender");
    reader.join().expect("reader")
}

/// Phase 2: the venue in this process, the live pipeline on its streams for `seconds`.
fn live_run(
    cfg: &runtime::config::RunConfig,
    out: &std::path::Path,
    seconds: f64,
    venue_core: Option<usize>,
) -> (live::Summary, feeds::net::NetStats) {
    let venue = ringmaker_benches::start_venue(cfg, out, false, venue_core);
    let s = ringmaker_benches::pipeline_settings(out, true, None);
    let (market, counters) = ringmaker_benches::live_market(cfg, &venue, Arc::clone(&s.stop));
    let recorder =
        JournalRecorder::create_run(&out.join("journal-live"), cfg, 64 << 20, 0, Keep::Durable)
            .expect("journal");
    let stop = Arc::clone(&s.stop);
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Release);
    });
    let (summary, recorder) = live::run_market(cfg, &s, recorder, market).expect("live run");
    recorder.close().expect("journal close");
    let _ = timer.join();
    venue.shutdown();
    (summary, counters.snapshot())
}

/// Phase 3: the same pipeline from the recording file, the same span and pace.
fn file_run(
    cfg: &runtime::config::RunConfig,
    out: &std::path::Path,
    seconds: f64,
) -> live::Summary {
    let s = ringmaker_benches::pipeline_settings(out, false, Some(seconds));
    let recorder =
        JournalRecorder::create_run(&out.join("journal-file"), cfg, 64 << 20, 0, Keep::Durable)
            .expect("journal");
    let (summary, recorder) = live::run(cfg, &s, recorder).expect("paper run");
    recorder.close().expect("journal close");
    summary
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test");
    let layout_engine = args
        .windows(2)
        .any(|w| w[0] == "--layout" && w[1] == "engine");
    let seconds = args
        .windows(2)
        .find(|w| w[0] == "--seconds")
        .map(|w| w[1].parse::<f64>().expect("--seconds takes a number"))
        .unwrap_or(if smoke { 3.0 } else { 120.0 });
    let stall_secs = if smoke { 1.0 } else { 20.0 };
    let (first, last) = match cores() {
        (Some(a), Some(b)) => (a, b),
        _ => (0, 0),
    };
    let venue_arg = args
        .windows(2)
        .find(|w| w[0] == "--venue-core")
        .map_or("engine", |w| w[1].as_str());
    let venue_core = match venue_arg {
        "engine" => Some(last),
        "feed" => Some(first),
        "any" => None,
        other => panic!("--venue-core takes engine, feed or any, not {other}"),
    };
    println!(
        "live_feed: feed core {first}, engine core {last}, gateway/housekeeping/timer on core {}, venue threads on {}; {seconds} s per pipeline phase",
        if layout_engine { last } else { first },
        venue_core.map_or("any core".to_string(), |c| format!("core {c}"))
    );

    ringmaker_benches::print_header(&format!(
        "1. baseline: stalls of a spinner on each core ({stall_secs} s; the wait of a message arriving at a random instant)"
    ));
    let mut spin_cores = vec![first];
    if last != first {
        spin_cores.push(last);
    }
    for (core, h, n) in stalls(stall_secs, &spin_cores) {
        ringmaker_benches::print_row(&format!("core {core} ({n} stalls > 1 µs)"), &h);
    }

    ringmaker_benches::print_header(&format!(
        "1b. baseline: a plain loopback TCP reader with the feed's stamped recvmsg (reader on core {first}, sender on core {last}; 400 bytes every 2 ms)"
    ));
    let (raw, call) = raw_reads(if smoke { 200 } else { 3_000 }, first, last);
    ringmaker_benches::print_row("kernel stamp → read returned", &raw);
    ringmaker_benches::print_row("recvmsg that returned data", &call);

    let out =
        std::env::temp_dir().join(format!("ringmaker-bench-live-feed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    let cfg = ringmaker_benches::pinned_run_config(first, last, layout_engine, "");

    let (live_s, net) = live_run(&cfg, &out, seconds, venue_core);
    ringmaker_benches::print_header(&format!(
        "2. live over loopback TLS at recorded pace ({} messages, {} intents, book valid {:.1}%, threads {})",
        net.messages,
        live_s.counters.engine_intents,
        live_s.valid_share() * 100.0,
        live_s.pinning.describe()
    ));
    for (hop, h) in &live_s.latency {
        ringmaker_benches::print_row(hop.tag(), h);
    }

    let file_s = file_run(&cfg, &out, seconds);
    ringmaker_benches::print_header(&format!(
        "3. the same pipeline from the recording file, same span and pace ({} events, {} intents)",
        file_s.counters.engine_events, file_s.counters.engine_intents
    ));
    for (hop, h) in &file_s.latency {
        if !hop.is_wire() {
            ringmaker_benches::print_row(hop.tag(), h);
        }
    }

    println!();
    for hop in [Hop::WireToIntent, Hop::WireToEngineDone] {
        if let Some(h) = live_s.hop(hop) {
            ringmaker_benches::verdict(hop.tag(), h, BUDGET_P50_NS, BUDGET_P99_NS);
        }
    }
    if let (Some(l), Some(f)) = (live_s.hop(Hop::TickToIntent), file_s.hop(Hop::TickToIntent)) {
        println!(
            "tick_to_intent (decode done → intent): live p50 {} ns, file p50 {} ns",
            l.value_at_quantile(0.5),
            f.value_at_quantile(0.5)
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
