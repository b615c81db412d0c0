//! Pricing: fair value → reservation price (inventory skew, hysteresis) → the geometric grid.
//! Pure functions over fixed-point values; the risk clamp on the ladders is in `risk`.

use crate::adapt::Shape;
use crate::config::{FairValue, Fx, InstrumentConfig, OffsetUnit, MAX_LAYERS};
use crate::event::TopOfBook;

/// One desired quote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Layer {
    /// Price, ticks.
    pub(crate) price: i64,
    /// Size, lots.
    pub(crate) qty: i64,
}

/// Desired quotes on one side, nearest the touch first. Inline, no heap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ladder {
    layers: [Layer; MAX_LAYERS],
    len: usize,
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder {
            layers: [Layer::default(); MAX_LAYERS],
            len: 0,
        }
    }
}

impl Ladder {
    /// The layers.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[Layer] {
        &self.layers[..self.len]
    }

    /// Makes this ladder a copy of `other` (its layers only, not the unused room).
    #[inline]
    pub(crate) fn copy_from(&mut self, other: &Ladder) {
        let n = other.len;
        self.layers[..n].copy_from_slice(&other.layers[..n]);
        self.len = n;
    }

    /// Removes every layer.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    #[inline]
    pub(crate) fn push(&mut self, l: Layer) {
        if self.len < MAX_LAYERS {
            self.layers[self.len] = l;
            self.len += 1;
        }
    }

    /// Overwrites layer `k` (< the current length).
    #[inline]
    pub(crate) fn set(&mut self, k: usize, l: Layer) {
        self.layers[k] = l;
    }

    /// Keeps the first `n` layers.
    #[inline]
    pub(crate) fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Sum of sizes.
    #[cfg(test)]
    pub(crate) fn total_qty(&self) -> i64 {
        self.as_slice().iter().map(|l| l.qty).sum()
    }
}

pub(crate) const TEN_THOUSAND: Fx = Fx::const_from_int(10_000);

/// `x / TEN_THOUSAND` (one basis point of `x`), the same bits: the quotient of `x`'s bits by
/// 10 000, rounded towards zero. Without the 256-by-128-bit long division of a fixed-point
/// quotient: three 64-bit divisions by a constant, which compile to multiplies.
#[inline]
pub(crate) fn bps_of(x: Fx) -> Fx {
    Fx::from_bits(div_bits_small(x.to_bits(), 10_000))
}

/// `n / d` rounded towards zero (as `i128` division) for a divisor below 2³², by long division
/// in 32-bit digits so that every step's dividend fits 64 bits: with a constant `d`, no
/// division instruction is left.
#[inline(always)]
pub(crate) fn div_bits_small(n: i128, d: u32) -> i128 {
    let d = u64::from(d);
    let a = n.unsigned_abs();
    let (hi, lo) = ((a >> 64) as u64, a as u64);
    let (q2, r2) = (hi / d, hi % d);
    let x1 = (r2 << 32) | (lo >> 32);
    let (q1, r1) = (x1 / d, x1 % d);
    let x0 = (r1 << 32) | (lo & 0xffff_ffff);
    let q = (u128::from(q2) << 64) | (u128::from(q1) << 32) | u128::from(x0 / d);
    // As `i128` division: only i128::MIN / 1 does not fit, and it wraps back to itself.
    if n < 0 {
        (q as i128).wrapping_neg()
    } else {
        q as i128
    }
}

/// `num / den` for `num < den`: the same bits as `Fx::from_num(num) / Fx::from_num(den)` (the
/// quotient of `num · 2⁶⁴` by `den`, rounded down), in one division whose quotient fits 64 bits
/// rather than the fixed-point quotient's 256-by-128-bit long division.
#[inline]
pub(crate) fn fraction(num: u64, den: u64) -> Fx {
    debug_assert!(num < den);
    Fx::from_bits(((u128::from(num) << 64) / u128::from(den)) as i128)
}

/// Fair value in ticks.
#[inline]
pub(crate) fn fair_value(kind: FairValue, t: &TopOfBook) -> Fx {
    match kind {
        FairValue::Mid => Fx::from_num(t.bid_price + t.ask_price) / 2,
        FairValue::Microprice => {
            let total = t.bid_qty as i128 + t.ask_qty as i128;
            if total <= 0 {
                return Fx::from_num(t.bid_price + t.ask_price) / 2;
            }
            // bid + (ask - bid) · bid_qty / total: the price leans towards the thinner side.
            let w = if total <= i64::MAX as i128 {
                // The bits of `Fx::from_num(bid_qty) / Fx::from_num(total)`: bid_qty · 2⁶⁴ / total
                // rounded towards zero, in one 128-bit division instead of a 256-bit one.
                Fx::from_bits((i128::from(t.bid_qty) << 64) / total)
            } else {
                Fx::from_num(t.bid_qty) / Fx::from_num(total)
            };
            Fx::from_num(t.bid_price) + Fx::from_num(t.ask_price - t.bid_price) * w
        }
    }
}

/// Inventory ratio `pos / net_max`, clamped to [-1, 1], with hysteresis against `last`.
#[inline]
pub(crate) fn inventory_ratio(pos: i64, net_max: i64, hysteresis: Fx, last: Fx) -> Fx {
    // (pos / net_max) clamped to [-1, 1]: ±1 from |pos| ≥ net_max on, else a fraction.
    let den = net_max.max(1).unsigned_abs();
    let raw = match fraction_or_one(pos.unsigned_abs(), den) {
        r if pos < 0 => -r,
        r => r,
    };
    // Flat is flat: never carry a stale skew into a flat book.
    if pos != 0 && (raw - last).abs() < hysteresis {
        last
    } else {
        raw
    }
}

/// `(num / den).min(1)` for `den ≥ 1`, the same bits as with fixed-point division.
#[inline]
fn fraction_or_one(num: u64, den: u64) -> Fx {
    if num >= den {
        Fx::ONE
    } else {
        fraction(num, den)
    }
}

/// Reservation price: `fv − ratio · skew_coeff · fv`.
#[inline]
pub(crate) fn reservation(fv: Fx, ratio: Fx, skew_coeff: Fx) -> Fx {
    fv - ratio * skew_coeff * fv
}

/// How many layers each side gets: the side that grows the position thins as it grows.
#[inline]
pub(crate) fn layer_counts(layers: usize, pos: i64, net_max: i64) -> (usize, usize) {
    let ratio = fraction_or_one(pos.unsigned_abs(), net_max.max(1).unsigned_abs());
    let thin = (Fx::from_num(layers) * (Fx::ONE - Fx::from_num(0.6) * ratio))
        .floor()
        .to_num::<usize>()
        .max(1);
    match pos {
        p if p > 0 => (thin, layers),
        p if p < 0 => (layers, thin),
        _ => (layers, layers),
    }
}

/// Builds the desired ladders (before risk): the geometric grid around `r`, tick-rounded
/// outwards, with the minimum spread, the post-only guard, and colliding layers dropped.
/// `shape` adapts it: each side's distances scaled, its nearest layers pulled, and with a model
/// layer 0 at the model's depth from `fv` on each side (the grid's spacing after it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_ladders(
    cfg: &InstrumentConfig,
    top: &TopOfBook,
    fv: Fx,
    r: Fx,
    bid_layers: usize,
    ask_layers: usize,
    shape: &Shape,
    bids: &mut Ladder,
    asks: &mut Ladder,
) {
    bids.clear();
    asks.clear();
    // One basis point of fair value per requote; every distance after it is a multiply.
    let bp = bps_of(fv);
    let per_unit = match cfg.offset_unit {
        OffsetUnit::Bps => bp,
        OffsetUnit::Ticks => Fx::ONE,
    };
    let to_ticks = |d: Fx| times(d, per_unit);
    let min_spread = bp.saturating_mul(cfg.min_spread_bps);
    let d0 = to_ticks(cfg.layer_distance[0]);
    // Layer 0's distance per side: the model's depth, or the (scaled) start offset.
    let first = match shape.depth0 {
        Some(d) => d,
        None => [times(d0, shape.scale[0]), times(d0, shape.scale[1])],
    };
    // Widen symmetrically around r so that layer 0s are at least min_spread apart.
    let both = first[0].saturating_add(first[1]);
    let extra = if both < min_spread {
        (min_spread - both) / 2
    } else {
        Fx::ZERO
    };
    let n = cfg.layers.min(MAX_LAYERS).min(cfg.layer_distance.len());
    // Beyond layer 0, the grid's spacing, for every layer first: independent products, which
    // the core overlaps when nothing else sits between them.
    let mut beyond_of = [Fx::ZERO; MAX_LAYERS];
    for (b, &dist) in beyond_of.iter_mut().zip(&cfg.layer_distance[..n]) {
        *b = to_ticks(dist).saturating_sub(d0);
    }
    // Both sides at the same distance from r (the same scale, no model): one distance a layer.
    let symmetric = shape.scale[0] == shape.scale[1] && first[0] == first[1];
    for (k, &beyond) in beyond_of[..n].iter().enumerate() {
        // Its distance from r on side s: the spacing scaled, after layer 0's.
        let at = |s: usize| {
            first[s]
                .saturating_add(times(beyond, shape.scale[s]))
                .saturating_add(extra)
        };
        let bid_on = k < bid_layers && k >= shape.pull[0];
        let ask_on = k < ask_layers && k >= shape.pull[1];
        let bid_at = if bid_on { at(0) } else { Fx::ZERO };
        let ask_at = match (ask_on, bid_on && symmetric) {
            (true, true) => bid_at,
            (true, false) => at(1),
            (false, _) => Fx::ZERO,
        };
        if bid_on {
            let mut p = r.saturating_sub(bid_at).floor().saturating_to_num::<i64>();
            // Post-only guard: never at or through the best ask.
            if p >= top.ask_price {
                p = top.ask_price - 1;
            }
            let collides = bids.len > 0 && p >= bids.layers[bids.len - 1].price;
            if p > 0 && !collides {
                bids.push(Layer {
                    price: p,
                    qty: cfg.layer_size,
                });
            }
        }
        if ask_on {
            let mut p = r.saturating_add(ask_at).ceil().saturating_to_num::<i64>();
            if p <= top.bid_price {
                p = top.bid_price + 1;
            }
            let collides = asks.len > 0 && p <= asks.layers[asks.len - 1].price;
            if !collides {
                asks.push(Layer {
                    price: p,
                    qty: cfg.layer_size,
                });
            }
        }
    }
}

/// `x.saturating_mul(k)`, skipping the 256-bit product for `k = 1` (the same bits: `x`), and
/// taking it from four 64-bit products when both are non-negative with integer parts below
/// 2³² and 2³¹ (every distance and scale a config gives): the product's bits are then at most
/// 2¹²⁷ − 2³², so no sign, carry-out or saturation needs handling, and the floor of the exact
/// product is what the fixed-point multiply gives.
#[inline]
fn times(x: Fx, k: Fx) -> Fx {
    if k == Fx::ONE {
        return x;
    }
    let (a, b) = (x.to_bits(), k.to_bits());
    if a >= 0 && b >= 0 && (a >> 64) < (1 << 32) && (b >> 64) < (1 << 31) {
        let (ah, al) = ((a >> 64) as u64, a as u64);
        let (bh, bl) = ((b >> 64) as u64, b as u64);
        let bits = (u128::from(ah * bh) << 64)
            + u128::from(ah) * u128::from(bl)
            + u128::from(al) * u128::from(bh)
            + ((u128::from(al) * u128::from(bl)) >> 64);
        Fx::from_bits(bits as i128)
    } else {
        x.saturating_mul(k)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;

    /// One instrument's config text, `extra` at the end of its `[instrument.quote]`.
    pub(crate) fn cfg_text(extra: &str) -> String {
        format!(
            r#"
[[instrument]]
symbol = "BTCUSDT"
tick = "0.10"
lot = "0.001"
min_qty = "0.001"
min_notional = "0.1"
[instrument.quote]
fair_value = "mid"
offset_unit = "ticks"
start_offset = 2.0
first_spacing = 4.0
multiplier = 1.5
max_spacing = 8.0
layers = 5
layer_size = "0.002"
min_spread_bps = 0.0
skew_coeff = 0.001
{extra}
[instrument.risk]
net_max = "0.010"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "500"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 1000
cancel_budget_per_min = 50
"#
        )
    }

    pub(crate) fn cfg(extra: &str) -> InstrumentConfig {
        Config::from_toml(&cfg_text(extra))
            .unwrap()
            .instruments
            .remove(0)
    }

    pub(crate) fn touch(bid: i64, ask: i64) -> TopOfBook {
        TopOfBook {
            bid_price: bid,
            bid_qty: 1,
            ask_price: ask,
            ask_qty: 1,
            update_id: 0,
        }
    }

    #[test]
    fn geometric_grid_matches_hand_computed_prices() {
        let c = cfg("");
        // Distances: 2, 2+4=6, 6+6=12, 12+8(9 capped)=20, 20+8=28.
        assert_eq!(
            c.layer_distance,
            [2, 6, 12, 20, 28].map(Fx::from_num).to_vec()
        );
        let t = touch(1000, 1001);
        let fv = fair_value(c.fair_value, &t);
        assert_eq!(fv, Fx::from_num(1000.5));
        let (mut b, mut a) = (Ladder::default(), Ladder::default());
        build_ladders(&c, &t, fv, fv, 5, 5, &Shape::NONE, &mut b, &mut a);
        let bp: Vec<i64> = b.as_slice().iter().map(|l| l.price).collect();
        let ap: Vec<i64> = a.as_slice().iter().map(|l| l.price).collect();
        // floor(1000.5 - d), ceil(1000.5 + d)
        assert_eq!(bp, [998, 994, 988, 980, 972]);
        assert_eq!(ap, [1003, 1007, 1013, 1021, 1029]);
        assert!(b.as_slice().iter().all(|l| l.qty == 2));
    }

    #[test]
    fn skew_shifts_quotes_against_the_position() {
        let c = cfg("");
        let fv = Fx::from_num(100_000);
        // Long half of net max: ratio 0.5, skew = -0.5 · 0.001 · 100000 = -50 ticks.
        let ratio = inventory_ratio(5, 10, c.skew_hysteresis, Fx::ZERO);
        assert_eq!(ratio, Fx::from_num(0.5));
        // 0.001 is not exact in binary fixed point: within 1e-12 of a tick, and deterministic.
        let r = reservation(fv, ratio, c.skew_coeff);
        assert!(
            (r - Fx::from_num(99_950)).abs() < Fx::from_num(1e-12),
            "{r}"
        );
        // Hysteresis: a move of 0.01 keeps the old ratio; flat resets it.
        assert_eq!(inventory_ratio(51, 100, Fx::from_num(0.05), ratio), ratio);
        assert_eq!(inventory_ratio(0, 100, Fx::from_num(0.05), ratio), Fx::ZERO);
    }

    #[test]
    fn microprice_leans_to_the_thin_side() {
        let t = TopOfBook {
            bid_price: 100,
            bid_qty: 3,
            ask_price: 101,
            ask_qty: 1,
            update_id: 0,
        };
        assert_eq!(fair_value(FairValue::Microprice, &t), Fx::from_num(100.75));
    }

    /// A few thousand values from a fixed-seed generator, with the edges.
    fn samples() -> Vec<i128> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut v = vec![
            0,
            1,
            -1,
            9_999,
            10_000,
            -10_001,
            i128::MAX,
            i128::MIN + 1,
            i128::MIN,
        ];
        for k in 0..4_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hi = (x >> (k % 64)) as i128;
            v.push((hi << 64 | (x.rotate_left(29) as i128)) >> (k % 120));
            v.push(-v[v.len() - 1]);
        }
        v
    }

    #[test]
    fn division_shortcuts_give_the_fixed_point_bits() {
        for n in samples() {
            let x = Fx::from_bits(n);
            if n != i128::MIN {
                assert_eq!(bps_of(x), x / TEN_THOUSAND, "{n}");
                assert_eq!(div_bits_small(n, 7), n / 7, "{n}");
            }
            assert_eq!(div_bits_small(n, 1), n.wrapping_div(1));
            let (a, b) = (
                (n as i64).unsigned_abs() >> 1,
                ((n >> 64) as i64).unsigned_abs() >> 1,
            );
            let (num, den) = (a.min(b), a.max(b).max(1));
            if num < den {
                assert_eq!(fraction(num, den), Fx::from_num(num) / Fx::from_num(den));
            }
            let (p, m) = (
                (n as i64) >> (n & 63),
                ((n >> 64) as i64).max(1) >> (n & 31),
            );
            let old = (Fx::from_num(p) / Fx::from_num(m.max(1))).clamp(-Fx::ONE, Fx::ONE);
            assert_eq!(inventory_ratio(p, m, Fx::ZERO, Fx::ZERO), old, "{p} {m}");
            let q = (p >> 1).max(1);
            let old = (Fx::from_num(q.unsigned_abs()) / Fx::from_num(m.max(1))).min(Fx::ONE);
            let cut = (Fx::from_num(18) * (Fx::ONE - Fx::from_num(0.6) * old))
                .floor()
                .to_num::<usize>()
                .max(1);
            let got = layer_counts(18, q, m);
            assert_eq!(got.0, cut, "{p} {m}");
        }
        let t = touch(1000, 1001);
        for (bq, aq) in [
            (3, 1),
            (1, 3),
            (7, 0),
            (i64::MAX / 2, i64::MAX / 2),
            (123_456, 7),
        ] {
            let t = TopOfBook {
                bid_qty: bq,
                ask_qty: aq,
                ..t
            };
            let total = bq as i128 + aq as i128;
            let w = Fx::from_num(bq) / Fx::from_num(total);
            let old = Fx::from_num(t.bid_price) + Fx::from_num(t.ask_price - t.bid_price) * w;
            assert_eq!(fair_value(FairValue::Microprice, &t), old);
        }
    }

    /// The ladders as built before one distance served both sides (every product taken).
    fn reference_ladders(
        cfg: &InstrumentConfig,
        top: &TopOfBook,
        fv: Fx,
        r: Fx,
        nb: usize,
        na: usize,
        shape: &Shape,
    ) -> (Vec<i64>, Vec<i64>) {
        let per_unit = match cfg.offset_unit {
            OffsetUnit::Bps => fv / TEN_THOUSAND,
            OffsetUnit::Ticks => Fx::ONE,
        };
        let to_ticks = |d: Fx| per_unit.saturating_mul(d);
        let min_spread = (fv / TEN_THOUSAND).saturating_mul(cfg.min_spread_bps);
        let d0 = to_ticks(cfg.layer_distance[0]);
        let first = shape.depth0.unwrap_or([
            d0.saturating_mul(shape.scale[0]),
            d0.saturating_mul(shape.scale[1]),
        ]);
        let both = first[0].saturating_add(first[1]);
        let extra = if both < min_spread {
            (min_spread - both) / 2
        } else {
            Fx::ZERO
        };
        let (mut b, mut a) = (Vec::<i64>::new(), Vec::<i64>::new());
        for (k, &dist) in cfg.layer_distance.iter().enumerate().take(cfg.layers) {
            let beyond = to_ticks(dist).saturating_sub(d0);
            let at = |s: usize| {
                first[s]
                    .saturating_add(beyond.saturating_mul(shape.scale[s]))
                    .saturating_add(extra)
            };
            if k < nb && k >= shape.pull[0] {
                let p = r.saturating_sub(at(0)).floor().saturating_to_num::<i64>();
                let p = p.min(top.ask_price - 1);
                if p > 0 && b.last().is_none_or(|&l| p < l) {
                    b.push(p);
                }
            }
            if k < na && k >= shape.pull[1] {
                let p = r.saturating_add(at(1)).ceil().saturating_to_num::<i64>();
                let p = p.max(top.bid_price + 1);
                if a.last().is_none_or(|&l| p > l) {
                    a.push(p);
                }
            }
        }
        (b, a)
    }

    #[test]
    fn ladders_match_the_reference_for_any_shape() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for unit in [OffsetUnit::Ticks, OffsetUnit::Bps] {
            let mut c = cfg("");
            c.offset_unit = unit;
            c.min_spread_bps = Fx::from_num(3);
            for _ in 0..2_000 {
                let bid = 500_000 + (next() % 1_000) as i64;
                let t = touch(bid, bid + 1 + (next() % 3) as i64);
                let fv = Fx::from_bits((i128::from(bid) << 64) + i128::from(next()));
                let r = fv + Fx::from_bits(i128::from(next() as i32) << 40);
                let k = |v: u64| match v % 4 {
                    0 => Fx::ONE,
                    1 => Fx::from_num(1.5),
                    _ => Fx::ONE + Fx::from_bits(i128::from(v >> 2)),
                };
                let k0 = k(next());
                let shape = Shape {
                    scale: [k0, if next() % 2 == 0 { k0 } else { k(next()) }],
                    pull: [(next() % 3) as usize, (next() % 3) as usize],
                    shift: Fx::ZERO,
                    depth0: (next() % 4 == 0).then(|| [Fx::from_num(3), Fx::from_num(5)]),
                };
                let (nb, na) = (1 + (next() % 5) as usize, 1 + (next() % 5) as usize);
                let (mut b, mut a) = (Ladder::default(), Ladder::default());
                build_ladders(&c, &t, fv, r, nb, na, &shape, &mut b, &mut a);
                let got: (Vec<i64>, Vec<i64>) = (
                    b.as_slice().iter().map(|l| l.price).collect(),
                    a.as_slice().iter().map(|l| l.price).collect(),
                );
                assert_eq!(got, reference_ladders(&c, &t, fv, r, nb, na, &shape));
            }
        }
    }

    #[test]
    fn layer_counts_thin_the_growing_side() {
        assert_eq!(layer_counts(18, 0, 100), (18, 18));
        assert_eq!(layer_counts(18, 50, 100), (12, 18)); // floor(18 · 0.7)
        assert_eq!(layer_counts(18, -100, 100), (18, 7)); // floor(18 · 0.4)
        assert_eq!(layer_counts(1, 100, 100), (1, 1));
    }

    #[test]
    fn post_only_guard_and_min_spread() {
        // Start offset 0 on a 1-tick market: both layer 0s would touch the other side.
        let c = cfg("");
        let mut c0 = c.clone();
        c0.layer_distance[0] = Fx::ZERO;
        let t = touch(1000, 1001);
        let (mut b, mut a) = (Ladder::default(), Ladder::default());
        // Reservation pushed far up: bids would cross the ask.
        build_ladders(
            &c0,
            &t,
            Fx::from_num(1000.5),
            Fx::from_num(1010),
            5,
            5,
            &Shape::NONE,
            &mut b,
            &mut a,
        );
        assert!(b.as_slice().iter().all(|l| l.price < t.ask_price));
        assert!(a.as_slice().iter().all(|l| l.price > t.bid_price));
        // Strictly ordered after de-duplication.
        assert!(b.as_slice().windows(2).all(|w| w[0].price > w[1].price));
        // Min spread 100 bps of 1000.5 = 10.005 ticks, d0 = 2: widened by 3.0025 each side.
        let mut cs = c.clone();
        cs.min_spread_bps = Fx::from_num(100);
        build_ladders(
            &cs,
            &t,
            Fx::from_num(1000.5),
            Fx::from_num(1000.5),
            5,
            5,
            &Shape::NONE,
            &mut b,
            &mut a,
        );
        let (b0, a0) = (b.as_slice()[0].price, a.as_slice()[0].price);
        assert_eq!((b0, a0), (995, 1006));
        assert!(a0 - b0 >= 11);
    }

    /// Fixed-point bits around the fast path's bound `2^(64 + int_bits)`: anything, below it,
    /// small, one, and just either side of it.
    fn fx_bits(int_bits: u32) -> impl proptest::strategy::Strategy<Value = i128> {
        let bound = 1i128 << (64 + int_bits);
        proptest::prop_oneof![
            proptest::num::i128::ANY,
            0i128..bound,
            0i128..(1i128 << 70),
            proptest::strategy::Just(1i128 << 64),
            (bound - 1000)..(bound + 1000),
        ]
    }

    proptest::proptest! {
        #[test]
        fn times_is_the_saturating_fixed_point_product(a in fx_bits(32), b in fx_bits(31)) {
            let (x, k) = (Fx::from_bits(a), Fx::from_bits(b));
            proptest::prop_assert_eq!(times(x, k), x.saturating_mul(k));
        }
    }
}
