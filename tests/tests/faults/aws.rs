//! AWS faults: about 30 % of the daemon's calls to every AWS service fail — throttling, 500, 503,
//! or a hang that ends in a dropped connection — while failures and rollbacks arrive.
//!
//! SQS, SNS, DynamoDB and CloudWatch Logs (moto) are behind the fault proxy (30 %: the five
//! faults evenly, the first request of each operation always faulted). CodePipeline and
//! CloudWatch are the fakes with their own fault injection (`fail_next`, 25 % of calls:
//! throttling, 500, 503) behind a proxy that adds hangs (5 %). Two rules make a degraded
//! diagnosis certain: staging's build log group always answers 503 and staging's deployments
//! table hangs past the diagnostic's 10 s budget.
#![allow(clippy::unwrap_used)]

use super::common::{
    create_queues, drain_queue, failure_event, failure_key, first_posts, metrics_text, outbox,
    post_key, repeats, seed_failures, size, sns_opened, stored_incidents, task_failures, Rng,
    ENVIRONMENTS_NO_STORM,
};
use super::proxy::{stats_of, Fault, FaultProxy, Flavor, Plan, Rule};
use crate::support::{
    create_deployments_table, depth, get, metric, put_deployment, put_log_lines, send_body,
    temp_dir, topic_with_capture, Daemon, Setup,
};
use chrono::Utc;
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, InjectedError, Moto, SlackFake};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operations the daemon calls on the fakes.
const CODEPIPELINE_OPS: &[&str] = &[
    "GetPipelineState",
    "GetPipelineExecution",
    "ListActionExecutions",
    "ListPipelineExecutions",
];
const CLOUDWATCH_OPS: &[&str] = &["DescribeAlarms"];

/// Faults the fakes answer with (HTTP status, code), per service.
const CODEPIPELINE_ERRORS: &[(u16, &str)] = &[
    (400, "ThrottlingException"),
    (500, "InternalFailure"),
    (503, "ServiceUnavailableException"),
];
const CLOUDWATCH_ERRORS: &[(u16, &str)] = &[
    (400, "Throttling"),
    (500, "InternalServiceError"),
    (503, "ServiceUnavailable"),
];

/// Keeps one decision pending per operation of each fake: after every call seen, the next call
/// fails with probability `rate` (the first call of each operation always does).
async fn inject_into_fakes(
    codepipeline: Arc<CodePipelineFake>,
    cloudwatch: Arc<CloudWatchFake>,
    rate: f64,
    mut rng: Rng,
) {
    let mut seen: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    loop {
        for op in CODEPIPELINE_OPS.iter().chain(CLOUDWATCH_OPS) {
            let is_cp = CODEPIPELINE_OPS.contains(op);
            let count = if is_cp {
                codepipeline.call_count(op)
            } else {
                cloudwatch.call_count(op)
            };
            let last = seen.entry(op).or_insert(None);
            if *last == Some(count) {
                continue;
            }
            // A new call consumed the pending decision (or this is the first look): decide the
            // next one.
            let first = last.is_none();
            *last = Some(count);
            if first || rng.chance(rate) {
                if is_cp {
                    let (status, code) = *rng.pick(CODEPIPELINE_ERRORS);
                    codepipeline.fail_next(op, 1, InjectedError::new(status, code, "Injected"));
                } else {
                    let (status, code) = *rng.pick(CLOUDWATCH_ERRORS);
                    cloudwatch.fail_next(op, 1, InjectedError::new(status, code, "Injected"));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A pipeline notification that a rollback of `version` started in `env`; `attempt` varies the
/// reason so that each message is its own input (they join the environment's open rollback).
fn rollback_initiated(env: &str, version: &str, attempt: usize) -> String {
    json!({
        "event": "rollback_initiated",
        "environment": env,
        "currentVersion": version,
        "targetVersion": "1a2b3c4",
        "reason": format!("Alarm kiro-pipeline-{env}-api-5xx-errors in ALARM (report {attempt})"),
        "level": "full",
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
    .to_string()
}

/// The label a post gives a diagnostic (notify/render.rs), for "⚠ <label>: could not be fetched".
fn label(diagnostic: &str) -> &str {
    match diagnostic {
        "execution_details" => "Commit",
        "pipeline_state" => "Pipeline",
        "build_log" => "Root cause",
        "coverage_report" => "Coverage",
        "security_report" => "Security scan",
        "rollback_log" => "Rollback log",
        "deployment_record" => "Deployment",
        "alarms" => "Alarms now",
        "health_check" => "Health",
        "related_environment" => "Staging check",
        "stage_durations" => "Durations",
        other => other,
    }
}

/// The diagnostics of an incident that could not be fetched: (name, summary).
fn degraded(incident: &Value) -> Vec<(String, String)> {
    incident["diagnosis"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter(|r| r["ok"] == false)
                .map(|r| {
                    (
                        r["name"].as_str().unwrap_or_default().to_string(),
                        r["summary"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_aws_faults_lose_nothing_retry_boundedly_and_say_what_could_not_be_fetched()
{
    let (failures, rollbacks) = (size(16, 80), size(6, 20));
    let hold = Duration::from_secs(size(3, 5) as u64);
    let mut rng = Rng::for_test("aws-faults");
    let started = Instant::now();
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let codepipeline = Arc::new(CodePipelineFake::start().await);
    let cloudwatch = Arc::new(CloudWatchFake::start().await);

    // The world as the runbook's commands find it (set up directly in moto and the fakes).
    let queues = create_queues(&moto, "faults-aws", 5).await;
    let capture_production =
        topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let capture_staging = topic_with_capture(&moto, "kiro-pipeline-staging-deployments").await;
    let production: Vec<String> = (0..failures).map(|i| format!("aws-{i:04}")).collect();
    let staging = vec!["aws-staging-0001".to_string()];
    seed_failures(&codepipeline, &moto, "production", &production).await;
    seed_failures(&codepipeline, &moto, "staging", &staging).await;
    create_deployments_table(&moto).await;
    put_deployment(
        &moto,
        Utc::now() - chrono::Duration::minutes(20),
        "9e1d4b7",
        "in_progress",
        "feat: retry worker jobs",
    )
    .await;
    put_log_lines(
        &moto,
        "/aws/lambda/kiro-pipeline-production-rollback",
        "2026/11/26/[$LATEST]0001",
        &[
            "START RequestId: 1 Version: $LATEST".to_string(),
            "Redeploying artifact s3://kiro-pipeline-production-artifacts/1a2b3c4.zip".to_string(),
        ],
        Utc::now().timestamp_millis() - 30_000,
    )
    .await;

    // The faults.
    let moto_proxy = FaultProxy::start(moto.endpoint(), Flavor::Aws, rng.next_u64()).await;
    let mut plan = Plan::aws(0.30, hold);
    plan.rules = vec![
        Rule {
            operation: Some("FilterLogEvents"),
            needle: "kiro-pipeline-staging-build".into(),
            fault: Fault::Unavailable,
            hold: None,
        },
        Rule {
            operation: Some("Query"),
            needle: "kiro-pipeline-staging-deployments".into(),
            fault: Fault::HangBefore,
            hold: Some(Duration::from_secs(15)),
        },
    ];
    moto_proxy.set_plan(plan);
    let codepipeline_proxy =
        FaultProxy::start(codepipeline.endpoint(), Flavor::Aws, rng.next_u64()).await;
    let cloudwatch_proxy =
        FaultProxy::start(cloudwatch.endpoint(), Flavor::Aws, rng.next_u64()).await;
    codepipeline_proxy.set_plan(Plan::hangs(0.05, hold));
    cloudwatch_proxy.set_plan(Plan::hangs(0.05, hold));
    let injector = tokio::spawn(inject_into_fakes(
        Arc::clone(&codepipeline),
        Arc::clone(&cloudwatch),
        0.25,
        Rng::new(rng.next_u64()),
    ));

    let env = [
        ("AWS_ENDPOINT_URL", moto_proxy.endpoint()),
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE",
            codepipeline_proxy.endpoint(),
        ),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch_proxy.endpoint()),
    ];
    let setup = Setup {
        env: &env,
        watcher: true,
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-aws");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;

    // Failures and rollbacks arrive over time (sent straight to moto: the faults are the
    // daemon's).
    let mut sent_at: BTreeMap<String, chrono::DateTime<Utc>> = BTreeMap::new();
    let mut inputs: Vec<(String, String)> = production
        .iter()
        .enumerate()
        .map(|(i, e)| (failure_key(e), failure_event(e, &format!("evt-aws-{i}"))))
        .collect();
    // Rollback reports join their environment's open rollback incident (one per environment).
    for i in 0..rollbacks {
        inputs.push((
            "rollback_triggered/production/9e1d4b7".into(),
            rollback_initiated("production", "9e1d4b7", i),
        ));
    }
    inputs.push((
        "pipeline_execution_failure/kiro-pipeline-staging/aws-staging-0001".into(),
        crate::support::kiro_event(
            "codepipeline-pipeline-failed.json",
            "evt-aws-staging",
            |e| {
                e["detail"]["pipeline"] = json!("kiro-pipeline-staging");
                e["detail"]["execution-id"] = json!("aws-staging-0001");
                e["resources"] =
                    json!(["arn:aws:codepipeline:us-east-1:123456789012:kiro-pipeline-staging"]);
            },
        ),
    ));
    inputs.push((
        "rollback_triggered/staging/5d6e7f8".into(),
        rollback_initiated("staging", "5d6e7f8", 0),
    ));
    // Shuffle, then send about 4 per second.
    for i in (1..inputs.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        inputs.swap(i, j);
    }
    for (key, body) in &inputs {
        sent_at.entry(key.clone()).or_insert_with(Utc::now);
        send_body(&moto, &queues.url, body).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let expected: BTreeSet<String> = inputs.iter().map(|(k, _)| k.clone()).collect();

    // Nothing lost: every input an incident, its first post on Slack and its SNS message, its
    // diagnosis stored, and each diagnostic that could not be fetched said so in a post.
    let mut envelopes = Vec::new();
    let limit = Instant::now() + Duration::from_secs(size(180, 420) as u64);
    let missing = loop {
        envelopes.extend(drain_queue(&moto, &capture_production).await);
        envelopes.extend(drain_queue(&moto, &capture_staging).await);
        let incidents = stored_incidents(&dir);
        let slack_first = first_posts(&slack);
        let sns_first = sns_opened(&envelopes);
        let posts = slack.accepted();
        let mut missing: Vec<String> = Vec::new();
        for key in &expected {
            let Some(incident) = incidents.get(key) else {
                missing.push(format!("{key}: no incident"));
                continue;
            };
            if !slack_first.contains_key(key) {
                missing.push(format!("{key}: no Slack first post"));
            }
            if !sns_first.contains_key(key) {
                missing.push(format!("{key}: no SNS message"));
            }
            if incident["diagnosis"].as_array().is_none_or(Vec::is_empty) {
                missing.push(format!("{key}: no diagnosis"));
            }
            for (name, _) in degraded(incident) {
                let said = format!("⚠ {}: could not be fetched", label(&name));
                let told = posts.iter().any(|p| {
                    post_key(p).as_deref() == Some(key.as_str())
                        && p.text().is_some_and(|t| t.contains(&said))
                });
                if !told {
                    missing.push(format!("{key}: no post says {said:?}"));
                }
            }
        }
        if incidents.len() != expected.len() {
            missing.push(format!("{} incidents stored", incidents.len()));
        }
        if depth(&moto, &queues.url).await != 0 {
            missing.push("queue not drained".into());
        }
        if missing.is_empty() || Instant::now() > limit {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if !missing.is_empty() {
        for ((service, op), s) in moto_proxy.stats() {
            println!("  moto proxy {service}.{op}: {s:?}");
        }
    }
    assert!(
        missing.is_empty(),
        "after {:?}: {missing:#?}\n{}",
        started.elapsed(),
        daemon.log()
    );
    assert_eq!(
        depth(&moto, &queues.dlq_url).await,
        0,
        "a valid message reached the DLQ"
    );

    // The certain degradations read as such.
    let incidents = stored_incidents(&dir);
    let staging_failure =
        degraded(&incidents["pipeline_execution_failure/kiro-pipeline-staging/aws-staging-0001"]);
    assert!(
        staging_failure.iter().any(|(n, s)| n == "build_log"
            && s == "could not be fetched: logs FilterLogEvents failed (ServiceUnavailableException)"),
        "{staging_failure:?}"
    );
    let staging_rollback = degraded(&incidents["rollback_triggered/staging/5d6e7f8"]);
    assert!(
        staging_rollback
            .iter()
            .any(|(n, s)| n == "deployment_record"
                && s == "could not be fetched: timed out after 10 s"),
        "{staging_rollback:?}"
    );

    // Not doubled: Slack had no fault, so no repeat; an SNS message repeats only when a
    // Publish was answered by moto but its answer lost (a hang after forwarding).
    let slack_first = first_posts(&slack);
    let sns_first = sns_opened(&envelopes);
    let records = moto_proxy.records();
    let lost_publish_answers = records
        .iter()
        .filter(|r| r.operation == "Publish" && r.fault == Some(Fault::HangAfter))
        .count();
    assert_eq!(repeats(&slack_first), 0, "{slack_first:?}");
    assert!(
        repeats(&sns_first) <= lost_publish_answers,
        "{} repeated SNS messages, {lost_publish_answers} lost Publish answers",
        repeats(&sns_first)
    );
    let rows = outbox(&dir);
    let given_up: Vec<_> = rows.iter().filter(|r| r.state == "failed").collect();
    assert!(given_up.is_empty(), "notifications given up: {given_up:#?}");
    let max_outbox_attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
    assert!(
        max_outbox_attempts <= 5,
        "a notification took {max_outbox_attempts} attempts"
    );

    // Retries bounded: per call, never more attempts than the SDK's limit; per operation, the
    // proxy's count of attempts equals the daemon's own metric.
    let metrics = metrics_text(&daemon).await;
    injector.abort();
    let mut all = records.clone();
    all.extend(codepipeline_proxy.records());
    all.extend(cloudwatch_proxy.records());
    let stats = stats_of(&all);
    let (mut attempts, mut calls) = (0, 0);
    let mut table = Vec::new();
    for ((service, op), s) in &stats {
        let limit = s.sdk_max_attempts.unwrap_or(3) as usize;
        assert!(
            s.max_attempts_per_call <= limit,
            "{service} {op}: {} attempts for one call (SDK limit {limit})",
            s.max_attempts_per_call
        );
        let label = if service == "monitoring" {
            "cloudwatch"
        } else {
            service.as_str()
        };
        let counted = metric(
            &metrics,
            "pipeline_responder_aws_requests_total",
            &[("service", label), ("operation", op)],
        ) as usize;
        // The SQS consumer keeps polling: a few attempts may land between the two readings.
        let slack_allowed = if service == "sqs" { 5 } else { 1 };
        assert!(
            counted.abs_diff(s.attempts) <= slack_allowed,
            "{service} {op}: proxy saw {} attempts, the daemon counted {counted}",
            s.attempts
        );
        attempts += s.attempts;
        calls += s.calls;
        table.push(format!(
            "{service}.{op}: calls={} attempts={} proxy_faults={} max_attempts_per_call={}",
            s.calls, s.attempts, s.faults, s.max_attempts_per_call
        ));
    }
    let ratio = attempts as f64 / calls.max(1) as f64;
    assert!(
        ratio <= 1.6,
        "{attempts} attempts for {calls} calls: retries not bounded"
    );
    // Every service saw faults, at about the planned rate.
    let fake_faults = |calls: Vec<(u16, String)>| {
        (
            calls.len(),
            calls.iter().filter(|(status, _)| *status != 200).count(),
        )
    };
    let (cp_calls, cp_faults) = fake_faults(
        codepipeline
            .calls()
            .into_iter()
            .map(|c| (c.status, c.operation))
            .collect(),
    );
    let (cw_calls, cw_faults) = fake_faults(
        cloudwatch
            .calls()
            .into_iter()
            .map(|c| (c.status, c.operation))
            .collect(),
    );
    assert!(
        cp_faults > 0 && cw_faults > 0,
        "fakes: {cp_faults} {cw_faults}"
    );
    for service in ["sqs", "sns", "dynamodb", "logs"] {
        let faults = records
            .iter()
            .filter(|r| r.service == service && r.fault.is_some())
            .count();
        assert!(faults > 0, "no fault reached {service}");
    }
    let random: Vec<_> = records
        .iter()
        .filter(|r| !(r.operation == "FilterLogEvents" || r.operation == "Query"))
        .collect();
    let rate = random.iter().filter(|r| r.fault.is_some()).count() as f64 / random.len() as f64;
    assert!(
        (0.15..=0.45).contains(&rate),
        "{rate:.2} of moto's requests faulted"
    );

    // No crash: still serving, no task died, a clean exit.
    let (status, _) = get(&format!("http://{}/healthz", daemon.http_addr().await)).await;
    assert_eq!(status, 200);
    let degraded_total: usize = incidents.values().map(|i| degraded(i).len()).sum();
    let diagnostics_total: usize = incidents
        .values()
        .map(|i| i["diagnosis"].as_array().map_or(0, Vec::len))
        .sum();
    let mut latency: Vec<f64> = slack
        .accepted()
        .iter()
        .filter(|p| super::common::is_first_post(p))
        .filter_map(|p| {
            let key = post_key(p)?;
            Some((p.received_at - *sent_at.get(&key)?).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    let (exit, _, log) = daemon.terminate().await;
    assert!(task_failures(&log).is_empty(), "{:?}", task_failures(&log));
    assert!(exit.success(), "{log}");
    let hangs = all
        .iter()
        .filter(|r| r.fault.is_some_and(Fault::is_hang))
        .count();
    println!(
        "aws-faults figures: incidents={} (production failures={failures} + 1 rollback incident from {rollbacks} reports + staging 2) lost=0 dlq=0 \
         moto_requests={} moto_fault_rate={rate:.2} hangs={hangs} (hold {}s) \
         codepipeline_calls={cp_calls} codepipeline_faults={cp_faults} cloudwatch_calls={cw_calls} \
         cloudwatch_faults={cw_faults} sdk_calls={calls} sdk_attempts={attempts} \
         attempts_per_call={ratio:.2} max_outbox_attempts={max_outbox_attempts} \
         sns_repeats={} lost_publish_answers={lost_publish_answers} slack_repeats=0 \
         degraded_diagnostics={degraded_total}/{diagnostics_total} \
         first_post_latency_s p50={:.1} p90={:.1} max={:.1} elapsed_s={}",
        expected.len(),
        records.len(),
        hold.as_secs(),
        repeats(&sns_first),
        percentile(&latency, 0.5),
        percentile(&latency, 0.9),
        latency.last().copied().unwrap_or(0.0),
        started.elapsed().as_secs(),
    );
    for line in table {
        println!("  {line}");
    }
}

/// One hung SNS `Publish` must not hold back the Slack posts of other incidents.
///
/// Found by this suite (docs/reliability.md, "Fixed"): the SDK clients had no timeout and the
/// outbox sent one notification at a time, so a Publish that never answered stopped every post on
/// every channel. Now every AWS call is bounded (`load_sdk_config`) and Slack and SNS are drained
/// by independent loops (`OutboxWorker::run`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sns_publish_does_not_hold_back_slack_posts() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-hung-sns", 5).await;
    topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let executions: Vec<String> = (0..3).map(|i| format!("hung-{i}")).collect();
    seed_failures(&codepipeline, &moto, "production", &executions).await;
    let proxy = FaultProxy::start(moto.endpoint(), Flavor::Aws, 1).await;
    let mut plan = Plan::clean();
    plan.rules = vec![Rule {
        operation: Some("Publish"),
        needle: "kiro-pipeline-production".into(),
        fault: Fault::HangBefore,
        hold: Some(Duration::from_secs(60)),
    }];
    proxy.set_plan(plan);
    let env = [
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE",
            codepipeline.endpoint().to_string(),
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cloudwatch.endpoint().to_string(),
        ),
    ];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let daemon = Daemon::launch(
        &moto,
        &slack,
        &queues.url,
        temp_dir("faults-hung-sns"),
        &setup,
    )
    .await;
    for (i, e) in executions.iter().enumerate() {
        send_body(
            &moto,
            &queues.url,
            &failure_event(e, &format!("evt-hung-{i}")),
        )
        .await;
    }
    // Slack answers at once; 20 s is ample for three first posts.
    let expected: BTreeSet<String> = executions.iter().map(|e| failure_key(e)).collect();
    let posted = crate::support::eventually(Duration::from_secs(20), || async {
        first_posts(&slack).into_keys().collect::<BTreeSet<_>>() == expected
    })
    .await;
    assert!(
        posted,
        "{} of 3 Slack first posts within 20 s while one SNS Publish hangs",
        first_posts(&slack).len()
    );
    drop(daemon);
}

/// An SNS Publish answered by a bare 503 (an HTML page, no AWS error code, as a load balancer
/// answers) is retried later like any 5xx, and delivered once SNS answers again.
///
/// Found by this suite (docs/reliability.md, "Fixed"): `AwsError::from_sdk` decided "retriable"
/// from the error code alone, so a 5xx without one was given up on its first failure; it now
/// also reads the HTTP status (5xx, 429, 408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sns_publish_answered_by_a_bare_503_is_retried_and_delivered() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-bare-503", 5).await;
    let capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let executions = vec!["bare-0001".to_string()];
    seed_failures(&codepipeline, &moto, "production", &executions).await;
    let proxy = FaultProxy::start(moto.endpoint(), Flavor::Aws, 1).await;
    let mut plan = Plan::clean();
    plan.rules = vec![Rule {
        operation: Some("Publish"),
        needle: "kiro-pipeline-production".into(),
        fault: Fault::BareUnavailable,
        hold: None,
    }];
    proxy.set_plan(plan);
    let env = [
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        (
            "AWS_ENDPOINT_URL_CODEPIPELINE",
            codepipeline.endpoint().to_string(),
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cloudwatch.endpoint().to_string(),
        ),
    ];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 0",
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-bare-503");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    send_body(
        &moto,
        &queues.url,
        &failure_event("bare-0001", "evt-bare-1"),
    )
    .await;
    // SNS answers bare 503s until the outbox recorded a failed Publish (the SDK's own retries
    // all refused), then recovers.
    let refused = crate::support::eventually(Duration::from_secs(30), || async {
        outbox(&dir)
            .iter()
            .any(|r| r.channel == "sns" && r.attempts >= 1)
    })
    .await;
    assert!(refused, "{}", daemon.log());
    proxy.set_plan(Plan::clean());
    let mut envelopes = Vec::new();
    let limit = Instant::now() + Duration::from_secs(40);
    while sns_opened(&envelopes).is_empty() && Instant::now() < limit {
        envelopes.extend(drain_queue(&moto, &capture).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sns_opened(&envelopes).len(),
        1,
        "SNS message never delivered; outbox: {:#?}",
        outbox(&dir)
    );
}
