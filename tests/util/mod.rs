//! Shared helpers for the integration tests.

pub use test_support::{coinm, config_text, data, default_config, spot, usdm, TempDir};

use engine::{Event, ExecKind, ExecReport, Intent, IntentKind, ModeChange, Sink};

/// A stand-in venue for engine tests: acknowledges every place and confirms every cancel at
/// the next batch, and can fill orders on request. Preallocated: pushing reports allocates
/// nothing until `capacity` is exceeded.
#[derive(Debug)]
pub struct Responder {
    /// Intents seen, in order (kept only when `keep` is set).
    pub intents: Vec<Intent>,
    /// Mode changes seen.
    pub modes: Vec<ModeChange>,
    /// Reports to feed back at the next batch.
    pub pending: Vec<Event>,
    /// Whether to keep intents (tests) or only count them (allocation test).
    pub keep: bool,
    /// Intents seen.
    pub count: u64,
    /// Fill every n-th place in full right after its ack (0: never).
    pub fill_every: u64,
    now: i64,
}

impl Responder {
    /// A responder with room for `capacity` reports in flight.
    pub fn new(capacity: usize, keep: bool) -> Responder {
        Responder {
            intents: Vec::with_capacity(if keep { 1 << 16 } else { 0 }),
            modes: Vec::with_capacity(1024),
            pending: Vec::with_capacity(capacity),
            keep,
            count: 0,
            fill_every: 0,
            now: 0,
        }
    }

    /// Sets the time stamped on reports.
    pub fn at(&mut self, now: i64) {
        self.now = now;
    }

    /// A report for an order of ours.
    pub fn report(
        &self,
        instrument: u16,
        kind: ExecKind,
        cid: u64,
        px: i64,
        last: i64,
        cum: i64,
    ) -> Event {
        Event::exec(
            instrument,
            0,
            self.now,
            ExecReport::new(kind, cid, px, last, cum),
        )
    }
}

impl Sink for Responder {
    fn intent(&mut self, i: &Intent) {
        self.count += 1;
        if self.keep {
            self.intents.push(*i);
        }
        let kind = match i.kind {
            IntentKind::Place => ExecKind::Ack,
            IntentKind::Cancel => ExecKind::Canceled,
        };
        if self.pending.len() < self.pending.capacity() {
            let r = self.report(i.instrument, kind, i.client_order_id, 0, 0, 0);
            self.pending.push(r);
        }
        let fill =
            i.kind == IntentKind::Place && self.fill_every > 0 && self.count % self.fill_every == 0;
        if fill && self.pending.len() < self.pending.capacity() {
            let r = self.report(
                i.instrument,
                ExecKind::Fill,
                i.client_order_id,
                i.price,
                i.qty,
                i.qty,
            );
            self.pending.push(r);
        } else if i.kind == IntentKind::Place
            && i.tif == engine::TimeInForce::Ioc
            && self.pending.len() < self.pending.capacity()
        {
            // An IOC the venue does not fill ends at once, as on Binance.
            let r = self.report(i.instrument, ExecKind::Expired, i.client_order_id, 0, 0, 0);
            self.pending.push(r);
        }
    }

    fn mode_change(&mut self, m: &ModeChange) {
        if self.modes.len() < self.modes.capacity() {
            self.modes.push(*m);
        }
    }
}

/// The settings of the README's backtest (2 ms each way, risk-averse queue, 100 ms timer) on
/// `data`, each file bound by what it holds.
pub fn readme_settings(data: Vec<std::path::PathBuf>) -> runtime::backtest::Settings {
    runtime::backtest::Settings {
        data: feeds::DataSpec::plain(data),
        queue: runtime::backtest::QueueKind::RiskAverse,
        entry_latency_ns: 2_000_000,
        response_latency_ns: 2_000_000,
        timer_interval_ns: 100_000_000,
        latency_log: None,
        event_cache: None,
    }
}
