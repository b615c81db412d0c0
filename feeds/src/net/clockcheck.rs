//! The host clock's state, for pulling quotes when our receive stamps cannot be trusted.
//!
//! Three things, checked at start and in housekeeping:
//!
//! - the kernel's view of its own discipline: `adjtimex` with `modes = 0` ([`clock_state`]):
//!   synchronised or not, `maxerror`, `esterror`, status bits, the current offset;
//! - PTP hardware clocks present ([`ptp_clocks`]), from `/sys/class/ptp` and `/dev/ptp*`;
//! - the offset of our receive stamps from the venue's event times over recent messages
//!   ([`OffsetTracker`]): its median and spread.
//!
//! [`ClockCheck`] holds the latest kernel state and the tracker and gives the engine a
//! [`ClockVerdict`] against configured [`ClockLimits`].
//!
//! ## The offset
//!
//! For each message, `offset = local_receive_ns - venue_event_ms × 10⁶`: how far our receive
//! stamp is behind the venue's event time. It is **positive normally**: it is the one-way
//! latency from the venue's matching engine to our socket, plus up to 1 ms because the venue's
//! event time is truncated to the millisecond, plus the error of our clock against the venue's.
//! A median that drops below zero means our clock runs behind the venue's (we appear to receive
//! before the event happened); a median that climbs means latency grew or our clock runs ahead.
//! Either past its limit is [`ClockVerdict::Drift`].

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

/// Errors reading the host clock's state.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// `adjtimex` failed.
    #[error("adjtimex(modes = 0) failed: {0}")]
    Adjtimex(#[source] io::Error),
    /// A directory listing PTP clocks could not be read.
    #[error("reading {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The kernel clock's state: the return value of `adjtimex(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeState {
    /// `TIME_OK`: synchronised, no leap second pending.
    Ok,
    /// `TIME_INS`: a leap second will be inserted.
    Insert,
    /// `TIME_DEL`: a leap second will be deleted.
    Delete,
    /// `TIME_OOP`: a leap second is in progress.
    LeapInProgress,
    /// `TIME_WAIT`: a leap second has just happened.
    Wait,
    /// `TIME_ERROR`: the clock is not synchronised.
    Error,
    /// A value this code does not know.
    Other(i32),
}

impl TimeState {
    fn from_raw(rc: libc::c_int) -> TimeState {
        match rc {
            libc::TIME_OK => TimeState::Ok,
            libc::TIME_INS => TimeState::Insert,
            libc::TIME_DEL => TimeState::Delete,
            libc::TIME_OOP => TimeState::LeapInProgress,
            libc::TIME_WAIT => TimeState::Wait,
            libc::TIME_ERROR => TimeState::Error,
            other => TimeState::Other(other),
        }
    }
}

/// What `adjtimex(modes = 0)` says about the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockState {
    /// Disciplined: `STA_UNSYNC` is clear and the call did not return `TIME_ERROR`.
    pub synchronised: bool,
    /// The clock state `adjtimex` returned.
    pub state: TimeState,
    /// Maximum error estimate, microseconds (`maxerror`; grows while nobody disciplines the
    /// clock and `STA_UNSYNC` is set past 16 s).
    pub maxerror_us: i64,
    /// Estimated error, microseconds (`esterror`).
    pub esterror_us: i64,
    /// The status bits (`STA_*`).
    pub status: i32,
    /// The offset the kernel is slewing out, as reported (`offset`: microseconds, or
    /// nanoseconds when `STA_NANO` is set).
    pub offset: i64,
    /// [`offset`](ClockState::offset) in nanoseconds.
    pub offset_ns: i64,
}

impl ClockState {
    /// From the fields of a `timex` and `adjtimex`'s return value.
    pub fn from_parts(
        rc: i32,
        status: i32,
        maxerror_us: i64,
        esterror_us: i64,
        offset: i64,
    ) -> ClockState {
        let state = TimeState::from_raw(rc);
        let offset_ns = if status & libc::STA_NANO != 0 {
            offset
        } else {
            offset.saturating_mul(1_000)
        };
        ClockState {
            synchronised: status & libc::STA_UNSYNC == 0 && state != TimeState::Error,
            state,
            maxerror_us,
            esterror_us,
            status,
            offset,
            offset_ns,
        }
    }

    /// `STA_PLL`: the kernel's phase-locked loop is disciplining the clock (NTP).
    pub fn pll(&self) -> bool {
        self.status & libc::STA_PLL != 0
    }

    /// `STA_NANO`: [`offset`](ClockState::offset) is in nanoseconds.
    pub fn nano(&self) -> bool {
        self.status & libc::STA_NANO != 0
    }
}

/// Reads the system clock's state: `adjtimex` with `modes = 0` (reads, changes nothing, needs
/// no privilege).
#[allow(clippy::useless_conversion)] // `c_long` is `i32` on some targets
pub fn clock_state() -> Result<ClockState, ClockError> {
    // SAFETY: `timex` is plain old data; all zeroes is a valid value, and `modes = 0` asks
    // the kernel to change nothing.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: `tx` is a valid, writable `timex` for the duration of the call.
    let rc = unsafe { libc::adjtimex(&mut tx) };
    if rc == -1 {
        return Err(ClockError::Adjtimex(io::Error::last_os_error()));
    }
    Ok(ClockState::from_parts(
        rc,
        tx.status,
        i64::from(tx.maxerror),
        i64::from(tx.esterror),
        i64::from(tx.offset),
    ))
}

/// A PTP hardware clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtpClock {
    /// Its name, e.g. `ptp0`.
    pub name: String,
    /// Its device node, if present (`/dev/ptp0`).
    pub device: Option<PathBuf>,
    /// What the driver calls it (`/sys/class/ptp/ptp0/clock_name`), if readable.
    pub clock_name: Option<String>,
}

/// PTP hardware clocks on this host: `/sys/class/ptp/*` and `/dev/ptp*`. A missing directory
/// is no clocks; an unreadable one is an error.
pub fn ptp_clocks() -> Result<Vec<PtpClock>, ClockError> {
    ptp_clocks_in(Path::new("/sys/class/ptp"), Path::new("/dev"))
}

/// [`ptp_clocks`] with the sysfs class directory and the device directory given.
pub fn ptp_clocks_in(sys_class: &Path, dev: &Path) -> Result<Vec<PtpClock>, ClockError> {
    let mut names = list_ptp(sys_class)?;
    for name in list_ptp(dev)? {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let node = dev.join(&name);
            let clock_name = std::fs::read_to_string(sys_class.join(&name).join("clock_name"))
                .ok()
                .map(|s| s.trim().to_string());
            PtpClock {
                device: node.exists().then_some(node),
                clock_name,
                name,
            }
        })
        .collect())
}

/// Entries named `ptp<digits>` in `dir` (none if `dir` does not exist).
fn list_ptp(dir: &Path) -> Result<Vec<String>, ClockError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ClockError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ClockError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_ptp = name
            .strip_prefix("ptp")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_ptp {
            names.push(name);
        }
    }
    Ok(names)
}

/// The host clock at one look: the kernel's state and the PTP clocks present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostClock {
    /// `adjtimex`'s answer.
    pub state: ClockState,
    /// PTP hardware clocks.
    pub ptp: Vec<PtpClock>,
}

/// Reads [`clock_state`] and [`ptp_clocks`] (housekeeping: allocates).
pub fn host_clock() -> Result<HostClock, ClockError> {
    Ok(HostClock {
        state: clock_state()?,
        ptp: ptp_clocks()?,
    })
}

/// Median and spread of the offsets in an [`OffsetTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSummary {
    /// How many offsets.
    pub samples: usize,
    /// Their median, ns (mean of the two middle ones, rounded down, for an even count).
    pub median_ns: i64,
    /// 10th percentile, ns (nearest rank).
    pub p10_ns: i64,
    /// 90th percentile, ns (nearest rank).
    pub p90_ns: i64,
    /// The spread: `p90_ns - p10_ns`.
    pub spread_ns: i64,
}

/// The offsets of our receive stamps from the venue's event times over the last `capacity`
/// messages (see the [module documentation](self) for the sign): a ring, allocated at
/// construction and never after.
///
/// The median and spread are computed on demand from a copy in a preallocated scratch array
/// (`select_nth_unstable`, O(n)); the spread is the 10–90 percentile range (nearest rank),
/// which ignores the odd late message that a standard deviation would not.
#[derive(Debug)]
pub struct OffsetTracker {
    ring: Box<[i64]>,
    scratch: RefCell<Box<[i64]>>,
    next: usize,
    len: usize,
    rejected: u64,
}

impl OffsetTracker {
    /// A tracker of the last `capacity` offsets (at least one).
    pub fn new(capacity: usize) -> OffsetTracker {
        let capacity = capacity.max(1);
        OffsetTracker {
            ring: vec![0; capacity].into_boxed_slice(),
            scratch: RefCell::new(vec![0; capacity].into_boxed_slice()),
            next: 0,
            len: 0,
            rejected: 0,
        }
    }

    /// How many offsets it keeps.
    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// How many offsets it holds now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No offsets yet?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records a message: the venue's event time (ms since the epoch) and our receive stamp
    /// (ns since the epoch). Times too large to express in ns are counted as rejected.
    #[inline]
    pub fn record(&mut self, venue_event_ms: i64, local_receive_ns: i64) {
        match venue_event_ms
            .checked_mul(1_000_000)
            .and_then(|venue_ns| local_receive_ns.checked_sub(venue_ns))
        {
            Some(offset) => self.push(offset),
            None => self.rejected += 1,
        }
    }

    /// Records an offset (ns) directly.
    #[inline]
    pub fn push(&mut self, offset_ns: i64) {
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = offset_ns;
        }
        self.next = (self.next + 1) % self.ring.len();
        self.len = (self.len + 1).min(self.ring.len());
    }

    /// Messages whose times could not be turned into an offset.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Forgets every offset (after a reconnect, say).
    pub fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
    }

    /// The offsets held, oldest first (two slices: the ring's two halves).
    pub fn as_slices(&self) -> (&[i64], &[i64]) {
        if self.len < self.ring.len() {
            (self.ring.get(..self.len).unwrap_or(&[]), &[])
        } else {
            let (newer, older) = self.ring.split_at(self.next);
            (older, newer)
        }
    }

    /// The median offset, ns (`None` when empty).
    pub fn median(&self) -> Option<i64> {
        self.summary().map(|s| s.median_ns)
    }

    /// The spread (p90 − p10) of the offsets, ns (`None` when empty).
    pub fn spread(&self) -> Option<i64> {
        self.summary().map(|s| s.spread_ns)
    }

    /// Median, percentiles and spread (`None` when empty). Allocates nothing.
    pub fn summary(&self) -> Option<OffsetSummary> {
        let n = self.len;
        if n == 0 {
            return None;
        }
        let mut scratch = self.scratch.try_borrow_mut().ok()?;
        let work = scratch.get_mut(..n)?;
        let (a, b) = self.as_slices();
        work.get_mut(..a.len())?.copy_from_slice(a);
        work.get_mut(a.len()..)?.copy_from_slice(b);

        let mid = n / 2;
        let (lower, upper_mid, _) = work.select_nth_unstable(mid);
        let upper_mid = *upper_mid;
        let median_ns = if n % 2 == 1 {
            upper_mid
        } else {
            let lower_mid = lower.iter().copied().max().unwrap_or(upper_mid);
            mean_floor(lower_mid, upper_mid)
        };
        let p10_ns = nth(work, nearest_rank(n, 10));
        let p90_ns = nth(work, nearest_rank(n, 90));
        Some(OffsetSummary {
            samples: n,
            median_ns,
            p10_ns,
            p90_ns,
            spread_ns: p90_ns.saturating_sub(p10_ns),
        })
    }
}

/// `floor((a + b) / 2)` without overflow.
fn mean_floor(a: i64, b: i64) -> i64 {
    let sum = i128::from(a) + i128::from(b);
    i64::try_from(sum.div_euclid(2)).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
}

/// The 0-based index of the `pct`-th percentile of `n` values, nearest rank: `ceil(pct·n/100)−1`.
fn nearest_rank(n: usize, pct: usize) -> usize {
    (pct * n)
        .div_ceil(100)
        .saturating_sub(1)
        .min(n.saturating_sub(1))
}

/// The `k`-th smallest of `work` (reorders it).
fn nth(work: &mut [i64], k: usize) -> i64 {
    if k >= work.len() {
        return 0;
    }
    *work.select_nth_unstable(k).1
}

/// When to pull quotes over the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockLimits {
    /// Pull quotes when `adjtimex` says the clock is not synchronised (or could not be read).
    pub require_synchronised: bool,
    /// Pull quotes when the kernel's `maxerror` exceeds this, µs (`None`: no limit).
    pub max_error_us: Option<i64>,
    /// Highest acceptable median offset, ns (latency plus clock error; see the module
    /// documentation).
    pub max_offset_ns: i64,
    /// Lowest acceptable median offset, ns (below zero: our clock behind the venue's).
    pub min_offset_ns: i64,
    /// Offsets needed before the median is judged at all.
    pub min_samples: usize,
}

impl Default for ClockLimits {
    /// Placeholders until the engine's configuration sets them: synchronised required, no
    /// `maxerror` limit, median offset within −50 ms … +500 ms, judged from 20 messages on.
    fn default() -> Self {
        ClockLimits {
            require_synchronised: true,
            max_error_us: None,
            max_offset_ns: 500_000_000,
            min_offset_ns: -50_000_000,
            min_samples: 20,
        }
    }
}

/// Whether the clock can be trusted for quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockVerdict {
    /// Quote.
    Ok,
    /// The kernel clock is not disciplined (or its state is unknown, or its `maxerror` is past
    /// the limit): pull quotes.
    Unsynchronised,
    /// The median offset from the venue's event times is past a limit: pull quotes.
    Drift {
        /// The median offset, ns.
        median_ns: i64,
        /// The limit it crossed, ns (the maximum or the minimum).
        limit_ns: i64,
    },
}

/// The host clock's latest state and the recent offsets from the venue, judged together.
#[derive(Debug)]
pub struct ClockCheck {
    state: Option<ClockState>,
    offsets: OffsetTracker,
}

impl ClockCheck {
    /// A check keeping the last `capacity` offsets; no kernel state yet (see
    /// [`refresh`](ClockCheck::refresh)).
    pub fn new(capacity: usize) -> ClockCheck {
        ClockCheck {
            state: None,
            offsets: OffsetTracker::new(capacity),
        }
    }

    /// Reads the kernel clock's state again (at start and in housekeeping). On error the
    /// previous state is forgotten, so a clock that cannot be read counts as unsynchronised.
    pub fn refresh(&mut self) -> Result<ClockState, ClockError> {
        self.state = None;
        let s = clock_state()?;
        self.state = Some(s);
        Ok(s)
    }

    /// Sets the kernel clock's state (read elsewhere, or made up in tests).
    pub fn set_state(&mut self, state: Option<ClockState>) {
        self.state = state;
    }

    /// The kernel clock's state as last read.
    pub fn state(&self) -> Option<&ClockState> {
        self.state.as_ref()
    }

    /// Records a message's venue event time (ms) and receive stamp (ns).
    #[inline]
    pub fn record(&mut self, venue_event_ms: i64, local_receive_ns: i64) {
        self.offsets.record(venue_event_ms, local_receive_ns);
    }

    /// The offsets.
    pub fn offsets(&self) -> &OffsetTracker {
        &self.offsets
    }

    /// The offsets, mutably (to clear them after a reconnect).
    pub fn offsets_mut(&mut self) -> &mut OffsetTracker {
        &mut self.offsets
    }

    /// The verdict: [`Unsynchronised`](ClockVerdict::Unsynchronised) first (if required),
    /// then [`Drift`](ClockVerdict::Drift) once there are `min_samples` offsets.
    pub fn check(&self, limits: &ClockLimits) -> ClockVerdict {
        if limits.require_synchronised {
            match &self.state {
                Some(s) if s.synchronised => {}
                _ => return ClockVerdict::Unsynchronised,
            }
        }
        if let (Some(max), Some(s)) = (limits.max_error_us, &self.state) {
            if s.maxerror_us > max {
                return ClockVerdict::Unsynchronised;
            }
        }
        if self.offsets.len() < limits.min_samples.max(1) {
            return ClockVerdict::Ok;
        }
        match self.offsets.median() {
            Some(m) if m > limits.max_offset_ns => ClockVerdict::Drift {
                median_ns: m,
                limit_ns: limits.max_offset_ns,
            },
            Some(m) if m < limits.min_offset_ns => ClockVerdict::Drift {
                median_ns: m,
                limit_ns: limits.min_offset_ns,
            },
            _ => ClockVerdict::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(values: &[i64], capacity: usize) -> OffsetTracker {
        let mut t = OffsetTracker::new(capacity);
        for &v in values {
            t.push(v);
        }
        t
    }

    #[test]
    fn an_empty_tracker_has_no_median_or_spread() {
        let t = OffsetTracker::new(8);
        assert!(t.is_empty());
        assert_eq!(t.median(), None);
        assert_eq!(t.spread(), None);
        assert_eq!(t.summary(), None);
        assert_eq!(
            OffsetTracker::new(0).capacity(),
            1,
            "capacity 0 is 1, not a panic"
        );
    }

    #[test]
    fn median_and_spread_of_known_sequences() {
        // Odd count, shuffled.
        let t = tracker(&[5, 1, 4, 2, 3], 16);
        assert_eq!(t.median(), Some(3));
        // Nearest rank of 5 values: p10 = 1st, p90 = 5th.
        assert_eq!(t.spread(), Some(4));
        // Even count: mean of the two middle ones, rounded down (also below zero).
        assert_eq!(tracker(&[10, 1, 4, 7], 16).median(), Some(5));
        assert_eq!(tracker(&[-3, -2], 16).median(), Some(-3));
        assert_eq!(tracker(&[i64::MAX, i64::MAX], 4).median(), Some(i64::MAX));
        // 1..=100: p10 = 10, p90 = 90.
        let values: Vec<i64> = (1..=100).rev().collect();
        let s = tracker(&values, 100).summary().expect("values");
        assert_eq!(
            (s.samples, s.p10_ns, s.p90_ns, s.spread_ns),
            (100, 10, 90, 80)
        );
        assert_eq!(s.median_ns, 50);
        // One value.
        let s = tracker(&[7], 3).summary().expect("one");
        assert_eq!((s.median_ns, s.spread_ns), (7, 0));
        // Outliers do not move the spread much.
        let mut v = vec![1_000_000; 19];
        v.push(900_000_000);
        assert_eq!(tracker(&v, 32).spread(), Some(0));
    }

    #[test]
    fn the_ring_keeps_the_newest_offsets() {
        let mut t = tracker(&[100, 100, 100], 3);
        for v in [1, 2, 3, 4] {
            t.push(v);
        }
        assert_eq!(t.len(), 3);
        let (a, b) = t.as_slices();
        assert_eq!([a, b].concat(), vec![2, 3, 4], "oldest first");
        assert_eq!(t.median(), Some(3));
        t.clear();
        assert_eq!(t.median(), None);
        t.push(9);
        assert_eq!(t.median(), Some(9));
    }

    #[test]
    fn offsets_are_receive_minus_event() {
        let mut t = OffsetTracker::new(4);
        // Event at 1_000 ms, received 2.5 ms later: +2.5 ms.
        t.record(1_000, 1_002_500_000);
        assert_eq!(t.median(), Some(2_500_000));
        t.record(i64::MAX, 0);
        t.record(-i64::MAX, i64::MAX);
        assert_eq!(t.rejected(), 2);
        assert_eq!(t.len(), 1);
    }

    fn synced() -> ClockState {
        ClockState::from_parts(libc::TIME_OK, libc::STA_PLL, 1_000, 100, 5)
    }

    #[test]
    fn clock_state_follows_the_status_bits() {
        let s = synced();
        assert!(s.synchronised && s.pll() && !s.nano());
        assert_eq!(s.offset_ns, 5_000);
        let s = ClockState::from_parts(libc::TIME_OK, libc::STA_UNSYNC, 16_000_000, 16_000_000, 0);
        assert!(!s.synchronised);
        let s = ClockState::from_parts(libc::TIME_ERROR, libc::STA_NANO, 0, 0, 7);
        assert!(!s.synchronised);
        assert_eq!((s.state, s.offset_ns), (TimeState::Error, 7));
        assert_eq!(
            ClockState::from_parts(42, 0, 0, 0, 0).state,
            TimeState::Other(42)
        );
    }

    #[test]
    fn verdicts() {
        let limits = ClockLimits {
            require_synchronised: true,
            max_error_us: Some(50_000),
            max_offset_ns: 100_000_000,
            min_offset_ns: -10_000_000,
            min_samples: 3,
        };
        let mut c = ClockCheck::new(8);
        assert_eq!(
            c.check(&limits),
            ClockVerdict::Unsynchronised,
            "no state yet"
        );
        c.set_state(Some(synced()));
        assert_eq!(
            c.check(&limits),
            ClockVerdict::Ok,
            "too few offsets to judge"
        );
        for ms in 0..3 {
            c.record(ms, ms * 1_000_000 + 200_000_000);
        }
        assert_eq!(
            c.check(&limits),
            ClockVerdict::Drift {
                median_ns: 200_000_000,
                limit_ns: 100_000_000
            }
        );
        c.offsets_mut().clear();
        for ms in 0..3 {
            c.record(ms, ms * 1_000_000 - 20_000_000);
        }
        assert_eq!(
            c.check(&limits),
            ClockVerdict::Drift {
                median_ns: -20_000_000,
                limit_ns: -10_000_000
            }
        );
        c.offsets_mut().clear();
        for ms in 0..3 {
            c.record(ms, ms * 1_000_000 + 3_000_000);
        }
        assert_eq!(c.check(&limits), ClockVerdict::Ok);
        let mut loose = synced();
        loose.maxerror_us = 60_000;
        c.set_state(Some(loose));
        assert_eq!(c.check(&limits), ClockVerdict::Unsynchronised);
        c.set_state(Some(ClockState::from_parts(
            libc::TIME_OK,
            libc::STA_UNSYNC,
            0,
            0,
            0,
        )));
        assert_eq!(c.check(&limits), ClockVerdict::Unsynchronised);
        let relaxed = ClockLimits {
            require_synchronised: false,
            ..limits
        };
        assert_eq!(c.check(&relaxed), ClockVerdict::Ok);
    }

    #[test]
    fn adjtimex_answers_on_this_machine() {
        let s = clock_state().expect("adjtimex(modes = 0)");
        println!("adjtimex: {s:?}");
        assert!(s.maxerror_us >= 0 && s.esterror_us >= 0);
        let mut c = ClockCheck::new(4);
        assert_eq!(c.refresh().expect("refresh"), *c.state().expect("state"));
        let host = host_clock().expect("host clock");
        println!("ptp clocks: {:?}", host.ptp);
    }

    #[test]
    fn ptp_clocks_are_listed_from_sysfs_and_dev() {
        let root = std::env::temp_dir().join(format!(
            "ringmaker-ptp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let sys = root.join("sys");
        let dev = root.join("dev");
        std::fs::create_dir_all(sys.join("ptp0")).expect("mkdir");
        std::fs::create_dir_all(sys.join("ptp1")).expect("mkdir");
        std::fs::create_dir_all(&dev).expect("mkdir");
        std::fs::write(sys.join("ptp0/clock_name"), "mlx5_ptp\n").expect("write");
        std::fs::write(dev.join("ptp0"), "").expect("write");
        std::fs::write(dev.join("ptp7"), "").expect("write");
        std::fs::write(dev.join("ptpx"), "").expect("write");
        std::fs::write(dev.join("null"), "").expect("write");
        let clocks = ptp_clocks_in(&sys, &dev).expect("list");
        let _ = std::fs::remove_dir_all(&root);
        let names: Vec<_> = clocks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ptp0", "ptp1", "ptp7"]);
        assert_eq!(clocks[0].clock_name.as_deref(), Some("mlx5_ptp"));
        assert_eq!(clocks[0].device, Some(dev.join("ptp0")));
        assert_eq!(
            (clocks[1].device.as_ref(), clocks[1].clock_name.as_ref()),
            (None, None)
        );
        assert!(ptp_clocks_in(&root.join("missing"), &root.join("missing"))
            .expect("missing dirs are no clocks")
            .is_empty());
    }
}
