//! Our own store fails writes for a while (issue 14): another process holds the SQLite file's
//! write lock (`BEGIN EXCLUSIVE`), so every write of the daemon fails with `database is locked`
//! after its busy timeout, as it would on a full disk or a read-only volume. Meanwhile valid
//! failure events arrive over SQS. Nothing may reach the dead-letter queue, `/readyz` must say
//! 503 with the reason, and after the lock is released every incident is posted and diagnosed
//! without a restart.
#![allow(clippy::unwrap_used)]

use super::common::{
    create_queues, failure_event, failure_key, first_posts, seed_failures, size, stored_incidents,
    ENVIRONMENTS_NO_STORM,
};
use crate::support::{depth, eventually, fake_endpoints, get, send_body, temp_dir, Daemon, Setup};
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_sends_nothing_to_the_dlq_says_not_ready_and_catches_up_by_itself() {
    let outage = Duration::from_secs(size(20, 60) as u64);
    let failures = size(4, 20);
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    // Visibility 2 s, maxReceiveCount 5: a message left for redelivery would reach the DLQ
    // within about 10 s of the outage.
    let queues = create_queues(&moto, "faults-store", 2).await;
    let executions: Vec<String> = (0..failures).map(|i| format!("st-{i:04}")).collect();
    seed_failures(&codepipeline, &moto, "production", &executions).await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [cp, cw];
    let setup = Setup {
        env: &env,
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-store");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;
    let base = format!("http://{}", daemon.http_addr().await);
    assert!(
        eventually(Duration::from_secs(60), || async {
            get(&format!("{base}/readyz")).await.0 == 200
        })
        .await,
        "not ready before the outage: {}",
        daemon.log()
    );

    // The outage: another process takes the write lock and keeps it.
    let lock = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for (i, execution) in executions.iter().enumerate() {
        send_body(
            &moto,
            &queues.url,
            &failure_event(execution, &format!("evt-st-{i}")),
        )
        .await;
    }
    let mut readyz = (0, String::new());
    for _ in 0..120 {
        readyz = get(&format!("{base}/readyz")).await;
        if readyz.0 == 503 && readyz.1.contains("store") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        readyz.0 == 503 && readyz.1.contains("store"),
        "/readyz during the outage: {readyz:?}"
    );
    // Not an assertion: the rest of the outage.
    tokio::time::sleep(outage).await;
    let dead_during = depth(&moto, &queues.dlq_url).await;
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);

    // Back: every incident posted and diagnosed, ready again, the DLQ empty.
    let expected: BTreeSet<String> = executions.iter().map(|e| failure_key(e)).collect();
    let caught_up = eventually(Duration::from_secs(180), || async {
        let posted: BTreeSet<String> = first_posts(&slack).into_keys().collect();
        let diagnosed = stored_incidents(&dir)
            .iter()
            .filter(|(k, v)| {
                expected.contains(*k)
                    && v["diagnosis"]
                        .as_array()
                        .is_some_and(|d| d.iter().any(|r| r["name"] == "build_log"))
            })
            .count();
        posted == expected && diagnosed == expected.len()
    })
    .await;
    assert!(
        caught_up,
        "after the outage: posted {:?}, log:\n{}",
        first_posts(&slack).keys().collect::<Vec<_>>(),
        daemon.log()
    );
    assert!(
        eventually(Duration::from_secs(60), || async {
            get(&format!("{base}/readyz")).await.0 == 200
        })
        .await,
        "not ready again after the outage"
    );
    let dead_after = depth(&moto, &queues.dlq_url).await;
    assert_eq!(
        (dead_during, dead_after),
        (0, 0),
        "valid events dead-lettered because of our own store"
    );
    assert_eq!(
        depth(&moto, &queues.url).await,
        0,
        "events left in the queue"
    );
    println!(
        "store outage figures: outage {} s, {failures} events, 0 in the DLQ, all posted and diagnosed after recovery",
        outage.as_secs()
    );
}
