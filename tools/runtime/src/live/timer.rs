//! The timer source: publishes a `Timer` event every `interval` of replay time (100 ms by
//! default), so the engine can act on time alone (stale book, budgets).
//!
//! At `--speed` > 0 it sleeps until each tick is due on the wall clock. Flat out it follows the
//! feed's progress and publishes every tick the feed has passed. A tick that finds the input
//! ring full is skipped and counted (`timer_skipped`): the next one carries a later time, and a
//! burst of stale ticks helps nobody. Ticks are tagged [`SRC_TIMER`].

use super::counters::Counters;
use super::rings::{InputProducer, SRC_TIMER};
use super::shared::Shared;
use engine::Event;
use quanta::Clock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Ticks published flat out between two checks of the stop flag.
const TICKS_PER_BURST: u32 = 1024;

/// Runs until the feed is done or a stop is requested. Drops its producer on return.
pub fn run(mut producer: InputProducer, interval_ns: i64, clock: Clock, shared: Arc<Shared>) {
    let replay = &shared.replay;
    let c = &shared.counters;
    let mut next = i64::MIN;
    let mut publish = |t: i64| {
        let now = clock.raw();
        let ok = producer.try_publish(|s| {
            let mut ev = Event::timer(t);
            ev.source = SRC_TIMER;
            s.event = ev;
            s.t_decode = 0;
            s.t_publish = now;
        });
        Counters::add(if ok { &c.timer_ticks } else { &c.timer_skipped }, 1);
    };
    loop {
        if shared.stopping() || shared.feed_done.load(Ordering::Acquire) {
            return;
        }
        if next == i64::MIN {
            match replay.start_ns() {
                Some(t0) => next = t0 + interval_ns,
                None => {
                    std::thread::sleep(Duration::from_micros(500));
                    continue;
                }
            }
        }
        if replay.flat_out() {
            // The feed may have jumped far ahead: ticks go out in bounded bursts, with the stop
            // checked between them (a day's jump is 864,000 ticks).
            let reached = replay.progress();
            let mut burst = 0;
            while next <= reached && burst < TICKS_PER_BURST {
                publish(next);
                next += interval_ns;
                burst += 1;
            }
            if burst == TICKS_PER_BURST {
                continue;
            }
            std::thread::sleep(Duration::from_micros(200));
        } else {
            match replay.now() {
                Some(now) if now >= next => {
                    publish(next);
                    next += interval_ns;
                }
                _ => std::thread::sleep(replay.until(next).min(Duration::from_millis(20))),
            }
        }
    }
}
