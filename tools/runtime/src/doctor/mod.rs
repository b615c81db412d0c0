//! `ringmaker doctor`: what the tuning runbook (`tuning/README.md`) checks, read from this host
//! and held against the config's `[cpu]`, each item a [`Check`] that passes, warns, fails or
//! only informs, with the fix.
//!
//! Two kinds of input, kept apart so that every check runs in a test against a fake host:
//!
//! - files under a root directory (`/` on a real host): `/sys`, `/proc`, `/dev`. A missing or
//!   unreadable file is something the check reports, never an error;
//! - [`Facts`]: what only a system call answers (the process's CPU mask, `adjtimex`, resource
//!   limits, each interface's `SO_TIMESTAMPING` capabilities), gathered once by
//!   [`Facts::gather`] or written out by a test.
//!
//! The status rule: an untuned host gets warnings; [`Status::Fail`] only where a run with the
//! config given would not run as configured (a core in an explicit `[cpu]` that this host does
//! not have, `SCHED_FIFO` or `mlockall` asked for and not permitted, a layout `strict_pinning`
//! refuses).
//!
//! Nothing here is on a hot path: it allocates freely.

mod checks;
mod ethtool;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::live::config::{CpuConfig, RingsConfig};
pub use ethtool::TsInfo;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As the runbook wants it.
    Pass,
    /// Nothing to judge (a VM without cpufreq, a loopback interface, a setting not asked for).
    Info,
    /// Untuned: the run works, with more jitter or less trustworthy stamps than it could have.
    Warn,
    /// A run with this config would not run as configured.
    Fail,
}

impl Status {
    /// `PASS`, `INFO`, `WARN`, `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Info => "INFO",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// The part of the host a check looks at (the report is grouped by it, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// Cores online and usable.
    Cpus,
    /// Kernel isolation of the hot cores: isolcpus, nohz_full, rcu_nocbs.
    Isolation,
    /// Frequency governor and idle states.
    Power,
    /// Transparent huge pages, the memlock limit.
    Memory,
    /// irqbalance and where interrupts may land.
    Irqs,
    /// Clocksource, TSC, the kernel's clock discipline, PTP hardware clocks.
    Clock,
    /// `SO_TIMESTAMPING` capabilities of each interface.
    Network,
    /// The config's `[cpu]` against this host.
    Config,
}

impl Area {
    /// Every area, in report order.
    pub const ALL: [Area; 8] = [
        Area::Cpus,
        Area::Isolation,
        Area::Power,
        Area::Memory,
        Area::Irqs,
        Area::Clock,
        Area::Network,
        Area::Config,
    ];

    /// Its heading in the report.
    pub fn name(self) -> &'static str {
        match self {
            Area::Cpus => "cpus",
            Area::Isolation => "isolation",
            Area::Power => "power",
            Area::Memory => "memory",
            Area::Irqs => "irqs",
            Area::Clock => "clock",
            Area::Network => "network",
            Area::Config => "config",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Where it belongs in the report.
    pub area: Area,
    /// What was checked, short (`governor`, `timestamping eth0`).
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What this host has.
    pub found: String,
    /// What to do about it (always given for a warning or a failure).
    pub fix: Option<String>,
}

impl Check {
    fn new(area: Area, name: impl Into<String>, status: Status, found: impl Into<String>) -> Check {
        Check {
            area,
            name: name.into(),
            status,
            found: found.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// The config's part in the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigInput {
    /// `[cpu]` (the defaults when the file has none).
    pub cpu: CpuConfig,
    /// `[rings]` (their size is the least that `mlockall` must lock).
    pub rings: RingsConfig,
    /// The file has a `[cpu]` table: its cores are asked for, not the reference layout's
    /// defaults, and a core this host lacks fails instead of warning.
    pub explicit_cpu: bool,
}

impl ConfigInput {
    /// From a run config's TOML text and its parsed live sections.
    pub fn from_toml(text: &str, cpu: CpuConfig, rings: RingsConfig) -> ConfigInput {
        let explicit_cpu = toml::from_str::<toml::Table>(text)
            .map(|t| t.contains_key("cpu"))
            .unwrap_or(false);
        ConfigInput {
            cpu,
            rings,
            explicit_cpu,
        }
    }
}

/// One network interface and what the kernel says it can stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name (`eth0`).
    pub name: String,
    /// `ETHTOOL_GET_TS_INFO`'s answer, or why there is none.
    pub timestamping: Result<TsInfo, String>,
}

/// What the checks need that only a system call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The cores this process may run on (its affinity mask).
    pub allowed_cores: Vec<usize>,
    /// `adjtimex(modes = 0)`, or why it failed.
    pub clock: Result<feeds::net::clockcheck::ClockState, String>,
    /// Interfaces under `<root>/sys/class/net`, each queried.
    pub interfaces: Vec<Interface>,
    /// Soft `RLIMIT_MEMLOCK`, bytes (`None`: unlimited).
    pub memlock: Option<u64>,
    /// Soft `RLIMIT_RTPRIO` (`None`: unlimited).
    pub rtprio: Option<u64>,
    /// Effective user id (0: root, which needs no limit).
    pub euid: u32,
}

impl Facts {
    /// Asks this host. Interfaces are listed from `<root>/sys/class/net`; their capabilities are
    /// asked of this kernel only when `root` is `/` (a fake tree's names mean nothing to it).
    pub fn gather(root: &Path) -> Facts {
        let real = root == Path::new("/");
        let interfaces = checks::list_dir(&root.join("sys/class/net"))
            .into_iter()
            .map(|name| {
                let timestamping = if real {
                    ethtool::ts_info(&name).map_err(|e| e.to_string())
                } else {
                    Err("not asked: the root is not /".to_string())
                };
                Interface { name, timestamping }
            })
            .collect();
        Facts {
            allowed_cores: crate::live::pinning::available_cores(),
            clock: feeds::net::clockcheck::clock_state().map_err(|e| e.to_string()),
            interfaces,
            memlock: soft_limit(libc::RLIMIT_MEMLOCK),
            rtprio: soft_limit(libc::RLIMIT_RTPRIO),
            // SAFETY: `geteuid` takes no arguments and cannot fail.
            euid: unsafe { libc::geteuid() },
        }
    }
}

/// The soft limit of `resource` (`None`: unlimited, or unreadable, which only happens for a
/// resource this kernel does not know).
#[allow(clippy::useless_conversion)] // `rlim_t` is `u64` on some targets
fn soft_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(u64::from(lim.rlim_cur))
}

/// Everything `ringmaker doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `hostname (kernel release)`, from `<root>/proc/sys/kernel`.
    pub host: String,
    /// The checks, in [`Area`] order.
    pub checks: Vec<Check>,
}

impl Report {
    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The worst status of any check (`Pass` when there are none).
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass)
    }
}

/// Runs every check against the tree under `root` and `facts`, with `config`'s `[cpu]` (the
/// reference layout's defaults when there is no config).
pub fn diagnose(root: &Path, facts: &Facts, config: Option<&ConfigInput>) -> Report {
    let default_config;
    let config = match config {
        Some(c) => c,
        None => {
            default_config = ConfigInput {
                cpu: CpuConfig::default(),
                rings: RingsConfig::default(),
                explicit_cpu: false,
            };
            &default_config
        }
    };
    let host = checks::Host::read(root, facts, config);
    let mut all = host.run();
    all.sort_by_key(|c| c.area); // stable: each area keeps its checks' order
    Report {
        host: host_name(root),
        checks: all,
    }
}

fn host_name(root: &Path) -> String {
    let read = |rel: &str| checks::read_trimmed(&root.join(rel));
    format!(
        "{} ({})",
        read("proc/sys/kernel/hostname").unwrap_or_else(|| "unknown host".to_string()),
        read("proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown kernel".to_string())
    )
}

/// The root of a real host's tree.
pub fn system_root() -> PathBuf {
    PathBuf::from("/")
}
