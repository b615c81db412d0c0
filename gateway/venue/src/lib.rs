//! `ringmaker venue`: a Binance USDⓈ-M exchange on localhost, over TLS.
//!
//! Work in progress (issue 13). The pieces, each its own module:
//! - [`api`]: the request / response types and the [`api::Exchange`] trait between the server
//!   (TLS, HTTP, WebSocket, market-data replay) and the exchange core (accounts, signatures,
//!   orders, matching, user data).
//! - [`tls`]: the self-signed certificate for `localhost` / `127.0.0.1` and the rustls config.
//! - [`http`]: bounded HTTP/1.1 request reading and responses.
//! - [`market`]: the market-data replay (venue clock, book, streams) and the public REST
//!   answers.
//! - [`server`]: the one TLS port, routed by path as Binance USDⓈ-M routes today: REST,
//!   market streams, the WebSocket API and user data; [`server::Venue::start`] runs it
//!   in-process.
//! - [`auth`]: accounts (`--accounts FILE`) and signature checks (HMAC-SHA256, Ed25519;
//!   `recvWindow`), as Binance does them.
//! - [`limits`]: request weight per IP, orders per account, 429 / 418.
//! - [`exchange`]: [`exchange::SimExchange`], the exchange core implementing
//!   [`api::Exchange`] on the simulated venue's matching.
//! - [`faults`]: faults on demand (`--faults SPEC`, `/venue/faults`).

#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod exchange;
pub mod faults;
pub mod http;
pub mod limits;
pub mod market;
pub mod server;
pub mod tls;

pub use server::{NoExchange, ServerConfig, Venue, VenueHandle};
