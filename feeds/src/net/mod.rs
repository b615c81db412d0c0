//! The network feed: busy-polled TLS WebSocket connections to the venue's market streams
//! (`mio`, `rustls`, a WebSocket client), kernel receive timestamps (`SO_TIMESTAMPING`), REST
//! snapshots off the hot path, reconnects, the host clock's state, and recording what arrived.
//!
//! Work in progress (issue 14): the parts land one by one; see each module.
//!
//! - [`frame`]: the WebSocket frame codec (client side), allocation-free after construction.
//! - [`routes`]: which path serves which stream; the venue's endpoints.
//! - [`tls`]: TLS client settings.
//! - [`snapshot`]: REST depth snapshots on their own thread.
//! - [`stamp`]: kernel receive stamps on every socket read (Linux).
//! - [`clockcheck`]: the host clock's state (`adjtimex`, PTP clocks) and the offset of our
//!   receive stamps from the venue's event times, judged against limits (Linux).
//! - [`conn`]: one WebSocket connection, driven without blocking.
//! - [`source`]: [`NetSource`], the live streams as a market source.

#[cfg(target_os = "linux")]
pub mod clockcheck;
#[cfg(target_os = "linux")]
pub mod conn;
pub mod frame;
pub mod routes;
pub mod snapshot;
#[cfg(target_os = "linux")]
pub mod source;
#[cfg(target_os = "linux")]
pub mod stamp;
pub mod tls;
#[cfg(target_os = "linux")]
mod tls13;

#[cfg(target_os = "linux")]
pub use source::{NetCounters, NetError, NetInstrument, NetOptions, NetSource, NetStats};
