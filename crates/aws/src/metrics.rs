//! Every AWS request the daemon makes, counted and timed by an SDK interceptor on each client:
//! `pipeline_responder_aws_requests_total{service,operation,outcome}` and
//! `pipeline_responder_aws_request_duration_seconds{service,operation}`. One HTTP attempt is
//! one request (SDK retries count again), so throttling and retries show up as they happen.
//! Both live in the default Prometheus registry, which `/metrics` serves.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use prometheus::{HistogramVec, IntCounterVec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

struct AwsMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

static METRICS: LazyLock<AwsMetrics> = LazyLock::new(|| {
    let requests = IntCounterVec::new(
        prometheus::Opts::new(
            "pipeline_responder_aws_requests_total",
            "AWS API requests (HTTP attempts) by service, operation and outcome \
             (success, throttled, client_error, server_error, network_error; abandoned: dropped \
             by the caller before its answer was read).",
        ),
        &["service", "operation", "outcome"],
    )
    .expect("valid metric");
    let duration = HistogramVec::new(
        prometheus::HistogramOpts::new(
            "pipeline_responder_aws_request_duration_seconds",
            "Latency of AWS API requests (one HTTP attempt) by service and operation.",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0,
        ]),
        &["service", "operation"],
    )
    .expect("valid metric");
    let registry = prometheus::default_registry();
    // Registration fails only for a duplicate name, which LazyLock rules out.
    let _ = registry.register(Box::new(requests.clone()));
    let _ = registry.register(Box::new(duration.clone()));
    AwsMetrics { requests, duration }
});

/// Registers the AWS metrics (so they appear in `/metrics` before the first call).
pub fn register() {
    LazyLock::force(&METRICS);
}

/// The interceptor; `service` is the label value (`sqs`, `dynamodb`, `codepipeline`, ...).
#[derive(Debug, Clone)]
pub struct MetricsInterceptor {
    service: &'static str,
}

impl MetricsInterceptor {
    pub fn new(service: &'static str) -> Self {
        register();
        Self { service }
    }
}

#[derive(Debug, Clone)]
struct AttemptStart(Instant, Arc<InFlight>);

impl Storable for AttemptStart {
    type Storer = StoreReplace<Self>;
}

/// One attempt on the wire. Counted as `abandoned` if it is dropped before its answer was read:
/// the caller gave up on the call (a diagnostic's time budget, a shutdown), and the request may
/// still have reached AWS.
#[derive(Debug)]
struct InFlight {
    service: &'static str,
    operation: String,
    answered: AtomicBool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Relaxed) {
            METRICS
                .requests
                .with_label_values(&[self.service, &self.operation, "abandoned"])
                .inc();
        }
    }
}

impl Intercept for MetricsInterceptor {
    fn name(&self) -> &'static str {
        "PipelineResponderMetrics"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let in_flight = Arc::new(InFlight {
            service: self.service,
            operation: cfg
                .load::<Metadata>()
                .map(|m| m.name().to_string())
                .unwrap_or_else(|| "unknown".into()),
            answered: AtomicBool::new(false),
        });
        cfg.interceptor_state()
            .store_put(AttemptStart(Instant::now(), in_flight));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let outcome = match context.response() {
            None => "network_error",
            Some(r) if r.status().is_success() => "success",
            // JSON protocols name the error in `x-amzn-errortype`, query-compatible CBOR ones
            // (CloudWatch) in `x-amzn-query-error`; both say Throttling/ThrottlingException.
            Some(r)
                if r.status().as_u16() == 429
                    || ["x-amzn-errortype", "x-amzn-query-error"]
                        .iter()
                        .any(|h| r.headers().get(*h).is_some_and(|t| t.contains("Throttl"))) =>
            {
                "throttled"
            }
            Some(r) if r.status().is_server_error() => "server_error",
            Some(_) => "client_error",
        };
        METRICS
            .requests
            .with_label_values(&[self.service, &operation, outcome])
            .inc();
        if let Some(AttemptStart(start, in_flight)) = cfg.load::<AttemptStart>() {
            in_flight.answered.store(true, Ordering::Relaxed);
            METRICS
                .duration
                .with_label_values(&[self.service, &operation])
                .observe(start.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

macro_rules! client {
    ($name:ident, $sdk:ident, $label:literal) => {
        #[doc = concat!("A `", stringify!($sdk), "` client whose requests are counted and timed.")]
        pub fn $name(config: &aws_config::SdkConfig) -> $sdk::Client {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(config)
                    .interceptor(MetricsInterceptor::new($label))
                    .build(),
            )
        }
    };
}

client!(sqs, aws_sdk_sqs, "sqs");
client!(sns, aws_sdk_sns, "sns");
client!(dynamodb, aws_sdk_dynamodb, "dynamodb");
client!(logs, aws_sdk_cloudwatchlogs, "logs");
client!(codepipeline, aws_sdk_codepipeline, "codepipeline");
client!(cloudwatch, aws_sdk_cloudwatch, "cloudwatch");
