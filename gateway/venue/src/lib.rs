//! `ringmaker venue`: a Binance USDⓈ-M exchange on localhost, over TLS.
//!
//! Work in progress (issue 13). The pieces, each its own module:
//! - [`api`]: the request / response types and the [`api::Exchange`] trait between the server
//!   (TLS, HTTP, WebSocket, market-data replay) and the exchange core (accounts, signatures,
//!   orders, matching, user data).

#![deny(missing_docs)]

pub mod api;
