//! One venue interface: intents in, execution reports out, driven by time.
//!
//! The backtest driver and the pipeline's gateway thread take a [`Venue`] as a generic parameter
//! (monomorphised: no `dyn` on the hot path). The simulated venue ([`crate::sim::SimVenue`])
//! implements it now; the Binance order-entry session will implement it beside it.
//!
//! The contract, for every implementation:
//!
//! 1. [`Venue::send`] takes an intent the engine made, at the time it leaves the host. It never
//!    blocks: a venue that cannot send now queues the intent (bounded) or answers it with a
//!    reject report.
//! 2. [`Venue::poll`] delivers, in delivery order, every execution report (and reconciliation
//!    event) due at or before `now`, as engine events; the caller puts them on the engine's input.
//! 3. [`Venue::next_due`] says when the next thing is due (an intent arriving, a report, a
//!    timeout), so a simulated clock can jump to it and a live loop knows how long it may idle.
//! 4. [`Venue::on_market`] shows the venue a market event the engine consumed. The simulated
//!    venue matches against it; a live venue has the exchange's own market and ignores it.

use engine::{Event, InstrumentId, Intent};

/// A live venue session's links, counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// WebSocket API (order entry) connects.
    pub order_entry_connects: u64,
    /// User data stream connects.
    pub user_stream_connects: u64,
    /// Requests answered with 429 (too many requests) or 418 (banned), REST included.
    pub rate_limited: u64,
}

/// A trading venue as the engine's host sees it.
pub trait Venue {
    /// Counters the venue keeps (for the run's summary).
    type Stats: Copy + std::fmt::Debug;

    /// An intent the engine sent at `now_ns`.
    fn send(&mut self, intent: &Intent, now_ns: i64);

    /// Delivers every report due at or before `now_ns` to `out`, in delivery order.
    fn poll(&mut self, now_ns: i64, out: &mut impl FnMut(&Event));

    /// The earliest time something is pending, if anything is.
    fn next_due(&self) -> Option<i64>;

    /// A market event the engine consumed (at its local time). Default: ignored.
    fn on_market(&mut self, _ev: &Event) {}

    /// Orders open at the venue for `instrument`, as far as the venue session knows.
    fn open_orders(&self, instrument: InstrumentId) -> usize;

    /// How many of this venue's events the engine has consumed and answered (its intents for
    /// them are in the output ring by then). The gateway says it once a loop, before it reads
    /// the intents: a live session waits on it before it lets the engine quote after a
    /// reconciliation. Default: ignored.
    fn on_consumed(&mut self, _reports: u64) {}

    /// Whether the venue is driven by the market data (a simulated venue: polled at each market
    /// event's time, shown each event). A live session is not: it is polled once per gateway
    /// loop on the wall clock, and the gateway skips the per-event calls. Default: true.
    fn follows_market(&self) -> bool {
        true
    }

    /// A live session's link and rate-limit counts, for the metrics endpoint (`None`: not a
    /// live session). Read once a second by the gateway thread. Default: `None`.
    fn link_counts(&self) -> Option<LinkCounts> {
        None
    }

    /// Whether the engine must start with its order-entry link down
    /// ([`engine::Command::OrderEntryDown`] for every instrument before any market data): a live
    /// session that has not reconciled yet. Default: false.
    fn starts_down(&self) -> bool {
        false
    }

    /// The run is over and the engine's last intents were sent (or the drain gave up): a live
    /// session makes sure nothing is left working (a cancel-all backstop, the dead-man switch
    /// disarmed) and closes its connections. Called once, before the last
    /// [`Venue::open_orders`]. Default: nothing.
    fn close(&mut self) {}

    /// Counters.
    fn stats(&self) -> Self::Stats;
}
