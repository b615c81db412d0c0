//! `ringmaker instruments`: a saved Binance `exchangeInfo` response → `[[instrument]]` config
//! blocks, one per symbol.
//!
//! The three products answer with differently shaped symbols, and the shape tells them apart:
//! - COIN-M (`GET /dapi/v1/exchangeInfo`): every symbol carries `contractSize` (USD per contract)
//!   and `contractStatus` instead of `status`; no notional filter.
//! - USDⓈ-M (`GET /fapi/v1/exchangeInfo`): `contractType` and `marginAsset`, no `contractSize`;
//!   the minimum notional is `MIN_NOTIONAL.notional`.
//! - spot (`GET /api/v3/exchangeInfo`): none of those; `isSpotTradingAllowed`, `permissions` /
//!   `permissionSets`; the minimum notional is `NOTIONAL.minNotional` (since 2023) or the older
//!   `MIN_NOTIONAL.minNotional`.
//!
//! Every decimal is copied as a string and only normalised as text (no float round trip).

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ringmaker instruments`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A saved Binance exchangeInfo response: USDⓈ-M (/fapi/v1/exchangeInfo), COIN-M
    /// (/dapi/v1/exchangeInfo) or spot (/api/v3/exchangeInfo); the product is told from its shape.
    #[arg(long, value_name = "FILE.json")]
    exchange_info: PathBuf,
    /// Print only this symbol (case-insensitive; repeat for more). Default: every symbol whose
    /// status is TRADING. A symbol named here is printed whatever its status, with a warning.
    #[arg(long = "symbol", value_name = "S")]
    symbols: Vec<String>,
}

/// Which Binance product a response comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Product {
    UsdM,
    CoinM,
    Spot,
}

impl Product {
    fn venue(self) -> &'static str {
        match self {
            Product::UsdM => "binance-usdm",
            Product::CoinM => "binance-coinm",
            Product::Spot => "binance-spot",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Product::UsdM => "linear",
            Product::CoinM => "inverse",
            Product::Spot => "spot",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Product::UsdM => "Binance USDⓈ-M",
            Product::CoinM => "Binance COIN-M",
            Product::Spot => "Binance spot",
        }
    }

    /// The product a symbol object's fields belong to, `None` when they fit none.
    fn of_symbol(sym: &Map<String, Value>) -> Option<Product> {
        if sym.contains_key("contractSize") {
            Some(Product::CoinM)
        } else if sym.contains_key("contractType") || sym.contains_key("marginAsset") {
            Some(Product::UsdM)
        } else if ["isSpotTradingAllowed", "permissions", "permissionSets"]
            .iter()
            .any(|k| sym.contains_key(*k))
        {
            Some(Product::Spot)
        } else {
            None
        }
    }
}

/// One symbol, read and checked, ready to print.
#[derive(Debug)]
struct Instrument {
    symbol: String,
    status: String,
    contract_type: Option<String>,
    base_asset: String,
    quote_asset: String,
    tick: String,
    lot: String,
    book_lot: String,
    min_qty: String,
    min_notional: String,
    contract_size: Option<String>,
}

/// `ringmaker instruments`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.exchange_info.display().to_string();
    let text =
        std::fs::read_to_string(&args.exchange_info).with_context(|| format!("reading {file}"))?;
    let doc = parse_json(&text).with_context(|| file.clone())?;
    let (product, symbols) = symbols_of(&doc).with_context(|| file.clone())?;

    let mut skipped = Vec::new();
    let chosen: Vec<&Map<String, Value>> = if args.symbols.is_empty() {
        let mut chosen = Vec::new();
        for sym in &symbols {
            let name = str_field(sym, "symbol").unwrap_or("?");
            match status_of(product, sym) {
                Ok("TRADING") => chosen.push(*sym),
                Ok(other) => skipped.push(format!("{name} {other}")),
                Err(e) => return Err(e.context(format!("{file}: {name}"))),
            }
        }
        chosen
    } else {
        select(&symbols, &args.symbols).with_context(|| file.clone())?
    };

    // Read every chosen symbol before printing any, so that a bad one prints nothing.
    let mut out = Vec::with_capacity(chosen.len());
    for sym in chosen {
        let name = str_field(sym, "symbol").unwrap_or("?").to_string();
        out.push(instrument(product, sym).with_context(|| format!("{file}: {name}"))?);
    }
    if !skipped.is_empty() {
        const SHOWN: usize = 5;
        let more = skipped.len().saturating_sub(SHOWN);
        let mut list = skipped[..skipped.len().min(SHOWN)].join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        errln!(
            "ringmaker: left out {} symbol{} not TRADING ({list}); name one with --symbol to print \
             it anyway",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" }
        );
    }
    for (i, inst) in out.iter().enumerate() {
        if i > 0 {
            outln!()?;
        }
        print_block(&file, product, inst)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The file's text as JSON.
fn parse_json(text: &str) -> anyhow::Result<Value> {
    if text.trim().is_empty() {
        bail!("the file is empty; expected a Binance exchangeInfo response (JSON)");
    }
    serde_json::from_str(text).context("not valid JSON")
}

/// The product and the symbol objects of an exchangeInfo response.
fn symbols_of(doc: &Value) -> anyhow::Result<(Product, Vec<&Map<String, Value>>)> {
    let top = doc
        .as_object()
        .ok_or_else(|| anyhow!("expected a JSON object (a Binance exchangeInfo response)"))?;
    if let (Some(code), Some(msg)) = (top.get("code"), top.get("msg")) {
        bail!("this is a Binance error response (code {code}: {msg}), not an exchangeInfo");
    }
    let list = top
        .get("symbols")
        .ok_or_else(|| anyhow!("no `symbols` array: not a Binance exchangeInfo response"))?
        .as_array()
        .ok_or_else(|| anyhow!("`symbols` is not an array"))?;
    if list.is_empty() {
        bail!("the `symbols` array is empty");
    }
    let mut product = None;
    let mut first = String::new();
    let mut symbols = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let sym = v
            .as_object()
            .ok_or_else(|| anyhow!("symbols[{i}] is not an object"))?;
        let name = str_field(sym, "symbol")
            .ok_or_else(|| anyhow!("symbols[{i}] has no `symbol` string"))?;
        let p = Product::of_symbol(sym).ok_or_else(|| {
            anyhow!(
                "{name}: cannot tell the product from the fields (no contractSize, contractType, \
                 marginAsset, isSpotTradingAllowed, permissions or permissionSets)"
            )
        })?;
        match product {
            None => {
                product = Some(p);
                first = name.to_string();
            }
            Some(q) if q != p => bail!(
                "mixed products: {first} looks like {} but {name} like {}",
                q.label(),
                p.label()
            ),
            Some(_) => {}
        }
        symbols.push(sym);
    }
    // `list` is not empty, so the loop set `product`.
    let product = product.ok_or_else(|| anyhow!("the `symbols` array is empty"))?;
    Ok((product, symbols))
}

/// The symbols named by `--symbol`, in the order named (a repeat printed once), matched
/// case-insensitively; every unknown name is reported at once.
fn select<'a>(
    symbols: &[&'a Map<String, Value>],
    wanted: &[String],
) -> anyhow::Result<Vec<&'a Map<String, Value>>> {
    let mut chosen: Vec<&'a Map<String, Value>> = Vec::new();
    let mut unknown = Vec::new();
    for w in wanted {
        let key = w.to_lowercase();
        let found = symbols
            .iter()
            .find(|s| str_field(s, "symbol").is_some_and(|name| name.to_lowercase() == key));
        match found {
            Some(s) if chosen.iter().any(|c| std::ptr::eq(*c, *s)) => {}
            Some(s) => chosen.push(s),
            None => unknown.push(w.as_str()),
        }
    }
    if !unknown.is_empty() {
        bail!(
            "no symbol {} in this exchangeInfo ({} symbols)",
            unknown.join(", "),
            symbols.len()
        );
    }
    Ok(chosen)
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str) -> anyhow::Result<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => bail!("`{key}` is empty"),
        Some(other) => bail!("`{key}` is {other}, expected a string"),
        None => bail!("no `{key}`"),
    }
}

/// `status` (spot, USDⓈ-M) or `contractStatus` (COIN-M).
fn status_of(product: Product, sym: &Map<String, Value>) -> anyhow::Result<&str> {
    let key = match product {
        Product::CoinM => "contractStatus",
        Product::UsdM | Product::Spot => "status",
    };
    required_str(sym, key)
}

/// The filter of this type in the symbol's `filters`, if any.
fn filter<'a>(
    sym: &'a Map<String, Value>,
    filter_type: &str,
) -> anyhow::Result<Option<&'a Map<String, Value>>> {
    let filters = sym
        .get("filters")
        .ok_or_else(|| anyhow!("no `filters`"))?
        .as_array()
        .ok_or_else(|| anyhow!("`filters` is not an array"))?;
    Ok(filters
        .iter()
        .filter_map(Value::as_object)
        .find(|f| str_field(f, "filterType") == Some(filter_type)))
}

/// Whether a decimal must be above zero or may be zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sign {
    Positive,
    NonNegative,
}

/// `filter_type.field` of the symbol, normalised; an error names the field when the filter or the
/// field is missing or the value is not a plain non-negative decimal.
fn filter_value(
    sym: &Map<String, Value>,
    filter_type: &str,
    field: &str,
    sign: Sign,
) -> anyhow::Result<String> {
    let f = filter(sym, filter_type)?.ok_or_else(|| anyhow!("no {filter_type} filter"))?;
    let v = f
        .get(field)
        .ok_or_else(|| anyhow!("{filter_type}.{field} is missing"))?;
    decimal_value(v, sign).with_context(|| format!("{filter_type}.{field}"))
}

/// A JSON string (or integer) as a normalised decimal.
fn decimal_value(v: &Value, sign: Sign) -> anyhow::Result<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        other => bail!("{other} is not a decimal string"),
    };
    let d = normalize_decimal(&text).map_err(|e| anyhow!("{text:?}: {e}"))?;
    if sign == Sign::Positive && d == "0" {
        bail!("{text:?}: must be above zero");
    }
    Ok(d)
}

/// `10^-digits` as a decimal string (`0` → `1`, `8` → `0.00000001`).
fn pow10_neg(digits: u64) -> anyhow::Result<String> {
    if digits > 18 {
        bail!("{digits} decimal places (at most 18)");
    }
    Ok(if digits == 0 {
        "1".to_string()
    } else {
        format!("0.{}1", "0".repeat(digits as usize - 1))
    })
}

/// `10^-field` from a precision field (an integer number of decimal places).
fn precision_grid(sym: &Map<String, Value>, key: &str) -> anyhow::Result<String> {
    let v = sym.get(key).ok_or_else(|| anyhow!("no `{key}`"))?;
    let digits = v
        .as_u64()
        .ok_or_else(|| anyhow!("`{key}` is {v}, expected a whole number of decimal places"))?;
    pow10_neg(digits).with_context(|| format!("`{key}`"))
}

/// Reads one symbol's instrument fields.
fn instrument(product: Product, sym: &Map<String, Value>) -> anyhow::Result<Instrument> {
    let symbol = required_str(sym, "symbol")?.to_string();
    let status = status_of(product, sym)?.to_string();
    let contract_type = str_field(sym, "contractType").map(str::to_string);
    let base_asset = required_str(sym, "baseAsset")?.to_string();
    let quote_asset = required_str(sym, "quoteAsset")?.to_string();
    let tick = filter_value(sym, "PRICE_FILTER", "tickSize", Sign::Positive)?;
    let lot = filter_value(sym, "LOT_SIZE", "stepSize", Sign::Positive)?;
    let min_qty = filter_value(sym, "LOT_SIZE", "minQty", Sign::NonNegative)?;
    let (book_lot, min_notional, contract_size) = match product {
        Product::UsdM => (
            precision_grid(sym, "quantityPrecision")?,
            filter_value(sym, "MIN_NOTIONAL", "notional", Sign::NonNegative)?,
            None,
        ),
        Product::CoinM => {
            let v = sym
                .get("contractSize")
                .ok_or_else(|| anyhow!("no `contractSize`"))?;
            let size = decimal_value(v, Sign::Positive).context("contractSize")?;
            ("1".to_string(), "0".to_string(), Some(size))
        }
        Product::Spot => {
            let min_notional = if filter(sym, "NOTIONAL")?.is_some() {
                filter_value(sym, "NOTIONAL", "minNotional", Sign::NonNegative)?
            } else if filter(sym, "MIN_NOTIONAL")?.is_some() {
                filter_value(sym, "MIN_NOTIONAL", "minNotional", Sign::NonNegative)?
            } else {
                bail!("no NOTIONAL or MIN_NOTIONAL filter (minNotional)");
            };
            (
                precision_grid(sym, "baseAssetPrecision")?,
                min_notional,
                None,
            )
        }
    };
    Ok(Instrument {
        symbol,
        status,
        contract_type,
        base_asset,
        quote_asset,
        tick,
        lot,
        book_lot,
        min_qty,
        min_notional,
        contract_size,
    })
}

/// One `[[instrument]]` block with its comments.
fn print_block(file: &str, product: Product, inst: &Instrument) -> anyhow::Result<()> {
    let mut about = format!("{}, status {}", product.label(), inst.status);
    match inst.contract_type.as_deref() {
        Some("") => about.push_str(", no contractType"),
        Some(ct) => about.push_str(&format!(", contractType {ct}")),
        None => {}
    }
    outln!(
        "# {} from {} ({})",
        comment_text(&inst.symbol),
        comment_text(file),
        comment_text(&about)
    )?;
    if inst.status != "TRADING" {
        outln!(
            "# WARNING: status {} is not TRADING: the venue takes no new orders for this symbol now.",
            comment_text(&inst.status)
        )?;
    }
    outln!("[[instrument]]")?;
    outln!("symbol = {}", toml_string(&inst.symbol))?;
    outln!("venue = \"{}\"", product.venue())?;
    outln!("kind = \"{}\"", product.kind())?;
    outln!("base_asset = {}", toml_string(&inst.base_asset))?;
    outln!("quote_asset = {}", toml_string(&inst.quote_asset))?;
    outln!("tick = \"{}\"", inst.tick)?;
    outln!("lot = \"{}\"", inst.lot)?;
    outln!("book_lot = \"{}\"", inst.book_lot)?;
    outln!("min_qty = \"{}\"", inst.min_qty)?;
    outln!("min_notional = \"{}\"", inst.min_notional)?;
    if let Some(size) = &inst.contract_size {
        outln!("contract_size = \"{size}\"")?;
    }
    if product.kind() == "spot" {
        outln!(
            "# Still to add: [instrument.balances] (base, quote: what the account holds), \
             [instrument.quote] and [instrument.risk] ([instrument.fees] is optional); template: \
             configs/spot-btcusdt.toml"
        )?;
    } else if product.kind() == "inverse" {
        outln!(
            "# Still to add: [instrument.quote] and [instrument.risk] (sizes in contracts, \
             daily_loss_limit in {}; [instrument.fees] is optional); template: \
             configs/coinm-btcusd-perp.toml",
            comment_text(&inst.base_asset)
        )?;
    } else {
        outln!(
            "# Still to add: [instrument.quote] and [instrument.risk] ([instrument.fees] is optional); \
             template: configs/default.toml"
        )?;
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text safe inside a `#` comment line (no line breaks or other control characters).
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A plain non-negative decimal string (`digits[.digits]`) in its shortest form: leading zeros
/// of the integer part and trailing zeros of the fraction dropped (`"0.10000000"` → `"0.1"`,
/// `"1.00000000"` → `"1"`, `"007"` → `"7"`, `"0.000"` → `"0"`). Exact: the text is only
/// rewritten, never converted to a float. Signs, exponents, spaces and anything else are errors.
fn normalize_decimal(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty, expected a decimal number".to_string());
    }
    if s.starts_with('-') {
        return Err("negative".to_string());
    }
    if s.contains(['e', 'E']) {
        return Err("an exponent, expected a plain decimal".to_string());
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err("not a decimal number".to_string());
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    Ok(if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_plain_decimals() {
        for (input, want) in [
            ("0.00000001", "0.00000001"),
            ("0.10000000", "0.1"),
            ("1.00000000", "1"),
            ("100.000", "100"),
            ("100", "100"),
            ("5", "5"),
            ("0.10", "0.1"),
            ("0", "0"),
            ("0.00000000", "0"),
            ("007.50", "7.5"),
            ("10.00000000", "10"),
            ("4520958", "4520958"),
            (".5", "0.5"),
            ("5.", "5"),
        ] {
            assert_eq!(normalize_decimal(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in [
            "", "-1", "-0.1", "1E-8", "1e-8", "1e3", "+1", " 1", "1 ", "1,5", "1.2.3", ".", "abc",
            "0x10", "NaN", "inf", "１",
        ] {
            assert!(normalize_decimal(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(normalize_decimal("-1").unwrap_err(), "negative");
        assert!(normalize_decimal("1E-8").unwrap_err().contains("exponent"));
        assert!(normalize_decimal("").unwrap_err().contains("empty"));
    }

    #[test]
    fn grid_from_precision() {
        assert_eq!(pow10_neg(0).unwrap(), "1");
        assert_eq!(pow10_neg(1).unwrap(), "0.1");
        assert_eq!(pow10_neg(3).unwrap(), "0.001");
        assert_eq!(pow10_neg(8).unwrap(), "0.00000001");
        assert!(pow10_neg(19).is_err());
    }

    #[test]
    fn decimal_values_from_json() {
        assert_eq!(
            decimal_value(&Value::from(100), Sign::Positive).unwrap(),
            "100"
        );
        assert_eq!(
            decimal_value(&Value::from("0.0100"), Sign::Positive).unwrap(),
            "0.01"
        );
        assert!(decimal_value(&Value::from("0.000"), Sign::Positive).is_err());
        assert_eq!(
            decimal_value(&Value::from("0.000"), Sign::NonNegative).unwrap(),
            "0"
        );
        assert!(decimal_value(&Value::from(0.1), Sign::Positive).is_err());
        assert!(decimal_value(&Value::from(-1), Sign::NonNegative).is_err());
        assert!(decimal_value(&Value::Null, Sign::NonNegative).is_err());
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("BTCUSDT"), "\"BTCUSDT\"");
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(toml_string("a\nb"), "\"a\\u000Ab\"");
        assert_eq!(comment_text("a\nb"), "a?b");
    }

    #[test]
    fn product_from_symbol_shape() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        let coinm = obj(serde_json::json!({"contractSize": 100, "contractType": "PERPETUAL"}));
        let usdm = obj(serde_json::json!({"contractType": "PERPETUAL", "marginAsset": "USDT"}));
        let spot = obj(serde_json::json!({"isSpotTradingAllowed": true}));
        let none = obj(serde_json::json!({"symbol": "X"}));
        assert_eq!(Product::of_symbol(&coinm), Some(Product::CoinM));
        assert_eq!(Product::of_symbol(&usdm), Some(Product::UsdM));
        assert_eq!(Product::of_symbol(&spot), Some(Product::Spot));
        assert_eq!(Product::of_symbol(&none), None);
    }
}
