//! The feed thread: reads a market source (in paper mode, the recording at its pace, `--speed`,
//! or flat out) through the one [`feeds::FeedHandler`] (decode and book sync, exactly as
//! `ringmaker book` and the backtest do) and publishes the events into the input ring.
//!
//! # Time
//!
//! As in a backtest ([`feeds::MarketFeed`]): a line stamped earlier than the one before it is
//! taken to arrive at the previous line's time, and every event a message produces (including
//! diffs replayed from the sync buffer when the snapshot arrives) is stamped with the message's
//! time. At `--speed` > 0 the thread sleeps until a line is due (the last 200 µs spun), so the
//! decode happens when a live feed would have received the message.
//!
//! # A full input ring
//!
//! Paced (`--speed` > 0, standing in for a socket) the feed never waits for room: a socket does
//! not wait either. When `try_publish` finds the ring full for a market event of instrument `i`:
//!
//! 1. the message's events for `i` (published as one batch: a message gets in whole or not at
//!    all) are dropped (`dropped_events`), the episode is counted (`ring_overflows`);
//! 2. unless `i`'s book is already waiting for a snapshot (invalid, or never yet valid), its
//!    book sync is reset as on a disconnect (a resync is requested, `resync_requests`): it now
//!    waits for a new snapshot and publishes no diff until one bridges;
//! 3. and a `BookInvalid { reason: RingOverflow }` is queued for `i`, published before anything else
//!    of `i` as soon as the ring has room (`overflow_invalids`); until then `i`'s events are
//!    dropped too. The engine pulls `i`'s quotes when it reads it.
//!
//! The feed handler then asks its source for a new snapshot: a live source fetches one over REST;
//! a recording gives its next snapshot line if it has one. The shipped samples hold one, at the
//! start, so in paper mode the book stays invalid and quotes stay pulled for the rest of the run;
//! trades and book tickers still flow. Everything the engine did consume is journaled, so replay
//! reproduces the run with the overflow in it.
//!
//! Flat out (`--speed 0`) there is no socket to keep up with: the feed *is* the load, as fast as
//! the engine and the gateway take it. There a full ring makes the feed wait (yielding) until
//! there is room, counted in `feed_waits`; otherwise any scheduling hiccup of a consumer on a
//! small host would invalidate the book at a random point and make the run meaningless.

use super::clock::ReplayClock;
use super::counters::Counters;
use super::latency::{Hop, StampTx};
use super::rings::{InputProducer, SRC_FEED};
use super::shared::Shared;
use engine::{BookStatusReason, Command, Event, EventKind};
use feeds::{FeedStats, MarketFeed, MarketSource, Step, SyncState, SyncStats};
use quanta::Clock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Why the feed stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnd {
    /// The recording ended.
    EndOfData,
    /// `--duration` of recording time was replayed.
    Duration,
    /// A stop was requested (signal or failure).
    Stopped,
}

/// What the feed did, for the summary.
#[derive(Debug, Clone)]
pub struct FeedReport {
    /// Why it stopped.
    pub end: FeedEnd,
    /// The handler's counters.
    pub feed: FeedStats,
    /// Book sync counters over every instrument.
    pub sync: SyncStats,
    /// Book sync counters per instrument (by id).
    pub sync_by_instrument: Vec<SyncStats>,
    /// Receive time with every book valid, and the whole span (ns).
    pub book_time: (i64, i64),
    /// A live feed: how far its receive stamps were behind the venue's event times over the
    /// last messages (median and spread).
    pub clock_offset: Option<ClockOffset>,
    /// A live feed with `[feed] clock_check`: what the check did.
    pub clock_check: Option<ClockCheckReport>,
}

/// What a live feed's clock check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockCheckReport {
    /// Times the clock started failing (quotes pulled).
    pub faults: u64,
    /// It was failing when the run ended.
    pub failing_at_end: bool,
    /// The verdict of the last fault.
    pub last_fault: Option<feeds::net::clockcheck::ClockVerdict>,
}

/// How far a live feed's receive stamps were behind the venue's event times (`local − E`: network
/// latency, the venue's millisecond truncation, and the two clocks' disagreement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Messages in the window.
    pub samples: usize,
    /// Median, ns.
    pub median_ns: i64,
    /// p90 − p10, ns.
    pub spread_ns: i64,
}

/// The feed thread's state.
#[allow(missing_debug_implementations)] // holds disruptor handles
pub struct Feed<S> {
    feed: MarketFeed<S>,
    out: Vec<Event>,
    scratch: Vec<Event>,
    /// Per instrument: the `BookInvalid { RingOverflow }` still to publish.
    pending_invalid: Vec<Option<Event>>,
    producer: InputProducer,
    stamps: StampTx,
    clock: Clock,
    shared: Arc<Shared>,
    max_span_ns: Option<i64>,
    /// A live feed's venue-time offsets (the last 1,024 messages) and the kernel clock's state.
    clockcheck: feeds::net::clockcheck::ClockCheck,
    /// The clock check's limits, when `[feed] clock_check` is on.
    clock_limits: Option<feeds::net::clockcheck::ClockLimits>,
    /// Wall time of the next clock check, ns.
    next_clock_check: i64,
    /// The clock is failing its check: quotes are pulled.
    clock_failing: bool,
    /// The command still to publish to every instrument (the ring was full).
    clock_pending: Option<(Command, usize)>,
    /// The second's clock reading still to publish (journaled by the engine thread).
    reading_pending: Option<engine::ClockReading>,
    clock_faults: u64,
    last_clock_fault: Option<feeds::net::clockcheck::ClockVerdict>,
    /// TSC of the last publish of the book counters for the metrics endpoint.
    last_ops: u64,
}

impl<S: MarketSource> Feed<S> {
    /// A feed reading `feed`, publishing through `producer`. `max_span_ns` stops it after that
    /// much recording time.
    pub fn new(
        feed: MarketFeed<S>,
        producer: InputProducer,
        stamps: StampTx,
        clock: Clock,
        shared: Arc<Shared>,
        max_span_ns: Option<i64>,
    ) -> Feed<S> {
        let instruments = feed.handler().instruments();
        Feed {
            feed,
            out: Vec::with_capacity(8192),
            scratch: Vec::with_capacity(4),
            pending_invalid: vec![None; instruments],
            producer,
            stamps,
            clock,
            shared,
            max_span_ns,
            clockcheck: feeds::net::clockcheck::ClockCheck::new(1024),
            clock_limits: None,
            next_clock_check: 0,
            clock_failing: false,
            clock_pending: None,
            reading_pending: None,
            clock_faults: 0,
            last_clock_fault: None,
            last_ops: 0,
        }
    }

    /// Checks the clock every second of a live run against `limits` and pulls every
    /// instrument's quotes (`Command::ClockFault`) while it fails, `Command::ClockOk` after.
    pub fn with_clock_check(mut self, limits: feeds::net::clockcheck::ClockLimits) -> Self {
        self.clock_limits = Some(limits);
        self
    }

    /// Once a second of a live run: takes housekeeping's reading of the kernel clock and the
    /// offsets' median and spread, judges them (with `[feed] clock_check`; the command for
    /// every instrument is queued when the verdict changes), and queues the reading itself for
    /// the journal (`Command::ClockReading`).
    fn check_clock(&mut self, now: i64) {
        if now < self.next_clock_check {
            return;
        }
        self.next_clock_check = now + 1_000_000_000;
        let offsets = self.clockcheck.offsets().summary();
        if let Some(s) = offsets {
            self.shared
                .clock_offset_ns
                .store(s.median_ns, Ordering::Relaxed);
        }
        // Housekeeping reads the kernel clock (a syscall); a torn read keeps the last one.
        if let Some(state) = self.shared.kernel_clock.load() {
            self.clockcheck.set_state(state);
        }
        self.judge_clock();
        let st = self.clockcheck.state();
        self.reading_pending = Some(engine::ClockReading {
            offset_ns: offsets.map(|s| s.median_ns),
            spread_ns: offsets.map(|s| s.spread_ns),
            synchronised: st.map(|s| s.synchronised),
            maxerror_us: st.map_or(0, |s| s.maxerror_us),
            esterror_us: st.map_or(0, |s| s.esterror_us),
            failing: self.clock_failing,
        });
    }

    /// With `[feed] clock_check`: the verdict, and the command for every instrument when it
    /// changes.
    fn judge_clock(&mut self) {
        let Some(limits) = self.clock_limits else {
            return;
        };
        let verdict = self.clockcheck.check(&limits);
        let failing = verdict != feeds::net::clockcheck::ClockVerdict::Ok;
        if failing != self.clock_failing {
            self.clock_failing = failing;
            self.shared.clock_failing.store(failing, Ordering::Relaxed);
            if failing {
                self.clock_faults += 1;
                self.last_clock_fault = Some(verdict);
            }
            let cmd = if failing {
                Command::ClockFault
            } else {
                Command::ClockOk
            };
            self.clock_pending = Some((cmd, 0));
        }
    }

    /// Publishes the second's clock reading (for the journal); kept for the next turn when the
    /// ring is full.
    fn flush_reading(&mut self, now: i64) {
        let Some(r) = self.reading_pending else {
            return;
        };
        let ev = Event::clock_reading(0, now, &r);
        let t = self.clock.raw();
        let ok = self.producer.try_publish(|s| {
            s.event = ev;
            s.event.source = SRC_FEED;
            s.t_decode = 0;
            s.t_publish = t;
        });
        if ok {
            self.reading_pending = None;
        }
    }

    /// Publishes the queued clock command to the instruments not yet told.
    fn flush_clock(&mut self, now: i64) {
        let Some((cmd, mut next)) = self.clock_pending else {
            return;
        };
        let n = self.pending_invalid.len();
        while next < n {
            let ev = Event::control(next as u16, now, cmd);
            let t = self.clock.raw();
            let ok = self.producer.try_publish(|s| {
                s.event = ev;
                s.event.source = SRC_FEED;
                s.event.local_time_ns = now;
                s.t_decode = t;
                s.t_publish = t;
            });
            if !ok {
                break;
            }
            next += 1;
        }
        self.clock_pending = (next < n).then_some((cmd, next));
    }

    /// Runs until the source ends or a stop is requested. Drops the producer on return.
    pub fn run(mut self) -> FeedReport {
        let shared = Arc::clone(&self.shared);
        let replay: &ReplayClock = &shared.replay;
        let mut first_t = i64::MIN;
        let mut ended_by = FeedEnd::Stopped;
        let end = loop {
            if shared.stopping() {
                break FeedEnd::Stopped;
            }
            self.flush_invalids();
            if self.clock_pending.is_some() || self.reading_pending.is_some() {
                if let Some(now) = replay.now() {
                    self.flush_clock(now);
                    self.flush_reading(now);
                }
            }
            self.out.clear();
            let max_span = self.max_span_ns;
            // Before decoding: start the replay clock, honour --duration, wait until due.
            let step = self.feed.next_gated(&mut self.out, |t| {
                if first_t == i64::MIN {
                    first_t = t;
                    replay.start(t);
                }
                if max_span.is_some_and(|s| t - first_t > s) {
                    ended_by = FeedEnd::Duration;
                    return false;
                }
                if replay.paces() && !pace(replay, &shared, t) {
                    ended_by = FeedEnd::Stopped;
                    return false;
                }
                true
            });
            let Some(step) = step else {
                break FeedEnd::EndOfData;
            };
            Counters::add(&self.shared.counters.lines, 1);
            match step {
                Step::Input { local_ns } => {
                    let t_decode = self.clock.raw();
                    if replay.is_live() && !self.out.is_empty() {
                        // The receive stamp is the kernel's, on the wall clock.
                        let stages = self.feed.source().wire_stages();
                        let wire_decode = match stages {
                            // The read's wall time plus the TSC since: no clock read here.
                            Some(st) => Some(
                                st.read_wall_ns - local_ns
                                    + self.clock.delta_as_nanos(st.read, t_decode) as i64,
                            ),
                            None => replay.now().map(|now| now - local_ns),
                        };
                        if let Some(ns) = wire_decode {
                            self.stamps.send_ns(Hop::WireDecode, ns);
                        }
                        if let Some(st) = stages {
                            self.stamps
                                .send_ns(Hop::KernelRead, st.read_wall_ns - local_ns);
                            self.stamps.send(Hop::ReadTls, st.read, st.tls.max(st.read));
                            let framing_from = if st.queued != 0 {
                                self.stamps.send(Hop::Queued, st.tls, st.queued.max(st.tls));
                                st.queued
                            } else {
                                st.tls
                            };
                            self.stamps.send(
                                Hop::TlsFrame,
                                framing_from,
                                st.frame.max(framing_from),
                            );
                            self.stamps
                                .send(Hop::FrameDecode, st.frame, t_decode.max(st.frame));
                        }
                        let venue_ms = self.out[0].venue_time_ns / 1_000_000;
                        if venue_ms > 0 {
                            self.clockcheck.record(venue_ms, local_ns);
                        }
                        self.check_clock(local_ns);
                    }
                    self.publish_message(local_ns, t_decode);
                    replay.advance(local_ns);
                    if self.clock.delta_as_nanos(self.last_ops, t_decode) >= 1_000_000_000 {
                        self.last_ops = t_decode;
                        self.publish_ops();
                    }
                }
                Step::SourceError(_) | Step::DecodeError { .. } | Step::TimeJump { .. } => {
                    Counters::add(&self.shared.counters.bad_lines, 1);
                }
                Step::Stopped { .. } => break ended_by,
            }
        };
        // Whatever invalid is still queued gets in (the engine keeps draining the ring).
        for _ in 0..100_000 {
            if self.pending_invalid.iter().all(Option::is_none) {
                break;
            }
            self.flush_invalids();
            std::thread::yield_now();
        }
        self.publish_ops();
        self.shared.feed_done.store(true, Ordering::Release);
        let h = self.feed.handler();
        FeedReport {
            end,
            feed: h.stats(),
            sync: h.sync_totals(),
            sync_by_instrument: (0..h.instruments())
                .map(|i| h.sync_stats(i as u16))
                .collect(),
            book_time: self.feed.book_time(),
            clock_check: self.clock_limits.map(|_| ClockCheckReport {
                faults: self.clock_faults,
                failing_at_end: self.clock_failing,
                last_fault: self.last_clock_fault,
            }),
            clock_offset: self.clockcheck.offsets().summary().map(|s| ClockOffset {
                samples: s.samples,
                median_ns: s.median_ns,
                spread_ns: s.spread_ns,
            }),
        }
    }

    /// The book sync counters and the source's reconnects, for the metrics endpoint (once a
    /// second: a few relaxed stores per instrument).
    fn publish_ops(&self) {
        let h = self.feed.handler();
        let ops = &self.shared.ops;
        for i in 0..h.instruments() {
            if let Some(g) = ops.instrument(i as u16) {
                let st = h.sync_stats(i as u16);
                g.gaps.store(st.gaps, Ordering::Relaxed);
                g.resyncs.store(st.resyncs, Ordering::Relaxed);
            }
        }
        ops.market_reconnects
            .store(self.feed.source().reconnects(), Ordering::Relaxed);
    }

    /// Publishes the events of one message (all stamped `t`), each instrument's run of events
    /// as one batch (in chunks of the ring's capacity if larger, e.g. a snapshot into a tiny
    /// ring).
    fn publish_message(&mut self, t: i64, t_decode: u64) {
        let flat_out = self.shared.replay.flat_out();
        let chunk = self.producer.capacity().max(1);
        for ev in &mut self.out {
            ev.local_time_ns = t;
            ev.source = SRC_FEED;
        }
        let mut published = 0u64;
        let mut start = 0;
        while start < self.out.len() {
            let inst = self.out[start].instrument();
            let end = start
                + self.out[start..]
                    .iter()
                    .take_while(|e| e.instrument() == inst)
                    .count();
            if !self.publish_invalid(inst) {
                Counters::add(&self.shared.counters.dropped_events, (end - start) as u64);
                start = end;
                continue;
            }
            let mut at = start;
            while at < end {
                let to = end.min(at + chunk);
                let mut t_publish = self.clock.raw();
                let mut ok =
                    self.producer
                        .try_publish_batch(&self.out[at..to], t_decode, t_publish);
                if !ok && flat_out {
                    // Flat out, the recording is the only producer that can wait: it does.
                    Counters::add(&self.shared.counters.feed_waits, 1);
                    while !ok && !self.shared.stopping() {
                        std::thread::yield_now();
                        t_publish = self.clock.raw();
                        ok =
                            self.producer
                                .try_publish_batch(&self.out[at..to], t_decode, t_publish);
                    }
                }
                if !ok {
                    let first = self.out[at];
                    self.overflow(&first, t);
                    // `overflow` counted the first; the rest of the run goes too.
                    Counters::add(&self.shared.counters.dropped_events, (end - at - 1) as u64);
                    break;
                }
                self.stamps.send(Hop::DecodePublish, t_decode, t_publish);
                published += (to - at) as u64;
                at = to;
            }
            start = end;
        }
        if published > 0 {
            self.stamps
                .send(Hop::RingWrite, t_decode, self.clock.raw().max(t_decode));
        }
        Counters::add(&self.shared.counters.feed_events, published);
    }

    /// The ring was full for `ev`: drop it, invalidate the book, request a resync.
    #[cold]
    fn overflow(&mut self, ev: &Event, t: i64) {
        let shared = Arc::clone(&self.shared);
        let c = &shared.counters;
        Counters::add(&c.ring_overflows, 1);
        Counters::add(&c.dropped_events, 1);
        let inst = ev.instrument();
        let Some(sync) = self.feed.handler().sync(inst) else {
            return;
        };
        if sync.needs_snapshot() {
            // Already waiting for a snapshot: the book is invalid (or was never valid) and no
            // diff is applied until a resync, so there is nothing more to invalidate.
            return;
        }
        let last_good = match sync.state() {
            SyncState::Synced { last_final_id } => last_final_id,
            SyncState::Bridging { snapshot_id } => snapshot_id,
            SyncState::AwaitingSnapshot => 0,
        };
        let offending = ev.as_level().map_or(0, |l| l.update_id);
        // As on a disconnect: the sync machine drops its buffer and waits for a new snapshot,
        // which the feed handler asks its source for. Its own `BookInvalid { Disconnected }` is
        // replaced by ours, which says why.
        self.scratch.clear();
        self.feed
            .handler_mut()
            .disconnect(inst, ev.venue_time_ns, t, &mut self.scratch);
        Counters::add(&c.resync_requests, 1);
        self.pending_invalid[inst as usize] = Some(Event::book_invalid(
            inst,
            ev.venue_time_ns,
            t,
            BookStatusReason::RingOverflow,
            last_good,
            offending,
        ));
    }

    /// Publishes `inst`'s queued `BookInvalid`, if any. False while it cannot get in.
    #[inline]
    fn publish_invalid(&mut self, inst: u16) -> bool {
        let Some(slot) = self.pending_invalid.get_mut(inst as usize) else {
            return true;
        };
        let Some(mut inv) = *slot else {
            return true;
        };
        debug_assert_eq!(inv.kind(), EventKind::BookInvalid);
        inv.source = SRC_FEED;
        let now = self.clock.raw();
        let ok = self.producer.try_publish(|s| {
            s.event = inv;
            s.t_decode = now;
            s.t_publish = now;
        });
        if ok {
            *slot = None;
            Counters::add(&self.shared.counters.overflow_invalids, 1);
        }
        ok
    }

    /// Tries every queued `BookInvalid`.
    fn flush_invalids(&mut self) {
        for i in 0..self.pending_invalid.len() {
            if self.pending_invalid[i].is_some() {
                self.publish_invalid(i as u16);
            }
        }
    }
}

/// Waits until recording time `t` is due. False if a stop came first.
fn pace(replay: &ReplayClock, shared: &Shared, t: i64) -> bool {
    const SPIN: Duration = Duration::from_micros(200);
    loop {
        let wait = replay.until(t);
        if wait.is_zero() {
            return true;
        }
        if shared.stopping() {
            return false;
        }
        if wait > SPIN {
            std::thread::sleep((wait - SPIN).min(Duration::from_millis(50)));
        } else {
            std::hint::spin_loop();
        }
    }
}
