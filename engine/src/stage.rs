//! Requote stages, for per-stage timing in benches: the engine never reads a clock itself, it
//! tells a [`StageClock`] where each stage ends.

/// A stage of the requote, for per-stage timing in benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Fair value, reservation price, grid.
    Pricing,
    /// Risk clamp and mode.
    Risk,
    /// Diff against working orders and intent emission.
    Diff,
}

/// Told when each stage of a requote ends. The engine never reads a clock itself; a bench
/// passes one that does. [`NoClock`] is the zero-cost default.
pub trait StageClock {
    /// Called at the start of a requote.
    fn start(&mut self) {}
    /// Called when `stage` has finished.
    fn mark(&mut self, stage: Stage);
}

/// A [`StageClock`] that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClock;

impl StageClock for NoClock {
    #[inline(always)]
    fn mark(&mut self, _stage: Stage) {}
}
