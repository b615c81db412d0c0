//! `ringmaker`: the market-making engine's command line.

mod book;

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
    /// Replay depth data through the local order book and print the top of book after every diff.
    Book(book::BookArgs),
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringmaker: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Book(args) => book::run(&args),
    }
}
