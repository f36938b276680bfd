//! The API description at `/openapi.json` and its reference page at
//! `/docs`: served without a token, the page with the security headers every
//! page has and nothing loaded from elsewhere.

use eventflow::http::route_table;
use serde_json::Value;

use crate::helpers::{header, spawn_app};

#[tokio::test]
async fn the_description_is_served_without_a_token_and_names_every_route() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").unwrap_or_default(),
        "application/json"
    );
    let spec: Value = r.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for route in route_table() {
        let path = route.path.replace("{*", "{");
        let method = route.method.to_ascii_lowercase();
        assert!(
            spec["paths"][&path][&method].is_object(),
            "{method} {path} is described"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_reference_page_and_its_files_carry_the_page_security_headers() {
    let app = spawn_app().await;
    for (path, content_type) in [
        ("/docs", "text/html; charset=utf-8"),
        ("/docs/docs.js", "text/javascript; charset=utf-8"),
        ("/docs/docs.css", "text/css; charset=utf-8"),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            header(&r, "content-type").unwrap_or_default(),
            content_type,
            "{path}"
        );
        let csp = header(&r, "content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(
            header(&r, "x-content-type-options").unwrap_or_default(),
            "nosniff",
            "{path}"
        );
        assert_eq!(
            header(&r, "referrer-policy").unwrap_or_default(),
            "no-referrer",
            "{path}"
        );
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
            "{path} loads nothing from elsewhere"
        );
    }
    let page = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<script src="/docs/docs.js" defer></script>"#));
    assert!(!page.contains("<script>"), "no inline script");
    app.stop().await;
}
