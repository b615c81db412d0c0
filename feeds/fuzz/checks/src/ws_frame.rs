//! Arbitrary bytes as a server's WebSocket stream, read by `feeds::net::frame::FrameReader`.
//!
//! Byte 0 picks the reader's limit (bits 0–2: 0, 16, 125, 300, 1,000, 4,096, 70,000 or 1 MiB
//! bytes) and the size of the reads that feed it (bits 3–5: 1, 2, 3, 7, 64, 500, 16,384 bytes
//! or all at once); the rest is the stream.
//!
//! Checked: no panic; the buffer never moves or grows; an error comes back when asked again;
//! nothing returned is over the limit (control payloads over 125 bytes, close codes that may not
//! be sent); the same frames and the same error whatever the read sizes (against one read of
//! everything). And against tungstenite (client role, the same limit) on the same bytes: each
//! message the reader returns, tungstenite returns too, equal (a close code that tungstenite
//! refuses comes back from it as 1002, and a text message that is not UTF-8 ends the comparison:
//! the reader leaves that check to simd-json); when the reader stops at the end of the bytes,
//! tungstenite has no further message either; when it stops on a protocol error, tungstenite
//! fails too, except where it is more lenient (a control frame announcing an extended length
//! that is at most 125, a close code that may not be sent).
//!
//! Then the writer: the bytes after byte 0 (up to 125 of them) as a pong's payload, and their
//! lossy UTF-8 as a text frame, read back by a server-role tungstenite.

use feeds::net::frame::{
    close_code_is_valid, Frame, FrameError, FrameReader, FrameWriter, MAX_CONTROL_PAYLOAD,
};
use std::cell::RefCell;
use std::io::{self, Cursor, Read, Write};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

const LIMITS: [usize; 8] = [0, 16, 125, 300, 1_000, 4_096, 70_000, 1 << 20];
const PIECES: [usize; 8] = [1, 2, 3, 7, 64, 500, 16_384, usize::MAX];

/// What the reader returned, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// A text message.
    Text(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame.
    Close(Option<(u16, String)>),
}

fn own(f: Frame<'_>) -> Owned {
    match f {
        Frame::Text(p) => Owned::Text(p.to_vec()),
        Frame::Binary(p) => Owned::Binary(p.to_vec()),
        Frame::Ping(p) => Owned::Ping(p.to_vec()),
        Frame::Pong(p) => Owned::Pong(p.to_vec()),
        Frame::Close(c) => Owned::Close(c.map(|(c, r)| (c, r.to_owned()))),
    }
}

/// Reads hand out `data` at most `piece` bytes at a time; writes are dropped.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.piece.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for Pieces<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Everything `r` returns from `data` read `piece` bytes at a time, and the error it stopped on.
pub fn read_all(
    r: &mut FrameReader,
    data: &[u8],
    piece: usize,
) -> (Vec<Owned>, Option<FrameError>) {
    let (cap, max) = (r.capacity(), r.max_message());
    let mut src = Pieces { data, piece };
    let mut out = Vec::new();
    let end = loop {
        let stop = loop {
            match r.next() {
                Ok(Some(f)) => out.push(own(f)),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if let Some(e) = stop {
            assert_eq!(r.next().map(|f| f.map(own)), Err(e), "an error repeats");
            break Some(e);
        }
        match r.fill(&mut src) {
            Ok(0) => break None,
            Ok(_) => {}
            Err(e) => panic!("fill with next() drained: {e}"),
        }
    };
    assert_eq!(
        (r.capacity(), r.max_message()),
        (cap, max),
        "the buffer never changes"
    );
    (out, end)
}

thread_local! {
    // One warm reader per limit, cleared between inputs, as a feed thread reuses its reader
    // across reconnects.
    static READERS: RefCell<Vec<FrameReader>> =
        RefCell::new(LIMITS.iter().map(|&m| FrameReader::with_capacity(m)).collect());
    static WHOLE: RefCell<Vec<FrameReader>> =
        RefCell::new(LIMITS.iter().map(|&m| FrameReader::with_capacity(m)).collect());
}

/// One fuzz input: must never panic (see the module docs for what is checked).
pub fn fuzz(data: &[u8]) {
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let (li, pi) = (usize::from(cfg & 7), usize::from((cfg >> 3) & 7));
    let max = LIMITS[li];
    let (out, err) = READERS.with_borrow_mut(|rs| {
        let r = &mut rs[li];
        r.clear();
        read_all(r, stream, PIECES[pi])
    });
    for f in &out {
        match f {
            Owned::Text(p) | Owned::Binary(p) => assert!(p.len() <= max, "{} > {max}", p.len()),
            Owned::Ping(p) | Owned::Pong(p) => assert!(p.len() <= MAX_CONTROL_PAYLOAD),
            Owned::Close(c) => assert!(c.as_ref().is_none_or(|(c, _)| close_code_is_valid(*c))),
        }
    }
    let whole = WHOLE.with_borrow_mut(|rs| {
        let r = &mut rs[li];
        r.clear();
        read_all(r, stream, usize::MAX)
    });
    assert_eq!(
        (&out, &err),
        (&whole.0, &whole.1),
        "read sizes change the result"
    );
    against_tungstenite(stream, max, &out, err);
    writer(stream);
}

/// What tungstenite (client role, limit `max`) reads from `stream`, compared with the reader's.
fn against_tungstenite(stream: &[u8], max: usize, out: &[Owned], err: Option<FrameError>) {
    let config = WebSocketConfig {
        max_message_size: Some(max),
        max_frame_size: None,
        ..WebSocketConfig::default()
    };
    let mut ws = WebSocket::from_raw_socket(
        Pieces {
            data: stream,
            piece: 4096,
        },
        Role::Client,
        Some(config),
    );
    for (i, ours) in out.iter().enumerate() {
        let theirs = match ws.read() {
            Ok(m) => m,
            // Not UTF-8 where a text message was under way: the reader does not check that.
            Err(tungstenite::Error::Utf8) => return,
            Err(e) => panic!("frame {i}: reader {ours:?}, tungstenite error {e}"),
        };
        let same = match (ours, &theirs) {
            (Owned::Text(p), Message::Text(s)) => p == s.as_bytes(),
            (Owned::Binary(p), Message::Binary(q))
            | (Owned::Ping(p), Message::Ping(q))
            | (Owned::Pong(p), Message::Pong(q)) => p == q,
            (Owned::Close(None), Message::Close(None)) => true,
            (Owned::Close(Some((c, r))), Message::Close(Some(f))) => {
                if CloseCode::from(*c).is_allowed() {
                    u16::from(f.code) == *c && f.reason == *r
                } else {
                    f.code == CloseCode::Protocol
                }
            }
            _ => false,
        };
        assert!(same, "frame {i}: reader {ours:?}, tungstenite {theirs:?}");
    }
    let after = ws.read();
    match err {
        None => assert!(after.is_err(), "tungstenite read more: {after:?}"),
        // tungstenite takes a ping / pong / close whose length field is 126 or 127 if the
        // extended length is at most 125, and answers a close code that may not be sent with
        // 1002 instead of failing.
        Some(FrameError::ControlTooLong { .. } | FrameError::BadCloseCode(_)) => {}
        Some(e) => assert!(
            after.is_err(),
            "reader stopped on {e:?}, tungstenite read {after:?}"
        ),
    }
}

/// The writer's pong and text frames, read back by a server-role tungstenite.
fn writer(stream: &[u8]) {
    let seed = stream
        .iter()
        .take(8)
        .fold(0u64, |s, &b| s.rotate_left(8) ^ u64::from(b));
    let mut w = FrameWriter::with_seed(seed);
    let ping = &stream[..stream.len().min(MAX_CONTROL_PAYLOAD)];
    let text = String::from_utf8_lossy(stream);
    let mut bytes = vec![0u8; 200];
    let n = w
        .pong(ping, &mut bytes)
        .expect("a pong of at most 125 bytes");
    bytes.truncate(n);
    w.write_text(&mut bytes, text.as_bytes())
        .expect("write to a Vec");
    let mut ws = WebSocket::from_raw_socket(
        Duplex {
            rd: Cursor::new(bytes),
        },
        Role::Server,
        None,
    );
    assert_eq!(ws.read().expect("pong"), Message::Pong(ping.to_vec()));
    assert_eq!(ws.read().expect("text"), Message::Text(text.into_owned()));
}

struct Duplex {
    rd: Cursor<Vec<u8>>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rd.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
