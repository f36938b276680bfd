//! `eventflow restore` (DESIGN §9): our logs (plain and gzip) and the web
//! app's page-view log, merged by `ts`, written into SQLite or Postgres as a
//! replay of the merged stream computes them; twice changes nothing.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use eventflow::engine::{Engine, EngineConfig};
use eventflow::sink::store::{Batch, Store};

const T0: i64 = 1_770_000_000_000;

/// Our log: presence and campaign events in time order, and a tick.
fn our_log() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        let ts = T0 + i * 7_000;
        out.push(format!(
            r#"{{"type":"presence","webinar_id":"w-1","viewer_id":"v-{}","action":"ping","ts":{ts}}}"#,
            i % 5
        ));
        out.push(format!(
            r#"{{"type":"visit","id":"v-{i}","client_id":"c1","campaign_id":"k1","session_id":"s-{}","link_id":"l-{}","ts":{}}}"#,
            i % 9,
            i % 3,
            ts + 1
        ));
        if i % 4 == 0 {
            out.push(format!(
                r#"{{"type":"conversion","client_id":"c1","campaign_id":"k1","entry_id":"e-{}","session_id":"s-{}","ts":{}}}"#,
                i % 6,
                (i + 2) % 9,
                ts + 2
            ));
        }
    }
    out.push(format!(r#"{{"type":"tick","ts":{}}}"#, T0 + 400_000));
    out
}

/// The middleware's page-view log: ISO timestamps, query objects, nulls, a
/// line logged twice and one broken line.
fn middleware_log() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..30i64 {
        let at = jiff::Timestamp::from_millisecond(T0 + i * 9_000 + 500).unwrap();
        out.push(format!(
            r#"{{"timestamp":"{at}","path":"/event/{}","method":"GET","query":{{"utm_source":"mail-{}","cid":null}},"referrer":null,"user_agent":"Mozilla/5.0","ip":"1.2.3.0","session_id":"s-{}","campaign_id":"k1","webinar_id":null,"client_id":"c1","status":"logged"}}"#,
            i % 4,
            i % 2,
            i % 9
        ));
    }
    let again = out[7].clone();
    out.insert(12, again);
    out.insert(3, r#"{"timestamp":"not a time","path":"/x"}"#.into());
    out
}

fn write_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let ours = dir.join("2026-02-02.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&ours).unwrap(),
        flate2::Compression::fast(),
    );
    for l in our_log() {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
    let pageviews = dir.join("pageviews-2026-02-02.jsonl");
    std::fs::write(&pageviews, middleware_log().join("\n")).unwrap();
    vec![ours, pageviews]
}

fn restore(data: &Path, postgres: Option<&str>, files: &[std::path::PathBuf]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eventflow"));
    cmd.arg("restore")
        .args(files)
        .env("EVENTFLOW__DATA__DIR", data);
    if let Some(url) = postgres {
        cmd.env("EVENTFLOW__POSTGRES__URL", url);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

async fn dump(store: &Store) -> Vec<String> {
    let mut rows: Vec<String> = store
        .all_presence()
        .await
        .unwrap()
        .into_iter()
        .map(|(w, s)| format!("{w} {s:?}"))
        .collect();
    rows.extend(store.campaign_dump().await.unwrap());
    rows
}

/// What a replay of the merged stream writes, computed here: the middleware
/// lines converted, both files merged by ts (ties: our log first).
async fn expected(dir: &Path) -> Vec<String> {
    let mut events: Vec<(i64, usize, String)> = our_log()
        .into_iter()
        .map(|l| {
            let ts = eventflow::event::decode(l.as_bytes())
                .unwrap()
                .ts()
                .unwrap();
            (ts, 0, l)
        })
        .collect();
    for l in middleware_log() {
        if let Some(Ok(json)) = eventflow::restore::middleware_pageview(l.as_bytes()) {
            let ts = eventflow::event::decode(json.as_bytes())
                .unwrap()
                .ts()
                .unwrap();
            events.push((ts, 1, json));
        }
    }
    events.sort_by_key(|(ts, file, _)| (*ts, *file));
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    for (_, _, json) in &events {
        engine
            .apply(&eventflow::event::decode(json.as_bytes()).unwrap(), None)
            .unwrap();
    }
    engine.finish();
    let batch = Batch::drained_from(&mut engine);
    let store = Store::embedded(&dir.join("expected")).await.unwrap();
    store.migrate().await.unwrap();
    store.write(&batch, 0).await.unwrap();
    dump(&store).await
}

#[tokio::test]
async fn restore_loads_both_log_formats_as_a_replay_and_twice_is_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(dir.path());
    let data = dir.path().join("data");
    let summary = restore(&data, None, &files);
    let lines = our_log().len() + middleware_log().len();
    assert!(
        summary.contains(&format!(
            "{lines} records read, {} applied, 1 duplicates, 1 invalid",
            lines - 2
        )),
        "{summary}"
    );
    assert!(
        summary.contains("pageviews-2026-02-02.jsonl:4: timestamp: must be"),
        "the invalid line is named by file and number: {summary}"
    );
    let store = Store::embedded(&data).await.unwrap();
    let first = dump(&store).await;
    store.close().await;
    assert!(first.iter().any(|r| r.starts_with("campaign_days")));
    assert!(first.iter().any(|r| r.starts_with("pageview_days c1")));
    assert!(first.iter().any(|r| r.starts_with("w-1 ")));
    assert_eq!(first, expected(dir.path()).await, "as a replay computes");

    restore(&data, None, &files);
    let store = Store::embedded(&data).await.unwrap();
    assert_eq!(dump(&store).await, first, "restoring twice changes nothing");
}

#[tokio::test]
async fn restore_into_postgres_writes_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(dir.path());
    let name = format!(
        "ef_restore_{}_{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    let admin = Store::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("Postgres on 127.0.0.1:5432 (scripts/services starts it)");
    admin
        .execute_admin(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    restore(&dir.path().join("data"), Some(&url), &files);
    restore(&dir.path().join("data"), Some(&url), &files);
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(dump(&store).await, expected(dir.path()).await);
    store.close().await;
    admin
        .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}
