//! The engine host: the one place that feeds the engine, so every input, batch boundary, intent
//! and mode change goes through a [`Recorder`] (the journal) in exactly the order the engine saw
//! it. Backtests, paper runs and replay all drive the engine through this.

use engine::{Engine, Event, Intent, ModeChange, Sink};

/// Receives everything the engine consumed and produced, in order.
pub trait Recorder {
    /// An input event, just before the engine consumes it.
    fn event(&mut self, ev: &Event);
    /// The end of a batch (the engine's requote point).
    fn batch_end(&mut self, now_ns: i64);
    /// An intent the engine produced.
    fn intent(&mut self, intent: &Intent);
    /// A mode change the engine produced.
    fn mode_change(&mut self, change: &ModeChange);
    /// A hot reload applied to the engine at engine time `now_ns`: the new engine config's text
    /// (journaled so replay applies it at the same point). Rare; may allocate.
    fn reload(&mut self, now_ns: i64, engine_toml: &str) {
        let _ = (now_ns, engine_toml);
    }
    /// Called between batches, off the hot path (e.g. journal segment preallocation, msync).
    fn idle(&mut self) {}
    /// Whether recording has failed; the run must stop (nothing already recorded is lost).
    fn failed(&self) -> Option<String> {
        None
    }
}

/// Records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRecorder;

impl Recorder for NoRecorder {
    fn event(&mut self, _: &Event) {}
    fn batch_end(&mut self, _: i64) {}
    fn intent(&mut self, _: &Intent) {}
    fn mode_change(&mut self, _: &ModeChange) {}
}

/// Tees the engine's outputs into the recorder and the caller's sink.
struct Tee<'a, R, S> {
    rec: &'a mut R,
    sink: &'a mut S,
}

impl<R: Recorder, S: Sink> Sink for Tee<'_, R, S> {
    #[inline]
    fn intent(&mut self, intent: &Intent) {
        self.rec.intent(intent);
        self.sink.intent(intent);
    }

    #[inline]
    fn mode_change(&mut self, change: &ModeChange) {
        self.rec.mode_change(change);
        self.sink.mode_change(change);
    }
}

/// An engine plus its recorder.
#[derive(Debug)]
pub struct Host<R> {
    /// The engine (read-only use by callers; inputs go through [`Host::event`]).
    pub engine: Engine,
    /// The recorder.
    pub recorder: R,
}

impl<R: Recorder> Host<R> {
    /// Hosts `engine`, recording into `recorder`.
    pub fn new(engine: Engine, recorder: R) -> Host<R> {
        Host { engine, recorder }
    }

    /// One input event.
    #[inline]
    pub fn event(&mut self, ev: &Event, sink: &mut impl Sink) {
        self.recorder.event(ev);
        let mut tee = Tee {
            rec: &mut self.recorder,
            sink,
        };
        self.engine.on_event(ev, &mut tee);
    }

    /// A hot reload: applies `cfg` to the engine ([`Engine::reconfigure`]) and, if it was
    /// applied, records it. A refused config changes nothing and records nothing.
    pub fn reload(&mut self, cfg: &engine::Config) -> Result<(), engine::ReloadRefused> {
        self.engine.reconfigure(cfg)?;
        self.recorder.reload(self.engine.now_ns(), &cfg.source);
        Ok(())
    }

    /// The end of a batch.
    #[inline]
    pub fn batch_end(&mut self, sink: &mut impl Sink) {
        self.recorder.batch_end(self.engine.now_ns());
        let mut tee = Tee {
            rec: &mut self.recorder,
            sink,
        };
        self.engine.on_batch_end(&mut tee);
    }
}

/// A [`Recorder`] that holds what it is given, in order, and hands it to the inner recorder on
/// [`Deferred::flush`] (and on `idle`, and when its buffers are full).
///
/// The paper pipeline's engine thread flushes right after a batch's intents are published, so
/// journaling the batch's inputs (a venue depth message can hold hundreds of levels) is not on
/// the way from tick to intent. The journal's content and order are exactly what the inner
/// recorder would have been given directly: only the moment of writing moves, by one batch.
/// The cost: an intent can be in the output ring a few microseconds before its journal record
/// is written, so a crash in between loses that batch's records (the venue's open orders are
/// reconciled on restart in any case). Holding an input is a 64-byte copy into a buffer
/// allocated up front; the other records, fewer, go into a second one with the number of
/// inputs before them.
#[derive(Debug)]
pub struct Deferred<R> {
    inner: R,
    held: Load,
}

impl<R: Recorder> Deferred<R> {
    /// Holds up to `capacity` inputs and `capacity` other records (allocated now) before
    /// flushing on its own.
    pub fn new(inner: R, capacity: usize) -> Deferred<R> {
        Deferred {
            inner,
            held: Load::with_capacity(capacity.max(1)),
        }
    }

    /// Hands everything held to the inner recorder, in order.
    #[inline]
    pub fn flush(&mut self) {
        self.held.replay(&mut self.inner);
    }

    /// Records held, not yet flushed.
    pub fn held(&self) -> usize {
        self.held.events.len() + self.held.others.len()
    }

    /// The inner recorder.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Flushes and returns the inner recorder.
    pub fn into_inner(mut self) -> R {
        self.flush();
        self.inner
    }

    #[inline]
    fn hold(&mut self, s: Sent) {
        if self.held.others_full() {
            self.flush();
        }
        self.held.push_other(s);
    }
}

impl<R: Recorder> Recorder for Deferred<R> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        if self.held.events_full() {
            self.flush();
        }
        self.held.events.push(*ev);
    }
    #[inline]
    fn batch_end(&mut self, now_ns: i64) {
        self.hold(Sent::BatchEnd(now_ns));
    }
    #[inline]
    fn intent(&mut self, intent: &Intent) {
        self.hold(Sent::Intent(*intent));
    }
    #[inline]
    fn mode_change(&mut self, change: &ModeChange) {
        self.hold(Sent::Mode(*change));
    }
    fn reload(&mut self, now_ns: i64, engine_toml: &str) {
        // Rare: everything held goes first, so the order is kept.
        self.flush();
        self.inner.reload(now_ns, engine_toml);
    }
    fn idle(&mut self) {
        self.flush();
        self.inner.idle();
    }
    fn failed(&self) -> Option<String> {
        self.inner.failed()
    }
}

/// A record other than an input, held by [`Deferred`] or handed to [`Threaded`]'s writer thread.
#[derive(Debug)]
enum Sent {
    BatchEnd(i64),
    Intent(Intent),
    Mode(ModeChange),
    Reload(i64, Box<str>),
    Idle,
}

/// Records held in order ([`Deferred`]), or handed to [`Threaded`]'s writer thread at a time:
/// inputs, and the other records each with the number of inputs before it.
#[derive(Debug)]
struct Load {
    events: Vec<Event>,
    others: Vec<(usize, Sent)>,
}

impl Load {
    fn with_capacity(n: usize) -> Load {
        Load {
            events: Vec::with_capacity(n),
            others: Vec::with_capacity(n),
        }
    }

    /// Whether another event would make `events` grow (the owner hands the load on first).
    #[inline]
    fn events_full(&self) -> bool {
        self.events.len() == self.events.capacity()
    }

    /// Whether another record would make `others` grow.
    #[inline]
    fn others_full(&self) -> bool {
        self.others.len() == self.others.capacity()
    }

    /// A record other than an event, placed after the events given so far.
    #[inline]
    fn push_other(&mut self, s: Sent) {
        self.others.push((self.events.len(), s));
    }

    /// Hands everything to `r`, in the order it was given; leaves the load empty.
    fn replay(&mut self, r: &mut impl Recorder) {
        let mut next = 0;
        for (before, s) in self.others.drain(..) {
            for e in &self.events[next..before] {
                r.event(e);
            }
            next = before;
            match s {
                Sent::BatchEnd(t) => r.batch_end(t),
                Sent::Intent(i) => r.intent(&i),
                Sent::Mode(m) => r.mode_change(&m),
                Sent::Reload(t, text) => r.reload(t, &text),
                Sent::Idle => r.idle(),
            }
        }
        for e in &self.events[next..] {
            r.event(e);
        }
        self.events.clear();
    }
}

/// A [`Recorder`] whose inner recorder runs on a thread of its own: the engine thread copies
/// each record into a buffer allocated up front ([`THREADED_LOAD`] inputs and as many other
/// records) and hands full buffers over a bounded channel ([`THREADED_IN_FLIGHT`] waiting; the
/// writer sends them back for reuse, so none is allocated once warmed up). The writer gives the
/// inner recorder exactly what it would have been given directly, in the same order, `idle`
/// included: the journal it writes is the same, byte for byte. What moves off the engine thread
/// is the journal's own work (copying into the mapped segment, its page faults, segment
/// preparation).
///
/// A backtest's: a crash loses the records still in buffers. A failure of the inner recorder
/// ([`Recorder::failed`]) is seen by the engine thread within a few buffers; the records before
/// it are intact, as with the recorder used directly.
#[derive(Debug)]
pub struct Threaded<R: Recorder + Send + 'static> {
    load: Load,
    tx: Option<std::sync::mpsc::SyncSender<Load>>,
    back: std::sync::mpsc::Receiver<Load>,
    failed: std::sync::Arc<std::sync::OnceLock<String>>,
    writer: Option<std::thread::JoinHandle<R>>,
}

/// Inputs (and, separately, other records) [`Threaded`] buffers before handing them over.
pub const THREADED_LOAD: usize = 8192;
/// Full buffers that may wait for [`Threaded`]'s writer.
pub const THREADED_IN_FLIGHT: usize = 3;

impl<R: Recorder + Send + 'static> Threaded<R> {
    /// Moves `inner` to a new writer thread named `name`.
    pub fn spawn(inner: R, name: &str) -> std::io::Result<Threaded<R>> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Load>(THREADED_IN_FLIGHT);
        let (back_tx, back) = std::sync::mpsc::sync_channel::<Load>(THREADED_IN_FLIGHT + 1);
        let failed = std::sync::Arc::new(std::sync::OnceLock::new());
        let seen = std::sync::Arc::clone(&failed);
        let writer = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut inner = inner;
                for mut load in rx {
                    load.replay(&mut inner);
                    if let Some(e) = inner.failed() {
                        let _ = seen.set(e);
                    }
                    let _ = back_tx.try_send(load);
                }
                inner
            })?;
        Ok(Threaded {
            load: Load::with_capacity(THREADED_LOAD),
            tx: Some(tx),
            back,
            failed,
            writer: Some(writer),
        })
    }

    /// Hands the buffered records over, and takes an empty buffer back (or a new one while
    /// fewer than [`THREADED_IN_FLIGHT`] + 2 exist).
    fn hand_over(&mut self) {
        let fresh = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Load::with_capacity(THREADED_LOAD));
        let full = std::mem::replace(&mut self.load, fresh);
        if let Some(tx) = &self.tx {
            if tx.send(full).is_err() {
                // The writer is gone (it panicked): said by `failed`, and at `into_inner`.
                self.tx = None;
                let _ = self.failed.set("the journal writer thread stopped".into());
            }
        }
    }

    #[inline]
    fn send(&mut self, s: Sent) {
        if self.load.others_full() {
            self.hand_over();
        }
        self.load.push_other(s);
    }

    /// Hands over what is buffered, waits for the writer to record it all, and returns the
    /// inner recorder.
    pub fn into_inner(mut self) -> anyhow::Result<R> {
        self.hand_over();
        self.tx = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(inner)) => Ok(inner),
            _ => anyhow::bail!("the journal writer thread panicked"),
        }
    }
}

impl<R: Recorder + Send + 'static> Drop for Threaded<R> {
    /// Dropped without [`Threaded::into_inner`] (a run that failed): what is buffered still
    /// reaches the inner recorder, and the writer is waited for, so it is not cut off by the
    /// process ending.
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.hand_over();
            self.tx = None;
            if let Some(w) = self.writer.take() {
                let _ = w.join();
            }
        }
    }
}

impl<R: Recorder + Send + 'static> Recorder for Threaded<R> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        if self.load.events_full() {
            self.hand_over();
        }
        self.load.events.push(*ev);
    }
    #[inline]
    fn batch_end(&mut self, now_ns: i64) {
        self.send(Sent::BatchEnd(now_ns));
    }
    #[inline]
    fn intent(&mut self, intent: &Intent) {
        self.send(Sent::Intent(*intent));
    }
    #[inline]
    fn mode_change(&mut self, change: &ModeChange) {
        self.send(Sent::Mode(*change));
    }
    fn reload(&mut self, now_ns: i64, engine_toml: &str) {
        self.send(Sent::Reload(now_ns, engine_toml.into()));
    }
    fn idle(&mut self) {
        self.send(Sent::Idle);
    }
    fn failed(&self) -> Option<String> {
        self.failed.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Command, Side};

    /// Writes down what it is given.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Recorder for Log {
        fn event(&mut self, ev: &Event) {
            self.0.push(format!("event {}", ev.local_time_ns));
        }
        fn batch_end(&mut self, now_ns: i64) {
            self.0.push(format!("batch_end {now_ns}"));
        }
        fn intent(&mut self, intent: &Intent) {
            self.0.push(format!("intent {}", intent.client_order_id));
        }
        fn mode_change(&mut self, change: &ModeChange) {
            self.0.push(format!("mode {}", change.time_ns));
        }
        fn idle(&mut self) {
            self.0.push("idle".into());
        }
    }

    fn script(r: &mut impl Recorder, k: i64) {
        r.event(&Event::timer(k));
        r.event(&Event::control(0, k + 1, Command::Halt));
        r.intent(&Intent::cancel(0, Side::Bid, k as u64, true, k, 0));
        r.batch_end(k + 2);
        r.mode_change(&ModeChange {
            instrument: 0,
            from: engine::Mode::Normal,
            to: engine::Mode::Halted,
            reason: engine::ModeReason::KillSwitch,
            time_ns: k + 3,
        });
        r.intent(&Intent::cancel(0, Side::Ask, k as u64 + 1, true, k, 1));
    }

    #[test]
    fn deferred_hands_over_the_same_records_in_the_same_order() {
        let mut direct = Log::default();
        // Capacity 3: a script holds 2 inputs and 4 other records, so it flushes on its own
        // (both buffers fill up at some point).
        let mut deferred = Deferred::new(Log::default(), 3);
        for k in 0..5 {
            script(&mut direct, k * 10);
            script(&mut deferred, k * 10);
            if k == 2 {
                deferred.flush();
                assert_eq!(deferred.held(), 0);
            }
        }
        assert!(deferred.held() > 0);
        assert!(deferred.inner().0.len() < direct.0.len());
        let log = deferred.into_inner();
        assert_eq!(log.0, direct.0);
    }

    #[test]
    fn idle_flushes_before_the_inner_idle() {
        let mut d = Deferred::new(Log::default(), 64);
        d.event(&Event::timer(7));
        d.batch_end(7);
        assert!(d.inner().0.is_empty());
        d.idle();
        assert_eq!(d.inner().0, ["event 7", "batch_end 7", "idle"]);
    }

    #[test]
    fn threaded_hands_its_writer_the_same_records_in_the_same_order() {
        let mut direct = Log::default();
        let mut threaded = Threaded::spawn(Log::default(), "test-writer").unwrap();
        // More than a few buffers' worth of both kinds, with idles and a reload among them.
        for k in 0..(3 * THREADED_LOAD as i64 / 2) {
            script(&mut direct, k * 10);
            script(&mut threaded, k * 10);
            if k % 1000 == 999 {
                direct.idle();
                threaded.idle();
            }
        }
        assert!(threaded.failed().is_none());
        let log = threaded.into_inner().unwrap();
        assert_eq!(log.0.len(), direct.0.len());
        assert_eq!(log.0, direct.0);
    }

    /// Fails after `after` events.
    struct Failing {
        after: u64,
        seen: u64,
    }

    impl Recorder for Failing {
        fn event(&mut self, _: &Event) {
            self.seen += 1;
        }
        fn batch_end(&mut self, _: i64) {}
        fn intent(&mut self, _: &Intent) {}
        fn mode_change(&mut self, _: &ModeChange) {}
        fn failed(&self) -> Option<String> {
            (self.seen > self.after).then(|| "disk full".to_string())
        }
    }

    #[test]
    fn a_failure_on_the_writer_thread_reaches_the_engine_thread() {
        let mut t = Threaded::spawn(Failing { after: 10, seen: 0 }, "test-fail").unwrap();
        let mut k = 0;
        while t.failed().is_none() {
            t.event(&Event::timer(k));
            k += 1;
            assert!(k < 100 * THREADED_LOAD as i64, "the failure never showed");
        }
        assert_eq!(t.failed().as_deref(), Some("disk full"));
        assert!(t.into_inner().unwrap().seen > 10);
    }

    #[test]
    fn a_threaded_recorder_dropped_unfinished_still_records_everything() {
        #[derive(Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl Recorder for Shared {
            fn event(&mut self, ev: &Event) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("event {}", ev.local_time_ns));
            }
            fn batch_end(&mut self, _: i64) {}
            fn intent(&mut self, _: &Intent) {}
            fn mode_change(&mut self, _: &ModeChange) {}
        }
        let seen = Shared::default();
        let log = std::sync::Arc::clone(&seen.0);
        let mut t = Threaded::spawn(seen, "test-drop").unwrap();
        for k in 0..(THREADED_LOAD as i64 + 10) {
            t.event(&Event::timer(k));
        }
        drop(t);
        assert_eq!(log.lock().unwrap().len(), THREADED_LOAD + 10);
    }
}
