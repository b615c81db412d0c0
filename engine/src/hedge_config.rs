//! `[[hedge]]`: hedge groups, as written and validated.
//!
//! A group names the instruments it quotes and the instruments it hedges on; its delta is the
//! sum of every member's position in base-asset units ([`crate::hedge::delta_units`]). See
//! `docs/STRATEGY.md`, "Hedging".

use crate::config::{fx, invalid, ConfigError, Fx, InstrumentConfig, InstrumentSection};
use crate::event::InstrumentId;
use crate::hedge::DELTA_SCALE;
use serde::Deserialize;

/// `[[hedge]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeSection {
    /// The group's name in reports (default `hedge<N>`).
    pub name: Option<String>,
    /// The instruments quoted: `"SYMBOL"` when the symbol is on one venue only, else
    /// `"venue:SYMBOL"` (`"binance-usdm:BTCUSDT"`).
    pub quoted: Vec<String>,
    /// The instruments hedged on, in order of preference when their costs tie. They quote no
    /// grid: their orders are the hedge's.
    pub hedge: Vec<String>,
    /// |delta| above this (base asset, decimal string) starts a passive hedge.
    pub band: String,
    /// |delta| at or above this (base asset) hedges actively at once; the quoted side that
    /// grows |delta| never holds more than this in open orders past the delta.
    pub hard_limit: String,
    /// A delta outside the band for this long (ms) is hedged actively.
    pub max_age_ms: u64,
    /// Hedge orders (passive and active) per minute, the group's whole budget.
    pub max_hedges_per_min: u32,
    /// Active hedges' worst-case cost per UTC day, the hedge instruments' quote currency
    /// (decimal string): each IOC is counted at its price limit plus the taker fee.
    pub cost_cap: String,
    /// An active hedge's price limit: this many bps of fair value past fair value.
    pub max_slippage_bps: f64,
    /// A passive hedge order is re-priced when the touch moved more than this many bps of
    /// fair value away from it (default 0: at every move).
    #[serde(default)]
    pub reprice_bps: f64,
}

/// A validated hedge group.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgeGroup {
    /// Its name.
    pub name: String,
    /// Quoted instruments (ids).
    pub quoted: Vec<InstrumentId>,
    /// Hedge instruments (ids), in order of preference.
    pub hedges: Vec<InstrumentId>,
    /// Band, delta units (10^-[`DELTA_SCALE`] of the base asset).
    pub band: i128,
    /// Hard limit, delta units.
    pub hard_limit: i128,
    /// Age limit, ns.
    pub max_age_ns: i64,
    /// Hedge orders per minute.
    pub max_per_min: u32,
    /// Daily cost cap, quote currency.
    pub cost_cap: Fx,
    /// Active hedges' price limit, bps of fair value.
    pub slippage_bps: Fx,
    /// Passive re-pricing distance, bps of fair value.
    pub reprice_bps: Fx,
}

/// The instrument a key names: `"venue:SYMBOL"`, or a `"SYMBOL"` on one venue only.
fn resolve(
    field: &str,
    key: &str,
    instruments: &[InstrumentSection],
) -> Result<InstrumentId, ConfigError> {
    let (venue, symbol) = match key.split_once(':') {
        Some((v, s)) => (Some(v.trim()), s.trim()),
        None => (None, key.trim()),
    };
    let found: Vec<usize> = instruments
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.symbol.eq_ignore_ascii_case(symbol)
                && venue.is_none_or(|v| v.eq_ignore_ascii_case(s.venue.name()))
        })
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [one] => Ok(*one as InstrumentId),
        [] => Err(invalid(
            field,
            key,
            "names no [[instrument]] (\"SYMBOL\" or \"venue:SYMBOL\")",
        )),
        _ => Err(invalid(
            field,
            key,
            "names instruments on several venues: write \"venue:SYMBOL\"",
        )),
    }
}

/// The hedge instruments of `hedges`, by instrument index (so an instrument's section may
/// leave out `[instrument.quote]`). Keys that name nothing are reported by [`validate`].
pub(crate) fn hedge_instruments(
    hedges: &[HedgeSection],
    instruments: &[InstrumentSection],
) -> Vec<bool> {
    let mut out = vec![false; instruments.len()];
    for h in hedges {
        for k in &h.hedge {
            if let Ok(id) = resolve("", k, instruments) {
                out[id as usize] = true;
            }
        }
    }
    out
}

/// A decimal amount of the base asset in delta units, exactly.
fn base_amount(field: &str, v: &str) -> Result<i128, ConfigError> {
    crate::instrument::signed_decimal_to_units(v.trim().as_bytes(), DELTA_SCALE as u8)
        .map(i128::from)
        .map_err(|_| {
            invalid(
                field,
                v,
                "a decimal amount of the base asset with at most 12 decimals",
            )
        })
}

/// Validates every `[[hedge]]` against the instruments built from `sections`.
pub(crate) fn validate(
    hedges: &[HedgeSection],
    sections: &[InstrumentSection],
    instruments: &[InstrumentConfig],
) -> Result<Vec<HedgeGroup>, ConfigError> {
    let mut out = Vec::with_capacity(hedges.len());
    let mut member = vec![None::<usize>; instruments.len()];
    for (g, h) in hedges.iter().enumerate() {
        let f = |name: &str| format!("hedge[{g}].{name}");
        let mut ids = |name: &str, keys: &[String]| -> Result<Vec<InstrumentId>, ConfigError> {
            if keys.is_empty() {
                return Err(invalid(f(name), "[]", "at least one instrument"));
            }
            let mut v = Vec::with_capacity(keys.len());
            for k in keys {
                let id = resolve(&f(name), k, sections)?;
                if let Some(other) = member[id as usize] {
                    return Err(invalid(
                        f(name),
                        k,
                        if other == g {
                            "an instrument is in a group once"
                        } else {
                            "an instrument is in one hedge group only"
                        },
                    ));
                }
                member[id as usize] = Some(g);
                v.push(id);
            }
            Ok(v)
        };
        let quoted = ids("quoted", &h.quoted)?;
        let hedge = ids("hedge", &h.hedge)?;
        let all = || {
            quoted
                .iter()
                .chain(&hedge)
                .map(|&i| &instruments[i as usize])
        };
        let base = instruments[quoted[0] as usize].instrument.base_asset;
        for c in all() {
            if c.instrument.base_asset != base {
                return Err(invalid(
                    f("hedge"),
                    c.instrument.symbol.as_str(),
                    "every instrument of a group must have the same base asset (its delta is \
                     summed in it)",
                ));
            }
            if c.instrument.kind != crate::InstrumentKind::Inverse
                && c.instrument.lot.scale() > DELTA_SCALE as u8
            {
                return Err(invalid(
                    f("hedge"),
                    c.instrument.symbol.as_str(),
                    "a lot of at most 12 decimals (delta is counted in 10^-12 of the base asset)",
                ));
            }
        }
        let quote = instruments[hedge[0] as usize].instrument.quote_asset;
        if let Some(c) = hedge
            .iter()
            .map(|&i| &instruments[i as usize])
            .find(|c| c.instrument.quote_asset != quote)
        {
            return Err(invalid(
                f("hedge"),
                c.instrument.symbol.as_str(),
                "every hedge instrument of a group must have the same quote asset (the cost cap \
                 is in it)",
            ));
        }
        let band = base_amount(&f("band"), &h.band)?;
        if band <= 0 {
            return Err(invalid(f("band"), &h.band, "must be > 0"));
        }
        let hard_limit = base_amount(&f("hard_limit"), &h.hard_limit)?;
        if hard_limit <= band {
            return Err(invalid(f("hard_limit"), &h.hard_limit, "must be > band"));
        }
        if h.max_age_ms == 0 || h.max_age_ms > 3_600_000 {
            return Err(invalid(
                f("max_age_ms"),
                h.max_age_ms,
                "must be in [1, 3600000]",
            ));
        }
        if h.max_hedges_per_min == 0 || h.max_hedges_per_min > 10_000 {
            return Err(invalid(
                f("max_hedges_per_min"),
                h.max_hedges_per_min,
                "must be in [1, 10000]",
            ));
        }
        let cost_cap = h
            .cost_cap
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 1e12)
            .and_then(Fx::checked_from_num)
            .ok_or_else(|| {
                invalid(
                    f("cost_cap"),
                    &h.cost_cap,
                    "a decimal amount of the quote currency, 0 to 10^12",
                )
            })?;
        let slippage_bps = fx(&f("max_slippage_bps"), h.max_slippage_bps)?;
        if slippage_bps <= 0 || slippage_bps > 500 {
            return Err(invalid(
                f("max_slippage_bps"),
                h.max_slippage_bps,
                "must be in (0, 500]",
            ));
        }
        let reprice_bps = fx(&f("reprice_bps"), h.reprice_bps)?;
        if !(Fx::ZERO..=Fx::from_num(100)).contains(&reprice_bps) {
            return Err(invalid(
                f("reprice_bps"),
                h.reprice_bps,
                "must be in [0, 100]",
            ));
        }
        let name = h.name.clone().unwrap_or_else(|| format!("hedge{g}"));
        if name.trim().is_empty() || out.iter().any(|o: &HedgeGroup| o.name == name) {
            return Err(invalid(f("name"), &name, "a name of its own, not empty"));
        }
        out.push(HedgeGroup {
            name,
            quoted,
            hedges: hedge,
            band,
            hard_limit,
            max_age_ns: h.max_age_ms as i64 * 1_000_000,
            max_per_min: h.max_hedges_per_min,
            cost_cap,
            slippage_bps,
            reprice_bps,
        });
    }
    Ok(out)
}
