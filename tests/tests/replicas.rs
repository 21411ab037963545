//! Several replicas of the daemon on one SQS queue and one DynamoDB table (moto): no duplicate
//! incidents, each escalation once, a killed replica's work taken over; and the latency of the
//! DynamoDB path.
#![allow(clippy::unwrap_used)]

use crate::support::*;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

const TABLE: &str = "pipeline-responder-state";
pub(crate) const DYNAMODB_STORE: &str = "kind = \"dynamodb\"\ntable = \"pipeline-responder-state\"";

/// 50 environments (one pipeline each), a policy whose L3 comes 20 s after a failure, storm
/// control off so that every post can be counted, Slack only (SNS posts would double moto's
/// load without counting anything more).
fn fifty_environments() -> String {
    let mut text = String::from(
        r#"
[notifiers.sns]
enabled = false
[[escalation.levels]]
id = "L1"
slack_mention = "@oncall"
[[escalation.levels]]
id = "L2"
slack_mention = "@devops-lead"
[[escalation.levels]]
id = "L3"
slack_mention = "@eng-manager"
[storm]
max_incidents = 100000
[policies.pipeline_execution_failure]
escalation = [
  { level = "L1", after_secs = 0 },
  { level = "L2", after_secs = 10 },
  { level = "L3", after_secs = 20 },
]
"#,
    );
    for n in 0..50 {
        let _ = write!(text, "[[environments]]\nname = \"env{n:02}\"\n");
    }
    text
}

/// Items in the index partition `g1pk`, every page counted (a page stops at 1 MB read).
async fn waiting(moto: &Moto, g1pk: &str) -> i32 {
    let pages = moto
        .dynamodb()
        .query()
        .table_name(TABLE)
        .index_name("by-state")
        .key_condition_expression("g1pk = :p")
        .expression_attribute_values(":p", AttributeValue::S(g1pk.into()))
        .select(Select::Count)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    pages
        .into_iter()
        .map(|page| page.map(|p| p.count).unwrap_or(-1_000_000))
        .sum()
}

/// Incidents in the DynamoDB table (found through the index, as the daemon finds them).
async fn dynamodb_incidents(moto: &Moto) -> i32 {
    waiting(moto, "INCIDENT#active").await + waiting(moto, "INCIDENT#resolved").await
}

/// Keys of the stored incidents whose highest level notified is `level` (0 = L1).
async fn stored_at_level(moto: &Moto, level: u64) -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    for state in ["INCIDENT#active", "INCIDENT#resolved"] {
        let pages = moto
            .dynamodb()
            .query()
            .table_name(TABLE)
            .index_name("by-state")
            .key_condition_expression("g1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(state.into()))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        for item in pages {
            let item = item.unwrap();
            let data: Value = serde_json::from_str(item["data"].as_s().unwrap()).unwrap();
            if data["highest_level_notified"].as_u64() == Some(level) {
                keys.insert(data["key"].as_str().unwrap().to_string());
            }
        }
    }
    keys
}

/// Posts per incident key for posts whose text contains `marker`.
fn posts_by_key(slack: &SlackFake, marker: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for post in slack.accepted() {
        let Some(text) = post.text() else { continue };
        if !text.contains(marker) {
            continue;
        }
        if let Some(key) = text
            .split("Incident `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
        {
            *out.entry(key.to_string()).or_default() += 1;
        }
    }
    out
}

fn repeats(posts: &BTreeMap<String, usize>) -> usize {
    posts.values().map(|n| n.saturating_sub(1)).sum()
}

pub(crate) async fn create_table(
    moto: &Moto,
    slack: &SlackFake,
    queue_url: &str,
    setup: &Setup<'_>,
) {
    let out = Daemon::one_off(
        moto,
        slack,
        queue_url,
        &temp_dir("replicas-create-table"),
        setup,
        &["create-table"],
    )
    .await;
    assert!(
        out.status.success(),
        "create-table: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_500_failures_over_50_pipelines_one_killed_no_duplicates() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    // The deploy kit's redrive: a message the killed replica held comes back, and on a busy
    // machine moto can be slow enough that a receipt lapses once more; none of that is a loss.
    let queues = create_queues_with(&moto, "events-replicas", 5, MAX_RECEIVE_COUNT).await;
    // Diagnostics ask the CodePipeline and CloudWatch fakes (unknown pipelines: quick answers).
    let codepipeline = CodePipelineFake::start().await;
    let cloudwatch = CloudWatchFake::start().await;
    let environments = fifty_environments();
    let envs: Vec<Vec<(&str, String)>> = (0..3)
        .map(|n| {
            let mut env = fake_endpoints(&codepipeline, &cloudwatch).to_vec();
            env.push(("PIPELINE_RESPONDER_REPLICA_ID", format!("replica-{n}")));
            env
        })
        .collect();
    let setups: Vec<Setup> = envs
        .iter()
        .map(|env| Setup {
            daemon_extra: "first_post_wait_secs = 0",
            environments: &environments,
            store: DYNAMODB_STORE,
            env,
            ..Setup::default()
        })
        .collect();
    create_table(&moto, &slack, &queues.url, &setups[0]).await;

    // 500 failures: 10 executions of each of the 50 pipelines.
    let bodies: Vec<String> = (0..500)
        .map(|i| {
            kiro_event(
                "codepipeline-pipeline-failed.json",
                &format!("evt-replicas-{i}"),
                |e| {
                    let pipeline = format!("kiro-pipeline-env{:02}", i % 50);
                    e["detail"]["pipeline"] = json!(pipeline);
                    e["resources"] = json!([format!(
                        "arn:aws:codepipeline:us-east-1:123456789012:{pipeline}"
                    )]);
                    e["detail"]["execution-id"] = json!(format!("exec-{i:04}"));
                },
            )
        })
        .collect();
    send_bodies(&moto, &queues.url, &bodies).await;
    let mut replicas = Vec::new();
    for (n, setup) in setups.iter().enumerate() {
        let dir = temp_dir(&format!("replica-{n}"));
        replicas.push(Daemon::launch(&moto, &slack, &queues.url, dir, setup).await);
    }

    // Kill one replica mid-run.
    // Generous limits: the run takes ~3.5 min on moto alone, more beside other tests.
    let started = eventually(Duration::from_secs(900), || async {
        posts_by_key(&slack, "Next (Incident 1").len() >= 50
    })
    .await;
    assert!(started, "{}", replicas[0].log());
    let stored_at_kill = dynamodb_incidents(&moto).await;
    replicas.remove(0).kill9().await;
    assert!(
        stored_at_kill < 500,
        "killed too late ({stored_at_kill} stored)"
    );

    // Done: every message handled, every incident stored and posted, no deadline or post left.
    // Moto's throughput sets the pace (3.5 to 10 min for this run, more beside other tests):
    // wait while posts and stored incidents keep moving.
    let done = while_progressing(
        Duration::from_secs(240),
        Duration::from_secs(2400),
        || async {
            let incidents = dynamodb_incidents(&moto).await;
            let posts = slack.accepted().len();
            let depth = depth(&moto, &queues.url).await;
            let deadlines = waiting(&moto, "DEADLINE#pending").await;
            let outbox = waiting(&moto, "OUTBOX#pending").await;
            let done = depth == 0
                && incidents == 500
                && posts_by_key(&slack, "Next (Incident 1").len() == 500
                && deadlines == 0
                && outbox == 0;
            (done, (incidents, posts, depth, deadlines, outbox))
        },
    )
    .await;
    assert!(
        done,
        "{} incidents, {} messages left, first posts for {}, {} deadlines and {} posts waiting:\n{}",
        dynamodb_incidents(&moto).await,
        depth(&moto, &queues.url).await,
        posts_by_key(&slack, "Next (Incident 1").len(),
        waiting(&moto, "DEADLINE#pending").await,
        waiting(&moto, "OUTBOX#pending").await,
        replicas[0].log()
    );
    let first = posts_by_key(&slack, "Next (Incident 1");
    let l2 = posts_by_key(&slack, "@devops-lead");
    let l3 = posts_by_key(&slack, "@eng-manager");
    assert_eq!(
        dynamodb_incidents(&moto).await,
        500,
        "0 duplicate incidents"
    );
    assert_eq!(
        depth(&moto, &queues.dlq_url).await,
        0,
        "nothing in the DLQ: {}",
        {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for r in &replicas {
                for line in r
                    .log()
                    .lines()
                    .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
                {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                    let msg = format!(
                        "{} {} {}",
                        v["level"],
                        v["message"],
                        v["error"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(200)
                            .collect::<String>()
                    );
                    *counts.entry(msg).or_default() += 1;
                }
            }
            format!("{counts:#?}")
        }
    );
    // Every escalation the store records was posted, for exactly those incidents. (A failure
    // superseded by a later one of its pipeline is resolved before its deadlines.)
    let at_l3 = stored_at_level(&moto, 2).await;
    let at_l2 = stored_at_level(&moto, 1).await;
    assert!(at_l3.len() >= 50, "L3 reached by {} incidents", at_l3.len());
    assert_eq!(
        l3.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        at_l3
    );
    assert!(
        l2.keys().all(|k| at_l2.contains(k) || at_l3.contains(k)),
        "an L2 post for an incident the store does not show at L2 or above"
    );
    assert!(
        at_l2.iter().all(|k| l2.contains_key(k)),
        "an L2 escalation never posted"
    );
    let repeated = repeats(&first) + repeats(&l2) + repeats(&l3);
    println!(
        "replicas: 3 replicas, 500 failures over 50 pipelines, kill -9 of one at {stored_at_kill} \
         stored: 500 incidents; posted: first {} (repeats {}), L2 {} (repeats {}), L3 {} \
         (repeats {}); total repeated {repeated}",
        first.len(),
        repeats(&first),
        l2.len(),
        repeats(&l2),
        l3.len(),
        repeats(&l3)
    );
    assert!(
        repeated <= 1,
        "at most one repeated post for one kill, got {repeated}"
    );
    for replica in replicas {
        let (status, _, log) = replica.terminate().await;
        assert!(status.success(), "{log}");
    }
}

/// Event time → incident stored (the timeline's "opened" entry), one event at a time.
async fn store_latency(store: &'static str, tag: &str) -> (Vec<i64>, Moto) {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, &format!("events-latency-{tag}"), 5).await;
    let setup = Setup {
        daemon_extra: "first_post_wait_secs = 0",
        environments: "[[environments]]\nname = \"production\"\n[storm]\nmax_incidents = 100000\n",
        store,
        ..Setup::default()
    };
    let dir = temp_dir(&format!("latency-{tag}"));
    if !store.is_empty() {
        create_table(&moto, &slack, &queues.url, &setup).await;
    }
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir, &setup).await;
    daemon.http_addr().await; // up and serving
    let n = 100;
    let sqs = moto.sqs();
    for i in 0..n {
        let body = kiro_event(
            "codepipeline-pipeline-failed.json",
            &format!("evt-latency-{i}"),
            |e| {
                e["detail"]["execution-id"] = json!(format!("lat-{i:04}"));
                e["time"] =
                    json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            },
        );
        sqs.send_message()
            .queue_url(&queues.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = eventually(Duration::from_secs(60), || async {
        posts_by_key(&slack, "Next (Incident 1").len() == n
    })
    .await;
    assert!(all, "{}", daemon.log());
    let (_, _, log) = daemon.terminate().await;
    let mut latencies = Vec::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["message"] == "Incident opened" {
            if let Some(ms) = v["stored_ms"].as_i64() {
                latencies.push(ms);
            }
        }
    }
    assert_eq!(
        latencies.len(),
        n,
        "every open logged with stored_ms: {log}"
    );
    latencies.sort_unstable();
    (latencies, moto)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_from_event_to_incident_stored_dynamodb_and_embedded() {
    let (dynamo, _moto) = store_latency(DYNAMODB_STORE, "dynamodb").await;
    let (embedded, _moto2) = store_latency("", "embedded").await;
    let line = |name: &str, l: &[i64]| {
        format!(
            "{name}: event → incident stored over {} events: p50 {} ms, p99 {} ms, max {} ms",
            l.len(),
            percentile(l, 50.0),
            percentile(l, 99.0),
            l[l.len() - 1]
        )
    };
    println!("latency {}", line("dynamodb (moto)", &dynamo));
    println!("latency {}", line("embedded (SQLite)", &embedded));
    assert!(dynamo.iter().all(|ms| *ms >= 0), "clock order: {dynamo:?}");
}
