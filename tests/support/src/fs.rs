//! Temp dirs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// A fresh, empty directory under the system temp dir, unique per process and per call, removed
/// (with its contents) on drop unless [`TempDir::keep`] is called.
#[derive(Debug)]
pub struct TempDir {
    /// Empty once kept.
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp>/ringmaker-<name>-<pid>-<n>`; `name` only helps a human find it.
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ringmaker-{name}-{}-{n}", std::process::id()));
        // A leftover from an earlier process with the same pid.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Keeps the directory (it is no longer removed) and returns its path.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }

    /// Keeps the directory until the process exits, then removes it: for a directory shared
    /// through a `static` by every test of a file (a static is never dropped). Removed by an
    /// `atexit` handler, which runs when the test harness returns or calls `exit` (pass or fail);
    /// a process killed by a signal leaves it, and a later run with the same pid removes it.
    pub fn keep_until_exit(self) -> PathBuf {
        static AT_EXIT: Once = Once::new();
        let path = self.keep();
        lock_exit_list().push(path.clone());
        AT_EXIT.call_once(|| {
            // SAFETY: registers a plain `extern "C"` function with no arguments; it does not
            // unwind (every error is ignored).
            unsafe { libc::atexit(remove_at_exit) };
        });
        path
    }
}

/// A cache home (`XDG_CACHE_HOME`) of this test process's own, empty at first and removed at
/// exit: a `ringmaker` the tests start writes its event cache there, not into the user's
/// `~/.cache`.
pub fn isolated_cache_home() -> &'static Path {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| TempDir::new("cache-home").keep_until_exit())
}

static AT_EXIT_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock_exit_list() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    AT_EXIT_DIRS.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn remove_at_exit() {
    for p in lock_exit_list().drain(..) {
        let _ = std::fs::remove_dir_all(p);
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn unique_removed_on_drop_unless_kept() {
        let a = TempDir::new("t");
        let b = TempDir::new("t");
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir() && b.path().is_dir());
        std::fs::write(a.join("f"), b"x").unwrap();
        let pa = a.path().to_path_buf();
        drop(a);
        assert!(!pa.exists());
        let pb = b.keep();
        assert!(pb.is_dir());
        std::fs::remove_dir_all(&pb).unwrap();
    }
}
