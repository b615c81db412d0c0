//! The run config: one TOML file, owned by the runtime, split into what the engine needs and
//! what the host needs.
//!
//! | section | owner | journaled |
//! |---|---|---|
//! | `[engine]`, `[[instrument]]` (with its `quote`, `risk`, `fees`) | the engine ([`engine::Config`]) | as text: replay rebuilds the engine from it |
//! | `[cpu]`, `[rings]` | the runtime ([`crate::live::LiveConfig`]) | as part of the settings digest |
//! | `[venue]` | the order-entry gateway ([`crate::live::config::OrderEntryConfig`]; credentials come from the environment, never the file) | digest only |
//! | `[ops]` | operations (metrics, control) | digest only, credential fields left out |
//! | `[bus]` | the bus link ([`crate::live::config::BusConfig`]) | digest only, credential fields left out |
//!
//! The journal's config record holds the engine's part only, re-serialised from the parsed file
//! (comments are not kept). The other sections go into the journal as a SHA-256 digest
//! ([`RunConfig::settings_digest`]) so two runs can be told apart without the journal ever holding a
//! credential, a path to one, or an endpoint's account name: every key whose name contains
//! `key`, `secret`, `password`, `token`, `passphrase` or `credential` (at any depth) is left out of
//! the digest, and nothing of `[venue]` / `[ops]` is journaled as text.

use crate::live::config::{LiveConfig, LiveConfigError};
use engine::{Config, ConfigError};
use sha2::{Digest, Sha256};

/// Top-level tables that belong to the runtime, not the engine.
const RUNTIME_SECTIONS: [&str; 7] = ["cpu", "rings", "feed", "venue", "ops", "bus", "firm"];

/// Key-name fragments that mark a credential (or where one is kept).
const CREDENTIAL_MARKS: [&str; 6] = [
    "key",
    "secret",
    "password",
    "token",
    "passphrase",
    "credential",
];

/// Why a run config was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunConfigError {
    /// The file is not TOML.
    #[error("not valid TOML: {0}")]
    Toml(String),
    /// A runtime section is not a table (`cpu = 3` instead of `[cpu]`).
    #[error("[{0}] must be a table")]
    NotATable(&'static str),
    /// The engine's part is invalid.
    #[error(transparent)]
    Engine(#[from] ConfigError),
    /// `[cpu]` or `[rings]` is invalid.
    #[error(transparent)]
    Live(#[from] LiveConfigError),
}

/// A validated run config.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The engine's part (its `source` is the engine-only TOML that is journaled).
    pub engine: Config,
    /// `[cpu]` and `[rings]`.
    pub live: LiveConfig,
    /// `[venue]` as written (read by the order-entry gateway).
    pub venue: Option<toml::Table>,
    /// `[ops]` as written (read by operations: metrics, control).
    pub ops: Option<toml::Table>,
    settings_digest: [u8; 32],
}

impl RunConfig {
    /// Parses and validates a whole config file.
    pub fn from_toml(text: &str) -> Result<RunConfig, RunConfigError> {
        let mut all: toml::Table =
            toml::from_str(text).map_err(|e| RunConfigError::Toml(e.message().to_owned()))?;
        let mut rest = toml::Table::new();
        for name in RUNTIME_SECTIONS {
            if let Some(v) = all.remove(name) {
                if !v.is_table() {
                    return Err(RunConfigError::NotATable(name));
                }
                rest.insert(name.to_owned(), v);
            }
        }
        let engine_text = toml::to_string(&all).map_err(|e| RunConfigError::Toml(e.to_string()))?;
        let engine = Config::from_toml(&engine_text)?;
        let live_text = toml::to_string(&{
            let mut t = toml::Table::new();
            for name in RUNTIME_SECTIONS {
                if let Some(v) = rest.get(name) {
                    t.insert(name.to_owned(), v.clone());
                }
            }
            t
        })
        .map_err(|e| RunConfigError::Toml(e.to_string()))?;
        let live = LiveConfig::from_toml(&live_text)?;
        let table = |name: &str| rest.get(name).and_then(|v| v.as_table()).cloned();
        let (venue, ops) = (table("venue"), table("ops"));
        let mut digested = rest.clone();
        strip_credentials(&mut digested);
        let canonical =
            toml::to_string(&digested).map_err(|e| RunConfigError::Toml(e.to_string()))?;
        Ok(RunConfig {
            engine,
            live,
            venue,
            ops,
            settings_digest: Sha256::digest(canonical.as_bytes()).into(),
        })
    }

    /// A run config of an engine config alone (defaults everywhere else).
    pub fn from_engine(engine: Config) -> RunConfig {
        let canonical = toml::to_string(&toml::Table::new()).unwrap_or_default();
        RunConfig {
            engine,
            live: LiveConfig::default(),
            venue: None,
            ops: None,
            settings_digest: Sha256::digest(canonical.as_bytes()).into(),
        }
    }

    /// SHA-256 of the runtime's sections (`[cpu]`, `[rings]`, `[venue]`, `[ops]`), canonically
    /// serialised, credential fields left out.
    pub fn settings_digest(&self) -> [u8; 32] {
        self.settings_digest
    }
}

/// Whether a key names a credential or where one is kept.
fn is_credential(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    CREDENTIAL_MARKS.iter().any(|m| k.contains(m))
}

fn strip_credentials(t: &mut toml::Table) {
    t.retain(|k, _| !is_credential(k));
    for (_, v) in t.iter_mut() {
        strip_value(v);
    }
}

fn strip_value(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => strip_credentials(t),
        toml::Value::Array(a) => a.iter_mut().for_each(strip_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_text() -> String {
        test_support::config_text("default.toml")
    }

    #[test]
    fn the_engine_part_is_what_the_engine_reads_and_nothing_else() {
        let text = default_text()
            + "\n[cpu]\nengine = 1\nfeeds = [0]\n[rings]\ninput = 1024\n\
               [venue]\nrest_url = \"https://127.0.0.1:9443\"\ncountdown_secs = 60\n\
               [ops]\nmetrics_listen = \"127.0.0.1:9100\"\n";
        let run = RunConfig::from_toml(&text).unwrap();
        assert_eq!(run.live.cpu.engine, Some(1));
        assert_eq!(run.live.rings.input, 1024);
        assert!(run.venue.as_ref().unwrap().contains_key("rest_url"));
        assert!(run.ops.is_some());
        assert_eq!(run.live.order_entry.countdown_secs, 60);
        assert_eq!(
            run.live.order_entry.rest_url.as_deref(),
            Some("https://127.0.0.1:9443")
        );
        assert_eq!(
            run.live.ops.metrics_addr(),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        for absent in ["[cpu]", "[venue]", "9100", "9443", "[ops]"] {
            assert!(
                !run.engine.source.contains(absent),
                "{absent} in {}",
                run.engine.source
            );
        }
        // The engine's part parses to the same engine config as the engine sections alone.
        let direct = Config::from_toml(&default_text()).unwrap();
        assert_eq!(run.engine.instruments, direct.instruments);
        assert_eq!(run.engine.book_slots, direct.book_slots);
    }

    #[test]
    fn the_digest_tells_settings_apart_but_ignores_credentials() {
        let base = default_text();
        let d = |extra: &str| {
            RunConfig::from_toml(&format!("{base}\n{extra}"))
                .unwrap()
                .settings_digest()
        };
        let a = d("[venue]\nrest_url = \"https://a\"\n[ops]\nmetrics_listen = \"127.0.0.1:1\"\n");
        let c = d("[venue]\nrest_url = \"https://b\"\n[ops]\nmetrics_listen = \"127.0.0.1:1\"\n");
        let e = d("[venue]\nrest_url = \"https://a\"\n[ops]\nmetrics_listen = \"127.0.0.1:2\"\n");
        assert_ne!(a, c, "settings are digested");
        assert_ne!(a, e);
        // No section accepts a credential today ([venue] refuses them); should one ever be
        // written, it is left out of the digest.
        let mut t: toml::Table = toml::from_str(
            "[x]\nurl = \"u\"\napi_key = \"K\"\n[x.y]\nSecret_File = \"/s\"\nn = 1\n",
        )
        .unwrap();
        strip_credentials(&mut t);
        assert_eq!(
            toml::to_string(&t).unwrap(),
            "[x]\nurl = \"u\"\n\n[x.y]\nn = 1\n"
        );
        assert_ne!(d("[rings]\ninput = 1024\n"), d("[rings]\ninput = 2048\n"));
    }

    #[test]
    fn bad_sections_are_typed_errors() {
        let base = default_text();
        let e = RunConfig::from_toml(&format!("cpu = 3\n{base}")).unwrap_err();
        assert!(matches!(e, RunConfigError::NotATable("cpu")), "{e}");
        let e = RunConfig::from_toml(&format!("{base}\n[rings]\ninput = 1000\n")).unwrap_err();
        assert!(e.to_string().contains("rings.input"), "{e}");
        let e = RunConfig::from_toml("[[instrument]\n").unwrap_err();
        assert!(matches!(e, RunConfigError::Toml(_)), "{e}");
        // Credentials never come from the file.
        let e = RunConfig::from_toml(&format!("{base}\n[venue]\napi_key = \"abc\"\n")).unwrap_err();
        assert!(e.to_string().contains("api_key"), "{e}");
        assert!(
            !e.to_string().contains("abc"),
            "the value is not repeated: {e}"
        );
        let e = RunConfig::from_toml(&format!("{base}\n[bogus]\nx = 1\n")).unwrap_err();
        assert!(matches!(e, RunConfigError::Engine(_)), "{e}");
    }
}
