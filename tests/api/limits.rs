//! Hostile traffic: idle sockets past `limits.max_connections`, a body
//! trickling in, an oversized WebSocket message, too many WebSockets for one
//! token. Each test sets small limits and short timeouts of its own.

use std::time::{Duration, Instant};

use eventflow::auth::{Scope, Signer};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{SECRET, TestApp, eventually, now_ms, spawn_app_with};

/// A client that opens a new connection for every request, as a
/// well-behaved newcomer does (no pooled socket holds a slot).
fn newcomer() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// How many of `sockets` the server has closed (or written to: it never
/// writes to a socket that sent nothing, except to close it).
async fn closed(sockets: &[TcpStream]) -> usize {
    let mut n = 0;
    for s in sockets {
        if tokio::time::timeout(Duration::from_millis(1), s.readable())
            .await
            .is_err()
        {
            continue;
        }
        let mut buf = [0u8; 64];
        match s.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => n += 1,
        }
    }
    n
}

#[tokio::test]
async fn idle_sockets_past_the_limit_are_closed_and_the_service_recovers_within_the_header_timeout()
{
    const LIMIT: usize = 8;
    const ATTACKERS: usize = 20;
    let header_timeout = Duration::from_millis(3_000);
    let app = spawn_app_with(json!({"limits": {
        "max_connections": LIMIT,
        "max_websockets": 4,
        "max_websockets_per_token": 4,
        "header_timeout_ms": header_timeout.as_millis() as u64,
    }}))
    .await;

    // An attacker opens sockets and sends nothing.
    let started = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        attackers.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // Those past the limit are closed at once, long before any timeout ...
    let at_once = eventually("the sockets past the limit are closed", || {
        let attackers = &attackers;
        async move {
            let n = closed(attackers).await;
            (n >= ATTACKERS - LIMIT).then_some(n)
        }
    })
    .await;
    assert!(started.elapsed() < header_timeout, "closed at once");
    assert!(at_once < ATTACKERS, "the first sockets hold the slots");
    // ... and while the others hold every slot, a newcomer is turned away
    // rather than queued behind them.
    let turned_away = newcomer().get(format!("{}/healthz", app.base)).send().await;
    assert!(
        started.elapsed() < header_timeout,
        "the attacker still held its slots"
    );
    assert!(
        turned_away.is_err(),
        "a connection past the limit is closed, not served: {turned_away:?}"
    );

    // The header timeout closes the idle sockets; ingest, health and the
    // engine work again within it.
    let accepted = eventually("a newcomer's ping is served", || async {
        let r = newcomer()
            .post(format!("{}/api/webinars/w-limits/presence/ping", app.base))
            .body(r#"{"viewer_id":"v-1"}"#)
            .send()
            .await
            .ok()?;
        Some(r.status().as_u16())
    })
    .await;
    assert_eq!(accepted, 202);
    assert!(
        started.elapsed() < header_timeout + Duration::from_secs(5),
        "served again within the header timeout (and some slack): {:?}",
        started.elapsed()
    );
    eventually("every idle socket is closed by the server", || {
        let attackers = &attackers;
        async move { (closed(attackers).await == ATTACKERS).then_some(()) }
    })
    .await;
    let health = newcomer()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    eventually("the engine counts the newcomer's viewer", || async {
        let r = newcomer()
            .get(format!("{}/api/webinars/w-limits/live", app.base))
            .bearer_auth(&app.token)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        (v["live"] == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_at_the_body_timeout() {
    let body_timeout = Duration::from_millis(1_000);
    let app = spawn_app_with(json!({"limits": {
        "body_timeout_ms": body_timeout.as_millis() as u64,
    }}))
    .await;
    let s = TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    wr.write_all(
        b"POST /api/webinars/w-slow/presence/ping HTTP/1.1\r\nHost: eventflow\r\n\
          Content-Type: application/json\r\nContent-Length: 64\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    // One byte every 200 ms: the whole body would take 12.8 s.
    let trickle = tokio::spawn(async move {
        let body = br#"{"viewer_id":"slow", "padding":"..............................."}"#;
        for b in body.iter().take(64) {
            if wr.write_all(&[*b]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        true
    });
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    assert!(ended.is_ok(), "the server ended the request");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "408 or a closed connection: {answer}"
    );
    assert!(
        took >= body_timeout - Duration::from_millis(100) && took < body_timeout * 4,
        "cut off at the body timeout, not before or much after: {took:?}"
    );
    trickle.abort();
    let (status, live) = app.get("/api/webinars/w-slow/live").await;
    assert_eq!(status, 404, "nothing was accepted: {live}");
}

/// Opens `/ws/webinars/{webinar}` by hand, so the test can write frames the
/// way it likes; the reader is past the `101` response.
async fn raw_websocket(app: &TestApp, webinar: &str) -> BufReader<TcpStream> {
    let mut s = BufReader::new(TcpStream::connect(app.addr).await.unwrap());
    let request = format!(
        "GET /ws/webinars/{webinar} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {}\r\n\r\n",
        app.addr, app.token
    );
    s.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut status = String::new();
    s.read_line(&mut status).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut line = String::new();
        s.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            return s;
        }
    }
}

/// The next frame from the server: (opcode, payload).
async fn read_frame(s: &mut BufReader<TcpStream>) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    let len = match head[1] & 0x7f {
        126 => u64::from(s.read_u16().await?),
        127 => s.read_u64().await?,
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await?;
    Ok((head[0] & 0x0f, payload))
}

#[tokio::test]
async fn an_oversized_websocket_message_closes_the_socket_with_1009_unread() {
    let app = spawn_app_with(json!({"limits": {"ws_max_message_bytes": 1024}})).await;
    // 60 MiB (over every default) and 64 KiB (over the configured 1 KiB
    // only): each frame's header announces it, 4 KiB of it follow, and the
    // rest never comes.
    for announced in [60u64 << 20, 64 << 10] {
        let mut ws = raw_websocket(&app, "w-big").await;
        let (opcode, snapshot) = read_frame(&mut ws).await.unwrap();
        assert_eq!(opcode, 0x1, "{}", String::from_utf8_lossy(&snapshot));
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend(announced.to_be_bytes());
        frame.extend([0x11, 0x22, 0x33, 0x44]);
        frame.extend(std::iter::repeat_n(b'x', 4096));
        ws.get_mut().write_all(&frame).await.unwrap();
        let close = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match read_frame(&mut ws).await {
                    Ok((0x8, payload)) => return Some(payload),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        })
        .await
        .expect("the server answers without waiting for the rest of the message");
        let close = close.expect("a close frame before the connection ends");
        assert_eq!(
            u16::from_be_bytes([close[0], close[1]]),
            1009,
            "message too big; announced {announced} bytes"
        );
    }
}

#[tokio::test]
async fn websockets_are_capped_per_token_and_in_all() {
    let app = spawn_app_with(json!({"limits": {
        "max_connections": 64,
        "max_websockets": 3,
        "max_websockets_per_token": 2,
    }}))
    .await;
    let signer = Signer::new(SECRET.as_bytes());
    let host = signer.mint(Scope::Webinar("w-cap".into()), now_ms() + 600_000);
    let other = signer.mint(Scope::Webinar("w-cap".into()), now_ms() + 700_000);
    let open = |token: &str| {
        tokio_tungstenite::connect_async(format!(
            "ws://{}/ws/webinars/w-cap?token={token}",
            app.addr
        ))
    };

    let (mut first, _) = open(&host).await.unwrap();
    let (_second, _) = open(&host).await.unwrap();
    let err = open(&host).await.unwrap_err();
    assert!(
        err.to_string().contains("429"),
        "a third for one token: {err}"
    );

    let (_third, _) = open(&app.token).await.unwrap();
    let err = open(&other).await.unwrap_err();
    assert!(err.to_string().contains("503"), "a fourth in all: {err}");

    // A closed socket gives its place back.
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    eventually("the token may open another socket", || async {
        open(&host).await.ok()
    })
    .await;
    let (_, metrics) = app.get("/metrics").await;
    let refused = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("eventflow_websockets_refused_total "))
        .map(|v| v.parse::<u64>().unwrap());
    assert!(refused >= Some(2), "refusals are counted: {refused:?}");
}
