//! What ringmaker writes into the journal, and replaying it.
//!
//! Record kinds (payloads little-endian, see `journal/FORMAT.md` for the framing):
//!
//! | kind | name | payload | timestamp |
//! |---|---|---|---|
//! | 1 | config | the engine config's TOML text, exactly as loaded | 0 |
//! | 2 | event | one engine input, 64 bytes ([`Event::to_bytes`]) | its local time |
//! | 3 | batch end | engine time, 8 bytes (`i64`) | engine time |
//! | 4 | intent | one order intent, 64 bytes ([`Intent::to_bytes`]) | its time |
//! | 5 | mode change | 16 bytes ([`ModeChange::to_bytes`]) | its time |
//! | 6 | events | consecutive engine inputs, 64 bytes each, in order (1 to [`EVENTS_PER_RECORD`]) | the newest one's local time |
//! | 8 | close | a clean close: records before it (`u64`) and events journaled (`u64`), 16 bytes; the last record | 0 |
//! | 7 | settings | SHA-256 of the run config's other sections, credentials left out ([`crate::config::RunConfig::settings_digest`]), 32 bytes | 0 |
//! | 9 | reload | the engine config's TOML text that a hot reload applied at this point (right before the `Reload` control event it goes with) | engine time |
//!
//! The config record (the engine's part of the run config only: what replay needs) comes
//! first, then the settings record; then every event in the order the engine consumed it, each
//! batch end, and, right after the input that caused them, every intent and mode change.
//!
//! [`JournalRecorder`] writes inputs as kind 6: consecutive events go into one open record
//! ([`journal::Writer::extend`]: a 64-byte memcpy each, no header, no CRC), sealed by the next
//! batch end, intent or mode change, or when full. A venue depth message of 500 levels thus
//! costs one header and one CRC pass instead of 500. Readers accept kind 2 (one event per
//! record) as well; [`events_in`] yields the events of either. The
//! header hash of every segment is SHA-256 of `ringmaker <version>\n`, `events v<layout>\n`
//! ([`engine::Event::LAYOUT_VERSION`]) and the config text.

use crate::config::RunConfig;
use crate::host::Recorder;
use anyhow::{bail, Context};
use engine::{Config, Engine, Event, Intent, ModeChange, Sink};
use journal::{Durability, JournalError, Reader, RecoveryMode, Writer, WriterOptions};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::path::Path;

/// Config record.
pub const KIND_CONFIG: u16 = 1;
/// Event record.
pub const KIND_EVENT: u16 = 2;
/// Batch-end record.
pub const KIND_BATCH_END: u16 = 3;
/// Intent record.
pub const KIND_INTENT: u16 = 4;
/// Mode-change record.
pub const KIND_MODE: u16 = 5;
/// Events record: consecutive inputs, 64 bytes each.
pub const KIND_EVENTS: u16 = 6;
/// Settings record: the digest of the run config's non-engine sections.
pub const KIND_SETTINGS: u16 = 7;
/// Close record: written last by a clean close, with the number of records before it. A journal
/// without one ended without closing (a crash, a kill) or lost its end (a segment cut short at a
/// record boundary, trailing segments removed): records may be missing.
pub const KIND_CLOSE: u16 = 8;
/// Reload record: the engine config a hot reload applied here (`ringmaker ctl reload`, SIGHUP).
/// Replay applies it at the same point.
pub const KIND_RELOAD: u16 = 9;
/// Most events in one events record (16 KiB of payload).
pub const EVENTS_PER_RECORD: usize = 256;

/// The inputs a record holds, in order: one for an event record, one or more for an events
/// record; `None` for other kinds.
pub fn events_in(kind: u16, payload: &[u8]) -> Option<EventsIn<'_>> {
    let ok = match kind {
        KIND_EVENT => payload.len() == Event::SIZE,
        KIND_EVENTS => !payload.is_empty() && payload.len() % Event::SIZE == 0,
        _ => return None,
    };
    Some(EventsIn {
        chunks: payload.chunks_exact(Event::SIZE),
        index: 0,
        bad_length: (!ok).then_some(payload.len()),
    })
}

/// The events of one record ([`events_in`]).
#[derive(Debug, Clone)]
pub struct EventsIn<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
    index: usize,
    bad_length: Option<usize>,
}

impl Iterator for EventsIn<'_> {
    type Item = anyhow::Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(len) = self.bad_length.take() {
            self.chunks = [].chunks_exact(Event::SIZE);
            return Some(Err(anyhow::anyhow!(
                "an events payload of {len} bytes (a multiple of {}, not 0, expected)",
                Event::SIZE
            )));
        }
        let chunk = self.chunks.next()?;
        let i = self.index;
        self.index += 1;
        Some(Event::from_bytes(chunk).with_context(|| format!("event {i} is undecodable")))
    }
}

/// The name of a record kind.
pub fn kind_name(kind: u16) -> &'static str {
    match kind {
        KIND_CONFIG => "config",
        KIND_EVENT => "event",
        KIND_BATCH_END => "batch_end",
        KIND_INTENT => "intent",
        KIND_MODE => "mode",
        KIND_EVENTS => "events",
        KIND_SETTINGS => "settings",
        KIND_CLOSE => "close",
        KIND_RELOAD => "reload",
        _ => "unknown",
    }
}

/// The record kind for a name (`--kind` filters).
pub fn kind_by_name(name: &str) -> Option<u16> {
    [
        KIND_CONFIG,
        KIND_EVENT,
        KIND_BATCH_END,
        KIND_INTENT,
        KIND_MODE,
        KIND_EVENTS,
        KIND_SETTINGS,
        KIND_CLOSE,
    ]
    .into_iter()
    .find(|&k| kind_name(k) == name)
}

/// SHA-256 of the engine version and the config text.
pub fn header_hash(config_text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!("ringmaker {}\n", env!("CARGO_PKG_VERSION")).as_bytes());
    // The event payload layout is the engine's, not the journal's: pin it too, so a journal
    // with another layout is reported as from a different engine rather than misread.
    h.update(format!("events v{}\n", engine::Event::LAYOUT_VERSION).as_bytes());
    h.update(config_text.as_bytes());
    h.finalize().into()
}

/// A [`Recorder`] that appends to a journal. The first append error stops further appends and
/// is kept: the caller checks [`JournalRecorder::failed`] after each batch and stops the run
/// (everything already appended stays readable).
#[derive(Debug)]
pub struct JournalRecorder {
    writer: Writer,
    error: Option<JournalError>,
    events: u64,
    keep: Keep,
}

/// How hard a journal works to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Paper and live runs: write-back is started every 65,536 records or second of journal
    /// time, and closing waits for the rest (`msync`): a power loss loses at most the last
    /// interval.
    Durable,
    /// Backtests, whose journal can be made again from the same config and recording: no
    /// write-back is asked for while running and none is waited for on close. Every record is
    /// in the page cache once it is appended (a crash of the process loses none); the kernel
    /// writes the pages to disk in its own time. Saves the backtest the write-back's page faults
    /// and syncs (about a tenth of its run).
    Reproducible,
}

impl JournalRecorder {
    /// Creates a journal in `dir` (which must not hold one) for an engine config alone (no
    /// runtime sections: their digest is that of none).
    pub fn create(
        dir: &Path,
        config: &Config,
        segment_size: u64,
        created_ns: u64,
    ) -> anyhow::Result<JournalRecorder> {
        Self::create_run(
            dir,
            &RunConfig::from_engine(config.clone()),
            segment_size,
            created_ns,
            Keep::Durable,
        )
    }

    /// Creates a journal in `dir` (which must not hold one) and writes the config record (the
    /// engine's part) and the settings record (the digest of the rest).
    pub fn create_run(
        dir: &Path,
        run: &RunConfig,
        segment_size: u64,
        created_ns: u64,
        keep: Keep,
    ) -> anyhow::Result<JournalRecorder> {
        let config = &run.engine;
        let writer = Writer::create(
            dir,
            WriterOptions {
                segment_size,
                durability: match keep {
                    Keep::Durable => Durability::PeriodicAsync {
                        every_records: 1 << 16,
                        every_ns: 1_000_000_000,
                    },
                    Keep::Reproducible => Durability::None,
                },
                header_hash: header_hash(&config.source),
                created_ns,
            },
        )
        .with_context(|| format!("creating the journal in {}", dir.display()))?;
        let mut r = JournalRecorder {
            writer,
            error: None,
            events: 0,
            keep,
        };
        r.append(KIND_CONFIG, 0, config.source.as_bytes());
        r.append(KIND_SETTINGS, 0, &run.settings_digest());
        if let Some(e) = r.error.take() {
            return Err(e).context("writing the config record");
        }
        Ok(r)
    }

    /// Reopens the journal in `dir` to continue it: a hot standby that has taken over its
    /// leader's journal, rebuilt from the archive, appends after the last record it replayed
    /// (the sequence goes on). `dir`'s config must be `run`'s engine config (the header's hash
    /// is checked); `events` is how many events the journal holds. A settings record (this run's
    /// runtime sections) marks where this run's records start.
    pub fn continue_run(
        dir: &Path,
        run: &RunConfig,
        segment_size: u64,
        events: u64,
        created_ns: u64,
    ) -> anyhow::Result<JournalRecorder> {
        let writer = Writer::open_append(
            dir,
            WriterOptions {
                segment_size,
                durability: Durability::PeriodicAsync {
                    every_records: 1 << 16,
                    every_ns: 1_000_000_000,
                },
                header_hash: header_hash(&run.engine.source),
                created_ns,
            },
        )
        .with_context(|| format!("continuing the journal in {}", dir.display()))?;
        let mut r = JournalRecorder {
            writer,
            error: None,
            events,
            keep: Keep::Durable,
        };
        r.append(KIND_SETTINGS, 0, &run.settings_digest());
        if let Some(e) = r.error.take() {
            return Err(e).context("writing the settings record");
        }
        Ok(r)
    }

    /// Appends an engine output (an intent or a mode change, as [`Replayer::take_unjournaled`]
    /// gives them): what the engine produced at the end of a journal cut short, journaled by the
    /// run that continues it so that the journal replays whole. Any other kind is refused.
    pub fn append_output(&mut self, kind: u16, t: i64, payload: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            kind == KIND_INTENT || kind == KIND_MODE,
            "not an engine output: record kind {kind}"
        );
        self.append(kind, t, payload);
        match &self.error {
            Some(e) => Err(anyhow::anyhow!("appending to the journal: {e}")),
            None => Ok(()),
        }
    }

    #[inline]
    fn append(&mut self, kind: u16, t: i64, payload: &[u8]) {
        if self.error.is_some() {
            return;
        }
        match self.writer.append(kind, t, payload) {
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }

    /// Adds one input to the open events record (see the module docs).
    #[inline]
    fn extend_events(&mut self, ev: &Event) {
        if self.error.is_some() {
            return;
        }
        match self.writer.extend_with(
            KIND_EVENTS,
            ev.local_time_ns,
            EVENTS_PER_RECORD * Event::SIZE,
            |b| ev.write_bytes(b),
        ) {
            Ok(()) => self.events += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// The append error that stopped the journal, if any.
    pub fn failed(&self) -> Option<&JournalError> {
        self.error.as_ref()
    }

    /// Off-hot-path upkeep: preallocate the next segment, msync. Call between batches.
    pub fn housekeeping(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.writer.housekeeping() {
                self.error = Some(e);
            }
        }
    }

    /// Records in the journal so far (an events record counts once it is sealed).
    pub fn appended(&self) -> u64 {
        self.writer.next_seq() - 1
    }

    /// The segment being written and the bytes used so far ([`journal::Writer::used_bytes`]).
    pub fn position(&self) -> (u64, u64) {
        (self.writer.segment(), self.writer.used_bytes())
    }

    /// Events recorded (written into events records).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Writes the close record (see [`KIND_CLOSE`]) and closes the journal: flushed to disk when
    /// it is [`Keep::Durable`], left to the kernel's write-back when [`Keep::Reproducible`].
    pub fn close(mut self) -> anyhow::Result<()> {
        if let Some(e) = self.error {
            return Err(e).context("the journal stopped accepting records");
        }
        let mut totals = [0u8; 16];
        totals[..8].copy_from_slice(&self.appended().to_le_bytes());
        totals[8..].copy_from_slice(&self.events.to_le_bytes());
        self.append(KIND_CLOSE, 0, &totals);
        if let Some(e) = self.error {
            return Err(e).context("writing the close record");
        }
        match self.keep {
            Keep::Durable => self.writer.close(),
            Keep::Reproducible => self.writer.close_unsynced(),
        }
        .context("closing the journal")
    }
}

impl Recorder for JournalRecorder {
    #[inline]
    fn event(&mut self, ev: &Event) {
        self.extend_events(ev);
    }
    #[inline]
    fn batch_end(&mut self, now_ns: i64) {
        self.append(KIND_BATCH_END, now_ns, &now_ns.to_le_bytes());
    }
    #[inline]
    fn intent(&mut self, intent: &Intent) {
        self.append(KIND_INTENT, intent.time_ns, &intent.to_bytes());
    }
    #[inline]
    fn mode_change(&mut self, change: &ModeChange) {
        self.append(KIND_MODE, change.time_ns, &change.to_bytes());
    }
    fn reload(&mut self, now_ns: i64, engine_toml: &str) {
        self.append(KIND_RELOAD, now_ns, engine_toml.as_bytes());
    }
    fn idle(&mut self) {
        self.housekeeping();
    }
    fn failed(&self) -> Option<String> {
        self.error.as_ref().map(|e| e.to_string())
    }
}

/// The totals of a close record: records before it, events journaled.
pub fn close_totals(payload: &[u8]) -> Option<(u64, u64)> {
    let b: &[u8; 16] = payload.try_into().ok()?;
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    Some((word(0), word(8)))
}

/// How a journal ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A close record, last, whose count matches the records before it.
    Clean,
    /// No close record at the end: the writer stopped without closing, or the end was lost.
    NoCleanClose,
    /// A close record whose count does not match, or records after it.
    BadClose,
}

impl Ending {
    /// Of the last record (kind, sequence number, payload), if any.
    pub fn of_last(last: Option<(u16, u64, &[u8])>) -> Ending {
        match last {
            Some((KIND_CLOSE, seq, p)) => match close_totals(p) {
                Some((records, _)) if records + 1 == seq => Ending::Clean,
                _ => Ending::BadClose,
            },
            _ => Ending::NoCleanClose,
        }
    }

    /// What to tell the user when it is not clean.
    pub fn problem(self) -> Option<&'static str> {
        match self {
            Ending::Clean => None,
            Ending::NoCleanClose => Some(
                "no clean close: the writer stopped without closing, or the journal's end is \
                 missing (a segment cut short, trailing segments removed): records may be missing",
            ),
            Ending::BadClose => Some(
                "the close record does not match the records before it: records are missing or \
                 were added",
            ),
        }
    }
}

/// One line of `ringmaker journal dump`.
pub fn describe(kind: u16, payload: &[u8]) -> String {
    match kind {
        KIND_CONFIG => format!("{} bytes of TOML", payload.len()),
        KIND_RELOAD => format!("a hot reload: {} bytes of engine TOML", payload.len()),
        KIND_CLOSE => match close_totals(payload) {
            Some((records, events)) => {
                format!("clean close after {records} records ({events} events)")
            }
            None => format!("malformed close record ({} bytes)", payload.len()),
        },
        KIND_SETTINGS => format!(
            "settings digest {}",
            payload
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        KIND_EVENT | KIND_EVENTS => match events_in(kind, payload) {
            Some(evs) => evs
                .map(|e| match e {
                    Ok(e) => describe_event(&e),
                    Err(e) => format!("{e:#}"),
                })
                .collect::<Vec<_>>()
                .join(" | "),
            None => "undecodable event".into(),
        },
        KIND_BATCH_END => "batch end".into(),
        KIND_INTENT => match Intent::from_bytes(payload) {
            Some(i) => format!(
                "{:?} {:?} inst={} cid={:#x} px={} qty={} tif={:?} forced={} intent_seq={}",
                i.kind,
                i.side,
                i.instrument,
                i.client_order_id,
                i.price,
                i.qty,
                i.tif,
                i.forced,
                i.seq
            ),
            None => "undecodable intent".into(),
        },
        KIND_MODE => match ModeChange::from_bytes(payload) {
            Some(m) => format!(
                "inst={} {:?} -> {:?} ({:?})",
                m.instrument, m.from, m.to, m.reason
            ),
            None => "undecodable mode change".into(),
        },
        _ => format!("{} bytes", payload.len()),
    }
}

/// One input, described for `journal dump` and divergence reports.
pub fn describe_event(e: &Event) -> String {
    let head = format!("{:?} inst={}", e.kind(), e.instrument());
    if let Some(l) = e.as_level() {
        return format!(
            "{head} {:?} px={} qty={} u={}{}{}",
            l.side,
            l.price,
            l.qty,
            l.update_id,
            if l.last_in_msg { " last" } else { "" },
            if l.snapshot { " snapshot" } else { "" }
        );
    }
    if let Some(t) = e.as_bbo() {
        return format!(
            "{head} bid={}x{} ask={}x{} u={}",
            t.bid_price, t.bid_qty, t.ask_price, t.ask_qty, t.update_id
        );
    }
    if let Some(t) = e.as_trade() {
        return format!(
            "{head} px={} qty={} id={} aggressor={:?}",
            t.price, t.qty, t.trade_id, t.aggressor
        );
    }
    if let Some(m) = e.as_mark_price() {
        return format!(
            "{head} mark={} index={} funding_e8={} next_funding_ms={}",
            m.mark_price, m.index_price, m.funding_rate_e8, m.next_funding_ms
        );
    }
    if let Some(x) = e.as_exec() {
        return format!(
            "{head} {:?} cid={:#x} venue_id={} px={} last={} cum={} fee={}{}{}{}",
            x.kind,
            x.client_order_id,
            x.venue_order_id,
            x.last_price,
            x.last_qty,
            x.cum_qty,
            x.fee,
            if x.reject_code != 0 {
                format!(" code={}", x.reject_code)
            } else {
                String::new()
            },
            if x.post_only_reject {
                " post-only-reject"
            } else {
                ""
            },
            if e.is_saturated() { " saturated" } else { "" }
        );
    }
    if let Some(v) = e.as_reconcile_order() {
        return format!(
            "{head} cid={:#x} venue_id={} {:?} px={} qty={} cum={} {}",
            v.client_order_id,
            v.venue_order_id,
            v.side,
            v.price,
            v.qty,
            v.cum_qty,
            if v.open { "open" } else { "closed" }
        );
    }
    if let Some(p) = e.as_reconcile_position() {
        let from = if p.streamed { " streamed" } else { "" };
        return format!("{head} qty={} entry_px={}{from}", p.qty, p.entry_price);
    }
    if let Some(l) = e.as_firm_limit() {
        return format!(
            "{head} FirmLimit long_units={} short_units={}{}",
            l.long_units,
            l.short_units,
            if l.halt { " halt" } else { "" }
        );
    }
    if let Some(r) = e.as_clock_reading() {
        let ms = |v: Option<i64>| v.map_or("-".to_string(), |v| format!("{:.3}", v as f64 / 1e6));
        return format!(
            "{head} ClockReading offset_ms={} spread_ms={} adjtimex={} maxerror_us={} esterror_us={}{}",
            ms(r.offset_ns),
            ms(r.spread_ns),
            match r.synchronised {
                Some(true) => "synchronised",
                Some(false) => "unsynchronised",
                None => "unreadable",
            },
            r.maxerror_us,
            r.esterror_us,
            if r.failing { " FAILING" } else { "" }
        );
    }
    if let Some(c) = e.as_control() {
        return format!("{head} {c:?}");
    }
    match e.kind() {
        engine::EventKind::BookInvalid => format!(
            "{head} reason={:?} last_good={} offending={}",
            e.status_reason(),
            e.status_update_id(),
            e.offending_update_id()
        ),
        engine::EventKind::BookReset | engine::EventKind::BookValid => {
            format!("{head} u={}", e.status_update_id())
        }
        _ => head,
    }
}

/// Opens the journal in `dir` (a torn tail tolerated) and reads its first record, the config:
/// the reader (its records after the config are `records().skip(1)`), the run config, and
/// whether the config record matches the header's hash (it does not for another version's).
pub fn open_journal(dir: &Path) -> anyhow::Result<(Reader, RunConfig, bool)> {
    let reader = Reader::open(dir, RecoveryMode::TolerateTornTail)
        .with_context(|| format!("opening the journal in {}", dir.display()))?;
    let (run, matches_header) = {
        let first = match reader.records().next() {
            Some(r) => r.context("reading the first record")?,
            None => bail!("the journal is empty: no config record"),
        };
        if first.kind != KIND_CONFIG {
            bail!(
                "the first record (seq {}) is a {}, not the config",
                first.seq,
                kind_name(first.kind)
            );
        }
        let text = std::str::from_utf8(first.payload).context("the config record is not UTF-8")?;
        // Journals before the run config held the whole file (with [cpu] / [rings]): read both.
        let run = RunConfig::from_toml(text).context("the journaled config is invalid")?;
        (run, header_hash(text) == reader.header().header_hash)
    };
    Ok((reader, run, matches_header))
}

/// Outcome of a replay.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Every intent and mode change matched.
    Identical {
        /// Events fed.
        events: u64,
        /// Intents compared.
        intents: u64,
        /// Hot reloads applied (reload records).
        reloads: u64,
        /// How the journal ends: only a clean close says nothing is missing after the last
        /// record replayed.
        ending: Ending,
        /// A torn tail after the last complete record (a crash mid-append).
        torn_tail: Option<journal::TornTail>,
    },
    /// The first difference.
    Diverged {
        /// Journal sequence of the record where it showed.
        seq: u64,
        /// What the journal holds.
        expected: String,
        /// What the engine produced.
        got: String,
    },
}

#[derive(Default)]
struct Produced {
    out: VecDeque<(u16, Vec<u8>)>,
}

impl Sink for Produced {
    fn intent(&mut self, i: &Intent) {
        self.out.push_back((KIND_INTENT, i.to_bytes().to_vec()));
    }
    fn mode_change(&mut self, m: &ModeChange) {
        self.out.push_back((KIND_MODE, m.to_bytes().to_vec()));
    }
}

/// Rebuilds the engine from the journaled config, feeds it the journaled inputs and batch ends,
/// and compares every intent and mode change it produces with the journaled ones, in order.
/// A torn tail (a crash mid-append) is tolerated: the replay covers every complete record.
pub fn replay(dir: &Path) -> anyhow::Result<ReplayOutcome> {
    let (reader, run, matches_header) = open_journal(dir)?;
    if !matches_header {
        eprintln!(
            "ringmaker replay: warning: the journal was written by a different ringmaker version \
             or its config record does not match its header; divergence may follow"
        );
    }
    let mut replayer = Replayer::new(&run.engine);
    for rec in reader.records().skip(1) {
        let rec = rec.context("reading the journal")?;
        if let Some(d) = replayer.feed(&rec)? {
            return Ok(d);
        }
    }
    if let Some(d) = pending_divergence(&mut replayer.produced, u64::MAX) {
        return Ok(d);
    }
    Ok(ReplayOutcome::Identical {
        events: replayer.events,
        intents: replayer.intents,
        reloads: replayer.reloads,
        ending: replayer.ending(),
        torn_tail: reader.torn_tail().context("checking the journal's tail")?,
    })
}

/// An engine rebuilt from a journal's config and fed its records one at a time, every output
/// compared with the journaled ones: [`replay`] over a whole journal, and a hot standby over the
/// leader's journal as it arrives from the archive (`crate::standby`).
pub struct Replayer {
    engine: Engine,
    produced: Produced,
    /// Events fed.
    pub events: u64,
    /// Intents compared.
    pub intents: u64,
    /// Hot reloads applied.
    pub reloads: u64,
    closed_at: Option<(u64, u64)>,
    after_close: bool,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayer")
            .field("events", &self.events)
            .field("intents", &self.intents)
            .field("pending", &self.produced.out.len())
            .finish_non_exhaustive()
    }
}

impl Replayer {
    /// A new engine for the journaled engine config.
    pub fn new(cfg: &Config) -> Replayer {
        Replayer {
            engine: Engine::new(cfg),
            produced: Produced::default(),
            events: 0,
            intents: 0,
            reloads: 0,
            closed_at: None,
            after_close: false,
        }
    }

    /// Feeds one record after the config record: an input or batch end goes to the engine, an
    /// intent or mode change is compared with what the engine produced. `Some`: the first
    /// difference. An error: a record that cannot be read (bad payload, unknown kind, a second
    /// config).
    pub fn feed(&mut self, rec: &journal::Record<'_>) -> anyhow::Result<Option<ReplayOutcome>> {
        if self.closed_at.is_some() {
            self.after_close = true;
        }
        let produced = &mut self.produced;
        match rec.kind {
            KIND_EVENT | KIND_EVENTS => {
                let evs = events_in(rec.kind, rec.payload).into_iter().flatten();
                for ev in evs {
                    let ev = ev.with_context(|| format!("seq {}", rec.seq))?;
                    if let Some(d) = pending_divergence(produced, rec.seq) {
                        return Ok(Some(d));
                    }
                    self.engine.on_event(&ev, produced);
                    self.events += 1;
                }
            }
            KIND_BATCH_END => {
                if let Some(d) = pending_divergence(produced, rec.seq) {
                    return Ok(Some(d));
                }
                self.engine.on_batch_end(produced);
            }
            KIND_INTENT | KIND_MODE => {
                if rec.kind == KIND_INTENT {
                    self.intents += 1;
                }
                let expected = || {
                    format!(
                        "{} {}",
                        kind_name(rec.kind),
                        describe(rec.kind, rec.payload)
                    )
                };
                match produced.out.pop_front() {
                    Some((k, bytes)) if k == rec.kind && bytes == rec.payload => {}
                    Some((k, bytes)) => {
                        return Ok(Some(ReplayOutcome::Diverged {
                            seq: rec.seq,
                            expected: expected(),
                            got: format!("{} {}", kind_name(k), describe(k, &bytes)),
                        }))
                    }
                    None => {
                        return Ok(Some(ReplayOutcome::Diverged {
                            seq: rec.seq,
                            expected: expected(),
                            got: "nothing".into(),
                        }))
                    }
                }
            }
            KIND_RELOAD => {
                if let Some(d) = pending_divergence(produced, rec.seq) {
                    return Ok(Some(d));
                }
                let text = std::str::from_utf8(rec.payload)
                    .with_context(|| format!("seq {}: the reload record is not UTF-8", rec.seq))?;
                let cfg = Config::from_toml(text)
                    .with_context(|| format!("seq {}: the reloaded config is invalid", rec.seq))?;
                self.engine
                    .reconfigure(&cfg)
                    .with_context(|| format!("seq {}: the reload cannot be applied", rec.seq))?;
                self.reloads += 1;
            }
            KIND_CONFIG => bail!("seq {}: a second config record", rec.seq),
            // The runtime's settings do not change what the engine does.
            KIND_SETTINGS => {}
            KIND_CLOSE => {
                self.closed_at =
                    Some((rec.seq, close_totals(rec.payload).map_or(u64::MAX, |t| t.0)))
            }
            other => bail!("seq {}: unknown record kind {other}", rec.seq),
        }
        Ok(None)
    }

    /// How the records fed so far end.
    pub fn ending(&self) -> Ending {
        match self.closed_at {
            _ if self.after_close => Ending::BadClose,
            Some((seq, before)) if before + 1 == seq => Ending::Clean,
            Some(_) => Ending::BadClose,
            None => Ending::NoCleanClose,
        }
    }

    /// Whether a close record was fed (the journal's run has ended).
    pub fn closed(&self) -> bool {
        self.closed_at.is_some()
    }

    /// What the engine produced that the records fed so far do not hold yet (the outputs of the
    /// last batch that a journal cut short never got to): `(record kind, payload)`, in order,
    /// taken out.
    pub fn take_unjournaled(&mut self) -> Vec<(u16, Vec<u8>)> {
        self.produced.out.drain(..).collect()
    }

    /// The orders the engine holds open: `(instrument, client order id, side)`.
    pub fn open_orders(&self) -> Vec<(engine::InstrumentId, u64, engine::Side)> {
        let mut out = Vec::new();
        for i in 0..self.engine.instruments() as engine::InstrumentId {
            if let Some(v) = self.engine.instrument(i) {
                out.extend(v.orders.open().map(|o| (i, o.client_order_id, o.side)));
            }
        }
        out
    }

    /// The engine, with the state the records fed have built.
    pub fn into_engine(self) -> Engine {
        self.engine
    }
}

/// Before the next input: anything the engine produced that the journal did not record.
fn pending_divergence(p: &mut Produced, seq: u64) -> Option<ReplayOutcome> {
    p.out.pop_front().map(|(k, bytes)| ReplayOutcome::Diverged {
        seq,
        expected: "nothing (the journal has no such output here)".into(),
        got: format!("{} {}", kind_name(k), describe(k, &bytes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_dump_describes_venue_fields_and_reconcile_events() {
        let r = engine::ExecReport {
            kind: engine::ExecKind::Rejected,
            client_order_id: 0x1_0000_0000_0007,
            last_price: 0,
            last_qty: 0,
            cum_qty: 0,
            fee: 0,
            venue_order_id: 42,
            reject_code: -5022,
            taker: false,
            post_only_reject: true,
        };
        let d = describe_event(&Event::exec(1, 0, 0, r));
        assert!(d.contains("venue_id=42") && d.contains("code=-5022"), "{d}");
        let o = engine::VenueOrder {
            client_order_id: 7,
            venue_order_id: 9,
            side: engine::Side::Ask,
            price: 100,
            qty: 2,
            cum_qty: 1,
            open: true,
        };
        let d = describe_event(&Event::reconcile_order(0, 0, 0, o));
        assert!(
            d.starts_with("ReconcileOrder") && d.contains("venue_id=9 Ask"),
            "{d}"
        );
        assert!(d.ends_with("open"), "{d}");
        let p = engine::VenuePosition {
            qty: -3,
            entry_price: 99,
            streamed: false,
        };
        let d = describe_event(&Event::reconcile_position(0, 0, 0, p));
        assert_eq!(d, "ReconcilePosition inst=0 qty=-3 entry_px=99");
        let s = engine::VenuePosition {
            streamed: true,
            ..p
        };
        let d = describe_event(&Event::reconcile_position(0, 0, 0, s));
        assert_eq!(d, "ReconcilePosition inst=0 qty=-3 entry_px=99 streamed");
    }

    #[test]
    fn events_in_yields_every_event_of_either_kind_and_types_bad_payloads() {
        let a = Event::timer(5);
        let b = Event::control(0, 6, engine::Command::Halt);
        let one = a.to_bytes();
        let two = [a.to_bytes(), b.to_bytes()].concat();
        let got: Vec<Event> = events_in(KIND_EVENT, &one)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(got, [a]);
        let got: Vec<Event> = events_in(KIND_EVENTS, &two)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(got, [a, b]);
        assert!(events_in(KIND_INTENT, &one).is_none());
        assert!(events_in(KIND_BATCH_END, &[0; 8]).is_none());
        // Wrong lengths: one error, then nothing.
        for (kind, len) in [
            (KIND_EVENT, 0),
            (KIND_EVENT, 128),
            (KIND_EVENT, 63),
            (KIND_EVENTS, 0),
            (KIND_EVENTS, 65),
            (KIND_EVENTS, 127),
        ] {
            let bytes = vec![1u8; len];
            let items: Vec<_> = events_in(kind, &bytes).unwrap().collect();
            assert_eq!(items.len(), 1, "{kind} {len}");
            assert!(items[0].is_err());
        }
        // An undecodable event in the middle: an error naming it, the others decoded.
        let mut bad = [a.to_bytes(), [0xFF; 64], b.to_bytes()].concat();
        let items: Vec<_> = events_in(KIND_EVENTS, &bad).unwrap().collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[2].is_ok());
        let e = items[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("event 1"), "{e}");
        // The description used by `journal dump` never panics either.
        bad.truncate(100);
        assert!(describe(KIND_EVENTS, &bad).contains("multiple of 64"));
    }

    /// Issue 11: a journal whose writer never closed it (its end at a record boundary, as when
    /// a process is killed or the last records are lost) replays "identical" as far as it goes
    /// but does not pass as complete; a closed one does.
    #[test]
    fn only_a_clean_close_makes_a_journal_complete() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/default.toml"
        ))
        .unwrap();
        let cfg = Config::from_toml(&text).unwrap();
        for close in [false, true] {
            let dir = test_support::TempDir::new(&format!("close-{close}"));
            let j = dir.join("journal");
            let mut rec = JournalRecorder::create(&j, &cfg, 1 << 20, 0).unwrap();
            for t in 1..=10 {
                rec.event(&Event::timer(t));
                rec.batch_end(t);
            }
            if close {
                rec.close().unwrap();
            } else {
                drop(rec);
            }
            match replay(&j).unwrap() {
                ReplayOutcome::Identical { events, ending, .. } => {
                    assert_eq!(events, 10);
                    let want = if close {
                        Ending::Clean
                    } else {
                        Ending::NoCleanClose
                    };
                    assert_eq!(ending, want);
                    assert_eq!(ending.problem().is_none(), close);
                }
                other => panic!("{other:?}"),
            }
        }
        // A close record whose count does not match what precedes it.
        assert_eq!(
            Ending::of_last(Some((KIND_CLOSE, 5, &[9u8; 16][..]))),
            Ending::BadClose
        );
        let mut ok = [0u8; 16];
        ok[..8].copy_from_slice(&4u64.to_le_bytes());
        assert_eq!(
            Ending::of_last(Some((KIND_CLOSE, 5, &ok[..]))),
            Ending::Clean
        );
        assert_eq!(
            Ending::of_last(Some((KIND_BATCH_END, 5, &[][..]))),
            Ending::NoCleanClose
        );
    }
}
