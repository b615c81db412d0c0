//! API credentials and request signing.

/// Signs a request payload for one API key.
///
/// The payload is the exact bytes Binance signs: for the WebSocket API the request's
/// parameters sorted by name as `k=v&k=v`, `apiKey` and `timestamp` included; for REST the query
/// string as sent. An implementation never allocates once warmed up (the gateway signs on its
/// hot path) and never exposes its secret.
pub trait Signer {
    /// The API key (not secret: it is sent with every request).
    fn api_key(&self) -> &str;
    /// Appends the signature of `payload` to `out`: lowercase hex for HMAC-SHA256, standard
    /// base64 for Ed25519 (URL-encode it where it goes into a query string).
    fn sign_into(&self, payload: &[u8], out: &mut Vec<u8>);
}
