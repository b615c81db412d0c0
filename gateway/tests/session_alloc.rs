//! The order-entry session allocates nothing in steady state on the gateway thread: a counting
//! global allocator (per thread) watches `Session::send` and `Session::poll` over two hundred
//! place → acknowledgement → cancel → cancelled round trips with `ringmaker venue` over TLS
//! (signing, framing, in-place encryption, the write; the answers' and the user stream's
//! decryption, framing and decoding; the in-flight table), after a warm-up.
//!
//! A test binary of its own because a global allocator is per binary.

use engine::{Event, EventKind, ExecKind, Intent, Side, TimeInForce};
use gateway::binance::rest::{RestClient, RestOptions};
use gateway::binance::session::{OrderEntryEndpoints, Session, SessionInstrument, SessionOptions};
use gateway::binance::sign::{Credentials, Secret};
use gateway::binance::worker::{Worker, WorkerOptions};
use gateway::Venue as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::alloc::{Counter, CountingAlloc};
use venue::server::{ServerConfig, Venue};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Polls until `want` is reported for `cid` (or the connection comes up, for `cid` 0); the
/// events seen on the way go to `seen` (preallocated).
fn until(
    s: &mut Session<Credentials>,
    seen: &mut Vec<Event>,
    cid: u64,
    want: Option<ExecKind>,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        seen.clear();
        s.poll(0, &mut |e| seen.push(*e));
        let hit = seen.iter().any(|e| match want {
            None => e.kind() == EventKind::Control && s.is_up(),
            Some(k) => e
                .as_exec()
                .is_some_and(|r| r.client_order_id == cid && r.kind == k),
        });
        if hit {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// One round trip: a post-only bid far under the market (it rests), its acknowledgement, its
/// cancel, the cancel's answer.
fn round_trip(s: &mut Session<Credentials>, seen: &mut Vec<Event>, n: u64) {
    let cid = (1u64 << 40) | n;
    let place = Intent::place(0, Side::Bid, TimeInForce::PostOnly, cid, 500_000, 3, 0, n);
    s.send(&place, 0);
    assert!(until(s, seen, cid, Some(ExecKind::Ack)), "no ack for {n}");
    let cancel = Intent::cancel(0, Side::Bid, cid, false, 0, n);
    s.send(&cancel, 0);
    assert!(
        until(s, seen, cid, Some(ExecKind::Canceled)),
        "no cancel for {n}"
    );
}

#[test]
fn place_and_cancel_round_trips_allocate_nothing_once_warm() {
    let dir = test_support::TempDir::new("session-alloc");
    let cfg = test_support::default_config();
    let mut sc = ServerConfig::new(vec![test_support::usdm()], cfg.clone());
    // A venue clock that stands still: nothing trades, the bids rest.
    sc.manual_clock = true;
    sc.cert_dir = dir.join("cert");
    let accounts =
        venue::auth::Accounts::load(&root().join("configs/venue-accounts.toml")).unwrap();
    let ex =
        venue::exchange::SimExchange::new(cfg.clone(), accounts).accept_wall_clock_timestamps();
    let h = Venue::start(sc, Arc::new(ex)).expect("venue starts");

    let creds = Arc::new(Credentials::hmac(KEY, &Secret::new(SECRET)).unwrap());
    let rest = RestClient::new(
        &h.rest_url(),
        Some(h.cert_path()),
        Arc::clone(&creds) as _,
        RestOptions::default(),
    )
    .unwrap();
    let inst = cfg.instruments[0].instrument;
    let symbol = inst.symbol.as_str().to_string();
    let worker = Worker::spawn(
        rest,
        vec![symbol.clone()],
        WorkerOptions {
            countdown: None,
            countdown_every: Duration::from_secs(30),
            keepalive_every: Duration::from_secs(1_800),
            alive_within: Duration::from_secs(5),
        },
    )
    .unwrap();
    let tls = feeds::net::tls::client_config(Some(h.cert_path())).unwrap();
    let endpoints = OrderEntryEndpoints::from_rest_url(&h.rest_url()).unwrap();
    let mut s = Session::new(
        creds,
        &endpoints,
        tls,
        vec![SessionInstrument {
            symbol,
            instrument: inst,
        }],
        worker,
        SessionOptions {
            ack_timeout: Duration::from_secs(5),
            ..SessionOptions::default()
        },
    );
    let mut seen = Vec::with_capacity(4096);
    // Up: both links open, reconciled; the engine's consumption told as it would be.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.is_up() {
        assert!(Instant::now() < deadline, "not up: {s:?}");
        seen.clear();
        s.poll(0, &mut |e| seen.push(*e));
        s.on_consumed(u64::MAX);
    }
    // Warm-up: every buffer reaches its size. (The venue's clock stands still, so its 10 s order
    // window never rolls: 300 places at most, and the session itself stops at 90% of that.)
    for n in 1..=60 {
        round_trip(&mut s, &mut seen, n);
    }
    let before = s.stats();
    let counter = Counter::start();
    for n in 61..=260 {
        round_trip(&mut s, &mut seen, n);
    }
    let counts = counter.stop();
    let after = s.stats();
    assert_eq!(after.places - before.places, 200);
    assert_eq!(
        after.disconnects, before.disconnects,
        "a reconnect in the window"
    );
    assert_eq!(after.status_queries, before.status_queries);
    assert!(
        counts.is_zero(),
        "the session allocated on the gateway thread: {counts:?}"
    );
    s.close();
    h.shutdown();
}
