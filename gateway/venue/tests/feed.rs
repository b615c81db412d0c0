//! The live feed's parts against `ringmaker venue` over real TLS: REST snapshots fetched off the
//! hot path, trusting only the venue's certificate.

mod common;

use common::{net_source, start_venue};
use feeds::net::routes::Endpoints;
use feeds::net::snapshot::{FetchOptions, SnapshotError, SnapshotFetcher};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn snapshots_are_fetched_from_the_venue_and_errors_come_back_typed() {
    let (h, _dir) = start_venue("feed-snapshots", |_| {}, Arc::new(venue::NoExchange));
    let ends = Endpoints::from_rest_url(&h.rest_url(), engine::VenueFlavour::BinanceUsdm).unwrap();
    let tls = feeds::net::tls::client_config(Some(h.cert_path())).unwrap();
    let f = SnapshotFetcher::spawn(tls, FetchOptions::default()).unwrap();
    assert!(f.request(0, ends.depth_url("btcusdt", 1000)));
    let s = f.wait(Duration::from_secs(20)).expect("a snapshot");
    assert_eq!((s.instrument, s.attempts), (0, 1));
    let v: Value = serde_json::from_slice(s.body.as_ref().unwrap()).unwrap();
    assert!(v["lastUpdateId"].as_u64().unwrap() > 0, "{v}");
    assert!(!v["bids"].as_array().unwrap().is_empty());
    // A client error is not retried, and says what the venue said.
    assert!(f.request(1, ends.depth_url("xrpusdt", 1000)));
    let s = f.wait(Duration::from_secs(20)).expect("an answer");
    assert_eq!(s.attempts, 1);
    match s.body {
        Err(SnapshotError::Status { status: 400, body }) => {
            assert!(body.contains("-1121"), "{body}")
        }
        other => panic!("{other:?}"),
    }
    // A certificate the client does not trust: a transport error, not a panic.
    let other = feeds::net::tls::client_config(None).unwrap();
    let f = SnapshotFetcher::spawn(
        other,
        FetchOptions {
            attempts: 2,
            first_backoff: Duration::from_millis(5),
            ..FetchOptions::default()
        },
    )
    .unwrap();
    assert!(f.request(0, ends.depth_url("btcusdt", 5)));
    let s = f.wait(Duration::from_secs(20)).expect("an answer");
    assert!(
        matches!(s.body, Err(SnapshotError::Transport(_))),
        "{:?}",
        s.body
    );
    h.shutdown();
}

#[test]
fn the_live_source_syncs_a_book_from_the_venue_over_tls_with_kernel_stamps() {
    let (h, _dir) = start_venue(
        "feed-live",
        |sc| sc.speed = 5.0,
        Arc::new(venue::NoExchange),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let src = net_source(&h, &stop);
    assert_eq!(
        src.urls(),
        [
            format!(
                "wss://127.0.0.1:{}/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker",
                h.addr().port()
            ),
            format!(
                "wss://127.0.0.1:{}/market/stream?streams=btcusdt@trade/btcusdt@markPrice@1s",
                h.addr().port()
            ),
        ]
    );
    let mut feed = feeds::MarketFeed::new(
        src,
        feeds::FeedHandler::from_config(&test_support::default_config()),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut valid, mut levels, mut trades, mut tickers) = (0, 0, 0, 0);
    let mut marks = Vec::new();
    let stopper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(8));
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let mut out = Vec::new();
    while let Some(step) = feed.next(&mut out) {
        assert!(std::time::Instant::now() < deadline);
        assert!(!matches!(step, feeds::Step::SourceError(_)), "{step:?}");
        for e in out.drain(..) {
            match e.kind() {
                engine::EventKind::BookValid => valid += 1,
                engine::EventKind::BookLevel => levels += 1,
                engine::EventKind::Trade => trades += 1,
                engine::EventKind::Bbo => tickers += 1,
                engine::EventKind::MarkPrice => marks.push(e),
                engine::EventKind::BookInvalid => panic!("the book went invalid: {e:?}"),
                _ => {}
            }
        }
    }
    stopper.join().unwrap();
    let stats = feed.source().stats();
    eprintln!("{stats:?} valid={valid} levels={levels} trades={trades} tickers={tickers}");
    assert_eq!(valid, 1, "synced once, never lost");
    assert!(levels > 1000 && trades > 10 && tickers > 100);
    // A mark price a second of venue time (5x: about 40 in 8 s), each the venue's mid to the
    // nearest tick, its funding rate (0.0001) and the next 8-hour boundary, in time order.
    assert!(marks.len() >= 10, "{} mark prices", marks.len());
    let eight_h = venue::market::FUNDING_INTERVAL_MS;
    for w in marks.windows(2) {
        assert!(w[0].venue_time_ns < w[1].venue_time_ns, "{w:?}");
        assert!(w[0].local_time_ns <= w[1].local_time_ns, "{w:?}");
    }
    for e in &marks {
        let m = e.as_mark_price().unwrap();
        assert_eq!(e.instrument(), 0);
        assert_eq!(m.funding_rate_e8, 10_000, "{m:?}");
        assert_eq!(m.mark_price, m.index_price, "{m:?}");
        // BTCUSDT was about 61,800 (0.10 ticks) in the recording.
        assert!((590_000..650_000).contains(&m.mark_price), "{m:?}");
        assert_eq!(m.next_funding_ms % eight_h, 0, "{m:?}");
        let venue_ms = e.venue_time_ns / 1_000_000;
        assert!(m.next_funding_ms > venue_ms && m.next_funding_ms - venue_ms <= eight_h);
    }
    assert_eq!(feed.handler().stats().mark_prices, marks.len() as u64);
    assert_eq!(stats.connects, 2);
    assert_eq!(stats.disconnects, 0);
    assert_eq!(stats.snapshot_fetches, 1);
    assert!(stats.messages > 500);
    assert_eq!(
        stats.stamped_software, stats.messages,
        "every message has a kernel stamp on loopback"
    );
    let (valid_ns, span_ns) = feed.book_time();
    assert!(
        valid_ns as f64 >= 0.9 * span_ns as f64,
        "{valid_ns} of {span_ns}"
    );
    h.shutdown();
}

#[test]
fn after_dropped_connections_and_a_gap_the_live_book_is_valid_again_within_a_second() {
    // Venue time: connections cut every 4 s (2 s of wall time), one depth diff dropped at 5 s.
    let (h, _dir) = start_venue(
        "feed-faults",
        |sc| {
            sc.speed = 2.0;
            sc.faults = venue::faults::parse(
                "drop-connections@every=4s;gap@at=5s,stream=btcusdt@depth@0ms",
                None,
            )
            .unwrap();
        },
        Arc::new(venue::NoExchange),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let src = net_source(&h, &stop);
    let mut feed = feeds::MarketFeed::new(
        src,
        feeds::FeedHandler::from_config(&test_support::default_config()),
    );
    let stopper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(9));
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    // (local ns, valid?) at each change, with the reason of each invalid.
    let mut changes: Vec<(i64, bool, Option<engine::BookStatusReason>)> = Vec::new();
    let mut out = Vec::new();
    while feed.next(&mut out).is_some() {
        for e in out.drain(..) {
            match e.kind() {
                engine::EventKind::BookValid => changes.push((e.local_time_ns, true, None)),
                engine::EventKind::BookInvalid => {
                    changes.push((e.local_time_ns, false, Some(e.status_reason())))
                }
                _ => {}
            }
        }
    }
    stopper.join().unwrap();
    let stats = feed.source().stats();
    eprintln!("{stats:?}\n{changes:?}");
    let reasons: Vec<_> = changes.iter().filter_map(|c| c.2).collect();
    assert!(
        reasons
            .iter()
            .filter(|r| **r == engine::BookStatusReason::Disconnected)
            .count()
            >= 3,
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&engine::BookStatusReason::SequenceGap),
        "{reasons:?}"
    );
    assert!(stats.disconnects >= 6 && stats.connects >= 8, "{stats:?}");
    // Every loss is followed by a valid book within a second of receive time, and the run
    // ends valid.
    for w in changes.windows(2) {
        if !w[0].1 {
            assert!(w[1].1, "two invalids in a row: {changes:?}");
            let took = w[1].0 - w[0].0;
            assert!(
                took < 1_000_000_000,
                "valid again only after {took} ns: {changes:?}"
            );
        }
    }
    assert!(changes.last().is_some_and(|c| c.1), "{changes:?}");
    h.shutdown();
}
