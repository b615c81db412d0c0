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

/// Each group's members, `(quoted, hedge)` ids, resolved before the instruments are built (so a
/// hedge instrument's section may leave out `[instrument.quote]`): a key that names no
/// instrument or several, an empty list, or an instrument in two places is an error naming the
/// group's field.
pub(crate) type Members = Vec<(Vec<InstrumentId>, Vec<InstrumentId>)>;

/// See [`Members`].
pub(crate) fn members(
    hedges: &[HedgeSection],
    instruments: &[InstrumentSection],
) -> Result<Members, ConfigError> {
    let mut member = vec![false; instruments.len()];
    let mut out = Vec::with_capacity(hedges.len());
    for (g, h) in hedges.iter().enumerate() {
        let mut ids = |name: &str, keys: &[String]| -> Result<Vec<InstrumentId>, ConfigError> {
            let field = format!("hedge[{g}].{name}");
            if keys.is_empty() {
                return Err(invalid(field, "[]", "at least one instrument"));
            }
            let mut v = Vec::with_capacity(keys.len());
            for k in keys {
                let id = resolve(&field, k, instruments)?;
                if std::mem::replace(&mut member[id as usize], true) {
                    return Err(invalid(
                        field,
                        k,
                        "an instrument is in one hedge group, once (quoted or hedge)",
                    ));
                }
                v.push(id);
            }
            Ok(v)
        };
        let quoted = ids("quoted", &h.quoted)?;
        out.push((quoted, ids("hedge", &h.hedge)?));
    }
    Ok(out)
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

/// Validates every `[[hedge]]` (its members resolved by [`members`]) against the instruments.
pub(crate) fn validate(
    hedges: &[HedgeSection],
    members: Members,
    instruments: &[InstrumentConfig],
) -> Result<Vec<HedgeGroup>, ConfigError> {
    let mut out = Vec::with_capacity(hedges.len());
    for (g, (h, (quoted, hedge))) in hedges.iter().zip(members).enumerate() {
        let f = |name: &str| format!("hedge[{g}].{name}");
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

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, ReloadRefused};

    /// The shipped perpetual-hedged-on-spot config with its `[[hedge]]` lines edited by `edit`.
    fn shipped(edit: impl Fn(String) -> String) -> Result<Config, ConfigError> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/hedge-perp-spot-btcusdt.toml"
        );
        Config::from_toml(&edit(std::fs::read_to_string(path).unwrap()))
    }

    fn field_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn the_shipped_group_resolves_and_converts_exactly() {
        let c = shipped(|t| t).unwrap();
        let g = &c.hedges[0];
        assert_eq!(
            (g.name.as_str(), g.quoted.as_slice(), g.hedges.as_slice()),
            ("btc", &[0][..], &[1][..])
        );
        // 0.004 and 0.010 BTC in 10^-12.
        assert_eq!((g.band, g.hard_limit), (4_000_000_000, 10_000_000_000));
        assert_eq!(g.max_age_ns, 3_000_000_000);
        assert!(c.instruments[1].hedge_only && !c.instruments[0].hedge_only);
    }

    #[test]
    fn every_invalid_group_names_its_field() {
        let cases: [(&str, &str, &str); 11] = [
            (
                "hedge = [\"binance-spot:BTCUSDT\"]",
                "hedge = [\"binance-spot:ETHUSDT\"]",
                "hedge[0].hedge",
            ),
            (
                "quoted = [\"binance-usdm:BTCUSDT\"]",
                "quoted = [\"BTCUSDT\"]",
                "hedge[0].quoted",
            ),
            (
                "hedge = [\"binance-spot:BTCUSDT\"]",
                "hedge = [\"binance-usdm:BTCUSDT\"]",
                "hedge[0].hedge",
            ),
            (
                "hedge = [\"binance-spot:BTCUSDT\"]",
                "hedge = []",
                "hedge[0].hedge",
            ),
            ("band = \"0.004\"", "band = \"0\"", "hedge[0].band"),
            ("band = \"0.004\"", "band = \"abc\"", "hedge[0].band"),
            (
                "hard_limit = \"0.010\"",
                "hard_limit = \"0.004\"",
                "hedge[0].hard_limit",
            ),
            ("max_age_ms = 3000", "max_age_ms = 0", "hedge[0].max_age_ms"),
            (
                "max_hedges_per_min = 40",
                "max_hedges_per_min = 0",
                "hedge[0].max_hedges_per_min",
            ),
            (
                "cost_cap = \"10\"",
                "cost_cap = \"-1\"",
                "hedge[0].cost_cap",
            ),
            (
                "max_slippage_bps = 3.0",
                "max_slippage_bps = 0.0",
                "hedge[0].max_slippage_bps",
            ),
        ];
        for (from, to, field) in cases {
            let e = shipped(|t| {
                assert!(t.contains(from), "{from}");
                t.replacen(from, to, 1)
            })
            .unwrap_err();
            assert_eq!(field_of(e), field, "{to}");
        }
    }

    #[test]
    fn a_quoted_instrument_needs_its_quote_section_and_groups_do_not_share_instruments() {
        // Without the group, spot (no [instrument.quote]) is an instrument that quotes nothing.
        let e = shipped(|t| {
            let start = t.find("\n[[hedge]]").unwrap() + 1;
            let end = t[start..].find("# ----").unwrap() + start;
            format!("{}{}", &t[..start], &t[end..])
        })
        .unwrap_err();
        assert_eq!(field_of(e), "instrument[1].quote");
        // A second group over the same instruments.
        let e = shipped(|t| {
            let start = t.find("\n[[hedge]]").unwrap() + 1;
            let end = t[start..].find("# ----").unwrap() + start;
            let group = t[start..end].replace("name = \"btc\"", "name = \"again\"");
            format!("{}{group}{}", &t[..end], &t[end..])
        })
        .unwrap_err();
        assert_eq!(field_of(e), "hedge[1].quoted");
    }

    #[test]
    fn a_reload_keeps_the_members_and_may_change_the_limits() {
        let c = shipped(|t| t).unwrap();
        let wider = shipped(|t| t.replacen("band = \"0.004\"", "band = \"0.005\"", 1)).unwrap();
        assert_eq!(c.reload_refusal(&wider), None);
        let none = shipped(|t| {
            let start = t.find("\n[[hedge]]").unwrap() + 1;
            let end = t[start..].find("# ----").unwrap() + start;
            let plain = format!("{}{}", &t[..start], &t[end..]);
            // Spot quotes again: give it a quote section.
            plain.replacen(
                "[instrument.balances]",
                "[instrument.quote]\nfair_value = \"mid\"\noffset_unit = \"bps\"\nstart_offset = 2.0\n\
                 first_spacing = 1.0\nmultiplier = 1.2\nmax_spacing = 5.0\nlayers = 3\n\
                 layer_size = \"0.002\"\nmin_spread_bps = 0.5\nskew_coeff = 0.002\n\n[instrument.balances]",
                1,
            )
        })
        .unwrap();
        assert_eq!(c.reload_refusal(&none), Some(ReloadRefused::HedgeGroups));
    }
}
