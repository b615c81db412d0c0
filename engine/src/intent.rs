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

impl Intent {
    /// The intent as 64 little-endian bytes (the journal's payload for it).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = self.kind as u8;
        b[1] = self.side as u8;
        b[2] = self.tif as u8;
        b[3] = self.forced as u8;
        b[4..6].copy_from_slice(&self.instrument.to_le_bytes());
        b[8..16].copy_from_slice(&self.client_order_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.price.to_le_bytes());
        b[24..32].copy_from_slice(&self.qty.to_le_bytes());
        b[32..40].copy_from_slice(&self.time_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// Decodes [`Intent::to_bytes`]; `None` if malformed.
    pub fn from_bytes(b: &[u8]) -> Option<Intent> {
        let b: &[u8; 64] = b.try_into().ok()?;
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            x
        };
        Some(Intent {
            kind: match b[0] {
                1 => IntentKind::Place,
                2 => IntentKind::Cancel,
                _ => return None,
            },
            side: match b[1] {
                0 => Side::Bid,
                1 => Side::Ask,
                _ => return None,
            },
            tif: match b[2] {
                1 => TimeInForce::PostOnly,
                2 => TimeInForce::Ioc,
                _ => return None,
            },
            forced: match b[3] {
                0 => false,
                1 => true,
                _ => return None,
            },
            instrument: u16::from_le_bytes([b[4], b[5]]),
            _pad: 0,
            client_order_id: u64::from_le_bytes(w(8)),
            price: i64::from_le_bytes(w(16)),
            qty: i64::from_le_bytes(w(24)),
            time_ns: i64::from_le_bytes(w(32)),
            seq: u64::from_le_bytes(w(40)),
        })
    }
}

impl Mode {
    /// Every mode, in code order.
    pub const ALL: [Mode; 3] = [Mode::Normal, Mode::ReduceOnly, Mode::Halted];

    /// Its name in metrics and operator answers (`normal`, `reduce_only`, `halted`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::ReduceOnly => "reduce_only",
            Mode::Halted => "halted",
        }
    }

    fn from_u8(v: u8) -> Option<Mode> {
        Some(match v {
            0 => Mode::Normal,
            1 => Mode::ReduceOnly,
            2 => Mode::Halted,
            _ => return None,
        })
    }
}

impl ModeReason {
    /// Every reason, in code order.
    pub const ALL: [ModeReason; 14] = [
        ModeReason::None,
        ModeReason::Inventory,
        ModeReason::StopLoss,
        ModeReason::Operator,
        ModeReason::KillSwitch,
        ModeReason::DailyLossLimit,
        ModeReason::CircuitBreaker,
        ModeReason::BookInvalid,
        ModeReason::BookStale,
        ModeReason::ForeignOrder,
        ModeReason::ClockFault,
        ModeReason::OrderEntry,
        ModeReason::Flatten,
        ModeReason::FirmLoss,
    ];

    /// Its name in metrics and operator answers (snake case: `kill_switch`, `book_stale`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ModeReason::None => "none",
            ModeReason::Inventory => "inventory",
            ModeReason::StopLoss => "stop_loss",
            ModeReason::Operator => "operator",
            ModeReason::KillSwitch => "kill_switch",
            ModeReason::DailyLossLimit => "daily_loss_limit",
            ModeReason::CircuitBreaker => "circuit_breaker",
            ModeReason::BookInvalid => "book_invalid",
            ModeReason::BookStale => "book_stale",
            ModeReason::ForeignOrder => "foreign_order",
            ModeReason::ClockFault => "clock_fault",
            ModeReason::OrderEntry => "order_entry",
            ModeReason::Flatten => "flatten",
            ModeReason::FirmLoss => "firm_loss",
        }
    }

    fn from_u8(v: u8) -> Option<ModeReason> {
        Some(match v {
            0 => ModeReason::None,
            1 => ModeReason::Inventory,
            2 => ModeReason::StopLoss,
            3 => ModeReason::Operator,
            4 => ModeReason::KillSwitch,
            5 => ModeReason::DailyLossLimit,
            6 => ModeReason::CircuitBreaker,
            7 => ModeReason::BookInvalid,
            8 => ModeReason::BookStale,
            9 => ModeReason::ForeignOrder,
            10 => ModeReason::ClockFault,
            11 => ModeReason::OrderEntry,
            12 => ModeReason::Flatten,
            13 => ModeReason::FirmLoss,
            _ => return None,
        })
    }
}

impl ModeChange {
    /// 16 little-endian bytes (the journal's payload for it).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&self.instrument.to_le_bytes());
        b[2] = self.from as u8;
        b[3] = self.to as u8;
        b[4] = self.reason as u8;
        b[8..16].copy_from_slice(&self.time_ns.to_le_bytes());
        b
    }

    /// Decodes [`ModeChange::to_bytes`]; `None` if malformed.
    pub fn from_bytes(b: &[u8]) -> Option<ModeChange> {
        let b: &[u8; 16] = b.try_into().ok()?;
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[8..16]);
        Some(ModeChange {
            instrument: u16::from_le_bytes([b[0], b[1]]),
            from: Mode::from_u8(b[2])?,
            to: Mode::from_u8(b[3])?,
            reason: ModeReason::from_u8(b[4])?,
            time_ns: i64::from_le_bytes(t),
        })
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
    /// Reconciliation found an open order on the instrument that is not this engine's: its
    /// exposure is unknown to risk. Until the operator's `Normal`.
    ForeignOrder = 9,
    /// The host clock failed its check (`Command::ClockFault`), until `Command::ClockOk`.
    ClockFault = 10,
    /// The order-entry link is down or not yet reconciled (`Command::OrderEntryDown`), until
    /// `Command::OrderEntryUp`.
    OrderEntry = 11,
    /// The operator's flatten (`Command::Flatten`): halted, closing the position, until
    /// `Command::Resume`.
    Flatten = 12,
    /// The firm's daily loss, summed over the engines sharing its budget (a silent one at its
    /// whole share), is past `[firm]`'s limit ([`crate::Command::FirmLimit`]); while it is.
    FirmLoss = 13,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_and_mode_changes_round_trip_through_bytes() {
        let p = Intent::place(3, Side::Ask, TimeInForce::Ioc, 77, 618002, 2, -5, 9);
        assert_eq!(Intent::from_bytes(&p.to_bytes()), Some(p));
        let c = Intent::cancel(1, Side::Bid, 78, true, 10, 11);
        assert_eq!(Intent::from_bytes(&c.to_bytes()), Some(c));
        assert_eq!(Intent::from_bytes(&[0u8; 64]), None);
        let m = ModeChange {
            instrument: 2,
            from: Mode::Normal,
            to: Mode::Halted,
            reason: ModeReason::CircuitBreaker,
            time_ns: 123,
        };
        assert_eq!(ModeChange::from_bytes(&m.to_bytes()), Some(m));
        assert_eq!(ModeChange::from_bytes(&[9u8; 16]), None);
    }
}
