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
            let w = Fx::from_num(t.bid_qty) / Fx::from_num(total);
            Fx::from_num(t.bid_price) + Fx::from_num(t.ask_price - t.bid_price) * w
        }
    }
}

/// Inventory ratio `pos / net_max`, clamped to [-1, 1], with hysteresis against `last`.
#[inline]
pub(crate) fn inventory_ratio(pos: i64, net_max: i64, hysteresis: Fx, last: Fx) -> Fx {
    let raw = (Fx::from_num(pos) / Fx::from_num(net_max.max(1))).clamp(-Fx::ONE, Fx::ONE);
    // Flat is flat: never carry a stale skew into a flat book.
    if pos != 0 && (raw - last).abs() < hysteresis {
        last
    } else {
        raw
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
    let ratio = (Fx::from_num(pos.unsigned_abs()) / Fx::from_num(net_max.max(1))).min(Fx::ONE);
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
    // One divide per requote; every distance after it is a multiply.
    let per_unit = match cfg.offset_unit {
        OffsetUnit::Bps => fv / TEN_THOUSAND,
        OffsetUnit::Ticks => Fx::ONE,
    };
    let to_ticks = |d: Fx| per_unit.saturating_mul(d);
    let min_spread = (fv / TEN_THOUSAND).saturating_mul(cfg.min_spread_bps);
    let d0 = to_ticks(cfg.layer_distance[0]);
    // Layer 0's distance per side: the model's depth, or the (scaled) start offset.
    let first = match shape.depth0 {
        Some(d) => d,
        None => [
            d0.saturating_mul(shape.scale[0]),
            d0.saturating_mul(shape.scale[1]),
        ],
    };
    // Widen symmetrically around r so that layer 0s are at least min_spread apart.
    let both = first[0].saturating_add(first[1]);
    let extra = if both < min_spread {
        (min_spread - both) / 2
    } else {
        Fx::ZERO
    };
    let n = cfg.layers.min(MAX_LAYERS);
    for (k, &dist) in cfg.layer_distance.iter().enumerate().take(n) {
        // Beyond layer 0, the grid's spacing (scaled).
        let beyond = to_ticks(dist).saturating_sub(d0);
        let at = |s: usize| {
            first[s]
                .saturating_add(beyond.saturating_mul(shape.scale[s]))
                .saturating_add(extra)
        };
        if k < bid_layers && k >= shape.pull[0] {
            let mut p = r.saturating_sub(at(0)).floor().saturating_to_num::<i64>();
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
        if k < ask_layers && k >= shape.pull[1] {
            let mut p = r.saturating_add(at(1)).ceil().saturating_to_num::<i64>();
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
}
