//! Parse + evaluate throughput over the shared AWS fixtures (issue: at least 200,000 events/s
//! per core). Run: `cargo bench -p pipeline-responder-core --bench parse_evaluate`.
#![allow(clippy::unwrap_used, missing_docs)]

use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pipeline_responder_core::config::{load_str, Config};
use pipeline_responder_core::event::{parse_message, parse_message_general, Parsed};
use pipeline_responder_core::incident::{
    IncidentStatus, IncidentType, IncidentView, IncidentsView, Severity,
};
use pipeline_responder_core::rules::evaluate;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/events");

const CONFIG: &str = r#"
[aws]
account_id = "123456789012"
[sources.sqs]
enabled = false
[notifiers.slack]
webhook_url = "https://hooks.example.invalid/x"
[[environments]]
name = "production"
pipeline = "myPipeline"
alarm_prefix = "myPipeline"
[[environments]]
name = "staging"
pipeline = "BuildFromTag"
[[environments]]
name = "test"
"#;

/// Every event-shaped fixture body (JSON files that are messages, not CLI output).
fn bodies() -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.ends_with("sqs-receive-message-eventbridge-target.json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A realistic view: a few open incidents on other pipelines and one on the fixture pipeline.
fn view(now: DateTime<Utc>) -> IncidentsView {
    let mut incidents = Vec::new();
    for i in 0..20 {
        incidents.push(IncidentView {
            key: format!("pipeline_execution_failure/other-{i}/e{i}"),
            incident_type: IncidentType::PipelineExecutionFailure,
            environment: "test".into(),
            pipeline: format!("other-{i}"),
            execution_id: Some(format!("e{i}")),
            execution_start: Some(now),
            failed_stage: Some("Build".into()),
            action: None,
            alarms: vec![],
            error_signature: None,
            severity: Severity::Medium,
            status: IncidentStatus::Open,
            opened_at: now,
            resolved_at: None,
            highest_level_notified: Some(0),
            resolution: None,
        });
    }
    IncidentsView::new(incidents)
}

fn bench(c: &mut Criterion) {
    let config: Config = load_str(CONFIG, &|_| None).unwrap();
    let bodies = bodies();
    let now = DateTime::parse_from_rfc3339("2023-10-26T14:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let view = view(now);
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(bodies.len() as u64));
    group.bench_function("parse_only", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(parse_message(black_box(body)).ok());
            }
        })
    });
    group.bench_function("parse_general_only", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(parse_message_general(black_box(body)).ok());
            }
        })
    });
    let events: Vec<_> = bodies
        .iter()
        .filter_map(|b| match parse_message(b) {
            Ok(Parsed::Event(e)) => Some(e),
            _ => None,
        })
        .collect();
    group.bench_function("evaluate_only", |b| {
        b.iter(|| {
            for event in &events {
                black_box(evaluate(&config, black_box(event), &view, now));
            }
        })
    });
    group.bench_function("parse_and_evaluate", |b| {
        b.iter(|| {
            for body in &bodies {
                if let Ok(Parsed::Event(event)) = parse_message(black_box(body)) {
                    black_box(evaluate(&config, &event, &view, now));
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
