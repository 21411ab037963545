//! The table itself: its creation from the deploy kit's definition, reads, and atomic writes.

use super::codec::{incident_pk, json, num, s};
use super::{DynamoStore, Item, INDEX, MAX_TRANSACTION_ITEMS, TABLE_DEFINITION};
use crate::store::{Result, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use pipeline_responder_core::record::Incident;

impl DynamoStore {
    /// Creates the table as `deploy/dynamodb/state-table.json` describes it, named `table`
    /// (for tests and the local demo; production tables come from the deploy kit).
    pub async fn create_table(client: &Client, table: &str) -> Result<()> {
        let def: TableDefinition =
            serde_json::from_str(TABLE_DEFINITION).map_err(|e| StoreError::Malformed {
                item: "deploy/dynamodb/state-table.json".into(),
                problem: e.to_string(),
            })?;
        let key_schema = |keys: &[KeyDef]| -> Result<Vec<KeySchemaElement>> {
            keys.iter()
                .map(|k| {
                    KeySchemaElement::builder()
                        .attribute_name(&k.attribute_name)
                        .key_type(KeyType::from(k.key_type.as_str()))
                        .build()
                        .map_err(build_error)
                })
                .collect()
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::from(def.billing_mode.as_str()))
            .set_key_schema(Some(key_schema(&def.key_schema)?));
        for a in &def.attribute_definitions {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .map_err(build_error)?,
            );
        }
        for g in &def.global_secondary_indexes {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&g.index_name)
                    .set_key_schema(Some(key_schema(&g.key_schema)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(
                                g.projection.projection_type.as_str(),
                            ))
                            .build(),
                    )
                    .build()
                    .map_err(build_error)?,
            );
        }
        request.send().await.map_err(|e| sdk("CreateTable", e))?;
        Ok(())
    }

    pub(super) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out.item)
    }

    /// An incident and the version it was read at.
    pub(super) async fn load(&self, key: &str) -> Result<Option<(Incident, i64)>> {
        let Some(item) = self.get(incident_pk(key), "#INC").await? else {
            return Ok(None);
        };
        let incident: Incident = json(&item, "data")?;
        Ok(Some((incident, num(&item, "version")?)))
    }

    /// Items of one partition whose sort key starts with `prefix`, oldest first.
    pub(super) async fn partition(&self, pk: String, prefix: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true);
            query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let page = query
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Items of one index partition with `g1sk` in `[from, to]`, ascending, at most `limit`.
    pub(super) async fn indexed(
        &self,
        g1pk: &str,
        from: Option<String>,
        to: Option<String>,
        limit: usize,
        projection: &[&str],
    ) -> Result<Vec<Item>> {
        let condition = match (&from, &to) {
            (Some(_), Some(_)) => "g1pk = :p AND g1sk BETWEEN :from AND :to",
            (Some(_), None) => "g1pk = :p AND g1sk >= :from",
            (None, Some(_)) => "g1pk = :p AND g1sk <= :to",
            (None, None) => "g1pk = :p",
        };
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .key_condition_expression(condition)
                .expression_attribute_values(":p", s(g1pk))
                .set_exclusive_start_key(start)
                .limit((limit - out.len()).min(1000) as i32);
            if let Some(from) = &from {
                query = query.expression_attribute_values(":from", s(from.clone()));
            }
            if let Some(to) = &to {
                query = query.expression_attribute_values(":to", s(to.clone()));
            }
            if !projection.is_empty() {
                // Through aliases: `view`, `data` and the like are DynamoDB reserved words.
                let aliases: Vec<String> =
                    (0..projection.len()).map(|i| format!("#p{i}")).collect();
                query = query.projection_expression(aliases.join(", "));
                for (alias, attribute) in aliases.iter().zip(projection) {
                    query = query.expression_attribute_names(alias, *attribute);
                }
            }
            let page = query.send().await.map_err(|e| sdk("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    /// Writes `items` atomically. Returns `Cancelled` with the per-item reason codes when a
    /// condition failed (nothing was written).
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Outcome> {
        if items.is_empty() {
            return Ok(Outcome::Written);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Dynamo {
                operation: "TransactWriteItems",
                message: format!(
                    "{} writes in one change, more than DynamoDB's {MAX_TRANSACTION_ITEMS}",
                    items.len()
                ),
            });
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Outcome::Written),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => Ok(Outcome::Cancelled(
                    c.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect(),
                )),
                other => Err(StoreError::Dynamo {
                    operation: "TransactWriteItems",
                    message: DisplayErrorContext(other).to_string(),
                }),
            },
            Err(e) => Err(sdk("TransactWriteItems", e)),
        }
    }
}

pub(super) enum Outcome {
    Written,
    /// The reason code of each write, in order ("None" for those that were fine).
    Cancelled(Vec<String>),
}

pub(super) fn sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Dynamo {
        operation,
        message: DisplayErrorContext(error).to_string(),
    }
}

/// A conditional write's answer: written (true), its condition failed (false), or an error.
pub(super) fn conditional<T, E, R>(
    operation: &'static str,
    result: std::result::Result<T, SdkError<E, R>>,
) -> Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk(operation, e)),
    }
}

pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo {
        operation: "request",
        message: e.to_string(),
    }
}

/// The subset of a CreateTable input that `deploy/dynamodb/state-table.json` uses.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableDefinition {
    billing_mode: String,
    attribute_definitions: Vec<AttrDef>,
    key_schema: Vec<KeyDef>,
    global_secondary_indexes: Vec<IndexDef>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttrDef {
    attribute_name: String,
    attribute_type: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyDef {
    attribute_name: String,
    key_type: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexDef {
    index_name: String,
    key_schema: Vec<KeyDef>,
    projection: ProjectionDef,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionDef {
    projection_type: String,
}
