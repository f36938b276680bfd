//! Restart without loss or double counting: a real `eventflow` process is
//! killed with SIGKILL at several moments while it ingests a known log, and
//! restarted each time. Its stored buckets must equal, row for row, those of
//! an uninterrupted run, and agree with `eventflow replay` over its log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eventflow::engine::PresenceBucket;
use eventflow::sink::store::Store;

use crate::helpers::{SECRET, eventually};
use crate::nats::{NATS_URL, Names, stream_messages};
use eventflow::auth::{Scope, Signer};

const T0: i64 = 1_700_000_040_000;

/// A deterministic log: 4 webinars, 48 viewers pinging about every second
/// for a simulated minute, some leaving and coming back, in time order.
pub(crate) fn events() -> Vec<String> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut out = Vec::new();
    for step in 0..60i64 {
        for v in 0..48u64 {
            let w = v % 4;
            let ts = T0 + step * 1000 + rand(900) as i64;
            if rand(10) == 0 {
                continue; // a missed heartbeat
            }
            let action = if rand(25) == 0 { "leave" } else { "ping" };
            out.push((ts, format!(
                r#"{{"type":"presence","webinar_id":"w-{w}","viewer_id":"u-{v}","action":"{action}","ts":{ts}}}"#
            )));
        }
        // Campaign traffic of two clients: visits (some by a crawler, some
        // with a link or a UTM), page views carrying UTMs, conversions with
        // repeated entries, and redelivered ids.
        for k in 0..6u64 {
            let ts = T0 + step * 1000 + rand(1000) as i64;
            let (client, campaign) = (k % 2, rand(3));
            let session = rand(40);
            let id = step as u64 * 6 + k;
            let line = match rand(4) {
                0 | 1 => {
                    let ua = if rand(10) == 0 {
                        "Googlebot/2.1"
                    } else {
                        "Mozilla/5.0"
                    };
                    let link = if rand(2) == 0 {
                        format!(r#","link_id":"l-{}""#, rand(4))
                    } else {
                        String::new()
                    };
                    let utm = match rand(3) {
                        0 => r#","utm":{"source":"news","medium":"email"}"#.to_owned(),
                        1 => format!(r#","utm":{{"source":"ads-{}"}}"#, rand(2)),
                        _ => String::new(),
                    };
                    format!(
                        r#"{{"type":"visit","id":"v-{id}","client_id":"c-{client}","campaign_id":"k-{campaign}","session_id":"s-{session}","webinar_id":"w-{campaign}","user_agent":"{ua}"{link}{utm},"ts":{ts}}}"#
                    )
                }
                2 => format!(
                    r#"{{"type":"pageview","id":"p-{id}","client_id":"c-{client}","campaign_id":"k-{campaign}","session_id":"s-{session}","path":"/p/{}","query":"utm_source=kakao&utm_medium=social+ad","ts":{ts}}}"#,
                    rand(5)
                ),
                _ => format!(
                    r#"{{"type":"conversion","id":"c-{id}","client_id":"c-{client}","campaign_id":"k-{campaign}","entry_id":"e-{}","session_id":"s-{session}","webinar_id":"w-{campaign}","ts":{ts}}}"#,
                    rand(60)
                ),
            };
            // Now and then the same event is delivered again.
            if rand(8) == 0 {
                out.push((ts, line.clone()));
            }
            out.push((ts, line));
        }
    }
    out.sort();
    out.into_iter().map(|(_, e)| e).collect()
}

pub(crate) struct Service {
    pub(crate) child: Child,
    pub(crate) base: String,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where a run keeps its data besides the data directory.
#[derive(Clone, Copy, Default)]
pub(crate) struct Parts<'a> {
    pub(crate) postgres: Option<&'a str>,
    pub(crate) nats: Option<&'a Names>,
}

/// The engine settings of every run here (not the defaults), read by the
/// service and by `eventflow replay` alike from a `--config` file.
pub(crate) const SETTINGS: &str = "[window]\nbucket_ms = 1000\n\n[presence]\nttl_ms = 1500\n";

fn start(dir: &Path, port: u16, parts: Parts<'_>) -> Service {
    start_with(dir, port, parts, &[])
}

/// [`start`] with more environment variables (settings of its own).
pub(crate) fn start_with(
    dir: &Path,
    port: u16,
    parts: Parts<'_>,
    extra: &[(String, String)],
) -> Service {
    let settings = dir.join("settings.toml");
    std::fs::write(&settings, SETTINGS).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eventflow"));
    cmd.arg("--config").arg(&settings);
    if let Some(url) = parts.postgres {
        cmd.env("EVENTFLOW__POSTGRES__URL", url);
    }
    if let Some(names) = parts.nats {
        cmd.envs(names.env(NATS_URL));
    }
    let child = cmd
        .arg("serve")
        .env("EVENTFLOW__DATA__DIR", dir)
        .env("EVENTFLOW__HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("EVENTFLOW__HTTP__RATE_LIMIT_PER_SEC", "0")
        .env("EVENTFLOW__LIMITS__NEW_ENTITIES_PER_MINUTE", "0")
        // Ticks stay far behind the log's historical times: the rows depend
        // on the records alone, so two runs can be compared.
        .env("EVENTFLOW__WINDOW__IDLE_LAG_MS", "315360000000")
        .env("EVENTFLOW__LOG__CHECKPOINT_INTERVAL_MS", "150")
        .env("EVENTFLOW__AUTH__SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("eventflow starts");
    Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

pub(crate) async fn wait_ready(client: &reqwest::Client, s: &Service) {
    eventually("the restarted service is ready", || async {
        let r = client.get(format!("{}/readyz", s.base)).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}

async fn wait_applied(client: &reqwest::Client, s: &Service, parts: Parts<'_>) {
    eventually("the engine applies the whole log", || async {
        let v: serde_json::Value = client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        match parts.nats {
            None => (v["log"]["applied"] == v["log"]["committed"]).then_some(()),
            Some(names) => {
                let last = stream_messages(NATS_URL, &names.stream)
                    .await
                    .last()
                    .map(|m| m.sequence)?;
                let applied = v["nats"]["applied"].as_str()?.strip_prefix("seq:")?;
                (applied.parse::<u64>().ok()? >= last).then_some(())
            }
        }
    })
    .await;
}

/// SIGTERM, then the exit within the promised 10 s.
pub(crate) fn terminate(mut s: Service) {
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "clean exit after SIGTERM: {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "exits within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) async fn post(client: &reqwest::Client, s: &Service, token: &str, chunk: &[String]) {
    let r = client
        .post(format!("{}/api/events", s.base))
        .bearer_auth(token)
        .body(chunk.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// The stored rows: presence buckets as replay lines, then campaign rows.
pub(crate) async fn rows(dir: &Path, parts: Parts<'_>) -> Vec<String> {
    let store = match parts.postgres {
        Some(url) => Store::connect(url).await.unwrap(),
        None => Store::embedded(dir).await.unwrap(),
    };
    let mut rows = presence_rows(&store).await;
    rows.extend(store.campaign_dump().await.unwrap());
    rows
}

pub(crate) fn is_presence_row(row: &str) -> bool {
    row.starts_with('{')
}

async fn presence_rows(store: &Store) -> Vec<String> {
    store
        .all_presence()
        .await
        .unwrap()
        .into_iter()
        .map(|(w, stats)| {
            let mut line = String::new();
            PresenceBucket {
                webinar_id: w.into(),
                stats,
            }
            .write_json_line(&mut line);
            line
        })
        .collect()
}

/// Runs the log through a service; `kill_after` lists chunk numbers after
/// which the process is SIGKILLed (after a pause of the given ms, so the
/// engine is caught at different points) and restarted.
pub(crate) async fn run(
    dir: &Path,
    chunks: &[&[String]],
    kill_after: &[(usize, u64)],
    parts: Parts<'_>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let token =
        Signer::new(SECRET.as_bytes()).mint(Scope::Admin, crate::helpers::now_ms() + 600_000);
    let port = free_port();
    let mut s = start(dir, port, parts);
    wait_ready(&client, &s).await;
    for (i, chunk) in chunks.iter().enumerate() {
        post(&client, &s, &token, chunk).await;
        if let Some((_, pause)) = kill_after.iter().find(|(k, _)| *k == i) {
            tokio::time::sleep(Duration::from_millis(*pause)).await;
            s.child.kill().unwrap();
            s.child.wait().unwrap();
            s = start(dir, port, parts);
            wait_ready(&client, &s).await;
        }
    }
    wait_applied(&client, &s, parts).await;
    terminate(s);
    rows(dir, parts).await
}

#[tokio::test]
async fn sigkill_at_any_moment_then_restart_yields_the_uninterrupted_buckets() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(97).collect();
    assert!(chunks.len() >= 20);

    let calm = tempfile::tempdir().unwrap();
    let uninterrupted = run(calm.path(), &chunks, &[], Parts::default()).await;
    assert!(uninterrupted.len() > 150, "{} rows", uninterrupted.len());

    let rough = tempfile::tempdir().unwrap();
    let kills = [(2, 0), (5, 40), (9, 5), (13, 120), (14, 0), (19, 300)];
    let interrupted = run(rough.path(), &chunks, &kills, Parts::default()).await;
    assert_eq!(interrupted.len(), uninterrupted.len());
    for (a, b) in uninterrupted.iter().zip(&interrupted) {
        assert_eq!(a, b);
    }

    // Every acknowledged event is in the log once, and the stored rows are
    // exactly what a replay of that log computes.
    let mut log = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(rough.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        log.extend(std::fs::read(f).unwrap());
    }
    let text = String::from_utf8(log.clone()).unwrap();
    let logged = text.lines().filter(|l| !l.contains("\"tick\"")).count();
    assert_eq!(
        logged,
        events.len(),
        "each acknowledged event logged exactly once"
    );
    let campaign_rows = interrupted.iter().filter(|r| !is_presence_row(r)).count();
    assert!(campaign_rows > 100, "{campaign_rows} campaign rows");
    let (replayed, summary) = replay(&log);
    for row in interrupted.iter().filter(|r| is_presence_row(r)) {
        assert!(
            replayed.contains(row),
            "stored row not in the replay: {row}"
        );
    }
    let pings_posted = events.iter().filter(|e| e.contains("\"ping\"")).count();
    assert!(
        summary.contains(&format!("{} records read", text.lines().count())),
        "{summary}"
    );
    assert!(pings_posted > 2000);
}

/// `eventflow replay` of a log, with the services' configuration file: its
/// rows, and its stderr summary.
pub(crate) fn replay(log: &[u8]) -> (std::collections::HashSet<String>, String) {
    let settings = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(settings.path(), SETTINGS).unwrap();
    let replay = Command::new(env!("CARGO_BIN_EXE_eventflow"))
        .arg("--config")
        .arg(settings.path())
        .args(["replay", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = {
        use std::io::Write;
        let mut replay = replay;
        replay.stdin.take().unwrap().write_all(log).unwrap();
        replay.wait_with_output().unwrap()
    };
    assert!(out.status.success());
    let rows = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    (rows, String::from_utf8(out.stderr).unwrap())
}

#[tokio::test]
async fn with_postgres_sigkills_leave_the_same_rows_as_an_uninterrupted_run() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(131).collect();
    let calm = tempfile::tempdir().unwrap();
    let calm_pg = crate::helpers::fresh_postgres().await;
    let pg = |url| Parts {
        postgres: Some(url),
        nats: None,
    };
    let uninterrupted = run(calm.path(), &chunks, &[], pg(&calm_pg)).await;
    let rough = tempfile::tempdir().unwrap();
    let rough_pg = crate::helpers::fresh_postgres().await;
    let kills = [(1, 10), (4, 0), (8, 200), (11, 60)];
    let interrupted = run(rough.path(), &chunks, &kills, pg(&rough_pg)).await;
    assert!(uninterrupted.len() > 150, "{} rows", uninterrupted.len());
    assert_eq!(interrupted, uninterrupted, "Postgres rows, row for row");
    // And the same rows as the embedded store computes.
    let sqlite = tempfile::tempdir().unwrap();
    assert_eq!(
        run(sqlite.path(), &chunks, &[], Parts::default()).await,
        uninterrupted
    );
}

/// Production mode: JetStream is the log, Postgres the store. A service
/// SIGKILLed at several moments while the log is published through it, and
/// restarted each time, leaves the Postgres rows of an uninterrupted run,
/// and those are the rows `eventflow replay` computes from the stream.
#[tokio::test]
async fn with_jetstream_and_postgres_sigkills_leave_the_uninterrupted_rows() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(113).collect();
    let calm = tempfile::tempdir().unwrap();
    let calm_pg = crate::helpers::fresh_postgres().await;
    let calm_nats = Names::new("calm");
    let calm_parts = Parts {
        postgres: Some(&calm_pg),
        nats: Some(&calm_nats),
    };
    let uninterrupted = run(calm.path(), &chunks, &[], calm_parts).await;
    assert!(uninterrupted.len() > 150, "{} rows", uninterrupted.len());

    let rough = tempfile::tempdir().unwrap();
    let rough_pg = crate::helpers::fresh_postgres().await;
    let rough_nats = Names::new("rough");
    let parts = Parts {
        postgres: Some(&rough_pg),
        nats: Some(&rough_nats),
    };
    let kills = [
        (1, 0),
        (3, 30),
        (6, 5),
        (10, 150),
        (11, 0),
        (16, 400),
        (19, 60),
    ];
    let interrupted = run(rough.path(), &chunks, &kills, parts).await;
    assert_eq!(interrupted, uninterrupted, "Postgres rows, row for row");

    // The stream holds every posted event once; replaying it gives the rows.
    let mut log = Vec::new();
    let mut stored = 0;
    for m in stream_messages(NATS_URL, &rough_nats.stream).await {
        stored += usize::from(!m.subject.ends_with(".tick"));
        log.extend_from_slice(&m.payload);
        log.push(b'\n');
    }
    let distinct: std::collections::HashSet<&String> = events.iter().collect();
    assert!(distinct.len() < events.len(), "some events are redelivered");
    assert_eq!(
        stored,
        distinct.len(),
        "each posted event stored once (a redelivered id once)"
    );

    let (replayed, _) = replay(&log);
    let interrupted: Vec<String> = interrupted
        .into_iter()
        .filter(|r| is_presence_row(r))
        .collect();
    for row in &interrupted {
        assert!(
            replayed.contains(row),
            "stored row not in the replay: {row}"
        );
    }
    // The replay also closes, at the end of its input, the buckets the
    // service still holds open (its ticks are far behind): those alone are
    // missing from the store.
    let start = |row: &str| -> (String, i64) {
        let v: serde_json::Value = serde_json::from_str(row).unwrap();
        (
            v["webinar_id"].as_str().unwrap().to_owned(),
            v["bucket_start"].as_i64().unwrap(),
        )
    };
    let mut last_stored = std::collections::HashMap::new();
    for row in &interrupted {
        let (w, b) = start(row);
        let e = last_stored.entry(w).or_insert(b);
        *e = (*e).max(b);
    }
    for row in replayed.iter().filter(|r| !interrupted.contains(r)) {
        let (w, b) = start(row);
        assert!(
            b > last_stored[&w],
            "a closed bucket missing from the store: {row}"
        );
    }
}

#[tokio::test]
async fn a_store_behind_the_checkpoint_is_refilled_from_the_log() {
    use crate::helpers::{now_ms, spawn_app, spawn_app_in};
    let app = spawn_app().await;
    app.post("/api/webinars/w-lost/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    let path = format!(
        "/api/webinars/w-lost/stats/access?from={}",
        now_ms() - 60_000
    );
    let before = eventually("buckets are stored", || async {
        let (_, v) = app.get(&path).await;
        let b = v["buckets"].as_array()?.clone();
        (b.len() >= 2).then_some(b)
    })
    .await;
    let dir = app.stop_keeping_dir().await;
    assert!(dir.path().join("checkpoint.bin").exists());
    // The store is lost (a new database, or an older backup).
    for f in ["eventflow.db", "eventflow.db-wal", "eventflow.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let app = spawn_app_in(dir, serde_json::json!({})).await;
    let after = eventually("the lost buckets are written again", || async {
        let (_, v) = app.get(&path).await;
        let b = v["buckets"].as_array()?.clone();
        (b.len() >= before.len()).then_some(b)
    })
    .await;
    assert_eq!(&after[..before.len()], &before[..]);
}

/// Postgres goes down during ingest; the service is SIGKILLed twice while
/// it is down and each time starts again and takes events, Postgres still
/// down. When Postgres returns, its rows are those of an uninterrupted run
/// on a healthy store.
#[tokio::test]
async fn sigkilled_during_a_postgres_outage_it_starts_again_and_leaves_the_uninterrupted_rows() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(131).collect();
    let calm = tempfile::tempdir().unwrap();
    let calm_pg = crate::helpers::fresh_postgres().await;
    let uninterrupted = run(
        calm.path(),
        &chunks,
        &[],
        Parts {
            postgres: Some(&calm_pg),
            nats: None,
        },
    )
    .await;
    assert!(uninterrupted.len() > 150, "{} rows", uninterrupted.len());

    let pg = crate::faults::OwnPostgres::init();
    let url = pg.url();
    let parts = Parts {
        postgres: Some(&url),
        nats: None,
    };
    let rough = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let token =
        Signer::new(SECRET.as_bytes()).mint(Scope::Admin, crate::helpers::now_ms() + 600_000);
    let port = free_port();
    let mut s = start(rough.path(), port, parts);
    wait_ready(&client, &s).await;
    let (before, rest) = chunks.split_at(6);
    for chunk in before {
        post(&client, &s, &token, chunk).await;
    }
    wait_applied(&client, &s, parts).await;
    eventually("a checkpoint covers rows in Postgres", || async {
        rough.path().join("checkpoint.bin").exists().then_some(())
    })
    .await;

    pg.stop();
    for (i, part) in rest.chunks(5).enumerate() {
        for chunk in part {
            post(&client, &s, &token, chunk).await;
        }
        if i < 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            s.child.kill().unwrap();
            s.child.wait().unwrap();
            s = start(rough.path(), port, parts);
            wait_ready(&client, &s).await;
            let ready: serde_json::Value = client
                .get(format!("{}/readyz", s.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                ready["degraded"]["store"].is_string(),
                "started with Postgres down: {ready}"
            );
        }
    }
    wait_applied(&client, &s, parts).await;
    pg.start();
    eventually("the store is no longer degraded", || async {
        let v: serde_json::Value = client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["degraded"].as_object()?.is_empty().then_some(())
    })
    .await;
    terminate(s);
    assert_eq!(
        rows(rough.path(), parts).await,
        uninterrupted,
        "Postgres rows, row for row"
    );
}
