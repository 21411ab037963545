//! The [`Backend`] operations on the table.

use super::codec::{
    incident_pk, item_key, json, millis, n, next_id, num, outbox_key, readable, s, str_attr, text,
    to_json,
};
use super::table::{build_error, conditional, sdk, Outcome};
use super::{
    DynamoStore, ACTIVE, DEADLINE_PENDING, MAX_TRANSACTION_ITEMS, OUTBOX_PENDING, PRUNE_BATCH,
    RESOLVED, VIEW_MARGIN_MS,
};
use crate::store::plan::{self};
use crate::store::{
    Applied, Backend, Close, Closing, DueDeadline, InputRecord, OutboxItem, Result, Silence,
};
use aws_sdk_dynamodb::types::KeysAndAttributes;
use chrono::{DateTime, Utc};
use pipeline_responder_core::actions::ActionRecord;
use pipeline_responder_core::decision::{Decision, IncidentUpdate, Notification};
use pipeline_responder_core::incident::{IncidentView, IncidentsView};
use pipeline_responder_core::record::{DiagnosticResult, Incident, TimelineEntry};
use pipeline_responder_core::transition;
use std::collections::HashMap;
use std::sync::Arc;

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

    async fn view(&self, since: DateTime<Utc>) -> Result<Arc<IncidentsView>> {
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
                cache.views = Arc::default();
                cache.versions.clear();
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
            if cache
                .versions
                .get(&view.key)
                .is_some_and(|known| *known >= version)
            {
                continue;
            }
            cache.versions.insert(view.key.clone(), version);
            Arc::make_mut(&mut cache.views).insert(Arc::new(view));
        }
        cache.refreshed_at = Some(started);
        // Incidents resolved before the history window are not needed any more.
        let cache = &mut *cache;
        let views = Arc::make_mut(&mut cache.views);
        views.forget_resolved_before(since);
        cache.versions.retain(|key, _| views.get(key).is_some());
        cache.since = cache.since.max(since.timestamp_millis());
        Ok(Arc::clone(&cache.views))
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
        conditional("UpdateItem", result)
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
            // Already recorded (a retried send): the first thread stays.
            conditional("PutItem", put)?;
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
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.close(Close::Acknowledge, key, by, notifications, now)
            .await
    }

    async fn resolve(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.close(Close::Resolve, key, by, notifications, now)
            .await
    }

    async fn record_action(
        &self,
        key: &str,
        record: ActionRecord,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let by = record.by.clone();
        self.close(Close::Act(record), key, &by, notifications, now)
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
        conditional("UpdateItem", result)
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
    async fn prune(
        &self,
        before: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<crate::store::Pruned> {
        let mut pruned = crate::store::Pruned::default();
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
        conditional("PutItem", result)
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

impl DynamoStore {
    /// An acknowledgement or resolution by hand, conditioned on the version read.
    async fn close(
        &self,
        close: Close,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let what = format!("{} of {key}", close.what());
        self.retrying(&what, || async {
            let Some((mut incident, version)) = self.load(key).await? else {
                return Ok(Some(false));
            };
            let Some(entry) = close.apply(&mut incident, by, now) else {
                return Ok(Some(false));
            };
            let mut writes = vec![
                self.put_incident(&incident, Some(version))?,
                self.put_timeline(key, &entry)?,
            ];
            if !incident.status.is_active() {
                for item in self.pending_deadline_items(key).await? {
                    writes.push(self.settle_deadline(&item, "cancelled")?);
                }
            }
            for n in &notifications(&incident) {
                writes.push(self.put_outbox(key, n, Some(&entry.text), now, now)?);
            }
            Ok(match self.transact(writes).await? {
                Outcome::Written => Some(true),
                Outcome::Cancelled(_) => None,
            })
        })
        .await
    }
}
