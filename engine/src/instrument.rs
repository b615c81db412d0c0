//! Instruments and exact decimal ↔ integer-grid conversion.
//!
//! Venue prices and quantities arrive as decimal strings (`"61800.20"`, `"0.014"`). The engine works
//! in integer ticks and lots. A [`Grid`] is one step size (`tick_size` or `step_size`); converting a
//! string onto it is exact: a value that is not a whole number of steps is an
//! [`DecimalError::OffGrid`] error, never a rounding. Negative, empty, non-numeric and overflowing
//! strings are typed errors too. Nothing here panics or allocates.

use crate::config::Fx;
use std::fmt;

/// The largest number of fractional digits a [`Grid`] step may have.
pub const MAX_SCALE: u8 = 18;

/// Why a decimal string could not be put on a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// The string is empty.
    #[error("empty decimal string")]
    Empty,
    /// The string starts with a minus sign; prices and quantities are never negative.
    #[error("negative decimal")]
    Negative,
    /// The string holds something other than digits and at most one `.` with digits on both sides.
    #[error("not a plain decimal number")]
    NotNumeric,
    /// The value is not a whole number of grid steps; it is bad input, not something to round.
    #[error("value is not a multiple of the grid step")]
    OffGrid,
    /// The value does not fit in an `i64` count of steps.
    #[error("value overflows the integer grid")]
    Overflow,
}

/// One step size, `mantissa × 10^-scale`, normalised: `"0.10"` is mantissa 1, scale 1, so
/// converting onto a power-of-ten grid never divides.
///
/// The number of decimals as written is kept too, so values print the venue's way (`61800.20`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grid {
    mantissa: u64,
    scale: u8,
    display_scale: u8,
}

const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Grid {
    /// Parses a step size such as `"0.10"` or `"0.00001"`. It must be positive.
    pub fn parse(step: &str) -> Result<Grid, InstrumentError> {
        let (mantissa, scale) = parse_raw(step.as_bytes()).map_err(|e| InstrumentError::Step {
            step: step.to_owned(),
            reason: e.to_string(),
        })?;
        if mantissa == 0 {
            return Err(InstrumentError::Step {
                step: step.to_owned(),
                reason: "step must be positive".into(),
            });
        }
        if scale > MAX_SCALE {
            return Err(InstrumentError::Step {
                step: step.to_owned(),
                reason: format!("more than {MAX_SCALE} decimals"),
            });
        }
        // Trailing zeros of the step only make the parse scale (and a divide) bigger.
        let (mut m, mut sc) = (mantissa, scale);
        while sc > 0 && m % 10 == 0 {
            m /= 10;
            sc -= 1;
        }
        Ok(Grid {
            mantissa: m,
            scale: sc,
            display_scale: scale,
        })
    }

    /// The step as an integer count of `10^-scale` units.
    pub fn mantissa(&self) -> u64 {
        self.mantissa
    }

    /// Number of decimals of the normalised step (`"0.10"` → 1).
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Number of decimals the step was written with (`"0.10"` → 2); values print with it.
    pub fn display_scale(&self) -> u8 {
        self.display_scale
    }

    /// Converts a decimal string to a whole number of steps, exactly.
    ///
    /// Digits beyond the grid's scale must be zeros (`"61837.63000000"` on a 0.01 grid is fine).
    #[inline]
    pub fn to_steps(&self, s: &[u8]) -> Result<i64, DecimalError> {
        let units = parse_scaled(s, self.scale)?;
        let steps = if self.mantissa == 1 {
            units
        } else {
            if units % self.mantissa != 0 {
                return Err(DecimalError::OffGrid);
            }
            units / self.mantissa
        };
        i64::try_from(steps).map_err(|_| DecimalError::Overflow)
    }

    /// Converts a decimal string to the nearest whole number of steps, half a step rounding up.
    ///
    /// For values the venue computes rather than quotes (mark and index prices, carried to 8
    /// decimals whatever the tick): they need not be on the grid, so this rounds where
    /// [`Grid::to_steps`] refuses. The same strings are accepted (plain non-negative decimals;
    /// [`DecimalError::Empty`], [`DecimalError::Negative`], [`DecimalError::NotNumeric`]
    /// otherwise), with up to 38 significant digits (trailing zeros after the point not
    /// counted) and at most 38 decimals; more, or a result beyond `i64`, is
    /// [`DecimalError::Overflow`]. Integer arithmetic only; never panics, never allocates.
    pub fn to_steps_nearest(&self, s: &[u8]) -> Result<i64, DecimalError> {
        let (units, frac) = parse_wide(s)?;
        // value = units × 10^-frac, step = mantissa × 10^-scale:
        // steps = units × 10^scale / (mantissa × 10^frac).
        let scale = u32::from(self.scale);
        let (num, den) = if frac >= scale {
            let den = 10u128
                .checked_pow(frac - scale)
                .and_then(|p| p.checked_mul(u128::from(self.mantissa)))
                .ok_or(DecimalError::Overflow)?;
            (units, den)
        } else {
            let num = 10u128
                .checked_pow(scale - frac)
                .and_then(|p| p.checked_mul(units))
                .ok_or(DecimalError::Overflow)?;
            (num, u128::from(self.mantissa))
        };
        let (q, r) = (num / den, num % den);
        let q = if r >= den - r { q + 1 } else { q };
        i64::try_from(q).map_err(|_| DecimalError::Overflow)
    }

    /// Writes `steps` as a decimal string with the grid's scale (`61800.20` on a `0.10` grid).
    pub fn write(&self, steps: i64, out: &mut impl fmt::Write) -> fmt::Result {
        let units = steps as i128
            * self.mantissa as i128
            * 10i128.pow((self.display_scale - self.scale) as u32);
        let neg = units < 0;
        let units = units.unsigned_abs();
        let pow = 10u128.pow(self.display_scale as u32);
        let (int, frac) = (units / pow, units % pow);
        if neg {
            out.write_char('-')?;
        }
        if self.display_scale == 0 {
            write!(out, "{int}")
        } else {
            write!(
                out,
                "{int}.{frac:0width$}",
                width = self.display_scale as usize
            )
        }
    }

    /// `steps` as a decimal string; convenience for reports and tests (allocates).
    pub fn format(&self, steps: i64) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(steps, &mut s);
        s
    }
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(1, f)
    }
}

/// Parses a plain non-negative decimal into `(integer of all its digits, number of fractional
/// digits)` in a `u128`, trailing zeros after the point dropped first; for
/// [`Grid::to_steps_nearest`].
fn parse_wide(s: &[u8]) -> Result<(u128, u32), DecimalError> {
    let Some(&first) = s.first() else {
        return Err(DecimalError::Empty);
    };
    if first == b'-' {
        return Err(DecimalError::Negative);
    }
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &s[s.len()..]),
    };
    let dotted = int.len() < s.len();
    if int.is_empty()
        || (dotted && frac.is_empty())
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return Err(DecimalError::NotNumeric);
    }
    let kept = frac.len() - frac.iter().rev().take_while(|&&c| c == b'0').count();
    let frac = &frac[..kept];
    if frac.len() > 38 {
        return Err(DecimalError::Overflow);
    }
    let mut v: u128 = 0;
    for &c in int.iter().chain(frac) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(c - b'0')))
            .ok_or(DecimalError::Overflow)?;
    }
    Ok((v, frac.len() as u32))
}

/// Parses a signed plain decimal (`"0.00038167"`, `"-0.0001"`) into an exact count of
/// `10^-scale` units: `"0.00038167"` at scale 8 is 38,167. A leading `-` is the only sign
/// accepted; digits past `scale` must be zeros ([`DecimalError::OffGrid`] otherwise), the count
/// must fit an `i64` ([`DecimalError::Overflow`]) and `scale` be at most [`MAX_SCALE`]. Exact
/// integer arithmetic, as for [`Grid::to_steps`]: never a float, never a rounding.
pub fn signed_decimal_to_units(s: &[u8], scale: u8) -> Result<i64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::Overflow);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if neg && digits.first().is_none_or(|&c| !c.is_ascii_digit()) {
        return Err(DecimalError::NotNumeric);
    }
    let units = parse_scaled(digits, scale)?;
    let v = i64::try_from(units).map_err(|_| DecimalError::Overflow)?;
    Ok(if neg { -v } else { v })
}

/// Parses a plain decimal into `(integer of all its digits, number of fractional digits)`.
fn parse_raw(s: &[u8]) -> Result<(u64, u8), DecimalError> {
    let frac_digits = match s.iter().position(|&c| c == b'.') {
        Some(dot) => s.len() - dot - 1,
        None => 0,
    };
    if frac_digits > MAX_SCALE as usize {
        return Err(DecimalError::Overflow);
    }
    let v = parse_scaled(s, frac_digits as u8)?;
    Ok((v, frac_digits as u8))
}

/// Parses a plain decimal string into an integer count of `10^-scale` units.
///
/// Accepted: `digits` or `digits.digits`. Fractional digits past `scale` must be zero.
#[inline]
fn parse_scaled(s: &[u8], scale: u8) -> Result<u64, DecimalError> {
    // Fast path: up to 18 significant digits cannot overflow a u64, so accumulate without
    // checks. Anything unusual (too long, malformed, off-grid) takes the checked path below,
    // which also produces the precise error.
    if s.len() <= 19 {
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            v = v * 10 + (s[i] - b'0') as u64;
            i += 1;
        }
        let int_digits = i;
        let mut frac = 0usize;
        let mut ok = int_digits > 0;
        if ok && i < s.len() {
            ok = s[i] == b'.' && i + 1 < s.len();
            i += 1;
            while ok && i < s.len() {
                let c = s[i];
                if !c.is_ascii_digit() || (frac >= scale as usize && c != b'0') {
                    ok = false;
                } else if frac < scale as usize {
                    v = v * 10 + (c - b'0') as u64;
                }
                frac += 1;
                i += 1;
            }
        }
        let pad = (scale as usize).saturating_sub(frac);
        if ok && int_digits + frac.min(scale as usize) + pad <= 18 {
            return Ok(v * POW10[pad]);
        }
    }
    parse_scaled_checked(s, scale)
}

#[cold]
fn parse_scaled_checked(s: &[u8], scale: u8) -> Result<u64, DecimalError> {
    let Some(&first) = s.first() else {
        return Err(DecimalError::Empty);
    };
    if first == b'-' {
        return Err(DecimalError::Negative);
    }
    let mut v: u64 = 0;
    let mut i = 0;
    let mut int_digits = 0;
    while i < s.len() {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(d as u64))
            .ok_or(DecimalError::Overflow)?;
        i += 1;
        int_digits += 1;
    }
    if int_digits == 0 {
        return Err(DecimalError::NotNumeric);
    }
    let mut frac = 0usize;
    if i < s.len() {
        if s[i] != b'.' || i + 1 == s.len() {
            return Err(DecimalError::NotNumeric);
        }
        i += 1;
        let mut off_grid = false;
        while i < s.len() {
            let d = s[i].wrapping_sub(b'0');
            if d > 9 {
                return Err(DecimalError::NotNumeric);
            }
            if frac < scale as usize {
                v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(d as u64))
                    .ok_or(DecimalError::Overflow)?;
            } else if d != 0 {
                off_grid = true;
            }
            frac += 1;
            i += 1;
        }
        // Report a malformed string before an off-grid one: the whole string was checked.
        if off_grid {
            return Err(DecimalError::OffGrid);
        }
    }
    if frac < scale as usize {
        v = v
            .checked_mul(POW10[scale as usize - frac])
            .ok_or(DecimalError::Overflow)?;
    }
    Ok(v)
}

/// A venue symbol, stored inline (no heap) so instruments and lookups stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::CAPACITY],
}

impl Symbol {
    /// Longest symbol accepted.
    pub const CAPACITY: usize = 23;

    /// Makes a symbol from ASCII bytes; `None` if too long, empty or not printable ASCII.
    pub fn new(s: &[u8]) -> Option<Symbol> {
        if s.is_empty() || s.len() > Self::CAPACITY || !s.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut bytes = [0u8; Self::CAPACITY];
        bytes[..s.len()].copy_from_slice(s);
        Some(Symbol {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The symbol's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Case-insensitive comparison (streams name symbols in lower case, payloads in upper).
    pub fn eq_ignore_case(&self, other: &[u8]) -> bool {
        self.as_bytes().eq_ignore_ascii_case(other)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error building an [`Instrument`]; names the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstrumentError {
    /// A tick or lot size that is not a positive decimal.
    #[error("invalid step size {step:?}: {reason}")]
    Step {
        /// The string as given.
        step: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A symbol that is empty, too long or not printable ASCII.
    #[error("invalid symbol {0:?}: 1 to 23 printable ASCII characters")]
    Symbol(String),
    /// A contract size that is missing (inverse), not allowed (other kinds) or not a whole
    /// number of ticks.
    #[error("invalid contract_size {value:?}: {reason}")]
    ContractSize {
        /// The string as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Base and quote assets that cannot be read from the symbol or are not valid names.
    #[error("cannot tell the base and quote assets of {0:?}: set base_asset and quote_asset")]
    Assets(String),
    /// A minimum (qty or notional) that is not a valid decimal on its grid.
    #[error("invalid {field} {value:?}: {reason}")]
    Minimum {
        /// `min_qty` or `min_notional`.
        field: &'static str,
        /// The string as given.
        value: String,
        /// What is wrong with it.
        reason: DecimalError,
    },
}

/// What kind of contract an instrument is: it decides the units of quantity, notional, PnL and
/// fees.
///
/// | kind | quantity | notional | PnL and fees |
/// |---|---|---|---|
/// | linear (USDⓈ-M, USDC-M) | base asset | price × qty, quote asset | quote asset |
/// | inverse (COIN-M) | contracts of `contract_size` quote (USD) | contracts × contract_size, USD | base coin: contracts × contract_size × (1/entry − 1/exit) |
/// | spot | base asset, bounded by balances | price × qty, quote asset | quote asset; a buy's fee is charged in the base asset received, a sell's in the quote asset |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// Linear perpetual or future: quantity in the base asset, money in the quote asset.
    #[default]
    Linear,
    /// Inverse (coin-margined) contract: quantity in contracts, money in the base coin.
    Inverse,
    /// Spot: inventory in the base asset held, bounded by balances.
    Spot,
}

impl InstrumentKind {
    /// The name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            InstrumentKind::Linear => "linear",
            InstrumentKind::Inverse => "inverse",
            InstrumentKind::Spot => "spot",
        }
    }
}

/// Decimals of the money unit of an inverse instrument: PnL and fees are held in units of
/// 10^-12 of the base coin (10^-4 satoshi), which is far below anything the venue reports and
/// leaves a 48-bit fee field room for 140 coins a fill.
pub const INVERSE_MONEY_SCALE: u8 = 12;

/// Units of a spot buy's fee (charged in the base asset) per lot: 10^6, so a fee of 0.1 bp of one
/// lot is still 10 units.
pub const SPOT_BASE_FEE_UNITS_PER_LOT: i64 = 1_000_000;

/// A unit of money or notional: `mantissa × 10^-scale` of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyUnit {
    /// The unit as an integer count of `10^-scale`.
    pub mantissa: u128,
    /// Decimals.
    pub scale: u8,
}

impl MoneyUnit {
    /// `units` of this unit as a float, for reports (exact values stay in integers).
    pub fn to_f64(&self, units: i128) -> f64 {
        units as f64 * self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// `units` of this unit in fixed point (saturating), for the engine's own arithmetic in
    /// the currency (one rounding per division by up to 10^18).
    pub fn to_fx(&self, units: i128) -> Fx {
        let mantissa = i128::try_from(self.mantissa).unwrap_or(i128::MAX);
        let mut v = Fx::saturating_from_num(units.saturating_mul(mantissa));
        let mut scale = u32::from(self.scale);
        while scale > 0 {
            let k = scale.min(18);
            v /= Fx::from_num(10u64.pow(k));
            scale -= k;
        }
        v
    }

    /// `units` as an exact decimal string (`-1.0274` for -10274 units of 0.0001).
    pub fn format(&self, units: i128) -> String {
        let neg = units < 0;
        let v = units.unsigned_abs().saturating_mul(self.mantissa);
        let pow = 10u128.pow(self.scale as u32);
        let (int, frac) = (v / pow, v % pow);
        let sign = if neg && v != 0 { "-" } else { "" };
        if self.scale == 0 {
            return format!("{sign}{int}");
        }
        let frac = format!("{frac:0width$}", width = self.scale as usize);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    /// A decimal amount in whole units, exactly when possible, else rounded down or up.
    pub fn parse(&self, amount: &str, round_up: bool) -> Result<i128, DecimalError> {
        if self.scale > MAX_SCALE {
            return Err(DecimalError::Overflow);
        }
        let units = parse_scaled(amount.trim().as_bytes(), self.scale)? as u128;
        let q = if round_up {
            units.div_ceil(self.mantissa)
        } else {
            units / self.mantissa
        };
        i128::try_from(q).map_err(|_| DecimalError::Overflow)
    }
}

/// An instrument's description as the venue's exchange info gives it, as decimal strings; see
/// [`Instrument::from_spec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct InstrumentSpec<'a> {
    /// The venue's symbol.
    pub symbol: &'a str,
    /// Linear, inverse or spot.
    pub kind: InstrumentKind,
    /// `PRICE_FILTER.tickSize`.
    pub tick: &'a str,
    /// `LOT_SIZE.stepSize`: the order quantity step (contracts for inverse).
    pub lot: &'a str,
    /// The market data's quantity grid, when finer than `lot` (spot books carry 8 decimals while
    /// BTCUSDT's order step is 0.00001); `lot` when `None`. `lot` must be a whole number of it.
    pub book_lot: Option<&'a str>,
    /// `LOT_SIZE.minQty`.
    pub min_qty: &'a str,
    /// Smallest order notional, quote currency (USD for inverse: contracts × contract_size).
    pub min_notional: &'a str,
    /// Inverse only: quote currency (USD) per contract.
    pub contract_size: Option<&'a str>,
    /// Base asset (`BTC`); read from the symbol when `None`.
    pub base_asset: Option<&'a str>,
    /// Quote asset (`USDT`, `USD` for COIN-M); read from the symbol when `None`.
    pub quote_asset: Option<&'a str>,
}

/// Quote assets recognised at the end of a symbol, longest first.
const QUOTE_SUFFIXES: [&str; 14] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "USD", "BTC", "ETH", "BNB", "EUR",
    "TRY", "BRL",
];

/// `(base, quote)` read from a symbol: `BTCUSDT` → (BTC, USDT); `BTCUSD_PERP`, `ETHUSD_240927` →
/// (BTC, USD). `None` when no known quote asset ends it.
pub fn assets_from_symbol(symbol: &str) -> Option<(String, String)> {
    let head = symbol
        .split('_')
        .next()
        .unwrap_or(symbol)
        .to_ascii_uppercase();
    QUOTE_SUFFIXES.iter().find_map(|q| {
        let base = head.strip_suffix(q)?;
        (!base.is_empty()).then(|| (base.to_owned(), (*q).to_owned()))
    })
}

/// An instrument's trading rules, from the venue's exchange info (`PRICE_FILTER.tickSize`,
/// `LOT_SIZE.stepSize`, `LOT_SIZE.minQty`, `MIN_NOTIONAL.notional`, `contractSize`) and its kind.
///
/// Three kinds of unit come out of it, all integers:
/// - quantity: order **lots** (`lot`), and the market data's **book units** (`book_lot`, equal
///   to or finer than a lot);
/// - **notional units** (quote currency): one tick × one lot for linear and spot, one tick of
///   USD for inverse (notional = contracts × contract_size);
/// - **money units** (the PnL currency: quote for linear and spot, base coin for inverse): one
///   tick × one lot, or 10^-12 coin for inverse ([`INVERSE_MONEY_SCALE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    /// The venue's symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// Linear, inverse or spot.
    pub kind: InstrumentKind,
    /// Price grid: one tick.
    pub tick: Grid,
    /// Order quantity grid: one lot (one contract step for inverse).
    pub lot: Grid,
    /// Market-data quantity grid: one book unit (equal to or finer than a lot).
    pub book_lot: Grid,
    /// Book units in one lot (1 when the grids are the same).
    pub book_units_per_lot: i64,
    /// Inverse: the contract size in ticks of quote (100 USD at a 0.1 tick is 1,000); 0 otherwise.
    pub contract_ticks: i64,
    /// Smallest order quantity, in lots.
    pub min_qty_lots: i64,
    /// Smallest order notional in notional units (rounded up, so a notional at or above it is
    /// always at or above the venue's minimum).
    pub min_notional_units: i128,
    /// Base asset (`BTC`).
    pub base_asset: Symbol,
    /// Quote asset (`USDT`; `USD` for COIN-M).
    pub quote_asset: Symbol,
}

impl Instrument {
    /// A linear instrument from the venue's decimal strings, its book on the order lot grid and
    /// its assets read from the symbol (see [`Instrument::from_spec`] for the other kinds).
    pub fn new(
        symbol: &str,
        tick: &str,
        lot: &str,
        min_qty: &str,
        min_notional: &str,
    ) -> Result<Instrument, InstrumentError> {
        Instrument::from_spec(&InstrumentSpec {
            symbol,
            kind: InstrumentKind::Linear,
            tick,
            lot,
            min_qty,
            min_notional,
            ..InstrumentSpec::default()
        })
    }

    /// Builds an instrument of any kind.
    pub fn from_spec(s: &InstrumentSpec<'_>) -> Result<Instrument, InstrumentError> {
        let sym = Symbol::new(s.symbol.as_bytes())
            .ok_or_else(|| InstrumentError::Symbol(s.symbol.to_owned()))?;
        let tick = Grid::parse(s.tick)?;
        let lot = Grid::parse(s.lot)?;
        let book_lot = match s.book_lot {
            Some(b) => Grid::parse(b)?,
            None => lot,
        };
        let book_units_per_lot =
            book_units_per_lot(&lot, &book_lot).ok_or_else(|| InstrumentError::Step {
                step: s.lot.to_owned(),
                reason: format!(
                    "the lot must be a whole number (at most 10^12) of book_lot {book_lot}"
                ),
            })?;
        let min_qty_lots =
            lot.to_steps(s.min_qty.as_bytes())
                .map_err(|reason| InstrumentError::Minimum {
                    field: "min_qty",
                    value: s.min_qty.to_owned(),
                    reason,
                })?;
        let contract_ticks = match (s.kind, s.contract_size) {
            (InstrumentKind::Inverse, Some(cs)) => match tick.to_steps(cs.trim().as_bytes()) {
                Ok(t) if t > 0 && t <= 1 << 40 => t,
                Ok(_) => {
                    return Err(InstrumentError::ContractSize {
                        value: cs.to_owned(),
                        reason: "must be positive and at most 2^40 ticks".into(),
                    })
                }
                Err(e) => {
                    return Err(InstrumentError::ContractSize {
                        value: cs.to_owned(),
                        reason: format!("{e} (it must be a whole number of ticks)"),
                    })
                }
            },
            (InstrumentKind::Inverse, None) => {
                return Err(InstrumentError::ContractSize {
                    value: String::new(),
                    reason: "an inverse instrument needs contract_size (quote currency per \
                             contract, e.g. \"100\" for BTCUSD_PERP)"
                        .into(),
                })
            }
            (_, Some(cs)) => {
                return Err(InstrumentError::ContractSize {
                    value: cs.to_owned(),
                    reason: "only an inverse instrument has a contract size".into(),
                })
            }
            (_, None) => 0,
        };
        let (base, quote) = match (s.base_asset, s.quote_asset) {
            (Some(b), Some(q)) => (b.to_owned(), q.to_owned()),
            (b, q) => {
                let (db, dq) = assets_from_symbol(s.symbol)
                    .ok_or_else(|| InstrumentError::Assets(s.symbol.to_owned()))?;
                (b.map_or(db, str::to_owned), q.map_or(dq, str::to_owned))
            }
        };
        let asset = |a: &str| {
            Symbol::new(a.trim().as_bytes()).ok_or_else(|| InstrumentError::Assets(a.to_owned()))
        };
        let mut inst = Instrument {
            symbol: sym,
            kind: s.kind,
            tick,
            lot,
            book_lot,
            book_units_per_lot,
            contract_ticks,
            min_qty_lots,
            min_notional_units: 0,
            base_asset: asset(&base)?,
            quote_asset: asset(&quote)?,
        };
        inst.min_notional_units =
            inst.notional_unit()
                .parse(s.min_notional, true)
                .map_err(|reason| InstrumentError::Minimum {
                    field: "min_notional",
                    value: s.min_notional.to_owned(),
                    reason,
                })?;
        Ok(inst)
    }

    /// Price string → ticks, exactly. Zero is rejected: no venue quotes at price zero.
    #[inline]
    pub fn price_to_ticks(&self, s: &[u8]) -> Result<i64, DecimalError> {
        match self.tick.to_steps(s)? {
            0 => Err(DecimalError::OffGrid),
            t => Ok(t),
        }
    }

    /// A price the venue computes (mark, index) → ticks, rounded to the nearest tick, half a
    /// tick up ([`Grid::to_steps_nearest`]). Zero (after rounding) is rejected as
    /// [`DecimalError::OffGrid`], as for [`Instrument::price_to_ticks`].
    #[inline]
    pub fn price_to_ticks_nearest(&self, s: &[u8]) -> Result<i64, DecimalError> {
        match self.tick.to_steps_nearest(s)? {
            0 => Err(DecimalError::OffGrid),
            t => Ok(t),
        }
    }

    /// Market-data quantity string → book units, exactly. Zero is valid (it removes a level).
    #[inline]
    pub fn book_qty(&self, s: &[u8]) -> Result<i64, DecimalError> {
        self.book_lot.to_steps(s)
    }

    /// Order quantity string → lots, exactly.
    #[inline]
    pub fn qty_to_lots(&self, s: &[u8]) -> Result<i64, DecimalError> {
        self.lot.to_steps(s)
    }

    /// Book units → whole lots, rounded up (a part of a lot in the book still takes a place).
    #[inline]
    pub fn book_to_lots_ceil(&self, units: i64) -> i64 {
        if self.book_units_per_lot == 1 {
            units
        } else {
            units.div_euclid(self.book_units_per_lot)
                + i64::from(units.rem_euclid(self.book_units_per_lot) != 0)
        }
    }

    /// Book units → whole lots, rounded down (only whole lots can fill an order).
    #[inline]
    pub fn book_to_lots_floor(&self, units: i64) -> i64 {
        units.div_euclid(self.book_units_per_lot)
    }

    /// The unit of notional: one tick × one lot of quote (linear, spot) or one tick of USD
    /// (inverse).
    pub fn notional_unit(&self) -> MoneyUnit {
        match self.kind {
            InstrumentKind::Inverse => MoneyUnit {
                mantissa: self.tick.mantissa as u128,
                scale: self.tick.scale,
            },
            _ => self.tick_lot_unit(),
        }
    }

    /// The unit of money (PnL and fees, in [`Instrument::pnl_asset`]).
    pub fn money_unit(&self) -> MoneyUnit {
        match self.kind {
            InstrumentKind::Inverse => MoneyUnit {
                mantissa: 1,
                scale: INVERSE_MONEY_SCALE,
            },
            _ => self.tick_lot_unit(),
        }
    }

    fn tick_lot_unit(&self) -> MoneyUnit {
        MoneyUnit {
            mantissa: self.tick.mantissa as u128 * self.lot.mantissa as u128,
            scale: self.tick.scale + self.lot.scale,
        }
    }

    /// The currency PnL and fees are in: the quote asset, or the base coin for inverse.
    pub fn pnl_asset(&self) -> Symbol {
        match self.kind {
            InstrumentKind::Inverse => self.base_asset,
            _ => self.quote_asset,
        }
    }

    /// Notional of `qty` lots at `price` ticks, notional units: `price × qty` (linear, spot) or
    /// `qty × contract_size` (inverse, whatever the price).
    #[inline]
    pub fn notional(&self, price: i64, qty: i64) -> i128 {
        match self.kind {
            InstrumentKind::Inverse => qty as i128 * self.contract_ticks as i128,
            _ => price as i128 * qty as i128,
        }
    }

    /// Money value of `qty` lots (≥ 0) at `price` ticks, money units: `price × qty` (linear,
    /// spot), or `qty × contract_size / price` coin (inverse, rounded down).
    #[inline]
    pub fn value(&self, price: i64, qty: i64) -> i128 {
        match self.kind {
            InstrumentKind::Inverse => {
                if price <= 0 {
                    return 0;
                }
                // qty < 2^48, contract_ticks ≤ 2^40 and 10^12 < 2^40: the product fits; beyond
                // that it saturates.
                (qty as i128)
                    .saturating_mul(self.contract_ticks as i128)
                    .saturating_mul(INVERSE_SCALE)
                    / price as i128
            }
            _ => price as i128 * qty as i128,
        }
    }

    /// Money value of a signed position of `qty` lots at the fair value `fv` (ticks), money
    /// units, rounded towards −∞ (linear, spot: `qty × fv`; inverse: `qty × contract_size / fv`).
    pub fn value_at(&self, fv: Fx, qty: i64) -> i128 {
        match self.kind {
            InstrumentKind::Inverse => {
                // fv to 2^-16 tick: the value's relative error is below 2^-16 / fv, under 10^-10
                // for any price above a thousand ticks.
                let fv16 = fv.to_bits() >> 48;
                if fv16 <= 0 {
                    return 0;
                }
                let num = (qty as i128)
                    .saturating_mul(self.contract_ticks as i128)
                    .saturating_mul(INVERSE_SCALE)
                    .saturating_mul(1 << 16);
                num.div_euclid(fv16)
            }
            _ => {
                let v = Fx::from_num(qty).saturating_mul(fv);
                v.floor().to_num::<i128>()
            }
        }
    }

    /// +1 when a long position gains as the value [`Instrument::value`] rises (linear, spot), −1
    /// when it gains as that value falls (inverse: the coin value of a USD amount falls as the
    /// price rises).
    #[inline]
    pub fn direction(&self) -> i128 {
        match self.kind {
            InstrumentKind::Inverse => -1,
            _ => 1,
        }
    }

    /// A quote-currency amount (e.g. `"500"` USDT) in notional units, exactly when possible,
    /// else rounded down (`round_up = false`) or up.
    pub fn quote_to_tick_lots(&self, amount: &str, round_up: bool) -> Result<i128, DecimalError> {
        self.notional_unit().parse(amount, round_up)
    }

    /// Whether `qty` lots at `price` ticks meet the minimum notional.
    pub fn meets_min_notional(&self, ticks: i64, lots: i64) -> bool {
        self.notional(ticks, lots) >= self.min_notional_units
    }
}

/// 10^[`INVERSE_MONEY_SCALE`].
const INVERSE_SCALE: i128 = 1_000_000_000_000;

/// Book units in one lot: `lot / book_lot` when it is a whole number up to 10^12.
fn book_units_per_lot(lot: &Grid, book: &Grid) -> Option<i64> {
    // lot = lm·10^-ls, book = bm·10^-bs: ratio = lm·10^(bs-ls) / bm.
    let (lm, bm) = (lot.mantissa as u128, book.mantissa as u128);
    let num = if book.scale >= lot.scale {
        lm.checked_mul(10u128.checked_pow((book.scale - lot.scale) as u32)?)?
    } else {
        let den = bm.checked_mul(10u128.checked_pow((lot.scale - book.scale) as u32)?)?;
        return (lm % den == 0 && lm / den >= 1)
            .then(|| i64::try_from(lm / den).ok())
            .flatten();
    };
    if num % bm != 0 {
        return None;
    }
    let r = num / bm;
    (1..=1_000_000_000_000).contains(&r).then_some(r as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Grid {
        Grid::parse(s).unwrap()
    }

    #[test]
    fn exact_conversion_on_a_tenth_tick() {
        let t = g("0.10");
        assert_eq!(t.to_steps(b"61800.20"), Ok(618002));
        assert_eq!(t.to_steps(b"61800.2"), Ok(618002));
        assert_eq!(t.to_steps(b"61800"), Ok(618000));
        assert_eq!(t.to_steps(b"61800.25"), Err(DecimalError::OffGrid));
        assert_eq!(t.to_steps(b"0.00"), Ok(0));
        assert_eq!(t.format(618002), "61800.20");
        assert_eq!(t.format(0), "0.00");
    }

    #[test]
    fn spot_strings_with_trailing_zeros() {
        let t = g("0.01");
        let l = g("0.00001");
        assert_eq!(t.to_steps(b"61837.63000000"), Ok(6183763));
        assert_eq!(l.to_steps(b"3.78826000"), Ok(378826));
        assert_eq!(l.to_steps(b"0.00000000"), Ok(0));
        assert_eq!(l.to_steps(b"0.00000100"), Err(DecimalError::OffGrid));
        assert_eq!(l.format(378826), "3.78826");
    }

    #[test]
    fn bad_strings_are_typed_errors() {
        let t = g("0.10");
        assert_eq!(t.to_steps(b""), Err(DecimalError::Empty));
        assert_eq!(t.to_steps(b"-1.0"), Err(DecimalError::Negative));
        assert_eq!(t.to_steps(b"abc"), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b"1.2.3"), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b".5"), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b"5."), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b"1e5"), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b"+1"), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b" 1"), Err(DecimalError::NotNumeric));
        assert_eq!(t.to_steps(b"1.25x"), Err(DecimalError::NotNumeric));
        assert_eq!(
            t.to_steps(b"99999999999999999999999"),
            Err(DecimalError::Overflow)
        );
        // Fits u64 units but not i64 steps.
        assert_eq!(
            g("1").to_steps(b"18446744073709551615"),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn grids_and_instruments_validate() {
        assert!(Grid::parse("0").is_err());
        assert!(Grid::parse("-0.1").is_err());
        assert!(Grid::parse("x").is_err());
        assert_eq!(g("0.10").to_string(), "0.10");
        let i = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
        assert_eq!(i.min_qty_lots, 1);
        // 100 USDT / (0.1 × 0.001) = 1,000,000 tick·lots.
        assert_eq!(i.min_notional_units, 1_000_000);
        assert!(i.meets_min_notional(618002, 2));
        assert!(!i.meets_min_notional(618002, 1));
        assert_eq!(i.price_to_ticks(b"0.0"), Err(DecimalError::OffGrid));
        let e = Instrument::new("BTCUSDT", "0.10", "0.001", "0.0005", "5").unwrap_err();
        assert!(e.to_string().contains("min_qty"), "{e}");
        assert!(Instrument::new("", "0.1", "0.1", "0.1", "1").is_err());
    }

    #[test]
    fn computed_prices_round_to_the_nearest_tick_half_up() {
        let t = g("0.10");
        assert_eq!(t.to_steps_nearest(b"11794.15000000"), Ok(117_942));
        assert_eq!(t.to_steps_nearest(b"11784.62659091"), Ok(117_846));
        assert_eq!(t.to_steps_nearest(b"11784.64999999"), Ok(117_846));
        assert_eq!(t.to_steps_nearest(b"11784.65"), Ok(117_847));
        assert_eq!(t.to_steps_nearest(b"11784.6"), Ok(117_846));
        assert_eq!(t.to_steps_nearest(b"11784"), Ok(117_840));
        assert_eq!(t.to_steps_nearest(b"0.04999999"), Ok(0));
        // Many trailing zeros are not digits that count.
        assert_eq!(
            t.to_steps_nearest(b"61800.2000000000000000000000000000000000000000"),
            Ok(618_002)
        );
        // A grid of 0.25 (mantissa 25, scale 2) and one coarser than the decimals (5).
        assert_eq!(g("0.25").to_steps_nearest(b"1.12"), Ok(4));
        assert_eq!(g("0.25").to_steps_nearest(b"1.13"), Ok(5));
        assert_eq!(g("5").to_steps_nearest(b"12.5"), Ok(3));
        assert_eq!(g("5").to_steps_nearest(b"12.49999999"), Ok(2));
        // On the grid, it agrees with the exact conversion.
        for s in [&b"61800.20"[..], b"0.1", b"123456789.9"] {
            assert_eq!(t.to_steps_nearest(s), t.to_steps(s));
        }
        for (s, e) in [
            (&b""[..], DecimalError::Empty),
            (b"-1.0", DecimalError::Negative),
            (b"1e5", DecimalError::NotNumeric),
            (b".5", DecimalError::NotNumeric),
            (b"5.", DecimalError::NotNumeric),
            (b"1.2.3", DecimalError::NotNumeric),
            (b"+1", DecimalError::NotNumeric),
            (
                b"999999999999999999999999999999999999999",
                DecimalError::Overflow,
            ),
            (b"922337203685477580.8", DecimalError::Overflow),
            (
                b"0.000000000000000000000000000000000000001",
                DecimalError::Overflow,
            ),
        ] {
            assert_eq!(
                t.to_steps_nearest(s),
                Err(e),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
        assert_eq!(t.to_steps_nearest(b"922337203685477580.7"), Ok(i64::MAX));
        let i = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
        assert_eq!(i.price_to_ticks_nearest(b"11794.15"), Ok(117_942));
        assert_eq!(
            i.price_to_ticks_nearest(b"0.01"),
            Err(DecimalError::OffGrid)
        );
    }

    #[test]
    fn signed_decimals_are_exact_counts() {
        assert_eq!(signed_decimal_to_units(b"0.00038167", 8), Ok(38_167));
        assert_eq!(signed_decimal_to_units(b"-0.00038167", 8), Ok(-38_167));
        assert_eq!(signed_decimal_to_units(b"-0.0001", 8), Ok(-10_000));
        assert_eq!(signed_decimal_to_units(b"0.0001000000", 8), Ok(10_000));
        assert_eq!(signed_decimal_to_units(b"-0", 8), Ok(0));
        assert_eq!(signed_decimal_to_units(b"3", 8), Ok(300_000_000));
        for (s, e) in [
            (&b""[..], DecimalError::Empty),
            (b"-", DecimalError::NotNumeric),
            (b"--1", DecimalError::NotNumeric),
            (b"-.1", DecimalError::NotNumeric),
            (b"+0.1", DecimalError::NotNumeric),
            (b"0.1e-3", DecimalError::NotNumeric),
            (b"0.000381675", DecimalError::OffGrid),
            (b"-0.000381675", DecimalError::OffGrid),
            (b"99999999999", DecimalError::Overflow),
            (b"184467440737.09551615", DecimalError::Overflow),
        ] {
            assert_eq!(
                signed_decimal_to_units(s, 8),
                Err(e),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
        assert_eq!(
            signed_decimal_to_units(b"-92233720368.54775807", 8),
            Ok(-i64::MAX)
        );
        assert_eq!(
            signed_decimal_to_units(b"1", 19),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn symbol_is_inline_and_case_insensitive() {
        let s = Symbol::new(b"BTCUSDT").unwrap();
        assert!(s.eq_ignore_case(b"btcusdt"));
        assert_eq!(s.to_string(), "BTCUSDT");
        assert!(Symbol::new(b"").is_none());
        assert!(Symbol::new(&[b'A'; 24]).is_none());
    }
}
