//! The live engine: a thread that follows the event log and folds it in,
//! and the task that makes its results durable.
//!
//! The engine thread reads the log up to the committed position (the same
//! path serves recovery after a restart and live operation), applies each
//! record, publishes live counts to the hub, and hands final buckets with
//! the log position they reflect to the store writer. Every
//! `log.checkpoint_interval_ms` it also hands over a checkpoint of its whole
//! state; the writer persists it only after every row before it is
//! committed, so a restart from the checkpoint re-emits — identically —
//! whatever the crash may have lost, and nothing is counted twice.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineConfig, Output};
use crate::event::{self, EventType};
use crate::eventlog::{LogReader, Position};
use crate::http::Readiness;
use crate::live::{LiveHub, LiveState};
use crate::metrics::Metrics;
use crate::store::{Batch, Store};
use crate::util::{Clock, backoff};

/// The source name under which the local log's position is saved.
pub const LOCAL_SOURCE: &str = "local-log";

/// Messages from the engine thread to the store writer, in order.
pub enum StoreMsg {
    Write(Batch),
    Checkpoint { state: Vec<u8>, position: Position },
}

/// The engine state saved with the log position it reflects.
pub struct Checkpoint {
    pub position: Position,
    pub engine: Engine,
}

const MAGIC: &[u8; 8] = b"EFCKPT01";

/// Loads `path` if it exists. A checkpoint made under different engine
/// settings is refused: its buckets would not line up with the new ones.
pub fn load_checkpoint(path: &Path, config: &EngineConfig) -> anyhow::Result<Option<Checkpoint>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| anyhow::anyhow!("{}: not an EventFlow checkpoint", path.display()))?;
    let (position, state): (String, Vec<u8>) = postcard::from_bytes(rest)
        .map_err(|e| anyhow::anyhow!("{}: unreadable checkpoint: {e}", path.display()))?;
    let position: Position = position
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
pub fn write_checkpoint(path: &Path, state: &[u8], position: Position) -> std::io::Result<()> {
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

/// Everything the engine thread needs.
pub struct EngineTask {
    pub engine: Engine,
    pub reader: LogReader,
    pub committed: watch::Receiver<Position>,
    pub store: mpsc::Sender<StoreMsg>,
    pub hub: Arc<LiveHub>,
    /// Redis, when configured.
    pub cache: Option<Arc<crate::cache::CacheFeed>>,
    pub metrics: Arc<Metrics>,
    pub ready: watch::Sender<Readiness>,
    /// Where the engine has read to (for tick writing: only while caught up).
    pub applied: watch::Sender<Position>,
    pub checkpoint_every: Duration,
    pub shutdown: CancellationToken,
}

/// Lines read per round before results are handed on.
const ROUND_LINES: usize = 20_000;

impl EngineTask {
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("eventflow-engine".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let recovery_target = *self.committed.borrow();
        let mut recovered = false;
        let mut last_checkpoint = Instant::now();
        let mut last_sent = self.reader.position();
        let mut counted = self.engine.counters().clone();
        loop {
            let limit = *self.committed.borrow_and_update();
            let mut invalid = 0u64;
            let engine = &mut self.engine;
            let read = self.reader.read_until(limit, ROUND_LINES, |line, pos| {
                let applied = event::decode(line)
                    .map_err(|e| e.to_string())
                    .and_then(|ev| engine.apply(&ev, None).map_err(|e| e.to_string()));
                if let Err(reason) = applied {
                    invalid += 1;
                    tracing::warn!(position = %pos, %reason, "skipped an unreadable log line");
                }
            });
            let read = match read {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, position = %self.reader.position(), "reading the event log failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            self.metrics.record("unknown", "invalid", invalid);
            self.publish(&mut counted);
            let position = self.reader.position();
            let mut batch = self.take_batch();
            if position != last_sent {
                batch.position = Some((LOCAL_SOURCE.to_owned(), position.to_string()));
            }
            if !batch.is_empty() {
                last_sent = position;
                if self.store.blocking_send(StoreMsg::Write(batch)).is_err() {
                    tracing::error!("the store writer stopped; the engine stops");
                    return;
                }
            }
            self.applied.send_replace(position);
            let committed = *self.committed.borrow();
            // Bytes behind within today's file (a day behind shows as the whole file).
            let lag = if committed.day == position.day {
                committed.offset.saturating_sub(position.offset)
            } else {
                committed.offset
            };
            self.metrics.engine_lag_bytes.set(lag as i64);
            if !recovered && position >= recovery_target {
                recovered = true;
                self.ready.send_modify(|r| r.recovered = true);
                tracing::info!(%position, "caught up with the event log");
            }
            if last_checkpoint.elapsed() >= self.checkpoint_every {
                last_checkpoint = Instant::now();
                self.checkpoint(position);
            }
            if read == 0 {
                if self.shutdown.is_cancelled() && position >= *self.committed.borrow() {
                    break;
                }
                // Sleep until the log grows or shutdown begins. tokio's sync
                // primitives need no runtime, so this cannot fail while the
                // runtime itself is shutting down.
                let committed = &mut self.committed;
                let shutdown = &self.shutdown;
                futures_executor::block_on(async {
                    tokio::select! {
                        _ = committed.changed() => {}
                        _ = shutdown.cancelled() => {}
                    }
                });
            }
        }
        let position = self.reader.position();
        self.checkpoint(position);
        tracing::info!(%position, "engine stopped after a final flush");
    }

    fn checkpoint(&mut self, position: Position) {
        let state = self.engine.save();
        let _ = self
            .store
            .blocking_send(StoreMsg::Checkpoint { state, position });
    }

    /// Final buckets since the last round, also sent to live subscribers.
    fn take_batch(&mut self) -> Batch {
        let mut batch = Batch::default();
        for out in self.engine.drain() {
            match out {
                Output::Presence(b) => {
                    self.hub.bucket(&b.webinar_id, b.stats);
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
    fn publish(&mut self, counted: &mut crate::engine::Counters) {
        let (hub, cache) = (&self.hub, &self.cache);
        let tick = self.engine.tick_clock().unwrap_or(0);
        self.engine.take_changed(|id, snapshot| {
            let state = match snapshot {
                Some(s) => {
                    let state = LiveState::from(s);
                    hub.publish(id, state.clone());
                    state
                }
                None => {
                    hub.forget(id, tick);
                    LiveState {
                        ts: tick,
                        ..LiveState::default()
                    }
                }
            };
            if let Some(cache) = cache {
                cache.live(id, &state);
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
        self.metrics
            .live_viewers
            .set(self.engine.live_total() as i64);
        *counted = now.clone();
    }
}

/// Writes what the engine hands over, retrying a failing store with capped,
/// jittered backoff, and persists checkpoints once the rows before them are
/// in. While the store is down it keeps taking the engine's batches (merged
/// into the one being retried), so the engine never waits on the store and
/// aggregation goes on; a checkpoint waits for every row handed over before
/// it.
pub async fn store_writer(
    store: Store,
    mut rx: mpsc::Receiver<StoreMsg>,
    checkpoint_path: PathBuf,
    checkpointed: watch::Sender<Position>,
    metrics: Arc<Metrics>,
    ready: watch::Sender<Readiness>,
    clock: Clock,
) {
    let mut pending = Pending::default();
    let mut open = true;
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
        let written = if pending.batch.is_empty() {
            Ok(())
        } else {
            let write = tokio::time::timeout(WRITE_TIMEOUT, store.write(&pending.batch, clock()));
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => break r.unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut)),
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
                if let Some((state, position)) = pending.checkpoint.take() {
                    persist_checkpoint(&checkpoint_path, state, position, &checkpointed).await;
                }
                pending = arrived;
            }
            Err(e) => {
                metrics.flush_failures.inc();
                let why = e.to_string();
                if attempt == 0 {
                    tracing::warn!(error = %why, "flushing to the store failed; retrying, aggregation goes on");
                }
                ready.send_modify(|r| {
                    r.degraded.retain(|(part, _)| part != "store");
                    r.degraded.push(("store".into(), why));
                });
                pending.merge(arrived);
                let wait = tokio::time::sleep(backoff(
                    attempt,
                    Duration::from_millis(100),
                    Duration::from_secs(30),
                ));
                tokio::pin!(wait);
                // Keep the engine's queue drained while waiting.
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        more = rx.recv(), if open => match more {
                            Some(m) => pending.absorb(m),
                            None => open = false,
                        },
                    }
                }
                attempt += 1;
            }
        }
        if !open && pending.is_empty() {
            break;
        }
    }
}

/// How long one store transaction may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

async fn persist_checkpoint(
    path: &Path,
    state: Vec<u8>,
    position: Position,
    checkpointed: &watch::Sender<Position>,
) {
    let path = path.to_owned();
    match tokio::task::spawn_blocking(move || write_checkpoint(&path, &state, position)).await {
        Ok(Ok(())) => {
            checkpointed.send_replace(position);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "writing a checkpoint failed; the previous one stays")
        }
        Err(e) => tracing::error!(error = %e, "the checkpoint task failed"),
    }
}

/// What the writer holds: rows merged into one transaction, and the newest
/// checkpoint, to be written after them.
#[derive(Default)]
struct Pending {
    batch: Batch,
    checkpoint: Option<(Vec<u8>, Position)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.checkpoint.is_none()
    }

    /// Adds what arrived after this: its rows, and its newer checkpoint.
    fn merge(&mut self, later: Pending) {
        self.absorb(StoreMsg::Write(later.batch));
        if let Some((state, position)) = later.checkpoint {
            self.checkpoint = Some((state, position));
        }
    }

    fn absorb(&mut self, msg: StoreMsg) {
        match msg {
            StoreMsg::Write(more) => {
                self.batch.presence.extend(more.presence);
                self.batch.rollups.extend(more.rollups);
                self.batch.activity.extend(more.activity);
                if more.position.is_some() {
                    self.batch.position = more.position;
                }
            }
            StoreMsg::Checkpoint { state, position } => self.checkpoint = Some((state, position)),
        }
    }
}
