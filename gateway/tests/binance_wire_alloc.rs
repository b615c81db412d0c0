//! `gateway::binance::wire` allocates nothing per message once warm: a counting global
//! allocator watches requests being written and responses and user data events being decoded
//! after one warm-up round of the same kinds of message.
//!
//! Counting is per thread and only inside the window, so the harness's own allocations on
//! other threads do not count. The test signer writes its hex without allocating.

use engine::{Instrument, InstrumentId, Side, TimeInForce};
use gateway::binance::cid::ClientIds;
use gateway::binance::sign::Signer;
use gateway::binance::wire::{
    exec_report, Decoder, OrderSpec, RequestWriter, UserEvent, UserStreamOp,
};
use hmac::Mac;
use test_support::alloc::{count_on_this_thread, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Hmac;

impl Signer for Hmac {
    fn api_key(&self) -> &str {
        "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
    }

    fn sign_into(&self, payload: &[u8], out: &mut Vec<u8>) {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(payload);
        for b in mac.finalize().into_bytes() {
            out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
            out.push(b"0123456789abcdef"[usize::from(b & 15)]);
        }
    }
}

const PLACED: &str = r#"{"id":7,"status":200,"result":{"orderId":12,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"rm00000mjuohs00-0000010000000001","price":"61700.20","avgPrice":"0","origQty":"0.002","executedQty":"0.000","timeInForce":"GTX","type":"LIMIT","side":"BUY","updateTime":1700000000001},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":3},{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":1},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200,"count":1}]}"#;
const REJECTED: &str = r#"{"id":8,"status":400,"error":{"code":-5022,"msg":"Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history"},"rateLimits":[]}"#;
const FILL: &str = r#"{"e":"ORDER_TRADE_UPDATE","E":1700000000002,"T":1700000000002,"o":{"s":"BTCUSDT","c":"rm00000mjuohs00-0000010000000001","S":"BUY","o":"LIMIT","f":"GTX","q":"0.002","p":"61700.20","ap":"61700.20000000","sp":"0","x":"TRADE","X":"FILLED","i":12,"l":"0.002","z":"0.002","L":"61700.20","n":"0.02468008","N":"USDT","T":1700000000002,"t":5,"m":true,"R":false,"ps":"BOTH"}}"#;
const ACCOUNT: &str = r#"{"e":"ACCOUNT_UPDATE","E":5,"T":5,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"1","cw":"1","bc":"0"}],"P":[{"s":"BTCUSDT","pa":"-0.003","ep":"61700.26666666","ps":"BOTH"}]}}"#;

#[test]
fn warm_wire_allocates_nothing() {
    let inst = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
    let table: Vec<(InstrumentId, Instrument)> = vec![(0, inst)];
    let ids = ClientIds::new(1_767_225_600_000);
    let mut w = RequestWriter::default();
    let mut d = Decoder::new();
    let mut bufs: Vec<Vec<u8>> = [PLACED, REJECTED, FILL, ACCOUNT]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let round = |w: &mut RequestWriter, d: &mut Decoder, bufs: &mut [Vec<u8>], k: u64| {
        let client_id = ids.encode((1 << 40) | k);
        let o = OrderSpec {
            instrument: &inst,
            client_id: &client_id,
            side: Side::Bid,
            tif: TimeInForce::PostOnly,
            price: 617_002 + k as i64,
            qty: 2,
        };
        let mut n = w.place(&Hmac, k, 1_700_000_000_000, &o).unwrap().len();
        n += w.modify(&Hmac, k, 1_700_000_000_000, &o).unwrap().len();
        n += w
            .cancel(&Hmac, k, 1_700_000_000_000, &inst, &client_id)
            .unwrap()
            .len();
        n += w.user_stream(&Hmac, k, UserStreamOp::Ping).unwrap().len();
        // simd-json unescapes in place: refill the buffers (same lengths, no allocation).
        for (b, s) in bufs.iter_mut().zip([PLACED, REJECTED, FILL, ACCOUNT]) {
            b.copy_from_slice(s.as_bytes());
        }
        let r0 = d.decode_response(&mut bufs[0], &table).unwrap();
        let r1 = d.decode_response(&mut bufs[1], &table).unwrap();
        let u = d.decode_user(&mut bufs[2], &table).unwrap();
        let a = d.decode_user(&mut bufs[3], &table).unwrap();
        let UserEvent::Order(u) = u else {
            panic!("{u:?}")
        };
        let rep = exec_report(&u, 1).unwrap();
        (
            n,
            r0.status,
            r1.status,
            rep.fee,
            matches!(a, UserEvent::Account(_)),
        )
    };
    let warm = round(&mut w, &mut d, &mut bufs, 1);
    let (hot, counts) = count_on_this_thread(|| {
        let mut last = warm;
        for k in 2..200 {
            last = round(&mut w, &mut d, &mut bufs, k);
        }
        last
    });
    assert!(counts.is_zero(), "allocator calls once warm: {counts:?}");
    assert_eq!((hot.1, hot.2, hot.3, hot.4), (200, 400, 247, true));
}
