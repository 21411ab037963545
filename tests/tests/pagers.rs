//! Paging where the on-call is: PagerDuty (Events API v2 out, V3 webhook in) and Opsgenie
//! (Alert API out, Webhook integration in), against fakes that speak those APIs.
#![allow(clippy::unwrap_used)]

use crate::support::*;
use pipeline_responder_e2e::{Moto, OpsgenieFake, PagerDutyFake, SlackFake};
use serde_json::{json, Value};
use std::time::Duration;

const ONCALL: &str = "0123456789abcdef0123456789abcd01";
const LEADS: &str = "0123456789abcdef0123456789abcd02";
const MGMT: &str = "0123456789abcdef0123456789abcd03";
const PD_SECRET: &str = "pd-webhook-signing-secret-0001";
const OG_KEY: &str = "opsgenie-api-key-0001";
const OG_TOKEN: &str = "opsgenie-webhook-token-0001";
const API_TOKEN: &str = "pagers-api-token-0123456789abcdef0123";
const KEY: &str = "pipeline_execution_failure/kiro-pipeline-production/pager-0001";

/// L1 pages the on-call at once, L2 the leads 3 s later, L3 management after 45 s (far enough
/// that the webhook ack lands first even on a busy machine); Opsgenie gets the same levels.
fn environments(pd_url: &str, og_url: &str) -> String {
    format!(
        r#"
[[escalation.levels]]
id = "L1"
notify = {{ pagerduty = "oncall", opsgenie = "team:SRE" }}
[[escalation.levels]]
id = "L2"
notify = {{ pagerduty = "leads", opsgenie = "team:Leads" }}
[[escalation.levels]]
id = "L3"
slack_mention = "@eng-manager"
notify = {{ pagerduty = "mgmt", opsgenie = "team:Mgmt" }}
[[environments]]
name = "production"
[policies.pipeline_execution_failure]
escalation = [
  {{ level = "L1", after_secs = 0 }},
  {{ level = "L2", after_secs = 3 }},
  {{ level = "L3", after_secs = 45 }},
]
[notifiers.pagerduty]
routing_keys = {{ oncall = "{ONCALL}", leads = "{LEADS}", mgmt = "{MGMT}" }}
webhook_secret = "{PD_SECRET}"
events_url = "{pd_url}"
[notifiers.opsgenie]
api_key = "{OG_KEY}"
api_url = "{og_url}"
webhook_token = "{OG_TOKEN}"
"#
    )
}

async fn fail(moto: &Moto, queue: &str) {
    let body = kiro_event("codepipeline-pipeline-failed.json", "evt-pager-1", |e| {
        e["detail"]["execution-id"] = json!("pager-0001");
    });
    send_body(moto, queue, &body).await;
}

async fn recover(moto: &Moto, queue: &str) {
    let body = kiro_event(
        "codepipeline-pipeline-succeeded.json",
        "evt-pager-ok",
        |e| {
            e["detail"]["execution-id"] = json!("pager-0002");
            e["detail"]["start-time"] = json!(chrono::Utc::now().to_rfc3339());
            e["time"] =
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        },
    );
    send_body(moto, queue, &body).await;
}

async fn post(url: &str, headers: &[(&str, &str)], body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    request = request.header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn triggers(events: &[pipeline_responder_e2e::PagerDutyEvent], key: &str) -> usize {
    events
        .iter()
        .filter(|e| e.accepted() && e.action() == "trigger" && e.routing_key() == key)
        .count()
}

/// The fakes, the queue and the configuration one test's daemon runs against.
struct Rig {
    moto: Moto,
    slack: SlackFake,
    pd: PagerDutyFake,
    og: OpsgenieFake,
    queue: String,
    environments: String,
    dir: std::path::PathBuf,
}

impl Rig {
    async fn new(name: &str) -> Rig {
        let moto = Moto::start().await;
        let slack = SlackFake::start().await;
        let pd = PagerDutyFake::start(&[ONCALL, LEADS, MGMT]).await;
        let og = OpsgenieFake::start(OG_KEY).await;
        let queue = create_queues(&moto, &format!("events-{name}"), 30)
            .await
            .url;
        let environments = environments(&pd.events_url(), &og.api_url());
        Rig {
            moto,
            slack,
            pd,
            og,
            queue,
            environments,
            dir: temp_dir(name),
        }
    }

    /// Starts (or restarts, on the same state) the daemon.
    async fn launch(&self) -> Daemon {
        let env = [("TEST_API_TOKEN", API_TOKEN.to_string())];
        let setup = Setup {
            env: &env,
            daemon_extra: "first_post_wait_secs = 0",
            environments: &self.environments,
            ..Setup::default()
        };
        Daemon::launch(
            &self.moto,
            &self.slack,
            &self.queue,
            self.dir.clone(),
            &setup,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_and_opsgenie_page_per_level_an_ack_there_stops_l3_and_recovery_resolves_both() {
    let rig = Rig::new("pagers").await;
    let (moto, slack, pd, og) = (&rig.moto, &rig.slack, &rig.pd, &rig.og);
    let queue = rig.queue.as_str();
    let daemon = rig.launch().await;
    let webhook = format!("http://{}", daemon.http_addr().await);
    fail(moto, queue).await;

    // L1 at once, then L2 on its timer to the second routing key.
    let limit = Duration::from_secs(60);
    let events = pd
        .wait_until("L1 and L2 triggers", limit, |e| {
            triggers(e, ONCALL) >= 1 && triggers(e, LEADS) >= 1
        })
        .await;
    let first = events.iter().find(|e| e.action() == "trigger").unwrap();
    assert_eq!(first.dedup_key(), KEY);
    assert_eq!(
        first.body["payload"]["severity"], "error",
        "HIGH maps to error"
    );
    assert_eq!(first.body["payload"]["source"], "kiro-pipeline-production");
    assert!(first.body["payload"]["summary"].as_str().unwrap().len() <= 1024);
    assert!(first.body["payload"]["custom_details"]["diagnosis"].is_string());
    assert!(first.body["links"][0]["href"]
        .as_str()
        .unwrap()
        .contains("codepipeline/pipelines/kiro-pipeline-production"));
    assert_eq!(pd.status(ONCALL, KEY).as_deref(), Some("triggered"));
    og.wait_until("the alert and the L2 responders", limit, |c| {
        c.iter().any(|c| c.what == "responders" && c.status == 202)
    })
    .await;
    let alert = og.alert(KEY).unwrap();
    assert_eq!(alert.priority, "P2");
    assert!(alert
        .responders
        .contains(&json!({"type": "team", "name": "SRE"})));
    assert!(alert
        .responders
        .contains(&json!({"type": "team", "name": "Leads"})));

    // A forged delivery is refused; the on-call's ack in PagerDuty reaches us.
    let (body, signature) = pd.act(LEADS, KEY, "incident.acknowledged", "Alice Doe", PD_SECRET);
    let url = format!("{webhook}/pagerduty/webhook");
    let (status, _) = post(&url, &[("x-pagerduty-signature", "v1=00ff")], body.clone()).await;
    assert_eq!(status, 401);
    let (status, answer) = post(&url, &[("x-pagerduty-signature", &signature)], body.clone()).await;
    assert_eq!(
        (status, &answer["done"]),
        (200, &json!("acknowledged")),
        "{answer}"
    );
    let (status, answer) = post(&url, &[("x-pagerduty-signature", &signature)], body).await;
    assert_eq!(status, 200);
    assert!(
        answer["ignored"].is_string(),
        "a replay does nothing: {answer}"
    );
    let (_, shown) = get_json(&webhook, KEY).await;
    assert_eq!(shown["incident"]["status"], "acknowledged", "{shown}");
    assert!(shown
        .to_string()
        .contains("acknowledged by Alice Doe (PagerDuty)"));

    // Our ack goes back to every pager that was paged.
    pd.wait_until("acknowledge to both keys", limit, |e| {
        [ONCALL, LEADS].iter().all(|k| {
            e.iter()
                .any(|e| e.action() == "acknowledge" && e.routing_key() == *k && e.accepted())
        })
    })
    .await;
    og.wait_until("the Opsgenie ack", limit, |c| {
        c.iter().any(|c| c.what == "acknowledge")
    })
    .await;
    assert!(og.alert(KEY).unwrap().acknowledged);

    // L3 was due 45 s after the failure: wait past it; nobody at L3 is paged.
    let opened =
        chrono::DateTime::parse_from_rfc3339(shown["incident"]["opened_at"].as_str().unwrap())
            .unwrap();
    let past_l3 = opened + chrono::Duration::seconds(48);
    while chrono::Utc::now() < past_l3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        triggers(&pd.events(), MGMT),
        0,
        "L3 not paged after the ack"
    );
    assert!(!og
        .calls()
        .iter()
        .any(|c| c.body.to_string().contains("Mgmt")));
    assert!(!slack
        .accepted()
        .iter()
        .any(|p| p.text().is_some_and(|t| t.contains("@eng-manager"))));

    // The pipeline recovers: the PagerDuty incidents resolve and the alert closes.
    recover(moto, queue).await;
    pd.wait_until("resolve on both keys", limit, |e| {
        [ONCALL, LEADS].iter().all(|k| {
            e.iter()
                .any(|e| e.action() == "resolve" && e.routing_key() == *k)
        })
    })
    .await;
    assert_eq!(pd.status(ONCALL, KEY).as_deref(), Some("resolved"));
    assert_eq!(pd.status(LEADS, KEY).as_deref(), Some("resolved"));
    og.wait_until("the alert closed", limit, |c| {
        c.iter().any(|c| c.what == "close")
    })
    .await;
    assert_eq!(og.alert(KEY).unwrap().status, "closed");
    assert_eq!(triggers(&pd.events(), ONCALL), 1, "each level paged once");
    assert_eq!(triggers(&pd.events(), LEADS), 1);
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    for secret in [ONCALL, LEADS, PD_SECRET, OG_KEY, OG_TOKEN] {
        assert!(!log.contains(secret), "a pager secret reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opsgenie_close_resolves_ours_and_pagerduty_follows() {
    let rig = Rig::new("opsgenie").await;
    let (moto, slack, pd, og) = (&rig.moto, &rig.slack, &rig.pd, &rig.og);
    let queue = rig.queue.as_str();
    let daemon = rig.launch().await;
    let webhook = format!("http://{}/opsgenie/webhook", daemon.http_addr().await);
    fail(moto, queue).await;
    let limit = Duration::from_secs(60);
    og.wait_until("the alert", limit, |c| {
        c.iter().any(|c| c.what == "create" && c.status == 202)
    })
    .await;
    let body = og.act(KEY, "Close", "ann@example.com");
    let (status, _) = post(&webhook, &[("x-webhook-token", "wrong")], body.clone()).await;
    assert_eq!(status, 401, "the integration's token is required");
    let (status, answer) = post(&webhook, &[("x-webhook-token", OG_TOKEN)], body).await;
    assert_eq!(
        (status, &answer["done"]),
        (200, &json!("resolved")),
        "{answer}"
    );
    pd.wait_until("PagerDuty resolved", limit, |e| {
        e.iter()
            .any(|e| e.action() == "resolve" && e.routing_key() == ONCALL)
    })
    .await;
    assert!(
        slack_posted(slack, "resolved by ann@example.com (Opsgenie)", limit).await,
        "{}",
        daemon.log()
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

/// `GET /api/v1/incidents/{key}`.
async fn get_json(base: &str, key: &str) -> (u16, Value) {
    let url = format!("{base}/api/v1/incidents/{}", key.replace('/', "%2F"));
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_paging_repeats_at_most_one_page() {
    let rig = Rig::new("pager-kill9").await;
    let (moto, pd) = (&rig.moto, &rig.pd);
    let queue = rig.queue.as_str();
    const N: usize = 40;
    let bodies: Vec<String> = (0..N)
        .map(|i| {
            kiro_event(
                "codepipeline-pipeline-failed.json",
                &format!("evt-pk-{i}"),
                |e| {
                    e["detail"]["execution-id"] = json!(format!("pk-{i:04}"));
                },
            )
        })
        .collect();
    let daemon = rig.launch().await;
    send_bodies(moto, queue, &bodies).await;
    let limit = Duration::from_secs(120);
    pd.wait_until("the first pages", limit, |e| triggers(e, ONCALL) >= 3)
        .await;
    daemon.kill9().await;
    let paged_before = triggers(&pd.events(), ONCALL);
    let daemon = rig.launch().await;
    let distinct = |e: &[pipeline_responder_e2e::PagerDutyEvent]| {
        e.iter()
            .filter(|e| e.accepted() && e.action() == "trigger" && e.routing_key() == ONCALL)
            .map(|e| e.dedup_key().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let events = pd
        .wait_until("every failure paged", limit, |e| distinct(e) == N)
        .await;
    let total = triggers(&events, ONCALL);
    assert!(
        paged_before < N,
        "killed too late to test anything ({paged_before} paged)"
    );
    assert!(
        total <= N + 1,
        "{total} L1 pages for {N} incidents: a kill may repeat at most the one in flight"
    );
    let (status, _, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
