//! Hand-worked logs with the answers worked out by hand from the rules. Both
//! the model and the engine must give exactly these.

use serde_json::{Value, json};

use super::logs::{Query, Tz, day};
use super::model::{DAY_MS, Range};

/// 2026-03-02T00:00Z, local midnight of `DAY0` in UTC.
pub const UTC_M: i64 = 1_772_409_600_000;
/// 2026-03-01T15:00Z, local midnight of `DAY0` (2026-03-02) in Asia/Seoul.
pub const SEOUL_M: i64 = 1_772_377_200_000;
const HOUR: i64 = 3_600_000;

pub struct Hand {
    pub name: &'static str,
    pub tz: Tz,
    pub window_days: i64,
    pub lines: Vec<String>,
    pub expect: Vec<(Query, Option<Value>)>,
}

fn lines(events: Vec<Value>) -> Vec<String> {
    events.into_iter().map(|v| v.to_string()).collect()
}

/// Days `a..=b` after 2026-03-02.
fn r(a: i64, b: i64) -> Range {
    Range::new(day(a), day(b))
}

/// A campaign_stats day or total: [visits, conversions, bot_visits,
/// pageviews] and the cvr.
fn nums(n: [u64; 4], cvr: Value) -> Value {
    json!({"visits": n[0], "conversions": n[1], "cvr": cvr, "bot_visits": n[2], "pageviews": n[3]})
}

fn on(date: &str, n: [u64; 4], cvr: Value) -> Value {
    let mut v = nums(n, cvr);
    v["date"] = json!(date);
    v
}

fn stats(client: &str, campaign: &str, range: Range, days: Vec<Value>, total: Value) -> Value {
    json!({"client_id": client, "campaign_id": campaign, "from": range.from.to_string(),
           "to": range.to.to_string(), "interval": "1d", "days": days, "total": total})
}

/// A summary. `lists`: by_source, by_medium, by_campaign as (key, n);
/// combos as (source, medium, campaign, n); attribution [own, session, link, none].
fn summary(
    range: Range,
    lists: [&[(&str, u64)]; 3],
    combos: &[(&str, &str, &str, u64)],
    attribution: [u64; 4],
) -> Value {
    let list = |name: &str, l: &[(&str, u64)]| -> Value {
        l.iter()
            .map(|(k, n)| json!({name: k, "conversions": n}))
            .collect()
    };
    let total: u64 = attribution.iter().sum();
    json!({
        "from": range.from.to_string(), "to": range.to.to_string(),
        "total_conversions": total,
        "by_source": list("source", lists[0]),
        "by_medium": list("medium", lists[1]),
        "by_campaign": list("campaign", lists[2]),
        "by_combination": combos.iter().map(|(s, m, c, n)|
            json!({"source": s, "medium": m, "campaign": c, "conversions": n})).collect::<Value>(),
        "attribution": {"own": attribution[0], "session": attribution[1],
                        "link": attribution[2], "none": attribution[3]},
    })
}

/// An overview: campaigns [total, visits, conversions] + cvr, webinars
/// [total, registrations], links [total, active, total_visits,
/// total_conversions], quality [tracking, before, visit_link, coverage].
fn overview(
    range: Range,
    campaigns: [u64; 3],
    cvr: Value,
    webinars: [u64; 2],
    links: [u64; 4],
    quality: [Value; 4],
) -> Value {
    let [tracking, before, visit_link, coverage] = quality;
    json!({
        "period": {"from": range.from.to_string(), "to": range.to.to_string()},
        "campaigns": {"total": campaigns[0], "visits": campaigns[1], "conversions": campaigns[2], "cvr": cvr},
        "webinars": {"total": webinars[0], "registrations": webinars[1], "live_viewers": 0, "peak_concurrent": 0},
        "links": {"total": links[0], "active": links[1], "total_visits": links[2], "total_conversions": links[3]},
        "quality": {"utm_tracking_rate": tracking, "utm_tracking_rate_before_attribution": before,
                    "visit_link_rate": visit_link, "visit_coverage": coverage},
    })
}

fn link(id: &str, visits: u64, conversions: u64, cvr: Value) -> Value {
    json!({"link_id": id, "visits": visits, "conversions": conversions, "cvr": cvr})
}

const N: Value = Value::Null;
const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36";

/// Asia/Seoul days turn at 15:00 UTC.
pub fn seoul_midnight() -> Hand {
    let m = SEOUL_M;
    let events = vec![
        // 2026-03-01 23:59:59.999 local.
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1",
               "utm":{"source":"news","medium":"email"},"user_agent":BROWSER,"ts":m - 1}),
        // 2026-03-02 00:00 local.
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s2","user_agent":BROWSER,"ts":m}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m}),
        // 2026-03-02 23:59:59.999 local.
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e2","ts":m + DAY_MS - 1}),
        // 2026-03-03 00:00 local.
        json!({"type":"pageview","path":"/a","client_id":"c1","campaign_id":"m1","session_id":"s1","ts":m + DAY_MS}),
    ];
    let (all, d0) = (r(-1, 1), r(0, 0));
    Hand {
        name: "seoul_midnight",
        tz: Tz::Seoul,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::CampaignStats("c1", "m1", all),
                Some(stats(
                    "c1",
                    "m1",
                    all,
                    vec![
                        on("2026-03-01", [1, 0, 0, 0], json!(0.0)),
                        on("2026-03-02", [1, 2, 0, 0], json!(200.0)),
                        on("2026-03-03", [0, 0, 0, 1], N),
                    ],
                    nums([2, 2, 0, 1], json!(100.0)),
                )),
            ),
            (
                Query::Summary("c1", d0),
                Some(summary(
                    d0,
                    [
                        &[("(none)", 1), ("news", 1)],
                        &[("(none)", 1), ("email", 1)],
                        &[("(none)", 2)],
                    ],
                    &[
                        ("(none)", "(none)", "(none)", 1),
                        ("news", "email", "(none)", 1),
                    ],
                    [0, 1, 0, 1],
                )),
            ),
            (
                Query::Summary("c1", r(-1, -1)),
                Some(summary(r(-1, -1), [&[], &[], &[]], &[], [0, 0, 0, 0])),
            ),
        ],
    }
}

/// The same log read in UTC: everything but the last conversion and the
/// page view is on 2026-03-01.
pub fn seoul_log_in_utc() -> Hand {
    let mut h = seoul_midnight();
    h.name = "seoul_log_in_utc";
    h.tz = Tz::Utc;
    let d = r(-1, -1);
    h.expect = vec![
        (
            Query::Overview("c1", d),
            Some(overview(
                d,
                [1, 2, 1],
                json!(50.0),
                [0, 0],
                [0, 0, 0, 0],
                [json!(100.0), json!(0.0), json!(100.0), N],
            )),
        ),
        (
            Query::Overview("c1", r(0, 0)),
            Some(overview(
                r(0, 0),
                [1, 0, 1],
                N,
                [0, 0],
                [0, 0, 0, 0],
                [json!(0.0), json!(0.0), json!(0.0), json!(0.0)],
            )),
        ),
    ];
    h
}

/// A touch exactly `window_days` old counts; 1 ms older does not (nor does
/// its link).
pub fn window_edge() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1",
               "utm":{"source":"old"},"user_agent":BROWSER,"ts":m}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s2","link_id":"l1",
               "utm":{"source":"older"},"user_agent":BROWSER,"ts":m}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m + DAY_MS}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e2","session_id":"s2","ts":m + DAY_MS + 1}),
    ];
    let d1 = r(1, 1);
    Hand {
        name: "window_edge",
        tz: Tz::Utc,
        window_days: 1,
        lines: lines(events),
        expect: vec![
            (
                Query::Summary("c1", d1),
                Some(summary(
                    d1,
                    [
                        &[("(none)", 1), ("old", 1)],
                        &[("(none)", 2)],
                        &[("(none)", 2)],
                    ],
                    &[
                        ("(none)", "(none)", "(none)", 1),
                        ("old", "(none)", "(none)", 1),
                    ],
                    [0, 1, 0, 1],
                )),
            ),
            (
                Query::Overview("c1", d1),
                Some(overview(
                    d1,
                    [1, 0, 2],
                    N,
                    [0, 0],
                    [0, 0, 0, 0],
                    [json!(50.0), json!(0.0), json!(50.0), N],
                )),
            ),
            (
                Query::LinkStats("c1", "l1", r(0, 1)),
                Some(link("l1", 1, 0, json!(0.0))),
            ),
        ],
    }
}

/// A visit applied before the conversion but at a later effective ts (its
/// campaign's clock is ahead) has a negative age and counts.
pub fn negative_age() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"visit","client_id":"c1","campaign_id":"m2","session_id":"s3",
               "utm":{"source":"ahead"},"user_agent":BROWSER,"ts":m + 2 * DAY_MS}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e3","session_id":"s3","ts":m}),
    ];
    let d0 = r(0, 0);
    Hand {
        name: "negative_age",
        tz: Tz::Utc,
        window_days: 1,
        lines: lines(events),
        expect: vec![
            (
                Query::Summary("c1", d0),
                Some(summary(
                    d0,
                    [&[("ahead", 1)], &[("(none)", 1)], &[("(none)", 1)]],
                    &[("ahead", "(none)", "(none)", 1)],
                    [0, 1, 0, 0],
                )),
            ),
            (
                Query::Overview("c1", d0),
                Some(overview(
                    d0,
                    [1, 0, 1],
                    N,
                    [0, 0],
                    [0, 0, 0, 0],
                    [json!(100.0), json!(0.0), json!(100.0), N],
                )),
            ),
        ],
    }
}

/// Touches and links with equal effective ts: the first applied wins; a
/// touch applied later with a smaller effective ts wins over earlier ones.
pub fn ties() -> Hand {
    let m = UTC_M;
    let q = |s: &str| format!("utm_source={s}");
    let events = vec![
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1","link_id":"l1",
               "utm":{"source":"first"},"user_agent":BROWSER,"ts":m + 10}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m2","session_id":"s1","link_id":"l2",
               "utm":{"source":"second"},"user_agent":BROWSER,"ts":m + 10}),
        json!({"type":"pageview","path":"/a","client_id":"c1","campaign_id":"m3","session_id":"s1",
               "query":q("third"),"user_agent":BROWSER,"ts":m + 10}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m + 20}),
        json!({"type":"visit","client_id":"c2","campaign_id":"m4","session_id":"s1",
               "utm":{"source":"applied-first"},"user_agent":BROWSER,"ts":m + 30}),
        json!({"type":"pageview","path":"/a","client_id":"c2","campaign_id":"m5","session_id":"s1",
               "query":q("earlier"),"user_agent":BROWSER,"ts":m + 25}),
        json!({"type":"conversion","client_id":"c2","campaign_id":"m4","entry_id":"e1","session_id":"s1","ts":m + 40}),
    ];
    let d0 = r(0, 0);
    let one = |s: &'static str| {
        summary(
            d0,
            [&[(s, 1)], &[("(none)", 1)], &[("(none)", 1)]],
            &[(s, "(none)", "(none)", 1)],
            [0, 1, 0, 0],
        )
    };
    Hand {
        name: "ties",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (Query::Summary("c1", d0), Some(one("first"))),
            (Query::Summary("c2", d0), Some(one("earlier"))),
            (
                Query::LinkStats("c1", "l1", d0),
                Some(link("l1", 1, 1, json!(100.0))),
            ),
            (
                Query::LinkStats("c1", "l2", d0),
                Some(link("l2", 1, 0, json!(0.0))),
            ),
        ],
    }
}

/// A repeated entry_id counts once, on its first day, per client; a repeated
/// event id is skipped forever and moves no clock.
pub fn repeats() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1",
               "utm":{"source":"a"},"ts":m + 1000}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1",
               "utm":{"source":"b"},"ts":m + DAY_MS}),
        json!({"type":"conversion","client_id":"c2","campaign_id":"m1","entry_id":"e1","ts":m + DAY_MS + 1}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m2","entry_id":"e1","ts":m + DAY_MS + 1}),
        json!({"type":"conversion","id":"x1","client_id":"c1","campaign_id":"m1","entry_id":"e2","ts":m + DAY_MS + 2}),
        json!({"type":"conversion","id":"x1","client_id":"c1","campaign_id":"m1","entry_id":"e2","ts":m + DAY_MS + 2}),
        // Skipped (its id was applied): m3 stays unseen, its clock unmoved.
        json!({"type":"visit","id":"x1","client_id":"c1","campaign_id":"m3","session_id":"s1",
               "user_agent":BROWSER,"ts":m + 5 * DAY_MS}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m3","session_id":"s1",
               "user_agent":BROWSER,"ts":m + DAY_MS + 3}),
    ];
    let (d01, d1, wide) = (r(0, 1), r(1, 1), r(0, 8));
    Hand {
        name: "repeats",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::Summary("c1", d01),
                Some(summary(
                    d01,
                    [
                        &[("(none)", 1), ("a", 1)],
                        &[("(none)", 2)],
                        &[("(none)", 2)],
                    ],
                    &[
                        ("(none)", "(none)", "(none)", 1),
                        ("a", "(none)", "(none)", 1),
                    ],
                    [1, 0, 0, 1],
                )),
            ),
            (
                Query::Summary("c1", d1),
                Some(summary(
                    d1,
                    [&[("(none)", 1)], &[("(none)", 1)], &[("(none)", 1)]],
                    &[("(none)", "(none)", "(none)", 1)],
                    [0, 0, 0, 1],
                )),
            ),
            (
                Query::Summary("c2", d1),
                Some(summary(
                    d1,
                    [&[("(none)", 1)], &[("(none)", 1)], &[("(none)", 1)]],
                    &[("(none)", "(none)", "(none)", 1)],
                    [0, 0, 0, 1],
                )),
            ),
            (
                Query::CampaignStats("c1", "m1", d01),
                Some(stats(
                    "c1",
                    "m1",
                    d01,
                    vec![
                        on("2026-03-02", [0, 1, 0, 0], N),
                        on("2026-03-03", [0, 1, 0, 0], N),
                    ],
                    nums([0, 2, 0, 0], N),
                )),
            ),
            (
                Query::CampaignStats("c1", "m2", d01),
                Some(stats("c1", "m2", d01, vec![], nums([0, 0, 0, 0], N))),
            ),
            (
                Query::CampaignStats("c1", "m3", wide),
                Some(stats(
                    "c1",
                    "m3",
                    wide,
                    vec![on("2026-03-03", [1, 0, 0, 0], json!(0.0))],
                    nums([1, 0, 0, 0], json!(0.0)),
                )),
            ),
            (Query::CampaignStats("c2", "m2", wide), None),
        ],
    }
}

/// Crawlers are bot visits and nothing else; KakaoTalk's and NAVER's in-app
/// browsers are people.
pub fn bots_and_in_app_browsers() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1","link_id":"l1",
               "utm":{"source":"bot"},"ts":m + 1,
               "user_agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s2","link_id":"l2",
               "utm":{"source":"kakao"},"ts":m + 2,
               "user_agent":"Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/116.0 Mobile Safari/537.36 KAKAOTALK 10.4.5"}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s3","ts":m + 3,
               "user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 NAVER(inapp; search; 2000; 12.5.0)"}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s4","ts":m + 4,
               "user_agent":"Mozilla/5.0 (compatible; BINGBOT/2.0)"}),
        json!({"type":"pageview","path":"/a","client_id":"c1","campaign_id":"m1","session_id":"s1",
               "query":"utm_source=botpv","ts":m + 5,
               "user_agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m + 10}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e2","session_id":"s2","ts":m + 11}),
    ];
    let d0 = r(0, 0);
    Hand {
        name: "bots_and_in_app_browsers",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::CampaignStats("c1", "m1", d0),
                Some(stats(
                    "c1",
                    "m1",
                    d0,
                    vec![on("2026-03-02", [2, 2, 2, 1], json!(100.0))],
                    nums([2, 2, 2, 1], json!(100.0)),
                )),
            ),
            (Query::LinkStats("c1", "l1", d0), None),
            (
                Query::LinkStats("c1", "l2", d0),
                Some(link("l2", 1, 1, json!(100.0))),
            ),
            (
                Query::Overview("c1", d0),
                Some(overview(
                    d0,
                    [1, 2, 2],
                    json!(100.0),
                    [0, 0],
                    [1, 1, 1, 1],
                    [json!(50.0), json!(0.0), json!(50.0), json!(0.0)],
                )),
            ),
            (
                Query::Summary("c1", d0),
                Some(summary(
                    d0,
                    [
                        &[("(none)", 1), ("kakao", 1)],
                        &[("(none)", 2)],
                        &[("(none)", 2)],
                    ],
                    &[
                        ("(none)", "(none)", "(none)", 1),
                        ("kakao", "(none)", "(none)", 1),
                    ],
                    [0, 1, 0, 1],
                )),
            ),
        ],
    }
}

/// One session id in two clients is two sessions.
pub fn shared_session() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"pageview","path":"/a","client_id":"c1","campaign_id":"m2","session_id":"s1",
               "query":"utm_source=c1pv","user_agent":BROWSER,"ts":m}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1","link_id":"l1",
               "utm":{"source":"c1src"},"user_agent":BROWSER,"ts":m + 1}),
        json!({"type":"visit","client_id":"c2","campaign_id":"m2","session_id":"s1","user_agent":BROWSER,"ts":m + 2}),
        json!({"type":"conversion","client_id":"c2","campaign_id":"m2","entry_id":"e1","session_id":"s1","ts":m + 3}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m + 4}),
    ];
    let d0 = r(0, 0);
    Hand {
        name: "shared_session",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::Summary("c1", d0),
                Some(summary(
                    d0,
                    [&[("c1pv", 1)], &[("(none)", 1)], &[("(none)", 1)]],
                    &[("c1pv", "(none)", "(none)", 1)],
                    [0, 1, 0, 0],
                )),
            ),
            (
                Query::Summary("c2", d0),
                Some(summary(
                    d0,
                    [&[("(none)", 1)], &[("(none)", 1)], &[("(none)", 1)]],
                    &[("(none)", "(none)", "(none)", 1)],
                    [0, 0, 0, 1],
                )),
            ),
            (
                Query::Overview("c1", d0),
                Some(overview(
                    d0,
                    [1, 1, 1],
                    json!(100.0),
                    [0, 0],
                    [1, 1, 1, 1],
                    [json!(100.0), json!(0.0), json!(100.0), json!(0.0)],
                )),
            ),
            (
                Query::Overview("c2", d0),
                Some(overview(
                    d0,
                    [1, 1, 1],
                    json!(100.0),
                    [0, 0],
                    [0, 0, 0, 0],
                    [json!(0.0), json!(0.0), json!(100.0), N],
                )),
            ),
            (
                Query::LinkStats("c1", "l1", d0),
                Some(link("l1", 1, 1, json!(100.0))),
            ),
            (Query::LinkStats("c2", "l1", d0), None),
        ],
    }
}

/// visit_coverage: a page view before its visit is covered; one whose
/// visit is on the next local day, one without session and one on another
/// campaign are not.
pub fn coverage() -> Hand {
    let m = SEOUL_M;
    let pv = |session: Option<&str>,
              campaign: Option<&str>,
              client: Option<&str>,
              path: &str,
              ts: i64| {
        let mut v = json!({"type":"pageview","path":path,"user_agent":BROWSER,"ts":ts});
        if let Some(s) = session {
            v["session_id"] = json!(s);
        }
        if let Some(c) = campaign {
            v["campaign_id"] = json!(c);
        }
        if let Some(c) = client {
            v["client_id"] = json!(c);
        }
        v
    };
    let events = vec![
        pv(Some("s1"), Some("m1"), Some("c1"), "/land", m + 10 * HOUR),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1","user_agent":BROWSER,"ts":m + 10 * HOUR + 1000}),
        pv(Some("s2"), Some("m1"), Some("c1"), "/land", m + 11 * HOUR),
        pv(None, Some("m1"), Some("c1"), "/land", m + 12 * HOUR),
        pv(Some("s1"), None, Some("c1"), "/about", m + 12 * HOUR),
        pv(Some("s1"), Some("m2"), Some("c1"), "/land", m + 13 * HOUR),
        pv(Some("s1"), Some("m1"), None, "/land", m + 13 * HOUR),
        // 2026-03-03 01:00 local.
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s2","user_agent":BROWSER,"ts":m + DAY_MS + HOUR}),
    ];
    let d01 = r(0, 1);
    let pages =
        |paths: Value| json!({"from":"2026-03-02","to":"2026-03-03","total":5,"paths":paths});
    Hand {
        name: "coverage",
        tz: Tz::Seoul,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::Overview("c1", d01),
                Some(overview(
                    d01,
                    [1, 2, 0],
                    json!(0.0),
                    [0, 0],
                    [0, 0, 0, 0],
                    [N, N, N, json!(25.0)],
                )),
            ),
            (
                Query::Pageviews("c1", d01, 10),
                Some(pages(
                    json!([{"path":"/land","pageviews":4},{"path":"/about","pageviews":1}]),
                )),
            ),
            (
                Query::Pageviews("c1", d01, 1),
                Some(pages(json!([{"path":"/land","pageviews":4}]))),
            ),
            (
                Query::CampaignStats("c1", "m1", d01),
                Some(stats(
                    "c1",
                    "m1",
                    d01,
                    vec![
                        on("2026-03-02", [1, 0, 0, 3], json!(0.0)),
                        on("2026-03-03", [1, 0, 0, 0], json!(0.0)),
                    ],
                    nums([2, 0, 0, 3], json!(0.0)),
                )),
            ),
            (
                Query::CampaignStats("c1", "m2", d01),
                Some(stats(
                    "c1",
                    "m2",
                    d01,
                    vec![on("2026-03-02", [0, 0, 0, 1], N)],
                    nums([0, 0, 0, 1], N),
                )),
            ),
        ],
    }
}

/// A failed visit call: the page view's UTM is the session's touch (raw
/// query and object query); a whitespace-only utm_source is no touch.
pub fn pageview_touch() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"pageview","path":"/event/1","client_id":"c1","campaign_id":"m1","session_id":"s1",
               "query":"utm_source=newsletter&utm_medium=%65mail&utm_campaign=spring+sale","user_agent":BROWSER,"ts":m + 1}),
        json!({"type":"pageview","path":"/event/1","client_id":"c1","campaign_id":"m1","session_id":"s2",
               "query":{"utm_source":" kakao ","utm_medium":""},"user_agent":BROWSER,"ts":m + 2}),
        json!({"type":"pageview","path":"/event/1","client_id":"c1","campaign_id":"m1","session_id":"s3",
               "query":"utm_source=+%20&utm_medium=cpc","user_agent":BROWSER,"ts":m + 3}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m + 60_000}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e2","session_id":"s2","ts":m + 60_001}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e3","session_id":"s3","ts":m + 60_002}),
    ];
    let d0 = r(0, 0);
    Hand {
        name: "pageview_touch",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::Summary("c1", d0),
                Some(summary(
                    d0,
                    [
                        &[("(none)", 1), ("kakao", 1), ("newsletter", 1)],
                        &[("(none)", 2), ("email", 1)],
                        &[("(none)", 2), ("spring sale", 1)],
                    ],
                    &[
                        ("(none)", "(none)", "(none)", 1),
                        ("kakao", "(none)", "(none)", 1),
                        ("newsletter", "email", "spring sale", 1),
                    ],
                    [0, 2, 0, 1],
                )),
            ),
            (
                Query::Overview("c1", d0),
                Some(overview(
                    d0,
                    [1, 0, 3],
                    N,
                    [0, 0],
                    [0, 0, 0, 0],
                    [json!(66.7), json!(0.0), json!(0.0), json!(0.0)],
                )),
            ),
        ],
    }
}

/// The link fallback: the first visit of the client (any session) with the
/// link and a non-empty source.
pub fn link_fallback() -> Hand {
    let m = UTC_M;
    let v = |client: &str, campaign: &str, session: &str, utm: Value, ts: i64| {
        json!({"type":"visit","client_id":client,"campaign_id":campaign,"session_id":session,
               "link_id":"l1","utm":utm,"user_agent":BROWSER,"ts":ts})
    };
    let events = vec![
        v("c2", "m3", "s9", json!({"source":"other"}), m),
        v("c1", "m1", "s1", json!({}), m + 1),
        v(
            "c1",
            "m1",
            "s2",
            json!({"source":"   ","medium":"x"}),
            m + 2,
        ),
        v(
            "c1",
            "m1",
            "s3",
            json!({"source":"fb","medium":"social"}),
            m + 3,
        ),
        v("c1", "m1", "s4", json!({"source":"later"}), m + 4),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":"e1","session_id":"s1","ts":m + 10}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m2","entry_id":"e2","link_id":"l1","ts":m + 11}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m2","entry_id":"e3","link_id":"l2","ts":m + 12}),
    ];
    let d0 = r(0, 0);
    Hand {
        name: "link_fallback",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::Summary("c1", d0),
                Some(summary(
                    d0,
                    [
                        &[("fb", 2), ("(none)", 1)],
                        &[("social", 2), ("(none)", 1)],
                        &[("(none)", 3)],
                    ],
                    &[
                        ("fb", "social", "(none)", 2),
                        ("(none)", "(none)", "(none)", 1),
                    ],
                    [0, 0, 2, 1],
                )),
            ),
            (
                Query::LinkStats("c1", "l1", d0),
                Some(link("l1", 4, 2, json!(50.0))),
            ),
            (Query::LinkStats("c1", "l2", d0), Some(link("l2", 0, 1, N))),
            (
                Query::LinkStats("c2", "l1", d0),
                Some(link("l1", 1, 0, json!(0.0))),
            ),
            (Query::LinkStats("c1", "l3", d0), None),
            (
                Query::Overview("c1", d0),
                Some(overview(
                    d0,
                    [2, 4, 3],
                    json!(75.0),
                    [0, 0],
                    [2, 1, 4, 3],
                    [json!(66.7), json!(0.0), json!(33.3), N],
                )),
            ),
        ],
    }
}

/// A campaign first seen after a tick starts at the tick's clock; webinars
/// and registrations.
pub fn tick_and_webinars() -> Hand {
    let m = UTC_M;
    let events = vec![
        json!({"type":"tick","ts":m + DAY_MS}),
        json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":"s1","webinar_id":"w1",
               "user_agent":BROWSER,"ts":m}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m2","entry_id":"e1","webinar_id":"w2","ts":m + 5}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"m2","entry_id":"e2","ts":m + DAY_MS + 7}),
    ];
    Hand {
        name: "tick_and_webinars",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::Overview("c1", r(0, 0)),
                Some(overview(
                    r(0, 0),
                    [0, 0, 0],
                    N,
                    [0, 0],
                    [0, 0, 0, 0],
                    [N, N, N, N],
                )),
            ),
            (
                Query::Overview("c1", r(1, 1)),
                Some(overview(
                    r(1, 1),
                    [2, 1, 2],
                    json!(200.0),
                    [2, 1],
                    [0, 0, 0, 0],
                    [json!(0.0), json!(0.0), json!(0.0), N],
                )),
            ),
        ],
    }
}

/// Percentages round the exact value: 23 conversions of 80 visits are
/// 28.75 %, which reads 28.8.
pub fn rounding() -> Hand {
    let m = UTC_M;
    let mut events = Vec::new();
    for i in 0..80 {
        events.push(
            json!({"type":"visit","client_id":"c1","campaign_id":"m1","session_id":format!("s{i}"),
                           "link_id":"l1","user_agent":BROWSER,"ts":m + i}),
        );
    }
    for i in 0..23 {
        events.push(json!({"type":"conversion","client_id":"c1","campaign_id":"m1","entry_id":format!("e{i}"),
                           "link_id":"l1","ts":m + 100 + i}));
    }
    let d0 = r(0, 0);
    Hand {
        name: "rounding",
        tz: Tz::Utc,
        window_days: 30,
        lines: lines(events),
        expect: vec![
            (
                Query::LinkStats("c1", "l1", d0),
                Some(link("l1", 80, 23, json!(28.8))),
            ),
            (
                Query::CampaignStats("c1", "m1", d0),
                Some(stats(
                    "c1",
                    "m1",
                    d0,
                    vec![on("2026-03-02", [80, 23, 0, 0], json!(28.8))],
                    nums([80, 23, 0, 0], json!(28.8)),
                )),
            ),
        ],
    }
}
