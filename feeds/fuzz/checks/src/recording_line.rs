//! Arbitrary bytes written to a file, read back by `RecordingReader` (plain text, or gzip when the
//! bytes start with the gzip magic), and every good line decoded. Never panics; the reader's
//! counters agree with what it returned; a good line has a non-empty payload and a non-negative
//! timestamp; a decode error leaves `levels()` empty.

use engine::Instrument;
use feeds::{Decoder, RecordingReader};
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "ringmaker-fuzz-recording-{}.txt",
            std::process::id()
        ))
    })
}

/// One fuzz input: must never panic (see the module docs for what is checked).
pub fn fuzz(data: &[u8]) {
    let p = path();
    std::fs::write(p, data).expect("write temp file");
    DECODER.with_borrow_mut(|dec| read(p, data, dec));
}

thread_local! {
    static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::new(&[
        Instrument::new("BTCUSDT", "0.10", "0.001", "0.001", "100").unwrap(),
    ]));
}

fn read(p: &PathBuf, data: &[u8], dec: &mut Decoder) {
    let mut r = RecordingReader::open(&[p]).expect("open temp file");
    let (mut good, mut bad) = (0u64, 0u64);
    while let Some(line) = r.next() {
        match line {
            Ok(l) => {
                good += 1;
                assert!(l.local_ns >= 0);
                assert!(!l.json.is_empty());
                assert!(!l.json.ends_with(b"\n") && !l.json.ends_with(b"\r"));
                assert_eq!(l.file, 0);
                if dec.decode(l.json, l.local_ns).is_err() {
                    assert!(dec.levels().is_empty());
                }
            }
            Err(_) => bad += 1,
        }
        if !data.starts_with(&[0x1f, 0x8b]) {
            assert!(good + bad <= data.len() as u64 + 1, "more lines than bytes");
        }
    }
    let st = r.stats();
    assert_eq!(st.bad_lines, bad);
    assert_eq!(st.files, 1);
    assert!(st.lines >= good);
    assert!(r.next().is_none(), "reader restarted after the end");
}
