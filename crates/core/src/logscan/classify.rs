//! The root-cause class, only from evidence: a user-defined cause that matches; CI's own
//! timeout; cfn-guard's verdict or `npm audit`'s summary when the scan is what failed; a coverage
//! *threshold* message; otherwise the kind of the strongest tool line in the failing command's
//! output (test runner, compiler, linter, package manager, CloudFormation/CDK, AWS throttling).
//! Anything else is `unknown`: a wrong severe class pages the wrong people.

use super::figures::{self, AuditCounts};
use super::frame::Framing;
use super::lines::Log;
use super::tools::Kind;
use super::{clip, scrub, KnownCause, Options};
use crate::finding::RootCauseClass;
use std::ops::Range;

pub(super) struct Verdict {
    pub class: RootCauseClass,
    pub summary: String,
    pub cause: Option<KnownCause>,
    pub coverage_percent: Option<f64>,
    pub guard_rules: Vec<String>,
    pub audit: Option<AuditCounts>,
    pub failing_tests: Vec<String>,
}

/// Lines of `region` that are not blank, from the end: how near the end a line is.
fn from_end(log: &Log, region: &Range<usize>, at: usize) -> usize {
    log.lines[at.min(region.end)..region.end]
        .iter()
        .filter(|l| !l.text.trim().is_empty())
        .count()
}

pub(super) fn classify(
    log: &Log,
    framing: &Framing,
    region: &Range<usize>,
    bases: &[Option<(u8, Kind)>],
    options: &Options<'_>,
) -> Verdict {
    let texts: Vec<&str> = log.lines[region.clone()]
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    let all: Vec<&str> = log.texts();
    let command = framing.command.as_deref().unwrap_or("");
    let tests = figures::failing_tests(&texts);
    let threshold = figures::coverage_threshold(&texts);
    let mut verdict = Verdict {
        class: RootCauseClass::Unknown,
        summary: String::new(),
        cause: None,
        coverage_percent: threshold
            .map(|(v, _)| v)
            .or_else(|| figures::coverage_figure(&all)),
        guard_rules: Vec::new(),
        audit: None,
        failing_tests: tests.clone(),
    };
    let in_command = if command.is_empty() {
        String::new()
    } else {
        format!(" in `{}`", clip(&scrub(command), 80))
    };

    // A user-defined cause wins over every built-in guess.
    for cause in options.causes {
        let hit = log.lines[region.clone()]
            .iter()
            .find(|l| !l.overwritten && cause.pattern.is_match(&l.text));
        if let Some(line) = hit {
            verdict.class = cause.class;
            verdict.summary = match &cause.hint {
                Some(hint) => format!("{}: {hint}", cause.name),
                None => cause.name.clone(),
            };
            verdict.cause = Some(KnownCause {
                name: cause.name.clone(),
                hint: cause.hint.clone(),
                runbook_url: cause.runbook_url.clone(),
                flaky: cause.flaky,
                line: line.number,
            });
            return verdict;
        }
    }

    if framing.timed_out {
        verdict.class = RootCauseClass::Timeout;
        let what = framing
            .timeout_line
            .map(|i| clip(&scrub(&log.lines[i].text), 160))
            .unwrap_or_default();
        verdict.summary = format!("timeout{in_command} — {what}");
        return verdict;
    }

    // Security: the scanner's own verdict, when the scan is what failed.
    let guard = figures::guard_rules(&texts);
    let audit = figures::audit(&texts);
    let audit_failed = audit.filter(|(at, counts)| {
        let total = counts.low + counts.moderate + counts.high + counts.critical;
        let audit_command = command.contains("audit");
        total > 0
            && (audit_command
                || (!framing.found
                    && counts.high + counts.critical > 0
                    && from_end(log, region, region.start + at) <= 15))
    });
    if !guard.is_empty() || audit_failed.is_some() {
        verdict.class = RootCauseClass::SecurityScan;
        verdict.guard_rules = guard.clone();
        verdict.audit = audit_failed.map(|(_, c)| c);
        let mut parts = Vec::new();
        if !guard.is_empty() {
            parts.push(format!("cfn-guard rules failing: {}", guard.join(", ")));
        }
        if let Some((_, a)) = audit_failed {
            parts.push(format!(
                "npm audit: {} critical, {} high, {} moderate, {} low",
                a.critical, a.high, a.moderate, a.low
            ));
        }
        verdict.summary = format!("security scan — {}", parts.join("; "));
        return verdict;
    }

    // The strongest evidence of a classifying kind in the failing command's output.
    let classifying = |k: Kind| {
        matches!(
            k,
            Kind::Test
                | Kind::Compile
                | Kind::Lint
                | Kind::Dependency
                | Kind::Infrastructure
                | Kind::Throttling
        )
    };
    let mut evidence: Vec<(usize, u8, Kind)> = region
        .clone()
        .filter_map(|i| bases[i].map(|(s, k)| (i, s, k)))
        .filter(|(_, s, k)| *s >= 7 && classifying(*k))
        .collect();
    if evidence.is_empty() {
        // Nothing in the failing command's own output: what the build printed after it
        // (post-build diagnostics such as `describe-stack-events`), on strong evidence only.
        evidence = (region.end..log.len())
            .filter_map(|i| bases[i].map(|(s, k)| (i, s, k)))
            .filter(|(_, s, k)| *s >= 9 && classifying(*k) && *k != Kind::Test)
            .collect();
    }
    let throttled = evidence.iter().find(|(_, _, k)| *k == Kind::Throttling);
    let test_evidence = evidence.iter().any(|(_, _, k)| *k == Kind::Test) || !tests.is_empty();
    if let Some(&(i, _, _)) = throttled {
        verdict.class = RootCauseClass::AwsThrottling;
        verdict.summary = format!(
            "AWS throttling{in_command} — {}",
            clip(&scrub(&log.lines[i].text), 160)
        );
        return verdict;
    }
    if let Some((value, limit)) = threshold.filter(|(v, t)| v < t) {
        if !test_evidence {
            verdict.class = RootCauseClass::Coverage;
            verdict.summary = format!(
                "coverage {value:.1} % is under the {} % threshold",
                trim_float(limit)
            );
            return verdict;
        }
    }
    let best = evidence.iter().map(|(_, s, _)| *s).max();
    let first = best.and_then(|best| evidence.iter().find(|(_, s, _)| *s + 1 >= best).copied());
    let Some((at, _, kind)) = first else {
        verdict.summary = match (&framing.command, framing.exit_status) {
            (Some(_), Some(code)) => format!(
                "unknown — `{}` exited with {code}; see the log excerpt",
                clip(&scrub(command), 80)
            ),
            (Some(_), None) => format!(
                "unknown — `{}` failed; see the log excerpt",
                clip(&scrub(command), 80)
            ),
            _ => "unknown (see the log excerpt)".to_string(),
        };
        return verdict;
    };
    let line = clip(&scrub(log.lines[at].text.trim()), 160);
    let (class, summary) = match kind {
        Kind::Test => (
            RootCauseClass::TestFailure,
            match tests.first() {
                Some(first) => format!(
                    "test failure{in_command} — {} failing test(s) (first: {first})",
                    tests.len()
                ),
                None => format!("test failure{in_command} — {line}"),
            },
        ),
        Kind::Compile => (
            RootCauseClass::Compile,
            format!("compile error{in_command} — {line}"),
        ),
        Kind::Lint => (RootCauseClass::Lint, format!("lint{in_command} — {line}")),
        Kind::Dependency => (
            RootCauseClass::Dependency,
            format!("dependency{in_command} — {line}"),
        ),
        _ => (
            RootCauseClass::Infrastructure,
            format!("infrastructure (CDK / CloudFormation){in_command} — {line}"),
        ),
    };
    verdict.class = class;
    verdict.summary = summary;
    verdict
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}
