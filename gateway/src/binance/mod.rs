//! Live order entry at Binance USDⓈ-M: signed WebSocket API requests, the user data stream, the
//! REST calls around them (listenKey, dead-man switch, reconciliation queries).
//!
//! - [`sign`]: API credentials from the environment and request signing (HMAC-SHA256 or
//!   Ed25519); a secret never leaves this module.
//! - [`rest`]: a blocking signed REST client for the housekeeping thread (listen key,
//!   `countdownCancelAll`, open orders, position, cancel-all), which stops sending after a 429
//!   until its `Retry-After` has passed.
//! - [`cid`]: the engine's client order ids as `newClientOrderId` strings, tagged per session,
//!   and back.
//! - [`wire`]: the WebSocket API requests (written and signed), their responses and the user
//!   data stream events (decoded in place, no allocation once warm), and the engine's execution
//!   reports from them.
//! - [`worker`]: the REST side on its own thread (listenKey, dead-man switch, reconciliation
//!   snapshots, the cancel-all backstop).
//! - [`session`]: the order-entry session, a [`crate::Venue`] over all of it.

pub mod cid;
pub mod rest;
pub mod session;
pub mod sign;
pub mod wire;
pub mod worker;
