//! The live feed thread allocates nothing in steady state: a counting global allocator (per
//! thread) watches the feed thread's whole read path — the stamped `recvmsg`, the in-place TLS
//! 1.3 record decryption, the frame reader, the copy out, the feed handler's decode and book
//! sync — over thousands of messages from `ringmaker venue` over TLS, after a warm-up.
//!
//! A test binary of its own because a global allocator is per binary.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::alloc::{Counter, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The feed thread, warmed up, reading 3,000 messages: the allocator calls it made.
fn count_3000_messages(name: &str) -> test_support::alloc::Counts {
    let (h, _dir) = common::start_venue(name, |sc| sc.speed = 5.0, Arc::new(venue::NoExchange));
    let cfg = test_support::default_config();
    let stop = Arc::new(AtomicBool::new(false));
    let src = common::net_source(&h, &stop);
    let mut feed = feeds::MarketFeed::new(src, feeds::FeedHandler::from_config(&cfg));
    let mut out = Vec::with_capacity(1 << 16);
    // Warm-up: synced, and a few thousand messages for every buffer to reach its size.
    let deadline = Instant::now() + Duration::from_secs(30);
    while feed.source().stats().messages < 3_000 || !feed.handler().all_synced() {
        assert!(
            Instant::now() < deadline,
            "no warm-up: {:?}",
            feed.source().stats()
        );
        feed.next(&mut out).unwrap();
        out.clear();
    }
    let before = feed.source().stats();
    let counter = Counter::start();
    for _ in 0..3_000 {
        feed.next(&mut out);
        out.clear();
    }
    let counts = counter.stop();
    let after = feed.source().stats();
    assert_eq!(
        after.disconnects, before.disconnects,
        "a reconnect in the window"
    );
    assert!(feed.handler().all_synced());
    assert_eq!(after.messages - before.messages, 3_000);
    h.shutdown();
    counts
}

/// The feed thread allocates nothing once warmed up: no allocation, no reallocation, nothing
/// freed. The TLS 1.3 stream from the venue leaves rustls's record layer once open and its
/// records are decrypted in place in the connection's receive buffer (`feeds::net::conn`,
/// "Buffers"); on rustls's own record layer (rustls 0.23.46's unbuffered client copies every
/// application-data record into a `Vec`) this counted about one allocation per TLS record.
#[test]
fn the_feed_thread_allocates_nothing_once_warmed_up() {
    let c = count_3000_messages("feed-alloc-growth");
    assert!(c.is_zero(), "{c:?} over 3,000 messages");
}
