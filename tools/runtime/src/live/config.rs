//! The tool's own config sections, `[cpu]` and `[rings]`, read from the same TOML text as the
//! engine config (the engine accepts and ignores them).
//!
//! ```toml
//! [cpu]
//! engine = 3            # the engine thread's core (busy-spins: give it an isolated core)
//! feeds = [2]           # the feed thread's core (paper mode runs one feed: feeds[0])
//! gateway = 4           # the gateway thread's core
//! housekeeping = 0      # housekeeping and timer threads
//! strict_pinning = false  # true: refuse to start when a core is missing or shared by hot threads
//! sched_fifo = false    # true: the engine thread runs SCHED_FIFO (needs CAP_SYS_NICE / rtprio)
//! sched_priority = 10   # its SCHED_FIFO priority, 1..=99
//! mlockall = false      # true: lock all current and future pages (needs CAP_IPC_LOCK / memlock)
//! idle = "spin"         # idle engine/feed/gateway threads: "spin" (cores of their own) or
//!                       # "backoff" (a host whose hot threads share cores: sleep when idle)
//!
//! [rings]
//! input = 65536         # engine input ring slots (power of two)
//! output = 4096         # intent ring slots (power of two)
//! latency = 65536       # per-thread latency-stamp queue slots (power of two)
//! ```
//!
//! Without a `[cpu]` section the layout above is used (the architecture's reference host); on a
//! machine without those cores the run warns and leaves the threads unpinned (see
//! [`super::pinning`]).

use serde::Deserialize;

/// `[cpu]`: thread placement and scheduling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    /// The engine thread's core.
    pub engine: Option<usize>,
    /// Feed threads' cores (paper mode runs one feed thread, on the first).
    pub feeds: Vec<usize>,
    /// The gateway thread's core.
    pub gateway: Option<usize>,
    /// The housekeeping (and timer) threads' core.
    pub housekeeping: Option<usize>,
    /// Refuse to start when the plan cannot be honoured (missing core, hot threads sharing one).
    pub strict_pinning: bool,
    /// Run the engine thread under `SCHED_FIFO`.
    pub sched_fifo: bool,
    /// `SCHED_FIFO` priority of the engine thread (1..=99).
    pub sched_priority: i32,
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)` before the threads start.
    pub mlockall: bool,
    /// What the hot threads (engine, feed, gateway) do when idle.
    pub idle: IdleMode,
}

/// `[cpu] idle`: what an idle hot thread does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Busy-spin (the default): the lowest latency, a whole core each, for threads on isolated
    /// cores.
    #[default]
    Spin,
    /// After a few hundred empty polls, sleep about 50 µs between polls: for a host whose hot
    /// threads share cores with each other or with other processes (a small test or standby
    /// host), where spinning takes the time the others need. Costs up to that sleep plus the
    /// kernel's wake-up on the first event after a quiet spell.
    Backoff,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            engine: Some(3),
            feeds: vec![2],
            gateway: Some(4),
            housekeeping: Some(0),
            strict_pinning: false,
            sched_fifo: false,
            sched_priority: 10,
            mlockall: false,
            idle: IdleMode::Spin,
        }
    }
}

/// The largest ring, slots (2^24: 2 GiB of 128-byte slots). Sizes are checked against it before
/// anything is allocated.
pub const MAX_RING_SLOTS: usize = 1 << 24;

/// `[rings]`: ring sizes, in slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingsConfig {
    /// The engine's input ring (feed, gateway, timer and control publish into it).
    pub input: usize,
    /// The intent ring (engine → gateway).
    pub output: usize,
    /// Each thread's latency-stamp queue (→ housekeeping).
    pub latency: usize,
}

impl Default for RingsConfig {
    fn default() -> Self {
        RingsConfig {
            input: 1 << 16,
            output: 1 << 12,
            latency: 1 << 16,
        }
    }
}

/// `[feed]`: the live feed's clock check (a run on recordings ignores it).
///
/// ```toml
/// [feed]
/// clock_check = true         # pull quotes while the clock fails the check below (default false)
/// require_clock_sync = true  # adjtimex must say the clock is synchronised
/// max_clock_offset_ms = 500  # the median of (receive stamp - venue event time) at most this...
/// min_clock_offset_ms = -50  # ...and at least this
/// clock_min_samples = 20     # messages before the median is judged
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Check the clock and pull quotes while it fails.
    pub clock_check: bool,
    /// `adjtimex` must say the clock is synchronised.
    pub require_clock_sync: bool,
    /// Highest acceptable median receive-stamp offset behind the venue's event times, ms.
    pub max_clock_offset_ms: i64,
    /// Lowest acceptable median offset, ms (negative: our clock ahead of the venue's).
    pub min_clock_offset_ms: i64,
    /// Messages before the median is judged.
    pub clock_min_samples: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            clock_check: false,
            require_clock_sync: true,
            max_clock_offset_ms: 500,
            min_clock_offset_ms: -50,
            clock_min_samples: 20,
        }
    }
}

/// `[venue]`: the live order-entry session (`ringmaker run --live`). Credentials never come from
/// the file (a key here is refused as unknown): see `RINGMAKER_API_KEY` in the README.
///
/// ```toml
/// [venue]
/// rest_url = "https://fapi.binance.com"  # default; the WebSocket API and user stream follow
/// countdown_secs = 120       # dead-man switch: the venue cancels everything 120 s after the last refresh (0: off)
/// countdown_every_secs = 30  # refreshed this often while the gateway thread is alive
/// ack_timeout_ms = 5000      # an order without an answer this long is queried (order.status)
/// recv_window_ms = 5000      # recvWindow of every signed request
/// keepalive_secs = 1800      # listenKey keepalive (valid 60 minutes)
/// order_headroom = 0.9       # share of the venue's order limits used at most
/// account_orders_per_10s = 300   # the account's limits at the venue: the engine's budgets
/// account_orders_per_min = 1200  # ([engine] orders_per_10s / orders_per_min) must fit under them
/// stop_wait_secs = 10        # at the end, how long to wait for the cancels' answers
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrderEntryConfig {
    /// The venue's REST base (`https://host[:port]`; the WebSocket API and user stream on the
    /// same host). Default: Binance production (or the testnet with `--testnet`);
    /// `--venue-url` overrides it.
    pub rest_url: Option<String>,
    /// The dead-man switch's countdown, s (0: not armed).
    pub countdown_secs: u64,
    /// How often it is refreshed, s.
    pub countdown_every_secs: u64,
    /// An order without an answer this long is queried, ms.
    pub ack_timeout_ms: u64,
    /// `recvWindow`, ms.
    pub recv_window_ms: u32,
    /// listenKey keepalive period, s.
    pub keepalive_secs: u64,
    /// Share of a venue order limit used at most.
    pub order_headroom: f64,
    /// The account's order limit per 10 s at the venue (Binance USDⓈ-M default 300): the
    /// engine's `orders_per_10s` must stay at or under it.
    pub account_orders_per_10s: u32,
    /// The account's order limit per minute (default 1,200).
    pub account_orders_per_min: u32,
}

impl Default for OrderEntryConfig {
    fn default() -> Self {
        OrderEntryConfig {
            rest_url: None,
            countdown_secs: 120,
            countdown_every_secs: 30,
            ack_timeout_ms: 5_000,
            recv_window_ms: 5_000,
            keepalive_secs: 1_800,
            order_headroom: 0.9,
            account_orders_per_10s: 300,
            account_orders_per_min: 1_200,
        }
    }
}

impl Eq for OrderEntryConfig {}

/// `[ops]`: operations — the Prometheus endpoint and the control socket.
///
/// ```toml
/// [ops]
/// metrics_listen = "127.0.0.1:9187"  # serve /metrics here (default: off; port 0 picks one)
/// control = true                     # the run's control socket, <out>/ctl.sock (default true)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    /// Where `/metrics` is served (`None`: nowhere).
    pub metrics_listen: Option<String>,
    /// Open the control socket (`ringmaker ctl`) in the run's output folder.
    pub control: bool,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            metrics_listen: None,
            control: true,
        }
    }
}

impl OpsConfig {
    /// `metrics_listen` as a socket address (checked by [`LiveConfig::from_toml`]).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listen.as_deref().and_then(|a| a.parse().ok())
    }
}

/// `[bus]`: the link to the firm's NATS server (issue 19), on a thread of its own. Off unless
/// `url` is set; `ringmaker run --bus URL --engine NAME` set or override both.
///
/// ```toml
/// [bus]
/// url = "nats://10.0.0.5:4222"   # the NATS server (nats:// or tls://, host:port)
/// engine = "ny4-btc-1"           # this engine's name on the bus: letters, digits, - and _
/// prefix = "ringmaker"           # the firm-wide subjects' first tokens (default "ringmaker")
/// heartbeat_ms = 500             # how often this engine's state is published (default 500)
/// archive = true                 # stream the journal to the bus's JetStream archive
/// archive_days = 30              # how long the archive keeps it (1 to 3,650)
/// lease_ms = 3000                # a live engine's leadership lease: its time to live (500 to 60,000)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// The NATS server (`None`: no bus).
    pub url: Option<String>,
    /// This engine's name on the bus (required with `url`).
    pub engine: Option<String>,
    /// The first token(s) of every firm-wide subject.
    pub prefix: String,
    /// The heartbeat's period, ms.
    pub heartbeat_ms: u64,
    /// Stream the journal to the bus's JetStream archive.
    pub archive: bool,
    /// How long the archive keeps a journal, days.
    pub archive_days: u32,
    /// The time to live of a live engine's leadership lease (`crate::lease`), ms: a standby
    /// takes over this long after the leader's last renewal at the earliest; the leader stops
    /// sending to the venue before it lapses unless a renewal was confirmed.
    pub lease_ms: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: None,
            engine: None,
            prefix: "ringmaker".into(),
            heartbeat_ms: 500,
            archive: true,
            archive_days: 30,
            lease_ms: 3_000,
        }
    }
}

impl BusConfig {
    /// Checks the section as a whole (after command-line overrides too).
    pub fn check(&self) -> Result<(), LiveConfigError> {
        let invalid = |field, value: &str, rule| {
            Err(LiveConfigError::Invalid {
                field,
                value: value.to_owned(),
                rule,
            })
        };
        if let Some(u) = &self.url {
            if crate::bus::server_of(u).is_none() {
                return invalid(
                    "bus.url",
                    &crate::bus::redact_url(u),
                    "a NATS server as nats://HOST:PORT or tls://HOST:PORT (or HOST:PORT)",
                );
            }
            if self.engine.is_none() {
                return invalid(
                    "bus.engine",
                    "(none)",
                    "an engine on the bus needs a name: [bus] engine = \"NAME\" or --engine NAME",
                );
            }
        }
        if let Some(e) = &self.engine {
            if !crate::bus::is_token(e) {
                return invalid(
                    "bus.engine",
                    e,
                    "1 to 64 letters, digits, '-' or '_' (one NATS subject token)",
                );
            }
        }
        if self.prefix.len() > 128 || !self.prefix.split('.').all(crate::bus::is_token) {
            return invalid(
                "bus.prefix",
                &self.prefix,
                "tokens of letters, digits, '-' or '_' joined by '.' (128 bytes at most)",
            );
        }
        if !(1..=3_650).contains(&self.archive_days) {
            return invalid(
                "bus.archive_days",
                &self.archive_days.to_string(),
                "from 1 to 3,650 days",
            );
        }
        if !(500..=60_000).contains(&self.lease_ms) {
            return invalid(
                "bus.lease_ms",
                &self.lease_ms.to_string(),
                "from 500 to 60,000 ms",
            );
        }
        if !(50..=60_000).contains(&self.heartbeat_ms) {
            return invalid(
                "bus.heartbeat_ms",
                &self.heartbeat_ms.to_string(),
                "from 50 to 60,000 ms",
            );
        }
        Ok(())
    }
}

/// The sections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LiveConfig {
    /// `[cpu]`.
    #[serde(default)]
    pub cpu: CpuConfig,
    /// `[rings]`.
    #[serde(default)]
    pub rings: RingsConfig,
    /// `[feed]`.
    #[serde(default)]
    pub feed: FeedConfig,
    /// `[venue]`.
    #[serde(default, rename = "venue")]
    pub order_entry: OrderEntryConfig,
    /// `[ops]`.
    #[serde(default)]
    pub ops: OpsConfig,
    /// `[bus]`.
    #[serde(default)]
    pub bus: BusConfig,
    /// `[firm]`.
    #[serde(default)]
    pub firm: crate::firm::FirmConfig,
}

/// A `[cpu]`, `[rings]`, `[feed]` or `[venue]` value the tool cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveConfigError {
    /// The sections do not parse (unknown key, wrong type).
    #[error("[cpu] / [rings] / [feed] / [venue] / [ops] / [bus] / [firm]: {0}")]
    Toml(String),
    /// A value breaks a rule.
    #[error("invalid {field} = {value}: {rule}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
}

impl LiveConfig {
    /// Reads `[cpu]` and `[rings]` from the config's TOML text (other tables are the engine's).
    pub fn from_toml(text: &str) -> Result<LiveConfig, LiveConfigError> {
        let c: LiveConfig =
            toml::from_str(text).map_err(|e| LiveConfigError::Toml(e.message().to_string()))?;
        for (field, v) in [
            ("rings.input", c.rings.input),
            ("rings.output", c.rings.output),
            ("rings.latency", c.rings.latency),
        ] {
            if !v.is_power_of_two() || !(2..=MAX_RING_SLOTS).contains(&v) {
                return Err(LiveConfigError::Invalid {
                    field,
                    value: v.to_string(),
                    rule: "a ring size is a power of two from 2 to 2^24",
                });
            }
        }
        let f = &c.feed;
        if f.min_clock_offset_ms > f.max_clock_offset_ms
            || f.max_clock_offset_ms.checked_mul(1_000_000).is_none()
            || f.min_clock_offset_ms.checked_mul(1_000_000).is_none()
        {
            return Err(LiveConfigError::Invalid {
                field: "feed.min_clock_offset_ms",
                value: format!("{} (max {})", f.min_clock_offset_ms, f.max_clock_offset_ms),
                rule: "the offset window is min <= max, within +-9.2e12 ms",
            });
        }
        if !(1..=1_000_000).contains(&f.clock_min_samples) {
            return Err(LiveConfigError::Invalid {
                field: "feed.clock_min_samples",
                value: f.clock_min_samples.to_string(),
                rule: "from 1 to 1,000,000 messages",
            });
        }
        c.bus.check()?;
        c.firm
            .check()
            .map_err(|(field, value, rule)| LiveConfigError::Invalid { field, value, rule })?;
        if let Some(a) = &c.ops.metrics_listen {
            if a.parse::<std::net::SocketAddr>().is_err() {
                return Err(LiveConfigError::Invalid {
                    field: "ops.metrics_listen",
                    value: a.clone(),
                    rule: "an IP address and port, e.g. \"127.0.0.1:9187\" (port 0: any free port)",
                });
            }
        }
        let o = &c.order_entry;
        let checks: [(&'static str, bool, String, &'static str); 5] = [
            (
                "venue.countdown_secs",
                o.countdown_secs == 0 || (10..=3_600).contains(&o.countdown_secs),
                o.countdown_secs.to_string(),
                "0 (off) or 10 to 3,600 s",
            ),
            (
                "venue.countdown_every_secs",
                o.countdown_secs == 0
                    || (1..=o.countdown_secs / 2).contains(&o.countdown_every_secs),
                o.countdown_every_secs.to_string(),
                "from 1 s to half the countdown (a refresh must never be late)",
            ),
            (
                "venue.ack_timeout_ms",
                (100..=60_000).contains(&o.ack_timeout_ms),
                o.ack_timeout_ms.to_string(),
                "from 100 to 60,000 ms",
            ),
            (
                "venue.recv_window_ms",
                (1..=60_000).contains(&o.recv_window_ms),
                o.recv_window_ms.to_string(),
                "from 1 to 60,000 ms (Binance's maximum)",
            ),
            (
                "venue.keepalive_secs",
                (60..=3_000).contains(&o.keepalive_secs),
                o.keepalive_secs.to_string(),
                "from 60 to 3,000 s (a listenKey lives 60 minutes)",
            ),
        ];
        for (field, ok, value, rule) in checks {
            if !ok {
                return Err(LiveConfigError::Invalid { field, value, rule });
            }
        }
        if !(o.order_headroom > 0.0 && o.order_headroom <= 1.0) {
            return Err(LiveConfigError::Invalid {
                field: "venue.order_headroom",
                value: o.order_headroom.to_string(),
                rule: "a share above 0 and at most 1",
            });
        }
        if !(1..=99).contains(&c.cpu.sched_priority) {
            return Err(LiveConfigError::Invalid {
                field: "cpu.sched_priority",
                value: c.cpu.sched_priority.to_string(),
                rule: "SCHED_FIFO priorities are 1..=99",
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_section() {
        let c = LiveConfig::from_toml(
            "[bus]\nurl = \"nats://10.0.0.5:4222\"\nengine = \"ny4-btc_1\"\nprefix = \"firm.mm\"\n",
        )
        .unwrap();
        assert_eq!(c.bus.url.as_deref(), Some("nats://10.0.0.5:4222"));
        assert_eq!(
            (c.bus.prefix.as_str(), c.bus.heartbeat_ms),
            ("firm.mm", 500)
        );
        assert_eq!(LiveConfig::from_toml("").unwrap().bus.url, None);
        for (text, field) in [
            ("url = \"nats://h:4222\"", "bus.engine"),
            ("url = \"http://h\"\nengine = \"e\"", "bus.url"),
            ("url = \"nats://h:0\"\nengine = \"e\"", "bus.url"),
            ("engine = \"a.b\"", "bus.engine"),
            ("engine = \"*\"", "bus.engine"),
            ("prefix = \"a..b\"", "bus.prefix"),
            ("prefix = \"a.>\"", "bus.prefix"),
            ("heartbeat_ms = 10", "bus.heartbeat_ms"),
            ("heartbeat_ms = 600000", "bus.heartbeat_ms"),
            ("lease_ms = 100", "bus.lease_ms"),
            ("lease_ms = 600000", "bus.lease_ms"),
        ] {
            match LiveConfig::from_toml(&format!("[bus]\n{text}\n")) {
                Err(LiveConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            LiveConfig::from_toml("[bus]\nserver = \"x\"\n"),
            Err(LiveConfigError::Toml(_))
        ));
        // A password in the URL is never in the message.
        let e = LiveConfig::from_toml("[bus]\nurl = \"nats://u:s3cret@h\"\nengine = \"e\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nats://***@h") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn idle_mode() {
        assert_eq!(LiveConfig::default().cpu.idle, IdleMode::Spin);
        let c = LiveConfig::from_toml("[cpu]\nidle = \"backoff\"\n").unwrap();
        assert_eq!(c.cpu.idle, IdleMode::Backoff);
        assert!(matches!(
            LiveConfig::from_toml("[cpu]\nidle = \"sleep\"\n"),
            Err(LiveConfigError::Toml(_))
        ));
        let c = LiveConfig::from_toml("[bus]\nlease_ms = 500\n").unwrap();
        assert_eq!(c.bus.lease_ms, 500);
    }

    #[test]
    fn defaults_without_sections() {
        let c = LiveConfig::from_toml("[engine]\nbook_slots = 8\n").unwrap();
        assert_eq!(c, LiveConfig::default());
        assert_eq!(c.cpu.engine, Some(3));
        assert_eq!(c.rings.input, 65536);
    }

    #[test]
    fn reads_both_sections_and_ignores_the_engines() {
        let c = LiveConfig::from_toml(
            "[engine]\nx = 1\n[cpu]\nengine = 1\nfeeds = [0]\nstrict_pinning = true\n\
             [rings]\ninput = 8\n[[instrument]]\nsymbol = \"X\"\n",
        )
        .unwrap();
        assert_eq!(c.cpu.engine, Some(1));
        assert_eq!(c.cpu.feeds, vec![0]);
        assert_eq!(c.cpu.gateway, Some(4));
        assert!(c.cpu.strict_pinning);
        assert_eq!(c.rings.input, 8);
        assert_eq!(c.rings.output, 4096);
    }

    #[test]
    fn rejects_bad_sizes_and_typos() {
        let e = LiveConfig::from_toml("[rings]\ninput = 1000\n").unwrap_err();
        assert!(e.to_string().contains("rings.input = 1000"), "{e}");
        let e = LiveConfig::from_toml("[cpu]\nengien = 1\n").unwrap_err();
        assert!(e.to_string().contains("engien"), "{e}");
        let e = LiveConfig::from_toml("[venue]\ncountdown_every_secs = 100\n").unwrap_err();
        assert!(e.to_string().contains("countdown_every_secs = 100"), "{e}");
        let e = LiveConfig::from_toml("[venue]\norder_headroom = nan\n").unwrap_err();
        assert!(e.to_string().contains("order_headroom"), "{e}");
        let e = LiveConfig::from_toml("[venue]\nrecv_window_ms = 0\n").unwrap_err();
        assert!(e.to_string().contains("recv_window_ms"), "{e}");
        let e = LiveConfig::from_toml("[cpu]\nsched_priority = 0\n").unwrap_err();
        assert!(e.to_string().contains("sched_priority"), "{e}");
    }
}
