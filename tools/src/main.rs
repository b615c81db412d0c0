//! `ringmaker`: the market-making engine's command line.

mod book;
mod cmd_backtest;
mod cmd_common;
mod cmd_journal;
mod cmd_run;
mod plots;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "ringmaker",
    version,
    about = "LMAX-style market-making engine for crypto perpetuals"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Backtest the market maker on a recording against the simulated venue (the main job).
    Backtest(cmd_backtest::Args),
    /// Replay depth data through the local order book and print the top of book after every diff.
    Book(book::BookArgs),
    /// Rebuild the engine from a journal, feed it the journaled inputs, compare every intent.
    Replay(cmd_journal::ReplayArgs),
    /// Inspect a journal: dump, verify, stats.
    #[command(subcommand)]
    Journal(cmd_journal::JournalCmd),
    /// Print the percentiles of each tag in an HdrHistogram interval log.
    Hist(cmd_journal::HistArgs),
    /// Run the live-shaped pipeline (pinned threads, rings); `--paper` replays a recording
    /// against the simulated venue.
    Run(cmd_run::Args),
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringmaker: error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Backtest(args) => cmd_backtest::run(&args),
        Command::Book(args) => book::run(&args),
        Command::Replay(args) => cmd_journal::replay(&args),
        Command::Journal(cmd) => cmd_journal::journal(&cmd),
        Command::Hist(args) => cmd_journal::hist(&args),
        Command::Run(args) => cmd_run::run(&args),
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message before it
/// already ends with (several library errors name their cause in their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
