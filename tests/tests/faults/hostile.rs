//! Hostile input over SQS (and the HTTP ingest endpoint): generated malformed, oversized, deeply
//! nested and wrong-typed messages. Each is checked with the core parser first, so the test knows
//! it must be rejected and for which reason; the daemon must count every delivery of each, leave
//! each to the dead-letter queue after the redrive count, handle the valid events mixed in, and
//! keep running.
#![allow(clippy::unwrap_used)]

use super::common::{
    create_queues, failure_event, failure_key, first_posts, metrics_text, peek_all, size,
    stored_incidents, task_failures, Rng, ENVIRONMENTS_NO_STORM, MAX_RECEIVE_COUNT,
};
use crate::support::{
    depth, fake_endpoints, get, metric, send_body, temp_dir, Daemon, Setup, FIXTURES,
};
use pipeline_responder_core::event::parse_message;
use pipeline_responder_e2e::{CloudWatchFake, CodePipelineFake, Moto, SlackFake};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// SQS's limit on a message (and on a batch).
const SQS_MAX_BYTES: usize = 262_144;

/// The characters SQS accepts in a message body.
fn sqs_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

const FIXTURE_NAMES: &[&str] = &[
    "codepipeline-pipeline-failed.json",
    "codepipeline-action-failed.json",
    "codepipeline-stage-started.json",
    "cloudwatch-alarm-state-change.json",
    "codebuild-build-state-change-succeeded.json",
    "codebuild-build-phase-change.json",
];

/// Values of the wrong type (or shape) for any field.
fn wrong_value(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.next_u64() as i64),
        2 => json!(true),
        3 => json!([]),
        4 => json!({}),
        5 => json!(""),
        6 => json!(" "),
        7 => json!(-1.5e300),
        _ => json!([{"nested": [1, {"x": null}]}]),
    }
}

/// JSON pointers of every field of a value (objects only).
fn fields(value: &Value, at: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            let pointer = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
            out.push(pointer.clone());
            fields(v, &pointer, out);
        }
    }
}

/// One hostile message of a random kind: (kind, body).
fn hostile(rng: &mut Rng) -> (&'static str, String) {
    let name: &&str = rng.pick(FIXTURE_NAMES);
    let sample = fixture(name);
    match rng.below(14) {
        0 => {
            let bytes: Vec<u8> = (0..rng.below(4096) + 1)
                .map(|_| rng.next_u64() as u8)
                .collect();
            ("random bytes", String::from_utf8_lossy(&bytes).into_owned())
        }
        1 => {
            let text = sample.to_string();
            let mut cut = 1 + rng.below(text.len() as u64 - 2) as usize;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            ("truncated event", text[..cut].to_string())
        }
        2 => {
            let depth = 129 + rng.below(120_000) as usize;
            (
                "nested arrays",
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            )
        }
        3 => {
            let depth = 129 + rng.below(40_000) as usize;
            (
                "nested objects",
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)),
            )
        }
        4 => {
            // Deep nesting inside an otherwise valid event.
            let mut event = sample;
            let depth = 129 + rng.below(5_000) as usize;
            event["detail"] = json!("placeholder");
            let text = event.to_string().replace(
                "\"placeholder\"",
                &format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            );
            ("nested in detail", text)
        }
        5 => {
            // Oversized: close to SQS's limit, with the required fields missing or wrong.
            let filler = "x".repeat(200_000 + rng.below(50_000) as usize);
            let body = match rng.below(3) {
                0 => {
                    json!({"detail-type": "CodePipeline Pipeline Execution State Change", "detail": filler})
                }
                1 => json!({"blob": filler}),
                _ => json!({"Type": "Notification", "MessageId": "m", "Message": filler}),
            };
            ("oversized", body.to_string())
        }
        6 => {
            // A field of a valid event given the wrong type.
            let mut event = sample;
            let mut pointers = Vec::new();
            fields(&event, "", &mut pointers);
            let pointer = rng.pick(&pointers).clone();
            *event.pointer_mut(&pointer).unwrap() = wrong_value(rng);
            ("wrong type", event.to_string())
        }
        7 => {
            // A required field removed.
            let mut event = sample;
            let key = *rng.pick(&["id", "time", "detail", "detail-type", "source"]);
            event.as_object_mut().unwrap().remove(key);
            if rng.chance(0.5) {
                if let Some(detail) = event.get_mut("detail").and_then(Value::as_object_mut) {
                    let keys: Vec<String> = detail.keys().cloned().collect();
                    let drop = rng.pick(&keys).clone();
                    detail.remove(&drop);
                }
            }
            ("missing field", event.to_string())
        }
        8 => {
            let mut event = sample;
            event["time"] = json!(*rng.pick(&[
                "yesterday",
                "2026-13-45T99:99:99Z",
                "",
                "1e400",
                "+999999-01-01T00:00:00Z"
            ]));
            ("bad timestamp", event.to_string())
        }
        9 => {
            let mut event = sample;
            if event["detail"].get("state").is_some() {
                event["detail"]["state"] = json!("EXPLODED");
            } else {
                event["detail-type"] = json!(12);
            }
            ("unknown value", event.to_string())
        }
        10 => {
            // SNS envelopes around garbage, or nested too deep.
            let inner = if rng.chance(0.5) {
                format!("not json {}", rng.next_u64())
            } else {
                let mut text = sample.to_string();
                for i in 0..3 {
                    text = json!({"Type": "Notification", "MessageId": format!("m{i}"), "Message": text, "Timestamp": "2026-11-26T10:00:00.000Z"}).to_string();
                }
                text
            };
            (
                "sns envelope",
                json!({"Type": "Notification", "MessageId": "outer", "Message": inner, "Timestamp": "2026-11-26T10:00:00.000Z"}).to_string(),
            )
        }
        11 => (
            "json scalar",
            rng.pick(&[
                " ",
                "\n",
                "{}",
                "[]",
                "null",
                "0",
                "\"\"",
                "true",
                "[{}]",
                "{\"\":{}}",
            ])
            .to_string(),
        ),
        12 => {
            // Text-level damage a JSON serializer never writes.
            let text = sample.to_string();
            let damage = *rng.pick(&[
                "\"\\ud800\"",
                "1e400",
                "\"\\x41\"",
                "NaN",
                "'single'",
                "\"\\u00\"",
                "0x10",
                "01",
            ]);
            // Replace the first string value (from its opening to its closing quote).
            let open = text.find(":\"").map_or(1, |i| i + 1);
            let close = text[open + 1..]
                .find('"')
                .map_or(open + 1, |i| open + 1 + i + 1);
            (
                "invalid token",
                format!("{}{damage}{}", &text[..open], &text[close..]),
            )
        }
        _ => {
            // Random printable junk with JSON punctuation.
            const ALPHABET: &[u8] = b"{}[]:,\"\\ abcxyz0123456789.-+eE\n";
            let n = rng.below(2_000) as usize + 1;
            let text: String = (0..n).map(|_| *rng.pick(ALPHABET) as char).collect();
            ("json-ish junk", text)
        }
    }
}

/// `n` hostile bodies the parser rejects, SQS-legal, with the reason the parser gives each.
fn generate(rng: &mut Rng, n: usize) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let (kind, body) = hostile(rng);
        let body: String = body.chars().filter(|c| sqs_allowed(*c)).collect();
        if body.is_empty() || body.len() > SQS_MAX_BYTES - 1024 {
            continue;
        }
        // Only what the parser rejects (a mutation may still be a valid or ignorable event).
        if let Err(e) = parse_message(&body) {
            out.push((kind, e.reason(), body));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_each_counted_and_left_to_the_dlq_and_the_daemon_keeps_serving() {
    let n = size(250, 1000);
    let mut rng = Rng::for_test("hostile");
    let started = Instant::now();
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let (codepipeline, cloudwatch) = (
        CodePipelineFake::start().await,
        CloudWatchFake::start().await,
    );
    let queues = create_queues(&moto, "faults-hostile", 5).await;
    let valid: Vec<String> = (0..5).map(|i| format!("hostile-ok-{i}")).collect();
    super::common::seed_failures(&codepipeline, &moto, "production", &valid).await;
    let [cp, cw] = fake_endpoints(&codepipeline, &cloudwatch);
    let env = [
        cp,
        cw,
        (
            "TEST_API_TOKEN",
            "hostile-api-token-0123456789abcdef".to_string(),
        ),
    ];
    let setup = Setup {
        env: &env,
        environments: ENVIRONMENTS_NO_STORM,
        ..Setup::default()
    };
    let dir = temp_dir("faults-hostile");
    let daemon = Daemon::launch(&moto, &slack, &queues.url, dir.clone(), &setup).await;

    let messages = generate(&mut rng, n);
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (kind, reason, _) in &messages {
        *by_reason.entry(reason).or_default() += 1;
        *by_kind.entry(kind).or_default() += 1;
    }
    let largest = messages.iter().map(|m| m.2.len()).max().unwrap_or(0);
    // Sent as they come, in batches under SQS's batch limit, a valid failure every n/5.
    let sqs = moto.sqs();
    let mut batch: Vec<String> = Vec::new();
    let mut sent_ids: BTreeSet<String> = BTreeSet::new();
    let flush = |batch: Vec<String>| {
        let sqs = sqs.clone();
        let url = queues.url.clone();
        async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let entries: Vec<_> = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("h{i}"))
                        .message_body(body)
                        .build()
                        .unwrap()
                })
                .collect();
            let out = sqs
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert!(out.failed.is_empty(), "{:?}", out.failed);
            out.successful
                .into_iter()
                .map(|s| s.message_id)
                .collect::<Vec<_>>()
        }
    };
    for (i, (_, _, body)) in messages.iter().enumerate() {
        let batch_bytes: usize = batch.iter().map(String::len).sum();
        if batch.len() == 10 || batch_bytes + body.len() > SQS_MAX_BYTES - 4096 {
            sent_ids.extend(flush(std::mem::take(&mut batch)).await);
        }
        batch.push(body.clone());
        if i % (n / valid.len()) == n / valid.len() / 2 {
            let k = i / (n / valid.len());
            send_body(
                &moto,
                &queues.url,
                &failure_event(&valid[k], &format!("evt-hostile-{k}")),
            )
            .await;
        }
    }
    sent_ids.extend(flush(batch).await);
    assert_eq!(sent_ids.len(), n);

    // Every hostile message ends in the DLQ after its five deliveries; the queue drains.
    let moved = crate::support::eventually(Duration::from_secs(size(240, 600) as u64), || async {
        depth(&moto, &queues.dlq_url).await == n as u64 && depth(&moto, &queues.url).await == 0
    })
    .await;
    assert!(
        moved,
        "DLQ {} of {n}, queue {} left: {}",
        depth(&moto, &queues.dlq_url).await,
        depth(&moto, &queues.url).await,
        daemon.log()
    );
    let in_dlq = peek_all(&moto, &queues.dlq_url, 60).await;
    let dlq_ids: BTreeSet<String> = in_dlq.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(
        dlq_ids, sent_ids,
        "the DLQ holds exactly the hostile messages"
    );
    assert!(
        in_dlq
            .iter()
            .all(|(_, _, count)| *count >= MAX_RECEIVE_COUNT),
        "a message reached the DLQ before its redrive count"
    );

    // Each delivery counted, under the reason the parser gives.
    let text = metrics_text(&daemon).await;
    let deliveries = MAX_RECEIVE_COUNT as f64;
    for (reason, count) in &by_reason {
        assert_eq!(
            metric(
                &text,
                "pipeline_responder_events_rejected_total",
                &[("source", "sqs"), ("reason", reason)]
            ),
            deliveries * *count as f64,
            "{reason}"
        );
    }
    assert_eq!(
        metric(
            &text,
            "pipeline_responder_events_rejected_total",
            &[("source", "sqs")]
        ),
        deliveries * n as f64
    );
    assert_eq!(
        metric(
            &text,
            "pipeline_responder_sqs_messages_total",
            &[("outcome", "rejected")]
        ),
        deliveries * n as f64
    );

    // The valid events among them: each an incident with its first post.
    let expected: BTreeSet<String> = valid.iter().map(|e| failure_key(e)).collect();
    let posted = crate::support::eventually(Duration::from_secs(60), || async {
        first_posts(&slack).into_keys().collect::<BTreeSet<_>>() == expected
    })
    .await;
    assert!(posted, "{:?}", first_posts(&slack));
    assert_eq!(
        stored_incidents(&dir).into_keys().collect::<BTreeSet<_>>(),
        expected
    );

    // The same kinds through the HTTP ingest endpoint: 400 with the parser's reason, counted;
    // bodies past the parser's 1 MiB limit too; past the HTTP body limit, refused before parsing.
    let base = format!("http://{}", daemon.http_addr().await);
    let http = reqwest::Client::new();
    let mut http_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bodies: Vec<(&str, String)> = messages
        .iter()
        .step_by(10)
        .map(|(_, reason, body)| (*reason, body.clone()))
        .collect();
    bodies.push((
        "too_large",
        format!("{{\"blob\": \"{}\"}}", "y".repeat(1_200_000)),
    ));
    for (reason, body) in &bodies {
        let response = http
            .post(format!("{base}/api/v1/events"))
            .bearer_auth("hostile-api-token-0123456789abcdef")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{reason}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["reason"], *reason, "{answer}");
        *http_reasons.entry(reason).or_default() += 1;
    }
    let beyond = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth("hostile-api-token-0123456789abcdef")
        .body(vec![b'['; 3_000_000])
        .send()
        .await
        .unwrap();
    assert!(beyond.status().is_client_error(), "{}", beyond.status());
    let text = metrics_text(&daemon).await;
    for (reason, count) in &http_reasons {
        assert_eq!(
            metric(
                &text,
                "pipeline_responder_events_rejected_total",
                &[("source", "http"), ("reason", reason)]
            ),
            *count as f64,
            "http {reason}"
        );
    }

    // Still serving, nothing died.
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    let (exit, _, log) = daemon.terminate().await;
    assert!(task_failures(&log).is_empty(), "{:?}", task_failures(&log));
    assert!(exit.success(), "{log}");
    println!(
        "hostile figures: messages={n} largest_bytes={largest} crashes=0 in_dlq={} \
         rejected_deliveries={} (x{MAX_RECEIVE_COUNT} each) valid_mixed_in={} handled={} \
         http_rejected={} by_reason={by_reason:?} by_kind={by_kind:?} elapsed_s={}",
        dlq_ids.len(),
        deliveries as usize * n,
        valid.len(),
        expected.len(),
        bodies.len(),
        started.elapsed().as_secs()
    );
}
