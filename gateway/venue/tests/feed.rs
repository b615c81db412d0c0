//! The live feed's parts against `ringmaker venue` over real TLS: REST snapshots fetched off the
//! hot path, trusting only the venue's certificate.

mod common;

use feeds::net::routes::Endpoints;
use feeds::net::snapshot::{FetchOptions, SnapshotError, SnapshotFetcher};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use test_support::TempDir;
use venue::server::{ServerConfig, Venue};

#[test]
fn snapshots_are_fetched_from_the_venue_and_errors_come_back_typed() {
    let dir = TempDir::new("feed-snapshots");
    let mut sc = ServerConfig::new(vec![test_support::usdm()], test_support::default_config());
    sc.cert_dir = dir.join("cert");
    let h = Venue::start(sc, Arc::new(venue::NoExchange)).unwrap();
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
