//! SlackFake over plain HTTP, as the daemon's Slack notifier talks to it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pipeline_responder_e2e::{SlackEndpoint, SlackFake, SlackOutcome};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

async fn api(fake: &SlackFake, method: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/{method}", fake.api_base_url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn webhook(fake: &SlackFake, body: Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(fake.webhook_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn posts_thread_replies_updates_and_webhooks_are_recorded() {
    let fake = SlackFake::start().await;
    let token = Some(fake.bot_token());

    let (status, posted) = api(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "#deployments", "text": "Pipeline failed"}),
    )
    .await;
    assert_eq!((status, &posted["ok"]), (200, &json!(true)));
    let ts = posted["ts"].as_str().unwrap().to_owned();
    let (_, reply) = api(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "#deployments", "text": "diagnosis", "thread_ts": ts}),
    )
    .await;
    assert_ne!(reply["ts"], json!(ts), "every message gets its own ts");
    let (_, updated) = api(
        &fake,
        "chat.update",
        token,
        json!({"channel": "#deployments", "ts": ts, "text": "Resolved"}),
    )
    .await;
    assert_eq!((&updated["ok"], &updated["ts"]), (&json!(true), &json!(ts)));
    let (status, text) = webhook(&fake, json!({"text": "via webhook"})).await;
    assert_eq!((status, text.as_str()), (200, "ok"));

    let posts = fake.wait_for_accepted(4, WAIT).await;
    let endpoints: Vec<_> = posts.iter().map(|p| p.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            SlackEndpoint::PostMessage,
            SlackEndpoint::PostMessage,
            SlackEndpoint::Update,
            SlackEndpoint::Webhook
        ]
    );
    assert_eq!(posts[1].thread_ts(), Some(ts.as_str()));
    assert_eq!(posts[0].ts(), Some(ts.as_str()));
    assert_eq!(
        posts[0].authorization.as_deref(),
        Some("Bearer xoxb-pipeline-responder-test")
    );
    assert_eq!(posts[3].authorization, None);
    assert_eq!(posts[2].text(), Some("Resolved"));
}

#[tokio::test]
async fn rate_limits_and_outages_answer_like_slack() {
    let fake = SlackFake::start().await;
    fake.fail_next(1, 429, Some(7));
    fake.fail_next(1, 500, None);
    let message = json!({"channel": "#deployments", "text": "hello"});

    let response = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", fake.api_base_url()))
        .bearer_auth(fake.bot_token())
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "ratelimited"
    );
    let (status, _) = webhook(&fake, message.clone()).await;
    assert_eq!(status, 500);
    let (status, ok) = api(&fake, "chat.postMessage", Some(fake.bot_token()), message).await;
    assert_eq!((status, &ok["ok"]), (200, &json!(true)));

    let posts = fake.wait_for_posts(3, WAIT).await;
    assert_eq!(
        posts[0].outcome,
        SlackOutcome::Fault {
            status: 429,
            retry_after: Some(7)
        }
    );
    assert_eq!(
        posts[1].outcome,
        SlackOutcome::Fault {
            status: 500,
            retry_after: None
        }
    );
    assert!(posts[2].is_accepted());
    assert_eq!(fake.accepted().len(), 1);
}

#[tokio::test]
async fn web_api_refuses_missing_or_wrong_tokens() {
    let fake = SlackFake::start_with_token("xoxb-right").await;
    let message = json!({"channel": "#deployments", "text": "hello"});

    let (status, body) = api(
        &fake,
        "chat.postMessage",
        Some("xoxb-wrong"),
        message.clone(),
    )
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"ok": false, "error": "invalid_auth"}))
    );
    let (_, body) = api(&fake, "chat.postMessage", None, message.clone()).await;
    assert_eq!(body["error"], "not_authed");
    let (_, body) = api(&fake, "chat.postMessage", Some("xoxb-right"), message).await;
    assert_eq!(body["ok"], true);

    let outcomes: Vec<_> = fake.posts().into_iter().map(|p| p.outcome).collect();
    assert_eq!(
        outcomes[0],
        SlackOutcome::Rejected {
            error: "invalid_auth".into()
        }
    );
    assert_eq!(
        outcomes[1],
        SlackOutcome::Rejected {
            error: "not_authed".into()
        }
    );
}

#[tokio::test]
async fn slack_limits_are_enforced_and_recorded() {
    let fake = SlackFake::start().await;
    let token = Some(fake.bot_token());
    let section =
        |text: String| json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
    let too_many_blocks: Vec<Value> = (0..51).map(|n| section(format!("block {n}"))).collect();

    let (_, body) = api(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "#d", "text": "x".repeat(40_001)}),
    )
    .await;
    assert_eq!(body["error"], "msg_too_long");
    let (_, body) = api(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "#d", "text": "t", "blocks": too_many_blocks}),
    )
    .await;
    assert_eq!(body["error"], "invalid_blocks");
    let (_, body) = api(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "#d", "blocks": [section("y".repeat(3_001))]}),
    )
    .await;
    assert_eq!(body["error"], "invalid_blocks");
    let (status, text) = webhook(&fake, json!({"text": "t", "blocks": too_many_blocks})).await;
    assert_eq!((status, text.as_str()), (400, "invalid_blocks"));
    let (_, body) = api(
        &fake,
        "chat.update",
        token,
        json!({"channel": "#d", "ts": "1.000001", "text": "t"}),
    )
    .await;
    assert_eq!(body["error"], "message_not_found");
    let (_, body) = api(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "#d", "text": "x".repeat(40_000)}),
    )
    .await;
    assert_eq!(body["ok"], true, "exactly at the limit is fine");

    let posts = fake.posts();
    assert_eq!(posts.len(), 6);
    assert_eq!(posts.iter().filter(|p| !p.is_accepted()).count(), 5);
    assert_eq!(
        posts[3].outcome,
        SlackOutcome::Rejected {
            error: "invalid_blocks".into()
        }
    );
}
