//! The embedded store: one transaction per input, conditional opens, durability across reopen,
//! the outbox's order and retry bookkeeping.
#![allow(clippy::unwrap_used)]

use super::*;
use chrono::TimeZone;
use pipeline_responder_core::config::load_str;
use pipeline_responder_core::event::{
    Carrier, Event, EventKind, PipelineExecutionChange, PipelineState,
};
use pipeline_responder_core::rules::evaluate;

const CONFIG: &str = r#"
[aws]
account_id = "123456789012"
[sources.sqs]
enabled = false
[notifiers.slack]
webhook_url = "http://127.0.0.1:9/webhook"
[[environments]]
name = "production"
[[environments]]
name = "staging"
"#;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 27, 10, minute, 0).unwrap()
}

fn failed(env: &str, exec: &str, minute: u32) -> Event {
    Event {
        id: format!("evt-{env}-{exec}-{minute}"),
        time: at(minute),
        region: None,
        account: None,
        carrier: Carrier::EventBridge,
        kind: EventKind::PipelineExecution(PipelineExecutionChange {
            pipeline: format!("kiro-pipeline-{env}"),
            execution_id: exec.into(),
            state: PipelineState::Failed,
            start_time: Some(at(0)),
            trigger_type: None,
            trigger_detail: None,
            stop_comments: None,
            failed_stage: None,
            failed_actions: vec![],
        }),
    }
}

fn input(event: &Event) -> InputRecord {
    InputRecord {
        id: event.id.clone(),
        transition: event.transition_key(),
        event_time: event.time,
    }
}

async fn decide_and_apply(store: &Store, event: &Event, now: DateTime<Utc>) -> Applied {
    let config = load_str(CONFIG, &|_| None).unwrap();
    let view = store.view(now - chrono::Duration::days(8)).await.unwrap();
    let decision = evaluate(&config, event, &view, now);
    store
        .apply(input(event), decision, vec![], now, None)
        .await
        .unwrap()
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pr-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state.db")
}

#[tokio::test]
async fn an_input_is_stored_whole_and_only_once() {
    let path = temp_path("once");
    let store = Store::open(&path).unwrap();
    let event = failed("production", "e1", 1);
    let applied = decide_and_apply(&store, &event, at(1)).await;
    assert_eq!(
        applied.opened,
        vec!["pipeline_execution_failure/kiro-pipeline-production/e1"]
    );
    assert_eq!(applied.queued, 2, "Slack and SNS");
    assert!(store
        .is_processed(&event.id, &event.transition_key())
        .await
        .unwrap());
    // Redelivery (same id) and the same transition under another id change nothing.
    assert!(decide_and_apply(&store, &event, at(2)).await.duplicate);
    let mut again = event.clone();
    again.id = "other-id".into();
    assert!(decide_and_apply(&store, &again, at(2)).await.duplicate);
    let (incident, timeline) = store.incident(&applied.opened[0]).await.unwrap().unwrap();
    assert_eq!(incident.severity.as_str(), "high");
    assert_eq!(timeline.len(), 1);
    assert_eq!(store.outbox_pending(10).await.unwrap().len(), 2);
    assert_eq!(store.incidents(true).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_open_of_the_same_key_only_joins() {
    let store = Store::open(&temp_path("join")).unwrap();
    let config = load_str(CONFIG, &|_| None).unwrap();
    // Two decisions made on the same (empty) view, as two racing inputs would.
    let first = failed("production", "e1", 1);
    let mut second = failed("production", "e1", 1);
    second.id = "second".into();
    if let EventKind::PipelineExecution(p) = &mut second.kind {
        p.state = PipelineState::Failed;
    }
    let empty = store.view(at(0)).await.unwrap();
    let d1 = evaluate(&config, &first, &empty, at(1));
    let d2 = evaluate(&config, &second, &empty, at(1));
    let a1 = store
        .apply(input(&first), d1, vec![], at(1), None)
        .await
        .unwrap();
    let mut in2 = input(&second);
    in2.transition = "different-transition".into();
    let a2 = store.apply(in2, d2, vec![], at(1), None).await.unwrap();
    assert_eq!(a1.opened.len(), 1);
    assert!(
        a2.opened.is_empty(),
        "the key exists: no second incident, no second post"
    );
    assert_eq!(a2.queued, 0);
    assert_eq!(store.incidents(false).await.unwrap().len(), 1);
}

#[tokio::test]
async fn everything_survives_closing_and_reopening_the_file() {
    let path = temp_path("reopen");
    {
        let store = Store::open(&path).unwrap();
        decide_and_apply(&store, &failed("staging", "s1", 1), at(1)).await;
    }
    let store = Store::open(&path).unwrap();
    let view = store.view(at(0)).await.unwrap();
    assert_eq!(view.incidents.len(), 1);
    assert_eq!(store.outbox_pending(10).await.unwrap().len(), 2);
    assert!(store.is_processed("evt-staging-s1-1", "x").await.unwrap());
}

#[tokio::test]
async fn resolution_is_recorded_and_leaves_the_view_after_the_history_window() {
    let store = Store::open(&temp_path("resolve")).unwrap();
    decide_and_apply(&store, &failed("production", "e1", 1), at(1)).await;
    let mut ok = failed("production", "e2", 30);
    if let EventKind::PipelineExecution(p) = &mut ok.kind {
        p.state = PipelineState::Succeeded;
        p.start_time = Some(at(20));
    }
    let applied = decide_and_apply(&store, &ok, at(30)).await;
    assert_eq!(applied.queued, 2, "resolution posts");
    let (incident, timeline) = store
        .incident("pipeline_execution_failure/kiro-pipeline-production/e1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert!(timeline.iter().any(|t| t.kind == TimelineKind::Resolved));
    assert_eq!(
        store.view(at(29)).await.unwrap().incidents.len(),
        1,
        "recently resolved stays visible"
    );
    assert!(store.view(at(31)).await.unwrap().incidents.is_empty());
    let cancelled: i64 = store
        .with(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM deadlines WHERE state = 'cancelled'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(cancelled, 1, "the pending L2 deadline is cancelled");
}

#[tokio::test]
async fn outbox_records_sends_failures_and_threads() {
    let store = Store::open(&temp_path("outbox")).unwrap();
    decide_and_apply(&store, &failed("production", "e1", 1), at(1)).await;
    let items = store.outbox_pending(10).await.unwrap();
    let (slack, sns) = (&items[0], &items[1]);
    store
        .outbox_sent(
            slack,
            at(2),
            Some(("C123".into(), "1700000000.000100".into())),
        )
        .await
        .unwrap();
    store
        .outbox_failed(sns, at(2), "sns: throttled".into(), Some(at(3)))
        .await
        .unwrap();
    let pending = store.outbox_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].next_attempt_at, at(3));
    assert_eq!(
        store.thread(&slack.key).await.unwrap(),
        Some(("C123".to_string(), "1700000000.000100".to_string()))
    );
    store
        .outbox_failed(&pending[0], at(4), "sns: access denied".into(), None)
        .await
        .unwrap();
    assert!(store.outbox_pending(10).await.unwrap().is_empty());
    let (_, timeline) = store.incident(&slack.key).await.unwrap().unwrap();
    assert!(timeline.iter().any(|t| t.kind == TimelineKind::Notified));
    assert!(timeline
        .iter()
        .any(|t| t.kind == TimelineKind::NotifyFailed && t.text.contains("gave up")));
}
