//! Where Binance serves each market stream and snapshot: the one routing table of the project.
//!
//! USDⓈ-M (`fstream.binance.com`, 2026) routes streams by path: `/public` carries high-frequency
//! book data (`@depth...`, `@bookTicker`), `/market` regular market data (`@trade`, `@aggTrade`,
//! `@markPrice...`). A stream on the wrong route fails **silently** at Binance (the subscription
//! is accepted and nothing ever arrives), so every URL the feed opens comes from
//! [`stream_route`], and `ringmaker venue` routes with the same table. COIN-M and spot are not
//! routed: every stream goes on the un-routed `/stream` path.
//!
//! [`Endpoints`] are a venue's REST and WebSocket bases: Binance production by default, or one
//! REST URL (what `ringmaker venue` prints as `rest=`) from which the stream URLs follow by
//! Binance's paths.

use engine::VenueFlavour;
use std::fmt;

/// Which routed path a USDⓈ-M stream is served on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamRoute {
    /// `/public`: book data (`@depth`, `@depth@0ms|100ms|250ms|500ms`, `@bookTicker`).
    Public,
    /// `/market`: regular market data (`@trade`, `@aggTrade`, `@markPrice`, `@markPrice@1s`).
    Market,
}

impl StreamRoute {
    /// The path prefix (`/public`, `/market`).
    pub fn path(self) -> &'static str {
        match self {
            StreamRoute::Public => "/public",
            StreamRoute::Market => "/market",
        }
    }
}

/// The stream kinds (the part after `<symbol>@`) and their routes: the table.
pub const STREAM_ROUTES: [(&str, StreamRoute); 10] = [
    ("depth", StreamRoute::Public),
    ("depth@0ms", StreamRoute::Public),
    ("depth@100ms", StreamRoute::Public),
    ("depth@250ms", StreamRoute::Public),
    ("depth@500ms", StreamRoute::Public),
    ("bookTicker", StreamRoute::Public),
    ("trade", StreamRoute::Market),
    ("aggTrade", StreamRoute::Market),
    ("markPrice", StreamRoute::Market),
    ("markPrice@1s", StreamRoute::Market),
];

/// The route of a stream name (`btcusdt@depth@100ms`); `None` for a name that is not
/// `<symbol>@<kind>` with a symbol of letters, digits and `_` and a kind of [`STREAM_ROUTES`].
pub fn stream_route(name: &str) -> Option<StreamRoute> {
    let (symbol, kind) = name.split_once('@')?;
    if symbol.is_empty()
        || !symbol
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return None;
    }
    STREAM_ROUTES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, r)| *r)
}

/// A URL this module cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `https://host[:port]` (nothing after the authority but an optional `/`).
    #[error("{0:?} is not an https://host[:port] URL")]
    NotHttps(String),
    /// A stream name no route knows.
    #[error("{0:?} is not a stream this feed knows (<symbol>@depth..., @bookTicker, @trade, @aggTrade, @markPrice...)")]
    UnknownStream(String),
}

/// A venue's REST and WebSocket bases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://host[:port]`, no trailing slash.
    pub rest: String,
    /// `wss://host[:port]`, no trailing slash.
    pub ws: String,
    /// The venue: its paths (`/fapi/v1` or `/dapi/v1` or `/api/v3`) and whether streams are
    /// routed.
    pub venue: VenueFlavour,
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (rest {}, streams {})",
            self.venue.name(),
            self.rest,
            self.ws
        )
    }
}

impl Endpoints {
    /// Binance production for `venue`.
    pub fn binance(venue: VenueFlavour) -> Endpoints {
        let (rest, ws) = match venue {
            VenueFlavour::BinanceUsdm => ("https://fapi.binance.com", "wss://fstream.binance.com"),
            VenueFlavour::BinanceCoinm => ("https://dapi.binance.com", "wss://dstream.binance.com"),
            VenueFlavour::BinanceSpot => {
                ("https://api.binance.com", "wss://stream.binance.com:9443")
            }
        };
        Endpoints {
            rest: rest.into(),
            ws: ws.into(),
            venue,
        }
    }

    /// From one REST base (`https://127.0.0.1:PORT`, as `ringmaker venue` prints it): streams
    /// on the same host and port over `wss://`, by Binance's paths.
    pub fn from_rest_url(url: &str, venue: VenueFlavour) -> Result<Endpoints, UrlError> {
        let authority = url
            .strip_prefix("https://")
            .map(|r| r.strip_suffix('/').unwrap_or(r))
            .filter(|a| {
                !a.is_empty()
                    && !a.contains(['/', '?', '#', '@', ' '])
                    && a.bytes().all(|c| c.is_ascii_graphic())
            })
            .ok_or_else(|| UrlError::NotHttps(url.to_string()))?;
        Ok(Endpoints {
            rest: format!("https://{authority}"),
            ws: format!("wss://{authority}"),
            venue,
        })
    }

    /// `host` and `port` of the REST base (for the TLS server name and the TCP connect).
    pub fn rest_host_port(&self) -> (&str, u16) {
        host_port(&self.rest["https://".len()..], 443)
    }

    /// `host` and `port` of the stream base.
    pub fn ws_host_port(&self) -> (&str, u16) {
        host_port(&self.ws["wss://".len()..], 443)
    }

    /// The REST depth snapshot of `symbol` (upper case as the venue wants it).
    pub fn depth_url(&self, symbol: &str, limit: u32) -> String {
        let path = match self.venue {
            VenueFlavour::BinanceUsdm => "/fapi/v1/depth",
            VenueFlavour::BinanceCoinm => "/dapi/v1/depth",
            VenueFlavour::BinanceSpot => "/api/v3/depth",
        };
        format!(
            "{}{path}?symbol={}&limit={limit}",
            self.rest,
            symbol.to_ascii_uppercase()
        )
    }

    /// The combined-stream URLs (path and query, on [`Endpoints::ws`]) that carry `streams`:
    /// on USDⓈ-M one per route used (`/public/stream?streams=a/b`, `/market/stream?streams=c`),
    /// elsewhere one un-routed `/stream?streams=...`. Stream order is kept within a URL.
    pub fn stream_paths(&self, streams: &[String]) -> Result<Vec<String>, UrlError> {
        let mut routed: Vec<(Option<StreamRoute>, Vec<&str>)> = Vec::new();
        for s in streams {
            let route = stream_route(s).ok_or_else(|| UrlError::UnknownStream(s.clone()))?;
            let key = (self.venue == VenueFlavour::BinanceUsdm).then_some(route);
            match routed.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(s),
                None => routed.push((key, vec![s])),
            }
        }
        routed.sort_by_key(|(k, _)| *k);
        Ok(routed
            .into_iter()
            .map(|(k, v)| {
                let prefix = k.map_or("", StreamRoute::path);
                format!("{prefix}/stream?streams={}", v.join("/"))
            })
            .collect())
    }
}

fn host_port(authority: &str, default: u16) -> (&str, u16) {
    // `[::1]:443`, `host:443`, `host`.
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            let port = p.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port.unwrap_or(default));
        }
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(port) => (h, port),
            Err(_) => (authority, default),
        },
        None => (authority, default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_data_is_public_and_the_rest_is_market() {
        for (name, want) in [
            ("btcusdt@depth", Some(StreamRoute::Public)),
            ("btcusdt@depth@0ms", Some(StreamRoute::Public)),
            ("btcusdt@depth@100ms", Some(StreamRoute::Public)),
            ("btcusdt@bookTicker", Some(StreamRoute::Public)),
            ("btcusdt@trade", Some(StreamRoute::Market)),
            ("btcusdt@aggTrade", Some(StreamRoute::Market)),
            ("btcusdt@markPrice", Some(StreamRoute::Market)),
            ("btcusdt@markPrice@1s", Some(StreamRoute::Market)),
            ("btcusd_perp@depth@100ms", Some(StreamRoute::Public)),
            ("btcusdt@kline_1m", None),
            ("btcusdt@depth@1ms", None),
            ("@depth", None),
            ("btc usdt@depth", None),
            ("btcusdt", None),
            ("", None),
        ] {
            assert_eq!(stream_route(name), want, "{name}");
        }
    }

    #[test]
    fn usdm_streams_go_on_their_routes_and_others_unrouted() {
        let e = Endpoints::binance(VenueFlavour::BinanceUsdm);
        let s: Vec<String> = ["btcusdt@trade", "btcusdt@depth@100ms", "btcusdt@bookTicker"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            e.stream_paths(&s).unwrap(),
            [
                "/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker",
                "/market/stream?streams=btcusdt@trade"
            ]
        );
        let spot = Endpoints::binance(VenueFlavour::BinanceSpot);
        assert_eq!(
            spot.stream_paths(&s).unwrap(),
            ["/stream?streams=btcusdt@trade/btcusdt@depth@100ms/btcusdt@bookTicker"]
        );
        assert_eq!(
            e.stream_paths(&["btcusdt@kline_1m".to_string()]),
            Err(UrlError::UnknownStream("btcusdt@kline_1m".into()))
        );
        assert!(e.stream_paths(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_local_venue_url_gives_its_stream_url_and_paths() {
        let e = Endpoints::from_rest_url("https://127.0.0.1:41234/", VenueFlavour::BinanceUsdm)
            .unwrap();
        assert_eq!(e.ws, "wss://127.0.0.1:41234");
        assert_eq!(e.rest_host_port(), ("127.0.0.1", 41234));
        assert_eq!(e.ws_host_port(), ("127.0.0.1", 41234));
        assert_eq!(
            e.depth_url("btcusdt", 1000),
            "https://127.0.0.1:41234/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
        );
        let b = Endpoints::binance(VenueFlavour::BinanceUsdm);
        assert_eq!(b.ws_host_port(), ("fstream.binance.com", 443));
        let spot = Endpoints::binance(VenueFlavour::BinanceSpot);
        assert_eq!(spot.ws_host_port(), ("stream.binance.com", 9443));
        assert!(spot
            .depth_url("BTCUSDT", 5000)
            .ends_with("/api/v3/depth?symbol=BTCUSDT&limit=5000"));
        let v6 = Endpoints::from_rest_url("https://[::1]:8443", VenueFlavour::BinanceUsdm).unwrap();
        assert_eq!(v6.rest_host_port(), ("::1", 8443));
        for bad in [
            "http://127.0.0.1:1",
            "https://",
            "https://h/x",
            "https://h?x",
            "wss://h",
            "https://u@h",
            "127.0.0.1:1",
        ] {
            assert!(
                Endpoints::from_rest_url(bad, VenueFlavour::BinanceUsdm).is_err(),
                "{bad}"
            );
        }
    }
}
