//! The backtest's pictures (plotters, PNG): mid with our best bid / ask and the fills; position;
//! PnL; our best bid and ask's distance from mid; with `[instrument.quote.adapt]`, the
//! volatility estimate and the grid's scale per side. The font is bundled (`tools/assets/DejaVuSans.ttf`, Bitstream Vera licence), so plots
//! render the same on any machine, with no system fonts needed.

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::FontStyle;
use runtime::hedge_metrics::HedgeMetrics;
use runtime::metrics::Metrics;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // A bundled, valid TTF: registration cannot fail in practice; if it did, text would be
        // missing from the plots, which the caller sees as an error when drawing.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

const W: u32 = 1400;
const H: u32 = 520;

/// The files [`write_all`] writes for every instrument, in order.
pub const FILES: [&str; 4] = ["mid.png", "position.png", "pnl.png", "distance.png"];

/// The file [`write_all`] adds for an instrument with `[instrument.quote.adapt]`.
pub const ADAPT_FILE: &str = "adapt.png";

/// The file [`write_hedging`] writes for each `[[hedge]]` group.
pub const DELTA_FILE: &str = "delta.png";

/// Every file [`write_all`] and [`write_hedging`] may write (what a previous run's `plots/` may
/// hold).
pub const ALL_FILES: [&str; 6] = [
    FILES[0], FILES[1], FILES[2], FILES[3], ADAPT_FILE, DELTA_FILE,
];

/// The files [`write_all`] writes for `m`, in order: [`FILES`], then [`ADAPT_FILE`] when the
/// instrument has the adapt section.
pub fn files(m: &Metrics) -> Vec<&'static str> {
    let mut v = FILES.to_vec();
    if m.adapt.is_some() {
        v.push(ADAPT_FILE);
    }
    v
}

/// Writes [`files`] into `dir`.
pub fn write_all(m: &Metrics, dir: &Path) -> anyhow::Result<()> {
    register_font();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    type Plot = fn(&Metrics, &Path) -> anyhow::Result<()>;
    let mut plots: Vec<(Plot, &str)> = vec![
        (mid, FILES[0]),
        (position, FILES[1]),
        (pnl, FILES[2]),
        (distance, FILES[3]),
    ];
    if m.adapt.is_some() {
        plots.push((adapt, ADAPT_FILE));
    }
    // Each plot drawn and encoded on a thread of its own (they share nothing but the metrics).
    std::thread::scope(|s| {
        let drawn: Vec<_> = plots
            .into_iter()
            .map(|(plot, file)| s.spawn(move || plot(m, &dir.join(file))))
            .collect();
        drawn.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("drawing a plot panicked"))?
        })
    })
}

/// The plots of every instrument: in `dir` itself for a single instrument, else in one folder
/// per instrument, named by its report key (`plots/BTCUSDT/`, `plots/binance-spot_BTCUSDT/`;
/// a `:` becomes `_`). Returns the folders written, each with its files ([`files`]).
pub fn write_each(
    metrics: &[Metrics],
    keys: &[String],
    dir: &Path,
) -> anyhow::Result<Vec<(String, Vec<&'static str>)>> {
    if metrics.len() == 1 {
        write_all(&metrics[0], dir)?;
        return Ok(vec![("plots".to_owned(), files(&metrics[0]))]);
    }
    let mut written = Vec::new();
    for (m, key) in metrics.iter().zip(keys) {
        let name = key.replace(':', "_");
        write_all(m, &dir.join(&name))?;
        written.push((format!("plots/{name}"), files(m)));
    }
    Ok(written)
}

/// Each `[[hedge]]` group's delta over time, in `dir/hedge_<name>/delta.png` (± band in red,
/// ± hard limit in orange). Returns the folders written.
pub fn write_hedging(
    groups: &[HedgeMetrics],
    dir: &Path,
) -> anyhow::Result<Vec<(String, Vec<&'static str>)>> {
    register_font();
    let mut written = Vec::new();
    for h in groups {
        let name = format!(
            "hedge_{}",
            h.name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                })
                .collect::<String>()
        );
        let folder = dir.join(&name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let t0 = h.points.first().map_or(0, |p| p.t);
        let ys: Vec<(f64, f64)> = h
            .points
            .iter()
            .filter(|p| p.delta.is_finite())
            .map(|p| ((p.t - t0) as f64 / 1e9, p.delta))
            .collect();
        let end = h
            .points
            .last()
            .map_or(1.0, |p| ((p.t - t0) as f64 / 1e9).max(1.0));
        line_plot_x(
            0.0..end,
            &folder.join(DELTA_FILE),
            &format!(
                "hedge group {}: delta, {} (red: ± band, orange: ± hard limit); in band {:.1}% of valid book",
                h.name,
                h.base_asset,
                h.in_band_share() * 100.0
            ),
            &h.base_asset,
            ys,
            &[(h.band, RED), (-h.band, RED), (h.hard_limit, ORANGE), (-h.hard_limit, ORANGE)],
        )?;
        written.push((format!("plots/{name}"), vec![DELTA_FILE]));
    }
    Ok(written)
}

/// Orange, for the hard limits.
const ORANGE: RGBColor = RGBColor(255, 140, 0);

fn secs(m: &Metrics, t: i64) -> f64 {
    (t - m.span.0) as f64 / 1e9
}

fn x_range(m: &Metrics) -> std::ops::Range<f64> {
    0.0..secs(m, m.span.1).max(1.0)
}

fn mid(m: &Metrics, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let px = |ticks: f64| ticks * m.tick;
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in &m.points {
        for v in [
            Some(p.mid),
            p.bid.map(|b| b as f64),
            p.ask.map(|a| a as f64),
        ]
        .into_iter()
        .flatten()
        .filter(|v| v.is_finite())
        {
            lo = lo.min(px(v));
            hi = hi.max(px(v));
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(m.tick);
    let mut chart = ChartBuilder::on(&root)
        .caption("Mid, our best bid / ask, and our fills", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range(m), (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("price")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()
        .map_err(err)?;
    let series = |f: &dyn Fn(&runtime::metrics::Point) -> Option<f64>| -> Vec<(f64, f64)> {
        m.points
            .iter()
            .filter_map(|p| {
                f(p).filter(|v| v.is_finite())
                    .map(|v| (secs(m, p.t), px(v)))
            })
            .collect()
    };
    chart
        .draw_series(LineSeries::new(
            series(&|p| Some(p.mid)),
            BLACK.stroke_width(1),
        ))
        .map_err(err)?
        .label("mid")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    type Quote = fn(&runtime::metrics::Point) -> Option<i64>;
    let quotes: [(&str, RGBColor, Quote); 2] = [
        ("our best bid", RGBColor(0, 140, 60), |p| p.bid),
        ("our best ask", RGBColor(200, 30, 30), |p| p.ask),
    ];
    for (label, color, side) in quotes {
        chart
            .draw_series(
                series(&|p| side(p).map(|v| v as f64))
                    .into_iter()
                    .map(|(x, y)| Circle::new((x, y), 1, color.filled())),
            )
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
    }
    let blue = RGBColor(20, 60, 220);
    let orange = RGBColor(230, 120, 0);
    chart
        .draw_series(
            m.fills
                .iter()
                .filter(|f| f.qty > 0)
                .map(|f| TriangleMarker::new((secs(m, f.t), px(f.price as f64)), 7, blue.filled())),
        )
        .map_err(err)?
        .label("we bought")
        .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 6, blue.filled()));
    chart
        .draw_series(m.fills.iter().filter(|f| f.qty < 0).map(|f| {
            Cross::new(
                (secs(m, f.t), px(f.price as f64)),
                6,
                orange.stroke_width(2),
            )
        }))
        .map_err(err)?
        .label("we sold")
        .legend(move |(x, y)| Cross::new((x + 9, y), 5, orange.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn line_plot(
    m: &Metrics,
    path: &Path,
    title: &str,
    y_desc: &str,
    ys: Vec<(f64, f64)>,
    bands: &[f64],
) -> anyhow::Result<()> {
    let bands: Vec<(f64, RGBColor)> = bands.iter().map(|&b| (b, RED)).collect();
    line_plot_x(x_range(m), path, title, y_desc, ys, &bands)
}

/// A line over `x` (seconds) with horizontal lines at `bands`, each in its colour.
fn line_plot_x(
    x: std::ops::Range<f64>,
    path: &Path,
    title: &str,
    y_desc: &str,
    ys: Vec<(f64, f64)>,
    bands: &[(f64, RGBColor)],
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (mut lo, mut hi) = ys
        .iter()
        .chain(bands.iter().map(|b| (0.0, b.0)).collect::<Vec<_>>().iter())
        .fold((0.0f64, 0.0f64), |(lo, hi), &(_, y)| (lo.min(y), hi.max(y)));
    if hi - lo < 1e-12 {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.08;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x.clone(), (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    for &(b, colour) in bands {
        chart
            .draw_series(LineSeries::new(
                vec![(x.start, b), (x.end, b)],
                colour.mix(0.6),
            ))
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(ys, BLUE.stroke_width(2)))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn position(m: &Metrics, path: &Path) -> anyhow::Result<()> {
    let ys = m
        .points
        .iter()
        .map(|p| (secs(m, p.t), p.pos as f64 * m.lot))
        .collect();
    let nm = m.net_max as f64 * m.lot;
    let unit = match m.instrument.kind {
        engine::InstrumentKind::Inverse => "contracts".to_owned(),
        _ => m.instrument.base_asset.to_string(),
    };
    line_plot(
        m,
        path,
        &format!("{} position (red lines: ± net max)", m.instrument.symbol),
        &unit,
        ys,
        &[nm, -nm],
    )
}

fn pnl(m: &Metrics, path: &Path) -> anyhow::Result<()> {
    let ys = m
        .points
        .iter()
        .map(|p| (secs(m, p.t), p.pnl * m.unit))
        .collect();
    line_plot(
        m,
        path,
        &format!(
            "{} total PnL: realized + unrealized − fees",
            m.instrument.symbol
        ),
        m.instrument.pnl_asset().as_str(),
        ys,
        &[],
    )
}

/// The band [`distance`] draws around the mid, bps.
const NEAR_BPS: f64 = 5.0;

/// Our best bid (below zero) and best ask (above) as distances from mid in bps over time, with
/// ±[`NEAR_BPS`] in red.
fn distance(m: &Metrics, path: &Path) -> anyhow::Result<()> {
    let bps = |p: &runtime::metrics::Point, price: Option<i64>| {
        price
            .map(|x| (x as f64 - p.mid) / p.mid * 1e4)
            .filter(|v| v.is_finite() && p.mid > 0.0)
            .map(|v| (secs(m, p.t), v))
    };
    let bids: Vec<(f64, f64)> = m.points.iter().filter_map(|p| bps(p, p.bid)).collect();
    let asks: Vec<(f64, f64)> = m.points.iter().filter_map(|p| bps(p, p.ask)).collect();
    let (lo, hi) = bids
        .iter()
        .chain(&asks)
        .fold((-NEAR_BPS, NEAR_BPS), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        });
    let pad = (hi - lo) * 0.08;
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: our best bid / ask from mid (red lines: ±{NEAR_BPS} bps)",
                m.instrument.symbol
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range(m), (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("bps from mid")
        .draw()
        .map_err(err)?;
    let x1 = x_range(m).end;
    for b in [NEAR_BPS, -NEAR_BPS] {
        chart
            .draw_series(LineSeries::new(vec![(0.0, b), (x1, b)], RED.mix(0.6)))
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(vec![(0.0, 0.0), (x1, 0.0)], BLACK.mix(0.4)))
        .map_err(err)?;
    for (label, color, ys) in [
        ("our best bid", RGBColor(0, 140, 60), bids),
        ("our best ask", RGBColor(200, 30, 30), asks),
    ] {
        chart
            .draw_series(
                ys.into_iter()
                    .map(|(x, y)| Circle::new((x, y), 1, color.filled())),
            )
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// The volatility estimate (bps per √s, blue, left axis) and the scale on the grid's
/// distances per side (right axis: bid green, ask red; 1 = as configured) over time.
fn adapt(m: &Metrics, path: &Path) -> anyhow::Result<()> {
    let points: &[runtime::metrics::AdaptPoint] =
        m.adapt.as_ref().map_or(&[], |a| a.points.as_slice());
    let sigma: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.sigma_bps.is_finite())
        .map(|p| (secs(m, p.t), p.sigma_bps))
        .collect();
    let scale = |k: usize| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter(|p| p.scale[k].is_finite())
            .map(|p| (secs(m, p.t), p.scale[k]))
            .collect()
    };
    let (bids, asks) = (scale(0), scale(1));
    let sigma_hi = sigma.iter().fold(0.0f64, |hi, &(_, y)| hi.max(y)).max(1e-3) * 1.1;
    let scale_hi = bids
        .iter()
        .chain(&asks)
        .fold(1.0f64, |hi, &(_, y)| hi.max(y))
        * 1.1;
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: volatility estimate and the grid's scale per side",
                m.instrument.symbol
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(x_range(m), 0.0..sigma_hi)
        .map_err(err)?
        .set_secondary_coord(x_range(m), 0.0..scale_hi);
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("σ, bps per √s")
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("scale (1 = as configured)")
        .draw()
        .map_err(err)?;
    let blue = RGBColor(20, 60, 220);
    chart
        .draw_series(LineSeries::new(sigma, blue.stroke_width(2)))
        .map_err(err)?
        .label("σ (left)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue));
    let x1 = x_range(m).end;
    chart
        .draw_secondary_series(LineSeries::new(vec![(0.0, 1.0), (x1, 1.0)], BLACK.mix(0.4)))
        .map_err(err)?;
    // The bid wider, under the ask: when volatility alone scales both alike, both still show.
    for (label, color, width, ys) in [
        ("bid scale (right)", RGBColor(0, 140, 60), 4, bids),
        ("ask scale (right)", RGBColor(200, 30, 30), 1, asks),
    ] {
        chart
            .draw_secondary_series(LineSeries::new(ys, color.stroke_width(width)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A sweep's heatmap: `z[j][i]` (the objective at the `i`-th value of the x parameter and the
/// `j`-th of the y one; `None`: no value) as coloured cells, red (lowest) to green (highest),
/// each with its value written in it.
pub fn heatmap(
    path: &Path,
    title: &str,
    (x_name, xs): (&str, &[String]),
    (y_name, ys): (&str, &[String]),
    z: &[Vec<Option<f64>>],
) -> anyhow::Result<()> {
    register_font();
    let (nx, ny) = (xs.len().max(1), ys.len().max(1));
    let root = BitMapBackend::new(path, (W.min(260 + 160 * nx as u32), 160 + 80 * ny as u32))
        .into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let values: Vec<f64> = z.iter().flatten().flatten().copied().collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(110)
        .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented())
        .map_err(err)?;
    let label = |names: &[String], v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_name)
        .y_desc(y_name)
        .x_labels(nx)
        .y_labels(ny)
        .x_label_formatter(&|v| label(xs, v))
        .y_label_formatter(&|v| label(ys, v))
        .draw()
        .map_err(err)?;
    let cells = (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j)));
    chart
        .draw_series(cells.clone().map(|(i, j)| {
            let v = z.get(j).and_then(|r| r.get(i)).copied().flatten();
            let colour: RGBColor = match v {
                Some(v) if hi > lo => {
                    let t = (v - lo) / (hi - lo);
                    let c = HSLColor(t * 0.33, 0.65, 0.55).to_rgba();
                    RGBColor(c.0, c.1, c.2)
                }
                Some(_) => RGBColor(120, 200, 120),
                None => RGBColor(220, 220, 220),
            };
            Rectangle::new(
                [
                    (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                    (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
                ],
                colour.filled(),
            )
        }))
        .map_err(err)?;
    let style = TextStyle::from(("sans-serif", 16).into_font())
        .color(&BLACK)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    chart
        .draw_series(cells.map(|(i, j)| {
            let v = z.get(j).and_then(|r| r.get(i)).copied().flatten();
            Text::new(
                v.map_or("-".to_owned(), |v| format!("{v:.4}")),
                (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j)),
                style.clone(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
