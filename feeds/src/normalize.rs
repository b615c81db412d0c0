//! Whole recordings turned into engine events in memory (for tests and benches), through the one
//! [`FeedHandler`].

use crate::binance::sync::SyncRule;
use crate::handler::{FeedHandler, MarketFeed, Step};
use crate::recording::OpenError;
use crate::source::RecordingSource;
use engine::{Event, Instrument};
use std::path::Path;

/// A recording turned into engine events, with the end of each venue message marked.
#[derive(Debug, Default, Clone)]
pub struct RecordedEvents {
    /// Events in arrival order.
    pub events: Vec<Event>,
    /// Index one past the last event of each message that produced events.
    pub batch_ends: Vec<usize>,
    /// Lines that could not be read or decoded.
    pub bad_lines: u64,
}

impl RecordedEvents {
    /// The events in batches (one per venue message).
    pub fn batches(&self) -> impl Iterator<Item = &[Event]> {
        let mut start = 0;
        self.batch_ends.iter().map(move |&end| {
            let b = &self.events[start..end];
            start = end;
            b
        })
    }
}

/// Reads whole recordings into engine events, every instrument with `rule`.
pub fn recorded_events<P: AsRef<Path>>(
    paths: &[P],
    instruments: &[Instrument],
    rule: SyncRule,
) -> Result<RecordedEvents, OpenError> {
    let mut feed = MarketFeed::new(
        RecordingSource::open(paths)?,
        FeedHandler::with_rule(instruments, rule),
    );
    let mut r = RecordedEvents::default();
    while let Some(step) = feed.next(&mut r.events) {
        match step {
            Step::Input { .. } => {
                if r.batch_ends.last().copied().unwrap_or(0) != r.events.len() {
                    r.batch_ends.push(r.events.len());
                }
            }
            Step::SourceError(_) | Step::DecodeError { .. } | Step::TimeJump { .. } => {
                r.bad_lines += 1
            }
            Step::Stopped { .. } => break,
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::EventKind;

    #[test]
    fn a_diff_before_its_snapshot_produces_nothing_then_the_snapshot_replays_it() {
        let inst = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "0").unwrap();
        let mut n = FeedHandler::with_rule(&[inst], SyncRule::Futures);
        let mut out = Vec::new();
        let mut d = br#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":9,"pu":4,"b":[["1.0","1"]],"a":[]}}"#.to_vec();
        n.on_message(&mut d, 1, &mut out).unwrap();
        assert!(out.is_empty());
        let mut s = br#"{"lastUpdateId":7,"bids":[["0.9","2"]],"asks":[["1.1","3"]]}"#.to_vec();
        n.on_message(&mut s, 2, &mut out).unwrap();
        let kinds: Vec<_> = out.iter().map(|e| e.kind()).collect();
        assert_eq!(
            kinds,
            [
                EventKind::BookReset,
                EventKind::BookLevel,
                EventKind::BookLevel,
                EventKind::BookLevel,
                EventKind::BookValid
            ]
        );
    }
}
