//! The notifier conformance suite: every HTTP notifier, against a local server answering what
//! each service answers when things go wrong, must
//! - take 2xx as sent;
//! - retry 429 and 5xx, after the server's Retry-After when it sends one;
//! - give up on other 4xx (a bad key or body will not fix itself);
//! - retry a timeout or a refused connection;
//! - never put a secret (URL, key, token) in an error.
//!
//! SNS goes through the AWS SDK, whose retriable/permanent classification the SNS notifier
//! passes on; it is exercised against moto by the end-to-end tests.
#![allow(clippy::unwrap_used)]

use super::render::render;
use super::{Notifier, Post, SendError};
use crate::store::testing::execution_event;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use pipeline_responder_core::config::{load_str, Config};
use pipeline_responder_core::decision::{Channel, Notification, NotificationKind};
use pipeline_responder_core::event::PipelineState;
use pipeline_responder_core::incident::IncidentsView;
use pipeline_responder_core::record::Incident;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Secrets the notifiers are given; none may appear in an error.
const KEY: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "xoxb-conformance-secret-token";
const URL_SECRET: &str = "url-path-secret-5f3a";

/// What the stand-in service answers next.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
    delay: Duration,
}

type Script = Arc<Mutex<Answer>>;

async fn service(script: Script) -> String {
    let handler = move || {
        let script = Arc::clone(&script);
        async move {
            let a = script.lock().unwrap().clone();
            tokio::time::sleep(a.delay).await;
            let mut headers = HeaderMap::new();
            if let Some(r) = a.retry_after {
                headers.insert("retry-after", HeaderValue::from_static(r));
            }
            (StatusCode::from_u16(a.status).unwrap(), headers, a.body).into_response()
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn config() -> Config {
    load_str(
        r#"
[aws]
account_id = "123456789012"
[sources.sqs]
enabled = false
[[environments]]
name = "production"
"#,
        &|_| None,
    )
    .unwrap()
}

fn incident(config: &Config) -> Incident {
    let event = execution_event(
        "evt-1",
        "kiro-pipeline-production",
        "e1",
        PipelineState::Failed,
        chrono::Utc::now(),
        None,
    );
    let decision = pipeline_responder_core::rules::evaluate(
        config,
        &event,
        &IncidentsView::default(),
        event.time,
    );
    Incident::open(decision.opened().unwrap(), &event.id, event.time)
}

/// Each HTTP notifier, pointed at `base`, with the target it knows.
fn notifiers(base: &str, config: &Arc<Config>) -> Vec<(Arc<dyn Notifier>, &'static str)> {
    use pipeline_responder_core::config::*;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let secret = |v: &str| Secret::new(v, "(test)");
    let slack_with = |webhook: Option<Secret>, bot: Option<Secret>| SlackConfig {
        webhook_url: webhook,
        bot_token: bot,
        signing_secret: None,
        api_base_url: format!("{base}/api"),
        default_channel: "#x".into(),
    };
    let slack = |c: SlackConfig| -> Arc<dyn Notifier> {
        Arc::new(super::slack::SlackNotifier {
            slack: super::slack::Slack::new(c, http.clone()),
            config: Arc::clone(config),
        })
    };
    vec![
        (
            slack(slack_with(
                Some(secret(&format!("{base}/hook/{URL_SECRET}"))),
                None,
            )),
            "#x",
        ),
        (slack(slack_with(None, Some(secret(TOKEN)))), "#x"),
        (
            Arc::new(super::pagerduty::PagerDuty {
                config: PagerDutyConfig {
                    routing_keys: [("oncall".to_string(), secret(KEY))].into(),
                    webhook_secret: None,
                    events_url: format!("{base}/v2/enqueue"),
                },
                http: http.clone(),
            }),
            "oncall",
        ),
        (
            Arc::new(super::opsgenie::Opsgenie {
                config: OpsgenieConfig {
                    api_key: secret(KEY),
                    api_url: base.to_string(),
                    webhook_token: None,
                },
                http: http.clone(),
            }),
            "team:SRE",
        ),
        (
            Arc::new(super::teams::Teams {
                config: TeamsConfig {
                    webhooks: [(
                        "ops".to_string(),
                        secret(&format!("{base}/workflows/{URL_SECRET}")),
                    )]
                    .into(),
                },
                http: http.clone(),
            }),
            "ops",
        ),
        (
            Arc::new(super::webhook::Webhook {
                config: WebhookConfig {
                    endpoints: [(
                        "audit".to_string(),
                        Endpoint {
                            url: secret(&format!("{base}/hook/{URL_SECRET}")),
                            secret: secret(KEY),
                        },
                    )]
                    .into(),
                },
                http: http.clone(),
            }),
            "audit",
        ),
    ]
}

async fn send(
    n: &dyn Notifier,
    target: &str,
    config: &Config,
    incident: &Incident,
) -> Result<(), SendError> {
    let notification = Notification {
        channel: Channel::new(n.kind(), target),
        kind: NotificationKind::Opened,
        mention: None,
    };
    let message = render(config, incident, &[], NotificationKind::Opened, None, None);
    let post = Post {
        target,
        notification: &notification,
        incident,
        timeline: &[],
        message: &message,
        thread: None,
    };
    n.send(post).await.map(|_| ())
}

fn no_secret(e: &SendError, who: &str) {
    for s in [KEY, TOKEN, URL_SECRET] {
        assert!(!e.message.contains(s), "{who}: a secret in {:?}", e.message);
    }
}

#[tokio::test]
async fn every_http_notifier_classifies_answers_alike_and_keeps_its_secrets() {
    let script: Script = Arc::new(Mutex::new(Answer {
        status: 202,
        retry_after: None,
        body: r#"{"ok": true, "ts": "1.2", "status": "success"}"#,
        delay: Duration::ZERO,
    }));
    let base = service(Arc::clone(&script)).await;
    let config = Arc::new(config());
    let incident = incident(&config);
    let set = |status, retry_after, body, delay| {
        *script.lock().unwrap() = Answer {
            status,
            retry_after,
            body,
            delay,
        }
    };
    for (n, target) in notifiers(&base, &config) {
        let who = format!("{} ({target})", n.kind());
        set(202, None, r#"{"ok": true, "ts": "1.2"}"#, Duration::ZERO);
        if n.kind() == "slack" {
            set(200, None, r#"{"ok": true, "ts": "1.2"}"#, Duration::ZERO);
        }
        send(n.as_ref(), target, &config, &incident)
            .await
            .unwrap_or_else(|e| panic!("{who}: 2xx is sent, got {e:?}"));

        set(
            429,
            Some("7"),
            r#"{"message": "rate limited"}"#,
            Duration::ZERO,
        );
        let e = send(n.as_ref(), target, &config, &incident)
            .await
            .unwrap_err();
        assert!(!e.permanent, "{who}: 429 is retried");
        assert_eq!(
            e.retry_after,
            Some(Duration::from_secs(7)),
            "{who}: Retry-After"
        );
        no_secret(&e, &who);

        set(503, None, "unavailable", Duration::ZERO);
        let e = send(n.as_ref(), target, &config, &incident)
            .await
            .unwrap_err();
        assert!(
            !e.permanent && e.retry_after.is_none(),
            "{who}: 5xx is retried"
        );
        no_secret(&e, &who);

        set(400, None, r#"{"status": "invalid event"}"#, Duration::ZERO);
        let e = send(n.as_ref(), target, &config, &incident)
            .await
            .unwrap_err();
        assert!(e.permanent, "{who}: 400 is permanent");
        assert!(
            e.message.contains("400"),
            "{who}: says the status: {}",
            e.message
        );
        no_secret(&e, &who);

        set(202, None, "{}", Duration::from_secs(3));
        let e = send(n.as_ref(), target, &config, &incident)
            .await
            .unwrap_err();
        assert!(!e.permanent, "{who}: a timeout is retried");
        no_secret(&e, &who);
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_without_the_url() {
    let config = Arc::new(config());
    let incident = incident(&config);
    // Nothing listens on port 9 (discard) on a test machine.
    for (n, target) in notifiers("http://127.0.0.1:9", &config) {
        let who = format!("{} ({target})", n.kind());
        let e = send(n.as_ref(), target, &config, &incident)
            .await
            .unwrap_err();
        assert!(!e.permanent, "{who}: retried");
        no_secret(&e, &who);
    }
}
