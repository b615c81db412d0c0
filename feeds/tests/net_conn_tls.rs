//! A [`Conn`] on TLS 1.3 leaves rustls's record layer once open and decrypts records in place:
//! frames that came in the upgrade answer's record, a server key update (answered: the server
//! reads our pong under our new key), a close that reaches the server's rustls intact; and a
//! garbage record ends the connection with a typed error, no panic.

#![cfg(target_os = "linux")]

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use feeds::net::conn::{Conn, ConnError, Poll};

mod common;
use common::{frame, serve};

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

/// Reads one masked client text frame (payload under 126 or 16-bit length) and unmasks it.
fn read_client_text(tls: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut h = [0u8; 2];
    tls.read_exact(&mut h)?;
    assert_eq!(h[0], 0x81, "a final text frame");
    assert_eq!(h[1] & 0x80, 0x80, "masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            tls.read_exact(&mut l)?;
            u16::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut mask = [0u8; 4];
    tls.read_exact(&mut mask)?;
    let mut p = vec![0u8; len];
    tls.read_exact(&mut p)?;
    for (i, b) in p.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(p)
}

#[test]
fn requests_sent_reach_the_server_whole_and_in_order_and_answers_come_back() {
    let (mut conn, server) = serve("send", |tls, head| {
        tls.write_all(head.as_bytes())?;
        tls.flush()?;
        let mut got = Vec::new();
        for _ in 0..3 {
            let req = read_client_text(tls)?;
            // Echo it back as the answer.
            let mut f = vec![0x81, 126];
            f.extend_from_slice(&(req.len() as u16).to_be_bytes());
            f.extend_from_slice(&req);
            tls.write_all(&f)?;
            tls.flush()?;
            got.push(String::from_utf8_lossy(&req).into_owned());
        }
        Ok(got)
    });
    // Not open yet: refused, nothing queued.
    assert!(conn.send_text(b"early").is_err());
    conn.open().expect("open");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !conn.is_open() {
        assert!(Instant::now() < deadline, "no connection");
        conn.poll(Instant::now());
    }
    assert!(
        !conn.set_path("/elsewhere"),
        "the path of an open connection stays"
    );
    let long = format!("{{\"id\":3,\"pad\":\"{}\"}}", "x".repeat(300));
    let reqs = [
        r#"{"id":1,"method":"order.place"}"#.to_string(),
        r#"{"id":2,"method":"order.cancel"}"#.to_string(),
        long,
    ];
    let mut answers = Vec::new();
    for r in &reqs {
        conn.send_text(r.as_bytes()).expect("send");
        let (got, err) = messages(&mut conn, 1);
        assert_eq!(err, None);
        answers.extend(got);
    }
    assert_eq!(answers, reqs);
    assert!(conn.tls_in_place(), "later requests went out in place");
    assert_eq!(conn.unsent(), 0);
    conn.close(ConnError::Closed(None));
    assert!(conn.set_path("/private/ws?listenKey=k2"));
    assert!(conn.url().ends_with("/private/ws?listenKey=k2"));
    let seen = server.join().expect("server thread").expect("server");
    assert_eq!(seen, reqs);
}
