//! A message split over two TLS records, sent in two socket writes 100 ms apart, is taken out
//! of a [`Conn`] with the stamp of the socket read that completed it (the second), not the
//! first: the connection reads the socket only when nothing complete is left in its buffers.

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use feeds::net::conn::Poll;
use feeds::net::stamp::{system_now_ns, RxTimestampingHold};

mod common;

#[test]
fn a_message_split_over_two_records_carries_the_second_reads_stamp() {
    let _hold = RxTimestampingHold::new().expect("hold");
    let payload: &[u8] = b"{\"e\":\"depthUpdate\",\"split\":\"over two records\"}";
    let frame = common::frame(std::str::from_utf8(payload).unwrap());
    let (mut conn, server) = common::serve("stamp", move |tls, head| {
        tls.write_all(head.as_bytes())?;
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
}
