//! Instruments and exact decimal ↔ integer-grid conversion.
//!
//! Venue prices and quantities arrive as decimal strings (`"61800.20"`, `"0.014"`). The engine works
//! in integer ticks and lots. A [`Grid`] is one step size (`tick_size` or `step_size`); converting a
//! string onto it is exact: a value that is not a whole number of steps is an
//! [`DecimalError::OffGrid`] error, never a rounding. Negative, empty, non-numeric and overflowing
//! strings are typed errors too. Nothing here panics or allocates.

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

/// `amount / (tick × lot)`, computed exactly at the combined scale, then rounded.
fn quote_units(
    tick: &Grid,
    lot: &Grid,
    amount: &[u8],
    round_up: bool,
) -> Result<i128, DecimalError> {
    let scale = tick.scale + lot.scale;
    if scale > MAX_SCALE {
        return Err(DecimalError::Overflow);
    }
    let units = parse_scaled(amount, scale)? as u128;
    let unit = tick.mantissa as u128 * lot.mantissa as u128;
    let q = if round_up {
        units.div_ceil(unit)
    } else {
        units / unit
    };
    i128::try_from(q).map_err(|_| DecimalError::Overflow)
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

/// An instrument's trading rules, from the venue's exchange info (`PRICE_FILTER.tickSize`,
/// `LOT_SIZE.stepSize`, `LOT_SIZE.minQty`, `MIN_NOTIONAL.notional`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    /// The venue's symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// Price grid: one tick.
    pub tick: Grid,
    /// Quantity grid: one lot.
    pub lot: Grid,
    /// Smallest order quantity, in lots.
    pub min_qty_lots: i64,
    /// Smallest order notional in units of one tick × one lot (rounded up, so a
    /// `ticks × lots` product at or above it is always at or above the venue's minimum).
    pub min_notional_tick_lots: i128,
}

impl Instrument {
    /// Builds an instrument from the venue's decimal strings.
    pub fn new(
        symbol: &str,
        tick: &str,
        lot: &str,
        min_qty: &str,
        min_notional: &str,
    ) -> Result<Instrument, InstrumentError> {
        let sym = Symbol::new(symbol.as_bytes())
            .ok_or_else(|| InstrumentError::Symbol(symbol.to_owned()))?;
        let tick = Grid::parse(tick)?;
        let lot = Grid::parse(lot)?;
        let min_qty_lots =
            lot.to_steps(min_qty.as_bytes())
                .map_err(|reason| InstrumentError::Minimum {
                    field: "min_qty",
                    value: min_qty.to_owned(),
                    reason,
                })?;
        let min_notional_tick_lots = quote_units(&tick, &lot, min_notional.as_bytes(), true)
            .map_err(|reason| InstrumentError::Minimum {
                field: "min_notional",
                value: min_notional.to_owned(),
                reason,
            })?;
        Ok(Instrument {
            symbol: sym,
            tick,
            lot,
            min_qty_lots,
            min_notional_tick_lots,
        })
    }

    /// Price string → ticks, exactly. Zero is rejected: no venue quotes at price zero.
    #[inline]
    pub fn price_to_ticks(&self, s: &[u8]) -> Result<i64, DecimalError> {
        match self.tick.to_steps(s)? {
            0 => Err(DecimalError::OffGrid),
            t => Ok(t),
        }
    }

    /// Quantity string → lots, exactly. Zero is valid (it removes a book level).
    #[inline]
    pub fn qty_to_lots(&self, s: &[u8]) -> Result<i64, DecimalError> {
        self.lot.to_steps(s)
    }

    /// A quote-currency amount (e.g. `"500"` USDT) in units of one tick × one lot, exactly
    /// when possible, else rounded down (`round_up = false`) or up.
    pub fn quote_to_tick_lots(&self, amount: &str, round_up: bool) -> Result<i128, DecimalError> {
        quote_units(&self.tick, &self.lot, amount.as_bytes(), round_up)
    }

    /// Whether `ticks × lots` meets the minimum notional.
    pub fn meets_min_notional(&self, ticks: i64, lots: i64) -> bool {
        ticks as i128 * lots as i128 >= self.min_notional_tick_lots
    }
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
        assert_eq!(i.min_notional_tick_lots, 1_000_000);
        assert!(i.meets_min_notional(618002, 2));
        assert!(!i.meets_min_notional(618002, 1));
        assert_eq!(i.price_to_ticks(b"0.0"), Err(DecimalError::OffGrid));
        let e = Instrument::new("BTCUSDT", "0.10", "0.001", "0.0005", "5").unwrap_err();
        assert!(e.to_string().contains("min_qty"), "{e}");
        assert!(Instrument::new("", "0.1", "0.1", "0.1", "1").is_err());
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
