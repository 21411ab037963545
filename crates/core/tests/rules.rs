//! Rule engine, table-driven, named after the runbook sections they implement.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use pipeline_responder_core::config::{load_str, Config, Diagnostic, Until};
use pipeline_responder_core::decision::{
    Action, Channel, DeadlineKind, Decision, NotificationKind,
};
use pipeline_responder_core::event::*;
use pipeline_responder_core::finding::{
    Finding, RollbackStatusFinding, RootCauseClass, RootCauseFinding,
};
use pipeline_responder_core::incident::{
    IncidentStatus, IncidentType, IncidentView, IncidentsView, Severity,
};
use pipeline_responder_core::rules::{deadline_applies, evaluate, evaluate_finding, DeadlineState};

const CONFIG: &str = r##"
[aws]
region = "us-east-1"
account_id = "123456789012"

[sources.sqs]
enabled = false

[notifiers.slack]
webhook_url = "https://hooks.example.invalid/services/T/B/X"

[[escalation.levels]]
id = "L1"
slack_mention = "@oncall"
[[escalation.levels]]
id = "L2"
slack_mention = "@devops-lead"
sns_topic_arn = "arn:aws:sns:us-east-1:123456789012:devops-pager"
[[escalation.levels]]
id = "L3"
slack_mention = "@eng-manager"

[environment_defaults]
resource_prefix = "kiro-pipeline-{env}"
slack_channel = "#kiro-{env}"

[[environments]]
name = "test"
[[environments]]
name = "staging"
[[environments]]
name = "production"
health_url = "https://app.example.com/health"
"##;

fn config() -> Config {
    load_str(CONFIG, &|_| None).unwrap()
}

fn config_with(extra: &str) -> Config {
    load_str(&format!("{CONFIG}\n{extra}"), &|_| None).unwrap()
}

fn t(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-27T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn pipe(env: &str) -> String {
    format!("kiro-pipeline-{env}")
}

fn event(kind: EventKind, at: DateTime<Utc>) -> Event {
    Event {
        id: format!("evt-{}", at.timestamp_millis()),
        time: at,
        region: Some("us-east-1".into()),
        account: Some("123456789012".into()),
        carrier: Carrier::EventBridge,
        kind,
    }
}

fn pipeline_state(
    env: &str,
    exec: &str,
    state: PipelineState,
    started: DateTime<Utc>,
) -> EventKind {
    EventKind::PipelineExecution(PipelineExecutionChange {
        pipeline: pipe(env),
        execution_id: exec.into(),
        state,
        start_time: Some(started),
        trigger_type: None,
        trigger_detail: None,
        stop_comments: None,
        failed_stage: None,
        failed_actions: vec![],
    })
}

fn stage_state(env: &str, exec: &str, stage: &str, state: StageState) -> EventKind {
    EventKind::StageExecution(StageExecutionChange {
        pipeline: pipe(env),
        execution_id: exec.into(),
        stage: stage.into(),
        state,
        start_time: None,
    })
}

fn action_state(
    env: &str,
    exec: &str,
    stage: &str,
    action: &str,
    category: &str,
    state: ActionState,
    error: Option<(&str, &str)>,
) -> EventKind {
    EventKind::ActionExecution(ActionExecutionChange {
        pipeline: pipe(env),
        execution_id: exec.into(),
        stage: stage.into(),
        action: action.into(),
        action_execution_id: Some(format!("{exec}-{action}")),
        state,
        category: Some(category.into()),
        provider: None,
        start_time: None,
        result: error.map(|(code, summary)| ExecutionResult {
            external_execution_url: Some(
                "https://console.aws.amazon.com/codesuite/codebuild/x".into(),
            ),
            external_execution_summary: Some(summary.into()),
            external_execution_id: None,
            error_code: Some(code.into()),
        }),
    })
}

fn alarm(name: &str, state: AlarmState, at: DateTime<Utc>) -> EventKind {
    EventKind::AlarmStateChange(AlarmStateChange {
        alarm_name: name.into(),
        state,
        previous_state: None,
        reason: Some("Threshold Crossed".into()),
        reason_data: None,
        state_timestamp: Some(at),
    })
}

fn notification(env: &str, what: NotificationEvent) -> EventKind {
    EventKind::PipelineNotification(PipelineNotification {
        event: what,
        environment: env.into(),
        current_version: Some("9e1d4b7".into()),
        target_version: Some("1a2b3c4".into()),
        reason: Some("alarm kiro-pipeline-production-5xx in ALARM".into()),
        level: Some("full".into()),
        coverage: None,
    })
}

fn build_state(env: &str, status: BuildStatus) -> EventKind {
    EventKind::BuildStateChange(BuildStateChange {
        project: format!("kiro-pipeline-{env}-build"),
        build_id: "build-1".into(),
        status,
        logs: Some(BuildLogs {
            group_name: Some(format!("/aws/codebuild/kiro-pipeline-{env}-build")),
            stream_name: Some("stream-1".into()),
            deep_link: None,
        }),
        build_start_time: None,
    })
}

/// An incident as the store would report it.
fn incident(
    key: &str,
    incident_type: IncidentType,
    env: &str,
    exec: Option<&str>,
    opened: DateTime<Utc>,
) -> IncidentView {
    IncidentView {
        key: key.into(),
        incident_type,
        environment: env.into(),
        pipeline: pipe(env),
        execution_id: exec.map(Into::into),
        execution_start: exec.map(|_| opened - Duration::minutes(10)),
        failed_stage: Some("Build".into()),
        action: Some("BuildAndTest".into()),
        alarms: vec![],
        error_signature: None,
        severity: Severity::High,
        status: IncidentStatus::Open,
        opened_at: opened,
        resolved_at: None,
        highest_level_notified: Some(0),
        resolution: None,
    }
}

fn failure(env: &str, exec: &str, opened: DateTime<Utc>) -> IncidentView {
    incident(
        &format!("pipeline_execution_failure/{}/{exec}", pipe(env)),
        IncidentType::PipelineExecutionFailure,
        env,
        Some(exec),
        opened,
    )
}

fn view(incidents: Vec<IncidentView>) -> IncidentsView {
    IncidentsView::new(incidents)
}

fn decide(kind: EventKind, at: DateTime<Utc>, v: &IncidentsView) -> Decision {
    evaluate(&config(), &event(kind, at), v, at)
}

fn opened(d: &Decision) -> &pipeline_responder_core::decision::OpenIncident {
    d.opened()
        .unwrap_or_else(|| panic!("expected an incident to open: {d:#?}"))
}

fn escalations(d: &Decision) -> Vec<(String, String)> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Escalate { key, level_id, .. } => Some((key.clone(), level_id.clone())),
            _ => None,
        })
        .collect()
}

fn updates(d: &Decision) -> Vec<&str> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Update { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect()
}

// ----- Incident 1: Pipeline Execution Failure -------------------------------------------------

#[test]
fn incident1_failed_execution_opens_failure_with_runbook_policy() {
    let d = decide(
        pipeline_state("production", "e1", PipelineState::Failed, t(-10)),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::PipelineExecutionFailure);
    assert_eq!(
        o.key,
        "pipeline_execution_failure/kiro-pipeline-production/e1"
    );
    assert_eq!(o.severity, Severity::High);
    assert_eq!(o.environment, "production");
    assert_eq!(o.ack_by, Some(t(5)), "runbook: acknowledge < 5 minutes");
    assert_eq!(o.runbook_section, "Incident 1: Pipeline Execution Failure");
    // L1 at once (in the first post), L2 if not handled in 60 minutes.
    let schedule: Vec<_> = o
        .schedule
        .iter()
        .map(|s| (s.at, s.level_id.as_str(), s.kind))
        .collect();
    assert_eq!(schedule, vec![(t(60), "L2", DeadlineKind::Escalation)]);
    let slack = &o.notifications[0];
    assert_eq!(slack.channel, Channel::new("slack", "#kiro-production"));
    assert_eq!(slack.mention.as_deref(), Some("@oncall"));
    assert!(o.notifications.iter().any(|n| n.channel
        == Channel::new(
            "sns",
            "arn:aws:sns:us-east-1:123456789012:kiro-pipeline-production-deployments"
        )));
    // Diagnostics: the runbook's acknowledge/investigate steps.
    let build_log = o.diagnostics.iter().find_map(|d| match d {
        Diagnostic::BuildLog(s) => Some(s),
        _ => None,
    });
    let build_log = build_log.expect("build log diagnostic");
    assert_eq!(build_log.patterns, vec!["FAILED", "ERROR"]);
    assert_eq!(build_log.window_secs, 1800);
    assert!(o.diagnostics.iter().any(|d| d.name() == "pipeline_state"));
}

#[test]
fn incident1_severity_depends_on_environment() {
    for (env, severity) in [
        ("production", Severity::High),
        ("staging", Severity::Medium),
        ("test", Severity::Medium),
    ] {
        let d = decide(
            pipeline_state(env, "e1", PipelineState::Failed, t(-10)),
            t(0),
            &view(vec![]),
        );
        assert_eq!(opened(&d).severity, severity, "{env}");
    }
}

#[test]
fn incident1_action_failure_opens_with_error_and_pipeline_failure_joins() {
    let d = decide(
        action_state(
            "production",
            "e1",
            "Build",
            "BuildAndTest",
            "Build",
            ActionState::Failed,
            Some(("JobFailed", "Error while executing command: npm test")),
        ),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(
        o.key,
        "pipeline_execution_failure/kiro-pipeline-production/e1"
    );
    assert_eq!(o.stage.as_deref(), Some("Build"));
    assert_eq!(o.action.as_deref(), Some("BuildAndTest"));
    assert_eq!(
        o.error.as_ref().unwrap().summary.as_deref(),
        Some("Error while executing command: npm test")
    );
    assert_eq!(
        o.error_signature, None,
        "a failing test is not an AWS outage"
    );

    // The stage and pipeline FAILED events for the same execution meet in that incident.
    let open = view(vec![failure("production", "e1", t(0))]);
    for kind in [
        stage_state("production", "e1", "Build", StageState::Failed),
        pipeline_state("production", "e1", PipelineState::Failed, t(-10)),
    ] {
        let d = decide(kind, t(1), &open);
        assert!(d.opened().is_none(), "{d:#?}");
    }
}

#[test]
fn incident1_alarm_and_event_and_poll_meet_in_one_incident() {
    // Alarm first: opens a failure keyed by the alarm transition.
    let d = decide(
        alarm(
            "kiro-pipeline-production-pipeline-failures",
            AlarmState::Alarm,
            t(0),
        ),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::PipelineExecutionFailure);
    assert!(
        o.key
            .starts_with("pipeline_execution_failure/kiro-pipeline-production/alarm/"),
        "{}",
        o.key
    );
    let mut from_alarm = incident(
        &o.key,
        IncidentType::PipelineExecutionFailure,
        "production",
        None,
        t(0),
    );
    from_alarm.failed_stage = None;
    from_alarm.action = None;
    from_alarm.alarms = vec!["kiro-pipeline-production-pipeline-failures".into()];
    // Then the event (or the watcher's synthesised event) joins it and tells the execution.
    let d = decide(
        pipeline_state("production", "e1", PipelineState::Failed, t(-10)),
        t(1),
        &view(vec![from_alarm.clone()]),
    );
    assert!(d.opened().is_none());
    assert_eq!(updates(&d), vec![o.key.as_str()]);
    match &d.actions[0] {
        Action::Update { update, .. } => assert_eq!(update.execution_id.as_deref(), Some("e1")),
        other => panic!("{other:?}"),
    }
    // Event first, alarm second: the alarm joins the open failure.
    let d = decide(
        alarm(
            "kiro-pipeline-production-pipeline-failures",
            AlarmState::Alarm,
            t(2),
        ),
        t(2),
        &view(vec![failure("production", "e1", t(0))]),
    );
    assert!(d.opened().is_none());
    assert_eq!(
        updates(&d),
        vec!["pipeline_execution_failure/kiro-pipeline-production/e1"]
    );
    // The same alarm again changes nothing.
    let d = decide(
        alarm(
            "kiro-pipeline-production-pipeline-failures",
            AlarmState::Alarm,
            t(0),
        ),
        t(3),
        &view(vec![from_alarm]),
    );
    assert!(d.actions.is_empty(), "{d:#?}");
}

#[test]
fn incident1_later_execution_succeeding_resolves_but_an_older_one_does_not() {
    let open = view(vec![failure("production", "e1", t(0))]);
    // e1 started at t(-10). e2 started later and succeeded.
    let d = decide(
        pipeline_state("production", "e2", PipelineState::Succeeded, t(5)),
        t(40),
        &open,
    );
    assert_eq!(
        d.resolved_keys(),
        vec!["pipeline_execution_failure/kiro-pipeline-production/e1"]
    );
    match &d.actions[0] {
        Action::Resolve { notifications, .. } => assert!(notifications
            .iter()
            .all(|n| n.kind == NotificationKind::Resolved)),
        other => panic!("{other:?}"),
    }
    // e0 started before e1: its success says nothing about e1's failure.
    let d = decide(
        pipeline_state("production", "e0", PipelineState::Succeeded, t(-30)),
        t(40),
        &open,
    );
    assert!(d.resolved_keys().is_empty(), "{d:#?}");
}

#[test]
fn incident1_later_execution_getting_past_the_failed_stage_resolves() {
    let open = view(vec![failure("production", "e1", t(0))]);
    let d = decide(
        stage_state("production", "e2", "Build", StageState::Succeeded),
        t(20),
        &open,
    );
    assert_eq!(d.resolved_keys().len(), 1);
    let d = decide(
        stage_state("production", "e2", "Source", StageState::Succeeded),
        t(20),
        &open,
    );
    assert!(
        d.resolved_keys().is_empty(),
        "another stage succeeding is not past the failure"
    );
    let d = decide(
        stage_state("production", "e1", "Build", StageState::Succeeded),
        t(20),
        &open,
    );
    assert!(
        d.resolved_keys().is_empty(),
        "the failed execution itself (retry) is handled by its own events"
    );
}

#[test]
fn incident1_alarm_back_to_ok_resolves() {
    let mut open = failure("production", "e1", t(0));
    open.alarms = vec!["kiro-pipeline-production-pipeline-failures".into()];
    let d = decide(
        alarm(
            "kiro-pipeline-production-pipeline-failures",
            AlarmState::Ok,
            t(30),
        ),
        t(30),
        &view(vec![open]),
    );
    assert_eq!(d.resolved_keys().len(), 1);
}

#[test]
fn incident1_resolved_failure_is_not_reopened_by_a_late_duplicate() {
    let mut done = failure("production", "e1", t(0));
    done.status = IncidentStatus::Resolved;
    let d = decide(
        pipeline_state("production", "e1", PipelineState::Failed, t(-10)),
        t(50),
        &view(vec![done]),
    );
    assert!(d.actions.is_empty(), "{d:#?}");
}

#[test]
fn incident1_codestar_failed_stage_and_actions_fill_the_incident() {
    let kind = EventKind::PipelineExecution(PipelineExecutionChange {
        failed_stage: Some("Build".into()),
        failed_actions: vec![FailedAction {
            action: "BuildAndTest".into(),
            additional_information: Some("Build terminated with state: FAILED".into()),
        }],
        ..match pipeline_state("staging", "e9", PipelineState::Failed, t(-5)) {
            EventKind::PipelineExecution(p) => p,
            _ => unreachable!(),
        }
    });
    let d = decide(kind, t(0), &view(vec![]));
    let o = opened(&d);
    assert_eq!(o.stage.as_deref(), Some("Build"));
    assert_eq!(o.action.as_deref(), Some("BuildAndTest"));
    assert_eq!(
        o.error.as_ref().unwrap().summary.as_deref(),
        Some("Build terminated with state: FAILED")
    );
}

#[test]
fn incident1_states_that_are_not_failures_open_nothing() {
    for state in [
        PipelineState::Started,
        PipelineState::Resumed,
        PipelineState::Stopping,
        PipelineState::Stopped,
        PipelineState::Superseded,
        PipelineState::Canceled,
        PipelineState::Succeeded,
    ] {
        let d = decide(
            pipeline_state("production", "e1", state, t(-1)),
            t(0),
            &view(vec![]),
        );
        assert!(d.actions.is_empty(), "{state}: {d:#?}");
        assert!(d.ignored.is_some(), "{state}: a reason is given");
    }
}

#[test]
fn unwatched_pipeline_is_ignored_with_a_reason() {
    let mut kind = pipeline_state("production", "e1", PipelineState::Failed, t(-1));
    if let EventKind::PipelineExecution(p) = &mut kind {
        p.pipeline = "someone-elses-pipeline".into();
    }
    let d = decide(kind, t(0), &view(vec![]));
    assert!(d.actions.is_empty());
    assert!(d.ignored.unwrap().contains("not watched"));
}

#[test]
fn disabled_policy_opens_nothing() {
    let config = config_with("[policies.pipeline_execution_failure]\nenabled = false\n");
    let e = event(
        pipeline_state("production", "e1", PipelineState::Failed, t(-1)),
        t(0),
    );
    let d = evaluate(&config, &e, &view(vec![]), t(0));
    assert!(d.opened().is_none());
}

// ----- Incident 2: Automated Rollback Triggered ------------------------------------------------

#[test]
fn incident2_rollback_initiated_opens_rollback_with_its_diagnostics() {
    let d = decide(
        notification("production", NotificationEvent::RollbackInitiated),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::RollbackTriggered);
    assert_eq!(o.key, "rollback_triggered/production/9e1d4b7");
    assert_eq!(o.severity, Severity::High);
    assert_eq!(o.ack_by, Some(t(2)), "runbook: acknowledge < 2 minutes");
    let names: Vec<&str> = o.diagnostics.iter().map(Diagnostic::name).collect();
    assert_eq!(
        names,
        vec![
            "rollback_log",
            "deployment_record",
            "alarms",
            "health_check"
        ]
    );
    // Not completed in 15 minutes: L2 and L3 at once, even if acknowledged.
    let schedule: Vec<_> = o
        .schedule
        .iter()
        .map(|s| (s.at, s.level_id.as_str(), s.until))
        .collect();
    assert_eq!(
        schedule,
        vec![
            (t(15), "L2", Until::Resolved),
            (t(15), "L3", Until::Resolved)
        ]
    );
    let d = decide(
        notification("staging", NotificationEvent::RollbackInitiated),
        t(0),
        &view(vec![]),
    );
    assert_eq!(
        opened(&d).severity,
        Severity::Medium,
        "medium in test/staging"
    );
}

#[test]
fn incident2_application_alarm_opens_rollback_and_the_rollback_message_joins_it() {
    let d = decide(
        alarm("kiro-pipeline-production-api-5xx", AlarmState::Alarm, t(0)),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::RollbackTriggered);
    let mut open = incident(
        &o.key,
        IncidentType::RollbackTriggered,
        "production",
        None,
        t(0),
    );
    open.alarms = vec!["kiro-pipeline-production-api-5xx".into()];
    let d = decide(
        notification("production", NotificationEvent::RollbackInitiated),
        t(1),
        &view(vec![open]),
    );
    assert!(d.opened().is_none());
    assert_eq!(updates(&d), vec![o.key.as_str()]);
}

#[test]
fn incident2_rollback_failed_escalates_to_l2_and_l3_at_once() {
    let open = incident(
        "rollback_triggered/production/9e1d4b7",
        IncidentType::RollbackTriggered,
        "production",
        None,
        t(0),
    );
    let d = decide(
        notification("production", NotificationEvent::RollbackFailed),
        t(3),
        &view(vec![open.clone()]),
    );
    assert_eq!(
        escalations(&d),
        vec![
            (open.key.clone(), "L2".to_string()),
            (open.key.clone(), "L3".to_string())
        ]
    );
    // The L2 level's own pager topic is notified too.
    let pages_devops = d.actions.iter().any(|a| matches!(a, Action::Escalate { notifications, level_id, .. }
        if level_id == "L2" && notifications.iter().any(|n| n.channel == Channel::new("sns", "arn:aws:sns:us-east-1:123456789012:devops-pager"))));
    assert!(pages_devops);
    // A failed-rollback finding from diagnostics does the same.
    let finding = Finding::RollbackStatus(RollbackStatusFinding {
        key: open.key.clone(),
        completed: false,
        failed: true,
        alarms_in_alarm: vec![],
        health_ok: None,
    });
    let d = evaluate_finding(&config(), &finding, &view(vec![open]), t(4));
    assert_eq!(escalations(&d).len(), 2);
}

#[test]
fn incident2_resolves_only_when_record_alarms_and_health_agree() {
    let open = incident(
        "rollback_triggered/production/9e1d4b7",
        IncidentType::RollbackTriggered,
        "production",
        None,
        t(0),
    );
    let status = |completed, alarms: Vec<&str>, health_ok| {
        Finding::RollbackStatus(RollbackStatusFinding {
            key: open.key.clone(),
            completed,
            failed: false,
            alarms_in_alarm: alarms.into_iter().map(String::from).collect(),
            health_ok,
        })
    };
    let table = [
        (status(true, vec![], Some(true)), true),
        (status(true, vec![], None), true),
        (status(false, vec![], Some(true)), false),
        (
            status(true, vec!["kiro-pipeline-production-api-5xx"], Some(true)),
            false,
        ),
        (status(true, vec![], Some(false)), false),
    ];
    for (finding, resolves) in table {
        let d = evaluate_finding(&config(), &finding, &view(vec![open.clone()]), t(10));
        assert_eq!(!d.resolved_keys().is_empty(), resolves, "{finding:?}");
    }
}

#[test]
fn incident2_alarm_back_to_ok_rechecks_the_rollback_instead_of_resolving() {
    let mut open = incident(
        "rollback_triggered/production/x",
        IncidentType::RollbackTriggered,
        "production",
        None,
        t(0),
    );
    open.alarms = vec!["kiro-pipeline-production-api-5xx".into()];
    let d = decide(
        alarm("kiro-pipeline-production-api-5xx", AlarmState::Ok, t(8)),
        t(8),
        &view(vec![open]),
    );
    assert!(d.resolved_keys().is_empty());
    match &d.actions[..] {
        [Action::Update { update, .. }] => {
            let names: Vec<&str> = update
                .rerun_diagnostics
                .iter()
                .map(Diagnostic::name)
                .collect();
            assert_eq!(names, vec!["deployment_record", "alarms", "health_check"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn incident2_later_successful_deployment_resolves_the_rollback() {
    let open = incident(
        "rollback_triggered/production/x",
        IncidentType::RollbackTriggered,
        "production",
        None,
        t(0),
    );
    let d = decide(
        notification("production", NotificationEvent::DeploymentSucceeded),
        t(30),
        &view(vec![open]),
    );
    assert_eq!(d.resolved_keys(), vec!["rollback_triggered/production/x"]);
}

// ----- Incident 3: Deployment Duration Exceeds Threshold ---------------------------------------

fn in_progress(env: &str, exec: &str, started: DateTime<Utc>) -> EventKind {
    EventKind::ExecutionInProgress(ExecutionInProgress {
        pipeline: pipe(env),
        execution_id: exec.into(),
        start_time: started,
        stage: Some("StagingEnv".into()),
    })
}

#[test]
fn incident3_watcher_sees_execution_past_60_minutes() {
    let d = decide(in_progress("staging", "e5", t(-59)), t(0), &view(vec![]));
    assert!(d.actions.is_empty(), "59 min is under the threshold");
    let d = decide(in_progress("staging", "e5", t(-61)), t(0), &view(vec![]));
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::DeploymentDurationExceeded);
    assert_eq!(
        o.key,
        "deployment_duration_exceeded/kiro-pipeline-staging/e5"
    );
    assert_eq!(o.severity, Severity::Medium);
    assert!(o.diagnostics.iter().any(|d| d.name() == "stage_durations"));
}

#[test]
fn incident3_duration_alarm_and_watcher_meet() {
    let d = decide(
        alarm(
            "kiro-pipeline-staging-deployment-duration",
            AlarmState::Alarm,
            t(0),
        ),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::DeploymentDurationExceeded);
    let from_alarm = incident(
        &o.key,
        IncidentType::DeploymentDurationExceeded,
        "staging",
        None,
        t(0),
    );
    let d = decide(
        in_progress("staging", "e5", t(-65)),
        t(1),
        &view(vec![from_alarm]),
    );
    assert!(d.opened().is_none());
    assert_eq!(updates(&d), vec![o.key.as_str()]);
}

#[test]
fn incident3_execution_finishing_resolves_the_duration_incident() {
    let open = incident(
        "deployment_duration_exceeded/kiro-pipeline-staging/e5",
        IncidentType::DeploymentDurationExceeded,
        "staging",
        Some("e5"),
        t(0),
    );
    for state in [
        PipelineState::Succeeded,
        PipelineState::Stopped,
        PipelineState::Superseded,
    ] {
        let d = decide(
            pipeline_state("staging", "e5", state, t(-70)),
            t(10),
            &view(vec![open.clone()]),
        );
        assert_eq!(d.resolved_keys().len(), 1, "{state}");
    }
}

#[test]
fn incident3_consistently_slow_pipeline_escalates_to_devops() {
    let slow = |n: i64| {
        let mut i = incident(
            &format!("deployment_duration_exceeded/kiro-pipeline-staging/old{n}"),
            IncidentType::DeploymentDurationExceeded,
            "staging",
            Some("x"),
            t(-n * 24 * 60),
        );
        i.status = IncidentStatus::Resolved;
        i
    };
    let d = decide(
        in_progress("staging", "e5", t(-61)),
        t(0),
        &view(vec![slow(1)]),
    );
    assert!(escalations(&d).is_empty(), "2nd slow run in a week");
    let d = decide(
        in_progress("staging", "e5", t(-61)),
        t(0),
        &view(vec![slow(1), slow(3)]),
    );
    assert_eq!(
        escalations(&d),
        vec![(
            "deployment_duration_exceeded/kiro-pipeline-staging/e5".into(),
            "L2".into()
        )]
    );
    let d = decide(
        in_progress("staging", "e5", t(-61)),
        t(0),
        &view(vec![slow(1), slow(8)]),
    );
    assert!(
        escalations(&d).is_empty(),
        "the 8-day-old one is outside the 7-day window"
    );
}

// ----- Incident 4: Test Coverage Below Threshold -----------------------------------------------

fn root_cause(key: &str, class: RootCauseClass, coverage: Option<f64>, critical: bool) -> Finding {
    Finding::RootCause(RootCauseFinding {
        key: key.into(),
        class,
        coverage_percent: coverage,
        critical_findings: critical,
    })
}

#[test]
fn incident4_coverage_alarm_opens_coverage_incident() {
    let d = decide(
        alarm("kiro-pipeline-test-test-coverage", AlarmState::Alarm, t(0)),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::TestCoverageBelowThreshold);
    assert_eq!(o.severity, Severity::Medium);
    assert_eq!(
        o.schedule
            .iter()
            .map(|s| (s.at, s.level_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(t(60), "L2")]
    );
}

#[test]
fn incident4_build_log_with_low_coverage_refines_the_failure() {
    let open = failure("test", "e1", t(0));
    let d = evaluate_finding(
        &config(),
        &root_cause(&open.key, RootCauseClass::Coverage, Some(72.5), false),
        &view(vec![open.clone()]),
        t(2),
    );
    match &d.actions[0] {
        Action::Refine {
            from,
            to,
            key,
            schedule,
            ..
        } => {
            assert_eq!(
                (*from, *to),
                (
                    IncidentType::PipelineExecutionFailure,
                    IncidentType::TestCoverageBelowThreshold
                )
            );
            assert_eq!(key, &open.key, "refinement keeps the key");
            assert_eq!(
                schedule
                    .iter()
                    .map(|s| (s.at, s.level_id.as_str()))
                    .collect::<Vec<_>>(),
                vec![(t(62), "L2")]
            );
        }
        other => panic!("{other:?}"),
    }
    let d = evaluate_finding(
        &config(),
        &root_cause(&open.key, RootCauseClass::Coverage, Some(85.0), false),
        &view(vec![open.clone()]),
        t(2),
    );
    assert!(d.actions.is_empty(), "85 % is above the 80 % threshold");
    let d = evaluate_finding(
        &config(),
        &root_cause(&open.key, RootCauseClass::TestFailure, None, false),
        &view(vec![open]),
        t(2),
    );
    assert!(d.actions.is_empty(), "a test failure stays Incident 1");
}

#[test]
fn incident4_and_5_next_passing_build_resolves() {
    let mut coverage = failure("test", "e1", t(0));
    coverage.incident_type = IncidentType::TestCoverageBelowThreshold;
    let mut security = failure("staging", "e2", t(0));
    security.incident_type = IncidentType::SecurityScanFailure;
    let plain = failure("test", "e3", t(0));
    let all = view(vec![coverage.clone(), security.clone(), plain]);
    let d = decide(build_state("test", BuildStatus::Succeeded), t(30), &all);
    assert_eq!(
        d.resolved_keys(),
        vec![coverage.key.as_str()],
        "only test's coverage incident; the plain failure waits for the pipeline"
    );
    let d = decide(build_state("staging", BuildStatus::Succeeded), t(30), &all);
    assert_eq!(d.resolved_keys(), vec![security.key.as_str()]);
}

#[test]
fn codebuild_failure_adds_the_log_stream_to_the_open_failure() {
    let open = failure("production", "e1", t(0));
    let d = decide(
        build_state("production", BuildStatus::Failed),
        t(0),
        &view(vec![open.clone()]),
    );
    match &d.actions[..] {
        [Action::Update { key, update, .. }] => {
            assert_eq!(key, &open.key);
            assert_eq!(update.build_log_stream.as_deref(), Some("stream-1"));
        }
        other => panic!("{other:?}"),
    }
    let d = decide(
        build_state("production", BuildStatus::Failed),
        t(0),
        &view(vec![]),
    );
    assert!(
        d.actions.is_empty(),
        "the pipeline's FAILED event opens the incident, not the build event"
    );
}

// ----- Incident 5: Security Scan Failures -------------------------------------------------------

#[test]
fn incident5_security_findings_refine_and_page_l2_at_once() {
    let open = failure("production", "e1", t(0));
    let d = evaluate_finding(
        &config(),
        &root_cause(&open.key, RootCauseClass::SecurityScan, None, true),
        &view(vec![open.clone()]),
        t(3),
    );
    match &d.actions[0] {
        Action::Refine {
            to,
            severity,
            schedule,
            ..
        } => {
            assert_eq!(*to, IncidentType::SecurityScanFailure);
            assert_eq!(*severity, Severity::High);
            // L3 if a CRITICAL finding stays unresolved 60 minutes (an ack does not stop it).
            assert_eq!(schedule.len(), 1);
            assert_eq!(
                (
                    schedule[0].at,
                    schedule[0].level_id.as_str(),
                    schedule[0].until
                ),
                (t(63), "L3", Until::Resolved)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        escalations(&d),
        vec![(open.key.clone(), "L2".into())],
        "security incident → L2 at once"
    );
    // Security is never refined back to coverage.
    let mut security = open;
    security.incident_type = IncidentType::SecurityScanFailure;
    let d = evaluate_finding(
        &config(),
        &root_cause(&security.key, RootCauseClass::Coverage, Some(10.0), false),
        &view(vec![security]),
        t(4),
    );
    assert!(d.actions.is_empty());
}

// ----- Task 2 / Task 3: Approve or reject the production deployment ------------------------------

#[test]
fn task2_approval_waiting_opens_info_incident_with_reminders() {
    let d = decide(
        action_state(
            "production",
            "e7",
            "ProductionEnv",
            "ApproveProduction",
            "Approval",
            ActionState::Started,
            None,
        ),
        t(0),
        &view(vec![]),
    );
    let o = opened(&d);
    assert_eq!(o.incident_type, IncidentType::ApprovalPending);
    assert_eq!(
        o.key,
        "approval_pending/kiro-pipeline-production/e7/ProductionEnv/ApproveProduction"
    );
    assert_eq!(o.severity, Severity::Info);
    assert_eq!(o.ack_by, None);
    // Reminder after 30 min, again every 60 min (8 repeats); an approval has no ack target, so
    // even the first is a reminder, not an escalation.
    let at: Vec<_> = o.schedule.iter().map(|s| s.at).collect();
    assert_eq!(at[0], t(30));
    assert_eq!(at[1], t(90));
    assert_eq!(at.len(), 9);
    assert!(o.schedule.iter().all(|s| s.kind == DeadlineKind::Reminder));
    assert!(o.diagnostics.contains(&Diagnostic::RelatedEnvironment {
        environment: "staging".into(),
        timeout_secs: 10
    }));
    // Any action of category Approval counts, whatever its name.
    let d = decide(
        action_state(
            "staging",
            "e8",
            "Gate",
            "SignOff",
            "Approval",
            ActionState::Started,
            None,
        ),
        t(0),
        &view(vec![]),
    );
    assert_eq!(opened(&d).incident_type, IncidentType::ApprovalPending);
    // The stock AWS sample (a Deploy action starting) is not an approval.
    let d = decide(
        action_state(
            "production",
            "e7",
            "Prod",
            "myAction",
            "Deploy",
            ActionState::Started,
            None,
        ),
        t(0),
        &view(vec![]),
    );
    assert!(d.actions.is_empty());
}

#[test]
fn task2_and_task3_approval_decisions_resolve() {
    let key = "approval_pending/kiro-pipeline-production/e7/ProductionEnv/ApproveProduction";
    let open = incident(
        key,
        IncidentType::ApprovalPending,
        "production",
        Some("e7"),
        t(0),
    );
    for (state, reason) in [
        (ActionState::Succeeded, "approved"),
        (ActionState::Failed, "rejected"),
        (ActionState::Abandoned, "abandoned"),
    ] {
        let d = decide(
            action_state(
                "production",
                "e7",
                "ProductionEnv",
                "ApproveProduction",
                "Approval",
                state,
                None,
            ),
            t(20),
            &view(vec![open.clone()]),
        );
        match &d.actions[..] {
            [Action::Resolve {
                key: k, reason: r, ..
            }] => assert_eq!((k.as_str(), r.as_str()), (key, reason)),
            other => panic!("{state}: {other:?}"),
        }
    }
    // Superseded while waiting: the approval is no longer pending.
    let d = decide(
        pipeline_state("production", "e7", PipelineState::Superseded, t(-5)),
        t(20),
        &view(vec![open]),
    );
    assert_eq!(d.resolved_keys(), vec![key]);
}

#[test]
fn task3_rejected_approval_failure_is_not_an_incident() {
    let mut rejected = incident(
        "approval_pending/kiro-pipeline-production/e7/ProductionEnv/ApproveProduction",
        IncidentType::ApprovalPending,
        "production",
        Some("e7"),
        t(0),
    );
    rejected.status = IncidentStatus::Resolved;
    rejected.resolution = Some("rejected".into());
    rejected.action = Some("ApproveProduction".into());
    let d = decide(
        pipeline_state("production", "e7", PipelineState::Failed, t(-5)),
        t(21),
        &view(vec![rejected]),
    );
    assert!(d.actions.is_empty());
    assert!(d.ignored.unwrap().contains("rejected"));
}

// ----- Escalation Procedures: cross-incident rules ----------------------------------------------

#[test]
fn escalation_multiple_environments_affected_goes_to_l2() {
    let staging = failure("staging", "s1", t(-10));
    let d = decide(
        pipeline_state("production", "p1", PipelineState::Failed, t(-5)),
        t(0),
        &view(vec![staging.clone()]),
    );
    let mut got = escalations(&d);
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "pipeline_execution_failure/kiro-pipeline-production/p1".to_string(),
                "L2".to_string()
            ),
            (staging.key.clone(), "L2".to_string()),
        ]
    );
    // Outside the 30-minute window, or already at L2: no escalation.
    let old = failure("staging", "s1", t(-31));
    let d = decide(
        pipeline_state("production", "p1", PipelineState::Failed, t(-5)),
        t(0),
        &view(vec![old]),
    );
    assert!(escalations(&d).is_empty());
    let mut at_l2 = staging;
    at_l2.highest_level_notified = Some(1);
    let d = decide(
        pipeline_state("production", "p1", PipelineState::Failed, t(-5)),
        t(0),
        &view(vec![at_l2]),
    );
    assert_eq!(escalations(&d).len(), 1, "only the new incident needs L2");
    // Two failures in the same environment are not "several environments".
    let same_env = failure("production", "p0", t(-10));
    let d = decide(
        pipeline_state("production", "p1", PipelineState::Failed, t(-5)),
        t(0),
        &view(vec![same_env]),
    );
    assert!(escalations(&d).is_empty());
}

#[test]
fn escalation_same_aws_error_across_pipelines_looks_like_an_outage_l3() {
    let mut other = failure("test", "t1", t(-3));
    other.error_signature = Some("ServiceUnavailable".into());
    // (Two environments are involved, so the L2 rule fires too; only the L3 entries are checked.)
    let d = decide(
        action_state(
            "production",
            "p1",
            "Deploy",
            "CDK",
            "Deploy",
            ActionState::Failed,
            Some((
                "JobFailed",
                "ServiceUnavailable: CloudFormation is unavailable",
            )),
        ),
        t(0),
        &view(vec![other.clone()]),
    );
    let l3: Vec<_> = escalations(&d)
        .into_iter()
        .filter(|(_, l)| l == "L3")
        .collect();
    assert_eq!(l3.len(), 2, "{d:#?}");
    assert_eq!(
        opened(&d).error_signature.as_deref(),
        Some("ServiceUnavailable")
    );
    // A code failure with the same shape but no AWS error pattern is not an outage.
    let d = decide(
        action_state(
            "production",
            "p1",
            "Build",
            "Unit",
            "Build",
            ActionState::Failed,
            Some(("JobFailed", "npm test exited 1")),
        ),
        t(0),
        &view(vec![other]),
    );
    assert!(escalations(&d).iter().all(|(_, l)| l != "L3"));
}

#[test]
fn escalation_deadline_applies_until_ack_or_resolve_as_configured() {
    let o = opened(&decide(
        notification("production", NotificationEvent::RollbackInitiated),
        t(0),
        &view(vec![]),
    ))
    .clone();
    let l2 = &o.schedule[0];
    let state = |status, highest| DeadlineState {
        status,
        critical_findings: false,
        highest_level_notified: highest,
    };
    assert!(deadline_applies(l2, state(IncidentStatus::Open, Some(0))));
    assert!(
        deadline_applies(l2, state(IncidentStatus::Acknowledged, Some(0))),
        "rollback L2 runs until resolved"
    );
    assert!(!deadline_applies(
        l2,
        state(IncidentStatus::Resolved, Some(0))
    ));
    assert!(
        !deadline_applies(l2, state(IncidentStatus::Open, Some(1))),
        "L2 already reached another way"
    );
    let f = opened(&decide(
        pipeline_state("production", "e1", PipelineState::Failed, t(-1)),
        t(0),
        &view(vec![]),
    ))
    .clone();
    assert!(
        !deadline_applies(&f.schedule[0], state(IncidentStatus::Acknowledged, Some(0))),
        "an ack stops the failure's L2"
    );
    // Security L3 only with CRITICAL findings.
    let open = failure("production", "e1", t(0));
    let d = evaluate_finding(
        &config(),
        &root_cause(&open.key, RootCauseClass::SecurityScan, None, false),
        &view(vec![open]),
        t(0),
    );
    let Action::Refine { schedule, .. } = &d.actions[0] else {
        panic!()
    };
    let l3 = &schedule[0];
    assert!(!deadline_applies(l3, state(IncidentStatus::Open, Some(1))));
    assert!(deadline_applies(
        l3,
        DeadlineState {
            critical_findings: true,
            ..state(IncidentStatus::Open, Some(1))
        }
    ));
}

#[test]
fn every_incident_type_is_reachable_from_some_input() {
    let mut seen = std::collections::BTreeSet::new();
    let inputs = vec![
        pipeline_state("production", "a", PipelineState::Failed, t(-1)),
        notification("production", NotificationEvent::RollbackInitiated),
        in_progress("staging", "b", t(-90)),
        alarm("kiro-pipeline-test-test-coverage", AlarmState::Alarm, t(0)),
        action_state(
            "production",
            "c",
            "ProductionEnv",
            "ApproveProduction",
            "Approval",
            ActionState::Started,
            None,
        ),
    ];
    for kind in inputs {
        seen.insert(opened(&decide(kind, t(0), &view(vec![]))).incident_type);
    }
    let open = failure("production", "e1", t(0));
    let d = evaluate_finding(
        &config(),
        &root_cause(&open.key, RootCauseClass::SecurityScan, None, false),
        &view(vec![open]),
        t(0),
    );
    if let Action::Refine { to, .. } = &d.actions[0] {
        seen.insert(*to);
    }
    assert_eq!(seen.len(), IncidentType::ALL.len(), "{seen:?}");
}

#[test]
fn builds_throttled_by_aws_on_two_pipelines_look_like_an_outage_l3() {
    let first = failure("test", "t1", t(-3));
    let mut second = failure("staging", "s1", t(-1));
    // The first build's log already showed throttling (its signature is stored).
    let mut throttled_first = first.clone();
    throttled_first.error_signature = Some("Throttling".into());
    let finding = root_cause(&second.key, RootCauseClass::AwsThrottling, None, false);
    let d = evaluate_finding(
        &config(),
        &finding,
        &view(vec![throttled_first, second.clone()]),
        t(0),
    );
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::Update { key, update, .. }
            if *key == second.key && update.error_signature.as_deref() == Some("Throttling"))),
        "{d:#?}"
    );
    let l3: Vec<_> = escalations(&d)
        .into_iter()
        .filter(|(_, l)| l == "L3")
        .collect();
    assert_eq!(l3.len(), 2, "both throttled pipelines go to L3: {d:#?}");
    // Once signed, the same finding changes nothing; one throttled pipeline alone is no outage.
    second.error_signature = Some("Throttling".into());
    let again = evaluate_finding(
        &config(),
        &finding,
        &view(vec![first.clone(), second]),
        t(0),
    );
    assert!(again.actions.is_empty(), "{again:#?}");
    let alone = evaluate_finding(
        &config(),
        &root_cause(&first.key, RootCauseClass::AwsThrottling, None, false),
        &view(vec![first]),
        t(0),
    );
    assert!(escalations(&alone).is_empty(), "{alone:#?}");
}
