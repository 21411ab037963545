//! What the fault suites share: CI or full size, a seeded random generator, queues as the deploy
//! kit creates them, and readers of what the daemon posted and stored.
#![allow(clippy::unwrap_used)]

use crate::support::{get, kiro_event, Daemon, Queues};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use pipeline_responder_e2e::{Moto, SlackFake, SlackPost};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::support::MAX_RECEIVE_COUNT;

/// `PR_FAULTS_FULL=1`: the full-size form of every suite (docs/reliability.md).
pub fn full() -> bool {
    std::env::var("PR_FAULTS_FULL").is_ok_and(|v| v == "1")
}

/// `ci` in the CI form, `full` in the full form.
pub fn size(ci: usize, full_size: usize) -> usize {
    if full() {
        full_size
    } else {
        ci
    }
}

/// SplitMix64: small, seedable, good enough to pick fault points.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seeded from `PR_FAULTS_SEED` (to replay a run) or the clock; prints the seed.
    pub fn for_test(name: &str) -> Rng {
        let seed = std::env::var("PR_FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("{name}: PR_FAULTS_SEED={seed}");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A queue with its dead-letter queue and the deploy kit's `maxReceiveCount`.
pub async fn create_queues(moto: &Moto, name: &str, visibility_secs: u32) -> Queues {
    crate::support::create_queues_with(moto, name, visibility_secs, MAX_RECEIVE_COUNT).await
}

/// `[[environments]]` staging and production, storm control off (every first post is counted)
/// and no weekly digest (it would post on its own schedule).
pub const ENVIRONMENTS_NO_STORM: &str = r#"[[environments]]
name = "staging"
[[environments]]
name = "production"
[storm]
max_incidents = 100000
[digest]
enabled = false
"#;

/// The production pipeline's execution `execution` FAILED (EventBridge, raw).
pub fn failure_event(execution: &str, event_id: &str) -> String {
    kiro_event("codepipeline-pipeline-failed.json", event_id, |e| {
        e["detail"]["execution-id"] = json!(execution);
    })
}

/// The incident key a production execution failure opens.
pub fn failure_key(execution: &str) -> String {
    format!("pipeline_execution_failure/kiro-pipeline-production/{execution}")
}

/// The key of the incident a Slack post is about: the Acknowledge button's value, else the
/// `Incident `key`` line.
pub fn post_key(post: &SlackPost) -> Option<String> {
    let from_button = post.blocks().iter().find_map(|b| {
        b.get("elements")?.as_array()?.iter().find_map(|e| {
            if e.get("action_id")?.as_str()? == "acknowledge" {
                e.get("value")?.as_str().map(String::from)
            } else {
                None
            }
        })
    });
    from_button.or_else(|| {
        let text = post.text()?;
        let line = text.lines().rev().find(|l| l.starts_with("Incident `"))?;
        Some(
            line.trim_start_matches("Incident `")
                .trim_end_matches('`')
                .to_string(),
        )
    })
}

/// A first post (the incident's opening message; later ones are updates, escalations...).
pub fn is_first_post(post: &SlackPost) -> bool {
    post.text().is_some_and(|t| t.contains("\nNext ("))
}

/// Accepted first posts per incident key.
pub fn first_posts(slack: &SlackFake) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for post in slack.accepted().iter().filter(|p| is_first_post(p)) {
        if let Some(key) = post_key(post) {
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

/// Repeats: first posts beyond one per incident.
pub fn repeats(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().map(|n| n.saturating_sub(1)).sum()
}

/// Receives (and deletes) everything in a capture queue; returns the SNS envelopes.
pub async fn drain_queue(moto: &Moto, url: &str) -> Vec<Value> {
    let sqs = moto.sqs();
    let mut out = Vec::new();
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// SNS "opened" messages per incident key.
pub fn sns_opened(envelopes: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in envelopes {
        let attrs = &e["MessageAttributes"];
        if attrs["notification"]["Value"] == "opened" {
            if let Some(key) = attrs["incident_key"]["Value"].as_str() {
                *out.entry(key.to_string()).or_default() += 1;
            }
        }
    }
    out
}

/// Every message of a queue with its receive count, received without deleting (each stays
/// invisible for `hide_secs`, so one pass sees each once).
pub async fn peek_all(moto: &Moto, url: &str, hide_secs: i32) -> Vec<(String, String, u64)> {
    let sqs = moto.sqs();
    let mut out = Vec::new();
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(hide_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.push((
                m.message_id().unwrap_or_default().to_string(),
                m.body().unwrap_or_default().to_string(),
                count,
            ));
        }
    }
}

/// The daemon's store, read-only.
fn open_store(dir: &Path) -> Option<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(
        dir.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()
}

/// Every stored incident: key → its record (JSON).
pub fn stored_incidents(dir: &Path) -> BTreeMap<String, Value> {
    let Some(conn) = open_store(dir) else {
        return BTreeMap::new();
    };
    let Ok(mut statement) = conn.prepare("SELECT key, data FROM incidents") else {
        return BTreeMap::new();
    };
    statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map(|rows| {
            rows.filter_map(Result::ok)
                .map(|(k, d)| (k, serde_json::from_str(&d).unwrap_or(Value::Null)))
                .collect()
        })
        .unwrap_or_default()
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub key: String,
    /// `slack` or `sns`.
    pub channel: String,
    /// `opened`, `updated`, `escalated`...
    pub kind: String,
    /// `pending`, `sent`, `failed` (given up), `summarized`, `silenced`.
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

pub fn outbox(dir: &Path) -> Vec<OutboxRow> {
    let Some(conn) = open_store(dir) else {
        return Vec::new();
    };
    let Ok(mut statement) =
        conn.prepare("SELECT key, notification, state, attempts, last_error FROM outbox")
    else {
        return Vec::new();
    };
    statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .map(|rows| {
            rows.filter_map(Result::ok)
                .map(|(key, notification, state, attempts, last_error)| {
                    let n: Value = serde_json::from_str(&notification).unwrap_or(Value::Null);
                    OutboxRow {
                        key,
                        channel: n["channel"]["type"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        kind: n["kind"].as_str().unwrap_or_default().to_lowercase(),
                        state,
                        attempts,
                        last_error,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The daemon's `/metrics` text.
pub async fn metrics_text(daemon: &Daemon) -> String {
    let (status, body) = get(&format!("http://{}/metrics", daemon.http_addr().await)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Lines of a daemon log that show a task died (the supervisor's words).
pub fn task_failures(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("Task panicked")
                || l.contains("Task stopped unexpectedly")
                || l.contains("panicked at")
        })
        .collect()
}

/// `pipeline` failing at Build › BuildAndTest in each of `executions` (the fake's state and
/// execution records), and that build's log in moto's CloudWatch Logs, as Incident 1 finds them.
pub async fn seed_failures(
    codepipeline: &pipeline_responder_e2e::CodePipelineFake,
    moto: &Moto,
    env: &str,
    executions: &[String],
) {
    use pipeline_responder_e2e::{
        ActionModel, ErrorDetails, ExecutionModel, PipelineModel, RevisionModel, StageModel,
    };
    let now = chrono::Utc::now();
    let pipeline = format!("kiro-pipeline-{env}");
    let error = "Error while executing command: npm test. Reason: exit status 1".to_string();
    let mut failed = ActionModel::new("BuildAndTest", "Failed", now);
    if let Some(latest) = failed.latest.as_mut() {
        latest.summary = Some(error.clone());
        latest.error = Some(ErrorDetails {
            code: "JobFailed".into(),
            message: error,
        });
    }
    let latest = executions.last().cloned().unwrap_or_default();
    let mut model = PipelineModel::new(&pipeline, now)
        .with_stage(
            StageModel::new("Source")
                .with_action(ActionModel::new("Source", "Succeeded", now))
                .ran(&latest, "Succeeded"),
        )
        .with_stage(
            StageModel::new("Build")
                .with_action(failed)
                .ran(&latest, "Failed"),
        );
    for (i, id) in executions.iter().enumerate() {
        let mut execution = ExecutionModel::new(
            id,
            "Failed",
            now - chrono::Duration::seconds(600 - i as i64 % 600),
        );
        execution.revisions.push(RevisionModel {
            action_name: "Source".into(),
            artifact_name: "SourceArtifact".into(),
            revision_id: format!("{i:07x}c0ffee"),
            revision_summary: Some(format!("feat: change {i}")),
            revision_url: None,
            created: now,
        });
        model = model.with_execution(execution);
    }
    codepipeline.set_pipeline(model);
    let lines: Vec<String> =
        std::fs::read_to_string(format!("{}/jest-test-failure.log", crate::support::LOGS))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
    crate::support::put_log_lines(
        moto,
        &format!("/aws/codebuild/{pipeline}-build"),
        "build-1",
        &lines,
        now.timestamp_millis() - 60_000,
    )
    .await;
}
