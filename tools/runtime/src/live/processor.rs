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
//! # Never blocks on the output ring for long
//!
//! An intent is never dropped: on a full output ring the engine retries (`output_retries`).
//! The gateway never waits on the engine (it buffers reports it cannot publish yet), so the
//! retry always ends.

use super::counters::Counters;
use super::latency::{Hop, StampTx};
use super::rings::{EngineInput, OutputProducer, SRC_CONTROL, SRC_FEED, SRC_GATEWAY};
use super::shared::Shared;
use crate::host::{Deferred, Host, Recorder};
use crate::record::JournalRecorder;
use disruptor::{Polling, Producer};
use engine::{EventKind, Intent, ModeChange, Sink};
use quanta::Clock;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Publishes the engine's intents into the output ring, stamped.
struct OutputSink<'a> {
    output: &'a mut OutputProducer,
    stamps: &'a mut StampTx,
    clock: &'a Clock,
    /// Decode and consume stamps of the current batch's first market event (0: none yet).
    t_decode: u64,
    t_consume: u64,
    /// The batch completes a book (re)sync: measured as [`Hop::ResyncToIntent`].
    resync: bool,
    /// The batch's first intent has been measured.
    measured: bool,
    intents: u64,
    retries: u64,
    modes: u64,
}

impl Sink for OutputSink<'_> {
    #[inline]
    fn intent(&mut self, intent: &Intent) {
        let (t_decode, t_consume) = (self.t_decode, self.t_consume);
        let t_intent = self.clock.raw();
        let intent = *intent;
        while self
            .output
            .try_publish(|s| {
                s.intent = intent;
                s.t_decode = t_decode;
                s.t_consume = t_consume;
                s.t_intent = t_intent;
            })
            .is_err()
        {
            self.retries += 1;
            std::hint::spin_loop();
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

/// Runs the engine loop until the input ring shuts down (every producer gone and every event
/// read). Returns the host, whose journal the caller closes.
pub fn run(
    host: Host<JournalRecorder>,
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
    const FORCE_AFTER_NS: u64 = 50_000_000;
    let mut last_housekeeping = clock.raw();
    let mut end = ProcessorEnd::default();
    let mut reports_consumed = 0u64;
    let mut controls_consumed = 0u64;
    loop {
        let mut sink = OutputSink {
            output: &mut output,
            stamps: &mut stamps,
            clock: &clock,
            t_decode: 0,
            t_consume: 0,
            resync: false,
            measured: false,
            intents: 0,
            retries: 0,
            modes: 0,
        };
        match input.poll() {
            Ok(mut batch) => {
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
                        }
                    }
                    match slot.event.source {
                        SRC_GATEWAY => reports += 1,
                        SRC_CONTROL => controls += 1,
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
                // The batch's intents are out: now its records go into the journal.
                host.recorder.flush();
                Counters::add(&c.engine_events, events);
                Counters::add(&c.engine_batches, 1);
                Counters::add(&c.engine_intents, sink.intents);
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
            }
            Err(Polling::NoEvents) => {
                let now = clock.raw();
                if clock.delta_as_nanos(last_housekeeping, now) >= IDLE_AFTER_NS {
                    last_housekeeping = now;
                    journal_upkeep(&mut host, &shared, &mut end);
                }
                std::hint::spin_loop();
            }
            Err(Polling::Shutdown) => break,
        }
    }
    journal_upkeep(&mut host, &shared, &mut end);
    let Host { engine, recorder } = host;
    (Host::new(engine, recorder.into_inner()), end)
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
