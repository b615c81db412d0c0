//! Arbitrary bytes into `Decoder::decode` (and `decode_snapshot`) for a futures and a spot
//! instrument. Must never panic; a decode error must leave `levels()` empty; a success must be
//! internally consistent and the same when the same bytes are decoded again by the warm decoder;
//! and `decode` (depth fast path first) must give exactly what `decode_general` (simd-json only)
//! gives; and the same for `decode_for` (a source bound to one instrument) against
//! `decode_general_for`, whose every answer is that instrument's.

use engine::{EventKind, Instrument};
use feeds::{Decoder, Message};

fn futures() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap()
}

fn spot() -> Instrument {
    Instrument::new("BTCUSDT", "0.01", "0.00001", "0.00001", "5").unwrap()
}

fn check(d: &Decoder, r: &Result<Message, feeds::DecodeError>, n_instruments: usize) {
    match r {
        Err(_) => assert!(d.levels().is_empty(), "levels left behind after {r:?}"),
        Ok(Message::Depth(h)) => {
            assert!(h.final_id >= h.first_id, "{h:?}");
            assert!((h.instrument as usize) < n_instruments);
            check_levels(d, false, h.final_id, h.instrument);
        }
        Ok(Message::Snapshot(h)) => {
            assert!((h.instrument as usize) < n_instruments);
            check_levels(d, true, h.last_update_id, h.instrument);
        }
        Ok(Message::Event(ev)) => {
            assert!(
                matches!(
                    ev.kind(),
                    EventKind::Bbo | EventKind::Trade | EventKind::MarkPrice
                ),
                "{ev:?}"
            );
            assert!((ev.instrument() as usize) < n_instruments);
            if let Some(t) = ev.as_trade() {
                assert!(t.price > 0 && t.qty >= 0 && t.count >= 1, "{t:?}");
            }
            if let Some(m) = ev.as_mark_price() {
                assert!(m.mark_price > 0 && m.index_price > 0, "{m:?}");
                assert!(
                    m.funding_rate_e8.abs() <= feeds::decode::MAX_FUNDING_RATE_E8,
                    "{m:?}"
                );
                assert!(m.next_funding_ms >= 0 && ev.venue_time_ns >= 0, "{m:?}");
            }
            if let Some(b) = ev.as_bbo() {
                assert!(b.bid_price > 0 && b.ask_price > 0, "{b:?}");
                assert!(b.bid_qty >= 0 && b.ask_qty >= 0, "{b:?}");
            }
            assert!(d.levels().is_empty());
        }
        Ok(Message::Ignored(_)) => assert!(d.levels().is_empty()),
    }
}

fn check_levels(d: &Decoder, snapshot: bool, update_id: u64, instrument: u16) {
    let n = d.levels().len();
    for (i, ev) in d.levels().iter().enumerate() {
        assert_eq!(
            ev.instrument(),
            instrument,
            "level of another instrument than the header's"
        );
        let l = ev.as_level().expect("level event");
        assert!(l.price > 0, "{l:?}");
        assert!(l.qty >= 0, "{l:?}");
        assert_eq!(l.snapshot, snapshot);
        assert_eq!(l.update_id, update_id);
        assert_eq!(l.last_in_msg, i + 1 == n, "last_in_msg on level {i} of {n}");
    }
}

fn run(d: &mut Decoder, data: &[u8], n_instruments: usize) {
    let mut buf = data.to_vec();
    let first = d.decode(&mut buf, 1);
    check(d, &first, n_instruments);
    let first_levels = d.levels().to_vec();
    // The depth fast path and the general simd-json path agree on everything.
    let mut buf = data.to_vec();
    let general = d.decode_general(&mut buf, 1);
    check(d, &general, n_instruments);
    assert_eq!(first, general, "fast path vs general path");
    assert_eq!(first_levels, d.levels(), "fast path vs general path levels");
    // The same bytes through the now-warm decoder give the same answer.
    let mut buf = data.to_vec();
    let second = d.decode(&mut buf, 1);
    check(d, &second, n_instruments);
    assert_eq!(first, second);
    assert_eq!(first_levels, d.levels());
    let mut buf = data.to_vec();
    let snap = d.decode_snapshot(&mut buf, 1, (data.len() % 3) as u16);
    check(d, &snap, n_instruments);
    // Bound to one instrument (or to one the decoder lacks): fast and general paths agree, and
    // whatever decodes is that instrument's.
    let id = (data.len() % (n_instruments + 1)) as u16;
    let mut buf = data.to_vec();
    let bound = d.decode_for(&mut buf, 1, id);
    check(d, &bound, n_instruments);
    let bound_levels = d.levels().to_vec();
    let mut buf = data.to_vec();
    let bound_general = d.decode_general_for(&mut buf, 1, id);
    assert_eq!(bound, bound_general, "bound: fast path vs general path");
    assert_eq!(
        bound_levels,
        d.levels(),
        "bound: fast path vs general path levels"
    );
    let of = match &bound {
        Ok(Message::Depth(h)) => Some(h.instrument),
        Ok(Message::Snapshot(h)) => Some(h.instrument),
        Ok(Message::Event(e)) => Some(e.instrument()),
        _ => None,
    };
    assert!(
        of.is_none_or(|i| i == id),
        "bound to {id}, decoded for {of:?}"
    );
}

thread_local! {
    // Warm decoders are reused across inputs, as on a feed thread; a decoder keeps nothing from
    // one message to the next but its buffers and counters.
    static DECODERS: std::cell::RefCell<[Decoder; 3]> = std::cell::RefCell::new([
        Decoder::new(&[futures()]),
        Decoder::new(&[spot()]),
        Decoder::new(&[futures(), eth()]),
    ]);
}

fn eth() -> Instrument {
    let mut i = spot();
    i.symbol = engine::Symbol::new(b"ETHUSDT").unwrap();
    i
}

/// One fuzz input: must never panic (see the module docs for what is checked).
pub fn fuzz(data: &[u8]) {
    DECODERS.with_borrow_mut(|[fut, spot, multi]| {
        run(fut, data, 1);
        run(spot, data, 1);
        run(multi, data, 2);
    });
    // Adoption is one-shot state, so that decoder is fresh for every input.
    if data.first().is_some_and(|b| b & 3 == 0) {
        run(&mut Decoder::adopting_first_symbol(futures()), data, 1);
    }
}
