//! Stores under test: the same test body runs against the embedded store (a fresh file) and the
//! DynamoDB store (a fresh table, created from `deploy/`, in a private moto server).
#![allow(clippy::unwrap_used)]

use super::{Applied, DynamoStore, InputRecord, Store};
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::event::{
    Carrier, Event, EventKind, PipelineExecutionChange, PipelineState,
};
use pipeline_responder_e2e::Moto;
use std::path::PathBuf;

/// One store and what it lives on; dropping it stops moto.
pub struct Subject {
    pub store: Store,
    backing: Backing,
}

enum Backing {
    File(PathBuf),
    Table { moto: Box<Moto>, table: String },
}

impl Subject {
    pub async fn embedded(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pr-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        Self {
            store: Store::open(&path).unwrap(),
            backing: Backing::File(path),
        }
    }

    pub async fn dynamodb(name: &str) -> Self {
        let moto = Moto::start().await;
        let table = format!("state-{}", name.replace('_', "-"));
        let table = table.chars().take(200).collect::<String>();
        DynamoStore::create_table(&moto.dynamodb(), &table)
            .await
            .unwrap();
        let store = Store::new(DynamoStore::new(
            moto.dynamodb(),
            table.clone(),
            "replica-a",
        ));
        Self {
            store,
            backing: Backing::Table {
                moto: Box::new(moto),
                table,
            },
        }
    }

    /// Another process on the same state: a restarted daemon, or a second replica.
    pub fn another_process(&self, name: &str) -> Store {
        match &self.backing {
            Backing::File(path) => Store::open(path).unwrap(),
            Backing::Table { moto, table } => {
                Store::new(DynamoStore::new(moto.dynamodb(), table.clone(), name))
            }
        }
    }
}

/// Generates one `#[tokio::test]` per store for each listed `async fn(Subject)` in scope.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    let subject = crate::store::testing::Subject::embedded(
                        concat!(module_path!(), "-", stringify!($name)).replace("::", "-").as_str()
                    ).await;
                    super::$name(subject).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let subject = crate::store::testing::Subject::dynamodb(stringify!($name)).await;
                    super::$name(subject).await;
                }
            )*
        }
    };
}
pub(crate) use conformance;

/// An EventBridge pipeline execution state change of `pipeline`'s `execution` to `state` at
/// `time`, as the tests send it.
pub fn execution_event(
    id: impl Into<String>,
    pipeline: impl Into<String>,
    execution: impl Into<String>,
    state: PipelineState,
    time: DateTime<Utc>,
    start_time: Option<DateTime<Utc>>,
) -> Event {
    Event {
        id: id.into(),
        time,
        region: None,
        account: None,
        carrier: Carrier::EventBridge,
        kind: EventKind::PipelineExecution(PipelineExecutionChange {
            pipeline: pipeline.into(),
            execution_id: execution.into(),
            state,
            start_time,
            trigger_type: None,
            trigger_detail: None,
            stop_comments: None,
            failed_stage: None,
            failed_actions: vec![],
        }),
    }
}

/// Decides `event` at `now` against the store's incidents (the rules' 8-day history) and
/// stores the decision, as ingest does.
pub async fn decide_and_store(
    store: &Store,
    config: &Config,
    event: &Event,
    now: DateTime<Utc>,
) -> Applied {
    let view = store.view(now - chrono::Duration::days(8)).await.unwrap();
    let decision = pipeline_responder_core::rules::evaluate(config, event, &view, now);
    let input = InputRecord {
        id: event.id.clone(),
        transition: event.transition_key(),
        event_time: event.time,
    };
    store.apply(input, decision, now, None).await.unwrap()
}
