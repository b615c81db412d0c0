//! Several instruments' recordings as one market source, in time order: [`MergedSource`].
//!
//! Each instrument has its own recording (one or more files that continue each other), bound to
//! it ([`RecordingSource::open_bound`]): its REST snapshot lines, which name no symbol, are that
//! instrument's, and a symbol two instruments share (BTCUSDT on USDⓈ-M and on spot) is told
//! apart by the file it came from.
//!
//! # Order
//!
//! Within one recording, file order is arrival order (the recorder's local stamps are not
//! monotonic between its streams: a trade may be stamped a few µs before the diff written ahead
//! of it). So a recording's time is the *running maximum* of its lines' `local_ns`, and the
//! merge gives next the input of the recording whose next line would bring its time lowest — a
//! line stamped before its predecessor in the same file comes out right after it, at that
//! file's time. Ties go to the lower instrument id. A line stamped more than
//! [`MAX_TIME_JUMP_NS`] after its recording's time (a garbled stamp, which the feed handler
//! skips as a time jump) does not move that recording's time: one bad stamp must not hold the
//! rest of its file back until every other recording has ended. A bad line (no timestamp) comes
//! out at its recording's time. The order depends on the lines alone: deterministic.
//!
//! # Memory
//!
//! One line read ahead per recording, held in that recording's own line buffer (no copy).

use crate::handler::MAX_TIME_JUMP_NS;
use crate::recording::{OpenError, ReaderStats};
use crate::source::{
    Input, MarketSource, Peek, RecordingSource, SnapshotReply, SourceCounts, SourceError,
};
use engine::InstrumentId;
use std::path::Path;

/// One recording of the merge.
#[derive(Debug)]
struct Sub {
    source: RecordingSource,
    /// Running maximum of the local stamps given so far (`i64::MIN` before the first).
    time: i64,
}

/// One recording per instrument, merged in time order (see the module documentation).
#[derive(Debug)]
pub struct MergedSource {
    /// By instrument id, ascending (the tie order).
    subs: Vec<Sub>,
    /// The recording of the last input given.
    last: Option<usize>,
    /// Snapshot requests for an instrument with no recording here.
    unrouted_requests: u64,
}

impl MergedSource {
    /// Opens one recording per instrument: `per_instrument[i]` are instrument `i`'s files, in
    /// arrival order (an empty list: no recording for `i`, whose snapshot requests are then
    /// [`SnapshotReply::Unavailable`]).
    ///
    /// # Panics
    ///
    /// With more than 2^16 lists (a config holds at most 65,535 instruments).
    pub fn open<P: AsRef<Path>>(per_instrument: &[Vec<P>]) -> Result<MergedSource, OpenError> {
        let mut subs = Vec::with_capacity(per_instrument.len());
        for (i, paths) in per_instrument.iter().enumerate() {
            if paths.is_empty() {
                continue;
            }
            let id = InstrumentId::try_from(i).expect("at most 2^16 instruments");
            subs.push(RecordingSource::open_bound(paths, id)?);
        }
        Ok(MergedSource::new(subs))
    }

    /// Merges recordings already open. Sources bound to an instrument come in instrument id
    /// order (ties between them go to the lower id), unbound ones after them in the order given.
    pub fn new(mut sources: Vec<RecordingSource>) -> MergedSource {
        sources.sort_by_key(|s| s.instrument().map_or(u32::MAX, u32::from));
        MergedSource {
            subs: sources
                .into_iter()
                .map(|source| Sub {
                    source,
                    time: i64::MIN,
                })
                .collect(),
            last: None,
            unrouted_requests: 0,
        }
    }

    /// The recordings, in merge (instrument id) order.
    pub fn sources(&self) -> impl Iterator<Item = &RecordingSource> {
        self.subs.iter().map(|s| &s.source)
    }

    /// The readers' counters, summed.
    pub fn reader_stats(&self) -> ReaderStats {
        self.subs
            .iter()
            .map(|s| s.source.reader().stats())
            .fold(ReaderStats::default(), |a, s| ReaderStats {
                lines: a.lines + s.lines,
                bad_lines: a.bad_lines + s.bad_lines,
                files: a.files + s.files,
            })
    }
}

impl MarketSource for MergedSource {
    #[inline]
    fn next_input(&mut self) -> Option<Result<Input<'_>, SourceError>> {
        let mut best: Option<(i64, usize)> = None;
        for (k, sub) in self.subs.iter_mut().enumerate() {
            let key = match sub.source.peek() {
                None => continue,
                Some(Peek::Line(t)) if sub.time == i64::MIN => t,
                // A time jump: skipped downstream, it must not hold the recording back.
                Some(Peek::Line(t)) if t.saturating_sub(sub.time) > MAX_TIME_JUMP_NS => sub.time,
                Some(Peek::Line(t)) => t.max(sub.time),
                Some(Peek::Bad) => sub.time,
            };
            // Strictly earlier only: on a tie the lower id (met first) keeps it.
            if best.is_none_or(|(b, _)| key < b) {
                best = Some((key, k));
            }
        }
        let (key, k) = best?;
        self.last = Some(k);
        let sub = &mut self.subs[k];
        sub.time = key;
        sub.source.next_input()
    }

    /// Goes to `instrument`'s recording (its next snapshot line, if it has one).
    fn request_snapshot(&mut self, instrument: InstrumentId) -> SnapshotReply {
        match self
            .subs
            .iter_mut()
            .find(|s| s.source.instrument() == Some(instrument))
        {
            Some(s) => s.source.request_snapshot(instrument),
            None => {
                self.unrouted_requests += 1;
                SnapshotReply::Unavailable
            }
        }
    }

    fn counts(&self) -> SourceCounts {
        self.subs.iter().map(|s| s.source.counts()).fold(
            SourceCounts {
                snapshot_requests: self.unrouted_requests,
                ..SourceCounts::default()
            },
            |a, c| SourceCounts {
                read: a.read + c.read,
                bad: a.bad + c.bad,
                snapshot_requests: a.snapshot_requests + c.snapshot_requests,
            },
        )
    }

    fn origin(&self) -> Option<String> {
        self.subs.get(self.last?)?.source.origin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A scratch directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("rm-merge-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }

        /// A plain recording whose lines are `<t> {"n":"<tag>"}`, or `garbage` for `None`.
        fn file(&self, name: &str, lines: &[(Option<i64>, &str)]) -> PathBuf {
            let p = self.0.join(name);
            let text: String = lines
                .iter()
                .map(|(t, tag)| match t {
                    Some(t) => format!("{t} {{\"n\":\"{tag}\"}}\n"),
                    None => format!("garbage-{tag}\n"),
                })
                .collect();
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Drains `src`: (tag, instrument, origin) per input, `bad:<origin>` for a bad line.
    fn drain(src: &mut MergedSource) -> Vec<(String, Option<InstrumentId>, String)> {
        let mut out = Vec::new();
        loop {
            let item = match src.next_input() {
                None => break,
                Some(Ok(Input::Message {
                    json, instrument, ..
                })) => {
                    let s = String::from_utf8(json.to_vec()).unwrap();
                    (s[6..s.len() - 2].to_string(), instrument)
                }
                Some(Ok(Input::Events { .. } | Input::Disconnected { .. })) => unreachable!(),
                Some(Err(_)) => ("bad".to_string(), None),
            };
            out.push((item.0, item.1, src.origin().unwrap_or_default()));
        }
        out
    }

    fn tags(v: &[(String, Option<InstrumentId>, String)]) -> Vec<&str> {
        v.iter().map(|x| x.0.as_str()).collect()
    }

    #[test]
    fn inputs_come_in_time_order_and_ties_go_to_the_lower_instrument() {
        let d = Dir::new("order");
        let a = d.file(
            "a.txt",
            &[(Some(10), "a10"), (Some(20), "a20"), (Some(30), "a30")],
        );
        let b = d.file(
            "b.txt",
            &[(Some(5), "b5"), (Some(20), "b20"), (Some(40), "b40")],
        );
        // Instrument 1 listed first: the tie at 20 still goes to instrument 0.
        let mut m = MergedSource::new(vec![
            RecordingSource::open_bound(&[&b], 1).unwrap(),
            RecordingSource::open_bound(&[&a], 0).unwrap(),
        ]);
        let got = drain(&mut m);
        assert_eq!(tags(&got), ["b5", "a10", "a20", "b20", "a30", "b40"]);
        // Each input carries its recording's instrument, and origin names its file and line.
        assert_eq!(got[0].1, Some(1));
        assert_eq!(got[1].1, Some(0));
        assert!(got[3].2.ends_with("b.txt:2"), "{}", got[3].2);
        assert_eq!(
            m.counts(),
            SourceCounts {
                read: 6,
                bad: 0,
                snapshot_requests: 0
            }
        );
    }

    /// Lines stamped out of order within a file stay in file order (a merge that sorted by
    /// stamp would put a50 before b60 and b100 before a100).
    #[test]
    fn a_recordings_time_is_the_running_maximum_of_its_stamps() {
        let d = Dir::new("running-max");
        // Within a: 50 is stamped before the 100 ahead of it; it stays after it, at a's time
        // (100), so b's 60 and 90 come first.
        let a = d.file(
            "a.txt",
            &[
                (Some(10), "a10"),
                (Some(100), "a100"),
                (Some(50), "a50"),
                (Some(110), "a110"),
            ],
        );
        let b = d.file(
            "b.txt",
            &[
                (Some(60), "b60"),
                (Some(90), "b90"),
                (Some(105), "b105"),
                (Some(100), "b100"),
            ],
        );
        let mut m = MergedSource::open(&[vec![a], vec![b]]).unwrap();
        assert_eq!(
            tags(&drain(&mut m)),
            // b100 is stamped before b105 but follows it, at b's time 105: after a's 100s.
            ["a10", "b60", "b90", "a100", "a50", "b105", "b100", "a110"]
        );
    }

    #[test]
    fn files_of_one_instrument_continue_each_other_and_bad_lines_come_at_their_time() {
        let d = Dir::new("files");
        let a1 = d.file(
            "a1.txt",
            &[(Some(10), "a10"), (None, "x"), (Some(30), "a30")],
        );
        let a2 = d.file("a2.txt", &[(Some(40), "a40")]);
        let b = d.file("b.txt", &[(Some(20), "b20"), (Some(35), "b35")]);
        let mut m = MergedSource::open(&[vec![a1, a2], vec![b]]).unwrap();
        let got = drain(&mut m);
        // The bad line after a10 is at a's time 10: before b20.
        assert_eq!(tags(&got), ["a10", "bad", "b20", "a30", "b35", "a40"]);
        assert!(got[5].2.ends_with("a2.txt:1"), "{}", got[5].2);
        assert_eq!((m.counts().read, m.counts().bad), (6, 1));
        assert_eq!(m.reader_stats().files, 3);
    }

    #[test]
    fn a_stamp_an_hour_ahead_does_not_hold_its_recording_back() {
        let d = Dir::new("jump");
        let day = 24 * MAX_TIME_JUMP_NS;
        let a = d.file(
            "a.txt",
            &[(Some(10), "a10"), (Some(day), "aday"), (Some(30), "a30")],
        );
        let b = d.file("b.txt", &[(Some(20), "b20"), (Some(40), "b40")]);
        let mut m = MergedSource::open(&[vec![a], vec![b]]).unwrap();
        // The garbled stamp comes at a's time (10), and a30 at 30, not after b's end.
        assert_eq!(tags(&drain(&mut m)), ["a10", "aday", "b20", "a30", "b40"]);
    }

    #[test]
    fn snapshot_requests_go_to_the_instruments_recording() {
        let d = Dir::new("snap");
        let a = d.file("a.txt", &[(Some(1), "a")]);
        let c = d.file("c.txt", &[(Some(2), "c")]);
        // Instrument 1 has no recording.
        let mut m = MergedSource::open(&[vec![a], vec![], vec![c]]).unwrap();
        assert_eq!(m.request_snapshot(2), SnapshotReply::Pending);
        assert_eq!(m.request_snapshot(2), SnapshotReply::Pending);
        assert_eq!(m.request_snapshot(1), SnapshotReply::Unavailable);
        assert_eq!(m.request_snapshot(0), SnapshotReply::Pending);
        let per: Vec<_> = m.sources().map(|s| s.counts().snapshot_requests).collect();
        assert_eq!(per, [1, 2]);
        assert_eq!(m.counts().snapshot_requests, 4);
        let got = drain(&mut m);
        assert_eq!(
            got.iter().map(|g| g.1).collect::<Vec<_>>(),
            [Some(0), Some(2)]
        );
    }
}
