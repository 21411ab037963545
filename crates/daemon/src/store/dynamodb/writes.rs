//! One decision as one transaction: the writes a plan needs, optimistic retries, a fired
//! deadline, the retention sweep.

use super::codec::{incident_pk, item_key, n, next_id, s, str_attr, to_json};
use super::table::{sdk, Outcome};
use super::{DynamoStore, Item, DEADLINE_PENDING, MAX_ATTEMPTS};
use crate::store::plan::{self, Changes};
use crate::store::{Applied, Backend, DueDeadline, InputRecord, Result, StoreError};
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::{Decision, Notification};
use std::collections::HashMap;
use std::time::Duration;

impl DynamoStore {
    /// Pending deadline items of an incident (to cancel them).
    pub(super) async fn pending_deadline_items(&self, key: &str) -> Result<Vec<Item>> {
        Ok(self
            .partition(incident_pk(key), "DL#")
            .await?
            .into_iter()
            .filter(|i| str_attr(i, "state") == Some("pending"))
            .collect())
    }

    /// Writes for `changes` (incidents conditioned on the versions read).
    pub(super) async fn change_writes(
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

    /// Runs an optimistic write until it lands or the attempts run out.
    pub(super) async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
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

    pub(super) async fn try_apply(
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

    pub(super) async fn try_fire(
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

    /// Removes each of `items` (incident index entries) whole unless it still owes a post.
    pub(super) async fn prune_incidents(
        &self,
        items: &[Item],
        pruned: &mut crate::store::Pruned,
    ) -> Result<()> {
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
