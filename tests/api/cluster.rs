//! Several instances sharing the partitions (DESIGN §8), as real processes
//! over the test NATS server and one Postgres database: an instance
//! SIGKILLed, one SIGSTOPped past its lease, one joining mid-stream. In
//! every case the final rows equal those of one instance over the same
//! events (which the restart tests hold equal to `eventflow replay`), and
//! a WebSocket on one instance follows a webinar another owns.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::Value;

use crate::helpers::{SECRET, eventually, now_ms};
use crate::live::next_json;
use crate::nats::{NATS_URL, Names, stream_messages};
use crate::restart::{
    Parts, Service, events, free_port, is_presence_row, post, replay, rows, run, start_with,
    terminate, wait_ready,
};
use eventflow::auth::{Scope, Signer};

const PARTITIONS: u32 = 6;
const LEASE_TTL_MS: u64 = 2_000;

/// One instance of a cluster: its data directory and its process.
struct Node {
    _dir: tempfile::TempDir,
    service: Option<Service>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut s) = self.service.take() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}

impl Node {
    fn start(name: &'static str, parts: Parts<'_>) -> Node {
        Node::start_with(name, parts, &[])
    }

    /// [`Node::start`] with more settings.
    fn start_with(name: &'static str, parts: Parts<'_>, more: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::env::var("CLUSTER_LOG").unwrap_or("warn".into());
        let mut env: Vec<(String, String)> = vec![
            ("EVENTFLOW__NATS__PARTITIONS".into(), PARTITIONS.to_string()),
            ("EVENTFLOW__NATS__LEASES".into(), "true".into()),
            (
                "EVENTFLOW__NATS__LEASE_TTL_MS".into(),
                LEASE_TTL_MS.to_string(),
            ),
            ("EVENTFLOW__NATS__INSTANCE".into(), name.into()),
            ("RUST_LOG".into(), log),
        ];
        env.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let service = Some(start_with(dir.path(), port, parts, &env));
        Node { _dir: dir, service }
    }

    fn service(&self) -> &Service {
        self.service.as_ref().expect("running")
    }

    fn signal(&self, signal: &str) {
        let pid = self.service().child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    fn kill(&mut self) {
        let mut s = self.service.take().expect("running");
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }

    async fn ready(&self, client: &reqwest::Client) -> Option<Value> {
        client
            .get(format!("{}/readyz", self.service().base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// The partitions it owns, with the stream sequence each has applied.
    async fn owned(&self, client: &reqwest::Client) -> Option<BTreeMap<u32, u64>> {
        let v = self.ready(client).await?;
        v["cluster"]["owned"]
            .as_array()?
            .iter()
            .map(|p| {
                let seq = p["applied"].as_str()?.strip_prefix("seq:")?.parse().ok()?;
                Some((p["partition"].as_u64()? as u32, seq))
            })
            .collect()
    }

    async fn metric(&self, client: &reqwest::Client, line_start: &str) -> f64 {
        let text = client
            .get(format!("{}/metrics", self.service().base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Waits until `nodes` own every partition between them, each once, each
/// at most its even share; returns who owns what.
async fn all_owned(client: &reqwest::Client, nodes: &[&Node]) -> Vec<BTreeSet<u32>> {
    let share = PARTITIONS.div_ceil(nodes.len() as u32) as usize;
    eventually("every partition owned exactly once", || async {
        let mut owned = Vec::new();
        for n in nodes {
            owned.push(
                n.owned(client)
                    .await?
                    .into_keys()
                    .collect::<BTreeSet<u32>>(),
            );
        }
        let total: usize = owned.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<u32> = owned.iter().flatten().copied().collect();
        (total == PARTITIONS as usize
            && union.len() == PARTITIONS as usize
            && owned.iter().all(|o| o.len() <= share))
        .then_some(owned)
    })
    .await
}

/// The last stream sequence of each partition's events.
async fn last_sequences(names: &Names) -> BTreeMap<u32, u64> {
    let mut last = BTreeMap::new();
    for m in stream_messages(NATS_URL, &names.stream).await {
        let p = m
            .subject
            .strip_prefix(&format!("{}.p", names.prefix))
            .and_then(|r| r.split('.').next())
            .and_then(|n| n.parse::<u32>().ok())
            .expect("a partitioned subject");
        last.insert(p, m.sequence);
    }
    last
}

/// Waits until the partitions' owners among `nodes` have applied all of
/// their events in the stream.
async fn all_applied(client: &reqwest::Client, nodes: &[&Node], names: &Names) {
    let last = last_sequences(names).await;
    eventually("every partition applied to its end", || async {
        let mut applied = BTreeMap::new();
        for n in nodes {
            applied.extend(n.owned(client).await?);
        }
        (applied.len() == PARTITIONS as usize
            && last.iter().all(|(p, seq)| applied.get(p) >= Some(seq)))
        .then_some(())
    })
    .await;
}

/// Every request here answers within seconds, or the test fails.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn admin_token() -> String {
    Signer::new(SECRET.as_bytes()).mint(Scope::Admin, now_ms() + 600_000)
}

/// The rows of one instance (unpartitioned, no leases) over the same events.
async fn one_instance_rows(chunks: &[&[String]]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::helpers::fresh_postgres().await;
    let names = Names::new("solo");
    let parts = Parts {
        postgres: Some(&pg),
        nats: Some(&names),
    };
    let rows = run(dir.path(), chunks, &[], parts).await;
    assert!(rows.len() > 150, "{} rows", rows.len());
    rows
}

fn stop_all(nodes: Vec<Node>) {
    for mut n in nodes {
        if let Some(s) = n.service.take() {
            terminate(s);
        }
    }
}

#[tokio::test]
async fn three_instances_one_sigkilled_leave_the_rows_of_one_instance() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(113).collect();
    let expected = one_instance_rows(&chunks).await;

    let client = http_client();
    let token = admin_token();
    let pg = crate::helpers::fresh_postgres().await;
    let names = Names::new("trio");
    let parts = Parts {
        postgres: Some(&pg),
        nats: Some(&names),
    };
    let mut nodes = vec![
        Node::start("a", parts),
        Node::start("b", parts),
        Node::start("c", parts),
    ];
    for n in &nodes {
        wait_ready(&client, n.service()).await;
    }
    let before = all_owned(&client, &nodes.iter().collect::<Vec<_>>()).await;
    assert!(
        before.iter().all(|o| o.len() == 2),
        "even shares: {before:?}"
    );

    let half = chunks.len() / 2;
    for (i, chunk) in chunks[..half].iter().enumerate() {
        post(&client, nodes[i % 3].service(), &token, chunk).await;
    }
    // Killed while it works on what just arrived.
    nodes[1].kill();
    let killed = Instant::now();
    let survivors = [&nodes[0], &nodes[2]];
    let after = all_owned(&client, &survivors).await;
    let takeover = killed.elapsed();
    assert!(
        takeover < Duration::from_millis(LEASE_TTL_MS) + Duration::from_secs(5),
        "taken over in {takeover:?}"
    );
    assert!(after.iter().all(|o| o.len() == 3), "{after:?}");
    for (i, chunk) in chunks[half..].iter().enumerate() {
        post(&client, survivors[i % 2].service(), &token, chunk).await;
    }
    all_applied(&client, &survivors, &names).await;
    nodes.remove(1);
    stop_all(nodes);
    let stored = rows(std::path::Path::new("/"), parts).await;
    assert_eq!(stored, expected);
    // And `eventflow replay` of the partitioned stream, in its order,
    // computes every stored bucket.
    let mut log = Vec::new();
    for m in stream_messages(NATS_URL, &names.stream).await {
        log.extend_from_slice(&m.payload);
        log.push(b'\n');
    }
    let (replayed, _) = replay(&log);
    for row in stored.iter().filter(|r| is_presence_row(r)) {
        assert!(
            replayed.contains(row),
            "stored row not in the replay: {row}"
        );
    }
}

#[tokio::test]
async fn an_owner_stopped_past_its_lease_writes_nothing_after_it_resumes() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(97).collect();
    let expected = one_instance_rows(&chunks).await;

    let client = http_client();
    let token = admin_token();
    let pg = crate::helpers::fresh_postgres().await;
    let names = Names::new("stall");
    let parts = Parts {
        postgres: Some(&pg),
        nats: Some(&names),
    };
    let nodes = vec![Node::start("a", parts), Node::start("b", parts)];
    for n in &nodes {
        wait_ready(&client, n.service()).await;
    }
    all_owned(&client, &nodes.iter().collect::<Vec<_>>()).await;
    let half = chunks.len() / 2;
    for chunk in &chunks[..half] {
        post(&client, nodes[1].service(), &token, chunk).await;
    }
    // b stalls with work in hand, past its lease: a takes everything over
    // and goes on with the rest of the events.
    nodes[1].signal("-STOP");
    let a = &nodes[0];
    eventually("a owns every partition", || async {
        (a.owned(&client).await?.len() == PARTITIONS as usize).then_some(())
    })
    .await;
    for chunk in &chunks[half..] {
        post(&client, a.service(), &token, chunk).await;
    }
    all_applied(&client, &[a], &names).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = rows(std::path::Path::new("/"), parts).await;
        if now == expected {
            break;
        }
        if Instant::now() > deadline {
            let extra: Vec<_> = now.iter().filter(|r| !expected.contains(r)).collect();
            let missing: Vec<_> = expected.iter().filter(|r| !now.contains(r)).collect();
            let first = now.iter().zip(&expected).position(|(a, b)| a != b);
            panic!(
                "a's rows are not one instance's: extra {extra:#?} missing {missing:#?}; {} rows, {} expected; first difference at {first:?}: {:?} vs {:?}",
                now.len(),
                expected.len(),
                first.map(|i| &now[i]),
                first.map(|i| &expected[i])
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // b wakes up believing it owns three partitions, with rows and a
    // checkpoint to write: none of it lands.
    nodes[1].signal("-CONT");
    let b = &nodes[1];
    eventually("b finds its leases lost", || async {
        (b.metric(&client, "eventflow_partition_moves_total{how=\"lost\"}")
            .await
            >= 3.0)
            .then_some(())
    })
    .await;
    assert!(
        rows(std::path::Path::new("/"), parts).await == expected,
        "nothing b wrote after it resumed"
    );
    // It then rejoins and takes its share again, from a's checkpoints.
    all_owned(&client, &nodes.iter().collect::<Vec<_>>()).await;
    all_applied(&client, &nodes.iter().collect::<Vec<_>>(), &names).await;
    stop_all(nodes);
    assert_eq!(rows(std::path::Path::new("/"), parts).await, expected);
}

#[tokio::test]
async fn an_instance_joining_mid_stream_moves_partitions_without_loss_or_double_counting() {
    let events = events();
    let chunks: Vec<&[String]> = events.chunks(89).collect();
    let expected = one_instance_rows(&chunks).await;

    let client = http_client();
    let token = admin_token();
    let pg = crate::helpers::fresh_postgres().await;
    let names = Names::new("join");
    let parts = Parts {
        postgres: Some(&pg),
        nats: Some(&names),
    };
    let mut nodes = vec![Node::start("a", parts)];
    wait_ready(&client, nodes[0].service()).await;
    all_owned(&client, &[&nodes[0]]).await;
    let half = chunks.len() / 2;
    for chunk in &chunks[..half] {
        post(&client, nodes[0].service(), &token, chunk).await;
    }
    nodes.push(Node::start("b", parts));
    wait_ready(&client, nodes[1].service()).await;
    // Events keep coming while the partitions move.
    for (i, chunk) in chunks[half..].iter().enumerate() {
        post(&client, nodes[i % 2].service(), &token, chunk).await;
    }
    let owned = all_owned(&client, &nodes.iter().collect::<Vec<_>>()).await;
    assert_eq!(owned[1].len(), 3, "b took its share: {owned:?}");
    assert!(
        nodes[0]
            .metric(&client, "eventflow_partition_moves_total{how=\"released\"}")
            .await
            >= 3.0
    );
    all_applied(&client, &nodes.iter().collect::<Vec<_>>(), &names).await;
    stop_all(nodes);
    assert_eq!(rows(std::path::Path::new("/"), parts).await, expected);
}

#[tokio::test]
async fn any_instance_serves_live_counts_and_reads_of_another_instances_partitions() {
    let client = http_client();
    let token = admin_token();
    let pg = crate::helpers::fresh_postgres().await;
    let names = Names::new("reads");
    let parts = Parts {
        postgres: Some(&pg),
        nats: Some(&names),
    };
    let redis_prefix = format!("efc{}", std::process::id());
    let redis = [
        ("EVENTFLOW__REDIS__URL", REDIS_URL),
        ("EVENTFLOW__REDIS__PREFIX", redis_prefix.as_str()),
    ];
    let nodes = vec![
        Node::start_with("a", parts, &redis),
        Node::start_with("b", parts, &redis),
    ];
    for n in &nodes {
        wait_ready(&client, n.service()).await;
    }
    let owned = all_owned(&client, &nodes.iter().collect::<Vec<_>>()).await;
    // A webinar and a client whose partitions b owns.
    let of_b = |prefix: &str| {
        (0..)
            .map(|i| format!("{prefix}-{i}"))
            .find(|id| owned[1].contains(&eventflow::partition::of_key(id, PARTITIONS)))
            .unwrap()
    };
    let (webinar, client_id) = (of_b("w"), of_b("c"));
    let a = nodes[0].service();
    let url = format!(
        "ws://{}/ws/webinars/{webinar}?token={token}",
        a.base.trim_start_matches("http://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "snapshot", "{first}");
    let ping = format!(
        r#"{{"type":"presence","webinar_id":"{webinar}","viewer_id":"v1","action":"ping","ts":{}}}"#,
        now_ms()
    );
    let visit = format!(
        r#"{{"type":"visit","id":"v-1","client_id":"{client_id}","campaign_id":"k","session_id":"s1","ts":{}}}"#,
        now_ms()
    );
    post(&client, a, &token, &[ping, visit]).await;
    let posted = Instant::now();
    loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "live" && m["live"] == 1 {
            break;
        }
    }
    let shown = posted.elapsed();
    assert!(shown < Duration::from_secs(1), "shown on a after {shown:?}");
    // And the owner's open bucket, as if connected to b.
    loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "open" {
            assert_eq!(m["open_bucket"]["max_concurrent"], 1, "{m}");
            break;
        }
    }
    // Reads of b's partitions on a: answered by b.
    let read = |path: String| {
        let (client, token) = (&client, &token);
        async move {
            let r = client
                .get(format!("{}{path}", a.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, live) = read(format!("/api/webinars/{webinar}/live")).await;
    assert_eq!((status, &live["live"]), (200, &Value::from(1)), "{live}");
    assert!(
        live["open_bucket"].is_object(),
        "the owner's open bucket: {live}"
    );
    eventually("the visit counted", || async {
        let (status, v) = read(format!("/api/clients/{client_id}/statistics/overview")).await;
        (status == 200 && v["campaigns"]["visits"] == 1).then_some(())
    })
    .await;

    // Redis: b writes the webinar's keys under its partition's token.
    let mut redis = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let p = eventflow::partition::of_key(&webinar, PARTITIONS);
    let live_key = format!("{redis_prefix}:webinar:{webinar}:live");
    let fence_key = format!("{redis_prefix}:fence:p{p}");
    let fenced: i64 = eventually("b's token fences the partition in Redis", || {
        let (mut redis, live_key, fence_key) = (redis.clone(), &live_key, &fence_key);
        async move {
            let live: Option<String> = redis.hget(live_key, "live").await.ok()?;
            let token: Option<i64> = redis.get(fence_key).await.ok()?;
            (live.as_deref() == Some("1")).then_some(token?)
        }
    })
    .await;
    assert!(fenced > 0);
    // A newer owner's token there: b's writes of that partition stop,
    // while another partition's go on.
    let _: () = redis.set(&fence_key, fenced + 1_000_000).await.unwrap();
    let other = (0..)
        .map(|i| format!("x-{i}"))
        .find(|id| eventflow::partition::of_key(id, PARTITIONS) != p)
        .unwrap();
    let ping = |w: &str, v: &str| {
        format!(
            r#"{{"type":"presence","webinar_id":"{w}","viewer_id":"{v}","action":"ping","ts":{}}}"#,
            now_ms()
        )
    };
    post(&client, a, &token, &[ping(&webinar, "v2")]).await;
    eventually("b counts the second viewer", || async {
        let (_, live) = read(format!("/api/webinars/{webinar}/live")).await;
        (live["live"] == 2).then_some(())
    })
    .await;
    post(&client, a, &token, &[ping(&other, "v1")]).await;
    let other_key = format!("{redis_prefix}:webinar:{other}:live");
    eventually("the other partition's webinar reaches Redis", || {
        let (mut redis, key) = (redis.clone(), &other_key);
        async move {
            let live: Option<String> = redis.hget(key, "live").await.ok()?;
            (live.as_deref() == Some("1")).then_some(())
        }
    })
    .await;
    let live: String = redis.hget(&live_key, "live").await.unwrap();
    assert_eq!(live, "1", "the fenced partition's key is left as it was");
    stop_all(nodes);
}

const REDIS_URL: &str = "redis://127.0.0.1:6379";
