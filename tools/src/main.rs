//! `ringmaker`: the market-making engine's command line.

/// `println!` that returns an error (a full disk, a closed stream) instead of panicking; a closed
/// pipe never gets here (SIGPIPE ends the process quietly first, see `quiet_on_closed_pipe`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)
            .map_err(|e| anyhow::anyhow!("writing to standard output: {e}"))
    }};
}

/// `eprintln!` that ignores a failing standard error (there is nowhere left to say it).
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod book;
mod cmd_backtest;
mod cmd_common;
mod cmd_ctl;
mod cmd_doctor;
mod cmd_emergency;
mod cmd_instruments;
mod cmd_journal;
mod cmd_live;
mod cmd_record;
mod cmd_run;
mod cmd_sweep;
mod cmd_venue;
mod out_dir;
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
    /// Backtest every combination of some config values (`--set quote.start_offset=0.5,1,2`)
    /// over the same data decoded once, in parallel: a CSV, a ranked summary, a heatmap.
    Sweep(cmd_sweep::Args),
    /// Replay depth data through the local order book and print the top of book after every diff.
    Book(book::BookArgs),
    /// Rebuild the engine from a journal, feed it the journaled inputs, compare every intent.
    Replay(cmd_journal::ReplayArgs),
    /// Inspect a journal: dump, verify, stats.
    #[command(subcommand)]
    Journal(cmd_journal::JournalCmd),
    /// Print the percentiles of each tag in an HdrHistogram interval log.
    Hist(cmd_journal::HistArgs),
    /// Print [[instrument]] config blocks from a Binance exchangeInfo response.
    #[allow(rustdoc::broken_intra_doc_links)] // the brackets are TOML, shown as-is by --help
    Instruments(cmd_instruments::Args),
    /// Run the live-shaped pipeline (pinned threads, rings); `--paper` replays a recording
    /// against the simulated venue.
    Run(cmd_run::Args),
    /// Record the venue's live market data (no trading), in the recordings' format.
    Record(cmd_record::Args),
    /// Operator commands to a running `ringmaker run` (halt, resume, reduce-only, cancel-all,
    /// flatten, status, reload), over its control socket in its --out directory.
    Ctl(cmd_ctl::Args),
    /// Serve a Binance USDⓈ-M exchange on localhost over TLS (REST, WebSocket streams), its
    /// market data replayed from recordings.
    Venue(cmd_venue::Args),
    /// Cancel every open order (`cancel-all`) or also close the positions (`flatten`) over the
    /// venue's REST API, with no engine: for when a live run is dead. Asks unless `--yes`.
    Emergency(cmd_emergency::Args),
    /// Check this host against the tuning runbook, and the config's [cpu] against this host:
    /// pass / info / warn / fail, each with its fix.
    #[allow(rustdoc::broken_intra_doc_links)] // [cpu] is the TOML table, shown as-is by --help
    Doctor(cmd_doctor::Args),
}

fn main() -> ExitCode {
    quiet_on_closed_pipe(); // and on a file-size limit
    match run() {
        Ok(code) => code,
        Err(e) => {
            errln!("ringmaker: error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// Output into a closed pipe (`ringmaker journal dump ... | head`) ends the process quietly, as it
/// does for every Unix tool: SIGPIPE goes back to its default action (Rust ignores it, which turns
/// the write into a panic in `println!`). `run` and `venue` are the exceptions: `run` writes no
/// standard output until its journal is closed, and its status lines tolerate a closed stderr, so a
/// closed pipe never cuts a live run short; `venue` writes to client sockets, where a peer that
/// closed is an error on that connection, never the end of the process; `emergency` must finish
/// cancelling whatever happens to its output.
fn quiet_on_closed_pipe() {
    // A write past the file-size limit (RLIMIT_FSIZE) fails with EFBIG, which the journal reports
    // as the same clean no-space error as a full disk, instead of SIGXFSZ killing the process
    // half-way through creating a segment.
    // SAFETY: as below: first thing in `main`, no thread yet, no handler code installed.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // `venue` too: it writes to sockets, and a client that goes away must be an EPIPE error on
    // that connection, not a signal that ends the exchange (CI once saw it exit by SIGPIPE).
    let keeps_sigpipe_ignored = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "run" || a == "venue" || a == "emergency");
    if !keeps_sigpipe_ignored {
        // SAFETY: called first thing in `main`, before any thread exists; `signal` with
        // `SIG_DFL` installs no handler code.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Backtest(args) => cmd_backtest::run(&args),
        Command::Book(args) => book::run(&args),
        Command::Sweep(args) => cmd_sweep::run(&args),
        Command::Replay(args) => cmd_journal::replay(&args),
        Command::Journal(cmd) => cmd_journal::journal(&cmd),
        Command::Hist(args) => cmd_journal::hist(&args),
        Command::Instruments(args) => cmd_instruments::run(&args),
        Command::Run(args) => cmd_run::run(&args),
        Command::Record(args) => cmd_record::run(&args),
        Command::Venue(args) => cmd_venue::run(&args),
        Command::Ctl(args) => cmd_ctl::run(&args),
        Command::Emergency(args) => cmd_emergency::run(&args),
        Command::Doctor(args) => cmd_doctor::run(&args),
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the messages before it
/// already hold (several library errors name their cause in their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
