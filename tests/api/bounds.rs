//! Bounded memory under hostile public traffic (`limits.*`): a flood of
//! random webinar ids through the browser endpoints is admitted only up to
//! `limits.max_public_entities` (the rest get 503, the service's memory
//! stays bounded, admitted webinars keep working), and one address may
//! introduce only `limits.new_entities_per_minute` new ones (429 with
//! `Retry-After`).

use std::process::{Child, Command, Stdio};

use eventflow::auth::{Scope, Signer};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{SECRET, eventually, now_ms, spawn_app_with};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc")
}

/// The service in a process of its own (its RSS is its own), killed when
/// the test ends, however it ends.
struct Service {
    child: Child,
    port: u16,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts it with these `EVENTFLOW__` settings and waits until ready.
    async fn start(settings: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventflow"));
        command
            .arg("serve")
            .env("EVENTFLOW__DATA__DIR", dir.path())
            .env("EVENTFLOW__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("EVENTFLOW__AUTH__SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in settings {
            command.env(format!("EVENTFLOW__{key}"), value);
        }
        let service = Service {
            child: command.spawn().unwrap(),
            port,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _dir: dir,
        };
        eventually("the service is ready", || async {
            let r = service
                .client
                .get(format!("{}/readyz", service.base))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        service
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_flood_of_random_webinars_is_bounded_and_admitted_ones_keep_working() {
    let service = Service::start(&[
        ("HTTP__RATE_LIMIT_PER_SEC", "0"),
        ("LIMITS__MAX_PUBLIC_ENTITIES", "500"),
        ("LIMITS__NEW_ENTITIES_PER_MINUTE", "0"),
    ])
    .await;
    let (base, client) = (&service.base, &service.client);
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
    let before = rss_kib(service.child.id());
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
    let after = rss_kib(service.child.id());
    // Unbounded, 20 000 webinars held ~7 KiB each (about 140 MiB).
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("eventflow_entities_refused_total{bound=\"max_public_entities\"} 20000"),
        "{metrics}"
    );
    // Admitted webinars keep working.
    assert_eq!(ping("w-7".into()).await.unwrap().status(), 202);
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
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("eventflow_entities_refused_total{bound=\"new_entities_per_minute\"} 1"),
        "{metrics}"
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

#[tokio::test]
async fn an_open_websocket_costs_a_few_kib() {
    const SOCKETS: usize = 400;
    let service = Service::start(&[("LIMITS__MAX_WEBSOCKETS_PER_TOKEN", "1000")]).await;
    let port = service.port;
    let token = Signer::new(SECRET.as_bytes()).mint(Scope::Admin, now_ms() + 600_000);
    let open = |w: usize| {
        tokio_tungstenite::connect_async(format!(
            "ws://127.0.0.1:{port}/ws/webinars/w-{}?token={token}",
            w % 20
        ))
    };
    // A first few, so the service's own pools and tables are warm.
    let mut sockets = Vec::new();
    for w in 0..20 {
        let (mut ws, _) = open(w).await.unwrap();
        ws.next().await.unwrap().unwrap();
        sockets.push(ws);
    }
    let before = rss_kib(service.child.id());
    for w in 0..SOCKETS {
        let (mut ws, _) = open(w).await.unwrap();
        // The snapshot: the socket is served, its buffers in use.
        ws.next().await.unwrap().unwrap();
        sockets.push(ws);
    }
    let after = rss_kib(service.child.id());
    let per = (after.saturating_sub(before)) as f64 / SOCKETS as f64;
    println!("RSS per open WebSocket: {per:.1} KiB ({before} -> {after} KiB)");
    // With the library's default 128 KiB read buffer each held ~131 KiB.
    assert!(per <= 40.0, "{per:.1} KiB per open WebSocket");
    drop(sockets);
}
