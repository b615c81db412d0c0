//! The engine thread (the business-logic processor): busy-polls the input ring, feeds the
//! engine through the [`Host`] (so the journal records exactly what the engine saw, in order),
//! and publishes intents into the output ring.
//!
//! # Batches
//!
//! One `poll()` of the input ring returns every event published so far; the engine consumes
//! them one by one (`on_event`), and when the poll is exhausted —
//! disruptor's end of batch: the ring was momentarily drained — calls `on_batch_end` (journaled
//! as a batch-end record). Events published meanwhile form the next batch. Under load batches
//! grow and the engine requotes less often, against the newest book. The journal holds this one
//! interleaving, so `ringmaker replay` reproduces it exactly.
//!
//! # Journal writes after the intents
//!
//! The engine thread owns the [`JournalRecorder`] behind a [`Deferred`] recorder: while a batch
//! is processed, every input, intent and mode change is copied into a buffer allocated up front;
//! right after the batch end (its intents are in the output ring by then) the buffer is written
//! into the journal, in the same order. So a depth message's hundreds of levels are journaled
//! after the reaction to them has gone out, not before: writing them cost ≈ 20 ns a level
//! (more when the journal's lines are not in the cache), copying them costs a few. What the
//! journal holds is unchanged; see [`Deferred`] for the durability trade.
//!
//! # Journal housekeeping
//!
//! Appends are a memcpy and a CRC into the mapped segment, no syscall and no lock. Its
//! housekeeping (prefault, warm the cache, preallocate the next segment, asynchronous msync)
//! is called here, between batches, when a poll finds the ring empty and at least 1 ms has
//! passed since the last call; if the ring never empties, it is called anyway every 50 ms
//! between batches so segments are always ready. Handing the writer
//! to another thread would need a lock or a second ring; doing it in the idle gap needs neither.
//!
//! # A full output ring never spins forever
//!
//! On a full output ring the engine retries (`output_retries`) for up to [`OUTPUT_WAIT_NS`]
//! (a gateway descheduled for a moment). If the ring is still full, the gateway is not keeping
//! up, and sending more orders into that is how a market maker loses track of its orders:
//!
//! 1. the intent, and every later one, goes into a backlog on the engine thread (preallocated,
//!    [`HELD_INTENTS`], in order), published first whenever the ring has room
//!    (`output_backlogged`); the gateway's shutdown drain waits for it to empty;
//! 2. after the batch, **quoting halts**: a `Halt` control for every instrument goes into the
//!    engine (journaled like any input, so replay reproduces it; the engine cancels its orders),
//!    counted in `output_halts`, flagged in [`Shared::output_halted`] and said in the status line
//!    and the summary. Quoting stays halted for the rest of the run;
//! 3. an intent that finds the backlog full too cannot be sent: it is counted (`intents_lost`)
//!    and the run is aborted (the engine's view of its orders would no longer be the venue's).

use super::counters::Counters;
use super::latency::{Hop, StampTx};
use super::ops::state::{self as ops_state, IntentCounts};
use super::rings::{EngineInput, OutSlot, OutputProducer, SRC_CONTROL, SRC_FEED, SRC_GATEWAY};
use super::shared::Shared;
use crate::host::{Deferred, Host, Recorder};
use crate::record::JournalRecorder;
use disruptor::{Polling, Producer};
use engine::{Command, Event, EventKind, InstrumentId, Intent, IntentKind, ModeChange, Sink};
use quanta::Clock;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long the engine retries a full output ring before it backlogs the intent and halts quoting.
pub const OUTPUT_WAIT_NS: u64 = 200_000;
/// Intents the engine thread can hold while the output ring is full (allocated up front).
pub const HELD_INTENTS: usize = 4096;

/// Publishes the engine's intents into the output ring, stamped; backlogs them when it stays full.
struct OutputSink<'a> {
    output: &'a mut OutputProducer,
    /// Intents waiting for room, in order (nothing is published past them).
    backlog: &'a mut VecDeque<OutSlot>,
    stamps: &'a mut StampTx,
    clock: &'a Clock,
    /// Decode and consume stamps of the current batch's first market event (0: none yet).
    t_decode: u64,
    t_consume: u64,
    /// A live feed: the wall clock, and the kernel receive stamp of the batch's first market
    /// event (0: none yet).
    wall: Option<&'a super::clock::ReplayClock>,
    t_wire: i64,
    /// The batch completes a book (re)sync: measured as [`Hop::ResyncToIntent`].
    resync: bool,
    /// The batch's first intent has been measured.
    measured: bool,
    intents: u64,
    retries: u64,
    modes: u64,
    /// This batch found the ring full for longer than [`OUTPUT_WAIT_NS`].
    stalled: bool,
    /// Intents backlogged in this batch.
    backlogged: u64,
    /// Intents that found the backlog full.
    lost: u64,
    /// Per instrument: places and cancels by reason, for the metrics endpoint.
    counts: &'a mut [IntentCounts],
}

impl<'a> OutputSink<'a> {
    /// A sink for one batch, nothing measured or counted yet.
    fn new(
        output: &'a mut OutputProducer,
        backlog: &'a mut VecDeque<OutSlot>,
        stamps: &'a mut StampTx,
        clock: &'a Clock,
        counts: &'a mut [IntentCounts],
    ) -> OutputSink<'a> {
        OutputSink {
            output,
            backlog,
            stamps,
            clock,
            t_decode: 0,
            t_consume: 0,
            wall: None,
            t_wire: 0,
            resync: false,
            measured: false,
            intents: 0,
            retries: 0,
            modes: 0,
            stalled: false,
            backlogged: 0,
            lost: 0,
            counts,
        }
    }

    /// Publishes `slot`, retrying up to [`OUTPUT_WAIT_NS`]; false if the ring stayed full.
    #[inline]
    fn publish(&mut self, slot: OutSlot) -> bool {
        let mut started = 0u64;
        loop {
            if self.output.try_publish(|s| *s = slot).is_ok() {
                return true;
            }
            self.retries += 1;
            let now = self.clock.raw();
            if started == 0 {
                started = now;
            } else if self.clock.delta_as_nanos(started, now) >= OUTPUT_WAIT_NS {
                return false;
            }
            std::hint::spin_loop();
        }
    }
}

/// Publishes what the backlog holds, in order, while the ring has room; the number left.
fn drain_backlog(output: &mut OutputProducer, backlog: &mut VecDeque<OutSlot>) -> usize {
    while let Some(slot) = backlog.front() {
        let slot = *slot;
        if output.try_publish(|s| *s = slot).is_err() {
            break;
        }
        backlog.pop_front();
    }
    backlog.len()
}

impl Sink for OutputSink<'_> {
    #[inline]
    fn intent(&mut self, intent: &Intent) {
        if let Some(c) = self.counts.get_mut(intent.instrument as usize) {
            match (intent.kind, intent.forced) {
                (IntentKind::Place, _) => c.placed += 1,
                (IntentKind::Cancel, false) => c.cancels_requote += 1,
                (IntentKind::Cancel, true) => c.cancels_risk += 1,
            }
        }
        let (t_decode, t_consume) = (self.t_decode, self.t_consume);
        let t_intent = self.clock.raw();
        let slot = OutSlot {
            intent: *intent,
            t_decode,
            t_consume,
            t_intent,
        };
        // Behind a backlog nothing jumps the queue.
        if !self.backlog.is_empty() || !self.publish(slot) {
            self.stalled = true;
            if self.backlog.len() < HELD_INTENTS {
                self.backlog.push_back(slot);
                self.backlogged += 1;
            } else {
                self.lost += 1;
            }
            return;
        }
        self.intents += 1;
        if t_decode != 0 && !self.measured {
            // Tick-to-intent is to the batch's first intent: when the first order goes out.
            self.stamps.send(Hop::ConsumeIntent, t_consume, t_intent);
            let hop = if self.resync {
                Hop::ResyncToIntent
            } else {
                Hop::TickToIntent
            };
            self.stamps.send(hop, t_decode, t_intent);
            if let (Some(wall), false, true) = (self.wall, self.resync, self.t_wire != 0) {
                if let Some(now) = wall.now() {
                    self.stamps.send_ns(Hop::WireToIntent, now - self.t_wire);
                }
            }
            self.measured = true;
        }
    }

    #[inline]
    fn mode_change(&mut self, _: &ModeChange) {
        self.modes += 1;
    }
}

/// What the engine thread did, beyond the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessorEnd {
    /// The journal stopped accepting records (the run is aborted; what it holds is intact).
    pub journal_failed: bool,
}

/// Records held before a flush of their own: a depth snapshot's batch (thousands of events)
/// flushes part-way, smaller batches never do.
const HELD_RECORDS: usize = 8192;

/// Empty polls before an idle engine thread sleeps (`[cpu] idle = "backoff"`).
const IDLE_SPINS: u32 = 256;
/// How long it sleeps then.
const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

/// Runs the engine loop until the input ring shuts down (every producer gone and every event
/// read). Returns the host, whose journal the caller closes.
pub fn run(
    host: Host<JournalRecorder>,
    instruments: usize,
    mut input: EngineInput,
    mut output: OutputProducer,
    mut stamps: StampTx,
    clock: Clock,
    shared: Arc<Shared>,
) -> (Host<JournalRecorder>, ProcessorEnd) {
    let c = &shared.counters;
    let Host { engine, recorder } = host;
    let mut host = Host::new(engine, Deferred::new(recorder, HELD_RECORDS));
    const IDLE_AFTER_NS: u64 = 1_000_000;
    // Empty polls in a row (`[cpu] idle = "backoff"`).
    let mut idle_polls = 0u32;
    const FORCE_AFTER_NS: u64 = 50_000_000;
    let mut last_housekeeping = clock.raw();
    let mut end = ProcessorEnd::default();
    let mut reports_consumed = 0u64;
    let mut controls_consumed = 0u64;
    let mut backlog: VecDeque<OutSlot> = VecDeque::with_capacity(HELD_INTENTS);
    let mut halted_for_output = false;
    let mut counts = vec![IntentCounts::default(); instruments];
    let mut last_publish_ops = 0u64;
    loop {
        if !backlog.is_empty() {
            let before = backlog.len();
            let left = drain_backlog(&mut output, &mut backlog);
            Counters::add(&c.engine_intents, (before - left) as u64);
            if left < before {
                shared.gateway_wake.wake();
            }
            shared.output_backlog.store(left as u64, Ordering::Release);
        }
        let mut sink = OutputSink::new(&mut output, &mut backlog, &mut stamps, &clock, &mut counts);
        if shared.replay.is_live() {
            sink.wall = Some(&shared.replay);
        }
        match input.poll() {
            Ok(mut batch) => {
                idle_polls = 0;
                let (mut events, mut reports, mut controls) = (0u64, 0u64, 0u64);
                let mut last_publish = 0u64;
                for slot in &mut batch {
                    // One sample per publish (a venue message's events share one): the hop
                    // itself. Applying the message's levels one after another is engine work,
                    // and shows in `consume_intent` and `tick_to_intent`.
                    if slot.t_publish != last_publish {
                        last_publish = slot.t_publish;
                        let t_consume = clock.raw();
                        sink.stamps
                            .send(Hop::PublishConsume, slot.t_publish, t_consume);
                        if sink.t_decode == 0 && slot.t_decode != 0 && slot.event.source == SRC_FEED
                        {
                            sink.t_decode = slot.t_decode;
                            sink.t_consume = t_consume;
                            sink.t_wire = slot.event.local_time_ns;
                        }
                    }
                    match slot.event.source {
                        SRC_GATEWAY => {
                            reports += 1;
                            count_reject(&shared, &slot.event);
                        }
                        SRC_CONTROL => {
                            controls += 1;
                            if slot.event.as_control() == Some(Command::Reload) {
                                apply_reload(&mut host, &shared);
                            }
                        }
                        _ => {}
                    }
                    if slot.event.kind() == EventKind::BookValid {
                        sink.resync = true;
                    }
                    host.event(&slot.event, &mut sink);
                    events += 1;
                }
                // Release the slots before requoting: producers need not wait for it.
                drop(batch);
                host.batch_end(&mut sink);
                if let (Some(wall), false, true) = (sink.wall, sink.resync, sink.t_wire != 0) {
                    if let Some(now) = wall.now() {
                        sink.stamps
                            .send_ns(Hop::WireToEngineDone, now - sink.t_wire);
                    }
                }
                if sink.stalled && !halted_for_output {
                    halted_for_output = true;
                    halt_quoting(&mut host, instruments, &mut sink);
                    Counters::add(&c.output_halts, 1);
                    shared.output_halted.store(true, Ordering::Release);
                }
                // The batch's intents are out: now its records go into the journal.
                host.recorder.flush();
                if sink.backlogged > 0 || sink.lost > 0 {
                    Counters::add(&c.output_backlogged, sink.backlogged);
                    shared
                        .output_backlog
                        .store(sink.backlog.len() as u64, Ordering::Release);
                }
                if sink.lost > 0 {
                    Counters::add(&c.intents_lost, sink.lost);
                    shared.abort.store(true, Ordering::Relaxed);
                }
                Counters::add(&c.engine_events, events);
                Counters::add(&c.engine_batches, 1);
                Counters::add(&c.engine_intents, sink.intents);
                if sink.intents > 0 {
                    shared.gateway_wake.wake();
                }
                Counters::add(&c.output_retries, sink.retries);
                Counters::add(&c.mode_changes, sink.modes);
                // After the batch's intents are published (see `Shared`'s handshake).
                if reports > 0 {
                    reports_consumed += reports;
                    shared
                        .reports_consumed
                        .store(reports_consumed, Ordering::Release);
                }
                if controls > 0 {
                    // What the commands produced, before saying they were consumed (a
                    // `ringmaker ctl` answer reads it). Rare: operator commands.
                    publish_ops(&host, &shared, &counts);
                    controls_consumed += controls;
                    shared
                        .controls_consumed
                        .store(controls_consumed, Ordering::Release);
                }
                let now = clock.raw();
                if clock.delta_as_nanos(last_housekeeping, now) >= FORCE_AFTER_NS {
                    last_housekeeping = now;
                    journal_upkeep(&mut host, &shared, &mut end);
                }
                publish_ops_when_due(
                    &host,
                    &shared,
                    &counts,
                    (&clock, now),
                    &mut last_publish_ops,
                );
            }
            Err(Polling::NoEvents) => {
                idle_polls = idle_polls.saturating_add(1);
                let now = clock.raw();
                if clock.delta_as_nanos(last_housekeeping, now) >= IDLE_AFTER_NS {
                    last_housekeeping = now;
                    journal_upkeep(&mut host, &shared, &mut end);
                }
                publish_ops_when_due(
                    &host,
                    &shared,
                    &counts,
                    (&clock, now),
                    &mut last_publish_ops,
                );
                if shared.idle_backoff && idle_polls > IDLE_SPINS {
                    // `[cpu] idle = "backoff"`: a core shared with others.
                    std::thread::sleep(IDLE_SLEEP);
                } else {
                    std::hint::spin_loop();
                }
            }
            Err(Polling::Shutdown) => break,
        }
    }
    journal_upkeep(&mut host, &shared, &mut end);
    publish_ops(&host, &shared, &counts);
    let Host { engine, recorder } = host;
    (Host::new(engine, recorder.into_inner()), end)
}

/// The engine's state for the metrics endpoint (between batches, every
/// [`ops_state::PUBLISH_EVERY_NS`]).
fn publish_ops(host: &Host<Deferred<JournalRecorder>>, shared: &Shared, counts: &[IntentCounts]) {
    let j = host.recorder.inner();
    let (segment, bytes) = j.position();
    ops_state::publish(
        &shared.ops,
        &host.engine,
        counts,
        (segment, bytes, j.appended()),
    );
}

/// [`publish_ops`] if [`ops_state::PUBLISH_EVERY_NS`] has passed from `last` to `now` (TSC).
#[inline]
fn publish_ops_when_due(
    host: &Host<Deferred<JournalRecorder>>,
    shared: &Shared,
    counts: &[IntentCounts],
    (clock, now): (&Clock, u64),
    last: &mut u64,
) {
    if clock.delta_as_nanos(*last, now) >= ops_state::PUBLISH_EVERY_NS {
        *last = now;
        publish_ops(host, shared, counts);
    }
}

/// Counts a venue reject by its code (metrics).
#[inline]
fn count_reject(shared: &Shared, ev: &Event) {
    if ev.kind() != EventKind::ExecReport {
        return;
    }
    if let Some(code) = ev.as_exec().as_ref().and_then(ops_state::reject_code) {
        if let Some(g) = shared.ops.instrument(ev.instrument()) {
            g.count_reject(code);
        }
    }
}

/// A `Reload` command: the config the ops thread handed over is applied (and journaled as a
/// reload record) before the command itself is consumed, so a replay applies it at the same
/// point. The answer goes back through [`ops_state::OpsState::reload_answer`].
#[cold]
fn apply_reload<R: Recorder>(host: &mut Host<R>, shared: &Shared) {
    let cfg = shared
        .ops
        .pending_reload
        .lock()
        .ok()
        .and_then(|mut p| p.take());
    let answer = match cfg {
        Some(cfg) => host.reload(&cfg).err().map(|e| e.to_string()),
        None => Some("no config was handed over with the command".to_owned()),
    };
    if let Ok(mut a) = shared.ops.reload_answer.lock() {
        *a = answer;
    }
}

/// The output ring stayed full: every instrument is halted (the engine cancels its orders). The
/// commands are engine inputs like any other, journaled, so replay reproduces them.
#[cold]
fn halt_quoting<R: Recorder>(host: &mut Host<R>, instruments: usize, sink: &mut impl Sink) {
    let now = host.engine.now_ns();
    for i in 0..instruments {
        let mut ev = Event::control(i as InstrumentId, now, Command::Halt);
        ev.source = SRC_CONTROL;
        host.event(&ev, sink);
    }
    host.batch_end(sink);
}

/// Journal housekeeping; a failed journal aborts the run (once).
fn journal_upkeep(
    host: &mut Host<Deferred<JournalRecorder>>,
    shared: &Shared,
    end: &mut ProcessorEnd,
) {
    host.recorder.idle();
    Counters::add(&shared.counters.journal_idles, 1);
    if !end.journal_failed && host.recorder.failed().is_some() {
        end.journal_failed = true;
        shared.abort.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::clock::ReplayClock;
    use crate::live::latency::StampRx;
    use crate::live::rings;
    use engine::Side;
    use std::sync::atomic::AtomicBool;

    fn fixture() -> (Clock, Arc<Shared>) {
        let clock = Clock::new();
        let shared = Arc::new(Shared::new(
            Arc::new(AtomicBool::new(false)),
            ReplayClock::new(0.0, clock.clone()),
        ));
        (clock, shared)
    }

    fn place(k: u64) -> Intent {
        Intent::place(
            0,
            Side::Bid,
            engine::TimeInForce::PostOnly,
            k,
            100,
            1,
            k as i64,
            k,
        )
    }

    #[test]
    fn a_full_output_ring_backlogs_in_order_then_drains() {
        let (clock, shared) = fixture();
        let mut r = rings::build(64, 4);
        let mut rx = StampRx::default();
        let mut stamps = rx.channel(64, Arc::clone(&shared));
        let mut backlog = VecDeque::with_capacity(HELD_INTENTS);
        let mut counts = [IntentCounts::default()];
        let mut sink = OutputSink::new(
            &mut r.output,
            &mut backlog,
            &mut stamps,
            &clock,
            &mut counts,
        );
        for k in 0..10 {
            sink.intent(&place(k));
        }
        assert!(sink.stalled, "4 slots, nobody reading");
        assert_eq!((sink.intents, sink.backlogged, sink.lost), (4, 6, 0));
        assert!(sink.retries > 0);
        // The gateway reads: the backlog goes out in order, behind what was in the ring.
        let mut seen = Vec::new();
        for _ in 0..10 {
            let read: Vec<u64> = match r.gateway_output.poll() {
                Ok(mut g) => (&mut g).map(|s| s.intent.client_order_id).collect(),
                Err(_) => Vec::new(),
            };
            seen.extend(read);
            drain_backlog(&mut r.output, &mut backlog);
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(backlog.is_empty());
    }

    #[test]
    fn a_full_backlog_counts_what_it_cannot_hold() {
        let (clock, shared) = fixture();
        let mut r = rings::build(64, 2);
        let mut rx = StampRx::default();
        let mut stamps = rx.channel(64, Arc::clone(&shared));
        let mut backlog = VecDeque::with_capacity(HELD_INTENTS);
        let mut counts = [IntentCounts::default()];
        let mut sink = OutputSink::new(
            &mut r.output,
            &mut backlog,
            &mut stamps,
            &clock,
            &mut counts,
        );
        for k in 0..(2 + HELD_INTENTS as u64 + 3) {
            sink.intent(&place(k));
        }
        assert_eq!(sink.intents, 2);
        assert_eq!(sink.backlogged, HELD_INTENTS as u64);
        assert_eq!(sink.lost, 3);
    }

    /// Records what the engine was fed.
    #[derive(Default)]
    struct Inputs(Vec<Event>);

    impl Recorder for Inputs {
        fn event(&mut self, ev: &Event) {
            self.0.push(*ev);
        }
        fn batch_end(&mut self, _: i64) {}
        fn intent(&mut self, _: &Intent) {}
        fn mode_change(&mut self, _: &ModeChange) {}
    }

    #[test]
    fn halting_for_a_full_output_ring_is_an_input_like_any_other() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/default.toml"
        ))
        .unwrap();
        let cfg = engine::Config::from_toml(&text).unwrap();
        let mut host = Host::new(engine::Engine::new(&cfg), Inputs::default());
        let mut modes = Vec::new();
        struct Modes<'a>(&'a mut Vec<ModeChange>);
        impl Sink for Modes<'_> {
            fn intent(&mut self, _: &Intent) {}
            fn mode_change(&mut self, m: &ModeChange) {
                self.0.push(*m);
            }
        }
        // The engine starts halted for want of a book; the command is what sets the reason.
        let before = host.engine.instrument(0).unwrap().mode;
        assert_ne!(before.1, engine::ModeReason::KillSwitch);
        halt_quoting(&mut host, 1, &mut Modes(&mut modes));
        // Journaled (the recorder saw it) as a control from the control source, so replay
        // reproduces the halt.
        assert_eq!(host.recorder.0.len(), 1);
        let ev = host.recorder.0[0];
        assert_eq!(ev.as_control(), Some(Command::Halt));
        assert_eq!(ev.source, SRC_CONTROL);
        let after = host.engine.instrument(0).unwrap().mode;
        assert_eq!(
            after,
            (engine::Mode::Halted, engine::ModeReason::KillSwitch)
        );
    }
}
