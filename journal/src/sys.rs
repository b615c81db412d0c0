//! The few OS calls the journal makes beyond `std` and `memmap2`, each turning `errno` into an
//! `io::Error` through [`cvt`].
//!
//! Contract:
//! * [`preallocate`] reserves the blocks of a file up front (`posix_fallocate`), so that a full
//!   disk is an error here, off the hot path, instead of a `SIGBUS` on a page fault inside an
//!   append later. On a file system without native support glibc falls back to writing zeros,
//!   which also reserves the blocks (slowly).
//! * [`start_writeback`] asks the kernel to begin writing a dirty range back now without waiting
//!   (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux; a no-op elsewhere). Linux ignores
//!   `msync(MS_ASYNC)`, so this is what makes the periodic-async mode do anything.
//! * [`try_lock_exclusive`] takes a non-blocking `flock` on a journal's directory so that two
//!   writers never share one journal.
//!
//! None of these is called from `Writer::append` except through an explicit durability mode.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `-1` → the thread's `errno` as an `io::Error`; anything else passes through.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Allocates the blocks for bytes `[0, len)` of `file` (extending it to `len`). Fails with
/// `ENOSPC` / `EDQUOT` on a full disk or quota and `EFBIG` beyond `RLIMIT_FSIZE`.
pub(crate) fn preallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        // SAFETY: `file` is an open descriptor for the whole call; posix_fallocate has no memory
        // arguments. It returns the error number instead of setting errno.
        let err = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // No posix_fallocate (macOS): a sparse file. A full disk then shows as SIGBUS on a page
        // fault; the journal targets Linux, this keeps development on other hosts possible.
        file.set_len(len as u64)
    }
}

/// Starts write-back of `[offset, offset + len)` of `file` without waiting for it.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return Ok(());
        };
        // SAFETY: `file` is an open descriptor for the whole call; no memory arguments.
        cvt(unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        })?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
    Ok(())
}

/// Takes an exclusive, non-blocking `flock` on `file` (a directory opened read-only works).
/// `Ok(false)` if someone else holds it. Released when the descriptor is closed.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: `file` is an open descriptor for the whole call; no memory arguments.
    match cvt(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rmj-sys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn preallocate_extends_and_zeroes() {
        let d = tmp("prealloc");
        let p = d.join("f");
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        preallocate(&f, 8192).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 8192);
        assert!(std::fs::read(&p).unwrap().iter().all(|&b| b == 0));
        start_writeback(&f, 0, 8192).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_is_exclusive() {
        let d = tmp("lock");
        let a = File::open(&d).unwrap();
        let b = File::open(&d).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(!try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(try_lock_exclusive(&b).unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
