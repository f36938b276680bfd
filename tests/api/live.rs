//! WebSockets: a snapshot on connect, then live counts and final buckets;
//! origins checked; close code 1001 on shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::spawn_app;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Socket) -> Value {
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
