//! A [`Conn`] on TLS 1.3 leaves rustls's record layer once open and decrypts records in place:
//! frames that came in the upgrade answer's record, a server key update (answered: the server
//! reads our pong under our new key), a close that reaches the server's rustls intact; and a
//! garbage record ends the connection with a typed error, no panic.

#![cfg(target_os = "linux")]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use feeds::net::conn::{Conn, ConnError, ConnOptions, Poll};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A server text frame (short).
fn frame(text: &str) -> Vec<u8> {
    let mut f = vec![0x81, text.len() as u8];
    f.extend_from_slice(text.as_bytes());
    f
}

/// A TLS 1.3 server on a local port running `script` on the first connection, after reading the
/// upgrade request (`script` gets the upgrade answer's head to send), and a client for it.
fn serve<T: Send + 'static>(
    name: &str,
    script: impl FnOnce(&mut Tls, String) -> io::Result<T> + Send + 'static,
) -> (Conn, std::thread::JoinHandle<io::Result<T>>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    let dir = std::env::temp_dir().join(format!("feeds-conn-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = dir.join("cert.pem");
    std::fs::write(&ca, certified.cert.pem()).expect("write the certificate");
    let client_config = feeds::net::tls::client_config(Some(&ca)).expect("client config");
    let _ = std::fs::remove_dir_all(&dir);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || -> io::Result<T> {
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
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        script(&mut tls, head)
    });
    let conn = Conn::new(
        "127.0.0.1",
        port,
        "/ws",
        client_config,
        ConnOptions::default(),
    );
    (conn, server)
}

/// Polls until `n` messages came (their texts) or the connection ended (its error).
fn messages(conn: &mut Conn, n: usize) -> (Vec<String>, Option<ConnError>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(Instant::now() < deadline, "timed out: {got:?}");
        match conn.poll(Instant::now()) {
            Poll::Pending => std::hint::spin_loop(),
            Poll::Opened => {}
            Poll::Message(_) => {
                got.push(String::from_utf8(conn.message().to_vec()).expect("text"));
            }
            Poll::Ended => return (got, conn.last_error().cloned()),
        }
    }
    (got, None)
}

#[test]
fn records_are_decrypted_in_place_through_a_key_update_and_a_ping() {
    let (mut conn, server) = serve("update", |tls, head| {
        // The head and the first frame in one record: the frame follows the head's end.
        let mut first = head.into_bytes();
        first.extend_from_slice(&frame("first"));
        tls.write_all(&first)?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(50));
        // A key update (update_requested), a frame and a ping under the new key.
        tls.conn.refresh_traffic_keys().map_err(io::Error::other)?;
        tls.write_all(&frame("second"))?;
        tls.write_all(&[0x89, 4, b'p', b'i', b'n', b'g'])?;
        tls.flush()?;
        // The pong: masked, 2 + 4 + 4 bytes, after the client's KeyUpdate (rustls reads it
        // under the client's new key, or fails).
        let mut pong = [0u8; 10];
        tls.read_exact(&mut pong)?;
        tls.write_all(&frame("third"))?;
        tls.flush()?;
        let mut closing = Vec::new();
        let end = tls.read_to_end(&mut closing).map(|_| closing);
        Ok((pong, end))
    });
    conn.open().expect("open");
    let (got, err) = messages(&mut conn, 3);
    assert_eq!(err, None);
    assert_eq!(got, ["first", "second", "third"]);
    assert!(conn.tls_in_place());
    assert_eq!(conn.pongs, 1);
    conn.close(ConnError::Closed(None));
    let (pong, end) = server.join().expect("server thread").expect("server");
    assert_eq!(pong[..2], [0x8a, 0x84]);
    let unmasked: Vec<u8> = (0..4).map(|i| pong[6 + i] ^ pong[2 + i]).collect();
    assert_eq!(unmasked, b"ping");
    let closing = end.expect("a clean close: close frame, then close_notify");
    assert_eq!(closing.first(), Some(&0x88));
}

#[test]
fn a_garbage_record_ends_the_connection_with_a_tls_error() {
    let (mut conn, server) = serve("garbage", |tls, head| {
        let mut first = head.into_bytes();
        first.extend_from_slice(&frame("ok"));
        tls.write_all(&first)?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(50));
        // A record that is no record of this session, straight on the socket.
        let mut garbage = vec![23, 3, 3, 0, 40];
        garbage.extend_from_slice(&[0x5a; 40]);
        tls.sock.write_all(&garbage)?;
        let mut rest = Vec::new();
        let _ = tls.sock.read_to_end(&mut rest);
        Ok(())
    });
    conn.open().expect("open");
    let (got, err) = messages(&mut conn, 2);
    assert_eq!(got, ["ok"]);
    assert!(matches!(err, Some(ConnError::Tls(_))), "{err:?}");
    assert!(conn.is_closed());
    server.join().expect("server thread").expect("server");
}

#[test]
fn poll_buffered_gives_what_the_buffers_hold_and_never_reads_the_socket() {
    let (mut conn, server) = serve("buffered", |tls, head| {
        tls.write_all(head.as_bytes())?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(50));
        // Three frames in one record: one read brings them all.
        let mut burst = frame("a");
        burst.extend_from_slice(&frame("b"));
        burst.extend_from_slice(&frame("c"));
        tls.write_all(&burst)?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(200));
        tls.write_all(&frame("later"))?;
        tls.flush()?;
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    });
    conn.open().expect("open");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Nothing buffered before the socket is read: no message, and no end.
    assert_eq!(conn.poll_buffered(Instant::now()), Poll::Pending);
    let (first, err) = messages(&mut conn, 1);
    assert_eq!((first, err), (vec!["a".to_string()], None));
    // The rest of the burst comes from the buffers alone.
    for want in ["b", "c"] {
        match conn.poll_buffered(Instant::now()) {
            Poll::Message(_) => assert_eq!(conn.message(), want.as_bytes()),
            other => panic!("{want}: {other:?}"),
        }
    }
    // "later" is on the socket by now, but only a socket poll takes it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(conn.poll_buffered(Instant::now()), Poll::Pending);
    assert!(Instant::now() < deadline);
    let (later, err) = messages(&mut conn, 1);
    assert_eq!((later, err), (vec!["later".to_string()], None));
    server.join().expect("server thread").expect("server");
}
