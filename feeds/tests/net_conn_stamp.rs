//! A message split over two TLS records, sent in two socket writes 100 ms apart, is taken out
//! of a [`Conn`] with the stamp of the socket read that completed it (the second), not the
//! first: the connection reads the socket only when nothing complete is left in its buffers.

#![cfg(target_os = "linux")]

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use feeds::net::conn::{Conn, ConnOptions, Poll};
use feeds::net::stamp::{system_now_ns, RxTimestampingHold};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_message_split_over_two_records_carries_the_second_reads_stamp() {
    let _hold = RxTimestampingHold::new().expect("hold");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    let dir = std::env::temp_dir().join(format!("feeds-conn-stamp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = dir.join("cert.pem");
    std::fs::write(&ca, certified.cert.pem()).expect("write the certificate");
    let client_config = feeds::net::tls::client_config(Some(&ca)).expect("client config");

    let payload: &[u8] = b"{\"e\":\"depthUpdate\",\"split\":\"over two records\"}";
    let mut frame = vec![0x81, payload.len() as u8];
    frame.extend_from_slice(payload);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || -> io::Result<(i64, io::Result<Vec<u8>>)> {
        let (sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        sock.set_nodelay(true)?;
        let conn =
            rustls::ServerConnection::new(Arc::new(server_config)).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while find(&req, b"\r\n\r\n").is_none() {
            let n = tls.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            req.extend_from_slice(&buf[..n]);
        }
        let req = String::from_utf8_lossy(&req).into_owned();
        let key = req
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .ok_or_else(|| io::Error::other("no key"))?;
        let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
        write!(
            tls,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(50));
        // One record, one write: the header and the first bytes.
        tls.write_all(&frame[..12])?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(100));
        let second = system_now_ns();
        tls.write_all(&frame[12..])?;
        tls.flush()?;
        // Until the client goes: its close frame, then its close_notify (a clean end).
        let mut closing = Vec::new();
        let end = tls.read_to_end(&mut closing).map(|_| closing);
        Ok((second, end))
    });

    let mut conn = Conn::new(
        "127.0.0.1",
        port,
        "/ws",
        client_config,
        ConnOptions::default(),
    );
    conn.open().expect("open");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut opened = false;
    let stamp = loop {
        assert!(
            Instant::now() < deadline,
            "timed out: {:?}",
            conn.last_error()
        );
        match conn.poll(Instant::now()) {
            Poll::Pending => std::hint::spin_loop(),
            Poll::Opened => opened = true,
            Poll::Message(stamp) => break stamp,
            Poll::Ended => panic!("ended: {:?}", conn.last_error()),
        }
    };
    assert!(opened);
    assert_eq!(conn.message(), payload);
    // TLS 1.3: the records after the upgrade were decrypted in place, off rustls.
    assert!(conn.tls_in_place());
    conn.close(feeds::net::conn::ConnError::Closed(None));
    let (second, closing) = server.join().expect("server thread").expect("server");
    // The close frame (masked, opcode 8) and the close_notify, encrypted in place, reached the
    // server's rustls intact.
    let closing = closing.expect("a clean close");
    assert_eq!(closing.first(), Some(&0x88), "{closing:?}");
    assert!(
        stamp.ns >= second,
        "the stamp {stamp:?} is before the second write at {second} ns: the first read's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
