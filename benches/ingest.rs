//! Ingest benchmark: the service in-process on loopback, durability on
//! (every 202 waits for the log's group-commit fsync).
//!
//! 1. single-event `POST .../presence/ping` over keep-alive connections;
//! 2. `POST /api/events` batches of 10 000 NDJSON events;
//! 3. join → WebSocket latency: the time from a join's 202 to the `live`
//!    message carrying it, measured with hdrhistogram, idle and under
//!    single-event load paced at 50 % and 90 % of the sustained rate
//!    measured in 1 (p50, p99, p99.9).
//!
//! `SUMMARY` lines give the figures `scripts/bench` collects.
//!
//! Requests are written by a minimal HTTP/1.1 client on raw sockets so the
//! client costs as little CPU as possible: on 2 cores it shares the machine
//! with the server. `EVENTFLOW_BENCH_SECS` sets each phase's length.

mod common;

use common::http::Conn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventflow::app::Application;
use eventflow::config::Settings;
use eventflow::metrics::{Metrics, RecordLabels};
use figment::providers::Serialized;
use futures_util::StreamExt;
use serde_json::json;

fn settings(dir: &std::path::Path) -> Settings {
    let over = json!({
        "http": {"addr": "127.0.0.1:0", "rate_limit_per_sec": 0},
        "data": {"dir": dir},
        "auth": {"secret": "bench-signing-key-0f3e5d7c9b1a2f4e6d8c0b2a"},
        // Pings name thousands of webinars from one address; the latency
        // phases open WebSockets with one token, phase after phase, faster
        // than the server notices the last phase's closes.
        "limits": {"new_entities_per_minute": 0, "max_websockets_per_token": 1000},
    });
    Settings::from_figment(Settings::figment(None).merge(Serialized::defaults(over))).unwrap()
}

/// Single-event pings from `conns` connections for `secs` (as fast as they
/// are answered, or paced to `per_sec` in all); returns req/s.
async fn single_events(
    addr: std::net::SocketAddr,
    conns: usize,
    secs: f64,
    stop: Arc<AtomicBool>,
    per_sec: Option<f64>,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let done = done.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut i = 0u64;
            let start = tokio::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = per_sec {
                    let at = Duration::from_secs_f64(i as f64 * conns as f64 / r);
                    tokio::time::sleep_until(start + at).await;
                }
                let body = format!(r#"{{"viewer_id":"u-{c}-{}"}}"#, i % 500);
                let path = format!("/api/webinars/w-{}/presence/ping", c % 50);
                assert_eq!(conn.post(&path, None, body.as_bytes()).await, 202);
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    while !stop.load(Ordering::Relaxed) && started.elapsed().as_secs_f64() < secs {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / elapsed
}

/// Batches of 10 000 from `conns` connections for `secs`; returns events/s.
async fn batches(addr: std::net::SocketAddr, token: &str, conns: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (done, stop, token) = (done.clone(), stop.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut body = Vec::with_capacity(10_000 * 100);
                for i in 0..10_000u64 {
                    body.extend_from_slice(
                        format!(
                            "{{\"type\":\"presence\",\"webinar_id\":\"w-{}\",\"viewer_id\":\"b-{c}-{}\",\"action\":\"ping\"}}\n",
                            i % 100,
                            (round * 10_000 + i) % 200_000
                        )
                        .as_bytes(),
                    );
                }
                assert_eq!(conn.post("/api/events", Some(&token), &body).await, 202);
                done.fetch_add(10_000, Ordering::Relaxed);
                round += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / elapsed
}

/// Joins one new viewer at a time and times its 202 → WebSocket `live`,
/// rotating over `sockets` webinars (each with its own WebSocket), so a
/// webinar sees a join every `sockets × spacing`.
async fn join_latency(
    addr: std::net::SocketAddr,
    token: &str,
    sockets: usize,
    joins: usize,
    spacing: Duration,
) -> hdrhistogram::Histogram<u64> {
    let mut feeds = Vec::new();
    for k in 0..sockets {
        let webinar = format!("w-latency-{}-{k}", rand_suffix());
        let url = format!("ws://{addr}/ws/webinars/{webinar}?token={token}");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let _snapshot = ws.next().await;
        feeds.push((webinar, ws, 0u64));
    }
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut conn = Conn::open(addr).await;
    for n in 0..joins {
        let (webinar, ws, count) = &mut feeds[n % sockets];
        *count += 1;
        let body = format!(r#"{{"viewer_id":"j-{n}"}}"#);
        assert_eq!(
            conn.post(
                &format!("/api/webinars/{webinar}/presence/ping"),
                None,
                body.as_bytes()
            )
            .await,
            202
        );
        let acked = Instant::now();
        loop {
            let msg = match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                Ok(m) => m.unwrap().unwrap(),
                Err(_) => {
                    let ready = reqwest::get(format!("http://{addr}/readyz"))
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    panic!("no live message for 60 s after a join; /readyz: {ready}");
                }
            };
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "live" && v["live"].as_u64().unwrap() >= *count {
                    break;
                }
            }
        }
        hist.record(acked.elapsed().as_micros() as u64).unwrap();
        tokio::time::sleep(spacing).await;
    }
    hist
}

/// Presence records the engine has applied.
fn applied(metrics: &Metrics) -> u64 {
    metrics
        .records
        .get_or_create(&RecordLabels {
            r#type: "presence".into(),
            outcome: "applied".into(),
        })
        .get()
}

fn summary(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("SUMMARY {name} {value} {unit}");
}

/// Waits until the engine has applied what the log holds; returns the
/// applied presence count.
async fn wait_applied(metrics: &Metrics) -> u64 {
    let mut last = applied(metrics);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = applied(metrics);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A suffix no other call in this process returns: every latency phase
/// gets webinars of its own.
fn rand_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn row(name: &str, value: String, target: &str) {
    println!("| {name:<46} | {value:>16} | {target:>12} |");
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> String {
    format!("{:.2} ms", h.value_at_quantile(q) as f64 / 1000.0)
}

fn main() {
    let secs: f64 = std::env::var("EVENTFLOW_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let app = Application::build(settings(dir.path())).await.unwrap();
        let addr = app.local_addr();
        let token = app.admin_token();
        let metrics = app.state().metrics.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stop_rx.await;
        }));

        println!("ingest benchmark: {secs} s per phase, durability on (fsync per group commit)");
        println!(
            "| {:<46} | {:>16} | {:>12} |",
            "measure", "result", "target"
        );
        println!("|{:-<48}|{:-<18}|{:-<14}|", "", "", "");
        let mut sustained: f64 = 0.0;
        for conns in [64, 256] {
            let rate =
                single_events(addr, conns, secs, Arc::new(AtomicBool::new(false)), None).await;
            sustained = sustained.max(rate);
            row(
                &format!("single-event requests/s ({conns} keep-alive conns)"),
                format!("{rate:.0}"),
                ">= 30 000",
            );
        }
        summary("http_single_rate", format!("{sustained:.0}"), "records/s");
        wait_applied(&metrics).await;
        let before = applied(&metrics);
        let started = Instant::now();
        let rate = batches(addr, &token, 4, secs).await;
        row(
            "events/s through 10 000-event batches (4 conns)",
            format!("{rate:.0}"),
            ">= 500 000",
        );
        // End to end: until the engine has applied every accepted event.
        let total = wait_applied(&metrics).await - before;
        let end_to_end = total as f64 / started.elapsed().as_secs_f64();
        row(
            "  ... applied by the engine, events/s",
            format!("{end_to_end:.0}"),
            "",
        );
        summary("http_batch_rate", format!("{rate:.0}"), "records/s");
        summary(
            "http_batch_applied_rate",
            format!("{end_to_end:.0}"),
            "records/s",
        );

        // Joins 300 ms apart on one webinar: each is the first change in its
        // push interval, so this is the pipeline itself (log, engine, hub,
        // socket).
        let idle = join_latency(addr, &token, 1, 100, Duration::from_millis(300)).await;
        row("join -> WebSocket p50, idle", ms(&idle, 0.5), "");
        row("join -> WebSocket p99, idle", ms(&idle, 0.99), "<= 300 ms");

        // Under single-event load at 50 % and 90 % of the sustained rate:
        // joins every 30 ms over 10 webinars (one join per webinar per
        // 300 ms, longer than the push interval).
        let joins = ((secs * 100.0) as usize).max(100);
        for load in [0.5, 0.9] {
            let stop = Arc::new(AtomicBool::new(false));
            let background = tokio::spawn(single_events(
                addr,
                64,
                3600.0,
                stop.clone(),
                Some(load * sustained),
            ));
            tokio::time::sleep(Duration::from_secs(1)).await;
            let h = join_latency(addr, &token, 10, joins, Duration::from_millis(30)).await;
            stop.store(true, Ordering::Relaxed);
            let offered = background.await.unwrap();
            let pct = (load * 100.0) as u32;
            for (q, name) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
                row(
                    &format!("join -> WebSocket {name}, {pct} % load"),
                    ms(&h, q),
                    if name == "p99" && pct == 90 {
                        "<= 300 ms"
                    } else {
                        ""
                    },
                );
                summary(
                    &format!("ws_latency_{pct}_{}_ms", name.replace('.', "_")),
                    format!("{:.2}", h.value_at_quantile(q) as f64 / 1000.0),
                    "ms",
                );
            }
            row(
                &format!("  (background load at {pct} %, requests/s)"),
                format!("{offered:.0}"),
                "",
            );
        }
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    });
}
