//! HTTP/1.1 over any byte stream, bounded: a request head of at most [`MAX_HEAD`] bytes parsed
//! with `httparse`, a body of at most [`MAX_BODY`] bytes by `Content-Length` (no chunked
//! bodies), a deadline for the whole request so that a slow client times out; and the responses.

use crate::api::{Request, Response};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Largest request head (request line and headers), bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body, bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 64;

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    /// The deadline passed, or the server is stopping.
    Timeout,
    /// The transport failed (including a TLS error).
    Io(io::Error),
    /// A request the server refuses: answer with this status and message, then close.
    Bad(u16, &'static str),
}

/// A request read off the connection.
#[derive(Debug)]
pub struct Parsed {
    /// The request.
    pub req: Request,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// `Sec-WebSocket-Key`, when this is a WebSocket upgrade.
    pub ws_key: Option<String>,
}

/// What makes a blocked read give up: the server's stop flag, or a closure (a connection that
/// must close).
pub trait Stop {
    /// Whether to stop now.
    fn stopped(&self) -> bool;
}

impl Stop for AtomicBool {
    fn stopped(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

impl<F: Fn() -> bool> Stop for F {
    fn stopped(&self) -> bool {
        self()
    }
}

/// Reads one request from `stream`; `buf` carries bytes read past the previous request and keeps
/// those read past this one. The stream must have a read timeout (a `WouldBlock`/`TimedOut` read
/// is retried until `deadline`).
pub fn read_request(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    deadline: Instant,
    stop: &impl Stop,
    peer: &str,
) -> Result<Parsed, ReadError> {
    let mut chunk = [0u8; 4096];
    // The head.
    let (head_len, mut req, content_length, keep_alive, ws_key) = loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(buf) {
                Ok(httparse::Status::Complete(n)) => break head_of(&r, n, peer)?,
                Ok(httparse::Status::Partial) => {
                    if buf.len() >= MAX_HEAD {
                        return Err(ReadError::Bad(400, "request head too large"));
                    }
                }
                Err(_) => return Err(ReadError::Bad(400, "malformed request")),
            }
        }
        read_some(stream, buf, &mut chunk, deadline, stop)?;
    };
    // The body.
    while buf.len() < head_len + content_length {
        read_some(stream, buf, &mut chunk, deadline, stop).map_err(|e| match e {
            ReadError::Closed => ReadError::Bad(400, "truncated body"),
            e => e,
        })?;
    }
    let body = buf[head_len..head_len + content_length].to_vec();
    buf.drain(..head_len + content_length);
    req.body = String::from_utf8(body).map_err(|_| ReadError::Bad(400, "body is not UTF-8"))?;
    Ok(Parsed {
        req,
        keep_alive,
        ws_key,
    })
}

type Head = (usize, Request, usize, bool, Option<String>);

fn head_of(r: &httparse::Request<'_, '_>, n: usize, peer: &str) -> Result<Head, ReadError> {
    let method = r.method.unwrap_or("").to_string();
    let target = r.path.unwrap_or("");
    if !target.starts_with('/') {
        return Err(ReadError::Bad(400, "bad request target"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        let v = std::str::from_utf8(h.value)
            .map_err(|_| ReadError::Bad(400, "header value is not UTF-8"))?;
        headers.push((h.name.to_ascii_lowercase(), v.trim().to_string()));
    }
    let req = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        body: String::new(),
        headers,
        peer: peer.to_string(),
    };
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(400, "chunked bodies are not supported"));
    }
    let content_length = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?,
    };
    if content_length > MAX_BODY {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    let connection = req.header("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if r.version == Some(0) {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let ws_key = req
        .header("upgrade")
        .filter(|u| u.eq_ignore_ascii_case("websocket"))
        .and_then(|_| req.header("sec-websocket-key"))
        .map(str::to_string);
    Ok((n, req, content_length, keep_alive, ws_key))
}

fn read_some(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    deadline: Instant,
    stop: &impl Stop,
) -> Result<(), ReadError> {
    loop {
        if Instant::now() >= deadline || stop.stopped() {
            return Err(ReadError::Timeout);
        }
        match stream.read(chunk) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if is_timeout(&e) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Whether an I/O error is a read timeout.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a response with a JSON body.
pub fn write_response(out: &mut impl Write, resp: &Response, keep_alive: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        // A header that would break the framing is left out.
        if !k.contains(['\r', '\n', ':']) && !v.contains(['\r', '\n']) {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(resp.body.as_bytes());
    out.write_all(&bytes)?;
    out.flush()
}

/// Decodes `%XX` and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The query's parameters, decoded, in order.
pub fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The first parameter named `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_survives_truncated_escapes() {
        assert_eq!(percent_decode("btcusdt%40depth"), "btcusdt@depth");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82"), "\u{fffd}");
    }

    #[test]
    fn a_request_with_a_body_and_one_pipelined_after_it() {
        let stop = AtomicBool::new(false);
        let raw = b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
        let mut s = &raw[..];
        let mut buf = Vec::new();
        let d = Instant::now() + std::time::Duration::from_secs(1);
        let p = read_request(&mut s, &mut buf, d, &stop, "p").unwrap();
        assert_eq!(
            (
                p.req.path.as_str(),
                p.req.query.as_str(),
                p.req.body.as_str()
            ),
            ("/a", "x=1", "abc")
        );
        let p = read_request(&mut s, &mut buf, d, &stop, "p").unwrap();
        assert_eq!(p.req.path, "/b");
        assert!(matches!(
            read_request(&mut s, &mut buf, d, &stop, "p"),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn oversized_and_malformed_requests_are_refused() {
        let stop = AtomicBool::new(false);
        let d = Instant::now() + std::time::Duration::from_secs(1);
        let big = format!("GET / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        let r = read_request(&mut big.as_bytes(), &mut Vec::new(), d, &stop, "p");
        assert!(matches!(r, Err(ReadError::Bad(413, _))));
        let long = vec![b'a'; MAX_HEAD + 10];
        let mut long = &long[..];
        let r = read_request(&mut long, &mut Vec::new(), d, &stop, "p");
        assert!(matches!(r, Err(ReadError::Bad(400, _))));
        let r = read_request(
            &mut &b"\x00\x01 garbage\r\n\r\n"[..],
            &mut Vec::new(),
            d,
            &stop,
            "p",
        );
        assert!(matches!(r, Err(ReadError::Bad(400, _))));
    }
}
