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
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, MessageDecrypter, MessageEncrypter, OutboundChunks,
    OutboundPlainMessage,
};
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
    enc: Box<dyn MessageEncrypter>,
    /// The sequence number of the next record received.
    rx_seq: u64,
    /// The sequence number of the next record sent.
    tx_seq: u64,
    /// The peer asked for our key update (sent by [`Tls13::send_key_update`]).
    key_update_due: bool,
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
        let (key, iv) = key_iv(tx)?;
        let enc = suite.aead_alg.encrypter(key, iv);
        Ok(Tls13 {
            kernel,
            suite,
            dec,
            enc,
            rx_seq,
            tx_seq,
            key_update_due: false,
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

    /// The post-handshake messages of one record (each whole in it: a message split across
    /// records ends the connection).
    fn handshake(&mut self, mut msgs: &[u8]) -> Result<(), ConnError> {
        if msgs.is_empty() {
            return Err(ConnError::Tls("an empty handshake record".into()));
        }
        while !msgs.is_empty() {
            let &[typ, a, b, c, ref rest @ ..] = msgs else {
                return Err(ConnError::Tls(
                    "a handshake message split across records".into(),
                ));
            };
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if rest.len() < len {
                return Err(ConnError::Tls(
                    "a handshake message split across records".into(),
                ));
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
        Ok(())
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
            let need = HEADER + self.enc.encrypted_payload_len(chunk.len());
            if out.len() - n < need {
                return Err(super::conn::out_overflow(need, out.len() - n));
            }
            let record = self
                .enc
                .encrypt(
                    OutboundPlainMessage {
                        typ,
                        version: ProtocolVersion::TLSv1_2,
                        payload: OutboundChunks::from(chunk),
                    },
                    self.tx_seq,
                )
                .map_err(tls)?;
            self.tx_seq += 1;
            let bytes = record.encode();
            if bytes.len() > out.len() - n {
                return Err(super::conn::out_overflow(bytes.len(), out.len() - n));
            }
            out[n..n + bytes.len()].copy_from_slice(&bytes);
            n += bytes.len();
        }
        Ok(n)
    }

    /// Sends our KeyUpdate (`update_not_requested`) under the current key, then switches the
    /// sending key; the bytes written to `out`.
    pub(super) fn send_key_update(&mut self, out: &mut [u8]) -> Result<usize, ConnError> {
        let key_update = [u8::from(HandshakeType::KeyUpdate), 0, 0, 1, 0];
        let n = self.seal(ContentType::Handshake, &key_update, out)?;
        let (seq, secrets) = self.kernel.update_tx_secret().map_err(tls)?;
        let (key, iv) = key_iv(secrets)?;
        self.enc = self.suite.aead_alg.encrypter(key, iv);
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
