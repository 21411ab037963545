//! The daemon's Prometheus metrics (docs/specification.md section 4), all named
//! `pipeline_responder_*`, in the default registry that `/metrics` serves. Labels carry only
//! bounded values (source, kind, reason, type, severity, configured environment, channel,
//! outcome, level): never an id, a key or an ARN. The AWS request metrics come from
//! `pipeline_responder_aws::metrics`; the gauges that describe stored state (open incidents,
//! pending timers) are counted by the store when scraped (at most one count a second however
//! many scrapers, see [`render`]), so every replica reports the truth.

use crate::store::Store;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, TextEncoder,
};
use std::sync::LazyLock;

/// Every metric the daemon updates directly.
#[derive(Debug)]
pub struct Metrics {
    /// Inputs that reached the rules, by source (`sqs`, `http`, `watcher`) and event kind.
    pub events_received: IntCounterVec,
    /// Inputs that could not be parsed, by source and reason (`not_json`, `missing_field`, ...).
    pub events_rejected: IntCounterVec,
    /// Well-formed inputs that are not for us (other detail-types, SNS confirmations), by source.
    pub events_ignored: IntCounterVec,
    /// Inputs already processed (redelivery, or the same transition by another route).
    pub events_duplicate: IntCounterVec,
    pub incidents_opened: IntCounterVec,
    pub incidents_open: IntGaugeVec,
    pub notifications: IntCounterVec,
    pub escalations: IntCounterVec,
    pub first_notification_latency: Histogram,
    pub sqs_messages: IntCounterVec,
    pub pending_deadlines: IntGauge,
    pub overdue_deadlines: IntGauge,
    pub oldest_overdue_deadline: prometheus::Gauge,
    pub store_errors: IntCounterVec,
    pub digests: IntCounterVec,
    /// Operators' actions (approve, reject, retry, restart, start) by outcome.
    pub actions: IntCounterVec,
    /// Connections closed at accept because the listener was at its connection cap.
    pub http_refused: prometheus::IntCounter,
    build_info: IntGaugeVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    let _ = prometheus::register(Box::new(c.clone()));
    c
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let incidents_open = IntGaugeVec::new(
        Opts::new(
            "pipeline_responder_incidents_open",
            "Incidents not yet resolved, by environment and status (open, acknowledged).",
        ),
        &["environment", "status"],
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(incidents_open.clone()));
    let first_notification_latency = Histogram::with_opts(
        HistogramOpts::new(
            "pipeline_responder_event_to_first_notification_seconds",
            "Time from the event that opened an incident (as received) to its first notification sent.",
        )
        .buckets(vec![
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ]),
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(first_notification_latency.clone()));
    let pending_deadlines = IntGauge::new(
        "pipeline_responder_pending_deadlines",
        "Escalation and reminder timers waiting to fire (read from the store when scraped).",
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(pending_deadlines.clone()));
    let overdue_deadlines = IntGauge::new(
        "pipeline_responder_overdue_deadlines",
        "Timers more than 60 s past their time and still not fired (the escalation engine is behind or failing).",
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(overdue_deadlines.clone()));
    let oldest_overdue_deadline = prometheus::Gauge::new(
        "pipeline_responder_oldest_overdue_deadline_seconds",
        "How far past its time the oldest unfired timer is (0 when none is due).",
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(oldest_overdue_deadline.clone()));
    let build_info = IntGaugeVec::new(
        Opts::new(
            "pipeline_responder_build_info",
            "Always 1; labels name the version and the store in use.",
        ),
        &["version", "store"],
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(build_info.clone()));
    pipeline_responder_aws::metrics::register();
    Metrics {
        events_received: counter(
            "pipeline_responder_events_received_total",
            "Events that reached the rules, by source (sqs, http, watcher) and kind.",
            &["source", "kind"],
        ),
        events_rejected: counter(
            "pipeline_responder_events_rejected_total",
            "Inputs rejected as malformed (left to the dead-letter queue), by source and reason.",
            &["source", "reason"],
        ),
        events_ignored: counter(
            "pipeline_responder_events_ignored_total",
            "Well-formed inputs that are not pipeline events (other detail-types, SNS confirmations).",
            &["source"],
        ),
        events_duplicate: counter(
            "pipeline_responder_events_duplicate_total",
            "Inputs already processed (redelivered, or the same transition by another route).",
            &["source"],
        ),
        incidents_opened: counter(
            "pipeline_responder_incidents_opened_total",
            "Incidents opened by this process, by type, severity and environment.",
            &["type", "severity", "environment"],
        ),
        incidents_open,
        notifications: counter(
            "pipeline_responder_notifications_total",
            "Notifications by notifier kind (slack, sns, pagerduty, opsgenie, teams, webhook) and outcome (sent, failed, given_up, silenced, summarized, dry_run).",
            &["channel", "outcome"],
        ),
        escalations: counter(
            "pipeline_responder_escalations_total",
            "Escalation steps fired by this process, by configured level id and kind (escalation, reminder).",
            &["level", "kind"],
        ),
        first_notification_latency,
        actions: counter(
            "pipeline_responder_actions_total",
            "Operators' actions by action (approve, reject, retry, restart, start) and outcome (done, vote, refused, failed, duplicate).",
            &["action", "outcome"],
        ),
        sqs_messages: counter(
            "pipeline_responder_sqs_messages_total",
            "SQS messages by outcome (stored, duplicate, ignored, rejected, store_failed, deleted).",
            &["outcome"],
        ),
        pending_deadlines,
        overdue_deadlines,
        oldest_overdue_deadline,
        store_errors: counter(
            "pipeline_responder_store_errors_total",
            "Store operations that failed and are retried, by operation (apply: an input; deadlines: the escalation engine; outbox: reading posts to send; scrape: these gauges).",
            &["operation"],
        ),
        digests: counter(
            "pipeline_responder_digests_total",
            "Weekly digest posts by outcome (posted, failed, skipped: the period was already posted).",
            &["outcome"],
        ),
        http_refused: {
            let c = prometheus::IntCounter::new(
                "pipeline_responder_http_connections_refused_total",
                "Connections closed at once because the listener had http.max_connections open.",
            )
            .expect("valid metric");
            let _ = prometheus::register(Box::new(c.clone()));
            c
        },
        build_info,
    }
});

/// A due timer is overdue when it is this late (the engine ticks at least every 5 s).
const OVERDUE_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// The metrics (registered on first use).
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Sets the build info gauge and creates the series that alerts and dashboards watch at 0, so
/// `rate()` and `increase()` see them before their first event (an absent series never fires).
pub fn init(store_kind: &str, config: &pipeline_responder_core::config::Config) {
    let m = metrics();
    m.build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION"), store_kind])
        .set(1);
    for channel in config.notifiers.channels.keys() {
        for outcome in [
            "sent",
            "failed",
            "given_up",
            "silenced",
            "summarized",
            "storm_summary",
            "dry_run",
        ] {
            m.notifications.with_label_values(&[channel, outcome]);
        }
    }
    // Inputs arrive over HTTP always, over SQS when configured; the watcher's are never
    // malformed or foreign, only duplicates.
    let mut sources = vec!["http"];
    if config.sources.sqs.is_some() {
        sources.push("sqs");
    }
    for source in &sources {
        for reason in pipeline_responder_core::event::ParseError::REASONS {
            m.events_rejected.with_label_values(&[source, reason]);
        }
        m.events_ignored.with_label_values(&[source]);
    }
    sources.push("watcher");
    for source in &sources {
        m.events_duplicate.with_label_values(&[source]);
        for kind in pipeline_responder_core::event::Event::KIND_NAMES {
            m.events_received.with_label_values(&[source, kind]);
        }
    }
    for env in &config.environments {
        for status in ["open", "acknowledged"] {
            m.incidents_open.with_label_values(&[&env.name, status]);
        }
        for t in pipeline_responder_core::incident::IncidentType::ALL {
            let policy = config.policy(t);
            if policy.enabled {
                let severity = policy.severity_for(&env.name);
                m.incidents_opened
                    .with_label_values(&[t.as_str(), severity.as_str(), &env.name]);
            }
        }
    }
    if config.sources.sqs.is_some() {
        for outcome in [
            "stored",
            "duplicate",
            "ignored",
            "rejected",
            "store_failed",
            "deleted",
        ] {
            m.sqs_messages.with_label_values(&[outcome]);
        }
    }
    for level in config.escalation.levels.iter().skip(1) {
        m.escalations.with_label_values(&[&level.id, "escalation"]);
    }
    for level in &config.escalation.levels {
        m.escalations.with_label_values(&[&level.id, "reminder"]);
    }
    for operation in ["apply", "deadlines", "outbox", "scrape", "unreadable_row"] {
        m.store_errors.with_label_values(&[operation]);
    }
    for outcome in ["posted", "failed", "skipped"] {
        m.digests.with_label_values(&[outcome]);
    }
    m.first_notification_latency.get_sample_count();
    pipeline_responder_aws::metrics::register();
}

/// The store-backed gauges' last refresh, shared by every scrape of one daemon.
#[derive(Debug, Default)]
pub struct Scrapes {
    last: tokio::sync::Mutex<Option<Refresh>>,
}

#[derive(Debug, Clone, Copy)]
struct Refresh {
    /// When it started: it reflects every write finished before then.
    started: std::time::Instant,
    /// [`Store::writes`] when it started.
    writes: u64,
}

/// Counts are taken at most this often however many scrapers ask (a scrape waits for the next).
const REFRESH_MIN: std::time::Duration = std::time::Duration::from_secs(1);
/// ... and at least this often while scraped (other replicas' writes, timers coming due).
const REFRESH_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Renders every registered metric in the text format. The store-backed gauges are true as of
/// the scrape's arrival for this process's writes: the last count is used when it started after
/// the scrape arrived, or when nothing was written since and it is under 5 s old; otherwise
/// one new count is taken, at most one a second, shared by the scrapes waiting for it. So
/// concurrent scrapers cost the store at most one count a second. A store failure leaves the
/// gauges at their last value (and is counted), never fails the scrape.
pub async fn render(scrapes: &Scrapes, store: &Store, environments: &[String]) -> String {
    let arrived = std::time::Instant::now();
    let writes = store.writes();
    {
        let mut last = scrapes.last.lock().await;
        let fresh = last.is_some_and(|l| {
            l.started >= arrived || (l.writes == writes && l.started.elapsed() < REFRESH_MAX)
        });
        if !fresh {
            if let Some(l) = *last {
                tokio::time::sleep(REFRESH_MIN.saturating_sub(l.started.elapsed())).await;
            }
            let started = std::time::Instant::now();
            let writes = store.writes();
            refresh(store, environments).await;
            *last = Some(Refresh { started, writes });
        }
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        tracing::error!(error = %e, "Metrics: encoding failed");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Sets the gauges from the store's counts.
async fn refresh(store: &Store, environments: &[String]) {
    let m = metrics();
    let now = chrono::Utc::now();
    match store.gauges(now, OVERDUE_AFTER).await {
        Ok(gauges) => {
            for env in environments {
                for status in ["open", "acknowledged"] {
                    let n: i64 = gauges
                        .active
                        .iter()
                        .filter(|(e, s, _)| e == env && status_label(*s) == status)
                        .map(|(_, _, n)| n)
                        .sum();
                    m.incidents_open.with_label_values(&[env, status]).set(n);
                }
            }
            m.pending_deadlines.set(gauges.pending_deadlines);
            m.overdue_deadlines.set(gauges.overdue_deadlines);
            let oldest = gauges
                .oldest_due
                .map(|at| (now - at).num_milliseconds().max(0))
                .unwrap_or(0);
            m.oldest_overdue_deadline.set(oldest as f64 / 1000.0);
        }
        Err(e) => {
            m.store_errors.with_label_values(&["scrape"]).inc();
            tracing::warn!(error = %e, "Metrics: cannot count incidents and deadlines");
        }
    }
}

fn status_label(status: pipeline_responder_core::incident::IncidentStatus) -> &'static str {
    use pipeline_responder_core::incident::IncidentStatus;
    match status {
        IncidentStatus::Open => "open",
        IncidentStatus::Acknowledged => "acknowledged",
        IncidentStatus::Resolved => "resolved",
    }
}
