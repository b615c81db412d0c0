//! Which instrument each recording file is for.
//!
//! A recording holds one instrument's market data (its streams, and REST snapshot lines that name
//! no symbol), so with several instruments every file is *bound* to exactly one of them, and its
//! messages are decoded for that instrument alone ([`crate::MergedSource`],
//! [`crate::Decoder::decode_for`]). A file is bound
//!
//! - explicitly, by its argument: `SYMBOL=PATH` or `VENUE:SYMBOL=PATH`
//!   (`binance-spot:BTCUSDT=tests/data/binance-spot/btcusdt_20240808.gz`), without reading it
//!   ([`DataSpec::parse_for`]: `X=` is a binding only when `X` names an instrument, so a path
//!   holding `=` still works when given plainly);
//! - with a single instrument, to that instrument, unless its streams name only other symbols
//!   or its depth diffs are another venue's flavour (an error naming the file and what it holds);
//! - otherwise by what its first lines say ([`sniff`]: at most [`SNIFF_MAX_LINES`] lines or
//!   [`SNIFF_MAX_BYTES`] of payload): the symbol its streams name (`<symbol>@...`) and whether its
//!   depth diffs carry `pu` (futures: `binance-usdm`, `binance-coinm`) or not (`binance-spot`).
//!   A file naming several symbols, none, or one that fits no instrument or several, is an error
//!   naming the file and what was found.
//!
//! Files bound to the same instrument are read one after the other in the order given (they
//! continue each other). Every instrument needs at least one.

use crate::recording::{OpenError, RecordingReader};
use engine::{Config, Symbol, VenueFlavour};
use simd_json::prelude::*;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// Lines of a file [`sniff`] looks at, at most.
pub const SNIFF_MAX_LINES: u64 = 2_000;
/// Payload bytes of a file [`sniff`] looks at, at most.
pub const SNIFF_MAX_BYTES: u64 = 4 << 20;

/// The venue flavours, for names.
const VENUES: [VenueFlavour; 3] = [
    VenueFlavour::BinanceUsdm,
    VenueFlavour::BinanceCoinm,
    VenueFlavour::BinanceSpot,
];

/// The venue flavour named `name` (`binance-usdm`, `binance-coinm`, `binance-spot`).
pub fn venue_named(name: &str) -> Option<VenueFlavour> {
    VENUES.into_iter().find(|v| v.name() == name)
}

/// An instrument a file can be bound to: its symbol and venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Venue symbol.
    pub symbol: Symbol,
    /// Venue flavour.
    pub venue: VenueFlavour,
}

impl Key {
    /// The instruments of `cfg`, by id.
    pub fn of_config(cfg: &Config) -> Vec<Key> {
        cfg.instruments
            .iter()
            .map(|i| Key {
                symbol: i.instrument.symbol,
                venue: i.venue,
            })
            .collect()
    }

    fn matches(&self, t: &Target) -> bool {
        self.symbol.eq_ignore_case(t.symbol.as_bytes()) && t.venue.is_none_or(|v| v == self.venue)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.symbol.as_str(), self.venue.name())
    }
}

/// The instruments, for messages: `BTCUSDT (binance-usdm), BTCUSDT (binance-spot)`.
fn list(keys: &[Key]) -> String {
    keys.iter()
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The instrument a file is bound to on the command line: `SYMBOL` or `VENUE:SYMBOL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The venue, if given.
    pub venue: Option<VenueFlavour>,
    /// The symbol, as given (matched without regard to case).
    pub symbol: String,
}

impl Target {
    /// `SYMBOL` or `VENUE:SYMBOL`, if `s` has that shape (a venue name before the colon; a
    /// symbol of letters, digits, `_`, `-` or `.`).
    pub fn parse(s: &str) -> Option<Target> {
        let (venue, symbol) = match s.split_once(':') {
            Some((v, sym)) => (Some(venue_named(v)?), sym),
            None => (None, s),
        };
        let shaped = !symbol.is_empty()
            && symbol.len() <= Symbol::CAPACITY
            && symbol
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
        shaped.then(|| Target {
            venue,
            symbol: symbol.to_owned(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.venue {
            Some(v) => write!(f, "{}:{}", v.name(), self.symbol),
            None => f.write_str(&self.symbol),
        }
    }
}

/// One recording file as given, with the instrument it is bound to if the argument said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSpec {
    /// `Some` for `SYMBOL=PATH` / `VENUE:SYMBOL=PATH`.
    pub target: Option<Target>,
    /// The file.
    pub path: PathBuf,
}

impl From<PathBuf> for DataSpec {
    fn from(path: PathBuf) -> DataSpec {
        DataSpec { target: None, path }
    }
}

impl DataSpec {
    /// Plain files (bound by what they hold, or to the only instrument).
    pub fn plain<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Vec<DataSpec> {
        paths
            .into_iter()
            .map(|p| DataSpec::from(p.into()))
            .collect()
    }

    /// `path` bound to `target`.
    pub fn bound(target: Target, path: impl Into<PathBuf>) -> DataSpec {
        DataSpec {
            target: Some(target),
            path: path.into(),
        }
    }

    /// Parses one `--data` argument for the instruments `keys`: `PATH`, `SYMBOL=PATH` or
    /// `VENUE:SYMBOL=PATH`. `X=...` is a binding only when `X` names one of `keys` (so a file
    /// whose name holds `=` is read as given); `X=...` that names none, where no file of that
    /// name exists either, is [`BindError::UnknownTarget`].
    pub fn parse_for(arg: &OsStr, keys: &[Key]) -> Result<DataSpec, BindError> {
        DataSpec::parse_with(
            arg,
            |t| keys.iter().any(|k| k.matches(t)),
            || format!("the config has {}", list(keys)),
        )
    }

    /// [`DataSpec::parse_for`] with the caller's idea of a known target; `instruments` describes
    /// them for the error.
    pub fn parse_with(
        arg: &OsStr,
        known: impl Fn(&Target) -> bool,
        instruments: impl FnOnce() -> String,
    ) -> Result<DataSpec, BindError> {
        DataSpec::parse_in(arg, known, instruments, &|p| p.exists())
    }

    /// [`DataSpec::parse_with`], with `exists` saying which files exist.
    fn parse_in(
        arg: &OsStr,
        known: impl Fn(&Target) -> bool,
        instruments: impl FnOnce() -> String,
        exists: &dyn Fn(&Path) -> bool,
    ) -> Result<DataSpec, BindError> {
        let plain = || Ok(DataSpec::from(PathBuf::from(arg)));
        let Some(s) = arg.to_str() else {
            return plain();
        };
        let Some((head, path)) = s.split_once('=') else {
            return plain();
        };
        let Some(target) = Target::parse(head) else {
            return plain();
        };
        let whole_exists = exists(Path::new(s));
        if known(&target) && !path.is_empty() {
            // A file literally named `X=Y` when `Y` is not there: the file.
            if whole_exists && !exists(Path::new(path)) {
                return plain();
            }
            return Ok(DataSpec::bound(target, path));
        }
        if whole_exists {
            return plain();
        }
        Err(BindError::UnknownTarget {
            arg: s.to_owned(),
            target: target.to_string(),
            instruments: instruments(),
        })
    }
}

/// What the depth diffs of a file say of its venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Diffs carry `pu`: USDⓈ-M, USDC-M or COIN-M futures.
    Futures,
    /// Diffs carry no `pu`: spot.
    Spot,
}

impl Flavour {
    /// Whether an instrument on `venue` can have this file.
    pub fn fits(self, venue: VenueFlavour) -> bool {
        match self {
            Flavour::Futures => matches!(
                venue,
                VenueFlavour::BinanceUsdm | VenueFlavour::BinanceCoinm
            ),
            Flavour::Spot => venue == VenueFlavour::BinanceSpot,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavour::Futures => "futures (depth diffs with `pu`)",
            Flavour::Spot => "spot (depth diffs without `pu`)",
        }
    }
}

/// What the first lines of a file say ([`sniff`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sniffed {
    /// The symbols its streams name (`<symbol>@...`; a bare payload's `s`), lower case, sorted.
    pub symbols: Vec<String>,
    /// Depth diffs seen with `pu`.
    pub futures_diffs: u64,
    /// Depth diffs seen without `pu`.
    pub spot_diffs: u64,
    /// Lines looked at.
    pub lines: u64,
}

impl Sniffed {
    /// The flavour its depth diffs say; `None` with no diff, or with both kinds.
    pub fn flavour(&self) -> Option<Flavour> {
        match (self.futures_diffs > 0, self.spot_diffs > 0) {
            (true, false) => Some(Flavour::Futures),
            (false, true) => Some(Flavour::Spot),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let streams = match self.symbols.as_slice() {
            [] => "no stream".to_owned(),
            [one] => format!("streams of {one}"),
            many => format!("streams of {}", many.join(", ")),
        };
        let diffs = match (self.futures_diffs, self.spot_diffs) {
            (0, 0) => "no depth diff".to_owned(),
            (_, 0) => Flavour::Futures.name().to_owned(),
            (0, _) => Flavour::Spot.name().to_owned(),
            (f, s) => format!("{f} depth diffs with `pu` and {s} without"),
        };
        format!("{streams}, {diffs}, in its first {} lines", self.lines)
    }
}

/// Looks at the first lines of `path` (at most [`SNIFF_MAX_LINES`] lines or
/// [`SNIFF_MAX_BYTES`] of payload): the symbols its streams name and the flavour of its depth
/// diffs. Lines that are not JSON are passed over.
pub fn sniff(path: &Path) -> Result<Sniffed, OpenError> {
    let mut r = RecordingReader::open(&[path])?;
    let mut out = Sniffed::default();
    let mut bytes = 0u64;
    while out.lines < SNIFF_MAX_LINES && bytes < SNIFF_MAX_BYTES {
        let Some(line) = r.next() else { break };
        out.lines += 1;
        let Ok(line) = line else { continue };
        bytes += line.json.len() as u64;
        let Ok(v) = simd_json::to_borrowed_value(line.json) else {
            continue;
        };
        let (symbol, payload) = match (v.get_str("stream"), v.get("data")) {
            (Some(stream), Some(data)) => (stream.split('@').next(), data),
            // A bare payload names its symbol in `s` (a REST snapshot names none).
            _ => (v.get_str("s").filter(|_| v.get_str("e").is_some()), &v),
        };
        if let Some(sym) = symbol.filter(|s| !s.is_empty()) {
            let sym = sym.to_ascii_lowercase();
            if let Err(at) = out.symbols.binary_search(&sym) {
                out.symbols.insert(at, sym);
            }
        }
        if payload.get_str("e") == Some("depthUpdate") {
            if payload.get("pu").is_some() {
                out.futures_diffs += 1;
            } else {
                out.spot_diffs += 1;
            }
        }
    }
    Ok(out)
}

/// A recording that cannot be bound to an instrument, or an instrument left without one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// No recording was given.
    #[error("no recording given")]
    NoData,
    /// A file could not be opened to see what it holds.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// `X=PATH` where `X` names no instrument, and no file is named `X=PATH` either.
    #[error(
        "--data {arg}: {target} is not an instrument here ({instruments}), and no file has that \
         name"
    )]
    UnknownTarget {
        /// The argument.
        arg: String,
        /// The `X` of it.
        target: String,
        /// The instruments.
        instruments: String,
    },
    /// `SYMBOL=PATH` where several instruments have that symbol.
    #[error(
        "{target}={path}: {target} is on several venues of the config ({matches}): bind with \
         VENUE:{target}=PATH"
    )]
    AmbiguousTarget {
        /// The `SYMBOL` given.
        target: String,
        /// The file.
        path: String,
        /// The instruments it could be.
        matches: String,
    },
    /// A file whose first lines name no stream.
    #[error(
        "{path}: cannot tell which instrument it is for: {found}; bind it with \
         SYMBOL=PATH or VENUE:SYMBOL=PATH"
    )]
    NoStream {
        /// The file.
        path: String,
        /// What its first lines hold.
        found: String,
    },
    /// A file whose streams name several symbols.
    #[error(
        "{path}: holds several symbols ({found}); a recording is one instrument's: split it, \
         one file per instrument"
    )]
    SeveralSymbols {
        /// The file.
        path: String,
        /// What its first lines hold.
        found: String,
    },
    /// A file that fits no instrument.
    #[error("{path}: fits no instrument of the config ({instruments}): it holds {found}")]
    NoInstrument {
        /// The file.
        path: String,
        /// What its first lines hold.
        found: String,
        /// The instruments.
        instruments: String,
    },
    /// A file that fits several instruments.
    #[error(
        "{path}: fits several instruments ({matches}): it holds {found}; bind it with \
         VENUE:SYMBOL=PATH"
    )]
    Ambiguous {
        /// The file.
        path: String,
        /// What its first lines hold.
        found: String,
        /// The instruments it fits.
        matches: String,
    },
    /// An instrument with no recording.
    #[error(
        "instrument {instrument} has no recording: give it one (--data {venue}:{symbol}=PATH)"
    )]
    Unbound {
        /// The instrument.
        instrument: String,
        /// Its venue name.
        venue: &'static str,
        /// Its symbol.
        symbol: String,
    },
}

/// Binds every recording of `specs` to one of the instruments `keys` (ids are positions):
/// the files of instrument `i`, in the order given. See the module documentation.
pub fn bind(keys: &[Key], specs: &[DataSpec]) -> Result<Vec<Vec<PathBuf>>, BindError> {
    if specs.is_empty() {
        return Err(BindError::NoData);
    }
    let mut files: Vec<Vec<PathBuf>> = vec![Vec::new(); keys.len()];
    for spec in specs {
        let id = match &spec.target {
            Some(t) => bind_target(keys, t, &spec.path)?,
            // One instrument: every file is its, unless its streams plainly name only other
            // symbols, or its depth diffs are plainly another venue's (spot for futures or the
            // reverse): a clear error, instead of a run whose book never syncs. A file that
            // cannot be read or names no stream is left to the run to report.
            None if keys.len() == 1 => match sniff(&spec.path) {
                Ok(s)
                    if (!s.symbols.is_empty()
                        && !s
                            .symbols
                            .iter()
                            .any(|x| keys[0].symbol.eq_ignore_case(x.as_bytes())))
                        || s.flavour().is_some_and(|f| !f.fits(keys[0].venue)) =>
                {
                    return Err(BindError::NoInstrument {
                        path: spec.path.display().to_string(),
                        found: s.describe(),
                        instruments: list(keys),
                    })
                }
                _ => 0,
            },
            None => bind_sniffed(keys, &spec.path)?,
        };
        files[id].push(spec.path.clone());
    }
    if let Some(i) = files.iter().position(Vec::is_empty) {
        let k = keys[i];
        return Err(BindError::Unbound {
            instrument: k.to_string(),
            venue: k.venue.name(),
            symbol: k.symbol.as_str().to_owned(),
        });
    }
    Ok(files)
}

/// [`bind`], answered as explicit bindings (`VENUE:SYMBOL=PATH` for every file, instrument by
/// instrument, each one's files in the order given): binding them again reads no file. For a
/// caller that checks the bindings before it starts anything.
pub fn resolve(keys: &[Key], specs: &[DataSpec]) -> Result<Vec<DataSpec>, BindError> {
    let files = bind(keys, specs)?;
    Ok(keys
        .iter()
        .zip(files)
        .flat_map(|(k, files)| {
            let target = Target {
                venue: Some(k.venue),
                symbol: k.symbol.as_str().to_owned(),
            };
            files
                .into_iter()
                .map(move |path| DataSpec::bound(target.clone(), path))
        })
        .collect())
}

/// [`bind`] for the instruments of `cfg`.
pub fn bind_config(cfg: &Config, specs: &[DataSpec]) -> Result<Vec<Vec<PathBuf>>, BindError> {
    bind(&Key::of_config(cfg), specs)
}

fn bind_target(keys: &[Key], t: &Target, path: &Path) -> Result<usize, BindError> {
    let matches: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].matches(t)).collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(BindError::UnknownTarget {
            arg: format!("{t}={}", path.display()),
            target: t.to_string(),
            instruments: format!("the config has {}", list(keys)),
        }),
        many => Err(BindError::AmbiguousTarget {
            target: t.to_string(),
            path: path.display().to_string(),
            matches: list(&many.iter().map(|&i| keys[i]).collect::<Vec<_>>()),
        }),
    }
}

fn bind_sniffed(keys: &[Key], path: &Path) -> Result<usize, BindError> {
    let s = sniff(path)?;
    let shown = path.display().to_string();
    let sym = match s.symbols.as_slice() {
        [one] => one,
        [] => {
            return Err(BindError::NoStream {
                path: shown,
                found: s.describe(),
            })
        }
        _ => {
            return Err(BindError::SeveralSymbols {
                path: shown,
                found: s.describe(),
            })
        }
    };
    let flavour = s.flavour();
    let matches: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i].symbol.eq_ignore_case(sym.as_bytes()))
        .filter(|&i| flavour.is_none_or(|f| f.fits(keys[i].venue)))
        .collect();
    // Both kinds of diff: no flavour to tell venues apart by, and a file that is not one
    // recording. Only an explicit binding can say which instrument it is.
    let mixed = s.futures_diffs > 0 && s.spot_diffs > 0;
    match matches.as_slice() {
        [one] if !mixed => Ok(*one),
        [] => Err(BindError::NoInstrument {
            path: shown,
            found: s.describe(),
            instruments: list(keys),
        }),
        many => Err(BindError::Ambiguous {
            path: shown,
            found: s.describe(),
            matches: list(&many.iter().map(|&i| keys[i]).collect::<Vec<_>>()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sym: &str, venue: VenueFlavour) -> Key {
        Key {
            symbol: Symbol::new(sym.as_bytes()).unwrap(),
            venue,
        }
    }

    /// USD-M BTCUSDT, spot BTCUSDT, COIN-M BTCUSD_PERP.
    fn keys() -> Vec<Key> {
        vec![
            key("BTCUSDT", VenueFlavour::BinanceUsdm),
            key("BTCUSDT", VenueFlavour::BinanceSpot),
            key("BTCUSD_PERP", VenueFlavour::BinanceCoinm),
        ]
    }

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("rm-bind-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }

        fn file(&self, name: &str, lines: &[&str]) -> PathBuf {
            let p = self.0.join(name);
            let text: String = lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{} {l}\n", 100 + i))
                .collect();
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const SNAP: &str = r#"{"lastUpdateId":7,"bids":[["1.0","1"]],"asks":[["1.1","1"]]}"#;

    fn futures_diff(stream_sym: &str, sym: &str) -> String {
        format!(
            r#"{{"stream":"{stream_sym}@depth@0ms","data":{{"e":"depthUpdate","E":1,"T":1,"s":"{sym}","U":5,"u":9,"pu":4,"b":[],"a":[]}}}}"#
        )
    }

    fn spot_diff(stream_sym: &str) -> String {
        format!(
            r#"{{"stream":"{stream_sym}@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":9,"b":[],"a":[]}}}}"#
        )
    }

    fn ticker(stream_sym: &str) -> String {
        format!(
            r#"{{"stream":"{stream_sym}@bookTicker","data":{{"u":1,"s":"BTCUSDT","b":"1.0","B":"1","a":"1.1","A":"1"}}}}"#
        )
    }

    #[test]
    fn sniffing_tells_futures_from_spot_and_reads_the_symbol_from_the_streams() {
        let d = Dir::new("sniff");
        let fut = d.file(
            "fut.txt",
            &[
                &ticker("btcusdt"),
                SNAP,
                &futures_diff("btcusdt", "BTCUSDT"),
            ],
        );
        let s = sniff(&fut).unwrap();
        assert_eq!(s.symbols, ["btcusdt"]);
        assert_eq!(s.flavour(), Some(Flavour::Futures));
        assert_eq!(s.lines, 3);
        let spot = d.file(
            "spot.txt",
            &[&spot_diff("BTCUSDT"), &ticker("btcusdt"), SNAP],
        );
        let s = sniff(&spot).unwrap();
        assert_eq!(s.symbols, ["btcusdt"], "stream names compare in lower case");
        assert_eq!(s.flavour(), Some(Flavour::Spot));
        assert_eq!(
            bind(&keys()[..2], &DataSpec::plain([&fut, &spot])).unwrap(),
            [vec![fut.clone()], vec![spot.clone()]]
        );
        // The same files in the other order, and a COIN-M one: each to its own instrument.
        let coinm = d.file(
            "coinm.txt",
            &[&futures_diff("btcusd_perp", "BTCUSD_PERP"), SNAP],
        );
        let files = bind(&keys(), &DataSpec::plain([&spot, &coinm, &fut])).unwrap();
        assert_eq!(files, [vec![fut], vec![spot], vec![coinm]]);
    }

    #[test]
    fn the_shipped_samples_sniff_as_what_they_are() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
        let usdm = sniff(&data.join("binance-usdm/btcusdt_20240808.gz")).unwrap();
        assert_eq!(
            (usdm.symbols.as_slice(), usdm.flavour()),
            (&["btcusdt".to_owned()][..], Some(Flavour::Futures))
        );
        assert_eq!(usdm.lines, SNIFF_MAX_LINES, "bounded");
        // The second spot file has no snapshot: its diffs say spot all the same.
        let spot2 = sniff(&data.join("binance-spot/btcusdt_20240809.gz")).unwrap();
        assert_eq!(spot2.flavour(), Some(Flavour::Spot));
        // The five files, in any order, each to its instrument (USD-M BTCUSDT, spot BTCUSDT,
        // COIN-M BTCUSD_PERP), each instrument's in the order given.
        let f = |rel: &str| data.join(rel);
        let (usdm, spot1, spot2) = (
            f("binance-usdm/btcusdt_20240808.gz"),
            f("binance-spot/btcusdt_20240808.gz"),
            f("binance-spot/btcusdt_20240809.gz"),
        );
        let (coinm1, coinm2) = (
            f("binance-coinm/btcusd_perp_20240808.gz"),
            f("binance-coinm/btcusd_perp_20240809.gz"),
        );
        let given = DataSpec::plain([&coinm1, &spot1, &usdm, &coinm2, &spot2]);
        assert_eq!(
            bind(&keys(), &given).unwrap(),
            [vec![usdm], vec![spot1, spot2], vec![coinm1, coinm2]]
        );
    }

    #[test]
    fn a_file_with_no_stream_or_several_symbols_or_no_fit_is_an_error_naming_it() {
        let d = Dir::new("errors");
        let none = d.file("none.txt", &[SNAP, "not json", r#"{"a":1}"#]);
        let e = bind(&keys(), &DataSpec::plain([&none])).unwrap_err();
        assert!(matches!(e, BindError::NoStream { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("none.txt") && msg.contains("no stream"),
            "{msg}"
        );
        let two = d.file(
            "two.txt",
            &[
                &futures_diff("btcusdt", "BTCUSDT"),
                &futures_diff("ethusdt", "ETHUSDT"),
            ],
        );
        let msg = bind(&keys(), &DataSpec::plain([&two]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("two.txt") && msg.contains("btcusdt, ethusdt"),
            "{msg}"
        );
        let eth = d.file("eth.txt", &[&futures_diff("ethusdt", "ETHUSDT")]);
        let msg = bind(&keys(), &DataSpec::plain([&eth]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("eth.txt")
                && msg.contains("fits no instrument")
                && msg.contains("ethusdt"),
            "{msg}"
        );
        // Futures BTCUSDT diffs with only a spot BTCUSDT instrument: no fit.
        let fut = d.file("fut.txt", &[&futures_diff("btcusdt", "BTCUSDT")]);
        let spot_only = [keys()[1], keys()[2]];
        let msg = bind(&spot_only, &DataSpec::plain([&fut]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("fits no instrument") && msg.contains("futures"),
            "{msg}"
        );
        // Tickers only: no flavour, and BTCUSDT is on two venues.
        let tick = d.file("tick.txt", &[&ticker("btcusdt")]);
        let e = bind(&keys(), &DataSpec::plain([&tick])).unwrap_err();
        assert!(matches!(e, BindError::Ambiguous { .. }), "{e}");
        // ... which one instrument of that symbol takes.
        let one_btc = [keys()[0], keys()[2]];
        let coinm = d.file("coinm.txt", &[&futures_diff("btcusd_perp", "BTCUSD_PERP")]);
        assert_eq!(
            bind(&one_btc, &DataSpec::plain([&tick, &coinm])).unwrap(),
            [vec![tick.clone()], vec![coinm]]
        );
        // Not a recording at all (a directory): no stream.
        let e = bind(&keys(), &DataSpec::plain([&d.0])).unwrap_err();
        assert!(matches!(e, BindError::NoStream { .. }), "{e:?}");
        assert!(matches!(
            bind(&keys(), &DataSpec::plain([d.0.join("missing.gz")])),
            Err(BindError::Open(_))
        ));
    }

    #[test]
    fn with_one_instrument_every_file_is_its_unless_it_names_only_other_symbols() {
        let d = Dir::new("single");
        let eth = d.file("eth.txt", &[&futures_diff("ethusdt", "ETHUSDT")]);
        let btc_futures = d.file("btc.txt", &[&futures_diff("btcusdt", "BTCUSDT")]);
        let one = [keys()[1]];
        // A directory, a missing file: bound to it, for the run to report.
        let specs = DataSpec::plain([d.0.clone(), d.0.join("missing.gz")]);
        assert_eq!(
            bind(&one, &specs).unwrap(),
            [vec![d.0.clone(), d.0.join("missing.gz")]]
        );
        // Its symbol in another venue's flavour (futures diffs for a spot instrument): an error
        // naming the file and what it holds, not a run whose book never syncs.
        let e = bind(&one, &DataSpec::plain([btc_futures.clone()])).unwrap_err();
        assert!(matches!(e, BindError::NoInstrument { .. }), "{e:?}");
        assert!(e.to_string().contains("with `pu`"), "{e}");
        // Streams of another symbol only: an error naming the file and what it holds.
        let e = bind(&one, &DataSpec::plain([eth.clone()])).unwrap_err();
        assert!(matches!(e, BindError::NoInstrument { .. }), "{e:?}");
        assert!(e.to_string().contains("ethusdt"), "{e}");
        // Bound explicitly, it is the user's word.
        let explicit = DataSpec::bound(Target::parse("BTCUSDT").unwrap(), eth.clone());
        assert_eq!(bind(&one, &[explicit]).unwrap(), [vec![eth]]);
        assert!(matches!(bind(&one, &[]), Err(BindError::NoData)));
    }

    #[test]
    fn explicit_bindings_are_not_read_and_every_instrument_needs_a_file() {
        let k = keys();
        let spot = DataSpec::bound(Target::parse("binance-spot:btcusdt").unwrap(), "/no/such/a");
        let usdm = DataSpec::bound(Target::parse("binance-usdm:BTCUSDT").unwrap(), "/no/such/b");
        let coinm = DataSpec::bound(Target::parse("BTCUSD_PERP").unwrap(), "/no/such/c");
        let spot2 = DataSpec::bound(Target::parse("binance-spot:BTCUSDT").unwrap(), "/no/such/d");
        let given = [spot, usdm.clone(), coinm.clone(), spot2];
        let files = bind(&k, &given).unwrap();
        // Resolved: explicit, by instrument, and binding them again gives the same files.
        let resolved = resolve(&k, &given).unwrap();
        assert_eq!(resolved[0].target, Target::parse("binance-usdm:BTCUSDT"));
        assert_eq!(resolved.len(), 4);
        assert_eq!(bind(&k, &resolved).unwrap(), files);
        assert_eq!(
            files[1],
            [PathBuf::from("/no/such/a"), PathBuf::from("/no/such/d")]
        );
        assert_eq!(files[0], [PathBuf::from("/no/such/b")]);
        // The spot instrument has none.
        let e = bind(&k, &[usdm.clone(), coinm.clone()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("BTCUSDT (binance-spot) has no recording"), "{e}");
        assert!(e.contains("binance-spot:BTCUSDT=PATH"), "{e}");
        // BTCUSDT alone is two instruments.
        let plain = DataSpec::bound(Target::parse("BTCUSDT").unwrap(), "/no/such/e");
        let e = bind(&k, &[plain, usdm, coinm]).unwrap_err();
        assert!(matches!(e, BindError::AmbiguousTarget { .. }), "{e}");
    }

    #[test]
    fn x_equals_is_a_binding_only_when_x_names_an_instrument() {
        let k = keys();
        let parse = |s: &str| DataSpec::parse_for(OsStr::new(s), &k);
        let b = parse("binance-spot:BTCUSDT=tests/data/binance-spot/btcusdt_20240808.gz").unwrap();
        assert_eq!(
            b.target,
            Some(Target {
                venue: Some(VenueFlavour::BinanceSpot),
                symbol: "BTCUSDT".into()
            })
        );
        assert_eq!(
            b.path,
            Path::new("tests/data/binance-spot/btcusdt_20240808.gz")
        );
        assert_eq!(
            parse("btcusd_perp=x.gz").unwrap().target.unwrap().symbol,
            "btcusd_perp"
        );
        // Plain paths, `=` or not.
        assert_eq!(
            parse("a/b.gz").unwrap(),
            DataSpec::from(PathBuf::from("a/b.gz"))
        );
        assert_eq!(parse("/tmp/run=1/x.gz").unwrap().target, None);
        assert_eq!(parse("./BTCUSDT=x.gz").unwrap().target, None);
        assert_eq!(parse("moon:BTCUSDT=x.gz").unwrap().target, None);
        // A file named like a binding: the file, when it exists and the binding's does not.
        let with_files = |s: &str, files: &[&str]| {
            let known = |t: &Target| k.iter().any(|k| k.matches(t));
            let exists = |p: &Path| files.iter().any(|f| Path::new(f) == p);
            DataSpec::parse_in(OsStr::new(s), known, String::new, &exists)
        };
        assert_eq!(
            with_files("ETHUSDT=1.txt", &["ETHUSDT=1.txt"])
                .unwrap()
                .target,
            None
        );
        assert_eq!(
            with_files("BTCUSDT=2.txt", &["BTCUSDT=2.txt"])
                .unwrap()
                .target,
            None
        );
        let both = with_files("BTCUSDT=2.txt", &["BTCUSDT=2.txt", "2.txt"]).unwrap();
        assert_eq!(both.path, Path::new("2.txt"), "both exist: the binding");
        // `X=` naming no instrument, and no such file: said.
        let e = parse("ETHUSDT=none.gz").unwrap_err().to_string();
        assert!(
            e.contains("ETHUSDT is not an instrument here")
                && e.contains("the config has BTCUSDT (binance-usdm), BTCUSDT (binance-spot)"),
            "{e}"
        );
        let e = parse("binance-coinm:BTCUSDT=none.gz")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("binance-coinm:BTCUSDT is not an instrument here"),
            "{e}"
        );
    }
}
