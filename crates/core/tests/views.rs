//! The incidents view's indexes answer exactly what a scan of every incident would, after any
//! sequence of inserts, replacements, removals and history cuts.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use pipeline_responder_core::incident::{
    IncidentStatus, IncidentType, IncidentView, IncidentsView, Severity,
};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;

fn t(minute: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap() + Duration::minutes(minute)
}

#[derive(Debug, Clone)]
enum Op {
    Put(Box<IncidentView>),
    Remove(u8),
    Forget(i64),
}

fn incident() -> impl Strategy<Value = IncidentView> {
    (
        0u8..12,
        0usize..6,
        0u8..3,
        0u8..3,
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..2),
        0u8..3,
        0i64..40,
        proptest::option::of(0usize..3),
        0u8..5,
    )
        .prop_map(
            |(key, kind, env, pipeline, exec, sig, status, opened, level, severity)| {
                let status = [
                    IncidentStatus::Open,
                    IncidentStatus::Acknowledged,
                    IncidentStatus::Resolved,
                ][status as usize];
                IncidentView {
                    key: format!("k{key}"),
                    incident_type: IncidentType::ALL[kind],
                    environment: format!("env{env}"),
                    pipeline: format!("p{pipeline}"),
                    execution_id: exec.map(|e| format!("e{e}")),
                    execution_start: None,
                    failed_stage: None,
                    action: None,
                    alarms: vec![],
                    error_signature: sig.map(|s| format!("S{s}")),
                    severity: [
                        Severity::Info,
                        Severity::Low,
                        Severity::Medium,
                        Severity::High,
                        Severity::Critical,
                    ][severity as usize],
                    status,
                    opened_at: t(opened),
                    resolved_at: (status == IncidentStatus::Resolved).then(|| t(opened + 5)),
                    highest_level_notified: level,
                    resolution: None,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => incident().prop_map(|i| Op::Put(Box::new(i))),
        2 => (0u8..12).prop_map(Op::Remove),
        1 => (0i64..50).prop_map(Op::Forget),
    ]
}

fn keys<'a>(it: impl Iterator<Item = &'a IncidentView>) -> Vec<String> {
    it.map(|i| i.key.clone()).collect()
}

fn member(i: &IncidentView) -> bool {
    i.status.is_active()
        && i.incident_type != IncidentType::ApprovalPending
        && i.severity > Severity::Info
}

proptest! {
    #[test]
    fn indexes_agree_with_a_scan(ops in proptest::collection::vec(op(), 0..60), since in 0i64..45, level in 0usize..3) {
        let mut view = IncidentsView::default();
        let mut model: Vec<IncidentView> = Vec::new();
        for op in ops {
            match op {
                Op::Put(i) => {
                    model.retain(|m| m.key != i.key);
                    model.push((*i).clone());
                    view.insert(Arc::new(*i));
                }
                Op::Remove(k) => {
                    let key = format!("k{k}");
                    model.retain(|m| m.key != key);
                    view.remove(&key);
                }
                Op::Forget(at) => {
                    model.retain(|m| m.resolved_at.is_none_or(|r| r >= t(at)));
                    view.forget_resolved_before(t(at));
                }
            }
        }
        model.sort_by(|a, b| (a.opened_at, &a.key).cmp(&(b.opened_at, &b.key)));
        let since = t(since);
        prop_assert_eq!(view.len(), model.len());
        prop_assert_eq!(keys(view.iter()), keys(model.iter()));
        for m in &model {
            prop_assert_eq!(view.get(&m.key), Some(m));
        }
        for p in ["p0", "p1", "p2"] {
            prop_assert_eq!(keys(view.active_on(p)), keys(model.iter().filter(|m| m.pipeline == p && m.status.is_active())));
            prop_assert_eq!(keys(view.active_on(p).rev()), keys(model.iter().rev().filter(|m| m.pipeline == p && m.status.is_active())));
            prop_assert_eq!(keys(view.active_without_execution(p)), keys(model.iter().filter(|m| m.pipeline == p && m.status.is_active() && m.execution_id.is_none())));
            prop_assert_eq!(keys(view.on_pipeline_since(p, since)), keys(model.iter().filter(|m| m.pipeline == p && m.opened_at >= since)));
            for e in ["e0", "e1", "e2"] {
                prop_assert_eq!(keys(view.of_execution(p, e)), keys(model.iter().filter(|m| m.pipeline == p && m.execution_id.as_deref() == Some(e))));
            }
        }
        let envs: BTreeSet<&str> = model.iter().filter(|m| member(m) && m.opened_at >= since).map(|m| m.environment.as_str()).collect();
        prop_assert_eq!(view.member_environments_since(since), envs);
        let below = |m: &&IncidentView| member(m) && m.opened_at >= since && m.highest_level_notified.is_none_or(|r| r < level);
        prop_assert_eq!(keys(view.members_below(level, since).into_iter()), keys(model.iter().filter(below)));
        for s in ["S0", "S1"] {
            let same = |m: &&IncidentView| m.error_signature.as_deref() == Some(s);
            prop_assert_eq!(keys(view.signature_members_below(s, level, since).into_iter()), keys(model.iter().filter(below).filter(same)));
            let pipelines: BTreeSet<&str> = model.iter().filter(|m| member(m) && m.opened_at >= since).filter(same).map(|m| m.pipeline.as_str()).collect();
            prop_assert_eq!(view.signature_pipelines_since(s, since, 100), pipelines.clone());
            prop_assert_eq!(view.signature_pipelines_since(s, since, 1).len(), pipelines.len().min(1));
        }
    }
}
