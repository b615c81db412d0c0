//! Kernel receive stamps end to end on loopback: no allocation per read in steady state (a
//! counting global allocator, per thread), and the stamp under a rustls client connection; and
//! the clock check's per-message work allocating nothing either.

#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use feeds::net::clockcheck::{ClockCheck, ClockLimits, ClockVerdict};
use feeds::net::stamp::{system_now_ns, RxTimestampingHold, StampSource, StampedTcpStream};
use nix::sys::socket::{setsockopt, sockopt::Timestamping, TimestampingFlag};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// The system allocator, counting allocations made on each thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread may be tearing down its locals.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made on this thread so far.
fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: every call goes to `System` with the caller's arguments unchanged; counting touches
// only a const-initialised thread-local `Cell` (no allocation, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded under the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded under the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded under the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded under the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SANE_NS: i64 = 5_000_000_000;

/// A loopback pair: the blocking server end and the stamped, non-blocking client end, once a
/// probe byte arrives with a kernel stamp (the kernel switches stamping on lazily).
fn pair() -> (StdTcpStream, StampedTcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = StdTcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    client.set_nonblocking(true).expect("non-blocking");
    let (mut server, _) = listener.accept().expect("accept");
    server.set_nodelay(true).expect("nodelay");
    let mut client = StampedTcpStream::new(mio::net::TcpStream::from_std(client));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        round(&mut server, &mut client, b"w");
        if client
            .last_stamp()
            .is_some_and(|s| s.source != StampSource::Tsc)
        {
            return (server, client);
        }
        assert!(Instant::now() < deadline, "no kernel stamps after 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends `msg` and reads it back through `client` (busy-polling, as the feed thread does),
/// then reads once more to see `WouldBlock`; returns the allocations made by the reads alone.
fn round(server: &mut StdTcpStream, client: &mut StampedTcpStream, msg: &[u8]) -> u64 {
    server.write_all(msg).expect("write");
    let mut buf = [0u8; 64];
    let mut got = 0;
    let mut allocs = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < msg.len() {
        let before = allocations();
        let r = client.read(&mut buf);
        let stamp = client.last_stamp();
        allocs += allocations() - before;
        match r {
            Ok(0) => panic!("unexpected end of stream"),
            Ok(n) => {
                got += n;
                assert!(stamp.is_some());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no data for 10 s");
                std::hint::spin_loop();
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    let before = allocations();
    let r = client.read(&mut buf);
    allocs += allocations() - before;
    assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
    allocs
}

#[test]
fn steady_state_reads_allocate_nothing() {
    // The counter is live on this thread.
    let before = allocations();
    std::hint::black_box(Box::new(7u64));
    assert_eq!(allocations(), before + 1);

    let (mut server, mut client) = pair();
    let msg = *b"{\"e\":\"depthUpdate\",\"E\":1,\"u\":2}";
    for _ in 0..10 {
        round(&mut server, &mut client, &msg);
    }
    let warm = *client.counters();
    let mut allocs = 0;
    for _ in 0..1_000 {
        allocs += round(&mut server, &mut client, &msg);
    }
    let c = *client.counters();
    assert_eq!(allocs, 0, "allocations in 1,000 rounds of reads");
    assert!(c.reads - warm.reads >= 1_000);
    assert!(
        c.would_block - warm.would_block >= 1_000,
        "empty reads counted too"
    );
    assert_eq!(
        c.software - warm.software,
        c.reads - warm.reads,
        "every read stamped by the kernel: {c:?}"
    );

    // Without kernel stamps (timestamping switched off at the socket) reads fall back to the
    // TSC, also without allocating.
    setsockopt(client.get_ref(), Timestamping, &TimestampingFlag::empty()).expect("stamps off");
    round(&mut server, &mut client, &msg);
    let before = *client.counters();
    let mut allocs = 0;
    for _ in 0..200 {
        allocs += round(&mut server, &mut client, &msg);
    }
    let c = *client.counters();
    assert_eq!(allocs, 0, "allocations in 200 rounds of fallback reads");
    assert!(c.fallback - before.fallback >= 200, "{c:?}");
    assert_eq!(c.software, before.software);
    let last = client.last_stamp().expect("stamped");
    assert_eq!(last.source, StampSource::Tsc);
    assert!((last.ns - system_now_ns()).abs() < SANE_NS);
}

#[test]
fn the_stamp_survives_under_rustls() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");

    // Switch kernel stamping on and keep it on (it comes on lazily, and the handshake may be
    // quicker than that on a loaded machine); `pair` returns once it is.
    let _hold = RxTimestampingHold::new().expect("hold");
    drop(pair());

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    const MESSAGES: usize = 5;
    let server = std::thread::spawn(move || -> io::Result<()> {
        let (sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        sock.set_nodelay(true)?;
        let conn =
            rustls::ServerConnection::new(Arc::new(server_config)).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut hello = [0u8; 5];
        tls.read_exact(&mut hello)?;
        for i in 0..MESSAGES {
            tls.write_all(format!("message {i}\n").as_bytes())?;
            tls.flush()?;
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut bye = [0u8; 3];
        tls.read_exact(&mut bye)?;
        Ok(())
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust the certificate");
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn =
        rustls::ClientConnection::new(Arc::new(client_config), name).expect("client connection");
    let sock = StdTcpStream::connect(addr).expect("connect");
    sock.set_nonblocking(true).expect("non-blocking");
    let mut stream = StampedTcpStream::new(mio::net::TcpStream::from_std(sock));
    assert!(stream.kernel_stamps_enabled());
    conn.writer().write_all(b"hello").expect("queue hello");

    let mut plaintext = Vec::new();
    let mut stamps = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    while plaintext.iter().filter(|&&b| b == b'\n').count() < MESSAGES {
        assert!(Instant::now() < deadline, "timed out; got {plaintext:?}");
        while conn.wants_write() {
            match conn.write_tls(&mut stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write_tls: {e}"),
            }
        }
        match conn.read_tls(&mut stream) {
            Ok(0) => panic!("server closed early"),
            Ok(_) => {
                conn.process_new_packets().expect("TLS");
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            Err(e) => panic!("read_tls: {e}"),
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    plaintext.extend_from_slice(&buf[..n]);
                    // Plaintext arrived: it gets the stamp of the read that completed it.
                    stamps.push(stream.last_stamp().expect("the read was stamped"));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("plaintext: {e}"),
            }
        }
    }
    let now = system_now_ns();
    let expected: String = (0..MESSAGES).map(|i| format!("message {i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&plaintext), expected);
    assert!(!stamps.is_empty());
    let mut prev = i64::MIN;
    for s in &stamps {
        assert_eq!(s.source, StampSource::Software, "{s:?}");
        assert!((s.ns - now).abs() < SANE_NS, "stamp {} vs now {now}", s.ns);
        assert!(s.ns >= prev);
        prev = s.ns;
    }
    let c = *stream.counters();
    assert_eq!(c.fallback, 0, "{c:?}");
    println!("stamps under TLS: {stamps:?}\ncounters: {c:?}");

    conn.writer().write_all(b"bye").expect("queue bye");
    while conn.wants_write() {
        match conn.write_tls(&mut stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("write_tls: {e}"),
        }
    }
    server.join().expect("server thread").expect("server");
}

#[test]
fn the_offset_tracker_allocates_nothing_after_construction() {
    let mut check = ClockCheck::new(256);
    let limits = ClockLimits {
        require_synchronised: false,
        ..ClockLimits::default()
    };
    let before = allocations();
    let mut verdicts = 0;
    for i in 0..10_000i64 {
        // Event times in ms, received 1..4 ms later.
        check.record(
            1_700_000_000_000 + i,
            (1_700_000_000_000 + i) * 1_000_000 + 1_000_000 + (i % 4) * 1_000_000,
        );
        if i % 100 == 0 {
            let s = check.offsets().summary();
            assert!(s.is_some());
            if check.check(&limits) == ClockVerdict::Ok {
                verdicts += 1;
            }
        }
    }
    assert_eq!(
        allocations(),
        before,
        "allocations recording 10,000 offsets"
    );
    assert_eq!(verdicts, 100);
    assert_eq!(check.offsets().len(), 256);
}
