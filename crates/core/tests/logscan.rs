//! Build-log reading (runbook Incident 1 step 3, Incidents 4 and 5 step 1) on realistic logs.
#![allow(clippy::unwrap_used)]

use pipeline_responder_core::finding::RootCauseClass;
use pipeline_responder_core::logscan::{analyse, excerpt, scrub};

fn log(name: &str) -> Vec<String> {
    let path = format!("{}/tests/data/logs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn patterns(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

#[test]
fn incident1_test_failure_names_the_failing_tests_and_keeps_the_first_errors() {
    let lines = log("jest-test-failure.log");
    let f = analyse(&lines, &patterns(&["FAILED", "ERROR", "FAIL"]), 2, 40, 80.0);
    assert_eq!(f.class, RootCauseClass::TestFailure);
    assert_eq!(f.failing_tests[0], "WorkerQueue › retries twice");
    assert_eq!(f.failing_tests.len(), 2);
    assert!(
        f.summary
            .contains("2 failing test(s) (first: WorkerQueue › retries twice)"),
        "{}",
        f.summary
    );
    assert_eq!(
        f.excerpt[0], "FAIL src/worker/queue.test.ts",
        "first error, not the tail"
    );
}

#[test]
fn incident4_coverage_is_parsed_from_jest_threshold_message() {
    let f = analyse(
        &log("jest-coverage.log"),
        &patterns(&["Coverage", "coverage"]),
        2,
        20,
        80.0,
    );
    assert_eq!(f.class, RootCauseClass::Coverage);
    assert_eq!(f.coverage_percent, Some(72.48));
    assert!(
        f.summary.contains("72.5 % is under the 80 % threshold"),
        "{}",
        f.summary
    );
    let above = analyse(&log("jest-coverage.log"), &[], 0, 20, 70.0);
    assert_ne!(
        above.class,
        RootCauseClass::Coverage,
        "72.48 % passes a 70 % threshold"
    );
}

#[test]
fn incident5_security_scan_lists_guard_rules_and_audit_counts_and_scrubs_tokens() {
    let f = analyse(
        &log("security-scan.log"),
        &patterns(&["security", "FAIL", "vulnerabilit"]),
        50,
        60,
        80.0,
    );
    assert_eq!(f.class, RootCauseClass::SecurityScan);
    assert_eq!(
        f.guard_rules,
        vec!["S3_BUCKET_ENCRYPTION_ENABLED", "IAM_NO_WILDCARD_ACTIONS"]
    );
    let audit = f.audit.unwrap();
    assert_eq!(
        (audit.low, audit.moderate, audit.high, audit.critical),
        (1, 1, 1, 1)
    );
    assert!(f.critical());
    let text = f.excerpt.join("\n");
    assert!(
        !text.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        "{text}"
    );
    assert!(text.contains("[REDACTED]"));
}

#[test]
fn incident1_infrastructure_failures_are_classified_and_credentials_scrubbed() {
    let f = analyse(
        &log("cdk-deploy.log"),
        &patterns(&["FAILED", "failed", "Error"]),
        1,
        40,
        80.0,
    );
    assert_eq!(f.class, RootCauseClass::Infrastructure);
    let all = excerpt(&log("cdk-deploy.log"), &[], 0, 100).join("\n");
    assert!(!all.contains("eyJhbGciOiJIUzI1NiJ9"), "{all}");
    assert!(!all.contains("wJalrXUtnFEMI"), "{all}");
}

#[test]
fn scrub_removes_every_kind_of_credential() {
    for (line, secret) in [
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        (
            "slack xoxb-123456789012-abcdefghijkl",
            "xoxb-123456789012-abcdefghijkl",
        ),
        (
            "POST https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            "T000/B000/XXXXXXXX",
        ),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("\"api_key\": \"abc123def456\"", "abc123def456"),
        ("token: s3cr3t-t0ken", "s3cr3t-t0ken"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "github_pat_11ABCDEFG0123456789",
        ),
    ] {
        let out = scrub(line);
        assert!(!out.contains(secret), "{line} -> {out}");
        assert!(out.contains("[REDACTED]"), "{out}");
    }
    assert_eq!(scrub("npm test exited 1"), "npm test exited 1");
}

#[test]
fn excerpt_is_bounded_in_lines_and_line_length() {
    let lines: Vec<String> = (0..10_000)
        .map(|i| format!("ERROR {i} {}", "x".repeat(1000)))
        .collect();
    let e = excerpt(&lines, &patterns(&["ERROR"]), 3, 40);
    assert_eq!(e.len(), 40);
    assert!(e.iter().all(|l| l.chars().count() <= 300));
    assert!(e[0].starts_with("ERROR 0 "));
}

#[test]
fn unknown_logs_are_unknown() {
    let f = analyse(&["all good".to_string()], &[], 0, 10, 80.0);
    assert_eq!(f.class, RootCauseClass::Unknown);
    assert!(f.excerpt.len() <= 1);
}
