//! Faults of the store: a Postgres of its own (on a free port) is stopped
//! for a minute during steady ingest. Aggregation goes on, `/readyz` names the store,
//! flushes retry, and when Postgres returns every bucket is written.

use std::path::{Path, PathBuf};

use std::process::Command;

use serde_json::json;

use std::time::Duration;

use crate::helpers::{OUTAGE, eventually, now_ms, spawn_app_with, steady_pings};

struct OwnPostgres {
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
    fn init() -> OwnPostgres {
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

    fn start(&self) {
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

    fn stop(&self) {
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

    fn url(&self) -> String {
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
    let store = eventflow::store::Store::connect(&pg.url()).await.unwrap();
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
