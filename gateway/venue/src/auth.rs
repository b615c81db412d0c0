//! Accounts and request signatures, checked the way Binance checks them.
//!
//! - Accounts come from a TOML file (`--accounts FILE`) of `[[account]]` tables: `api_key`,
//!   `hmac_secret` and/or `ed25519_public_key` (a PEM file, relative to the accounts file),
//!   `[account.balances]` (`USDT = "10000"`), `leverage` (default 20).
//! - REST: the signed payload is the query string followed by the body, exactly as sent, with
//!   the `signature` parameter (the last one) taken out.
//! - WebSocket API: the payload is every `params` entry but `signature`, sorted by key, as
//!   `key=value&...`.
//! - HMAC-SHA256 signatures are hex, Ed25519 signatures base64 (standard alphabet; a
//!   URL-encoded one is decoded first).
//!
//! Secrets never appear in errors or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use serde::Deserialize;

/// Default leverage of an account.
pub const DEFAULT_LEVERAGE: u32 = 20;
/// Default `recvWindow`, ms.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
/// Largest `recvWindow` accepted, ms.
pub const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// How far a `timestamp` may be ahead of the venue clock, ms.
pub const MAX_FUTURE_MS: i64 = 1000;

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One account of the venue.
#[derive(Clone)]
pub struct Account {
    /// The API key (`X-MBX-APIKEY` / `params.apiKey`).
    pub api_key: String,
    /// HMAC-SHA256 secret, if the key signs with HMAC.
    pub hmac_secret: Option<Secret>,
    /// Ed25519 public key, if the key signs with Ed25519.
    pub ed25519: Option<VerifyingKey>,
    /// Starting balances, asset → amount (decimal string as configured).
    pub balances: BTreeMap<String, String>,
    /// Leverage.
    pub leverage: u32,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key is not a secret by Binance's rules, but it grants access together with a
        // signature; print only a prefix.
        let shown: String = self.api_key.chars().take(6).collect();
        f.debug_struct("Account")
            .field("api_key", &format_args!("{shown}…"))
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("ed25519", &self.ed25519.is_some())
            .field("balances", &self.balances)
            .field("leverage", &self.leverage)
            .finish()
    }
}

/// Why the accounts file could not be loaded. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML is malformed (the message names the place, not the values).
    #[error("accounts file {path}: {msg}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// An account is invalid.
    #[error("account {index}: {msg}")]
    Invalid {
        /// Position in the file, from 0.
        index: usize,
        /// What is wrong.
        msg: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    account: Vec<AccountToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountToml {
    api_key: String,
    hmac_secret: Option<String>,
    ed25519_public_key: Option<String>,
    #[serde(default)]
    balances: BTreeMap<String, String>,
    leverage: Option<u32>,
}

/// The venue's accounts, by API key.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// In file order.
    pub list: Vec<Account>,
}

impl Accounts {
    /// Loads an accounts file; PEM paths are relative to its directory.
    pub fn load(path: &Path) -> Result<Accounts, AccountsError> {
        let text = std::fs::read_to_string(path).map_err(|source| AccountsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Accounts::from_toml(&text, path.parent().unwrap_or(Path::new("."))).map_err(|e| match e {
            AccountsError::Parse { msg, .. } => AccountsError::Parse {
                path: path.display().to_string(),
                msg,
            },
            e => e,
        })
    }

    /// Parses accounts TOML; PEM paths are relative to `dir`.
    pub fn from_toml(text: &str, dir: &Path) -> Result<Accounts, AccountsError> {
        let f: File = toml::from_str(text).map_err(|e| AccountsError::Parse {
            path: String::new(),
            // The span, not the message: a toml message quotes the offending line, which may
            // hold a secret.
            msg: match e.span() {
                Some(s) => format!("invalid TOML at bytes {}..{}", s.start, s.end),
                None => "invalid TOML".to_string(),
            },
        })?;
        let mut list = Vec::with_capacity(f.account.len());
        for (index, a) in f.account.into_iter().enumerate() {
            let bad = |msg: String| AccountsError::Invalid { index, msg };
            if a.api_key.is_empty() {
                return Err(bad("empty api_key".into()));
            }
            if a.hmac_secret.is_none() && a.ed25519_public_key.is_none() {
                return Err(bad("needs hmac_secret or ed25519_public_key".into()));
            }
            if list.iter().any(|o: &Account| o.api_key == a.api_key) {
                return Err(bad("duplicate api_key".into()));
            }
            let ed25519 = match &a.ed25519_public_key {
                Some(p) => {
                    let full = dir.join(p);
                    let pem = std::fs::read_to_string(&full)
                        .map_err(|e| bad(format!("cannot read {}: {e}", full.display())))?;
                    Some(parse_ed25519_pem(&pem).ok_or_else(|| {
                        bad(format!("{}: not an Ed25519 PEM key", full.display()))
                    })?)
                }
                None => None,
            };
            for (asset, v) in &a.balances {
                if crate::exchange::parse_money(v).is_none() {
                    return Err(bad(format!("balance of {asset} is not a decimal")));
                }
            }
            list.push(Account {
                api_key: a.api_key,
                hmac_secret: a.hmac_secret.map(Secret),
                ed25519,
                balances: a.balances,
                leverage: a.leverage.unwrap_or(DEFAULT_LEVERAGE).clamp(1, 125),
            });
        }
        Ok(Accounts { list })
    }

    /// The index of the account with `api_key`.
    pub fn find(&self, api_key: &str) -> Option<usize> {
        self.list.iter().position(|a| a.api_key == api_key)
    }
}

/// An Ed25519 public key from a PEM: a `PUBLIC KEY` (SPKI), or a `PRIVATE KEY` (PKCS#8) whose
/// public half is taken.
pub fn parse_ed25519_pem(pem: &str) -> Option<VerifyingKey> {
    if let Ok(k) = VerifyingKey::from_public_key_pem(pem) {
        return Some(k);
    }
    SigningKey::from_pkcs8_pem(pem)
        .ok()
        .map(|k| k.verifying_key())
}

/// HMAC-SHA256 of `payload` under `secret`, lower-case hex.
pub fn hmac_hex(secret: &[u8], payload: &[u8]) -> String {
    let mut out = Vec::with_capacity(gateway::binance::sign::HMAC_HEX_LEN);
    gateway::binance::sign::hmac_sha256_hex(secret, payload, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| unreachable!("hex is ASCII"))
}

/// Percent-decodes `s` (`+` is a space), as form and query values are; `None` if malformed.
pub fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `signature` (as sent: hex for HMAC, base64 for Ed25519) signs `payload` for `acct`.
pub fn verify(acct: &Account, payload: &str, signature: &str) -> bool {
    if let Some(secret) = &acct.hmac_secret {
        let want = hmac_hex(secret.bytes(), payload.as_bytes());
        if constant_eq(want.as_bytes(), signature.to_ascii_lowercase().as_bytes()) {
            return true;
        }
    }
    if let Some(key) = &acct.ed25519 {
        // Sent URL-encoded (`%2B`, `%2F`, `%3D`) or raw; a raw `+` is base64's, not a space.
        let sig = if signature.contains('%') {
            url_decode(signature).unwrap_or_else(|| signature.to_string())
        } else {
            signature.to_string()
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&raw) else {
            return false;
        };
        return key.verify(payload.as_bytes(), &sig).is_ok();
    }
    false
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The REST signing payload and the signature: `query` then `body` (joined as sent: Binance
/// concatenates them with nothing between), with the `signature=...` parameter removed.
/// `None` if no `signature` parameter is present.
pub fn rest_payload(query: &str, body: &str) -> Option<(String, String)> {
    let mut sig = None;
    let strip = |s: &str, sig: &mut Option<String>| -> String {
        let kept: Vec<&str> = s
            .split('&')
            .filter(|kv| {
                if let Some(v) = kv.strip_prefix("signature=") {
                    *sig = Some(v.to_string());
                    false
                } else {
                    !kv.is_empty()
                }
            })
            .collect();
        kept.join("&")
    };
    let q = strip(query, &mut sig);
    let b = strip(body, &mut sig);
    Some((format!("{q}{b}"), sig?))
}

/// The WebSocket API signing payload: every param but `signature`, sorted by key, `k=v&...`
/// (strings as they are, numbers and booleans as JSON prints them).
pub fn ws_payload(params: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut kv: Vec<(&String, String)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "signature")
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    kv.sort_by(|a, b| a.0.cmp(b.0));
    kv.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks `timestamp` and `recvWindow` against the venue clock: `Err(-1021)` (or `-1130` for a
/// bad `recvWindow`) with Binance's message.
pub fn check_time(
    timestamp: Option<&str>,
    recv_window: Option<&str>,
    now_ms: i64,
) -> Result<(), (i32, &'static str)> {
    let Some(ts) = timestamp.and_then(|t| t.parse::<i64>().ok()) else {
        return Err((
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ));
    };
    let window = match recv_window {
        None => DEFAULT_RECV_WINDOW_MS,
        Some(w) => match w.parse::<i64>() {
            Ok(w) if (1..=MAX_RECV_WINDOW_MS).contains(&w) => w,
            _ => return Err((-1130, "Invalid data sent for a parameter.")),
        },
    };
    if ts > now_ms + MAX_FUTURE_MS {
        return Err((
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if now_ms - ts > window {
        return Err((
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/signatures/vectors.json"
        );
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn hmac_account(secret: &str) -> Account {
        Account {
            api_key: "k".into(),
            hmac_secret: Some(Secret::new(secret)),
            ed25519: None,
            balances: BTreeMap::new(),
            leverage: 20,
        }
    }

    #[test]
    fn hmac_vectors() {
        let v = vectors();
        for t in v["hmac_sha256"].as_array().unwrap() {
            let secret = t["secretKey"].as_str().unwrap();
            let payload = t["payload"].as_str().unwrap();
            let sig = t["signature_hex"].as_str().unwrap();
            assert_eq!(hmac_hex(secret.as_bytes(), payload.as_bytes()), sig);
            let a = hmac_account(secret);
            assert!(verify(&a, payload, sig));
            assert!(!verify(&a, &format!("{payload}1"), sig));
        }
    }

    #[test]
    fn rest_payload_query_body_and_mixed() {
        // Binance's USD-M examples 1 and 2: all in the query, or all in the body, one signature.
        let v = vectors();
        let t = &v["hmac_sha256"][1];
        let payload = t["payload"].as_str().unwrap();
        let sig = t["signature_hex"].as_str().unwrap();
        let a = hmac_account(t["secretKey"].as_str().unwrap());
        let signed = format!("{payload}&signature={sig}");
        for (q, b) in [(signed.as_str(), ""), ("", signed.as_str())] {
            let (p, s) = rest_payload(q, b).unwrap();
            assert_eq!(p, payload);
            assert!(verify(&a, &p, &s));
        }
        // Example 3: part in the query, part in the body: the payload is the two concatenated
        // with nothing between.
        let (p, s) = rest_payload("symbol=BTCUSDT&side=BUY", "type=LIMIT&signature=ab").unwrap();
        assert_eq!(p, "symbol=BTCUSDT&side=BUYtype=LIMIT");
        assert_eq!(s, "ab");
        assert!(rest_payload("symbol=BTCUSDT", "").is_none());
    }

    #[test]
    fn ed25519_vector() {
        let v = vectors();
        let t = &v["ed25519"][0];
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/venue-accounts/python-binance_ed25519_test_key.pub.pem"
        ))
        .unwrap();
        let key = parse_ed25519_pem(&pem).unwrap();
        assert_eq!(
            hex::encode(key.as_bytes()),
            t["public_key_hex"].as_str().unwrap()
        );
        let a = Account {
            ed25519: Some(key),
            hmac_secret: None,
            ..hmac_account("")
        };
        let payload = t["payload"].as_str().unwrap();
        let sig = t["signature_base64"].as_str().unwrap();
        assert!(verify(&a, payload, sig));
        // URL-encoded as sent in a query string.
        assert!(verify(
            &a,
            payload,
            &sig.replace('+', "%2B").replace('=', "%3D")
        ));
        assert!(!verify(&a, &payload.replace("50000", "50001"), sig));
    }

    #[test]
    fn ws_payload_sorted_without_signature() {
        let p: serde_json::Value = serde_json::json!({
            "type": "LIMIT", "symbol": "BTCUSDT", "signature": "x", "apiKey": "k",
            "timestamp": 1631234567890i64, "price": "50000"
        });
        assert_eq!(
            ws_payload(p.as_object().unwrap()),
            "apiKey=k&price=50000&symbol=BTCUSDT&timestamp=1631234567890&type=LIMIT"
        );
    }

    #[test]
    fn timestamps() {
        assert!(check_time(Some("1000"), None, 1000).is_ok());
        assert!(check_time(Some("1000"), None, 6000).is_ok());
        assert_eq!(check_time(Some("1000"), None, 6001).unwrap_err().0, -1021);
        assert_eq!(check_time(Some("2001"), None, 1000).unwrap_err().0, -1021);
        assert!(check_time(Some("2000"), None, 1000).is_ok());
        assert!(check_time(Some("1000"), Some("60000"), 61000).is_ok());
        assert_eq!(
            check_time(Some("1000"), Some("60001"), 1000).unwrap_err().0,
            -1130
        );
        assert_eq!(check_time(None, None, 1000).unwrap_err().0, -1102);
    }

    #[test]
    fn secrets_never_printed() {
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let text = format!(
            "[[account]]\napi_key = \"abcdefghijkl\"\nhmac_secret = \"{secret}\"\nleverage = 10\n[account.balances]\nUSDT = \"100\"\n"
        );
        let accts = Accounts::from_toml(&text, Path::new(".")).unwrap();
        let dbg = format!("{accts:?} {:?}", accts.list[0]);
        assert!(!dbg.contains(secret), "{dbg}");
        assert!(!dbg.contains("abcdefghijkl"), "{dbg}");
        // A malformed file's error does not quote the secret either.
        let broken = format!("[[account]]\napi_key = \"a\"\nhmac_secret = \"{secret}\" junk\n");
        let err = Accounts::from_toml(&broken, Path::new(".")).unwrap_err();
        assert!(!err.to_string().contains(secret));
        assert!(!format!("{err:?}").contains(secret));
        let unknown = format!("[[account]]\napi_key = \"a\"\nhmac = \"{secret}\"\n");
        let err = Accounts::from_toml(&unknown, Path::new(".")).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret));
    }

    #[test]
    fn example_accounts_file_loads() {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/venue-accounts.toml"
        ));
        let a = Accounts::load(p).unwrap();
        assert!(a.list.len() >= 2);
        assert!(a.list.iter().any(|x| x.ed25519.is_some()));
        assert!(a.list.iter().any(|x| x.hmac_secret.is_some()));
    }
}
