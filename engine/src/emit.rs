//! The one place an intent leaves the engine.
//!
//! Every place and cancel, whatever stage decided it (the diff, a forced cancel-all, the
//! stop-loss flatten, reconciliation), goes through [`Emitter::emit`]: it stamps the engine-wide
//! sequence number, bumps the intent counters and hands the intent to the [`Sink`]. Replay
//! compares intents bit for bit, so there must be exactly one place that numbers them.

use crate::event::{InstrumentId, Side};
use crate::intent::{Intent, IntentKind, Sink, TimeInForce};
use crate::stats::EngineStats;

/// Numbers and counts intents on their way to the sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Emitter {
    /// The sequence number of the next intent (engine-wide, from 0).
    next_seq: u64,
}

impl Emitter {
    /// Stamps `intent` with the next sequence number, counts it and sends it.
    #[inline]
    pub(crate) fn emit(
        &mut self,
        mut intent: Intent,
        stats: &mut EngineStats,
        sink: &mut impl Sink,
    ) {
        intent.seq = self.next_seq;
        self.next_seq += 1;
        stats.intents += 1;
        if intent.kind == IntentKind::Cancel && intent.forced {
            stats.forced_cancels += 1;
        }
        sink.intent(&intent);
    }

    /// Emits a place intent.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn place(
        &mut self,
        instrument: InstrumentId,
        side: Side,
        tif: TimeInForce,
        client_order_id: u64,
        price: i64,
        qty: i64,
        now: i64,
        stats: &mut EngineStats,
        sink: &mut impl Sink,
    ) {
        let i = Intent::place(instrument, side, tif, client_order_id, price, qty, now, 0);
        self.emit(i, stats, sink);
    }

    /// Emits a cancel intent; `forced` ones (mode, risk, reconciliation) are counted as such.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn cancel(
        &mut self,
        instrument: InstrumentId,
        side: Side,
        client_order_id: u64,
        forced: bool,
        now: i64,
        stats: &mut EngineStats,
        sink: &mut impl Sink,
    ) {
        let i = Intent::cancel(instrument, side, client_order_id, forced, now, 0);
        self.emit(i, stats, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_every_intent_once_and_counts_forced_cancels() {
        let (mut e, mut stats, mut out) = (Emitter::default(), EngineStats::default(), Vec::new());
        e.place(
            0,
            Side::Bid,
            TimeInForce::PostOnly,
            7,
            100,
            2,
            5,
            &mut stats,
            &mut out,
        );
        e.cancel(0, Side::Bid, 7, false, 6, &mut stats, &mut out);
        e.cancel(0, Side::Ask, 8, true, 7, &mut stats, &mut out);
        assert_eq!(out.iter().map(|i| i.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!((stats.intents, stats.forced_cancels), (3, 1));
    }
}
