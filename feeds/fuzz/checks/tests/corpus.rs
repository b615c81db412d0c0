//! The fuzz targets' checks on the stable toolchain (CI has no nightly): every committed
//! regression input, seeds cut from the real recordings the way `feeds/fuzz/seed.py` cuts them,
//! and random and mutated inputs from proptest. A check that panics fails the test with the
//! input that made it.

use proptest::prelude::*;
use ringmaker_fuzz_checks::{book_sync, decimal, decode_any, recording_line};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `regressions/<target>/`.
fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out.into_iter().map(|x| x.1).collect()
}

/// The first lines of the real recordings: their payloads, and whole chunks of lines.
fn recording_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut payloads = Vec::new();
    let mut chunks = Vec::new();
    for path in [test_support::usdm(), test_support::spot()[0].clone()] {
        let text = test_support::recording_text(&path);
        let lines: Vec<&str> = text.lines().take(3_000).collect();
        chunks.push(lines[..40].join("\n").into_bytes());
        for l in &lines {
            let Some((_, payload)) = l.split_once(' ') else {
                continue;
            };
            // The REST snapshot is large; its first 3,000 bytes still exercise every path.
            payloads.push(payload.as_bytes()[..payload.len().min(3_000)].to_vec());
        }
    }
    (payloads, chunks)
}

#[test]
fn committed_regressions_pass_their_checks() {
    let mut n = 0;
    for (target, check) in [
        ("decode_any", decode_any::fuzz as fn(&[u8])),
        ("decimal", decimal::fuzz),
        ("book_sync", book_sync::fuzz),
        ("recording_line", recording_line::fuzz),
    ] {
        for input in regressions(target) {
            check(&input);
            n += 1;
        }
    }
    assert!(n >= 3, "the committed regressions were found ({n})");
}

#[test]
fn recording_seeds_pass_decode_and_reader_checks() {
    let (payloads, chunks) = recording_seeds();
    assert!(payloads.len() > 5_000);
    for p in &payloads {
        decode_any::fuzz(p);
    }
    for c in &chunks {
        recording_line::fuzz(c);
    }
}

/// Decimal strings of every grid the seeds use, as `seed.py` builds them.
#[test]
fn decimal_seeds_pass() {
    let grids = [
        (1u64, 10u8),
        (2, 1),
        (3, 1),
        (5, 1),
        (8, 1),
        (0, 1),
        (18, 7),
    ];
    let values: [&[u8]; 13] = [
        b"61800.20",
        b"0.014",
        b"61837.63000000",
        b"3.78826000",
        b"0.00000100",
        b"0",
        b"1e5",
        b"18446744073709551615",
        b"-1.0",
        b".5",
        b"5.",
        b"9223372036854775807",
        b"",
    ];
    for (scale, mant) in grids {
        for v in values {
            let mut input = vec![scale as u8];
            input.extend_from_slice(&((mant as u64).saturating_sub(1) << 1).to_le_bytes());
            input.extend_from_slice(v);
            decimal::fuzz(&input);
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn random_bytes_never_break_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_any::fuzz(&data);
        decimal::fuzz(&data);
    }

    #[test]
    fn mutated_real_messages_never_break_the_decoders(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        thread_local! {
            static SEEDS: Vec<Vec<u8>> = recording_seeds().0;
        }
        let mut data = SEEDS.with(|s| pick.get(s).clone());
        for (at, byte, op) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match op {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => {
                    data.remove(i);
                }
            }
        }
        decode_any::fuzz(&data);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_sync_sequences_keep_the_book_consistent(data in proptest::collection::vec(any::<u8>(), 1..400)) {
        book_sync::fuzz(&data);
    }

    #[test]
    fn random_recordings_never_break_the_reader(data in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        recording_line::fuzz(&data);
    }
}
