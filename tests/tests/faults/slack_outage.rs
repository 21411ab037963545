//! Slack down, then back: the daemon's webhook goes through the fault proxy, which answers every
//! request 503 for the outage (the Slack fake's `fail_next` counts requests, not time, so a timed
//! outage is the proxy's job); failures arrive meanwhile; then Slack recovers.
#![allow(clippy::unwrap_used)]

use super::common::{
    create_queues, drain_queue, failure_event, failure_key, first_posts, is_first_post, outbox,
    post_key, seed_failures, size, sns_opened, task_failures, Rng, ENVIRONMENTS_NO_STORM,
};
use super::proxy::{FaultProxy, Flavor, Plan};
use crate::support::{
    depth, fake_endpoints, send_body, temp_dir, topic_with_capture, Daemon, Setup,
};
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_down_then_back_every_post_delivered_after_recovery_none_lost_none_doubled() {
    let outage = Duration::from_secs(size(20, 300) as u64);
    let failures = size(10, 30);
    let mut rng = Rng::for_test("slack-outage");
    let started = Instant::now();
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let proxy = FaultProxy::start(&slack.webhook_url(), Flavor::Slack, rng.next_u64()).await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-slack", 5).await;
    let capture = topic_with_capture(&moto, "kiro-pipeline-production-deployments").await;
    let executions: Vec<String> = (0..failures).map(|i| format!("so-{i:04}")).collect();
    seed_failures(&codepipeline, &moto, "production", &executions).await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [
        cp,
        cw,
        (
            "TEST_SLACK_WEBHOOK",
            format!("{}/webhook", proxy.endpoint()),
        ),
    ];
    let setup = Setup {
        env: &env,
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-slack");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;

    // Slack goes down; failures arrive through the first half of the outage.
    proxy.set_plan(Plan::outage());
    let down_at = Instant::now();
    let spacing = outage / 2 / failures as u32;
    for (i, execution) in executions.iter().enumerate() {
        send_body(
            &moto,
            &queues.url,
            &failure_event(execution, &format!("evt-so-{i}")),
        )
        .await;
        tokio::time::sleep(spacing).await;
    }
    let expected: BTreeSet<String> = executions.iter().map(|e| failure_key(e)).collect();
    // A failing Slack holds back nothing else: every SNS message goes out during the outage.
    let mut envelopes = Vec::new();
    let sns_done = loop {
        envelopes.extend(drain_queue(&moto, &capture).await);
        let sent: BTreeSet<String> = sns_opened(&envelopes).into_keys().collect();
        if sent == expected || down_at.elapsed() >= outage {
            break sent == expected;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        sns_done,
        "SNS sent {} of {failures} during the Slack outage: {}",
        sns_opened(&envelopes).len(),
        daemon.log()
    );
    // Not an assertion: the rest of the outage.
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    assert!(
        slack.posts().is_empty(),
        "the proxy let a request through during the outage"
    );
    let during = proxy.records();
    let outage_secs = down_at.elapsed().as_secs_f64();

    // Slack is back.
    proxy.set_plan(Plan::clean());
    let up_at = Instant::now();
    let limit = up_at + Duration::from_secs(90);
    let delivered = loop {
        let firsts = first_posts(&slack);
        let keys: BTreeSet<String> = firsts.keys().cloned().collect();
        let pending = outbox(&dir)
            .iter()
            .any(|r| r.channel == "slack" && r.state == "pending");
        if (keys == expected && !pending) || Instant::now() > limit {
            break keys == expected && !pending;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let recovered_in = up_at.elapsed().as_secs_f64();
    let firsts = first_posts(&slack);
    assert!(
        delivered,
        "{} of {failures} first posts {recovered_in:.0} s after recovery: {}",
        firsts.len(),
        daemon.log()
    );
    // None lost (checked above), none doubled, none given up; the Slack outbox is empty, so
    // nothing else can still be sent.
    let doubled: BTreeMap<&String, &usize> = firsts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "doubled first posts: {doubled:?}");
    let rows = outbox(&dir);
    let slack_rows: Vec<_> = rows.iter().filter(|r| r.channel == "slack").collect();
    assert!(
        slack_rows.iter().all(|r| r.state == "sent"),
        "{slack_rows:#?}"
    );
    let opened: BTreeSet<String> = slack_rows
        .iter()
        .filter(|r| r.kind == "opened")
        .map(|r| r.key.clone())
        .collect();
    assert_eq!(
        opened, expected,
        "one opened Slack notification per incident, all sent"
    );
    assert!(
        slack_rows.iter().filter(|r| r.attempts > 1).all(|r| r
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503"))),
        "retried for another reason than the outage: {slack_rows:#?}"
    );
    // Each post in its incident's order: the first post before the incident's other posts.
    let accepted = slack.accepted();
    for key in &expected {
        let of_key: Vec<_> = accepted
            .iter()
            .filter(|p| post_key(p).as_deref() == Some(key.as_str()))
            .collect();
        assert!(
            of_key.first().is_some_and(|p| is_first_post(p)),
            "{key}: a follow-up was posted before the first post"
        );
    }
    // Retries during the outage were bounded by the backoff (2^n s, at most 60 s apart) and
    // the daemon did keep retrying.
    let attempts_max = slack_rows.iter().map(|r| r.attempts).max().unwrap_or(0);
    let bound = 2 + (outage_secs / 60.0).ceil() as i64 + 6;
    assert!(
        attempts_max <= bound,
        "a post took {attempts_max} attempts over a {outage_secs:.0} s outage (bound {bound})"
    );
    assert!(
        during.len() >= failures * 2,
        "{} Slack requests during the outage for {failures} posts: no retry?",
        during.len()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(task_failures(&log).is_empty(), "{:?}", task_failures(&log));
    assert!(status.success(), "{log}");
    assert_eq!(depth(&moto, &queues.dlq_url).await, 0);
    println!(
        "slack-outage figures: outage_s={outage_secs:.0} failures={failures} \
         slack_requests_during_outage={} sns_during_outage={}/{failures} \
         all_first_posts_delivered_s_after_recovery={recovered_in:.1} lost=0 doubled=0 \
         max_attempts_per_post={attempts_max} slack_posts_total={} elapsed_s={}",
        during.len(),
        sns_opened(&envelopes).len(),
        accepted.len(),
        started.elapsed().as_secs()
    );
}
