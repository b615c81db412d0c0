//! A single-pass scanner for the one message shape that dominates the feed: Binance's
//! `depthUpdate` (combined-stream envelope or bare), as the venue sends it — no whitespace, no
//! escapes, known keys only.
//!
//! It exists because it is measurably faster than building a simd-json tape for a 40-level diff
//! (see `benches/decode.rs`, which runs both plus serde_json in one group): decimals are put on
//! the grid while the bytes are scanned, with no string copies. It is deliberately narrow:
//! anything it does not recognise — another key, whitespace, an escape, a number that is not a
//! plain unsigned integer, a non-ASCII byte — makes it return [`Fast::Fallback`] *before* any
//! output is kept, and the caller decodes the message with simd-json instead. It never accepts
//! input that simd-json would reject: the whole buffer must be consumed by the object. A
//! differential test holds it to exactly the simd-json decoder's output on every recorded
//! message and on random mutations of them.

use crate::binance::decode::{DecodeError, DepthHeader};
use engine::{Event, Instrument, InstrumentId, LevelUpdate, Side};

/// Outcome of the fast path.
pub(crate) enum Fast {
    /// Decoded; the levels were appended to the caller's buffer.
    Depth(DepthHeader),
    /// A well-formed depth message whose content is invalid (the simd-json path would report
    /// the same error).
    Error(DecodeError),
    /// Not a shape this scanner handles: decode it the general way.
    Fallback,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string with no escapes and only printable ASCII; returns its bytes.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            if c == b'"' {
                let s = &self.b[start..self.i];
                self.i += 1;
                return Some(s);
            }
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                return None;
            }
            self.i += 1;
        }
        None
    }

    /// An unsigned integer in JSON's grammar (no leading zeros, no sign, no fraction).
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.checked_mul(10)?.checked_add(d as u64)?;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        // A fraction or exponent makes it a float: not ours.
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(v)
    }
}

/// Tries the fast path. The symbol is looked up in `instruments`, whose `k`-th has id
/// `first_id + k` (all of a decoder's instruments with `first_id` 0, or only the one a bound
/// source is for, with its id). `levels` is only appended to when [`Fast::Depth`] is returned.
#[inline]
pub(crate) fn decode_depth(
    json: &[u8],
    local_ns: i64,
    instruments: &[Instrument],
    first_id: InstrumentId,
    levels: &mut Vec<Event>,
) -> Fast {
    let start_len = levels.len();
    match scan(json, local_ns, instruments, first_id, levels) {
        Some(f) => {
            if !matches!(f, Fast::Depth(_)) {
                levels.truncate(start_len);
            }
            f
        }
        None => {
            levels.truncate(start_len);
            Fast::Fallback
        }
    }
}

fn scan(
    json: &[u8],
    local_ns: i64,
    instruments: &[Instrument],
    first_id: InstrumentId,
    levels: &mut Vec<Event>,
) -> Option<Fast> {
    let mut c = Cursor { b: json, i: 0 };
    c.eat(b'{')?;
    // Envelope: `{"stream":"...","data":{...}}`, or the payload itself.
    let enveloped = json.get(1..10) == Some(b"\"stream\":");
    if enveloped {
        c.i = 10;
        c.string()?;
        c.eat(b',')?;
        if json.get(c.i..c.i + 8) != Some(b"\"data\":{") {
            return None;
        }
        c.i += 8;
    }
    // `e` must come first, so anything that is not a depth update leaves at once.
    if json.get(c.i..c.i + 19) != Some(b"\"e\":\"depthUpdate\",\"") {
        return None;
    }
    c.i += 18;
    let (mut big_e, mut big_t, mut first, mut last, mut prev) = (None, None, None, None, None);
    let mut inst: Option<(InstrumentId, &Instrument)> = None;
    // Levels are put on the grid during the scan; the first decimal error of each side is kept
    // and reported only once the whole message is known to be well-formed (and in the general
    // path's order: header fields, then bids, then asks).
    let mut errs: [Option<DecodeError>; 2] = [None, None];
    let mut seen = [false; 2];
    let start_len = levels.len();
    // Each key at most once: a repeated key (never sent by the venue) could change a value the
    // levels were already stamped with, so it is left to the general path.
    let mut keys_seen = 0u8;
    loop {
        let key = c.string()?;
        c.eat(b':')?;
        let bit = match key {
            b"E" => 1,
            b"T" => 2,
            b"s" => 4,
            b"U" => 8,
            b"u" => 16,
            b"pu" => 32,
            b"b" => 64,
            b"a" => 128,
            _ => return None,
        };
        if keys_seen & bit != 0 {
            return None;
        }
        keys_seen |= bit;
        match key {
            b"E" => big_e = Some(c.uint()?),
            b"T" => big_t = Some(c.uint()?),
            b"s" => {
                let sym = c.string()?;
                let id = instruments
                    .iter()
                    .position(|i| i.symbol.eq_ignore_case(sym))?;
                // Ids fit: a decoder has at most 2^16 instruments.
                inst = Some((first_id.wrapping_add(id as InstrumentId), &instruments[id]));
            }
            b"U" => first = Some(c.uint()?),
            b"u" => last = Some(c.uint()?),
            b"pu" => prev = Some(c.uint()?),
            b"b" | b"a" => {
                let side = if key == b"b" { Side::Bid } else { Side::Ask };
                // Bids before asks, each once, after the symbol and the final id: the venue's
                // order. Anything else is left to the general path.
                let (id, inst) = inst?;
                let update_id = last?;
                if side == Side::Bid && seen[1] {
                    return None;
                }
                seen[side as usize] = true;
                let field = if side == Side::Bid { "b" } else { "a" };
                read_levels(
                    &mut c,
                    inst,
                    id,
                    side,
                    update_id,
                    local_ns,
                    field,
                    levels,
                    &mut errs[side as usize],
                )?;
            }
            _ => return None,
        }
        match c.peek()? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                break;
            }
            _ => return None,
        }
    }
    if enveloped {
        c.eat(b'}')?;
    }
    if c.i != json.len() {
        return None;
    }
    // Well-formed JSON of the shape we know; from here on, errors are the message's own, in the
    // order the general path checks them.
    let (id, _) = inst?;
    let venue_ns = match big_e.or(big_t) {
        Some(ms) => match i64::try_from(ms)
            .ok()
            .and_then(|m| m.checked_mul(1_000_000))
        {
            Some(ns) => ns,
            None => return Some(Fast::Error(DecodeError::BadField("E"))),
        },
        None => 0,
    };
    let Some(first_id) = first else {
        return Some(Fast::Error(DecodeError::MissingField("U")));
    };
    let Some(final_id) = last else {
        return Some(Fast::Error(DecodeError::MissingField("u")));
    };
    if final_id < first_id {
        return Some(Fast::Error(DecodeError::BadField("u")));
    }
    if !seen[0] {
        return Some(Fast::Error(DecodeError::MissingField("b")));
    }
    if !seen[1] {
        return Some(Fast::Error(DecodeError::MissingField("a")));
    }
    if let Some(e) = errs[0].take().or(errs[1].take()) {
        return Some(Fast::Error(e));
    }
    // `u` may have been read before `E`: stamp the venue time now (the levels carry it).
    for ev in &mut levels[start_len..] {
        ev.venue_time_ns = venue_ns;
    }
    if let Some(last) = levels.last_mut() {
        last.mark_last_in_msg();
    }
    Some(Fast::Depth(DepthHeader {
        instrument: id,
        first_id,
        final_id,
        prev_final_id: prev,
        venue_time_ns: venue_ns,
        local_time_ns: local_ns,
    }))
}

/// Reads `[["p","q"],...]` (or `[]`), putting each pair on the grids. `None` if the shape is not
/// ours; a decimal error is kept in `err` (the first one) and scanning goes on.
#[allow(clippy::too_many_arguments)]
#[inline]
fn read_levels(
    c: &mut Cursor<'_>,
    inst: &Instrument,
    id: InstrumentId,
    side: Side,
    update_id: u64,
    local_ns: i64,
    field: &'static str,
    out: &mut Vec<Event>,
    err: &mut Option<DecodeError>,
) -> Option<()> {
    c.eat(b'[')?;
    if c.eat(b']').is_some() {
        return Some(());
    }
    loop {
        c.eat(b'[')?;
        let p = c.string()?;
        c.eat(b',')?;
        let q = c.string()?;
        c.eat(b']')?;
        if err.is_none() {
            match (inst.price_to_ticks(p), inst.book_qty(q)) {
                (Ok(price), Ok(qty)) => out.push(Event::level(
                    id,
                    0,
                    local_ns,
                    LevelUpdate {
                        side,
                        price,
                        qty,
                        update_id,
                        last_in_msg: false,
                        snapshot: false,
                    },
                )),
                (Err(e), _) | (_, Err(e)) => {
                    *err = Some(DecodeError::Decimal { field, err: e });
                }
            }
        }
        match c.peek()? {
            b',' => c.i += 1,
            b']' => {
                c.i += 1;
                return Some(());
            }
            _ => return None,
        }
    }
}
