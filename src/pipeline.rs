//! The live engine: a thread that follows the event source and folds it
//! in, and the task that makes its results durable.
//!
//! The source is the local log, read up to the committed position, or the
//! batches of the NATS source (JetStream stream sequences, or core
//! subscriptions). The same path serves recovery after a restart and live
//! operation: the engine applies each record, publishes live counts to the
//! hub, and hands final buckets with the source position they reflect to
//! the store writer. Every
//! `log.checkpoint_interval_ms` it also hands over a checkpoint of its whole
//! state; the writer persists it only after every row before it is
//! committed, so a restart from the checkpoint re-emits — identically —
//! whatever the crash may have lost, and nothing is counted twice.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineConfig, Output};
use crate::event::{self, EventType};
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::sink::feed::LiveFeed;
use crate::sink::live::{LiveHub, LiveState};
use crate::sink::store::{Batch, Store};
use crate::source::eventlog::{LogReader, Position};
use crate::source::nats::{Dlq, StreamBatch, Subjects};
use crate::util::{Clock, backoff};

/// The source name under which the local log's position is saved.
pub const LOCAL_SOURCE: &str = "local-log";

/// How far the engine has read its source: a place in the local log, or a
/// JetStream stream sequence (the last one applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePos {
    Log(Position),
    Stream(u64),
}

impl SourcePos {
    /// Whether this is at or past `other` (positions of different sources
    /// are never ordered).
    pub fn covers(&self, other: &SourcePos) -> bool {
        match (self, other) {
            (SourcePos::Log(a), SourcePos::Log(b)) => a >= b,
            (SourcePos::Stream(a), SourcePos::Stream(b)) => a >= b,
            _ => false,
        }
    }
}

impl std::fmt::Display for SourcePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcePos::Log(p) => p.fmt(f),
            SourcePos::Stream(seq) => write!(f, "seq:{seq}"),
        }
    }
}

impl std::str::FromStr for SourcePos {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("seq:") {
            Some(n) => n
                .parse()
                .map(SourcePos::Stream)
                .map_err(|e| format!("{s:?}: {e}")),
            None => s.parse().map(SourcePos::Log),
        }
    }
}

/// The time a tick written at wall time `now` carries: `now - idle_lag_ms`,
/// or none when the lag reaches back before 1970 (any lag is valid: a
/// deployment loading old history sets it far behind wall time).
pub fn tick_time(now: i64, idle_lag_ms: i64) -> Option<i64> {
    let ts = now.saturating_sub(idle_lag_ms);
    (ts >= 0).then_some(ts)
}

/// What the engine reports after each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub position: SourcePos,
    /// Nothing more was waiting in the source.
    pub caught_up: bool,
}

/// A checkpoint that is on disk, and the stream acknowledgement it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persisted {
    pub position: SourcePos,
    /// The reply subject of the last message the checkpoint covers.
    pub ack: Option<String>,
}

/// Messages from the engine thread to the store writer, in order.
pub enum StoreMsg {
    Write(Batch),
    Checkpoint {
        state: Vec<u8>,
        position: SourcePos,
        ack: Option<String>,
    },
}

/// The engine state saved with the source position it reflects.
pub struct Checkpoint {
    pub position: SourcePos,
    pub engine: Engine,
}

const MAGIC: &[u8; 8] = b"EFCKPT02";
/// Checkpoints of versions without campaign state: not resumed, the engine
/// rebuilds from the start of its source (the rows come out the same).
const OLD_MAGIC: &[u8; 8] = b"EFCKPT01";

/// Loads `path` if it exists. A checkpoint made under different engine
/// settings is refused: its buckets would not line up with the new ones.
pub fn load_checkpoint(path: &Path, config: &EngineConfig) -> anyhow::Result<Option<Checkpoint>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    if bytes.starts_with(OLD_MAGIC) {
        tracing::warn!(path = %path.display(), "the checkpoint predates campaign state; rebuilding from the start of the source");
        return Ok(None);
    }
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| anyhow::anyhow!("{}: not an EventFlow checkpoint", path.display()))?;
    let (position, state): (String, Vec<u8>) = postcard::from_bytes(rest)
        .map_err(|e| anyhow::anyhow!("{}: unreadable checkpoint: {e}", path.display()))?;
    let position: SourcePos = position
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let engine = Engine::restore(config.clone(), &state).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; to rebuild from the event log instead, delete this file",
            path.display()
        )
    })?;
    Ok(Some(Checkpoint { position, engine }))
}

/// Writes a checkpoint atomically: a temporary file, fsync, rename.
pub fn write_checkpoint(path: &Path, state: &[u8], position: SourcePos) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let body =
        postcard::to_stdvec(&(position.to_string(), state)).map_err(std::io::Error::other)?;
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Where the engine's records come from.
pub enum Source {
    /// The local log, up to what is committed.
    Log {
        reader: LogReader,
        committed: watch::Receiver<Position>,
    },
    /// NATS: batches from the JetStream consumer or the core subscriptions.
    Stream(Box<StreamSource>),
}

pub struct StreamSource {
    pub rx: mpsc::Receiver<StreamBatch>,
    pub subjects: Subjects,
    /// JetStream: rejected messages go here. Core mode only logs them.
    pub dlq: Option<Dlq>,
    /// JetStream: the last sequence applied. `None` in core mode, which
    /// has no positions.
    pub last_seq: Option<u64>,
    pub last_reply: Option<async_nats::Subject>,
    pub caught_up: bool,
    /// This consumer's part of `eventflow_engine_lag_messages`.
    pub lag: crate::metrics::GaugeShare,
}

/// Everything the engine thread needs.
pub struct EngineTask {
    pub engine: Engine,
    pub source: Source,
    /// The name the position is stored under.
    pub source_name: String,
    pub store: mpsc::Sender<StoreMsg>,
    pub hub: Arc<LiveHub>,
    /// Redis, when configured.
    pub cache: Option<Arc<crate::sink::cache::CacheFeed>>,
    /// NATS live counts, when configured.
    pub live_out: Option<Arc<LiveFeed>>,
    pub metrics: Arc<Metrics>,
    pub ready: watch::Sender<Readiness>,
    /// Where the engine has read to (ticks are written only while caught up).
    pub applied: watch::Sender<Reading>,
    pub checkpoint_every: Duration,
    pub shutdown: CancellationToken,
    /// When campaign rows were last taken (they go out every
    /// `CAMPAIGN_ROWS_EVERY` and before each checkpoint).
    pub campaign_rows_at: Instant,
}

/// How often changed campaign day rows are handed to the store writer: a
/// busy day's rows change with every visit, so they go out at this pace
/// rather than every round.
const CAMPAIGN_ROWS_EVERY: Duration = Duration::from_secs(1);

/// Records read per round before results are handed on.
const ROUND_LINES: usize = 20_000;

/// What one round of reading did.
struct Round {
    read: usize,
    position: Option<SourcePos>,
    caught_up: bool,
    /// Nothing was read and nothing will come: stop.
    finished: bool,
}

/// How often live states are published while many webinars change.
const PUBLISH_EVERY: Duration = Duration::from_millis(20);

/// Changed webinars published at once, without waiting for PUBLISH_EVERY.
const PUBLISH_AT_ONCE: usize = 64;

/// How often a wait that ends at a deadline looks for input.
const POLL: Duration = Duration::from_millis(1);

/// Waits until `ready()` or `deadline`, looking every [`POLL`]. Used only
/// while live states wait to be published, so for [`PUBLISH_EVERY`] at
/// most, and without timers: the engine thread runs outside the runtime.
fn poll_until(deadline: Instant, mut ready: impl FnMut() -> bool) {
    loop {
        if ready() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

impl EngineTask {
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("eventflow-engine".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let recovery_target = match &self.source {
            Source::Log { committed, .. } => Some(*committed.borrow()),
            Source::Stream(_) => None,
        };
        let mut recovered = false;
        let mut last_checkpoint = Instant::now();
        let mut last_sent = self.position();
        let mut counted = self.engine.counters().clone();
        let mut live_counted = 0i64;
        let mut last_publish = Instant::now();
        // Records were applied since the last publish.
        let mut unpublished = false;
        loop {
            // While live states wait to go out, waiting for input ends at
            // their publishing time.
            let publish_at = unpublished.then(|| last_publish + PUBLISH_EVERY);
            let round = match &mut self.source {
                Source::Log { reader, committed } => {
                    match log_round(reader, committed, &mut self.engine, &self.metrics) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, position = %reader.position(), "reading the event log failed; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    }
                }
                Source::Stream(s) => stream_round(
                    s,
                    &mut self.engine,
                    &self.metrics,
                    &self.shutdown,
                    publish_at,
                ),
            };
            if round.finished {
                break;
            }
            // Live states of a few webinars go out at once. When many
            // changed, each publish touching every one of them, they go out
            // at most every PUBLISH_EVERY (input or not): readers see at
            // most one state per push interval anyway.
            unpublished |= round.read > 0;
            if unpublished
                && (self.engine.changed_count() <= PUBLISH_AT_ONCE
                    || last_publish.elapsed() >= PUBLISH_EVERY)
            {
                last_publish = Instant::now();
                unpublished = false;
                self.publish(&mut counted, &mut live_counted);
            }
            let position = round.position;
            let checkpoint_due = last_checkpoint.elapsed() >= self.checkpoint_every;
            if !self.hand_over(position, &mut last_sent, checkpoint_due) {
                tracing::error!("the store writer stopped; the engine stops");
                self.metrics.live_viewers.dec_by(live_counted);
                return;
            }
            // Readers of `applied` may rely on the live states showing it.
            if !unpublished && let Some(p) = position {
                self.applied.send_replace(Reading {
                    position: p,
                    caught_up: round.caught_up,
                });
            }
            let reached = match (recovery_target, position) {
                (Some(target), Some(SourcePos::Log(p))) => p >= target,
                _ => round.caught_up,
            };
            if !recovered && reached {
                recovered = true;
                self.ready.send_modify(|r| r.recovered = true);
                tracing::info!(position = ?position.map(|p| p.to_string()), "caught up with the source");
            }
            if checkpoint_due {
                last_checkpoint = Instant::now();
                self.checkpoint();
            }
            if round.read == 0
                && let Source::Log { committed, reader } = &mut self.source
            {
                if self.shutdown.is_cancelled() && reader.position() >= *committed.borrow() {
                    break;
                }
                // Sleep until the log grows or shutdown begins (or live
                // states are due). tokio's sync primitives need no runtime,
                // so this cannot fail while the runtime itself is shutting
                // down.
                let shutdown = &self.shutdown;
                if let Some(at) = publish_at {
                    poll_until(at, || {
                        committed.has_changed().unwrap_or(true) || shutdown.is_cancelled()
                    });
                    continue;
                }
                futures_executor::block_on(async {
                    tokio::select! {
                        _ = committed.changed() => {}
                        _ = shutdown.cancelled() => {}
                    }
                });
            }
        }
        self.publish(&mut counted, &mut live_counted);
        self.hand_over(self.position(), &mut last_sent, true);
        self.checkpoint();
        // Its viewers are another engine's now (or nobody's).
        self.metrics.live_viewers.dec_by(live_counted);
        tracing::info!(position = ?self.position().map(|p| p.to_string()), "engine stopped after a final flush");
    }

    /// Hands the rows made since the last round to the store writer. The
    /// position goes with rows, and before a checkpoint (`checkpoint`: a
    /// restart needs the store to cover it); alone every round it would
    /// cost a commit per round. False once the store writer has stopped.
    fn hand_over(
        &mut self,
        position: Option<SourcePos>,
        last_sent: &mut Option<SourcePos>,
        checkpoint: bool,
    ) -> bool {
        let mut batch = self.take_batch();
        if checkpoint || self.campaign_rows_at.elapsed() >= CAMPAIGN_ROWS_EVERY {
            self.campaign_rows_at = Instant::now();
            batch.campaigns = self.engine.take_campaign_rows();
            if let Some(cache) = &self.cache {
                cache.campaigns(&batch.campaigns);
            }
        }
        if position != *last_sent
            && let Some(p) = position
            && (!batch.is_empty() || checkpoint)
        {
            batch.position = Some((self.source_name.clone(), p.to_string()));
        }
        if batch.is_empty() {
            return true;
        }
        *last_sent = position;
        self.store.blocking_send(StoreMsg::Write(batch)).is_ok()
    }

    fn position(&self) -> Option<SourcePos> {
        match &self.source {
            Source::Log { reader, .. } => Some(SourcePos::Log(reader.position())),
            Source::Stream(s) => s.last_seq.map(SourcePos::Stream),
        }
    }

    fn checkpoint(&mut self) {
        let Some(position) = self.position() else {
            // Core mode: the state is still worth keeping across a restart.
            let state = self.engine.save();
            let _ = self.store.blocking_send(StoreMsg::Checkpoint {
                state,
                position: SourcePos::Stream(0),
                ack: None,
            });
            return;
        };
        let ack = match &self.source {
            Source::Stream(s) => s.last_reply.as_ref().map(|r| r.to_string()),
            Source::Log { .. } => None,
        };
        let state = self.engine.save();
        let _ = self.store.blocking_send(StoreMsg::Checkpoint {
            state,
            position,
            ack,
        });
    }

    /// Final buckets since the last round, also sent to live subscribers.
    fn take_batch(&mut self) -> Batch {
        let mut batch = Batch::default();
        for out in self.engine.drain() {
            match out {
                Output::Presence(b) => {
                    self.hub.bucket(&b.webinar_id, b.stats);
                    if let Some(out) = &self.live_out {
                        out.bucket(&b.webinar_id, b.stats);
                    }
                    if let Some(cache) = &self.cache {
                        cache.bucket(&b.webinar_id, b.stats);
                    }
                    batch.presence.push(b);
                }
                Output::Activity(a) => batch.activity.push(a),
                Output::Rollup(r) => batch.rollups.push(r),
            }
        }
        batch
    }

    /// Live states of the webinars that changed, and counters.
    fn publish(&mut self, counted: &mut crate::engine::Counters, live_counted: &mut i64) {
        let (hub, cache, live_out) = (&self.hub, &self.cache, &self.live_out);
        let tick = self.engine.tick_clock().unwrap_or(0);
        self.engine.take_changed(|id, snapshot| {
            let (state, count_changed) = match snapshot {
                Some(s) => {
                    let state = LiveState::from(s);
                    (state, hub.publish(id, state))
                }
                None => {
                    hub.forget(id, tick);
                    let state = LiveState {
                        ts: tick,
                        ..LiveState::default()
                    };
                    (state, true)
                }
            };
            if let Some(cache) = cache {
                cache.live(id, &state);
            }
            // NATS carries the live count when it changes (DESIGN §3).
            if let Some(out) = live_out {
                if count_changed {
                    out.live(id, &state);
                }
                out.state(id, &state);
            }
        });
        let now = self.engine.counters();
        for t in EventType::ALL {
            self.metrics
                .record(t.as_str(), "applied", now.applied(t) - counted.applied(t));
        }
        self.metrics
            .record("any", "duplicate", now.duplicates - counted.duplicates);
        self.metrics.late.inc_by(now.late - counted.late);
        self.metrics.clamped.inc_by(now.clamped - counted.clamped);
        // Each engine adds its own viewers (an instance sharing partitions
        // runs one per partition).
        let live = self.engine.live_total() as i64;
        self.metrics.live_viewers.inc_by(live - *live_counted);
        *live_counted = live;
        *counted = now.clone();
    }
}

/// Reads the committed part of the log (at most one round's worth).
fn log_round(
    reader: &mut LogReader,
    committed: &mut watch::Receiver<Position>,
    engine: &mut Engine,
    metrics: &Metrics,
) -> std::io::Result<Round> {
    let limit = *committed.borrow_and_update();
    // The round's lines are gathered, decoded, then applied together, so
    // the engine can fetch ahead what the next records will read
    // (`Engine::apply_all`).
    let mut text = Vec::new();
    let mut lines = Vec::new();
    let read = reader.read_until(limit, ROUND_LINES, |line, pos| {
        let start = text.len();
        text.extend_from_slice(line);
        lines.push((start, text.len(), pos));
    })?;
    let mut unreadable = Vec::new();
    let mut events = Vec::with_capacity(lines.len());
    let mut from = Vec::with_capacity(lines.len());
    for (k, &(start, end, pos)) in lines.iter().enumerate() {
        match event::decode(&text[start..end]) {
            Ok(ev) => {
                events.push(ev);
                from.push(k);
            }
            Err(e) => unreadable.push((pos, e.to_string())),
        }
    }
    engine.apply_all(
        &events,
        |_| None,
        |i, applied| {
            if let Err(e) = applied {
                unreadable.push((lines[from[i]].2, e.to_string()));
            }
        },
    );
    unreadable.sort_by_key(|(pos, _)| *pos);
    for (pos, reason) in &unreadable {
        tracing::warn!(position = %pos, %reason, "skipped an unreadable log line");
    }
    metrics.record("unknown", "invalid", unreadable.len() as u64);
    let position = reader.position();
    let committed = *committed.borrow();
    // Bytes behind within today's file (a day behind shows as the whole file).
    let lag = if committed.day == position.day {
        committed.offset.saturating_sub(position.offset)
    } else {
        committed.offset
    };
    metrics.engine_lag_bytes.set(lag as i64);
    Ok(Round {
        read,
        position: Some(SourcePos::Log(position)),
        caught_up: position >= committed,
        finished: false,
    })
}

/// Applies the batches the NATS source has handed over, waiting for one
/// when there are none. Rejected messages are in the dead-letter stream
/// before the round's results move on.
fn stream_round(
    s: &mut StreamSource,
    engine: &mut Engine,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    publish_at: Option<Instant>,
) -> Round {
    let idle = |s: &StreamSource| Round {
        read: 0,
        position: s.last_seq.map(SourcePos::Stream),
        caught_up: s.caught_up,
        finished: false,
    };
    let mut arrived = s.rx.try_recv().ok();
    if arrived.is_none()
        && let Some(at) = publish_at
    {
        poll_until(at, || {
            arrived = s.rx.try_recv().ok();
            arrived.is_some() || shutdown.is_cancelled()
        });
        if arrived.is_none() {
            return idle(s);
        }
    }
    let first = match arrived {
        Some(b) => b,
        None => {
            let waited = futures_executor::block_on(async {
                tokio::select! {
                    b = s.rx.recv() => b,
                    _ = shutdown.cancelled() => None,
                }
            });
            match waited {
                Some(b) => b,
                None => {
                    return Round {
                        finished: true,
                        ..idle(s)
                    };
                }
            }
        }
    };
    let mut read = 0;
    let mut invalid = 0u64;
    let mut batch = Some(first);
    while let Some(b) = batch.take() {
        // Decoded first, then applied together, so the engine can fetch
        // ahead what the next records will read (`Engine::apply_all`).
        let mut events = Vec::with_capacity(b.records.len());
        let mut records = Vec::with_capacity(b.records.len());
        let mut rejected = Vec::new();
        for r in &b.records {
            if s.last_seq.is_some_and(|last| r.seq <= last) {
                continue;
            }
            match s.subjects.decode(b.subject(r), b.payload(r), r.stored) {
                Ok(ev) => {
                    events.push(ev);
                    records.push(r);
                }
                Err(reason) => rejected.push((r, reason)),
            }
            if s.last_seq.is_some() {
                s.last_seq = Some(r.seq);
            }
        }
        engine.apply_all(
            &events,
            |i| Some(records[i].stored),
            |i, applied| {
                if let Err(e) = applied {
                    rejected.push((records[i], e.to_string()));
                }
            },
        );
        // In stream order, as they came.
        rejected.sort_by_key(|(r, _)| r.seq);
        invalid += rejected.len() as u64;
        for (r, reason) in rejected {
            match &mut s.dlq {
                Some(dlq) => dlq.reject(&b, r, reason),
                None => {
                    tracing::warn!(subject = %b.subject(r), %reason, "dropped an invalid message")
                }
            }
        }
        if s.last_seq.is_some()
            && let Some(last) = b.records.last()
            && s.last_seq == Some(last.seq)
        {
            s.last_reply = b.last_reply.clone();
        }
        read += b.records.len();
        s.caught_up = b.pending == 0;
        s.lag.set(b.pending as i64);
        if read < ROUND_LINES {
            batch = s.rx.try_recv().ok();
        }
    }
    metrics.record("unknown", "invalid", invalid);
    if let Some(dlq) = &mut s.dlq {
        dlq.flush();
    }
    Round {
        read,
        position: s.last_seq.map(SourcePos::Stream),
        caught_up: s.caught_up,
        finished: false,
    }
}

/// Writes what the engine hands over, retrying a failing store with capped,
/// jittered backoff, and persists checkpoints once the rows before them are
/// in. While the store is down it keeps taking the engine's batches (merged
/// into the one being retried), so the engine never waits on the store and
/// aggregation goes on; a checkpoint waits for every row handed over before
/// it.
///
/// With `first_contact` (the store was unreachable at start), nothing is
/// written before `FirstContact::check` has passed.
#[allow(clippy::too_many_arguments)]
pub async fn store_writer(
    store: Store,
    mut rx: mpsc::Receiver<StoreMsg>,
    checkpoints: Checkpoints,
    checkpointed: watch::Sender<Persisted>,
    metrics: Arc<Metrics>,
    ready: watch::Sender<Readiness>,
    clock: Clock,
    first_contact: Option<FirstContact>,
) {
    let mut pending = Pending::default();
    let mut open = true;
    if let Some(check) = first_contact {
        let mut attempt = 0;
        loop {
            let checked = tokio::time::timeout(WRITE_TIMEOUT, check.check(&store))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the store did not answer in time")));
            match checked {
                Ok(Ok(())) => {
                    tracing::info!(
                        "the store is reachable: migrations applied, its position checked"
                    );
                    ready.send_modify(|r| r.degraded.retain(|(part, _)| part != "store"));
                    break;
                }
                Ok(Err(behind)) => {
                    tracing::error!("{behind}");
                    store_degraded(&ready, behind.clone());
                    let _ = check.failed.set(behind);
                    check.shutdown.cancel();
                    return;
                }
                Err(e) => {
                    let why = format!("unreachable since start: {e:#}");
                    if attempt == 0 {
                        tracing::warn!(error = %why, "the store is still unreachable; retrying, ingest and aggregation go on");
                    }
                    store_degraded(&ready, why);
                    back_off(attempt, &mut rx, &mut pending, &mut open).await;
                    attempt += 1;
                }
            }
        }
    }
    let mut attempt = 0;
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(m) => pending.absorb(m),
                None => break,
            }
        }
        while let Ok(m) = rx.try_recv() {
            pending.absorb(m);
        }
        // Write, taking what the engine hands over meanwhile.
        let mut arrived = Pending::default();
        let started = Instant::now();
        if let Checkpoints::Partition { lease, .. } = &checkpoints
            && !lease.held()
        {
            tracing::warn!(
                partition = lease.partition,
                "the lease is no longer held; the partition's writer stops without writing"
            );
            lease.lose();
            return;
        }
        let fence = checkpoints.fence();
        let written = if pending.batch.is_empty() {
            Ok(())
        } else {
            let write = tokio::time::timeout(
                WRITE_TIMEOUT,
                store.write_fenced(&pending.batch, clock(), fence),
            );
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => break r.unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut.into())),
                    more = rx.recv(), if open => match more {
                        Some(m) => arrived.absorb(m),
                        None => open = false,
                    },
                }
            }
        };
        match written {
            Ok(()) => {
                metrics.flush.observe(started.elapsed().as_secs_f64());
                metrics.buckets_flushed.inc_by(pending.batch.rows() as u64);
                if attempt > 0 {
                    tracing::info!(attempts = attempt + 1, "the store is back; flushed");
                    ready.send_modify(|r| r.degraded.retain(|(part, _)| part != "store"));
                }
                attempt = 0;
                if let Some((state, persisted)) = pending.checkpoint.take()
                    && let Err(fenced) = persist_checkpoint(
                        &store,
                        &checkpoints,
                        state,
                        persisted,
                        &checkpointed,
                        clock(),
                    )
                    .await
                {
                    tracing::error!(error = %fenced, "a newer owner has the partition; its writer stops");
                    checkpoints.lost();
                    return;
                }
                pending = arrived;
            }
            Err(fenced @ crate::sink::store::WriteError::Fenced { .. }) => {
                tracing::error!(error = %fenced, "a newer owner has the partition; its writer stops");
                checkpoints.lost();
                return;
            }
            Err(e) => {
                metrics.flush_failures.inc();
                let why = e.to_string();
                if attempt == 0 {
                    tracing::warn!(error = %why, "flushing to the store failed; retrying, aggregation goes on");
                }
                store_degraded(&ready, why);
                pending.merge(arrived);
                back_off(attempt, &mut rx, &mut pending, &mut open).await;
                attempt += 1;
            }
        }
        if !open && pending.is_empty() {
            break;
        }
    }
}

/// What the store writer checks when it first reaches a store that was
/// unreachable at start, before it writes anything: the migrations are
/// applied, and the store's position covers the one the engine resumed
/// from. A store behind it (a new database, a restored backup, commits it
/// acknowledged and lost) lacks rows before the checkpoint that only a
/// rebuild from the start of the source writes again: the service then
/// stops with that error, and the next start, finding the store reachable
/// and behind, rebuilds.
pub struct FirstContact {
    /// The name the position is stored under.
    pub source: String,
    /// The checkpoint's position the engine resumed from; `None` when it
    /// started from the beginning of the source (any store will do).
    pub resumed_from: Option<SourcePos>,
    /// Where the error goes when the store is behind; the service exits
    /// with it.
    pub failed: Arc<std::sync::OnceLock<String>>,
    pub shutdown: CancellationToken,
}

impl FirstContact {
    /// `Err`: the store is still unreachable (or failing); `Ok(Err)`: it
    /// is behind the checkpoint.
    async fn check(&self, store: &Store) -> anyhow::Result<Result<(), String>> {
        store.migrate().await?;
        let stored: Option<SourcePos> = store
            .position(&self.source)
            .await?
            .and_then(|p| p.parse().ok());
        Ok(match self.resumed_from {
            Some(c) if !stored.is_some_and(|s| s.covers(&c)) => Err(format!(
                "the store's position ({}) is behind the checkpoint ({c}) the engine resumed from \
                 while the store was unreachable: rows before the checkpoint are missing; \
                 stopping so that the next start rebuilds them from the start of the source",
                stored.map_or("none".to_owned(), |s| s.to_string())
            )),
            _ => Ok(()),
        })
    }
}

/// Names the store on `/readyz` as degraded, with why.
fn store_degraded(ready: &watch::Sender<Readiness>, why: String) {
    ready.send_modify(|r| {
        r.degraded.retain(|(part, _)| part != "store");
        r.degraded.push(("store".into(), why));
    });
}

/// Waits out the backoff of retry `attempt`, taking in what the engine
/// hands over meanwhile (its queue never fills while the store is down).
async fn back_off(
    attempt: u32,
    rx: &mut mpsc::Receiver<StoreMsg>,
    pending: &mut Pending,
    open: &mut bool,
) {
    let wait = tokio::time::sleep(backoff(
        attempt,
        Duration::from_millis(100),
        STORE_RETRY_CAP,
    ));
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = &mut wait => return,
            more = rx.recv(), if *open => match more {
                Some(m) => pending.absorb(m),
                None => *open = false,
            },
        }
    }
}

/// The longest wait between store retries: a store that returns is
/// written to within this.
const STORE_RETRY_CAP: Duration = Duration::from_secs(5);

/// How long one store transaction may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A partition's lease as its owner's parts see it: held until it lapses
/// (no renewal within the TTL, by this process's monotonic clock, which
/// keeps running while the process is stopped) or is lost.
pub struct Lease {
    pub partition: u32,
    /// The claim's revision: the fencing token of everything written under
    /// this lease.
    pub token: u64,
    valid_until: Mutex<Instant>,
    lost: CancellationToken,
}

impl Lease {
    pub fn new(partition: u32, token: u64, valid_until: Instant) -> Lease {
        Lease {
            partition,
            token,
            valid_until: Mutex::new(valid_until),
            lost: CancellationToken::new(),
        }
    }

    /// Whether writes under this lease may still go out.
    pub fn held(&self) -> bool {
        !self.lost.is_cancelled() && Instant::now() < *self.valid_until.lock().expect("lease lock")
    }

    /// The lease is gone (a renewal failed, or the store holds a newer
    /// token): nothing more is written under it.
    pub fn lose(&self) {
        self.lost.cancel();
    }

    pub fn extend(&self, until: Instant) {
        *self.valid_until.lock().expect("lease lock") = until;
    }
}

/// Acknowledges (ack-all) the stream up to each persisted checkpoint.
pub async fn acker(client: async_nats::Client, mut persisted: watch::Receiver<Persisted>) {
    while persisted.changed().await.is_ok() {
        let reply = persisted.borrow_and_update().ack.clone();
        if let Some(reply) = reply
            && let Err(e) = client
                .publish(reply, bytes::Bytes::from_static(b"+ACK"))
                .await
        {
            // Harmless: the next checkpoint acknowledges everything before it.
            tracing::debug!(error = %e, "acknowledging the stream failed");
        }
    }
}

/// Where checkpoints go: a file of the data directory, or (a partition's,
/// DESIGN §8) the store, fenced by the lease it is written under.
pub enum Checkpoints {
    File(PathBuf),
    Partition {
        fence: crate::sink::store::Fence,
        lease: Arc<Lease>,
    },
}

impl Checkpoints {
    fn fence(&self) -> Option<&crate::sink::store::Fence> {
        match self {
            Checkpoints::File(_) => None,
            Checkpoints::Partition { fence, .. } => Some(fence),
        }
    }

    /// The store refused a fenced write: the lease is gone.
    fn lost(&self) {
        if let Checkpoints::Partition { lease, .. } = self {
            lease.lose();
        }
    }
}

/// Persists a checkpoint; `Err` only when a partition's is fenced off.
async fn persist_checkpoint(
    store: &Store,
    checkpoints: &Checkpoints,
    state: Vec<u8>,
    persisted: Persisted,
    checkpointed: &watch::Sender<Persisted>,
    now_ms: i64,
) -> Result<(), crate::sink::store::WriteError> {
    let path = match checkpoints {
        Checkpoints::File(path) => path.clone(),
        Checkpoints::Partition { fence, lease } => {
            if !lease.held() {
                return Ok(());
            }
            let position = persisted.position.to_string();
            let saved = tokio::time::timeout(
                WRITE_TIMEOUT,
                store.save_partition_checkpoint(fence, &position, &state, now_ms),
            )
            .await
            .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut.into()));
            match saved {
                Ok(()) => {
                    checkpointed.send_replace(persisted);
                }
                Err(fenced @ crate::sink::store::WriteError::Fenced { .. }) => return Err(fenced),
                Err(e) => {
                    tracing::error!(error = %e, "saving a partition checkpoint failed; the previous one stays")
                }
            }
            return Ok(());
        }
    };
    let position = persisted.position;
    match tokio::task::spawn_blocking(move || write_checkpoint(&path, &state, position)).await {
        Ok(Ok(())) => {
            checkpointed.send_replace(persisted);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "writing a checkpoint failed; the previous one stays")
        }
        Err(e) => tracing::error!(error = %e, "the checkpoint task failed"),
    }
    Ok(())
}

/// What the writer holds: rows merged into one transaction, and the newest
/// checkpoint, to be written after them.
#[derive(Default)]
struct Pending {
    batch: Batch,
    checkpoint: Option<(Vec<u8>, Persisted)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.checkpoint.is_none()
    }

    /// Adds what arrived after this: its rows, and its newer checkpoint.
    fn merge(&mut self, later: Pending) {
        self.absorb(StoreMsg::Write(later.batch));
        if let Some(checkpoint) = later.checkpoint {
            self.checkpoint = Some(checkpoint);
        }
    }

    fn absorb(&mut self, msg: StoreMsg) {
        match msg {
            StoreMsg::Write(more) => {
                self.batch.presence.extend(more.presence);
                self.batch.rollups.extend(more.rollups);
                self.batch.activity.extend(more.activity);
                self.batch.campaigns.merge(more.campaigns);

                if more.position.is_some() {
                    self.batch.position = more.position;
                }
            }
            StoreMsg::Checkpoint {
                state,
                position,
                ack,
            } => self.checkpoint = Some((state, Persisted { position, ack })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_positions_round_trip_and_compare_only_within_a_source() {
        let log: SourcePos = "2026-11-26:1234".parse().unwrap();
        assert_eq!(
            log,
            SourcePos::Log(Position {
                day: jiff::civil::date(2026, 11, 26),
                offset: 1234
            })
        );
        assert_eq!(log.to_string().parse::<SourcePos>().unwrap(), log);
        let seq: SourcePos = "seq:42".parse().unwrap();
        assert_eq!(seq, SourcePos::Stream(42));
        assert_eq!(seq.to_string(), "seq:42");
        assert!("seq:x".parse::<SourcePos>().is_err());
        assert!(SourcePos::Stream(43).covers(&seq) && seq.covers(&seq));
        assert!(!SourcePos::Stream(41).covers(&seq));
        // A store written from the local log says nothing about a stream.
        assert!(!log.covers(&seq) && !seq.covers(&log));
    }

    #[test]
    fn a_checkpoint_keeps_its_stream_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.bin");
        let config = EngineConfig::default();
        let engine = Engine::new(config.clone()).unwrap();
        write_checkpoint(&path, &engine.save(), SourcePos::Stream(7)).unwrap();
        let loaded = load_checkpoint(&path, &config).unwrap().unwrap();
        assert_eq!(loaded.position, SourcePos::Stream(7));
    }

    #[test]
    fn ticks_trail_wall_time_by_the_idle_lag_and_never_go_before_1970() {
        assert_eq!(tick_time(10_000, 2_000), Some(8_000));
        assert_eq!(tick_time(10_000, 0), Some(10_000));
        assert_eq!(tick_time(10_000, 10_000), Some(0));
        assert_eq!(tick_time(10_000, 10_001), None);
        assert_eq!(tick_time(10_000, i64::MAX), None);
    }
}
