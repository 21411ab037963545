//! Command-line interface: one subcommand per job, every one with `--help`.

pub mod explain;
pub mod explain_log;
pub mod incidents;
pub mod ops;

use clap::{Parser, Subcommand};
use pipeline_responder_core::config::{self, Config};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code for an invalid configuration (`check-config`, and any command that loads one).
pub const EXIT_INVALID_CONFIG: u8 = 2;
/// Exit code for an input file that cannot be read or parsed.
pub const EXIT_BAD_INPUT: u8 = 3;

/// Automates the incident response of the CD pipeline runbook: sees CodePipeline failures first,
/// runs the runbook's diagnostics, posts to Slack and SNS, escalates until acknowledged.
#[derive(Debug, Parser)]
#[command(name = "pipeline-responder", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "PIPELINE_RESPONDER_CONFIG",
        default_value = "config/pipeline-responder.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (SQS consumer, watcher, diagnostics, notifications, escalation).
    Run {
        /// Do everything but send nothing: Slack, SNS and remediation calls are logged instead.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the configuration; print every error with its TOML path. Exit 0 valid, 2 invalid.
    CheckConfig,
    /// Offline dry run of the rules for one event file: prints the decision as JSON. No AWS call.
    Explain(explain::ExplainArgs),
    /// Offline reading of a failed build log, as the diagnosis does it: class, summary, matched
    /// cause, failing command, and the excerpt with line numbers (`--previous` compares it with
    /// the last green build's log). The configuration is optional: without the file the built-in
    /// defaults are used.
    ExplainLog(crate::cli::explain_log::ExplainLogArgs),
    /// The runbook's check-pipeline-health: stage states, alarms in ALARM, recent deployments,
    /// open incidents. Exit 0 when every part was fetched, 1 otherwise.
    Status(crate::cli::ops::StatusArgs),
    /// The runbook's deployment summary over the last N days: executions succeeded/failed,
    /// rollbacks, incidents by type, MTTA and MTTR. Exit 0 when every part was fetched, 1 otherwise.
    Summary(crate::cli::ops::SummaryArgs),
    /// Print the weekly digest as the daemon would post it now (see `[digest]` for the schedule).
    Digest(crate::cli::ops::DigestArgs),
    /// List, show, acknowledge or resolve incidents of a running daemon (through its API).
    Incidents(crate::cli::incidents::IncidentsArgs),
    /// Approve a pending manual approval (runbook Task 2) through the daemon's API, under the
    /// environment's guards (approvers, two-person rule in production, current token).
    Approve(crate::cli::incidents::ActArgs),
    /// Reject a pending manual approval (runbook Task 3); `--reason` is required.
    Reject(crate::cli::incidents::ActArgs),
    /// Retry the failed stage's failed actions (`RetryStageExecution`) of a failure incident.
    Retry(crate::cli::incidents::ActArgs),
    /// Stop the stuck execution and start a new one (runbook Incident 3 step 5), within
    /// `remediation.max_per_pipeline_per_day`.
    Restart(crate::cli::incidents::ActArgs),
    /// Start a new execution of the incident's pipeline (runbook Task 1, "Fix and redeploy").
    Start(crate::cli::incidents::ActArgs),
    /// Container health check: GET the URL (default the liveness endpoint on the default
    /// port); exit 0 on a 2xx answer within the timeout, 1 otherwise. Needs no configuration and
    /// no shell or curl in the image.
    Probe {
        #[arg(default_value = "http://127.0.0.1:9090/healthz")]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Create the DynamoDB state table named by `store.table`, exactly as
    /// deploy/dynamodb/state-table.json describes it (for local emulators and first setups;
    /// production tables come from the deploy kit).
    CreateTable,
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::CheckConfig => check_config(&cli.config),
        Command::Incidents(args) => match load(&cli.config) {
            Ok(config) => {
                let outcome = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(crate::cli::incidents::run(&config, &args)));
                match outcome {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        errln!("incidents: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(code) => code,
        },
        Command::Approve(args) => act(&cli.config, "approve", &args),
        Command::Reject(args) => act(&cli.config, "reject", &args),
        Command::Retry(args) => act(&cli.config, "retry", &args),
        Command::Restart(args) => act(&cli.config, "restart", &args),
        Command::Start(args) => act(&cli.config, "start", &args),
        Command::Status(args) => match load(&cli.config) {
            Ok(config) => one_shot("status", |rt| {
                rt.block_on(crate::cli::ops::status(&config, &args))
            }),
            Err(code) => code,
        },
        Command::Summary(args) => match load(&cli.config) {
            Ok(config) => one_shot("summary", |rt| {
                rt.block_on(crate::cli::ops::summary(&config, &args))
            }),
            Err(code) => code,
        },
        Command::Digest(args) => match load(&cli.config) {
            Ok(config) => one_shot("digest", |rt| {
                rt.block_on(crate::cli::ops::digest(&config, &args))
            }),
            Err(code) => code,
        },
        Command::Probe { url, timeout_secs } => probe(&url, timeout_secs),
        Command::CreateTable => match load(&cli.config) {
            Ok(config) => create_table(&config),
            Err(code) => code,
        },
        Command::Explain(args) => match load(&cli.config) {
            Ok(config) => explain::run(&config, &args),
            Err(code) => code,
        },
        Command::ExplainLog(args) => {
            let default = Path::new("config/pipeline-responder.toml");
            let config = if cli.config == default && !default.exists() {
                config::load_str("", &|_| None).map_err(|_| ExitCode::FAILURE)
            } else {
                config::load_reading_file(&cli.config).map_err(|errors| {
                    errln!(
                        "{}: invalid configuration ({} error(s))",
                        cli.config.display(),
                        errors.0.len()
                    );
                    errln!("{errors}");
                    ExitCode::from(EXIT_INVALID_CONFIG)
                })
            };
            match config {
                Ok(config) => crate::cli::explain_log::run(&config, &args),
                Err(code) => code,
            }
        }
        Command::Run { dry_run } => match load(&cli.config) {
            Ok(mut config) => {
                config.daemon.dry_run |= dry_run;
                crate::app::init_logging(config.redactor());
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        errln!("run: cannot start the async runtime: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                match runtime.block_on(crate::app::run(config)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "Daemon failed");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(code) => code,
        },
    }
}

/// Runs a one-shot async command: exit 0 when it returns `Ok(true)`, 1 when some part was
/// unavailable (`Ok(false)`, already printed) or it failed.
fn one_shot(
    name: &str,
    run: impl FnOnce(&tokio::runtime::Runtime) -> anyhow::Result<bool>,
) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| run(&rt));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            errln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One operator action through the API: exit 0 done or counted, 1 refused/failed/unreachable.
fn act(path: &Path, action: &str, args: &crate::cli::incidents::ActArgs) -> ExitCode {
    match load(path) {
        Ok(config) => one_shot(action, |rt| {
            rt.block_on(crate::cli::incidents::act(&config, action, args))
        }),
        Err(code) => code,
    }
}

fn probe(url: &str, timeout_secs: u64) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(timeout_secs.max(1)))
                    .build()
                    .map_err(|e| e.to_string())?;
                let response = client.get(url).send().await.map_err(|e| e.to_string())?;
                Ok(response.status())
            })
        });
    match outcome {
        Ok(status) if status.is_success() => ExitCode::SUCCESS,
        Ok(status) => {
            errln!("probe: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            errln!("probe: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration or prints every error and returns the exit code.
pub fn load(path: &Path) -> Result<Config, ExitCode> {
    config::load_file(path).map_err(|errors| {
        errln!(
            "{}: invalid configuration ({} error(s))",
            path.display(),
            errors.0.len()
        );
        errln!("{errors}");
        ExitCode::from(EXIT_INVALID_CONFIG)
    })
}

fn create_table(config: &Config) -> ExitCode {
    let config::StoreConfig::Dynamodb { table } = &config.store else {
        errln!("create-table: store.kind is not \"dynamodb\"; the embedded store needs no table");
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let sdk = pipeline_responder_aws::load_sdk_config(&config.aws.region).await;
                let client = pipeline_responder_aws::metrics::dynamodb(&sdk);
                crate::store::DynamoStore::create_table(&client, table).await?;
                anyhow::Ok(())
            })
        });
    match outcome {
        Ok(()) => {
            outln!("create-table: created {table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("create-table: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            outln!(
                "{}: valid — {} environment(s): {}; store {}; sources: {}{}; notifiers: {}{}{}",
                path.display(),
                config.environments.len(),
                config
                    .environments
                    .iter()
                    .map(|e| format!("{} ({})", e.name, e.pipeline))
                    .collect::<Vec<_>>()
                    .join(", "),
                match &config.store {
                    config::StoreConfig::Embedded { .. } => "embedded",
                    config::StoreConfig::Dynamodb { .. } => "dynamodb",
                },
                if config.sources.sqs.is_some() {
                    "sqs "
                } else {
                    ""
                },
                if config.sources.watcher.is_some() {
                    "watcher"
                } else {
                    ""
                },
                if config.notifiers.slack.is_some() {
                    "slack "
                } else {
                    ""
                },
                if config.notifiers.sns_enabled {
                    "sns"
                } else {
                    ""
                },
                if config.daemon.dry_run {
                    "; DRY-RUN"
                } else {
                    ""
                },
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
