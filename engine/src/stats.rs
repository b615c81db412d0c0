//! Engine-wide counters.

/// Engine-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Events consumed.
    pub events: u64,
    /// Intents emitted.
    pub intents: u64,
    /// Requotes run.
    pub requotes: u64,
    /// Events for an instrument id the engine does not have.
    pub unknown_instrument: u64,
    /// Malformed events (bad exec kind, bad command).
    pub malformed: u64,
    /// Book levels the book refused.
    pub book_errors: u64,
    /// Events whose time went backwards (time was held at the previous value).
    pub time_regressions: u64,
    /// Places skipped for lack of venue order budget.
    pub places_rate_limited: u64,
    /// Places skipped because the exposure check refused them.
    pub places_risk_refused: u64,
    /// Discretionary cancels deferred for lack of cancel budget.
    pub cancels_deferred: u64,
    /// Cancels forced by mode or risk (exempt from the cancel budget).
    pub forced_cancels: u64,
    /// Best bid/offer events newer than the depth book (their top is priced from).
    pub bbo_used: u64,
    /// Best bid/offer events not newer than the depth book or the last one used, or arriving
    /// while the book is not valid (ignored: the depth book already holds what they say).
    pub bbo_behind: u64,
    /// Best bid/offer events refused as malformed (crossed, empty or non-positive side).
    pub bbo_refused: u64,
    /// Execution reports with a saturated field ([`crate::FLAG_SATURATED`]): counted, ignored.
    pub exec_saturated: u64,
    /// Rejects and cancel rejects with the venue's unknown-order code (`-2011`).
    pub rejects_unknown_order: u64,
    /// Rejects and cancel rejects with the venue's rate-limit code (`-1003`).
    pub rejects_rate_limited: u64,
    /// Rejects and cancel rejects with any other non-zero code except post-only would-take
    /// (`-5022`, counted in [`crate::OrderStats::post_only_rejects`]).
    pub rejects_other: u64,
    /// Reconciliation: fill quantity the venue had and we did not, applied at the order price.
    pub reconcile_missed_fills: u64,
    /// Reconciliation: orders we held open that the venue no longer has open, marked done.
    pub reconcile_closed: u64,
    /// Reconciliation: open venue orders with one of this instrument's ids that we do not hold
    /// open; a forced cancel is sent for each.
    pub reconcile_orphans_cancelled: u64,
    /// Reconciliation: open venue orders with an id that is not this engine's (foreign): counted,
    /// and the instrument goes reduce-only ([`crate::ModeReason::ForeignOrder`]).
    pub reconcile_foreign_orders: u64,
    /// Reconciliation: positions that differed from the venue's and were corrected to it.
    pub reconcile_position_corrections: u64,
    /// Fill reports for fills the venue's position already held when it was taken (done at or
    /// before its time): the order completed, the position left as the venue gave it.
    pub fills_in_venue_position: u64,
    /// Streamed positions (the user stream's account updates) older than the last snapshot
    /// taken: not applied, the snapshot holds their fills and any after them.
    pub stale_streamed_positions: u64,
    /// Reconciliation: orders of ours open at the venue taken over as working orders
    /// (`[engine] adopt_unknown_orders`).
    pub reconcile_adopted: u64,
    /// Times an instrument's quotes were pulled because its book had no update for
    /// `stale_after_ms` ([`crate::ModeReason::BookStale`] entered).
    pub stale_periods: u64,
    /// Mark price events stored ([`crate::EventKind::MarkPrice`]).
    pub mark_prices: u64,
}
