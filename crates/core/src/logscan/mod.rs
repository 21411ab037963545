//! Reading a build log the way the runbook's investigator does (Incident 1 step 2–3, Incidents 4
//! and 5 step 1): the first error lines with their context rather than only the tail, the
//! coverage figure, cfn-guard and `npm audit` findings, and the root-cause class. Pure; secrets
//! are scrubbed from every line that leaves this module.

use crate::finding::RootCauseClass;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Longest line kept in an excerpt.
const LINE_LIMIT: usize = 300;

/// What a build log says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogFindings {
    pub class: RootCauseClass,
    /// Scrubbed excerpt: first matching lines with context.
    pub excerpt: Vec<String>,
    /// Coverage figure parsed from the log, in percent.
    pub coverage_percent: Option<f64>,
    /// cfn-guard rules reported as failing.
    pub guard_rules: Vec<String>,
    /// `npm audit` counts by severity (low, moderate, high, critical).
    pub audit: Option<AuditCounts>,
    /// Failing tests named in the log (first few).
    pub failing_tests: Vec<String>,
    /// One-line summary for the post ("3 failing tests (first: ...)").
    pub summary: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCounts {
    pub low: u32,
    pub moderate: u32,
    pub high: u32,
    pub critical: u32,
}

impl LogFindings {
    /// The security scan reported CRITICAL findings.
    pub fn critical(&self) -> bool {
        self.audit.is_some_and(|a| a.critical > 0)
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("pattern is valid"))
}

/// Removes credentials from a log line (AWS keys, Slack/GitHub tokens, bearer tokens,
/// `password=`/`secret=`/`token=` values, private-key blocks).
pub fn scrub(line: &str) -> String {
    static SECRETS: OnceLock<Regex> = OnceLock::new();
    static ASSIGNED: OnceLock<Regex> = OnceLock::new();
    let secrets = re(
        &SECRETS,
        r"(?x)
          (AKIA|ASIA)[0-9A-Z]{16}
        | xox[abprs]-[0-9A-Za-z-]{10,}
        | (ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{20,}
        | github_pat_[0-9A-Za-z_]{20,}
        | hooks\.slack\.com/services/[0-9A-Za-z/]+
        | -----BEGIN[ A-Z]*PRIVATE\ KEY-----
        | (?i:bearer)\s+[0-9A-Za-z._~+/=-]{8,}
        ",
    );
    let assigned = re(
        &ASSIGNED,
        r#"(?i)((?:aws_secret_access_key|secret[_-]?access[_-]?key|password|passwd|secret|token|api[_-]?key)["']?\s*[:=]\s*["']?)[^\s"',;]+"#,
    );
    let line = secrets.replace_all(line, "[REDACTED]");
    assigned.replace_all(&line, "${1}[REDACTED]").into_owned()
}

fn clip(line: &str) -> String {
    let line = line.trim_end();
    if line.chars().count() <= LINE_LIMIT {
        return line.to_string();
    }
    let mut out: String = line.chars().take(LINE_LIMIT - 1).collect();
    out.push('…');
    out
}

/// The first lines matching any of `patterns` (case-sensitive, as CloudWatch filter terms are),
/// each with `context` following lines, at most `max_lines` in all, scrubbed.
pub fn excerpt(
    lines: &[String],
    patterns: &[String],
    context: usize,
    max_lines: usize,
) -> Vec<String> {
    let mut keep = vec![false; lines.len()];
    let mut kept = 0;
    for (i, line) in lines.iter().enumerate() {
        if kept >= max_lines {
            break;
        }
        if patterns.is_empty() || patterns.iter().any(|p| line.contains(p.as_str())) {
            for flag in keep.iter_mut().skip(i).take(context + 1) {
                if !*flag && kept < max_lines {
                    *flag = true;
                    kept += 1;
                }
            }
        }
    }
    lines
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(l, _)| clip(&scrub(l)))
        .collect()
}

/// Coverage in percent, from jest's threshold message, a `Coverage: N%` line, or the `All files`
/// row of the coverage table (its `% Lines` column).
pub fn coverage(lines: &[String]) -> Option<f64> {
    static THRESHOLD: OnceLock<Regex> = OnceLock::new();
    static PLAIN: OnceLock<Regex> = OnceLock::new();
    static TABLE: OnceLock<Regex> = OnceLock::new();
    let threshold = re(
        &THRESHOLD,
        r"(?i)coverage threshold for \w+ \(([\d.]+)%\) not met:\s*([\d.]+)%",
    );
    let plain = re(&PLAIN, r"(?i)\bcoverage\b[^0-9]{0,20}([\d]+(?:\.\d+)?)\s*%");
    let table = re(
        &TABLE,
        r"^\s*All files\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)",
    );
    let parse = |s: &str| s.parse::<f64>().ok().filter(|v| (0.0..=100.0).contains(v));
    lines
        .iter()
        .find_map(|l| threshold.captures(l).and_then(|c| parse(&c[2])))
        .or_else(|| {
            lines
                .iter()
                .find_map(|l| table.captures(l).and_then(|c| parse(&c[4])))
        })
        .or_else(|| {
            lines
                .iter()
                .find_map(|l| plain.captures(l).and_then(|c| parse(&c[1])))
        })
}

/// cfn-guard rules reported as failing (`RULE_NAME  FAIL`, `Rule [RULE_NAME] ... FAIL`).
pub fn guard_rules(lines: &[String]) -> Vec<String> {
    static RULE: OnceLock<Regex> = OnceLock::new();
    let rule = re(
        &RULE,
        r"(?:^|[\s/\[])([A-Z][A-Z0-9_]{2,})\]?\s*(?:\.{2,}|:|\s)\s*FAIL(?:ED)?\b",
    );
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        if let Some(c) = rule.captures(line) {
            let name = c[1].to_string();
            if name != "FAIL" && !out.contains(&name) {
                out.push(name);
            }
        }
        if out.len() >= 20 {
            break;
        }
    }
    out
}

/// `npm audit`'s summary: `found 3 vulnerabilities (1 low, 1 high, 1 critical)` or
/// `5 vulnerabilities (2 moderate, 3 high)`.
pub fn audit(lines: &[String]) -> Option<AuditCounts> {
    static SUMMARY: OnceLock<Regex> = OnceLock::new();
    static COUNT: OnceLock<Regex> = OnceLock::new();
    let summary = re(&SUMMARY, r"(?i)\d+\s+vulnerabilit(?:y|ies)\s*\(([^)]*)\)");
    let count = re(&COUNT, r"(?i)(\d+)\s+(low|moderate|high|critical)");
    let line = lines.iter().find_map(|l| summary.captures(l))?;
    let mut counts = AuditCounts::default();
    for c in count.captures_iter(&line[1]) {
        let n: u32 = c[1].parse().unwrap_or(0);
        match c[2].to_ascii_lowercase().as_str() {
            "low" => counts.low += n,
            "moderate" => counts.moderate += n,
            "high" => counts.high += n,
            _ => counts.critical += n,
        }
    }
    Some(counts)
}

/// Failing tests: jest `FAIL path` and `● Suite › test` lines, mocha `N) test`.
pub fn failing_tests(lines: &[String]) -> Vec<String> {
    static BULLET: OnceLock<Regex> = OnceLock::new();
    static FAIL: OnceLock<Regex> = OnceLock::new();
    let bullet = re(&BULLET, r"^\s*●\s+(.+›.+)$");
    let fail = re(&FAIL, r"^\s*FAIL\s+(\S+)");
    let mut out: Vec<String> = lines
        .iter()
        .filter_map(|l| bullet.captures(l).map(|c| clip(c[1].trim())))
        .collect();
    if out.is_empty() {
        out = lines
            .iter()
            .filter_map(|l| fail.captures(l).map(|c| clip(&c[1])))
            .collect();
    }
    out.dedup();
    out.truncate(10);
    out
}

fn any(lines: &[String], needles: &[&str]) -> bool {
    lines.iter().any(|l| needles.iter().any(|n| l.contains(n)))
}

/// Reads a build log: classification, figures and a scrubbed excerpt.
pub fn analyse(
    lines: &[String],
    patterns: &[String],
    context: usize,
    max_lines: usize,
    coverage_threshold: f64,
) -> LogFindings {
    let coverage_percent = coverage(lines);
    let guard = guard_rules(lines);
    let audit = audit(lines);
    let tests = failing_tests(lines);
    let audit_blocking = audit.is_some_and(|a| a.high + a.critical > 0);
    let tests_failed = !tests.is_empty()
        || any(
            lines,
            &["Tests failed", "Test failed", "npm ERR! Test failed"],
        )
        || (any(lines, &["Test Suites:", "Tests:"]) && any(lines, &[" failed"]));
    let class = if !guard.is_empty() || audit_blocking {
        RootCauseClass::SecurityScan
    } else if coverage_percent.is_some_and(|c| c < coverage_threshold) {
        RootCauseClass::Coverage
    } else if tests_failed {
        RootCauseClass::TestFailure
    } else if any(
        lines,
        &[
            "CREATE_FAILED",
            "UPDATE_FAILED",
            "UPDATE_ROLLBACK",
            "ROLLBACK_COMPLETE",
            "CloudFormation",
            "cdk deploy",
            "AccessDenied",
            "is not authorized to perform",
        ],
    ) {
        RootCauseClass::Infrastructure
    } else if any(
        lines,
        &["timed out", "Timed out", "TIMED_OUT", "Build timed out"],
    ) {
        RootCauseClass::Timeout
    } else {
        RootCauseClass::Unknown
    };
    let summary = match class {
        RootCauseClass::SecurityScan => {
            let mut parts = Vec::new();
            if !guard.is_empty() {
                parts.push(format!("cfn-guard rules failing: {}", guard.join(", ")));
            }
            if let Some(a) = audit {
                parts.push(format!(
                    "npm audit: {} critical, {} high, {} moderate, {} low",
                    a.critical, a.high, a.moderate, a.low
                ));
            }
            format!("security scan — {}", parts.join("; "))
        }
        RootCauseClass::Coverage => format!(
            "coverage {:.1} % is under the {coverage_threshold} % threshold",
            coverage_percent.unwrap_or_default()
        ),
        RootCauseClass::TestFailure => match tests.first() {
            Some(first) => format!(
                "test failure — {} failing test(s) (first: {first})",
                tests.len()
            ),
            None => "test failure".to_string(),
        },
        RootCauseClass::Infrastructure => "infrastructure (CDK / CloudFormation)".to_string(),
        RootCauseClass::Timeout => "timeout".to_string(),
        RootCauseClass::Unknown => "unknown (see the log excerpt)".to_string(),
    };
    // The configured patterns plus the lines that show this class of failure (jest's `FAIL` and
    // `●` lines do not contain "FAILED" or "ERROR"), in log order.
    let markers: &[&str] = match class {
        RootCauseClass::TestFailure => &["FAIL ", "●", "✕", "failing"],
        RootCauseClass::Coverage => &["coverage", "Coverage", "All files"],
        RootCauseClass::SecurityScan => &["FAIL", "vulnerabilit", "Severity:"],
        RootCauseClass::Infrastructure => &["CREATE_FAILED", "UPDATE_FAILED", "ROLLBACK", "failed"],
        RootCauseClass::Timeout => &["timed out", "Timed out", "TIMED_OUT"],
        RootCauseClass::Unknown => &[],
    };
    let mut wanted: Vec<String> = markers.iter().map(|m| m.to_string()).collect();
    wanted.extend(patterns.iter().cloned());
    LogFindings {
        class,
        excerpt: excerpt(lines, &wanted, context, max_lines),
        coverage_percent,
        guard_rules: guard,
        audit,
        failing_tests: tests,
        summary,
    }
}
