//! Hot reload: re-read the run's config file, validate it, and decide what may change live.
//!
//! - A file that cannot be read or does not validate is refused with its error; the running
//!   config is kept.
//! - The runtime's sections (`[cpu]`, `[rings]`, `[feed]`, `[venue]`, `[ops]`) are fixed for the
//!   run: threads are pinned, rings allocated, links open. A change there is refused, naming it.
//! - The engine's part may change in its quote parameters, risk limits, budgets, fees and the
//!   venue's order limits; not in its instrument set, an instrument's identity or grids, its
//!   starting balances or the book size ([`engine::Config::reload_refusal`]).
//!
//! What is applied is printed as a diff of the files' keys (`instrument[0].quote.start_offset:
//! 2.0 → 4.0`) and journaled by the engine thread as a reload record, so a replay applies it at
//! the same point.

use crate::config::RunConfig;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Sections the runtime owns: fixed for the run.
const FIXED_SECTIONS: [&str; 7] = ["cpu", "rings", "feed", "venue", "ops", "bus", "firm"];

/// One changed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted path (`instrument[0].risk.net_max`).
    pub path: String,
    /// Before (`None`: absent).
    pub old: Option<String>,
    /// After (`None`: removed).
    pub new: Option<String>,
}

/// A reload that may go ahead.
#[derive(Debug)]
pub struct Plan {
    /// The new config.
    pub config: RunConfig,
    /// Its text.
    pub text: String,
    /// What changed.
    pub changes: Vec<Change>,
}

impl Plan {
    /// The changes, one per line.
    pub fn diff_text(&self) -> String {
        diff_lines(&self.changes)
    }
}

/// What re-reading the file found.
#[derive(Debug)]
pub enum Reloaded {
    /// Nothing changed.
    Unchanged,
    /// Changes that may be applied live.
    Changed(Box<Plan>),
}

/// The changes, one per line (`  path: old → new`).
pub fn diff_lines(changes: &[Change]) -> String {
    let mut s = String::new();
    for c in changes {
        let _ = writeln!(
            s,
            "  {}: {} → {}",
            c.path,
            c.old.as_deref().unwrap_or("(absent)"),
            c.new.as_deref().unwrap_or("(absent)")
        );
    }
    s
}

/// Reads `path` and checks it against the running config: a plan, or why not (the running config
/// is kept either way until the plan is applied).
pub fn plan(current: &RunConfig, current_text: &str, path: &Path) -> Result<Reloaded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config = RunConfig::from_toml(&text)
        .map_err(|e| format!("{} is not a valid config: {e:#}", path.display()))?;
    let changes = diff(current_text, &text)?;
    if changes.is_empty() {
        return Ok(Reloaded::Unchanged);
    }
    let fixed: Vec<&Change> = changes
        .iter()
        .filter(|c| {
            let section = c.path.split(['.', '[']).next().unwrap_or("");
            FIXED_SECTIONS.contains(&section)
        })
        .collect();
    if !fixed.is_empty() {
        let list: Vec<Change> = fixed.into_iter().cloned().collect();
        return Err(format!(
            "[cpu], [rings], [feed], [venue], [ops] and [bus] are fixed for the run (threads are \
             pinned, rings allocated, links open): restart to change\n{}",
            diff_lines(&list).trim_end()
        ));
    }
    if let Some(why) = current.engine.reload_refusal(&config.engine) {
        return Err(why.to_string());
    }
    Ok(Reloaded::Changed(Box::new(Plan {
        config,
        text,
        changes,
    })))
}

/// The keys that differ between two config texts (both valid TOML).
pub fn diff(old: &str, new: &str) -> Result<Vec<Change>, String> {
    let parse = |t: &str| {
        toml::from_str::<toml::Table>(t).map_err(|e| format!("not valid TOML: {}", e.message()))
    };
    let (a, b) = (flatten(&parse(old)?), flatten(&parse(new)?));
    let mut out = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            Some(w) if w == v => {}
            w => out.push(Change {
                path: k.clone(),
                old: Some(v.clone()),
                new: w.cloned(),
            }),
        }
    }
    for (k, w) in &b {
        if !a.contains_key(k) {
            out.push(Change {
                path: k.clone(),
                old: None,
                new: Some(w.clone()),
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(out)
}

fn flatten(t: &toml::Table) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in t {
        flatten_value(k, v, &mut out);
    }
    out
}

fn flatten_value(path: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_value(&format!("{path}.{k}"), v, out);
            }
        }
        toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten_value(&format!("{path}[{i}]"), v, out);
            }
        }
        other => {
            out.insert(path.to_owned(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_text() -> String {
        test_support::config_text("default.toml")
    }

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rm-reload-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_diff_names_each_changed_key_by_path() {
        let a = "[engine]\nx = 1\n[[instrument]]\nsymbol = \"A\"\n[instrument.quote]\nk = 2.0\n";
        let b = "[engine]\nx = 1\ny = true\n[[instrument]]\nsymbol = \"A\"\n[instrument.quote]\nk = 4.0\n";
        let d = diff(a, b).unwrap();
        assert_eq!(
            d,
            vec![
                Change {
                    path: "engine.y".into(),
                    old: None,
                    new: Some("true".into())
                },
                Change {
                    path: "instrument[0].quote.k".into(),
                    old: Some("2.0".into()),
                    new: Some("4.0".into())
                },
            ]
        );
        assert_eq!(diff_lines(&d[1..]), "  instrument[0].quote.k: 2.0 → 4.0\n");
    }

    #[test]
    fn quote_and_risk_changes_are_planned_the_rest_refused_with_the_reason() {
        let base = default_text();
        let current = RunConfig::from_toml(&base).unwrap();
        let plan_of = |name: &str, text: &str| plan(&current, &base, &write(name, text));

        assert!(matches!(plan_of("same", &base), Ok(Reloaded::Unchanged)));
        let wider = base.replacen("start_offset = ", "start_offset = 1", 1);
        match plan_of("wider", &wider) {
            Ok(Reloaded::Changed(p)) => {
                assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
                assert!(p.changes[0].path.ends_with("quote.start_offset"));
            }
            other => panic!("{other:?}"),
        }
        let bad = base.replacen("start_offset = ", "start_offset = -", 1);
        let e = plan_of("bad", &bad).unwrap_err();
        assert!(e.contains("not a valid config"), "{e}");
        let e = plan_of("toml", "[engine\n").unwrap_err();
        assert!(e.contains("not a valid config"), "{e}");
        let e = plan_of("cpu", &format!("{base}\n[cpu]\nengine = 1\n")).unwrap_err();
        assert!(
            e.contains("fixed for the run") && e.contains("cpu.engine"),
            "{e}"
        );
        let e = plan_of(
            "tick",
            &base.replacen("tick = \"0.10\"", "tick = \"0.01\"", 1),
        )
        .unwrap_err();
        assert!(e.contains("instrument definition"), "{e}");
        let missing = std::env::temp_dir().join("rm-reload-no-such-dir/c.toml");
        let e = plan(&current, &base, &missing).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
