//! Results of diagnostics that the rules take as input, just like events: a build log that shows
//! low coverage refines a failure into a coverage incident; a rollback check resolves or
//! escalates a rollback incident.

use serde::{Deserialize, Serialize};

/// A diagnostic result about one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    RootCause(RootCauseFinding),
    RollbackStatus(RollbackStatusFinding),
}

impl Finding {
    pub fn key(&self) -> &str {
        match self {
            Self::RootCause(f) => &f.key,
            Self::RollbackStatus(f) => &f.key,
        }
    }
}

/// What the build log says went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCauseFinding {
    pub key: String,
    pub class: RootCauseClass,
    /// Coverage parsed from the log, in percent.
    pub coverage_percent: Option<f64>,
    /// The security scan reported CRITICAL findings.
    pub critical_findings: bool,
}

/// The runbook's root-cause classes (Incident 1, step 3), plus the ones people route on:
/// dependency (install/resolve failures), compile, lint, and AWS throttling (transient; feeds the
/// outage rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCauseClass {
    TestFailure,
    Coverage,
    SecurityScan,
    Infrastructure,
    Timeout,
    Dependency,
    Compile,
    Lint,
    AwsThrottling,
    Unknown,
}

impl RootCauseClass {
    pub const ALL: [RootCauseClass; 10] = [
        Self::TestFailure,
        Self::Coverage,
        Self::SecurityScan,
        Self::Infrastructure,
        Self::Timeout,
        Self::Dependency,
        Self::Compile,
        Self::Lint,
        Self::AwsThrottling,
        Self::Unknown,
    ];

    /// The name in configuration and JSON (`test_failure`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TestFailure => "test_failure",
            Self::Coverage => "coverage",
            Self::SecurityScan => "security_scan",
            Self::Infrastructure => "infrastructure",
            Self::Timeout => "timeout",
            Self::Dependency => "dependency",
            Self::Compile => "compile",
            Self::Lint => "lint",
            Self::AwsThrottling => "aws_throttling",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// A failure a retry may get past (throttling, a timeout).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::AwsThrottling | Self::Timeout)
    }
}

/// The state of a rollback, from the deployment record, alarms and health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackStatusFinding {
    pub key: String,
    /// The deployment record says `rolled_back`.
    pub completed: bool,
    /// The rollback itself failed (record or Lambda log says so).
    pub failed: bool,
    /// Alarms still in ALARM under the environment's prefix.
    pub alarms_in_alarm: Vec<String>,
    /// Health check result; `None` when there is no health URL or it could not be fetched.
    pub health_ok: Option<bool>,
}
