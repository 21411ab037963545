//! kill -9 at random points of an SQS run, restarting on the same state and queue each time.
//!
//! Duplicates, precisely: an incident is a row keyed by its incident key, so it cannot be
//! duplicated (checked anyway: exactly one per failure, no other). What a kill can repeat is a
//! post: the outbox sends one notification at a time per channel kind (Slack, SNS) and marks it
//! sent after the send, so a kill in between repeats that one post after restart. "Repeated first
//! posts" = accepted Slack first posts (or SNS `opened` messages) beyond one per incident; the
//! bound is one per kill on each channel.
#![allow(clippy::unwrap_used)]

use super::common::{
    create_queues, drain_queue, failure_event as one_failure, failure_event, failure_key,
    first_posts, outbox, repeats, seed_failures, size, sns_opened, stored_incidents, task_failures,
    Rng, ENVIRONMENTS_NO_STORM,
};
use crate::support::{
    depth, eventually, fake_endpoints, temp_dir, topic_with_capture, Daemon, Setup,
};
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_of_an_sqs_run_loses_no_incident_and_repeats_at_most_one_post_per_kill(
) {
    let (events, kills) = (size(200, 1000), size(5, 20));
    let mut rng = Rng::for_test("kill9");
    let started = Instant::now();
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-kill9", 5).await;
    let capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let executions: Vec<String> = (0..events).map(|i| format!("k9-{i:05}")).collect();
    seed_failures(&codepipeline, &moto, "production", &executions).await;
    let endpoints = fake_endpoints(&codepipeline, &cloudwatch);
    let setup = Setup {
        env: &endpoints,
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-kill9");
    let bodies: Vec<String> = executions
        .iter()
        .enumerate()
        .map(|(i, e)| failure_event(e, &format!("evt-k9-{i}")))
        .collect();

    // Half the events are queued before the first start, the rest arrive during the run (10
    // every 250 ms), so kills land while messages arrive as well as while a backlog drains.
    let (upfront, later) = bodies.split_at(events / 2);
    crate::support::send_bodies(&moto, &queues.url, upfront).await;
    let sender = {
        let (sqs, url, later) = (moto.sqs(), queues.url.clone(), later.to_vec());
        tokio::spawn(async move {
            for (n, chunk) in later.chunks(10).enumerate() {
                let entries: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, body)| {
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(format!("late{n}-{i}"))
                            .message_body(body)
                            .build()
                            .unwrap()
                    })
                    .collect();
                sqs.send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    // Kill points: once a random number of incidents is stored (spread over the whole run),
    // plus a random 0–700 ms, so a kill lands in receive, store, diagnose, post or delete; two
    // close targets make a kill during start-up and recovery.
    let mut targets: Vec<usize> = (0..kills)
        .map(|_| 1 + rng.below((events * 9 / 10) as u64) as usize)
        .collect();
    targets.sort_unstable();
    let mut kill_points = Vec::new();
    let mut logs = Vec::new();
    for target in &targets {
        let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
        let reached = eventually(Duration::from_secs(120), || async {
            daemon.incident_count() >= *target as i64
        })
        .await;
        assert!(
            reached,
            "{} of {target} incidents stored: {}",
            daemon.incident_count(),
            daemon.log()
        );
        // Not an assertion: this picks the instant of the kill.
        tokio::time::sleep(Duration::from_millis(rng.below(700))).await;
        kill_points.push(daemon.incident_count());
        logs.push(daemon.kill9().await);
    }
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    sender.await.unwrap();

    let drained = eventually(Duration::from_secs(size(180, 600) as u64), || async {
        depth(&moto, &queues.url).await == 0 && daemon.incident_count() == events as i64
    })
    .await;
    assert!(
        drained,
        "{} incidents of {events}, {} messages left: {}",
        daemon.incident_count(),
        depth(&moto, &queues.url).await,
        daemon.log()
    );
    // 0 failures without an incident, and no incident twice or out of nowhere.
    let expected: BTreeSet<String> = executions.iter().map(|e| failure_key(e)).collect();
    let stored: BTreeSet<String> = stored_incidents(&dir).into_keys().collect();
    assert_eq!(
        stored, expected,
        "stored incidents differ from the failures sent"
    );
    assert_eq!(
        depth(&moto, &queues.dlq_url).await,
        0,
        "a valid message reached the DLQ"
    );

    // Every incident's first post on both channels.
    let mut envelopes = Vec::new();
    let limit = Instant::now() + Duration::from_secs(size(120, 300) as u64);
    let posted = loop {
        envelopes.extend(drain_queue(&moto, &capture).await);
        let sns: BTreeSet<String> = sns_opened(&envelopes).into_keys().collect();
        let on_slack: BTreeSet<String> = first_posts(&slack).into_keys().collect();
        if (sns == expected && on_slack == expected) || Instant::now() > limit {
            break sns == expected && on_slack == expected;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let slack_first = first_posts(&slack);
    let sns_first = sns_opened(&envelopes);
    assert!(
        posted,
        "first posts: Slack {} / SNS {} of {events}: {}",
        slack_first.len(),
        sns_first.len(),
        daemon.log()
    );
    let rows = outbox(&dir);
    let given_up: Vec<_> = rows.iter().filter(|r| r.state == "failed").collect();
    assert!(given_up.is_empty(), "posts given up: {given_up:?}");
    let (slack_repeats, sns_repeats) = (repeats(&slack_first), repeats(&sns_first));
    assert!(
        slack_repeats <= kills && sns_repeats <= kills,
        "{slack_repeats} Slack + {sns_repeats} SNS repeated first posts after {kills} kills: {:?} {:?}",
        slack_first.iter().filter(|(_, n)| **n > 1).collect::<BTreeMap<_, _>>(),
        sns_first.iter().filter(|(_, n)| **n > 1).collect::<BTreeMap<_, _>>(),
    );
    // A diagnosis a kill interrupted is run by the next start (`Diagnoser::run_owed`).
    let undiagnosed = || {
        stored_incidents(&dir)
            .values()
            .filter(|i| i["diagnosis"].as_array().is_none_or(Vec::is_empty))
            .count()
    };
    crate::support::eventually(Duration::from_secs(30), || async { undiagnosed() == 0 }).await;
    let undiagnosed = undiagnosed();
    assert_eq!(
        undiagnosed, 0,
        "incidents never diagnosed after {kills} kills"
    );
    let (status, _, log) = daemon.terminate().await;
    logs.push(log);
    for log in &logs {
        assert!(task_failures(log).is_empty(), "{:?}", task_failures(log));
    }
    assert!(status.success(), "{}", logs.last().unwrap());
    println!(
        "kill9 figures: events={events} kills={kills} kill_points(stored incidents)={kill_points:?} \
         incidents={} missing=0 slack_first_posts={} sns_first_posts={} slack_repeats={slack_repeats} \
         sns_repeats={sns_repeats} undiagnosed_incidents={undiagnosed} elapsed_s={}",
        stored.len(),
        slack_first.values().sum::<usize>(),
        sns_first.values().sum::<usize>(),
        started.elapsed().as_secs()
    );
}

/// An incident stored just before a kill -9 must still be diagnosed after the restart.
///
/// Found by this suite (docs/reliability.md, "Fixed"): the diagnosis runs in a task spawned
/// after the incident is stored, so a kill before `record_diagnosis` lost it for good. At start
/// the daemon now runs the diagnoses its predecessor owed (`Diagnoser::run_owed`: active
/// incidents with diagnostics to run and no result).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_whose_diagnosis_a_kill_interrupted_is_diagnosed_after_restart() {
    use super::proxy::{Fault, FaultProxy, Flavor, Plan, Rule};
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-kill-diagnosis", 5).await;
    let executions = vec!["kd-0001".to_string()];
    seed_failures(&codepipeline, &moto, "production", &executions).await;
    // CodePipeline is slow for the first daemon only: its diagnosis is in flight at the kill.
    let proxy = FaultProxy::start(codepipeline.endpoint(), Flavor::Aws, 1).await;
    let mut slow = Plan::clean();
    slow.rules = vec![Rule {
        operation: None,
        needle: "kiro-pipeline-production".into(),
        fault: Fault::HangBefore,
        hold: Some(Duration::from_secs(30)),
    }];
    proxy.set_plan(slow);
    let env = [
        ("AWS_ENDPOINT_URL_CODEPIPELINE", proxy.endpoint()),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cloudwatch.endpoint().to_string(),
        ),
    ];
    let setup = Setup {
        env: &env,
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-kill-diagnosis");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    crate::support::send_body(&moto, &queues.url, &one_failure("kd-0001", "evt-kd-1")).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            daemon.incident_count() == 1
        })
        .await,
        "{}",
        daemon.log()
    );
    daemon.kill9().await;
    proxy.set_plan(Plan::clean());
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let diagnosed = eventually(Duration::from_secs(40), || async {
        stored_incidents(&dir)
            .values()
            .all(|i| i["diagnosis"].as_array().is_some_and(|d| !d.is_empty()))
    })
    .await;
    let posts: Vec<String> = slack
        .accepted()
        .iter()
        .filter_map(|p| p.text().map(String::from))
        .collect();
    assert!(
        diagnosed,
        "never diagnosed; posts: {posts:#?}\n{}",
        daemon.log()
    );
}
