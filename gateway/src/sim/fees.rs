//! Fee models.

use super::FeeModel;
use engine::{Fx, Instrument, InstrumentConfig, InstrumentId, InstrumentKind, Side};

/// Fees in basis points of the fill's notional, one rate for makers and one for takers, in the
/// asset the venue charges:
///
/// - linear: the quote asset, `⌈price × qty × bps / 10_000⌉` tick·lot units;
/// - inverse: the base coin, `⌈value × bps / 10_000⌉` in 10^-12 coin, where `value = qty ×
///   contract_size / price` ([`Instrument::value`]);
/// - spot: a buy's fee in the base asset received, `⌈qty × bps / 10_000⌉` in units of 10^-6
///   lot ([`engine::SPOT_BASE_FEE_UNITS_PER_LOT`]); a sell's in the quote asset, as linear.
///
/// Computed exactly in integers (`bps` is an I64F64, so `amount × bps.to_bits() / (10_000 ×
/// 2^64)` with an `i128` product) and rounded **up**, towards +∞, whatever the sign: a fee is never
/// smaller and a rebate (negative `maker_bps`) never larger than the exact amount, so rounding
/// never flatters a backtest. A product beyond `i128` (not reachable with real prices and
/// `|bps| ≤ 100`) saturates to `i64::MAX` / `i64::MIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpsFees {
    /// Per instrument id, or one entry for every instrument.
    rates: Vec<Rate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    /// `None`: linear, price × qty (rates not tied to an instrument).
    instrument: Option<Instrument>,
    maker_bps: Fx,
    taker_bps: Fx,
}

impl BpsFees {
    /// One maker and one taker rate for every instrument, on `price × qty` (linear).
    pub fn new(maker_bps: Fx, taker_bps: Fx) -> BpsFees {
        BpsFees {
            rates: vec![Rate {
                instrument: None,
                maker_bps,
                taker_bps,
            }],
        }
    }

    /// The rates of an instrument's config (`fees.maker_bps`, `fees.taker_bps`) for every
    /// instrument id.
    pub fn from_config(cfg: &InstrumentConfig) -> BpsFees {
        BpsFees::from_configs(std::slice::from_ref(cfg))
    }

    /// Each instrument's own rates and kind, by instrument id.
    pub fn from_configs(cfgs: &[InstrumentConfig]) -> BpsFees {
        BpsFees {
            rates: cfgs
                .iter()
                .map(|c| Rate {
                    instrument: Some(c.instrument),
                    maker_bps: c.maker_fee_bps,
                    taker_bps: c.taker_fee_bps,
                })
                .collect(),
        }
    }

    /// Fee of `qty` lots at `price` ticks at the rate `bps`, tick·lot units, rounded up.
    pub fn fee_at(bps: Fx, price: i64, qty: i64) -> i64 {
        Self::share(bps, price as i128 * qty as i128)
    }

    /// `⌈amount × bps / 10_000⌉`, saturating.
    pub fn share(bps: Fx, amount: i128) -> i64 {
        const BPS_PER_UNIT: i128 = 10_000;
        let Some(num) = amount.checked_mul(bps.to_bits()) else {
            let negative = (amount < 0) != (bps < Fx::ZERO);
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
    fn fee(&self, instrument: InstrumentId, side: Side, price: i64, qty: i64, taker: bool) -> i64 {
        let r = match self.rates.get(instrument as usize) {
            Some(r) => r,
            // One rate for all (or an id past the config: the first instrument's rates).
            None => &self.rates[0],
        };
        let bps = if taker { r.taker_bps } else { r.maker_bps };
        let Some(inst) = r.instrument else {
            return BpsFees::fee_at(bps, price, qty);
        };
        match inst.kind {
            InstrumentKind::Linear => BpsFees::fee_at(bps, price, qty),
            InstrumentKind::Inverse => BpsFees::share(bps, inst.value(price, qty)),
            InstrumentKind::Spot if side == Side::Bid => BpsFees::share(
                bps,
                qty as i128 * engine::SPOT_BASE_FEE_UNITS_PER_LOT as i128,
            ),
            InstrumentKind::Spot => BpsFees::fee_at(bps, price, qty),
        }
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
        assert_eq!(f.fee(0, Side::Ask, 600_000, 10, false), 1_200);
        assert_eq!(f.fee(0, Side::Ask, 600_000, 10, true), 3_000);
    }

    #[test]
    fn negative_maker_fee_is_a_rebate_rounded_towards_plus_infinity() {
        let f = BpsFees::new(bps(-0.5), bps(4.5));
        assert_eq!(f.fee(0, Side::Ask, 600_000, 10, false), -300);
        // 12,345 × 3 = 37,035; × -0.5 / 10,000 = -1.85175 → -1 (the rebate is not overstated).
        assert_eq!(f.fee(0, Side::Ask, 12_345, 3, false), -1);
        // × 4.5 / 10,000 = 16.66575 → 17 (the fee is not understated).
        assert_eq!(f.fee(0, Side::Ask, 12_345, 3, true), 17);
        assert_eq!(f.fee(0, Side::Ask, 12_345, 0, true), 0);
    }

    #[test]
    fn rounding_is_exact_for_binary_inexact_rates() {
        // 0.1 bps is not exact in binary; the I64F64 value is just below or above it, and the
        // result is whatever the exact product of that value rounds up to, every time.
        let f = BpsFees::new(bps(0.1), bps(0.1));
        let a = f.fee(0, Side::Ask, 1_000_000, 1_000, false);
        assert!(a == 10_000 || a == 10_001, "{a}");
        assert_eq!(a, f.fee(0, Side::Ask, 1_000_000, 1_000, true));
        assert_eq!(BpsFees::fee_at(bps(1.0), i64::MAX, i64::MAX), i64::MAX);
    }

    fn config(text: &str) -> engine::Config {
        engine::Config::from_toml(text).unwrap()
    }

    fn shipped(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../configs/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    }

    /// COIN-M: 10 contracts (1,000 USD) at 60,000.0 are 0.016666666666 BTC; 2 bps of that is
    /// 0.0000033333333332 BTC, charged in BTC (10^-12 units, rounded up).
    #[test]
    fn inverse_fees_are_in_coin() {
        let cfg = config(&shipped("coinm-btcusd-perp.toml"));
        let f = BpsFees::from_configs(&cfg.instruments);
        assert_eq!(f.fee(0, Side::Bid, 600_000, 10, false), 3_333_334);
        // Taker 5 bps: 0.0000083333333330 BTC.
        assert_eq!(f.fee(0, Side::Ask, 600_000, 10, true), 8_333_334);
        // The same USD notional costs less BTC at a higher price.
        assert!(f.fee(0, Side::Bid, 1_200_000, 10, false) < 3_333_334);
    }

    /// Spot: a buy's fee in the base asset received (10^-6 lot units), a sell's in the quote.
    #[test]
    fn spot_buys_pay_in_base_and_sells_in_quote() {
        let cfg = config(&shipped("spot-btcusdt.toml"));
        let f = BpsFees::from_configs(&cfg.instruments);
        // 200 lots (0.002 BTC) at 10 bps: 0.2 lot = 200,000 units, whatever the price.
        assert_eq!(f.fee(0, Side::Bid, 6_000_000, 200, false), 200_000);
        assert_eq!(f.fee(0, Side::Bid, 1, 200, false), 200_000);
        // Selling 0.002 BTC at 60,000.00: 120 USDT × 10 bps = 0.12 USDT = 1,200,000 tick·lots.
        assert_eq!(f.fee(0, Side::Ask, 6_000_000, 200, false), 1_200_000);
    }

    /// Per instrument: each id gets its own rates and kind.
    #[test]
    fn each_instrument_its_own_rates() {
        let mut cfgs = config(&shipped("spot-btcusdt.toml")).instruments;
        cfgs.extend(config(&shipped("default.toml")).instruments);
        let f = BpsFees::from_configs(&cfgs);
        // Instrument 1 is USD-M BTCUSDT (0.10 / 0.001), 2 bps maker, linear: quote on buys too.
        assert_eq!(f.fee(1, Side::Bid, 600_000, 10, false), 1_200);
        assert_eq!(f.fee(0, Side::Bid, 600_000, 10, false), 10_000);
    }
}
