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
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::admission::Kind;
use super::openapi::event_batch;
use super::{ApiError, AppState, Auth, ErrorBody, Peer};
use crate::auth::{AuthError, Claims, IngestFor};
use crate::config::IngestMode;
use crate::event::{self, Event, EventType, Identifier, MAX_EVENT_BYTES, check_identifier};
use crate::source::eventlog::LogWriter;
use crate::source::nats::{Outgoing, Subjects};
use crate::source::spool::NatsSink;

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
        use governor::clock::Clock as _;
        self.0.check_key(&ip).map_err(|not_until| {
            ApiError::RateLimited(
                not_until.wait_time_from(governor::clock::DefaultClock::default().now()),
            )
        })
    }

    /// Forgets addresses that have been quiet (bounded memory).
    pub fn sweep(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if super::serve::body_timed_out(&e) {
            ApiError::BodyTimeout(format!("body: {e}"))
        } else {
            ApiError::TooLarge(format!("body: at most {limit} bytes are accepted"))
        }
    })
}

/// The body as a JSON object. A key given twice is refused, as the batch
/// endpoint and every other source refuse it (serde would keep the last).
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    struct Object(Map<String, Value>);
    impl<'de> serde::Deserialize<'de> for Object {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Object;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Object, A::Error> {
                    let mut out = Map::new();
                    while let Some((k, v)) = map.next_entry::<String, Value>()? {
                        if out.contains_key(&k) {
                            return Err(serde::de::Error::custom(format_args!(
                                "duplicate field `{k}`"
                            )));
                        }
                        out.insert(k, v);
                    }
                    Ok(Object(out))
                }
            }
            d.deserialize_any(Visitor)
        }
    }
    match serde_json::from_slice::<Object>(body) {
        Ok(Object(m)) => Ok(m),
        Err(e) if e.is_data() => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(_)) => Err(ApiError::BadRequest(format!(
                "event: {}",
                e.to_string().split(" at line ").next().unwrap_or_default()
            ))),
            _ => Err(ApiError::BadRequest("event: must be a JSON object".into())),
        },
        Err(e) => Err(ApiError::BadRequest(format!(
            "event: is not valid JSON ({e})"
        ))),
    }
}

/// The address a request comes from: the peer's, or, when the peer is a
/// trusted proxy, the rightmost `X-Forwarded-For` entry that is not one (a
/// client can prepend anything; only what our proxies appended is believed).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for hop in value.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
    }
    client
}

/// Guards the browser endpoints before anything is read: when
/// `http.allowed_origins` is set, a request from a page of another origin is
/// refused (`403`) — CORS only stops a browser reading the answer, not the
/// request landing; and each client address gets its rate (`429` with
/// `Retry-After`).
pub async fn guard(
    State(s): State<AppState>,
    peer: Peer,
    request: Request,
    next: Next,
) -> Response {
    let allowed = &s.settings.http.allowed_origins;
    if request.method() != Method::OPTIONS
        && !allowed.is_empty()
        && let Some(origin) = request.headers().get(header::ORIGIN)
        && !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes())
    {
        let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        return ApiError::Forbidden(format!("origin: {shown:?} is not in http.allowed_origins"))
            .into_response();
    }
    let mut request = request;
    let ip = client_ip(peer.0.ip(), request.headers(), &s.trusted_proxies);
    let mut caller = Caller { ip, key: None };
    if s.settings.auth.ingest == IngestMode::Signed {
        let key = request
            .headers()
            .get(INGEST_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query_param(request.uri().query(), "key"));
        let verified = match key {
            None => Err(ApiError::Auth(AuthError::MissingIngestKey)),
            Some(k) => s.signer.verify(&k, (s.clock)()).map_err(ApiError::Auth),
        };
        match verified {
            Ok(claims) => caller.key = Some(claims),
            Err(e) => {
                s.metrics
                    .record(event_type_of(request.uri().path()), "rejected", 1);
                return e.into_response();
            }
        }
    }
    request.extensions_mut().insert(caller);
    if let Some(limiter) = &s.limiter
        && let Err(e) = limiter.check(ip)
    {
        s.metrics
            .record(event_type_of(request.uri().path()), "rejected", 1);
        return e.into_response();
    }
    next.run(request).await
}

/// Who sent a browser request, as [`guard`] found: the client address and,
/// with signed ingest, the verified key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    pub key: Option<Claims>,
}

/// The entities an event names that the engine keeps state for.
fn entities<'e>(event: &'e Event<'_>) -> Vec<(Kind, &'e str)> {
    match event {
        Event::Presence(e) => vec![(Kind::Webinar, &*e.webinar_id)],
        Event::Activity(e) => vec![(Kind::Webinar, &*e.webinar_id)],
        Event::Visit(e) => vec![
            (Kind::Campaign, &*e.campaign_id),
            (Kind::Client, &*e.client_id),
        ],
        Event::Conversion(e) => {
            vec![
                (Kind::Campaign, &*e.campaign_id),
                (Kind::Client, &*e.client_id),
            ]
        }
        Event::Pageview(e) => e
            .campaign_id
            .as_deref()
            .map(|c| (Kind::Campaign, c))
            .into_iter()
            .chain(e.client_id.as_deref().map(|c| (Kind::Client, c)))
            .collect(),
        Event::Tick(_) => Vec::new(),
    }
}

/// The header a browser sends its ingest key in (`?key=` works too, for
/// `navigator.sendBeacon`, which sets no headers).
pub const INGEST_KEY_HEADER: &str = "x-eventflow-key";

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// With `auth.ingest = "signed"`, whether the verified key may send `event`.
fn check_ingest_key(claims: Option<&Claims>, event: &Event<'_>) -> Result<(), ApiError> {
    let Some(claims) = claims else {
        return Err(AuthError::MissingIngestKey.into());
    };
    let (kind, id) = match event {
        Event::Presence(e) => (IngestFor::Webinar, Some(&*e.webinar_id)),
        Event::Visit(e) => (IngestFor::Campaign, Some(&*e.campaign_id)),
        Event::Conversion(e) => (IngestFor::Campaign, Some(&*e.campaign_id)),
        Event::Pageview(e) => (IngestFor::Client, e.client_id.as_deref()),
        _ => return Err(AuthError::Forbidden.into()),
    };
    match id {
        Some(id) if claims.can_ingest(kind, id) => Ok(()),
        Some(_) => Err(AuthError::Forbidden.into()),
        None => Err(ApiError::Forbidden(
            "client_id: a page view sent with an ingest key must name the key's client".into(),
        )),
    }
}

/// The event type a browser endpoint takes, for metrics.
fn event_type_of(path: &str) -> &'static str {
    if path.contains("/presence/") {
        EventType::Presence.as_str()
    } else if path.ends_with("/visit") {
        EventType::Visit.as_str()
    } else if path.ends_with("/conversion") {
        EventType::Conversion.as_str()
    } else {
        EventType::Pageview.as_str()
    }
}

/// A browser event: the body's JSON object, with the fields the URL fixes.
async fn public(
    s: &AppState,
    caller: Extension<Caller>,
    body: Body,
    event_type: EventType,
    fixed: &[(&'static str, &str)],
) -> Result<impl IntoResponse + use<>, ApiError> {
    let result = async {
        let body = read_body(body, MAX_EVENT_BYTES).await?;
        let mut object = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            json_object(&body)?
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
        if s.settings.auth.ingest == IngestMode::Signed {
            check_ingest_key(caller.key.as_ref(), &event)?;
        }
        s.admission
            .admit(caller.ip, &entities(&event), (s.clock)())
            .inspect_err(|e| {
                let bound = match e {
                    ApiError::Unavailable(_) => "max_public_entities",
                    _ => "new_entities_per_minute",
                };
                s.metrics
                    .entities_refused
                    .get_or_create(&crate::metrics::BoundLabels {
                        bound: bound.into(),
                    })
                    .inc();
            })?;
        let mut out = s.sink.prepare();
        out.push(&event, "event")?;
        s.sink.append(out).await.map_err(ApiError::Unavailable)?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            s.metrics.record(event_type.as_str(), "accepted", 1);
            Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: 1 })))
        }
        Err(e) => {
            s.metrics.record(event_type.as_str(), "rejected", 1);
            Err(e)
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/webinars/{webinar_id}/presence/ping",
    tag = "ingest",
    summary = "A viewer's heartbeat",
    description = "The viewer is live from the first ping until `presence.ttl_ms` after the \
        last one (or a leave). Send one every 30 s or so while the page is open.",
    params(("webinar_id" = Identifier, Path, description = "The webinar.", example = "w-17")),
    request_body(
        content = ref("#/components/schemas/PresenceBeacon"),
        content_type = "application/json",
        description = "The viewer.",
    ),
    responses((status = 202, description = "Durable.", body = Accepted)),
)]
pub async fn ping(
    State(s): State<AppState>,
    caller: Extension<Caller>,
    Path(webinar_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        caller,
        body,
        EventType::Presence,
        &[("webinar_id", &webinar_id), ("action", "ping")],
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/webinars/{webinar_id}/presence/leave",
    tag = "ingest",
    summary = "A viewer leaves",
    description = "The viewer stops being live now (a page's `pagehide`; `sendBeacon` works: \
        the body is read whatever its content type).",
    params(("webinar_id" = Identifier, Path, description = "The webinar.", example = "w-17")),
    request_body(
        content = ref("#/components/schemas/PresenceBeacon"),
        content_type = "application/json",
        description = "The viewer.",
    ),
    responses((status = 202, description = "Durable.", body = Accepted)),
)]
pub async fn leave(
    State(s): State<AppState>,
    caller: Extension<Caller>,
    Path(webinar_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        caller,
        body,
        EventType::Presence,
        &[("webinar_id", &webinar_id), ("action", "leave")],
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/public/campaigns/{campaign_id}/visit",
    tag = "ingest",
    summary = "A visit of a campaign page",
    description = "Visits are counted as distinct sessions; a visit whose user agent names a \
        known crawler counts as a bot visit only. Its UTM and link attribute the session's \
        later conversions.",
    params(("campaign_id" = Identifier, Path, description = "The campaign.", example = "cmp-9")),
    request_body(
        content = ref("#/components/schemas/BrowserVisit"),
        content_type = "application/json",
        description = "The visit.",
    ),
    responses((status = 202, description = "Durable.", body = Accepted)),
)]
pub async fn visit(
    State(s): State<AppState>,
    caller: Extension<Caller>,
    Path(campaign_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        caller,
        body,
        EventType::Visit,
        &[("campaign_id", &campaign_id)],
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/public/campaigns/{campaign_id}/conversion",
    tag = "ingest",
    summary = "A conversion (a registration, a survey submission)",
    description = "The first conversion of a client's `entry_id` counts; it is attributed \
        once, on arrival: its own UTM, else its session's first touch, else its link's.",
    params(("campaign_id" = Identifier, Path, description = "The campaign.", example = "cmp-9")),
    request_body(
        content = ref("#/components/schemas/BrowserConversion"),
        content_type = "application/json",
        description = "The conversion.",
    ),
    responses((status = 202, description = "Durable.", body = Accepted)),
)]
pub async fn conversion(
    State(s): State<AppState>,
    caller: Extension<Caller>,
    Path(campaign_id): Path<String>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(
        &s,
        caller,
        body,
        EventType::Conversion,
        &[("campaign_id", &campaign_id)],
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/pageviews",
    tag = "ingest",
    summary = "A page view",
    description = "A page request, with the page's query (its `utm_*` parameters are session \
        touches) and, when known, the client and campaign.",
    request_body(
        content = ref("#/components/schemas/BrowserPageview"),
        content_type = "application/json",
        description = "The page view.",
    ),
    responses((status = 202, description = "Durable.", body = Accepted)),
)]
pub async fn pageview(
    State(s): State<AppState>,
    caller: Extension<Caller>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    public(&s, caller, body, EventType::Pageview, &[]).await
}

/// `POST /api/events`: a JSON array or NDJSON of up to 10 000 events, for
/// backends holding an admin token.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "ingest",
    summary = "A batch of events, from a backend",
    description = "Up to 10 000 events of any type but `tick`, as a JSON array or as NDJSON \
        (one event per line; blank lines are skipped), at most 16 MiB. The batch is \
        accepted whole or refused whole: the error names the first record refused \
        (`events[i].field`). A publisher's `ts` is kept (without one: the time of arrival; \
        more than `window.max_future_ms` ahead: clamped to arrival).",
    request_body(
        description = "The events.",
        content(
            (inline(EventArray) = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 202, description = "Durable, every one.", body = BatchAccepted),
        (status = 400, description = "A record breaks a rule (the error names it: \
            `events[i].field`), or the body is not a JSON array or NDJSON.", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `limits.body_timeout_ms`.", body = ErrorBody),
        (status = 413, description = "Over 16 MiB, over 10 000 records, or a record over 16 KiB.", body = ErrorBody),
        (status = 503, description = "The events could not be made durable.", body = ErrorBody),
    ),
)]
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
        Json(BatchAccepted {
            accepted: batch.accepted,
            clamped: batch.clamped,
        }),
    ))
}

/// The array form of a batch.
pub struct EventArray;

impl utoipa::PartialSchema for EventArray {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        event_batch()
    }
}

impl ToSchema for EventArray {}

/// A browser event, durable (or, with NATS core, handed to NATS).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always 1.
    #[schema(minimum = 1, maximum = 1)]
    pub accepted: u32,
}

/// A batch, accepted whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// Records accepted: every record of the batch.
    pub accepted: usize,
    /// Records whose `ts` lay more than `window.max_future_ms` ahead of
    /// arrival, applied at arrival.
    pub clamped: u64,
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
    fn the_client_is_the_rightmost_address_no_trusted_proxy_added() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let from = |peer, h: &HeaderMap| client_ip(ip(peer), h, &trusted);
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            from("203.0.113.5", &headers(&["1.2.3.4"])),
            ip("203.0.113.5")
        );
        // Behind our proxies: the rightmost address they did not add.
        assert_eq!(
            from("10.0.0.1", &headers(&["6.6.6.6, 198.51.100.7, 10.0.0.2"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            from("10.0.0.1", &headers(&["198.51.100.7", "10.0.0.9"])),
            ip("198.51.100.7"),
            "over several headers"
        );
        // Nothing but proxies (or no header): the last proxy seen.
        assert_eq!(from("10.0.0.1", &headers(&["10.0.0.3"])), ip("10.0.0.3"));
        assert_eq!(from("10.0.0.1", &HeaderMap::new()), ip("10.0.0.1"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(from("10.0.0.1", &headers(&["nonsense"])), ip("10.0.0.1"));
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
