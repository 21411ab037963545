//! Operability (issue 5): /metrics after a scripted scenario, readiness when the emulator goes
//! away and comes back, the post-incident report, `status`, `summary` and the weekly digest.
#![allow(clippy::unwrap_used)]

use crate::support::{
    create_deployments_table, create_queues, eventually, fake_endpoints, get, kiro_event, metric,
    promtool, put_deployment, seed_failed_build, send_body, series, temp_dir, topic_with_capture,
    Daemon, Setup,
};
use pipeline_responder_e2e::{
    AlarmModel, CloudWatchFake, CodePipelineFake, ExecutionModel, Moto, SlackFake,
};
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "metrics-api-token-7f3a-0123456789abcdef";
const SIGNING_SECRET: &str = "slack-signing-secret-9c2e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_scripted_scenario_are_promtool_clean_and_count_what_happened() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-metrics", 30).await;
    let _capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    seed_failed_build(&codepipeline, &moto).await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [
        cp,
        cw,
        ("TEST_API_TOKEN", TOKEN.to_string()),
        ("TEST_SLACK_SIGNING", SIGNING_SECRET.to_string()),
    ];
    let environments = r#"
[[environments]]
name = "production"
[policies.pipeline_execution_failure]
escalation = [
  { level = "L1", after_secs = 0 },
  { level = "L2", after_secs = 2 },
  { level = "L3", after_secs = 600 },
]
"#;
    let setup = Setup {
        env: &env,
        environments,
        slack_extra: "signing_secret = \"${TEST_SLACK_SIGNING}\"",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("metrics"), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);

    // Before anything happened: every family is there, nothing counted yet.
    let (status, before) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &before,
            "pipeline_responder_build_info",
            &[("store", "embedded")]
        ),
        1.0
    );
    assert_eq!(
        metric(&before, "pipeline_responder_incidents_open", &[]),
        0.0
    );

    // The scenario: an action failure and its pipeline failure (one incident), the pipeline
    // failure delivered again (a duplicate), one message that is not JSON (rejected).
    // Events as EventBridge delivers them: stamped now (the latency metric measures from it).
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let action_failed = kiro_event("codepipeline-action-failed.json", "evt-m-1", |e| {
        e["time"] = json!(now);
        e["detail"]["stage"] = json!("Build");
        e["detail"]["action"] = json!("BuildAndTest");
    });
    let pipeline_failed = kiro_event("codepipeline-pipeline-failed.json", "evt-m-2", |e| {
        e["time"] = json!(now);
    });
    send_body(&moto, &queues.url, &action_failed).await;
    send_body(&moto, &queues.url, &pipeline_failed).await;
    send_body(&moto, &queues.url, "this is not an event").await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            slack
                .accepted()
                .iter()
                .any(|p| p.text().is_some_and(|t| t.contains("Escalated")))
        })
        .await,
        "no L2 escalation: {}",
        daemon.log()
    );
    send_body(&moto, &queues.url, &pipeline_failed).await;
    let scraped = || async { get(&format!("{base}/metrics")).await.1 };
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric(
                &scraped().await,
                "pipeline_responder_events_duplicate_total",
                &[("source", "sqs")],
            ) >= 1.0
        })
        .await,
        "{}",
        daemon.log()
    );
    // Let the outbox settle (the SNS copy of the escalation), then read one consistent scrape.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = scraped().await;

    // promtool's own lint of the exposition format and naming conventions.
    let dir = temp_dir("metrics-promtool");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("metrics.txt"), &text).unwrap();
    let check = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(dir.join("metrics.txt")).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let m = |name: &str, labels: &[(&str, &str)]| metric(&text, name, labels);
    assert_eq!(
        m(
            "pipeline_responder_events_received_total",
            &[("source", "sqs"), ("kind", "action_execution")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        m(
            "pipeline_responder_events_received_total",
            &[("source", "sqs"), ("kind", "pipeline_execution")]
        ),
        1.0
    );
    assert_eq!(
        m(
            "pipeline_responder_events_duplicate_total",
            &[("source", "sqs")]
        ),
        1.0
    );
    // moto redelivers the bad message until the redrive policy moves it: at least once.
    assert!(
        m(
            "pipeline_responder_events_rejected_total",
            &[("source", "sqs"), ("reason", "not_json")]
        ) >= 1.0
    );
    assert_eq!(
        m(
            "pipeline_responder_events_rejected_total",
            &[("reason", "not_json")]
        ),
        m(
            "pipeline_responder_sqs_messages_total",
            &[("outcome", "rejected")]
        )
    );
    assert_eq!(
        m(
            "pipeline_responder_incidents_opened_total",
            &[
                ("type", "pipeline_execution_failure"),
                ("severity", "high"),
                ("environment", "production")
            ]
        ),
        1.0
    );
    assert_eq!(m("pipeline_responder_incidents_opened_total", &[]), 1.0);
    assert_eq!(
        m(
            "pipeline_responder_incidents_open",
            &[("environment", "production"), ("status", "open")]
        ),
        1.0
    );
    assert_eq!(
        m(
            "pipeline_responder_escalations_total",
            &[("level", "L2"), ("kind", "escalation")]
        ),
        1.0
    );
    assert_eq!(m("pipeline_responder_escalations_total", &[]), 1.0);
    // The L3 timer is still waiting; none is late (the engine fired L2 on time).
    assert!(m("pipeline_responder_pending_deadlines", &[]) >= 1.0);
    assert_eq!(m("pipeline_responder_overdue_deadlines", &[]), 0.0);
    assert_eq!(
        m("pipeline_responder_oldest_overdue_deadline_seconds", &[]),
        0.0
    );
    let slack_posts = slack.accepted().len() as f64;
    assert_eq!(
        m(
            "pipeline_responder_notifications_total",
            &[("channel", "slack"), ("outcome", "sent")]
        ),
        slack_posts,
        "{text}"
    );
    assert!(slack_posts >= 2.0, "first post and L2");
    assert!(
        m(
            "pipeline_responder_notifications_total",
            &[("channel", "sns"), ("outcome", "sent")]
        ) >= 1.0
    );
    assert_eq!(
        m(
            "pipeline_responder_notifications_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
    // One first notification; its latency is an event age in seconds, not zero or negative.
    assert_eq!(
        m(
            "pipeline_responder_event_to_first_notification_seconds_count",
            &[]
        ),
        1.0
    );
    let latency = m(
        "pipeline_responder_event_to_first_notification_seconds_sum",
        &[],
    );
    assert!(latency > 0.0 && latency < 60.0, "latency {latency}");
    // Messages: 2 stored + 1 duplicate deleted; the rejected one left for the DLQ.
    assert_eq!(
        m(
            "pipeline_responder_sqs_messages_total",
            &[("outcome", "stored")]
        ),
        2.0
    );
    assert_eq!(
        m(
            "pipeline_responder_sqs_messages_total",
            &[("outcome", "deleted")]
        ),
        3.0
    );
    // AWS calls, through the real SDK clients: SQS to moto, diagnostics to the fakes.
    for (service, operation) in [
        ("sqs", "ReceiveMessage"),
        ("sqs", "DeleteMessageBatch"),
        ("sns", "Publish"),
        ("codepipeline", "GetPipelineState"),
        ("logs", "FilterLogEvents"),
    ] {
        assert!(
            m(
                "pipeline_responder_aws_requests_total",
                &[
                    ("service", service),
                    ("operation", operation),
                    ("outcome", "success")
                ]
            ) >= 1.0,
            "{service} {operation}: {text}"
        );
        assert!(
            m(
                "pipeline_responder_aws_request_duration_seconds_count",
                &[("service", service), ("operation", operation)]
            ) >= 1.0
        );
    }
    // No label carries an id, a key, an ARN or a URL (`source="http"` names the listener).
    for (name, labels, _) in series(&text) {
        for value in labels.values() {
            for forbidden in ["arn:", "://", "evt-m-", "12345678-1234", "/", "#"] {
                assert!(
                    !value.contains(forbidden),
                    "{name} has label value {value:?}"
                );
            }
        }
    }

    // Acknowledged: the gauge moves from open to acknowledged (the L3 timer stays stored and is
    // skipped when due).
    let key =
        "pipeline_execution_failure/kiro-pipeline-production/12345678-1234-5678-abcd-12345678abcd";
    let acked = reqwest::Client::new()
        .post(format!("{base}/api/v1/incidents/{}/ack", urlencode(key)))
        .bearer_auth(TOKEN)
        .body(r#"{"by":"alice"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200, "{}", acked.text().await.unwrap());
    let text = scraped().await;
    assert_eq!(
        metric(
            &text,
            "pipeline_responder_incidents_open",
            &[("environment", "production"), ("status", "acknowledged")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "pipeline_responder_incidents_open",
            &[("environment", "production"), ("status", "open")]
        ),
        0.0
    );

    // The API's answers about the incident, and every Slack post of the scenario.
    let shown = api(
        &base,
        "GET",
        &format!("/api/v1/incidents/{}", urlencode(key)),
    )
    .await;
    let report = reqwest::Client::new()
        .get(format!("{base}/api/v1/incidents/{}/report", urlencode(key)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let posts: Vec<String> = slack
        .accepted()
        .iter()
        .map(|p| format!("{:?}", p))
        .collect();
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("\"incident_key\""),
        "incident lines carry the key"
    );
    for secret in [
        TOKEN.to_string(),
        SIGNING_SECRET.to_string(),
        slack.webhook_url(),
    ] {
        assert!(!log.contains(&secret), "a secret reached the log");
        assert!(!text.contains(&secret), "a secret reached /metrics");
        assert!(
            !shown.to_string().contains(&secret),
            "a secret reached the API"
        );
        assert!(!report.contains(&secret), "a secret reached the report");
        assert!(
            !posts.iter().any(|p| p.contains(&secret)),
            "a secret reached Slack"
        );
    }
    // Every log line that is about an incident names it.
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let message = entry["message"].as_str().unwrap_or_default();
        if message.starts_with("Incident")
            || message.starts_with("Notification")
            || message == "Escalated"
        {
            assert!(entry["incident_key"].is_string(), "no incident_key: {line}");
        }
    }
}

fn urlencode(s: &str) -> String {
    s.replace('/', "%2F")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_with_the_reason_while_dynamodb_and_sqs_are_down_and_200_again_after() {
    let mut moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-ready", 30).await;
    let store = "kind = \"dynamodb\"\ntable = \"responder-ready\"";
    let setup = Setup {
        store,
        ..Setup::default()
    };
    let dir = temp_dir("ready");
    create_table_on(&moto, &slack, &queues.url, &dir, &setup).await;
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    let ready = || async { get(&format!("{base}/readyz")).await };
    assert!(
        eventually(Duration::from_secs(10), || async { ready().await.0 == 200 }).await,
        "{:?} {}",
        ready().await,
        daemon.log()
    );

    moto.stop().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (status, body) = ready().await;
            status == 503 && body.contains("DynamoDB") && body.contains("sqs: receive failing")
        })
        .await,
        "{:?} {}",
        ready().await,
        daemon.log()
    );
    let (_, body) = ready().await;
    let reason: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reason["status"], "not ready");
    // Liveness stays up: ECS must not kill a task because AWS is away.
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);

    moto.restart().await;
    let again = create_queues(&moto, "events-ready", 30).await;
    assert_eq!(again.url, queues.url);
    create_table_on(&moto, &slack, &queues.url, &dir, &setup).await;
    assert!(
        eventually(Duration::from_secs(45), || async { ready().await.0 == 200 }).await,
        "{:?} {}",
        ready().await,
        daemon.log()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

async fn create_table_on(
    moto: &Moto,
    slack: &SlackFake,
    queue_url: &str,
    dir: &std::path::Path,
    setup: &Setup<'_>,
) {
    let out = Daemon::one_off(moto, slack, queue_url, dir, setup, &["create-table"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The production pipeline's last week as the emulators hold it: executions in CodePipeline,
/// alarms in CloudWatch, deployment records in the deployments table.
async fn seed_week(codepipeline: &CodePipelineFake, cloudwatch: &CloudWatchFake, moto: &Moto) {
    let now = chrono::Utc::now();
    let ago = |hours: i64| now - chrono::Duration::hours(hours);
    seed_failed_build(codepipeline, moto).await;
    codepipeline.update_pipeline("kiro-pipeline-production", |p| {
        for (i, hours) in [20, 44, 70, 100, 150].iter().enumerate() {
            p.executions.push(ExecutionModel::new(
                &format!("ok-{i}"),
                "Succeeded",
                ago(*hours),
            ));
        }
        // Outside the 7-day window: not counted.
        p.executions
            .push(ExecutionModel::new("old-failed", "Failed", ago(24 * 10)));
        // Running for 3 hours: counted as in progress.
        p.executions
            .push(ExecutionModel::new("slow-1", "InProgress", ago(3)));
        p.executions
            .push(ExecutionModel::new("stopped-1", "Stopped", ago(30)));
    });
    let alarm = |name: &str, state: &str| {
        AlarmModel::new(name, "KiroPipeline", "PipelineFailures", ago(1))
            .in_state(state, &format!("Threshold Crossed ({state})"))
    };
    cloudwatch.put_alarm(alarm("kiro-pipeline-production-pipeline-failures", "ALARM"));
    cloudwatch.put_alarm(alarm("kiro-pipeline-production-error-rate", "OK"));
    cloudwatch.put_alarm(alarm("kiro-pipeline-staging-pipeline-failures", "ALARM"));
    create_deployments_table(moto).await;
    put_deployment(moto, ago(150), "v1.4.0", "SUCCEEDED", "feat: a").await;
    put_deployment(moto, ago(70), "v1.4.1", "ROLLED_BACK", "fix: b").await;
    put_deployment(moto, ago(20), "v1.4.2", "SUCCEEDED", "fix: c").await;
    put_deployment(moto, ago(24 * 9), "v1.3.9", "ROLLED_BACK", "old").await;
}

async fn api(base: &str, method: &str, path: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let request = match method {
        "GET" => http.get(format!("{base}{path}")),
        _ => http.post(format!("{base}{path}")).body(r#"{"by":"alice"}"#),
    };
    let response = request.bearer_auth(TOKEN).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{method} {path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_summary_and_report_give_the_seeded_figures() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-status", 30).await;
    let _capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    seed_week(&codepipeline, &cloudwatch, &moto).await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [cp, cw, ("TEST_API_TOKEN", TOKEN.to_string())];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        ..Setup::default()
    };
    let dir = temp_dir("status");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);

    // Two failures: the first acknowledged (stays open), the second resolved by hand.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (id, execution) in [
        ("evt-s-1", "12345678-1234-5678-abcd-12345678abcd"),
        ("evt-s-2", "exec-two"),
    ] {
        let event = kiro_event("codepipeline-pipeline-failed.json", id, |e| {
            e["time"] = json!(now);
            e["detail"]["execution-id"] = json!(execution);
        });
        send_body(&moto, &queues.url, &event).await;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            api(&base, "GET", "/api/v1/incidents?status=all").await["incidents"]
                .as_array()
                .map_or(0, Vec::len)
                == 2
        })
        .await,
        "{}",
        daemon.log()
    );
    // The list pages: newest first, a page at a time, the cursor leading to the rest.
    let page = api(&base, "GET", "/api/v1/incidents?status=all&limit=1").await;
    assert_eq!(page["incidents"].as_array().unwrap().len(), 1, "{page}");
    let next = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = api(
        &base,
        "GET",
        &format!("/api/v1/incidents?status=all&limit=1&cursor={next}"),
    )
    .await;
    assert_eq!(rest["incidents"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest["next_cursor"].is_null(), "{rest}");
    assert_ne!(page["incidents"][0]["key"], rest["incidents"][0]["key"]);
    assert!(
        page["incidents"][0]["opened_at"].as_str() >= rest["incidents"][0]["opened_at"].as_str()
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("cursor=zz", "cursor"),
    ] {
        let refused = reqwest::Client::new()
            .get(format!("{base}/api/v1/incidents?{query}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{query}");
        let answer = refused.text().await.unwrap();
        assert!(answer.contains(field), "{query}: {answer}");
    }
    let key = |execution: &str| {
        format!("pipeline_execution_failure/kiro-pipeline-production/{execution}")
    };
    let (first, second) = (key("12345678-1234-5678-abcd-12345678abcd"), key("exec-two"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    api(
        &base,
        "POST",
        &format!("/api/v1/incidents/{}/ack", urlencode(&first)),
    )
    .await;
    api(
        &base,
        "POST",
        &format!("/api/v1/incidents/{}/resolve", urlencode(&second)),
    )
    .await;
    let incidents = api(&base, "GET", "/api/v1/incidents?status=all").await["incidents"]
        .as_array()
        .unwrap()
        .clone();
    let at = |i: &serde_json::Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(i[field].as_str().unwrap()).unwrap()
    };
    let find = |k: &str| incidents.iter().find(|i| i["key"] == k).unwrap().clone();
    let mtta = (at(&find(&first), "acknowledged_at") - at(&find(&first), "opened_at"))
        .num_milliseconds() as f64
        / 1000.0;
    let mttr = (at(&find(&second), "resolved_at") - at(&find(&second), "opened_at"))
        .num_milliseconds() as f64
        / 1000.0;

    // status: the runbook's check-pipeline-health.
    let run = |args: Vec<String>| {
        let (moto, slack, queues, dir, setup) = (&moto, &slack, &queues, &dir, &setup);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Daemon::one_off(moto, slack, &queues.url, dir, setup, &args).await
        }
    };
    let args = |list: &[&str]| -> Vec<String> {
        list.iter()
            .map(|s| s.to_string())
            .chain(["--api".to_string(), base.clone()])
            .collect()
    };
    let out = run(args(&["status", "--env", "production", "--json"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let production = &status["environments"][0];
    assert_eq!(production["pipeline"], "kiro-pipeline-production");
    assert_eq!(
        production["pipeline_state"]["stages"],
        json!([{"stage": "Source", "status": "Succeeded"}, {"stage": "Build", "status": "Failed"}])
    );
    let alarms: Vec<&str> = production["alarms_in_alarm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(alarms, ["kiro-pipeline-production-pipeline-failures"]);
    let versions: Vec<&str> = production["recent_deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        ["v1.4.2", "v1.4.1", "v1.4.0", "v1.3.9"],
        "newest first"
    );
    let open = production["open_incidents"].as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["key"], first.as_str());
    assert_eq!(open[0]["status"], "acknowledged");

    let out = run(args(&["status", "--env", "production"])).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    for needle in [
        "Pipeline health for production (kiro-pipeline-production)",
        "Build   Failed",
        "kiro-pipeline-production-pipeline-failures  since",
        "v1.4.2",
        "acknowledged  pipeline_execution_failure",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(!text.contains("staging-pipeline-failures"));

    // summary: the runbook's deployment summary over 7 days.
    let out = run(args(&[
        "summary",
        "--env",
        "production",
        "--days",
        "7",
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &summary["environments"][0];
    assert_eq!(f["executions_succeeded"], 5, "{f}");
    assert_eq!(
        f["executions_failed"], 1,
        "the seeded failure; the 10-day-old one is outside"
    );
    assert_eq!(f["executions_in_progress"], 1);
    assert_eq!(f["executions_stopped"], 1);
    assert!((f["success_rate"].as_f64().unwrap() - 500.0 / 6.0).abs() < 1e-9);
    assert_eq!(
        f["rollbacks"], 1,
        "one rollback in the window, one before it"
    );
    assert_eq!(f["rollbacks_source"], "deployments_table");
    assert_eq!(f["incidents_by_type"]["pipeline_execution_failure"], 2);
    assert_eq!(f["incidents_open"], 1);
    assert!(
        (f["mtta_secs"].as_f64().unwrap() - mtta).abs() < 0.01,
        "{f} vs {mtta}"
    );
    assert!(
        (f["mttr_secs"].as_f64().unwrap() - mttr).abs() < 0.01,
        "{f} vs {mttr}"
    );
    assert_eq!(summary["problems"], json!([]));
    let out = run(args(&["summary", "--env", "production"])).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("Deployment summary for production"), "{text}");
    assert!(text.contains("83.3 %"), "{text}");

    // Without the daemon's API, the AWS parts still come, the incident part says why, exit 1.
    let out = run(vec![
        "status".into(),
        "--env".into(),
        "production".into(),
        "--json".into(),
        "--api".into(),
        "http://127.0.0.1:9".into(),
    ])
    .await;
    assert!(!out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let production = &status["environments"][0];
    assert!(production["open_incidents"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot reach the daemon"));
    assert_eq!(production["alarms_in_alarm"].as_array().unwrap().len(), 1);

    // The post-incident report, from the API and from the CLI.
    let report = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/incidents/{}/report",
            urlencode(&second)
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    assert!(report.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let markdown = report.text().await.unwrap();
    for needle in [
        "# Incident report: Pipeline execution failed",
        "(production)",
        "exec-two",
        "## Durations",
        "- **Time to resolve:** ",
        "| time (UTC) | event | detail |",
        "| Opened |",
        "| Notified | sent opened via slack #kiro-production |",
        "| Resolved | resolved by alice |",
        "## Follow-up",
    ] {
        assert!(markdown.contains(needle), "{needle:?} not in:\n{markdown}");
    }
    let out = run(args(&["incidents", "report", &second])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = String::from_utf8_lossy(&out.stdout).to_string();
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("generated by"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&cli), body(&markdown));
    assert!(cli.contains("## Timeline"));
    let missing = reqwest::Client::new()
        .get(format!("{base}/api/v1/incidents/nope/report"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let unauthorized = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/incidents/{}/report",
            urlencode(&second)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

fn alarm_event(id: &str, alarm: &str, state: &str, previous: &str) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    kiro_event("cloudwatch-alarm-state-change.json", id, |e| {
        e["time"] = json!(now);
        e["resources"] = json!([format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
        )]);
        e["detail"]["alarmName"] = json!(alarm);
        e["detail"]["state"]["value"] = json!(state);
        e["detail"]["previousState"]["value"] = json!(previous);
        if let Some(detail) = e["detail"].as_object_mut() {
            detail.remove("pipeline");
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_is_posted_on_schedule_once_with_the_weeks_figures() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-digest", 30).await;
    let _capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    seed_week(&codepipeline, &cloudwatch, &moto).await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [cp, cw, ("TEST_API_TOKEN", TOKEN.to_string())];
    // A daily digest due a few seconds from now, over the last 7 days.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(8)).format("%H:%M:%S");
    let environments = format!(
        "[[environments]]\nname = \"production\"\n[digest]\nevery = \"day\"\nat = \"{at}\"\nwindow_days = 7\n"
    );
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        environments: &environments,
        ..Setup::default()
    };
    let dir = temp_dir("digest");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);

    // The week's incidents: a failure, acknowledged; an alarm that flapped (ALARM, then OK).
    let failed = kiro_event("codepipeline-pipeline-failed.json", "evt-d-1", |e| {
        e["time"] = json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    });
    send_body(&moto, &queues.url, &failed).await;
    let alarm = "kiro-pipeline-production-deployment-duration";
    send_body(
        &moto,
        &queues.url,
        &alarm_event("evt-d-2", alarm, "ALARM", "OK"),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            api(&base, "GET", "/api/v1/incidents?status=all").await["incidents"]
                .as_array()
                .map_or(0, Vec::len)
                == 2
        })
        .await,
        "{}",
        daemon.log()
    );
    send_body(
        &moto,
        &queues.url,
        &alarm_event("evt-d-3", alarm, "OK", "ALARM"),
    )
    .await;
    let failure =
        "pipeline_execution_failure/kiro-pipeline-production/12345678-1234-5678-abcd-12345678abcd";
    api(
        &base,
        "POST",
        &format!("/api/v1/incidents/{}/ack", urlencode(failure)),
    )
    .await;

    let digest = || {
        slack
            .accepted()
            .into_iter()
            .filter(|p| {
                p.text()
                    .is_some_and(|t| t.contains("Weekly pipeline digest"))
            })
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(30), || async { !digest().is_empty() }).await,
        "no digest: {}",
        daemon.log()
    );
    let post = &digest()[0];
    assert_eq!(post.channel(), Some("#kiro-production"));
    let text = post.text().unwrap().to_string();
    for needle in [
        "*production* (`kiro-pipeline-production`)",
        "Success rate: *83.3 %* (5 succeeded, 1 failed; 1 stopped, 1 in progress)",
        "Rollbacks: 1 (deployments table)",
        "pipeline_execution_failure 1",
        "deployment_duration_exceeded 1",
        "MTTA: ",
        "`kiro-pipeline-production-deployment-duration`: 1 time",
        "`slow-1` InProgress since",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(!text.contains("could not be fetched"), "{text}");

    // The CLI prints the same digest (window: up to now).
    let out = Daemon::one_off(
        &moto,
        &slack,
        &queues.url,
        &dir,
        &setup,
        &["digest", "--json", "--api", &base],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["posts"][0]["channel"], "#kiro-production");
    assert!(printed["posts"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Success rate: *83.3 %*"));

    // A restart within the catch-up window does not post the same period again.
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric(
                &get(&format!("{base}/metrics")).await.1,
                "pipeline_responder_digests_total",
                &[("outcome", "skipped")],
            ) == 1.0
        })
        .await,
        "{}",
        daemon.log()
    );
    assert_eq!(digest().len(), 1);
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
