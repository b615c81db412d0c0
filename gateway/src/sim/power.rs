//! Power-law queue shares in fixed point.
//!
//! `x^p` with a fractional `p` is usually `exp(p·ln x)` in floating point, whose last bits depend
//! on the platform's libm. Backtests must give the same fills on every machine, so this is done in
//! [`Fx`] (I64F64) with only multiplications and square roots, which `fixed` computes exactly
//! (correctly truncated) everywhere: `x^p = x^⌊p⌋ · Π x^(2^-k)` over the set bits `k` of `p`'s
//! fraction, each `x^(2^-k)` a `k`-fold square root.

use engine::Fx;

/// Bits of the exponent's fraction honoured: `p` is used to within 2^-24.
const EXP_FRAC_BITS: u32 = 24;
/// Whole exponents above this are treated as this. It only bounds the work: queue models use
/// powers of a few units.
const MAX_WHOLE_EXP: i64 = 4096;

/// `r^p` for `r` in `[0, 1]` and `p ≥ 0` (negative `p` is taken as 0).
pub(crate) fn pow_unit(r: Fx, p: Fx) -> Fx {
    let p = p.max(Fx::ZERO);
    if r >= Fx::ONE || p == Fx::ZERO {
        return Fx::ONE;
    }
    if r <= Fx::ZERO {
        return Fx::ZERO;
    }
    let mut acc = Fx::ONE;
    let mut base = r;
    let mut e = p.int().to_num::<i64>().min(MAX_WHOLE_EXP);
    while e > 0 {
        if e & 1 == 1 {
            acc *= base;
        }
        base *= base;
        e >>= 1;
    }
    // I64F64: the fraction is the low 64 bits of the raw value.
    let frac = (p.frac().to_bits() as u128) & u128::from(u64::MAX);
    let mut root = r;
    for k in 1..=EXP_FRAC_BITS {
        // Bits 64-k and below of the fraction are still to come.
        if acc == Fx::ZERO || frac & ((1u128 << (65 - k)) - 1) == 0 {
            // Nothing left to multiply in.
            break;
        }
        root = root.sqrt();
        if (frac >> (64 - k)) & 1 == 1 {
            acc *= root;
        }
    }
    acc
}

/// Share of a level decrease taken from the queue ahead of an order:
/// `f(ahead) / (f(ahead) + f(behind))` with `f(x) = x^p`, in `[0, 1]`.
///
/// Computed through the ratio of the smaller to the larger side, which lies in `[0, 1]`, so
/// nothing overflows whatever the quantities.
pub(crate) fn share_ahead(ahead: Fx, behind: Fx, p: Fx) -> Fx {
    if ahead <= Fx::ZERO {
        return Fx::ZERO;
    }
    if behind <= Fx::ZERO {
        return Fx::ONE;
    }
    if ahead >= behind {
        let q = pow_unit(behind / ahead, p);
        Fx::ONE / (Fx::ONE + q)
    } else {
        let q = pow_unit(ahead / behind, p);
        q / (Fx::ONE + q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(v: f64) -> Fx {
        Fx::from_num(v)
    }

    fn close(a: Fx, b: f64, tol: f64) -> bool {
        (a.to_num::<f64>() - b).abs() <= tol
    }

    #[test]
    fn whole_powers_are_exact() {
        assert_eq!(pow_unit(fx(0.25), fx(2.0)), fx(0.0625));
        assert_eq!(pow_unit(fx(0.5), fx(3.0)), fx(0.125));
        assert_eq!(pow_unit(fx(0.5), Fx::ZERO), Fx::ONE);
        assert_eq!(pow_unit(Fx::ZERO, fx(2.0)), Fx::ZERO);
        assert_eq!(pow_unit(Fx::ONE, fx(7.5)), Fx::ONE);
    }

    #[test]
    fn fractional_powers_are_close_to_floats() {
        for &(r, p) in &[
            (0.25, 0.5),
            (0.3, 1.5),
            (0.9, 2.75),
            (0.01, 0.1),
            (0.6, 3.3),
        ] {
            let got = pow_unit(fx(r), fx(p));
            let want = f64::powf(r, p);
            assert!(close(got, want, 1e-6), "{r}^{p}: {got} vs {want}");
        }
    }

    #[test]
    fn shares_follow_the_power_law() {
        // Linear: proportional to position.
        assert!(close(share_ahead(fx(3.0), fx(1.0), Fx::ONE), 0.75, 1e-12));
        assert!(close(share_ahead(fx(1.0), fx(3.0), Fx::ONE), 0.25, 1e-12));
        // Square: 9 / (9 + 1).
        assert!(close(share_ahead(fx(3.0), fx(1.0), fx(2.0)), 0.9, 1e-12));
        assert_eq!(share_ahead(Fx::ZERO, fx(5.0), fx(2.0)), Fx::ZERO);
        assert_eq!(share_ahead(fx(5.0), Fx::ZERO, fx(2.0)), Fx::ONE);
        // Huge quantities do not overflow.
        let s = share_ahead(fx(1e15), fx(1.0), fx(3.0));
        assert!(s <= Fx::ONE && close(s, 1.0, 1e-12));
    }
}
