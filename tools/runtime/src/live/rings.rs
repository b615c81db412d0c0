//! The two disruptor rings and what travels on them.
//!
//! - **Input ring** (multi-producer: feed, gateway, timer, control; `[rings] input` slots).
//!   Consumed by the engine's poller and, *after* the engine (a dependent stage), by the
//!   gateway's poller, which feeds the market events to the simulated venue. So the venue
//!   never sees a market event before the engine has, and a slot is reused only once both have
//!   read it.
//! - **Output ring** (single producer: the engine; `[rings] output` slots). Consumed by the
//!   gateway.
//!
//! A slot carries the engine's 64-byte [`Event`] / [`Intent`] plus TSC stamps beside it. The
//! stamps are for latency only: the engine and the journal see the event or intent alone.
//!
//! # Input rings under 64 slots
//!
//! disruptor's multi-producer ring needs at least 64 slots. A smaller `[rings] input` (useful
//! to exercise overflow handling) is emulated: the ring gets 64 slots and every producer, through
//! [`InputProducer`], treats it as full once `input` events are unread by the last consumer
//! (the gateway, which counts what it has read). Two producers racing for the last slot can
//! exceed that by one each: a soft limit, enough for its purpose. At 64 slots and up the ring's
//! own limit is the only one and publishing costs nothing extra.

use crossbeam_utils::CachePadded;
use disruptor::{
    build_multi_producer, build_single_producer, BusySpin, EventPoller, MultiProducer,
    MultiProducerBarrier, Producer, SingleConsumerBarrier, SingleProducer, SingleProducerBarrier,
};
use engine::{Event, Intent, Side};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// disruptor's smallest multi-producer ring.
pub const MIN_INPUT_SLOTS: usize = 64;

/// `Event::source` of market data from the feed thread.
pub const SRC_FEED: u16 = 1;
/// `Event::source` of execution reports from the gateway thread.
pub const SRC_GATEWAY: u16 = 2;
/// `Event::source` of timer ticks.
pub const SRC_TIMER: u16 = 3;
/// `Event::source` of operator commands (the shutdown's halt and cancel-all).
pub const SRC_CONTROL: u16 = 4;
/// `Event::source` of the firm's limits from the bus thread (`Command::FirmLimit`).
pub const SRC_BUS: u16 = 5;

/// One input-ring slot.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct InSlot {
    /// What the engine consumes (and journals).
    pub event: Event,
    /// TSC when the feed finished decoding the message (0: not market data).
    pub t_decode: u64,
    /// TSC just before the publish.
    pub t_publish: u64,
}

impl Default for InSlot {
    fn default() -> Self {
        InSlot {
            event: Event::timer(0),
            t_decode: 0,
            t_publish: 0,
        }
    }
}

/// One output-ring slot.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct OutSlot {
    /// What the engine produced (and journaled).
    pub intent: Intent,
    /// TSC of the decode of the first market event of the batch that made it (0: none).
    pub t_decode: u64,
    /// TSC when the engine consumed that event.
    pub t_consume: u64,
    /// TSC just before the publish.
    pub t_intent: u64,
}

impl Default for OutSlot {
    fn default() -> Self {
        OutSlot {
            intent: Intent::cancel(0, Side::Bid, 0, false, 0, 0),
            t_decode: 0,
            t_consume: 0,
            t_intent: 0,
        }
    }
}

/// The raw disruptor producer of the input ring.
pub type RawInputProducer = MultiProducer<InSlot, SingleConsumerBarrier>;

/// The emulated capacity of an input ring under [`MIN_INPUT_SLOTS`].
#[derive(Debug)]
pub struct InputGate {
    limit: u64,
    /// Events published (every producer adds, `Release`).
    published: CachePadded<AtomicU64>,
    /// Events the last consumer has read and released (the gateway stores, `Release`).
    consumed: CachePadded<AtomicU64>,
}

impl InputGate {
    /// The last consumer has read `total` events so far.
    #[inline]
    pub fn consumed(&self, total: u64) {
        self.consumed.store(total, Ordering::Release);
    }
}

/// A producer handle on the input ring (clone one per producing thread).
#[allow(missing_debug_implementations)] // the disruptor producer is not Debug
pub struct InputProducer {
    raw: RawInputProducer,
    gate: Option<Arc<InputGate>>,
    slots: usize,
}

impl Clone for InputProducer {
    fn clone(&self) -> Self {
        InputProducer {
            raw: self.raw.clone(),
            gate: self.gate.clone(),
            slots: self.slots,
        }
    }
}

impl InputProducer {
    /// The ring's capacity as configured (`[rings] input`): the largest batch that can fit.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    /// Publishes `events` as one batch (consumers see all or none of them), stamped alike, if
    /// there is room for all; false (nothing published) otherwise. One claim and one publish for
    /// the lot: a venue message's levels cost one cross-core hand-over, not one each.
    #[inline]
    pub fn try_publish_batch(&mut self, events: &[Event], t_decode: u64, t_publish: u64) -> bool {
        let n = events.len();
        if n == 0 {
            return true;
        }
        if let Some(g) = &self.gate {
            let unread = g
                .published
                .load(Ordering::Acquire)
                .saturating_sub(g.consumed.load(Ordering::Acquire));
            if unread + n as u64 > g.limit {
                return false;
            }
        }
        let ok = self
            .raw
            .try_batch_publish(n, |slots| {
                for (slot, ev) in slots.zip(events) {
                    slot.event = *ev;
                    slot.t_decode = t_decode;
                    slot.t_publish = t_publish;
                }
            })
            .is_ok();
        if ok {
            if let Some(g) = &self.gate {
                g.published.fetch_add(n as u64, Ordering::Release);
            }
        }
        ok
    }

    /// Publishes one slot if there is room; false (nothing published) when the ring is full.
    #[inline]
    pub fn try_publish(&mut self, fill: impl FnOnce(&mut InSlot)) -> bool {
        match &self.gate {
            None => self.raw.try_publish(fill).is_ok(),
            Some(g) => {
                let unread = g
                    .published
                    .load(Ordering::Acquire)
                    .saturating_sub(g.consumed.load(Ordering::Acquire));
                if unread >= g.limit || self.raw.try_publish(fill).is_err() {
                    return false;
                }
                g.published.fetch_add(1, Ordering::Release);
                true
            }
        }
    }
}
/// The engine's poller on the input ring.
pub type EngineInput = EventPoller<InSlot, MultiProducerBarrier>;
/// The gateway's poller on the input ring (runs behind the engine).
pub type GatewayInput = EventPoller<InSlot, SingleConsumerBarrier>;
/// The engine's producer on the output ring.
pub type OutputProducer = SingleProducer<OutSlot, SingleConsumerBarrier>;
/// The gateway's poller on the output ring.
pub type GatewayOutput = EventPoller<OutSlot, SingleProducerBarrier>;

/// Both rings, built; hand the ends to the threads.
#[allow(missing_debug_implementations)] // the disruptor handles are not Debug
pub struct Rings {
    /// The first input producer (clone it for each further producer).
    pub input: InputProducer,
    /// Engine end of the input ring.
    pub engine_input: EngineInput,
    /// Gateway end of the input ring.
    pub gateway_input: GatewayInput,
    /// The emulated capacity, for the last consumer to report to (input rings under 64 slots).
    pub gate: Option<Arc<InputGate>>,
    /// Engine end of the output ring.
    pub output: OutputProducer,
    /// Gateway end of the output ring.
    pub gateway_output: GatewayOutput,
}

/// Builds both rings; sizes must be powers of two (checked by [`super::LiveConfig`]). All slots
/// are allocated here, before any thread starts.
pub fn build(input_slots: usize, output_slots: usize) -> Rings {
    let (engine_input, b) =
        build_multi_producer(input_slots.max(MIN_INPUT_SLOTS), InSlot::default, BusySpin)
            .new_event_poller();
    let (gateway_input, b) = b.and_then().new_event_poller();
    let gate = (input_slots < MIN_INPUT_SLOTS).then(|| {
        Arc::new(InputGate {
            limit: input_slots as u64,
            published: CachePadded::new(AtomicU64::new(0)),
            consumed: CachePadded::new(AtomicU64::new(0)),
        })
    });
    let input = InputProducer {
        raw: b.build(),
        gate: gate.clone(),
        slots: input_slots,
    };
    let (gateway_output, b) =
        build_single_producer(output_slots, OutSlot::default, BusySpin).new_event_poller();
    let output = b.build();
    Rings {
        input,
        engine_input,
        gateway_input,
        gate,
        output,
        gateway_output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use disruptor::Polling;

    #[test]
    fn slots_are_two_cache_lines() {
        assert_eq!(std::mem::size_of::<InSlot>(), 128);
        assert_eq!(std::mem::size_of::<OutSlot>(), 128);
    }

    #[test]
    fn gateway_reads_behind_the_engine_and_a_full_ring_refuses() {
        let mut r = build(64, 4);
        for k in 0..64 {
            assert!(r.input.try_publish(|s| s.event = Event::timer(k)), "room");
        }
        assert!(!r.input.try_publish(|_| {}), "64 slots, 64 unread");
        // The gateway cannot read what the engine has not.
        assert!(matches!(r.gateway_input.poll(), Err(Polling::NoEvents)));
        let seen: Vec<i64> = {
            let mut g = r.engine_input.poll().unwrap();
            (&mut g).map(|s| s.event.local_time_ns).collect()
        };
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        // Still full: the gateway holds the slots.
        assert!(!r.input.try_publish(|_| {}));
        {
            let mut g = r.gateway_input.poll().unwrap();
            assert_eq!((&mut g).count(), 64);
        }
        assert!(r.input.try_publish(|_| {}));
        drop(r.output);
        assert!(matches!(r.gateway_output.poll(), Err(Polling::Shutdown)));
    }

    #[test]
    fn a_small_input_ring_is_emulated_on_64_slots() {
        let mut r = build(8, 4);
        let gate = r.gate.clone().expect("emulated");
        let mut other = r.input.clone();
        for k in 0..8 {
            let p = if k % 2 == 0 { &mut r.input } else { &mut other };
            assert!(p.try_publish(|s| s.event = Event::timer(k)));
        }
        assert!(!r.input.try_publish(|_| {}), "8 unread");
        assert!(!other.try_publish(|_| {}), "8 unread");
        {
            let mut g = r.engine_input.poll().unwrap();
            assert_eq!((&mut g).count(), 8);
        }
        let read = {
            let mut g = r.gateway_input.poll().unwrap();
            (&mut g).count() as u64
        };
        gate.consumed(read);
        assert!(r.input.try_publish(|_| {}));
        assert!(build(64, 4).gate.is_none());
        // A batch goes in whole or not at all.
        let evs = [Event::timer(1); 8];
        assert!(!r.input.try_publish_batch(&evs, 0, 0), "1 unread + 8 > 8");
        assert!(r.input.try_publish_batch(&evs[..7], 5, 6));
        let got: Vec<(i64, u64)> = {
            let mut g = r.engine_input.poll().unwrap();
            (&mut g)
                .map(|s| (s.event.local_time_ns, s.t_publish))
                .collect()
        };
        assert_eq!(got.len(), 8);
        assert!(got[1..].iter().all(|&(t, p)| t == 1 && p == 6));
    }
}
