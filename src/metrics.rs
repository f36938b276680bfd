//! Every metric the service exports, named once, in Prometheus text format
//! (`GET /metrics`). Hot paths add per batch, never per record.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    /// `presence`, `activity`, ... (`unknown` when the type was unreadable).
    pub r#type: String,
    /// `accepted` (acknowledged by ingest), `rejected` (refused by ingest),
    /// `applied` (folded in by the engine), `invalid` (unreadable in the log),
    /// `duplicate` (an `id` seen within the dedupe window; type `any`).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's path template (`/api/webinars/{webinar_id}/live`), or
    /// `unmatched`: never the raw path, so ids do not multiply series.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BoundLabels {
    /// `max_public_entities` (503) or `new_entities_per_minute` (429).
    pub bound: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MoveLabels {
    /// `claimed`, `released` (handed over after a final flush) or `lost`
    /// (a renewal failed or a newer owner wrote).
    pub how: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabels {
    /// `store`, `nats`, `redis`.
    pub part: String,
}

fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub degraded: Family<PartLabels, Gauge>,
    pub entities_refused: Family<BoundLabels, Counter>,
    pub partition_moves: Family<MoveLabels, Counter>,
    pub partitions_owned: Gauge,
    pub records: Family<RecordLabels, Counter>,
    pub late: Counter,
    pub clamped: Counter,
    pub log_fsync: Histogram,
    pub flush: Histogram,
    pub flush_failures: Counter,
    pub websocket_clients: Gauge,
    pub http_connections: Gauge,
    pub connections_refused: Counter,
    pub websockets_refused: Counter,
    pub live_viewers: Gauge,
    pub engine_lag_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub buckets_flushed: Counter<u64, AtomicU64>,
    pub engine_lag_messages: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub spooled: Counter,
    pub nats_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("eventflow");
        let records = Family::<RecordLabels, Counter>::default();
        registry.register(
            "records",
            "Event records by type and outcome",
            records.clone(),
        );
        let late = Counter::default();
        registry.register(
            "late_records",
            "Records applied more than window.late_ms behind their clock",
            late.clone(),
        );
        let clamped = Counter::default();
        registry.register(
            "clamped_records",
            "Records more than window.max_future_ms ahead of their arrival, applied at arrival",
            clamped.clone(),
        );
        let log_fsync = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "log_fsync_seconds",
            "Event log group-commit fsync latency",
            log_fsync.clone(),
        );
        let flush = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "bucket_flush_seconds",
            "Latency of writing final buckets to the store",
            flush.clone(),
        );
        let flush_failures = Counter::default();
        registry.register(
            "bucket_flush_failures",
            "Store writes that failed and were retried",
            flush_failures.clone(),
        );
        let websocket_clients = Gauge::default();
        registry.register(
            "websocket_clients",
            "Connected WebSocket clients",
            websocket_clients.clone(),
        );
        let http_connections = Gauge::default();
        registry.register(
            "http_connections",
            "Open client connections (HTTP and WebSocket)",
            http_connections.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Connections closed at once because limits.max_connections were open",
            connections_refused.clone(),
        );
        let websockets_refused = Counter::default();
        registry.register(
            "websockets_refused",
            "WebSocket upgrades refused over limits.max_websockets or limits.max_websockets_per_token",
            websockets_refused.clone(),
        );
        let live_viewers = Gauge::default();
        registry.register(
            "live_viewers",
            "Viewers live across all webinars",
            live_viewers.clone(),
        );
        let engine_lag_bytes = Gauge::default();
        registry.register(
            "engine_lag_bytes",
            "Bytes of the local log committed but not yet applied by the engine (within the current day's file)",
            engine_lag_bytes.clone(),
        );
        let buckets_flushed = Counter::default();
        registry.register(
            "buckets_flushed",
            "Final bucket rows written to the store",
            buckets_flushed.clone(),
        );
        let engine_lag_messages = Gauge::default();
        registry.register(
            "engine_lag_messages",
            "JetStream messages stored but not yet delivered to the engine, summed over the instance's partitions",
            engine_lag_messages.clone(),
        );
        let spooled = Counter::default();
        registry.register(
            "spooled_events",
            "Events kept in the local spool because NATS did not acknowledge them",
            spooled.clone(),
        );
        let nats_dropped = Counter::default();
        registry.register(
            "nats_slow_consumer_events",
            "Times NATS reported a subscription too slow and dropped messages (core mode)",
            nats_dropped.clone(),
        );
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_histogram);
        registry.register(
            "http_request_seconds",
            "Time from a request's head to its response, by route template and method",
            http_request_seconds.clone(),
        );
        let degraded = Family::<PartLabels, Gauge>::default();
        registry.register(
            "degraded",
            "1 while an external part (store, nats, redis) is unavailable, as /readyz says",
            degraded.clone(),
        );
        let entities_refused = Family::<BoundLabels, Counter>::default();
        registry.register(
            "entities_refused",
            "Public events refused because they named a new webinar, campaign or client past a limits.* bound",
            entities_refused.clone(),
        );
        let partition_moves = Family::<MoveLabels, Counter>::default();
        registry.register(
            "partition_moves",
            "Partitions this instance took over, handed over or lost (nats.leases)",
            partition_moves.clone(),
        );
        let partitions_owned = Gauge::default();
        registry.register(
            "partitions_owned",
            "Partitions this instance holds the lease of (nats.leases)",
            partitions_owned.clone(),
        );
        Metrics {
            registry,
            entities_refused,
            partition_moves,
            partitions_owned,
            http_requests,
            http_request_seconds,
            degraded,
            engine_lag_messages,
            spooled,
            nats_dropped,
            records,
            late,
            clamped,
            log_fsync,
            flush,
            flush_failures,
            websocket_clients,
            http_connections,
            connections_refused,
            websockets_refused,
            live_viewers,
            engine_lag_bytes,
            buckets_flushed,
        }
    }

    pub fn record(&self, r#type: &str, outcome: &str, n: u64) {
        if n > 0 {
            self.records
                .get_or_create(&RecordLabels {
                    r#type: r#type.to_owned(),
                    outcome: outcome.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// One contributor's part of a gauge that sums over several: each
/// partition's consumer reports its own JetStream lag, and the instance's
/// gauge is the sum. Dropping the share takes its part back out.
#[derive(Debug)]
pub struct GaugeShare {
    gauge: Gauge<i64, std::sync::atomic::AtomicI64>,
    mine: i64,
}

impl GaugeShare {
    pub fn new(gauge: Gauge<i64, std::sync::atomic::AtomicI64>) -> GaugeShare {
        GaugeShare { gauge, mine: 0 }
    }

    /// This contributor's part is now `value`.
    pub fn set(&mut self, value: i64) {
        self.gauge.inc_by(value - self.mine);
        self.mine = value;
    }
}

impl Drop for GaugeShare {
    fn drop(&mut self) {
        self.gauge.dec_by(self.mine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::eventlog::LogObserver;
    use std::time::Duration;

    #[test]
    fn a_shared_gauge_is_the_sum_of_its_live_shares() {
        let m = Metrics::new();
        let mut a = GaugeShare::new(m.engine_lag_messages.clone());
        let mut b = GaugeShare::new(m.engine_lag_messages.clone());
        a.set(700);
        b.set(50);
        assert_eq!(m.engine_lag_messages.get(), 750);
        a.set(100);
        assert_eq!(m.engine_lag_messages.get(), 150);
        drop(b);
        assert_eq!(m.engine_lag_messages.get(), 100);
        a.set(0);
        assert_eq!(m.engine_lag_messages.get(), 0);
    }

    #[test]
    fn exposition_names_every_metric() {
        let m = Metrics::new();
        m.record("presence", "accepted", 3);
        m.late.inc();
        m.fsync(Duration::from_millis(2), 10);
        let text = m.encode();
        for name in [
            "eventflow_records_total{type=\"presence\",outcome=\"accepted\"} 3",
            "eventflow_late_records_total 1",
            "eventflow_clamped_records_total 0",
            "eventflow_log_fsync_seconds_count 1",
            "eventflow_bucket_flush_seconds_count 0",
            "eventflow_websocket_clients 0",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}
