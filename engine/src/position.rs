//! Average-cost position and PnL for one instrument, in exact integer units.
//!
//! Money is in the instrument's money units ([`Instrument::money_unit`]): one tick × one lot of
//! the quote asset for linear and spot instruments (1e-4 USDT for BTCUSDT at 0.10 / 0.001), 10^-12
//! of the base coin for inverse ones, held in `i128`, so nothing rounds until a reducing fill
//! splits the cost basis (and, for inverse, once per fill where `qty × contract_size / price` is
//! taken to 10^-12 coin).
//!
//! One rule serves every kind: the cost basis is the sum of the fills' signed values
//! ([`Instrument::value`]), and a reducing fill realizes `direction × (value at exit − cost of the
//! part closed)`, with `direction` −1 for inverse (a long in USD contracts gains coin as the price,
//! hence the coin value of its USD, falls... relative to entry: `qty × cs × (1/entry − 1/exit)`).
//!
//! Spot adds balances: `qty` is the change of the base balance from the start (fills only), a
//! buy's fee is charged in the base asset received ([`Position::fees_base`], units of 10^-6 lot),
//! a sell's in the quote asset, and [`Position::cash`] is the quote balance's change.

use crate::config::Fx;
use crate::event::Side;
use crate::instrument::{Instrument, InstrumentKind, SPOT_BASE_FEE_UNITS_PER_LOT};

/// Position and PnL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed position, lots (long > 0); for spot, the base balance's change from fills.
    pub qty: i64,
    /// Cost basis of the open position: Σ signed value of the fills that opened it, money units
    /// (same sign as `qty`).
    pub cost: i128,
    /// Realized PnL, money units, before fees.
    pub realized: i128,
    /// Fees paid in the PnL currency (negative: rebates received), money units.
    pub fees: i128,
    /// Spot: fees paid in the base asset (a buy's), units of 10^-6 lot.
    pub fees_base: i128,
    /// Spot: the quote balance's change from fills and quote fees, money units.
    pub cash: i128,
    /// Total quantity traded, lots.
    pub traded_qty: i64,
    /// Total notional traded, notional units (quote currency).
    pub traded_notional: i128,
    /// Fills as maker.
    pub maker_fills: u64,
    /// Fills as taker.
    pub taker_fills: u64,
    /// Times the position was corrected to the venue's (reconciliation).
    pub corrections: u64,
    /// Sum of the corrections' quantity changes (venue's − ours), lots.
    pub correction_qty: i64,
    /// Sum of the corrections' cost-basis changes, money units: the part of PnL that comes
    /// from adopting the venue's position rather than from fills we saw.
    pub correction_cost: i128,
}

/// Whether a fill's fee is charged in the base asset: a spot buy's.
#[inline]
pub fn fee_in_base(inst: &Instrument, side: Side) -> bool {
    inst.kind == InstrumentKind::Spot && side == Side::Bid
}

impl Position {
    /// Applies a fill of `qty` lots at `price` ticks; `fee` is in money units, or for a spot
    /// buy in base units of 10^-6 lot (see [`fee_in_base`]).
    pub fn on_fill(
        &mut self,
        inst: &Instrument,
        side: Side,
        price: i64,
        qty: i64,
        fee: i64,
        taker: bool,
    ) {
        if qty <= 0 {
            return;
        }
        let signed = if side == Side::Bid { qty } else { -qty };
        let value = inst.value(price, qty);
        self.traded_qty += qty;
        self.traded_notional += inst.notional(price, qty);
        if fee_in_base(inst, side) {
            self.fees_base += fee as i128;
        } else {
            self.fees += fee as i128;
        }
        if inst.kind == InstrumentKind::Spot {
            // The quote balance: a buy pays price × qty, a sell receives it; quote fees on top.
            let flow = price as i128 * qty as i128;
            self.cash += if signed > 0 { -flow } else { flow };
            if !fee_in_base(inst, side) {
                self.cash -= fee as i128;
            }
        }
        if taker {
            self.taker_fills += 1;
        } else {
            self.maker_fills += 1;
        }
        if self.qty == 0 || (self.qty > 0) == (signed > 0) {
            self.qty += signed;
            self.cost += if signed > 0 { value } else { -value };
            return;
        }
        let open = self.qty.unsigned_abs() as i128;
        let close = (qty as i128).min(open);
        let s: i128 = if self.qty > 0 { 1 } else { -1 };
        // cost × close / open without the i128 product (an inverse cost can reach 2^100):
        // exact, as close ≤ open.
        let cost_closed = (self.cost / open) * close + (self.cost % open) * close / open;
        let exit_value = if close == qty as i128 {
            value
        } else {
            inst.value(price, close as i64)
        };
        self.realized += inst.direction() * (s * exit_value - cost_closed);
        self.cost -= cost_closed;
        self.qty -= (s * close) as i64;
        let rest = qty as i128 - close;
        if rest > 0 {
            // Flipped through zero: the rest opens a position on the other side.
            let sign: i128 = if signed > 0 { 1 } else { -1 };
            self.qty = (sign * rest) as i64;
            self.cost = sign * inst.value(price, rest as i64);
        } else if self.qty == 0 {
            self.cost = 0;
        }
    }

    /// Adopts the venue's position: `qty` lots at an average entry of `entry_price` ticks.
    /// Realized PnL and fees are untouched; the change is recorded as a correction.
    pub fn correct_to(&mut self, inst: &Instrument, qty: i64, entry_price: i64) {
        let v = inst.value(entry_price, qty.saturating_abs());
        let cost = if qty < 0 { -v } else { v };
        self.corrections += 1;
        self.correction_qty += qty - self.qty;
        self.correction_cost += cost - self.cost;
        self.qty = qty;
        self.cost = cost;
    }

    /// Unrealized PnL marked at `fv` (ticks), money units, rounded towards −∞.
    pub fn unrealized(&self, inst: &Instrument, fv: Fx) -> i128 {
        if self.qty == 0 {
            return 0;
        }
        if inst.direction() > 0 {
            inst.value_at(fv, self.qty) - self.cost
        } else {
            // cost − ⌈value⌉, and ⌈v(q)⌉ = −⌊v(−q)⌋.
            self.cost + inst.value_at(fv, -self.qty)
        }
    }

    /// Fees paid in the base asset (spot buys), in money units at `fv`, rounded up.
    pub fn base_fees_value(&self, fv: Fx) -> i128 {
        if self.fees_base == 0 {
            return 0;
        }
        // fv to 2^-16 tick, rounded up; fees_base (10^-6 lot) × ticks → tick·lot.
        let fv16 = (fv.to_bits() + ((1i128 << 48) - 1)) >> 48;
        let den = (SPOT_BASE_FEE_UNITS_PER_LOT as i128) << 16;
        let num = self.fees_base.saturating_mul(fv16);
        num.div_euclid(den) + i128::from(num.rem_euclid(den) != 0)
    }

    /// Realized + unrealized − fees (base-asset fees valued at `fv`), money units.
    pub fn total_pnl(&self, inst: &Instrument, fv: Fx) -> i128 {
        self.realized + self.unrealized(inst, fv) - self.fees - self.base_fees_value(fv)
    }

    /// Spot: whole lots of base the fills have added (negative: taken away), after base fees.
    pub fn base_change_lots(&self) -> i64 {
        let fee_lots = self
            .fees_base
            .div_euclid(SPOT_BASE_FEE_UNITS_PER_LOT as i128)
            + i128::from(
                self.fees_base
                    .rem_euclid(SPOT_BASE_FEE_UNITS_PER_LOT as i128)
                    != 0,
            );
        (self.qty as i128 - fee_lots).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::InstrumentSpec;

    fn lin() -> Instrument {
        Instrument::new("BTCUSDT", "1", "1", "1", "0").unwrap()
    }

    /// COIN-M BTCUSD_PERP: tick 0.1, 1 contract = 100 USD.
    fn inverse() -> Instrument {
        Instrument::from_spec(&InstrumentSpec {
            symbol: "BTCUSD_PERP",
            kind: InstrumentKind::Inverse,
            tick: "0.1",
            lot: "1",
            min_qty: "1",
            min_notional: "0",
            contract_size: Some("100"),
            ..InstrumentSpec::default()
        })
        .unwrap()
    }

    /// Spot BTCUSDT: tick 0.01, lot 0.00001, book quantities to 0.00000001.
    fn spot() -> Instrument {
        Instrument::from_spec(&InstrumentSpec {
            symbol: "BTCUSDT",
            kind: InstrumentKind::Spot,
            tick: "0.01",
            lot: "0.00001",
            book_lot: Some("0.00000001"),
            min_qty: "0.00001",
            min_notional: "5",
            ..InstrumentSpec::default()
        })
        .unwrap()
    }

    #[test]
    fn average_cost_realizes_on_reduce_and_flips() {
        let i = &lin();
        let mut p = Position::default();
        p.on_fill(i, Side::Bid, 100, 2, 1, false);
        p.on_fill(i, Side::Bid, 110, 2, 1, false);
        assert_eq!((p.qty, p.cost), (4, 420));
        p.on_fill(i, Side::Ask, 120, 1, -1, false); // avg 105: +15
        assert_eq!((p.qty, p.cost, p.realized), (3, 315, 15));
        p.on_fill(i, Side::Ask, 100, 5, 0, true); // close 3 at 100: -15, then short 2 at 100
        assert_eq!((p.qty, p.cost, p.realized), (-2, -200, 0));
        assert_eq!(p.unrealized(i, Fx::from_num(90)), 20);
        p.on_fill(i, Side::Bid, 95, 2, 0, false);
        assert_eq!((p.qty, p.cost, p.realized), (0, 0, 10));
        assert_eq!(p.fees, 1);
        assert_eq!(p.total_pnl(i, Fx::from_num(1)), 9);
        assert_eq!((p.maker_fills, p.taker_fills, p.traded_qty), (4, 1, 12));
        assert_eq!((p.fees_base, p.cash), (0, 0), "no balances on a perpetual");
    }

    /// Money units are 10^-12 BTC; every figure below is `contracts × 100 × (1/entry − 1/exit)`
    /// worked by hand.
    #[test]
    fn inverse_pnl_is_in_coin() {
        let i = &inverse();
        assert_eq!(i.contract_ticks, 1_000);
        let mut p = Position::default();
        // Long 10 at 60,000.0: 10 × 100 / 60,000 = 0.016666666666(6) BTC.
        p.on_fill(i, Side::Bid, 600_000, 10, 3_333_334, false);
        assert_eq!((p.qty, p.cost), (10, 16_666_666_666));
        // Notional is contracts × contract size: 1,000 USD whatever the price.
        assert_eq!(i.notional_unit().to_f64(p.traded_notional), 1_000.0);
        // A partial close: 4 at 61,000.0 realizes 400 × (1/60,000 − 1/61,000) = 0.000109289617.
        p.on_fill(i, Side::Ask, 610_000, 4, 0, false);
        assert_eq!(
            (p.qty, p.cost, p.realized),
            (6, 10_000_000_000, 109_289_617)
        );
        // Through zero: 10 at 59,000.0 closes 6 (600 × (1/60,000 − 1/59,000) = −0.000169491525)
        // and opens a short of 4 at 59,000.0.
        p.on_fill(i, Side::Ask, 590_000, 10, 0, true);
        assert_eq!(p.realized, 109_289_617 - 169_491_525);
        assert_eq!((p.qty, p.cost), (-4, -6_779_661_016));
        // The short gains as the price falls: at 58,000, −400 × (1/59,000 − 1/58,000)
        // = +0.000116890707(6); against the cost basis as held (the entry value to 10^-12
        // BTC, 0.006779661016), 0.000116890708(1), rounded down.
        assert_eq!(p.unrealized(i, Fx::from_num(580_000)), 116_890_708);
        // Fees stay in coin.
        assert_eq!(p.fees, 3_333_334);
        assert_eq!(
            p.total_pnl(i, Fx::from_num(580_000)),
            109_289_617 - 169_491_525 + 116_890_708 - 3_333_334
        );
        assert_eq!(i.money_unit().format(p.realized), "-0.000060201908");
        assert_eq!(i.pnl_asset().as_str(), "BTC");
        // Closing the rest at the entry price realizes nothing more (to the unit).
        p.on_fill(i, Side::Bid, 590_000, 4, 0, false);
        assert_eq!(
            (p.qty, p.cost, p.realized),
            (0, 0, 109_289_617 - 169_491_525)
        );
    }

    #[test]
    fn spot_fees_in_the_asset_received_and_balances() {
        let i = &spot();
        assert_eq!(i.book_units_per_lot, 1_000);
        let mut p = Position::default();
        // Buy 0.002 BTC at 60,000.00: pay 120 USDT; the 10 bp fee is 0.000002 BTC (0.2 lot).
        p.on_fill(i, Side::Bid, 6_000_000, 200, 200_000, false);
        assert_eq!((p.qty, p.fees_base, p.fees), (200, 200_000, 0));
        assert_eq!(i.money_unit().format(p.cash), "-120");
        // Sell 0.001 BTC at 61,000.00: receive 61 USDT less a 0.061 USDT fee.
        p.on_fill(i, Side::Ask, 6_100_000, 100, 610_000, false);
        assert_eq!(i.money_unit().format(p.cash), "-59.061");
        assert_eq!(i.money_unit().format(p.realized), "1");
        assert_eq!(i.money_unit().format(p.fees), "0.061");
        // Base held: +0.001 BTC less the 0.000002 BTC fee: 99 whole lots can be sold.
        assert_eq!(p.base_change_lots(), 99);
        // The base fee valued at 61,000: 0.122 USDT.
        let fv = Fx::from_num(6_100_000);
        assert_eq!(i.money_unit().format(p.base_fees_value(fv)), "0.122");
        // 1 realized + 1 unrealized − 0.061 − 0.122.
        assert_eq!(i.money_unit().format(p.total_pnl(i, fv)), "1.817");
    }

    #[test]
    fn correction_values_the_venue_position_by_kind() {
        let i = &inverse();
        let mut p = Position::default();
        p.correct_to(i, -10, 600_000);
        assert_eq!((p.qty, p.cost, p.corrections), (-10, -16_666_666_666, 1));
        let i = &lin();
        let mut p = Position::default();
        p.correct_to(i, 3, 100);
        assert_eq!((p.qty, p.cost, p.correction_cost), (3, 300, 300));
    }

    /// The largest positions the config allows, on a low-priced inverse contract (a tick of
    /// 0.00001 USD, 10 USD contracts, price 0.1: a position's coin value near 2^94 units),
    /// neither overflow nor panic.
    #[test]
    fn extreme_inverse_positions_do_not_overflow() {
        let i = &Instrument::from_spec(&InstrumentSpec {
            symbol: "DOGEUSD_PERP",
            kind: InstrumentKind::Inverse,
            tick: "0.00001",
            lot: "1",
            min_qty: "1",
            min_notional: "0",
            contract_size: Some("10"),
            ..InstrumentSpec::default()
        })
        .unwrap();
        let big = (1i64 << 47) - 1;
        let mut p = Position::default();
        p.on_fill(i, Side::Bid, 10_000, big, 0, false);
        assert!(p.cost > 1i128 << 90);
        p.on_fill(i, Side::Ask, 12_000, big / 3, 0, false);
        p.on_fill(i, Side::Ask, 9_000, big, 0, true);
        assert!(p.qty < 0);
        let _ = p.total_pnl(i, Fx::from_num(11_000));
        // Long then flat at the same price: nothing realized beyond rounding.
        let mut q = Position::default();
        q.on_fill(i, Side::Bid, 10_000, big, 0, false);
        q.on_fill(i, Side::Ask, 10_000, big, 0, false);
        assert_eq!((q.qty, q.cost), (0, 0));
        assert!(q.realized.abs() <= 1, "{}", q.realized);
    }
}
