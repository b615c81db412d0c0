//! Binance's wire format: message decoders (simd-json, with a single-pass fast path for depth
//! diffs) and the book-sync rules of its markets. A second venue would stand beside this module
//! with its own decoder and rules, behind the same [`crate::FeedHandler`].

pub mod decode;
mod depth_fast;
pub mod sync;
