//! Latency per hop: TSC stamps taken on the hot threads, turned into histograms on the
//! housekeeping thread.
//!
//! Each hot thread (feed, engine, gateway) owns a [`StampTx`]: a single-producer disruptor queue
//! of `(hop, from, to)` raw TSC pairs. Sending is one `try_publish` (no lock, no allocation, no
//! clock conversion); when the queue is full the stamp is dropped and counted
//! (`stamps_dropped`), never waited for. The housekeeping thread drains every queue
//! ([`StampRx`]) into one HdrHistogram per hop ([`HopHistograms`]) and writes them as a
//! standard interval log, one tag per hop ([`IntervalLog`]).
//!
//! Stamps never enter the engine or the journal: they travel in the ring slots beside the
//! event or intent (see [`super::rings`]).

use crate::live::counters::Counters;
use anyhow::Context;
use disruptor::{
    build_single_producer, BusySpin, EventPoller, Producer, SingleConsumerBarrier, SingleProducer,
    SingleProducerBarrier,
};
use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use quanta::Clock;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A measured hop. The first four add up, per event, to [`Hop::TickToIntent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Hop {
    /// Feed: decode (and book sync) done → the message's events are published into the input
    /// ring (one batch, one sample per message).
    DecodePublish = 0,
    /// Input ring: publish → the engine reads the first slot of that publish (every source;
    /// one sample per publish: a venue message's events are published together).
    PublishConsume = 1,
    /// Engine: it read the batch's first market event → the batch's first intent is published.
    ConsumeIntent = 2,
    /// Output ring: intent published → the gateway reads it.
    IntentGateway = 3,
    /// Decode done of the batch's first market event → the batch's first intent is published
    /// (tick-to-trade: when the first order of the reaction goes out). Batches without market
    /// data (reports, timer ticks only) are not counted, nor are batches that complete a book
    /// (re)sync (see [`Hop::ResyncToIntent`]).
    TickToIntent = 4,
    /// The same for a batch that completes a book (re)sync (it holds the `BookValid` event: the
    /// snapshot's levels and the buffered diffs, thousands of events): when the first quotes go
    /// out after a (re)sync. Not a market tick, so kept apart from [`Hop::TickToIntent`].
    ResyncToIntent = 5,
    /// A live feed ([`super::clock::ReplayClock::live`]): the kernel's receive stamp of the
    /// socket read that completed the message → its decode done (the network part: kernel to
    /// user read, TLS decrypt, WebSocket frame, then decode and book sync), one per message.
    WireDecode = 6,
    /// A live feed: the kernel's receive stamp of the batch's first market message → the
    /// batch's first intent published (what [`Hop::TickToIntent`] is, from the wire).
    WireToIntent = 7,
    /// A live feed, split of [`Hop::WireDecode`] (1 of 4): the kernel's receive stamp → the
    /// socket read that completed the message returned (both on `CLOCK_REALTIME`): waking the
    /// feed thread, the copy to user space.
    KernelRead = 8,
    /// Split 2 of 4: that read returned → the TLS record holding the message's last bytes is
    /// decrypted (when several records came in one read, the later ones include the earlier
    /// ones' decryption and framing).
    ReadTls = 9,
    /// Split 3 of 4: record decrypted → the message's WebSocket frame is complete and its
    /// payload copied out.
    TlsFrame = 10,
    /// Split 4 of 4: frame complete → decode and book sync done (simd-json, the feed handler).
    FrameDecode = 11,
    /// A live feed: the kernel's receive stamp of the batch's first market message → the engine
    /// has priced, risk-checked and diffed the batch (its intents published, if it had any).
    /// Every market batch counts, so this has a sample per batch where [`Hop::WireToIntent`]
    /// has one per batch that sent an order.
    WireToEngineDone = 12,
    /// A live feed: a message that was complete in the connection's buffers behind earlier
    /// ones (several in one TLS record or read): its record decrypted → the poll that took it
    /// out began (it waited while the feed decoded and published the ones ahead). Only such
    /// messages count; their [`Hop::TlsFrame`] starts at that poll.
    Queued = 13,
    /// Feed: decode done → the message's last event is written into the input ring (the feed's
    /// own cost of publishing, all its events; [`Hop::DecodePublish`] ends where the first
    /// write begins). One per message.
    RingWrite = 14,
    /// Intent published by the engine → the venue's `send` returned: for the live order-entry
    /// session, the signed request written to the socket (or refused locally); for the
    /// simulated venue, queued in it. [`Hop::IntentGateway`] plus [`Hop::GatewaySend`].
    IntentSent = 15,
    /// The gateway read the intent → the venue's `send` returned (live: sign, frame, encrypt,
    /// write).
    GatewaySend = 16,
}

impl Hop {
    /// Every hop, in order.
    pub const ALL: [Hop; 17] = [
        Hop::DecodePublish,
        Hop::PublishConsume,
        Hop::ConsumeIntent,
        Hop::IntentGateway,
        Hop::TickToIntent,
        Hop::ResyncToIntent,
        Hop::WireDecode,
        Hop::WireToIntent,
        Hop::KernelRead,
        Hop::ReadTls,
        Hop::TlsFrame,
        Hop::FrameDecode,
        Hop::WireToEngineDone,
        Hop::Queued,
        Hop::RingWrite,
        Hop::IntentSent,
        Hop::GatewaySend,
    ];

    /// The interval-log tag (no spaces, commas or colons).
    pub fn tag(self) -> &'static str {
        match self {
            Hop::DecodePublish => "decode_publish",
            Hop::PublishConsume => "publish_consume",
            Hop::ConsumeIntent => "consume_intent",
            Hop::IntentGateway => "intent_gateway",
            Hop::TickToIntent => "tick_to_intent",
            Hop::ResyncToIntent => "resync_to_intent",
            Hop::WireDecode => "wire_decode",
            Hop::WireToIntent => "wire_to_intent",
            Hop::KernelRead => "kernel_read",
            Hop::ReadTls => "read_tls",
            Hop::TlsFrame => "tls_frame",
            Hop::FrameDecode => "frame_decode",
            Hop::WireToEngineDone => "wire_engine_done",
            Hop::Queued => "queued",
            Hop::RingWrite => "ring_write",
            Hop::IntentSent => "intent_sent",
            Hop::GatewaySend => "gateway_send",
        }
    }

    /// Measured only on a live network feed (from the kernel's receive stamps).
    pub fn is_wire(self) -> bool {
        matches!(
            self,
            Hop::WireDecode
                | Hop::WireToIntent
                | Hop::KernelRead
                | Hop::ReadTls
                | Hop::TlsFrame
                | Hop::FrameDecode
                | Hop::WireToEngineDone
                | Hop::Queued
        )
    }

    fn from_u8(v: u8) -> Option<Hop> {
        Hop::ALL.get(v as usize).copied()
    }
}

/// `from` of a stamp whose `to` is already nanoseconds (a hop measured on the wall clock).
const NS_DIRECT: u64 = u64::MAX;

/// One measurement: raw TSC values at both ends (or `NS_DIRECT` and nanoseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamp {
    hop: u8,
    from: u64,
    to: u64,
}

/// The sending end of one thread's stamp queue.
#[allow(missing_debug_implementations)] // the disruptor producer is not Debug
pub struct StampTx {
    producer: SingleProducer<Stamp, SingleConsumerBarrier>,
    counters: Arc<super::shared::Shared>,
}

impl StampTx {
    /// Queues one measurement; drops it (counted) if the queue is full.
    #[inline]
    pub fn send(&mut self, hop: Hop, from: u64, to: u64) {
        if self
            .producer
            .try_publish(|s| {
                s.hop = hop as u8;
                s.from = from;
                s.to = to;
            })
            .is_err()
        {
            Counters::add(&self.counters.counters.stamps_dropped, 1);
        }
    }

    /// Queues one measurement already in nanoseconds (a wall-clock hop: a kernel receive stamp
    /// to now); negative (clocks that disagree) counts as 0.
    #[inline]
    pub fn send_ns(&mut self, hop: Hop, ns: i64) {
        self.send(hop, NS_DIRECT, ns.max(0) as u64);
    }
}

/// The receiving ends of every thread's stamp queue.
#[allow(missing_debug_implementations)] // the disruptor pollers are not Debug
#[derive(Default)]
pub struct StampRx {
    pollers: Vec<EventPoller<Stamp, SingleProducerBarrier>>,
}

impl StampRx {
    /// A new queue of `slots` (a power of two): its sender for one thread, its receiver added here.
    pub fn channel(&mut self, slots: usize, shared: Arc<super::shared::Shared>) -> StampTx {
        let (poller, b) = build_single_producer(slots, Stamp::default, BusySpin).new_event_poller();
        self.pollers.push(poller);
        StampTx {
            producer: b.build(),
            counters: shared,
        }
    }

    /// Moves every queued stamp into `h`. Returns how many.
    pub fn drain(&mut self, clock: &Clock, h: &mut HopHistograms) -> u64 {
        let mut n = 0;
        for p in &mut self.pollers {
            if let Ok(mut g) = p.poll() {
                for s in &mut g {
                    if let Some(hop) = Hop::from_u8(s.hop) {
                        // TSCs of two cores may disagree by a few ns: clamp at 1.
                        let ns = if s.from == NS_DIRECT {
                            s.to
                        } else if s.to > s.from {
                            clock.delta_as_nanos(s.from, s.to)
                        } else {
                            0
                        };
                        h.record(hop, ns.max(1));
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

/// A histogram with the bounds used for every hop: 1 ns .. 60 s, 3 significant digits (fixed
/// bounds: recording never allocates).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// One histogram per hop, for the current interval and for the whole run.
#[derive(Debug)]
pub struct HopHistograms {
    interval: Vec<Histogram<u64>>,
    total: Vec<Histogram<u64>>,
}

impl Default for HopHistograms {
    fn default() -> Self {
        HopHistograms {
            interval: Hop::ALL.iter().map(|_| new_histogram()).collect(),
            total: Hop::ALL.iter().map(|_| new_histogram()).collect(),
        }
    }
}

impl HopHistograms {
    /// Records one value, ns.
    pub fn record(&mut self, hop: Hop, ns: u64) {
        self.interval[hop as usize].saturating_record(ns);
        self.total[hop as usize].saturating_record(ns);
    }

    /// The current interval's histogram of `hop`.
    pub fn interval(&self, hop: Hop) -> &Histogram<u64> {
        &self.interval[hop as usize]
    }

    /// The whole run's histogram of `hop`.
    pub fn total(&self, hop: Hop) -> &Histogram<u64> {
        &self.total[hop as usize]
    }

    /// Starts a new interval.
    pub fn reset_interval(&mut self) {
        for h in &mut self.interval {
            h.reset();
        }
    }

    /// The whole run's histograms, by hop.
    pub fn into_totals(self) -> Vec<(Hop, Histogram<u64>)> {
        Hop::ALL.iter().copied().zip(self.total).collect()
    }
}

/// An HdrHistogram interval log being written (V2 compressed, one tag per hop), flushed to the
/// file at every interval so a reader sees complete intervals while the run goes on.
pub struct IntervalLog<'a> {
    writer: IntervalLogWriter<'a, 'a, std::fs::File, V2DeflateSerializer>,
    start: SystemTime,
    tags: Vec<Tag<'static>>,
}

impl std::fmt::Debug for IntervalLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalLog")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl<'a> IntervalLog<'a> {
    /// Writes the header into `file` (unbuffered: every interval is in the file once written).
    /// Interval timestamps are wall-clock seconds since `start`.
    pub fn begin(
        file: &'a mut std::fs::File,
        ser: &'a mut V2DeflateSerializer,
        start: SystemTime,
    ) -> anyhow::Result<IntervalLog<'a>> {
        let writer = IntervalLogWriterBuilder::new()
            .add_comment("ringmaker run --paper latency log: values in ns, one tag per hop")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1.0)
            .begin_log_with(file, ser)
            .context("writing the latency log header")?;
        let tags = Hop::ALL
            .iter()
            .map(|h| Tag::new(h.tag()).expect("hop tags have no spaces, commas or colons"))
            .collect();
        Ok(IntervalLog {
            writer,
            start,
            tags,
        })
    }

    /// Writes the interval `[from, to)` (wall clock) of every hop that recorded something.
    pub fn write_interval(
        &mut self,
        h: &HopHistograms,
        from: SystemTime,
        to: SystemTime,
    ) -> anyhow::Result<()> {
        let rel = from.duration_since(self.start).unwrap_or_default();
        let len = to.duration_since(from).unwrap_or(Duration::from_nanos(1));
        for (k, hop) in Hop::ALL.iter().enumerate() {
            let hist = h.interval(*hop);
            if hist.is_empty() {
                continue;
            }
            self.writer
                .write_histogram(hist, rel, len, Some(self.tags[k]))
                .map_err(|e| anyhow::anyhow!("writing the latency log: {e:?}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::clock::ReplayClock;
    use crate::live::shared::Shared;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn stamps_reach_the_histograms_and_a_full_queue_drops() {
        let clock = Clock::new();
        let shared = Arc::new(Shared::new(
            Arc::new(AtomicBool::new(false)),
            ReplayClock::new(0.0, clock.clone()),
        ));
        let mut rx = StampRx::default();
        let mut tx = rx.channel(4, shared.clone());
        let t0 = clock.raw();
        for _ in 0..6 {
            tx.send(Hop::TickToIntent, t0, t0 + 1000);
        }
        assert_eq!(shared.counters.snapshot().stamps_dropped, 2);
        let mut h = HopHistograms::default();
        assert_eq!(rx.drain(&clock, &mut h), 4);
        assert_eq!(h.total(Hop::TickToIntent).len(), 4);
        assert!(h.total(Hop::DecodePublish).is_empty());
        h.reset_interval();
        assert!(h.interval(Hop::TickToIntent).is_empty());
        assert_eq!(h.total(Hop::TickToIntent).len(), 4);
    }

    #[test]
    fn interval_log_has_one_tag_per_hop() {
        let dir = test_support::TempDir::new("latency-hlog");
        let path = dir.join("latency.hlog");
        let mut h = HopHistograms::default();
        h.record(Hop::DecodePublish, 100);
        h.record(Hop::TickToIntent, 2_000);
        {
            let mut file = std::fs::File::create(&path).unwrap();
            let mut ser = V2DeflateSerializer::new();
            let start = SystemTime::now();
            let mut log = IntervalLog::begin(&mut file, &mut ser, start).unwrap();
            log.write_interval(&h, start, start + Duration::from_secs(1))
                .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("Tag=decode_publish,"), "{text}");
        assert!(text.contains("Tag=tick_to_intent,"), "{text}");
        assert!(!text.contains("Tag=intent_gateway,"), "{text}");
    }
}
