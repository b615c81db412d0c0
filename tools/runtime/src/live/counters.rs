//! Run counters, shared by every thread and read by the status line and the summary.
//!
//! Each counter has exactly one writing thread (named in its doc) and is cache-padded, so no two
//! writers share a line. Writers add with `Relaxed`: a counter orders nothing, and readers only
//! want a recent value.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// The live counters.
        #[derive(Debug, Default)]
        pub struct Counters {
            $( $(#[$doc])* pub $name: CachePadded<AtomicU64>, )*
        }

        /// A copy of [`Counters`] at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
        pub struct CounterSnapshot {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot {
                    $( $name: self.$name.load(Ordering::Relaxed), )*
                }
            }
        }
    };
}

counters! {
    /// Feed: recording lines read.
    lines,
    /// Feed: lines that could not be read or decoded (skipped).
    bad_lines,
    /// Feed: market events published into the input ring.
    feed_events,
    /// Feed: times the input ring was full for a market event (each one invalidates the book
    /// and requests a resync, unless the book is already waiting for a snapshot).
    ring_overflows,
    /// Feed: market events dropped because the ring was full or the book was waiting for its
    /// `BookInvalid` to get through.
    dropped_events,
    /// Feed, flat out: events that found the ring full and waited for room (not dropped).
    feed_waits,
    /// Feed: `BookInvalid { RingOverflow }` events that reached the ring.
    overflow_invalids,
    /// Feed: resyncs requested (a new snapshot is needed; a recording has none to give).
    resync_requests,
    /// Timer: ticks published.
    timer_ticks,
    /// Timer: ticks skipped because the input ring was full (the next tick carries later time).
    timer_skipped,
    /// Gateway: execution reports published.
    reports,
    /// Gateway: attempts to publish a report that found the input ring full (the report waits
    /// in the gateway and is retried; none is dropped).
    report_retries,
    /// Gateway: intents received from the output ring.
    gateway_intents,
    /// Engine: events consumed.
    engine_events,
    /// Engine: batches (each ends with `on_batch_end`).
    engine_batches,
    /// Engine: intents published into the output ring (backlogged ones once they get in).
    engine_intents,
    /// Engine: attempts to publish an intent that found the output ring full (retried).
    output_retries,
    /// Engine: intents that found the output ring full past the wait and were backlogged.
    output_backlogged,
    /// Engine: times quoting was halted because the output ring stayed full.
    output_halts,
    /// Engine: intents that found the output ring and the backlog full: not sent (the run aborts).
    intents_lost,
    /// Engine: mode changes.
    mode_changes,
    /// Engine: journal housekeeping calls.
    journal_idles,
    /// Any thread: latency stamps dropped because the housekeeping queue was full.
    stamps_dropped,
    /// Control: shutdown commands published.
    controls,
    /// Bus: the firm's limits published into the input ring.
    firm_limits,
}

impl Counters {
    /// Adds `n` to a counter this thread owns.
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
