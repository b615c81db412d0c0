//! Parameter sweeps: one config, a grid of values for some of its keys, every combination
//! backtested over the same market data decoded once ([`crate::backtest::Decoded`]), in parallel.
//!
//! A key names an engine parameter as the config file writes it:
//!
//! | key | sets |
//! |---|---|
//! | `quote.start_offset`, `risk.cancel_budget_per_min`, ... | that key of every `[[instrument]]` |
//! | `instrument[1].quote.layers` | that key of one instrument (by its place in the file) |
//! | `engine.orders_per_10s` | a key of `[engine]` |
//!
//! Every combination is validated as a whole config before anything runs, and must keep the
//! instruments (symbols, grids) of the base: the market data is decoded for those. Each row is the
//! report of a backtest of that config ([`crate::report::Report`]), equal to what
//! `ringmaker backtest` with that config prints (the decoding's counters included).

use crate::backtest::{Decoded, Settings};
use crate::config::RunConfig;
use crate::host::NoRecorder;
use crate::report::Report;
use anyhow::{bail, Context};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One swept key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The key as given.
    pub key: String,
    /// Its values, in the order given.
    pub values: Vec<toml::Value>,
}

impl Axis {
    /// From `key=v1,v2,...` (`--set`). Each value is read as TOML (`0.5`, `100`, `true`,
    /// `"mid"`); a bare word is a string.
    pub fn parse(s: &str) -> anyhow::Result<Axis> {
        let (key, values) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected KEY=V1,V2,..."))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
        {
            bail!("--set {s:?}: {key:?} is not a config key (e.g. quote.start_offset)");
        }
        let values = values
            .split(',')
            .map(|v| {
                let v = v.trim();
                anyhow::ensure!(!v.is_empty(), "--set {s:?}: an empty value");
                Ok(toml::from_str::<toml::Table>(&format!("v = {v}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or_else(|| toml::Value::String(v.to_owned())))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Axis {
            key: key.to_owned(),
            values,
        })
    }
}

/// A config value (TOML).
pub use toml::Value;

/// One combination: each axis's value (by axis), in axis order.
pub type Combination = Vec<toml::Value>;

/// Every combination of the axes' values, the first axis varying slowest. Bounded: at most
/// [`MAX_COMBINATIONS`].
pub fn combinations(axes: &[Axis]) -> anyhow::Result<Vec<Combination>> {
    let n = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|n| *n <= MAX_COMBINATIONS)
        .with_context(|| format!("the grid has more than {MAX_COMBINATIONS} combinations"))?;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let mut rest = k;
        let mut c = vec![toml::Value::Boolean(false); axes.len()];
        for (i, a) in axes.iter().enumerate().rev() {
            c[i] = a.values[rest % a.values.len()].clone();
            rest /= a.values.len();
        }
        out.push(c);
    }
    Ok(out)
}

/// The most combinations one sweep runs.
pub const MAX_COMBINATIONS: usize = 10_000;

/// `base`'s text with `key` set to `value` (see the module docs for keys).
fn set(doc: &mut toml::Table, key: &str, value: &toml::Value) -> anyhow::Result<()> {
    let (first, rest) = key.split_once('.').with_context(|| {
        format!("{key}: say which section (quote.…, risk.…, fees.…, engine.…, instrument[N].…)")
    })?;
    let targets: Vec<&mut toml::Table> = if first == "engine" {
        vec![doc
            .entry("engine")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[engine] is not a table")?]
    } else {
        let (which, path) = match first.strip_prefix("instrument[") {
            Some(i) => {
                let n: usize = i
                    .strip_suffix(']')
                    .and_then(|n| n.parse().ok())
                    .with_context(|| format!("{key}: instrument[N] with a number N"))?;
                (Some(n), rest.to_owned())
            }
            None => (None, key.to_owned()),
        };
        let list = doc
            .get_mut("instrument")
            .and_then(|v| v.as_array_mut())
            .context("the config has no [[instrument]]")?;
        let len = list.len();
        let mut chosen = Vec::new();
        for (i, v) in list.iter_mut().enumerate() {
            if which.is_none_or(|w| w == i) {
                chosen.push(v.as_table_mut().context("[[instrument]] is not a table")?);
            }
        }
        if chosen.is_empty() {
            bail!("{key}: the config has {len} instruments");
        }
        return chosen
            .into_iter()
            .try_for_each(|t| set_path(t, &path, value, key));
    };
    targets
        .into_iter()
        .try_for_each(|t| set_path(t, rest, value, key))
}

fn set_path(t: &mut toml::Table, path: &str, value: &toml::Value, key: &str) -> anyhow::Result<()> {
    let mut parts = path.split('.').peekable();
    let mut t = t;
    while let Some(p) = parts.next() {
        anyhow::ensure!(!p.is_empty(), "{key}: an empty part in the key");
        if parts.peek().is_none() {
            t.insert(p.to_owned(), value.clone());
            return Ok(());
        }
        t = t
            .entry(p)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("{key}: {p} is not a table"))?;
    }
    Ok(())
}

/// The configs of every combination, validated, each keeping `base`'s instruments.
pub fn configs(base_text: &str, axes: &[Axis]) -> anyhow::Result<Vec<(Combination, RunConfig)>> {
    let base = RunConfig::from_toml(base_text).context("the base config")?;
    let doc: toml::Table = toml::from_str(base_text).context("the base config")?;
    combinations(axes)?
        .into_iter()
        .map(|c| {
            let mut d = doc.clone();
            for (a, v) in axes.iter().zip(&c) {
                set(&mut d, &a.key, v)?;
            }
            let text = toml::to_string(&d).context("writing a combination's config")?;
            let label = label(axes, &c);
            let cfg = RunConfig::from_toml(&text).with_context(|| format!("{label}: invalid"))?;
            if let Some(why) = base.engine.reload_refusal(&cfg.engine) {
                bail!("{label}: a sweep keeps the instruments the data is decoded for: {why}");
            }
            Ok((c, cfg))
        })
        .collect()
}

/// `key=value, key=value`.
pub fn label(axes: &[Axis], c: &Combination) -> String {
    axes.iter()
        .zip(c)
        .map(|(a, v)| format!("{}={}", a.key, value_text(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as written on the command line (strings without quotes).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One combination's result.
#[derive(Debug)]
pub struct Row {
    /// The values, by axis.
    pub combination: Combination,
    /// Its backtest's report.
    pub report: Report,
}

/// The figures a sweep tabulates, by column name, from a report.
pub const COLUMNS: [&str; 16] = [
    "total_pnl",
    "realized",
    "unrealized",
    "fees",
    "traded_notional",
    "fills",
    "maker_ratio",
    "placed",
    "cancelled",
    "max_cancels_per_60s",
    "max_drawdown",
    "both_within_5bps",
    "stale_bid",
    "stale_ask",
    "cancels_within_10bps",
    "events",
];

/// Column `name` of `r` (portfolio figures in its reporting currency; counts summed over the
/// instruments; `max_drawdown`, `max_cancels_per_60s` and the stale shares the worst
/// instrument's; `both_within_5bps` and `cancels_within_10bps` the worst instrument's too).
pub fn column(r: &Report, name: &str) -> Option<f64> {
    let sum = |f: &dyn Fn(&crate::report::InstrumentReport) -> f64| -> f64 {
        r.instruments.iter().map(f).sum()
    };
    let max = |f: &dyn Fn(&crate::report::InstrumentReport) -> f64| -> f64 {
        r.instruments.iter().map(f).fold(0.0, f64::max)
    };
    // The lowest over the instruments that have the figure.
    let min = |f: &dyn Fn(&crate::report::InstrumentReport) -> Option<f64>| -> Option<f64> {
        r.instruments
            .iter()
            .filter_map(f)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
    };
    Some(match name {
        "total_pnl" => r.portfolio.total,
        "realized" => r.portfolio.realized,
        "unrealized" => r.portfolio.unrealized,
        "fees" => r.portfolio.fees,
        "traded_notional" => r.portfolio.traded_notional,
        "fills" => sum(&|i| i.fills.count as f64),
        "maker_ratio" => {
            let n = sum(&|i| i.fills.count as f64);
            if n == 0.0 {
                return None;
            }
            sum(&|i| i.fills.maker as f64) / n
        }
        "placed" => sum(&|i| i.orders.placed as f64),
        "cancelled" => sum(&|i| i.orders.cancelled as f64),
        "max_cancels_per_60s" => max(&|i| i.orders.discretionary_cancels_max_per_60s as f64),
        "max_drawdown" => max(&|i| i.max_drawdown),
        "both_within_5bps" => min(&|i| Some(i.quoting.both_within_bps.bps5))?,
        "stale_bid" => max(&|i| i.quoting.stale_share.bid),
        "stale_ask" => max(&|i| i.quoting.stale_share.ask),
        "cancels_within_10bps" => min(&|i| i.cancels.discretionary_within_10bps_share)?,
        "events" => r.events as f64,
        _ => return None,
    })
}

/// Backtests every config over `decoded` on `jobs` threads; the rows in the configs' order.
/// `done` is called (from the workers) after each one.
pub fn run(
    configs: Vec<(Combination, RunConfig)>,
    decoded: &Decoded,
    settings: &Settings,
    jobs: usize,
    done: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<Vec<Row>> {
    let n = configs.len();
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<Report>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, cfg)) = configs.get(k) else {
                    return;
                };
                let r = decoded
                    .run(&cfg.engine, settings, NoRecorder)
                    .map(|(o, _)| Report::new(&cfg.engine, &o));
                if let Ok(mut v) = results.lock() {
                    v[k] = Some(r);
                }
                done(finished.fetch_add(1, Ordering::Relaxed) + 1);
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a sweep worker panicked"))?;
    configs
        .into_iter()
        .zip(results)
        .map(|((combination, _), r)| {
            let report = r.context("a combination was not run")??;
            Ok(Row {
                combination,
                report,
            })
        })
        .collect()
}

/// The rows as CSV: one column per axis, then [`COLUMNS`] (an empty cell where a figure has no
/// value, e.g. the maker ratio of a run without fills).
pub fn csv(axes: &[Axis], rows: &[Row]) -> String {
    let mut s = String::new();
    let head: Vec<String> = axes
        .iter()
        .map(|a| csv_cell(&a.key))
        .chain(COLUMNS.iter().map(|c| c.to_string()))
        .collect();
    s.push_str(&head.join(","));
    s.push('\n');
    for r in rows {
        let cells: Vec<String> = r
            .combination
            .iter()
            .map(|v| csv_cell(&value_text(v)))
            .chain(
                COLUMNS
                    .iter()
                    .map(|c| column(&r.report, c).map_or(String::new(), |v| format!("{v}"))),
            )
            .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The rows' indices, best first by `objective` (highest first, or lowest with `minimize`);
/// rows without a value last, ties in grid order.
pub fn ranking(rows: &[Row], objective: &str, minimize: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (
            column(&rows[a].report, objective),
            column(&rows[b].report, objective),
        );
        match (x, y) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                if minimize {
                    o
                } else {
                    o.reverse()
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(a.cmp(&b))
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_typed_values_and_the_grid_varies_the_last_axis_fastest() {
        let a = Axis::parse("quote.start_offset=0.5, 1,2").unwrap();
        assert_eq!(a.key, "quote.start_offset");
        assert_eq!(
            a.values,
            vec![
                toml::Value::Float(0.5),
                toml::Value::Integer(1),
                toml::Value::Integer(2)
            ]
        );
        let b = Axis::parse("quote.fair_value=mid,\"microprice\"").unwrap();
        assert_eq!(b.values[0], toml::Value::String("mid".into()));
        assert_eq!(b.values[1], toml::Value::String("microprice".into()));
        for bad in ["nokey", "=1", "a b=1", "quote.x=1,,2"] {
            assert!(Axis::parse(bad).is_err(), "{bad}");
        }
        let c = combinations(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(c[0], vec![a.values[0].clone(), b.values[0].clone()]);
        assert_eq!(c[1], vec![a.values[0].clone(), b.values[1].clone()]);
        assert_eq!(c[5], vec![a.values[2].clone(), b.values[1].clone()]);
        let huge = Axis {
            key: "x.y".into(),
            values: vec![toml::Value::Integer(1); 200],
        };
        assert!(combinations(&[huge.clone(), huge]).is_err());
    }

    #[test]
    fn keys_set_every_instrument_one_instrument_or_the_engine_and_bad_ones_are_refused() {
        let base = test_support::config_text("default.toml");
        let axes = [
            Axis::parse("quote.start_offset=1.0,2.0").unwrap(),
            Axis::parse("engine.orders_per_10s=200").unwrap(),
            Axis::parse("instrument[0].risk.cancel_budget_per_min=70").unwrap(),
        ];
        let cfgs = configs(&base, &axes).unwrap();
        assert_eq!(cfgs.len(), 2);
        let e = &cfgs[1].1.engine;
        assert_eq!(e.instruments[0].cancel_budget_per_min, 70);
        assert_eq!(e.orders_per_10s, 200);
        assert_ne!(
            cfgs[0].1.engine.instruments[0].layer_distance,
            e.instruments[0].layer_distance
        );
        for (bad, why) in [
            ("quote.start_offset=-1", "invalid"),
            ("tick=\"0.01\"", "say which section"),
            ("instrument[3].quote.layers=2", "has 1 instruments"),
            ("instrument[0].tick=\"0.01\"", "keeps the instruments"),
            ("quote.no_such_key=1", "invalid"),
        ] {
            let e = configs(&base, &[Axis::parse(bad).unwrap()]).unwrap_err();
            assert!(format!("{e:#}").contains(why), "{bad}: {e:#}");
        }
    }

    #[test]
    fn csv_cells_with_commas_are_quoted() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_cell("x"), "x");
    }
}
