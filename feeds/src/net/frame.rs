//! An RFC 6455 WebSocket frame codec for the client side of a market-data connection, with no
//! allocation after construction.
//!
//! [`FrameReader`] owns one byte buffer, sized once ([`FrameReader::with_capacity`]) and never
//! grown. Plaintext bytes go in at its tail ([`FrameReader::fill`] from any [`Read`], such as a
//! `rustls` stream, or [`FrameReader::push`] from a slice) and whole messages come out of
//! [`FrameReader::next`] as slices borrowed from that buffer: text and binary payloads mutable, so
//! that simd-json can parse them in place. A fragmented message is put together inside the buffer
//! (each continuation payload moved down to follow the previous one), with control frames allowed
//! between its fragments as the RFC allows.
//!
//! The reader checks what a client must check of a server's frames: no mask, no reserved bit (no
//! extension is ever negotiated), a known opcode, control frames final and of at most 125 bytes,
//! continuations only inside a fragmented message and only there, a 64-bit length with its top
//! bit clear, a close frame's code and reason. A message longer than the reader's limit is
//! [`FrameError::TooLarge`], reported as soon as the header that makes it so is read: the
//! connection is then to be closed, and the buffer does not grow. Every error is a
//! [`FrameError`]; no input makes the reader panic.
//!
//! **Text is not checked for UTF-8 here.** RFC 6455 requires it of a text message, but on the
//! hot path the JSON parser (simd-json) validates the bytes it parses anyway, so a second pass
//! would only cost time. A caller that hands a text payload to anything expecting `str` must
//! validate it first. A close frame's reason, which is returned as `&str`, is validated.
//!
//! [`FrameWriter`] writes the frames a client sends — text (subscription requests), pong (echoing
//! a ping's payload) and close — masked, into a caller's buffer or any [`Write`], without
//! allocating. See [`FrameWriter`] for where its masks come from.
//!
//! The handshake (an HTTP/1.1 upgrade) is not here.

use std::io::{self, Read, Write};

/// The largest payload of a control frame (ping, pong, close), RFC 6455 §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest header of a frame from a server: 2 bytes and a 64-bit extended length (a server
/// never masks, so no masking key).
pub const MAX_SERVER_HEADER: usize = 10;

/// The longest header of a frame from a client: [`MAX_SERVER_HEADER`] and a 4-byte masking key.
pub const MAX_CLIENT_HEADER: usize = 14;

/// Room the reader keeps beyond its message limit: enough for a whole control frame (2-byte
/// header, 125-byte payload) to arrive behind a fragmented message that is already at the limit,
/// and for the header of the continuation frame that ends such a message.
const SLACK: usize = 2 + MAX_CONTROL_PAYLOAD;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Whether a close code may be sent in (and so received in) a close frame: 1000–1003 and
/// 1007–1014 of the IANA registry (1004 is reserved; 1005, 1006 and 1015 must never be sent), and
/// 3000–4999 for libraries and applications. RFC 6455 §7.4.
pub fn close_code_is_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Why the frames from the server cannot be read. Each is a protocol violation (or a message
/// larger than this reader takes): the connection is to be closed. The reader is left as it was
/// before the frame at fault, so calling [`FrameReader::next`] again returns the same error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// One of the reserved bits RSV1–RSV3 is set (given here as the bits `0b0rrr`), and no
    /// extension was negotiated (§5.2).
    #[error("reserved bits {0:#05b} set with no extension negotiated")]
    ReservedBits(u8),
    /// An opcode RFC 6455 does not define (3–7, 11–15).
    #[error("unknown opcode {0:#x}")]
    BadOpcode(u8),
    /// A frame from the server with its mask bit set: a client must fail the connection (§5.1).
    #[error("masked frame from the server")]
    MaskedFrame,
    /// A control frame (opcode given) without the FIN bit: control frames are never fragmented.
    #[error("fragmented control frame (opcode {0:#x})")]
    FragmentedControl(u8),
    /// A control frame whose 7-bit length field is over 125 (126 and 127 announce an extended
    /// length, which a control frame never has).
    #[error("control frame (opcode {opcode:#x}) with length field {len} over 125")]
    ControlTooLong {
        /// The frame's opcode.
        opcode: u8,
        /// The 7-bit length field.
        len: u8,
    },
    /// A continuation frame with no fragmented message to continue.
    #[error("continuation frame outside a fragmented message")]
    UnexpectedContinuation,
    /// A new text or binary frame (opcode given) while a fragmented message awaits its
    /// continuation frames.
    #[error("new data frame (opcode {0:#x}) inside a fragmented message")]
    ExpectedContinuation(u8),
    /// A 64-bit payload length with its most significant bit set (§5.2).
    #[error("64-bit payload length with the top bit set")]
    BadLength,
    /// The message (all its fragments so far, this frame included) is longer than this reader
    /// takes.
    #[error("message of at least {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The message's length so far, in bytes.
        len: u64,
        /// The reader's limit, [`FrameReader::max_message`].
        max: usize,
    },
    /// A close frame with a 1-byte payload (a code takes two).
    #[error("close frame with a 1-byte payload")]
    BadClosePayload,
    /// A close frame with a code that may not be sent (see [`close_code_is_valid`]).
    #[error("close frame with invalid code {0}")]
    BadCloseCode(u16),
    /// A close frame whose reason is not UTF-8.
    #[error("close frame reason is not UTF-8")]
    CloseReasonNotUtf8,
    /// A frame after the server's close frame.
    #[error("frame after the close frame")]
    AfterClose,
}

/// One message or control frame from the server, borrowed from the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text message, reassembled if it came fragmented. **Not checked for UTF-8** (see the
    /// module docs). Mutable so that it can be parsed in place.
    Text(&'a mut [u8]),
    /// A binary message, reassembled if it came fragmented.
    Binary(&'a mut [u8]),
    /// A ping: answer it with a pong echoing its payload ([`FrameWriter::pong`]).
    Ping(&'a [u8]),
    /// A pong (unsolicited, or answering a ping of ours).
    Pong(&'a [u8]),
    /// The server's close frame: its status code and reason, if it gave a code. Nothing may
    /// follow it (a frame that does is [`FrameError::AfterClose`]).
    Close(Option<(u16, &'a str)>),
}

/// A fragmented text or binary message being put together at `buf[at..at + len]`.
#[derive(Debug, Clone, Copy)]
struct Fragments {
    opcode: u8,
    at: usize,
    len: usize,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    /// Header length in bytes.
    len: usize,
    /// Payload length in bytes.
    payload: u64,
}

/// What [`FrameReader::next`] found, as offsets into the buffer (so that the loop that finds it
/// holds no borrow).
enum Found {
    Data { opcode: u8, at: usize, len: usize },
    Control { opcode: u8, at: usize, len: usize },
}

/// Reads server frames out of a fixed buffer; see the [module docs](self).
///
/// The buffer holds [`max_message`](Self::max_message) bytes and a little more (so that a
/// control frame can arrive behind a fragmented message at the limit). Its layout: a fragmented
/// message being put together (if any), then the bytes not yet parsed (`start..end`), then free
/// room. [`fill`](Self::fill) and [`push`](Self::push) move the live bytes down to the front when
/// that frees more room than is left at the tail; when everything has been read, the next frame
/// starts at the front again without copying anything.
#[derive(Debug)]
pub struct FrameReader {
    buf: Box<[u8]>,
    max_message: usize,
    /// First byte not yet parsed.
    start: usize,
    /// End of the bytes received.
    end: usize,
    /// The fragmented message being put together; it lies before `start`.
    frag: Option<Fragments>,
    /// A close frame was returned.
    closed: bool,
}

impl FrameReader {
    /// A reader for messages of up to `max_message` bytes (payload, all fragments together). Its
    /// buffer, allocated here once, is `max_message` + 127 bytes.
    ///
    /// # Panics
    ///
    /// If that buffer cannot be allocated (or its size overflows `usize`).
    pub fn with_capacity(max_message: usize) -> FrameReader {
        let size = max_message
            .checked_add(SLACK)
            .expect("FrameReader buffer size overflows usize");
        FrameReader {
            buf: vec![0u8; size].into_boxed_slice(),
            max_message,
            start: 0,
            end: 0,
            frag: None,
            closed: false,
        }
    }

    /// The longest message this reader takes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The buffer's size in bytes (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes received and not yet returned: unparsed bytes and the fragments of an unfinished
    /// message.
    pub fn buffered(&self) -> usize {
        self.end - self.start + self.frag.map_or(0, |f| f.len)
    }

    /// Whether a fragmented message has begun and not ended.
    pub fn in_message(&self) -> bool {
        self.frag.is_some()
    }

    /// Whether the server's close frame has been returned.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Forgets everything buffered and the connection's state, for a new connection; the buffer
    /// is kept.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.frag = None;
        self.closed = false;
    }

    /// Reads once from `src` into the free room at the buffer's tail (moving the live bytes to
    /// the front first when that frees more room) and returns what `src.read` returned: the
    /// number of bytes read, 0 at the end of the stream, or its error (such as `WouldBlock` on a
    /// non-blocking stream).
    ///
    /// Call [`next`](Self::next) until it returns `Ok(None)` between calls: only complete frames
    /// left unread, or a frame that `next` reports as an error, can fill the buffer, and then this
    /// returns an [`io::ErrorKind::OutOfMemory`] error without reading.
    pub fn fill(&mut self, src: &mut impl Read) -> io::Result<usize> {
        self.make_room();
        let room = self.buf.len() - self.end;
        if room == 0 {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "WebSocket frame buffer full: read its frames (FrameReader::next) first",
            ));
        }
        // A `Read` that claims more than it was given would break the buffer's bounds.
        let n = src.read(&mut self.buf[self.end..])?.min(room);
        self.end += n;
        Ok(n)
    }

    /// Copies as much of `bytes` as fits into the buffer (moving the live bytes to the front
    /// first when that frees more room) and returns how many bytes it took.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        self.make_room();
        let n = bytes.len().min(self.buf.len() - self.end);
        self.buf[self.end..self.end + n].copy_from_slice(&bytes[..n]);
        self.end += n;
        n
    }

    /// Moves the live bytes (a fragmented message's, then the unparsed ones) to the front when
    /// that frees more room than the tail has, or when nothing is live.
    fn make_room(&mut self) {
        let frag_len = self.frag.map_or(0, |f| f.len);
        let unparsed = self.end - self.start;
        if frag_len == 0 && unparsed == 0 && self.frag.is_none() {
            self.start = 0;
            self.end = 0;
            return;
        }
        let tail = self.buf.len() - self.end;
        let reclaimable = self.buf.len() - frag_len - unparsed - tail;
        if reclaimable <= tail {
            return;
        }
        if let Some(f) = &mut self.frag {
            self.buf.copy_within(f.at..f.at + f.len, 0);
            f.at = 0;
        }
        self.buf.copy_within(self.start..self.end, frag_len);
        self.start = frag_len;
        self.end = frag_len + unparsed;
    }

    /// The next message or control frame, or `Ok(None)` if no complete one is buffered yet (then
    /// [`fill`](Self::fill) or [`push`](Self::push) more). Non-final fragments are taken in
    /// silently; their message comes out whole with its last fragment.
    ///
    /// An error leaves the reader as it was before the frame at fault (calling again gives the
    /// same error); the connection is then to be closed.
    #[allow(clippy::should_implement_trait)] // Not an iterator: each item borrows the reader.
    pub fn next(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        let found = loop {
            let avail = &self.buf[self.start..self.end];
            if self.closed && !avail.is_empty() {
                return Err(FrameError::AfterClose);
            }
            let Some(h) = parse_header(avail)? else {
                return Ok(None);
            };
            let total = h.len as u64 + h.payload;
            if h.opcode >= OP_CLOSE {
                // Header checks bound a control frame's payload by 125.
                let (at, len) = (self.start + h.len, h.payload as usize);
                if (avail.len() as u64) < total {
                    return Ok(None);
                }
                if h.opcode == OP_CLOSE {
                    parse_close(&self.buf[at..at + len])?;
                    self.closed = true;
                }
                self.consume(total as usize);
                break Found::Control {
                    opcode: h.opcode,
                    at,
                    len,
                };
            }
            let so_far = match (h.opcode, self.frag) {
                (OP_CONTINUATION, None) => return Err(FrameError::UnexpectedContinuation),
                (OP_CONTINUATION, Some(f)) => f.len as u64,
                (op, Some(_)) => return Err(FrameError::ExpectedContinuation(op)),
                (_, None) => 0,
            };
            let msg_len = so_far + h.payload;
            if msg_len > self.max_message as u64 {
                return Err(FrameError::TooLarge {
                    len: msg_len,
                    max: self.max_message,
                });
            }
            if (avail.len() as u64) < total {
                return Ok(None);
            }
            // Both fit in usize now: the message is within the limit, the frame within the data.
            let (at, len) = (self.start + h.len, h.payload as usize);
            let (opcode, at, len) = match self.frag {
                Some(f) => {
                    // Move this fragment's payload down behind the previous ones.
                    self.buf.copy_within(at..at + len, f.at + f.len);
                    (f.opcode, f.at, f.len + len)
                }
                None => (h.opcode, at, len),
            };
            if h.fin {
                self.frag = None;
                self.consume(total as usize);
                break Found::Data { opcode, at, len };
            }
            self.frag = Some(Fragments { opcode, at, len });
            self.consume(total as usize);
        };
        Ok(Some(match found {
            Found::Data { opcode, at, len } => {
                let payload = &mut self.buf[at..at + len];
                if opcode == OP_TEXT {
                    Frame::Text(payload)
                } else {
                    Frame::Binary(payload)
                }
            }
            Found::Control { opcode, at, len } => {
                let payload = &self.buf[at..at + len];
                match opcode {
                    OP_PING => Frame::Ping(payload),
                    OP_PONG => Frame::Pong(payload),
                    _ => Frame::Close(parse_close(payload)?),
                }
            }
        }))
    }

    /// Marks `n` bytes at `start` as read; when nothing is left (and no fragmented message is
    /// pending) the next bytes go to the front of the buffer. A frame just found keeps its offsets,
    /// and the caller's borrow of it keeps anything from writing there until it is dropped.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end && self.frag.is_none() {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// Parses and checks the header at the front of `b`; `Ok(None)` if it is not all there yet.
fn parse_header(b: &[u8]) -> Result<Option<Header>, FrameError> {
    let (b0, b1) = match b {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x7;
    let opcode = b0 & 0x0F;
    let len7 = b1 & 0x7F;
    if rsv != 0 {
        return Err(FrameError::ReservedBits(rsv));
    }
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin {
                return Err(FrameError::FragmentedControl(opcode));
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(FrameError::ControlTooLong { opcode, len: len7 });
            }
        }
        _ => return Err(FrameError::BadOpcode(opcode)),
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::MaskedFrame);
    }
    let (len, payload) = match len7 {
        126 => match b.get(2..4) {
            Some(&[x, y]) => (4, u64::from(u16::from_be_bytes([x, y]))),
            _ => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(x) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(x);
                let n = u64::from_be_bytes(be);
                if n >> 63 != 0 {
                    return Err(FrameError::BadLength);
                }
                (10, n)
            }
            None => return Ok(None),
        },
        n => (2, u64::from(n)),
    };
    Ok(Some(Header {
        fin,
        opcode,
        len,
        payload,
    }))
}

/// A close frame's payload: nothing, or a valid code and a UTF-8 reason.
fn parse_close(p: &[u8]) -> Result<Option<(u16, &str)>, FrameError> {
    match p {
        [] => Ok(None),
        [_] => Err(FrameError::BadClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_is_valid(code) {
                return Err(FrameError::BadCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| FrameError::CloseReasonNotUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

/// Why a client frame cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too short for the frame.
    #[error("frame of {need} bytes does not fit in {have}")]
    BufferTooSmall {
        /// The frame's length in bytes ([`client_frame_len`]).
        need: usize,
        /// The buffer's length.
        have: usize,
    },
    /// A control frame's payload (a pong's, or a close frame's code and reason) over 125 bytes.
    #[error("control frame payload of {0} bytes is over 125")]
    ControlTooLong(usize),
    /// A close code that may not be sent (see [`close_code_is_valid`]).
    #[error("close code {0} may not be sent")]
    BadCloseCode(u16),
}

impl From<EncodeError> for io::Error {
    fn from(e: EncodeError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// The length of a client frame (header with masking key, then payload) for a payload of
/// `payload_len` bytes.
pub fn client_frame_len(payload_len: usize) -> usize {
    header_len(payload_len) + payload_len
}

fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 6,
        126..=0xFFFF => 8,
        _ => MAX_CLIENT_HEADER,
    }
}

/// Writes the masked client frames a market-data connection sends: text, pong and close.
///
/// Every frame a client sends must be masked with a fresh 32-bit key (RFC 6455 §5.3). The keys
/// come from an xorshift64* generator seeded once, at construction, from the operating system's
/// random source (through `rustls`'s `ring` provider): unpredictable to anyone who has not seen
/// earlier keys, but not cryptographically strong, since each key is a function of the previous
/// ones. The RFC asks for unpredictable keys so that a page's script cannot choose the bytes a
/// proxy sees (§10.3); here the payloads are our own requests, and the connection is TLS, so no
/// intermediary sees the masked bytes at all. A system call per frame (a pong every few minutes,
/// a few subscription requests) would be affordable too, but buys nothing.
#[derive(Debug, Clone)]
pub struct FrameWriter {
    state: u64,
}

impl Default for FrameWriter {
    fn default() -> Self {
        FrameWriter::new()
    }
}

impl FrameWriter {
    /// A writer with its key generator seeded from the operating system's random source (or, if
    /// that fails, from the clock and the standard library's per-process hash keys).
    pub fn new() -> FrameWriter {
        let mut seed = [0u8; 8];
        let provider = rustls::crypto::ring::default_provider();
        let seed = if provider.secure_random.fill(&mut seed).is_ok() {
            u64::from_le_bytes(seed)
        } else {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.write_u128(now);
            h.finish()
        };
        FrameWriter::with_seed(seed)
    }

    /// A writer whose keys follow from `seed` (for tests: the same seed, the same keys).
    pub fn with_seed(seed: u64) -> FrameWriter {
        FrameWriter {
            // xorshift's state must not be zero.
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next masking key.
    pub fn mask(&mut self) -> [u8; 4] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        // The high half of xorshift64*'s output is the better half.
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32).to_le_bytes()
    }

    /// Writes a masked text frame (FIN set) carrying `payload` into `out` and returns its length.
    /// The payload is sent as it is; it should be UTF-8.
    pub fn text(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
        let mask = self.mask();
        encode(OP_TEXT, mask, &[payload], out)
    }

    /// Writes a masked pong frame echoing `payload` (a ping's) into `out` and returns its length.
    pub fn pong(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(EncodeError::ControlTooLong(payload.len()));
        }
        let mask = self.mask();
        encode(OP_PONG, mask, &[payload], out)
    }

    /// Writes a masked close frame with `code` and `reason` into `out` and returns its length.
    pub fn close(&mut self, code: u16, reason: &str, out: &mut [u8]) -> Result<usize, EncodeError> {
        check_close(code, reason)?;
        let mask = self.mask();
        encode(
            OP_CLOSE,
            mask,
            &[&code.to_be_bytes(), reason.as_bytes()],
            out,
        )
    }

    /// Writes a masked text frame to `w` (see [`text`](Self::text)): in one `write_all` when the
    /// frame is at most 1 KiB, else the header then the payload in 1 KiB pieces.
    pub fn write_text(&mut self, w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
        let mask = self.mask();
        write_frame(w, OP_TEXT, mask, &[payload])
    }

    /// Writes a masked pong frame echoing `payload` to `w`, in one `write_all`.
    pub fn write_pong(&mut self, w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(EncodeError::ControlTooLong(payload.len()).into());
        }
        let mask = self.mask();
        write_frame(w, OP_PONG, mask, &[payload])
    }

    /// Writes a masked close frame with `code` and `reason` to `w`, in one `write_all`.
    pub fn write_close(&mut self, w: &mut impl Write, code: u16, reason: &str) -> io::Result<()> {
        check_close(code, reason)?;
        let mask = self.mask();
        write_frame(w, OP_CLOSE, mask, &[&code.to_be_bytes(), reason.as_bytes()])
    }
}

fn check_close(code: u16, reason: &str) -> Result<(), EncodeError> {
    if !close_code_is_valid(code) {
        return Err(EncodeError::BadCloseCode(code));
    }
    if 2 + reason.len() > MAX_CONTROL_PAYLOAD {
        return Err(EncodeError::ControlTooLong(2 + reason.len()));
    }
    Ok(())
}

/// Writes the header of a final, masked client frame into `out` (which must hold
/// `header_len(payload_len)` bytes) and returns its length.
fn write_header(opcode: u8, mask: [u8; 4], payload_len: usize, out: &mut [u8]) -> usize {
    out[0] = 0x80 | opcode;
    let n = match payload_len {
        0..=125 => {
            out[1] = 0x80 | payload_len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = 0x80 | 126;
            out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 0x80 | 127;
            out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        }
    };
    out[n..n + 4].copy_from_slice(&mask);
    n + 4
}

/// Copies `src` into `dst` masked, `src[0]` being payload byte `offset` (so key byte
/// `offset % 4`).
fn mask_into(dst: &mut [u8], src: &[u8], mask: [u8; 4], offset: usize) {
    for (i, (d, s)) in dst.iter_mut().zip(src).enumerate() {
        *d = s ^ mask[(offset + i) & 3];
    }
}

/// Encodes a final, masked client frame whose payload is `parts` one after the other.
fn encode(
    opcode: u8,
    mask: [u8; 4],
    parts: &[&[u8]],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let need = client_frame_len(payload_len);
    if out.len() < need {
        return Err(EncodeError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    let mut at = write_header(opcode, mask, payload_len, out);
    let mut offset = 0;
    for p in parts {
        mask_into(&mut out[at..at + p.len()], p, mask, offset);
        at += p.len();
        offset += p.len();
    }
    Ok(at)
}

/// Writes a final, masked client frame to `w` through a stack buffer: one `write_all` if the
/// frame fits in it, else the header and then the payload in pieces.
fn write_frame(w: &mut impl Write, opcode: u8, mask: [u8; 4], parts: &[&[u8]]) -> io::Result<()> {
    const STACK: usize = 1024;
    let mut buf = [0u8; STACK];
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    if client_frame_len(payload_len) <= STACK {
        let n = encode(opcode, mask, parts, &mut buf)?;
        return w.write_all(&buf[..n]);
    }
    let mut fill = write_header(opcode, mask, payload_len, &mut buf);
    let mut offset = 0;
    for p in parts {
        let mut p = *p;
        while !p.is_empty() {
            let n = p.len().min(STACK - fill);
            mask_into(&mut buf[fill..fill + n], &p[..n], mask, offset);
            fill += n;
            offset += n;
            p = &p[n..];
            if fill == STACK {
                w.write_all(&buf)?;
                fill = 0;
            }
        }
    }
    w.write_all(&buf[..fill])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::coding::{CloseCode, OpCode};
    use tungstenite::protocol::frame::{CloseFrame, Frame as TFrame, FrameHeader};
    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::Message;

    /// A frame as a server sends it, encoded by tungstenite.
    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            is_final: fin,
            opcode: OpCode::from(opcode),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        TFrame::from_payload(header, payload.to_vec())
            .format(&mut out)
            .unwrap();
        out
    }

    fn tung_close(code: u16, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        TFrame::close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }))
        .format(&mut out)
        .unwrap();
        out
    }

    /// What the reader returned, owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Text(Vec<u8>),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
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

    /// A `Read` handing out `data` in pieces of the given sizes, in turn.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: &'a [usize],
        turn: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()].max(1);
            self.turn += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Everything the reader returns from `bytes` read in pieces of `sizes`, and the error that
    /// stopped it, if any. Checks on the way that the buffer never moves or grows.
    fn read_all(
        r: &mut FrameReader,
        bytes: &[u8],
        sizes: &[usize],
    ) -> (Vec<Owned>, Option<FrameError>) {
        let (ptr, cap) = (r.buf.as_ptr(), r.capacity());
        let mut src = Chunked {
            data: bytes,
            sizes,
            turn: 0,
        };
        let mut out = Vec::new();
        loop {
            loop {
                match r.next() {
                    Ok(Some(f)) => out.push(own(f)),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(r.next().map(|f| f.map(own)), Err(e), "errors repeat");
                        assert_eq!((r.buf.as_ptr(), r.capacity()), (ptr, cap));
                        return (out, Some(e));
                    }
                }
            }
            if r.fill(&mut src).unwrap() == 0 {
                break;
            }
        }
        assert_eq!((r.buf.as_ptr(), r.capacity()), (ptr, cap));
        (out, None)
    }

    fn read_one(bytes: &[u8]) -> Result<Vec<Owned>, FrameError> {
        let mut r = FrameReader::with_capacity(1 << 17);
        match read_all(&mut r, bytes, &[usize::MAX]) {
            (out, None) => Ok(out),
            (_, Some(e)) => Err(e),
        }
    }

    fn first_error(bytes: &[u8]) -> FrameError {
        read_one(bytes).expect_err("an error")
    }

    #[test]
    fn text_and_binary_with_7_16_and_64_bit_lengths() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut bytes = server_frame(true, OP_TEXT, &payload);
            let header = match len {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(
                bytes.len(),
                header + len,
                "tungstenite's length format for {len}"
            );
            bytes.extend(server_frame(true, OP_BINARY, &payload));
            assert_eq!(
                read_one(&bytes).unwrap(),
                [Owned::Text(payload.clone()), Owned::Binary(payload)],
                "length {len}"
            );
        }
    }

    #[test]
    fn control_frames() {
        let mut bytes = server_frame(true, OP_PING, b"ping!");
        bytes.extend(server_frame(true, OP_PONG, &[7u8; 125]));
        bytes.extend(server_frame(true, OP_PING, b""));
        bytes.extend(tung_close(1001, "going away \u{263a}"));
        assert_eq!(
            read_one(&bytes).unwrap(),
            [
                Owned::Ping(b"ping!".to_vec()),
                Owned::Pong(vec![7; 125]),
                Owned::Ping(vec![]),
                Owned::Close(Some((1001, "going away \u{263a}".into()))),
            ]
        );
        assert_eq!(
            read_one(&server_frame(true, OP_CLOSE, b"")).unwrap(),
            [Owned::Close(None)]
        );
        for code in [1000, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert_eq!(
                read_one(&server_frame(true, OP_CLOSE, &u16::to_be_bytes(code))).unwrap(),
                [Owned::Close(Some((code, String::new())))]
            );
        }
    }

    #[test]
    fn fragments_are_joined_with_control_frames_between_them() {
        let mut bytes = server_frame(false, OP_TEXT, b"{\"a\":");
        bytes.extend(server_frame(true, OP_PING, b"p1"));
        bytes.extend(server_frame(false, OP_CONTINUATION, b""));
        bytes.extend(server_frame(false, OP_CONTINUATION, &[b'1'; 300]));
        bytes.extend(server_frame(true, OP_PONG, b"p2"));
        bytes.extend(server_frame(true, OP_CONTINUATION, b"}"));
        bytes.extend(server_frame(false, OP_BINARY, &[1, 2]));
        bytes.extend(server_frame(true, OP_CONTINUATION, &[3]));
        bytes.extend(server_frame(true, OP_TEXT, b"after"));
        let mut joined = b"{\"a\":".to_vec();
        joined.extend([b'1'; 300]);
        joined.push(b'}');
        let want = [
            Owned::Ping(b"p1".to_vec()),
            Owned::Pong(b"p2".to_vec()),
            Owned::Text(joined),
            Owned::Binary(vec![1, 2, 3]),
            Owned::Text(b"after".to_vec()),
        ];
        assert_eq!(read_one(&bytes).unwrap(), want);
        // A byte at a time, and in pieces of 3, through a reader just large enough.
        for sizes in [[1usize], [3]] {
            let mut r = FrameReader::with_capacity(306);
            assert_eq!(read_all(&mut r, &bytes, &sizes), (want.to_vec(), None));
        }
    }

    #[test]
    fn in_message_and_buffered_follow_a_fragmented_message() {
        let mut r = FrameReader::with_capacity(100);
        r.push(&server_frame(false, OP_TEXT, b"abc"));
        assert_eq!(r.buffered(), 5);
        assert_eq!(r.next(), Ok(None));
        assert!(r.in_message());
        assert_eq!(r.buffered(), 3);
        r.push(&server_frame(true, OP_CONTINUATION, b"de"));
        assert_eq!(r.next(), Ok(Some(Frame::Text(&mut b"abcde".to_vec()))));
        assert!(!r.in_message());
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.next(), Ok(None));
    }

    #[test]
    fn a_text_payload_can_be_changed_in_place() {
        let mut r = FrameReader::with_capacity(100);
        r.push(&server_frame(true, OP_TEXT, b"abc"));
        match r.next() {
            Ok(Some(Frame::Text(p))) => p.make_ascii_uppercase(),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.buf[2..5], *b"ABC");
    }

    #[test]
    fn text_is_not_checked_for_utf8() {
        assert_eq!(
            read_one(&server_frame(true, OP_TEXT, &[0xFF, 0xFE])).unwrap(),
            [Owned::Text(vec![0xFF, 0xFE])]
        );
    }

    #[test]
    fn reserved_bits_are_errors() {
        for (bit, want) in [
            (0x40u8, 0b100u8),
            (0x20, 0b010),
            (0x10, 0b001),
            (0x70, 0b111),
        ] {
            assert_eq!(
                first_error(&[0x81 | bit, 0]),
                FrameError::ReservedBits(want)
            );
        }
    }

    #[test]
    fn unknown_opcodes_are_errors() {
        for op in (3..=7).chain(11..=15) {
            assert_eq!(first_error(&[0x80 | op, 0]), FrameError::BadOpcode(op));
        }
    }

    #[test]
    fn a_masked_server_frame_is_an_error() {
        assert_eq!(
            first_error(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
            FrameError::MaskedFrame
        );
        // Found from the first two bytes.
        let mut r = FrameReader::with_capacity(10);
        r.push(&[0x89, 0x80]);
        assert_eq!(r.next(), Err(FrameError::MaskedFrame));
    }

    #[test]
    fn control_frames_are_final_and_short() {
        for op in [OP_CLOSE, OP_PING, OP_PONG] {
            assert_eq!(first_error(&[op, 0]), FrameError::FragmentedControl(op));
            for len in [126u8, 127] {
                assert_eq!(
                    first_error(&[0x80 | op, len]),
                    FrameError::ControlTooLong { opcode: op, len }
                );
            }
        }
        // tungstenite writes a 126-byte ping with a 16-bit length.
        assert_eq!(
            first_error(&server_frame(true, OP_PING, &[0; 126])),
            FrameError::ControlTooLong {
                opcode: OP_PING,
                len: 126
            }
        );
    }

    #[test]
    fn continuation_frames_only_inside_a_message() {
        assert_eq!(
            first_error(&server_frame(true, OP_CONTINUATION, b"x")),
            FrameError::UnexpectedContinuation
        );
        for op in [OP_TEXT, OP_BINARY] {
            let mut bytes = server_frame(false, OP_TEXT, b"a");
            bytes.extend(server_frame(true, op, b"b"));
            assert_eq!(first_error(&bytes), FrameError::ExpectedContinuation(op));
        }
        // After a finished message, a continuation is unexpected again.
        let mut bytes = server_frame(false, OP_BINARY, b"a");
        bytes.extend(server_frame(true, OP_CONTINUATION, b"b"));
        bytes.extend(server_frame(true, OP_CONTINUATION, b"c"));
        let mut r = FrameReader::with_capacity(10);
        assert_eq!(
            read_all(&mut r, &bytes, &[1]),
            (
                vec![Owned::Binary(b"ab".to_vec())],
                Some(FrameError::UnexpectedContinuation)
            )
        );
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_set_is_an_error() {
        let mut bytes = vec![0x82, 127];
        bytes.extend((1u64 << 63).to_be_bytes());
        assert_eq!(first_error(&bytes), FrameError::BadLength);
        let mut bytes = vec![0x82, 127];
        bytes.extend((u64::MAX >> 1).to_be_bytes());
        assert_eq!(
            first_error(&bytes),
            FrameError::TooLarge {
                len: u64::MAX >> 1,
                max: 1 << 17
            }
        );
    }

    #[test]
    fn a_message_at_the_limit_fits_and_one_byte_more_is_too_large() {
        for max in [0usize, 1, 125, 126, 1000, 70_000] {
            let at = vec![b'x'; max];
            let mut r = FrameReader::with_capacity(max);
            assert_eq!(
                read_all(&mut r, &server_frame(true, OP_TEXT, &at), &[7]),
                (vec![Owned::Text(at.clone())], None)
            );
            // The same length in three fragments, with two 125-byte pings between them: the slack.
            let mut bytes = server_frame(false, OP_BINARY, &at[..max / 2]);
            bytes.extend(server_frame(true, OP_PING, &[1; 125]));
            bytes.extend(server_frame(false, OP_CONTINUATION, &at[max / 2..]));
            bytes.extend(server_frame(true, OP_PING, &[2; 125]));
            bytes.extend(server_frame(true, OP_CONTINUATION, b""));
            for sizes in [[1usize], [1000], [usize::MAX]] {
                let mut r = FrameReader::with_capacity(max);
                assert_eq!(
                    read_all(&mut r, &bytes, &sizes),
                    (
                        vec![
                            Owned::Ping(vec![1; 125]),
                            Owned::Ping(vec![2; 125]),
                            Owned::Binary(at.clone())
                        ],
                        None
                    ),
                    "max {max}, reads of {sizes:?}"
                );
            }
            let over = FrameError::TooLarge {
                len: max as u64 + 1,
                max,
            };
            let mut r = FrameReader::with_capacity(max);
            assert_eq!(
                read_all(
                    &mut r,
                    &server_frame(true, OP_TEXT, &vec![b'x'; max + 1]),
                    &[3]
                ),
                (vec![], Some(over))
            );
            let mut bytes = server_frame(false, OP_TEXT, &at);
            bytes.extend(server_frame(true, OP_CONTINUATION, b"y"));
            let mut r = FrameReader::with_capacity(max);
            assert_eq!(read_all(&mut r, &bytes, &[5]), (vec![], Some(over)));
        }
    }

    #[test]
    fn too_large_is_reported_from_the_header_alone() {
        let mut r = FrameReader::with_capacity(1000);
        r.push(&[0x81, 126, 0x03, 0xE9]); // 1001 bytes announced, none sent.
        assert_eq!(
            r.next(),
            Err(FrameError::TooLarge {
                len: 1001,
                max: 1000
            })
        );
    }

    #[test]
    fn bad_close_frames_are_errors() {
        assert_eq!(
            first_error(&server_frame(true, OP_CLOSE, &[3])),
            FrameError::BadClosePayload
        );
        for code in [
            0u16,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2999,
            5000,
            u16::MAX,
        ] {
            assert_eq!(
                first_error(&server_frame(true, OP_CLOSE, &code.to_be_bytes())),
                FrameError::BadCloseCode(code)
            );
        }
        assert_eq!(
            first_error(&server_frame(true, OP_CLOSE, &[0x03, 0xE8, b'a', 0xC3])),
            FrameError::CloseReasonNotUtf8
        );
    }

    #[test]
    fn nothing_may_follow_a_close_frame() {
        let mut r = FrameReader::with_capacity(100);
        r.push(&tung_close(1000, "bye"));
        assert_eq!(r.next(), Ok(Some(Frame::Close(Some((1000, "bye"))))));
        assert!(r.is_closed());
        assert_eq!(r.next(), Ok(None));
        r.push(&[0x89]);
        assert_eq!(r.next(), Err(FrameError::AfterClose));
        r.clear();
        assert!(!r.is_closed());
        r.push(&server_frame(true, OP_PING, b"new connection"));
        assert_eq!(r.next(), Ok(Some(Frame::Ping(b"new connection"))));
    }

    #[test]
    fn an_error_leaves_the_reader_as_it_was() {
        let mut bytes = server_frame(false, OP_TEXT, b"part");
        bytes.extend([0x83, 0]);
        let mut r = FrameReader::with_capacity(100);
        r.push(&bytes);
        for _ in 0..3 {
            assert_eq!(r.next(), Err(FrameError::BadOpcode(3)));
            assert!(r.in_message());
            assert_eq!(r.buffered(), 6);
        }
    }

    #[test]
    fn a_full_buffer_is_an_io_error_not_growth() {
        let mut r = FrameReader::with_capacity(0);
        let ping = server_frame(true, OP_PING, b"");
        let frames = ping.repeat(200);
        let mut src = &frames[..];
        let mut total = 0;
        loop {
            match r.fill(&mut src) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
                    break;
                }
            }
        }
        assert_eq!(total, r.capacity());
        assert_eq!(r.capacity(), SLACK);
        assert_eq!(r.push(&ping), 0);
        // Reading frames frees the room again.
        assert_eq!(r.next(), Ok(Some(Frame::Ping(b""))));
        assert_eq!(r.push(&ping), 2);
    }

    #[test]
    fn push_takes_what_fits() {
        let mut r = FrameReader::with_capacity(3);
        assert_eq!(r.capacity(), 3 + SLACK);
        assert_eq!(r.push(&[0x89; 200]), 3 + SLACK);
    }

    #[test]
    fn the_buffer_restarts_at_the_front_when_everything_was_read() {
        let mut r = FrameReader::with_capacity(100);
        let f = server_frame(true, OP_TEXT, b"0123456789");
        for _ in 0..50 {
            assert_eq!(r.push(&f), f.len());
            assert_eq!(r.next(), Ok(Some(Frame::Text(&mut b"0123456789".to_vec()))));
            assert_eq!((r.start, r.end), (0, 0));
        }
    }

    #[test]
    fn live_bytes_move_to_the_front_when_that_frees_more_room() {
        let mut r = FrameReader::with_capacity(100); // 227 bytes.
        let f = server_frame(true, OP_TEXT, &[b'a'; 98]); // 100 bytes.
        r.push(&f);
        r.push(&f);
        r.push(&f[..20]);
        assert_eq!(r.end, 220);
        for _ in 0..2 {
            assert!(r.next().unwrap().is_some());
        }
        assert_eq!(r.next(), Ok(None));
        assert_eq!(r.start, 200);
        assert_eq!(r.push(&f[20..]), 80);
        assert_eq!((r.start, r.end), (0, 100));
        assert_eq!(r.next(), Ok(Some(Frame::Text(&mut [b'a'; 98]))));
    }

    #[test]
    fn a_read_that_claims_too_much_cannot_break_the_buffer() {
        struct Liar;
        impl Read for Liar {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Ok(usize::MAX)
            }
        }
        let mut r = FrameReader::with_capacity(10);
        assert_eq!(r.fill(&mut Liar).unwrap(), r.capacity());
        assert_eq!(r.buffered(), r.capacity());
    }

    #[test]
    fn fill_passes_would_block_on() {
        struct Blocked;
        impl Read for Blocked {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        let mut r = FrameReader::with_capacity(10);
        assert_eq!(
            r.fill(&mut Blocked).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    // --- the writer

    /// A stream for a server-role tungstenite `WebSocket`: reads `rd`, keeps what it writes.
    struct Duplex {
        rd: Cursor<Vec<u8>>,
        wr: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.rd.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.wr.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The messages a server-role tungstenite reads from `bytes` (it refuses unmasked frames).
    fn tungstenite_server_reads(bytes: Vec<u8>, n: usize) -> Vec<Message> {
        let mut ws = WebSocket::from_raw_socket(
            Duplex {
                rd: Cursor::new(bytes),
                wr: Vec::new(),
            },
            Role::Server,
            None,
        );
        (0..n)
            .map(|_| ws.read().expect("tungstenite reads our frame"))
            .collect()
    }

    #[test]
    fn the_rfc_masked_hello() {
        // RFC 6455 §5.7: "A single-frame masked text message".
        let mut out = [0u8; 11];
        assert_eq!(
            encode(OP_TEXT, [0x37, 0xfa, 0x21, 0x3d], &[b"Hello"], &mut out),
            Ok(11)
        );
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn client_frames_have_the_right_length_formats() {
        let mut w = FrameWriter::with_seed(1);
        let mut out = vec![0u8; 70_000 + MAX_CLIENT_HEADER];
        for (len, b1, header) in [
            (0usize, 0x80u8, 6usize),
            (125, 0x80 | 125, 6),
            (126, 0x80 | 126, 8),
            (65_535, 0x80 | 126, 8),
            (65_536, 0x80 | 127, 14),
        ] {
            let n = w.text(&vec![b'a'; len], &mut out).unwrap();
            assert_eq!(n, header + len);
            assert_eq!(n, client_frame_len(len));
            assert_eq!((out[0], out[1]), (0x81, b1), "length {len}");
        }
    }

    #[test]
    fn writer_frames_are_read_by_a_tungstenite_server() {
        let mut w = FrameWriter::with_seed(42);
        let sub = br#"{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":1}"#;
        let big = "x".repeat(5000);
        let mut buf = [0u8; 256];
        let mut bytes = Vec::new();
        let n = w.text(sub, &mut buf).unwrap();
        bytes.extend(&buf[..n]);
        w.write_text(&mut bytes, big.as_bytes()).unwrap();
        let n = w.pong(b"1723161255030", &mut buf).unwrap();
        bytes.extend(&buf[..n]);
        w.write_pong(&mut bytes, &[9; 125]).unwrap();
        w.write_close(&mut bytes, 1000, "bye").unwrap();
        let got = tungstenite_server_reads(bytes, 5);
        assert_eq!(
            got,
            [
                Message::Text(String::from_utf8(sub.to_vec()).unwrap()),
                Message::Text(big),
                Message::Pong(b"1723161255030".to_vec()),
                Message::Pong(vec![9; 125]),
                Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bye".into()
                })),
            ]
        );
        let mut bytes = vec![0u8; 10];
        let n = w.close(4000, "", &mut bytes).unwrap();
        bytes.truncate(n);
        assert_eq!(
            tungstenite_server_reads(bytes, 1),
            [Message::Close(Some(CloseFrame {
                code: CloseCode::Library(4000),
                reason: "".into()
            }))]
        );
    }

    #[test]
    fn writer_errors() {
        let mut w = FrameWriter::with_seed(7);
        let mut out = [0u8; 200];
        assert_eq!(
            w.text(b"hello", &mut out[..10]),
            Err(EncodeError::BufferTooSmall { need: 11, have: 10 })
        );
        assert_eq!(
            w.pong(&[0; 126], &mut out),
            Err(EncodeError::ControlTooLong(126))
        );
        assert_eq!(
            w.close(1000, &"r".repeat(124), &mut out),
            Err(EncodeError::ControlTooLong(126))
        );
        assert_eq!(w.close(1000, &"r".repeat(123), &mut out), Ok(131));
        for code in [0, 1005, 1006, 1015, 2000, 5000] {
            assert_eq!(
                w.close(code, "", &mut out),
                Err(EncodeError::BadCloseCode(code))
            );
        }
        let mut sink = Vec::new();
        let e = w.write_pong(&mut sink, &[0; 126]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = w.write_close(&mut sink, 1004, "").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(sink.is_empty());
    }

    #[test]
    fn masks_change_from_frame_to_frame_and_seed_to_seed() {
        let mut w = FrameWriter::with_seed(0);
        let masks: Vec<[u8; 4]> = (0..1000).map(|_| w.mask()).collect();
        let mut distinct = masks.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 990, "{} distinct masks", distinct.len());
        // Every byte value shows up in each key position.
        for pos in 0..4 {
            let mut seen = [false; 256];
            for m in &masks {
                seen[m[pos] as usize] = true;
            }
            assert!(seen.iter().filter(|s| **s).count() > 240);
        }
        assert_eq!(
            FrameWriter::with_seed(5).mask(),
            FrameWriter::with_seed(5).mask()
        );
        // Seeded from the OS: two writers almost surely start differently (2^-64 to be equal).
        let (mut a, mut b) = (FrameWriter::new(), FrameWriter::new());
        assert_ne!((a.mask(), a.mask()), (b.mask(), b.mask()));
    }

    #[test]
    fn frames_are_masked_with_the_key_in_their_header() {
        let mut w = FrameWriter::with_seed(3);
        let mut out = [0u8; 64];
        let n = w.text(b"abcdefg", &mut out).unwrap();
        let key = [out[2], out[3], out[4], out[5]];
        let clear: Vec<u8> = out[6..n]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(clear, b"abcdefg");
        let n2 = w.text(b"abcdefg", &mut out).unwrap();
        assert_eq!(n, n2);
        assert_ne!(
            [out[2], out[3], out[4], out[5]],
            key,
            "a fresh key per frame"
        );
    }

    // --- properties

    /// One item of a server's stream: a message in one or more fragments, with an optional
    /// control frame after each fragment but the last; or a lone control frame.
    #[derive(Debug, Clone)]
    enum Item {
        Message {
            text: bool,
            parts: Vec<Vec<u8>>,
            between: Vec<Option<(u8, Vec<u8>)>>,
        },
        Control(u8, Vec<u8>),
    }

    fn payload() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            12 => proptest::collection::vec(any::<u8>(), 0..140),
            3 => proptest::collection::vec(any::<u8>(), 120..3000),
            1 => (65_530usize..70_000).prop_map(|n| (0..n).map(|i| (i % 251) as u8).collect()),
        ]
    }

    fn control() -> impl Strategy<Value = (u8, Vec<u8>)> {
        (
            prop_oneof![Just(OP_PING), Just(OP_PONG)],
            proptest::collection::vec(any::<u8>(), 0..=125),
        )
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            3 => (any::<bool>(), proptest::collection::vec(payload(), 1..5))
                .prop_flat_map(|(text, parts)| {
                    let n = parts.len() - 1;
                    (
                        Just(text),
                        Just(parts),
                        proptest::collection::vec(proptest::option::of(control()), n..=n),
                    )
                })
                .prop_map(|(text, parts, between)| Item::Message { text, parts, between }),
            1 => control().prop_map(|(op, p)| Item::Control(op, p)),
        ]
    }

    fn close() -> impl Strategy<Value = Option<(u16, String)>> {
        proptest::option::of((
            prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
            "\\PC{0,30}",
        ))
    }

    /// The server's frames, in order: (fin, opcode, payload).
    fn frames(items: &[Item], close: &Option<(u16, String)>) -> Vec<(bool, u8, Vec<u8>)> {
        let mut out = Vec::new();
        for it in items {
            match it {
                Item::Message {
                    text,
                    parts,
                    between,
                } => {
                    for (i, p) in parts.iter().enumerate() {
                        let op = match (i, text) {
                            (0, true) => OP_TEXT,
                            (0, false) => OP_BINARY,
                            _ => OP_CONTINUATION,
                        };
                        out.push((i + 1 == parts.len(), op, p.clone()));
                        if let Some(Some((op, p))) = between.get(i) {
                            out.push((true, *op, p.clone()));
                        }
                    }
                }
                Item::Control(op, p) => out.push((true, *op, p.clone())),
            }
        }
        if let Some((code, reason)) = close {
            let mut p = code.to_be_bytes().to_vec();
            p.extend(reason.as_bytes());
            out.push((true, OP_CLOSE, p));
        }
        out
    }

    /// Encodes the frames with tungstenite's encoder (a server's, so unmasked).
    fn encode_with_tungstenite(frames: &[(bool, u8, Vec<u8>)]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|(fin, op, p)| server_frame(*fin, *op, p))
            .collect()
    }

    /// What a reader with limit `max` must return for these frames: a reference written from
    /// the RFC frame by frame, with no buffer.
    fn reference(frames: &[(bool, u8, Vec<u8>)], max: usize) -> (Vec<Owned>, Option<FrameError>) {
        let mut out = Vec::new();
        let mut msg: Option<(u8, Vec<u8>)> = None;
        for (fin, op, p) in frames {
            match *op {
                OP_PING => out.push(Owned::Ping(p.clone())),
                OP_PONG => out.push(Owned::Pong(p.clone())),
                OP_CLOSE => {
                    let code = u16::from_be_bytes([p[0], p[1]]);
                    let reason = String::from_utf8(p[2..].to_vec()).unwrap();
                    out.push(Owned::Close(Some((code, reason))));
                }
                _ => {
                    let (mop, mut data) = msg.take().unwrap_or((*op, Vec::new()));
                    data.extend(p);
                    if data.len() > max {
                        let len = data.len() as u64;
                        return (out, Some(FrameError::TooLarge { len, max }));
                    }
                    if *fin {
                        out.push(if mop == OP_TEXT {
                            Owned::Text(data)
                        } else {
                            Owned::Binary(data)
                        });
                    } else {
                        msg = Some((mop, data));
                    }
                }
            }
        }
        (out, None)
    }

    fn read_sizes() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(prop_oneof![1usize..8, 1usize..600, 1usize..20_000], 1..16)
    }

    fn config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config(256))]

        /// Messages encoded by tungstenite, read in arbitrary pieces by a reader whose limit is
        /// the largest message (or a little more), come out byte-identical and in order.
        #[test]
        fn tungstenite_encoded_messages_read_back_identically(
            items in proptest::collection::vec(item(), 0..12),
            close in close(),
            extra in 0usize..64,
            sizes in read_sizes(),
        ) {
            let frames = frames(&items, &close);
            let (want, none) = reference(&frames, usize::MAX);
            prop_assert_eq!(none, None);
            let max = want
                .iter()
                .map(|m| match m {
                    Owned::Text(p) | Owned::Binary(p) => p.len(),
                    _ => 0,
                })
                .max()
                .unwrap_or(0)
                + extra;
            let bytes = encode_with_tungstenite(&frames);
            let mut r = FrameReader::with_capacity(max);
            let got = read_all(&mut r, &bytes, &sizes);
            prop_assert_eq!(got, (want, None));
            prop_assert_eq!(r.buffered(), 0);
            prop_assert_eq!(r.is_closed(), close.is_some());
        }

        /// With a limit below some messages, everything before the first message over it comes
        /// out, then `TooLarge` with that message's length so far.
        #[test]
        fn messages_over_the_limit_are_too_large(
            items in proptest::collection::vec(item(), 1..10),
            max in 0usize..3000,
            sizes in read_sizes(),
        ) {
            let frames = frames(&items, &None);
            let bytes = encode_with_tungstenite(&frames);
            let mut r = FrameReader::with_capacity(max);
            prop_assert_eq!(read_all(&mut r, &bytes, &sizes), reference(&frames, max));
        }

        /// Frames from `FrameWriter` are read back by a server-role tungstenite (which refuses
        /// unmasked frames) as what was written.
        #[test]
        fn writer_frames_are_unmasked_by_tungstenite(
            ops in proptest::collection::vec(
                prop_oneof![
                    (any::<bool>(), "\\PC{0,300}").prop_map(|(s, t)| (0u8, s, t.into_bytes())),
                    (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..=125))
                        .prop_map(|(s, p)| (1u8, s, p)),
                    (any::<bool>(), proptest::collection::vec(any::<u8>(), 1000..5000))
                        .prop_map(|(s, p)| (2u8, s, p)),
                ],
                0..10,
            ),
            close in proptest::option::of((
                prop_oneof![1000u16..=1003, 1007u16..=1013, 3000u16..=4999],
                "\\PC{0,30}",
            )),
            seed in any::<u64>(),
        ) {
            let mut w = FrameWriter::with_seed(seed);
            let mut bytes = Vec::new();
            let mut buf = vec![0u8; 8000];
            let mut want = Vec::new();
            for (kind, to_buf, p) in &ops {
                // Text (UTF-8, as tungstenite checks it), pong, and large text as binary bytes
                // sent in a text frame (ASCII, so UTF-8).
                let p: Vec<u8> = if *kind == 2 { p.iter().map(|b| b & 0x7F).collect() } else { p.clone() };
                match (kind, to_buf) {
                    (1, true) => {
                        let n = w.pong(&p, &mut buf).unwrap();
                        bytes.extend(&buf[..n]);
                    }
                    (1, false) => w.write_pong(&mut bytes, &p).unwrap(),
                    (_, true) => {
                        let n = w.text(&p, &mut buf).unwrap();
                        bytes.extend(&buf[..n]);
                    }
                    (_, false) => w.write_text(&mut bytes, &p).unwrap(),
                }
                want.push(if *kind == 1 {
                    Message::Pong(p)
                } else {
                    Message::Text(String::from_utf8(p).unwrap())
                });
            }
            if let Some((code, reason)) = &close {
                w.write_close(&mut bytes, *code, reason).unwrap();
                want.push(Message::Close(Some(CloseFrame {
                    code: CloseCode::from(*code),
                    reason: reason.clone().into(),
                })));
            }
            prop_assert_eq!(tungstenite_server_reads(bytes, want.len()), want);
        }

        /// Arbitrary bytes, in arbitrary pieces, never panic the reader, never move or grow its
        /// buffer, and an error is returned again when asked again; nothing it returns is over
        /// its limit.
        #[test]
        fn arbitrary_bytes_never_panic_or_grow_the_reader(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            max in 0usize..600,
            sizes in read_sizes(),
        ) {
            let mut r = FrameReader::with_capacity(max);
            let (out, _) = read_all(&mut r, &bytes, &sizes);
            for f in out {
                match f {
                    Owned::Text(p) | Owned::Binary(p) => prop_assert!(p.len() <= max),
                    Owned::Ping(p) | Owned::Pong(p) => prop_assert!(p.len() <= MAX_CONTROL_PAYLOAD),
                    Owned::Close(c) => prop_assert!(c.is_none_or(|(c, _)| close_code_is_valid(c))),
                }
            }
        }

        /// Valid streams with a few bytes changed: read in arbitrary pieces, the same frames and
        /// the same error as read all at once (and, through `read_all`, no panic, no growth).
        #[test]
        fn mutated_streams_never_panic_the_reader(
            items in proptest::collection::vec(item(), 1..6),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            sizes in read_sizes(),
        ) {
            let mut bytes = encode_with_tungstenite(&frames(&items, &None));
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            let mut pieces = FrameReader::with_capacity(3000);
            let mut whole = FrameReader::with_capacity(3000);
            // Read in pieces or all at once, the same frames and the same error.
            prop_assert_eq!(
                read_all(&mut pieces, &bytes, &sizes),
                read_all(&mut whole, &bytes, &[usize::MAX])
            );
        }
    }
}
