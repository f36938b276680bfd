//! Events: the wire format of DESIGN §5 and its single decode path.
//!
//! Every source (the local log, HTTP bodies, NATS messages, `replay` input)
//! turns bytes into an [`Event`] through [`decode`]. Decoding validates every
//! field against the contract and names the field and the rule when it
//! refuses; it masks IP addresses (IPv4 /24, IPv6 /48) before anything else
//! sees them, ignores unknown fields, and borrows strings from the input
//! whenever they carry no JSON escapes, so the hot path allocates nothing.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod scan;
pub mod schema;

pub use schema::{EventId, Identifier, IpAddress, PageQuery, Timestamp, UtmText};

/// Largest accepted event, in bytes of JSON.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// Longest identifier (`webinar_id`, `viewer_id`, ...), in characters.
pub const MAX_ID_LEN: usize = 128;
/// Longest event `id`, in characters.
pub const MAX_EVENT_ID_LEN: usize = 64;
/// Longest UTM value after trimming, in characters.
pub const MAX_UTM_LEN: usize = 256;
/// Latest accepted `ts`: the last millisecond of year 9999 (so that adding
/// a ttl or a bucket length can never overflow).
pub const MAX_TS: i64 = 253_402_300_799_999;

/// One decoded, validated event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event<'a> {
    Presence(Presence<'a>),
    Activity(Activity<'a>),
    // Campaign events are boxed: they carry many fields, and a presence
    // record (most of the traffic) would otherwise be moved as one.
    Visit(Box<Visit<'a>>),
    Conversion(Box<Conversion<'a>>),
    Pageview(Box<Pageview<'a>>),
    Tick(Tick),
}

/// The `type` tag of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Presence,
    Activity,
    Visit,
    Conversion,
    Pageview,
    Tick,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Presence,
        EventType::Activity,
        EventType::Visit,
        EventType::Conversion,
        EventType::Pageview,
        EventType::Tick,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Presence => "presence",
            EventType::Activity => "activity",
            EventType::Visit => "visit",
            EventType::Conversion => "conversion",
            EventType::Pageview => "pageview",
            EventType::Tick => "tick",
        }
    }

    /// Position in [`EventType::ALL`], for per-type counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A viewer's heartbeat or leave beacon. A viewer is live from a ping
/// until `presence.ttl_ms` after the last one, or until a leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Presence<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EventId>)]
    pub id: Option<Cow<'a, str>>,
    #[schema(value_type = Identifier)]
    pub webinar_id: Cow<'a, str>,
    /// Viewers are counted by this id: several tabs sending one id are one
    /// viewer.
    #[schema(value_type = Identifier)]
    pub viewer_id: Cow<'a, str>,
    pub action: PresenceAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    pub ts: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceAction {
    Ping,
    Leave,
}

/// Webinar engagement: a chat message, a question, a poll answer, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Activity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EventId>)]
    pub id: Option<Cow<'a, str>>,
    #[schema(value_type = Identifier)]
    pub webinar_id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Identifier>)]
    pub viewer_id: Option<Cow<'a, str>>,
    pub kind: ActivityKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    pub ts: Option<i64>,
}

/// The kinds of webinar engagement, in the order of [`ActivityKind::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Chat,
    Question,
    Poll,
    Download,
    Form,
    Giveaway,
    Cta,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 7] = [
        ActivityKind::Chat,
        ActivityKind::Question,
        ActivityKind::Poll,
        ActivityKind::Download,
        ActivityKind::Form,
        ActivityKind::Giveaway,
        ActivityKind::Cta,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Chat => "chat",
            ActivityKind::Question => "question",
            ActivityKind::Poll => "poll",
            ActivityKind::Download => "download",
            ActivityKind::Form => "form",
            ActivityKind::Giveaway => "giveaway",
            ActivityKind::Cta => "cta",
        }
    }

    /// Position in [`ActivityKind::ALL`], for per-kind counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// UTM parameters, trimmed; empty values are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Utm<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UtmText>)]
    pub source: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UtmText>)]
    pub medium: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UtmText>)]
    pub campaign: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UtmText>)]
    pub term: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UtmText>)]
    pub content: Option<Cow<'a, str>>,
}

impl Utm<'_> {
    pub fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.medium.is_none()
            && self.campaign.is_none()
            && self.term.is_none()
            && self.content.is_none()
    }
}

/// A view of a campaign or webinar page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Visit<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EventId>)]
    pub id: Option<Cow<'a, str>>,
    #[schema(value_type = Identifier)]
    pub client_id: Cow<'a, str>,
    #[schema(value_type = Identifier)]
    pub campaign_id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The webinar the page is about, if any (a client token then reads it).
    #[schema(value_type = Option<Identifier>)]
    pub webinar_id: Option<Cow<'a, str>>,
    /// The browser session: visits are counted as distinct sessions, and a
    /// session's visits attribute its later conversions.
    #[schema(value_type = Identifier)]
    pub session_id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The tracked link the visitor came through, if any.
    #[schema(value_type = Option<Identifier>)]
    pub link_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Utm::is_empty")]
    #[schema(value_type = Option<Utm>)]
    pub utm: Utm<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The marketing link's id as the landing URL carried it (`?cid=`),
    /// kept as text.
    #[schema(value_type = Option<UtmText>)]
    pub cid: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub referrer: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A user agent naming a known crawler makes this a bot visit, counted
    /// apart and nowhere else.
    #[schema(value_type = Option<String>)]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IpAddress>)]
    pub ip: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    pub ts: Option<i64>,
}

/// A registration or survey submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Conversion<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EventId>)]
    pub id: Option<Cow<'a, str>>,
    #[schema(value_type = Identifier)]
    pub client_id: Cow<'a, str>,
    #[schema(value_type = Identifier)]
    pub campaign_id: Cow<'a, str>,
    /// The registration or submission: the first conversion of a client's
    /// `entry_id` counts, later ones count nowhere.
    #[schema(value_type = Identifier)]
    pub entry_id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The browser session, whose visits attribute the conversion.
    #[schema(value_type = Option<Identifier>)]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Identifier>)]
    pub link_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Utm::is_empty")]
    #[schema(value_type = Option<Utm>)]
    pub utm: Utm<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UtmText>)]
    pub cid: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The id this registrant will use in the webinar.
    #[schema(value_type = Option<Identifier>)]
    pub viewer_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The webinar registered for, if any.
    #[schema(value_type = Option<Identifier>)]
    pub webinar_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    pub ts: Option<i64>,
}

/// A page request logged by the web app's middleware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Pageview<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EventId>)]
    pub id: Option<Cow<'a, str>>,
    #[schema(value_type = String, min_length = 1)]
    pub path: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub method: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PageQuery>)]
    pub query: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub referrer: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IpAddress>)]
    pub ip: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Identifier>)]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Identifier>)]
    pub client_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Identifier>)]
    pub campaign_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Identifier>)]
    pub webinar_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The HTTP status the page was answered with.
    #[schema(maximum = 65535)]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    pub ts: Option<i64>,
}

impl Pageview<'_> {
    /// The UTM parameters of the page's URL (`utm_source`, `utm_medium`,
    /// `utm_campaign`, `utm_term`, `utm_content` of `query`), URL-decoded and
    /// trimmed; empty ones and ones over [`MAX_UTM_LEN`] characters (which a
    /// visit's `utm` would be refused for) are absent, the first of a
    /// repeated one counts.
    pub fn utm(&self) -> Utm<'static> {
        let mut utm = Utm::default();
        let Some(query) = &self.query else {
            return utm;
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "utm_source" => &mut utm.source,
                "utm_medium" => &mut utm.medium,
                "utm_campaign" => &mut utm.campaign,
                "utm_term" => &mut utm.term,
                "utm_content" => &mut utm.content,
                _ => continue,
            };
            let value = value.trim();
            if slot.is_none() && !value.is_empty() && value.chars().count() <= MAX_UTM_LEN {
                *slot = Some(Cow::Owned(value.to_owned()));
            }
        }
        utm
    }
}

/// The service's own clock advance (DESIGN §2). Never accepted from outside
/// the service; `ts` is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tick {
    pub ts: i64,
}

impl<'a> Event<'a> {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::Presence(_) => EventType::Presence,
            Event::Activity(_) => EventType::Activity,
            Event::Visit(_) => EventType::Visit,
            Event::Conversion(_) => EventType::Conversion,
            Event::Pageview(_) => EventType::Pageview,
            Event::Tick(_) => EventType::Tick,
        }
    }

    /// The event time, when set.
    pub fn ts(&self) -> Option<i64> {
        match self {
            Event::Presence(e) => e.ts,
            Event::Activity(e) => e.ts,
            Event::Visit(e) => e.ts,
            Event::Conversion(e) => e.ts,
            Event::Pageview(e) => e.ts,
            Event::Tick(e) => Some(e.ts),
        }
    }

    /// Sets the event time (stamping on arrival, or clamping).
    pub fn set_ts(&mut self, ts: i64) {
        match self {
            Event::Presence(e) => e.ts = Some(ts),
            Event::Activity(e) => e.ts = Some(ts),
            Event::Visit(e) => e.ts = Some(ts),
            Event::Conversion(e) => e.ts = Some(ts),
            Event::Pageview(e) => e.ts = Some(ts),
            Event::Tick(e) => e.ts = ts,
        }
    }

    /// The client an event names, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Event::Visit(e) => Some(&e.client_id),
            Event::Conversion(e) => Some(&e.client_id),
            Event::Pageview(e) => e.client_id.as_deref(),
            _ => None,
        }
    }

    /// The optional idempotency `id`.
    pub fn id(&self) -> Option<&str> {
        match self {
            Event::Presence(e) => e.id.as_deref(),
            Event::Activity(e) => e.id.as_deref(),
            Event::Visit(e) => e.id.as_deref(),
            Event::Conversion(e) => e.id.as_deref(),
            Event::Pageview(e) => e.id.as_deref(),
            Event::Tick(_) => None,
        }
    }

    /// What an `id` is unique within (DESIGN §4 rule 1, kept per tenant):
    /// the webinar of presence and activity, the client of visits,
    /// conversions and page views (`""` for a page view naming none).
    pub fn id_scope(&self) -> &str {
        match self {
            Event::Presence(e) => &e.webinar_id,
            Event::Activity(e) => &e.webinar_id,
            Event::Visit(e) => &e.client_id,
            Event::Conversion(e) => &e.client_id,
            Event::Pageview(e) => e.client_id.as_deref().unwrap_or(""),
            Event::Tick(_) => "",
        }
    }

    /// The fingerprint that deduplicates the event: its scope (a webinar, or
    /// a client) and `id`, so that one webinar's or client's ids never
    /// suppress another's.
    pub fn id_key(&self) -> Option<u128> {
        let id = self.id()?;
        let kind = match self {
            Event::Presence(_) | Event::Activity(_) => "webinar",
            _ => "client",
        };
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for part in [kind, self.id_scope(), id] {
            h.update(part.as_bytes());
            h.update(&[0]);
        }
        Some(h.digest128())
    }

    /// Replaces an `id` sent to a public (browser) endpoint with one no
    /// backend's can equal: `pub-` and 32 hex digits derived from its scope
    /// and id. A browser's retry keeps its idempotency; a guessed id
    /// can no longer drop a backend's event (nor, through the stream's
    /// `Nats-Msg-Id`, its message).
    pub fn scope_public_id(&mut self) {
        let Some(key) = self.id_key() else { return };
        let scoped = Some(Cow::Owned(format!("pub-{key:032x}")));
        match self {
            Event::Presence(e) => e.id = scoped,
            Event::Activity(e) => e.id = scoped,
            Event::Visit(e) => e.id = scoped,
            Event::Conversion(e) => e.id = scoped,
            Event::Pageview(e) => e.id = scoped,
            Event::Tick(_) => {}
        }
    }

    /// The event as one line of the wire format (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }
}

/// Why an event was refused: the field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The offending field (`utm.source` for nested ones), or `event` for
    /// the record as a whole.
    pub field: Cow<'static, str>,
    /// What the field must be.
    pub rule: Cow<'static, str>,
    /// Whether the record was refused for its size (HTTP 413).
    pub too_large: bool,
}

impl DecodeError {
    fn new(field: impl Into<Cow<'static, str>>, rule: impl Into<Cow<'static, str>>) -> Self {
        DecodeError {
            field: field.into(),
            rule: rule.into(),
            too_large: false,
        }
    }

    fn missing(field: &'static str) -> Self {
        Self::new(field, "is required")
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for DecodeError {}

/// A string that borrows from the input when it has no escapes. (serde
/// borrows a bare `Cow<str>` field, but never one inside an `Option`.)
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl std::ops::Deref for CowStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

type S<'a> = CowStr<'a>;

fn c<'a>(v: Option<S<'a>>) -> Option<Cow<'a, str>> {
    v.map(|s| s.0)
}

/// The record as serde sees it: every field of every type, all optional, so
/// that the rules below can name the field that is wrong. [`scan`] builds
/// the same from flat records without serde.
#[derive(Deserialize, Default)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind_tag: Option<S<'a>>,
    #[serde(borrow)]
    id: Option<S<'a>>,
    ts: Option<i64>,
    #[serde(borrow)]
    webinar_id: Option<S<'a>>,
    #[serde(borrow)]
    viewer_id: Option<S<'a>>,
    #[serde(borrow)]
    action: Option<S<'a>>,
    #[serde(borrow)]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    client_id: Option<S<'a>>,
    #[serde(borrow)]
    campaign_id: Option<S<'a>>,
    #[serde(borrow)]
    session_id: Option<S<'a>>,
    #[serde(borrow)]
    link_id: Option<S<'a>>,
    #[serde(borrow)]
    entry_id: Option<S<'a>>,
    #[serde(borrow)]
    utm: Option<RawUtm<'a>>,
    #[serde(borrow)]
    cid: Option<S<'a>>,
    #[serde(borrow)]
    path: Option<S<'a>>,
    #[serde(borrow)]
    referrer: Option<S<'a>>,
    #[serde(borrow)]
    user_agent: Option<S<'a>>,
    #[serde(borrow)]
    ip: Option<S<'a>>,
    #[serde(borrow)]
    method: Option<S<'a>>,
    #[serde(borrow)]
    query: Option<Query<'a>>,
    status: Option<u16>,
}

/// A page view's `query`: the raw query string, or an object of strings (as
/// the web app's middleware logs it), which becomes the query string of its
/// entries in order (`utm_source=a&utm_medium=b`). `null` entries are left
/// out; numbers and booleans are taken as their text.
struct Query<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Query<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Query<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a query string or an object of strings")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Query(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Query(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Query(Cow::Owned(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = form_urlencoded::Serializer::new(String::new());
                while let Some((key, value)) =
                    map.next_entry::<Cow<'de, str>, serde_json::Value>()?
                {
                    use serde_json::Value;
                    let text = match value {
                        Value::Null => continue,
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(serde::de::Error::custom(format!(
                                "query.{key}: must be a string"
                            )));
                        }
                    };
                    out.append_pair(&key, &text);
                }
                Ok(Query(Cow::Owned(out.finish())))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize, Default)]
struct RawUtm<'a> {
    #[serde(borrow)]
    source: Option<S<'a>>,
    #[serde(borrow)]
    medium: Option<S<'a>>,
    #[serde(borrow)]
    campaign: Option<S<'a>>,
    #[serde(borrow)]
    term: Option<S<'a>>,
    #[serde(borrow)]
    content: Option<S<'a>>,
}

/// Field names and the JSON type each must have, for precise errors when
/// serde refuses a record.
const STRING_FIELDS: [&str; 17] = [
    "type",
    "id",
    "webinar_id",
    "viewer_id",
    "action",
    "kind",
    "client_id",
    "campaign_id",
    "session_id",
    "link_id",
    "entry_id",
    "cid",
    "path",
    "referrer",
    "user_agent",
    "ip",
    "method",
];
const UTM_FIELDS: [&str; 5] = ["source", "medium", "campaign", "term", "content"];

/// Decodes and validates one event from its JSON bytes.
pub fn decode(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(too_large(bytes.len()));
    }
    let mut raw = Raw::default();
    if scan::scan(bytes, &mut raw).is_some() {
        return validate(&mut raw);
    }
    decode_with_serde(bytes)
}

/// The general path: serde, with a diagnosis of what it refused. Public
/// only so that tests and the fuzz targets (`fuzz/`) can hold [`decode`]'s
/// fast path to answering alike; sources call [`decode`].
#[doc(hidden)]
pub fn decode_with_serde(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    // serde_json skips the strings of unknown fields without checking their
    // UTF-8: a record would be taken as a line and refused in an array.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DecodeError::new(
            "event",
            format!(
                "is not valid JSON (invalid UTF-8 at byte {})",
                e.valid_up_to()
            ),
        )
    })?;
    match serde_json::from_str::<Raw<'_>>(text) {
        Ok(mut raw) => validate(&mut raw),
        Err(err) => Err(diagnose(bytes, &err)),
    }
}

/// Decodes a JSON value that was already parsed (one element of a batch).
pub fn decode_value(value: &serde_json::Value) -> Result<Event<'_>, DecodeError> {
    match Raw::deserialize(value) {
        Ok(mut raw) => validate(&mut raw),
        Err(err) => {
            Err(diagnose_value(value).unwrap_or_else(|| DecodeError::new("event", err.to_string())))
        }
    }
}

/// The error for a record over [`MAX_EVENT_BYTES`].
pub fn too_large(len: usize) -> DecodeError {
    DecodeError {
        field: "event".into(),
        rule: format!("is {len} bytes; at most {MAX_EVENT_BYTES} bytes are accepted").into(),
        too_large: true,
    }
}

/// Finds which field made serde refuse the record. Only runs on the error path.
fn diagnose(bytes: &[u8], err: &serde_json::Error) -> DecodeError {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(_) => DecodeError::new("event", format!("is not valid JSON ({err})")),
        Ok(value) => {
            diagnose_value(&value).unwrap_or_else(|| {
                // A record is one line: the position adds nothing but noise,
                // and the message reads the same from every source.
                let text = err.to_string();
                let rule = text.split(" at line ").next().unwrap_or_default();
                DecodeError::new("event", rule.to_owned())
            })
        }
    }
}

fn diagnose_value(value: &serde_json::Value) -> Option<DecodeError> {
    use serde_json::Value;
    let Value::Object(map) = value else {
        return Some(DecodeError::new("event", "must be a JSON object"));
    };
    for field in STRING_FIELDS {
        if let Some(v) = map.get(field)
            && !(v.is_string() || v.is_null())
        {
            return Some(DecodeError::new(field, "must be a string"));
        }
    }
    if let Some(v) = map.get("ts")
        && !(v.is_i64() || v.is_null())
    {
        return Some(DecodeError::new(
            "ts",
            "must be an integer number of milliseconds since the Unix epoch",
        ));
    }
    if let Some(v) = map.get("status")
        && !(v.as_u64().is_some_and(|s| s <= u64::from(u16::MAX)) || v.is_null())
    {
        return Some(DecodeError::new("status", "must be an HTTP status code"));
    }
    match map.get("query") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(Value::Object(q)) => {
            if let Some((k, _)) = q
                .iter()
                .find(|(_, v)| matches!(v, Value::Array(_) | Value::Object(_)))
            {
                return Some(DecodeError::new(format!("query.{k}"), "must be a string"));
            }
        }
        Some(_) => {
            return Some(DecodeError::new(
                "query",
                "must be a query string or an object of strings",
            ));
        }
    }
    match map.get("utm") {
        None | Some(Value::Null) => None,
        Some(Value::Object(utm)) => UTM_FIELDS.iter().find_map(|f| {
            utm.get(*f)
                .filter(|v| !(v.is_string() || v.is_null()))
                .map(|_| DecodeError::new(format!("utm.{f}"), "must be a string"))
        }),
        Some(_) => Some(DecodeError::new("utm", "must be an object")),
    }
}

fn validate<'a>(raw: &mut Raw<'a>) -> Result<Event<'a>, DecodeError> {
    let tag = raw
        .kind_tag
        .as_deref()
        .ok_or(DecodeError::missing("type"))?;
    let Some(kind) = EventType::parse(tag) else {
        return Err(DecodeError::new(
            "type",
            format!(
                "unknown event type {tag:?}; expected one of presence, activity, visit, \
                 conversion, pageview, tick"
            ),
        ));
    };
    let ts = match raw.ts {
        Some(ts) if ts < 0 => {
            return Err(DecodeError::new(
                "ts",
                "must be a non-negative number of milliseconds since the Unix epoch",
            ));
        }
        Some(ts) if ts > MAX_TS => {
            return Err(DecodeError::new(
                "ts",
                "must be at most 253402300799999 (the end of year 9999) milliseconds since the Unix epoch",
            ));
        }
        ts => ts,
    };
    let id = optional_id(c(raw.id.take()), "id", MAX_EVENT_ID_LEN)?;
    Ok(match kind {
        EventType::Presence => {
            let action = match raw.action.as_deref() {
                None => return Err(DecodeError::missing("action")),
                Some("ping") => PresenceAction::Ping,
                Some("leave") => PresenceAction::Leave,
                Some(other) => {
                    return Err(DecodeError::new(
                        "action",
                        format!("unknown action {other:?}; expected \"ping\" or \"leave\""),
                    ));
                }
            };
            Event::Presence(Presence {
                id,
                webinar_id: required_id(c(raw.webinar_id.take()), "webinar_id")?,
                viewer_id: required_id(c(raw.viewer_id.take()), "viewer_id")?,
                action,
                ts,
            })
        }
        EventType::Activity => {
            let kind = match raw.kind.as_deref() {
                None => return Err(DecodeError::missing("kind")),
                Some(k) => ActivityKind::parse(k).ok_or_else(|| {
                    DecodeError::new(
                        "kind",
                        format!(
                            "unknown activity kind {k:?}; expected one of chat, question, poll, \
                             download, form, giveaway, cta"
                        ),
                    )
                })?,
            };
            Event::Activity(Activity {
                id,
                webinar_id: required_id(c(raw.webinar_id.take()), "webinar_id")?,
                viewer_id: optional_id(c(raw.viewer_id.take()), "viewer_id", MAX_ID_LEN)?,
                kind,
                ts,
            })
        }
        EventType::Visit => Event::Visit(Box::new(Visit {
            id,
            client_id: required_id(c(raw.client_id.take()), "client_id")?,
            campaign_id: required_id(c(raw.campaign_id.take()), "campaign_id")?,
            webinar_id: optional_id(c(raw.webinar_id.take()), "webinar_id", MAX_ID_LEN)?,
            session_id: required_id(c(raw.session_id.take()), "session_id")?,
            link_id: optional_id(c(raw.link_id.take()), "link_id", MAX_ID_LEN)?,
            utm: utm(raw.utm.take())?,
            cid: text(c(raw.cid.take()), "cid", MAX_UTM_LEN)?,
            path: c(raw.path.take()),
            referrer: c(raw.referrer.take()),
            user_agent: c(raw.user_agent.take()),
            ip: masked_ip(c(raw.ip.take()))?,
            ts,
        })),
        EventType::Conversion => Event::Conversion(Box::new(Conversion {
            id,
            client_id: required_id(c(raw.client_id.take()), "client_id")?,
            campaign_id: required_id(c(raw.campaign_id.take()), "campaign_id")?,
            entry_id: required_id(c(raw.entry_id.take()), "entry_id")?,
            session_id: optional_id(c(raw.session_id.take()), "session_id", MAX_ID_LEN)?,
            link_id: optional_id(c(raw.link_id.take()), "link_id", MAX_ID_LEN)?,
            utm: utm(raw.utm.take())?,
            cid: text(c(raw.cid.take()), "cid", MAX_UTM_LEN)?,
            viewer_id: optional_id(c(raw.viewer_id.take()), "viewer_id", MAX_ID_LEN)?,
            webinar_id: optional_id(c(raw.webinar_id.take()), "webinar_id", MAX_ID_LEN)?,
            ts,
        })),
        EventType::Pageview => Event::Pageview(Box::new(Pageview {
            id,
            path: c(raw.path.take())
                .filter(|p| !p.is_empty())
                .ok_or(DecodeError::missing("path"))?,
            method: c(raw.method.take()),
            query: raw.query.take().map(|q| q.0),
            referrer: c(raw.referrer.take()),
            user_agent: c(raw.user_agent.take()),
            ip: masked_ip(c(raw.ip.take()))?,
            session_id: optional_id(c(raw.session_id.take()), "session_id", MAX_ID_LEN)?,
            client_id: optional_id(c(raw.client_id.take()), "client_id", MAX_ID_LEN)?,
            campaign_id: optional_id(c(raw.campaign_id.take()), "campaign_id", MAX_ID_LEN)?,
            webinar_id: optional_id(c(raw.webinar_id.take()), "webinar_id", MAX_ID_LEN)?,
            status: raw.status,
            ts,
        })),
        EventType::Tick => Event::Tick(Tick {
            ts: ts.ok_or(DecodeError::missing("ts"))?,
        }),
    })
}

/// Whether `s` is a valid identifier: 1–`max` characters of `[A-Za-z0-9._:-]`.
pub fn is_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks an identifier taken from elsewhere than a JSON body (a URL path).
pub fn check_identifier(field: &'static str, s: &str) -> Result<(), DecodeError> {
    check_id(field, s, MAX_ID_LEN)
}

/// Identifiers are the same in every mode: 1–`max` characters of
/// `[A-Za-z0-9._:-]`, with no empty part between dots (`.`, `a..b`, `a.`
/// would make an empty NATS subject token, and `..` reads as a path).
fn check_id(field: &'static str, s: &str, max: usize) -> Result<(), DecodeError> {
    // One pass: the characters, and no dot at either end or beside another.
    let mut chars_ok = !s.is_empty() && s.len() <= max;
    let mut dots_ok = true;
    let mut prev = b'.';
    for &b in s.as_bytes() {
        chars_ok &= b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
        dots_ok &= !(b == b'.' && prev == b'.');
        prev = b;
    }
    if !chars_ok {
        return Err(DecodeError::new(
            field,
            format!("must be 1-{max} characters of [A-Za-z0-9._:-]"),
        ));
    }
    if !dots_ok || prev == b'.' {
        return Err(DecodeError::new(
            field,
            "must not start or end with '.' or hold '..'",
        ));
    }
    Ok(())
}

fn required_id<'a>(
    v: Option<Cow<'a, str>>,
    field: &'static str,
) -> Result<Cow<'a, str>, DecodeError> {
    optional_id(v, field, MAX_ID_LEN)?.ok_or(DecodeError::missing(field))
}

fn optional_id<'a>(
    v: Option<Cow<'a, str>>,
    field: &'static str,
    max: usize,
) -> Result<Option<Cow<'a, str>>, DecodeError> {
    if let Some(s) = &v {
        check_id(field, s, max)?;
    }
    Ok(v)
}

/// Free text that is trimmed, dropped when empty, and limited in characters.
fn text<'a>(
    v: Option<Cow<'a, str>>,
    field: &'static str,
    max: usize,
) -> Result<Option<Cow<'a, str>>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    let trimmed: Cow<'a, str> = match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    };
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(DecodeError::new(
            field,
            format!("must be at most {max} characters after trimming"),
        ));
    }
    Ok(Some(trimmed))
}

fn utm(raw: Option<RawUtm<'_>>) -> Result<Utm<'_>, DecodeError> {
    let Some(raw) = raw else {
        return Ok(Utm::default());
    };
    Ok(Utm {
        source: text(c(raw.source), "utm.source", MAX_UTM_LEN)?,
        medium: text(c(raw.medium), "utm.medium", MAX_UTM_LEN)?,
        campaign: text(c(raw.campaign), "utm.campaign", MAX_UTM_LEN)?,
        term: text(c(raw.term), "utm.term", MAX_UTM_LEN)?,
        content: text(c(raw.content), "utm.content", MAX_UTM_LEN)?,
    })
}

fn masked_ip(v: Option<Cow<'_, str>>) -> Result<Option<Cow<'_, str>>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let ip: IpAddr = v
        .parse()
        .map_err(|_| DecodeError::new("ip", "must be an IPv4 or IPv6 address"))?;
    Ok(Some(Cow::Owned(mask_ip(ip).to_string())))
}

/// Masks an address for privacy: IPv4 keeps its /24, IPv6 its /48. An IPv6
/// address that carries an IPv4 one (IPv4-mapped or -compatible, 6to4,
/// Teredo, NAT64) is that IPv4 address, masked as one: its /48 would keep
/// the whole IPv4.
pub fn mask_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => mask_ip(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
            }
        },
    }
}

/// The IPv4 address an IPv6 address carries, if any.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    use std::net::Ipv4Addr;
    let s = v6.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; not :: or ::1).
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) > (0, 1) => Some(low(hi, lo)),
        // 6to4: 2002:AABB:CCDD::/48.
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        // Teredo: 2001:0::/32, the client's address inverted in the last 32 bits.
        [0x2001, 0, _, _, _, _, hi, lo] => Some(Ipv4Addr::from(!u32::from(low(hi, lo)))),
        // NAT64: 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        decode(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn decodes_every_example_of_the_contract() {
        let lines = [
            r#"{"type":"presence","webinar_id":"w-17","viewer_id":"u-8812","action":"leave","ts":1764000042000}"#,
            r#"{"type":"activity","webinar_id":"w-17","viewer_id":"u-8812","kind":"question","ts":1764000050000}"#,
            r#"{"type":"visit","client_id":"c-1","campaign_id":"cmp-9","session_id":"s-1","link_id":"l-3","utm":{"source":"newsletter","medium":"email","campaign":"spring"},"path":"/event/149403","referrer":"https://example.com/","user_agent":"Mozilla/5.0 ...","ip":"203.0.113.7","ts":1764000001000}"#,
            r#"{"type":"conversion","client_id":"c-1","campaign_id":"cmp-9","entry_id":"e-77","session_id":"s-1","viewer_id":"u-8812","webinar_id":"w-17","ts":1764000300000}"#,
            r#"{"type":"pageview","path":"/event/149403","method":"GET","session_id":"s-1","client_id":"c-1","campaign_id":"cmp-9","user_agent":"Mozilla/5.0 ...","ip":"203.0.113.7","ts":1764000000500}"#,
            r#"{"type":"tick","ts":1764000001000}"#,
        ];
        let types: Vec<_> = lines
            .iter()
            .map(|l| decode(l.as_bytes()).unwrap().event_type())
            .collect();
        assert_eq!(types, EventType::ALL);
    }

    #[test]
    fn presence_fields_and_borrowing() {
        let line = br#"{"type":"presence","webinar_id":"w-17","viewer_id":"u-1","action":"ping","ts":5,"extra":{"a":[1,2]}}"#;
        let Event::Presence(p) = decode(line).unwrap() else {
            panic!()
        };
        assert!(matches!(p.webinar_id, Cow::Borrowed("w-17")));
        assert_eq!(p.viewer_id, "u-1");
        assert_eq!(p.action, PresenceAction::Ping);
        assert_eq!(p.ts, Some(5));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let line =
            br#"{"type":"presence","webinar_id":"w\u002d17","viewer_id":"u","action":"leave"}"#;
        let Event::Presence(p) = decode(line).unwrap() else {
            panic!()
        };
        assert_eq!(p.webinar_id, "w-17");
        assert_eq!(p.ts, None);
    }

    #[test]
    fn errors_name_the_field_and_the_rule() {
        assert_eq!(
            err(
                r#"{"type":"presence","webinar_id":"w","viewer_id":"a","viewer_id":"b","action":"ping"}"#
            ),
            "event: duplicate field `viewer_id`",
            "the same words as the browser endpoints"
        );
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":"w.","viewer_id":"u","action":"ping"}"#),
            "webinar_id: must not start or end with '.' or hold '..'"
        );
        assert_eq!(err(r#"{"webinar_id":"w"}"#), "type: is required");
        assert!(err(r#"{"type":"click"}"#).starts_with("type: unknown event type \"click\""));
        assert_eq!(
            err(r#"{"type":"presence","viewer_id":"u","action":"ping"}"#),
            "webinar_id: is required"
        );
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":"w 1","viewer_id":"u","action":"ping"}"#),
            "webinar_id: must be 1-128 characters of [A-Za-z0-9._:-]"
        );
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":"","viewer_id":"u","action":"ping"}"#),
            "webinar_id: must be 1-128 characters of [A-Za-z0-9._:-]"
        );
        let long = "v".repeat(129);
        assert_eq!(
            err(&format!(
                r#"{{"type":"presence","webinar_id":"w","viewer_id":"{long}","action":"ping"}}"#
            )),
            "viewer_id: must be 1-128 characters of [A-Za-z0-9._:-]"
        );
        assert!(
            decode(
                format!(
                    r#"{{"type":"presence","webinar_id":"w","viewer_id":"{}","action":"ping"}}"#,
                    "v".repeat(128)
                )
                .as_bytes()
            )
            .is_ok()
        );
        assert!(
            err(r#"{"type":"presence","webinar_id":"w","viewer_id":"u","action":"jump"}"#)
                .starts_with("action: unknown action \"jump\"")
        );
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":"w","viewer_id":"u"}"#),
            "action: is required"
        );
        assert!(
            err(r#"{"type":"activity","webinar_id":"w","kind":"dance"}"#)
                .starts_with("kind: unknown activity kind \"dance\"")
        );
        assert_eq!(
            err(
                r#"{"type":"presence","webinar_id":"w","viewer_id":"u","action":"ping","ts":"now"}"#
            ),
            "ts: must be an integer number of milliseconds since the Unix epoch"
        );
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":"w","viewer_id":"u","action":"ping","ts":1.5}"#),
            "ts: must be an integer number of milliseconds since the Unix epoch"
        );
        assert!(
            err(r#"{"type":"tick","ts":9223372036854775807}"#)
                .starts_with("ts: must be at most 253402300799999")
        );
        assert!(decode(br#"{"type":"tick","ts":253402300799999}"#).is_ok());
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":"w","viewer_id":"u","action":"ping","ts":-1}"#),
            "ts: must be a non-negative number of milliseconds since the Unix epoch"
        );
        assert_eq!(
            err(r#"{"type":"presence","webinar_id":7,"viewer_id":"u","action":"ping"}"#),
            "webinar_id: must be a string"
        );
        assert_eq!(
            err(
                r#"{"type":"visit","client_id":"c","campaign_id":"m","session_id":"s","utm":{"source":3}}"#
            ),
            "utm.source: must be a string"
        );
        assert_eq!(
            err(r#"{"type":"visit","client_id":"c","campaign_id":"m","session_id":"s","utm":"x"}"#),
            "utm: must be an object"
        );
        assert_eq!(err(r#"[1,2]"#), "event: must be a JSON object");
        assert!(err(r#"{"type":"#).starts_with("event: is not valid JSON"));
        assert_eq!(err(r#"{"type":"tick"}"#), "ts: is required");
        assert_eq!(
            err(r#"{"type":"conversion","client_id":"c","campaign_id":"m"}"#),
            "entry_id: is required"
        );
        assert_eq!(err(r#"{"type":"pageview","path":""}"#), "path: is required");
        assert_eq!(
            err(r#"{"type":"pageview","path":"/","ip":"300.1.1.1"}"#),
            "ip: must be an IPv4 or IPv6 address"
        );
        assert_eq!(
            err(r#"{"type":"pageview","path":"/","status":70000}"#),
            "status: must be an HTTP status code"
        );
        let id = "i".repeat(65);
        assert_eq!(
            err(&format!(r#"{{"type":"tick","ts":1,"id":"{id}"}}"#)),
            "id: must be 1-64 characters of [A-Za-z0-9._:-]"
        );
    }

    #[test]
    fn invalid_utf8_is_refused_even_in_an_unknown_field() {
        // Found by fuzz/fuzz_targets/batch.rs: taken as an NDJSON line,
        // refused as an element of a JSON array.
        let line = b"{\"type\":\"pageview\",\"path\":\"/a\",\"sta\":\"pagevi\x9fw\"}";
        assert_eq!(
            decode(line).unwrap_err().to_string(),
            "event: is not valid JSON (invalid UTF-8 at byte 44)"
        );
    }

    #[test]
    fn size_limit_is_16_kib() {
        let pad = "x".repeat(MAX_EVENT_BYTES);
        let line = format!(r#"{{"type":"tick","ts":1,"pad":"{pad}"}}"#);
        let e = decode(line.as_bytes()).unwrap_err();
        assert!(e.too_large);
        assert_eq!(e.field, "event");
        let fits = format!(
            r#"{{"type":"tick","ts":1,"pad":"{}"}}"#,
            "x".repeat(MAX_EVENT_BYTES - 31)
        );
        assert_eq!(fits.len(), MAX_EVENT_BYTES);
        assert!(decode(fits.as_bytes()).is_ok());
    }

    #[test]
    fn utm_values_are_trimmed_and_bounded_in_characters() {
        let line = r#"{"type":"conversion","client_id":"c","campaign_id":"m","entry_id":"e","utm":{"source":"  news ","medium":"   ","campaign":null}}"#;
        let Event::Conversion(c) = decode(line.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(c.utm.source.as_deref(), Some("news"));
        assert_eq!(c.utm.medium, None);
        assert_eq!(c.utm.campaign, None);
        // 256 Hangul syllables are 768 bytes but 256 characters: accepted.
        let ok = "가".repeat(256);
        let line = format!(
            r#"{{"type":"conversion","client_id":"c","campaign_id":"m","entry_id":"e","utm":{{"campaign":"{ok}"}}}}"#
        );
        assert!(decode(line.as_bytes()).is_ok());
        let line = line.replace(&ok, &"가".repeat(257));
        assert_eq!(
            decode(line.as_bytes()).unwrap_err().to_string(),
            "utm.campaign: must be at most 256 characters after trimming"
        );
    }

    #[test]
    fn page_view_utm_values_over_256_characters_are_absent() {
        // Found by fuzz/fuzz_targets/pageview_query.rs: a page view's query
        // gave UTM values of any length, where a visit's are refused over 256.
        let long = "가".repeat(MAX_UTM_LEN + 1);
        let query = format!(
            "utm_source={long}&utm_source=news&utm_medium=%20{}",
            &long[3..]
        );
        let p = Pageview {
            id: None,
            path: "/".into(),
            method: None,
            query: Some(query.into()),
            referrer: None,
            user_agent: None,
            ip: None,
            session_id: None,
            client_id: None,
            campaign_id: None,
            webinar_id: None,
            status: None,
            ts: None,
        };
        let utm = p.utm();
        assert_eq!(
            utm.source.as_deref(),
            Some("news"),
            "the first one that fits"
        );
        assert_eq!(
            utm.medium.as_deref(),
            Some(&long[3..]),
            "256 characters fit"
        );
    }

    #[test]
    fn ips_are_masked_on_decode() {
        let mask = |ip: &str| {
            let line = format!(r#"{{"type":"pageview","path":"/","ip":"{ip}"}}"#);
            let Event::Pageview(p) = decode(line.as_bytes()).unwrap() else {
                panic!()
            };
            p.ip.unwrap().into_owned()
        };
        assert_eq!(mask("203.0.113.7"), "203.0.113.0");
        assert_eq!(
            mask("2001:db8:85a3:8d3:1319:8a2e:370:7348"),
            "2001:db8:85a3::"
        );
        assert_eq!(mask("::ffff:203.0.113.7"), "203.0.113.0");
        // IPv6 forms that carry an IPv4 address are masked as that address.
        assert_eq!(mask("2002:cb00:714d::1"), "203.0.113.0", "6to4");
        assert_eq!(mask("::203.0.113.77"), "203.0.113.0", "IPv4-compatible");
        assert_eq!(mask("64:ff9b::cb00:714d"), "203.0.113.0", "NAT64");
        // Teredo: 203.0.113.77 inverted is 52.255.142.178 = 34ff:8eb2.
        assert_eq!(
            mask("2001:0:4136:e378:8000:63bf:34ff:8eb2"),
            "203.0.113.0",
            "Teredo"
        );
        assert_eq!(mask("::1"), "::", "loopback is no IPv4");
        let Event::Visit(v) = decode(
            br#"{"type":"visit","client_id":"c","campaign_id":"m","session_id":"s","ip":"198.51.100.99"}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert!(!v.to_json_value().contains("198.51.100.99"));
    }

    impl Visit<'_> {
        fn to_json_value(&self) -> String {
            Event::Visit(Box::new(self.clone())).to_json()
        }
    }

    #[test]
    fn round_trips_through_the_wire_format() {
        let line = r#"{"type":"visit","id":"ev-1","client_id":"c-1","campaign_id":"cmp-9","session_id":"s-1","utm":{"source":"newsletter"},"path":"/a","ts":9}"#;
        let event = decode(line.as_bytes()).unwrap();
        assert_eq!(event.to_json(), line);
        assert_eq!(decode(event.to_json().as_bytes()).unwrap(), event);
        assert_eq!(event.id(), Some("ev-1"));
    }

    #[test]
    fn batch_values_decode_like_bytes() {
        let value: serde_json::Value = serde_json::from_str(
            r#"{"type":"presence","webinar_id":"w","viewer_id":7,"action":"ping"}"#,
        )
        .unwrap();
        assert_eq!(
            decode_value(&value).unwrap_err().to_string(),
            "viewer_id: must be a string"
        );
    }
}
