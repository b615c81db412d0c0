//! Spreads that adapt (`[instrument.quote.adapt]`): the grid's offsets widen with realized
//! volatility and with order-flow toxicity, the side the flow runs at is widened or pulled, the
//! reservation price leans toward the side that earns funding, and an optional model
//! (Guéant–Lehalle–Fernandez-Tapia or Avellaneda–Stoikov) sets layer 0's depth on each side
//! instead of the fixed start offset.
//!
//! Everything is deterministic fixed point on event time (the estimators are in `signals`):
//! the same events give the same quotes, bit for bit. Every figure is bounded by its config;
//! nothing here allocates after construction.
//!
//! The output is a [`Shape`] per requote: per side a scale on the grid's distances, a number
//! of near layers pulled, and a shift of the reservation price; with a model, layer 0's depth
//! per side. `pricer::build_ladders` applies it.

use crate::config::{fx, invalid, ConfigError, Fx};
use crate::event::Side;
use crate::pricer::TEN_THOUSAND;
use crate::signals::{
    avellaneda_stoikov, bps_to_ticks, glft, GlftParams, IntensityFit, Toxicity, VolEstimator,
};
use serde::Deserialize;

/// Where layer 0 sits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteModel {
    /// The grid's `start_offset` (scaled by volatility and toxicity) around the skewed
    /// reservation price.
    #[default]
    Grid,
    /// Guéant–Lehalle–Fernandez-Tapia: half spread and inventory skew from volatility, the
    /// fitted order-arrival intensity and risk aversion `gamma` (infinite horizon).
    Glft,
    /// Avellaneda–Stoikov over `horizon_s`: reservation price and half spread from the same.
    AvellanedaStoikov,
}

impl QuoteModel {
    /// The config's name.
    pub fn name(self) -> &'static str {
        match self {
            QuoteModel::Grid => "grid",
            QuoteModel::Glft => "glft",
            QuoteModel::AvellanedaStoikov => "avellaneda_stoikov",
        }
    }
}

/// `[instrument.quote.adapt]` as written. Every feature is off at its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptSection {
    /// Half-life of the realized-volatility estimate, ms of event time.
    #[serde(default = "d_vol_half_life")]
    pub vol_half_life_ms: u64,
    /// Volatility (bps per √s) at or under which the grid is as configured.
    #[serde(default = "d_vol_ref")]
    pub vol_ref_bps: f64,
    /// The most volatility widens the offsets: `scale = clamp(σ / vol_ref, 1, vol_max_scale)`
    /// (1: off).
    #[serde(default = "one")]
    pub vol_max_scale: f64,
    /// VPIN volume bucket, base units (a decimal string on the market data's quantity grid);
    /// absent: no VPIN.
    pub vpin_bucket: Option<String>,
    /// Buckets VPIN is taken over.
    #[serde(default = "d_vpin_buckets")]
    pub vpin_buckets: usize,
    /// VPIN above which the offsets widen.
    #[serde(default = "d_vpin_threshold")]
    pub vpin_threshold: f64,
    /// Widening at VPIN 1: `× (1 + vpin_widen · (vpin − threshold) / (1 − threshold))`.
    #[serde(default)]
    pub vpin_widen: f64,
    /// Half-life of the trade-imbalance estimate, ms.
    #[serde(default = "d_imbalance_half_life")]
    pub imbalance_half_life_ms: u64,
    /// |imbalance| above which the side the flow runs at widens.
    #[serde(default = "d_imbalance_threshold")]
    pub imbalance_threshold: f64,
    /// Widening of that side at |imbalance| 1, as for VPIN.
    #[serde(default)]
    pub imbalance_widen: f64,
    /// |imbalance| at or above which that side's `pull_layers` nearest layers are pulled
    /// (absent: never).
    pub imbalance_pull: Option<f64>,
    /// Layers pulled.
    #[serde(default = "d_pull_layers")]
    pub pull_layers: usize,
    /// Reservation shift per bp of funding rate, bps (toward the side that earns funding:
    /// positive funding, longs pay, the quotes lean short). 0: off.
    #[serde(default)]
    pub funding_skew: f64,
    /// The most the funding shift moves the reservation price, bps.
    #[serde(default = "d_funding_max")]
    pub funding_max_bps: f64,
    /// A mark price older than this (ms of event time) is not used.
    #[serde(default = "d_funding_stale")]
    pub funding_stale_ms: u64,
    /// Where layer 0 sits: `grid`, `glft` or `avellaneda_stoikov`.
    #[serde(default)]
    pub model: QuoteModel,
    /// Risk aversion γ of the models, per tick per layer of inventory.
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    /// ξ of GLFT (default γ).
    pub xi: Option<f64>,
    /// Avellaneda–Stoikov's horizon, s.
    #[serde(default = "d_horizon")]
    pub horizon_s: f64,
    /// Distance bins of the intensity fit.
    #[serde(default = "d_intensity_bins")]
    pub intensity_bins: usize,
    /// Width of one bin, ticks.
    #[serde(default = "d_intensity_bin_ticks")]
    pub intensity_bin_ticks: i64,
    /// Half-life of the intensity counts, ms.
    #[serde(default = "d_intensity_half_life")]
    pub intensity_half_life_ms: u64,
    /// A trade's depth is measured from the fair value at the start of its window, ms.
    #[serde(default = "d_intensity_window")]
    pub intensity_window_ms: u64,
}

fn one() -> f64 {
    1.0
}
fn d_vol_half_life() -> u64 {
    60_000
}
fn d_vol_ref() -> f64 {
    1.0
}
fn d_vpin_buckets() -> usize {
    20
}
fn d_vpin_threshold() -> f64 {
    0.5
}
fn d_imbalance_half_life() -> u64 {
    5_000
}
fn d_imbalance_threshold() -> f64 {
    0.3
}
fn d_pull_layers() -> usize {
    1
}
fn d_funding_max() -> f64 {
    5.0
}
fn d_funding_stale() -> u64 {
    10_000
}
fn d_gamma() -> f64 {
    0.1
}
fn d_horizon() -> f64 {
    60.0
}
fn d_intensity_bins() -> usize {
    16
}
fn d_intensity_bin_ticks() -> i64 {
    10
}
fn d_intensity_half_life() -> u64 {
    120_000
}
fn d_intensity_window() -> u64 {
    1_000
}

/// The validated `[instrument.quote.adapt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdaptConfig {
    /// Volatility half-life, ns.
    pub vol_half_life_ns: i64,
    /// σ reference, bps per √s.
    pub vol_ref_bps: Fx,
    /// Volatility widening cap (1: off).
    pub vol_max_scale: Fx,
    /// VPIN bucket, book units (`None`: off).
    pub vpin_bucket: Option<i64>,
    /// VPIN buckets.
    pub vpin_buckets: usize,
    /// VPIN threshold.
    pub vpin_threshold: Fx,
    /// VPIN widening.
    pub vpin_widen: Fx,
    /// Imbalance half-life, ns.
    pub imbalance_half_life_ns: i64,
    /// Imbalance threshold.
    pub imbalance_threshold: Fx,
    /// Imbalance widening.
    pub imbalance_widen: Fx,
    /// Imbalance pull level.
    pub imbalance_pull: Option<Fx>,
    /// Layers pulled.
    pub pull_layers: usize,
    /// Funding skew, bps per bp.
    pub funding_skew: Fx,
    /// Funding shift cap, bps.
    pub funding_max_bps: Fx,
    /// Mark price staleness, ns.
    pub funding_stale_ns: i64,
    /// Layer 0's model.
    pub model: QuoteModel,
    /// γ.
    pub gamma: Fx,
    /// ξ.
    pub xi: Fx,
    /// Avellaneda–Stoikov horizon, s.
    pub horizon_s: Fx,
    /// Intensity bins.
    pub intensity_bins: usize,
    /// Intensity bin width, ticks.
    pub intensity_bin_ticks: i64,
    /// Intensity half-life, ns.
    pub intensity_half_life_ns: i64,
    /// Intensity window, ns.
    pub intensity_window_ns: i64,
}

const MS: i64 = 1_000_000;
/// An hour, ms: the longest half-life or window accepted.
const HOUR_MS: u64 = 3_600_000;

/// Validates `[instrument.quote.adapt]`; `book_units` parses the VPIN bucket on the market
/// data's quantity grid. `f` names a field for the error.
pub(crate) fn validate(
    a: &AdaptSection,
    f: &dyn Fn(&str) -> String,
    book_units: &dyn Fn(&str) -> Option<i64>,
) -> Result<AdaptConfig, ConfigError> {
    let ms = |name: &str, v: u64| -> Result<i64, ConfigError> {
        if v == 0 || v > HOUR_MS {
            return Err(invalid(f(name), v, "must be in [1, 3600000] ms"));
        }
        Ok(v as i64 * MS)
    };
    let within = |name: &str, v: f64, lo: f64, hi: f64, rule: &'static str| {
        let x = fx(&f(name), v)?;
        if v < lo || v > hi {
            return Err(invalid(f(name), v, rule));
        }
        Ok(x)
    };
    let vpin_bucket = match &a.vpin_bucket {
        None => None,
        Some(s) => match book_units(s) {
            Some(u) if u > 0 => Some(u),
            _ => {
                return Err(invalid(
                    f("quote.adapt.vpin_bucket"),
                    s,
                    "must be a positive quantity on the market data's grid",
                ))
            }
        },
    };
    if !(1..=64).contains(&a.vpin_buckets) {
        return Err(invalid(
            f("quote.adapt.vpin_buckets"),
            a.vpin_buckets,
            "must be in [1, 64]",
        ));
    }
    if !(2..=32).contains(&a.intensity_bins) {
        return Err(invalid(
            f("quote.adapt.intensity_bins"),
            a.intensity_bins,
            "must be in [2, 32]",
        ));
    }
    if !(1..=1_000_000).contains(&a.intensity_bin_ticks) {
        return Err(invalid(
            f("quote.adapt.intensity_bin_ticks"),
            a.intensity_bin_ticks,
            "must be in [1, 1000000]",
        ));
    }
    if a.pull_layers == 0 || a.pull_layers > crate::config::MAX_LAYERS {
        return Err(invalid(
            f("quote.adapt.pull_layers"),
            a.pull_layers,
            "must be in [1, 64]",
        ));
    }
    let gamma = within(
        "quote.adapt.gamma",
        a.gamma,
        1e-9,
        1e6,
        "must be in [1e-9, 1e6]",
    )?;
    let xi = match a.xi {
        Some(x) => within("quote.adapt.xi", x, 0.0, 1e6, "must be in [0, 1e6]")?,
        None => gamma,
    };
    let threshold = |name: &str, v: f64| within(name, v, 0.0, 0.99, "must be in [0, 0.99]");
    Ok(AdaptConfig {
        vol_half_life_ns: ms("quote.adapt.vol_half_life_ms", a.vol_half_life_ms)?,
        vol_ref_bps: within(
            "quote.adapt.vol_ref_bps",
            a.vol_ref_bps,
            1e-6,
            1e4,
            "must be in [1e-6, 1e4]",
        )?,
        vol_max_scale: within(
            "quote.adapt.vol_max_scale",
            a.vol_max_scale,
            1.0,
            20.0,
            "must be in [1, 20]",
        )?,
        vpin_bucket,
        vpin_buckets: a.vpin_buckets,
        vpin_threshold: threshold("quote.adapt.vpin_threshold", a.vpin_threshold)?,
        vpin_widen: within(
            "quote.adapt.vpin_widen",
            a.vpin_widen,
            0.0,
            20.0,
            "must be in [0, 20]",
        )?,
        imbalance_half_life_ns: ms(
            "quote.adapt.imbalance_half_life_ms",
            a.imbalance_half_life_ms,
        )?,
        imbalance_threshold: threshold("quote.adapt.imbalance_threshold", a.imbalance_threshold)?,
        imbalance_widen: within(
            "quote.adapt.imbalance_widen",
            a.imbalance_widen,
            0.0,
            20.0,
            "must be in [0, 20]",
        )?,
        imbalance_pull: match a.imbalance_pull {
            Some(p) => Some(within(
                "quote.adapt.imbalance_pull",
                p,
                0.01,
                1.0,
                "must be in [0.01, 1]",
            )?),
            None => None,
        },
        pull_layers: a.pull_layers,
        funding_skew: within(
            "quote.adapt.funding_skew",
            a.funding_skew,
            -100.0,
            100.0,
            "must be in [-100, 100]",
        )?,
        funding_max_bps: within(
            "quote.adapt.funding_max_bps",
            a.funding_max_bps,
            0.0,
            100.0,
            "must be in [0, 100]",
        )?,
        funding_stale_ns: ms("quote.adapt.funding_stale_ms", a.funding_stale_ms)?,
        model: a.model,
        gamma,
        xi,
        horizon_s: within(
            "quote.adapt.horizon_s",
            a.horizon_s,
            0.001,
            86_400.0,
            "must be in [0.001, 86400]",
        )?,
        intensity_bins: a.intensity_bins,
        intensity_bin_ticks: a.intensity_bin_ticks,
        intensity_half_life_ns: ms(
            "quote.adapt.intensity_half_life_ms",
            a.intensity_half_life_ms,
        )?,
        intensity_window_ns: ms("quote.adapt.intensity_window_ms", a.intensity_window_ms)?,
    })
}

/// How this requote's ladders differ from the configured grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Scale on every layer's distance, by [`Side`] (≥ 1).
    pub(crate) scale: [Fx; 2],
    /// Nearest layers left out, by side.
    pub(crate) pull: [usize; 2],
    /// Added to the reservation price, ticks.
    pub(crate) shift: Fx,
    /// A model's layer 0 depth from fair value, ticks, by side (the grid's spacing follows);
    /// `None`: the grid's start offset around the skewed reservation price.
    pub(crate) depth0: Option<[Fx; 2]>,
}

impl Shape {
    /// The configured grid, unchanged.
    pub(crate) const NONE: Shape = Shape {
        scale: [Fx::ONE, Fx::ONE],
        pull: [0, 0],
        shift: Fx::ZERO,
        depth0: None,
    };
}

/// The estimators of one instrument.
#[derive(Debug, Clone)]
pub(crate) struct AdaptState {
    vol: VolEstimator,
    toxicity: Option<Toxicity>,
    intensity: IntensityFit,
    /// The last intensity fit (A per s, κ per tick) and when it was taken.
    fit: Option<(Fx, Fx)>,
    fit_ns: i64,
    /// σ (bps per √s, once warmed up) as last read from the estimator, and when.
    sigma: Option<Fx>,
    sigma_ns: i64,
    /// σ / `vol_ref_bps` as last computed, with the σ and `vol_ref_bps` it was computed from: σ
    /// changes at most every [`SIGMA_REFRESH_NS`], so most requotes reuse the quotient.
    vol_quot: Option<(Fx, Fx, Fx)>,
    /// The fair value a trade's depth is measured from, and when it was set.
    window_fv: Option<Fx>,
    window_ns: i64,
    /// Statistics for the report: requotes priced with the section ([`AdaptState::shape`]
    /// calls), requotes widened by each signal, sides pulled, and requotes whose layer 0 a
    /// model set.
    pub(crate) requotes: u64,
    pub(crate) widened_vol: u64,
    pub(crate) widened_toxic: u64,
    pub(crate) pulled: u64,
    pub(crate) modelled: u64,
    /// The last shape's scale and pulled layers, by side (the configured grid until the first
    /// requote).
    pub(crate) scale: [Fx; 2],
    pub(crate) pull: [usize; 2],
}

/// The intensity fit is refreshed at most this often (it costs about a microsecond).
const REFIT_NS: i64 = 1_000_000_000;
/// σ is re-read from the estimator at most this often (event time).
const SIGMA_REFRESH_NS: i64 = 100_000_000;

impl AdaptState {
    /// Builds the estimators (every buffer inline).
    pub(crate) fn new(c: &AdaptConfig) -> Self {
        AdaptState {
            vol: VolEstimator::new(c.vol_half_life_ns),
            toxicity: c
                .vpin_bucket
                .map(|b| Toxicity::new(b, c.vpin_buckets, c.imbalance_half_life_ns))
                .or_else(|| {
                    // Imbalance without VPIN still needs the trade flow (a bucket that never
                    // fills is never read).
                    (c.imbalance_widen > 0 || c.imbalance_pull.is_some())
                        .then(|| Toxicity::new(i64::MAX, 1, c.imbalance_half_life_ns))
                }),
            intensity: IntensityFit::new(
                c.intensity_bins,
                c.intensity_bin_ticks,
                c.intensity_half_life_ns,
            ),
            fit: None,
            fit_ns: i64::MIN,
            sigma: None,
            sigma_ns: i64::MIN,
            vol_quot: None,
            window_fv: None,
            window_ns: i64::MIN,
            requotes: 0,
            widened_vol: 0,
            widened_toxic: 0,
            pulled: 0,
            modelled: 0,
            scale: Shape::NONE.scale,
            pull: Shape::NONE.pull,
        }
    }

    /// A public trade: the flow estimators, and its depth from the window's fair value for the
    /// intensity fit.
    pub(crate) fn on_trade(&mut self, now: i64, price: i64, qty: i64, aggressor: Side) {
        if let Some(t) = &mut self.toxicity {
            t.on_trade(now, qty, aggressor == Side::Bid);
        }
        if let Some(fv) = self.window_fv {
            let d = (Fx::saturating_from_num(price).saturating_sub(fv))
                .abs()
                .saturating_to_num::<i64>();
            self.intensity.on_trade(now, d);
        }
    }

    /// The requote's fair value: volatility, the intensity window, the periodic refit.
    pub(crate) fn on_fair_value(&mut self, c: &AdaptConfig, now: i64, fv: Fx) {
        self.vol.on_mid(now, fv);
        // σ moves on a half-life of seconds; its square root costs more than the rest of the
        // requote's pricing, so it is read at most every SIGMA_REFRESH_NS of event time.
        if now.saturating_sub(self.sigma_ns) >= SIGMA_REFRESH_NS {
            self.sigma = self
                .vol
                .warmed_up()
                .then(|| self.vol.sigma_bps_per_sqrt_s());
            self.sigma_ns = now;
        }
        if self.window_fv.is_none() || now.saturating_sub(self.window_ns) >= c.intensity_window_ns {
            self.window_fv = Some(fv);
            self.window_ns = now;
        }
        if c.model != QuoteModel::Grid && now.saturating_sub(self.fit_ns) >= REFIT_NS {
            self.fit = self.intensity.fit();
            self.fit_ns = now;
        }
    }

    /// σ, bps per √s, once warmed up.
    pub(crate) fn sigma_bps(&self) -> Option<Fx> {
        self.sigma
    }

    /// This requote's shape. `fv` ticks; `q` the inventory in layers (position / layer size);
    /// `funding_rate_e8` the latest funding rate if fresh; `max_depth` caps a model's depth,
    /// ticks.
    pub(crate) fn shape(
        &mut self,
        c: &AdaptConfig,
        now: i64,
        fv: Fx,
        q: Fx,
        funding_rate_e8: Option<i64>,
        max_depth: Fx,
    ) -> Shape {
        let mut s = Shape::NONE;
        self.requotes += 1;
        let sigma = self.sigma_bps();
        // Volatility (the grid only: a model takes σ itself).
        if c.model == QuoteModel::Grid && c.vol_max_scale > Fx::ONE {
            if let Some(sig) = sigma {
                let quot = match self.vol_quot {
                    Some((s, r, q)) if s == sig && r == c.vol_ref_bps => q,
                    _ => {
                        let q = crate::signals::fx_div(sig, c.vol_ref_bps);
                        self.vol_quot = Some((sig, c.vol_ref_bps, q));
                        q
                    }
                };
                let k = quot.clamp(Fx::ONE, c.vol_max_scale);
                if k > Fx::ONE {
                    self.widened_vol += 1;
                }
                s.scale = [k, k];
            }
        }
        // Toxicity: VPIN widens both sides, the imbalance the side the flow runs at.
        if let Some(t) = &self.toxicity {
            let excess = |v: Fx, thr: Fx| {
                if v > thr {
                    crate::signals::fx_div(v - thr, Fx::ONE - thr)
                } else {
                    Fx::ZERO
                }
            };
            let mut toxic = false;
            if c.vpin_widen > 0 {
                if let Some(v) = t.vpin() {
                    let k = Fx::ONE + c.vpin_widen.saturating_mul(excess(v, c.vpin_threshold));
                    if k > Fx::ONE {
                        toxic = true;
                        s.scale = s.scale.map(|x| x.saturating_mul(k));
                    }
                }
            }
            let imb = t.imbalance(now);
            // Buyers lifting the offer: the price runs up, through our asks.
            let at_risk = if imb > 0 { Side::Ask } else { Side::Bid };
            let e = excess(imb.abs(), c.imbalance_threshold);
            if c.imbalance_widen > 0 && e > 0 {
                toxic = true;
                let k = &mut s.scale[at_risk as usize];
                *k = k.saturating_mul(Fx::ONE + c.imbalance_widen.saturating_mul(e));
            }
            if c.imbalance_pull.is_some_and(|p| imb.abs() >= p) {
                s.pull[at_risk as usize] = c.pull_layers;
                self.pulled += 1;
            }
            if toxic {
                self.widened_toxic += 1;
            }
        }
        // Funding: lean toward the side that earns it.
        if c.funding_skew != 0 {
            if let Some(r) = funding_rate_e8 {
                // The rate in bps is r_e8 / 10^4.
                let rate_bps = Fx::saturating_from_num(r) / TEN_THOUSAND;
                let bps = (-c.funding_skew.saturating_mul(rate_bps))
                    .clamp(-c.funding_max_bps, c.funding_max_bps);
                s.shift = fv.saturating_mul(bps) / TEN_THOUSAND;
            }
        }
        // The model's layer 0.
        if c.model != QuoteModel::Grid {
            if let (Some(sig), Some((a, kappa))) = (sigma, self.fit) {
                let sigma_ticks = bps_to_ticks(sig, fv);
                let (bid, ask) = match c.model {
                    QuoteModel::Glft => {
                        let p = GlftParams {
                            gamma: c.gamma,
                            delta: Fx::ONE,
                            xi: c.xi,
                        };
                        let (half, skew) = glft(&p, 0, sigma_ticks, a, kappa);
                        let sk = skew.saturating_mul(q);
                        (half.saturating_add(sk), half.saturating_sub(sk))
                    }
                    _ => {
                        let (offset, half) =
                            avellaneda_stoikov(c.gamma, sigma_ticks, kappa, c.horizon_s, q);
                        (half.saturating_sub(offset), half.saturating_add(offset))
                    }
                };
                let clampd = |d: Fx| d.clamp(Fx::ZERO, max_depth);
                if bid < Fx::MAX && ask < Fx::MAX {
                    s.depth0 = Some([clampd(bid), clampd(ask)]);
                    self.modelled += 1;
                }
            }
        }
        self.scale = s.scale;
        self.pull = s.pull;
        s
    }
}

/// The inventory in layers: `pos / layer_size`.
pub(crate) fn inventory_in_layers(pos: i64, layer_size: i64) -> Fx {
    // The bits of `fx_div(Fx::from_num(pos), Fx::from_num(layer_size.max(1)))`: pos · 2⁶⁴ over
    // the size, rounded towards zero, in one 128-bit division rather than a 256-bit one; never
    // saturates (|pos / size| ≤ 2⁶³, and −2⁶³ fits).
    Fx::from_bits((i128::from(pos) << 64) / i128::from(layer_size.max(1)))
}

#[cfg(test)]
#[path = "adapt_tests.rs"]
mod tests;
