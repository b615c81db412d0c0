//! The WebSocket frame codec allocates nothing after construction: a counting global allocator
//! (per thread, only inside the counted window) watches a reader take real depth updates in
//! tungstenite-encoded server frames — some fragmented, with pings between the fragments — in
//! TLS-record-sized reads, then again after `clear()` (a reconnect), a writer answer pings and
//! send requests, and the reader take arbitrary bytes.
//!
//! This is a test binary of its own because a global allocator is per binary.

use feeds::net::frame::{Frame, FrameReader, FrameWriter};
use proptest::prelude::*;
use std::io::{self, Read};
use test_support::alloc::{Counter, CountingAlloc};
use tungstenite::protocol::frame::coding::OpCode;
use tungstenite::protocol::frame::{Frame as TFrame, FrameHeader};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn server_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    let header = FrameHeader {
        is_final: fin,
        opcode: OpCode::from(opcode),
        ..FrameHeader::default()
    };
    TFrame::from_payload(header, payload.to_vec())
        .format(out)
        .unwrap();
}

/// The first `n` payloads of the USDⓈ-M recording as server frames: every fifth split in three
/// fragments with a ping between the first two, every seventh followed by a ping. Returns the
/// bytes, the payloads and the number of pings.
fn stream(n: usize) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
    let text = test_support::recording_text(&test_support::usdm());
    let payloads: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(_, json)| json.as_bytes().to_vec())
        .filter(|p| p.len() < 60_000)
        .take(n)
        .collect();
    let mut bytes = Vec::new();
    let mut pings = 0;
    for (i, p) in payloads.iter().enumerate() {
        if i % 5 == 0 && p.len() > 2 {
            let (a, rest) = p.split_at(p.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            server_frame(&mut bytes, false, 1, a);
            server_frame(&mut bytes, true, 9, b"ping");
            server_frame(&mut bytes, false, 0, b);
            server_frame(&mut bytes, true, 0, c);
            pings += 1;
        } else {
            server_frame(&mut bytes, true, 1, p);
        }
        if i % 7 == 0 {
            server_frame(&mut bytes, true, 9, &(i as u64).to_be_bytes());
            pings += 1;
        }
    }
    (bytes, payloads, pings)
}

/// Hands out at most `max` bytes a read: a TLS record's plaintext.
struct Records<'a> {
    data: &'a [u8],
    max: usize,
}

impl Read for Records<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.max.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads everything, answering each ping with a pong into `out`; returns (messages, pings, sum
/// of the text bytes' values, pong bytes written).
fn read_everything(
    r: &mut FrameReader,
    w: &mut FrameWriter,
    bytes: &[u8],
    out: &mut [u8],
) -> (usize, usize, u64, usize) {
    let mut src = Records {
        data: bytes,
        max: 16 * 1024,
    };
    let (mut msgs, mut pings, mut sum, mut pong_bytes) = (0, 0, 0u64, 0);
    loop {
        while let Some(f) = r.next().expect("valid frames") {
            match f {
                Frame::Text(p) => {
                    msgs += 1;
                    sum += p.iter().map(|&b| u64::from(b)).sum::<u64>();
                }
                Frame::Ping(p) => {
                    pings += 1;
                    pong_bytes += w.pong(p, out).expect("pong fits");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        if r.fill(&mut src).expect("room") == 0 {
            break;
        }
    }
    (msgs, pings, sum, pong_bytes)
}

#[test]
fn reading_real_depth_updates_allocates_nothing() {
    let (bytes, payloads, n_pings) = stream(3_000);
    assert_eq!(payloads.len(), 3_000);
    let want_sum: u64 = payloads.iter().flatten().map(|&b| u64::from(b)).sum();
    let mut r = FrameReader::with_capacity(64 * 1024);
    let mut w = FrameWriter::new();
    let mut out = [0u8; 256];
    for pass in 0..2 {
        let counter = Counter::start();
        let got = read_everything(&mut r, &mut w, &bytes, &mut out);
        let counts = counter.stop();
        assert_eq!(
            (got.0, got.1, got.2),
            (payloads.len(), n_pings, want_sum),
            "pass {pass}"
        );
        assert!(got.3 > 0);
        assert!(counts.is_zero(), "pass {pass}: allocator calls {counts:?}");
        r.clear();
    }
}

#[test]
fn writing_client_frames_allocates_nothing() {
    let mut w = FrameWriter::new();
    let mut buf = [0u8; 4096];
    let mut sink = vec![0u8; 64 * 1024];
    let big = vec![b'x'; 5_000];
    let counter = Counter::start();
    let mut total = 0;
    total += w
        .text(
            br#"{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}"#,
            &mut buf,
        )
        .unwrap();
    total += w.pong(b"1723161255030", &mut buf).unwrap();
    total += w.close(1000, "bye", &mut buf).unwrap();
    let mut cursor = io::Cursor::new(&mut sink[..]);
    w.write_text(&mut cursor, b"{\"id\":2}").unwrap();
    w.write_text(&mut cursor, &big).unwrap(); // Over the 1 KiB stack buffer: written in pieces.
    w.write_pong(&mut cursor, b"ping").unwrap();
    w.write_close(&mut cursor, 1001, "").unwrap();
    let written = cursor.position();
    let counts = counter.stop();
    assert!(counts.is_zero(), "allocator calls {counts:?}");
    assert_eq!(total, (6 + 56) + (6 + 13) + (6 + 5));
    assert_eq!(written, (6 + 8) + (8 + 5_000) + (6 + 4) + (6 + 2));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes, pushed or read in arbitrary pieces: no allocation, whatever comes out.
    #[test]
    fn arbitrary_bytes_allocate_nothing(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        max in 0usize..1000,
        piece in 1usize..700,
        via_read in any::<bool>(),
    ) {
        let mut r = FrameReader::with_capacity(max);
        let counter = Counter::start();
        let mut src = Records { data: &bytes, max: piece };
        let mut rest = &bytes[..];
        let mut frames = 0usize;
        'outer: loop {
            loop {
                match r.next() {
                    Ok(Some(_)) => frames += 1,
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
            let n = if via_read {
                r.fill(&mut src).expect("in-memory read with room")
            } else {
                let n = r.push(&rest[..piece.min(rest.len())]);
                rest = &rest[n..];
                n
            };
            if n == 0 {
                break;
            }
        }
        let counts = counter.stop();
        prop_assert!(counts.is_zero(), "allocator calls {:?} ({} frames)", counts, frames);
    }
}
