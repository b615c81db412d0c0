//! Journal benches, each with a baseline in the same group.
//!
//! * `append_64B/journal_append`: `Writer::append` of a 64-byte payload (a 96-byte record) into
//!   64 MiB segments, `Durability::None`, roll-overs included. The owner's `housekeeping` runs
//!   between chunks of 4,096 appends, outside the timed region, as the engine thread calls it
//!   when its ring is drained. Old segments are deleted between chunks (so the page cache, not
//!   the disk, is what is measured, as in production until write-back).
//! * `append_64B/journal_extend_256`: `Writer::extend` of the same 64-byte payload into records
//!   filled in place, sealed every 256 payloads (a 16 KiB record: how the engine journals a
//!   venue message's book levels), same segments and housekeeping; per payload.
//! * `append_64B/memcpy_plus_crc` (baseline): `copy_from_slice` of the same 64 bytes into a
//!   warm `Vec` at an advancing offset, plus CRC32C of them.
//! * `verify/journal_verify`: `journal::verify` over a ~256 MiB journal in the temp dir (open,
//!   map, check every header, CRC and sequence, count per kind), in bytes of records per second.
//! * `verify/crc32c_only` (baseline): CRC32C alone over the same segment bytes, already mapped.
//!
//! `cargo bench -p ringmaker-journal -- --test` (smoke mode) uses an 8 MiB journal.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use journal::{Durability, Writer, WriterOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PAYLOAD: [u8; 64] = [0x5a; 64];
const CHUNK: u64 = 4096;

fn smoke() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn bench_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rmj-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(segment_size: u64) -> WriterOptions {
    WriterOptions {
        segment_size,
        durability: Durability::None,
        header_hash: [7; 32],
        created_ns: 0,
    }
}

/// Deletes every segment but the newest two (the current one and the prepared next one).
fn delete_old_segments(dir: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rmj"))
        .collect();
    files.sort();
    for p in &files[..files.len().saturating_sub(2)] {
        std::fs::remove_file(p).unwrap();
    }
}

/// Times `iters` calls of `op` in chunks of [`CHUNK`]; between chunks, outside the timed region,
/// the owner's housekeeping runs and, whenever the next sequence number passes a multiple of
/// `prune_every` records, old segments are deleted.
fn timed_in_chunks(
    w: &mut Writer,
    dir: &Path,
    iters: u64,
    prune_every: u64,
    mut op: impl FnMut(&mut Writer),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    let mut pruned_at = w.next_seq() / prune_every;
    while left > 0 {
        let n = left.min(CHUNK);
        w.housekeeping().unwrap();
        if w.next_seq() / prune_every != pruned_at {
            pruned_at = w.next_seq() / prune_every;
            delete_old_segments(dir);
        }
        let t = Instant::now();
        for _ in 0..n {
            op(w);
        }
        total += t.elapsed();
        left -= n;
    }
    total
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_64B");
    g.throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(40);

    let dir = bench_dir("append");
    let mut w = Writer::create(&dir, opts(64 << 20)).unwrap();
    let mut ts = 0i64;
    g.bench_function("journal_append", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(&mut w, &dir, iters, CHUNK * 64, |w| {
                ts += 1;
                black_box(w.append(1, ts, black_box(&PAYLOAD)).unwrap());
            })
        })
    });
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);

    let dir = bench_dir("extend");
    let mut w = Writer::create(&dir, opts(64 << 20)).unwrap();
    let mut ts = 0i64;
    let mut filled = 0u64;
    g.bench_function("journal_extend_256", |b| {
        b.iter_custom(|iters| {
            // 16 records per chunk: prune about once a segment (4,000 records of 16 KiB).
            timed_in_chunks(&mut w, &dir, iters, 4096, |w| {
                ts += 1;
                w.extend(6, ts, black_box(&PAYLOAD), 256 * 64).unwrap();
                filled += 1;
                if filled % 256 == 0 {
                    black_box(w.seal().unwrap());
                }
            })
        })
    });
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);

    let mut buf = vec![1u8; 64 << 20];
    let mut at = 0usize;
    g.bench_function("memcpy_plus_crc", |b| {
        b.iter(|| {
            if at + 64 > buf.len() {
                at = 0;
            }
            let dst = &mut buf[at..at + 64];
            dst.copy_from_slice(black_box(&PAYLOAD));
            at += 64;
            black_box(crc32c::crc32c(dst))
        })
    });
    g.finish();
}

fn bench_verify(c: &mut Criterion) {
    let size: u64 = if smoke() { 8 << 20 } else { 256 << 20 };
    let dir = bench_dir("verify");
    let mut w = Writer::create(&dir, opts(64 << 20)).unwrap();
    let mut record_bytes = 0u64;
    let mut i = 0i64;
    while record_bytes < size {
        // A mix like the engine's: mostly one-cache-line events, some larger records.
        let len = if i % 16 == 0 { 256 } else { 64 };
        w.append(1 + (i % 4) as u16, i, &[i as u8; 256][..len])
            .unwrap();
        w.housekeeping().unwrap();
        record_bytes += journal::record_len(len) as u64;
        i += 1;
    }
    w.close().unwrap();
    let summary = journal::verify(&dir).unwrap();
    assert_eq!(summary.record_bytes, record_bytes);

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(record_bytes))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .sample_size(10);
    g.bench_function("journal_verify", |b| {
        b.iter(|| black_box(journal::verify(&dir).unwrap()))
    });

    let maps: Vec<memmap2::Mmap> = (0..summary.segments)
        .map(|s| {
            let f = std::fs::File::open(dir.join(format!("seg-{s:08}.rmj"))).unwrap();
            // SAFETY: read-only mapping of a file nothing writes to any more.
            unsafe { memmap2::Mmap::map(&f) }.unwrap()
        })
        .collect();
    let mut left = record_bytes as usize;
    let data: Vec<&[u8]> = maps
        .iter()
        .map(|m| {
            let n = left.min(m.len() - journal::SEGMENT_HEADER_LEN);
            left -= n;
            &m[journal::SEGMENT_HEADER_LEN..journal::SEGMENT_HEADER_LEN + n]
        })
        .collect();
    g.bench_function("crc32c_only", |b| {
        b.iter(|| {
            data.iter()
                .fold(0u32, |acc, d| acc ^ crc32c::crc32c(black_box(d)))
        })
    });
    g.finish();
    drop(maps);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_append, bench_verify);
criterion_main!(benches);
