//! Static files the service serves to browsers: the browser SDK
//! (`sdk/eventflow.js`, README "Browser SDK"), built into the binary so that
//! the script a page loads always matches the endpoints it calls.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The browser SDK, as served at `GET /sdk/eventflow.js`.
pub const SDK: &str = include_str!("../../sdk/eventflow.js");

/// How long browsers and proxies may keep the SDK without asking again.
const SDK_CACHE_CONTROL: &str = "public, max-age=300";

/// The SDK's entity tag: a digest of its bytes, so it changes with them.
static SDK_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = xxhash_rust::xxh3::xxh3_64(SDK.as_bytes());
    HeaderValue::from_str(&format!("\"{digest:016x}\"")).expect("hex is a valid header value")
});

/// `GET /sdk/eventflow.js`: the SDK, or `304` when the browser's copy (its
/// `If-None-Match`) is current.
#[utoipa::path(
    get,
    path = "/sdk/eventflow.js",
    tag = "pages",
    summary = "The browser SDK",
    description = "`sdk/eventflow.js`, with an entity tag and a 5-minute cache.",
    params(("If-None-Match" = Option<String>, Header, description = "An entity tag of a copy.")),
    responses(
        (status = 200, description = "The script.", content_type = "text/javascript", body = String),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
    ),
)]
pub async fn sdk(headers: HeaderMap) -> Response {
    let etag = SDK_ETAG.clone();
    let cache = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(SDK_CACHE_CONTROL),
        ),
    ];
    if matches_etag(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        SDK,
    )
        .into_response()
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
        let etag = SDK_ETAG.clone();
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
}
