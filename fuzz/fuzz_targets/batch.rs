//! The batch endpoint's body handling (`POST /api/events`:
//! `eventflow::http::ingest::prepare_batch`, which the handler calls) on
//! arbitrary bodies: JSON arrays and NDJSON.
//!
//! Properties, beyond never panicking:
//! - all or nothing: the batch is accepted exactly when every record of it
//!   is accepted alone (as a batch of one), and a refusal names the first
//!   record refused (`events[i]`) or the body as a whole (`events:`);
//! - an accepted batch holds one line per record, and the counts add up;
//! - each line decodes to the record's event, stamped with `now` when it
//!   had no `ts` or one more than `max_future_ms` ahead (then counted as
//!   clamped), never a tick, never later than `now + max_future_ms`.
#![no_main]

use eventflow::event::{Event, EventType, MAX_EVENT_BYTES, decode};
use eventflow::http::ingest::{Prepared, prepare_batch, split_batch};
use libfuzzer_sys::fuzz_target;

/// 2025-11-24T16:00:00Z, and the default `window.max_future_ms`.
const NOW: i64 = 1_764_000_000_000;
const MAX_FUTURE_MS: i64 = 5_000;

fuzz_target!(|body: &[u8]| {
    let result = prepare_batch(body, NOW, MAX_FUTURE_MS, Prepared::default());
    let Ok(records) = split_batch(body) else {
        let err = result.err().expect("a body that does not split is refused");
        assert!(err.to_string().starts_with("events: "), "{err}");
        return;
    };
    // Each record alone, as a one-element array.
    let alone: Vec<bool> = records
        .iter()
        .map(|r| {
            let mut one = b"[".to_vec();
            one.extend_from_slice(r);
            one.push(b']');
            // (`{..},{..}` is one NDJSON record, refused, but two elements.)
            prepare_batch(&one, NOW, MAX_FUTURE_MS, Prepared::default())
                .is_ok_and(|b| b.accepted == 1)
        })
        .collect();
    let batch = match result {
        Err(err) => {
            let msg = err.to_string();
            match alone.iter().position(|ok| !ok) {
                Some(i) => assert!(msg.starts_with(&format!("events[{i}].")), "{i}: {msg}"),
                None => panic!("every record is accepted alone, the batch is refused: {msg}"),
            }
            return;
        }
        Ok(batch) => batch,
    };
    assert!(
        alone.iter().all(|ok| *ok),
        "a batch accepted with a record refused alone"
    );
    assert_eq!(batch.accepted, records.len());
    assert_eq!(batch.by_type.iter().sum::<u64>(), records.len() as u64);
    assert_eq!(batch.by_type[EventType::Tick.index()], 0);
    let out = batch.events.as_bytes();
    let lines: Vec<&[u8]> = match out.strip_suffix(b"\n") {
        Some(body) => body.split(|&b| b == b'\n').collect(),
        None => {
            assert!(out.is_empty());
            Vec::new()
        }
    };
    assert_eq!(lines.len(), records.len());
    let mut clamped = 0;
    for (line, record) in lines.iter().zip(&records) {
        assert!(line.len() <= MAX_EVENT_BYTES);
        let stamped = decode(line).expect("a stamped line decodes");
        let mut expected: Event<'_> = decode(record).expect("an accepted record decodes");
        match expected.ts() {
            None => expected.set_ts(NOW),
            Some(ts) if ts > NOW + MAX_FUTURE_MS => {
                expected.set_ts(NOW);
                clamped += 1;
            }
            Some(_) => {}
        }
        assert_eq!(stamped, expected);
        assert!(stamped.ts().is_some_and(|ts| ts <= NOW + MAX_FUTURE_MS));
    }
    assert_eq!(batch.clamped, clamped);
});
