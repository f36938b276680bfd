//! Reads of other instances' partitions (DESIGN §8: any instance answers
//! any read), over NATS request-reply on `<prefix>.read.p<n>`.
//!
//! The owner of partition n answers there while it holds the lease: whole
//! HTTP reads (the request's path and token, answered by its own router,
//! so authorization and every answer are exactly the owner's), and the two
//! questions that join partitions: whether a client names a webinar (a
//! client token reading that webinar), and the fingerprints of a set of
//! webinars' viewers over a range of days (a client overview's distinct
//! live viewers, a union across partitions).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::Lease;
use crate::engine::campaign::{CampaignView, DateRange};

/// Marks a read forwarded by another instance: it is answered here or
/// refused, never forwarded again.
pub const FORWARDED: &str = "x-eventflow-forwarded";

/// How long a forwarded read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A question to a partition's owner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadRequest {
    /// A `GET` of the API: its path and query, and its `Authorization`.
    Http {
        uri: String,
        authorization: Option<String>,
    },
    NamesWebinar {
        client_id: String,
        webinar_id: String,
    },
    Viewers {
        webinars: Vec<String>,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    },
}

/// The owner's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadReply {
    Http {
        status: u16,
        content_type: Option<String>,
        body: String,
    },
    NamesWebinar {
        names: bool,
    },
    Viewers {
        fingerprints: Vec<u128>,
    },
}

/// The router an owner answers HTTP reads with, set once it is built.
pub type RouterCell = Arc<OnceLock<axum::Router>>;

/// Answers reads of one owned partition until `shutdown`.
pub async fn serve(
    client: async_nats::Client,
    subject: String,
    router: RouterCell,
    campaigns: CampaignView,
    lease: Arc<Lease>,
    shutdown: CancellationToken,
) {
    let mut sub = match client.subscribe(subject.clone()).await {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(%subject, error = %e, "subscribing to reads failed");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => return },
            _ = shutdown.cancelled() => return,
        };
        let Some(reply_to) = msg.reply else { continue };
        // Each read in its own task: a read may itself ask another
        // partition (a client's webinar, an overview's viewers), and one
        // slow read must not hold up the ones behind it.
        let (client, router, campaigns, lease) = (
            client.clone(),
            router.clone(),
            campaigns.clone(),
            lease.clone(),
        );
        tokio::spawn(async move {
            let answer = answer(&msg.payload, &router, &campaigns, &lease).await;
            let mut body = serde_json::to_vec(&answer).unwrap_or_default();
            let limit = client.server_info().max_payload;
            if body.len() > limit {
                body = serde_json::to_vec(&unavailable(&format!(
                    "the answer ({} bytes) is larger than NATS carries ({limit}); ask its owner directly",
                    body.len()
                )))
                .unwrap_or_default();
            }
            let _ = client.publish(reply_to, body.into()).await;
        });
    }
}

/// A 503 in the API's error shape.
fn unavailable(why: &str) -> ReadReply {
    ReadReply::Http {
        status: 503,
        content_type: Some("application/json".into()),
        body: serde_json::json!({ "error": why }).to_string(),
    }
}

async fn answer(
    payload: &[u8],
    router: &RouterCell,
    campaigns: &CampaignView,
    lease: &Lease,
) -> ReadReply {
    if !lease.held() {
        return unavailable("the partition is moving between instances; retry");
    }
    match serde_json::from_slice::<ReadRequest>(payload) {
        Ok(ReadRequest::Http { uri, authorization }) => match router.get().cloned() {
            Some(router) => http(router, &uri, authorization).await,
            None => unavailable("the instance is starting; retry"),
        },
        Ok(ReadRequest::NamesWebinar {
            client_id,
            webinar_id,
        }) => ReadReply::NamesWebinar {
            names: campaigns.client_names_webinar(&client_id, &webinar_id),
        },
        Ok(ReadRequest::Viewers { webinars, from, to }) => {
            let webinars: Vec<&str> = webinars.iter().map(String::as_str).collect();
            ReadReply::Viewers {
                fingerprints: if from <= to {
                    campaigns.viewer_fingerprints(&webinars, DateRange { from, to })
                } else {
                    Vec::new()
                },
            }
        }
        Err(e) => ReadReply::Http {
            status: 400,
            content_type: None,
            body: format!("unreadable forwarded read: {e}"),
        },
    }
}

async fn http(router: axum::Router, uri: &str, authorization: Option<String>) -> ReadReply {
    let mut req = Request::get(uri).header(FORWARDED, "1");
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    let Ok(req) = req.body(Body::empty()) else {
        return ReadReply::Http {
            status: 400,
            content_type: None,
            body: "unreadable forwarded path".into(),
        };
    };
    let response = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    ReadReply::Http {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Asks partition `n`'s owner; `Err` says why no answer came.
pub async fn ask(
    client: &async_nats::Client,
    subject: String,
    request: &ReadRequest,
) -> Result<ReadReply, String> {
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(READ_TIMEOUT, client.request(subject, body.into()))
        .await
        .map_err(|_| "its owner did not answer in time".to_owned())?
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                "it has no owner right now (it is being taken over)".to_owned()
            }
            _ => e.to_string(),
        })?;
    serde_json::from_slice(&answer.payload).map_err(|e| format!("unreadable answer: {e}"))
}

/// An HTTP answer from the owner, as this instance's response.
pub fn into_response(reply: ReadReply) -> Response {
    match reply {
        ReadReply::Http {
            status,
            content_type,
            body,
        } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                body,
            )
                .into_response();
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        _ => StatusCode::BAD_GATEWAY.into_response(),
    }
}
