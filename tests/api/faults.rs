//! Faults of the store: a Postgres of its own (on a free port) is stopped
//! for a minute during steady ingest, or is down when the service starts.
//! Ingest and aggregation go on, `/readyz` names the store, flushes retry,
//! and when Postgres returns every bucket is written.

use std::path::{Path, PathBuf};

use std::process::Command;

use serde_json::json;

use std::time::Duration;

use crate::helpers::{OUTAGE, eventually, now_ms, spawn_app_with, steady_pings};
use eventflow::engine::{Engine, Output};

/// A PostgreSQL server of the test's own, on a free port, that can be
/// stopped and started.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed")
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.pop().unwrap().join("bin").join(name)
}

/// Runs a PostgreSQL tool as the `postgres` user (it refuses root).
fn as_postgres(tool: &str, args: &[&str]) {
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(pg_bin(tool))
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{tool} {args:?}");
}

impl OwnPostgres {
    pub fn init() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        Command::new("chown")
            .args(["-R", "postgres", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        let data = dir.path().join("data");
        as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPostgres { dir, port };
        pg.start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log(self.dir.path()).as_str(),
                "-w",
                "start",
            ],
        );
    }

    pub fn stop(&self) {
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

fn log(dir: &Path) -> String {
    dir.join("log").display().to_string()
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn postgres_stopped_during_ingest_then_everything_is_written() {
    let pg = OwnPostgres::init();
    let app = spawn_app_with(json!({"postgres": {"url": pg.url()}})).await;
    let ping = |v: u32| format!(r#"{{"viewer_id":"v{v}"}}"#);
    app.post("/api/webinars/w-f/presence/ping", ping(0)).await;
    eventually("a bucket is in Postgres", || async {
        let path = format!("/api/webinars/w-f/stats/access?from={}", now_ms() - 600_000);
        let (_, v) = app.get(&path).await;
        (!v["buckets"].as_array()?.is_empty()).then_some(())
    })
    .await;

    pg.stop();
    let outage_started = now_ms();
    // Steady ingest: three viewers keep pinging.
    let degraded = eventually("/readyz names the store", || async {
        for v in 1..=3 {
            app.post("/api/webinars/w-f/presence/ping", ping(v)).await;
        }
        let (status, v) = app.get("/readyz").await;
        (status == 200 && v["degraded"]["store"].is_string()).then_some(v)
    })
    .await;
    assert_eq!(degraded["recovered"], true);
    let (status, live) = app.get("/api/webinars/w-f/live").await;
    assert_eq!(status, 200);
    // v1..v3 just pinged (v0 may or may not have expired yet).
    assert!(
        live["live"].as_u64().unwrap() >= 3,
        "aggregation goes on: {live}"
    );
    // Keep ingesting through a minute of outage.
    let left = OUTAGE.saturating_sub(Duration::from_millis((now_ms() - outage_started) as u64));
    steady_pings(&app, "w-f", &["v1", "v2", "v3"], left).await;
    let outage_ended = now_ms();
    assert!(outage_ended - outage_started >= 60_000);

    pg.start();
    eventually("/readyz no longer names the store", || async {
        app.get("/readyz").await.1["degraded"]
            .as_object()?
            .is_empty()
            .then_some(())
    })
    .await;
    let store = eventflow::sink::store::Store::connect(&pg.url())
        .await
        .unwrap();
    let rows = eventually("the buckets of the outage are written", || async {
        let rows = store.presence_buckets("w-f", 0, i64::MAX).await.ok()?;
        rows.iter()
            .any(|r| r.bucket_start >= outage_ended - 1_000)
            .then_some(rows)
    })
    .await;
    // No bucket is missing: 1 s buckets, contiguous while someone was live.
    let during: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.bucket_start >= outage_started - outage_started % 1000 && r.bucket_end <= outage_ended
        })
        .collect();
    assert!(during.len() >= 55, "{} buckets of the outage", during.len());
    for pair in during.windows(2) {
        assert_eq!(pair[0].bucket_end, pair[1].bucket_start, "no gap: {rows:?}");
    }
    let pings: u32 = rows.iter().map(|r| r.pings).sum();
    assert!(pings >= 4);
}

#[tokio::test]
async fn postgres_down_at_start_then_ingest_goes_on_and_everything_is_written() {
    let pg = OwnPostgres::init();
    pg.stop();
    // Ticks far behind the events: the rows depend on the log alone.
    let app = spawn_app_with(json!({
        "postgres": {"url": pg.url()},
        "window": {"idle_lag_ms": 315_360_000_000i64},
    }))
    .await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let why = ready["degraded"]["store"].as_str().unwrap_or_default();
    assert!(
        why.contains("Postgres at postgres://***@127.0.0.1:"),
        "names the part and the URL without credentials: {ready}"
    );

    // Four viewers pinging for 20 s, ending 5 s ago.
    let t0 = now_ms() - 25_000;
    let lines: Vec<String> = (0..80i64)
        .flat_map(|step| {
            (0..4i64).map(move |v| {
                let ts = t0 + step * 250 + v * 10;
                format!(
                    r#"{{"type":"presence","webinar_id":"w-s","viewer_id":"v{v}","action":"ping","ts":{ts}}}"#
                )
            })
        })
        .collect();
    for chunk in lines.chunks(40) {
        let (status, body) = app.post_batch(chunk.join("\n"), &app.token).await;
        assert_eq!(status, 202, "ingest goes on: {body}");
    }
    app.wait_applied().await;
    let (status, live) = app.get("/api/webinars/w-s/live").await;
    assert_eq!((status, live["live"].as_u64()), (200, Some(4)), "{live}");
    let (_, ready) = app.get("/readyz").await;
    assert!(ready["degraded"]["store"].is_string(), "{ready}");

    pg.start();
    eventually("/readyz no longer names the store", || async {
        app.get("/readyz").await.1["degraded"]
            .as_object()?
            .is_empty()
            .then_some(())
    })
    .await;
    // What an uninterrupted run computes: the engine over the log.
    let settings = crate::helpers::test_settings(app.dir.path(), json!({}));
    let mut engine = Engine::new(settings.engine()).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(app.dir.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            engine
                .apply(&eventflow::event::decode(line.as_bytes()).unwrap(), None)
                .unwrap();
        }
    }
    let expected: Vec<_> = engine
        .drain()
        .filter_map(|o| match o {
            Output::Presence(b) => Some(b.stats),
            _ => None,
        })
        .collect();
    assert!(expected.len() >= 18, "{} buckets", expected.len());
    let store = eventflow::sink::store::Store::connect(&pg.url())
        .await
        .unwrap();
    eventually("every bucket is written", || async {
        let rows = store.presence_buckets("w-s", 0, i64::MAX).await.ok()?;
        (rows == expected).then_some(())
    })
    .await;
    app.stop().await;
}

/// The service resumes from its checkpoint while Postgres is down; when
/// Postgres returns it turns out not to hold the rows before the
/// checkpoint (here: a new database). The service stops with an error
/// saying so, writing nothing, and the next start rebuilds every row from
/// the log.
#[tokio::test]
async fn a_store_found_behind_the_checkpoint_after_an_outage_stops_the_service_then_is_refilled() {
    let pg = OwnPostgres::init();
    let first = pg.url();
    let app = spawn_app_with(json!({"postgres": {"url": first}})).await;
    app.post("/api/webinars/w-b/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    let path = format!("/api/webinars/w-b/stats/access?from={}", now_ms() - 60_000);
    eventually("buckets are stored", || async {
        let (_, v) = app.get(&path).await;
        (v["buckets"].as_array()?.len() >= 2).then_some(())
    })
    .await;
    let dir = app.stop_keeping_dir().await;
    let before = eventflow::sink::store::Store::connect(&first)
        .await
        .unwrap();
    before.execute_admin("CREATE DATABASE fresh").await.unwrap();
    let written = before.presence_buckets("w-b", 0, i64::MAX).await.unwrap();
    before.close().await;
    pg.stop();

    let fresh = format!("{}/fresh", first.rsplit_once('/').unwrap().0);
    let settings = json!({"postgres": {"url": fresh}});
    let app = crate::helpers::spawn_app_in(dir, settings.clone()).await;
    let (_, ready) = app.get("/readyz").await;
    assert!(ready["degraded"]["store"].is_string(), "{ready}");
    pg.start();
    let (ended, dir) = app.ended().await;
    let err = ended.expect_err("the service stops").to_string();
    assert!(err.contains("behind the checkpoint"), "{err}");
    let store = eventflow::sink::store::Store::connect(&fresh)
        .await
        .unwrap();
    assert!(
        store.position("local-log").await.unwrap().is_none(),
        "nothing was written to the store behind"
    );

    let app = crate::helpers::spawn_app_in(dir, settings).await;
    eventually(
        "the rows before the checkpoint are written again",
        || async {
            let rows = store.presence_buckets("w-b", 0, i64::MAX).await.ok()?;
            (rows.len() >= written.len()).then_some(())
        },
    )
    .await;
    let rows = store.presence_buckets("w-b", 0, i64::MAX).await.unwrap();
    assert_eq!(&rows[..written.len()], &written[..]);
    app.stop().await;
}

#[tokio::test]
async fn redis_unreachable_at_start_is_reported_at_once() {
    // Nothing listens on port 1.
    let app = spawn_app_with(json!({
        "redis": {"url": "redis://user:hunter2@127.0.0.1:1/"},
        "http": {"addr": "localhost:0"},
    }))
    .await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200, "degraded, not down: {ready}");
    let why = ready["degraded"]["redis"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("Redis at redis://***@127.0.0.1:1/"),
        "{ready}"
    );
    assert!(!why.contains("hunter2"), "{why}");
    app.stop().await;
}
