//! The Prometheus exposition: what [`super::state::OpsState`], the run counters and the latency
//! histograms hold, as OpenMetrics text built with `prometheus-client` at each scrape (on the ops
//! thread: nothing here runs on a hot thread).
//!
//! Names follow Prometheus conventions: the `ringmaker_` prefix, counters end in `_total`, units
//! in the name (`_seconds`, `_bytes`, `_ratio`), prices and quantities in the instrument's own
//! decimal units, PnL in its PnL currency (label `currency`). The full list, with the alert
//! rules that use them, is in `docs/OPERATIONS.md`.

use super::state::{InstGauges, LatencyBuckets, OpsState, LATENCY_BOUNDS_NS, NO_PRICE};
use crate::config::RunConfig;
use crate::live::shared::Shared;
use engine::{InstrumentConfig, Mode, ModeReason};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`to_classic`]'s text.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as Prometheus's classic text format (0.0.4), for a scraper that does not ask
/// for OpenMetrics (`curl`, `promtool check metrics`, older Prometheus): a counter family's
/// `HELP` / `TYPE` lines take the `_total` name its samples carry, and the `UNIT` and `EOF`
/// lines go. Samples are unchanged.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let name = rest.split(' ').next().unwrap_or("");
                if counters.contains(name) {
                    out.push_str(p);
                    out.push_str(name);
                    out.push_str("_total");
                    out.push_str(&rest[name.len()..]);
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

type Labels = Vec<(&'static str, String)>;

/// Registers families as they are filled.
struct Out {
    reg: Registry,
}

impl Out {
    fn gauge(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (Labels, f64)>) {
        let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, v) in samples {
            f.get_or_create(&labels).set(v);
        }
        // Registered even without samples (no reject yet): its HELP and TYPE say it exists.
        self.reg.register(name, help, f);
    }

    /// `name` without `_total` (the encoder appends it).
    fn counter(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let f = Family::<Labels, Counter<u64>>::default();
        for (labels, v) in samples {
            f.get_or_create(&labels).inc_by(v);
        }
        self.reg.register(name, help, f);
    }
}

/// One hop's histogram, set once per scrape.
#[derive(Debug, Clone, Default)]
struct Hist(std::sync::Arc<std::sync::OnceLock<LatencyBuckets>>);

impl TypedMetric for Hist {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Hist {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(b) = self.0.get() else {
            return Ok(());
        };
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_NS
            .iter()
            .map(|ns| *ns as f64 / 1e9)
            .chain(std::iter::once(f64::INFINITY))
            .zip(b.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(b.sum_seconds, b.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// What a scrape reads besides the shared state.
#[derive(Debug)]
pub struct Context<'a> {
    /// The run's config (instrument grids, limits, ring sizes).
    pub config: &'a RunConfig,
    /// The run's shared state (counters, clock, ops state).
    pub shared: &'a Shared,
    /// Unix time the run started, s.
    pub start_time: f64,
}

/// `lots` of `cfg` in its decimal quantity unit (base asset, or contracts).
pub(crate) fn qty(cfg: &InstrumentConfig, lots: i64) -> f64 {
    steps(&cfg.instrument.lot, lots as f64)
}

/// `n` steps of grid `g` as a decimal number (one rounding, at the division, so a price on the
/// grid prints as written: 61814.1, not 61814.100000000006).
fn steps(g: &engine::Grid, n: f64) -> f64 {
    n * g.mantissa() as f64 / 10f64.powi(i32::from(g.scale()))
}

fn price(cfg: &InstrumentConfig, ticks: i64) -> Option<f64> {
    (ticks != NO_PRICE).then(|| steps(&cfg.instrument.tick, ticks as f64))
}

/// The instrument's key in labels and answers: `venue:SYMBOL`.
pub(crate) fn key(cfg: &InstrumentConfig) -> String {
    format!("{}:{}", cfg.venue.name(), cfg.instrument.symbol.as_str())
}

/// The exposition text.
pub fn render(cx: &Context<'_>) -> String {
    let ops: &OpsState = &cx.shared.ops;
    let insts: Vec<(&InstrumentConfig, &InstGauges, String)> = cx
        .config
        .engine
        .instruments
        .iter()
        .zip(ops.instruments.iter())
        .map(|(c, g)| (c, g, key(c)))
        .collect();
    let mut o = Out {
        reg: Registry::default(),
    };
    let inst = |k: &String| -> Labels { vec![("instrument", k.clone())] };
    let with = |k: &String, name: &'static str, v: &str| -> Labels {
        vec![("instrument", k.clone()), (name, v.to_owned())]
    };
    const SIDES: [&str; 2] = ["bid", "ask"];

    o.gauge(
        "ringmaker_build_info",
        "ringmaker's version (the value is 1)",
        [(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0)],
    );
    o.gauge(
        "ringmaker_start_time_seconds",
        "Unix time the run started",
        [(Vec::new(), cx.start_time)],
    );

    // ---- per instrument: position, orders, prices, PnL, mode ------------------------------
    o.gauge(
        "ringmaker_position",
        "Signed position, in the instrument's quantity unit (base asset; contracts for COIN-M)",
        insts
            .iter()
            .map(|(c, g, k)| (inst(k), qty(c, g.position_lots.load(Relaxed)))),
    );
    o.gauge(
        "ringmaker_position_limit",
        "The configured net position limit (net_max), same unit as ringmaker_position",
        insts.iter().map(|(c, _, k)| (inst(k), qty(c, c.net_max))),
    );
    o.gauge(
        "ringmaker_open_orders",
        "Open orders (pending, working or being cancelled)",
        insts.iter().flat_map(|(_, g, k)| {
            (0..2).map(move |s| {
                (
                    with(k, "side", SIDES[s]),
                    g.open_orders[s].load(Relaxed) as f64,
                )
            })
        }),
    );
    o.gauge(
        "ringmaker_open_quantity",
        "Remaining quantity of the open orders, in the instrument's quantity unit",
        insts.iter().flat_map(|(c, g, k)| {
            (0..2).map(move |s| {
                (
                    with(k, "side", SIDES[s]),
                    qty(c, g.open_lots[s].load(Relaxed)),
                )
            })
        }),
    );
    o.gauge(
        "ringmaker_fair_value",
        "The engine's fair value, in the quote currency",
        insts.iter().filter_map(|(c, g, k)| {
            let t = f64::from_bits(g.fair_value_ticks.load(Relaxed));
            t.is_finite()
                .then(|| (inst(k), steps(&c.instrument.tick, t)))
        }),
    );
    o.gauge(
        "ringmaker_market_best_price",
        "The book's best bid and ask (absent while the book is invalid)",
        insts.iter().flat_map(|(c, g, k)| {
            (0..2).filter_map(move |s| {
                price(c, g.market_best[s].load(Relaxed)).map(|p| (with(k, "side", SIDES[s]), p))
            })
        }),
    );
    o.gauge(
        "ringmaker_quote_best_price",
        "Our working order nearest the touch, per side (absent when none)",
        insts.iter().flat_map(|(c, g, k)| {
            (0..2).filter_map(move |s| {
                price(c, g.quote_best[s].load(Relaxed)).map(|p| (with(k, "side", SIDES[s]), p))
            })
        }),
    );
    o.gauge(
        "ringmaker_pnl",
        "PnL in the instrument's PnL currency, by component (fees as a positive cost; total = \
         realized + unrealized - fees)",
        insts.iter().flat_map(|(c, g, k)| {
            let unit = c.instrument.money_unit();
            let cur = c.instrument.pnl_asset().as_str().to_owned();
            [
                ("realized", &g.realized),
                ("unrealized", &g.unrealized),
                ("fees", &g.fees),
                ("total", &g.total),
            ]
            .into_iter()
            .map(move |(component, v)| {
                (
                    vec![
                        ("instrument", k.clone()),
                        ("currency", cur.clone()),
                        ("component", component.to_owned()),
                    ],
                    unit.to_f64(i128::from(v.load(Relaxed))),
                )
            })
        }),
    );
    o.gauge(
        "ringmaker_daily_pnl",
        "PnL since the start of the engine's day (UTC), in the PnL currency: the daily loss \
         limit halts the instrument when it falls below minus ringmaker_daily_loss_limit",
        insts.iter().map(|(c, g, k)| {
            (
                vec![
                    ("instrument", k.clone()),
                    ("currency", c.instrument.pnl_asset().as_str().to_owned()),
                ],
                c.instrument
                    .money_unit()
                    .to_f64(i128::from(g.daily.load(Relaxed))),
            )
        }),
    );
    o.gauge(
        "ringmaker_daily_loss_limit",
        "The configured daily loss limit, in the PnL currency",
        insts.iter().map(|(c, _, k)| {
            (
                vec![
                    ("instrument", k.clone()),
                    ("currency", c.instrument.pnl_asset().as_str().to_owned()),
                ],
                c.instrument
                    .money_unit()
                    .to_f64(i128::from(c.daily_loss_limit)),
            )
        }),
    );
    o.gauge(
        "ringmaker_mode",
        "1 for the instrument's current mode, 0 for the others",
        insts.iter().flat_map(|(_, g, k)| {
            let now = g.mode().0;
            Mode::ALL
                .into_iter()
                .map(move |m| (with(k, "mode", m.name()), f64::from(u8::from(m == now))))
        }),
    );
    o.gauge(
        "ringmaker_mode_reason",
        "1 for the reason of the instrument's current mode, 0 for the others",
        insts.iter().flat_map(|(_, g, k)| {
            let now = g.mode().1;
            ModeReason::ALL
                .into_iter()
                .map(move |r| (with(k, "reason", r.name()), f64::from(u8::from(r == now))))
        }),
    );
    o.gauge(
        "ringmaker_book_valid",
        "1 while the local book is in sync with the venue",
        insts
            .iter()
            .map(|(_, g, k)| (inst(k), g.book_valid.load(Relaxed) as f64)),
    );
    o.gauge(
        "ringmaker_book_stale",
        "1 while quotes are pulled because the book had no update for stale_after_ms",
        insts.iter().map(|(_, g, k)| {
            (
                inst(k),
                f64::from(u8::from(g.mode().1 == ModeReason::BookStale)),
            )
        }),
    );

    // ---- per instrument: counters ---------------------------------------------------------
    o.counter(
        "ringmaker_orders_placed",
        "Orders the engine placed",
        insts
            .iter()
            .map(|(_, g, k)| (inst(k), g.placed.load(Relaxed))),
    );
    o.counter(
        "ringmaker_orders_cancelled",
        "Cancels the engine sent, by reason: requote (discretionary, spends the cancel budget) \
         or risk (forced by mode or risk, exempt)",
        insts.iter().flat_map(|(_, g, k)| {
            [
                (
                    with(k, "reason", "requote"),
                    g.cancels_requote.load(Relaxed),
                ),
                (with(k, "reason", "risk"), g.cancels_risk.load(Relaxed)),
            ]
        }),
    );
    o.gauge(
        "ringmaker_cancel_budget_per_minute",
        "The configured discretionary cancel budget per minute",
        insts
            .iter()
            .map(|(c, _, k)| (inst(k), f64::from(c.cancel_budget_per_min))),
    );
    o.gauge(
        "ringmaker_cancel_budget_used",
        "Discretionary cancels in the last minute of engine time",
        insts
            .iter()
            .map(|(_, g, k)| (inst(k), g.cancel_budget_used.load(Relaxed) as f64)),
    );
    o.counter(
        "ringmaker_fills",
        "Fills, by liquidity (maker or taker)",
        insts.iter().flat_map(|(_, g, k)| {
            [
                (with(k, "liquidity", "maker"), g.fills[0].load(Relaxed)),
                (with(k, "liquidity", "taker"), g.fills[1].load(Relaxed)),
            ]
        }),
    );
    let traded = Family::<Labels, Counter<f64, AtomicU64>>::default();
    for (c, g, k) in &insts {
        traded
            .get_or_create(&inst(k))
            .inc_by(qty(c, g.traded_lots.load(Relaxed) as i64));
    }
    o.reg.register(
        "ringmaker_filled_quantity",
        "Quantity filled, in the instrument's quantity unit",
        traded,
    );
    o.counter(
        "ringmaker_rejects",
        "Rejects and cancel rejects by the venue's error code",
        insts.iter().flat_map(|(_, g, k)| {
            let told = g.rejects.iter().filter_map(move |(c, n)| {
                let code = c.load(Relaxed);
                (code != 0).then(|| (with(k, "code", &code.to_string()), n.load(Relaxed)))
            });
            let other = g.rejects_other.load(Relaxed);
            told.chain((other > 0).then(|| (with(k, "code", "other"), other)))
        }),
    );
    o.counter(
        "ringmaker_book_gaps",
        "Sequence gaps in the depth stream (each invalidates the book until a resync)",
        insts
            .iter()
            .map(|(_, g, k)| (inst(k), g.gaps.load(Relaxed))),
    );
    o.counter(
        "ringmaker_book_resyncs",
        "Book resyncs from a fresh snapshot",
        insts
            .iter()
            .map(|(_, g, k)| (inst(k), g.resyncs.load(Relaxed))),
    );

    // ---- engine-wide ----------------------------------------------------------------------
    let e = &ops.engine;
    o.counter(
        "ringmaker_risk_refusals",
        "Actions risk refused or deferred, by check",
        [
            ("exposure", e.risk_refused.load(Relaxed)),
            ("order_rate", e.rate_limited.load(Relaxed)),
            ("cancel_budget", e.cancels_deferred.load(Relaxed)),
        ]
        .map(|(c, v)| (vec![("check", c.to_owned())], v)),
    );
    let venues: Vec<engine::VenueFlavour> = {
        let mut v: Vec<_> = insts.iter().map(|(c, _, _)| c.venue).collect();
        v.sort_by_key(|f| f.index());
        v.dedup();
        v
    };
    o.gauge(
        "ringmaker_rate_limit_usage_ratio",
        "Share of the venue's order-rate limit used (places in the window / the limit)",
        venues.iter().flat_map(|v| {
            let b = &e.order_budget[v.index()];
            let r = |u: &AtomicU64, c: &AtomicU64| {
                u.load(Relaxed) as f64 / (c.load(Relaxed).max(1)) as f64
            };
            [
                ("orders_10s", r(&b[0], &b[1])),
                ("orders_1m", r(&b[2], &b[3])),
            ]
            .map(|(limit, x)| {
                (
                    vec![("venue", v.name().to_owned()), ("limit", limit.to_owned())],
                    x,
                )
            })
        }),
    );
    let live_venue = ops.venue.live.load(Relaxed) == 1;
    let mut links = vec![("market", ops.market_reconnects.load(Relaxed))];
    if live_venue {
        links.push(("order_entry", ops.venue.api_reconnects.load(Relaxed)));
        links.push(("user_stream", ops.venue.user_reconnects.load(Relaxed)));
    }
    let bus = &ops.bus;
    let bus_on = bus.enabled.load(Relaxed) == 1;
    if bus_on {
        links.push(("bus", bus.connects.load(Relaxed).saturating_sub(1)));
    }
    o.counter(
        "ringmaker_reconnects",
        "Connections re-established after a loss, by link",
        links
            .into_iter()
            .map(|(l, v)| (vec![("link", l.to_owned())], v)),
    );
    if bus_on {
        o.gauge(
            "ringmaker_bus_connected",
            "1 while the bus link is connected to the NATS server",
            [(Vec::new(), bus.connected.load(Relaxed) as f64)],
        );
        o.counter(
            "ringmaker_bus_heartbeats",
            "Heartbeats due on the bus, by result (sent, or dropped while the server was away)",
            [
                ("sent", bus.heartbeats.load(Relaxed)),
                ("dropped", bus.heartbeats_dropped.load(Relaxed)),
            ]
            .map(|(r, v)| (vec![("result", r.to_owned())], v)),
        );
        o.gauge(
            "ringmaker_bus_peers",
            "Other engines on the bus by state (live; stale: no heartbeat for three periods; \
             stopped)",
            ["live", "stale", "stopped"]
                .into_iter()
                .zip(&bus.peers)
                .map(|(st, g)| (vec![("state", st.to_owned())], g.load(Relaxed) as f64)),
        );
        o.counter(
            "ringmaker_bus_name_conflicts",
            "Heartbeats under this engine's own name from another run of it",
            [(Vec::new(), bus.name_conflicts.load(Relaxed))],
        );
        o.counter(
            "ringmaker_bus_archive_records",
            "Journal records archived to the bus's JetStream stream (acknowledged by the server)",
            [(Vec::new(), bus.archive_records.load(Relaxed))],
        );
        o.counter(
            "ringmaker_bus_archive_bytes",
            "Journal bytes archived to the bus's JetStream stream",
            [(Vec::new(), bus.archive_bytes.load(Relaxed))],
        );
        o.counter(
            "ringmaker_bus_archive_failures",
            "Journal archive publishes or reads that failed (retried from where they were)",
            [(Vec::new(), bus.archive_failures.load(Relaxed))],
        );
        let (requests, refused) = (
            bus.requests.load(Relaxed),
            bus.requests_refused.load(Relaxed),
        );
        o.counter(
            "ringmaker_bus_requests",
            "Control requests taken from the bus, by result (answered by the run, or refused \
             before it: not one line of text, or no answer)",
            [
                ("answered", requests.saturating_sub(refused)),
                ("refused", refused),
            ]
            .map(|(r, v)| (vec![("result", r.to_owned())], v)),
        );
    }
    if let Some(l) = bus.lease.get() {
        o.gauge(
            "ringmaker_lease_held",
            "1 while this run holds its engine name's leadership lease (renewed within its time \
             to live); 0 once it lapsed or was taken",
            [(Vec::new(), l.held.load(Relaxed) as f64)],
        );
        o.gauge(
            "ringmaker_lease_fenced",
            "1 once another run took this engine name's lease: this run sends nothing more",
            [(Vec::new(), l.fenced.load(Relaxed) as f64)],
        );
        o.gauge(
            "ringmaker_lease_revision",
            "The revision of the lease held (the key's sequence in the lease bucket)",
            [(Vec::new(), l.revision.load(Relaxed) as f64)],
        );
        o.counter(
            "ringmaker_lease_renewals",
            "Lease renewals, by result (confirmed, or unanswered: no answer in time)",
            [
                ("confirmed", l.renewals.load(Relaxed)),
                ("unanswered", l.unanswered.load(Relaxed)),
            ]
            .map(|(r, v)| (vec![("result", r.to_owned())], v)),
        );
    }
    let firm = bus.firm.lock().ok().and_then(|g| g.clone());
    if let Some(f) = firm {
        o.gauge(
            "ringmaker_firm_claim_usd",
            "This engine's claim on the firm's limits ([firm]), USD, by base asset and limit \
             (gross; net long; net short)",
            f.claims.iter().flat_map(|c| {
                [("gross", c.gross), ("long", c.long), ("short", c.short)]
                    .into_iter()
                    .filter_map(|(l, v)| {
                        v.map(|v| (vec![("asset", c.asset.clone()), ("limit", l.to_owned())], v))
                    })
            }),
        );
        o.gauge(
            "ringmaker_firm_room_usd",
            "What the firm's limits leave each instrument's position plus open orders, USD, by \
             side (instruments under no limit are not shown)",
            insts
                .iter()
                .zip(&f.room_usd)
                .flat_map(|((_, _, k), &(buy, sell))| {
                    [("buy", buy), ("sell", sell)]
                        .into_iter()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(side, v)| {
                            (
                                vec![("instrument", k.clone()), ("side", side.to_owned())],
                                v,
                            )
                        })
                }),
        );
        o.gauge(
            "ringmaker_firm_pnl_usd",
            "The firm's PnL today as this engine counts it (silent peers at their whole share of \
             the daily loss), USD",
            [(Vec::new(), f.firm_pnl_usd)],
        );
        o.gauge(
            "ringmaker_firm_halted",
            "1 while the firm's daily loss limit halts this engine",
            [(Vec::new(), f64::from(u8::from(f.halted)))],
        );
        o.counter(
            "ringmaker_firm_config_mismatches",
            "Heartbeats from engines whose [firm] section differs from this one's (they must be \
             the same)",
            [(Vec::new(), bus.firm_mismatches.load(Relaxed))],
        );
        o.counter(
            "ringmaker_firm_limits",
            "The firm's limits given to the engine (one event per instrument whenever its room \
             changes)",
            [(Vec::new(), cx.shared.counters.snapshot().firm_limits)],
        );
    }
    if !ops.hedges.is_empty() {
        let groups: Vec<(&engine::HedgeGroup, &super::state::HedgeGauges)> = cx
            .config
            .engine
            .hedges
            .iter()
            .zip(ops.hedges.iter())
            .collect();
        let group = |g: &engine::HedgeGroup| -> Labels { vec![("group", g.name.clone())] };
        let base = |units: i128| units as f64 / 10f64.powi(engine::DELTA_SCALE as i32);
        o.gauge(
            "ringmaker_hedge_delta",
            "A [[hedge]] group's net delta: every member's position in its base asset",
            groups.iter().filter_map(|(g, h)| {
                let d = h.delta_units.load(Relaxed);
                (d != i64::MIN).then(|| (group(g), base(i128::from(d))))
            }),
        );
        o.gauge(
            "ringmaker_hedge_band",
            "A [[hedge]] group's band and hard limit, base asset",
            groups.iter().flat_map(|(g, _)| {
                [("band", g.band), ("hard_limit", g.hard_limit)].map(|(limit, v)| {
                    (
                        vec![("group", g.name.clone()), ("limit", limit.to_owned())],
                        base(v),
                    )
                })
            }),
        );
        o.gauge(
            "ringmaker_hedge_breaching",
            "1 while a [[hedge]] group's |delta| is outside its band",
            groups
                .iter()
                .map(|(g, h)| (group(g), h.breaching.load(Relaxed) as f64)),
        );
        o.counter(
            "ringmaker_hedge_orders",
            "Hedge orders placed, by kind: passive (post-only at the touch), active_age and \
             active_hard (an IOC past the age or at the hard limit)",
            groups.iter().flat_map(|(g, h)| {
                ["passive", "active_age", "active_hard"]
                    .into_iter()
                    .zip(h.orders.iter())
                    .map(|(kind, n)| {
                        (
                            vec![("group", g.name.clone()), ("kind", kind.to_owned())],
                            n.load(Relaxed),
                        )
                    })
            }),
        );
        o.counter(
            "ringmaker_hedge_held_back",
            "Hedges held back, by reason: rate (a rate budget, batches), cost_cap (breaches), \
             price_limit (the far touch past the price limit, batches), no_route (breaches no \
             hedge instrument could take)",
            groups.iter().flat_map(|(g, h)| {
                ["rate", "cost_cap", "price_limit", "no_route"]
                    .into_iter()
                    .zip(h.held_back.iter())
                    .map(|(reason, n)| {
                        (
                            vec![("group", g.name.clone()), ("reason", reason.to_owned())],
                            n.load(Relaxed),
                        )
                    })
            }),
        );
        o.gauge(
            "ringmaker_hedge_cost_today",
            "Active hedges' worst-case cost today (UTC), as the cost cap counts it, in the hedge \
             instruments' quote currency",
            groups
                .iter()
                .map(|(g, h)| (group(g), f64::from_bits(h.cost_today.load(Relaxed)))),
        );
    }
    if live_venue {
        o.counter(
            "ringmaker_venue_rate_limited",
            "Requests the venue answered with 429 (too many requests) or 418 (banned)",
            [(Vec::new(), ops.venue.rate_limited.load(Relaxed))],
        );
    }
    let sh = cx.shared;
    let offset = sh.clock_offset_ns.load(Relaxed);
    if offset != i64::MIN {
        o.gauge(
            "ringmaker_clock_offset_seconds",
            "Median of (kernel receive stamp - venue event time) over recent messages",
            [(Vec::new(), offset as f64 / 1e9)],
        );
    }
    if let Some(Some(st)) = sh.kernel_clock.load() {
        o.gauge(
            "ringmaker_clock_synchronised",
            "1 when adjtimex says the kernel clock is synchronised",
            [(Vec::new(), f64::from(u8::from(st.synchronised)))],
        );
        o.gauge(
            "ringmaker_clock_maxerror_seconds",
            "adjtimex's maximum error of the kernel clock",
            [(Vec::new(), st.maxerror_us as f64 / 1e6)],
        );
    }
    o.gauge(
        "ringmaker_clock_fault",
        "1 while the clock check fails and quotes are pulled",
        [(
            Vec::new(),
            f64::from(u8::from(sh.clock_failing.load(Relaxed))),
        )],
    );
    let lat = ops.latency.lock().map(|l| l.clone()).unwrap_or_default();
    if !lat.is_empty() {
        let f = Family::<Labels, Hist>::default();
        for (hop, b) in lat {
            let _ = f.get_or_create(&vec![("hop", hop.to_owned())]).0.set(b);
        }
        o.reg.register(
            "ringmaker_hop_latency_seconds",
            "Latency of each hop through the pipeline since the run started (the latency.hlog \
             histograms, in 1-2-5 buckets from 1 us to 1 s)",
            f,
        );
    }
    let c = sh.counters.snapshot();
    let rings = &cx.config.live.rings;
    let published_in = c.feed_events + c.timer_ticks + c.reports + c.controls + c.firm_limits;
    o.gauge(
        "ringmaker_ring_occupancy",
        "Slots in use (published, not yet consumed by the engine or the gateway)",
        [
            (
                "input",
                published_in
                    .saturating_sub(c.engine_events)
                    .min(rings.input as u64),
            ),
            (
                "output",
                c.engine_intents
                    .saturating_sub(c.gateway_intents)
                    .min(rings.output as u64),
            ),
        ]
        .map(|(r, v)| (vec![("ring", r.to_owned())], v as f64)),
    );
    o.gauge(
        "ringmaker_ring_capacity",
        "Ring size, slots",
        [("input", rings.input), ("output", rings.output)]
            .map(|(r, v)| (vec![("ring", r.to_owned())], v as f64)),
    );
    o.gauge(
        "ringmaker_journal_bytes",
        "Journal bytes written by this run (records and segment headers)",
        [(Vec::new(), e.journal_bytes.load(Relaxed) as f64)],
    );
    o.gauge(
        "ringmaker_journal_segments",
        "Journal segments (files) in use",
        [(Vec::new(), (e.journal_segment.load(Relaxed) + 1) as f64)],
    );
    o.counter(
        "ringmaker_journal_records",
        "Journal records written",
        [(Vec::new(), e.journal_records.load(Relaxed))],
    );
    o.counter(
        "ringmaker_engine_events",
        "Events the engine consumed",
        [(Vec::new(), c.engine_events)],
    );
    o.counter(
        "ringmaker_intents",
        "Intents the engine published to the gateway",
        [(Vec::new(), c.engine_intents)],
    );
    o.counter(
        "ringmaker_mode_changes",
        "Mode changes",
        [(Vec::new(), c.mode_changes)],
    );
    o.counter(
        "ringmaker_feed_ring_overflows",
        "Times the input ring was full for a market event (the book is resynced)",
        [(Vec::new(), c.ring_overflows)],
    );
    o.counter(
        "ringmaker_feed_dropped_events",
        "Market events dropped for a full input ring",
        [(Vec::new(), c.dropped_events)],
    );
    o.counter(
        "ringmaker_control_commands",
        "Operator commands answered (ringmaker ctl, SIGHUP), by command",
        super::control::Verb::ALL.iter().enumerate().map(|(k, v)| {
            (
                vec![("command", v.name().to_owned())],
                ops.control.commands[k].load(Relaxed),
            )
        }),
    );
    o.counter(
        "ringmaker_config_reloads",
        "Hot reloads, by result",
        [
            ("applied", ops.control.reloads_applied.load(Relaxed)),
            ("refused", ops.control.reloads_refused.load(Relaxed)),
        ]
        .map(|(r, v)| (vec![("result", r.to_owned())], v)),
    );
    let mut text = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &o.reg);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[[hedge]]` group's state reaches `/metrics` from what the engine thread publishes, and
    /// the exposition stays valid for promtool (when it is there: `RINGMAKER_PROMTOOL`).
    #[test]
    fn hedge_groups_are_served() {
        let text = test_support::config_text("hedge-perp-spot-btcusdt.toml");
        let config = RunConfig::from_toml(&text).unwrap();
        let shared = Shared::new(
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            crate::live::clock::ReplayClock::new(0.0, quanta::Clock::new()),
        )
        .with_instruments(config.engine.instruments.len())
        .with_hedge_groups(config.engine.hedges.len());
        let engine = engine::Engine::new(&config.engine);
        super::super::state::publish(&shared.ops, &engine, &[], (0, 0, 0));
        let out = render(&Context {
            config: &config,
            shared: &shared,
            start_time: 0.0,
        });
        for line in [
            "ringmaker_hedge_delta{group=\"btc\"} 0.0",
            "ringmaker_hedge_band{group=\"btc\",limit=\"band\"} 0.004",
            "ringmaker_hedge_band{group=\"btc\",limit=\"hard_limit\"} 0.01",
            "ringmaker_hedge_breaching{group=\"btc\"} 0.0",
            "ringmaker_hedge_orders_total{group=\"btc\",kind=\"active_hard\"} 0",
            "ringmaker_hedge_held_back_total{group=\"btc\",reason=\"cost_cap\"} 0",
            "ringmaker_hedge_cost_today{group=\"btc\"} 0.0",
        ] {
            assert!(out.contains(line), "{line} not in:\n{out}");
        }
        if let Ok(promtool) = std::env::var("RINGMAKER_PROMTOOL") {
            use std::io::Write;
            let mut child = std::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(to_classic(&out).as_bytes())
                .unwrap();
            let done = child.wait_with_output().unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&done.stdout),
                String::from_utf8_lossy(&done.stderr)
            );
            assert!(
                !said.contains("ringmaker_hedge"),
                "promtool on the hedge families: {said}"
            );
        }
    }

    #[test]
    fn the_classic_format_names_counter_families_by_their_samples() {
        let om = "# HELP a_things Things.\n# TYPE a_things counter\na_things_total{x=\"1\"} 2\n\
                  # HELP b Bees.\n# TYPE b gauge\n# UNIT b seconds\nb 1.5\n# EOF\n";
        assert_eq!(
            to_classic(om),
            "# HELP a_things_total Things.\n# TYPE a_things_total counter\n\
             a_things_total{x=\"1\"} 2\n# HELP b Bees.\n# TYPE b gauge\nb 1.5\n"
        );
    }
}
