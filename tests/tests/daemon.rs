//! The real `pipeline-responder run` against moto (SQS, SNS) and the Slack fake.
#![allow(clippy::unwrap_used)]

use crate::support::{
    create_queues, depth, eventually, fake_endpoints, kiro_event, seed_failed_build, send_bodies,
    send_body, slack_posted, sns_envelope, temp_dir, topic_with_capture, Daemon, Setup,
};
use pipeline_responder_e2e::{AlarmModel, CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_via_sqs_raw_and_in_sns_envelope_is_one_incident_one_post_one_sns_message() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-one-incident", 30).await;
    let capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    seed_failed_build(&codepipeline, &moto).await;
    let endpoints = fake_endpoints(&codepipeline, &cloudwatch);
    let daemon = Daemon::start_with(
        &moto,
        &slack,
        &queues.url,
        temp_dir("one-incident"),
        &endpoints,
        false,
    )
    .await;

    // The action failure (with the error), then the pipeline FAILED for the same execution, the
    // latter wrapped in an SNS envelope as a topic subscription delivers it.
    let action_failed = kiro_event(
        "codepipeline-action-failed.json",
        "evt-action-failed",
        |e| {
            e["detail"]["stage"] = json!("Build");
            e["detail"]["action"] = json!("BuildAndTest");
            e["detail"]["execution-result"]["external-execution-summary"] =
                json!("Error while executing command: npm test. Reason: exit status 1");
        },
    );
    let pipeline_failed = kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-pipeline-failed",
        |_| {},
    );
    let sqs = moto.sqs();
    send_body(&moto, &queues.url, &action_failed).await;
    send_body(
        &moto,
        &queues.url,
        &sns_envelope(&pipeline_failed, "sns-msg-1"),
    )
    .await;

    let posts = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 1, "{}", daemon.log());
    let text = posts[0].text().unwrap().to_string();
    for needle in [
        "production",
        "kiro-pipeline-production",
        "Failed: Build › BuildAndTest",
        "npm test",
        "HIGH",
        "Incident 1",
        // Diagnostics made it into the first post: the commit, the root cause from the build log.
        "Commit: 9e1d4b7 \"feat: retry worker jobs\"",
        "Root cause: test failure in `npm test` — 2 failing test(s) (first: WorkerQueue › retries twice)",
        "FAIL src/worker/queue.test.ts",
    ] {
        assert!(text.contains(needle), "post lacks {needle:?}: {text}");
    }
    assert_eq!(posts[0].channel(), Some("#kiro-production"));

    // Both messages deleted, and only after the incident was stored (the post proves it was).
    assert!(
        eventually(Duration::from_secs(10), || async {
            depth(&moto, &queues.url).await == 0
        })
        .await,
        "{}",
        daemon.log()
    );
    assert_eq!(depth(&moto, &queues.dlq_url).await, 0);

    // One SNS message with the incident's attributes.
    let received = eventually(Duration::from_secs(10), || async {
        depth(&moto, &capture).await >= 1
    })
    .await;
    assert!(received, "no SNS message: {}", daemon.log());
    let messages = sqs
        .receive_message()
        .queue_url(&capture)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let envelope: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert!(
        envelope["Subject"].as_str().unwrap().contains("production"),
        "{envelope}"
    );
    assert_eq!(
        envelope["MessageAttributes"]["incident_type"]["Value"],
        "pipeline_execution_failure"
    );
    assert_eq!(envelope["MessageAttributes"]["severity"]["Value"], "high");
    assert_eq!(
        envelope["MessageAttributes"]["incident_key"]["Value"],
        "pipeline_execution_failure/kiro-pipeline-production/12345678-1234-5678-abcd-12345678abcd"
    );

    // Nothing more is posted for the joined event.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slack.accepted().len(), 1);

    let (status, took, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert!(
        !log.contains(&slack.webhook_url()),
        "the webhook URL (a secret) reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_end_in_the_dlq_and_the_next_good_event_is_handled() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-malformed", 1).await;
    let daemon = Daemon::start(&moto, &slack, &queues.url, temp_dir("malformed")).await;
    // 100 malformed messages of five kinds: not JSON, unknown shape, a missing required field,
    // nesting past the parser's depth limit, an SNS envelope around plain text.
    let bad: Vec<String> = (0..100)
        .map(|i| match i % 5 {
            0 => format!("not json at all #{i}"),
            1 => json!({"i": i}).to_string(),
            2 => json!({"detail-type": "CodePipeline Pipeline Execution State Change", "time": "2026-01-27T10:00:00Z", "id": format!("x{i}"), "detail": {"state": "FAILED"}}).to_string(),
            3 => "[".repeat(5000 + i),
            _ => json!({"Type": "Notification", "MessageId": format!("m{i}"), "Message": format!("plain text {i}")}).to_string(),
        })
        .collect();
    send_bodies(&moto, &queues.url, &bad).await;
    let good = kiro_event("codepipeline-pipeline-failed.json", "evt-good", |e| {
        e["detail"]["execution-id"] = json!("after-the-bad-ones");
    });
    send_body(&moto, &queues.url, &good).await;

    let posts = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 1, "{}", daemon.log());
    assert!(
        posts[0].text().unwrap().contains("after-th"),
        "{:?}",
        posts[0].text()
    );
    let moved = eventually(Duration::from_secs(60), || async {
        depth(&moto, &queues.dlq_url).await == bad.len() as u64
    })
    .await;
    assert!(
        moved,
        "DLQ holds {} of {}: {}",
        depth(&moto, &queues.dlq_url).await,
        bad.len(),
        daemon.log()
    );
    // Still serving after all that: the next good event is handled.
    let next = kiro_event("codepipeline-pipeline-failed.json", "evt-next", |e| {
        e["detail"]["execution-id"] = json!("after-the-dlq");
    });
    send_body(&moto, &queues.url, &next).await;
    let served = slack.wait_for_accepted(2, Duration::from_secs(20)).await;
    assert!(
        served
            .iter()
            .any(|p| p.text().is_some_and(|t| t.contains("after-th")))
            && served.len() == 2,
        "{}",
        daemon.log()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("left for the dead-letter queue"),
        "rejections are logged with a reason"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_alarm_and_watcher_meet_in_one_incident_and_a_later_success_resolves_it() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-meet", 30).await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    seed_failed_build(&codepipeline, &moto).await;
    let now = chrono::Utc::now();
    cloudwatch.put_alarm(
        AlarmModel::new(
            "kiro-pipeline-production-pipeline-failures",
            "AWS/CodePipeline",
            "PipelineExecutionFailure",
            now,
        )
        .in_state(
            "ALARM",
            "Threshold Crossed: 1 datapoint [1.0] was greater than the threshold (0.0)",
        ),
    );
    let endpoints = fake_endpoints(&codepipeline, &cloudwatch);
    // The watcher polls at start-up: it sees the failed execution and the alarm in ALARM.
    let daemon = Daemon::start_with(
        &moto,
        &slack,
        &queues.url,
        temp_dir("meet"),
        &endpoints,
        true,
    )
    .await;
    assert!(
        !codepipeline
            .wait_for_calls("ListPipelineExecutions", 1, Duration::from_secs(15))
            .await
            .is_empty(),
        "{}",
        daemon.log()
    );
    let first = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert!(!first.is_empty(), "{}", daemon.log());
    // Then EventBridge delivers the FAILED event for the same execution.
    let pipeline_failed = kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-meet-failed",
        |_| {},
    );
    send_body(&moto, &queues.url, &pipeline_failed).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            depth(&moto, &queues.url).await == 0
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let opened: Vec<_> = slack
        .accepted()
        .into_iter()
        .filter(|p| p.text().is_some_and(|t| t.contains("Next (Incident 1")))
        .collect();
    assert_eq!(
        opened.len(),
        1,
        "one incident, one first post: {:#?}\n{}",
        slack
            .accepted()
            .iter()
            .map(|p| p.text().map(String::from))
            .collect::<Vec<_>>(),
        daemon.log()
    );
    let text = opened[0].text().unwrap();
    assert!(text.contains("12345678"), "{text}");

    // A later execution succeeds: the incident resolves with a follow-up post.
    let succeeded = kiro_event(
        "codepipeline-pipeline-succeeded.json",
        "evt-meet-succeeded",
        |e| {
            e["detail"]["execution-id"] = json!("fixed-0001");
            e["detail"]["start-time"] = json!(chrono::Utc::now().to_rfc3339());
            e["time"] =
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        },
    );
    send_body(&moto, &queues.url, &succeeded).await;
    let resolved = slack_posted(&slack, "✅ Resolved", Duration::from_secs(15)).await;
    assert!(resolved, "{}", daemon.log());
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

/// Storm control off (these tests count every first post).
fn every_post(daemon_extra: &str) -> Setup<'_> {
    Setup {
        daemon_extra,
        environments: NO_STORM,
        ..Setup::default()
    }
}

const NO_STORM: &str = r#"[[environments]]
name = "staging"
[[environments]]
name = "production"
[storm]
max_incidents = 100000
"#;

/// `n` FAILED events of distinct executions of the production pipeline, sent in batches of 10.
async fn send_failures(moto: &Moto, queue_url: &str, n: usize, tag: &str) {
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            kiro_event(
                "codepipeline-pipeline-failed.json",
                &format!("evt-{tag}-{i}"),
                |e| {
                    e["detail"]["execution-id"] = json!(format!("{tag}-{i:04}"));
                },
            )
        })
        .collect();
    send_bodies(moto, queue_url, &bodies).await;
}

/// Distinct incident keys named by first posts, and how many first posts there were.
fn first_posts(slack: &SlackFake) -> (std::collections::BTreeSet<String>, usize) {
    let opened: Vec<String> = slack
        .accepted()
        .iter()
        .filter_map(|p| p.text().map(String::from))
        .filter(|t| t.contains("Next (Incident 1"))
        .filter_map(|t| {
            t.split("Incident `")
                .nth(1)
                .map(|k| k.trim_end_matches('`').to_string())
        })
        .collect();
    let total = opened.len();
    (opened.into_iter().collect(), total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_of_300_then_restart_every_failure_has_exactly_one_incident() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-kill9", 5).await;
    let dir = temp_dir("kill9");
    send_failures(&moto, &queues.url, 300, "k9").await;
    let fast = "first_post_wait_secs = 0";
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &every_post(fast)).await;
    // Kill it mid-burst: some incidents stored, most messages still queued.
    let started = eventually(Duration::from_secs(30), || async {
        slack.accepted().len() >= 20
    })
    .await;
    assert!(started, "{}", daemon.log());
    let stored_before = daemon.incident_count();
    daemon.kill9().await;
    assert!(
        stored_before < 300,
        "killed too late to test anything ({stored_before} stored)"
    );

    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir, &every_post(fast)).await;
    let drained = eventually(Duration::from_secs(90), || async {
        depth(&moto, &queues.url).await == 0 && daemon.incident_count() == 300
    })
    .await;
    assert!(
        drained,
        "{} incidents, {} messages left: {}",
        daemon.incident_count(),
        depth(&moto, &queues.url).await,
        daemon.log()
    );
    assert_eq!(
        depth(&moto, &queues.dlq_url).await,
        0,
        "no good message may reach the DLQ"
    );
    let posted = eventually(Duration::from_secs(30), || async {
        first_posts(&slack).0.len() == 300
    })
    .await;
    let (keys, total) = first_posts(&slack);
    assert!(posted, "{} of 300 incidents posted", keys.len());
    // A post sent just before the kill and not yet marked sent is repeated once at most.
    assert!(
        total - keys.len() <= 1,
        "{} repeated first posts after one kill",
        total - keys.len()
    );
    println!(
        "kill -9 at {stored_before} stored incidents: 300 incidents, {} repeated posts",
        total - keys.len()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_exits_within_the_grace_period_and_loses_nothing() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-sigterm", 5).await;
    let dir = temp_dir("sigterm");
    send_failures(&moto, &queues.url, 100, "st").await;
    let fast = "first_post_wait_secs = 0";
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &every_post(fast)).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            slack.accepted().len() >= 5
        })
        .await,
        "{}",
        daemon.log()
    );
    let (status, took, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        took <= Duration::from_secs(10),
        "took {took:?} for a 10 s grace period"
    );
    assert!(log.contains("Shutting down"), "{log}");

    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir, &every_post(fast)).await;
    let all = eventually(Duration::from_secs(60), || async {
        depth(&moto, &queues.url).await == 0 && daemon.incident_count() == 100
    })
    .await;
    assert!(
        all,
        "{} incidents: {}",
        daemon.incident_count(),
        daemon.log()
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            first_posts(&slack).0.len() == 100
        })
        .await
    );
    let (keys, total) = first_posts(&slack);
    assert_eq!(total, keys.len(), "a clean shutdown repeats no post");
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_stores_and_decides_everything_but_sends_nothing() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-dry-run", 30).await;
    let capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let daemon = Daemon::start_config(
        &moto,
        &slack,
        &queues.url,
        temp_dir("dry-run"),
        &[],
        false,
        "dry_run = true\nfirst_post_wait_secs = 0",
    )
    .await;
    send_failures(&moto, &queues.url, 3, "dry").await;
    let stored = eventually(Duration::from_secs(20), || async {
        daemon.incident_count() == 3 && depth(&moto, &queues.url).await == 0
    })
    .await;
    assert!(stored, "{}", daemon.log());
    assert!(
        eventually(Duration::from_secs(10), || async {
            daemon
                .log()
                .matches("Dry-run: notification not sent")
                .count()
                >= 6
        })
        .await,
        "{}",
        daemon.log()
    );
    assert!(slack.posts().is_empty(), "dry-run posted to Slack");
    assert_eq!(depth(&moto, &capture).await, 0, "dry-run published to SNS");
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bot_posts_once_then_threads_and_updates_and_rides_out_rate_limits() {
    let moto = Moto::start().await;
    let slack = SlackFake::start_with_token("xoxb-test-token-123").await;
    let queues = create_queues(&moto, "events-bot", 30).await;
    let capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    // Slack answers 429 (Retry-After: 4) twice; the post must still arrive, exactly once, and SNS
    // must not wait for Slack.
    slack.fail_next(2, 429, Some(4));
    let env = [
        ("TEST_SLACK_TOKEN", "xoxb-test-token-123".to_string()),
        ("TEST_SLACK_API", slack.api_base_url()),
    ];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        slack_extra: "bot_token = \"${TEST_SLACK_TOKEN}\"\napi_base_url = \"${TEST_SLACK_API}\"",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("bot"), &setup).await;
    send_failures(&moto, &queues.url, 1, "bot").await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            depth(&moto, &capture).await >= 1
        })
        .await,
        "SNS waited for Slack: {}",
        daemon.log()
    );
    let first = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 1, "{}", daemon.log());
    let rejected = slack.posts().iter().filter(|p| p.status == 429).count();
    assert_eq!(rejected, 2, "both 429s were seen and retried");
    let parent_ts = first[0].ts().unwrap().to_string();
    assert_eq!(
        first[0].authorization.as_deref(),
        Some("Bearer xoxb-test-token-123")
    );
    assert!(first[0].thread_ts().is_none());

    // Recovery: the resolution is a reply in the incident's thread, and the first post is rewritten.
    let ok = kiro_event("codepipeline-pipeline-succeeded.json", "evt-bot-ok", |e| {
        e["detail"]["execution-id"] = json!("bot-fixed");
        e["detail"]["start-time"] = json!(chrono::Utc::now().to_rfc3339());
    });
    moto.sqs()
        .send_message()
        .queue_url(&queues.url)
        .message_body(&ok)
        .send()
        .await
        .unwrap();
    let threaded = eventually(Duration::from_secs(15), || async {
        slack.accepted().iter().any(|p| {
            p.thread_ts() == Some(parent_ts.as_str())
                && p.text().is_some_and(|t| t.contains("✅ Resolved"))
        })
    })
    .await;
    assert!(
        threaded,
        "{:#?}",
        slack
            .accepted()
            .iter()
            .map(|p| (p.endpoint, p.thread_ts().map(String::from)))
            .collect::<Vec<_>>()
    );
    let updated = eventually(Duration::from_secs(5), || async {
        slack
            .accepted()
            .iter()
            .any(|p| matches!(p.endpoint, pipeline_responder_e2e::SlackEndpoint::Update))
    })
    .await;
    assert!(updated, "the first post is kept current with chat.update");
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("xoxb-test-token-123"),
        "the bot token reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_failure_escalates_to_l2_then_l3_exactly_once_each() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-escalate", 30).await;
    let environments = r#"
[[escalation.levels]]
id = "L1"
slack_mention = "@oncall"
[[escalation.levels]]
id = "L2"
name = "DevOps team lead"
slack_mention = "@devops-lead"
[[escalation.levels]]
id = "L3"
name = "Engineering manager + AWS Support"
slack_mention = "@eng-manager"
[[environments]]
name = "production"
[policies.pipeline_execution_failure]
escalation = [
  { level = "L1", after_secs = 0 },
  { level = "L2", after_secs = 3 },
  { level = "L3", after_secs = 6 },
]
"#;
    let setup = Setup {
        daemon_extra: "first_post_wait_secs = 0",
        environments,
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("escalate"), &setup).await;
    send_failures(&moto, &queues.url, 1, "esc").await;
    let escalated = |mention: &'static str| {
        let slack = &slack;
        move || async move {
            slack
                .accepted()
                .iter()
                .filter(|p| {
                    p.text()
                        .is_some_and(|t| t.contains("Escalated") && t.contains(mention))
                })
                .count()
        }
    };
    assert!(
        eventually(Duration::from_secs(15), || async {
            escalated("@eng-manager")().await == 1
        })
        .await,
        "{}",
        daemon.log()
    );
    // Give a duplicate the chance to show up, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(escalated("@devops-lead")().await, 1);
    assert_eq!(escalated("@eng-manager")().await, 1);
    let order: Vec<String> = slack
        .accepted()
        .iter()
        .filter_map(|p| p.text().map(String::from))
        .collect();
    let l2 = order
        .iter()
        .position(|t| t.contains("@devops-lead"))
        .unwrap();
    let l3 = order
        .iter()
        .position(|t| t.contains("@eng-manager"))
        .unwrap();
    assert!(l2 < l3, "L2 before L3");
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_needs_the_token_and_ack_stops_escalation_resolve_posts_and_events_are_ingested() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-api", 30).await;
    let environments = r#"
[[environments]]
name = "production"
[policies.pipeline_execution_failure]
escalation = [{ level = "L1", after_secs = 0 }, { level = "L2", after_secs = 2 }]
"#;
    let env = [(
        "TEST_API_TOKEN",
        "api-secret-token-42-0123456789abcdef".to_string(),
    )];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        environments,
        ..Setup::default()
    };
    let dir = temp_dir("api");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // An event through the API destination endpoint (same handling as SQS).
    let event = kiro_event("codepipeline-pipeline-failed.json", "evt-api-1", |e| {
        e["detail"]["execution-id"] = json!("api-exec-1");
    });
    let unauth = http
        .post(format!("{base}/api/v1/events"))
        .body(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401, "no token");
    let wrong = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth("api-secret-token-41")
        .body(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "wrong token");
    let accepted = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let bad = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let key = "pipeline_execution_failure/kiro-pipeline-production/api-exec-1";
    let id = key.replace('/', "%2F");
    let list: Value = http
        .get(format!("{base}/api/v1/incidents?status=open"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["incidents"][0]["key"], key);
    let acked = http
        .post(format!("{base}/api/v1/incidents/{id}/ack"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .body(r#"{"by": "alice"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    // The L2 deadline passes: the ack stopped it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        slack
            .accepted()
            .iter()
            .all(|p| !p.text().unwrap_or_default().contains("Escalated")),
        "{}",
        daemon.log()
    );
    let shown: Value = http
        .get(format!("{base}/api/v1/incidents/{id}"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["incident"]["status"], "acknowledged");
    assert_eq!(shown["incident"]["acknowledged_by"], "alice");

    let resolved = http
        .post(format!("{base}/api/v1/incidents/{id}/resolve"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .body(r#"{"by": "bob"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let posted = eventually(Duration::from_secs(10), || async {
        slack.accepted().iter().any(|p| {
            p.text()
                .is_some_and(|t| t.contains("✅ Resolved: resolved by bob"))
        })
    })
    .await;
    assert!(posted, "{}", daemon.log());
    let again = http
        .post(format!("{base}/api/v1/incidents/{id}/resolve"))
        .bearer_auth("api-secret-token-42-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // The CLI reads the same configuration (token) and talks to the same API.
    let cli = |args: &[&str]| {
        std::process::Command::new(crate::support::daemon_binary())
            .args([
                "--config",
                dir.join("config.toml").to_str().unwrap(),
                "incidents",
                "--api",
                &base,
            ])
            .args(args)
            .env_clear()
            .env("TEST_API_TOKEN", "api-secret-token-42-0123456789abcdef")
            .env("TEST_SLACK_WEBHOOK", slack.webhook_url())
            .output()
            .unwrap()
    };
    let listed = cli(&["list", "--status", "all"]);
    let table = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.status.success(),
        "{table} {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(table.contains(key) && table.contains("resolved"), "{table}");
    let shown = cli(&["show", key]);
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        text.contains("acknowledged by alice") && text.contains("resolved by bob"),
        "{text}"
    );
    let refused = cli(&["ack", key]);
    assert!(
        !refused.status.success(),
        "acking a resolved incident fails"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409"));
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("api-secret-token-42-0123456789abcdef"),
        "the API token reached the log"
    );
}

/// A Slack interaction request body and its v0 signature.
fn slack_request(secret: &str, ts: i64, key: &str) -> (String, String) {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U123", "username": "carol"},
        "actions": [{"action_id": "acknowledge", "value": key}],
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let signature = crate::support::slack_signature(secret, &ts.to_string(), &body);
    (body, signature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_ack_button_is_verified_and_replays_or_forgeries_change_nothing() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-slack-ack", 30).await;
    let env = [
        (
            "TEST_API_TOKEN",
            "daemon-api-token-0123456789abcdef0123".to_string(),
        ),
        ("TEST_SLACK_SIGNING", "slack-signing-secret".to_string()),
    ];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        slack_extra: "signing_secret = \"${TEST_SLACK_SIGNING}\"",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("slack-ack"), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    send_failures(&moto, &queues.url, 1, "sa").await;
    let first = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 1, "{}", daemon.log());
    let key = "pipeline_execution_failure/kiro-pipeline-production/sa-0000";
    let button = first[0].blocks().iter().find_map(|b| {
        b["elements"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x["action_id"] == "acknowledge").cloned())
    });
    assert_eq!(
        button.unwrap()["value"],
        key,
        "the post's button carries the incident key"
    );

    let http = reqwest::Client::new();
    let post = |body: String, ts: i64, signature: String| {
        http.post(format!("{base}/slack/interactions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(body)
            .send()
    };
    let status_of = || async {
        let v: Value = http
            .get(format!(
                "{base}/api/v1/incidents/{}",
                key.replace('/', "%2F")
            ))
            .bearer_auth("daemon-api-token-0123456789abcdef0123")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["incident"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let now = chrono::Utc::now().timestamp();
    let (body, _) = slack_request("slack-signing-secret", now, key);
    let (_, forged) = slack_request("not-the-secret", now, key);
    assert_eq!(
        post(body.clone(), now, forged).await.unwrap().status(),
        401,
        "bad signature"
    );
    let old = now - 301;
    let (old_body, old_sig) = slack_request("slack-signing-secret", old, key);
    assert_eq!(
        post(old_body, old, old_sig).await.unwrap().status(),
        401,
        "older than 5 minutes"
    );
    assert_eq!(status_of().await, "open", "nothing changed");
    let (body, signature) = slack_request("slack-signing-secret", now, key);
    assert_eq!(post(body, now, signature).await.unwrap().status(), 200);
    assert_eq!(status_of().await, "acknowledged");
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(!log.contains("slack-signing-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_200_failures_in_10_s_makes_at_most_5_slack_posts_and_200_incidents() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-storm", 30).await;
    let setup = Setup {
        daemon_extra: "first_post_wait_secs = 0",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("storm"), &setup).await;
    let started = std::time::Instant::now();
    send_failures(&moto, &queues.url, 200, "storm").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the burst took {:?}",
        started.elapsed()
    );
    let stored = eventually(Duration::from_secs(60), || async {
        daemon.incident_count() == 200 && depth(&moto, &queues.url).await == 0
    })
    .await;
    assert!(
        stored,
        "{} incidents: {}",
        daemon.incident_count(),
        daemon.log()
    );
    // Let the outbox work through everything queued.
    let summarized = slack_posted(&slack, "Storm control", Duration::from_secs(20)).await;
    assert!(summarized, "{}", daemon.log());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posts = slack.accepted();
    assert!(
        posts.len() <= 5,
        "{} Slack posts for 200 failures",
        posts.len()
    );
    let summary = posts
        .iter()
        .filter_map(|p| p.text())
        .find(|t| t.contains("Storm control"))
        .unwrap();
    assert!(summary.contains("production"), "{summary}");
    assert!(summary.contains("pipeline_execution_failure"), "{summary}");
    println!("storm: 200 incidents, {} Slack posts", posts.len());
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_keeps_matching_posts_quiet_while_incidents_are_still_recorded() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-silence", 30).await;
    let env = [(
        "TEST_API_TOKEN",
        "daemon-api-token-0123456789abcdef0123".to_string(),
    )];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("silence"), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    let http = reqwest::Client::new();
    let silence = json!({"environment": "staging", "duration_secs": 1800, "comment": "staging maintenance", "by": "dave"});
    assert_eq!(
        http.post(format!("{base}/api/v1/silences"))
            .json(&silence)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let created = http
        .post(format!("{base}/api/v1/silences"))
        .bearer_auth("daemon-api-token-0123456789abcdef0123")
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let empty = http
        .post(format!("{base}/api/v1/silences"))
        .bearer_auth("daemon-api-token-0123456789abcdef0123")
        .json(&json!({"duration_secs": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400, "a silence must match something");

    let staging = |exec: &str| {
        kiro_event(
            "codepipeline-pipeline-failed.json",
            &format!("evt-{exec}"),
            |e| {
                e["detail"]["pipeline"] = json!("kiro-pipeline-staging");
                e["detail"]["execution-id"] = json!(exec);
            },
        )
    };
    send_body(&moto, &queues.url, &staging("quiet-1")).await;
    send_failures(&moto, &queues.url, 1, "loud").await;
    let posts = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            daemon.incident_count() == 2
        })
        .await,
        "both recorded"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts: Vec<String> = slack
        .accepted()
        .iter()
        .filter_map(|p| p.text().map(String::from))
        .collect();
    assert_eq!(posts.len(), 1);
    assert!(
        texts.iter().all(|t| !t.contains("· staging ·")),
        "{texts:#?}"
    );
    assert!(texts.iter().any(|t| t.contains("production")), "{texts:#?}");
    let shown: Value = http
        .get(format!(
            "{base}/api/v1/incidents/{}",
            "pipeline_execution_failure/kiro-pipeline-staging/quiet-1".replace('/', "%2F")
        ))
        .bearer_auth("daemon-api-token-0123456789abcdef0123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let timeline = shown["timeline"].to_string();
    assert!(timeline.contains(&format!("silence {id}")), "{timeline}");

    // The silence ends: the next staging failure is posted again.
    assert_eq!(
        http.delete(format!("{base}/api/v1/silences/{id}"))
            .bearer_auth("daemon-api-token-0123456789abcdef0123")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    send_body(&moto, &queues.url, &staging("loud-2")).await;
    let back = slack_posted(&slack, "· staging ·", Duration::from_secs(15)).await;
    assert!(back, "{}", daemon.log());
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_approval_is_reminded_on_schedule_until_decided() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-reminder", 30).await;
    let environments = r#"
[[environments]]
name = "staging"
[[environments]]
name = "production"
[policies.approval_pending]
escalation = [{ level = "L1", after_secs = 2, repeat_every_secs = 2, max_repeats = 2 }]
[storm]
max_incidents = 100
"#;
    let setup = Setup {
        daemon_extra: "first_post_wait_secs = 0",
        environments,
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("reminder"), &setup).await;
    let approval = |state: &str, id: &str| {
        kiro_event("codepipeline-action-started.json", id, |e| {
            e["detail"]["stage"] = json!("ProductionEnv");
            e["detail"]["action"] = json!("ApproveProduction");
            e["detail"]["state"] = json!(state);
            e["detail"]["type"]["category"] = json!("Approval");
            e["detail"]["type"]["provider"] = json!("Manual");
        })
    };
    send_body(&moto, &queues.url, &approval("STARTED", "evt-approval-1")).await;
    let reminders = || {
        slack
            .accepted()
            .iter()
            .filter(|p| p.text().is_some_and(|t| t.contains("⏰ Approval waiting")))
            .count()
    };
    let escalated = || {
        slack
            .accepted()
            .iter()
            .filter(|p| p.text().is_some_and(|t| t.contains("Escalated")))
            .count()
    };
    // First at 2 s, then every 2 s, two repeats: three in all.
    assert!(
        eventually(Duration::from_secs(15), || async { reminders() >= 3 }).await,
        "{}",
        daemon.log()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(reminders(), 3, "no more than the schedule says");
    assert_eq!(
        escalated(),
        0,
        "an approval has no ack target to escalate past"
    );
    send_body(&moto, &queues.url, &approval("SUCCEEDED", "evt-approval-2")).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            slack.accepted().iter().any(|p| {
                p.text()
                    .is_some_and(|t| t.contains("✅ Resolved: approved"))
            })
        })
        .await
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

/// SIGTERM while the consumer's long poll is in flight: what that receive brings back (SQS
/// takes the messages off the queue whether or not we still listen) is handed back at once, so
/// a deploy does not leave them invisible for the whole visibility timeout (60 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_poll_hands_back_what_it_received() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-sigterm-poll", 60).await;
    let setup = Setup {
        sqs_extra: "wait_time_secs = 10\nvisibility_timeout_secs = 60",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("sigterm-poll"), &setup).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            daemon.log().contains("SQS consumer started")
        })
        .await,
        "{}",
        daemon.log()
    );
    // The consumer is in its first 10 s long poll on an empty queue. Stop it, then send one
    // message: the poll in flight answers with it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.sigterm();
    send_failures(&moto, &queues.url, 1, "poll").await;
    let (status, _, log) = daemon.exited(tokio::time::Instant::now()).await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("messages not handled were handed back"),
        "the receive in flight was dropped: {log}"
    );
    let visible = moto
        .sqs()
        .receive_message()
        .queue_url(&queues.url)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(
        visible.len(),
        1,
        "the message is visible again at once, not after 60 s"
    );
}
