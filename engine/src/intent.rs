//! The engine's outputs: order intents and mode changes, fixed-size and `Copy`.

use crate::event::{InstrumentId, Side};

/// What an [`Intent`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IntentKind {
    /// Place a limit order.
    Place = 1,
    /// Cancel one order by client order id.
    Cancel = 2,
}

/// Time in force of a placed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeInForce {
    /// Post-only (Binance `GTX`): rejected instead of taking.
    PostOnly = 1,
    /// Immediate-or-cancel: used only to flatten on a stop loss.
    Ioc = 2,
}

/// One order intent: 64 bytes, one cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, align(64))]
pub struct Intent {
    /// Place or cancel.
    pub kind: IntentKind,
    /// Order side (for a cancel: the side of the order cancelled).
    pub side: Side,
    /// Time in force (places; `PostOnly` on cancels).
    pub tif: TimeInForce,
    /// Whether this cancel was forced by risk or mode (exempt from the cancel budget).
    pub forced: bool,
    /// Instrument.
    pub instrument: InstrumentId,
    _pad: u16,
    /// Client order id (deterministic: instrument, slot, generation).
    pub client_order_id: u64,
    /// Limit price, ticks (0 for a cancel).
    pub price: i64,
    /// Quantity, lots (0 for a cancel).
    pub qty: i64,
    /// Engine time (ns, from events) when the intent was made.
    pub time_ns: i64,
    /// Engine-wide intent sequence number, from 0.
    pub seq: u64,
}

const _: () = assert!(std::mem::size_of::<Intent>() == 64);

impl Intent {
    /// A place intent.
    #[allow(clippy::too_many_arguments)]
    pub fn place(
        instrument: InstrumentId,
        side: Side,
        tif: TimeInForce,
        client_order_id: u64,
        price: i64,
        qty: i64,
        time_ns: i64,
        seq: u64,
    ) -> Intent {
        Intent {
            kind: IntentKind::Place,
            side,
            tif,
            forced: false,
            instrument,
            _pad: 0,
            client_order_id,
            price,
            qty,
            time_ns,
            seq,
        }
    }

    /// A cancel intent.
    pub fn cancel(
        instrument: InstrumentId,
        side: Side,
        client_order_id: u64,
        forced: bool,
        time_ns: i64,
        seq: u64,
    ) -> Intent {
        Intent {
            kind: IntentKind::Cancel,
            side,
            tif: TimeInForce::PostOnly,
            forced,
            instrument,
            _pad: 0,
            client_order_id,
            price: 0,
            qty: 0,
            time_ns,
            seq,
        }
    }
}

/// Quoting mode of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mode {
    /// Both sides quoted.
    Normal = 0,
    /// Only the side that reduces the position, never crossing zero.
    ReduceOnly = 1,
    /// Everything cancelled, nothing quoted.
    Halted = 2,
}

/// Why a mode is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ModeReason {
    /// Nothing wrong.
    None = 0,
    /// Inventory ratio at or above `reduce_only_thresh`.
    Inventory = 1,
    /// Stop loss hit (unrealized loss / position notional below `-stop_loss`).
    StopLoss = 2,
    /// The operator asked.
    Operator = 3,
    /// Kill switch (operator halt).
    KillSwitch = 4,
    /// Daily loss limit reached; needs an operator resume.
    DailyLossLimit = 5,
    /// Fair value moved more than `max_price_change` within `circuit_window`.
    CircuitBreaker = 6,
    /// The feed declared the book invalid, or it is one-sided or crossed.
    BookInvalid = 7,
    /// No book update for `stale_after`.
    BookStale = 8,
}

/// A change of mode, journaled with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ModeChange {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Previous mode.
    pub from: Mode,
    /// New mode.
    pub to: Mode,
    /// Why the new mode is in force.
    pub reason: ModeReason,
    /// Engine time, ns.
    pub time_ns: i64,
}

/// Where the engine writes its outputs. Implementations must not block: the engine calls it on
/// the hot path (the gateway ring, the journal, or a `Vec` in tests).
pub trait Sink {
    /// An order intent.
    fn intent(&mut self, intent: &Intent);
    /// A mode change.
    fn mode_change(&mut self, _change: &ModeChange) {}
}

impl Sink for Vec<Intent> {
    fn intent(&mut self, intent: &Intent) {
        self.push(*intent);
    }
}
