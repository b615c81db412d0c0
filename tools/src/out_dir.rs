//! The `--out` directory: a run is built beside the previous one and swapped in only when it
//! succeeds, under an exclusive lock, and nothing ringmaker did not write is ever deleted.
//!
//! 1. [`Staged::begin`] creates `OUT`, takes an exclusive `flock` on `OUT/.ringmaker.lock` (a
//!    second run into the same `OUT` fails at once instead of interleaving journals), checks that
//!    every artifact of a previous run that this run would replace is one ringmaker writes (a
//!    `journal/` of segment files, a `plots/` of its PNGs, regular `report.json` /
//!    `latency.hlog` files) and refuses otherwise, and creates an empty staging directory
//!    `OUT/.ringmaker-new-<pid>/` where the run writes.
//! 2. [`Staged::commit`], after the run succeeded: each previous artifact moves into
//!    `OUT/.ringmaker-old-<pid>/`, each new one into its place (renames within `OUT`), and the
//!    old ones are removed.
//! 3. A run that fails (or is dropped without commit) removes its staging directory; the previous
//!    run is untouched.
//!
//! Staging directories of a run that crashed (`.ringmaker-new-*`, `.ringmaker-old-*`, names only
//! ringmaker uses) are removed by the next run, under the lock.

use anyhow::{bail, Context};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const LOCK: &str = ".ringmaker.lock";
const NEW: &str = ".ringmaker-new-";
const OLD: &str = ".ringmaker-old-";

/// The PNGs `plots::write_all` and `plots::write_hedging` write.
const PLOT_FILES: [&str; 6] = crate::plots::ALL_FILES;

/// A run being built in a staging directory of `OUT`.
#[derive(Debug)]
pub struct Staged {
    out: PathBuf,
    stage: PathBuf,
    artifacts: &'static [&'static str],
    committed: bool,
    _lock: File,
}

impl Staged {
    /// Locks `out`, checks the previous run's `artifacts`, and creates the staging directory.
    pub fn begin(out: &Path, artifacts: &'static [&'static str]) -> anyhow::Result<Staged> {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let lock_path = out.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        // SAFETY: `flock` on a descriptor this `File` owns for as long as the lock is held (the
        // `File` lives in the returned `Staged`); it reads no memory of ours.
        let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                bail!(
                    "another ringmaker run is writing to {}; wait for it or choose another --out",
                    out.display()
                );
            }
            return Err(e).with_context(|| format!("locking {}", lock_path.display()));
        }
        remove_stale_stages(out)?;
        for name in artifacts {
            check_ours(&out.join(name), name)?;
        }
        let stage = out.join(format!("{NEW}{}", std::process::id()));
        fs::create_dir(&stage).with_context(|| format!("creating {}", stage.display()))?;
        Ok(Staged {
            out: out.to_path_buf(),
            stage,
            artifacts,
            committed: false,
            _lock: lock,
        })
    }

    /// Where the run writes its artifacts.
    pub fn path(&self) -> &Path {
        &self.stage
    }

    /// Swaps the new artifacts in for the previous run's.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let old = self.out.join(format!("{OLD}{}", std::process::id()));
        fs::create_dir(&old).with_context(|| format!("creating {}", old.display()))?;
        for name in self.artifacts {
            let (prev, new) = (self.out.join(name), self.stage.join(name));
            if fs::symlink_metadata(&prev).is_ok() {
                fs::rename(&prev, old.join(name))
                    .with_context(|| format!("moving the previous {} aside", prev.display()))?;
            }
            if fs::symlink_metadata(&new).is_ok() {
                fs::rename(&new, &prev)
                    .with_context(|| format!("moving the new {} in place", prev.display()))?;
            }
        }
        self.committed = true;
        // Only what was just checked to be ours (and moved there by us) is in `old`.
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        fs::remove_dir_all(&self.stage)
            .with_context(|| format!("removing {}", self.stage.display()))?;
        Ok(())
    }
}

impl Staged {
    /// A run that failed after journaling (a live or paper session: its journal is the record
    /// of what happened) keeps what it wrote as `OUT/failed-<pid>/` instead of discarding it;
    /// the previous run stays in place. Returns where.
    pub fn keep_failed(mut self) -> PathBuf {
        let kept = self.out.join(format!("failed-{}", std::process::id()));
        match fs::rename(&self.stage, &kept) {
            Ok(()) => {
                self.committed = true;
                kept
            }
            // Could not move it: it stays where it is, not removed.
            Err(_) => {
                self.committed = true;
                self.stage.clone()
            }
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Everything in the staging directory was written by this run.
            let _ = fs::remove_dir_all(&self.stage);
        }
    }
}

/// Removes the staging directories a crashed run left (names only ringmaker uses).
fn remove_stale_stages(out: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with(NEW) || name.starts_with(OLD)) && entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing the stale {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Fails unless `path` (artifact `name`) is absent or what ringmaker writes there.
fn check_ours(path: &Path, name: &str) -> anyhow::Result<()> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let refuse = |what: &str| {
        anyhow::anyhow!(
            "{} {what}, which ringmaker did not write; it is left alone: choose another --out",
            path.display()
        )
    };
    match name {
        "journal" | "plots" => {
            if !meta.is_dir() {
                return Err(refuse("is not a directory"));
            }
            for entry in fs::read_dir(path)? {
                let entry = entry?;
                let file = entry.file_name();
                let file = file.to_string_lossy();
                let kind = entry.file_type()?;
                let ours = if name == "journal" {
                    kind.is_file()
                        && ((file.starts_with("seg-")
                            && (file.ends_with(".rmj") || file.ends_with(".rmj.tmp")))
                            || file == ".lock")
                } else if kind.is_dir() {
                    // A run of several instruments: one folder of PNGs per instrument.
                    only_plot_files(&entry.path())?
                } else {
                    kind.is_file() && PLOT_FILES.contains(&file.as_ref())
                };
                if !ours {
                    return Err(refuse(&format!("holds {file}")));
                }
            }
        }
        _ => {
            if !meta.is_file() {
                return Err(refuse("is not a regular file"));
            }
        }
    }
    Ok(())
}

/// Whether `dir` holds nothing but the PNGs ringmaker's plots are (a per-instrument folder).
fn only_plot_files(dir: &Path) -> anyhow::Result<bool> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file()
            || !PLOT_FILES.contains(&entry.file_name().to_string_lossy().as_ref())
        {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTIFACTS: &[&str] = &["journal", "report.json", "plots"];

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rm-outdir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn write_run(dir: &Path, tag: &str) {
        fs::create_dir_all(dir.join("journal")).unwrap();
        fs::write(dir.join("journal/seg-00000000.rmj"), tag).unwrap();
        fs::write(dir.join("report.json"), tag).unwrap();
        fs::create_dir_all(dir.join("plots")).unwrap();
        fs::write(dir.join("plots/mid.png"), tag).unwrap();
    }

    #[test]
    fn a_successful_run_replaces_the_previous_one_and_a_failed_one_leaves_it() {
        let out = scratch("swap");
        let s = Staged::begin(&out, ARTIFACTS).unwrap();
        write_run(s.path(), "first");
        s.commit().unwrap();
        assert_eq!(
            fs::read_to_string(out.join("report.json")).unwrap(),
            "first"
        );
        // A run that fails half-way: dropped without commit.
        let s = Staged::begin(&out, ARTIFACTS).unwrap();
        fs::write(s.path().join("report.json"), "half").unwrap();
        drop(s);
        assert_eq!(
            fs::read_to_string(out.join("report.json")).unwrap(),
            "first"
        );
        assert_eq!(
            fs::read_to_string(out.join("journal/seg-00000000.rmj")).unwrap(),
            "first"
        );
        let s = Staged::begin(&out, ARTIFACTS).unwrap();
        write_run(s.path(), "second");
        s.commit().unwrap();
        assert_eq!(
            fs::read_to_string(out.join("plots/mid.png")).unwrap(),
            "second"
        );
        let left: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ringmaker-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn what_ringmaker_did_not_write_is_never_touched() {
        let out = scratch("foreign");
        fs::create_dir_all(out.join("journal/notes")).unwrap();
        fs::write(out.join("journal/notes/mine.txt"), "keep").unwrap();
        let e = Staged::begin(&out, ARTIFACTS).unwrap_err().to_string();
        assert!(e.contains("did not write"), "{e}");
        assert_eq!(
            fs::read_to_string(out.join("journal/notes/mine.txt")).unwrap(),
            "keep"
        );
        fs::remove_dir_all(out.join("journal")).unwrap();
        fs::create_dir_all(out.join("plots/binance-spot_BTCUSDT")).unwrap();
        fs::write(out.join("plots/binance-spot_BTCUSDT/mid.png"), "ours").unwrap();
        fs::write(out.join("plots/holiday.jpg"), "keep").unwrap();
        assert!(Staged::begin(&out, ARTIFACTS).is_err());
        assert!(out.join("plots/holiday.jpg").exists());
        // A run of several instruments wrote one folder of PNGs each: that is ours...
        fs::remove_file(out.join("plots/holiday.jpg")).unwrap();
        drop(Staged::begin(&out, ARTIFACTS).unwrap());
        // ...unless something else is in it.
        fs::write(out.join("plots/binance-spot_BTCUSDT/notes.txt"), "keep").unwrap();
        let e = Staged::begin(&out, ARTIFACTS).unwrap_err().to_string();
        assert!(e.contains("binance-spot_BTCUSDT"), "{e}");
        assert!(out.join("plots/binance-spot_BTCUSDT/notes.txt").exists());
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn a_second_run_into_the_same_out_is_refused_while_the_first_holds_it() {
        let out = scratch("lock");
        let first = Staged::begin(&out, ARTIFACTS).unwrap();
        let e = Staged::begin(&out, ARTIFACTS).unwrap_err().to_string();
        assert!(e.contains("another ringmaker run"), "{e}");
        drop(first);
        Staged::begin(&out, ARTIFACTS).unwrap();
        fs::remove_dir_all(&out).unwrap();
    }
}
