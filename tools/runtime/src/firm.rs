//! Firm-wide risk: limits shared by the engines on one bus (`[firm]`), turned into each
//! instrument's long and short room ([`engine::FirmLimit`]) on the bus thread.
//!
//! # The rule
//!
//! Per asset (`BTC`: every engine's instruments with that base asset), in USD with the USD
//! stablecoins at par:
//! - **gross**: Σ over engines and instruments of the worst-case position, `max(position + open
//!   bids, −position + open asks)`;
//! - **net**, each way: Σ over engines of `max(0, Σ over its instruments of position + open
//!   bids)` long, the same with the asks short. One engine's short never makes room for another's
//!   long: either may close its side at any time.
//!
//! Each engine publishes a **claim** per limit in its heartbeat: the most it may reach. It
//! computes its own as
//!
//! `target = min(share · L, use + max(0, L − use − others) · share / Σ shares)`
//!
//! where `others` is the sum of the other engines' claims: a live peer's published claim (for
//! an engine without `[firm]`, its reported exposure), a stopped peer's last exposure (its
//! position: its shutdown cancelled its orders), and a stale peer, or one named in `shares` and
//! never heard, at its whole share (`share · L`) or its last claim if larger. Engines that compute from the same claims together take at most the free room, so
//! shares may add up to more than 1: an idle engine's room goes to a busy one.
//!
//! A claim rises only once every live peer's heartbeat says it has heard this engine's current
//! claim (the heartbeat's `heard`), so no engine raises twice on a view the others have not
//! caught up with; lowering is always allowed. A claim is never below the engine's own use.
//!
//! **Daily loss**: the firm's PnL since the UTC day's start is the sum of the engines' (a
//! stale or never-heard peer at `min(its last, −share · daily_loss)`); at or below
//! `−daily_loss` every engine halts ([`engine::ModeReason::FirmLoss`]) while it stays there.

use crate::bus::{Heartbeat, InstrumentState, PeerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most engines `shares` may name.
pub const MAX_ENGINES: usize = 256;
/// The most assets `[[firm.asset]]` may list.
pub const MAX_ASSETS: usize = 64;
/// The largest limit, USD.
pub const MAX_LIMIT: f64 = 1e15;

/// `[firm]`: limits across every engine that shares the budget. Each engine's config carries the
/// same section (one file included by all, or the same text).
///
/// ```toml
/// [firm]
/// daily_loss = 2000                       # the firm's loss per UTC day, USD: every engine halts
/// shares = { eng-a = 0.6, eng-b = 0.6 }   # each engine's share of every limit, 0 < s <= 1
/// [[firm.asset]]
/// asset = "BTC"                           # base asset: every engine's BTC instruments
/// gross_notional = 150000                 # USD
/// net_notional = 100000                   # USD, each way
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FirmConfig {
    /// Each engine's share of every limit, by name.
    #[serde(default)]
    pub shares: BTreeMap<String, f64>,
    /// The firm's loss per UTC day, USD.
    #[serde(default)]
    pub daily_loss: Option<f64>,
    /// Notional limits per base asset.
    #[serde(default)]
    pub asset: Vec<AssetLimit>,
}

// `check` refuses every value that is not finite, so equality is reflexive.
impl Eq for FirmConfig {}

/// One `[[firm.asset]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLimit {
    /// The base asset (`BTC`).
    pub asset: String,
    /// Σ worst-case |position|, USD.
    #[serde(default)]
    pub gross_notional: Option<f64>,
    /// Σ worst-case position each way, USD.
    #[serde(default)]
    pub net_notional: Option<f64>,
}

/// Why `[firm]` cannot be used: the field, the value, the rule.
pub type Invalid = (&'static str, String, &'static str);

impl FirmConfig {
    /// A short digest of the section as read (every engine of the budget must carry the same):
    /// the first 16 hex digits of the SHA-256 of its canonical JSON.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let json = serde_json::to_vec(self).unwrap_or_default();
        sha2::Sha256::digest(&json)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether the section is there at all.
    pub fn is_on(&self) -> bool {
        !self.shares.is_empty() || self.daily_loss.is_some() || !self.asset.is_empty()
    }

    /// Checks the section for the run of engine `me` (the bus's name; `None`: no bus): the
    /// values ([`FirmConfig::check`]), a bus, and a share for `me`.
    pub fn check_engine(&self, me: Option<&str>) -> Result<(), Invalid> {
        if !self.is_on() {
            return Ok(());
        }
        self.check()?;
        let Some(me) = me else {
            return Err((
                "firm",
                "(no bus)".into(),
                "firm-wide limits are shared over the bus: [bus] url and engine (or --bus, \
                 --engine) are needed",
            ));
        };
        if !self.shares.contains_key(me) {
            return Err((
                "firm.shares",
                format!("(no share for {me})"),
                "this engine needs a share: [firm] shares = { NAME = 0.5, ... }",
            ));
        }
        Ok(())
    }

    /// Checks the section's values.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.shares.len() > MAX_ENGINES {
            return Err((
                "firm.shares",
                self.shares.len().to_string(),
                "at most 256 engines",
            ));
        }
        for (name, s) in &self.shares {
            if !crate::bus::is_token(name) {
                return Err((
                    "firm.shares",
                    name.clone(),
                    "engine names as in [bus] engine",
                ));
            }
            if !(s.is_finite() && *s > 0.0 && *s <= 1.0) {
                return Err((
                    "firm.shares",
                    format!("{name} = {s}"),
                    "a share is above 0 and at most 1 (shares may add up to more than 1)",
                ));
            }
        }
        if let Some(d) = self.daily_loss {
            if !(d.is_finite() && d > 0.0 && d <= MAX_LIMIT) {
                return Err((
                    "firm.daily_loss",
                    d.to_string(),
                    "above 0 and at most 1e15 USD",
                ));
            }
        }
        if self.asset.len() > MAX_ASSETS {
            return Err((
                "firm.asset",
                self.asset.len().to_string(),
                "at most 64 assets",
            ));
        }
        for (k, a) in self.asset.iter().enumerate() {
            let ok = !a.asset.is_empty()
                && a.asset.len() <= 16
                && a.asset
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                return Err((
                    "firm.asset.asset",
                    a.asset.clone(),
                    "a base asset in capitals (BTC), 16 characters at most",
                ));
            }
            if self.asset[..k].iter().any(|b| b.asset == a.asset) {
                return Err(("firm.asset.asset", a.asset.clone(), "each asset once"));
            }
            if a.gross_notional.is_none() && a.net_notional.is_none() {
                return Err((
                    "firm.asset",
                    a.asset.clone(),
                    "an asset needs gross_notional, net_notional or both",
                ));
            }
            for (field, v) in [
                ("firm.asset.gross_notional", a.gross_notional),
                ("firm.asset.net_notional", a.net_notional),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0 && v <= MAX_LIMIT) {
                        return Err((field, v.to_string(), "above 0 and at most 1e15 USD"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether money in `asset` counts at par with the US dollar.
pub fn usd_at_par(asset: &str) -> bool {
    matches!(
        asset,
        "USD" | "USDT" | "USDC" | "FDUSD" | "BUSD" | "TUSD" | "USDP" | "DAI"
    )
}

/// An engine's claim on one asset's limits, USD (`None`: the asset has no such limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The base asset.
    pub asset: String,
    /// On the gross limit.
    pub gross: Option<f64>,
    /// On the net limit, long.
    pub long: Option<f64>,
    /// On the net limit, short.
    pub short: Option<f64>,
}

/// One instrument's worst-case exposure, USD: `(long, short)` = `(position + open bids,
/// −position + open asks)`; `None` when its quote is not at par with the dollar.
pub fn exposure(s: &InstrumentState) -> Option<(f64, f64)> {
    if !usd_at_par(&s.quote) {
        return None;
    }
    let ok = |v: f64| if v.is_finite() { v } else { 0.0 };
    Some((
        ok(s.position_notional + s.open_notional[0]),
        ok(-s.position_notional + s.open_notional[1]),
    ))
}

/// What one engine uses of an asset: `[gross, long, short]`, USD.
fn uses(instruments: &[InstrumentState], asset: &str) -> [f64; 3] {
    let (mut gross, mut long, mut short) = (0.0, 0.0, 0.0);
    for s in instruments.iter().filter(|s| s.asset == asset) {
        if let Some((l, sh)) = exposure(s) {
            gross += l.max(sh).max(0.0);
            long += l;
            short += sh;
        }
    }
    [gross, long.max(0.0), short.max(0.0)]
}

/// A peer as the firm counts it.
#[derive(Debug, Clone, Copy)]
pub struct PeerView<'a> {
    /// Its state.
    pub state: PeerState,
    /// Its last heartbeat.
    pub last: &'a Heartbeat,
}

/// What the bus thread does with the firm's limits now.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// This engine's claims, to publish (one per `[[firm.asset]]`).
    pub claims: Vec<Claim>,
    /// Per instrument of this engine (the config's order): the room `(long, short)`, USD
    /// (`f64::INFINITY`: no limit on it).
    pub room: Vec<(f64, f64)>,
    /// The firm's daily loss limit is hit.
    pub halt: bool,
    /// The firm's PnL today as counted, USD.
    pub firm_pnl: f64,
    /// A claim rose above the last published one.
    pub raised: bool,
    /// Whether rising was allowed (every live peer has heard the current claims).
    pub may_raise: bool,
}

/// One engine's side of the firm's limits: its config and its last published claims.
#[derive(Debug, Clone)]
pub struct Firm {
    cfg: FirmConfig,
    me: String,
    share: f64,
    total_share: f64,
    /// The claims last published, and the run id and heartbeat seq that published the last
    /// rise (a peer's `heard` at or past it has seen them).
    published: Vec<Claim>,
    run_id: u64,
    raised_at: u64,
}

impl Firm {
    /// For engine `me` (in `cfg.shares`, checked) of run `run_id`.
    pub fn new(cfg: FirmConfig, me: &str, run_id: u64) -> Firm {
        let share = cfg.shares.get(me).copied().unwrap_or(0.0);
        let total_share = cfg.shares.values().sum::<f64>().max(share);
        Firm {
            cfg,
            me: me.to_owned(),
            share,
            total_share,
            published: Vec::new(),
            run_id,
            raised_at: 0,
        }
    }

    /// The config.
    pub fn config(&self) -> &FirmConfig {
        &self.cfg
    }

    /// Whether every live peer that takes part has heard this engine's current claims.
    fn heard_by_all(&self, peers: &[PeerView]) -> bool {
        self.raised_at == 0
            || peers.iter().all(|p| {
                p.state != PeerState::Live
                    || p.last.claims.is_empty()
                    || p.last
                        .heard
                        .get(&self.me)
                        .is_some_and(|h| h[0] == self.run_id && h[1] >= self.raised_at)
            })
    }

    /// What the others hold of `asset`'s limits, `[gross, long, short]`, each limit `l` in
    /// `limits` (for a silent peer's share).
    fn others(&self, peers: &[PeerView], asset: &str, limits: [Option<f64>; 3]) -> [f64; 3] {
        let mut sum = [0.0; 3];
        for p in self.other_peers(peers) {
            let name = p.last.engine.as_str();
            // A stopped engine holds what its last heartbeat shows (its orders cancelled by its
            // shutdown), not the room it had claimed.
            let claim = p.last.claims.iter().find(|c| c.asset == asset);
            let said = match (p.state, claim) {
                (PeerState::Stopped, _) | (_, None) => uses(&p.last.instruments, asset),
                (_, Some(c)) => [c.gross, c.long, c.short].map(|v| v.unwrap_or(0.0)),
            };
            let whole = self
                .cfg
                .shares
                .get(name)
                .map(|s| limits.map(|l| s * l.unwrap_or(0.0)));
            for k in 0..3 {
                sum[k] += match (p.state, whole) {
                    (PeerState::Stale, Some(w)) => said[k].max(w[k]),
                    _ => said[k],
                };
            }
        }
        for s in self.never_heard(peers) {
            for k in 0..3 {
                sum[k] += s * limits[k].unwrap_or(0.0);
            }
        }
        sum
    }

    /// The peers other than this engine (a heartbeat under its own name is another run's).
    fn other_peers<'a>(
        &'a self,
        peers: &'a [PeerView<'a>],
    ) -> impl Iterator<Item = &'a PeerView<'a>> + 'a {
        peers.iter().filter(move |p| p.last.engine != self.me)
    }

    /// The shares of the engines in `shares`, other than this one, that no peer is.
    fn never_heard<'a>(&'a self, peers: &'a [PeerView<'a>]) -> impl Iterator<Item = f64> + 'a {
        self.cfg
            .shares
            .iter()
            .filter(move |(name, _)| {
                **name != self.me && !peers.iter().any(|p| p.last.engine == **name)
            })
            .map(|(_, s)| *s)
    }

    /// The plan for this engine's `mine` (its instruments now) among `peers`; `connected`:
    /// the heartbeat carrying the claims can be sent (else no claim rises).
    pub fn plan(&self, mine: &[InstrumentState], peers: &[PeerView], connected: bool) -> Plan {
        let may_raise = connected && self.heard_by_all(peers);
        let mut claims = Vec::with_capacity(self.cfg.asset.len());
        let mut raised = false;
        // Per asset: the targets `[gross, long, short]` (INFINITY: no limit).
        let mut targets: Vec<(&str, [f64; 3])> = Vec::new();
        for a in &self.cfg.asset {
            let limits = [a.gross_notional, a.net_notional, a.net_notional];
            let use_ = uses(mine, &a.asset);
            let others = self.others(peers, &a.asset, limits);
            let before = self.published.iter().find(|c| c.asset == a.asset);
            let before = before.map(|c| [c.gross, c.long, c.short]);
            let mut t = [f64::INFINITY; 3];
            let mut c = [None; 3];
            for k in 0..3 {
                let Some(l) = limits[k] else { continue };
                let free = (l - use_[k] - others[k]).max(0.0);
                let mut target =
                    (self.share * l).min(use_[k] + free * self.share / self.total_share);
                let prev = before.and_then(|b| b[k]);
                if !may_raise {
                    target = target.min(prev.unwrap_or(target));
                }
                let claim = target.max(use_[k]);
                raised |= prev.is_some_and(|p| claim > p) || (prev.is_none() && claim > 0.0);
                t[k] = target;
                c[k] = Some(claim);
            }
            targets.push((a.asset.as_str(), t));
            claims.push(Claim {
                asset: a.asset.clone(),
                gross: c[0],
                long: c[1],
                short: c[2],
            });
        }
        // Per instrument: what the engine's other instruments of the asset leave of its target.
        let room = mine
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let Some(&(_, [tg, tl, ts])) = targets.iter().find(|(a, _)| *a == s.asset) else {
                    return (f64::INFINITY, f64::INFINITY);
                };
                if exposure(s).is_none() {
                    return (f64::INFINITY, f64::INFINITY);
                }
                let (mut g, mut l, mut sh) = (0.0, 0.0, 0.0);
                for (j, o) in mine.iter().enumerate() {
                    if j == k || o.asset != s.asset {
                        continue;
                    }
                    if let Some((ol, os)) = exposure(o) {
                        g += ol.max(os).max(0.0);
                        l += ol;
                        sh += os;
                    }
                }
                ((tl - l).min(tg - g), (ts - sh).min(tg - g))
            })
            .collect();

        let (halt, firm_pnl) = match self.cfg.daily_loss {
            Some(d) => {
                let pnl = self.firm_pnl(mine, peers, d);
                (pnl <= -d, pnl)
            }
            None => (false, 0.0),
        };
        Plan {
            claims,
            room,
            halt,
            firm_pnl,
            raised,
            may_raise,
        }
    }

    /// The firm's PnL today: this engine's, each peer's (a silent one at `min(last, −share ·
    /// daily_loss)`), and every never-heard engine of `shares` at `−share · daily_loss`.
    fn firm_pnl(&self, mine: &[InstrumentState], peers: &[PeerView], d: f64) -> f64 {
        let pnl_of = |v: &[InstrumentState]| -> f64 {
            v.iter()
                .filter_map(|s| s.daily_pnl_usd)
                .filter(|x| x.is_finite())
                .sum()
        };
        let mut total = pnl_of(mine);
        for p in self.other_peers(peers) {
            let name = p.last.engine.as_str();
            let said = pnl_of(&p.last.instruments);
            total += match (p.state, self.cfg.shares.get(name)) {
                (PeerState::Stale, Some(s)) => said.min(-s * d),
                _ => said,
            };
        }
        total - self.never_heard(peers).map(|s| s * d).sum::<f64>()
    }

    /// The plan's claims were published in heartbeat `seq`.
    pub fn published(&mut self, plan: &Plan, seq: u64) {
        if plan.raised || self.raised_at == 0 {
            self.raised_at = seq;
        }
        self.published = plan.claims.clone();
    }
}

/// A room in USD as notional units of `unit_usd` each (floored; saturating).
pub fn to_units(room_usd: f64, unit_usd: f64) -> i64 {
    if room_usd == f64::INFINITY || unit_usd.is_nan() || unit_usd <= 0.0 {
        return i64::MAX;
    }
    let u = (room_usd / unit_usd).floor();
    if u.is_nan() {
        0
    } else {
        // `as` saturates at the ends.
        u as i64
    }
}

#[cfg(test)]
#[path = "firm_tests.rs"]
mod tests;
