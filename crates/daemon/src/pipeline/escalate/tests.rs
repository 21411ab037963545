//! Escalation timers: once, at the deadline; not after an ack; after a restart; across replicas;
//! on paused time. All but the paused-time test run against both stores.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::store::testing::{conformance, decide_and_store, execution_event, Subject};
use chrono::TimeZone;
use pipeline_responder_core::config::load_str;
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::event::PipelineState;

/// A short policy: L2 three seconds after a failure opens.
const CONFIG: &str = r#"
[aws]
account_id = "123456789012"
[sources.sqs]
enabled = false
[notifiers.slack]
webhook_url = "http://127.0.0.1:9/webhook"
[[escalation.levels]]
id = "L1"
slack_mention = "@oncall"
[[escalation.levels]]
id = "L2"
slack_mention = "@devops-lead"
[[escalation.levels]]
id = "L3"
slack_mention = "@eng-manager"
[[environments]]
name = "production"
[policies.pipeline_execution_failure]
escalation = [
  { level = "L1", after_secs = 0 },
  { level = "L2", after_secs = 3 },
  { level = "L3", after_secs = 6 },
]
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 27, 10, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

const KEY: &str = "pipeline_execution_failure/kiro-pipeline-production/e1";

conformance!(
    unacknowledged_failure_escalates_to_l2_then_l3_exactly_once_each,
    an_ack_before_the_deadline_stops_later_levels,
    a_restart_in_the_middle_of_a_wait_still_fires_once_at_the_deadline,
    replicas_ticking_together_fire_each_deadline_once,
    a_resolve_stops_all_levels,
);

async fn open_failure(store: &Store, config: &Config) {
    let event = execution_event(
        "evt-1",
        "kiro-pipeline-production",
        "e1",
        PipelineState::Failed,
        t0(),
        Some(t0()),
    );
    decide_and_store(store, config, &event, t0()).await;
}

/// Escalation posts queued so far, as (level mention) per post.
async fn escalations(store: &Store) -> Vec<String> {
    store
        .outbox_pending(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.notification.kind == NotificationKind::Escalated)
        .filter_map(|i| i.notification.mention)
        .collect()
}

fn escalator(store: &Store, config: &Config, clock: Clock) -> Escalator {
    Escalator {
        config: Arc::new(config.clone()),
        store: store.clone(),
        clock,
        wakeups: Default::default(),
    }
}

fn fixed(t: DateTime<Utc>) -> Clock {
    Arc::new(move || t)
}

async fn unacknowledged_failure_escalates_to_l2_then_l3_exactly_once_each(s: Subject) {
    let config = load_str(CONFIG, &|_| None).unwrap();
    let store = s.store.clone();
    open_failure(&store, &config).await;
    assert_eq!(
        escalator(&store, &config, fixed(at(2))).tick().await,
        0,
        "not due yet"
    );
    assert_eq!(escalator(&store, &config, fixed(at(3))).tick().await, 1);
    assert_eq!(
        escalator(&store, &config, fixed(at(4))).tick().await,
        0,
        "fired once"
    );
    assert_eq!(escalator(&store, &config, fixed(at(6))).tick().await, 1);
    assert_eq!(escalator(&store, &config, fixed(at(60))).tick().await, 0);
    assert_eq!(
        escalations(&store).await,
        vec!["@devops-lead", "@eng-manager"]
    );
    let (incident, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(incident.highest_level_notified, Some(2));
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.kind == pipeline_responder_core::record::TimelineKind::Escalated)
            .count(),
        2
    );
}

async fn an_ack_before_the_deadline_stops_later_levels(s: Subject) {
    let config = load_str(CONFIG, &|_| None).unwrap();
    let store = s.store.clone();
    open_failure(&store, &config).await;
    assert!(store
        .acknowledge(KEY, "alice", crate::store::fixed(vec![]), at(2))
        .await
        .unwrap());
    assert_eq!(escalator(&store, &config, fixed(at(10))).tick().await, 0);
    assert!(escalations(&store).await.is_empty());
    assert_eq!(
        store.pending_deadlines().await.unwrap(),
        0,
        "skipped, not left pending"
    );
}

async fn a_restart_in_the_middle_of_a_wait_still_fires_once_at_the_deadline(s: Subject) {
    let config = load_str(CONFIG, &|_| None).unwrap();
    open_failure(&s.store, &config).await;
    assert_eq!(escalator(&s.store, &config, fixed(at(1))).tick().await, 0);
    // A new process: the deadlines come back from the stored state.
    let store = s.another_process("restarted");
    assert_eq!(escalator(&store, &config, fixed(at(2))).tick().await, 0);
    assert_eq!(escalator(&store, &config, fixed(at(3))).tick().await, 1);
    let again = s.another_process("second");
    assert_eq!(
        escalator(&again, &config, fixed(at(3))).tick().await,
        0,
        "a second process does not fire it again"
    );
    assert_eq!(escalations(&store).await, vec!["@devops-lead"]);
}

/// Three replicas tick at the same moments: each level is queued once, by one of them.
async fn replicas_ticking_together_fire_each_deadline_once(s: Subject) {
    let config = load_str(CONFIG, &|_| None).unwrap();
    open_failure(&s.store, &config).await;
    let stores = [
        s.store.clone(),
        s.another_process("replica-b"),
        s.another_process("replica-c"),
    ];
    for t in [3, 6, 9] {
        let mut ticks = Vec::new();
        for store in &stores {
            let engine = escalator(store, &config, fixed(at(t)));
            ticks.push(tokio::spawn(async move { engine.tick().await }));
        }
        let mut fired = 0;
        for tick in ticks {
            fired += tick.await.unwrap();
        }
        assert_eq!(fired, usize::from(t < 9), "at {t} s");
    }
    assert_eq!(
        escalations(&s.store).await,
        vec!["@devops-lead", "@eng-manager"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_engine_sleeps_until_the_deadline_on_paused_time() {
    let config = load_str(CONFIG, &|_| None).unwrap();
    let s = Subject::embedded("escalate-paused").await;
    let store = s.store.clone();
    open_failure(&store, &config).await;
    let cancel = CancellationToken::new();
    let engine = escalator(&store, &config, tokio_clock(t0()));
    let task = tokio::spawn(engine.run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(escalations(&store).await.is_empty(), "nothing before 3 s");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        escalations(&store).await,
        vec!["@devops-lead", "@eng-manager"]
    );
    cancel.cancel();
    task.await.unwrap();
}

async fn a_resolve_stops_all_levels(s: Subject) {
    let config = load_str(CONFIG, &|_| None).unwrap();
    let store = s.store.clone();
    open_failure(&store, &config).await;
    let success = execution_event(
        "evt-2",
        "kiro-pipeline-production",
        "e2",
        PipelineState::Succeeded,
        at(1),
        Some(at(1)),
    );
    decide_and_store(&store, &config, &success, at(1)).await;
    assert_eq!(escalator(&store, &config, fixed(at(60))).tick().await, 0);
    assert!(escalations(&store).await.is_empty());
    assert_eq!(store.pending_deadlines().await.unwrap(), 0);
}
