//! `ringmaker ctl`: operator commands to a running `ringmaker run`, over its control socket
//! (`OUT/ctl.sock`, mode 0600; see `runtime::live::ops::control`), or with `--bus URL` to every
//! engine on the firm's NATS server (or one, by `--engine`; see `runtime::bus`).

use runtime::live::ops::control::{self, Verb};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Send the command over the firm's NATS server instead of a run's control socket: every
    /// engine on the bus takes it (or only `--engine`'s) and acknowledges with its modes.
    #[arg(long, value_name = "URL")]
    bus: Option<String>,
    /// With `--bus`: the one engine to command.
    #[arg(long, value_name = "NAME", requires = "bus")]
    engine: Option<String>,
    /// With `--bus`: the firm-wide subjects' prefix (`[bus] prefix`).
    #[arg(long, default_value = "ringmaker", requires = "bus")]
    prefix: String,
    /// With `--bus`: stop waiting once this many engines have acknowledged (and fail with
    /// fewer). Without it, every ack within `--wait-ms` is gathered.
    #[arg(long, value_name = "N", requires = "bus")]
    expect: Option<usize>,
    /// With `--bus`: how long to wait for acks, ms.
    #[arg(long, default_value_t = 2_000, requires = "bus",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    wait_ms: u64,
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
    if let Some(url) = &a.bus {
        return over_bus(a, url, &request);
    }
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

/// `ctl --bus`: each engine's answer, prefixed by its name. Exit 0: at least one engine (and
/// `--expect` many, if given) answered `ok`, and none answered otherwise; 1: some refused; 2:
/// none answered, too few, or an error.
fn over_bus(a: &Args, url: &str, request: &str) -> anyhow::Result<ExitCode> {
    for (what, v) in [
        ("engine", a.engine.as_deref()),
        ("prefix", Some(a.prefix.as_str())),
    ] {
        let ok = match (what, v) {
            ("engine", Some(e)) => runtime::bus::is_token(e),
            (_, Some(p)) => p.split('.').all(runtime::bus::is_token),
            _ => true,
        };
        anyhow::ensure!(
            ok,
            "--{what} {:?}: letters, digits, '-' or '_' (a prefix: such tokens joined by '.')",
            v.unwrap_or("")
        );
    }
    let acks = runtime::bus::request(
        url,
        &a.prefix,
        a.engine.as_deref(),
        request,
        a.expect.or(a.engine.as_ref().map(|_| 1)),
        Duration::from_millis(a.wait_ms),
    )?;
    for ack in &acks {
        for line in ack.answer.trim_end().lines() {
            outln!("{}: {line}", ack.engine)?;
        }
    }
    let wanted = a.expect.unwrap_or(1);
    if acks.len() < wanted {
        errln!(
            "ringmaker ctl: {} engine(s) acknowledged within {} ms, {} wanted",
            acks.len(),
            a.wait_ms,
            wanted
        );
        return Ok(ExitCode::from(2));
    }
    Ok(if acks.iter().all(|k| k.result == "ok") {
        ExitCode::SUCCESS
    } else if acks
        .iter()
        .all(|k| k.result == "ok" || k.result.starts_with("refused"))
    {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    })
}
