//! A TLS 1.3 connection's records after the handshake, decrypted in place in the connection's
//! receive buffer with rustls's own AEAD (the suite's `Tls13AeadAlgorithm`), off rustls's record
//! layer, which copies every record's plaintext into a fresh `Vec`.
//!
//! rustls keeps the key schedule: the connection is turned into a [`KernelConnection`] and its
//! traffic secrets are taken out ([`UnbufferedClientConnection::dangerous_into_kernel_connection`]);
//! post-handshake messages go back to it (`NewSessionTicket` to
//! [`KernelConnection::handle_new_session_ticket`], `KeyUpdate` to
//! [`KernelConnection::update_rx_secret`] / [`KernelConnection::update_tx_secret`]). This module
//! only frames records, keeps the sequence numbers and dispatches on the inner content type.
//!
//! Nothing here allocates per received record; a sent record costs one allocation (rustls's
//! `MessageEncrypter` returns an owned record), and a key update one `Box` per direction.

use super::conn::ConnError;
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::crypto::cipher::{AeadKey, InboundOpaqueMessage, Iv, MessageDecrypter};
use rustls::kernel::KernelConnection;
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, HandshakeType, ProtocolVersion,
    SupportedCipherSuite, Tls13CipherSuite,
};

/// A record's header: outer content type, legacy version, length.
pub(super) const HEADER: usize = 5;
/// The longest record body a TLS 1.3 peer may send (RFC 8446 §5.2: 2^14 + 256).
pub(super) const MAX_CIPHERTEXT: usize = (1 << 14) + 256;
/// The largest plaintext of one record (2^14).
const MAX_PLAINTEXT: usize = 1 << 14;
/// The longest post-handshake message taken across records (a session ticket is at most
/// ~2^17 bytes: a 2^16 ticket and 2^16 of extensions).
const MAX_HANDSHAKE_MESSAGE: usize = 1 << 18;
/// The outer content type of every protected TLS 1.3 record.
const APPLICATION_DATA: u8 = 23;

/// What [`Tls13::open`] found at the front of the buffer.
#[derive(Debug)]
pub(super) enum Opened<'a> {
    /// Less than a whole record (wait for more bytes).
    Partial,
    /// A record of `used` bytes holding application data, decrypted in place (`data`, maybe
    /// empty, is inside the buffer).
    Data { used: usize, data: &'a [u8] },
    /// A record of `used` bytes for TLS itself (session tickets, a key update), dealt with.
    Control { used: usize },
}

/// A TLS 1.3 client connection's record protection once the handshake is over.
pub(super) struct Tls13 {
    kernel: KernelConnection<ClientConnectionData>,
    suite: &'static Tls13CipherSuite,
    dec: Box<dyn MessageDecrypter>,
    /// Our sending key: records sealed in place in the outgoing buffer (rustls's encrypter
    /// returns each record in a fresh `Vec`: an allocation per request sent).
    enc: Sealer,
    /// The sequence number of the next record received.
    rx_seq: u64,
    /// The sequence number of the next record sent.
    tx_seq: u64,
    /// The peer asked for our key update (sent by [`Tls13::send_key_update`]).
    key_update_due: bool,
    /// The start of a post-handshake message continued in the next record (empty, and without
    /// an allocation, unless the server splits one).
    partial: Vec<u8>,
}

impl std::fmt::Debug for Tls13 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls13")
            .field("suite", &self.suite.common.suite)
            .field("rx_seq", &self.rx_seq)
            .field("tx_seq", &self.tx_seq)
            .finish_non_exhaustive()
    }
}

fn tls(e: impl std::fmt::Display) -> ConnError {
    ConnError::Tls(e.to_string())
}

fn key_iv(secrets: ConnectionTrafficSecrets) -> Result<(AeadKey, Iv), ConnError> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv)),
        _ => Err(ConnError::Tls("traffic secrets of an unknown AEAD".into())),
    }
}

/// The AEAD tag of every TLS 1.3 suite (AES-GCM, ChaCha20-Poly1305).
const TAG_LEN: usize = 16;

/// A sending key that seals records in place (ring's AEAD, the same algorithms rustls's `ring`
/// provider uses for these suites): TLS 1.3's per-record nonce is the IV with the record's
/// sequence number XORed into its last eight bytes.
struct Sealer {
    key: ring::aead::LessSafeKey,
    iv: [u8; ring::aead::NONCE_LEN],
}

impl Sealer {
    fn new(secrets: ConnectionTrafficSecrets) -> Result<Sealer, ConnError> {
        let (alg, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&ring::aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&ring::aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&ring::aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(ConnError::Tls("traffic secrets of an unknown AEAD".into())),
        };
        let key = ring::aead::UnboundKey::new(alg, key.as_ref())
            .map_err(|_| ConnError::Tls("a sending key of the wrong length".into()))?;
        let iv: [u8; ring::aead::NONCE_LEN] = iv
            .as_ref()
            .try_into()
            .map_err(|_| ConnError::Tls("a sending IV of the wrong length".into()))?;
        Ok(Sealer {
            key: ring::aead::LessSafeKey::new(key),
            iv,
        })
    }

    /// Seals `inner` in place under record number `seq` with `header` as the associated data;
    /// the tag goes to `tag` (16 bytes).
    fn seal(
        &self,
        seq: u64,
        header: &[u8; HEADER],
        inner: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), ConnError> {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        let t = self
            .key
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(header),
                inner,
            )
            .map_err(|_| ConnError::Tls("sealing a record failed".into()))?;
        tag.copy_from_slice(t.as_ref());
        Ok(())
    }
}

/// The TLS 1.3 suite of a connection, if it negotiated TLS 1.3.
pub(super) fn tls13_suite(conn: &UnbufferedClientConnection) -> Option<&'static Tls13CipherSuite> {
    if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return None;
    }
    match conn.negotiated_cipher_suite() {
        Some(SupportedCipherSuite::Tls13(suite)) => Some(suite),
        _ => None,
    }
}

/// The length of the record body announced by the header at the front of `buf`: `None` while
/// the header is incomplete; an error as soon as the bytes there cannot start a protected TLS
/// 1.3 record (another outer type, another legacy version, a body over 2^14 + 256).
fn record_len(buf: &[u8]) -> Result<Option<usize>, ConnError> {
    if let Some(&typ) = buf.first() {
        if typ != APPLICATION_DATA {
            return Err(ConnError::Tls(format!(
                "a record of outer content type {typ} after the handshake (only 23, \
                 application data, is allowed)"
            )));
        }
    }
    if buf.len() >= 3 && buf[1..3] != [3, 3] {
        return Err(ConnError::Tls(format!(
            "a record of legacy version {:#04x}{:02x} (not 0x0303)",
            buf[1], buf[2]
        )));
    }
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
    if len > MAX_CIPHERTEXT {
        return Err(ConnError::Tls(format!(
            "a record of {len} bytes (at most {MAX_CIPHERTEXT})"
        )));
    }
    Ok(Some(len))
}

/// Whether `buf` starts with a whole record (whatever its header says, unchecked).
pub(super) fn starts_with_record(buf: &[u8]) -> bool {
    buf.len() >= HEADER && buf.len() - HEADER >= u16::from_be_bytes([buf[3], buf[4]]) as usize
}

impl Tls13 {
    /// Takes the traffic secrets out of a TLS 1.3 connection whose handshake is done and whose
    /// records are all processed; rustls keeps the key schedule. The connection is consumed
    /// whatever happens: check [`tls13_suite`], `is_handshaking` and that rustls has nothing
    /// buffered (it reached `WriteTraffic`) first.
    pub(super) fn new(conn: UnbufferedClientConnection) -> Result<Tls13, ConnError> {
        let suite =
            tls13_suite(&conn).ok_or_else(|| ConnError::Tls("not a TLS 1.3 connection".into()))?;
        let (secrets, kernel) = conn.dangerous_into_kernel_connection().map_err(tls)?;
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let (key, iv) = key_iv(rx)?;
        let dec = suite.aead_alg.decrypter(key, iv);
        let enc = Sealer::new(tx)?;
        Ok(Tls13 {
            kernel,
            suite,
            dec,
            enc,
            rx_seq,
            tx_seq,
            key_update_due: false,
            partial: Vec::new(),
        })
    }

    /// The sequence numbers of the next record received and sent.
    #[cfg(test)]
    pub(super) fn seqs(&self) -> (u64, u64) {
        (self.rx_seq, self.tx_seq)
    }

    /// Decrypts the record at the front of `buf` in place, if it is whole. Application data is
    /// handed back (inside `buf`); post-handshake messages go to rustls's key schedule; an alert
    /// ends the connection ([`ConnError::Closed`] for close_notify, [`ConnError::Tls`] for any
    /// other), and so does anything a TLS 1.3 server may not send here.
    pub(super) fn open<'a>(&mut self, buf: &'a mut [u8]) -> Result<Opened<'a>, ConnError> {
        let Some(len) = record_len(buf)? else {
            return Ok(Opened::Partial);
        };
        let used = HEADER + len;
        if buf.len() < used {
            return Ok(Opened::Partial);
        }
        let body = &mut buf[HEADER..used];
        let seq = self.rx_seq;
        let plain = self
            .dec
            .decrypt(
                InboundOpaqueMessage::new(
                    ContentType::ApplicationData,
                    ProtocolVersion::TLSv1_2,
                    body,
                ),
                seq,
            )
            .map_err(|e| ConnError::Tls(format!("record {seq}: {e}")))?;
        self.rx_seq += 1;
        // rustls's TLS 1.3 decrypter has stripped the padding and the inner content type.
        if !self.partial.is_empty() && plain.typ != ContentType::Handshake {
            // RFC 8446 §5.1: nothing between the records of one handshake message.
            return Err(ConnError::Tls(format!(
                "a {:?} record inside a split handshake message",
                plain.typ
            )));
        }
        match plain.typ {
            ContentType::ApplicationData => Ok(Opened::Data {
                used,
                data: plain.payload,
            }),
            ContentType::Handshake => {
                self.handshake(plain.payload)?;
                Ok(Opened::Control { used })
            }
            ContentType::Alert => Err(alert(plain.payload)),
            other => Err(ConnError::Tls(format!(
                "a {other:?} record after the handshake"
            ))),
        }
    }

    /// The post-handshake messages of one record; the start of one it does not end waits for
    /// the next record.
    fn handshake(&mut self, record: &[u8]) -> Result<(), ConnError> {
        if record.is_empty() {
            return Err(ConnError::Tls("an empty handshake record".into()));
        }
        if self.partial.is_empty() {
            let left = self.messages(record)?;
            self.partial
                .extend_from_slice(&record[record.len() - left..]);
        } else {
            if self.partial.len() + record.len() > MAX_HANDSHAKE_MESSAGE {
                return Err(ConnError::Tls(format!(
                    "a post-handshake message over {MAX_HANDSHAKE_MESSAGE} bytes"
                )));
            }
            let mut joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(record);
            let left = self.messages(&joined)?;
            joined.drain(..joined.len() - left);
            self.partial = joined;
        }
        Ok(())
    }

    /// The whole post-handshake messages at the front of `msgs`; how many bytes are left (the
    /// start of a message).
    fn messages(&mut self, mut msgs: &[u8]) -> Result<usize, ConnError> {
        while !msgs.is_empty() {
            let &[typ, a, b, c, ref rest @ ..] = msgs else {
                return Ok(msgs.len());
            };
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if len > MAX_HANDSHAKE_MESSAGE {
                return Err(ConnError::Tls(format!(
                    "a post-handshake message of {len} bytes (at most {MAX_HANDSHAKE_MESSAGE})"
                )));
            }
            if rest.len() < len {
                return Ok(msgs.len());
            }
            let (body, tail) = rest.split_at(len);
            match HandshakeType::from(typ) {
                HandshakeType::NewSessionTicket => {
                    self.kernel.handle_new_session_ticket(body).map_err(tls)?;
                }
                HandshakeType::KeyUpdate => {
                    // RFC 8446 §5.1: a message that changes keys ends its record.
                    if !tail.is_empty() {
                        return Err(ConnError::Tls(
                            "records after a KeyUpdate in its record".into(),
                        ));
                    }
                    let requested = match body {
                        [0] => false,
                        [1] => true,
                        _ => return Err(ConnError::Tls("a malformed KeyUpdate".into())),
                    };
                    let (seq, secrets) = self.kernel.update_rx_secret().map_err(tls)?;
                    let (key, iv) = key_iv(secrets)?;
                    self.dec = self.suite.aead_alg.decrypter(key, iv);
                    self.rx_seq = seq;
                    self.key_update_due |= requested;
                }
                other => {
                    return Err(ConnError::Tls(format!(
                        "an unexpected post-handshake {other:?}"
                    )));
                }
            }
            msgs = tail;
        }
        Ok(0)
    }

    /// Whether the peer asked for a key update not sent yet ([`Tls13::send_key_update`]).
    pub(super) fn key_update_due(&self) -> bool {
        self.key_update_due
    }

    /// Encrypts `plain` as records of type `typ` (2^14 bytes of plaintext at most each) into
    /// `out`; the bytes written. [`ConnError::Overflow`] if they do not fit.
    pub(super) fn seal(
        &mut self,
        typ: ContentType,
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ConnError> {
        let mut n = 0;
        for chunk in plain.chunks(MAX_PLAINTEXT) {
            // RFC 8446 §5.2: header (application data, 0x0303, length), then the sealed inner
            // plaintext (content, its real type; no padding) and the tag.
            let body = chunk.len() + 1 + TAG_LEN;
            let need = HEADER + body;
            if out.len() - n < need {
                return Err(super::conn::out_overflow(need, out.len() - n));
            }
            let rec = &mut out[n..n + need];
            let len = (body as u16).to_be_bytes();
            let header = [u8::from(ContentType::ApplicationData), 3, 3, len[0], len[1]];
            rec[..HEADER].copy_from_slice(&header);
            rec[HEADER..HEADER + chunk.len()].copy_from_slice(chunk);
            rec[HEADER + chunk.len()] = u8::from(typ);
            let (inner, tag) = rec[HEADER..].split_at_mut(chunk.len() + 1);
            self.enc.seal(self.tx_seq, &header, inner, tag)?;
            self.tx_seq += 1;
            n += need;
        }
        Ok(n)
    }

    /// Sends our KeyUpdate (`update_not_requested`) under the current key, then switches the
    /// sending key; the bytes written to `out`.
    pub(super) fn send_key_update(&mut self, out: &mut [u8]) -> Result<usize, ConnError> {
        let key_update = [u8::from(HandshakeType::KeyUpdate), 0, 0, 1, 0];
        let n = self.seal(ContentType::Handshake, &key_update, out)?;
        let (seq, secrets) = self.kernel.update_tx_secret().map_err(tls)?;
        self.enc = Sealer::new(secrets)?;
        self.tx_seq = seq;
        self.key_update_due = false;
        Ok(n)
    }

    /// A close_notify alert into `out`; the bytes written.
    pub(super) fn close_notify(&mut self, out: &mut [u8]) -> Result<usize, ConnError> {
        // Level warning (1), description close_notify (0).
        self.seal(ContentType::Alert, &[1, 0], out)
    }
}

/// The error an alert record ends the connection with.
fn alert(payload: &[u8]) -> ConnError {
    match payload {
        [_, 0] => ConnError::Closed(None),
        &[_, desc] => ConnError::Tls(format!(
            "the server sent an alert: {:?}",
            AlertDescription::from(desc)
        )),
        _ => ConnError::Tls(format!("a malformed alert of {} bytes", payload.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::conn::{
        drive, drive_in_place, may_leave_rustls, write_in_place, Drive, Sink, TlsBufs,
    };
    use crate::net::frame::{Frame, FrameReader};
    use rustls::crypto::cipher::{MessageEncrypter, OutboundChunks, OutboundPlainMessage};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ServerConfig, ServerConnection, SupportedProtocolVersion};
    use std::io::{Read, Write};
    use std::sync::Arc;

    fn configs(
        server_versions: &[&'static SupportedProtocolVersion],
    ) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(server_versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        // For [`Forger`].
        server.enable_secret_extraction = true;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.enable_secret_extraction = true;
        (Arc::new(server), Arc::new(client))
    }

    fn to_server(server: &mut ServerConnection, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            server.read_tls(&mut bytes).unwrap();
            server.process_new_packets().unwrap();
        }
    }

    fn from_server(server: &mut ServerConnection) -> Vec<u8> {
        let mut v = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut v).unwrap();
        }
        v
    }

    /// A handshake in memory, the client driven as `Conn` drives it, until the client is idle
    /// (its Finished delivered; what the server sent after it, not).
    fn handshake(
        server_versions: &[&'static SupportedProtocolVersion],
    ) -> (
        ServerConnection,
        UnbufferedClientConnection,
        TlsBufs,
        Arc<ClientConfig>,
    ) {
        let (server_cfg, client_cfg) = configs(server_versions);
        let mut server = ServerConnection::new(server_cfg).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = UnbufferedClientConnection::new(client_cfg.clone(), name).unwrap();
        let mut b = TlsBufs::new();
        for _ in 0..20 {
            let step = drive(&mut client, &mut b, &mut Sink::Drop).unwrap();
            to_server(&mut server, &b.take_sent());
            if step == Drive::Idle {
                return (server, client, b, client_cfg);
            }
            b.push_received(&from_server(&mut server));
        }
        panic!("no handshake");
    }

    /// A TLS 1.3 connection off rustls's record layer, the server's session tickets (sent after
    /// the client's Finished) already through it.
    fn in_place() -> (ServerConnection, Tls13, TlsBufs, FrameReader) {
        let (mut server, client, mut b, cfg) = handshake(&[&rustls::version::TLS13]);
        assert!(may_leave_rustls(&client, &cfg, &b));
        let mut t = Tls13::new(client).unwrap();
        let tickets = from_server(&mut server);
        assert!(!tickets.is_empty(), "the server sends session tickets");
        b.push_received(&tickets);
        let mut reader = FrameReader::with_capacity(4096);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Idle));
        assert!(t.seqs().0 > 0, "the tickets' records were decrypted");
        assert_eq!(text(&mut reader), None);
        (server, t, b, reader)
    }

    fn step(t: &mut Tls13, b: &mut TlsBufs, reader: &mut FrameReader) -> Result<Drive, ConnError> {
        drive_in_place(t, b, &mut Sink::Frames(reader))
    }

    /// A server text frame (short).
    fn frame(text: &str) -> Vec<u8> {
        let mut f = vec![0x81, text.len() as u8];
        f.extend_from_slice(text.as_bytes());
        f
    }

    fn text(reader: &mut FrameReader) -> Option<String> {
        match reader.next().unwrap() {
            Some(Frame::Text(t)) => Some(String::from_utf8(t.to_vec()).unwrap()),
            None => None,
            Some(other) => panic!("not a text frame: {other:?}"),
        }
    }

    /// The records the server sends for `frames`, one write (one record) each.
    fn records(server: &mut ServerConnection, frames: &[&str]) -> Vec<u8> {
        for f in frames {
            server.writer().write_all(&frame(f)).unwrap();
        }
        from_server(server)
    }

    #[test]
    fn records_split_across_reads_or_several_in_one_read_are_decrypted() {
        let (mut server, mut t, mut b, mut reader) = in_place();
        let (rx, _) = t.seqs();

        // One record over three reads, cut inside the header and inside the body.
        let rec = records(&mut server, &["split over reads"]);
        b.push_received(&rec[..3]);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Idle));
        b.push_received(&rec[3..12]);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Idle));
        assert_eq!(text(&mut reader), None);
        b.push_received(&rec[12..]);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert_eq!(text(&mut reader).as_deref(), Some("split over reads"));
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Idle));
        assert_eq!(t.seqs().0, rx + 1);

        // Two records and a half in one read: one record per step, the half waits.
        let two = records(&mut server, &["one", "two"]);
        let third = records(&mut server, &["three"]);
        let mut read = two.clone();
        read.extend_from_slice(&third[..10]);
        b.push_received(&read);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert_eq!(text(&mut reader).as_deref(), Some("one"));
        assert_eq!(text(&mut reader), None);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert_eq!(text(&mut reader).as_deref(), Some("two"));
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Idle));
        b.push_received(&third[10..]);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert_eq!(text(&mut reader).as_deref(), Some("three"));
        assert_eq!(t.seqs().0, rx + 4);
    }

    #[test]
    fn what_the_frame_reader_has_no_room_for_spills() {
        let (mut server, mut t, mut b, _) = in_place();
        let mut reader = FrameReader::with_capacity(64);
        // One record of 20 frames (1,040 bytes), more than the small reader takes at once.
        let f = "y".repeat(50);
        let mut frames = Vec::new();
        for _ in 0..20 {
            frames.extend_from_slice(&frame(&f));
        }
        server.writer().write_all(&frames).unwrap();
        b.push_received(&from_server(&mut server));
        assert!(!b.has_spill());
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert!(b.has_spill(), "the record's tail waits in the spill buffer");
        assert_eq!(text(&mut reader).as_deref(), Some(f.as_str()));
    }

    #[test]
    fn a_corrupted_tag_is_a_tls_error() {
        let (mut server, mut t, mut b, mut reader) = in_place();
        let mut rec = records(&mut server, &["tampered"]);
        *rec.last_mut().unwrap() ^= 1;
        b.push_received(&rec);
        let e = step(&mut t, &mut b, &mut reader).unwrap_err();
        assert!(matches!(e, ConnError::Tls(_)), "{e:?}");
    }

    #[test]
    fn a_wrong_outer_content_type_or_version_is_a_tls_error() {
        let (mut server, mut t, mut b, mut reader) = in_place();
        let mut rec = records(&mut server, &["handshake?"]);
        rec[0] = 22;
        b.push_received(&rec[..1]);
        let e = step(&mut t, &mut b, &mut reader).unwrap_err();
        assert!(
            matches!(&e, ConnError::Tls(m) if m.contains("outer content type 22")),
            "{e:?}"
        );

        let (mut server, mut t, mut b, mut reader) = in_place();
        let mut rec = records(&mut server, &["version?"]);
        rec[2] = 1;
        b.push_received(&rec);
        let e = step(&mut t, &mut b, &mut reader).unwrap_err();
        assert!(matches!(e, ConnError::Tls(_)), "{e:?}");
    }

    #[test]
    fn an_over_long_or_too_short_record_is_a_tls_error() {
        let (_server, mut t, mut b, mut reader) = in_place();
        // 2^14 + 257 bytes announced: refused on the header, before the body.
        b.push_received(&[23, 3, 3, 0x41, 0x01]);
        let e = step(&mut t, &mut b, &mut reader).unwrap_err();
        assert!(
            matches!(&e, ConnError::Tls(m) if m.contains("16641")),
            "{e:?}"
        );

        // Shorter than a tag, empty: decryption fails, no panic.
        for garbage in [&[23u8, 3, 3, 0, 1, 0][..], &[23, 3, 3, 0, 0]] {
            let (_server, mut t, mut b, mut reader) = in_place();
            b.push_received(garbage);
            let e = step(&mut t, &mut b, &mut reader).unwrap_err();
            assert!(matches!(e, ConnError::Tls(_)), "{e:?}");
        }
    }

    #[test]
    fn close_notify_is_closed_and_other_alerts_are_errors() {
        let (mut server, mut t, mut b, mut reader) = in_place();
        let mut rec = records(&mut server, &["last"]);
        server.send_close_notify();
        rec.extend_from_slice(&from_server(&mut server));
        b.push_received(&rec);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert_eq!(text(&mut reader).as_deref(), Some("last"));
        assert_eq!(
            step(&mut t, &mut b, &mut reader),
            Err(ConnError::Closed(None))
        );

        assert!(matches!(alert(&[2, 40]), ConnError::Tls(m) if m.contains("HandshakeFailure")));
        assert!(matches!(alert(&[1]), ConnError::Tls(_)));
        assert!(matches!(alert(&[1, 0, 0]), ConnError::Tls(_)));
        assert_eq!(alert(&[1, 0]), ConnError::Closed(None));
    }

    #[test]
    fn a_key_update_from_the_server_switches_both_directions() {
        let (mut server, mut t, mut b, mut reader) = in_place();
        for round in 0..2 {
            // The server's KeyUpdate (update_requested), then a frame under its new key.
            server.refresh_traffic_keys().unwrap();
            let rec = records(&mut server, &["after the update"]);
            b.push_received(&rec);
            assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
            assert_eq!(text(&mut reader).as_deref(), Some("after the update"));
            assert_eq!(t.seqs(), (1, 0), "round {round}: both keys new");
            assert!(!t.key_update_due());
            // Our KeyUpdate (under the old key) went out; the server takes it and reads what
            // we send under the new key.
            let sent = b.take_sent();
            assert!(!sent.is_empty());
            to_server(&mut server, &sent);
            b.queue_app(b"pong").unwrap();
            write_in_place(&mut t, &mut b).unwrap();
            to_server(&mut server, &b.take_sent());
            let mut got = [0u8; 16];
            let n = server.reader().read(&mut got).unwrap();
            assert_eq!(&got[..n], b"pong");
            assert_eq!(t.seqs(), (1, 1));
        }
    }

    #[test]
    fn what_the_client_sends_reaches_the_server_then_close_notify() {
        let (mut server, mut t, mut b, _) = in_place();
        // More than a record of plaintext: cut in two records.
        let big = vec![b'a'; (1 << 14) + 10];
        let (_, tx) = t.seqs();
        b.queue_app(&big[..APP_HALF]).unwrap();
        write_in_place(&mut t, &mut b).unwrap();
        b.queue_app(&big[APP_HALF..]).unwrap();
        b.queue_close_notify();
        write_in_place(&mut t, &mut b).unwrap();
        assert_eq!(t.seqs().1, tx + 3);
        to_server(&mut server, &b.take_sent());
        let mut got = Vec::new();
        // Ok(0): the close_notify came after the data.
        server.reader().read_to_end(&mut got).unwrap();
        assert_eq!(got, big);
    }
    const APP_HALF: usize = 10_000;

    #[test]
    fn tls12_and_records_rustls_started_stay_with_rustls() {
        let (_, client, b, cfg) = handshake(&[&rustls::version::TLS12]);
        assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        assert!(!may_leave_rustls(&client, &cfg, &b));

        // TLS 1.3, but a whole record (the session tickets) left in the buffer: not yet.
        let (mut server, client, mut b, cfg) = handshake(&[&rustls::version::TLS13]);
        b.push_received(&from_server(&mut server));
        assert!(!may_leave_rustls(&client, &cfg, &b));
    }

    /// The server's sending side taken out of rustls, to send records rustls would not.
    struct Forger {
        enc: Box<dyn MessageEncrypter>,
        seq: u64,
    }

    impl Forger {
        fn new(server: ServerConnection) -> Forger {
            let Some(SupportedCipherSuite::Tls13(suite)) = server.negotiated_cipher_suite() else {
                panic!("not TLS 1.3");
            };
            let (seq, tx) = server.dangerous_extract_secrets().unwrap().tx;
            let (key, iv) = key_iv(tx).unwrap();
            Forger {
                enc: suite.aead_alg.encrypter(key, iv),
                seq,
            }
        }

        fn record(&mut self, typ: ContentType, plain: &[u8]) -> Vec<u8> {
            let msg = OutboundPlainMessage {
                typ,
                version: ProtocolVersion::TLSv1_2,
                payload: OutboundChunks::from(plain),
            };
            let record = self.enc.encrypt(msg, self.seq).unwrap();
            self.seq += 1;
            record.encode()
        }
    }

    /// A NewSessionTicket message (header included).
    fn session_ticket() -> Vec<u8> {
        let body = [
            &3600u32.to_be_bytes()[..], // lifetime
            &7u32.to_be_bytes(),        // age_add
            &[1, 9],                    // nonce
            &[0, 4, b't', b'i', b'c', b'k'],
            &[0, 0], // extensions
        ]
        .concat();
        let mut msg = vec![
            u8::from(HandshakeType::NewSessionTicket),
            0,
            0,
            body.len() as u8,
        ];
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn a_session_ticket_split_across_records_is_put_together() {
        let (server, mut t, mut b, mut reader) = in_place();
        let mut forger = Forger::new(server);
        let nst = session_ticket();
        // Cut inside the message header, then inside the body; the ticket ends in the record
        // that starts a second ticket; then application data.
        let mut wire = forger.record(ContentType::Handshake, &nst[..2]);
        wire.extend(forger.record(ContentType::Handshake, &nst[2..9]));
        let mut last = nst[9..].to_vec();
        last.extend_from_slice(&nst);
        wire.extend(forger.record(ContentType::Handshake, &last));
        wire.extend(forger.record(ContentType::ApplicationData, &frame("after")));
        // An empty application-data record is allowed.
        wire.extend(forger.record(ContentType::ApplicationData, &[]));
        b.push_received(&wire);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert!(t.partial.is_empty());
        assert_eq!(text(&mut reader).as_deref(), Some("after"));
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Record));
        assert_eq!(text(&mut reader), None);
        assert_eq!(step(&mut t, &mut b, &mut reader), Ok(Drive::Idle));
    }

    #[test]
    fn what_tls_13_forbids_after_the_handshake_is_a_tls_error() {
        let nst = session_ticket();
        type Records = Vec<(ContentType, Vec<u8>)>;
        let cases: Vec<(&str, Records)> = vec![
            (
                "application data inside a split message",
                vec![
                    (ContentType::Handshake, nst[..3].to_vec()),
                    (ContentType::ApplicationData, frame("x")),
                ],
            ),
            (
                "a Certificate",
                vec![(ContentType::Handshake, vec![11, 0, 0, 0])],
            ),
            (
                "a malformed ticket",
                vec![(ContentType::Handshake, vec![4, 0, 0, 1, 0])],
            ),
            (
                "a malformed KeyUpdate",
                vec![(ContentType::Handshake, vec![24, 0, 0, 1, 7])],
            ),
            (
                "a KeyUpdate not ending its record",
                vec![(
                    ContentType::Handshake,
                    [&[24, 0, 0, 1, 0][..], &nst].concat(),
                )],
            ),
            (
                "an empty handshake record",
                vec![(ContentType::Handshake, vec![])],
            ),
            (
                "a message over the limit",
                vec![(ContentType::Handshake, vec![4, 0xff, 0xff, 0xff])],
            ),
            (
                "an inner ChangeCipherSpec",
                vec![(ContentType::ChangeCipherSpec, vec![1])],
            ),
            (
                "an inner unknown type",
                vec![(ContentType::Unknown(99), vec![1])],
            ),
            ("a fatal alert", vec![(ContentType::Alert, vec![2, 40])]),
            ("a cut alert", vec![(ContentType::Alert, vec![1])]),
        ];
        for (what, records) in cases {
            let (server, mut t, mut b, mut reader) = in_place();
            let mut forger = Forger::new(server);
            for (typ, plain) in &records {
                b.push_received(&forger.record(*typ, plain));
            }
            let e = loop {
                match step(&mut t, &mut b, &mut reader) {
                    Ok(Drive::Record) => continue,
                    Ok(other) => panic!("{what}: {other:?}"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(e, ConnError::Tls(_)), "{what}: {e:?}");
        }
    }
}
