//! Reads: the live count, access statistics and engagement, scoped tokens,
//! health, readiness and metrics.

use serde_json::{Value, json};

use crate::helpers::{SECRET, eventually, now_ms, spawn_app};
use eventflow::auth::{Scope, Signer};

#[tokio::test]
async fn a_ping_shows_in_the_live_count_then_in_final_buckets() {
    let app = spawn_app().await;
    // One trusted batch with one `ts`: the three joins fall in one 1 s
    // bucket whatever the wall clock does between requests.
    let ts = now_ms();
    let pings: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|v| {
            json!({"type": "presence", "webinar_id": "w-1", "viewer_id": v,
                   "action": "ping", "ts": ts})
            .to_string()
        })
        .collect();
    let (status, _) = app.post_batch(pings.join("\n"), &app.token).await;
    assert_eq!(status, 202);
    app.post("/api/webinars/w-1/presence/leave", r#"{"viewer_id":"c"}"#)
        .await;
    let live = eventually("the live count shows two viewers", || async {
        let (_, v) = app.get("/api/webinars/w-1/live").await;
        (v["live"] == 2).then_some(v)
    })
    .await;
    assert_eq!(live["webinar_id"], "w-1");
    assert_eq!(live["open_bucket"]["joins"], 3);
    assert_eq!(live["open_bucket"]["leaves"], 1);

    // Ticks (idle lag 0) close the 1 s bucket; the viewers expire after 1.5 s.
    let buckets = eventually("the buckets become final and are stored", || async {
        let (_, v) = app
            .get(&format!(
                "/api/webinars/w-1/stats/access?from={}",
                now_ms() - 60_000
            ))
            .await;
        let b = v["buckets"].as_array()?.clone();
        let expired: u64 = b.iter().map(|x| x["expiries"].as_u64().unwrap()).sum();
        (expired == 2).then_some(b)
    })
    .await;
    let first = &buckets[0];
    assert_eq!(first["max_concurrent"], 3);
    assert_eq!(first["unique_viewers"], 3);
    assert_eq!(first["pings"], 3);
    for b in &buckets {
        assert_eq!(
            b["bucket_end"].as_i64().unwrap() - b["bucket_start"].as_i64().unwrap(),
            1000
        );
    }
    let (_, hourly) = app
        .get(&format!(
            "/api/webinars/w-1/stats/access?from={}&interval=1h",
            now_ms() - 60_000
        ))
        .await;
    let hour = &hourly["buckets"][0];
    assert_eq!(hourly["interval"], "1h");
    assert_eq!(
        hour["bucket_end"].as_i64().unwrap() - hour["bucket_start"].as_i64().unwrap(),
        3_600_000
    );
    assert_eq!(hour["max_concurrent"], 3);
    assert_eq!(hour["min_concurrent"], 0);
    assert_eq!(hour["joins"], 3);
    assert_eq!(
        hour["unique_viewers"], 3,
        "the open hour's distinct viewers so far"
    );
    let (_, daily) = app
        .get(&format!(
            "/api/webinars/w-1/stats/access?from={}&interval=1d",
            now_ms() - 60_000
        ))
        .await;
    assert_eq!(daily["buckets"][0]["unique_viewers"], 3);
    assert_eq!(daily["buckets"][0]["pings"], 3);
}

#[tokio::test]
async fn engagement_is_counted_by_kind() {
    let app = spawn_app().await;
    let events: Vec<_> = ["chat", "chat", "question", "cta"]
        .iter()
        .map(|k| json!({"type": "activity", "webinar_id": "w-e", "kind": k}))
        .collect();
    let (status, _) = app
        .post_batch(serde_json::Value::from(events).to_string(), &app.token)
        .await;
    assert_eq!(status, 202);
    let v = eventually("engagement is stored", || async {
        let (_, v) = app
            .get(&format!(
                "/api/webinars/w-e/stats/engagement?from={}",
                now_ms() - 60_000
            ))
            .await;
        (v["total"] == 4).then_some(v)
    })
    .await;
    assert_eq!(v["by_kind"]["chat"], 2);
    assert_eq!(v["by_kind"]["question"], 1);
    assert_eq!(v["by_kind"]["cta"], 1);
    assert_eq!(v["by_kind"]["poll"], 0);
}

#[tokio::test]
async fn tokens_are_scoped_to_one_webinar() {
    let app = spawn_app().await;
    let signer = Signer::new(SECRET.as_bytes());
    let exp = now_ms() + 60_000;
    let mine = signer.mint(Scope::Webinar("w-1".into()), exp);
    let client = signer.mint(Scope::Client("c-1".into()), exp);
    app.post("/api/webinars/w-1/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    app.wait_applied().await;
    assert_eq!(app.get_as("/api/webinars/w-1/live", &mine).await.0, 200);
    assert_eq!(app.get_as("/api/webinars/w-2/live", &mine).await.0, 403);
    assert_eq!(app.get_as("/api/webinars/w-1/live", &client).await.0, 403);
    assert_eq!(app.get_as("/api/webinars", &mine).await.0, 403);
    let expired = signer.mint(Scope::Admin, now_ms() - 1);
    let (status, body) = app.get_as("/api/webinars/w-1/live", &expired).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("the token has expired"))
    );
    let forged = Signer::new(b"other").mint(Scope::Admin, exp);
    assert_eq!(app.get_as("/api/webinars/w-1/live", &forged).await.0, 401);
    let r = app
        .client
        .get(format!("{}/api/webinars/w-1/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn bad_ranges_and_intervals_say_why() {
    let app = spawn_app().await;
    let (status, v) = app
        .get("/api/webinars/w/stats/access?from=2026-02-02&to=2026-02-01")
        .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("from: must be before to")
    );
    let (status, v) = app.get("/api/webinars/w/stats/access?from=last-week").await;
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("from: \"last-week\" is not a date")
    );
    let (status, v) = app
        .get("/api/webinars/w/stats/access?to=9223372036854775807&interval=1h")
        .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("to: must lie between 1970")
    );
    let (status, v) = app.get("/api/webinars/w/stats/access?interval=1w").await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "interval: \"1w\" is not one of 5m, 1h, 1d");
    let (status, v) = app
        .get("/api/webinars/w/stats/access?from=2026-01-01&to=2026-01-01")
        .await;
    assert_eq!(
        (status, v["buckets"].clone()),
        (200, json!([])),
        "a date is inclusive: one whole day"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let (status, v) = app.get("/healthz").await;
    assert_eq!((status, v), (200, json!({"status": "ok"})));
    let (status, v) = app.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(v["ready"], true);
    app.post("/api/webinars/w/presence/ping", r#"{"viewer_id":"u"}"#)
        .await;
    app.wait_applied().await;
    let (_, metrics) = app.get("/metrics").await;
    let text = metrics.as_str().unwrap();
    for name in [
        "eventflow_records_total{type=\"presence\",outcome=\"accepted\"} 1",
        "eventflow_records_total{type=\"presence\",outcome=\"applied\"} 1",
        "eventflow_late_records_total",
        "eventflow_clamped_records_total",
        "eventflow_log_fsync_seconds_count",
        "eventflow_bucket_flush_seconds_count",
        "eventflow_websocket_clients",
        "eventflow_live_viewers 1",
        "eventflow_engine_lag_bytes ",
        // Requests by route template, never by raw path.
        "eventflow_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "eventflow_http_requests_total{route=\"/api/webinars/{webinar_id}/presence/ping\",method=\"POST\",status=\"202\"} 1",
        "eventflow_http_request_seconds_count{route=\"/readyz\",method=\"GET\"}",
        "eventflow_degraded{part=\"store\"} 0",
        "eventflow_degraded{part=\"redis\"} 0",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert!(!text.contains("route=\"/api/webinars/w/"), "{text}");
    app.get("/no/such/route").await;
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.as_str().unwrap().contains(
            "eventflow_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"
        ),
        "{metrics}"
    );
    let (status, page) = app.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.as_str()
            .unwrap()
            .contains("/dashboard/assets/index.js"),
        "the start page: {page}"
    );
}

#[tokio::test]
async fn with_postgres_configured_the_rows_go_there() {
    let url = crate::helpers::fresh_postgres().await;
    let app = crate::helpers::spawn_app_with(json!({"postgres": {"url": url}})).await;
    app.post("/api/webinars/w-pg/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    let buckets = eventually("a final bucket is stored", || async {
        let (_, v) = app
            .get(&format!(
                "/api/webinars/w-pg/stats/access?from={}",
                now_ms() - 60_000
            ))
            .await;
        let b = v["buckets"].as_array()?.clone();
        (!b.is_empty()).then_some(b)
    })
    .await;
    assert_eq!(buckets[0]["joins"], 1);
    app.stop().await;
    let store = eventflow::sink::store::Store::connect(&url).await.unwrap();
    let rows = store.all_presence().await.unwrap();
    assert!(
        rows.iter().any(|(w, s)| w == "w-pg" && s.joins == 1),
        "{rows:?}"
    );
}

#[tokio::test]
async fn every_error_is_one_json_shape() {
    let app = spawn_app().await;
    let long_query = format!("/api/webinars/w-1/live?x={}", "a".repeat(9000));
    let cases = [
        (reqwest::Method::GET, long_query.as_str(), 414),
        (reqwest::Method::GET, "/no/such/route", 404),
        (reqwest::Method::DELETE, "/healthz", 405),
        (reqwest::Method::GET, "/api/webinars/%FF%FE/live", 400),
        (
            reqwest::Method::GET,
            "/api/webinars/w-1/stats/access?from=%FF",
            400,
        ),
    ];
    // Too many header fields, and too many header bytes.
    let many: reqwest::header::HeaderMap = (0..150)
        .map(|i| {
            (
                reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_static("1"),
            )
        })
        .collect();
    let big: reqwest::header::HeaderMap = (0..3)
        .map(|i| {
            (
                reqwest::header::HeaderName::from_bytes(format!("x-big{i}").as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(&"b".repeat(7000)).unwrap(),
            )
        })
        .collect();
    let headers = [many, big];
    let cases = cases
        .iter()
        .map(|(m, p, s)| (m.clone(), *p, *s, reqwest::header::HeaderMap::new()))
        .chain(
            headers
                .into_iter()
                .map(|h| (reqwest::Method::GET, "/api/webinars/w-1/live", 431, h)),
        );
    for (method, path, status, headers) in cases {
        let r = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .bearer_auth(&app.token)
            .headers(headers)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            r.headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some("application/json".to_owned()),
            "{method} {path}"
        );
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {v}"
        );
    }
    // The scheme of a bearer token is case-insensitive.
    let r = app
        .client
        .get(format!("{}/api/webinars", app.base))
        .header("authorization", format!("BEARER {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn an_open_hour_counts_its_elapsed_part_and_an_unknown_webinar_is_404() {
    let app = crate::helpers::spawn_app_with(json!({
        "window": {"bucket_ms": 60_000},
        "presence": {"ttl_ms": 600_000},
    }))
    .await;
    let (status, v) = app.get("/api/webinars/w-never/live").await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"].as_str().unwrap().starts_with("webinar_id"),
        "{v}"
    );

    let now = now_ms();
    let hour = now - now.rem_euclid(3_600_000);
    let ping = |v: &str| {
        json!({"type": "presence", "webinar_id": "w-h", "viewer_id": v, "action": "ping", "ts": now})
            .to_string()
    };
    let (status, _) = app
        .post_batch(format!("{}\n{}", ping("a"), ping("b")), &app.token)
        .await;
    assert_eq!(status, 202);
    app.wait_applied().await;
    let (_, v) = app
        .get(&format!(
            "/api/webinars/w-h/stats/access?interval=1h&from={hour}&to={}",
            hour + 3_600_000
        ))
        .await;
    let rows = v["buckets"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "the open hour has its row: {v}");
    let open = &rows[0];
    assert_eq!(open["open"], true, "{open}");
    // Joins, pings and the peak of the open bucket so far, like its uniques.
    assert_eq!(
        (
            &open["joins"],
            &open["pings"],
            &open["max_concurrent"],
            &open["unique_viewers"]
        ),
        (&json!(2), &json!(2), &json!(2), &json!(2)),
        "{open}"
    );
    // Two live since `now`, averaged over the hour's elapsed part only:
    // 2 × (clock − now) / (clock − hour) — at most 2, and far above the
    // whole hour's average when the hour is young.
    let (_, live) = app.get("/api/webinars/w-h/live").await;
    let clock = live["ts"].as_i64().unwrap();
    let avg = open["avg_concurrent"].as_f64().unwrap();
    let elapsed = (clock - hour).max(1) as f64;
    let expected = 2.0 * (clock - now) as f64 / elapsed;
    assert!(
        (avg - expected).abs() < 0.01 + 2.0 * 1_000.0 / elapsed,
        "avg {avg}, expected about {expected}: {open}"
    );
    app.stop().await;
}
