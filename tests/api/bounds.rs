//! Bounded memory under hostile public traffic (`limits.*`): a flood of
//! random webinar ids through the browser endpoints is admitted only up to
//! `limits.max_public_entities` (the rest get 503, the service's memory
//! stays bounded, admitted webinars keep working), and one address may
//! introduce only `limits.new_entities_per_minute` new ones (429 with
//! `Retry-After`).

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::{SECRET, eventually, spawn_app_with};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc")
}

#[tokio::test]
async fn a_flood_of_random_webinars_is_bounded_and_admitted_ones_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_eventflow"))
        .arg("serve")
        .env("EVENTFLOW__DATA__DIR", dir.path())
        .env("EVENTFLOW__HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("EVENTFLOW__HTTP__RATE_LIMIT_PER_SEC", "0")
        .env("EVENTFLOW__LIMITS__MAX_PUBLIC_ENTITIES", "500")
        .env("EVENTFLOW__LIMITS__NEW_ENTITIES_PER_MINUTE", "0")
        .env("EVENTFLOW__AUTH__SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually("the service is ready", || async {
        let r = client.get(format!("{base}/readyz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let ping = |w: String| {
        client
            .post(format!("{base}/api/webinars/{w}/presence/ping"))
            .body(r#"{"viewer_id":"v"}"#)
            .send()
    };
    // Warm up: the first 500 webinars are admitted.
    for i in 0..500 {
        assert_eq!(ping(format!("w-{i}")).await.unwrap().status(), 202);
    }
    let before = rss_kib(child.id());
    let mut refused = 0;
    for i in 0..20_000 {
        let r = ping(format!("flood-{i}-{}", i * 7919)).await.unwrap();
        if r.status() == 503 {
            refused += 1;
            if refused == 1 {
                let v: Value = r.json().await.unwrap();
                assert!(
                    v["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("limits.max_public_entities"),
                    "{v}"
                );
            }
        }
    }
    assert_eq!(
        refused, 20_000,
        "every new webinar past the bound is refused"
    );
    let after = rss_kib(child.id());
    // Unbounded, 20 000 webinars held ~7 KiB each (about 140 MiB).
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Admitted webinars keep working.
    assert_eq!(ping("w-7".into()).await.unwrap().status(), 202);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn one_address_introduces_few_new_entities_a_minute() {
    let app = spawn_app_with(json!({"limits": {"new_entities_per_minute": 3}})).await;
    for w in ["a", "b", "c"] {
        let (status, _) = app
            .post(
                &format!("/api/webinars/w-{w}/presence/ping"),
                r#"{"viewer_id":"v"}"#,
            )
            .await;
        assert_eq!(status, 202);
    }
    let r = app
        .client
        .post(format!("{}/api/webinars/w-d/presence/ping", app.base))
        .body(r#"{"viewer_id":"v"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("limits.new_entities_per_minute"),
        "{v}"
    );
    // Known webinars still take this address's events; backends are not
    // bounded.
    let (status, _) = app
        .post("/api/webinars/w-a/presence/ping", r#"{"viewer_id":"v2"}"#)
        .await;
    assert_eq!(status, 202);
    let (status, _) = app
        .post_batch(
            r#"{"type":"presence","webinar_id":"w-e","viewer_id":"v","action":"ping"}"#,
            &app.token,
        )
        .await;
    assert_eq!(status, 202);
    app.stop().await;
}
