//! The OS calls of the live pipeline, behind one small layer.
//!
//! Contract: every function acts on the calling process or thread only, returns the OS error
//! as an [`io::Error`] (errno turned into the error by one helper, `cvt`), and never panics. On systems
//! other than Linux each call fails with [`io::ErrorKind::Unsupported`], so the pipeline still
//! runs there, just without these tunings (and says so). Thread pinning itself goes through
//! `core_affinity`, which wraps `sched_setaffinity` the same way.

use std::io;

/// Turns a libc return value into a result: `-1` means "see errno".
#[cfg(target_os = "linux")]
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Locks every current and future page of the process in memory (`mlockall`), so the hot path
/// never takes a major page fault. Fails with `EPERM` without `CAP_IPC_LOCK`, or `ENOMEM` when
/// `RLIMIT_MEMLOCK` (`ulimit -l`) is too small.
#[cfg(target_os = "linux")]
pub fn lock_all_memory() -> io::Result<()> {
    // SAFETY: `mlockall` takes only flags and reads or writes no memory of ours.
    cvt(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) }).map(drop)
}

/// Puts the calling thread under `SCHED_FIFO` at `priority` (1..=99). Fails with `EPERM`
/// without `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` (`ulimit -r`) at least `priority`, and with
/// `EINVAL` for a priority out of range.
#[cfg(target_os = "linux")]
pub fn set_fifo_for_current_thread(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: on Linux pid 0 names the calling thread; `param` is a valid, initialised
    // `sched_param` that outlives the call, which only reads it.
    cvt(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) }).map(drop)
}

/// The calling thread's kernel id (for status lines and `chrt -p` / `taskset -p`).
#[cfg(target_os = "linux")]
pub fn thread_id() -> i64 {
    // SAFETY: `gettid` takes no arguments and cannot fail.
    i64::from(unsafe { libc::gettid() })
}

#[cfg(not(target_os = "linux"))]
fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "only implemented on Linux")
}

/// See the Linux version.
#[cfg(not(target_os = "linux"))]
pub fn lock_all_memory() -> io::Result<()> {
    Err(unsupported())
}

/// See the Linux version.
#[cfg(not(target_os = "linux"))]
pub fn set_fifo_for_current_thread(_priority: i32) -> io::Result<()> {
    Err(unsupported())
}

/// See the Linux version.
#[cfg(not(target_os = "linux"))]
pub fn thread_id() -> i64 {
    0
}

/// What the user should do about a failed privileged call.
pub fn permission_hint(e: &io::Error, what: &str) -> String {
    match e.raw_os_error() {
        #[cfg(target_os = "linux")]
        Some(libc::EPERM) => format!(
            "{what} is not permitted: run with the needed capability ({}) or raise the limit \
             ({}), or set it to false in [cpu]",
            if what == "mlockall" {
                "CAP_IPC_LOCK"
            } else {
                "CAP_SYS_NICE"
            },
            if what == "mlockall" {
                "ulimit -l"
            } else {
                "ulimit -r"
            }
        ),
        #[cfg(target_os = "linux")]
        Some(libc::ENOMEM) => {
            format!("{what} failed: RLIMIT_MEMLOCK is too small (raise `ulimit -l`): {e}")
        }
        _ => format!("{what} failed: {e}"),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn bad_priority_is_an_error_not_a_panic() {
        let e = set_fifo_for_current_thread(1000).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert!(permission_hint(&e, "SCHED_FIFO").contains("SCHED_FIFO failed"));
    }

    #[test]
    fn thread_ids_differ_between_threads() {
        let me = thread_id();
        let other = std::thread::spawn(thread_id).join().unwrap();
        assert!(me > 0 && other > 0 && me != other);
    }
}
