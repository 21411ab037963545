//! `explain` through the real binary on every shared fixture: the decision docs/specification.md implies.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/events");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fixtures.toml");

/// Runs `explain` with `args`, feeding `stdin` when given; returns (exit code, parsed stdout).
fn explain(args: &[&str], stdin: Option<&str>) -> (i32, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline-responder"))
        .args(["--config", CONFIG, "explain"])
        .args(args)
        .env_remove("PIPELINE_RESPONDER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "explain printed no JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

fn fixture_path(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path(name)).unwrap()).unwrap()
}

/// What `explain` must say for each shared fixture (docs/specification.md section 2): the outcome and, when
/// an incident opens, its type.
fn expected(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match name {
        "codepipeline-pipeline-failed.json" | "codepipeline-action-failed.json" => {
            ("open", Some("pipeline_execution_failure"))
        }
        "codepipeline-pipeline-started.json"
        | "codepipeline-pipeline-stopping.json"
        | "codepipeline-pipeline-succeeded.json"
        | "codepipeline-stage-started.json"
        | "codepipeline-stage-stopping.json"
        | "codepipeline-stage-stopped.json"
        | "codepipeline-stage-resumed.json"
        | "codepipeline-action-started.json"
        | "codepipeline-action-succeeded.json"
        | "codepipeline-action-abandoned.json"
        | "cloudwatch-alarm-state-change.json"
        | "codebuild-build-state-change-succeeded.json"
        | "codebuild-build-phase-change.json" => ("none", None),
        // The SNS samples carry plain text, not an event; the receive-message sample is the CLI's
        // wrapper around a message, not a message body.
        "sqs-body-sns-envelope.json"
        | "sqs-body-sns-raw-delivery.txt"
        | "sqs-receive-message-eventbridge-target.json" => ("rejected", None),
        _ => return None,
    })
}

#[test]
fn explain_gives_the_product_decision_for_every_shared_fixture() {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SOURCES.md")
        .collect();
    names.sort();
    assert!(names.len() >= 18, "fixtures not found in {FIXTURES}");
    for name in names {
        let (outcome, incident_type) =
            expected(&name).unwrap_or_else(|| panic!("no expectation for new fixture {name}"));
        let (code, out) = explain(&[&fixture_path(&name)], None);
        assert_eq!(code, 0, "{name}: {out}");
        assert_eq!(out["outcome"], outcome, "{name}: {out:#}");
        if let Some(t) = incident_type {
            assert_eq!(out["type"], t, "{name}");
            assert_eq!(out["environment"], "production", "{name}");
            assert_eq!(
                out["severity"], "high",
                "{name}: production failure is high"
            );
            assert!(out["key"]
                .as_str()
                .unwrap()
                .starts_with("pipeline_execution_failure/myPipeline/"));
            assert!(!out["diagnostics"].as_array().unwrap().is_empty());
            assert!(!out["notifications"].as_array().unwrap().is_empty());
            assert_eq!(out["escalation_schedule"][0]["level_id"], "L2");
        } else if outcome != "rejected" {
            assert!(
                out["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{name}: a reason is given"
            );
        } else {
            assert!(
                out["error"].as_str().is_some(),
                "{name}: the parse error is shown"
            );
        }
    }
}

#[test]
fn explain_approval_action_started_opens_approval_pending() {
    let mut event = fixture_json("codepipeline-action-started.json");
    event["detail"]["type"]["category"] = json!("Approval");
    event["detail"]["type"]["provider"] = json!("Manual");
    event["detail"]["action"] = json!("ApproveProduction");
    let (code, out) = explain(&["-"], Some(&event.to_string()));
    assert_eq!(code, 0);
    assert_eq!(out["outcome"], "open");
    assert_eq!(out["type"], "approval_pending");
    assert_eq!(out["severity"], "info");
    // An approval has no ack target: its timed posts are the runbook's reminders, the first too.
    let kinds: Vec<&str> = out["escalation_schedule"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert!(kinds.len() >= 2, "{out}");
    assert!(kinds.iter().all(|k| *k == "reminder"), "{kinds:?}");
}

#[test]
fn explain_succeeded_execution_resolves_the_open_failure() {
    // An earlier execution failed and is open; the fixture's execution started after it.
    let incidents = json!({"incidents": [{
        "key": "pipeline_execution_failure/myPipeline/0000-earlier",
        "incident_type": "pipeline_execution_failure",
        "environment": "production",
        "pipeline": "myPipeline",
        "execution_id": "0000-earlier",
        "execution_start": "2023-10-26T12:00:00Z",
        "failed_stage": "Build",
        "action": null,
        "alarms": [],
        "error_signature": null,
        "severity": "high",
        "status": "open",
        "opened_at": "2023-10-26T12:10:00Z",
        "resolved_at": null,
        "highest_level_notified": 0,
        "resolution": null
    }]});
    let dir = std::env::temp_dir().join(format!("explain-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let view = dir.join("incidents.json");
    std::fs::write(&view, incidents.to_string()).unwrap();
    let (code, out) = explain(
        &[
            &fixture_path("codepipeline-pipeline-succeeded.json"),
            "--incidents",
            view.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(out["outcome"], "resolve", "{out:#}");
    assert_eq!(
        out["resolves"],
        json!(["pipeline_execution_failure/myPipeline/0000-earlier"])
    );
    // Without the open incident the same event resolves nothing and says why.
    let (_, out) = explain(
        &[&fixture_path("codepipeline-pipeline-succeeded.json")],
        None,
    );
    assert_eq!(out["outcome"], "none");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_reads_sns_envelopes_and_the_body_inside_receive_message_output() {
    let failed =
        std::fs::read_to_string(fixture_path("codepipeline-pipeline-failed.json")).unwrap();
    let mut envelope = fixture_json("sqs-body-sns-envelope.json");
    envelope["Message"] = json!(failed);
    let (code, out) = explain(&["-"], Some(&envelope.to_string()));
    assert_eq!(code, 0);
    assert_eq!(out["type"], "pipeline_execution_failure");
    assert_eq!(out["event"]["carrier"], "sns_envelope");

    let receive = fixture_json("sqs-receive-message-eventbridge-target.json");
    let body = receive["Messages"][0]["Body"].as_str().unwrap();
    let (code, out) = explain(&["-"], Some(body));
    assert_eq!(code, 0);
    assert_eq!(
        out["outcome"], "ignored",
        "detail-type \"transaction\" is not ours: {out:#}"
    );
}

#[test]
fn explain_names_the_field_of_a_broken_event() {
    let mut event = fixture_json("codepipeline-pipeline-failed.json");
    event["detail"].as_object_mut().unwrap().remove("pipeline");
    let (code, out) = explain(&["-"], Some(&event.to_string()));
    assert_eq!(code, 0);
    assert_eq!(out["outcome"], "rejected");
    assert_eq!(out["reason"], "missing_field");
    assert!(
        out["error"].as_str().unwrap().contains("detail.pipeline"),
        "{out}"
    );
}

#[test]
fn explain_of_a_missing_file_exits_3_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline-responder"))
        .args(["--config", CONFIG, "explain", "/nonexistent/event.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/event.json"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check-config", "--help"],
        vec!["explain", "--help"],
        vec!["incidents", "--help"],
        vec!["incidents", "ack", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pipeline-responder"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}
