//! AWS API economy of the watcher (issue 7): calls per watched pipeline per idle hour, a failed
//! execution's state read once rather than every poll, and many pipelines polled under per-API
//! rate limits without a single throttling answer. Calls are counted by the fakes (real SDK
//! clients, real wire protocols), never timed.
#![allow(clippy::unwrap_used)]

use crate::support::{create_queues, eventually, get, metric, temp_dir, Daemon, Setup};
use pipeline_responder_e2e::{
    ActionModel, AlarmModel, CloudWatchFake, CodePipelineFake, ExecutionModel, Moto, PipelineModel,
    SlackFake, StageModel,
};
use std::time::Duration;

/// An idle pipeline: its newest execution succeeded an hour ago.
fn idle_pipeline(name: &str) -> PipelineModel {
    let then = chrono::Utc::now() - chrono::Duration::hours(1);
    PipelineModel::new(name, then)
        .with_stage(
            StageModel::new("Source")
                .with_action(ActionModel::new("Source", "Succeeded", then))
                .ran("ok-1", "Succeeded"),
        )
        .with_execution(ExecutionModel::new("ok-1", "Succeeded", then))
}

fn environments(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("[[environments]]\nname = \"{n}\"\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_pipelines_cost_at_most_15_calls_each_per_hour_and_a_known_failure_is_not_reread() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-economy", 30).await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let names: Vec<String> = ["test", "staging", "production"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in &names {
        codepipeline.set_pipeline(idle_pipeline(&format!("kiro-pipeline-{n}")));
        cloudwatch.put_alarm(
            AlarmModel::new(
                &format!("kiro-pipeline-{n}-pipeline-failures"),
                "KiroPipeline",
                "PipelineFailures",
                chrono::Utc::now(),
            )
            .in_state("OK", "healthy"),
        );
    }
    let [cp, cw] = crate::support::fake_endpoints(&codepipeline, &cloudwatch);
    let env = [cp, cw];
    let environments = environments(&names);
    let setup = Setup {
        env: &env,
        watcher: true,
        watcher_extra: "interval_secs = 10\nmax_requests_per_second = 50",
        environments: &environments,
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("economy"), &setup).await;
    let lists = || codepipeline.call_count("ListPipelineExecutions");
    // Calls are counted per completed poll round: a boundary is a moment between two rounds,
    // after the daemon logged round r done and before round r + 1 made any call (every round
    // lists each pipeline once, so then exactly 3 r lists were made). Waits on progress only.
    let rounds = || daemon.log().matches("Watcher poll done").count();
    let pipelines = names.len();
    let boundary = |from: usize| {
        let (lists, rounds) = (&lists, &rounds);
        let (codepipeline, cloudwatch) = (&codepipeline, &cloudwatch);
        async move {
            for _ in 0..2_400 {
                let r = rounds();
                if r >= from {
                    let snapshot = (
                        lists(),
                        codepipeline.calls().len(),
                        cloudwatch.calls().len(),
                    );
                    if rounds() == r && snapshot.0 == pipelines * r && lists() == snapshot.0 {
                        return Some((r, snapshot));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        }
    };
    // Skip the first round (start-up); then two whole rounds (alarms are reconciled on every
    // second one).
    let (first, start) = boundary(2)
        .await
        .unwrap_or_else(|| panic!("{}", daemon.log()));
    let (mut last, mut end) = boundary(first + 2)
        .await
        .unwrap_or_else(|| panic!("{}", daemon.log()));
    // A busy machine may have let a boundary pass: count an even number of rounds anyway.
    while (last - first) % 2 != 0 {
        (last, end) = boundary(last + 1)
            .await
            .unwrap_or_else(|| panic!("{}", daemon.log()));
    }
    let polls = (last - first) as f64;
    assert_eq!(end.0 - start.0, names.len() * (last - first));
    let calls = ((end.1 - start.1) + (end.2 - start.2)) as f64;
    let per_pipeline_per_hour = calls / polls / names.len() as f64 * 3600.0 / 300.0;
    println!(
        "idle: {calls} calls over {polls:.1} polls of {} pipelines → {per_pipeline_per_hour:.1} calls per pipeline per hour at the default 300 s interval",
        names.len()
    );
    assert!(
        per_pipeline_per_hour <= 15.0,
        "{per_pipeline_per_hour:.2} calls per pipeline per idle hour (target ≤ 15)"
    );
    assert_eq!(
        codepipeline.call_count("GetPipelineState"),
        0,
        "idle pipelines need no state read"
    );

    // production fails: the watcher reads its state once; later polls see it known and stop.
    let now = chrono::Utc::now();
    codepipeline.update_pipeline("kiro-pipeline-production", |p| {
        p.executions
            .push(ExecutionModel::new("failed-1", "Failed", now));
    });
    assert!(
        eventually(Duration::from_secs(30), || async {
            slack
                .accepted()
                .iter()
                .any(|p| p.text().is_some_and(|t| t.contains("failed-1")))
        })
        .await,
        "{}",
        daemon.log()
    );
    // Diagnostics of the new incident also read the state; wait until they are done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let states = codepipeline.call_count("GetPipelineState");
    let at = lists();
    assert!(
        eventually(Duration::from_secs(60), || async { lists() >= at + 3 * 2 }).await,
        "{}",
        daemon.log()
    );
    assert_eq!(
        codepipeline.call_count("GetPipelineState"),
        states,
        "later polls re-read the state of a failure already handled"
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pipelines_are_polled_under_the_per_api_rate_limits_without_throttling() {
    // CI: 100 pipelines (about 13 s); `PR_ECONOMY_FULL=1`: 1,000 (about 2 minutes).
    let n: usize = if std::env::var_os("PR_ECONOMY_FULL").is_some() {
        1_000
    } else {
        100
    };
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-many", 30).await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    // Per-operation limits the fakes enforce like AWS (throttling answers beyond them): 9/s is
    // CloudWatch's published DescribeAlarms quota; 10/s per CodePipeline read API is a
    // conservative stand-in (CodePipeline does not publish per-API rates).
    codepipeline.set_tps_limit(Some(10));
    cloudwatch.set_tps_limit(Some(9));
    let names: Vec<String> = (0..n).map(|i| format!("e{i:04}")).collect();
    for name in &names {
        codepipeline.set_pipeline(idle_pipeline(&format!("kiro-pipeline-{name}")));
    }
    let [cp, cw] = crate::support::fake_endpoints(&codepipeline, &cloudwatch);
    let env = [cp, cw];
    let environments = environments(&names);
    let setup = Setup {
        env: &env,
        watcher: true,
        // The shipped default budget is 5/s; 8/s stays under both limits.
        watcher_extra: "interval_secs = 3600\nmax_requests_per_second = 8",
        environments: &environments,
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("many"), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    let started = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(n as u64 / 4 + 30), || async {
            codepipeline.call_count("ListPipelineExecutions") >= n
                && cloudwatch.call_count("DescribeAlarms") >= 1
        })
        .await,
        "{}",
        daemon.log()
    );
    let took = started.elapsed();
    let refused: Vec<_> = codepipeline
        .calls()
        .into_iter()
        .filter(|c| c.status != 200)
        .map(|c| format!("{} {:?}", c.operation, c.error))
        .chain(
            cloudwatch
                .calls()
                .into_iter()
                .filter(|c| c.status != 200)
                .map(|c| format!("{} {:?}", c.operation, c.error)),
        )
        .collect();
    assert!(refused.is_empty(), "throttled or failed: {refused:?}");
    let mut polled: Vec<String> = codepipeline
        .calls_to("ListPipelineExecutions")
        .iter()
        .map(|c| c.request["pipelineName"].as_str().unwrap().to_string())
        .collect();
    polled.sort();
    polled.dedup();
    assert_eq!(polled.len(), n, "every pipeline polled");
    assert_eq!(
        codepipeline.call_count("ListPipelineExecutions"),
        n,
        "once each in one poll"
    );
    assert_eq!(
        cloudwatch.call_count("DescribeAlarms"),
        1,
        "one alarm call covers every environment's prefix"
    );
    let text = get(&format!("{base}/metrics")).await.1;
    assert_eq!(
        metric(
            &text,
            "pipeline_responder_aws_requests_total",
            &[("outcome", "throttled")]
        ),
        0.0
    );
    println!(
        "{n} pipelines: one poll = {} calls in {:.1} s, 0 throttled",
        n + 1,
        took.as_secs_f64()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
