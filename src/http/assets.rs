//! Static files the service serves to browsers, all built into the binary so
//! that what a page loads always matches the endpoints it calls:
//!
//! - the browser SDK (`sdk/eventflow.js`, README "Browser SDK") at
//!   `GET /sdk/eventflow.js`;
//! - the dashboard (`src/http/dashboard/`, README "Dashboard"): its pages at
//!   `GET /`, `/dashboard/webinars/{id}` and `/dashboard/clients/{id}`, and
//!   their scripts, styles and the vendored chart library at
//!   `GET /dashboard/assets/{file}`;
//! - the API reference page (`src/http/docs/`) at `GET /docs`, with its
//!   script and style, which render `GET /openapi.json`.
//!
//! Pages hold no data: their scripts read it from the authenticated APIs
//! with the token the page was opened with. Every page carries a
//! Content-Security-Policy that allows the service's own scripts, styles and
//! sockets and nothing else (no inline script or style, no framing), and
//! sends no referrer. Every file has an entity tag (a digest of its bytes),
//! so a browser revalidates with `If-None-Match` and gets `304`.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The browser SDK, as served at `GET /sdk/eventflow.js`.
pub const SDK: &str = include_str!("../../sdk/eventflow.js");

/// How long browsers and proxies may keep the SDK and the dashboard's
/// assets without asking again.
const ASSET_CACHE_CONTROL: &str = "public, max-age=300";

/// Pages are revalidated on every load (a cheap `304`), so a new release
/// is seen at once.
const PAGE_CACHE_CONTROL: &str = "no-cache";

/// The policy of every page: the service's own scripts, styles, images
/// (and `data:` ones, which the chart library may use) and sockets; no
/// inline script or style attribute, no plugins, no framing, no `<base>`,
/// no form submissions.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The dashboard's pages.
pub const INDEX_PAGE: &str = include_str!("dashboard/index.html");
pub const WEBINAR_PAGE: &str = include_str!("dashboard/webinar.html");
pub const CLIENT_PAGE: &str = include_str!("dashboard/client.html");

macro_rules! dashboard_assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("dashboard/", $path)) as &[u8])),*]
    };
}

/// The files under `/dashboard/assets/`, by their path there (and under
/// `src/http/dashboard/`).
pub const DASHBOARD_ASSETS: &[(&str, &[u8])] = dashboard_assets!(
    "common.js",
    "index.js",
    "webinar.js",
    "client.js",
    "dashboard.css",
    "vendor/uPlot.iife.min.js",
    "vendor/uPlot.min.css",
    "vendor/uPlot.LICENSE",
);

/// A file as served: its bytes, type and entity tag.
struct File {
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl File {
    fn new(path: &str, body: &'static [u8]) -> File {
        let digest = xxhash_rust::xxh3::xxh3_64(body);
        File {
            body,
            content_type: content_type(path),
            etag: HeaderValue::from_str(&format!("\"{digest:016x}\""))
                .expect("hex is a valid header value"),
        }
    }
}

/// The type of a file, by its name.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

static SDK_FILE: LazyLock<File> = LazyLock::new(|| File::new("eventflow.js", SDK.as_bytes()));

static ASSETS: LazyLock<HashMap<&'static str, File>> = LazyLock::new(|| {
    DASHBOARD_ASSETS
        .iter()
        .map(|(path, body)| (*path, File::new(path, body)))
        .collect()
});

static PAGES: LazyLock<[File; 3]> = LazyLock::new(|| {
    [
        File::new("index.html", INDEX_PAGE.as_bytes()),
        File::new("webinar.html", WEBINAR_PAGE.as_bytes()),
        File::new("client.html", CLIENT_PAGE.as_bytes()),
    ]
});

/// The reference page's files, served as pages: its own script and style
/// and the description from the service, nothing inline, no framing.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

static DOCS: LazyLock<[File; 3]> = LazyLock::new(|| {
    [
        File::new("index.html", include_bytes!("docs/index.html")),
        File::new("docs.js", include_bytes!("docs/docs.js")),
        File::new("docs.css", include_bytes!("docs/docs.css")),
    ]
});

/// `file` with `cache_control`, or `304` when the browser's copy (its
/// `If-None-Match`) is current.
fn serve(headers: &HeaderMap, file: &File, cache_control: &'static str) -> Response {
    let cache = [
        (header::ETAG, file.etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if matches_etag(headers, &file.etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        )],
        file.body,
    )
        .into_response()
}

/// A page, with the security headers every page carries and `policy`.
fn page(headers: &HeaderMap, file: &File, policy: &'static str) -> Response {
    let mut response = serve(headers, file, PAGE_CACHE_CONTROL);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /sdk/eventflow.js`
#[utoipa::path(
    get,
    path = "/sdk/eventflow.js",
    tag = "pages",
    summary = "The browser SDK",
    description = "`sdk/eventflow.js`, with an entity tag and a 5-minute cache.",
    params(("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy.")),
    responses(
        (status = 200, description = "The script.", content_type = "text/javascript", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn sdk(headers: HeaderMap) -> Response {
    serve(&headers, &SDK_FILE, ASSET_CACHE_CONTROL)
}

/// `GET /`: the list of webinars (and, for a client token, the client's
/// page), for the token in the page's fragment.
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    summary = "The dashboard: start page",
    description = "A page that holds no data: its script reads it with the token in the \
        page's fragment (`#token=...`).",
    params(("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy.")),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn index_page(headers: HeaderMap) -> Response {
    page(&headers, &PAGES[0], CONTENT_SECURITY_POLICY)
}

/// `GET /dashboard/webinars/{webinar_id}`: one webinar, live.
#[utoipa::path(
    get,
    path = "/dashboard/webinars/{webinar_id}",
    tag = "pages",
    summary = "The dashboard: a webinar's page",
    description = "A page that holds no data: its script reads it with the token in the \
        page's fragment (`#token=...`).",
    params(
        ("webinar_id" = String, Path, description = "The webinar (read by the page's script).", example = "w-17"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy."),
    ),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn webinar_page(headers: HeaderMap) -> Response {
    page(&headers, &PAGES[1], CONTENT_SECURITY_POLICY)
}

/// `GET /dashboard/clients/{client_id}`: one client's campaigns, links,
/// data quality and webinars.
#[utoipa::path(
    get,
    path = "/dashboard/clients/{client_id}",
    tag = "pages",
    summary = "The dashboard: a client's page",
    description = "A page that holds no data: its script reads it with the token in the \
        page's fragment (`#token=...`).",
    params(
        ("client_id" = String, Path, description = "The client (read by the page's script).", example = "c-1"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy."),
    ),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn client_page(headers: HeaderMap) -> Response {
    page(&headers, &PAGES[2], CONTENT_SECURITY_POLICY)
}

/// `GET /dashboard/assets/{*file}`: a script, style sheet or the chart
/// library of the dashboard.
#[utoipa::path(
    get,
    path = "/dashboard/assets/{file}",
    tag = "pages",
    summary = "The dashboard's scripts, styles and chart library",
    params(
        ("file" = String, Path, description = "The file's path under the dashboard's assets.", example = "common.js"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy."),
    ),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "text/plain"),
        )),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
        (status = 404, description = "No such file.", body = super::ErrorBody),
    ),
)]
pub async fn dashboard_asset(
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = ASSETS.get(file.as_str()).ok_or_else(|| {
        ApiError::NotFound(format!("file: {file:?} is not a file of the dashboard"))
    })?;
    Ok(serve(&headers, found, ASSET_CACHE_CONTROL))
}

/// `GET /docs`
#[utoipa::path(
    get,
    path = "/docs",
    tag = "pages",
    summary = "This reference, as a page",
    description = "Renders `/openapi.json` in the browser; works offline.",
    params(("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy.")),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn docs_page(headers: HeaderMap) -> Response {
    page(&headers, &DOCS[0], DOCS_CONTENT_SECURITY_POLICY)
}

/// `GET /docs/docs.js`
#[utoipa::path(
    get,
    path = "/docs/docs.js",
    tag = "pages",
    summary = "The reference page's script",
    params(("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy.")),
    responses(
        (status = 200, description = "The script.", content_type = "text/javascript", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn docs_script(headers: HeaderMap) -> Response {
    page(&headers, &DOCS[1], DOCS_CONTENT_SECURITY_POLICY)
}

/// `GET /docs/docs.css`
#[utoipa::path(
    get,
    path = "/docs/docs.css",
    tag = "pages",
    summary = "The reference page's style",
    params(("If-None-Match" = Option<String>, Header, description = "Entity tags of a copy.")),
    responses(
        (status = 200, description = "The style sheet.", content_type = "text/css", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn docs_style(headers: HeaderMap) -> Response {
    page(&headers, &DOCS[2], DOCS_CONTENT_SECURITY_POLICY)
}

/// Whether `If-None-Match` names `etag` (weakly, as RFC 9110 §13.1.2 compares
/// for GET) or is `*`.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_sdk_stays_under_3_kib_gzipped() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(SDK.as_bytes()).unwrap();
        let size = gz.finish().unwrap().len();
        assert!(size <= 3072, "sdk/eventflow.js is {size} bytes gzipped");
    }

    #[test]
    fn the_sdk_names_its_version_in_its_header_and_its_api() {
        let version = SDK
            .strip_prefix("/*! EventFlow browser SDK ")
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the header names the version");
        assert!(
            SDK.contains(&format!("version: \"{version}\"")),
            "{version}"
        );
    }

    #[test]
    fn if_none_match_matches_our_tag_in_a_list_weakly_or_as_a_star() {
        let etag = SDK_FILE.etag.clone();
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, v.parse().unwrap());
            matches_etag(&h, &etag)
        };
        let ours = etag.to_str().unwrap().to_owned();
        assert!(with(&ours));
        assert!(with(&format!("\"other\", W/{ours}")));
        assert!(with("*"));
        assert!(!with("\"other\""));
        assert!(!matches_etag(&HeaderMap::new(), &etag));
    }

    /// Every file of `src/http/dashboard/` (but READMEs), walked on disk.
    fn files_on_disk() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/dashboard");
        let mut out = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_none_or(|e| e != "md") {
                    let rel = path.strip_prefix(&root).unwrap();
                    out.push(rel.to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_file_of_the_dashboard_is_built_in() {
        let mut built_in: Vec<String> = DASHBOARD_ASSETS
            .iter()
            .map(|(p, _)| p.to_string())
            .chain(["index.html", "webinar.html", "client.html"].map(String::from))
            .collect();
        built_in.sort();
        assert_eq!(built_in, files_on_disk());
    }

    #[test]
    fn pages_load_only_their_own_files_and_nothing_inline() {
        for (name, html) in [
            ("index.html", INDEX_PAGE),
            ("webinar.html", WEBINAR_PAGE),
            ("client.html", CLIENT_PAGE),
        ] {
            let lower = html.to_ascii_lowercase();
            // The policy would refuse them: inline scripts, inline styles,
            // event handler attributes.
            assert!(!lower.contains("<style"), "{name}: a <style> element");
            assert!(!lower.contains(" style="), "{name}: a style attribute");
            assert!(
                !lower.split('<').any(|tag| {
                    let tag = tag.split('>').next().unwrap_or("");
                    tag.split_whitespace().any(|attr| {
                        attr.strip_prefix("on")
                            .and_then(|rest| rest.split_once('='))
                            .is_some_and(|(event, _)| {
                                !event.is_empty() && event.bytes().all(|b| b.is_ascii_alphabetic())
                            })
                    })
                }),
                "{name}: an event handler attribute"
            );
            for script in lower.split("<script").skip(1) {
                let open = script.split('>').next().unwrap_or("");
                assert!(open.contains(" src=\"/dashboard/assets/"), "{name}: {open}");
                assert!(
                    script.split_once('>').unwrap().1.starts_with("</script>"),
                    "{name}: an inline script"
                );
            }
            for link in lower.split("<link").skip(1) {
                let open = link.split('>').next().unwrap_or("");
                if open.contains("stylesheet") {
                    assert!(
                        open.contains(" href=\"/dashboard/assets/"),
                        "{name}: {open}"
                    );
                }
            }
            // Every asset it names is one the service serves.
            for part in html.split("/dashboard/assets/").skip(1) {
                let file = part.split('"').next().unwrap();
                assert!(ASSETS.contains_key(file), "{name} loads {file}, not served");
            }
        }
    }

    #[test]
    fn the_chart_library_is_the_pinned_upstream_release() {
        let js = ASSETS["vendor/uPlot.iife.min.js"].body;
        assert!(js.starts_with(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */"));
        let readme = include_str!("dashboard/vendor/README.md");
        assert!(readme.starts_with("# Vendored: uPlot 1.6.32"));
    }
}
