//! Items: how incidents, timeline entries, deadlines and posts are written as DynamoDB items,
//! and how attributes are read back.

use super::table::build_error;
use super::{DynamoStore, Item, ACTIVE, OUTBOX_PENDING, RESOLVED};
use crate::store::{OutboxItem, Result, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::Notification;
use pipeline_responder_core::record::{Incident, TimelineEntry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

impl DynamoStore {
    pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
        HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
    }

    pub(super) fn put(
        &self,
        item: Item,
        condition: Option<(&str, Item)>,
    ) -> Result<TransactWriteItem> {
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

    pub(super) fn update(
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
    pub(super) fn put_incident(
        &self,
        incident: &Incident,
        version: Option<i64>,
    ) -> Result<TransactWriteItem> {
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

    pub(super) fn put_timeline(
        &self,
        key: &str,
        entry: &TimelineEntry,
    ) -> Result<TransactWriteItem> {
        let mut item = Self::key(incident_pk(key), format!("TL#{:019}", next_id()));
        item.insert("data".into(), s(to_json(entry)?));
        self.put(item, None)
    }

    pub(super) fn put_outbox(
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
    pub(super) fn settle_deadline(&self, item: &Item, state: &str) -> Result<TransactWriteItem> {
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
    pub(super) fn settle_outbox(
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

    pub(super) fn check_version(&self, key: &str, version: i64) -> Result<TransactWriteItem> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(incident_pk(key), "#INC")))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    pub(super) fn outbox_item(item: &Item) -> Result<OutboxItem> {
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

/// A unique, increasing id: microseconds since the epoch × 1000 plus a random part (so two
/// replicas writing in the same microsecond do not collide), never below the last one given.
pub(super) fn next_id() -> i64 {
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

pub(super) fn incident_pk(key: &str) -> String {
    format!("INC#{key}")
}

pub(super) fn outbox_key(id: i64, key: &str) -> Item {
    DynamoStore::key(incident_pk(key), format!("OB#{id:019}"))
}

pub(super) fn item_key(item: &Item) -> Result<Item> {
    Ok(DynamoStore::key(text(item, "pk")?, text(item, "sk")?))
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(super) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn malformed(item: &Item, problem: String) -> StoreError {
    let id = |name| str_attr(item, name).unwrap_or("?").to_string();
    StoreError::Malformed {
        item: format!("{}/{}", id("pk"), id("sk")),
        problem,
    }
}

/// What a read of many items makes of one: an item that cannot be read (written by another
/// program, or by a newer version) is counted (`store_errors_total{operation="unreadable_row"}`)
/// and logged with its id, and left out, so the rest is still served.
pub(super) fn readable<T>(read: Result<T>) -> Option<T> {
    match read {
        Ok(value) => Some(value),
        Err(e) => {
            crate::store::count_unreadable();
            tracing::error!(error = %e, "Store: an item is unreadable; left out, serving the rest");
            None
        }
    }
}

pub(super) fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    str_attr(item, name).ok_or_else(|| malformed(item, format!("no string attribute `{name}`")))
}

pub(super) fn num(item: &Item, name: &str) -> Result<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed(item, format!("no integer attribute `{name}`")))
}

pub(super) fn json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T> {
    serde_json::from_str(text(item, name)?)
        .map_err(|e| malformed(item, format!("attribute `{name}`: {e}")))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}
