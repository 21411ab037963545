//! moto through the SDK clients the daemon uses for SQS, SNS, DynamoDB and CloudWatch Logs.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use pipeline_responder_e2e::Moto;
use serde_json::Value;

#[tokio::test]
async fn sqs_queue_with_dead_letter_redrive() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    // The queue as the e2e tests make it; zero visibility so an unacknowledged message is
    // visible again at once.
    let queues = crate::support::create_queues(&moto, "events", 0).await;
    let (queue_url, dlq_url) = (queues.url, queues.dlq_url);

    sqs.send_message()
        .queue_url(&queue_url)
        .message_body("handled")
        .send()
        .await
        .unwrap();
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
    let message = &received.messages()[0];
    assert_eq!(message.body(), Some("handled"));
    sqs.delete_message()
        .queue_url(&queue_url)
        .receipt_handle(message.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();

    // A poison message: received twice without being deleted, then moved to the DLQ.
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .send()
            .await
            .unwrap();
        assert_eq!(received.messages()[0].body(), Some("poison"));
    }
    let third = sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
    assert!(third.messages().is_empty(), "{third:?}");
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .send()
        .await
        .unwrap();
    assert_eq!(dead.messages()[0].body(), Some("poison"));
}

#[tokio::test]
async fn sns_topic_delivers_an_envelope_to_its_sqs_subscription() {
    let moto = Moto::start().await;
    let (sns, sqs) = (moto.sns(), moto.sqs());
    let topic = "kiro-pipeline-production-deployments";
    let queue_url = crate::support::topic_with_capture(&moto, topic).await;
    let topic_arn = format!("arn:aws:sns:us-east-1:{}:{topic}", crate::support::ACCOUNT);

    sns.publish()
        .topic_arn(&topic_arn)
        .subject("Pipeline failed")
        .message(r#"{"incident":"x"}"#)
        .send()
        .await
        .unwrap();

    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
    let envelope: Value = serde_json::from_str(received.messages()[0].body().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
    assert_eq!(envelope["Subject"], "Pipeline failed");
    assert_eq!(envelope["Message"], r#"{"incident":"x"}"#);
}

#[tokio::test]
async fn dynamodb_deployments_table_is_queried_through_its_status_index() {
    let moto = Moto::start().await;
    let ddb = moto.dynamodb();
    let table = "kiro-pipeline-production-deployments";
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("deploymentId"))
        .attribute_definitions(attribute("environment"))
        .attribute_definitions(attribute("status"))
        .key_schema(key("deploymentId", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("EnvironmentStatusIndex")
                .key_schema(key("environment", KeyType::Hash))
                .key_schema(key("status", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (id, environment, status) in [
        ("d1", "production", "SUCCEEDED"),
        ("d2", "production", "ROLLED_BACK"),
        ("d3", "staging", "ROLLED_BACK"),
    ] {
        let item: HashMap<_, _> = [
            ("deploymentId", id),
            ("environment", environment),
            ("status", status),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
        .collect();
        ddb.put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    let found = ddb
        .query()
        .table_name(table)
        .index_name("EnvironmentStatusIndex")
        .key_condition_expression("#env = :env AND #status = :status")
        .expression_attribute_names("#env", "environment")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":env", AttributeValue::S("production".into()))
        .expression_attribute_values(":status", AttributeValue::S("ROLLED_BACK".into()))
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = found
        .items()
        .iter()
        .map(|item| item["deploymentId"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(ids, ["d2"]);
}

#[tokio::test]
async fn cloudwatch_logs_events_are_found_by_filter() {
    let moto = Moto::start().await;
    let logs = moto.logs();
    let group = "/aws/codebuild/kiro-pipeline-production-build";
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("build/0f3c")
        .send()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let lines = [
        "npm ci",
        "ERROR: coverage 72% is below 80%",
        "npm test done",
        "ERROR: build failed",
    ];
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(*line)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("build/0f3c")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let found = logs
        .filter_log_events()
        .log_group_name(group)
        .filter_pattern("ERROR")
        .send()
        .await
        .unwrap();
    let messages: Vec<_> = found
        .events()
        .iter()
        .map(|e| e.message().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["ERROR: coverage 72% is below 80%", "ERROR: build failed"]
    );
    assert_eq!(found.events()[0].log_stream_name(), Some("build/0f3c"));
}
