//! Signing allocates nothing once the output buffer has room (the gateway signs on its hot
//! path): HMAC-SHA256 and Ed25519, under a counting global allocator.

use gateway::binance::sign::{Credentials, Secret, Signer};
use std::path::Path;
use test_support::alloc::{count_on_this_thread, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn signing_does_not_allocate_once_out_has_room() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/signatures");
    let pem = std::fs::read_to_string(dir.join("python-binance_ed25519_test_key.pem")).unwrap();
    let hmac = Credentials::hmac(
        "k",
        &Secret::new("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"),
    )
    .unwrap();
    let ed = Credentials::ed25519_pem("k", &Secret::new(pem)).unwrap();
    let payload = b"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
    let mut out = Vec::with_capacity(256);
    for c in [&hmac, &ed] {
        // Warm up, then count.
        c.sign_into(payload, &mut out);
        out.clear();
        let ((), counts) = count_on_this_thread(|| {
            for _ in 0..10 {
                out.clear();
                c.sign_into(payload, &mut out);
            }
        });
        assert!(counts.is_zero(), "{c:?}: {counts:?}");
        assert!(!out.is_empty());
    }
}
