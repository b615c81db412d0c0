//! One market-stream connection, driven without blocking: TCP connect (`mio`), TLS (`rustls`,
//! driven by hand so that every socket read is a stamped `recvmsg`), the HTTP/1.1 WebSocket
//! upgrade (by hand, `httparse`), then server frames through an allocation-free
//! [`FrameReader`]. Pings are answered, a close or any error ends the connection; the caller
//! ([`crate::net::NetSource`]) reconnects it after a jittered backoff.
//!
//! # Stamps
//!
//! Each socket read is a `recvmsg` carrying the kernel's receive stamp ([`StampedTcpStream`]).
//! The connection reads the socket only when no complete message is left in its buffers (no
//! complete frame in the frame reader, no decrypted bytes waiting for room in it, no complete
//! TLS record left to decrypt), so a message taken out carries the stamp of the read that
//! completed it.
//!
//! # Buffers
//!
//! TLS runs over buffers the [`Conn`] allocates once, at construction, and reuses for every
//! connection: [`TLS_IN`] bytes of received TLS records, [`TLS_OUT`] bytes of TLS records to
//! send, [`APP_OUT`] bytes of plaintext waiting to be encrypted (the upgrade request, pongs, the
//! close frame), and one TLS record's plaintext ([`MAX_RECORD_PLAINTEXT`]) that the frame reader
//! had no room for yet. They never grow: a connection that would overflow one ends with
//! [`ConnError::Overflow`].
//!
//! The handshake and the upgrade run on rustls's unbuffered client API. rustls 0.23 copies every
//! application-data record's plaintext into a fresh `Vec` before handing it out (one allocation
//! per record), so a TLS 1.3 connection leaves rustls's record layer once open: at the first
//! step where rustls holds nothing (no plaintext, no record to send, no whole record left in the
//! incoming buffer — a record it has started, such as a session ticket split across records,
//! stays with it until done), the connection is turned into a `rustls::kernel::KernelConnection`
//! and its traffic secrets are taken out (this needs `enable_secret_extraction`, set by
//! [`crate::net::tls::client_config`]; a configuration without it stays on rustls). From then
//! on each record is checked (outer type application data, version 0x0303, at most 2^14 + 256
//! bytes), decrypted in place in the incoming buffer with the negotiated suite's rustls AEAD,
//! and its plaintext pushed to the frame reader straight from there; session tickets and key
//! updates go to the `KernelConnection` (a key update the server asks for is answered), a
//! close_notify ends the connection with [`ConnError::Closed`], anything else TLS does not allow
//! there with [`ConnError::Tls`]. What the connection sends (pongs, the close frame, the
//! close_notify) is encrypted with rustls's AEAD too, one allocation per record sent. The
//! upgrade answer and the records decrypted before the switch went through rustls, their frames
//! are in the frame reader already. A TLS 1.2 connection stays on rustls's record layer (and
//! its per-record copy). [`Conn::tls_in_place`] tells which one an open connection uses.
//!
//! rustls no longer watches the AEAD's confidentiality limit after the switch: the server
//! updates its keys (the connection follows), and this client sends too few records to come
//! near it.

use super::frame::{Frame, FrameReader, FrameWriter};
use super::stamp::{Stamp, StampedTcpStream};
use super::tls13::{Opened, Tls13};
use rustls::client::UnbufferedClientConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::ContentType;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The host name did not resolve.
    #[error("resolving {0}: {1}")]
    Resolve(String, String),
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(String),
    /// Not connected, TLS and the upgrade not done, within the connect timeout.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// TLS failed (certificate, protocol).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server did not upgrade to a WebSocket.
    #[error("upgrade refused: {0}")]
    Upgrade(String),
    /// A socket error.
    #[error("socket: {0}")]
    Io(String),
    /// The server closed the connection (TCP end of stream or a close frame).
    #[error("closed by the server{}", .0.as_ref().map(|(c, r)| format!(" ({c} {r})")).unwrap_or_default())]
    Closed(Option<(u16, String)>),
    /// A frame broke the protocol, or a message was larger than the buffer.
    #[error("frame: {0}")]
    Frame(String),
    /// Nothing arrived for too long.
    #[error("silent for {0:?}")]
    Silent(Duration),
    /// The connection reached its planned age and is renewed.
    #[error("renewed after {0:?}")]
    Aged(Duration),
    /// One of the connection's fixed TLS buffers would have overflowed.
    #[error("buffer overflow: {0}")]
    Overflow(String),
}

/// Bytes of received TLS records the connection holds (a record is at most ~16.7 KiB).
pub const TLS_IN: usize = 64 << 10;
/// Bytes of TLS records waiting to be sent the connection holds.
pub const TLS_OUT: usize = 32 << 10;
/// Bytes of plaintext waiting to be encrypted (the upgrade request, pongs, the close frame).
pub const APP_OUT: usize = 16 << 10;
/// The largest plaintext of one TLS record (2^14 bytes).
pub const MAX_RECORD_PLAINTEXT: usize = 16 << 10;

/// What one step of a connection gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Nothing now (waiting on the network).
    Pending,
    /// The WebSocket is open (its first step after the upgrade).
    Opened,
    /// A text message is in [`Conn::message`], received at this stamp.
    Message(Stamp),
    /// The connection ended; it is closed now.
    Ended,
}

enum State {
    Closed,
    /// TCP connecting or TLS handshaking, then the upgrade request sent and its answer read.
    Opening {
        sock: StampedTcpStream,
        tls: Box<UnbufferedClientConnection>,
        since: Instant,
        upgrade_sent: bool,
    },
    Open {
        sock: StampedTcpStream,
        tls: Tls,
        since: Instant,
        last_rx: Instant,
    },
}

/// An open connection's TLS.
enum Tls {
    /// rustls's unbuffered client (TLS 1.2, or TLS 1.3 until it has nothing buffered).
    Rustls(Box<UnbufferedClientConnection>),
    /// TLS 1.3 records decrypted in place ([`Tls13`]).
    InPlace(Box<Tls13>),
    /// Only while switching from one to the other.
    Switching,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// TCP + TLS + upgrade must be done within this.
    pub connect_timeout: Duration,
    /// A connection that receives nothing for this long is ended (the server pings every few
    /// minutes; market streams are never that quiet).
    pub silence: Duration,
    /// A connection this old is renewed (Binance closes at 24 h).
    pub max_age: Duration,
    /// The largest message (the frame reader's buffer).
    pub max_message: usize,
}

impl Default for ConnOptions {
    fn default() -> ConnOptions {
        ConnOptions {
            connect_timeout: Duration::from_secs(10),
            silence: Duration::from_secs(60),
            max_age: Duration::from_secs(23 * 3600 + 50 * 60),
            max_message: 1 << 20,
        }
    }
}

/// The connection's TLS buffers: allocated once, kept across connections, never grown.
pub(super) struct TlsBufs {
    /// Received TLS bytes: `inc[inc_start..inc_end]` are not yet processed by rustls.
    inc: Box<[u8]>,
    inc_start: usize,
    inc_end: usize,
    /// TLS records to send: `out[out_start..out_end]`.
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    /// Plaintext to encrypt once rustls lets the connection send: `app[..app_len]`.
    app: Box<[u8]>,
    app_len: usize,
    /// A close_notify to send once rustls lets the connection send.
    close_notify: bool,
    /// A decrypted record's tail the frame reader had no room for: `spill[spill_start..spill_end]`.
    spill: Box<[u8]>,
    spill_start: usize,
    spill_end: usize,
}

impl TlsBufs {
    pub(super) fn new() -> TlsBufs {
        TlsBufs {
            inc: vec![0u8; TLS_IN].into_boxed_slice(),
            inc_start: 0,
            inc_end: 0,
            out: vec![0u8; TLS_OUT].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            app: vec![0u8; APP_OUT].into_boxed_slice(),
            app_len: 0,
            close_notify: false,
            spill: vec![0u8; MAX_RECORD_PLAINTEXT + 256].into_boxed_slice(),
            spill_start: 0,
            spill_end: 0,
        }
    }

    fn clear(&mut self) {
        self.inc_start = 0;
        self.inc_end = 0;
        self.out_start = 0;
        self.out_end = 0;
        self.app_len = 0;
        self.close_notify = false;
        self.spill_start = 0;
        self.spill_end = 0;
    }

    /// Queues plaintext to be encrypted and sent.
    pub(super) fn queue_app(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let end = self.app_len + bytes.len();
        if end > self.app.len() {
            return Err(ConnError::Overflow(format!(
                "{end} bytes of plaintext to send, over the {} bytes buffer",
                self.app.len()
            )));
        }
        self.app[self.app_len..end].copy_from_slice(bytes);
        self.app_len = end;
        Ok(())
    }

    /// Moves the outgoing bytes not yet sent to the front (all the room at the tail).
    fn compact_out(&mut self) {
        if self.out_start > 0 {
            self.out.copy_within(self.out_start..self.out_end, 0);
            self.out_end -= self.out_start;
            self.out_start = 0;
        }
    }

    pub(super) fn has_spill(&self) -> bool {
        self.spill_start < self.spill_end
    }

    /// Appends received bytes (as a socket read would).
    #[cfg(test)]
    pub(super) fn push_received(&mut self, bytes: &[u8]) {
        if self.inc_start > 0 {
            self.inc.copy_within(self.inc_start..self.inc_end, 0);
            self.inc_end -= self.inc_start;
            self.inc_start = 0;
        }
        self.inc[self.inc_end..self.inc_end + bytes.len()].copy_from_slice(bytes);
        self.inc_end += bytes.len();
    }

    /// Takes the bytes to send (as [`flush`] would).
    #[cfg(test)]
    pub(super) fn take_sent(&mut self) -> Vec<u8> {
        let sent = self.out[self.out_start..self.out_end].to_vec();
        self.out_start = 0;
        self.out_end = 0;
        sent
    }

    /// Queues a close_notify.
    #[cfg(test)]
    pub(super) fn queue_close_notify(&mut self) {
        self.close_notify = true;
    }
}

pub(super) fn out_overflow(required: usize, room: usize) -> ConnError {
    ConnError::Overflow(format!(
        "a TLS record of {required} bytes to send, {room} bytes free of {TLS_OUT}"
    ))
}

/// Where decrypted application data goes.
pub(super) enum Sink<'a> {
    /// The WebSocket frame reader (its overflow to the spill buffer).
    Frames(&'a mut FrameReader),
    /// The upgrade answer.
    Head(&'a mut Vec<u8>),
    /// Nowhere (closing).
    Drop,
}

/// Where [`drive`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drive {
    /// One record's plaintext went to the sink.
    Record,
    /// The handshake waits for bytes from the server.
    Blocked,
    /// The handshake is done; nothing is left to decrypt or to encrypt.
    Idle,
}

/// Hands one record's plaintext to `sink`; what the frame reader has no room for goes to the
/// spill buffer (`spill[spill_start..spill_end]`, empty before).
fn deliver(
    sink: &mut Sink<'_>,
    payload: &[u8],
    spill: &mut [u8],
    spill_start: &mut usize,
    spill_end: &mut usize,
) -> Result<(), ConnError> {
    match sink {
        Sink::Frames(reader) => {
            let n = reader.push(payload);
            let rest = &payload[n..];
            if !rest.is_empty() {
                if rest.len() > spill.len() {
                    return Err(ConnError::Overflow(format!(
                        "a TLS record of {} bytes of plaintext",
                        payload.len()
                    )));
                }
                spill[..rest.len()].copy_from_slice(rest);
                *spill_start = 0;
                *spill_end = rest.len();
            }
        }
        Sink::Head(head) => {
            if head.len() + payload.len() > 16 << 10 {
                return Err(ConnError::Upgrade("an answer head over 16 KiB".into()));
            }
            head.extend_from_slice(payload);
        }
        Sink::Drop => {}
    }
    Ok(())
}

/// Runs rustls over the received bytes until a record's plaintext has gone to `sink`, or it
/// needs bytes from the server. Handshake records and queued plaintext (encrypted) land in the
/// outgoing buffer, sent by [`flush`].
pub(super) fn drive(
    tls: &mut UnbufferedClientConnection,
    b: &mut TlsBufs,
    sink: &mut Sink<'_>,
) -> Result<Drive, ConnError> {
    loop {
        let UnbufferedStatus { mut discard, state } =
            tls.process_tls_records(&mut b.inc[b.inc_start..b.inc_end]);
        let state = state.map_err(|e| ConnError::Tls(e.to_string()))?;
        let stop = match state {
            ConnectionState::ReadTraffic(mut traffic) => match traffic.next_record() {
                Some(Ok(record)) => {
                    discard += record.discard;
                    deliver(
                        sink,
                        record.payload,
                        &mut b.spill,
                        &mut b.spill_start,
                        &mut b.spill_end,
                    )?;
                    Some(Drive::Record)
                }
                Some(Err(e)) => return Err(ConnError::Tls(e.to_string())),
                None => None,
            },
            ConnectionState::EncodeTlsData(mut encode) => {
                b.compact_out();
                let room = &mut b.out[b.out_end..];
                let free = room.len();
                match encode.encode(room) {
                    Ok(n) => b.out_end += n,
                    Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                        return Err(out_overflow(required_size, free));
                    }
                    Err(e) => return Err(ConnError::Tls(e.to_string())),
                }
                None
            }
            // The records are in the outgoing buffer, sent in order by `flush`.
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                None
            }
            ConnectionState::BlockedHandshake => Some(Drive::Blocked),
            ConnectionState::WriteTraffic(mut write) => {
                if b.app_len > 0 {
                    b.compact_out();
                    let room = &mut b.out[b.out_end..];
                    let free = room.len();
                    match write.encrypt(&b.app[..b.app_len], room) {
                        Ok(n) => b.out_end += n,
                        Err(EncryptError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => return Err(out_overflow(required_size, free)),
                        Err(e) => return Err(ConnError::Tls(e.to_string())),
                    }
                    b.app_len = 0;
                    None
                } else if b.close_notify {
                    b.close_notify = false;
                    b.compact_out();
                    let room = &mut b.out[b.out_end..];
                    let free = room.len();
                    match write.queue_close_notify(room) {
                        Ok(n) => b.out_end += n,
                        Err(EncryptError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => return Err(out_overflow(required_size, free)),
                        Err(e) => return Err(ConnError::Tls(e.to_string())),
                    }
                    None
                } else {
                    Some(Drive::Idle)
                }
            }
            ConnectionState::PeerClosed | ConnectionState::Closed => {
                return Err(ConnError::Closed(None));
            }
            other => return Err(ConnError::Tls(format!("unexpected TLS state {other:?}"))),
        };
        b.inc_start += discard;
        if let Some(stop) = stop {
            return Ok(stop);
        }
    }
}

/// Encrypts what waits to be sent (queued plaintext, our key update if the server asked for one,
/// a close_notify) into the outgoing buffer, sent by [`flush`].
pub(super) fn write_in_place(t: &mut Tls13, b: &mut TlsBufs) -> Result<(), ConnError> {
    if b.app_len > 0 {
        b.compact_out();
        let n = t.seal(
            ContentType::ApplicationData,
            &b.app[..b.app_len],
            &mut b.out[b.out_end..],
        )?;
        b.out_end += n;
        b.app_len = 0;
    }
    if t.key_update_due() {
        b.compact_out();
        b.out_end += t.send_key_update(&mut b.out[b.out_end..])?;
    }
    if b.close_notify {
        b.close_notify = false;
        b.compact_out();
        b.out_end += t.close_notify(&mut b.out[b.out_end..])?;
    }
    Ok(())
}

/// [`drive`] for a connection off rustls's record layer: encrypts what waits to be sent, then
/// decrypts the next whole record in place in the incoming buffer; its application data goes
/// to `sink` ([`Drive::Record`]), post-handshake messages are dealt with. [`Drive::Idle`] when
/// no whole record is left.
pub(super) fn drive_in_place(
    t: &mut Tls13,
    b: &mut TlsBufs,
    sink: &mut Sink<'_>,
) -> Result<Drive, ConnError> {
    write_in_place(t, b)?;
    loop {
        match t.open(&mut b.inc[b.inc_start..b.inc_end])? {
            Opened::Partial => return Ok(Drive::Idle),
            Opened::Data { used, data } => {
                deliver(
                    sink,
                    data,
                    &mut b.spill,
                    &mut b.spill_start,
                    &mut b.spill_end,
                )?;
                b.inc_start += used;
                return Ok(Drive::Record);
            }
            Opened::Control { used } => {
                b.inc_start += used;
                // Our key update, if the server asked for one.
                write_in_place(t, b)?;
            }
        }
    }
}

/// Whether a connection on rustls that [`drive`] found idle can leave rustls's record layer: TLS
/// 1.3 with secret extraction enabled, the handshake done, and no whole record left in the
/// incoming buffer (rustls decrypts a record in place before discarding it, and holds a
/// post-handshake message split across records that way: such a record must stay with it).
/// Idle means rustls holds no plaintext and no record to send.
pub(super) fn may_leave_rustls(
    tls: &UnbufferedClientConnection,
    cfg: &rustls::ClientConfig,
    b: &TlsBufs,
) -> bool {
    cfg.enable_secret_extraction
        && !tls.is_handshaking()
        && super::tls13::tls13_suite(tls).is_some()
        && !super::tls13::starts_with_record(&b.inc[b.inc_start..b.inc_end])
}

/// Reads what the socket has into the incoming buffer (one read: its stamp kept); true if
/// bytes came.
fn read_sock(
    sock: &mut StampedTcpStream,
    b: &mut TlsBufs,
    stamp: &mut Option<Stamp>,
) -> Result<bool, ConnError> {
    if b.inc_start > 0 {
        // Less than a record is left: move it to the front.
        b.inc.copy_within(b.inc_start..b.inc_end, 0);
        b.inc_end -= b.inc_start;
        b.inc_start = 0;
    }
    if b.inc_end == b.inc.len() {
        return Err(ConnError::Overflow(format!(
            "{TLS_IN} bytes received without a complete TLS record"
        )));
    }
    match sock.read(&mut b.inc[b.inc_end..]) {
        Ok(0) => Err(ConnError::Closed(None)),
        Ok(n) => {
            b.inc_end += n;
            if let Some(s) = sock.last_stamp() {
                *stamp = Some(s);
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(ConnError::Io(e.to_string())),
    }
}

/// Writes the outgoing TLS records, as far as the socket takes them.
fn flush(sock: &mut StampedTcpStream, b: &mut TlsBufs) -> Result<(), ConnError> {
    while b.out_start < b.out_end {
        match sock.write(&b.out[b.out_start..b.out_end]) {
            Ok(0) => return Err(ConnError::Io("the socket took no bytes".into())),
            Ok(n) => b.out_start += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ConnError::Io(e.to_string())),
        }
    }
    b.out_start = 0;
    b.out_end = 0;
    Ok(())
}

/// One WebSocket connection to `host:port` + `path` (see the module documentation).
pub struct Conn {
    host: String,
    port: u16,
    path: String,
    tls_config: Arc<rustls::ClientConfig>,
    opts: ConnOptions,
    state: State,
    bufs: TlsBufs,
    reader: FrameReader,
    writer: FrameWriter,
    /// The upgrade answer, until its end.
    http: Vec<u8>,
    key: String,
    /// The message taken out last (a copy: the reader's buffer moves on).
    message: Vec<u8>,
    /// The stamp of the last socket read that brought bytes.
    stamp: Option<Stamp>,
    /// The latency split of the message taken out last (and of what is under way).
    stages: crate::source::WireStages,
    clock: quanta::Clock,
    /// Why it ended last.
    last_error: Option<ConnError>,
    /// Pings answered.
    pub pongs: u64,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// A closed connection to `wss://host:port/path` (call [`Conn::open`]).
    pub fn new(
        host: &str,
        port: u16,
        path: &str,
        tls_config: Arc<rustls::ClientConfig>,
        opts: ConnOptions,
    ) -> Conn {
        let max = opts.max_message.max(4096);
        Conn {
            host: host.to_string(),
            port,
            path: path.to_string(),
            tls_config,
            bufs: TlsBufs::new(),
            reader: FrameReader::with_capacity(max),
            writer: FrameWriter::new(),
            http: Vec::with_capacity(4096),
            key: String::new(),
            message: Vec::with_capacity(max),
            stamp: None,
            stages: Default::default(),
            // quanta calibrates once per process; later clocks are cheap.
            clock: quanta::Clock::new(),
            last_error: None,
            pongs: 0,
            opts,
            state: State::Closed,
        }
    }

    /// Where the message taken out last was on its way: the wall time and TSC of its
    /// completing read, the TSC of its TLS record's decryption and of its frame's completion.
    pub fn stages(&self) -> crate::source::WireStages {
        self.stages
    }

    /// `wss://host:port/path`.
    pub fn url(&self) -> String {
        format!("wss://{}:{}{}", self.host, self.port, self.path)
    }

    /// Whether the open connection decrypts its TLS 1.3 records in place, off rustls's record
    /// layer (see the module documentation, "Buffers"); false while opening, on TLS 1.2, and
    /// until rustls has handed over.
    pub fn tls_in_place(&self) -> bool {
        matches!(
            self.state,
            State::Open {
                tls: Tls::InPlace(_),
                ..
            }
        )
    }

    /// Whether the WebSocket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// Whether it is closed (not opening, not open).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Why it ended last.
    pub fn last_error(&self) -> Option<&ConnError> {
        self.last_error.as_ref()
    }

    /// The message of the last [`Poll::Message`] (mutable: parsed in place).
    pub fn message(&mut self) -> &mut [u8] {
        &mut self.message
    }

    /// Changes the request path of the next [`Conn::open`] (e.g. a user data stream's new
    /// listenKey). Refused (false) unless the connection is closed.
    pub fn set_path(&mut self, path: &str) -> bool {
        if !self.is_closed() {
            return false;
        }
        self.path.clear();
        self.path.push_str(path);
        true
    }

    /// Sends `payload` as one masked text frame (a WebSocket API request). On a connection off
    /// rustls's record layer (TLS 1.3 once open, see "Buffers") the frame is encrypted and
    /// written to the socket now, as far as the socket takes it; otherwise it is queued and the
    /// next [`Conn::poll`] encrypts and writes it. What the socket does not take now goes out on
    /// the next poll. Allocates nothing. On an error the connection is closed (the next poll
    /// says [`Poll::Pending`]; [`Conn::last_error`] says why).
    pub fn send_text(&mut self, payload: &[u8]) -> Result<(), ConnError> {
        let res = self.send_text_inner(payload);
        if let Err(e) = &res {
            if self.is_open() {
                self.close(e.clone());
            }
        }
        res
    }

    fn send_text_inner(&mut self, payload: &[u8]) -> Result<(), ConnError> {
        let State::Open { sock, tls, .. } = &mut self.state else {
            return Err(ConnError::Io("not connected".into()));
        };
        let need = super::frame::client_frame_len(payload.len());
        let b = &mut self.bufs;
        if b.app_len + need > b.app.len() || need > MAX_RECORD_PLAINTEXT {
            return Err(ConnError::Overflow(format!(
                "a {} bytes request with {} bytes queued, over the {} bytes buffer",
                payload.len(),
                b.app_len,
                b.app.len().min(MAX_RECORD_PLAINTEXT)
            )));
        }
        let n = self
            .writer
            .text(payload, &mut b.app[b.app_len..])
            .map_err(|e| ConnError::Frame(e.to_string()))?;
        b.app_len += n;
        if let Tls::InPlace(t) = tls {
            write_in_place(t, b)?;
            flush(sock, b)?;
        }
        Ok(())
    }

    /// Bytes encrypted but not yet taken by the socket (0: everything sent went out).
    pub fn unsent(&self) -> usize {
        self.bufs.out_end - self.bufs.out_start + self.bufs.app_len
    }

    /// Starts connecting (a closed connection; an open one is left alone).
    pub fn open(&mut self) -> Result<(), ConnError> {
        if !self.is_closed() {
            return Ok(());
        }
        let addr = self.resolve()?;
        let tcp =
            mio::net::TcpStream::connect(addr).map_err(|e| ConnError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| ConnError::Tls(e.to_string()))?;
        let tls = UnbufferedClientConnection::new(Arc::clone(&self.tls_config), name)
            .map_err(|e| ConnError::Tls(e.to_string()))?;
        self.bufs.clear();
        self.reader.clear();
        self.http.clear();
        self.stamp = None;
        self.state = State::Opening {
            sock: StampedTcpStream::new(tcp),
            tls: Box::new(tls),
            since: Instant::now(),
            upgrade_sent: false,
        };
        Ok(())
    }

    fn resolve(&self) -> Result<SocketAddr, ConnError> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| ConnError::Resolve(self.host.clone(), e.to_string()))?
            .next()
            .ok_or_else(|| ConnError::Resolve(self.host.clone(), "no address".into()))
    }

    /// Ends the connection now (a close frame and a TLS close_notify are attempted when open).
    pub fn close(&mut self, why: ConnError) {
        if let State::Open { sock, tls, .. } = &mut self.state {
            let mut out = [0u8; 64];
            if let Ok(n) = self.writer.close(1000, "", &mut out) {
                let _ = self.bufs.queue_app(&out[..n]);
            }
            self.bufs.close_notify = true;
            match tls {
                Tls::Rustls(tls) => {
                    // Records still buffered are dropped on the way to the point where rustls
                    // encrypts.
                    for _ in 0..64 {
                        match drive(tls, &mut self.bufs, &mut Sink::Drop) {
                            Ok(Drive::Record) => continue,
                            _ => break,
                        }
                    }
                }
                Tls::InPlace(t) => {
                    let _ = write_in_place(t, &mut self.bufs);
                }
                Tls::Switching => {}
            }
            let _ = flush(sock, &mut self.bufs);
        }
        self.state = State::Closed;
        self.last_error = Some(why);
    }

    /// One step: the next message if one is buffered or arrives now, otherwise as much progress
    /// as the network allows without waiting. `now` is the caller's clock for the timeouts.
    pub fn poll(&mut self, now: Instant) -> Poll {
        let res = match self.state {
            State::Closed => return Poll::Pending,
            State::Opening { .. } => self.poll_opening(now),
            State::Open { .. } => self.poll_open(now, true),
        };
        match res {
            Ok(p) => p,
            Err(e) => {
                self.close(e);
                Poll::Ended
            }
        }
    }

    /// The next message only if the connection's buffers already hold it (a complete frame,
    /// decrypted bytes waiting for room, a whole TLS record): no socket call. What a burst
    /// brought in one read goes out without a socket poll of every connection between its
    /// messages ([`Conn::poll`] does the rest).
    pub fn poll_buffered(&mut self, now: Instant) -> Poll {
        if !matches!(self.state, State::Open { .. }) {
            return Poll::Pending;
        }
        match self.poll_open(now, false) {
            Ok(p) => p,
            Err(e) => {
                self.close(e);
                Poll::Ended
            }
        }
    }

    fn poll_opening(&mut self, now: Instant) -> Result<Poll, ConnError> {
        let State::Opening {
            sock,
            tls,
            since,
            upgrade_sent,
        } = &mut self.state
        else {
            return Ok(Poll::Pending);
        };
        if now.duration_since(*since) > self.opts.connect_timeout {
            return Err(ConnError::Timeout(self.opts.connect_timeout));
        }
        if let Some(e) = sock.get_ref().take_error().ok().flatten() {
            return Err(ConnError::Connect(e.to_string()));
        }
        if sock.get_ref().peer_addr().is_err() {
            // Still connecting.
            return Ok(Poll::Pending);
        }
        // The handshake, the upgrade request once it is done, then the answer's head (as
        // decrypted records, into `http`) until its end.
        let end = loop {
            match drive(tls, &mut self.bufs, &mut Sink::Head(&mut self.http))? {
                Drive::Record => {
                    if let Some(end) = find(&self.http, b"\r\n\r\n") {
                        break end;
                    }
                    continue;
                }
                Drive::Idle if !*upgrade_sent => {
                    self.key = handshake_key();
                    let req = format!(
                        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ringmaker\r\n\r\n",
                        self.path,
                        host_header(&self.host, self.port),
                        self.key
                    );
                    self.bufs.queue_app(req.as_bytes())?;
                    *upgrade_sent = true;
                    continue;
                }
                Drive::Idle | Drive::Blocked => {}
            }
            flush(sock, &mut self.bufs)?;
            if read_sock(sock, &mut self.bufs, &mut self.stamp)? {
                continue;
            }
            return Ok(Poll::Pending);
        };
        check_upgrade(&self.http[..end + 4], &self.key)?;
        // Frames that came with the head.
        let rest = end + 4;
        if self.reader.push(&self.http[rest..]) < self.http.len() - rest {
            return Err(ConnError::Frame(
                "frames behind the upgrade overflow the buffer".into(),
            ));
        }
        self.http.clear();
        let (sock, tls) = match std::mem::replace(&mut self.state, State::Closed) {
            State::Opening { sock, tls, .. } => (sock, tls),
            _ => return Ok(Poll::Pending),
        };
        self.state = State::Open {
            sock,
            tls: Tls::Rustls(tls),
            since: now,
            last_rx: now,
        };
        Ok(Poll::Opened)
    }

    fn poll_open(&mut self, now: Instant, read: bool) -> Result<Poll, ConnError> {
        let entered = self.clock.raw();
        loop {
            // 1. A complete frame already buffered.
            match self.reader.next() {
                Ok(Some(frame)) => match frame {
                    Frame::Text(t) | Frame::Binary(t) => {
                        self.message.clear();
                        self.message.extend_from_slice(t);
                        self.stages.frame = self.clock.raw();
                        // Decrypted before this poll began: it waited behind earlier messages.
                        self.stages.queued = if self.stages.tls < entered {
                            entered
                        } else {
                            0
                        };
                        let stamp = self.stamp.unwrap_or(Stamp {
                            ns: super::stamp::system_now_ns(),
                            source: super::stamp::StampSource::Tsc,
                        });
                        return Ok(Poll::Message(stamp));
                    }
                    Frame::Ping(p) => {
                        let mut out = [0u8; super::frame::MAX_CLIENT_HEADER + 125];
                        let n = self
                            .writer
                            .pong(p, &mut out)
                            .map_err(|e| ConnError::Frame(e.to_string()))?;
                        // Encrypted by `drive` below, sent by `flush`.
                        self.bufs.queue_app(&out[..n])?;
                        self.pongs += 1;
                        continue;
                    }
                    Frame::Pong(_) => continue,
                    Frame::Close(c) => {
                        return Err(ConnError::Closed(c.map(|(c, r)| (c, r.to_string()))));
                    }
                },
                Ok(None) => {}
                Err(e) => return Err(ConnError::Frame(e.to_string())),
            }
            let State::Open {
                sock,
                tls,
                since,
                last_rx,
            } = &mut self.state
            else {
                return Ok(Poll::Pending);
            };
            // 2. Decrypted bytes the frame reader had no room for.
            if self.bufs.has_spill() {
                let b = &mut self.bufs;
                let n = self.reader.push(&b.spill[b.spill_start..b.spill_end]);
                if n == 0 {
                    return Err(ConnError::Frame(format!(
                        "a message over the {} bytes buffer",
                        self.reader.max_message()
                    )));
                }
                b.spill_start += n;
                continue;
            }
            // 3. A complete TLS record already received.
            let sink = &mut Sink::Frames(&mut self.reader);
            let step = match tls {
                Tls::InPlace(t) => drive_in_place(t, &mut self.bufs, sink)?,
                Tls::Rustls(c) => {
                    let step = drive(c, &mut self.bufs, sink)?;
                    if step == Drive::Idle && may_leave_rustls(c, &self.tls_config, &self.bufs) {
                        // TLS 1.3 and rustls holds nothing: from here on records are
                        // decrypted in place (what is left in `inc` is less than a record, not
                        // touched by rustls).
                        let Tls::Rustls(c) = std::mem::replace(tls, Tls::Switching) else {
                            return Err(ConnError::Tls("lost while switching".into()));
                        };
                        *tls = Tls::InPlace(Box::new(Tls13::new(*c)?));
                    }
                    step
                }
                Tls::Switching => return Err(ConnError::Tls("lost while switching".into())),
            };
            if step == Drive::Record {
                self.stages.tls = self.clock.raw();
                continue;
            }
            // 4. The socket.
            if !read {
                return Ok(Poll::Pending);
            }
            flush(sock, &mut self.bufs)?;
            if read_sock(sock, &mut self.bufs, &mut self.stamp)? {
                // The read's own times, for the latency split (kernel stamp → here).
                self.stages.read_wall_ns = super::stamp::system_now_ns();
                self.stages.read = self.clock.raw();
                *last_rx = now;
                continue;
            }
            if now.duration_since(*last_rx) > self.opts.silence {
                return Err(ConnError::Silent(self.opts.silence));
            }
            if now.duration_since(*since) > self.opts.max_age {
                return Err(ConnError::Aged(self.opts.max_age));
            }
            return Ok(Poll::Pending);
        }
    }
}

fn host_header(host: &str, port: u16) -> String {
    let h = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == 443 {
        h
    } else {
        format!("{h}:{port}")
    }
}

/// A fresh `Sec-WebSocket-Key` (16 bytes, base64): not a secret, only unique.
fn handshake_key() -> String {
    use base64::Engine as _;
    let mut w = FrameWriter::new();
    let mut bytes = [0u8; 16];
    for c in bytes.chunks_mut(4) {
        c.copy_from_slice(&w.mask());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks an upgrade answer's head: `101`, `Upgrade: websocket`, the accept key.
fn check_upgrade(head: &[u8], key: &str) -> Result<(), ConnError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ConnError::Upgrade("a cut head".into())),
        Err(e) => return Err(ConnError::Upgrade(e.to_string())),
    }
    if resp.code != Some(101) {
        return Err(ConnError::Upgrade(format!(
            "HTTP {} {}",
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(ConnError::Upgrade("no Upgrade: websocket".into()));
    }
    let want = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if header("sec-websocket-accept") != Some(want.as_str()) {
        return Err(ConnError::Upgrade("a wrong Sec-WebSocket-Accept".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_answers_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_upgrade(ok.as_bytes(), key), Ok(()));
        let wrong = ok.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAA");
        assert!(check_upgrade(wrong.as_bytes(), key).is_err());
        let refused = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            check_upgrade(refused.as_bytes(), key),
            Err(ConnError::Upgrade("HTTP 404 Not Found".into()))
        );
        assert!(check_upgrade(b"garbage\r\n\r\n", key).is_err());
        assert_eq!(host_header("127.0.0.1", 443), "127.0.0.1");
        assert_eq!(host_header("::1", 8443), "[::1]:8443");
        assert_eq!(handshake_key().len(), 24);
    }
}
