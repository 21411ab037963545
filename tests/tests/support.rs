//! Shared helpers of the end-to-end tests: queues, topics and logs in moto, the fakes' seed data,
//! and the real `pipeline-responder run` with a generated configuration.
#![allow(clippy::unwrap_used)]

use aws_sdk_sqs::types::QueueAttributeName;
use pipeline_responder_e2e::{
    ActionModel, CloudWatchFake, CodePipelineFake, ErrorDetails, ExecutionModel, Moto,
    PipelineModel, RevisionModel, SlackFake, StageModel,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const ACCOUNT: &str = "123456789012";
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

/// The daemon binary built by the same `cargo test` run (it sits next to the test's `deps/`).
pub fn daemon_binary() -> PathBuf {
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
pub struct Queues {
    pub url: String,
    pub dlq_url: String,
}

pub async fn create_queues(moto: &Moto, name: &str, visibility_secs: u32) -> Queues {
    // A short redrive: a test of a rejected message sees it in the DLQ after two receives.
    create_queues_with(moto, name, visibility_secs, 2).await
}

/// The deploy kit's redrive policy (deploy/cloudformation/pipeline-responder.yaml).
pub const MAX_RECEIVE_COUNT: u64 = 5;

/// A queue whose messages go to its dead-letter queue after `max_receive` receives.
pub async fn create_queues_with(
    moto: &Moto,
    name: &str,
    visibility_secs: u32,
    max_receive: u64,
) -> Queues {
    let sqs = moto.sqs();
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url.unwrap();
    let dlq_arn = queue_arn(moto, &dlq_url).await;
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive.to_string()})
            .to_string();
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

/// A queue's ARN (for redrive policies and subscriptions).
pub async fn queue_arn(moto: &Moto, url: &str) -> String {
    moto.sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
}

/// An SNS topic whose messages land in a queue the test reads.
pub async fn topic_with_capture(moto: &Moto, topic: &str) -> String {
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
    let capture_arn = queue_arn(moto, &capture).await;
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
pub async fn depth(moto: &Moto, url: &str) -> u64 {
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
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
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

/// Waits until `state` reports done, as long as it keeps moving: fails only when the progress
/// figure (anything comparable: counts of what is stored and sent) has not changed for `stall`,
/// or after `cap` in all. For long runs whose speed is the emulator's, not ours (moto on a busy
/// machine), so that a slow machine is not mistaken for a stuck daemon.
pub async fn while_progressing<F, Fut, P>(stall: Duration, cap: Duration, mut state: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, P)>,
    P: PartialEq,
{
    let start = tokio::time::Instant::now();
    let mut last: Option<P> = None;
    let mut since = tokio::time::Instant::now();
    while start.elapsed() < cap {
        let (done, progress) = state().await;
        if done {
            return true;
        }
        if last.as_ref() != Some(&progress) {
            last = Some(progress);
            since = tokio::time::Instant::now();
        } else if since.elapsed() > stall {
            return false;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    false
}

/// The `[[environments]]` of the generated configuration unless a test gives its own.
pub const ENVIRONMENTS: &str = r#"[[environments]]
name = "staging"
[[environments]]
name = "production"
"#;

/// What a test changes in the generated configuration and the daemon's environment.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// Extra environment variables, such as per-service endpoints of the fakes.
    pub env: &'a [(&'a str, String)],
    /// `[sources.watcher] enabled` (it polls at start-up, then every 10 s).
    pub watcher: bool,
    /// Appended to the `[daemon]` section.
    pub daemon_extra: &'a str,
    /// The `[[environments]]` tables (and anything after them).
    pub environments: &'a str,
    /// Appended to `[notifiers.slack]` (e.g. a bot token and the fake's API base URL).
    pub slack_extra: &'a str,
    /// The `[store]` section's body; empty: the embedded store in the daemon's directory.
    pub store: &'a str,
    /// Appended to `[sources.watcher]` (after `interval_secs = 10`, `jitter_secs = 0`; a key
    /// given here again replaces those: write the whole override, e.g. `interval_secs = 2`).
    pub watcher_extra: &'a str,
    /// Appended to the `[http]` section (e.g. `max_connections = 16`).
    pub http_extra: &'a str,
    /// Appended to `[sources.sqs]` (after `wait_time_secs = 1`, `visibility_timeout_secs = 2`;
    /// a key given here again replaces those).
    pub sqs_extra: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            env: &[],
            watcher: false,
            daemon_extra: "",
            environments: ENVIRONMENTS,
            slack_extra: "",
            store: "",
            watcher_extra: "",
            http_extra: "",
            sqs_extra: "",
        }
    }
}

/// A running daemon with its own state directory.
pub struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    pub async fn start(moto: &Moto, slack: &SlackFake, queue_url: &str, dir: PathBuf) -> Daemon {
        Self::start_with(moto, slack, queue_url, dir, &[], false).await
    }

    /// Starts the daemon; `env` adds variables such as per-service endpoints of the fakes.
    pub async fn start_with(
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
    pub async fn start_config(
        moto: &Moto,
        slack: &SlackFake,
        queue_url: &str,
        dir: PathBuf,
        env: &[(&str, String)],
        watcher: bool,
        extra: &str,
    ) -> Daemon {
        let setup = Setup {
            env,
            watcher,
            daemon_extra: extra,
            ..Setup::default()
        };
        Self::launch(moto, slack, queue_url, dir, &setup).await
    }

    /// Starts the daemon as `setup` says.
    pub async fn launch(
        moto: &Moto,
        slack: &SlackFake,
        queue_url: &str,
        dir: PathBuf,
        setup: &Setup<'_>,
    ) -> Daemon {
        let log = {
            write_config(queue_url, &dir, setup);
            std::fs::File::create(dir.join("daemon.log")).unwrap()
        };
        let child = command(moto, slack, &dir, setup)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Daemon { child, dir }
    }

    /// Runs a one-off subcommand (`create-table`, `check-config`...) with the configuration and
    /// environment `launch` would use; returns its output.
    pub async fn one_off(
        moto: &Moto,
        slack: &SlackFake,
        queue_url: &str,
        dir: &std::path::Path,
        setup: &Setup<'_>,
        args: &[&str],
    ) -> std::process::Output {
        write_config(queue_url, dir, setup);
        command(moto, slack, dir, setup)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap()
    }

    /// The address the daemon's HTTP listener bound (it logs it at start-up).
    pub async fn http_addr(&self) -> String {
        for _ in 0..100 {
            if let Some(addr) = self
                .log()
                .lines()
                .find(|l| l.contains("HTTP listening"))
                .and_then(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|v| v["addr"].as_str().map(String::from))
            {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the daemon never logged its HTTP address: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill9(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.log()
    }

    /// Incidents in the daemon's store.
    pub fn incident_count(&self) -> i64 {
        // Read-only: never create the file before the daemon does; 0 until its schema exists.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        rusqlite::Connection::open_with_flags(self.dir.join("state.db"), flags)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0)))
            .unwrap_or(0)
    }

    /// Sends SIGTERM (the daemon starts its graceful stop).
    pub fn sigterm(&self) {
        let pid = self.child.id().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }

    /// SIGTERM, then the exit status and how long it took.
    pub async fn terminate(self) -> (std::process::ExitStatus, Duration, String) {
        let start = tokio::time::Instant::now();
        self.sigterm();
        self.exited(start).await
    }

    /// Waits for the exit of a daemon told to stop: the status, the time since `start`, the log.
    pub async fn exited(
        mut self,
        start: tokio::time::Instant,
    ) -> (std::process::ExitStatus, Duration, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        (status, start.elapsed(), self.log())
    }
}

/// `defaults` (`key = value` lines) with the keys `extra` gives replaced, then `extra`.
fn overridden(defaults: &str, extra: &str) -> String {
    let key = |l: &str| l.split('=').next().unwrap_or_default().trim().to_string();
    let mut lines: Vec<String> = defaults
        .lines()
        .filter(|l| !extra.lines().any(|e| key(e) == key(l)))
        .map(|l| l.to_string())
        .collect();
    lines.push(extra.to_string());
    lines.join("\n")
}

/// Writes `dir/config.toml` as `setup` says.
fn write_config(queue_url: &str, dir: &std::path::Path, setup: &Setup<'_>) {
    let Setup {
        watcher,
        daemon_extra: extra,
        environments,
        slack_extra,
        store,
        watcher_extra,
        http_extra,
        ..
    } = *setup;
    std::fs::create_dir_all(dir).unwrap();
    let store = if store.is_empty() {
        format!("path = \"{}\"", dir.join("state.db").display())
    } else {
        store.to_string()
    };
    // A key given twice is a TOML error: the test's override replaces the default line.
    let watcher_settings = overridden("interval_secs = 10\njitter_secs = 0", watcher_extra);
    let sqs_settings = overridden(
        "wait_time_secs = 1\nvisibility_timeout_secs = 2",
        setup.sqs_extra,
    );
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
api_token = "${{TEST_API_TOKEN:-}}"
{http_extra}
[store]
{store}
[sources.sqs]
queue_url = "{queue_url}"
{sqs_settings}
[sources.watcher]
enabled = {watcher}
{watcher_settings}
[notifiers.slack]
webhook_url = "${{TEST_SLACK_WEBHOOK}}"
{slack_extra}
[environment_defaults]
resource_prefix = "kiro-pipeline-{{env}}"
slack_channel = "#kiro-{{env}}"
{environments}"##
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
}

/// The daemon binary with `dir/config.toml`, moto's endpoint and test credentials, and nothing
/// else from the host environment.
fn command(moto: &Moto, slack: &SlackFake, dir: &std::path::Path, setup: &Setup<'_>) -> Command {
    let mut command = Command::new(daemon_binary());
    command
        .args(["--config", dir.join("config.toml").to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("TEST_SLACK_WEBHOOK", slack.webhook_url())
        .env("RUST_LOG", "info,pipeline_responder=debug")
        .envs(setup.env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    command
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pr-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A shared fixture rewritten to name the runbook's production pipeline.
pub fn kiro_event(fixture: &str, id: &str, patch: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{fixture}")).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["id"] = json!(id);
    event["detail"]["pipeline"] = json!("kiro-pipeline-production");
    event["resources"] =
        json!(["arn:aws:codepipeline:us-east-1:123456789012:kiro-pipeline-production"]);
    patch(&mut event);
    event.to_string()
}

pub fn sns_envelope(message: &str, id: &str) -> String {
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

pub const EXECUTION: &str = "12345678-1234-5678-abcd-12345678abcd";

/// The production pipeline failing at Build › BuildAndTest, and that build's log in CloudWatch
/// Logs (moto), as the runbook's Incident 1 finds them.
pub async fn seed_failed_build(codepipeline: &CodePipelineFake, moto: &Moto) {
    seed_failed_build_with(codepipeline, moto, "jest-test-failure.log", "npm test").await;
}

/// Like [`seed_failed_build`], with the build log `log` (a file of crates/core/tests/data/logs)
/// and `command` the build command CodeBuild reports as failed.
pub async fn seed_failed_build_with(
    codepipeline: &CodePipelineFake,
    moto: &Moto,
    log: &str,
    command: &str,
) {
    let lines: Vec<String> = std::fs::read_to_string(format!("{LOGS}/{log}"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    seed_failed_build_lines(
        codepipeline,
        moto,
        &lines,
        command,
        "feat: retry worker jobs",
    )
    .await;
}

/// Like [`seed_failed_build_with`], with the build log's `lines` and the commit message
/// `commit` given.
pub async fn seed_failed_build_lines(
    codepipeline: &CodePipelineFake,
    moto: &Moto,
    lines: &[String],
    command: &str,
    commit: &str,
) {
    let now = chrono::Utc::now();
    let error = format!("Error while executing command: {command}. Reason: exit status 1");
    let mut failed = ActionModel::new("BuildAndTest", "Failed", now);
    if let Some(latest) = failed.latest.as_mut() {
        latest.summary = Some(error.clone());
        latest.external_execution_url =
            Some("https://console.aws.amazon.com/codesuite/codebuild/projects/x".into());
        latest.error = Some(ErrorDetails {
            code: "JobFailed".into(),
            message: error,
        });
    }
    let mut execution =
        ExecutionModel::new(EXECUTION, "Failed", now - chrono::Duration::minutes(3));
    execution.revisions.push(RevisionModel {
        action_name: "Source".into(),
        artifact_name: "SourceArtifact".into(),
        revision_id: "9e1d4b7c0ffee".into(),
        revision_summary: Some(commit.into()),
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
    put_log_lines(
        moto,
        "/aws/codebuild/kiro-pipeline-production-build",
        "build-1",
        lines,
        now.timestamp_millis() - 60_000,
    )
    .await;
}

/// The realistic build logs of the core crate's tests.
pub const LOGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/core/tests/data/logs"
);

/// Writes `lines` to a new stream of `group` (created if needed) in moto's CloudWatch Logs, one
/// millisecond apart from `base_millis` on.
pub async fn put_log_lines(
    moto: &Moto,
    group: &str,
    stream: &str,
    lines: &[String],
    base_millis: i64,
) {
    let logs = moto.logs();
    if let Err(e) = logs.create_log_group().log_group_name(group).send().await {
        let exists = e
            .as_service_error()
            .is_some_and(|s| s.is_resource_already_exists_exception());
        assert!(exists, "create_log_group {group}: {e:?}");
    }
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(base_millis + i as i64)
                .message(line)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

/// Per-service endpoints that send the daemon's CodePipeline and CloudWatch calls to the fakes
/// (everything else goes to moto).
pub fn fake_endpoints(
    codepipeline: &CodePipelineFake,
    cloudwatch: &CloudWatchFake,
) -> [(&'static str, String); 2] {
    [
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE",
            codepipeline.endpoint().to_string(),
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cloudwatch.endpoint().to_string(),
        ),
    ]
}

/// Sends one message.
pub async fn send_body(moto: &Moto, queue_url: &str, body: &str) {
    moto.sqs()
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// Whether a Slack post containing `needle` arrives within `limit`.
pub async fn slack_posted(slack: &SlackFake, needle: &str, limit: Duration) -> bool {
    eventually(limit, || async {
        slack
            .accepted()
            .iter()
            .any(|p| p.text().is_some_and(|t| t.contains(needle)))
    })
    .await
}

/// Sends `bodies` to the queue in batches of ten (SQS's limit per `SendMessageBatch`).
pub async fn send_bodies(moto: &Moto, queue_url: &str, bodies: &[String]) {
    let sqs = moto.sqs();
    for (n, chunk) in bodies.chunks(10).enumerate() {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{n}-{i}"))
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

/// The sum of the samples of metric `name` (exact series name, e.g. `x_total`, `x_count`) whose
/// labels include every pair in `labels`, in Prometheus text output; 0 when there is none.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// Every sample of a Prometheus text exposition: (name, labels, value).
pub fn series(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (head, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut map = std::collections::BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let end = after.find("\"").unwrap();
            map.insert(
                key.trim_start_matches(',').to_string(),
                after[..end].to_string(),
            );
            rest = &after[end + 1..];
        }
        out.push((name.to_string(), map, value.parse::<f64>().unwrap()));
    }
    out
}

/// promtool (scripts/setup.sh unpacks it from Debian's `prometheus` package).
pub fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(
                std::env::var("PIPELINE_RESPONDER_TOOLS")
                    .unwrap_or_else(|_| "/var/tmp/pipeline-responder-tools".into()),
            )
            .join("bin/promtool")
        });
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup.sh (it installs promtool)",
        path.display()
    );
    path
}

/// GETs `url` and returns (status, body).
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

pub const DEPLOYMENTS_TABLE: &str = "kiro-pipeline-production-deployments";

/// The pipeline's deployments table as its stack creates it: partition key `deploymentId`,
/// index `EnvironmentStatusIndex` (partition `environment`, sort `status`, projection ALL).
pub async fn create_deployments_table(moto: &Moto) {
    let attribute = |name: &str| {
        aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: aws_sdk_dynamodb::types::KeyType| {
        aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let index = aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
        .index_name("EnvironmentStatusIndex")
        .key_schema(key("environment", aws_sdk_dynamodb::types::KeyType::Hash))
        .key_schema(key("status", aws_sdk_dynamodb::types::KeyType::Range))
        .projection(
            aws_sdk_dynamodb::types::Projection::builder()
                .projection_type(aws_sdk_dynamodb::types::ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap();
    moto.dynamodb()
        .create_table()
        .table_name(DEPLOYMENTS_TABLE)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attribute("deploymentId"))
        .attribute_definitions(attribute("environment"))
        .attribute_definitions(attribute("status"))
        .key_schema(key("deploymentId", aws_sdk_dynamodb::types::KeyType::Hash))
        .global_secondary_indexes(index)
        .send()
        .await
        .unwrap();
}

/// Writes one deployment record; returns its `deploymentId`.
pub async fn put_deployment(
    moto: &Moto,
    started: chrono::DateTime<chrono::Utc>,
    version: &str,
    status: &str,
    commit_message: &str,
) -> String {
    let start = started.timestamp_millis();
    let id = format!("production#{start}");
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_string());
    let n = |v: i64| aws_sdk_dynamodb::types::AttributeValue::N(v.to_string());
    moto.dynamodb()
        .put_item()
        .table_name(DEPLOYMENTS_TABLE)
        .item("deploymentId", s(&id))
        .item("environment", s("production"))
        .item("version", s(version))
        .item("status", s(status))
        .item("startTime", n(start))
        .item("endTime", n(start + 25 * 60_000))
        .item("commitMessage", s(commit_message))
        .item("commitAuthor", s("dev@example.com"))
        .item("pipelineExecutionId", s(EXECUTION))
        .item("coveragePercentage", n(84))
        .send()
        .await
        .unwrap();
    id
}

/// Slack's v0 request signature of `body` sent at `ts` (`X-Slack-Signature`).
pub fn slack_signature(secret: &str, ts: &str, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}
