//! `deployment_record`: the environment's latest record in the deployments table.

use super::outcome::{aws_reason, Outcome};
use super::outcome::{first_line, short, Evidence};
use super::Diagnoser;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Environment;

/// The latest deployment, its status (evidence for the rollback finding) and commit.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    env: &Environment,
    now: DateTime<Utc>,
) -> Outcome {
    match dx
        .aws
        .latest_deployment(&env.deployments_table, &env.name)
        .await
    {
        Ok(Some(r)) => {
            let mut summary = format!("latest deployment {} is {}", r.deployment_id, r.status);
            if let Some(v) = &r.version {
                summary.push_str(&format!(" (version {})", short(v)));
            }
            let mut lines = Vec::new();
            if let (Some(m), Some(a)) = (&r.commit_message, &r.commit_author) {
                lines.push(format!("commit \"{}\" by {a}", first_line(m)));
            }
            if let Some(reason) = &r.rollback_reason {
                lines.push(format!("rollback reason: {reason}"));
            }
            let mut o = Outcome::new(name, true, summary, lines, now);
            o.evidence = Evidence::Deployment { status: r.status };
            o
        }
        Ok(None) => Outcome::new(
            name,
            true,
            "no deployment record for this environment".into(),
            vec![],
            now,
        ),
        Err(e) => Outcome::failed(name, aws_reason(&e), now),
    }
}
