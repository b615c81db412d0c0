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

/// `a / b` on the fast path: the divisor is cut to its top 64 bits, so the quotient is one
/// 128-by-64-bit integer division instead of the 256-by-128 long division of the exact
/// quotient. Relative error ≤ 2⁻⁶² beyond the final truncation, and the same bits as
/// [`fx_div`] when |b| < 1 (its bits fit 64 bits); deterministic like every other integer
/// operation. Falls back to the exact [`fx_div`] where the shifted dividend would not fit
/// (quotients of 2⁶⁴ and more relative to the divisor's scale) and for b = 0; saturates like
/// it.
///
/// *Why:* the per-event paths (a return per mid change, the logarithm of the intensity fit)
/// divide, and the exact quotient costs several times the rest of the update; 19 significant
/// digits are far more than a statistic needs.
#[inline]
pub(crate) fn fx_div_fast(a: Fx, b: Fx) -> Fx {
    if b == Fx::ZERO {
        return fx_div(a, b);
    }
    let negative = (a < Fx::ZERO) != (b < Fx::ZERO);
    let n = a.to_bits().unsigned_abs();
    let d = b.to_bits().unsigned_abs();
    // Drop the divisor's bits below its top 64; shift the dividend up by what is left of 2⁶⁴.
    let k = (128 - d.leading_zeros()).saturating_sub(64);
    let up = 64 - k;
    if n.leading_zeros() < up {
        return fx_div(a, b);
    }
    let q = (n << up) / (d >> k);
    match i128::try_from(q) {
        Ok(q) if negative => Fx::from_bits(-q),
        Ok(q) => Fx::from_bits(q),
        Err(_) if negative => Fx::MIN,
        Err(_) => Fx::MAX,
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
    let y = fx_div_fast(Fx::from_bits(m_bits), c);
    let s = fx_div_fast(y - ONE, y + ONE);
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

/// The weight, in seconds, of an exponentially decayed sum observed for `elapsed_ns`:
/// `∫₀^elapsed 2^(−u/h) du = (h/ln2)·(1 − 2^(−elapsed/h))` (with `full_s = h/ln2` in seconds).
///
/// *Why:* dividing a decayed sum of per-event quantities by it gives a rate per second that is
/// unbiased from the first event on (it is the same decayed sum over a constant rate of 1/s), so
/// an estimator is usable before it has seen many half-lives.
#[inline]
fn decayed_window_s(full_s: Fx, elapsed_ns: i64, h: i64) -> Fx {
    full_s.saturating_mul(ONE - decay(elapsed_ns, h))
}

/// `h / ln2` in seconds for a half-life `h` in ns: the weight of a decayed sum over an infinite
/// past.
#[inline]
fn full_window_s(h: i64) -> Fx {
    fx_div(Fx::from_num(h.max(1)) / NS_PER_S, LN_2)
}

// ---------------------------------------------------------------------------------------------
// Realized volatility
// ---------------------------------------------------------------------------------------------

/// Realized volatility of the mid in event time: a time-decayed variance rate in bps² per
/// second, and its square root in bps per √s.
///
/// *Formula:* on each mid change at time tᵢ, rᵢ = (midᵢ − midᵢ₋₁)/midᵢ₋₁ · 10⁴ (bps). The decayed
/// sum S(t) = Σ rᵢ²·2^(−(t − tᵢ)/h) is kept incrementally (`S ← S·2^(−Δt/h) + r²`), and
/// v̂ = S / W with W = (h/ln2)·(1 − 2^(−T/h)) seconds, T the time since the first mid. For a
/// diffusion with variance rate v, E[S] = v·W, so v̂ estimates v in bps²/s whatever the spacing
/// of the events (event time: a quiet market adds no terms, a busy one many small ones).
/// σ̂ = √v̂.
///
/// *Why:* the spread must widen with the price risk per unit of time a quote is exposed to;
/// bps keep σ comparable across instruments and price levels ([`bps_to_ticks`] converts), and a
/// half-life in time (not in events) keeps the memory the same in quiet and busy markets.
///
/// Non-positive mids are ignored; time going backwards counts as no time passing.
#[derive(Debug, Clone)]
pub(crate) struct VolEstimator {
    /// Half-life, ns (≥ 1).
    half_life_ns: i64,
    /// h/ln2, seconds.
    full_s: Fx,
    /// The last valid mid, ticks (0 until the first).
    last_mid: Fx,
    /// Time of the first valid mid, ns.
    first_ns: i64,
    /// The latest time seen, ns (never moves back).
    last_ns: i64,
    /// The decayed Σ r², bps², as of `last_ns`.
    sum_r2: Fx,
}

impl VolEstimator {
    /// An estimator with a half-life of `half_life_ns` nanoseconds (clamped to ≥ 1).
    pub(crate) fn new(half_life_ns: i64) -> Self {
        let h = half_life_ns.max(1);
        VolEstimator {
            half_life_ns: h,
            full_s: full_window_s(h),
            last_mid: Fx::ZERO,
            first_ns: 0,
            last_ns: 0,
            sum_r2: Fx::ZERO,
        }
    }

    /// A new mid (ticks) at `now_ns`. Decays the sum by 2^(−Δt/h), then adds r² (bps²) if the
    /// mid changed. Mids ≤ 0 are ignored.
    pub(crate) fn on_mid(&mut self, now_ns: i64, mid: Fx) {
        if mid <= Fx::ZERO {
            return;
        }
        if self.last_mid == Fx::ZERO {
            self.last_mid = mid;
            self.first_ns = now_ns;
            self.last_ns = now_ns;
            return;
        }
        let dt = now_ns.saturating_sub(self.last_ns);
        if dt > 0 {
            self.sum_r2 = self.sum_r2.saturating_mul(decay(dt, self.half_life_ns));
            self.last_ns = now_ns;
        }
        if mid != self.last_mid {
            let r = fx_div_fast(mid.saturating_sub(self.last_mid), self.last_mid)
                .saturating_mul_int(BPS);
            self.sum_r2 = self.sum_r2.saturating_add(r.saturating_mul(r));
            self.last_mid = mid;
        }
    }

    /// The variance rate v̂ = S / W, bps² per second, as of the last mid (0 before two mids at
    /// different times).
    pub(crate) fn variance_bps2_per_s(&self) -> Fx {
        let w = decayed_window_s(
            self.full_s,
            self.last_ns.saturating_sub(self.first_ns),
            self.half_life_ns,
        );
        if w <= Fx::ZERO {
            return Fx::ZERO;
        }
        fx_div_fast(self.sum_r2, w)
    }

    /// σ̂ = √v̂, bps per √s: a one-second move of one standard deviation, in bps of the mid.
    pub(crate) fn sigma_bps_per_sqrt_s(&self) -> Fx {
        fx_sqrt(self.variance_bps2_per_s())
    }

    /// At least one half-life of mids seen (from the first valid mid to the latest time): before
    /// that, σ̂ rests on too few moves to size a spread.
    pub(crate) fn warmed_up(&self) -> bool {
        self.last_mid > Fx::ZERO && self.last_ns.saturating_sub(self.first_ns) >= self.half_life_ns
    }
}

// ---------------------------------------------------------------------------------------------
// Order-flow toxicity
// ---------------------------------------------------------------------------------------------

/// Most volume buckets [`Toxicity`] keeps.
pub(crate) const MAX_BUCKETS: usize = 64;
/// Largest bucket, lots (2⁵⁶): keeps n · bucket ≤ 2⁶² inside `Fx` and `i64`.
pub(crate) const MAX_BUCKET_LOTS: i64 = 1 << 56;

/// Order-flow toxicity from public trades: VPIN over volume buckets, and a time-decayed trade
/// imbalance.
///
/// *Formulas:* the tape is cut into buckets of exactly `bucket_lots` lots (a trade that spans a
/// boundary is split across the buckets); with Bᵢ, Sᵢ the aggressive buy and sell lots of bucket
/// i, VPIN = Σ|Bᵢ − Sᵢ| / (n · bucket) over the last n full buckets (Easley, López de Prado,
/// O'Hara, "Flow Toxicity and Liquidity in a High-Frequency World", Rev. Financ. Stud. 25(5),
/// 2012), in [0, 1]. The imbalance keeps decayed sums B(t) = Σ buy qtyᵢ·2^(−(t−tᵢ)/h) and S(t)
/// likewise and reports (B − S)/(B + S) at the last trade, itself faded by 2^(−age/h) with the
/// age of that trade, in [−1, 1].
///
/// *Why:* one-sided aggressive flow means informed traders are taking the maker's quotes
/// (adverse selection): VPIN measures it in volume time (the clock of information arrival), the
/// imbalance gives its direction in calendar time, and fading it when the tape goes quiet stops
/// an old burst from skewing quotes for good.
///
/// Trades with `qty_lots ≤ 0` are ignored; time going backwards counts as no time passing.
#[derive(Debug, Clone)]
pub(crate) struct Toxicity {
    /// Lots a bucket (1..=`MAX_BUCKET_LOTS`).
    bucket_lots: i64,
    /// Buckets in the VPIN window (1..=`MAX_BUCKETS`).
    n: usize,
    /// |B − S| of the last full buckets, a ring; lots.
    ring: [i64; MAX_BUCKETS],
    /// Next slot of `ring` to write.
    head: usize,
    /// Full buckets in `ring` (≤ n).
    full: usize,
    /// Σ ring over the full buckets, lots (≤ n · bucket ≤ 2⁶²).
    sum_abs: i64,
    /// Buy lots in the bucket being filled.
    cur_buy: i64,
    /// Sell lots in the bucket being filled.
    cur_sell: i64,
    /// Imbalance half-life, ns (≥ 1).
    half_life_ns: i64,
    /// Decayed aggressive buy lots, as of `last_ns`.
    buy: Fx,
    /// Decayed aggressive sell lots, as of `last_ns`.
    sell: Fx,
    /// The latest trade time, ns (never moves back).
    last_ns: i64,
    /// Whether a trade was seen.
    started: bool,
}

impl Toxicity {
    /// Buckets of `bucket_lots` lots (clamped to 1..=2⁵⁶), a VPIN window of `buckets` buckets
    /// (clamped to 1..=64), an imbalance half-life of `imbalance_half_life_ns` ns (≥ 1).
    pub(crate) fn new(bucket_lots: i64, buckets: usize, imbalance_half_life_ns: i64) -> Self {
        Toxicity {
            bucket_lots: bucket_lots.clamp(1, MAX_BUCKET_LOTS),
            n: buckets.clamp(1, MAX_BUCKETS),
            ring: [0; MAX_BUCKETS],
            head: 0,
            full: 0,
            sum_abs: 0,
            cur_buy: 0,
            cur_sell: 0,
            half_life_ns: imbalance_half_life_ns.max(1),
            buy: Fx::ZERO,
            sell: Fx::ZERO,
            last_ns: 0,
            started: false,
        }
    }

    /// Closes a bucket with imbalance `abs` lots.
    #[inline]
    fn push_bucket(&mut self, abs: i64) {
        if self.full == self.n {
            self.sum_abs -= self.ring[self.head];
        } else {
            self.full += 1;
        }
        self.ring[self.head] = abs;
        self.sum_abs += abs;
        self.head = if self.head + 1 == self.n {
            0
        } else {
            self.head + 1
        };
    }

    /// Adds `lots` (< room in the current bucket, or exactly filling it) to one side.
    #[inline]
    fn add_to_bucket(&mut self, lots: i64, buy: bool) {
        if buy {
            self.cur_buy += lots;
        } else {
            self.cur_sell += lots;
        }
        if self.cur_buy + self.cur_sell == self.bucket_lots {
            self.push_bucket((self.cur_buy - self.cur_sell).abs());
            self.cur_buy = 0;
            self.cur_sell = 0;
        }
    }

    /// A public trade of `qty_lots` at `now_ns`; `aggressor_is_buy` when the taker bought
    /// (Binance `m == false`). O(min(qty / bucket, n)): a trade of many buckets closes at most
    /// n of them, the older ones would leave the window anyway.
    pub(crate) fn on_trade(&mut self, now_ns: i64, qty_lots: i64, aggressor_is_buy: bool) {
        if qty_lots <= 0 {
            return;
        }
        // The imbalance sums.
        if self.started {
            let dt = now_ns.saturating_sub(self.last_ns);
            if dt > 0 {
                let d = decay(dt, self.half_life_ns);
                self.buy = self.buy.saturating_mul(d);
                self.sell = self.sell.saturating_mul(d);
                self.last_ns = now_ns;
            }
        } else {
            self.started = true;
            self.last_ns = now_ns;
        }
        let q = Fx::from_num(qty_lots);
        if aggressor_is_buy {
            self.buy = self.buy.saturating_add(q);
        } else {
            self.sell = self.sell.saturating_add(q);
        }
        // The buckets: top up the open one, then whole buckets, then the remainder.
        let room = self.bucket_lots - (self.cur_buy + self.cur_sell);
        let first = qty_lots.min(room);
        self.add_to_bucket(first, aggressor_is_buy);
        let rest = qty_lots - first;
        if rest > 0 {
            let whole = rest / self.bucket_lots;
            for _ in 0..whole.min(self.n as i64) {
                self.push_bucket(self.bucket_lots);
            }
            let rem = rest % self.bucket_lots;
            if rem > 0 {
                self.add_to_bucket(rem, aggressor_is_buy);
            }
        }
    }

    /// VPIN = Σ|Bᵢ − Sᵢ| / (n · bucket) over the last n full buckets, in [0, 1]: 0 for balanced
    /// flow, 1 for one-sided flow. `None` until n buckets have filled.
    pub(crate) fn vpin(&self) -> Option<Fx> {
        if self.full < self.n {
            return None;
        }
        let den = self.n as i64 * self.bucket_lots;
        Some(fx_div(Fx::from_num(self.sum_abs), Fx::from_num(den)).clamp(Fx::ZERO, ONE))
    }

    /// The trade imbalance (B − S)/(B + S) of the decayed buy and sell lots, faded by
    /// 2^(−(now − last trade)/h): in [−1, 1], positive when buyers are aggressive, 0 with no
    /// trades. A `now_ns` before the last trade counts as no age.
    pub(crate) fn imbalance(&self, now_ns: i64) -> Fx {
        let total = self.buy.saturating_add(self.sell);
        if !self.started || total <= Fx::ZERO {
            return Fx::ZERO;
        }
        let ratio = fx_div_fast(self.buy - self.sell, total).clamp(-ONE, ONE);
        let fade = decay(now_ns.saturating_sub(self.last_ns), self.half_life_ns);
        ratio.saturating_mul(fade).clamp(-ONE, ONE)
    }
}

// ---------------------------------------------------------------------------------------------
// Order-arrival intensity
// ---------------------------------------------------------------------------------------------

/// Most distance bins [`IntensityFit`] keeps.
pub(crate) const MAX_BINS: usize = 32;
/// Widest bin, ticks (2²⁰): keeps the regression's sums of squared distances inside `Fx`.
pub(crate) const MAX_BIN_WIDTH_TICKS: i64 = 1 << 20;
/// Least decayed count (trades) a bin needs to enter the fit: a bin whose trades have decayed
/// away keeps a vanishing count whose logarithm, far below the others, would dominate the least
/// squares.
const MIN_BIN_COUNT: Fx = Fx::ONE;
/// Half-lives after which the stored counts are rebased (the weight of a new trade stays
/// below 2¹⁶).
const REBASE_HALF_LIVES: i64 = 16;

/// The order-arrival intensity λ(δ) = A·e^(−κδ) — the rate (per second) at which trades reach δ
/// ticks from the mid — fitted online from the public tape.
///
/// *Counting:* each trade's distance from the mid at that time, |δ| in ticks, falls in bin
/// i = ⌊|δ| / w⌋ of `bins` bins of `w` ticks (trades beyond the last bin are not counted); each
/// bin keeps a time-decayed count cᵢ(t) = Σ 2^(−(t − tₖ)/h) over its trades. The decay is lazy:
/// counts are stored relative to a reference time t₀ (a trade adds 2^((t − t₀)/h)), and rebased
/// once t − t₀ reaches 16 half-lives, so a trade costs one [`fx_pow2`] and one add whatever the
/// number of bins.
///
/// *Fit:* the rate of bin i is ρᵢ = cᵢ / W (per second, W the decayed window of
/// [`VolEstimator`]); over the bins with cᵢ ≥ 1, least squares of yᵢ = ln ρᵢ on the bin centre
/// xᵢ = (i + ½)·w gives the slope −κ and the intercept ln a. If λ(δ) = A·e^(−κδ) is the rate of
/// trades reaching δ, the rate landing in [iw, (i+1)w) is λ(iw) − λ((i+1)w)
/// = A·e^(−κxᵢ)·2·sinh(κw/2), so A = a / (2·sinh(κw/2)). This holds for integer distances too
/// (a bin then holds the distances iw..(i+1)w−1).
///
/// *Why:* GLFT and Avellaneda–Stoikov price the fill probability of a quote δ ticks away as
/// A·e^(−κδ); fitting it online on the traded distances keeps the half-spread in step with how
/// deep the flow actually reaches. The A returned is that tail intensity (what the closed forms
/// take); [`IntensityFit::bin_fit`] gives the raw per-bin regression.
///
/// Time going backwards counts as no time passing.
#[derive(Debug, Clone)]
pub(crate) struct IntensityFit {
    /// Bins (1..=`MAX_BINS`).
    bins: usize,
    /// Bin width, ticks (1..=`MAX_BIN_WIDTH_TICKS`).
    width: i64,
    /// Half-life, ns (≥ 1).
    half_life_ns: i64,
    /// h/ln2, seconds.
    full_s: Fx,
    /// Decayed counts relative to `ref_ns`: the count at t is `counts[i] · 2^(−(t − ref)/h)`.
    counts: [Fx; MAX_BINS],
    /// The reference time of `counts`, ns.
    ref_ns: i64,
    /// The first trade's time, ns.
    first_ns: i64,
    /// The latest trade's time, ns (never moves back).
    last_ns: i64,
    /// Whether a trade was seen.
    started: bool,
}

impl IntensityFit {
    /// `bins` bins (clamped to 1..=32; the fit needs 2) of `bin_width_ticks` ticks (clamped to
    /// 1..=2²⁰), counts with a half-life of `half_life_ns` ns (≥ 1).
    pub(crate) fn new(bins: usize, bin_width_ticks: i64, half_life_ns: i64) -> Self {
        let h = half_life_ns.max(1);
        IntensityFit {
            bins: bins.clamp(1, MAX_BINS),
            width: bin_width_ticks.clamp(1, MAX_BIN_WIDTH_TICKS),
            half_life_ns: h,
            full_s: full_window_s(h),
            counts: [Fx::ZERO; MAX_BINS],
            ref_ns: 0,
            first_ns: 0,
            last_ns: 0,
            started: false,
        }
    }

    /// A public trade at `now_ns`, `distance_ticks` from the mid at that time (either sign:
    /// buys above, sells below).
    pub(crate) fn on_trade(&mut self, now_ns: i64, distance_ticks: i64) {
        if !self.started {
            self.started = true;
            self.first_ns = now_ns;
            self.last_ns = now_ns;
            self.ref_ns = now_ns;
        } else if now_ns > self.last_ns {
            self.last_ns = now_ns;
        }
        let mut age = ns_ratio(self.last_ns.saturating_sub(self.ref_ns), self.half_life_ns);
        if age >= Fx::const_from_int(REBASE_HALF_LIVES as i128) {
            let d = fx_pow2_neg(age);
            for c in &mut self.counts[..self.bins] {
                *c = c.saturating_mul(d);
            }
            self.ref_ns = self.last_ns;
            age = Fx::ZERO;
        }
        let bin = distance_ticks.unsigned_abs() / self.width.unsigned_abs();
        if bin < self.bins as u64 {
            let c = &mut self.counts[bin as usize];
            *c = c.saturating_add(fx_pow2(age));
        }
    }

    /// The decayed count of trades in bin `i` as of the last trade.
    pub(crate) fn count(&self, i: usize) -> Fx {
        if i >= self.bins {
            return Fx::ZERO;
        }
        let d = decay(self.last_ns.saturating_sub(self.ref_ns), self.half_life_ns);
        self.counts[i].saturating_mul(d)
    }

    /// The regression on the bins themselves: `(a, κ)` with ρ(x) = a·e^(−κx) the rate per second
    /// of trades landing in the bin centred at x (a per second per bin, κ per tick). `None`
    /// with fewer than two bins holding a decayed count ≥ 1, with no elapsed time, or if κ ≤ 0
    /// (rates not falling with distance).
    pub(crate) fn bin_fit(&self) -> Option<(Fx, Fx)> {
        if !self.started {
            return None;
        }
        let w = decayed_window_s(
            self.full_s,
            self.last_ns.saturating_sub(self.first_ns),
            self.half_life_ns,
        );
        if w <= Fx::ZERO {
            return None;
        }
        let mut xs = [Fx::ZERO; MAX_BINS];
        let mut ys = [Fx::ZERO; MAX_BINS];
        let mut k = 0usize;
        let half_w = Fx::from_num(self.width) / 2;
        // ln(c / W) = ln c − ln W: one logarithm of W for all bins.
        let ln_w = fx_ln(w);
        for i in 0..self.bins {
            let c = self.count(i);
            if c >= MIN_BIN_COUNT {
                xs[k] = Fx::from_num(i as i64 * self.width) + half_w;
                ys[k] = fx_ln(c).saturating_sub(ln_w);
                k += 1;
            }
        }
        if k < 2 {
            return None;
        }
        let (xs, ys) = (&xs[..k], &ys[..k]);
        let kn = k as i128;
        let x_mean = xs.iter().fold(Fx::ZERO, |a, &x| a.saturating_add(x)) / kn;
        let y_mean = ys.iter().fold(Fx::ZERO, |a, &y| a.saturating_add(y)) / kn;
        let (mut sxx, mut sxy) = (Fx::ZERO, Fx::ZERO);
        for (&x, &y) in xs.iter().zip(ys) {
            let dx = x - x_mean;
            sxx = sxx.saturating_add(dx.saturating_mul(dx));
            sxy = sxy.saturating_add(dx.saturating_mul(y.saturating_sub(y_mean)));
        }
        let kappa = -fx_div(sxy, sxx);
        if kappa <= Fx::ZERO {
            return None;
        }
        let a = fx_exp(y_mean.saturating_add(kappa.saturating_mul(x_mean)));
        Some((a, kappa))
    }

    /// The fitted intensity: `(A, κ)` with λ(δ) = A·e^(−κδ) the rate per second of trades that
    /// reach δ ticks from the mid (A per second, κ per tick), A = a / (2·sinh(κw/2)) from
    /// [`IntensityFit::bin_fit`]. `None` as there, or if κw is so small that the conversion is
    /// lost in the resolution.
    pub(crate) fn fit(&self) -> Option<(Fx, Fx)> {
        let (a, kappa) = self.bin_fit()?;
        let h = kappa.saturating_mul_int(i128::from(self.width)) / 2;
        let two_sinh = fx_exp(h).saturating_sub(fx_exp(-h));
        if two_sinh <= Fx::ZERO {
            return None;
        }
        Some((fx_div(a, two_sinh), kappa))
    }
}

// ---------------------------------------------------------------------------------------------
// Closed-form quotes
// ---------------------------------------------------------------------------------------------

/// Below this ξΔ/κ, GLFT's c₁ and its power term take their ξ → 0 limits (1/κ and e): the
/// exact form divides a vanishing logarithm by a vanishing ξΔ.
const XI_DELTA_OVER_KAPPA_EPS: Fx = Fx::lit("0.000000001");

/// Parameters of the GLFT closed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GlftParams {
    /// γ, risk aversion, per tick per unit of inventory (the units of `delta`).
    pub(crate) gamma: Fx,
    /// Δ, the order size, in the units inventory q is counted in (1 when q is in multiples of
    /// the quote size).
    pub(crate) delta: Fx,
    /// ξ, the utility's risk parameter: ξ = γ for the CARA model of the paper, ξ = 0 for the
    /// risk-adjusted-expectation model (c₁ = 1/κ); units of γ.
    pub(crate) xi: Fx,
}

/// The Guéant–Lehalle–Fernandez-Tapia closed-form approximation of the optimal quotes for an
/// infinite horizon: `(half_spread, skew)` in ticks, where
/// bid depth = half_spread + skew·q and ask depth = half_spread − skew·q
/// (depths below/above the fair price, q the signed inventory in the units of Δ).
///
/// *Formula* (Guéant, "Optimal market making", Applied Mathematical Finance 24(2), 2017,
/// eqs. 4.6–4.7, after Guéant, Lehalle and Fernandez-Tapia, "Dealing with the inventory risk: a
/// solution to the market making problem", Mathematics and Financial Economics 7(4), 2013; the
/// same split into c₁, c₂ as `hftbacktest`'s GLFT grid-trading tutorial):
/// c₁ = (1/(ξΔ))·ln(1 + ξΔ/κ), c₂ = √( γ/(2AΔκ) · (1 + ξΔ/κ)^(κ/(ξΔ)+1) ),
/// half_spread = c₁ + (Δ/2)·σ·c₂, skew = σ·c₂. With ξΔ/κ → 0: c₁ = 1/κ, the power is e.
///
/// *Units:* σ in ticks per √s ([`bps_to_ticks`] of [`VolEstimator::sigma_bps_per_sqrt_s`]),
/// A per second and κ per tick ([`IntensityFit::fit`]), γ and ξ per tick per unit of Δ. Time
/// enters only as σ²/A, so any time unit works if σ² and A share it.
///
/// *Why:* a spread and an inventory skew derived from measured volatility and fill intensity
/// instead of fixed offsets: wider when the price is riskier or the flow thinner, skewed in
/// proportion to the risk the inventory carries.
///
/// `q_lots` does not enter the closed form (the depths are affine in q; the caller applies the
/// skew) and is accepted only for the caller's convenience. Invalid models (A ≤ 0, κ ≤ 0 or
/// Δ ≤ 0) give `(Fx::MAX, 0)`: no finite spread is justified; negative γ, ξ and σ count as 0.
pub(crate) fn glft(params: &GlftParams, q_lots: i64, sigma: Fx, a: Fx, kappa: Fx) -> (Fx, Fx) {
    let _ = q_lots;
    let delta = params.delta;
    if a <= Fx::ZERO || kappa <= Fx::ZERO || delta <= Fx::ZERO {
        return (Fx::MAX, Fx::ZERO);
    }
    let gamma = params.gamma.max(Fx::ZERO);
    let xi = params.xi.max(Fx::ZERO);
    let sigma = sigma.max(Fx::ZERO);
    let xd = xi.saturating_mul(delta);
    let u = fx_div(xd, kappa); // ξΔ/κ
    let (c1, power) = if u < XI_DELTA_OVER_KAPPA_EPS {
        (fx_div(ONE, kappa), Fx::E)
    } else {
        let l = fx_ln(ONE.saturating_add(u));
        let expo = fx_div(kappa, xd).saturating_add(ONE);
        (fx_div(l, xd), fx_exp(expo.saturating_mul(l)))
    };
    let den = a
        .saturating_mul(delta)
        .saturating_mul(kappa)
        .saturating_mul_int(2);
    if den <= Fx::ZERO {
        return (Fx::MAX, Fx::ZERO);
    }
    let c2 = fx_sqrt(fx_div(gamma, den).saturating_mul(power));
    let skew = sigma.saturating_mul(c2);
    let half = c1.saturating_add((delta / 2).saturating_mul(skew));
    (half, skew)
}

/// The Avellaneda–Stoikov quotes for a horizon T: `(reservation offset, half spread)` in ticks;
/// the reservation price is fair value + offset, quotes at reservation ± half spread.
///
/// *Formula* (Avellaneda and Stoikov, "High-frequency trading in a limit order book",
/// Quantitative Finance 8(3), 2008): r − s = −q·γ·σ²·T, spread = γσ²T + (2/γ)·ln(1 + γ/κ),
/// half spread = spread / 2; with γ/κ → 0 the second term is 2/κ.
///
/// *Units:* γ per tick per unit of q, σ ticks per √s, κ per tick, T seconds, q signed inventory
/// (lots, or whatever unit γ is per).
///
/// *Why:* the finite-horizon baseline GLFT refines; useful to compare against and as a
/// fallback. κ ≤ 0 gives a half spread of `Fx::MAX`; negative γ and T count as 0.
pub(crate) fn avellaneda_stoikov(
    gamma: Fx,
    sigma: Fx,
    kappa: Fx,
    horizon_s: Fx,
    q: Fx,
) -> (Fx, Fx) {
    let gamma = gamma.max(Fx::ZERO);
    let t = horizon_s.max(Fx::ZERO);
    let risk = gamma
        .saturating_mul(sigma.saturating_mul(sigma))
        .saturating_mul(t);
    let offset = q.saturating_mul(risk).saturating_neg();
    if kappa <= Fx::ZERO {
        return (offset, Fx::MAX);
    }
    let u = fx_div(gamma, kappa);
    let liquidity = if u < XI_DELTA_OVER_KAPPA_EPS {
        fx_div(Fx::const_from_int(2), kappa)
    } else {
        fx_div(fx_ln(ONE.saturating_add(u)).saturating_mul_int(2), gamma)
    };
    (offset, risk.saturating_add(liquidity) / 2)
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

    /// The fast quotient against the exact one: relative error ≤ 2⁻⁶⁰ (plus one unit of the
    /// last place) over random magnitudes, exact for divisors of 64 bits or fewer.
    #[test]
    fn div_fast_matches_exact_division() {
        let mut rng = Lcg::new(6);
        for _ in 0..100_000 {
            let mag = |rng: &mut Lcg| {
                let bits = (rng.next_u64() % 127) as u32;
                let v =
                    (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) >> (127 - bits);
                let v = v as i128;
                if rng.next_u64() % 2 == 0 {
                    v
                } else {
                    -v
                }
            };
            let (a, b) = (Fx::from_bits(mag(&mut rng)), Fx::from_bits(mag(&mut rng)));
            let (got, want) = (fx_div_fast(a, b), fx_div(a, b));
            if b.to_bits().unsigned_abs() < 1 << 64 {
                assert_eq!(got, want, "{a} / {b}");
            }
            let err = (got.to_bits() - want.to_bits()).unsigned_abs();
            assert!(
                err <= (want.to_bits().unsigned_abs() >> 60) + 1,
                "{a} / {b}: {got} vs {want}"
            );
        }
        assert_eq!(fx_div_fast(ONE, Fx::ZERO), Fx::MAX);
        assert_eq!(fx_div_fast(Fx::MAX, Fx::DELTA), Fx::MAX);
        assert_eq!(fx_div_fast(Fx::MIN, Fx::DELTA), Fx::MIN);
        assert_eq!(fx_div_fast(Fx::MIN, -Fx::DELTA), Fx::MAX);
        assert_eq!(
            fx_div_fast(Fx::from_num(-3), Fx::from_num(2)),
            Fx::lit("-1.5")
        );
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

    // ---- VolEstimator -------------------------------------------------------------------

    /// The same estimator in f64: decayed Σ r² over the closed-form window.
    struct VolRef {
        h: f64,
        last_mid: f64,
        first: f64,
        last: f64,
        s: f64,
    }

    impl VolRef {
        fn new(h_ns: i64) -> Self {
            VolRef {
                h: h_ns as f64,
                last_mid: 0.0,
                first: 0.0,
                last: 0.0,
                s: 0.0,
            }
        }
        fn on_mid(&mut self, now: i64, mid: f64) {
            let now = now as f64;
            if self.last_mid == 0.0 {
                (self.last_mid, self.first, self.last) = (mid, now, now);
                return;
            }
            if now > self.last {
                self.s *= 2f64.powf(-(now - self.last) / self.h);
                self.last = now;
            }
            let r = (mid - self.last_mid) / self.last_mid * 1e4;
            self.s += r * r;
            self.last_mid = mid;
        }
        fn sigma(&self) -> f64 {
            let w = self.h / 1e9 / std::f64::consts::LN_2
                * (1.0 - 2f64.powf(-(self.last - self.first) / self.h));
            (self.s / w).sqrt()
        }
    }

    /// A geometric random walk of the mid with σ bps per √s, at random (exponential) intervals
    /// of mean `mean_dt_ns`; the estimator after `steps` moves, and the f64 reference.
    fn vol_walk(seed: u64, sigma: f64, mean_dt_ns: f64, h_ns: i64, steps: usize) -> (Fx, f64) {
        let mut rng = Lcg::new(seed);
        let mut est = VolEstimator::new(h_ns);
        let mut reference = VolRef::new(h_ns);
        let mut mid = 600_000.0f64;
        let mut t: i64 = 1_000;
        for _ in 0..steps {
            let dt = (-rng.unit().ln() * mean_dt_ns).max(1.0) as i64;
            t += dt;
            mid *= 1.0 + sigma * (dt as f64 / 1e9).sqrt() * rng.normal() / 1e4;
            let m = fx(mid);
            est.on_mid(t, m);
            reference.on_mid(t, f(m));
        }
        (est.sigma_bps_per_sqrt_s(), reference.sigma())
    }

    #[test]
    fn vol_recovers_sigma_of_a_random_walk_within_10_percent() {
        // Several σ, event spacings and seeds; half-life 60 s, 10 minutes of data.
        for (seed, sigma, mean_dt) in [
            (11, 2.0, 100e6),
            (12, 0.5, 50e6),
            (13, 8.0, 200e6),
            (14, 2.0, 20e6),
        ] {
            let steps = (600e9 / mean_dt) as usize;
            let (got, reference) = vol_walk(seed, sigma, mean_dt, 60_000_000_000, steps);
            let got = f(got);
            assert!(
                (got - sigma).abs() <= 0.10 * sigma,
                "σ {sigma}: estimated {got}"
            );
            assert!(
                (got - reference).abs() <= 1e-9 * reference,
                "fixed {got} vs f64 {reference}"
            );
        }
    }

    #[test]
    fn vol_basics() {
        let mut v = VolEstimator::new(1_000);
        assert_eq!(v.sigma_bps_per_sqrt_s(), Fx::ZERO);
        assert!(!v.warmed_up());
        v.on_mid(0, Fx::from_num(100));
        // +1% in 1 µs: r = 100 bps, S = 10⁴, W = (1 µs/ln2)(1 − 2^−1) = 0.5 µs/ln2.
        v.on_mid(1_000, Fx::from_num(101));
        assert!(v.warmed_up());
        let want = 1e4 / (1e-6 / std::f64::consts::LN_2 * 0.5);
        assert!((f(v.variance_bps2_per_s()) - want).abs() < 1e-9 * want);
        // Ignored: non-positive mids; an unchanged mid adds nothing; backwards time decays nothing.
        let before = v.clone();
        v.on_mid(2_000, Fx::ZERO);
        v.on_mid(2_000, -ONE);
        v.on_mid(-5, Fx::from_num(101));
        assert_eq!(v.sum_r2, before.sum_r2);
        assert_eq!(v.last_ns, 1_000);
    }

    #[test]
    fn vol_is_deterministic() {
        let a = vol_walk(21, 3.0, 10e6, 5_000_000_000, 5_000);
        let b = vol_walk(21, 3.0, 10e6, 5_000_000_000, 5_000);
        assert_eq!(a.0.to_bits(), b.0.to_bits());
    }

    // ---- Toxicity -----------------------------------------------------------------------

    /// VPIN the slow way: each trade split lot-chunk by lot-chunk into a list of buckets.
    fn vpin_ref(trades: &[(i64, bool)], bucket: i64, n: usize) -> Option<f64> {
        let mut done: Vec<(i64, i64)> = Vec::new();
        let (mut b, mut s) = (0i64, 0i64);
        for &(q, buy) in trades {
            let mut q = q;
            while q > 0 {
                let take = q.min(bucket - b - s);
                if buy {
                    b += take;
                } else {
                    s += take;
                }
                q -= take;
                if b + s == bucket {
                    done.push((b, s));
                    (b, s) = (0, 0);
                }
            }
        }
        if done.len() < n {
            return None;
        }
        let sum: i64 = done[done.len() - n..]
            .iter()
            .map(|(b, s)| (b - s).abs())
            .sum();
        Some(sum as f64 / (n as f64 * bucket as f64))
    }

    #[test]
    fn vpin_is_one_for_one_sided_flow_and_zero_for_alternating() {
        let mut t = Toxicity::new(100, 10, 1_000_000_000);
        for i in 0..30 {
            t.on_trade(i, 37, true);
            if i < 26 {
                assert_eq!(t.vpin(), None, "{i}: fewer than 10 buckets");
            }
        }
        assert_eq!(t.vpin(), Some(ONE));
        assert_eq!(t.imbalance(29), ONE);
        assert!(t.imbalance(1_000_000_029) < ONE / 2 + Fx::DELTA * 4);
        let mut t = Toxicity::new(100, 10, 1_000_000_000);
        for i in 0..1_000 {
            t.on_trade(i, 10, i % 2 == 0);
        }
        assert_eq!(t.vpin(), Some(Fx::ZERO));
        assert!(f(t.imbalance(1_000)).abs() < 0.01);
        // Alternating sizes that do not divide the bucket: close to zero.
        let mut t = Toxicity::new(100, 20, 1_000_000_000);
        for i in 0..5_000 {
            t.on_trade(i, 7, i % 2 == 0);
        }
        assert!(f(t.vpin().unwrap()) <= 0.07);
    }

    #[test]
    fn a_trade_spanning_buckets_is_split() {
        let mut t = Toxicity::new(10, 3, 1);
        t.on_trade(0, 4, false); // bucket 1: 4 sells
        t.on_trade(0, 21, true); // 6 buys close bucket 1 (|6−4| = 2), 10, then 5 open
        assert_eq!(t.vpin(), None);
        assert_eq!((t.full, t.sum_abs, t.cur_buy, t.cur_sell), (2, 12, 5, 0));
        t.on_trade(0, 5, false); // closes bucket 3 at |5 − 5| = 0
        assert_eq!(t.vpin(), Some(Fx::from_num(12) / 30));
        // A huge one-sided trade fills the whole window.
        t.on_trade(0, i64::MAX, false);
        assert_eq!(t.vpin(), Some(ONE));
    }

    #[test]
    fn vpin_and_imbalance_match_f64_references_on_random_flow() {
        let h = 2_000_000_000i64;
        for seed in 0..8u64 {
            let mut rng = Lcg::new(100 + seed);
            let bucket = 50 + (rng.next_u64() % 500) as i64;
            let n = 1 + (rng.next_u64() % 64) as usize;
            let mut t = Toxicity::new(bucket, n, h);
            let mut trades = Vec::new();
            let (mut b, mut s, mut last) = (0.0f64, 0.0f64, 0i64);
            let mut now = 0i64;
            let p_buy = rng.unit();
            for _ in 0..3_000 {
                now += (rng.unit() * 1e8) as i64;
                let q = 1 + (rng.next_u64() % (3 * bucket as u64)) as i64;
                let buy = rng.unit() < p_buy;
                t.on_trade(now, q, buy);
                trades.push((q, buy));
                let d = 2f64.powf(-((now - last) as f64) / h as f64);
                (b, s, last) = (b * d, s * d, now);
                if buy {
                    b += q as f64;
                } else {
                    s += q as f64;
                }
                let want = vpin_ref(&trades, bucket, n);
                match (t.vpin(), want) {
                    (None, None) => {}
                    (Some(got), Some(want)) => assert!((f(got) - want).abs() < 1e-15),
                    (got, want) => panic!("vpin {got:?} vs {want:?}"),
                }
            }
            for age in [0i64, 1_000_000_000, 10_000_000_000] {
                let want = (b - s) / (b + s) * 2f64.powf(-(age as f64) / h as f64);
                let got = f(t.imbalance(now + age));
                assert!((got - want).abs() < 1e-12, "imbalance {got} vs {want}");
            }
        }
    }

    #[test]
    fn toxicity_is_deterministic() {
        let run = || {
            let mut rng = Lcg::new(7);
            let mut t = Toxicity::new(333, 50, 500_000_000);
            let mut now = 0;
            for _ in 0..10_000 {
                now += (rng.next_u64() % 10_000_000) as i64;
                t.on_trade(now, 1 + (rng.next_u64() % 1_000) as i64, rng.unit() < 0.6);
            }
            (t.vpin().map(Fx::to_bits), t.imbalance(now + 123).to_bits())
        };
        assert_eq!(run(), run());
    }

    // ---- IntensityFit -------------------------------------------------------------------

    /// Trades whose distances have the tail P(δ ≥ x) = e^(−κx) arriving at A per second, for
    /// `secs` seconds: stratified quantiles with a random offset per second (unbiased, low
    /// variance). Feeds the estimator and returns the f64 reference fit of the same trades.
    fn feed_exponential(
        fit: &mut IntensityFit,
        seed: u64,
        a: f64,
        kappa: f64,
        secs: i64,
    ) -> Option<(f64, f64)> {
        let (bins, width, h) = (fit.bins, fit.width as f64, fit.half_life_ns as f64);
        let mut rng = Lcg::new(seed);
        let mut counts = vec![0.0f64; bins];
        let (mut first, mut last) = (None, 0i64);
        let per_s = a as i64;
        for s in 0..secs {
            let offset = rng.unit();
            for j in 0..per_s {
                let now = s * 1_000_000_000 + j * (1_000_000_000 / per_s);
                let u = (j as f64 + offset) / per_s as f64;
                let d = (-u.ln() / kappa).floor() as i64;
                let d = if rng.unit() < 0.5 { d } else { -d };
                fit.on_trade(now, d);
                first.get_or_insert(now);
                let decay = 2f64.powf(-((now - last) as f64) / h);
                counts.iter_mut().for_each(|c| *c *= decay);
                last = now;
                let bin = (d.unsigned_abs() as f64 / width).floor() as usize;
                if bin < bins {
                    counts[bin] += 1.0;
                }
            }
        }
        // The reference regression.
        let w = h / 1e9 / std::f64::consts::LN_2 * (1.0 - 2f64.powf(-((last - first?) as f64) / h));
        let pts: Vec<(f64, f64)> = (0..bins)
            .filter(|&i| counts[i] >= 1.0)
            .map(|i| ((i as f64 + 0.5) * width, (counts[i] / w).ln()))
            .collect();
        let n = pts.len() as f64;
        let xm = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let ym = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - xm).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum();
        let k = -sxy / sxx;
        let a_bin = (ym + k * xm).exp();
        Some((a_bin / (2.0 * (k * width / 2.0).sinh()), k))
    }

    #[test]
    fn intensity_recovers_a_and_kappa_within_5_percent() {
        for (seed, a, kappa, bins, width) in [
            (31, 200.0, 0.4, 12, 1),
            (32, 50.0, 0.15, 20, 2),
            (33, 1_000.0, 1.2, 6, 1),
            (34, 100.0, 0.05, 16, 5),
        ] {
            let mut fit = IntensityFit::new(bins, width, 30_000_000_000);
            let reference = feed_exponential(&mut fit, seed, a, kappa, 300).unwrap();
            let (got_a, got_k) = fit.fit().expect("a fit");
            let (got_a, got_k) = (f(got_a), f(got_k));
            assert!(
                (got_k - kappa).abs() <= 0.05 * kappa,
                "κ {kappa}: fitted {got_k}"
            );
            assert!((got_a - a).abs() <= 0.05 * a, "A {a}: fitted {got_a}");
            assert!((got_k - reference.1).abs() <= 1e-9 * reference.1);
            assert!((got_a - reference.0).abs() <= 1e-9 * reference.0);
        }
    }

    #[test]
    fn intensity_needs_two_bins_and_a_falling_rate() {
        let mut fit = IntensityFit::new(8, 1, 1_000_000_000);
        assert_eq!(fit.fit(), None);
        for i in 0..100 {
            fit.on_trade(i * 1_000_000, 0);
        }
        assert_eq!(fit.fit(), None, "one bin");
        for i in 0..100 {
            fit.on_trade(100_000_000 + i * 1_000_000, 3);
        }
        assert_eq!(fit.fit(), None, "flat rate: κ = 0");
        for i in 0..100 {
            fit.on_trade(200_000_000 + i * 1_000_000, -3);
        }
        assert_eq!(fit.fit(), None, "rising rate: κ < 0");
        // Far beyond the bins: not counted.
        let before = fit.counts;
        fit.on_trade(300_000_000, 8);
        fit.on_trade(300_000_000, i64::MIN);
        assert_eq!(fit.count(7), Fx::ZERO);
        assert_eq!(fit.counts, before);
        // All trades at one instant: no elapsed time, no rate.
        let mut fit = IntensityFit::new(8, 1, 1_000_000_000);
        for d in [0, 0, 0, 1, 1, 2] {
            fit.on_trade(5, d);
        }
        assert_eq!(fit.fit(), None);
    }

    #[test]
    fn intensity_rebases_without_changing_the_counts() {
        // Two trades per half-life over 100 half-lives: several rebases.
        let h = 1_000_000;
        let mut fit = IntensityFit::new(4, 1, h);
        let mut reference = [0.0f64; 4];
        let mut last = 0;
        for k in 0..200i64 {
            let now = k * h / 2;
            let d = k % 3;
            fit.on_trade(now, d);
            let decay = 2f64.powf(-((now - last) as f64) / h as f64);
            reference.iter_mut().for_each(|c| *c *= decay);
            reference[d as usize] += 1.0;
            last = now;
        }
        assert!(fit.ref_ns > 0, "rebased");
        for (i, want) in reference.iter().enumerate() {
            assert!((f(fit.count(i)) - want).abs() < 1e-12, "bin {i}");
        }
    }

    #[test]
    fn intensity_is_deterministic() {
        let run = || {
            let mut fit = IntensityFit::new(10, 1, 10_000_000_000);
            feed_exponential(&mut fit, 9, 300.0, 0.3, 60);
            fit.fit().map(|(a, k)| (a.to_bits(), k.to_bits()))
        };
        assert!(run().is_some());
        assert_eq!(run(), run());
    }

    // ---- GLFT, Avellaneda–Stoikov -------------------------------------------------------

    fn glft_ref(gamma: f64, delta: f64, xi: f64, sigma: f64, a: f64, k: f64) -> (f64, f64) {
        let xd = xi * delta;
        let c1 = (1.0 + xd / k).ln() / xd;
        let c2 = (gamma / (2.0 * a * delta * k) * (1.0 + xd / k).powf(k / xd + 1.0)).sqrt();
        (c1 + delta / 2.0 * sigma * c2, sigma * c2)
    }

    #[test]
    fn glft_matches_f64() {
        let mut rng = Lcg::new(41);
        for _ in 0..2_000 {
            let gamma = 10f64.powf(-4.0 + 4.0 * rng.unit());
            let xi = if rng.unit() < 0.5 {
                gamma
            } else {
                10f64.powf(-4.0 + 4.0 * rng.unit())
            };
            let delta = [1.0, 0.5, 3.0][(rng.next_u64() % 3) as usize];
            let sigma = 10f64.powf(-1.0 + 3.0 * rng.unit());
            let a = 10f64.powf(-1.0 + 4.0 * rng.unit());
            let k = 10f64.powf(-2.0 + 2.5 * rng.unit());
            let p = GlftParams {
                gamma: fx(gamma),
                delta: fx(delta),
                xi: fx(xi),
            };
            let (half, skew) = glft(&p, 0, fx(sigma), fx(a), fx(k));
            let (wh, ws) = glft_ref(
                f(p.gamma),
                f(p.delta),
                f(p.xi),
                f(fx(sigma)),
                f(fx(a)),
                f(fx(k)),
            );
            assert!((f(half) - wh).abs() <= 1e-9 * wh, "half {half} vs {wh}");
            assert!((f(skew) - ws).abs() <= 1e-9 * ws, "skew {skew} vs {ws}");
        }
    }

    #[test]
    fn glft_limits_and_invalid_models() {
        // ξ → 0: c1 → 1/κ, power → e; continuous across the cut-over.
        let (sigma, a, k) = (fx(3.0), fx(20.0), fx(0.5));
        let at = |xi: f64| {
            glft(
                &GlftParams {
                    gamma: fx(0.01),
                    delta: ONE,
                    xi: fx(xi),
                },
                0,
                sigma,
                a,
                k,
            )
        };
        let (h0, s0) = at(0.0);
        let c2 = (0.01 / (2.0 * 20.0 * 0.5) * std::f64::consts::E).sqrt();
        assert!((f(h0) - (2.0 + 0.5 * 3.0 * c2)).abs() < 1e-15);
        assert!((f(s0) - 3.0 * c2).abs() < 1e-15);
        let (h1, s1) = at(1e-8);
        assert!((f(h1) - f(h0)).abs() < 1e-7 && (f(s1) - f(s0)).abs() < 1e-7);
        // The skew is what the depths need: bid = half + skew·q, ask = half − skew·q.
        let (h, s) = at(0.01);
        assert!(h > Fx::ZERO && s > Fx::ZERO);
        // Invalid models.
        let p = GlftParams {
            gamma: fx(0.1),
            delta: ONE,
            xi: fx(0.1),
        };
        assert_eq!(glft(&p, 0, sigma, Fx::ZERO, k), (Fx::MAX, Fx::ZERO));
        assert_eq!(glft(&p, 0, sigma, a, -k), (Fx::MAX, Fx::ZERO));
        let p0 = GlftParams {
            delta: Fx::ZERO,
            ..p
        };
        assert_eq!(glft(&p0, 0, sigma, a, k), (Fx::MAX, Fx::ZERO));
        // σ = 0: no skew, half spread c1.
        let (h, s) = glft(&p, 0, Fx::ZERO, a, k);
        assert_eq!(s, Fx::ZERO);
        assert!((f(h) - (1.0f64 + 0.2).ln() / 0.1).abs() < 1e-15);
    }

    #[test]
    fn avellaneda_stoikov_matches_f64() {
        let mut rng = Lcg::new(42);
        for _ in 0..2_000 {
            let gamma = 10f64.powf(-4.0 + 4.0 * rng.unit());
            let sigma = 10f64.powf(-1.0 + 2.0 * rng.unit());
            let k = 10f64.powf(-2.0 + 2.5 * rng.unit());
            let t = 10f64.powf(-1.0 + 3.0 * rng.unit());
            let q = (rng.unit() - 0.5) * 40.0;
            let (gx, sx, kx, tx, qx) = (fx(gamma), fx(sigma), fx(k), fx(t), fx(q));
            let (off, half) = avellaneda_stoikov(gx, sx, kx, tx, qx);
            let (g, s, k, t, q) = (f(gx), f(sx), f(kx), f(tx), f(qx));
            let want_off = -q * g * s * s * t;
            let want_half = (g * s * s * t + 2.0 / g * (1.0 + g / k).ln()) / 2.0;
            assert!((f(off) - want_off).abs() <= 1e-10 * want_off.abs() + 1e-15);
            assert!((f(half) - want_half).abs() <= 1e-9 * want_half);
        }
        // γ → 0: the liquidity term is 2/κ.
        let (off, half) = avellaneda_stoikov(Fx::ZERO, ONE, fx(0.5), ONE, fx(3.0));
        assert_eq!(off, Fx::ZERO);
        assert_eq!(half, Fx::from_num(2));
        assert_eq!(avellaneda_stoikov(ONE, ONE, Fx::ZERO, ONE, ONE).1, Fx::MAX);
    }

    // ---- No input panics, outputs stay in range -----------------------------------------

    fn any_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            -1_000i64..1_000,
            Just(0i64),
            Just(i64::MIN),
            Just(i64::MAX),
        ]
    }

    fn any_fx() -> impl Strategy<Value = Fx> {
        prop_oneof![
            any::<i128>().prop_map(Fx::from_bits),
            (-1_000_000i64..1_000_000).prop_map(Fx::from_num),
            Just(Fx::ZERO),
            Just(Fx::MIN),
            Just(Fx::MAX),
            Just(Fx::DELTA),
        ]
    }

    proptest! {
        #[test]
        fn vol_never_panics_and_sigma_is_non_negative(
            h in any_i64(),
            mids in proptest::collection::vec((any_i64(), any_fx()), 0..48),
        ) {
            let mut v = VolEstimator::new(h);
            for (t, m) in mids {
                v.on_mid(t, m);
                prop_assert!(v.variance_bps2_per_s() >= Fx::ZERO);
                prop_assert!(v.sigma_bps_per_sqrt_s() >= Fx::ZERO);
                let _ = v.warmed_up();
            }
        }

        #[test]
        fn toxicity_never_panics_and_stays_in_range(
            bucket in any_i64(),
            n in any::<usize>(),
            h in any_i64(),
            trades in proptest::collection::vec((any_i64(), any_i64(), any::<bool>()), 0..48),
            probe in any_i64(),
        ) {
            let mut t = Toxicity::new(bucket, n, h);
            for (now, q, buy) in trades {
                t.on_trade(now, q, buy);
                if let Some(v) = t.vpin() {
                    prop_assert!(v >= Fx::ZERO && v <= ONE);
                }
                for p in [now, probe] {
                    let i = t.imbalance(p);
                    prop_assert!(i >= -ONE && i <= ONE);
                }
            }
        }

        #[test]
        fn intensity_never_panics_and_fits_are_positive(
            bins in any::<usize>(),
            width in any_i64(),
            h in any_i64(),
            trades in proptest::collection::vec((any_i64(), any_i64()), 0..48),
        ) {
            let mut fit = IntensityFit::new(bins, width, h);
            for (now, d) in trades {
                fit.on_trade(now, d);
                for i in 0..MAX_BINS + 1 {
                    prop_assert!(fit.count(i) >= Fx::ZERO);
                }
                if let Some((a, k)) = fit.fit() {
                    prop_assert!(a >= Fx::ZERO && k > Fx::ZERO);
                }
                if let Some((a, k)) = fit.bin_fit() {
                    prop_assert!(a >= Fx::ZERO && k > Fx::ZERO);
                }
            }
        }

        #[test]
        fn closed_forms_never_panic_and_spreads_are_non_negative(
            gamma in any_fx(), delta in any_fx(), xi in any_fx(),
            q in any_i64(), sigma in any_fx(), a in any_fx(), kappa in any_fx(),
            t in any_fx(), qf in any_fx(),
        ) {
            let (half, skew) = glft(&GlftParams { gamma, delta, xi }, q, sigma, a, kappa);
            prop_assert!(half >= Fx::ZERO && skew >= Fx::ZERO);
            let (_, half) = avellaneda_stoikov(gamma, sigma, kappa, t, qf);
            prop_assert!(half >= Fx::ZERO);
        }

        #[test]
        fn estimators_are_deterministic(
            events in proptest::collection::vec((any_i64(), any_i64(), any::<bool>()), 0..32),
        ) {
            let run = || {
                let mut v = VolEstimator::new(1_000_000);
                let mut t = Toxicity::new(7, 3, 1_000_000);
                let mut fit = IntensityFit::new(5, 1, 1_000_000);
                for &(now, x, buy) in &events {
                    v.on_mid(now, Fx::from_num(x.unsigned_abs() % 1_000_000));
                    t.on_trade(now, x % 100, buy);
                    fit.on_trade(now, x % 7);
                }
                (
                    v.sigma_bps_per_sqrt_s().to_bits(),
                    t.vpin().map(Fx::to_bits),
                    t.imbalance(0).to_bits(),
                    fit.fit().map(|(a, k)| (a.to_bits(), k.to_bits())),
                )
            };
            prop_assert_eq!(run(), run());
        }
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
                let _ = fx_div_fast(v, x);
                let _ = fx_div_fast(x, v);
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
