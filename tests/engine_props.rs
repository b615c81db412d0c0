//! Property tests of the engine over random books, positions and event sequences.

use engine::{
    Command, Config, Engine, Event, ExecKind, ExecReport, Intent, IntentKind, LevelUpdate,
    ModeChange, Side, Sink,
};
use proptest::prelude::*;

const CFG: &str = r#"
[engine]
book_slots = 65536

[[instrument]]
symbol = "BTCUSDT"
tick = "0.10"
lot = "0.001"
min_qty = "0.001"
min_notional = "1"
[instrument.quote]
fair_value = "microprice"
offset_unit = "ticks"
start_offset = 1.0
first_spacing = 1.0
multiplier = 1.3
max_spacing = 6.0
layers = 6
layer_size = "0.003"
min_spread_bps = 0.0
skew_coeff = 0.0002
[instrument.risk]
net_max = "0.020"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "1000"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 5000
cancel_budget_per_min = 10
"#;

const MS: i64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Move the touch by this many ticks (the book shifts with it).
    Move(i64),
    /// Change the best bid / ask quantity.
    TopQty(i64, i64),
    /// Ack the k-th pending order.
    Ack(usize),
    /// Fill part (numerator of 1..=4 quarters) of the k-th open order.
    Fill(usize, i64),
    /// Confirm the k-th pending cancel.
    CancelDone(usize),
    /// Reject the k-th pending-new order (post-only would take).
    Reject(usize),
    /// Advance time.
    Wait(i64),
    /// A feed gap, then a fresh snapshot.
    Gap,
    /// Operator kill switch then resume.
    HaltResume,
    /// Requote with nothing changed.
    Requote,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (-30i64..30).prop_map(Op::Move),
        2 => (1i64..50, 1i64..50).prop_map(|(a, b)| Op::TopQty(a, b)),
        3 => (0usize..64).prop_map(Op::Ack),
        3 => (0usize..64, 1i64..=4).prop_map(|(k, q)| Op::Fill(k, q)),
        2 => (0usize..64).prop_map(Op::CancelDone),
        1 => (0usize..64).prop_map(Op::Reject),
        2 => (1i64..20_000).prop_map(Op::Wait),
        1 => Just(Op::Gap),
        1 => Just(Op::HaltResume),
        2 => Just(Op::Requote),
    ]
}

#[derive(Default)]
struct Out {
    batch: Vec<Intent>,
    all: Vec<Intent>,
    modes: Vec<ModeChange>,
}

impl Sink for Out {
    fn intent(&mut self, i: &Intent) {
        self.batch.push(*i);
        self.all.push(*i);
    }
    fn mode_change(&mut self, m: &ModeChange) {
        self.modes.push(*m);
    }
}

struct World {
    e: Engine,
    out: Out,
    now: i64,
    bid: i64,
    bid_qty: i64,
    ask_qty: i64,
    /// Our view of the venue: (cid, side, qty, filled, acked, cancel_sent).
    orders: Vec<(u64, Side, i64, i64, bool, bool)>,
}

fn lvl(side: Side, price: i64, qty: i64, t: i64, last: bool) -> Event {
    Event::level(
        0,
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

impl World {
    fn new(mid: i64, spread: i64) -> World {
        let mut w = World {
            e: Engine::new(&Config::from_toml(CFG).unwrap()),
            out: Out::default(),
            now: MS,
            bid: mid,
            bid_qty: 10,
            ask_qty: 10,
            orders: Vec::new(),
        };
        w.snapshot(spread);
        w
    }

    fn ask(&self) -> i64 {
        self.bid + 1
    }

    fn snapshot(&mut self, _spread: i64) {
        let t = self.now;
        self.e
            .on_event(&Event::book_reset(0, 0, t, 1), &mut self.out);
        for k in 0..5 {
            self.e.on_event(
                &lvl(Side::Bid, self.bid - k, self.bid_qty + k, t, false),
                &mut self.out,
            );
            self.e.on_event(
                &lvl(Side::Ask, self.ask() + k, self.ask_qty + k, t, k == 4),
                &mut self.out,
            );
        }
        self.e
            .on_event(&Event::book_valid(0, 0, t, 1), &mut self.out);
        self.batch_end();
    }

    fn report(&mut self, kind: ExecKind, cid: u64, px: i64, last: i64, cum: i64) {
        let r = ExecReport {
            kind,
            client_order_id: cid,
            last_price: px,
            last_qty: last,
            cum_qty: cum,
            fee: 0,
            venue_order_id: 0,
            reject_code: 0,
            taker: false,
            post_only_reject: kind == ExecKind::Rejected,
        };
        self.e
            .on_event(&Event::exec(0, 0, self.now, r), &mut self.out);
    }

    fn batch_end(&mut self) {
        self.out.batch.clear();
        self.e.on_batch_end(&mut self.out);
        let (bb, ba) = (self.bid, self.ask());
        for i in self.out.batch.clone() {
            match i.kind {
                IntentKind::Place => {
                    // No post-only price crosses the book it was priced against.
                    match i.side {
                        Side::Bid => assert!(i.price < ba, "bid {} at or above ask {ba}", i.price),
                        Side::Ask => assert!(i.price > bb, "ask {} at or below bid {bb}", i.price),
                    }
                    self.orders
                        .push((i.client_order_id, i.side, i.qty, 0, false, false));
                }
                IntentKind::Cancel => {
                    if let Some(o) = self.orders.iter_mut().find(|o| o.0 == i.client_order_id) {
                        o.5 = true;
                    }
                }
            }
        }
        self.check_net_max();
    }

    fn check_net_max(&self) {
        let v = self.e.instrument(0).unwrap();
        let pos = v.position.qty;
        let net_max = v.config.net_max;
        let buys: i64 = self
            .orders
            .iter()
            .filter(|o| o.1 == Side::Bid)
            .map(|o| o.2 - o.3)
            .sum();
        let sells: i64 = self
            .orders
            .iter()
            .filter(|o| o.1 == Side::Ask)
            .map(|o| o.2 - o.3)
            .sum();
        assert!(
            pos + buys <= net_max,
            "pos {pos} + open buys {buys} > {net_max}"
        );
        assert!(
            pos - sells >= -net_max,
            "pos {pos} - open sells {sells} < -{net_max}"
        );
        assert!(pos.abs() <= net_max);
    }

    fn apply(&mut self, op: &Op) {
        self.now += MS;
        match *op {
            Op::Move(d) => {
                if d == 0 {
                    return;
                }
                let t = self.now;
                let (ob, oa) = (self.bid, self.ask());
                self.bid = (self.bid + d).max(1000);
                // Remove the old top, add the new one (a shifted book, never crossed).
                self.e
                    .on_event(&lvl(Side::Bid, ob, 0, t, false), &mut self.out);
                self.e
                    .on_event(&lvl(Side::Ask, oa, 0, t, false), &mut self.out);
                for k in 0..3 {
                    self.e
                        .on_event(&lvl(Side::Bid, ob - k, 0, t, false), &mut self.out);
                    self.e
                        .on_event(&lvl(Side::Ask, oa + k, 0, t, false), &mut self.out);
                }
                for k in 0..40 {
                    self.e
                        .on_event(&lvl(Side::Bid, ob + k, 0, t, false), &mut self.out);
                    self.e
                        .on_event(&lvl(Side::Ask, oa - k, 0, t, false), &mut self.out);
                }
                self.e.on_event(
                    &lvl(Side::Bid, self.bid, self.bid_qty, t, false),
                    &mut self.out,
                );
                self.e.on_event(
                    &lvl(Side::Ask, self.ask(), self.ask_qty, t, true),
                    &mut self.out,
                );
                self.batch_end();
            }
            Op::TopQty(b, a) => {
                self.bid_qty = b;
                self.ask_qty = a;
                let t = self.now;
                self.e
                    .on_event(&lvl(Side::Bid, self.bid, b, t, false), &mut self.out);
                self.e
                    .on_event(&lvl(Side::Ask, self.ask(), a, t, true), &mut self.out);
                self.batch_end();
            }
            Op::Ack(k) => {
                let pend: Vec<usize> = (0..self.orders.len())
                    .filter(|&i| !self.orders[i].4)
                    .collect();
                if let Some(&i) = pend.get(k % pend.len().max(1)) {
                    self.orders[i].4 = true;
                    let cid = self.orders[i].0;
                    self.report(ExecKind::Ack, cid, 0, 0, 0);
                    self.batch_end();
                }
            }
            Op::Fill(k, quarters) => {
                if self.orders.is_empty() {
                    return;
                }
                let i = k % self.orders.len();
                let (cid, side, qty, filled, _, _) = self.orders[i];
                let q = ((qty * quarters) / 4).max(1).min(qty - filled);
                let cum = filled + q;
                let px = match side {
                    Side::Bid => self.bid,
                    Side::Ask => self.ask(),
                };
                let kind = if cum == qty {
                    ExecKind::Fill
                } else {
                    ExecKind::PartialFill
                };
                self.report(kind, cid, px, q, cum);
                if cum == qty {
                    self.orders.remove(i);
                } else {
                    self.orders[i].3 = cum;
                    self.orders[i].4 = true;
                }
                self.batch_end();
            }
            Op::CancelDone(k) => {
                let pend: Vec<usize> = (0..self.orders.len())
                    .filter(|&i| self.orders[i].5)
                    .collect();
                if let Some(&i) = pend.get(k % pend.len().max(1)) {
                    let (cid, _, _, filled, _, _) = self.orders.remove(i);
                    self.report(ExecKind::Canceled, cid, 0, 0, filled);
                    self.batch_end();
                }
            }
            Op::Reject(k) => {
                let pend: Vec<usize> = (0..self.orders.len())
                    .filter(|&i| !self.orders[i].4 && !self.orders[i].5)
                    .collect();
                if let Some(&i) = pend.get(k % pend.len().max(1)) {
                    let (cid, ..) = self.orders.remove(i);
                    self.report(ExecKind::Rejected, cid, 0, 0, 0);
                    self.batch_end();
                }
            }
            Op::Wait(ms) => {
                self.now += ms * MS;
                self.e.on_event(&Event::timer(self.now), &mut self.out);
                self.batch_end();
            }
            Op::Gap => {
                let t = self.now;
                self.e.on_event(
                    &Event::book_invalid(0, 0, t, engine::BookStatusReason::SequenceGap, 1, 2),
                    &mut self.out,
                );
                self.batch_end();
                self.now += MS;
                self.snapshot(1);
            }
            Op::HaltResume => {
                self.e
                    .on_event(&Event::control(0, self.now, Command::Halt), &mut self.out);
                self.batch_end();
                self.e
                    .on_event(&Event::control(0, self.now, Command::Resume), &mut self.out);
                self.batch_end();
            }
            Op::Requote => {
                // A timer at the same time changes nothing: requoting an unchanged state emits
                // nothing.
                self.now -= MS;
                self.e.on_event(&Event::timer(self.now), &mut self.out);
                self.batch_end();
                assert!(
                    self.out.batch.is_empty(),
                    "requote of an unchanged state emitted {:?}",
                    self.out.batch
                );
            }
        }
    }

    fn check_cancel_budget(&self) {
        let budget = self.e.instrument(0).unwrap().config.cancel_budget_per_min as usize;
        let times: Vec<i64> = self
            .out
            .all
            .iter()
            .filter(|i| i.kind == IntentKind::Cancel && !i.forced)
            .map(|i| i.time_ns)
            .collect();
        for w in times.windows(budget + 1) {
            assert!(
                w[budget] - w[0] >= 60_000 * MS,
                "more than {budget} discretionary cancels within a minute"
            );
        }
        for w in self.out.all.windows(2) {
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn engine_invariants_hold_under_random_sequences(
        mid in 10_000i64..1_000_000,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut w = World::new(mid, 1);
        for op in &ops {
            w.apply(op);
        }
        w.check_cancel_budget();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Mark prices change nothing the engine does: the same random sequence with a mark price
    /// (any values) after every step gives the same intents and mode changes, and the engine
    /// holds the last one.
    #[test]
    fn mark_prices_change_no_intent_and_no_mode(
        mid in 10_000i64..1_000_000,
        ops in proptest::collection::vec(op(), 1..120),
        marks in proptest::collection::vec(
            (any::<i64>(), any::<i64>(), -100_000_000i64..=100_000_000, 0i64..4_000_000_000_000),
            1..120,
        ),
    ) {
        let mut plain = World::new(mid, 1);
        let mut marked = World::new(mid, 1);
        let mut last = None;
        for (k, op) in ops.iter().enumerate() {
            plain.apply(op);
            marked.apply(op);
            let (mark_price, index_price, funding_rate_e8, next_funding_ms) = marks[k % marks.len()];
            let m = engine::MarkPriceUpdate { mark_price, index_price, funding_rate_e8, next_funding_ms };
            marked.e.on_event(&Event::mark_price(0, 0, marked.now, m), &mut marked.out);
            last = Some(m);
        }
        // One more batch end each: what a mark price left dirty would requote here.
        plain.batch_end();
        marked.batch_end();
        prop_assert_eq!(&plain.out.all, &marked.out.all);
        prop_assert_eq!(&plain.out.modes, &marked.out.modes);
        prop_assert_eq!(plain.e.stats().requotes, marked.e.stats().requotes);
        let v = marked.e.instrument(0).unwrap();
        prop_assert_eq!(v.funding_rate_e8, last.map(|m| m.funding_rate_e8));
        prop_assert_eq!(v.mark.map(|m| (m.mark_price, m.next_funding_ms)), last.map(|m| (m.mark_price, m.next_funding_ms)));
        prop_assert_eq!(plain.e.instrument(0).unwrap().mark, None);
    }
}

#[test]
fn requote_of_an_unchanged_book_right_after_syncing_is_silent() {
    let mut w = World::new(600_000, 1);
    assert!(!w.out.all.is_empty());
    w.apply(&Op::Requote);
}

#[test]
fn a_random_walk_exercises_fills_cancels_and_modes() {
    let mut w = World::new(600_000, 1);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..5_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x >> 8) as usize;
        let op = match x % 10 {
            0 | 1 => Op::Move((x >> 20) as i64 % 7 - 3),
            2 | 3 => Op::Ack(k),
            4 | 5 => Op::Fill(k, 1 + (x >> 30) as i64 % 4),
            6 | 7 => Op::CancelDone(k),
            8 => Op::Wait(1 + (x >> 40) as i64 % 3000),
            _ => Op::Requote,
        };
        w.apply(&op);
    }
    w.check_cancel_budget();
    let v = w.e.instrument(0).unwrap();
    let places = w
        .out
        .all
        .iter()
        .filter(|i| i.kind == IntentKind::Place)
        .count();
    let cancels = w.out.all.len() - places;
    let s = v.position;
    // The walk must have done real work, or the invariants above proved nothing.
    assert!(
        places > 100 && cancels > 50,
        "{places} places, {cancels} cancels"
    );
    assert!(s.maker_fills > 100, "{} fills", s.maker_fills);
    assert!(
        w.out
            .modes
            .iter()
            .any(|m| m.reason == engine::ModeReason::Inventory),
        "{:?}",
        w.out.modes
    );
}

/// Issue 12: PnL is conserved for every kind. Any fills that end flat realize exactly the cash
/// they moved (linear and spot: Σ sells − Σ buys at price × qty; spot's quote balance agrees),
/// and for inverse the coin value moved, negated, to within one 10^-12 unit a fill (each fill's
/// `qty × contract_size / price` is taken to the unit once, or twice when it flips the position).
mod kinds {
    use engine::{Instrument, InstrumentKind, InstrumentSpec, Position, Side};
    use proptest::prelude::*;

    fn inst(kind: InstrumentKind) -> Instrument {
        Instrument::from_spec(&InstrumentSpec {
            symbol: if kind == InstrumentKind::Inverse {
                "BTCUSD_PERP"
            } else {
                "BTCUSDT"
            },
            kind,
            tick: "0.1",
            lot: "1",
            min_qty: "1",
            min_notional: "0",
            contract_size: (kind == InstrumentKind::Inverse).then_some("100"),
            ..InstrumentSpec::default()
        })
        .unwrap()
    }

    fn fills() -> impl Strategy<Value = Vec<(bool, i64, i64)>> {
        prop::collection::vec((any::<bool>(), 100_000i64..1_000_000, 1i64..500), 1..40)
    }

    proptest! {
        #[test]
        fn flat_positions_realize_the_cash_they_moved(
            fs in fills(),
            kind in prop::sample::select(vec![
                InstrumentKind::Linear,
                InstrumentKind::Inverse,
                InstrumentKind::Spot,
            ]),
            close_px in 100_000i64..1_000_000,
        ) {
            let i = inst(kind);
            let mut p = Position::default();
            let mut moved: i128 = 0; // Σ sells − Σ buys, money units
            let mut n = 0i128;
            for &(buy, px, q) in &fs {
                let side = if buy { Side::Bid } else { Side::Ask };
                let v = i.value(px, q);
                moved += if buy { -v } else { v };
                p.on_fill(&i, side, px, q, 0, false);
                n += 2;
            }
            // Close whatever is open at `close_px`.
            if p.qty != 0 {
                let (side, q) = if p.qty > 0 { (Side::Ask, p.qty) } else { (Side::Bid, -p.qty) };
                let v = i.value(close_px, q);
                moved += if side == Side::Bid { -v } else { v };
                p.on_fill(&i, side, close_px, q, 0, false);
                n += 2;
            }
            prop_assert_eq!((p.qty, p.cost), (0, 0));
            match kind {
                InstrumentKind::Inverse => {
                    prop_assert!((p.realized + moved).abs() <= n, "{} vs {}", p.realized, -moved);
                }
                _ => prop_assert_eq!(p.realized, moved),
            }
            if kind == InstrumentKind::Spot {
                prop_assert_eq!(p.cash, moved);
            }
        }
    }
}
