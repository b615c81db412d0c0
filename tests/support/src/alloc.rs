//! A counting global allocator, to prove that a hot path allocates nothing.
//!
//! [`CountingAlloc`] forwards every call to [`System`] and, on a thread with a counting window
//! open ([`Counter::start`] … [`Counter::stop`], or [`count_on_this_thread`]), counts it. Counts
//! are per thread, so the test harness and other tests, which allocate on their own threads, do
//! not disturb them; to count work done on another thread, open the window on that thread.
//!
//! Each test binary installs it itself (a global allocator is per binary):
//!
//! ```
//! use test_support::alloc::{count_on_this_thread, CountingAlloc};
//!
//! #[global_allocator]
//! static A: CountingAlloc = CountingAlloc;
//!
//! fn main() {
//!     let mut buf: Vec<u8> = Vec::with_capacity(8);
//!     let ((), counts) = count_on_this_thread(|| buf.extend(0..8));
//!     assert!(counts.is_zero(), "allocator calls on the hot path: {counts:?}");
//!     let (s, counts) = count_on_this_thread(|| "x".repeat(3));
//!     assert_eq!((counts.allocs, counts.last_size), (1, 3));
//!     drop(s);
//! }
//! ```
//!
//! [`Counter::start`] checks that it is installed: in a binary without it, counts would stay
//! zero and every allocation test would pass whatever the code does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::marker::PhantomData;

/// The counting global allocator: [`System`]'s, plus per-thread counts while enabled.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

/// Allocator calls counted on one thread.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counts {
    /// `alloc` and `alloc_zeroed` calls.
    pub allocs: u64,
    /// `dealloc` calls.
    pub deallocs: u64,
    /// `realloc` calls.
    pub reallocs: u64,
    /// Size of the last allocation or reallocation counted (0 if none).
    pub last_size: usize,
}

impl Counts {
    /// No call counted.
    pub const ZERO: Counts = Counts {
        allocs: 0,
        deallocs: 0,
        reallocs: 0,
        last_size: 0,
    };

    /// All calls: allocations, deallocations and reallocations.
    pub fn calls(&self) -> u64 {
        self.allocs + self.deallocs + self.reallocs
    }

    /// Whether no call was counted.
    pub fn is_zero(&self) -> bool {
        self.calls() == 0
    }

    /// The calls counted since `before` (an earlier reading of the same window); `last_size` is
    /// this reading's.
    pub fn since(&self, before: Counts) -> Counts {
        Counts {
            allocs: self.allocs - before.allocs,
            deallocs: self.deallocs - before.deallocs,
            reallocs: self.reallocs - before.reallocs,
            last_size: self.last_size,
        }
    }
}

thread_local! {
    /// Whether calls on this thread are counted now.
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    /// Whether a [`Counter`] is open (counting or paused) on this thread.
    static OPEN: Cell<bool> = const { Cell::new(false) };
    static COUNTS: Cell<Counts> = const { Cell::new(Counts::ZERO) };
}

/// Counts one call on this thread if counting is on. Never allocates (so it cannot re-enter the
/// allocator): the thread-locals are `const`-initialised `Cell`s without destructors, and
/// `try_with` fails quietly rather than panicking while the thread is being torn down.
#[inline]
fn count(f: impl FnOnce(&mut Counts)) {
    if ENABLED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNTS.try_with(|c| {
            let mut v = c.get();
            f(&mut v);
            c.set(v);
        });
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, whose result is returned
// as is; the bookkeeping touches only this thread's `Cell`s and never allocates, so it cannot
// re-enter the allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(|c| {
            c.allocs += 1;
            c.last_size = layout.size();
        });
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(|c| {
            c.allocs += 1;
            c.last_size = layout.size();
        });
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract, which is `System`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(|c| c.deallocs += 1);
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through us to it) with
        // `layout`, per the caller.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(|c| {
            c.reallocs += 1;
            c.last_size = new_size;
        });
        // SAFETY: `ptr` / `layout` come from `System` (through us) and `new_size` is valid, per
        // the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A counting window on the current thread: counts from [`Counter::start`] to
/// [`Counter::stop`] (or drop), except while paused. Not `Send`: it belongs to its thread.
#[derive(Debug)]
#[must_use = "counting stops when the counter is dropped"]
pub struct Counter {
    _not_send: PhantomData<*const ()>,
}

impl Counter {
    /// Resets this thread's counts and starts counting.
    ///
    /// # Panics
    ///
    /// If a window is already open on this thread, or if [`CountingAlloc`] is not this binary's
    /// global allocator (a probe allocation goes uncounted).
    pub fn start() -> Counter {
        assert!(
            !OPEN.with(Cell::get),
            "a counting window is already open on this thread"
        );
        OPEN.with(|o| o.set(true));
        let counter = Counter {
            _not_send: PhantomData,
        };
        COUNTS.with(|c| c.set(Counts::ZERO));
        ENABLED.with(|e| e.set(true));
        drop(std::hint::black_box(Box::new(0u64)));
        let probe = counter.read();
        counter.pause();
        assert!(
            probe.allocs == 1 && probe.deallocs == 1,
            "the probe allocation was not counted ({probe:?}): declare \
             `#[global_allocator] static A: test_support::alloc::CountingAlloc = \
             test_support::alloc::CountingAlloc;` in this test binary"
        );
        COUNTS.with(|c| c.set(Counts::ZERO));
        counter.resume();
        counter
    }

    /// The counts so far (reading does not allocate).
    pub fn read(&self) -> Counts {
        COUNTS.with(Cell::get)
    }

    /// Stops counting until [`Counter::resume`]; the counts are kept.
    pub fn pause(&self) {
        ENABLED.with(|e| e.set(false));
    }

    /// Counts again after [`Counter::pause`].
    pub fn resume(&self) {
        ENABLED.with(|e| e.set(true));
    }

    /// Stops counting, closes the window and returns the counts.
    pub fn stop(self) -> Counts {
        self.pause();
        self.read()
        // `drop(self)` closes the window.
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(false));
        OPEN.with(|o| o.set(false));
    }
}

/// Runs `f` with counting on for the current thread and returns its result and the calls it
/// made on this thread (dropping the result, after the window, is not counted).
pub fn count_on_this_thread<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    let counter = Counter::start();
    let r = f();
    (r, counter.stop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static A: CountingAlloc = CountingAlloc;

    #[test]
    fn an_allocation_on_the_counting_thread_is_counted() {
        let (v, c) = count_on_this_thread(|| {
            let mut v: Vec<u64> = Vec::with_capacity(7);
            v.extend(0..7);
            v.push(7); // Grows: a realloc.
            drop(std::hint::black_box(Box::new([0u8; 3])));
            v
        });
        assert_eq!(v.len(), 8);
        assert_eq!(
            c,
            Counts {
                allocs: 2,
                deallocs: 1,
                reallocs: 1,
                last_size: 3
            }
        );
        assert!(!c.is_zero());
        assert_eq!(c.calls(), 4);
        drop(v); // Outside the window: not counted, and no window is open any more.
    }

    #[test]
    fn allocation_free_code_counts_zero() {
        let mut buf: Vec<u64> = Vec::with_capacity(64);
        let ((), c) = count_on_this_thread(|| {
            buf.clear();
            buf.extend(0..64);
        });
        assert_eq!(c, Counts::ZERO);
        assert!(c.is_zero());
    }

    #[test]
    fn an_allocation_on_another_thread_is_not_counted() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static GO: AtomicBool = AtomicBool::new(false);
        static DONE: AtomicBool = AtomicBool::new(false);
        let other = std::thread::spawn(|| {
            while !GO.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            for n in 1..100 {
                drop(std::hint::black_box(vec![1u8; n]));
            }
            DONE.store(true, Ordering::Release);
            // On that thread, with its own window, an allocation is counted.
            count_on_this_thread(|| drop(std::hint::black_box(vec![1u8; 100]))).1
        });
        // Spawning allocated on this thread, before the window opens; waiting does not allocate.
        let ((), here) = count_on_this_thread(|| {
            GO.store(true, Ordering::Release);
            while !DONE.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        });
        let there = other.join().unwrap();
        assert_eq!(here, Counts::ZERO);
        assert_eq!(
            there,
            Counts {
                allocs: 1,
                deallocs: 1,
                reallocs: 0,
                last_size: 100
            }
        );
    }

    #[test]
    fn pause_and_since() {
        let counter = Counter::start();
        let a = counter.read();
        let v = std::hint::black_box(vec![0u8; 10]);
        counter.pause();
        drop(std::hint::black_box(vec![0u8; 20])); // Not counted.
        counter.resume();
        drop(v);
        let c = counter.stop();
        assert_eq!(
            c.since(a),
            Counts {
                allocs: 1,
                deallocs: 1,
                reallocs: 0,
                last_size: 10
            }
        );
        // The window is closed: a new one may start.
        assert!(count_on_this_thread(|| ()).1.is_zero());
    }

    #[test]
    #[should_panic(expected = "allocator calls on the measured path")]
    fn an_allocation_fails_a_zero_assertion() {
        let (_, c) = count_on_this_thread(|| std::hint::black_box(String::from("x")));
        assert!(c.is_zero(), "allocator calls on the measured path: {c:?}");
    }

    #[test]
    #[should_panic(expected = "already open")]
    fn windows_do_not_nest() {
        let _outer = Counter::start();
        let _inner = Counter::start();
    }
}
