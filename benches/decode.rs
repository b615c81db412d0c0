//! Decode + normalize one ~40-level USDⓈ-M `depthUpdate` into `engine::Event` levels.
//!
//! * `decoder`: `feeds::Decoder::decode` as the feed runs it — the single-pass depth scanner
//!   (`feeds/src/depth_fast.rs`), which falls back to simd-json for anything unusual.
//! * `decoder_bound`: `feeds::Decoder::decode_for`, the same message from a recording bound to
//!   its instrument (the backtest's path), here the second of two instruments with the symbol
//!   (spot BTCUSDT first): the same fast path, looking the symbol up in that one instrument.
//! * `simd_json_general`: `feeds::Decoder::decode_general`, the simd-json tape walk alone
//!   (the path every other message takes), decimals straight onto the tick / lot grid.
//! * `serde_json_typed` (baseline): `serde_json` into `#[derive(Deserialize)]` structs with
//!   borrowed `&str` fields, then the same normalization into the same `Event`s in a reused `Vec`.
//!
//! The message is a real one, picked from the recording at bench start (35–45 levels, closest to
//! 40). Both variants copy the pristine bytes into the same reused scratch buffer every iteration
//! (simd-json unescapes in place), so the copy costs the same in both. One iteration is one message.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::{Event, Instrument, LevelUpdate, Side};
use feeds::{DecodeError, Decoder, DepthHeader, Message};
use ringmaker_benches::{btcusdt_usdm, load_recording, USDM_BTCUSDT};
use serde::Deserialize;
use std::hint::black_box;
use std::time::Duration;

const LOCAL_NS: i64 = 1_723_161_255_030_314_667;

/// The combined-stream envelope `{"stream":..,"data":{..}}`.
#[derive(Deserialize)]
struct Envelope<'a> {
    stream: &'a str,
    #[serde(borrow)]
    data: DepthUpdate<'a>,
}

/// A USDⓈ-M `depthUpdate` payload.
#[derive(Deserialize)]
struct DepthUpdate<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: Option<u64>,
    #[serde(rename = "T")]
    transaction_time: Option<u64>,
    s: &'a str,
    #[serde(rename = "U")]
    first_id: u64,
    u: u64,
    pu: Option<u64>,
    #[serde(borrow)]
    b: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    a: Vec<(&'a str, &'a str)>,
}

/// The baseline: serde_json typed decoding, then the decoder's normalization.
struct SerdeDepthDecoder {
    inst: Instrument,
    levels: Vec<Event>,
}

impl SerdeDepthDecoder {
    fn new(inst: Instrument) -> Self {
        SerdeDepthDecoder {
            inst,
            levels: Vec::with_capacity(4096),
        }
    }

    fn decode(&mut self, json: &[u8], local_ns: i64) -> Result<DepthHeader, DecodeError> {
        self.levels.clear();
        let env: Envelope<'_> =
            serde_json::from_slice(json).map_err(|e| DecodeError::Json(e.to_string()))?;
        // The same checks as the simd-json decoder: stream kind, event kind, symbol, ids.
        if env.stream.ends_with("@bookTicker") || env.data.e != "depthUpdate" {
            return Err(DecodeError::UnknownShape);
        }
        let d = env.data;
        if !self.inst.symbol.eq_ignore_case(d.s.as_bytes()) {
            return Err(DecodeError::BadField("s"));
        }
        let venue_ns = match d.event_time.or(d.transaction_time) {
            Some(ms) => i64::try_from(ms)
                .ok()
                .and_then(|ms| ms.checked_mul(1_000_000))
                .ok_or(DecodeError::BadField("E"))?,
            None => 0,
        };
        if d.u < d.first_id {
            return Err(DecodeError::BadField("u"));
        }
        self.push_levels(&d.b, Side::Bid, d.u, venue_ns, local_ns, "b")?;
        self.push_levels(&d.a, Side::Ask, d.u, venue_ns, local_ns, "a")?;
        if let Some(last) = self.levels.last_mut() {
            if let Some(mut l) = last.as_level() {
                l.last_in_msg = true;
                *last = Event::level(0, last.venue_time_ns, last.local_time_ns, l);
            }
        }
        Ok(DepthHeader {
            instrument: 0,
            first_id: d.first_id,
            final_id: d.u,
            prev_final_id: d.pu,
            venue_time_ns: venue_ns,
            local_time_ns: local_ns,
        })
    }

    #[inline]
    fn push_levels(
        &mut self,
        pairs: &[(&str, &str)],
        side: Side,
        update_id: u64,
        venue_ns: i64,
        local_ns: i64,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        for &(p, q) in pairs {
            let level = LevelUpdate {
                side,
                price: self
                    .inst
                    .price_to_ticks(p.as_bytes())
                    .map_err(|err| DecodeError::Decimal { field, err })?,
                qty: self
                    .inst
                    .qty_to_lots(q.as_bytes())
                    .map_err(|err| DecodeError::Decimal { field, err })?,
                update_id,
                last_in_msg: false,
                snapshot: false,
            };
            self.levels.push(Event::level(0, venue_ns, local_ns, level));
        }
        Ok(())
    }
}

/// The recorded `depthUpdate` with 35–45 levels that is closest to 40 (first one on ties).
fn pick_depth_update(inst: Instrument) -> Vec<u8> {
    let lines = load_recording(USDM_BTCUSDT);
    let mut dec = Decoder::new(&[inst]);
    let mut best: Option<(usize, &[u8])> = None;
    for (ns, line) in &lines {
        if !line
            .windows(b"depthUpdate".len())
            .any(|w| w == b"depthUpdate")
        {
            continue;
        }
        let mut scratch = line.clone();
        if let Ok(Message::Depth(_)) = dec.decode(&mut scratch, *ns) {
            let n = dec.levels().len();
            let dist = n.abs_diff(40);
            if (35..=45).contains(&n) && best.is_none_or(|(b, _)| dist < b.abs_diff(40)) {
                best = Some((n, line));
            }
        }
    }
    let (n, line) = best.expect("the recording has a depthUpdate with 35-45 levels");
    eprintln!(
        "decode bench: depthUpdate with {n} levels, {} bytes",
        line.len()
    );
    line.to_vec()
}

fn bench_decode(c: &mut Criterion) {
    let inst = btcusdt_usdm();
    let pristine = pick_depth_update(inst);

    // Both variants must produce the same header and the same events.
    let mut simd = Decoder::new(&[inst]);
    let mut serde = SerdeDepthDecoder::new(inst);
    let mut scratch = pristine.clone();
    let Ok(Message::Depth(h_simd)) = simd.decode(&mut scratch, LOCAL_NS) else {
        panic!("the picked message decodes as a depth diff");
    };
    let h_serde = serde
        .decode(&pristine, LOCAL_NS)
        .expect("the serde baseline decodes the picked message");
    assert_eq!(h_simd, h_serde, "headers differ between the two decoders");
    assert_eq!(
        simd.levels(),
        &serde.levels[..],
        "levels differ between the two decoders"
    );
    // Bound to the second of two instruments with the symbol: the same answer, for id 1.
    let spot =
        Instrument::new("BTCUSDT", "0.01", "0.00000001", "0.00001", "5").expect("spot instrument");
    let mut bound = Decoder::new(&[spot, inst]);
    let mut scratch2 = pristine.clone();
    let Ok(Message::Depth(h_bound)) = bound.decode_for(&mut scratch2, LOCAL_NS, 1) else {
        panic!("the picked message decodes as a depth diff for its bound instrument");
    };
    assert_eq!(
        h_bound,
        DepthHeader {
            instrument: 1,
            ..h_simd
        }
    );
    assert_eq!(bound.levels().len(), simd.levels().len());
    let mut scratch2 = pristine.clone();
    let general = simd.decode_general(&mut scratch2, LOCAL_NS);
    assert_eq!(
        general,
        Ok(Message::Depth(h_simd)),
        "the general path agrees"
    );

    let mut g = c.benchmark_group("decode_depth_update");
    g.throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(60);

    g.bench_function("decoder", |b| {
        b.iter(|| {
            scratch.copy_from_slice(&pristine);
            let m = simd
                .decode(black_box(&mut scratch), LOCAL_NS)
                .expect("the picked message decodes");
            black_box(simd.levels().len());
            m
        })
    });
    g.bench_function("decoder_bound", |b| {
        b.iter(|| {
            scratch.copy_from_slice(&pristine);
            let m = bound
                .decode_for(black_box(&mut scratch), LOCAL_NS, 1)
                .expect("the picked message decodes");
            black_box(bound.levels().len());
            m
        })
    });
    g.bench_function("simd_json_general", |b| {
        b.iter(|| {
            scratch.copy_from_slice(&pristine);
            let m = simd
                .decode_general(black_box(&mut scratch), LOCAL_NS)
                .expect("the picked message decodes");
            black_box(simd.levels().len());
            m
        })
    });
    g.bench_function("serde_json_typed", |b| {
        b.iter(|| {
            scratch.copy_from_slice(&pristine);
            let h = serde
                .decode(black_box(&scratch), LOCAL_NS)
                .expect("the picked message decodes");
            black_box(serde.levels.len());
            h
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
