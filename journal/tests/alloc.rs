//! The append hot path allocates nothing: a counting global allocator watches appends of
//! 64-byte records after warm-up, across many segment roll-overs (the owner calling
//! `housekeeping` between batches, outside the counted window, as the engine thread would when
//! its ring is drained), in each durability mode whose append path has no syscall.
//!
//! Counting is per thread and only between `start` and `stop`, so the test harness's own
//! allocations on other threads do not count.

mod util;

use journal::{Durability, Writer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use util::{opts, TempDir};

struct Counting;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// Counts one allocator call on this thread if counting is on. Never allocates: both
/// thread-locals are `const`-initialised `Cell`s without destructors.
fn count() {
    if ENABLED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches only
// this thread's `Cell`s and never allocates, so it cannot re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`, per the caller.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` / `layout` come from `System` (through us) and `new_size` is valid, per
        // the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn start() {
    COUNT.with(|c| c.set(0));
    ENABLED.with(|e| e.set(true));
}

fn stop() -> u64 {
    ENABLED.with(|e| e.set(false));
    COUNT.with(Cell::get)
}

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
            start();
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
            allocations += stop();
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
