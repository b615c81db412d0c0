//! `ringmaker doctor` on this host, and `tuning/apply-runbook.sh --dry-run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::TempDir;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn doctor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("run ringmaker doctor")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const AREAS: [&str; 8] = [
    "cpus",
    "isolation",
    "power",
    "memory",
    "irqs",
    "clock",
    "network",
    "config",
];

#[test]
fn doctor_reports_every_area_and_does_not_fail_on_defaults() {
    let default_config = repo("configs/default.toml");
    for args in [vec![], vec!["--config", default_config.to_str().unwrap()]] {
        let out = doctor(&args);
        let stdout = text(&out.stdout);
        // The defaults name no core explicitly and ask for neither SCHED_FIFO nor mlockall:
        // an untuned host warns, nothing fails.
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\n{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(stdout.starts_with("ringmaker doctor: "), "{stdout}");
        for area in AREAS {
            assert!(
                stdout.lines().any(|l| l == area),
                "no {area} heading:\n{stdout}"
            );
        }
        for name in ["cpus online", "isolated cores", "adjtimex", "cores exist"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.get(8..).is_some_and(|rest| rest.starts_with(name))),
                "no {name} line:\n{stdout}"
            );
        }
        let last = stdout.lines().last().unwrap();
        assert!(
            last.ends_with(" fail") && last.contains(" warn, "),
            "{last}"
        );
        assert!(last.ends_with(", 0 fail"), "{last}");
        // Every warning comes with its fix on the next line.
        let lines: Vec<&str> = stdout.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("  WARN") || l.starts_with("  FAIL") {
                assert!(lines[i + 1].trim_start().starts_with("fix: "), "{l}");
            }
        }
    }
}

#[test]
fn doctor_json_parses() {
    let out = doctor(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let checks = v["checks"].as_array().expect("checks");
    assert!(!checks.is_empty());
    for c in checks {
        assert!(AREAS.contains(&c["area"].as_str().unwrap()), "{c}");
        assert!(
            ["pass", "info", "warn", "fail"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["name"].is_string() && c["found"].is_string(), "{c}");
        if c["status"] == "warn" {
            assert!(c["fix"].is_string(), "{c}");
        }
    }
    let counts = &v["counts"];
    let total: u64 = ["pass", "info", "warn", "fail"]
        .iter()
        .map(|k| counts[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, checks.len() as u64);
    assert!(v["host"].is_string());
}

#[test]
fn a_configured_core_this_host_lacks_fails_with_exit_1() {
    let tmp = TempDir::new("doctor-cli");
    let cfg = tmp.join("cpu.toml");
    let mut toml = std::fs::read_to_string(repo("configs/default.toml")).unwrap();
    toml.push_str("\n[cpu]\nengine = 4095\nfeeds = [0]\ngateway = 0\nhousekeeping = 0\n");
    std::fs::write(&cfg, toml).unwrap();
    let out = doctor(&["--config", cfg.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  FAIL  cores exist") && l.contains("engine = 4095")),
        "{stdout}"
    );
    assert!(!stdout.lines().last().unwrap().ends_with(" 0 fail"));
    // The JSON says so too, with the same exit code.
    let out = doctor(&["--config", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["counts"]["fail"].as_u64().unwrap() >= 1);
}

#[test]
fn an_unreadable_or_invalid_config_is_a_usage_error() {
    let out = doctor(&["--config", "/nonexistent/ringmaker.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("reading config"),
        "{}",
        text(&out.stderr)
    );
    let tmp = TempDir::new("doctor-cli");
    let bad = tmp.join("bad.toml");
    let mut toml = std::fs::read_to_string(repo("configs/default.toml")).unwrap();
    toml.push_str("\n[cpu]\nengine = \"three\"\n");
    std::fs::write(&bad, toml).unwrap();
    let out = doctor(&["--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
}

/// Everything the runbook script would write, as it reads now.
fn tunables() -> Vec<(PathBuf, String)> {
    let mut files = vec![
        PathBuf::from("/sys/kernel/mm/transparent_hugepage/enabled"),
        PathBuf::from("/sys/kernel/mm/transparent_hugepage/defrag"),
        PathBuf::from("/proc/irq/default_smp_affinity"),
        PathBuf::from("/etc/security/limits.d/90-ringmaker.conf"),
    ];
    for dir in ["/proc/irq", "/sys/devices/system/cpu"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            files.push(e.path().join("smp_affinity_list"));
            files.push(e.path().join("cpufreq/scaling_governor"));
        }
    }
    files
        .into_iter()
        .map(|f| {
            let v = std::fs::read_to_string(&f).unwrap_or_else(|e| format!("<{e}>"));
            (f, v)
        })
        .collect()
}

/// The script as an unprivileged user: through `setpriv` when the tests run as root (a dry run
/// must not need root), as is otherwise.
fn runbook(args: &[&str]) -> Option<Output> {
    let script = repo("tuning/apply-runbook.sh");
    // SAFETY: `geteuid` takes no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let has_setpriv = Command::new("setpriv").arg("--help").output().is_ok();
        if !has_setpriv {
            return None;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"]);
        c
    } else {
        Command::new("bash")
    };
    Some(
        cmd.arg(script)
            .args(args)
            .output()
            .expect("run apply-runbook.sh"),
    )
}

#[test]
fn the_runbook_script_dry_run_prints_commands_and_changes_nothing() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let two_cores = online.trim() != "0";
    let before = tunables();
    let Some(out) = runbook(&["--dry-run", "--cores", "1"]) else {
        // Root without setpriv: run it as root, still a dry run.
        let out = Command::new("bash")
            .arg(repo("tuning/apply-runbook.sh"))
            .args(["--dry-run", "--cores", "1"])
            .output()
            .unwrap();
        assert!(out.status.code().is_some());
        assert_eq!(before, tunables());
        return;
    };
    let stdout = text(&out.stdout);
    if two_cores {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(
            stdout.starts_with("# apply-runbook: dry-run; hot cores 1,"),
            "{stdout}"
        );
        assert!(stdout.contains("nothing below is executed"), "{stdout}");
        assert!(
            stdout.contains("  isolcpus=1 nohz_full=1 rcu_nocbs=1 irqaffinity="),
            "{stdout}"
        );
        // Commands, printed (those for files this host has).
        if Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
            assert!(
                stdout.contains("  echo never > '/sys/kernel/mm/transparent_hugepage/enabled'"),
                "{stdout}"
            );
        }
        for step in 1..=7 {
            assert!(
                stdout.contains(&format!("\n# {step}. ")),
                "no step {step}:\n{stdout}"
            );
        }
    } else {
        // One core: nothing is left for housekeeping, which the script refuses cleanly.
        assert_eq!(out.status.code(), Some(2), "{stdout}");
    }
    assert_eq!(before, tunables(), "a dry run changed something");
}

#[test]
fn the_runbook_script_refuses_apply_without_root_and_bad_arguments() {
    if let Some(out) = runbook(&["--apply", "--cores", "1"]) {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("needs root"),
            "{}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
    for args in [
        vec!["--cores", "x"],
        vec!["--bogus"],
        vec![],
        vec!["--cores", "4095"],
    ] {
        let out = runbook(&args).unwrap_or_else(|| {
            Command::new("bash")
                .arg(repo("tuning/apply-runbook.sh"))
                .args(&args)
                .output()
                .unwrap()
        });
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stderr.starts_with(b"apply-runbook: "), "{args:?}");
    }
}
