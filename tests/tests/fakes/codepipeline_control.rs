//! CodePipelineFake's state-changing operations (stop, start, approval) and throttling,
//! through aws-sdk-codepipeline.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_codepipeline::config::retry::RetryConfig;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::operation::put_approval_result::PutApprovalResultError;
use aws_sdk_codepipeline::operation::stop_pipeline_execution::StopPipelineExecutionError;
use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus, PipelineExecutionStatus};
use aws_sdk_codepipeline::Client;
use pipeline_responder_e2e::{CodePipelineFake, InjectedError};

use super::codepipeline::{production, PIPELINE, RUNNING};

/// A client that does not retry, so each call is exactly one request.
async fn single_attempt_client(fake: &CodePipelineFake) -> Client {
    let config = pipeline_responder_e2e::sdk_config(fake.endpoint()).await;
    let config = aws_sdk_codepipeline::config::Builder::from(&config)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn stop_start_and_approve_change_the_model() {
    let fake = CodePipelineFake::start().await;
    fake.set_pipeline(production());
    let client = fake.client().await;

    let stop = || {
        client
            .stop_pipeline_execution()
            .pipeline_name(PIPELINE)
            .pipeline_execution_id(RUNNING)
            .reason("stuck")
    };
    assert_eq!(
        stop().send().await.unwrap().pipeline_execution_id(),
        Some(RUNNING)
    );
    let err = stop().send().await.unwrap_err().into_service_error();
    assert!(
        matches!(
            err,
            StopPipelineExecutionError::DuplicatedStopRequestException(_)
        ),
        "{err:?}"
    );
    let stopped = fake.pipeline(PIPELINE).unwrap();
    assert_eq!(
        stopped
            .executions
            .iter()
            .find(|e| e.id == RUNNING)
            .unwrap()
            .status,
        "Stopping"
    );

    let started = client
        .start_pipeline_execution()
        .name(PIPELINE)
        .send()
        .await
        .unwrap();
    let new_id = started.pipeline_execution_id().unwrap();
    let latest = client
        .list_pipeline_executions()
        .pipeline_name(PIPELINE)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        latest.pipeline_execution_summaries()[0].pipeline_execution_id(),
        Some(new_id)
    );
    assert_eq!(
        latest.pipeline_execution_summaries()[0].status(),
        Some(&PipelineExecutionStatus::InProgress)
    );

    let approve = |token: &str| {
        client
            .put_approval_result()
            .pipeline_name(PIPELINE)
            .stage_name("Approve")
            .action_name("ApproveProduction")
            .token(token)
            .result(
                ApprovalResult::builder()
                    .summary("LGTM")
                    .status(ApprovalStatus::Approved)
                    .build()
                    .unwrap(),
            )
    };
    let err = approve("wrong-token")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            err,
            PutApprovalResultError::InvalidApprovalTokenException(_)
        ),
        "{err:?}"
    );
    let approved = approve("approval-token-1").send().await.unwrap();
    assert!(approved.approved_at().is_some());
    let err = approve("approval-token-1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            err,
            PutApprovalResultError::ApprovalAlreadyCompletedException(_)
        ),
        "{err:?}"
    );
    let action = fake
        .pipeline(PIPELINE)
        .unwrap()
        .action_mut("Approve", "ApproveProduction")
        .unwrap()
        .clone();
    let latest = action.latest.unwrap();
    assert_eq!(
        (latest.status.as_str(), latest.summary.as_deref()),
        ("Succeeded", Some("LGTM"))
    );
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_surfaces_when_retries_run_out() {
    let fake = CodePipelineFake::start().await;
    fake.set_pipeline(production());
    let throttled = InjectedError::new(400, "ThrottlingException", "Rate exceeded");

    // The SDK classifies ThrottlingException as retriable: two throttles, then success.
    fake.fail_next("GetPipelineState", 2, throttled);
    let config = pipeline_responder_e2e::sdk_config(fake.endpoint()).await;
    let retrying = aws_sdk_codepipeline::config::Builder::from(&config)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    Client::from_conf(retrying)
        .get_pipeline_state()
        .name(PIPELINE)
        .send()
        .await
        .unwrap();
    let statuses: Vec<_> = fake.calls().iter().map(|c| c.error.clone()).collect();
    assert_eq!(
        statuses,
        [
            Some("ThrottlingException".to_owned()),
            Some("ThrottlingException".to_owned()),
            None
        ]
    );

    // The TPS limit: back-to-back calls beyond 1 per second are throttled. A few tries, so a
    // slow machine (a call over a second) cannot make the test flaky.
    fake.set_tps_limit(Some(1));
    let client = single_attempt_client(&fake).await;
    let mut refused = None;
    for _ in 0..5 {
        if let Err(err) = client.get_pipeline_state().name(PIPELINE).send().await {
            refused = Some(err.into_service_error());
            break;
        }
    }
    let err = refused.expect("5 back-to-back calls stay under 1 per second");
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(err.message(), Some("Rate exceeded"));
}
