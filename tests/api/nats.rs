//! NATS: the JetStream stream as the event log (publish on ingest, the
//! durable consumer, acknowledgements, the dead-letter stream, live counts
//! on NATS), core mode, and a NATS server restarted during steady ingest.
//! Each test has its own subjects, streams and consumer on the machine's
//! NATS (127.0.0.1:4222), or its own nats-server where it must stop one.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, now_ms, spawn_app_with};

pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Names of one test's own subjects, streams and consumer.
pub struct Names {
    pub prefix: String,
    pub stream: String,
    pub dlq: String,
}

impl Names {
    pub fn new(tag: &str) -> Names {
        let n = format!(
            "{tag}{}x{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
        );
        Names {
            prefix: format!("eft.{n}"),
            stream: format!("EFT_{n}"),
            dlq: format!("EFT_{n}_DLQ"),
        }
    }

    pub fn settings(&self, url: &str, mode: &str) -> Value {
        json!({"nats": {
            "url": url,
            "mode": mode,
            "subject_prefix": self.prefix,
            "stream": self.stream,
            "dlq_stream": self.dlq,
            "consumer": "agg",
            "retain_days": 1,
        }})
    }

    /// The same, as environment variables for a service process.
    pub fn env(&self, url: &str) -> Vec<(String, String)> {
        vec![
            ("EVENTFLOW__NATS__URL".into(), url.into()),
            (
                "EVENTFLOW__NATS__SUBJECT_PREFIX".into(),
                self.prefix.clone(),
            ),
            ("EVENTFLOW__NATS__STREAM".into(), self.stream.clone()),
            ("EVENTFLOW__NATS__DLQ_STREAM".into(), self.dlq.clone()),
            ("EVENTFLOW__NATS__CONSUMER".into(), "agg".into()),
            ("EVENTFLOW__NATS__RETAIN_DAYS".into(), "1".into()),
        ]
    }
}

async fn js(url: &str) -> async_nats::jetstream::Context {
    async_nats::jetstream::new(async_nats::connect(url).await.expect("NATS is up"))
}

/// Every message of a stream, in order: (subject, payload, headers).
pub async fn stream_messages(
    url: &str,
    stream: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let js = js(url).await;
    let mut s = js.get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap().clone();
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return out;
    }
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(m) = s.get_raw_message(seq).await {
            out.push(m);
        }
    }
    out
}

/// The live count of `w`: 0 for a webinar never seen (404).
async fn live(app: &TestApp, w: &str) -> i64 {
    let (status, v) = app.get(&format!("/api/webinars/{w}/live")).await;
    match status {
        404 => 0,
        _ => {
            assert_eq!(status, 200, "{v}");
            v["live"].as_i64().unwrap()
        }
    }
}

#[tokio::test]
async fn jetstream_ingest_is_stored_before_202_then_counted_and_acknowledged() {
    let names = Names::new("ing");
    let client = async_nats::connect(NATS_URL).await.unwrap();
    let mut live_msgs = client
        .subscribe(format!("{}.live.w-1", names.prefix))
        .await
        .unwrap();
    let app = spawn_app_with(names.settings(NATS_URL, "jetstream")).await;

    let (status, body) = app
        .post(
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":"v-1","id":"e-1"}"#,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // In the stream, on its subject, stamped, with the id (scoped: it came
    // from a browser endpoint) as Nats-Msg-Id, by the time the 202 arrived.
    let stored = stream_messages(NATS_URL, &names.stream).await;
    let ping: Vec<_> = stored
        .iter()
        .filter(|m| m.subject.as_str() == format!("{}.presence.w-1", names.prefix))
        .collect();
    assert_eq!(ping.len(), 1);
    let event: Value = serde_json::from_slice(&ping[0].payload).unwrap();
    assert_eq!(event["viewer_id"], "v-1");
    assert!(event["ts"].as_i64().unwrap() > now_ms() - 60_000);
    assert_eq!(
        ping[0]
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str()),
        event["id"].as_str()
    );
    assert!(event["id"].as_str().unwrap().starts_with("pub-"), "{event}");

    eventually("the engine counts the viewer", || async {
        (live(&app, "w-1").await == 1).then_some(())
    })
    .await;
    let msg = tokio::time::timeout(Duration::from_secs(10), live_msgs.next())
        .await
        .expect("a live count on NATS")
        .unwrap();
    let v: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(
        (v["webinar_id"].as_str(), v["live"].as_i64()),
        (Some("w-1"), Some(1))
    );

    // An identifier that cannot be a subject is refused, naming the field.
    let (status, body) = app
        .post("/api/webinars/w..1/presence/ping", r#"{"viewer_id":"v"}"#)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("webinar_id:"),
        "{body}"
    );

    // The same event again (same id) is stored once.
    let (status, _) = app
        .post(
            "/api/webinars/w-1/presence/ping",
            r#"{"viewer_id":"v-1","id":"e-1"}"#,
        )
        .await;
    assert_eq!(status, 202);
    let again = stream_messages(NATS_URL, &names.stream).await;
    assert_eq!(
        again
            .iter()
            .filter(|m| m.subject.as_str().ends_with(".presence.w-1"))
            .count(),
        1,
        "deduplicated by Nats-Msg-Id"
    );

    // Ticks come back through the stream; buckets become final and stored.
    let path = format!("/api/webinars/w-1/stats/access?from={}", now_ms() - 60_000);
    eventually("a final bucket is stored", || async {
        let (_, v) = app.get(&path).await;
        (!v["buckets"].as_array()?.is_empty()).then_some(())
    })
    .await;
    assert!(
        stream_messages(NATS_URL, &names.stream)
            .await
            .iter()
            .any(|m| m.subject.as_str() == format!("{}.tick", names.prefix)),
        "ticks are written to the stream"
    );
    // Checkpoints acknowledge what they cover.
    let js = js(NATS_URL).await;
    eventually("the consumer's ack floor moves", || async {
        let mut c: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream(&names.stream)
            .await
            .ok()?
            .get_consumer("agg")
            .await
            .ok()?;
        (c.info().await.ok()?.ack_floor.stream_sequence >= 1).then_some(())
    })
    .await;
    let (_, ready) = app.get("/readyz").await;
    assert_eq!(ready["nats"]["caught_up"], true, "{ready}");
    assert!(ready["degraded"].as_object().unwrap().is_empty(), "{ready}");
    app.stop().await;
}

#[tokio::test]
async fn invalid_messages_go_to_the_dead_letter_stream_with_their_reason() {
    let names = Names::new("dlq");
    let app = spawn_app_with(names.settings(NATS_URL, "jetstream")).await;
    let js = js(NATS_URL).await;
    let p = &names.prefix;
    let publish = |subject: String, body: &'static str| {
        let js = js.clone();
        async move {
            js.publish(subject, body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    // Valid, without ts: applied at the stream's stored time.
    publish(
        format!("{p}.presence.w-2"),
        r#"{"type":"presence","webinar_id":"w-2","viewer_id":"ok","action":"ping"}"#,
    )
    .await;
    publish(
        format!("{p}.presence.w-2"),
        r#"{"type":"presence","webinar_id":"w-2","action":"ping","ts":1}"#,
    )
    .await;
    publish(
        format!("{p}.presence.w-3"),
        r#"{"type":"presence","webinar_id":"w-2","viewer_id":"x","action":"ping"}"#,
    )
    .await;
    publish(format!("{p}.pageview"), "not json").await;

    eventually("the valid one is counted", || async {
        (live(&app, "w-2").await == 1).then_some(())
    })
    .await;
    let dead = eventually("three messages are dead-lettered", || async {
        let m = stream_messages(NATS_URL, &names.dlq).await;
        (m.len() >= 3).then_some(m)
    })
    .await;
    assert_eq!(dead.len(), 3);
    let reason = |i: usize| {
        dead[i]
            .headers
            .get("EventFlow-Reason")
            .unwrap()
            .as_str()
            .to_owned()
    };
    assert!(reason(0).contains("viewer_id"), "{}", reason(0));
    assert!(reason(1).starts_with("subject:"), "{}", reason(1));
    assert!(!reason(2).is_empty());
    assert_eq!(
        dead[1].headers.get("EventFlow-Subject").unwrap().as_str(),
        format!("{p}.presence.w-3")
    );
    assert_eq!(
        &dead[2].payload[..],
        b"not json",
        "the original payload is kept"
    );
    app.stop().await;
}

#[tokio::test]
async fn core_mode_counts_what_arrives_on_the_subjects() {
    let names = Names::new("core");
    let app = spawn_app_with(names.settings(NATS_URL, "core")).await;
    let client = async_nats::connect(NATS_URL).await.unwrap();
    client
        .publish(
            format!("{}.presence.w-c", names.prefix),
            r#"{"type":"presence","webinar_id":"w-c","viewer_id":"a","action":"ping"}"#.into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let (status, _) = app
        .post("/api/webinars/w-c/presence/ping", r#"{"viewer_id":"b"}"#)
        .await;
    assert_eq!(status, 202);
    eventually("both viewers are live", || async {
        let n = live(&app, "w-c").await;
        (n == 2).then_some(())
    })
    .await;
    app.stop().await;
}

/// A nats-server of the test's own, on a free port, that can be stopped.
pub struct OwnNats {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    args: Vec<String>,
}

impl OwnNats {
    pub fn start() -> OwnNats {
        Self::start_with(&[])
    }

    /// With more arguments for nats-server (a login, say).
    pub fn start_with(args: &[&str]) -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = OwnNats {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn binary() -> &'static Path {
        [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("nats-server is installed (scripts/services installs it)")
    }

    pub fn restart(&mut self) {
        let child = Command::new(Self::binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server starts");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            c.wait().unwrap();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test]
async fn the_service_logs_in_to_nats_with_the_credentials_of_its_url() {
    let nats = OwnNats::start_with(&["--user", "ef", "--pass", "p@ss word"]);
    assert!(
        async_nats::connect(nats.url()).await.is_err(),
        "this nats-server refuses clients without the login"
    );
    let names = Names::new("login");
    let url = format!("nats://ef:p%40ss%20word@127.0.0.1:{}", nats.port);
    let app = spawn_app_with(names.settings(&url, "jetstream")).await;
    let (status, body) = app
        .post(
            "/api/webinars/w-login/presence/ping",
            r#"{"viewer_id":"v"}"#,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    eventually("the ping is counted through the stream", || async {
        (live(&app, "w-login").await == 1).then_some(())
    })
    .await;
    app.stop().await;
}

/// Waits until the final buckets of `w-f` hold `accepted` pings, and
/// asserts they hold no more.
async fn every_ping_counted_once(app: &TestApp, accepted: u64) {
    let path = format!("/api/webinars/w-f/stats/access?from={}", now_ms() - 600_000);
    let pings = eventually("every accepted ping is in a final bucket", || async {
        let (_, v) = app.get(&path).await;
        let total: u64 = v["buckets"]
            .as_array()?
            .iter()
            .map(|b| b["pings"].as_u64().unwrap_or(0))
            .sum();
        (total >= accepted).then_some(total)
    })
    .await;
    assert_eq!(pings, accepted, "nothing lost, nothing doubled");
}

/// One browser ping with a unique event id; counts it when accepted.
async fn ping(app: &TestApp, accepted: &mut u64) {
    let n = *accepted + 1;
    let body = format!(r#"{{"viewer_id":"v-{}","id":"p-{n}"}}"#, n % 7);
    let (status, v) = app.post("/api/webinars/w-f/presence/ping", body).await;
    assert_eq!(status, 202, "{v}");
    *accepted = n;
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[tokio::test]
async fn nats_restarted_during_steady_ingest_loses_and_doubles_nothing() {
    let mut nats = OwnNats::start();
    let names = Names::new("flt");
    let app = spawn_app_with(names.settings(&nats.url(), "jetstream")).await;
    let mut accepted = 0u64;
    for _ in 0..30 {
        ping(&app, &mut accepted).await;
    }
    nats.stop();
    // Ingest goes on (into the spool) and /readyz names NATS.
    for _ in 0..30 {
        ping(&app, &mut accepted).await;
    }
    eventually("/readyz names nats", || async {
        let (status, v) = app.get("/readyz").await;
        (status == 200 && v["degraded"]["nats"].is_string()).then_some(())
    })
    .await;
    nats.restart();
    for _ in 0..30 {
        ping(&app, &mut accepted).await;
    }
    eventually("NATS is no longer degraded", || async {
        let (_, v) = app.get("/readyz").await;
        v["degraded"].get("nats").is_none().then_some(())
    })
    .await;
    // Every accepted ping reaches the stream and is counted once.
    every_ping_counted_once(&app, accepted).await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spooled: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("eventflow_spooled_events_total "))
        .expect("the spool counter")
        .parse()
        .unwrap();
    assert!(spooled > 0, "the outage went through the spool");
    let stored = stream_messages(&nats.url(), &names.stream).await;
    let presence = stored
        .iter()
        .filter(|m| m.subject.as_str().contains(".presence."))
        .count() as u64;
    assert!(presence >= accepted, "{presence} stored of {accepted}");
    app.stop().await;
}

/// Viewers of the outage test, each pinging `w-o` about 6 times a second:
/// 50 pings a second together, evenly spread.
const VIEWERS: u64 = 8;
const PING_EVERY: Duration = Duration::from_millis(160);

/// Pings `w-o` until `stop`, one task per viewer, every ping with a unique
/// id. Returns how many each accepted; every one must be.
fn ping_steadily(
    app: &TestApp,
    stop: tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..VIEWERS)
        .map(|v| {
            let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
            tokio::spawn(async move {
                let offset = PING_EVERY * v as u32 / VIEWERS as u32;
                let mut every =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, PING_EVERY);
                let mut sent = 0u64;
                while !stop.is_cancelled() {
                    every.tick().await;
                    let body = format!(r#"{{"viewer_id":"v-{v}","id":"o-{v}-{sent}"}}"#);
                    let r = client
                        .post(format!("{base}/api/webinars/w-o/presence/ping"))
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
                    sent += 1;
                }
                sent
            })
        })
        .collect()
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
        .parse()
        .unwrap()
}

/// NATS is killed twice during a burst of pings on one webinar and
/// restarted while the pings go on. Every ping accepted during an outage
/// reaches the stream in the order it was accepted, ahead of those
/// accepted after it, so none is applied late and the buckets of the
/// outages show the viewers live; and the stored buckets are exactly what
/// the engine computes from the stream's messages, in stream order.
#[tokio::test]
async fn a_nats_outage_keeps_acceptance_order_so_no_spooled_event_is_late() {
    let mut nats = OwnNats::start();
    let names = Names::new("ord");
    let app = spawn_app_with(names.settings(&nats.url(), "jetstream")).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let pingers = ping_steadily(&app, stop.clone());
    let mut outages = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        nats.stop();
        let started = now_ms();
        tokio::time::sleep(Duration::from_secs(6)).await;
        outages.push((started, now_ms()));
        nats.restart();
        eventually("NATS is no longer degraded", || async {
            let (_, v) = app.get("/readyz").await;
            v["degraded"].get("nats").is_none().then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let mut accepted = 0;
    for p in pingers {
        accepted += p.await.unwrap();
    }
    assert!(accepted >= 50 * 20, "{accepted} pings accepted");
    assert!(
        metric(&app, "eventflow_spooled_events_total").await >= 50 * 10,
        "the outages went through the spool"
    );

    // Wait until the engine has applied the whole stream and ticks have
    // closed the buckets after the last ping.
    let url = nats.url();
    eventually("the engine applies the stream", || async {
        let (_, v) = app.get("/readyz").await;
        let last = stream_messages(&url, &names.stream).await.last()?.sequence;
        let applied: u64 = v["nats"]["applied"]
            .as_str()?
            .strip_prefix("seq:")?
            .parse()
            .ok()?;
        let ticks_after = stream_messages(&url, &names.stream)
            .await
            .iter()
            .rev()
            .take_while(|m| m.subject.ends_with(".tick"))
            .count();
        (applied >= last && ticks_after >= 3).then_some(())
    })
    .await;
    assert_eq!(
        metric(&app, "eventflow_late_records_total").await,
        0,
        "no record was applied late"
    );
    let dir = app.stop_keeping_dir().await;

    // The stream holds every accepted ping once.
    let messages = stream_messages(&url, &names.stream).await;
    let pings = messages
        .iter()
        .filter(|m| m.subject.contains(".presence."))
        .count() as u64;
    assert_eq!(pings, accepted, "every accepted ping stored once");

    // The model: the engine over the stream's messages, in stream order.
    let settings = crate::helpers::test_settings(dir.path(), names.settings(&url, "jetstream"));
    let subjects = eventflow::source::nats::Subjects::new(&names.prefix);
    let mut engine = eventflow::engine::Engine::new(settings.engine()).unwrap();
    for m in &messages {
        let stored = (m.time.unix_timestamp_nanos() / 1_000_000) as i64;
        let ev = subjects.decode(&m.subject, &m.payload, stored).unwrap();
        engine.apply(&ev, Some(stored)).unwrap();
    }
    assert_eq!(
        engine.counters().late,
        0,
        "the stream's order has no late record"
    );
    let expected: Vec<_> = engine
        .drain()
        .filter_map(|o| match o {
            eventflow::engine::Output::Presence(b) if &*b.webinar_id == "w-o" => Some(b.stats),
            _ => None,
        })
        .collect();
    let store = eventflow::sink::store::Store::embedded(dir.path())
        .await
        .unwrap();
    let stored = store.presence_buckets("w-o", 0, i64::MAX).await.unwrap();
    // Ticks written just before the stop may not have been applied: the
    // model may close a few more (empty) buckets at the end.
    let last = stored.last().expect("stored buckets").bucket_start;
    let expected: Vec<_> = expected
        .into_iter()
        .take_while(|b| b.bucket_start <= last)
        .collect();
    assert_eq!(stored, expected, "the stored buckets are the stream's");

    // The buckets wholly inside an outage show every viewer live.
    for (started, ended) in outages {
        let during: Vec<_> = stored
            .iter()
            .filter(|b| b.bucket_start >= started + 1_000 && b.bucket_end <= ended - 1_000)
            .collect();
        assert!(
            during.len() >= 3,
            "{} buckets of an outage: {stored:?}",
            during.len()
        );
        for b in during {
            assert_eq!(
                (b.min_concurrent, b.max_concurrent),
                (VIEWERS as u32, VIEWERS as u32),
                "every viewer live through the outage: {b:?}"
            );
            assert!(b.pings >= 25, "the outage's pings in their bucket: {b:?}");
        }
    }
}

/// Partitions (DESIGN §8): each event's subject carries the partition of
/// its key (FNV-1a 32 of the key, modulo nats.partitions), ticks go to every
/// partition, the service counts everything; restarting with another count
/// on the same stream is refused with an explanation.
#[tokio::test]
async fn partitioned_subjects_route_by_key_and_the_count_is_fixed() {
    let names = Names::new("part");
    let mut settings = names.settings(NATS_URL, "jetstream");
    settings["nats"]["partitions"] = json!(4);
    let app = spawn_app_with(settings.clone()).await;
    let webinars = ["w-17", "w-a", "w-b", "w-c", "w-d", "w-e"];
    for w in webinars {
        let (status, body) = app
            .post(
                &format!("/api/webinars/{w}/presence/ping"),
                r#"{"viewer_id":"v"}"#,
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let visit =
        json!({"type":"visit","client_id":"c-demo","campaign_id":"cmp-9","session_id":"s-1"});
    let (status, body) = app.post_batch(visit.to_string(), &app.token).await;
    assert_eq!(status, 202, "{body}");
    for w in webinars {
        eventually("the engine counts every webinar", || async {
            (live(&app, w).await == 1).then_some(())
        })
        .await;
    }
    let ticked = eventually("ticks on every partition", || async {
        let stored = stream_messages(NATS_URL, &names.stream).await;
        (0..4)
            .all(|n| {
                stored
                    .iter()
                    .any(|m| m.subject.as_str() == format!("{}.p{n}.tick", names.prefix))
            })
            .then_some(stored)
    })
    .await;
    for w in webinars {
        let n = eventflow::partition::of_key(w, 4);
        let subject = format!("{}.p{n}.presence.{w}", names.prefix);
        assert_eq!(
            ticked
                .iter()
                .filter(|m| m.subject.as_str() == subject)
                .count(),
            1,
            "{w} on {subject}"
        );
    }
    // The published vectors: w-17 is partition 1 of 4, c-demo partition 2.
    assert!(
        ticked
            .iter()
            .any(|m| m.subject.as_str() == format!("{}.p1.presence.w-17", names.prefix))
    );
    assert!(
        ticked
            .iter()
            .any(|m| m.subject.as_str() == format!("{}.p2.visit.cmp-9", names.prefix))
    );
    app.stop().await;

    settings["nats"]["partitions"] = json!(2);
    let err = eventflow::app::Application::build(crate::helpers::test_settings(
        tempfile::tempdir().unwrap().path(),
        settings,
    ))
    .await
    .err()
    .expect("another partition count is refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("nats.partitions") && text.contains("4 partition(s)"),
        "{text}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Three nats-servers of the test's own in one JetStream cluster on
/// loopback ports; any one can be killed.
struct OwnCluster {
    ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let nodes = (0..3)
            .map(|i| {
                Some(
                    Command::new(OwnNats::binary())
                        .args(["-a", "127.0.0.1", "-p", &ports[i].to_string(), "-js", "-sd"])
                        .arg(dirs[i].path())
                        .args(["--server_name", &format!("n{i}"), "--cluster_name", "eft"])
                        .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i])])
                        .args(["--routes", &all_routes])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        for port in &ports {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(std::time::Instant::now() < deadline, "nats-server starts");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        OwnCluster {
            ports,
            nodes,
            _dirs: dirs,
        }
    }

    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's URL (the test's own clients take one).
    fn first(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports[0])
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// JetStream on a three-node cluster with the streams replicated three
/// times (nats.replicas = 3): a node SIGKILLed during steady ingest —
/// whichever it is: the one the service talks to, the stream's leader or
/// another — loses nothing acknowledged and counts nothing twice.
#[tokio::test]
async fn a_cluster_node_killed_during_ingest_loses_nothing_acknowledged() {
    let mut cluster = OwnCluster::start();
    let names = Names::new("r3");
    let mut settings = names.settings(&cluster.url(), "jetstream");
    settings["nats"]["replicas"] = json!(3);
    let app = spawn_app_with(settings).await;
    let mut accepted = 0u64;
    for _ in 0..40 {
        ping(&app, &mut accepted).await;
    }
    let info = eventually("the replicated stream exists", || async {
        let mut stream = js(&cluster.first())
            .await
            .get_stream(&names.stream)
            .await
            .ok()?;
        let info = stream.info().await.ok()?.clone();
        info.cluster.as_ref()?.leader.as_ref()?;
        Some(info)
    })
    .await;
    assert_eq!(info.config.num_replicas, 3, "replicated three times");
    // Kill the stream's leader: the hardest case (a new leader is elected
    // while publishes wait).
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .and_then(|l| l.strip_prefix('n').and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    cluster.kill(leader);
    for _ in 0..80 {
        ping(&app, &mut accepted).await;
    }
    every_ping_counted_once(&app, accepted).await;
    app.stop().await;
}
