//! The live feed thread allocates nothing in steady state: a counting global allocator (per
//! thread) watches the feed thread's whole read path — the stamped `recvmsg`, rustls, the frame
//! reader, the copy out, the feed handler's decode and book sync — over thousands of messages
//! from `ringmaker venue` over TLS, after a warm-up.
//!
//! A test binary of its own because a global allocator is per binary.

mod common;

use feeds::net::routes::Endpoints;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::alloc::{Counter, CountingAlloc};
use test_support::TempDir;
use venue::server::{ServerConfig, Venue};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn the_feed_thread_allocates_nothing_per_message_once_warmed_up() {
    let dir = TempDir::new("feed-alloc");
    let mut sc = ServerConfig::new(vec![test_support::usdm()], test_support::default_config());
    sc.cert_dir = dir.join("cert");
    sc.speed = 5.0;
    let h = Venue::start(sc, Arc::new(venue::NoExchange)).unwrap();
    let cfg = test_support::default_config();
    let tls = feeds::net::tls::client_config(Some(h.cert_path())).unwrap();
    let mut opts = feeds::net::NetOptions::new(tls);
    opts.endpoints =
        vec![Endpoints::from_rest_url(&h.rest_url(), engine::VenueFlavour::BinanceUsdm).unwrap()];
    opts.depth_stream = "depth@0ms".into();
    let insts = vec![feeds::net::NetInstrument {
        id: 0,
        symbol: cfg.instruments[0].instrument.symbol,
        venue: cfg.instruments[0].venue,
    }];
    let stop = Arc::new(AtomicBool::new(false));
    let src = feeds::net::NetSource::new(&insts, opts, stop).unwrap();
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
    // Where: the source alone.
    let mut src_only = Counter::start();
    let _ = &mut src_only;
    for _ in 0..3_000 {
        use feeds::MarketSource as _;
        let _ = feed.source_mut().next_input();
    }
    let c2 = src_only.stop();
    eprintln!("whole {counts:?} source-only {c2:?}");
    let after = feed.source().stats();
    assert_eq!(
        after.disconnects, before.disconnects,
        "a reconnect in the window"
    );
    assert!(feed.handler().all_synced());
    assert_eq!(after.messages - before.messages, 3_000);
    assert!(counts.is_zero(), "{counts:?} over 3,000 messages");
    h.shutdown();
}
