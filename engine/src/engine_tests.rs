//! Tests of the whole engine: events in, intents and mode changes out.

use super::*;
use crate::event::{ExecKind, ExecReport, LevelUpdate, Side, TopOfBook};
use crate::intent::IntentKind;
use crate::intent::{Intent, TimeInForce};

pub(crate) const CFG: &str = r#"
[engine]
orders_per_10s = 300
orders_per_min = 1200
book_slots = 4096

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
first_spacing = 2.0
multiplier = 1.5
max_spacing = 8.0
layers = 3
layer_size = "0.002"
min_spread_bps = 0.0
skew_coeff = 0.001
[instrument.risk]
net_max = "0.010"
reduce_only_thresh = 0.7
stop_loss = 0.05
on_stop_loss = "reduce_only"
daily_loss_limit = "0.01"
max_deviation = 0.15
max_price_change = 0.10
circuit_window_ms = 60000
stale_after_ms = 1000
cancel_budget_per_min = 4
"#;

#[derive(Default)]
struct Out {
    intents: Vec<Intent>,
    modes: Vec<ModeChange>,
}
impl Sink for Out {
    fn intent(&mut self, i: &Intent) {
        self.intents.push(*i);
    }
    fn mode_change(&mut self, m: &ModeChange) {
        self.modes.push(*m);
    }
}

const MS: i64 = 1_000_000;

fn level(side: Side, price: i64, qty: i64, t: i64, last: bool) -> Event {
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

/// An engine with a valid book 1000 / 1001 at time `t`.
fn synced(t: i64) -> (Engine, Out) {
    synced_with(CFG, t)
}

/// [`synced`] with the config `cfg`.
fn synced_with(cfg: &str, t: i64) -> (Engine, Out) {
    let mut e = Engine::new(&Config::from_toml(cfg).unwrap());
    let mut o = Out::default();
    e.on_event(&Event::book_reset(0, 0, t, 1), &mut o);
    e.on_event(&level(Side::Bid, 1000, 50, t, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 50, t, true), &mut o);
    e.on_event(&Event::book_valid(0, 0, t, 1), &mut o);
    e.on_batch_end(&mut o);
    (e, o)
}

#[allow(clippy::too_many_arguments)]
fn report(
    e: &mut Engine,
    o: &mut Out,
    kind: ExecKind,
    cid: u64,
    px: i64,
    last: i64,
    cum: i64,
    t: i64,
) {
    let r = ExecReport::new(kind, cid, px, last, cum);
    e.on_event(&Event::exec(0, 0, t, r), o);
}

fn ack_all(e: &mut Engine, o: &mut Out, t: i64) {
    let ids: Vec<(IntentKind, u64)> = o
        .intents
        .iter()
        .map(|i| (i.kind, i.client_order_id))
        .collect();
    for (k, cid) in ids {
        let kind = if k == IntentKind::Place {
            ExecKind::Ack
        } else {
            ExecKind::Canceled
        };
        report(e, o, kind, cid, 0, 0, 0, t);
    }
    o.intents.clear();
    e.on_batch_end(o);
}

#[test]
fn quotes_a_symmetric_grid_once_synced() {
    let (_, o) = synced(0);
    assert_eq!(o.modes.len(), 1);
    assert_eq!(
        (o.modes[0].to, o.modes[0].reason),
        (Mode::Normal, ModeReason::None)
    );
    let bids: Vec<i64> = o
        .intents
        .iter()
        .filter(|i| i.side == Side::Bid)
        .map(|i| i.price)
        .collect();
    let asks: Vec<i64> = o
        .intents
        .iter()
        .filter(|i| i.side == Side::Ask)
        .map(|i| i.price)
        .collect();
    // fv 1000.5; distances 2, 4, 7: floor / ceil.
    assert_eq!(bids, [998, 996, 993]);
    assert_eq!(asks, [1003, 1005, 1008]);
    // Alternating from the touch outwards, seq from 0.
    assert_eq!(
        o.intents.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert!(o
        .intents
        .iter()
        .all(|i| i.tif == TimeInForce::PostOnly && i.qty == 2));
}

#[test]
fn an_unchanged_book_requotes_to_nothing_and_small_moves_keep_queue_priority() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    assert!(o.intents.is_empty());
    // Same book again.
    e.on_event(&level(Side::Bid, 1000, 50, 2 * MS, true), &mut o);
    e.on_batch_end(&mut o);
    assert!(o.intents.is_empty());
    // A one-tick move of fair value is within tolerance (1.8 ticks): nothing changes.
    e.on_event(&level(Side::Ask, 1001, 0, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1002, 50, 3 * MS, true), &mut o);
    e.on_batch_end(&mut o);
    assert!(o.intents.is_empty(), "{:?}", o.intents);
}

#[test]
fn a_fill_skews_quotes_down_and_a_big_move_cancels_before_placing() {
    let (mut e, mut o) = synced(0);
    let first_bid = o.intents[0].client_order_id;
    ack_all(&mut e, &mut o, MS);
    report(&mut e, &mut o, ExecKind::Fill, first_bid, 998, 2, 2, 2 * MS);
    e.on_batch_end(&mut o);
    let v = e.instrument(0).unwrap();
    assert_eq!(v.position.qty, 2);
    // Market moves up 10 ticks: orders out of tolerance are cancelled (within budget 4),
    // and cancels on a side precede that side's places.
    o.intents.clear();
    e.on_event(&level(Side::Bid, 1000, 0, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 0, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Bid, 1010, 50, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1011, 50, 3 * MS, true), &mut o);
    e.on_batch_end(&mut o);
    let first_place = o
        .intents
        .iter()
        .position(|i| i.kind == IntentKind::Place)
        .unwrap();
    assert!(o.intents[..first_place]
        .iter()
        .all(|i| i.kind == IntentKind::Cancel));
    assert!(o.intents[first_place..]
        .iter()
        .all(|i| i.kind == IntentKind::Place));
    // The fill's requote spent one of the 4 cancels a minute (long: bid layers thin from 3
    // to 2); three are left for the five orders now out of tolerance.
    assert_eq!(first_place, 3, "cancel budget of 4 per minute");
    assert_eq!(e.stats().cancels_deferred, 2);
    // Long 2 of 10: ratio 0.2, skew -0.2 · 0.001 · 1010.5 ≈ -0.2 ticks: bid 0 at floor(1008.3).
    let bid0 = o
        .intents
        .iter()
        .find(|i| i.kind == IntentKind::Place && i.side == Side::Bid)
        .unwrap();
    assert_eq!(bid0.price, 1008);
}

#[test]
fn book_invalid_pulls_everything_at_once_and_valid_requotes() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_event(
        &Event::book_invalid(
            0,
            0,
            2 * MS,
            crate::event::BookStatusReason::SequenceGap,
            1,
            3,
        ),
        &mut o,
    );
    assert_eq!(o.intents.len(), 6, "cancels go out before the batch ends");
    assert!(o
        .intents
        .iter()
        .all(|i| i.kind == IntentKind::Cancel && i.forced));
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::BookInvalid);
    e.on_batch_end(&mut o);
    assert_eq!(o.intents.len(), 6, "nothing quoted while invalid");
}

#[test]
fn stale_book_halts_until_an_update() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_event(&Event::timer(1_500 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::BookStale);
    assert_eq!(
        o.intents
            .iter()
            .filter(|i| i.kind == IntentKind::Cancel)
            .count(),
        6
    );
    assert_eq!(e.stats().stale_periods, 1);
    // Still stale at the next tick: the same period.
    ack_all(&mut e, &mut o, 1_501 * MS);
    e.on_event(&Event::timer(1_550 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.stats().stale_periods, 1);
    e.on_event(&level(Side::Bid, 1000, 51, 1_600 * MS, true), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
    assert_eq!(o.intents.len(), 6);
    // Silent again: a second period.
    ack_all(&mut e, &mut o, 1_601 * MS);
    e.on_event(&Event::timer(3_000 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::BookStale);
    assert_eq!(e.stats().stale_periods, 2);
}

#[test]
fn inventory_past_the_threshold_is_reduce_only_and_never_crosses_zero() {
    let (mut e, mut o) = synced(0);
    let bids: Vec<u64> = o
        .intents
        .iter()
        .filter(|i| i.side == Side::Bid)
        .map(|i| i.client_order_id)
        .collect();
    ack_all(&mut e, &mut o, MS);
    // Three bids of 2 fill, then one more order fills: position 8 of 10 ≥ 0.7.
    for (k, cid) in bids.iter().enumerate() {
        report(
            &mut e,
            &mut o,
            ExecKind::Fill,
            *cid,
            998 - k as i64,
            2,
            2,
            2 * MS,
        );
    }
    e.on_batch_end(&mut o);
    ack_all(&mut e, &mut o, 3 * MS);
    let more: Vec<u64> = e
        .instrument(0)
        .unwrap()
        .orders
        .open()
        .filter(|o| o.side == Side::Bid)
        .map(|o| o.client_order_id)
        .collect();
    report(&mut e, &mut o, ExecKind::Fill, more[0], 995, 2, 2, 4 * MS);
    o.intents.clear();
    e.on_batch_end(&mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 8);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::Inventory);
    ack_all(&mut e, &mut o, 5 * MS);
    let v = e.instrument(0).unwrap();
    assert_eq!(
        v.orders.open_qty(Side::Bid),
        0,
        "no buying in reduce-only when long"
    );
    assert!(
        v.orders.open_qty(Side::Ask) <= 8,
        "sells never take the position through zero"
    );
}

#[test]
fn kill_switch_halts_until_resume() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_event(&Event::control(0, 2 * MS, Command::Halt), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::KillSwitch);
    assert_eq!(o.intents.len(), 6);
    ack_all(&mut e, &mut o, 3 * MS);
    assert!(o.intents.is_empty());
    e.on_event(&Event::control(0, 4 * MS, Command::Resume), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
    assert_eq!(o.intents.len(), 6);
}

#[test]
fn order_entry_down_halts_until_up_and_is_apart_from_the_clock_and_the_operator() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_event(&Event::control(0, 2 * MS, Command::OrderEntryDown), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::OrderEntry);
    assert_eq!(o.modes.last().unwrap().to, Mode::Halted);
    assert_eq!(o.intents.len(), 6, "every quote cancelled");
    assert!(o.intents.iter().all(|i| i.kind == IntentKind::Cancel));
    ack_all(&mut e, &mut o, 3 * MS);
    // A good clock or an operator resume does not bring quotes back while it is down.
    e.on_event(&Event::control(0, 4 * MS, Command::ClockOk), &mut o);
    e.on_event(&Event::control(0, 4 * MS, Command::Resume), &mut o);
    e.on_batch_end(&mut o);
    assert!(o.intents.iter().all(|i| i.kind == IntentKind::Cancel));
    e.on_event(&Event::control(0, 5 * MS, Command::OrderEntryUp), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
    assert_eq!(o.intents.len(), 6, "quotes back");
    assert!(o.intents.iter().all(|i| i.kind == IntentKind::Place));
    ack_all(&mut e, &mut o, 6 * MS);
    // Up does not clear an operator halt.
    e.on_event(&Event::control(0, 7 * MS, Command::Halt), &mut o);
    e.on_event(&Event::control(0, 7 * MS, Command::OrderEntryDown), &mut o);
    e.on_event(&Event::control(0, 7 * MS, Command::OrderEntryUp), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::KillSwitch);
}

#[test]
fn a_clock_fault_halts_until_clock_ok_and_neither_touches_the_kill_switch() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_event(&Event::control(0, 2 * MS, Command::ClockFault), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::ClockFault);
    assert_eq!(o.modes.last().unwrap().to, Mode::Halted);
    assert_eq!(o.intents.len(), 6, "every quote cancelled");
    ack_all(&mut e, &mut o, 3 * MS);
    e.on_event(&Event::control(0, 4 * MS, Command::ClockOk), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
    assert_eq!(o.intents.len(), 6, "quotes back");
    ack_all(&mut e, &mut o, 5 * MS);
    // An operator halt is not cleared by a good clock, nor a clock fault by a resume.
    e.on_event(&Event::control(0, 6 * MS, Command::Halt), &mut o);
    e.on_event(&Event::control(0, 6 * MS, Command::ClockFault), &mut o);
    e.on_event(&Event::control(0, 6 * MS, Command::ClockOk), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::KillSwitch);
    ack_all(&mut e, &mut o, 7 * MS);
    e.on_event(&Event::control(0, 8 * MS, Command::ClockFault), &mut o);
    e.on_event(&Event::control(0, 8 * MS, Command::Resume), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::ClockFault);
    assert!(o.intents.iter().all(|i| i.kind != IntentKind::Place));
}

#[test]
fn a_clock_reading_round_trips_and_changes_nothing() {
    let r = crate::ClockReading {
        offset_ns: Some(-1_234_567),
        spread_ns: Some(89),
        synchronised: Some(false),
        maxerror_us: 16_000_000,
        esterror_us: 7,
        failing: true,
    };
    let ev = Event::clock_reading(0, 2 * MS, &r);
    assert_eq!(ev.as_clock_reading(), Some(r));
    assert_eq!(ev.as_control(), Some(Command::ClockReading));
    let none = crate::ClockReading {
        offset_ns: None,
        spread_ns: None,
        synchronised: None,
        maxerror_us: 0,
        esterror_us: 0,
        failing: false,
    };
    assert_eq!(
        Event::clock_reading(0, 0, &none).as_clock_reading(),
        Some(none)
    );
    assert_eq!(Event::control(0, 0, Command::Halt).as_clock_reading(), None);

    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    let (before, modes) = (e.stats(), o.modes.len());
    e.on_event(&ev, &mut o);
    e.on_batch_end(&mut o);
    assert!(
        o.intents.is_empty(),
        "a reading moves nothing: {:?}",
        o.intents
    );
    assert_eq!(o.modes.len(), modes, "{:?}", o.modes);
    assert_eq!(e.stats().malformed, before.malformed);
}

#[test]
fn a_mark_price_is_stored_and_shown_and_never_requotes() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_batch_end(&mut o);
    let view = e.instrument(0).unwrap();
    assert_eq!((view.funding_rate_e8, view.mark), (None, None));
    let (before, intents, modes) = (e.stats(), o.intents.len(), o.modes.len());
    let m = crate::MarkPriceUpdate {
        mark_price: 1003,
        index_price: 999,
        funding_rate_e8: -38_167,
        next_funding_ms: 1_562_306_400_000,
    };
    e.on_event(&Event::mark_price(0, 5, 2 * MS, m), &mut o);
    e.on_batch_end(&mut o);
    let after = e.stats();
    assert_eq!(
        after.requotes, before.requotes,
        "a mark price is no reason to requote"
    );
    assert_eq!(after.mark_prices, before.mark_prices + 1);
    assert_eq!(after.malformed, before.malformed);
    assert_eq!((o.intents.len(), o.modes.len()), (intents, modes));
    let view = e.instrument(0).unwrap();
    assert_eq!(view.funding_rate_e8, Some(-38_167));
    assert_eq!(
        view.mark,
        Some(MarkState {
            mark_price: 1003,
            index_price: 999,
            funding_rate_e8: -38_167,
            next_funding_ms: 1_562_306_400_000,
            time_ns: 2 * MS,
        })
    );
    // The latest one wins; the fair value is still the book's.
    let m2 = crate::MarkPriceUpdate {
        funding_rate_e8: 10_000,
        ..m
    };
    e.on_event(&Event::mark_price(0, 6, 3 * MS, m2), &mut o);
    e.on_batch_end(&mut o);
    let view = e.instrument(0).unwrap();
    assert_eq!(view.funding_rate_e8, Some(10_000));
    assert_eq!(view.mark.map(|m| m.time_ns), Some(3 * MS));
    assert_eq!(e.stats().requotes, before.requotes);
    // For an instrument the engine lacks: counted, nothing stored.
    e.on_event(&Event::mark_price(7, 6, 3 * MS, m2), &mut o);
    assert_eq!(e.stats().unknown_instrument, before.unknown_instrument + 1);
}

#[test]
fn daily_loss_limit_halts() {
    let (mut e, mut o) = synced(0);
    let bid = o.intents[0].client_order_id;
    ack_all(&mut e, &mut o, MS);
    report(&mut e, &mut o, ExecKind::Fill, bid, 998, 2, 2, 2 * MS);
    e.on_batch_end(&mut o);
    // Limit 0.01 USDT = 100 tick·lots. Long 2 lots from 998, marked at 940.5: -115
    // (a 6% move, inside the circuit breaker's 10%).
    e.on_event(&level(Side::Bid, 1000, 0, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 0, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Bid, 940, 5, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 941, 5, 3 * MS, true), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::DailyLossLimit);
}

#[test]
fn circuit_breaker_halts_on_a_fast_move() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    e.on_event(&level(Side::Ask, 1001, 0, 2 * MS, false), &mut o);
    e.on_event(&level(Side::Bid, 1000, 0, 2 * MS, false), &mut o);
    e.on_event(&level(Side::Bid, 1200, 5, 2 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1201, 5, 2 * MS, true), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::CircuitBreaker);
}

#[test]
fn unknown_instruments_and_bad_reports_are_counted_not_fatal() {
    let (mut e, mut o) = synced(0);
    e.on_event(&Event::control(9, MS, Command::Halt), &mut o);
    assert_eq!(e.stats().unknown_instrument, 1);
    report(&mut e, &mut o, ExecKind::Fill, 0xdead_beef, 1, 1, 1, MS);
    assert_eq!(e.instrument(0).unwrap().orders.stats().unknown_reports, 1);
    assert_eq!(e.instrument(0).unwrap().position.qty, 0);
    // Time going backwards is held, counted.
    e.on_event(&Event::timer(0), &mut o);
    assert_eq!(e.stats().time_regressions, 1);
    assert_eq!(e.now_ns(), MS);
}

fn bbo(bid: i64, ask: i64, u: u64, t: i64) -> Event {
    Event::bbo(
        0,
        0,
        t,
        TopOfBook {
            bid_price: bid,
            bid_qty: 10,
            ask_price: ask,
            ask_qty: 10,
            update_id: u,
        },
    )
}

/// A depth message (update id `u`) moving the whole book to `bid` / `bid + 1`.
fn depth_to(e: &mut Engine, o: &mut Out, from: i64, bid: i64, u: u64, t: i64) {
    let lvl = |side, price, qty, last| {
        Event::level(
            0,
            0,
            t,
            LevelUpdate {
                side,
                price,
                qty,
                update_id: u,
                last_in_msg: last,
                snapshot: false,
            },
        )
    };
    e.on_event(&lvl(Side::Bid, from, 0, false), o);
    e.on_event(&lvl(Side::Ask, from + 1, 0, false), o);
    e.on_event(&lvl(Side::Bid, bid, 50, false), o);
    e.on_event(&lvl(Side::Ask, bid + 1, 50, true), o);
}

fn best_place(o: &Out, side: Side) -> Option<i64> {
    let px = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Place && i.side == side)
        .map(|i| i.price);
    match side {
        Side::Bid => px.max(),
        Side::Ask => px.min(),
    }
}

#[test]
fn a_bbo_newer_than_the_depth_book_is_priced_from() {
    let (mut e, mut o) = synced(0);
    // Book 1000 / 1001, mid 1000.5: layer 0 at 2 ticks → bid 998, ask 1003.
    assert_eq!(best_place(&o, Side::Bid), Some(998));
    assert_eq!(best_place(&o, Side::Ask), Some(1003));
    ack_all(&mut e, &mut o, MS);
    o.intents.clear();
    // The top moves up 10 ticks; the depth message has not come yet.
    e.on_event(&bbo(1010, 1011, 5, 2 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(best_place(&o, Side::Bid), Some(1008), "{:?}", o.intents);
    assert_eq!(best_place(&o, Side::Ask), Some(1013));
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1010.5))
    );
    assert_eq!((e.stats().bbo_used, e.stats().bbo_behind), (1, 0));
    // The depth message with the same update id catches up: same touch, nothing to do.
    ack_all(&mut e, &mut o, 3 * MS);
    o.intents.clear();
    depth_to(&mut e, &mut o, 1000, 1010, 5, 4 * MS);
    e.on_batch_end(&mut o);
    assert!(o.intents.is_empty(), "{:?}", o.intents);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1010.5))
    );
}

#[test]
fn a_bbo_not_newer_than_the_depth_book_is_ignored() {
    let (mut e, mut o) = synced(0);
    o.intents.clear();
    // The book is at update id 1 (the snapshot): a BBO with id 1 is not newer.
    e.on_event(&bbo(1010, 1011, 1, MS), &mut o);
    e.on_batch_end(&mut o);
    assert!(o.intents.is_empty());
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1000.5))
    );
    // A depth message at id 9, then a BBO at id 7 (arrived late): ignored.
    depth_to(&mut e, &mut o, 1000, 1020, 9, 2 * MS);
    e.on_event(&bbo(1030, 1031, 7, 3 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1020.5))
    );
    // A newer BBO, then an older one than it: the newer one stays.
    e.on_event(&bbo(1040, 1041, 12, 4 * MS), &mut o);
    e.on_event(&bbo(1050, 1051, 11, 4 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1040.5))
    );
    assert_eq!((e.stats().bbo_used, e.stats().bbo_behind), (1, 3));
    // A depth message newer than the BBO wins again.
    depth_to(&mut e, &mut o, 1020, 1005, 13, 5 * MS);
    e.on_batch_end(&mut o);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1005.5))
    );
}

#[test]
fn malformed_bbos_are_refused_and_invalid_books_clear_the_bbo() {
    let (mut e, mut o) = synced(0);
    for (bid, ask, bq, aq) in [
        (1011, 1010, 1, 1),
        (1010, 1010, 1, 1),
        (0, 5, 1, 1),
        (5, 6, 0, 1),
        (5, 6, 1, -1),
    ] {
        let t = TopOfBook {
            bid_price: bid,
            bid_qty: bq,
            ask_price: ask,
            ask_qty: aq,
            update_id: 50,
        };
        e.on_event(&Event::bbo(0, 0, MS, t), &mut o);
    }
    e.on_batch_end(&mut o);
    assert_eq!(e.stats().bbo_refused, 5);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1000.5))
    );
    // A BBO newer than the book, then the book goes invalid: the BBO is dropped, and one
    // arriving before the book is valid again is ignored.
    e.on_event(&bbo(1010, 1011, 5, 2 * MS), &mut o);
    e.on_event(
        &Event::book_invalid(
            0,
            0,
            2 * MS,
            crate::event::BookStatusReason::SequenceGap,
            5,
            7,
        ),
        &mut o,
    );
    e.on_event(&bbo(1020, 1021, 9, 3 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.instrument(0).unwrap().mode.0, Mode::Halted);
    assert_eq!((e.stats().bbo_used, e.stats().bbo_behind), (1, 1));
    // Resynced at id 20 with the book at 1000 / 1001: the old BBOs do not come back.
    e.on_event(&Event::book_reset(0, 0, 4 * MS, 20), &mut o);
    e.on_event(&level(Side::Bid, 1000, 50, 4 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 50, 4 * MS, true), &mut o);
    e.on_event(&Event::book_valid(0, 0, 4 * MS, 20), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.instrument(0).unwrap().mode.0, Mode::Normal);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1000.5))
    );
}

#[test]
fn top_of_book_depth_book_ignores_bbos() {
    let cfg = CFG.replace(
        "fair_value = \"mid\"",
        "fair_value = \"mid\"\ntop_of_book = \"depth_book\"",
    );
    let mut e = Engine::new(&Config::from_toml(&cfg).unwrap());
    let mut o = Out::default();
    e.on_event(&Event::book_reset(0, 0, 0, 1), &mut o);
    e.on_event(&level(Side::Bid, 1000, 50, 0, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 50, 0, true), &mut o);
    e.on_event(&Event::book_valid(0, 0, 0, 1), &mut o);
    e.on_event(&bbo(1010, 1011, 5, MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1000.5))
    );
    assert_eq!(e.stats().bbo_used + e.stats().bbo_behind, 0);
}

// ---- reconciliation and venue fields -------------------------------------------------------

use crate::event::{reject_code, VenueOrder, VenuePosition};

/// The venue's view of `cid`.
fn venue(cid: u64, side: Side, price: i64, cum: i64, open: bool) -> VenueOrder {
    VenueOrder {
        client_order_id: cid,
        venue_order_id: 9_000 + (cid & 0xff),
        side,
        price,
        qty: 2,
        cum_qty: cum,
        open,
    }
}

/// A synced engine with its six orders acknowledged; returns the first bid's (cid, price).
fn working() -> (Engine, Out, u64, i64) {
    let (mut e, mut o) = synced(0);
    let first = o.intents[0];
    assert_eq!(first.side, Side::Bid);
    ack_all(&mut e, &mut o, MS);
    (e, o, first.client_order_id, first.price)
}

#[test]
fn reconcile_applies_a_fill_we_missed_at_the_order_price() {
    let (mut e, mut o, cid, px) = working();
    let ev = Event::reconcile_order(0, 0, 2 * MS, venue(cid, Side::Bid, px, 1, true));
    e.on_event(&ev, &mut o);
    let v = e.instrument(0).unwrap();
    assert_eq!(v.position.qty, 1);
    assert_eq!(v.position.cost, px as i128);
    let ord = v.orders.get(cid).unwrap();
    assert_eq!((ord.filled, ord.state), (1, OrderState::Live));
    assert_eq!(ord.venue_order_id, 9_000 + (cid & 0xff));
    assert_eq!(v.orders.open_qty(Side::Bid), 5);
    assert_eq!(e.stats().reconcile_missed_fills, 1);
    // Told again: nothing more is missing.
    e.on_event(&ev, &mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 1);
    assert_eq!(e.stats().reconcile_missed_fills, 1);
}

#[test]
fn reconcile_closes_an_order_the_venue_no_longer_has_open() {
    let (mut e, mut o, cid, px) = working();
    e.on_event(
        &Event::reconcile_order(0, 0, 2 * MS, venue(cid, Side::Bid, px, 0, false)),
        &mut o,
    );
    let v = e.instrument(0).unwrap();
    assert_eq!(v.orders.get(cid).unwrap().state, OrderState::Done);
    assert_eq!(v.orders.open_qty(Side::Bid), 4);
    assert_eq!(v.position.qty, 0);
    assert_eq!(e.stats().reconcile_closed, 1);
    assert!(o.intents.is_empty(), "nothing sent for it");
    // The requote replaces the missing layer.
    e.on_batch_end(&mut o);
    assert_eq!(o.intents.len(), 1);
    assert_eq!(
        (o.intents[0].kind, o.intents[0].price),
        (IntentKind::Place, px)
    );
}

#[test]
fn reconcile_cancels_an_orphan_of_this_instrument_and_counts_a_foreign_order() {
    let (mut e, mut o, _, _) = working();
    let before = e.stats();
    // One of instrument 0's ids that the table does not hold (e.g. from before a restart).
    let orphan = (200u64 << 40) | 77; // instrument 0, slot 200
    e.on_event(
        &Event::reconcile_order(0, 0, 2 * MS, venue(orphan, Side::Ask, 1_010, 0, true)),
        &mut o,
    );
    assert_eq!(o.intents.len(), 1);
    let c = o.intents[0];
    assert_eq!(
        (c.kind, c.client_order_id, c.side, c.forced, c.seq),
        (IntentKind::Cancel, orphan, Side::Ask, true, before.intents)
    );
    assert_eq!(e.stats().reconcile_orphans_cancelled, 1);
    assert_eq!(e.stats().forced_cancels, before.forced_cancels + 1);
    // A finished orphan is left alone.
    e.on_event(
        &Event::reconcile_order(0, 0, 2 * MS, venue(orphan + 1, Side::Ask, 1_010, 0, false)),
        &mut o,
    );
    assert_eq!(o.intents.len(), 1);
    // A foreign id: nothing sent, reduce-only until the operator's Normal.
    o.intents.clear();
    let foreign = 0x7777u64 << 48 | 1;
    e.on_event(
        &Event::reconcile_order(0, 0, 3 * MS, venue(foreign, Side::Bid, 990, 0, true)),
        &mut o,
    );
    assert_eq!(e.stats().reconcile_foreign_orders, 1);
    e.on_batch_end(&mut o);
    assert_eq!(
        (o.modes.last().unwrap().to, o.modes.last().unwrap().reason),
        (Mode::ReduceOnly, ModeReason::ForeignOrder)
    );
    assert!(o
        .intents
        .iter()
        .all(|i| i.kind == IntentKind::Cancel && i.client_order_id != foreign));
    e.on_event(&Event::control(0, 4 * MS, Command::Normal), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
}

#[test]
fn reconcile_adopts_the_venue_position_and_records_the_correction() {
    let (mut e, mut o, _, _) = working();
    let p = VenuePosition {
        qty: 3,
        entry_price: 999,
        streamed: false,
    };
    e.on_event(&Event::reconcile_position(0, 0, 2 * MS, p), &mut o);
    let pos = *e.instrument(0).unwrap().position;
    assert_eq!((pos.qty, pos.cost, pos.realized), (3, 2_997, 0));
    assert_eq!(
        (pos.corrections, pos.correction_qty, pos.correction_cost),
        (1, 3, 2_997)
    );
    assert_eq!(e.stats().reconcile_position_corrections, 1);
    // The same quantity (the venue's entry price is rounded): left alone.
    let same = VenuePosition {
        qty: 3,
        entry_price: 1_000,
        streamed: false,
    };
    e.on_event(&Event::reconcile_position(0, 0, 3 * MS, same), &mut o);
    assert_eq!(e.instrument(0).unwrap().position.cost, 2_997);
    assert_eq!(e.stats().reconcile_position_corrections, 1);
    // Quotes skew to the adopted position at the next requote.
    e.on_batch_end(&mut o);
    assert!(!o.intents.is_empty());
}

/// The venue's position taken at venue time P holds every fill done by P: a report of such a
/// fill that reaches the engine after the position (held while the position was asked for, or
/// late) completes its order but does not move the position again; a fill after P does.
#[test]
fn a_fill_reported_after_the_venue_position_that_holds_it_is_not_counted_twice() {
    let (mut e, mut o, cid, px) = working();
    let p_ns = 50 * MS;
    // The venue filled 1 of our bid at P and says so in its position first.
    let pos = VenuePosition {
        qty: 1,
        entry_price: px,
        streamed: false,
    };
    e.on_event(&Event::reconcile_position(0, p_ns, 2 * MS, pos), &mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 1);
    // Then the fill's own report, done at P: the order completes its fill, the position stays.
    let fill = ExecReport::new(ExecKind::PartialFill, cid, px, 1, 1);
    e.on_event(&Event::exec(0, p_ns, 3 * MS, fill), &mut o);
    let v = e.instrument(0).unwrap();
    assert_eq!(v.position.qty, 1);
    assert_eq!(v.orders.get(cid).unwrap().filled, 1);
    assert_eq!(e.stats().fills_in_venue_position, 1);
    // A fill done after P moves it.
    let later = ExecReport::new(ExecKind::PartialFill, cid, px, 1, 2);
    e.on_event(&Event::exec(0, p_ns + 1, 4 * MS, later), &mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 2);
    assert_eq!(e.stats().fills_in_venue_position, 1);
}

/// A snapshot's venue time is a millisecond: a fill done in the same millisecond after it is
/// taken for one it holds. The account update that follows that fill on the user stream (the
/// position right after it) puts it right, and from then on every fill reported moves the
/// position; a streamed position older than the snapshot is not applied.
#[test]
fn the_streamed_position_after_a_fill_settles_a_fill_in_the_snapshots_millisecond() {
    let (mut e, mut o, cid, px) = working();
    let p_ns = 50 * MS;
    let at = |qty, streamed| VenuePosition {
        qty,
        entry_price: px,
        streamed,
    };
    e.on_event(
        &Event::reconcile_position(0, p_ns, 2 * MS, at(1, false)),
        &mut o,
    );
    // An update from before the snapshot (held while it was asked for): not applied.
    e.on_event(
        &Event::reconcile_position(0, p_ns - MS, 3 * MS, at(0, true)),
        &mut o,
    );
    assert_eq!(e.instrument(0).unwrap().position.qty, 1);
    assert_eq!(e.stats().stale_streamed_positions, 1);
    // Fill 1 at P is in the snapshot; fill 2 happened at P too, after it was taken.
    let one = ExecReport::new(ExecKind::PartialFill, cid, px, 1, 1);
    e.on_event(&Event::exec(0, p_ns, 4 * MS, one), &mut o);
    let two = ExecReport::new(ExecKind::PartialFill, cid, px, 1, 2);
    e.on_event(&Event::exec(0, p_ns, 5 * MS, two), &mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 1);
    assert_eq!(e.stats().fills_in_venue_position, 2);
    // The account update after fill 2: two lots.
    e.on_event(
        &Event::reconcile_position(0, p_ns, 6 * MS, at(2, true)),
        &mut o,
    );
    assert_eq!(e.instrument(0).unwrap().position.qty, 2);
    assert_eq!(e.stats().reconcile_position_corrections, 2);
    // Fill 3 in the same millisecond moves it, and its update agrees: no correction.
    let orders = &e.instrument(0).unwrap().orders;
    let next = orders
        .open()
        .find(|x| x.side == Side::Bid && x.client_order_id != cid);
    let (cid3, px3) = next.map(|x| (x.client_order_id, x.price)).unwrap();
    let three = ExecReport::new(ExecKind::PartialFill, cid3, px3, 1, 1);
    e.on_event(&Event::exec(0, p_ns, 7 * MS, three), &mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 3);
    e.on_event(
        &Event::reconcile_position(0, p_ns, 8 * MS, at(3, true)),
        &mut o,
    );
    assert_eq!(e.stats().reconcile_position_corrections, 2);
    assert_eq!(e.stats().fills_in_venue_position, 2);
    assert_eq!(e.stats().stale_streamed_positions, 1);
}

#[test]
fn reports_record_the_venue_order_id_and_rejects_are_counted_by_code() {
    let (mut e, mut o) = synced(0);
    let cids: Vec<u64> = o.intents.iter().map(|i| i.client_order_id).collect();
    let mk = |kind, cid, venue_order_id, code| ExecReport {
        venue_order_id,
        reject_code: code,
        post_only_reject: code == reject_code::POST_ONLY_WOULD_TAKE,
        ..ExecReport::new(kind, cid, 0, 0, 0)
    };
    let venue_id = |e: &Engine, cid: u64| {
        e.instrument(0)
            .unwrap()
            .orders
            .get(cid)
            .unwrap()
            .venue_order_id
    };
    e.on_event(
        &Event::exec(0, 0, MS, mk(ExecKind::Ack, cids[0], 41, 0)),
        &mut o,
    );
    assert_eq!(venue_id(&e, cids[0]), 41);
    // A report without one keeps the id.
    e.on_event(
        &Event::exec(0, 0, MS, mk(ExecKind::CancelRejected, cids[0], 0, -2011)),
        &mut o,
    );
    assert_eq!(venue_id(&e, cids[0]), 41);
    e.on_event(
        &Event::exec(0, 0, MS, mk(ExecKind::Rejected, cids[1], 0, -5022)),
        &mut o,
    );
    e.on_event(
        &Event::exec(0, 0, MS, mk(ExecKind::Rejected, cids[2], 0, -1003)),
        &mut o,
    );
    e.on_event(
        &Event::exec(0, 0, MS, mk(ExecKind::Rejected, cids[3], 0, -4164)),
        &mut o,
    );
    let s = e.stats();
    assert_eq!(
        (
            s.rejects_unknown_order,
            s.rejects_rate_limited,
            s.rejects_other
        ),
        (1, 1, 1)
    );
    let os = e.instrument(0).unwrap().orders.stats();
    assert_eq!((os.rejected, os.post_only_rejects), (3, 1));
}

#[test]
fn a_saturated_report_is_counted_and_ignored() {
    let (mut e, mut o, cid, px) = working();
    let r = ExecReport {
        venue_order_id: 1,
        ..ExecReport::new(ExecKind::Fill, cid, px, i64::MAX, i64::MAX)
    };
    e.on_event(&Event::exec(0, 0, 2 * MS, r), &mut o);
    assert_eq!(e.stats().exec_saturated, 1);
    let v = e.instrument(0).unwrap();
    assert_eq!(v.position.qty, 0);
    assert_eq!(v.orders.get(cid).unwrap().state, OrderState::Live);
}

/// Issue 11: a bookTicker whose update id leads the depth book's by more than
/// `BboOverlay::MAX_ID_LEAD` is refused (counted), not stored: stored, it stayed "newer than the
/// book" for the rest of the run and froze the pricing top.
#[test]
fn a_bbo_implausibly_far_ahead_of_the_depth_stream_is_refused() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    o.intents.clear();
    let far = 1 + crate::BboOverlay::MAX_ID_LEAD + 1;
    e.on_event(&bbo(1200, 1201, far, 2 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.stats().bbo_refused, 1);
    assert_eq!(e.stats().bbo_used, 0);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1000.5)),
        "priced from the depth book, not the refused ticker"
    );
    // The depth stream moves on and prices follow it (nothing frozen).
    depth_to(&mut e, &mut o, 1000, 1010, 5, 3 * MS);
    e.on_batch_end(&mut o);
    assert_eq!(
        e.instrument(0).unwrap().fair_value,
        Some(Fx::from_num(1010.5))
    );
    // A plausible ticker is still used.
    e.on_event(&bbo(1020, 1021, 6, 4 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.stats().bbo_used, 1);
}

/// Issue 12: a spot engine with `base` and `quote` held (decimal strings), synced at 1000 / 1001.
fn spot_synced(base: &str, quote: &str) -> (Engine, Out) {
    let text = CFG
        .replace("symbol = \"BTCUSDT\"", "symbol = \"BTCUSDT\"\nvenue = \"binance-spot\"")
        .replace(
            "min_notional = \"0.1\"\n",
            &format!("min_notional = \"0.1\"\n[instrument.balances]\nbase = \"{base}\"\nquote = \"{quote}\"\n"),
        );
    let mut e = Engine::new(&Config::from_toml(&text).unwrap());
    let mut o = Out::default();
    e.on_event(&Event::book_reset(0, 0, 0, 1), &mut o);
    e.on_event(&level(Side::Bid, 1000, 50, 0, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 50, 0, true), &mut o);
    e.on_event(&Event::book_valid(0, 0, 0, 1), &mut o);
    e.on_batch_end(&mut o);
    (e, o)
}

fn placed(o: &Out, side: Side) -> Vec<i64> {
    o.intents
        .iter()
        .filter(|i| i.kind == IntentKind::Place && i.side == side)
        .map(|i| i.qty)
        .collect()
}

#[test]
fn spot_quotes_within_its_balances() {
    // Plenty of both: the full grid (3 layers of 2 lots a side).
    let (_, o) = spot_synced("1", "1000");
    assert_eq!(
        (placed(&o, Side::Bid), placed(&o, Side::Ask)),
        (vec![2, 2, 2], vec![2, 2, 2])
    );
    // 0.003 BTC held: asks up to 3 lots (one layer of 2; a second would sell 4).
    let (_, o) = spot_synced("0.003", "1000");
    assert_eq!(
        (placed(&o, Side::Bid).len(), placed(&o, Side::Ask)),
        (3, vec![2])
    );
    // Nothing held: no asks at all (no margin).
    let (_, o) = spot_synced("0", "1000");
    assert!(placed(&o, Side::Ask).is_empty());
    assert_eq!(placed(&o, Side::Bid).len(), 3);
    // 0.3 USDT pays for 2 lots at 100.1 USDT a BTC: one bid layer.
    let (_, o) = spot_synced("1", "0.3");
    assert_eq!(placed(&o, Side::Bid), vec![2]);
}

#[test]
fn spot_sells_what_it_bought() {
    let (mut e, mut o) = spot_synced("0", "1000");
    assert!(placed(&o, Side::Ask).is_empty());
    let bid = o
        .intents
        .iter()
        .find(|i| i.kind == IntentKind::Place && i.side == Side::Bid)
        .copied()
        .unwrap();
    ack_all(&mut e, &mut o, MS);
    // The best bid fills (2 lots; the 10 bp fee of 0.000002 BTC is paid in BTC): 1 lot can be
    // sold (2 − ⌈0.002 lot⌉).
    let mut r = ExecReport::new(ExecKind::Fill, bid.client_order_id, bid.price, 2, 2);
    r.fee = 2_000;
    e.on_event(&Event::exec(0, 0, 2 * MS, r), &mut o);
    e.on_batch_end(&mut o);
    let v = e.instrument(0).unwrap();
    assert_eq!(
        (
            v.position.qty,
            v.position.fees_base,
            v.position.base_change_lots()
        ),
        (2, 2_000, 1)
    );
    // Asks now: the 1 lot held, below the 2-lot layer size: in normal mode a layer is not
    // trimmed, so nothing is offered until a whole layer is held.
    assert!(
        placed(&o, Side::Ask).is_empty(),
        "{:?}",
        placed(&o, Side::Ask)
    );
}

/// Issue 12: two venues, two budgets. With spot's limit at 2 places per 10 s, the spot
/// instrument places 2 orders while the USD-M one, on its own budget, places its whole grid.
#[test]
fn each_venue_spends_its_own_order_budget() {
    let usdm = CFG.split("[[instrument]]").nth(1).unwrap();
    let spot = usdm
        .replace(
            "symbol = \"BTCUSDT\"",
            "symbol = \"ETHUSDT\"\nvenue = \"binance-spot\"",
        )
        .replace(
            "min_notional = \"0.1\"\n",
            "min_notional = \"0.1\"\n[instrument.balances]\nbase = \"1\"\nquote = \"1000\"\n",
        );
    let text = format!(
        "[engine]\nbook_slots = 4096\n[engine.venues.binance-spot]\norders_per_10s = 2\n\
         [[instrument]]{usdm}[[instrument]]{spot}"
    );
    let mut e = Engine::new(&Config::from_toml(&text).unwrap());
    let mut o = Out::default();
    for inst in [0u16, 1] {
        let lvl = |side, price, last| {
            let mut ev = level(side, price, 50, 0, last);
            ev = Event::level(inst, 0, 0, ev.as_level().unwrap());
            ev
        };
        e.on_event(&Event::book_reset(inst, 0, 0, 1), &mut o);
        e.on_event(&lvl(Side::Bid, 1000, false), &mut o);
        e.on_event(&lvl(Side::Ask, 1001, true), &mut o);
        e.on_event(&Event::book_valid(inst, 0, 0, 1), &mut o);
    }
    e.on_batch_end(&mut o);
    let placed = |inst: u16| {
        o.intents
            .iter()
            .filter(|i| i.instrument == inst && i.kind == IntentKind::Place)
            .count()
    };
    assert_eq!((placed(0), placed(1)), (6, 2));
}

#[test]
fn with_adopt_unknown_orders_an_earlier_runs_order_is_taken_over_and_its_id_never_reissued() {
    let text = CFG.replace(
        "book_slots = 4096",
        "book_slots = 4096\nadopt_unknown_orders = true",
    );
    let mut e = Engine::new(&Config::from_toml(&text).unwrap());
    let mut o = Out::default();
    // Before any quote: an earlier run's ask, slot 9, generation 5, one lot of two filled.
    let old = (9u64 << 40) | 5;
    e.on_event(
        &Event::reconcile_order(0, 0, MS, venue(old, Side::Ask, 1_010, 1, true)),
        &mut o,
    );
    assert!(o.intents.is_empty(), "adopted, not cancelled");
    assert_eq!(e.stats().reconcile_adopted, 1);
    assert_eq!(e.stats().reconcile_orphans_cancelled, 0);
    let v = e.instrument(0).unwrap();
    let ord = v.orders.get(old).expect("held");
    assert_eq!(
        (ord.state, ord.side, ord.price, ord.qty, ord.filled),
        (OrderState::Live, Side::Ask, 1_010, 2, 1)
    );
    assert_eq!(
        v.orders.open_qty(Side::Ask),
        1,
        "its remaining lot counts as exposure"
    );
    // Its own reports now apply to it.
    report(&mut e, &mut o, ExecKind::Fill, old, 1_010, 1, 2, 2 * MS);
    assert_eq!(e.instrument(0).unwrap().position.qty, -1);
    // Quoting: no new id ever equals it (generations start past its own).
    e.on_event(&Event::book_reset(0, 0, 3 * MS, 1), &mut o);
    e.on_event(&level(Side::Bid, 1000, 50, 3 * MS, false), &mut o);
    e.on_event(&level(Side::Ask, 1001, 50, 3 * MS, true), &mut o);
    e.on_event(&Event::book_valid(0, 0, 3 * MS, 1), &mut o);
    e.on_batch_end(&mut o);
    assert!(!o.intents.is_empty());
    assert!(o
        .intents
        .iter()
        .all(|i| (i.client_order_id & ((1 << 40) - 1)) > 5));
    // A second report of an order in an occupied slot is not adopted: cancelled instead.
    let clash = o.intents[0].client_order_id ^ 1;
    let n = o.intents.len();
    e.on_event(
        &Event::reconcile_order(0, 0, 4 * MS, venue(clash, Side::Bid, 990, 0, true)),
        &mut o,
    );
    assert_eq!(o.intents.len(), n + 1);
    assert_eq!(o.intents[n].kind, IntentKind::Cancel);
    assert_eq!(o.intents[n].client_order_id, clash);
}

#[test]
fn without_adoption_an_orphans_id_is_still_never_reissued() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    // An orphan far ahead in generations.
    let orphan = (3u64 << 40) | 1_000_000;
    e.on_event(
        &Event::reconcile_order(0, 0, 2 * MS, venue(orphan, Side::Ask, 1_010, 0, true)),
        &mut o,
    );
    o.intents.clear();
    e.on_event(&Event::control(0, 3 * MS, Command::CancelAll), &mut o);
    e.on_batch_end(&mut o);
    ack_all(&mut e, &mut o, 4 * MS);
    e.on_batch_end(&mut o);
    let places: Vec<_> = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Place)
        .collect();
    assert!(!places.is_empty());
    assert!(places
        .iter()
        .all(|i| (i.client_order_id & ((1 << 40) - 1)) > 1_000_000));
}

#[test]
fn an_adopted_order_waits_out_the_order_entry_halt_but_not_another() {
    let text = CFG.replace(
        "book_slots = 4096",
        "book_slots = 4096\nadopt_unknown_orders = true",
    );
    let (mut e, mut o) = {
        let mut e = Engine::new(&Config::from_toml(&text).unwrap());
        let mut o = Out::default();
        e.on_event(&Event::control(0, 0, Command::OrderEntryDown), &mut o);
        e.on_event(&Event::book_reset(0, 0, 0, 1), &mut o);
        e.on_event(&level(Side::Bid, 1000, 50, 0, false), &mut o);
        e.on_event(&level(Side::Ask, 1001, 50, 0, true), &mut o);
        e.on_event(&Event::book_valid(0, 0, 0, 1), &mut o);
        e.on_batch_end(&mut o);
        (e, o)
    };
    assert!(
        o.intents.is_empty(),
        "nothing quoted while order entry is down"
    );
    let old = (9u64 << 40) | 5;
    e.on_event(
        &Event::reconcile_order(0, 0, MS, venue(old, Side::Ask, 1_010, 0, true)),
        &mut o,
    );
    e.on_batch_end(&mut o);
    assert!(
        o.intents.is_empty(),
        "the order entry halt leaves it working"
    );
    // A kill switch is another halt: it is cancelled.
    e.on_event(&Event::control(0, 2 * MS, Command::Halt), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.intents.len(), 1);
    assert_eq!(
        (o.intents[0].kind, o.intents[0].client_order_id),
        (IntentKind::Cancel, old)
    );
}

#[test]
fn flatten_halts_cancels_and_crosses_for_the_position_until_flat_then_waits_for_resume() {
    let (mut e, mut o) = synced(0);
    let bid = o
        .intents
        .iter()
        .find(|i| i.side == Side::Bid)
        .unwrap()
        .client_order_id;
    ack_all(&mut e, &mut o, MS);
    report(&mut e, &mut o, ExecKind::Fill, bid, 999, 2, 2, 2 * MS);
    e.on_batch_end(&mut o);
    ack_all(&mut e, &mut o, 3 * MS);
    assert_eq!(e.instrument(0).unwrap().position.qty, 2);

    e.on_event(&Event::control(0, 4 * MS, Command::Flatten), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(
        e.instrument(0).unwrap().mode,
        (Mode::Halted, ModeReason::Flatten)
    );
    let ioc: Vec<&Intent> = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Place)
        .collect();
    assert_eq!(ioc.len(), 1, "{:?}", o.intents);
    let (cid, side, px, qty, tif) = (
        ioc[0].client_order_id,
        ioc[0].side,
        ioc[0].price,
        ioc[0].qty,
        ioc[0].tif,
    );
    assert_eq!((side, px, qty, tif), (Side::Ask, 1000, 2, TimeInForce::Ioc));
    assert!(o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Cancel)
        .all(|i| i.forced && i.client_order_id != cid));
    let cancels = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Cancel)
        .count();
    assert_eq!(cancels, 5, "every quote but the flatten order");
    o.intents.clear();
    // Another requote while the IOC is in flight: neither a second flatten nor its cancel.
    e.on_event(&Event::timer(5 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert!(
        o.intents
            .iter()
            .all(|i| i.client_order_id != cid && i.kind != IntentKind::Place),
        "{:?}",
        o.intents
    );
    o.intents.clear();
    report(&mut e, &mut o, ExecKind::Ack, cid, 1000, 0, 0, 6 * MS);
    report(&mut e, &mut o, ExecKind::Fill, cid, 1000, 2, 2, 6 * MS);
    e.on_batch_end(&mut o);
    assert_eq!(e.instrument(0).unwrap().position.qty, 0);
    assert!(o.intents.iter().all(|i| i.kind != IntentKind::Place));
    assert_eq!(e.instrument(0).unwrap().mode.1, ModeReason::Flatten);
    o.intents.clear();
    e.on_event(&Event::control(0, 7 * MS, Command::Resume), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.instrument(0).unwrap().mode.0, Mode::Normal);
    assert!(o.intents.iter().any(|i| i.kind == IntentKind::Place));
}

#[test]
fn a_reload_applies_quote_parameters_and_keeps_orders_position_and_book() {
    let (mut e, mut o) = synced(0);
    ack_all(&mut e, &mut o, MS);
    let best_bid = |e: &Engine| {
        e.instrument(0)
            .unwrap()
            .orders
            .open()
            .filter(|o| o.side == Side::Bid)
            .map(|o| o.price)
            .max()
    };
    assert_eq!(best_bid(&e), Some(998));
    let wider = Config::from_toml(
        &CFG.replace("start_offset = 2.0", "start_offset = 40.0\ntolerance = 1.0"),
    )
    .unwrap();
    e.reconfigure(&wider).unwrap();
    assert_eq!(
        e.instrument(0).unwrap().config.layer_distance,
        wider.instruments[0].layer_distance
    );
    e.on_event(&Event::control(0, 2 * MS, Command::Reload), &mut o);
    e.on_batch_end(&mut o);
    let cancelled = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Cancel)
        .count();
    assert!(
        cancelled > 0,
        "the old grid is off the new one: {:?}",
        o.intents
    );
    // Layer 0 is now 40 ticks out, not 2: nothing is placed inside the new offset.
    let bids: Vec<i64> = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Place && i.side == Side::Bid)
        .map(|i| i.price)
        .collect();
    assert!(
        !bids.is_empty() && bids.iter().all(|p| *p <= 961),
        "requoted under the new offset: {:?}",
        o.intents
    );
    ack_all(&mut e, &mut o, 3 * MS);
    assert!(e.instrument(0).unwrap().book.is_valid());

    // Refused, and nothing changes: another tick, another instrument count, other book slots.
    for (text, what) in [
        (
            CFG.replace("tick = \"0.10\"", "tick = \"0.01\""),
            "instrument definition",
        ),
        (
            CFG.replace("book_slots = 4096", "book_slots = 8192"),
            "book_slots",
        ),
        (
            format!(
                "{CFG}\n{}",
                &CFG[CFG.find("[[instrument]]").unwrap()..].replace("BTCUSDT", "ETHUSDT")
            ),
            "instrument set",
        ),
    ] {
        let cfg = Config::from_toml(&text).unwrap();
        let err = e.reconfigure(&cfg).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
        assert_eq!(
            Config::from_toml(CFG).unwrap().reload_refusal(&cfg),
            Some(err)
        );
    }
    assert_eq!(
        e.instrument(0).unwrap().config.layer_distance,
        wider.instruments[0].layer_distance
    );
}

#[test]
fn a_short_cancel_budget_goes_to_the_orders_at_risk_then_to_the_nearest() {
    let (mut e, mut o) = synced(0);
    let placed: Vec<(Side, i64, u64)> = o
        .intents
        .iter()
        .map(|i| (i.side, i.price, i.client_order_id))
        .collect();
    ack_all(&mut e, &mut o, MS);
    // The market drops 10 ticks: every bid is now above where the strategy wants its best bid
    // (at risk of a fill the market has run through); every ask is farther than wanted
    // (passive, harmless). Six orders are off the grid; the budget is 4 a minute.
    o.intents.clear();
    depth_to(&mut e, &mut o, 1000, 990, 2, 2 * MS);
    e.on_batch_end(&mut o);
    let cancelled: Vec<u64> = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Cancel)
        .map(|i| i.client_order_id)
        .collect();
    assert_eq!(cancelled.len(), 4, "{:?}", o.intents);
    let bids: Vec<u64> = placed
        .iter()
        .filter(|p| p.0 == Side::Bid)
        .map(|p| p.2)
        .collect();
    // Every bid first (at risk, nearest fair value first), then the nearest ask.
    let mut by_price: Vec<&(Side, i64, u64)> = placed.iter().filter(|p| p.0 == Side::Bid).collect();
    by_price.sort_by_key(|p| std::cmp::Reverse(p.1));
    assert_eq!(
        &cancelled[..3],
        &by_price.iter().map(|p| p.2).collect::<Vec<_>>()[..]
    );
    assert!(bids.iter().all(|b| cancelled.contains(b)));
    let nearest_ask = placed
        .iter()
        .filter(|p| p.0 == Side::Ask)
        .min_by_key(|p| p.1)
        .unwrap();
    assert_eq!(cancelled[3], nearest_ask.2);
    assert_eq!(e.stats().cancels_deferred, 2);
}

#[test]
fn the_tolerance_grows_with_a_layers_distance_from_fair_value() {
    // Layers at 2, 4 and 7 ticks (start 2, spacing 2 × 1.5); tolerance 0.5 tick, growth 0.5.
    let cfg = CFG.replace(
        "skew_coeff = 0.001",
        "skew_coeff = 0.001\ntolerance = 0.5\ntolerance_growth = 0.5",
    );
    let (mut e, mut o) = synced_with(&cfg, 0);
    ack_all(&mut e, &mut o, MS);
    // Up 2 ticks: layer 0 (the plain tolerance, 0.5) must move; the far layers (2 and 5 ticks
    // beyond layer 0: tolerance 1.5 and 3) keep their orders.
    o.intents.clear();
    depth_to(&mut e, &mut o, 1000, 1002, 2, 2 * MS);
    e.on_batch_end(&mut o);
    let cancels = o
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Cancel)
        .count();
    assert_eq!(cancels, 2, "one per side, layer 0 only: {:?}", o.intents);
}

/// Cancels of `side` in `o`, by price of the cancelled order.
fn cancelled_prices(o: &Out, placed: &[(Side, i64, u64)], side: Side) -> Vec<i64> {
    o.intents
        .iter()
        .filter(|i| i.kind == IntentKind::Cancel && i.side == side)
        .filter_map(|i| {
            placed
                .iter()
                .find(|p| p.2 == i.client_order_id)
                .map(|p| p.1)
        })
        .collect()
}

/// Every place in `o` as (side, price, id), appended to `all`.
fn remember_places(o: &Out, all: &mut Vec<(Side, i64, u64)>) {
    all.extend(
        o.intents
            .iter()
            .filter(|i| i.kind == IntentKind::Place)
            .map(|i| (i.side, i.price, i.client_order_id)),
    );
}

#[test]
fn an_order_past_the_deepest_layer_is_kept_as_a_reserve() {
    // Layers at 2, 4 and 7 ticks; tolerance 1 tick. Up 3 ticks: the bids re-index (998 → the
    // layer at 999, 996 stays), 993 falls past the deepest layer.
    for (keep, bid_cancels) in [(0, vec![993]), (2, vec![])] {
        let cfg = CFG.replace(
            "skew_coeff = 0.001",
            &format!("skew_coeff = 0.001\nkeep_beyond = {keep}"),
        );
        let (mut e, mut o) = synced_with(&cfg, 0);
        let mut placed = Vec::new();
        remember_places(&o, &mut placed);
        assert_eq!(best_place(&o, Side::Bid), Some(998));
        ack_all(&mut e, &mut o, MS);
        depth_to(&mut e, &mut o, 1000, 1003, 2, 2 * MS);
        e.on_batch_end(&mut o);
        remember_places(&o, &mut placed);
        assert_eq!(
            cancelled_prices(&o, &placed, Side::Bid),
            bid_cancels,
            "keep_beyond = {keep}: {:?}",
            o.intents
        );
        // The ask the market moved onto goes either way; the new layer 0s are placed.
        assert_eq!(cancelled_prices(&o, &placed, Side::Ask), vec![1003]);
        assert_eq!(best_place(&o, Side::Bid), Some(1001));
    }
}

#[test]
fn the_reserve_gives_way_when_a_near_layer_needs_its_exposure() {
    // batch_cap = net_max = 10 lots, layers of 2 lots: three layers and two reserve orders fill
    // it. Three moves up of 3 ticks each leave 993, 996 and 999 past the deepest layer; at the
    // third, the new layer 0 needs 2 lots: the farthest reserve order (993) goes, no other.
    let cfg = CFG.replace("skew_coeff = 0.001", "skew_coeff = 0.001\nkeep_beyond = 5");
    let (mut e, mut o) = synced_with(&cfg, 0);
    let mut placed = Vec::new();
    remember_places(&o, &mut placed);
    let mut bid = 1000;
    let mut bid_cancels = Vec::new();
    for k in 0..3u64 {
        ack_all(&mut e, &mut o, (2 * k as i64 + 1) * MS);
        depth_to(&mut e, &mut o, bid, bid + 3, k + 2, (2 * k as i64 + 2) * MS);
        bid += 3;
        e.on_batch_end(&mut o);
        remember_places(&o, &mut placed);
        bid_cancels.push(cancelled_prices(&o, &placed, Side::Bid));
    }
    assert_eq!(bid_cancels, vec![vec![], vec![], vec![993]], "{placed:?}");
}

/// A mark price with funding `rate_e8` at `t`, then a requote.
fn funding_then_requote(e: &mut Engine, o: &mut Out, rate_e8: i64, t: i64) {
    let mark = crate::event::MarkPriceUpdate {
        mark_price: 1000,
        index_price: 1000,
        funding_rate_e8: rate_e8,
        next_funding_ms: 0,
    };
    e.on_event(&Event::mark_price(0, 0, t, mark), o);
    e.on_event(&Event::timer(t), o);
    e.on_batch_end(o);
}

/// `CFG` with an adapt section leaning `skew` bps per bp of funding (at most 100 bps).
fn with_funding(skew: &str) -> String {
    CFG.replace(
        "skew_coeff = 0.001",
        &format!(
            "skew_coeff = 0.001\n[instrument.quote.adapt]\nfunding_skew = {skew}\nfunding_max_bps = 100.0\nfunding_stale_ms = 5000"
        ),
    )
}

/// The engine's desired layer 0 per side after the last requote.
fn desired_best(e: &Engine) -> [Option<i64>; 2] {
    e.instrument(0).unwrap().desired_best
}

#[test]
fn funding_leans_the_quotes_toward_the_side_that_earns_it_while_the_mark_price_is_fresh() {
    // 50 bps of funding (longs pay), one bp of shift per bp: the reservation price goes 5 ticks
    // down at a fair value of 1000.5.
    let (mut e, mut o) = synced_with(&with_funding("1.0"), 0);
    assert_eq!(desired_best(&e), [Some(998), Some(1003)]);
    funding_then_requote(&mut e, &mut o, 500_000, MS);
    // floor(995.5 − 2) = 993 (the asks are held above the best bid by the post-only guard).
    assert_eq!(desired_best(&e)[0], Some(993));
    // Six seconds later (the book kept fresh), the mark price is stale: no lean.
    for k in 1..=6u64 {
        depth_to(&mut e, &mut o, 1000, 1000, k + 1, k as i64 * 1_000 * MS);
        e.on_batch_end(&mut o);
    }
    assert_eq!(desired_best(&e), [Some(998), Some(1003)]);
}

/// `n` public trades of one lot at `price` by `aggressor`, at `t`.
fn trades(e: &mut Engine, o: &mut Out, n: u64, price: i64, aggressor: Side, t: i64) {
    for k in 0..n {
        let print = crate::event::TradePrint {
            price,
            qty: 1,
            trade_id: k,
            count: 1,
            aggressor,
        };
        e.on_event(&Event::trade(0, 0, t, print), o);
    }
}

#[test]
fn buyers_lifting_the_offer_pull_the_nearest_ask() {
    let cfg = CFG.replace(
        "skew_coeff = 0.001",
        "skew_coeff = 0.001\n[instrument.quote.adapt]\nimbalance_pull = 0.8\npull_layers = 1",
    );
    let (mut e, mut o) = synced_with(&cfg, 0);
    assert_eq!(desired_best(&e), [Some(998), Some(1003)]);
    trades(&mut e, &mut o, 20, 1001, Side::Bid, MS);
    e.on_event(&Event::timer(MS), &mut o);
    e.on_batch_end(&mut o);
    // Layer 0 of the asks (1003) is pulled: the asks start at layer 1 (1000.5 + 4 → 1005).
    assert_eq!(desired_best(&e), [Some(998), Some(1005)]);
    // The flow turns: sellers hit the bid (200 against 20: imbalance −0.82), and the bids lose
    // their nearest layer instead.
    trades(&mut e, &mut o, 200, 1000, Side::Ask, 2 * MS);
    e.on_event(&Event::timer(2 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(desired_best(&e), [Some(996), Some(1003)]);
}

#[test]
fn a_reload_changes_the_adaptive_spreads_live() {
    let (mut e, mut o) = synced_with(&with_funding("1.0"), 0);
    funding_then_requote(&mut e, &mut o, 500_000, MS);
    assert_eq!(desired_best(&e)[0], Some(993));
    // Funding off by reload (a quote parameter: accepted), the same mark price: no lean.
    e.reconfigure(&Config::from_toml(&with_funding("0.0")).unwrap())
        .unwrap();
    e.on_event(&Event::timer(2 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(desired_best(&e)[0], Some(998));
    // And without the section at all.
    e.reconfigure(&Config::from_toml(CFG).unwrap()).unwrap();
    e.on_event(&Event::timer(3 * MS), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(desired_best(&e), [Some(998), Some(1003)]);
}

/// The diff skipped after one that had nothing to do ([`diff::QuietDiff`]) is exact: an engine
/// that remembers quiet diffs and one that forgets them before every requote see the same
/// events (book moves, acks, partial and whole fills, cancels confirmed, time) and give the same
/// intents, mode changes, counters and positions, step by step.
mod quiet_diff {
    use super::*;
    use proptest::prelude::*;

    fn step(e: &mut Engine, o: &mut Out, ev: &Event, forget: bool) {
        e.on_event(ev, o);
        if forget {
            e.insts[0].quiet.forget();
        }
        e.on_batch_end(o);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn skipping_a_quiet_diff_changes_nothing(
            actions in proptest::collection::vec((0u8..6, any::<u8>(), any::<u8>()), 1..300),
        ) {
            let (mut a, mut oa) = synced(0);
            let (mut b, mut ob) = synced(0);
            prop_assert_eq!(&oa.intents, &ob.intents);
            let mut t = 0i64;
            for (kind, x, y) in actions {
                t += i64::from(y % 50) * MS / 10;
                let ev = match kind {
                    // A level near the touch appears, changes or goes.
                    0 | 1 => {
                        let side = if x % 2 == 0 { Side::Bid } else { Side::Ask };
                        let base = if side == Side::Bid { 1000 } else { 1001 };
                        let px = base + i64::from(x % 9) - 4;
                        level(side, px, i64::from(y % 4) * 10, t, true)
                    }
                    // The oldest intent not answered yet is answered: an ack, or a cancel done.
                    2 | 3 => match oa.intents.first().copied() {
                        Some(i) => {
                            oa.intents.remove(0);
                            let k = if i.kind == IntentKind::Place {
                                ExecKind::Ack
                            } else {
                                ExecKind::Canceled
                            };
                            Event::exec(0, 0, t, ExecReport::new(k, i.client_order_id, 0, 0, 0))
                        }
                        None => Event::timer(t),
                    },
                    // A fill of an open order: one lot, or the rest of it.
                    4 => {
                        let open: Vec<crate::orders::Order> =
                            a.insts[0].orders.open().copied().collect();
                        match open.get(usize::from(x) % open.len().max(1)) {
                            Some(o) => {
                                let whole = y % 2 == 0 || o.remaining() <= 1;
                                let (k, last) = if whole {
                                    (ExecKind::Fill, o.remaining())
                                } else {
                                    (ExecKind::PartialFill, 1)
                                };
                                let r = ExecReport::new(
                                    k, o.client_order_id, o.price, last, o.filled + last,
                                );
                                Event::exec(0, 0, t, r)
                            }
                            None => Event::timer(t),
                        }
                    }
                    _ => Event::timer(t),
                };
                let (from_a, from) = (oa.intents.len(), ob.intents.len());
                step(&mut a, &mut oa, &ev, false);
                step(&mut b, &mut ob, &ev, true);
                // `oa` has the answered intents taken out; compare what this step added.
                prop_assert_eq!(&oa.intents[from_a..], &ob.intents[from..]);
                prop_assert_eq!(&oa.modes, &ob.modes);
                prop_assert_eq!(a.stats(), b.stats());
                prop_assert_eq!(a.insts[0].pos, b.insts[0].pos);
                prop_assert_eq!(a.insts[0].orders.stats(), b.insts[0].orders.stats());
            }
        }
    }

    /// After a requote that had nothing to do, one with the same ladders is skipped; the first
    /// change to the orders makes the diff run again.
    #[test]
    fn a_quiet_diff_is_remembered_until_the_orders_change() {
        let (mut e, mut o) = synced(0);
        ack_all(&mut e, &mut o, MS);
        assert!(o.intents.is_empty());
        assert!(e.insts[0].quiet.remembered());
        // A level deep in the book: the ladders stay, the diff is skipped, nothing is sent.
        e.on_event(&level(Side::Bid, 990, 7, 2 * MS, true), &mut o);
        e.on_batch_end(&mut o);
        assert!(o.intents.is_empty());
        assert!(e.insts[0].quiet.remembered());
        // A fill: the orders changed, the diff runs and replaces the filled layer.
        let cid = e.insts[0].orders.open().next().unwrap().client_order_id;
        let o1 = *e.insts[0].orders.get(cid).unwrap();
        let r = ExecReport::new(ExecKind::Fill, cid, o1.price, o1.qty, o1.qty);
        e.on_event(&Event::exec(0, 0, 3 * MS, r), &mut o);
        e.on_batch_end(&mut o);
        assert!(!o.intents.is_empty());
        assert!(!e.insts[0].quiet.remembered());
    }
}

fn open(e: &Engine, side: Side) -> i64 {
    e.instrument(0).unwrap().orders.open_qty(side)
}

#[test]
fn a_firm_limit_bounds_each_side_never_blocks_closing_and_its_halt_lifts_with_it() {
    // A cancel budget that never binds: the cancels here are the limit's alone.
    let cfg = CFG.replace("cancel_budget_per_min = 4", "cancel_budget_per_min = 1000");
    let (mut e, mut o) = synced_with(&cfg, 0);
    ack_all(&mut e, &mut o, MS);
    assert_eq!((open(&e, Side::Bid), open(&e, Side::Ask)), (6, 6));
    // Fair value 1000.5: a lot is 1,001 tick·lots. Long room 3 lots: one layer of 2 fits;
    // short room below zero: no ask.
    let l = crate::FirmLimit {
        long_units: 3 * 1001,
        short_units: -1001,
        halt: false,
    };
    let ev = Event::firm_limit(0, 2 * MS, &l);
    assert_eq!(ev.as_firm_limit(), Some(l));
    assert_eq!(Event::from_bytes(&ev.to_bytes()), Some(ev));
    e.on_event(&ev, &mut o);
    e.on_batch_end(&mut o);
    ack_all(&mut e, &mut o, 3 * MS);
    assert_eq!((open(&e, Side::Bid), open(&e, Side::Ask)), (2, 0));
    assert_eq!(
        e.instrument(0).unwrap().mode,
        (Mode::Normal, ModeReason::None)
    );

    // The bid fills: long 2, room 1 left (no layer fits), and selling the 2 back is allowed
    // whatever the short room says.
    let bid = e
        .instrument(0)
        .unwrap()
        .orders
        .open()
        .find(|o| o.side == Side::Bid)
        .unwrap()
        .client_order_id;
    report(&mut e, &mut o, ExecKind::Fill, bid, 998, 2, 2, 4 * MS);
    e.on_batch_end(&mut o);
    ack_all(&mut e, &mut o, 5 * MS);
    assert_eq!(e.instrument(0).unwrap().position.qty, 2);
    assert_eq!((open(&e, Side::Bid), open(&e, Side::Ask)), (0, 2));

    // The firm's loss: halted (everything cancelled) while it lasts, quoting again after.
    let halt = crate::FirmLimit { halt: true, ..l };
    e.on_event(&Event::firm_limit(0, 6 * MS, &halt), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().reason, ModeReason::FirmLoss);
    ack_all(&mut e, &mut o, 7 * MS);
    assert_eq!((open(&e, Side::Bid), open(&e, Side::Ask)), (0, 0));
    let wide = crate::FirmLimit {
        long_units: i64::MAX,
        short_units: i64::MAX,
        halt: false,
    };
    e.on_event(&Event::firm_limit(0, 8 * MS, &wide), &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(o.modes.last().unwrap().to, Mode::Normal);
    ack_all(&mut e, &mut o, 9 * MS);
    // Long 2: the bids' room is what the batch cap leaves.
    assert_eq!((open(&e, Side::Bid), open(&e, Side::Ask)), (4, 6));

    // A limit whose halt word is neither 0 nor 1 is malformed: counted, not applied.
    let mut bytes = Event::firm_limit(0, 10 * MS, &l).to_bytes();
    bytes[40] = 7;
    let bad = Event::from_bytes(&bytes).unwrap();
    assert_eq!(bad.as_firm_limit(), None);
    let before = e.stats().malformed;
    e.on_event(&bad, &mut o);
    e.on_batch_end(&mut o);
    assert_eq!(e.stats().malformed, before + 1);
    ack_all(&mut e, &mut o, 11 * MS);
    assert_eq!((open(&e, Side::Bid), open(&e, Side::Ask)), (4, 6));
}
