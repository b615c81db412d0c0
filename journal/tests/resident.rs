//! A writer's resident memory is bounded by its windows, not by what it has written: written
//! data behind the position leaves the resident set in `housekeeping` (it stays in the page
//! cache), and every record still reads back intact afterwards.
//!
//! One test in its own binary: it reads the process's resident set size, which other tests
//! running in parallel would disturb.

mod util;

use journal::{Durability, Reader, RecoveryMode, Writer, RESIDENT_BEHIND};
use util::{opts, TempDir};

/// The process's resident set, bytes (Linux `/proc/self/statm`, second field, in pages).
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}

#[test]
fn writing_a_large_segment_keeps_resident_memory_bounded_and_data_intact() {
    let d = TempDir::new("resident");
    let mut o = opts(128 << 20);
    o.durability = Durability::PeriodicAsync {
        every_records: 10_000,
        every_ns: 0,
    };
    let mut w = Writer::create(d.path(), o).unwrap();
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let before = resident();
    let mut peak_growth = 0usize;
    let records = 96 * 1024; // about 96 MiB of records in one segment
    for k in 0..records {
        let mut p = payload.clone();
        p[..8].copy_from_slice(&(k as u64).to_le_bytes());
        w.append(1, k as i64, &p).unwrap();
        if k % 256 == 0 {
            w.housekeeping().unwrap();
            peak_growth = peak_growth.max(resident().saturating_sub(before));
        }
    }
    w.close().unwrap();
    // Without the release the whole 96 MiB written would be resident; with it, the window behind
    // (RESIDENT_BEHIND), one release chunk and the prefault window ahead, plus slack.
    assert!(
        peak_growth < RESIDENT_BEHIND + (24 << 20),
        "resident memory grew by {} MiB while writing 96 MiB",
        peak_growth >> 20
    );
    let r = Reader::open(d.path(), RecoveryMode::Strict).unwrap();
    let mut n = 0u64;
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(rec.payload.len(), 1000);
        assert_eq!(
            u64::from_le_bytes(rec.payload[..8].try_into().unwrap()),
            n,
            "record {n} reads back as written"
        );
        assert_eq!(rec.payload[8..], payload[8..]);
        n += 1;
    }
    assert_eq!(n, records as u64);
}
