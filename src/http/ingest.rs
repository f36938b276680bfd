//! HTTP ingest (DESIGN §5): browser endpoints for single events and the
//! authenticated batch endpoint for backends, and the [`Sink`] they write to.
//!
//! An event is validated, masked, stamped and made durable before the `202`
//! leaves: appended to the local log, or stored by the JetStream stream (or,
//! while NATS is unreachable, appended to the local spool). Browser endpoints take the
//! identifier in the URL, ignore any `ts` in the body (browser clocks are
//! never trusted) and are rate-limited per client address. The batch
//! endpoint keeps a publisher's `ts`, clamping those more than
//! `window.max_future_ms` ahead of arrival to the arrival time; it accepts a
//! batch whole or refuses it whole.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::{Map, Value, json};

use super::{ApiError, AppState, Auth, Peer};
use crate::auth::AuthError;
use crate::event::{self, Event, EventType, MAX_EVENT_BYTES, check_identifier};
use crate::eventlog::LogWriter;
use crate::nats::{NatsSink, Outgoing, Subjects};

/// Where accepted events go.
pub enum Sink {
    /// The local log (embedded mode).
    Log(LogWriter),
    /// NATS: the JetStream stream (with the spool), or core subjects.
    Nats(Box<NatsSink>),
}

impl Sink {
    /// A buffer for events bound for this sink.
    pub fn prepare(&self) -> Prepared {
        Prepared {
            buf: Vec::new(),
            items: Vec::new(),
            subjects: match self {
                Sink::Log(_) => None,
                Sink::Nats(n) => Some(n.subjects.clone()),
            },
        }
    }

    /// Makes `events` durable (or, in core mode, hands them to NATS).
    pub async fn append(&self, events: Prepared) -> Result<(), String> {
        if events.buf.is_empty() {
            return Ok(());
        }
        match self {
            Sink::Log(log) => log
                .append(events.buf)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Sink::Nats(nats) => {
                let bytes = Bytes::from(events.buf);
                let out = events
                    .items
                    .into_iter()
                    .map(|i| Outgoing {
                        subject: i.subject,
                        id: i.id,
                        payload: bytes.slice(i.start..i.end),
                    })
                    .collect();
                nats.send(out).await
            }
        }
    }
}

/// Stamped events as JSON lines, with their subjects when bound for NATS.
/// (`Prepared::default()` is bound for the local log.)
#[derive(Default)]
pub struct Prepared {
    buf: Vec<u8>,
    items: Vec<Item>,
    subjects: Option<Subjects>,
}

struct Item {
    start: usize,
    end: usize,
    subject: String,
    id: Option<String>,
}

impl Prepared {
    /// The events as JSON lines, each ended by `\n`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Adds an event; refuses one that no longer fits the size limit once
    /// stamped (`what` names it in the error).
    pub fn push(&mut self, ev: &Event<'_>, what: &str) -> Result<(), ApiError> {
        let start = self.buf.len();
        serde_json::to_writer(&mut self.buf, ev).map_err(|e| ApiError::Internal(e.into()))?;
        let end = self.buf.len();
        if let Err(e) = check_stamped_size(end - start, what) {
            self.buf.truncate(start);
            return Err(e);
        }
        if let Some(subjects) = &self.subjects {
            if let Some(field) = Subjects::unpublishable(ev) {
                self.buf.truncate(start);
                let at = if what == "event" {
                    String::new()
                } else {
                    format!("{what}.")
                };
                return Err(ApiError::BadRequest(format!(
                    "{at}{field}: must not start or end with '.' or hold '..' (it names a NATS subject)"
                )));
            }
            self.items.push(Item {
                start,
                end,
                subject: subjects.event(ev),
                id: ev.id().map(str::to_owned),
            });
        }
        self.buf.push(b'\n');
        Ok(())
    }
}

/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Largest batch body.
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// Requests per second per client address on the public endpoints.
pub struct Limiter(DefaultKeyedRateLimiter<IpAddr>);

impl Limiter {
    pub fn new(per_sec: u32) -> Option<Limiter> {
        NonZeroU32::new(per_sec)
            .map(|n| Limiter(DefaultKeyedRateLimiter::keyed(Quota::per_second(n))))
    }

    fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.0.check_key(&ip).map_err(|_| ApiError::RateLimited)
    }

    /// Forgets addresses that have been quiet (bounded memory).
    pub fn sweep(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("body: at most {limit} bytes are accepted")))
}

/// A browser event: the body's JSON object, with the fields the URL fixes.
async fn public(
    s: &AppState,
    peer: Peer,
    body: Body,
    event_type: EventType,
    fixed: &[(&'static str, &str)],
) -> Result<impl IntoResponse + use<>, ApiError> {
    if let Some(limiter) = &s.limiter {
        limiter
            .check(peer.0.ip())
            .inspect_err(|_| s.metrics.record(event_type.as_str(), "rejected", 1))?;
    }
    let result = async {
        let body = read_body(body, MAX_EVENT_BYTES).await?;
        let mut object = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(ApiError::BadRequest("event: must be a JSON object".into())),
                Err(e) => {
                    return Err(ApiError::BadRequest(format!(
                        "event: is not valid JSON ({e})"
                    )));
                }
            }
        };
        object.insert("type".into(), json!(event_type.as_str()));
        object.remove("ts");
        for (field, value) in fixed {
            if field.ends_with("_id") {
                check_identifier(field, value)?;
                if let Some(given) = object.get(*field)
                    && given.as_str() != Some(value)
                {
                    return Err(ApiError::BadRequest(format!(
                        "{field}: does not match the URL"
                    )));
                }
            }
            object.insert((*field).into(), json!(value));
        }
        let value = Value::Object(object);
        let mut event = event::decode_value(&value)?;
        event.set_ts((s.clock)());
        event.scope_public_id();
        let mut out = s.sink.prepare();
        out.push(&event, "event")?;
        s.sink.append(out).await.map_err(ApiError::Unavailable)?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            s.metrics.record(event_type.as_str(), "accepted", 1);
            Ok((StatusCode::ACCEPTED, Json(json!({"accepted": 1}))))
        }
        Err(e) => {
            s.metrics.record(event_type.as_str(), "rejected", 1);
            Err(e)
        }
    }
}

pub async fn ping(
    State(s): State<AppState>,
    peer: Peer,
    Path(webinar_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        peer,
        body,
        EventType::Presence,
        &[("webinar_id", &webinar_id), ("action", "ping")],
    )
    .await
}

pub async fn leave(
    State(s): State<AppState>,
    peer: Peer,
    Path(webinar_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        peer,
        body,
        EventType::Presence,
        &[("webinar_id", &webinar_id), ("action", "leave")],
    )
    .await
}

pub async fn visit(
    State(s): State<AppState>,
    peer: Peer,
    Path(campaign_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        peer,
        body,
        EventType::Visit,
        &[("campaign_id", &campaign_id)],
    )
    .await
}

pub async fn conversion(
    State(s): State<AppState>,
    peer: Peer,
    Path(campaign_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        peer,
        body,
        EventType::Conversion,
        &[("campaign_id", &campaign_id)],
    )
    .await
}

pub async fn pageview(
    State(s): State<AppState>,
    peer: Peer,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(&s, peer, body, EventType::Pageview, &[]).await
}

/// `POST /api/events`: a JSON array or NDJSON of up to 10 000 events, for
/// backends holding an admin token.
pub async fn batch(
    State(s): State<AppState>,
    Auth(claims): Auth,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    if !claims.is_admin() {
        return Err(AuthError::Forbidden.into());
    }
    let body = read_body(body, MAX_BATCH_BYTES).await?;
    let batch = prepare_batch(
        &body,
        (s.clock)(),
        s.settings.window.max_future_ms,
        s.sink.prepare(),
    )?;
    s.sink
        .append(batch.events)
        .await
        .map_err(ApiError::Unavailable)?;
    for t in EventType::ALL {
        s.metrics
            .record(t.as_str(), "accepted", batch.by_type[t.index()]);
    }
    s.metrics.clamped.inc_by(batch.clamped);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": batch.accepted, "clamped": batch.clamped})),
    ))
}

/// A batch the endpoint accepted whole: its events, stamped, and what the
/// response and the metrics report.
pub struct Batch {
    pub events: Prepared,
    pub accepted: usize,
    pub clamped: u64,
    pub by_type: [u64; EventType::ALL.len()],
}

/// Splits a batch body (see [`split_batch`]), decodes every record, stamps
/// those without `ts` with `now` and clamps those more than `max_future_ms`
/// ahead of it to `now`, and adds them to `out` — all of them, or none: the
/// error names the first record refused (`events[i]`).
pub fn prepare_batch(
    body: &[u8],
    now: i64,
    max_future_ms: i64,
    mut out: Prepared,
) -> Result<Batch, ApiError> {
    let records = split_batch(body)?;
    if records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::TooLarge(format!(
            "events: {} records; at most {MAX_BATCH_RECORDS} are accepted per batch",
            records.len()
        )));
    }
    let mut clamped = 0u64;
    let mut by_type = [0u64; EventType::ALL.len()];
    for (i, raw) in records.iter().enumerate() {
        let at = |e: event::DecodeError| -> ApiError {
            let msg = format!("events[{i}].{e}");
            if e.too_large {
                ApiError::TooLarge(msg)
            } else {
                ApiError::BadRequest(msg)
            }
        };
        let mut ev = event::decode(raw).map_err(at)?;
        if ev.event_type() == EventType::Tick {
            return Err(ApiError::BadRequest(format!(
                "events[{i}].type: tick records are written by the service itself"
            )));
        }
        match ev.ts() {
            None => ev.set_ts(now),
            Some(ts) if ts > now.saturating_add(max_future_ms) => {
                ev.set_ts(now);
                clamped += 1;
            }
            Some(_) => {}
        }
        by_type[ev.event_type().index()] += 1;
        out.push(&ev, &format!("events[{i}]"))?;
    }
    Ok(Batch {
        events: out,
        accepted: records.len(),
        clamped,
        by_type,
    })
}

/// An event must still fit the size limit as it is logged (with its type,
/// the fields from the URL and its stamp), or the engine would refuse what
/// ingest acknowledged.
fn check_stamped_size(len: usize, what: &str) -> Result<(), ApiError> {
    if len > MAX_EVENT_BYTES {
        Err(ApiError::TooLarge(format!(
            "{what}: is {len} bytes once stamped; at most {MAX_EVENT_BYTES} bytes are accepted"
        )))
    } else {
        Ok(())
    }
}

/// The records of a batch body: the elements of a JSON array, or the
/// non-blank lines of NDJSON.
pub fn split_batch(body: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        let raws: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(trimmed).map_err(|e| {
                ApiError::BadRequest(format!("events: is not a valid JSON array ({e})"))
            })?;
        Ok(raws.into_iter().map(|r| r.get().as_bytes()).collect())
    } else {
        Ok(body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_as_arrays_or_ndjson() {
        let arr = split_batch(br#" [{"a":1}, {"b":[2,3]}] "#).unwrap();
        assert_eq!(arr, [&br#"{"a":1}"#[..], br#"{"b":[2,3]}"#]);
        let nd = split_batch(b"{\"a\":1}\r\n\n  \n{\"b\":2}").unwrap();
        assert_eq!(nd, [&b"{\"a\":1}"[..], b"{\"b\":2}"]);
        assert!(split_batch(b"[{\"a\":1}").is_err());
    }

    #[test]
    fn a_record_is_refused_alike_in_an_array_and_in_ndjson() {
        // Found by fuzz/fuzz_targets/batch.rs: invalid UTF-8 in an unknown
        // field passed as an NDJSON line.
        let record =
            b"{\"type\":\"pageview\",\"path\":\"/a\",\"sta\":\"pagevi\x9fw\",\"we(dpath!us\":21}";
        let mut ndjson = record.to_vec();
        ndjson.push(b'\n');
        let array = [&b"["[..], record, b"]"].concat();
        for body in [ndjson, array] {
            let err = prepare_batch(&body, 0, 0, Prepared::default()).err();
            assert!(err.is_some_and(|e| e.to_string().starts_with("events")));
        }
    }
}
