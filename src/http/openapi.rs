//! The API description: OpenAPI 3.1, derived by utoipa from the handlers'
//! annotations and the types they take and send, served at
//! `GET /openapi.json`; and its reference page at `GET /docs`, rendered in
//! the browser by a small script of our own built into the binary (no CDN,
//! nothing fetched but the description itself).
//!
//! What every route shares is added here from [`super::route_table`], so
//! that it follows the router: security by [`Access`] level (a bearer
//! token, an ingest key, or none) with the errors that go with it, the
//! browser endpoints' guard (origin, rate limit, admission), and the
//! limits on request targets and headers every request meets. The
//! browser endpoints' bodies are the wire format's event schemas less what
//! the URL fixes.

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Header, OpenApi as Spec, Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{Access, ErrorBody, RouteInfo, route_table};
use crate::event::{self, Conversion, Pageview, Presence, Visit};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "EventFlow",
        description = "Exact real-time statistics for webinars and campaigns: live viewers, \
            5-minute buckets, engagement, visits, conversions with UTM attribution, and page \
            views.\n\n\
            **Ingest.** Browsers post single events to the public endpoints (no token; \
            CORS, the origin check and a rate limit per client address; with \
            `auth.ingest = \"signed\"` an ingest key). Backends post batches to \
            `POST /api/events` with an admin token. Events are durable before `202` is \
            answered.\n\n\
            **Reads.** Every read needs a token (`Authorization: Bearer <token>`), minted \
            with `eventflow token`: `--admin` reads everything, `--client C` one client's \
            campaigns (and the webinars its visits and conversions name), `--webinar W` one \
            webinar. A token for one tenant never reads another's data.\n\n\
            **Errors.** Every error answers with a JSON body `{\"error\": \"...\"}` that \
            names the field and the rule where there is one.",
        license(name = "Apache-2.0"),
    ),
    paths(
        super::ingest::ping,
        super::ingest::leave,
        super::ingest::visit,
        super::ingest::conversion,
        super::ingest::pageview,
        super::ingest::batch,
        super::query::webinars,
        super::query::live,
        super::query::access,
        super::query::engagement,
        super::campaigns::summary,
        super::campaigns::link,
        super::campaigns::campaign,
        super::campaigns::links,
        super::campaigns::webinars,
        super::campaigns::pageviews,
        super::campaigns::overview,
        super::ws::upgrade,
        super::healthz,
        super::readyz,
        super::metrics,
        super::assets::sdk,
        super::assets::index_page,
        super::assets::webinar_page,
        super::assets::client_page,
        super::assets::dashboard_asset,
        openapi_json,
        super::assets::docs_page,
        super::assets::docs_script,
        super::assets::docs_style,
    ),
    components(schemas(
        Presence,
        event::Activity,
        Visit,
        Conversion,
        Pageview,
        super::campaigns::CampaignInterval,
        super::query::Bound,
    )),
    modifiers(&Shared),
    tags(
        (name = "ingest", description = "Events in (DESIGN §5): browser endpoints and the backends' batch."),
        (name = "webinars", description = "Live viewers, access statistics and engagement of webinars."),
        (name = "campaigns", description = "A client's campaigns, links, webinars, page views and overview (exact over any range of local days)."),
        (name = "operations", description = "Health, readiness and metrics."),
        (name = "pages", description = "The dashboard, the browser SDK and this reference."),
    ),
)]
pub struct ApiDoc;

/// The description, built once.
static SPEC: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the API description serializes")
});

/// The description as JSON.
pub fn spec_json() -> &'static str {
    &SPEC
}

/// `GET /openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "pages",
    summary = "This API description",
    description = "OpenAPI 3.1, derived from the service's own handlers and types.",
    responses((status = 200, description = "The description.", body = Object)),
)]
pub async fn openapi_json() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        spec_json(),
    )
        .into_response()
}

/// Adds what routes share, by their [`Access`] (see the module's doc).
struct Shared;

/// The security schemes' names.
const BEARER: &str = "bearer";
const TOKEN_QUERY: &str = "token";
const INGEST_KEY: &str = "ingestKey";
const INGEST_KEY_QUERY: &str = "ingestKeyQuery";

impl Modify for Shared {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.schemas.extend(
            event::schema::components()
                .into_iter()
                .map(|(name, schema)| (name.into_owned(), schema)),
        );
        for (name, schema) in browser_bodies() {
            components.schemas.insert(name.into(), schema);
        }
        components
            .schemas
            .insert("EventRecord".into(), event_record());
        components
            .schemas
            .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
        security_schemes(components);
        for route in route_table() {
            let Some(op) = operation(spec, &route) else {
                // The test below names the route.
                continue;
            };
            shared(route, op);
        }
    }
}

fn security_schemes(components: &mut utoipa::openapi::Components) {
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A read token, minted with `eventflow token --admin`, `--client \
                     CLIENT_ID` or `--webinar WEBINAR_ID` (`--ttl`, at most 30d). Signed \
                     with `auth.secret`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        TOKEN_QUERY,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "token",
            "The read token as `?token=`, for browsers' WebSockets (which cannot set \
             headers); WebSocket upgrades only.",
        ))),
    );
    components.add_security_scheme(
        INGEST_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-EventFlow-Key",
            "With `auth.ingest = \"signed\"`: an ingest key, minted with `eventflow token \
             --ingest --webinar W` (presence), `--campaign C` (visits, conversions) or \
             `--client C` (page views naming that client). It reads nothing.",
        ))),
    );
    components.add_security_scheme(
        INGEST_KEY_QUERY,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "key",
            "The ingest key as `?key=`, for `navigator.sendBeacon`, which sets no headers.",
        ))),
    );
}

/// The route's operation in the description.
fn operation<'s>(spec: &'s mut Spec, route: &RouteInfo) -> Option<&'s mut Operation> {
    let item = spec.paths.paths.get_mut(&spec_path(route.path))?;
    match route.method {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "DELETE" => item.delete.as_mut(),
        "PATCH" => item.patch.as_mut(),
        _ => None,
    }
}

/// A route's path as the description writes it: a catch-all `{*rest}`
/// is the parameter `{rest}`.
pub fn spec_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn error(description: &str) -> RefOr<ApiResponse> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name(ErrorBody::name()))),
        )
        .into()
}

fn with_retry_after(response: RefOr<ApiResponse>) -> RefOr<ApiResponse> {
    let RefOr::T(mut response) = response else {
        return response;
    };
    let mut seconds = Header::new(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1)),
    );
    seconds.description = Some("Seconds to wait before trying again.".into());
    response
        .headers
        .insert("Retry-After".into(), RefOr::T(seconds));
    RefOr::T(response)
}

/// Adds an error response unless the operation names that status itself.
fn add(op: &mut Operation, status: StatusCode, response: RefOr<ApiResponse>) {
    op.responses
        .responses
        .entry(status.as_str().to_owned())
        .or_insert(response);
}

fn shared(route: RouteInfo, op: &mut Operation) {
    let bearer = || SecurityRequirement::new(BEARER, Vec::<String>::new());
    if let Some(RefOr::T(body)) = &mut op.request_body {
        // An empty body is refused like any other without the required fields.
        body.required = Some(utoipa::openapi::Required::True);
    }
    match route.access {
        Access::Open => {}
        Access::Public => {
            op.security = Some(vec![
                SecurityRequirement::default(),
                SecurityRequirement::new(INGEST_KEY, Vec::<String>::new()),
                SecurityRequirement::new(INGEST_KEY_QUERY, Vec::<String>::new()),
            ]);
            add(
                op,
                StatusCode::BAD_REQUEST,
                error(
                    "A field breaks its rule (the error names it), or the body is not a JSON object.",
                ),
            );
            add(
                op,
                StatusCode::UNAUTHORIZED,
                error("Signed ingest: the ingest key is missing, malformed or expired."),
            );
            add(
                op,
                StatusCode::FORBIDDEN,
                error(
                    "The page's `Origin` is not in `http.allowed_origins`, or (signed \
                     ingest) the key does not grant this webinar, campaign or client.",
                ),
            );
            add(
                op,
                StatusCode::REQUEST_TIMEOUT,
                error("The body did not arrive within `limits.body_timeout_ms`."),
            );
            add(
                op,
                StatusCode::PAYLOAD_TOO_LARGE,
                error("The event is over 16 KiB (as sent, or once stamped)."),
            );
            add(
                op,
                StatusCode::TOO_MANY_REQUESTS,
                with_retry_after(error(
                    "Over the rate limit of the client address (`http.rate_limit_per_sec`), \
                     or over the new webinars, campaigns or clients it may introduce per \
                     minute (`limits.new_entities_per_minute`).",
                )),
            );
            add(
                op,
                StatusCode::SERVICE_UNAVAILABLE,
                error(
                    "The event could not be made durable, or the service admits no new \
                     webinar, campaign or client (`limits.max_public_entities`).",
                ),
            );
        }
        Access::Admin | Access::Webinar | Access::Client => {
            let mut security = vec![bearer()];
            if route.path.starts_with("/ws/") {
                security.push(SecurityRequirement::new(TOKEN_QUERY, Vec::<String>::new()));
            }
            op.security = Some(security);
            add(
                op,
                StatusCode::UNAUTHORIZED,
                error("The token is missing, malformed, forged or expired."),
            );
            let forbidden = match route.access {
                Access::Admin => "The token is not an admin token.",
                Access::Webinar => {
                    "The token reads neither this webinar nor a client whose visits or \
                     conversions name it."
                }
                _ => "The token does not read this client.",
            };
            add(op, StatusCode::FORBIDDEN, error(forbidden));
        }
    }
    add(
        op,
        StatusCode::URI_TOO_LONG,
        error("The request target is over 8 KiB."),
    );
    add(
        op,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        error("Over 100 header fields or 16 KiB of headers."),
    );
}

/// A batch record: an event of the wire format with its `type`, each type
/// its event's schema with the tag added (flat, not composed: shallower for
/// generators).
fn event_record() -> RefOr<Schema> {
    let typed = |tag: &str, schema: RefOr<Schema>| {
        let RefOr::T(Schema::Object(mut object)) = schema else {
            unreachable!("event types derive object schemas");
        };
        let tag_schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([tag]));
        object
            .properties
            .shift_insert(0, "type".into(), tag_schema.into());
        object.required.insert(0, "type".into());
        object.title = Some(tag.to_owned());
        Schema::Object(object)
    };
    OneOfBuilder::new()
        .item(typed("presence", Presence::schema()))
        .item(typed("activity", event::Activity::schema()))
        .item(typed("visit", Visit::schema()))
        .item(typed("conversion", Conversion::schema()))
        .item(typed("pageview", Pageview::schema()))
        .description(Some(
            "One event (DESIGN §5), tagged by `type`; unknown fields are ignored; at most \
             16 KiB. Without `ts`, the time of arrival; a `ts` more than \
             `window.max_future_ms` ahead is clamped to arrival.",
        ))
        .into()
}

/// The array form of a batch. Its bound (10 000 records) is in the words,
/// not `maxItems`: schemathesis's coverage phase builds an array of
/// `maxItems` elements and trips, on CPython 3.11, over a recursion bug of
/// the interpreter's own (`SystemError: AST constructor recursion depth
/// mismatch`); the 413 answer names the bound.
pub fn event_batch() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("EventRecord"))
        .description(Some(format!(
            "At most {} records.",
            super::ingest::MAX_BATCH_RECORDS
        )))
        .into()
}

/// The browser endpoints' bodies: the event's schema without what the
/// endpoint sets itself. `type` comes from the URL; `ts` is ignored (browser
/// clocks are never trusted: the time of arrival counts); the URL's
/// identifier and the presence `action` are set from the URL (an identifier
/// given in the body too must equal the URL's, which a schema cannot say:
/// the description does).
fn browser_bodies() -> Vec<(&'static str, RefOr<Schema>)> {
    let body = |schema: RefOr<Schema>, set: &[&str], description: &str| {
        let RefOr::T(Schema::Object(mut object)) = schema else {
            unreachable!("event types derive object schemas");
        };
        for field in ["ts"].iter().chain(set) {
            object.properties.shift_remove(*field);
        }
        object.required.retain(|f| !set.contains(&f.as_str()));
        object.description = Some(description.to_owned());
        RefOr::T(Schema::Object(object))
    };
    vec![
        (
            "PresenceBeacon",
            body(
                Presence::schema(),
                &["webinar_id", "action"],
                "A presence beacon: the webinar and the action come from the URL (a \
                 `webinar_id` in the body must equal the URL's); `ts` is ignored.",
            ),
        ),
        (
            "BrowserVisit",
            body(
                Visit::schema(),
                &["campaign_id"],
                "A visit: the campaign comes from the URL (a `campaign_id` in the body \
                 must equal the URL's); `ts` is ignored.",
            ),
        ),
        (
            "BrowserConversion",
            body(
                Conversion::schema(),
                &["campaign_id"],
                "A conversion: the campaign comes from the URL (a `campaign_id` in the \
                 body must equal the URL's); `ts` is ignored.",
            ),
        ),
        (
            "BrowserPageview",
            body(Pageview::schema(), &[], "A page view; `ts` is ignored."),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn spec() -> serde_json::Value {
        serde_json::from_str(spec_json()).unwrap()
    }

    #[test]
    fn the_description_has_every_route_and_nothing_else() {
        let spec = spec();
        let described: BTreeSet<(String, String)> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| {
                        ["get", "post", "put", "delete", "patch", "head", "options"]
                            .contains(&k.as_str())
                    })
                    .map(move |m| (path.clone(), m.to_ascii_uppercase()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = route_table()
            .into_iter()
            .map(|r| (spec_path(r.path), r.method.to_owned()))
            .collect();
        let missing: Vec<_> = served.difference(&described).collect();
        let extra: Vec<_> = described.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes without a description: {missing:?}; descriptions without a route: {extra:?}"
        );
    }

    #[test]
    fn every_operation_names_its_errors_with_the_error_shape() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2') || s == "101"),
                    "{method} {path}: no success response"
                );
                for (status, response) in responses {
                    // Readiness answers 503 with its usual body while it recovers.
                    let readiness = path == "/readyz" && status == "503";
                    if (status.starts_with('4') || status.starts_with('5')) && !readiness {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
                let path_params = path.matches('{').count();
                let declared = op["parameters"]
                    .as_array()
                    .map_or(0, |p| p.iter().filter(|p| p["in"] == "path").count());
                assert_eq!(declared, path_params, "{method} {path}: path parameters");
            }
        }
    }

    #[test]
    fn routes_with_a_token_say_so_and_browser_endpoints_take_an_ingest_key() {
        let spec = spec();
        for route in route_table() {
            let op = &spec["paths"][spec_path(route.path)][route.method.to_ascii_lowercase()];
            let security = op["security"].as_array();
            match route.access {
                Access::Open => assert!(security.is_none(), "{}", route.path),
                Access::Public => {
                    let s = security.unwrap();
                    assert!(s.iter().any(|r| r == &serde_json::json!({})));
                    assert!(s.iter().any(|r| r.get(INGEST_KEY).is_some()));
                }
                _ => {
                    let s = security.unwrap();
                    assert!(s.iter().any(|r| r.get(BEARER).is_some()), "{}", route.path);
                    assert!(op["responses"]["401"].is_object(), "{}", route.path);
                    assert!(op["responses"]["403"].is_object(), "{}", route.path);
                }
            }
        }
        let schemes = &spec["components"]["securitySchemes"];
        assert_eq!(schemes[INGEST_KEY]["name"], "X-EventFlow-Key");
        assert_eq!(schemes[BEARER]["scheme"], "bearer");
    }

    #[test]
    fn every_reference_resolves() {
        let text = spec_json();
        let spec = spec();
        let prefix = "\"#/components/schemas/";
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(
                spec["components"]["schemas"][name].is_object(),
                "{name} is referenced but not defined"
            );
        }
        assert_eq!(spec["openapi"], "3.1.0");
    }

    #[test]
    fn browser_bodies_leave_out_what_the_url_sets() {
        let spec = spec();
        let beacon = &spec["components"]["schemas"]["PresenceBeacon"];
        assert_eq!(beacon["required"], serde_json::json!(["viewer_id"]));
        for set in ["ts", "action", "webinar_id"] {
            assert!(beacon["properties"][set].is_null(), "{set}");
        }
        let visit = &spec["components"]["schemas"]["BrowserVisit"];
        assert_eq!(
            visit["required"],
            serde_json::json!(["client_id", "session_id"])
        );
    }
}
