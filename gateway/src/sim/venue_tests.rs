//! Scenario tests of [`SimVenue`]: one per matching rule.

use super::*;
use engine::{
    BookStatusReason, Event, ExecKind, ExecReport, Fx, Intent, LevelUpdate, Side, TimeInForce,
    TopOfBook, TradePrint,
};

const ENTRY: i64 = 1_000;
const RESP: i64 = 500;
const BID: i64 = 600_000;
const ASK: i64 = 600_001;

fn fees() -> BpsFees {
    BpsFees::new(Fx::from_num(-0.5), Fx::from_num(4.5))
}

/// A one-level depth message at local time `t`, with update id `t`.
fn level(t: i64, side: Side, price: i64, qty: i64) -> Event {
    level_id(t, t as u64, side, price, qty)
}

/// A one-level depth message at local time `t` with update id `update_id`.
fn level_id(t: i64, update_id: u64, side: Side, price: i64, qty: i64) -> Event {
    Event::level(
        0,
        t,
        t,
        LevelUpdate {
            side,
            price,
            qty,
            update_id,
            last_in_msg: true,
            snapshot: false,
        },
    )
}

/// A best bid/offer at local time `t`: `(price, qty)` each side, venue update id `update_id`.
fn bbo(
    t: i64,
    update_id: u64,
    (bid_price, bid_qty): (i64, i64),
    (ask_price, ask_qty): (i64, i64),
) -> Event {
    Event::bbo(
        0,
        t,
        t,
        TopOfBook {
            bid_price,
            bid_qty,
            ask_price,
            ask_qty,
            update_id,
        },
    )
}

/// A public trade; `aggressor` is the side that took (`Ask`: a sell).
fn trade(t: i64, price: i64, qty: i64, aggressor: Side) -> Event {
    Event::trade(
        0,
        t,
        t,
        TradePrint {
            price,
            qty,
            trade_id: t as u64,
            count: 1,
            aggressor,
        },
    )
}

fn place(cid: u64, side: Side, price: i64, qty: i64, t: i64) -> Intent {
    Intent::place(0, side, TimeInForce::PostOnly, cid, price, qty, t, cid)
}

fn ioc(cid: u64, side: Side, price: i64, qty: i64, t: i64) -> Intent {
    Intent::place(0, side, TimeInForce::Ioc, cid, price, qty, t, cid)
}

fn cancel(cid: u64, side: Side, t: i64) -> Intent {
    Intent::cancel(0, side, cid, false, t, cid)
}

/// A venue over a book of bids 600,000 × 10, 599,999 × 5 and asks 600,001 × 8, 600,002 × 20.
fn venue<Q: QueueModel>(queue: Q) -> SimVenue<Q, ConstantLatency, BpsFees> {
    let mut v = SimVenue::new(1, 4096, queue, ConstantLatency::new(ENTRY, RESP), fees());
    for ev in [
        Event::book_reset(0, 0, 0, 1),
        level(0, Side::Bid, BID, 10),
        level(0, Side::Bid, BID - 1, 5),
        level(0, Side::Ask, ASK, 8),
        level(0, Side::Ask, ASK + 1, 20),
        Event::book_valid(0, 0, 0, 1),
    ] {
        v.on_market(&ev);
    }
    v
}

/// The feed declares the book invalid at `t` (a sequence gap).
fn invalid(t: i64) -> Event {
    Event::book_invalid(0, t, t, BookStatusReason::SequenceGap, 0, 0)
}

/// A script step: a market event, or an intent sent at its `time_ns`.
#[derive(Clone, Copy)]
enum Step {
    Market(Event),
    Send(Intent),
}

/// Runs a script the way a backtest does (everything due first, then the step) and returns
/// every report event delivered, then everything still pending.
fn run<Q: QueueModel, L: LatencyModel, F: FeeModel>(
    v: &mut SimVenue<Q, L, F>,
    script: &[Step],
) -> Vec<Event> {
    let mut out = Vec::new();
    for s in script {
        match s {
            Step::Market(ev) => {
                v.advance_to(ev.local_time_ns, &mut |r| out.push(*r));
                v.on_market(ev);
            }
            Step::Send(i) => {
                v.advance_to(i.time_ns, &mut |r| out.push(*r));
                v.on_intent(i, i.time_ns);
            }
        }
    }
    while let Some(t) = v.next_due() {
        v.advance_to(t, &mut |r| out.push(*r));
    }
    out
}

fn execs(evs: &[Event]) -> Vec<ExecReport> {
    evs.iter().map(|e| e.as_exec().unwrap()).collect()
}

fn kinds(evs: &[Event]) -> Vec<ExecKind> {
    execs(evs).iter().map(|r| r.kind).collect()
}

#[test]
fn queue_ahead_is_eaten_by_trades_then_partial_then_full_fill() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 4, 0)),
            Step::Market(trade(2_000, BID, 6, Side::Ask)),
        ],
    );
    assert_eq!(kinds(&out), [ExecKind::Ack]);
    assert_eq!(out[0].local_time_ns, ENTRY + RESP);
    assert_eq!(v.queue_ahead(0, 1), Some(4), "10 ahead less 6 traded");
    let out = run(
        &mut v,
        &[
            Step::Market(trade(3_000, BID, 6, Side::Ask)),
            // A buy at our bid price does not trade with bids.
            Step::Market(trade(3_500, BID, 9, Side::Bid)),
            Step::Market(trade(4_000, BID, 5, Side::Ask)),
        ],
    );
    let r = execs(&out);
    assert_eq!(kinds(&out), [ExecKind::PartialFill, ExecKind::Fill]);
    assert_eq!((r[0].last_qty, r[0].cum_qty, r[0].last_price), (2, 2, BID));
    assert_eq!((r[1].last_qty, r[1].cum_qty, r[1].last_price), (2, 4, BID));
    assert!(!r[0].taker && !r[1].taker);
    assert_eq!(out[0].local_time_ns, 3_000 + RESP);
    assert_eq!(out[0].venue_time_ns, 3_000);
    assert_eq!(out[1].local_time_ns, 4_000 + RESP);
    assert_eq!(v.open_orders(0), 0);
    let s = v.stats();
    assert_eq!(
        (s.accepted, s.partial_fills, s.fills, s.maker_lots),
        (1, 1, 1, 4)
    );
}

#[test]
fn prob_queue_advances_on_level_decreases_risk_averse_does_not() {
    let script = [
        Step::Send(place(1, Side::Bid, BID, 3, 0)),
        // 10 join behind us (ahead 10, behind 10), then 8 cancel with no trade.
        Step::Market(level(2_000, Side::Bid, BID, 20)),
        Step::Market(level(3_000, Side::Bid, BID, 12)),
    ];
    let mut prob = venue(ProbQueue::new(Fx::ONE));
    let mut averse = venue(RiskAverseQueue);
    run(&mut prob, &script);
    run(&mut averse, &script);
    // Linear, ahead = behind: half of the 8 came from ahead. Risk averse: all from behind.
    assert_eq!(prob.queue_ahead(0, 1), Some(6));
    assert_eq!(averse.queue_ahead(0, 1), Some(10));
    let fill = [Step::Market(trade(4_000, BID, 8, Side::Ask))];
    let p = execs(&run(&mut prob, &fill));
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].kind, p[0].last_qty, p[0].cum_qty),
        (ExecKind::PartialFill, 2, 2)
    );
    assert!(run(&mut averse, &fill).is_empty());
    assert_eq!(averse.queue_ahead(0, 1), Some(2));
    // The depth update that follows the trade is explained by it: nobody moves further.
    let follow = [Step::Market(level(5_000, Side::Bid, BID, 4))];
    run(&mut prob, &follow);
    run(&mut averse, &follow);
    assert_eq!(prob.queue_ahead(0, 1), Some(0));
    assert_eq!(averse.queue_ahead(0, 1), Some(2));
}

#[test]
fn post_only_that_would_take_is_rejected() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, ASK, 1, 0)),
            Step::Send(place(2, Side::Ask, BID, 1, 0)),
            Step::Send(place(3, Side::Bid, BID, 1, 0)),
            Step::Send(place(4, Side::Ask, ASK + 5, 1, 0)),
        ],
    );
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [
            ExecKind::Rejected,
            ExecKind::Rejected,
            ExecKind::Ack,
            ExecKind::Ack
        ]
    );
    assert!(r[0].post_only_reject && r[1].post_only_reject);
    assert!(!r[2].post_only_reject);
    // Rejected before the venue made an order: a code, no venue order id. Accepted orders are
    // numbered 1, 2, ... in arrival order.
    assert_eq!(
        r.iter()
            .map(|x| (x.reject_code, x.venue_order_id))
            .collect::<Vec<_>>(),
        [(-5022, 0), (-5022, 0), (0, 1), (0, 2)]
    );
    let s = v.stats();
    assert_eq!((s.post_only_rejects, s.accepted, s.rejects), (2, 2, 0));
    // The book moved before the order arrived: judged on the venue's book at arrival.
    let out = run(
        &mut v,
        &[
            Step::Send(place(5, Side::Bid, BID + 1, 1, 10_000)),
            Step::Market(level(10_500, Side::Ask, BID + 1, 3)),
        ],
    );
    assert!(execs(&out)[0].post_only_reject);
}

#[test]
fn fill_while_the_cancel_is_in_flight_then_cancel_rejected() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 4, 0)),
            Step::Send(cancel(1, Side::Bid, 5_000)),
            // Before the cancel reaches the venue at 6,000: 10 ahead + our 4 trade.
            Step::Market(trade(5_500, BID, 20, Side::Ask)),
        ],
    );
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [ExecKind::Ack, ExecKind::Fill, ExecKind::CancelRejected]
    );
    assert_eq!(r[1].cum_qty, 4);
    assert_eq!(r[2].cum_qty, 4);
    // Every report of the order carries its venue id; the late cancel gets "unknown order".
    assert_eq!(
        r.iter()
            .map(|x| (x.venue_order_id, x.reject_code))
            .collect::<Vec<_>>(),
        [(1, 0), (1, 0), (1, -2011)]
    );
    assert_eq!(out[1].local_time_ns, 5_500 + RESP);
    assert_eq!(out[2].local_time_ns, 5_000 + ENTRY + RESP);
    let s = v.stats();
    assert_eq!((s.cancel_rejects_too_late, s.cancels), (1, 0));
    // An id the venue never saw.
    let out = run(&mut v, &[Step::Send(cancel(99, Side::Bid, 7_000))]);
    assert_eq!(kinds(&out), [ExecKind::CancelRejected]);
    assert_eq!(
        (execs(&out)[0].reject_code, execs(&out)[0].venue_order_id),
        (-2011, 0)
    );
    assert_eq!(v.stats().cancel_rejects_unknown, 1);
}

#[test]
fn partial_fill_while_the_cancel_is_in_flight_then_canceled() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 4, 0)),
            Step::Send(cancel(1, Side::Bid, 5_000)),
            Step::Market(trade(5_500, BID, 12, Side::Ask)),
            // After the cancel: nothing left to fill.
            Step::Market(trade(6_500, BID, 12, Side::Ask)),
        ],
    );
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [ExecKind::Ack, ExecKind::PartialFill, ExecKind::Canceled]
    );
    assert_eq!((r[1].last_qty, r[1].cum_qty), (2, 2));
    assert_eq!(r[2].cum_qty, 2);
    assert!(r
        .iter()
        .all(|x| x.venue_order_id == 1 && x.reject_code == 0));
    assert_eq!(v.stats().cancels, 1);
    assert_eq!(v.open_orders(0), 0);
}

#[test]
fn maker_rebate_and_taker_fee() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 2, 0)),
            Step::Market(trade(2_000, BID, 12, Side::Ask)),
        ],
    );
    // 600,000 × 2 = 1,200,000 tick·lots at -0.5 bps: a rebate of 60.
    assert_eq!(execs(&out)[1].fee, -60);
    let out = run(&mut v, &[Step::Send(ioc(2, Side::Bid, ASK, 1, 3_000))]);
    // 600,001 × 4.5 / 10,000 = 270.00045 → 271 (rounded up).
    assert_eq!(execs(&out)[1].fee, 271);
    assert!(execs(&out)[1].taker);
    assert_eq!(v.stats().fees, 271 - 60);
}

#[test]
fn ioc_takes_levels_up_to_its_limit_and_the_rest_expires() {
    let mut v = venue(RiskAverseQueue);
    let out = run(&mut v, &[Step::Send(ioc(1, Side::Bid, ASK + 1, 10, 0))]);
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [ExecKind::Ack, ExecKind::PartialFill, ExecKind::Fill]
    );
    assert_eq!((r[1].last_price, r[1].last_qty, r[1].cum_qty), (ASK, 8, 8));
    assert_eq!(
        (r[2].last_price, r[2].last_qty, r[2].cum_qty),
        (ASK + 1, 2, 10)
    );
    assert!(r[1].taker && r[2].taker);
    assert!(r.iter().all(|x| x.venue_order_id == 1));
    assert_eq!(r[1].fee, BpsFees::fee_at(Fx::from_num(4.5), ASK, 8));
    // A sell IOC limited to the best bid: takes the 10 there, the rest expires.
    let out = run(&mut v, &[Step::Send(ioc(2, Side::Ask, BID, 30, 10_000))]);
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [ExecKind::Ack, ExecKind::PartialFill, ExecKind::Expired]
    );
    assert_eq!((r[1].last_price, r[1].last_qty), (BID, 10));
    assert_eq!(r[2].cum_qty, 10);
    assert!(
        r.iter().all(|x| x.venue_order_id == 2),
        "one id per order, counting on"
    );
    // Nothing crosses: expires unfilled.
    let out = run(&mut v, &[Step::Send(ioc(3, Side::Bid, BID, 1, 20_000))]);
    assert_eq!(kinds(&out), [ExecKind::Ack, ExecKind::Expired]);
    let s = v.stats();
    assert_eq!((s.taker_lots, s.expired, s.fills), (20, 2, 1));
}

#[test]
fn trade_through_and_crossing_book_fill_completely_at_our_price() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 4, 0)),
            Step::Send(place(2, Side::Ask, ASK, 3, 0)),
            // A one-lot sell below our bid: everything at our price went first.
            Step::Market(trade(2_000, BID - 1, 1, Side::Ask)),
            // Someone bids at our ask's price.
            Step::Market(level(3_000, Side::Bid, ASK, 1)),
        ],
    );
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [ExecKind::Ack, ExecKind::Ack, ExecKind::Fill, ExecKind::Fill]
    );
    assert_eq!(
        (r[2].client_order_id, r[2].last_price, r[2].last_qty),
        (1, BID, 4)
    );
    assert_eq!(
        (r[3].client_order_id, r[3].last_price, r[3].last_qty),
        (2, ASK, 3)
    );
    assert!(!r[2].taker && !r[3].taker);
}

#[test]
fn resync_caps_the_queue_and_pauses_book_fills() {
    let mut v = venue(RiskAverseQueue);
    run(&mut v, &[Step::Send(place(1, Side::Bid, BID, 2, 0))]);
    let out = run(
        &mut v,
        &[
            Step::Market(Event::book_reset(0, 2_000, 2_000, 9)),
            // Mid-snapshot the book is incomplete: a crossing ask is not trusted yet ...
            Step::Market(level(2_000, Side::Ask, BID, 1)),
            Step::Market(level(2_000, Side::Ask, BID, 0)),
            Step::Market(level(2_000, Side::Ask, ASK, 8)),
            Step::Market(level(2_000, Side::Bid, BID, 3)),
            Step::Market(Event::book_valid(0, 2_000, 2_000, 9)),
        ],
    );
    assert!(out.is_empty());
    // ... and once valid, the queue ahead is capped at the level's 3 lots.
    assert_eq!(v.queue_ahead(0, 1), Some(3));
}

#[test]
fn our_orders_at_one_price_share_a_trade_in_time_priority() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 4, 0)),
            Step::Send(place(2, Side::Bid, BID, 4, 10)),
            // 10 ahead of both (ours are not in the recorded level): 13 lots reach 3 of ours.
            Step::Market(trade(2_000, BID, 13, Side::Ask)),
            Step::Market(trade(3_000, BID, 3, Side::Ask)),
        ],
    );
    let r: Vec<_> = execs(&out)
        .into_iter()
        .filter(|r| r.last_qty > 0)
        .map(|r| (r.client_order_id, r.last_qty, r.cum_qty))
        .collect();
    // First trade: 3 to order 1. Second: 1 more to order 1 (done), 2 to order 2.
    assert_eq!(r, [(1, 3, 3), (1, 1, 4), (2, 2, 2)]);
}

/// Entry latency of the n-th intent: long, short, long, ... (would reorder without the FIFO).
#[derive(Debug)]
struct Jitter(u64);

impl LatencyModel for Jitter {
    fn entry_ns(&mut self, _intent: &Intent, _sent_ns: i64) -> i64 {
        self.0 += 1;
        if self.0 % 2 == 1 {
            5_000
        } else {
            100
        }
    }

    fn response_ns(&mut self, _report: &ExecReport, _venue_ns: i64) -> i64 {
        self.0 += 1;
        (self.0 % 3) as i64 * 700
    }
}

#[test]
fn reports_arrive_in_time_order_after_both_latencies() {
    let mut v = venue(RiskAverseQueue);
    v.on_intent(&place(1, Side::Bid, BID, 1, 0), 0);
    assert_eq!(v.next_due(), Some(ENTRY));
    let mut out = Vec::new();
    v.advance_to(ENTRY - 1, &mut |r| out.push(*r));
    assert!(out.is_empty());
    v.advance_to(ENTRY, &mut |r| out.push(*r));
    assert!(out.is_empty(), "the ack is still on its way back");
    assert_eq!(v.next_due(), Some(ENTRY + RESP));
    v.advance_to(ENTRY + RESP, &mut |r| out.push(*r));
    assert_eq!(kinds(&out), [ExecKind::Ack]);
    assert_eq!(
        (out[0].venue_time_ns, out[0].local_time_ns),
        (ENTRY, ENTRY + RESP)
    );
    assert_eq!(v.next_due(), None);

    // Jittery latencies: nothing overtakes, delivery times never decrease.
    let mut v = SimVenue::new(1, 4096, RiskAverseQueue, Jitter(0), fees());
    v.on_market(&level(0, Side::Ask, ASK, 8));
    v.on_market(&Event::book_valid(0, 0, 0, 1));
    let script: Vec<Step> = (0..20)
        .map(|k| Step::Send(place(k + 1, Side::Bid, BID - k as i64, 1, k as i64 * 10)))
        .collect();
    let out = run(&mut v, &script);
    let ids: Vec<u64> = execs(&out).iter().map(|r| r.client_order_id).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    assert!(out
        .windows(2)
        .all(|w| w[0].local_time_ns <= w[1].local_time_ns));
    assert!(out.iter().all(|e| e.local_time_ns >= e.venue_time_ns));
    assert_eq!(v.stats().late_intents, 0);
}

#[test]
fn intents_sent_behind_the_venue_clock_are_counted() {
    let mut v = venue(RiskAverseQueue);
    v.advance_to(10_000, &mut |_| {});
    v.on_intent(&place(1, Side::Bid, BID, 1, 0), 0);
    assert_eq!(v.stats().late_intents, 1);
    assert_eq!(v.next_due(), Some(10_000));
}

/// A pseudo-random market and order flow around the touch.
fn random_script(seed: u64, n: usize) -> Vec<Step> {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut steps = Vec::with_capacity(n);
    let mut cid = 0;
    for k in 0..n {
        let t = 1_000 + k as i64 * 137;
        let r = next();
        let side = if r & 1 == 0 { Side::Bid } else { Side::Ask };
        let off = ((r >> 8) % 4) as i64;
        let price = match side {
            Side::Bid => BID - off,
            Side::Ask => ASK + off,
        };
        let qty = ((r >> 16) % 12) as i64;
        steps.push(match (r >> 32) % 11 {
            0..=3 => Step::Market(level(t, side, price, qty)),
            4..=5 => {
                let aggressor = if r & 2 == 0 { Side::Bid } else { Side::Ask };
                let p = match aggressor {
                    Side::Ask => BID - off / 2,
                    Side::Bid => ASK + off / 2,
                };
                Step::Market(trade(t, p, qty + 1, aggressor))
            }
            6..=7 => {
                cid += 1;
                Step::Send(place(cid, side, price, qty + 1, t))
            }
            8 => Step::Send(cancel(cid.saturating_sub((r >> 40) % 4), side, t)),
            9 => {
                // Around the touch, sometimes through our orders; update ids a step behind, level
                // with or ahead of the last depth message (ids are local times there).
                let bid = BID - 2 + ((r >> 44) % 4) as i64;
                let ask = bid + 1 + ((r >> 48) % 3) as i64;
                let id = (t - 137 + ((r >> 52) % 3) as i64 * 137) as u64;
                Step::Market(bbo(t, id, (bid, qty + 1), (ask, off + 1)))
            }
            _ => {
                cid += 1;
                // Across the touch, so that it takes.
                let p = match side {
                    Side::Bid => ASK + off,
                    Side::Ask => BID - off,
                };
                Step::Send(ioc(cid, side, p, qty + 1, t))
            }
        });
    }
    steps
}

#[test]
fn same_inputs_give_the_same_reports_bit_for_bit() {
    let script = random_script(0x5EED_1234_ABCD_0001, 5_000);
    let once = |q: ProbQueue| {
        let mut v = venue(q);
        let out = run(&mut v, &script);
        (out, v.stats())
    };
    let q = ProbQueue::new(Fx::from_num(2.5));
    let (a, sa) = once(q);
    let (b, sb) = once(q);
    assert!(!a.is_empty());
    assert!(sa.maker_lots > 0 && sa.taker_lots > 0 && sa.cancels > 0);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    // Cumulative quantities never go backwards per order and never pass the order size.
    let mut v = venue(RiskAverseQueue);
    let out = run(&mut v, &script);
    assert_eq!(v.stats().queue_growths, 0);
    let mut cum = std::collections::BTreeMap::new();
    for r in execs(&out) {
        let c = cum.entry(r.client_order_id).or_insert(0);
        assert!(r.cum_qty >= *c, "{r:?}");
        *c = r.cum_qty;
    }
}

// Best bid/offer: the venue's book is the newest. The depth book built by `venue()` is at update
// id 1 (bids 600,000 × 10, 599,999 × 5; asks 600,001 × 8, 600,002 × 20).

#[test]
fn post_only_is_judged_on_a_bbo_newer_than_the_depth_book() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            // The touch moved out on both sides; the depth diff saying so has not arrived.
            Step::Market(bbo(100, 10, (BID - 1, 5), (ASK + 1, 20))),
            // Would take on the stale depth book, not on the newer top: accepted.
            Step::Send(place(1, Side::Bid, ASK, 2, 200)),
            Step::Send(place(2, Side::Ask, BID, 2, 200)),
            // Through the newer top: rejected.
            Step::Send(place(3, Side::Bid, ASK + 1, 2, 200)),
            Step::Send(place(4, Side::Ask, BID - 1, 2, 200)),
        ],
    );
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [
            ExecKind::Ack,
            ExecKind::Ack,
            ExecKind::Rejected,
            ExecKind::Rejected
        ]
    );
    assert!(r[2].post_only_reject && r[3].post_only_reject);
    assert_eq!(v.stats().post_only_rejects, 2);
    // Inside the newer spread the stale book's levels are gone: nothing ahead.
    assert_eq!(v.queue_ahead(0, 1), Some(0));
    assert_eq!(v.queue_ahead(0, 2), Some(0));
    // The depth book catches up to the same id: it is the touch again (a tie goes to the book),
    // and its ask is still at 600,001 here.
    let out = run(
        &mut v,
        &[
            Step::Market(level_id(300, 10, Side::Bid, BID - 3, 1)),
            Step::Send(place(5, Side::Bid, ASK, 2, 400)),
        ],
    );
    assert_eq!(kinds(&out), [ExecKind::Rejected]);
}

#[test]
fn joining_at_a_newer_bbo_queues_behind_its_quantity() {
    let mut v = venue(RiskAverseQueue);
    run(
        &mut v,
        &[
            // 7 of the 10 lots at the best bid left; the depth book still shows 10.
            Step::Market(bbo(100, 10, (BID, 3), (ASK, 8))),
            Step::Send(place(1, Side::Bid, BID, 1, 200)),
            // An ask level behind the newer touch: the book's quantity.
            Step::Send(place(2, Side::Ask, ASK + 1, 1, 200)),
        ],
    );
    assert_eq!(v.queue_ahead(0, 1), Some(3));
    assert_eq!(v.queue_ahead(0, 2), Some(20));
    // Someone improved the bid: a level the depth book does not have yet.
    let mut v = venue(RiskAverseQueue);
    run(
        &mut v,
        &[
            Step::Market(level(50, Side::Ask, ASK + 1, 0)),
            Step::Market(level(60, Side::Ask, ASK, 0)),
            Step::Market(level(70, Side::Ask, ASK + 2, 9)),
            Step::Market(bbo(100, 80, (ASK, 4), (ASK + 2, 9))),
            Step::Send(place(1, Side::Bid, ASK, 1, 200)),
        ],
    );
    assert_eq!(
        v.queue_ahead(0, 1),
        Some(4),
        "behind the improver, not first"
    );
}

#[test]
fn a_bbo_not_newer_than_the_depth_book_is_ignored() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Send(place(1, Side::Bid, BID, 2, 0)),
            Step::Market(level(2_000, Side::Bid, BID - 3, 1)),
            // Equal to and older than the depth book (id 2,000): ignored, so neither fills the
            // bid at 600,000 nor lets a bid at 600,001 rest.
            Step::Market(bbo(2_100, 2_000, (BID - 1, 5), (BID, 3))),
            Step::Market(bbo(2_110, 1_999, (BID - 1, 5), (BID, 3))),
            Step::Send(place(2, Side::Bid, ASK, 2, 2_200)),
        ],
    );
    assert_eq!(kinds(&out), [ExecKind::Ack, ExecKind::Rejected]);
    assert_eq!(v.open_orders(0), 1);
    // Newer than the book but older than the best bid/offer already stored (out of order): the
    // stored one stays the venue's top.
    let out = run(
        &mut v,
        &[
            Step::Market(bbo(4_000, 2_020, (BID, 5), (ASK + 1, 20))),
            Step::Market(bbo(4_010, 2_010, (BID, 5), (ASK, 8))),
            Step::Send(place(3, Side::Bid, ASK, 2, 4_100)),
        ],
    );
    assert_eq!(kinds(&out), [ExecKind::Ack]);
}

#[test]
fn a_newer_bbo_that_crosses_a_resting_order_fills_it_completely() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            // 10 lots ahead of the bid.
            Step::Send(place(1, Side::Bid, BID, 4, 0)),
            Step::Send(place(2, Side::Ask, ASK + 1, 3, 0)),
            // The ask came down to our bid with 2 lots left over: ours traded first, whatever
            // the queue ahead and the 2 lots showing.
            Step::Market(bbo(2_000, 10, (BID - 1, 5), (BID, 2))),
            // The depth diff with the same change: nothing more to fill.
            Step::Market(level_id(2_500, 10, Side::Ask, BID, 2)),
            // Bid at our ask's price.
            Step::Market(bbo(3_000, 11, (ASK + 1, 1), (ASK + 2, 20))),
        ],
    );
    let r = execs(&out);
    assert_eq!(
        kinds(&out),
        [ExecKind::Ack, ExecKind::Ack, ExecKind::Fill, ExecKind::Fill]
    );
    assert_eq!(
        (r[2].client_order_id, r[2].last_price, r[2].last_qty),
        (1, BID, 4)
    );
    assert_eq!(out[2].venue_time_ns, 2_000);
    assert_eq!(
        (r[3].client_order_id, r[3].last_price, r[3].last_qty),
        (2, ASK + 1, 3)
    );
    assert_eq!(out[3].venue_time_ns, 3_000);
    assert!(!r[2].taker && !r[3].taker);
    assert_eq!(r[2].fee, BpsFees::fee_at(Fx::from_num(-0.5), BID, 4));
    assert_eq!(v.open_orders(0), 0);
    assert_eq!((v.stats().fills, v.stats().maker_lots), (2, 7));
}

#[test]
fn a_depth_diff_older_than_the_bbo_does_not_fill_by_crossing() {
    let mut v = venue(RiskAverseQueue);
    let out = run(
        &mut v,
        &[
            Step::Market(bbo(100, 10, (BID, 10), (ASK + 1, 20))),
            // Rests at 600,001, where the stale depth book still has asks.
            Step::Send(place(1, Side::Bid, ASK, 2, 200)),
            // A diff from before the best bid/offer (id 5 < 10) still shows them: no fill.
            Step::Market(level_id(2_000, 5, Side::Ask, ASK, 5)),
            // The diff with the newer top's id removes them.
            Step::Market(level_id(2_100, 10, Side::Ask, ASK, 0)),
        ],
    );
    assert_eq!(kinds(&out), [ExecKind::Ack]);
    // A seller at our price after that: a fill.
    let out = run(
        &mut v,
        &[Step::Market(level_id(3_000, 11, Side::Ask, ASK, 1))],
    );
    assert_eq!(kinds(&out), [ExecKind::Fill]);
}

#[test]
fn a_malformed_bbo_is_ignored() {
    let mut v = venue(RiskAverseQueue);
    run(&mut v, &[Step::Send(place(1, Side::Bid, BID - 1, 1, 0))]);
    // Each would fill the bid at 599,999 if it were taken as the venue's top.
    let bad = [
        ((0, 5), (BID - 1, 5)),
        ((BID - 1, 5), (BID - 1, 5)),
        ((BID, 5), (BID - 1, 5)),
        ((BID - 2, 0), (BID - 1, 5)),
        ((BID - 2, 5), (BID - 1, 0)),
        ((BID - 2, 5), (BID - 1, -3)),
    ];
    let script: Vec<Step> = bad
        .iter()
        .enumerate()
        .map(|(k, &(b, a))| Step::Market(bbo(1_500 + k as i64, 10 + k as u64, b, a)))
        .chain([Step::Send(place(2, Side::Bid, ASK, 1, 2_000))])
        .collect();
    let out = run(&mut v, &script);
    assert_eq!(
        kinds(&out),
        [ExecKind::Rejected],
        "no fill, judged on the book"
    );
    assert_eq!(v.open_orders(0), 1);
}

#[test]
fn book_reset_and_invalid_clear_the_bbo_and_it_is_ignored_until_valid() {
    let mut v = venue(RiskAverseQueue);
    // Each block would let the bid at 600,001 rest if the best bid/offer (ask 600,002, newer
    // than the re-synced book) were still the venue's top.
    let newer_top = |t: i64, id: u64| bbo(t, id, (BID, 10), (ASK + 1, 20));
    let out = run(
        &mut v,
        &[
            // Stored, then dropped by an invalid book.
            Step::Market(newer_top(100, 50)),
            Step::Market(invalid(200)),
            Step::Market(Event::book_valid(0, 300, 300, 2)),
            Step::Send(place(1, Side::Bid, ASK, 1, 400)),
            // Arrives while the book is invalid: not stored.
            Step::Market(invalid(2_000)),
            Step::Market(newer_top(2_100, 60)),
            Step::Market(Event::book_valid(0, 2_200, 2_200, 3)),
            Step::Send(place(2, Side::Bid, ASK, 1, 2_300)),
            // Stored, then dropped by a reset; the snapshot is at id 4.
            Step::Market(newer_top(4_000, 70)),
            Step::Market(Event::book_reset(0, 4_100, 4_100, 4)),
            Step::Market(level_id(4_100, 4, Side::Bid, BID, 10)),
            Step::Market(level_id(4_100, 4, Side::Ask, ASK, 8)),
            Step::Market(Event::book_valid(0, 4_100, 4_100, 4)),
            Step::Send(place(3, Side::Bid, ASK, 1, 4_200)),
        ],
    );
    assert_eq!(
        kinds(&out),
        [ExecKind::Rejected, ExecKind::Rejected, ExecKind::Rejected]
    );
    // A newer one after the resync is the top again.
    let out = run(
        &mut v,
        &[
            Step::Market(newer_top(5_000, 80)),
            Step::Send(place(4, Side::Bid, ASK, 1, 5_100)),
        ],
    );
    assert_eq!(kinds(&out), [ExecKind::Ack]);
}
