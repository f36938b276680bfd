//! Authorization over every route the router serves, enumerated from its
//! own route table (`eventflow::http::route_table`), so a new route cannot be
//! left out: each protected route refuses a missing token, a forged one, one
//! signed with another secret, an expired one, another client's and another
//! webinar's, and accepts the right one; open and public routes need none.
//! The WebSocket is walked the same way through real upgrades.

use eventflow::auth::{Scope, Signer};
use eventflow::http::{Access, RouteInfo, route_table};
use serde_json::json;

use crate::helpers::{SECRET, TestApp, now_ms, spawn_app_with};

/// The route's path with its parameters filled in: webinar w-1, client c1
/// (which names w-1 on a visit), link l1 and campaign k1 of c1, and the
/// dashboard file common.js.
fn path_of(route: &RouteInfo) -> String {
    route
        .path
        .replace("{webinar_id}", "w-1")
        .replace("{client_id}", "c1")
        .replace("{link_id}", "l1")
        .replace("{campaign_id}", "k1")
        .replace("{*file}", "common.js")
}

/// A valid body for the route.
fn body_of(route: &RouteInfo) -> &'static str {
    match route.path {
        p if p.contains("/presence/") => r#"{"viewer_id":"v-auth"}"#,
        p if p.ends_with("/visit") => r#"{"client_id":"c1","session_id":"s-auth"}"#,
        p if p.ends_with("/conversion") => r#"{"client_id":"c1","entry_id":"e-auth"}"#,
        "/api/pageviews" => r#"{"path":"/auth"}"#,
        "/api/events" => {
            r#"{"type":"presence","webinar_id":"w-9","viewer_id":"v","action":"ping"}"#
        }
        _ => "",
    }
}

async fn call(app: &TestApp, route: &RouteInfo, token: Option<&str>) -> u16 {
    let url = format!("{}{}", app.base, path_of(route));
    let mut req = match route.method {
        "GET" => app.client.get(url),
        "POST" => app.client.post(url).body(body_of(route)),
        other => panic!("no requests for {other} routes"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

struct Tokens {
    admin: String,
    webinar: String,
    client: String,
    bad: Vec<(&'static str, String)>,
    other_tenant: Vec<(&'static str, String)>,
}

fn tokens() -> Tokens {
    let signer = Signer::new(SECRET.as_bytes());
    let exp = now_ms() + 600_000;
    Tokens {
        admin: signer.mint(Scope::Admin, exp),
        webinar: signer.mint(Scope::Webinar("w-1".into()), exp),
        client: signer.mint(Scope::Client("c1".into()), exp),
        bad: vec![
            ("forged", "eyJmb3JnZWQiOnRydWV9.c2lnbmF0dXJl".into()),
            (
                "another secret",
                Signer::new(b"another-secret-of-32-bytes-or-more!").mint(Scope::Admin, exp),
            ),
            ("expired", signer.mint(Scope::Admin, now_ms() - 1)),
        ],
        other_tenant: vec![
            (
                "another client",
                signer.mint(Scope::Client("c2".into()), exp),
            ),
            (
                "another webinar",
                signer.mint(Scope::Webinar("w-2".into()), exp),
            ),
            // Ingest keys send browser events and read nothing.
            (
                "w-1's ingest key",
                signer.mint(Scope::IngestWebinar("w-1".into()), exp),
            ),
            (
                "c1's ingest key",
                signer.mint(Scope::IngestClient("c1".into()), exp),
            ),
        ],
    }
}

async fn app_with_a_client() -> TestApp {
    let app = spawn_app_with(json!({})).await;
    let (status, v) = app
        .post_batch(
            r#"{"type":"visit","client_id":"c1","campaign_id":"k1","session_id":"s","link_id":"l1","webinar_id":"w-1"}"#,
            &app.token,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    app.wait_applied().await;
    app
}

#[tokio::test]
async fn every_route_refuses_every_wrong_token_and_accepts_the_right_one() {
    let app = app_with_a_client().await;
    let t = tokens();
    let table = route_table();
    assert!(table.len() >= 20, "the whole router: {table:?}");
    for route in table.iter().filter(|r| !r.path.starts_with("/ws/")) {
        let what = format!("{} {}", route.method, route.path);
        match route.access {
            Access::Open | Access::Public => {
                let status = call(&app, route, None).await;
                assert!(
                    status == 200 || status == 202,
                    "{what} needs no token: {status}"
                );
                continue;
            }
            Access::Admin | Access::Webinar | Access::Client => {}
        }
        assert_eq!(call(&app, route, None).await, 401, "{what} without a token");
        for (name, token) in &t.bad {
            assert_eq!(call(&app, route, Some(token)).await, 401, "{what}, {name}");
        }
        for (name, token) in &t.other_tenant {
            assert_eq!(call(&app, route, Some(token)).await, 403, "{what}, {name}");
        }
        let right: Vec<&String> = match route.access {
            Access::Admin => vec![&t.admin],
            Access::Webinar => vec![&t.admin, &t.webinar, &t.client],
            _ => vec![&t.admin, &t.client],
        };
        for token in right {
            let status = call(&app, route, Some(token)).await;
            assert!(status == 200 || status == 202, "{what} accepts: {status}");
        }
        // A webinar token never reads a client, nor a client token the
        // admin routes.
        let wrong_kind = match route.access {
            Access::Admin => Some(&t.client),
            Access::Client => Some(&t.webinar),
            _ => None,
        };
        if let Some(token) = wrong_kind {
            assert_eq!(call(&app, route, Some(token)).await, 403, "{what}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_websocket_refuses_every_wrong_token_and_accepts_the_right_one() {
    let app = app_with_a_client().await;
    let t = tokens();
    let ws = route_table()
        .into_iter()
        .find(|r| r.path.starts_with("/ws/"))
        .expect("the router serves a WebSocket");
    assert_eq!(ws.access, Access::Webinar);
    let connect = |token: Option<String>| {
        let mut url = format!("ws://{}{}", app.addr, path_of(&ws));
        if let Some(t) = token {
            url.push_str(&format!("?token={t}"));
        }
        tokio_tungstenite::connect_async(url)
    };
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status(connect(None).await), 401, "without a token");
    for (name, token) in &t.bad {
        assert_eq!(status(connect(Some(token.clone())).await), 401, "{name}");
    }
    for (name, token) in &t.other_tenant {
        assert_eq!(status(connect(Some(token.clone())).await), 403, "{name}");
    }
    for token in [&t.admin, &t.webinar, &t.client] {
        assert_eq!(status(connect(Some(token.clone())).await), 101);
    }
    app.stop().await;
}
