//! The engine's hot path allocates nothing: a counting global allocator watches 100,000
//! recorded events (decoded by `feeds`) go through `on_event` / `on_batch_end` after warm-up.

use engine::{Config, Engine};
use feeds::{recorded_events, SyncRule};
use ringmaker_tests::{usdm, Responder};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static DEALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are atomics
// and have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            DEALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            REALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn engine_hot_path_makes_zero_allocations_after_warm_up() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/default.toml"
    ))
    .unwrap();
    let cfg = Config::from_toml(&text).unwrap();
    let insts: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
    let rec = recorded_events(&[usdm()], &insts, SyncRule::Futures).unwrap();
    let batches: Vec<&[engine::Event]> = rec.batches().collect();
    let mut e = Engine::new(&cfg);
    let mut venue = Responder::new(4096, false);
    let mut reports = Vec::with_capacity(4096);
    let mut counted_events = 0u64;
    let mut intents_before = 0;
    for (k, batch) in batches.iter().enumerate() {
        if k == 2_000 {
            intents_before = venue.count;
            COUNTING.store(true, Ordering::SeqCst);
        }
        for ev in batch.iter() {
            e.on_event(ev, &mut venue);
        }
        e.on_batch_end(&mut venue);
        reports.clear();
        reports.append(&mut venue.pending);
        for r in &reports {
            e.on_event(r, &mut venue);
        }
        e.on_batch_end(&mut venue);
        if COUNTING.load(Ordering::Relaxed) {
            counted_events += (batch.len() + reports.len()) as u64;
            if counted_events >= 100_000 {
                break;
            }
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    let (a, d, r) = (
        ALLOCS.load(Ordering::SeqCst),
        DEALLOCS.load(Ordering::SeqCst),
        REALLOCS.load(Ordering::SeqCst),
    );
    assert!(
        counted_events >= 100_000,
        "only {counted_events} events after warm-up"
    );
    assert!(
        venue.count > intents_before,
        "the engine quoted while counted"
    );
    assert_eq!(
        (a, d, r),
        (0, 0, 0),
        "allocations, deallocations, reallocations on the hot path"
    );
}
