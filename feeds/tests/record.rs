//! The recorder: what it writes reads back as what arrived, file by file, hour by hour, and binds
//! to its instrument; names already taken are kept; errors are typed; a crash leaves what was
//! flushed.

use engine::{InstrumentId, Symbol, VenueFlavour};
use feeds::record::{self, Invalid, PARTIAL_SUFFIX};
use feeds::{
    bind, salvage, sniff, DataSpec, Flavour, Key, LineError, RecordError, RecordOptions,
    RecordSummary, Recorder, RecorderThread, RecordingReader, ThreadOptions,
};
use std::fs;
use std::path::{Path, PathBuf};

const HOUR_NS: i64 = 3_600_000_000_000;
/// 2024-08-09 00:00:00 UTC: the spot samples cross it.
const MIDNIGHT_NS: i64 = 1_723_161_600_000_000_000;

type Lines = Vec<(i64, Vec<u8>)>;

/// A scratch directory, removed at the end (made writable again first).
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rm-record-{name}-{}", std::process::id()));
        if d.exists() {
            chmod_tree(&d, 0o755);
            let _ = fs::remove_dir_all(&d);
        }
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        chmod_tree(&self.0, 0o755);
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chmod_tree(p: &Path, mode: u32) {
    if p.is_dir() {
        chmod(p, mode);
        for e in fs::read_dir(p).into_iter().flatten().flatten() {
            chmod_tree(&e.path(), mode);
        }
    }
}

fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

/// The first `n` lines of a recording (all with `usize::MAX`).
fn head(path: &Path, n: usize) -> Lines {
    let mut r = RecordingReader::open(&[path]).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let Some(line) = r.next() else { break };
        let l = line.unwrap();
        out.push((l.local_ns, l.json.to_vec()));
    }
    out
}

/// Every line of `paths`, in order, and the reader's count of bad lines and cut files.
fn read(paths: &[PathBuf]) -> (Lines, u64) {
    let mut r = RecordingReader::open(paths).unwrap();
    let mut out = Vec::new();
    while let Some(line) = r.next() {
        if let Ok(l) = line {
            out.push((l.local_ns, l.json.to_vec()));
        }
    }
    (out, r.stats().bad_lines)
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s.as_bytes()).unwrap()
}

const USDM: InstrumentId = 0;
const SPOT: InstrumentId = 1;

fn instruments() -> Vec<(InstrumentId, Symbol, VenueFlavour)> {
    vec![
        (USDM, sym("BTCUSDT"), VenueFlavour::BinanceUsdm),
        (SPOT, sym("BTCUSDT"), VenueFlavour::BinanceSpot),
    ]
}

fn keys() -> Vec<Key> {
    instruments()
        .into_iter()
        .map(|(_, symbol, venue)| Key { symbol, venue })
        .collect()
}

fn is_snapshot(json: &[u8]) -> bool {
    json.starts_with(b"{\"lastUpdateId\"")
}

/// Feeds lines as a live feed would: stream messages in their envelope, snapshot bodies.
fn feed(rec: &mut Recorder, id: InstrumentId, lines: &[(i64, Vec<u8>)]) {
    for (ns, json) in lines {
        if is_snapshot(json) {
            rec.snapshot(id, *ns, json).unwrap();
        } else {
            rec.stream(id, *ns, json).unwrap();
        }
    }
}

/// Files under `dir` (recursively), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_samples_recorded_live_read_back_byte_for_byte_and_bind_to_their_instruments() {
    let d = Dir::new("roundtrip");
    let usdm = head(&sample("binance-usdm/btcusdt_20240808.gz"), 5_000);
    let spot = head(&sample("binance-spot/btcusdt_20240808.gz"), 5_000);
    assert_eq!(usdm.iter().filter(|l| is_snapshot(&l.1)).count(), 1);
    assert_eq!(spot.iter().filter(|l| is_snapshot(&l.1)).count(), 1);

    let mut rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    // The two feeds interleaved by arrival; the spot one routed by its stream names.
    let (mut i, mut j) = (0, 0);
    while i < usdm.len() || j < spot.len() {
        if j >= spot.len() || (i < usdm.len() && usdm[i].0 <= spot[j].0) {
            feed(&mut rec, USDM, &usdm[i..=i]);
            i += 1;
        } else {
            let (ns, json) = &spot[j];
            if is_snapshot(json) {
                rec.snapshot(SPOT, *ns, json).unwrap();
            } else {
                assert_eq!(
                    rec.instrument_for(VenueFlavour::BinanceSpot, json),
                    Some(SPOT)
                );
                rec.stream_any(VenueFlavour::BinanceSpot, *ns, json)
                    .unwrap();
            }
            j += 1;
        }
    }
    assert!(
        rec.files().is_empty(),
        "nothing published before the hour ends"
    );
    let summary = rec.finish().unwrap();
    let usdm_file = d.0.join("binance-usdm/btcusdt_20240808_23.gz");
    let spot_file = d.0.join("binance-spot/btcusdt_20240808_23.gz");
    let mut published = summary.files.clone();
    published.sort();
    assert_eq!(published, [spot_file.clone(), usdm_file.clone()]);
    assert_eq!(files(&d.0), published, "no .partial file left");
    assert_eq!(summary.stats.lines, 10_000);
    assert_eq!(summary.stats.snapshots, 2);
    assert_eq!(summary.stats.files, 2);
    let s = summary.stats;
    assert_eq!(
        (
            s.unknown,
            s.rejected,
            s.io_errors,
            s.dropped_io,
            s.newlines_replaced
        ),
        (0, 0, 0, 0, 0)
    );

    // Byte for byte, with the same local times, in the same order.
    assert_eq!(read(std::slice::from_ref(&usdm_file)), (usdm, 0));
    assert_eq!(read(std::slice::from_ref(&spot_file)), (spot, 0));

    // Each file binds to its instrument, in either order, by what it holds.
    let bound = bind(&keys(), &DataSpec::plain([&spot_file, &usdm_file])).unwrap();
    assert_eq!(bound, [vec![usdm_file.clone()], vec![spot_file.clone()]]);
    let s = sniff(&usdm_file).unwrap();
    assert_eq!(
        (s.flavour(), s.symbols),
        (Some(Flavour::Futures), vec!["btcusdt".to_owned()])
    );
    let s = sniff(&spot_file).unwrap();
    assert_eq!(
        (s.flavour(), s.symbols),
        (Some(Flavour::Spot), vec!["btcusdt".to_owned()])
    );
}

#[test]
fn lines_crossing_an_hour_land_in_two_files_that_read_back_as_one() {
    let d = Dir::new("rotation");
    // The spot sample's last lines before midnight and first after it.
    let before = read(&[sample("binance-spot/btcusdt_20240808.gz")]).0;
    let after = head(&sample("binance-spot/btcusdt_20240809.gz"), 2_000);
    let mut lines: Lines = before[before.len() - 2_000..].to_vec();
    lines.extend(after);
    let cut = lines.iter().position(|l| l.0 >= MIDNIGHT_NS).unwrap();
    assert_eq!(cut, 2_000, "the sample crosses midnight between its files");

    let mut rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    feed(&mut rec, SPOT, &lines[..=cut]);
    // The hour before is published as soon as a line of the next one arrives.
    let first = d.0.join("binance-spot/btcusdt_20240808_23.gz");
    assert_eq!(rec.files(), std::slice::from_ref(&first));
    assert_eq!(
        read(std::slice::from_ref(&first)),
        (lines[..cut].to_vec(), 0)
    );
    feed(&mut rec, SPOT, &lines[cut + 1..]);
    let summary = rec.finish().unwrap();
    let second = d.0.join("binance-spot/btcusdt_20240809_00.gz");
    assert_eq!(summary.files, [first.clone(), second.clone()]);
    assert_eq!(files(&d.0), summary.files);
    // One continuous sequence, and each file binds to the spot instrument (the second has no
    // snapshot: its diffs say spot).
    assert_eq!(read(&summary.files), (lines, 0));
    let usdm = sample("binance-usdm/btcusdt_20240808.gz");
    let mut given = summary.files.clone();
    given.insert(1, usdm.clone());
    assert_eq!(
        bind(&keys(), &DataSpec::plain(given)).unwrap(),
        [vec![usdm], summary.files.clone()]
    );
}

fn ticker(ns: i64, n: u64) -> (i64, Vec<u8>) {
    let json = format!(
        r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{n},"s":"BTCUSDT","b":"1.0","B":"1","a":"1.1","A":"1"}}}}"#
    );
    (ns, json.into_bytes())
}

#[test]
fn the_hour_moves_forward_only_and_hours_without_lines_have_no_file() {
    let d = Dir::new("hours");
    let h = MIDNIGHT_NS;
    let lines = vec![
        ticker(h - 1, 1),
        ticker(h, 2),
        // A stream stamped a little earlier than one already written: the current file.
        ticker(h - 5_000_000, 3),
        ticker(h + HOUR_NS - 1, 4),
        // Three hours later.
        ticker(h + 4 * HOUR_NS + 7, 5),
    ];
    let mut rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    feed(&mut rec, USDM, &lines);
    let summary = rec.finish().unwrap();
    assert_eq!(
        names(&summary.files),
        [
            "btcusdt_20240808_23.gz",
            "btcusdt_20240809_00.gz",
            "btcusdt_20240809_04.gz"
        ]
    );
    assert_eq!(read(&summary.files[1..2]).0, lines[1..4].to_vec());
    assert_eq!(read(&summary.files), (lines, 0));
}

#[test]
fn a_file_already_at_the_target_name_is_kept() {
    let d = Dir::new("existing");
    let venue = d.0.join("binance-usdm");
    fs::create_dir_all(&venue).unwrap();
    let theirs = venue.join("btcusdt_20240808_23.gz");
    fs::write(&theirs, b"the user's own file").unwrap();
    let stale = venue.join("btcusdt_20240808_23_001.gz.partial");
    fs::write(&stale, b"a crashed session's").unwrap();
    let other = venue.join("ethusdt_20240808_23.gz.partial");
    fs::write(&other, b"another symbol's").unwrap();

    let lines = head(&sample("binance-usdm/btcusdt_20240808.gz"), 300);
    let mut rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    assert_eq!(rec.stale_partials(), std::slice::from_ref(&stale));
    feed(&mut rec, USDM, &lines[..100]);
    // A file appears at the name the recorder will publish under while it writes.
    let written = venue.join("btcusdt_20240808_23_002.gz");
    assert!(Path::new(&format!("{}{PARTIAL_SUFFIX}", written.display())).exists());
    fs::write(&written, b"appeared meanwhile").unwrap();
    feed(&mut rec, USDM, &lines[100..]);
    let summary = rec.finish().unwrap();
    assert_eq!(names(&summary.files), ["btcusdt_20240808_23_003.gz"]);
    assert_eq!(read(&summary.files), (lines, 0));
    assert_eq!(fs::read(&theirs).unwrap(), b"the user's own file");
    assert_eq!(fs::read(&stale).unwrap(), b"a crashed session's");
    assert_eq!(fs::read(&written).unwrap(), b"appeared meanwhile");
    assert_eq!(fs::read(&other).unwrap(), b"another symbol's");
    assert_eq!(files(&d.0).len(), 5);
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_read_only_directory_is_a_typed_error_and_the_recorder_carries_on() {
    if running_as_root() {
        eprintln!("skipped: root ignores file permissions");
        return;
    }
    let d = Dir::new("readonly");
    // Nothing can be created: at create, naming the directory.
    let ro = d.0.join("ro");
    fs::create_dir_all(&ro).unwrap();
    chmod(&ro, 0o555);
    let e = Recorder::create(&ro, &instruments(), RecordOptions::default()).unwrap_err();
    assert!(
        matches!(&e, RecordError::Io { path, .. } if path == &ro.join("binance-usdm")),
        "{e:?}"
    );
    fs::create_dir_all(ro.with_file_name("ro2/binance-usdm")).unwrap();
    let ro2 = d.0.join("ro2");
    chmod(&ro2.join("binance-usdm"), 0o555);
    let e = Recorder::create(&ro2, &instruments(), RecordOptions::default()).unwrap_err();
    assert!(
        matches!(&e, RecordError::Io { path, op: "write into", .. } if path == &ro2.join("binance-usdm")),
        "{e:?}"
    );
    assert!(e.to_string().contains("binance-usdm"), "{e}");

    // Made read-only while recording: the line is an error naming the file, later lines are
    // dropped and counted until the retry, the other instrument goes on, and once writable the
    // instrument records again in a new file.
    let opts = RecordOptions {
        retry_after_ns: 1_000,
        ..RecordOptions::default()
    };
    let mut rec = Recorder::create(&d.0, &instruments(), opts).unwrap();
    let usdm = d.0.join("binance-usdm");
    chmod(&usdm, 0o555);
    let t = MIDNIGHT_NS;
    let e = rec.stream(USDM, t, &ticker(t, 1).1).unwrap_err();
    assert!(
        matches!(&e, RecordError::Io { path, op: "create", .. }
            if path == &usdm.join("btcusdt_20240809_00.gz.partial")),
        "{e:?}"
    );
    rec.stream(USDM, t + 999, &ticker(t, 2).1).unwrap();
    let spot_line = br#"{"stream":"btcusdt@bookTicker","data":{"u":1}}"#;
    rec.stream(SPOT, t + 999, spot_line).unwrap();
    let s = rec.stats();
    assert_eq!((s.io_errors, s.dropped_io, s.lines), (1, 2, 1));
    // Still read-only at the retry: one more error, not one per line.
    assert!(rec.stream(USDM, t + 1_000, &ticker(t, 3).1).is_err());
    chmod(&usdm, 0o755);
    rec.stream(USDM, t + 1_999, &ticker(t, 4).1).unwrap();
    rec.stream(USDM, t + 2_000, &ticker(t, 5).1).unwrap();
    let summary = rec.finish().unwrap();
    assert_eq!(summary.stats.io_errors, 2);
    assert_eq!(summary.stats.dropped_io, 4);
    let usdm_files: Vec<_> = summary
        .files
        .iter()
        .filter(|p| p.starts_with(&usdm))
        .collect();
    assert_eq!(usdm_files.len(), 1);
    assert_eq!(read(&[usdm_files[0].clone()]).0, [ticker(t + 2_000, 5)]);
}

#[test]
fn a_crash_leaves_the_finished_hours_whole_and_the_partial_readable_to_its_last_flush() {
    let d = Dir::new("crash");
    let h = MIDNIGHT_NS;
    let hour1: Lines = (0..500)
        .map(|i| ticker(h - HOUR_NS + i * 1_000, i as u64))
        .collect();
    let flushed: Lines = (0..300)
        .map(|i| ticker(h + i * 1_000, 1_000 + i as u64))
        .collect();
    let unflushed: Lines = (0..50)
        .map(|i| ticker(h + 10_000_000 + i, 2_000 + i as u64))
        .collect();
    let opts = RecordOptions {
        flush_every_ns: 0,
        ..RecordOptions::default()
    };
    let mut rec = Recorder::create(&d.0, &instruments(), opts).unwrap();
    feed(&mut rec, USDM, &hour1);
    feed(&mut rec, USDM, &flushed);
    rec.flush().unwrap();
    feed(&mut rec, USDM, &unflushed);
    // A crash: no destructor, nothing more written.
    std::mem::forget(rec);

    let venue = d.0.join("binance-usdm");
    let finished = venue.join("btcusdt_20240808_23.gz");
    let partial = venue.join("btcusdt_20240809_00.gz.partial");
    assert_eq!(files(&d.0), [finished.clone(), partial.clone()]);
    assert_eq!(read(std::slice::from_ref(&finished)), (hour1.clone(), 0));
    // Exactly the flushed lines, whole; the cut is reported once.
    let mut r = RecordingReader::open(&[&partial]).unwrap();
    let mut got = Vec::new();
    let mut cuts = 0;
    while let Some(line) = r.next() {
        match line {
            Ok(l) => got.push((l.local_ns, l.json.to_vec())),
            Err(LineError::Io { .. }) => cuts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((got, cuts), (flushed.clone(), 1));

    // The next session sees it and leaves it; salvage makes it a complete file of its name.
    let rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    assert_eq!(rec.stale_partials(), std::slice::from_ref(&partial));
    drop(rec);
    let saved = salvage(&partial).unwrap();
    assert_eq!(saved.path, venue.join("btcusdt_20240809_00.gz"));
    assert_eq!((saved.lines, saved.bad_lines, saved.cut), (300, 0, true));
    assert_eq!(
        read(std::slice::from_ref(&saved.path)),
        (flushed.clone(), 0)
    );
    assert!(
        partial.exists(),
        "salvage leaves the .partial file to its owner"
    );
    // Salvaged again: another name, never over the first.
    let again = salvage(&partial).unwrap();
    assert_eq!(again.path, venue.join("btcusdt_20240809_00_001.gz"));
    assert!(matches!(
        salvage(&finished),
        Err(RecordError::NotPartial { .. })
    ));

    // Automatic flushes: every `flush_every_ns` of local time, a crash loses at most the lines
    // since the last one.
    let d = Dir::new("crash-auto");
    let opts = RecordOptions {
        flush_every_ns: 10_000,
        ..RecordOptions::default()
    };
    let mut rec = Recorder::create(&d.0, &instruments(), opts).unwrap();
    let lines: Lines = (0..1_000)
        .map(|i| ticker(h + i * 1_000, i as u64))
        .collect();
    feed(&mut rec, USDM, &lines);
    std::mem::forget(rec);
    let got = read(&[d.0.join("binance-usdm/btcusdt_20240809_00.gz.partial")]);
    assert_eq!((got.0.len(), got.1), (991, 1), "flushed at each 10 µs");
    assert_eq!(got.0[..], lines[..991]);

    // Dropped without `finish` (an early return, a panic unwinding): finished all the same.
    let d = Dir::new("crash-drop");
    let mut rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    feed(&mut rec, USDM, &lines);
    drop(rec);
    let done = d.0.join("binance-usdm/btcusdt_20240809_00.gz");
    assert_eq!(files(&d.0), std::slice::from_ref(&done));
    assert_eq!(read(&[done]), (lines, 0));
}

#[test]
fn messages_of_no_instrument_are_counted_and_malformed_ones_refused() {
    let d = Dir::new("refused");
    let mut rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    let t = MIDNIGHT_NS;
    let good = ticker(t, 1).1;
    // Unknown: an id, a symbol, a message with no stream; skipped, answered Ok.
    rec.stream(7, t, &good).unwrap();
    rec.snapshot(300, t, b"{}").unwrap();
    let eth = br#"{"stream":"ethusdt@trade","data":{}}"#;
    rec.stream_any(VenueFlavour::BinanceUsdm, t, eth).unwrap();
    rec.stream_any(VenueFlavour::BinanceUsdm, t, br#"{"result":null,"id":1}"#)
        .unwrap();
    rec.stream_any(VenueFlavour::BinanceCoinm, t, &good)
        .unwrap();
    assert_eq!(rec.stats().unknown, 5);

    let refused = |rec: &mut Recorder, r: Result<(), RecordError>, want: Invalid| match r {
        Err(RecordError::Invalid { reason, .. }) if reason == want => {}
        other => panic!("{other:?}, want {want:?}; {:?}", rec.stats()),
    };
    let bare = br#"{"e":"trade","s":"BTCUSDT"}"#;
    let r = rec.stream(USDM, t, bare);
    refused(&mut rec, r, Invalid::NoEnvelope);
    let r = rec.stream(USDM, t, eth);
    refused(&mut rec, r, Invalid::OtherSymbol);
    let r = rec.stream(USDM, -1, &good);
    refused(&mut rec, r, Invalid::NegativeTime);
    let r = rec.stream(USDM, t, b" \r\n");
    refused(&mut rec, r, Invalid::Empty);
    let r = rec.snapshot(USDM, t, b"[1]");
    refused(&mut rec, r, Invalid::NotAnObject);
    let r = rec.stream_payload(USDM, t, "btcusdt\",\"x", b"{}");
    refused(&mut rec, r, Invalid::StreamName);
    let r = rec.stream_payload(USDM, t, "ethusdt@trade", b"{}");
    refused(&mut rec, r, Invalid::OtherSymbol);
    let r = rec.stream_payload(USDM, t, "btcusdt@trade", b"\n");
    refused(&mut rec, r, Invalid::Empty);
    assert_eq!(rec.stats().rejected, 8);
    assert_eq!(rec.stats().lines, 0);

    // Newlines: trailing ones dropped, inner ones (JSON whitespace) made spaces.
    rec.snapshot(
        USDM,
        t,
        b"{\n  \"lastUpdateId\": 1,\r\n  \"bids\": [],\n  \"asks\": []\n}\n",
    )
    .unwrap();
    rec.stream(USDM, t + 1, &[&good[..], b"\r\n"].concat())
        .unwrap();
    // A raw-stream payload is wrapped as the combined stream would have delivered it.
    rec.stream_payload(USDM, t + 2, "btcusdt@trade", br#"{"e":"trade"}"#)
        .unwrap();
    let summary = rec.finish().unwrap();
    assert_eq!(summary.stats.newlines_replaced, 1);
    assert_eq!(summary.stats.lines, 3);
    let (lines, bad) = read(&summary.files);
    assert_eq!(bad, 0);
    let text: Vec<String> = lines
        .iter()
        .map(|(_, j)| String::from_utf8(j.clone()).unwrap())
        .collect();
    assert_eq!(
        text,
        [
            "{   \"lastUpdateId\": 1,    \"bids\": [],   \"asks\": [] }".to_owned(),
            String::from_utf8(good).unwrap(),
            r#"{"stream":"btcusdt@trade","data":{"e":"trade"}}"#.to_owned(),
        ]
    );

    // Instruments that cannot each have their files.
    let dup = [
        (0, sym("BTCUSDT"), VenueFlavour::BinanceUsdm),
        (0, sym("ETHUSDT"), VenueFlavour::BinanceUsdm),
    ];
    let e = Recorder::create(&d.0, &dup, RecordOptions::default()).unwrap_err();
    assert!(matches!(e, RecordError::DuplicateId { id: 0 }), "{e:?}");
    let same = [
        (0, sym("BTCUSDT"), VenueFlavour::BinanceUsdm),
        (1, sym("btcusdt"), VenueFlavour::BinanceUsdm),
    ];
    let e = Recorder::create(&d.0, &same, RecordOptions::default()).unwrap_err();
    assert!(matches!(e, RecordError::SameFiles { .. }), "{e:?}");
    let bad = [(0, sym("BTC/USDT"), VenueFlavour::BinanceSpot)];
    let e = Recorder::create(&d.0, &bad, RecordOptions::default()).unwrap_err();
    assert!(matches!(e, RecordError::BadSymbol { .. }), "{e:?}");
}

/// The envelope of a sample line split into its stream name and payload.
fn unwrap_envelope(json: &[u8]) -> (String, Vec<u8>) {
    let name = record::envelope_stream(json).unwrap();
    let name = String::from_utf8(name.to_vec()).unwrap();
    let prefix = format!(r#"{{"stream":"{name}","data":"#);
    assert!(json.starts_with(prefix.as_bytes()) && json.ends_with(b"}"));
    (name, json[prefix.len()..json.len() - 1].to_vec())
}

#[test]
fn the_recorder_thread_records_what_it_is_sent_and_counts_what_it_drops() {
    let d = Dir::new("thread");
    let usdm = head(&sample("binance-usdm/btcusdt_20240808.gz"), 5_000);
    let spot = head(&sample("binance-spot/btcusdt_20240808.gz"), 2_000);
    let rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    // Room for every message: the feed here is faster than any recorder.
    let opts = ThreadOptions {
        slots: 8_192,
        ..ThreadOptions::default()
    };
    let thread = RecorderThread::spawn(rec, opts).unwrap();
    let tx = thread.sender();
    for (ns, json) in &usdm {
        let queued = if is_snapshot(json) {
            tx.snapshot(USDM, *ns, json)
        } else {
            tx.stream(USDM, *ns, json)
        };
        assert!(queued);
    }
    // The spot feed on raw streams: payloads wrapped, the same bytes as the combined stream's.
    for (ns, json) in &spot {
        let queued = if is_snapshot(json) {
            tx.snapshot(SPOT, *ns, json)
        } else {
            let (name, payload) = unwrap_envelope(json);
            tx.stream_payload(SPOT, *ns, &name, &payload)
        };
        assert!(queued);
    }
    tx.flush();
    let report = thread.finish();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let summary: RecordSummary = report.result.unwrap();
    assert_eq!(report.queue.queued, 7_000);
    assert_eq!(report.queue.processed, 7_000);
    assert_eq!(
        report.queue.dropped_full + report.queue.dropped_too_large,
        0
    );
    assert_eq!(tx.record_stats(), summary.stats);
    let file = |v: &str| d.0.join(v).join("btcusdt_20240808_23.gz");
    assert_eq!(read(&[file("binance-usdm")]), (usdm.clone(), 0));
    assert_eq!(read(&[file("binance-spot")]), (spot, 0));
    // After the stop: dropped and counted, never blocking.
    assert!(!tx.stream(USDM, usdm[0].0, &usdm[0].1));
    assert_eq!(tx.queue_stats().dropped_stopped, 1);

    // A small pool, a flood, messages too long: what is queued is recorded in order, the rest
    // is counted.
    let d = Dir::new("thread-full");
    let rec = Recorder::create(&d.0, &instruments(), RecordOptions::default()).unwrap();
    let opts = ThreadOptions {
        slots: 2,
        max_message: 2_000,
        ..ThreadOptions::default()
    };
    let thread = RecorderThread::spawn(rec, opts).unwrap();
    let tx = thread.sender();
    let mut sent = Vec::new();
    let mut long = 0;
    for round in 0..4 {
        for (ns, json) in &usdm {
            let ns = ns + round * 400_000_000_000;
            long += u64::from(json.len() > 2_000);
            if tx.stream(USDM, ns, json) {
                sent.push((ns, json.clone()));
            }
        }
    }
    let report = thread.finish();
    let q = report.queue;
    assert_eq!(q.dropped_too_large, long);
    assert_eq!(q.queued + q.dropped_full + q.dropped_too_large, 20_000);
    assert_eq!(q.queued, sent.len() as u64);
    let snapshots = sent.iter().filter(|l| is_snapshot(&l.1)).count() as u64;
    assert_eq!(q.errors, snapshots, "snapshots sent as streams are refused");
    let summary = report.result.unwrap();
    sent.retain(|l| !is_snapshot(&l.1));
    assert_eq!(read(&summary.files), (sent, 0));
}
