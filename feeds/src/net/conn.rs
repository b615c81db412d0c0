//! One market-stream connection, driven without blocking: TCP connect (`mio`), TLS (`rustls`,
//! driven by hand so that every socket read is a stamped `recvmsg`), the HTTP/1.1 WebSocket
//! upgrade (by hand, `httparse`), then server frames through an allocation-free
//! [`FrameReader`]. Pings are answered, a close or any error ends the connection; the caller
//! ([`crate::net::NetSource`]) reconnects it after a jittered backoff.
//!
//! # Stamps
//!
//! Each socket read is a `recvmsg` carrying the kernel's receive stamp ([`StampedTcpStream`]).
//! The connection reads the socket only when no complete message is left in its buffers, so a
//! message taken out carries the stamp of the read that completed it.

use super::frame::{Frame, FrameReader, FrameWriter};
use super::stamp::{Stamp, StampedTcpStream};
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
}

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
        tls: Box<rustls::ClientConnection>,
        since: Instant,
        upgrade_sent: bool,
    },
    Open {
        sock: StampedTcpStream,
        tls: Box<rustls::ClientConnection>,
        since: Instant,
        last_rx: Instant,
    },
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

/// One WebSocket connection to `host:port` + `path` (see the module documentation).
pub struct Conn {
    host: String,
    port: u16,
    path: String,
    tls_config: Arc<rustls::ClientConfig>,
    opts: ConnOptions,
    state: State,
    reader: FrameReader,
    writer: FrameWriter,
    /// The upgrade answer, until its end.
    http: Vec<u8>,
    key: String,
    /// The message taken out last (a copy: the reader's buffer moves on).
    message: Vec<u8>,
    /// The stamp of the last socket read that brought bytes.
    stamp: Option<Stamp>,
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
            reader: FrameReader::with_capacity(max),
            writer: FrameWriter::new(),
            http: Vec::with_capacity(4096),
            key: String::new(),
            message: Vec::with_capacity(max),
            stamp: None,
            last_error: None,
            pongs: 0,
            opts,
            state: State::Closed,
        }
    }

    /// `wss://host:port/path`.
    pub fn url(&self) -> String {
        format!("wss://{}:{}{}", self.host, self.port, self.path)
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
        let tls = rustls::ClientConnection::new(Arc::clone(&self.tls_config), name)
            .map_err(|e| ConnError::Tls(e.to_string()))?;
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

    /// Ends the connection now (a close frame is attempted when open).
    pub fn close(&mut self, why: ConnError) {
        if let State::Open { sock, tls, .. } = &mut self.state {
            let mut out = [0u8; 64];
            if let Ok(n) = self.writer.close(1000, "", &mut out) {
                let _ = tls.writer().write_all(&out[..n]);
            }
            tls.send_close_notify();
            let _ = tls.write_tls(sock);
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
            State::Open { .. } => self.poll_open(now),
        };
        match res {
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
        flush_tls(tls, sock)?;
        read_tls(tls, sock, &mut self.stamp)?;
        if tls.is_handshaking() {
            flush_tls(tls, sock)?;
            return Ok(Poll::Pending);
        }
        if !*upgrade_sent {
            self.key = handshake_key();
            let req = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ringmaker\r\n\r\n",
                self.path,
                host_header(&self.host, self.port),
                self.key
            );
            tls.writer()
                .write_all(req.as_bytes())
                .map_err(|e| ConnError::Io(e.to_string()))?;
            *upgrade_sent = true;
            flush_tls(tls, sock)?;
        }
        // The answer's head, byte chunks at a time, until its end.
        let mut chunk = [0u8; 1024];
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Err(ConnError::Closed(None)),
                Ok(n) => {
                    if self.http.len() + n > 16 << 10 {
                        return Err(ConnError::Upgrade("an answer head over 16 KiB".into()));
                    }
                    self.http.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ConnError::Io(e.to_string())),
            }
        }
        let Some(end) = find(&self.http, b"\r\n\r\n") else {
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
            tls,
            since: now,
            last_rx: now,
        };
        Ok(Poll::Opened)
    }

    fn poll_open(&mut self, now: Instant) -> Result<Poll, ConnError> {
        loop {
            // 1. A complete frame already buffered.
            match self.reader.next() {
                Ok(Some(frame)) => match frame {
                    Frame::Text(t) | Frame::Binary(t) => {
                        self.message.clear();
                        self.message.extend_from_slice(t);
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
                        let State::Open { sock, tls, .. } = &mut self.state else {
                            return Ok(Poll::Pending);
                        };
                        tls.writer()
                            .write_all(&out[..n])
                            .map_err(|e| ConnError::Io(e.to_string()))?;
                        flush_tls(tls, sock)?;
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
            // 2. Plaintext rustls already holds.
            match self.reader.fill(&mut tls.reader()) {
                Ok(0) => return Err(ConnError::Closed(None)),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(ConnError::Frame(e.to_string())),
            }
            // 3. The socket.
            flush_tls(tls, sock)?;
            if read_tls(tls, sock, &mut self.stamp)? {
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

/// Reads what the socket has into rustls (one read: its stamp kept); true if bytes came.
fn read_tls(
    tls: &mut rustls::ClientConnection,
    sock: &mut StampedTcpStream,
    stamp: &mut Option<Stamp>,
) -> Result<bool, ConnError> {
    if !tls.wants_read() {
        return Ok(false);
    }
    match tls.read_tls(sock) {
        Ok(0) => Err(ConnError::Closed(None)),
        Ok(_) => {
            if let Some(s) = sock.last_stamp() {
                *stamp = Some(s);
            }
            tls.process_new_packets()
                .map_err(|e| ConnError::Tls(e.to_string()))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(ConnError::Io(e.to_string())),
    }
}

/// Writes what rustls has to send, as far as the socket takes it.
fn flush_tls(
    tls: &mut rustls::ClientConnection,
    sock: &mut StampedTcpStream,
) -> Result<(), ConnError> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(ConnError::Io(e.to_string())),
        }
    }
    Ok(())
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
