//! Fee models.

use super::FeeModel;
use engine::{Fx, InstrumentConfig, InstrumentId};

/// Fees in basis points of the fill's notional, one rate for makers and one for takers.
///
/// The notional is `price × qty` in units of one tick × one lot, and so is the fee:
/// `fee = ⌈price × qty × bps / 10_000⌉`, computed exactly in integers (`bps` is an I64F64, so
/// `price × qty × bps.to_bits() / (10_000 × 2^64)` with an `i128` product) and rounded **up**,
/// towards +∞, whatever the sign: a fee is never smaller and a rebate (negative `maker_bps`)
/// never larger than the exact amount, so rounding never flatters a backtest. A product beyond
/// `i128` (not reachable with real prices and `|bps| ≤ 100`) saturates to `i64::MAX` /
/// `i64::MIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpsFees {
    /// Maker rate, bps; negative is a rebate.
    pub maker_bps: Fx,
    /// Taker rate, bps.
    pub taker_bps: Fx,
}

impl BpsFees {
    /// Maker and taker rates in bps.
    pub fn new(maker_bps: Fx, taker_bps: Fx) -> BpsFees {
        BpsFees {
            maker_bps,
            taker_bps,
        }
    }

    /// The rates of an instrument's config (`fees.maker_bps`, `fees.taker_bps`).
    pub fn from_config(cfg: &InstrumentConfig) -> BpsFees {
        BpsFees::new(cfg.maker_fee_bps, cfg.taker_fee_bps)
    }

    /// Fee of `qty` lots at `price` ticks at the rate `bps`, tick·lot units, rounded up.
    pub fn fee_at(bps: Fx, price: i64, qty: i64) -> i64 {
        const BPS_PER_UNIT: i128 = 10_000;
        let notional = price as i128 * qty as i128;
        let Some(num) = notional.checked_mul(bps.to_bits()) else {
            let negative = (notional < 0) != (bps < Fx::ZERO);
            return if negative { i64::MIN } else { i64::MAX };
        };
        // 10_000 × 2^64 < 2^78: fits.
        let den = BPS_PER_UNIT << 64;
        let fee = num.div_euclid(den) + i128::from(num.rem_euclid(den) != 0);
        fee.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

impl FeeModel for BpsFees {
    #[inline]
    fn fee(&self, _instrument: InstrumentId, price: i64, qty: i64, taker: bool) -> i64 {
        BpsFees::fee_at(
            if taker {
                self.taker_bps
            } else {
                self.maker_bps
            },
            price,
            qty,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bps(v: f64) -> Fx {
        Fx::from_num(v)
    }

    #[test]
    fn maker_and_taker_rates_on_notional() {
        let f = BpsFees::new(bps(2.0), bps(5.0));
        // 600,000 ticks × 10 lots = 6,000,000; 2 bps = 1,200; 5 bps = 3,000.
        assert_eq!(f.fee(0, 600_000, 10, false), 1_200);
        assert_eq!(f.fee(0, 600_000, 10, true), 3_000);
    }

    #[test]
    fn negative_maker_fee_is_a_rebate_rounded_towards_plus_infinity() {
        let f = BpsFees::new(bps(-0.5), bps(4.5));
        assert_eq!(f.fee(0, 600_000, 10, false), -300);
        // 12,345 × 3 = 37,035; × -0.5 / 10,000 = -1.85175 → -1 (the rebate is not overstated).
        assert_eq!(f.fee(0, 12_345, 3, false), -1);
        // × 4.5 / 10,000 = 16.66575 → 17 (the fee is not understated).
        assert_eq!(f.fee(0, 12_345, 3, true), 17);
        assert_eq!(f.fee(0, 12_345, 0, true), 0);
    }

    #[test]
    fn rounding_is_exact_for_binary_inexact_rates() {
        // 0.1 bps is not exact in binary; the I64F64 value is just below or above it, and the
        // result is whatever the exact product of that value rounds up to, every time.
        let f = BpsFees::new(bps(0.1), bps(0.1));
        let a = f.fee(0, 1_000_000, 1_000, false);
        assert!(a == 10_000 || a == 10_001, "{a}");
        assert_eq!(a, f.fee(0, 1_000_000, 1_000, true));
        assert_eq!(BpsFees::fee_at(bps(1.0), i64::MAX, i64::MAX), i64::MAX);
    }
}
