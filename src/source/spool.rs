//! HTTP ingest's way into NATS ([`NatsSink`]) and the JetStream spool
//! (DESIGN §7 Faults): where HTTP ingest keeps the events NATS could not
//! take, the forwarder that moves them into the stream, and the rule that
//! keeps one order from the `202` to the stream.
//!
//! The spool is a local log (`data/spool`, group commit and fsync like the
//! embedded event log); `data/spool/forwarded` records how far the
//! forwarder got, so a restart forwards the rest.
//!
//! # One order from the 202 to the stream
//!
//! The engine applies an event below its entity's clock at the clock
//! (DESIGN §2), so an event that reaches the stream behind newer ones is
//! counted in the wrong bucket. The rule that prevents it:
//!
//! - While the spool is *spooling*, every accepted event is appended to it,
//!   never published directly. Spooling starts when a send cannot publish
//!   (NATS disconnected, or no acknowledgement): the flag is set before its
//!   events are appended, hence before its `202`, so every event accepted
//!   after that `202` joins the spool behind them.
//! - Only the forwarder ends spooling, and only while holding the spool's
//!   gate exclusively, connected, with everything the spool has committed
//!   acknowledged by the stream. Every send holds the gate shared from its
//!   decision (publish or spool) to its answer, so no append can slip in
//!   between the forwarder's last check and the switch, and no direct
//!   publish can start before the last spooled event is in the stream.
//! - Ticks obey the same gate: none is published while spooling.
//!
//! So an event accepted (`202`) before another was received is ahead of it
//! in the stream; requests handled at the same time have no order between
//! them, as always. A send waiting for acknowledgements stops waiting when
//! the connection drops, so an outage does not leave events in flight that
//! would join the spool behind later ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::{RwLock, RwLockReadGuard, watch};
use tokio_util::sync::CancellationToken;

use crate::event;
use crate::metrics::Metrics;
use crate::source::eventlog::{LogError, LogObserver, LogReader, LogWriter, Position};
use crate::source::nats::{BATCH, Outgoing, Subjects, publish_all};
use crate::util::backoff;
use async_nats::Client;

/// The spool of one service and its forwarding state.
pub struct Spool {
    log: LogWriter,
    dir: PathBuf,
    /// Where forwarding resumes: the saved mark at start.
    from: Position,
    /// Held shared by each send, exclusively by the forwarder to end
    /// spooling (see the module docs).
    gate: RwLock<()>,
    /// Set while the spool may hold events not yet in the stream.
    spooling: AtomicBool,
}

/// A send's turn: while it is held the spool cannot stop spooling.
pub struct Turn<'a> {
    spool: &'a Spool,
    _shared: RwLockReadGuard<'a, ()>,
}

impl Turn<'_> {
    /// Whether events may be published directly (nothing is waiting in the
    /// spool).
    pub fn direct(&self) -> bool {
        !self.spool.spooling.load(Ordering::SeqCst)
    }

    /// Appends events NATS did not take: from now on every event is
    /// spooled until the forwarder has caught up.
    pub async fn append(self, events: &[Outgoing], metrics: &Metrics) -> Result<(), LogError> {
        self.spool.spooling.store(true, Ordering::SeqCst);
        let mut bytes = Vec::new();
        for e in events {
            bytes.extend_from_slice(&e.payload);
            bytes.push(b'\n');
        }
        metrics.spooled.inc_by(events.len() as u64);
        self.spool.log.append(bytes).await.map(drop)
    }
}

impl Spool {
    /// Opens the spool in `dir`; it starts spooling if a previous run left
    /// events in it that were not forwarded.
    pub fn open(
        dir: &Path,
        now_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
        observer: Arc<dyn LogObserver>,
    ) -> std::io::Result<Spool> {
        let log = LogWriter::open(dir, now_ms, observer)?;
        let from = read_mark(&dir.join("forwarded")).unwrap_or(Position::START);
        let spooling = from < *log.committed().borrow();
        Ok(Spool {
            log,
            dir: dir.to_owned(),
            from,
            gate: RwLock::new(()),
            spooling: AtomicBool::new(spooling),
        })
    }

    /// Waits for a send's turn (briefly, while the forwarder switches).
    pub async fn turn(&self) -> Turn<'_> {
        Turn {
            spool: self,
            _shared: self.gate.read().await,
        }
    }

    /// The position up to which the spool is durable.
    pub fn committed(&self) -> watch::Receiver<Position> {
        self.log.committed()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ends spooling if everything committed is forwarded (up to `sent`)
    /// and NATS is connected. Returns whether it did.
    async fn stop_spooling(&self, sent: Position, connected: &watch::Receiver<bool>) -> bool {
        let _alone = self.gate.write().await;
        // No send is between its decision and its answer: what is committed
        // now is everything that was spooled.
        if *connected.borrow() && sent >= *self.log.committed().borrow() {
            self.spooling.store(false, Ordering::SeqCst);
            true
        } else {
            false
        }
    }
}

/// Moves spooled events into the stream, in order, whenever NATS is
/// connected (woken by the connection's `Connected` event, not by polling),
/// remembers how far it got in `data/spool/forwarded` and on `forwarded`,
/// and ends spooling once it has caught up.
pub async fn forwarder(
    js: jetstream::Context,
    spool: Arc<Spool>,
    subjects: Subjects,
    mut connected: watch::Receiver<bool>,
    forwarded: watch::Sender<Position>,
    shutdown: CancellationToken,
) {
    let dir = spool.dir.clone();
    let mark = dir.join("forwarded");
    forwarded.send_replace(spool.from);
    let mut reader = LogReader::new(&dir, spool.from);
    let mut committed = spool.committed();
    let mut attempt = 0u32;
    loop {
        if !*connected.borrow_and_update() {
            tokio::select! {
                changed = connected.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return,
                },
                _ = shutdown.cancelled() => return,
            }
        }
        let limit = *committed.borrow_and_update();
        if reader.position() >= limit {
            if spool.spooling.load(Ordering::SeqCst) {
                if spool.stop_spooling(reader.position(), &connected).await {
                    tracing::info!(position = %limit, "the spool is forwarded; publishing directly again");
                }
                // Otherwise more was spooled meanwhile, or NATS went away.
                continue;
            }
            tokio::select! {
                _ = committed.changed() => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let start = reader.position();
        let mut events = Vec::new();
        let read = reader.read_until(limit, BATCH, |line, _| {
            // Spooled lines were validated on ingest.
            if let Ok(ev) = event::decode(line) {
                events.push(Outgoing {
                    subject: subjects.event(&ev),
                    id: ev.id().map(str::to_owned),
                    payload: Bytes::copy_from_slice(line),
                });
            }
        });
        if let Err(e) = read {
            tracing::error!(error = %e, "reading the spool failed; retrying");
            reader = LogReader::new(&dir, start);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let n = events.len();
        if publish_all(&js, events, &connected).await.is_empty() {
            attempt = 0;
            let end = reader.position();
            if let Err(e) = write_mark(&mark, end) {
                tracing::error!(error = %e, "saving the spool position failed");
            }
            forwarded.send_replace(end);
            tracing::info!(events = n, position = %end, "forwarded spooled events to the stream");
        } else {
            // Send the whole chunk again: what was stored is deduplicated
            // (ids) or idempotent (presence).
            reader = LogReader::new(&dir, start);
            let wait = backoff(attempt, Duration::from_millis(200), Duration::from_secs(5));
            attempt += 1;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A reconnect is worth a try at once.
                _ = connected.changed() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

fn read_mark(path: &Path) -> Option<Position> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_mark(path: &Path, at: Position) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, at.to_string())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Where HTTP ingest sends events when NATS is on.
#[derive(Clone)]
pub struct NatsSink {
    pub client: Client,
    /// JetStream mode; `None` in core mode.
    pub js: Option<jetstream::Context>,
    /// JetStream mode: the local spool for when NATS is unreachable.
    pub spool: Option<Arc<Spool>>,
    /// True while the client is connected (from its connection events).
    pub connected: watch::Receiver<bool>,
    pub subjects: Subjects,
    pub metrics: Arc<Metrics>,
}

impl NatsSink {
    /// Publishes `events`; returns once they are stored (JetStream), in
    /// the spool, or handed to the server (core). While the spool holds
    /// events not yet in the stream, new ones join it behind them
    /// ([`crate::source::spool`]).
    pub async fn send(&self, events: Vec<Outgoing>) -> Result<(), String> {
        let (Some(js), Some(spool)) = (&self.js, &self.spool) else {
            for e in events {
                self.client
                    .publish(e.subject, e.payload)
                    .await
                    .map_err(|e| format!("NATS: {e}"))?;
            }
            return self.client.flush().await.map_err(|e| format!("NATS: {e}"));
        };
        let turn = spool.turn().await;
        let unacked = if turn.direct() && *self.connected.borrow() {
            publish_all(js, events, &self.connected).await
        } else {
            events
        };
        if unacked.is_empty() {
            return Ok(());
        }
        // Not stored (or not known to be): keep them in the spool. Presence
        // is idempotent and events with an id are deduplicated, so sending
        // one twice is harmless; an event without an id whose
        // acknowledgement was lost may be counted twice.
        turn.append(&unacked, &self.metrics)
            .await
            .map_err(|e| e.to_string())
    }

    /// Publishes a tick (acknowledged in JetStream mode), but not while
    /// the spool holds events for the stream: they would land behind it.
    pub async fn tick(&self, line: String) -> anyhow::Result<()> {
        self.tick_to(line, self.subjects.ticks()).await
    }

    /// [`NatsSink::tick`] to the given tick subjects (a partition owner's
    /// own, DESIGN §8).
    pub async fn tick_to(&self, line: String, subjects: Vec<String>) -> anyhow::Result<()> {
        let (Some(js), Some(spool)) = (&self.js, &self.spool) else {
            for subject in subjects {
                self.client.publish(subject, line.clone().into()).await?;
            }
            return Ok(());
        };
        let turn = spool.turn().await;
        if !turn.direct() || !*self.connected.borrow() {
            return Ok(());
        }
        let line = bytes::Bytes::from(line);
        let ticks = subjects
            .into_iter()
            .map(|subject| Outgoing {
                subject,
                id: None,
                payload: line.clone(),
            })
            .collect();
        if publish_all(js, ticks, &self.connected).await.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("the stream did not acknowledge a tick")
        }
    }
}
