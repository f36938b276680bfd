//! `auth.secret`: a guessable one stops `eventflow serve` and
//! `eventflow token` with an error that names the key and the remedy; a
//! second process on a data directory in use stops naming the first.

use std::process::Stdio;
use std::time::Duration;

async fn run(args: &[&str], secret: &str, dir: &std::path::Path) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventflow"))
        .args(args)
        .env("EVENTFLOW__AUTH__SECRET", secret)
        .env("EVENTFLOW__DATA__DIR", dir)
        .env("EVENTFLOW__HTTP__ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .unwrap_or_else(|_| panic!("`eventflow {}` ends by itself", args.join(" ")))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_guessable_secret_stops_serve_and_token() {
    let dir = tempfile::tempdir().unwrap();
    for secret in ["change-me", "", "short-but-not-a-placeholder"] {
        for args in [&["serve"][..], &["token", "--admin"][..]] {
            let (ok, stderr) = run(args, secret, dir.path()).await;
            assert!(!ok, "`eventflow {}` with {secret:?} fails", args.join(" "));
            assert!(
                stderr.contains("auth.secret") && stderr.contains("openssl rand -hex 32"),
                "{secret:?}: {stderr}"
            );
        }
    }
    let (ok, stderr) = run(&["token", "--admin"], crate::helpers::SECRET, dir.path()).await;
    assert!(ok, "a real secret mints tokens: {stderr}");
}

#[tokio::test]
async fn a_second_service_on_one_data_directory_stops_naming_the_first() {
    let app = crate::helpers::spawn_app().await;
    let (ok, stderr) = run(&["serve"], crate::helpers::SECRET, app.dir.path()).await;
    assert!(
        !ok,
        "a second service on the same data directory must not run"
    );
    assert!(
        stderr.contains(&format!(
            "in use by another eventflow process (pid {})",
            std::process::id()
        )),
        "{stderr}"
    );
    // The first one is unharmed.
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    let dir = app.stop_keeping_dir().await;
    // Once it stopped, the directory is free again.
    let (ok, stderr) = run(
        &["restore", "/dev/null"],
        crate::helpers::SECRET,
        dir.path(),
    )
    .await;
    assert!(ok, "{stderr}");
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_live_service_and_1_without_one() {
    let app = crate::helpers::spawn_app().await;
    let check = |addr: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_eventflow"))
            .arg("healthcheck")
            .env("EVENTFLOW__HTTP__ADDR", addr)
            .output()
            .await
            .unwrap()
    };
    let up = check(format!("localhost:{}", app.addr.port())).await;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let port = app.addr.port();
    app.stop().await;
    let down = check(format!("0.0.0.0:{port}")).await;
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains(&format!("127.0.0.1:{port}")),
        "a wildcard address means this machine"
    );
}
