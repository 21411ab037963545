//! No configured secret reaches a post, a log line, a metric or an API answer (issue 14): the
//! daemon's own API token, Slack bot token and signing secret (values no built-in pattern
//! knows) are written by a hostile build into its log lines, its failing command and its
//! commit message, and by an operator into an acknowledgement's `by`. Each is redacted at the
//! one boundary every stored, posted and served string passes.
#![allow(clippy::unwrap_used)]

use super::common::create_queues;
use crate::support::{
    fake_endpoints, kiro_event, seed_failed_build_lines, send_body, temp_dir, Daemon, Setup,
};
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use std::time::Duration;

/// Configured secrets that look like nothing in particular (so only the configured-secret
/// redaction can catch them).
const API_TOKEN: &str = "Zq8vNw3RtY6pLk2HsD9fGj4MxC7bVe1A";
const BOT_TOKEN: &str = "xoxb-7731-Qh5TzW2nRk9LmV4cXp8J";
const SIGNING_SECRET: &str = "3f9a1c7e5b2d8046af13ce97b5d20e68";
const KEY: &str =
    "pipeline_execution_failure/kiro-pipeline-production/12345678-1234-5678-abcd-12345678abcd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_secrets_written_into_logs_commits_and_the_api_are_never_shown() {
    let moto = Moto::start().await;
    let slack = SlackFake::start_with_token(BOT_TOKEN).await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-secrets", 5).await;
    let lines: Vec<String> = [
        "[Container] 2026/12/03 10:00:01 Running command npm test".to_string(),
        format!("Using API token {API_TOKEN} for the smoke test"),
        format!("FAIL src/auth.test.js (token {BOT_TOKEN})"),
        format!("  ● auth › signs requests with {SIGNING_SECRET}"),
        format!("    Error: expected signature for secret={SIGNING_SECRET} to match"),
        format!("npm ERR! Test failed. See above; api_token={API_TOKEN}"),
        "[Container] 2026/12/03 10:00:09 Command did not exit successfully npm test exit status 1"
            .to_string(),
    ]
    .into();
    seed_failed_build_lines(
        &codepipeline,
        &moto,
        &lines,
        &format!("npm test -- --token {API_TOKEN}"),
        &format!("fix: rotate {BOT_TOKEN} and {SIGNING_SECRET}"),
    )
    .await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [
        cp,
        cw,
        ("TEST_API_TOKEN", API_TOKEN.to_string()),
        ("TEST_SLACK_TOKEN", BOT_TOKEN.to_string()),
        ("TEST_SLACK_API", slack.api_base_url()),
        ("TEST_SLACK_SIGNING", SIGNING_SECRET.to_string()),
    ];
    let setup = Setup {
        env: &env,
        daemon_extra: "first_post_wait_secs = 10",
        slack_extra: "bot_token = \"${TEST_SLACK_TOKEN}\"\napi_base_url = \"${TEST_SLACK_API}\"\nsigning_secret = \"${TEST_SLACK_SIGNING}\"",
        ..Setup::default()
    };
    let daemon = Daemon::launch(
        &moto,
        &slack,
        &queues.url,
        temp_dir("faults-secrets"),
        &setup,
    )
    .await;
    let base = format!("http://{}", daemon.http_addr().await);
    send_body(
        &moto,
        &queues.url,
        &kiro_event("codepipeline-pipeline-failed.json", "evt-secrets", |_| {}),
    )
    .await;
    let first = slack.wait_for_accepted(1, Duration::from_secs(60)).await;
    assert!(!first.is_empty(), "no post: {}", daemon.log());
    let http = reqwest::Client::new();
    let acked = http
        .post(format!("{base}/api/v1/incidents/{}/ack", urlencode(KEY)))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({"by": format!("alice (token {API_TOKEN})")}))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200, "{}", acked.text().await.unwrap());
    // The diagnosis (the log lines, the command, the commit) is in the stored incident.
    let mut answers = Vec::new();
    for path in [
        format!("/api/v1/incidents/{}", urlencode(KEY)),
        format!("/api/v1/incidents/{}/report", urlencode(KEY)),
        "/api/v1/incidents?status=all".to_string(),
    ] {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        answers.push((path, response.text().await.unwrap()));
    }
    let report = &answers[1].1;
    assert!(
        report.contains("auth") && report.contains("alice"),
        "the report shows the diagnosis and the ack: {report}"
    );
    assert!(report.contains("[REDACTED]"), "{report}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    answers.push(("/metrics".into(), metrics));
    for post in slack.posts() {
        answers.push(("a Slack post".into(), post.body.to_string()));
    }
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    answers.push(("the daemon's log".into(), log));
    for (place, text) in &answers {
        for secret in [API_TOKEN, BOT_TOKEN, SIGNING_SECRET] {
            assert!(!text.contains(secret), "{secret} in {place}: {text}");
        }
    }
}

fn urlencode(s: &str) -> String {
    s.replace('/', "%2F")
}
