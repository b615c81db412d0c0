//! `ringmaker venue`: a Binance USDⓈ-M exchange on localhost, over TLS.
//!
//! Work in progress (issue 13). The pieces, each its own module:
//! - [`api`]: the request / response types and the [`api::Exchange`] trait between the server
//!   (TLS, HTTP, WebSocket, market-data replay) and the exchange core (accounts, signatures,
//!   orders, matching, user data).
//! - [`auth`]: accounts (`--accounts FILE`) and signature checks (HMAC-SHA256, Ed25519;
//!   `recvWindow`), as Binance does them.
//! - [`limits`]: request weight per IP, orders per account, 429 / 418.
//! - [`exchange`]: [`exchange::SimExchange`], the exchange core implementing
//!   [`api::Exchange`] on the simulated venue's matching.

#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod exchange;
pub mod limits;
