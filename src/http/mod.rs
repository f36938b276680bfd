//! The HTTP surface: ingest (DESIGN §5), reads and WebSockets (§6), health
//! and metrics. Handlers are thin: they parse, authorize, and call into the
//! log, the store and the live hub. Every error leaves through [`ApiError`],
//! which picks the status and the JSON body in one place.

pub mod admission;
pub mod assets;
pub mod campaigns;
pub mod ingest;
pub mod openapi;
pub mod query;
pub mod serve;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{AuthError, Claims, Signer};
use crate::config::Settings;
use crate::event::DecodeError;
use crate::metrics::Metrics;
use crate::sink::live::LiveHub;
use crate::sink::store::Store;
use crate::util::Clock;

pub use crate::health::Readiness;

/// Where the source and the engine stand, for `/readyz`.
pub struct Progress {
    pub applied: watch::Receiver<crate::pipeline::Reading>,
}

/// Everything a handler can reach.
pub struct Inner {
    pub settings: Settings,
    pub sink: ingest::Sink,
    pub store: Store,
    pub hub: Arc<LiveHub>,
    pub signer: Signer,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub ready: watch::Receiver<Readiness>,
    pub shutdown: CancellationToken,
    pub limiter: Option<ingest::Limiter>,
    pub progress: Progress,
    /// `http.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What the browser endpoints may create (`limits.*`).
    pub admission: admission::Admission,
    /// The engine's campaign state, for campaign reads.
    pub campaigns: crate::engine::campaign::CampaignView,
    /// Open WebSockets, in all and per token.
    pub websockets: Arc<ws::Gate>,
    /// With `nats.leases`: the partitions this instance owns, and how reads
    /// reach the others' owners.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

pub type AppState = Arc<Inner>;

impl Inner {
    /// The campaign state holding client `client_id`: the engine's, or
    /// with `nats.leases` its partition's, which `to_owner` has made sure
    /// is this instance's.
    pub fn campaigns_for(
        &self,
        client_id: &str,
    ) -> Result<crate::engine::campaign::CampaignView, ApiError> {
        let Some(cluster) = &self.cluster else {
            return Ok(self.campaigns.clone());
        };
        let p = cluster.partition_of(client_id);
        cluster.campaigns(p).ok_or_else(|| {
            ApiError::Unavailable(format!(
                "client_id: {client_id}'s partition {p} is moving between instances; retry"
            ))
        })
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Browser ingest: no token; CORS, the origin check and the rate limit.
    Public,
    /// Health, readiness, metrics, the dashboard's pages and files and the
    /// browser SDK: no token (pages hold no data; their scripts read it
    /// with the token they were opened with).
    Open,
    /// An admin token.
    Admin,
    /// The `{webinar_id}`'s token, a client token naming that webinar on
    /// its visits or conversions, or an admin token.
    Webinar,
    /// The `{client_id}`'s token, or an admin token.
    Client,
}

/// One route of the service: its path, method and who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub path: &'static str,
    pub method: &'static str,
    pub access: Access,
}

/// Every route, with its handler. The router is built from this list and
/// nothing else, so [`route_table`] (which the authorization tests walk)
/// cannot miss one.
fn routes() -> Vec<(RouteInfo, MethodRouter<AppState>)> {
    use Access::*;
    let r = |path, method, access, handler| {
        (
            RouteInfo {
                path,
                method,
                access,
            },
            handler,
        )
    };
    vec![
        r(
            "/api/webinars/{webinar_id}/presence/ping",
            "POST",
            Public,
            post(ingest::ping),
        ),
        r(
            "/api/webinars/{webinar_id}/presence/leave",
            "POST",
            Public,
            post(ingest::leave),
        ),
        r(
            "/api/public/campaigns/{campaign_id}/visit",
            "POST",
            Public,
            post(ingest::visit),
        ),
        r(
            "/api/public/campaigns/{campaign_id}/conversion",
            "POST",
            Public,
            post(ingest::conversion),
        ),
        r("/api/pageviews", "POST", Public, post(ingest::pageview)),
        r("/api/events", "POST", Admin, post(ingest::batch)),
        r("/api/webinars", "GET", Admin, get(query::webinars)),
        r(
            "/api/webinars/{webinar_id}/live",
            "GET",
            Webinar,
            get(query::live),
        ),
        r(
            "/api/webinars/{webinar_id}/stats/access",
            "GET",
            Webinar,
            get(query::access),
        ),
        r(
            "/api/webinars/{webinar_id}/stats/engagement",
            "GET",
            Webinar,
            get(query::engagement),
        ),
        r(
            "/api/clients/{client_id}/campaigns/summary",
            "GET",
            Client,
            get(campaigns::summary),
        ),
        r(
            "/api/clients/{client_id}/campaigns/links/{link_id}/stats",
            "GET",
            Client,
            get(campaigns::link),
        ),
        r(
            "/api/clients/{client_id}/campaigns/{campaign_id}/stats",
            "GET",
            Client,
            get(campaigns::campaign),
        ),
        r(
            "/api/clients/{client_id}/campaigns/links",
            "GET",
            Client,
            get(campaigns::links),
        ),
        r(
            "/api/clients/{client_id}/webinars",
            "GET",
            Client,
            get(campaigns::webinars),
        ),
        r(
            "/api/clients/{client_id}/pageviews",
            "GET",
            Client,
            get(campaigns::pageviews),
        ),
        r(
            "/api/clients/{client_id}/statistics/overview",
            "GET",
            Client,
            get(campaigns::overview),
        ),
        r(
            "/ws/webinars/{webinar_id}",
            "GET",
            Webinar,
            get(ws::upgrade),
        ),
        r("/healthz", "GET", Open, get(healthz)),
        r("/readyz", "GET", Open, get(readyz)),
        r("/metrics", "GET", Open, get(metrics)),
        r("/sdk/eventflow.js", "GET", Open, get(assets::sdk)),
        r("/", "GET", Open, get(assets::index_page)),
        r(
            "/dashboard/webinars/{webinar_id}",
            "GET",
            Open,
            get(assets::webinar_page),
        ),
        r(
            "/dashboard/clients/{client_id}",
            "GET",
            Open,
            get(assets::client_page),
        ),
        r(
            "/dashboard/assets/{*file}",
            "GET",
            Open,
            get(assets::dashboard_asset),
        ),
        r("/openapi.json", "GET", Open, get(openapi::openapi_json)),
        r("/docs", "GET", Open, get(assets::docs_page)),
        r("/docs/docs.js", "GET", Open, get(assets::docs_script)),
        r("/docs/docs.css", "GET", Open, get(assets::docs_style)),
    ]
}

/// Every route the router serves.
pub fn route_table() -> Vec<RouteInfo> {
    routes().into_iter().map(|(info, _)| info).collect()
}

/// The router of the whole service.
pub fn router(state: AppState) -> Router {
    let (mut public, mut rest) = (Router::new(), Router::new());
    for (info, handler) in routes() {
        if info.access == Access::Public {
            public = public.route(info.path, handler);
        } else {
            rest = rest.route(info.path, handler);
        }
    }
    let public = public
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ingest::guard,
        ))
        .layer(cors(&state.settings));
    let rest = rest.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        to_owner,
    ));
    rest.merge(public)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body_deadline,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn(head_limits))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// With `nats.leases`: a read that needs a partition's engine (a client's
/// campaigns, a webinar's live state and statistics) is answered by the
/// partition's owner — here, or over NATS by the instance holding it
/// (DESIGN §8: reads go to any instance). A read forwarded here is never
/// forwarded again.
async fn to_owner(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(cluster) = &s.cluster else {
        return next.run(req).await;
    };
    let template = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let param = if template.starts_with("/api/clients/{client_id}/") {
        "client_id"
    } else if template.starts_with("/api/webinars/{webinar_id}/") && req.method() == Method::GET {
        "webinar_id"
    } else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let key = match axum::extract::RawPathParams::from_request_parts(&mut parts, &s).await {
        Ok(params) => params
            .iter()
            .find(|(name, _)| *name == param)
            .map(|(_, value)| value.to_owned()),
        Err(e) => return e.into_response(),
    };
    let Some(key) = key else {
        return next
            .run(axum::extract::Request::from_parts(parts, body))
            .await;
    };
    let p = cluster.partition_of(&key);
    if cluster.owns(p) {
        return next
            .run(axum::extract::Request::from_parts(parts, body))
            .await;
    }
    if parts.headers.contains_key(crate::cluster::reads::FORWARDED) {
        return ApiError::Unavailable(format!(
            "{param}: {key}'s partition {p} is moving between instances; retry"
        ))
        .into_response();
    }
    let request = crate::cluster::reads::ReadRequest::Http {
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    match cluster.ask(p, &request).await {
        Ok(reply) => crate::cluster::reads::into_response(reply),
        Err(why) => ApiError::Unavailable(format!("{param}: {key}'s {why}")).into_response(),
    }
}

/// Counts every request by route template, method and status, and times it
/// from its head to its response (the body of a streamed response is not
/// waited for).
async fn count_requests(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    s.metrics
        .http_request_seconds
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    s.metrics
        .http_requests
        .get_or_create(&crate::metrics::RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The longest request target (path and query) the service reads.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header fields one request may carry.
pub const MAX_HEADERS: usize = 100;
/// The most bytes of header names and values one request may carry.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses a request whose target or headers exceed the bounds above, with
/// `414` or `431` and the JSON error shape, before anything reads it.
async fn head_limits(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        let error = format!("request target: longer than {MAX_URI_BYTES} bytes");
        return (StatusCode::URI_TOO_LONG, Json(json!({ "error": error }))).into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let error = format!(
            "headers: at most {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes \
             (got {} fields, {bytes} bytes)",
            headers.len()
        );
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Json(json!({ "error": error })),
        )
            .into_response();
    }
    next.run(req).await
}

/// Gives every error the one JSON shape `{"error": "..."}`: the router's own
/// 404 and 405, and the extractors' rejections (a path that is not UTF-8, a
/// query that does not parse), which axum answers in plain text or not at
/// all. Ours are JSON already and pass untouched.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(
        parts,
        axum::body::Body::from(json!({ "error": text }).to_string()),
    )
}

/// Every request body must arrive whole within `limits.body_timeout_ms` of
/// its headers; reading it after that fails, and ingest answers 408.
async fn body_deadline(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = std::time::Duration::from_millis(s.settings.limits.body_timeout_ms);
    next.run(req.map(|body| serve::with_body_deadline(body, limit)))
        .await
}

/// CORS for the browser endpoints: the configured origins (none: same
/// origin only, which needs no CORS).
fn cors(settings: &Settings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .http
        .allowed_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static(ingest::INGEST_KEY_HEADER),
        ])
        // So that a page's script (the SDK) can honour a 429's or 503's wait.
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(3600))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    description = "The process serves requests.",
    responses((status = 200, description = "Alive.", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /healthz`: the process serves requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, examples("ok"))]
    pub status: &'static str,
}

/// `GET /readyz`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Whether the instance takes traffic: the engine has recovered.
    pub ready: bool,
    /// The engine has read its source up to where it stood at start.
    pub recovered: bool,
    /// Parts that are down (`store`, `redis`, `nats`, ...), with why.
    /// Ingest and aggregation go on without them: they do not make the
    /// instance unready.
    pub degraded: std::collections::BTreeMap<String, String>,
    /// Embedded mode: the local log's committed and applied positions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogProgress>,
    /// NATS mode: the stream position applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsProgress>,
    /// With `nats.leases`: this instance and the partitions it owns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterProgress>,
}

/// An instance sharing partitions (DESIGN §8).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterProgress {
    /// Its name among the lease holders.
    pub instance: String,
    /// `nats.partitions`.
    pub partitions: u32,
    /// The partitions it owns, each with where its engine stands.
    pub owned: Vec<PartitionProgress>,
}

/// One owned partition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartitionProgress {
    pub partition: u32,
    /// The last stream sequence applied (`seq:<n>`).
    pub applied: String,
    /// Nothing more was waiting in the partition.
    pub caught_up: bool,
}

/// Where the engine stands in the local log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogProgress {
    /// The last position made durable.
    pub committed: String,
    /// The last position the engine applied; equal to `committed` when it
    /// has caught up.
    pub applied: String,
}

/// Where the engine stands in the NATS stream.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NatsProgress {
    pub applied: String,
    /// Nothing more was waiting in the stream.
    pub caught_up: bool,
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness",
    description = "Whether the engine has recovered (read its source up to where it stood at \
        start), which parts are degraded, and where the engine stands in its source.",
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Still recovering.", body = Ready),
    ),
)]
async fn readyz(State(s): State<AppState>) -> Response {
    let r = s.ready.borrow().clone();
    // Degraded parts are named, but do not take the instance out of a load
    // balancer: ingest and aggregation go on without them.
    let applied = *s.progress.applied.borrow();
    let (log, nats) = match &s.sink {
        ingest::Sink::Log(log) => (
            Some(LogProgress {
                committed: log.committed().borrow().to_string(),
                applied: applied.position.to_string(),
            }),
            None,
        ),
        ingest::Sink::Nats(_) if s.cluster.is_some() => (None, None),
        ingest::Sink::Nats(_) => (
            None,
            Some(NatsProgress {
                applied: applied.position.to_string(),
                caught_up: applied.caught_up,
            }),
        ),
    };
    let body = Ready {
        ready: r.recovered,
        recovered: r.recovered,
        degraded: r.degraded.into_iter().collect(),
        log,
        nats,
        cluster: s.cluster.as_ref().map(|c| ClusterProgress {
            instance: c.instance.clone(),
            partitions: c.partitions,
            owned: c
                .progress()
                .into_iter()
                .map(|(partition, r)| PartitionProgress {
                    partition,
                    applied: r.position.to_string(),
                    caught_up: r.caught_up,
                })
                .collect(),
        }),
    };
    let status = if r.recovered {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Ingest accepted and rejected by type, engine lag, flushes, WebSockets, ... \
        in the OpenMetrics text format.",
    responses((
        status = 200,
        description = "The metrics.",
        content_type = "application/openmetrics-text",
        body = String,
    )),
)]
async fn metrics(State(s): State<AppState>) -> Response {
    // Parts named by readiness now: 1; every part ever named before: 0.
    let degraded: Vec<String> = s
        .ready
        .borrow()
        .degraded
        .iter()
        .map(|(part, _)| part.clone())
        .collect();
    for part in ["store", "nats", "redis"] {
        s.metrics
            .degraded
            .get_or_create(&crate::metrics::PartLabels { part: part.into() })
            .set(i64::from(degraded.iter().any(|p| p == part)));
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong: the field and the rule where there is one.
    #[schema(examples(
        "from: must be before to (from is 1764000000000, to is 1763990000000 in epoch milliseconds)"
    ))]
    pub error: String,
}

/// Every way a request can fail, with its status and a JSON body
/// `{"error": "..."}` that names the field and the rule where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Over the rate limit; try again after this long.
    #[error("too many requests; slow down")]
    RateLimited(std::time::Duration),
    /// Over another per-client bound (named in the message); try again
    /// after this long.
    #[error("{0}")]
    RateLimitedFor(String, std::time::Duration),
    /// Over a limit of the client's own (429).
    #[error("{0}")]
    TooMany(String),
    /// The request's body did not arrive in time (408; the connection
    /// closes).
    #[error("{0}")]
    BodyTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        if e.too_large {
            ApiError::TooLarge(e.to_string())
        } else {
            ApiError::BadRequest(e.to_string())
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Unavailable(format!("the store is unavailable: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Auth(AuthError::Forbidden) => StatusCode::FORBIDDEN,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited(_) | ApiError::RateLimitedFor(..) | ApiError::TooMany(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let retry_after = match &self {
            // Whole seconds, at least one (RFC 9110 §10.2.3).
            ApiError::RateLimited(wait) | ApiError::RateLimitedFor(_, wait) => {
                Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on its way: not worth reading.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The verified claims of the request's token (`Authorization: Bearer` or,
/// for browsers' WebSockets only, `?token=`).
pub struct Auth(pub Claims);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let websocket = parts.uri.path().starts_with("/ws/");
        let token = bearer(&parts.headers)
            .or_else(|| websocket.then(|| query_token(parts.uri.query())).flatten())
            .ok_or(AuthError::Missing)?;
        Ok(Auth(s.signer.verify(&token, (s.clock)())?))
    }
}

/// The request's token as sent, for limits per token (WebSockets).
pub fn request_token(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    bearer(headers).or_else(|| query_token(uri.query()))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_owned())
}

/// The peer address, for rate limiting.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;
