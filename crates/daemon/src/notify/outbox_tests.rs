//! The outbox's stages with fake notifiers on the embedded store: lanes per kind, retries and
//! giving up, silences, storm control (and pagers outside it).
#![allow(clippy::unwrap_used)]

use super::fake::FakeNotifier;
use super::outbox::OutboxWorker;
use super::registry::Notifiers;
use super::storm::StormGuard;
use super::SendError;
use crate::store::testing::{decide_and_store, execution_event, Subject};
use crate::store::{Silence, Store};
use chrono::{DateTime, TimeZone, Utc};
use pipeline_responder_core::config::{load_str, Config};
use pipeline_responder_core::event::PipelineState;
use std::sync::Arc;

/// Every production failure goes to the `webhook` endpoint `audit` and pages PagerDuty's
/// `oncall` key at L1: two lanes, one grouped by storm control and one not.
const CONFIG: &str = r#"
[aws]
account_id = "123456789012"
[sources.sqs]
enabled = false
[notifiers.sns]
enabled = false
[notifiers.pagerduty]
routing_keys = { oncall = "0123456789abcdef0123456789abcdef" }
[notifiers.webhook.endpoints.audit]
url = "http://127.0.0.1:9/hook"
secret = "0123456789abcdef0123"
[[escalation.levels]]
id = "L1"
notify = { pagerduty = "oncall" }
[[escalation.levels]]
id = "L2"
[[escalation.levels]]
id = "L3"
[[environments]]
name = "production"
notify = { webhook = "audit" }
[storm]
max_incidents = 5
window_secs = 60
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 27, 10, 0, 0).unwrap()
}

async fn open_failures(store: &Store, config: &Config, n: usize) {
    for i in 0..n {
        let event = execution_event(
            format!("evt-{i}"),
            "kiro-pipeline-production",
            format!("e{i}"),
            PipelineState::Failed,
            t0(),
            Some(t0()),
        );
        decide_and_store(store, config, &event, t0()).await;
    }
}

struct Rig {
    _subject: Subject,
    store: Store,
    worker: OutboxWorker,
    hook: FakeNotifier,
    pager: FakeNotifier,
}

async fn rig(name: &str, failures: usize) -> Rig {
    let config = Arc::new(load_str(CONFIG, &|_| None).unwrap());
    let subject = Subject::embedded(name).await;
    let store = subject.store.clone();
    open_failures(&store, &config, failures).await;
    let hook = FakeNotifier::new("webhook", true);
    let pager = FakeNotifier::new("pagerduty", false);
    let worker = OutboxWorker {
        config: Arc::clone(&config),
        store: store.clone(),
        notifiers: Notifiers::of(vec![Arc::new(hook.clone()), Arc::new(pager.clone())]),
        dry_run: false,
        wakeups: crate::wakeups::Wakeups::default(),
        storm: Arc::new(std::sync::Mutex::new(StormGuard::new(5, 60))),
    };
    Rig {
        _subject: subject,
        store,
        worker,
        hook,
        pager,
    }
}

#[tokio::test]
async fn each_kind_gets_its_own_posts_and_a_failing_lane_holds_only_its_own() {
    let r = rig("lanes", 1).await;
    r.hook.answer([Err(SendError::transient("HTTP 503"))]);
    assert_eq!(r.worker.drain().await, 1, "the pager's trigger went out");
    assert_eq!(r.pager.calls().len(), 1);
    assert_eq!(r.pager.calls()[0].0, "oncall");
    assert_eq!(r.pager.calls()[0].1, "opened");
    assert_eq!(r.hook.calls().len(), 1, "tried once");
    let pending = r.store.outbox_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1, "the webhook post waits for its retry");
    assert_eq!(pending[0].attempts, 1);
    assert!(pending[0].next_attempt_at > Utc::now(), "backed off");
}

#[tokio::test]
async fn a_permanent_error_gives_up_and_records_why() {
    let r = rig("permanent", 1).await;
    r.hook
        .answer([Err(SendError::permanent("HTTP 400 bad body"))]);
    r.worker.drain().await;
    let pending = r.store.outbox_pending(10).await.unwrap();
    assert!(pending.is_empty(), "given up, not retried: {pending:?}");
    let key = "pipeline_execution_failure/kiro-pipeline-production/e0";
    let (_, timeline) = r.store.incident(key).await.unwrap().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.text.contains("webhook audit: gave up: HTTP 400 bad body")),
        "{timeline:?}"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let r = rig("retry-after", 1).await;
    r.hook.answer([Err(SendError {
        message: "HTTP 429".into(),
        retry_after: Some(std::time::Duration::from_secs(100_000)),
        permanent: false,
    })]);
    let before = Utc::now();
    r.worker.drain().await;
    let pending = r.store.outbox_pending(10).await.unwrap();
    let wait = (pending[0].next_attempt_at - before).num_seconds();
    assert!(
        (890..=905).contains(&wait),
        "capped at 900 s, waited {wait}"
    );
}

#[tokio::test]
async fn a_silence_holds_every_kind() {
    let r = rig("silence", 1).await;
    r.store
        .add_silence(Silence {
            id: 0,
            environment: Some("production".into()),
            pipeline: None,
            incident_type: None,
            starts_at: t0(),
            ends_at: Utc::now() + chrono::Duration::hours(1),
            created_by: "test".into(),
            comment: None,
        })
        .await
        .unwrap();
    r.worker.drain().await;
    assert!(r.hook.calls().is_empty() && r.pager.calls().is_empty());
    assert!(r.store.outbox_pending(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_storm_groups_the_chat_lane_into_one_summary_but_pages_every_incident() {
    let r = rig("storm", 12).await;
    r.worker.drain().await;
    let hook = r.hook.calls();
    let individual = hook.iter().filter(|c| c.1 == "opened").count();
    let summaries: Vec<_> = hook.iter().filter(|c| c.1 == "summary").collect();
    assert_eq!(
        individual, 4,
        "max_incidents - 1 individual posts: {hook:?}"
    );
    assert_eq!(summaries.len(), 1, "then one summary: {hook:?}");
    assert_eq!(summaries[0].2, "8", "standing for the other 8");
    assert_eq!(r.pager.calls().len(), 12, "every incident paged");
}
