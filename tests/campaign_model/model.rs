//! The model: DESIGN §2 clocks and §4 "Exact rules of the campaign numbers",
//! with the interpretations of `campaign_api.md`, computed the slow and
//! obvious way.
//!
//! It keeps the list of applied records and nothing else (no counters, no
//! sets kept up to date): every answer is recomputed from that list when it
//! is asked for. The only thing decided at apply time is what the rules say
//! is decided then: whether a conversion counts and its attribution, both
//! read off the records applied before it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

pub const DAY_MS: i64 = 86_400_000;

/// The crawlers of rule 3 (the spec's list).
const CRAWLERS: [&str; 8] = [
    "Googlebot",
    "bingbot",
    "YandexBot",
    "AhrefsBot",
    "DuckDuckBot",
    "Baiduspider",
    "Applebot",
    "SemrushBot",
];

/// What the model is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub tz: TimeZone,
    pub window_days: i64,
}

/// An inclusive range of local dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Date,
    pub to: Date,
}

impl Range {
    pub fn new(from: Date, to: Date) -> Self {
        Range { from, to }
    }

    fn holds(&self, d: Date) -> bool {
        self.from <= d && d <= self.to
    }
}

/// A UTM with a non-empty source; a missing medium or campaign is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utm {
    pub source: String,
    pub medium: Option<String>,
    pub campaign: Option<String>,
}

impl Utm {
    /// Source, medium, campaign as reported: missing ones read `(none)`.
    fn keys(&self) -> (String, String, String) {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        (
            self.source.clone(),
            or_none(&self.medium),
            or_none(&self.campaign),
        )
    }
}

/// Which rule 6 branch gave the UTM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Own,
    Session,
    Link,
    None,
}

/// A counted conversion's attribution, decided when it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub how: How,
    /// `None` when `how` is `None`.
    pub utm: Option<Utm>,
    /// Its own link, else the session's link.
    pub link: Option<String>,
    /// The session had an earlier-applied non-bot visit within the window
    /// (the `visit_link_rate` numerator).
    pub visit_before: bool,
}

impl Attribution {
    fn keys(&self) -> (String, String, String) {
        match &self.utm {
            Some(u) => u.keys(),
            None => ("(none)".into(), "(none)".into(), "(none)".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Visit {
    pub client: String,
    pub campaign: String,
    pub session: String,
    pub link: Option<String>,
    pub utm: Option<Utm>,
    pub webinar: Option<String>,
    pub bot: bool,
}

#[derive(Debug, Clone)]
pub struct Conversion {
    pub client: String,
    pub campaign: String,
    pub entry: String,
    pub session: Option<String>,
    pub link: Option<String>,
    pub utm: Option<Utm>,
    pub webinar: Option<String>,
    /// Counted (rule 5): its attribution. `None`: a repeated entry_id.
    pub counted: Option<Attribution>,
}

#[derive(Debug, Clone)]
pub struct Pageview {
    pub path: String,
    pub client: Option<String>,
    pub campaign: Option<String>,
    pub session: Option<String>,
    /// The UTM of its query (with a non-empty source).
    pub utm: Option<Utm>,
    pub bot: bool,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Visit(Visit),
    Conversion(Conversion),
    Pageview(Pageview),
}

/// An applied campaign record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Position in the applied order.
    pub seq: usize,
    /// Effective ts.
    pub ts: i64,
    /// Local date of `ts`.
    pub date: Date,
    pub kind: Kind,
}

/// What applying one line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A campaign record applied at this effective ts.
    Applied(i64),
    /// Its `id` was applied before: skipped.
    Skipped,
    Tick,
}

pub struct Model {
    pub cfg: Config,
    pub records: Vec<Record>,
    /// Latest campaign-record effective ts per clock key (`""` for page
    /// views without a campaign).
    clocks: BTreeMap<String, i64>,
    /// The largest tick ts.
    tick_clock: Option<i64>,
    ids: BTreeSet<String>,
}

/// `s` trimmed, `None` when empty.
fn trimmed(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn utm_of(source: Option<String>, medium: Option<String>, campaign: Option<String>) -> Option<Utm> {
    source.map(|source| Utm {
        source,
        medium,
        campaign,
    })
}

/// The `utm` object of a visit or conversion.
fn event_utm(v: &Value) -> Option<Utm> {
    let u = v.get("utm")?;
    let field = |k: &str| trimmed(u.get(k).and_then(Value::as_str));
    utm_of(field("source"), field("medium"), field("campaign"))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `utm_*` parameters of a page view's `query`: a raw query string or an
/// object of strings.
fn query_params(q: Option<&Value>) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    match q {
        Some(Value::String(s)) => {
            for pair in s.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                params.entry(url_decode(k)).or_insert_with(|| url_decode(v));
            }
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if let Some(v) = v.as_str() {
                    params.insert(k.clone(), v.to_owned());
                }
            }
        }
        _ => {}
    }
    params
}

fn query_utm(q: Option<&Value>) -> Option<Utm> {
    let p = query_params(q);
    let field = |k: &str| trimmed(p.get(k).map(String::as_str));
    utm_of(
        field("utm_source"),
        field("utm_medium"),
        field("utm_campaign"),
    )
}

pub fn is_bot(user_agent: Option<&str>) -> bool {
    let ua = user_agent.unwrap_or("").to_ascii_lowercase();
    CRAWLERS
        .iter()
        .any(|c| ua.contains(&c.to_ascii_lowercase()))
}

/// A record's local date.
pub fn local_date(tz: &TimeZone, ts: i64) -> Date {
    Timestamp::from_millisecond(ts)
        .expect("ts in range")
        .to_zoned(tz.clone())
        .date()
}

/// `n / d` in percent, one decimal (half away from zero); `null` when `d` is 0.
/// Rounded exactly, in integers: 23 / 80 = 28.75 % reads 28.8 (the float
/// `23.0 / 80.0 * 100.0` is a hair under 28.75).
pub fn pct(n: usize, d: usize) -> Value {
    if d == 0 {
        return Value::Null;
    }
    let (n, d) = (n as u64, d as u64);
    let tenths = (2 * n * 1000 + d) / (2 * d);
    json!(tenths as f64 / 10.0)
}

/// Entries sorted by count descending, then key ascending.
fn ranked<K: Ord + Clone>(counts: &BTreeMap<K, usize>) -> Vec<(K, usize)> {
    let mut v: Vec<(K, usize)> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn req(v: &Value, k: &str) -> String {
    str_field(v, k).unwrap_or_else(|| panic!("{k} is required: {v}"))
}

impl Model {
    pub fn new(cfg: Config) -> Self {
        Model {
            cfg,
            records: Vec::new(),
            clocks: BTreeMap::new(),
            tick_clock: None,
            ids: BTreeSet::new(),
        }
    }

    /// Applies one JSON line.
    pub fn apply(&mut self, line: &str) -> Outcome {
        let v: Value = serde_json::from_str(line).expect("valid JSON");
        let ts = v["ts"].as_i64().expect("ts");
        let kind = v["type"].as_str().expect("type");
        if kind == "tick" {
            self.tick_clock = Some(self.tick_clock.map_or(ts, |t| t.max(ts)));
            return Outcome::Tick;
        }
        // Ids are unique per client (page views naming none share one scope).
        if let Some(id) = v.get("id").and_then(Value::as_str)
            && !self.ids.insert(format!(
                "{}\u{0}{id}",
                str_field(&v, "client_id").unwrap_or_default()
            ))
        {
            return Outcome::Skipped;
        }
        let clock_key = match kind {
            "visit" | "conversion" => req(&v, "campaign_id"),
            "pageview" => str_field(&v, "campaign_id").unwrap_or_default(),
            other => panic!("the model knows no {other} events"),
        };
        // A clock never behind the latest tick; a campaign first seen starts there.
        let clock = [self.clocks.get(&clock_key).copied(), self.tick_clock]
            .into_iter()
            .flatten()
            .max();
        let eff = clock.map_or(ts, |c| c.max(ts));
        self.clocks.insert(clock_key, eff);
        let ua = v.get("user_agent").and_then(Value::as_str);
        let kind = match kind {
            "visit" => Kind::Visit(Visit {
                client: req(&v, "client_id"),
                campaign: req(&v, "campaign_id"),
                session: req(&v, "session_id"),
                link: str_field(&v, "link_id"),
                utm: event_utm(&v),
                webinar: str_field(&v, "webinar_id"),
                bot: is_bot(ua),
            }),
            "conversion" => {
                let mut c = Conversion {
                    client: req(&v, "client_id"),
                    campaign: req(&v, "campaign_id"),
                    entry: req(&v, "entry_id"),
                    session: str_field(&v, "session_id"),
                    link: str_field(&v, "link_id"),
                    utm: event_utm(&v),
                    webinar: str_field(&v, "webinar_id"),
                    counted: None,
                };
                let repeated = self.records.iter().any(|r| {
                    matches!(&r.kind, Kind::Conversion(p) if p.client == c.client && p.entry == c.entry)
                });
                if !repeated {
                    c.counted = Some(self.attribute(&c, eff));
                }
                Kind::Conversion(c)
            }
            _ => Kind::Pageview(Pageview {
                path: req(&v, "path"),
                client: str_field(&v, "client_id"),
                campaign: str_field(&v, "campaign_id"),
                session: str_field(&v, "session_id"),
                utm: query_utm(v.get("query")),
                bot: is_bot(ua),
            }),
        };
        self.records.push(Record {
            seq: self.records.len(),
            ts: eff,
            date: local_date(&self.cfg.tz, eff),
            kind,
        });
        Outcome::Applied(eff)
    }

    /// Rule 6, read off the records applied so far, for a conversion at `t`.
    fn attribute(&self, c: &Conversion, t: i64) -> Attribution {
        let window = self.cfg.window_days * DAY_MS;
        let fresh = |r: &Record| t - r.ts <= window;
        // The session's non-bot visits of the client within the window.
        let session_visits: Vec<(&Record, &Visit)> = match &c.session {
            None => Vec::new(),
            Some(s) => self
                .records
                .iter()
                .filter(|r| fresh(r))
                .filter_map(|r| match &r.kind {
                    Kind::Visit(v) if !v.bot && v.client == c.client && &v.session == s => {
                        Some((r, v))
                    }
                    _ => None,
                })
                .collect(),
        };
        let earliest = |r: &Record| (r.ts, r.seq);
        let session_link = session_visits
            .iter()
            .filter(|(_, v)| v.link.is_some())
            .min_by_key(|(r, _)| earliest(r))
            .and_then(|(_, v)| v.link.clone());
        let link = c.link.clone().or(session_link);

        // The session's touches: visits with a UTM, and page views of the
        // client naming a campaign whose query has a utm_source.
        let mut touches: Vec<(&Record, &Utm)> = session_visits
            .iter()
            .filter_map(|(r, v)| v.utm.as_ref().map(|u| (*r, u)))
            .collect();
        if let Some(s) = &c.session {
            for r in self.records.iter().filter(|r| fresh(r)) {
                if let Kind::Pageview(p) = &r.kind
                    && !p.bot
                    && p.client.as_deref() == Some(&c.client)
                    && p.campaign.is_some()
                    && p.session.as_deref() == Some(s)
                    && let Some(u) = &p.utm
                {
                    touches.push((r, u));
                }
            }
        }
        let first_touch = touches
            .iter()
            .min_by_key(|(r, _)| earliest(r))
            .map(|(_, u)| (*u).clone());

        let link_utm = link.as_ref().and_then(|l| {
            self.records.iter().find_map(|r| match &r.kind {
                Kind::Visit(v) if !v.bot && v.client == c.client && v.link.as_ref() == Some(l) => {
                    v.utm.clone()
                }
                _ => None,
            })
        });

        let (how, utm) = if let Some(u) = &c.utm {
            (How::Own, Some(u.clone()))
        } else if let Some(u) = first_touch {
            (How::Session, Some(u))
        } else if let Some(u) = link_utm {
            (How::Link, Some(u))
        } else {
            (How::None, None)
        };
        Attribution {
            how,
            utm,
            link,
            visit_before: !session_visits.is_empty(),
        }
    }

    // ---------------------------------------------------------------------
    // Selections
    // ---------------------------------------------------------------------

    /// Non-bot visits of the client.
    fn visits<'a>(&'a self, client: &'a str) -> impl Iterator<Item = (&'a Record, &'a Visit)> {
        self.records.iter().filter_map(move |r| match &r.kind {
            Kind::Visit(v) if !v.bot && v.client == client => Some((r, v)),
            _ => None,
        })
    }

    /// Counted conversions of the client, with their attribution.
    fn counted<'a>(
        &'a self,
        client: &'a str,
    ) -> impl Iterator<Item = (&'a Record, &'a Conversion, &'a Attribution)> {
        self.records.iter().filter_map(move |r| match &r.kind {
            Kind::Conversion(c) if c.client == client => c.counted.as_ref().map(|a| (r, c, a)),
            _ => None,
        })
    }

    /// Page views naming the client (bots included).
    fn pageviews_of<'a>(
        &'a self,
        client: &'a str,
    ) -> impl Iterator<Item = (&'a Record, &'a Pageview)> {
        self.records.iter().filter_map(move |r| match &r.kind {
            Kind::Pageview(p) if p.client.as_deref() == Some(client) => Some((r, p)),
            _ => None,
        })
    }

    // ---------------------------------------------------------------------
    // Queries
    // ---------------------------------------------------------------------

    pub fn summary(&self, client: &str, range: Range) -> Value {
        let mut by_source = BTreeMap::new();
        let mut by_medium = BTreeMap::new();
        let mut by_campaign = BTreeMap::new();
        let mut by_combination = BTreeMap::new();
        let (mut own, mut session, mut link, mut none) = (0, 0, 0, 0);
        let mut total = 0;
        for (r, _, a) in self.counted(client) {
            if !range.holds(r.date) {
                continue;
            }
            total += 1;
            let (s, m, c) = a.keys();
            *by_source.entry(s.clone()).or_insert(0) += 1;
            *by_medium.entry(m.clone()).or_insert(0) += 1;
            *by_campaign.entry(c.clone()).or_insert(0) += 1;
            *by_combination.entry((s, m, c)).or_insert(0) += 1;
            match a.how {
                How::Own => own += 1,
                How::Session => session += 1,
                How::Link => link += 1,
                How::None => none += 1,
            }
        }
        let list = |counts: &BTreeMap<String, usize>, name: &str| -> Value {
            ranked(counts)
                .into_iter()
                .map(|(k, n)| json!({ name: k, "conversions": n }))
                .collect()
        };
        let combos: Value = ranked(&by_combination)
            .into_iter()
            .map(
                |((s, m, c), n)| json!({"source": s, "medium": m, "campaign": c, "conversions": n}),
            )
            .collect();
        json!({
            "from": range.from.to_string(),
            "to": range.to.to_string(),
            "total_conversions": total,
            "by_source": list(&by_source, "source"),
            "by_medium": list(&by_medium, "medium"),
            "by_campaign": list(&by_campaign, "campaign"),
            "by_combination": combos,
            "attribution": {"own": own, "session": session, "link": link, "none": none},
        })
    }

    pub fn link_stats(&self, client: &str, link: &str, range: Range) -> Option<Value> {
        let on_link = |v: &Visit| v.link.as_deref() == Some(link);
        let attributed = |a: &Attribution| a.link.as_deref() == Some(link);
        let known = self.visits(client).any(|(_, v)| on_link(v))
            || self.counted(client).any(|(_, _, a)| attributed(a));
        if !known {
            return None;
        }
        let sessions: BTreeSet<&str> = self
            .visits(client)
            .filter(|(r, v)| on_link(v) && range.holds(r.date))
            .map(|(_, v)| v.session.as_str())
            .collect();
        let conversions = self
            .counted(client)
            .filter(|(r, _, a)| attributed(a) && range.holds(r.date))
            .count();
        Some(json!({
            "link_id": link,
            "visits": sessions.len(),
            "conversions": conversions,
            "cvr": pct(conversions, sessions.len()),
        }))
    }

    pub fn campaign_stats(&self, client: &str, campaign: &str, range: Range) -> Option<Value> {
        let known = self.records.iter().any(|r| match &r.kind {
            Kind::Visit(v) => v.client == client && v.campaign == campaign,
            Kind::Conversion(c) => c.client == client && c.campaign == campaign,
            Kind::Pageview(p) => {
                p.client.as_deref() == Some(client) && p.campaign.as_deref() == Some(campaign)
            }
        });
        if !known {
            return None;
        }
        #[derive(Default)]
        struct Day<'a> {
            sessions: BTreeSet<&'a str>,
            conversions: usize,
            bot_visits: usize,
            pageviews: usize,
        }
        let mut days: BTreeMap<Date, Day> = BTreeMap::new();
        let mut total = Day::default();
        for r in self.records.iter().filter(|r| range.holds(r.date)) {
            let day = days.entry(r.date).or_default();
            match &r.kind {
                Kind::Visit(v) if v.client == client && v.campaign == campaign => {
                    if v.bot {
                        day.bot_visits += 1;
                        total.bot_visits += 1;
                    } else {
                        day.sessions.insert(&v.session);
                        total.sessions.insert(&v.session);
                    }
                }
                Kind::Conversion(c)
                    if c.client == client && c.campaign == campaign && c.counted.is_some() =>
                {
                    day.conversions += 1;
                    total.conversions += 1;
                }
                Kind::Pageview(p)
                    if p.client.as_deref() == Some(client)
                        && p.campaign.as_deref() == Some(campaign) =>
                {
                    day.pageviews += 1;
                    total.pageviews += 1;
                }
                _ => {}
            }
        }
        let numbers = |d: &Day| {
            json!({
                "visits": d.sessions.len(),
                "conversions": d.conversions,
                "cvr": pct(d.conversions, d.sessions.len()),
                "bot_visits": d.bot_visits,
                "pageviews": d.pageviews,
            })
        };
        let days: Vec<Value> = days
            .iter()
            .filter(|(_, d)| {
                !d.sessions.is_empty() || d.conversions + d.bot_visits + d.pageviews > 0
            })
            .map(|(date, d)| {
                let mut v = numbers(d);
                v["date"] = json!(date.to_string());
                v
            })
            .collect();
        Some(json!({
            "client_id": client,
            "campaign_id": campaign,
            "from": range.from.to_string(),
            "to": range.to.to_string(),
            "interval": "1d",
            "days": days,
            "total": numbers(&total),
        }))
    }

    pub fn pageviews(&self, client: &str, range: Range, limit: usize) -> Value {
        let mut paths: BTreeMap<String, usize> = BTreeMap::new();
        let mut total = 0;
        for (_, p) in self
            .pageviews_of(client)
            .filter(|(r, _)| range.holds(r.date))
        {
            total += 1;
            *paths.entry(p.path.clone()).or_insert(0) += 1;
        }
        let paths: Vec<Value> = ranked(&paths)
            .into_iter()
            .take(limit)
            .map(|(path, n)| json!({"path": path, "pageviews": n}))
            .collect();
        json!({
            "from": range.from.to_string(),
            "to": range.to.to_string(),
            "total": total,
            "paths": paths,
        })
    }

    pub fn overview(&self, client: &str, range: Range) -> Value {
        let visits: Vec<(&Record, &Visit)> = self
            .visits(client)
            .filter(|(r, _)| range.holds(r.date))
            .collect();
        let conversions: Vec<(&Record, &Conversion, &Attribution)> = self
            .counted(client)
            .filter(|(r, _, _)| range.holds(r.date))
            .collect();

        let sessions: BTreeSet<&str> = visits.iter().map(|(_, v)| v.session.as_str()).collect();
        let campaigns: BTreeSet<&str> = visits
            .iter()
            .map(|(_, v)| v.campaign.as_str())
            .chain(conversions.iter().map(|(_, c, _)| c.campaign.as_str()))
            .collect();
        let webinars: BTreeSet<&str> = visits
            .iter()
            .filter_map(|(_, v)| v.webinar.as_deref())
            .chain(
                conversions
                    .iter()
                    .filter_map(|(_, c, _)| c.webinar.as_deref()),
            )
            .collect();
        let registrations = conversions
            .iter()
            .filter(|(_, c, _)| c.webinar.is_some())
            .count();

        let link_visits: Vec<&Visit> = visits
            .iter()
            .filter(|(_, v)| v.link.is_some())
            .map(|(_, v)| *v)
            .collect();
        let active: BTreeSet<&str> = link_visits
            .iter()
            .filter_map(|v| v.link.as_deref())
            .collect();
        let links: BTreeSet<&str> = active
            .iter()
            .copied()
            .chain(conversions.iter().filter_map(|(_, _, a)| a.link.as_deref()))
            .collect();
        let link_sessions: BTreeSet<&str> =
            link_visits.iter().map(|v| v.session.as_str()).collect();
        let link_conversions = conversions
            .iter()
            .filter(|(_, _, a)| a.link.is_some())
            .count();

        let n = conversions.len();
        let count = |how: How| conversions.iter().filter(|(_, _, a)| a.how == how).count();
        let tracked = n - count(How::None);
        let visit_before = conversions
            .iter()
            .filter(|(_, _, a)| a.visit_before)
            .count();

        // visit_coverage: page views of the client naming a campaign, day in
        // range; covered when the client's session visited that campaign
        // (non-bot) on the page view's day.
        let mut pv_total = 0;
        let mut pv_covered = 0;
        for (r, p) in self.pageviews_of(client) {
            let Some(campaign) = &p.campaign else {
                continue;
            };
            if !range.holds(r.date) {
                continue;
            }
            pv_total += 1;
            if let Some(s) = &p.session
                && self
                    .visits(client)
                    .any(|(vr, v)| &v.session == s && &v.campaign == campaign && vr.date == r.date)
            {
                pv_covered += 1;
            }
        }

        json!({
            "period": {"from": range.from.to_string(), "to": range.to.to_string()},
            "campaigns": {
                "total": campaigns.len(),
                "visits": sessions.len(),
                "conversions": n,
                "cvr": pct(n, sessions.len()),
            },
            "webinars": {
                "total": webinars.len(),
                "registrations": registrations,
                "live_viewers": 0,
                "peak_concurrent": 0,
            },
            "links": {
                "total": links.len(),
                "active": active.len(),
                "total_visits": link_sessions.len(),
                "total_conversions": link_conversions,
            },
            "quality": {
                "utm_tracking_rate": pct(tracked, n),
                "utm_tracking_rate_before_attribution": pct(count(How::Own), n),
                "visit_link_rate": pct(visit_before, n),
                "visit_coverage": pct(pv_covered, pv_total),
            },
        })
    }
}
