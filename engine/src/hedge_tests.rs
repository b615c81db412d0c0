//! Tests of delta hedging: the delta conversions ([`delta_units`], [`lots_for_delta`]), then the
//! planner ([`prepare`], [`plan`]) through a whole engine quoting a USDⓈ-M perpetual and hedging
//! its delta on spot, with a small simulated venue that answers the engine's orders.

use super::*;
use crate::config::Config;
use crate::engine::Engine;
use crate::event::{Event, ExecKind, ExecReport, LevelUpdate};
use crate::instrument::InstrumentSpec;
use crate::intent::{Intent, IntentKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Delta units in one BTC (10^DELTA_SCALE).
const BTC: i128 = 1_000_000_000_000;

// ---- A. Delta conversion -----------------------------------------------------------------------

/// USDⓈ-M BTCUSDT: linear, lot 0.001 BTC.
fn linear() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap()
}

/// Spot BTCUSDT: lot 0.00001 BTC, book quantities to 8 decimals.
fn spot() -> Instrument {
    Instrument::from_spec(&InstrumentSpec {
        symbol: "BTCUSDT",
        kind: InstrumentKind::Spot,
        tick: "0.01",
        lot: "0.00001",
        book_lot: Some("0.00000001"),
        min_qty: "0.00001",
        min_notional: "5",
        ..InstrumentSpec::default()
    })
    .unwrap()
}

/// COIN-M BTCUSD_PERP: inverse, tick 0.1 USD, one contract of 100 USD.
fn inverse() -> Instrument {
    Instrument::from_spec(&InstrumentSpec {
        symbol: "BTCUSD_PERP",
        kind: InstrumentKind::Inverse,
        tick: "0.1",
        lot: "1",
        min_qty: "1",
        min_notional: "100",
        contract_size: Some("100"),
        ..InstrumentSpec::default()
    })
    .unwrap()
}

/// A fair value of `t` whole ticks.
fn fv_ticks(t: i64) -> Option<Fx> {
    Some(Fx::from_num(t))
}

#[test]
fn linear_delta_is_the_lots_times_the_lot() {
    let i = linear();
    assert_eq!(delta_units(&i, 5, None), Some(5_000_000_000));
    assert_eq!(delta_units(&i, -3, None), Some(-3_000_000_000));
    assert_eq!(delta_units(&i, 0, None), Some(0));
    // The fair value plays no part.
    assert_eq!(delta_units(&i, 5, fv_ticks(600_000)), Some(5_000_000_000));
    // 1 BTC is 1,000 lots.
    assert_eq!(delta_units(&i, 1_000, None), Some(BTC));
}

#[test]
fn spot_delta_is_the_lots_times_the_lot() {
    let i = spot();
    assert_eq!(delta_units(&i, 123, None), Some(123 * 10i128.pow(7)));
    assert_eq!(delta_units(&i, -123, None), Some(-123 * 10i128.pow(7)));
    assert_eq!(delta_units(&i, 100_000, None), Some(BTC));
}

#[test]
fn inverse_delta_is_contracts_times_size_over_price_rounded_down() {
    let i = inverse();
    // 10 contracts × 100 USD / 60,000 USD = 1/60 BTC = 16,666,666,666.67 units.
    let d = delta_units(&i, 10, fv_ticks(600_000)).unwrap();
    assert_eq!(d, 16_666_666_666);
    // Within one unit of the exact rational 10 × 100 × 10^12 / 60,000, and not above it.
    let exact_num = 10 * 100 * BTC;
    assert!(d * 60_000 <= exact_num, "rounded down");
    assert!(exact_num - d * 60_000 < 60_000, "within one unit");
    // Short: rounded towards −∞, one unit further from zero.
    let s = delta_units(&i, -10, fv_ticks(600_000)).unwrap();
    assert_eq!(s, -16_666_666_667);
    assert!(s * 60_000 <= -exact_num && -exact_num - s * 60_000 < 60_000);
    // A fair value between ticks: 600,000.5 ticks = 60,000.05 USD.
    assert_eq!(
        delta_units(&i, 10, Some(Fx::from_num(600_000.5))),
        Some(2 * 10i128.pow(16) / 1_200_001)
    );
    // 60 contracts at 60,000 USD: exactly 0.1 BTC.
    assert_eq!(delta_units(&i, 60, fv_ticks(600_000)), Some(BTC / 10));
    // No fair value: unknown, unless there is no position.
    assert_eq!(delta_units(&i, 10, None), None);
    assert_eq!(delta_units(&i, -1, None), None);
    assert_eq!(delta_units(&i, 10, Some(Fx::ZERO)), None);
    assert_eq!(delta_units(&i, 0, None), Some(0));
}

#[test]
fn lots_for_delta_rounds_to_the_nearest_lot_or_down() {
    let i = linear();
    // 2.5 lots' worth: nearest rounds half up, floor down.
    assert_eq!(lots_for_delta(&i, 2_500_000_000, None, true), Some(3));
    assert_eq!(lots_for_delta(&i, 2_500_000_000, None, false), Some(2));
    assert_eq!(lots_for_delta(&i, 2_400_000_000, None, true), Some(2));
    assert_eq!(lots_for_delta(&i, 2_400_000_000, None, false), Some(2));
    assert_eq!(lots_for_delta(&i, 2_999_999_999, None, false), Some(2));
    assert_eq!(lots_for_delta(&i, 3_000_000_000, None, false), Some(3));
    // Spot: 0.004 BTC is 400 lots of 0.00001.
    assert_eq!(
        lots_for_delta(&spot(), 4 * BTC / 1_000, None, true),
        Some(400)
    );
    assert_eq!(
        lots_for_delta(&spot(), 4 * BTC / 1_000, None, false),
        Some(400)
    );
    // A negative delta is taken as none.
    assert_eq!(lots_for_delta(&i, -5_000_000_000, None, true), Some(0));
    assert_eq!(lots_for_delta(&i, -5_000_000_000, None, false), Some(0));
}

#[test]
fn inverse_lots_for_delta_is_delta_times_price_over_contract_size() {
    let i = inverse();
    // 0.0166666 BTC × 60,000 USD / 100 USD = 9.99996 contracts.
    assert_eq!(
        lots_for_delta(&i, 16_666_600_000, fv_ticks(600_000), true),
        Some(10)
    );
    assert_eq!(
        lots_for_delta(&i, 16_666_600_000, fv_ticks(600_000), false),
        Some(9)
    );
    // 0.02 BTC × 60,000 / 100 = 12 exactly.
    assert_eq!(
        lots_for_delta(&i, 2 * BTC / 100, fv_ticks(600_000), false),
        Some(12)
    );
    assert_eq!(lots_for_delta(&i, 16_666_600_000, None, true), None);
    assert_eq!(
        lots_for_delta(&i, -16_666_600_000, fv_ticks(600_000), true),
        Some(0)
    );
}

/// A fair value of `ticks` plus `frac16` / 2^16 of a tick.
fn fv_frac(ticks: i64, frac16: u16) -> Fx {
    Fx::from_bits((i128::from(ticks) << 64) | (i128::from(frac16) << 48))
}

proptest! {
    #[test]
    fn linear_and_spot_lots_survive_a_round_trip(
        q in prop_oneof![0i64..10_000, 0..=crate::event::MAX_48, 0..=i64::MAX],
    ) {
        for (inst, per_lot) in [(linear(), 10i128.pow(9)), (spot(), 10i128.pow(7))] {
            let d = delta_units(&inst, q, None).unwrap();
            prop_assert_eq!(d, i128::from(q) * per_lot);
            prop_assert_eq!(lots_for_delta(&inst, d, None, true), Some(q));
            prop_assert_eq!(lots_for_delta(&inst, d, None, false), Some(q));
        }
    }

    #[test]
    fn linear_delta_is_odd(q in -(1i64 << 62)..(1i64 << 62)) {
        let i = linear();
        let (a, b) = (delta_units(&i, q, None).unwrap(), delta_units(&i, -q, None).unwrap());
        prop_assert_eq!(b, -a);
        prop_assert_eq!(a, i128::from(q) * 1_000_000_000);
    }

    #[test]
    fn inverse_contracts_survive_a_round_trip(
        q in 0i64..10_000_000,
        ticks in 10_000i64..2_000_000,
        frac in any::<u16>(),
    ) {
        let i = inverse();
        let fv = fv_frac(ticks, frac);
        let d = delta_units(&i, q, Some(fv)).unwrap();
        // Rounded down: d ≤ q × 1,000 ticks × 10^12 / fv < d + 1, fv in 2^-16 ticks.
        let fv16 = i128::from(ticks) * 65_536 + i128::from(frac);
        let num = i128::from(q) * 1_000 * BTC * 65_536;
        prop_assert!(d * fv16 <= num && num < (d + 1) * fv16);
        let nearest = lots_for_delta(&i, d, Some(fv), true).unwrap();
        let floor = lots_for_delta(&i, d, Some(fv), false).unwrap();
        // Within a contract either way; the rounding error (under one delta unit, far below half
        // a contract) leaves the nearest exact and the floor at most one short.
        prop_assert!((nearest - q).abs() <= 1 && (floor - q).abs() <= 1);
        prop_assert_eq!(nearest, q);
        prop_assert!(floor == q || floor == q - 1, "{} for {}", floor, q);
    }

    #[test]
    fn inverse_delta_is_monotone_in_the_contracts(
        q in -10_000_000i64..10_000_000,
        ticks in 10_000i64..2_000_000,
        frac in any::<u16>(),
    ) {
        let i = inverse();
        let fv = Some(fv_frac(ticks, frac));
        let (a, b) = (delta_units(&i, q, fv).unwrap(), delta_units(&i, q + 1, fv).unwrap());
        prop_assert!(a <= b, "{} contracts: {}, {} contracts: {}", q, a, q + 1, b);
        prop_assert_eq!(a.signum(), i128::from(q.signum()));
    }
}

// ---- B. The planner, through a whole engine ----------------------------------------------------

/// The quoted instrument: USDⓈ-M BTCUSDT, lot 0.001 (10^9 delta units).
const QUOTED: InstrumentId = 0;
/// The hedge instrument: spot BTCUSDT, lot 0.00001 (10^7 delta units), no `[instrument.quote]`.
const HEDGE: InstrumentId = 1;
/// Delta units in one lot of the quoted instrument (0.001 BTC).
const PERP_LOT: i128 = 1_000_000_000;
/// Delta units in one lot of the hedge instrument (0.00001 BTC).
const SPOT_LOT: i128 = 10_000_000;
/// The group's band (0.003 BTC) and hard limit (0.006 BTC): a fill of one 2-lot layer stays in
/// the band, two leave it, three reach the hard limit.
const BAND: i128 = 3 * PERP_LOT;
const HARD: i128 = 6 * PERP_LOT;
/// `max_age_ms`.
const MAX_AGE: i64 = 1_000 * MS;
const MS: i64 = 1_000_000;

/// Quote 0 (the grid of `engine_tests.rs`: book 1000 / 1001, bids 998 / 996 / 993 of 2 lots),
/// hedge on 1 (book 999 / 1001: fair value 1000, so 20 bps is 2 ticks).
const CFG: &str = r#"
[engine]
orders_per_10s = 300
orders_per_min = 1200
book_slots = 4096

[engine.venues.binance-spot]
orders_per_10s = 50
orders_per_min = 300

[[hedge]]
name = "btc"
quoted = ["binance-usdm:BTCUSDT"]
hedge = ["binance-spot:BTCUSDT"]
band = "0.003"
hard_limit = "0.006"
max_age_ms = 1000
max_hedges_per_min = 40
cost_cap = "10"
max_slippage_bps = 20.0

[[instrument]]
symbol = "BTCUSDT"
venue = "binance-usdm"
tick = "0.10"
lot = "0.001"
min_qty = "0.001"
min_notional = "0.1"
[instrument.quote]
fair_value = "mid"
offset_unit = "ticks"
start_offset = 2.0
first_spacing = 2.0
multiplier = 1.5
max_spacing = 8.0
layers = 3
layer_size = "0.002"
min_spread_bps = 0.0
skew_coeff = 0.001
[instrument.risk]
net_max = "1.000"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "500"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 3600000
cancel_budget_per_min = 1000

[[instrument]]
symbol = "BTCUSDT"
venue = "binance-spot"
tick = "0.10"
lot = "0.00001"
min_qty = "0.00001"
min_notional = "0.01"
[instrument.balances]
base = "1"
quote = "5000"
[instrument.risk]
net_max = "1.000"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "500"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 3600000
cancel_budget_per_min = 1000
[instrument.fees]
maker_bps = 10.0
taker_bps = 10.0
"#;

/// A book level of instrument `id`.
fn level(id: InstrumentId, side: Side, price: i64, qty: i64, t: i64, last: bool) -> Event {
    Event::level(
        id,
        0,
        t,
        LevelUpdate {
            side,
            price,
            qty,
            update_id: 1,
            last_in_msg: last,
            snapshot: false,
        },
    )
}

/// Syncs instrument `id`'s book to one level a side, as `engine_tests.rs`'s `synced_with` does.
fn sync_book(e: &mut Engine, o: &mut Vec<Intent>, id: InstrumentId, bid: i64, ask: i64, t: i64) {
    e.on_event(&Event::book_reset(id, 0, t, 1), o);
    e.on_event(&level(id, Side::Bid, bid, 100_000, t, false), o);
    e.on_event(&level(id, Side::Ask, ask, 100_000, t, true), o);
    e.on_event(&Event::book_valid(id, 0, t, 1), o);
}

/// Whether an execution report of `kind` ends its order.
fn ends(kind: ExecKind) -> bool {
    matches!(
        kind,
        ExecKind::Fill | ExecKind::Canceled | ExecKind::Rejected | ExecKind::Expired
    )
}

/// The intents of `v` on the hedge instrument.
fn on_hedge(v: &[Intent]) -> Vec<Intent> {
    v.iter()
        .filter(|i| i.instrument == HEDGE)
        .copied()
        .collect()
}

/// An engine and a venue for it: the quoted instrument's orders are acked and its cancels
/// confirmed on demand ([`Sim::settle_quotes`]); the hedge orders are answered by the test. Every
/// batch checks what must always hold: never a passive and an active hedge order open at once,
/// never two of either, and the quoted side's open orders within the hard limit.
#[derive(Debug)]
struct Sim {
    e: Engine,
    /// The engine's sink, drained after every batch.
    o: Vec<Intent>,
    /// The time of the next event, ns.
    t: i64,
    /// Every intent so far.
    log: Vec<Intent>,
    /// The quoted instrument's intents not answered yet.
    unanswered: Vec<Intent>,
    /// Hedge orders open at the venue: from their place until a report that ends them.
    hedge_open: BTreeMap<u64, TimeInForce>,
}

impl Sim {
    /// An engine on `cfg`, both books synced at time 0, the first grid placed and acked.
    fn new(cfg: &str) -> Sim {
        let mut e = Engine::new(&Config::from_toml(cfg).unwrap());
        let mut o = Vec::new();
        sync_book(&mut e, &mut o, QUOTED, 1000, 1001, 0);
        sync_book(&mut e, &mut o, HEDGE, 999, 1001, 0);
        let mut s = Sim {
            e,
            o,
            t: 0,
            log: Vec::new(),
            unanswered: Vec::new(),
            hedge_open: BTreeMap::new(),
        };
        let first = s.batch();
        assert_eq!(
            first.iter().filter(|i| i.instrument == QUOTED).count(),
            6,
            "three layers a side"
        );
        assert!(on_hedge(&first).is_empty(), "no delta, no hedge");
        s.settle_quotes();
        s
    }

    /// Moves the time of the next events to `t`.
    fn at(&mut self, t: i64) {
        assert!(t >= self.t);
        self.t = t;
    }

    /// The engine's batch end; its intents, checked and recorded.
    fn batch(&mut self) -> Vec<Intent> {
        self.e.on_batch_end(&mut self.o);
        let out = std::mem::take(&mut self.o);
        for i in &out {
            self.log.push(*i);
            if i.instrument == QUOTED {
                self.unanswered.push(*i);
            } else if i.instrument == HEDGE && i.kind == IntentKind::Place {
                assert!(
                    self.hedge_open.insert(i.client_order_id, i.tif).is_none(),
                    "a fresh id"
                );
                self.check_one_hedge_order();
            }
        }
        self.check_quoted_room();
        out
    }

    /// Never a post-only and an IOC hedge order open together, never two IOCs, never two
    /// post-only orders.
    fn check_one_hedge_order(&self) {
        let count = |tif| self.hedge_open.values().filter(|&&t| t == tif).count();
        let (passive, active) = (count(TimeInForce::PostOnly), count(TimeInForce::Ioc));
        assert!(
            passive == 0 || active == 0,
            "a passive and an active hedge order open at once: {:?}",
            self.hedge_open
        );
        assert!(active <= 1, "two IOCs open: {:?}", self.hedge_open);
        assert!(
            passive <= 1,
            "two passive orders open: {:?}",
            self.hedge_open
        );
    }

    /// After every batch: the quoted instrument's working bids and asks (orders being cancelled
    /// are on their way out), if they all filled, would not take the delta past the hard limit.
    fn check_quoted_room(&self) {
        let Some(delta) = self.e.hedge(0).unwrap().delta else {
            return;
        };
        // What still works (orders being cancelled are on their way out, forced).
        let orders = self.e.instrument(QUOTED).unwrap().orders;
        let working = |side| {
            let lots: i64 = orders
                .open()
                .filter(|o| o.side == side && o.state != crate::OrderState::PendingCancel)
                .map(|o| o.remaining())
                .sum();
            i128::from(lots) * PERP_LOT
        };
        let (open_bids, open_asks) = (working(Side::Bid), working(Side::Ask));
        assert!(
            delta + open_bids <= HARD,
            "working bids {open_bids} with delta {delta} pass the hard limit"
        );
        assert!(
            delta - open_asks >= -HARD,
            "working asks {open_asks} with delta {delta} pass the hard limit"
        );
    }

    /// Feeds an execution report for `cid` of instrument `id` at the current time.
    fn report(&mut self, id: InstrumentId, r: ExecReport) {
        if id == HEDGE && ends(r.kind) {
            self.hedge_open.remove(&r.client_order_id);
        }
        self.e.on_event(&Event::exec(id, 0, self.t, r), &mut self.o);
    }

    /// A report of `kind` without a fill.
    fn answer(&mut self, id: InstrumentId, kind: ExecKind, cid: u64) {
        self.report(id, ExecReport::new(kind, cid, 0, 0, 0));
    }

    /// Acks the quoted instrument's places and confirms its cancels, batch after batch until
    /// nothing is left to answer; the intents of those batches.
    fn settle_quotes(&mut self) -> Vec<Intent> {
        let mut out = Vec::new();
        for _ in 0..10 {
            if self.unanswered.is_empty() {
                return out;
            }
            for i in std::mem::take(&mut self.unanswered) {
                let kind = match i.kind {
                    IntentKind::Place => ExecKind::Ack,
                    IntentKind::Cancel => ExecKind::Canceled,
                };
                self.answer(QUOTED, kind, i.client_order_id);
            }
            out.extend(self.batch());
        }
        panic!("the quotes never settle: {:?}", self.unanswered);
    }

    /// The live order of the quoted instrument nearest the touch on `side`.
    fn best_quote(&self, side: Side) -> Option<crate::Order> {
        let orders = self.e.instrument(QUOTED).unwrap().orders;
        let live = orders
            .open()
            .filter(|o| o.side == side && o.state == crate::OrderState::Live)
            .copied();
        match side {
            Side::Bid => live.max_by_key(|o| o.price),
            Side::Ask => live.min_by_key(|o| o.price),
        }
    }

    /// Fills `qty` lots (all that is left when `None`) of the quoted instrument's live order
    /// nearest the touch on `side`, at its price; the lots filled.
    fn fill_quote_qty(&mut self, side: Side, qty: Option<i64>) -> i64 {
        let o = self.best_quote(side).expect("a live quote on that side");
        let last = qty.unwrap_or(o.remaining()).min(o.remaining());
        let kind = if last == o.remaining() {
            ExecKind::Fill
        } else {
            ExecKind::PartialFill
        };
        let r = ExecReport::new(kind, o.client_order_id, o.price, last, o.filled + last);
        self.report(QUOTED, r);
        last
    }

    /// Fills the quoted instrument's live order nearest the touch on `side`, all of it.
    fn fill_quote(&mut self, side: Side) -> i64 {
        self.fill_quote_qty(side, None)
    }

    /// Fills hedge order `cid`, all that is left, at its own price.
    fn fill_hedge(&mut self, cid: u64) {
        let o = *self
            .e
            .instrument(HEDGE)
            .unwrap()
            .orders
            .get(cid)
            .expect("a hedge order");
        let r = ExecReport {
            taker: o.tif == TimeInForce::Ioc,
            ..ExecReport::new(
                ExecKind::Fill,
                cid,
                o.price,
                o.remaining(),
                o.filled + o.remaining(),
            )
        };
        self.report(HEDGE, r);
    }

    /// A timer at `t` and a batch; its intents.
    fn timer(&mut self, t: i64) -> Vec<Intent> {
        self.at(t);
        self.e.on_event(&Event::timer(t), &mut self.o);
        self.batch()
    }

    /// The group's delta.
    fn delta(&self) -> i128 {
        self.e.hedge(0).unwrap().delta.expect("a delta")
    }

    /// The group's counters.
    fn stats(&self) -> HedgeStats {
        self.e.hedge(0).unwrap().stats
    }

    /// The group's delta from the positions, as the test counts it.
    fn delta_from_positions(&self) -> i128 {
        let pos = |id| i128::from(self.e.instrument(id).unwrap().position.qty);
        pos(QUOTED) * PERP_LOT + pos(HEDGE) * SPOT_LOT
    }
}

#[test]
fn the_setup_quotes_the_perpetual_and_leaves_spot_to_the_hedge() {
    let s = Sim::new(CFG);
    assert_eq!(s.e.hedge_groups(), 1);
    let h = s.e.hedge(0).unwrap();
    assert_eq!((h.config.band, h.config.hard_limit), (BAND, HARD));
    assert_eq!(h.config.max_age_ns, MAX_AGE);
    assert!(h.valid);
    assert_eq!(h.delta, Some(0));
    for id in [QUOTED, HEDGE] {
        assert_eq!(
            s.e.instrument(id).unwrap().mode,
            (crate::Mode::Normal, crate::ModeReason::None)
        );
    }
    assert_eq!(
        s.e.instrument(HEDGE).unwrap().fair_value,
        Some(Fx::from_num(1000))
    );
    assert!(on_hedge(&s.log).is_empty());
}

#[test]
fn inside_the_band_nothing_is_hedged() {
    let mut s = Sim::new(CFG);
    s.at(10 * MS);
    // One layer: 0.002 BTC.
    assert_eq!(s.fill_quote(Side::Bid), 2);
    s.batch();
    assert_eq!(s.delta(), 2 * PERP_LOT);
    s.settle_quotes();
    // Then one lot more: 0.003 BTC, the band itself, still inside.
    s.at(20 * MS);
    assert_eq!(s.fill_quote_qty(Side::Bid, Some(1)), 1);
    s.batch();
    assert_eq!(s.delta(), BAND);
    s.settle_quotes();
    // Well past the age limit: still nothing.
    s.timer(20 * MS + 3 * MAX_AGE);
    s.settle_quotes();
    assert!(on_hedge(&s.log).is_empty(), "{:?}", on_hedge(&s.log));
    assert_eq!(s.e.hedge(0).unwrap().breach_since, None);
    assert_eq!(s.stats(), HedgeStats::default());
}

#[test]
fn outside_the_band_the_first_hedge_is_one_post_only_order_at_the_touch() {
    let mut s = Sim::new(CFG);
    s.at(10 * MS);
    s.fill_quote(Side::Bid);
    s.fill_quote(Side::Bid);
    let out = s.batch();
    // 0.004 BTC long: outside the band (0.003), below the hard limit (0.006).
    assert_eq!(s.delta(), 4 * PERP_LOT);
    assert_eq!(s.e.hedge(0).unwrap().breach_since, Some(10 * MS));
    let h = on_hedge(&out);
    assert_eq!(h.len(), 1, "{h:?}");
    // Sell 0.004 BTC = 400 spot lots, post-only at the best ask.
    assert_eq!(
        (h[0].kind, h[0].tif, h[0].side, h[0].price, h[0].qty),
        (
            IntentKind::Place,
            TimeInForce::PostOnly,
            Side::Ask,
            1001,
            400
        )
    );
    let st = s.stats();
    assert_eq!((st.breaches, st.passive), (1, 1));
    assert_eq!((st.active_age, st.active_hard), (0, 0));
    // Acked and left alone (the touch has not moved); no IOC while the quotes settle.
    s.at(11 * MS);
    s.answer(HEDGE, ExecKind::Ack, h[0].client_order_id);
    s.batch();
    s.settle_quotes();
    s.timer(500 * MS);
    assert_eq!(on_hedge(&s.log).len(), 1, "{:?}", on_hedge(&s.log));
    assert_eq!(s.stats().passive, 1);
    // It fills: the delta is back to zero.
    s.at(600 * MS);
    s.fill_hedge(h[0].client_order_id);
    s.batch();
    assert_eq!(s.delta(), 0);
    assert_eq!(s.delta_from_positions(), 0);
    assert_eq!(s.e.hedge(0).unwrap().breach_since, None);
    s.timer(600 * MS + 2 * MAX_AGE);
    assert_eq!(on_hedge(&s.log).len(), 1);
    assert!(s
        .log
        .iter()
        .all(|i| i.instrument != HEDGE || i.tif != TimeInForce::Ioc));
}

#[test]
fn past_the_age_limit_the_passive_is_cancelled_then_an_ioc_takes_the_delta() {
    let mut s = Sim::new(CFG);
    let t0 = 10 * MS;
    s.at(t0);
    s.fill_quote(Side::Bid);
    s.fill_quote(Side::Bid);
    let h = on_hedge(&s.batch());
    assert_eq!(h.len(), 1);
    let passive = h[0].client_order_id;
    s.at(t0 + MS);
    s.answer(HEDGE, ExecKind::Ack, passive);
    s.batch();
    s.settle_quotes();
    // One nanosecond short of the age limit: nothing.
    assert!(on_hedge(&s.timer(t0 + MAX_AGE / 2)).is_empty());
    assert!(on_hedge(&s.timer(t0 + MAX_AGE - 1)).is_empty());
    // At the age limit: the passive order is cancelled (forced), nothing placed yet.
    let h = on_hedge(&s.timer(t0 + MAX_AGE));
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].client_order_id, h[0].forced),
        (IntentKind::Cancel, passive, true)
    );
    assert_eq!(s.stats().cancelled_for_active, 1);
    // Pending cancel: still no IOC, and no second cancel.
    assert!(on_hedge(&s.timer(t0 + MAX_AGE + 100 * MS)).is_empty());
    assert!(on_hedge(&s.timer(t0 + MAX_AGE + 200 * MS)).is_empty());
    assert_eq!(s.stats().active_age, 0);
    // The venue confirms the cancel: the IOC goes out at once.
    s.at(t0 + MAX_AGE + 300 * MS);
    s.answer(HEDGE, ExecKind::Canceled, passive);
    let h = on_hedge(&s.batch());
    assert_eq!(h.len(), 1, "{h:?}");
    let ioc = h[0];
    assert_eq!(
        (ioc.kind, ioc.tif, ioc.side, ioc.qty),
        (IntentKind::Place, TimeInForce::Ioc, Side::Ask, 400)
    );
    // Fair value 1000 (999 / 1001), 20 bps of it is 2 ticks: a sell limit of 998, at or below
    // the best bid (999) and no further than 2 ticks from fair value.
    assert_eq!(ioc.price, 998);
    assert!(ioc.price <= 999, "reaches the far touch");
    assert!(1000 - ioc.price <= 2, "within max_slippage_bps");
    let st = s.stats();
    assert_eq!((st.passive, st.active_age, st.active_hard), (1, 1, 0));
    // While the IOC is in flight nothing else goes out; filled, the delta is flat.
    assert!(on_hedge(&s.timer(t0 + MAX_AGE + 301 * MS)).is_empty());
    s.at(t0 + MAX_AGE + 302 * MS);
    s.fill_hedge(ioc.client_order_id);
    s.batch();
    assert_eq!(s.delta(), 0);
    assert_eq!(s.e.instrument(HEDGE).unwrap().position.qty, -400);
    assert!(s.e.hedge(0).unwrap().cost_today > Fx::ZERO);
    assert!(on_hedge(&s.timer(t0 + 3 * MAX_AGE)).is_empty());
}

#[test]
fn at_the_hard_limit_an_ioc_goes_out_at_once() {
    let mut s = Sim::new(CFG);
    s.at(10 * MS);
    // Three layers in one batch: 0.006 BTC, the hard limit.
    for _ in 0..3 {
        s.fill_quote(Side::Bid);
    }
    let h = on_hedge(&s.batch());
    assert_eq!(s.delta(), HARD);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].tif, h[0].side, h[0].price, h[0].qty),
        (IntentKind::Place, TimeInForce::Ioc, Side::Ask, 998, 600)
    );
    let st = s.stats();
    assert_eq!(
        (st.passive, st.active_age, st.active_hard),
        (0, 0, 1),
        "{st:?}"
    );
    s.fill_hedge(h[0].client_order_id);
    s.batch();
    assert_eq!(s.delta(), 0);
}

#[test]
fn reaching_the_hard_limit_cancels_the_passive_then_sends_the_ioc_without_waiting() {
    let mut s = Sim::new(CFG);
    s.at(10 * MS);
    s.fill_quote(Side::Bid);
    s.fill_quote(Side::Bid);
    let h = on_hedge(&s.batch());
    let passive = h[0].client_order_id;
    assert_eq!(h[0].tif, TimeInForce::PostOnly);
    s.at(11 * MS);
    s.answer(HEDGE, ExecKind::Ack, passive);
    s.batch();
    s.settle_quotes();
    // The one bid left (2 lots, the room the hard limit leaves) fills: 0.006 BTC, 10 ms into
    // the breach.
    s.at(20 * MS);
    assert_eq!(s.fill_quote(Side::Bid), 2);
    let h = on_hedge(&s.batch());
    assert_eq!(s.delta(), HARD);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].client_order_id, h[0].forced),
        (IntentKind::Cancel, passive, true)
    );
    s.at(21 * MS);
    s.answer(HEDGE, ExecKind::Canceled, passive);
    let h = on_hedge(&s.batch());
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].tif, h[0].side, h[0].price, h[0].qty),
        (IntentKind::Place, TimeInForce::Ioc, Side::Ask, 998, 600)
    );
    let st = s.stats();
    assert_eq!(
        (
            st.passive,
            st.active_age,
            st.active_hard,
            st.cancelled_for_active
        ),
        (1, 0, 1, 1)
    );
    assert!(s.t - 10 * MS < MAX_AGE, "long before the age limit");
}

#[test]
fn a_short_delta_is_hedged_by_buying_at_the_bid() {
    let mut s = Sim::new(CFG);
    s.at(10 * MS);
    s.fill_quote(Side::Ask);
    s.fill_quote(Side::Ask);
    let h = on_hedge(&s.batch());
    assert_eq!(s.delta(), -4 * PERP_LOT);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].tif, h[0].side, h[0].price, h[0].qty),
        (
            IntentKind::Place,
            TimeInForce::PostOnly,
            Side::Bid,
            999,
            400
        )
    );
    s.at(11 * MS);
    s.answer(HEDGE, ExecKind::Ack, h[0].client_order_id);
    s.batch();
    s.settle_quotes();
    s.timer(10 * MS + MAX_AGE);
    s.at(10 * MS + MAX_AGE + MS);
    s.answer(HEDGE, ExecKind::Canceled, h[0].client_order_id);
    let h = on_hedge(&s.batch());
    // A buy limit of fair value + 2 ticks: 1002, at or above the best ask (1001).
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].tif, h[0].side, h[0].price, h[0].qty),
        (IntentKind::Place, TimeInForce::Ioc, Side::Bid, 1002, 400)
    );
}

#[test]
fn a_passive_hedge_follows_the_touch() {
    let mut s = Sim::new(CFG);
    s.at(10 * MS);
    s.fill_quote(Side::Bid);
    s.fill_quote(Side::Bid);
    let h = on_hedge(&s.batch());
    assert_eq!((h[0].tif, h[0].price), (TimeInForce::PostOnly, 1001));
    let first = h[0].client_order_id;
    s.at(11 * MS);
    s.answer(HEDGE, ExecKind::Ack, first);
    s.batch();
    s.settle_quotes();
    // A better ask appears on spot: 999 / 1000. The order at 1001 is behind the touch: it is
    // cancelled (a discretionary cancel), and nothing else goes out until it is done.
    s.at(20 * MS);
    s.e.on_event(&level(HEDGE, Side::Ask, 1000, 5_000, s.t, true), &mut s.o);
    let h = on_hedge(&s.batch());
    assert_eq!(
        s.e.instrument(HEDGE).unwrap().fair_value,
        Some(Fx::from_num(999.5))
    );
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].client_order_id, h[0].forced),
        (IntentKind::Cancel, first, false)
    );
    assert_eq!(s.stats().reprices, 1);
    assert!(on_hedge(&s.timer(30 * MS)).is_empty());
    s.at(40 * MS);
    s.answer(HEDGE, ExecKind::Canceled, first);
    let h = on_hedge(&s.batch());
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].kind, h[0].tif, h[0].side, h[0].price, h[0].qty),
        (
            IntentKind::Place,
            TimeInForce::PostOnly,
            Side::Ask,
            1000,
            400
        )
    );
    let st = s.stats();
    assert_eq!((st.passive, st.reprices, st.active_age), (2, 1, 0));
}

#[test]
fn the_rate_budget_holds_back_a_second_hedge_within_the_minute() {
    let mut s = Sim::new(&CFG.replace("max_hedges_per_min = 40", "max_hedges_per_min = 1"));
    let t0 = 10 * MS;
    s.at(t0);
    s.fill_quote(Side::Bid);
    s.fill_quote(Side::Bid);
    let h = on_hedge(&s.batch());
    assert_eq!(h.len(), 1);
    let passive = h[0].client_order_id;
    s.at(t0 + MS);
    s.answer(HEDGE, ExecKind::Ack, passive);
    s.batch();
    s.settle_quotes();
    // Past the age: the cancel goes (cancels spend no rate budget), the IOC cannot.
    let h = on_hedge(&s.timer(t0 + MAX_AGE));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].kind, IntentKind::Cancel);
    s.at(t0 + MAX_AGE + MS);
    s.answer(HEDGE, ExecKind::Canceled, passive);
    assert!(on_hedge(&s.batch()).is_empty());
    let held = s.stats().rate_limited;
    assert!(held > 0);
    assert_eq!(s.stats().active_age, 0);
    // Still within the minute of the passive order: held back again.
    assert!(on_hedge(&s.timer(t0 + 59_999 * MS)).is_empty());
    assert!(s.stats().rate_limited > held);
    // A minute after the passive order, the budget has room again: the IOC goes.
    let h = on_hedge(&s.timer(t0 + 60_000 * MS));
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].tif, h[0].side, h[0].qty),
        (TimeInForce::Ioc, Side::Ask, 400)
    );
    assert_eq!(s.stats().active_age, 1);
}

#[test]
fn the_quoted_side_that_grows_the_delta_keeps_within_the_hard_limit() {
    let mut s = Sim::new(CFG);
    let open_bids = |s: &Sim| s.e.instrument(QUOTED).unwrap().orders.open_qty(Side::Bid);
    assert_eq!(open_bids(&s), 6, "0.006 BTC of bids: all the room there is");
    s.at(10 * MS);
    s.fill_quote(Side::Bid);
    s.fill_quote(Side::Bid);
    s.batch();
    s.settle_quotes();
    // 0.004 BTC long: 0.002 of room, one layer.
    assert_eq!(s.delta(), 4 * PERP_LOT);
    assert_eq!(open_bids(&s), 2);
    // One lot more (a partial fill): 0.001 BTC of room, less than a layer: no bids.
    s.at(20 * MS);
    s.fill_quote_qty(Side::Bid, Some(1));
    s.batch();
    s.settle_quotes();
    assert_eq!(s.delta(), 5 * PERP_LOT);
    assert_eq!(open_bids(&s), 0);
    // The asks (reducing the delta) are not held back.
    assert_eq!(
        s.e.instrument(QUOTED).unwrap().orders.open_qty(Side::Ask),
        6
    );
    // The passive hedge (0.005 BTC: its 0.004 stays, within the band of the need) fills: 0.001
    // BTC left, 0.005 of room: two layers again.
    let passive = *s.hedge_open.keys().next().expect("a passive hedge");
    s.at(30 * MS);
    s.answer(HEDGE, ExecKind::Ack, passive);
    s.fill_hedge(passive);
    s.batch();
    s.settle_quotes();
    assert_eq!(s.delta(), PERP_LOT);
    assert_eq!(open_bids(&s), 4);
    // And every batch on the way (`Sim::check_quoted_room`): open bids + delta ≤ 0.006.
}

/// A passive hedge that would overshoot by less than the band is left to finish once |delta| is
/// back inside the band. When it fills, the delta crosses zero while the quoted side still holds
/// the orders sized for the old, opposite delta: on the side that now grows |delta| they reach
/// past the hard limit (here 0.002 long with 0.006 of bids open: 0.008 if they all fill, against
/// a hard limit of 0.006). The excess goes at once, with forced cancels (the cancel budget cannot
/// defer them): what stays working, with the delta, is within the hard limit, and nothing on that
/// side is placed until the cancels are confirmed.
#[test]
fn orders_past_the_hard_limit_after_a_hedge_fill_are_cancelled_at_once() {
    let mut s = Sim::new(CFG);
    let open_bids =
        |s: &Sim| i128::from(s.e.instrument(QUOTED).unwrap().orders.open_qty(Side::Bid)) * PERP_LOT;
    // Bids still working (not being cancelled), lots.
    let working_bids = |s: &Sim| {
        let v = s.e.instrument(QUOTED).unwrap();
        let lots: i64 = v
            .orders
            .open()
            .filter(|o| o.side == Side::Bid && o.state != crate::OrderState::PendingCancel)
            .map(|o| o.remaining())
            .sum();
        i128::from(lots) * PERP_LOT
    };
    s.at(10 * MS);
    s.fill_quote(Side::Ask);
    s.fill_quote(Side::Ask);
    let h = on_hedge(&s.batch());
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].tif, h[0].side, h[0].qty),
        (TimeInForce::PostOnly, Side::Bid, 400)
    );
    let passive = h[0].client_order_id;
    s.at(11 * MS);
    s.answer(HEDGE, ExecKind::Ack, passive);
    s.batch();
    s.settle_quotes();
    // A bid fills: 0.002 short, inside the band. The passive order (0.004) would leave 0.002
    // long, within the band: it is kept.
    s.at(20 * MS);
    s.fill_quote(Side::Bid);
    assert!(on_hedge(&s.batch()).is_empty());
    s.settle_quotes();
    assert_eq!(s.delta(), -2 * PERP_LOT);
    assert_eq!(open_bids(&s), 6 * PERP_LOT, "three layers: room for 0.008");
    // The passive order fills.
    s.at(30 * MS);
    s.fill_hedge(passive);
    let out = s.batch();
    assert_eq!(s.delta(), 2 * PERP_LOT);
    let cancels: Vec<&Intent> = out
        .iter()
        .filter(|i| i.instrument == QUOTED && i.kind == IntentKind::Cancel && i.side == Side::Bid)
        .collect();
    assert!(!cancels.is_empty(), "no bid cancelled: {out:?}");
    assert!(cancels.iter().all(|i| i.forced), "{cancels:?}");
    assert!(
        s.delta() + working_bids(&s) <= HARD,
        "working bids {} with delta {} pass the hard limit {}",
        working_bids(&s),
        s.delta(),
        HARD
    );
    // Once the venue confirms, the open orders themselves are within it.
    s.settle_quotes();
    assert!(s.delta() + open_bids(&s) <= HARD);
}

// ---- B8. Random fills: the invariants after every batch ----------------------------------------

/// One step of the random walk.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A quote nearest the touch on this side fills, all of it.
    FillQuote(Side),
    /// The working passive hedge order fills, all of it (if there is one).
    FillPassive,
    /// Only time passes.
    Wait,
}

fn step() -> impl Strategy<Value = (Step, i64)> {
    (
        prop_oneof![
            3 => Just(Step::FillQuote(Side::Bid)),
            3 => Just(Step::FillQuote(Side::Ask)),
            1 => Just(Step::FillPassive),
            2 => Just(Step::Wait),
        ],
        // Time to the step, ms: up to one and a half age limits.
        0i64..1_500,
    )
}

/// Checks the hedge orders of one batch against the group's state the batch planned with.
fn check_hedges(s: &Sim, out: &[Intent], breach_start: Option<i64>) -> Result<(), TestCaseError> {
    let delta = s.delta();
    prop_assert_eq!(delta, s.delta_from_positions());
    prop_assert_eq!(s.e.hedge(0).unwrap().breach_since, breach_start);
    for i in out
        .iter()
        .filter(|i| i.instrument == HEDGE && i.kind == IntentKind::Place)
    {
        prop_assert!(
            delta.abs() > BAND,
            "a hedge inside the band: {:?} at {}",
            i,
            delta
        );
        let reducing = if delta > 0 { Side::Ask } else { Side::Bid };
        prop_assert_eq!(
            i.side,
            reducing,
            "a hedge growing |delta| {}: {:?}",
            delta,
            i
        );
        if i.tif == TimeInForce::Ioc {
            let since = breach_start.expect("outside the band");
            prop_assert!(
                delta.abs() >= HARD || i.time_ns - since >= MAX_AGE,
                "an IOC {:?} at delta {} only {} ns into the breach",
                i,
                delta,
                i.time_ns - since
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_fills_never_break_the_hedging_rules(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut s = Sim::new(CFG);
        // When |delta| left the band, by the test's own count at each batch.
        let mut breach_start: Option<i64> = None;
        let mut batch = |s: &mut Sim| -> Result<Vec<Intent>, TestCaseError> {
            let out = s.batch();
            let delta = s.delta_from_positions();
            if delta.abs() > BAND {
                breach_start.get_or_insert(s.e.now_ns());
            } else {
                breach_start = None;
            }
            check_hedges(s, &out, breach_start)?;
            Ok(out)
        };
        for (kind, dt) in steps {
            let t = s.t + dt * MS;
            s.at(t);
            s.e.on_event(&Event::timer(t), &mut s.o);
            match kind {
                Step::FillQuote(side) => {
                    if s.best_quote(side).is_some() {
                        s.fill_quote(side);
                    }
                }
                Step::FillPassive => {
                    let live = s.hedge_open.iter().find(|(cid, tif)| {
                        **tif == TimeInForce::PostOnly
                            && s.e.instrument(HEDGE).unwrap().orders.get(**cid).is_some_and(
                                |o| o.state == crate::OrderState::Live,
                            )
                    });
                    if let Some((&cid, _)) = live {
                        s.fill_hedge(cid);
                    }
                }
                Step::Wait => {}
            }
            let mut out = batch(&mut s)?;
            // The venue answers everything at once: quotes acked and cancels confirmed, hedge
            // orders acked (post-only) or filled (IOC), their cancels confirmed; then a batch,
            // until nothing is left.
            for _ in 0..20 {
                let hedges = on_hedge(&out);
                if hedges.is_empty() && s.unanswered.is_empty() {
                    break;
                }
                for i in std::mem::take(&mut s.unanswered) {
                    let k = match i.kind {
                        IntentKind::Place => ExecKind::Ack,
                        IntentKind::Cancel => ExecKind::Canceled,
                    };
                    s.answer(QUOTED, k, i.client_order_id);
                }
                for i in hedges {
                    match (i.kind, i.tif) {
                        (IntentKind::Place, TimeInForce::Ioc) => s.fill_hedge(i.client_order_id),
                        (IntentKind::Place, _) => s.answer(HEDGE, ExecKind::Ack, i.client_order_id),
                        (IntentKind::Cancel, _) => {
                            s.answer(HEDGE, ExecKind::Canceled, i.client_order_id)
                        }
                    }
                }
                out = batch(&mut s)?;
            }
        }
    }
}
