//! Differential tests: the depth fast path and the general simd-json path must agree exactly —
//! same message, same levels, same error — on every recorded message and on mutations of them.

use engine::{Event, Instrument};
use feeds::recording::read_all;
use feeds::{DecodeError, Decoder, Message};
use proptest::prelude::*;
use ringmaker_tests::{spot, usdm};

/// One path's answer: the message (or error) and the levels it left.
type Answer = (Result<Message, DecodeError>, Vec<Event>);

fn both(d: &mut Decoder, msg: &[u8]) -> (Answer, Answer) {
    let mut a = msg.to_vec();
    let fast = d.decode(&mut a, 42);
    let fast_levels = d.levels().to_vec();
    let mut b = msg.to_vec();
    let general = d.decode_general(&mut b, 42);
    let general_levels = d.levels().to_vec();
    ((fast, fast_levels), (general, general_levels))
}

fn agree(d: &mut Decoder, msg: &[u8]) {
    let ((f, fl), (g, gl)) = both(d, msg);
    assert_eq!(f, g, "{}", String::from_utf8_lossy(msg));
    assert_eq!(fl, gl, "{}", String::from_utf8_lossy(msg));
}

#[test]
fn fast_and_general_paths_agree_on_every_recorded_message() {
    let usdm_inst = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
    let (lines, _) = read_all(&[usdm()]).unwrap();
    let mut d = Decoder::new(&[usdm_inst]);
    let mut depth = 0;
    for (_, m) in &lines {
        agree(&mut d, m);
        depth += m.windows(13).any(|w| w == b"\"depthUpdate\"") as usize;
    }
    assert_eq!(depth, 6_551);
    // Spot, with its 8-decimal quantities, and with the order step so some levels are off-grid:
    // the same errors from both paths.
    for lot in ["0.00000001", "0.00001"] {
        let inst = Instrument::new("BTCUSDT", "0.01", lot, lot, "5").unwrap();
        let (lines, _) = read_all(&spot()).unwrap();
        let mut d = Decoder::new(&[inst]);
        for (_, m) in lines
            .iter()
            .filter(|(_, m)| m.windows(11).any(|w| w == b"depthUpdate"))
        {
            agree(&mut d, m);
        }
    }
}

fn depth_samples() -> Vec<Vec<u8>> {
    let (lines, _) = read_all(&[usdm()]).unwrap();
    lines
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.windows(11).any(|w| w == b"depthUpdate") && m.len() < 2_000)
        .take(50)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    #[test]
    fn mutated_depth_messages_get_the_same_answer_from_both_paths(
        which in 0usize..50,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..4),
    ) {
        thread_local!(static SAMPLES: Vec<Vec<u8>> = depth_samples());
        let mut msg = SAMPLES.with(|s| s[which % s.len()].clone());
        // Mutations biased towards JSON-significant bytes and digits.
        const INTERESTING: &[u8] = b"{}[]\",:.-0123456789 eEbBaAsuUp\\";
        for (at, op, byte) in edits {
            let i = at.index(msg.len().max(1));
            let c = INTERESTING[byte as usize % INTERESTING.len()];
            match op {
                0 if !msg.is_empty() => { msg.remove(i); }
                1 => msg.insert(i, c),
                2 if !msg.is_empty() => msg[i] = c,
                _ => msg.insert(i, byte),
            }
        }
        let inst = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
        let mut d = Decoder::new(&[inst]);
        let ((f, fl), (g, gl)) = both(&mut d, &msg);
        // Where simd-json's error text and ours differ in wording only, compare kinds.
        match (&f, &g) {
            (Err(DecodeError::Json(_)), Err(DecodeError::Json(_))) => {}
            _ => prop_assert_eq!(&f, &g, "{}", String::from_utf8_lossy(&msg)),
        }
        prop_assert_eq!(fl, gl);
    }
}

#[test]
fn repeated_keys_after_the_levels_get_the_general_paths_answer() {
    // Found by reading the scanner (fuzz regressions in feeds/fuzz/regressions/decode_any/): a
    // key repeated after a level array must not leave levels stamped with the first value.
    let btc = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
    let eth = Instrument::new("ETHUSDT", "0.01", "0.00001", "0.00001", "1").unwrap();
    let mut d = Decoder::new(&[btc, eth]);
    for m in [
        &br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","1"]],"a":[],"u":3}"#[..],
        br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","1"],["2.0","1"]],"a":[],"s":"ETHUSDT"}"#,
        br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[["1.0","1"]],"a":[["2.0","2"]]}"#,
    ] {
        agree(&mut d, m);
    }
}

/// Bound decoding ([`Decoder::decode_for`]) takes the same fast path with the bound instrument's
/// id: on a decoder of two instruments with one symbol (spot BTCUSDT as 0, USD-M as 1), each
/// recording decoded for its own instrument gets the general path's answer, ids included.
#[test]
fn bound_fast_and_general_paths_agree_on_every_recorded_message() {
    let spot_inst = Instrument::new("BTCUSDT", "0.01", "0.00000001", "0.00001", "5").unwrap();
    let usdm_inst = Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap();
    let mut d = Decoder::new(&[spot_inst, usdm_inst]);
    let mut depth = [0usize; 2];
    for (id, files) in [(0u16, spot().to_vec()), (1, vec![usdm()])] {
        let (lines, _) = read_all(&files).unwrap();
        for (_, m) in &lines {
            let mut a = m.clone();
            let fast = d.decode_for(&mut a, 42, id);
            let fast_levels = d.levels().to_vec();
            let mut b = m.clone();
            let general = d.decode_general_for(&mut b, 42, id);
            assert_eq!(fast, general, "{}", String::from_utf8_lossy(m));
            assert_eq!(fast_levels, d.levels(), "{}", String::from_utf8_lossy(m));
            if let Ok(Message::Depth(h)) = fast {
                assert_eq!(h.instrument, id);
                assert!(fast_levels.iter().all(|e| e.instrument() == id));
                depth[id as usize] += 1;
            }
        }
    }
    assert_eq!(depth, [3_451 + 3_044, 6_551]);
}
