//! The store conformance suite: every test runs against the embedded store and the DynamoDB
//! store (moto). One transaction per input, conditional opens (also racing between replicas),
//! durability across processes, the outbox's order, leases and retry bookkeeping, silences,
//! one-off job claims.
#![allow(clippy::unwrap_used)]

use super::testing::{conformance, decide_and_store, execution_event, Subject};
use super::*;
use chrono::TimeZone;
use pipeline_responder_core::config::load_str;
use pipeline_responder_core::decision::{Channel, NotificationKind};
use pipeline_responder_core::event::{Event, EventKind, PipelineState};
use pipeline_responder_core::incident::IncidentStatus;
use pipeline_responder_core::record::TimelineKind;
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
    execution_event(
        format!("evt-{env}-{exec}-{minute}"),
        format!("kiro-pipeline-{env}"),
        exec,
        PipelineState::Failed,
        at(minute),
        Some(at(0)),
    )
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
    decide_and_store(store, &config, event, now).await
}

conformance!(
    an_input_is_stored_whole_and_only_once,
    a_second_open_of_the_same_key_only_joins,
    racing_replicas_open_one_incident_per_key,
    everything_survives_another_process_opening_the_state,
    resolution_is_recorded_and_leaves_the_view_after_the_history_window,
    outbox_records_sends_failures_and_threads,
    an_outbox_lease_keeps_other_replicas_off_until_it_runs_out,
    acknowledge_and_resolve_happen_once,
    a_diagnosis_releases_the_held_post_and_follows_up_in_the_thread,
    storm_bookkeeping_summarizes_and_defers,
    silences_cover_matching_incidents_until_they_end,
    a_one_off_job_is_claimed_once_until_its_claim_lapses,
    racing_processes_claim_a_one_off_job_once,
    the_most_timers_a_policy_may_have_are_stored_and_cancelled_in_one_change,
    the_incident_list_pages_newest_first_without_gaps_or_repeats,
    resolved_incidents_past_the_retention_are_removed_whole,
    an_action_is_recorded_in_the_timeline_and_an_answer_resolves,
);

const KEY: &str = "pipeline_execution_failure/kiro-pipeline-production/e1";

async fn an_input_is_stored_whole_and_only_once(s: Subject) {
    let store = &s.store;
    let event = failed("production", "e1", 1);
    let applied = decide_and_apply(store, &event, at(1)).await;
    assert_eq!(applied.opened, vec![KEY]);
    assert_eq!(applied.queued, 2, "Slack and SNS");
    assert!(store
        .is_processed(&event.id, &event.transition_key())
        .await
        .unwrap());
    // Redelivery (same id) and the same transition under another id change nothing.
    assert!(decide_and_apply(store, &event, at(2)).await.duplicate);
    let mut again = event.clone();
    again.id = "other-id".into();
    assert!(decide_and_apply(store, &again, at(2)).await.duplicate);
    let (incident, timeline) = store.incident(&applied.opened[0]).await.unwrap().unwrap();
    assert_eq!(incident.severity.as_str(), "high");
    assert_eq!(timeline.len(), 1);
    assert_eq!(store.outbox_pending(10).await.unwrap().len(), 2);
    assert_eq!(store.incidents(true).await.unwrap().len(), 1);
    assert_eq!(
        store.pending_deadlines().await.unwrap(),
        1,
        "L2 after 60 min"
    );
}

async fn a_second_open_of_the_same_key_only_joins(s: Subject) {
    let store = &s.store;
    let config = load_str(CONFIG, &|_| None).unwrap();
    // Two decisions made on the same (empty) view, as two racing inputs would.
    let first = failed("production", "e1", 1);
    let mut second = failed("production", "e1", 1);
    second.id = "second".into();
    let empty = store.view(at(0)).await.unwrap();
    let d1 = evaluate(&config, &first, &empty, at(1));
    let d2 = evaluate(&config, &second, &empty, at(1));
    let a1 = store.apply(input(&first), d1, at(1), None).await.unwrap();
    let mut in2 = input(&second);
    in2.transition = "different-transition".into();
    let a2 = store.apply(in2, d2, at(1), None).await.unwrap();
    assert_eq!(a1.opened.len(), 1);
    assert!(
        a2.opened.is_empty(),
        "the key exists: no second incident, no second post"
    );
    assert_eq!(a2.queued, 0);
    assert_eq!(store.incidents(false).await.unwrap().len(), 1);
    assert_eq!(store.pending_deadlines().await.unwrap(), 1);
}

/// Two processes, eight inputs about the same failure, all decided on an empty view and stored
/// at once: one incident, opened once, its posts queued once.
async fn racing_replicas_open_one_incident_per_key(s: Subject) {
    let config = load_str(CONFIG, &|_| None).unwrap();
    let stores = [s.store.clone(), s.another_process("replica-b")];
    let empty = s.store.view(at(0)).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = stores[n % 2].clone();
        let mut event = failed("production", "e1", 1);
        event.id = format!("racer-{n}");
        let decision = evaluate(&config, &event, &empty, at(1));
        let mut record = input(&event);
        record.transition = format!("transition-{n}");
        tasks.push(tokio::spawn(async move {
            store.apply(record, decision, at(1), None).await
        }));
    }
    let mut opened = 0;
    for task in tasks {
        opened += task.await.unwrap().unwrap().opened.len();
    }
    assert_eq!(opened, 1, "exactly one input opened it");
    assert_eq!(s.store.incidents(false).await.unwrap().len(), 1);
    assert_eq!(s.store.outbox_pending(100).await.unwrap().len(), 2);
    assert_eq!(s.store.pending_deadlines().await.unwrap(), 1);
    for n in 0..8 {
        assert!(s
            .store
            .is_processed(&format!("racer-{n}"), "x")
            .await
            .unwrap());
    }
}

async fn everything_survives_another_process_opening_the_state(s: Subject) {
    decide_and_apply(&s.store, &failed("staging", "s1", 1), at(1)).await;
    let other = s.another_process("restarted");
    drop(s.store);
    let view = other.view(at(0)).await.unwrap();
    assert_eq!(view.len(), 1);
    assert_eq!(other.outbox_pending(10).await.unwrap().len(), 2);
    assert!(other.is_processed("evt-staging-s1-1", "x").await.unwrap());
    assert_eq!(other.pending_deadlines().await.unwrap(), 1);
}

async fn resolution_is_recorded_and_leaves_the_view_after_the_history_window(s: Subject) {
    let store = &s.store;
    decide_and_apply(store, &failed("production", "e1", 1), at(1)).await;
    let mut ok = failed("production", "e2", 30);
    if let EventKind::PipelineExecution(p) = &mut ok.kind {
        p.state = PipelineState::Succeeded;
        p.start_time = Some(at(20));
    }
    assert_eq!(store.pending_deadlines().await.unwrap(), 1);
    let applied = decide_and_apply(store, &ok, at(30)).await;
    assert_eq!(applied.queued, 2, "resolution posts");
    let (incident, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert!(timeline.iter().any(|t| t.kind == TimelineKind::Resolved));
    assert_eq!(
        store.view(at(29)).await.unwrap().len(),
        1,
        "recently resolved stays visible"
    );
    assert!(store.view(at(31)).await.unwrap().is_empty());
    assert_eq!(
        store.pending_deadlines().await.unwrap(),
        0,
        "the pending L2 deadline is cancelled"
    );
    assert!(store
        .due_deadlines(at(59) + chrono::Duration::hours(5), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.incidents(true).await.unwrap().is_empty());
    assert_eq!(store.incidents(false).await.unwrap().len(), 1);
}

async fn outbox_records_sends_failures_and_threads(s: Subject) {
    let store = &s.store;
    decide_and_apply(store, &failed("production", "e1", 1), at(1)).await;
    let items = store.outbox_pending(10).await.unwrap();
    let (slack, sns) = (&items[0], &items[1]);
    assert!(channel_name(&slack.notification).starts_with("slack "));
    assert!(store.outbox_claim(slack, at(2)).await.unwrap());
    store
        .outbox_sent(
            slack,
            at(2),
            Some(("C123".into(), "1700000000.000100".into())),
        )
        .await
        .unwrap();
    assert!(
        !store.outbox_claim(slack, at(2)).await.unwrap(),
        "sent: not pending"
    );
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

async fn an_outbox_lease_keeps_other_replicas_off_until_it_runs_out(s: Subject) {
    decide_and_apply(&s.store, &failed("production", "e1", 1), at(1)).await;
    let other = s.another_process("replica-b");
    let item = s.store.outbox_pending(1).await.unwrap().remove(0);
    assert!(s.store.outbox_claim(&item, at(2)).await.unwrap());
    assert!(
        s.store.outbox_claim(&item, at(2)).await.unwrap(),
        "the holder may claim again"
    );
    assert!(
        !other
            .outbox_claim(&item, at(2) + chrono::Duration::seconds(10))
            .await
            .unwrap(),
        "held by the first process"
    );
    // The first process died: its lease runs out and the other takes the post over.
    let later = at(2) + plan::LEASE + chrono::Duration::seconds(1);
    assert!(other.outbox_claim(&item, later).await.unwrap());
    assert!(!s.store.outbox_claim(&item, later).await.unwrap());
    // A failed attempt gives the lease back.
    other
        .outbox_failed(&item, later, "timeout".into(), Some(later))
        .await
        .unwrap();
    assert!(s.store.outbox_claim(&item, later).await.unwrap());
}

async fn acknowledge_and_resolve_happen_once(s: Subject) {
    let store = &s.store;
    decide_and_apply(store, &failed("production", "e1", 1), at(1)).await;
    assert!(!store
        .acknowledge("no/such/key", "alice", crate::store::fixed(vec![]), at(2))
        .await
        .unwrap());
    assert!(store
        .acknowledge(KEY, "alice", crate::store::fixed(vec![]), at(2))
        .await
        .unwrap());
    assert!(
        !store
            .acknowledge(KEY, "bob", crate::store::fixed(vec![]), at(3))
            .await
            .unwrap(),
        "already acknowledged"
    );
    let (incident, _) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Acknowledged);
    assert_eq!(incident.acknowledged_by.as_deref(), Some("alice"));
    let before = store.outbox_pending(100).await.unwrap().len();
    let resolved = store.outbox_pending(1).await.unwrap()[0]
        .notification
        .clone();
    assert!(store
        .resolve(KEY, "alice", crate::store::fixed(vec![resolved]), at(4))
        .await
        .unwrap());
    assert!(!store
        .resolve(KEY, "bob", crate::store::fixed(vec![]), at(5))
        .await
        .unwrap());
    assert_eq!(store.outbox_pending(100).await.unwrap().len(), before + 1);
    assert_eq!(store.pending_deadlines().await.unwrap(), 0);
    let (incident, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    let kinds: Vec<TimelineKind> = timeline.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        vec![
            TimelineKind::Opened,
            TimelineKind::Acknowledged,
            TimelineKind::Resolved
        ],
        "in order"
    );
}

async fn an_action_is_recorded_in_the_timeline_and_an_answer_resolves(s: Subject) {
    use pipeline_responder_core::actions::{ActionKind, ActionOutcome, ActionRecord};
    let store = &s.store;
    decide_and_apply(store, &failed("production", "e1", 1), at(1)).await;
    let deadlines = store.pending_deadlines().await.unwrap();
    assert!(deadlines > 0);
    let record = |action, outcome, detail: &str, minute| ActionRecord {
        at: at(minute),
        action,
        by: "alice".into(),
        outcome,
        detail: detail.into(),
    };
    let refused = record(
        ActionKind::Retry,
        ActionOutcome::Refused,
        "not transient",
        2,
    );
    assert!(!store
        .record_action("no/such/key", refused.clone(), fixed(vec![]), at(2))
        .await
        .unwrap());
    let thread = store.outbox_pending(1).await.unwrap()[0]
        .notification
        .clone();
    let before = store.outbox_pending(100).await.unwrap().len();
    assert!(store
        .record_action(KEY, refused, fixed(vec![thread.clone()]), at(2))
        .await
        .unwrap());
    let (incident, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(
        incident.status,
        IncidentStatus::Open,
        "a refusal changes nothing else"
    );
    assert_eq!(incident.actions.len(), 1);
    assert_eq!(store.pending_deadlines().await.unwrap(), deadlines);
    assert_eq!(store.outbox_pending(100).await.unwrap().len(), before + 1);
    let last = timeline.last().unwrap();
    assert_eq!(last.kind, TimelineKind::Action);
    assert_eq!(last.text, "retry by alice refused: not transient");

    // An answered approval (here on any incident) resolves it and cancels its timers.
    let answered = record(ActionKind::Reject, ActionOutcome::Done, "bad canary", 3);
    assert!(store
        .record_action(KEY, answered, fixed(vec![thread]), at(3))
        .await
        .unwrap());
    let (incident, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(
        incident.resolution.as_deref(),
        Some("rejected by alice: bad canary")
    );
    assert_eq!(incident.actions.len(), 2);
    assert_eq!(store.pending_deadlines().await.unwrap(), 0);
    assert_eq!(timeline.last().unwrap().kind, TimelineKind::Action);
    // After the resolution an action is still recorded (a late click is audited too).
    let late = record(ActionKind::Approve, ActionOutcome::Refused, "resolved", 4);
    assert!(store
        .record_action(KEY, late, fixed(vec![]), at(4))
        .await
        .unwrap());
    let (incident, _) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(incident.actions.len(), 3);
    assert_eq!(incident.status, IncidentStatus::Resolved);
}

/// A policy with as many timers as check-config lets through for DynamoDB
/// (`DYNAMODB_MAX_TIMERS`) is stored in one change when the incident opens, and all its timers
/// are cancelled in one change when it resolves.
async fn the_most_timers_a_policy_may_have_are_stored_and_cancelled_in_one_change(s: Subject) {
    use pipeline_responder_core::config::DYNAMODB_MAX_TIMERS;
    let store = &s.store;
    let config = load_str(
        &format!(
            "{CONFIG}\n[store]\nkind = \"dynamodb\"\ntable = \"t\"\n[policies.pipeline_execution_failure]\n\
             escalation = [{{ level = \"L1\", after_secs = 0 }}, \
             {{ level = \"L2\", after_secs = 600, repeat_every_secs = 600, max_repeats = {} }}]\n",
            DYNAMODB_MAX_TIMERS - 1
        ),
        &|_| None,
    )
    .unwrap();
    let event = failed("production", "e1", 1);
    let view = store.view(at(1) - chrono::Duration::days(8)).await.unwrap();
    let decision = evaluate(&config, &event, &view, at(1));
    let applied = store
        .apply(input(&event), decision, at(1), None)
        .await
        .unwrap();
    assert_eq!(applied.opened, vec![KEY]);
    assert_eq!(
        store.pending_deadlines().await.unwrap(),
        DYNAMODB_MAX_TIMERS as i64
    );
    assert!(store
        .acknowledge(KEY, "alice", crate::store::fixed(vec![]), at(2))
        .await
        .unwrap());
    let note = store.outbox_pending(1).await.unwrap()[0]
        .notification
        .clone();
    assert!(store
        .resolve(
            KEY,
            "alice",
            crate::store::fixed(vec![note.clone(), note]),
            at(3)
        )
        .await
        .unwrap());
    assert_eq!(store.pending_deadlines().await.unwrap(), 0);
}

async fn the_incident_list_pages_newest_first_without_gaps_or_repeats(s: Subject) {
    let store = &s.store;
    for (i, minute) in [3, 1, 4, 1, 5].iter().enumerate() {
        let env = if i % 2 == 0 { "production" } else { "staging" };
        decide_and_apply(store, &failed(env, &format!("p{i}"), *minute), at(*minute)).await;
    }
    let mut seen: Vec<Incident> = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = store.incidents_page(false, 2, after.clone()).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(Cursor::after(last));
        seen.extend(page);
    }
    let keys: Vec<&str> = seen.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 5, "no repeats: {keys:?}");
    assert!(
        seen.windows(2)
            .all(|w| (w[0].opened_at, &w[0].key) > (w[1].opened_at, &w[1].key)),
        "newest first: {keys:?}"
    );
    let encoded = Cursor::after(&seen[0]).encode();
    assert_eq!(Cursor::decode(&encoded), Some(Cursor::after(&seen[0])));
    assert_eq!(Cursor::decode("zz"), None);
    assert_eq!(Cursor::decode("abc"), None);
    assert!(store
        .resolve(&seen[0].key, "alice", crate::store::fixed(vec![]), at(6))
        .await
        .unwrap());
    assert_eq!(store.incidents_page(true, 10, None).await.unwrap().len(), 4);
}

/// For the retention tests: a failure resolved at minute 3 with its posts sent (`RETAINED_OLD`,
/// returned), one resolved then that still owes a post (`RETAINED_OWED`), and one still open,
/// all opened at minute 1.
async fn seed_for_retention(store: &Store) -> Event {
    let old = failed("production", "old", 1);
    decide_and_apply(store, &old, at(1)).await;
    for item in store.outbox_pending(10).await.unwrap() {
        store.outbox_sent(&item, at(2), None).await.unwrap();
    }
    assert!(store
        .resolve(RETAINED_OLD, "alice", crate::store::fixed(vec![]), at(3))
        .await
        .unwrap());
    decide_and_apply(store, &failed("staging", "owed", 1), at(1)).await;
    let note = store.outbox_pending(1).await.unwrap()[0]
        .notification
        .clone();
    assert!(store
        .resolve(
            RETAINED_OWED,
            "alice",
            crate::store::fixed(vec![note]),
            at(3)
        )
        .await
        .unwrap());
    decide_and_apply(store, &failed("production", "open", 1), at(1)).await;
    old
}

const RETAINED_OLD: &str = "pipeline_execution_failure/kiro-pipeline-production/old";
const RETAINED_OWED: &str = "pipeline_execution_failure/kiro-pipeline-staging/owed";

/// Both stores remove a resolved incident past the retention with everything about it, and
/// keep an open one and one that still owes a post. (DynamoDB's processed markers and settled
/// posts expire by TTL instead; the embedded store's sweep is tested further below.)
async fn resolved_incidents_past_the_retention_are_removed_whole(s: Subject) {
    let store = &s.store;
    seed_for_retention(store).await;
    let (old, owed) = (RETAINED_OLD, RETAINED_OWED);
    // DynamoDB orders resolved incidents by when they were written (the wall clock).
    let cutoff = Utc::now() + chrono::Duration::minutes(1);
    let pruned = store.prune(cutoff, cutoff).await.unwrap();
    assert_eq!(pruned.incidents, 1, "{pruned:?}");
    assert!(store.incident(old).await.unwrap().is_none());
    assert!(store.incident(owed).await.unwrap().is_some());
    let left: Vec<String> = store
        .incidents(false)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.iter().any(|k| k == old));
    assert_eq!(store.prune(cutoff, cutoff).await.unwrap().incidents, 0);
}

async fn a_diagnosis_releases_the_held_post_and_follows_up_in_the_thread(s: Subject) {
    let store = &s.store;
    let config = load_str(CONFIG, &|_| None).unwrap();
    let event = failed("production", "e1", 1);
    let view = store.view(at(0)).await.unwrap();
    let decision = evaluate(&config, &event, &view, at(1));
    let hold = at(1) + chrono::Duration::seconds(8);
    store
        .apply(input(&event), decision, at(1), Some(hold))
        .await
        .unwrap();
    let held = store.outbox_pending(10).await.unwrap();
    assert!(
        held.iter().all(|i| i.next_attempt_at == hold),
        "held for the diagnostics"
    );
    let result = DiagnosticResult {
        name: "pipeline_state".into(),
        ok: true,
        summary: "Build failed".into(),
        lines: vec![],
        at: at(1),
    };
    let now = at(1) + chrono::Duration::seconds(2);
    assert!(store
        .record_diagnosis(
            KEY,
            vec![result.clone()],
            IncidentUpdate::default(),
            vec![],
            now
        )
        .await
        .unwrap());
    let released = store.outbox_pending(10).await.unwrap();
    assert!(released.iter().all(|i| i.next_attempt_at == now));
    // The first post goes out; a later diagnosis follows up in its thread.
    let slack = released
        .iter()
        .find(|i| channel_name(&i.notification).starts_with("slack"))
        .unwrap();
    store.outbox_sent(slack, now, None).await.unwrap();
    // The rules' thread updates: only the channel whose first post went out gets one.
    let update = |channel: Channel| Notification {
        channel,
        kind: NotificationKind::Updated,
        mention: None,
    };
    let candidates = vec![
        update(slack.notification.channel.clone()),
        update(Channel::new("webhook", "audit")),
    ];
    assert!(!store
        .record_diagnosis(
            KEY,
            vec![result],
            IncidentUpdate::default(),
            candidates,
            now
        )
        .await
        .unwrap());
    let follow_ups: Vec<OutboxItem> = store
        .outbox_pending(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.note.as_deref() == Some("diagnostics"))
        .collect();
    assert_eq!(follow_ups.len(), 1);
    let (incident, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert_eq!(
        incident.diagnosis.len(),
        1,
        "a rerun replaces the earlier result"
    );
    assert_eq!(
        timeline
            .iter()
            .filter(|t| t.kind == TimelineKind::Diagnostic)
            .count(),
        2
    );
}

async fn storm_bookkeeping_summarizes_and_defers(s: Subject) {
    let store = &s.store;
    for n in 0..3 {
        decide_and_apply(store, &failed("production", &format!("e{n}"), 1), at(1)).await;
    }
    let items = store.outbox_pending(100).await.unwrap();
    assert_eq!(items.len(), 6);
    let ids = |items: &[OutboxItem]| -> Vec<(i64, String)> {
        items.iter().map(|i| (i.id, i.key.clone())).collect()
    };
    store.outbox_defer(ids(&items[..2]), at(5)).await.unwrap();
    store
        .outbox_summarized(ids(&items[2..]), at(2))
        .await
        .unwrap();
    let left = store.outbox_pending(100).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|i| i.next_attempt_at == at(5)));
    let (_, timeline) = store.incident(&items[2].key).await.unwrap().unwrap();
    assert!(timeline.iter().any(|t| t.text.contains("storm summary")));
}

async fn silences_cover_matching_incidents_until_they_end(s: Subject) {
    let store = &s.store;
    let silence = Silence {
        id: 0,
        environment: Some("staging".into()),
        pipeline: None,
        incident_type: None,
        starts_at: at(0),
        ends_at: at(30),
        created_by: "alice".into(),
        comment: Some("load test".into()),
    };
    let id = store.add_silence(silence.clone()).await.unwrap();
    let other = store
        .add_silence(Silence {
            environment: Some("production".into()),
            ..silence.clone()
        })
        .await
        .unwrap();
    assert_ne!(id, other);
    let active = store.silences(at(1)).await.unwrap();
    assert_eq!(active.len(), 2);
    assert_eq!(
        active[0],
        Silence {
            id,
            ..silence.clone()
        }
    );
    assert!(
        store.silences(at(31)).await.unwrap().is_empty(),
        "ended by time"
    );
    assert!(store.end_silence(id, at(2)).await.unwrap());
    assert!(
        !store.end_silence(id, at(3)).await.unwrap(),
        "already ended"
    );
    assert!(!store.end_silence(424242, at(3)).await.unwrap());
    let left = store.silences(at(3)).await.unwrap();
    assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), vec![other]);
    decide_and_apply(store, &failed("production", "e1", 1), at(1)).await;
    let item = store.outbox_pending(1).await.unwrap().remove(0);
    store.outbox_silenced(&item, other, at(4)).await.unwrap();
    assert_eq!(store.outbox_pending(10).await.unwrap().len(), 1);
    let (_, timeline) = store.incident(KEY).await.unwrap().unwrap();
    assert!(timeline
        .iter()
        .any(|t| t.text.contains(&format!("silence {other}"))));
}

const DIGEST: &str = "digest/2026-01-26T09:00:00Z";

async fn a_one_off_job_is_claimed_once_until_its_claim_lapses(s: Subject) {
    let store = &s.store;
    assert!(store.claim_once(DIGEST, at(1), 14).await.unwrap());
    assert!(
        !store.claim_once(DIGEST, at(2), 14).await.unwrap(),
        "claimed before"
    );
    assert!(
        store
            .claim_once("digest/2026-02-02T09:00:00Z", at(2), 14)
            .await
            .unwrap(),
        "another key is another job"
    );
    // Kept across a restart (or by another replica) for the whole `keep_days`...
    let other = s.another_process("restarted");
    let almost = at(1) + chrono::Duration::days(14) - chrono::Duration::minutes(1);
    assert!(!other.claim_once(DIGEST, at(3), 14).await.unwrap());
    assert!(!other.claim_once(DIGEST, almost, 14).await.unwrap());
    // ...then forgotten.
    let lapsed = at(1) + chrono::Duration::days(14) + chrono::Duration::minutes(1);
    assert!(other.claim_once(DIGEST, lapsed, 14).await.unwrap());
    assert!(!store.claim_once(DIGEST, lapsed, 14).await.unwrap());
    // `keep_days = 0` still keeps a claim for a day: never shorter than the job it guards.
    assert!(store.claim_once("once/zero", at(1), 0).await.unwrap());
    assert!(!store
        .claim_once("once/zero", at(1) + chrono::Duration::hours(23), 0)
        .await
        .unwrap());
}

/// Two processes, eight concurrent claims of one period's digest: exactly one wins.
async fn racing_processes_claim_a_one_off_job_once(s: Subject) {
    let stores = [s.store.clone(), s.another_process("replica-b")];
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = stores[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            store.claim_once(DIGEST, at(1), 14).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(won, 1, "exactly one claim wins");
    assert!(!s.store.claim_once(DIGEST, at(2), 14).await.unwrap());
}

/// A file written before one-off claims existed (layout version 3) gains their table on open,
/// and keeps what it held.
#[tokio::test]
async fn an_embedded_file_of_layout_3_is_migrated() {
    let dir = std::env::temp_dir().join(format!("pr-store-{}-layout-3", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let store = Store::open(&path).unwrap();
    decide_and_apply(&store, &failed("production", "e1", 1), at(1)).await;
    drop(store);
    let downgrade = rusqlite::Connection::open(&path).unwrap();
    downgrade
        .execute_batch("DROP TABLE claims; PRAGMA user_version = 3;")
        .unwrap();
    drop(downgrade);

    let reopened = Store::open(&path).unwrap();
    assert!(reopened.claim_once(DIGEST, at(2), 14).await.unwrap());
    assert!(!reopened.claim_once(DIGEST, at(3), 14).await.unwrap());
    assert_eq!(reopened.incidents(false).await.unwrap().len(), 1);
    assert_eq!(reopened.outbox_pending(10).await.unwrap().len(), 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One unreadable incident row (written by another program, or damaged) does not stop the
/// store: it is moved to the quarantine table with its deadlines cancelled, counted, and every
/// other incident is still read, decided on and served; a later event about its key opens a
/// new incident.
#[tokio::test]
async fn an_unreadable_incident_row_is_quarantined_and_the_rest_is_served() {
    let dir = std::env::temp_dir().join(format!("pr-store-{}-unreadable", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let store = Store::open(&path).unwrap();
    decide_and_apply(&store, &failed("production", "e1", 1), at(1)).await;
    decide_and_apply(&store, &failed("staging", "e2", 1), at(1)).await;
    drop(store);
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute(
            "UPDATE incidents SET data = '{\"key\": 17, \"garbled' WHERE key = ?1",
            [KEY],
        )
        .unwrap();
    drop(other);
    let counted = || {
        crate::metrics::metrics()
            .store_errors
            .with_label_values(&["unreadable_row"])
            .get()
    };
    let before = counted();

    let store = Store::open(&path).unwrap();
    let view = store.view(at(2) - chrono::Duration::days(8)).await.unwrap();
    assert_eq!(
        view.active().count(),
        1,
        "the staging incident is still decided on"
    );
    let listed = store.incidents(false).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].environment, "staging");
    assert!(store.incident(KEY).await.unwrap().is_none());
    assert!(counted() > before);
    assert_eq!(
        store.pending_deadlines().await.unwrap(),
        1,
        "the quarantined incident's L2 timer is cancelled; staging's stays"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (key, data): (String, String) = conn
        .query_row("SELECT key, data FROM quarantine", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(key, KEY);
    assert!(data.contains("garbled"), "kept as it was: {data}");
    // A new failure of the same pipeline opens a new incident under the key.
    let applied = decide_and_apply(&store, &failed("production", "e1", 5), at(5)).await;
    assert_eq!(applied.opened, vec![KEY]);
    assert_eq!(store.incidents(true).await.unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The retention sweep removes resolved incidents (with everything about them), processed-event
/// ids and settled posts older than the cutoff, and keeps what is still active, recent, or owed
/// a post.
#[tokio::test]
async fn the_retention_sweep_removes_only_what_is_old_and_settled() {
    let s = Subject::embedded("retention").await;
    let store = &s.store;
    let old = seed_for_retention(store).await;
    let (old_key, owed_key) = (RETAINED_OLD, RETAINED_OWED);
    let later = at(50);
    let pruned = store.prune(at(10), later).await.unwrap();
    assert_eq!(pruned.incidents, 1, "{pruned:?}");
    assert!(pruned.events >= 3, "{pruned:?}");
    assert!(store.incident(old_key).await.unwrap().is_none());
    assert!(store.incident(owed_key).await.unwrap().is_some());
    assert_eq!(store.incidents(true).await.unwrap().len(), 1);
    assert!(!store
        .is_processed(&old.id, &old.transition_key())
        .await
        .unwrap());
    // Nothing older is left: a second sweep removes nothing.
    assert_eq!(store.prune(at(10), later).await.unwrap(), Pruned::default());
    // The view the rules read is what the file holds.
    let view = store.view(at(0)).await.unwrap();
    assert!(view.get(old_key).is_none());
}
