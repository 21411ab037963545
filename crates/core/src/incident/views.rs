//! [`IncidentsView`]: the incidents the rules consult, indexed so that deciding one event costs
//! the same with 10 or 10,000 open incidents. Every lookup the rules make goes through an index
//! keyed by what the rule asks (the key, the pipeline, the execution, the cross rules' members
//! by environment, level reached and error signature); none scans unrelated incidents.

use super::{IncidentType, IncidentView, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Where an incident sits in opening order (the order every lookup answers in).
type Slot = (DateTime<Utc>, String);

/// A cross-rule member by the level it reached (`0` = none yet, `n` = level `n - 1`).
type Ranked = (usize, DateTime<Utc>, String);

/// The incidents the rules may consult: the open ones plus recently resolved ones (for
/// recurrence rules such as "slow three times in seven days").
#[derive(Debug, Clone, Default)]
pub struct IncidentsView {
    by_key: HashMap<String, Arc<IncidentView>>,
    /// Every incident, in opening order.
    all: BTreeSet<Slot>,
    /// Resolved incidents by resolution time (what [`IncidentsView::forget_resolved_before`]
    /// drops first).
    resolved: BTreeSet<(DateTime<Utc>, String)>,
    /// Every incident of a pipeline.
    by_pipeline: HashMap<String, BTreeSet<Slot>>,
    /// Active incidents of a pipeline.
    active_by_pipeline: HashMap<String, BTreeSet<Slot>>,
    /// Incidents of one execution (pipeline, execution id).
    by_execution: HashMap<(String, String), BTreeSet<Slot>>,
    /// Active incidents of a pipeline whose execution is not known yet.
    active_unexecuted: HashMap<String, BTreeSet<Slot>>,
    /// Cross-rule members (active, not an approval, above info) by environment.
    members_by_environment: HashMap<String, BTreeSet<Slot>>,
    /// Cross-rule members by the level they reached.
    members_by_rank: BTreeSet<Ranked>,
    /// Cross-rule members by error signature, and by signature and level reached.
    members_by_signature: HashMap<String, BTreeSet<Slot>>,
    members_by_signature_rank: HashMap<String, BTreeSet<Ranked>>,
}

/// The serialized form of [`IncidentsView`] (`explain --incidents FILE`).
#[derive(Serialize, Deserialize)]
struct ViewsData {
    incidents: Vec<IncidentView>,
}

impl Serialize for IncidentsView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ViewsData {
            incidents: self.iter().cloned().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IncidentsView {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::new(ViewsData::deserialize(deserializer)?.incidents))
    }
}

impl PartialEq for IncidentsView {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

fn is_member(view: &IncidentView) -> bool {
    view.status.is_active()
        && view.incident_type != IncidentType::ApprovalPending
        && view.severity > Severity::Info
}

fn rank(view: &IncidentView) -> usize {
    view.highest_level_notified.map_or(0, |level| level + 1)
}

fn add(index: &mut HashMap<String, BTreeSet<Slot>>, name: &str, slot: &Slot) {
    index
        .entry(name.to_string())
        .or_default()
        .insert(slot.clone());
}

fn take<
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
    T: Ord,
>(
    index: &mut HashMap<K, BTreeSet<T>>,
    name: &Q,
    item: &T,
) {
    if let Some(set) = index.get_mut(name) {
        set.remove(item);
        if set.is_empty() {
            index.remove(name);
        }
    }
}

impl IncidentsView {
    pub fn new(incidents: Vec<IncidentView>) -> Self {
        Self::shared(incidents.into_iter().map(Arc::new).collect())
    }

    /// A view over views someone else also holds.
    pub fn shared(incidents: Vec<Arc<IncidentView>>) -> Self {
        let mut view = Self::default();
        for incident in incidents {
            view.insert(incident);
        }
        view
    }

    /// Adds an incident, or replaces the one with its key.
    pub fn insert(&mut self, incident: Arc<IncidentView>) {
        self.remove(&incident.key.clone());
        let i = &*incident;
        let slot: Slot = (i.opened_at, i.key.clone());
        self.all.insert(slot.clone());
        if let (false, Some(at)) = (i.status.is_active(), i.resolved_at) {
            self.resolved.insert((at, i.key.clone()));
        }
        add(&mut self.by_pipeline, &i.pipeline, &slot);
        if let Some(execution) = &i.execution_id {
            self.by_execution
                .entry((i.pipeline.clone(), execution.clone()))
                .or_default()
                .insert(slot.clone());
        }
        if i.status.is_active() {
            add(&mut self.active_by_pipeline, &i.pipeline, &slot);
            if i.execution_id.is_none() {
                add(&mut self.active_unexecuted, &i.pipeline, &slot);
            }
        }
        if is_member(i) {
            add(&mut self.members_by_environment, &i.environment, &slot);
            let ranked = (rank(i), i.opened_at, i.key.clone());
            self.members_by_rank.insert(ranked.clone());
            if let Some(signature) = &i.error_signature {
                add(&mut self.members_by_signature, signature, &slot);
                self.members_by_signature_rank
                    .entry(signature.clone())
                    .or_default()
                    .insert(ranked);
            }
        }
        self.by_key.insert(i.key.clone(), incident);
    }

    /// Removes the incident with `key`, if the view has it.
    pub fn remove(&mut self, key: &str) -> Option<Arc<IncidentView>> {
        let incident = self.by_key.remove(key)?;
        let i = &*incident;
        let slot: Slot = (i.opened_at, i.key.clone());
        self.all.remove(&slot);
        if let Some(at) = i.resolved_at {
            self.resolved.remove(&(at, i.key.clone()));
        }
        take(&mut self.by_pipeline, i.pipeline.as_str(), &slot);
        take(&mut self.active_by_pipeline, i.pipeline.as_str(), &slot);
        take(&mut self.active_unexecuted, i.pipeline.as_str(), &slot);
        if let Some(execution) = &i.execution_id {
            take(
                &mut self.by_execution,
                &(i.pipeline.clone(), execution.clone()),
                &slot,
            );
        }
        take(
            &mut self.members_by_environment,
            i.environment.as_str(),
            &slot,
        );
        let ranked = (rank(i), i.opened_at, i.key.clone());
        self.members_by_rank.remove(&ranked);
        if let Some(signature) = &i.error_signature {
            take(&mut self.members_by_signature, signature.as_str(), &slot);
            take(
                &mut self.members_by_signature_rank,
                signature.as_str(),
                &ranked,
            );
        }
        Some(incident)
    }

    /// Drops the incidents resolved before `since` (the rules look back no further).
    pub fn forget_resolved_before(&mut self, since: DateTime<Utc>) {
        while let Some((at, key)) = self.resolved.first().cloned() {
            if at >= since {
                break;
            }
            self.resolved.pop_first();
            self.remove(&key);
        }
    }

    pub fn get(&self, key: &str) -> Option<&IncidentView> {
        self.by_key.get(key).map(Arc::as_ref)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn at<'a>(
        &'a self,
        slots: impl DoubleEndedIterator<Item = &'a Slot> + 'a,
    ) -> impl DoubleEndedIterator<Item = &'a IncidentView> + 'a {
        slots.filter_map(|(_, key)| self.get(key))
    }

    fn slots<'a, Q: std::hash::Hash + Eq + ?Sized>(
        index: &'a HashMap<impl std::hash::Hash + Eq + std::borrow::Borrow<Q>, BTreeSet<Slot>>,
        name: &Q,
    ) -> impl DoubleEndedIterator<Item = &'a Slot> + 'a {
        index.get(name).into_iter().flatten()
    }

    /// Every incident, in opening order.
    pub fn iter(&self) -> impl Iterator<Item = &IncidentView> {
        self.at(self.all.iter())
    }

    /// Active incidents, in opening order.
    pub fn active(&self) -> impl Iterator<Item = &IncidentView> {
        self.iter().filter(|i| i.status.is_active())
    }

    /// Active incidents of `pipeline`, in opening order.
    pub fn active_on<'a>(
        &'a self,
        pipeline: &str,
    ) -> impl DoubleEndedIterator<Item = &'a IncidentView> + 'a {
        self.at(Self::slots(&self.active_by_pipeline, pipeline))
    }

    /// Every incident of `pipeline` (resolved ones too) opened at or after `since`.
    pub fn on_pipeline_since<'a>(
        &'a self,
        pipeline: &str,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a IncidentView> + 'a {
        let from: Slot = (since, String::new());
        self.at(self
            .by_pipeline
            .get(pipeline)
            .into_iter()
            .flat_map(move |set| set.range(from.clone()..)))
    }

    /// Incidents (resolved ones too) of one execution of `pipeline`, in opening order.
    pub fn of_execution<'a>(
        &'a self,
        pipeline: &str,
        execution_id: &str,
    ) -> impl Iterator<Item = &'a IncidentView> + 'a {
        self.at(self
            .by_execution
            .get(&(pipeline.to_string(), execution_id.to_string()))
            .into_iter()
            .flatten())
    }

    /// Active incidents of `pipeline` whose execution is not known yet, in opening order.
    pub fn active_without_execution<'a>(
        &'a self,
        pipeline: &str,
    ) -> impl Iterator<Item = &'a IncidentView> + 'a {
        self.at(Self::slots(&self.active_unexecuted, pipeline))
    }

    /// The environments with a cross-rule member (active, not an approval, above info) opened at
    /// or after `since`.
    pub fn member_environments_since(&self, since: DateTime<Utc>) -> BTreeSet<&str> {
        self.members_by_environment
            .iter()
            .filter(|(_, slots)| slots.last().is_some_and(|(at, _)| *at >= since))
            .map(|(environment, _)| environment.as_str())
            .collect()
    }

    /// Cross-rule members opened at or after `since` that have not reached `level`, in opening
    /// order.
    pub fn members_below(&self, level: usize, since: DateTime<Utc>) -> Vec<&IncidentView> {
        self.ranked_below(&self.members_by_rank, level, since)
    }

    /// The distinct pipelines of cross-rule members with `signature` opened at or after `since`,
    /// newest first, counted up to `enough`.
    pub fn signature_pipelines_since(
        &self,
        signature: &str,
        since: DateTime<Utc>,
        enough: usize,
    ) -> BTreeSet<&str> {
        let mut pipelines = BTreeSet::new();
        let from: Slot = (since, String::new());
        for incident in self.at(self
            .members_by_signature
            .get(signature)
            .into_iter()
            .flat_map(move |set| set.range(from.clone()..).rev()))
        {
            if pipelines.len() >= enough {
                break;
            }
            pipelines.insert(incident.pipeline.as_str());
        }
        pipelines
    }

    /// Cross-rule members with `signature` opened at or after `since` that have not reached
    /// `level`, in opening order.
    pub fn signature_members_below(
        &self,
        signature: &str,
        level: usize,
        since: DateTime<Utc>,
    ) -> Vec<&IncidentView> {
        match self.members_by_signature_rank.get(signature) {
            Some(set) => self.ranked_below(set, level, since),
            None => Vec::new(),
        }
    }

    fn ranked_below<'a>(
        &'a self,
        set: &'a BTreeSet<Ranked>,
        level: usize,
        since: DateTime<Utc>,
    ) -> Vec<&'a IncidentView> {
        // Reached < level means rank ≤ level.
        let mut found: Vec<&IncidentView> = (0..=level)
            .flat_map(|r| {
                set.range(
                    (r, since, String::new())..(r + 1, DateTime::<Utc>::MIN_UTC, String::new()),
                )
            })
            .filter_map(|(_, _, key)| self.get(key))
            .collect();
        found.sort_by(|a, b| (a.opened_at, &a.key).cmp(&(b.opened_at, &b.key)));
        found
    }
}
