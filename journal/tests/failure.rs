//! Failure injection against the real file system: torn writes of every shape at every byte
//! offset, single bit flips in a middle record, a full disk (via `RLIMIT_FSIZE` in a child
//! process) and foreign or future segment headers.

mod util;

use journal::{
    record_len, verify, CorruptionReason, JournalError, Reader, RecoveryMode, TornTail, Writer,
};
use std::path::Path;
use util::{copy_dir, opts, payload, read_all, read_until_error, segment_path, Owned, TempDir};

/// A journal of `n` records in 4 KiB segments, the last one with a 200-byte payload; closed
/// with a spare segment after the last data segment. Returns the records, and the segment and
/// offset of the last record.
fn journal(dir: &Path, n: u64) -> (Vec<Owned>, u64, u64) {
    let mut w = Writer::create(dir, opts(4096)).unwrap();
    let mut recs = Vec::new();
    for i in 0..n {
        let len = if i + 1 == n {
            200
        } else {
            (i as usize * 17) % 120
        };
        let p = payload(i, len);
        let seq = w.append(1 + (i % 5) as u16, 1_000 + i as i64, &p).unwrap();
        recs.push(Owned {
            kind: 1 + (i % 5) as u16,
            flags: 0,
            seq,
            timestamp_ns: 1_000 + i as i64,
            payload: p,
        });
        w.housekeeping().unwrap();
    }
    w.close().unwrap();
    // Find the last record by walking the segments.
    let r = Reader::open(dir, RecoveryMode::Strict).unwrap();
    assert_eq!(r.records().count() as u64, n);
    let last_seg = (0..).take_while(|&i| segment_path(dir, i).exists()).count() as u64 - 2;
    let bytes = std::fs::read(segment_path(dir, last_seg)).unwrap();
    let mut off = 64usize;
    let mut last = off;
    while bytes[off..off + 8] != [0; 8] {
        last = off;
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += record_len(len);
    }
    (recs, last_seg, last as u64)
}

#[derive(Clone, Copy)]
enum Shape {
    /// The file ends inside the record (`ftruncate`).
    Truncate,
    /// The record's bytes from `k` on never reached the disk (zeroes).
    ZeroFrom,
    /// The record's bytes before `k` never reached the disk (an earlier page lost).
    ZeroUntil,
}

#[test]
fn torn_last_record_at_every_offset_recovers_every_complete_record() {
    let base = TempDir::new("torn-base");
    let n = 80;
    let (recs, seg, off) = journal(base.path(), n);
    let total = record_len(200) as u64;
    let before = &recs[..n as usize - 1];
    let original = std::fs::read(segment_path(base.path(), seg)).unwrap();
    for shape in [Shape::Truncate, Shape::ZeroFrom, Shape::ZeroUntil] {
        for k in 0..total {
            let d = TempDir::new("torn");
            copy_dir(base.path(), d.path());
            let mut bytes = original.clone();
            let (start, end) = (off as usize, (off + total) as usize);
            let cut = start + k as usize;
            match shape {
                Shape::Truncate => bytes.truncate(cut),
                Shape::ZeroFrom => bytes[cut..end].fill(0),
                Shape::ZeroUntil => bytes[start..cut].fill(0),
            }
            let damaged = bytes[start..end.min(bytes.len())].iter().any(|&b| b != 0);
            let p = segment_path(d.path(), seg);
            std::fs::write(&p, &bytes).unwrap();

            // Tolerant: every complete record before it, and the torn tail reported.
            let r = Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap();
            let got: Vec<Owned> = match read_all(d.path(), RecoveryMode::TolerateTornTail) {
                Ok(g) => g,
                Err(e) => panic!("shape {} k={k}: {e}", shape as u8),
            };
            // Zeroing only the padding (or nothing) leaves the record whole.
            let intact = bytes.len() >= end && bytes[start..end] == original[start..end];
            if intact {
                assert_eq!(got, recs, "k={k}");
                continue;
            }
            assert_eq!(got, before, "k={k}");
            let expected_torn = damaged.then_some(TornTail {
                segment: seg,
                offset: off,
                last_good_seq: n - 1,
            });
            assert_eq!(r.torn_tail().unwrap(), expected_torn, "k={k}");

            // Strict: the same records, then the damage (none if only zeroes were left: the
            // record then simply was never written).
            let (strict, err) = read_until_error(d.path(), RecoveryMode::Strict);
            assert_eq!(strict, before, "k={k}");
            match (damaged, err) {
                (false, None) => {}
                (
                    true,
                    Some(JournalError::TornTail {
                        segment,
                        offset,
                        last_good_seq,
                    }),
                ) => assert_eq!((segment, offset, last_good_seq), (seg, off, n - 1)),
                (d, e) => panic!("k={k} damaged={d}: {e:?}"),
            }

            // Recovery: a writer continues after the last good record.
            let mut w = Writer::open_append(d.path(), opts(4096)).unwrap();
            assert_eq!(w.append(9, 0, b"after recovery").unwrap(), n);
            w.close().unwrap();
            let all = read_all(d.path(), RecoveryMode::Strict).unwrap();
            assert_eq!(&all[..n as usize - 1], before);
            assert_eq!(all[n as usize - 1].payload, b"after recovery");
        }
    }
}

#[test]
fn a_flipped_bit_in_a_middle_record_is_named_by_verify() {
    let base = TempDir::new("flip-base");
    let n = 120;
    journal(base.path(), n);
    // Pick records in the first segment and in the last data segment.
    let r = Reader::open(base.path(), RecoveryMode::Strict).unwrap();
    let mut positions = Vec::new(); // (segment, offset, seq, len)
    let mut seg = 0u64;
    let mut off = 64u64;
    for rec in r.records() {
        let rec = rec.unwrap();
        let len = record_len(rec.payload.len()) as u64;
        if off + len > 4096
            || std::fs::read(segment_path(base.path(), seg)).unwrap()
                [off as usize..off as usize + 8]
                == [0; 8]
        {
            seg += 1;
            off = 64;
        }
        positions.push((seg, off, rec.seq, len));
        off += len;
    }
    drop(r);
    let first_seg_mid = positions[10];
    let last_seg_mid = positions[positions.len() - 6];
    assert_eq!(first_seg_mid.0, 0);
    assert!(last_seg_mid.0 > 0);
    for (segment, offset, seq, len) in [first_seg_mid, last_seg_mid] {
        let original = std::fs::read(segment_path(base.path(), segment)).unwrap();
        for bit in 0..len * 8 {
            let d = TempDir::new("flip");
            copy_dir(base.path(), d.path());
            let mut bytes = original.clone();
            bytes[(offset + bit / 8) as usize] ^= 1 << (bit % 8);
            std::fs::write(segment_path(d.path(), segment), &bytes).unwrap();
            match verify(d.path()) {
                Err(JournalError::Corruption {
                    segment: s,
                    offset: o,
                    sequence,
                    reason,
                }) => {
                    assert_eq!((s, o, sequence), (segment, offset, seq), "bit {bit}");
                    assert!(
                        matches!(
                            reason,
                            CorruptionReason::BadCrc { .. }
                                | CorruptionReason::BadPadding
                                | CorruptionReason::Truncated { .. }
                        ),
                        "{reason:?}"
                    );
                }
                other => panic!("bit {bit} of seq {seq}: {other:?}"),
            }
            // The records before it are still readable.
            let (good, err) = read_until_error(d.path(), RecoveryMode::TolerateTornTail);
            assert_eq!(good.len() as u64, seq - 1);
            assert!(err.is_some());
            // And a writer refuses to append to it.
            assert!(matches!(
                Writer::open_append(d.path(), opts(4096)),
                Err(JournalError::Corruption { .. })
            ));
        }
    }
}

#[test]
fn wrong_magic_version_or_header_crc_are_typed_errors() {
    let base = TempDir::new("hdr-base");
    journal(base.path(), 100);
    let cases: [(u64, usize, u8); 5] = [
        (0, 0, b'X'),  // magic of segment 0
        (1, 3, b'x'),  // magic of a later segment
        (0, 8, 2),     // version 2
        (1, 11, 0x80), // version 0x80000001
        (0, 40, 0xff), // hash byte: header CRC
    ];
    for (segment, at, value) in cases {
        let d = TempDir::new("hdr");
        copy_dir(base.path(), d.path());
        let p = segment_path(d.path(), segment);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[at] = value;
        std::fs::write(&p, &bytes).unwrap();
        for err in [
            Reader::open(d.path(), RecoveryMode::TolerateTornTail).unwrap_err(),
            verify(d.path()).unwrap_err(),
            Writer::open_append(d.path(), opts(4096)).unwrap_err(),
        ] {
            match (at, err) {
                (0..=7, JournalError::BadMagic { segment: s, found }) => {
                    assert_eq!(s, segment);
                    assert_eq!(found[at], value);
                }
                (
                    8..=11,
                    JournalError::UnsupportedVersion {
                        segment: s,
                        found,
                        supported: 1,
                    },
                ) => {
                    assert_eq!(s, segment);
                    assert_ne!(found, 1);
                }
                (_, JournalError::HeaderCrc { segment: s, .. }) => assert_eq!(s, segment),
                (_, e) => panic!("byte {at} of segment {segment}: {e:?}"),
            }
        }
    }
}

/// The child half of the full-disk test: does nothing unless the parent set the variable.
#[test]
fn full_disk_child_process() {
    let Ok(dir) = std::env::var("RMJ_FULL_DISK_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let mut w = Writer::create(dir, opts(64 * 1024)).unwrap();
    // From here on no file may grow past 32 KiB, so no new 64 KiB segment can be preallocated.
    // Without SIG_IGN the kernel would kill the process with SIGXFSZ instead of failing the
    // call with EFBIG.
    // SAFETY: setting a signal disposition to SIG_IGN and lowering a resource limit have no
    // memory-safety preconditions; this child process runs this one test only.
    unsafe {
        assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
        let lim = libc::rlimit {
            rlim_cur: 32 * 1024,
            rlim_max: 32 * 1024,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut housekeeping_error = None;
    let mut acked = 0u64;
    let append_error = loop {
        match w.append(1, acked as i64, &payload(acked, 100)) {
            Ok(seq) => {
                assert_eq!(seq, acked + 1);
                acked = seq;
            }
            Err(e) => break e,
        }
        if let Err(e) = w.housekeeping() {
            housekeeping_error.get_or_insert(e);
        }
    };
    // The writer stays usable and keeps saying the same thing.
    let again = w.append(1, 0, &payload(acked, 100)).unwrap_err();
    w.close().unwrap();
    let report = format!(
        "acked={acked}\nhousekeeping={}\nappend={append_error}\nagain={again}\n",
        housekeeping_error
            .map(|e| e.to_string())
            .unwrap_or_default(),
    );
    for e in [&append_error, &again] {
        assert!(
            matches!(e, JournalError::NoSpace { last_seq, .. } if *last_seq == acked),
            "{e:?}"
        );
    }
    std::fs::write(dir.join("report.txt"), report).unwrap();
}

#[test]
fn full_disk_is_a_clear_error_and_earlier_records_survive() {
    let d = TempDir::new("full");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "full_disk_child_process",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("RMJ_FULL_DISK_DIR", d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(d.path().join("report.txt")).unwrap();
    let acked: u64 = report.lines().next().unwrap()["acked=".len()..]
        .parse()
        .unwrap();
    assert!(acked > 100, "{report}");
    assert!(
        report.contains("housekeeping=no space to preallocate journal segment"),
        "{report}"
    );
    assert!(
        report.contains("append=no space to preallocate journal segment"),
        "{report}"
    );
    assert!(
        report.contains(&format!("every record up to seq {acked} is intact")),
        "{report}"
    );
    assert!(report.contains("File too large"), "{report}");
    std::fs::remove_file(d.path().join("report.txt")).unwrap();
    // No half-made segment is left behind, and every acknowledged record reads back.
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["seg-00000000.rmj"]);
    let recs = read_all(d.path(), RecoveryMode::Strict).unwrap();
    assert_eq!(recs.len() as u64, acked);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.payload, payload(i as u64, 100));
    }
    // With space back, the journal continues.
    let mut w = Writer::open_append(d.path(), opts(64 * 1024)).unwrap();
    assert_eq!(w.append(1, 0, b"space again").unwrap(), acked + 1);
    w.close().unwrap();
}

/// Issue 11: a middle segment cut short exactly at a record boundary is blamed on itself, where
/// the records stop, not on the next segment whose first record merely shows the gap.
#[test]
fn a_middle_segment_cut_at_a_record_boundary_is_blamed_on_itself() {
    let d = TempDir::new("cut-middle");
    let (_recs, last_seg, _) = journal(d.path(), 400);
    assert!(last_seg >= 3, "{last_seg}");
    // Cut segment 1 after its first record.
    let path = segment_path(d.path(), 1);
    let bytes = std::fs::read(&path).unwrap();
    let len = u32::from_le_bytes(bytes[64..68].try_into().unwrap()) as usize;
    let cut = 64 + record_len(len);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(cut as u64).unwrap();
    drop(f);
    match verify(d.path()) {
        Err(JournalError::Corruption {
            segment,
            offset,
            reason: CorruptionReason::EndsEarly { .. },
            ..
        }) => {
            assert_eq!(segment, 1);
            assert_eq!(offset, cut as u64);
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 11: a segment file that is a copy of another (a duplicated segment index) is named
/// itself.
#[test]
fn a_duplicated_segment_is_named() {
    let d = TempDir::new("dup-segment");
    let (_recs, last_seg, _) = journal(d.path(), 400);
    assert!(last_seg >= 3);
    std::fs::copy(segment_path(d.path(), 1), segment_path(d.path(), 2)).unwrap();
    match verify(d.path()) {
        Err(JournalError::HeaderMismatch { segment, .. }) => assert_eq!(segment, 2),
        other => panic!("{other:?}"),
    }
}
