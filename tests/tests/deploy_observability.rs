//! The deploy kit's observability (issue 6): the Prometheus alert rules pass `promtool check
//! rules` and their unit tests, every alert has a firing and a quiet test, the Grafana dashboard
//! is well formed and its queries parse, and every metric the rules and the dashboard name is one
//! a real daemon exports on /metrics.
#![allow(clippy::unwrap_used)]

use crate::support::{
    create_queues, eventually, get, kiro_event, metric, promtool, send_body, temp_dir,
    topic_with_capture, Daemon, Setup,
};
use pipeline_responder_e2e::{Moto, SlackFake};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const ALERT_TESTS: &str = "deploy/prometheus/alerts.test.yml";
const DASHBOARD: &str = "deploy/grafana/pipeline-responder.json";
/// The dashboard needs at least this many panels (rows not counted).
const MIN_PANELS: usize = 15;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs promtool with `args` in the repository root; panics with its output unless it succeeds.
fn run_promtool(args: &[&str], what: &str) -> String {
    let out = std::process::Command::new(promtool())
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`promtool {}` failed: {what}\n{text}",
        args.join(" ")
    );
    text
}

/// Every `pipeline_responder_*` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    const PREFIX: &str = "pipeline_responder_";
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let starts_word = !rest[..at].chars().next_back().is_some_and(ident);
        let tail = &rest[at..];
        let end = tail.find(|c: char| !ident(c)).unwrap_or(tail.len());
        if starts_word {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// The metric families of a Prometheus text exposition (its `# TYPE` lines): name → type.
fn families(exposition: &str) -> std::collections::BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// Whether series name `name` belongs to an exported family (histograms: `_bucket`, `_sum`,
/// `_count` too).
fn exported(name: &str, families: &std::collections::BTreeMap<String, String>) -> bool {
    if families.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .and_then(|family| families.get(family))
            .is_some_and(|kind| kind == "histogram" || kind == "summary")
    })
}

/// The alert names of alerts.yml (`- alert: Name` lines).
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Every panel of the dashboard, rows' nested panels included.
fn all_panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().cloned().unwrap_or_default() {
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(nested.iter().cloned());
        }
        out.push(panel);
    }
    out
}

/// Every PromQL text of the dashboard: panel targets and query variables, with where it is.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in all_panels(dashboard) {
        for target in panel["targets"].as_array().cloned().unwrap_or_default() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    format!(
                        "panel {:?} target {}",
                        panel["title"].as_str().unwrap_or_default(),
                        target["refId"].as_str().unwrap_or_default()
                    ),
                    expr.to_string(),
                ));
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or(variable["query"].as_str())
                .or(variable["definition"].as_str())
                .unwrap_or_default();
            let name = variable["name"].as_str().unwrap_or_default();
            out.push((format!("variable ${name}"), query.to_string()));
        }
    }
    out
}

/// A dashboard query with Grafana's variables replaced, as PromQL that promtool can parse.
fn as_promql(expr: &str) -> String {
    let replaced = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$job", "pipeline-responder")
        .replace("$instance", ".*");
    assert!(
        !replaced.contains('$'),
        "dashboard query uses a variable this test does not know (add it to as_promql, or use \
         $job, $instance, $__rate_interval, $__interval, $__range): {expr}"
    );
    replaced
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let checked = run_promtool(
        &["check", "rules", ALERTS],
        "fix the rule file's syntax or PromQL",
    );
    assert!(checked.contains("SUCCESS"), "{checked}");
    // promtool resolves the test file's rule_files relative to the test file.
    run_promtool(
        &["test", "rules", ALERT_TESTS],
        "an alert does not fire (or stays quiet) as its unit test expects; fix the rule or \
         the expectation in alerts.test.yml (annotations are compared in full)",
    );
}

#[test]
fn every_alert_has_labels_annotations_and_a_firing_and_a_quiet_unit_test() {
    let rules = read(ALERTS);
    let tests = read(ALERT_TESTS);
    let names = alert_names(&rules);
    assert!(
        names.len() >= 8,
        "alerts.yml should hold the daemon's alerts (down, DLQ, notifications, events not \
         processed, escalations overdue, AWS throttling/errors, latency): {names:?}"
    );
    for required in [
        "PipelineResponderDown",
        "PipelineResponderEventsRejected",
        "PipelineResponderNotificationsFailing",
        "PipelineResponderEventsNotStored",
        "PipelineResponderSqsReceiveStalled",
        "PipelineResponderEscalationsOverdue",
        "PipelineResponderAwsThrottling",
        "PipelineResponderAwsErrors",
        "PipelineResponderFirstNotificationSlow",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "alert {required} is missing from {ALERTS} (renamed? update this test and the \
             dashboards/runbooks that link it)"
        );
    }
    // Each rule block (from its `- alert:` line to the next) has for, severity, summary and
    // description, and selects the documented scrape job.
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    for block in &blocks {
        let name = block.split_whitespace().next().unwrap_or_default();
        for field in [
            "expr:",
            "for:",
            "severity:",
            "summary:",
            "description:",
            "job=\"pipeline-responder\"",
        ] {
            assert!(
                block.contains(field),
                "alert {name} in {ALERTS} has no `{field}` (every alert needs a for:, a \
                 severity label, summary and description annotations, and selects \
                 job=\"pipeline-responder\")"
            );
        }
        assert!(
            block.contains("severity: critical") || block.contains("severity: warning"),
            "alert {name}: severity must be critical or warning"
        );
    }
    // Unit tests: `alertname: X` followed by a non-empty `exp_alerts:` block fires; the flow
    // form `alertname: X, exp_alerts: []` is quiet.
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in &names {
        let fires = lines
            .windows(2)
            .any(|w| w[0] == format!("alertname: {name}") && w[1] == "exp_alerts:");
        let quiet = lines
            .iter()
            .any(|l| l.contains(&format!("alertname: {name},")) && l.contains("exp_alerts: []"));
        assert!(
            fires,
            "{ALERT_TESTS} has no test where {name} fires: add an alert_rule_test with \
             exp_alerts listing its labels and annotations"
        );
        assert!(
            quiet,
            "{ALERT_TESTS} has no test where {name} stays quiet: add `{{eval_time: ..., \
             alertname: {name}, exp_alerts: []}}` (e.g. to the healthy-traffic test)"
        );
    }
}

#[test]
fn the_dashboard_is_well_formed_and_its_queries_parse() {
    let text = read(DASHBOARD);
    let dashboard: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"));
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "{DASHBOARD}: schemaVersion should be 36 or later (Grafana 9+), is {}",
        dashboard["schemaVersion"]
    );
    assert!(
        dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "{DASHBOARD}: set a fixed uid so links and provisioning stay stable"
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["name"] == "datasource"),
        "{DASHBOARD}: needs a `datasource` variable of type datasource (query prometheus), so \
         it imports into any Grafana"
    );

    let panels: Vec<Value> = all_panels(&dashboard)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .collect();
    assert!(
        panels.len() >= MIN_PANELS,
        "{DASHBOARD} has {} panels; it should show at least {MIN_PANELS} (incidents, \
         notifications, escalations, latency, events, SQS, AWS, deadlines, build info/up)",
        panels.len()
    );
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.trim().is_empty(), "a panel has no title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().unwrap_or(0)),
            "panel {title:?}: id missing or used twice"
        );
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(
            !targets.is_empty()
                && targets
                    .iter()
                    .all(|t| t["expr"].as_str().is_some_and(|e| !e.trim().is_empty())),
            "panel {title:?} needs at least one target, each with a PromQL `expr`"
        );
        for target in &targets {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "panel {title:?}: targets must use the `${{datasource}}` variable"
            );
        }
        let grid = &panel["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().unwrap_or(99),
            grid["w"].as_u64().unwrap_or(0),
        );
        assert!(
            w > 0 && x + w <= 24 && grid["h"].as_u64().unwrap_or(0) > 0,
            "panel {title:?}: gridPos {grid} must fit Grafana's 24 columns"
        );
    }
    let titles: Vec<String> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap_or_default().to_lowercase())
        .collect();
    for wanted in [
        "incidents opened",
        "open incidents",
        "notifications by outcome",
        "escalations",
        "first notification",
        "events received",
        "rejected",
        "sqs messages",
        "aws requests",
        "latency p99",
        "pending",
        "overdue",
        "build info",
        "up",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "{DASHBOARD}: no panel title contains {wanted:?}; titles: {titles:?}"
        );
    }

    // Every query parses: promtool checks them as recording rules.
    let queries = dashboard_queries(&dashboard);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, (_, expr)) in queries.iter().enumerate() {
        let expr = if expr.starts_with("label_values(") {
            // A Grafana variable query, not PromQL: check its selector.
            let inner = expr.trim_start_matches("label_values(");
            let selector = inner.rsplit_once(',').map_or(inner, |(s, _)| s);
            as_promql(selector)
        } else {
            as_promql(expr)
        };
        rules.push_str(&format!(
            "      - record: dashboard:query_{n}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = temp_dir("dashboard-promql");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dashboard-queries.yml");
    std::fs::write(&file, &rules).unwrap();
    let listing: Vec<String> = queries
        .iter()
        .enumerate()
        .map(|(n, (at, expr))| format!("dashboard:query_{n} = {at}: {expr}"))
        .collect();
    run_promtool(
        &["check", "rules", file.to_str().unwrap()],
        &format!(
            "a dashboard query is not valid PromQL; the queries:\n{}",
            listing.join("\n")
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_alerts_and_the_dashboard_is_exported_by_the_daemon() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-observability", 30).await;
    let _capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let setup = Setup {
        daemon_extra: "first_post_wait_secs = 0",
        ..Setup::default()
    };
    let daemon = Daemon::launch(
        &moto,
        &slack,
        &queues.url,
        temp_dir("observability"),
        &setup,
    )
    .await;
    let base = format!("http://{}", daemon.http_addr().await);

    // A pipeline failure (event, incident, notification, AWS calls), the same event again
    // (duplicate), an event of a type the daemon does not handle (ignored) and a body that is
    // not JSON (rejected): every family the rules and the dashboard read has a series.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let failed = kiro_event("codepipeline-pipeline-failed.json", "evt-obs-1", |e| {
        e["time"] = json!(now);
    });
    let other = kiro_event("codepipeline-pipeline-failed.json", "evt-obs-2", |e| {
        e["detail-type"] = json!("EC2 Instance State-change Notification");
    });
    send_body(&moto, &queues.url, &failed).await;
    send_body(&moto, &queues.url, &other).await;
    send_body(&moto, &queues.url, "this is not an event").await;
    let scrape = || async { get(&format!("{base}/metrics")).await.1 };
    assert!(
        eventually(Duration::from_secs(30), || async {
            let text = scrape().await;
            metric(&text, "pipeline_responder_incidents_opened_total", &[]) >= 1.0
                && metric(
                    &text,
                    "pipeline_responder_notifications_total",
                    &[("outcome", "sent")],
                ) >= 1.0
                && metric(&text, "pipeline_responder_events_ignored_total", &[]) >= 1.0
                && metric(&text, "pipeline_responder_events_rejected_total", &[]) >= 1.0
        })
        .await,
        "the daemon did not open, notify, ignore and reject as expected:\n{}\n{}",
        scrape().await,
        daemon.log()
    );
    send_body(&moto, &queues.url, &failed).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            metric(
                &scrape().await,
                "pipeline_responder_events_duplicate_total",
                &[],
            ) >= 1.0
        })
        .await,
        "the redelivered event was not counted as a duplicate: {}",
        daemon.log()
    );
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "{text}");
    let families = families(&text);
    assert!(
        families.contains_key("pipeline_responder_build_info"),
        "/metrics has no build_info family:\n{text}"
    );

    let check = |source: &str, names: BTreeSet<String>| {
        let unknown: Vec<&String> = names.iter().filter(|n| !exported(n, &families)).collect();
        assert!(
            unknown.is_empty(),
            "{source} names metrics the daemon does not export: {unknown:?}. Fix the name \
             (exported families: {:?}; histograms also have _bucket, _sum, _count), or add \
             the metric to the daemon and README.md's metrics table",
            families.keys().collect::<Vec<_>>()
        );
    };
    let rules = read(ALERTS);
    let in_rules = metric_names(&rules);
    assert!(
        in_rules.len() >= 8,
        "{ALERTS} names only {in_rules:?}; the alerts should read the daemon's metrics"
    );
    check(ALERTS, in_rules);
    // The unit tests' input series must be real series too, or they test nothing.
    check(ALERT_TESTS, metric_names(&read(ALERT_TESTS)));

    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut in_dashboard = BTreeSet::new();
    for (at, expr) in dashboard_queries(&dashboard) {
        let names = metric_names(&expr);
        assert!(
            !names.is_empty() || expr.contains("up{"),
            "{DASHBOARD} {at} reads no pipeline_responder_* metric (only `up` is allowed \
             besides them): {expr}"
        );
        in_dashboard.extend(names);
    }
    check(DASHBOARD, in_dashboard.clone());
    // The dashboard shows every family the daemon exports.
    let unshown: Vec<&String> = families
        .keys()
        .filter(|f| f.starts_with("pipeline_responder_"))
        .filter(|f| {
            !in_dashboard.iter().any(|n| {
                n == *f
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| n.strip_suffix(s) == Some(f.as_str()))
            })
        })
        .collect();
    assert!(
        unshown.is_empty(),
        "{DASHBOARD} has no panel for {unshown:?}: add one (or a target to a related panel)"
    );

    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
