//! The fuzz targets' checks on the stable toolchain (CI has no nightly): every committed
//! regression input, seeds cut from the real recordings the way `feeds/fuzz/seed.py` cuts them,
//! and random and mutated inputs from proptest. A check that panics fails the test with the
//! input that made it.

use proptest::prelude::*;
use ringmaker_fuzz_checks::{book_sync, decimal, decode_any, recording_line, ws_frame};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `regressions/<target>/`.
fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out.into_iter().map(|x| x.1).collect()
}

/// The first lines of the real recordings: their payloads, and whole chunks of lines.
fn recording_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut payloads = Vec::new();
    let mut chunks = Vec::new();
    for path in [test_support::usdm(), test_support::spot()[0].clone()] {
        let text = test_support::recording_text(&path);
        let lines: Vec<&str> = text.lines().take(3_000).collect();
        chunks.push(lines[..40].join("\n").into_bytes());
        for l in &lines {
            let Some((_, payload)) = l.split_once(' ') else {
                continue;
            };
            // The REST snapshot is large; its first 3,000 bytes still exercise every path.
            payloads.push(payload.as_bytes()[..payload.len().min(3_000)].to_vec());
        }
    }
    (payloads, chunks)
}

/// `markPriceUpdate` payloads (the shipped recordings have none): the docs' example from
/// `tests/data/binance-fixtures`, compact, bare and enveloped, with negative funding, COIN-M's
/// perpetual (`ps`) and delivery (`"r":""`, `T` 0) shapes, as `seed.py` writes them.
fn mark_price_seeds() -> Vec<Vec<u8>> {
    let fixture =
        std::fs::read_to_string(fuzz_dir().join(
            "../../tests/data/binance-fixtures/futures/market_data_json/mark_price_stream.json",
        ))
        .unwrap();
    let compact: String = fixture.split_whitespace().collect();
    let mut out = vec![
        fixture.clone().into_bytes(),
        compact.clone().into_bytes(),
        format!(r#"{{"stream":"btcusdt@markPrice@1s","data":{compact}}}"#).into_bytes(),
        compact.replace("0.00038167", "-0.00012500").into_bytes(),
        compact.replace("\"0.00038167\"", "\"\"").into_bytes(),
    ];
    out.push(
        br#"{"stream":"btcusd_perp@markPrice","data":{"e":"markPriceUpdate","E":1596095725000,"s":"BTCUSD_PERP","ps":"BTCUSD","p":"10934.62615417","P":"10962.17178236","i":"10933.62615417","r":"0.00010000","T":1596096000000}}"#.to_vec(),
    );
    out.push(
        br#"{"e":"markPriceUpdate","E":1596095725000,"s":"ETHUSDT","p":"1093.62615417","P":"1096.17178236","i":"1093.62615417","r":"","T":0}"#.to_vec(),
    );
    out
}

#[test]
fn mark_price_seeds_pass_decode_checks() {
    let seeds = mark_price_seeds();
    for s in &seeds {
        decode_any::fuzz(s);
    }
    // They do decode, into mark prices, on the checks' futures instrument.
    let inst = engine::Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
    let mut d = feeds::Decoder::new(&[inst]);
    for s in &seeds[..5] {
        let mut b = s.clone();
        match d.decode(&mut b, 1) {
            Ok(feeds::Message::Event(e)) => assert!(e.as_mark_price().is_some()),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(s)),
        }
    }
}

#[test]
fn committed_regressions_pass_their_checks() {
    let mut n = 0;
    for (target, check) in [
        ("decode_any", decode_any::fuzz as fn(&[u8])),
        ("decimal", decimal::fuzz),
        ("book_sync", book_sync::fuzz),
        ("recording_line", recording_line::fuzz),
        ("ws_frame", ws_frame::fuzz),
    ] {
        for input in regressions(target) {
            check(&input);
            n += 1;
        }
    }
    assert!(n >= 3, "the committed regressions were found ({n})");
}

#[test]
fn recording_seeds_pass_decode_and_reader_checks() {
    let (payloads, chunks) = recording_seeds();
    assert!(payloads.len() > 5_000);
    for p in &payloads {
        decode_any::fuzz(p);
    }
    for c in &chunks {
        recording_line::fuzz(c);
    }
}

/// Decimal strings of every grid the seeds use, as `seed.py` builds them.
#[test]
fn decimal_seeds_pass() {
    let grids = [
        (1u64, 10u8),
        (2, 1),
        (3, 1),
        (5, 1),
        (8, 1),
        (0, 1),
        (18, 7),
    ];
    let values: [&[u8]; 13] = [
        b"61800.20",
        b"0.014",
        b"61837.63000000",
        b"3.78826000",
        b"0.00000100",
        b"0",
        b"1e5",
        b"18446744073709551615",
        b"-1.0",
        b".5",
        b"5.",
        b"9223372036854775807",
        b"",
    ];
    for (scale, mant) in grids {
        for v in values {
            let mut input = vec![scale as u8];
            input.extend_from_slice(&((mant as u64).saturating_sub(1) << 1).to_le_bytes());
            input.extend_from_slice(v);
            decimal::fuzz(&input);
        }
    }
}

/// A server's stream as `seed.py` frames it for `ws_frame`: real payloads as text frames (every
/// third in three fragments with a ping between the first two, every fourth followed by a
/// pong), then a close frame.
fn ws_stream(payloads: &[Vec<u8>]) -> Vec<u8> {
    fn frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
        out.push(if fin { 0x80 } else { 0 } | opcode);
        match payload.len() {
            n @ 0..=125 => out.push(n as u8),
            n @ 126..=0xFFFF => {
                out.push(126);
                out.extend((n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend((n as u64).to_be_bytes());
            }
        }
        out.extend(payload);
    }
    let mut out = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        if i % 3 == 0 {
            let (a, rest) = p.split_at(p.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            frame(&mut out, false, 1, a);
            frame(&mut out, true, 9, b"ping");
            frame(&mut out, false, 0, b);
            frame(&mut out, true, 0, c);
        } else {
            frame(&mut out, true, 1, p);
        }
        if i % 4 == 0 {
            frame(&mut out, true, 10, &(i as u32).to_be_bytes());
        }
    }
    frame(&mut out, true, 8, b"\x03\xe8bye");
    out
}

/// Streams of real payloads in frames, under every limit and read size: the reader and
/// tungstenite agree, message for message (and the limits that some payloads exceed stop both).
#[test]
fn ws_frame_seeds_pass() {
    let (payloads, _) = recording_seeds();
    let mut streams = 0;
    for group in payloads.chunks(12).take(10) {
        let stream = ws_stream(group);
        for cfg in 0u8..64 {
            let mut input = vec![cfg];
            input.extend(&stream);
            ws_frame::fuzz(&input);
        }
        streams += 1;
    }
    assert_eq!(streams, 10);
    // The largest limit takes the whole stream: every message and the close come out.
    let stream = ws_stream(&payloads[..12]);
    let mut r = feeds::net::frame::FrameReader::with_capacity(1 << 20);
    let (out, err) = ws_frame::read_all(&mut r, &stream, 7);
    assert_eq!(err, None);
    assert_eq!(
        out.len(),
        12 + 4 + 3 + 1,
        "messages, pings, pongs and the close"
    );
    assert_eq!(
        out.last(),
        Some(&ws_frame::Owned::Close(Some((1000, "bye".into()))))
    );
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn random_bytes_never_break_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_any::fuzz(&data);
        decimal::fuzz(&data);
        ws_frame::fuzz(&data);
    }

    #[test]
    fn mutated_real_messages_never_break_the_decoders(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        thread_local! {
            static SEEDS: Vec<Vec<u8>> = recording_seeds().0;
        }
        let mut data = SEEDS.with(|s| pick.get(s).clone());
        for (at, byte, op) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match op {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => {
                    data.remove(i);
                }
            }
        }
        decode_any::fuzz(&data);
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_mark_prices_never_break_the_decoders(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        thread_local! {
            static SEEDS: Vec<Vec<u8>> = mark_price_seeds();
        }
        let mut data = SEEDS.with(|s| pick.get(s).clone());
        for (at, byte, op) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match op {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => {
                    data.remove(i);
                }
            }
        }
        decode_any::fuzz(&data);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_sync_sequences_keep_the_book_consistent(data in proptest::collection::vec(any::<u8>(), 1..400)) {
        book_sync::fuzz(&data);
    }

    #[test]
    fn random_recordings_never_break_the_reader(data in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        recording_line::fuzz(&data);
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_websocket_streams_never_break_the_frame_reader(
        cfg in any::<u8>(),
        start in 0usize..60,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
    ) {
        thread_local! {
            static PAYLOADS: Vec<Vec<u8>> = recording_seeds().0;
        }
        let stream = PAYLOADS.with(|p| ws_stream(&p[start..start + 5]));
        let mut data = vec![cfg];
        data.extend(stream);
        for (at, byte, op) in edits {
            let i = 1 + at.index(data.len() - 1);
            match op {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => {
                    if data.len() > 2 {
                        data.remove(i);
                    }
                }
            }
        }
        ws_frame::fuzz(&data);
    }
}
