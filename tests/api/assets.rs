//! Static files for browsers: the SDK at `/sdk/eventflow.js`, and the
//! dashboard's pages and files.

use crate::helpers::{header, spawn_app};

#[tokio::test]
async fn the_sdk_is_served_as_javascript_cacheable_and_revalidated_by_its_etag() {
    let app = spawn_app().await;
    let url = format!("{}/sdk/eventflow.js", app.base);
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        header(&r, "cache-control").as_deref(),
        Some("public, max-age=300")
    );
    let etag = header(&r, "etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let body = r.text().await.unwrap();
    assert_eq!(body, eventflow::http::assets::SDK);
    assert!(body.contains("w.EventFlow = api"), "the SDK itself");

    // A browser holding this copy is told it is current, without a body.
    let again = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), Some(etag));
    assert!(again.bytes().await.unwrap().is_empty());
    // Another tag gets the script.
    let stale = app
        .client
        .get(&url)
        .header("if-none-match", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn dashboard_pages_are_served_with_a_strict_policy_and_no_referrer() {
    let app = spawn_app().await;
    for (path, marker) in [
        ("/", "/dashboard/assets/index.js"),
        ("/dashboard/webinars/w-17", "/dashboard/assets/webinar.js"),
        ("/dashboard/clients/c-1", "/dashboard/assets/client.js"),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(
            header(&r, "content-security-policy").as_deref(),
            Some(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; \
                 form-action 'none'"
            ),
            "{path}"
        );
        assert_eq!(
            header(&r, "referrer-policy").as_deref(),
            Some("no-referrer")
        );
        assert_eq!(
            header(&r, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(header(&r, "x-frame-options").as_deref(), Some("DENY"));
        let body = r.text().await.unwrap();
        assert!(body.contains(marker), "{path} loads {marker}");
        assert!(!body.contains("<script>"), "{path}: no inline script");
    }
    app.stop().await;
}

#[tokio::test]
async fn dashboard_assets_are_typed_cacheable_and_revalidated() {
    let app = spawn_app().await;
    for (file, content_type) in [
        ("common.js", "text/javascript; charset=utf-8"),
        ("webinar.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
        ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
    ] {
        let url = format!("{}/dashboard/assets/{file}", app.base);
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some(content_type),
            "{file}"
        );
        assert_eq!(
            header(&r, "cache-control").as_deref(),
            Some("public, max-age=300")
        );
        assert_eq!(
            header(&r, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        let etag = header(&r, "etag").expect("an ETag");
        let (_, embedded) = eventflow::http::assets::DASHBOARD_ASSETS
            .iter()
            .find(|(path, _)| *path == file)
            .unwrap();
        assert_eq!(&r.bytes().await.unwrap()[..], *embedded, "{file}");
        let again = app
            .client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_dashboard_file_is_a_json_404() {
    let app = spawn_app().await;
    for path in [
        "/dashboard/assets/nope.js",
        "/dashboard/assets/vendor",
        "/dashboard/assets/%2e%2e%2fCargo.toml",
        "/dashboard/assets/../../Cargo.toml",
        "/dashboard/assets/index.html",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some("application/json"),
            "{path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    app.stop().await;
}
