//! `ringmaker ctl`: operator commands to a running `ringmaker run`, over its control socket
//! (`OUT/ctl.sock`, mode 0600). See `runtime::live::ops::control`.

use runtime::live::ops::control::{self, Verb};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ringmaker ctl`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The run's output directory (its `--out`).
    #[arg(long, default_value = "out/paper")]
    out: PathBuf,
    /// halt | resume | reduce-only | cancel-all | flatten | status | reload
    #[arg(value_parser = parse_verb)]
    command: Verb,
    /// One instrument (`binance-usdm:BTCUSDT`, or a symbol only one instrument has); every
    /// instrument without it.
    instrument: Option<String>,
}

fn parse_verb(s: &str) -> Result<Verb, String> {
    Verb::parse(s).ok_or_else(|| {
        format!(
            "unknown command {s:?}; one of: {}",
            Verb::ALL.map(Verb::name).join(", ")
        )
    })
}

/// Sends the command and prints the run's answer. Exit 0: done; 1: refused (a reload the run
/// would not apply); 2: an error (no run there, the engine did not answer).
pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    let request = match &a.instrument {
        Some(i) => format!("{} {i}", a.command.name()),
        None => a.command.name().to_owned(),
    };
    let answer = control::request(&a.out, &request)?;
    outln!("{}", answer.trim_end())?;
    let first = answer.lines().next().unwrap_or("");
    Ok(if first == "ok" {
        ExitCode::SUCCESS
    } else if first.starts_with("refused") {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    })
}
