//! Ring hop latency and tick-to-intent through the paper pipeline, in HdrHistograms.
//!
//! 1. **One hop, producer thread → consumer thread**, a TSC stamp in a 64-byte message, the
//!    consumer busy-polling: disruptor single-producer (the output ring's shape), disruptor
//!    multi-producer (the input ring's shape, one producer) and the baseline in the same run,
//!    a bounded `crossbeam-channel` polled with `try_recv`. The producer sends one message every
//!    2 µs (latency, not throughput: no queue builds up). With two or more cores the producer is
//!    pinned to the first and the consumer to the last.
//! 2. **Tick-to-intent** (decode done → intent published) through the real pipeline
//!    (`runtime::live::run`, flat-out off): the whole shipped recording (345 s) at recorded
//!    pace (`--speed 1`), engine pinned to the last core, feed, gateway and housekeeping to the
//!    first, with every hop's histogram. The whole recording, not a minute of it: only about
//!    one batch in 700 makes an intent out of market data, and p99 of a minute's ~35 samples
//!    would be its maximum. The batch that completes the initial book sync (snapshot, thousands
//!    of levels) is reported apart, as `resync_to_intent`.
//!
//! Run: `cargo bench -p ringmaker-benches --bench ring_hop` (about 6 minutes; `-- --test`:
//! 20,000 messages per ring and 2 s of recording, a few seconds in all;
//! `-- --seconds N`: the first N seconds of the recording).

use crossbeam_channel::TryRecvError;
use disruptor::{build_multi_producer, build_single_producer, BusySpin, Polling, Producer};
use hdrhistogram::Histogram;
use quanta::Clock;
use runtime::live::{self, Hop};

/// One message: a TSC stamp, padded to a cache line like an engine event.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Msg {
    stamp: u64,
    seq: u64,
}

const GAP_NS: u64 = 2_000;

/// The first and last core this process may use (read before anything is pinned).
fn cores() -> (Option<usize>, Option<usize>) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    match (ids.first(), ids.last()) {
        (Some(a), Some(b)) if a.id != b.id => (Some(a.id), Some(b.id)),
        _ => (None, None),
    }
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// Spins until `gap_ns` after `since`.
fn pace(clock: &Clock, since: u64) {
    while clock.delta_as_nanos(since, clock.raw()) < GAP_NS {
        std::hint::spin_loop();
    }
}

/// Runs `send` on a producer thread and `recv` on a consumer thread, pinned apart when the
/// machine has two cores; `recv` returns the stamp of each message it gets.
fn hop<R: FnMut() -> Option<u64> + Send + 'static>(
    n: u64,
    clock: &Clock,
    (producer_core, consumer_core): (Option<usize>, Option<usize>),
    send: impl FnOnce(u64, Clock) + Send + 'static,
    mut recv: R,
) -> Histogram<u64> {
    let c = clock.clone();
    let consumer = std::thread::spawn(move || {
        pin(consumer_core);
        let mut h = ringmaker_benches::latency_histogram();
        let mut got = 0;
        while got < n {
            if let Some(stamp) = recv() {
                let now = c.raw();
                h.saturating_record(c.delta_as_nanos(stamp, now).max(1));
                got += 1;
            } else {
                std::hint::spin_loop();
            }
        }
        h
    });
    let c = clock.clone();
    let producer = std::thread::spawn(move || {
        pin(producer_core);
        send(n, c);
    });
    producer.join().expect("producer thread");
    consumer.join().expect("consumer thread")
}

/// A receive closure over a disruptor poller (single- or multi-producer barrier: the barrier
/// trait is private to the crate, so a macro rather than a generic function).
macro_rules! poll_stamps {
    ($poller:expr) => {{
        let mut poller = $poller;
        let mut buf = std::collections::VecDeque::with_capacity(1024);
        move || {
            if let Some(s) = buf.pop_front() {
                return Some(s);
            }
            match poller.poll() {
                Ok(mut g) => {
                    for m in &mut g {
                        buf.push_back(m.stamp);
                    }
                    buf.pop_front()
                }
                Err(Polling::NoEvents) | Err(Polling::Shutdown) => None,
            }
        }
    }};
}

/// One disruptor hop: `producer` publishes stamped messages, `recv` reads them.
fn disruptor_hop(
    n: u64,
    clock: &Clock,
    cores: (Option<usize>, Option<usize>),
    mut producer: impl Producer<Msg> + Send + 'static,
    recv: impl FnMut() -> Option<u64> + Send + 'static,
) -> Histogram<u64> {
    hop(
        n,
        clock,
        cores,
        move |n, c| {
            for seq in 0..n {
                let t = c.raw();
                producer.publish(|m| {
                    m.stamp = t;
                    m.seq = seq;
                });
                pace(&c, t);
            }
        },
        recv,
    )
}

fn disruptor_spsc(n: u64, clock: &Clock, cores: (Option<usize>, Option<usize>)) -> Histogram<u64> {
    let (poller, b) = build_single_producer(1024, Msg::default, BusySpin).new_event_poller();
    disruptor_hop(n, clock, cores, b.build(), poll_stamps!(poller))
}

fn disruptor_mpsc(n: u64, clock: &Clock, cores: (Option<usize>, Option<usize>)) -> Histogram<u64> {
    let (poller, b) = build_multi_producer(1024, Msg::default, BusySpin).new_event_poller();
    disruptor_hop(n, clock, cores, b.build(), poll_stamps!(poller))
}

fn crossbeam(n: u64, clock: &Clock, cores: (Option<usize>, Option<usize>)) -> Histogram<u64> {
    let (tx, rx) = crossbeam_channel::bounded::<Msg>(1024);
    hop(
        n,
        clock,
        cores,
        move |n, c| {
            for seq in 0..n {
                let t = c.raw();
                tx.send(Msg { stamp: t, seq }).expect("receiver alive");
                pace(&c, t);
            }
        },
        move || match rx.try_recv() {
            Ok(m) => Some(m.stamp),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        },
    )
}

fn pipeline(seconds: Option<f64>, (first, last): (Option<usize>, Option<usize>)) -> live::Summary {
    let text = std::fs::read_to_string(ringmaker_benches::workspace("configs/default.toml"))
        .expect("configs/default.toml");
    let cpu = match (first, last) {
        (Some(a), Some(b)) => {
            format!("\n[cpu]\nengine = {b}\nfeeds = [{a}]\ngateway = {a}\nhousekeeping = {a}\n")
        }
        _ => "\n[cpu]\nengine = 0\nfeeds = [0]\ngateway = 0\nhousekeeping = 0\n".to_string(),
    };
    let cfg = runtime::config::RunConfig::from_toml(&(text + &cpu)).expect("valid config");
    let (out, recorder) = ringmaker_benches::paper_out("ring-hop", &cfg);
    let settings = ringmaker_benches::pipeline_settings(&out, false, seconds);
    let (summary, recorder) = live::run(&cfg, &settings, recorder).expect("paper run");
    recorder.close().expect("journal close");
    let _ = std::fs::remove_dir_all(&out);
    summary
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test");
    let seconds_arg = args
        .windows(2)
        .find(|w| w[0] == "--seconds")
        .map(|w| w[1].parse::<f64>().expect("--seconds takes a number"));
    let (n, seconds) = if smoke {
        (20_000, Some(2.0))
    } else {
        (1_000_000, seconds_arg)
    };
    let clock = Clock::new();
    let cores = cores();
    let (p, c) = cores;
    println!(
        "ring_hop: {n} messages per ring, one every {GAP_NS} ns; producer core {p:?}, consumer core {c:?}"
    );
    ringmaker_benches::print_header("one hop, producer → consumer (busy-poll)");
    let spsc = disruptor_spsc(n, &clock, cores);
    ringmaker_benches::print_row("disruptor single-producer", &spsc);
    let mpsc = disruptor_mpsc(n, &clock, cores);
    ringmaker_benches::print_row("disruptor multi-producer", &mpsc);
    let cb = crossbeam(n, &clock, cores);
    ringmaker_benches::print_row("crossbeam-channel bounded (baseline)", &cb);
    let ratio = |q: f64| cb.value_at_quantile(q) as f64 / spsc.value_at_quantile(q).max(1) as f64;
    println!(
        "crossbeam / disruptor (single-producer): p50 {:.2}x, p99 {:.2}x",
        ratio(0.5),
        ratio(0.99)
    );

    let s = pipeline(seconds, cores);
    let span = match seconds {
        Some(s) => format!("first {s} s of the recording"),
        None => "the whole recording".to_string(),
    };
    ringmaker_benches::print_header(&format!(
        "paper pipeline: {span} at recorded pace ({} events, {} intents, threads {})",
        s.counters.engine_events,
        s.counters.engine_intents,
        s.pinning.describe()
    ));
    for (hop, h) in &s.latency {
        ringmaker_benches::print_row(hop.tag(), h);
    }
    if let Some(h) = s.hop(Hop::TickToIntent) {
        ringmaker_benches::verdict("tick-to-intent", h, 5_000, 25_000);
    }
}
