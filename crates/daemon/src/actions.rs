//! The runbook's hands: an operator's action (approve, reject, retry the failed stage,
//! stop-and-restart, start) from a Slack button, the API or the CLI, through one path: the
//! guards of `pipeline_responder_core::actions`, the ones that need AWS or the store (the
//! approval is still waiting with the same token, the restart quota, the claims that make one
//! click act once across replicas and restarts), the CodePipeline call, and the audit (the
//! timeline, a post in the thread, `actions_total`).

use crate::notify::slack::Slack;
use crate::store::{Closing, Store};
use chrono::{DateTime, Utc};
use pipeline_responder_aws::remediation::{Done, Remediation};
use pipeline_responder_core::actions::{self, ActionKind, ActionOutcome, ActionRecord};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::record::Incident;
use pipeline_responder_core::rules;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Claims last this long: a replayed click is still recognised a day later, and a restart
/// quota slot is held for the 24 h it counts.
const CLAIM_DAYS: u32 = 1;
/// `PutApprovalResult`'s summary is at most 512 characters.
const SUMMARY_CHARS: usize = 512;

/// One request to act.
#[derive(Debug, Clone)]
pub struct Request {
    pub key: String,
    pub action: ActionKind,
    /// Who asks: a Slack user id, or the name an API or CLI caller gives.
    pub by: String,
    /// Why (required to reject).
    pub reason: Option<String>,
    /// The Slack interaction (`trigger_id`): a retried delivery of it acts once.
    pub interaction: Option<String>,
    /// `by` is a Slack user id, so the user groups on the lists may be asked about it.
    pub slack_user: bool,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Recorded in the timeline with this outcome; the text tells the person who asked.
    Recorded(ActionOutcome, String),
    /// The same click was already taken (a replay, a double click, another replica): nothing
    /// was done again.
    Duplicate,
    NotFound,
}

/// What the actions need.
#[derive(Clone)]
pub struct Actions {
    pub config: Arc<Config>,
    pub store: Store,
    pub wakeups: crate::wakeups::Wakeups,
    pub codepipeline: Remediation,
    /// For user-group membership (`usergroups.users.list`).
    pub slack: Option<Slack>,
}

impl Actions {
    /// Decides and does `request`, once.
    pub async fn perform(&self, request: Request) -> crate::store::Result<Answer> {
        let now = Utc::now();
        if let Some(id) = &request.interaction {
            let claim = format!("interaction/{}", hashed(id));
            if !self.store.claim_once(&claim, now, CLAIM_DAYS).await? {
                return Ok(self.duplicate(request.action));
            }
        }
        let Some((incident, _)) = self.store.incident(&request.key).await? else {
            return Ok(Answer::NotFound);
        };
        let member = self.member(&incident, &request).await;
        let action = request.action;
        if let Err(reason) = actions::check(&self.config, &incident, action, &request.by, member) {
            return self
                .record(&incident, &request, ActionOutcome::Refused, reason)
                .await;
        }
        let reason = request.reason.as_deref().map(str::trim).unwrap_or_default();
        if action == ActionKind::Reject && reason.is_empty() {
            let why = "a reason is required to reject (it is the approval's summary)".to_string();
            return self
                .record(&incident, &request, ActionOutcome::Refused, why)
                .await;
        }
        let token = if action.is_approval() {
            match self.current_token(&incident).await {
                Ok(token) => Some(token),
                Err((outcome, why)) => return self.record(&incident, &request, outcome, why).await,
            }
        } else {
            None
        };
        let claim = actions::claim_key(&incident, action, &request.by, token.as_deref());
        if !self.store.claim_once(&claim, now, CLAIM_DAYS).await? {
            return Ok(self.duplicate(action));
        }
        match action {
            ActionKind::Approve | ActionKind::Reject => {
                self.answer_approval(incident, &request, token.unwrap_or_default(), now)
                    .await
            }
            ActionKind::Retry => {
                let (stage, execution) = (
                    incident.stage.clone().unwrap_or_default(),
                    incident.execution_id.clone().unwrap_or_default(),
                );
                let result = self
                    .codepipeline
                    .retry_stage(&incident.pipeline, &stage, &execution)
                    .await;
                self.settle(&incident, &request, result.map(|d| said(&d, "retried")))
                    .await
            }
            ActionKind::Start => {
                let result = self
                    .codepipeline
                    .start(&incident.pipeline, &hashed(&claim))
                    .await;
                self.settle(&incident, &request, result.map(|d| said(&d, "started")))
                    .await
            }
            ActionKind::Restart => self.restart(&incident, &request, &claim, now).await,
        }
    }

    /// Whether `by` is on the environment's list for the action: by id or name, or (for a Slack
    /// user) as a member of a user group on it. A failed group lookup counts as "no".
    async fn member(&self, incident: &Incident, request: &Request) -> bool {
        let Some(env) = self.config.environment(&incident.environment) else {
            return false;
        };
        let list = actions::who_may(env, request.action);
        if actions::allowed(list, &request.by, &[]) {
            return true;
        }
        let (true, Some(slack)) = (request.slack_user, &self.slack) else {
            return false;
        };
        for group in list.iter().filter(|e| e.starts_with('S')) {
            match slack.usergroup_members(group).await {
                Ok(users) if users.contains(&request.by) => return true,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(group = %group, error = %e.message, "Slack user group lookup failed; not counted as a member");
                }
            }
        }
        false
    }

    /// The approval's token, re-read now: it must still wait, for the incident's execution.
    async fn current_token(&self, incident: &Incident) -> Result<String, (ActionOutcome, String)> {
        let (stage, action) = (
            incident.stage.as_deref().unwrap_or_default(),
            incident.action.as_deref().unwrap_or_default(),
        );
        let pending = self
            .codepipeline
            .pending_approval(&incident.pipeline, stage, action)
            .await
            .map_err(|e| (ActionOutcome::Failed, e.to_string()))?;
        let stale = |why: String| (ActionOutcome::Refused, why);
        let Some(pending) = pending else {
            return Err(stale(format!(
                "{stage}/{action} is no longer waiting for approval (answered, superseded or expired); nothing was sent"
            )));
        };
        match (&pending.execution_id, &incident.execution_id) {
            (Some(now_waiting), Some(ours)) if now_waiting != ours => Err(stale(format!(
                "superseded: the approval now waiting belongs to execution {now_waiting}, not {ours}; nothing was sent"
            ))),
            _ => Ok(pending.token),
        }
    }

    /// Approve (once enough distinct approvers have) or reject.
    async fn answer_approval(
        &self,
        incident: Incident,
        request: &Request,
        token: String,
        now: DateTime<Utc>,
    ) -> crate::store::Result<Answer> {
        let approved = request.action == ActionKind::Approve;
        let mut incident = incident;
        if approved {
            let required = self
                .config
                .environment(&incident.environment)
                .map_or(1, |e| e.guards.approvals_required) as usize;
            let mut approvers = actions::approvals(&incident);
            approvers.push(request.by.clone());
            if approvers.len() < required {
                let note = format!(
                    "{} of {required} approvals; another approver is needed",
                    approvers.len()
                );
                let vote = self
                    .record(&incident, request, ActionOutcome::Vote, note)
                    .await?;
                // A second approver may have voted meanwhile: read again, answer if enough.
                match self.store.incident(&incident.key).await? {
                    Some((now_read, _)) if actions::approvals(&now_read).len() >= required => {
                        incident = now_read;
                    }
                    _ => return Ok(vote),
                }
            }
        }
        if !self
            .store
            .claim_once(&actions::answer_key(&incident, &token), now, CLAIM_DAYS)
            .await?
        {
            return Ok(self.duplicate(request.action));
        }
        let mut approvers = actions::approvals(&incident);
        if approved && !approvers.contains(&request.by) {
            approvers.push(request.by.clone());
        }
        let reason = request.reason.as_deref().map(str::trim).unwrap_or_default();
        let summary = if approved {
            format!(
                "Approved by {} via pipeline-responder",
                approvers.join(", ")
            )
        } else {
            format!(
                "Rejected by {} via pipeline-responder: {reason}",
                request.by
            )
        };
        let summary: String = summary.chars().take(SUMMARY_CHARS).collect();
        let (stage, action) = (
            incident.stage.clone().unwrap_or_default(),
            incident.action.clone().unwrap_or_default(),
        );
        let result = self
            .codepipeline
            .answer_approval(
                &incident.pipeline,
                &stage,
                &action,
                &token,
                approved,
                &summary,
            )
            .await
            .map(|d| {
                let what = if approved {
                    format!("approvers {}", approvers.join(", "))
                } else {
                    reason.to_string()
                };
                format!(
                    "{what} (request {})",
                    d.request_id.as_deref().unwrap_or("?")
                )
            });
        self.settle(&incident, request, result).await
    }

    /// Stop the stuck execution and start a new one, within the pipeline's daily quota.
    async fn restart(
        &self,
        incident: &Incident,
        request: &Request,
        claim: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<Answer> {
        let max = self.config.remediation.max_per_pipeline_per_day;
        let mut slot = false;
        for i in 0..max {
            let key = format!("restart-quota/{}/{i}", incident.pipeline);
            if self.store.claim_once(&key, now, CLAIM_DAYS).await? {
                slot = true;
                break;
            }
        }
        if !slot {
            let why = format!(
                "{} has had {max} stop-and-restart(s) in the last 24 h, the most [remediation] max_per_pipeline_per_day allows",
                incident.pipeline
            );
            return self
                .record(incident, request, ActionOutcome::Refused, why)
                .await;
        }
        let execution = incident.execution_id.clone().unwrap_or_default();
        let reason: String = format!(
            "Stuck; stopped by {} via pipeline-responder{}",
            request.by,
            request
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )
        .chars()
        .take(200)
        .collect();
        let stopped = match self
            .codepipeline
            .stop(&incident.pipeline, &execution, &reason)
            .await
        {
            Ok(done) => done,
            Err(e) => {
                let why = e.to_string();
                return self
                    .record(incident, request, ActionOutcome::Failed, why)
                    .await;
            }
        };
        let started = self
            .codepipeline
            .start(&incident.pipeline, &hashed(claim))
            .await;
        let result = started
            .map(|d| format!("{}; {}", said(&stopped, "stopped"), said(&d, "started")))
            .map_err(|e| format!("{}, then {e}", said(&stopped, "stopped")));
        self.settle(incident, request, result).await
    }

    /// Records the AWS call's outcome.
    async fn settle(
        &self,
        incident: &Incident,
        request: &Request,
        result: Result<String, impl std::fmt::Display>,
    ) -> crate::store::Result<Answer> {
        match result {
            Ok(detail) => {
                self.record(incident, request, ActionOutcome::Done, detail)
                    .await
            }
            Err(e) => {
                let why = e.to_string();
                self.record(incident, request, ActionOutcome::Failed, why)
                    .await
            }
        }
    }

    /// The audit: the timeline entry, a post in the incident's Slack thread (the resolution's
    /// posts when an approval was answered), the metric, the log line.
    async fn record(
        &self,
        incident: &Incident,
        request: &Request,
        outcome: ActionOutcome,
        detail: String,
    ) -> crate::store::Result<Answer> {
        let now = Utc::now();
        let record = ActionRecord {
            at: now,
            action: request.action,
            by: request.by.clone(),
            outcome,
            detail,
        };
        let config = Arc::clone(&self.config);
        let resolves = record.resolves();
        let closing: Closing = Arc::new(move |incident: &Incident| {
            if resolves {
                rules::closing_notifications(
                    &config,
                    &incident.environment,
                    NotificationKind::Resolved,
                    incident.highest_level_notified,
                    now,
                )
            } else {
                // The thread only: a refused click is not news for the pagers.
                rules::update_notifications(&config, &incident.environment, now)
                    .into_iter()
                    .filter(|n| n.channel.kind == "slack")
                    .collect()
            }
        });
        // The answer to the caller passes the same scrubbing as what is stored and posted.
        let line = self.config.redactor().clean(&record.line()).into_owned();
        if !self
            .store
            .record_action(&incident.key, record, closing, now)
            .await?
        {
            return Ok(Answer::NotFound);
        }
        crate::metrics::metrics()
            .actions
            .with_label_values(&[request.action.as_str(), outcome.as_str()])
            .inc();
        tracing::info!(incident_key = %incident.key, action = request.action.as_str(), outcome = outcome.as_str(), "Action {line}");
        self.wakeups.posts_queued();
        let text = match outcome {
            ActionOutcome::Done => format!("Done: {line}"),
            ActionOutcome::Vote => format!("Counted: {line}"),
            ActionOutcome::Refused => format!("Not done: {line}"),
            ActionOutcome::Failed => format!("Failed: {line}"),
        };
        Ok(Answer::Recorded(outcome, text))
    }

    fn duplicate(&self, action: ActionKind) -> Answer {
        crate::metrics::metrics()
            .actions
            .with_label_values(&[action.as_str(), "duplicate"])
            .inc();
        Answer::Duplicate
    }
}

/// "retried 1234abcd (request r-1)".
fn said(done: &Done, verb: &str) -> String {
    let execution = done
        .execution_id
        .as_deref()
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    format!(
        "{verb}{execution} (request {})",
        done.request_id.as_deref().unwrap_or("?")
    )
}

/// A claim key or client token from any text: hex SHA-256 (fits CodePipeline's
/// `clientRequestToken` pattern and any store key).
fn hashed(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
