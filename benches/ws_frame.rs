//! Reading WebSocket text frames of depth-update size from a server: 1,000 real payloads.
//!
//! The first 1,000 `depthUpdate` lines of the USDⓈ-M recording, each encoded by tungstenite's
//! own encoder as a server's (unmasked) final text frame, lie in memory; a stream hands them out
//! at most 16 KiB a read (a TLS record's plaintext). One iteration reads all 1,000 messages
//! (`Throughput::Elements(1000)`) and looks at each payload's length.
//!
//! * `tungstenite` (baseline): `tungstenite::WebSocket::read` in the client role, as a
//!   tungstenite-based feed would read: a `Vec` per frame, a `String` per message (UTF-8
//!   checked).
//! * `frame_reader`: `feeds::net::frame::FrameReader` (64 KiB limit), `fill` then `next` until
//!   it has nothing: payloads borrowed from its buffer, not checked for UTF-8 (simd-json checks
//!   what it parses).
//! * `frame_reader_utf8`: the same, plus `std::str::from_utf8` over each payload, to show how
//!   much of the difference is tungstenite's UTF-8 check.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use feeds::net::frame::{Frame, FrameReader};
use ringmaker_benches::{load_recording, USDM_BTCUSDT};
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::Duration;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame as TFrame;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const N: usize = 1_000;
const RECORD: usize = 16 * 1024;

/// An in-memory stream over the encoded frames: reads hand out at most one TLS record's worth,
/// writes (none are expected) are dropped.
struct Stream<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Stream<'_> {
    fn rewind(&mut self) {
        self.pos = 0;
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.pos..];
        let n = rest.len().min(buf.len()).min(RECORD);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The first `N` depth-update payloads of the recording.
fn payloads() -> Vec<Vec<u8>> {
    let lines = load_recording(USDM_BTCUSDT);
    let out: Vec<Vec<u8>> = lines
        .into_iter()
        .map(|(_, json)| json)
        .filter(|j| j.windows(11).any(|w| w == b"depthUpdate"))
        .take(N)
        .collect();
    assert_eq!(out.len(), N, "the recording has {N} depth updates");
    out
}

/// Reads `N` messages with tungstenite; returns the sum of their lengths.
fn read_tungstenite(ws: &mut WebSocket<Stream<'_>>) -> usize {
    ws.get_mut().rewind();
    let mut total = 0;
    for _ in 0..N {
        match ws.read() {
            Ok(Message::Text(s)) => total += black_box(s).len(),
            other => panic!("tungstenite read {other:?}"),
        }
    }
    total
}

/// Reads everything with the frame reader; returns (messages, sum of their lengths).
fn read_frame_reader(r: &mut FrameReader, src: &mut Stream<'_>, utf8: bool) -> (usize, usize) {
    src.rewind();
    let (mut n, mut total) = (0, 0);
    loop {
        while let Some(f) = r.next().expect("valid frames") {
            match f {
                Frame::Text(p) => {
                    if utf8 {
                        assert!(std::str::from_utf8(p).is_ok());
                    }
                    n += 1;
                    total += black_box(p).len();
                }
                other => panic!("frame reader read {other:?}"),
            }
        }
        if r.fill(src).expect("room in the buffer") == 0 {
            return (n, total);
        }
    }
}

fn bench_ws_frame(c: &mut Criterion) {
    let payloads = payloads();
    let mut bytes = Vec::new();
    for p in &payloads {
        TFrame::message(p.clone(), OpCode::Data(Data::Text), true)
            .format(&mut bytes)
            .expect("encoding into a Vec");
    }
    let want: usize = payloads.iter().map(Vec::len).sum();
    let mut sizes: Vec<usize> = payloads.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    eprintln!(
        "ws_frame bench: {N} depth-update text frames, {} bytes framed, payloads {}..{} bytes \
         (median {})",
        bytes.len(),
        sizes[0],
        sizes[N - 1],
        sizes[N / 2]
    );

    // Both read the same messages, byte for byte.
    let mut ws = WebSocket::from_raw_socket(
        Stream {
            data: &bytes,
            pos: 0,
        },
        Role::Client,
        None,
    );
    let mut reader = FrameReader::with_capacity(64 * 1024);
    let mut src = Stream {
        data: &bytes,
        pos: 0,
    };
    {
        let mut got = Vec::new();
        loop {
            while let Some(f) = reader.next().expect("valid frames") {
                match f {
                    Frame::Text(p) => got.push(p.to_vec()),
                    other => panic!("{other:?}"),
                }
            }
            if reader.fill(&mut src).expect("room") == 0 {
                break;
            }
        }
        assert_eq!(got, payloads, "the frame reader reads the payloads");
        src.rewind();
        for p in &payloads {
            match ws.read() {
                Ok(Message::Text(s)) => assert_eq!(s.as_bytes(), &p[..]),
                other => panic!("tungstenite read {other:?}"),
            }
        }
    }
    assert_eq!(read_tungstenite(&mut ws), want);
    assert_eq!(read_frame_reader(&mut reader, &mut src, true), (N, want));

    let mut g = c.benchmark_group("ws_read_1000_depth_frames");
    g.throughput(Throughput::Elements(N as u64))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(60);
    g.bench_function("tungstenite", |b| b.iter(|| read_tungstenite(&mut ws)));
    g.bench_function("frame_reader", |b| {
        b.iter(|| read_frame_reader(&mut reader, &mut src, false))
    });
    g.bench_function("frame_reader_utf8", |b| {
        b.iter(|| read_frame_reader(&mut reader, &mut src, true))
    });
    g.finish();
}

criterion_group!(benches, bench_ws_frame);
criterion_main!(benches);
