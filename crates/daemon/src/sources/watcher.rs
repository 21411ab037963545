//! The watcher: polls what events may have missed and turns it into the same events the rules
//! already understand, so a poll and an event about the same failure meet in one incident.
//!
//! Per environment and poll: `ListPipelineExecutions` (newest execution); `GetPipelineState`
//! only when that execution failed (and the failure is new to the store) or is running (failed
//! stage and action, waiting approvals); and, every [`ALARM_POLL_EVERY`] polls, `DescribeAlarms`
//! for alarms in ALARM, one call for all environments when their alarm prefixes share a common
//! prefix. Calls are paced under `max_requests_per_second`. An idle pipeline costs 1 call per
//! poll plus its share of the alarm call.

use crate::pipeline::ingest::{HandleError, Ingest};
use chrono::{DateTime, Duration, Utc};
use pipeline_responder_aws::diagnostics::{Diagnostics, ExecutionSummary};
use pipeline_responder_core::config::{Config, Environment};
use pipeline_responder_core::event::{
    ActionExecutionChange, ActionState, AlarmState, AlarmStateChange, Carrier, Event, EventKind,
    ExecutionInProgress, FailedAction, PipelineExecutionChange, PipelineState,
};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Alarms in ALARM are reconciled on the first poll (alarms already firing at start-up) and then
/// every this many polls: alarm state changes arrive as events, so this is the safety net for a
/// lost one (found within two intervals instead of one) at half the DescribeAlarms calls.
pub const ALARM_POLL_EVERY: u64 = 2;

/// Spaces AWS calls so that they stay under a rate (a token bucket of one).
#[derive(Debug)]
pub struct Pacer {
    gap: StdDuration,
    next: Instant,
}

impl Pacer {
    pub fn new(per_second: f64) -> Self {
        Self {
            gap: StdDuration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: Instant::now(),
        }
    }

    /// Waits until the next call may go.
    pub async fn ready(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        }
        self.next = self.next.max(now) + self.gap;
    }
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    pub calls: u32,
    pub events: u32,
    pub errors: u32,
}

/// Polls CodePipeline and CloudWatch.
#[derive(Debug, Clone)]
pub struct Watcher {
    pub config: Arc<Config>,
    pub aws: Diagnostics,
    pub ingest: Ingest,
}

impl Watcher {
    /// Polls every `interval_secs` (plus jitter) until `cancel`; the first poll runs at once so
    /// alarms already firing at start-up are seen.
    pub async fn run(self, cancel: CancellationToken) {
        let Some(settings) = self.config.sources.watcher.clone() else {
            return;
        };
        let mut pacer = Pacer::new(settings.max_requests_per_second);
        tracing::info!(interval_secs = settings.interval_secs, "Watcher started");
        let mut polls: u64 = 0;
        loop {
            let alarms = polls.is_multiple_of(ALARM_POLL_EVERY);
            polls += 1;
            let stats = self.poll_once(&mut pacer, Utc::now(), alarms).await;
            tracing::debug!(?stats, "Watcher poll done");
            let jitter = if settings.jitter_secs > 0 {
                rand::random_range(0..=settings.jitter_secs)
            } else {
                0
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(StdDuration::from_secs(settings.interval_secs + jitter)) => {}
            }
        }
        tracing::info!("Watcher stopped");
    }

    /// One poll of every environment; `alarms`: also reconcile alarms in ALARM.
    pub async fn poll_once(
        &self,
        pacer: &mut Pacer,
        now: DateTime<Utc>,
        alarms: bool,
    ) -> PollStats {
        let mut stats = PollStats::default();
        for env in &self.config.environments {
            self.poll_pipeline(env, pacer, now, &mut stats).await;
        }
        let prefixes = if alarms {
            alarm_prefixes(&self.config.environments)
        } else {
            Vec::new()
        };
        for prefix in prefixes {
            pacer.ready().await;
            stats.calls += 1;
            match self.aws.alarms_in_alarm(&prefix).await {
                Ok(alarms) => {
                    for alarm in alarms {
                        let at = alarm.since.unwrap_or(now);
                        let event = poll_event(
                            format!("poll:alarm:{}:{}", alarm.name, at.timestamp_millis()),
                            at,
                            EventKind::AlarmStateChange(AlarmStateChange {
                                alarm_name: alarm.name,
                                state: AlarmState::Alarm,
                                previous_state: None,
                                reason: alarm.reason,
                                reason_data: None,
                                state_timestamp: Some(at),
                            }),
                        );
                        self.submit(&event, now, &mut stats).await;
                    }
                }
                Err(e) => {
                    stats.errors += 1;
                    tracing::warn!(error = %e, alarm_prefix = %prefix, "Watcher DescribeAlarms failed");
                }
            }
        }
        stats
    }

    async fn poll_pipeline(
        &self,
        env: &Environment,
        pacer: &mut Pacer,
        now: DateTime<Utc>,
        stats: &mut PollStats,
    ) {
        pacer.ready().await;
        stats.calls += 1;
        let latest = match self.aws.latest_executions(&env.pipeline, 1).await {
            Ok(list) => list.into_iter().next(),
            Err(e) => {
                stats.errors += 1;
                tracing::warn!(error = %e, pipeline = %env.pipeline, "Watcher ListPipelineExecutions failed");
                return;
            }
        };
        let Some(execution) = latest else { return };
        let state = match execution.status.as_str() {
            "Failed" => PipelineState::Failed,
            "Succeeded" => PipelineState::Succeeded,
            "Stopped" => PipelineState::Stopped,
            "Superseded" => PipelineState::Superseded,
            "Cancelled" => PipelineState::Canceled,
            "InProgress" => {
                self.in_progress(env, &execution, pacer, now, stats).await;
                return;
            }
            _ => return,
        };
        let at = execution
            .last_update_time
            .or(execution.start_time)
            .unwrap_or(now);
        let id = format!(
            "poll:{}:{}:{}",
            env.pipeline, execution.id, execution.status
        );
        // The same finished execution seen by an earlier poll: nothing new, no further call.
        let seen = poll_event(
            id.clone(),
            at,
            EventKind::PipelineExecution(pipeline_change(env, &execution, state)),
        );
        if self.ingest.is_processed(&seen).await {
            return;
        }
        let mut change = pipeline_change(env, &execution, state);
        if state == PipelineState::Failed {
            pacer.ready().await;
            stats.calls += 1;
            match self
                .aws
                .pipeline_state(&env.pipeline, Some(&execution.id))
                .await
            {
                Ok(facts) => {
                    change.failed_stage = facts.failed_stage;
                    if let Some(action) = facts.failed_action {
                        change.failed_actions.push(FailedAction {
                            action,
                            additional_information: facts.error_message.or(facts.summary),
                        });
                    }
                }
                Err(e) => {
                    stats.errors += 1;
                    tracing::warn!(error = %e, pipeline = %env.pipeline, "Watcher GetPipelineState failed");
                }
            }
        }
        let event = poll_event(id, at, EventKind::PipelineExecution(change));
        self.submit(&event, now, stats).await;
    }

    /// A running execution: too long (Incident 3)? A manual approval waiting (Task 2)?
    async fn in_progress(
        &self,
        env: &Environment,
        execution: &ExecutionSummary,
        pacer: &mut Pacer,
        now: DateTime<Utc>,
        stats: &mut PollStats,
    ) {
        let started = execution.start_time.unwrap_or(now);
        let limit = Duration::seconds(self.config.thresholds.deployment_duration_secs as i64);
        if now - started > limit {
            let event = poll_event(
                format!("poll:{}:{}:running-long", env.pipeline, execution.id),
                now,
                EventKind::ExecutionInProgress(ExecutionInProgress {
                    pipeline: env.pipeline.clone(),
                    execution_id: execution.id.clone(),
                    start_time: started,
                    stage: None,
                }),
            );
            self.submit(&event, now, stats).await;
        }
        pacer.ready().await;
        stats.calls += 1;
        match self.aws.pipeline_state(&env.pipeline, None).await {
            Ok(facts) => {
                for (stage, action, execution_id) in facts.waiting_approvals {
                    let event = poll_event(
                        format!(
                            "poll:{}:{execution_id}:{stage}:{action}:approval",
                            env.pipeline
                        ),
                        now,
                        EventKind::ActionExecution(ActionExecutionChange {
                            pipeline: env.pipeline.clone(),
                            execution_id,
                            stage,
                            action,
                            action_execution_id: None,
                            state: ActionState::Started,
                            category: Some("Approval".into()),
                            provider: Some("Manual".into()),
                            start_time: None,
                            result: None,
                        }),
                    );
                    self.submit(&event, now, stats).await;
                }
            }
            Err(e) => {
                stats.errors += 1;
                tracing::warn!(error = %e, pipeline = %env.pipeline, "Watcher GetPipelineState failed");
            }
        }
    }

    async fn submit(&self, event: &Event, now: DateTime<Utc>, stats: &mut PollStats) {
        stats.events += 1;
        match self.ingest.handle_event("watcher", event, now).await {
            Ok(_) => {}
            Err(HandleError::Store(e)) => {
                tracing::error!(error = %e, event_id = %event.id, "Watcher event not stored; the next poll retries")
            }
            Err(HandleError::Rejected(e)) => {
                tracing::warn!(error = %e, event_id = %event.id, "Watcher event rejected")
            }
        }
    }
}

fn pipeline_change(
    env: &Environment,
    execution: &ExecutionSummary,
    state: PipelineState,
) -> PipelineExecutionChange {
    PipelineExecutionChange {
        pipeline: env.pipeline.clone(),
        execution_id: execution.id.clone(),
        state,
        start_time: execution.start_time,
        trigger_type: None,
        trigger_detail: None,
        stop_comments: None,
        failed_stage: None,
        failed_actions: Vec::new(),
    }
}

fn poll_event(id: String, time: DateTime<Utc>, kind: EventKind) -> Event {
    Event {
        id,
        time,
        region: None,
        account: None,
        carrier: Carrier::Poll,
        kind,
    }
}

/// The alarm prefixes to query: one shared prefix when the environments' prefixes have a common
/// start of at least 4 characters (one call covers them all), else one per environment.
pub fn alarm_prefixes(envs: &[Environment]) -> Vec<String> {
    let prefixes: Vec<&str> = envs.iter().map(|e| e.alarm_prefix.as_str()).collect();
    let Some(first) = prefixes.first() else {
        return Vec::new();
    };
    let common_len = prefixes.iter().skip(1).fold(first.len(), |len, p| {
        first
            .char_indices()
            .zip(p.chars())
            .take_while(|((_, a), b)| a == b)
            .map(|((i, a), _)| i + a.len_utf8())
            .last()
            .unwrap_or(0)
            .min(len)
    });
    if common_len >= 4 {
        vec![first[..common_len].to_string()]
    } else {
        let mut all: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pipeline_responder_core::config::load_str;

    fn envs(names: &[(&str, &str)]) -> Vec<Environment> {
        let mut text =
            String::from("[aws]\naccount_id = \"123456789012\"\n[sources.sqs]\nenabled = false\n");
        for (name, prefix) in names {
            text.push_str(&format!(
                "[[environments]]\nname = \"{name}\"\nalarm_prefix = \"{prefix}\"\n"
            ));
        }
        load_str(&text, &|_| None).unwrap().environments
    }

    #[test]
    fn one_alarm_call_covers_environments_with_a_common_prefix() {
        let e = envs(&[
            ("test", "kiro-pipeline-test"),
            ("staging", "kiro-pipeline-staging"),
            ("production", "kiro-pipeline-production"),
        ]);
        assert_eq!(alarm_prefixes(&e), vec!["kiro-pipeline-"]);
        let e = envs(&[("a", "alpha-app"), ("b", "beta-app")]);
        assert_eq!(alarm_prefixes(&e), vec!["alpha-app", "beta-app"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_keeps_calls_under_the_rate() {
        let mut pacer = Pacer::new(2.0);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.ready().await;
        }
        // Five calls at 2/s: the first at once, then every 500 ms.
        assert_eq!(start.elapsed(), StdDuration::from_millis(2000));
    }
}
