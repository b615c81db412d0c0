//! The append hot path allocates nothing: a counting global allocator watches appends of
//! 64-byte records after warm-up, across many segment roll-overs (the owner calling
//! `housekeeping` between batches, outside the counted window, as the engine thread would when
//! its ring is drained), in each durability mode whose append path has no syscall.
//!
//! Counting is per thread and only between `start` and `stop`, so the test harness's own
//! allocations on other threads do not count.

mod util;

use journal::{Durability, Writer};
use test_support::alloc::{Counter, CountingAlloc};
use util::{opts, TempDir};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn append_allocates_nothing() {
    for durability in [
        Durability::None,
        Durability::PeriodicAsync {
            every_records: 1000,
            every_ns: 0,
        },
    ] {
        let d = TempDir::new("alloc");
        let mut o = opts(64 * 1024);
        o.durability = durability;
        let mut w = Writer::create(d.path(), o).unwrap();
        let payload = [0x42u8; 64];
        let mut ts = 0i64;
        // Warm-up: first touches of code and pages.
        for _ in 0..1_000 {
            ts += 1;
            w.append(1, ts, &payload).unwrap();
            w.housekeeping().unwrap();
        }
        let first = w.next_seq();
        let mut allocations = 0;
        for _batch in 0..500 {
            let counter = Counter::start();
            for _ in 0..100 {
                ts += 1;
                w.append(1, ts, &payload).unwrap();
            }
            // Records filled in place: 100 payloads into records of at most 32, then sealed.
            for _ in 0..100 {
                ts += 1;
                w.extend(6, ts, &payload, 32 * 64).unwrap();
            }
            w.seal().unwrap();
            allocations += counter.stop().calls();
            w.housekeeping().unwrap();
        }
        let appended = w.next_seq() - first;
        w.close().unwrap();
        // Per batch: 100 records of 96 bytes and 4 filled in place (32 + 32 + 32 + 4 payloads).
        assert_eq!(appended, 52_000);
        // About 8 MB in 64 KiB segments: over a hundred roll-overs were counted.
        let segments = std::fs::read_dir(d.path()).unwrap().count();
        assert!(segments > 100, "{segments}");
        assert_eq!(allocations, 0, "{durability:?}");
        let s = journal::verify(d.path()).unwrap();
        assert_eq!(s.records, 53_000);
    }
}
