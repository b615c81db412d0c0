//! The engine's hot path allocates nothing: a counting global allocator watches 100,000
//! recorded events (decoded by `feeds`) go through `on_event` / `on_batch_end` after warm-up,
//! first into the engine alone, then through the paper pipeline's engine-thread path (a
//! `Deferred` journal recorder flushed into the mapped journal after each batch).

use engine::Engine;
use feeds::{recorded_events, SyncRule};
use ringmaker_tests::{default_config, scratch, usdm, Responder};
use runtime::host::{Deferred, Host, NoRecorder, Recorder};
use runtime::record::JournalRecorder;
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

/// Feeds the recording through `host` (the venue's reports back in after each batch) and
/// counts allocations over 100,000 events after 2,000 batches of warm-up. `after_batch` runs
/// after each batch end, inside the counted window (the paper pipeline's journal flush).
fn count_hot_path<R: Recorder>(
    host: &mut Host<R>,
    mut after_batch: impl FnMut(&mut Host<R>),
) -> (u64, u64, u64) {
    let cfg = default_config();
    let insts: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
    let rec = recorded_events(&[usdm()], &insts, SyncRule::Futures).unwrap();
    let batches: Vec<&[engine::Event]> = rec.batches().collect();
    let mut venue = Responder::new(4096, false);
    let mut reports = Vec::with_capacity(4096);
    let mut counted_events = 0u64;
    let mut intents_before = 0;
    for c in [&ALLOCS, &DEALLOCS, &REALLOCS] {
        c.store(0, Ordering::SeqCst);
    }
    for (k, batch) in batches.iter().enumerate() {
        if k == 2_000 {
            intents_before = venue.count;
            COUNTING.store(true, Ordering::SeqCst);
        }
        for ev in batch.iter() {
            host.event(ev, &mut venue);
        }
        host.batch_end(&mut venue);
        after_batch(host);
        reports.clear();
        reports.append(&mut venue.pending);
        for r in &reports {
            host.event(r, &mut venue);
        }
        host.batch_end(&mut venue);
        after_batch(host);
        if COUNTING.load(Ordering::Relaxed) {
            counted_events += (batch.len() + reports.len()) as u64;
            if counted_events >= 100_000 {
                break;
            }
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert!(
        counted_events >= 100_000,
        "only {counted_events} events after warm-up"
    );
    assert!(
        venue.count > intents_before,
        "the engine quoted while counted"
    );
    (
        ALLOCS.load(Ordering::SeqCst),
        DEALLOCS.load(Ordering::SeqCst),
        REALLOCS.load(Ordering::SeqCst),
    )
}

/// One test (the counters are process-wide): the engine alone, then the paper pipeline's
/// engine-thread path — the engine behind a `Deferred` journal recorder, flushed into the
/// mapped journal after every batch end (segments large enough that no roll-over, which
/// creates a file, falls in the window).
#[test]
fn engine_hot_path_makes_zero_allocations_after_warm_up() {
    let cfg = default_config();
    let mut bare = Host::new(Engine::new(&cfg), NoRecorder);
    assert_eq!(
        count_hot_path(&mut bare, |_| {}),
        (0, 0, 0),
        "engine alone: allocations, deallocations, reallocations on the hot path"
    );

    let dir = scratch("engine-alloc-journal").join("journal");
    let recorder = JournalRecorder::create(&dir, &cfg, 256 << 20, 0).unwrap();
    let mut host = Host::new(Engine::new(&cfg), Deferred::new(recorder, 8192));
    let counts = count_hot_path(&mut host, |h| h.recorder.flush());
    assert_eq!(
        counts,
        (0, 0, 0),
        "engine + deferred journal: allocations, deallocations, reallocations on the hot path"
    );
    let recorder = host.recorder.into_inner();
    assert!(recorder.events() > 100_000, "{}", recorder.events());
    recorder.close().unwrap();
    // What was journaled this way replays: same records, same order.
    let outcome = runtime::record::replay(&dir).unwrap();
    assert!(
        matches!(outcome, runtime::record::ReplayOutcome::Identical { .. }),
        "{outcome:?}"
    );
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
