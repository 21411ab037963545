//! `status` and `summary`: the runbook's check-pipeline-health and get-deployment-summary
//! scripts as commands. AWS facts come straight from AWS (the standard credential chain);
//! incidents come from the running daemon's API. A part that cannot be fetched is shown as
//! unavailable with the reason, and the command exits 1.

use crate::pipeline::figures;
use anyhow::bail;
use chrono::{Duration, Utc};
use pipeline_responder_aws::diagnostics::Diagnostics;
use pipeline_responder_core::config::{Config, Environment};
use pipeline_responder_core::stats::{self, Window};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this environment (default: every configured one).
    #[arg(long = "env")]
    pub env: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the daemon's API (open incidents). Default: http://<http.listen>.
    #[arg(long, env = "PIPELINE_RESPONDER_API")]
    pub api: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// Only this environment (default: every configured one).
    #[arg(long = "env")]
    pub env: Option<String>,
    /// The window: the last N days up to now.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the daemon's API (incidents). Default: http://<http.listen>.
    #[arg(long, env = "PIPELINE_RESPONDER_API")]
    pub api: Option<String>,
}

/// The configured environments, or the one asked for.
pub fn environments<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> anyhow::Result<Vec<&'a Environment>> {
    match only {
        None => Ok(config.environments.iter().collect()),
        Some(name) => match config.environment(name) {
            Some(env) => Ok(vec![env]),
            None => bail!(
                "--env {name}: no such environment; configured: {}",
                config
                    .environments
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// Returns whether every part was fetched.
pub async fn status(config: &Config, args: &StatusArgs) -> anyhow::Result<bool> {
    let envs = environments(config, args.env.as_deref())?;
    let sdk = pipeline_responder_aws::load_sdk_config(&config.aws.region).await;
    let aws = Diagnostics::new(&sdk);
    let incidents = crate::cli::incidents::fetch_all(config, args.api.as_deref())
        .await
        .map_err(|e| format!("{e:#}"));
    let mut statuses = Vec::new();
    for env in envs {
        statuses.push(figures::environment_status(&aws, env, &incidents).await);
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"environments": statuses}))?
        );
    } else {
        out!("{}", figures::status_text(&statuses, Utc::now()));
    }
    Ok(!statuses.iter().any(figures::status_has_errors))
}

/// Returns whether every part was fetched.
pub async fn summary(config: &Config, args: &SummaryArgs) -> anyhow::Result<bool> {
    let envs = environments(config, args.env.as_deref())?;
    let sdk = pipeline_responder_aws::load_sdk_config(&config.aws.region).await;
    let aws = Diagnostics::new(&sdk);
    let now = Utc::now();
    let window = Window {
        start: now - Duration::days(i64::from(args.days)),
        end: now,
    };
    let mut problems = Vec::new();
    let incidents = match crate::cli::incidents::fetch_all(config, args.api.as_deref()).await {
        Ok(list) => list,
        Err(e) => {
            problems.push(format!("incidents: {e:#}"));
            Vec::new()
        }
    };
    let mut all = Vec::new();
    for env in envs {
        all.push(
            figures::environment_figures(
                &aws,
                env,
                window,
                &incidents,
                config.digest.flap_secs as i64,
                config.digest.stale_execution_secs as i64,
                &mut problems,
            )
            .await,
        );
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"environments": all, "problems": problems}))?
        );
    } else {
        out!("{}", stats::summary_table(&all));
        for p in &problems {
            outln!("unavailable: {p}");
        }
    }
    Ok(problems.is_empty())
}

#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    /// Print JSON (channel and text of each post) instead of the posts' text.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the daemon's API (incidents). Default: http://<http.listen>.
    #[arg(long, env = "PIPELINE_RESPONDER_API")]
    pub api: Option<String>,
}

/// The weekly digest as the daemon would post it now (window: the configured days up to now),
/// printed, not posted. Returns whether every part was fetched.
pub async fn digest(config: &Config, args: &DigestArgs) -> anyhow::Result<bool> {
    let sdk = pipeline_responder_aws::load_sdk_config(&config.aws.region).await;
    let aws = Diagnostics::new(&sdk);
    let now = Utc::now();
    let window = Window {
        start: now - Duration::days(i64::from(config.digest.window_days)),
        end: now,
    };
    let mut problems = Vec::new();
    let incidents = match crate::cli::incidents::fetch_all(config, args.api.as_deref()).await {
        Ok(list) => list,
        Err(e) => {
            problems.push(format!("incidents: {e:#}"));
            Vec::new()
        }
    };
    let posts =
        crate::pipeline::digest::compose(config, &aws, &incidents, window, &mut problems).await;
    if args.json {
        let posts: Vec<_> = posts
            .iter()
            .map(|(channel, text)| json!({"channel": channel, "text": text}))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"posts": posts, "problems": problems}))?
        );
    } else {
        for (channel, text) in &posts {
            outln!("--- to {channel} ---\n{text}");
        }
    }
    Ok(problems.is_empty())
}
