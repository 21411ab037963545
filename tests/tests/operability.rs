//! Operability (issue 5): /metrics after a scripted scenario, readiness when the emulator goes
//! away and comes back, the post-incident report, `status`, `summary` and the weekly digest.
#![allow(clippy::unwrap_used)]

use crate::support::{
    create_queues, eventually, fake_endpoints, get, kiro_event, metric, promtool,
    seed_failed_build, send_body, series, temp_dir, topic_with_capture, Daemon, Setup,
};
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "metrics-api-token-7f3a";

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
    let env = [cp, cw, ("TEST_API_TOKEN", TOKEN.to_string())];
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
    // The L3 timer is still waiting.
    assert!(m("pipeline_responder_pending_deadlines", &[]) >= 1.0);
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
    // No label carries an id, a key, an ARN or a URL.
    for (name, labels, _) in series(&text) {
        for value in labels.values() {
            for forbidden in ["arn:", "http", "evt-m-", "12345678-1234", "/", "#"] {
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

    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    for secret in [TOKEN.to_string(), slack.webhook_url()] {
        assert!(!log.contains(&secret), "a secret reached the log");
        assert!(!text.contains(&secret), "a secret reached /metrics");
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
