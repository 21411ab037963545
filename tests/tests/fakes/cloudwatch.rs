//! CloudWatchFake through aws-sdk-cloudwatch (Smithy RPC v2 CBOR).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsError;
use aws_sdk_cloudwatch::operation::set_alarm_state::SetAlarmStateError;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use aws_sdk_cloudwatch::Client;
use pipeline_responder_e2e::{AlarmModel, CloudWatchFake, InjectedError};

use super::{assert_same_instant, at};

/// The runbook's alarms for production and staging, plus one outside any prefix.
fn seed(fake: &CloudWatchFake) {
    let alarm = |name: &str, metric: &str| {
        AlarmModel::new(name, "KiroPipeline", metric, at(1_769_400_000_000))
    };
    fake.put_alarm(AlarmModel {
        dimensions: vec![("Pipeline".into(), "kiro-pipeline-production".into())],
        threshold: 1.0,
        state_updated: at(1_769_500_100_648),
        ..alarm(
            "kiro-pipeline-production-pipeline-failures",
            "PipelineFailures",
        )
        .in_state("ALARM", "Threshold Crossed: 1 datapoint [1.0] >= 1.0")
    });
    fake.put_alarm(
        alarm(
            "kiro-pipeline-production-deployment-duration",
            "DeploymentDuration",
        )
        .in_state("OK", "ok"),
    );
    fake.put_alarm(
        alarm(
            "kiro-pipeline-staging-pipeline-failures",
            "PipelineFailures",
        )
        .in_state("ALARM", "staging"),
    );
    fake.put_alarm(alarm("unrelated-alarm", "Errors").in_state("ALARM", "other team"));
}

#[tokio::test]
async fn describe_alarms_filters_and_parses_cbor_fields() {
    let fake = CloudWatchFake::start().await;
    seed(&fake);
    let client = fake.client().await;

    let out = client
        .describe_alarms()
        .alarm_name_prefix("kiro-pipeline-production-")
        .state_value(StateValue::Alarm)
        .send()
        .await
        .unwrap();
    let alarms = out.metric_alarms();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let alarm = &alarms[0];
    assert_eq!(
        alarm.alarm_name(),
        Some("kiro-pipeline-production-pipeline-failures")
    );
    assert_eq!(alarm.state_value(), Some(&StateValue::Alarm));
    assert_eq!(
        alarm.state_reason(),
        Some("Threshold Crossed: 1 datapoint [1.0] >= 1.0")
    );
    assert_same_instant(alarm.state_updated_timestamp(), at(1_769_500_100_648));
    assert_eq!(
        alarm.alarm_arn(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:kiro-pipeline-production-pipeline-failures")
    );
    assert_eq!(
        (alarm.namespace(), alarm.metric_name()),
        (Some("KiroPipeline"), Some("PipelineFailures"))
    );
    assert_eq!(alarm.threshold(), Some(1.0));
    assert_eq!(alarm.period(), Some(300));
    assert_eq!(
        alarm.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
    );
    assert_eq!(
        alarm.dimensions()[0].value(),
        Some("kiro-pipeline-production")
    );
    assert!(out.next_token().is_none());

    let by_name = client
        .describe_alarms()
        .alarm_names("kiro-pipeline-staging-pipeline-failures")
        .alarm_names("unrelated-alarm")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = by_name
        .metric_alarms()
        .iter()
        .map(|a| a.alarm_name().unwrap())
        .collect();
    assert_eq!(
        names,
        ["kiro-pipeline-staging-pipeline-failures", "unrelated-alarm"]
    );

    let request = &fake.calls_to("DescribeAlarms")[0].request;
    assert_eq!(request["AlarmNamePrefix"], "kiro-pipeline-production-");
    assert_eq!(request["StateValue"], "ALARM");
}

#[tokio::test]
async fn describe_alarms_paginates_and_rejects_forged_tokens() {
    let fake = CloudWatchFake::start().await;
    for n in 0..5 {
        fake.put_alarm(AlarmModel::new(
            &format!("kiro-pipeline-test-{n}"),
            "KiroPipeline",
            "M",
            at(1_769_400_000_000),
        ));
    }
    let client = fake.client().await;

    let pages: Vec<_> = client
        .describe_alarms()
        .alarm_name_prefix("kiro-pipeline-test-")
        .max_records(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let names: Vec<_> = pages
        .iter()
        .flat_map(|p| p.metric_alarms())
        .map(|a| a.alarm_name().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        (0..5)
            .map(|n| format!("kiro-pipeline-test-{n}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(pages.len(), 3);
    assert!(fake.calls()[1].request["NextToken"].is_string());

    let err = client
        .describe_alarms()
        .next_token("forged")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, DescribeAlarmsError::InvalidNextToken(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn put_metric_alarm_and_set_alarm_state_round_trip() {
    let fake = CloudWatchFake::start().await;
    let client = fake.client().await;

    client
        .put_metric_alarm()
        .alarm_name("kiro-pipeline-production-test-coverage")
        .namespace("KiroPipeline")
        .metric_name("TestCoverage")
        .dimensions(
            Dimension::builder()
                .name("Environment")
                .value("production")
                .build(),
        )
        .statistic(Statistic::Minimum)
        .period(300)
        .evaluation_periods(1)
        .threshold(80.5)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .unwrap();
    let seeded = fake
        .alarm("kiro-pipeline-production-test-coverage")
        .unwrap();
    assert_eq!(
        (seeded.state_value.as_str(), seeded.threshold),
        ("INSUFFICIENT_DATA", 80.5)
    );
    assert_eq!(
        seeded.dimensions,
        [("Environment".to_owned(), "production".to_owned())]
    );

    client
        .set_alarm_state()
        .alarm_name("kiro-pipeline-production-test-coverage")
        .state_value(StateValue::Alarm)
        .state_reason("coverage 72%")
        .state_reason_data(r#"{"coverage":72}"#)
        .send()
        .await
        .unwrap();
    let out = client
        .describe_alarms()
        .alarm_names("kiro-pipeline-production-test-coverage")
        .send()
        .await
        .unwrap();
    let alarm = &out.metric_alarms()[0];
    assert_eq!(alarm.state_value(), Some(&StateValue::Alarm));
    assert_eq!(alarm.state_reason(), Some("coverage 72%"));
    assert_eq!(alarm.threshold(), Some(80.5));
    assert_eq!(alarm.statistic(), Some(&Statistic::Minimum));

    let err = client
        .set_alarm_state()
        .alarm_name("missing")
        .state_value(StateValue::Ok)
        .state_reason("x")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, SetAlarmStateError::ResourceNotFound(_)),
        "{err:?}"
    );
    let err = client
        .set_alarm_state()
        .alarm_name("kiro-pipeline-production-test-coverage")
        .state_value(StateValue::Ok)
        .state_reason("x")
        .state_reason_data("{not json")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, SetAlarmStateError::InvalidFormatFault(_)),
        "{err:?}"
    );

    // The test can move alarms itself too, as the pipeline's metrics would.
    fake.set_state("kiro-pipeline-production-test-coverage", "OK", "recovered");
    let out = client
        .describe_alarms()
        .state_value(StateValue::Ok)
        .send()
        .await
        .unwrap();
    assert_eq!(out.metric_alarms()[0].state_reason(), Some("recovered"));
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_surfaces_when_retries_run_out() {
    let fake = CloudWatchFake::start().await;
    seed(&fake);
    let config = pipeline_responder_e2e::sdk_config(fake.endpoint()).await;
    let client_with = |attempts| {
        let retry = RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(5));
        Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(&config)
                .retry_config(retry)
                .build(),
        )
    };

    fake.fail_next(
        "DescribeAlarms",
        2,
        InjectedError::new(400, "Throttling", "Rate exceeded"),
    );
    client_with(3).describe_alarms().send().await.unwrap();
    assert_eq!(fake.call_count("DescribeAlarms"), 3);

    // Back-to-back calls beyond 1 per second are throttled; a few tries so a slow machine
    // cannot make the test flaky.
    fake.set_tps_limit(Some(1));
    let once = client_with(1);
    let mut refused = None;
    for _ in 0..5 {
        if let Err(err) = once.describe_alarms().send().await {
            refused = Some(err.into_service_error());
            break;
        }
    }
    let err = refused.expect("5 back-to-back calls stay under 1 per second");
    assert_eq!(err.code(), Some("Throttling"));
    assert_eq!(err.message(), Some("Rate exceeded"));
}

#[tokio::test]
async fn wire_format_is_rpc_v2_cbor() {
    let fake = CloudWatchFake::start().await;
    seed(&fake);
    let http = reqwest::Client::new();
    let url = format!(
        "{}/service/GraniteServiceVersion20100801/operation/DescribeAlarms",
        fake.endpoint()
    );
    let mut body = Vec::new();
    let request = ciborium::Value::Map(vec![(
        "AlarmNames".into(),
        ciborium::Value::Array(vec!["unrelated-alarm".into()]),
    )]);
    ciborium::into_writer(&request, &mut body).unwrap();

    let response = http
        .post(&url)
        .header("content-type", "application/cbor")
        .header("smithy-protocol", "rpc-v2-cbor")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/monitoring/aws4_request",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/cbor");
    assert_eq!(response.headers()["smithy-protocol"], "rpc-v2-cbor");
    let answer: ciborium::Value =
        ciborium::from_reader(&response.bytes().await.unwrap()[..]).unwrap();
    let alarm = &answer.as_map().unwrap()[0].1.as_array().unwrap()[0];
    let updated = alarm
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("StateUpdatedTimestamp"))
        .unwrap();
    // Timestamps are CBOR tag 1 (epoch seconds).
    assert!(
        matches!(updated.1, ciborium::Value::Tag(1, _)),
        "{:?}",
        updated.1
    );

    let json_client = http
        .post(&url)
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=x")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_client.status(), 400);
}
