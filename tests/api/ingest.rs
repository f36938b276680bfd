//! HTTP ingest: 202 once durable, a 400 naming the field for every rule,
//! 413 over the limits, batches whole or not at all.

use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, spawn_app, spawn_app_with};
use eventflow::auth::{Scope, Signer};

#[tokio::test]
async fn accepted_events_are_in_the_log_masked_and_stamped_before_the_202() {
    let app = spawn_app().await;
    let before = crate::helpers::now_ms();
    let (status, body) = app
        .post(
            "/api/public/campaigns/cmp-9/visit",
            r#"{"client_id":"c-1","session_id":"s-1","ip":"203.0.113.7","ts":1}"#,
        )
        .await;
    assert_eq!((status, body), (202, json!({"accepted": 1})));
    // No waiting: the 202 means the line is already on disk.
    let log = std::fs::read_dir(app.dir.path().join("log"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(log).unwrap();
    let visit = text
        .lines()
        .find(|l| l.contains("\"visit\""))
        .expect("the visit is logged");
    let v: serde_json::Value = serde_json::from_str(visit).unwrap();
    assert_eq!(v["ip"], "203.0.113.0", "masked before it is logged");
    assert_eq!(v["campaign_id"], "cmp-9", "taken from the URL");
    assert!(
        v["ts"].as_i64().unwrap() >= before,
        "browser timestamps are replaced by server time"
    );
}

#[tokio::test]
async fn every_validation_rule_gets_its_400_naming_the_field() {
    let app = spawn_app().await;
    let long = "x".repeat(129);
    let utm = "y".repeat(257);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/api/webinars/w-1/presence/ping",
            "{}".into(),
            "viewer_id: is required",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":"a b"}"#.into(),
            "viewer_id: must be 1-128 characters",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            format!(r#"{{"viewer_id":"{long}"}}"#),
            "viewer_id: must be 1-128 characters",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":7}"#.into(),
            "viewer_id: must be a string",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":".."}"#.into(),
            "viewer_id: must not start or end with '.' or hold '..'",
        ),
        (
            "/api/webinars/w..1/presence/ping",
            r#"{"viewer_id":"u"}"#.into(),
            "webinar_id: must not start or end with '.' or hold '..'",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":"a","viewer_id":"b"}"#.into(),
            "event: duplicate field `viewer_id`",
        ),
        (
            "/api/pageviews",
            r#"{"path":"/","query":{"utm_source":["a"]}}"#.into(),
            "query.utm_source: must be a string",
        ),
        (
            "/api/webinars/w%201/presence/ping",
            r#"{"viewer_id":"u"}"#.into(),
            "webinar_id: must be 1-128 characters",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":"u","webinar_id":"w-2"}"#.into(),
            "webinar_id: does not match the URL",
        ),
        (
            "/api/webinars/w-1/presence/leave",
            r#"["u"]"#.into(),
            "event: must be a JSON object",
        ),
        (
            "/api/webinars/w-1/presence/leave",
            r#"{"viewer_id":"#.into(),
            "event: is not valid JSON",
        ),
        (
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":"u","id":""}"#.into(),
            "id: must be 1-64 characters",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            r#"{"session_id":"s"}"#.into(),
            "client_id: is required",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            r#"{"client_id":"c"}"#.into(),
            "session_id: is required",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            r#"{"client_id":"c","session_id":"s","link_id":"l/1"}"#.into(),
            "link_id: must be 1-128 characters",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            format!(r#"{{"client_id":"c","session_id":"s","utm":{{"source":"{utm}"}}}}"#),
            "utm.source: must be at most 256 characters",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            r#"{"client_id":"c","session_id":"s","utm":{"medium":1}}"#.into(),
            "utm.medium: must be a string",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            r#"{"client_id":"c","session_id":"s","utm":[]}"#.into(),
            "utm: must be an object",
        ),
        (
            "/api/public/campaigns/cmp-1/visit",
            r#"{"client_id":"c","session_id":"s","ip":"999.1.1.1"}"#.into(),
            "ip: must be an IPv4 or IPv6 address",
        ),
        (
            "/api/public/campaigns/cmp-1/conversion",
            r#"{"client_id":"c"}"#.into(),
            "entry_id: is required",
        ),
        (
            "/api/public/campaigns/cmp-1/conversion",
            r#"{"client_id":"c","entry_id":"e","viewer_id":"v v"}"#.into(),
            "viewer_id: must be 1-128 characters",
        ),
        (
            "/api/pageviews",
            r#"{"session_id":"s"}"#.into(),
            "path: is required",
        ),
        (
            "/api/pageviews",
            r#"{"path":"/","status":"ok"}"#.into(),
            "status: must be an HTTP status code",
        ),
        (
            "/api/pageviews",
            r#"{"path":"/","campaign_id":""}"#.into(),
            "campaign_id: must be 1-128 characters",
        ),
    ];
    for (path, body, want) in cases {
        let (status, got) = app.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {got}");
        let error = got["error"].as_str().unwrap();
        assert!(
            error.starts_with(want),
            "{path} {body}: {error:?} should start with {want:?}"
        );
    }
}

#[tokio::test]
async fn oversized_events_and_batches_get_413() {
    let app = spawn_app().await;
    let big = format!(r#"{{"viewer_id":"u","pad":"{}"}}"#, "x".repeat(17_000));
    let (status, body) = app.post("/api/webinars/w-1/presence/ping", big).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("body: at most 16384 bytes")
    );
    // Fits as sent, but not once the type, the URL's id and the stamp are added.
    let path = "p".repeat(16_384 - 40);
    let (status, body) = app
        .post("/api/pageviews", format!(r#"{{"path":"{path}"}}"#))
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("once stamped"),
        "{body}"
    );
    let many: String = (0..10_001)
        .map(|i| format!("{{\"type\":\"presence\",\"webinar_id\":\"w\",\"viewer_id\":\"u{i}\",\"action\":\"ping\"}}\n"))
        .collect();
    let (status, body) = app.post_batch(many, &app.token).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("events: 10001 records")
    );
}

#[tokio::test]
async fn batches_are_accepted_whole_or_refused_whole() {
    let app = spawn_app().await;
    let now = crate::helpers::now_ms();
    let ndjson = format!(
        "{{\"type\":\"presence\",\"webinar_id\":\"w-b\",\"viewer_id\":\"a\",\"action\":\"ping\",\"ts\":{now}}}\n\
         {{\"type\":\"activity\",\"webinar_id\":\"w-b\",\"kind\":\"chat\"}}\n\
         {{\"type\":\"presence\",\"webinar_id\":\"w-b\",\"viewer_id\":\"b\",\"action\":\"ping\",\"ts\":{}}}\n",
        now + 3_600_000
    );
    let (status, body) = app.post_batch(ndjson, &app.token).await;
    assert_eq!((status, body), (202, json!({"accepted": 3, "clamped": 1})));
    let array = json!([
        {"type": "presence", "webinar_id": "w-b", "viewer_id": "c", "action": "ping"},
        {"type": "presence", "webinar_id": "w-b", "viewer_id": "c d", "action": "ping"},
    ]);
    let (status, body) = app.post_batch(array.to_string(), &app.token).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "events[1].viewer_id: must be 1-128 characters of [A-Za-z0-9._:-]"
    );
    let (status, body) = app
        .post_batch(r#"[{"type":"tick","ts":1}]"#, &app.token)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "events[0].type: tick records are written by the service itself"
    );
    app.wait_applied().await;
    let (_, live) = app.get("/api/webinars/w-b/live").await;
    assert_eq!(
        live["live"], 2,
        "a and the clamped b; nothing of the refused batch: {live}"
    );
}

#[tokio::test]
async fn the_batch_endpoint_requires_an_admin_token() {
    let app = spawn_app().await;
    let body = r#"{"type":"presence","webinar_id":"w","viewer_id":"u","action":"ping"}"#;
    let (status, _) = app.post("/api/events", body).await;
    assert_eq!(status, 401);
    let (status, _) = app.post_batch(body, "not-a-token").await;
    assert_eq!(status, 401);
    let webinar = Signer::new(SECRET.as_bytes()).mint(
        Scope::Webinar("w".into()),
        crate::helpers::now_ms() + 60_000,
    );
    let (status, _) = app.post_batch(body, &webinar).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn public_endpoints_are_rate_limited_per_client() {
    let app = spawn_app_with(json!({"http": {"rate_limit_per_sec": 5}})).await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let (status, _) = app
            .post(
                "/api/webinars/w/presence/ping",
                format!(r#"{{"viewer_id":"u{i}"}}"#),
            )
            .await;
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 202);
    let r = app
        .client
        .post(format!("{}/api/webinars/w/presence/ping", app.base))
        .body(r#"{"viewer_id":"u"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=1).contains(&retry),
        "a slot frees within a second: {retry}"
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("eventflow_records_total{type=\"presence\",outcome=\"rejected\"}")
    );
}

#[tokio::test]
async fn browser_endpoints_answer_cors_preflights_for_allowed_origins() {
    let app =
        spawn_app_with(json!({"http": {"allowed_origins": ["https://app.example.com"]}})).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/webinars/w/presence/ping", app.base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        "https://app.example.com"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn browser_endpoints_refuse_foreign_origins_when_origins_are_set() {
    let app =
        spawn_app_with(json!({"http": {"allowed_origins": ["https://app.example.com"]}})).await;
    let post = |origin: Option<&'static str>| {
        let mut r = app
            .client
            .post(format!("{}/api/webinars/w/presence/ping", app.base))
            .header("content-type", "text/plain")
            .body(r#"{"viewer_id":"u"}"#);
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        r.send()
    };
    let foreign = post(Some("https://evil.example")).await.unwrap();
    assert_eq!(foreign.status(), 403);
    let v: Value = foreign.json().await.unwrap();
    assert_eq!(
        v["error"],
        "origin: \"https://evil.example\" is not in http.allowed_origins"
    );
    assert_eq!(
        post(Some("https://app.example.com"))
            .await
            .unwrap()
            .status(),
        202
    );
    // Servers send no Origin: the middleware, backends' scripts.
    assert_eq!(post(None).await.unwrap().status(), 202);
}

#[tokio::test]
async fn the_leave_endpoint_takes_what_send_beacon_sends() {
    // navigator.sendBeacon posts a string as text/plain;charset=UTF-8, a
    // Blob with its own type, from the page's origin, with no header of the
    // page's choosing.
    let app =
        spawn_app_with(json!({"http": {"allowed_origins": ["https://app.example.com"]}})).await;
    for (viewer, content_type) in [
        ("u-text", "text/plain;charset=UTF-8"),
        ("u-json", "application/json"),
    ] {
        let r = app
            .client
            .post(format!("{}/api/webinars/w-1/presence/leave", app.base))
            .header("origin", "https://app.example.com")
            .header("content-type", content_type)
            .body(format!(r#"{{"viewer_id":"{viewer}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{content_type}");
    }
    let log = std::fs::read_dir(app.dir.path().join("log"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect::<String>();
    for viewer in ["u-text", "u-json"] {
        assert!(
            log.lines()
                .any(|l| l.contains(r#""action":"leave""#) && l.contains(viewer)),
            "{viewer}: {log}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn browsers_of_allowed_origins_may_read_retry_after() {
    // Without Access-Control-Expose-Headers a page's script sees no
    // Retry-After, and the SDK could not honour it.
    let app = spawn_app_with(json!({"http": {
        "allowed_origins": ["https://app.example.com"], "rate_limit_per_sec": 1
    }}))
    .await;
    let send = || {
        app.client
            .post(format!("{}/api/webinars/w/presence/ping", app.base))
            .header("origin", "https://app.example.com")
            .body(r#"{"viewer_id":"u"}"#)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 202);
    let limited = send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let header = |name| limited.headers().get(name).map(|v| v.to_str().unwrap());
    assert!(header("retry-after").is_some());
    assert_eq!(
        header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        header("access-control-expose-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("retry-after")),
        "{:?}",
        limited.headers()
    );
    app.stop().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let send = |app: &TestApp, forwarded: &'static str| {
        app.client
            .post(format!("{}/api/webinars/w/presence/ping", app.base))
            .header("x-forwarded-for", forwarded)
            .body(r#"{"viewer_id":"u"}"#)
            .send()
    };
    // Behind a trusted proxy (the test's own address), each browser has its
    // own budget of one request a second; a spoofed prefix changes nothing.
    let app = spawn_app_with(json!({"http": {
        "rate_limit_per_sec": 1, "trusted_proxies": ["127.0.0.0/8"]
    }}))
    .await;
    assert_eq!(send(&app, "198.51.100.1").await.unwrap().status(), 202);
    assert_eq!(
        send(&app, "203.0.113.9, 198.51.100.1")
            .await
            .unwrap()
            .status(),
        429,
        "the rightmost untrusted address is the client's"
    );
    assert_eq!(send(&app, "198.51.100.2").await.unwrap().status(), 202);
    app.stop().await;
    // Without trusted proxies the header is the client's word: ignored.
    let app = spawn_app_with(json!({"http": {"rate_limit_per_sec": 1}})).await;
    assert_eq!(send(&app, "198.51.100.1").await.unwrap().status(), 202);
    assert_eq!(send(&app, "198.51.100.2").await.unwrap().status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn with_signed_ingest_browser_events_need_a_key_for_what_they_send() {
    let app = spawn_app_with(json!({"auth": {"ingest": "signed"}})).await;
    let signer = Signer::new(SECRET.as_bytes());
    let exp = crate::helpers::now_ms() + 60_000;
    let key_w1 = signer.mint(Scope::IngestWebinar("w-1".into()), exp);
    let send = |path: &'static str, body: &'static str, key: Option<String>, in_query: bool| {
        let mut url = format!("{}{path}", app.base);
        if let (Some(k), true) = (&key, in_query) {
            url.push_str(&format!("?key={k}"));
        }
        let mut r = app.client.post(url).body(body);
        if let (Some(k), false) = (key, in_query) {
            r = r.header("x-eventflow-key", k);
        }
        r.send()
    };
    let ping = "/api/webinars/w-1/presence/ping";
    let status = |r: reqwest::Response| r.status().as_u16();
    let v = r#"{"viewer_id":"v"}"#;
    assert_eq!(
        status(send(ping, v, None, false).await.unwrap()),
        401,
        "no key"
    );
    assert_eq!(
        status(send(ping, v, Some(key_w1.clone()), false).await.unwrap()),
        202
    );
    // sendBeacon sets no headers: the key may come in the query.
    let leave = "/api/webinars/w-1/presence/leave";
    assert_eq!(
        status(send(leave, v, Some(key_w1.clone()), true).await.unwrap()),
        202
    );
    // Another webinar's key, a read token, an expired or forged key.
    let w2 = "/api/webinars/w-2/presence/ping";
    assert_eq!(
        status(send(w2, v, Some(key_w1.clone()), false).await.unwrap()),
        403
    );
    let reader = signer.mint(Scope::Webinar("w-1".into()), exp);
    assert_eq!(
        status(send(ping, v, Some(reader), false).await.unwrap()),
        403
    );
    let expired = signer.mint(Scope::IngestWebinar("w-1".into()), 1);
    assert_eq!(
        status(send(ping, v, Some(expired), false).await.unwrap()),
        401
    );
    let forged = Signer::new(b"some-other-secret-of-enough-length")
        .mint(Scope::IngestWebinar("w-1".into()), exp);
    assert_eq!(
        status(send(ping, v, Some(forged), false).await.unwrap()),
        401
    );
    // Campaign keys send that campaign's visits; client keys that client's
    // page views.
    let k1 = signer.mint(Scope::IngestCampaign("k1".into()), exp);
    let visit = r#"{"client_id":"c1","session_id":"s"}"#;
    assert_eq!(
        status(
            send(
                "/api/public/campaigns/k1/visit",
                visit,
                Some(k1.clone()),
                false
            )
            .await
            .unwrap()
        ),
        202
    );
    assert_eq!(
        status(
            send("/api/public/campaigns/k2/visit", visit, Some(k1), false)
                .await
                .unwrap()
        ),
        403
    );
    let c1 = signer.mint(Scope::IngestClient("c1".into()), exp);
    assert_eq!(
        status(
            send(
                "/api/pageviews",
                r#"{"path":"/","client_id":"c1"}"#,
                Some(c1.clone()),
                false
            )
            .await
            .unwrap()
        ),
        202
    );
    assert_eq!(
        status(
            send(
                "/api/pageviews",
                r#"{"path":"/","client_id":"c2"}"#,
                Some(c1.clone()),
                false
            )
            .await
            .unwrap()
        ),
        403
    );
    assert_eq!(
        status(
            send("/api/pageviews", r#"{"path":"/"}"#, Some(c1.clone()), false)
                .await
                .unwrap()
        ),
        403
    );
    // An ingest key reads nothing.
    assert_eq!(
        app.get_as("/api/clients/c1/campaigns/summary", &c1).await.0,
        403
    );
    app.stop().await;
}
