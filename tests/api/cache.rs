//! Redis as the hot cache: live counts, open buckets, final buckets and the
//! pub/sub channel under a per-test prefix; a Redis that goes away degrades
//! `/readyz` without stopping aggregation, and is rebuilt when it returns.

use std::process::{Child, Command, Stdio};

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{eventually, now_ms, spawn_app_with};

fn prefix() -> String {
    format!(
        "ef-test-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    )
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn live_counts_buckets_and_the_channel_reach_redis() {
    let url = "redis://127.0.0.1:6379";
    let p = prefix();
    let app = spawn_app_with(json!({"redis": {"url": url, "prefix": p}})).await;
    let mut pubsub = redis::Client::open(url)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub.subscribe(format!("{p}:live:w-r")).await.unwrap();
    let mut messages = pubsub.into_on_message();

    app.post("/api/webinars/w-r/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    app.post("/api/webinars/w-r/presence/ping", r#"{"viewer_id":"b"}"#)
        .await;
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
        .await
        .unwrap()
        .unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(payload["webinar_id"], "w-r");

    let mut c = redis_conn(url).await;
    let live_key = format!("{p}:webinar:w-r:live");
    eventually("the live count reaches Redis", || {
        let (mut c, key) = (c.clone(), live_key.clone());
        async move { (c.hget::<_, _, Option<u32>>(&key, "live").await.ok()?? == 2).then_some(()) }
    })
    .await;
    let open: String = c.hget(&live_key, "open_bucket").await.unwrap();
    assert!(open.contains("\"joins\":2"), "{open}");
    let ttl: i64 = c.ttl(&live_key).await.unwrap();
    assert!(ttl > 0 && ttl <= 86_400, "every key has a TTL: {ttl}");

    let buckets_key = format!("{p}:webinar:w-r:buckets");
    let first: Vec<String> = eventually("a final bucket reaches Redis", || {
        let (mut c, key) = (c.clone(), buckets_key.clone());
        async move {
            let v: Vec<String> = c
                .zrangebyscore(&key, now_ms() - 60_000, "+inf")
                .await
                .ok()?;
            (!v.is_empty()).then_some(v)
        }
    })
    .await;
    let bucket: serde_json::Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(bucket["webinar_id"], "w-r");
    assert_eq!(bucket["joins"], 2);
    assert!(c.ttl::<_, i64>(&buckets_key).await.unwrap() > 0);
    let _: () = redis::cmd("DEL")
        .arg(&live_key)
        .arg(&buckets_key)
        .query_async(&mut c)
        .await
        .unwrap();
}

/// One ping from each of the outage test's viewers, which stay live (ttl
/// 1.5 s) only while they are pinged.
async fn ping_all(app: &crate::helpers::TestApp) {
    for v in ["a", "b", "c"] {
        app.post(
            "/api/webinars/w-o/presence/ping",
            format!(r#"{{"viewer_id":"{v}"}}"#),
        )
        .await;
    }
}

struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services)");
        OwnRedis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_redis_outage_degrades_readiness_and_the_cache_is_rebuilt_after() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start(port);
    let url = redis.url();
    eventually("the private Redis is up", || async {
        redis::Client::open(url.as_str())
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let app = spawn_app_with(json!({"redis": {"url": url, "prefix": "ef"}})).await;
    app.post("/api/webinars/w-o/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    let live_key = "ef:webinar:w-o:live";
    eventually("the count reaches Redis", || async {
        let mut c = redis::Client::open(url.as_str())
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        (c.hget::<_, _, Option<u32>>(live_key, "live").await.ok()?? == 1).then_some(())
    })
    .await;

    drop(redis);
    app.post("/api/webinars/w-o/presence/ping", r#"{"viewer_id":"b"}"#)
        .await;
    app.post("/api/webinars/w-o/presence/ping", r#"{"viewer_id":"c"}"#)
        .await;
    let down_since = std::time::Instant::now();
    let degraded = eventually("/readyz names Redis", || async {
        let (status, v) = app.get("/readyz").await;
        // Named, but still ready: ingest and aggregation go on.
        (status == 200 && v["degraded"]["redis"].is_string()).then_some(v)
    })
    .await;
    assert_eq!(degraded["recovered"], true);
    // A 202 means the ping is durable; the engine counts it just after.
    app.wait_applied().await;
    let (_, live) = app.get("/api/webinars/w-o/live").await;
    assert_eq!(live["live"], 3, "aggregation goes on without Redis");
    // Steady ingest through a minute of outage.
    crate::helpers::steady_pings(
        &app,
        "w-o",
        &["a", "b", "c"],
        crate::helpers::OUTAGE.saturating_sub(down_since.elapsed()),
    )
    .await;
    eventually("aggregation went on without Redis: 3 live", || async {
        // The viewers stay live (ttl 1.5 s) however slowly this is polled.
        ping_all(&app).await;
        (app.get("/api/webinars/w-o/live").await.1["live"] == 3).then_some(())
    })
    .await;
    let (_, ready) = app.get("/readyz").await;
    assert!(ready["degraded"]["redis"].is_string(), "{ready}");

    // It comes back empty (no persistence): the cache is rebuilt.
    let _again = OwnRedis::start(port);
    eventually("Redis holds the latest count again", || async {
        // The viewers stay live (ttl 1.5 s) while Redis comes back.
        ping_all(&app).await;
        let mut c = redis::Client::open(url.as_str())
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        (c.hget::<_, _, Option<u32>>(live_key, "live").await.ok()?? == 3).then_some(())
    })
    .await;
    eventually("/readyz is ready again", || async {
        (app.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
}
