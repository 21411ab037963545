//! `alarms`: the environment's CloudWatch alarms in ALARM.

use super::outcome::Evidence;
use super::outcome::{aws_reason, Outcome};
use super::Diagnoser;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Environment;

/// The alarms under the environment's prefix in ALARM, with their reasons.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    env: &Environment,
    now: DateTime<Utc>,
) -> Outcome {
    match dx.aws.alarms_in_alarm(&env.alarm_prefix).await {
        Ok(alarms) => {
            let names: Vec<String> = alarms.iter().map(|a| a.name.clone()).collect();
            let summary = if names.is_empty() {
                "no alarm in ALARM".into()
            } else {
                format!("{} alarm(s) in ALARM: {}", names.len(), names.join(", "))
            };
            let mut o = Outcome::new(
                name,
                true,
                summary,
                alarms
                    .iter()
                    .filter_map(|a| a.reason.clone())
                    .take(5)
                    .collect(),
                now,
            );
            o.evidence = Evidence::Alarms(names);
            o
        }
        Err(e) => Outcome::failed(name, aws_reason(&e), now),
    }
}
