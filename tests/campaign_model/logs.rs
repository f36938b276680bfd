//! Random small campaign logs, as the JSON lines fed to both sides, and the
//! queries asked of them.

use std::fmt;

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::model::{DAY_MS, Model, Range};

pub const CLIENTS: [&str; 2] = ["c1", "c2"];
pub const CAMPAIGNS: [&str; 3] = ["m1", "m2", "x"];
/// Every session id may be used by both clients (then they are two sessions).
/// `x` is a campaign, session, link, entry and webinar id at once.
pub const SESSIONS: [&str; 4] = ["s1", "s2", "s3", "x"];
pub const LINKS: [&str; 3] = ["l1", "l2", "x"];
const WEBINARS: [&str; 2] = ["w1", "x"];
const ENTRIES: [&str; 4] = ["e1", "e2", "e3", "x"];
const VIEWERS: [&str; 2] = ["u1", "u2"];
/// Event ids: a small pool, so that unrelated events share one sometimes.
const IDS: [&str; 8] = ["ev1", "ev2", "ev3", "ev4", "ev5", "ev6", "ev7", "ev8"];
const PATHS: [&str; 3] = ["/a", "/b", "/event/1"];

/// UTM values, some trimmed to nothing.
const SOURCES: [&str; 6] = ["news", "kakao", " ads ", "   ", "", "카카오"];
const MEDIUMS: [&str; 4] = ["email", "cpc", " ", "social media"];
const UTM_CAMPAIGNS: [&str; 3] = ["spring", "fall sale", ""];

/// People: an ordinary browser and the KakaoTalk and NAVER in-app browsers.
pub const PEOPLE: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36 KAKAOTALK 10.4.5",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 NAVER(inapp; search; 2000; 12.5.0)",
];
/// The eight crawlers of the spec, in assorted letter cases.
pub const BOTS: [&str; 8] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "mozilla/5.0 (compatible; yandexbot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; AHREFSBOT/7.0; +http://ahrefs.com/robot/)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tz {
    Utc,
    Seoul,
}

impl Tz {
    pub fn zone(self) -> TimeZone {
        match self {
            Tz::Utc => TimeZone::UTC,
            Tz::Seoul => TimeZone::get("Asia/Seoul").expect("bundled tzdb"),
        }
    }
}

/// The first local day of every generated log.
pub const DAY0: Date = date(2026, 3, 2);

/// Local midnight starting `DAY0 + days`.
pub fn midnight(tz: Tz, days: i64) -> i64 {
    DAY0.checked_add(jiff::Span::new().days(days))
        .expect("date")
        .to_zoned(tz.zone())
        .expect("midnight")
        .timestamp()
        .as_millisecond()
}

/// Offsets in a local day: midnight and 1 ms after, noon, 1 ms before
/// the next midnight. Same offset `window_days` apart: exactly window-old;
/// `DAY - 1` then `0` a window and a day later: 1 ms too old.
const OFFSETS: [i64; 4] = [0, 1, 12 * 3_600_000, DAY_MS - 1];
/// Days in a log.
pub const DAYS: i64 = 4;

/// The instants a log's stamps are taken from, in increasing order.
fn lattice(tz: Tz) -> Vec<i64> {
    let midnights: Vec<i64> = (0..DAYS).map(|d| midnight(tz, d)).collect();
    midnights
        .iter()
        .flat_map(|m| OFFSETS.iter().map(move |o| m + o))
        .collect()
}

/// A generated log.
#[derive(Clone)]
pub struct Case {
    pub tz: Tz,
    pub window_days: i64,
    pub lines: Vec<String>,
    /// After each of these lines (indices), every query is checked.
    pub cuts: Vec<usize>,
    /// Random ranges (day offsets from `DAY0`, inclusive) asked at each check.
    pub ranges: Vec<(i64, i64)>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Case {{ tz: {:?}, window_days: {}, cuts: {:?}, ranges: {:?}, lines:",
            self.tz, self.window_days, self.cuts, self.ranges
        )?;
        for (i, l) in self.lines.iter().enumerate() {
            writeln!(f, "  {i:>2} {l}")?;
        }
        write!(f, "}}")
    }
}

/// A UTM spec: indices into the value pools.
type UtmSpec = (Option<usize>, Option<usize>, Option<usize>);

#[derive(Debug, Clone)]
pub enum Spec {
    Visit {
        client: usize,
        campaign: usize,
        session: usize,
        link: Option<usize>,
        utm: Option<UtmSpec>,
        webinar: Option<usize>,
        agent: (bool, usize),
        path: usize,
    },
    Conversion {
        client: usize,
        campaign: usize,
        entry: usize,
        session: Option<usize>,
        link: Option<usize>,
        utm: Option<UtmSpec>,
        webinar: Option<usize>,
        viewer: Option<usize>,
    },
    Pageview {
        path: usize,
        client: Option<usize>,
        campaign: Option<usize>,
        session: Option<usize>,
        query: Option<(UtmSpec, usize, bool)>,
        agent: (bool, usize),
    },
    Tick,
    /// A previous line again, verbatim (redelivery).
    Again(usize),
}

/// Clients: `c1` three times as often as `c2`.
fn client() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 1 => Just(1usize)]
}

/// Sessions: `s1` and `s2` more often than `s3` and `s4`.
fn session() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 3 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)]
}

fn utm_spec() -> impl Strategy<Value = UtmSpec> {
    (
        prop::option::weighted(0.85, 0..SOURCES.len()),
        prop::option::of(0..MEDIUMS.len()),
        prop::option::of(0..UTM_CAMPAIGNS.len()),
    )
}

/// (bot, index): 20 % bots.
fn agent() -> impl Strategy<Value = (bool, usize)> {
    prop_oneof![
        4 => (0..PEOPLE.len()).prop_map(|i| (false, i)),
        1 => (0..BOTS.len()).prop_map(|i| (true, i)),
    ]
}

pub fn spec() -> impl Strategy<Value = Spec> {
    let visit = (
        (client(), 0..CAMPAIGNS.len(), session()),
        prop::option::of(0..LINKS.len()),
        prop::option::weighted(0.75, utm_spec()),
        prop::option::weighted(0.3, 0..WEBINARS.len()),
        agent(),
        0..PATHS.len(),
    )
        .prop_map(
            |((client, campaign, session), link, utm, webinar, agent, path)| Spec::Visit {
                client,
                campaign,
                session,
                link,
                utm,
                webinar,
                agent,
                path,
            },
        );
    let conversion = (
        (client(), 0..CAMPAIGNS.len(), 0..ENTRIES.len()),
        prop::option::weighted(0.75, session()),
        prop::option::weighted(0.3, 0..LINKS.len()),
        prop::option::weighted(0.3, utm_spec()),
        prop::option::weighted(0.4, 0..WEBINARS.len()),
        prop::option::of(0..VIEWERS.len()),
    )
        .prop_map(
            |((client, campaign, entry), session, link, utm, webinar, viewer)| Spec::Conversion {
                client,
                campaign,
                entry,
                session,
                link,
                utm,
                webinar,
                viewer,
            },
        );
    let pageview = (
        0..PATHS.len(),
        prop::option::weighted(0.85, client()),
        prop::option::weighted(0.75, 0..CAMPAIGNS.len()),
        prop::option::weighted(0.85, session()),
        prop::option::weighted(0.6, (utm_spec(), 0..4usize, any::<bool>())),
        agent(),
    )
        .prop_map(
            |(path, client, campaign, session, query, agent)| Spec::Pageview {
                path,
                client,
                campaign,
                session,
                query,
                agent,
            },
        );
    prop_oneof![
        8 => visit,
        4 => conversion,
        5 => pageview,
        2 => Just(Spec::Tick),
        1 => any::<usize>().prop_map(Spec::Again),
    ]
}

/// How far an event's stamp is from the cursor over the lattice: mostly the
/// same or the next instant, sometimes behind (out of order).
fn step() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        4 => Just(1i64),
        1 => Just(2i64),
        2 => -4..0i64,
    ]
}

/// `s` as a form-urlencoded value: `+` or `%20` for spaces, or verbatim.
fn encode(s: &str, style: usize) -> String {
    if style == 2 {
        return s.to_owned();
    }
    s.bytes()
        .map(|b| match b {
            b' ' if style == 0 => "+".to_owned(),
            b if b.is_ascii_alphanumeric() && b != b'n' => (b as char).to_string(),
            b'-' | b'.' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A page view's `query`: style 0-2 a raw string (`+`, `%XX` with `n` and
/// spaces escaped, or verbatim), 3 an object.
fn query((utm, style, extra): (UtmSpec, usize, bool)) -> Value {
    let pairs: Vec<(&str, &str)> = [
        ("utm_source", utm.0.map(|i| SOURCES[i])),
        ("utm_medium", utm.1.map(|i| MEDIUMS[i])),
        ("utm_campaign", utm.2.map(|i| UTM_CAMPAIGNS[i])),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .chain(extra.then_some(("ref", "home page")))
    .collect();
    if style == 3 {
        let m: Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        return Value::Object(m);
    }
    let s: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode(v, style)))
        .collect();
    json!(s.join("&"))
}

fn utm_json(u: UtmSpec) -> Value {
    let mut m = Map::new();
    if let Some(i) = u.0 {
        m.insert("source".into(), json!(SOURCES[i]));
    }
    if let Some(i) = u.1 {
        m.insert("medium".into(), json!(MEDIUMS[i]));
    }
    if let Some(i) = u.2 {
        m.insert("campaign".into(), json!(UTM_CAMPAIGNS[i]));
    }
    Value::Object(m)
}

fn agent_str((bot, i): (bool, usize)) -> &'static str {
    if bot { BOTS[i] } else { PEOPLE[i] }
}

/// The JSON line of one spec at `ts`, with `id`.
fn line(spec: &Spec, ts: i64, id: Option<usize>) -> Value {
    let mut v = match spec {
        Spec::Visit {
            client,
            campaign,
            session,
            link,
            utm,
            webinar,
            agent,
            path,
        } => {
            let mut v = json!({
                "type": "visit",
                "client_id": CLIENTS[*client],
                "campaign_id": CAMPAIGNS[*campaign],
                "session_id": SESSIONS[*session],
                "path": PATHS[*path],
                "user_agent": agent_str(*agent),
                "ip": "203.0.113.7",
            });
            if let Some(l) = link {
                v["link_id"] = json!(LINKS[*l]);
            }
            if let Some(u) = utm {
                v["utm"] = utm_json(*u);
            }
            if let Some(w) = webinar {
                v["webinar_id"] = json!(WEBINARS[*w]);
            }
            v
        }
        Spec::Conversion {
            client,
            campaign,
            entry,
            session,
            link,
            utm,
            webinar,
            viewer,
        } => {
            let mut v = json!({
                "type": "conversion",
                "client_id": CLIENTS[*client],
                "campaign_id": CAMPAIGNS[*campaign],
                "entry_id": ENTRIES[*entry],
            });
            if let Some(s) = session {
                v["session_id"] = json!(SESSIONS[*s]);
            }
            if let Some(l) = link {
                v["link_id"] = json!(LINKS[*l]);
            }
            if let Some(u) = utm {
                v["utm"] = utm_json(*u);
            }
            if let Some(w) = webinar {
                v["webinar_id"] = json!(WEBINARS[*w]);
            }
            if let Some(u) = viewer {
                v["viewer_id"] = json!(VIEWERS[*u]);
            }
            v
        }
        Spec::Pageview {
            path,
            client,
            campaign,
            session,
            query: q,
            agent,
        } => {
            let mut v = json!({
                "type": "pageview",
                "path": PATHS[*path],
                "method": "GET",
                "user_agent": agent_str(*agent),
                "status": 200,
            });
            if let Some(c) = client {
                v["client_id"] = json!(CLIENTS[*c]);
            }
            if let Some(c) = campaign {
                v["campaign_id"] = json!(CAMPAIGNS[*c]);
            }
            if let Some(s) = session {
                v["session_id"] = json!(SESSIONS[*s]);
            }
            if let Some(q) = q {
                v["query"] = query(*q);
            }
            v
        }
        Spec::Tick => json!({"type": "tick"}),
        Spec::Again(_) => unreachable!("resolved by the caller"),
    };
    if let Some(id) = id
        && !matches!(spec, Spec::Tick)
    {
        v["id"] = json!(IDS[id]);
    }
    v["ts"] = json!(ts);
    v
}

pub fn arb_case() -> impl Strategy<Value = Case> {
    let (utc, seoul) = (lattice(Tz::Utc), lattice(Tz::Seoul));
    (
        prop_oneof![Just(Tz::Utc), Just(Tz::Seoul)],
        1..=2i64,
        prop::collection::vec(
            (spec(), step(), prop::option::weighted(0.25, 0..IDS.len())),
            1..40,
        ),
        prop::collection::vec(any::<prop::sample::Index>(), 0..2),
        prop::collection::vec(
            (-1..=DAYS, prop_oneof![2 => Just(0i64), 1 => 1..=2i64]),
            2..4,
        ),
    )
        .prop_map(move |(tz, window_days, specs, cuts, ranges)| {
            let points = if tz == Tz::Utc { &utc } else { &seoul };
            let mut cursor = 0i64;
            let mut lines: Vec<String> = Vec::new();
            for (spec, step, id) in specs {
                if let Spec::Again(k) = spec
                    && !lines.is_empty()
                {
                    let again = lines[k % lines.len()].clone();
                    lines.push(again);
                    continue;
                }
                let spec = if let Spec::Again(_) = spec {
                    Spec::Tick
                } else {
                    spec
                };
                let at = (cursor + step).clamp(0, points.len() as i64 - 1);
                if step > 0 {
                    cursor = at;
                }
                lines.push(line(&spec, points[at as usize], id).to_string());
            }
            let cuts = cuts.iter().map(|i| i.index(lines.len())).collect();
            let ranges = ranges.into_iter().map(|(d, len)| (d, d + len)).collect();
            Case {
                tz,
                window_days,
                lines,
                cuts,
                ranges,
            }
        })
}

/// One query of the spec.
#[derive(Debug, Clone)]
pub enum Query {
    Summary(&'static str, Range),
    LinkStats(&'static str, &'static str, Range),
    CampaignStats(&'static str, &'static str, Range),
    Pageviews(&'static str, Range, usize),
    Overview(&'static str, Range),
}

impl Query {
    /// The model's answer; `None` for an unknown link or campaign.
    pub fn model(&self, m: &Model) -> Option<Value> {
        match *self {
            Query::Summary(c, r) => Some(m.summary(c, r)),
            Query::LinkStats(c, l, r) => m.link_stats(c, l, r),
            Query::CampaignStats(c, k, r) => m.campaign_stats(c, k, r),
            Query::Pageviews(c, r, n) => Some(m.pageviews(c, r, n)),
            Query::Overview(c, r) => Some(m.overview(c, r)),
        }
    }
}

/// Local date `DAY0 + d`.
pub fn day(d: i64) -> Date {
    DAY0.checked_add(jiff::Span::new().days(d)).expect("date")
}

/// Every query of both clients over `ranges`, and of an unknown client (and
/// unknown links and campaigns) over the first range.
pub fn queries(ranges: &[Range]) -> Vec<Query> {
    let mut out = Vec::new();
    for (i, &r) in ranges.iter().enumerate() {
        let clients: &[&'static str] = if i == 0 {
            &["c1", "c2", "c9"]
        } else {
            &["c1", "c2"]
        };
        for &c in clients {
            out.push(Query::Summary(c, r));
            out.push(Query::Overview(c, r));
            out.push(Query::Pageviews(c, r, if i == 0 { 10 } else { 2 }));
            for l in LINKS {
                out.push(Query::LinkStats(c, l, r));
            }
            for k in CAMPAIGNS {
                out.push(Query::CampaignStats(c, k, r));
            }
            if i == 0 {
                out.push(Query::LinkStats(c, "l9", r));
                out.push(Query::CampaignStats(c, "m9", r));
            }
        }
    }
    out
}

/// Everything (days -1 to `DAYS`).
pub fn everything() -> Range {
    Range::new(day(-1), day(DAYS))
}

/// The ranges asked at a check: everything, a range without data, and the
/// case's random ones (single days and short ranges).
pub fn ranges(case: &Case) -> Vec<Range> {
    let mut out = vec![everything(), Range::new(day(DAYS + 10), day(DAYS + 12))];
    out.extend(case.ranges.iter().map(|&(a, b)| Range::new(day(a), day(b))));
    out
}
