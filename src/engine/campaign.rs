//! Campaign state: visits, conversions, page views and attribution per
//! client (DESIGN §4, rules 1–11), and the answers read from it.
//!
//! Everything is kept per client (tenant): a client's sessions, links and
//! UTM values are its own, so a `session_id` used by two clients is two
//! sessions. Per client the state holds
//!
//! - a dictionary of its sessions (dense numbers in first-seen order), so
//!   the distinct sessions of a day are a roaring bitmap and the distinct
//!   sessions over any range of days are the union of the days' bitmaps —
//!   exact, never estimated;
//! - per session, the touches (non-bot visits and page views carrying a
//!   `utm.source` / `utm_source`) and link visits still inside the
//!   attribution window, and the time of its latest visit;
//! - the counted conversions, each with the attribution decided when it was
//!   applied (rule 6), in applied order;
//! - per local day (`stats.timezone` date of the effective `ts`): distinct
//!   visiting sessions per client, per campaign, per link and for links as a
//!   whole; bot visits and page views per campaign; page views per path;
//!   the page views of each campaign and how many of them were covered by a
//!   visit of their session to that campaign on the same day (rule 9).
//!
//! The engine applies events here in log order, with their effective time
//! (its campaign clocks, DESIGN §2, decide that); readers take a
//! [`CampaignView`] and ask for the JSON answers of DESIGN §6.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::AhoCorasick;
use hashbrown::HashMap;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::presence::DayMark;
use super::report::{
    Attribution, ByCampaign, ByCombination, ByMedium, BySource, CampaignDay, CampaignNumbers,
    CampaignStats, LinkStats, Overview, OverviewCampaigns, OverviewLinks, OverviewWebinars,
    Pageviews, PathViews, Period, Quality, Summary,
};
use crate::event::{Conversion, Pageview, Utm, Visit};

const DAY_MS: i64 = 86_400_000;

/// Crawlers whose visits are counted apart (rule 3), matched anywhere in the
/// `user_agent`, ignoring ASCII case. In-app browsers (KakaoTalk, NAVER) and
/// ordinary browsers are people.
pub const CRAWLERS: &[&str] = &[
    "Googlebot",
    "bingbot",
    "YandexBot",
    "AhrefsBot",
    "DuckDuckBot",
    "Baiduspider",
    "Applebot",
    "SemrushBot",
    "Yeti/",
    "Daumoa",
    "facebookexternalhit",
    "Twitterbot",
    "PetalBot",
    "Bytespider",
    "GPTBot",
    "MJ12bot",
    "DotBot",
    "Slurp",
];

static CRAWLER_MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(CRAWLERS)
        .expect("the crawler patterns build")
});

/// Whether a `user_agent` names a known crawler.
pub fn is_bot(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| CRAWLER_MATCHER.is_match(ua))
}

/// An inclusive range of local dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: Date,
    pub to: Date,
}

impl DateRange {
    fn contains(&self, d: Date) -> bool {
        self.from <= d && d <= self.to
    }

    /// The range as an answer names it.
    pub fn period(&self) -> Period {
        Period {
            from: date(self.from),
            to: date(self.to),
        }
    }
}

/// A string table: values stored once per client, referred to by number.
#[derive(Default, Serialize, Deserialize)]
struct Names {
    names: Vec<Box<str>>,
    #[serde(skip)]
    index: HashMap<Box<str>, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }

    fn reindex(&mut self) {
        self.index = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
    }
}

/// "No value": a missing UTM field, no link, no webinar.
const NONE: u32 = u32::MAX;

/// Source, medium and campaign of a UTM, as numbers of the client's
/// [`Names`] (`NONE` when missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct UtmKey {
    source: u32,
    medium: u32,
    campaign: u32,
}

impl UtmKey {
    const NONE: UtmKey = UtmKey {
        source: NONE,
        medium: NONE,
        campaign: NONE,
    };
}

/// Something a session did that attribution may look back to: a non-bot
/// visit carrying a UTM source or a link, or a UTM-carrying page view; its
/// effective time and applied order, its UTM (`source` `NONE`: none) and
/// link (`NONE`: none). 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Mark {
    ts: i64,
    seq: u64,
    utm: UtmKey,
    link: u32,
}

/// Marks kept in (ts, applied order): the earliest one inside a window is
/// the first at or after its start. Marks older than `horizon` (out of
/// every future conversion's window) are dropped on the way. Most sessions
/// hold one or two marks, so the list grows one slot at a time up to four.
fn insert_mark(marks: &mut Vec<Mark>, mark: Mark, horizon: i64) {
    let stale = marks.partition_point(|m| m.ts < horizon);
    marks.drain(..stale);
    if marks.len() == marks.capacity() && marks.capacity() < 4 {
        marks.reserve_exact(1);
    }
    let at = marks.partition_point(|m| (m.ts, m.seq) <= (mark.ts, mark.seq));
    marks.insert(at, mark);
}

/// The UTM of the earliest touch at or after `since`.
fn earliest_touch(marks: &[Mark], since: i64) -> Option<UtmKey> {
    let i = marks.partition_point(|m| m.ts < since);
    marks[i..]
        .iter()
        .find(|m| m.utm.source != NONE)
        .map(|m| m.utm)
}

/// The link of the earliest link visit at or after `since`.
fn earliest_link(marks: &[Mark], since: i64) -> Option<u32> {
    let i = marks.partition_point(|m| m.ts < since);
    marks[i..].iter().find(|m| m.link != NONE).map(|m| m.link)
}

/// What attribution remembers of a session with something inside the
/// window: 32 bytes and its marks.
#[derive(Serialize, Deserialize)]
struct Session {
    marks: Vec<Mark>,
    /// Effective time of the latest non-bot visit (`i64::MIN`: none).
    last_visit: i64,
}

impl Session {
    fn new() -> Session {
        Session {
            marks: Vec::new(),
            last_visit: i64::MIN,
        }
    }

    /// Drops what is older than `horizon`; whether anything is left.
    fn prune(&mut self, horizon: i64) -> bool {
        let stale = self.marks.partition_point(|m| m.ts < horizon);
        self.marks.drain(..stale);
        if self.marks.is_empty() {
            self.marks = Vec::new();
        }
        self.last_visit >= horizon || !self.marks.is_empty()
    }
}

/// Viewers of each webinar with a live millisecond on each local day
/// (presence intervals, DESIGN §3), as bitmaps of viewer numbers: distinct
/// viewers over any days and webinars together are the size of a union.
#[derive(Default, Serialize, Deserialize)]
struct ViewerDays {
    /// Viewer fingerprints (the presence engine's), numbered.
    viewers: SessionIds,
    days: HashMap<Box<str>, BTreeMap<Date, RoaringBitmap>>,
}

impl ViewerDays {
    /// The numbers of the viewers of `webinars` together with a live
    /// millisecond on a day of `range`.
    fn union(&self, webinars: &[&str], range: DateRange) -> RoaringBitmap {
        let mut viewers = RoaringBitmap::new();
        for w in webinars {
            if let Some(days) = self.days.get(*w) {
                for (_, set) in days.range(range.from..=range.to) {
                    viewers |= set;
                }
            }
        }
        viewers
    }
}

/// A link's numbers (DESIGN §4 rule 7).
fn link_stats(link_id: &str, visits: u64, conversions: u64) -> LinkStats {
    LinkStats {
        link_id: link_id.to_owned(),
        visits,
        conversions,
        cvr: pct(conversions, visits),
    }
}

/// A client's sessions, numbered in first-seen order (the numbers its day
/// bitmaps hold). Ids are kept as 128-bit fingerprints (XXH3-128: two of a
/// billion sessions share one with probability below 10⁻²⁰), 16 bytes and
/// an index slot per session whatever the length of its id.
#[derive(Default, Serialize, Deserialize)]
struct SessionIds {
    fps: Vec<u128>,
    #[serde(skip)]
    index: hashbrown::HashTable<u32>,
}

impl SessionIds {
    fn fingerprint(id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(id.as_bytes())
    }

    fn get(&self, id: &str) -> Option<u32> {
        self.get_fp(Self::fingerprint(id))
    }

    fn get_fp(&self, fp: u128) -> Option<u32> {
        self.index
            .find(fp as u64, |&n| self.fps[n as usize] == fp)
            .copied()
    }

    /// The session's number, and whether it is new.
    fn insert(&mut self, id: &str) -> (u32, bool) {
        self.insert_fp(Self::fingerprint(id))
    }

    fn insert_fp(&mut self, fp: u128) -> (u32, bool) {
        let fps = &self.fps;
        if let Some(&n) = self.index.find(fp as u64, |&n| fps[n as usize] == fp) {
            return (n, false);
        }
        let n = self.fps.len() as u32;
        self.fps.push(fp);
        let fps = &self.fps;
        self.index
            .insert_unique(fp as u64, n, |&m| fps[m as usize] as u64);
        (n, true)
    }

    fn len(&self) -> usize {
        self.fps.len()
    }

    fn reindex(&mut self) {
        let fps = &self.fps;
        let mut index = hashbrown::HashTable::with_capacity(fps.len());
        for (n, fp) in fps.iter().enumerate() {
            index.insert_unique(*fp as u64, n as u32, |&m| fps[m as usize] as u64);
        }
        self.index = index;
    }
}

/// How a conversion's UTM was found (rule 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Source {
    Own,
    Session,
    Link,
    None,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Own => "own",
            Source::Session => "session",
            Source::Link => "link",
            Source::None => "none",
        }
    }
}

/// A counted conversion and what it was attributed to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Counted {
    day: Date,
    campaign: u32,
    utm: UtmKey,
    how: Source,
    /// Its link (own, else the session's), or `NONE`.
    link: u32,
    /// The webinar it names, or `NONE`.
    webinar: u32,
    /// Its session had an earlier non-bot visit of the client in the window.
    visit_before: bool,
}

/// Distinct sessions per day.
type DaySets = BTreeMap<Date, RoaringBitmap>;

fn union_in(sets: &DaySets, range: DateRange) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for set in sets.range(range.from..=range.to).map(|(_, s)| s) {
        out |= set;
    }
    out
}

fn any_in<T>(days: &BTreeMap<Date, T>, range: DateRange) -> bool {
    days.range(range.from..=range.to).next().is_some()
}

fn sum_in(days: &BTreeMap<Date, u64>, range: DateRange) -> u64 {
    days.range(range.from..=range.to).map(|(_, n)| n).sum()
}

/// Page views of a campaign on one day (rule 9).
#[derive(Default, Serialize, Deserialize)]
struct Coverage {
    pageviews: u64,
    /// Page views whose session visited the campaign that day.
    covered: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct CampaignDays {
    visits: DaySets,
    bot_visits: BTreeMap<Date, u64>,
    /// Counted conversions naming the campaign.
    conversions: BTreeMap<Date, u64>,
    /// Page views naming the client and the campaign.
    coverage: BTreeMap<Date, Coverage>,
    /// Page views of the campaign's current day whose session has not
    /// visited it that day yet: (day, session → page views). A campaign's
    /// clock never goes back, so an earlier day can no longer be covered.
    waiting: Option<(Date, HashMap<u32, u64>)>,
}

#[derive(Default, Serialize, Deserialize)]
struct Link {
    visits: DaySets,
    /// Counted conversions attributed to the link.
    conversions: BTreeMap<Date, u64>,
    /// UTM of the first non-bot visit carrying the link and a source.
    first_utm: Option<UtmKey>,
}

/// Everything of one client.
#[derive(Default, Serialize, Deserialize)]
struct Client {
    names: Names,
    /// Session ids and their numbers.
    session_ids: SessionIds,
    /// Sessions with a visit or a touch inside the attribution window.
    active: HashMap<u32, Session>,
    campaigns: HashMap<u32, CampaignDays>,
    links: HashMap<u32, Link>,
    /// Distinct sessions with a non-bot visit, per day.
    visits: DaySets,
    /// Distinct sessions with a non-bot visit carrying a link, per day.
    link_visits: DaySets,
    /// Campaigns with a non-bot visit or a counted conversion, per day.
    active_campaigns: BTreeMap<Date, Vec<u32>>,
    /// Webinars named on non-bot visits or counted conversions, per day.
    webinars: BTreeMap<Date, Vec<u32>>,
    /// Fingerprints (XXH3-128) of the `entry_id`s of counted conversions.
    entries: hashbrown::HashSet<u128>,
    conversions: Vec<Counted>,
    /// Page views naming the client, per day and path.
    paths: BTreeMap<Date, HashMap<u32, u64>>,
    /// Counted conversions per day.
    conversions_by_day: BTreeMap<Date, u64>,
    /// Rows changed since they were last taken.
    #[serde(skip)]
    dirty: hashbrown::HashSet<Dirty>,
    #[serde(skip)]
    new_sessions: Vec<(u32, String)>,
    #[serde(skip)]
    new_conversions: Vec<ConversionRow>,
}

/// A row of the campaign tables that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dirty {
    Campaign(u32, Date),
    Client(Date),
    Link(u32, Date),
    Path(u32, Date),
}

/// One campaign's day (table `campaign_days`).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignDayRow {
    pub client_id: String,
    pub campaign_id: String,
    pub day: Date,
    pub visits: u64,
    pub conversions: u64,
    pub bot_visits: u64,
    pub pageviews: u64,
    pub covered_pageviews: u64,
    /// The distinct visiting sessions: a serialized roaring bitmap of the
    /// client's session numbers (`campaign_sessions`).
    pub sessions: Vec<u8>,
}

/// One client's day over all its campaigns (table `client_days`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDayRow {
    pub client_id: String,
    pub day: Date,
    pub visits: u64,
    pub link_visits: u64,
    pub conversions: u64,
    pub sessions: Vec<u8>,
    pub link_sessions: Vec<u8>,
    /// Webinars named on the day's non-bot visits and counted conversions.
    pub webinars: Vec<String>,
}

/// One link's day (table `link_days`).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkDayRow {
    pub client_id: String,
    pub link_id: String,
    pub day: Date,
    pub visits: u64,
    pub conversions: u64,
    pub sessions: Vec<u8>,
}

/// Page views of a path on a day (table `pageview_days`).
#[derive(Debug, Clone, PartialEq)]
pub struct PathDayRow {
    pub client_id: String,
    pub day: Date,
    pub path: String,
    pub pageviews: u64,
}

/// A counted conversion with its attribution (table `campaign_conversions`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionRow {
    pub client_id: String,
    pub entry_id: String,
    pub campaign_id: String,
    pub day: Date,
    pub ts: i64,
    /// `own`, `session`, `link` or `none`.
    pub attribution: String,
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub link_id: Option<String>,
    pub webinar_id: Option<String>,
    pub session_id: Option<String>,
    pub visit_before: bool,
}

/// A session's number in its client's bitmaps (table `campaign_sessions`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub client_id: String,
    pub session_id: String,
    pub number: u32,
}

/// Campaign rows to write: changed day rows and new conversions and
/// sessions. Rows hold absolute values; writing one twice changes nothing.
#[derive(Debug, Clone, Default)]
pub struct CampaignRows {
    pub campaign_days: Vec<CampaignDayRow>,
    pub client_days: Vec<ClientDayRow>,
    pub link_days: Vec<LinkDayRow>,
    pub path_days: Vec<PathDayRow>,
    pub conversions: Vec<ConversionRow>,
    pub sessions: Vec<SessionRow>,
}

impl CampaignRows {
    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    pub fn rows(&self) -> usize {
        self.campaign_days.len()
            + self.client_days.len()
            + self.link_days.len()
            + self.path_days.len()
            + self.conversions.len()
            + self.sessions.len()
    }

    /// Adds later rows: a day row replaces the same day's earlier one.
    pub fn merge(&mut self, later: CampaignRows) {
        /// Linear in both lists: batches merge for as long as the store is
        /// down.
        fn merge_by<T, K: std::hash::Hash + Eq>(
            into: &mut Vec<T>,
            later: Vec<T>,
            key: impl Fn(&T) -> K,
        ) {
            let mut at: HashMap<K, usize> =
                into.iter().enumerate().map(|(i, r)| (key(r), i)).collect();
            for row in later {
                match at.get(&key(&row)) {
                    Some(&i) => into[i] = row,
                    None => {
                        at.insert(key(&row), into.len());
                        into.push(row);
                    }
                }
            }
        }
        merge_by(&mut self.campaign_days, later.campaign_days, |r| {
            (r.client_id.clone(), r.campaign_id.clone(), r.day)
        });
        merge_by(&mut self.client_days, later.client_days, |r| {
            (r.client_id.clone(), r.day)
        });
        merge_by(&mut self.link_days, later.link_days, |r| {
            (r.client_id.clone(), r.link_id.clone(), r.day)
        });
        merge_by(&mut self.path_days, later.path_days, |r| {
            (r.client_id.clone(), r.path.clone(), r.day)
        });
        self.conversions.extend(later.conversions);
        self.sessions.extend(later.sessions);
    }
}

fn bitmap_bytes(set: Option<&RoaringBitmap>) -> Vec<u8> {
    let empty = RoaringBitmap::new();
    let set = set.unwrap_or(&empty);
    let mut out = Vec::with_capacity(set.serialized_size());
    set.serialize_into(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// The set a serialized bitmap holds (for readers of the stored rows).
pub fn bitmap_from_bytes(bytes: &[u8]) -> std::io::Result<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes)
}

fn add_once(days: &mut BTreeMap<Date, Vec<u32>>, day: Date, v: u32) {
    let list = days.entry(day).or_default();
    if !list.contains(&v) {
        list.push(v);
    }
}

impl Client {
    fn session(&mut self, id: &str) -> u32 {
        let (sid, new) = self.session_ids.insert(id);
        if new {
            self.new_sessions.push((sid, id.to_owned()));
        }
        sid
    }

    fn mark(&mut self, d: Dirty) {
        self.dirty.insert(d);
    }

    /// The changed rows, and conversions and sessions new since last time.
    fn take_rows(&mut self, client_id: &str, rows: &mut CampaignRows) {
        let id = client_id.to_owned();
        for d in self.dirty.drain() {
            match d {
                Dirty::Campaign(c, day) => {
                    let days = &self.campaigns[&c];
                    let cov = days.coverage.get(&day);
                    let set = days.visits.get(&day);
                    rows.campaign_days.push(CampaignDayRow {
                        client_id: id.clone(),
                        campaign_id: self.names.name(c).to_owned(),
                        day,
                        visits: set.map_or(0, |s| s.len()),
                        conversions: days.conversions.get(&day).copied().unwrap_or(0),
                        bot_visits: days.bot_visits.get(&day).copied().unwrap_or(0),
                        pageviews: cov.map_or(0, |c| c.pageviews),
                        covered_pageviews: cov.map_or(0, |c| c.covered),
                        sessions: bitmap_bytes(set),
                    });
                }
                Dirty::Client(day) => {
                    let (set, links) = (self.visits.get(&day), self.link_visits.get(&day));
                    rows.client_days.push(ClientDayRow {
                        client_id: id.clone(),
                        day,
                        visits: set.map_or(0, |s| s.len()),
                        link_visits: links.map_or(0, |s| s.len()),
                        conversions: self.conversions_by_day.get(&day).copied().unwrap_or(0),
                        sessions: bitmap_bytes(set),
                        link_sessions: bitmap_bytes(links),
                        webinars: self.webinars.get(&day).map_or_else(Vec::new, |l| {
                            l.iter().map(|w| self.names.name(*w).to_owned()).collect()
                        }),
                    });
                }
                Dirty::Link(l, day) => {
                    let link = &self.links[&l];
                    let set = link.visits.get(&day);
                    rows.link_days.push(LinkDayRow {
                        client_id: id.clone(),
                        link_id: self.names.name(l).to_owned(),
                        day,
                        visits: set.map_or(0, |s| s.len()),
                        conversions: link.conversions.get(&day).copied().unwrap_or(0),
                        sessions: bitmap_bytes(set),
                    });
                }
                Dirty::Path(p, day) => rows.path_days.push(PathDayRow {
                    client_id: id.clone(),
                    day,
                    path: self.names.name(p).to_owned(),
                    pageviews: self.paths[&day][&p],
                }),
            }
        }
        for (number, session_id) in self.new_sessions.drain(..) {
            rows.sessions.push(SessionRow {
                client_id: id.clone(),
                session_id,
                number,
            });
        }
        rows.conversions.append(&mut self.new_conversions);
    }

    fn utm(&mut self, utm: &Utm<'_>) -> Option<UtmKey> {
        let source = self.names.id(utm.source.as_deref()?);
        let names = &mut self.names;
        let mut id = |v: Option<&str>| v.map_or(NONE, |s| names.id(s));
        Some(UtmKey {
            source,
            medium: id(utm.medium.as_deref()),
            campaign: id(utm.campaign.as_deref()),
        })
    }

    fn campaign(&mut self, id: &str) -> (u32, &mut CampaignDays) {
        let c = self.names.id(id);
        (c, self.campaigns.entry(c).or_default())
    }
}

/// Settings of the campaign state.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    pub timezone: TimeZone,
    pub window_days: u32,
}

/// Every client's campaign state.
#[derive(Serialize, Deserialize)]
pub struct Campaigns {
    #[serde(skip)]
    tz: Option<TimeZone>,
    window_ms: i64,
    clients: HashMap<Box<str>, Client>,
    /// Applied order of the records, for ties.
    seq: u64,
    /// The last `eventflow restore` of the store absorbed.
    restored_through: i64,
    /// Live viewers per webinar and day.
    viewer_days: ViewerDays,
    /// Clients with rows changed since [`Campaigns::take_rows`].
    #[serde(skip)]
    touched: hashbrown::HashSet<Box<str>>,
    /// The local day last looked up: `[start, end)` and its date.
    #[serde(skip)]
    day_cache: Option<(i64, i64, Date)>,
}

impl Campaigns {
    pub fn new(config: &CampaignConfig) -> Campaigns {
        Campaigns {
            tz: Some(config.timezone.clone()),
            window_ms: i64::from(config.window_days) * DAY_MS,
            clients: HashMap::new(),
            seq: 0,
            restored_through: 0,
            viewer_days: ViewerDays::default(),
            touched: hashbrown::HashSet::new(),
            day_cache: None,
        }
    }

    /// Restores saved state under `config` (its time zone is not saved).
    pub fn from_saved(mut self, config: &CampaignConfig) -> Campaigns {
        self.tz = Some(config.timezone.clone());
        for client in self.clients.values_mut() {
            client.names.reindex();
            client.session_ids.reindex();
        }
        self.viewer_days.viewers.reindex();
        self
    }

    fn tz(&self) -> &TimeZone {
        self.tz.as_ref().expect("the time zone is set")
    }

    /// The local date of effective time `ts`.
    fn day(&mut self, ts: i64) -> Date {
        if let Some((start, end, date)) = self.day_cache
            && start <= ts
            && ts < end
        {
            return date;
        }
        // Event times run to the end of year 9999 UTC; jiff's last instant
        // is a day earlier (so that every zone's date exists): the last day
        // holds what lies beyond.
        let zoned = Timestamp::from_millisecond(ts)
            .unwrap_or(if ts < 0 {
                Timestamp::MIN
            } else {
                Timestamp::MAX
            })
            .to_zoned(self.tz().clone());
        let date = zoned.date();
        let bounds = zoned.start_of_day().ok().and_then(|start| {
            let end = start.tomorrow().ok()?.start_of_day().ok()?;
            Some((
                start.timestamp().as_millisecond(),
                end.timestamp().as_millisecond(),
            ))
        });
        if let Some((start, end)) = bounds {
            self.day_cache = Some((start, end, date));
        }
        date
    }

    fn client(&mut self, id: &str) -> &mut Client {
        if !self.touched.contains(id) {
            self.touched.insert(id.into());
        }
        self.clients.entry_ref(id).or_default()
    }

    /// Numbers sessions as a store already does (see
    /// [`Engine::seed_campaign_sessions`](super::Engine::seed_campaign_sessions)).
    pub fn seed_sessions(
        &mut self,
        client_id: &str,
        numbers: Vec<(u32, String)>,
    ) -> Result<(), String> {
        let client = self.clients.entry_ref(client_id).or_default();
        for (number, session) in numbers {
            if number as usize != client.session_ids.len() {
                return Err(format!(
                    "session numbers must run 0, 1, 2, ... (found {number} where {} was expected)",
                    client.session_ids.len()
                ));
            }
            if client.session_ids.insert(&session) != (number, true) {
                return Err(format!("session {session:?} has two numbers"));
            }
        }
        Ok(())
    }

    /// Viewers of `webinar_id` who gained (or lost) a live millisecond on a
    /// day.
    pub fn viewer_days(&mut self, webinar_id: &str, marks: &[DayMark]) {
        for m in marks {
            let day = self.day(m.day_start);
            let vd = &mut self.viewer_days;
            let days = vd.days.entry_ref(webinar_id).or_default();
            if m.live {
                let (n, _) = vd.viewers.insert_fp(m.viewer);
                days.entry(day).or_default().insert(n);
            } else if let Some(n) = vd.viewers.get_fp(m.viewer)
                && let Some(set) = days.get_mut(&day)
            {
                set.remove(n);
                if set.is_empty() {
                    days.remove(&day);
                }
            }
        }
    }

    /// Forgets what no future conversion can look back to: marks older than
    /// `horizon` and sessions with nothing left inside the window.
    pub fn sweep(&mut self, horizon: i64) {
        for client in self.clients.values_mut() {
            client.active.retain(|_, s| s.prune(horizon));
            if client.active.capacity() > 4 * client.active.len().max(16) {
                client.active.shrink_to_fit();
            }
        }
    }

    /// The last restore whose rows were absorbed.
    pub fn restored_through(&self) -> i64 {
        self.restored_through
    }

    /// Takes in rows a store holds that this state does not: rows an
    /// `eventflow restore` wrote for days, links, paths and conversions the
    /// service never applied. Rows of keys already held are left alone (the
    /// service's own are newer), and so are sessions whose number disagrees.
    /// Returns how many rows were taken in.
    pub fn absorb(&mut self, restore_id: i64, rows: CampaignRows) -> usize {
        let mut taken = 0;
        for s in rows.sessions {
            let client = self.clients.entry_ref(s.client_id.as_str()).or_default();
            if s.number as usize == client.session_ids.len()
                && client.session_ids.get(&s.session_id).is_none()
            {
                client.session_ids.insert(&s.session_id);
                taken += 1;
            } else if client.session_ids.get(&s.session_id) != Some(s.number) {
                tracing::warn!(client = %s.client_id, session = %s.session_id, number = s.number,
                    "a stored session number disagrees with the engine's; its restored days may count it apart");
            }
        }
        let bitmap = |b: &[u8]| bitmap_from_bytes(b).unwrap_or_default();
        for r in rows.campaign_days {
            let client = self.clients.entry_ref(r.client_id.as_str()).or_default();
            let c = client.names.id(&r.campaign_id);
            let days = client.campaigns.entry(c).or_default();
            let held = days.visits.contains_key(&r.day)
                || days.bot_visits.contains_key(&r.day)
                || days.conversions.contains_key(&r.day)
                || days.coverage.contains_key(&r.day);
            if held {
                continue;
            }
            if r.visits > 0 {
                days.visits.insert(r.day, bitmap(&r.sessions));
            }
            if r.bot_visits > 0 {
                days.bot_visits.insert(r.day, r.bot_visits);
            }
            if r.conversions > 0 {
                days.conversions.insert(r.day, r.conversions);
            }
            if r.pageviews > 0 {
                days.coverage.insert(
                    r.day,
                    Coverage {
                        pageviews: r.pageviews,
                        covered: r.covered_pageviews,
                    },
                );
            }
            if r.visits > 0 || r.conversions > 0 {
                add_once(&mut client.active_campaigns, r.day, c);
            }
            taken += 1;
        }
        for r in rows.client_days {
            let client = self.clients.entry_ref(r.client_id.as_str()).or_default();
            if client.visits.contains_key(&r.day) || client.conversions_by_day.contains_key(&r.day)
            {
                continue;
            }
            if r.visits > 0 {
                client.visits.insert(r.day, bitmap(&r.sessions));
            }
            if r.link_visits > 0 {
                client.link_visits.insert(r.day, bitmap(&r.link_sessions));
            }
            if r.conversions > 0 {
                client.conversions_by_day.insert(r.day, r.conversions);
            }
            for w in &r.webinars {
                let w = client.names.id(w);
                add_once(&mut client.webinars, r.day, w);
            }
            taken += 1;
        }
        for r in rows.link_days {
            let client = self.clients.entry_ref(r.client_id.as_str()).or_default();
            let l = client.names.id(&r.link_id);
            let link = client.links.entry(l).or_default();
            if link.visits.contains_key(&r.day) || link.conversions.contains_key(&r.day) {
                continue;
            }
            if r.visits > 0 {
                link.visits.insert(r.day, bitmap(&r.sessions));
            }
            if r.conversions > 0 {
                link.conversions.insert(r.day, r.conversions);
            }
            taken += 1;
        }
        for r in rows.path_days {
            let client = self.clients.entry_ref(r.client_id.as_str()).or_default();
            let p = client.names.id(&r.path);
            let day = client.paths.entry(r.day).or_default();
            if let hashbrown::hash_map::Entry::Vacant(e) = day.entry(p) {
                e.insert(r.pageviews);
                taken += 1;
            }
        }
        for r in rows.conversions {
            let client = self.clients.entry_ref(r.client_id.as_str()).or_default();
            if !client
                .entries
                .insert(xxhash_rust::xxh3::xxh3_128(r.entry_id.as_bytes()))
            {
                continue;
            }
            let mut id = |v: &Option<String>| v.as_deref().map_or(NONE, |s| client.names.id(s));
            let utm = UtmKey {
                source: id(&r.source),
                medium: id(&r.medium),
                campaign: id(&r.campaign),
            };
            let (link, webinar) = (id(&r.link_id), id(&r.webinar_id));
            let campaign = client.names.id(&r.campaign_id);
            let how = match r.attribution.as_str() {
                "own" => Source::Own,
                "session" => Source::Session,
                "link" => Source::Link,
                _ => Source::None,
            };
            if webinar != NONE {
                add_once(&mut client.webinars, r.day, webinar);
            }
            add_once(&mut client.active_campaigns, r.day, campaign);
            if link != NONE {
                client.links.entry(link).or_default();
            }
            client.conversions.push(Counted {
                day: r.day,
                campaign,
                utm,
                how,
                link,
                webinar,
                visit_before: r.visit_before,
            });
            taken += 1;
        }
        self.restored_through = self.restored_through.max(restore_id);
        taken
    }

    /// Rows changed since the last call, with new conversions and sessions.
    pub fn take_rows(&mut self) -> CampaignRows {
        let mut rows = CampaignRows::default();
        for id in std::mem::take(&mut self.touched) {
            if let Some(client) = self.clients.get_mut(&id) {
                client.take_rows(&id, &mut rows);
            }
        }
        rows
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A visit applied at effective time `ts`; `horizon` is the earliest
    /// time a future conversion's window can reach back to (the tick clock
    /// minus the window).
    pub fn visit(&mut self, v: &Visit<'_>, ts: i64, horizon: i64) {
        let day = self.day(ts);
        let seq = self.next_seq();
        let client = self.client(&v.client_id);
        let (campaign, days) = client.campaign(&v.campaign_id);
        let bot = is_bot(v.user_agent.as_deref());
        if bot {
            *days.bot_visits.entry(day).or_default() += 1;
        }
        client.mark(Dirty::Campaign(campaign, day));
        if bot {
            return;
        }
        client.mark(Dirty::Client(day));
        let sid = client.session(&v.session_id);
        let (_, days) = client.campaign(&v.campaign_id);
        if days.visits.entry(day).or_default().insert(sid)
            && let Some((d, waiting)) = &mut days.waiting
            && *d == day
            && let Some(n) = waiting.remove(&sid)
        {
            days.coverage.entry(day).or_default().covered += n;
        }
        client.visits.entry(day).or_default().insert(sid);
        add_once(&mut client.active_campaigns, day, campaign);
        if let Some(w) = &v.webinar_id {
            let w = client.names.id(w);
            add_once(&mut client.webinars, day, w);
        }
        let utm = client.utm(&v.utm);
        let link = v.link_id.as_deref().map(|l| client.names.id(l));
        let session = client.active.entry(sid).or_insert_with(Session::new);
        session.last_visit = session.last_visit.max(ts);
        if utm.is_some() || link.is_some() {
            let mark = Mark {
                ts,
                seq,
                utm: utm.unwrap_or(UtmKey::NONE),
                link: link.unwrap_or(NONE),
            };
            insert_mark(&mut session.marks, mark, horizon);
        }
        if let Some(link) = link {
            client.link_visits.entry(day).or_default().insert(sid);
            client.mark(Dirty::Link(link, day));
            let rec = client.links.entry(link).or_default();
            rec.visits.entry(day).or_default().insert(sid);
            if rec.first_utm.is_none() {
                rec.first_utm = utm;
            }
        }
    }

    /// A page view applied at effective time `ts`.
    pub fn pageview(&mut self, p: &Pageview<'_>, ts: i64, horizon: i64) {
        let Some(client_id) = &p.client_id else {
            return;
        };
        let day = self.day(ts);
        let seq = self.next_seq();
        let client = self.client(client_id);
        let path = client.names.id(&p.path);
        *client
            .paths
            .entry(day)
            .or_default()
            .entry(path)
            .or_default() += 1;
        client.mark(Dirty::Path(path, day));
        let Some(campaign_id) = &p.campaign_id else {
            return;
        };
        let sid = p.session_id.as_deref().map(|s| client.session(s));
        let (campaign, _) = client.campaign(campaign_id);
        client.mark(Dirty::Campaign(campaign, day));
        let days = client.campaigns.get_mut(&campaign).expect("made above");
        let coverage = days.coverage.entry(day).or_default();
        coverage.pageviews += 1;
        if let Some(sid) = sid {
            if days.visits.get(&day).is_some_and(|s| s.contains(sid)) {
                coverage.covered += 1;
            } else {
                if days.waiting.as_ref().is_none_or(|(d, _)| *d != day) {
                    days.waiting = Some((day, HashMap::new()));
                }
                let (_, waiting) = days.waiting.as_mut().expect("set above");
                *waiting.entry(sid).or_default() += 1;
            }
            if !is_bot(p.user_agent.as_deref())
                && let Some(utm) = client.utm(&p.utm())
            {
                let session = client.active.entry(sid).or_insert_with(Session::new);
                let mark = Mark {
                    ts,
                    seq,
                    utm,
                    link: NONE,
                };
                insert_mark(&mut session.marks, mark, horizon);
            }
        }
    }

    /// A conversion applied at effective time `ts`: counted and attributed
    /// if its (`client_id`, `entry_id`) is new (rules 5 and 6).
    pub fn conversion(&mut self, c: &Conversion<'_>, ts: i64) {
        let day = self.day(ts);
        self.next_seq();
        let window_ms = self.window_ms;
        let client = self.client(&c.client_id);
        let (campaign, _) = client.campaign(&c.campaign_id);
        client.mark(Dirty::Campaign(campaign, day));
        if !client
            .entries
            .insert(xxhash_rust::xxh3::xxh3_128(c.entry_id.as_bytes()))
        {
            return;
        }
        client.mark(Dirty::Client(day));
        let since = ts.saturating_sub(window_ms);
        let sid = c
            .session_id
            .as_deref()
            .and_then(|s| client.session_ids.get(s));
        let link = match &c.link_id {
            Some(l) => client.names.id(l),
            None => sid
                .and_then(|sid| client.active.get(&sid))
                .and_then(|s| earliest_link(&s.marks, since))
                .unwrap_or(NONE),
        };
        let own = client.utm(&c.utm);
        let session = sid.and_then(|sid| client.active.get(&sid));
        let visit_before =
            session.is_some_and(|s| s.last_visit >= since && s.last_visit != i64::MIN);
        let (how, utm) = if let Some(utm) = own {
            (Source::Own, utm)
        } else if let Some(utm) = session.and_then(|s| earliest_touch(&s.marks, since)) {
            (Source::Session, utm)
        } else if let Some(utm) = client.links.get(&link).and_then(|l| l.first_utm) {
            (Source::Link, utm)
        } else {
            (Source::None, UtmKey::NONE)
        };
        let webinar = c.webinar_id.as_deref().map_or(NONE, |w| client.names.id(w));
        add_once(&mut client.active_campaigns, day, campaign);
        if webinar != NONE {
            add_once(&mut client.webinars, day, webinar);
        }
        *client.conversions_by_day.entry(day).or_default() += 1;
        *client
            .campaigns
            .get_mut(&campaign)
            .expect("made above")
            .conversions
            .entry(day)
            .or_default() += 1;
        if link != NONE {
            *client
                .links
                .entry(link)
                .or_default()
                .conversions
                .entry(day)
                .or_default() += 1;
            client.mark(Dirty::Link(link, day));
        }
        let name = |i: u32| (i != NONE).then(|| client.names.name(i).to_owned());
        let row = ConversionRow {
            client_id: c.client_id.to_string(),
            entry_id: c.entry_id.to_string(),
            campaign_id: c.campaign_id.to_string(),
            day,
            ts,
            attribution: how.as_str().to_owned(),
            source: name(utm.source),
            medium: name(utm.medium),
            campaign: name(utm.campaign),
            link_id: name(link),
            webinar_id: c.webinar_id.as_deref().map(str::to_owned),
            session_id: c.session_id.as_deref().map(str::to_owned),
            visit_before,
        };
        client.new_conversions.push(row);
        client.conversions.push(Counted {
            day,
            campaign,
            utm,
            how,
            link,
            webinar,
            visit_before,
        });
    }

    /// Clients with campaign state.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

/// A shared handle on the campaign state for readers.
#[derive(Clone)]
pub struct CampaignView(pub(crate) Arc<RwLock<Campaigns>>);

fn pct(n: u64, d: u64) -> Option<f64> {
    if d == 0 {
        return None;
    }
    // Tenths of a percent, rounded half up, in integers: exact.
    let tenths = (u128::from(n) * 1000 + u128::from(d) / 2) / u128::from(d);
    Some(tenths as f64 / 10.0)
}

fn date(d: Date) -> String {
    d.to_string()
}

/// Entries of a count map as a list sorted by count descending, then key.
fn ranked<K: Ord + Clone>(counts: HashMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

impl CampaignView {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Campaigns> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Conversions by source, medium, campaign and their combination, and
    /// by how they were attributed (DESIGN §6).
    pub fn summary(&self, client_id: &str, range: DateRange) -> Summary {
        let state = self.read();
        let mut total = 0u64;
        let mut how = [0u64; 4];
        let mut sources: HashMap<String, u64> = HashMap::new();
        let mut mediums: HashMap<String, u64> = HashMap::new();
        let mut campaigns: HashMap<String, u64> = HashMap::new();
        let mut combos: HashMap<(String, String, String), u64> = HashMap::new();
        if let Some(client) = state.clients.get(client_id) {
            let name = |i: u32| {
                if i == NONE {
                    "(none)".to_owned()
                } else {
                    client.names.name(i).to_owned()
                }
            };
            let mut by_utm: HashMap<UtmKey, u64> = HashMap::new();
            for c in client.conversions.iter().filter(|c| range.contains(c.day)) {
                total += 1;
                how[c.how as usize] += 1;
                *by_utm.entry(c.utm).or_default() += 1;
            }
            for (utm, n) in by_utm {
                let (s, m, c) = (name(utm.source), name(utm.medium), name(utm.campaign));
                *sources.entry(s.clone()).or_default() += n;
                *mediums.entry(m.clone()).or_default() += n;
                *campaigns.entry(c.clone()).or_default() += n;
                *combos.entry((s, m, c)).or_default() += n;
            }
        }
        fn list<T>(counts: HashMap<String, u64>, row: impl Fn(String, u64) -> T) -> Vec<T> {
            ranked(counts).into_iter().map(|(k, n)| row(k, n)).collect()
        }
        Summary {
            from: date(range.from),
            to: date(range.to),
            total_conversions: total,
            by_source: list(sources, |source, conversions| BySource {
                source,
                conversions,
            }),
            by_medium: list(mediums, |medium, conversions| ByMedium {
                medium,
                conversions,
            }),
            by_campaign: list(campaigns, |campaign, conversions| ByCampaign {
                campaign,
                conversions,
            }),
            by_combination: ranked(combos)
                .into_iter()
                .map(|((source, medium, campaign), conversions)| ByCombination {
                    source,
                    medium,
                    campaign,
                    conversions,
                })
                .collect(),
            attribution: Attribution {
                own: how[Source::Own as usize],
                session: how[Source::Session as usize],
                link: how[Source::Link as usize],
                none: how[Source::None as usize],
            },
        }
    }

    /// Visits, conversions and CVR of a link (rule 7); `None` if the client
    /// never used it.
    pub fn link_stats(
        &self,
        client_id: &str,
        link_id: &str,
        range: DateRange,
    ) -> Option<LinkStats> {
        let state = self.read();
        let client = state.clients.get(client_id)?;
        let l = client.names.get(link_id)?;
        let link = client.links.get(&l)?;
        let visits = union_in(&link.visits, range).len();
        let conversions = client
            .conversions
            .iter()
            .filter(|c| c.link == l && range.contains(c.day))
            .count() as u64;
        Some(link_stats(link_id, visits, conversions))
    }

    /// Every link with a link visit or an attributed conversion in the
    /// range (the overview's `links.total`), with its numbers as in
    /// [`CampaignView::link_stats`]; most visits first.
    pub fn links_stats(&self, client_id: &str, range: DateRange) -> Vec<LinkStats> {
        let state = self.read();
        let Some(client) = state.clients.get(client_id) else {
            return Vec::new();
        };
        let mut conversions: HashMap<u32, u64> = HashMap::new();
        for c in client.conversions.iter() {
            if c.link != NONE && range.contains(c.day) {
                *conversions.entry(c.link).or_default() += 1;
            }
        }
        let mut rows: Vec<LinkStats> = client
            .links
            .iter()
            .filter_map(|(l, link)| {
                let visits = union_in(&link.visits, range).len();
                let conversions = conversions.get(l).copied().unwrap_or(0);
                (visits > 0 || conversions > 0)
                    .then(|| link_stats(client.names.name(*l), visits, conversions))
            })
            .collect();
        rows.sort_by(|a, b| {
            b.visits
                .cmp(&a.visits)
                .then_with(|| a.link_id.cmp(&b.link_id))
        });
        rows
    }

    /// One campaign per day and over the range; `None` if the client never
    /// named it.
    pub fn campaign_stats(
        &self,
        client_id: &str,
        campaign_id: &str,
        range: DateRange,
    ) -> Option<CampaignStats> {
        let state = self.read();
        let client = state.clients.get(client_id)?;
        let c = client.names.get(campaign_id)?;
        let days = client.campaigns.get(&c)?;
        #[derive(Default)]
        struct Day {
            visits: u64,
            conversions: u64,
            bot_visits: u64,
            pageviews: u64,
        }
        let mut per_day: BTreeMap<Date, Day> = BTreeMap::new();
        for (d, s) in days.visits.range(range.from..=range.to) {
            per_day.entry(*d).or_default().visits = s.len();
        }
        for (d, n) in days.bot_visits.range(range.from..=range.to) {
            per_day.entry(*d).or_default().bot_visits = *n;
        }
        for (d, cov) in days.coverage.range(range.from..=range.to) {
            per_day.entry(*d).or_default().pageviews = cov.pageviews;
        }
        let mut conversions = 0;
        for conv in client
            .conversions
            .iter()
            .filter(|x| x.campaign == c && range.contains(x.day))
        {
            per_day.entry(conv.day).or_default().conversions += 1;
            conversions += 1;
        }
        let visits = union_in(&days.visits, range).len();
        let bot_visits = sum_in(&days.bot_visits, range);
        let pageviews: u64 = days
            .coverage
            .range(range.from..=range.to)
            .map(|(_, c)| c.pageviews)
            .sum();
        let numbers = |visits, conversions, bot_visits, pageviews| CampaignNumbers {
            visits,
            conversions,
            cvr: pct(conversions, visits),
            bot_visits,
            pageviews,
        };
        let days = per_day
            .into_iter()
            .filter(|(_, d)| d.visits + d.conversions + d.bot_visits + d.pageviews > 0)
            .map(|(day, d)| CampaignDay {
                date: date(day),
                numbers: numbers(d.visits, d.conversions, d.bot_visits, d.pageviews),
            })
            .collect();
        Some(CampaignStats {
            client_id: client_id.to_owned(),
            campaign_id: campaign_id.to_owned(),
            from: date(range.from),
            to: date(range.to),
            interval: "1d".to_owned(),
            days,
            total: numbers(visits, conversions, bot_visits, pageviews),
        })
    }

    /// The most viewed paths of a client.
    pub fn pageviews(&self, client_id: &str, range: DateRange, limit: usize) -> Pageviews {
        let state = self.read();
        let mut total = 0u64;
        let mut paths: Vec<(String, u64)> = Vec::new();
        if let Some(client) = state.clients.get(client_id) {
            let mut counts: HashMap<u32, u64> = HashMap::new();
            for (_, day) in client.paths.range(range.from..=range.to) {
                for (p, n) in day {
                    *counts.entry(*p).or_default() += n;
                    total += n;
                }
            }
            paths = ranked(
                counts
                    .into_iter()
                    .map(|(p, n)| (client.names.name(p).to_owned(), n))
                    .collect(),
            );
            paths.truncate(limit);
        }
        Pageviews {
            from: date(range.from),
            to: date(range.to),
            total,
            paths: paths
                .into_iter()
                .map(|(path, pageviews)| PathViews { path, pageviews })
                .collect(),
        }
    }

    /// The client's overview (DESIGN §6, rules 8 and 9). `peak_concurrent`
    /// comes from the presence buckets: 0 here, filled in by the caller.
    pub fn overview(&self, client_id: &str, range: DateRange) -> Overview {
        let state = self.read();
        let empty = Client::default();
        let client = state.clients.get(client_id).unwrap_or(&empty);
        let visits = union_in(&client.visits, range).len();
        let mut campaigns: Vec<u32> = Vec::new();
        for (_, list) in client.active_campaigns.range(range.from..=range.to) {
            campaigns.extend(list);
        }
        campaigns.sort_unstable();
        campaigns.dedup();
        let mut webinars: Vec<u32> = Vec::new();
        for (_, list) in client.webinars.range(range.from..=range.to) {
            webinars.extend(list);
        }
        webinars.sort_unstable();
        webinars.dedup();
        let (mut conversions, mut registrations, mut with_link) = (0u64, 0u64, 0u64);
        let (mut tracked, mut own, mut linked_visit) = (0u64, 0u64, 0u64);
        let mut links: Vec<u32> = Vec::new();
        for c in client.conversions.iter().filter(|c| range.contains(c.day)) {
            conversions += 1;
            registrations += u64::from(c.webinar != NONE);
            if c.link != NONE {
                with_link += 1;
                links.push(c.link);
            }
            tracked += u64::from(c.how != Source::None);
            own += u64::from(c.how == Source::Own);
            linked_visit += u64::from(c.visit_before);
        }
        let mut active = 0u64;
        for (l, link) in &client.links {
            if any_in(&link.visits, range) {
                active += 1;
                links.push(*l);
            }
        }
        links.sort_unstable();
        links.dedup();
        let (mut pageviews, mut covered) = (0u64, 0u64);
        for days in client.campaigns.values() {
            for (_, c) in days.coverage.range(range.from..=range.to) {
                pageviews += c.pageviews;
                covered += c.covered;
            }
        }
        let mut viewers = RoaringBitmap::new();
        for w in &webinars {
            if let Some(days) = state.viewer_days.days.get(client.names.name(*w)) {
                for (_, set) in days.range(range.from..=range.to) {
                    viewers |= set;
                }
            }
        }
        let live_viewers = viewers.len();
        Overview {
            period: range.period(),
            campaigns: OverviewCampaigns {
                total: campaigns.len() as u64,
                visits,
                conversions,
                cvr: pct(conversions, visits),
            },
            webinars: OverviewWebinars {
                total: webinars.len() as u64,
                registrations,
                live_viewers,
                peak_concurrent: 0,
            },
            links: OverviewLinks {
                total: links.len() as u64,
                active,
                total_visits: union_in(&client.link_visits, range).len(),
                total_conversions: with_link,
            },
            quality: Quality {
                utm_tracking_rate: pct(tracked, conversions),
                utm_tracking_rate_before_attribution: pct(own, conversions),
                visit_link_rate: pct(linked_visit, conversions),
                visit_coverage: pct(covered, pageviews),
            },
        }
    }

    /// Every campaign's counters (visits, conversions, bot visits, page
    /// views) on the local days from the one holding `since_ms` on (for
    /// rebuilding the cache).
    pub fn counters_since(&self, since_ms: i64) -> Vec<(String, String, Date, [u64; 4])> {
        let state = self.read();
        let from = Timestamp::from_millisecond(since_ms.max(0))
            .map(|t| t.to_zoned(state.tz().clone()).date())
            .unwrap_or(Date::MIN);
        let mut out = Vec::new();
        for (id, client) in &state.clients {
            for (c, days) in &client.campaigns {
                let mut dates: Vec<Date> = days.visits.range(from..).map(|(d, _)| *d).collect();
                dates.extend(days.bot_visits.range(from..).map(|(d, _)| *d));
                dates.extend(days.conversions.range(from..).map(|(d, _)| *d));
                dates.extend(days.coverage.range(from..).map(|(d, _)| *d));
                dates.sort_unstable();
                dates.dedup();
                for d in dates {
                    out.push((
                        id.to_string(),
                        client.names.name(*c).to_owned(),
                        d,
                        [
                            days.visits.get(&d).map_or(0, |s| s.len()),
                            days.conversions.get(&d).copied().unwrap_or(0),
                            days.bot_visits.get(&d).copied().unwrap_or(0),
                            days.coverage.get(&d).map_or(0, |c| c.pageviews),
                        ],
                    ));
                }
            }
        }
        out
    }

    /// Distinct viewers of `webinars` together with a live millisecond on a
    /// day of `range`.
    pub fn live_viewers(&self, webinars: &[&str], range: DateRange) -> u64 {
        let state = self.read();
        state.viewer_days.union(webinars, range).len()
    }

    /// The fingerprints of [`CampaignView::live_viewers`]' viewers, for a
    /// union with other partitions' (DESIGN §8).
    pub fn viewer_fingerprints(&self, webinars: &[&str], range: DateRange) -> Vec<u128> {
        let state = self.read();
        let viewers = state.viewer_days.union(webinars, range);
        let fps = &state.viewer_days.viewers.fps;
        viewers.iter().map(|n| fps[n as usize]).collect()
    }

    /// The webinars named on the client's visits and counted conversions in
    /// the range (for the presence part of the overview).
    pub fn webinars(&self, client_id: &str, range: DateRange) -> Vec<String> {
        let state = self.read();
        let Some(client) = state.clients.get(client_id) else {
            return Vec::new();
        };
        let mut out: Vec<String> = client
            .webinars
            .range(range.from..=range.to)
            .flat_map(|(_, l)| l.iter().map(|w| client.names.name(*w).to_owned()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The webinars of [`CampaignView::webinars`], each with its
    /// registrations: counted conversions in the range naming it.
    pub fn webinar_registrations(&self, client_id: &str, range: DateRange) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .webinars(client_id, range)
            .into_iter()
            .map(|w| (w, 0))
            .collect();
        let state = self.read();
        let Some(client) = state.clients.get(client_id) else {
            return out;
        };
        for c in client.conversions.iter().filter(|c| range.contains(c.day)) {
            if c.webinar == NONE {
                continue;
            }
            let name = client.names.name(c.webinar);
            if let Ok(i) = out.binary_search_by(|(w, _)| w.as_str().cmp(name)) {
                out[i].1 += 1;
            }
        }
        out
    }

    /// Whether the client named webinar `webinar_id` on a visit or a
    /// counted conversion (a client token may read that webinar).
    pub fn client_names_webinar(&self, client_id: &str, webinar_id: &str) -> bool {
        let state = self.read();
        state.clients.get(client_id).is_some_and(|c| {
            c.names
                .get(webinar_id)
                .is_some_and(|w| c.webinars.values().any(|l| l.contains(&w)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crawlers_are_bots_and_in_app_browsers_are_people() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; BINGBOT/2.0)",
            "Mozilla/5.0 (compatible; yandexbot/3.0)",
            "Mozilla/5.0 (compatible; Baiduspider/2.0)",
        ] {
            assert!(is_bot(Some(ua)), "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 KAKAOTALK 10.4.5",
            "Mozilla/5.0 (Linux; Android 14) NAVER(inapp; search; 2000; 12.5.0)",
            "Mozilla/5.0 (Linux; Android 9; CUBOT P30) Chrome/120.0",
        ] {
            assert!(!is_bot(Some(ua)), "{ua}");
        }
        assert!(!is_bot(None));
    }

    #[test]
    fn the_last_millisecond_of_year_9999_has_a_day() {
        let mut c = Campaigns::new(&CampaignConfig {
            timezone: TimeZone::get("Asia/Seoul").unwrap(),
            window_days: 30,
        });
        let late = c.day(crate::event::MAX_TS);
        assert_eq!(late.year(), 9999);
        assert!(c.day(crate::event::MAX_TS - 86_400_000) <= late);
    }

    #[test]
    fn merged_rows_keep_the_latest_of_each_day() {
        let day = |d, visits| PathDayRow {
            client_id: "c".into(),
            day: jiff::civil::date(2026, 1, d),
            path: "/".into(),
            pageviews: visits,
        };
        let mut rows = CampaignRows {
            path_days: vec![day(1, 1), day(2, 1)],
            ..CampaignRows::default()
        };
        rows.merge(CampaignRows {
            path_days: vec![day(2, 5), day(3, 1)],
            ..CampaignRows::default()
        });
        assert_eq!(rows.path_days, vec![day(1, 1), day(2, 5), day(3, 1)]);
    }

    #[test]
    fn percentages_round_half_up_to_one_decimal() {
        assert_eq!(pct(1, 3), Some(33.3));
        assert_eq!(pct(2, 3), Some(66.7));
        assert_eq!(pct(1, 16), Some(6.3));
        assert_eq!(pct(5, 4), Some(125.0));
        assert_eq!(pct(0, 4), Some(0.0));
        assert_eq!(pct(1, 0), None);
    }

    #[test]
    fn the_earliest_mark_inside_the_window_wins_ties_by_applied_order() {
        let utm = |source| UtmKey {
            source,
            ..UtmKey::NONE
        };
        let mark = |ts, seq, source, link| Mark {
            ts,
            seq,
            utm: utm(source),
            link,
        };
        let mut marks = Vec::new();
        insert_mark(&mut marks, mark(10, 2, 2, NONE), 0);
        insert_mark(&mut marks, mark(10, 1, 1, 7), 0);
        insert_mark(&mut marks, mark(5, 3, NONE, 8), 0);
        assert_eq!(earliest_touch(&marks, 0), Some(utm(1)), "5 has no UTM");
        assert_eq!(earliest_link(&marks, 0), Some(8));
        assert_eq!(earliest_link(&marks, 6), Some(7));
        assert_eq!(earliest_touch(&marks, 11), None);
        // Marks older than the horizon are dropped.
        insert_mark(&mut marks, mark(20, 4, 3, NONE), 8);
        assert_eq!(marks.len(), 3);
        let mut session = Session::new();
        session.marks = marks;
        assert!(session.prune(20), "the mark at 20 is kept");
        assert!(!session.prune(21), "nothing is left after 21");
    }
}
