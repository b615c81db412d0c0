//! Arbitrary bytes onto an arbitrary grid with `Grid::to_steps`. Never panics; when it succeeds,
//! `format` then `to_steps` gives the same count back; and it agrees with a slow, obviously-right
//! reference on which strings are accepted and what they are worth.
//!
//! Input layout: byte 0 picks the scale (0..=18), bytes 1..9 the mantissa (non-zero), the rest is
//! the decimal string.

use engine::{DecimalError, Grid};

/// The grid's step written as a decimal string: mantissa 10, scale 2 → "0.10".
fn step_string(mantissa: u64, scale: u8) -> String {
    let digits = mantissa.to_string();
    if scale == 0 {
        return digits;
    }
    let width = scale as usize + 1;
    let padded = format!("{digits:0>width$}");
    let (int, frac) = padded.split_at(padded.len() - scale as usize);
    format!("{int}.{frac}")
}

/// Reference: `Some(steps)` when `s` is `digits[.digits]`, exactly a whole number of steps of
/// `mantissa × 10^-scale`, and fits (`value × 10^scale` in a u64, steps in an i64); else `None`.
fn reference(s: &[u8], mantissa: u64, scale: u8) -> Option<i64> {
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
        None => (s, None),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if let Some(f) = frac {
        if f.is_empty() || !f.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    let frac = frac.unwrap_or(&[]);
    if frac.iter().skip(scale as usize).any(|&c| c != b'0') {
        return None;
    }
    // units = int.frac × 10^scale, which must fit in u64 (the implementation's accumulator).
    let mut units: u128 = 0;
    let kept = frac.iter().take(scale as usize);
    for &c in int.iter().chain(kept) {
        units = units * 10 + (c - b'0') as u128;
        if units > u64::MAX as u128 {
            return None;
        }
    }
    for _ in frac.len().min(scale as usize)..scale as usize {
        units *= 10;
        if units > u64::MAX as u128 {
            return None;
        }
    }
    if units % mantissa as u128 != 0 {
        return None;
    }
    i64::try_from(units / mantissa as u128).ok()
}

/// One fuzz input: must never panic (see the module docs for what is checked).
pub fn fuzz(data: &[u8]) {
    if data.len() < 9 {
        return;
    }
    let scale = data[0] % 19;
    let mut m = [0u8; 8];
    m.copy_from_slice(&data[1..9]);
    // Mostly small mantissas (real grids), sometimes anything.
    let raw = u64::from_le_bytes(m);
    let mantissa = if raw & 1 == 0 {
        (raw >> 1) % 1000 + 1
    } else {
        (raw >> 1).max(1)
    };
    let s = &data[9..];

    let step = step_string(mantissa, scale);
    let grid = Grid::parse(&step).unwrap_or_else(|e| panic!("grid {step}: {e}"));
    // Normalised (`"0.10"` is 1 × 10^-1), same value, printed with the decimals as written.
    assert_eq!(grid.display_scale(), scale, "{step}");
    assert!(
        grid.scale() == 0 || grid.mantissa() % 10 != 0,
        "{step}: {grid:?}"
    );
    assert_eq!(
        grid.mantissa() as u128 * 10u128.pow((scale - grid.scale()) as u32),
        mantissa as u128,
        "{step}: {grid:?}"
    );
    assert_eq!(grid.to_string(), step);

    let got = grid.to_steps(s);
    // The parser accumulates in u64 at the normalised scale: the reference does the same.
    let want = reference(s, grid.mantissa(), grid.scale());
    match (got, want) {
        (Ok(a), Some(b)) => assert_eq!(a, b, "{step} {:?}", String::from_utf8_lossy(s)),
        (Err(_), None) => {}
        _ => panic!(
            "grid {step}, input {:?}: to_steps {got:?}, reference {want:?}",
            String::from_utf8_lossy(s)
        ),
    }
    if let Ok(steps) = got {
        assert!(steps >= 0);
        let text = grid.format(steps);
        assert_eq!(grid.to_steps(text.as_bytes()), Ok(steps), "{step}: {text}");
        // The formatted text is the canonical spelling: the step's decimals as written.
        match text.split_once('.') {
            Some((_, f)) => assert_eq!(f.len(), scale as usize, "{text}"),
            None => assert_eq!(scale, 0, "{text}"),
        }
    }
    if let Err(e) = got {
        // An error is one of the documented kinds and never claimed for a valid empty string.
        assert!(matches!(
            e,
            DecimalError::Empty
                | DecimalError::Negative
                | DecimalError::NotNumeric
                | DecimalError::OffGrid
                | DecimalError::Overflow
        ));
        assert_eq!(e == DecimalError::Empty, s.is_empty());
    }
}
