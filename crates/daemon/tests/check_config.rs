//! `check-config` through the real binary: shipped configs and the broken-config suite.
//!
//! Every run starts the child with an empty environment plus exactly the variables the test
//! names, so results never depend on the caller's environment.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pipeline-responder");
const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
const BROKEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/broken");

/// The variables `config/pipeline-responder.toml` needs, with distinctive values.
const SHIPPED_VARS: [(&str, &str); 4] = [
    ("AWS_ACCOUNT_ID", "210987654321"),
    (
        "PIPELINE_RESPONDER_API_TOKEN",
        "api-token-SECRET-7f3a91-0123456789abcdef",
    ),
    (
        "PIPELINE_RESPONDER_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/210987654321/pipeline-responder-events",
    ),
    (
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T0000/B0000/webhook-SECRET-c4e2d8",
    ),
];

/// `pipeline-responder check-config --config <path>` with only `vars` in its environment.
fn check_config(path: &Path, vars: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(path)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

fn shipped(name: &str) -> PathBuf {
    Path::new(CONFIG_DIR).join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch file for this test run.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The error lines of a failed run, after checking the output's shape: exit 2, nothing on
/// stdout, a `<file>: invalid configuration (N error(s))` header, then N lines, each
/// `config: <path>: <message>`. Returns `(path, message)` pairs.
fn invalid(output: &Output, file: &Path) -> Vec<(String, String)> {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}: exit code; stdout:\n{stdout}\nstderr:\n{stderr}",
        file.display()
    );
    assert_eq!(stdout, "", "{}: nothing on stdout", file.display());
    let mut lines = stderr.lines();
    let header = lines.next().unwrap_or_default();
    let errors: Vec<&str> = lines.collect();
    assert_eq!(
        header,
        format!(
            "{}: invalid configuration ({} error(s))",
            file.display(),
            errors.len()
        ),
        "stderr:\n{stderr}"
    );
    assert!(!errors.is_empty(), "stderr:\n{stderr}");
    errors
        .iter()
        .map(|line| {
            let rest = line.strip_prefix("config: ").unwrap_or_else(|| {
                panic!("error line without `config: `: {line:?}\nstderr:\n{stderr}")
            });
            let (path, message) = rest
                .split_once(": ")
                .unwrap_or_else(|| panic!("error line without `<path>: `: {line:?}"));
            assert!(!message.trim().is_empty(), "empty message: {line:?}");
            (path.to_string(), message.to_string())
        })
        .collect()
}

// ----- the shipped configurations -------------------------------------------------------------

#[test]
fn shipped_config_is_valid_with_its_variables() {
    let path = shipped("pipeline-responder.toml");
    let output = check_config(&path, &SHIPPED_VARS);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stderr, "");
    assert!(
        stdout.starts_with(&format!(
            "{}: valid — 3 environment(s): test (kiro-pipeline-test), staging (kiro-pipeline-staging), production (kiro-pipeline-production); store embedded",
            path.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("sources: sqs watcher"), "{stdout}");
    assert!(stdout.contains("notifiers: slack sns"), "{stdout}");
    assert!(
        !stdout.contains("SECRET"),
        "a secret reached stdout: {stdout}"
    );
}

#[test]
fn local_config_is_valid_without_any_variable() {
    let path = shipped("local.toml");
    let output = check_config(&path, &[]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stderr, "");
    assert!(
        stdout.contains("3 environment(s): test (kiro-pipeline-test), staging (kiro-pipeline-staging), production (kiro-pipeline-production)"),
        "{stdout}"
    );
}

#[test]
fn config_file_can_come_from_pipeline_responder_config() {
    let output = Command::new(BIN)
        .arg("check-config")
        .env_clear()
        .env("PIPELINE_RESPONDER_CONFIG", shipped("local.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("local.toml: valid"));
}

#[test]
fn shipped_config_without_its_variables_names_each_one() {
    let path = shipped("pipeline-responder.toml");
    let errors = invalid(&check_config(&path, &[]), &path);
    let expected = [
        ("aws.account_id", "AWS_ACCOUNT_ID"),
        ("http.api_token", "PIPELINE_RESPONDER_API_TOKEN"),
        ("sources.sqs.queue_url", "PIPELINE_RESPONDER_QUEUE_URL"),
        ("notifiers.slack.webhook_url", "SLACK_WEBHOOK_URL"),
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for ((path, message), (want_path, var)) in errors.iter().zip(expected) {
        assert_eq!(path, want_path);
        assert!(
            message.starts_with(&format!("environment variable {var} is not set;")),
            "{message}"
        );
    }

    // With all but one set, exactly that one is named.
    let path = shipped("pipeline-responder.toml");
    let errors = invalid(&check_config(&path, &SHIPPED_VARS[..3]), &path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, "notifiers.slack.webhook_url");
    assert!(errors[0].1.contains("SLACK_WEBHOOK_URL"));
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-dir/pipeline-responder.toml");
    let errors = invalid(&check_config(&path, &[]), &path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (error_path, message) = &errors[0];
    assert_eq!(error_path, &path.display().to_string());
    assert!(
        message.starts_with("cannot read the configuration file ("),
        "{message}"
    );
    assert!(message.contains("--config FILE"), "{message}");
}

#[test]
fn secrets_are_not_printed_in_errors() {
    let path = scratch(
        "secret-in-error.toml",
        r##"
[aws]
account_id = "123456789012"
[sources.sqs]
enabled = false
[notifiers.slack]
webhook_url = "${SLACK_WEBHOOK_URL}"
[[environments]]
name = "production"
"##,
    );
    let webhook = "hooks.slack.com/services/T0/B0/webhook-SECRET-no-scheme";
    let output = check_config(&path, &[("SLACK_WEBHOOK_URL", webhook)]);
    let errors = invalid(&output, &path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, "notifiers.slack.webhook_url");
    assert!(!text(&output.stderr).contains("SECRET"), "{errors:#?}");
}

// ----- broken configurations --------------------------------------------------------------------

/// Each file under `tests/data/broken/` holds one deliberate mistake and names, on its first
/// line (`# expect: <toml.path>`), the path the one error must carry. Adding a file adds a case.
#[test]
fn each_broken_config_fails_with_one_error_at_its_path() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(BROKEN_DIR)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 24,
        "only {} broken configs in {BROKEN_DIR}",
        files.len()
    );

    let mut failures = Vec::new();
    for file in &files {
        let contents = std::fs::read_to_string(file).unwrap();
        let expect = contents
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .map(str::trim)
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line must be `# expect: <toml.path>`",
                    file.display()
                )
            });
        // Empty environment: every `${VAR}` in these files is unset, on purpose where it matters
        // (unset_secret_variable.toml).
        let output = check_config(file, &[]);
        let errors = invalid(&output, file);
        let [(path, message)] = errors.as_slice() else {
            failures.push(format!(
                "{}: expected exactly one error (at {expect}), got {}:\n{}",
                file.display(),
                errors.len(),
                text(&output.stderr)
            ));
            continue;
        };
        // A TOML syntax error is located by position: `# expect: line 10` matches
        // `line 10, column 19`.
        let matches = path == expect
            || (expect.starts_with("line ") && path.starts_with(&format!("{expect},")));
        if !matches {
            failures.push(format!(
                "{}: expected the error at {expect}, got {path}: {message}",
                file.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} broken configs failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn four_mistakes_in_four_sections_are_all_printed() {
    let path = scratch(
        "four-mistakes.toml",
        r##"
[aws]
account_id = "123456789012"

[http]
listen = "0.0.0.0:9090"
api_token = "${PIPELINE_RESPONDER_API_TOKEN"

[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/pipeline-responder-events"
wait_time_secs = 30

[[environments]]
name = "staging"

[[environments]]
name = "production"
healthcheck_url = "https://app.example.com/health"

[policies.security_scan_failure]
severity = "high"
escalation = [
  { level = "L1", after_secs = 0 },
  { level = "L4", after_secs = 0 },
]
"##,
    );
    let errors = invalid(&check_config(&path, &[]), &path);
    let mut paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "environments[1].healthcheck_url",
            "http.api_token",
            "policies.security_scan_failure.escalation[1].level",
            "sources.sqs.wait_time_secs",
        ],
        "{errors:#?}"
    );
}
