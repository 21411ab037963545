//! Test support: emulators and fakes the end-to-end tests run against.
//!
//! The daemon talks to AWS through the real `aws-sdk-*` clients and to Slack over HTTP, so the
//! tests put real servers on the other end of those wires instead of mocking traits:
//!
//! * [`Moto`] runs moto (SQS, SNS, DynamoDB, CloudWatch Logs) as a child process;
//! * [`CodePipelineFake`] and [`CloudWatchFake`] speak the protocols moto cannot (CodePipeline
//!   execution APIs over awsJson 1.1; CloudWatch over Smithy RPC v2 CBOR, which is all
//!   aws-sdk-cloudwatch sends);
//! * [`SlackFake`] imitates Slack's incoming webhook and Web API, limits and rate limits included;
//! * [`PagerDutyFake`] and [`OpsgenieFake`] speak the Events API v2 and the Alert API, and sign
//!   or tag their webhooks the way those services do.
//!
//! Every server binds 127.0.0.1 on a free port, runs on the current tokio runtime and stops when
//! its handle is dropped, so tests can run in parallel without sharing state.

mod faults;
mod recorder;
mod server;

pub mod cloudwatch;
pub mod codepipeline;
pub mod moto;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;

pub use cloudwatch::{AlarmModel, CloudWatchCall, CloudWatchFake};
pub use codepipeline::{
    ActionExecutionModel, ActionModel, ActionStateModel, CodePipelineCall, CodePipelineFake,
    ErrorDetails, ExecutionModel, PipelineModel, RevisionModel, StageModel,
};
pub use faults::InjectedError;
pub use moto::{Moto, MotoError};
pub use opsgenie::{Alert, OpsgenieCall, OpsgenieFake};
pub use pagerduty::{PagerDutyEvent, PagerDutyFake};
pub use slack::{SlackEndpoint, SlackFake, SlackOutcome, SlackPost};

/// Region every test client and fake uses; fakes put it in ARNs.
pub const TEST_REGION: &str = "us-east-1";

/// Account id the fakes put in ARNs and messages (moto's default account too).
pub const TEST_ACCOUNT_ID: &str = "123456789012";

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// For servers we cannot hand a bound socket to (moto is a child process): bind port 0, note the
/// port the kernel chose, release it. Another process could take it in between; on a test
/// machine that race is rare enough to accept.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 should always give a free port")
}

/// An SDK configuration that sends every request to `endpoint` with static test credentials.
///
/// Region and credentials are fixed (and the host environment ignored) so a developer's
/// `AWS_PROFILE` or real credentials can never leak into, or be used by, a test.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .empty_test_environment()
        .region(aws_config::Region::new(TEST_REGION))
        .test_credentials()
        .endpoint_url(endpoint)
        .load()
        .await
}
