//! WebSockets: a snapshot on connect, then live counts and final buckets;
//! origins checked; close code 1001 on shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{now_ms, spawn_app, spawn_app_with};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn snapshot_then_live_counts_then_final_buckets() {
    let app = spawn_app().await;
    let url = format!("ws://{}/ws/webinars/w-ws?token={}", app.addr, app.token);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["live"], 0);
    assert!(snapshot["recent_buckets"].as_array().unwrap().is_empty());

    app.post("/api/webinars/w-ws/presence/ping", r#"{"viewer_id":"a"}"#)
        .await;
    // Then, in whatever order they happen: the count goes to 1, the 1 s
    // bucket closes on the next ticks, and the viewer expires after 1.5 s.
    let mut counts = Vec::new();
    let mut buckets = 0;
    while !(buckets > 0 && counts.ends_with(&[0])) {
        let m = next_json(&mut ws).await;
        assert_eq!(m["webinar_id"], "w-ws");
        match m["type"].as_str() {
            Some("bucket") => {
                buckets += 1;
                assert_eq!(
                    m["bucket_end"].as_i64().unwrap() - m["bucket_start"].as_i64().unwrap(),
                    1000
                );
            }
            Some("live") => counts.push(m["live"].as_u64().unwrap()),
            Some("open") => assert!(m["open_bucket"]["engagement"].is_object(), "{m}"),
            other => panic!("unexpected {other:?}: {m}"),
        }
    }
    assert_eq!(counts, [1, 0], "each change of the count, once");

    // A new connection's snapshot holds the stored final buckets.
    let url = format!("ws://{}/ws/webinars/w-ws?token={}", app.addr, app.token);
    let (mut again, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let snapshot = next_json(&mut again).await;
    assert!(
        !snapshot["recent_buckets"].as_array().unwrap().is_empty(),
        "{snapshot}"
    );
}

#[tokio::test]
async fn foreign_origins_and_missing_tokens_are_refused() {
    let app = spawn_app().await;
    let mut req = format!("ws://{}/ws/webinars/w?token={}", app.addr, app.token)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let err = tokio_tungstenite::connect_async(format!("ws://{}/ws/webinars/w", app.addr))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let app = spawn_app().await;
    let url = format!("ws://{}/ws/webinars/w?token={}", app.addr, app.token);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _snapshot = next_json(&mut ws).await;
    let stopping = tokio::spawn(app.stop());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Away);
    drop(ws);
    stopping.await.unwrap();
}

#[tokio::test]
async fn the_open_bucket_carries_engagement_and_the_open_day() {
    let app = spawn_app_with(serde_json::json!({"window": {"bucket_ms": 60_000}})).await;
    let now = now_ms();
    let batch = |kind: &str, viewer: &str| {
        format!(
            r#"{{"type":"activity","webinar_id":"w-eng","viewer_id":"{viewer}","kind":"{kind}","ts":{now}}}"#
        )
    };
    let body = [
        format!(r#"{{"type":"presence","webinar_id":"w-eng","viewer_id":"a","action":"ping","ts":{now}}}"#),
        format!(r#"{{"type":"presence","webinar_id":"w-eng","viewer_id":"b","action":"ping","ts":{now}}}"#),
        batch("chat", "a"),
        batch("chat", "b"),
        batch("question", "a"),
    ]
    .join("\n");
    let (status, _) = app.post_batch(body, &app.token).await;
    assert_eq!(status, 202);
    app.wait_applied().await;
    let (_, live) = app.get("/api/webinars/w-eng/live").await;
    assert_eq!(live["open_bucket"]["engagement"]["chat"], 2, "{live}");
    assert_eq!(live["open_bucket"]["engagement"]["question"], 1, "{live}");
    assert_eq!(live["open_bucket"]["engagement"]["poll"], 0, "{live}");
    assert_eq!(live["open_periods"]["day"]["unique_viewers"], 2, "{live}");

    let url = format!("ws://{}/ws/webinars/w-eng?token={}", app.addr, app.token);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(
        snapshot["open_bucket"]["engagement"]["chat"], 2,
        "{snapshot}"
    );
    assert_eq!(snapshot["open_periods"]["hour"]["unique_viewers"], 2);
    let (status, _) = app.post_batch(batch("poll", "b"), &app.token).await;
    assert_eq!(status, 202);
    // The next update of the open bucket has the poll.
    loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "open" && m["open_bucket"]["engagement"]["poll"] == 1 {
            assert_eq!(m["open_bucket"]["engagement"]["chat"], 2, "{m}");
            break;
        }
    }
}
