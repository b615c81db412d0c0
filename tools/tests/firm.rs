//! Firm-wide risk end to end (issue 19): two live engines on two symbols of one base asset
//! (BTCUSDT and BTCUSDC) against `ringmaker venue` over TLS, sharing a `[firm]` BTC limit over
//! a real `nats-server`. Each engine's ladder alone (18 layers of 0.002 BTC a side, about
//! 2,200 USD) is past the limit, and each has a share of the whole limit, so only the sharing
//! keeps them inside it. Checked from both journals: the two engines' worst-case gross exposure
//! (position plus every open order on the larger side) never passes the limit together. A peer
//! frozen (SIGSTOP) is counted at its whole share: the other's claim shrinks to what it uses.
//! One `ctl --bus ... halt` stops both within a second. Both journals replay identical.
//!
//! The BTCUSDC market is the shipped BTCUSDT recording relabelled (a second symbol of the same
//! base asset for the venue to serve; its prices are BTCUSDT's).

mod common;

use common::{http_get, ringmaker, root, venue_serving, VenueProc};
use runtime::bus::{self, Heartbeat};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The firm's BTC limit, USD: gross and net.
const LIMIT: f64 = 1500.0;
/// USD per lot-tick of BTCUSDT/BTCUSDC (0.001 BTC × 0.10 USD).
const USD_PER_LOT_TICK: f64 = 0.0001;

const HMAC_KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
const HMAC_SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
const ED_KEY: &str = "ed25519-test-key-python-binance";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The default config with `symbol` for BTCUSDT, plus `extra`.
fn config_for(dir: &Path, name: &str, symbol: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(root("configs/default.toml"))
        .unwrap()
        .replace("symbol = \"BTCUSDT\"", &format!("symbol = \"{symbol}\""));
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n{extra}\n")).unwrap();
    p
}

/// The BTCUSDT recording as BTCUSDC.
fn relabelled(dir: &Path) -> PathBuf {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root("tests/data/binance-usdm/btcusdt_20240808.gz")).unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    let text = text
        .replace("btcusdt@", "btcusdc@")
        .replace("\"BTCUSDT\"", "\"BTCUSDC\"");
    let p = dir.join("btcusdc.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    p
}

/// Two accounts with USDT and USDC: the HMAC one and the Ed25519 one.
fn accounts(dir: &Path) -> PathBuf {
    let pubkey = root("configs/venue-accounts/python-binance_ed25519_test_key.pub.pem");
    let p = dir.join("accounts.toml");
    std::fs::write(
        &p,
        format!(
            "[[account]]\napi_key = \"{HMAC_KEY}\"\nhmac_secret = \"{HMAC_SECRET}\"\n\
             [account.balances]\nUSDT = \"10000\"\nUSDC = \"10000\"\n\n\
             [[account]]\napi_key = \"{ED_KEY}\"\ned25519_public_key = \"{}\"\n\
             [account.balances]\nUSDT = \"10000\"\nUSDC = \"10000\"\n",
            pubkey.display()
        ),
    )
    .unwrap();
    p
}

fn start(v: &VenueProc, cfg: &Path, out: &Path, url: &str, engine: &str, key: &Path) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringmaker"));
    c.args(v.run_args("--live", out, cfg, "30"))
        .args(["--bus", url, "--engine", engine])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if engine == "eng-a" {
        c.env("RINGMAKER_API_KEY", HMAC_KEY)
            .env("RINGMAKER_API_SECRET", HMAC_SECRET)
            .env_remove("RINGMAKER_ED25519_KEY_FILE");
    } else {
        c.env("RINGMAKER_API_KEY", ED_KEY)
            .env_remove("RINGMAKER_API_SECRET")
            .env("RINGMAKER_ED25519_KEY_FILE", key);
    }
    Proc(c.spawn().expect("start ringmaker run --live"))
}

/// Gross use of an engine's BTC, USD, from its heartbeat.
fn gross_use(h: &Heartbeat) -> f64 {
    h.instruments
        .iter()
        .filter_map(runtime::firm::exposure)
        .map(|(l, s)| l.max(s).max(0.0))
        .sum()
}

fn gross_claim(h: &Heartbeat) -> Option<f64> {
    h.claims.iter().find(|c| c.asset == "BTC")?.gross
}

/// Every change of one engine's worst-case gross exposure, from its journal: `(time ns, USD)`,
/// open orders from their place intent to their end (fill, cancel, reject, expiry) at their
/// own price, the position at the dearest price seen (pessimistic).
fn exposures(journal: &Path) -> Vec<(i64, f64)> {
    let dump = ringmaker(&["journal", "dump", journal.to_str().unwrap()]);
    assert!(dump.status.success());
    let text = String::from_utf8_lossy(&dump.stdout);
    let field = |d: &str, k: &str| -> Option<i64> {
        let v = d.split(' ').find_map(|w| w.strip_prefix(k))?;
        match v.strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    };
    // cid → (bid, price, remaining lots)
    let mut open: BTreeMap<i64, (bool, i64, i64)> = BTreeMap::new();
    let (mut pos, mut dearest) = (0i64, 0i64);
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        let [_, t, kind, d] = cols[..] else { continue };
        let Ok(t) = t.parse::<i64>() else { continue };
        let fill = |open: &mut BTreeMap<i64, (bool, i64, i64)>, pos: &mut i64, cid, lots: i64| {
            if let Some(o) = open.get_mut(&cid) {
                let lots = lots.min(o.2);
                *pos += if o.0 { lots } else { -lots };
                o.2 -= lots;
            }
        };
        if kind == "intent" && d.starts_with("Place ") {
            let (cid, px, qty) = (field(d, "cid="), field(d, "px="), field(d, "qty="));
            let (Some(cid), Some(px), Some(qty)) = (cid, px, qty) else {
                continue;
            };
            dearest = dearest.max(px);
            open.insert(cid, (d.starts_with("Place Bid"), px, qty));
        } else if kind == "event" && d.starts_with("ExecReport ") {
            let Some(cid) = field(d, "cid=") else {
                continue;
            };
            fill(&mut open, &mut pos, cid, field(d, "last=").unwrap_or(0));
            let ends = [" Fill ", " Canceled ", " Rejected ", " Expired "]
                .iter()
                .any(|k| d.contains(k));
            if ends {
                open.remove(&cid);
            }
        } else if kind == "event" && d.starts_with("ReconcileOrder ") {
            // The venue's view of one of ours: a fill the reports missed, or its end.
            let Some(cid) = field(d, "cid=") else {
                continue;
            };
            let (qty, cum) = (field(d, "qty=").unwrap_or(0), field(d, "cum=").unwrap_or(0));
            if let Some(&(_, _, left)) = open.get(&cid) {
                let done = qty - left;
                fill(&mut open, &mut pos, cid, (cum - done).max(0));
            }
            if d.ends_with(" closed") {
                open.remove(&cid);
            }
        } else if kind == "event" && d.starts_with("ReconcilePosition ") {
            pos = field(d, "qty=").unwrap_or(pos);
        } else {
            continue;
        }
        let lots_usd = |lots: i64, px: i64| lots as f64 * px as f64 * USD_PER_LOT_TICK;
        let bid_usd: f64 = open
            .values()
            .filter(|o| o.0)
            .map(|o| lots_usd(o.2, o.1))
            .sum();
        let ask_usd: f64 = open
            .values()
            .filter(|o| !o.0)
            .map(|o| lots_usd(o.2, o.1))
            .sum();
        let pos_usd = lots_usd(pos, dearest);
        out.push((t, (pos_usd + bid_usd).max(-pos_usd + ask_usd).max(0.0)));
    }
    out
}

#[test]
fn two_engines_share_a_firm_limit_neither_breaches_it_and_a_silent_one_counts_whole() {
    let Some(bin) = test_support::nats::nats_server_or_skip("firm") else {
        return;
    };
    let dir = test_support::TempDir::new("firm-e2e");
    let d = dir.path();
    let nats = test_support::nats::NatsServer::start(&bin);
    let url = nats.url.clone();

    // The venue serves both symbols, for two accounts.
    let venue_cfg = config_for(d, "venue.toml", "BTCUSDT", "");
    let both = std::fs::read_to_string(&venue_cfg).unwrap();
    let usdc_inst = &both[both.find("[[instrument]]").unwrap()..];
    std::fs::write(
        &venue_cfg,
        format!(
            "{both}\n{}",
            usdc_inst.replace("symbol = \"BTCUSDT\"", "symbol = \"BTCUSDC\"")
        ),
    )
    .unwrap();
    let usdc = relabelled(d);
    let rec = root("tests/data/binance-usdm/btcusdt_20240808.gz");
    let v = venue_serving(
        d,
        &venue_cfg,
        &[
            format!("BTCUSDT={}", rec.display()).into(),
            format!("BTCUSDC={}", usdc.display()).into(),
        ],
        &["--accounts".into(), accounts(d).into()],
    );
    let key = d.join("ed25519.pem");
    std::fs::copy(
        root("tests/data/signatures/python-binance_ed25519_test_key.pem"),
        &key,
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // Each engine may use the whole limit alone; together they must share it.
    let firm = format!(
        "[bus]\nheartbeat_ms = 100\n\n[firm]\nshares = {{ eng-a = 1.0, eng-b = 1.0 }}\n\
         [[firm.asset]]\nasset = \"BTC\"\ngross_notional = {LIMIT}\nnet_notional = {LIMIT}\n"
    );
    let metrics = format!("127.0.0.1:{}", test_support::nats::free_port());
    let cfg_a = config_for(
        d,
        "a.toml",
        "BTCUSDT",
        &format!("{firm}\n[ops]\nmetrics_listen = \"{metrics}\"\n"),
    );
    let cfg_b = config_for(d, "b.toml", "BTCUSDC", &firm);
    let (out_a, out_b) = (d.join("a"), d.join("b"));
    let mut a = start(&v, &cfg_a, &out_a, &url, "eng-a", &key);
    let mut b = start(&v, &cfg_b, &out_b, &url, "eng-b", &key);

    // Both quote, each claiming part of the limit, together within it.
    let seen = bus::watch_heartbeats(&url, "ringmaker", Duration::from_secs(40), |hs| {
        ["eng-a", "eng-b"].iter().all(|n| {
            hs.iter().rev().find(|h| h.engine == *n).is_some_and(|h| {
                h.instruments[0].mode == "normal"
                    && h.instruments[0].open_lots.iter().all(|&l| l > 0)
                    && gross_claim(h).is_some_and(|c| c > 0.0)
            })
        })
    })
    .expect("watch");
    let last = |n: &str| seen.iter().rev().find(|h| h.engine == n).cloned();
    let (ha, hb) = (last("eng-a").expect("eng-a"), last("eng-b").expect("eng-b"));
    let (ca, cb) = (gross_claim(&ha).unwrap(), gross_claim(&hb).unwrap());
    assert!(ca + cb <= LIMIT * (1.0 + 1e-9), "claims {ca} + {cb}");
    assert!(gross_use(&ha) <= ca + 1e-6 && gross_use(&hb) <= cb + 1e-6);

    // The firm on eng-a's /metrics, which promtool accepts.
    let text = http_get(&metrics, "/metrics").expect("eng-a's metrics");
    for series in [
        "ringmaker_firm_claim_usd{asset=\"BTC\",limit=\"gross\"}",
        "ringmaker_firm_claim_usd{asset=\"BTC\",limit=\"long\"}",
        "ringmaker_firm_room_usd{instrument=\"binance-usdm:BTCUSDT\",side=\"buy\"}",
        "ringmaker_firm_halted 0",
        "ringmaker_firm_limits_total",
        "ringmaker_firm_pnl_usd",
        "ringmaker_bus_peers{state=\"live\"} 1",
        "ringmaker_bus_archive_records_total",
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }
    common::promtool_check_metrics(&text);

    // eng-b frozen: past three of its periods (and 1 s), eng-a counts it at its whole share
    // (the whole limit): no room beyond what eng-a already uses.
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: `kill` reads no memory of ours; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(b.0.id() as i32, libc::SIGSTOP) };
    let frozen = Instant::now();
    let seen = bus::watch_heartbeats(&url, "ringmaker", Duration::from_secs(4), |hs| {
        frozen.elapsed() > Duration::from_millis(1_600)
            && hs
                .iter()
                .rev()
                .find(|h| h.engine == "eng-a")
                .is_some_and(|h| gross_claim(h).is_some_and(|c| (c - gross_use(h)).abs() < 1e-6))
    })
    .expect("watch");
    // SAFETY: as above.
    unsafe { libc::kill(b.0.id() as i32, libc::SIGCONT) };
    let ha = seen
        .iter()
        .rev()
        .find(|h| h.engine == "eng-a")
        .expect("eng-a while eng-b is frozen");
    let (claim, used) = (gross_claim(ha).unwrap(), gross_use(ha));
    assert!(
        frozen.elapsed() > Duration::from_millis(1_600) && (claim - used).abs() < 1e-6,
        "eng-a's claim {claim} with eng-b silent, using {used}"
    );

    // One command stops both within a second.
    std::thread::sleep(Duration::from_secs(4));
    let t0 = Instant::now();
    let halt = ringmaker(&["ctl", "--bus", &url, "--expect", "2", "halt"]);
    let took = t0.elapsed();
    let text = String::from_utf8_lossy(&halt.stdout);
    assert!(halt.status.success(), "{text}");
    assert!(took < Duration::from_secs(1), "halt took {took:?}");
    assert_eq!(text.matches("halted (kill_switch)").count(), 2, "{text}");

    let mut logs = Vec::new();
    for p in [&mut a, &mut b] {
        let mut s = String::new();
        p.0.stdout.take().unwrap().read_to_string(&mut s).unwrap();
        p.0.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        let status = p.0.wait().unwrap();
        assert!(status.success(), "{status:?}\n{s}");
        logs.push(s);
    }
    assert!(
        logs[0].contains("peer eng-b is stale"),
        "eng-a's log:\n{}",
        logs[0]
    );
    // The same [firm] in both: no mismatch said.
    for l in &logs {
        assert!(!l.contains("runs another [firm] section"), "{l}");
    }

    // From both journals: the firm's worst-case gross never passed the limit. Prices move a
    // little between a claim (at the fair value) and the orders' own prices: 1 %.
    let (ja, jb) = (out_a.join("journal"), out_b.join("journal"));
    let (xa, xb) = (exposures(&ja), exposures(&jb));
    assert!(xa.len() > 10 && xb.len() > 10);
    let mut all: Vec<(i64, usize, f64)> = xa
        .iter()
        .map(|&(t, u)| (t, 0, u))
        .chain(xb.iter().map(|&(t, u)| (t, 1, u)))
        .collect();
    all.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let mut now = [0.0f64; 2];
    let mut worst = (0.0f64, 0i64);
    for (t, k, u) in all {
        now[k] = u;
        if now[0] + now[1] > worst.0 {
            worst = (now[0] + now[1], t);
        }
    }
    let alone = [xa.iter(), xb.iter()].map(|x| x.map(|p| p.1).fold(0.0, f64::max));
    assert!(
        worst.0 <= LIMIT * 1.01,
        "the firm at {:.2} USD at {} (limit {LIMIT}); each engine's most: {alone:?}",
        worst.0,
        worst.1
    );
    eprintln!(
        "the firm's worst-case gross at most {:.2} USD of {LIMIT}; each engine's most: {alone:?}",
        worst.0
    );
    // The limit bound them: together they came near it.
    assert!(worst.0 > LIMIT * 0.5, "{worst:?} {alone:?}");

    for j in [&ja, &jb] {
        let dump = ringmaker(&["journal", "dump", j.to_str().unwrap()]);
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("FirmLimit long_units="), "{j:?}");
        let replay = ringmaker(&["replay", j.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&replay.stdout);
        assert!(text.lines().any(|l| l.starts_with("identical: ")), "{text}");
    }
    drop(v);
}
