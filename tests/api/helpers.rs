//! One way to start the service for a test: [`spawn_app`], on port 0, with a
//! fresh data directory, short buckets and ttl, and a known signing secret.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventflow::app::Application;
use eventflow::config::Settings;
use figment::providers::Serialized;
use serde_json::{Value, json};

pub const SECRET: &str = "api-tests-signing-key-4f1c9a0e7b2d8e3f6a5b";

pub struct TestApp {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub token: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for tests: 1 s buckets, 1.5 s ttl, no idle lag, 50 ms pushes.
pub fn test_settings(dir: &Path, overrides: Value) -> Settings {
    let mut base = json!({
        "http": {"addr": "127.0.0.1:0", "rate_limit_per_sec": 0},
        "limits": {"new_entities_per_minute": 0},
        "data": {"dir": dir},
        "window": {"bucket_ms": 1000, "idle_lag_ms": 0},
        "presence": {"ttl_ms": 1500},
        "live": {"push_interval_ms": 50},
        "log": {"checkpoint_interval_ms": 500},
        "auth": {"secret": SECRET},
    });
    merge(&mut base, overrides);
    let figment = Settings::figment(None).merge(Serialized::defaults(base));
    Settings::from_figment(figment).expect("test settings are valid")
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(json!({})).await
}

pub async fn spawn_app_with(overrides: Value) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), overrides).await
}

/// The service on an existing data directory (a restart).
pub async fn spawn_app_in(dir: tempfile::TempDir, overrides: Value) -> TestApp {
    let settings = test_settings(dir.path(), overrides);
    let app = Application::build(settings).await.expect("the app builds");
    let addr = app.local_addr();
    let token = app.admin_token();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let test = TestApp {
        base: format!("http://{addr}"),
        addr,
        token,
        client,
        dir,
        stop: Some(stop),
        task: Some(task),
    };
    test.wait_ready().await;
    test
}

impl TestApp {
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        status_json(r).await
    }

    pub async fn post_batch(&self, body: impl Into<reqwest::Body>, token: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/api/events", self.base))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        status_json(r).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, &self.token).await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        status_json(r).await
    }

    pub async fn wait_ready(&self) {
        eventually("the service reports ready", || async {
            let r = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }

    /// Waits until the engine has applied everything committed to the log.
    pub async fn wait_applied(&self) {
        eventually("the engine catches up with the log", || async {
            let (_, v) = self.get("/readyz").await;
            (v["log"]["applied"] == v["log"]["committed"]).then_some(())
        })
        .await;
    }

    /// Stops the service the way SIGTERM does and waits for it.
    pub async fn stop(self) -> PathBuf {
        self.stop_keeping_dir().await.keep()
    }

    /// Waits (15 s at most) for the service to stop by itself; how it ended,
    /// and its data directory.
    pub async fn ended(mut self) -> (anyhow::Result<()>, tempfile::TempDir) {
        let task = self.task.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("the service stops by itself")
            .unwrap();
        (result, self.dir)
    }

    /// Stops the service and hands back its data directory.
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.dir
    }
}

async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `check` until it yields, or fails the test after 15 s. Waiting for
/// a condition, never for a fixed time.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A fresh Postgres database on the test server (scripts/services starts
/// it); its URL.
pub async fn fresh_postgres() -> String {
    let name = format!(
        "ef_api_{}_{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    let admin = eventflow::sink::store::Store::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("Postgres on 127.0.0.1:5432");
    admin
        .execute_admin(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await;
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// How long the fault tests keep a part down.
pub const OUTAGE: Duration = Duration::from_secs(60);

/// Steady ingest: each viewer pings `webinar` every 250 ms for `period`;
/// every ping must be accepted. Returns how many were sent.
pub async fn steady_pings(app: &TestApp, webinar: &str, viewers: &[&str], period: Duration) -> u64 {
    let until = Instant::now() + period;
    let mut sent = 0;
    while Instant::now() < until {
        for v in viewers {
            let (status, body) = app
                .post(
                    &format!("/api/webinars/{webinar}/presence/ping"),
                    format!(r#"{{"viewer_id":"{v}"}}"#),
                )
                .await;
            assert_eq!(status, 202, "ingest goes on during the outage: {body}");
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sent
}

/// A response header's value, if it has one.
pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}
