//! NATS benchmark: how close EventFlow gets to what NATS itself delivers.
//!
//! Each path is measured twice on the same records: once with a null
//! reader that only receives (the ceiling) and once with the service
//! in-process doing the real work. The records are the presence workload of
//! `common` (2 000 webinars, 100 000 viewers; pings and leaves in arrival
//! order, ticks left out), serialised exactly as DESIGN §5 puts them on the
//! wire and published to `<prefix>.presence.<webinar_id>`.
//!
//! 1. **Core ceiling**: a null subscriber on `<prefix>.presence.>` counts
//!    messages while a publisher on another connection sends all N records
//!    as fast as the client takes them (then flushes). Rate = received /
//!    time from the first publish to the last receipt; core NATS may drop,
//!    so the loss is reported too.
//! 2. **EventFlow core**: the service in `core` mode on its own prefix; the
//!    same publisher, flat out first. Rate = records applied / time from
//!    the first publish until the engine's
//!    `records{type="presence",outcome="applied"}` counter (polled every
//!    5 ms) stops moving. Core NATS drops messages for a subscriber that
//!    falls behind, so when anything is lost the run is repeated with the
//!    publisher paced at 95 %, 90 %, … of the ceiling: the sustained rate is
//!    the first pace at which every record is applied.
//! 3. **JetStream ceiling**: a file-storage stream on `<prefix>.presence.>`,
//!    filled with acknowledged publishes (a sliding window of
//!    [`ACK_WINDOW`] in flight; that publish rate is reported too), then
//!    read by a null durable pull consumer that does only what the protocol
//!    needs ([`null_pull`]: one inbox subscription, pull requests of
//!    [`BATCH`] kept more than a batch ahead, status messages told apart,
//!    nothing kept) and acknowledges (ack-all) the latest message at most
//!    once a second, the service's checkpoint interval here
//!    (`EVENTFLOW_BENCH_CEILING_ACK=chunk` acks every batch instead, `none`
//!    uses `AckPolicy::None`). Rate = N / time from creating the consumer
//!    to the last message. A second null consumer then reads the same
//!    stream through async-nats's pull stream ([`library_pull`], `info()`
//!    per message), as the service did before: reported beside it.
//! 4. **EventFlow JetStream, catch-up**: the same N records published to
//!    the service's own stream (created here as the service would create
//!    it), then the service is built in `jetstream` mode. Rate = N / time
//!    from `Application::build` until the applied counter reaches N,
//!    startup included. It must be exactly N, with no invalid or duplicate
//!    record: the benchmark exits with an error otherwise.
//! 5. **JetStream steady state**: the publisher (its own connection)
//!    publishes the N records while they are read: first by the null
//!    consumer, then by the service, each on a fresh stream. Rate = N /
//!    time from the first publish to the last record read (applied); the
//!    service must apply exactly N.
//!
//! The table at the end gives EventFlow ÷ ceiling for both paths (the
//! target is ≥ 90 %), JetStream both caught up and steady. Every phase has its own subjects, streams and
//! consumer, so runs never interfere; the streams are deleted at the end.
//!
//! `EVENTFLOW_BENCH_ONLY=core` or `=jetstream` runs only EventFlow's own
//! phase of that path (core at full speed), for profiling it alone.
//!
//! `EVENTFLOW_BENCH_RECORDS` sets N (default 1 000 000); NATS is expected
//! on `EVENTFLOW_BENCH_NATS_URL` (default `nats://127.0.0.1:4222`);
//! `EVENTFLOW_BENCH_LOG` (a `tracing` filter such as `info`) shows the
//! service's own log on stderr.
//!
//! The details table also gives CPU per record of this process (publisher,
//! readers and service) and of the local nats-server, from `/proc`: on a
//! small machine everything shares the same cores, so the service's own
//! CPU is what it costs against the ceiling.

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use async_nats::jetstream::{self, consumer::pull, stream};
use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use eventflow::app::Application;
use eventflow::config::Settings;
use eventflow::metrics::{Metrics, RecordLabels};
use eventflow::source::nats::Subjects;
use figment::providers::Serialized;
use futures_util::StreamExt;
use serde_json::json;

use common::{Spec, Workload};

/// Acknowledged publishes in flight at once (the client allows 5 000).
const ACK_WINDOW: usize = 4_000;

/// Messages per pull and per chunk, as in `eventflow::source::nats`.
const BATCH: usize = eventflow::source::nats::BATCH;

/// How often the service's counters are read.
const POLL: Duration = Duration::from_millis(5);

/// A reader that sees nothing new for this long has seen everything it
/// will see.
const IDLE: Duration = Duration::from_secs(3);

/// The workload's size: webinars and viewers.
const WEBINARS: u32 = 2_000;
const VIEWERS: u32 = 100_000;

fn nats_url() -> String {
    std::env::var("EVENTFLOW_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn records_wanted() -> usize {
    std::env::var("EVENTFLOW_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(1_000_000)
}

/// The first N presence records of the workload, ready to publish:
/// payloads share one buffer, subjects are built per prefix.
struct Records {
    payloads: Vec<Bytes>,
    /// Each record's webinar (an index into `webinar_ids`).
    webinar: Vec<u32>,
    webinar_ids: Vec<&'static str>,
}

impl Records {
    /// Simulates long enough for `n` records: `n / VIEWERS` minutes of
    /// pings after everyone joined, with margin, doubled until it is enough.
    fn generate(n: usize) -> Records {
        let minutes = (n as u64).div_ceil(u64::from(VIEWERS)) + 1;
        let mut duration_ms = 180_000 + minutes * 78_000;
        loop {
            let spec = Spec {
                webinars: WEBINARS,
                viewers: VIEWERS,
                warm_ms: 0,
                duration_ms: u32::try_from(duration_ms).expect("N fits in 49 simulated days"),
                ticks: false,
                ..Spec::standard()
            };
            let workload = Workload::generate(spec);
            if workload.measured.len() < n {
                duration_ms *= 2;
                continue;
            }
            let recs = &workload.measured[..n];
            let lines = workload.json_lines(recs);
            let bytes = Bytes::from(lines.bytes);
            return Records {
                payloads: lines
                    .lines
                    .iter()
                    .map(|&(s, e)| bytes.slice(s..e))
                    .collect(),
                webinar: recs
                    .iter()
                    .map(|r| workload.webinar_of[r.viewer as usize])
                    .collect(),
                webinar_ids: workload.ids.webinar.clone(),
            };
        }
    }

    fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Each webinar's presence subject under `prefix`.
    fn subjects(&self, prefix: &str) -> Vec<Subject> {
        self.webinar_ids
            .iter()
            .map(|w| Subject::from(format!("{prefix}.presence.{w}")))
            .collect()
    }

    /// `(subject, payload)` for every record, in order.
    fn messages<'a>(
        &'a self,
        subjects: &'a [Subject],
    ) -> impl Iterator<Item = (Subject, Bytes)> + 'a {
        self.webinar
            .iter()
            .zip(&self.payloads)
            .map(|(&w, p)| (subjects[w as usize].clone(), p.clone()))
    }
}

/// One phase's own subjects, stream names and consumer.
struct Names {
    prefix: String,
    stream: String,
    dlq: String,
    consumer: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let run = format!(
            "{}x{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is after 1970")
                .as_nanos()
                % 1_000_000_000_000
        );
        Names {
            prefix: format!("efb.{run}.{tag}"),
            stream: format!("EFB_{run}_{tag}"),
            dlq: format!("EFB_{run}_{tag}_DLQ"),
            consumer: format!("efb-{tag}"),
        }
    }

    /// The service's settings for these names in `mode`.
    fn settings(&self, dir: &Path, mode: &str) -> anyhow::Result<Settings> {
        let over = json!({
            "http": {"addr": "127.0.0.1:0", "rate_limit_per_sec": 0},
            "limits": {"new_entities_per_minute": 0},
            "data": {"dir": dir},
            // Ticks stamped ten years back never move the workload's clocks.
            "window": {"idle_lag_ms": 315_360_000_000_i64},
            "log": {"checkpoint_interval_ms": 1_000},
            "auth": {"secret": "bench-signing-key-0f3e5d7c9b1a2f4e6d8c0b2a"},
            "nats": {
                "url": nats_url(),
                "mode": mode,
                "subject_prefix": self.prefix,
                "stream": self.stream,
                "dlq_stream": self.dlq,
                "consumer": self.consumer,
                "retain_days": 1,
            },
        });
        Settings::from_figment(Settings::figment(None).merge(Serialized::defaults(over)))
    }
}

/// CPU time used so far by this process (publisher, readers and the
/// in-process service alike) and by the local nats-server, read from
/// `/proc` (Linux). On a 2-core machine the paths compete for the same
/// cores, so CPU per record explains most of a ratio.
#[derive(Clone, Copy)]
struct Cpu {
    own: Option<Duration>,
    nats: Option<Duration>,
}

/// CPU per record over a measured window, in microseconds.
#[derive(Clone, Copy, Default)]
struct CpuUse {
    own: Option<f64>,
    nats: Option<f64>,
}

impl Cpu {
    fn now() -> Cpu {
        Cpu {
            own: process_cpu("self"),
            nats: nats_server_pid().and_then(|pid| process_cpu(&pid)),
        }
    }

    /// Microseconds per record since `self`.
    fn per_record(self, records: u64) -> CpuUse {
        let later = Cpu::now();
        let per = |a: Option<Duration>, b: Option<Duration>| {
            Some((b?.saturating_sub(a?)).as_secs_f64() * 1e6 / records.max(1) as f64)
        };
        CpuUse {
            own: per(self.own, later.own),
            nats: per(self.nats, later.nats),
        }
    }
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        write!(f, "{} / {}", show(self.own), show(self.nats))
    }
}

/// User plus system time of a process (`self` or a pid), all threads.
fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command: state is the first, utime
    // the 12th and stime the 13th, in clock ticks (USER_HZ, 100 on Linux).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The pid of the machine's nats-server, when there is exactly one.
fn nats_server_pid() -> Option<String> {
    let mut found = std::fs::read_dir("/proc").ok()?.filter_map(|e| {
        let e = e.ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim_end() == "nats-server").then(|| e.file_name().to_string_lossy().into_owned())
    });
    let pid = found.next()?;
    found.next().is_none().then_some(pid)
}

/// Streams created during the run, deleted at the end whatever happened.
#[derive(Default)]
struct Cleanup {
    streams: Vec<String>,
}

impl Cleanup {
    async fn run(self, js: &jetstream::Context) {
        for name in self.streams {
            match js.delete_stream(&name).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("not found") => {}
                Err(e) => eprintln!("deleting stream {name}: {e}"),
            }
        }
    }
}

async fn connect(name: &str) -> anyhow::Result<Client> {
    let url = nats_url();
    async_nats::ConnectOptions::new()
        .name(name)
        .connect(&url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))
}

/// Publishes every record with core NATS, as fast as the client takes them
/// or paced at `per_sec` (in steps of [`BATCH`] records), then flushes.
async fn publish_core(
    client: &Client,
    records: &Records,
    subjects: &[Subject],
    per_sec: Option<f64>,
) -> anyhow::Result<()> {
    let start = tokio::time::Instant::now();
    for (i, (subject, payload)) in records.messages(subjects).enumerate() {
        if let Some(r) = per_sec
            && i % BATCH == 0
        {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / r)).await;
        }
        client.publish(subject, payload).await?;
    }
    client.flush().await?;
    Ok(())
}

/// Publishes every record to JetStream, keeping [`ACK_WINDOW`]
/// acknowledgements in flight; returns when all are acknowledged.
async fn publish_jetstream(
    js: &jetstream::Context,
    records: &Records,
    subjects: &[Subject],
) -> anyhow::Result<()> {
    let mut inflight = VecDeque::with_capacity(ACK_WINDOW);
    for (subject, payload) in records.messages(subjects) {
        if inflight.len() == ACK_WINDOW
            && let Some(ack) = inflight.pop_front()
        {
            ack.await?;
        }
        inflight.push_back(js.publish(subject, payload).await?);
    }
    for ack in inflight {
        ack.await?;
    }
    Ok(())
}

/// The file-storage stream the service would create for `names` (with
/// `subjects`), created ahead of it.
async fn create_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: Vec<String>,
) -> anyhow::Result<()> {
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(86_400),
        max_bytes: -1,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating stream {name}"))?;
    Ok(())
}

fn counter(metrics: &Metrics, r#type: &str, outcome: &str) -> u64 {
    metrics
        .records
        .get_or_create(&RecordLabels {
            r#type: r#type.into(),
            outcome: outcome.into(),
        })
        .get()
}

fn applied_presence(metrics: &Metrics) -> u64 {
    counter(metrics, "presence", "applied")
}

/// When the service's applied presence counter reached its final value.
struct Progress {
    applied: u64,
    /// When it first moved off zero.
    first: Option<Instant>,
    /// When it last changed.
    last: Instant,
}

/// Polls the applied presence counter every [`POLL`] until it reaches
/// `target`, stops moving for `stall` after its first move, or `deadline`
/// passes.
async fn wait_applied(
    metrics: &Metrics,
    target: u64,
    stall: Duration,
    deadline: Duration,
) -> Progress {
    let begin = Instant::now();
    let mut p = Progress {
        applied: applied_presence(metrics),
        first: None,
        last: begin,
    };
    loop {
        let now = applied_presence(metrics);
        let t = Instant::now();
        if now != p.applied {
            p.applied = now;
            p.last = t;
        }
        if now > 0 && p.first.is_none() {
            p.first = Some(t);
        }
        if now >= target || (p.first.is_some() && t - p.last > stall) || t - begin > deadline {
            return p;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `app` until the returned sender fires (or is dropped).
fn serve(app: Application) -> (tokio::sync::oneshot::Sender<()>, impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let done = async move {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("the service stopped with an error: {e:#}"),
            Err(e) => eprintln!("the service task failed: {e}"),
        }
    };
    (stop_tx, done)
}

struct CoreCeiling {
    rate: f64,
    received: u64,
    publish_rate: f64,
    cpu: CpuUse,
}

/// Phase 1: a null subscriber counting what a fast publisher sends.
async fn core_ceiling(records: &Records) -> anyhow::Result<CoreCeiling> {
    let names = Names::new("core0");
    let n = records.len() as u64;
    let sub_client = connect("efb-null-subscriber").await?;
    let mut sub = sub_client
        .subscribe(format!("{}.presence.>", names.prefix))
        .await?;
    sub_client.flush().await?;
    let receiver = tokio::spawn(async move {
        let mut received = 0u64;
        let mut last = None;
        while received < n {
            match tokio::time::timeout(IDLE, sub.next()).await {
                Ok(Some(_)) => {
                    received += 1;
                    last = Some(Instant::now());
                }
                _ => break,
            }
        }
        (received, last)
    });
    let publisher = connect("efb-publisher").await?;
    let subjects = records.subjects(&names.prefix);
    let cpu = Cpu::now();
    let start = Instant::now();
    publish_core(&publisher, records, &subjects, None).await?;
    let published = start.elapsed();
    let (received, last) = receiver.await?;
    let cpu = cpu.per_record(n);
    let took = last.map_or(published, |l| l - start);
    Ok(CoreCeiling {
        rate: received as f64 / took.as_secs_f64(),
        received,
        publish_rate: n as f64 / published.as_secs_f64(),
        cpu,
    })
}

struct EventFlowCore {
    /// The publisher's pace (`None`: flat out).
    offered: Option<f64>,
    rate: f64,
    applied: u64,
    slow_consumer_events: u64,
    cpu: CpuUse,
}

/// Phase 2: the service in core mode, fed by the same publisher at
/// `per_sec` (flat out when `None`).
async fn eventflow_core(records: &Records, per_sec: Option<f64>) -> anyhow::Result<EventFlowCore> {
    let names = Names::new("core");
    let n = records.len() as u64;
    let dir = tempfile::tempdir()?;
    let app = Application::build(names.settings(dir.path(), "core")?).await?;
    let metrics: Arc<Metrics> = app.state().metrics.clone();
    let mut ready = app.state().ready.clone();
    let (stop, stopped) = serve(app);
    // Ready once the subscriptions are confirmed by the server.
    tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|r| r.recovered))
        .await
        .context("the service did not subscribe within 10 s")??;

    let publisher = connect("efb-publisher").await?;
    let subjects = records.subjects(&names.prefix);
    let cpu = Cpu::now();
    let start = Instant::now();
    let waiting = wait_applied(&metrics, n, IDLE, Duration::from_secs(3_600));
    let (published, progress) = tokio::join!(
        publish_core(&publisher, records, &subjects, per_sec),
        waiting
    );
    let cpu = cpu.per_record(n);
    published?;
    let slow_consumer_events = metrics.nats_dropped.get();
    let _ = stop.send(());
    stopped.await;
    Ok(EventFlowCore {
        offered: per_sec,
        rate: progress.applied as f64 / (progress.last - start).as_secs_f64(),
        applied: progress.applied,
        slow_consumer_events,
        cpu,
    })
}

struct JetStreamCeiling {
    acks: CeilingAck,
    publish_rate: f64,
    rate: f64,
    cpu: CpuUse,
    /// The null consumer through async-nats's pull stream.
    library_rate: f64,
    library_cpu: CpuUse,
}

/// How the null JetStream consumer acknowledges
/// (`EVENTFLOW_BENCH_CEILING_ACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CeilingAck {
    /// The last message of every chunk.
    Chunk,
    /// At most once a second, as the service does at its checkpoints
    /// (`log.checkpoint_interval_ms` is 1 s here): the server tracks every
    /// message delivered since. The default: the same work asked of NATS.
    Second,
    /// `AckPolicy::None`: the server tracks nothing.
    None,
}

impl CeilingAck {
    fn from_env() -> anyhow::Result<CeilingAck> {
        match std::env::var("EVENTFLOW_BENCH_CEILING_ACK").as_deref() {
            Ok("chunk") => Ok(CeilingAck::Chunk),
            Err(_) | Ok("second") => Ok(CeilingAck::Second),
            Ok("none") => Ok(CeilingAck::None),
            Ok(other) => {
                bail!("EVENTFLOW_BENCH_CEILING_ACK: {other:?} is not chunk, second or none")
            }
        }
    }
}

/// Phase 3: acknowledged publishes into a stream, then two null durable
/// pull consumers reading them back one after the other: the ceiling, which
/// speaks the protocol directly ([`null_pull`]), and async-nats's own pull
/// stream ([`library_pull`]).
async fn jetstream_ceiling(
    client: &Client,
    js: &jetstream::Context,
    records: &Records,
    cleanup: &mut Cleanup,
) -> anyhow::Result<JetStreamCeiling> {
    let acks = CeilingAck::from_env()?;
    let names = presence_stream(js, "js0", cleanup).await?;
    let n = records.len();
    let subjects = records.subjects(&names.prefix);
    let start = Instant::now();
    publish_jetstream(js, records, &subjects).await?;
    let publish_rate = n as f64 / start.elapsed().as_secs_f64();

    let cpu = Cpu::now();
    let start = Instant::now();
    create_null_consumer(js, &names.stream, &names.consumer, acks).await?;
    null_pull(client, &names.stream, &names.consumer, n, acks).await?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu.per_record(n as u64);

    let library_cpu = Cpu::now();
    let start = Instant::now();
    let durable = format!("{}-library", names.consumer);
    let consumer = create_null_consumer(js, &names.stream, &durable, acks).await?;
    library_pull(client, consumer, n, acks).await?;
    let library_rate = n as f64 / start.elapsed().as_secs_f64();
    Ok(JetStreamCeiling {
        acks,
        publish_rate,
        rate,
        cpu,
        library_rate,
        library_cpu: library_cpu.per_record(n as u64),
    })
}

/// A fresh stream on `<prefix>.presence.>` for a null consumer's phase,
/// deleted at the end of the run.
async fn presence_stream(
    js: &jetstream::Context,
    tag: &str,
    cleanup: &mut Cleanup,
) -> anyhow::Result<Names> {
    let names = Names::new(tag);
    cleanup.streams.push(names.stream.clone());
    create_stream(
        js,
        &names.stream,
        vec![format!("{}.presence.>", names.prefix)],
    )
    .await?;
    Ok(names)
}

/// The service's own stream for a phase, created here as the service would
/// create it; it and its dead-letter stream are deleted at the end.
async fn service_stream(
    js: &jetstream::Context,
    tag: &str,
    cleanup: &mut Cleanup,
) -> anyhow::Result<Names> {
    let names = Names::new(tag);
    cleanup.streams.push(names.stream.clone());
    cleanup.streams.push(names.dlq.clone());
    create_stream(
        js,
        &names.stream,
        Subjects::new(&names.prefix).stream_subjects(),
    )
    .await?;
    Ok(names)
}

async fn create_null_consumer(
    js: &jetstream::Context,
    stream: &str,
    durable: &str,
    acks: CeilingAck,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let stream = js.get_stream(stream).await?;
    Ok(stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: match acks {
                CeilingAck::None => jetstream::consumer::AckPolicy::None,
                _ => jetstream::consumer::AckPolicy::All,
            },
            ack_wait: Duration::from_secs(600),
            max_ack_pending: -1,
            ..Default::default()
        })
        .await?)
}

/// The ceiling: a null pull consumer doing only what the protocol needs.
/// One subscription on an inbox; pull requests of [`BATCH`] messages to
/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`, a new one whenever
/// fewer than a batch are outstanding (as the service does); status
/// messages told apart by their code; an acknowledgement (ack-all) of the
/// latest message as [`CeilingAck`] says. It counts stream messages and
/// keeps nothing.
async fn null_pull(
    client: &Client,
    stream: &str,
    durable: &str,
    n: usize,
    acks: CeilingAck,
) -> anyhow::Result<()> {
    let inbox = Subject::from(client.new_inbox());
    let mut messages = client.subscribe(inbox.clone()).await?;
    let next = Subject::from(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"));
    let request = Bytes::from(format!(r#"{{"batch":{BATCH},"expires":30000000000}}"#));
    let (mut read, mut outstanding) = (0usize, 0usize);
    let mut last_ack = Instant::now();
    while read < n {
        while outstanding <= BATCH {
            client
                .publish_with_reply(next.clone(), inbox.clone(), request.clone())
                .await?;
            outstanding += BATCH;
        }
        let m = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .context("the null consumer waited 30 s for a message")?
            .ok_or_else(|| anyhow!("the inbox subscription ended"))?;
        match m.status {
            None | Some(StatusCode::OK) => {
                read += 1;
                outstanding -= 1;
                let due = match acks {
                    CeilingAck::Chunk => read % BATCH == 0,
                    CeilingAck::Second => {
                        read % BATCH == 0 && last_ack.elapsed() >= Duration::from_secs(1)
                    }
                    CeilingAck::None => false,
                };
                if due || read == n {
                    last_ack = Instant::now();
                    if acks != CeilingAck::None
                        && let Some(reply) = m.reply
                    {
                        client.publish(reply, Bytes::from_static(b"+ACK")).await?;
                    }
                }
            }
            Some(StatusCode::IDLE_HEARTBEAT) => {}
            Some(StatusCode::TIMEOUT | StatusCode::REQUEST_TERMINATED) => {
                let undelivered: usize = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Pending-Messages"))
                    .and_then(|v| v.as_str().parse().ok())
                    .unwrap_or(BATCH);
                outstanding = outstanding.saturating_sub(undelivered);
            }
            Some(status) => bail!("the consumer answered {status}"),
        }
    }
    Ok(())
}

/// A null consumer through async-nats's pull stream, as the service read
/// before: `stream().max_messages_per_batch(1000)`, heartbeat 5 s, expires
/// 30 s, `ready_chunks(1000)`, `info()` per message for its sequence and
/// time; acknowledging as [`null_pull`] does.
async fn library_pull(
    client: &Client,
    consumer: jetstream::consumer::PullConsumer,
    n: usize,
    acks: CeilingAck,
) -> anyhow::Result<()> {
    let messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?;
    let mut chunks = messages.ready_chunks(BATCH);
    let (mut read, mut last_ack) = (0usize, Instant::now());
    while read < n {
        let chunk = tokio::time::timeout(Duration::from_secs(30), chunks.next())
            .await
            .context("the library consumer waited 30 s for a message")?
            .ok_or_else(|| anyhow!("the consumer's message stream ended"))?;
        let mut last = None;
        for m in chunk {
            let m = m.map_err(|e| anyhow!("pulling messages: {e}"))?;
            let info = m.info().map_err(|e| anyhow!("{e}"))?;
            std::hint::black_box((info.stream_sequence, info.published, info.pending));
            read += 1;
            last = m.message.reply;
        }
        let due = match acks {
            CeilingAck::Chunk => true,
            CeilingAck::Second => last_ack.elapsed() >= Duration::from_secs(1) || read >= n,
            CeilingAck::None => false,
        };
        if due && let Some(reply) = last {
            last_ack = Instant::now();
            client.publish(reply, Bytes::from_static(b"+ACK")).await?;
        }
    }
    Ok(())
}

/// Phase 5, the ceiling: a null consumer ([`null_pull`]) reading a stream
/// while the records are being published to it (acknowledged publishes, on
/// another connection). Rate = N / time from the first publish to the last
/// message read.
async fn jetstream_steady_ceiling(
    client: &Client,
    js: &jetstream::Context,
    records: &Records,
    cleanup: &mut Cleanup,
) -> anyhow::Result<f64> {
    let acks = CeilingAck::from_env()?;
    let names = presence_stream(js, "js0s", cleanup).await?;
    let n = records.len();
    create_null_consumer(js, &names.stream, &names.consumer, acks).await?;
    let publisher = connect("efb-publisher").await?;
    let pjs = jetstream::new(publisher);
    let subjects = records.subjects(&names.prefix);
    let start = Instant::now();
    let (published, read) = tokio::join!(
        publish_jetstream(&pjs, records, &subjects),
        null_pull(client, &names.stream, &names.consumer, n, acks)
    );
    published?;
    read?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Phase 5, EventFlow: the service started on an empty stream, then the
/// records published to it as in [`jetstream_steady_ceiling`]. Rate = N /
/// time from the first publish until the applied counter reaches N; it must
/// be exactly N.
async fn eventflow_jetstream_steady(
    js: &jetstream::Context,
    records: &Records,
    cleanup: &mut Cleanup,
) -> anyhow::Result<f64> {
    let names = service_stream(js, "jss", cleanup).await?;
    let n = records.len() as u64;
    let dir = tempfile::tempdir()?;
    let settings = names.settings(dir.path(), "jetstream")?;
    let app = Application::build(settings).await?;
    let metrics: Arc<Metrics> = app.state().metrics.clone();
    let (stop, stopped) = serve(app);
    // Consuming once the consumer exists.
    let stream = js.get_stream(&names.stream).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream.consumer_info(&names.consumer).await.is_err() {
        if Instant::now() > deadline {
            bail!("the service created no consumer within 30 s");
        }
        tokio::time::sleep(POLL).await;
    }
    let publisher = connect("efb-publisher").await?;
    let pjs = jetstream::new(publisher);
    let subjects = records.subjects(&names.prefix);
    let start = Instant::now();
    let (published, progress) = tokio::join!(
        publish_jetstream(&pjs, records, &subjects),
        wait_applied(
            &metrics,
            n,
            Duration::from_secs(10),
            Duration::from_secs(3_600)
        )
    );
    published?;
    let rate = progress.applied as f64 / (progress.last - start).as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied = applied_presence(&metrics);
    let _ = stop.send(());
    stopped.await;
    if applied != n {
        bail!("EventFlow JetStream (steady) applied {applied} of {n} records");
    }
    Ok(rate)
}

struct EventFlowJetStream {
    rate: f64,
    applied: u64,
    invalid: u64,
    duplicate: u64,
    publish_rate: f64,
    build: Duration,
    first_applied: Duration,
    total: Duration,
    cpu: CpuUse,
}

/// Phase 4: N records waiting in the service's stream, then the service
/// started on it.
async fn eventflow_jetstream(
    js: &jetstream::Context,
    records: &Records,
    cleanup: &mut Cleanup,
) -> anyhow::Result<EventFlowJetStream> {
    let names = service_stream(js, "js", cleanup).await?;
    let n = records.len() as u64;
    let subjects = records.subjects(&names.prefix);
    let start = Instant::now();
    publish_jetstream(js, records, &subjects).await?;
    let publish_rate = n as f64 / start.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    let settings = names.settings(dir.path(), "jetstream")?;
    let cpu = Cpu::now();
    let start = Instant::now();
    let app = Application::build(settings).await?;
    let build = start.elapsed();
    let metrics: Arc<Metrics> = app.state().metrics.clone();
    let (stop, stopped) = serve(app);
    let progress = wait_applied(
        &metrics,
        n,
        Duration::from_secs(10),
        Duration::from_secs(3_600),
    )
    .await;
    let total = progress.last - start;
    let cpu = cpu.per_record(n);
    // Anything more (a record applied twice) would show by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied = applied_presence(&metrics);
    let invalid = counter(&metrics, "unknown", "invalid");
    let duplicate = counter(&metrics, "any", "duplicate");
    let _ = stop.send(());
    stopped.await;
    Ok(EventFlowJetStream {
        rate: progress.applied as f64 / total.as_secs_f64(),
        applied,
        invalid,
        duplicate,
        publish_rate,
        build,
        first_applied: progress.first.map_or(total, |f| f - start),
        total,
        cpu,
    })
}

fn summary(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("SUMMARY {name} {value} {unit}");
}

fn rate(r: f64) -> String {
    format!("{r:.0}")
}

fn ratio(a: f64, b: f64) -> f64 {
    100.0 * a / b
}

fn main() -> anyhow::Result<()> {
    if let Ok(filter) = std::env::var("EVENTFLOW_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let n = records_wanted();
    let generated = Instant::now();
    let records = Records::generate(n);
    println!(
        "nats benchmark: {n} presence records ({WEBINARS} webinars, {VIEWERS} viewers), \
         {} bytes of JSON, generated in {:.1} s; NATS at {}",
        records.payloads.iter().map(Bytes::len).sum::<usize>(),
        generated.elapsed().as_secs_f64(),
        nats_url()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let admin = connect("efb-admin").await?;
        let js = jetstream::new(admin.clone());
        let mut cleanup = Cleanup::default();
        let result = run(&admin, &js, &records, &mut cleanup).await;
        cleanup.run(&js).await;
        result
    })
}

async fn run(
    admin: &Client,
    js: &jetstream::Context,
    records: &Records,
    cleanup: &mut Cleanup,
) -> anyhow::Result<()> {
    let n = records.len() as u64;

    match std::env::var("EVENTFLOW_BENCH_ONLY").as_deref() {
        Err(_) => {}
        Ok("core") => {
            let core = eventflow_core(records, None).await?;
            println!(
                "EventFlow core alone, full speed: {} records/s, {} of {n} applied, CPU µs/record {}",
                rate(core.rate),
                core.applied,
                core.cpu
            );
            return Ok(());
        }
        Ok("jetstream") => {
            let ef = eventflow_jetstream(js, records, cleanup).await?;
            println!(
                "EventFlow JetStream alone: {} records/s, {} of {n} applied, CPU µs/record {}",
                rate(ef.rate),
                ef.applied,
                ef.cpu
            );
            return Ok(());
        }
        Ok(other) => bail!("EVENTFLOW_BENCH_ONLY: {other:?} is not core or jetstream"),
    }

    let core0 = core_ceiling(records).await?;
    summary("core_ceiling_rate", rate(core0.rate), "records/s");
    summary("core_ceiling_lost", n - core0.received, "records");
    summary("core_publish_rate", rate(core0.publish_rate), "records/s");

    // The sustained rate is the fastest pace at which nothing is lost: flat
    // out first, then paced at falling fractions of the ceiling.
    let mut core = eventflow_core(records, None).await?;
    let flat_out_lost = n - core.applied.min(n);
    for fraction in (1..=19).rev().map(|k| f64::from(k) * 0.05) {
        if core.applied >= n {
            break;
        }
        println!(
            "core: EventFlow lost {} of {n} at {}; offering {:.0} % of the ceiling",
            n - core.applied.min(n),
            core.offered
                .map_or("full speed".into(), |r| format!("{r:.0}/s")),
            100.0 * fraction
        );
        core = eventflow_core(records, Some(fraction * core0.rate)).await?;
    }
    summary("eventflow_core_rate", rate(core.rate), "records/s");
    summary("eventflow_core_flat_out_lost", flat_out_lost, "records");
    summary("eventflow_core_lost", n - core.applied.min(n), "records");
    summary(
        "eventflow_core_slow_consumer_events",
        core.slow_consumer_events,
        "events",
    );

    let js0 = jetstream_ceiling(admin, js, records, cleanup).await?;
    summary(
        "jetstream_publish_rate",
        rate(js0.publish_rate),
        "records/s",
    );
    summary("jetstream_ceiling_rate", rate(js0.rate), "records/s");
    summary(
        "jetstream_library_null_rate",
        rate(js0.library_rate),
        "records/s",
    );

    let ef = eventflow_jetstream(js, records, cleanup).await?;
    summary("eventflow_jetstream_rate", rate(ef.rate), "records/s");
    summary(
        "eventflow_jetstream_startup",
        ef.first_applied.as_millis(),
        "ms",
    );
    summary(
        "eventflow_jetstream_lost",
        n.saturating_sub(ef.applied),
        "records",
    );
    summary(
        "eventflow_jetstream_extra",
        ef.applied.saturating_sub(n),
        "records",
    );
    summary("eventflow_jetstream_invalid", ef.invalid, "records");
    summary("eventflow_jetstream_duplicate", ef.duplicate, "records");

    let steady0 = jetstream_steady_ceiling(admin, js, records, cleanup).await?;
    summary("jetstream_steady_ceiling_rate", rate(steady0), "records/s");
    let steady = eventflow_jetstream_steady(js, records, cleanup).await?;
    summary("eventflow_jetstream_steady_rate", rate(steady), "records/s");

    let core_ratio = ratio(core.rate, core0.rate);
    let js_ratio = ratio(ef.rate, js0.rate);
    let steady_ratio = ratio(steady, steady0);
    summary("eventflow_core_ratio", format!("{core_ratio:.1}"), "%");
    summary("eventflow_jetstream_ratio", format!("{js_ratio:.1}"), "%");
    summary(
        "eventflow_jetstream_steady_ratio",
        format!("{steady_ratio:.1}"),
        "%",
    );

    println!();
    println!("| path | records/s | ceiling records/s | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| core NATS: EventFlow (core mode) vs null subscriber | {} | {} | {core_ratio:.1} % |",
        rate(core.rate),
        rate(core0.rate)
    );
    println!(
        "| JetStream catch-up (1 M stored): EventFlow (jetstream mode) vs null pull consumer | {} | {} | {js_ratio:.1} % |",
        rate(ef.rate),
        rate(js0.rate)
    );
    println!(
        "| JetStream steady (publisher running): EventFlow vs null pull consumer | {} | {} | {steady_ratio:.1} % |",
        rate(steady),
        rate(steady0)
    );
    println!();
    println!("| detail | value |");
    println!("|---|---:|");
    let detail = |k: &str, v: String| println!("| {k} | {v} |");
    detail("records", n.to_string());
    detail("core publish records/s", rate(core0.publish_rate));
    detail(
        "core: lost by the null subscriber",
        (n - core0.received).to_string(),
    );
    detail(
        "core: EventFlow's sustained rate offered at",
        core.offered
            .map_or("full speed".into(), |r| format!("{} records/s", rate(r))),
    );
    detail(
        "core: lost by EventFlow at full speed",
        flat_out_lost.to_string(),
    );
    detail(
        "core: lost by EventFlow at the sustained rate",
        (n - core.applied.min(n)).to_string(),
    );
    detail(
        "core: EventFlow slow-consumer events",
        core.slow_consumer_events.to_string(),
    );
    detail(
        "JetStream ceiling: the null consumer acknowledges",
        format!("{:?}", js0.acks).to_lowercase(),
    );
    detail(
        "JetStream: null consumer through async-nats's pull stream, records/s",
        format!(
            "{} ({:.1} % of the protocol-level null consumer)",
            rate(js0.library_rate),
            ratio(js0.library_rate, js0.rate)
        ),
    );
    detail(
        "JetStream acknowledged publishes/s (ceiling stream)",
        rate(js0.publish_rate),
    );
    detail(
        "JetStream acknowledged publishes/s (EventFlow stream)",
        rate(ef.publish_rate),
    );
    detail(
        "EventFlow JetStream: Application::build",
        format!("{} ms", ef.build.as_millis()),
    );
    detail(
        "EventFlow JetStream: first record applied after",
        format!("{} ms", ef.first_applied.as_millis()),
    );
    detail(
        "EventFlow JetStream: all records applied after",
        format!("{} ms", ef.total.as_millis()),
    );
    detail(
        "EventFlow JetStream: records/s after the first was applied",
        rate(n as f64 / (ef.total - ef.first_applied).as_secs_f64()),
    );
    detail(
        "EventFlow JetStream: applied / invalid / duplicate",
        format!("{} / {} / {}", ef.applied, ef.invalid, ef.duplicate),
    );

    for (path, cpu) in [
        ("core ceiling", core0.cpu),
        ("EventFlow core", core.cpu),
        ("JetStream ceiling (reading)", js0.cpu),
        (
            "JetStream null consumer via async-nats's pull stream",
            js0.library_cpu,
        ),
        ("EventFlow JetStream (reading)", ef.cpu),
    ] {
        detail(
            &format!("CPU µs/record, this process / nats-server: {path}"),
            cpu.to_string(),
        );
    }

    if ef.applied != n || ef.invalid != 0 || ef.duplicate != 0 {
        bail!(
            "EventFlow JetStream is not exactly-once: applied {} of {n}, {} invalid, {} duplicate",
            ef.applied,
            ef.invalid,
            ef.duplicate
        );
    }
    Ok(())
}
