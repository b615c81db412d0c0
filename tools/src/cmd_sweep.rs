//! `ringmaker sweep`: backtests of every combination of some config values, over the same
//! market data decoded once, in parallel. See `runtime::sweep`.

use crate::cmd_common::{
    data_source_line, data_specs, load_config_text, CacheArgs, InputArgs, VenueArgs,
};
use crate::out_dir::Staged;
use crate::plots;
use anyhow::Context;
use runtime::backtest::{Decoded, Settings};
use runtime::sweep::{self, Axis, Row, COLUMNS};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ringmaker sweep`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The base config and the recordings, as for `backtest`.
    #[command(flatten)]
    input: InputArgs,
    /// A key and its values: `quote.start_offset=0.5,1,2` (every instrument),
    /// `instrument[0].risk.net_max="0.05","0.1"`, `engine.orders_per_10s=100,300`. Repeat for
    /// more keys; every combination runs.
    #[arg(long = "set", required = true)]
    sets: Vec<String>,
    /// Backtests at once (default: every core this process may use).
    #[arg(long)]
    jobs: Option<usize>,
    /// The figure the summary sorts by: one of the CSV's columns.
    #[arg(long, default_value = "total_pnl")]
    objective: String,
    /// Best is lowest (e.g. `--objective max_drawdown --minimize`).
    #[arg(long)]
    minimize: bool,
    /// Output directory: results.csv, summary.txt, heatmap.png.
    #[arg(long, default_value = "out/sweep")]
    out: PathBuf,
    #[command(flatten)]
    venue: VenueArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        COLUMNS.contains(&a.objective.as_str()),
        "--objective {}: one of {}",
        a.objective,
        COLUMNS.join(", ")
    );
    let axes = a
        .sets
        .iter()
        .map(|s| Axis::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (i, x) in axes.iter().enumerate() {
        anyhow::ensure!(
            !axes[..i].iter().any(|y| y.key == x.key),
            "--set {}: given twice",
            x.key
        );
    }
    let (run_cfg, text) = load_config_text(&a.input.config)?;
    let configs = sweep::configs(&text, &axes)?;
    let data = data_specs(&a.input.data, &run_cfg.engine)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
    let staged = Staged::begin(&a.out, &["results.csv", "summary.txt", "heatmap.png"])?;
    let dir = staged.path().to_path_buf();

    let started = std::time::Instant::now();
    let decoded = Decoded::decode_with(&run_cfg.engine, &data, a.cache.cache())?;
    let decode_s = started.elapsed().as_secs_f64();
    for p in decoded.cache_problems() {
        errln!("warning: {p}");
    }
    if let Some(line) = data_source_line(decoded.data_source()) {
        errln!("ringmaker sweep: events {line}");
    }
    let settings = Settings {
        data: Vec::new(),
        queue: a.venue.queue(),
        entry_latency_ns: a.venue.entry_ns(),
        response_latency_ns: a.venue.response_ns(),
        timer_interval_ns: 100_000_000,
        latency_log: None,
        event_cache: None,
    };
    let n = configs.len();
    errln!(
        "ringmaker sweep: {n} combinations of {}, {} market events {} in {decode_s:.2} s, \
         {} at a time",
        axes.iter()
            .map(|x| x.key.as_str())
            .collect::<Vec<_>>()
            .join(" × "),
        decoded.events(),
        match decoded.data_source() {
            runtime::backtest::DataSource::Cache(_) => "read from the event cache",
            _ => "decoded once",
        },
        jobs.min(n)
    );
    let rows = sweep::run(configs, &decoded, &settings, jobs, &|k| {
        errln!("ringmaker sweep: {k}/{n} done");
    })?;
    let wall = started.elapsed().as_secs_f64();

    std::fs::write(dir.join("results.csv"), sweep::csv(&axes, &rows))
        .context("writing results.csv")?;
    let summary = summary(&axes, &rows, &a.objective, a.minimize, wall, decode_s);
    std::fs::write(dir.join("summary.txt"), &summary).context("writing summary.txt")?;
    let heat = heatmap(
        &axes,
        &rows,
        &a.objective,
        a.minimize,
        &dir.join("heatmap.png"),
    )?;
    staged.commit()?;
    outln!("{}", summary.trim_end())?;
    outln!(
        "  wrote      {0}/results.csv, {0}/summary.txt{1}",
        a.out.display(),
        if heat {
            format!(", {}/heatmap.png", a.out.display())
        } else {
            " (no heatmap: it needs two keys with several values)".to_owned()
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The rows best first by the objective, with the headline figures.
fn summary(
    axes: &[Axis],
    rows: &[Row],
    objective: &str,
    minimize: bool,
    wall: f64,
    decode_s: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sweep: {} backtests in {wall:.2} s (decoding once: {decode_s:.2} s), best {} {objective} first",
        rows.len(),
        if minimize { "lowest" } else { "highest" }
    );
    let shown = [
        "total_pnl",
        "fees",
        "fills",
        "maker_ratio",
        "cancelled",
        "max_drawdown",
    ];
    let labels: Vec<String> = rows
        .iter()
        .map(|r| sweep::label(axes, &r.combination))
        .collect();
    let w = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        s,
        "  {:>4}  {:<w$} {}",
        "rank",
        "values",
        std::iter::once(objective)
            .chain(shown.iter().copied().filter(|c| *c != objective))
            .map(|c| format!("{c:>14}"))
            .collect::<String>()
    );
    for (rank, &k) in sweep::ranking(rows, objective, minimize).iter().enumerate() {
        let r = &rows[k];
        let cells: String = std::iter::once(objective)
            .chain(shown.iter().copied().filter(|c| *c != objective))
            .map(|c| match sweep::column(&r.report, c) {
                Some(v) => format!("{v:>14.4}"),
                None => format!("{:>14}", "-"),
            })
            .collect();
        let _ = writeln!(s, "  {:>4}  {:<w$} {cells}", rank + 1, labels[k]);
    }
    s
}

/// The heatmap of the objective over the first two keys with several values (the best over any
/// other key's values in each cell); false when there are not two such keys.
fn heatmap(
    axes: &[Axis],
    rows: &[Row],
    objective: &str,
    minimize: bool,
    path: &std::path::Path,
) -> anyhow::Result<bool> {
    let multi: Vec<usize> = (0..axes.len())
        .filter(|&i| axes[i].values.len() > 1)
        .collect();
    let [xa, ya] = match multi.as_slice() {
        [x, y, ..] => [*x, *y],
        _ => return Ok(false),
    };
    let (xs, ys) = (&axes[xa].values, &axes[ya].values);
    let mut z = vec![vec![None::<f64>; xs.len()]; ys.len()];
    for r in rows {
        let (Some(i), Some(j)) = (
            xs.iter().position(|v| *v == r.combination[xa]),
            ys.iter().position(|v| *v == r.combination[ya]),
        ) else {
            continue;
        };
        if let Some(v) = sweep::column(&r.report, objective) {
            let better = |old: f64| if minimize { v < old } else { v > old };
            if z[j][i].is_none_or(better) {
                z[j][i] = Some(v);
            }
        }
    }
    let names = |vs: &[sweep::Value]| vs.iter().map(sweep::value_text).collect::<Vec<_>>();
    let others = axes.len() > 2;
    plots::heatmap(
        path,
        &format!(
            "{objective}{}",
            if others {
                if minimize {
                    " (lowest over the other keys)"
                } else {
                    " (highest over the other keys)"
                }
            } else {
                ""
            }
        ),
        (&axes[xa].key, &names(xs)),
        (&axes[ya].key, &names(ys)),
        &z,
    )?;
    Ok(true)
}
