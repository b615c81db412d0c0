//! Queue-position models: how far from the front of its price level a resting order stands.
//!
//! Both models start an order at the back of its level (everything recorded there when the order
//! arrives is ahead of it) and both let trades at the order's price eat the queue ahead first.
//! They differ in what a level *decrease not explained by trades* (a cancel somewhere in the
//! queue) does:
//!
//! - [`RiskAverseQueue`] assumes every cancel was behind us: the order only moves up on trades,
//!   except that the queue ahead can never exceed what is at the level.
//! - [`ProbQueue`] splits each such decrease between the quantity ahead and behind with a power
//!   law, like hftbacktest's `PowerProbQueueModel`.

use super::power::share_ahead;
use super::{LevelChange, QueueModel};
use engine::Fx;

/// Only trades move an order up its queue.
///
/// A level decrease never advances the order, but the queue ahead is capped at the level's
/// current quantity when the level shrinks below it (the orders ahead cannot be more than what
/// is left). This is the pessimistic bound: fills come no earlier than the trades prove.
/// The position is whole lots ahead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskAverseQueue;

impl QueueModel for RiskAverseQueue {
    /// Lots ahead.
    type Pos = i64;

    fn join(&self, level_qty: i64) -> i64 {
        level_qty.max(0)
    }

    fn ahead(&self, pos: &i64) -> i64 {
        *pos
    }

    fn on_trade(&self, pos: &mut i64, qty: i64) -> i64 {
        let qty = qty.max(0);
        let eaten = qty.min(*pos);
        *pos -= eaten;
        qty - eaten
    }

    fn on_level_change(&self, pos: &mut i64, change: LevelChange) {
        *pos = (*pos).min(change.new_qty.max(0));
    }

    fn on_resync(&self, pos: &mut i64, level_qty: i64) {
        *pos = (*pos).min(level_qty.max(0));
    }
}

/// Level decreases not explained by trades also move the order up, by a power-law share.
///
/// Of a decrease `d` (the level's drop less the lots traded at that price since its previous
/// update, which [`QueueModel::on_trade`] already took from the queue), the part taken from the
/// queue ahead is
///
/// ```text
/// d · f(ahead) / (f(ahead) + f(behind)),   f(x) = x^power,
/// behind = level before the update − traded since − ahead   (clamped ≥ 0)
/// ```
///
/// and the rest from behind; if that rest is more than there is behind, the excess comes from
/// ahead too. The queue ahead is then capped at the level's new quantity. With `power = 1` a
/// cancel is equally likely anywhere in the queue; larger powers say cancels come mostly from
/// the larger side (from the back when we are near the front), smaller powers the opposite.
/// hftbacktest's docs suggest 2 to 3 as a start.
///
/// `behind` is the market's own quantity: the recorded level never contains our order, so our
/// remaining quantity is not subtracted from it. The position is kept in fixed point (a share of
/// a lot carries over to the next decrease, so many one-lot cancels add up); it is rounded up to
/// whole lots wherever a trade meets it. All of it is [`Fx`] arithmetic: bit-exact everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbQueue {
    /// The power law's exponent (≥ 0; negative is taken as 0, an even split).
    pub power: Fx,
}

impl ProbQueue {
    /// A model with exponent `power`.
    pub fn new(power: Fx) -> ProbQueue {
        ProbQueue { power }
    }
}

impl QueueModel for ProbQueue {
    /// Lots ahead, with a fraction.
    type Pos = Fx;

    fn join(&self, level_qty: i64) -> Fx {
        Fx::from_num(level_qty.max(0))
    }

    fn ahead(&self, pos: &Fx) -> i64 {
        pos.ceil().to_num()
    }

    fn on_trade(&self, pos: &mut Fx, qty: i64) -> i64 {
        let ahead = self.ahead(pos);
        let qty = qty.max(0);
        if qty <= ahead {
            *pos = (*pos - Fx::from_num(qty)).max(Fx::ZERO);
            return 0;
        }
        *pos = Fx::ZERO;
        qty - ahead
    }

    fn on_level_change(&self, pos: &mut Fx, change: LevelChange) {
        let unexplained = change.prev_qty - change.new_qty - change.traded_since;
        if unexplained > 0 {
            let ahead = *pos;
            let before = Fx::from_num((change.prev_qty - change.traded_since).max(0));
            let behind = (before - ahead).max(Fx::ZERO);
            let d = Fx::from_num(unexplained);
            let mut from_ahead = share_ahead(ahead, behind, self.power) * d;
            let from_behind = d - from_ahead;
            if from_behind > behind {
                from_ahead += from_behind - behind;
            }
            *pos = (ahead - from_ahead).max(Fx::ZERO);
        }
        *pos = (*pos).min(Fx::from_num(change.new_qty.max(0)));
    }

    fn on_resync(&self, pos: &mut Fx, level_qty: i64) {
        *pos = (*pos).min(Fx::from_num(level_qty.max(0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(prev_qty: i64, new_qty: i64, traded_since: i64) -> LevelChange {
        LevelChange {
            prev_qty,
            new_qty,
            traded_since,
        }
    }

    fn near(p: Fx, v: f64) -> bool {
        (p.to_num::<f64>() - v).abs() < 1e-9
    }

    #[test]
    fn risk_averse_moves_only_on_trades_and_caps() {
        let q = RiskAverseQueue;
        let mut p = q.join(10);
        // A cancel of 3 lots somewhere: assumed behind us.
        q.on_level_change(&mut p, change(10, 7, 0));
        assert_eq!(q.ahead(&p), 7, "capped at the level");
        q.on_level_change(&mut p, change(7, 12, 0));
        assert_eq!(q.ahead(&p), 7, "joiners go behind");
        assert_eq!(q.on_trade(&mut p, 4), 0);
        assert_eq!(q.ahead(&p), 3);
        assert_eq!(q.on_trade(&mut p, 5), 2);
        assert_eq!(q.ahead(&p), 0);
    }

    #[test]
    fn prob_queue_splits_unexplained_decreases() {
        let q = ProbQueue::new(Fx::ONE);
        let mut p = q.join(30);
        // 10 more join behind: ahead 30, behind 10. A decrease of 8: 3/4 from ahead.
        q.on_level_change(&mut p, change(30, 40, 0));
        q.on_level_change(&mut p, change(40, 32, 0));
        assert!(near(p, 24.0), "{p}");
        // A trade of 4 then the matching depth update: no double count.
        assert_eq!(q.on_trade(&mut p, 4), 0);
        q.on_level_change(&mut p, change(32, 28, 4));
        assert!(near(p, 20.0), "{p}");
        // Nothing behind: the whole decrease is ahead of us.
        let mut p = q.join(10);
        q.on_level_change(&mut p, change(10, 6, 0));
        assert_eq!(p, Fx::from_num(6));
    }

    #[test]
    fn prob_queue_fractions_add_up_and_round_against_us() {
        let q = ProbQueue::new(Fx::ONE);
        let mut p = q.join(2);
        q.on_level_change(&mut p, change(2, 4, 0));
        // Ahead 2, behind 2: each one-lot cancel takes half a lot from ahead.
        q.on_level_change(&mut p, change(4, 3, 0));
        assert_eq!(q.ahead(&p), 2, "1.5 lots ahead still blocks 2");
        // A trade of 2 leaves nothing for us: it takes 1.5 ahead and half a lot is no fill.
        let mut p2 = p;
        assert_eq!(q.on_trade(&mut p2, 2), 0);
        assert_eq!(q.on_trade(&mut p, 3), 1);
    }

    #[test]
    fn higher_power_takes_more_from_the_larger_side() {
        let lin = ProbQueue::new(Fx::ONE);
        let sq = ProbQueue::new(Fx::from_num(2));
        let (mut a, mut b) = (lin.join(30), sq.join(30));
        for q in [&lin, &sq] {
            let p = if q.power == Fx::ONE { &mut a } else { &mut b };
            q.on_level_change(p, change(30, 40, 0));
            q.on_level_change(p, change(40, 30, 0));
        }
        // Linear: 3/4 of 10; square: 9/10 of 10.
        assert!(near(a, 22.5), "{a}");
        assert!(near(b, 21.0), "{b}");
    }
}
