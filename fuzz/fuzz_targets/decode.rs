//! The event decoder (`eventflow::event::decode`, its fast scanner and
//! `decode_value`) on arbitrary bytes.
//!
//! Properties, beyond never panicking:
//! - the fast path answers exactly as serde alone (`decode_with_serde`):
//!   the same event, or the same error;
//! - a record over 16 KiB is refused as too large;
//! - an accepted event, written back with `to_json`, decodes to the same
//!   event, and writing that again gives the same bytes;
//! - what was accepted is valid: identifiers within their rules, `ts`
//!   within 0..=MAX_TS, an IP masked;
//! - a JSON value decodes with `decode_value` as its text does with `decode`
//!   (the batch path and the line path agree).
#![no_main]

use eventflow::event::{
    Event, MAX_EVENT_BYTES, MAX_EVENT_ID_LEN, MAX_ID_LEN, MAX_TS, decode, decode_value,
    decode_with_serde, is_identifier, mask_ip,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);
    if data.len() > MAX_EVENT_BYTES {
        assert!(decoded.as_ref().is_err_and(|e| e.too_large), "{decoded:?}");
        return;
    }
    assert_eq!(
        decoded,
        decode_with_serde(data),
        "the fast path and serde disagree on {:?}",
        String::from_utf8_lossy(data)
    );
    if let Ok(event) = &decoded {
        check_valid(event);
        let json = event.to_json();
        let again = decode(json.as_bytes())
            .unwrap_or_else(|e| panic!("{json} was written from an accepted event: {e}"));
        assert_eq!(&again, event, "{json}");
        assert_eq!(again.to_json(), json);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let text = value.to_string();
        // (Without serde_json's float_roundtrip, a float may not read back
        // as the same value: then the two inputs differ.)
        let same = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v == value);
        if text.len() <= MAX_EVENT_BYTES && same {
            let from_value = decode_value(&value);
            let from_text = decode(text.as_bytes());
            match (&from_value, &from_text) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.field, b.field, "{text}: {a} / {b}"),
                _ => panic!(
                    "decode_value and decode disagree on {text}: {from_value:?} / {from_text:?}"
                ),
            }
        }
    }
});

fn check_valid(event: &Event<'_>) {
    if let Some(ts) = event.ts() {
        assert!((0..=MAX_TS).contains(&ts), "ts {ts}");
    }
    if let Some(id) = event.id() {
        assert!(is_identifier(id, MAX_EVENT_ID_LEN), "id {id:?}");
    }
    let scope = event.id_scope();
    assert!(
        scope.is_empty() || is_identifier(scope, MAX_ID_LEN),
        "{scope:?}"
    );
    let ip = match event {
        Event::Visit(v) => v.ip.as_deref(),
        Event::Pageview(p) => p.ip.as_deref(),
        _ => None,
    };
    if let Some(ip) = ip {
        let parsed: std::net::IpAddr = ip.parse().expect("a masked IP is an IP");
        assert_eq!(mask_ip(parsed), parsed, "{ip} is not masked");
    }
}
