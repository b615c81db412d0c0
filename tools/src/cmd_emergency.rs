//! `ringmaker emergency cancel-all|flatten`: the account's open orders cancelled (and, with
//! `flatten`, its positions closed by reduce-only market orders) straight over the venue's
//! signed REST API, with no engine: for when a run is dead, hung or unreachable.
//!
//! For each instrument of the config (or of `--symbol`): what the venue holds is read and shown
//! first (open orders, position), the user confirms on the terminal (or `--yes`), then
//! `DELETE /fapi/v1/allOpenOrders`, read back until nothing is open (a bounded number of
//! rounds); `flatten` then sends `MARKET` + `reduceOnly` orders of the opposite side for the
//! position's whole lots (its own client order ids, `rm-flat-…`) and reads the position back.
//! Only Binance USDⓈ-M is handled; an instrument of another venue is refused by name.
//!
//! Exit status: 0 done; 1 not done (something still open or not flat, the venue refused, an
//! instrument not handled, the user said no); 2 usage, config or credentials (nothing sent).

use crate::cmd_common::load_config;
use anyhow::Context as _;
use engine::{Instrument, Side, VenueFlavour};
use gateway::binance::cid::flatten_client_id;
use gateway::binance::rest::{OpenOrder, RestClient, RestError, RestOptions};
use gateway::binance::session::OrderEntryEndpoints;
use gateway::binance::sign::{Credentials, Signer};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A line on standard output; a closed or failing stdout never stops an emergency half-way
/// (SIGPIPE stays ignored for this command, see `main`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Arguments of `ringmaker emergency`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `cancel-all`: cancel every open order of the config's symbols. `flatten`: the same, then
    /// close each symbol's position with a reduce-only market order.
    #[arg(value_enum)]
    action: Action,
    /// The run config (TOML) of the account's run: its `[[instrument]]`s and `[venue] rest_url`.
    #[arg(long)]
    config: PathBuf,
    /// Act without asking. Without it the command asks on the terminal, and refuses (exit 2)
    /// when standard input is not one.
    #[arg(long)]
    yes: bool,
    /// Binance's USDⓈ-M testnet (as `run --live --testnet`).
    #[arg(long)]
    testnet: bool,
    /// The venue's REST base (as `run --live --venue-url`; overrides `[venue] rest_url` and
    /// `--testnet`). Default: Binance production.
    #[arg(long, value_name = "URL")]
    venue_url: Option<String>,
    /// Trust only the certificates of this PEM file (as `run --live --ca-cert`). Default: the
    /// public web roots.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Only this symbol of the config (repeat for more). Default: every instrument of the
    /// config.
    #[arg(long = "symbol", value_name = "SYMBOL")]
    symbols: Vec<String>,
}

/// What `emergency` does.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Cancel every open order.
    CancelAll,
    /// Cancel every open order, then close the position.
    Flatten,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::CancelAll => "cancel-all",
            Action::Flatten => "flatten",
        }
    }
}

/// Calls of one kind tried at most this often when the venue fails transiently (5xx, no
/// answer, a short rate limit).
const ATTEMPTS: u32 = 4;
/// The first pause between those attempts (doubling).
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// A rate limit that ends within this is waited for; a longer one (or a ban) is an error.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);
/// Cancel-all, then read back: at most this many rounds.
const CANCEL_ROUNDS: u32 = 3;
/// Market orders sent per symbol at most (a partly filled one is followed by another for the
/// rest).
const FLATTEN_ORDERS: u16 = 3;
/// Open orders listed per symbol before the plan is confirmed (the rest are counted).
const LISTED_ORDERS: usize = 20;

/// A symbol to act on.
#[derive(Debug, Clone)]
struct Target {
    symbol: String,
    instrument: Instrument,
}

pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(&a.config)?;
    let (targets, refused) = select(&cfg.engine, &a.symbols)?;
    let creds = Credentials::from_env().context(
        "emergency needs the account's API key in the environment (as run --live reads it)",
    )?;
    let oe = &cfg.live.order_entry;
    let (url, from) = match (&a.venue_url, &oe.rest_url) {
        (Some(u), _) => (u.clone(), "--venue-url"),
        (None, Some(u)) => (u.clone(), "[venue] rest_url"),
        (None, None) if a.testnet => (OrderEntryEndpoints::testnet().rest, "--testnet"),
        (None, None) => (OrderEntryEndpoints::binance().rest, "Binance production"),
    };
    let signer: Arc<dyn Signer + Send + Sync> = Arc::new(creds);
    let rest = RestClient::new(
        &url,
        a.ca_cert.as_deref(),
        signer,
        RestOptions {
            recv_window_ms: oe.recv_window_ms,
            ..RestOptions::default()
        },
    )
    .with_context(|| format!("the venue's REST base {url} ({from})"))?;

    say!("ringmaker emergency {}: {url} ({from})", a.action.name());
    for r in &refused {
        say!("  {r}");
    }
    // What the venue holds now.
    let mut plans = Vec::new();
    let mut unread = 0usize;
    for t in targets {
        match survey(&rest, &t, a.action) {
            Ok(p) => {
                for line in p.describe(a.action) {
                    say!("  {line}");
                }
                plans.push(p);
            }
            Err(e) => {
                unread += 1;
                say!(
                    "  {:<14} cannot read what the venue holds: {e} (nothing done)",
                    t.symbol
                );
            }
        }
    }
    let failed_already = !refused.is_empty() || unread > 0;
    let work: Vec<&Plan> = plans.iter().filter(|p| p.has_work(a.action)).collect();
    if work.is_empty() {
        if failed_already {
            say!("NOT DONE: see the lines above; nothing was sent");
        } else {
            say!(
                "nothing to do: no open orders{}",
                match a.action {
                    Action::CancelAll => "",
                    Action::Flatten => ", no position",
                }
            );
        }
        return Ok(exit(!failed_already));
    }
    if !a.yes {
        let question = question(a.action, &work);
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "standard input is not a terminal, so nobody can confirm ({question}): pass \
                 --yes to act without asking; nothing was done"
            );
        }
        if !confirm(&question)? {
            say!("aborted: nothing was done");
            return Ok(ExitCode::from(1));
        }
    }
    let tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut all_done = !failed_already;
    for p in &plans {
        let done = act(&rest, p, a.action, tag);
        all_done &= done;
    }
    if !all_done {
        say!("NOT DONE: see the lines above; check the account at the venue");
    }
    Ok(exit(all_done))
}

fn exit(done: bool) -> ExitCode {
    if done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The config's instruments to act on (`symbols`: only those, each of which must be one of
/// them), and a line for each one of a venue `emergency` does not handle.
fn select(cfg: &engine::Config, symbols: &[String]) -> anyhow::Result<(Vec<Target>, Vec<String>)> {
    for s in symbols {
        anyhow::ensure!(
            cfg.instruments
                .iter()
                .any(|i| i.instrument.symbol.eq_ignore_case(s.as_bytes())),
            "--symbol {s}: not an instrument of the config (it has {})",
            cfg.instruments
                .iter()
                .map(|i| i.instrument.symbol.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut targets = Vec::new();
    let mut refused = Vec::new();
    for i in &cfg.instruments {
        let symbol = i.instrument.symbol.as_str();
        if !symbols.is_empty()
            && !symbols
                .iter()
                .any(|s| i.instrument.symbol.eq_ignore_case(s.as_bytes()))
        {
            continue;
        }
        if targets.iter().any(|t: &Target| t.symbol == symbol) {
            continue;
        }
        match i.venue {
            VenueFlavour::BinanceUsdm => targets.push(Target {
                symbol: symbol.to_string(),
                instrument: i.instrument,
            }),
            other => refused.push(format!(
                "{symbol:<14} NOT HANDLED: emergency speaks Binance USDⓈ-M only (/fapi); this \
                 instrument is {} ({}): cancel its orders{} at the venue yourself",
                other.name(),
                match other {
                    VenueFlavour::BinanceCoinm => "/dapi",
                    _ => "/api/v3",
                },
                match other {
                    VenueFlavour::BinanceCoinm => " and close its position",
                    _ => "",
                }
            )),
        }
    }
    Ok((targets, refused))
}

/// What the venue holds for one symbol.
#[derive(Debug, Clone)]
struct Plan {
    target: Target,
    orders: Vec<OpenOrder>,
    /// The position read (`flatten`, or shown with `cancel-all`): its text and its lots.
    position: Option<(String, Position)>,
}

/// A position in whole lots of the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    /// Signed whole lots (negative: short), rounded toward zero.
    lots: i64,
    /// A part of a lot beyond `lots` (a position off the lot grid).
    part: bool,
}

impl Position {
    fn flat(self) -> bool {
        self.lots == 0 && !self.part
    }
}

/// The order that closes `pos`: its side and quantity in lots; `None` if it is flat or too
/// small to send (under a lot or the instrument's minimum quantity).
fn closing_order(inst: &Instrument, pos: Position) -> Option<(Side, i64)> {
    let lots = pos.lots.unsigned_abs();
    if lots == 0 || lots < inst.min_qty_lots.max(1).unsigned_abs() {
        return None;
    }
    let side = if pos.lots > 0 { Side::Ask } else { Side::Bid };
    Some((side, i64::try_from(lots).ok()?))
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Bid => "BUY",
        Side::Ask => "SELL",
    }
}

/// A signed decimal position (`"-0.013"`, `"0.0130"`, `"0"`) in lots of `inst`.
fn position_lots(inst: &Instrument, amt: &str) -> Result<Position, String> {
    let bad = || format!("position {amt:?} is not a decimal number");
    let (neg, digits) = match amt.trim().strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, amt.trim().strip_prefix('+').unwrap_or(amt.trim())),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // Trailing zeros of the fraction say nothing.
    let frac = frac.trim_end_matches('0');
    let too_big = || format!("position {amt:?} is too large");
    // value = units × 10^-frac.len(); a lot is mantissa × 10^-scale:
    // lots = units × 10^scale / (mantissa × 10^frac.len()).
    let mut units: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(u128::from(b - b'0')))
            .ok_or_else(too_big)?;
    }
    let pow = |n: usize| -> Result<u128, String> {
        10u128
            .checked_pow(u32::try_from(n).map_err(|_| too_big())?)
            .ok_or_else(too_big)
    };
    let num = units
        .checked_mul(pow(usize::from(inst.lot.scale()))?)
        .ok_or_else(too_big)?;
    let den = u128::from(inst.lot.mantissa())
        .checked_mul(pow(frac.len())?)
        .ok_or_else(too_big)?;
    let lots = i64::try_from(num / den).map_err(|_| too_big())?;
    Ok(Position {
        lots: if neg { -lots } else { lots },
        part: num % den != 0,
    })
}

/// Whether an error may go away if the call is made again shortly (and how long to wait).
fn transient(e: &RestError) -> Option<Duration> {
    match e {
        RestError::Server { .. } | RestError::Transport(_) => Some(Duration::ZERO),
        // Binance: -1001 internal disconnect, -1007 backend timeout (the outcome unknown).
        RestError::Venue {
            code: -1001 | -1007,
            ..
        } => Some(Duration::ZERO),
        RestError::RateLimited { retry_after } if *retry_after <= MAX_RATE_LIMIT_WAIT => {
            Some(*retry_after)
        }
        _ => None,
    }
}

/// `f` until it succeeds, fails for good, or [`ATTEMPTS`] are spent (idempotent calls only).
fn retrying<T>(mut f: impl FnMut() -> Result<T, RestError>) -> Result<T, RestError> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => match transient(&e) {
                Some(wait) if attempt < ATTEMPTS => {
                    std::thread::sleep(pause.max(wait));
                    pause *= 2;
                    attempt += 1;
                }
                _ => return Err(e),
            },
        }
    }
}

fn survey(rest: &RestClient, t: &Target, action: Action) -> Result<Plan, String> {
    let orders =
        retrying(|| rest.open_orders(&t.symbol)).map_err(|e| format!("open orders: {e}"))?;
    let position = match retrying(|| rest.position(&t.symbol)) {
        Ok(p) => {
            let text = p.map_or_else(|| "0".to_string(), |p| p.position_amt);
            let pos = position_lots(&t.instrument, &text)?;
            Some((text, pos))
        }
        // Only flatten needs the position.
        Err(e) if action == Action::Flatten => return Err(format!("position: {e}")),
        Err(_) => None,
    };
    Ok(Plan {
        target: t.clone(),
        orders,
        position,
    })
}

impl Plan {
    fn has_work(&self, action: Action) -> bool {
        !self.orders.is_empty()
            || (action == Action::Flatten && self.position.as_ref().is_some_and(|(_, p)| !p.flat()))
    }

    /// What the venue holds and what will be done, one line each.
    fn describe(&self, action: Action) -> Vec<String> {
        let sym = &self.target.symbol;
        let inst = &self.target.instrument;
        let mut out = Vec::new();
        let pos = match &self.position {
            Some((text, _)) => format!("position {text}"),
            None => "position unknown".to_string(),
        };
        out.push(format!(
            "{sym:<14} {} open order(s), {pos}",
            self.orders.len()
        ));
        for o in self.orders.iter().take(LISTED_ORDERS) {
            out.push(format!(
                "{:<14}   {} {} @ {} {} filled {} id {} ({})",
                "",
                side_name(o.side),
                o.orig_qty,
                o.price,
                o.time_in_force,
                o.executed_qty,
                o.order_id,
                o.client_order_id
            ));
        }
        if self.orders.len() > LISTED_ORDERS {
            out.push(format!(
                "{:<14}   ... and {} more",
                "",
                self.orders.len() - LISTED_ORDERS
            ));
        }
        let mut todo = Vec::new();
        if !self.orders.is_empty() {
            todo.push(format!("cancel {} order(s)", self.orders.len()));
        }
        match (action, &self.position) {
            (Action::Flatten, Some((text, p))) if !p.flat() => match closing_order(inst, *p) {
                Some((side, lots)) => todo.push(format!(
                    "{} {} at market, reduce-only{}",
                    side_name(side),
                    inst.lot.format(lots),
                    if p.part {
                        " (a part of a lot stays: not a whole lot)"
                    } else {
                        ""
                    }
                )),
                None => todo.push(format!(
                    "position {text} is under the lot {} / minimum quantity {}: it cannot be \
                     sent as an order, close it at the venue",
                    inst.lot,
                    inst.lot.format(inst.min_qty_lots)
                )),
            },
            (Action::CancelAll, Some((_, p))) if !p.flat() => {
                todo.push("the position stays (flatten closes it)".to_string())
            }
            _ => {}
        }
        if todo.is_empty() {
            todo.push("nothing".to_string());
        }
        out.push(format!("{:<14} will: {}", "", todo.join("; then ")));
        out
    }
}

/// The confirmation question for `work`.
fn question(action: Action, work: &[&Plan]) -> String {
    let mut parts = Vec::new();
    for p in work {
        let mut s = String::new();
        if !p.orders.is_empty() {
            s.push_str(&format!(
                "cancel {} order(s) on {}",
                p.orders.len(),
                p.target.symbol
            ));
        }
        if let (Action::Flatten, Some((text, pos))) = (action, &p.position) {
            if !pos.flat() {
                if !s.is_empty() {
                    s.push_str(" and ");
                }
                s.push_str(&format!("close the {} position of {text}", p.target.symbol));
            }
        }
        parts.push(s);
    }
    format!("type yes to {}", parts.join(", "))
}

/// Asks `question` on standard error; whether the answer was `yes`.
fn confirm(question: &str) -> anyhow::Result<bool> {
    {
        let mut err = std::io::stderr().lock();
        write!(err, "{question}: ").context("writing the question")?;
        err.flush().context("writing the question")?;
    }
    let mut line = String::new();
    // End of input (or an error reading it) is not a yes.
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(line.trim() == "yes")
}

/// Does `action` for `p` and says what happened; whether it is done (nothing open; flat).
fn act(rest: &RestClient, p: &Plan, action: Action, tag: u64) -> bool {
    let mut done = cancel_all(rest, &p.target.symbol, p.orders.len());
    if action == Action::Flatten {
        done &= flatten(rest, &p.target, tag);
    }
    done
}

/// Cancel-all and read back, up to [`CANCEL_ROUNDS`] times; whether nothing is left open.
fn cancel_all(rest: &RestClient, sym: &str, before: usize) -> bool {
    let mut last_err = None;
    let mut left = None;
    for round in 1..=CANCEL_ROUNDS {
        if let Err(e) = retrying(|| rest.cancel_all(sym)) {
            last_err = Some(format!("cancel-all: {e}"));
        }
        match retrying(|| rest.open_orders(sym)) {
            Ok(o) if o.is_empty() => {
                say!("  {sym:<14} cancel-all: {before} open before, 0 left");
                return true;
            }
            Ok(o) => left = Some(o.len()),
            Err(e) => last_err = Some(format!("reading open orders: {e}")),
        }
        if round < CANCEL_ROUNDS {
            std::thread::sleep(FIRST_PAUSE * 2 * round);
        }
    }
    say!(
        "  {sym:<14} cancel-all: {before} open before, {} left after {CANCEL_ROUNDS} round(s){}",
        left.map_or_else(|| "unknown".to_string(), |n| n.to_string()),
        last_err.map_or_else(String::new, |e| format!("; last error: {e}"))
    );
    false
}

/// Closes the position of `t` with reduce-only market orders, reading it back after each;
/// whether it ends flat.
fn flatten(rest: &RestClient, t: &Target, tag: u64) -> bool {
    let sym = &t.symbol;
    let inst = &t.instrument;
    let mut sent: u16 = 0;
    loop {
        let text = match retrying(|| rest.position(sym)) {
            Ok(p) => p.map_or_else(|| "0".to_string(), |p| p.position_amt),
            Err(e) => {
                say!("  {sym:<14} flatten: cannot read the position: {e}");
                return false;
            }
        };
        let pos = match position_lots(inst, &text) {
            Ok(p) => p,
            Err(e) => {
                say!("  {sym:<14} flatten: {e}");
                return false;
            }
        };
        if pos.flat() {
            if sent == 0 {
                say!("  {sym:<14} flatten: already flat (position {text})");
            } else {
                say!("  {sym:<14} flatten: flat (position {text})");
            }
            return true;
        }
        let Some((side, lots)) = closing_order(inst, pos) else {
            say!(
                "  {sym:<14} flatten: position {text} is under the lot {} / minimum quantity \
                 {}: not sent; close it at the venue",
                inst.lot,
                inst.lot.format(inst.min_qty_lots)
            );
            return false;
        };
        if sent >= FLATTEN_ORDERS {
            say!("  {sym:<14} flatten: NOT FLAT: position {text} after {sent} market order(s)");
            return false;
        }
        let qty = inst.lot.format(lots);
        let cid = flatten_client_id(tag, sent);
        sent += 1;
        match rest.place_market_reduce_only(sym, side, &qty, &cid) {
            Ok(o) => say!(
                "  {sym:<14} flatten: {} {qty} at market, reduce-only ({cid}): {} {} filled, \
                 average price {}",
                side_name(side),
                o.status,
                o.executed_qty,
                o.avg_price
            ),
            Err(e) => {
                say!(
                    "  {sym:<14} flatten: {} {qty} at market, reduce-only ({cid}): {e}",
                    side_name(side)
                );
                // The order may exist after a 5xx or a lost answer, and a reduce-only refusal
                // (-2022) means the position moved: the position read next decides. Any
                // other refusal will not change by asking again.
                let again =
                    transient(&e).is_some() || matches!(e, RestError::Venue { code: -2022, .. });
                if !again {
                    return false;
                }
            }
        }
        // The fill reaches the position at once on Binance; a moment for a slower venue.
        std::thread::sleep(FIRST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{InstrumentKind, InstrumentSpec};

    fn btc() -> Instrument {
        Instrument::from_spec(&InstrumentSpec {
            symbol: "BTCUSDT",
            kind: InstrumentKind::Linear,
            tick: "0.10",
            lot: "0.001",
            book_lot: None,
            min_qty: "0.002",
            min_notional: "5",
            contract_size: None,
            base_asset: None,
            quote_asset: None,
        })
        .unwrap()
    }

    #[test]
    fn positions_in_lots() {
        let i = btc();
        let p = |s: &str| position_lots(&i, s).unwrap();
        assert_eq!(
            p("0"),
            Position {
                lots: 0,
                part: false
            }
        );
        assert_eq!(
            p("0.000"),
            Position {
                lots: 0,
                part: false
            }
        );
        assert_eq!(
            p("-0.0"),
            Position {
                lots: 0,
                part: false
            }
        );
        assert_eq!(
            p("0.013"),
            Position {
                lots: 13,
                part: false
            }
        );
        assert_eq!(
            p("0.01300000"),
            Position {
                lots: 13,
                part: false
            }
        );
        assert_eq!(
            p("-0.013"),
            Position {
                lots: -13,
                part: false
            }
        );
        assert_eq!(
            p("12"),
            Position {
                lots: 12_000,
                part: false
            }
        );
        assert_eq!(
            p("+1.5"),
            Position {
                lots: 1_500,
                part: false
            }
        );
        // Off the grid: whole lots toward zero, and the part said.
        assert_eq!(
            p("0.0135"),
            Position {
                lots: 13,
                part: true
            }
        );
        assert_eq!(
            p("-0.0005"),
            Position {
                lots: 0,
                part: true
            }
        );
        for bad in ["", "-", "x", "1e3", "0x1", "1.2.3", ".5", "1,5", "--1"] {
            assert!(position_lots(&i, bad).is_err(), "{bad:?}");
        }
        assert!(position_lots(&i, &"9".repeat(60)).is_err());
        assert!(position_lots(&i, &format!("0.{}1", "0".repeat(60))).is_err());
    }

    #[test]
    fn the_closing_order_is_the_opposite_side_for_the_whole_lots() {
        let i = btc();
        let close = |lots, part| closing_order(&i, Position { lots, part });
        assert_eq!(close(13, false), Some((Side::Ask, 13)));
        assert_eq!(close(-13, false), Some((Side::Bid, 13)));
        assert_eq!(close(13, true), Some((Side::Ask, 13)));
        assert_eq!(close(i64::MIN + 1, false), Some((Side::Bid, i64::MAX)));
        // Flat, or under the minimum quantity (2 lots): nothing to send.
        assert_eq!(close(0, false), None);
        assert_eq!(close(0, true), None);
        assert_eq!(close(1, false), None);
        assert_eq!(close(-1, false), None);
        assert_eq!(close(2, false), Some((Side::Ask, 2)));
        let (side, lots) = close(-13, false).unwrap();
        assert_eq!(
            (side_name(side), i.lot.format(lots).as_str()),
            ("BUY", "0.013")
        );
        let (_, lots) = close(12_000, false).unwrap();
        assert_eq!(i.lot.format(lots), "12.000");
    }

    fn plan(orders: usize, position: &str) -> Plan {
        let i = btc();
        let o = OpenOrder {
            symbol: "BTCUSDT".into(),
            client_order_id: "rm0000000000007-0000000000000005".into(),
            order_id: 7,
            side: Side::Bid,
            price: "61800.0".into(),
            orig_qty: "0.010".into(),
            executed_qty: "0".into(),
            status: "NEW".into(),
            time_in_force: "GTX".into(),
            update_time_ms: 0,
        };
        Plan {
            target: Target {
                symbol: "BTCUSDT".into(),
                instrument: i,
            },
            orders: vec![o; orders],
            position: Some((position.into(), position_lots(&i, position).unwrap())),
        }
    }

    #[test]
    fn the_plan_and_the_question_say_what_will_be_done() {
        let p = plan(3, "-0.013");
        let lines = p.describe(Action::Flatten).join("\n");
        assert!(
            lines.contains("3 open order(s), position -0.013"),
            "{lines}"
        );
        assert!(lines.contains("BUY 0.010 @ 61800.0 GTX"), "{lines}");
        assert!(
            lines.contains("will: cancel 3 order(s); then BUY 0.013 at market, reduce-only"),
            "{lines}"
        );
        assert_eq!(
            question(Action::Flatten, &[&p]),
            "type yes to cancel 3 order(s) on BTCUSDT and close the BTCUSDT position of -0.013"
        );
        assert_eq!(
            question(Action::CancelAll, &[&p]),
            "type yes to cancel 3 order(s) on BTCUSDT"
        );
        let lines = p.describe(Action::CancelAll).join("\n");
        assert!(lines.contains("the position stays"), "{lines}");
        assert!(p.has_work(Action::CancelAll) && p.has_work(Action::Flatten));
        let flat = plan(0, "0.000");
        assert!(!flat.has_work(Action::CancelAll) && !flat.has_work(Action::Flatten));
        let pos_only = plan(0, "0.5");
        assert!(!pos_only.has_work(Action::CancelAll) && pos_only.has_work(Action::Flatten));
        let dust = plan(0, "0.001").describe(Action::Flatten).join("\n");
        assert!(
            dust.contains("under the lot 0.001 / minimum quantity 0.002"),
            "{dust}"
        );
        let many = plan(LISTED_ORDERS + 5, "0")
            .describe(Action::CancelAll)
            .join("\n");
        assert!(many.contains("... and 5 more"), "{many}");
    }

    #[test]
    fn only_transient_failures_are_asked_again() {
        assert!(transient(&RestError::Server { status: 503 }).is_some());
        assert!(transient(&RestError::Transport("timeout".into())).is_some());
        let short = RestError::RateLimited {
            retry_after: Duration::from_secs(2),
        };
        assert_eq!(transient(&short), Some(Duration::from_secs(2)));
        for e in [
            RestError::RateLimited {
                retry_after: Duration::from_secs(60),
            },
            RestError::Banned {
                retry_after: Duration::from_secs(1),
            },
            RestError::Venue {
                status: 401,
                code: -2015,
                msg: "Invalid API-key".into(),
            },
            RestError::Venue {
                status: 400,
                code: -2022,
                msg: "ReduceOnly Order is rejected.".into(),
            },
            RestError::Decode("x".into()),
        ] {
            assert_eq!(transient(&e), None, "{e:?}");
        }
        let mut n = 0;
        let r: Result<(), _> = retrying(|| {
            n += 1;
            Err(RestError::Server { status: 502 })
        });
        assert!(r.is_err());
        assert_eq!(n, ATTEMPTS);
        let mut n = 0;
        let r: Result<(), _> = retrying(|| {
            n += 1;
            Err(RestError::Venue {
                status: 400,
                code: -1022,
                msg: "Signature for this request is not valid.".into(),
            })
        });
        assert!(r.is_err());
        assert_eq!(n, 1);
    }
}
