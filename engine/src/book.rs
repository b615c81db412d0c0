//! Per-instrument L2 order book over a preallocated, price-indexed window.
//!
//! Each side is an array of quantities indexed by `price - base` (ticks), plus a two-level bitmap
//! of non-empty levels. A level update is one store and two bit operations: O(1). The best price
//! is kept incrementally; when the best level is removed the next one is found with
//! `leading_zeros` / `trailing_zeros` over the bitmap (64 levels per word, 4,096 per summary bit).
//! Nothing allocates after [`OrderBook::new`].
//!
//! The window is `slots` ticks wide and is centred on the first price seen after a reset. Levels
//! outside it are counted (`out_of_window`) and ignored: they are far from the touch (with the
//! default 2^20 slots, ±52,428 USD on a 0.10 tick). When the touch drifts within 1/16 of the
//! window's edge the window is recentred in place (a copy, no allocation); levels that fall off
//! the far edge are dropped and counted.

use crate::event::{Event, EventKind, LevelUpdate, Side, TopOfBook};

/// Sentinel for "no bid".
pub const NO_BID: i64 = i64::MIN;
/// Sentinel for "no ask".
pub const NO_ASK: i64 = i64::MAX;

/// Why a book update was refused. The book is unchanged when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// A negative quantity: corrupt input.
    #[error("negative quantity {qty} at price {price}")]
    NegativeQty {
        /// Price, ticks.
        price: i64,
        /// Quantity, lots.
        qty: i64,
    },
    /// A price at or below zero ticks: corrupt input.
    #[error("non-positive price {0}")]
    NonPositivePrice(i64),
    /// Outside the preallocated price window; ignored and counted.
    #[error("price {0} outside the book's window")]
    OutOfWindow(i64),
}

/// One side: quantities plus a two-level occupancy bitmap.
#[derive(Debug)]
struct BookSide {
    qty: Box<[i64]>,
    /// Bit `i % 64` of word `i / 64` is set when `qty[i] > 0`.
    bits: Box<[u64]>,
    /// Bit `w % 64` of word `w / 64` is set when `bits[w] != 0`.
    summary: Box<[u64]>,
    levels: usize,
}

impl BookSide {
    fn new(slots: usize) -> BookSide {
        let words = slots / 64;
        BookSide {
            qty: vec![0; slots].into_boxed_slice(),
            bits: vec![0; words].into_boxed_slice(),
            summary: vec![0; words.div_ceil(64)].into_boxed_slice(),
            levels: 0,
        }
    }

    fn clear(&mut self) {
        // Only touch words that have bits set: a reset costs O(levels), not O(slots).
        for s in 0..self.summary.len() {
            let mut sw = self.summary[s];
            while sw != 0 {
                let w = s * 64 + sw.trailing_zeros() as usize;
                sw &= sw - 1;
                let mut bw = self.bits[w];
                while bw != 0 {
                    self.qty[w * 64 + bw.trailing_zeros() as usize] = 0;
                    bw &= bw - 1;
                }
                self.bits[w] = 0;
            }
            self.summary[s] = 0;
        }
        self.levels = 0;
    }

    /// Branch-free: whether a level appears, changes or goes is data (a recorded message mixes
    /// all three unpredictably), so the bitmaps are rewritten with masks instead of branches.
    #[inline]
    fn set(&mut self, i: usize, q: i64) {
        let was = self.qty[i] > 0;
        let now = q > 0;
        self.qty[i] = q;
        let (w, b) = (i / 64, i % 64);
        let word = (self.bits[w] & !(1u64 << b)) | (u64::from(now) << b);
        self.bits[w] = word;
        let (s, sb) = (w / 64, w % 64);
        self.summary[s] = (self.summary[s] & !(1u64 << sb)) | (u64::from(word != 0) << sb);
        // `was` means the level was counted, so this never goes below zero.
        self.levels = self.levels + usize::from(now) - usize::from(was);
    }

    /// Highest occupied index `<= i`.
    #[inline]
    fn highest_at_or_below(&self, i: usize) -> Option<usize> {
        let w = i / 64;
        let m = self.bits[w] & (u64::MAX >> (63 - i % 64));
        if m != 0 {
            return Some(w * 64 + 63 - m.leading_zeros() as usize);
        }
        let s = w / 64;
        let below = (1u64 << (w % 64)) - 1;
        let mut sw = self.summary[s] & below;
        let mut s_idx = s;
        loop {
            if sw != 0 {
                let w2 = s_idx * 64 + 63 - sw.leading_zeros() as usize;
                return Some(w2 * 64 + 63 - self.bits[w2].leading_zeros() as usize);
            }
            if s_idx == 0 {
                return None;
            }
            s_idx -= 1;
            sw = self.summary[s_idx];
        }
    }

    /// Lowest occupied index `>= i`.
    #[inline]
    fn lowest_at_or_above(&self, i: usize) -> Option<usize> {
        let w = i / 64;
        let m = self.bits[w] & (u64::MAX << (i % 64));
        if m != 0 {
            return Some(w * 64 + m.trailing_zeros() as usize);
        }
        let s = w / 64;
        let above = if w % 64 == 63 {
            0
        } else {
            u64::MAX << (w % 64 + 1)
        };
        let mut sw = self.summary[s] & above;
        let mut s_idx = s;
        loop {
            if sw != 0 {
                let w2 = s_idx * 64 + sw.trailing_zeros() as usize;
                return Some(w2 * 64 + self.bits[w2].trailing_zeros() as usize);
            }
            s_idx += 1;
            if s_idx == self.summary.len() {
                return None;
            }
            sw = self.summary[s_idx];
        }
    }

    /// Moves every level by `-shift` slots (positive: towards lower indices), dropping those that
    /// leave the window. Returns how many were dropped.
    fn shift(&mut self, shift: i64) -> u64 {
        let slots = self.qty.len() as i64;
        let mut dropped = 0;
        if shift > 0 {
            let s = shift.min(slots) as usize;
            for i in 0..s {
                dropped += (self.qty[i] > 0) as u64;
            }
            let n = self.qty.len();
            self.qty.copy_within(s.., 0);
            self.qty[n - s..].fill(0);
        } else if shift < 0 {
            let s = (-shift).min(slots) as usize;
            let n = self.qty.len();
            for i in n - s..n {
                dropped += (self.qty[i] > 0) as u64;
            }
            self.qty.copy_within(..n - s, s);
            self.qty[..s].fill(0);
        }
        self.rebuild_bits();
        dropped
    }

    fn rebuild_bits(&mut self) {
        self.bits.fill(0);
        self.summary.fill(0);
        self.levels = 0;
        for (i, &q) in self.qty.iter().enumerate() {
            if q > 0 {
                self.bits[i / 64] |= 1 << (i % 64);
                self.levels += 1;
            }
        }
        for (w, &b) in self.bits.iter().enumerate() {
            if b != 0 {
                self.summary[w / 64] |= 1 << (w % 64);
            }
        }
    }
}

/// An L2 book for one instrument.
#[derive(Debug)]
pub struct OrderBook {
    base: i64,
    /// No price seen since the last reset: the window is placed on the first level.
    unanchored: bool,
    bids: BookSide,
    asks: BookSide,
    best_bid: i64,
    best_ask: i64,
    valid: bool,
    last_update_id: u64,
    out_of_window: u64,
    recentres: u64,
    dropped_on_recentre: u64,
}

impl OrderBook {
    /// Default window: 2^20 ticks (8 MiB of quantities per side).
    pub const DEFAULT_SLOTS: usize = 1 << 20;
    /// The widest window, ticks (2^26: 512 MiB of quantities a side).
    pub const MAX_SLOTS: usize = 1 << 26;

    /// A book whose window holds `slots` ticks, rounded up to a power of two of at least 4,096.
    pub fn new(slots: usize) -> OrderBook {
        // Clamped before rounding: a window from outside is checked by its caller (config,
        // command line), and an absurd one must not overflow or ask for terabytes here.
        let slots = slots.clamp(4096, Self::MAX_SLOTS).next_power_of_two();
        OrderBook {
            base: 0,
            unanchored: true,
            bids: BookSide::new(slots),
            asks: BookSide::new(slots),
            best_bid: NO_BID,
            best_ask: NO_ASK,
            valid: false,
            last_update_id: 0,
            out_of_window: 0,
            recentres: 0,
            dropped_on_recentre: 0,
        }
    }

    fn slots(&self) -> usize {
        self.bids.qty.len()
    }

    /// Empties both sides and marks the book invalid (a snapshot is expected next).
    pub fn reset(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.best_bid = NO_BID;
        self.best_ask = NO_ASK;
        self.unanchored = true;
        self.valid = false;
    }

    /// Sets the absolute quantity of one level (0 removes it). O(1) unless the best level is
    /// removed, in which case the next best is found through the bitmap.
    #[inline]
    pub fn set_level(&mut self, side: Side, price: i64, qty: i64) -> Result<(), BookError> {
        if qty < 0 {
            return Err(BookError::NegativeQty { price, qty });
        }
        if price <= 0 {
            return Err(BookError::NonPositivePrice(price));
        }
        if self.unanchored {
            self.base = price.saturating_sub((self.slots() / 2) as i64);
            self.unanchored = false;
        }
        let off = price.wrapping_sub(self.base);
        if off < 0 || off >= self.slots() as i64 {
            self.out_of_window += 1;
            return Err(BookError::OutOfWindow(price));
        }
        let i = off as usize;
        match side {
            // A level that stays or appears can only improve the best (a select, no branch);
            // only the best level going (rare) searches the bitmap.
            Side::Bid => {
                self.bids.set(i, qty);
                self.best_bid = self.best_bid.max(if qty > 0 { price } else { NO_BID });
                if qty == 0 && price == self.best_bid {
                    self.best_bid = match self.bids.highest_at_or_below(i) {
                        Some(j) => self.base + j as i64,
                        None => NO_BID,
                    };
                }
            }
            Side::Ask => {
                self.asks.set(i, qty);
                self.best_ask = self.best_ask.min(if qty > 0 { price } else { NO_ASK });
                if qty == 0 && price == self.best_ask {
                    self.best_ask = match self.asks.lowest_at_or_above(i) {
                        Some(j) => self.base + j as i64,
                        None => NO_ASK,
                    };
                }
            }
        }
        Ok(())
    }

    /// Applies a book event: levels, reset, valid and invalid. Other kinds are ignored.
    ///
    /// After the last level of a message the window is recentred if the touch has drifted near
    /// its edge.
    #[inline]
    pub fn apply(&mut self, ev: &Event) -> Result<(), BookError> {
        match ev.kind() {
            EventKind::BookLevel => {
                if let Some(l) = ev.as_level() {
                    return self.apply_level(&l);
                }
                Ok(())
            }
            EventKind::BookReset => {
                self.reset();
                self.last_update_id = ev.status_update_id();
                Ok(())
            }
            EventKind::BookValid => {
                self.valid = true;
                self.last_update_id = ev.status_update_id();
                Ok(())
            }
            EventKind::BookInvalid => {
                self.valid = false;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Applies one decoded level; see [`OrderBook::apply`].
    #[inline]
    pub fn apply_level(&mut self, l: &LevelUpdate) -> Result<(), BookError> {
        let r = self.set_level(l.side, l.price, l.qty);
        if l.last_in_msg {
            self.last_update_id = l.update_id;
            self.maybe_recentre();
        }
        // A level outside the window is counted, not an error for the stream.
        match r {
            Err(BookError::OutOfWindow(_)) => Ok(()),
            r => r,
        }
    }

    fn maybe_recentre(&mut self) {
        let slots = self.slots() as i64;
        let margin = slots / 16;
        let touch = match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => (b / 2).saturating_add(a / 2),
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => return,
        };
        let off = touch - self.base;
        if off >= margin && off < slots - margin {
            return;
        }
        let new_base = touch.saturating_sub(slots / 2).max(0);
        let shift = new_base - self.base;
        if shift == 0 {
            return;
        }
        self.dropped_on_recentre += self.bids.shift(shift) + self.asks.shift(shift);
        self.base = new_base;
        self.recentres += 1;
        self.best_bid = match self.bids.highest_at_or_below(self.slots() - 1) {
            Some(j) => self.base + j as i64,
            None => NO_BID,
        };
        self.best_ask = match self.asks.lowest_at_or_above(0) {
            Some(j) => self.base + j as i64,
            None => NO_ASK,
        };
    }

    /// Best bid price in ticks.
    #[inline]
    pub fn best_bid(&self) -> Option<i64> {
        (self.best_bid != NO_BID).then_some(self.best_bid)
    }

    /// Best ask price in ticks.
    #[inline]
    pub fn best_ask(&self) -> Option<i64> {
        (self.best_ask != NO_ASK).then_some(self.best_ask)
    }

    /// Quantity (lots) resting at `price` on `side`; 0 if none or outside the window.
    #[inline]
    pub fn qty_at(&self, side: Side, price: i64) -> i64 {
        let off = price.wrapping_sub(self.base);
        if self.unanchored || off < 0 || off >= self.slots() as i64 {
            return 0;
        }
        match side {
            Side::Bid => self.bids.qty[off as usize],
            Side::Ask => self.asks.qty[off as usize],
        }
    }

    /// Best bid as `(price, qty)`.
    pub fn best_bid_level(&self) -> Option<(i64, i64)> {
        self.best_bid().map(|p| (p, self.qty_at(Side::Bid, p)))
    }

    /// Best ask as `(price, qty)`.
    pub fn best_ask_level(&self) -> Option<(i64, i64)> {
        self.best_ask().map(|p| (p, self.qty_at(Side::Ask, p)))
    }

    /// Both sides are present and the best bid is at or above the best ask.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        self.best_bid != NO_BID && self.best_ask != NO_ASK && self.best_bid >= self.best_ask
    }

    /// Whether the feed has declared the book synced (and not invalidated it since).
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// The update id the book is at (last complete message applied).
    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// Number of non-empty levels on a side (inside the window).
    pub fn depth(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.levels,
            Side::Ask => self.asks.levels,
        }
    }

    /// Levels ignored because they fell outside the window.
    pub fn out_of_window(&self) -> u64 {
        self.out_of_window
    }

    /// Times the window was recentred, and levels dropped off its far edge doing so.
    pub fn recentres(&self) -> (u64, u64) {
        (self.recentres, self.dropped_on_recentre)
    }

    /// Walks a side from the touch outwards: `(price, qty)` pairs, best first.
    pub fn levels(&self, side: Side) -> Levels<'_> {
        let next = match side {
            Side::Bid => self.best_bid().map(|p| (p - self.base) as usize),
            Side::Ask => self.best_ask().map(|p| (p - self.base) as usize),
        };
        Levels {
            book: self,
            side,
            next,
        }
    }
}

/// Iterator over one side of an [`OrderBook`], best level first. Allocation-free.
#[derive(Debug)]
pub struct Levels<'a> {
    book: &'a OrderBook,
    side: Side,
    next: Option<usize>,
}

impl Iterator for Levels<'_> {
    type Item = (i64, i64);

    #[inline]
    fn next(&mut self) -> Option<(i64, i64)> {
        let i = self.next?;
        let (ladder, following) = match self.side {
            Side::Bid => (
                &self.book.bids,
                i.checked_sub(1)
                    .and_then(|j| self.book.bids.highest_at_or_below(j)),
            ),
            Side::Ask => (
                &self.book.asks,
                if i + 1 < self.book.slots() {
                    self.book.asks.lowest_at_or_above(i + 1)
                } else {
                    None
                },
            ),
        };
        self.next = following;
        Some((self.book.base + i as i64, ladder.qty[i]))
    }
}

/// What [`BboOverlay::offer`] did with a best bid/offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BboOffer {
    /// Newer than the depth book and the one stored: stored, it is the top now.
    Used,
    /// Not newer than the depth book or the one stored, or the book is not valid: ignored.
    Behind,
    /// Crossed, empty or a non-positive price: ignored.
    Refused,
}

/// The venue's best bid/offer stream (`bookTicker`) laid over a depth book: the last best
/// bid/offer newer than the book, by venue update id, is the top of book until a depth diff
/// catches up (on a tie the book wins). The one rule the engine prices by and the simulated venue
/// matches by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BboOverlay {
    bbo: Option<TopOfBook>,
}

impl BboOverlay {
    /// The furthest a best bid/offer's update id may lead the depth book's and still be believed:
    /// 10^8 ids. A bookTicker leads the depth diff carrying the same change by milliseconds; the
    /// busiest Binance symbols advance their ids by under 10^5 a second, so 10^8 is over a quarter
    /// of an hour of the busiest stream. An id further ahead is not from this stream (or garbled):
    /// stored, it would stay "newer than the book" and freeze the pricing top for good.
    pub const MAX_ID_LEAD: u64 = 100_000_000;

    /// Offers a best bid/offer seen after `book`'s last update.
    #[inline]
    pub fn offer(&mut self, t: TopOfBook, book: &OrderBook) -> BboOffer {
        if t.bid_price <= 0 || t.bid_price >= t.ask_price || t.bid_qty <= 0 || t.ask_qty <= 0 {
            return BboOffer::Refused;
        }
        if book.is_valid() && t.update_id > book.last_update_id().saturating_add(Self::MAX_ID_LEAD)
        {
            return BboOffer::Refused;
        }
        if !book.is_valid()
            || t.update_id <= book.last_update_id()
            || self.bbo.is_some_and(|b| t.update_id <= b.update_id)
        {
            return BboOffer::Behind;
        }
        self.bbo = Some(t);
        BboOffer::Used
    }

    /// Forgets the stored best bid/offer (the book was reset or went invalid).
    #[inline]
    pub fn clear(&mut self) {
        self.bbo = None;
    }

    /// The stored best bid/offer while it is newer than `book`: then it is the top of book.
    #[inline]
    pub fn newer_than(&self, book: &OrderBook) -> Option<TopOfBook> {
        self.bbo.filter(|b| b.update_id > book.last_update_id())
    }

    /// The freshest top of book: the stored best bid/offer while it is newer than `book`, else
    /// the book's best levels (with the book's update id); `None` if one-sided or crossed.
    #[inline]
    pub fn top_of_book(&self, book: &OrderBook) -> Option<TopOfBook> {
        if let Some(b) = self.newer_than(book) {
            return Some(b);
        }
        match (book.best_bid_level(), book.best_ask_level()) {
            (Some((bid_price, bid_qty)), Some((ask_price, ask_qty))) if bid_price < ask_price => {
                Some(TopOfBook {
                    bid_price,
                    bid_qty,
                    ask_price,
                    ask_qty,
                    update_id: book.last_update_id(),
                })
            }
            _ => None,
        }
    }

    /// The stored best bid/offer, fresh or not.
    #[inline]
    pub fn stored(&self) -> Option<TopOfBook> {
        self.bbo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn best_prices_follow_inserts_and_removals() {
        let mut b = OrderBook::new(4096);
        b.set_level(Side::Bid, 1000, 5).unwrap();
        b.set_level(Side::Bid, 990, 3).unwrap();
        b.set_level(Side::Ask, 1010, 4).unwrap();
        b.set_level(Side::Ask, 1500, 1).unwrap();
        assert_eq!(b.best_bid_level(), Some((1000, 5)));
        assert_eq!(b.best_ask_level(), Some((1010, 4)));
        b.set_level(Side::Bid, 1000, 0).unwrap();
        assert_eq!(b.best_bid(), Some(990));
        b.set_level(Side::Ask, 1010, 0).unwrap();
        assert_eq!(b.best_ask(), Some(1500));
        // Removing an absent level is normal.
        b.set_level(Side::Ask, 1200, 0).unwrap();
        assert_eq!(b.depth(Side::Ask), 1);
        b.set_level(Side::Bid, 990, 0).unwrap();
        assert_eq!(b.best_bid(), None);
        assert!(!b.is_crossed());
        b.set_level(Side::Bid, 1500, 1).unwrap();
        assert!(b.is_crossed());
    }

    #[test]
    fn bad_levels_leave_the_book_unchanged() {
        let mut b = OrderBook::new(4096);
        b.set_level(Side::Bid, 1000, 5).unwrap();
        assert!(matches!(
            b.set_level(Side::Bid, 1001, -1),
            Err(BookError::NegativeQty { .. })
        ));
        assert!(matches!(
            b.set_level(Side::Bid, 0, 1),
            Err(BookError::NonPositivePrice(0))
        ));
        assert!(matches!(
            b.set_level(Side::Bid, 1_000_000, 1),
            Err(BookError::OutOfWindow(_))
        ));
        assert_eq!(b.out_of_window(), 1);
        assert_eq!(b.best_bid_level(), Some((1000, 5)));
    }

    #[test]
    fn walk_is_best_first_across_words_and_summary_words() {
        let mut b = OrderBook::new(1 << 16);
        let bids = [30_000i64, 29_999, 29_936, 29_000, 25_000, 20_001];
        for &p in &bids {
            b.set_level(Side::Bid, p, p % 7 + 1).unwrap();
        }
        let got: Vec<_> = b.levels(Side::Bid).map(|(p, _)| p).collect();
        assert_eq!(got, bids);
        let asks = [30_001i64, 30_064, 30_128, 34_097, 40_000];
        for &p in &asks {
            b.set_level(Side::Ask, p, 1).unwrap();
        }
        let got: Vec<_> = b.levels(Side::Ask).map(|(p, _)| p).collect();
        assert_eq!(got, asks);
        b.set_level(Side::Ask, 30_001, 0).unwrap();
        b.set_level(Side::Ask, 30_064, 0).unwrap();
        b.set_level(Side::Ask, 30_128, 0).unwrap();
        assert_eq!(b.best_ask(), Some(34_097));
    }

    #[test]
    fn reset_clears_everything() {
        let mut b = OrderBook::new(4096);
        b.set_level(Side::Bid, 100, 1).unwrap();
        b.set_level(Side::Ask, 101, 1).unwrap();
        b.reset();
        assert_eq!(b.depth(Side::Bid) + b.depth(Side::Ask), 0);
        assert_eq!((b.best_bid(), b.best_ask()), (None, None));
        // Re-anchors on the next price.
        b.set_level(Side::Bid, 1_000_000, 1).unwrap();
        assert_eq!(b.best_bid(), Some(1_000_000));
        assert_eq!(b.qty_at(Side::Bid, 100), 0);
    }

    #[test]
    fn drifting_touch_recentres_the_window() {
        let mut b = OrderBook::new(4096);
        let lvl = |side, price, qty| LevelUpdate {
            side,
            price,
            qty,
            update_id: 1,
            last_in_msg: true,
            snapshot: false,
        };
        b.apply_level(&lvl(Side::Bid, 10_000, 1)).unwrap();
        b.apply_level(&lvl(Side::Ask, 10_001, 1)).unwrap();
        // Walk the market up by 3,000 ticks, 100 at a time: more than half the window.
        for step in 1..=30 {
            let p = 10_000 + step * 100;
            b.apply_level(&lvl(Side::Bid, p, 2)).unwrap();
            b.apply_level(&lvl(Side::Ask, p + 1, 2)).unwrap();
            b.apply_level(&lvl(Side::Ask, p - 99, 0)).unwrap();
        }
        assert!(b.recentres().0 > 0);
        assert_eq!(b.best_bid_level(), Some((13_000, 2)));
        assert_eq!(b.best_ask_level(), Some((13_001, 2)));
        assert_eq!(b.out_of_window(), 0);
    }

    #[test]
    fn agrees_with_a_btreemap_reference() {
        // Deterministic pseudo-random walk; the property test in tests/ covers the general case.
        let mut b = OrderBook::new(1 << 14);
        let mut bids = BTreeMap::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let price = 50_000 + (x % 2_000) as i64;
            let qty = ((x >> 20) % 4) as i64;
            b.set_level(Side::Bid, price, qty).unwrap();
            if qty == 0 {
                bids.remove(&price);
            } else {
                bids.insert(price, qty);
            }
            assert_eq!(b.best_bid(), bids.keys().next_back().copied());
        }
        let ours: Vec<_> = b.levels(Side::Bid).collect();
        let reference: Vec<_> = bids.iter().rev().map(|(&p, &q)| (p, q)).collect();
        assert_eq!(ours, reference);
    }
}
