//! A fault-injecting HTTP/1.1 proxy for the fault suites.
//!
//! It sits between the daemon and one upstream (moto, a fake, the Slack fake): every request is
//! read whole, recorded (service, operation, the SDK's invocation id and attempt number), and then
//! either forwarded or answered with a fault:
//!
//! * `Throttle`, `Internal`, `Unavailable`: an error in the service's own wire format (awsJson
//!   with `x-amzn-errortype` and `__type`, the query protocol's XML `ErrorResponse`, RPC v2 CBOR
//!   with `x-amzn-query-error`; Slack's plain-text webhook answer), so the real SDK classifies
//!   them as the service's throttling and 5xx errors;
//! * `HangBefore`: the request is never forwarded; the connection is held for the plan's `hold`,
//!   then closed without an answer (a timeout before the service saw the request);
//! * `HangAfter`: forwarded (the service acts on it), then the answer is withheld for `hold` and
//!   the connection closed (a timeout after the service acted: the caller cannot tell).
//!
//! The daemon's SDK clients set no operation or attempt timeout, so a hang lasts `hold`: the
//! proxy's hold plays the part of the network timing out.
//!
//! Raw TCP instead of an HTTP framework so that a hang can end in a closed connection without
//! any answer, which is what a timed-out request looks like to the client.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::common::Rng;

/// What the proxy does instead of (or after) forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// HTTP 400 with the service's throttling code.
    Throttle,
    /// HTTP 500 with the service's internal-error code.
    Internal,
    /// HTTP 503 with the service's unavailable code.
    Unavailable,
    /// HTTP 503 with an HTML body and no AWS error code (a load balancer in front of the
    /// service answering for it).
    BareUnavailable,
    /// Not forwarded; held for `hold`, then the connection is closed without an answer.
    HangBefore,
    /// Forwarded; the answer is withheld for `hold`, then the connection is closed.
    HangAfter,
}

impl Fault {
    pub fn is_hang(self) -> bool {
        matches!(self, Fault::HangBefore | Fault::HangAfter)
    }
}

/// Which error bodies the proxy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// AWS services (the protocol is read from each request).
    Aws,
    /// Slack's incoming webhook and Web API.
    Slack,
}

/// A fault that applies to every request matching it (before the random draw).
#[derive(Debug, Clone)]
pub struct Rule {
    /// Only this operation (`FilterLogEvents`, `Query`, ...); `None`: any.
    pub operation: Option<&'static str>,
    /// The request body must contain this text (a log group, a table name).
    pub needle: String,
    pub fault: Fault,
    /// Overrides the plan's hold for hangs.
    pub hold: Option<Duration>,
}

/// How the proxy misbehaves.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Fraction of requests (not matched by a rule) answered with a fault.
    pub rate: f64,
    /// The faults drawn, with their weights.
    pub mix: Vec<(Fault, u32)>,
    /// How long a hang holds the connection.
    pub hold: Duration,
    pub rules: Vec<Rule>,
    /// The first request of each (service, operation) gets a fault from `mix`, so that every
    /// operation sees one even in a short run.
    pub first_fails: bool,
}

impl Plan {
    /// Forwards everything.
    pub fn clean() -> Plan {
        Plan {
            rate: 0.0,
            mix: Vec::new(),
            hold: Duration::from_secs(1),
            rules: Vec::new(),
            first_fails: false,
        }
    }

    /// `rate` of the requests fail, evenly throttling, 500, 503, hang before and hang after.
    pub fn aws(rate: f64, hold: Duration) -> Plan {
        Plan {
            rate,
            mix: vec![
                (Fault::Throttle, 1),
                (Fault::Internal, 1),
                (Fault::Unavailable, 1),
                (Fault::HangBefore, 1),
                (Fault::HangAfter, 1),
            ],
            hold,
            rules: Vec::new(),
            first_fails: true,
        }
    }

    /// Only hangs (the fakes inject the error answers themselves).
    pub fn hangs(rate: f64, hold: Duration) -> Plan {
        Plan {
            rate,
            mix: vec![(Fault::HangBefore, 1), (Fault::HangAfter, 1)],
            hold,
            rules: Vec::new(),
            first_fails: false,
        }
    }

    /// Every request answered 503 (an outage).
    pub fn outage() -> Plan {
        Plan {
            rate: 1.0,
            mix: vec![(Fault::Unavailable, 1)],
            hold: Duration::from_secs(1),
            rules: Vec::new(),
            first_fails: false,
        }
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Record {
    /// Signing name from the SigV4 credential scope (`sqs`, `sns`, `dynamodb`, `logs`,
    /// `codepipeline`, `monitoring`); `slack` for the Slack flavor.
    pub service: String,
    /// `X-Amz-Target` operation, RPC v2 path operation, query `Action`, or the Slack path.
    pub operation: String,
    /// `amz-sdk-invocation-id`: the same for every attempt of one SDK call.
    pub invocation: Option<String>,
    /// From `amz-sdk-request: attempt=N; max=M`.
    pub attempt: Option<u32>,
    pub max_attempts: Option<u32>,
    pub fault: Option<Fault>,
    /// The fault came from a rule (not the random draw).
    pub by_rule: bool,
    /// The status answered (forwarded or injected); `None` for hangs and upstream failures.
    pub status: Option<u16>,
}

/// Attempts and calls per operation, from the records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpStats {
    /// HTTP requests (SDK attempts).
    pub attempts: usize,
    /// Distinct SDK invocations (calls made).
    pub calls: usize,
    pub faults: usize,
    /// Most attempts seen for one invocation.
    pub max_attempts_per_call: usize,
    /// The SDK's own limit, as its `amz-sdk-request` header states it.
    pub sdk_max_attempts: Option<u32>,
}

#[derive(Debug)]
struct Shared {
    /// `127.0.0.1:port` of the upstream.
    upstream: String,
    flavor: Flavor,
    client: reqwest::Client,
    plan: Mutex<Plan>,
    rng: Mutex<Rng>,
    records: Mutex<Vec<Record>>,
}

/// A running proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:port`), forwarding everything until a
    /// plan is set.
    pub async fn start(upstream: &str, flavor: Flavor, seed: u64) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            flavor,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            plan: Mutex::new(Plan::clean()),
            rng: Mutex::new(Rng::new(seed)),
            records: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move { serve(stream, shared).await });
                }
            })
        };
        FaultProxy {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_plan(&self, plan: Plan) {
        *lock(&self.shared.plan) = plan;
    }

    pub fn records(&self) -> Vec<Record> {
        lock(&self.shared.records).clone()
    }

    /// Per (service, operation): attempts, calls, faults, most attempts for one call.
    pub fn stats(&self) -> BTreeMap<(String, String), OpStats> {
        stats_of(&self.records())
    }
}

/// Groups records per (service, operation).
pub fn stats_of(records: &[Record]) -> BTreeMap<(String, String), OpStats> {
    let mut out: BTreeMap<(String, String), OpStats> = BTreeMap::new();
    let mut per_call: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in records {
        let key = (r.service.clone(), r.operation.clone());
        let s = out.entry(key).or_default();
        s.attempts += 1;
        s.faults += usize::from(r.fault.is_some());
        if r.max_attempts.is_some() {
            s.sdk_max_attempts = r.max_attempts;
        }
        // A request without an invocation id is its own call.
        let id = r
            .invocation
            .clone()
            .unwrap_or_else(|| format!("anonymous-{}", s.attempts));
        *per_call
            .entry((r.service.clone(), r.operation.clone(), id))
            .or_default() += 1;
    }
    for ((service, operation, _), attempts) in per_call {
        let s = out.get_mut(&(service, operation)).unwrap();
        s.calls += 1;
        s.max_attempts_per_call = s.max_attempts_per_call.max(attempts);
    }
    out
}

/// One parsed request.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one connection: requests in sequence (keep-alive) until it closes or a hang ends it.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let (service, operation) = identify(&request, shared.flavor);
        let (fault, hold, by_rule) = decide(&shared, &request, &service, &operation);
        let (invocation, attempt, max_attempts) = sdk_attempt(&request);
        let index = {
            let mut records = lock(&shared.records);
            records.push(Record {
                service: service.clone(),
                operation: operation.clone(),
                invocation,
                attempt,
                max_attempts,
                fault,
                by_rule,
                status: None,
            });
            records.len() - 1
        };
        let set_status = |status: u16| lock(&shared.records)[index].status = Some(status);
        match fault {
            Some(Fault::HangBefore) => {
                tokio::time::sleep(hold).await;
                return;
            }
            Some(Fault::HangAfter) => {
                let _ = forward(&shared, &request).await;
                tokio::time::sleep(hold).await;
                return;
            }
            Some(error) => {
                let (status, headers, body) =
                    error_answer(error, &service, &request, shared.flavor);
                set_status(status);
                if write_response(&mut stream, status, &headers, &body)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            None => match forward(&shared, &request).await {
                Some((status, headers, body)) => {
                    set_status(status);
                    if write_response(&mut stream, status, &headers, &body)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                None => return,
            },
        }
        if request
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}

/// Reads one request (head and a Content-Length body); `None` when the connection ends.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    // Every client in these tests sends Content-Length; a chunked body would be a surprise.
    assert!(!chunked, "the fault proxy does not read chunked bodies");
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + length {
        let mut chunk = [0u8; 64 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[body_start..body_start + length].to_vec();
    buf.drain(..body_start + length);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// (service, operation) of a request.
fn identify(request: &Request, flavor: Flavor) -> (String, String) {
    if flavor == Flavor::Slack {
        return ("slack".into(), request.path.clone());
    }
    let service = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let operation = if let Some(target) = request.header("x-amz-target") {
        target.rsplit('.').next().unwrap_or(target).to_string()
    } else if let Some(op) = request.path.split("/operation/").nth(1) {
        op.to_string()
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
            .ok()
            .and_then(|form| form.into_iter().find(|(k, _)| k == "Action"))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v)
    };
    (service, operation)
}

/// The SDK's invocation id, attempt number and attempt limit.
fn sdk_attempt(request: &Request) -> (Option<String>, Option<u32>, Option<u32>) {
    let invocation = request.header("amz-sdk-invocation-id").map(String::from);
    let info = request.header("amz-sdk-request").unwrap_or_default();
    let field = |name: &str| {
        info.split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<u32>().ok())
    };
    (invocation, field("attempt"), field("max"))
}

/// Rules first, then the random draw.
fn decide(
    shared: &Shared,
    request: &Request,
    service: &str,
    operation: &str,
) -> (Option<Fault>, Duration, bool) {
    let plan = lock(&shared.plan);
    let body = String::from_utf8_lossy(&request.body);
    if let Some(rule) = plan
        .rules
        .iter()
        .find(|r| r.operation.is_none_or(|op| op == operation) && body.contains(r.needle.as_str()))
    {
        return (Some(rule.fault), rule.hold.unwrap_or(plan.hold), true);
    }
    let first = plan.first_fails
        && !lock(&shared.records)
            .iter()
            .any(|r| r.service == service && r.operation == operation && !r.by_rule);
    let mut rng = lock(&shared.rng);
    if plan.mix.is_empty() || !(first || rng.chance(plan.rate)) {
        return (None, plan.hold, false);
    }
    let total: u32 = plan.mix.iter().map(|(_, w)| w).sum();
    let mut pick = rng.below(u64::from(total)) as u32;
    for (fault, weight) in &plan.mix {
        if pick < *weight {
            return (Some(*fault), plan.hold, false);
        }
        pick -= weight;
    }
    (None, plan.hold, false)
}

/// Sends the request to the upstream; (status, headers, body), or `None` if it did not answer.
async fn forward(
    shared: &Shared,
    request: &Request,
) -> Option<(u16, Vec<(String, String)>, Vec<u8>)> {
    let url = format!("http://{}{}", shared.upstream, request.path);
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).ok()?;
    let mut outgoing = shared.client.request(method, url);
    for (name, value) in &request.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "expect"
        ) {
            outgoing = outgoing.header(name, value);
        }
    }
    let response = outgoing.body(request.body.clone()).send().await.ok()?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "content-length" | "connection" | "transfer-encoding" | "keep-alive"
            )
        })
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = response.bytes().await.ok()?.to_vec();
    Some((status, headers, body))
}

/// The error code a service uses for a fault.
fn error_code(fault: Fault, service: &str) -> &'static str {
    match (fault, service) {
        (Fault::Throttle, "sqs") => "RequestThrottled",
        (Fault::Throttle, "dynamodb") => "ProvisionedThroughputExceededException",
        (Fault::Throttle, "sns" | "monitoring") => "Throttling",
        (Fault::Throttle, _) => "ThrottlingException",
        (Fault::Internal, "dynamodb") => "InternalServerError",
        (Fault::Internal, "logs") => "ServiceUnavailableException",
        (Fault::Internal, "monitoring") => "InternalServiceError",
        (Fault::Internal, _) => "InternalFailure",
        (Fault::Unavailable, "logs" | "codepipeline") => "ServiceUnavailableException",
        (Fault::Unavailable, _) => "ServiceUnavailable",
        (Fault::HangBefore | Fault::HangAfter | Fault::BareUnavailable, _) => "RequestTimeout",
    }
}

/// An error answer in the wire format of the request's protocol.
fn error_answer(
    fault: Fault,
    service: &str,
    request: &Request,
    flavor: Flavor,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let status = match fault {
        Fault::Throttle if flavor == Flavor::Slack => 429,
        Fault::Throttle => 400,
        Fault::Internal => 500,
        _ => 503,
    };
    if flavor == Flavor::Slack {
        // What the Slack fake answers for a server error (plain text on the webhook, JSON on the
        // Web API).
        if request.path.starts_with("/api/") {
            let body = json!({"ok": false, "error": "service_unavailable"}).to_string();
            return (
                status,
                vec![("content-type".into(), "application/json".into())],
                body.into_bytes(),
            );
        }
        return (
            status,
            vec![("content-type".into(), "text/plain".into())],
            b"service_unavailable".to_vec(),
        );
    }
    if fault == Fault::BareUnavailable {
        return (
            status,
            vec![("content-type".into(), "text/html".into())],
            b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>".to_vec(),
        );
    }
    let code = error_code(fault, service);
    let message = match fault {
        Fault::Throttle => "Rate exceeded",
        _ => "Injected by the fault proxy",
    };
    let request_id = (
        "x-amzn-requestid".to_string(),
        "fault-proxy-0000".to_string(),
    );
    if let Some(content_type) = request
        .header("content-type")
        .filter(|_| request.header("x-amz-target").is_some())
    {
        // awsJson 1.0/1.1 (SQS is query-compatible: it also names the code in a header).
        let mut headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            ("x-amzn-errortype".to_string(), code.to_string()),
            request_id,
        ];
        if service == "sqs" {
            let side = if status >= 500 { "Receiver" } else { "Sender" };
            headers.push(("x-amzn-query-error".into(), format!("{code};{side}")));
        }
        let body = json!({"__type": code, "message": message}).to_string();
        return (status, headers, body.into_bytes());
    }
    if request.path.contains("/operation/") {
        // Smithy RPC v2 CBOR (CloudWatch), query-compatible.
        let side = if status >= 500 { "Receiver" } else { "Sender" };
        let value = ciborium::Value::Map(vec![
            (
                ciborium::Value::Text("__type".into()),
                ciborium::Value::Text(format!("com.amazonaws.cloudwatch#{code}")),
            ),
            (
                ciborium::Value::Text("message".into()),
                ciborium::Value::Text(message.into()),
            ),
        ]);
        let mut body = Vec::new();
        ciborium::into_writer(&value, &mut body).unwrap();
        let headers = vec![
            ("content-type".to_string(), "application/cbor".to_string()),
            ("smithy-protocol".to_string(), "rpc-v2-cbor".to_string()),
            ("x-amzn-query-error".to_string(), format!("{code};{side}")),
            request_id,
        ];
        return (status, headers, body);
    }
    // The query protocol (SNS).
    let side = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{side}</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy-0000</RequestId></ErrorResponse>"
    );
    (
        status,
        vec![("content-type".into(), "text/xml".into()), request_id],
        body.into_bytes(),
    )
}

async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// The proxy against the real SDK: its errors are classified as the service's throttling and
/// 5xx errors (retried up to the SDK's limit), its hangs end in a retried network error, and
/// its records count attempts per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_speaks_each_protocol_and_counts_attempts_per_call() {
    let moto = pipeline_responder_e2e::Moto::start().await;
    let proxy = FaultProxy::start(moto.endpoint(), Flavor::Aws, 7).await;
    let config = pipeline_responder_e2e::sdk_config(&proxy.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let url = sqs
        .create_queue()
        .queue_name("proxied")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    for (fault, sqs_code, sns_code, logs_code) in [
        (
            Fault::Throttle,
            "RequestThrottled",
            "Throttling",
            "ThrottlingException",
        ),
        (
            Fault::Internal,
            "InternalFailure",
            "InternalFailure",
            "ServiceUnavailableException",
        ),
        (
            Fault::Unavailable,
            "ServiceUnavailable",
            "ServiceUnavailable",
            "ServiceUnavailableException",
        ),
    ] {
        proxy.set_plan(Plan {
            rate: 1.0,
            mix: vec![(fault, 1)],
            hold: Duration::from_secs(1),
            rules: Vec::new(),
            first_fails: false,
        });
        let before = proxy.records().len();
        let e = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(sqs_code), "{fault:?}: {e:?}");
        let e = sns.list_topics().send().await.unwrap_err();
        assert_eq!(e.code(), Some(sns_code), "{fault:?}: {e:?}");
        let e = logs.describe_log_groups().send().await.unwrap_err();
        assert_eq!(e.code(), Some(logs_code), "{fault:?}: {e:?}");
        // The SDK retried each call to its limit (3 attempts), no more.
        let records = proxy.records()[before..].to_vec();
        let stats = stats_of(&records);
        assert_eq!(stats.len(), 3, "{stats:?}");
        for ((service, op), s) in &stats {
            assert_eq!(
                (
                    s.calls,
                    s.attempts,
                    s.max_attempts_per_call,
                    s.sdk_max_attempts
                ),
                (1, 3, 3, Some(3)),
                "{service} {op} with {fault:?}"
            );
        }
    }
    // A hang before forwarding: retried, and the retry goes through.
    proxy.set_plan(Plan {
        rate: 0.0,
        mix: vec![(Fault::HangBefore, 1)],
        hold: Duration::from_millis(300),
        rules: vec![Rule {
            operation: Some("SendMessage"),
            needle: "hang-once".into(),
            fault: Fault::HangBefore,
            hold: None,
        }],
        first_fails: false,
    });
    let before = proxy.records().len();
    let e = sqs
        .send_message()
        .queue_url(&url)
        .message_body("hang-once")
        .send()
        .await
        .unwrap_err();
    // Every attempt matches the rule: three hangs, then a dispatch (network) error.
    assert!(
        matches!(e, aws_sdk_sqs::error::SdkError::DispatchFailure(_)),
        "{e:?}"
    );
    assert_eq!(proxy.records().len() - before, 3);
    // Clean: forwarded untouched.
    proxy.set_plan(Plan::clean());
    sqs.send_message()
        .queue_url(&url)
        .message_body("through")
        .send()
        .await
        .unwrap();
    let last = proxy.records().pop().unwrap();
    assert_eq!(
        (last.service.as_str(), last.operation.as_str(), last.status),
        ("sqs", "SendMessage", Some(200))
    );
    assert_eq!(last.attempt, Some(1));
}
