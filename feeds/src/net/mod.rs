//! The network feed: busy-polled TLS WebSocket connections to the venue's market streams
//! (`mio`, `rustls`, a WebSocket client), kernel receive timestamps (`SO_TIMESTAMPING`), REST
//! snapshots off the hot path, reconnects, the host clock's state, and recording what arrived.
//!
//! Work in progress (issue 14): the parts land one by one; see each module.

#[cfg(target_os = "linux")]
pub mod stamp;
