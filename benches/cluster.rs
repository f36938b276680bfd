//! Several instances sharing the partitions (DESIGN §8), as real processes
//! of the built `eventflow` binary over the local NATS and Postgres.
//!
//! 1. **Aggregate throughput** with 1, 2 and 3 instances: N presence
//!    records of the shared workload are published to a stream of
//!    [`PARTITIONS`] partitions first (acknowledged), then the instances
//!    start together with `nats.leases` and catch up. Rate = N / time from
//!    all instances ready until every partition is applied to its last
//!    record (the time includes the first lease rounds and any hand-over
//!    while they settle).
//! 2. **Failover**: three instances, a publisher sending fresh pings for
//!    60 webinars every 100 ms; `EVENTFLOW_BENCH_KILLS` times (default 20)
//!    one instance is SIGKILLed, and two times are taken from the kill:
//!    until the survivors own every partition, and until a survivor's
//!    `GET /live` of a webinar the victim owned shows a ping sent after the
//!    kill (live counts flowing again). The victim then starts again and
//!    the three settle before the next kill. Lease TTL [`LEASE_TTL_MS`].
//!
//! Prints `SUMMARY` lines for `scripts/bench`. `EVENTFLOW_BENCH_RECORDS`
//! sets N (default 1 000 000).

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use common::{Spec, Workload};
use eventflow::auth::{Scope, Signer};
use eventflow::config::Nats as NatsSettings;
use eventflow::source::nats::Subjects;

const PARTITIONS: u32 = 6;
const LEASE_TTL_MS: u64 = 2_000;
const NATS_URL: &str = "nats://127.0.0.1:4222";
const SECRET: &str = "cluster-benchmark-secret-of-enough-length";
const ACK_WINDOW: usize = 4_096;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(default)
}

/// The first `n` presence records of the workload as (partition, subject
/// after the prefix, payload).
fn records(n: usize) -> Vec<(u32, String, Bytes)> {
    let subjects = Subjects::partitioned("", PARTITIONS);
    let minutes = (n as u64).div_ceil(u64::from(Spec::standard().viewers)) + 1;
    let mut duration_ms = 180_000 + minutes * 78_000;
    loop {
        let spec = Spec {
            warm_ms: 0,
            duration_ms: u32::try_from(duration_ms).expect("N fits in 49 simulated days"),
            ..Spec::standard()
        };
        let workload = Workload::generate(spec);
        if workload.measured.len() < n {
            duration_ms *= 2;
            continue;
        }
        return workload
            .events(&workload.measured[..n])
            .into_iter()
            .map(|ev| {
                (
                    eventflow::partition::of(&ev, PARTITIONS),
                    subjects.event(&ev),
                    Bytes::from(ev.to_json()),
                )
            })
            .collect();
    }
}

/// Unique stream, prefix and consumer names for one run.
struct Names {
    prefix: String,
    stream: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let n = format!(
            "{tag}{}x{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
        );
        Names {
            prefix: format!("efc.{n}"),
            stream: format!("EFC_{n}"),
        }
    }

    fn settings(&self) -> NatsSettings {
        NatsSettings {
            url: Some(NATS_URL.into()),
            subject_prefix: self.prefix.clone(),
            stream: self.stream.clone(),
            dlq_stream: format!("{}_DLQ", self.stream),
            partitions: PARTITIONS,
            retain_days: 1,
            ..NatsSettings::default()
        }
    }
}

async fn fresh_postgres() -> anyhow::Result<String> {
    let name = format!(
        "ef_cluster_{}_{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    let admin = eventflow::sink::store::Store::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .context("Postgres on 127.0.0.1:5432")?;
    admin
        .execute_admin(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await;
    Ok(format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

/// One `eventflow serve` process.
struct Instance {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Instance {
    fn start(name: &str, names: &Names, pg: &str) -> anyhow::Result<Instance> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_eventflow"))
            .arg("serve")
            .env("EVENTFLOW__DATA__DIR", dir.path())
            .env("EVENTFLOW__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("EVENTFLOW__HTTP__RATE_LIMIT_PER_SEC", "0")
            .env("EVENTFLOW__LIMITS__NEW_ENTITIES_PER_MINUTE", "0")
            .env("EVENTFLOW__AUTH__SECRET", SECRET)
            .env("EVENTFLOW__POSTGRES__URL", pg)
            .env("EVENTFLOW__NATS__URL", NATS_URL)
            .env("EVENTFLOW__NATS__SUBJECT_PREFIX", &names.prefix)
            .env("EVENTFLOW__NATS__STREAM", &names.stream)
            .env(
                "EVENTFLOW__NATS__DLQ_STREAM",
                format!("{}_DLQ", names.stream),
            )
            .env("EVENTFLOW__NATS__PARTITIONS", PARTITIONS.to_string())
            .env("EVENTFLOW__NATS__LEASES", "true")
            .env("EVENTFLOW__NATS__LEASE_TTL_MS", LEASE_TTL_MS.to_string())
            .env("EVENTFLOW__NATS__INSTANCE", name)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting eventflow")?;
        Ok(Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    async fn ready(&self, http: &reqwest::Client) -> Option<serde_json::Value> {
        let r = http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())?;
        r.json().await.ok()
    }

    /// Owned partitions and the sequence each has applied.
    async fn owned(&self, http: &reqwest::Client) -> Option<BTreeMap<u32, u64>> {
        let v = self.ready(http).await?;
        v["cluster"]["owned"]
            .as_array()?
            .iter()
            .map(|p| {
                let seq = p["applied"].as_str()?.strip_prefix("seq:")?.parse().ok()?;
                Some((p["partition"].as_u64()? as u32, seq))
            })
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Who owns what among `instances`, when every partition is owned once.
async fn ownership(http: &reqwest::Client, instances: &[&Instance]) -> Option<Vec<BTreeSet<u32>>> {
    let mut owned = Vec::new();
    for i in instances {
        owned.push(i.owned(http).await?.into_keys().collect::<BTreeSet<u32>>());
    }
    let total: usize = owned.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<u32> = owned.iter().flatten().copied().collect();
    (total == PARTITIONS as usize && union.len() == PARTITIONS as usize).then_some(owned)
}

async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn js() -> anyhow::Result<async_nats::jetstream::Context> {
    Ok(async_nats::jetstream::new(
        async_nats::connect(NATS_URL)
            .await
            .context("NATS on 127.0.0.1:4222")?,
    ))
}

/// Phase 1 with `k` instances: records/s.
async fn throughput(
    k: usize,
    recs: &[(u32, String, Bytes)],
    http: &reqwest::Client,
) -> anyhow::Result<Catchup> {
    let names = Names::new(&format!("t{k}"));
    let pg = fresh_postgres().await?;
    let js = js().await?;
    eventflow::source::nats::ensure_streams(&js, &names.settings()).await?;
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let mut inflight = VecDeque::with_capacity(ACK_WINDOW);
    for (p, tail, payload) in recs {
        if inflight.len() == ACK_WINDOW
            && let Some((p, ack)) = inflight.pop_front()
        {
            let ack: async_nats::jetstream::context::PublishAckFuture = ack;
            let seq = ack.await?.sequence;
            let e = last.entry(p).or_insert(0);
            *e = (*e).max(seq);
        }
        let subject = format!("{}{tail}", names.prefix);
        inflight.push_back((*p, js.publish(subject, payload.clone()).await?));
    }
    for (p, ack) in inflight {
        let seq = ack.await?.sequence;
        let e = last.entry(p).or_insert(0);
        *e = (*e).max(seq);
    }
    let instances: Vec<Instance> = (0..k)
        .map(|i| Instance::start(&format!("i{i}"), &names, &pg))
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&Instance> = instances.iter().collect();
    wait_for(
        "the instances are ready",
        Duration::from_secs(60),
        || async {
            for i in &refs {
                i.ready(http).await?;
            }
            Some(())
        },
    )
    .await?;
    let started = Instant::now();
    let nats_pids = pids_named("nats-server");
    let cpu_before: f64 = instances.iter().map(|i| cpu_seconds(i.child.id())).sum();
    let nats_before: f64 = nats_pids.iter().map(|p| cpu_seconds(*p)).sum();
    wait_for(
        "every partition is applied",
        Duration::from_secs(1_800),
        || async {
            let mut applied = BTreeMap::new();
            for i in &refs {
                applied.extend(i.owned(http).await?);
            }
            last.iter()
                .all(|(p, seq)| applied.get(p) >= Some(seq))
                .then_some(())
        },
    )
    .await?;
    let wall = started.elapsed().as_secs_f64();
    let ours = instances
        .iter()
        .map(|i| cpu_seconds(i.child.id()))
        .sum::<f64>()
        - cpu_before;
    let nats = nats_pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - nats_before;
    Ok(Catchup {
        rate: recs.len() as f64 / wall,
        wall,
        instances_cores: ours / wall,
        nats_cores: nats / wall,
    })
}

struct Catchup {
    rate: f64,
    wall: f64,
    /// CPU seconds per wall second of the instances together, and of the
    /// NATS server.
    instances_cores: f64,
    nats_cores: f64,
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command's closing parenthesis: utime and stime
    // are the 12th and 13th of them, in clock ticks (100 per second).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Processes whose command name is `name`.
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// Phase 2: (time to own every partition, time to live counts) per kill.
async fn failover(
    kills: usize,
    http: &reqwest::Client,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let names = Names::new("f");
    let pg = fresh_postgres().await?;
    let js = js().await?;
    eventflow::source::nats::ensure_streams(&js, &names.settings()).await?;
    let token = Signer::new(SECRET.as_bytes()).mint(Scope::Admin, now_ms() + 3_600_000);
    let subjects = Subjects::partitioned(&names.prefix, PARTITIONS);
    let webinars: Vec<String> = (0..60).map(|i| format!("w-{i}")).collect();
    // Fresh pings, each webinar every 100 ms.
    let stop = tokio_util::sync::CancellationToken::new();
    let publisher = {
        let (js, stop, webinars, subjects) =
            (js.clone(), stop.clone(), webinars.clone(), subjects.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            while !stop.is_cancelled() {
                every.tick().await;
                for w in &webinars {
                    let ev = eventflow::event::Event::Presence(eventflow::event::Presence {
                        id: None,
                        webinar_id: w.as_str().into(),
                        viewer_id: "v".into(),
                        action: eventflow::event::PresenceAction::Ping,
                        ts: Some(now_ms()),
                    });
                    let _ = js.publish(subjects.event(&ev), ev.to_json().into()).await;
                }
            }
        })
    };
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| Instance::start(&format!("f{i}"), &names, &pg))
        .collect::<anyhow::Result<_>>()?;
    let mut times = Vec::new();
    for round in 0..kills {
        let owned = wait_for(
            "three instances share evenly",
            Duration::from_secs(60),
            || async {
                let refs: Vec<&Instance> = instances.iter().collect();
                ownership(http, &refs)
                    .await
                    .filter(|o| o.iter().all(|s| s.len() == 2))
            },
        )
        .await?;
        let victim = round % 3;
        let watched = webinars
            .iter()
            .find(|w| owned[victim].contains(&eventflow::partition::of_key(w, PARTITIONS)))
            .context("a webinar in every partition")?
            .clone();
        let survivor = (victim + 1) % 3;
        let killed_ms = now_ms();
        let killed = Instant::now();
        instances[victim].kill();
        let survivors: Vec<&Instance> = instances
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, i)| i)
            .collect();
        wait_for(
            "the survivors own every partition",
            Duration::from_secs(60),
            || async { ownership(http, &survivors).await },
        )
        .await?;
        let owned_after = killed.elapsed();
        let url = format!("{}/api/webinars/{watched}/live", instances[survivor].base);
        wait_for(
            "live counts flow again",
            Duration::from_secs(60),
            || async {
                let v: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (v["ts"].as_i64()? > killed_ms).then_some(())
            },
        )
        .await?;
        let live_after = killed.elapsed();
        eprintln!("kill {round}: owned after {owned_after:?}, live after {live_after:?}");
        times.push((owned_after, live_after));
        instances[victim] = Instance::start(&format!("f{victim}r{round}"), &names, &pg)?;
    }
    stop.cancel();
    publisher.await.ok();
    Ok(times)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("EVENTFLOW_BENCH_RECORDS", 1_000_000);
    let kills = env_usize("EVENTFLOW_BENCH_KILLS", 20);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    println!("cluster: {PARTITIONS} partitions, lease TTL {LEASE_TTL_MS} ms, {n} presence records");
    let recs = records(n);
    println!(
        "| instances | records/s (catch-up, all partitions) | seconds | cores used by the instances | by nats-server |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for k in 1..=3 {
        // Each run publishes under its own prefix.
        let c = throughput(k, &recs, &http).await?;
        println!(
            "| {k} | {:.0} | {:.1} | {:.2} | {:.2} |",
            c.rate, c.wall, c.instances_cores, c.nats_cores
        );
        println!("SUMMARY cluster_rate_{k} {:.0} records/s", c.rate);
    }
    let times = failover(kills, &http).await?;
    let mut owned: Vec<Duration> = times.iter().map(|t| t.0).collect();
    let mut live: Vec<Duration> = times.iter().map(|t| t.1).collect();
    owned.sort();
    live.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "failover over {} kills (lease TTL {LEASE_TTL_MS} ms):",
        times.len()
    );
    println!(
        "  kill -> every partition owned: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(percentile(&owned, 0.5)),
        ms(percentile(&owned, 0.99)),
        ms(*owned.last().unwrap())
    );
    println!(
        "  kill -> live counts flowing:   p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(percentile(&live, 0.5)),
        ms(percentile(&live, 0.99)),
        ms(*live.last().unwrap())
    );
    println!(
        "SUMMARY failover_owned_p50_ms {:.0} ms",
        ms(percentile(&owned, 0.5))
    );
    println!(
        "SUMMARY failover_owned_p99_ms {:.0} ms",
        ms(percentile(&owned, 0.99))
    );
    println!(
        "SUMMARY failover_live_p50_ms {:.0} ms",
        ms(percentile(&live, 0.5))
    );
    println!(
        "SUMMARY failover_live_p99_ms {:.0} ms",
        ms(percentile(&live, 0.99))
    );
    Ok(())
}
