//! What the simulated venue did, counted.

#[cfg(doc)]
use super::SimVenue;

/// What the venue did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Intents received from the engine.
    pub intents: u64,
    /// Intents that could not arrive `entry` after they were sent because the venue's clock had
    /// already passed that time (the driver advanced too far before sending them); they arrived
    /// at the venue's clock instead. Zero when the driver steps by [`SimVenue::next_due`].
    pub late_intents: u64,
    /// Orders accepted (`Ack`): post-only orders that rest, and IOC orders.
    pub accepted: u64,
    /// Post-only orders rejected because they would have taken (`-5022`).
    pub post_only_rejects: u64,
    /// Other rejects: unknown instrument, price or quantity not positive, duplicate client order
    /// id, too many open orders.
    pub rejects: u64,
    /// Orders filled completely (`Fill` reports).
    pub fills: u64,
    /// `PartialFill` reports.
    pub partial_fills: u64,
    /// Lots filled as maker.
    pub maker_lots: i64,
    /// Lots filled as taker (IOC).
    pub taker_lots: i64,
    /// Sum of all fees charged, tick·lot units (negative: net rebate).
    pub fees: i128,
    /// IOC orders whose rest expired (`Expired`).
    pub expired: u64,
    /// Orders cancelled (`Canceled`).
    pub cancels: u64,
    /// Cancels refused because the order had already finished — filled, or cancelled or expired
    /// before — so the cancel came too late (`-2011`).
    pub cancel_rejects_too_late: u64,
    /// Cancels refused for an id the venue does not know (`-2011`).
    pub cancel_rejects_unknown: u64,
    /// Reports delivered to the engine.
    pub reports: u64,
    /// Book levels the venue's book refused (negative quantity, non-positive price).
    pub book_errors: u64,
    /// Times a message queue grew past its preallocated capacity (an allocation).
    pub queue_growths: u64,
}
