//! The recorder on a full disk, played by the file-size limit (`RLIMIT_FSIZE`, which binds root
//! too): a typed error naming the file, no panic, nothing already written lost, and recording
//! again once there is room. A test binary of its own, since the limit is the whole process's.

use engine::{Symbol, VenueFlavour};
use feeds::{salvage, LineError, RecordError, RecordOptions, Recorder, RecordingReader};
use std::fs;
use std::path::{Path, PathBuf};

type Lines = Vec<(i64, Vec<u8>)>;

/// 2024-08-09 00:00:00 UTC, between the spot samples' files.
const MIDNIGHT_NS: i64 = 1_723_161_600_000_000_000;

fn read(paths: &[PathBuf]) -> (Lines, u64) {
    let mut r = RecordingReader::open(paths).unwrap();
    let mut out = Vec::new();
    let mut cuts = 0;
    while let Some(line) = r.next() {
        match line {
            Ok(l) => out.push((l.local_ns, l.json.to_vec())),
            Err(LineError::Io { .. }) => cuts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    (out, cuts)
}

fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn is_snapshot(json: &[u8]) -> bool {
    json.starts_with(b"{\"lastUpdateId\"")
}

fn record(rec: &mut Recorder, (ns, json): &(i64, Vec<u8>)) -> Result<(), RecordError> {
    if is_snapshot(json) {
        rec.snapshot(0, *ns, json)
    } else {
        rec.stream(0, *ns, json)
    }
}

/// Sets the soft file-size limit; the previous limits.
fn limit_file_size(bytes: u64) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid rlimit to write into.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) }, 0);
    let new = libc::rlimit {
        rlim_cur: bytes.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit; lowering the soft limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &new) }, 0);
    old
}

fn restore_file_size(old: &libc::rlimit) -> bool {
    // SAFETY: `old` is the valid rlimit read by `limit_file_size`: the soft limit goes back up to
    // at most the unchanged hard limit.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, old) == 0 }
}

#[test]
fn a_full_disk_is_a_typed_error_and_loses_nothing_already_written() {
    let dir = std::env::temp_dir().join(format!("rm-record-full-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let venue = dir.join("binance-spot");
    // The spot sample's last minute before midnight, and everything after it.
    let before = read(&[sample("binance-spot/btcusdt_20240808.gz")]).0;
    let after = read(&[sample("binance-spot/btcusdt_20240809.gz")]).0;
    let from = before
        .iter()
        .position(|l| l.0 >= MIDNIGHT_NS - 60_000_000_000)
        .unwrap();
    let before = before[from..].to_vec();
    assert!(before.len() > 1_000 && after.len() > 10_000);

    let opts = RecordOptions {
        retry_after_ns: 2_000_000_000,
        ..RecordOptions::default()
    };
    let instruments = [(
        0,
        Symbol::new(b"BTCUSDT").unwrap(),
        VenueFlavour::BinanceSpot,
    )];
    let mut rec = Recorder::create(&dir, &instruments, opts).unwrap();
    for l in &before {
        record(&mut rec, l).unwrap();
    }
    // The first line after midnight finishes the hour before (a file larger than the limit
    // to come).
    record(&mut rec, &after[0]).unwrap();
    assert_eq!(rec.files().len(), 1);

    // The disk fills: files cannot grow past 64 KiB. No assertion until the limit is lifted
    // (a failed assertion could not be reported to a log file past 64 KiB).
    // SAFETY: ignoring SIGXFSZ (whose default kills the process) makes an oversized write
    // fail with EFBIG instead; no handler runs.
    let old_handler = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let old_limit = limit_file_size(64 << 10);
    let flushed_at = 100;
    let mut flush_ok = true;
    let mut first_error = None;
    let mut i = 1;
    while i < after.len() {
        let r = record(&mut rec, &after[i]);
        i += 1;
        if i == flushed_at {
            flush_ok = rec.flush().is_ok();
        }
        if let Err(e) = r {
            first_error = Some((i - 1, e));
            break;
        }
    }
    // Lines until the retry time: dropped and counted, answered Ok.
    let failed_ns = first_error.as_ref().map_or(0, |(k, _)| after[*k].0);
    let mut quiet = true;
    while i < after.len() && after[i].0 < failed_ns + 2_000_000_000 {
        quiet &= record(&mut rec, &after[i]).is_ok();
        i += 1;
    }
    let restored = restore_file_size(&old_limit);
    // SAFETY: puts back the disposition read above.
    unsafe { libc::signal(libc::SIGXFSZ, old_handler) };
    assert!(restored && flush_ok && quiet);

    let (failed_at, e) = first_error.expect("the limit was never reached");
    let partial = venue.join("btcusdt_20240809_00.gz.partial");
    match &e {
        RecordError::Io { path, op, source } => {
            assert_eq!(path, &partial, "{e}");
            assert!(matches!(*op, "write" | "flush"), "{e}");
            assert_eq!(source.raw_os_error(), Some(libc::EFBIG), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string().contains("btcusdt_20240809_00.gz.partial"),
        "{e}"
    );
    let s = rec.stats();
    assert_eq!((s.io_errors, s.abandoned), (1, 1));
    assert_eq!(s.dropped_io, (i - failed_at) as u64);

    // Room again: the next line (past the retry time) opens a new file.
    for l in &after[i..] {
        record(&mut rec, l).unwrap();
    }
    let summary = rec.finish().unwrap();
    let names: Vec<_> = summary
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["btcusdt_20240808_23.gz", "btcusdt_20240809_00_001.gz"]
    );
    assert_eq!(summary.abandoned, std::slice::from_ref(&partial));
    assert_eq!(
        summary.stats.lines + summary.stats.dropped_io,
        (before.len() + after.len()) as u64
    );

    // The hour finished before the error is whole.
    assert_eq!(read(&summary.files[..1]), (before, 0));
    // The abandoned file: whole lines from the start, at least to the flush, cut once.
    let (kept, cuts) = read(std::slice::from_ref(&partial));
    assert_eq!(cuts, 1);
    assert!(
        kept.len() >= flushed_at && kept.len() <= failed_at,
        "{}",
        kept.len()
    );
    assert_eq!(kept[..], after[..kept.len()]);
    // ... which salvage makes a complete file (under the name it was to have).
    let saved = salvage(&partial).unwrap();
    assert_eq!(saved.path, venue.join("btcusdt_20240809_00.gz"));
    assert_eq!(read(std::slice::from_ref(&saved.path)), (kept, 0));
    // The new file holds everything from the retry on.
    assert_eq!(read(&summary.files[1..]), (after[i..].to_vec(), 0));
    fs::remove_dir_all(&dir).unwrap();
}
