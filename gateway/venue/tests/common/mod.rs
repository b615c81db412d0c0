//! Client helpers shared by the venue's integration tests: TLS connections trusting the venue's
//! certificate, one-shot REST requests (signed or not), WebSocket streams.

#![allow(dead_code)]

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tungstenite::{Message, WebSocket};
use venue::auth::hmac_hex;
use venue::server::VenueHandle;

/// A TLS client connection.
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The HMAC test account of `configs/venue-accounts.toml` (public test keys).
pub const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
/// Its secret.
pub const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A venue on the shipped USDⓈ-M recording with the default config, as `set` adjusts it (speed,
/// faults, limits...), its certificate under a fresh directory (kept alive by the `TempDir`).
pub fn start_venue(
    name: &str,
    set: impl FnOnce(&mut venue::server::ServerConfig),
    exchange: Arc<dyn venue::api::Exchange>,
) -> (VenueHandle, test_support::TempDir) {
    let dir = test_support::TempDir::new(name);
    let mut sc = venue::server::ServerConfig::new(
        vec![test_support::usdm()],
        test_support::default_config(),
    );
    sc.cert_dir = dir.join("cert");
    set(&mut sc);
    let h = venue::server::Venue::start(sc, exchange).expect("venue starts");
    (h, dir)
}

/// A live source on `h`'s streams (trusting its certificate, `depth@0ms`), for the default
/// config's instruments.
pub fn net_source(
    h: &VenueHandle,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> feeds::net::NetSource {
    let cfg = test_support::default_config();
    let tls = feeds::net::tls::client_config(Some(h.cert_path())).unwrap();
    let mut opts = feeds::net::NetOptions::new(tls);
    opts.endpoints = vec![feeds::net::routes::Endpoints::from_rest_url(
        &h.rest_url(),
        engine::VenueFlavour::BinanceUsdm,
    )
    .unwrap()];
    opts.depth_stream = "depth@0ms".into();
    let insts = feeds::net::NetInstrument::of_config(&cfg);
    feeds::net::NetSource::new(&insts, opts, Arc::clone(stop)).unwrap()
}

/// The exchange core for `cfg` with the example accounts of `configs/venue-accounts.toml`,
/// accepting signed requests stamped with the wall clock (as `ringmaker venue` does).
pub fn sim_exchange(cfg: engine::Config) -> Arc<dyn venue::api::Exchange> {
    let accounts =
        venue::auth::Accounts::load(&root().join("configs/venue-accounts.toml")).unwrap();
    Arc::new(venue::exchange::SimExchange::new(cfg, accounts).accept_wall_clock_timestamps())
}

/// A TLS connection to the venue, trusting only its certificate.
pub fn connect(h: &VenueHandle) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(h.cert_path()).expect("cert.pem") {
        roots.add(c.expect("a certificate")).unwrap();
    }
    let cfg = Arc::new(
        rustls::ClientConfig::builder_with_provider(venue::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let tcp = TcpStream::connect(h.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn =
        rustls::ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// A response: status, headers (lower-case names) and body as JSON (a string if it is not
/// JSON).
pub type Reply = (u16, Vec<(String, String)>, Value);

/// One request on its own connection; `None` if no response came within `timeout`.
pub fn request_full(
    h: &VenueHandle,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
    timeout: Duration,
) -> Option<Reply> {
    let mut s = connect(h);
    s.sock.set_read_timeout(Some(timeout)).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((
        status,
        headers,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    ))
}

/// A GET of `path`: status and body.
pub fn get(h: &VenueHandle, path: &str) -> (u16, Value) {
    let (s, _, v) =
        request_full(h, "GET", path, "", "", Duration::from_secs(10)).expect("a response");
    (s, v)
}

/// Wall-clock ms since the epoch (clients sign with their own clock).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A signed REST request of the HMAC test account (query string signed): status and body.
pub fn signed(h: &VenueHandle, method: &str, path: &str, params: &str) -> (u16, Value) {
    let sep = if params.is_empty() { "" } else { "&" };
    let q = format!("{params}{sep}recvWindow=60000&timestamp={}", wall_ms());
    let sig = hmac_hex(SECRET.as_bytes(), q.as_bytes());
    let (s, _, v) = request_full(
        h,
        method,
        &format!("{path}?{q}&signature={sig}"),
        &format!("X-MBX-APIKEY: {KEY}\r\n"),
        "",
        Duration::from_secs(10),
    )
    .expect("a response");
    (s, v)
}

/// A WebSocket on `path`.
pub fn ws(h: &VenueHandle, path: &str) -> WebSocket<Tls> {
    let s = connect(h);
    let url = format!("wss://localhost:{}{path}", h.addr().port());
    let (ws, resp) = tungstenite::client::client(url, s).expect("WebSocket handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// The next text frame as JSON within `timeout`; `None` if nothing came. Panics if the stream
/// closed or a frame is not JSON.
pub fn next_json(ws: &mut WebSocket<Tls>, timeout: Duration) -> Option<Value> {
    ws.get_ref().sock.set_read_timeout(Some(timeout)).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("valid JSON")),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(e) => panic!("stream failed: {e}"),
        }
    }
}
