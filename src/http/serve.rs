//! Serving HTTP under limits (issue 11, hostile traffic): how many
//! connections may be open at once, how long a connection may take to send a
//! request's headers (and so how long it may sit idle between requests), how
//! long a body may take to arrive, and the open-file budget that keeps the
//! log, the store and the checkpoint working whatever the sockets do.
//!
//! A connection past `limits.max_connections` is closed as soon as it is
//! accepted, without reading anything: answering it `503` would mean
//! reading its request, which is what a client holding sockets open wants
//! the server to wait for. Accepting it (rather than leaving it in the
//! kernel's backlog) keeps the backlog moving, so that a slot freed by the
//! header timeout goes to whoever connects next. A client sees a closed
//! connection and retries.
//!
//! Every descriptor a connection uses is bounded by the limit, WebSockets
//! included (an upgraded connection keeps its slot until it closes), and the
//! limit itself is lowered to what the open-file limit allows beyond
//! [`RESERVED_FDS`]: sockets never take the descriptors the engine needs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Limits;
use crate::metrics::Metrics;

/// Descriptors kept out of reach of client connections: the event log and
/// its readers, the spool, the embedded store, the checkpoint, housekeeping's
/// compression, the connections to NATS, Redis and Postgres (a pool), and
/// the runtime's own.
pub const RESERVED_FDS: u64 = 256;

/// Raises the soft open-file limit to the hard limit (the soft one is often
/// 1 024, which a thousand idle sockets exhaust); the soft limit in force
/// after, if it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => Some(soft),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection and WebSocket limits in force: the configured ones,
/// lowered so that connections leave [`RESERVED_FDS`] descriptors of
/// `open_files` (or half of it, when it is that small) to the rest of the
/// service; WebSockets then keep to half of the connections, leaving the
/// rest to ingest and reads.
pub fn effective_limits(limits: &Limits, open_files: Option<u64>) -> (usize, usize) {
    let Some(open_files) = open_files else {
        return (limits.max_connections, limits.max_websockets);
    };
    let room = if open_files > 2 * RESERVED_FDS {
        open_files - RESERVED_FDS
    } else {
        open_files / 2
    };
    let room = usize::try_from(room).unwrap_or(usize::MAX).max(2);
    if limits.max_connections <= room {
        return (limits.max_connections, limits.max_websockets);
    }
    (room, limits.max_websockets.min(room / 2).max(1))
}

/// What [`serve`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown`, then lets requests in
/// flight finish (idle connections close at once) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the connection waits in
                    // the backlog until some close.
                    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        metrics.http_connections.inc();
        let io = Held {
            stream,
            _slot: slot,
            metrics: metrics.clone(),
        };
        connections.spawn(serve_connection(
            io,
            peer,
            router.clone(),
            limits.header_timeout,
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    io: Held,
    peer: SocketAddr,
    router: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let service = router.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(Body::new)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timeout runs from the moment hyper waits for a request's
    // head: right after accepting, and after every response on a kept-alive
    // connection. So it is also the idle timeout.
    // Heads past the service's own bounds (`super::head_limits`) still
    // parse, so they are refused with the JSON error of every other status;
    // hyper's own, body-less 431 is left for heads past its read buffer.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_headers(4 * super::MAX_HEADERS);
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// A client's socket with its slot: the slot is given back when the socket
/// closes, which for a WebSocket is when the WebSocket ends.
struct Held {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.http_connections.dec();
    }
}

impl AsyncRead for Held {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The error a request body yields once `limits.body_timeout_ms` has passed
/// since its headers: a body trickling in a byte at a time cannot hold a
/// connection for longer than that.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimedOut(pub Duration);

/// Whether a body read failed because of [`BodyTimedOut`].
pub fn body_timed_out(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<BodyTimedOut>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Gives a request body a total deadline (not one between chunks: a byte
/// every second would reset that forever).
pub fn with_body_deadline(body: Body, limit: Duration) -> Body {
    if http_body::Body::is_end_stream(&body) {
        return body;
    }
    Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limit)),
        limit,
    })
}

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_the_reserved_descriptors_to_the_service() {
        let limits = Limits {
            max_connections: 8192,
            max_websockets: 4096,
            ..Limits::default()
        };
        assert_eq!(effective_limits(&limits, None), (8192, 4096));
        assert_eq!(effective_limits(&limits, Some(1 << 20)), (8192, 4096));
        assert_eq!(
            effective_limits(&limits, Some(8192 + RESERVED_FDS)),
            (8192, 4096)
        );
        // The usual soft limit, had raising it failed: 1 024 - 256.
        assert_eq!(effective_limits(&limits, Some(1024)), (768, 384));
        // Tiny limits keep half for the service.
        assert_eq!(effective_limits(&limits, Some(300)), (150, 75));
        let small = Limits {
            max_connections: 100,
            max_websockets: 10,
            ..Limits::default()
        };
        assert_eq!(effective_limits(&small, Some(1024)), (100, 10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_has_a_total_deadline_however_it_trickles() {
        let (mut tx, rx) = futures_channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let body = with_body_deadline(Body::from_stream(rx), Duration::from_secs(5));
        let reader = tokio::spawn(axum::body::to_bytes(body, 1 << 20));
        use futures_util::SinkExt;
        for _ in 0..4 {
            tx.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
            tokio::time::advance(Duration::from_secs(2)).await;
            if reader.is_finished() {
                break;
            }
        }
        let err = reader.await.unwrap().unwrap_err();
        assert!(body_timed_out(&err), "{err}");
        assert!(!body_timed_out(&axum::Error::new(std::io::Error::other(
            "x"
        ))));
    }
}
