//! The runbook's hands end to end: Approve / Reject / Retry failed stage / Stop and restart from
//! signed Slack interactions and from the CLI, through the real `pipeline-responder run`, the
//! CodePipeline fake (approval tokens, stop, start, retry) and the Slack fake (`views.open`,
//! `usergroups.users.list`, `response_url`): the guards, the audit in the timeline, report and
//! metrics, and one AWS call per click across replays, double clicks and replicas.
#![allow(clippy::unwrap_used)]

use crate::replicas::{create_table, DYNAMODB_STORE};
use crate::runbook::{approval_event, PRODUCTION_EXECUTION};
use crate::support::*;
use chrono::{DateTime, Utc};
use pipeline_responder_e2e::{
    ActionModel, CloudWatchFake, CodePipelineFake, ExecutionModel, Moto, PipelineModel,
    RevisionModel, SlackEndpoint, SlackFake, SlackPost, StageModel,
};
use serde_json::{json, Value};
use std::time::Duration;

const SIGNING: &str = "slack-signing-secret-for-actions";
const API_TOKEN: &str = "daemon-api-token-0123456789abcdef0123";
const TOKEN: &str = "0f1e2d3c-approval-token";
const WAIT: Duration = Duration::from_secs(30);

/// Staging and production with their lists; Alice and the S_LEADS group approve in production
/// (two of them must), operators are Alice and the CLI name `alice`.
const GUARDED: &str = r#"[[environments]]
name = "staging"
[[environments]]
name = "production"
approvers = ["U_ALICE", "S_LEADS", "alice"]
operators = ["U_ALICE", "alice"]
[remediation]
enabled = true
restart_stuck_executions = true
max_per_pipeline_per_day = 1
"#;

fn minutes_ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(minutes)
}

/// Everything an action scenario runs against.
struct World {
    moto: Moto,
    slack: SlackFake,
    queues: Queues,
    codepipeline: CodePipelineFake,
    cloudwatch: CloudWatchFake,
}

impl World {
    async fn start(name: &str) -> World {
        let moto = Moto::start().await;
        let slack = SlackFake::start().await;
        slack.set_usergroup("S_LEADS", &["U_BOB", "U_CAROL"]);
        let queues = create_queues(&moto, &format!("actions-{name}"), 30).await;
        World {
            moto,
            slack,
            queues,
            codepipeline: CodePipelineFake::start().await,
            cloudwatch: CloudWatchFake::start().await,
        }
    }

    fn env(&self, replica: usize) -> Vec<(&'static str, String)> {
        let mut env = fake_endpoints(&self.codepipeline, &self.cloudwatch).to_vec();
        env.extend([
            ("TEST_API_TOKEN", API_TOKEN.to_string()),
            ("TEST_SLACK_SIGNING", SIGNING.to_string()),
            ("TEST_SLACK_TOKEN", self.slack.bot_token().to_string()),
            ("TEST_SLACK_API", self.slack.api_base_url()),
            (
                "PIPELINE_RESPONDER_REPLICA_ID",
                format!("replica-{replica}"),
            ),
        ]);
        env
    }

    fn setup<'a>(&self, env: &'a [(&'a str, String)], extra: Extra<'a>) -> Setup<'a> {
        Setup {
            env,
            watcher: extra.watcher,
            daemon_extra: extra.daemon,
            environments: GUARDED,
            slack_extra: "bot_token = \"${TEST_SLACK_TOKEN}\"\napi_base_url = \"${TEST_SLACK_API}\"\nsigning_secret = \"${TEST_SLACK_SIGNING}\"",
            store: extra.store,
            ..Setup::default()
        }
    }

    async fn daemon(&self, name: &str, extra: Extra<'_>) -> Daemon {
        let env = self.env(0);
        let setup = self.setup(&env, extra);
        Daemon::launch(
            &self.moto,
            &self.slack,
            &self.queues.url,
            temp_dir(&format!("actions-{name}")),
            &setup,
        )
        .await
    }

    /// The first Web API post whose text has `needle`.
    async fn post_with(&self, daemon: &Daemon, needle: &str) -> SlackPost {
        let found = eventually(WAIT, || async {
            self.slack
                .accepted()
                .iter()
                .any(|p| p.endpoint == SlackEndpoint::PostMessage && has(p, needle))
        })
        .await;
        assert!(found, "no post with {needle:?}; log:\n{}", daemon.log());
        self.slack
            .accepted()
            .into_iter()
            .find(|p| p.endpoint == SlackEndpoint::PostMessage && has(p, needle))
            .unwrap()
    }

    /// Waits for the ephemeral answer to the click `trigger` (its `response_url`) that has
    /// `needle`; returns it.
    async fn answer(&self, daemon: &Daemon, trigger: &str, needle: &str) -> String {
        let found = eventually(WAIT, || async {
            self.slack
                .responses(trigger)
                .iter()
                .any(|t| t.contains(needle))
        })
        .await;
        assert!(
            found,
            "no answer with {needle:?} to {trigger}; answers: {:?}\nlog:\n{}",
            self.slack.responses(trigger),
            daemon.log()
        );
        self.slack
            .responses(trigger)
            .into_iter()
            .find(|t| t.contains(needle))
            .unwrap()
    }

    /// Runs `pipeline-responder <args> --api <base>` with the daemon's configuration.
    async fn cli(
        &self,
        dir: &str,
        extra: Extra<'_>,
        base: &str,
        args: &[&str],
    ) -> std::process::Output {
        let env = self.env(0);
        let setup = self.setup(&env, extra);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--api", base]);
        Daemon::one_off(
            &self.moto,
            &self.slack,
            &self.queues.url,
            &temp_dir(dir),
            &setup,
            &all,
        )
        .await
    }

    /// The incident as the API shows it (incident and timeline) and its report.
    async fn audit(&self, base: &str, key: &str) -> (Value, String) {
        let http = reqwest::Client::new();
        let id = key.replace('/', "%2F");
        let show: Value = http
            .get(format!("{base}/api/v1/incidents/{id}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let report = http
            .get(format!("{base}/api/v1/incidents/{id}/report"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (show, report)
    }
}

#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    watcher: bool,
    daemon: &'a str,
    store: &'a str,
}

fn has(post: &SlackPost, needle: &str) -> bool {
    post.text().is_some_and(|t| t.contains(needle))
}

/// The button `action_id` of a post, if it has one.
fn button(post: &SlackPost, action_id: &str) -> Option<Value> {
    post.blocks().iter().find_map(|b| {
        b["elements"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x["action_id"] == action_id).cloned())
    })
}

/// A signed interaction request: (form body, timestamp, signature).
fn signed(payload: &Value) -> (String, String, String) {
    let ts = Utc::now().timestamp().to_string();
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let signature = slack_signature(SIGNING, &ts, &body);
    (body, ts, signature)
}

/// Delivers a signed interaction to the daemon at `base`; the status it answered.
async fn deliver(base: &str, payload: &Value) -> u16 {
    let (body, ts, signature) = signed(payload);
    let response = reqwest::Client::new()
        .post(format!("{base}/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// A click on button `action` of incident `key` by `user`; `trigger` names the interaction
/// (Slack's retry of it carries the same), its `response_url` is the fake's `/response/<trigger>`.
fn click(slack: &SlackFake, user: &str, action: &str, key: &str, trigger: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase()},
        "trigger_id": trigger,
        "response_url": slack.response_url(trigger),
        "actions": [{"type": "button", "action_id": action, "value": key,
                     "action_ts": Utc::now().timestamp().to_string()}],
    })
}

/// Production waiting at ProductionEnv › ApproveProduction with approval `token`.
fn approval_pipeline(codepipeline: &CodePipelineFake, token: &str) {
    let mut run = ExecutionModel::new(PRODUCTION_EXECUTION, "InProgress", minutes_ago(20));
    run.revisions.push(RevisionModel {
        action_name: "Source".into(),
        artifact_name: "SourceArtifact".into(),
        revision_id: "4f2a9e1b7c3d".into(),
        revision_summary: Some("feat: per-tenant rate limits".into()),
        revision_url: None,
        created: minutes_ago(21),
    });
    let mut approve = ActionModel::new("ApproveProduction", "InProgress", minutes_ago(2));
    if let Some(latest) = approve.latest.as_mut() {
        latest.token = Some(token.into());
    }
    codepipeline.set_pipeline(
        PipelineModel::new("kiro-pipeline-production", minutes_ago(600))
            .with_stage(
                StageModel::new("Source")
                    .with_action(ActionModel::new("Source", "Succeeded", minutes_ago(19)))
                    .ran(PRODUCTION_EXECUTION, "Succeeded"),
            )
            .with_stage(
                StageModel::new("ProductionEnv")
                    .with_action(approve)
                    .ran(PRODUCTION_EXECUTION, "InProgress"),
            )
            .with_execution(run),
    );
}

/// The approval's state in the fake: `status` and `token` of its latest run.
fn set_approval(codepipeline: &CodePipelineFake, status: &str, token: Option<&str>) {
    codepipeline.update_pipeline("kiro-pipeline-production", |p| {
        let latest = p
            .action_mut("ProductionEnv", "ApproveProduction")
            .and_then(|a| a.latest.as_mut())
            .unwrap();
        latest.status = status.into();
        latest.token = token.map(String::from);
    });
}

fn timeline(show: &Value) -> Vec<String> {
    show["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str().map(String::from))
        .collect()
}

async fn metrics(base: &str) -> String {
    get(&format!("{base}/metrics")).await.1
}

const ACTIONS_TOTAL: &str = "pipeline_responder_actions_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_approval_needs_two_approvers_refuses_others_and_acts_once() {
    let w = World::start("approve").await;
    approval_pipeline(&w.codepipeline, TOKEN);
    let daemon = w.daemon("approve", Extra::default()).await;
    let base = format!("http://{}", daemon.http_addr().await);
    send_body(
        &w.moto,
        &w.queues.url,
        &approval_event("STARTED", "evt-act-approve"),
    )
    .await;
    let post = w.post_with(&daemon, "Production approval waiting").await;
    let approve = button(&post, "approve").expect("the approval post has Approve");
    let reject = button(&post, "reject").expect("the approval post has Reject");
    let key = approve["value"].as_str().unwrap().to_string();
    let confirm = approve["confirm"]["text"]["text"].as_str().unwrap();
    for needle in [
        "ProductionEnv/ApproveProduction",
        "kiro-pipeline-production",
        "a9f0c1d2",
        "4f2a9e1",
    ] {
        assert!(confirm.contains(needle), "{needle:?} not in {confirm:?}");
    }
    assert_eq!(reject["style"], "danger");
    assert!(
        reject.get("confirm").is_none(),
        "Reject asks in a modal instead"
    );

    // Not on the list: refused, told why, nothing sent.
    assert_eq!(
        deliver(
            &base,
            &click(&w.slack, "U_MALLORY", "approve", &key, "t-mallory")
        )
        .await,
        200
    );
    w.answer(
        &daemon,
        "t-mallory",
        "not one of the production environment's approvers",
    )
    .await;
    // The first approver alone does not approve; the same person again does not count twice.
    deliver(
        &base,
        &click(&w.slack, "U_ALICE", "approve", &key, "t-alice-1"),
    )
    .await;
    w.answer(&daemon, "t-alice-1", "1 of 2 approvals").await;
    deliver(
        &base,
        &click(&w.slack, "U_ALICE", "approve", &key, "t-alice-2"),
    )
    .await;
    w.answer(&daemon, "t-alice-2", "already approved").await;
    assert_eq!(w.codepipeline.call_count("PutApprovalResult"), 0);

    // Bob, a member of the S_LEADS group, is the second: his click, delivered twice at once
    // (Slack retries an interaction it thinks was not answered), approves once.
    let bob = click(&w.slack, "U_BOB", "approve", &key, "t-bob");
    let (a, b) = tokio::join!(deliver(&base, &bob), deliver(&base, &bob));
    assert_eq!((a, b), (200, 200));
    w.answer(&daemon, "t-bob", "Done: approved by U_BOB").await;
    let calls = w.codepipeline.calls_to("PutApprovalResult");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let sent = &calls[0].request;
    assert_eq!(sent["token"], TOKEN);
    assert_eq!(sent["stageName"], "ProductionEnv");
    assert_eq!(sent["result"]["status"], "Approved");
    let summary = sent["result"]["summary"].as_str().unwrap();
    assert!(summary.contains("U_ALICE, U_BOB"), "{summary}");
    assert!(
        slack_posted(&w.slack, "✅ Resolved", WAIT).await,
        "{}",
        daemon.log()
    );
    assert_eq!(
        w.slack.responses("t-bob").len(),
        1,
        "the replay answered twice"
    );
    assert_eq!(w.codepipeline.call_count("PutApprovalResult"), 1);

    let (show, report) = w.audit(&base, &key).await;
    assert_eq!(show["incident"]["status"], "resolved", "{show}");
    let resolution = show["incident"]["resolution"].as_str().unwrap();
    assert!(resolution.contains("approved by U_BOB"), "{resolution}");
    let lines = timeline(&show).join("\n");
    for needle in [
        "approve by U_MALLORY refused",
        "approval by U_ALICE counted",
        "U_ALICE already approved",
        "approved by U_BOB",
    ] {
        assert!(
            lines.contains(needle),
            "{needle:?} not in the timeline:\n{lines}"
        );
        assert!(
            report.contains(needle),
            "{needle:?} not in the report:\n{report}"
        );
    }
    let text = metrics(&base).await;
    let count = |outcome| {
        metric(
            &text,
            ACTIONS_TOTAL,
            &[("action", "approve"), ("outcome", outcome)],
        )
    };
    assert_eq!(count("done"), 1.0, "{text}");
    assert_eq!(count("vote"), 1.0);
    assert_eq!(count("refused"), 2.0);
    assert_eq!(count("duplicate"), 1.0);
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_approval_is_refused_and_a_reject_asks_its_reason_in_a_modal() {
    let w = World::start("reject").await;
    approval_pipeline(&w.codepipeline, TOKEN);
    let daemon = w.daemon("reject", Extra::default()).await;
    let base = format!("http://{}", daemon.http_addr().await);
    send_body(
        &w.moto,
        &w.queues.url,
        &approval_event("STARTED", "evt-act-reject"),
    )
    .await;
    let post = w.post_with(&daemon, "Production approval waiting").await;
    let key = button(&post, "reject").unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();

    // The approval expired (CodePipeline fails it after 7 days): the token is no longer
    // current, and the CLI's approve says so and sends nothing.
    set_approval(&w.codepipeline, "Failed", None);
    let out = w
        .cli(
            "actions-reject-cli",
            Extra::default(),
            &base,
            &["approve", &key, "--by", "alice"],
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no longer waiting for approval"),
        "{stderr}"
    );
    assert_eq!(w.codepipeline.call_count("PutApprovalResult"), 0);

    // The stage is retried and waits again, with a new token.
    set_approval(
        &w.codepipeline,
        "InProgress",
        Some("1a2b3c4d-new-approval-token"),
    );
    let out = w
        .cli(
            "actions-reject-cli",
            Extra::default(),
            &base,
            &["reject", &key, "--by", "alice"],
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a reason is required"), "{stderr}");

    // Reject from Slack: the click opens a modal that names what is rejected.
    deliver(
        &base,
        &click(&w.slack, "U_ALICE", "reject", &key, "t-reject"),
    )
    .await;
    let opened = w
        .slack
        .wait_for(SlackEndpoint::ViewsOpen, WAIT, |p| p.is_accepted())
        .await;
    assert_eq!(opened.body["trigger_id"], "t-reject");
    let view = &opened.body["view"];
    assert_eq!(view["callback_id"], "reject");
    assert!(
        view.to_string()
            .contains("Reject ProductionEnv/ApproveProduction of kiro-pipeline-production"),
        "{view}"
    );
    assert_eq!(
        w.codepipeline.call_count("PutApprovalResult"),
        0,
        "a click alone rejects nothing"
    );
    let reason = "staging shows 5xx on /checkout";
    let submission = json!({
        "type": "view_submission",
        "user": {"id": "U_ALICE"},
        "trigger_id": "t-reject-submit",
        "view": {
            "id": "V00000001",
            "callback_id": "reject",
            "private_metadata": view["private_metadata"],
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}},
        },
    });
    assert_eq!(deliver(&base, &submission).await, 200);
    w.answer(&daemon, "t-reject", "Done: rejected by U_ALICE")
        .await;
    let calls = w.codepipeline.calls_to("PutApprovalResult");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].request["token"], "1a2b3c4d-new-approval-token");
    assert_eq!(calls[0].request["result"]["status"], "Rejected");
    let summary = calls[0].request["result"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(reason) && summary.contains("U_ALICE"),
        "{summary}"
    );

    let (show, report) = w.audit(&base, &key).await;
    assert_eq!(show["incident"]["status"], "resolved", "{show}");
    let lines = timeline(&show).join("\n");
    for needle in [
        "approve by alice refused: ProductionEnv/ApproveProduction is no longer waiting",
        "reject by alice refused: a reason is required",
        "rejected by U_ALICE: staging shows 5xx on /checkout",
    ] {
        assert!(
            lines.contains(needle),
            "{needle:?} not in the timeline:\n{lines}"
        );
        assert!(
            report.contains(needle),
            "{needle:?} not in the report:\n{report}"
        );
    }
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

/// A build that failed on AWS throttling: transient, so "Retry failed stage" is offered.
async fn seed_throttled_build(w: &World) {
    let lines: Vec<String> = [
        "[Container] 2026/12/05 10:00:01 Running command npx cdk deploy --require-approval never",
        "KiroWorkerStack: deploying...",
        "KiroWorkerStack | 0/12 | 10:00:09 | UPDATE_IN_PROGRESS | AWS::Lambda::Function | Worker",
        "An error occurred (ThrottlingException) when calling the UpdateFunctionConfiguration operation (reached max retries: 4): Rate exceeded",
        "[Container] 2026/12/05 10:00:31 Command did not exit successfully npx cdk deploy --require-approval never exit status 1",
        "[Container] 2026/12/05 10:00:31 Phase complete: BUILD State: FAILED",
    ]
    .iter()
    .map(|l| l.to_string())
    .collect();
    seed_failed_build_lines(
        &w.codepipeline,
        &w.moto,
        &lines,
        "npx cdk deploy --require-approval never",
        "feat: worker concurrency",
    )
    .await;
}

fn failure_event(id: &str) -> String {
    kiro_event("codepipeline-pipeline-failed.json", id, |e| {
        e["detail"]["execution-id"] = json!(EXECUTION);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_stage_is_retried_once_across_two_replicas_replays_and_double_clicks() {
    let w = World::start("retry").await;
    seed_throttled_build(&w).await;
    let envs = [w.env(0), w.env(1)];
    let extra = Extra {
        store: DYNAMODB_STORE,
        ..Extra::default()
    };
    let setups = [w.setup(&envs[0], extra), w.setup(&envs[1], extra)];
    create_table(&w.moto, &w.slack, &w.queues.url, &setups[0]).await;
    let mut replicas = Vec::new();
    for (n, setup) in setups.iter().enumerate() {
        let dir = temp_dir(&format!("actions-retry-{n}"));
        replicas.push(Daemon::launch(&w.moto, &w.slack, &w.queues.url, dir, setup).await);
    }
    let bases = [
        format!("http://{}", replicas[0].http_addr().await),
        format!("http://{}", replicas[1].http_addr().await),
    ];
    send_body(&w.moto, &w.queues.url, &failure_event("evt-act-retry")).await;
    let offered = eventually(WAIT, || async {
        w.slack
            .accepted()
            .iter()
            .any(|p| button(p, "retry").is_some())
    })
    .await;
    assert!(
        offered,
        "no post offers a retry; log:\n{}",
        replicas[0].log()
    );
    let post = w
        .slack
        .accepted()
        .into_iter()
        .find(|p| button(p, "retry").is_some())
        .unwrap();
    assert!(has(&post, "AWS throttling"), "{:?}", post.text());
    let retry = button(&post, "retry").unwrap();
    assert!(
        button(&post, "start").is_some(),
        "a failure offers a new execution too"
    );
    let confirm = retry["confirm"]["text"]["text"].as_str().unwrap();
    assert!(
        confirm.contains("Retry the failed actions of stage Build of kiro-pipeline-production execution 12345678"),
        "{confirm}"
    );
    let key = retry["value"].as_str().unwrap().to_string();

    // One click reaches both replicas (and Slack retries it): one retry.
    let first = click(&w.slack, "U_ALICE", "retry", &key, "t-retry-1");
    let (a, b, c) = tokio::join!(
        deliver(&bases[0], &first),
        deliver(&bases[1], &first),
        deliver(&bases[1], &first)
    );
    assert_eq!((a, b, c), (200, 200, 200));
    w.answer(
        &replicas[0],
        "t-retry-1",
        "Done: retried the failed stage by U_ALICE",
    )
    .await;
    // A second click on the same post: already done, nothing called again.
    deliver(
        &bases[0],
        &click(&w.slack, "U_ALICE", "retry", &key, "t-retry-2"),
    )
    .await;
    w.answer(&replicas[0], "t-retry-2", "already done").await;
    let calls = w.codepipeline.calls_to("RetryStageExecution");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].request["stageName"], "Build");
    assert_eq!(calls[0].request["pipelineExecutionId"], EXECUTION);
    assert_eq!(calls[0].request["retryMode"], "FAILED_ACTIONS");
    assert_eq!(w.slack.responses("t-retry-1").len(), 1);

    let (show, report) = w.audit(&bases[1], &key).await;
    let lines = timeline(&show).join("\n");
    for needle in [
        "retried the failed stage by U_ALICE",
        "retry by U_ALICE refused: already done",
    ] {
        assert!(
            lines.contains(needle),
            "{needle:?} not in the timeline:\n{lines}"
        );
        assert!(
            report.contains(needle),
            "{needle:?} not in the report:\n{report}"
        );
    }
    let mut done = 0.0;
    let mut duplicates = 0.0;
    for base in &bases {
        let text = metrics(base).await;
        done += metric(
            &text,
            ACTIONS_TOTAL,
            &[("action", "retry"), ("outcome", "done")],
        );
        duplicates += metric(
            &text,
            ACTIONS_TOTAL,
            &[("action", "retry"), ("outcome", "duplicate")],
        );
    }
    assert_eq!((done, duplicates), (1.0, 2.0));
    for replica in replicas {
        let (status, _, log) = replica.terminate().await;
        assert!(status.success(), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_offers_no_button_and_acts_on_nothing() {
    let w = World::start("dry-run").await;
    seed_throttled_build(&w).await;
    let extra = Extra {
        daemon: "dry_run = true",
        ..Extra::default()
    };
    let daemon = w.daemon("dry-run", extra).await;
    let base = format!("http://{}", daemon.http_addr().await);
    send_body(&w.moto, &w.queues.url, &failure_event("evt-act-dry")).await;
    let key = format!("pipeline_execution_failure/kiro-pipeline-production/{EXECUTION}");
    let known = eventually(WAIT, || async {
        let (show, _) = w.audit(&base, &key).await;
        show["incident"]["retryable"] == true
    })
    .await;
    assert!(
        known,
        "the incident was not diagnosed as transient: {}\nlog:\n{}",
        w.audit(&base, &key).await.0,
        daemon.log()
    );
    for action in ["retry", "start"] {
        let out = w
            .cli(
                "actions-dry-cli",
                extra,
                &base,
                &[action, &key, "--by", "alice"],
            )
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("dry-run: nothing is done"), "{stderr}");
    }
    assert_eq!(w.codepipeline.call_count("RetryStageExecution"), 0);
    assert_eq!(w.codepipeline.call_count("StartPipelineExecution"), 0);
    assert!(
        w.slack.accepted().is_empty(),
        "dry-run posted to Slack: {:?}",
        w.slack.accepted()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

const STUCK_EXECUTION: &str = "5e6f7a8b-0000-4c1d-9e2f-stuck0000001";

/// Production running `execution` at ProductionEnv › DeployProduction for 70 minutes.
fn stuck_pipeline(codepipeline: &CodePipelineFake) {
    let mut run = ExecutionModel::new(STUCK_EXECUTION, "InProgress", minutes_ago(70));
    run.revisions.push(RevisionModel {
        action_name: "Source".into(),
        artifact_name: "SourceArtifact".into(),
        revision_id: "7b3e9d2a1c0f".into(),
        revision_summary: Some("perf: parallel integration tests".into()),
        revision_url: None,
        created: minutes_ago(70),
    });
    codepipeline.set_pipeline(
        PipelineModel::new("kiro-pipeline-production", minutes_ago(600))
            .with_stage(
                StageModel::new("Source")
                    .with_action(ActionModel::new("Source", "Succeeded", minutes_ago(69)))
                    .ran(STUCK_EXECUTION, "Succeeded"),
            )
            .with_stage(
                StageModel::new("ProductionEnv")
                    .with_action(ActionModel::new(
                        "DeployProduction",
                        "InProgress",
                        minutes_ago(48),
                    ))
                    .ran(STUCK_EXECUTION, "InProgress"),
            )
            .with_execution(run),
    );
}

/// The posts that offer a restart, by incident key.
fn restart_offers(slack: &SlackFake) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for post in slack.accepted() {
        if let Some(b) = button(&post, "restart") {
            let key = b["value"].as_str().unwrap().to_string();
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, b));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_execution_is_stopped_and_restarted_within_the_daily_limit() {
    let w = World::start("restart").await;
    stuck_pipeline(&w.codepipeline);
    let extra = Extra {
        watcher: true,
        ..Extra::default()
    };
    let daemon = w.daemon("restart", extra).await;
    let base = format!("http://{}", daemon.http_addr().await);
    let offered = eventually(WAIT, || async { !restart_offers(&w.slack).is_empty() }).await;
    assert!(offered, "no post offers a restart; log:\n{}", daemon.log());
    let (key, restart) = restart_offers(&w.slack).remove(0);
    let confirm = restart["confirm"]["text"]["text"].as_str().unwrap();
    assert!(
        confirm.contains("Stop kiro-pipeline-production execution 5e6f7a8b"),
        "{confirm}"
    );
    assert!(
        confirm.contains("7b3e9d2"),
        "the confirmation names the commit: {confirm}"
    );

    deliver(
        &base,
        &click(&w.slack, "U_ALICE", "restart", &key, "t-restart-1"),
    )
    .await;
    w.answer(
        &daemon,
        "t-restart-1",
        "Done: stopped and restarted the execution by U_ALICE",
    )
    .await;
    let stops = w.codepipeline.calls_to("StopPipelineExecution");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0].request["pipelineExecutionId"], STUCK_EXECUTION);
    let starts = w.codepipeline.calls_to("StartPipelineExecution");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(starts[0].request["clientRequestToken"].is_string());

    // The new execution gets stuck too: a second incident, and the day's one restart is used.
    w.codepipeline
        .update_pipeline("kiro-pipeline-production", |p| {
            if let Some(old) = p.execution_mut(STUCK_EXECUTION) {
                old.status = "Stopped".into();
            }
            let new = p.executions.last_mut().unwrap();
            new.start_time = minutes_ago(65);
        });
    let second = eventually(WAIT, || async { restart_offers(&w.slack).len() >= 2 }).await;
    assert!(
        second,
        "the new execution was not seen as stuck; log:\n{}",
        daemon.log()
    );
    let (second_key, _) = restart_offers(&w.slack).remove(1);
    assert_ne!(second_key, key);
    deliver(
        &base,
        &click(&w.slack, "U_ALICE", "restart", &second_key, "t-restart-2"),
    )
    .await;
    w.answer(&daemon, "t-restart-2", "max_per_pipeline_per_day")
        .await;
    assert_eq!(w.codepipeline.call_count("StopPipelineExecution"), 1);
    assert_eq!(w.codepipeline.call_count("StartPipelineExecution"), 1);

    let (show, report) = w.audit(&base, &key).await;
    let needle = "stopped and restarted the execution by U_ALICE";
    assert!(timeline(&show).join("\n").contains(needle), "{show}");
    assert!(report.contains(needle), "{report}");
    let (show, _) = w.audit(&base, &second_key).await;
    let lines = timeline(&show).join("\n");
    assert!(lines.contains("restart by U_ALICE refused"), "{lines}");
    let text = metrics(&base).await;
    let count = |outcome| {
        metric(
            &text,
            ACTIONS_TOTAL,
            &[("action", "restart"), ("outcome", outcome)],
        )
    };
    assert_eq!((count("done"), count("refused")), (1.0, 1.0), "{text}");
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
