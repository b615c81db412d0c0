//! The engine over the shipped recording: determinism and sanity of what it emits.

use engine::{Config, Engine, Intent, IntentKind, ModeChange};
use feeds::{recorded_events, RecordedEvents, SyncRule};
use ringmaker_tests::{default_config, usdm, Responder};

struct Out {
    intents: Vec<Intent>,
    modes: Vec<ModeChange>,
}

fn events(cfg: &Config) -> RecordedEvents {
    let insts: Vec<_> = cfg.instruments.iter().map(|i| i.instrument).collect();
    recorded_events(&[usdm()], &insts, SyncRule::Futures).expect("recording")
}

fn run(cfg: &Config, rec: &RecordedEvents) -> Out {
    let mut e = Engine::new(cfg);
    let mut venue = Responder::new(4096, true);
    let mut reports = Vec::with_capacity(4096);
    for batch in rec.batches() {
        for ev in batch {
            e.on_event(ev, &mut venue);
        }
        e.on_batch_end(&mut venue);
        // The venue answers before the next market message.
        reports.clear();
        reports.append(&mut venue.pending);
        venue.at(batch[batch.len() - 1].local_time_ns);
        for r in &reports {
            e.on_event(r, &mut venue);
        }
        e.on_batch_end(&mut venue);
    }
    Out {
        intents: venue.intents,
        modes: venue.modes,
    }
}

#[test]
fn two_engines_fed_the_same_events_emit_identical_intents() {
    let cfg = default_config();
    let rec = events(&cfg);
    assert_eq!(rec.bad_lines, 0);
    let a = run(&cfg, &rec);
    let b = run(&cfg, &rec);
    assert!(!a.intents.is_empty());
    assert_eq!(a.intents, b.intents);
    assert_eq!(a.modes, b.modes);
    let places = a
        .intents
        .iter()
        .filter(|i| i.kind == IntentKind::Place)
        .count();
    let cancels = a.intents.len() - places;
    eprintln!(
        "{} intents: {places} places, {cancels} cancels; {} mode changes",
        a.intents.len(),
        a.modes.len()
    );
    for m in a.modes.iter().take(10) {
        eprintln!("{m:?}");
    }
}
