//! The hot standby's replica of a leader's journal (issue 19), without a server: a journal
//! written by a backtest of the shipped recording is cut into archive chunks as the bus thread
//! publishes them, and fed to [`runtime::standby::Replica`] in order, with the duplicates and
//! overlaps a retried publish delivers; then continued as a standby that takes over continues
//! it. Checked: the replica replays every record, the continued journal replays identical with
//! its sequence unbroken (including the outputs of a batch the archive cut short), and a gap, a
//! divergent record, another engine config, and a closed journal are each refused or told
//! apart.

use journal::{records_in, segment_path, SEGMENT_HEADER_LEN};
use ringmaker_tests::{usdm, TempDir};
use runtime::archive::Chunk;
use runtime::backtest;
use runtime::config::RunConfig;
use runtime::record::{self, JournalRecorder, Keep, ReplayOutcome, KIND_BATCH_END, KIND_INTENT};
use runtime::standby::{self, Replica, Start};
use std::path::{Path, PathBuf};

/// A backtest's journal of the shipped recording, left unclosed when `close` is false (a
/// leader that died): its directory.
fn leader_journal(dir: &Path, close: bool) -> PathBuf {
    let run = run_config();
    let j = dir.join("leader");
    let rec = JournalRecorder::create_run(&j, &run, 64 << 20, 0, Keep::Durable).unwrap();
    let settings = ringmaker_tests::readme_settings(vec![usdm()]);
    let (_, rec) = backtest::run(&run.engine, &settings, rec, &mut |_| {}).unwrap();
    if close {
        rec.close().unwrap();
    } else {
        drop(rec);
    }
    j
}

/// The journal's one segment as archive chunks of `per` records each (and the header first):
/// `(chunk, first seq, kind of its last record)`.
fn chunks(j: &Path, per: usize) -> Vec<(Chunk, u64, u16)> {
    let seg = std::fs::read(segment_path(j, 0)).unwrap();
    let body = &seg[SEGMENT_HEADER_LEN..];
    let mut out = vec![(
        Chunk {
            segment: 0,
            offset: 0,
            bytes: seg[..SEGMENT_HEADER_LEN].to_vec(),
            records: 0,
            last_seq: None,
        },
        0,
        0,
    )];
    let mut it = records_in(body);
    let mut start = 0usize;
    loop {
        let mut n = 0;
        let (mut first, mut last, mut kind) = (0, 0, 0);
        for r in it.by_ref() {
            if n == 0 {
                first = r.seq;
            }
            (last, kind) = (r.seq, r.kind);
            n += 1;
            if n == per {
                break;
            }
        }
        if n == 0 {
            break;
        }
        let end = it.offset();
        out.push((
            Chunk {
                segment: 0,
                offset: (SEGMENT_HEADER_LEN + start) as u64,
                bytes: body[start..end].to_vec(),
                records: n as u64,
                last_seq: Some(last),
            },
            first,
            kind,
        ));
        start = end;
    }
    out
}

/// The shipped default config, as a live run reads it.
fn run_config() -> RunConfig {
    RunConfig::from_toml(&test_support::config_text("default.toml")).unwrap()
}

/// Its engine part: what the leader journals and the standby compares.
fn source() -> String {
    run_config().engine.source
}

#[test]
fn a_replica_follows_continues_and_refuses_what_it_cannot_vouch_for() {
    let dir = TempDir::new("standby-replica");
    let j = leader_journal(dir.path(), false);
    let all = chunks(&j, 7);
    assert!(all.len() > 100, "{} chunks", all.len());
    let last_seq = all.last().unwrap().0.last_seq.unwrap();

    // Every chunk, each delivered twice, and a bigger one overlapping two (a retried publish):
    // every record replayed once, identical.
    let mut r = Replica::new("1-0000000000000001", &dir.join("whole")).unwrap();
    for (k, (c, _, _)) in all.iter().enumerate() {
        r.apply(&source(), c).unwrap();
        r.apply(&source(), c).unwrap();
        if k > 1 && k % 50 == 0 {
            // This chunk and the next as one message.
            let next = &all[k + 1].0;
            let mut both = c.clone();
            both.bytes.extend_from_slice(&next.bytes);
            both.records += next.records;
            both.last_seq = next.last_seq;
            r.apply(&source(), &both).unwrap();
        }
    }
    assert_eq!(r.last_seq(), last_seq);

    // Cut where the archive stops right after a batch end whose intents it does not hold (a
    // leader killed in the middle of publishing): the standby journals what its engine
    // produced there, and the continued journal replays identical, its sequence unbroken.
    let cut = all
        .iter()
        .position(|(_, _, kind)| *kind == KIND_BATCH_END)
        .and_then(|k| {
            (k..all.len()).find(|&i| {
                all[i].2 == KIND_BATCH_END
                    && all
                        .get(i + 1)
                        .is_some_and(|n| first_kind(&n.0) == KIND_INTENT)
            })
        })
        .expect("a chunk ending at a batch end followed by intents");
    let into = dir.join("continued");
    let mut r = Replica::new("1-0000000000000001", &into).unwrap();
    for (c, _, _) in &all[..=cut] {
        r.apply(&source(), c).unwrap();
    }
    let Start::Continue {
        replayer,
        dir: cdir,
        last_seq: at,
        last_ns,
        ..
    } = r.finish().unwrap()
    else {
        panic!("an unclosed journal is continued");
    };
    assert_eq!(at, all[cut].0.last_seq.unwrap());
    let run = run_config();
    let (mut rec, engine, pending) =
        standby::continue_journal(replayer, &cdir, &run, 64 << 20, last_ns, 1).unwrap();
    assert!(pending > 0, "the batch's intents the archive did not hold");
    assert!(engine.instruments() == 1);
    // This run's own records follow (a timer tick), then its close.
    use runtime::host::Recorder as _;
    rec.event(&engine::Event::timer(last_ns + 1));
    rec.batch_end(last_ns + 1);
    rec.close().unwrap();
    match record::replay(&cdir).unwrap() {
        ReplayOutcome::Identical { ending, .. } => {
            assert_eq!(ending, record::Ending::Clean)
        }
        d => panic!("{d:?}"),
    }
    let mut seq = 0;
    let reader = journal::Reader::open(&cdir, journal::RecoveryMode::Strict).unwrap();
    for rec in reader.records() {
        let rec = rec.unwrap();
        assert_eq!(rec.seq, seq + 1);
        seq = rec.seq;
    }
    assert!(seq > at + pending as u64);

    // A gap: refused.
    let mut r = Replica::new("1-0000000000000001", &dir.join("gap")).unwrap();
    for (c, _, _) in &all[..10] {
        r.apply(&source(), c).unwrap();
    }
    let e = r.apply(&source(), &all[11].0).unwrap_err().to_string();
    assert!(e.contains("jumps from seq"), "{e}");

    // Another engine config: refused at the first record.
    let other = format!("{}\n# another desk's edit\n", source());
    let mut r = Replica::new("1-0000000000000001", &dir.join("other")).unwrap();
    r.apply(&other, &all[0].0).unwrap();
    let e = r.apply(&other, &all[1].0).unwrap_err().to_string();
    assert!(e.contains("another engine config"), "{e}");

    // A record that does not replay (an intent edited, its CRC made good): refused.
    let k = (1..all.len())
        .find(|&i| first_kind(&all[i].0) == KIND_INTENT)
        .unwrap();
    let mut bad = all[k].0.clone();
    tamper_first(&mut bad);
    let mut r = Replica::new("1-0000000000000001", &dir.join("diverged")).unwrap();
    for (c, _, _) in &all[..k] {
        r.apply(&source(), c).unwrap();
    }
    let e = r.apply(&source(), &bad).unwrap_err().to_string();
    assert!(e.contains("does not replay"), "{e}");

    // A leader that stopped cleanly: a run of its own, the rebuilt segments removed.
    let closed = leader_journal(&dir.join("clean"), true);
    let into = dir.join("after-clean");
    let mut r = Replica::new("1-0000000000000001", &into).unwrap();
    for (c, _, _) in chunks(&closed, 64) {
        r.apply(&source(), &c).unwrap();
    }
    assert!(matches!(r.finish().unwrap(), Start::Fresh { .. }));
    assert_eq!(std::fs::read_dir(&into).unwrap().count(), 0);
}

fn first_kind(c: &Chunk) -> u16 {
    records_in(&c.bytes).next().map_or(0, |r| r.kind)
}

/// Changes the first record's payload (its price) and writes a valid CRC for it.
fn tamper_first(c: &mut Chunk) {
    let len = u32::from_le_bytes(c.bytes[..4].try_into().unwrap()) as usize;
    let header = 24;
    // The intent's price field: flip a low bit somewhere in the payload.
    c.bytes[header + 12] ^= 1;
    let crc = crc32c(&c.bytes[..header + len]);
    c.bytes[header + len..header + len + 4].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32C (Castagnoli), bit by bit: the journal's record checksum.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
