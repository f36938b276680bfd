//! Campaign reads over HTTP (DESIGN §6): history loaded through the batch
//! API with an idle lag far behind wall time (so ticks do not move the
//! campaign clocks past it), then every campaign route answered from it,
//! worked out by hand from the rules of DESIGN §4; client tokens read their
//! own client only.

use eventflow::auth::{Scope, Signer};
use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, now_ms, spawn_app_with};

/// 2026-01-10 in Asia/Seoul (UTC+9) at `hh:mm`, in epoch milliseconds.
fn seoul(day: u8, hh: i64, mm: i64) -> i64 {
    let midnight_utc = jiff::civil::date(2026, 1, i8::try_from(day).unwrap())
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond();
    midnight_utc - 9 * 3_600_000 + (hh * 60 + mm) * 60_000
}

fn history() -> Vec<Value> {
    let chrome = "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0";
    vec![
        json!({"type":"visit","client_id":"c1","campaign_id":"cmp-a","session_id":"s1","link_id":"l1",
               "webinar_id":"w-1","utm":{"source":"newsletter","medium":"email","campaign":"spring"},
               "user_agent":chrome,"ts":seoul(10, 10, 0)}),
        // The visit call of s2 failed; the middleware's page view keeps its UTM.
        json!({"type":"pageview","client_id":"c1","campaign_id":"cmp-a","session_id":"s2","path":"/landing",
               "query":{"utm_source":" kakao ","utm_medium":"social","ref":null},
               "user_agent":"Mozilla/5.0 KAKAOTALK 10.4.5","ts":seoul(10, 11, 0)}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"cmp-a","entry_id":"e1","session_id":"s2",
               "webinar_id":"w-1","ts":seoul(10, 12, 0)}),
        json!({"type":"conversion","client_id":"c1","campaign_id":"cmp-a","entry_id":"e2","session_id":"s1",
               "ts":seoul(10, 13, 0)}),
        // A repeated entry counts once.
        json!({"type":"conversion","client_id":"c1","campaign_id":"cmp-a","entry_id":"e2","session_id":"s1",
               "ts":seoul(10, 13, 30)}),
        json!({"type":"visit","client_id":"c1","campaign_id":"cmp-a","session_id":"s9",
               "user_agent":"Mozilla/5.0 (compatible; Googlebot/2.1)","ts":seoul(10, 14, 0)}),
        // 00:30 in Seoul is the next local day (15:30 UTC the same UTC day).
        json!({"type":"visit","client_id":"c1","campaign_id":"cmp-a","session_id":"s1","link_id":"l1",
               "user_agent":chrome,"ts":seoul(11, 0, 30)}),
        // Another client with the same session id: another session.
        json!({"type":"visit","client_id":"c2","campaign_id":"cmp-x","session_id":"s1",
               "utm":{"source":"google"},"ts":seoul(10, 9, 0)}),
        json!({"type":"conversion","client_id":"c2","campaign_id":"cmp-x","entry_id":"e1","session_id":"s1",
               "webinar_id":"w-2","ts":seoul(10, 9, 30)}),
        // Two viewers watch c1's webinar; one of them also c2's.
        json!({"type":"presence","webinar_id":"w-1","viewer_id":"u-1","action":"ping","ts":seoul(10, 12, 30)}),
        json!({"type":"presence","webinar_id":"w-1","viewer_id":"u-2","action":"ping","ts":seoul(10, 12, 30)}),
        json!({"type":"presence","webinar_id":"w-2","viewer_id":"u-1","action":"ping","ts":seoul(10, 9, 45)}),
    ]
}

async fn loaded() -> TestApp {
    // Ticks a year behind wall time stay behind this January's history.
    let app = spawn_app_with(json!({
        "stats": {"timezone": "Asia/Seoul"},
        "window": {"idle_lag_ms": 400_i64 * 86_400_000},
    }))
    .await;
    let body: String = history().iter().map(|e| format!("{e}\n")).collect();
    let (status, v) = app.post_batch(body, &app.token).await;
    assert_eq!(status, 202, "{v}");
    app.wait_applied().await;
    app
}

const RANGE: &str = "from=2026-01-10&to=2026-01-11";

#[tokio::test]
async fn campaign_reads_answer_from_the_rules() {
    let app = loaded().await;
    let (status, v) = app
        .get(&format!("/api/clients/c1/campaigns/summary?{RANGE}"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({
            "from": "2026-01-10", "to": "2026-01-11", "total_conversions": 2,
            "by_source": [{"source":"kakao","conversions":1},{"source":"newsletter","conversions":1}],
            "by_medium": [{"medium":"email","conversions":1},{"medium":"social","conversions":1}],
            "by_campaign": [{"campaign":"(none)","conversions":1},{"campaign":"spring","conversions":1}],
            "by_combination": [
                {"source":"kakao","medium":"social","campaign":"(none)","conversions":1},
                {"source":"newsletter","medium":"email","campaign":"spring","conversions":1}],
            "attribution": {"own":0,"session":2,"link":0,"none":0},
        })
    );
    // One local day only: the 11th has no conversions.
    let (_, v) = app
        .get("/api/clients/c1/campaigns/summary?from=2026-01-11&to=2026-01-11")
        .await;
    assert_eq!(v["total_conversions"], 0);

    // s1 visited with l1 on both days: one session over the range.
    let (status, v) = app
        .get(&format!("/api/clients/c1/campaigns/links/l1/stats?{RANGE}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"link_id":"l1","visits":1,"conversions":1,"cvr":100.0})
    );
    let (status, v) = app
        .get("/api/clients/c1/campaigns/links/l1/stats?from=2025-01-01&to=2025-01-02")
        .await;
    assert_eq!(
        (status, v),
        (
            200,
            json!({"link_id":"l1","visits":0,"conversions":0,"cvr":null})
        ),
        "a used link without data in the range"
    );
    let (status, _) = app
        .get(&format!(
            "/api/clients/c1/campaigns/links/l-unknown/stats?{RANGE}"
        ))
        .await;
    assert_eq!(status, 404);

    let (status, v) = app
        .get(&format!(
            "/api/clients/c1/campaigns/cmp-a/stats?{RANGE}&interval=1d"
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({
            "client_id": "c1", "campaign_id": "cmp-a", "from": "2026-01-10", "to": "2026-01-11",
            "interval": "1d",
            "days": [
                {"date":"2026-01-10","visits":1,"conversions":2,"cvr":200.0,"bot_visits":1,"pageviews":1},
                {"date":"2026-01-11","visits":1,"conversions":0,"cvr":0.0,"bot_visits":0,"pageviews":0}],
            "total": {"visits":1,"conversions":2,"cvr":200.0,"bot_visits":1,"pageviews":1},
        })
    );

    let (status, v) = app
        .get(&format!("/api/clients/c1/pageviews?{RANGE}&limit=5"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"from":"2026-01-10","to":"2026-01-11","total":1,"paths":[{"path":"/landing","pageviews":1}]})
    );

    let (status, v) = app
        .get(&format!("/api/clients/c1/statistics/overview?{RANGE}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["campaigns"],
        json!({"total":1,"visits":1,"conversions":2,"cvr":200.0})
    );
    assert_eq!(
        v["webinars"],
        json!({"total":1,"registrations":1,"live_viewers":2,"peak_concurrent":2})
    );
    assert_eq!(
        v["links"],
        json!({"total":1,"active":1,"total_visits":1,"total_conversions":1})
    );
    // e1 has no visit before it (s2's visit failed); s2 never visited cmp-a,
    // so its page view is not covered.
    assert_eq!(
        v["quality"],
        json!({"utm_tracking_rate":100.0,"utm_tracking_rate_before_attribution":0.0,
               "visit_link_rate":50.0,"visit_coverage":0.0})
    );

    // The other client's numbers are its own.
    let (_, v) = app
        .get(&format!("/api/clients/c2/statistics/overview?{RANGE}"))
        .await;
    assert_eq!(
        v["campaigns"],
        json!({"total":1,"visits":1,"conversions":1,"cvr":100.0})
    );
    assert_eq!(v["webinars"]["live_viewers"], 1);
    // Every link of the client: l1 with s1's link visits and e1 attributed
    // to it.
    let (status, v) = app
        .get(&format!("/api/clients/c1/campaigns/links?{RANGE}"))
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, one) = app
        .get(&format!("/api/clients/c1/campaigns/links/l1/stats?{RANGE}"))
        .await;
    assert_eq!(
        v["links"],
        json!([one]),
        "the same numbers as the link's own"
    );
    let (_, v) = app
        .get(&format!("/api/clients/c2/campaigns/links?{RANGE}"))
        .await;
    assert_eq!(v["links"], json!([]));
    // The client's webinars one by one: w-1 named by s1's visit and e1,
    // peaking at 2 (u-1 and u-2 at 12:30), both still live at its clock
    // (ticks lag a year behind).
    let (status, v) = app.get(&format!("/api/clients/c1/webinars?{RANGE}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["webinars"],
        json!([{"webinar_id":"w-1","live":2,"peak_concurrent":2,"registrations":1}])
    );
    let (_, v) = app.get(&format!("/api/clients/c2/webinars?{RANGE}")).await;
    assert_eq!(
        v["webinars"],
        json!([{"webinar_id":"w-2","live":1,"peak_concurrent":1,"registrations":1}])
    );
    let (_, v) = app
        .get("/api/clients/c1/webinars?from=2026-01-11&to=2026-01-11")
        .await;
    assert_eq!(v["webinars"], json!([]));
    let (_, v) = app
        .get("/api/clients/c1/statistics/overview?from=2026-01-11&to=2026-01-11")
        .await;
    assert_eq!(v["webinars"]["total"], 0, "no webinar named on the 11th");
    assert_eq!(v["webinars"]["live_viewers"], 0);
    app.stop().await;
}

#[tokio::test]
async fn client_tokens_read_their_own_client_and_its_webinars_only() {
    let app = loaded().await;
    let signer = Signer::new(SECRET.as_bytes());
    let c1 = signer.mint(Scope::Client("c1".into()), now_ms() + 60_000);
    let webinar = signer.mint(Scope::Webinar("w-1".into()), now_ms() + 60_000);
    for path in [
        "/api/clients/{c}/campaigns/summary",
        "/api/clients/{c}/campaigns/links/l1/stats",
        "/api/clients/{c}/campaigns/cmp-a/stats",
        "/api/clients/{c}/pageviews",
        "/api/clients/{c}/statistics/overview",
        "/api/clients/{c}/webinars",
        "/api/clients/{c}/campaigns/links",
    ] {
        let own = path.replace("{c}", "c1");
        let other = path.replace("{c}", "c2");
        let (status, _) = app.get_as(&own, &c1).await;
        assert_ne!(status, 403, "{own}");
        assert_ne!(status, 401, "{own}");
        assert_eq!(app.get_as(&other, &c1).await.0, 403, "{other}");
        assert_eq!(app.get_as(&own, &webinar).await.0, 403, "{own}");
        let (status, _) = app.get(&other).await;
        assert!(
            status == 200 || status == 404,
            "admin reads {other}: {status}"
        );
    }
    // Webinars named on c1's visits and conversions, and no others.
    assert_eq!(app.get_as("/api/webinars/w-1/live", &c1).await.0, 200);
    assert_eq!(app.get_as("/api/webinars/w-2/live", &c1).await.0, 403);
    app.stop().await;
}

#[tokio::test]
async fn bad_campaign_ranges_and_parameters_say_why() {
    let app = loaded().await;
    let cases = [
        (
            "/api/clients/c1/campaigns/summary?from=2026-01-11&to=2026-01-10",
            "from: must not be after to",
        ),
        (
            "/api/clients/c1/campaigns/summary?from=yesterday",
            "from: \"yesterday\" is not a date",
        ),
        (
            "/api/clients/c1/campaigns/cmp-a/stats?interval=1h",
            "interval: \"1h\" is not supported",
        ),
        (
            "/api/clients/c1/pageviews?limit=0",
            "limit: must be a number",
        ),
        ("/api/clients/c%201/campaigns/summary", "client_id: must be"),
    ];
    for (path, error) in cases {
        let (status, v) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert!(
            v["error"].as_str().unwrap().starts_with(error),
            "{path}: {v}"
        );
    }
    // Instants and epoch milliseconds name the local day they fall in.
    let (_, by_instant) = app
        .get("/api/clients/c1/campaigns/summary?from=2026-01-10T00:00:00%2B09:00&to=1768143600000")
        .await;
    assert_eq!(
        (&by_instant["from"], &by_instant["to"]),
        (&json!("2026-01-10"), &json!("2026-01-12"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_service_started_after_a_restore_reads_the_restored_history() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pageviews.jsonl");
    std::fs::write(
        &log,
        [
            r#"{"timestamp":"2026-02-02T09:00:00Z","path":"/event/1","query":{"utm_source":"mail"},"session_id":"s-1","campaign_id":"k1","client_id":"c1","status":"logged"}"#,
            r#"{"type":"visit","client_id":"c1","campaign_id":"k1","session_id":"s-1","ts":1770022860000}"#,
            r#"{"type":"conversion","client_id":"c1","campaign_id":"k1","entry_id":"e-1","session_id":"s-1","ts":1770022920000}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eventflow"))
        .arg("restore")
        .arg(&log)
        .env("EVENTFLOW__DATA__DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let app = crate::helpers::spawn_app_in(dir, json!({})).await;
    let (_, v) = app
        .get("/api/clients/c1/campaigns/summary?from=2026-02-02&to=2026-02-02")
        .await;
    assert_eq!(v["total_conversions"], 1, "{v}");
    assert_eq!(v["attribution"]["session"], 1, "{v}");
    // The same session visits again today: one session over both days.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let (status, _) = app
        .post(
            "/api/public/campaigns/k1/visit",
            r#"{"client_id":"c1","session_id":"s-1"}"#,
        )
        .await;
    assert_eq!(status, 202);
    app.wait_applied().await;
    let (_, v) = app
        .get(&format!(
            "/api/clients/c1/campaigns/k1/stats?from=2026-02-02&to={today}"
        ))
        .await;
    assert_eq!(v["total"]["visits"], 1, "{v}");
    assert_eq!(v["total"]["pageviews"], 1, "{v}");
    assert_eq!(v["days"].as_array().unwrap().len(), 2, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_lag_longer_than_the_epoch_is_valid() {
    let app = spawn_app_with(json!({"window": {"idle_lag_ms": 10_000_000_000_000_000_i64}})).await;
    let (status, _) = app
        .post(
            "/api/public/campaigns/k1/visit",
            r#"{"client_id":"c1","session_id":"s-1"}"#,
        )
        .await;
    assert_eq!(status, 202);
    app.wait_applied().await;
    let (_, v) = app.get("/api/clients/c1/campaigns/k1/stats").await;
    assert_eq!(v["total"]["visits"], 1, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_public_event_cannot_drop_a_backends_and_tenants_keep_their_own_ids() {
    let app = spawn_app_with(json!({"window": {"idle_lag_ms": 400_i64 * 86_400_000}})).await;
    // A browser guesses the id a backend will use...
    let (status, _) = app
        .post(
            "/api/public/campaigns/k1/visit",
            r#"{"client_id":"c1","session_id":"s-browser","id":"shared-1"}"#,
        )
        .await;
    assert_eq!(status, 202);
    // ... and sends it again (a retry): still one visit.
    app.post(
        "/api/public/campaigns/k1/visit",
        r#"{"client_id":"c1","session_id":"s-browser-2","id":"shared-1"}"#,
    )
    .await;
    let ts = seoul(10, 10, 0);
    let batch = [
        json!({"type":"visit","id":"shared-1","client_id":"c1","campaign_id":"k1","session_id":"s-backend","ts":ts}),
        // Another client's event with the same id is its own.
        json!({"type":"visit","id":"shared-1","client_id":"c2","campaign_id":"k1","session_id":"s-other","ts":ts}),
        // A redelivery of the backend's event counts once.
        json!({"type":"visit","id":"shared-1","client_id":"c1","campaign_id":"k1","session_id":"s-again","ts":ts}),
    ]
    .iter()
    .map(|e| format!("{e}\n"))
    .collect::<String>();
    let (status, v) = app.post_batch(batch, &app.token).await;
    assert_eq!(status, 202, "{v}");
    app.wait_applied().await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let range = format!("from=2026-01-01&to={today}");
    let (_, v) = app
        .get(&format!("/api/clients/c1/campaigns/k1/stats?{range}"))
        .await;
    assert_eq!(
        v["total"]["visits"], 2,
        "the browser's visit and the backend's: {v}"
    );
    let (_, v) = app
        .get(&format!("/api/clients/c2/campaigns/k1/stats?{range}"))
        .await;
    assert_eq!(v["total"]["visits"], 1, "{v}");
    app.stop().await;
}
