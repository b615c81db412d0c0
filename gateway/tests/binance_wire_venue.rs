//! `gateway::binance::wire` against the local exchange (the core of `ringmaker venue`, driven in
//! process): the requests it writes are accepted as signed, and what the exchange answers and
//! streams back decodes into the orders, fills, positions and execution reports the exchange
//! meant.

use std::path::Path;
use std::sync::mpsc::Receiver;

use engine::{
    Event, ExecKind, ExecReport, Instrument, InstrumentId, LevelUpdate, Side, TimeInForce,
};
use gateway::binance::cid::{ClientIdOf, ClientIds};
use gateway::binance::sign::Signer;
use gateway::binance::wire::{
    cancel_rejected, exec_report, place_rejected, Decoder, OrderSpec, OrderStatus, PositionSide,
    RateLimitKind, RequestWriter, Response, ResponseBody, UserEvent, UserStreamOp, WireTif,
};
use hmac::Mac;
use venue::api::Exchange;
use venue::auth::Accounts;
use venue::exchange::SimExchange;

/// The venue's HMAC test account (Binance's documented example key pair).
const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
const PEER: &str = "127.0.0.1:4000";
const BID: i64 = 617_000;
const ASK: i64 = 617_010;

/// A test-only HMAC-SHA256 signer.
struct Hmac {
    key: &'static str,
    secret: &'static str,
}

impl Signer for Hmac {
    fn api_key(&self) -> &str {
        self.key
    }

    fn sign_into(&self, payload: &[u8], out: &mut Vec<u8>) {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(payload);
        for b in mac.finalize().into_bytes() {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
    }
}

struct Client {
    ex: SimExchange,
    inst: Instrument,
    table: Vec<(InstrumentId, Instrument)>,
    w: RequestWriter,
    d: Decoder,
    ids: ClientIds,
    signer: Hmac,
    now: i64,
    next_id: u64,
}

impl Client {
    fn new() -> Client {
        let cfg = test_support::default_config();
        let inst = cfg.instruments[0].instrument;
        let accounts = Accounts::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/venue-accounts.toml"),
        )
        .unwrap();
        Client {
            ex: SimExchange::new(cfg, accounts),
            inst,
            table: vec![(0, inst)],
            w: RequestWriter::default(),
            d: Decoder::new(),
            ids: ClientIds::new(1_767_225_600_000),
            signer: Hmac {
                key: KEY,
                secret: SECRET,
            },
            now: 1_000,
            next_id: 1,
        }
    }

    /// A book of one level a side, `BID` / `ASK`, 5 lots each.
    fn book(&mut self) {
        let t = self.now * 1_000_000;
        let level = |side, price, last| {
            Event::level(
                0,
                t,
                t,
                LevelUpdate {
                    side,
                    price,
                    qty: 5,
                    update_id: 1,
                    last_in_msg: last,
                    snapshot: true,
                },
            )
        };
        let events = [
            Event::book_reset(0, t, t, 1),
            level(Side::Bid, BID, false),
            level(Side::Ask, ASK, true),
            Event::book_valid(0, t, t, 1),
        ];
        self.ex.on_market(&events, self.now);
    }

    /// Sends what `write` writes with a fresh request id; the decoded answer.
    fn send(
        &mut self,
        write: impl FnOnce(&mut RequestWriter, &Hmac, u64, i64) -> Vec<u8>,
    ) -> Response {
        let id = self.next_id;
        self.next_id += 1;
        self.now += 1;
        let req = write(&mut self.w, &self.signer, id, self.now);
        let text = std::str::from_utf8(&req).unwrap();
        let mut answer = self.ex.ws_api(1, PEER, text, self.now).into_bytes();
        let r = self.d.decode_response(&mut answer, &self.table).unwrap();
        assert_eq!(r.id, Some(id));
        r
    }

    fn place(&mut self, cid: u64, side: Side, tif: TimeInForce, price: i64, qty: i64) -> Response {
        let client_id = self.ids.encode(cid);
        let inst = self.inst;
        self.send(|w, s, id, now| {
            let o = OrderSpec {
                instrument: &inst,
                client_id: &client_id,
                side,
                tif,
                price,
                qty,
            };
            w.place(s, id, now, &o).unwrap().to_vec()
        })
    }

    fn cancel(&mut self, cid: u64) -> Response {
        let client_id = self.ids.encode(cid);
        let inst = self.inst;
        self.send(|w, s, id, now| w.cancel(s, id, now, &inst, &client_id).unwrap().to_vec())
    }

    /// The user data events waiting, decoded.
    fn events(&mut self, rx: &Receiver<String>) -> Vec<UserEvent> {
        rx.try_iter()
            .map(|t| {
                let mut b = t.into_bytes();
                self.d.decode_user(&mut b, &self.table).unwrap()
            })
            .collect()
    }

    /// The execution reports of our orders among `events`.
    fn reports(&self, events: &[UserEvent]) -> Vec<ExecReport> {
        events
            .iter()
            .filter_map(|e| match e {
                UserEvent::Order(u) => match self.ids.parse(u.client_id.as_bytes()) {
                    ClientIdOf::This(cid) => exec_report(u, cid),
                    other => panic!("not this session's: {other:?}"),
                },
                _ => None,
            })
            .collect()
    }
}

fn order(r: &Response) -> gateway::binance::wire::OrderResult {
    match r.body {
        ResponseBody::Order(o) => o,
        _ => panic!("not an order: {r:?}"),
    }
}

fn error(r: &Response) -> gateway::binance::wire::ApiError {
    match r.body {
        ResponseBody::Error(e) => e,
        _ => panic!("not an error: {r:?}"),
    }
}

#[test]
fn orders_through_the_local_exchange() {
    let mut c = Client::new();
    c.book();

    // Listen key and user stream.
    let r = c.send(|w, s, id, _| w.user_stream(s, id, UserStreamOp::Start).unwrap().to_vec());
    let ResponseBody::ListenKey(key) = r.body else {
        panic!("{r:?}")
    };
    assert_eq!(key.as_str().len(), 64);
    let rx = c.ex.user_stream(key.as_str(), None, c.now).unwrap();
    let r = c.send(|w, s, id, _| w.user_stream(s, id, UserStreamOp::Ping).unwrap().to_vec());
    assert_eq!(r.body, ResponseBody::ListenKey(key));

    // A post-only bid under the touch rests.
    let cid = (1 << 40) | 1;
    let r = c.place(cid, Side::Bid, TimeInForce::PostOnly, BID - 10, 2);
    assert_eq!(r.status, 200);
    let o = order(&r);
    assert_eq!(c.ids.parse(o.client_id.as_bytes()), ClientIdOf::This(cid));
    assert_eq!(
        (
            o.instrument,
            o.status,
            o.side,
            o.tif,
            o.price,
            o.orig_qty,
            o.executed_qty
        ),
        (0, OrderStatus::New, Side::Bid, WireTif::Gtx, BID - 10, 2, 0)
    );
    let venue_id = o.order_id;
    let orders_10s = r.rate_limits.find(RateLimitKind::Orders, 10_000).unwrap();
    assert_eq!(orders_10s.count, 1);
    assert!(r
        .rate_limits
        .find(RateLimitKind::RequestWeight, 60_000)
        .is_some());
    let ev = c.events(&rx);
    assert_eq!(
        c.reports(&ev),
        [ExecReport {
            venue_order_id: venue_id,
            ..ExecReport::new(ExecKind::Ack, cid, 0, 0, 0)
        }]
    );

    // Status, modify (no report: the engine has none for an amendment), cancel.
    let ids = c.ids;
    let inst = c.inst;
    let r = c.send(|w, s, id, now| {
        w.status(s, id, now, &inst, &ids.encode(cid))
            .unwrap()
            .to_vec()
    });
    assert_eq!(order(&r).order_id, venue_id);
    let r = c.send(|w, s, id, now| {
        let o = OrderSpec {
            instrument: &inst,
            client_id: &ids.encode(cid),
            side: Side::Bid,
            tif: TimeInForce::PostOnly,
            price: BID - 20,
            qty: 3,
        };
        w.modify(s, id, now, &o).unwrap().to_vec()
    });
    assert_eq!((order(&r).price, order(&r).orig_qty), (BID - 20, 3));
    let ev = c.events(&rx);
    assert_eq!(ev.len(), 1);
    assert!(c.reports(&ev).is_empty());
    let r = c.cancel(cid);
    assert_eq!(order(&r).status, OrderStatus::Canceled);
    let ev = c.events(&rx);
    assert_eq!(
        c.reports(&ev).iter().map(|r| r.kind).collect::<Vec<_>>(),
        [ExecKind::Canceled]
    );

    // Cancelling it again is refused.
    let r = c.cancel(cid);
    let e = error(&r);
    assert_eq!((r.status, e.code), (400, -2011));
    let rep = cancel_rejected(r.status, &e, cid).unwrap();
    assert_eq!(
        (rep.kind, rep.reject_code),
        (ExecKind::CancelRejected, -2011)
    );

    // A post-only bid at the ask would take: refused with -5022, nothing streamed.
    let cid2 = (1 << 40) | 2;
    let r = c.place(cid2, Side::Bid, TimeInForce::PostOnly, ASK, 2);
    let e = error(&r);
    assert_eq!((r.status, e.code), (400, -5022));
    let rep = place_rejected(r.status, &e, cid2).unwrap();
    assert_eq!(
        (rep.kind, rep.reject_code, rep.post_only_reject),
        (ExecKind::Rejected, -5022, true)
    );
    assert!(c.events(&rx).is_empty());

    // An IOC bid at the ask takes two lots: a taker fill with a fee, and the position.
    let cid3 = (1 << 40) | 3;
    let r = c.place(cid3, Side::Bid, TimeInForce::Ioc, ASK, 2);
    let o = order(&r);
    assert_eq!(
        (o.status, o.executed_qty, o.tif),
        (OrderStatus::Filled, 2, WireTif::Ioc)
    );
    let ev = c.events(&rx);
    let fills: Vec<ExecReport> = c
        .reports(&ev)
        .into_iter()
        .filter(|r| r.kind == ExecKind::Fill)
        .collect();
    assert_eq!(fills.len(), 1, "{ev:?}");
    let f = fills[0];
    assert_eq!(
        (
            f.client_order_id,
            f.last_price,
            f.last_qty,
            f.cum_qty,
            f.taker
        ),
        (cid3, ASK, 2, 2, true)
    );
    // 5 bps taker (configs/default.toml), exactly the venue's fee: its 8 decimals are a whole
    // number of tick × lot units.
    let taker = gateway::sim::BpsFees::fee_at(engine::Fx::from_num(5), ASK, 2);
    assert!(taker > 0);
    assert_eq!(f.fee, taker);
    let positions: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            UserEvent::Account(a) => Some(a.positions().to_vec()),
            _ => None,
        })
        .collect();
    let last = positions.last().unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(
        (
            last[0].instrument,
            last[0].qty,
            last[0].entry_price,
            last[0].side
        ),
        (0, 2, ASK, PositionSide::Both)
    );
}

#[test]
fn a_wrong_signature_is_refused() {
    let mut c = Client::new();
    c.signer.secret = "not-the-secret";
    let r = c.place(1, Side::Bid, TimeInForce::PostOnly, BID, 1);
    let e = error(&r);
    assert_eq!((r.status, e.code), (400, -1022));
    assert_eq!(e.msg.as_str(), "Signature for this request is not valid.");
    // A stale timestamp.
    c.signer.secret = SECRET;
    let inst = c.inst;
    let client_id = c.ids.encode(1);
    let r = c.send(|w, s, id, now| {
        let o = OrderSpec {
            instrument: &inst,
            client_id: &client_id,
            side: Side::Bid,
            tif: TimeInForce::PostOnly,
            price: BID,
            qty: 1,
        };
        w.place(s, id, now - 10_000, &o).unwrap().to_vec()
    });
    assert_eq!(error(&r).code, -1021);
}
