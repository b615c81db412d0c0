//! Each check against a fake host tree in a temp dir.

use std::path::Path;

use test_support::TempDir;

use super::checks::{format_cpu_list, parse_cpu_list};
use super::*;
use crate::live::config::CpuConfig;
use feeds::net::clockcheck::ClockState;

/// A fake root: files written where `/sys`, `/proc` and `/dev` would have them.
struct Tree(TempDir);

impl Tree {
    fn new() -> Tree {
        Tree(TempDir::new("doctor"))
    }

    fn put(&self, rel: &str, text: &str) -> &Tree {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        self
    }

    fn dir(&self, rel: &str) -> &Tree {
        std::fs::create_dir_all(self.0.join(rel)).unwrap();
        self
    }

    fn root(&self) -> &Path {
        self.0.path()
    }

    /// The reference host, tuned by the runbook: 8 cores, 2-4 isolated, performance, C1 at
    /// most, THP never, IRQs on 0-1, tsc, a PHC, eth0 with hardware stamps.
    fn tuned() -> Tree {
        let t = Tree::new();
        t.put("proc/sys/kernel/hostname", "box\n")
            .put("proc/sys/kernel/osrelease", "6.8.0\n")
            .put("sys/devices/system/cpu/online", "0-7\n")
            .put("sys/devices/system/cpu/isolated", "2-4\n")
            .put("sys/devices/system/cpu/nohz_full", "2-4\n")
            .put(
                "proc/cmdline",
                "BOOT_IMAGE=/vmlinuz isolcpus=2-4 nohz_full=2-4 rcu_nocbs=2-4 irqaffinity=0-1 \
                 -- init-arg=1\n",
            )
            .put(
                "sys/devices/system/cpu/cpuidle/current_driver",
                "intel_idle\n",
            )
            .put(
                "sys/kernel/mm/transparent_hugepage/enabled",
                "always madvise [never]\n",
            )
            .put("proc/irq/24/smp_affinity_list", "0-1\n")
            .put("proc/irq/25/smp_affinity_list", "0\n")
            .put("proc/1/comm", "systemd\n")
            .put(
                "sys/devices/system/clocksource/clocksource0/current_clocksource",
                "tsc\n",
            )
            .put(
                "sys/devices/system/clocksource/clocksource0/available_clocksource",
                "tsc hpet acpi_pm \n",
            )
            .put(
                "proc/cpuinfo",
                "processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n",
            )
            .put("sys/class/ptp/ptp0/clock_name", "ice-0000:17:00.0\n")
            .put("dev/ptp0", "")
            .put("sys/class/net/eth0/type", "1\n")
            .put("sys/class/net/eth0/operstate", "up\n")
            .dir("sys/class/net/eth0/device")
            .put("sys/class/net/lo/type", "772\n")
            .put("sys/class/net/lo/operstate", "unknown\n")
            .put(
                "proc/self/status",
                "Name:\tdoctor\nCapEff:\t0000000000000000\n",
            );
        for c in 0..8 {
            let base = format!("sys/devices/system/cpu/cpu{c}");
            t.put(&format!("{base}/cpufreq/scaling_governor"), "performance\n")
                .put(&format!("{base}/cpuidle/state0/name"), "POLL\n")
                .put(&format!("{base}/cpuidle/state0/latency"), "0\n")
                .put(&format!("{base}/cpuidle/state0/disable"), "0\n")
                .put(&format!("{base}/cpuidle/state1/name"), "C1\n")
                .put(&format!("{base}/cpuidle/state1/latency"), "2\n")
                .put(&format!("{base}/cpuidle/state1/disable"), "0\n")
                .put(&format!("{base}/cpuidle/state2/name"), "C6\n")
                .put(&format!("{base}/cpuidle/state2/latency"), "133\n")
                .put(&format!("{base}/cpuidle/state2/disable"), "1\n");
        }
        t
    }

    /// A small untuned VM like the CI one: 2 cores, nothing isolated, no cpufreq, THP always,
    /// irqbalance running, kvm-clock, no PHC.
    fn untuned_vm() -> Tree {
        let t = Tree::new();
        t.put("sys/devices/system/cpu/online", "0-1\n")
            .put("sys/devices/system/cpu/isolated", "\n")
            .put("proc/cmdline", "console=ttyS0 quiet\n")
            .put(
                "sys/kernel/mm/transparent_hugepage/enabled",
                "[always] madvise never\n",
            )
            .put("proc/irq/24/smp_affinity_list", "0-1\n")
            .put("proc/412/comm", "irqbalance\n")
            .put(
                "sys/devices/system/clocksource/clocksource0/current_clocksource",
                "kvm-clock\n",
            )
            .put(
                "sys/devices/system/clocksource/clocksource0/available_clocksource",
                "kvm-clock tsc acpi_pm\n",
            )
            .put("proc/cpuinfo", "flags\t\t: fpu tsc constant_tsc\n")
            .put("sys/class/net/eth0/type", "1\n")
            .dir("sys/class/net/eth0/device")
            .put("proc/self/status", "CapEff:\t0000000000000000\n");
        t
    }
}

fn synced() -> ClockState {
    ClockState::from_parts(libc::TIME_OK, libc::STA_PLL, 1_000, 50, 120)
}

fn unsynced() -> ClockState {
    ClockState::from_parts(
        libc::TIME_ERROR,
        libc::STA_UNSYNC,
        16_000_000,
        16_000_000,
        0,
    )
}

const SOFTWARE: u32 = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
const HARDWARE: u32 = SOFTWARE
    | libc::SOF_TIMESTAMPING_RX_HARDWARE
    | libc::SOF_TIMESTAMPING_TX_HARDWARE
    | libc::SOF_TIMESTAMPING_RAW_HARDWARE;

fn iface(name: &str, so_timestamping: u32, phc: Option<u32>) -> Interface {
    Interface {
        name: name.to_string(),
        timestamping: Ok(TsInfo {
            so_timestamping,
            phc_index: phc,
            tx_types: 0,
            rx_filters: 0,
        }),
    }
}

fn facts(cores: usize) -> Facts {
    Facts {
        allowed_cores: (0..cores).collect(),
        clock: Ok(synced()),
        interfaces: vec![
            iface("eth0", HARDWARE, Some(0)),
            iface("lo", SOFTWARE, None),
        ],
        memlock: None,
        rtprio: None,
        euid: 1000,
    }
}

fn explicit(cpu: CpuConfig) -> ConfigInput {
    ConfigInput {
        cpu,
        rings: RingsConfig::default(),
        explicit_cpu: true,
    }
}

fn find<'r>(r: &'r Report, name: &str) -> &'r Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {:#?}", r.checks))
}

fn status(r: &Report, name: &str) -> Status {
    find(r, name).status
}

#[test]
fn a_tuned_host_passes_everything() {
    let t = Tree::tuned();
    let r = diagnose(t.root(), &facts(8), None);
    let bad: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| c.status >= Status::Warn)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(r.host, "box (6.8.0)");
    assert_eq!(status(&r, "isolated cores"), Status::Pass);
    assert_eq!(status(&r, "timestamping eth0"), Status::Pass);
    assert_eq!(status(&r, "timestamping lo"), Status::Info);
    assert_eq!(status(&r, "sched_fifo"), Status::Info);
    assert!(find(&r, "ptp clocks").found.contains("ice-0000:17:00.0"));
    assert!(find(&r, "c-states").found.contains("none deeper"));
    // Grouped in area order.
    let areas: Vec<Area> = r.checks.iter().map(|c| c.area).collect();
    let mut sorted = areas.clone();
    sorted.sort();
    assert_eq!(areas, sorted);
    for a in Area::ALL {
        assert!(areas.contains(&a), "no {a:?} check");
    }
}

#[test]
fn an_untuned_vm_warns_and_never_fails() {
    let t = Tree::untuned_vm();
    let mut f = facts(2);
    f.clock = Ok(unsynced());
    f.interfaces = vec![iface("eth0", SOFTWARE, None)];
    f.memlock = Some(8 << 20);
    let r = diagnose(t.root(), &f, None);
    assert_eq!(r.worst(), Status::Warn, "{:#?}", r.checks);
    for name in [
        "cpus online",
        "isolated cores",
        "nohz_full",
        "rcu_nocbs",
        "transparent hugepages",
        "irqbalance",
        "clocksource",
        "tsc flags",
        "adjtimex",
        "timestamping eth0",
        "cores exist",
    ] {
        let c = find(&r, name);
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.fix.is_some(), "a warning without a fix: {c:?}");
    }
    assert_eq!(status(&r, "governor"), Status::Info); // no cpufreq: a VM
    assert_eq!(status(&r, "ptp clocks"), Status::Info);
    assert_eq!(status(&r, "memlock limit"), Status::Info); // mlockall not asked
    assert!(find(&r, "clocksource")
        .fix
        .as_ref()
        .unwrap()
        .contains("echo tsc"));
    assert!(find(&r, "tsc flags").found.contains("nonstop_tsc"));
    // The suggested isolation is every core but the first when the config's are missing.
    assert!(find(&r, "isolated cores")
        .fix
        .as_ref()
        .unwrap()
        .contains("isolcpus=1 "));
    // The defaults' cores 2-4 are missing: a warning (the run leaves them unpinned), not a
    // failure, since the config did not ask for them.
    assert!(find(&r, "cores exist").found.contains("engine = 3"));
}

#[test]
fn an_explicit_core_this_host_lacks_fails() {
    let t = Tree::untuned_vm();
    let cfg = explicit(CpuConfig {
        engine: Some(7),
        feeds: vec![1],
        gateway: Some(1),
        housekeeping: Some(0),
        ..CpuConfig::default()
    });
    let r = diagnose(t.root(), &facts(2), Some(&cfg));
    let c = find(&r, "cores exist");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.found.contains("engine = 7"), "{c:?}");
    assert_eq!(r.worst(), Status::Fail);
    // feeds[0] and gateway both on 1.
    assert_eq!(status(&r, "hot cores shared"), Status::Warn);
}

#[test]
fn a_core_outside_the_process_mask_fails_when_asked_for() {
    let t = Tree::tuned();
    let mut f = facts(8);
    f.allowed_cores = vec![0, 1, 2, 3];
    let r = diagnose(t.root(), &f, Some(&explicit(CpuConfig::default())));
    let c = find(&r, "cores usable");
    assert_eq!(c.status, Status::Fail);
    assert!(c.found.contains("gateway = 4"), "{c:?}");
    assert_eq!(status(&r, "cpus online"), Status::Info);
}

#[test]
fn strict_pinning_with_a_shared_engine_core_fails() {
    let t = Tree::tuned();
    let cfg = explicit(CpuConfig {
        engine: Some(3),
        feeds: vec![3],
        gateway: Some(4),
        housekeeping: Some(0),
        strict_pinning: true,
        ..CpuConfig::default()
    });
    let r = diagnose(t.root(), &facts(8), Some(&cfg));
    let c = find(&r, "hot cores shared");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.found.contains("strict_pinning"), "{c:?}");
}

#[test]
fn hot_cores_not_isolated_and_housekeeping_isolated_warn() {
    let t = Tree::tuned();
    t.put("sys/devices/system/cpu/isolated", "3\n");
    let cfg = explicit(CpuConfig {
        housekeeping: Some(3),
        ..CpuConfig::default()
    });
    let r = diagnose(t.root(), &facts(8), Some(&cfg));
    let c = find(&r, "hot cores isolated");
    assert_eq!(c.status, Status::Warn);
    assert!(c.found.starts_with("2,4 not isolated"), "{c:?}");
    assert_eq!(status(&r, "housekeeping core"), Status::Warn);
    // engine and housekeeping share 3.
    assert!(find(&r, "hot cores shared")
        .found
        .contains("engine and housekeeping on 3"));
}

#[test]
fn isolcpus_on_the_command_line_counts_when_sysfs_is_silent() {
    let t = Tree::tuned();
    std::fs::remove_file(t.root().join("sys/devices/system/cpu/isolated")).unwrap();
    t.put("proc/cmdline", "isolcpus=nohz,domain,2-4 rcu_nocbs=2-4\n");
    let r = diagnose(t.root(), &facts(8), None);
    assert_eq!(status(&r, "isolated cores"), Status::Pass);
    assert_eq!(status(&r, "hot cores isolated"), Status::Pass);
}

#[test]
fn irqs_on_hot_cores_warn_with_their_numbers() {
    let t = Tree::tuned();
    t.put("proc/irq/30/smp_affinity_list", "0-7\n")
        .put("proc/irq/31/smp_affinity_list", "3\n")
        .put("proc/irq/32/smp_affinity_list", "garbage\n");
    let r = diagnose(t.root(), &facts(8), None);
    let c = find(&r, "irq affinity");
    assert_eq!(c.status, Status::Warn);
    assert!(c.found.starts_with("2 of 5 IRQs"), "{c:?}");
    assert!(c.found.contains("30 31"), "{c:?}");
    assert!(
        c.fix.as_ref().unwrap().contains("irqaffinity=0-1,5-7"),
        "{c:?}"
    );
}

#[test]
fn deep_cstates_and_governors_warn() {
    let t = Tree::tuned();
    t.put("sys/devices/system/cpu/cpu3/cpuidle/state2/disable", "0\n")
        .put(
            "sys/devices/system/cpu/cpu5/cpufreq/scaling_governor",
            "powersave\n",
        );
    let r = diagnose(t.root(), &facts(8), None);
    let c = find(&r, "c-states");
    assert_eq!(c.status, Status::Warn);
    assert!(c.found.contains("cpu3 C6 133us"), "{c:?}");
    assert!(c.fix.as_ref().unwrap().contains("intel_idle.max_cstate=1"));
    let g = find(&r, "governor");
    assert_eq!(g.status, Status::Warn);
    assert!(g.found.contains("cpu5 powersave"), "{g:?}");
}

#[test]
fn thp_modes() {
    let t = Tree::tuned();
    for (text, want) in [
        ("always [madvise] never", Status::Pass),
        ("[always] madvise never", Status::Warn),
        ("always madvise [never]", Status::Pass),
    ] {
        t.put("sys/kernel/mm/transparent_hugepage/enabled", text);
        let r = diagnose(t.root(), &facts(8), None);
        assert_eq!(status(&r, "transparent hugepages"), want, "{text}");
    }
}

#[test]
fn mlockall_against_the_memlock_limit() {
    let t = Tree::tuned();
    let cfg = explicit(CpuConfig {
        mlockall: true,
        ..CpuConfig::default()
    });
    let mut f = facts(8);
    // 64 KiB cannot even hold the rings: the run would stop at mlockall.
    f.memlock = Some(64 << 10);
    let r = diagnose(t.root(), &f, Some(&cfg));
    let c = find(&r, "memlock limit");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.found.contains("64 KiB"), "{c:?}");
    // 4 GiB holds the rings but is still a limit.
    f.memlock = Some(4 << 30);
    let r = diagnose(t.root(), &f, Some(&cfg));
    assert_eq!(status(&r, "memlock limit"), Status::Warn);
    // CAP_IPC_LOCK lifts the limit.
    t.put("proc/self/status", "CapEff:\t0000000000004000\n");
    f.memlock = Some(64 << 10);
    let r = diagnose(t.root(), &f, Some(&cfg));
    assert_eq!(status(&r, "memlock limit"), Status::Pass);
    // Unlimited passes.
    f.memlock = None;
    let r = diagnose(t.root(), &f, Some(&cfg));
    assert_eq!(status(&r, "memlock limit"), Status::Pass);
}

#[test]
fn sched_fifo_needs_rtprio_or_cap_sys_nice() {
    let t = Tree::tuned();
    let cfg = explicit(CpuConfig {
        sched_fifo: true,
        sched_priority: 10,
        ..CpuConfig::default()
    });
    let mut f = facts(8);
    f.rtprio = Some(0);
    let r = diagnose(t.root(), &f, Some(&cfg));
    let c = find(&r, "sched_fifo");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.fix.as_ref().unwrap().contains("rtprio 10"), "{c:?}");
    f.rtprio = Some(10);
    let r = diagnose(t.root(), &f, Some(&cfg));
    assert_eq!(status(&r, "sched_fifo"), Status::Pass);
    f.rtprio = Some(0);
    t.put("proc/self/status", "CapEff:\t0000000000800000\n"); // bit 23
    let r = diagnose(t.root(), &f, Some(&cfg));
    assert_eq!(status(&r, "sched_fifo"), Status::Pass);
}

#[test]
fn timestamping_per_interface() {
    let t = Tree::tuned();
    t.put("sys/class/net/ifb0/type", "1\n");
    let mut f = facts(8);
    f.interfaces = vec![
        iface("eth0", SOFTWARE, None),
        iface("ifb0", SOFTWARE, None),
        iface("lo", SOFTWARE, None),
        Interface {
            name: "eth1".into(),
            timestamping: Err("Operation not supported".into()),
        },
    ];
    let r = diagnose(t.root(), &f, None);
    let eth0 = find(&r, "timestamping eth0");
    assert_eq!(eth0.status, Status::Warn);
    assert!(eth0.found.contains("software rx stamps only"), "{eth0:?}");
    assert_eq!(status(&r, "timestamping ifb0"), Status::Info); // no `device`: virtual
    assert_eq!(status(&r, "timestamping lo"), Status::Info);
    assert_eq!(status(&r, "timestamping eth1"), Status::Warn);
}

#[test]
fn clock_checks() {
    let t = Tree::tuned();
    let mut f = facts(8);
    f.clock = Ok(unsynced());
    let r = diagnose(t.root(), &f, None);
    let c = find(&r, "adjtimex");
    assert_eq!(c.status, Status::Warn);
    assert!(c.fix.as_ref().unwrap().contains("phc2sys"));
    f.clock = Err("adjtimex(modes = 0) failed: EPERM".into());
    let r = diagnose(t.root(), &f, None);
    assert_eq!(status(&r, "adjtimex"), Status::Warn);
    assert!(find(&r, "adjtimex").found.contains("EPERM"));
    // No PHC: information, the timestamping check says what that costs.
    std::fs::remove_dir_all(t.root().join("sys/class/ptp")).unwrap();
    std::fs::remove_file(t.root().join("dev/ptp0")).unwrap();
    let r = diagnose(t.root(), &f, None);
    let p = find(&r, "ptp clocks");
    assert_eq!(
        (p.status, p.found.as_str()),
        (Status::Info, "no PHC: software stamps only")
    );
}

#[test]
fn an_empty_or_garbled_tree_is_reported_not_a_panic() {
    let t = Tree::new();
    let mut f = facts(2);
    f.interfaces.clear();
    let r = diagnose(t.root(), &f, None);
    assert!(r.worst() <= Status::Warn, "{:#?}", r.checks);
    assert_eq!(status(&r, "cpus online"), Status::Warn);
    assert_eq!(r.host, "unknown host (unknown kernel)");
    let g = Tree::new();
    g.put("sys/devices/system/cpu/online", "zero-one")
        .put("proc/cmdline", "\u{0}\u{1}isolcpus=")
        .put("sys/devices/system/cpu/isolated", "9-2")
        .put("sys/kernel/mm/transparent_hugepage/enabled", "")
        .put("proc/self/status", "CapEff:\tzz\n")
        .put("proc/cpuinfo", "flags\n")
        .put("sys/devices/system/cpu/cpu0/cpuidle/state0/latency", "-1");
    let r = diagnose(g.root(), &f, Some(&explicit(CpuConfig::default())));
    assert!(!r.checks.is_empty());
    for a in Area::ALL {
        assert!(r.checks.iter().any(|c| c.area == a), "no {a:?} check");
    }
}

#[test]
fn cpu_lists() {
    assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(vec![0, 1, 2, 3, 5, 7, 8]));
    assert_eq!(parse_cpu_list(""), Some(vec![]));
    assert_eq!(parse_cpu_list("(null)\n"), Some(vec![]));
    assert_eq!(parse_cpu_list("3-1"), None);
    assert_eq!(parse_cpu_list("0-99999999"), None);
    assert_eq!(parse_cpu_list("a"), None);
    assert_eq!(format_cpu_list(&[5, 0, 1, 2, 3, 7, 8]), "0-3,5,7-8");
    assert_eq!(format_cpu_list(&[]), "none");
}

#[test]
fn explicit_cpu_means_a_cpu_table_in_the_file() {
    let with = "[engine]\nx = 1\n[cpu]\nengine = 1\n";
    let without = "[engine]\nx = 1\n";
    let c = ConfigInput::from_toml(with, CpuConfig::default(), RingsConfig::default());
    assert!(c.explicit_cpu);
    let c = ConfigInput::from_toml(without, CpuConfig::default(), RingsConfig::default());
    assert!(!c.explicit_cpu);
}

#[test]
fn this_host_gives_a_report() {
    let root = system_root();
    let f = Facts::gather(&root);
    let r = diagnose(&root, &f, None);
    for a in Area::ALL {
        assert!(r.checks.iter().any(|c| c.area == a), "no {a:?} check");
    }
    // The defaults name no core explicitly: nothing about this host can fail them unless
    // they ask for what is denied (they ask for neither SCHED_FIFO nor mlockall).
    assert!(r.worst() <= Status::Warn, "{:#?}", r.checks);
    for c in &r.checks {
        if c.status >= Status::Warn {
            assert!(c.fix.is_some(), "{c:?}");
        }
    }
}
