//! API credentials and request signing.
//!
//! [`Credentials`] hold an API key and its signing key: an HMAC-SHA256 secret, or an Ed25519
//! private key read from a PKCS#8 PEM file. They come from the environment
//! ([`Credentials::from_env`]; never from the config file), or from explicit values. Neither the
//! secret nor the PEM text ever appears in `Debug` output or in an error message; the API key is
//! shown by its first characters only.

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::Signer as _;
use hmac::Mac as _;
use std::ffi::OsString;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

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

/// The environment variable holding the API key.
pub const API_KEY_VAR: &str = "RINGMAKER_API_KEY";
/// The environment variable holding an HMAC-SHA256 secret.
pub const API_SECRET_VAR: &str = "RINGMAKER_API_SECRET";
/// The environment variable holding the path of a PKCS#8 PEM Ed25519 private key.
pub const ED25519_KEY_FILE_VAR: &str = "RINGMAKER_ED25519_KEY_FILE";

/// The largest Ed25519 key file read (a PKCS#8 PEM Ed25519 key is about 120 bytes).
pub const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// Length of an HMAC-SHA256 signature in hex.
pub const HMAC_HEX_LEN: usize = 64;
/// Length of an Ed25519 signature in standard base64 (64 bytes, padded).
pub const ED25519_BASE64_LEN: usize = 88;

/// A secret value: used, never printed. Its bytes are overwritten with zeros when it is
/// dropped (best effort: copies the allocator or the environment made are out of reach).
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into().into_bytes())
    }

    /// Wraps secret bytes.
    pub fn from_bytes(b: Vec<u8>) -> Secret {
        Secret(b)
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HMAC-SHA256, lowercase hex signatures.
    HmacSha256,
    /// Ed25519, standard base64 signatures.
    Ed25519,
}

enum Key {
    /// The HMAC keyed with the secret (its inner and outer pads already hashed): cloned for
    /// each signature, so the raw secret is not kept.
    Hmac(hmac::Hmac<sha2::Sha256>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// An API key and its signing key. `Debug` shows the key's first characters and its length,
/// never the secret.
pub struct Credentials {
    api_key: String,
    key: Key,
}

/// Why credentials could not be made. No variant carries a secret, the PEM text or the full
/// API key.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No API key given.
    #[error("{API_KEY_VAR} is not set")]
    MissingApiKey,
    /// A value is set but empty.
    #[error("{what} is set but empty")]
    Empty {
        /// The variable (or the value's name).
        what: &'static str,
    },
    /// An environment variable is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        what: &'static str,
    },
    /// The API key holds characters an HTTP header cannot carry (controls, spaces, non-ASCII).
    #[error("the API key ({len} characters) is not printable ASCII without spaces")]
    InvalidApiKey {
        /// Its length in characters.
        len: usize,
    },
    /// Neither a secret nor a key file.
    #[error(
        "no signing key: set {API_SECRET_VAR} (HMAC-SHA256) or {ED25519_KEY_FILE_VAR} (Ed25519)"
    )]
    MissingSecret,
    /// Both a secret and a key file.
    #[error("both {API_SECRET_VAR} and {ED25519_KEY_FILE_VAR} are set: set only one")]
    BothSecrets,
    /// The key file could not be opened or read.
    #[error("cannot read the Ed25519 key file {path}: {source}")]
    KeyFileUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file may be read by others than its owner.
    #[error(
        "the Ed25519 key file {path} has mode {mode:04o}: it must be 0600 or stricter \
         (no group or other permissions; chmod 600 it)"
    )]
    KeyFileMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is larger than [`MAX_KEY_FILE_BYTES`].
    #[error("the Ed25519 key file {path} is larger than {MAX_KEY_FILE_BYTES} bytes")]
    KeyFileTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The PEM is not a PKCS#8 Ed25519 private key.
    #[error("{origin}: not a PKCS#8 PEM Ed25519 private key")]
    InvalidPem {
        /// Where the PEM came from (the file, or "the given PEM").
        origin: String,
    },
}

impl Credentials {
    /// Credentials from the environment: [`API_KEY_VAR`], and either [`API_SECRET_VAR`] (HMAC)
    /// or [`ED25519_KEY_FILE_VAR`] (a PKCS#8 PEM Ed25519 private key with mode 0600 or
    /// stricter).
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        Credentials::from_lookup(|name| std::env::var_os(name))
    }

    /// Credentials from the variables `lookup` gives (by name, as [`Credentials::from_env`]
    /// reads them): tests and callers without a process environment pass their own.
    pub fn from_lookup<F, V>(lookup: F) -> Result<Credentials, CredentialsError>
    where
        F: Fn(&str) -> Option<V>,
        V: Into<OsString>,
    {
        let get = |what: &'static str| -> Result<Option<Secret>, CredentialsError> {
            match lookup(what) {
                None => Ok(None),
                Some(v) => match v.into().into_string() {
                    Ok(s) if s.is_empty() => Err(CredentialsError::Empty { what }),
                    Ok(s) => Ok(Some(Secret::new(s))),
                    Err(_) => Err(CredentialsError::NotUnicode { what }),
                },
            }
        };
        let api_key = get(API_KEY_VAR)?.ok_or(CredentialsError::MissingApiKey)?;
        let api_key = std::str::from_utf8(api_key.expose())
            .map_err(|_| CredentialsError::NotUnicode { what: API_KEY_VAR })?
            .to_string();
        match (get(API_SECRET_VAR)?, get(ED25519_KEY_FILE_VAR)?) {
            (Some(_), Some(_)) => Err(CredentialsError::BothSecrets),
            (None, None) => Err(CredentialsError::MissingSecret),
            (Some(secret), None) => Credentials::hmac(api_key, &secret),
            (None, Some(path)) => {
                let path = std::str::from_utf8(path.expose()).map_err(|_| {
                    CredentialsError::NotUnicode {
                        what: ED25519_KEY_FILE_VAR,
                    }
                })?;
                Credentials::ed25519_key_file(api_key, Path::new(path))
            }
        }
    }

    /// HMAC-SHA256 credentials.
    pub fn hmac(
        api_key: impl Into<String>,
        secret: &Secret,
    ) -> Result<Credentials, CredentialsError> {
        let api_key = check_api_key(api_key.into())?;
        if secret.is_empty() {
            return Err(CredentialsError::Empty {
                what: API_SECRET_VAR,
            });
        }
        Ok(Credentials {
            api_key,
            key: Key::Hmac(keyed_hmac(secret.expose())),
        })
    }

    /// Ed25519 credentials from a PKCS#8 PEM private key given as text.
    pub fn ed25519_pem(
        api_key: impl Into<String>,
        pem: &Secret,
    ) -> Result<Credentials, CredentialsError> {
        let api_key = check_api_key(api_key.into())?;
        let key = parse_pem(pem, || "the given PEM".to_string())?;
        Ok(Credentials {
            api_key,
            key: Key::Ed25519(Box::new(key)),
        })
    }

    /// Ed25519 credentials from a PKCS#8 PEM private key file, refused unless (on Unix) its
    /// mode is 0600 or stricter.
    pub fn ed25519_key_file(
        api_key: impl Into<String>,
        path: &Path,
    ) -> Result<Credentials, CredentialsError> {
        let api_key = check_api_key(api_key.into())?;
        let pem = read_key_file(path)?;
        let key = parse_pem(&pem, || path.display().to_string())?;
        Ok(Credentials {
            api_key,
            key: Key::Ed25519(Box::new(key)),
        })
    }

    /// How this key signs.
    pub fn scheme(&self) -> Scheme {
        match self.key {
            Key::Hmac(_) => Scheme::HmacSha256,
            Key::Ed25519(_) => Scheme::Ed25519,
        }
    }
}

fn check_api_key(k: String) -> Result<String, CredentialsError> {
    if k.is_empty() {
        return Err(CredentialsError::Empty { what: API_KEY_VAR });
    }
    if !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialsError::InvalidApiKey {
            len: k.chars().count(),
        });
    }
    Ok(k)
}

fn keyed_hmac(secret: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn parse_pem(
    pem: &Secret,
    origin: impl Fn() -> String,
) -> Result<ed25519_dalek::SigningKey, CredentialsError> {
    let bad = || CredentialsError::InvalidPem { origin: origin() };
    let text = std::str::from_utf8(pem.expose()).map_err(|_| bad())?;
    // The parser's own error is left out: the message says what is wrong, nothing of the text.
    ed25519_dalek::SigningKey::from_pkcs8_pem(text).map_err(|_| bad())
}

/// Reads the key file: refused if group or others may access it, or if it is too large.
fn read_key_file(path: &Path) -> Result<Secret, CredentialsError> {
    let unreadable = |source| CredentialsError::KeyFileUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(unreadable)?;
    // The mode of the file opened, not of a path that may have changed since.
    let meta = f.metadata().map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CredentialsError::KeyFileMode {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(CredentialsError::KeyFileTooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut buf = Secret::from_bytes(Vec::with_capacity(meta.len() as usize + 1));
    f.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut buf.0)
        .map_err(unreadable)?;
    if buf.0.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(CredentialsError::KeyFileTooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

impl Signer for Credentials {
    fn api_key(&self) -> &str {
        &self.api_key
    }

    fn sign_into(&self, payload: &[u8], out: &mut Vec<u8>) {
        match &self.key {
            Key::Hmac(keyed) => {
                let mut mac = keyed.clone();
                mac.update(payload);
                push_hex(&mac.finalize().into_bytes().into(), out);
            }
            Key::Ed25519(key) => {
                let sig = key.sign(payload).to_bytes();
                let mut buf = [0u8; ED25519_BASE64_LEN];
                // 64 bytes always fit in 88 base64 characters.
                if let Ok(n) = base64::engine::general_purpose::STANDARD.encode_slice(sig, &mut buf)
                {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
}

/// Appends the lowercase hex of a SHA-256 output to `out` (no allocation once `out` has
/// room).
fn push_hex(bytes: &[u8; 32], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; HMAC_HEX_LEN];
    for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    out.extend_from_slice(&buf);
}

/// HMAC-SHA256 of `payload` under `secret`, appended to `out` as lowercase hex (64 characters;
/// no allocation once `out` has room).
pub fn hmac_sha256_hex(secret: &[u8], payload: &[u8], out: &mut Vec<u8>) {
    let mut mac = keyed_hmac(secret);
    mac.update(payload);
    push_hex(&mac.finalize().into_bytes().into(), out);
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.api_key.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field(
                "api_key",
                &format_args!("\"{shown}…({} chars)\"", self.api_key.chars().count()),
            )
            .field("scheme", &self.scheme())
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn data(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/signatures")
            .join(rel)
    }

    fn vectors() -> serde_json::Value {
        let text = std::fs::read_to_string(data("vectors.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        let m: HashMap<&str, &str> = vars.iter().copied().collect();
        move |k| m.get(k).copied()
    }

    fn sign(c: &Credentials, payload: &str) -> String {
        let mut out = Vec::new();
        c.sign_into(payload.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn ed25519_pem_text() -> String {
        std::fs::read_to_string(data("python-binance_ed25519_test_key.pem")).unwrap()
    }

    /// A private copy of the test key with `mode`.
    #[cfg(unix)]
    fn key_file(dir: &test_support::TempDir, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn hmac_vectors() {
        let v = vectors();
        for t in v["hmac_sha256"].as_array().unwrap() {
            let (key, secret) = (
                t["apiKey"].as_str().unwrap(),
                t["secretKey"].as_str().unwrap(),
            );
            let payload = t["payload"].as_str().unwrap();
            let want = t["signature_hex"].as_str().unwrap();
            let c = Credentials::hmac(key, &Secret::new(secret)).unwrap();
            assert_eq!(c.scheme(), Scheme::HmacSha256);
            assert_eq!(c.api_key(), key);
            assert_eq!(sign(&c, payload), want, "{}", t["id"]);
            // Twice from the same credentials: the keyed state is not consumed.
            assert_eq!(sign(&c, payload), want);
            let mut out = b"x=1&signature=".to_vec();
            hmac_sha256_hex(secret.as_bytes(), payload.as_bytes(), &mut out);
            assert_eq!(out, format!("x=1&signature={want}").as_bytes());
            let from_env =
                Credentials::from_lookup(env(&[(API_KEY_VAR, key), (API_SECRET_VAR, secret)]))
                    .unwrap();
            assert_eq!(sign(&from_env, payload), want);
        }
    }

    #[test]
    fn ed25519_vector() {
        let v = vectors();
        let t = &v["ed25519"][0];
        let payload = t["payload"].as_str().unwrap();
        let want = t["signature_base64"].as_str().unwrap();
        let c = Credentials::ed25519_pem("k", &Secret::new(ed25519_pem_text())).unwrap();
        assert_eq!(c.scheme(), Scheme::Ed25519);
        assert_eq!(sign(&c, payload), want);
        assert_eq!(want.len(), ED25519_BASE64_LEN);
    }

    #[cfg(unix)]
    #[test]
    fn ed25519_key_file_from_the_environment_needs_mode_0600_or_stricter() {
        let dir = test_support::TempDir::new("gateway-sign-keyfile");
        let v = vectors();
        let t = &v["ed25519"][0];
        let payload = t["payload"].as_str().unwrap();
        let want = t["signature_base64"].as_str().unwrap();
        for mode in [0o600, 0o400] {
            let p = key_file(&dir, &format!("k{mode:o}.pem"), &ed25519_pem_text(), mode);
            let c = Credentials::from_lookup(env(&[
                (API_KEY_VAR, "ed-key"),
                (ED25519_KEY_FILE_VAR, p.to_str().unwrap()),
            ]))
            .unwrap();
            assert_eq!(sign(&c, payload), want);
        }
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let p = key_file(&dir, &format!("k{mode:o}.pem"), &ed25519_pem_text(), mode);
            let e = Credentials::ed25519_key_file("ed-key", &p).unwrap_err();
            assert!(matches!(e, CredentialsError::KeyFileMode { mode: m, .. } if m == mode));
            let msg = e.to_string();
            assert!(msg.contains(p.to_str().unwrap()), "{msg}");
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        }
    }

    /// Variables, and what the error must be.
    type Case = (
        Vec<(&'static str, &'static str)>,
        fn(&CredentialsError) -> bool,
    );

    #[test]
    fn missing_empty_and_conflicting_variables_are_typed_errors() {
        let secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
        let cases: Vec<Case> = vec![
            (vec![], |e| matches!(e, CredentialsError::MissingApiKey)),
            (vec![(API_SECRET_VAR, secret)], |e| {
                matches!(e, CredentialsError::MissingApiKey)
            }),
            (vec![(API_KEY_VAR, "k")], |e| {
                matches!(e, CredentialsError::MissingSecret)
            }),
            (vec![(API_KEY_VAR, ""), (API_SECRET_VAR, secret)], |e| {
                matches!(e, CredentialsError::Empty { what: API_KEY_VAR })
            }),
            (vec![(API_KEY_VAR, "k"), (API_SECRET_VAR, "")], |e| {
                matches!(
                    e,
                    CredentialsError::Empty {
                        what: API_SECRET_VAR
                    }
                )
            }),
            (vec![(API_KEY_VAR, "k"), (ED25519_KEY_FILE_VAR, "")], |e| {
                matches!(
                    e,
                    CredentialsError::Empty {
                        what: ED25519_KEY_FILE_VAR
                    }
                )
            }),
            (
                vec![
                    (API_KEY_VAR, "k"),
                    (API_SECRET_VAR, secret),
                    (ED25519_KEY_FILE_VAR, "/some/key.pem"),
                ],
                |e| matches!(e, CredentialsError::BothSecrets),
            ),
            (
                vec![(API_KEY_VAR, "a key"), (API_SECRET_VAR, secret)],
                |e| matches!(e, CredentialsError::InvalidApiKey { len: 5 }),
            ),
            (
                vec![(API_KEY_VAR, "k\r\nX: y"), (API_SECRET_VAR, secret)],
                |e| matches!(e, CredentialsError::InvalidApiKey { .. }),
            ),
            (
                vec![
                    (API_KEY_VAR, "k"),
                    (ED25519_KEY_FILE_VAR, "/no/such/key.pem"),
                ],
                |e| {
                    matches!(e, CredentialsError::KeyFileUnreadable { .. })
                        && e.to_string().contains("/no/such/key.pem")
                },
            ),
        ];
        for (vars, want) in cases {
            let e = Credentials::from_lookup(env(&vars)).unwrap_err();
            assert!(want(&e), "{vars:?}: {e:?}");
            let text = format!("{e} {e:?}");
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_non_unicode_variable_is_an_error() {
        use std::os::unix::ffi::OsStringExt as _;
        let e = Credentials::from_lookup(|k| match k {
            API_KEY_VAR => Some(OsString::from("k")),
            API_SECRET_VAR => Some(OsString::from_vec(vec![0xff, 0xfe])),
            _ => None,
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                CredentialsError::NotUnicode {
                    what: API_SECRET_VAR
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn an_invalid_pem_is_an_error_without_its_text() {
        let junk = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldC1zZWNyZXQ=\n-----END PRIVATE KEY-----\n";
        let e = Credentials::ed25519_pem("k", &Secret::new(junk)).unwrap_err();
        assert!(matches!(e, CredentialsError::InvalidPem { .. }));
        let text = format!("{e} {e:?}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        let e = Credentials::ed25519_pem("k", &Secret::from_bytes(vec![0xff, 0x00])).unwrap_err();
        assert!(matches!(e, CredentialsError::InvalidPem { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_errors_never_show_the_pem() {
        let dir = test_support::TempDir::new("gateway-sign-keyfile-errors");
        let pem = ed25519_pem_text();
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let seed = vectors()["ed25519"][0]["private_key_seed_hex"]
            .as_str()
            .unwrap()
            .to_string();
        // Open to others, a truncated key, an oversized file.
        let open = key_file(&dir, "open.pem", &pem, 0o644);
        let truncated = key_file(&dir, "cut.pem", &pem[..pem.len() / 2], 0o600);
        let big = key_file(
            &dir,
            "big.pem",
            &pem.repeat(MAX_KEY_FILE_BYTES as usize / pem.len() + 2),
            0o600,
        );
        let errors = [
            Credentials::ed25519_key_file("k", &open).unwrap_err(),
            Credentials::ed25519_key_file("k", &truncated).unwrap_err(),
            Credentials::ed25519_key_file("k", &big).unwrap_err(),
            Credentials::ed25519_key_file("k", &dir.join("none.pem")).unwrap_err(),
        ];
        assert!(matches!(
            errors[0],
            CredentialsError::KeyFileMode { mode: 0o644, .. }
        ));
        assert!(matches!(errors[1], CredentialsError::InvalidPem { .. }));
        assert!(matches!(
            errors[2],
            CredentialsError::KeyFileTooLarge { .. }
        ));
        assert!(matches!(
            errors[3],
            CredentialsError::KeyFileUnreadable { .. }
        ));
        for e in &errors {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(&body[..20]), "{text}");
            assert!(!text.contains(&seed), "{text}");
        }
    }

    #[test]
    fn debug_never_shows_a_secret_or_the_whole_api_key() {
        let v = vectors();
        let t = &v["hmac_sha256"][1];
        let (key, secret) = (
            t["apiKey"].as_str().unwrap(),
            t["secretKey"].as_str().unwrap(),
        );
        let c = Credentials::hmac(key, &Secret::new(secret)).unwrap();
        let text = format!("{c:?} {c:#?} {:?}", Secret::new(secret));
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(key), "{text}");
        assert!(text.contains("dbef…(64 chars)"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");

        let pem = ed25519_pem_text();
        let seed = v["ed25519"][0]["private_key_seed_hex"].as_str().unwrap();
        let c = Credentials::ed25519_pem("ed25519-test-key", &Secret::new(pem.clone())).unwrap();
        let text = format!("{c:?} {c:#?}");
        let body = pem.lines().nth(1).unwrap();
        assert!(!text.contains(body), "{text}");
        assert!(!text.contains(seed), "{text}");
        assert!(text.contains("Ed25519"), "{text}");
    }
}
