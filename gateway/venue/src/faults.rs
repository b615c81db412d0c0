//! Faults on demand (`--faults SPEC`, `POST /venue/faults`): the venue misbehaves on purpose,
//! deterministically, and logs each fault on stderr when it fires.
//!
//! ## The grammar
//!
//! ```text
//! SPEC   := FAULT ( ';' FAULT )*
//! FAULT  := NAME [ '@' PARAM ( ',' PARAM )* ]
//! PARAM  := KEY '=' VALUE
//! DUR    := INTEGER ( 'ms' | 's' | 'm' )        (venue-clock time)
//! COUNT  := INTEGER ≥ 1                          (requests, in arrival order)
//! ```
//!
//! `at=DUR` is venue-clock time since the replay start (the clock's origin); `every=` is a
//! duration (`60s`) for the timed faults and a count (`50`) for the counted ones:
//!
//! | NAME | parameters | what happens |
//! |---|---|---|
//! | `drop-connections` | `at=DUR` and/or `every=DUR` | every WebSocket and keep-alive REST connection is cut (TCP shutdown, no close frame) |
//! | `gap` | `at=DUR` and/or `every=DUR`, `stream=NAME` (default: every depth stream) | one message of each depth stream is dropped: clients see a `pu` gap; the REST snapshot stays right |
//! | `freeze` | `stream=NAME`, `at=DUR`, `for=DUR`, `every=DUR` (optional) | the stream sends nothing for `for`; the messages in between are dropped |
//! | `malformed` | `stream=NAME`, `at=DUR` and/or `every=DUR` | one message of the stream is sent truncated (invalid JSON) |
//! | `rest-5xx` | `every=COUNT` or `at=DUR` | that REST request is answered 503 `-1001` without being processed |
//! | `rest-timeout` | `every=COUNT` or `at=DUR` | that REST request is held unanswered until the client gives up (at most [`HOLD`]), then the connection is closed |
//! | `ack-delay` | `ms=INTEGER`, `every=COUNT` (optional: default every placement) | the response to an order placement is delayed |
//! | `ack-drop` | `every=COUNT` or `at=DUR` | the response to an order placement is never sent (the order is placed) |
//! | `listenkey-expire` | `at=DUR` and/or `every=DUR` | every listen key expires now (`listenKeyExpired`, streams closed) |
//!
//! Stream faults (`gap`, `freeze`, `malformed`) are decided by each message's event time `E`
//! (the venue time it is published at), so the same data and spec drop the same messages.
//! `at=` for counted faults fires on the first request at or after that time. Counts are per
//! venue: every REST request but the control endpoint's; order placements are `POST
//! /fapi/v1/order` and the WebSocket API's `order.place`.

use crate::market::lock;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long `rest-timeout` (and a dropped REST ack) holds a request before closing.
pub const HOLD: Duration = Duration::from_secs(30);

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Close every connection.
    DropConnections,
    /// Drop one depth message of each depth stream.
    Gap,
    /// A stream sends nothing for a while.
    Freeze,
    /// Answer a REST request 503.
    Rest5xx,
    /// Hold a REST request unanswered.
    RestTimeout,
    /// Delay order-placement responses.
    AckDelay,
    /// Drop an order-placement response.
    AckDrop,
    /// Expire every listen key.
    ListenKeyExpire,
    /// Send one truncated message on a stream.
    Malformed,
}

impl FaultKind {
    const ALL: [FaultKind; 9] = [
        FaultKind::DropConnections,
        FaultKind::Gap,
        FaultKind::Freeze,
        FaultKind::Rest5xx,
        FaultKind::RestTimeout,
        FaultKind::AckDelay,
        FaultKind::AckDrop,
        FaultKind::ListenKeyExpire,
        FaultKind::Malformed,
    ];

    /// The name in a spec.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::DropConnections => "drop-connections",
            FaultKind::Gap => "gap",
            FaultKind::Freeze => "freeze",
            FaultKind::Rest5xx => "rest-5xx",
            FaultKind::RestTimeout => "rest-timeout",
            FaultKind::AckDelay => "ack-delay",
            FaultKind::AckDrop => "ack-drop",
            FaultKind::ListenKeyExpire => "listenkey-expire",
            FaultKind::Malformed => "malformed",
        }
    }

    /// Whether `every=` counts requests (otherwise it is a duration).
    fn counted(self) -> bool {
        matches!(
            self,
            FaultKind::Rest5xx | FaultKind::RestTimeout | FaultKind::AckDelay | FaultKind::AckDrop
        )
    }

    fn on_stream(self) -> bool {
        matches!(
            self,
            FaultKind::Gap | FaultKind::Freeze | FaultKind::Malformed
        )
    }
}

/// `every=`: a period of venue time or a count of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every so many venue-clock ms.
    Ms(i64),
    /// Every N-th request.
    Count(u64),
}

/// One parsed fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What.
    pub kind: FaultKind,
    /// When, venue-clock ms since the replay start.
    pub at_ms: Option<i64>,
    /// Repeating.
    pub every: Option<Every>,
    /// The stream (`freeze`, `malformed`, optionally `gap`).
    pub stream: Option<String>,
    /// How long (`freeze`), ms.
    pub for_ms: Option<i64>,
    /// The delay (`ack-delay`), ms.
    pub ms: Option<u64>,
}

fn fmt_dur(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut p = Vec::new();
        if let Some(s) = &self.stream {
            p.push(format!("stream={s}"));
        }
        if let Some(a) = self.at_ms {
            p.push(format!("at={}", fmt_dur(a)));
        }
        match self.every {
            Some(Every::Ms(ms)) => p.push(format!("every={}", fmt_dur(ms))),
            Some(Every::Count(n)) => p.push(format!("every={n}")),
            None => {}
        }
        if let Some(d) = self.for_ms {
            p.push(format!("for={}", fmt_dur(d)));
        }
        if let Some(ms) = self.ms {
            p.push(format!("ms={ms}"));
        }
        f.write_str(self.kind.name())?;
        if !p.is_empty() {
            write!(f, "@{}", p.join(","))?;
        }
        Ok(())
    }
}

/// A bad spec: each variant names the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The spec has no fault.
    #[error("empty fault spec")]
    Empty,
    /// Not a fault this venue knows.
    #[error("unknown fault `{0}` (known: drop-connections, gap, freeze, rest-5xx, rest-timeout, ack-delay, ack-drop, listenkey-expire, malformed)")]
    UnknownFault(String),
    /// A parameter the fault does not take.
    #[error("fault `{fault}`: unknown parameter `{param}`")]
    UnknownParam {
        /// The fault.
        fault: String,
        /// The parameter.
        param: String,
    },
    /// A parameter that is not `KEY=VALUE`, or given twice.
    #[error("fault `{fault}`: malformed parameter `{param}` (want KEY=VALUE, each key once)")]
    MalformedParam {
        /// The fault.
        fault: String,
        /// The parameter.
        param: String,
    },
    /// A value that does not parse.
    #[error("fault `{fault}`: bad value `{param}`: {want}")]
    BadValue {
        /// The fault.
        fault: String,
        /// The parameter as written.
        param: String,
        /// What was expected.
        want: &'static str,
    },
    /// A required parameter is missing.
    #[error("fault `{fault}`: missing {want}")]
    Missing {
        /// The fault.
        fault: String,
        /// What is missing.
        want: &'static str,
    },
}

fn parse_dur(v: &str) -> Option<i64> {
    let (n, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000)
    } else {
        return None;
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<i64>().ok()?.checked_mul(mult)
}

fn parse_count(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|n| *n >= 1)
}

/// Parses a spec. `now_ms`: the default `at` (the control endpoint's "now", ms since the replay
/// start); `None` on the command line, where timed faults need `at=` or `every=`.
pub fn parse(spec: &str, now_ms: Option<i64>) -> Result<Vec<Fault>, SpecError> {
    let mut out = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(parse_one(part, now_ms)?);
    }
    if out.is_empty() {
        return Err(SpecError::Empty);
    }
    Ok(out)
}

fn parse_one(part: &str, now_ms: Option<i64>) -> Result<Fault, SpecError> {
    let (name, params) = match part.split_once('@') {
        Some((n, p)) => (n.trim(), Some(p)),
        None => (part, None),
    };
    let kind = FaultKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| SpecError::UnknownFault(name.to_string()))?;
    let fault = || name.to_string();
    let mut f = Fault {
        kind,
        at_ms: None,
        every: None,
        stream: None,
        for_ms: None,
        ms: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for p in params.into_iter().flat_map(|p| p.split(',')) {
        let p = p.trim();
        let Some((k, v)) = p.split_once('=').filter(|(k, _)| !seen.contains(k)) else {
            return Err(SpecError::MalformedParam {
                fault: fault(),
                param: p.to_string(),
            });
        };
        seen.push(k);
        let bad = |want| SpecError::BadValue {
            fault: fault(),
            param: p.to_string(),
            want,
        };
        let allowed = match kind {
            FaultKind::DropConnections | FaultKind::ListenKeyExpire => &["at", "every"][..],
            FaultKind::Gap | FaultKind::Malformed => &["at", "every", "stream"][..],
            FaultKind::Freeze => &["at", "every", "stream", "for"][..],
            FaultKind::Rest5xx | FaultKind::RestTimeout | FaultKind::AckDrop => {
                &["at", "every"][..]
            }
            FaultKind::AckDelay => &["ms", "every"][..],
        };
        if !allowed.contains(&k) {
            return Err(SpecError::UnknownParam {
                fault: fault(),
                param: p.to_string(),
            });
        }
        match k {
            "at" => f.at_ms = Some(parse_dur(v).ok_or_else(|| bad("a duration: 30s, 500ms, 2m"))?),
            "for" => {
                f.for_ms = Some(
                    parse_dur(v)
                        .filter(|d| *d > 0)
                        .ok_or_else(|| bad("a positive duration: 5s, 500ms"))?,
                )
            }
            "every" if kind.counted() => {
                f.every = Some(Every::Count(
                    parse_count(v).ok_or_else(|| bad("a count ≥ 1 (every N-th request)"))?,
                ))
            }
            "every" => {
                f.every = Some(Every::Ms(
                    parse_dur(v)
                        .filter(|d| *d > 0)
                        .ok_or_else(|| bad("a positive duration: 60s, 500ms"))?,
                ))
            }
            "ms" => f.ms = Some(parse_count(v).ok_or_else(|| bad("a delay in ms ≥ 1"))?),
            "stream" => {
                if crate::market::stream_class(v).is_none() {
                    return Err(bad("a stream name: btcusdt@depth@0ms, btcusdt@bookTicker"));
                }
                if kind == FaultKind::Gap && !v.contains("@depth") {
                    return Err(bad("a depth stream: btcusdt@depth@0ms"));
                }
                f.stream = Some(v.to_string());
            }
            _ => unreachable!("checked against the allowed list"),
        }
    }
    let missing = |want| {
        Err(SpecError::Missing {
            fault: fault(),
            want,
        })
    };
    if f.at_ms.is_none() && kind != FaultKind::AckDelay {
        let periodic = matches!(f.every, Some(Every::Ms(_))) && kind != FaultKind::Freeze;
        let counted = matches!(f.every, Some(Every::Count(_)));
        if !periodic && !counted {
            match now_ms {
                Some(now) => f.at_ms = Some(now),
                None if kind == FaultKind::Freeze => return missing("at="),
                None if kind.counted() => return missing("every=COUNT or at="),
                None => return missing("at= or every="),
            }
        }
    }
    if kind.counted() && f.at_ms.is_some() && f.every.is_some() {
        return Err(SpecError::MalformedParam {
            fault: fault(),
            param: "at= with every=".into(),
        });
    }
    match kind {
        FaultKind::Freeze if f.for_ms.is_none() => return missing("for="),
        FaultKind::Freeze | FaultKind::Malformed if f.stream.is_none() => {
            return missing("stream=")
        }
        FaultKind::AckDelay if f.ms.is_none() => return missing("ms="),
        _ => {}
    }
    Ok(f)
}

/// What to do with a REST request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFault {
    /// Serve it.
    Pass,
    /// Answer 503 `-1001`.
    Fail,
    /// Hold it unanswered.
    Hold,
}

/// What to do with an order placement's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckFault {
    /// Send it.
    Send,
    /// Send it after this long.
    Delay(Duration),
    /// Never send it.
    Drop,
}

struct Rule {
    fault: Fault,
    /// Timed faults: the next firing, absolute venue ms. Counted faults with `at`: the arming
    /// time (cleared once fired).
    next_ms: Option<i64>,
    /// Stream faults: the next firing per stream (absolute venue ms).
    per_stream: HashMap<String, i64>,
    /// `freeze`: the window start last logged, per stream.
    logged: HashMap<String, i64>,
    fired: u64,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    fired: Vec<Value>,
    rest_count: u64,
    ack_count: u64,
}

/// The fault schedule of a running venue and what fired.
pub struct Faults {
    origin_ms: AtomicI64,
    generation: AtomicU64,
    control: bool,
    state: Mutex<State>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("rules", &lock(&self.state).rules.len())
            .finish_non_exhaustive()
    }
}

/// The most fired faults `GET /venue/faults` remembers.
const FIRED_KEPT: usize = 1000;

impl Faults {
    /// A schedule of `faults`; `control`: whether `/venue/faults` is served.
    pub fn new(faults: Vec<Fault>, control: bool) -> Faults {
        let f = Faults {
            origin_ms: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            control,
            state: Mutex::new(State::default()),
        };
        f.add(faults);
        f
    }

    /// Sets the venue clock's origin (the replay start), ms since the epoch.
    pub fn set_origin(&self, origin_ms: i64) {
        self.origin_ms.store(origin_ms, Ordering::SeqCst);
        // Rules added before the origin was known.
        let mut st = lock(&self.state);
        for r in &mut st.rules {
            r.next_ms = first_ms(&r.fault, origin_ms);
        }
    }

    /// Whether the control endpoint is on.
    pub fn control(&self) -> bool {
        self.control
    }

    /// Adds faults to the schedule.
    pub fn add(&self, faults: Vec<Fault>) {
        let origin = self.origin_ms.load(Ordering::SeqCst);
        let mut st = lock(&self.state);
        for fault in faults {
            st.rules.push(Rule {
                next_ms: first_ms(&fault, origin),
                fault,
                per_stream: HashMap::new(),
                logged: HashMap::new(),
                fired: 0,
            });
        }
    }

    /// Venue ms since the replay start.
    pub fn since_start(&self, now_ms: i64) -> i64 {
        now_ms - self.origin_ms.load(Ordering::SeqCst)
    }

    /// The connection generation: it moves when `drop-connections` fires; a connection that
    /// sees it differ from its start closes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn log(&self, st: &mut State, now_ms: i64, fault: &Fault, target: &str) {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let since = self.since_start(now_ms);
        eprintln!(
            "venue fault: venue_ms={now_ms} (+{since} ms) wall={}.{:03} fault={fault} target={target}",
            wall.as_secs(),
            wall.subsec_millis()
        );
        if st.fired.len() >= FIRED_KEPT {
            st.fired.remove(0);
        }
        st.fired.push(json!({
            "venueTime": now_ms,
            "sinceStartMs": since,
            "wallMs": wall.as_millis() as u64,
            "fault": fault.to_string(),
            "target": target,
        }));
    }

    /// Fires the timed faults due at `now_ms`: `drop-connections` moves the generation; `true`
    /// if a `listenkey-expire` is due (the caller expires the keys).
    pub fn on_time(&self, now_ms: i64) -> bool {
        let mut st = lock(&self.state);
        let mut expire = false;
        let mut fire = Vec::new();
        for r in &mut st.rules {
            let k = r.fault.kind;
            if !matches!(k, FaultKind::DropConnections | FaultKind::ListenKeyExpire) {
                continue;
            }
            let Some(next) = r.next_ms.filter(|t| *t <= now_ms) else {
                continue;
            };
            r.next_ms = advance(&r.fault, next, now_ms);
            r.fired += 1;
            fire.push(r.fault.clone());
        }
        for f in fire {
            match f.kind {
                FaultKind::DropConnections => {
                    self.generation.fetch_add(1, Ordering::SeqCst);
                    self.log(&mut st, now_ms, &f, "all connections");
                }
                _ => {
                    expire = true;
                    self.log(&mut st, now_ms, &f, "all listen keys");
                }
            }
        }
        expire
    }

    /// A stream message about to be published: `None` to drop it, or the (maybe truncated)
    /// payload.
    pub fn on_stream(&self, stream: &str, data: String, now_ms: i64) -> Option<String> {
        let mut st = lock(&self.state);
        if !st.rules.iter().any(|r| r.fault.kind.on_stream()) {
            return Some(data);
        }
        let e = crate::market::event_time(&data).unwrap_or(now_ms);
        let is_depth = stream.contains("@depth");
        let mut drop = None;
        let mut truncate = None;
        for r in &mut st.rules {
            let f = &r.fault;
            let applies = match (&f.stream, f.kind) {
                (Some(s), _) => s == stream,
                (None, FaultKind::Gap) => is_depth,
                _ => false,
            };
            if !applies || !f.kind.on_stream() {
                continue;
            }
            let Some(first) = r.next_ms else { continue };
            let next = *r.per_stream.entry(stream.to_string()).or_insert(first);
            if next == i64::MAX || e < next {
                continue;
            }
            match f.kind {
                FaultKind::Freeze => {
                    let len = f.for_ms.unwrap_or(0);
                    let mut start = next;
                    if e >= start + len {
                        // The window passed: the next one, if the freeze repeats.
                        start = match f.every {
                            Some(Every::Ms(p)) => start + ((e - start - len) / p + 1) * p,
                            _ => i64::MAX,
                        };
                        r.per_stream.insert(stream.to_string(), start);
                    }
                    if start <= e && e < start.saturating_add(len) {
                        let first = r.logged.get(stream) != Some(&start);
                        if first {
                            r.logged.insert(stream.to_string(), start);
                            r.fired += 1;
                        }
                        drop = Some((f.clone(), first));
                    }
                }
                FaultKind::Gap | FaultKind::Malformed => {
                    r.per_stream
                        .insert(stream.to_string(), advance(f, next, e).unwrap_or(i64::MAX));
                    r.fired += 1;
                    if f.kind == FaultKind::Gap {
                        drop = Some((f.clone(), true));
                    } else {
                        truncate = Some(f.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some((f, log)) = drop {
            if log {
                self.log(&mut st, e, &f, stream);
            }
            return None;
        }
        if let Some(f) = truncate {
            self.log(&mut st, e, &f, stream);
            let cut = data.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| data.is_char_boundary(*i))
                .unwrap_or(0);
            return Some(data[..cut].to_string());
        }
        Some(data)
    }

    /// A REST request arrived (counted in arrival order).
    pub fn on_rest(&self, now_ms: i64, target: &str) -> RestFault {
        let mut st = lock(&self.state);
        st.rest_count += 1;
        let n = st.rest_count;
        let mut hit = None;
        for r in &mut st.rules {
            let k = r.fault.kind;
            if !matches!(k, FaultKind::Rest5xx | FaultKind::RestTimeout) || hit.is_some() {
                continue;
            }
            if counted_due(r, n, now_ms) {
                hit = Some(r.fault.clone());
            }
        }
        match hit {
            Some(f) => {
                self.log(&mut st, now_ms, &f, &format!("REST request #{n} {target}"));
                if f.kind == FaultKind::Rest5xx {
                    RestFault::Fail
                } else {
                    RestFault::Hold
                }
            }
            None => RestFault::Pass,
        }
    }

    /// An order placement was answered (counted in arrival order).
    pub fn on_ack(&self, now_ms: i64, target: &str) -> AckFault {
        let mut st = lock(&self.state);
        st.ack_count += 1;
        let n = st.ack_count;
        let mut hit = None;
        for r in &mut st.rules {
            let k = r.fault.kind;
            if !matches!(k, FaultKind::AckDelay | FaultKind::AckDrop) {
                continue;
            }
            let due = if k == FaultKind::AckDelay && r.fault.every.is_none() {
                r.fired += 1;
                true
            } else {
                counted_due(r, n, now_ms)
            };
            // A drop wins over a delay.
            if due
                && !matches!(
                    hit,
                    Some(Fault {
                        kind: FaultKind::AckDrop,
                        ..
                    })
                )
            {
                hit = Some(r.fault.clone());
            }
        }
        match hit {
            Some(f) => {
                self.log(
                    &mut st,
                    now_ms,
                    &f,
                    &format!("order placement #{n} {target}"),
                );
                match f.kind {
                    FaultKind::AckDrop => AckFault::Drop,
                    _ => AckFault::Delay(Duration::from_millis(f.ms.unwrap_or(0))),
                }
            }
            None => AckFault::Send,
        }
    }

    /// `GET /venue/faults`: the schedule and what fired.
    pub fn report(&self) -> Value {
        let st = lock(&self.state);
        let schedule: Vec<Value> = st
            .rules
            .iter()
            .map(|r| {
                // Stream faults keep their next firing per stream (the window start for a
                // freeze): the earliest of the streams seen, the first firing before any.
                let next = match r.per_stream.values().min() {
                    Some(t) if r.fault.kind.on_stream() => Some(*t),
                    _ => r.next_ms,
                };
                json!({
                    "fault": r.fault.to_string(),
                    "next": next.filter(|t| *t != i64::MAX),
                    "fired": r.fired,
                })
            })
            .collect();
        json!({
            "origin": self.origin_ms.load(Ordering::SeqCst),
            "restRequests": st.rest_count,
            "orderPlacements": st.ack_count,
            "schedule": schedule,
            "fired": st.fired,
        })
    }
}

/// A counted rule at request `n`: due by count, or armed by time and not yet fired.
fn counted_due(r: &mut Rule, n: u64, now_ms: i64) -> bool {
    let due = match (r.fault.every, r.next_ms) {
        (Some(Every::Count(c)), _) => n % c == 0,
        (_, Some(t)) if t <= now_ms => {
            r.next_ms = None;
            true
        }
        _ => false,
    };
    if due {
        r.fired += 1;
    }
    due
}

/// The first firing of a fault, absolute venue ms.
fn first_ms(f: &Fault, origin: i64) -> Option<i64> {
    match (f.at_ms, f.every) {
        (Some(a), _) => Some(origin + a),
        (None, Some(Every::Ms(p))) => Some(origin + p),
        _ => None,
    }
}

/// After a firing due at `due` seen at `now`: the next one (past `now`), if the fault repeats.
fn advance(f: &Fault, due: i64, now: i64) -> Option<i64> {
    match f.every {
        Some(Every::Ms(p)) => {
            let mut n = due + p;
            if n <= now {
                n += ((now - n) / p + 1) * p;
            }
            Some(n)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses_and_prints_back() {
        let spec = "drop-connections@at=30s;drop-connections@every=60s;gap@at=10s;freeze@stream=btcusdt@depth@0ms,at=20s,for=5s;rest-5xx@every=50;rest-timeout@at=40s;ack-delay@ms=500;ack-drop@every=10;listenkey-expire@at=45s;malformed@stream=btcusdt@bookTicker,at=15s";
        let f = parse(spec, None).unwrap();
        assert_eq!(f.len(), 10);
        let back: Vec<String> = f.iter().map(|f| f.to_string()).collect();
        assert_eq!(parse(&back.join(";"), None).unwrap(), f);
        assert_eq!(f[3].stream.as_deref(), Some("btcusdt@depth@0ms"));
        assert_eq!(f[3].for_ms, Some(5000));
        assert_eq!(f[4].every, Some(Every::Count(50)));
        assert_eq!(f[1].every, Some(Every::Ms(60_000)));
    }

    #[test]
    fn advance_skips_past_now() {
        let f = parse("drop-connections@every=10s", None).unwrap().remove(0);
        assert_eq!(advance(&f, 10_000, 10_000), Some(20_000));
        assert_eq!(advance(&f, 10_000, 35_000), Some(40_000));
    }

    /// A venue clock origin that is not a round number.
    const ORIGIN: i64 = 1_723_161_234_567;

    fn faults(spec: &str) -> Faults {
        let f = Faults::new(parse(spec, None).unwrap(), false);
        f.set_origin(ORIGIN);
        f
    }

    /// Feeds `stream` one message at each time (ms since the origin, its `E`): the times
    /// dropped and the times truncated (the truncated payload checked to be invalid JSON).
    fn feed(f: &Faults, stream: &str, times: impl IntoIterator<Item = i64>) -> [Vec<i64>; 2] {
        let (mut dropped, mut truncated) = (Vec::new(), Vec::new());
        for t in times {
            let e = ORIGIN + t;
            let data = format!(r#"{{"e":"depthUpdate","E":{e},"T":{e},"s":"BTCUSDT","U":1}}"#);
            match f.on_stream(stream, data.clone(), i64::MIN) {
                None => dropped.push(t),
                Some(d) if d == data => {}
                Some(d) => {
                    assert!(serde_json::from_str::<Value>(&d).is_err(), "{d}");
                    truncated.push(t);
                }
            }
        }
        [dropped, truncated]
    }

    /// Nothing dropped, nothing truncated.
    const UNTOUCHED: [Vec<i64>; 2] = [Vec::new(), Vec::new()];

    fn every_100ms(to_ms: i64) -> impl Iterator<Item = i64> {
        (0..=to_ms).step_by(100)
    }

    #[test]
    fn gap_every_drops_one_message_per_period_of_each_depth_stream() {
        let f = faults("gap@every=2s");
        let [dropped, _] = feed(&f, "btcusdt@depth@0ms", every_100ms(8_000));
        assert_eq!(dropped, [2_000, 4_000, 6_000, 8_000]);
        // Another depth stream has its own schedule: the first message at or after each
        // firing time, one per period however sparse the messages (12,500 stands for the
        // firings of 10 s and 12 s, not two).
        let times = [
            50, 1_900, 2_300, 2_400, 5_100, 6_100, 12_500, 13_900, 14_000,
        ];
        let [dropped, _] = feed(&f, "btcusdt@depth@100ms", times);
        assert_eq!(dropped, [2_300, 5_100, 6_100, 12_500, 14_000]);
        // Not a depth stream: untouched.
        assert_eq!(
            feed(&f, "btcusdt@bookTicker", every_100ms(8_000)),
            UNTOUCHED
        );
        assert_eq!(f.report()["schedule"][0]["fired"], 9);
    }

    #[test]
    fn at_with_every_starts_the_repeats_at_at() {
        let f = faults("gap@at=1s,every=3s");
        let [dropped, _] = feed(&f, "btcusdt@depth@0ms", every_100ms(8_000));
        assert_eq!(dropped, [1_000, 4_000, 7_000]);
        // Without every=, once.
        let f = faults("gap@at=1s");
        let [dropped, _] = feed(&f, "btcusdt@depth@0ms", every_100ms(8_000));
        assert_eq!(dropped, [1_000]);
    }

    #[test]
    fn freeze_every_drops_each_window_and_nothing_between() {
        let f = faults("freeze@stream=btcusdt@depth@0ms,at=1s,for=500ms,every=2s");
        let [dropped, _] = feed(&f, "btcusdt@depth@0ms", every_100ms(8_000));
        let want: Vec<i64> = every_100ms(8_000)
            .filter(|t| (1_000..1_500).contains(&(t % 2_000)))
            .collect();
        assert_eq!(want.len(), 20);
        assert_eq!(dropped, want);
        assert_eq!(f.report()["schedule"][0]["fired"], 4, "one per window");
        // Other streams run on.
        assert_eq!(
            feed(&f, "btcusdt@bookTicker", every_100ms(8_000)),
            UNTOUCHED
        );
        // Sparse messages: only those inside a window, whichever window it is.
        let f = faults("freeze@stream=btcusdt@depth@0ms,at=1s,for=500ms,every=2s");
        let times = [900, 3_200, 3_600, 9_400, 9_499, 9_500, 11_000];
        let [dropped, _] = feed(&f, "btcusdt@depth@0ms", times);
        assert_eq!(dropped, [3_200, 9_400, 9_499, 11_000]);
    }

    #[test]
    fn malformed_every_truncates_one_message_per_period() {
        let f = faults("malformed@stream=btcusdt@bookTicker,every=2s");
        let [dropped, truncated] = feed(&f, "btcusdt@bookTicker", every_100ms(8_000));
        assert!(dropped.is_empty());
        assert_eq!(truncated, [2_000, 4_000, 6_000, 8_000]);
        assert_eq!(feed(&f, "btcusdt@depth@0ms", every_100ms(8_000)), UNTOUCHED);
    }

    #[test]
    fn the_report_shows_a_repeating_stream_faults_next_firing() {
        let f = faults("gap@every=2s");
        assert_eq!(f.report()["schedule"][0]["next"], ORIGIN + 2_000);
        feed(&f, "btcusdt@depth@0ms", [2_300]);
        assert_eq!(f.report()["schedule"][0]["next"], ORIGIN + 4_000);
        let f = faults("malformed@stream=btcusdt@bookTicker,at=1s");
        feed(&f, "btcusdt@bookTicker", [1_000]);
        assert_eq!(
            f.report()["schedule"][0]["next"],
            Value::Null,
            "fired, done"
        );
    }
}
