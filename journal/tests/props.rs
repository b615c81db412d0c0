//! Property tests: random record sequences round-trip through small segments (forcing many
//! roll-overs, with and without housekeeping, across a writer restart), and the reader never
//! panics on arbitrary bytes, whatever the recovery mode.

mod util;

use journal::{verify, Reader, RecoveryMode, Writer, MAGIC};
use proptest::prelude::*;
use util::{opts, read_all, read_until_error, segment_path, Owned, TempDir, HASH};

#[derive(Debug, Clone)]
struct Rec {
    kind: u16,
    flags: u16,
    timestamp_ns: i64,
    payload: Vec<u8>,
    housekeeping: bool,
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        1..=u16::MAX,
        any::<u16>(),
        any::<i64>(),
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..128),
            1 => prop::collection::vec(any::<u8>(), 0..1200),
        ],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(kind, flags, timestamp_ns, payload, housekeeping)| Rec {
            kind,
            flags,
            timestamp_ns,
            payload,
            housekeeping,
        })
}

/// One step of a writer's life, for records filled in place.
#[derive(Debug, Clone)]
enum Op {
    Append(u16, i64, Vec<u8>),
    Extend(u16, i64, Vec<u8>, usize),
    Seal,
    Housekeeping,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1..=3u16, any::<i64>(), prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(k, t, p)| Op::Append(k, t, p)),
        6 => (6..=7u16, any::<i64>(), prop::collection::vec(any::<u8>(), 1..80), 0..600usize)
            .prop_map(|(k, t, p, m)| Op::Extend(k, t, p, m)),
        1 => Just(Op::Seal),
        1 => Just(Op::Housekeeping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `extend` / `seal` mixed with `append` and housekeeping, in 4 KiB segments: the reader
    /// returns exactly the records a model of the open record predicts. Then a "crash" with a
    /// record left open: the strict reader reports a torn tail, the tolerant one returns every
    /// sealed record, and a reopened writer continues after them.
    #[test]
    fn records_filled_in_place_round_trip(ops in prop::collection::vec(op(), 0..400)) {
        let d = TempDir::new("prop-extend");
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        let mut expected: Vec<Owned> = Vec::new();
        // The model's open record: kind, newest timestamp, payload, room.
        let mut open: Option<(u16, i64, Vec<u8>, usize)> = None;
        let seal = |open: &mut Option<(u16, i64, Vec<u8>, usize)>, expected: &mut Vec<Owned>| {
            if let Some((kind, t, payload, _)) = open.take() {
                let seq = expected.len() as u64 + 1;
                expected.push(Owned { kind, flags: 0, seq, timestamp_ns: t, payload });
            }
        };
        for op in &ops {
            match op {
                Op::Append(k, t, p) => {
                    seal(&mut open, &mut expected);
                    let seq = w.append(*k, *t, p).unwrap();
                    prop_assert_eq!(seq, expected.len() as u64 + 1);
                    expected.push(Owned { kind: *k, flags: 0, seq, timestamp_ns: *t, payload: p.clone() });
                }
                Op::Extend(k, t, p, max) => {
                    let fits = matches!(&open, Some((ok, _, op, room)) if ok == k && op.len() + p.len() <= *room);
                    if !fits {
                        seal(&mut open, &mut expected);
                        open = Some((*k, *t, Vec::new(), (*max).max(p.len())));
                    }
                    if let Some((_, ot, op, _)) = open.as_mut() {
                        *ot = (*ot).max(*t);
                        op.extend_from_slice(p);
                    }
                    w.extend(*k, *t, p, *max).unwrap();
                }
                Op::Seal => {
                    let had = open.is_some();
                    seal(&mut open, &mut expected);
                    prop_assert_eq!(w.seal().unwrap().is_some(), had);
                }
                Op::Housekeeping => {
                    seal(&mut open, &mut expected);
                    w.housekeeping().unwrap();
                }
            }
        }
        // A crash: one more chunk written in place, never sealed. `extend` first seals the
        // model's open record if that cannot take the chunk; otherwise the open record is lost
        // with the chunk.
        w.extend(6, 0, &[0xAB; 24], 64).unwrap();
        let takes = matches!(&open, Some((k, _, p, room)) if *k == 6 && p.len() + 24 <= *room);
        let mut sealed_before_crash = expected.clone();
        if !takes {
            seal(&mut open, &mut sealed_before_crash);
        }
        drop(w);
        prop_assert_eq!(&read_all(d.path(), RecoveryMode::TolerateTornTail).unwrap(), &sealed_before_crash);
        prop_assert!(read_all(d.path(), RecoveryMode::Strict).is_err());
        let mut w = Writer::open_append(d.path(), opts(4096)).unwrap();
        let seq = w.append(1, 1, b"after").unwrap();
        prop_assert_eq!(seq, sealed_before_crash.len() as u64 + 1);
        w.close().unwrap();
        prop_assert_eq!(verify(d.path()).unwrap().records, seq);
    }

    #[test]
    fn random_records_round_trip_across_small_segments(
        recs in prop::collection::vec(rec(), 0..300),
        restart_at in any::<prop::sample::Index>(),
    ) {
        let d = TempDir::new("prop");
        let restart = if recs.is_empty() { 0 } else { restart_at.index(recs.len()) };
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        let mut expected = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            if i == restart {
                drop(w);
                w = Writer::open_append(d.path(), opts(4096)).unwrap();
            }
            let seq = w.append_with_flags(r.kind, r.flags, r.timestamp_ns, &r.payload).unwrap();
            prop_assert_eq!(seq, i as u64 + 1);
            expected.push(Owned {
                kind: r.kind,
                flags: r.flags,
                seq,
                timestamp_ns: r.timestamp_ns,
                payload: r.payload.clone(),
            });
            if r.housekeeping {
                w.housekeeping().unwrap();
            }
        }
        w.close().unwrap();
        prop_assert_eq!(&read_all(d.path(), RecoveryMode::Strict).unwrap(), &expected);
        let s = verify(d.path()).unwrap();
        prop_assert_eq!(s.records, expected.len() as u64);
        prop_assert_eq!(s.last_seq, expected.len() as u64);
        prop_assert_eq!(s.payload_bytes, expected.iter().map(|r| r.payload.len() as u64).sum::<u64>());
        prop_assert_eq!(s.per_kind.iter().map(|k| k.records).sum::<u64>(), expected.len() as u64);
        prop_assert_eq!(s.first_timestamp_ns, expected.first().map(|r| r.timestamp_ns));
        prop_assert_eq!(s.last_timestamp_ns, expected.last().map(|r| r.timestamp_ns));
        prop_assert_eq!(s.torn_tail, None);
    }
}

/// Reads `dir` every way there is and checks the answers agree. Must not panic.
fn read_every_way(dir: &std::path::Path) {
    let (strict, strict_err) = read_until_error(dir, RecoveryMode::Strict);
    let (tolerant, tolerant_err) = read_until_error(dir, RecoveryMode::TolerateTornTail);
    // Both modes read the same valid prefix.
    assert_eq!(strict, tolerant);
    // Strict fails wherever tolerant does, and on a torn tail too.
    if tolerant_err.is_some() {
        assert!(strict_err.is_some());
    }
    let v = verify(dir);
    assert_eq!(
        v.is_ok(),
        tolerant_err.is_none(),
        "{v:?} vs {tolerant_err:?}"
    );
    if let Ok(mut r) = Reader::open(dir, RecoveryMode::TolerateTornTail) {
        if tolerant_err.is_none() {
            let torn = r.torn_tail().unwrap();
            assert_eq!(torn.is_some(), strict_err.is_some());
            if torn.is_some() {
                r.truncate_torn_tail().unwrap();
                // After truncation the journal reads clean in strict mode, same records.
                assert_eq!(read_all(dir, RecoveryMode::Strict).unwrap(), tolerant);
            }
        }
    }
}

fn valid_header() -> [u8; 64] {
    let d = TempDir::new("hdr");
    Writer::create(d.path(), opts(4096))
        .unwrap()
        .close()
        .unwrap();
    std::fs::read(segment_path(d.path(), 0)).unwrap()[..64]
        .try_into()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes as segment 0 (raw, or behind a valid header so the record decoder sees
    /// them): the reader never panics and its modes agree.
    #[test]
    fn reader_never_panics_on_arbitrary_segments(
        body in prop::collection::vec(any::<u8>(), 0..3000),
        with_header in any::<bool>(),
    ) {
        let d = TempDir::new("fuzz");
        let mut bytes = Vec::new();
        if with_header {
            bytes.extend_from_slice(&valid_header());
        }
        bytes.extend_from_slice(&body);
        std::fs::write(segment_path(d.path(), 0), &bytes).unwrap();
        read_every_way(d.path());
    }

    /// A real journal with random byte edits, zeroed ranges and truncation: never a panic, and
    /// every record read is one that was written.
    #[test]
    fn reader_never_panics_on_damaged_journals(
        n in 1u64..150,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        zero in proptest::option::of((any::<prop::sample::Index>(), 0usize..200)),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let d = TempDir::new("damage");
        let mut w = Writer::create(d.path(), opts(4096)).unwrap();
        let mut written = Vec::new();
        for i in 0..n {
            let p = util::payload(i, (i as usize * 13) % 100);
            w.append(1 + (i % 4) as u16, i as i64, &p).unwrap();
            written.push(p);
            if i % 10 == 0 {
                w.housekeeping().unwrap();
            }
        }
        w.close().unwrap();
        let segs: Vec<_> = (0..).map(|i| segment_path(d.path(), i)).take_while(|p| p.exists()).collect();
        let last = segs.len() - 1;
        let mut bytes = std::fs::read(&segs[last]).unwrap();
        for (at, v) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        if let Some((at, len)) = zero {
            let i = at.index(bytes.len());
            let end = (i + len).min(bytes.len());
            bytes[i..end].fill(0);
        }
        if let Some(at) = cut {
            bytes.truncate(at.index(bytes.len()));
        }
        std::fs::write(&segs[last], &bytes).unwrap();
        read_every_way(d.path());
        let (got, _) = read_until_error(d.path(), RecoveryMode::TolerateTornTail);
        for r in &got {
            prop_assert_eq!(&r.payload, &written[r.seq as usize - 1]);
        }
    }
}

#[test]
fn header_constants_are_what_format_md_says() {
    assert_eq!(&MAGIC, b"RMJRNL\0\x01");
    let d = TempDir::new("const");
    Writer::create(d.path(), opts(4096))
        .unwrap()
        .close()
        .unwrap();
    let b = std::fs::read(segment_path(d.path(), 0)).unwrap();
    assert_eq!(b.len(), 4096);
    assert_eq!(&b[0..8], b"RMJRNL\0\x01");
    assert_eq!(
        u32::from_le_bytes(b[8..12].try_into().unwrap()),
        journal::FORMAT_VERSION
    );
    assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 0);
    assert_eq!(
        u64::from_le_bytes(b[24..32].try_into().unwrap()),
        opts(4096).created_ns
    );
    assert_eq!(&b[32..64], &HASH);
    assert!(b[64..].iter().all(|&x| x == 0));
    assert!(matches!(verify(d.path()), Ok(s) if s.records == 0 && s.segments == 1));
}
