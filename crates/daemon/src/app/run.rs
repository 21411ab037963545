//! `run`: wires sources → rules → store → notifications under one cancellation token and task
//! tracker. SIGTERM/SIGINT: stop receiving, finish in-flight work, send what is queued, and exit
//! within `shutdown_grace_secs`.

use crate::app::supervise::supervise;
use crate::notify::outbox::OutboxWorker;
use crate::pipeline::diagnose::Diagnoser;
use crate::pipeline::escalate::{system_clock, Escalator};
use crate::pipeline::ingest::Ingest;
use crate::sources;
use crate::store::{DynamoStore, Store};
use anyhow::Context;
use pipeline_responder_aws::diagnostics::Diagnostics;
use pipeline_responder_aws::sqs::SqsQueue;
use pipeline_responder_core::config::{Config, StoreConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs the daemon until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let sdk = pipeline_responder_aws::load_sdk_config(&config.aws.region).await;
    let store = match &config.store {
        StoreConfig::Embedded { path } => Store::open(Path::new(path))?,
        StoreConfig::Dynamodb { table } => Store::new(
            DynamoStore::new(
                pipeline_responder_aws::metrics::dynamodb(&sdk),
                table.clone(),
                replica_id(),
            )
            .with_retention_days(config.retention_days),
        ),
    }
    .redacting(config.redactor());
    tracing::info!(store = store.kind(), "Store ready");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("HTTP client")?;
    let wakeups = crate::wakeups::Wakeups::default();
    let diagnostics_tasks = TaskTracker::new();
    let diagnoser = Diagnoser {
        config: Arc::clone(&config),
        store: store.clone(),
        aws: Diagnostics::new(&sdk),
        http: http.clone(),
        wakeups: wakeups.clone(),
    };
    {
        // Diagnoses a killed predecessor left unfinished. A shared store's incidents may be in
        // another replica's hands for the length of a diagnosis; an embedded store has no other.
        let settle = match &config.store {
            StoreConfig::Embedded { .. } => chrono::Duration::zero(),
            StoreConfig::Dynamodb { .. } => chrono::Duration::minutes(2),
        };
        let d = diagnoser.clone();
        diagnostics_tasks.spawn(async move { d.run_owed(settle).await });
    }
    let ingest = Ingest::new(
        Arc::clone(&config),
        store.clone(),
        wakeups.clone(),
        Some(diagnoser),
        diagnostics_tasks.clone(),
    );
    let notifiers = crate::notify::registry::Notifiers::from_config(&config, &http, &sdk);
    let outbox = OutboxWorker {
        config: Arc::clone(&config),
        store: store.clone(),
        notifiers: notifiers.clone(),
        dry_run: config.daemon.dry_run,
        wakeups: wakeups.clone(),
        storm: Arc::new(std::sync::Mutex::new(
            crate::notify::storm::StormGuard::new(
                config.storm.max_incidents,
                config.storm.window_secs,
            ),
        )),
    };

    let health = Arc::new(crate::health::Health::new(config.sources.sqs.is_some()));
    crate::metrics::init(store.kind(), &config);
    let shutdown = CancellationToken::new();
    let sources_stop = shutdown.child_token();
    let fatal = CancellationToken::new();
    let tracker = TaskTracker::new();
    if let Some(sqs) = &config.sources.sqs {
        let queue = SqsQueue::new(
            &sdk,
            &sqs.queue_url,
            sqs.wait_time_secs,
            sqs.max_messages,
            sqs.visibility_timeout_secs,
        );
        let (ingest, stop, health) = (ingest.clone(), sources_stop.clone(), Arc::clone(&health));
        tracker.spawn(supervise(
            "sqs",
            sources_stop.clone(),
            fatal.clone(),
            move || {
                let (queue, ingest, stop, health) = (
                    queue.clone(),
                    ingest.clone(),
                    stop.clone(),
                    Arc::clone(&health),
                );
                async move {
                    sources::sqs::consume(queue, ingest, health, stop).await;
                }
            },
        ));
    }
    if config.sources.watcher.is_some() {
        let watcher = sources::watcher::Watcher {
            config: Arc::clone(&config),
            aws: Diagnostics::new(&sdk),
            ingest: ingest.clone(),
        };
        let stop = sources_stop.clone();
        tracker.spawn(supervise(
            "watcher",
            sources_stop.clone(),
            fatal.clone(),
            move || watcher.clone().run(stop.clone()),
        ));
    }
    {
        let escalator = Escalator {
            config: Arc::clone(&config),
            store: store.clone(),
            clock: system_clock(),
            wakeups: wakeups.clone(),
        };
        let stop = sources_stop.clone();
        tracker.spawn(supervise(
            "escalation",
            sources_stop.clone(),
            fatal.clone(),
            move || escalator.clone().run(stop.clone()),
        ));
    }
    {
        let (store, days, stop) = (store.clone(), config.retention_days, sources_stop.clone());
        tracker.spawn(supervise(
            "retention",
            sources_stop.clone(),
            fatal.clone(),
            move || crate::store::retention::run(store.clone(), days, stop.clone()),
        ));
    }
    match (notifiers.get("slack").is_some(), config.digest.enabled) {
        (true, true) => {
            let digest = crate::pipeline::digest::DigestTask {
                config: Arc::clone(&config),
                store: store.clone(),
                aws: Diagnostics::new(&sdk),
                notifiers: notifiers.clone(),
            };
            let stop = sources_stop.clone();
            tracker.spawn(supervise(
                "digest",
                sources_stop.clone(),
                fatal.clone(),
                move || digest.clone().run(stop.clone()),
            ));
        }
        (false, true) => {
            tracing::info!("Digest enabled but Slack is not configured; no digest is posted")
        }
        _ => {}
    }
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("http.listen {}: cannot bind", config.http.listen))?;
    let api = crate::http::Api {
        config: Arc::clone(&config),
        store: store.clone(),
        ingest: ingest.clone(),
        wakeups: wakeups.clone(),
        health: Arc::clone(&health),
        scrapes: Arc::default(),
        deliveries: Arc::default(),
        actions: crate::actions::Actions {
            config: Arc::clone(&config),
            store: store.clone(),
            wakeups: wakeups.clone(),
            codepipeline: pipeline_responder_aws::remediation::Remediation::new(&sdk),
            slack: config
                .notifiers
                .slack
                .clone()
                .map(|c| crate::notify::slack::Slack::new(c, http.clone())),
        },
    };
    tracker.spawn(crate::http::serve(api, listener, sources_stop.clone()));
    let outbox_stop = CancellationToken::new();
    let outbox_task = {
        let stop = outbox_stop.clone();
        tokio::spawn(supervise(
            "outbox",
            outbox_stop.clone(),
            fatal.clone(),
            move || outbox.clone().run(stop.clone()),
        ))
    };
    tracker.close();
    tracing::info!(
        environments = config.environments.len(),
        dry_run = config.daemon.dry_run,
        "pipeline-responder running"
    );

    let failed = tokio::select! {
        _ = wait_for_signal() => false,
        _ = fatal.cancelled() => true,
    };
    let grace = Duration::from_secs(config.daemon.shutdown_grace_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "Shutting down: sources stop, in-flight work finishes"
    );
    shutdown.cancel();
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("Sources did not stop within the grace period; unacknowledged messages will be redelivered");
    }
    outbox_stop.cancel();
    if tokio::time::timeout_at(deadline, outbox_task)
        .await
        .is_err()
    {
        tracing::warn!("Outbox still sending at the end of the grace period; queued posts go out after restart");
    }
    if failed {
        anyhow::bail!("a task kept failing (see the log above); exiting so the service restarts");
    }
    tracing::info!("Stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops the daemon");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Logs as JSON lines when not on a terminal (CloudWatch Logs), readable text on a terminal;
/// `RUST_LOG` filters (default `info`). Every line passes `redactor` on its way out (the log's
/// side of the one boundary): configured secrets and credentials are redacted and terminal
/// control characters removed, whatever field of whatever event carried them.
pub fn init_logging(redactor: pipeline_responder_core::redact::Redactor) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(RedactingStderr(Arc::new(redactor)));
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}

/// Standard error, each formatted log line cleaned by the redactor first.
#[derive(Clone)]
struct RedactingStderr(Arc<pipeline_responder_core::redact::Redactor>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine(Arc::clone(&self.0))
    }
}

/// One log line on its way to standard error (the formatter writes a line in one call).
struct RedactingLine(Arc<pipeline_responder_core::redact::Redactor>);

impl std::io::Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(self.0.clean(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// This process among the replicas sharing a DynamoDB store: `PIPELINE_RESPONDER_REPLICA_ID`, or
/// host name and process id (unique per ECS task). Recorded on the deadlines it fires and the
/// posts it leases, so an operator can tell which replica did what.
fn replica_id() -> String {
    if let Ok(id) = std::env::var("PIPELINE_RESPONDER_REPLICA_ID") {
        if !id.trim().is_empty() {
            return id;
        }
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "replica".into());
    format!("{host}-{}", std::process::id())
}
