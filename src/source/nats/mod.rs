//! NATS (DESIGN §5, §7): the JetStream stream as the event log, or plain
//! subscriptions in `core` mode; subjects, publishing and the dead-letter
//! stream. Live counts sent to other instances are a sink's
//! ([`crate::sink::feed`]).
//!
//! With JetStream the stream `nats.stream` captures exactly the event
//! subjects and is the source of truth. A durable pull consumer, recreated
//! at start from the sequence after the last checkpoint, feeds the engine
//! thread through a bounded channel: the consumer only pulls what the
//! engine has room for, so a slow engine leaves messages in the stream
//! instead of losing them. Messages are acknowledged (ack-all) once a
//! checkpoint covering them is persisted; a restart resumes from that
//! checkpoint, so every result is computed exactly once. Invalid messages
//! go to `<prefix>.dlq` (stream `nats.dlq_stream`) with their reason.
//!
//! HTTP ingest ([`crate::source::spool::NatsSink`]) publishes each event to its
//! subject (with `Nats-Msg-Id` set to the event `id` when it has one) and
//! answers after the stream's acknowledgement. While NATS is unreachable it
//! appends to the local spool instead ([`crate::source::spool`], which also keeps
//! the order of acceptance), and
//! a forwarder moves the spool into the stream once NATS is back — so
//! ingest keeps working and nothing accepted is lost.
//!
//! In `core` mode there is no stream: the engine subscribes to the same
//! subjects and HTTP ingest publishes without acknowledgement. Messages
//! published while the service is down or too slow are lost (at-most-once).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull::Config as PullConfig, stream};
use async_nats::{Client, ConnectOptions, HeaderMap};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Nats as NatsSettings, NatsMode};
use crate::event::{self, Event};
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::util::{Clock, backoff};

pub mod pull;

/// Records handed to the engine per channel message, at most.
pub const BATCH: usize = 1_000;

/// Batches of up to [`BATCH`] messages queued between the NATS source and
/// the engine; the consumer pulls no more while they are full.
pub const SOURCE_BATCHES: usize = 16;

/// Messages a core subscription holds before NATS counts it slow and drops.
const SUBSCRIPTION_CAPACITY: usize = 1 << 18;

/// Subject names under the configured prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
    /// `nats.partitions`; with more than one, every event subject starts
    /// with `<prefix>.p<partition>`.
    partitions: u32,
}

impl Subjects {
    /// The subjects of an unpartitioned stream.
    pub fn new(prefix: &str) -> Subjects {
        Subjects::partitioned(prefix, 1)
    }

    pub fn partitioned(prefix: &str, partitions: u32) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
            partitions: partitions.max(1),
        }
    }

    /// The prefix of an event's subject: `<prefix>`, or
    /// `<prefix>.p<partition>` when the stream is partitioned.
    fn head(&self, ev: &Event<'_>) -> std::borrow::Cow<'_, str> {
        if self.partitions == 1 {
            std::borrow::Cow::Borrowed(&self.prefix)
        } else {
            let n = crate::partition::of(ev, self.partitions);
            std::borrow::Cow::Owned(format!("{}.p{n}", self.prefix))
        }
    }

    /// Where an event is published. Identifiers may contain dots, so the
    /// stream captures `presence.>` rather than `presence.*`.
    pub fn event(&self, ev: &Event<'_>) -> String {
        let p = self.head(ev);
        match ev {
            Event::Presence(e) => format!("{p}.presence.{}", e.webinar_id),
            Event::Activity(e) => format!("{p}.activity.{}", e.webinar_id),
            Event::Visit(e) => format!("{p}.visit.{}", e.campaign_id),
            Event::Conversion(e) => format!("{p}.conversion.{}", e.campaign_id),
            Event::Pageview(_) => format!("{p}.pageview"),
            Event::Tick(_) => format!("{p}.tick"),
        }
    }

    /// Whether `subject` is where `ev` is published ([`Subjects::event`]),
    /// without building it.
    fn belongs(&self, subject: &str, ev: &Event<'_>) -> bool {
        let Some(mut rest) = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('.'))
        else {
            return false;
        };
        if self.partitions > 1 {
            // `p<n>.`, the event's partition (a tick may come on any),
            // written as `head` writes it: digits, no leading zero.
            let Some((digits, after)) = rest.strip_prefix('p').and_then(|r| r.split_once('.'))
            else {
                return false;
            };
            let canonical = digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            let Some(n) = canonical.then(|| digits.parse::<u32>().ok()).flatten() else {
                return false;
            };
            let wanted = match ev {
                Event::Tick(_) => n < self.partitions,
                _ => n == crate::partition::of(ev, self.partitions),
            };
            if !wanted {
                return false;
            }
            rest = after;
        }
        let (kind, id) = match ev {
            Event::Presence(e) => ("presence", Some(&*e.webinar_id)),
            Event::Activity(e) => ("activity", Some(&*e.webinar_id)),
            Event::Visit(e) => ("visit", Some(&*e.campaign_id)),
            Event::Conversion(e) => ("conversion", Some(&*e.campaign_id)),
            Event::Pageview(_) => ("pageview", None),
            Event::Tick(_) => ("tick", None),
        };
        let Some(rest) = rest.strip_prefix(kind) else {
            return false;
        };
        match id {
            Some(id) => rest.strip_prefix('.') == Some(id),
            None => rest.is_empty(),
        }
    }

    /// Identifiers may hold dots, but a subject cannot have an empty token
    /// (`a..b`, a leading or trailing dot): such an event cannot be
    /// published. Returns the identifier's field when that is the case.
    pub fn unpublishable(ev: &Event<'_>) -> Option<&'static str> {
        let (field, id): (&'static str, &str) = match ev {
            Event::Presence(e) => ("webinar_id", &e.webinar_id),
            Event::Activity(e) => ("webinar_id", &e.webinar_id),
            Event::Visit(e) => ("campaign_id", &e.campaign_id),
            Event::Conversion(e) => ("campaign_id", &e.campaign_id),
            Event::Pageview(_) | Event::Tick(_) => return None,
        };
        id.split('.').any(str::is_empty).then_some(field)
    }

    /// The subjects the stream captures (DESIGN §5), and no others:
    /// `<prefix>.p<n>.>` for each partition when there are several.
    pub fn stream_subjects(&self) -> Vec<String> {
        let p = &self.prefix;
        if self.partitions > 1 {
            return (0..self.partitions)
                .map(|n| format!("{p}.p{n}.>"))
                .collect();
        }
        vec![
            format!("{p}.presence.>"),
            format!("{p}.activity.>"),
            format!("{p}.visit.>"),
            format!("{p}.conversion.>"),
            format!("{p}.pageview"),
            format!("{p}.tick"),
        ]
    }

    pub fn tick(&self) -> String {
        format!("{}.tick", self.prefix)
    }

    /// Partition `n`'s tick subject (with one partition, [`Subjects::tick`]).
    pub fn partition_tick(&self, n: u32) -> String {
        if self.partitions == 1 {
            return self.tick();
        }
        format!("{}.p{n}.tick", self.prefix)
    }

    /// Where reads of partition `n` go to its owner (DESIGN §8).
    pub fn reads(&self, n: u32) -> String {
        format!("{}.read.p{n}", self.prefix)
    }

    /// Every webinar's live count: `<prefix>.live.>`.
    pub fn all_live(&self) -> String {
        format!("{}.live.>", self.prefix)
    }

    /// A webinar's whole live state (with `nats.leases`).
    pub fn state(&self, webinar_id: &str) -> String {
        format!("{}.state.{webinar_id}", self.prefix)
    }

    /// A webinar's buckets as they become final (with `nats.leases`).
    pub fn bucket(&self, webinar_id: &str) -> String {
        format!("{}.bucket.{webinar_id}", self.prefix)
    }

    /// Every webinar's whole states and final buckets.
    pub fn all_states_and_buckets(&self) -> [String; 2] {
        [
            format!("{}.state.>", self.prefix),
            format!("{}.bucket.>", self.prefix),
        ]
    }

    /// Where the service's ticks go: every partition's tick subject (with
    /// one partition, [`Subjects::tick`]).
    pub fn ticks(&self) -> Vec<String> {
        if self.partitions == 1 {
            return vec![self.tick()];
        }
        (0..self.partitions)
            .map(|n| self.partition_tick(n))
            .collect()
    }

    /// The stream's description, which records its partition count.
    pub fn stream_description(&self) -> String {
        format!("EventFlow events; partitions={}", self.partitions)
    }

    pub fn live(&self, webinar_id: &str) -> String {
        format!("{}.live.{webinar_id}", self.prefix)
    }

    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.prefix)
    }

    /// Decodes a message and checks that it belongs on its subject. A
    /// missing `ts` becomes `stored` (the stream's time for the message).
    pub fn decode<'a>(
        &self,
        subject: &str,
        payload: &'a [u8],
        stored: i64,
    ) -> Result<Event<'a>, String> {
        if payload.len() > event::MAX_EVENT_BYTES {
            return Err(event::too_large(payload.len()).to_string());
        }
        let mut ev = event::decode(payload).map_err(|e| e.to_string())?;
        if !self.belongs(subject, &ev) {
            return Err(format!(
                "subject: a {} event with these identifiers belongs on {}, not {subject}",
                ev.event_type().as_str(),
                self.event(&ev)
            ));
        }
        if ev.ts().is_none() {
            ev.set_ts(stored);
        }
        Ok(ev)
    }
}

/// Connects in the background: the client keeps retrying, so the service
/// starts (and ingests through its spool) while NATS is down. Connection
/// changes show on `/readyz` and on the returned channel (true while
/// connected), in the order the client reports them.
pub async fn connect(
    url: &str,
    ready: watch::Sender<Readiness>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Client, watch::Receiver<bool>)> {
    let (connected_tx, connected) = watch::channel(false);
    let options = ConnectOptions::new()
        .name("eventflow")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        // The first attempt (numbered 1) goes at once; later ones back off.
        .reconnect_delay_callback(|attempt| match attempt {
            0 | 1 => Duration::ZERO,
            n => backoff(
                n as u32 - 2,
                Duration::from_millis(100),
                Duration::from_secs(5),
            ),
        })
        // Core mode: room for bursts before NATS drops for a slow reader.
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(move |e| {
            let ready = ready.clone();
            let metrics = metrics.clone();
            let connected = connected_tx.clone();
            async move {
                match e {
                    async_nats::Event::Connected => {
                        tracing::info!("connected to NATS");
                        connected.send_replace(true);
                        ready.send_modify(|r| r.degraded.retain(|(p, _)| p != "nats"));
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("disconnected from NATS; reconnecting");
                        connected.send_replace(false);
                        set_degraded(&ready, "disconnected; reconnecting".into());
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        metrics.nats_dropped.inc();
                        tracing::warn!("NATS dropped messages for a slow subscription");
                    }
                    other => tracing::info!(event = %other, "NATS"),
                }
            }
        });
    let (options, shown) = match url_credentials(url)? {
        Some(UrlLogin::UserPassword(user, pass)) => (
            options.user_and_password(user, pass),
            crate::util::redact_credentials(url),
        ),
        Some(UrlLogin::Token(token)) => {
            (options.token(token), crate::util::redact_credentials(url))
        }
        None => (options, url.to_owned()),
    };
    // A comma-separated list names a cluster's nodes: async-nats takes a
    // list of addresses, not one string with commas.
    let servers = url
        .split(',')
        .map(|part| part.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("nats.url: {e}"))?;
    let client = options
        .connect(servers)
        .await
        .with_context(|| format!("connecting to NATS at {shown}"))?;
    Ok((client, connected))
}

/// How a `nats.url` logs in: `nats://user:password@host` or
/// `nats://token@host`, percent-decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlLogin {
    UserPassword(String, String),
    Token(String),
}

/// The login a `nats.url` carries (the first of a comma-separated list
/// that has one). async-nats connects to the URL's host but does not log in
/// with its user and password itself: they are handed to it here.
pub fn url_credentials(url: &str) -> anyhow::Result<Option<UrlLogin>> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| anyhow::anyhow!("nats.url: the credentials are not valid UTF-8"))
    };
    for part in url.split(',') {
        let addr: async_nats::ServerAddr = part
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("nats.url: {e}"))?;
        match (addr.username(), addr.password()) {
            (Some(user), Some(pass)) => {
                return Ok(Some(UrlLogin::UserPassword(decode(user)?, decode(pass)?)));
            }
            (Some(token), None) => return Ok(Some(UrlLogin::Token(decode(token)?))),
            _ => {}
        }
    }
    Ok(None)
}

fn set_degraded(ready: &watch::Sender<Readiness>, why: String) {
    ready.send_modify(|r| {
        r.degraded.retain(|(p, _)| p != "nats");
        r.degraded.push(("nats".into(), why));
    });
}

pub fn jetstream(client: Client, settings: &NatsSettings) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(settings.publish_timeout_ms))
        .build(client)
}

/// Creates the event stream and the dead-letter stream, or binds to them
/// when they exist (an operator's changes to them are kept).
pub async fn ensure_streams(js: &jetstream::Context, s: &NatsSettings) -> anyhow::Result<()> {
    let subjects = Subjects::partitioned(&s.subject_prefix, s.partitions);
    let max_age = Duration::from_secs(u64::from(s.retain_days) * 86_400);
    let events = stream::Config {
        name: s.stream.clone(),
        description: Some(subjects.stream_description()),
        subjects: subjects.stream_subjects(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age,
        max_bytes: if s.max_bytes == 0 { -1 } else { s.max_bytes },
        duplicate_window: Duration::from_millis(s.duplicate_window_ms),
        num_replicas: s.replicas as usize,
        ..Default::default()
    };
    let dlq = stream::Config {
        name: s.dlq_stream.clone(),
        subjects: vec![subjects.dlq()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age,
        duplicate_window: Duration::from_millis(s.duplicate_window_ms),
        num_replicas: s.replicas as usize,
        ..Default::default()
    };
    for config in [events, dlq] {
        let name = config.name.clone();
        let mut stream = js
            .get_or_create_stream(config)
            .await
            .with_context(|| format!("creating or binding the JetStream stream {name}"))?;
        let info = stream.info().await?;
        if name == s.stream {
            check_partitions(&name, info.config.description.as_deref(), s.partitions)?;
        }
        tracing::info!(
            stream = %name,
            subjects = ?info.config.subjects,
            messages = info.state.messages,
            "JetStream stream ready"
        );
    }
    Ok(())
}

/// Refuses a stream that exists with another partition count than
/// `nats.partitions` (one that does not exist yet, or a server that does
/// not answer in time, is left to [`ensure_streams`]).
pub async fn check_stream_partitions(
    js: &jetstream::Context,
    s: &NatsSettings,
) -> anyhow::Result<()> {
    let found = tokio::time::timeout(Duration::from_secs(5), js.get_stream(&s.stream)).await;
    if let Ok(Ok(mut stream)) = found
        && let Ok(info) = stream.info().await
    {
        check_partitions(&s.stream, info.config.description.as_deref(), s.partitions)?;
    }
    Ok(())
}

/// A stream's partition count is fixed for its life (events already in it
/// were routed by it): a service configured with another refuses to start.
/// A stream without the count in its description predates partitions: one.
fn check_partitions(
    stream: &str,
    description: Option<&str>,
    configured: u32,
) -> anyhow::Result<()> {
    let recorded = description
        .and_then(|d| d.split("partitions=").nth(1))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if recorded != configured {
        anyhow::bail!(
            "nats.partitions: the stream {stream} holds events routed to {recorded} partition(s), \
             and this service is configured with {configured}; a stream's partition count is \
             fixed for its life (its events' subjects carry their partition). Set \
             nats.partitions = {recorded}, or start a new stream (nats.stream) with the new count"
        );
    }
    Ok(())
}

/// One message for the engine thread; its subject and payload are ranges of
/// its batch's buffers.
pub struct StreamRecord {
    /// The stream sequence (a local count in core mode).
    pub seq: u64,
    /// When the stream stored it (arrival, in core mode), ms since the epoch.
    pub stored: i64,
    subject: (u32, u32),
    payload: (u32, u32),
}

/// Records in stream order, copied into two buffers so the engine thread
/// frees nothing the client shares (no per-message reference counts
/// crossing threads), with how many the consumer still had pending after
/// the last of them (0: caught up).
#[derive(Default)]
pub struct StreamBatch {
    pub records: Vec<StreamRecord>,
    subjects: String,
    payloads: Vec<u8>,
    /// Where the last record's acknowledgement goes (JetStream only).
    pub last_reply: Option<async_nats::Subject>,
    pub pending: u64,
}

impl StreamBatch {
    fn with_capacity(records: usize, subjects: usize, payloads: usize) -> StreamBatch {
        StreamBatch {
            records: Vec::with_capacity(records),
            subjects: String::with_capacity(subjects),
            payloads: Vec::with_capacity(payloads),
            last_reply: None,
            pending: 0,
        }
    }

    fn push(&mut self, seq: u64, stored: i64, subject: &str, payload: &[u8]) {
        let s = self.subjects.len() as u32;
        self.subjects.push_str(subject);
        let p = self.payloads.len() as u32;
        self.payloads.extend_from_slice(payload);
        self.records.push(StreamRecord {
            seq,
            stored,
            subject: (s, self.subjects.len() as u32),
            payload: (p, self.payloads.len() as u32),
        });
    }

    pub fn subject(&self, r: &StreamRecord) -> &str {
        &self.subjects[r.subject.0 as usize..r.subject.1 as usize]
    }

    pub fn payload(&self, r: &StreamRecord) -> &[u8] {
        &self.payloads[r.payload.0 as usize..r.payload.1 as usize]
    }
}

/// Which durable consumer reads the stream: the whole stream, or one
/// partition's subjects (DESIGN §8).
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub durable: String,
    pub filter: Option<String>,
}

impl ConsumerSpec {
    /// The consumer of the whole stream, `nats.consumer`.
    pub fn whole(settings: &NatsSettings) -> ConsumerSpec {
        ConsumerSpec {
            durable: settings.consumer.clone(),
            filter: None,
        }
    }

    /// The consumer of partition `n` under the lease with fencing token
    /// `token`: `<consumer>-p<n>-<token>` over `<prefix>.p<n>.>` (the whole
    /// stream when it has one partition). Each lease has its own, so a
    /// former owner's consumer, retries and acknowledgements never touch
    /// the new owner's; an abandoned one goes after [`INACTIVE`].
    pub fn partition(settings: &NatsSettings, n: u32, token: u64) -> ConsumerSpec {
        ConsumerSpec {
            durable: format!("{}-p{n}-{token}", settings.consumer),
            filter: (settings.partitions > 1)
                .then(|| format!("{}.p{n}.>", settings.subject_prefix)),
        }
    }
}

/// How long a partition's consumer outlives its last reader.
pub const INACTIVE: Duration = Duration::from_secs(600);

/// Reads the stream from `next` on with a durable pull consumer and hands
/// batches to the engine until shutdown. Any consumer error recreates the
/// consumer from the sequence after the last one handed over.
pub async fn jetstream_source(
    js: jetstream::Context,
    settings: NatsSettings,
    spec: ConsumerSpec,
    mut next: u64,
    tx: mpsc::Sender<StreamBatch>,
    ready: watch::Sender<Readiness>,
    shutdown: CancellationToken,
) {
    let mut attempt = 0u32;
    loop {
        let run = consume(
            &js,
            &settings,
            &spec,
            &mut next,
            &tx,
            &shutdown,
            &mut attempt,
        );
        let result = tokio::select! {
            r = run => r,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(error = %format!("{e:#}"), next, "reading the JetStream stream failed; retrying");
                }
                set_degraded(&ready, format!("{e:#}"));
                let wait = backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn consume(
    js: &jetstream::Context,
    s: &NatsSettings,
    spec: &ConsumerSpec,
    next: &mut u64,
    tx: &mpsc::Sender<StreamBatch>,
    shutdown: &CancellationToken,
    attempt: &mut u32,
) -> anyhow::Result<()> {
    ensure_streams(js, s).await?;
    let stream = js.get_stream(&s.stream).await?;
    let first = stream.cached_info().state.first_sequence;
    if *next < first && stream.cached_info().state.messages > 0 {
        tracing::error!(
            wanted = *next,
            first,
            "the stream no longer holds the messages after the last checkpoint \
             (retention removed them); continuing from the first one it holds"
        );
    }
    // The consumer is recreated at our position: the server's idea of what
    // was delivered may be ahead of what the last checkpoint covers.
    match stream.delete_consumer(&spec.durable).await {
        Ok(_) => {}
        Err(e) if e.to_string().contains("not found") => {}
        Err(e) => return Err(e).context("replacing the durable consumer"),
    }
    let deliver_policy = if *next <= 1 {
        jetstream::consumer::DeliverPolicy::All
    } else {
        jetstream::consumer::DeliverPolicy::ByStartSequence {
            start_sequence: *next,
        }
    };
    let mut consumer = stream
        .create_consumer(PullConfig {
            durable_name: Some(spec.durable.clone()),
            description: Some("EventFlow aggregator".into()),
            filter_subject: spec.filter.clone().unwrap_or_default(),
            deliver_policy,
            ack_policy: jetstream::consumer::AckPolicy::All,
            ack_wait: Duration::from_millis(s.ack_wait_ms),
            // Acknowledged per checkpoint, so everything in between is pending.
            max_ack_pending: -1,
            // A partition's consumer is left behind when its lease moves.
            inactive_threshold: if spec.filter.is_some() || spec.durable != s.consumer {
                INACTIVE
            } else {
                Duration::ZERO
            },
            ..Default::default()
        })
        .await
        .context("creating the durable consumer")?;
    let pending = consumer.info().await?.num_pending;
    tracing::info!(consumer = %spec.durable, from = *next, pending, "consuming the JetStream stream");
    if pending == 0 {
        // Nothing to recover: say so, or the engine would wait for a message.
        send(tx, StreamBatch::default(), shutdown).await?;
    }
    let mut reader = pull::Pull::start(js.client(), &s.stream, &spec.durable, BATCH).await?;
    loop {
        let (messages, mut failed) = reader.next(BATCH).await;
        let mut batch = StreamBatch::with_capacity(
            messages.len(),
            messages.iter().map(|m| m.subject.len()).sum(),
            messages.iter().map(|m| m.payload.len()).sum(),
        );
        for m in messages {
            let Some(info) = m.reply.as_deref().and_then(pull::AckInfo::parse) else {
                failed = Some(anyhow::anyhow!(
                    "a stream message came with the reply subject {:?}, which is not a JetStream acknowledgement",
                    m.reply.as_deref().unwrap_or_default()
                ));
                break;
            };
            batch.pending = info.pending;
            if info.stream_sequence < *next {
                continue; // a redelivery of what the engine already has
            }
            batch.push(
                info.stream_sequence,
                info.stored_ns.div_euclid(1_000_000),
                &m.subject,
                &m.payload,
            );
            batch.last_reply = m.reply;
            *next = info.stream_sequence + 1;
        }
        let failed = failed.map(|e| e.context("pulling messages"));
        *attempt = 0;
        // What was read before an error goes to the engine too: `next` is
        // already past it, and the consumer is recreated from there.
        if !batch.records.is_empty() || failed.is_none() {
            send(tx, batch, shutdown).await?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
}

async fn send(
    tx: &mpsc::Sender<StreamBatch>,
    batch: StreamBatch,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    tokio::select! {
        r = tx.send(batch) => r.map_err(|_| anyhow::anyhow!("the engine stopped")),
        _ = shutdown.cancelled() => Ok(()),
    }
}

/// Core mode: subscribes to the event subjects and hands what arrives to
/// the engine. No stream, no acknowledgement, no replay.
pub async fn core_source(
    client: Client,
    subjects: Subjects,
    tx: mpsc::Sender<StreamBatch>,
    clock: Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut subs = Vec::new();
    for s in subjects.stream_subjects() {
        subs.push(client.subscribe(s).await?);
    }
    // The server has the subscriptions once it answers a flush: only then
    // is the service ready to receive.
    client.flush().await?;
    let mut seq = 0u64;
    // Nothing to recover from.
    send(&tx, StreamBatch::default(), &shutdown).await?;
    let mut first = 0;
    loop {
        let mut chunk = Vec::new();
        tokio::select! {
            closed = std::future::poll_fn(|cx| poll_ready(&mut subs, first, cx, BATCH, &mut chunk)) => {
                if closed {
                    return Ok(());
                }
            }
            _ = shutdown.cancelled() => return Ok(()),
        }
        first = (first + 1) % subs.len();
        let now = clock();
        let mut batch = StreamBatch::with_capacity(
            chunk.len(),
            chunk.iter().map(|m| m.subject.len()).sum(),
            chunk.iter().map(|m| m.payload.len()).sum(),
        );
        for m in chunk {
            seq += 1;
            batch.push(seq, now, &m.subject, &m.payload);
        }
        send(&tx, batch, &shutdown).await?;
    }
}

/// Moves what the subscriptions hold into `out`, up to `limit` in all,
/// taking each one's messages in order and starting with `first` (callers
/// rotate it, so a busy subscription cannot starve the others). Ready once
/// something came; `true` when a subscription ended. Per message this is a
/// channel receive, where `select_all` and `ready_chunks` would queue and
/// allocate per message.
fn poll_ready(
    subs: &mut [async_nats::Subscriber],
    first: usize,
    cx: &mut std::task::Context<'_>,
    limit: usize,
    out: &mut Vec<async_nats::Message>,
) -> std::task::Poll<bool> {
    use std::task::Poll;
    let n = subs.len();
    for k in 0..n {
        let sub = &mut subs[(first + k) % n];
        loop {
            if out.len() >= limit {
                return Poll::Ready(false);
            }
            match sub.poll_next_unpin(cx) {
                Poll::Ready(Some(m)) => {
                    if out.capacity() == 0 {
                        out.reserve_exact(limit);
                    }
                    out.push(m);
                }
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Pending => break,
            }
        }
    }
    if out.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(false)
    }
}

/// Rejected messages of one engine round, published to the dead-letter
/// stream before the round's results are handed on.
pub struct Dlq {
    js: jetstream::Context,
    subject: String,
    stream: String,
    runtime: tokio::runtime::Handle,
    held: Vec<(StreamRecordRef, String)>,
    shutdown: CancellationToken,
}

/// What the dead-letter message keeps of the original.
pub struct StreamRecordRef {
    pub seq: u64,
    pub subject: String,
    pub payload: Bytes,
}

impl Dlq {
    pub fn new(
        js: jetstream::Context,
        settings: &NatsSettings,
        runtime: tokio::runtime::Handle,
        shutdown: CancellationToken,
    ) -> Dlq {
        Dlq {
            js,
            subject: Subjects::new(&settings.subject_prefix).dlq(),
            stream: settings.stream.clone(),
            runtime,
            held: Vec::new(),
            shutdown,
        }
    }

    pub fn reject(&mut self, batch: &StreamBatch, record: &StreamRecord, reason: String) {
        self.held.push((
            StreamRecordRef {
                seq: record.seq,
                subject: batch.subject(record).to_owned(),
                payload: Bytes::copy_from_slice(batch.payload(record)),
            },
            reason,
        ));
    }

    /// Publishes what was rejected, retrying until the stream has it (or
    /// shutdown: a restart resumes before these messages and rejects them
    /// again; the message id keeps the dead-letter stream free of repeats).
    pub fn flush(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let mut attempt = 0u32;
        loop {
            let publish = async {
                let mut acks = Vec::with_capacity(held.len());
                for (r, reason) in &held {
                    let mut headers = HeaderMap::new();
                    headers.insert("EventFlow-Reason", one_line(reason).as_str());
                    headers.insert("EventFlow-Subject", r.subject.as_str());
                    headers.insert("EventFlow-Sequence", r.seq.to_string().as_str());
                    let msg = jetstream::message::PublishMessage::build()
                        .payload(r.payload.clone())
                        .headers(headers)
                        .message_id(format!("{}:{}", self.stream, r.seq));
                    acks.push(self.js.send_publish(self.subject.clone(), msg).await?);
                }
                for ack in acks {
                    ack.await?;
                }
                Ok::<_, anyhow::Error>(())
            };
            match self.runtime.block_on(publish) {
                Ok(()) => {
                    for (r, reason) in &held {
                        tracing::warn!(seq = r.seq, subject = %r.subject, %reason, "a message went to the dead-letter stream");
                    }
                    return;
                }
                Err(e) => {
                    if self.shutdown.is_cancelled() {
                        tracing::error!(error = %e, "rejected messages were not written to the dead-letter stream before shutdown; they are rejected again after restart");
                        return;
                    }
                    if attempt == 0 {
                        tracing::warn!(error = %e, "publishing to the dead-letter stream failed; retrying");
                    }
                    std::thread::sleep(backoff(
                        attempt,
                        Duration::from_millis(100),
                        Duration::from_secs(5),
                    ));
                    attempt += 1;
                }
            }
        }
    }
}

/// Header values are one line.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Accepted events on their way to NATS.
pub struct Outgoing {
    pub subject: String,
    /// The event `id`, sent as `Nats-Msg-Id`.
    pub id: Option<String>,
    pub payload: Bytes,
}

/// Publishes everything, then waits for the acknowledgements; returns what
/// was not acknowledged. Stops waiting when `connected` turns false: what
/// is still unacknowledged then counts as not stored.
pub(crate) async fn publish_all(
    js: &jetstream::Context,
    events: Vec<Outgoing>,
    connected: &watch::Receiver<bool>,
) -> Vec<Outgoing> {
    let mut acked = vec![false; events.len()];
    let publish = async {
        let mut waiting = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let mut msg = jetstream::message::PublishMessage::build().payload(e.payload.clone());
            if let Some(id) = &e.id {
                msg = msg.message_id(id);
            }
            if let Ok(ack) = js.send_publish(e.subject.clone(), msg).await {
                waiting.push((i, ack));
            }
        }
        for (i, ack) in waiting {
            acked[i] = ack.await.is_ok();
        }
    };
    let mut connection = connected.clone();
    tokio::select! {
        () = publish => {}
        _ = connection.wait_for(|up| !*up) => {}
    }
    events
        .into_iter()
        .zip(acked)
        .filter_map(|(e, acked)| (!acked).then_some(e))
        .collect()
}

/// Whether `mode` keeps a stream (and so positions and a spool).
pub fn has_stream(mode: NatsMode) -> bool {
    mode == NatsMode::Jetstream
}

/// The source name under which the stream position is saved.
pub fn source_name(settings: &NatsSettings) -> String {
    format!("nats:{}", settings.stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_in_a_nats_url_is_taken_from_it_and_kept_out_of_messages() {
        assert_eq!(url_credentials("nats://127.0.0.1:4222").unwrap(), None);
        assert_eq!(
            url_credentials("nats://eventflow:s%40cret@nats:4222").unwrap(),
            Some(UrlLogin::UserPassword("eventflow".into(), "s@cret".into()))
        );
        assert_eq!(
            url_credentials("nats://a:4222, nats://t0ken@b:4222").unwrap(),
            Some(UrlLogin::Token("t0ken".into()))
        );
        assert_eq!(
            crate::util::redact_credentials("nats://u:p@a:4222,nats://b:4222"),
            "nats://***@a:4222,nats://b:4222"
        );
    }

    #[test]
    fn partitioned_subjects_carry_the_partition_of_the_key() {
        let s = Subjects::partitioned("ef", 4);
        // w-17 is partition 1 of 4 (README's vectors).
        let ping = br#"{"type":"presence","webinar_id":"w-17","viewer_id":"v","action":"ping"}"#;
        let ev = crate::event::decode(ping).unwrap();
        assert_eq!(s.event(&ev), "ef.p1.presence.w-17");
        assert!(s.decode("ef.p1.presence.w-17", ping, 1).is_ok());
        for wrong in [
            "ef.p0.presence.w-17",
            "ef.presence.w-17",
            "ef.p1.activity.w-17",
            "ef.p01.presence.w-17",
            "ef.p+1.presence.w-17",
            "ef.p.presence.w-17",
            "eff.p1.presence.w-17",
        ] {
            assert!(s.decode(wrong, ping, 1).is_err(), "{wrong}");
        }
        let tick = br#"{"type":"tick","ts":5}"#;
        for n in 0..4 {
            assert!(s.decode(&format!("ef.p{n}.tick"), tick, 1).is_ok(), "p{n}");
        }
        for wrong in ["ef.p4.tick", "ef.tick", "ef.p00.tick"] {
            assert!(s.decode(wrong, tick, 1).is_err(), "{wrong}");
        }
        assert_eq!(
            s.stream_subjects(),
            ["ef.p0.>", "ef.p1.>", "ef.p2.>", "ef.p3.>"]
        );
        assert_eq!(Subjects::partitioned("ef", 1).ticks(), ["ef.tick"]);
        assert_eq!(
            Subjects::partitioned("ef", 2).ticks(),
            ["ef.p0.tick", "ef.p1.tick"]
        );
    }

    #[test]
    fn a_stream_keeps_its_partition_count() {
        assert!(check_partitions("S", None, 1).is_ok(), "older streams: one");
        assert!(check_partitions("S", Some("EventFlow events; partitions=4"), 4).is_ok());
        let err = check_partitions("S", Some("EventFlow events; partitions=4"), 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nats.partitions = 4"), "{err}");
        assert!(check_partitions("S", None, 3).is_err());
    }

    #[test]
    fn events_map_to_their_subjects_and_must_arrive_on_them() {
        let s = Subjects::new("ef.t1");
        let decode = |w: &str| {
            let line = format!(
                r#"{{"type":"presence","webinar_id":"{w}","viewer_id":"v","action":"ping","ts":1}}"#
            );
            crate::event::decode(line.as_bytes()).map(|e| Subjects::unpublishable(&e))
        };
        assert_eq!(decode("w.1"), Ok(None));
        // Ids with an empty part between dots are refused in every mode.
        for w in ["w..1", ".w", "w."] {
            let err = decode(w).unwrap_err();
            assert_eq!(err.field, "webinar_id", "{w}");
        }
        let ping = br#"{"type":"presence","webinar_id":"w.1","viewer_id":"v","action":"ping"}"#;
        let ev = s.decode("ef.t1.presence.w.1", ping, 1_000).unwrap();
        assert_eq!(ev.ts(), Some(1_000), "ts defaults to the stored time");
        for wrong in [
            "ef.t1.presence.w",
            "ef.t1.presence.w.1.2",
            "ef.t1.activity.w.1",
            "ef.t2.presence.w.1",
            "ef.t1presence.w.1",
        ] {
            assert!(s.decode(wrong, ping, 0).is_err(), "{wrong}");
        }
        let err = s.decode("ef.t1.presence.w-2", ping, 1_000).unwrap_err();
        assert!(
            err.starts_with("subject:") && err.contains("ef.t1.presence.w.1"),
            "{err}"
        );
        let tick = br#"{"type":"tick","ts":5}"#;
        assert!(s.decode("ef.t1.tick", tick, 0).is_ok());
        assert!(s.decode("ef.t1.pageview", tick, 0).is_err());
        let bad = br#"{"type":"presence","webinar_id":"w","action":"ping"}"#;
        assert!(
            s.decode("ef.t1.presence.w", bad, 0)
                .unwrap_err()
                .contains("viewer_id")
        );
        let visit =
            br#"{"type":"visit","client_id":"c","campaign_id":"k","session_id":"s","ts":9}"#;
        assert_eq!(s.decode("ef.t1.visit.k", visit, 0).unwrap().ts(), Some(9));
        assert_eq!(
            s.stream_subjects(),
            [
                "ef.t1.presence.>",
                "ef.t1.activity.>",
                "ef.t1.visit.>",
                "ef.t1.conversion.>",
                "ef.t1.pageview",
                "ef.t1.tick"
            ]
        );
    }
}
