//! The DynamoDB store: the same [`Backend`] on one table (`deploy/dynamodb/state-table.json`),
//! for several replicas sharing one queue.
//!
//! Layout (partition key `pk`, sort key `sk`; one sparse index `by-state` on `g1pk`/`g1sk`):
//!
//! | item            | pk                | sk              | by-state (only while it matters)          |
//! |-----------------|-------------------|-----------------|-------------------------------------------|
//! | incident        | `INC#<key>`       | `#INC`          | `INCIDENT#active` / `INCIDENT#resolved`   |
//! | timeline entry  | `INC#<key>`       | `TL#<id>`       | —                                         |
//! | deadline        | `INC#<key>`       | `DL#<id>`       | `DEADLINE#pending`, sorted by due time    |
//! | outbox item     | `INC#<key>`       | `OB#<id>`       | `OUTBOX#pending`, sorted by id (settled: `expires_at`) |
//! | Slack thread    | `INC#<key>`       | `#THREAD`       | —                                         |
//! | processed event | `EVT#<id>`        | `#EVT`          | — (`expires_at` for TTL)                   |
//! | processed trans.| `TR#<transition>` | `#TR`           | — (`expires_at` for TTL)                   |
//! | silence         | `SILENCE`         | `<id>`          | —                                         |
//! | one-off claim   | `ONCE#<key>`      | `#ONCE`         | — (`expires_at` for TTL)                   |
//!
//! Who does what is decided by conditional writes, never by a lock service:
//! * an input's whole effect is one `TransactWriteItems`: a new incident is `attribute_not_exists`
//!   (the loser re-reads and joins the winner's incident), a changed one `version = :read`
//!   (optimistic; retried on conflict), and the processed markers are `attribute_not_exists`
//!   (a duplicate cancels the whole transaction: nothing is written twice);
//! * a deadline is claimed `pending → fired/skipped` with this replica as `owner`, in the same
//!   transaction as the escalation it queues, conditioned on the incident's `version`;
//! * an outbox item is leased (`lease_owner`, `lease_until`) before it is sent;
//! * a one-off job (e.g. one period's digest) is claimed by an `attribute_not_exists` put.
//!
//! Pending deadlines and notifications are found by querying the sparse index, not by scanning:
//! an item leaves the index when it stops being pending.

use super::plan::{self, Changes};
use super::{Applied, Backend, DueDeadline, InputRecord, OutboxItem, Result, Silence, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::{Decision, IncidentUpdate, Notification};
use pipeline_responder_core::incident::{IncidentView, IncidentsView};
use pipeline_responder_core::record::{DiagnosticResult, Incident, TimelineEntry};
use pipeline_responder_core::transition;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// The table description shipped in `deploy/` (what `create_table` creates).
pub const TABLE_DEFINITION: &str = include_str!("../../../../deploy/dynamodb/state-table.json");

/// The sparse index of pending work and incidents by state.
const INDEX: &str = "by-state";
/// `store.retention_days` unless configured: processed-event markers and settled posts are
/// kept this long (DynamoDB TTL on `expires_at` removes them); resolved incidents are removed
/// by the retention sweep (`prune`).
const DEFAULT_RETENTION_DAYS: i64 = 90;
/// Resolved incidents removed per retention sweep (the next sweep takes the rest).
const PRUNE_BATCH: usize = 100;
/// Attempts of an optimistic write before giving up (the input then comes back from SQS).
const MAX_ATTEMPTS: u32 = 12;
/// DynamoDB's limit of actions in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

const ACTIVE: &str = "INCIDENT#active";
const RESOLVED: &str = "INCIDENT#resolved";
const DEADLINE_PENDING: &str = "DEADLINE#pending";
const OUTBOX_PENDING: &str = "OUTBOX#pending";

/// Overlap of two consecutive view reads: covers clock skew between replicas and the index's
/// propagation delay (re-reading a few incidents twice is harmless).
const VIEW_MARGIN_MS: i64 = 5_000;

/// The DynamoDB store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// This replica, recorded on the deadlines it fires and the posts it leases.
    owner: String,
    /// The incidents as last read, refreshed by deltas (see `view`).
    views: Arc<tokio::sync::Mutex<ViewCache>>,
    /// `store.retention_days`: processed-event markers and settled posts carry `expires_at` this
    /// far ahead, for the table's TTL.
    retention: chrono::Duration,
}

/// Incident views by key, with the version each was read at.
#[derive(Debug, Default)]
struct ViewCache {
    views: HashMap<String, (i64, IncidentView)>,
    /// Wall-clock millis when the last read started (none before the first full read).
    refreshed_at: Option<i64>,
    /// The history window of the full read (an earlier `since` needs a new full read).
    since: i64,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, owner: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            owner: owner.into(),
            views: Arc::default(),
            retention: chrono::Duration::days(DEFAULT_RETENTION_DAYS),
        }
    }

    /// The same store with `store.retention_days` for its TTLs.
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention = chrono::Duration::days(days.into());
        self
    }

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

    fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
        HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>> {
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
    async fn load(&self, key: &str) -> Result<Option<(Incident, i64)>> {
        let Some(item) = self.get(incident_pk(key), "#INC").await? else {
            return Ok(None);
        };
        let incident: Incident = json(&item, "data")?;
        Ok(Some((incident, num(&item, "version")?)))
    }

    /// Items of one partition whose sort key starts with `prefix`, oldest first.
    async fn partition(&self, pk: String, prefix: &str) -> Result<Vec<Item>> {
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
    async fn indexed(
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
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Outcome> {
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

    /// Pending deadline items of an incident (to cancel them).
    async fn pending_deadline_items(&self, key: &str) -> Result<Vec<Item>> {
        Ok(self
            .partition(incident_pk(key), "DL#")
            .await?
            .into_iter()
            .filter(|i| str_attr(i, "state") == Some("pending"))
            .collect())
    }

    /// Writes for `changes` (incidents conditioned on the versions read).
    async fn change_writes(
        &self,
        changes: &Changes,
        versions: &HashMap<String, i64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>> {
        let mut writes = Vec::new();
        for (incident, new) in &changes.incidents {
            let version = if *new {
                None
            } else {
                versions.get(&incident.key).copied()
            };
            writes.push(self.put_incident(incident, version)?);
        }
        for (key, entry) in &changes.timeline {
            writes.push(self.put_timeline(key, entry)?);
        }
        for key in &changes.cancel {
            for item in self.pending_deadline_items(key).await? {
                writes.push(self.settle_deadline(&item, "cancelled")?);
            }
        }
        for (key, deadline) in &changes.schedule {
            // The plan schedules only for incidents it opens or refines, so the incident is here.
            let environment = changes
                .incidents
                .iter()
                .find(|(i, _)| &i.key == key)
                .map(|(i, _)| i.environment.clone())
                .unwrap_or_default();
            let id = next_id();
            let mut item = Self::key(incident_pk(key), format!("DL#{id:019}"));
            item.insert("id".into(), n(id));
            item.insert("key".into(), s(key.clone()));
            item.insert("state".into(), s("pending"));
            item.insert("at".into(), n(deadline.at.timestamp_millis()));
            item.insert("environment".into(), s(environment));
            item.insert("data".into(), s(to_json(deadline)?));
            item.insert("g1pk".into(), s(DEADLINE_PENDING));
            item.insert(
                "g1sk".into(),
                s(format!("{:013}#{id:019}", deadline.at.timestamp_millis())),
            );
            writes.push(self.put(item, None)?);
        }
        for q in &changes.outbox {
            writes.push(self.put_outbox(&q.key, &q.notification, q.note.as_deref(), now, q.due)?);
        }
        Ok(writes)
    }

    fn put(&self, item: Item, condition: Option<(&str, Item)>) -> Result<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expression, values)) = condition {
            put = put.condition_expression(expression);
            if !values.is_empty() {
                put = put.set_expression_attribute_values(Some(values));
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(condition);
        for (k, v) in names {
            update = update.expression_attribute_names(*k, *v);
        }
        if !values.is_empty() {
            update = update.set_expression_attribute_values(Some(values));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build())
    }

    /// The incident, conditioned on not existing (`version` None) or on the version read.
    fn put_incident(&self, incident: &Incident, version: Option<i64>) -> Result<TransactWriteItem> {
        let mut item = Self::key(incident_pk(&incident.key), "#INC");
        // Sorted by when it was last written (wall clock), so that `view` can read only what
        // changed since its last look.
        let g1pk = if incident.status.is_active() {
            ACTIVE
        } else {
            RESOLVED
        };
        let g1sk = format!("{:013}#{}", Utc::now().timestamp_millis(), incident.key);
        item.insert("g1pk".into(), s(g1pk));
        item.insert("g1sk".into(), s(g1sk));
        item.insert("key".into(), s(incident.key.clone()));
        item.insert("opened_at".into(), n(incident.opened_at.timestamp_millis()));
        item.insert("data".into(), s(to_json(incident)?));
        item.insert("view".into(), s(to_json(&incident.view())?));
        match version {
            None => {
                item.insert("version".into(), n(1));
                self.put(item, Some(("attribute_not_exists(pk)", Item::new())))
            }
            Some(v) => {
                item.insert("version".into(), n(v + 1));
                self.put(
                    item,
                    Some(("version = :v", HashMap::from([(":v".into(), n(v))]))),
                )
            }
        }
    }

    fn put_timeline(&self, key: &str, entry: &TimelineEntry) -> Result<TransactWriteItem> {
        let mut item = Self::key(incident_pk(key), format!("TL#{:019}", next_id()));
        item.insert("data".into(), s(to_json(entry)?));
        self.put(item, None)
    }

    fn put_outbox(
        &self,
        key: &str,
        notification: &Notification,
        note: Option<&str>,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        let id = next_id();
        let mut item = Self::key(incident_pk(key), format!("OB#{id:019}"));
        item.insert("id".into(), n(id));
        item.insert("key".into(), s(key));
        item.insert("notification".into(), s(to_json(notification)?));
        if let Some(note) = note {
            item.insert("note".into(), s(note));
        }
        item.insert("state".into(), s("pending"));
        item.insert("attempts".into(), n(0));
        item.insert("created_at".into(), n(now.timestamp_millis()));
        item.insert("next_attempt_at".into(), n(due.timestamp_millis()));
        item.insert("g1pk".into(), s(OUTBOX_PENDING));
        item.insert("g1sk".into(), s(format!("{id:019}")));
        self.put(item, None)
    }

    /// Takes a pending deadline out of the index with its final state, if still pending.
    fn settle_deadline(&self, item: &Item, state: &str) -> Result<TransactWriteItem> {
        self.update(
            item_key(item)?,
            "SET #state = :state, #owner = :owner REMOVE g1pk, g1sk",
            "#state = :pending",
            &[("#state", "state"), ("#owner", "owner")],
            HashMap::from([
                (":state".into(), s(state)),
                (":owner".into(), s(self.owner.clone())),
                (":pending".into(), s("pending")),
            ]),
        )
    }

    /// Ends an outbox item's pending life (`sent`, `failed`, `silenced`, `summarized`).
    fn settle_outbox(
        &self,
        (id, key): (i64, &str),
        state: &str,
        now: DateTime<Utc>,
        attempted: bool,
        error: Option<&str>,
    ) -> Result<TransactWriteItem> {
        let mut expression = String::from(
            "SET #state = :state, sent_at = :now, attempts = attempts + :inc, expires_at = :expires REMOVE g1pk, g1sk, lease_owner, lease_until",
        );
        let mut values = HashMap::from([
            (":state".into(), s(state)),
            (":now".into(), n(now.timestamp_millis())),
            (":inc".into(), n(i64::from(attempted))),
            (":expires".into(), n((now + self.retention).timestamp())),
        ]);
        if let Some(error) = error {
            expression = expression.replace("SET ", "SET last_error = :err, ");
            values.insert(":err".into(), s(error));
        }
        self.update(
            outbox_key(id, key),
            &expression,
            "attribute_exists(pk)",
            &[("#state", "state")],
            values,
        )
    }

    /// Runs an optimistic write until it lands or the attempts run out.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        for n in 0..MAX_ATTEMPTS {
            if let Some(done) = attempt().await? {
                return Ok(done);
            }
            let jitter: u64 = rand::random_range(0..20);
            tokio::time::sleep(Duration::from_millis(5 * u64::from(n + 1) + jitter)).await;
        }
        Err(StoreError::Contended(what.to_string()))
    }

    async fn try_apply(
        &self,
        input: &InputRecord,
        decision: &Decision,
        now: DateTime<Utc>,
        hold: Option<DateTime<Utc>>,
    ) -> Result<Option<Applied>> {
        let mut loaded = HashMap::new();
        let mut versions = HashMap::new();
        for key in plan::keys(decision) {
            if let Some((incident, version)) = self.load(&key).await? {
                versions.insert(key.clone(), version);
                loaded.insert(key, incident);
            }
        }
        let changes = plan::apply(input, decision, now, hold, loaded);
        let mut writes = self.change_writes(&changes, &versions, now).await?;
        // The processed markers go last; their condition failing means a duplicate.
        let expires = n((now + self.retention).timestamp());
        let markers = writes.len();
        for (pk, sk) in [
            (format!("EVT#{}", input.id), "#EVT"),
            (format!("TR#{}", input.transition), "#TR"),
        ] {
            let mut item = Self::key(pk, sk);
            item.insert("processed_at".into(), n(now.timestamp_millis()));
            item.insert("expires_at".into(), expires.clone());
            writes.push(self.put(item, Some(("attribute_not_exists(pk)", Item::new())))?);
        }
        match self.transact(writes).await? {
            Outcome::Written => Ok(Some(changes.applied)),
            Outcome::Cancelled(reasons) => {
                let duplicate = if reasons.is_empty() {
                    self.is_processed(&input.id, &input.transition).await?
                } else {
                    reasons[markers..]
                        .iter()
                        .any(|r| r == "ConditionalCheckFailed")
                };
                if duplicate {
                    Ok(Some(Applied {
                        duplicate: true,
                        ..Applied::default()
                    }))
                } else {
                    Ok(None)
                }
            }
        }
    }

    async fn try_fire(
        &self,
        due: &DueDeadline,
        notifications: &[Notification],
        now: DateTime<Utc>,
    ) -> Result<Option<bool>> {
        let Some(deadline) = self
            .get(incident_pk(&due.key), &format!("DL#{:019}", due.id))
            .await?
        else {
            return Ok(Some(false));
        };
        if str_attr(&deadline, "state") != Some("pending") {
            return Ok(Some(false));
        }
        let Some((mut incident, version)) = self.load(&due.key).await? else {
            return Ok(Some(false));
        };
        let fired = incident.fire(&due.deadline, now);
        let state = if fired.is_some() { "fired" } else { "skipped" };
        let mut writes = vec![self.settle_deadline(&deadline, state)?];
        if let Some(fire) = &fired {
            if fire.incident_changed {
                writes.push(self.put_incident(&incident, Some(version))?);
            } else {
                // The decision was made on this version of the incident: keep it so.
                writes.push(self.check_version(&due.key, version)?);
            }
            writes.push(self.put_timeline(&due.key, &fire.entry)?);
            for n in notifications {
                writes.push(self.put_outbox(&due.key, n, Some(&fire.note), now, now)?);
            }
        }
        match self.transact(writes).await? {
            Outcome::Written => Ok(Some(fired.is_some() && !notifications.is_empty())),
            Outcome::Cancelled(reasons) => {
                if reasons
                    .first()
                    .is_some_and(|r| r == "ConditionalCheckFailed")
                {
                    return Ok(Some(false)); // another replica claimed it first
                }
                Ok(None)
            }
        }
    }

    fn check_version(&self, key: &str, version: i64) -> Result<TransactWriteItem> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(incident_pk(key), "#INC")))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn outbox_item(item: &Item) -> Result<OutboxItem> {
        Ok(OutboxItem {
            id: num(item, "id")?,
            key: text(item, "key")?.to_string(),
            notification: json(item, "notification")?,
            note: str_attr(item, "note").map(String::from),
            attempts: u32::try_from(num(item, "attempts")?).unwrap_or(u32::MAX),
            created_at: millis(num(item, "created_at")?),
            next_attempt_at: millis(num(item, "next_attempt_at")?),
        })
    }
}

enum Outcome {
    Written,
    /// The reason code of each write, in order ("None" for those that were fine).
    Cancelled(Vec<String>),
}

impl DynamoStore {
    /// Removes each of `items` (incident index entries) whole unless it still owes a post.
    async fn prune_incidents(&self, items: &[Item], pruned: &mut super::Pruned) -> Result<()> {
        for item in items {
            let Some(key) = str_attr(item, "key") else {
                continue;
            };
            let partition = self.partition(incident_pk(key), "").await?;
            let owed = partition.iter().any(|i| {
                str_attr(i, "sk").is_some_and(|sk| sk.starts_with("OB#"))
                    && str_attr(i, "state") == Some("pending")
            });
            if owed {
                continue;
            }
            let (incident, rest): (Vec<&Item>, Vec<&Item>) = partition
                .iter()
                .partition(|i| str_attr(i, "sk") == Some("#INC"));
            for item in rest.into_iter().chain(incident) {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(item_key(item)?))
                    .send()
                    .await
                    .map_err(|e| sdk("DeleteItem", e))?;
                pruned.other += 1;
            }
            pruned.incidents += 1;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for DynamoStore {
    fn kind(&self) -> &'static str {
        "dynamodb"
    }

    async fn is_processed(&self, id: &str, transition: &str) -> Result<bool> {
        let keys = KeysAndAttributes::builder()
            .keys(Self::key(format!("EVT#{id}"), "#EVT"))
            .keys(Self::key(format!("TR#{transition}"), "#TR"))
            .consistent_read(true)
            .build()
            .map_err(build_error)?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|e| sdk("BatchGetItem", e))?;
        Ok(out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .is_some_and(|items| !items.is_empty()))
    }

    async fn view(&self, since: DateTime<Utc>) -> Result<IncidentsView> {
        let mut cache = self.views.lock().await;
        let started = Utc::now().timestamp_millis();
        let projection = ["view", "version"];
        let items = match cache.refreshed_at {
            // A delta: incidents written since the last look (with a margin for clock skew
            // between replicas and index propagation), not every active incident again.
            Some(last) if since.timestamp_millis() >= cache.since => {
                let from = Some(format!("{:013}", last - VIEW_MARGIN_MS));
                let mut items = self
                    .indexed(ACTIVE, from.clone(), None, usize::MAX, &projection)
                    .await?;
                items.extend(
                    self.indexed(RESOLVED, from, None, usize::MAX, &projection)
                        .await?,
                );
                items
            }
            _ => {
                cache.views.clear();
                cache.since = since.timestamp_millis();
                let mut items = self
                    .indexed(ACTIVE, None, None, usize::MAX, &projection)
                    .await?;
                items.extend(
                    self.indexed(
                        RESOLVED,
                        Some(format!("{:013}", since.timestamp_millis())),
                        None,
                        usize::MAX,
                        &projection,
                    )
                    .await?,
                );
                items
            }
        };
        for item in &items {
            let read =
                num(item, "version").and_then(|v| Ok((v, json::<IncidentView>(item, "view")?)));
            let Some((version, view)) = readable(read) else {
                continue;
            };
            match cache.views.get(&view.key) {
                Some((known, _)) if *known >= version => {}
                _ => {
                    cache.views.insert(view.key.clone(), (version, view));
                }
            }
        }
        cache.refreshed_at = Some(started);
        // Incidents resolved before the history window are not needed any more.
        cache
            .views
            .retain(|_, (_, v)| v.status.is_active() || v.resolved_at.is_some_and(|r| r >= since));
        cache.since = cache.since.max(since.timestamp_millis());
        Ok(IncidentsView::new(
            cache.views.values().map(|(_, v)| v.clone()).collect(),
        ))
    }

    async fn apply(
        &self,
        input: InputRecord,
        decision: Decision,
        now: DateTime<Utc>,
        hold_first_post_until: Option<DateTime<Utc>>,
    ) -> Result<Applied> {
        let what = format!("event {}", input.id);
        self.retrying(&what, || {
            self.try_apply(&input, &decision, now, hold_first_post_until)
        })
        .await
    }

    async fn incident(&self, key: &str) -> Result<Option<(Incident, Vec<TimelineEntry>)>> {
        let Some((incident, _)) = self.load(key).await? else {
            return Ok(None);
        };
        let mut timeline = Vec::new();
        for item in self.partition(incident_pk(key), "TL#").await? {
            timeline.extend(readable(json(&item, "data")));
        }
        Ok(Some((incident, timeline)))
    }

    async fn incidents(&self, active_only: bool) -> Result<Vec<Incident>> {
        let mut items = self.indexed(ACTIVE, None, None, usize::MAX, &[]).await?;
        if !active_only {
            items.extend(self.indexed(RESOLVED, None, None, usize::MAX, &[]).await?);
        }
        let mut out: Vec<Incident> = Vec::with_capacity(items.len());
        for item in &items {
            out.extend(readable(json(item, "data")));
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.opened_at));
        Ok(out)
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        self.indexed(OUTBOX_PENDING, None, None, limit, &[])
            .await?
            .iter()
            .map(Self::outbox_item)
            .collect()
    }

    async fn outbox_claim(&self, item: &OutboxItem, now: DateTime<Utc>) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(item.id, &item.key)))
            .update_expression("SET lease_owner = :me, lease_until = :until")
            .condition_expression(
                "#state = :pending AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":me", s(self.owner.clone()))
            .expression_attribute_values(":until", n((now + plan::LEASE).timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk("UpdateItem", e)),
        }
    }

    async fn outbox_sent(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        thread: Option<(String, String)>,
    ) -> Result<()> {
        if let Some((channel, ts)) = thread {
            // The first thread wins (INSERT OR IGNORE): a second one is simply not recorded.
            let mut record = Self::key(incident_pk(&item.key), "#THREAD");
            record.insert("channel".into(), s(channel));
            record.insert("ts".into(), s(ts));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            if let Err(e) = put {
                if !e
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    return Err(sdk("PutItem", e));
                }
            }
        }
        let writes = vec![
            self.settle_outbox((item.id, &item.key), "sent", now, true, None)?,
            self.put_timeline(&item.key, &TimelineEntry::sent(&item.notification, now))?,
        ];
        self.transact(writes).await?;
        Ok(())
    }

    async fn outbox_failed(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let writes = match retry_at {
            Some(at) => vec![self.update(
                outbox_key(item.id, &item.key),
                "SET attempts = attempts + :one, next_attempt_at = :at, last_error = :err REMOVE lease_owner, lease_until",
                "attribute_exists(pk)",
                &[],
                HashMap::from([
                    (":one".into(), n(1)),
                    (":at".into(), n(at.timestamp_millis())),
                    (":err".into(), s(error)),
                ]),
            )?],
            None => vec![
                self.settle_outbox((item.id, &item.key), "failed", now, true, Some(&error))?,
                self.put_timeline(&item.key, &TimelineEntry::gave_up(&item.notification, &error, now))?,
            ],
        };
        self.transact(writes).await?;
        Ok(())
    }

    async fn record_diagnosis(
        &self,
        key: &str,
        results: Vec<DiagnosticResult>,
        update: IncidentUpdate,
        follow_ups: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let what = format!("diagnosis of {key}");
        self.retrying(&what, || async {
            let Some((mut incident, version)) = self.load(key).await? else {
                return Ok(Some(false));
            };
            let entries = incident.diagnose(&results, &update, now);
            let mut writes = vec![self.put_incident(&incident, Some(version))?];
            for entry in &entries {
                writes.push(self.put_timeline(key, entry)?);
            }
            let outbox = self.partition(incident_pk(key), "OB#").await?;
            let mut released = false;
            let mut sent = Vec::new();
            for item in &outbox {
                let state = str_attr(item, "state");
                if state == Some("pending")
                    && num(item, "attempts")? == 0
                    && num(item, "next_attempt_at")? > now.timestamp_millis()
                {
                    released = true;
                    writes.push(self.update(
                        item_key(item)?,
                        "SET next_attempt_at = :now",
                        "#state = :pending",
                        &[("#state", "state")],
                        HashMap::from([
                            (":now".into(), n(now.timestamp_millis())),
                            (":pending".into(), s("pending")),
                        ]),
                    )?);
                } else if state == Some("sent") {
                    sent.push(json::<Notification>(item, "notification")?);
                }
            }
            for follow_up in transition::follow_ups(&sent, &follow_ups) {
                writes.push(self.put_outbox(key, &follow_up, Some("diagnostics"), now, now)?);
            }
            Ok(match self.transact(writes).await? {
                Outcome::Written => Some(released),
                Outcome::Cancelled(_) => None,
            })
        })
        .await
    }

    async fn acknowledge(
        &self,
        key: &str,
        by: &str,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let what = format!("acknowledgement of {key}");
        self.retrying(&what, || async {
            let Some((mut incident, version)) = self.load(key).await? else {
                return Ok(Some(false));
            };
            let Some(entry) = incident.acknowledge(by, now) else {
                return Ok(Some(false));
            };
            let mut writes = vec![
                self.put_incident(&incident, Some(version))?,
                self.put_timeline(key, &entry)?,
            ];
            for n in &notifications {
                writes.push(self.put_outbox(key, n, Some(&entry.text), now, now)?);
            }
            Ok(match self.transact(writes).await? {
                Outcome::Written => Some(true),
                Outcome::Cancelled(_) => None,
            })
        })
        .await
    }

    async fn resolve(
        &self,
        key: &str,
        by: &str,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let what = format!("resolution of {key}");
        self.retrying(&what, || async {
            let Some((mut incident, version)) = self.load(key).await? else {
                return Ok(Some(false));
            };
            let Some(entry) = incident.resolve_by(by, now) else {
                return Ok(Some(false));
            };
            let mut writes = vec![
                self.put_incident(&incident, Some(version))?,
                self.put_timeline(key, &entry)?,
            ];
            for item in self.pending_deadline_items(key).await? {
                writes.push(self.settle_deadline(&item, "cancelled")?);
            }
            for n in &notifications {
                writes.push(self.put_outbox(key, n, Some(&entry.text), now, now)?);
            }
            Ok(match self.transact(writes).await? {
                Outcome::Written => Some(true),
                Outcome::Cancelled(_) => None,
            })
        })
        .await
    }

    async fn due_deadlines(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueDeadline>> {
        let to = format!("{:013}#9999999999999999999", now.timestamp_millis());
        let mut out = Vec::new();
        for item in self
            .indexed(DEADLINE_PENDING, None, Some(to), limit, &[])
            .await?
        {
            out.push(DueDeadline {
                id: num(&item, "id")?,
                key: text(&item, "key")?.to_string(),
                deadline: json(&item, "data")?,
                environment: text(&item, "environment")?.to_string(),
            });
        }
        Ok(out)
    }

    async fn pending_deadlines(&self) -> Result<i64> {
        // A COUNT query reads (and bills) the same items; this one reads only their ids.
        let pending = self
            .indexed(DEADLINE_PENDING, None, None, usize::MAX, &["id"])
            .await?;
        Ok(i64::try_from(pending.len()).unwrap_or(i64::MAX))
    }

    async fn next_deadline_at(&self) -> Result<Option<DateTime<Utc>>> {
        let first = self.indexed(DEADLINE_PENDING, None, None, 1, &[]).await?;
        first
            .first()
            .map(|item| num(item, "at").map(millis))
            .transpose()
    }

    async fn fire_deadline(
        &self,
        due: DueDeadline,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let what = format!("deadline {} of {}", due.deadline.level_id, due.key);
        self.retrying(&what, || self.try_fire(&due, &notifications, now))
            .await
    }

    async fn outbox_summarized(&self, items: Vec<(i64, String)>, now: DateTime<Utc>) -> Result<()> {
        for chunk in items.chunks(MAX_TRANSACTION_ITEMS / 2) {
            let mut writes = Vec::new();
            for (id, key) in chunk {
                writes.push(self.settle_outbox((*id, key), "summarized", now, false, None)?);
                writes.push(self.put_timeline(key, &TimelineEntry::summarized(now))?);
            }
            self.transact(writes).await?;
        }
        Ok(())
    }

    async fn outbox_defer(&self, items: Vec<(i64, String)>, at: DateTime<Utc>) -> Result<()> {
        for (id, key) in items {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(outbox_key(id, &key)))
                .update_expression("SET next_attempt_at = :at REMOVE lease_owner, lease_until")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":at", n(at.timestamp_millis()))
                .send()
                .await
                .map_err(|e| sdk("UpdateItem", e))?;
        }
        Ok(())
    }

    async fn add_silence(&self, silence: Silence) -> Result<i64> {
        let id = next_id();
        let mut item = Self::key("SILENCE", format!("{id:019}"));
        item.insert("ends_at".into(), n(silence.ends_at.timestamp_millis()));
        item.insert("data".into(), s(to_json(&Silence { id, ..silence })?));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(id)
    }

    async fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>> {
        let mut out = Vec::new();
        for item in self.partition("SILENCE".into(), "").await? {
            let silence: Silence = json(&item, "data")?;
            if silence.ends_at > now {
                out.push(silence);
            }
        }
        Ok(out)
    }

    async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let Some(item) = self.get("SILENCE".into(), &format!("{id:019}")).await? else {
            return Ok(false);
        };
        let silence: Silence = json(&item, "data")?;
        if silence.ends_at <= now {
            return Ok(false);
        }
        let ended = Silence {
            ends_at: now,
            ..silence
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key("SILENCE", format!("{id:019}"))))
            .update_expression("SET ends_at = :now, #data = :data")
            .condition_expression("ends_at > :now")
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":data", s(to_json(&ended)?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk("UpdateItem", e)),
        }
    }

    async fn outbox_silenced(
        &self,
        item: &OutboxItem,
        silence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let writes = vec![
            self.settle_outbox((item.id, &item.key), "silenced", now, false, None)?,
            self.put_timeline(
                &item.key,
                &TimelineEntry::silenced(&item.notification, silence_id, now),
            )?,
        ];
        self.transact(writes).await?;
        Ok(())
    }

    async fn probe(&self, now: DateTime<Utc>) -> Result<()> {
        let mut item = Self::key(format!("PROBE#{}", self.owner), "#PROBE");
        item.insert("probed_at".into(), n(now.timestamp_millis()));
        item.insert("expires_at".into(), n(now.timestamp() + 86_400));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk("PutItem", e))
    }

    /// Resolved incidents last written before `before` and owing no post are removed whole
    /// (every item of their partition, the incident item last, so a sweep cut short is finished
    /// by the next). Processed markers and settled posts expire by TTL instead.
    async fn prune(&self, before: DateTime<Utc>, _now: DateTime<Utc>) -> Result<super::Pruned> {
        let mut pruned = super::Pruned::default();
        let to = format!("{:013}", before.timestamp_millis());
        let mut from: Option<String> = None;
        loop {
            let items = self
                .indexed(
                    RESOLVED,
                    from.clone(),
                    Some(to.clone()),
                    PRUNE_BATCH,
                    &["key", "g1sk"],
                )
                .await?;
            self.prune_incidents(&items, &mut pruned).await?;
            match items.last().and_then(|i| str_attr(i, "g1sk")) {
                // The next page starts just after this one's last (kept ones are not read again).
                Some(last) if items.len() == PRUNE_BATCH => from = Some(format!("{last}\u{0}")),
                _ => return Ok(pruned),
            }
        }
    }

    async fn claim_once(&self, key: &str, now: DateTime<Utc>, keep_days: u32) -> Result<bool> {
        let mut item = Self::key(format!("ONCE#{key}"), "#ONCE");
        item.insert("owner".into(), s(self.owner.clone()));
        item.insert("claimed_at".into(), n(now.timestamp_millis()));
        item.insert(
            "expires_at".into(),
            n(plan::claim_expires(now, keep_days).timestamp()),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // A lapsed claim lingers until the TTL sweep removes it (up to days): it is gone
            // already, as in the embedded store.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk("PutItem", e)),
        }
    }

    async fn thread(&self, key: &str) -> Result<Option<(String, String)>> {
        let Some(item) = self.get(incident_pk(key), "#THREAD").await? else {
            return Ok(None);
        };
        Ok(Some((
            text(&item, "channel")?.to_string(),
            text(&item, "ts")?.to_string(),
        )))
    }
}

/// A unique, increasing id: microseconds since the epoch × 1000 plus a random part (so two
/// replicas writing in the same microsecond do not collide), never below the last one given.
fn next_id() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let micros = Utc::now().timestamp_micros();
    let candidate = micros * 1000 + rand::random_range(0..1000);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let id = candidate.max(last + 1);
        match LAST.compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(actual) => last = actual,
        }
    }
}

fn incident_pk(key: &str) -> String {
    format!("INC#{key}")
}

fn outbox_key(id: i64, key: &str) -> Item {
    DynamoStore::key(incident_pk(key), format!("OB#{id:019}"))
}

fn item_key(item: &Item) -> Result<Item> {
    Ok(DynamoStore::key(text(item, "pk")?, text(item, "sk")?))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn malformed(item: &Item, problem: String) -> StoreError {
    let id = |name| str_attr(item, name).unwrap_or("?").to_string();
    StoreError::Malformed {
        item: format!("{}/{}", id("pk"), id("sk")),
        problem,
    }
}

/// What a read of many items makes of one: an item that cannot be read (written by another
/// program, or by a newer version) is counted (`store_errors_total{operation="unreadable_row"}`)
/// and logged with its id, and left out, so the rest is still served.
fn readable<T>(read: Result<T>) -> Option<T> {
    match read {
        Ok(value) => Some(value),
        Err(e) => {
            super::count_unreadable();
            tracing::error!(error = %e, "Store: an item is unreadable; left out, serving the rest");
            None
        }
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    str_attr(item, name).ok_or_else(|| malformed(item, format!("no string attribute `{name}`")))
}

fn num(item: &Item, name: &str) -> Result<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed(item, format!("no integer attribute `{name}`")))
}

fn json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T> {
    serde_json::from_str(text(item, name)?)
        .map_err(|e| malformed(item, format!("attribute `{name}`: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

fn sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Dynamo {
        operation,
        message: DisplayErrorContext(error).to_string(),
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
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
