//! The feed thread's job: decode a venue message and run book sync, producing the engine's
//! events in order. What comes out is exactly what goes on the input ring (and into the journal).

use crate::decode::{DecodeError, Decoder, Message};
use crate::recording::{OpenError, RecordingReader};
use crate::sync::{BookSync, SyncRule};
use engine::{Event, Instrument};
use std::path::Path;

/// Decoder plus one [`BookSync`] per instrument.
#[derive(Debug)]
pub struct Normalizer {
    decoder: Decoder,
    syncs: Vec<BookSync>,
    out: Vec<Event>,
}

impl Normalizer {
    /// A normalizer for `instruments` (ids are positions), all with the same sync rule.
    pub fn new(instruments: &[Instrument], rule: SyncRule) -> Normalizer {
        Normalizer {
            decoder: Decoder::new(instruments),
            syncs: (0..instruments.len())
                .map(|i| BookSync::new(rule, i as u16))
                .collect(),
            out: Vec::with_capacity(8192),
        }
    }

    /// Decodes one message and returns the events it produces (possibly none).
    pub fn on_message(&mut self, json: &mut [u8], local_ns: i64) -> Result<&[Event], DecodeError> {
        self.out.clear();
        match self.decoder.decode(json, local_ns)? {
            Message::Depth(h) => {
                if let Some(s) = self.syncs.get_mut(h.instrument as usize) {
                    s.on_diff(&h, self.decoder.levels(), &mut self.out);
                }
            }
            Message::Snapshot(h) => {
                if let Some(s) = self.syncs.get_mut(h.instrument as usize) {
                    s.on_snapshot(&h, self.decoder.levels(), &mut self.out);
                }
            }
            Message::Event(e) => self.out.push(e),
            Message::Ignored(_) => {}
        }
        Ok(&self.out)
    }

    /// Sync machines by instrument.
    pub fn syncs(&self) -> &[BookSync] {
        &self.syncs
    }

    /// The decoder.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

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

/// Reads whole recordings into engine events (for backtests, tests and benches).
pub fn recorded_events<P: AsRef<Path>>(
    paths: &[P],
    instruments: &[Instrument],
    rule: SyncRule,
) -> Result<RecordedEvents, OpenError> {
    let mut reader = RecordingReader::open(paths)?;
    let mut n = Normalizer::new(instruments, rule);
    let mut r = RecordedEvents::default();
    while let Some(line) = reader.next() {
        match line {
            Ok(l) => match n.on_message(l.json, l.local_ns) {
                Ok(evs) if !evs.is_empty() => {
                    r.events.extend_from_slice(evs);
                    r.batch_ends.push(r.events.len());
                }
                Ok(_) => {}
                Err(_) => r.bad_lines += 1,
            },
            Err(_) => r.bad_lines += 1,
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
        let mut n = Normalizer::new(&[inst], SyncRule::Futures);
        let mut d = br#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":9,"pu":4,"b":[["1.0","1"]],"a":[]}}"#.to_vec();
        assert!(n.on_message(&mut d, 1).unwrap().is_empty());
        let mut s = br#"{"lastUpdateId":7,"bids":[["0.9","2"]],"asks":[["1.1","3"]]}"#.to_vec();
        let kinds: Vec<_> = n
            .on_message(&mut s, 2)
            .unwrap()
            .iter()
            .map(|e| e.kind())
            .collect();
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
