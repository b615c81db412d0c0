//! Property tests over the pieces the recordings cannot exercise exhaustively:
//!
//! - (a) decimal ↔ grid steps: exact round trips, redundant zeros, off-grid digits;
//! - (b) the order book against a `BTreeMap` reference model, after every update;
//! - (c) the decoder on arbitrary bytes and on mutated real messages: no panic, no stale levels;
//!   mark prices decoded against a reference (rounding, exact funding) and round-tripped through
//!   the event's bytes;
//! - (d) the book-sync machine on random `U` / `u` / `pu` chains with gaps: nothing is ever applied
//!   across a gap, every applied diff bridges the snapshot or chains on the previous one.
//!
//! Case counts are chosen so the whole file runs in a few seconds on the test profile.

use engine::{DecimalError, Event, EventKind, Grid, Instrument, LevelUpdate, OrderBook, Side};
use feeds::{
    BookSync, DecodeError, Decoder, DepthHeader, DiffOutcome, Message, RecordingReader,
    SnapshotHeader, SyncRule, SyncSink, SyncState,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// `cases` cases; failures are saved to `tests/props.proptest-regressions` and replayed first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// (a) decimal ↔ ticks

/// The step of a grid written as the venue would: mantissa 10, scale 2 → `"0.10"`.
fn step_string(mantissa: u64, scale: u8) -> String {
    let digits = mantissa.to_string();
    if scale == 0 {
        return digits;
    }
    let width = scale as usize + 1;
    let padded = format!("{digits:0>width$}");
    let (int, frac) = padded.split_at(padded.len() - scale as usize);
    format!("{int}.{frac}")
}

/// A grid: mostly realistic steps (1, 5, 10, 25 ... units at scale 0..=8), sometimes any
/// mantissa at any scale up to the maximum.
fn grid() -> impl Strategy<Value = Grid> {
    prop_oneof![
        3 => (prop::sample::select(vec![1u64, 2, 5, 10, 25, 50, 100, 1000]), 0u8..=8),
        1 => (1u64..=u64::MAX, 0u8..=engine::MAX_SCALE),
    ]
    .prop_map(|(m, s)| {
        let g = Grid::parse(&step_string(m, s)).expect("valid step");
        // Normalised (`"0.10"` is 1 × 10^-1), same value, printed with the decimals as written.
        assert_eq!(g.display_scale(), s);
        assert!(g.scale() == 0 || g.mantissa() % 10 != 0, "{g:?}");
        assert_eq!(
            g.mantissa() as u128 * 10u128.pow((s - g.scale()) as u32),
            m as u128,
            "{g:?}"
        );
        g
    })
}

/// A grid and a step count whose value (`steps × mantissa` units of the normalised scale) fits the
/// parser's `u64`.
fn grid_and_steps() -> impl Strategy<Value = (Grid, i64)> {
    grid().prop_flat_map(|g| {
        let max = (u64::MAX / g.mantissa()).min(i64::MAX as u64) as i64;
        let small = 0..=max.min(10_000_000);
        (Just(g), prop_oneof![small, 0..=max, Just(max)])
    })
}

/// A grid with a step of more than one unit, a step count, and `0 < within < mantissa` such that
/// `steps × mantissa + within` fits in an `i64`.
fn grid_steps_and_remainder() -> impl Strategy<Value = (Grid, i64, u64)> {
    grid()
        .prop_filter("step of one unit", |g| g.mantissa() > 1)
        .prop_flat_map(|g| {
            let m = g.mantissa();
            let max_steps = ((i64::MAX as u64 / m).saturating_sub(1)) as i64;
            let steps = prop_oneof![0..=max_steps.min(1_000_000), 0..=max_steps, Just(max_steps)];
            (Just(g), steps, 1..m.min(i64::MAX as u64))
        })
}

/// `text` with a decimal point, so digits can be appended after it.
fn with_point(mut text: String) -> String {
    if !text.contains('.') {
        text.push('.');
        text.push('0');
    }
    text
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn format_then_parse_is_the_identity((g, steps) in grid_and_steps()) {
        let text = g.format(steps);
        prop_assert_eq!(g.to_steps(text.as_bytes()), Ok(steps), "{} on {}", text, g);
        // Canonical spelling: the step's decimals as written.
        let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(decimals, g.display_scale() as usize);
    }

    #[test]
    fn redundant_zeros_do_not_change_the_value(
        (g, steps) in grid_and_steps(),
        leading in 0usize..4,
        trailing in 0usize..12,
    ) {
        let text = format!("{}{}{}", "0".repeat(leading), with_point(g.format(steps)), "0".repeat(trailing));
        prop_assert_eq!(g.to_steps(text.as_bytes()), Ok(steps), "{} on {}", text, g);
    }

    #[test]
    fn nonzero_digits_past_the_scale_are_off_grid(
        (g, steps) in grid_and_steps(),
        zeros in 0usize..6,
        digit in 1u8..=9,
        tail in "[0-9]{0,4}",
    ) {
        // `with_point` may add one zero past the scale when the scale is 0: still past it.
        let text = format!("{}{}{}{}", with_point(g.format(steps)), "0".repeat(zeros), digit, tail);
        prop_assert_eq!(g.to_steps(text.as_bytes()), Err(DecimalError::OffGrid), "{} on {}", text, g);
        // Also between the normalised scale and the written one (`"61800.25"` on `"0.10"`).
        if g.display_scale() > g.scale() {
            let mut text = g.format(steps).into_bytes();
            let dot = text.iter().position(|&c| c == b'.').expect("a fractional part");
            let first_past = dot + 1 + g.scale() as usize;
            prop_assert_eq!(text[first_past], b'0');
            text[first_past] = b'0' + digit;
            prop_assert_eq!(g.to_steps(&text), Err(DecimalError::OffGrid), "{:?} on {}", String::from_utf8_lossy(&text), g);
        }
    }

    #[test]
    fn values_between_steps_are_off_grid((g, steps, within) in grid_steps_and_remainder()) {
        // A value `within` units above a grid point, short of the next one, written on the
        // one-unit grid of the same scale.
        let units = steps as u64 * g.mantissa() + within;
        let unit = Grid::parse(&step_string(1, g.scale())).expect("unit grid");
        let text = unit.format(units as i64);
        prop_assert_eq!(g.to_steps(text.as_bytes()), Err(DecimalError::OffGrid), "{} on {}", text, g);
    }

    #[test]
    fn arbitrary_strings_never_panic_and_ok_means_exact(g in grid(), s in "[0-9.\\-+e ]{0,24}") {
        if let Ok(steps) = g.to_steps(s.as_bytes()) {
            prop_assert!(steps >= 0);
            // Accepted strings are the canonical text with optional redundant zeros.
            let back = g.to_steps(g.format(steps).as_bytes());
            prop_assert_eq!(back, Ok(steps));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) the order book against a reference model

#[derive(Debug, Clone)]
enum BookOp {
    Set { side: Side, price: i64, qty: i64 },
    Reset,
}

fn book_op() -> impl Strategy<Value = BookOp> {
    let side = prop_oneof![Just(Side::Bid), Just(Side::Ask)];
    // Most prices in a band well inside the 4,096-slot window, some beyond it; removes are common.
    let price = prop_oneof![
        8 => 100_000i64..100_400,
        1 => 96_000i64..104_000,
    ];
    let qty = prop_oneof![2 => Just(0i64), 3 => 1i64..50, 1 => 1i64..=i64::MAX];
    prop_oneof![
        60 => (side, price, qty).prop_map(|(side, price, qty)| BookOp::Set { side, price, qty }),
        1 => Just(BookOp::Reset),
    ]
}

#[derive(Default)]
struct RefBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl RefBook {
    fn side(&mut self, side: Side) -> &mut BTreeMap<i64, i64> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }
    fn best_bid(&self) -> Option<i64> {
        self.bids.keys().next_back().copied()
    }
    fn best_ask(&self) -> Option<i64> {
        self.asks.keys().next().copied()
    }
}

fn assert_book_matches(b: &OrderBook, r: &RefBook) -> Result<(), TestCaseError> {
    prop_assert_eq!(b.best_bid(), r.best_bid());
    prop_assert_eq!(b.best_ask(), r.best_ask());
    let bids: Vec<_> = b.levels(Side::Bid).collect();
    let asks: Vec<_> = b.levels(Side::Ask).collect();
    prop_assert!(
        bids.iter().chain(&asks).all(|&(_, q)| q > 0),
        "zero-qty level: {:?} {:?}",
        bids,
        asks
    );
    let ref_bids: Vec<_> = r.bids.iter().rev().map(|(&p, &q)| (p, q)).collect();
    let ref_asks: Vec<_> = r.asks.iter().map(|(&p, &q)| (p, q)).collect();
    prop_assert_eq!(&bids, &ref_bids);
    prop_assert_eq!(&asks, &ref_asks);
    prop_assert_eq!(b.depth(Side::Bid), r.bids.len());
    prop_assert_eq!(b.depth(Side::Ask), r.asks.len());
    let ref_crossed = matches!((r.best_bid(), r.best_ask()), (Some(x), Some(y)) if x >= y);
    prop_assert_eq!(b.is_crossed(), ref_crossed);
    if let (false, Some(bid), Some(ask)) = (ref_crossed, b.best_bid(), b.best_ask()) {
        prop_assert!(bid < ask);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn book_agrees_with_a_btreemap_after_every_update(ops in prop::collection::vec(book_op(), 1..400)) {
        let mut b = OrderBook::new(4096);
        let mut r = RefBook::default();
        for op in &ops {
            match *op {
                BookOp::Set { side, price, qty } => match b.set_level(side, price, qty) {
                    Ok(()) => {
                        if qty == 0 {
                            r.side(side).remove(&price);
                        } else {
                            r.side(side).insert(price, qty);
                        }
                    }
                    // Out of the window: refused, book unchanged, reference unchanged.
                    Err(engine::BookError::OutOfWindow(p)) => prop_assert_eq!(p, price),
                    Err(e) => return Err(TestCaseError::fail(format!("{op:?}: {e}"))),
                },
                BookOp::Reset => {
                    b.reset();
                    r = RefBook::default();
                }
            }
            assert_book_matches(&b, &r)?;
        }
    }

    #[test]
    fn bad_levels_are_refused_and_change_nothing(
        ops in prop::collection::vec(book_op(), 1..60),
        bad_price in i64::MIN..=0,
        bad_qty in i64::MIN..0,
    ) {
        let mut b = OrderBook::new(4096);
        let mut r = RefBook::default();
        for op in &ops {
            if let BookOp::Set { side, price, qty } = *op {
                if b.set_level(side, price, qty).is_ok() {
                    if qty == 0 { r.side(side).remove(&price); } else { r.side(side).insert(price, qty); }
                }
            }
            prop_assert!(b.set_level(Side::Bid, bad_price, 1).is_err());
            prop_assert!(b.set_level(Side::Ask, 100_100, bad_qty).is_err());
            assert_book_matches(&b, &r)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) the decoder on arbitrary and mutated input

fn futures() -> Instrument {
    Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").expect("futures instrument")
}

fn spot() -> Instrument {
    Instrument::new("BTCUSDT", "0.01", "0.00001", "0.00001", "5").expect("spot instrument")
}

/// ~200 real payloads from the USDⓈ-M recording: every kind it holds, the snapshot included.
fn real_lines() -> &'static [Vec<u8>] {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let mut r = RecordingReader::open(&[ringmaker_tests::usdm()]).expect("open recording");
        let mut out = Vec::new();
        while let Some(l) = r.next() {
            if let Ok(l) = l {
                out.push(l.json.to_vec());
            }
            if out.len() == 200 {
                break;
            }
        }
        assert_eq!(out.len(), 200);
        assert!(
            out.iter().any(|l| l.starts_with(b"{\"lastUpdateId\"")),
            "no snapshot in the sample"
        );
        out
    })
}

/// Checks one decode result against the decoder's contract.
fn check_decoded(d: &Decoder, r: &Result<Message, DecodeError>) -> Result<(), TestCaseError> {
    match r {
        Err(_) => prop_assert!(d.levels().is_empty(), "levels left after {:?}", r),
        Ok(Message::Depth(_)) | Ok(Message::Snapshot(_)) => {
            let (snapshot, update_id, instrument) = match r {
                Ok(Message::Depth(h)) => (false, h.final_id, h.instrument),
                Ok(Message::Snapshot(h)) => (true, h.last_update_id, h.instrument),
                _ => unreachable!(),
            };
            let n = d.levels().len();
            for (i, ev) in d.levels().iter().enumerate() {
                let l = ev.as_level().expect("a level event");
                prop_assert!(l.price > 0 && l.qty >= 0, "{:?}", l);
                prop_assert_eq!(l.snapshot, snapshot);
                prop_assert_eq!(l.last_in_msg, i + 1 == n);
                prop_assert_eq!(l.update_id, update_id);
                prop_assert_eq!(ev.instrument(), instrument);
            }
        }
        Ok(Message::Event(ev)) => {
            prop_assert!(
                matches!(
                    ev.kind(),
                    EventKind::Bbo | EventKind::Trade | EventKind::MarkPrice
                ),
                "{:?}",
                ev
            );
            if let Some(m) = ev.as_mark_price() {
                prop_assert!(m.mark_price > 0 && m.index_price > 0, "{:?}", m);
                prop_assert!(m.funding_rate_e8.abs() <= feeds::decode::MAX_FUNDING_RATE_E8);
                prop_assert!(m.next_funding_ms >= 0);
            }
            // Whatever decodes survives the journal's bytes.
            prop_assert_eq!(Event::from_bytes(&ev.to_bytes()), Some(*ev));
            prop_assert!(d.levels().is_empty());
        }
        Ok(Message::Ignored(_)) => prop_assert!(d.levels().is_empty()),
    }
    Ok(())
}

fn decode_everywhere(data: &[u8]) -> Result<(), TestCaseError> {
    for inst in [futures(), spot()] {
        let mut d = Decoder::new(&[inst]);
        let mut buf = data.to_vec();
        let r = d.decode(&mut buf, 1);
        check_decoded(&d, &r)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
    Set { at: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to JSON and to decimals, plus anything.
    let byte = prop_oneof![
        prop::sample::select(b"\"\\{}[],:.-+0123456789eE \t\n\x00\xff".to_vec()),
        any::<u8>(),
    ];
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (at, byte.clone()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at.prop_map(|at| Mutation::Delete { at }),
        (at, byte).prop_map(|(at, byte)| Mutation::Set { at, byte }),
    ]
}

fn mutate(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = v.len();
        match *m {
            Mutation::Flip { at, bit } if n > 0 => v[at % n] ^= 1 << bit,
            Mutation::Insert { at, byte } => v.insert(at % (n + 1), byte),
            Mutation::Delete { at } if n > 0 => {
                v.remove(at % n);
            }
            Mutation::Set { at, byte } if n > 0 => v[at % n] = byte,
            _ => {}
        }
    }
    v
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(data in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_everywhere(&data)?;
    }

    #[test]
    fn json_looking_noise_never_panics_the_decoder(
        s in r#"\{("[a-zA-Z]{1,12}":("[0-9.a-z@]{0,12}"|[0-9]{1,21}|-?[0-9]{1,3}|true|\[(\["[0-9.]{1,9}","[0-9.]{1,9}"\],?){0,3}\]|\{\}),?){0,10}\}"#
    ) {
        decode_everywhere(s.as_bytes())?;
    }

    #[test]
    fn mutated_real_messages_never_panic_the_decoder(
        line in 0usize..200,
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        let data = mutate(real_lines()[line].clone(), &muts);
        decode_everywhere(&data)?;
    }
}

/// A decimal string for the mark price properties: mostly `[-]int.frac` with 1 to 8 decimals,
/// sometimes junk, sometimes more decimals than the funding rate has.
fn decimal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u64..200_000, 0u64..100_000_000, 1usize..=8, prop::bool::weighted(0.1)).prop_map(
            |(int, frac, width, neg)| {
                let f = format!("{frac:08}");
                format!("{}{int}.{}", if neg { "-" } else { "" }, &f[..width])
            }
        ),
        1 => "[0-9.\\-+e]{0,14}",
        1 => (0u64..1000, 0u64..1000).prop_map(|(a, b)| format!("{a}.{b:03}00000000001")),
    ]
}

/// A funding rate's text: within and a little beyond the decoder's bound, either sign, 8
/// decimals or fewer (truncated).
fn rate_text() -> impl Strategy<Value = String> {
    (-150_000_000i64..150_000_000, 0usize..8).prop_map(|(v, cut)| {
        let s = format!(
            "{}{}.{:08}",
            if v < 0 { "-" } else { "" },
            v.unsigned_abs() / 100_000_000,
            v.unsigned_abs() % 100_000_000
        );
        s[..s.len() - cut].to_string()
    })
}

/// Reference for a plain decimal `[-]int[.frac]`: (negative, int, frac digits), or `None`.
fn split_decimal(s: &str) -> Option<(bool, u128, String)> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|c| c.is_ascii_digit())
        && (frac.is_empty() != body.contains('.'))
        && frac.bytes().all(|c| c.is_ascii_digit())
        && int.len() <= 20;
    ok.then(|| (neg, int.parse().unwrap(), frac.to_string()))
}

/// Reference rounding of a computed price onto a 0.10 tick: ticks = round_half_up(value × 10).
fn ref_ticks(s: &str) -> Option<i64> {
    let (neg, int, frac) = split_decimal(s)?;
    if neg || frac.len() > 30 {
        return None;
    }
    let digits = format!("{frac:0<31}");
    let tenths = int * 10 + u128::from(digits.as_bytes()[0] - b'0');
    let rest: u128 = digits[1..].parse().unwrap();
    let half = 5 * 10u128.pow(29);
    let t = tenths + u128::from(rest >= half);
    i64::try_from(t).ok().filter(|&t| t > 0)
}

/// Reference for the funding rate: exact 10^-8 units within the decoder's bound (`None`: more
/// decimals than that, not a decimal, beyond the bound); `""` is 0.
fn ref_rate(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let (neg, int, frac) = split_decimal(s)?;
    let (kept, rest) = frac.split_at(frac.len().min(8));
    if rest.bytes().any(|c| c != b'0') {
        return None;
    }
    let v = int * 100_000_000 + format!("{kept:0<8}").parse::<u128>().unwrap();
    let v = i64::try_from(v).ok()?;
    let v = if neg { -v } else { v };
    (v.abs() <= feeds::decode::MAX_FUNDING_RATE_E8).then_some(v)
}

proptest! {
    #![proptest_config(config(1_000))]

    /// `markPriceUpdate`s with arbitrary decimals: decoded exactly as the reference says when it
    /// accepts every field, a typed error otherwise (never a panic), and the event's bytes
    /// round-trip.
    #[test]
    fn mark_prices_decode_as_the_reference_says_and_round_trip(
        p in decimal_text(),
        i in decimal_text(),
        r in prop_oneof![6 => rate_text(), 2 => decimal_text(), 1 => Just(String::new())],
        e_ms in 0u64..4_000_000_000_000,
        t_ms in prop_oneof![0u64..4_000_000_000_000, Just(0), Just(u64::MAX)],
        enveloped in any::<bool>(),
    ) {
        let payload = format!(
            r#"{{"e":"markPriceUpdate","E":{e_ms},"s":"BTCUSDT","p":"{p}","P":"1.0","i":"{i}","r":"{r}","T":{t_ms}}}"#
        );
        let json = if enveloped {
            format!(r#"{{"stream":"btcusdt@markPrice@1s","data":{payload}}}"#)
        } else {
            payload
        };
        let mut d = Decoder::new(&[futures()]);
        let mut buf = json.clone().into_bytes();
        let got = d.decode(&mut buf, 42);
        check_decoded(&d, &got)?;
        let t_ok = i64::try_from(t_ms).ok().and_then(|t| t.checked_mul(1_000_000)).is_some();
        let want = match (ref_ticks(&p), ref_ticks(&i), ref_rate(&r), t_ok) {
            (Some(mark), Some(index), Some(rate), true) => Some(engine::MarkPriceUpdate {
                mark_price: mark,
                index_price: index,
                funding_rate_e8: rate,
                next_funding_ms: t_ms as i64,
            }),
            _ => None,
        };
        match (&got, want) {
            (Ok(Message::Event(ev)), Some(m)) => {
                prop_assert_eq!(ev.as_mark_price(), Some(m), "{}", json);
                prop_assert_eq!(ev.venue_time_ns, e_ms as i64 * 1_000_000);
                prop_assert_eq!(ev.local_time_ns, 42);
                let back = Event::from_bytes(&ev.to_bytes());
                prop_assert_eq!(back.and_then(|e| e.as_mark_price()), Some(m));
            }
            (Err(_), None) => {}
            _ => prop_assert!(false, "{}: decoded {:?}, reference {:?}", json, got, want),
        }
    }

    #[test]
    fn mutated_mark_prices_never_panic_the_decoder(
        neg in any::<bool>(),
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        let r = if neg { "-0.00012500" } else { "0.00038167" };
        let msg = format!(
            r#"{{"stream":"btcusdt@markPrice@1s","data":{{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"{r}","T":1562306400000}}}}"#
        );
        let data = mutate(msg.into_bytes(), &muts);
        decode_everywhere(&data)?;
    }
}

#[test]
fn every_sampled_real_line_decodes() {
    let mut d = Decoder::new(&[futures()]);
    for l in real_lines() {
        let mut buf = l.clone();
        let r = d.decode(&mut buf, 1);
        assert!(r.is_ok(), "{r:?}: {}", String::from_utf8_lossy(l));
    }
}

// ---------------------------------------------------------------------------------------------
// (d) book sync on random id chains

#[derive(Debug, Clone)]
enum SyncOp {
    /// A diff spanning `span + 1` ids; `link` says how it relates to the previous one.
    Diff { link: Link, span: u64 },
    /// A snapshot `back` ids behind the newest diff id (0: exactly at it).
    Snapshot { back: u64 },
    /// A snapshot at the newest buffered diff, which must bridge it.
    SnapshotAtTip,
}

#[derive(Debug, Clone, Copy)]
enum Link {
    Chained,
    /// Skips `n` ids forward.
    Skip(u64),
    /// Repeats / goes back `n` ids (a replayed or reordered diff).
    Back(u64),
    /// Futures only: right `U`, wrong `pu`.
    BadPu,
}

fn sync_op() -> impl Strategy<Value = SyncOp> {
    let link = prop_oneof![
        20 => Just(Link::Chained),
        2 => (1u64..5).prop_map(Link::Skip),
        1 => (0u64..5).prop_map(Link::Back),
        1 => Just(Link::BadPu),
    ];
    prop_oneof![
        20 => (link, 0u64..4).prop_map(|(link, span)| SyncOp::Diff { link, span }),
        2 => (0u64..12).prop_map(|back| SyncOp::Snapshot { back }),
        1 => Just(SyncOp::SnapshotAtTip),
    ]
}

/// Records what the sync machine emits and checks the contract as events arrive.
struct SyncChecker {
    rule: SyncRule,
    /// The latest snapshot, while no diff has been applied on top of it.
    bridging: Option<u64>,
    /// `u` of the last diff applied since the latest snapshot.
    last_applied: Option<u64>,
    /// A book-invalid has been emitted and no snapshot has arrived since.
    invalid: bool,
    /// Diff levels passed through for the diff being applied.
    levels_in_diff: usize,
    applied: Vec<DepthHeader>,
    violations: Vec<String>,
}

impl SyncChecker {
    fn new(rule: SyncRule) -> SyncChecker {
        SyncChecker {
            rule,
            bridging: None,
            last_applied: None,
            invalid: false,
            levels_in_diff: 0,
            applied: Vec::new(),
            violations: Vec::new(),
        }
    }
}

impl SyncSink for SyncChecker {
    fn event(&mut self, ev: &Event) {
        match ev.kind() {
            EventKind::BookReset => {
                self.bridging = Some(ev.status_update_id());
                self.last_applied = None;
                self.invalid = false;
            }
            EventKind::BookInvalid => {
                self.invalid = true;
                self.bridging = None;
                self.last_applied = None;
            }
            EventKind::BookValid => {
                if self.invalid || self.bridging.is_none() {
                    self.violations
                        .push(format!("book-valid outside a bridge: {ev:?}"));
                }
            }
            EventKind::BookLevel => {
                let l = ev.as_level().expect("level");
                if !l.snapshot {
                    if self.invalid {
                        self.violations
                            .push(format!("diff level emitted after a gap: {l:?}"));
                    }
                    self.levels_in_diff += 1;
                }
            }
            k => self.violations.push(format!("unexpected event kind {k:?}")),
        }
    }

    fn diff_applied(&mut self, hdr: &DepthHeader) {
        if self.invalid {
            self.violations.push(format!(
                "diff applied after a gap, before a snapshot: {hdr:?}"
            ));
        }
        match (self.bridging, self.last_applied) {
            (Some(l), None) => {
                let target = match self.rule {
                    SyncRule::Futures => l,
                    SyncRule::Spot => l + 1,
                };
                if !(hdr.first_id <= target && target <= hdr.final_id) {
                    self.violations
                        .push(format!("first diff {hdr:?} does not bridge snapshot {l}"));
                }
            }
            (_, Some(prev)) => {
                let chained = match self.rule {
                    SyncRule::Futures => hdr.prev_final_id == Some(prev),
                    SyncRule::Spot => hdr.first_id == prev + 1,
                };
                if !chained {
                    self.violations
                        .push(format!("applied diff {hdr:?} does not chain on u={prev}"));
                }
            }
            (None, None) => self
                .violations
                .push(format!("diff applied with no snapshot: {hdr:?}")),
        }
        // Each of our diffs carries `(final_id - first_id + 1) % 4` levels; see `levels_for`.
        let want = ((hdr.final_id - hdr.first_id + 1) % 4) as usize;
        if self.levels_in_diff != want {
            self.violations.push(format!(
                "{hdr:?} applied with {} levels, expected {want}",
                self.levels_in_diff
            ));
        }
        self.levels_in_diff = 0;
        self.bridging = None;
        self.last_applied = Some(hdr.final_id);
        self.applied.push(*hdr);
    }
}

fn levels_for(first: u64, last: u64, snapshot: bool) -> Vec<Event> {
    let n = if snapshot { 3 } else { (last - first + 1) % 4 };
    (0..n)
        .map(|i| {
            let level = LevelUpdate {
                side: if i % 2 == 0 { Side::Bid } else { Side::Ask },
                price: 1_000 + i as i64,
                qty: 1,
                update_id: last,
                last_in_msg: i + 1 == n,
                snapshot,
            };
            Event::level(0, 0, 0, level)
        })
        .collect()
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn sync_never_applies_across_a_gap(
        spot_rule in any::<bool>(),
        ops in prop::collection::vec(sync_op(), 1..120),
    ) {
        let rule = if spot_rule { SyncRule::Spot } else { SyncRule::Futures };
        let mut sync = BookSync::new(rule, 0);
        let mut ck = SyncChecker::new(rule);
        // `u` of the newest diff sent, and whether that diff is waiting in the buffer.
        let mut last_u: u64 = 1_000;
        let mut tip_buffered = false;
        for op in &ops {
            match *op {
                SyncOp::Diff { link, span } => {
                    let (first, pu) = match link {
                        Link::Chained => (last_u + 1, last_u),
                        Link::Skip(n) => (last_u + 1 + n, last_u + n),
                        Link::Back(n) => (last_u - n, last_u - n - 1),
                        Link::BadPu => (last_u + 1, last_u - 1),
                    };
                    let last = first + span;
                    let hdr = DepthHeader {
                        instrument: 0,
                        first_id: first,
                        final_id: last,
                        prev_final_id: (rule == SyncRule::Futures).then_some(pu),
                        venue_time_ns: 0,
                        local_time_ns: 0,
                    };
                    let before = sync.state();
                    let applied_before = ck.applied.len();
                    let out = sync.on_diff(&hdr, &levels_for(first, last, false), &mut ck);
                    let applied = ck.applied.len() - applied_before;
                    match out {
                        DiffOutcome::Applied => {
                            prop_assert_eq!(applied, 1);
                            prop_assert_eq!(sync.state(), SyncState::Synced { last_final_id: last });
                        }
                        DiffOutcome::Gap => {
                            prop_assert_eq!(applied, 0);
                            prop_assert!(!matches!(before, SyncState::AwaitingSnapshot));
                            prop_assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
                        }
                        DiffOutcome::Buffered => {
                            prop_assert_eq!(applied, 0);
                            prop_assert_eq!(before, SyncState::AwaitingSnapshot);
                        }
                        DiffOutcome::Stale => {
                            prop_assert_eq!(applied, 0);
                            prop_assert!(matches!(before, SyncState::Bridging { .. }), "stale outside a bridge: {:?}", before);
                        }
                    }
                    // A chained diff onto a synced book must apply.
                    if let (SyncState::Synced { last_final_id }, Link::Chained) = (before, link) {
                        if last_final_id == last_u {
                            prop_assert_eq!(out, DiffOutcome::Applied);
                        }
                    }
                    // The snapshot-at-tip check below needs the newest diff to be the only one
                    // reaching the newest id, and to be waiting in the buffer.
                    tip_buffered = last > last_u && matches!(out, DiffOutcome::Buffered | DiffOutcome::Gap);
                    last_u = last_u.max(last);
                }
                SyncOp::Snapshot { back } => {
                    let id = last_u - back;
                    let hdr = SnapshotHeader { instrument: 0, last_update_id: id, venue_time_ns: 0, local_time_ns: 0 };
                    sync.on_snapshot(&hdr, &levels_for(0, 0, true), &mut ck);
                    tip_buffered = false;
                }
                SyncOp::SnapshotAtTip => {
                    // Futures bridge on U <= L <= u, spot on U <= L + 1 <= u: a snapshot at the
                    // newest buffered diff (one before it on spot) is bridged by that diff.
                    let id = match rule {
                        SyncRule::Futures => last_u,
                        SyncRule::Spot => last_u - 1,
                    };
                    let hdr = SnapshotHeader { instrument: 0, last_update_id: id, venue_time_ns: 0, local_time_ns: 0 };
                    let was_waiting = sync.needs_snapshot();
                    let st = sync.on_snapshot(&hdr, &levels_for(0, 0, true), &mut ck);
                    if was_waiting && tip_buffered {
                        prop_assert_eq!(st, SyncState::Synced { last_final_id: last_u });
                    }
                    tip_buffered = false;
                }
            }
            prop_assert!(ck.violations.is_empty(), "{:#?}", ck.violations);
        }
        // Every applied diff after the first of a sync chains on the previous one: checked in
        // the sink; the counters agree with it.
        prop_assert_eq!(sync.stats().diffs_applied, ck.applied.len() as u64);
    }
}

#[test]
fn the_sync_checker_catches_what_it_should() {
    // The checker itself: a diff applied after a book-invalid, or one that does not chain, is a
    // violation (so the property above would fail if the sync machine did either). Spans are
    // multiples of 4 ids, so no levels are expected with them (see `levels_for`).
    let diff = |first, last, pu| DepthHeader {
        instrument: 0,
        first_id: first,
        final_id: last,
        prev_final_id: Some(pu),
        venue_time_ns: 0,
        local_time_ns: 0,
    };
    let mut ck = SyncChecker::new(SyncRule::Futures);
    ck.event(&Event::book_reset(0, 0, 0, 100));
    ck.event(&Event::book_valid(0, 0, 0, 100));
    ck.diff_applied(&diff(93, 104, 92));
    assert!(ck.violations.is_empty(), "{:?}", ck.violations);
    ck.diff_applied(&diff(106, 109, 105));
    assert_eq!(ck.violations.len(), 1, "pu 105 after u 104 must be flagged");
    ck.event(&Event::book_invalid(
        0,
        0,
        0,
        engine::BookStatusReason::SequenceGap,
        108,
        109,
    ));
    ck.diff_applied(&diff(109, 112, 108));
    assert!(ck.violations.len() >= 2, "{:?}", ck.violations);
}
