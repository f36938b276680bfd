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
