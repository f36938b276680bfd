//! Static files for browsers: the SDK at `/sdk/eventflow.js`.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_sdk_is_served_as_javascript_cacheable_and_revalidated_by_its_etag() {
    let app = spawn_app().await;
    let url = format!("{}/sdk/eventflow.js", app.base);
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
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
