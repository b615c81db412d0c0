//! Average-cost position and PnL for one instrument, in exact integer units.
//!
//! Money is in units of one tick × one lot of the instrument (1e-4 USDT for BTCUSDT at 0.10 /
//! 0.001), held in `i128`, so nothing rounds until a reducing fill splits the cost basis.

use crate::config::Fx;
use crate::event::Side;

/// Position and PnL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed position, lots (long > 0).
    pub qty: i64,
    /// Cost basis of the open position: Σ signed price × qty, tick·lot units (same sign as `qty`).
    pub cost: i128,
    /// Realized PnL, tick·lot units, before fees.
    pub realized: i128,
    /// Fees paid (negative: rebates received), tick·lot units.
    pub fees: i128,
    /// Total quantity traded, lots.
    pub traded_qty: i64,
    /// Total notional traded, tick·lot units.
    pub traded_notional: i128,
    /// Fills as maker.
    pub maker_fills: u64,
    /// Fills as taker.
    pub taker_fills: u64,
    /// Times the position was corrected to the venue's (reconciliation).
    pub corrections: u64,
    /// Sum of the corrections' quantity changes (venue's − ours), lots.
    pub correction_qty: i64,
    /// Sum of the corrections' cost-basis changes, tick·lot units: the part of PnL that comes
    /// from adopting the venue's position rather than from fills we saw.
    pub correction_cost: i128,
}

impl Position {
    /// Applies a fill of `qty` lots at `price` ticks.
    pub fn on_fill(&mut self, side: Side, price: i64, qty: i64, fee: i64, taker: bool) {
        if qty <= 0 {
            return;
        }
        let signed = if side == Side::Bid { qty } else { -qty };
        self.traded_qty += qty;
        self.traded_notional += price as i128 * qty as i128;
        self.fees += fee as i128;
        if taker {
            self.taker_fills += 1;
        } else {
            self.maker_fills += 1;
        }
        if self.qty == 0 || (self.qty > 0) == (signed > 0) {
            self.qty += signed;
            self.cost += signed as i128 * price as i128;
            return;
        }
        let open = self.qty.unsigned_abs() as i128;
        let close = (qty as i128).min(open);
        let s: i128 = if self.qty > 0 { 1 } else { -1 };
        let cost_closed = self.cost * close / open;
        self.realized += s * close * price as i128 - cost_closed;
        self.cost -= cost_closed;
        self.qty -= (s * close) as i64;
        let rest = qty as i128 - close;
        if rest > 0 {
            // Flipped through zero: the rest opens a position on the other side.
            let sign: i128 = if signed > 0 { 1 } else { -1 };
            self.qty = (sign * rest) as i64;
            self.cost = sign * rest * price as i128;
        } else if self.qty == 0 {
            self.cost = 0;
        }
    }

    /// Adopts the venue's position: `qty` lots at an average entry of `entry_price` ticks.
    /// Realized PnL and fees are untouched; the change is recorded as a correction.
    pub fn correct_to(&mut self, qty: i64, entry_price: i64) {
        let cost = qty as i128 * entry_price as i128;
        self.corrections += 1;
        self.correction_qty += qty - self.qty;
        self.correction_cost += cost - self.cost;
        self.qty = qty;
        self.cost = cost;
    }

    /// Unrealized PnL marked at `fv` (ticks), tick·lot units, rounded towards -∞.
    pub fn unrealized(&self, fv: Fx) -> i128 {
        if self.qty == 0 {
            return 0;
        }
        let value = Fx::from_num(self.qty).saturating_mul(fv);
        value.floor().to_num::<i128>() - self.cost
    }

    /// Realized + unrealized − fees.
    pub fn total_pnl(&self, fv: Fx) -> i128 {
        self.realized + self.unrealized(fv) - self.fees
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_cost_realizes_on_reduce_and_flips() {
        let mut p = Position::default();
        p.on_fill(Side::Bid, 100, 2, 1, false);
        p.on_fill(Side::Bid, 110, 2, 1, false);
        assert_eq!((p.qty, p.cost), (4, 420));
        p.on_fill(Side::Ask, 120, 1, -1, false); // avg 105: +15
        assert_eq!((p.qty, p.cost, p.realized), (3, 315, 15));
        p.on_fill(Side::Ask, 100, 5, 0, true); // close 3 at 100: -15, then short 2 at 100
        assert_eq!((p.qty, p.cost, p.realized), (-2, -200, 0));
        assert_eq!(p.unrealized(Fx::from_num(90)), 20);
        p.on_fill(Side::Bid, 95, 2, 0, false);
        assert_eq!((p.qty, p.cost, p.realized), (0, 0, 10));
        assert_eq!(p.fees, 1);
        assert_eq!(p.total_pnl(Fx::from_num(1)), 9);
        assert_eq!((p.maker_fills, p.taker_fills, p.traded_qty), (4, 1, 12));
    }
}
