//! The hot standby (issue 19): `ringmaker run --live --standby` follows the leader of its engine
//! name from the journal archive, replays it through its own engine in lockstep (sending
//! nothing), and takes over when the leader's lease lapses ([`crate::lease`]).
//!
//! # Following
//!
//! The lease's value names the leader's archive run (`{start ms}-{run id}`). The standby reads
//! that run's messages from the archive stream as they arrive (a pull consumer on its subject),
//! writes each chunk back at its place in a journal directory of its own
//! ([`crate::archive::Rebuild`]) and feeds each record to a [`Replayer`]: every input and batch
//! end goes to its engine, every intent and mode change the leader journaled is compared with
//! what its engine produced. A difference, a gap in the sequence or a config that is not this
//! run's is an error: the standby could not continue that journal, so it says so and exits
//! rather than take over with a state it cannot vouch for. A new leader run (the leader
//! restarted) starts the following over.
//!
//! # Taking over
//!
//! When the key is gone (the leader's lease expired, or it released it at a clean stop), the
//! standby takes it (compare-and-set create; another standby may win, and this one then follows
//! the winner). It then reads what is left of the followed run in the archive, and:
//!
//! - **the leader's journal is not closed** (it died): the standby continues it. Whatever its
//!   engine produced that the archive did not hold yet (the end of the last batch, which the
//!   leader may or may not have sent) is journaled first, then a settings record, and its own
//!   run's records follow with the next sequence numbers: one replay of the directory covers the
//!   leader's run and this one. Its engine starts with the leader's state (orders, positions,
//!   modes, PnL); the order-entry session then reconciles it with the venue before quoting (the
//!   leader's orders are matched by their engine ids, the ones the standby never heard of are
//!   cancelled or adopted, fills missed in between are applied, the position corrected);
//! - **the leader's journal is closed** (it stopped cleanly, its orders cancelled), or there
//!   was no leader: the standby starts a run of its own (a new journal, a new engine; the
//!   session's reconciliation takes the venue's position).
//!
//! Nothing here runs on the engine, feed or gateway threads: following happens before the
//! pipeline starts, on the calling thread, on a small runtime of its own.

use crate::archive::{Chunk, Rebuild};
use crate::config::RunConfig;
use crate::lease::{Held, Holder, LeaseError, LeaseStore};
use crate::record::{self, ReplayOutcome, Replayer, KIND_CONFIG};
use anyhow::Context as _;
use gateway::SendGate;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the standby follows with.
#[derive(Debug)]
pub struct Follow<'a> {
    /// The NATS server.
    pub url: &'a str,
    /// The firm-wide subjects' prefix.
    pub prefix: &'a str,
    /// The engine name (the lease's key, the archive's subjects).
    pub engine: &'a str,
    /// This run's config: its engine part must be the leader's.
    pub config: &'a RunConfig,
    /// Where the leader's journal is rebuilt (a new or empty directory).
    pub journal_dir: &'a Path,
    /// The lease bucket's time to live, if this run makes the bucket.
    pub ttl: Duration,
    /// This run's archive run (written in the lease when it takes over).
    pub run: &'a str,
    /// The gateway's gate, opened when the lease is taken.
    pub gate: Arc<SendGate>,
    /// Set by SIGINT / SIGTERM: stop following.
    pub stop: &'a AtomicBool,
}

/// The run a standby took over.
#[derive(Debug)]
pub struct Takeover {
    /// The lease, for the bus thread to keep.
    pub held: Held,
    /// How the run starts.
    pub start: Start,
}

/// How the new leader's run starts.
#[derive(Debug)]
pub enum Start {
    /// The leader's journal, continued.
    Continue {
        /// The engine with the leader's state.
        replayer: Box<Replayer>,
        /// The rebuilt journal directory.
        dir: PathBuf,
        /// The leader's run followed.
        leader: String,
        /// The last sequence number replayed.
        last_seq: u64,
        /// The timestamp of the last record replayed.
        last_ns: i64,
    },
    /// A run of its own (no leader followed, or the leader's journal closed).
    Fresh {
        /// Why.
        why: String,
    },
}

/// A leader's journal as followed: rebuilt into a directory and replayed record by record.
#[derive(Debug)]
pub struct Replica {
    /// The leader's run.
    pub run: String,
    rebuild: Rebuild,
    dir: PathBuf,
    replayer: Option<Replayer>,
    progress: Progress,
}

impl Replica {
    /// Into `dir` (new or empty), for the leader's run `run`.
    pub fn new(run: &str, dir: &Path) -> anyhow::Result<Replica> {
        Ok(Replica {
            run: run.to_owned(),
            rebuild: Rebuild::new(dir)?,
            dir: dir.to_path_buf(),
            replayer: None,
            progress: Progress::default(),
        })
    }

    /// The last sequence number replayed (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.progress.last_seq
    }
}

/// What the status line shows while following.
#[derive(Debug, Default)]
struct Progress {
    records: u64,
    last_seq: u64,
    last_ns: i64,
}

/// One leader run being followed.
struct Following {
    replica: Replica,
    stream: async_nats::jetstream::stream::Stream,
    subject: String,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    /// The stream sequence after the last message read: where a new consumer starts.
    next_stream_seq: u64,
    warned: bool,
    /// A pull came back short of a whole batch: the archive's backlog is read.
    caught_up: bool,
}

impl Following {
    /// A read of the archive failed: said once, tried again.
    fn unread(&mut self, what: String) {
        if !self.warned {
            self.warned = true;
            let _ = writeln!(
                std::io::stderr(),
                "ringmaker run: standby: warning: {what} (tried again)"
            );
        }
    }
}

/// The most archive messages read in one pull.
const BATCH: usize = 256;
/// How often the lease's key is looked at.
const POLL: Duration = Duration::from_millis(100);

/// Follows the leader until this run takes over (`Some`), or until `stop` (`None`).
pub fn follow(f: Follow<'_>) -> anyhow::Result<Option<Takeover>> {
    let name = format!("ringmaker {} standby", f.engine);
    crate::bus::as_client(f.url, &name, |client| async move {
        let store = LeaseStore::open(&client, f.prefix, f.engine, f.ttl).await?;
        let js = async_nats::jetstream::new(client.clone());
        let me = Holder::this_process(f.engine, f.run);
        let mut following: Option<Following> = None;
        let mut warned = false;
        // When this run last asked for the key (a lost answer may have given it the key).
        let mut asked_at: Option<Instant> = None;
        // When the leader last renewed its lease (the server's clock), as last seen.
        let mut last_renewal_ms: Option<i64> = None;
        let mut next_status = Instant::now();
        let say = |s: String| {
            let _ = writeln!(std::io::stderr(), "ringmaker run: standby: {s}");
        };
        let mut next_look = Instant::now();
        loop {
            if f.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            // Between two looks at the lease, the archive is read as fast as it comes.
            if Instant::now() < next_look {
                if let Some(x) = following.as_mut() {
                    pull(x, &f, Duration::from_millis(50)).await?;
                } else {
                    tokio::time::sleep(next_look - Instant::now()).await;
                }
                continue;
            }
            next_look = Instant::now() + POLL;
            let holder = match store.holder_at().await {
                Ok(h) => h,
                Err(e) => {
                    if !warned {
                        warned = true;
                        say(format!("{e} (asked again)"));
                    }
                    continue;
                }
            };
            let took = match holder {
                // A take whose answer was lost: the key is this run's after all.
                Some((h, revision, _)) if h.run == me.run => {
                    Some((revision, asked_at.unwrap_or_else(Instant::now)))
                }
                Some((h, _, written_ms)) => {
                    last_renewal_ms = Some(written_ms);
                    if following.as_ref().is_none_or(|x| x.replica.run != h.run) {
                        if crate::archive::run_start(&h.run).is_none() {
                            anyhow::bail!(
                                "the lease of engine {:?} is held by something that is not a \
                                 ringmaker run ({h}): nothing to follow",
                                f.engine
                            );
                        }
                        if let Some(p) = following.take() {
                            // This run's own rebuild of a leader run that ended.
                            remove_rebuilt(&p.replica.dir)?;
                        }
                        match start_following(&js, &f, &h.run).await {
                            Ok(x) => {
                                say(format!("following {h}"));
                                following = Some(x);
                            }
                            // The archive not there yet (the leader just started), or the
                            // server away: asked again at the next look.
                            Err(e) if !warned => {
                                warned = true;
                                say(format!("{e:#} (asked again)"));
                            }
                            Err(_) => {}
                        }
                    }
                    if let Some(x) = following.as_mut() {
                        pull(x, &f, Duration::from_millis(50)).await?;
                        if Instant::now() >= next_status {
                            next_status = Instant::now() + Duration::from_secs(5);
                            say(format!(
                                "run {}: {} records replayed identical, at seq {}",
                                x.replica.run,
                                x.replica.progress.records,
                                x.replica.progress.last_seq
                            ));
                        }
                    }
                    None
                }
                None => {
                    asked_at = Some(Instant::now());
                    match store.acquire(&me).await {
                        Ok(r) => Some(r),
                        Err(LeaseError::Held) => None,
                        Err(LeaseError::Unanswered(e)) => {
                            say(format!("taking the lease: {e}"));
                            None
                        }
                    }
                }
            };
            if let Some((revision, sent)) = took {
                let taken_ms = gateway::binance::worker::wall_ms();
                let mut held = Held {
                    me: me.clone(),
                    revision,
                    ttl: store.ttl,
                    gate: Arc::clone(&f.gate),
                };
                held.confirmed(revision, sent);
                let start = match following.take() {
                    None => Start::Fresh {
                        why: "no leader was followed".into(),
                    },
                    Some(mut x) => {
                        // What the leader got into the archive before it went.
                        let (before, t) = (x.replica.progress.last_seq, Instant::now());
                        drain(&mut x, &f).await?;
                        say(format!(
                            "read the rest of run {}: seq {before} to {} in {} ms",
                            x.replica.run,
                            x.replica.progress.last_seq,
                            t.elapsed().as_millis()
                        ));
                        x.replica.finish()?
                    }
                };
                let after = last_renewal_ms.map_or_else(String::new, |w| {
                    format!(", {} ms after the leader's last renewal", taken_ms - w)
                });
                say(format!(
                    "took the lease of engine {:?} (revision {revision}){after}",
                    f.engine
                ));
                return Ok(Some(Takeover { held, start }));
            }
        }
    })
}

/// Starts following `run`.
async fn start_following(
    js: &async_nats::jetstream::Context,
    f: &Follow<'_>,
    run: &str,
) -> anyhow::Result<Following> {
    let name = crate::archive::stream_name(f.prefix);
    let stream = js
        .get_stream(&name)
        .await
        .map_err(|e| anyhow::anyhow!("the journal archive (stream {name}): {e}"))?;
    let subject = format!("{}.journal.{}.{run}", f.prefix, f.engine);
    let consumer = consumer_from(&stream, &subject, 0).await?;
    Ok(Following {
        replica: Replica::new(run, f.journal_dir)?,
        stream,
        subject,
        consumer,
        next_stream_seq: 0,
        warned: false,
        caught_up: false,
    })
}

/// A consumer of `subject` from stream sequence `from` on (0: from the start).
async fn consumer_from(
    stream: &async_nats::jetstream::stream::Stream,
    subject: &str,
    from: u64,
) -> anyhow::Result<async_nats::jetstream::consumer::PullConsumer> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            deliver_policy: if from == 0 {
                DeliverPolicy::All
            } else {
                DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                }
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("reading the journal archive: {e}"))
}

/// Removes a rebuilt journal's segment files (nothing else: the directory is this run's own).
fn remove_rebuilt(dir: &Path) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        let ours = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".rmj"));
        if ours {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(())
}

/// Reads what the archive has of the followed run now (waiting `wait` at most for the first
/// message), rebuilding and replaying it. The messages read.
async fn pull(x: &mut Following, f: &Follow<'_>, wait: Duration) -> anyhow::Result<usize> {
    use futures_util::StreamExt as _;
    // A server away or slow is waited for (the next pull asks again from where this one got
    // to); only what the archive holds can end the following (`apply`). A batch that waits
    // (`expires`) rather than a no-wait fetch: a 2.9 server keeps a no-wait request with
    // nothing to deliver open for seconds.
    let mut batch = match x
        .consumer
        .batch()
        .max_messages(BATCH)
        .expires(wait)
        .messages()
        .await
    {
        Ok(b) => b,
        Err(e) => {
            x.unread(format!("reading the journal archive: {e}"));
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Ok(0);
        }
    };
    let mut n = 0;
    // A batch the client never sees end (seen with a 2.9 server: seconds past its expiry) is
    // given up at this deadline, and the consumer made anew from the next stream sequence (a
    // message delivered to the one given up is read again, none is lost).
    let mut deadline = Instant::now() + wait + Duration::from_millis(250);
    let mut stuck = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = match tokio::time::timeout(left, batch.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                x.unread(format!("reading the journal archive: {e}"));
                break;
            }
            Ok(None) => break,
            Err(_) => {
                stuck = true;
                break;
            }
        };
        if let Ok(info) = m.info() {
            x.next_stream_seq = info.stream_sequence + 1;
        }
        // A batch still arriving is not stuck.
        deadline = deadline.max(Instant::now() + Duration::from_millis(250));
        x.replica
            .apply(&f.config.engine.source, &crate::bus::chunk_of(&m)?)?;
        n += 1;
    }
    drop(batch);
    if stuck {
        match consumer_from(&x.stream, &x.subject, x.next_stream_seq).await {
            Ok(c) => x.consumer = c,
            Err(e) => x.unread(format!("{e:#}")),
        }
    }
    if n < BATCH && !x.caught_up && x.replica.replayer.is_some() {
        x.caught_up = true;
        let _ = writeln!(
            std::io::stderr(),
            "ringmaker run: standby: caught up with run {} at seq {}: following it live",
            x.replica.run,
            x.replica.progress.last_seq
        );
    }
    Ok(n)
}

impl Replica {
    /// Places one chunk and replays its records: `engine_source` is this run's engine config,
    /// which the leader's must be.
    pub fn apply(&mut self, engine_source: &str, c: &Chunk) -> anyhow::Result<()> {
        if c.offset == 0 {
            // A segment's header.
            self.rebuild.put(c)?;
            return Ok(());
        }
        let mut records = journal::records_in(&c.bytes);
        let first = records.clone().next().map(|r| r.seq);
        let last = records.clone().last().map(|r| r.seq);
        match (first, last) {
            // Published again and delivered twice: already in.
            (Some(_), Some(l)) if l <= self.progress.last_seq => return Ok(()),
            // Overlapping what is in (its start published before): the rest follows on.
            (Some(s), _) if s <= self.progress.last_seq => {}
            (Some(s), _) if s != self.progress.last_seq + 1 => anyhow::bail!(
                "the archive of run {} jumps from seq {} to {s}: the standby cannot continue a \
                 journal with a gap",
                self.run,
                self.progress.last_seq
            ),
            (Some(_), _) => {}
            (None, _) => anyhow::bail!(
                "an archive message of run {} holds no whole record",
                self.run
            ),
        }
        self.rebuild.put(c)?;
        for rec in records.by_ref() {
            if rec.seq <= self.progress.last_seq {
                continue;
            }
            if rec.seq == 1 {
                anyhow::ensure!(
                    rec.kind == KIND_CONFIG,
                    "the followed journal does not start with its config"
                );
                let text =
                    std::str::from_utf8(rec.payload).context("the leader's config is not UTF-8")?;
                let theirs =
                    RunConfig::from_toml(text).context("the leader's config is invalid")?;
                anyhow::ensure!(
                    theirs.engine.source == engine_source,
                    "the leader (run {}) runs another engine config than this standby's: a \
                     standby must carry the leader's engine sections exactly (its [cpu], [rings], \
                     [ops], [bus] may differ)",
                    self.run
                );
                self.replayer = Some(Replayer::new(&theirs.engine));
            } else {
                let r = self
                    .replayer
                    .as_mut()
                    .context("the followed journal's first record is missing")?;
                if let Some(ReplayOutcome::Diverged { seq, expected, got }) = r.feed(&rec)? {
                    anyhow::bail!(
                        "the leader's journal (run {}) does not replay here at seq {seq}: it has \
                         {expected}, this engine produced {got}; the standby stops rather than \
                         take over a state it cannot vouch for",
                        self.run
                    );
                }
            }
            self.progress.records += 1;
            self.progress.last_seq = rec.seq;
            self.progress.last_ns = self.progress.last_ns.max(rec.timestamp_ns);
        }
        anyhow::ensure!(
            records.offset() == c.bytes.len(),
            "an archive message of run {} ends inside a record",
            self.run
        );
        Ok(())
    }
}

/// After taking the lease: everything the archive still has of the followed run (until a pull
/// comes back empty; the leader is gone or fenced, so little more is coming).
async fn drain(x: &mut Following, f: &Follow<'_>) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if pull(x, f, Duration::from_millis(100)).await? == 0 {
            break;
        }
    }
    Ok(())
}

impl Replica {
    /// How the run that takes over starts from what was followed: the leader's journal
    /// continued, or (nothing followed, or the leader's journal closed) a run of its own, the
    /// rebuilt segments removed.
    pub fn finish(self) -> anyhow::Result<Start> {
        let Some(replayer) = self.replayer else {
            remove_rebuilt(&self.dir)?;
            return Ok(Start::Fresh {
                why: format!("nothing of run {} was in the archive", self.run),
            });
        };
        if replayer.closed() {
            remove_rebuilt(&self.dir)?;
            return Ok(Start::Fresh {
                why: format!("run {} ended cleanly (its journal is closed)", self.run),
            });
        }
        Ok(Start::Continue {
            replayer: Box::new(replayer),
            dir: self.dir,
            leader: self.run,
            last_seq: self.progress.last_seq,
            last_ns: self.progress.last_ns,
        })
    }
}

/// Continues the leader's journal in `dir` for this run: what the replayed engine produced that
/// the archive did not hold is journaled first. The recorder and the engine.
pub fn continue_journal(
    mut replayer: Box<Replayer>,
    dir: &Path,
    run: &RunConfig,
    segment_size: u64,
    last_ns: i64,
    created_ns: u64,
) -> anyhow::Result<(record::JournalRecorder, engine::Engine, usize)> {
    let pending = replayer.take_unjournaled();
    let mut rec =
        record::JournalRecorder::continue_run(dir, run, segment_size, replayer.events, created_ns)?;
    for (kind, payload) in &pending {
        rec.append_output(*kind, last_ns, payload)?;
    }
    Ok((rec, replayer.into_engine(), pending.len()))
}
