//! Figures a tool prints about its own failure: the coverage threshold it enforced, cfn-guard's
//! failing rules, `npm audit`'s counts, and the names of failing tests. Each parser reads only
//! the tool's own result lines, so that a figure is evidence, not a guess.

use super::clip;
use super::re;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// A coverage threshold the build enforced and missed: (measured %, threshold %), from jest's
/// `coverage threshold for lines (80%) not met: 72.48%`, nyc/istanbul's `Coverage for lines
/// (72.4%) does not meet global threshold (80%)`, the runbook's `Coverage: 71% (threshold 80%)`,
/// pytest-cov's `Required test coverage of 80% not reached. Total coverage: 72.00%`, and
/// JaCoCo's `lines covered ratio is 0.72, but expected minimum is 0.80`.
pub fn coverage_threshold(lines: &[&str]) -> Option<(f64, f64)> {
    static JEST: OnceLock<Regex> = OnceLock::new();
    static NYC: OnceLock<Regex> = OnceLock::new();
    static RUNBOOK: OnceLock<Regex> = OnceLock::new();
    static PYTEST: OnceLock<Regex> = OnceLock::new();
    static JACOCO: OnceLock<Regex> = OnceLock::new();
    let jest = re(
        &JEST,
        r"(?i)coverage threshold for \w+ \(([\d.]+)%\) not met:\s*([\d.]+)%",
    );
    let nyc = re(
        &NYC,
        r"(?i)coverage for \w+ \(([\d.]+)%\) does not meet (?:global |per-file )?threshold \(([\d.]+)%\)",
    );
    let runbook = re(
        &RUNBOOK,
        r"(?i)\bcoverage:\s*([\d.]+)\s*%\s*\(threshold:?\s*([\d.]+)\s*%\)",
    );
    let pytest = re(
        &PYTEST,
        r"(?i)required test coverage of ([\d.]+)% not reached\. total coverage: ([\d.]+)%",
    );
    let jacoco = re(
        &JACOCO,
        r"(?i)covered ratio is ([\d.]+), but expected minimum is ([\d.]+)",
    );
    let pct = |s: &str| s.parse::<f64>().ok().filter(|v| (0.0..=100.0).contains(v));
    for line in lines {
        if let Some(c) = jest.captures(line) {
            if let (Some(t), Some(v)) = (pct(&c[1]), pct(&c[2])) {
                return Some((v, t));
            }
        }
        if let Some(c) = nyc.captures(line) {
            if let (Some(v), Some(t)) = (pct(&c[1]), pct(&c[2])) {
                return Some((v, t));
            }
        }
        if let Some(c) = runbook.captures(line) {
            if let (Some(v), Some(t)) = (pct(&c[1]), pct(&c[2])) {
                if v < t {
                    return Some((v, t));
                }
            }
        }
        if let Some(c) = pytest.captures(line) {
            if let (Some(t), Some(v)) = (pct(&c[1]), pct(&c[2])) {
                return Some((v, t));
            }
        }
        if let Some(c) = jacoco.captures(line) {
            let ratio = |s: &str| s.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v));
            if let (Some(v), Some(t)) = (ratio(&c[1]), ratio(&c[2])) {
                return Some((v * 100.0, t * 100.0));
            }
        }
    }
    None
}

/// A coverage figure the log reports (threshold message, `All files` row of the coverage table,
/// or a `Coverage: N%` line), for the coverage diagnostic; not evidence of a failure by itself.
pub fn coverage_figure(lines: &[&str]) -> Option<f64> {
    static TABLE: OnceLock<Regex> = OnceLock::new();
    static PLAIN: OnceLock<Regex> = OnceLock::new();
    if let Some((v, _)) = coverage_threshold(lines) {
        return Some(v);
    }
    let table = re(
        &TABLE,
        r"^\s*All files\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)",
    );
    let plain = re(&PLAIN, r"(?i)\bcoverage\b[^0-9|]{0,20}(\d+(?:\.\d+)?)\s*%");
    let pct = |s: &str| s.parse::<f64>().ok().filter(|v| (0.0..=100.0).contains(v));
    lines
        .iter()
        .find_map(|l| table.captures(l).and_then(|c| pct(&c[4])))
        .or_else(|| {
            lines
                .iter()
                .find_map(|l| plain.captures(l).and_then(|c| pct(&c[1])))
        })
}

/// cfn-guard's failing rules, from its own result lines only: the `FAILED rules` list under a
/// `Status = FAIL` summary (`file/RULE_NAME    FAIL`), `Rule = NAME {` blocks of non-compliant
/// resources, and `Rule [NAME] ... FAIL` lines of older versions. Empty when the log holds no
/// cfn-guard verdict.
pub fn guard_rules(lines: &[&str]) -> Vec<String> {
    static STATUS: OnceLock<Regex> = OnceLock::new();
    static LISTED: OnceLock<Regex> = OnceLock::new();
    static BLOCK: OnceLock<Regex> = OnceLock::new();
    static OLD: OnceLock<Regex> = OnceLock::new();
    let status = re(&STATUS, r"^\S.* Status = FAIL$|^FAILED rules$");
    let listed = re(&LISTED, r"^\s*(?:\S+/)?([A-Za-z][A-Za-z0-9_]{2,})\s+FAIL$");
    let block = re(&BLOCK, r"^\s*Rule = ([A-Za-z][A-Za-z0-9_]{2,}) \{$");
    let old = re(
        &OLD,
        r"^\s*(?:\[\S+\] )?Rule \[([A-Za-z][A-Za-z0-9_]{2,})\] .*(?:FAIL|failed)",
    );
    let verdict = lines.iter().any(|l| status.is_match(l));
    let mut out: Vec<String> = Vec::new();
    let push = |name: &str, out: &mut Vec<String>| {
        if !out.iter().any(|o| o == name) && out.len() < 20 {
            out.push(name.to_string());
        }
    };
    let mut in_failed = false;
    for line in lines {
        if line.trim() == "FAILED rules" {
            in_failed = true;
            continue;
        }
        if in_failed {
            match listed.captures(line) {
                Some(c) => push(&c[1], &mut out),
                None => in_failed = false,
            }
        }
        if verdict {
            if let Some(c) = block.captures(line) {
                push(&c[1], &mut out);
            }
        }
        if let Some(c) = old.captures(line) {
            push(&c[1], &mut out);
        }
    }
    out
}

/// `npm audit` counts by severity (low, moderate, high, critical).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCounts {
    pub low: u32,
    pub moderate: u32,
    pub high: u32,
    pub critical: u32,
}

/// `npm audit`'s summary: `found 3 vulnerabilities (1 low, 1 high, 1 critical)` or
/// `5 vulnerabilities (2 moderate, 3 high)`; the line's index with it.
pub fn audit(lines: &[&str]) -> Option<(usize, AuditCounts)> {
    static SUMMARY: OnceLock<Regex> = OnceLock::new();
    static COUNT: OnceLock<Regex> = OnceLock::new();
    let summary = re(
        &SUMMARY,
        r"(?i)^(?:found )?\d+\s+vulnerabilit(?:y|ies)\s*\(([^)]*)\)",
    );
    let count = re(&COUNT, r"(?i)(\d+)\s+(low|moderate|high|critical)");
    let (at, caps) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| summary.captures(l.trim()).map(|c| (i, c)))?;
    let mut counts = AuditCounts::default();
    for c in count.captures_iter(&caps[1]) {
        let n: u32 = c[1].parse().unwrap_or(0);
        match c[2].to_ascii_lowercase().as_str() {
            "low" => counts.low += n,
            "moderate" => counts.moderate += n,
            "high" => counts.high += n,
            _ => counts.critical += n,
        }
    }
    Some((at, counts))
}

/// Failing tests as the runners name them: jest `● Suite › test`, vitest `FAIL file > test`,
/// mocha `1) suite test`, pytest `FAILED path::test`, unittest `FAIL: test (mod.Class)`, go
/// `--- FAIL: TestX`, cargo `test x ... FAILED`, surefire `[ERROR]   Class.method:42`, Gradle
/// `Class > method() FAILED`, dotnet `Failed Namespace.Test [12 ms]`, rspec `rspec ./spec:12 #
/// name`, phpunit `1) Class::method`, TAP `not ok 1 - name`. First ten, in log order.
pub fn failing_tests(lines: &[&str]) -> Vec<String> {
    static NAMES: OnceLock<Vec<Regex>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        [
            r"^\s*●\s+(.+›.+)$",
            r"^\s*(?:FAIL|×|✗)\s+(\S+\.\w+ > .+?)(?:\s+\d+ms)?$",
            r"^FAILED (\S+::\S+)",
            r"^(?:FAIL|ERROR): (\w+ \([\w.]+\))",
            r"^\s*--- FAIL: (\S+)",
            r"^test (\S+) \.\.\. FAILED$",
            r"^\[ERROR\]\s+(\w[\w.$]*\.\w+:\d+)\b",
            r"^\[ERROR\]\s+(\w+\([\w.$]+\))\s",
            r"^(\S.* > .+) FAILED$",
            r"^\s*Failed ([\w.`+<>]+(?:\(.*\))?) \[",
            r"^rspec \./\S+ # (.+)$",
            r"^\d+\) ([\w\\]+::\w+)",
            r"^\s*not ok \d+ - (.+)$",
            r"^\s*\d+\) (\S.*):$",
        ]
        .iter()
        .map(|p| Regex::new(p).expect("pattern is valid"))
        .collect()
    });
    let mut out: Vec<String> = Vec::new();
    for pattern in names {
        for line in lines {
            if let Some(c) = pattern.captures(line) {
                let name = clip(c[1].trim(), 200);
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            if out.len() >= 10 {
                return out;
            }
        }
        if !out.is_empty() {
            // The first runner format that names tests names them all.
            return out;
        }
    }
    // jest without `●` blocks: the failing files.
    static FILE: OnceLock<Regex> = OnceLock::new();
    let file = re(&FILE, r"^\s*FAIL\s+(\S+\.\w+)$");
    for line in lines {
        if let Some(c) = file.captures(line) {
            let name = clip(&c[1], 200);
            if !out.contains(&name) && out.len() < 10 {
                out.push(name);
            }
        }
    }
    out
}
