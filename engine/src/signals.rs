//! Deterministic estimators for adaptive spreads: realized volatility, order-flow toxicity, the
//! order-arrival intensity, and the closed-form quotes of Avellaneda–Stoikov and
//! Guéant–Lehalle–Fernandez-Tapia (GLFT) that consume them.
//!
//! *Why fixed point:* the engine must replay a recording to the same bits on every machine, so
//! nothing here touches a float; every transcendental is an integer algorithm on [`Fx`]
//! (`I64F64`: 64 integer bits, 64 fraction bits, resolution 2⁻⁶⁴ ≈ 5.4·10⁻²⁰).
//!
//! *Why no panics:* these run on the event path on data from the venue. Every operation that can
//! overflow saturates, every division checks its divisor, non-positive sizes and prices are
//! ignored, and time that goes backwards is treated as no time passing (the clock never moves
//! back inside an estimator).
//!
//! *Why no allocation:* every buffer is an inline array sized by a constant, so an estimator is
//! built once and then only mutated in place.
//!
//! Time is event time in nanoseconds (`i64`); half-lives are in nanoseconds and clamped to at
//! least 1 ns.

use crate::config::Fx;

// ---------------------------------------------------------------------------------------------
// Fixed-point math
// ---------------------------------------------------------------------------------------------

/// ln 2.
const LN_2: Fx = Fx::LN_2;
/// log₂ e.
const LOG2_E: Fx = Fx::LOG2_E;
/// One.
const ONE: Fx = Fx::ONE;
/// Basis points in one.
const BPS: i128 = 10_000;
/// Nanoseconds in a second.
const NS_PER_S: i128 = 1_000_000_000;

/// 2^(j/16) for j = 0..16: the table step of [`fx_pow2`] (50-digit decimals, rounded to the
/// nearest 2⁻⁶⁴ by `Fx::lit` at compile time).
const POW2_SIXTEENTHS: [Fx; 16] = [
    Fx::lit("1"),
    Fx::lit("1.0442737824274138403219664787399290087846031296627"),
    Fx::lit("1.0905077326652576592070106557607079789927027185401"),
    Fx::lit("1.1387886347566916537038302838415112547202431062672"),
    Fx::lit("1.1892071150027210667174999705604759152929720924638"),
    Fx::lit("1.2418578120734840485936774687265956055110409951323"),
    Fx::lit("1.2968395546510096659337541177924511598353451494250"),
    Fx::lit("1.3542555469368927282980147401407028043432613858890"),
    Fx::lit("1.4142135623730950488016887242096980785696718753769"),
    Fx::lit("1.4768261459394993113869074803740499239236369921860"),
    Fx::lit("1.5422108254079408236122918620907348413068132616921"),
    Fx::lit("1.6104903319492543081795206673574005834594382515980"),
    Fx::lit("1.6817928305074290860622509524664297900800685247136"),
    Fx::lit("1.7562521603732994831121606193753132212943493552489"),
    Fx::lit("1.8340080864093424634870831895882888560773103328737"),
    Fx::lit("1.9152065613971472938726112702958308878502764131114"),
];

/// ln(1 + j/16) for j = 0..16: the table step of [`fx_ln`].
const LN_SIXTEENTHS: [Fx; 16] = [
    Fx::ZERO,
    Fx::lit("0.060624621816434842580606132040420263286202475144724"),
    Fx::lit("0.11778303565638345453879410947052170506848071256473"),
    Fx::lit("0.17185025692665922234009894605514726493537872385811"),
    Fx::lit("0.22314355131420975576629509030983450337460108554801"),
    Fx::lit("0.27193371548364175883166949453299916198257474996359"),
    Fx::lit("0.31845373111853461581024721359059959559520645085665"),
    Fx::lit("0.36290549368936845313782434597748984614037977739941"),
    Fx::lit("0.40546510810816438197801311546434913657199042346249"),
    Fx::lit("0.44628710262841951153259018061966900674920217109601"),
    Fx::lit("0.48550781578170080780179107719078890057876754167944"),
    Fx::lit("0.52324814376454783651680722493487084164047113602723"),
    Fx::lit("0.55961578793542268627088850052682659348608446086135"),
    Fx::lit("0.59470710774669278951434354652920533319251237648172"),
    Fx::lit("0.62860865942237413774430820577418363994659150901050"),
    Fx::lit("0.66139848224536500826023583870965093814793839303957"),
];

/// 1/k! for k = 0..=9: the Taylor coefficients of eᵗ used on t ∈ [0, ln2/16).
const EXP_TAYLOR: [Fx; 10] = [
    Fx::ONE,
    Fx::ONE,
    Fx::lit("0.5"),
    Fx::lit("0.16666666666666666666666666666666666666666666666667"),
    Fx::lit("0.041666666666666666666666666666666666666666666666667"),
    Fx::lit("0.0083333333333333333333333333333333333333333333333333"),
    Fx::lit("0.0013888888888888888888888888888888888888888888888889"),
    Fx::lit("0.00019841269841269841269841269841269841269841269841270"),
    Fx::lit("0.000024801587301587301587301587301587301587301587301587"),
    Fx::lit("0.0000027557319223985890652557319223985890652557319223986"),
];

/// 2/(2k+1) for k = 0..=5: ln y = 2·atanh(s) = Σ 2·s^(2k+1)/(2k+1), s = (y−1)/(y+1).
const ATANH_SERIES: [Fx; 6] = [
    Fx::const_from_int(2),
    Fx::lit("0.66666666666666666666666666666666666666666666666667"),
    Fx::lit("0.4"),
    Fx::lit("0.28571428571428571428571428571428571428571428571429"),
    Fx::lit("0.22222222222222222222222222222222222222222222222222"),
    Fx::lit("0.18181818181818181818181818181818181818181818181818"),
];

/// `a / b` that never panics: a zero divisor gives `0` for `0 / 0` and saturates to
/// `Fx::MAX` / `Fx::MIN` by the sign of `a` otherwise; an overflowing quotient saturates.
#[inline]
pub(crate) fn fx_div(a: Fx, b: Fx) -> Fx {
    if b == Fx::ZERO {
        if a > Fx::ZERO {
            Fx::MAX
        } else if a < Fx::ZERO {
            Fx::MIN
        } else {
            Fx::ZERO
        }
    } else {
        a.saturating_div(b)
    }
}

/// `dt / h` as a fixed-point number, for a time `dt ≥ 0` and a half-life `h ≥ 1` (both ns;
/// a negative `dt` counts as 0, a half-life below 1 as 1). Exact to 2⁻⁶⁴ (integer division
/// of `dt · 2⁶⁴`, which fits an `i128` for every `dt < 2⁶³`).
#[inline]
fn ns_ratio(dt: i64, h: i64) -> Fx {
    let dt = i128::from(dt.max(0));
    let h = i128::from(h.max(1));
    Fx::from_bits((dt << 64) / h)
}

/// The decay over `dt` ns of a quantity with half-life `h` ns: `2^(−dt/h)` (1 for `dt ≤ 0`).
#[inline]
fn decay(dt: i64, h: i64) -> Fx {
    fx_pow2_neg(ns_ratio(dt, h))
}

/// 2^y for any y, saturating: `Fx::MAX` for y ≥ 63, 0 for y ≤ −65.
///
/// *Formula:* y = n + j/16 + r with n = ⌊y⌋, j ∈ 0..16 the top four fraction bits and
/// r ∈ [0, 1/16); 2^y = 2ⁿ · 2^(j/16) · e^(r·ln2): a shift, a table entry and a degree-9 Taylor
/// polynomial on t = r·ln2 < 0.0434 (truncation error t¹⁰/10! < 10⁻²⁰, below the resolution).
/// The right shift rounds to nearest. Relative error ≈ 10⁻¹⁸ where the result is well above the
/// resolution.
///
/// *Why:* time decay (`2^(−Δt/h)`) and `exp` both reduce to it, and a shift plus a small
/// polynomial is exact integer arithmetic: the same bits everywhere.
pub(crate) fn fx_pow2(y: Fx) -> Fx {
    if y >= Fx::const_from_int(63) {
        return Fx::MAX;
    }
    if y <= Fx::const_from_int(-65) {
        return Fx::ZERO;
    }
    // In range: the floor is in [-65, 62] and fits an i32.
    let n: i32 = y.floor().to_num();
    // Two's complement: the low 64 bits are y − ⌊y⌋ for either sign.
    let frac = y.to_bits() & ((1i128 << 64) - 1);
    let j = (frac >> 60) as usize;
    let r = Fx::from_bits(frac & ((1i128 << 60) - 1));
    let t = r * LN_2;
    let mut p = EXP_TAYLOR[EXP_TAYLOR.len() - 1];
    for &c in EXP_TAYLOR[..EXP_TAYLOR.len() - 1].iter().rev() {
        p = p * t + c;
    }
    // m ∈ [1, 2): its bits are in [2⁶⁴, 2⁶⁵).
    let bits = (POW2_SIXTEENTHS[j] * p).to_bits();
    if n >= 0 {
        let n = n as u32;
        if bits > (i128::MAX >> n) {
            Fx::MAX
        } else {
            Fx::from_bits(bits << n)
        }
    } else {
        let s = n.unsigned_abs(); // 1..=65
        Fx::from_bits((bits + (1i128 << (s - 1))) >> s)
    }
}

/// 2^(−x) for x ≥ 0, in (0, 1]; x ≤ 0 gives 1 (no decay). Saturates to 0 for x ≥ 65.
///
/// *Formula:* [`fx_pow2`] of −x: the integer part of x is a right shift, the fraction a table
/// step and a polynomial. Absolute error ≤ 2⁻⁶⁴ plus a relative 10⁻¹⁸.
///
/// *Why:* the time-decay factor of every estimator here, `2^(−Δt/half_life)`; clamping a
/// negative argument to "no decay" is what makes time running backwards harmless.
#[inline]
pub(crate) fn fx_pow2_neg(x: Fx) -> Fx {
    if x <= Fx::ZERO {
        ONE
    } else {
        fx_pow2(-x)
    }
}

/// eˣ, saturating: `Fx::MAX` for x ≥ ≈43.67 (e⁴³·⁶⁷ ≈ 2⁶³), 0 below ≈ −45.
///
/// *Formula:* eˣ = 2^(x·log₂e), by [`fx_pow2`]. Relative error ≈ 10⁻¹⁸·(1 + |x|) where the
/// result is well above the resolution 2⁻⁶⁴.
///
/// *Why:* the intensity fit's A = e^(intercept), GLFT's (1 + ξΔ/κ)^(κ/(ξΔ)+1), both
/// deterministic.
#[inline]
pub(crate) fn fx_exp(x: Fx) -> Fx {
    fx_pow2(x.saturating_mul(LOG2_E))
}

/// Natural logarithm; x ≤ 0 gives `Fx::MIN` (−∞ saturated).
///
/// *Formula:* x = 2ⁿ·m with n = ⌊log₂x⌋ (the position of the top bit) and m ∈ [1, 2);
/// m = (1 + j/16)·y with j the top four fraction bits of m and y ∈ [1, 1.0625);
/// ln x = n·ln2 + ln(1 + j/16) + 2·atanh(s), s = (y − 1)/(y + 1) < 0.031, atanh by its odd
/// series to s¹¹ (truncation < 10⁻²⁰). Absolute error ≈ 10⁻¹⁸ over the whole range
/// [2⁻⁶⁴, 2⁶³).
///
/// *Why:* the intensity fit regresses ln(rate) on distance; GLFT needs ln(1 + ξΔ/κ).
pub(crate) fn fx_ln(x: Fx) -> Fx {
    if x <= Fx::ZERO {
        return Fx::MIN;
    }
    // x > 0: n ∈ [−64, 62].
    let n = x.int_log2();
    let bits = x.to_bits();
    let m_bits = if n >= 0 {
        bits >> n.unsigned_abs()
    } else {
        bits << n.unsigned_abs()
    };
    let j = ((m_bits >> 60) & 0xF) as usize;
    let c = Fx::from_bits((16 + j as i128) << 60);
    let y = Fx::from_bits(m_bits) / c;
    let s = (y - ONE) / (y + ONE);
    let s2 = s * s;
    let mut p = ATANH_SERIES[ATANH_SERIES.len() - 1];
    for &k in ATANH_SERIES[..ATANH_SERIES.len() - 1].iter().rev() {
        p = p * s2 + k;
    }
    LN_2 * i128::from(n) + LN_SIXTEENTHS[j] + s * p
}

/// √x; x ≤ 0 gives 0.
///
/// *Formula:* the `fixed` crate's own `sqrt` (1.31, in `Cargo.lock`): a bit-by-bit integer
/// square root, truncated to the resolution 2⁻⁶⁴, exact otherwise. It cannot overflow for
/// `I64F64` (√(2⁶³) ≈ 3·10⁹).
///
/// *Why:* σ from a variance rate, GLFT's c₂.
#[inline]
pub(crate) fn fx_sqrt(x: Fx) -> Fx {
    if x <= Fx::ZERO {
        Fx::ZERO
    } else {
        x.checked_sqrt().unwrap_or(Fx::ZERO)
    }
}

/// Converts a quantity in basis points of the price into ticks at the price `mid_ticks`:
/// `x_bps · mid / 10 000`, saturating.
///
/// *Why:* [`VolEstimator`] reports σ in bps per √s (comparable across instruments); GLFT and
/// Avellaneda–Stoikov want σ in ticks per √s.
#[inline]
pub(crate) fn bps_to_ticks(x_bps: Fx, mid_ticks: Fx) -> Fx {
    x_bps.saturating_mul(mid_ticks) / BPS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small deterministic generator (Knuth's MMIX LCG): reproducible inputs without a seed
    /// file.
    pub(super) struct Lcg(u64);

    impl Lcg {
        pub(super) fn new(seed: u64) -> Self {
            Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
        }
        pub(super) fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0
        }
        /// Uniform in (0, 1).
        pub(super) fn unit(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        /// Standard normal (Box–Muller).
        pub(super) fn normal(&mut self) -> f64 {
            let (u, v) = (self.unit(), self.unit());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    pub(super) fn f(x: Fx) -> f64 {
        x.to_num::<f64>()
    }

    pub(super) fn fx(x: f64) -> Fx {
        Fx::from_num(x)
    }

    #[test]
    fn tables_match_f64() {
        for (j, t) in POW2_SIXTEENTHS.iter().enumerate() {
            assert!((f(*t) - 2f64.powf(j as f64 / 16.0)).abs() < 1e-15, "{j}");
        }
        for (j, t) in LN_SIXTEENTHS.iter().enumerate() {
            assert!((f(*t) - (1.0 + j as f64 / 16.0).ln()).abs() < 1e-15, "{j}");
        }
        let mut fact = 1.0;
        for (k, c) in EXP_TAYLOR.iter().enumerate() {
            if k > 0 {
                fact *= k as f64;
            }
            assert!((f(*c) - 1.0 / fact).abs() < 1e-17, "{k}");
        }
        for (k, c) in ATANH_SERIES.iter().enumerate() {
            assert!((f(*c) - 2.0 / (2 * k + 1) as f64).abs() < 1e-16, "{k}");
        }
    }

    /// 2^y against f64 over [−65, 63]: |err| ≤ 1e−15·2^y + 1e−19.
    #[test]
    fn pow2_matches_f64() {
        let mut rng = Lcg::new(1);
        for i in 0..20_000 {
            let y = if i < 10_000 {
                -65.0 + 128.0 * i as f64 / 10_000.0
            } else {
                -65.0 + 128.0 * rng.unit()
            };
            let got = f(fx_pow2(fx(y)));
            let want = 2f64.powf(f(fx(y)));
            if want >= 9.2e18 {
                continue;
            }
            assert!(
                (got - want).abs() <= 1e-15 * want + 1e-19,
                "2^{y}: {got} vs {want}"
            );
        }
        assert_eq!(fx_pow2(Fx::from_num(63)), Fx::MAX);
        assert_eq!(fx_pow2(Fx::MAX), Fx::MAX);
        assert_eq!(fx_pow2(Fx::MIN), Fx::ZERO);
        assert_eq!(fx_pow2(Fx::ZERO), ONE);
        for n in -64..63 {
            let want = Fx::from_bits(1i128 << (64 + n));
            assert_eq!(fx_pow2(Fx::from_num(n)), want, "2^{n} is exact");
        }
    }

    /// 2^(−x) against f64 over [0, 70]: |err| ≤ 1e−15·2^(−x) + 1e−19, and 1 for x ≤ 0.
    #[test]
    fn pow2_neg_matches_f64() {
        let mut rng = Lcg::new(2);
        for i in 0..20_000 {
            let x = if i < 10_000 {
                70.0 * i as f64 / 10_000.0
            } else {
                70.0 * rng.unit()
            };
            let got = f(fx_pow2_neg(fx(x)));
            let want = 2f64.powf(-f(fx(x)));
            assert!(
                (got - want).abs() <= 1e-15 * want + 1e-19,
                "2^-{x}: {got} vs {want}"
            );
            assert!(got <= 1.0);
        }
        assert_eq!(fx_pow2_neg(Fx::ZERO), ONE);
        assert_eq!(fx_pow2_neg(-ONE), ONE);
        assert_eq!(fx_pow2_neg(Fx::MIN), ONE);
        assert_eq!(fx_pow2_neg(Fx::MAX), Fx::ZERO);
        assert_eq!(fx_pow2_neg(ONE), Fx::lit("0.5"));
    }

    /// eˣ against f64 over [−46, 43.6]: |err| ≤ 1e−14·eˣ + 1e−19.
    #[test]
    fn exp_matches_f64() {
        let mut rng = Lcg::new(3);
        for i in 0..20_000 {
            let x = if i < 10_000 {
                -46.0 + 89.6 * i as f64 / 10_000.0
            } else {
                -46.0 + 89.6 * rng.unit()
            };
            let got = f(fx_exp(fx(x)));
            let want = f(fx(x)).exp();
            assert!(
                (got - want).abs() <= 1e-14 * want + 1e-19,
                "e^{x}: {got} vs {want}"
            );
        }
        assert_eq!(fx_exp(Fx::ZERO), ONE);
        assert_eq!(fx_exp(Fx::from_num(44)), Fx::MAX);
        assert_eq!(fx_exp(Fx::MAX), Fx::MAX);
        assert_eq!(fx_exp(Fx::MIN), Fx::ZERO);
        assert!((f(fx_exp(ONE)) - std::f64::consts::E).abs() < 1e-15);
    }

    /// ln x against f64 over [2⁻⁶⁴, 2⁶³): |err| ≤ 1e−14 (absolute).
    #[test]
    fn ln_matches_f64() {
        let mut rng = Lcg::new(4);
        for i in 0..20_000 {
            // log2 x uniform over (−64, 63).
            let e = if i < 10_000 {
                -64.0 + 127.0 * i as f64 / 10_000.0
            } else {
                -64.0 + 127.0 * rng.unit()
            };
            let x = Fx::saturating_from_num(2f64.powf(e)).max(Fx::DELTA);
            let got = f(fx_ln(x));
            let want = f(x).ln();
            assert!((got - want).abs() <= 1e-14, "ln {x}: {got} vs {want}");
        }
        assert_eq!(fx_ln(ONE), Fx::ZERO);
        assert_eq!(fx_ln(Fx::ZERO), Fx::MIN);
        assert_eq!(fx_ln(-ONE), Fx::MIN);
        assert_eq!(fx_ln(Fx::MIN), Fx::MIN);
        assert!((f(fx_ln(Fx::DELTA)) + 64.0 * std::f64::consts::LN_2).abs() < 1e-15);
        assert!((f(fx_ln(Fx::MAX)) - 63.0 * std::f64::consts::LN_2).abs() < 1e-15);
        assert!((f(fx_ln(fx_exp(Fx::from_num(7)))) - 7.0).abs() < 1e-15);
    }

    /// √x against f64 over [2⁻⁶⁴, 2⁶³): |err| ≤ 1e−15·√x + 1e−19.
    #[test]
    fn sqrt_matches_f64() {
        let mut rng = Lcg::new(5);
        for i in 0..20_000 {
            let e = if i < 10_000 {
                -64.0 + 127.0 * i as f64 / 10_000.0
            } else {
                -64.0 + 127.0 * rng.unit()
            };
            let x = Fx::saturating_from_num(2f64.powf(e)).max(Fx::DELTA);
            let got = f(fx_sqrt(x));
            let want = f(x).sqrt();
            assert!(
                (got - want).abs() <= 1e-15 * want + 1e-19,
                "sqrt {x}: {got} vs {want}"
            );
        }
        assert_eq!(fx_sqrt(Fx::ZERO), Fx::ZERO);
        assert_eq!(fx_sqrt(-ONE), Fx::ZERO);
        assert_eq!(fx_sqrt(Fx::MIN), Fx::ZERO);
        assert_eq!(fx_sqrt(Fx::from_num(4)), Fx::from_num(2));
    }

    #[test]
    fn div_never_panics() {
        assert_eq!(fx_div(ONE, Fx::ZERO), Fx::MAX);
        assert_eq!(fx_div(-ONE, Fx::ZERO), Fx::MIN);
        assert_eq!(fx_div(Fx::ZERO, Fx::ZERO), Fx::ZERO);
        assert_eq!(fx_div(Fx::MAX, Fx::DELTA), Fx::MAX);
        assert_eq!(fx_div(Fx::MIN, -ONE), Fx::MAX);
        assert_eq!(fx_div(Fx::from_num(3), Fx::from_num(2)), Fx::lit("1.5"));
    }

    #[test]
    fn ns_ratio_is_exact_and_total() {
        assert_eq!(ns_ratio(3, 2), Fx::lit("1.5"));
        assert_eq!(ns_ratio(-5, 2), Fx::ZERO);
        assert_eq!(ns_ratio(5, 0), Fx::from_num(5));
        assert_eq!(ns_ratio(i64::MAX, 1), Fx::from_num(i64::MAX));
        assert_eq!(decay(i64::MAX, 1), Fx::ZERO);
        assert_eq!(decay(10, 10), Fx::lit("0.5"));
    }

    proptest! {
        #[test]
        fn math_helpers_never_panic_and_stay_in_range(bits in any::<i128>(), small in -70i64..70, frac in any::<u64>()) {
            let x = Fx::from_bits(bits);
            let y = Fx::from_num(small) + Fx::from_bits(i128::from(frac));
            for v in [x, y] {
                prop_assert!(fx_pow2(v) >= Fx::ZERO);
                let d = fx_pow2_neg(v);
                prop_assert!(d >= Fx::ZERO && d <= ONE);
                prop_assert!(fx_exp(v) >= Fx::ZERO);
                let _ = fx_ln(v);
                prop_assert!(fx_sqrt(v) >= Fx::ZERO);
                let _ = fx_div(v, x);
                let _ = bps_to_ticks(v, x);
            }
        }

        #[test]
        fn pow2_is_monotonic(a in -66i64..64, fa in any::<u64>(), fb in any::<u64>()) {
            let x = Fx::from_num(a) + Fx::from_bits(i128::from(fa));
            let y = x.saturating_add(Fx::from_bits(i128::from(fb >> 8)));
            // Monotonic up to the last bits of rounding.
            let (px, py) = (fx_pow2(x), fx_pow2(y));
            prop_assert!(px <= py.saturating_add(py / (1i128 << 50)).saturating_add(Fx::DELTA * 2));
        }
    }
}
