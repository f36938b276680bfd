//! Wiring the service: configuration in, a running application out.
//!
//! [`Application::build`] opens the log, the store (Postgres may be down:
//! the store writer then checks it when it returns) and the last checkpoint,
//! binds the listener (port 0 in tests) and starts the engine thread, the
//! store writer, the ticker and housekeeping; [`Application::run_until_stopped`]
//! serves until the given signal, then shuts down in order: stop accepting
//! requests, close WebSockets with 1001, let the engine apply what was
//! acknowledged, flush, checkpoint, exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::auth::{Scope, Signer};
use crate::config::{NatsMode, Settings};
use crate::engine::Engine;
use crate::event::{Event, Tick};
use crate::http::ingest::{Limiter, Sink};
use crate::http::{self, Inner, Progress, Readiness};
use crate::metrics::Metrics;
use crate::pipeline::{self, EngineTask, Persisted, Reading, Source, SourcePos, StreamSource};
use crate::sink::live::LiveHub;
use crate::sink::store::Store;
use crate::source::eventlog::{self, LogReader, LogWriter, Position};
use crate::source::nats;
use crate::source::spool::{self, Spool};
use crate::util::{Clock, system_clock};

/// How long a shutdown may take before the process gives up waiting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(9);

pub struct Application {
    listener: TcpListener,
    serve_limits: http::serve::ServeLimits,
    state: http::AppState,
    secret_generated: bool,
    /// The engine and its store writer; with `nats.leases`, each owned
    /// partition has its own, run by the cluster task instead.
    engine_thread: Option<std::thread::JoinHandle<()>>,
    store_writer: Option<tokio::task::JoinHandle<()>>,
    cluster: Option<(Arc<crate::cluster::Cluster>, tokio::task::JoinHandle<()>)>,
    /// Set when the store turned out to be behind the checkpoint: the
    /// service stops with this error.
    store_failed: Arc<std::sync::OnceLock<String>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Held until the service has stopped.
    _dir_lock: crate::datadir::DirLock,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, system_clock()).await
    }

    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        let metrics = Arc::new(Metrics::new());
        let data_dir = settings.data.dir.clone();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let dir_lock = crate::datadir::lock(&data_dir)?;
        let nats_mode = settings.nats.url.as_ref().map(|_| settings.nats.mode);
        let streamed = nats_mode == Some(NatsMode::Jetstream);
        // Partitions shared through leases: the engines are the cluster's.
        let leased = settings.nats.leases && streamed;
        // The local log is the source of truth without NATS; with JetStream
        // the same machinery keeps the spool of events NATS could not take.
        let log = match nats_mode {
            None => {
                let dir = settings.log_dir();
                Some(
                    LogWriter::open(&dir, clock.clone(), metrics.clone())
                        .with_context(|| format!("opening the event log in {}", dir.display()))?,
                )
            }
            _ => None,
        };
        let spool = match nats_mode {
            Some(NatsMode::Jetstream) => {
                let dir = settings.spool_dir();
                Some(Arc::new(
                    Spool::open(&dir, clock.clone(), metrics.clone())
                        .with_context(|| format!("opening the spool in {}", dir.display()))?,
                ))
            }
            _ => None,
        };

        // Postgres may be down at start: the service starts anyway, and the
        // store writer applies the migrations and checks the store's
        // position when it is reachable (pipeline::FirstContact).
        let store = match &settings.postgres.url {
            Some(url) => Store::lazy(url).context("the Postgres URL")?,
            None => Store::embedded(&data_dir)
                .await
                .context("opening the embedded store")?,
        };
        let unreachable = match store.ping().await {
            Ok(()) => None,
            Err(e) if !store.is_sqlite() => Some(format!(
                "Postgres at {}: {e}",
                crate::util::redact_credentials(settings.postgres.url.as_deref().unwrap_or(""))
            )),
            Err(e) => return Err(e).context("opening the embedded store"),
        };

        let source_name = if streamed {
            nats::source_name(&settings.nats)
        } else {
            pipeline::LOCAL_SOURCE.to_owned()
        };
        let start = if nats_mode.is_some() {
            SourcePos::Stream(0)
        } else {
            SourcePos::Log(Position::START)
        };
        let checkpoint_path = data_dir.join("checkpoint.bin");
        let stored: Option<SourcePos> = match &unreachable {
            None => {
                store.migrate().await.context("applying migrations")?;
                store
                    .position(&source_name)
                    .await
                    .context("reading the store's position")?
                    .and_then(|p| p.parse().ok())
            }
            Some(_) => None,
        };
        let checkpoint = if leased {
            None
        } else {
            pipeline::load_checkpoint(&checkpoint_path, &settings.engine())?
        };
        let (engine, from) = match checkpoint {
            // Core mode has no positions: the saved state is all there is.
            Some(c) if nats_mode == Some(NatsMode::Core) && c.position == start => {
                tracing::info!("resuming from checkpoint");
                (c.engine, start)
            }
            // The store's position is unknown: resume, and let the store
            // writer check it before writing anything.
            Some(c) if unreachable.is_some() && nats_mode != Some(NatsMode::Core) => {
                tracing::warn!(
                    position = %c.position,
                    error = unreachable.as_deref().unwrap_or_default(),
                    "the store is unreachable; resuming from the checkpoint, the store's position is checked when it returns"
                );
                (c.engine, c.position)
            }
            // The store must hold every row up to the checkpoint; one that is
            // behind (new, or restored from an older backup) is refilled by
            // re-reading the whole retained log.
            Some(c)
                if stored.is_some_and(|s| s.covers(&c.position))
                    && nats_mode != Some(NatsMode::Core) =>
            {
                tracing::info!(position = %c.position, "resuming from checkpoint");
                (c.engine, c.position)
            }
            Some(c) => {
                tracing::warn!(
                    checkpoint = %c.position,
                    store = ?stored.map(|p| p.to_string()),
                    "the checkpoint does not match the store or the source; rebuilding from the start of the source"
                );
                (Engine::new(settings.engine())?, start)
            }
            None => (Engine::new(settings.engine())?, start),
        };

        let mut engine = engine;
        if unreachable.is_none() && !leased {
            absorb_restores(&store, &mut engine).await;
        }

        let (signer, secret_generated) = match &settings.auth.secret {
            Some(secret) => (Signer::new(secret.as_bytes()), false),
            None => (Signer::random(), true),
        };
        // Sockets must never take the descriptors the log, the store and the
        // checkpoint need: the connection limit leaves them room.
        let open_files = http::serve::raise_open_file_limit();
        let (max_connections, max_websockets) =
            http::serve::effective_limits(&settings.limits, open_files);
        if max_connections < settings.limits.max_connections {
            tracing::warn!(
                open_files,
                max_connections,
                max_websockets,
                "limits.max_connections lowered to what the open-file limit allows \
                 beside the log and the store; raise the limit (ulimit -n) for more"
            );
        }
        let serve_limits = http::serve::ServeLimits {
            max_connections,
            header_timeout: Duration::from_millis(settings.limits.header_timeout_ms),
        };
        let websockets =
            http::ws::Gate::new(max_websockets, settings.limits.max_websockets_per_token);
        let listener = TcpListener::bind(settings.http.addr.as_str())
            .await
            .with_context(|| format!("binding {}", settings.http.addr))?;

        let shutdown = CancellationToken::new();
        let hub = LiveHub::new();
        let (ready_tx, ready) = watch::channel(Readiness::default());
        let store_failed = Arc::new(std::sync::OnceLock::new());
        let first_contact = unreachable.map(|why| {
            ready_tx.send_modify(|r| {
                r.degraded
                    .push(("store".into(), format!("unreachable since start: {why}")))
            });
            pipeline::FirstContact {
                source: source_name.clone(),
                resumed_from: (from != start && nats_mode != Some(NatsMode::Core)).then_some(from),
                failed: store_failed.clone(),
                shutdown: shutdown.clone(),
            }
        });
        let (applied_tx, applied) = watch::channel(Reading {
            position: from,
            caught_up: false,
        });
        let (checkpointed_tx, checkpointed) = watch::channel(Persisted {
            position: from,
            ack: None,
        });
        let (store_tx, store_rx) = mpsc::channel(64);
        let cache = settings
            .redis
            .url
            .as_ref()
            .map(|_| crate::sink::cache::CacheFeed::new());
        // Redis is optional at every moment, but whether it answers at start
        // is said at once (startup line, /readyz), not at the first write.
        if let Some(url) = &settings.redis.url
            && let Err(why) = crate::sink::cache::check(url).await
        {
            tracing::warn!(error = %why, "Redis is unreachable; the service starts, the cache is filled when it answers");
            ready_tx.send_modify(|r| r.degraded.push(("redis".into(), why)));
        }
        let mut background = Vec::new();

        let subjects =
            nats::Subjects::partitioned(&settings.nats.subject_prefix, settings.nats.partitions);
        let (source, sink, nats_parts) = match (&settings.nats.url, nats_mode) {
            (Some(url), Some(mode)) => {
                ready_tx.send_modify(|r| r.degraded.push(("nats".into(), "connecting".into())));
                let (client, connected) =
                    nats::connect(url, ready_tx.clone(), metrics.clone()).await?;
                let js = nats::jetstream(client.clone(), &settings.nats);
                let (tx, rx) = mpsc::channel(nats::SOURCE_BATCHES);
                let streamed = mode == NatsMode::Jetstream;
                if leased {
                    // Each owned partition has its own consumer (crate::cluster).
                    nats::check_stream_partitions(&js, &settings.nats).await?;
                } else if streamed {
                    // An existing stream routed by another partition count
                    // stops the start, before anything is published to it.
                    nats::check_stream_partitions(&js, &settings.nats).await?;
                    let next = match from {
                        SourcePos::Stream(seq) => seq + 1,
                        SourcePos::Log(_) => 1,
                    };
                    background.push(tokio::spawn(nats::jetstream_source(
                        js.clone(),
                        settings.nats.clone(),
                        nats::ConsumerSpec::whole(&settings.nats),
                        next,
                        tx,
                        ready_tx.clone(),
                        shutdown.clone(),
                    )));
                    background.push(tokio::spawn(pipeline::acker(
                        client.clone(),
                        checkpointed.clone(),
                    )));
                } else {
                    let (client, subjects, clock, shutdown) = (
                        client.clone(),
                        subjects.clone(),
                        clock.clone(),
                        shutdown.clone(),
                    );
                    background.push(tokio::spawn(async move {
                        if let Err(e) =
                            nats::core_source(client, subjects, tx, clock, shutdown).await
                        {
                            tracing::error!(error = %e, "subscribing to the event subjects failed");
                        }
                    }));
                }
                let source = Source::Stream(Box::new(StreamSource {
                    rx,
                    subjects: subjects.clone(),
                    dlq: streamed.then(|| {
                        nats::Dlq::new(
                            js.clone(),
                            &settings.nats,
                            tokio::runtime::Handle::current(),
                            shutdown.clone(),
                        )
                    }),
                    last_seq: match from {
                        SourcePos::Stream(seq) if streamed => Some(seq),
                        _ => None,
                    },
                    last_reply: None,
                    caught_up: false,
                    lag: crate::metrics::GaugeShare::new(metrics.engine_lag_messages.clone()),
                }));
                let sink = Sink::Nats(Box::new(spool::NatsSink {
                    client: client.clone(),
                    js: streamed.then(|| js.clone()),
                    spool: spool.clone(),
                    connected: connected.clone(),
                    subjects: subjects.clone(),
                    metrics: metrics.clone(),
                }));
                (
                    source,
                    sink,
                    Some((
                        client,
                        js,
                        connected,
                        if leased {
                            crate::sink::feed::LiveFeed::shared()
                        } else {
                            crate::sink::feed::LiveFeed::new()
                        },
                    )),
                )
            }
            _ => {
                let log = log.expect("the local log is open without NATS");
                let source = Source::Log {
                    reader: LogReader::new(
                        &settings.log_dir(),
                        match from {
                            SourcePos::Log(p) => p,
                            SourcePos::Stream(_) => Position::START,
                        },
                    ),
                    committed: log.committed(),
                };
                (source, Sink::Log(log), None)
            }
        };

        let campaigns = engine.campaigns();
        let cluster_sink = match &sink {
            Sink::Nats(n) if leased => Some(Arc::new((**n).clone())),
            _ => None,
        };
        let engine_task = EngineTask {
            engine,
            source,
            source_name,
            store: store_tx,
            hub: hub.clone(),
            cache: cache.clone(),
            live_out: nats_parts.as_ref().map(|(_, _, _, feed)| feed.clone()),
            metrics: metrics.clone(),
            ready: ready_tx.clone(),
            applied: applied_tx,
            checkpoint_every: Duration::from_millis(settings.log.checkpoint_interval_ms),
            shutdown: shutdown.clone(),
            campaign_rows_at: std::time::Instant::now(),
        };
        let (engine_thread, store_writer) = if leased {
            (None, None)
        } else {
            (
                Some(engine_task.spawn()?),
                Some(tokio::spawn(pipeline::store_writer(
                    store.clone(),
                    store_rx,
                    pipeline::Checkpoints::File(checkpoint_path),
                    checkpointed_tx,
                    metrics.clone(),
                    ready_tx.clone(),
                    clock.clone(),
                    first_contact,
                ))),
            )
        };
        let (forwarded_tx, forwarded) = watch::channel(Position::START);
        if let Some((client, js, connected, feed)) = &nats_parts {
            background.push(tokio::spawn(crate::sink::feed::live_publisher(
                client.clone(),
                subjects.clone(),
                feed.clone(),
                Duration::from_millis(settings.live.push_interval_ms),
                shutdown.clone(),
            )));
            if let Some(spool) = &spool {
                background.push(tokio::spawn(spool::forwarder(
                    js.clone(),
                    spool.clone(),
                    subjects.clone(),
                    connected.clone(),
                    forwarded_tx,
                    shutdown.clone(),
                )));
            }
        }

        let cluster = match (&nats_parts, cluster_sink) {
            (Some((client, js, _, feed)), Some(sink)) => {
                Some(crate::cluster::Cluster::new(crate::cluster::Shared {
                    settings: settings.clone(),
                    client: client.clone(),
                    js: js.clone(),
                    store: store.clone(),
                    hub: hub.clone(),
                    cache: cache.clone(),
                    live_out: feed.clone(),
                    sink,
                    metrics: metrics.clone(),
                    ready: ready_tx.clone(),
                    clock: clock.clone(),
                    shutdown: shutdown.clone(),
                }))
            }
            _ => None,
        };
        let cache_writer = match (&settings.redis.url, cache.clone()) {
            (Some(url), Some(feed)) => Some(tokio::spawn(crate::sink::cache::writer(
                url.clone(),
                crate::sink::cache::Keys {
                    prefix: settings.redis.prefix.clone(),
                    fencing: cluster.clone().map(|c| {
                        Arc::new(move |id: &str| c.fence_of(id)) as crate::sink::cache::Fencing
                    }),
                },
                feed,
                hub.clone(),
                store.clone(),
                campaigns.clone(),
                ready_tx.clone(),
                clock.clone(),
                shutdown.clone(),
            ))),
            _ => None,
        };
        let limiter = Limiter::new(settings.http.rate_limit_per_sec);
        let trusted_proxies = settings.trusted_proxies()?;
        let settings_limits = settings.limits.clone();
        let state = Arc::new(Inner {
            settings,
            sink,
            store,
            hub,
            signer,
            metrics,
            clock,
            ready,
            shutdown,
            limiter,
            progress: Progress {
                applied: applied.clone(),
            },
            campaigns,
            trusted_proxies,
            admission: crate::http::admission::Admission::new(
                settings_limits.max_public_entities,
                settings_limits.new_entities_per_minute,
            ),
            websockets,
            cluster: cluster.clone(),
        });
        let cluster = cluster.map(|c| {
            background.push(tokio::spawn(crate::cluster::follow_live(
                c.clone(),
                state.shutdown.clone(),
            )));
            let run = tokio::spawn(c.clone().run());
            (c, run)
        });
        if cluster.is_none() {
            background.push(tokio::spawn(ticker(state.clone(), applied)));
        }
        background.push(tokio::spawn(housekeeping(
            state.clone(),
            checkpointed,
            forwarded,
        )));
        background.extend(cache_writer);
        Ok(Application {
            listener,
            serve_limits,
            state,
            secret_generated,
            engine_thread,
            store_writer,
            cluster,
            store_failed,
            background,
            _dir_lock: dir_lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// An admin token valid for a day.
    pub fn admin_token(&self) -> String {
        self.state
            .signer
            .mint(Scope::Admin, (self.state.clock)() + 86_400_000)
    }

    pub fn state(&self) -> &http::AppState {
        &self.state
    }

    /// Logs what is enabled and where to look.
    pub fn announce(&self) {
        let s = &self.state.settings;
        let degraded = self.state.ready.borrow().degraded.clone();
        let status = |part: &str, url: &Option<String>| match url {
            None => "off",
            Some(_) if degraded.iter().any(|(p, _)| p == part) => "unreachable",
            Some(_) => "on",
        };
        let log = match (&s.nats.url, s.nats.mode) {
            (None, _) => format!("local event log in {}", s.log_dir().display()),
            (Some(_), NatsMode::Jetstream) => format!("JetStream stream {}", s.nats.stream),
            (Some(_), NatsMode::Core) => "core NATS (no replayable log)".to_owned(),
        };
        tracing::info!(
            addr = %self.local_addr(),
            data = %s.data.dir.display(),
            store = if s.postgres.url.is_some() { "postgres" } else { "embedded sqlite" },
            postgres = status("store", &s.postgres.url),
            nats = status("nats", &s.nats.url),
            redis = status("redis", &s.redis.url),
            bucket_ms = s.window.bucket_ms,
            ttl_ms = s.presence.ttl_ms,
            "EventFlow is serving: HTTP ingest, {log}, live WebSockets"
        );
        let base = format!("http://{}", self.local_addr());
        if self.secret_generated {
            let token = self.admin_token();
            tracing::info!("no auth.secret is set: tokens are signed with a key made for this run");
            println!("\n    Dashboard: {base}/#token={token}\n    API token: {token}\n");
        } else {
            println!("\n    Dashboard: {base}/#token=<token from `eventflow token --admin`>\n");
        }
    }

    /// Serves until `signal` completes, then shuts down in order.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.state.shutdown.clone();
        let app = http::router(self.state.clone());
        if let Some((cluster, _)) = &self.cluster {
            let _ = cluster.router.set(app.clone());
        }
        let server = tokio::spawn(http::serve::serve(
            self.listener,
            app,
            self.serve_limits,
            self.state.metrics.clone(),
            shutdown.clone(),
        ));
        tokio::select! {
            _ = signal => {}
            _ = shutdown.cancelled() => {}
        }
        // One deadline for the whole shutdown: requests in flight, then the
        // engine's last round, the final flush and checkpoint.
        shutdown.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let served = match tokio::time::timeout_at(deadline, server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
            Err(_) => {
                tracing::warn!("requests still open at the shutdown deadline were dropped");
                Ok(())
            }
        };
        for task in self.background {
            task.abort();
        }
        let state = self.state;
        let engine_thread = self.engine_thread;
        let store_writer = self.store_writer;
        let cluster = self.cluster.map(|(_, run)| run);
        let finished = tokio::time::timeout_at(deadline, async move {
            drop(state);
            if let Some(engine_thread) = engine_thread {
                tokio::task::spawn_blocking(move || engine_thread.join())
                    .await
                    .ok();
            }
            if let Some(store_writer) = store_writer {
                store_writer.await.ok();
            }
            // Every owned partition handed over: flushed, checkpointed, its
            // lease released for the others to take at once.
            if let Some(cluster) = cluster {
                cluster.await.ok();
            }
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                "shutdown took too long; exiting without the final flush (the log has everything)"
            );
        }
        if let Some(why) = self.store_failed.get() {
            anyhow::bail!("{why}");
        }
        served
    }
}

/// Takes into the engine the campaign rows `eventflow restore` wrote into
/// the store since the engine last looked (restored history the service
/// never applied). A store that does not answer is looked at again at the
/// next start.
async fn absorb_restores(store: &Store, engine: &mut Engine) {
    let latest = match store.campaign_restore_id().await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "could not look for restored campaign rows; they are taken in at the next start");
            return;
        }
    };
    if latest <= engine.restored_through() {
        return;
    }
    match store.campaign_rows().await {
        Ok(rows) => {
            let taken = engine.absorb_restored(latest, rows);
            tracing::info!(rows = taken, "took in restored campaign rows");
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read restored campaign rows; they are taken in at the next start")
        }
    }
}

/// Every second, while the engine is caught up with its source, writes a
/// tick (`wall time - window.idle_lag_ms`) so idle clocks advance in band:
/// to the local log, or to `<prefix>.tick` (not while the spool still holds
/// events for the stream: they would land behind the tick).
async fn ticker(s: http::AppState, applied: watch::Receiver<Reading>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if s.shutdown.is_cancelled() {
            return;
        }
        let reading = *applied.borrow();
        let behind = match (&s.sink, reading.position) {
            (Sink::Log(log), SourcePos::Log(p)) => p < *log.committed().borrow(),
            (Sink::Nats(_), _) => !reading.caught_up,
            _ => true,
        };
        if behind {
            continue;
        }
        let Some(ts) = pipeline::tick_time((s.clock)(), s.settings.window.idle_lag_ms) else {
            continue;
        };
        let tick = Event::Tick(Tick { ts });
        let line = tick.to_json();
        let written = match &s.sink {
            Sink::Log(log) => {
                let mut line = line;
                line.push('\n');
                log.append(line.into_bytes())
                    .await
                    .map(drop)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            }
            Sink::Nats(n) => n.tick(line).await,
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "could not write a tick");
        }
    }
}

/// Hourly: compress and delete old log (or spool) files that the last
/// checkpoint (or the forwarder) no longer needs; forget rate-limit entries
/// of quiet clients and admitted entities gone idle.
async fn housekeeping(
    s: http::AppState,
    checkpointed: watch::Receiver<Persisted>,
    forwarded: watch::Receiver<Position>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        if let Some(l) = &s.limiter {
            l.sweep();
        }
        s.admission.sweep((s.clock)());
        let (dir, needed) = match &s.sink {
            Sink::Log(_) => match checkpointed.borrow().position {
                SourcePos::Log(p) => (s.settings.log_dir(), p),
                SourcePos::Stream(_) => continue,
            },
            Sink::Nats(n) if n.spool.is_some() => (s.settings.spool_dir(), *forwarded.borrow()),
            Sink::Nats(_) => continue,
        };
        let today = eventlog::utc_day((s.clock)());
        let (compress, retain) = (
            s.settings.log.compress_after_days,
            s.settings.log.retain_days,
        );
        let result = tokio::task::spawn_blocking(move || {
            eventlog::housekeeping(&dir, today, compress, retain, needed)
        })
        .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "log housekeeping failed");
        }
    }
}
