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
