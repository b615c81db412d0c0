//! Live order entry at Binance USDⓈ-M: signed WebSocket API requests, the user data stream, the
//! REST calls around them (listenKey, dead-man switch, reconciliation queries).
//!
//! - [`sign`]: API credentials from the environment and request signing (HMAC-SHA256 or
//!   Ed25519); a secret never leaves this module.

pub mod sign;
