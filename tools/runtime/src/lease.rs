//! Leadership of an engine name (issue 19): a JetStream key-value lease, so that of the runs
//! that trade as one engine (a leader and its hot standbys, `ringmaker run --live --standby`)
//! exactly one sends orders.
//!
//! # The lease
//!
//! The bucket `{prefix}_leaders` (the prefix's dots as `_`) holds one key per engine name. Its
//! stream keeps one message per key and expires every message `lease_ms` after it was stored
//! (`max_age`): a key that is not renewed disappears by itself.
//!
//! - **Taking it** is a compare-and-set *create*: it succeeds only if the key is absent (never
//!   written, expired, or released). The answer is the key's **revision**.
//! - **Keeping it**: the holder's bus thread *updates* the key every `lease_ms / 5`, each update
//!   conditional on the revision it holds (JetStream's expected last subject sequence). The
//!   answer is the next revision.
//! - **Fencing**: once another run has taken the key, every update of the old holder fails
//!   ("wrong last sequence"): the old holder is **fenced** for good (`SendGate::fence`), sends
//!   nothing more and ends its run. It never takes the key back by itself.
//! - **The time bound**: the server expires the key `max_age` after it stored the last update,
//!   which is after the holder sent it; so the holder counts its lease valid until the time it
//!   *sent* its last confirmed update plus four fifths of `max_age` (a margin for the two clocks'
//!   rates), and the gateway sends nothing after that ([`gateway::SendGate`]) until a renewal is
//!   confirmed. A leader frozen (SIGSTOP, a long pause) past its lease therefore wakes up unable to
//!   send, before it has even heard that it was replaced.
//! - **Releasing it**: a leader that stops cleanly (after its shutdown has cancelled its orders)
//!   deletes the key, conditional on its revision, so a standby takes over at once instead of
//!   after the time to live.
//!
//! The server's clock must not be stepped forward (an NTP-disciplined clock slews): a stepped
//! clock expires keys early.

use anyhow::Context as _;
use async_nats::jetstream::kv;
use gateway::SendGate;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who holds an engine's lease: the key's value (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The engine name (the key).
    pub engine: String,
    /// The holder's run on the journal archive (`{start ms}-{run id}`): what a standby follows.
    pub run: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// When the holder took the lease, ms since the UNIX epoch.
    pub since_ms: u64,
}

impl Holder {
    /// This process, as the holder of `engine`'s lease for archive run `run`.
    pub fn this_process(engine: &str, run: &str) -> Holder {
        Holder {
            engine: engine.to_owned(),
            run: run.to_owned(),
            host: host_name(),
            pid: std::process::id(),
            since_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {} on {} (pid {})", self.run, self.host, self.pid)
    }
}

/// The host's name (the kernel's), or `?`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// The lease bucket's name for subjects under `prefix`.
pub fn bucket_name(prefix: &str) -> String {
    format!("{}_leaders", prefix.replace('.', "_"))
}

/// Why the lease could not be taken or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds it (taking), or took it (keeping: fenced).
    #[error("another run holds the lease")]
    Held,
    /// The server did not answer in time, or answered with an error: nothing is known.
    #[error("{0}")]
    Unanswered(String),
}

/// One engine's lease in the bucket.
pub struct LeaseStore {
    kv: kv::Store,
    key: String,
    /// The bucket's time to live (the stream's `max_age`): what the server actually does.
    pub ttl: Duration,
    /// How long a call may take before it counts as unanswered (a fifth of the time to live, at
    /// most 2 s: a renewal lost in a slow server is tried again well before the lease lapses).
    wait: Duration,
}

impl std::fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseStore")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// How long a lease call may take before it counts as unanswered.
const CALL_WAIT: Duration = Duration::from_secs(2);

impl LeaseStore {
    /// The lease of `engine` under `prefix`, its bucket made with a time to live of `ttl` if it
    /// does not exist. An existing bucket keeps its own time to live (`self.ttl`, which every
    /// holder and standby then uses); one that never expires its keys is refused.
    pub async fn open(
        client: &async_nats::Client,
        prefix: &str,
        engine: &str,
        ttl: Duration,
    ) -> anyhow::Result<LeaseStore> {
        use async_nats::jetstream::stream;
        let js = async_nats::jetstream::new(client.clone());
        let bucket = bucket_name(prefix);
        // The bucket's stream, made as the key-value layer makes one (by hand: older servers
        // answer the client's own `create_key_value` in a form it does not parse).
        let config = stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            storage: stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        };
        let mut s = tokio::time::timeout(CALL_WAIT, js.get_or_create_stream(config))
            .await
            .map_err(|_| anyhow::anyhow!("no answer about the lease bucket {bucket}"))?
            .map_err(|e| anyhow::anyhow!("the lease bucket {bucket}: {e}"))?;
        let info = tokio::time::timeout(CALL_WAIT, s.info())
            .await
            .map_err(|_| anyhow::anyhow!("no answer about the lease bucket {bucket}"))?
            .map_err(|e| anyhow::anyhow!("the lease bucket {bucket}: {e}"))?;
        let actual = info.config.max_age;
        anyhow::ensure!(
            actual > Duration::ZERO && actual <= Duration::from_secs(60),
            "the lease bucket {bucket} keeps its keys {}: a lease needs a time to live of 60 s \
             at most (delete the stream KV_{bucket} to have it made again)",
            if actual.is_zero() {
                "for ever".to_owned()
            } else {
                format!("{} ms", actual.as_millis())
            }
        );
        let kv = tokio::time::timeout(CALL_WAIT, js.get_key_value(&bucket))
            .await
            .map_err(|_| anyhow::anyhow!("no answer about the lease bucket {bucket}"))?
            .map_err(|e| anyhow::anyhow!("the lease bucket {bucket}: {e}"))?;
        Ok(LeaseStore {
            kv,
            key: engine.to_owned(),
            ttl: actual,
            wait: (actual / 5).clamp(Duration::from_millis(100), CALL_WAIT),
        })
    }

    /// How long after a confirmed renewal was sent the holder may still send orders.
    pub fn valid_for(&self) -> Duration {
        self.ttl * 4 / 5
    }

    /// How often the holder renews.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 5
    }

    /// The current holder and the key's revision (`None`: nobody holds it).
    pub async fn holder(&self) -> Result<Option<(Holder, u64)>, LeaseError> {
        Ok(self.holder_at().await?.map(|(h, r, _)| (h, r)))
    }

    /// [`LeaseStore::holder`], with when the key was last written (the server's clock, ms since
    /// the UNIX epoch).
    pub async fn holder_at(&self) -> Result<Option<(Holder, u64, i64)>, LeaseError> {
        let e = tokio::time::timeout(self.wait, self.kv.entry(self.key.clone()))
            .await
            .map_err(|_| LeaseError::Unanswered("no answer from the lease bucket".into()))?
            .map_err(|e| LeaseError::Unanswered(format!("reading the lease: {e}")))?;
        Ok(match e {
            Some(e) if e.operation == kv::Operation::Put => {
                // A value that is not ours still means someone holds the key.
                let h = serde_json::from_slice(&e.value).unwrap_or_else(|_| Holder {
                    engine: self.key.clone(),
                    run: "?".into(),
                    host: "?".into(),
                    pid: 0,
                    since_ms: 0,
                });
                let at_ms = (e.created.unix_timestamp_nanos() / 1_000_000) as i64;
                Some((h, e.revision, at_ms))
            }
            _ => None,
        })
    }

    /// Takes the lease if nobody holds it: its revision, and when the request was sent (the
    /// lease is valid [`LeaseStore::valid_for`] from then).
    pub async fn acquire(&self, me: &Holder) -> Result<(u64, Instant), LeaseError> {
        let body = serde_json::to_vec(me).unwrap_or_default();
        let sent = Instant::now();
        match tokio::time::timeout(self.wait, self.kv.create(&self.key, body.into())).await {
            Err(_) => Err(LeaseError::Unanswered(
                "no answer from the lease bucket".into(),
            )),
            Ok(Ok(rev)) => Ok((rev, sent)),
            Ok(Err(e)) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(LeaseError::Held),
            Ok(Err(e)) => Err(LeaseError::Unanswered(format!("taking the lease: {e}"))),
        }
    }

    /// Renews the lease held at revision `rev`: the next revision and when the request was sent.
    /// [`LeaseError::Held`]: another run has taken it (this one is fenced).
    pub async fn renew(&self, me: &Holder, rev: u64) -> Result<(u64, Instant), LeaseError> {
        let body = serde_json::to_vec(me).unwrap_or_default();
        let sent = Instant::now();
        match tokio::time::timeout(self.wait, self.kv.update(&self.key, body.into(), rev)).await {
            Err(_) => Err(LeaseError::Unanswered(
                "no answer from the lease bucket".into(),
            )),
            Ok(Ok(rev)) => Ok((rev, sent)),
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(LeaseError::Held)
            }
            Ok(Err(e)) => Err(LeaseError::Unanswered(format!("renewing the lease: {e}"))),
        }
    }

    /// Gives the lease up (held at revision `rev`), so a standby takes over at once.
    pub async fn release(&self, rev: u64) -> Result<(), LeaseError> {
        match tokio::time::timeout(
            self.wait,
            self.kv.delete_expect_revision(&self.key, Some(rev)),
        )
        .await
        {
            Err(_) => Err(LeaseError::Unanswered(
                "no answer from the lease bucket".into(),
            )),
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LeaseError::Unanswered(format!("releasing the lease: {e}"))),
        }
    }
}

/// A lease this run holds: handed to the bus thread, which keeps it ([`keep`]) on a store of its
/// own client.
#[derive(Debug)]
pub struct Held {
    /// This run, as written in the key.
    pub me: Holder,
    /// The revision held.
    pub revision: u64,
    /// The bucket's time to live when the lease was taken.
    pub ttl: Duration,
    /// The gateway's gate, open while the lease is valid.
    pub gate: Arc<SendGate>,
}

impl Held {
    /// Opens the gate for the lease confirmed by a request sent at `sent`.
    pub fn confirmed(&mut self, revision: u64, sent: Instant) {
        self.revision = revision;
        self.gate.open_until(sent + self.ttl * 4 / 5);
    }
}

/// What keeping the lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseEnd {
    /// Renewals confirmed.
    pub renewals: u64,
    /// Renewals that got no answer (the gate closes once the lease runs out without one).
    pub unanswered: u64,
    /// Another run took the lease: this one was fenced.
    pub fenced: bool,
    /// Released at the end.
    pub released: bool,
}

/// Keeps the lease until `stop` says the run is over (then releases it, unless fenced), or until
/// another run has taken it or it lapsed unrenewed (the gate fenced, `on_fenced` called once
/// with the holder now, if any). Runs on the bus thread's
/// runtime, apart from its heartbeats and archive.
pub async fn keep(
    store: &LeaseStore,
    mut held: Held,
    stop: impl Fn() -> bool,
    on_fenced: impl FnOnce(Option<&Holder>),
    counters: &LeaseCounters,
) -> LeaseEnd {
    use std::sync::atomic::Ordering;
    let mut end = LeaseEnd::default();
    let mut on_fenced = Some(on_fenced);
    counters.held.store(1, Ordering::Relaxed);
    counters.revision.store(held.revision, Ordering::Relaxed);
    loop {
        if stop() {
            break;
        }
        match store.renew(&held.me, held.revision).await {
            Ok((rev, sent)) => {
                held.confirmed(rev, sent);
                end.renewals += 1;
                counters.renewals.fetch_add(1, Ordering::Relaxed);
                counters.revision.store(rev, Ordering::Relaxed);
            }
            Err(LeaseError::Held) => {
                held.gate.fence();
                end.fenced = true;
                counters.held.store(0, Ordering::Relaxed);
                counters.fenced.store(1, Ordering::Relaxed);
                let now = store.holder().await.ok().flatten().map(|(h, _)| h);
                if let Some(f) = on_fenced.take() {
                    f(now.as_ref());
                }
                return end;
            }
            Err(LeaseError::Unanswered(e)) => {
                end.unanswered += 1;
                counters.unanswered.fetch_add(1, Ordering::Relaxed);
                if end.unanswered == 1 {
                    let _ = writeln!(
                        std::io::stderr(),
                        "ringmaker run: warning: lease: a renewal went unanswered: {e} (tried \
                         again; counted in ringmaker_lease_renewals_total)"
                    );
                }
            }
        }
        // Held while the gate is open: a lease whose renewals go unanswered lapses here.
        let open = held.gate.is_open(Instant::now());
        if (counters.held.swap(u64::from(open), Ordering::Relaxed) == 1) != open {
            let _ = if open {
                writeln!(
                    std::io::stderr(),
                    "ringmaker run: lease: renewed again: the venue may be sent to"
                )
            } else {
                writeln!(
                    std::io::stderr(),
                    "ringmaker run: warning: lease: no renewal confirmed within its time to \
                     live: nothing is sent to the venue until one is"
                )
            };
        }
        let until = Instant::now() + store.renew_every();
        while Instant::now() < until && !stop() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // The run is over and its shutdown has cancelled its orders: hand over at once.
    if held.gate.is_open(Instant::now()) && store.release(held.revision).await.is_ok() {
        end.released = true;
    }
    counters.held.store(0, Ordering::Relaxed);
    end
}

/// The lease's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct LeaseCounters {
    /// This run holds the lease (1: a renewal confirmed within its time to live, the gate open)
    /// or not (0).
    pub held: std::sync::atomic::AtomicU64,
    /// The revision held.
    pub revision: std::sync::atomic::AtomicU64,
    /// Renewals confirmed.
    pub renewals: std::sync::atomic::AtomicU64,
    /// Renewals not answered.
    pub unanswered: std::sync::atomic::AtomicU64,
    /// Fenced: another run took the lease (1).
    pub fenced: std::sync::atomic::AtomicU64,
}

/// Takes `engine`'s lease for this run before it starts (a live run on the bus), opening `gate`
/// for it: the lease, or an error naming the run that holds it.
pub fn take_for_run(
    url: &str,
    prefix: &str,
    engine: &str,
    ttl: Duration,
    run: &str,
    gate: Arc<SendGate>,
) -> anyhow::Result<Held> {
    crate::bus::as_client(
        url,
        &format!("ringmaker {engine} lease"),
        |client| async move {
            let store = LeaseStore::open(&client, prefix, engine, ttl).await?;
            let me = Holder::this_process(engine, run);
            let (revision, sent) = match store.acquire(&me).await {
                Ok(r) => r,
                Err(LeaseError::Held) => {
                    let who = store
                        .holder()
                        .await
                        .ok()
                        .flatten()
                        .map_or_else(|| "another run".to_owned(), |(h, _)| h.to_string());
                    anyhow::bail!(
                    "engine {engine:?} is already trading: {who} holds its lease (a second run \
                     of one engine is a hot standby: add --standby; the lease of a leader that \
                     died lapses within {} ms)",
                    store.ttl.as_millis()
                )
                }
                Err(e) => anyhow::bail!("the lease of engine {engine:?}: {e}"),
            };
            let mut held = Held {
                me,
                revision,
                ttl: store.ttl,
                gate,
            };
            held.confirmed(revision, sent);
            Ok(held)
        },
    )
}

/// Keeps a lease on a thread of its own from the moment it is taken until the run is over
/// (through the run's start, its whole life and its shutdown's cancels), then releases it.
/// Fenced, it closes the gate for good, says so and sets the run's stop flag.
#[derive(Debug)]
pub struct Keeper {
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<LeaseEnd>>,
    /// The lease's counters, for `/metrics`.
    pub counters: Arc<LeaseCounters>,
    /// The gate the lease opens.
    pub gate: Arc<SendGate>,
}

impl Keeper {
    /// Starts keeping `held` (taken on `url`, under `prefix`); `stop` is the run's stop flag.
    pub fn start(
        url: &str,
        prefix: &str,
        held: Held,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> anyhow::Result<Keeper> {
        use std::sync::atomic::Ordering;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counters = Arc::new(LeaseCounters::default());
        let gate = Arc::clone(&held.gate);
        let (url, prefix) = (url.to_owned(), prefix.to_owned());
        let thread = {
            let (done, counters) = (Arc::clone(&done), Arc::clone(&counters));
            std::thread::Builder::new()
                .name("lease".into())
                .spawn(move || {
                    let engine = held.me.engine.clone();
                    let r = crate::bus::as_client(
                        &url,
                        &format!("ringmaker {engine} lease"),
                        |client| async move {
                            let finished = || done.load(Ordering::Acquire);
                            let store = loop {
                                match LeaseStore::open(&client, &prefix, &engine, held.ttl).await {
                                    Ok(s) => break s,
                                    Err(e) => {
                                        if finished() {
                                            return Err(e);
                                        }
                                        tokio::time::sleep(Duration::from_millis(200)).await;
                                    }
                                }
                            };
                            let on_fenced = |now: Option<&Holder>| {
                                let _ = match now {
                                    Some(h) => writeln!(
                                        std::io::stderr(),
                                        "ringmaker run: error: fenced: {h} has taken over \
                                         engine {engine:?}; this run sends nothing more to the \
                                         venue and stops"
                                    ),
                                    None => writeln!(
                                        std::io::stderr(),
                                        "ringmaker run: error: fenced: the lease of engine \
                                         {engine:?} lapsed unrenewed and this run lost it; it \
                                         sends nothing more to the venue and stops"
                                    ),
                                };
                                stop.store(true, Ordering::Release);
                            };
                            Ok(keep(&store, held, finished, on_fenced, &counters).await)
                        },
                    );
                    r.unwrap_or_else(|e| {
                        let _ = writeln!(
                            std::io::stderr(),
                            "ringmaker run: warning: the lease: {e:#}"
                        );
                        LeaseEnd::default()
                    })
                })
                .context("starting the lease thread")?
        };
        Ok(Keeper {
            done,
            thread: Some(thread),
            counters,
            gate,
        })
    }

    /// Whether another run has taken the lease (this run was fenced).
    pub fn fenced(&self) -> bool {
        self.gate.is_fenced()
    }

    /// The run is over (its orders cancelled): releases the lease unless fenced, and says what
    /// keeping it came to.
    pub fn finish(mut self) -> LeaseEnd {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // A run that ends by an error still lets go of its lease.
        self.done.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_holders_line() {
        assert_eq!(bucket_name("ringmaker"), "ringmaker_leaders");
        assert_eq!(bucket_name("firm.mm"), "firm_mm_leaders");
        let h = Holder {
            engine: "eng".into(),
            run: "1-00000000000000ab".into(),
            host: "ny4".into(),
            pid: 42,
            since_ms: 1,
        };
        assert_eq!(h.to_string(), "run 1-00000000000000ab on ny4 (pid 42)");
        let me = Holder::this_process("eng", "1-00000000000000ab");
        assert_eq!(me.pid, std::process::id());
        assert!(!me.host.is_empty());
        // The value is JSON a standby reads back.
        let back: Holder = serde_json::from_slice(&serde_json::to_vec(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn a_confirmed_renewal_opens_the_gate_for_four_fifths_of_the_ttl_from_its_send() {
        let gate = Arc::new(SendGate::closed());
        let mut held = Held {
            me: Holder::this_process("eng", "1-0000000000000001"),
            revision: 1,
            ttl: Duration::from_millis(2000),
            gate: Arc::clone(&gate),
        };
        let sent = Instant::now();
        held.confirmed(7, sent);
        assert_eq!(held.revision, 7);
        assert!(gate.is_open(sent + Duration::from_millis(1599)));
        assert!(!gate.is_open(sent + Duration::from_millis(1600)));
        // A renewal sent long ago opens nothing: its lease is already past.
        if let Some(old) = sent.checked_sub(Duration::from_secs(10)) {
            held.confirmed(8, old);
            assert!(!gate.is_open(Instant::now()));
        }
        // Fenced, no renewal opens it again.
        gate.fence();
        held.confirmed(9, Instant::now());
        assert!(!gate.is_open(Instant::now()));
    }
}
