//! Incident vocabulary shared by the rules, the store and the notifiers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

mod views;
pub use views::IncidentsView;

/// The incident types of the runbook (docs/specification.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentType {
    /// Runbook Incident 1.
    PipelineExecutionFailure,
    /// Runbook Incident 2.
    RollbackTriggered,
    /// Runbook Incident 3.
    DeploymentDurationExceeded,
    /// Runbook Incident 4.
    TestCoverageBelowThreshold,
    /// Runbook Incident 5.
    SecurityScanFailure,
    /// Runbook Task 2 (approve production deployment).
    ApprovalPending,
}

impl IncidentType {
    pub const ALL: [IncidentType; 6] = [
        Self::PipelineExecutionFailure,
        Self::RollbackTriggered,
        Self::DeploymentDurationExceeded,
        Self::TestCoverageBelowThreshold,
        Self::SecurityScanFailure,
        Self::ApprovalPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PipelineExecutionFailure => "pipeline_execution_failure",
            Self::RollbackTriggered => "rollback_triggered",
            Self::DeploymentDurationExceeded => "deployment_duration_exceeded",
            Self::TestCoverageBelowThreshold => "test_coverage_below_threshold",
            Self::SecurityScanFailure => "security_scan_failure",
            Self::ApprovalPending => "approval_pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Human title for posts.
    pub fn title(self) -> &'static str {
        match self {
            Self::PipelineExecutionFailure => "Pipeline execution failed",
            Self::RollbackTriggered => "Automated rollback triggered",
            Self::DeploymentDurationExceeded => "Deployment duration exceeded",
            Self::TestCoverageBelowThreshold => "Test coverage below threshold",
            Self::SecurityScanFailure => "Security scan failed",
            Self::ApprovalPending => "Production approval waiting",
        }
    }

    /// The runbook section an operator follows.
    pub fn runbook_section(self) -> &'static str {
        match self {
            Self::PipelineExecutionFailure => "Incident 1: Pipeline Execution Failure",
            Self::RollbackTriggered => "Incident 2: Automated Rollback Triggered",
            Self::DeploymentDurationExceeded => "Incident 3: Deployment Duration Exceeds Threshold",
            Self::TestCoverageBelowThreshold => "Incident 4: Test Coverage Below Threshold",
            Self::SecurityScanFailure => "Incident 5: Security Scan Failures",
            Self::ApprovalPending => "Task 2: Approve Production Deployment",
        }
    }

    /// The runbook's next steps, condensed for the first post.
    pub fn next_steps(self) -> &'static str {
        match self {
            Self::PipelineExecutionFailure => {
                "Test failures: fix tests or code. Security scan: fix the findings. Infrastructure: check the CDK code. Timeout: investigate performance. Then redeploy."
            }
            Self::RollbackTriggered => {
                "Watch the rollback complete (alarms OK, health check passes, deployment record rolled_back). If it fails: manual rollback, escalate to the engineering manager and AWS support."
            }
            Self::DeploymentDurationExceeded => {
                "Find the slow stage. If stuck: stop the execution and restart it. If progressing slowly: let it finish and investigate."
            }
            Self::TestCoverageBelowThreshold => {
                "Review the coverage report, add tests for uncovered code until coverage is at or above the threshold, redeploy."
            }
            Self::SecurityScanFailure => {
                "cfn-guard: fix the infrastructure rule violations (encryption, public access, wildcard IAM). npm audit: `npm audit fix` or update the packages. Redeploy."
            }
            Self::ApprovalPending => {
                "Verify staging succeeded and no alarms fire, then approve or reject ApproveProduction."
            }
        }
    }

    /// Whether this type belongs to the build/deploy failure family that diagnostics can refine
    /// into one another (a failure whose log shows low coverage becomes a coverage incident).
    pub fn is_failure_family(self) -> bool {
        matches!(
            self,
            Self::PipelineExecutionFailure
                | Self::TestCoverageBelowThreshold
                | Self::SecurityScanFailure
        )
    }
}

impl fmt::Display for IncidentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity, ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Resolved)
    }
}

/// What the rules know about an existing incident: the store's summary of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub key: String,
    pub incident_type: IncidentType,
    pub environment: String,
    pub pipeline: String,
    /// Execution the incident is about, once known.
    pub execution_id: Option<String>,
    /// When that execution started, if known; orders "a later execution".
    pub execution_start: Option<DateTime<Utc>>,
    /// Stage that failed, once known.
    pub failed_stage: Option<String>,
    /// Action that failed or waits (approval), once known.
    pub action: Option<String>,
    /// Alarm that opened or joined the incident.
    pub alarms: Vec<String>,
    /// Error code or summary of the failure, used to spot an AWS-wide outage.
    pub error_signature: Option<String>,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Highest escalation level already notified (index into the configured levels; 0 = L1).
    pub highest_level_notified: Option<usize>,
    /// Free-form resolution reason (e.g. `rejected`, `superseded`), once resolved.
    pub resolution: Option<String>,
}
