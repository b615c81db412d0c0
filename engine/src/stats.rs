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
}
