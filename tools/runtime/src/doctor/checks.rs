//! The checks, one function each, over a [`Host`]: the files read from the root once, the
//! [`Facts`] and the config.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Area, Check, ConfigInput, Facts, Status};
use crate::live::pinning;
use crate::live::rings::{InSlot, OutSlot};

/// An idle state whose exit latency is above this many µs is "deep": waking from it costs more
/// than the engine's whole per-event budget. C1 (`halt`/`mwait` C1, 1–2 µs) and polling stay.
const DEEP_CSTATE_US: u64 = 2;

/// `CAP_IPC_LOCK` (`include/uapi/linux/capability.h`): `mlockall` past `RLIMIT_MEMLOCK`.
const CAP_IPC_LOCK: u32 = 14;
/// `CAP_SYS_NICE`: `SCHED_FIFO` past `RLIMIT_RTPRIO`.
const CAP_SYS_NICE: u32 = 23;

/// `ARPHRD_LOOPBACK` (`include/uapi/linux/if_arp.h`), as `/sys/class/net/*/type` shows it.
const ARPHRD_LOOPBACK: &str = "772";

/// The host as the checks see it.
pub(super) struct Host<'a> {
    root: &'a Path,
    facts: &'a Facts,
    config: &'a ConfigInput,
    /// `/sys/devices/system/cpu/online`, parsed (`None`: unreadable).
    online: Option<Vec<usize>>,
    /// Kernel command-line words before `--` (the rest is init's).
    cmdline: Vec<String>,
    /// Isolated cores: `/sys/devices/system/cpu/isolated`, else `isolcpus=` (its core list).
    isolated: Vec<usize>,
}

impl<'a> Host<'a> {
    pub(super) fn read(root: &'a Path, facts: &'a Facts, config: &'a ConfigInput) -> Host<'a> {
        let cmdline: Vec<String> = read_trimmed(&root.join("proc/cmdline"))
            .unwrap_or_default()
            .split_whitespace()
            .take_while(|w| *w != "--")
            .map(str::to_string)
            .collect();
        let mut host = Host {
            root,
            facts,
            config,
            online: read_trimmed(&root.join("sys/devices/system/cpu/online"))
                .and_then(|s| parse_cpu_list(&s)),
            cmdline,
            isolated: Vec::new(),
        };
        host.isolated = host
            .sys_cpu_list("isolated")
            .filter(|v| !v.is_empty())
            .or_else(|| host.cmdline_value("isolcpus").and_then(isolcpus_cores))
            .unwrap_or_default();
        host
    }

    pub(super) fn run(&self) -> Vec<Check> {
        let mut out = vec![
            self.cpus(),
            self.isolated_cores(),
            self.nohz_full(),
            self.rcu_nocbs(),
            self.governor(),
            self.cstates(),
            self.thp(),
            self.memlock(),
            self.irqbalance(),
            self.irq_affinity(),
            self.clocksource(),
            self.tsc(),
            self.adjtimex(),
            self.ptp(),
        ];
        out.extend(self.timestamping());
        out.extend(self.config_cores());
        out.push(self.config_isolation());
        out.push(self.config_sharing());
        out.push(self.config_housekeeping());
        out.push(self.sched_fifo());
        out
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn sys_cpu_list(&self, name: &str) -> Option<Vec<usize>> {
        read_trimmed(&self.path(&format!("sys/devices/system/cpu/{name}")))
            .and_then(|s| parse_cpu_list(&s))
    }

    /// The value of the last `key=value` word on the kernel command line (the kernel's rule).
    fn cmdline_value(&self, key: &str) -> Option<&str> {
        self.cmdline
            .iter()
            .rev()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    fn online_cores(&self) -> Vec<usize> {
        self.online.clone().unwrap_or_default()
    }

    /// Engine, feed and gateway cores of the config that this host has online.
    fn hot_cores(&self) -> Vec<usize> {
        let online = self.online_cores();
        let mut hot: Vec<usize> = self
            .hot_roles()
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| online.contains(c))
            .collect();
        hot.sort_unstable();
        hot.dedup();
        hot
    }

    /// Hot roles and their configured cores (every feed core, not only the first).
    fn hot_roles(&self) -> Vec<(String, usize)> {
        let cpu = &self.config.cpu;
        let mut v = Vec::new();
        if let Some(c) = cpu.engine {
            v.push(("engine".to_string(), c));
        }
        for (i, &c) in cpu.feeds.iter().enumerate() {
            v.push((format!("feeds[{i}]"), c));
        }
        if let Some(c) = cpu.gateway {
            v.push(("gateway".to_string(), c));
        }
        v
    }

    /// The cores to isolate: the config's hot cores this host has, else every online core but
    /// the first (housekeeping).
    fn suggested_isolation(&self) -> Vec<usize> {
        let hot = self.hot_cores();
        if !hot.is_empty() {
            return hot;
        }
        self.online_cores().into_iter().skip(1).collect()
    }

    fn boot_fix(&self) -> String {
        let iso = self.suggested_isolation();
        if iso.is_empty() {
            return "one core cannot be split into housekeeping and hot cores: use a host with \
                    more"
                .to_string();
        }
        let rest: Vec<usize> = self
            .online_cores()
            .into_iter()
            .filter(|c| !iso.contains(c))
            .collect();
        let l = format_cpu_list(&iso);
        format!(
            "boot with `isolcpus={l} nohz_full={l} rcu_nocbs={l} irqaffinity={}` (bash \
             tuning/apply-runbook.sh prints the line for a config)",
            format_cpu_list(&rest)
        )
    }

    fn cpus(&self) -> Check {
        let name = "cpus online";
        let Some(online) = &self.online else {
            return Check::new(
                Area::Cpus,
                name,
                Status::Warn,
                "/sys/devices/system/cpu/online unreadable",
            )
            .fix("mount sysfs at /sys");
        };
        let allowed = &self.facts.allowed_cores;
        let found = format!(
            "{} online ({}), {} usable by this process ({})",
            online.len(),
            format_cpu_list(online),
            allowed.len(),
            format_cpu_list(allowed)
        );
        if online.len() < 4 {
            Check::new(Area::Cpus, name, Status::Warn, found).fix(
                "the reference layout pins 4 threads (engine, feed, gateway, housekeeping) on \
                 4 cores; with fewer, hot threads share cores or run unpinned: use a host with \
                 at least 4 (better 6: 2 left for the OS)",
            )
        } else if allowed.len() < online.len() {
            Check::new(Area::Cpus, name, Status::Info, found).fix(
                "this process runs under a CPU mask (taskset, cgroup cpuset): the [cpu] cores \
                 must be inside it",
            )
        } else {
            Check::new(Area::Cpus, name, Status::Pass, found)
        }
    }

    fn isolated_cores(&self) -> Check {
        let name = "isolated cores";
        let from_cmdline = self.cmdline_value("isolcpus");
        if self.isolated.is_empty() {
            return Check::new(
                Area::Isolation,
                name,
                Status::Warn,
                format!(
                    "none (isolated: empty; isolcpus= {})",
                    from_cmdline.unwrap_or("unset")
                ),
            )
            .fix(self.boot_fix());
        }
        Check::new(
            Area::Isolation,
            name,
            Status::Pass,
            format!(
                "{} (isolcpus={})",
                format_cpu_list(&self.isolated),
                from_cmdline.unwrap_or("unset")
            ),
        )
    }

    fn nohz_full(&self) -> Check {
        let name = "nohz_full";
        // The file says "(null)" or is empty when unset, and is absent on a kernel built
        // without CONFIG_NO_HZ_FULL.
        let sys = self.sys_cpu_list("nohz_full").filter(|v| !v.is_empty());
        let cmd = self.cmdline_value("nohz_full");
        match sys {
            Some(cores) => Check::new(
                Area::Isolation,
                name,
                Status::Pass,
                format!("{} (tick stopped there)", format_cpu_list(&cores)),
            ),
            None => Check::new(
                Area::Isolation,
                name,
                Status::Warn,
                format!(
                    "no core (nohz_full= {}): the scheduler tick interrupts every core",
                    cmd.unwrap_or("unset")
                ),
            )
            .fix(self.boot_fix()),
        }
    }

    fn rcu_nocbs(&self) -> Check {
        let name = "rcu_nocbs";
        match self.cmdline_value("rcu_nocbs") {
            Some(v) if !v.is_empty() => Check::new(
                Area::Isolation,
                name,
                Status::Pass,
                format!("rcu_nocbs={v} (RCU callbacks off those cores)"),
            ),
            _ => Check::new(
                Area::Isolation,
                name,
                Status::Warn,
                "unset: RCU callbacks run on every core",
            )
            .fix(self.boot_fix()),
        }
    }

    fn governor(&self) -> Check {
        let name = "governor";
        let mut by_core = Vec::new();
        for c in self.online_cores() {
            if let Some(g) = read_trimmed(&self.path(&format!(
                "sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
            ))) {
                by_core.push((c, g));
            }
        }
        if by_core.is_empty() {
            return Check::new(
                Area::Power,
                name,
                Status::Info,
                "no cpufreq on any core: a VM, or frequency managed by firmware or the \
                 hypervisor; nothing to set here",
            );
        }
        let found = by_core
            .iter()
            .map(|(c, g)| format!("cpu{c} {g}"))
            .collect::<Vec<_>>()
            .join(", ");
        if by_core.iter().all(|(_, g)| g == "performance") {
            Check::new(Area::Power, name, Status::Pass, found)
        } else {
            Check::new(Area::Power, name, Status::Warn, found).fix(
                "`cpupower frequency-set -g performance` (or write `performance` to \
                 /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)",
            )
        }
    }

    fn cstates(&self) -> Check {
        let name = "c-states";
        let driver = read_trimmed(&self.path("sys/devices/system/cpu/cpuidle/current_driver"));
        let mut states = BTreeSet::new();
        let mut deep = BTreeSet::new();
        for c in self.online_cores() {
            let dir = self.path(&format!("sys/devices/system/cpu/cpu{c}/cpuidle"));
            for s in list_dir(&dir)
                .into_iter()
                .filter(|s| s.starts_with("state"))
            {
                let d = dir.join(&s);
                let state_name = read_trimmed(&d.join("name")).unwrap_or_else(|| s.clone());
                let latency = read_trimmed(&d.join("latency")).and_then(|l| l.parse::<u64>().ok());
                let enabled = read_trimmed(&d.join("disable")).as_deref() == Some("0");
                let label = match latency {
                    Some(l) => format!("{state_name} {l}us"),
                    None => format!("{state_name} ?us"),
                };
                if enabled && latency.is_some_and(|l| l > DEEP_CSTATE_US) {
                    deep.insert(format!("cpu{c} {label}"));
                }
                states.insert(label);
            }
        }
        let driver = driver.unwrap_or_else(|| "none".to_string());
        if states.is_empty() {
            return Check::new(
                Area::Power,
                name,
                Status::Info,
                format!("no cpuidle states exposed (driver {driver})"),
            );
        }
        let all = states.into_iter().collect::<Vec<_>>().join(", ");
        if deep.is_empty() {
            Check::new(
                Area::Power,
                name,
                Status::Pass,
                format!("driver {driver}: {all}; none deeper than {DEEP_CSTATE_US}us enabled"),
            )
        } else {
            let shown: Vec<String> = deep.iter().take(4).cloned().collect();
            let more = deep.len().saturating_sub(shown.len());
            Check::new(
                Area::Power,
                name,
                Status::Warn,
                format!(
                    "driver {driver}: deep states enabled: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" (+{more} more)")
                    } else {
                        String::new()
                    }
                ),
            )
            .fix(
                "boot with `intel_idle.max_cstate=1 processor.max_cstate=1`, or hold \
                 /dev/cpu_dma_latency open with 0 written to it while running, or write 1 to \
                 /sys/devices/system/cpu/cpu*/cpuidle/stateN/disable for the deep states",
            )
        }
    }

    fn thp(&self) -> Check {
        let name = "transparent hugepages";
        let Some(text) = read_trimmed(&self.path("sys/kernel/mm/transparent_hugepage/enabled"))
        else {
            return Check::new(
                Area::Memory,
                name,
                Status::Info,
                "no /sys/kernel/mm/transparent_hugepage: kernel without THP",
            );
        };
        let mode = selected(&text).unwrap_or(&text).to_string();
        let fix = "`echo never > /sys/kernel/mm/transparent_hugepage/enabled` (bash \
                   tuning/apply-runbook.sh --apply), or boot with transparent_hugepage=never";
        match mode.as_str() {
            "never" => Check::new(Area::Memory, name, Status::Pass, "never"),
            "madvise" => Check::new(
                Area::Memory,
                name,
                Status::Pass,
                "madvise: only regions that ask get huge pages (ringmaker asks for none)",
            ),
            "always" => Check::new(
                Area::Memory,
                name,
                Status::Warn,
                "always: khugepaged compaction can stall any thread",
            )
            .fix(fix),
            other => Check::new(
                Area::Memory,
                name,
                Status::Warn,
                format!("unknown: {other}"),
            )
            .fix(fix),
        }
    }

    /// `CapEff` of `/proc/self/status` has `cap` (root counts only through its capabilities).
    fn has_cap(&self, cap: u32) -> Option<bool> {
        let status = std::fs::read_to_string(self.path("proc/self/status")).ok()?;
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))?
            .trim();
        let bits = u64::from_str_radix(hex, 16).ok()?;
        Some(bits & (1u64 << cap) != 0)
    }

    fn memlock(&self) -> Check {
        let name = "memlock limit";
        let wants = self.config.cpu.mlockall;
        let cap = self.has_cap(CAP_IPC_LOCK).unwrap_or(false);
        let limit = self.facts.memlock;
        let limit_text = limit.map_or("unlimited".to_string(), format_bytes);
        let found = format!(
            "RLIMIT_MEMLOCK {limit_text}{}; [cpu] mlockall = {wants}",
            if cap { ", CAP_IPC_LOCK held" } else { "" }
        );
        let fix = "raise it for the user that runs ringmaker: `memlock` unlimited in \
                   /etc/security/limits.d/ (tuning/apply-runbook.sh --apply --user NAME \
                   writes one) or LimitMEMLOCK=infinity in its systemd unit, or grant \
                   CAP_IPC_LOCK";
        let Some(bytes) = limit else {
            return Check::new(Area::Memory, name, Status::Pass, found);
        };
        if cap {
            return Check::new(Area::Memory, name, Status::Pass, found);
        }
        if !wants {
            return Check::new(Area::Memory, name, Status::Info, found)
                .fix(format!("only needed with mlockall = true; then: {fix}"));
        }
        let rings = self.ring_bytes();
        if bytes < rings {
            Check::new(
                Area::Memory,
                name,
                Status::Fail,
                format!(
                    "{found}: the rings alone are {}, mlockall would fail and the run stop",
                    format_bytes(rings)
                ),
            )
            .fix(fix)
        } else {
            Check::new(
                Area::Memory,
                name,
                Status::Warn,
                format!(
                    "{found}: the rings ({}) fit, but mlockall locks the whole address space \
                     (binary, heap, stacks) and later allocations fail past the limit",
                    format_bytes(rings)
                ),
            )
            .fix(fix)
        }
    }

    /// The input and output rings' bytes (what `mlockall` must at least lock).
    fn ring_bytes(&self) -> u64 {
        let r = &self.config.rings;
        let bytes = r.input.saturating_mul(std::mem::size_of::<InSlot>())
            + r.output.saturating_mul(std::mem::size_of::<OutSlot>());
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }

    fn irqbalance(&self) -> Check {
        let name = "irqbalance";
        let running = list_dir(&self.path("proc"))
            .into_iter()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .any(|p| {
                read_trimmed(&self.path(&format!("proc/{p}/comm"))).as_deref() == Some("irqbalance")
            });
        if running {
            Check::new(
                Area::Irqs,
                name,
                Status::Warn,
                "running: it moves IRQs onto any core, isolated ones included",
            )
            .fix("`systemctl disable --now irqbalance` (tuning/apply-runbook.sh --apply stops it)")
        } else {
            Check::new(Area::Irqs, name, Status::Pass, "not running")
        }
    }

    fn irq_affinity(&self) -> Check {
        let name = "irq affinity";
        let hot = self.hot_cores();
        let irqs: Vec<String> = list_dir(&self.path("proc/irq"))
            .into_iter()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        if irqs.is_empty() {
            return Check::new(
                Area::Irqs,
                name,
                Status::Info,
                "no /proc/irq entries readable",
            );
        }
        if hot.is_empty() {
            return Check::new(
                Area::Irqs,
                name,
                Status::Info,
                format!(
                    "{} IRQs; no engine/feed/gateway core of the config is online here, nothing \
                     to keep clear",
                    irqs.len()
                ),
            );
        }
        let mut landing: Vec<u64> = irqs
            .iter()
            .filter(|n| {
                read_trimmed(&self.path(&format!("proc/irq/{n}/smp_affinity_list")))
                    .and_then(|s| parse_cpu_list(&s))
                    .is_some_and(|cores| cores.iter().any(|c| hot.contains(c)))
            })
            .filter_map(|n| n.parse().ok())
            .collect();
        landing.sort_unstable();
        let hot_l = format_cpu_list(&hot);
        if landing.is_empty() {
            return Check::new(
                Area::Irqs,
                name,
                Status::Pass,
                format!(
                    "none of {} IRQs may land on the hot cores {hot_l}",
                    irqs.len()
                ),
            );
        }
        let shown: Vec<String> = landing.iter().take(8).map(u64::to_string).collect();
        let rest: Vec<usize> = self
            .online_cores()
            .into_iter()
            .filter(|c| !hot.contains(c))
            .collect();
        let fix = if rest.is_empty() {
            format!("every online core is hot ({hot_l}): nowhere to move IRQs; use more cores")
        } else {
            format!(
                "write {} to /proc/irq/*/smp_affinity_list (tuning/apply-runbook.sh --apply \
                 does), and boot with irqaffinity={}",
                format_cpu_list(&rest),
                format_cpu_list(&rest)
            )
        };
        Check::new(
            Area::Irqs,
            name,
            Status::Warn,
            format!(
                "{} of {} IRQs may land on the hot cores {hot_l}: {}{}",
                landing.len(),
                irqs.len(),
                shown.join(" "),
                if landing.len() > shown.len() {
                    " ..."
                } else {
                    ""
                }
            ),
        )
        .fix(fix)
    }

    fn clocksource(&self) -> Check {
        let name = "clocksource";
        let dir = "sys/devices/system/clocksource/clocksource0";
        let current = read_trimmed(&self.path(&format!("{dir}/current_clocksource")));
        let available =
            read_trimmed(&self.path(&format!("{dir}/available_clocksource"))).unwrap_or_default();
        match current.as_deref() {
            Some("tsc") => Check::new(Area::Clock, name, Status::Pass, "tsc"),
            Some(other) => {
                let fix = if available.split_whitespace().any(|s| s == "tsc") {
                    "`echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource`, \
                     or boot with `clocksource=tsc tsc=reliable`"
                } else {
                    "tsc is not offered (unstable TSC or a VM without an invariant one): boot \
                     with `tsc=reliable` only if the TSC is known good; otherwise expect slower \
                     clock reads"
                };
                Check::new(
                    Area::Clock,
                    name,
                    Status::Warn,
                    format!("{other} (available: {available}): every clock read costs more"),
                )
                .fix(fix)
            }
            None => {
                Check::new(Area::Clock, name, Status::Warn, "unreadable").fix("mount sysfs at /sys")
            }
        }
    }

    fn tsc(&self) -> Check {
        let name = "tsc flags";
        let cpuinfo = std::fs::read_to_string(self.path("proc/cpuinfo")).unwrap_or_default();
        let Some(flags) = cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "flags").then_some(v)
        }) else {
            return Check::new(
                Area::Clock,
                name,
                Status::Info,
                "no x86 `flags` line in /proc/cpuinfo: TSC flags do not apply",
            );
        };
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let (constant, nonstop) = (has("constant_tsc"), has("nonstop_tsc"));
        if constant && nonstop {
            return Check::new(Area::Clock, name, Status::Pass, "constant_tsc nonstop_tsc");
        }
        let missing: Vec<&str> = [("constant_tsc", constant), ("nonstop_tsc", nonstop)]
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(f, _)| f)
            .collect();
        Check::new(
            Area::Clock,
            name,
            Status::Warn,
            format!(
                "missing {}: TSC-based latency stamps (quanta) drift with frequency or stop in \
                 idle",
                missing.join(", ")
            ),
        )
        .fix("use a CPU (or VM type) with an invariant TSC; latency numbers here are approximate")
    }

    fn adjtimex(&self) -> Check {
        let name = "adjtimex";
        let fix = "discipline the clock: chrony (check `chronyc tracking`), or ptp4l + phc2sys \
                   against the NIC's PHC";
        match &self.facts.clock {
            Ok(s) if s.synchronised => Check::new(
                Area::Clock,
                name,
                Status::Pass,
                format!(
                    "synchronised ({:?}), maxerror {} us, esterror {} us, offset {} ns{}",
                    s.state,
                    s.maxerror_us,
                    s.esterror_us,
                    s.offset_ns,
                    if s.pll() { ", PLL" } else { "" }
                ),
            ),
            Ok(s) => {
                Check::new(
                    Area::Clock,
                    name,
                    Status::Warn,
                    format!(
                    "not synchronised ({:?}, STA_UNSYNC {}), maxerror {} us: receive stamps vs \
                     the venue's times cannot be trusted",
                    s.state,
                    if s.status & libc::STA_UNSYNC != 0 { "set" } else { "clear" },
                    s.maxerror_us
                ),
                )
                .fix(fix)
            }
            Err(e) => Check::new(Area::Clock, name, Status::Warn, e.clone()).fix(fix),
        }
    }

    fn ptp(&self) -> Check {
        let name = "ptp clocks";
        match feeds::net::clockcheck::ptp_clocks_in(&self.path("sys/class/ptp"), &self.path("dev"))
        {
            Ok(clocks) if clocks.is_empty() => Check::new(
                Area::Clock,
                name,
                Status::Info,
                "no PHC: software stamps only",
            )
            .fix("hardware receive stamps need a NIC with a PTP hardware clock (ethtool -T)"),
            Ok(clocks) => Check::new(
                Area::Clock,
                name,
                Status::Pass,
                clocks
                    .iter()
                    .map(|c| {
                        format!(
                            "{} ({}{})",
                            c.name,
                            c.clock_name.as_deref().unwrap_or("unnamed"),
                            if c.device.is_some() {
                                ""
                            } else {
                                ", no /dev node"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Err(e) => Check::new(Area::Clock, name, Status::Warn, e.to_string())
                .fix("run doctor with read access to /sys/class/ptp and /dev"),
        }
    }

    fn timestamping(&self) -> Vec<Check> {
        if self.facts.interfaces.is_empty() {
            return vec![Check::new(
                Area::Network,
                "timestamping",
                Status::Info,
                "no interfaces under /sys/class/net",
            )];
        }
        self.facts
            .interfaces
            .iter()
            .map(|i| {
                let name = format!("timestamping {}", i.name);
                let dir = self.path(&format!("sys/class/net/{}", i.name));
                let loopback = read_trimmed(&dir.join("type")).as_deref() == Some(ARPHRD_LOOPBACK);
                // A physical (or paravirtual) device has a `device` link; ifb, veth, bridges
                // and tunnels do not, and never carry the feed's packets off the wire.
                let virtual_if = !dir.join("device").exists();
                let state = read_trimmed(&dir.join("operstate")).unwrap_or_else(|| "?".into());
                match &i.timestamping {
                    _ if loopback => Check::new(Area::Network, name, Status::Info, "loopback"),
                    Ok(ts) if ts.hardware_rx() => Check::new(
                        Area::Network,
                        name,
                        Status::Pass,
                        format!(
                            "hardware rx stamps, PHC {}, rx filters {:#x} ({state})",
                            ts.phc_index
                                .map_or("none".to_string(), |n| format!("/dev/ptp{n}")),
                            ts.rx_filters
                        ),
                    ),
                    Ok(ts) if virtual_if => Check::new(
                        Area::Network,
                        name,
                        Status::Info,
                        format!(
                            "virtual interface, {} ({state})",
                            if ts.software_rx() {
                                "software stamps"
                            } else {
                                "no rx stamps"
                            }
                        ),
                    ),
                    Ok(ts) if ts.software_rx() => Check::new(
                        Area::Network,
                        name,
                        Status::Warn,
                        format!(
                            "software rx stamps only (kernel receive time), so_timestamping \
                             {:#x} ({state})",
                            ts.so_timestamping
                        ),
                    )
                    .fix(
                        "the feed's stamps are taken in software: for hardware stamps use a NIC \
                         with a PHC (`ethtool -T IFACE` lists hardware-receive), then enable \
                         them (`hwstamp_ctl -i IFACE -r 1` or ptp4l)",
                    ),
                    Ok(ts) => Check::new(
                        Area::Network,
                        name,
                        Status::Warn,
                        format!(
                            "no receive stamps offered, so_timestamping {:#x} ({state})",
                            ts.so_timestamping
                        ),
                    )
                    .fix("the feed falls back to TSC stamps taken after the read"),
                    Err(e) => Check::new(
                        Area::Network,
                        name,
                        Status::Warn,
                        format!("could not ask: {e} ({state})"),
                    )
                    .fix("check with `ethtool -T IFACE`"),
                }
            })
            .collect()
    }

    fn config_origin(&self) -> &'static str {
        if self.config.explicit_cpu {
            "[cpu]"
        } else {
            "[cpu] defaults (no [cpu] in the config)"
        }
    }

    fn config_cores(&self) -> Vec<Check> {
        let cpu = &self.config.cpu;
        let mut roles: Vec<(String, usize)> = self.hot_roles();
        if let Some(c) = cpu.housekeeping {
            roles.push(("housekeeping".to_string(), c));
        }
        let Some(online) = &self.online else {
            return vec![Check::new(
                Area::Config,
                "cores exist",
                Status::Warn,
                "cannot tell: /sys/devices/system/cpu/online unreadable",
            )
            .fix("mount sysfs at /sys")];
        };
        let allowed = &self.facts.allowed_cores;
        let mut missing = Vec::new();
        let mut outside = Vec::new();
        for (role, c) in &roles {
            if !online.contains(c) {
                missing.push(format!("{role} = {c}"));
            } else if !allowed.contains(c) {
                outside.push(format!("{role} = {c}"));
            }
        }
        let mut out = Vec::new();
        let origin = self.config_origin();
        let desc = roles
            .iter()
            .map(|(r, c)| format!("{r}@{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        if missing.is_empty() && outside.is_empty() {
            out.push(Check::new(
                Area::Config,
                "cores exist",
                Status::Pass,
                format!("{origin}: {desc}, all online and usable"),
            ));
        }
        // An explicit [cpu] asks for those cores; the defaults are only the reference layout,
        // and a run leaves their threads unpinned with a warning.
        let severity = if self.config.explicit_cpu || cpu.strict_pinning {
            Status::Fail
        } else {
            Status::Warn
        };
        if !missing.is_empty() {
            out.push(
                Check::new(
                    Area::Config,
                    "cores exist",
                    severity,
                    format!(
                        "{origin}: {} not online here (online: {}); those threads would run \
                         unpinned",
                        missing.join(", "),
                        format_cpu_list(online)
                    ),
                )
                .fix(format!(
                    "write a [cpu] for this host using cores {}",
                    format_cpu_list(online)
                )),
            );
        }
        if !outside.is_empty() {
            out.push(
                Check::new(
                    Area::Config,
                    "cores usable",
                    severity,
                    format!(
                        "{origin}: {} outside this process's CPU mask ({})",
                        outside.join(", "),
                        format_cpu_list(allowed)
                    ),
                )
                .fix("run ringmaker without a narrower taskset / cpuset, or change [cpu]"),
            );
        }
        out
    }

    fn config_isolation(&self) -> Check {
        let name = "hot cores isolated";
        let hot = self.hot_cores();
        if hot.is_empty() {
            return Check::new(
                Area::Config,
                name,
                Status::Info,
                "no engine/feed/gateway core of the config is online here",
            );
        }
        let not: Vec<usize> = hot
            .iter()
            .copied()
            .filter(|c| !self.isolated.contains(c))
            .collect();
        if not.is_empty() {
            Check::new(
                Area::Config,
                name,
                Status::Pass,
                format!("{} isolated", format_cpu_list(&hot)),
            )
        } else {
            Check::new(
                Area::Config,
                name,
                Status::Warn,
                format!(
                    "{} not isolated (isolated: {}): the scheduler puts other work there",
                    format_cpu_list(&not),
                    if self.isolated.is_empty() {
                        "none".to_string()
                    } else {
                        format_cpu_list(&self.isolated)
                    }
                ),
            )
            .fix(self.boot_fix())
        }
    }

    fn config_sharing(&self) -> Check {
        let name = "hot cores shared";
        let cpu = &self.config.cpu;
        let roles = self.hot_roles();
        let mut shared = Vec::new();
        for (i, (ra, ca)) in roles.iter().enumerate() {
            for (rb, cb) in &roles[i + 1..] {
                if ca == cb {
                    shared.push(format!("{ra} and {rb} on {ca}"));
                }
            }
        }
        if let (Some(e), Some(h)) = (cpu.engine, cpu.housekeeping) {
            if e == h {
                shared.push(format!("engine and housekeeping on {e}"));
            }
        }
        // strict_pinning refuses any layout `plan` warns about: say so, as the run would.
        if cpu.strict_pinning {
            if let Err(e) = pinning::plan(cpu, &self.facts.allowed_cores) {
                return Check::new(Area::Config, name, Status::Fail, e.to_string())
                    .fix("fix [cpu] for this host, or set strict_pinning = false");
            }
        }
        if shared.is_empty() {
            Check::new(
                Area::Config,
                name,
                Status::Pass,
                "each hot thread (engine, feeds, gateway) has its own core",
            )
        } else {
            Check::new(
                Area::Config,
                name,
                Status::Warn,
                format!("{}: their busy-spins compete", shared.join("; ")),
            )
            .fix("give the engine, each feed and the gateway a core of their own in [cpu]")
        }
    }

    fn config_housekeeping(&self) -> Check {
        let name = "housekeeping core";
        match self.config.cpu.housekeeping {
            None => Check::new(Area::Config, name, Status::Info, "unpinned (not in [cpu])"),
            Some(c) if self.isolated.contains(&c) => Check::new(
                Area::Config,
                name,
                Status::Warn,
                format!(
                    "{c} is isolated: housekeeping belongs with the OS, on a core the \
                     scheduler balances"
                ),
            )
            .fix(format!(
                "set [cpu] housekeeping to a core outside isolcpus ({})",
                format_cpu_list(&self.isolated)
            )),
            Some(c) => Check::new(
                Area::Config,
                name,
                Status::Pass,
                format!("{c}, not isolated"),
            ),
        }
    }

    fn sched_fifo(&self) -> Check {
        let name = "sched_fifo";
        let cpu = &self.config.cpu;
        if !cpu.sched_fifo {
            return Check::new(
                Area::Config,
                name,
                Status::Info,
                "not asked for ([cpu] sched_fifo = false)",
            );
        }
        let prio = u64::try_from(cpu.sched_priority).unwrap_or(0);
        let cap = self.has_cap(CAP_SYS_NICE).unwrap_or(false);
        let limit_ok = self.facts.rtprio.is_none_or(|l| l >= prio);
        let found = format!(
            "priority {prio}; RLIMIT_RTPRIO {}{}",
            self.facts
                .rtprio
                .map_or("unlimited".to_string(), |l| l.to_string()),
            if cap { ", CAP_SYS_NICE held" } else { "" }
        );
        if cap || limit_ok {
            Check::new(Area::Config, name, Status::Pass, found)
        } else {
            Check::new(
                Area::Config,
                name,
                Status::Fail,
                format!("{found}: the engine thread could not switch to SCHED_FIFO"),
            )
            .fix(format!(
                "`rtprio {prio}` for the user in /etc/security/limits.d/ (or \
                 LimitRTPRIO={prio} in its systemd unit), or grant CAP_SYS_NICE, or set \
                 sched_fifo = false"
            ))
        }
    }
}

/// A file's content, trimmed (`None`: missing or unreadable).
pub(super) fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The names in a directory, sorted (empty: missing or unreadable).
pub(super) fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A kernel CPU list (`0-3,5,7-8`); empty text or `(null)` is no cores, anything else that does
/// not parse is `None`. Ranges past 1 << 16 cores are refused rather than expanded.
pub(super) fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let c = part.parse::<usize>().ok()?;
                (c, c)
            }
        };
        if a > b || b >= 1 << 16 {
            return None;
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// `isolcpus=[flags,]list`: the kernel allows `nohz`, `domain` and `managed_irq` flags before
/// the list.
fn isolcpus_cores(value: &str) -> Option<Vec<usize>> {
    let list: Vec<&str> = value
        .split(',')
        .filter(|p| !matches!(*p, "nohz" | "domain" | "managed_irq"))
        .collect();
    parse_cpu_list(&list.join(","))
}

/// Cores as the kernel writes them (`0-3,5`).
pub(super) fn format_cpu_list(cores: &[usize]) -> String {
    let mut v = cores.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(",")
    }
}

/// The bracketed choice of a sysfs selector (`always [madvise] never` → `madvise`).
fn selected(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(&text[start..end])
}

/// `8 MiB`, `64 KiB`, `512 B`.
fn format_bytes(b: u64) -> String {
    const K: u64 = 1024;
    if b >= K * K * K && b % (K * K * K) == 0 {
        format!("{} GiB", b / (K * K * K))
    } else if b >= K * K {
        format!("{} MiB", b / (K * K))
    } else if b >= K {
        format!("{} KiB", b / K)
    } else {
        format!("{b} B")
    }
}
