//! Parsing every shared fixture and carrier.
//!
//! The AWS samples live in `fixtures/events` (copied from the project's shared fixtures; see its
//! `SOURCES.md`); samples written for these tests live in `tests/data/events`.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use pipeline_responder_core::event::{
    parse_message, parse_value, ActionState, AlarmState, BuildStatus, Carrier, Event, EventKind,
    NotificationEvent, ParseError, Parsed, PipelineState, StageState, MAX_MESSAGE_BYTES,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::support::{field_of, fixture, sns_envelope, test_data, FIXTURE_DIR};

/// Names of the files in `dir` ending in `suffix`, sorted.
fn names_in(dir: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

fn parse_event(body: &str) -> Event {
    match parse_message(body) {
        Ok(Parsed::Event(event)) => event,
        other => panic!("expected an event, got {other:?} from {body}"),
    }
}

fn parse_err(body: &str) -> ParseError {
    match parse_message(body) {
        Err(e) => e,
        Ok(parsed) => panic!("expected an error, got {parsed:?} from {body}"),
    }
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The fixture as a JSON value, for editing.
fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

const PIPELINE: &str = "myPipeline";
const EXECUTION: &str = "12345678-1234-5678-abcd-12345678abcd";

/// What a CodePipeline fixture must parse to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Pipeline(PipelineState),
    Stage(&'static str, StageState),
    /// stage, action, state
    Action(&'static str, &'static str, ActionState),
}

/// (file, pipeline, execution id, expected kind)
const CODEPIPELINE_FIXTURES: &[(&str, &str, &str, Expect)] = &[
    (
        "codepipeline-pipeline-started.json",
        PIPELINE,
        EXECUTION,
        Expect::Pipeline(PipelineState::Started),
    ),
    (
        "codepipeline-pipeline-stopping.json",
        PIPELINE,
        EXECUTION,
        Expect::Pipeline(PipelineState::Stopping),
    ),
    (
        "codepipeline-pipeline-succeeded.json",
        PIPELINE,
        EXECUTION,
        Expect::Pipeline(PipelineState::Succeeded),
    ),
    (
        "codepipeline-pipeline-failed.json",
        PIPELINE,
        EXECUTION,
        Expect::Pipeline(PipelineState::Failed),
    ),
    (
        "codepipeline-stage-started.json",
        PIPELINE,
        EXECUTION,
        Expect::Stage("Prod", StageState::Started),
    ),
    (
        "codepipeline-stage-stopping.json",
        PIPELINE,
        EXECUTION,
        Expect::Stage("Deploy", StageState::Stopping),
    ),
    (
        "codepipeline-stage-stopped.json",
        PIPELINE,
        EXECUTION,
        Expect::Stage("Deploy", StageState::Stopped),
    ),
    (
        "codepipeline-stage-resumed.json",
        "BuildFromTag",
        "05dafb6a-5a56-4951-a858-968795364846",
        Expect::Stage("Build", StageState::Resumed),
    ),
    (
        "codepipeline-action-started.json",
        PIPELINE,
        EXECUTION,
        Expect::Action("Prod", "myAction", ActionState::Started),
    ),
    (
        "codepipeline-action-succeeded.json",
        PIPELINE,
        EXECUTION,
        Expect::Action("Source", "Source", ActionState::Succeeded),
    ),
    (
        "codepipeline-action-failed.json",
        PIPELINE,
        EXECUTION,
        Expect::Action("Deploy", "Deploy", ActionState::Failed),
    ),
    (
        "codepipeline-action-abandoned.json",
        PIPELINE,
        EXECUTION,
        Expect::Action("Deploy", "Deploy", ActionState::Abandoned),
    ),
];

fn check_codepipeline_kind(
    name: &str,
    kind: &EventKind,
    pipeline: &str,
    execution: &str,
    expect: Expect,
) {
    match (kind, expect) {
        (EventKind::PipelineExecution(e), Expect::Pipeline(state)) => {
            assert_eq!(
                (e.pipeline.as_str(), e.execution_id.as_str(), e.state),
                (pipeline, execution, state),
                "{name}"
            );
        }
        (EventKind::StageExecution(e), Expect::Stage(stage, state)) => {
            assert_eq!(
                (
                    e.pipeline.as_str(),
                    e.execution_id.as_str(),
                    e.stage.as_str(),
                    e.state
                ),
                (pipeline, execution, stage, state),
                "{name}"
            );
        }
        (EventKind::ActionExecution(e), Expect::Action(stage, action, state)) => {
            assert_eq!(
                (
                    e.pipeline.as_str(),
                    e.execution_id.as_str(),
                    e.stage.as_str(),
                    e.action.as_str(),
                    e.state
                ),
                (pipeline, execution, stage, action, state),
                "{name}"
            );
            assert_eq!(
                e.action_execution_id.as_deref(),
                Some("47f821c5-a902-44b2-ae61-b878d31ecd21"),
                "{name}"
            );
        }
        (other, expect) => panic!("{name}: expected {expect:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Every shared fixture parses.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_codepipeline_fixture_parses_to_its_kind_state_pipeline_execution_stage_and_action() {
    for &(name, pipeline, execution, expect) in CODEPIPELINE_FIXTURES {
        let raw = fixture_json(name);
        let event = parse_event(&fixture(name));
        check_codepipeline_kind(name, &event.kind, pipeline, execution, expect);
        assert_eq!(event.carrier, Carrier::EventBridge, "{name}");
        assert_eq!(event.id, raw["id"].as_str().unwrap(), "{name}");
        assert_eq!(event.time, ts(raw["time"].as_str().unwrap()), "{name}");
        assert_eq!(event.region.as_deref(), raw["region"].as_str(), "{name}");
        assert_eq!(event.account.as_deref(), Some("123456789012"), "{name}");
        assert_eq!(event.pipeline(), Some(pipeline), "{name}");
    }
}

#[test]
fn the_codepipeline_fixture_table_covers_every_codepipeline_file() {
    let on_disk = names_in(FIXTURE_DIR, ".json")
        .into_iter()
        .filter(|name| name.starts_with("codepipeline-"))
        .collect::<BTreeSet<_>>();
    let in_table = CODEPIPELINE_FIXTURES
        .iter()
        .map(|(name, ..)| name.to_string())
        .collect::<BTreeSet<_>>();
    // SOURCES.md has 11 rows, one of them naming two files (stage STOPPING / STOPPED): 12 files.
    assert_eq!(on_disk, in_table);
    assert_eq!(on_disk.len(), 12, "{on_disk:?}");
}

#[test]
fn every_json_file_in_the_shared_fixtures_dir_has_a_known_outcome() {
    // A new fixture must be added to one of the tables here.
    for name in names_in(FIXTURE_DIR, ".json") {
        let result = parse_message(&fixture(&name));
        match name.as_str() {
            "sqs-body-sns-envelope.json" => {
                assert!(
                    matches!(result, Err(ParseError::NotJson { ref field, .. }) if field == "Message"),
                    "{result:?}"
                );
            }
            "sqs-receive-message-eventbridge-target.json" => {
                // The receive-message output is not itself a message body.
                assert_eq!(result, Err(ParseError::UnrecognisedShape));
            }
            _ => assert!(matches!(result, Ok(Parsed::Event(_))), "{name}: {result:?}"),
        }
    }
}

#[test]
fn alarm_fixture_parses_state_previous_state_reason_data_and_plus0000_timestamp() {
    let event = parse_event(&fixture("cloudwatch-alarm-state-change.json"));
    assert_eq!(event.carrier, Carrier::EventBridge);
    assert_eq!(event.id, "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92");
    assert_eq!(event.time, ts("2019-10-02T17:04:40Z"));
    assert_eq!(event.kind_name(), "alarm_state_change");
    let EventKind::AlarmStateChange(alarm) = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(alarm.alarm_name, "ServerCpuTooHigh");
    assert_eq!(alarm.state, AlarmState::Alarm);
    assert_eq!(alarm.previous_state, Some(AlarmState::Ok));
    assert!(alarm
        .reason
        .as_deref()
        .unwrap()
        .starts_with("Threshold Crossed"));
    let data = alarm.reason_data.as_ref().expect("reasonData parsed");
    assert!(data.is_object(), "{data:?}");
    assert_eq!(data["threshold"].as_f64(), Some(50.0));
    assert_eq!(data["statistic"], "Average");
    assert_eq!(
        data["recentDatapoints"][0].as_f64(),
        Some(99.50160229693434)
    );
    assert_eq!(alarm.state_timestamp, Some(ts("2019-10-02T17:04:40.989Z")));
}

#[test]
fn alarm_reason_data_that_is_not_json_is_dropped_not_an_error() {
    let mut raw = fixture_json("cloudwatch-alarm-state-change.json");
    raw["detail"]["state"]["reasonData"] = json!("{not json");
    let EventKind::AlarmStateChange(alarm) = parse_event(&raw.to_string()).kind else {
        panic!()
    };
    assert_eq!(alarm.reason_data, None);
    assert_eq!(alarm.state, AlarmState::Alarm);
}

#[test]
fn codebuild_state_fixture_parses_status_project_and_log_group() {
    let event = parse_event(&fixture("codebuild-build-state-change-succeeded.json"));
    assert_eq!(event.kind_name(), "build_state_change");
    let EventKind::BuildStateChange(build) = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(build.status, BuildStatus::Succeeded);
    assert_eq!(build.project, "my-sample-project");
    assert!(build
        .build_id
        .ends_with(":8745a7a9-c340-456a-9166-edf953571bEX"));
    let logs = build.logs.as_ref().expect("logs");
    assert_eq!(
        logs.group_name.as_deref(),
        Some("/aws/codebuild/my-sample-project")
    );
    assert_eq!(
        logs.stream_name.as_deref(),
        Some("8745a7a9-c340-456a-9166-edf953571bEX")
    );
    assert!(logs
        .deep_link
        .as_deref()
        .unwrap()
        .starts_with("https://console.aws.amazon.com/cloudwatch/"));
    assert_eq!(
        build.build_start_time.as_deref(),
        Some("Sep 1, 2017 4:12:29 PM")
    );
    assert_eq!(event.pipeline(), None);
}

#[test]
fn codebuild_phase_fixture_parses_completed_phase_status_duration_and_logs() {
    let event = parse_event(&fixture("codebuild-build-phase-change.json"));
    let EventKind::BuildPhaseChange(phase) = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(phase.project, "my-sample-project");
    assert_eq!(phase.completed_phase, "COMPLETED");
    assert_eq!(phase.completed_phase_status.as_deref(), Some("SUCCEEDED"));
    assert_eq!(phase.completed_phase_duration_secs, Some(4));
    assert_eq!(
        phase.logs.as_ref().and_then(|l| l.group_name.as_deref()),
        Some("/aws/codebuild/my-sample-project")
    );
}

#[test]
fn codebuild_fault_and_timed_out_map_to_one_status_and_unknown_status_names_its_field() {
    for (raw, expected) in [
        ("FAULT", BuildStatus::FaultOrTimedOut),
        ("TIMED_OUT", BuildStatus::FaultOrTimedOut),
        ("failed", BuildStatus::Failed),
    ] {
        let mut value = fixture_json("codebuild-build-state-change-succeeded.json");
        value["detail"]["build-status"] = json!(raw);
        let EventKind::BuildStateChange(build) = parse_event(&value.to_string()).kind else {
            panic!()
        };
        assert_eq!(build.status, expected, "{raw}");
    }
    let mut value = fixture_json("codebuild-build-state-change-succeeded.json");
    value["detail"]["build-status"] = json!("MELTED");
    let err = parse_err(&value.to_string());
    assert_eq!(field_of(&err), Some("detail.build-status"), "{err:?}");
}

#[test]
fn detail_version_as_printed_in_the_fixtures_1_0_3_0_and_32_0_is_accepted() {
    for (name, version) in [
        ("codepipeline-pipeline-started.json", 1.0),
        ("codepipeline-pipeline-succeeded.json", 3.0),
        ("codepipeline-stage-resumed.json", 32.0),
    ] {
        assert_eq!(
            fixture_json(name)["detail"]["version"].as_f64(),
            Some(version),
            "{name}"
        );
        // The fixture text must keep the float spelling (`1.0`), which is what is being tested.
        assert!(
            fixture(name).contains(&format!("\"version\": {version:.1}")),
            "{name}"
        );
        parse_event(&fixture(name));
    }
}

#[test]
fn detail_version_as_string_integer_float_null_or_absent_is_accepted() {
    for version in [
        json!("1"),
        json!("1.0"),
        json!(1),
        json!(1.0),
        json!(32.0),
        Value::Null,
    ] {
        let mut value = fixture_json("codepipeline-pipeline-failed.json");
        value["detail"]["version"] = version.clone();
        let event = parse_event(&value.to_string());
        assert!(
            matches!(event.kind, EventKind::PipelineExecution(_)),
            "{version}"
        );
    }
    let mut value = fixture_json("codepipeline-pipeline-failed.json");
    value["detail"].as_object_mut().unwrap().remove("version");
    parse_event(&value.to_string());
}

// ---------------------------------------------------------------------------------------------
// 2. Details of the CodePipeline events, and lenience.
// ---------------------------------------------------------------------------------------------

#[test]
fn action_failed_carries_error_code_summary_url_and_external_id() {
    let EventKind::ActionExecution(action) =
        parse_event(&fixture("codepipeline-action-failed.json")).kind
    else {
        panic!()
    };
    let result = action.result.expect("execution-result");
    assert_eq!(result.error_code.as_deref(), Some("JobFailed"));
    assert_eq!(
        result.external_execution_summary.as_deref(),
        Some("Deployment <ID> failed")
    );
    assert_eq!(
        result.external_execution_url.as_deref(),
        Some("https://us-west-2.console.aws.amazon.com/codedeploy/home?#/deployments/<ID>")
    );
    assert_eq!(result.external_execution_id.as_deref(), Some("<ID>"));
    assert_eq!(action.category.as_deref(), Some("Deploy"));
    assert_eq!(action.provider.as_deref(), Some("CodeDeploy"));
    assert_eq!(action.start_time, Some(ts("2023-10-26T13:51:09.981Z")));
}

#[test]
fn action_succeeded_has_a_result_without_error_code() {
    let EventKind::ActionExecution(action) =
        parse_event(&fixture("codepipeline-action-succeeded.json")).kind
    else {
        panic!()
    };
    let result = action.result.expect("execution-result");
    assert_eq!(result.error_code, None);
    assert_eq!(
        result.external_execution_summary.as_deref(),
        Some("Added LICENSE.txt")
    );
    assert_eq!(action.category.as_deref(), Some("Source"));
    assert_eq!(action.provider.as_deref(), Some("CodeCommit"));
}

#[test]
fn action_started_has_category_deploy_and_no_result() {
    let EventKind::ActionExecution(action) =
        parse_event(&fixture("codepipeline-action-started.json")).kind
    else {
        panic!()
    };
    assert_eq!(action.category.as_deref(), Some("Deploy"));
    assert_eq!(action.provider.as_deref(), Some("CodeDeploy"));
    assert_eq!(action.result, None);
}

#[test]
fn pipeline_started_carries_trigger_and_start_time() {
    let EventKind::PipelineExecution(p) =
        parse_event(&fixture("codepipeline-pipeline-started.json")).kind
    else {
        panic!()
    };
    assert_eq!(p.trigger_type.as_deref(), Some("StartPipelineExecution"));
    assert_eq!(
        p.trigger_detail.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/Admin/my-user")
    );
    assert_eq!(p.start_time, Some(ts("2023-10-26T13:49:39.208Z")));
    assert_eq!(p.stop_comments, None);
    assert_eq!(p.failed_stage, None);
    assert!(p.failed_actions.is_empty());
}

#[test]
fn pipeline_stopping_carries_stop_comments() {
    let EventKind::PipelineExecution(p) =
        parse_event(&fixture("codepipeline-pipeline-stopping.json")).kind
    else {
        panic!()
    };
    assert_eq!(
        p.stop_comments.as_deref(),
        Some("Stopping the pipeline for an update")
    );
    assert!(!p.state.is_terminal());
}

#[test]
fn pipeline_failed_from_eventbridge_names_no_failed_stage() {
    let EventKind::PipelineExecution(p) =
        parse_event(&fixture("codepipeline-pipeline-failed.json")).kind
    else {
        panic!()
    };
    assert_eq!(p.state, PipelineState::Failed);
    assert!(p.state.is_terminal());
    assert_eq!(p.failed_stage, None);
    assert!(p.failed_actions.is_empty());
}

#[test]
fn events_with_only_required_fields_parse_with_optional_fields_absent() {
    let cases = [
        json!({"detail-type": "CodePipeline Pipeline Execution State Change", "time": "2026-01-27T10:00:00Z",
               "detail": {"pipeline": "p", "execution-id": "e", "state": "FAILED"}}),
        json!({"detail-type": "CodePipeline Stage Execution State Change", "time": "2026-01-27T10:00:00Z",
               "detail": {"pipeline": "p", "execution-id": "e", "stage": "s", "state": "FAILED"}}),
        json!({"detail-type": "CodePipeline Action Execution State Change", "time": "2026-01-27T10:00:00Z",
               "detail": {"pipeline": "p", "execution-id": "e", "stage": "s", "action": "a", "state": "FAILED"}}),
    ];
    for value in cases {
        let event = parse_event(&value.to_string());
        assert!(
            event.id.starts_with("content-"),
            "no id: one is synthesised: {}",
            event.id
        );
        assert_eq!(event.region, None);
        assert_eq!(event.account, None);
        match event.kind {
            EventKind::PipelineExecution(p) => {
                assert_eq!(
                    (p.start_time, p.trigger_type, p.stop_comments),
                    (None, None, None)
                );
            }
            EventKind::StageExecution(s) => assert_eq!(s.start_time, None),
            EventKind::ActionExecution(a) => {
                assert_eq!(
                    (a.action_execution_id, a.category, a.provider, a.result),
                    (None, None, None, None)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn optional_string_fields_accept_numbers_booleans_and_null() {
    let mut value = fixture_json("codepipeline-action-failed.json");
    value["detail"]["action-execution-id"] = json!(42);
    value["detail"]["execution-result"]["error-code"] = json!(true);
    value["detail"]["type"]["provider"] = Value::Null;
    value["detail"]["start-time"] = Value::Null;
    value["account"] = json!(123456789012_u64);
    let event = parse_event(&value.to_string());
    assert_eq!(event.account.as_deref(), Some("123456789012"));
    let EventKind::ActionExecution(action) = event.kind else {
        panic!()
    };
    assert_eq!(action.action_execution_id.as_deref(), Some("42"));
    assert_eq!(action.result.unwrap().error_code.as_deref(), Some("true"));
    assert_eq!(action.provider, None);
    assert_eq!(action.start_time, None);
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let mut value = fixture_json("codepipeline-pipeline-failed.json");
    value["detail"]["something-new"] = json!({"nested": [1, 2, {"x": null}]});
    value["brand-new-top-level"] = json!("x");
    let event = parse_event(&value.to_string());
    assert_eq!(
        event,
        parse_event(&fixture("codepipeline-pipeline-failed.json"))
    );
}

#[test]
fn event_time_accepts_epoch_seconds_epoch_millis_and_offsets() {
    for time in [
        json!(1_580_496_943),
        json!(1_580_496_943_000_u64),
        json!("2020-01-31T18:55:43+00:00"),
        json!("2020-01-31T19:55:43+01:00"),
        json!("2020-01-31T18:55:43.000+0000"),
        json!("2020-01-31T18:55:43+0000"),
    ] {
        let mut value = fixture_json("codepipeline-pipeline-failed.json");
        value["time"] = time.clone();
        assert_eq!(
            parse_event(&value.to_string()).time,
            ts("2020-01-31T18:55:43Z"),
            "{time}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. SNS envelopes and raw delivery.
// ---------------------------------------------------------------------------------------------

#[test]
fn pipeline_failed_in_an_sns_envelope_parses_to_the_same_kind_with_carrier_sns_envelope() {
    let raw_text = fixture("codepipeline-pipeline-failed.json");
    let raw = parse_event(&raw_text);
    let wrapped = parse_event(&sns_envelope(
        &raw_text,
        "dc1e94d9-56c5-5e96-808d-cc7f68faa162",
    ));
    assert_eq!(wrapped.carrier, Carrier::SnsEnvelope);
    assert_eq!(wrapped.kind, raw.kind);
    assert_eq!(wrapped.time, raw.time);
    assert_eq!((wrapped.region, wrapped.account), (raw.region, raw.account));
    // The EventBridge id wins over the envelope's MessageId, so both deliveries dedupe together.
    assert_eq!(wrapped.id, "01234567-EXAMPLE");
}

#[test]
fn every_codepipeline_fixture_parses_the_same_inside_an_sns_envelope() {
    for &(name, pipeline, execution, expect) in CODEPIPELINE_FIXTURES {
        let event = parse_event(&sns_envelope(&fixture(name), "m-1"));
        assert_eq!(event.carrier, Carrier::SnsEnvelope, "{name}");
        check_codepipeline_kind(name, &event.kind, pipeline, execution, expect);
    }
}

#[test]
fn event_without_id_in_an_sns_envelope_takes_the_message_id() {
    let mut value = fixture_json("codepipeline-pipeline-failed.json");
    value.as_object_mut().unwrap().remove("id");
    let event = parse_event(&sns_envelope(
        &value.to_string(),
        "dc1e94d9-56c5-5e96-808d-cc7f68faa162",
    ));
    assert_eq!(event.id, "dc1e94d9-56c5-5e96-808d-cc7f68faa162");
}

#[test]
fn shared_sns_envelope_sample_with_a_text_message_is_not_json_naming_field_message() {
    let err = parse_err(&fixture("sqs-body-sns-envelope.json"));
    assert!(
        matches!(&err, ParseError::NotJson { field, .. } if field == "Message"),
        "{err:?}"
    );
    assert!(err.to_string().contains("Message"), "{err}");
    assert_eq!(err.reason(), "not_json");
}

#[test]
fn sns_raw_delivery_text_is_not_json() {
    let err = parse_err(&fixture("sqs-body-sns-raw-delivery.txt"));
    assert!(matches!(err, ParseError::NotJson { .. }), "{err:?}");
}

#[test]
fn sns_raw_delivery_of_an_event_parses_as_eventbridge() {
    // With raw delivery on, the body is the event itself.
    let event = parse_event(&fixture("codepipeline-pipeline-failed.json"));
    assert_eq!(event.carrier, Carrier::EventBridge);
}

#[test]
fn sns_subscription_and_unsubscribe_confirmations_are_ignored() {
    for sns_type in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
        let body = json!({
            "Type": sns_type,
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37",
            "Timestamp": "2012-04-26T20:45:04.751Z",
            "SignatureVersion": "1"
        });
        match parse_message(&body.to_string()) {
            Ok(Parsed::Ignored { kind, reason }) => {
                assert_eq!(kind, sns_type);
                assert!(reason.contains(sns_type), "{reason}");
            }
            other => panic!("{sns_type}: {other:?}"),
        }
    }
}

#[test]
fn sns_envelope_of_unknown_type_names_field_type() {
    let mut value = fixture_json("sqs-body-sns-envelope.json");
    value["Type"] = json!("Telegram");
    let err = parse_err(&value.to_string());
    assert!(
        matches!(&err, ParseError::UnknownValue { field, value, .. } if field == "Type" && value == "Telegram"),
        "{err:?}"
    );
}

#[test]
fn sns_envelopes_nest_two_deep_but_not_three() {
    let inner = fixture("codepipeline-pipeline-failed.json");
    let once = sns_envelope(&inner, "outer-1");
    let twice = sns_envelope(&once, "outer-2");
    let thrice = sns_envelope(&twice, "outer-3");
    assert_eq!(parse_event(&once).carrier, Carrier::SnsEnvelope);
    assert_eq!(parse_event(&twice).carrier, Carrier::SnsEnvelope);
    let err = parse_err(&thrice);
    assert!(matches!(err, ParseError::NestedTooDeep(_)), "{err:?}");
    assert_eq!(err.reason(), "nested_too_deep");
}

// ---------------------------------------------------------------------------------------------
// 4. Other EventBridge events are ignored.
// ---------------------------------------------------------------------------------------------

#[test]
fn eventbridge_target_sample_body_with_detail_type_transaction_is_ignored() {
    let received = fixture_json("sqs-receive-message-eventbridge-target.json");
    let body = received["Messages"][0]["Body"].as_str().unwrap();
    match parse_message(body) {
        Ok(Parsed::Ignored { kind, reason }) => {
            assert_eq!(kind, "transaction");
            assert!(reason.contains("transaction"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ignored_detail_type_is_bounded_in_kind_and_reason() {
    let long = "x".repeat(10_000);
    let body = json!({"detail-type": long, "detail": {}}).to_string();
    match parse_message(&body) {
        Ok(Parsed::Ignored { kind, reason }) => {
            assert!(kind.chars().count() <= 64, "{}", kind.len());
            assert!(reason.len() < 200, "reason is {} bytes", reason.len());
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 5. CodeStar Notifications "processed" variant.
// ---------------------------------------------------------------------------------------------

const CODESTAR: &str = "codestar-pipeline-failed.json";

#[test]
fn codestar_processed_pipeline_failed_parses_with_failed_stage_and_actions() {
    let event = parse_event(&test_data(CODESTAR));
    assert_eq!(event.carrier, Carrier::CodeStarNotification);
    assert_eq!(event.time, ts("2026-01-27T09:58:12Z"));
    assert_eq!(event.region.as_deref(), Some("us-east-2"));
    assert_eq!(event.account.as_deref(), Some("123456789012"));
    let EventKind::PipelineExecution(p) = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(p.pipeline, "myPipeline");
    assert_eq!(p.execution_id, "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8");
    assert_eq!(p.state, PipelineState::Failed);
    assert_eq!(p.failed_stage.as_deref(), Some("Build"));
    assert_eq!(p.failed_actions.len(), 1);
    assert_eq!(p.failed_actions[0].action, "Build");
    assert_eq!(
        p.failed_actions[0].additional_information.as_deref(),
        Some("Build terminated with state: FAILED")
    );
}

#[test]
fn codestar_id_is_synthesised_deterministically_from_the_content() {
    let text = test_data(CODESTAR);
    let first = parse_event(&text);
    assert!(first.id.starts_with("content-"), "{}", first.id);
    assert!(!first.id.trim_start_matches("content-").is_empty());
    // Same input, same id; also when only the formatting differs.
    assert_eq!(parse_event(&text).id, first.id);
    let compact: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parse_event(&compact.to_string()).id, first.id);
    // A different execution (or state) gives a different id.
    let mut other = compact.clone();
    other["detail"]["execution-id"] = json!("3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f9");
    let other_id = parse_event(&other.to_string()).id;
    assert_ne!(other_id, first.id);
    let mut other = compact.clone();
    other["detail"]["state"] = json!("SUCCEEDED");
    assert_ne!(parse_event(&other.to_string()).id, first.id);
    assert_ne!(parse_event(&other.to_string()).id, other_id);
}

#[test]
fn codestar_in_an_sns_envelope_takes_the_envelope_message_id() {
    let event = parse_event(&sns_envelope(
        &test_data(CODESTAR),
        "9a1b2c3d-0000-4000-8000-codestar0001",
    ));
    assert_eq!(event.carrier, Carrier::CodeStarNotification);
    assert_eq!(event.id, "9a1b2c3d-0000-4000-8000-codestar0001");
    assert_eq!(event.kind, parse_event(&test_data(CODESTAR)).kind);
}

#[test]
fn codestar_failed_action_without_name_names_its_index() {
    let mut value: Value = serde_json::from_str(&test_data(CODESTAR)).unwrap();
    value["additionalAttributes"]["failedActions"] =
        json!([{"action": "Build"}, {"additionalInformation": "x"}]);
    let err = parse_err(&value.to_string());
    assert_eq!(
        err,
        ParseError::MissingField {
            field: "additionalAttributes.failedActions[1].action".into()
        }
    );
}

#[test]
fn codestar_stage_and_action_events_parse_too() {
    for (detail_type, detail) in [
        (
            "CodePipeline Stage Execution State Change",
            json!({"pipeline": "myPipeline", "execution-id": "e-1", "stage": "Build", "state": "FAILED", "version": 1.0}),
        ),
        (
            "CodePipeline Action Execution State Change",
            json!({"pipeline": "myPipeline", "execution-id": "e-1", "stage": "Build", "action": "Build",
                   "state": "FAILED", "type": {"owner": "AWS", "category": "Build", "provider": "CodeBuild", "version": "1"}}),
        ),
    ] {
        let mut value: Value = serde_json::from_str(&test_data(CODESTAR)).unwrap();
        value["detailType"] = json!(detail_type);
        value["detail"] = detail;
        let event = parse_event(&value.to_string());
        assert_eq!(event.carrier, Carrier::CodeStarNotification);
        assert_eq!(event.pipeline(), Some("myPipeline"));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The watched pipeline's own notifications.
// ---------------------------------------------------------------------------------------------

fn rollback_initiated() -> Value {
    json!({"event":"rollback_initiated","environment":"production","currentVersion":"abc","targetVersion":"def","reason":"alarm","level":"full","timestamp":"2026-01-27T10:00:00Z"})
}

#[test]
fn rollback_initiated_notification_parses_raw() {
    let value = rollback_initiated();
    let event = parse_event(&value.to_string());
    assert_eq!(event.carrier, Carrier::PipelineNotification);
    assert_eq!(event.time, ts("2026-01-27T10:00:00Z"));
    assert!(event.id.starts_with("content-"), "{}", event.id);
    assert_eq!(
        event.id,
        parse_value(&value)
            .map(|p| match p {
                Parsed::Event(e) => e.id,
                other => panic!("{other:?}"),
            })
            .unwrap()
    );
    let EventKind::PipelineNotification(n) = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(n.event, NotificationEvent::RollbackInitiated);
    assert_eq!(n.environment, "production");
    assert_eq!(n.current_version.as_deref(), Some("abc"));
    assert_eq!(n.target_version.as_deref(), Some("def"));
    assert_eq!(n.reason.as_deref(), Some("alarm"));
    assert_eq!(n.level.as_deref(), Some("full"));
    assert_eq!(n.coverage, None);
}

#[test]
fn rollback_initiated_notification_parses_in_an_sns_envelope_with_its_message_id() {
    let raw = parse_event(&rollback_initiated().to_string());
    let wrapped = parse_event(&sns_envelope(
        &rollback_initiated().to_string(),
        "notif-0001",
    ));
    assert_eq!(wrapped.carrier, Carrier::PipelineNotification);
    assert_eq!(wrapped.id, "notif-0001");
    assert_eq!(wrapped.kind, raw.kind);
    // Its own timestamp wins over the envelope's.
    assert_eq!(wrapped.time, ts("2026-01-27T10:00:00Z"));
}

#[test]
fn deployment_succeeded_notification_carries_coverage() {
    for (coverage, expected) in [
        (json!(100), Some(100.0)),
        (json!(37.5), Some(37.5)),
        (json!("85%"), Some(85.0)),
        (json!("lots"), None),
    ] {
        let value = json!({"event": "deployment_succeeded", "environment": "staging", "currentVersion": "v2",
                           "coverage": coverage, "timestamp": "2026-01-27T10:05:00Z"});
        let EventKind::PipelineNotification(n) = parse_event(&value.to_string()).kind else {
            panic!()
        };
        assert_eq!(n.event, NotificationEvent::DeploymentSucceeded);
        assert_eq!(n.coverage, expected, "{coverage}");
    }
}

#[test]
fn every_notification_event_name_parses_and_rollback_succeeded_means_completed() {
    for (name, expected) in [
        ("rollback_initiated", NotificationEvent::RollbackInitiated),
        ("rollback_completed", NotificationEvent::RollbackCompleted),
        ("rollback_succeeded", NotificationEvent::RollbackCompleted),
        ("rollback_failed", NotificationEvent::RollbackFailed),
        ("deployment_started", NotificationEvent::DeploymentStarted),
        (
            "deployment_succeeded",
            NotificationEvent::DeploymentSucceeded,
        ),
        ("deployment_failed", NotificationEvent::DeploymentFailed),
    ] {
        let mut value = rollback_initiated();
        value["event"] = json!(name);
        let EventKind::PipelineNotification(n) = parse_event(&value.to_string()).kind else {
            panic!()
        };
        assert_eq!(n.event, expected, "{name}");
    }
}

#[test]
fn unknown_notification_event_is_unknown_value_naming_field_event() {
    let mut value = rollback_initiated();
    value["event"] = json!("rollback_exploded");
    let err = parse_err(&value.to_string());
    match &err {
        ParseError::UnknownValue {
            field,
            value,
            expected,
        } => {
            assert_eq!(field, "event");
            assert_eq!(value, "rollback_exploded");
            assert!(expected.contains("rollback_initiated"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("event"), "{err}");
}

#[test]
fn notification_without_timestamp_in_an_envelope_uses_the_envelope_timestamp() {
    let mut value = rollback_initiated();
    value.as_object_mut().unwrap().remove("timestamp");
    let event = parse_event(&sns_envelope(&value.to_string(), "notif-0002"));
    // The Timestamp of sqs-body-sns-envelope.json.
    assert_eq!(event.time, ts("2021-02-16T21:41:19.978Z"));
}

#[test]
fn notification_without_timestamp_raw_is_missing_field_timestamp() {
    let mut value = rollback_initiated();
    value.as_object_mut().unwrap().remove("timestamp");
    assert_eq!(
        parse_err(&value.to_string()),
        ParseError::MissingField {
            field: "timestamp".into()
        }
    );
}

#[test]
fn notification_accepts_time_instead_of_timestamp() {
    let mut value = rollback_initiated();
    value.as_object_mut().unwrap().remove("timestamp");
    value["time"] = json!("2026-01-27T11:00:00Z");
    assert_eq!(
        parse_event(&value.to_string()).time,
        ts("2026-01-27T11:00:00Z")
    );
}

#[test]
fn notification_without_environment_is_missing_field_environment() {
    let mut value = rollback_initiated();
    value.as_object_mut().unwrap().remove("environment");
    assert_eq!(
        parse_err(&value.to_string()),
        ParseError::MissingField {
            field: "environment".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Errors name the field at fault.
// ---------------------------------------------------------------------------------------------

/// A CodePipeline pipeline FAILED event with `edit` applied.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value = fixture_json(name);
    edit(&mut value);
    value.to_string()
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

#[test]
fn errors_name_the_field_at_fault() {
    const PF: &str = "codepipeline-pipeline-failed.json";
    const AF: &str = "codepipeline-action-failed.json";
    const ENV: &str = "sqs-body-sns-envelope.json";
    // (what, body, reason, field)
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        (
            "missing detail.pipeline",
            edited(PF, |v| remove(&mut v["detail"], "pipeline")),
            "missing_field",
            Some("detail.pipeline"),
        ),
        (
            "null detail.pipeline",
            edited(PF, |v| v["detail"]["pipeline"] = Value::Null),
            "missing_field",
            Some("detail.pipeline"),
        ),
        (
            "empty detail.pipeline",
            edited(PF, |v| v["detail"]["pipeline"] = json!("  ")),
            "empty_field",
            Some("detail.pipeline"),
        ),
        (
            "pipeline is a number",
            edited(PF, |v| v["detail"]["pipeline"] = json!(7)),
            "wrong_type",
            Some("detail.pipeline"),
        ),
        (
            "missing execution-id",
            edited(PF, |v| remove(&mut v["detail"], "execution-id")),
            "missing_field",
            Some("detail.execution-id"),
        ),
        (
            "state EXPLODED",
            edited(PF, |v| v["detail"]["state"] = json!("EXPLODED")),
            "unknown_value",
            Some("detail.state"),
        ),
        (
            "missing state",
            edited(PF, |v| remove(&mut v["detail"], "state")),
            "missing_field",
            Some("detail.state"),
        ),
        (
            "stage state EXPLODED",
            edited("codepipeline-stage-stopped.json", |v| {
                v["detail"]["state"] = json!("EXPLODED")
            }),
            "unknown_value",
            Some("detail.state"),
        ),
        (
            "action state SUPERSEDED",
            edited(AF, |v| v["detail"]["state"] = json!("SUPERSEDED")),
            "unknown_value",
            Some("detail.state"),
        ),
        (
            "missing stage",
            edited("codepipeline-stage-stopped.json", |v| {
                remove(&mut v["detail"], "stage")
            }),
            "missing_field",
            Some("detail.stage"),
        ),
        (
            "missing action",
            edited(AF, |v| remove(&mut v["detail"], "action")),
            "missing_field",
            Some("detail.action"),
        ),
        (
            "type is a string",
            edited(AF, |v| v["detail"]["type"] = json!("Deploy")),
            "wrong_type",
            Some("detail.type"),
        ),
        (
            "execution-result is an array",
            edited(AF, |v| v["detail"]["execution-result"] = json!([])),
            "wrong_type",
            Some("detail.execution-result"),
        ),
        (
            "error-code is an object",
            edited(AF, |v| {
                v["detail"]["execution-result"]["error-code"] = json!({})
            }),
            "wrong_type",
            Some("detail.execution-result.error-code"),
        ),
        (
            "start-time not a timestamp",
            edited(PF, |v| v["detail"]["start-time"] = json!("yesterday")),
            "bad_timestamp",
            Some("detail.start-time"),
        ),
        (
            "time not a timestamp",
            edited(PF, |v| v["time"] = json!("last Tuesday")),
            "bad_timestamp",
            Some("time"),
        ),
        (
            "time negative",
            edited(PF, |v| v["time"] = json!(-5)),
            "bad_timestamp",
            Some("time"),
        ),
        (
            "time a boolean",
            edited(PF, |v| v["time"] = json!(true)),
            "wrong_type",
            Some("time"),
        ),
        (
            "missing time",
            edited(PF, |v| remove(v, "time")),
            "missing_field",
            Some("time"),
        ),
        (
            "missing detail",
            edited(PF, |v| remove(v, "detail")),
            "missing_field",
            Some("detail"),
        ),
        (
            "detail is a string",
            edited(PF, |v| v["detail"] = json!("{}")),
            "wrong_type",
            Some("detail"),
        ),
        (
            "detail-type is a number",
            edited(PF, |v| v["detail-type"] = json!(3)),
            "wrong_type",
            Some("detail-type"),
        ),
        (
            "region is an object",
            edited(PF, |v| v["region"] = json!({})),
            "wrong_type",
            Some("region"),
        ),
        (
            "id is an array",
            edited(PF, |v| v["id"] = json!([])),
            "wrong_type",
            Some("id"),
        ),
        (
            "execution-trigger is a string",
            edited("codepipeline-pipeline-started.json", |v| {
                v["detail"]["execution-trigger"] = json!("Webhook")
            }),
            "wrong_type",
            Some("detail.execution-trigger"),
        ),
        (
            "alarm state value unknown",
            edited("cloudwatch-alarm-state-change.json", |v| {
                v["detail"]["state"]["value"] = json!("PANIC")
            }),
            "unknown_value",
            Some("detail.state.value"),
        ),
        (
            "alarm previous state unknown",
            edited("cloudwatch-alarm-state-change.json", |v| {
                v["detail"]["previousState"]["value"] = json!("MEH")
            }),
            "unknown_value",
            Some("detail.previousState.value"),
        ),
        (
            "alarm without state",
            edited("cloudwatch-alarm-state-change.json", |v| {
                remove(&mut v["detail"], "state")
            }),
            "missing_field",
            Some("detail.state"),
        ),
        (
            "alarm without name",
            edited("cloudwatch-alarm-state-change.json", |v| {
                remove(&mut v["detail"], "alarmName")
            }),
            "missing_field",
            Some("detail.alarmName"),
        ),
        (
            "alarm timestamp bad",
            edited("cloudwatch-alarm-state-change.json", |v| {
                v["detail"]["state"]["timestamp"] = json!("soon")
            }),
            "bad_timestamp",
            Some("detail.state.timestamp"),
        ),
        (
            "build without project",
            edited("codebuild-build-state-change-succeeded.json", |v| {
                remove(&mut v["detail"], "project-name")
            }),
            "missing_field",
            Some("detail.project-name"),
        ),
        (
            "build logs a string",
            edited("codebuild-build-state-change-succeeded.json", |v| {
                v["detail"]["additional-information"]["logs"] = json!("x")
            }),
            "wrong_type",
            Some("detail.additional-information.logs"),
        ),
        (
            "phase without completed-phase",
            edited("codebuild-build-phase-change.json", |v| {
                remove(&mut v["detail"], "completed-phase")
            }),
            "missing_field",
            Some("detail.completed-phase"),
        ),
        (
            "codestar additionalAttributes a string",
            {
                let mut v: Value = serde_json::from_str(&test_data(CODESTAR)).unwrap();
                v["additionalAttributes"] = json!("x");
                v.to_string()
            },
            "wrong_type",
            Some("additionalAttributes"),
        ),
        (
            "codestar failedActions an object",
            {
                let mut v: Value = serde_json::from_str(&test_data(CODESTAR)).unwrap();
                v["additionalAttributes"]["failedActions"] = json!({});
                v.to_string()
            },
            "wrong_type",
            Some("additionalAttributes.failedActions"),
        ),
        (
            "sns without MessageId",
            edited(ENV, |v| remove(v, "MessageId")),
            "missing_field",
            Some("MessageId"),
        ),
        (
            "sns Message a number",
            edited(ENV, |v| v["Message"] = json!(5)),
            "wrong_type",
            Some("Message"),
        ),
        (
            "sns Message not JSON",
            fixture(ENV),
            "not_json",
            Some("Message"),
        ),
        (
            "sns Timestamp bad",
            edited(ENV, |v| {
                v["Message"] = json!(fixture(PF));
                v["Timestamp"] = json!("noon");
            }),
            "bad_timestamp",
            Some("Timestamp"),
        ),
        (
            "sns Message a JSON array",
            edited(ENV, |v| v["Message"] = json!("[1,2]")),
            "wrong_type",
            Some("(message)"),
        ),
        (
            "inner event error",
            edited(ENV, |v| {
                v["Message"] = json!(edited(PF, |v| remove(&mut v["detail"], "pipeline")))
            }),
            "missing_field",
            Some("detail.pipeline"),
        ),
        (
            "top-level array",
            "[1, 2, 3]".to_string(),
            "wrong_type",
            Some("(message)"),
        ),
        (
            "top-level string",
            "\"hello\"".to_string(),
            "wrong_type",
            Some("(message)"),
        ),
        (
            "not JSON",
            "{\"detail-type\": ".to_string(),
            "not_json",
            Some("(message)"),
        ),
        ("empty body", String::new(), "empty", None),
        ("whitespace body", " \n\t ".to_string(), "empty", None),
        (
            "too large",
            format!("\"{}\"", "x".repeat(MAX_MESSAGE_BYTES)),
            "too_large",
            None,
        ),
        ("empty object", "{}".to_string(), "unrecognised_shape", None),
        (
            "unrelated object",
            "{\"hello\": \"world\"}".to_string(),
            "unrecognised_shape",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (what, body, reason, field) in &cases {
        match parse_message(body) {
            Err(err) => {
                let display = err.to_string();
                if err.reason() != *reason || field_of(&err) != *field {
                    failures.push(format!("{what}: expected {reason} {field:?}, got {err:?}"));
                } else if let Some(field) = field {
                    if !display.contains(field) {
                        failures.push(format!("{what}: display {display:?} does not name {field}"));
                    }
                }
            }
            Ok(parsed) => failures.push(format!(
                "{what}: expected {reason} {field:?}, parsed {parsed:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn state_exploded_error_names_value_and_lists_the_expected_states() {
    let err = parse_err(&edited("codepipeline-pipeline-failed.json", |v| {
        v["detail"]["state"] = json!("EXPLODED")
    }));
    let ParseError::UnknownValue {
        field,
        value,
        expected,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (field.as_str(), value.as_str()),
        ("detail.state", "EXPLODED")
    );
    for state in PipelineState::ALL {
        assert!(expected.contains(state), "{expected}");
    }
    let display = err.to_string();
    assert!(
        display.contains("detail.state")
            && display.contains("EXPLODED")
            && display.contains("SUPERSEDED"),
        "{display}"
    );
}

#[test]
fn pipeline_as_number_is_wrong_type_expecting_a_string() {
    let err = parse_err(&edited("codepipeline-pipeline-failed.json", |v| {
        v["detail"]["pipeline"] = json!(42)
    }));
    assert_eq!(
        err,
        ParseError::WrongType {
            field: "detail.pipeline".into(),
            expected: "a string",
            found: "a number"
        }
    );
}

#[test]
fn body_just_at_the_limit_is_parsed_and_one_byte_over_is_too_large() {
    let base = fixture("codepipeline-pipeline-failed.json");
    let pad = MAX_MESSAGE_BYTES - base.len();
    let at_limit = format!("{base}{}", " ".repeat(pad));
    assert_eq!(at_limit.len(), MAX_MESSAGE_BYTES);
    parse_event(&at_limit);
    let over = format!("{at_limit} ");
    assert_eq!(
        parse_err(&over),
        ParseError::TooLarge {
            size: MAX_MESSAGE_BYTES + 1,
            limit: MAX_MESSAGE_BYTES
        }
    );
}

#[test]
fn every_error_display_names_its_field() {
    let with_fields = [
        ParseError::NotJson {
            field: "f.a".into(),
            detail: "eof".into(),
        },
        ParseError::MissingField {
            field: "f.b".into(),
        },
        ParseError::EmptyField {
            field: "f.c".into(),
        },
        ParseError::WrongType {
            field: "f.d".into(),
            expected: "a string",
            found: "a number",
        },
        ParseError::UnknownValue {
            field: "f.e".into(),
            value: "v".into(),
            expected: "A, B".into(),
        },
        ParseError::BadTimestamp {
            field: "f.f".into(),
        },
    ];
    for err in &with_fields {
        let field = field_of(err).unwrap();
        assert!(err.to_string().starts_with(&format!("{field}: ")), "{err}");
    }
    let too_large = ParseError::TooLarge {
        size: 2_000_000,
        limit: MAX_MESSAGE_BYTES,
    };
    assert!(
        too_large.to_string().contains("2000000")
            && too_large
                .to_string()
                .contains(&MAX_MESSAGE_BYTES.to_string())
    );
}

#[test]
fn parse_error_reasons_are_distinct_snake_case_labels() {
    let all = [
        ParseError::Empty,
        ParseError::TooLarge { size: 2, limit: 1 },
        ParseError::NotJson {
            field: "f".into(),
            detail: "d".into(),
        },
        ParseError::MissingField { field: "f".into() },
        ParseError::EmptyField { field: "f".into() },
        ParseError::WrongType {
            field: "f".into(),
            expected: "e",
            found: "f",
        },
        ParseError::UnknownValue {
            field: "f".into(),
            value: "v".into(),
            expected: "e".into(),
        },
        ParseError::BadTimestamp { field: "f".into() },
        ParseError::UnrecognisedShape,
        ParseError::NestedTooDeep(2),
    ];
    let reasons: BTreeSet<&str> = all.iter().map(ParseError::reason).collect();
    assert_eq!(reasons.len(), all.len(), "{reasons:?}");
    for reason in reasons {
        let snake = !reason.is_empty()
            && !reason.starts_with('_')
            && !reason.ends_with('_')
            && !reason.contains("__")
            && reason.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        assert!(snake, "{reason:?} is not snake_case");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Every documented state, and API spellings.
// ---------------------------------------------------------------------------------------------

/// The states SOURCES.md lists ("States in the doc's table: pipeline ...; stage ...; action ...").
fn documented_states() -> [(String, Vec<String>); 3] {
    let sources = fixture("SOURCES.md").replace('\n', " ");
    let start = sources
        .find("States in the doc's table:")
        .expect("state list in SOURCES.md");
    let rest = &sources[start + "States in the doc's table:".len()..];
    let list = &rest[..rest.find('.').expect("end of the state list")];
    let parts: Vec<(String, Vec<String>)> = list
        .split(';')
        .map(|part| {
            let mut words = part.split([' ', ',']).filter(|w| !w.is_empty());
            let level = words.next().unwrap().to_string();
            (level, words.map(str::to_string).collect())
        })
        .collect();
    let [pipeline, stage, action]: [(String, Vec<String>); 3] = parts.try_into().unwrap();
    assert_eq!(
        (pipeline.0.as_str(), stage.0.as_str(), action.0.as_str()),
        ("pipeline", "stage", "action")
    );
    [pipeline, stage, action]
}

#[test]
fn the_enums_know_exactly_the_states_sources_md_lists() {
    let [pipeline, stage, action] = documented_states();
    assert_eq!(pipeline.1, PipelineState::ALL);
    assert_eq!(stage.1, StageState::ALL);
    assert_eq!(action.1, ActionState::ALL);
}

fn template(detail_type: &str, state: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("id-{detail_type}-{state}"),
        "detail-type": detail_type,
        "source": "aws.codepipeline",
        "account": "123456789012",
        "time": "2026-01-27T10:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:codepipeline:eu-west-1:123456789012:p"],
        "detail": {"pipeline": "p", "execution-id": "e", "stage": "s", "action": "a", "state": state, "version": 1}
    })
}

#[test]
fn every_documented_state_parses_for_pipeline_stage_and_action_events_in_any_case() {
    let [pipeline, stage, action] = documented_states();
    for state in &pipeline.1 {
        for spelling in [state.clone(), state.to_lowercase(), pascal(state)] {
            let body =
                template("CodePipeline Pipeline Execution State Change", &spelling).to_string();
            let EventKind::PipelineExecution(e) = parse_event(&body).kind else {
                panic!()
            };
            assert_eq!(e.state.as_wire(), state, "{spelling}");
        }
    }
    for state in &stage.1 {
        for spelling in [state.clone(), state.to_lowercase(), pascal(state)] {
            let body = template("CodePipeline Stage Execution State Change", &spelling).to_string();
            let EventKind::StageExecution(e) = parse_event(&body).kind else {
                panic!()
            };
            assert_eq!(e.state.as_wire(), state, "{spelling}");
        }
    }
    for state in &action.1 {
        for spelling in [state.clone(), state.to_lowercase(), pascal(state)] {
            let body =
                template("CodePipeline Action Execution State Change", &spelling).to_string();
            let EventKind::ActionExecution(e) = parse_event(&body).kind else {
                panic!()
            };
            assert_eq!(e.state.as_wire(), state, "{spelling}");
        }
    }
}

#[test]
fn states_not_valid_at_a_level_are_rejected() {
    // SUPERSEDED is a pipeline state only; ABANDONED an action state only; RESUMED not an action state.
    for (detail_type, state) in [
        ("CodePipeline Stage Execution State Change", "SUPERSEDED"),
        ("CodePipeline Pipeline Execution State Change", "ABANDONED"),
        ("CodePipeline Action Execution State Change", "RESUMED"),
        ("CodePipeline Action Execution State Change", "IN_PROGRESS"),
    ] {
        let err = parse_err(&template(detail_type, state).to_string());
        assert_eq!(
            field_of(&err),
            Some("detail.state"),
            "{detail_type} {state}: {err:?}"
        );
    }
}

/// `FAILED` -> `Failed`, `INSUFFICIENT_DATA` -> `InsufficientData`.
fn pascal(wire: &str) -> String {
    wire.split('_')
        .map(|word| {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn from_wire_accepts_api_pascal_case_spellings() {
    assert_eq!(
        PipelineState::from_wire("Failed"),
        Some(PipelineState::Failed)
    );
    assert_eq!(
        PipelineState::from_wire("Succeeded"),
        Some(PipelineState::Succeeded)
    );
    assert_eq!(
        PipelineState::from_wire("Superseded"),
        Some(PipelineState::Superseded)
    );
    assert_eq!(
        PipelineState::from_wire("Stopping"),
        Some(PipelineState::Stopping)
    );
    assert_eq!(StageState::from_wire("Stopped"), Some(StageState::Stopped));
    assert_eq!(
        ActionState::from_wire("Abandoned"),
        Some(ActionState::Abandoned)
    );
    assert_eq!(
        AlarmState::from_wire("InsufficientData"),
        None,
        "not an API spelling; wire only"
    );
    assert_eq!(
        AlarmState::from_wire("INSUFFICIENT_DATA"),
        Some(AlarmState::InsufficientData)
    );
    for wire in PipelineState::ALL {
        let state = PipelineState::from_wire(wire).unwrap();
        assert_eq!(state.as_wire(), *wire);
        assert_eq!(state.to_string(), *wire);
        assert_eq!(PipelineState::from_wire(&pascal(wire)), Some(state));
    }
    for wire in StageState::ALL {
        assert_eq!(
            StageState::from_wire(&pascal(wire)).map(StageState::as_wire),
            Some(*wire)
        );
    }
    for wire in ActionState::ALL {
        assert_eq!(
            ActionState::from_wire(&pascal(wire)).map(ActionState::as_wire),
            Some(*wire)
        );
    }
    assert_eq!(PipelineState::from_wire("InProgress"), None);
    assert_eq!(PipelineState::from_wire(""), None);
}

#[test]
fn from_wire_accepts_the_api_spelling_cancelled() {
    // The CodePipeline API says `Cancelled`; EventBridge says `CANCELED`.
    assert_eq!(
        PipelineState::from_wire("Cancelled"),
        Some(PipelineState::Canceled)
    );
    assert_eq!(
        StageState::from_wire("Cancelled"),
        Some(StageState::Canceled)
    );
    assert_eq!(
        ActionState::from_wire("CANCELLED"),
        Some(ActionState::Canceled)
    );
    assert_eq!(AlarmState::from_wire("Cancelled"), None);
    let body = template("CodePipeline Pipeline Execution State Change", "CANCELLED").to_string();
    let EventKind::PipelineExecution(e) = parse_event(&body).kind else {
        panic!()
    };
    assert_eq!(e.state, PipelineState::Canceled);
}

// ---------------------------------------------------------------------------------------------
// 9. Transition keys.
// ---------------------------------------------------------------------------------------------

#[test]
fn transition_key_is_the_same_raw_and_in_an_sns_envelope() {
    let mut bodies: Vec<String> = CODEPIPELINE_FIXTURES
        .iter()
        .map(|(name, ..)| fixture(name))
        .collect();
    bodies.push(fixture("cloudwatch-alarm-state-change.json"));
    bodies.push(fixture("codebuild-build-state-change-succeeded.json"));
    bodies.push(fixture("codebuild-build-phase-change.json"));
    bodies.push(test_data(CODESTAR));
    bodies.push(rollback_initiated().to_string());
    for body in bodies {
        let raw = parse_event(&body);
        let wrapped = parse_event(&sns_envelope(&body, "another-message-id"));
        assert_eq!(raw.transition_key(), wrapped.transition_key(), "{body}");
        assert!(!raw.transition_key().is_empty());
    }
}

#[test]
fn transition_key_survives_redelivery_under_a_new_id() {
    for &(name, ..) in CODEPIPELINE_FIXTURES {
        let first = parse_event(&fixture(name));
        let again = parse_event(&edited(name, |v| v["id"] = json!("redelivered-id")));
        assert_ne!(first.id, again.id);
        assert_eq!(first.transition_key(), again.transition_key(), "{name}");
    }
}

#[test]
fn codestar_and_eventbridge_deliveries_of_one_pipeline_transition_share_a_key() {
    let codestar = parse_event(&test_data(CODESTAR));
    let EventKind::PipelineExecution(p) = &codestar.kind else {
        panic!()
    };
    let eventbridge = parse_event(&edited("codepipeline-pipeline-failed.json", |v| {
        v["detail"]["execution-id"] = json!(p.execution_id);
        v["time"] = json!("2026-01-27T09:58:12Z");
    }));
    assert_eq!(codestar.transition_key(), eventbridge.transition_key());
}

#[test]
fn transition_key_differs_between_states() {
    let [pipeline, stage, action] = documented_states();
    for (detail_type, states) in [
        ("CodePipeline Pipeline Execution State Change", pipeline.1),
        ("CodePipeline Stage Execution State Change", stage.1),
        ("CodePipeline Action Execution State Change", action.1),
    ] {
        let keys: BTreeSet<String> = states
            .iter()
            .map(|state| parse_event(&template(detail_type, state).to_string()).transition_key())
            .collect();
        assert_eq!(keys.len(), states.len(), "{detail_type}: {keys:?}");
    }
    let alarm = parse_event(&fixture("cloudwatch-alarm-state-change.json"));
    let ok = parse_event(&edited("cloudwatch-alarm-state-change.json", |v| {
        v["detail"]["state"]["value"] = json!("OK")
    }));
    assert_ne!(alarm.transition_key(), ok.transition_key());
}

#[test]
fn transition_key_differs_between_stages_actions_and_executions() {
    let base = parse_event(&fixture("codepipeline-action-failed.json")).transition_key();
    for edit in [
        |v: &mut Value| v["detail"]["execution-id"] = json!("other-execution"),
        |v: &mut Value| v["detail"]["stage"] = json!("OtherStage"),
        |v: &mut Value| v["detail"]["action"] = json!("OtherAction"),
        |v: &mut Value| v["detail"]["action-execution-id"] = json!("retry-2"),
        |v: &mut Value| v["detail"]["pipeline"] = json!("otherPipeline"),
    ] {
        assert_ne!(
            parse_event(&edited("codepipeline-action-failed.json", edit)).transition_key(),
            base
        );
    }
}

#[test]
fn arrays_where_objects_belong_are_rejected_not_read_by_position() {
    // Serde's derived structs accept `[a, b]` for `{first: a, second: b}`; the parser must not.
    for (pointer, value) in [
        ("/detail/type", json!(["AWS", "Deploy"])),
        ("/detail/execution-result", json!(["u", "s", "i", "c"])),
        (
            "/detail",
            json!([
                "myPipeline",
                "e",
                "Deploy",
                "Deploy",
                "a",
                "FAILED",
                null,
                null,
                null
            ]),
        ),
    ] {
        let mut event = fixture_json("codepipeline-action-failed.json");
        *event.pointer_mut(pointer).unwrap() = value;
        let err = parse_err(&event.to_string());
        assert_eq!(err.reason(), "wrong_type", "{pointer}: {err}");
    }
    let body = format!("[{}]", fixture("codepipeline-pipeline-failed.json"));
    assert_eq!(parse_err(&body).reason(), "wrong_type");
}

#[test]
fn additional_attributes_of_the_wrong_shape_are_rejected_on_every_path() {
    // Found by the property test: the fast path used to skip `additionalAttributes`.
    let mut event = fixture_json("codepipeline-pipeline-failed.json");
    event["additionalAttributes"] = json!(["not", "an", "object"]);
    let err = parse_err(&event.to_string());
    assert_eq!(err.reason(), "wrong_type");
    assert_eq!(field_of(&err), Some("additionalAttributes"));
}
