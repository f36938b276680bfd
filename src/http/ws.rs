//! `GET /ws/webinars/{id}`: a host's live dashboard feed.
//!
//! On connect: a `snapshot` (live count, open bucket with its engagement,
//! open hour and day, recent final buckets). Then `live` when the count
//! changes — at most one per `live.push_interval_ms`, always the newest
//! value — `open` when the open bucket changed (presence or engagement), at
//! most once a second, and `bucket` when a bucket becomes final. Each client has its own task and reads the hub's
//! `watch` channel, so a slow client only ever delays itself. Pings keep the
//! connection alive; a peer that stops answering is closed; shutdown closes
//! every socket with 1001 (going away).
//!
//! Limits: at most `limits.max_websockets` sockets at once (503 past it) and
//! `limits.max_websockets_per_token` per token string (429 past it), counted
//! by [`Gate`]; a client message or frame larger than
//! `limits.ws_max_message_bytes` closes the socket with 1009 (message too
//! big) as soon as its header announces the size, before its payload is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until, timeout};

use super::query::{bucket_json, open_json};
use super::{ApiError, AppState, Auth};
use crate::auth::AuthError;
use crate::event::Identifier;
use crate::sink::live::{LiveState, Subscription};

/// How often the server pings; a peer silent for two periods is dropped.
const PING_EVERY: Duration = Duration::from_secs(15);
/// A send that takes longer than this means the peer is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The open bucket is sent at most this often.
const OPEN_EVERY: Duration = Duration::from_secs(1);
/// Final buckets in a snapshot.
const RECENT_BUCKETS: i64 = 12;

/// Open WebSockets, in all and per token. A [`Pass`] holds a place until
/// it is dropped, with its socket.
pub struct Gate {
    max_total: usize,
    max_per_token: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_token: HashMap<String, usize>,
}

/// A place among the open WebSockets.
pub struct Pass {
    gate: Arc<Gate>,
    token: String,
}

impl Gate {
    pub fn new(max_total: usize, max_per_token: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max_total,
            max_per_token,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for one more socket opened with `token`, or why not.
    pub fn enter(self: &Arc<Self>, token: &str) -> Result<Pass, ApiError> {
        let mut open = self.open.lock().expect("the gate's lock is never poisoned");
        let mine = open.per_token.get(token).copied().unwrap_or(0);
        if mine >= self.max_per_token {
            return Err(ApiError::TooMany(format!(
                "this token has {mine} WebSockets open, the most allowed; close one first"
            )));
        }
        if open.total >= self.max_total {
            return Err(ApiError::Unavailable(
                "too many WebSockets are open; try again later".into(),
            ));
        }
        open.total += 1;
        *open.per_token.entry(token.to_owned()).or_default() += 1;
        Ok(Pass {
            gate: self.clone(),
            token: token.to_owned(),
        })
    }

    /// Sockets open in all.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .expect("the gate's lock is never poisoned")
            .total
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut open = self
            .gate
            .open
            .lock()
            .expect("the gate's lock is never poisoned");
        open.total -= 1;
        if let Some(n) = open.per_token.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.per_token.remove(&self.token);
            }
        }
    }
}

/// Read and write buffer room per WebSocket.
const WS_BUFFER_BYTES: usize = 8 * 1024;

#[utoipa::path(
    get,
    path = "/ws/webinars/{webinar_id}",
    tag = "webinars",
    summary = "The live feed (WebSocket)",
    description = "On connect a `snapshot` (live count, open bucket with its engagement, open \
        hour and day, recent final buckets); then `live` when the count changes (at most one \
        per `live.push_interval_ms`), `open` when the open bucket changed (at most once a \
        second) and `bucket` when a bucket becomes final. Browsers pass the token as \
        `?token=`; their `Origin` must be the page's own or in `http.allowed_origins`.",
    params(("webinar_id" = Identifier, Path, description = "The webinar.", example = "w-17")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol."),
        (status = 400, description = "`webinar_id` is not an identifier, or the request is \
            not a WebSocket upgrade.", body = super::ErrorBody),
        (status = 403, description = "The token reads neither this webinar nor a client whose \
            visits or conversions name it, or the page's `Origin` is not allowed.", body = super::ErrorBody),
        (status = 429, description = "This token has `limits.max_websockets_per_token` \
            sockets open.", body = super::ErrorBody),
        (status = 503, description = "`limits.max_websockets` sockets are open.", body = super::ErrorBody),
    ),
)]
pub async fn upgrade(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    super::query::authorize_webinar(&s, &claims, &webinar_id).await?;
    check_origin(&headers, &s.settings.http.allowed_origins)?;
    // Auth verified the token, so there is one.
    let token = super::request_token(&headers, &uri).unwrap_or_default();
    let pass = s.websockets.enter(&token).inspect_err(|_| {
        s.metrics.websockets_refused.inc();
    })?;
    let max_message = s.settings.limits.ws_max_message_bytes;
    // Clients send a few small messages at most and the feed's are small:
    // buffers of a few KiB instead of the library's 128 KiB each way. A
    // client that stops reading lets the write buffer grow to 1 MiB, then
    // its socket is closed.
    let ws = ws
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(WS_BUFFER_BYTES)
        .max_write_buffer_size(1 << 20);
    let sub = s.hub.subscribe(&webinar_id);
    // History comes from the store, live counts do not: while the store is
    // down the feed starts without the recent buckets.
    let store_down = s.ready.borrow().degraded.iter().any(|(p, _)| p == "store");
    let recent = if store_down {
        Vec::new()
    } else {
        s.store
            .recent_presence(&webinar_id, RECENT_BUCKETS)
            .await
            .unwrap_or_else(|e| {
                tracing::debug!(error = %e, "no recent buckets for a live feed: the store failed");
                Vec::new()
            })
    };
    let recent: Vec<Value> = recent.iter().map(|b| bucket_json(&webinar_id, b)).collect();
    Ok(ws.on_upgrade(move |socket| async move {
        let _pass = pass;
        s.metrics.websocket_clients.inc();
        let (sink, stream) = socket.split();
        let feed = Feed {
            webinar_id,
            push_interval: Duration::from_millis(s.settings.live.push_interval_ms),
        };
        feed.run(sink, stream, sub, recent, s.shutdown.clone())
            .await;
        s.metrics.websocket_clients.dec();
    }))
}

/// Browsers send `Origin`; it must be the page's own origin or an allowed
/// one. Clients without `Origin` (backends) are not browsers and pass.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same = origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host));
    if same || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(ApiError::Auth(AuthError::Forbidden))
    }
}

fn live_json(webinar_id: &str, st: &LiveState) -> Value {
    json!({"type": "live", "webinar_id": webinar_id, "live": st.live, "ts": st.ts})
}

pub struct Feed {
    pub webinar_id: String,
    pub push_interval: Duration,
}

impl Feed {
    /// A message with the live count, the open bucket and the open periods.
    fn open_message(&self, kind: &str, st: &LiveState) -> Value {
        let (open_bucket, open_periods) = open_json(&self.webinar_id, st);
        json!({
            "type": kind,
            "webinar_id": self.webinar_id,
            "live": st.live,
            "ts": st.ts,
            "open_bucket": open_bucket,
            "open_periods": open_periods,
        })
    }

    /// Serves one client until it leaves, stops answering, or the service
    /// shuts down. Generic over the socket halves so it can be tested
    /// without a network.
    pub async fn run<S, R>(
        &self,
        mut sink: S,
        mut stream: R,
        mut sub: Subscription,
        recent: Vec<Value>,
        shutdown: tokio_util::sync::CancellationToken,
    ) where
        S: Sink<Message> + Unpin,
        R: Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        let st = *sub.state.borrow_and_update();
        let mut snapshot = self.open_message("snapshot", &st);
        snapshot["recent_buckets"] = json!(recent);
        if !send(&mut sink, snapshot).await {
            return;
        }
        let mut last_live = st.live;
        let mut next_push = Instant::now();
        let mut pending = false;
        // The open bucket (presence and engagement) as last sent, and when
        // it may next be sent.
        let mut last_open = st;
        let mut next_open = Instant::now() + OPEN_EVERY;
        let mut open_pending = false;
        let mut ping = interval(PING_EVERY);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ping.reset();
        let mut unanswered = 0u32;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = sink.send(Message::Close(Some(CloseFrame {
                        code: close_code::AWAY,
                        reason: Utf8Bytes::from_static("server shutting down"),
                    }))).await;
                    break;
                }
                changed = sub.state.changed(), if !(pending && open_pending) => {
                    if changed.is_err() { break; }
                    // Seen: the branches below read the newest value.
                    sub.state.borrow_and_update();
                    pending = true;
                    open_pending = true;
                }
                _ = sleep_until(next_open), if open_pending => {
                    open_pending = false;
                    let st = *sub.state.borrow();
                    if st != last_open {
                        last_open = st;
                        if !send(&mut sink, self.open_message("open", &st)).await { break; }
                        next_open = Instant::now() + OPEN_EVERY;
                    }
                }
                _ = sleep_until(next_push), if pending => {
                    pending = false;
                    let st = *sub.state.borrow();
                    if st.live != last_live {
                        last_live = st.live;
                        if !send(&mut sink, live_json(&self.webinar_id, &st)).await { break; }
                        next_push = Instant::now() + self.push_interval;
                    }
                }
                bucket = sub.buckets.recv() => match bucket {
                    Ok(b) => {
                        let mut msg = bucket_json(&self.webinar_id, &b);
                        msg["type"] = json!("bucket");
                        if !send(&mut sink, msg).await { break; }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
                _ = ping.tick() => {
                    if unanswered >= 2 { break; }
                    unanswered += 1;
                    if timeout(SEND_TIMEOUT, sink.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                        break;
                    }
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        // A message over limits.ws_max_message_bytes: say so
                        // (its payload was never read), then go.
                        if too_big(e) {
                            let _ = timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(CloseFrame {
                                code: close_code::SIZE,
                                reason: Utf8Bytes::from_static("message too big"),
                            })))).await;
                        }
                        break;
                    }
                    Some(Ok(_)) => unanswered = 0,
                },
            }
        }
    }
}

/// Whether a read failed because the client's message or frame was over
/// the configured maximum.
fn too_big(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn send<S: Sink<Message> + Unpin>(sink: &mut S, value: Value) -> bool {
    let text = Message::Text(Utf8Bytes::from(value.to_string()));
    matches!(timeout(SEND_TIMEOUT, sink.send(text)).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::live::LiveHub;
    use futures_channel::mpsc;
    use std::sync::Arc;

    fn text(m: Message) -> Value {
        match m {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn snapshot_then_coalesced_live_counts_then_close_on_shutdown() {
        let hub = LiveHub::new();
        let w: Arc<str> = "w".into();
        hub.publish(
            &w,
            LiveState {
                live: 1,
                ts: 10,
                open_bucket: None,
                open_periods: None,
                engagement: [0; 7],
            },
        );
        let sub = hub.subscribe("w");
        let (out_tx, mut out_rx) = mpsc::unbounded::<Message>();
        let (_in_tx, in_rx) = mpsc::unbounded::<Result<Message, axum::Error>>();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let feed = Feed {
            webinar_id: "w".into(),
            push_interval: Duration::from_millis(250),
        };
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { feed.run(out_tx, in_rx, sub, vec![], shutdown).await }
        });
        let snap = text(out_rx.next().await.unwrap());
        assert_eq!(
            (snap["type"].as_str(), snap["live"].as_u64()),
            (Some("snapshot"), Some(1))
        );

        hub.publish(
            &w,
            LiveState {
                live: 2,
                ts: 20,
                open_bucket: None,
                open_periods: None,
                engagement: [0; 7],
            },
        );
        let first = text(out_rx.next().await.unwrap());
        assert_eq!(
            (first["type"].as_str(), first["live"].as_u64()),
            (Some("live"), Some(2))
        );
        let sent_at = Instant::now();
        // Three changes inside one push interval arrive as one message: the newest.
        for live in [3, 4, 5] {
            hub.publish(
                &w,
                LiveState {
                    live,
                    ts: 30,
                    open_bucket: None,
                    open_periods: None,
                    engagement: [0; 7],
                },
            );
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        let next = text(out_rx.next().await.unwrap());
        assert_eq!(next["live"].as_u64(), Some(5));
        assert!(Instant::now() - sent_at >= Duration::from_millis(250));

        hub.bucket(
            "w",
            crate::engine::PresenceStats {
                bucket_start: 0,
                bucket_end: 100,
                ..Default::default()
            },
        );
        let bucket = text(out_rx.next().await.unwrap());
        assert_eq!(
            (bucket["type"].as_str(), bucket["bucket_end"].as_i64()),
            (Some("bucket"), Some(100))
        );

        shutdown.cancel();
        match out_rx.next().await.unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, close_code::AWAY),
            other => panic!("expected a close frame, got {other:?}"),
        }
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_open_bucket_goes_out_at_most_once_a_second_newest_first() {
        let hub = LiveHub::new();
        let w: Arc<str> = "w".into();
        let state = |pings: u32, chat: u32| LiveState {
            live: 1,
            ts: 1_000 + i64::from(pings),
            open_bucket: Some(crate::engine::PresenceStats {
                bucket_start: 0,
                bucket_end: 300_000,
                pings,
                ..Default::default()
            }),
            engagement: [chat, 0, 0, 0, 0, 0, 0],
            open_periods: None,
        };
        hub.publish(&w, state(1, 0));
        let sub = hub.subscribe("w");
        let (out_tx, mut out_rx) = mpsc::unbounded::<Message>();
        let (_in_tx, in_rx) = mpsc::unbounded::<Result<Message, axum::Error>>();
        let feed = Feed {
            webinar_id: "w".into(),
            push_interval: Duration::from_millis(250),
        };
        let start = Instant::now();
        let task = tokio::spawn(async move {
            feed.run(
                out_tx,
                in_rx,
                sub,
                vec![],
                tokio_util::sync::CancellationToken::new(),
            )
            .await
        });
        let snap = text(out_rx.next().await.unwrap());
        assert_eq!(snap["open_bucket"]["engagement"]["chat"], 0);
        assert_eq!(snap["open_bucket"]["pings"], 1);
        // Ten changes within 100 ms; the live count stays 1.
        for i in 2..12 {
            hub.publish(&w, state(i, i / 2));
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        let open = text(out_rx.next().await.unwrap());
        assert_eq!(open["type"], "open", "{open}");
        assert_eq!(open["open_bucket"]["pings"], 11, "the newest: {open}");
        assert_eq!(open["open_bucket"]["engagement"]["chat"], 5);
        assert_eq!(open["live"], 1);
        let first_at = Instant::now();
        assert!(
            first_at - start >= Duration::from_secs(1),
            "not before a second"
        );
        hub.publish(&w, state(12, 6));
        let open = text(out_rx.next().await.unwrap());
        assert_eq!(open["open_bucket"]["pings"], 12);
        assert!(
            Instant::now() - first_at >= Duration::from_secs(1),
            "one a second"
        );
        // Nothing changed: nothing is sent.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(out_rx.try_recv().is_err(), "nothing pending");
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_dropped() {
        let hub = LiveHub::new();
        let sub = hub.subscribe("w");
        let (out_tx, mut out_rx) = mpsc::unbounded::<Message>();
        let (_in_tx, in_rx) = mpsc::unbounded::<Result<Message, axum::Error>>();
        let feed = Feed {
            webinar_id: "w".into(),
            push_interval: Duration::from_millis(250),
        };
        let task = tokio::spawn(async move {
            feed.run(
                out_tx,
                in_rx,
                sub,
                vec![],
                tokio_util::sync::CancellationToken::new(),
            )
            .await
        });
        let _snapshot = out_rx.next().await.unwrap();
        tokio::time::advance(PING_EVERY * 4).await;
        task.await.unwrap();
        let mut pings = 0;
        while let Some(m) = out_rx.next().await {
            assert!(matches!(m, Message::Ping(_)));
            pings += 1;
        }
        assert_eq!(pings, 2, "two unanswered pings, then the feed ends");
    }

    #[test]
    fn origins_are_checked_against_the_host_and_the_allow_list() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "stats.example.com".parse().unwrap());
        assert!(check_origin(&h, &[]).is_ok(), "no Origin: not a browser");
        h.insert(header::ORIGIN, "https://stats.example.com".parse().unwrap());
        assert!(check_origin(&h, &[]).is_ok(), "same origin");
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_origin(&h, &[]).is_err());
        assert!(check_origin(&h, &["https://evil.example".into()]).is_ok());
    }
}
