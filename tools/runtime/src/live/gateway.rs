//! The gateway thread: drives a [`Venue`] in real time. In paper mode that is the simulated venue
//! (`gateway::sim`); the Binance order-entry session will implement the same trait.
//!
//! It reads the engine's intents from the output ring and, behind the engine (a dependent
//! consumer of the input ring), every event the engine consumed. Market events go to the venue
//! at their recording time; execution reports come back into the input ring, tagged
//! [`SRC_GATEWAY`].
//!
//! # Time
//!
//! The venue runs on replay time (the recording's clock, see [`super::clock`]), with the same
//! latency model as a backtest (`--entry-latency-us`, `--response-latency-us`, in replay time).
//! What differs is *when* an intent is sent:
//!
//! - **paced** (`--speed` > 0): against the wall clock. An intent reaches the venue `entry`
//!   after the gateway read it, at the wall-clock replay time (so the engine's and the rings'
//!   own delays count, as they would live), and the venue is advanced to the wall-clock replay
//!   time on every loop, so acknowledgements arrive on time in a quiet market. The venue's
//!   clock never passes the wall-clock replay time, so no intent arrives late.
//! - **flat out**: against event time, as in a backtest. An intent made at engine time `t`
//!   reaches the venue at `t + entry`; time moves only with the events (market data and timer
//!   ticks) the gateway reads behind the engine. An intent read after the venue's clock passed
//!   `t + entry` arrives at that clock instead (`SimStats::late_intents`).
//!
//! Either way, before each market event at `t` the venue delivers every report due by `t`. At
//! recorded pace a 2 ms entry latency is 2 ms of wall time. What reaches the journal is only
//! what the engine consumed; the venue's view is not journaled and need not be reproducible —
//! the reports it produced are, as engine inputs.
//!
//! # Never blocks
//!
//! A report that finds the input ring full waits in the gateway (`report_retries`) and is
//! retried on the next loop, while the gateway keeps draining both rings, so the engine (which
//! retries a full output ring) and the gateway never wait on each other. No report is dropped.
//!
//! # Idle
//!
//! With a core of its own ([`Idle::Spin`]) the gateway busy-polls, as a live gateway would.
//! Sharing a core (a small host: the plan puts it with the feed) it spins a few loops, then
//! sleeps up to 200 µs per idle loop ([`Idle::Backoff`]), so it does not steal the feed's time.
//! It never yields: a yield to a spinning thread keeps the gateway runnable, and the scheduler
//! then splits the core between the two in slices of milliseconds (measured: the feed thread
//! preempted ~400 times a second for up to a slice, and the gateway reading intents 1.3 ms late
//! at p50; sleeping, 112–185 µs).
//! The sleep is kept under a quarter of the simulated entry latency in wall time (2 ms at
//! `--speed 1`, 40 µs at `--speed 50`), so the simulation barely notices; what it still costs
//! shows in the `intent_gateway` hop and in `SimStats::late_intents` (an intent the gateway read
//! after the venue's clock had passed its arrival time arrives at that clock), never in
//! tick-to-intent.

use super::counters::Counters;
use super::latency::{Hop, StampTx};
use super::rings::{
    GatewayInput, GatewayOutput, InputGate, InputProducer, SRC_FEED, SRC_GATEWAY, SRC_TIMER,
};
use super::shared::Shared;
use disruptor::Polling;
use engine::Event;
use gateway::Venue;
use quanta::Clock;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the shutdown drain may take before the gateway gives up (and says so).
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What the gateway does when there is nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Busy-poll (the gateway has a core of its own).
    Spin,
    /// Spin a few loops, then sleep this long per idle loop (the core is shared).
    Backoff(Duration),
}

impl Idle {
    /// Backoff whose sleep stays well under the simulated entry latency at `speed`: at most
    /// 200 µs, at most a quarter of `entry_latency_ns / speed` of wall time, at least 20 µs.
    pub fn backoff(entry_latency_ns: i64, speed: f64) -> Idle {
        let cap = 200_000.0;
        let ns = if speed > 0.0 {
            (entry_latency_ns.max(0) as f64 / speed / 4.0).clamp(20_000.0, cap)
        } else {
            cap
        };
        Idle::Backoff(Duration::from_nanos(ns as u64))
    }

    #[inline]
    fn wait(self, idle_loops: u32, shared: &Shared, more: impl FnOnce() -> bool) {
        match self {
            Idle::Spin => std::hint::spin_loop(),
            // Sharing a core with a spinning thread, spinning or yielding takes that thread's
            // core for a scheduler slice: a few spins, then sleep (the engine wakes it for
            // intents).
            Idle::Backoff(_) if idle_loops < 16 => std::hint::spin_loop(),
            Idle::Backoff(d) => shared.gateway_wake.park(d, more),
        }
    }
}

/// How the gateway ended.
#[derive(Debug, Clone, Copy)]
pub struct GatewayEnd<S> {
    /// Venue counters.
    pub sim: S,
    /// The drain hit its 10 s limit: some reports may not have reached the engine.
    pub drain_timed_out: bool,
    /// Orders still resting at the venue at the end, over all instruments.
    pub open_orders: usize,
}

/// The gateway thread's ends of the rings.
#[allow(missing_debug_implementations)] // holds disruptor handles
pub struct GatewayRings {
    /// Intents from the engine.
    pub intents: GatewayOutput,
    /// The input ring, behind the engine.
    pub events: GatewayInput,
    /// Where reports go.
    pub reports: InputProducer,
    /// The emulated capacity of a small input ring, told what the gateway has read.
    pub gate: Option<Arc<InputGate>>,
}

/// Runs the gateway until the shutdown drain is complete. Drops its input producer on return.
pub fn run<V: Venue>(
    mut venue: V,
    instruments: usize,
    rings: GatewayRings,
    idle_mode: Idle,
    mut stamps: StampTx,
    clock: Clock,
    shared: Arc<Shared>,
) -> GatewayEnd<V::Stats> {
    let GatewayRings {
        mut intents,
        mut events,
        mut reports,
        gate,
    } = rings;
    let mut read = 0u64;
    let c = &shared.counters;
    let mut pending: VecDeque<Event> = VecDeque::with_capacity(4096);
    let mut published = 0u64;
    let mut idle = 0u32;
    let mut drain_started: Option<Instant> = None;
    shared.gateway_wake.register();
    // A live session reads its sockets once a loop (step 3), not at every market event.
    let follows_market = venue.follows_market();
    let mut drain_timed_out = false;
    let mut last_ops = Instant::now();
    loop {
        let mut busy = false;
        // Once a second: a live session's link counts for the metrics endpoint.
        if last_ops.elapsed() >= Duration::from_secs(1) {
            last_ops = Instant::now();
            if let Some(l) = venue.link_counts() {
                let v = &shared.ops.venue;
                v.live.store(1, Ordering::Relaxed);
                v.api_reconnects
                    .store(l.order_entry_connects.saturating_sub(1), Ordering::Relaxed);
                v.user_reconnects
                    .store(l.user_stream_connects.saturating_sub(1), Ordering::Relaxed);
                v.rate_limited.store(l.rate_limited, Ordering::Relaxed);
            }
        }
        // 0. What the engine has answered of the venue's reports: before the intents are read,
        //    so every intent of an answered batch is read in this loop (see `Shared`).
        venue.on_consumed(shared.reports_consumed.load(Ordering::Acquire));
        // 1. Intents first: they were made before the events still queued behind the engine.
        let paced_now = if shared.replay.flat_out() {
            None
        } else {
            shared.replay.now()
        };
        if let Ok(mut g) = intents.poll() {
            let mut n = 0;
            for s in &mut g {
                let t = clock.raw();
                stamps.send(Hop::IntentGateway, s.t_intent, t);
                let sent = match paced_now {
                    Some(now) => now.max(s.intent.time_ns),
                    None => s.intent.time_ns,
                };
                venue.send(&s.intent, sent);
                let done = clock.raw();
                stamps.send(Hop::IntentSent, s.t_intent, done);
                stamps.send(Hop::GatewaySend, t, done);
                n += 1;
            }
            Counters::add(&c.gateway_intents, n);
            busy = true;
        }
        // 2. What the engine has consumed: market data to the venue, time from everything.
        match events.take(256) {
            Ok(mut g) => {
                for s in &mut g {
                    read += 1;
                    let ev = s.event;
                    if !follows_market {
                        continue;
                    }
                    match ev.source {
                        SRC_FEED => {
                            venue.poll(ev.local_time_ns, &mut |r| pending.push_back(*r));
                            venue.on_market(&ev);
                        }
                        SRC_TIMER => venue.poll(ev.local_time_ns, &mut |r| pending.push_back(*r)),
                        _ => {}
                    }
                }
                drop(g);
                if let Some(gate) = &gate {
                    gate.consumed(read);
                }
                busy = true;
            }
            Err(Polling::NoEvents) | Err(Polling::Shutdown) => {}
        }
        // 3. Paced: the wall clock moves the venue too.
        if let Some(now) = paced_now {
            venue.poll(now, &mut |r| pending.push_back(*r));
        }
        // 4. Shutdown drain: once the engine has answered the halt, deliver what is in flight
        //    without waiting for the clock.
        let draining = shared.engine_halted();
        if draining && pending.is_empty() && !intents.has_available() {
            drain_started.get_or_insert_with(Instant::now);
            if let Some(due) = venue.next_due() {
                venue.poll(due, &mut |r| pending.push_back(*r));
                busy = true;
            } else if shared.reports_consumed.load(Ordering::Acquire) >= published
                && shared.output_backlog.load(Ordering::Acquire) == 0
                && !intents.has_available()
            {
                break;
            }
        }
        // An aborted run (a thread died) may never see the engine halt: the limit still holds.
        if shared.abort.load(Ordering::Relaxed) && shared.feed_done.load(Ordering::Acquire) {
            drain_started.get_or_insert_with(Instant::now);
        }
        if drain_started.is_some_and(|s| s.elapsed() > DRAIN_LIMIT) {
            drain_timed_out = true;
            break;
        }
        // 5. Reports into the input ring; what does not fit waits for the next loop.
        while let Some(r) = pending.front() {
            let mut r = *r;
            r.source = SRC_GATEWAY;
            let t = clock.raw();
            let ok = reports.try_publish(|s| {
                s.event = r;
                s.t_decode = 0;
                s.t_publish = t;
            });
            if !ok {
                Counters::add(&c.report_retries, 1);
                break;
            }
            pending.pop_front();
            published += 1;
            Counters::add(&c.reports, 1);
            busy = true;
        }
        if busy {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            idle_mode.wait(idle, &shared, || intents.has_available());
        }
    }
    venue.close();
    let open_orders = (0..instruments).map(|i| venue.open_orders(i as u16)).sum();
    GatewayEnd {
        sim: venue.stats(),
        drain_timed_out,
        open_orders,
    }
}
