//! The real `pipeline-responder run` against moto (SQS, SNS) and the Slack fake.
#![allow(clippy::unwrap_used)]

use aws_sdk_sqs::types::QueueAttributeName;
use pipeline_responder_e2e::{
    ActionModel, AlarmModel, CloudWatchFake, CodePipelineFake, ErrorDetails, ExecutionModel, Moto,
    PipelineModel, RevisionModel, SlackFake, StageModel,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const ACCOUNT: &str = "123456789012";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/events");

/// The daemon binary built by the same `cargo test` run (it sits next to the test's `deps/`).
fn daemon_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("pipeline-responder");
    assert!(
        bin.exists(),
        "{} not built; run `cargo build -p pipeline-responder` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// A queue with its dead-letter queue, as the deploy kit creates them.
struct Queues {
    url: String,
    dlq_url: String,
}

async fn create_queues(moto: &Moto, name: &str, visibility_secs: u32) -> Queues {
    let sqs = moto.sqs();
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url.unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        )
        .send()
        .await
        .unwrap();
    Queues {
        url: queue.queue_url.unwrap(),
        dlq_url,
    }
}

/// An SNS topic whose messages land in a queue the test reads.
async fn topic_with_capture(moto: &Moto, topic: &str) -> String {
    let sns = moto.sns();
    let sqs = moto.sqs();
    let arn = sns
        .create_topic()
        .name(topic)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let capture = sqs
        .create_queue()
        .queue_name(format!("{topic}-capture"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let capture_arn = sqs
        .get_queue_attributes()
        .queue_url(&capture)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(capture_arn)
        .send()
        .await
        .unwrap();
    capture
}

/// Messages currently in a queue (visible and in flight).
async fn depth(moto: &Moto, url: &str) -> u64 {
    let attrs = moto
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// Polls `check` every 100 ms until it is true or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check().await
}

/// A running daemon with its own state directory.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    async fn start(moto: &Moto, slack: &SlackFake, queue_url: &str, dir: PathBuf) -> Daemon {
        Self::start_with(moto, slack, queue_url, dir, &[], false).await
    }

    /// Starts the daemon; `env` adds variables such as per-service endpoints of the fakes.
    async fn start_with(
        moto: &Moto,
        slack: &SlackFake,
        queue_url: &str,
        dir: PathBuf,
        env: &[(&str, String)],
        watcher: bool,
    ) -> Daemon {
        Self::start_config(moto, slack, queue_url, dir, env, watcher, "").await
    }

    /// Starts the daemon with `extra` appended to the `[daemon]` section.
    async fn start_config(
        moto: &Moto,
        slack: &SlackFake,
        queue_url: &str,
        dir: PathBuf,
        env: &[(&str, String)],
        watcher: bool,
        extra: &str,
    ) -> Daemon {
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            r##"
[daemon]
shutdown_grace_secs = 10
{extra}
[aws]
region = "us-east-1"
account_id = "{ACCOUNT}"
[http]
listen = "127.0.0.1:0"
[store]
path = "{state}"
[sources.sqs]
queue_url = "{queue_url}"
wait_time_secs = 1
visibility_timeout_secs = 2
[sources.watcher]
enabled = {watcher}
interval_secs = 10
jitter_secs = 0
[notifiers.slack]
webhook_url = "${{TEST_SLACK_WEBHOOK}}"
[environment_defaults]
resource_prefix = "kiro-pipeline-{{env}}"
slack_channel = "#kiro-{{env}}"
[[environments]]
name = "staging"
[[environments]]
name = "production"
"##,
            state = dir.join("state.db").display(),
        );
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let child = Command::new(daemon_binary())
            .args(["--config", config_path.to_str().unwrap(), "run"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("TEST_SLACK_WEBHOOK", slack.webhook_url())
            .env("RUST_LOG", "info,pipeline_responder=debug")
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Daemon { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up.
    async fn kill9(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.log()
    }

    /// Incidents in the daemon's store.
    fn incident_count(&self) -> i64 {
        // Read-only: never create the file before the daemon does; 0 until its schema exists.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        rusqlite::Connection::open_with_flags(self.dir.join("state.db"), flags)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0)))
            .unwrap_or(0)
    }

    /// SIGTERM, then the exit status and how long it took.
    async fn terminate(mut self) -> (std::process::ExitStatus, Duration, String) {
        let pid = self.child.id().unwrap();
        let start = tokio::time::Instant::now();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        (status, start.elapsed(), self.log())
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pr-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A shared fixture rewritten to name the runbook's production pipeline.
fn kiro_event(fixture: &str, id: &str, patch: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{fixture}")).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["id"] = json!(id);
    event["detail"]["pipeline"] = json!("kiro-pipeline-production");
    event["resources"] =
        json!(["arn:aws:codepipeline:us-east-1:123456789012:kiro-pipeline-production"]);
    patch(&mut event);
    event.to_string()
}

fn sns_envelope(message: &str, id: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:kiro-pipeline-production-pipeline-events",
        "Message": message,
        "Timestamp": "2026-01-27T10:04:16.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
    })
    .to_string()
}

const EXECUTION: &str = "12345678-1234-5678-abcd-12345678abcd";

/// The production pipeline failing at Build › BuildAndTest, and that build's log in CloudWatch
/// Logs (moto), as the runbook's Incident 1 finds them.
async fn seed_failed_build(codepipeline: &CodePipelineFake, moto: &Moto) {
    let now = chrono::Utc::now();
    let mut failed = ActionModel::new("BuildAndTest", "Failed", now);
    if let Some(latest) = failed.latest.as_mut() {
        latest.summary =
            Some("Error while executing command: npm test. Reason: exit status 1".into());
        latest.external_execution_url =
            Some("https://console.aws.amazon.com/codesuite/codebuild/projects/x".into());
        latest.error = Some(ErrorDetails {
            code: "JobFailed".into(),
            message: "Error while executing command: npm test. Reason: exit status 1".into(),
        });
    }
    let mut execution =
        ExecutionModel::new(EXECUTION, "Failed", now - chrono::Duration::minutes(3));
    execution.revisions.push(RevisionModel {
        action_name: "Source".into(),
        artifact_name: "SourceArtifact".into(),
        revision_id: "9e1d4b7c0ffee".into(),
        revision_summary: Some("feat: retry worker jobs".into()),
        revision_url: Some(
            "https://github.com/your-org/kiro-codebuild-worker/commit/9e1d4b7c0ffee".into(),
        ),
        created: now,
    });
    codepipeline.set_pipeline(
        PipelineModel::new("kiro-pipeline-production", now)
            .with_stage(
                StageModel::new("Source")
                    .with_action(ActionModel::new("Source", "Succeeded", now))
                    .ran(EXECUTION, "Succeeded"),
            )
            .with_stage(
                StageModel::new("Build")
                    .with_action(failed)
                    .ran(EXECUTION, "Failed"),
            )
            .with_execution(execution),
    );
    let logs = moto.logs();
    let group = "/aws/codebuild/kiro-pipeline-production-build";
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("build-1")
        .send()
        .await
        .unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/core/tests/data/logs/jest-test-failure.log"
    ))
    .unwrap();
    let base = now.timestamp_millis() - 60_000;
    let events: Vec<_> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(base + i as i64)
                .message(line)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("build-1")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

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
    let endpoints = [
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE",
            codepipeline.endpoint().to_string(),
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cloudwatch.endpoint().to_string(),
        ),
    ];
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
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body(&action_failed)
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body(sns_envelope(&pipeline_failed, "sns-msg-1"))
        .send()
        .await
        .unwrap();

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
        "Commit: commit 9e1d4b7 \"feat: retry worker jobs\"",
        "Root cause: test failure — 2 failing test(s) (first: WorkerQueue › retries twice)",
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
    let sqs = moto.sqs();
    let bad = [
        "not json at all".to_string(),
        "{}".to_string(),
        json!({"detail-type": "CodePipeline Pipeline Execution State Change", "time": "2026-01-27T10:00:00Z", "id": "x", "detail": {"state": "FAILED"}}).to_string(),
        "[".repeat(5000),
        json!({"Type": "Notification", "MessageId": "m", "Message": "plain text"}).to_string(),
    ];
    for body in &bad {
        sqs.send_message()
            .queue_url(&queues.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let good = kiro_event("codepipeline-pipeline-failed.json", "evt-good", |e| {
        e["detail"]["execution-id"] = json!("after-the-bad-ones");
    });
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body(&good)
        .send()
        .await
        .unwrap();

    let posts = slack.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 1, "{}", daemon.log());
    assert!(
        posts[0].text().unwrap().contains("after-th"),
        "{:?}",
        posts[0].text()
    );
    let moved = eventually(Duration::from_secs(30), || async {
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
    let endpoints = [
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE",
            codepipeline.endpoint().to_string(),
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cloudwatch.endpoint().to_string(),
        ),
    ];
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
    let sqs = moto.sqs();
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body(&pipeline_failed)
        .send()
        .await
        .unwrap();
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
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body(&succeeded)
        .send()
        .await
        .unwrap();
    let resolved = eventually(Duration::from_secs(15), || async {
        slack
            .accepted()
            .iter()
            .any(|p| p.text().is_some_and(|t| t.contains("✅ Resolved")))
    })
    .await;
    assert!(resolved, "{}", daemon.log());
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

/// `n` FAILED events of distinct executions of the production pipeline, sent in batches of 10.
async fn send_failures(moto: &Moto, queue_url: &str, n: usize, tag: &str) {
    let sqs = moto.sqs();
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
    for (chunk_index, chunk) in bodies.chunks(10).enumerate() {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{chunk_index}-{i}"))
                    .message_body(body)
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
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
    let daemon =
        Daemon::start_config(&moto, &slack, &queues.url, dir.clone(), &[], false, fast).await;
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

    let daemon = Daemon::start_config(&moto, &slack, &queues.url, dir, &[], false, fast).await;
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
    let daemon =
        Daemon::start_config(&moto, &slack, &queues.url, dir.clone(), &[], false, fast).await;
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

    let daemon = Daemon::start_config(&moto, &slack, &queues.url, dir, &[], false, fast).await;
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
