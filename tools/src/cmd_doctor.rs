//! `ringmaker doctor`: this host against the tuning runbook, and the config's `[cpu]` against
//! this host (see `runtime::doctor`).

use anyhow::Context as _;
use clap::Parser;
use runtime::doctor::{self, Area, ConfigInput, Report, Status};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ringmaker doctor`.
#[derive(Parser, Debug)]
pub struct Args {
    /// Run config whose `[cpu]` (and `[rings]`) to check against this host. Without it, the
    /// reference layout's defaults are checked, as a config without `[cpu]` would run.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the checks as JSON (one object: host, config, checks, counts).
    #[arg(long)]
    json: bool,
}

/// Runs the checks and prints them. Exit 0 when nothing fails (warnings allowed), 1 when a
/// check fails; a config that cannot be read is an error (exit 2).
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let cfg = runtime::config::RunConfig::from_toml(&text)
                .with_context(|| format!("config {}", path.display()))?;
            Some(ConfigInput::from_toml(&text, cfg.live.cpu, cfg.live.rings))
        }
        None => None,
    };
    let root = doctor::system_root();
    let facts = doctor::Facts::gather(&root);
    let report = doctor::diagnose(&root, &facts, config.as_ref());
    let config_desc = match (&args.config, &config) {
        (Some(p), Some(c)) if c.explicit_cpu => format!("{} ([cpu] as written)", p.display()),
        (Some(p), _) => format!(
            "{} (no [cpu]: the reference layout's defaults)",
            p.display()
        ),
        _ => "none (the reference layout's [cpu] defaults)".to_string(),
    };
    if args.json {
        print_json(&report, args.config.as_ref())?;
    } else {
        print_table(&report, &config_desc)?;
    }
    Ok(if report.worst() == Status::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(report: &Report, config_desc: &str) -> anyhow::Result<()> {
    outln!("ringmaker doctor: {}; config {config_desc}", report.host)?;
    for area in Area::ALL {
        let mut checks = report.checks.iter().filter(|c| c.area == area).peekable();
        if checks.peek().is_none() {
            continue;
        }
        outln!()?;
        outln!("{}", area.name())?;
        for c in checks {
            outln!("  {}  {:<22} {}", c.status.label(), c.name, c.found)?;
            if c.status >= Status::Warn {
                if let Some(fix) = &c.fix {
                    outln!("        fix: {fix}")?;
                }
            }
        }
    }
    outln!()?;
    outln!(
        "{} pass, {} info, {} warn, {} fail",
        report.count(Status::Pass),
        report.count(Status::Info),
        report.count(Status::Warn),
        report.count(Status::Fail)
    )
}

fn print_json(report: &Report, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let doc = serde_json::json!({
        "host": report.host,
        "config": config.map(|p| p.display().to_string()),
        "checks": report.checks,
        "counts": {
            "pass": report.count(Status::Pass),
            "info": report.count(Status::Info),
            "warn": report.count(Status::Warn),
            "fail": report.count(Status::Fail),
        },
    });
    outln!("{}", serde_json::to_string_pretty(&doc)?)
}
