//! What the connection tests share: a TLS 1.3 WebSocket server on a local port that answers the
//! upgrade and then runs a test's script, and the client [`Conn`] for it.

#![allow(dead_code)] // each test file uses its own part

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use feeds::net::conn::{Conn, ConnOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A server text frame (short).
pub fn frame(text: &str) -> Vec<u8> {
    let mut f = vec![0x81, text.len() as u8];
    f.extend_from_slice(text.as_bytes());
    f
}

/// A TLS 1.3 server on a local port running `script` on the first connection, after reading the
/// upgrade request (`script` gets the upgrade answer's head to send), and a client for it.
pub fn serve<T: Send + 'static>(
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
