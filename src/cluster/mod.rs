//! Work shared by several instances over NATS JetStream (DESIGN §8), with
//! no coordinator of our own.
//!
//! With `nats.leases` on, an instance runs one engine per partition it
//! owns, each with its own durable consumer of the partition's subjects
//! (`<consumer>-p<n>` over `<prefix>.p<n>.>`), its own store writer and its
//! own checkpoint, kept in the store where any instance can read it. A
//! partition is owned through a lease in the bucket of [`lease`]: the
//! owner renews it every quarter of `nats.lease_ttl_ms`, stops the
//! partition the moment a renewal fails, and writes every row and
//! checkpoint under the claim's revision as a fencing token (the store
//! refuses a token older than the one it holds). Instances share the
//! partitions evenly: one that owns more than its share gives the extra
//! ones up after a final flush and checkpoint, one with less claims free
//! ones and resumes each from its checkpoint. The ticks of a partition are
//! published by its owner while it is caught up.
//!
//! Reads go to any instance: live counts of other instances' partitions
//! arrive on `<prefix>.live.>`, and reads that need a partition's engine
//! are answered by its owner over NATS request-reply ([`reads`]).

pub mod lease;
pub mod reads;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::engine::Engine;
use crate::engine::campaign::CampaignView;
use crate::event::{Event, Tick};
use crate::health::Readiness;
use crate::metrics::Metrics;
pub use crate::pipeline::Lease;
use crate::pipeline::{
    Checkpoints, EngineTask, Persisted, Reading, Source, SourcePos, StreamSource,
};
use crate::sink::feed::{BucketMessage, LiveFeed, StateMessage};
use crate::sink::live::LiveHub;
use crate::sink::store::{Fence, Store};
use crate::source::nats::{self, ConsumerSpec, StreamBatch, Subjects};
use crate::source::spool::NatsSink;
use crate::util::Clock;

/// One partition this instance owns, and its running parts.
struct Worker {
    lease: Arc<Lease>,
    /// The revision to renew (compare-and-set), kept beside the worker so
    /// that the renewal task and a hand-over see the same one.
    revision: Arc<AtomicU64>,
    campaigns: CampaignView,
    applied: watch::Receiver<Reading>,
    shutdown: CancellationToken,
    engine: Option<std::thread::JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What every partition's parts share.
pub struct Shared {
    pub settings: Settings,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub store: Store,
    pub hub: Arc<LiveHub>,
    pub cache: Option<Arc<crate::sink::cache::CacheFeed>>,
    pub live_out: Arc<LiveFeed>,
    pub sink: Arc<NatsSink>,
    pub metrics: Arc<Metrics>,
    pub ready: watch::Sender<Readiness>,
    pub clock: Clock,
    pub shutdown: CancellationToken,
}

/// An instance's part of the cluster: its id, the partitions it owns.
pub struct Cluster {
    pub instance: String,
    pub partitions: u32,
    pub subjects: Subjects,
    ttl: Duration,
    shared: Shared,
    workers: Mutex<BTreeMap<u32, Worker>>,
    /// Set once the first round of claims is done.
    settled: watch::Sender<bool>,
    /// The router reads of owned partitions are answered with.
    pub router: reads::RouterCell,
}

/// How often leases are renewed, as a fraction of the TTL.
const RENEW_DIVISOR: u32 = 4;

impl Cluster {
    pub fn new(shared: Shared) -> Arc<Cluster> {
        let s = &shared.settings.nats;
        Arc::new(Cluster {
            instance: instance_id(s.instance.as_deref()),
            partitions: s.partitions,
            subjects: Subjects::partitioned(&s.subject_prefix, s.partitions),
            ttl: Duration::from_millis(s.lease_ttl_ms),
            workers: Mutex::new(BTreeMap::new()),
            settled: watch::channel(false).0,
            router: reads::RouterCell::default(),
            shared,
        })
    }

    /// The partition of a webinar or client id.
    pub fn partition_of(&self, key: &str) -> u32 {
        crate::partition::of_key(key, self.partitions)
    }

    /// The partitions this instance owns now.
    pub fn owned(&self) -> BTreeSet<u32> {
        self.workers().keys().copied().collect()
    }

    pub fn owns(&self, partition: u32) -> bool {
        self.workers()
            .get(&partition)
            .is_some_and(|w| w.lease.held())
    }

    /// The campaign state of an owned partition.
    pub fn campaigns(&self, partition: u32) -> Option<CampaignView> {
        self.workers()
            .get(&partition)
            .filter(|w| w.lease.held())
            .map(|w| w.campaigns.clone())
    }

    /// The partition of a webinar or client id and the lease token its
    /// keys are written under here, if this instance holds it (for fencing
    /// Redis writes).
    pub fn fence_of(&self, id: &str) -> Option<(u32, u64)> {
        let p = self.partition_of(id);
        self.workers()
            .get(&p)
            .filter(|w| w.lease.held())
            .map(|w| (p, w.lease.token))
    }

    /// Each owned partition's position, and whether it is caught up.
    pub fn progress(&self) -> Vec<(u32, Reading)> {
        self.workers()
            .iter()
            .map(|(n, w)| (*n, *w.applied.borrow()))
            .collect()
    }

    /// Whether client `client_id` names webinar `webinar_id` (asked of the
    /// client's partition's owner when that is another instance).
    pub async fn client_names_webinar(
        &self,
        client_id: &str,
        webinar_id: &str,
    ) -> Result<bool, String> {
        let p = self.partition_of(client_id);
        if let Some(view) = self.campaigns(p) {
            return Ok(view.client_names_webinar(client_id, webinar_id));
        }
        let request = reads::ReadRequest::NamesWebinar {
            client_id: client_id.to_owned(),
            webinar_id: webinar_id.to_owned(),
        };
        match self.ask(p, &request).await? {
            reads::ReadReply::NamesWebinar { names } => Ok(names),
            reads::ReadReply::Http { body, .. } => Err(format!("partition {p}: {body}")),
            _ => Err(format!("partition {p}: an unexpected answer")),
        }
    }

    /// Distinct viewers of `webinars` together on the days of `range`: a
    /// union of their partitions' viewers.
    pub async fn live_viewers(
        &self,
        webinars: &[String],
        range: crate::engine::campaign::DateRange,
    ) -> Result<u64, String> {
        let mut by_partition: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for w in webinars {
            by_partition
                .entry(self.partition_of(w))
                .or_default()
                .push(w.clone());
        }
        let mut viewers = std::collections::HashSet::new();
        for (p, list) in by_partition {
            let fps = match self.campaigns(p) {
                Some(view) => {
                    let list: Vec<&str> = list.iter().map(String::as_str).collect();
                    view.viewer_fingerprints(&list, range)
                }
                None => {
                    let request = reads::ReadRequest::Viewers {
                        webinars: list,
                        from: range.from,
                        to: range.to,
                    };
                    match self.ask(p, &request).await? {
                        reads::ReadReply::Viewers { fingerprints } => fingerprints,
                        reads::ReadReply::Http { body, .. } => {
                            return Err(format!("partition {p}: {body}"));
                        }
                        _ => return Err(format!("partition {p}: an unexpected answer")),
                    }
                }
            };
            viewers.extend(fps);
        }
        Ok(viewers.len() as u64)
    }

    /// Asks partition `p`'s owner.
    pub async fn ask(
        &self,
        p: u32,
        request: &reads::ReadRequest,
    ) -> Result<reads::ReadReply, String> {
        reads::ask(&self.shared.client, self.subjects.reads(p), request)
            .await
            .map_err(|why| format!("partition {p}: {why}; retry"))
    }

    /// Whether the first round of claims is done.
    pub fn settled(&self) -> bool {
        *self.settled.borrow()
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Worker>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the leases until shutdown, then hands every partition over
    /// (final flush, checkpoint, lease released).
    pub async fn run(self: Arc<Self>) {
        let s = &self.shared;
        let kv = loop {
            match lease::bucket(
                &s.js,
                &s.settings.nats.stream,
                self.ttl,
                s.settings.nats.replicas,
            )
            .await
            {
                Ok(kv) => break kv,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "the lease bucket is unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = s.shutdown.cancelled() => return,
                    }
                }
            }
        };
        let every = self.ttl / RENEW_DIVISOR;
        tracing::info!(instance = %self.instance, partitions = self.partitions, ttl_ms = self.ttl.as_millis() as u64, "joining the cluster");
        // Say we are here and give the others a round to see it before
        // claiming, so instances starting together share at once.
        let _ = lease::heartbeat(&kv, &self.instance).await;
        let start = crate::partition::fnv1a32(self.instance.as_bytes()) % self.partitions;
        let renewals = tokio::spawn(self.clone().keep_leases(kv.clone()));
        let mut first = true;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = s.shutdown.cancelled() => break,
            }
            if let Err(e) = lease::heartbeat(&kv, &self.instance).await {
                tracing::warn!(error = %format!("{e:#}"), "renewing membership failed");
                continue;
            }
            let survey = match lease::survey(&kv, self.partitions).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reading the leases failed");
                    continue;
                }
            };
            let owns = self.owned();
            let (claim, release) = lease::plan(
                self.partitions,
                survey.members.len().max(1),
                &owns,
                &survey.held,
                start,
            );
            for n in release {
                self.hand_over(&kv, n).await;
            }
            for n in claim {
                if s.shutdown.is_cancelled() {
                    break;
                }
                self.claim(&kv, n).await;
            }
            if first {
                first = false;
                self.settled.send_replace(true);
                s.ready.send_modify(|r| r.recovered = true);
            }
        }
        // Leases stay renewed while every partition flushes and hands over.
        let owned: Vec<u32> = self.owned().into_iter().collect();
        for n in owned {
            self.hand_over(&kv, n).await;
        }
        renewals.abort();
        let _ = kv.delete(format!("members.{}", self.instance)).await;
    }

    /// Renews every lease held; a partition whose renewal fails, or whose
    /// writer met a newer owner's token, stops at once.
    async fn renew(&self, kv: &jetstream::kv::Store) {
        type Held = (u32, Arc<AtomicU64>, Arc<Lease>, bool);
        let held: Vec<Held> = self
            .workers()
            .iter()
            .map(|(n, w)| {
                (
                    *n,
                    w.revision.clone(),
                    w.lease.clone(),
                    w.writer.is_finished(),
                )
            })
            .collect();
        for (n, revision, lease, writer_stopped) in held {
            let renewed = if writer_stopped {
                Err(anyhow::anyhow!("its store writer stopped"))
            } else {
                renew_once(kv, &self.instance, &lease, &revision, self.lease_validity()).await
            };
            let Err(e) = renewed else { continue };
            // Only the worker of this very lease (a hand-over may have
            // removed it, or a new claim replaced it).
            let worker = {
                let mut workers = self.workers();
                match workers.get(&n) {
                    Some(w) if Arc::ptr_eq(&w.lease, &lease) => workers.remove(&n),
                    _ => None,
                }
            };
            let Some(w) = worker else { continue };
            tracing::warn!(partition = n, error = %format!("{e:#}"), "lost a partition's lease; its work stops now");
            lease.lose();
            stop(w, false).await;
            self.moved("lost");
        }
    }

    /// Renews the leases every quarter TTL, apart from the rounds of claims
    /// and hand-overs (which may take a while) so that none lapses meanwhile;
    /// runs until [`Cluster::run`] has handed everything over.
    async fn keep_leases(self: Arc<Self>, kv: jetstream::kv::Store) {
        let every = self.ttl / RENEW_DIVISOR;
        loop {
            tokio::time::sleep(every).await;
            self.renew(&kv).await;
        }
    }

    fn moved(&self, how: &str) {
        let m = &self.shared.metrics;
        m.partition_moves
            .get_or_create(&crate::metrics::MoveLabels { how: how.into() })
            .inc();
        m.partitions_owned.set(self.workers().len() as i64);
    }

    /// How long after a renewal is sent writes may still go out: the TTL
    /// less a margin for the clocks of this process and the server.
    fn lease_validity(&self) -> Duration {
        self.ttl - self.ttl / 5
    }

    /// Claims partition `n` if free and starts its work.
    async fn claim(&self, kv: &jetstream::kv::Store, n: u32) {
        let sent = Instant::now();
        let token = match lease::claim(kv, n, &self.instance).await {
            Ok(Some(token)) => token,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(partition = n, error = %format!("{e:#}"), "claiming a partition failed");
                return;
            }
        };
        let lease = Arc::new(Lease::new(n, token, sent + self.lease_validity()));
        match self.start(lease.clone()).await {
            Ok(worker) => {
                // Starting (reading and restoring the checkpoint) may take a
                // while: the lease is renewed once now, or given up.
                let renewed = renew_once(
                    kv,
                    &self.instance,
                    &lease,
                    &worker.revision,
                    self.lease_validity(),
                )
                .await;
                if let Err(e) = renewed {
                    tracing::warn!(partition = n, error = %format!("{e:#}"), "a partition's lease lapsed while it started; giving it up");
                    stop(worker, false).await;
                    return;
                }
                tracing::info!(partition = n, token, "took a partition over");
                self.workers().insert(n, worker);
                self.moved("claimed");
            }
            Err(e) => {
                tracing::warn!(partition = n, error = %format!("{e:#}"), "could not start a claimed partition; releasing it");
                let _ = lease::release(kv, n, token).await;
            }
        }
    }

    /// Gives partition `n` up: its engine flushes and checkpoints, then the
    /// lease goes, so the next owner resumes exactly there.
    async fn hand_over(&self, kv: &jetstream::kv::Store, n: u32) {
        let Some(worker) = self.workers().remove(&n) else {
            return;
        };
        let (lease, revision) = (worker.lease.clone(), worker.revision.clone());
        // Its lease stays renewed while it flushes.
        let renewing = {
            let (kv, lease, revision, instance) = (
                kv.clone(),
                lease.clone(),
                revision.clone(),
                self.instance.clone(),
            );
            let (every, validity) = (self.ttl / RENEW_DIVISOR, self.lease_validity());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if renew_once(&kv, &instance, &lease, &revision, validity)
                        .await
                        .is_err()
                    {
                        lease.lose();
                        return;
                    }
                }
            })
        };
        let flushed = stop(worker, true).await;
        renewing.abort();
        if !flushed {
            // Its writer may still be writing: the lease lapses instead.
            lease.lose();
        } else if lease.held() {
            let last = revision.load(SeqCst);
            let _ = lease::release(kv, n, last).await;
        }
        self.moved("released");
        tracing::info!(partition = n, "handed a partition over");
    }

    /// Starts partition `lease.partition`'s engine from its checkpoint.
    async fn start(&self, lease: Arc<Lease>) -> anyhow::Result<Worker> {
        let s = &self.shared;
        let n = lease.partition;
        let name = format!("{}.p{n}", s.settings.nats.stream);
        let source_name = format!("{}:p{n}", nats::source_name(&s.settings.nats));
        let config = s.settings.engine();
        // The schema may be new (Postgres was down when the instance
        // started), and the former owner is fenced off before its
        // checkpoint is read, so it cannot write a newer one after.
        s.store.migrate().await?;
        let fence = Fence {
            name: name.clone(),
            token: lease.token as i64,
        };
        s.store.fence_partition(&fence).await?;
        let checkpoint = s.store.partition_checkpoint(&name).await?;
        let stored: Option<SourcePos> = s
            .store
            .position(&source_name)
            .await?
            .and_then(|p| p.parse().ok());
        let (engine, from) = match checkpoint {
            Some((position, state)) => {
                let position: SourcePos = position
                    .parse()
                    .map_err(|e| anyhow::anyhow!("partition {n}'s checkpoint: {e}"))?;
                if stored.is_some_and(|s| s.covers(&position)) {
                    (Engine::restore(config, &state)?, position)
                } else {
                    tracing::warn!(partition = n, checkpoint = %position, "the store is behind the partition's checkpoint; rebuilding it from the start of the stream");
                    (Engine::new(config)?, SourcePos::Stream(0))
                }
            }
            None => (Engine::new(config)?, SourcePos::Stream(0)),
        };
        let next = match from {
            SourcePos::Stream(seq) => seq + 1,
            SourcePos::Log(_) => 1,
        };
        let shutdown = s.shutdown.child_token();
        let (tx, rx) = mpsc::channel::<StreamBatch>(nats::SOURCE_BATCHES);
        let (applied_tx, applied) = watch::channel(Reading {
            position: from,
            caught_up: false,
        });
        let (checkpointed_tx, checkpointed) = watch::channel(Persisted {
            position: from,
            ack: None,
        });
        let (store_tx, store_rx) = mpsc::channel(64);
        let mut tasks = vec![
            tokio::spawn(nats::jetstream_source(
                s.js.clone(),
                s.settings.nats.clone(),
                ConsumerSpec::partition(&s.settings.nats, n, lease.token),
                next,
                tx,
                s.ready.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(crate::pipeline::acker(s.client.clone(), checkpointed)),
        ];
        let campaigns = engine.campaigns();
        let engine = EngineTask {
            engine,
            source: Source::Stream(Box::new(StreamSource {
                rx,
                subjects: self.subjects.clone(),
                dlq: Some(nats::Dlq::new(
                    s.js.clone(),
                    &s.settings.nats,
                    tokio::runtime::Handle::current(),
                    shutdown.clone(),
                )),
                last_seq: match from {
                    SourcePos::Stream(seq) => Some(seq),
                    SourcePos::Log(_) => Some(0),
                },
                last_reply: None,
                caught_up: false,
                lag: crate::metrics::GaugeShare::new(s.metrics.engine_lag_messages.clone()),
            })),
            source_name,
            store: store_tx,
            hub: s.hub.clone(),
            cache: s.cache.clone(),
            live_out: Some(s.live_out.clone()),
            metrics: s.metrics.clone(),
            ready: s.ready.clone(),
            applied: applied_tx,
            checkpoint_every: Duration::from_millis(s.settings.log.checkpoint_interval_ms),
            shutdown: shutdown.clone(),
            campaign_rows_at: Instant::now(),
        }
        .spawn()?;
        let writer = tokio::spawn(crate::pipeline::store_writer(
            s.store.clone(),
            store_rx,
            Checkpoints::Partition {
                fence,
                lease: lease.clone(),
            },
            checkpointed_tx,
            s.metrics.clone(),
            s.ready.clone(),
            s.clock.clone(),
            None,
        ));
        tasks.push(tokio::spawn(ticker(
            s.sink.clone(),
            self.subjects.partition_tick(n),
            applied.clone(),
            lease.clone(),
            s.clock.clone(),
            s.settings.window.idle_lag_ms,
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(reads::serve(
            s.client.clone(),
            self.subjects.reads(n),
            self.router.clone(),
            campaigns.clone(),
            lease.clone(),
            shutdown.clone(),
        )));
        Ok(Worker {
            revision: Arc::new(AtomicU64::new(lease.token)),
            lease,
            campaigns,
            applied,
            shutdown,
            engine: Some(engine),
            writer,
            tasks,
        })
    }
}

/// Renews `lease` once, if it is still held: compare-and-set on its last
/// `revision`, its validity counted from when the renewal was sent.
async fn renew_once(
    kv: &jetstream::kv::Store,
    instance: &str,
    lease: &Lease,
    revision: &AtomicU64,
    validity: Duration,
) -> anyhow::Result<()> {
    anyhow::ensure!(lease.held(), "the lease lapsed or was fenced off");
    let sent = Instant::now();
    let next = lease::renew(kv, lease.partition, instance, revision.load(SeqCst)).await?;
    revision.store(next, SeqCst);
    lease.extend(sent + validity);
    Ok(())
}

/// Stops a partition's work. `graceful`: its engine applies what it holds,
/// flushes and checkpoints first (the lease is still held); otherwise it
/// stops at once and writes nothing more.
async fn stop(mut w: Worker, graceful: bool) -> bool {
    if !graceful {
        w.lease.lose();
    }
    w.shutdown.cancel();
    for t in w.tasks.drain(..) {
        t.abort();
    }
    let engine = w.engine.take();
    let writer = w.writer;
    if !graceful {
        writer.abort();
        return false;
    }
    let finished = tokio::time::timeout(Duration::from_secs(8), async move {
        if let Some(engine) = engine {
            tokio::task::spawn_blocking(move || engine.join())
                .await
                .ok();
        }
        writer.await.ok();
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            partition = w.lease.partition,
            "a partition's final flush took too long; the next owner resumes from its last checkpoint"
        );
        return false;
    }
    true
}

/// Every second, while the partition's engine is caught up and the lease
/// held, publishes the partition's tick (DESIGN §2, §8).
async fn ticker(
    sink: Arc<NatsSink>,
    subject: String,
    applied: watch::Receiver<Reading>,
    lease: Arc<Lease>,
    clock: Clock,
    idle_lag_ms: i64,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if !applied.borrow().caught_up || !lease.held() {
            continue;
        }
        let Some(ts) = crate::pipeline::tick_time(clock(), idle_lag_ms) else {
            continue;
        };
        let line = Event::Tick(Tick { ts }).to_json();
        if let Err(e) = sink.tick_to(line, vec![subject.clone()]).await {
            tracing::debug!(error = %e, "could not write a tick");
        }
    }
}

/// Live states of the partitions other instances own, into the local hub
/// (DESIGN §8: reads go anywhere): live counts from `<prefix>.live.>`,
/// whole states (open bucket and periods) from `<prefix>.state.>` and
/// buckets becoming final from `<prefix>.bucket.>`.
pub async fn follow_live(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    use futures_util::StreamExt;
    let s = &cluster.shared;
    let [states, buckets] = cluster.subjects.all_states_and_buckets();
    let mut subs = Vec::new();
    for subject in [cluster.subjects.all_live(), states, buckets] {
        match s.client.subscribe(subject.clone()).await {
            Ok(sub) => subs.push(sub),
            Err(e) => {
                tracing::error!(%subject, error = %e, "subscribing to live states failed");
                return;
            }
        }
    }
    let mut all = futures_util::stream::select_all(subs);
    #[derive(serde::Deserialize)]
    struct Live {
        webinar_id: String,
        live: u32,
        ts: i64,
    }
    let state_prefix = format!("{}.state.", s.settings.nats.subject_prefix);
    let bucket_prefix = format!("{}.bucket.", s.settings.nats.subject_prefix);
    loop {
        let msg = tokio::select! {
            m = all.next() => match m { Some(m) => m, None => return },
            _ = shutdown.cancelled() => return,
        };
        let foreign = |w: &str| !cluster.owns(cluster.partition_of(w));
        if msg.subject.starts_with(&state_prefix) {
            if let Ok(m) = serde_json::from_slice::<StateMessage>(&msg.payload)
                && foreign(&m.webinar_id)
            {
                let id: Arc<str> = Arc::from(m.webinar_id.as_str());
                if m.state.ts >= s.hub.state(&id).ts {
                    s.hub.publish(&id, m.state);
                }
            }
        } else if msg.subject.starts_with(&bucket_prefix) {
            if let Ok(m) = serde_json::from_slice::<BucketMessage>(&msg.payload)
                && foreign(&m.webinar_id)
            {
                s.hub.bucket(&m.webinar_id, m.stats);
            }
        } else if let Ok(live) = serde_json::from_slice::<Live>(&msg.payload)
            && foreign(&live.webinar_id)
        {
            // The count at once; the whole state follows on its subject.
            let id: Arc<str> = Arc::from(live.webinar_id.as_str());
            let mut state = s.hub.state(&id);
            if live.ts >= state.ts {
                state.live = live.live;
                state.ts = live.ts;
                s.hub.publish(&id, state);
            }
        }
    }
}

/// This instance's name in the lease bucket: `nats.instance`, or the host
/// name with the process id and a random suffix.
fn instance_id(configured: Option<&str>) -> String {
    if let Some(id) = configured {
        return id.to_owned();
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "eventflow".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let salt = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id()) as u16
    };
    format!("{host}-{}-{salt:04x}", std::process::id())
}
