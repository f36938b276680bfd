//! The operator files in deploy/ fit the service: every metric the alert
//! rules and the Grafana dashboard name is one `/metrics` exports, the
//! dashboard is valid JSON, and — where `promtool` is installed — the rules
//! pass `promtool check rules`.

use std::collections::BTreeSet;

use crate::helpers::spawn_app;

/// The `eventflow_*` names in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("eventflow_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        out.insert(name);
    }
    out
}

#[tokio::test]
async fn alert_rules_and_the_dashboard_name_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/eventflow.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(
        parsed["panels"].as_array().is_some_and(|p| p.len() >= 8),
        "a dashboard with its panels"
    );

    let app = spawn_app().await;
    // Every family shows once something happened: a request, a record.
    app.post("/api/webinars/w/presence/ping", r#"{"viewer_id":"u"}"#)
        .await;
    app.wait_applied().await;
    let (_, metrics) = app.get("/metrics").await;
    let exported = metric_names(metrics.as_str().unwrap());
    let known = |name: &str| {
        exported.contains(name)
            || ["_bucket", "_count", "_sum"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| exported.contains(&format!("{base}_count")))
            })
    };
    for (file, text) in [("alerts.yml", &rules), ("eventflow.json", &dashboard)] {
        let named = metric_names(text);
        assert!(named.len() >= 5, "{file} names metrics");
        for name in named {
            assert!(
                known(&name),
                "{file} names {name}, which /metrics does not export"
            );
        }
    }
    app.stop().await;

    match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(root.join("deploy/prometheus/alerts.yml"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            eprintln!("promtool is not installed: the rules were checked against /metrics only")
        }
    }
}

/// docker-compose.yml, read as text (there is no Docker engine to run it
/// in the tests): every published port listens on `EVENTFLOW_BIND`
/// (127.0.0.1 unless set), every secret comes from .env, the service and
/// every store have a health check, and the service talks to all three
/// NATS nodes with streams kept three times.
#[test]
fn compose_binds_locally_takes_secrets_from_env_and_checks_health() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let lines: Vec<&str> = compose.lines().map(str::trim).collect();
    let published: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("- \"") && l.matches(':').count() >= 2 && !l.contains("//"))
        .collect();
    assert!(published.len() >= 6, "ports are published: {published:?}");
    for port in published {
        assert!(
            port.starts_with("- \"${EVENTFLOW_BIND:-127.0.0.1}:"),
            "{port} must listen on EVENTFLOW_BIND"
        );
    }
    // Secrets: any line naming one, and the value after a password flag,
    // is an .env reference.
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('#') {
            continue;
        }
        let names_one = l.contains("PASSWORD") || l.contains("SECRET");
        let after_flag = i > 0 && matches!(lines[i - 1], "- --pass" | "- --requirepass");
        if names_one || after_flag {
            assert!(l.contains("${"), "a secret written into compose: {l}");
        }
    }
    // nats-2 and nats-3 inherit nats-1's health check (`<<: *nats`).
    assert_eq!(
        compose.matches("healthcheck:").count(),
        4,
        "nats, postgres, redis, eventflow"
    );
    assert!(compose.contains("\"eventflow\", \"healthcheck\""));
    assert!(compose.contains("@nats-1:4222,") && compose.contains("@nats-3:4222"));
    assert!(compose.contains("EVENTFLOW__NATS__REPLICAS: \"3\""));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("HEALTHCHECK"),
        "the image checks itself"
    );
}
