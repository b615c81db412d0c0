//! `ringmaker book`: recording → decode → sync → local book, one TSV line per applied diff.

use anyhow::Context;
use engine::{Grid, Instrument, OrderBook};
use feeds::decode::DepthHeader;
use feeds::{
    sync_rule, BookObserver, BookState, DataSpec, Decoder, FeedHandler, MarketFeed, MarketSource,
    RecordingSource, Step, SyncRule, Target,
};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ringmaker book`.
#[derive(clap::Args, Debug)]
pub struct BookArgs {
    /// Recording files (`<local_ns> <json>` lines, gzip or plain) of one instrument, read in
    /// the order given: `PATH`, `SYMBOL=PATH` or `VENUE:SYMBOL=PATH` (the symbol to follow, and
    /// with a venue its sync rule).
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// Symbol to follow (default: the one the `--data` bindings name, else the first symbol in
    /// the data).
    #[arg(long)]
    symbol: Option<String>,
    /// Tick size, e.g. 0.10.
    #[arg(long)]
    tick: String,
    /// Lot (step) size, e.g. 0.001.
    #[arg(long)]
    lot: String,
    /// Sync rule: futures (pu chain), spot (U = u + 1), or auto (from a `VENUE:SYMBOL=PATH`
    /// binding's venue, else from the first diff).
    #[arg(long, value_enum, default_value_t = Venue::Auto)]
    venue: Venue,
    /// Book window in ticks (a power of two; levels further from the touch are ignored).
    #[arg(long, default_value_t = OrderBook::DEFAULT_SLOTS as u64,
          value_parser = clap::value_parser!(u64).range(4096..=(1 << 26)))]
    book_slots: u64,
    /// Exit 1 when the book was valid for less than half of the recording.
    #[arg(long)]
    strict: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Venue {
    Auto,
    Futures,
    Spot,
}

/// Bad lines reported one by one before only counting.
const REPORT_BAD_LINES: u64 = 10;

struct Tsv<W: Write> {
    out: W,
    price: Grid,
    qty: Grid,
    err: Option<io::Error>,
}

impl<W: Write> Tsv<W> {
    fn line(&mut self, hdr: &DepthHeader, book: &OrderBook) -> io::Result<()> {
        write!(self.out, "{}", hdr.final_id)?;
        for level in [book.best_bid_level(), book.best_ask_level()] {
            match level {
                Some((p, q)) => write!(
                    self.out,
                    "\t{}\t{}",
                    self.price.format(p),
                    self.qty.format(q)
                )?,
                None => write!(self.out, "\t\t")?,
            }
        }
        writeln!(self.out)
    }
}

impl<W: Write> BookObserver for Tsv<W> {
    fn diff_applied(&mut self, hdr: &DepthHeader, book: &OrderBook) {
        if self.err.is_some() || !book.is_valid() {
            return;
        }
        if let Err(e) = self.line(hdr, book) {
            self.err = Some(e);
        }
    }
}

/// The symbol and sync rule `book` follows, from `--symbol`, `--venue` and the `--data`
/// bindings (which must agree: `book` follows one instrument), and the files.
fn follow(args: &BookArgs) -> anyhow::Result<(Option<String>, Option<SyncRule>, Vec<PathBuf>)> {
    let explicit = match args.venue {
        Venue::Auto => None,
        Venue::Futures => Some(SyncRule::Futures),
        Venue::Spot => Some(SyncRule::Spot),
    };
    // `X=` is a binding when X is the symbol followed (any symbol when none is given yet).
    let known = |t: &Target| {
        args.symbol
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&t.symbol))
            && t.venue
                .is_none_or(|v| explicit.is_none_or(|r| r == sync_rule(v)))
    };
    let describe = || {
        let venue = match args.venue {
            Venue::Auto => "",
            Venue::Futures => " on a futures venue (--venue futures)",
            Venue::Spot => " on spot (--venue spot)",
        };
        let symbol = args.symbol.as_deref().unwrap_or("any symbol");
        format!("`book` follows {symbol}{venue}")
    };
    let mut symbol = args.symbol.clone();
    let mut rule = explicit;
    let mut first: Option<Target> = None;
    let mut files = Vec::with_capacity(args.data.len());
    for arg in &args.data {
        let spec = DataSpec::parse_with(arg.as_os_str(), known, describe)?;
        if let Some(t) = &spec.target {
            let first = first.get_or_insert_with(|| t.clone());
            anyhow::ensure!(
                first.symbol.eq_ignore_ascii_case(&t.symbol),
                "--data binds files to {first} and to {t}: `book` follows one symbol"
            );
            symbol.get_or_insert_with(|| t.symbol.to_ascii_uppercase());
            if let Some(v) = t.venue {
                let r = *rule.get_or_insert(sync_rule(v));
                anyhow::ensure!(
                    r == sync_rule(v),
                    "--data {t}=...: a {} recording, where the others (or --venue) say {}",
                    v.name(),
                    match r {
                        SyncRule::Futures => "futures",
                        SyncRule::Spot => "spot",
                    }
                );
            }
        }
        files.push(spec.path);
    }
    Ok((symbol, rule, files))
}

pub fn run(args: &BookArgs) -> anyhow::Result<ExitCode> {
    let (symbol, rule, files) = follow(args)?;
    let sym = symbol.as_deref().unwrap_or("UNSET");
    // The book prints prices and quantities only: the quantity grid given is the market data's,
    // and no money is computed, so the assets are not asked for (named after their role).
    let inst = Instrument::from_spec(&engine::InstrumentSpec {
        symbol: sym,
        tick: &args.tick,
        lot: &args.lot,
        min_qty: &args.lot,
        min_notional: "0",
        base_asset: Some("BASE"),
        quote_asset: Some("QUOTE"),
        ..engine::InstrumentSpec::default()
    })
    .context("invalid instrument (--symbol / --tick / --lot)")?;
    let decoder = if symbol.is_some() {
        Decoder::new(&[inst])
    } else {
        Decoder::adopting_first_symbol(inst)
    };
    // The same feed handler as the backtest and the paper pipeline, on the recording of the one
    // instrument followed (its REST snapshots, which name no symbol, are that instrument's).
    let mut feed = MarketFeed::new(
        RecordingSource::open_bound(&files, 0)?,
        FeedHandler::with_decoder_and_window(decoder, &[rule], args.book_slots as usize),
    );
    let mut state = BookState::new(args.book_slots as usize);
    let stdout = io::stdout().lock();
    let mut tsv = Tsv {
        out: BufWriter::with_capacity(1 << 16, stdout),
        price: inst.tick,
        qty: inst.book_lot,
        err: None,
    };
    let mut bad_reported = 0u64;
    let mut report = |what: &dyn std::fmt::Display| {
        bad_reported += 1;
        if bad_reported <= REPORT_BAD_LINES {
            errln!("ringmaker book: skipped: {what}");
        } else if bad_reported == REPORT_BAD_LINES + 1 {
            errln!("ringmaker book: further bad lines are only counted");
        }
    };
    loop {
        let step = {
            let mut sink = state.sink(&mut tsv);
            feed.next(&mut sink)
        };
        match step {
            None => break,
            Some(Step::SourceError(e)) => report(&e),
            Some(Step::DecodeError { error, .. }) => {
                let origin = feed.source().origin().unwrap_or_default();
                report(&format_args!("{origin}: {error}"));
            }
            Some(Step::TimeJump {
                local_ns,
                previous_ns,
            }) => {
                let origin = feed.source().origin().unwrap_or_default();
                report(&format_args!(
                    "{origin}: receive time {local_ns} is {:.1} h after the previous line's \
                     (more than 1 h ahead: skipped)",
                    (local_ns - previous_ns) as f64 / 3.6e12
                ));
            }
            Some(Step::Input { .. }) | Some(Step::Stopped { .. }) => {}
        }
        if tsv.err.is_some() {
            break;
        }
    }
    if let Some(e) = tsv.err.take() {
        // A closed pipe (`| head`) is a normal way to stop reading.
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e).context("writing to stdout");
    }
    match tsv.out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r.context("writing to stdout")?,
    }

    let rs = feed.source().reader().stats();
    let h = feed.handler();
    anyhow::ensure!(
        h.stats().messages > h.stats().decode_errors,
        "the recording gave nothing usable: {} lines read, {} bad",
        rs.lines,
        rs.bad_lines + h.stats().decode_errors
    );
    let (ss, hs, bs) = (h.sync_stats(0), h.stats(), state.stats());
    let book = state.book();
    let symbol = h.decoder().instruments()[0].symbol;
    let rule = match h.rule(0) {
        Some(SyncRule::Futures) => "futures (pu chain)",
        Some(SyncRule::Spot) => "spot (U = previous u + 1)",
        None => "unknown (no depth diffs)",
    };
    let (valid_ns, span_ns) = feed.book_time();
    let share = runtime::report::valid_share(valid_ns, span_ns);
    errln!("ringmaker book: {symbol}, sync rule {rule}");
    errln!("  lines read        {}", rs.lines);
    errln!(
        "  bad lines         {} ({} with a time jump)",
        rs.bad_lines + hs.decode_errors + hs.time_jumps,
        hs.time_jumps
    );
    errln!("  depth diffs       {}", hs.depth_messages);
    errln!("  snapshots         {}", ss.snapshots);
    errln!("  snapshot requests {}", hs.snapshot_requests);
    errln!("  diffs applied     {}", ss.diffs_applied);
    errln!("  diffs stale       {}", ss.diffs_stale);
    errln!("  gaps              {}", ss.gaps);
    errln!("  resyncs           {}", ss.resyncs);
    errln!("  snapshots too old {}", ss.snapshots_too_old);
    errln!(
        "  crossed books     {} (each invalidated the book: resync)",
        hs.crossed_books
    );
    errln!("  rejected levels   {}", bs.rejected_levels);
    errln!(
        "  out-of-window     {} levels (window {} ticks)",
        book.out_of_window(),
        args.book_slots
    );
    errln!(
        "  valid book        {:.1}% of {:.1} s",
        share * 100.0,
        span_ns as f64 / 1e9
    );
    errln!(
        "  book at end       {} (update id {})",
        if book.is_valid() { "valid" } else { "INVALID" },
        book.last_update_id()
    );
    let mut warnings = Vec::new();
    if share < runtime::report::MIN_VALID_SHARE {
        warnings.push(format!(
            "the book was valid for only {:.1}% of the recording ({} gaps): check --venue, \
             --tick and --lot against the data",
            share * 100.0,
            ss.gaps
        ));
    }
    Ok(crate::cmd_common::finish("book", &warnings, args.strict))
}
