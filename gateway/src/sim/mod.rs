//! A deterministic simulated Binance futures venue for backtests.
//!
//! [`SimVenue`] takes the engine's [`Intent`]s, matches them against a recorded market (book
//! levels and public trades) and hands back execution reports as engine [`Event`]s. Three parts
//! are pluggable, each a generic parameter (monomorphised, no `dyn`):
//!
//! - [`QueueModel`]: where a resting order stands in its price level's queue, and how that
//!   position moves as the recorded level changes ([`RiskAverseQueue`], [`ProbQueue`]).
//! - [`LatencyModel`]: order entry (engine → venue) and response (venue → engine) delays
//!   ([`ConstantLatency`]).
//! - [`FeeModel`]: maker and taker fees of a fill ([`BpsFees`]).
//!
//! # Time
//!
//! The venue sees the recorded market at its *local* receive time: the feed's latency is already
//! inside the recording, so a trade recorded at local time `t` fills a resting order at venue time
//! `t`, and the report reaches the engine at `t + response`. An intent the engine makes at `t`
//! reaches the venue at `t + entry`. Orders and reports each travel over one FIFO connection (as
//! the order-entry session and the user-data stream do), so a later message never overtakes an
//! earlier one: a delay that would reorder them is stretched instead.
//!
//! # Driving it
//!
//! ```text
//! for ev in recording {
//!     // Everything due before the market event, one due time at a time, so that intents the
//!     // engine makes in reaction to a report are sent at that report's time.
//!     while let Some(t) = venue.next_due().filter(|&t| t <= ev.local_time_ns) {
//!         venue.advance_to(t, &mut |r| engine.on_event(r, &mut intents));
//!         engine.on_batch_end(&mut intents);
//!         for i in intents.drain(..) { venue.on_intent(&i, i.time_ns) }
//!     }
//!     venue.on_market(&ev);
//!     engine.on_event(&ev, &mut intents); ...
//! }
//! ```
//!
//! Calling `advance_to(ev.local_time_ns, ..)` directly also works; intents made in reaction to a
//! report delivered earlier than that are then sent "in the past" and are counted in
//! [`SimStats::late_intents`] (they are delivered no earlier than the venue's clock).
//!
//! See `README.md` beside this file for the matching rules in one page.

mod fees;
mod latency;
mod link;
mod outbox;
mod power;
mod queue;
mod stats;
mod venue;

#[cfg(test)]
mod venue_tests;

pub use fees::BpsFees;
pub use latency::ConstantLatency;
pub use queue::{ProbQueue, RiskAverseQueue};
pub use stats::SimStats;
pub use venue::{SimVenue, MAX_OPEN_ORDERS};

#[cfg(doc)]
use engine::Event;
use engine::{ExecReport, InstrumentId, Intent};

/// A queue-position model: where one of our resting orders stands among the recorded market's
/// quantity at its price, and how that moves.
///
/// The recorded book does not contain our orders, so every quantity here is the market's own.
/// The venue keeps one [`QueueModel::Pos`] inline in each resting order's slot (no allocation).
pub trait QueueModel {
    /// Per-order queue state.
    type Pos: Copy + std::fmt::Debug;

    /// An order joins the back of its level, which holds `level_qty` lots of the market's
    /// orders when it arrives.
    fn join(&self, level_qty: i64) -> Self::Pos;

    /// Whole lots still ahead of the order (a fraction of a lot ahead still blocks a lot).
    fn ahead(&self, pos: &Self::Pos) -> i64;

    /// A trade of `qty` lots at the order's price, with the aggressor on the other side, reached
    /// the order's position in the queue. Consumes the queue ahead first and returns the lots
    /// left over for the order (`0` while the queue ahead absorbs it all).
    fn on_trade(&self, pos: &mut Self::Pos, qty: i64) -> i64;

    /// The recorded quantity at the order's level changed.
    fn on_level_change(&self, pos: &mut Self::Pos, change: LevelChange);

    /// The book was re-synced (reset, snapshot, valid): the level now holds `level_qty`.
    /// The queue ahead cannot have grown; it is capped at what is there.
    fn on_resync(&self, pos: &mut Self::Pos, level_qty: i64);
}

/// A change of the recorded quantity at a resting order's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelChange {
    /// Quantity before the update, lots.
    pub prev_qty: i64,
    /// Quantity after the update, lots.
    pub new_qty: i64,
    /// Lots traded at this price (aggressor on the other side) since the level's previous
    /// update: that much of a decrease is explained by trades, already applied by
    /// [`QueueModel::on_trade`], and must not be counted twice.
    pub traded_since: i64,
}

/// A latency model: how long messages take between the engine and the venue.
///
/// Methods take `&mut self` so that a seeded pseudo-random model can advance its state; it must
/// be deterministic (same calls, same answers). Negative answers are treated as zero.
pub trait LatencyModel {
    /// Engine → venue: delay of `intent`, sent at engine time `sent_ns`.
    fn entry_ns(&mut self, intent: &Intent, sent_ns: i64) -> i64;

    /// Venue → engine: delay of `report`, produced at venue time `venue_ns`.
    fn response_ns(&mut self, report: &ExecReport, venue_ns: i64) -> i64;
}

/// A fee model: the fee of one fill in the instrument's money units, or for a spot buy in base
/// units of 10^-6 lot ([`engine::fee_in_base`]); negative is a rebate.
pub trait FeeModel {
    /// Fee of a fill of `qty` lots at `price` ticks on `instrument`, our order on `side`, as
    /// taker or maker.
    fn fee(
        &self,
        instrument: InstrumentId,
        side: engine::Side,
        price: i64,
        qty: i64,
        taker: bool,
    ) -> i64;
}
