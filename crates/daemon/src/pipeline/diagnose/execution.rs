//! `execution_details`: the commit that started the execution and who pushed it.

use super::outcome::{aws_reason, Outcome};
use super::outcome::{first_line, short};
use super::Diagnoser;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Environment;
use pipeline_responder_core::logscan;
use pipeline_responder_core::record::Incident;

/// The execution's source revision: short id, first line of the message, author.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    incident: &Incident,
    env: &Environment,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(execution) = &incident.execution_id else {
        return Outcome::new(name, true, "no execution known yet".into(), vec![], now);
    };
    match dx.aws.execution(&env.pipeline, execution).await {
        Ok(f) => {
            let author = match &f.revision_id {
                Some(id) => commit_author(dx, env, execution, id).await,
                None => None,
            };
            let by = author.map(|a| format!(" by {a}")).unwrap_or_default();
            let message = f.revision_summary.as_deref().map(commit_message);
            let commit = match (&f.revision_id, message) {
                (Some(id), Some(message)) => {
                    format!("{} \"{}\"{by}", short(id), first_line(&message))
                }
                (Some(id), None) => format!("{}{by}", short(id)),
                _ => "no source revision recorded".to_string(),
            };
            Outcome::new(
                name,
                true,
                commit,
                f.revision_url.into_iter().collect(),
                now,
            )
        }
        Err(e) => Outcome::failed(name, aws_reason(&e), now),
    }
}

/// The commit's author, from the deployments table's record of this execution or version
/// (CodePipeline's artifact revisions do not carry it). Best effort: none when the table
/// has no such record or cannot be read.
async fn commit_author(
    dx: &Diagnoser,
    env: &Environment,
    execution: &str,
    revision: &str,
) -> Option<String> {
    let records = dx
        .aws
        .deployments(&env.deployments_table, &env.name)
        .await
        .ok()?;
    records
        .into_iter()
        .find(|r| {
            r.pipeline_execution_id.as_deref() == Some(execution)
                || r.version.as_deref().is_some_and(|v| {
                    !v.is_empty() && (v.starts_with(revision) || revision.starts_with(v))
                })
        })
        .and_then(|r| r.commit_author)
        .map(|a| logscan::scrub(&a).into_owned())
}

/// The commit message of a revision summary: plain text (CodeCommit, S3) or the JSON that
/// CodeStar connections write (`{"ProviderType":"GitHub","CommitMessage":"..."}`).
fn commit_message(summary: &str) -> String {
    serde_json::from_str::<serde_json::Value>(summary)
        .ok()
        .and_then(|v| v.get("CommitMessage")?.as_str().map(String::from))
        .unwrap_or_else(|| summary.to_string())
}
