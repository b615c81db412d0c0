//! Tests of the firm's limits: the config's rules, the plan, and a simulation of engines that
//! hear each other late, out of step, or not at all.

use super::*;
use crate::bus::{Heartbeat, InstrumentState, JournalProgress, PeerState};
use proptest::prelude::*;

fn cfg(shares: &[(&str, f64)], gross: Option<f64>, net: Option<f64>) -> FirmConfig {
    FirmConfig {
        shares: shares.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
        daily_loss: None,
        asset: vec![AssetLimit {
            asset: "BTC".into(),
            gross_notional: gross,
            net_notional: net,
        }],
    }
}

/// A BTCUSDT instrument: position and open orders as USD notionals.
fn inst(pos: f64, bids: f64, asks: f64) -> InstrumentState {
    InstrumentState {
        key: "binance-usdm:BTCUSDT".into(),
        mode: "normal".into(),
        reason: "none".into(),
        position_lots: 0,
        open_lots: [0, 0],
        open_notional: [bids, asks],
        position_notional: pos,
        pnl: 0.0,
        daily_pnl: 0.0,
        pnl_asset: "USDT".into(),
        asset: "BTC".into(),
        quote: "USDT".into(),
        daily_pnl_usd: Some(0.0),
    }
}

fn hb(engine: &str, seq: u64, instruments: Vec<InstrumentState>, claims: Vec<Claim>) -> Heartbeat {
    Heartbeat {
        engine: engine.into(),
        run_id: 1,
        seq,
        unix_ms: 0,
        heartbeat_ms: 100,
        stopping: false,
        instruments,
        journal: JournalProgress {
            segment: 0,
            records: 0,
            bytes: 0,
        },
        claims,
        heard: Default::default(),
        firm: None,
    }
}

fn gross_claim(v: f64) -> Claim {
    Claim {
        asset: "BTC".into(),
        gross: Some(v),
        long: None,
        short: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[test]
fn the_config_rules() {
    let good = cfg(&[("a", 0.6), ("b", 0.6)], Some(1000.0), Some(500.0));
    assert_eq!(good.check_engine(Some("a")), Ok(()));
    assert_eq!(good.check_engine(None).unwrap_err().0, "firm");
    assert_eq!(good.check_engine(Some("c")).unwrap_err().0, "firm.shares");
    assert_eq!(
        FirmConfig::default().check_engine(None),
        Ok(()),
        "no section"
    );
    for bad in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let c = cfg(&[("a", bad)], Some(1000.0), None);
        assert_eq!(c.check().unwrap_err().0, "firm.shares", "{bad}");
    }
    let c = cfg(&[("a.b", 0.5)], Some(1000.0), None);
    assert_eq!(c.check().unwrap_err().0, "firm.shares");
    for bad in [0.0, -1.0, f64::NAN, 1e16] {
        let c = cfg(&[("a", 0.5)], Some(bad), None);
        assert_eq!(c.check().unwrap_err().0, "firm.asset.gross_notional");
        let mut c = cfg(&[("a", 0.5)], Some(1.0), None);
        c.daily_loss = Some(bad);
        assert_eq!(c.check().unwrap_err().0, "firm.daily_loss");
    }
    let none = cfg(&[("a", 0.5)], None, None);
    assert_eq!(none.check().unwrap_err().0, "firm.asset");
    let mut twice = cfg(&[("a", 0.5)], Some(1.0), None);
    twice.asset.push(twice.asset[0].clone());
    assert_eq!(twice.check().unwrap_err().1, "BTC");
    let mut lower = cfg(&[("a", 0.5)], Some(1.0), None);
    lower.asset[0].asset = "btc".into();
    assert_eq!(lower.check().unwrap_err().0, "firm.asset.asset");
}

#[test]
fn a_peer_never_heard_counts_at_its_whole_share_and_a_heard_one_at_its_claim() {
    let c = cfg(&[("a", 0.6), ("b", 0.6)], Some(1000.0), None);
    let mut f = Firm::new(c, "a", 1);
    let mine = vec![inst(0.0, 0.0, 0.0)];
    // b unheard: 600 of 1000 taken; a takes half the free 400 (its share of the shares).
    let p = f.plan(&mine, &[], true);
    assert!(close(p.room[0].0, 200.0), "{:?}", p.room);
    assert!(close(p.room[0].1, 200.0));
    assert_eq!(p.claims[0].gross, Some(200.0));
    assert_eq!((p.claims[0].long, p.claims[0].short), (None, None));
    f.published(&p, 1);

    // b heard, claiming 100: free 900 − 200 (a's own use is 0, its claim is not counted
    // against itself) ... but a may not rise before b has heard its claim.
    let b = hb(
        "b",
        1,
        vec![inst(100.0, 0.0, 0.0)],
        vec![gross_claim(100.0)],
    );
    let live = [PeerView {
        state: PeerState::Live,
        last: &b,
    }];
    let p = f.plan(&mine, &live, true);
    assert!(!p.may_raise);
    assert!(close(p.room[0].0, 200.0), "held at the published claim");

    // b has heard a's seq 1: a rises to min(600, 0 + 900 · 0.5) = 450.
    let mut b2 = b.clone();
    b2.heard.insert("a".into(), [1, 1]);
    let live = [PeerView {
        state: PeerState::Live,
        last: &b2,
    }];
    let p = f.plan(&mine, &live, true);
    assert!(p.may_raise && p.raised);
    assert!(close(p.room[0].0, 450.0), "{:?}", p.room);
    // Not connected: no rise.
    assert!(close(f.plan(&mine, &live, false).room[0].0, 200.0));
    // Another run of a (run id 2) is not this one: b has not heard it.
    let mut other_run = b2.clone();
    other_run.heard.insert("a".into(), [2, 9]);
    let view = [PeerView {
        state: PeerState::Live,
        last: &other_run,
    }];
    assert!(!f.plan(&mine, &view, true).may_raise);

    // b stopped with 100 of position: counted at that, not at its claim of 300.
    let mut gone = b2.clone();
    gone.stopping = true;
    gone.claims = vec![gross_claim(300.0)];
    let stopped = [PeerView {
        state: PeerState::Stopped,
        last: &gone,
    }];
    let p = f.plan(&mine, &stopped, true);
    assert!(close(p.room[0].0, 450.0), "{:?}", p.room);

    // b stale: at least its whole share (600), though it claimed 100.
    let stale = [PeerView {
        state: PeerState::Stale,
        last: &b2,
    }];
    let p = f.plan(&mine, &stale, true);
    assert!(close(p.room[0].0, 200.0), "{:?}", p.room);
}

#[test]
fn a_claim_never_goes_below_the_use_and_the_room_can_be_negative() {
    let c = cfg(&[("a", 0.5), ("b", 0.5)], Some(1000.0), None);
    let f = Firm::new(c, "a", 1);
    // a holds 700 (more than its share of 500): it claims 700 and gets no room to add.
    let mine = vec![inst(700.0, 0.0, 0.0)];
    let p = f.plan(&mine, &[], true);
    assert_eq!(p.claims[0].gross, Some(700.0));
    assert!(close(p.room[0].0, 500.0), "{:?}", p.room);
}

#[test]
fn net_counts_each_way_and_never_lends_one_engines_short_to_anothers_long() {
    let c = cfg(&[("a", 1.0), ("b", 1.0)], None, Some(1000.0));
    let mut f = Firm::new(c, "a", 1);
    // b is short 800 with no bids: its long claim is 0 (not -800).
    let mut b = hb("b", 3, vec![inst(-800.0, 0.0, 0.0)], vec![]);
    b.heard.insert("a".into(), [1, 1]);
    let mine = vec![inst(0.0, 0.0, 0.0)];
    let first = f.plan(&mine, &[], true);
    f.published(&first, 1);
    let live = [PeerView {
        state: PeerState::Live,
        last: &b,
    }];
    let p = f.plan(&mine, &live, true);
    // Long: free 1000, a takes 1000 · 1/2. Short: b's 800 counted, a takes (200) / 2.
    assert!(close(p.room[0].0, 500.0), "{:?}", p.room);
    assert!(close(p.room[0].1, 100.0), "{:?}", p.room);
    assert_eq!(p.claims[0].long, Some(500.0));
    assert_eq!(p.claims[0].gross, None);
}

#[test]
fn two_instruments_of_one_asset_share_the_engines_room() {
    let c = cfg(&[("a", 1.0)], Some(1000.0), Some(600.0));
    let f = Firm::new(c, "a", 1);
    let mut spot = inst(300.0, 100.0, 0.0);
    spot.key = "binance-spot:BTCUSDT".into();
    let mine = vec![inst(-200.0, 0.0, 50.0), spot];
    let p = f.plan(&mine, &[], true);
    // Alone with share 1: targets are the limits. Gross used by the spot leg: 400.
    // Perp long: net 600 − (spot long 400) = 200; gross 1000 − 400 = 600 → 200.
    // Perp short: net 600 − (spot short −300) = 900; gross 600 → 600.
    assert!(close(p.room[0].0, 200.0), "{:?}", p.room);
    assert!(close(p.room[0].1, 600.0), "{:?}", p.room);
    // Spot long: net 600 − (perp long −200) = 800; gross 1000 − 250 = 750 → 750.
    assert!(close(p.room[1].0, 750.0), "{:?}", p.room);
}

#[test]
fn other_assets_and_quotes_not_at_par_are_not_limited() {
    let c = cfg(&[("a", 1.0)], Some(1000.0), None);
    let f = Firm::new(c, "a", 1);
    let mut eth = inst(0.0, 0.0, 0.0);
    eth.asset = "ETH".into();
    let mut ethbtc = inst(0.0, 0.0, 0.0);
    ethbtc.quote = "BTC".into();
    let p = f.plan(&[eth, ethbtc], &[], true);
    assert_eq!(p.room, vec![(f64::INFINITY, f64::INFINITY); 2]);
    assert_eq!(to_units(f64::INFINITY, 0.01), i64::MAX);
    assert_eq!(to_units(-12.5, 0.01), -1250);
    assert_eq!(to_units(1e300, 0.01), i64::MAX);
    assert_eq!(to_units(f64::NAN, 0.01), 0);
}

#[test]
fn the_daily_loss_counts_a_silent_peer_at_its_whole_share() {
    let mut c = cfg(&[("a", 0.5), ("b", 0.7)], Some(1e6), None);
    c.daily_loss = Some(1000.0);
    let f = Firm::new(c, "a", 1);
    let mut mine = vec![inst(0.0, 0.0, 0.0)];
    mine[0].daily_pnl_usd = Some(-400.0);
    // b never heard: -700, with a's -400: the firm is at -1100.
    let p = f.plan(&mine, &[], true);
    assert!(p.halt && close(p.firm_pnl, -1100.0), "{}", p.firm_pnl);
    let mut b_inst = inst(0.0, 0.0, 0.0);
    b_inst.daily_pnl_usd = Some(250.0);
    let b = hb("b", 1, vec![b_inst], vec![]);
    let live = [PeerView {
        state: PeerState::Live,
        last: &b,
    }];
    let p = f.plan(&mine, &live, true);
    assert!(!p.halt && close(p.firm_pnl, -150.0));
    let stale = [PeerView {
        state: PeerState::Stale,
        last: &b,
    }];
    assert!(f.plan(&mine, &stale, true).halt);
}

/// One engine of the simulation.
struct Sim {
    firm: Firm,
    name: String,
    use_: f64,
    seq: u64,
    /// Its view of the others: their last heartbeat delivered.
    views: Vec<Option<Heartbeat>>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Engines that act on whatever they last heard (late, reordered between senders, lost),
    /// each growing to its whole room at once: the firm's gross never exceeds the limit.
    #[test]
    fn engines_hearing_each_other_late_never_breach_the_limit_together(
        shares in prop::collection::vec(0.3f64..=1.0, 2..5),
        steps in prop::collection::vec((0usize..4, 0u8..=255, 0.0f64..=1.0), 1..120),
    ) {
        let limit = 1000.0;
        let n = shares.len();
        let names: Vec<String> = (0..n).map(|k| format!("e{k}")).collect();
        let c = FirmConfig {
            shares: names.iter().cloned().zip(shares.iter().copied()).collect(),
            daily_loss: None,
            asset: vec![AssetLimit {
                asset: "BTC".into(),
                gross_notional: Some(limit),
                net_notional: Some(limit),
            }],
        };
        let mut sims: Vec<Sim> = names
            .iter()
            .map(|name| Sim {
                firm: Firm::new(c.clone(), name, 1),
                name: name.clone(),
                use_: 0.0,
                seq: 0,
                views: vec![None; n],
            })
            .collect();
        // In flight: (from, to, heartbeat), in publication order per sender.
        let mut wire: Vec<(usize, usize, Heartbeat)> = Vec::new();
        for (who, deliver, fill) in steps {
            let i = who % n;
            // Deliver some of what is in flight to i: each sender's messages in order; bits of
            // `deliver` say per sender how far (none, the oldest, all) or to drop the oldest.
            for j in 0..n {
                let mode = (deliver >> (2 * (j % 4))) & 3;
                let mine: Vec<usize> = wire
                    .iter()
                    .enumerate()
                    .filter(|(_, (f, t, _))| *f == j && *t == i)
                    .map(|(k, _)| k)
                    .collect();
                let take: Vec<usize> = match mode {
                    0 => vec![],
                    1 => mine.iter().take(1).copied().collect(),
                    2 => mine.clone(),
                    _ => {
                        // Lost.
                        if let Some(&k) = mine.first() {
                            wire.remove(k);
                        }
                        vec![]
                    }
                };
                for k in take.iter().rev() {
                    let (_, _, h) = wire.remove(*k);
                    // Delivered in order: the newest delivered wins.
                    if sims[i].views[j].as_ref().is_none_or(|v| v.seq < h.seq) {
                        sims[i].views[j] = Some(h);
                    }
                }
            }
            // i plans, publishes, and fills to some part of its room.
            let s = &mut sims[i];
            let mine = vec![inst(s.use_, 0.0, 0.0)];
            let views: Vec<PeerView> = s
                .views
                .iter()
                .flatten()
                .map(|h| PeerView { state: PeerState::Live, last: h })
                .collect();
            let plan = s.firm.plan(&mine, &views, true);
            s.seq += 1;
            let mut out = hb(&s.name, s.seq, mine, plan.claims.clone());
            out.heard = s
                .views
                .iter()
                .flatten()
                .map(|h| (h.engine.clone(), [h.run_id, h.seq]))
                .collect();
            s.firm.published(&plan, s.seq);
            let room = plan.room[0].0.min(plan.room[0].1);
            // Mostly all of the room at once (the worst case), else part of it, or back down.
            if room > s.use_ {
                s.use_ += (room - s.use_) * (2.0 * fill).min(1.0);
            } else if fill < 0.3 {
                s.use_ = room.max(0.0);
            }
            for j in 0..n {
                if j != i {
                    wire.push((i, j, out.clone()));
                }
            }
            let total: f64 = sims.iter().map(|s| s.use_).sum();
            prop_assert!(total <= limit * (1.0 + 1e-9), "firm at {total} of {limit}");
        }
    }
}

#[test]
fn a_claim_rises_only_after_every_live_peer_has_heard_the_last_one() {
    // Two engines with the whole limit each. a2 hears b1, b2 hears a1, and b2 never reaches
    // a before a3: without the rule a3 would take half of what it thinks b left free, on top.
    let c = cfg(&[("a", 1.0), ("b", 1.0)], Some(100.0), None);
    let (mut a, mut b) = (Firm::new(c.clone(), "a", 1), Firm::new(c, "b", 1));
    let step = |f: &mut Firm, me: &str, seq: u64, use_: f64, view: Option<&Heartbeat>| {
        let mine = vec![inst(use_, 0.0, 0.0)];
        let views: Vec<PeerView> = view
            .iter()
            .map(|h| PeerView {
                state: PeerState::Live,
                last: h,
            })
            .collect();
        let p = f.plan(&mine, &views, true);
        f.published(&p, seq);
        let mut out = hb(me, seq, mine, p.claims.clone());
        if let Some(h) = view {
            out.heard.insert(h.engine.clone(), [h.run_id, h.seq]);
        }
        (p.room[0].0, out)
    };
    let (ra1, a1) = step(&mut a, "a", 1, 0.0, None);
    let (rb1, b1) = step(&mut b, "b", 1, 0.0, None);
    assert_eq!(
        (ra1, rb1),
        (0.0, 0.0),
        "each counts the other at its whole share"
    );
    let (ra2, _a2) = step(&mut a, "a", 2, ra1, Some(&b1));
    let (rb2, _b2) = step(&mut b, "b", 2, rb1, Some(&a1));
    let (ra3, _a3) = step(&mut a, "a", 3, ra2, Some(&b1));
    assert!(ra3 + rb2 <= 100.0 + 1e-9, "{ra3} + {rb2}");
}

#[test]
fn the_digest_tells_sections_apart() {
    let a = cfg(&[("a", 0.6), ("b", 0.6)], Some(1000.0), Some(500.0));
    let same = cfg(&[("b", 0.6), ("a", 0.6)], Some(1000.0), Some(500.0));
    assert_eq!(a.digest(), same.digest(), "shares in any order");
    assert_eq!(a.digest().len(), 16);
    let other = cfg(&[("a", 0.6), ("b", 0.7)], Some(1000.0), Some(500.0));
    assert_ne!(a.digest(), other.digest());
    let mut loss = a.clone();
    loss.daily_loss = Some(1.0);
    assert_ne!(a.digest(), loss.digest());
}
