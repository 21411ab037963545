//! CodePipelineFake's read operations, errors and wire format, through aws-sdk-codepipeline.
#![allow(clippy::unwrap_used)]

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::operation::get_pipeline_execution::GetPipelineExecutionError;
use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateError;
use aws_sdk_codepipeline::operation::list_action_executions::ListActionExecutionsError;
use aws_sdk_codepipeline::types::{
    ActionExecutionFilter, ActionExecutionStatus, ExecutionMode, PipelineExecutionStatus,
    StageExecutionStatus,
};
use pipeline_responder_e2e::{
    ActionExecutionModel, ActionModel, ActionStateModel, CodePipelineFake, ErrorDetails,
    ExecutionModel, PipelineModel, RevisionModel, StageModel,
};

use super::{assert_same_instant, at};

pub(super) const PIPELINE: &str = "kiro-pipeline-production";
pub(super) const FAILED_RUN: &str = "11111111-aaaa-4bbb-8ccc-000000000001";
pub(super) const RUNNING: &str = "11111111-aaaa-4bbb-8ccc-000000000002";

/// Production with a failed build in one execution and a newer one waiting for approval.
pub(super) fn production() -> PipelineModel {
    let build_failed = ActionStateModel {
        action_execution_id: Some("act-build-1".into()),
        status: "Failed".into(),
        summary: Some("Build failed: coverage 72% < 80%".into()),
        last_status_change: at(1_769_500_100_648),
        external_execution_id: Some("kiro-pipeline-production-build:0f3c".into()),
        external_execution_url: Some("https://console.aws.amazon.com/codebuild/build/0f3c".into()),
        error: Some(ErrorDetails {
            code: "JobFailed".into(),
            message: "Build terminated with state: FAILED".into(),
        }),
        token: None,
    };
    let approval = ActionStateModel {
        status: "InProgress".into(),
        last_status_change: at(1_769_500_300_000),
        token: Some("approval-token-1".into()),
        ..Default::default()
    };
    PipelineModel::new(PIPELINE, at(1_769_000_000_204))
        .with_stage(
            StageModel::new("Source")
                .ran(RUNNING, "Succeeded")
                .with_action(ActionModel::new(
                    "Source",
                    "Succeeded",
                    at(1_769_500_000_100),
                )),
        )
        .with_stage(
            StageModel::new("Build")
                .ran(FAILED_RUN, "Failed")
                .with_action(ActionModel {
                    name: "Build".into(),
                    latest: Some(build_failed),
                    ..Default::default()
                }),
        )
        .with_stage(StageModel {
            inbound_transition_enabled: false,
            disabled_reason: Some("Disabled while I investigate the failure".into()),
            ..StageModel::new("Approve")
                .ran(RUNNING, "InProgress")
                .with_action(ActionModel {
                    name: "ApproveProduction".into(),
                    latest: Some(approval),
                    ..Default::default()
                })
        })
        .with_execution(ExecutionModel {
            status_summary: Some("Build failed".into()),
            last_update_time: at(1_769_500_100_648),
            revisions: vec![RevisionModel {
                action_name: "Source".into(),
                artifact_name: "SourceArtifact".into(),
                revision_id: "7636d59f3c461c".into(),
                revision_summary: Some("Raise coverage threshold".into()),
                revision_url: Some("https://github.com/org/app/commit/7636d59f3c461c".into()),
                created: at(1_769_499_990_000),
            }],
            ..ExecutionModel::new(FAILED_RUN, "Failed", at(1_769_500_000_000))
        })
        .with_execution(ExecutionModel::new(
            RUNNING,
            "InProgress",
            at(1_769_500_200_000),
        ))
}

fn action_run(execution: &str, n: i64, stage: &str, status: &str) -> ActionExecutionModel {
    ActionExecutionModel {
        pipeline_execution_id: execution.into(),
        action_execution_id: format!("{execution}-act-{n}"),
        stage_name: stage.into(),
        action_name: stage.into(),
        status: status.into(),
        start_time: at(1_769_500_000_000 + n * 1000),
        last_update_time: at(1_769_500_000_500 + n * 1000),
        category: "Build".into(),
        provider: "CodeBuild".into(),
        configuration: [(
            "ProjectName".to_owned(),
            "kiro-pipeline-production-build".to_owned(),
        )]
        .into(),
        external_execution_summary: Some(format!("run {n}")),
        ..Default::default()
    }
}

#[tokio::test]
async fn get_pipeline_state_parses_stages_actions_and_error_details() {
    let fake = CodePipelineFake::start().await;
    fake.set_pipeline(production());

    let state = fake
        .client()
        .await
        .get_pipeline_state()
        .name(PIPELINE)
        .send()
        .await
        .unwrap();

    assert_eq!(state.pipeline_name(), Some(PIPELINE));
    assert_eq!(state.pipeline_version(), Some(1));
    assert_same_instant(state.created(), at(1_769_000_000_204));
    let stages = state.stage_states();
    let names: Vec<_> = stages.iter().map(|s| s.stage_name().unwrap()).collect();
    assert_eq!(names, ["Source", "Build", "Approve"]);
    let build = &stages[1];
    let stage_run = build.latest_execution().unwrap();
    assert_eq!(stage_run.status(), &StageExecutionStatus::Failed);
    assert_eq!(stage_run.pipeline_execution_id(), FAILED_RUN);
    let action = build.action_states()[0].latest_execution().unwrap();
    assert_eq!(action.status(), Some(&ActionExecutionStatus::Failed));
    assert_eq!(action.summary(), Some("Build failed: coverage 72% < 80%"));
    assert_same_instant(action.last_status_change(), at(1_769_500_100_648));
    assert_eq!(
        action.external_execution_url(),
        Some("https://console.aws.amazon.com/codebuild/build/0f3c")
    );
    let error = action.error_details().unwrap();
    assert_eq!(error.code(), Some("JobFailed"));
    assert_eq!(error.message(), Some("Build terminated with state: FAILED"));
    let approve = &stages[2];
    let transition = approve.inbound_transition_state().unwrap();
    assert!(!transition.enabled());
    assert_eq!(
        transition.disabled_reason(),
        Some("Disabled while I investigate the failure")
    );
    let approval = approve.action_states()[0].latest_execution().unwrap();
    assert_eq!(approval.token(), Some("approval-token-1"));

    let calls = fake.calls_to("GetPipelineState");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request["name"], PIPELINE);
}

#[tokio::test]
async fn unknown_pipeline_and_execution_are_the_sdks_modeled_errors() {
    let fake = CodePipelineFake::start().await;
    fake.set_pipeline(production());
    let client = fake.client().await;

    let err = client
        .get_pipeline_state()
        .name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, GetPipelineStateError::PipelineNotFoundException(_)),
        "{err:?}"
    );
    assert!(err.message().unwrap().contains("'nope'"));

    let err = client
        .get_pipeline_execution()
        .pipeline_name(PIPELINE)
        .pipeline_execution_id("missing")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            err,
            GetPipelineExecutionError::PipelineExecutionNotFoundException(_)
        ),
        "{err:?}"
    );
    // A modeled, non-retriable error is asked once even with the SDK's default retries.
    assert_eq!(fake.call_count("GetPipelineExecution"), 1);
}

#[tokio::test]
async fn executions_list_newest_first_across_pages_with_revisions() {
    let fake = CodePipelineFake::start().await;
    let mut pipeline = production();
    pipeline.executions.push(ExecutionModel::new(
        "oldest",
        "Succeeded",
        at(1_769_400_000_000),
    ));
    fake.set_pipeline(pipeline);
    let client = fake.client().await;

    let summaries: Vec<_> = client
        .list_pipeline_executions()
        .pipeline_name(PIPELINE)
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let ids: Vec<_> = summaries
        .iter()
        .map(|s| s.pipeline_execution_id().unwrap())
        .collect();
    assert_eq!(ids, [RUNNING, FAILED_RUN, "oldest"]);
    assert_eq!(
        summaries[1].status(),
        Some(&PipelineExecutionStatus::Failed)
    );
    assert_same_instant(summaries[1].start_time(), at(1_769_500_000_000));
    assert_eq!(
        summaries[1].source_revisions()[0].revision_id(),
        Some("7636d59f3c461c")
    );
    let pages = fake.calls_to("ListPipelineExecutions");
    assert_eq!(pages.len(), 2);
    assert!(pages[1].request["nextToken"].is_string());

    let execution = client
        .get_pipeline_execution()
        .pipeline_name(PIPELINE)
        .pipeline_execution_id(FAILED_RUN)
        .send()
        .await
        .unwrap()
        .pipeline_execution
        .unwrap();
    assert_eq!(execution.status(), Some(&PipelineExecutionStatus::Failed));
    assert_eq!(execution.status_summary(), Some("Build failed"));
    assert_eq!(execution.execution_mode(), Some(&ExecutionMode::Superseded));
    let revision = &execution.artifact_revisions()[0];
    assert_eq!(revision.revision_id(), Some("7636d59f3c461c"));
    assert_eq!(
        revision.revision_summary(),
        Some("Raise coverage threshold")
    );
    assert_eq!(
        revision.revision_url(),
        Some("https://github.com/org/app/commit/7636d59f3c461c")
    );
}

#[tokio::test]
async fn action_executions_filter_by_execution_and_paginate() {
    let fake = CodePipelineFake::start().await;
    let mut pipeline = production();
    for n in 1..=3 {
        pipeline
            .action_executions
            .push(action_run(FAILED_RUN, n, "Build", "Succeeded"));
    }
    pipeline
        .action_executions
        .push(action_run(RUNNING, 9, "Build", "InProgress"));
    pipeline.action_executions[2].error = Some(ErrorDetails {
        code: "JobFailed".into(),
        message: "npm audit found 2 critical vulnerabilities".into(),
    });
    fake.set_pipeline(pipeline);
    let client = fake.client().await;
    let filter = ActionExecutionFilter::builder()
        .pipeline_execution_id(FAILED_RUN)
        .build();

    let runs: Vec<_> = client
        .list_action_executions()
        .pipeline_name(PIPELINE)
        .filter(filter.clone())
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let ids: Vec<_> = runs
        .iter()
        .map(|r| r.action_execution_id().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            format!("{FAILED_RUN}-act-3"),
            format!("{FAILED_RUN}-act-2"),
            format!("{FAILED_RUN}-act-1")
        ]
    );
    let newest = &runs[0];
    assert_eq!(newest.stage_name(), Some("Build"));
    assert_same_instant(newest.start_time(), at(1_769_500_003_000));
    let input = newest.input().unwrap();
    assert_eq!(input.action_type_id().unwrap().provider(), "CodeBuild");
    assert_eq!(
        input.configuration().unwrap()["ProjectName"],
        "kiro-pipeline-production-build"
    );
    let result = newest.output().unwrap().execution_result().unwrap();
    assert_eq!(result.external_execution_summary(), Some("run 3"));
    assert_eq!(
        result.error_details().unwrap().message(),
        Some("npm audit found 2 critical vulnerabilities")
    );
    assert_eq!(fake.call_count("ListActionExecutions"), 2);
    assert_eq!(
        fake.calls()[0].request["filter"]["pipelineExecutionId"],
        FAILED_RUN
    );

    let err = client
        .list_action_executions()
        .pipeline_name(PIPELINE)
        .filter(filter)
        .next_token("forged")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, ListActionExecutionsError::InvalidNextTokenException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn wire_format_matches_aws_json_1_1() {
    let fake = CodePipelineFake::start().await;
    fake.set_pipeline(production());
    let http = reqwest::Client::new();
    let post = |target: &str| {
        http.post(format!("{}/", fake.endpoint()))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/codepipeline/aws4_request",
            )
            .body(format!(r#"{{"name":"{PIPELINE}"}}"#))
    };

    let ok = post("CodePipeline_20150709.GetPipelineState")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/x-amz-json-1.1");
    let body: serde_json::Value = ok.json().await.unwrap();
    // Timestamps are epoch seconds as JSON numbers, with milliseconds.
    assert_eq!(body["created"].as_f64(), Some(1_769_000_000.204));

    let unknown = post("CodePipeline_20150709.DeletePipelineEverything")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        unknown.headers()["x-amzn-errortype"],
        "UnknownOperationException"
    );
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");

    let unsigned = http
        .post(format!("{}/", fake.endpoint()))
        .header("x-amz-target", "CodePipeline_20150709.GetPipelineState")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        unsigned.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
}
