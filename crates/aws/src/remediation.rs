//! The runbook's write calls on CodePipeline: answer a manual approval, retry a failed stage,
//! stop an execution and start a new one. Only with `[remediation] enabled` (and, in the deploy
//! kit, `EnableRemediation=true`, which grants these actions on the watched pipelines only).

use crate::AwsError;
use aws_sdk_codepipeline::operation::RequestId;
use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus, StageRetryMode};

/// A manual approval that still waits, as `GetPipelineState` shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingApproval {
    /// The token `PutApprovalResult` must present (it changes with each new request).
    pub token: String,
    /// The execution the approval belongs to.
    pub execution_id: Option<String>,
}

/// What a successful call answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// AWS's request id (the audit trail's link to CloudTrail).
    pub request_id: Option<String>,
    /// The execution it started or retried, when it names one.
    pub execution_id: Option<String>,
}

/// The CodePipeline client for the actions.
#[derive(Debug, Clone)]
pub struct Remediation {
    codepipeline: aws_sdk_codepipeline::Client,
}

impl Remediation {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            codepipeline: crate::metrics::codepipeline(config),
        }
    }

    /// The approval `stage` › `action` of `pipeline` if it still waits: re-read before acting,
    /// so a superseded or expired approval is not answered.
    pub async fn pending_approval(
        &self,
        pipeline: &str,
        stage: &str,
        action: &str,
    ) -> Result<Option<PendingApproval>, AwsError> {
        let state = self
            .codepipeline
            .get_pipeline_state()
            .name(pipeline)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "GetPipelineState", e))?;
        for s in state
            .stage_states()
            .iter()
            .filter(|s| s.stage_name() == Some(stage))
        {
            for a in s
                .action_states()
                .iter()
                .filter(|a| a.action_name() == Some(action))
            {
                let Some(run) = a.latest_execution() else {
                    continue;
                };
                if run.status().map(|s| s.as_str()) != Some("InProgress") {
                    continue;
                }
                if let Some(token) = run.token() {
                    return Ok(Some(PendingApproval {
                        token: token.to_string(),
                        execution_id: s
                            .latest_execution()
                            .map(|l| l.pipeline_execution_id().to_string()),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// `PutApprovalResult`: Approved or Rejected with `summary`.
    pub async fn answer_approval(
        &self,
        pipeline: &str,
        stage: &str,
        action: &str,
        token: &str,
        approved: bool,
        summary: &str,
    ) -> Result<Done, AwsError> {
        let status = if approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        let result = ApprovalResult::builder()
            .status(status)
            .summary(summary)
            .build()
            .map_err(|e| invalid("PutApprovalResult", e))?;
        let out = self
            .codepipeline
            .put_approval_result()
            .pipeline_name(pipeline)
            .stage_name(stage)
            .action_name(action)
            .token(token)
            .result(result)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "PutApprovalResult", e))?;
        Ok(Done {
            request_id: out.request_id().map(String::from),
            execution_id: None,
        })
    }

    /// `RetryStageExecution` of the failed actions of `stage` in `execution_id`.
    pub async fn retry_stage(
        &self,
        pipeline: &str,
        stage: &str,
        execution_id: &str,
    ) -> Result<Done, AwsError> {
        let out = self
            .codepipeline
            .retry_stage_execution()
            .pipeline_name(pipeline)
            .stage_name(stage)
            .pipeline_execution_id(execution_id)
            .retry_mode(StageRetryMode::FailedActions)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "RetryStageExecution", e))?;
        Ok(Done {
            request_id: out.request_id().map(String::from),
            execution_id: out.pipeline_execution_id().map(String::from),
        })
    }

    /// `StopPipelineExecution` (in-progress actions finish; not abandoned).
    pub async fn stop(
        &self,
        pipeline: &str,
        execution_id: &str,
        reason: &str,
    ) -> Result<Done, AwsError> {
        let out = self
            .codepipeline
            .stop_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution_id)
            .abandon(false)
            .reason(reason)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "StopPipelineExecution", e))?;
        Ok(Done {
            request_id: out.request_id().map(String::from),
            execution_id: out.pipeline_execution_id().map(String::from),
        })
    }

    /// `StartPipelineExecution`, idempotent on `client_token` (a retried call starts one).
    pub async fn start(&self, pipeline: &str, client_token: &str) -> Result<Done, AwsError> {
        let out = self
            .codepipeline
            .start_pipeline_execution()
            .name(pipeline)
            .client_request_token(client_token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "StartPipelineExecution", e))?;
        Ok(Done {
            request_id: out.request_id().map(String::from),
            execution_id: out.pipeline_execution_id().map(String::from),
        })
    }
}

fn invalid(operation: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError {
        service: "codepipeline",
        operation,
        code: Some("ValidationException".into()),
        message: e.to_string(),
        retriable: false,
    }
}
