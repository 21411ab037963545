//! The runbook's incidents end to end: each scenario goes through the real `pipeline-responder
//! run`, SQS and SNS (moto), the CodePipeline and CloudWatch fakes and the Slack fake, and checks
//! that the posts carry that runbook section's diagnostics (docs/specification.md section 2).
#![allow(clippy::unwrap_used)]

use crate::support::{
    create_deployments_table, create_queues, depth, eventually, fake_endpoints, kiro_event,
    put_deployment, put_log_lines, seed_failed_build_with, temp_dir, topic_with_capture, Daemon,
    Queues, Setup, DEPLOYMENTS_TABLE, ENVIRONMENTS,
};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use pipeline_responder_e2e::{
    ActionExecutionModel, ActionModel, AlarmModel, CloudWatchFake, CodePipelineFake,
    ExecutionModel, Moto, PipelineModel, RevisionModel, SlackFake, StageModel,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything a runbook scenario runs against, started fresh for each test.
struct World {
    moto: Moto,
    slack: SlackFake,
    queues: Queues,
    /// A queue subscribed to the production deployments topic: the SNS messages the daemon sends.
    sns_capture: String,
    codepipeline: CodePipelineFake,
    cloudwatch: CloudWatchFake,
}

impl World {
    async fn start(name: &str) -> World {
        let moto = Moto::start().await;
        let slack = SlackFake::start().await;
        let queues = create_queues(&moto, &format!("runbook-{name}"), 30).await;
        let sns_capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
        World {
            moto,
            slack,
            queues,
            sns_capture,
            codepipeline: CodePipelineFake::start().await,
            cloudwatch: CloudWatchFake::start().await,
        }
    }

    /// The daemon with the fakes' endpoints, `environments` as its `[[environments]]`.
    async fn daemon(&self, name: &str, watcher: bool, environments: &str) -> Daemon {
        let env = fake_endpoints(&self.codepipeline, &self.cloudwatch);
        let setup = Setup {
            env: &env,
            watcher,
            environments,
            ..Setup::default()
        };
        Daemon::launch(
            &self.moto,
            &self.slack,
            &self.queues.url,
            temp_dir(&format!("runbook-{name}")),
            &setup,
        )
        .await
    }

    async fn send(&self, body: &str) {
        self.moto
            .sqs()
            .send_message()
            .queue_url(&self.queues.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// The text of every accepted Slack post, in order.
    fn posts(&self) -> Vec<String> {
        self.slack
            .accepted()
            .iter()
            .filter_map(|p| p.text().map(String::from))
            .collect()
    }

    /// Waits for a post that contains every one of `needles`; panics with all posts and the
    /// daemon's log after `limit`.
    async fn post_with(&self, daemon: &Daemon, needles: &[&str], limit: Duration) -> String {
        let found = |posts: Vec<String>| {
            posts
                .into_iter()
                .find(|t| needles.iter().all(|n| t.contains(n)))
        };
        let arrived = eventually(limit, || async { found(self.posts()).is_some() }).await;
        assert!(
            arrived,
            "no post with {needles:?} within {limit:?}; posts:\n{}\n--- daemon log:\n{}",
            self.posts().join("\n-----\n"),
            daemon.log()
        );
        found(self.posts()).unwrap()
    }

    /// Reads (and deletes) SNS messages from the capture queue until `n` arrived or `limit`
    /// passed; returns them all.
    async fn sns_messages(&self, n: usize, limit: Duration) -> Vec<Value> {
        let sqs = self.moto.sqs();
        let mut out: Vec<Value> = Vec::new();
        let start = tokio::time::Instant::now();
        while out.len() < n && start.elapsed() < limit {
            let received = sqs
                .receive_message()
                .queue_url(&self.sns_capture)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in received.messages.unwrap_or_default() {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(&self.sns_capture)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }
}

/// The pipeline's own JSON `message` as its SNS `topic` delivers it to the queue.
fn sns_notification(topic: &str, message: &Value, id: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": format!("arn:aws:sns:us-east-1:123456789012:{topic}"),
        "Subject": "Rollback",
        "Message": message.to_string(),
        "Timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
    })
    .to_string()
}

fn at_minutes_ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(minutes)
}

/// A health endpoint whose status the test sets (the runbook's `curl -f .../health`).
struct Health {
    status: Arc<AtomicU16>,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Health {
    async fn start(status: u16) -> Health {
        let shared = Arc::new(AtomicU16::new(status));
        let answer = Arc::clone(&shared);
        let router = axum::Router::new().route(
            "/health",
            axum::routing::get(move || {
                let answer = Arc::clone(&answer);
                async move {
                    let code = answer.load(Ordering::SeqCst);
                    let status = axum::http::StatusCode::from_u16(code).unwrap();
                    (status, format!("{{\"status\":{code}}}"))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Health {
            status: shared,
            url,
            _stop: stop,
        }
    }

    fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

async fn set_deployment_status(moto: &Moto, id: &str, status: &str) {
    moto.dynamodb()
        .update_item()
        .table_name(DEPLOYMENTS_TABLE)
        .key("deploymentId", AttributeValue::S(id.to_string()))
        .update_expression("SET #s = :s, rollbackReason = :r, rollbackLevel = :l")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", AttributeValue::S(status.to_string()))
        .expression_attribute_values(
            ":r",
            AttributeValue::S("Alarm kiro-pipeline-production-api-5xx-errors in ALARM".into()),
        )
        .expression_attribute_values(":l", AttributeValue::S("full".into()))
        .send()
        .await
        .unwrap();
}

const APP_ALARM: &str = "kiro-pipeline-production-api-5xx-errors";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_2_rollback_post_shows_record_alarm_and_health_then_resolves_when_all_agree() {
    let w = World::start("rollback").await;
    let health = Health::start(503).await;

    // The rollback Lambda's log, the alarm that triggered it, the deployment records.
    let lambda_log: Vec<String> = [
        "START RequestId: 5f2c8e1a-7d3b-4c9e-9a41-0f6b2d8e3c71 Version: $LATEST",
        "Rollback initiated for production: 9e1d4b7 -> 1a2b3c4 (level full)",
        "Triggered by alarm kiro-pipeline-production-api-5xx-errors (ALARM)",
        "Redeploying artifact s3://kiro-pipeline-production-artifacts/1a2b3c4.zip",
    ]
    .map(String::from)
    .to_vec();
    put_log_lines(
        &w.moto,
        "/aws/lambda/kiro-pipeline-production-rollback",
        "2026/01/27/[$LATEST]5f2c8e1a",
        &lambda_log,
        Utc::now().timestamp_millis() - 90_000,
    )
    .await;
    w.cloudwatch.put_alarm(
        AlarmModel::new(APP_ALARM, "KiroWorker", "5XXError", at_minutes_ago(5)).in_state(
            "ALARM",
            "Threshold Crossed: 3 datapoints [41.0, 38.0, 52.0] were greater than the threshold (5.0)",
        ),
    );
    create_deployments_table(&w.moto).await;
    // Newest first by time: in_progress (the bad deploy), rolled_back, failed, succeeded. The
    // index sorts by status text, so the runbook's `--scan-index-forward false --limit 1` would
    // name the three-day-old `succeeded` record.
    let known_good = put_deployment(
        &w.moto,
        at_minutes_ago(3 * 24 * 60),
        "1a2b3c4",
        "succeeded",
        "fix: drain queue on shutdown",
    )
    .await;
    let old_failed = put_deployment(
        &w.moto,
        at_minutes_ago(2 * 24 * 60),
        "5d6e7f8",
        "failed",
        "chore: bump aws-sdk",
    )
    .await;
    let old_rollback = put_deployment(
        &w.moto,
        at_minutes_ago(24 * 60),
        "0c0ffee",
        "rolled_back",
        "feat: batch uploads",
    )
    .await;
    let current = put_deployment(
        &w.moto,
        at_minutes_ago(20),
        "9e1d4b7",
        "in_progress",
        "feat: retry worker jobs",
    )
    .await;

    let environments = format!("{ENVIRONMENTS}health_url = \"{}\"\n", health.url);
    let daemon = w.daemon("rollback", false, &environments).await;

    let initiated = json!({
        "event": "rollback_initiated",
        "environment": "production",
        "currentVersion": "9e1d4b7",
        "targetVersion": "1a2b3c4",
        "reason": "Alarm kiro-pipeline-production-api-5xx-errors in ALARM",
        "level": "full",
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    w.send(&sns_notification(
        "kiro-pipeline-production-rollbacks",
        &initiated,
        "sns-rollback-initiated",
    ))
    .await;

    let first = w.slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    let text = first[0].text().unwrap().to_string();
    for needle in [
        "HIGH",
        "production",
        "Automated rollback triggered",
        "Incident 2",
        // What the pipeline's message said: level, versions, reason.
        "Rollback (level full): 9e1d4b7 → 1a2b3c4: Alarm kiro-pipeline-production-api-5xx-errors in ALARM",
        // The newest record by startTime, not the first in index order, with its commit.
        &format!("Deployment: latest deployment {current} is in_progress (version 9e1d4b7)"),
        "commit \"feat: retry worker jobs\" by dev@example.com",
        // The alarm in ALARM now, and the health check.
        "1 alarm(s) in ALARM: kiro-pipeline-production-api-5xx-errors",
        "HTTP 503",
        // The rollback Lambda's own log.
        "Redeploying artifact s3://kiro-pipeline-production-artifacts/1a2b3c4.zip",
    ] {
        assert!(
            text.contains(needle),
            "first post lacks {needle:?}:\n{text}\n--- log:\n{}",
            daemon.log()
        );
    }
    for other in [&known_good, &old_failed, &old_rollback] {
        assert!(!text.contains(other.as_str()), "names {other}:\n{text}");
    }
    assert_eq!(first[0].channel(), Some("#kiro-production"));
    assert!(
        !w.posts().iter().any(|t| t.contains("✅ Resolved")),
        "resolved while the rollback is still running"
    );

    // The rollback finishes: record rolled back, alarm OK, health 200; the Lambda says so.
    set_deployment_status(&w.moto, &current, "rolled_back").await;
    w.cloudwatch.set_state(
        APP_ALARM,
        "OK",
        "Threshold Crossed: 3 datapoints were not greater than the threshold (5.0)",
    );
    health.set(200);
    let completed = json!({
        "event": "rollback_completed",
        "environment": "production",
        "currentVersion": "1a2b3c4",
        "targetVersion": "1a2b3c4",
        "level": "full",
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    w.send(&sns_notification(
        "kiro-pipeline-production-rollbacks",
        &completed,
        "sns-rollback-completed",
    ))
    .await;
    let resolved = w
        .post_with(
            &daemon,
            &[
                "✅ Resolved",
                "rollback completed, all alarms OK, health check passes",
            ],
            Duration::from_secs(20),
        )
        .await;
    assert!(
        resolved.contains("Automated rollback triggered"),
        "{resolved}"
    );

    // SNS carried the same incident.
    let sns = w.sns_messages(2, Duration::from_secs(15)).await;
    assert!(
        sns.iter()
            .all(|m| m["MessageAttributes"]["incident_type"]["Value"] == "rollback_triggered"),
        "{sns:#?}"
    );
    assert!(
        sns.iter()
            .any(|m| m["MessageAttributes"]["incident_key"]["Value"]
                == "rollback_triggered/production/9e1d4b7"),
        "{sns:#?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            depth(&w.moto, &w.queues.url).await == 0
        })
        .await
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

const SLOW_EXECUTION: &str = "5a1e7c00-3d2b-4f6a-9c8e-70min0000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_3_watcher_sees_an_execution_running_70_minutes_and_posts_it() {
    let w = World::start("duration").await;
    let started = at_minutes_ago(70);
    let mut execution = ExecutionModel::new(SLOW_EXECUTION, "InProgress", started);
    execution.revisions.push(RevisionModel {
        action_name: "Source".into(),
        artifact_name: "SourceArtifact".into(),
        revision_id: "7b3e9d2a1c0f".into(),
        revision_summary: Some("perf: parallel integration tests".into()),
        revision_url: None,
        created: started,
    });
    let deploying = at_minutes_ago(48);
    let run = |stage: &str, action: &str, status: &str, start: i64, end: i64, n: u32| {
        ActionExecutionModel {
            pipeline_execution_id: SLOW_EXECUTION.into(),
            action_execution_id: format!("ae-{n}"),
            stage_name: stage.into(),
            action_name: action.into(),
            status: status.into(),
            start_time: at_minutes_ago(start),
            last_update_time: at_minutes_ago(end),
            category: "Build".into(),
            provider: "CodeBuild".into(),
            ..ActionExecutionModel::default()
        }
    };
    w.codepipeline.set_pipeline(
        PipelineModel::new("kiro-pipeline-production", at_minutes_ago(600))
            .with_stage(
                StageModel::new("Source")
                    .with_action(ActionModel::new("Source", "Succeeded", at_minutes_ago(69)))
                    .ran(SLOW_EXECUTION, "Succeeded"),
            )
            .with_stage(
                StageModel::new("Build")
                    .with_action(ActionModel::new(
                        "BuildAndTest",
                        "Succeeded",
                        at_minutes_ago(50),
                    ))
                    .ran(SLOW_EXECUTION, "Succeeded"),
            )
            .with_stage(
                StageModel::new("ProductionEnv")
                    .with_action(ActionModel::new(
                        "DeployProduction",
                        "InProgress",
                        deploying,
                    ))
                    .ran(SLOW_EXECUTION, "InProgress"),
            )
            .with_execution(execution)
            .with_action_execution(run("Source", "Source", "Succeeded", 70, 69, 1))
            .with_action_execution(run("Build", "BuildAndTest", "Succeeded", 69, 50, 2))
            .with_action_execution(run(
                "ProductionEnv",
                "DeployProduction",
                "InProgress",
                48,
                48,
                3,
            )),
    );
    let daemon = w.daemon("duration", true, ENVIRONMENTS).await;

    let text = w
        .post_with(
            &daemon,
            &["Deployment duration exceeded"],
            Duration::from_secs(25),
        )
        .await;
    for needle in [
        "MEDIUM",
        "production",
        "kiro-pipeline-production",
        "Incident 3",
        // The execution: short id, start, the commit behind it, the full key.
        "Execution 5a1e7c00",
        &format!("started {}", started.format("%H:%M UTC")),
        "7b3e9d2",
        "perf: parallel integration tests",
        "deployment_duration_exceeded/kiro-pipeline-production/5a1e7c00-3d2b-4f6a-9c8e-70min0000001",
        // How long, against which threshold; the slowest stage; the action that looks stuck.
        "execution running 70 min (threshold 60 min)",
        "slowest stage ProductionEnv: 48 min and running",
        "ProductionEnv › DeployProduction looks stuck (no progress for 48 min)",
        "Source: 1 min · Build: 19 min · ProductionEnv: 48 min",
    ] {
        assert!(
            text.contains(needle),
            "post lacks {needle:?}:\n{text}\n--- log:\n{}",
            daemon.log()
        );
    }
    assert!(!text.contains("Failed:"), "nothing failed:\n{text}");
    // The next polls see the same execution: still one incident, one first post.
    w.codepipeline
        .wait_for_calls("ListPipelineExecutions", 4, Duration::from_secs(25))
        .await;
    let opened = w
        .posts()
        .iter()
        .filter(|t| t.contains("Next (Incident 3"))
        .count();
    assert_eq!(opened, 1, "{:#?}", w.posts());
    assert_eq!(daemon.incident_count(), 1);
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_4_failure_whose_log_shows_low_coverage_becomes_a_coverage_incident() {
    let w = World::start("coverage").await;
    seed_failed_build_with(
        &w.codepipeline,
        &w.moto,
        "jest-coverage.log",
        "npm run test:coverage",
    )
    .await;
    let daemon = w.daemon("coverage", false, ENVIRONMENTS).await;
    w.send(&kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-coverage-failed",
        |_| {},
    ))
    .await;

    let refined = w
        .post_with(
            &daemon,
            &["Diagnosis changed the incident type"],
            Duration::from_secs(25),
        )
        .await;
    for needle in [
        "Test coverage below threshold",
        "coverage 72.5 % under the 80 % threshold",
        "Runbook now: Incident 4: Test Coverage Below Threshold",
    ] {
        assert!(
            refined.contains(needle),
            "refinement post lacks {needle:?}:\n{refined}"
        );
    }
    // Every post of the incident, first one included, carries the figure and the threshold;
    // the first names the runbook section the on-call now follows.
    let posts = w.posts();
    let first = &posts[0];
    for needle in [
        "Test coverage below threshold",
        "Next (Incident 4",
        "Failed: Build › BuildAndTest",
        "npm run test:coverage",
        // The figure against the threshold, and the log lines that show it.
        "Root cause: coverage 72.5 % is under the 80 % threshold",
        "All files |   74.12 |    61.50 |   70.00 |   72.48 |",
        "coverage threshold for lines (80%) not met: 72.48%",
        "Commit: 9e1d4b7",
        "pipeline_execution_failure/kiro-pipeline-production/12345678-1234-5678-abcd-12345678abcd",
    ] {
        assert!(
            first.contains(needle),
            "first post lacks {needle:?}:\n{first}\n--- all posts:\n{}",
            posts.join("\n-----\n")
        );
    }
    assert!(!first.contains("Next (Incident 1"), "{first}");
    // One first post, and no escalation: the coverage policy notifies L1 at once, like the
    // failure it was.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = w.posts();
    assert!(
        !posts.iter().any(|t| t.contains("Escalated")),
        "{}",
        posts.join("\n-----\n")
    );
    assert_eq!(
        posts.iter().filter(|t| t.contains("Next (")).count(),
        1,
        "{}",
        posts.join("\n-----\n")
    );

    let sns = w.sns_messages(2, Duration::from_secs(15)).await;
    assert!(
        sns.iter()
            .any(|m| m["MessageAttributes"]["incident_type"]["Value"]
                == "test_coverage_below_threshold"),
        "{sns:#?}"
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

/// The GitHub token the build printed (security-scan.log line 13).
const LEAKED_TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_5_security_findings_are_listed_l2_is_paged_at_once_and_the_token_never_leaks() {
    let w = World::start("security").await;
    seed_failed_build_with(
        &w.codepipeline,
        &w.moto,
        "security-scan.log",
        "npm run security",
    )
    .await;
    let daemon = w.daemon("security", false, ENVIRONMENTS).await;
    w.send(&kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-security-failed",
        |_| {},
    ))
    .await;

    let escalated = w
        .post_with(&daemon, &["⏫ Escalated"], Duration::from_secs(25))
        .await;
    for needle in [
        "Security scan failed",
        "to L2 (DevOps team lead, devops@example.com)",
        "security_scan_failure policy notifies L2 at once",
    ] {
        assert!(
            escalated.contains(needle),
            "escalation lacks {needle:?}:\n{escalated}"
        );
    }
    let posts = w.posts();
    let first = &posts[0];
    for needle in [
        "HIGH",
        "Security scan failed",
        "Next (Incident 5",
        "S3_BUCKET_ENCRYPTION_ENABLED",
        "IAM_NO_WILDCARD_ACTIONS",
        "npm audit: 1 critical, 1 high, 1 moderate, 1 low",
        "Failed: Build › BuildAndTest",
        "npm run security",
    ] {
        assert!(
            first.contains(needle),
            "first post lacks {needle:?}:\n{first}\n--- all posts:\n{}",
            posts.join("\n-----\n")
        );
    }
    assert_eq!(
        first.matches("cfn-guard rules failing").count(),
        1,
        "the findings are listed once:\n{first}"
    );
    assert!(
        posts
            .iter()
            .any(|t| t.contains("Diagnosis changed the incident type") && t.contains("CRITICAL")),
        "{}",
        posts.join("\n-----\n")
    );

    // Opened, refined, escalated: three SNS messages too. Nothing anywhere carries the token.
    let mut sns = w.sns_messages(3, Duration::from_secs(15)).await;
    assert!(sns.len() >= 3, "{sns:#?}");
    assert!(
        sns.iter()
            .any(|m| m["MessageAttributes"]["notification"]["Value"] == "escalated"),
        "{sns:#?}"
    );
    // Anything sent after those (a late follow-up) is checked too.
    sns.extend(w.sns_messages(usize::MAX, Duration::from_secs(2)).await);
    for post in w.slack.posts() {
        let body = post.body.to_string();
        assert!(
            !body.contains(LEAKED_TOKEN),
            "token in a Slack post: {body}"
        );
        assert!(
            !body.contains("ghp_"),
            "token prefix in a Slack post: {body}"
        );
    }
    for message in &sns {
        let body = message.to_string();
        assert!(!body.contains(LEAKED_TOKEN), "token in SNS: {body}");
    }
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(!log.contains(LEAKED_TOKEN), "token in the daemon's log");
}

pub(crate) const PRODUCTION_EXECUTION: &str = "a9f0c1d2-0000-4e5f-8a7b-approval0001";
const STAGING_EXECUTION: &str = "c3d4e5f6-0000-4a1b-9c2d-staging00001";

/// The approval action's event, `state` STARTED or SUCCEEDED.
pub(crate) fn approval_event(state: &str, id: &str) -> String {
    let fixture = if state == "STARTED" {
        "codepipeline-action-started.json"
    } else {
        "codepipeline-action-succeeded.json"
    };
    kiro_event(fixture, id, |e| {
        let detail = &mut e["detail"];
        detail["execution-id"] = json!(PRODUCTION_EXECUTION);
        detail["stage"] = json!("ProductionEnv");
        detail["action"] = json!("ApproveProduction");
        detail["state"] = json!(state);
        detail["type"] =
            json!({"owner": "AWS", "category": "Approval", "provider": "Manual", "version": "1"});
        if let Some(d) = detail.as_object_mut() {
            d.remove("execution-result");
            d.remove("output-artifacts");
            d.remove("input-artifacts");
        }
        e["time"] = json!(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_2_approval_waiting_shows_the_staging_check_and_resolves_when_approved() {
    let w = World::start("approval").await;
    // Staging: its last execution went through, nothing in ALARM.
    let staged = at_minutes_ago(50);
    let mut staging_run = ExecutionModel::new(STAGING_EXECUTION, "Succeeded", staged);
    let staging_done = at_minutes_ago(25);
    staging_run.last_update_time = staging_done;
    w.codepipeline.set_pipeline(
        ["Source", "Build", "StagingEnv"]
            .into_iter()
            .fold(
                PipelineModel::new("kiro-pipeline-staging", at_minutes_ago(600)),
                |p, stage| {
                    p.with_stage(
                        StageModel::new(stage)
                            .with_action(ActionModel::new(stage, "Succeeded", at_minutes_ago(25)))
                            .ran(STAGING_EXECUTION, "Succeeded"),
                    )
                },
            )
            .with_execution(staging_run),
    );
    // Production: waiting at ProductionEnv › ApproveProduction.
    let mut production_run =
        ExecutionModel::new(PRODUCTION_EXECUTION, "InProgress", at_minutes_ago(20));
    production_run.revisions.push(RevisionModel {
        action_name: "Source".into(),
        artifact_name: "SourceArtifact".into(),
        revision_id: "4f2a9e1b7c3d".into(),
        revision_summary: Some("feat: per-tenant rate limits".into()),
        revision_url: None,
        created: at_minutes_ago(21),
    });
    let mut approve = ActionModel::new("ApproveProduction", "InProgress", at_minutes_ago(2));
    if let Some(latest) = approve.latest.as_mut() {
        latest.token = Some("0f1e2d3c-approval-token".into());
    }
    w.codepipeline.set_pipeline(
        PipelineModel::new("kiro-pipeline-production", at_minutes_ago(600))
            .with_stage(
                StageModel::new("Source")
                    .with_action(ActionModel::new("Source", "Succeeded", at_minutes_ago(19)))
                    .ran(PRODUCTION_EXECUTION, "Succeeded"),
            )
            .with_stage(
                StageModel::new("ProductionEnv")
                    .with_action(approve)
                    .ran(PRODUCTION_EXECUTION, "InProgress"),
            )
            .with_execution(production_run),
    );
    w.cloudwatch.put_alarm(
        AlarmModel::new(
            "kiro-pipeline-staging-api-5xx-errors",
            "KiroWorker",
            "5XXError",
            at_minutes_ago(60),
        )
        .in_state(
            "OK",
            "Threshold Crossed: no datapoints were greater than the threshold",
        ),
    );
    let daemon = w.daemon("approval", false, ENVIRONMENTS).await;

    w.send(&approval_event("STARTED", "evt-approval-started"))
        .await;
    let text = w
        .post_with(
            &daemon,
            &["Production approval waiting"],
            Duration::from_secs(20),
        )
        .await;
    for needle in [
        "INFO",
        "production",
        "Task 2",
        "Waiting: ProductionEnv › ApproveProduction",
        "Execution a9f0c1d2",
        "Commit: 4f2a9e1 \"feat: per-tenant rate limits\"",
        // The runbook's "verify staging deployment succeeded": its last run and its alarms.
        &format!(
            "Staging check: staging looks healthy: last execution c3d4e5f6 Succeeded at {}; 0 alarm(s) in ALARM",
            staging_done.format("%H:%M UTC")
        ),
        "Source: Succeeded · Build: Succeeded · StagingEnv: Succeeded",
        "Alarms now: no alarm in ALARM",
    ] {
        assert!(
            text.contains(needle),
            "post lacks {needle:?}:\n{text}\n--- log:\n{}",
            daemon.log()
        );
    }
    assert!(
        !text.contains("Failed:"),
        "an approval is not a failure:\n{text}"
    );
    assert!(!text.contains("⚠"), "a diagnostic failed:\n{text}");

    w.send(&approval_event("SUCCEEDED", "evt-approval-succeeded"))
        .await;
    let resolved = w
        .post_with(
            &daemon,
            &["✅ Resolved", "approved"],
            Duration::from_secs(15),
        )
        .await;
    assert!(
        resolved.contains("Production approval waiting"),
        "{resolved}"
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

// ---- Incident 1 step 2 against the last green build ---------------------------------------

/// A CodeBuild run of Build › BuildAndTest in ListActionExecutions.
fn build_run(
    execution: &str,
    status: &str,
    build: &str,
    at: DateTime<Utc>,
) -> ActionExecutionModel {
    ActionExecutionModel {
        pipeline_execution_id: execution.into(),
        action_execution_id: format!("act-{build}"),
        stage_name: "Build".into(),
        action_name: "BuildAndTest".into(),
        status: status.into(),
        start_time: at,
        last_update_time: at + chrono::Duration::seconds(30),
        category: "Build".into(),
        provider: "CodeBuild".into(),
        external_execution_id: Some(format!("kiro-pipeline-production-build:{build}")),
        ..Default::default()
    }
}

/// The failed build of `seed_failed_build` ("build-1") with its own run recorded, and `green`
/// (when given) as an earlier succeeded run whose log is `green_lines`.
async fn seed_with_green(w: &World, green: Option<&[&str]>) {
    seed_failed_build_with(
        &w.codepipeline,
        &w.moto,
        "jest-test-failure.log",
        "npm test",
    )
    .await;
    let now = Utc::now();
    let earlier = now - chrono::Duration::hours(20);
    w.codepipeline
        .update_pipeline("kiro-pipeline-production", |p| {
            p.action_executions.push(build_run(
                crate::support::EXECUTION,
                "Failed",
                "build-1",
                now - chrono::Duration::minutes(2),
            ));
            if green.is_some() {
                p.action_executions
                    .push(build_run("green-exec", "Succeeded", "green-1", earlier));
            }
        });
    if let Some(lines) = green {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        put_log_lines(
            &w.moto,
            "/aws/codebuild/kiro-pipeline-production-build",
            "green-1",
            &lines,
            earlier.timestamp_millis() + 1_000,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_1_excerpt_prefers_what_is_new_since_the_last_green_build() {
    let w = World::start("green-diff").await;
    // The green build printed the same set-up and passing-suite lines.
    seed_with_green(
        &w,
        Some(&[
            "> kiro-codebuild-worker@1.4.0 test",
            "> jest --coverage",
            "PASS src/api/handler.test.ts",
            "Tests:       142 passed, 142 total",
        ]),
    )
    .await;
    // The deployments table knows who wrote the commit (CodePipeline's revisions do not).
    create_deployments_table(&w.moto).await;
    put_deployment(
        &w.moto,
        Utc::now(),
        "9e1d4b7c0ffee",
        "failed",
        "feat: retry worker jobs",
    )
    .await;
    let daemon = w.daemon("green-diff", false, ENVIRONMENTS).await;
    w.send(&kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-green-diff",
        |_| {},
    ))
    .await;
    let post = w
        .post_with(
            &daemon,
            &["Root cause: test failure"],
            Duration::from_secs(25),
        )
        .await;
    assert!(
        post.contains("compared with the last green build kiro-pipeline-production-build:green-1"),
        "{post}"
    );
    // The failed build's own stream was read (named by ListActionExecutions), not the group.
    let excerpt = post.split("```").nth(1).unwrap_or_default();
    assert!(
        excerpt.starts_with("FAIL src/worker/queue.test.ts"),
        "{excerpt}"
    );
    assert!(
        !excerpt.contains("PASS src/api/handler.test.ts"),
        "shared line shown in the post: {excerpt}"
    );
    assert!(w.codepipeline.call_count("ListActionExecutions") >= 1);
    assert!(
        post.contains("Commit: 9e1d4b7 \"feat: retry worker jobs\" by dev@example.com"),
        "the commit reads once, with its author: {post}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_1_without_a_green_build_or_when_the_lookup_fails_says_so_and_still_explains() {
    let w = World::start("no-green").await;
    seed_with_green(&w, None).await;
    let daemon = w.daemon("no-green", false, ENVIRONMENTS).await;
    w.send(&kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-no-green",
        |_| {},
    ))
    .await;
    let post = w
        .post_with(
            &daemon,
            &["Root cause: test failure"],
            Duration::from_secs(25),
        )
        .await;
    assert!(
        post.contains(
            "not compared with a green build: no earlier green build of Build › BuildAndTest"
        ),
        "{post}"
    );
    assert!(post.contains("FAIL src/worker/queue.test.ts"), "{post}");
    drop(daemon);

    // The lookup itself fails: the excerpt is still there, and the post says why it is not
    // compared.
    let w = World::start("green-fails").await;
    seed_with_green(&w, Some(&["PASS src/api/handler.test.ts"])).await;
    w.codepipeline.fail_next(
        "ListActionExecutions",
        100,
        pipeline_responder_e2e::InjectedError::new(400, "ValidationException", "injected"),
    );
    let daemon = w.daemon("green-fails", false, ENVIRONMENTS).await;
    w.send(&kiro_event(
        "codepipeline-pipeline-failed.json",
        "evt-green-fails",
        |_| {},
    ))
    .await;
    let post = w
        .post_with(
            &daemon,
            &["Root cause: test failure"],
            Duration::from_secs(25),
        )
        .await;
    assert!(
        post.contains("not compared with a green build: its build runs could not be listed: codepipeline ListActionExecutions failed (ValidationException)"),
        "{post}"
    );
    assert!(post.contains("FAIL src/worker/queue.test.ts"), "{post}");
}
