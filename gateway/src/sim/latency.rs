//! Latency models.

use super::LatencyModel;
use engine::{ExecReport, Intent};

/// Fixed delays: every intent takes `entry_ns` to reach the venue, every report `response_ns`
/// to reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConstantLatency {
    /// Engine → venue (order entry), ns.
    pub entry_ns: i64,
    /// Venue → engine (responses and user stream), ns.
    pub response_ns: i64,
}

impl ConstantLatency {
    /// Delays of `entry_ns` one way and `response_ns` the other.
    pub fn new(entry_ns: i64, response_ns: i64) -> ConstantLatency {
        ConstantLatency {
            entry_ns,
            response_ns,
        }
    }
}

impl LatencyModel for ConstantLatency {
    #[inline]
    fn entry_ns(&mut self, _intent: &Intent, _sent_ns: i64) -> i64 {
        self.entry_ns
    }

    #[inline]
    fn response_ns(&mut self, _report: &ExecReport, _venue_ns: i64) -> i64 {
        self.response_ns
    }
}
