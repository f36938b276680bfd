//! Page views on arbitrary input: the middleware's log line converter
//! (`eventflow::restore::middleware_pageview`) on the bytes as a line, and
//! `eventflow::event::Pageview::utm` on them as a query string.
//!
//! Properties, beyond never panicking:
//! - `utm`: every value present is trimmed, not empty, at most 256
//!   characters (the wire format's UTM rule), and the same whether the query
//!   is written as given or re-encoded (as the middleware's query objects
//!   are);
//! - a line is converted exactly when it is a JSON object with a
//!   `timestamp` and no `type`; the result is the same every time, is an
//!   object typed `pageview` with a `mw:` id and `ts` the timestamp's
//!   milliseconds, keeps the line's other non-null fields, and is not
//!   converted again;
//! - when the converted line decodes, it is that page view, and its UTM
//!   parameters are the query object's `utm_*` strings.
#![no_main]

use std::borrow::Cow;

use eventflow::event::{Event, MAX_UTM_LEN, Pageview, Utm, decode};
use eventflow::restore::middleware_pageview;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    check_utm(&String::from_utf8_lossy(data));
    check_middleware(data);
});

fn pageview(query: &str) -> Pageview<'_> {
    Pageview {
        id: None,
        path: Cow::Borrowed("/"),
        method: None,
        query: Some(Cow::Borrowed(query)),
        referrer: None,
        user_agent: None,
        ip: None,
        session_id: None,
        client_id: None,
        campaign_id: None,
        webinar_id: None,
        status: None,
        ts: None,
    }
}

fn values(utm: &Utm<'_>) -> [Option<String>; 5] {
    [
        &utm.source,
        &utm.medium,
        &utm.campaign,
        &utm.term,
        &utm.content,
    ]
    .map(|v| v.as_deref().map(str::to_owned))
}

fn check_utm(query: &str) {
    let utm = pageview(query).utm();
    for v in values(&utm).into_iter().flatten() {
        assert!(!v.is_empty() && v.trim() == v, "{query:?}: {v:?}");
        assert!(
            v.chars().count() <= MAX_UTM_LEN,
            "{query:?}: {} characters",
            v.chars().count()
        );
    }
    let reencoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(query.as_bytes()))
        .finish();
    assert_eq!(
        values(&pageview(&reencoded).utm()),
        values(&utm),
        "{query:?} re-encoded as {reencoded:?}"
    );
}

fn check_middleware(line: &[u8]) {
    let converted = middleware_pageview(line);
    let object = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) if !m.contains_key("type") && m.contains_key("timestamp") => m,
        _ => {
            assert!(converted.is_none(), "{converted:?}");
            return;
        }
    };
    let converted = converted.expect("a middleware line is converted");
    assert_eq!(
        middleware_pageview(line),
        Some(converted.clone()),
        "not deterministic"
    );
    let Ok(json) = converted else { return };
    let Ok(Value::Object(out)) = serde_json::from_str::<Value>(&json) else {
        panic!("not a JSON object: {json}");
    };
    assert_eq!(out["type"], "pageview");
    let id = out["id"].as_str().expect("an id");
    assert!(id.len() == 35 && id.starts_with("mw:"), "{id}");
    let ts = object["timestamp"]
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .expect("converted, so the timestamp is an instant")
        .as_millisecond();
    assert_eq!(out["ts"], ts);
    for (k, v) in &object {
        if !(v.is_null() || ["timestamp", "id", "ts", "status"].contains(&k.as_str())) {
            assert_eq!(&out[k], v, "{k}");
        }
    }
    assert!(
        middleware_pageview(json.as_bytes()).is_none(),
        "converted twice"
    );

    let Ok(Event::Pageview(p)) = decode(json.as_bytes()) else {
        return;
    };
    assert_eq!(p.ts, Some(ts));
    assert_eq!(p.id.as_deref(), Some(id));
    if let Some(Value::Object(q)) = object.get("query") {
        let expected = [
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
        ]
        .map(|k| {
            let text = match q.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => return None,
            };
            Some(text.trim())
                .filter(|v| !v.is_empty() && v.chars().count() <= MAX_UTM_LEN)
                .map(str::to_owned)
        });
        assert_eq!(values(&p.utm()), expected, "{json}");
    }
}
