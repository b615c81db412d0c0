//! The simulated venue allocates nothing per event: a counting global allocator watches a
//! pseudo-random market and order flow (levels, trades, post-only places, cancels, IOCs) go
//! through `SimVenue` after a warm-up, with the power-law queue model (fixed-point powers with a
//! fractional exponent).
//!
//! Counting is per thread and only between `start` and `stop`, so the harness's own allocations
//! on other threads do not count.

use engine::{Event, Fx, Intent, LevelUpdate, Side, TimeInForce, TopOfBook, TradePrint};
use gateway::sim::{BpsFees, ConstantLatency, ProbQueue, SimVenue};
use test_support::alloc::{Counter, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const BID: i64 = 600_000;
const ASK: i64 = 600_001;

#[derive(Clone, Copy)]
enum Step {
    Market(Event),
    Send(Intent),
}

fn script(n: usize) -> Vec<Step> {
    let mut x: u64 = 0x0DDB_1A5E_5BAD_5EED;
    let mut steps = Vec::with_capacity(n);
    let mut cid = 0u64;
    for k in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = 1_000 + k as i64 * 211;
        let side = if x & 1 == 0 { Side::Bid } else { Side::Ask };
        let off = ((x >> 8) % 5) as i64;
        let qty = ((x >> 16) % 15) as i64;
        let (near, across) = match side {
            Side::Bid => (BID - off, ASK + off),
            Side::Ask => (ASK + off, BID - off),
        };
        steps.push(match (x >> 32) % 15 {
            13..=14 => {
                // A best bid/offer newer than the depth book: moves the venue's top, may cross
                // resting orders (fills) and sets the queue of orders joining at it.
                let bid = BID - off;
                let top = TopOfBook {
                    bid_price: bid,
                    bid_qty: qty + 1,
                    ask_price: bid + 1 + ((x >> 40) % 6) as i64,
                    ask_qty: qty + 2,
                    update_id: k as u64,
                };
                Step::Market(Event::bbo(0, t, t, top))
            }
            0..=4 => {
                let l = LevelUpdate {
                    side,
                    price: near,
                    qty,
                    update_id: k as u64,
                    last_in_msg: true,
                    snapshot: false,
                };
                Step::Market(Event::level(0, t, t, l))
            }
            5..=7 => {
                // Sells down to the deepest bids we place, buys up to the deepest asks.
                let price = match side {
                    Side::Ask => BID - off,
                    Side::Bid => ASK + off,
                };
                let tr = TradePrint {
                    price,
                    qty: qty + 1,
                    trade_id: k as u64,
                    count: 1,
                    aggressor: side,
                };
                Step::Market(Event::trade(0, t, t, tr))
            }
            8..=9 => {
                cid += 1;
                let tif = TimeInForce::PostOnly;
                Step::Send(Intent::place(0, side, tif, cid, near, qty + 1, t, cid))
            }
            10..=11 => {
                let target = cid.saturating_sub(x >> 61);
                Step::Send(Intent::cancel(0, side, target, false, t, 0))
            }
            _ => {
                cid += 1;
                let tif = TimeInForce::Ioc;
                Step::Send(Intent::place(0, side, tif, cid, across, qty + 1, t, cid))
            }
        });
    }
    steps
}

#[test]
fn the_venue_allocates_nothing_per_event_once_built() {
    let steps = script(40_000);
    let fees = BpsFees::new(Fx::from_num(-0.5), Fx::from_num(4.5));
    let queue = ProbQueue::new(Fx::from_num(2.5));
    let mut v = SimVenue::new(1, 1 << 14, queue, ConstantLatency::new(800, 300), fees);
    let mut reports: Vec<Event> = Vec::with_capacity(steps.len() * 4);
    let drive = |v: &mut SimVenue<_, _, _>, s: &Step, reports: &mut Vec<Event>| {
        let t = match s {
            Step::Market(ev) => ev.local_time_ns,
            Step::Send(i) => i.time_ns,
        };
        while let Some(due) = v.next_due().filter(|&d| d <= t) {
            v.advance_to(due, &mut |r| reports.push(*r));
        }
        match s {
            Step::Market(ev) => v.on_market(ev),
            Step::Send(i) => v.on_intent(i, t),
        }
    };
    for ev in [
        Event::book_reset(0, 0, 0, 1),
        Event::level(
            0,
            0,
            0,
            LevelUpdate {
                side: Side::Bid,
                price: BID,
                qty: 10,
                update_id: 1,
                last_in_msg: true,
                snapshot: true,
            },
        ),
        Event::book_valid(0, 0, 0, 1),
    ] {
        v.on_market(&ev);
    }
    let (warm, measured) = steps.split_at(5_000);
    for s in warm {
        drive(&mut v, s, &mut reports);
    }
    let before = v.stats();

    let counter = Counter::start();
    for s in measured {
        drive(&mut v, s, &mut reports);
    }
    while let Some(due) = v.next_due() {
        v.advance_to(due, &mut |r| reports.push(*r));
    }
    let counts = counter.stop();

    let after = v.stats();
    assert!(after.maker_lots > before.maker_lots, "{after:?}");
    assert!(after.taker_lots > before.taker_lots, "{after:?}");
    assert!(after.cancels > before.cancels, "{after:?}");
    assert_eq!(after.queue_growths, 0);
    assert_eq!(
        counts.calls(),
        0,
        "allocator calls on the venue's hot path: {counts:?}"
    );
}
