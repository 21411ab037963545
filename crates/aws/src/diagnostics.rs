//! The runbook's "acknowledge"/"investigate" commands as API calls: `GetPipelineState`,
//! `ListActionExecutions`, `GetPipelineExecution`, `FilterLogEvents`, a `Query` on the
//! deployments table's `EnvironmentStatusIndex`, and `DescribeAlarms`. Each returns plain facts;
//! what they mean for the incident is decided elsewhere.

use crate::AwsError;
use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The failed (or current) stage and action of a pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineStateFacts {
    /// Every stage with the status of its latest execution, in pipeline order.
    pub stages: Vec<(String, String)>,
    pub failed_stage: Option<String>,
    pub failed_action: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub summary: Option<String>,
    pub external_url: Option<String>,
    pub external_id: Option<String>,
    /// The execution the state describes.
    pub execution_id: Option<String>,
    /// Manual approvals waiting for a decision: (stage, action, pipeline execution id).
    pub waiting_approvals: Vec<(String, String, String)>,
}

/// One execution from `ListPipelineExecutions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSummary {
    pub id: String,
    /// `PipelineExecutionStatus` (`InProgress`, `Failed`, `Succeeded`, ...).
    pub status: String,
    pub start_time: Option<DateTime<Utc>>,
    pub last_update_time: Option<DateTime<Utc>>,
}

/// The commit behind an execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionFacts {
    pub status: Option<String>,
    pub revision_id: Option<String>,
    pub revision_summary: Option<String>,
    pub revision_url: Option<String>,
}

/// How long each stage of an execution has taken (runbook Incident 3 step 2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageDurations {
    /// (stage, seconds, still running), in the order the stages started.
    pub stages: Vec<(String, i64, bool)>,
    /// An action still running with no status change for longer than the stuck threshold.
    pub stuck_action: Option<(String, String, i64)>,
}

/// A deployment record of the runbook's deployments table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentRecord {
    pub deployment_id: String,
    pub status: String,
    pub version: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub commit_message: Option<String>,
    pub commit_author: Option<String>,
    pub pipeline_execution_id: Option<String>,
    pub rollback_reason: Option<String>,
    pub coverage_percentage: Option<f64>,
}

/// The CodeBuild runs behind a failed action: its own log stream, and the most recent green run of
/// the same action to compare with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildRuns {
    /// Stage and action of the failed run.
    pub stage: Option<String>,
    pub action: Option<String>,
    /// CloudWatch Logs stream of the failed build (the id after `project:` of its CodeBuild
    /// build id), when ListActionExecutions names it.
    pub failed_stream: Option<String>,
    /// The most recent succeeded run of the same stage and action, older than the failed one.
    pub green: Option<GreenBuild>,
}

/// A succeeded CodeBuild run of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct GreenBuild {
    /// CodeBuild build id (`project:uuid`).
    pub build_id: String,
    pub stream: String,
    pub pipeline_execution_id: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// The log stream of a CodeBuild build id (`project:uuid` → `uuid`).
pub fn build_stream(build_id: &str) -> &str {
    build_id.rsplit(':').next().unwrap_or(build_id)
}

/// An alarm in ALARM.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmFacts {
    pub name: String,
    pub reason: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// Clients for the diagnostics.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    codepipeline: aws_sdk_codepipeline::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

/// Most log events read for one excerpt (the build's own stream first).
const MAX_LOG_EVENTS: usize = 5_000;
/// Most `FilterLogEvents` pages read for one log.
const MAX_LOG_PAGES: usize = 50;
/// Most deployment records read to find the latest (the index orders by status, not time).
const MAX_DEPLOYMENT_RECORDS: usize = 1_000;

impl Diagnostics {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            codepipeline: crate::metrics::codepipeline(config),
            logs: crate::metrics::logs(config),
            dynamodb: crate::metrics::dynamodb(config),
            cloudwatch: crate::metrics::cloudwatch(config),
        }
    }

    /// Runbook Incident 1 step 1: which stage and action failed, with the error and its link.
    /// When the pipeline's latest execution is another one, the action's own execution record is
    /// looked up with `ListActionExecutions`.
    pub async fn pipeline_state(
        &self,
        pipeline: &str,
        execution_id: Option<&str>,
    ) -> Result<PipelineStateFacts, AwsError> {
        let state = self
            .codepipeline
            .get_pipeline_state()
            .name(pipeline)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "GetPipelineState", e))?;
        let mut facts = PipelineStateFacts::default();
        for stage in state.stage_states() {
            let name = stage.stage_name().unwrap_or_default().to_string();
            let latest = stage.latest_execution();
            for action in stage.action_states() {
                let Some(run) = action.latest_execution() else {
                    continue;
                };
                if run.status().map(|s| s.as_str()) == Some("InProgress") && run.token().is_some() {
                    facts.waiting_approvals.push((
                        name.clone(),
                        action.action_name().unwrap_or_default().to_string(),
                        latest
                            .map(|l| l.pipeline_execution_id().to_string())
                            .unwrap_or_default(),
                    ));
                }
            }
            let status = latest
                .map(|l| l.status().as_str().to_string())
                .unwrap_or_default();
            let this_execution = match (execution_id, latest) {
                (Some(id), Some(l)) => l.pipeline_execution_id() == id,
                _ => true,
            };
            if status == "Failed" && this_execution && facts.failed_stage.is_none() {
                facts.failed_stage = Some(name.clone());
                facts.execution_id = latest.map(|l| l.pipeline_execution_id().to_string());
                for action in stage.action_states() {
                    let Some(run) = action.latest_execution() else {
                        continue;
                    };
                    if run.status().map(|s| s.as_str()) == Some("Failed") {
                        facts.failed_action = action.action_name().map(String::from);
                        facts.summary = run.summary().map(String::from);
                        facts.external_url = run.external_execution_url().map(String::from);
                        facts.external_id = run.external_execution_id().map(String::from);
                        if let Some(err) = run.error_details() {
                            facts.error_code = err.code().map(String::from);
                            facts.error_message = err.message().map(String::from);
                        }
                        break;
                    }
                }
            }
            facts.stages.push((name, status));
        }
        if facts.failed_stage.is_none() {
            if let Some(id) = execution_id {
                self.failed_action_of(pipeline, id, &mut facts).await?;
            }
        }
        Ok(facts)
    }

    /// `ListActionExecutions` for one execution: the failed action, when the pipeline state has
    /// moved on to a newer execution.
    async fn failed_action_of(
        &self,
        pipeline: &str,
        execution_id: &str,
        facts: &mut PipelineStateFacts,
    ) -> Result<(), AwsError> {
        let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
            .pipeline_execution_id(execution_id)
            .build();
        let mut pages = self
            .codepipeline
            .list_action_executions()
            .pipeline_name(pipeline)
            .filter(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("codepipeline", "ListActionExecutions", e))?;
            for detail in page.action_execution_details() {
                if detail.status().map(|s| s.as_str()) != Some("Failed") {
                    continue;
                }
                facts.failed_stage = detail.stage_name().map(String::from);
                facts.failed_action = detail.action_name().map(String::from);
                facts.execution_id = Some(execution_id.to_string());
                if let Some(result) = detail.output().and_then(|o| o.execution_result()) {
                    facts.summary = result.external_execution_summary().map(String::from);
                    facts.external_url = result.external_execution_url().map(String::from);
                    facts.external_id = result.external_execution_id().map(String::from);
                    if let Some(err) = result.error_details() {
                        facts.error_code = err.code().map(String::from);
                        facts.error_message = err.message().map(String::from);
                    }
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// The failed CodeBuild run of `execution_id` (optionally of `stage` › `action`) and the most
    /// recent green run of the same action, from `ListActionExecutions` over the whole pipeline,
    /// newest first, reading at most `max_pages` pages of 100.
    pub async fn build_runs(
        &self,
        pipeline: &str,
        execution_id: &str,
        stage: Option<&str>,
        action: Option<&str>,
        max_pages: usize,
    ) -> Result<BuildRuns, AwsError> {
        let mut pages = self
            .codepipeline
            .list_action_executions()
            .pipeline_name(pipeline)
            .max_results(100)
            .into_paginator()
            .send();
        let millis = |t: Option<&aws_sdk_codepipeline::primitives::DateTime>| {
            t.and_then(|t| t.to_millis().ok())
                .and_then(DateTime::from_timestamp_millis)
        };
        let mut runs = BuildRuns::default();
        let mut read = 0;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("codepipeline", "ListActionExecutions", e))?;
            for d in page.action_execution_details() {
                let status = d.status().map(|s| s.as_str());
                let external = d
                    .output()
                    .and_then(|o| o.execution_result())
                    .and_then(|r| r.external_execution_id());
                let same_action = |s: &Option<String>, a: &Option<String>| {
                    d.stage_name() == s.as_deref() && d.action_name() == a.as_deref()
                };
                if runs.stage.is_none() {
                    let wanted = d.pipeline_execution_id() == Some(execution_id)
                        && status == Some("Failed")
                        && stage.is_none_or(|s| d.stage_name() == Some(s))
                        && action.is_none_or(|a| d.action_name() == Some(a));
                    if wanted {
                        runs.stage = d.stage_name().map(String::from);
                        runs.action = d.action_name().map(String::from);
                        runs.failed_stream = external.map(|id| build_stream(id).to_string());
                    }
                    continue;
                }
                if status == Some("Succeeded") && same_action(&runs.stage, &runs.action) {
                    if let Some(id) = external {
                        runs.green = Some(GreenBuild {
                            build_id: id.to_string(),
                            stream: build_stream(id).to_string(),
                            pipeline_execution_id: d
                                .pipeline_execution_id()
                                .unwrap_or_default()
                                .to_string(),
                            start: millis(d.start_time()),
                            end: millis(d.last_update_time()),
                        });
                        return Ok(runs);
                    }
                }
            }
            read += 1;
            if read >= max_pages {
                break;
            }
        }
        Ok(runs)
    }

    /// The newest `n` executions of a pipeline (`ListPipelineExecutions`), newest first.
    pub async fn latest_executions(
        &self,
        pipeline: &str,
        n: i32,
    ) -> Result<Vec<ExecutionSummary>, AwsError> {
        let output = self
            .codepipeline
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .max_results(n.clamp(1, 100))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "ListPipelineExecutions", e))?;
        Ok(output
            .pipeline_execution_summaries()
            .iter()
            .map(execution_summary)
            .collect())
    }

    /// Executions that started at or after `since` (newest first), paging through
    /// `ListPipelineExecutions` until older ones appear; at most `max`. Executions still running
    /// that started before `since` are included when they are on the pages read.
    pub async fn executions_since(
        &self,
        pipeline: &str,
        since: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<ExecutionSummary>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .codepipeline
                .list_pipeline_executions()
                .pipeline_name(pipeline)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("codepipeline", "ListPipelineExecutions", e))?;
            let mut older = false;
            for e in output.pipeline_execution_summaries() {
                let summary = execution_summary(e);
                if summary.start_time.is_some_and(|t| t < since) {
                    older = true;
                }
                out.push(summary);
            }
            token = output.next_token().map(String::from);
            if older || token.is_none() || out.len() >= max {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }

    /// Per-stage durations of one execution from its action executions; an action still
    /// `InProgress` whose last change is older than `stuck_after_secs` is reported as stuck.
    pub async fn stage_durations(
        &self,
        pipeline: &str,
        execution_id: &str,
        now: DateTime<Utc>,
        stuck_after_secs: i64,
    ) -> Result<StageDurations, AwsError> {
        let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
            .pipeline_execution_id(execution_id)
            .build();
        let mut pages = self
            .codepipeline
            .list_action_executions()
            .pipeline_name(pipeline)
            .filter(filter)
            .into_paginator()
            .send();
        let millis = |t: Option<&aws_sdk_codepipeline::primitives::DateTime>| {
            t.and_then(|t| t.to_millis().ok())
        };
        // stage -> (first start, last update, running)
        let mut stages: Vec<(String, i64, i64, bool)> = Vec::new();
        let mut out = StageDurations::default();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("codepipeline", "ListActionExecutions", e))?;
            for d in page.action_execution_details() {
                let stage = d.stage_name().unwrap_or_default().to_string();
                let start = millis(d.start_time()).unwrap_or(now.timestamp_millis());
                let running = d.status().map(|s| s.as_str()) == Some("InProgress");
                let update = if running {
                    now.timestamp_millis()
                } else {
                    millis(d.last_update_time()).unwrap_or(start)
                };
                if running {
                    let idle = (now.timestamp_millis()
                        - millis(d.last_update_time()).unwrap_or(start))
                        / 1000;
                    if idle > stuck_after_secs && out.stuck_action.is_none() {
                        out.stuck_action = Some((
                            stage.clone(),
                            d.action_name().unwrap_or_default().to_string(),
                            idle,
                        ));
                    }
                }
                match stages.iter_mut().find(|s| s.0 == stage) {
                    Some(s) => {
                        s.1 = s.1.min(start);
                        s.2 = s.2.max(update);
                        s.3 |= running;
                    }
                    None => stages.push((stage, start, update, running)),
                }
            }
        }
        stages.sort_by_key(|s| s.1);
        out.stages = stages
            .into_iter()
            .map(|(name, start, end, running)| (name, (end - start).max(0) / 1000, running))
            .collect();
        Ok(out)
    }

    /// `GetPipelineExecution`: the commit that triggered the execution.
    pub async fn execution(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<ExecutionFacts, AwsError> {
        let output = self
            .codepipeline
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("codepipeline", "GetPipelineExecution", e))?;
        let Some(execution) = output.pipeline_execution() else {
            return Ok(ExecutionFacts::default());
        };
        let revision = execution.artifact_revisions().first();
        Ok(ExecutionFacts {
            status: execution.status().map(|s| s.as_str().to_string()),
            revision_id: revision.and_then(|r| r.revision_id()).map(String::from),
            revision_summary: revision
                .and_then(|r| r.revision_summary())
                .map(String::from),
            revision_url: revision.and_then(|r| r.revision_url()).map(String::from),
        })
    }

    /// Log lines of `group` (only `stream` when known) between `start` and `end`, oldest first:
    /// the last [`MAX_LOG_EVENTS`] events (a build explains its failure at the end), read from at
    /// most [`MAX_LOG_PAGES`] pages. Matching is done by the caller so that the excerpt can keep
    /// context lines and does not depend on the service's filter-pattern dialect.
    pub async fn log_lines(
        &self,
        group: &str,
        stream: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<String>, AwsError> {
        let mut request = self
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(start.timestamp_millis())
            .end_time(end.timestamp_millis());
        if let Some(stream) = stream {
            request = request.log_stream_names(stream);
        }
        let mut pages = request.into_paginator().send();
        let mut events: Vec<(i64, String)> = Vec::new();
        let mut read = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("logs", "FilterLogEvents", e))?;
            for event in page.events() {
                events.push((
                    event.timestamp().unwrap_or_default(),
                    event.message().unwrap_or_default().to_string(),
                ));
            }
            if events.len() >= 2 * MAX_LOG_EVENTS {
                events.sort_by_key(|(t, _)| *t);
                events.drain(..events.len() - MAX_LOG_EVENTS);
            }
            read += 1;
            if read >= MAX_LOG_PAGES {
                break;
            }
        }
        events.sort_by_key(|(t, _)| *t);
        let skip = events.len().saturating_sub(MAX_LOG_EVENTS);
        Ok(events
            .into_iter()
            .skip(skip)
            .flat_map(|(_, m)| m.lines().map(String::from).collect::<Vec<_>>())
            .collect())
    }

    /// Runbook Incident 2 step 2: the environment's latest deployment record. The index's sort
    /// key is `status`, so "latest" is decided by `startTime`, never by index order.
    pub async fn latest_deployment(
        &self,
        table: &str,
        environment: &str,
    ) -> Result<Option<DeploymentRecord>, AwsError> {
        Ok(self
            .deployments(table, environment)
            .await?
            .into_iter()
            .next())
    }

    /// The environment's deployment records (runbook "Review recent deployments"), newest
    /// first by `startTime`; at most the first 1,000 the index returns.
    pub async fn deployments(
        &self,
        table: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentRecord>, AwsError> {
        let mut pages = self
            .dynamodb
            .query()
            .table_name(table)
            .index_name("EnvironmentStatusIndex")
            .key_condition_expression("#env = :env")
            .expression_attribute_names("#env", "environment")
            .expression_attribute_values(":env", AttributeValue::S(environment.to_string()))
            .into_paginator()
            .send();
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("dynamodb", "Query", e))?;
            records.extend(page.items().iter().map(deployment_record));
            if records.len() >= MAX_DEPLOYMENT_RECORDS {
                break;
            }
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        Ok(records)
    }

    /// Runbook "Check alarms": alarms in ALARM whose name starts with `prefix`.
    pub async fn alarms_in_alarm(&self, prefix: &str) -> Result<Vec<AlarmFacts>, AwsError> {
        let mut pages = self
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .state_value(StateValue::Alarm)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("cloudwatch", "DescribeAlarms", e))?;
            for alarm in page.metric_alarms() {
                out.push(AlarmFacts {
                    name: alarm.alarm_name().unwrap_or_default().to_string(),
                    reason: alarm.state_reason().map(String::from),
                    since: alarm
                        .state_updated_timestamp()
                        .and_then(|t| DateTime::from_timestamp_millis(t.to_millis().ok()?)),
                });
            }
        }
        Ok(out)
    }
}

fn execution_summary(
    e: &aws_sdk_codepipeline::types::PipelineExecutionSummary,
) -> ExecutionSummary {
    let time = |t: Option<&aws_sdk_codepipeline::primitives::DateTime>| {
        t.and_then(|t| t.to_millis().ok())
            .and_then(DateTime::from_timestamp_millis)
    };
    ExecutionSummary {
        id: e.pipeline_execution_id().unwrap_or_default().to_string(),
        status: e
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        start_time: time(e.start_time()),
        last_update_time: time(e.last_update_time()),
    }
}

fn string(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    match item.get(key)? {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.clone()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(item: &HashMap<String, AttributeValue>, key: &str) -> Option<f64> {
    string(item, key)?.parse().ok()
}

fn deployment_record(item: &HashMap<String, AttributeValue>) -> DeploymentRecord {
    DeploymentRecord {
        deployment_id: string(item, "deploymentId").unwrap_or_default(),
        status: string(item, "status").unwrap_or_default(),
        version: string(item, "version"),
        start_time: number(item, "startTime").map(|v| v as i64),
        end_time: number(item, "endTime").map(|v| v as i64),
        commit_message: string(item, "commitMessage"),
        commit_author: string(item, "commitAuthor"),
        pipeline_execution_id: string(item, "pipelineExecutionId"),
        rollback_reason: string(item, "rollbackReason"),
        coverage_percentage: number(item, "coveragePercentage"),
    }
}
