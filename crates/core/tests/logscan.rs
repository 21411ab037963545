//! Build-log reading (runbook Incident 1 step 3, Incidents 4 and 5 step 1) on realistic logs and
//! on the two corpora of fixtures/ci-logs.
#![allow(clippy::unwrap_used)]

use pipeline_responder_core::config::Cause;
use pipeline_responder_core::finding::RootCauseClass;
use pipeline_responder_core::logscan::{analyse, scrub, Comparison, Log, Options};
use std::collections::BTreeSet;
use std::path::Path;

fn log(name: &str) -> Log {
    let path = format!("{}/tests/data/logs/{name}", env!("CARGO_MANIFEST_DIR"));
    Log::from_text(&std::fs::read_to_string(path).unwrap())
}

fn texts(f: &pipeline_responder_core::logscan::LogFindings) -> String {
    f.excerpt_texts().join("\n")
}

#[test]
fn incident1_test_failure_names_the_failing_tests_and_shows_their_blocks_first() {
    let f = analyse(&log("jest-test-failure.log"), None, &Options::default());
    assert_eq!(f.class, RootCauseClass::TestFailure);
    assert_eq!(f.failing_tests[0], "WorkerQueue › retries twice");
    assert_eq!(f.failing_tests.len(), 2);
    assert!(
        f.summary
            .contains("2 failing test(s) (first: WorkerQueue › retries twice)"),
        "{}",
        f.summary
    );
    assert!(
        f.summary.contains("`npm test`"),
        "names the command: {}",
        f.summary
    );
    assert_eq!(
        f.excerpt[0].text, "FAIL src/worker/queue.test.ts",
        "the failure block first"
    );
    assert_eq!(f.excerpt[0].line, 6, "line numbers point into the log");
    assert!(texts(&f).contains("Received: 3"));
}

#[test]
fn incident4_coverage_is_classified_only_from_the_threshold_failure() {
    let f = analyse(&log("jest-coverage.log"), None, &Options::default());
    assert_eq!(f.class, RootCauseClass::Coverage);
    assert_eq!(f.coverage_percent, Some(72.48));
    assert!(
        f.summary.contains("72.5 % is under the 80 % threshold"),
        "{}",
        f.summary
    );
    // A coverage report alone (no threshold failure) is not evidence.
    let report = Log::from_text(
        "$ npm test\nAll files | 61.2 | 50 | 70 | 61.2 |\ncoverage: 61.2% of statements\n  ● a › b\n    Expected: 1\n    Received: 2\nTests: 1 failed, 3 passed\nThe command \"npm test\" exited with 1.\n",
    );
    let f = analyse(&report, None, &Options::default());
    assert_eq!(f.class, RootCauseClass::TestFailure, "{}", f.summary);
}

#[test]
fn incident5_security_scan_lists_guard_rules_and_audit_counts_and_scrubs_tokens() {
    let f = analyse(&log("security-scan.log"), None, &Options::default());
    assert_eq!(f.class, RootCauseClass::SecurityScan, "{}", f.summary);
    assert_eq!(
        f.guard_rules,
        vec!["S3_BUCKET_ENCRYPTION_ENABLED", "IAM_NO_WILDCARD_ACTIONS"]
    );
    let text = texts(&f);
    assert!(
        !text.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        "{text}"
    );
}

#[test]
fn uppercase_words_before_fail_and_audit_output_of_a_passing_step_are_not_security_findings() {
    let lines = "[Container] 2024/05/14 10:02:09.871112 Running command npm audit --audit-level=critical || true\n\
        found 2 vulnerabilities (1 moderate, 1 high)\n\
        [Container] 2024/05/14 10:02:40.201901 Running command go test ./...\n\
        --- FAIL: TestParser (0.00s)\n    parser_test.go:12: got 1, want 2\n\
        TEST_PARSER_OK ... FAIL\nFAIL\tgithub.com/acme/parser\t0.011s\n\
        [Container] 2024/05/14 10:03:01.654321 Command did not exit successfully go test ./... exit status 1\n";
    let f = analyse(&Log::from_text(lines), None, &Options::default());
    assert_eq!(f.class, RootCauseClass::TestFailure, "{}", f.summary);
    assert!(f.guard_rules.is_empty());
    assert!(f.audit.is_none());
    assert_eq!(f.failing_tests, vec!["TestParser"]);
}

#[test]
fn incident1_infrastructure_failures_are_classified_and_credentials_scrubbed() {
    let f = analyse(&log("cdk-deploy.log"), None, &Options::default());
    assert_eq!(f.class, RootCauseClass::Infrastructure, "{}", f.summary);
    let everything = Options {
        max_lines: 40,
        ..Options::default()
    };
    let all = texts(&analyse(&log("cdk-deploy.log"), None, &everything));
    assert!(!all.contains("eyJhbGciOiJIUzI1NiJ9"), "{all}");
    assert!(!all.contains("wJalrXUtnFEMI"), "{all}");
}

#[test]
fn a_user_cause_wins_over_the_built_in_guess_and_is_named() {
    let causes = vec![Cause::new(
        "npm registry rate limit",
        r"npm ERR! code E429",
        RootCauseClass::Dependency,
        Some("retry the stage"),
    )
    .unwrap()];
    let text = "$ npm ci\nnpm ERR! code E429\nnpm ERR! 429 Too Many Requests - GET https://registry.npmjs.org/left-pad\nThe command \"npm ci\" exited with 1.\n";
    let f = analyse(
        &Log::from_text(text),
        None,
        &Options {
            causes: &causes,
            ..Options::default()
        },
    );
    assert_eq!(f.class, RootCauseClass::Dependency);
    assert_eq!(f.summary, "npm registry rate limit: retry the stage");
    assert_eq!(f.cause.as_ref().unwrap().line, 2);
}

#[test]
fn lines_the_green_build_also_had_come_after_the_new_ones() {
    let green = Log::from_text(
        "$ make\nwarning: deprecated thing used\nerror: flaky thing we always print\nbuild ok\n",
    );
    let failed = Log::from_text(
        "$ make\nwarning: deprecated thing used\nerror: flaky thing we always print\nsrc/a.c:12:5: error: 'x' undeclared\nmake: *** [Makefile:3: all] Error 1\nThe command \"make\" exited with 2.\n",
    );
    let f = analyse(&failed, Some(&green), &Options::default());
    assert_eq!(f.class, RootCauseClass::Compile);
    assert_eq!(f.excerpt[0].text, "src/a.c:12:5: error: 'x' undeclared");
    let shared = f
        .excerpt
        .iter()
        .position(|l| l.text.contains("flaky"))
        .unwrap();
    assert!(shared > 0, "the shared error line is not first");
    assert!(
        matches!(f.comparison, Comparison::Compared { new_lines: 3, .. }),
        "{:?}",
        f.comparison
    );
}

#[test]
fn never_nothing_and_always_bounded() {
    let f = analyse(&Log::from_text("all good\n"), None, &Options::default());
    assert_eq!(f.class, RootCauseClass::Unknown);
    assert_eq!(
        f.excerpt.len(),
        1,
        "the last lines stand in when nothing is telling"
    );
    let huge: String = (0..10_000)
        .map(|i| format!("ERROR {i} {}\n", "x".repeat(1000)))
        .collect();
    let f = analyse(&Log::from_text(&huge), None, &Options::default());
    assert_eq!(f.excerpt.len(), 40);
    assert!(f.excerpt.iter().all(|l| l.text.chars().count() <= 300));
    assert!(analyse(&Log::from_text(""), None, &Options::default())
        .excerpt
        .is_empty());
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

// ---- the corpora ------------------------------------------------------------------------

/// Reason lines (`E a-b`) of a cidiff-format groundtruth file.
fn reasons(groundtruth: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for line in groundtruth.lines().skip(1) {
        let Some(range) = line.strip_prefix("E ") else {
            continue;
        };
        let (a, b) = range
            .trim()
            .split_once('-')
            .unwrap_or((range.trim(), range.trim()));
        out.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
    }
    out
}

struct CorpusResult {
    logs: usize,
    hits: usize,
    misses: Vec<String>,
    severe_wrong: Vec<String>,
}

fn run_corpus(dir: &str) -> CorpusResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    let mut result = CorpusResult {
        logs: 0,
        hits: 0,
        misses: Vec::new(),
        severe_wrong: Vec::new(),
    };
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    for case in cases.iter().filter(|c| c.join("fail.log").exists()) {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let read =
            |f: &str| String::from_utf8_lossy(&std::fs::read(case.join(f)).unwrap()).into_owned();
        let failed = Log::from_text(&read("fail.log"));
        let green = case
            .join("pass.log")
            .exists()
            .then(|| Log::from_text(&read("pass.log")));
        let expected = case
            .join("meta.toml")
            .exists()
            .then(|| read("meta.toml"))
            .and_then(|m| {
                m.lines().find_map(|l| {
                    l.strip_prefix("class = ")
                        .map(|v| v.trim().trim_matches('"').to_string())
                })
            });
        let f = analyse(&failed, green.as_ref(), &Options::default());
        assert!(f.excerpt.len() <= 40, "{name}: {} lines", f.excerpt.len());
        let wanted = reasons(&read("groundtruth"));
        result.logs += 1;
        if f.excerpt.iter().any(|l| wanted.contains(&l.line)) {
            result.hits += 1;
        } else {
            result.misses.push(format!("{name} ({})", f.class.as_str()));
        }
        let severe = matches!(
            f.class,
            RootCauseClass::SecurityScan | RootCauseClass::Coverage
        );
        if severe && expected.as_deref() != Some(f.class.as_str()) {
            result
                .severe_wrong
                .push(format!("{name}: {} — {}", f.class.as_str(), f.summary));
        }
    }
    result
}

#[test]
fn the_cidiff_corpus_shows_a_reason_line_in_95_percent_of_logs_and_never_a_severe_class() {
    let r = run_corpus("fixtures/ci-logs/cidiff-breakages");
    assert!(r.logs >= 36);
    assert!(
        r.hits * 100 >= r.logs * 95,
        "{} of {}; missed: {:?}",
        r.hits,
        r.logs,
        r.misses
    );
    assert!(r.severe_wrong.is_empty(), "{:?}", r.severe_wrong);
}

#[test]
fn our_corpus_shows_a_reason_line_in_95_percent_of_logs_and_never_a_wrong_severe_class() {
    let r = run_corpus("fixtures/ci-logs/ours");
    assert!(r.logs >= 40, "{} logs", r.logs);
    assert!(
        r.hits * 100 >= r.logs * 95,
        "{} of {}; missed: {:?}",
        r.hits,
        r.logs,
        r.misses
    );
    assert!(r.severe_wrong.is_empty(), "{:?}", r.severe_wrong);
}
