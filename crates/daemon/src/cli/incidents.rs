//! `incidents list|show|report|ack|resolve`: the operator's side of the API, against a running daemon.

use anyhow::{bail, Context};
use pipeline_responder_core::config::Config;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    /// Base URL of the daemon's API. Default: http://<http.listen> of the configuration.
    #[arg(long, global = true, env = "PIPELINE_RESPONDER_API")]
    pub api: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: IncidentsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum IncidentsCommand {
    /// List incidents (open ones by default).
    List {
        /// `open` or `all`.
        #[arg(long, default_value = "open")]
        status: String,
        /// Incidents per page (1 to 1000), newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after the page that printed this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one incident with its timeline.
    Show { id: String },
    /// The post-incident report (runbook "Document incident") as Markdown, ready to paste.
    Report { id: String },
    /// Acknowledge: stops escalation steps that run until acknowledged.
    Ack {
        id: String,
        /// Who acknowledges (shown in the timeline and posts).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Resolve by hand.
    Resolve {
        id: String,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
}

fn base_url(config: &Config, api: Option<&str>) -> String {
    match api {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let addr = config.http.listen;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}", addr.port())
        }
    }
}

/// Incident keys contain `/`: one path segment, percent-encoded.
fn segment(id: &str) -> String {
    id.replace('%', "%25")
        .replace('/', "%2F")
        .replace(' ', "%20")
        .replace('#', "%23")
        .replace('?', "%3F")
        .replace('&', "%26")
        .replace('=', "%3D")
        .replace('+', "%2B")
}

/// Every incident the daemon knows (`GET /api/v1/incidents?status=all`), for `status`,
/// `summary` and `digest`.
pub async fn fetch_all(
    config: &Config,
    api: Option<&str>,
) -> anyhow::Result<Vec<pipeline_responder_core::record::Incident>> {
    let base = base_url(config, api);
    let Some(token) = &config.http.api_token else {
        bail!("http.api_token is not set; incidents come from the daemon's API, which needs it");
    };
    #[derive(serde::Deserialize)]
    struct List {
        incidents: Vec<pipeline_responder_core::record::Incident>,
        #[serde(default)]
        next_cursor: Option<String>,
    }
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/incidents?status=all&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let response = http
            .get(url)
            .bearer_auth(token.expose())
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .with_context(|| {
                format!("cannot reach the daemon at {base}; is it running? (--api URL)")
            })?;
        let status = response.status();
        if !status.is_success() {
            bail!("the daemon at {base} answered {}", status.as_u16());
        }
        let page: List = response
            .json()
            .await
            .context("the daemon's incident list is unreadable")?;
        all.extend(page.incidents);
        match page.next_cursor {
            // A cursor is hex: safe in a query string as it is.
            Some(next) if next.bytes().all(|b| b.is_ascii_hexdigit()) => cursor = Some(next),
            _ => return Ok(all),
        }
    }
}

pub async fn run(config: &Config, args: &IncidentsArgs) -> anyhow::Result<()> {
    let base = base_url(config, args.api.as_deref());
    let Some(token) = &config.http.api_token else {
        bail!("http.api_token is not set in the configuration; the API needs it (the CLI sends it as the bearer token)");
    };
    let http = reqwest::Client::new();
    let request = match &args.command {
        IncidentsCommand::List {
            status,
            limit,
            cursor,
        } => http.get(format!(
            "{base}/api/v1/incidents?status={}&limit={limit}&cursor={}",
            segment(status),
            segment(cursor.as_deref().unwrap_or_default())
        )),
        IncidentsCommand::Show { id } => {
            http.get(format!("{base}/api/v1/incidents/{}", segment(id)))
        }
        IncidentsCommand::Report { id } => {
            http.get(format!("{base}/api/v1/incidents/{}/report", segment(id)))
        }
        IncidentsCommand::Ack { id, by } => http
            .post(format!("{base}/api/v1/incidents/{}/ack", segment(id)))
            .json(&json!({"by": by})),
        IncidentsCommand::Resolve { id, by } => http
            .post(format!("{base}/api/v1/incidents/{}/resolve", segment(id)))
            .json(&json!({"by": by})),
    };
    let response = request
        .bearer_auth(token.expose())
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the daemon at {base}; is it running? (--api URL)")
        })?;
    let status = response.status();
    if status.is_success() {
        if let IncidentsCommand::Report { .. } = &args.command {
            let markdown = response.text().await.context("reading the report")?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"report": markdown}))?
                );
            } else {
                out!("{markdown}");
            }
            return Ok(());
        }
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{} {}",
            status.as_u16(),
            body["error"].as_str().unwrap_or("request failed")
        );
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    match &args.command {
        IncidentsCommand::List { .. } => {
            print_table(&body["incidents"]);
            if let Some(next) = body["next_cursor"].as_str() {
                outln!("more: pass --cursor {next}");
            }
        }
        IncidentsCommand::Show { .. } | IncidentsCommand::Report { .. } => print_incident(&body),
        IncidentsCommand::Ack { id, .. } => outln!("acknowledged {id}"),
        IncidentsCommand::Resolve { id, .. } => outln!("resolved {id}"),
    }
    Ok(())
}

fn print_table(incidents: &Value) {
    let rows = incidents.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        outln!("no incidents");
        return;
    }
    outln!(
        "{:<9} {:<13} {:<12} {:<30} KEY",
        "SEVERITY",
        "STATUS",
        "ENVIRONMENT",
        "TYPE"
    );
    for i in rows {
        outln!(
            "{:<9} {:<13} {:<12} {:<30} {}",
            i["severity"].as_str().unwrap_or(""),
            i["status"].as_str().unwrap_or(""),
            i["environment"].as_str().unwrap_or(""),
            i["incident_type"].as_str().unwrap_or(""),
            i["key"].as_str().unwrap_or("")
        );
    }
}

fn print_incident(body: &Value) {
    let i = &body["incident"];
    outln!(
        "{} · {} · {} · {}",
        i["severity"].as_str().unwrap_or(""),
        i["environment"].as_str().unwrap_or(""),
        i["title"].as_str().unwrap_or(""),
        i["status"].as_str().unwrap_or("")
    );
    outln!("key: {}", i["key"].as_str().unwrap_or(""));
    for entry in body["timeline"].as_array().cloned().unwrap_or_default() {
        outln!(
            "  {}  {:<12} {}",
            entry["at"].as_str().unwrap_or(""),
            entry["kind"].as_str().unwrap_or(""),
            entry["text"].as_str().unwrap_or("")
        );
    }
}

/// `approve|reject|retry|restart|start <incident> --by NAME [--reason ...]`: one operator
/// action through the daemon's API (`POST /api/v1/incidents/{id}/actions/{action}`), under the
/// same guards as the Slack buttons.
#[derive(Debug, clap::Args)]
pub struct ActArgs {
    /// The incident key (as `incidents list` prints it).
    pub incident: String,
    /// Who acts: must be on the environment's approvers (approve, reject) or operators.
    #[arg(long, env = "USER")]
    pub by: String,
    /// Why (required for reject; shown in the timeline and, for reject, sent to CodePipeline).
    #[arg(long)]
    pub reason: Option<String>,
    /// Makes a retried command act once: the same key is never acted on twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Base URL of the daemon's API. Default: http://<http.listen> of the configuration.
    #[arg(long, env = "PIPELINE_RESPONDER_API")]
    pub api: Option<String>,
    /// Print the daemon's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// Sends the action; `Ok(true)` when it was done (or counted as a vote), `Ok(false)` when it
/// was refused, failed or a duplicate (the reason is printed).
pub async fn act(config: &Config, action: &str, args: &ActArgs) -> anyhow::Result<bool> {
    let base = base_url(config, args.api.as_deref());
    let Some(token) = &config.http.api_token else {
        bail!("http.api_token is not set in the configuration; the API needs it (the CLI sends it as the bearer token)");
    };
    let mut request = reqwest::Client::new()
        .post(format!(
            "{base}/api/v1/incidents/{}/actions/{action}",
            segment(&args.incident)
        ))
        .bearer_auth(token.expose())
        .timeout(std::time::Duration::from_secs(60))
        .json(&json!({"by": args.by, "reason": args.reason}));
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the daemon at {base}; is it running? (--api URL)")
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
    }
    let message = body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("request failed");
    match body["outcome"].as_str() {
        Some(outcome @ ("done" | "vote")) => {
            if !args.json {
                outln!("{outcome}: {message}");
            }
            Ok(true)
        }
        Some(outcome) => {
            errln!("{outcome}: {message}");
            Ok(false)
        }
        None => bail!("{} {message}", status.as_u16()),
    }
}
