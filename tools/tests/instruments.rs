//! `ringmaker instruments` on the real exchangeInfo responses in `tests/data/exchange-info/`
//! (provenance in `tests/data/PROVENANCE.md`), and on damaged copies of them.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    test_support::data(&format!("exchange-info/{name}"))
}

fn ringmaker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmaker"))
        .args(args)
        .output()
        .expect("run ringmaker")
}

/// `ringmaker instruments --exchange-info FILE [--symbol S]...`
fn instruments(file: &Path, symbols: &[&str]) -> Output {
    let mut args = vec!["instruments", "--exchange-info", file.to_str().unwrap()];
    for s in symbols {
        args.extend(["--symbol", s]);
    }
    ringmaker(&args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Exit 0, and the standard output.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr:\n{}",
        out.status.code(),
        stderr(&out)
    );
    stdout(&out)
}

/// Exit 2 with nothing on standard output and no panic; the standard error.
fn fails(out: Output) -> String {
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(out.stdout.is_empty(), "stdout:\n{}", stdout(&out));
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("ringmaker: error: "), "{err}");
    err
}

const TODO: &str = "# Still to add: [instrument.quote] and [instrument.risk] ([instrument.fees] \
                    is optional); template: configs/default.toml\n";
const TODO_INVERSE: &str = "# Still to add: [instrument.quote] and [instrument.risk] (sizes in \
                            contracts, daily_loss_limit in BTC; [instrument.fees] is optional); \
                            template: configs/coinm-btcusd-perp.toml\n";
const TODO_SPOT: &str = "# Still to add: [instrument.balances] (base, quote: what the account \
                         holds), [instrument.quote] and [instrument.risk] ([instrument.fees] is \
                         optional); template: configs/spot-btcusdt.toml\n";

/// The printed block, completed with the sections after `[[instrument]]`'s fields in a shipped
/// config, is a config the engine accepts, with the instrument the block describes.
#[test]
fn printed_blocks_complete_a_config_the_engine_accepts() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for (file, symbol, template, tick, lot, book_units_per_lot, contract_ticks) in [
        (
            "usdm.json",
            "BTCUSDT",
            "configs/default.toml",
            "0.01",
            "0.001",
            1,
            0,
        ),
        (
            "coinm.json",
            "BTCUSD_PERP",
            "configs/coinm-btcusd-perp.toml",
            "0.1",
            "1",
            1,
            1000,
        ),
        (
            "spot.json",
            "BTCUSDT",
            "configs/spot-btcusdt.toml",
            "0.01",
            "0.00001",
            1000,
            0,
        ),
    ] {
        let block = ok(instruments(&fixture(file), &[symbol]));
        let text = std::fs::read_to_string(format!("{root}/{template}")).unwrap();
        // The template's sections below the instrument's own fields.
        let sections = &text[text.find("\n[instrument.").unwrap()..];
        let cfg = engine::Config::from_toml(&format!("{block}{sections}"))
            .unwrap_or_else(|e| panic!("{file}: {e}\n{block}{sections}"));
        let i = &cfg.instruments[0].instrument;
        assert_eq!(i.symbol.as_str(), symbol);
        assert_eq!(i.tick.to_string(), tick, "{file}");
        assert_eq!(i.lot.to_string(), lot, "{file}");
        assert_eq!(i.book_units_per_lot, book_units_per_lot, "{file}");
        assert_eq!(i.contract_ticks, contract_ticks, "{file}");
    }
}

#[test]
fn usdm_btcusdt_block() {
    let file = fixture("usdm.json");
    let got = ok(instruments(&file, &["BTCUSDT"]));
    let want = format!(
        "# BTCUSDT from {} (Binance USDⓈ-M, status TRADING, contractType PERPETUAL)\n\
         [[instrument]]\n\
         symbol = \"BTCUSDT\"\n\
         venue = \"binance-usdm\"\n\
         kind = \"linear\"\n\
         base_asset = \"BTC\"\n\
         quote_asset = \"USDT\"\n\
         tick = \"0.01\"\n\
         lot = \"0.001\"\n\
         book_lot = \"0.001\"\n\
         min_qty = \"0.001\"\n\
         min_notional = \"5\"\n\
         {TODO}",
        file.display()
    );
    assert_eq!(got, want);
}

#[test]
fn coinm_btcusd_perp_block() {
    let file = fixture("coinm.json");
    let got = ok(instruments(&file, &["BTCUSD_PERP"]));
    let want = format!(
        "# BTCUSD_PERP from {} (Binance COIN-M, status TRADING, contractType PERPETUAL)\n\
         [[instrument]]\n\
         symbol = \"BTCUSD_PERP\"\n\
         venue = \"binance-coinm\"\n\
         kind = \"inverse\"\n\
         base_asset = \"BTC\"\n\
         quote_asset = \"USD\"\n\
         tick = \"0.1\"\n\
         lot = \"1\"\n\
         book_lot = \"1\"\n\
         min_qty = \"1\"\n\
         min_notional = \"0\"\n\
         contract_size = \"100\"\n\
         {TODO_INVERSE}",
        file.display()
    );
    assert_eq!(got, want);
}

#[test]
fn spot_btcusdt_block() {
    let file = fixture("spot.json");
    let got = ok(instruments(&file, &["BTCUSDT"]));
    let want = format!(
        "# BTCUSDT from {} (Binance spot, status TRADING)\n\
         [[instrument]]\n\
         symbol = \"BTCUSDT\"\n\
         venue = \"binance-spot\"\n\
         kind = \"spot\"\n\
         base_asset = \"BTC\"\n\
         quote_asset = \"USDT\"\n\
         tick = \"0.01\"\n\
         lot = \"0.00001\"\n\
         book_lot = \"0.00000001\"\n\
         min_qty = \"0.00001\"\n\
         min_notional = \"10\"\n\
         {TODO_SPOT}",
        file.display()
    );
    assert_eq!(got, want);
}

/// The `symbol = ` values of the printed blocks, in order.
fn printed_symbols(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("symbol = \""))
        .map(|s| s.trim_end_matches('"').to_string())
        .collect()
}

#[test]
fn without_symbol_every_trading_symbol_in_file_order() {
    let out = instruments(&fixture("usdm.json"), &[]);
    let err = stderr(&out);
    let text = ok(out);
    assert_eq!(
        printed_symbols(&text),
        ["BTCUSDT", "ETHUSDT", "BTCBUSD", "BTCUSDT_210924"]
    );
    assert_eq!(text.matches("[[instrument]]").count(), 4);
    assert!(!text.contains("BTCSTUSDT"), "{text}");
    assert!(err.contains("BTCSTUSDT PENDING_TRADING"), "{err}");
    // A quote asset other than USDT is still a linear contract.
    assert!(text.contains("symbol = \"BTCBUSD\"\nvenue = \"binance-usdm\"\nkind = \"linear\"\n"));
    // The quarterly contract keeps its own tick.
    assert!(text.contains("# BTCUSDT_210924 from "));
    assert!(text.contains("contractType CURRENT_QUARTER"));

    let coinm = ok(instruments(&fixture("coinm.json"), &[]));
    assert_eq!(
        printed_symbols(&coinm),
        ["BTCUSD_PERP", "BTCUSD_210924", "ETHUSD_PERP"]
    );
    // ETHUSD_PERP: 10 USD contracts, 0.01 tick.
    let eth = &coinm[coinm.find("symbol = \"ETHUSD_PERP\"").unwrap()..];
    assert!(eth.contains("tick = \"0.01\"\n"), "{eth}");
    assert!(eth.contains("contract_size = \"10\"\n"), "{eth}");

    let spot = ok(instruments(&fixture("spot.json"), &[]));
    assert_eq!(printed_symbols(&spot), ["ETHBTC", "BTCUSDT", "ETHUSDT"]);
    // ETHBTC: tickSize 0.00000100, minNotional 0.00010000 (BTC).
    assert!(
        spot.contains("tick = \"0.000001\"\nlot = \"0.0001\"\n"),
        "{spot}"
    );
    assert!(spot.contains("min_notional = \"0.0001\"\n"), "{spot}");
    // Only the inverse contracts carry a contract size.
    assert!(!spot.contains("contract_size") && !text.contains("contract_size"));
}

#[test]
fn symbol_filter_is_case_insensitive_ordered_and_deduplicated() {
    let text = ok(instruments(
        &fixture("usdm.json"),
        &["ethusdt", "BtcUsdt", "ETHUSDT"],
    ));
    assert_eq!(printed_symbols(&text), ["ETHUSDT", "BTCUSDT"]);
    // Blocks are separated by one blank line.
    assert!(text.contains(&format!("{TODO}\n# BTCUSDT from ")), "{text}");
}

#[test]
fn a_symbol_not_trading_is_printed_only_when_asked_for_with_a_warning() {
    let text = ok(instruments(&fixture("usdm.json"), &["btcstusdt"]));
    assert!(
        text.starts_with(&format!(
            "# BTCSTUSDT from {} (Binance USDⓈ-M, status PENDING_TRADING, no contractType)\n\
             # WARNING: status PENDING_TRADING is not TRADING",
            fixture("usdm.json").display()
        )),
        "{text}"
    );
    assert!(text.contains("tick = \"0.001\"\nlot = \"0.1\"\nbook_lot = \"0.1\"\n"));

    let spot = ok(instruments(&fixture("spot.json"), &["BCCBTC"]));
    assert!(
        spot.contains("# WARNING: status BREAK is not TRADING"),
        "{spot}"
    );
    assert_eq!(printed_symbols(&spot), ["BCCBTC"]);
}

#[test]
fn an_unknown_symbol_is_an_error_naming_it() {
    let out = instruments(
        &fixture("usdm.json"),
        &["BTCUSDT", "NOPEUSDT", "BTCUSD_PERP"],
    );
    let err = fails(out);
    assert!(err.contains("NOPEUSDT"), "{err}");
    assert!(err.contains("BTCUSD_PERP"), "{err}");
    assert!(err.contains("usdm.json"), "{err}");
}

/// A copy of a fixture, changed by `edit`, in `dir`.
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
    edit(&mut doc);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    path
}

/// The `filterType` filter object of `symbol`.
fn filter_of<'a>(doc: &'a mut Value, symbol: &str, filter_type: &str) -> &'a mut Value {
    doc["symbols"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["symbol"] == symbol)
        .unwrap()["filters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["filterType"] == filter_type)
        .unwrap()
}

#[test]
fn bad_filter_values_are_errors_naming_symbol_and_field() {
    let dir = test_support::TempDir::new("instruments-bad");
    let cases: [(&str, &str, &str, Value, &str); 6] = [
        (
            "PRICE_FILTER",
            "tickSize",
            "BTCUSDT",
            Value::from("abc"),
            "not a decimal",
        ),
        (
            "LOT_SIZE",
            "minQty",
            "BTCUSDT",
            Value::from("-0.001"),
            "negative",
        ),
        (
            "LOT_SIZE",
            "stepSize",
            "BTCUSDT",
            Value::from("1E-3"),
            "exponent",
        ),
        (
            "LOT_SIZE",
            "stepSize",
            "BTCUSDT",
            Value::from("0.000"),
            "above zero",
        ),
        (
            "MIN_NOTIONAL",
            "notional",
            "BTCUSDT",
            Value::from(""),
            "empty",
        ),
        (
            "PRICE_FILTER",
            "tickSize",
            "BTCUSDT",
            Value::Null,
            "not a decimal",
        ),
    ];
    for (filter_type, field, symbol, value, why) in cases {
        let path = edited(dir.path(), "usdm.json", |doc| {
            filter_of(doc, symbol, filter_type)[field] = value.clone();
        });
        // Asked for by name, and as one of all the symbols.
        for symbols in [&[symbol][..], &[]] {
            let err = fails(instruments(&path, symbols));
            for part in [symbol, &format!("{filter_type}.{field}"), why] {
                assert!(err.contains(part), "{filter_type}.{field} = {value}: {err}");
            }
        }
    }
    // A missing field, and a missing filter.
    let path = edited(dir.path(), "usdm.json", |doc| {
        let f = filter_of(doc, "ETHUSDT", "MIN_NOTIONAL");
        f.as_object_mut().unwrap().remove("notional");
    });
    let err = fails(instruments(&path, &["ETHUSDT"]));
    assert!(
        err.contains("ETHUSDT") && err.contains("MIN_NOTIONAL.notional is missing"),
        "{err}"
    );
    let path = edited(dir.path(), "coinm.json", |doc| {
        let filters = doc["symbols"][0]["filters"].as_array_mut().unwrap();
        filters.retain(|f| f["filterType"] != "LOT_SIZE");
    });
    let err = fails(instruments(&path, &["BTCUSD_PERP"]));
    assert!(
        err.contains("BTCUSD_PERP") && err.contains("no LOT_SIZE filter"),
        "{err}"
    );
    // A contract size that is not a positive whole number.
    let path = edited(dir.path(), "coinm.json", |doc| {
        doc["symbols"][0]["contractSize"] = Value::from(-100);
    });
    let err = fails(instruments(&path, &["BTCUSD_PERP"]));
    assert!(
        err.contains("BTCUSD_PERP") && err.contains("contractSize"),
        "{err}"
    );
}

#[test]
fn spot_minimum_notional_from_the_notional_filter_first() {
    let dir = test_support::TempDir::new("instruments-notional");
    // Today's spot responses carry NOTIONAL (minNotional, maxNotional, ...) instead of MIN_NOTIONAL.
    let path = edited(dir.path(), "spot.json", |doc| {
        let f = filter_of(doc, "BTCUSDT", "MIN_NOTIONAL");
        f["filterType"] = Value::from("NOTIONAL");
        f["minNotional"] = Value::from("5.00000000");
        f["maxNotional"] = Value::from("9000000.00000000");
    });
    let text = ok(instruments(&path, &["BTCUSDT"]));
    assert!(text.contains("min_notional = \"5\"\n"), "{text}");
    // With both, NOTIONAL wins.
    let path = edited(dir.path(), "spot.json", |doc| {
        let symbol = doc["symbols"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|s| s["symbol"] == "BTCUSDT")
            .unwrap();
        symbol["filters"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "filterType": "NOTIONAL", "minNotional": "7.00000000", "applyMinToMarket": true,
                "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5
            }));
    });
    let text = ok(instruments(&path, &["BTCUSDT"]));
    assert!(text.contains("min_notional = \"7\"\n"), "{text}");
    // With neither, an error.
    let path = edited(dir.path(), "spot.json", |doc| {
        let symbol = &mut doc["symbols"][0];
        symbol["filters"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["filterType"] != "MIN_NOTIONAL");
    });
    let err = fails(instruments(&path, &["ETHBTC"]));
    assert!(err.contains("ETHBTC") && err.contains("NOTIONAL"), "{err}");
}

#[test]
fn unreadable_input_is_a_clear_error() {
    let dir = test_support::TempDir::new("instruments-input");

    let missing = dir.join("nope.json");
    let err = fails(instruments(&missing, &[]));
    assert!(
        err.contains("nope.json") && err.contains("No such file"),
        "{err}"
    );

    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let err = fails(instruments(&empty, &[]));
    assert!(err.contains("empty.json") && err.contains("empty"), "{err}");

    let truncated = dir.join("truncated.json");
    let text = std::fs::read_to_string(fixture("usdm.json")).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let err = fails(instruments(&truncated, &[]));
    assert!(
        err.contains("truncated.json") && err.contains("not valid JSON"),
        "{err}"
    );

    let binary = dir.join("binary.json");
    std::fs::write(&binary, [0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe]).unwrap();
    let err = fails(instruments(&binary, &[]));
    assert!(err.contains("binary.json"), "{err}");

    // What Binance answers for a bad request is not an exchangeInfo.
    let error = dir.join("error.json");
    std::fs::write(&error, r#"{"code":-1121,"msg":"Invalid symbol."}"#).unwrap();
    let err = fails(instruments(&error, &[]));
    assert!(
        err.contains("-1121") && err.contains("Invalid symbol."),
        "{err}"
    );

    let other = dir.join("other.json");
    std::fs::write(
        &other,
        r#"{"symbols":[{"symbol":"BTCUSDT","status":"TRADING"}]}"#,
    )
    .unwrap();
    let err = fails(instruments(&other, &[]));
    assert!(
        err.contains("BTCUSDT") && err.contains("cannot tell the product"),
        "{err}"
    );
}

#[test]
fn help_lists_the_command() {
    let text = ok(ringmaker(&["--help"]));
    assert!(
        text.contains("instruments")
            && text.contains("Print [[instrument]] config blocks from a Binance exchangeInfo"),
        "{text}"
    );
}
