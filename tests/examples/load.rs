//! Load tool behind the figures of `docs/benchmarks.md` (issue 7): it starts the REAL daemon
//! binary against the project's fakes (and moto where SQS is measured), drives it, and prints the
//! figures. Everything runs on 127.0.0.1; no AWS account is used.
//!
//! ```text
//! cargo run -p pipeline-responder-e2e --example load --release -- SCENARIO [--daemon PATH] [options]
//!
//! http-latency  --rate 500 --seconds 20 [--connections 8] [--scrapers 8]  (scrapers: GET
//!               /metrics in a loop each, meanwhile)
//!               POST /api/v1/events → 202 stored, and → first Slack post of that incident
//! http-max      [--steps 100,250,500,1000,2000,4000,8000] [--seconds 10] [--connections 32]
//!               the highest rate whose stored responses keep up (a fresh daemon per step)
//! sqs-latency   [--rate 5] [--seconds 20]       SendMessage (moto) → first Slack post
//! footprint     [--incidents 10000] [--rate 500] [--idle-secs 60]
//!               RSS idle / after the incidents / after idling, idle CPU, binary size
//! storm         [--failures 500] [--seconds 60]  product storm settings: posts, time to record
//!
//! common: --daemon PATH (default $CARGO_TARGET_DIR/release/pipeline-responder)
//!         --diagnostics  run the failure diagnostics against the fakes and moto (default: off)
//!         --keep         keep the daemon's state directory (config, log, state.db)
//!         --daemon-env KEY=VALUE   add a variable to the daemon's environment (repeatable),
//!                        e.g. MALLOC_ARENA_MAX=2
//! ```
//!
//! How it measures: requests are paced open-loop (request `i` is due at `start + i / rate`) over
//! a fixed number of keep-alive connections; latencies count from the DUE time, so a daemon that
//! falls behind shows up as latency (and backlog) instead of silently slowing the tool down.
//! The Slack fake stamps each post on arrival; a first post is matched to its event by the
//! execution id it names (`Execution <first 8 characters>`), which the tool makes unique.
//! CPU is read from `/proc` (daemon, this tool, the whole machine) so other work on the machine
//! is visible in the output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use pipeline_responder_e2e::{
    ActionModel, AlarmModel, CloudWatchFake, CodePipelineFake, ExecutionModel, Moto, PipelineModel,
    SlackFake, SlackPost, StageModel,
};
use serde_json::{json, Value};

/// The AWS sample event every load event is made from (`fixtures/events`, like the tests').
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/events/codepipeline-pipeline-failed.json"
);

/// The daemon's `http.api_token` (its `${PIPELINE_RESPONDER_API_TOKEN:-...}` default).
const API_TOKEN: &str = "local-demo-token-not-a-secret-0123456789";

/// Environments in the generated configuration (the runbook's three).
const ENVIRONMENTS: [&str; 3] = ["test", "staging", "production"];

/// Every load event fails `kiro-pipeline-test`: one environment, so the cross-environment
/// escalation rule (2 environments within 30 min → L2) stays out of the figures.
const LOAD_PIPELINE: &str = "kiro-pipeline-test";

/// A closed loopback port: where AWS calls go when a scenario starts no emulator for them
/// (they fail at once with "connection refused" instead of leaving the machine).
const NOWHERE: &str = "http://127.0.0.1:9";

// ---------------------------------------------------------------------------------------------
// Command line

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    HttpLatency,
    HttpMax,
    SqsLatency,
    Footprint,
    Storm,
}

#[derive(Debug)]
struct Args {
    scenario: Scenario,
    daemon: PathBuf,
    rate: Option<f64>,
    seconds: Option<f64>,
    connections: Option<usize>,
    steps: Vec<f64>,
    failures: usize,
    incidents: usize,
    idle_secs: u64,
    /// Concurrent `GET /metrics` loops during `http-latency` (`--scrapers N`).
    scrapers: usize,
    diagnostics: bool,
    keep: bool,
    /// Extra environment variables for the daemon (`--daemon-env KEY=VALUE`, repeatable).
    daemon_env: Vec<(String, String)>,
}

const USAGE: &str = "usage: load (http-latency | http-max | sqs-latency | footprint | storm) \
[--daemon PATH] [--rate N] [--seconds N] [--connections N] [--steps A,B,..] [--failures N] \
[--incidents N] [--idle-secs N] [--scrapers N] [--diagnostics] [--keep] [--daemon-env KEY=VALUE]...";

fn parse_args() -> Result<Args, String> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| "/var/tmp/pipeline-responder-target".to_string());
    let mut it = std::env::args().skip(1);
    let scenario = match it.next().as_deref() {
        Some("http-latency") => Scenario::HttpLatency,
        Some("http-max") => Scenario::HttpMax,
        Some("sqs-latency") => Scenario::SqsLatency,
        Some("footprint") => Scenario::Footprint,
        Some("storm") => Scenario::Storm,
        _ => return Err(USAGE.to_string()),
    };
    let mut args = Args {
        scenario,
        daemon: PathBuf::from(target).join("release/pipeline-responder"),
        rate: None,
        seconds: None,
        connections: None,
        steps: vec![100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0],
        failures: 500,
        incidents: 10_000,
        idle_secs: 60,
        scrapers: 0,
        diagnostics: false,
        keep: false,
        daemon_env: Vec::new(),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--daemon" => args.daemon = PathBuf::from(value()?),
            "--rate" => args.rate = Some(number(value()?)?),
            "--seconds" => args.seconds = Some(number(value()?)?),
            "--connections" => args.connections = Some(number(value()?)? as usize),
            "--failures" => args.failures = number(value()?)? as usize,
            "--incidents" => args.incidents = number(value()?)? as usize,
            "--idle-secs" => args.idle_secs = number(value()?)? as u64,
            "--scrapers" => args.scrapers = number(value()?)? as usize,
            "--steps" => {
                args.steps = value()?
                    .split(',')
                    .map(|s| number(s.trim().to_string()))
                    .collect::<Result<_, _>>()?
            }
            "--diagnostics" => args.diagnostics = true,
            "--keep" => args.keep = true,
            "--daemon-env" => {
                let pair = value()?;
                let (k, v) = pair
                    .split_once('=')
                    .ok_or(format!("--daemon-env {pair}: use KEY=VALUE"))?;
                args.daemon_env.push((k.to_string(), v.to_string()));
            }
            _ => return Err(format!("unknown argument {flag}; {USAGE}")),
        }
    }
    if !args.daemon.is_file() {
        return Err(format!(
            "{} not found: build it (cargo build --release -p pipeline-responder) or pass --daemon PATH",
            args.daemon.display()
        ));
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// The daemon under test

/// What a scenario changes in the generated configuration.
#[derive(Debug, Clone)]
struct Settings {
    /// `[storm] max_incidents`; `None` keeps the product default (5 per 60 s).
    storm_max: Option<u64>,
    /// `[daemon] first_post_wait_secs`; `None` keeps the product default (8 s).
    first_post_wait_secs: Option<u64>,
    /// `[sources.sqs] queue_url`; `None` disables the SQS consumer.
    queue_url: Option<String>,
    /// `[sources.watcher] enabled` (product default interval, 300 s).
    watcher: bool,
    /// The failure policy's diagnostics (pipeline state, execution details, build log, coverage
    /// and security reports); off, the daemon still runs its (empty) diagnosis per incident.
    diagnostics: bool,
}

impl Settings {
    /// HTTP ingest as the issue measures it: Slack only, storm control raised so every incident
    /// gets its own post, the first post not held for diagnostics.
    fn http() -> Self {
        Settings {
            storm_max: Some(1_000_000),
            first_post_wait_secs: Some(0),
            queue_url: None,
            watcher: false,
            diagnostics: false,
        }
    }

    fn toml(&self, state: &Path) -> String {
        let mut t = String::new();
        t += "[daemon]\nshutdown_grace_secs = 10\n";
        if let Some(wait) = self.first_post_wait_secs {
            t += &format!("first_post_wait_secs = {wait}\n");
        }
        t += "[aws]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n";
        t += "[http]\nlisten = \"${PIPELINE_RESPONDER_LISTEN:-127.0.0.1:0}\"\n";
        t += "api_token = \"${PIPELINE_RESPONDER_API_TOKEN:-local-demo-token-not-a-secret-0123456789}\"\n";
        t += &format!(
            "[store]\nkind = \"embedded\"\npath = \"{}\"\n",
            state.join("state.db").display()
        );
        match &self.queue_url {
            Some(url) => t += &format!("[sources.sqs]\nqueue_url = \"{url}\"\n"),
            None => t += "[sources.sqs]\nenabled = false\n",
        }
        t += &format!("[sources.watcher]\nenabled = {}\n", self.watcher);
        t += "[notifiers.slack]\nwebhook_url = \"${SLACK_WEBHOOK_URL}\"\n";
        t += "default_channel = \"#deployments\"\n";
        // SNS publishing would put moto (single-threaded Python) on every incident's path.
        t += "[notifiers.sns]\nenabled = false\n";
        if let Some(max) = self.storm_max {
            t += &format!("[storm]\nmax_incidents = {max}\nwindow_secs = 60\n");
        }
        t += "[environment_defaults]\nresource_prefix = \"kiro-pipeline-{env}\"\n";
        for env in ENVIRONMENTS {
            t += &format!("[[environments]]\nname = \"{env}\"\n");
        }
        if !self.diagnostics {
            t += "[policies.pipeline_execution_failure.diagnostics]\n";
            for d in [
                "pipeline_state",
                "execution_details",
                "build_log",
                "coverage_report",
                "security_report",
            ] {
                t += &format!("{d} = {{ enabled = false }}\n");
            }
        }
        t
    }
}

/// Where the daemon's AWS calls go.
#[derive(Debug, Clone)]
struct Endpoints {
    /// moto (SQS, CloudWatch Logs, DynamoDB), or [`NOWHERE`].
    aws: String,
    codepipeline: String,
    cloudwatch: String,
    slack_webhook: String,
}

/// A running `pipeline-responder run`, killed if dropped.
#[derive(Debug)]
struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    /// `http://127.0.0.1:<port>` of its listener.
    base: String,
    dir: PathBuf,
    keep: bool,
}

impl Daemon {
    /// Starts `args.daemon` with a configuration written from `settings`.
    async fn start(
        args: &Args,
        settings: &Settings,
        endpoints: &Endpoints,
    ) -> Result<Daemon, String> {
        let (binary, keep) = (&args.daemon, args.keep);
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        // The state goes to the machine's disk (/var/tmp), not a tmpfs: fsync must cost what it
        // costs in production.
        let dir = PathBuf::from("/var/tmp").join(format!(
            "pipeline-responder-load-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config = dir.join("config.toml");
        std::fs::write(&config, settings.toml(&dir)).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("daemon.log")).map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(binary)
            .args(["--config", &config.display().to_string(), "run"])
            // Nothing from the host environment: no real credentials can ever be picked up.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &endpoints.aws)
            .env("AWS_ENDPOINT_URL_CODEPIPELINE", &endpoints.codepipeline)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", &endpoints.cloudwatch)
            .env("AWS_ACCESS_KEY_ID", "load")
            .env("AWS_SECRET_ACCESS_KEY", "load")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SLACK_WEBHOOK_URL", &endpoints.slack_webhook)
            .env("PIPELINE_RESPONDER_API_TOKEN", API_TOKEN)
            .env("RUST_LOG", "info")
            .envs(args.daemon_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let pid = child.id().ok_or("the daemon exited at once")?;
        let mut daemon = Daemon {
            child,
            pid,
            base: String::new(),
            dir,
            keep,
        };
        // The listener's address is in the log ("HTTP listening", port 0 → a free one).
        for _ in 0..300 {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!("the daemon exited ({status}): {}", daemon.log()));
            }
            let addr = daemon
                .log()
                .lines()
                .find(|l| l.contains("HTTP listening"))
                .and_then(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|v| v["addr"].as_str().map(str::to_owned));
            if let Some(addr) = addr {
                daemon.base = format!("http://{addr}");
                return Ok(daemon);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no \"HTTP listening\" in 15 s: {}", daemon.log()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    fn status_field_kib(&self, field: &str) -> u64 {
        status_field_kib(self.pid, field)
    }

    fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.pid))
    }

    /// "anon X MiB · file Y MiB": heap and stacks vs the binary's pages in memory (the latter
    /// shared with the page cache and given back under memory pressure).
    fn rss_split(&self) -> String {
        format!(
            "anon {:.1} MiB · file {:.1} MiB",
            mib(self.status_field_kib("RssAnon")),
            mib(self.status_field_kib("RssFile"))
        )
    }

    /// One counter or gauge of `/metrics`, summed over the series whose labels contain every
    /// `label` (`outcome="sent"` ...).
    async fn metric(&self, http: &reqwest::Client, name: &str, labels: &[&str]) -> f64 {
        let Ok(response) = http.get(format!("{}/metrics", self.base)).send().await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Slack posts the outbox has finished with (sent, plus grouped into a storm summary).
    async fn slack_done(&self, http: &reqwest::Client) -> f64 {
        let n = "pipeline_responder_notifications_total";
        self.metric(http, n, &["slack", "outcome=\"sent\""]).await
            + self
                .metric(http, n, &["slack", "outcome=\"summarized\""])
                .await
    }

    /// Waits until the outbox has handled `expected` Slack posts, or nothing moved for `quiet`.
    async fn drain_slack(&self, http: &reqwest::Client, expected: f64, quiet: Duration) -> f64 {
        let mut last = (-1.0, Instant::now());
        loop {
            let done = self.slack_done(http).await;
            if done >= expected {
                return done;
            }
            if done > last.0 {
                last = (done, Instant::now());
            } else if last.1.elapsed() > quiet {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, as ECS stops a task; the state directory goes unless `--keep`.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        if self.keep {
            println!("  daemon state kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readings

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`), 0 when unreadable.
fn status_field_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a /proc/…/stat file, in seconds.
fn cpu_secs(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12th and 13th after the name.
    let ticks = fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0);
    ticks / ticks_per_sec()
}

/// CPU seconds the whole machine spent busy (all cores; not idle, not iowait).
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let total: f64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle) / ticks_per_sec()
}

/// CPU used by the daemon, this tool and everything else between two readings.
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    at: Instant,
    daemon: f64,
    tool: f64,
    machine: f64,
}

impl CpuMark {
    fn now(daemon: &Daemon) -> Self {
        CpuMark {
            at: Instant::now(),
            daemon: daemon.cpu_secs(),
            tool: cpu_secs("/proc/self/stat"),
            machine: machine_busy_secs(),
        }
    }

    /// (daemon, tool, other) in cores (1.0 = one core busy) since `self`.
    fn cores_until(&self, later: &CpuMark) -> (f64, f64, f64) {
        let secs = (later.at - self.at).as_secs_f64().max(1e-3);
        let daemon = (later.daemon - self.daemon) / secs;
        let tool = (later.tool - self.tool) / secs;
        let machine = (later.machine - self.machine) / secs;
        (daemon, tool, (machine - daemon - tool).max(0.0))
    }
}

/// `top -b -n1` lines (%CPU, command) of the given comma-separated pids.
async fn top_lines(pids: &str) -> Vec<String> {
    let Ok(out) = tokio::process::Command::new("top")
        .args(["-b", "-n1", "-p", pids])
        .output()
        .await
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(format!("{} {}% CPU", f.get(11)?, f.get(8)?))
        })
        .collect()
}

/// The load averages, to note other work on the machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Events and the open-loop driver

/// Makes distinct pipeline-failure events from the AWS sample: event `i` has its own event id
/// and an execution id whose first 8 characters (what a post shows) are `i` in hex.
#[derive(Debug, Clone)]
struct EventMaker {
    template: String,
    /// Tells runs apart in event ids (one state directory per daemon, but be safe).
    run: u32,
}

impl EventMaker {
    fn new() -> Self {
        let text = std::fs::read_to_string(FIXTURE)
            .unwrap_or_else(|e| panic!("reading the sample event {FIXTURE}: {e}"));
        let mut event: Value = serde_json::from_str(&text).expect("the fixture is JSON");
        event["id"] = json!("@ID@");
        event["time"] = json!("@TIME@");
        event["region"] = json!("us-east-1");
        event["resources"] = json!([format!(
            "arn:aws:codepipeline:us-east-1:123456789012:{LOAD_PIPELINE}"
        )]);
        event["detail"]["pipeline"] = json!(LOAD_PIPELINE);
        event["detail"]["execution-id"] = json!("@EXEC@");
        event["detail"]["start-time"] = json!("@TIME@");
        EventMaker {
            template: event.to_string(),
            run: rand_u32(),
        }
    }

    /// The short execution id a post shows for event `i`.
    fn short(i: usize) -> String {
        format!("{i:08x}")
    }

    /// Event `i`, stamped now; returns (short execution id, body).
    fn make(&self, i: usize) -> (String, String) {
        let short = Self::short(i);
        let exec = format!("{short}-{:04x}-4000-8000-{:012x}", self.run & 0xffff, i);
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let body = self
            .template
            .replace("@ID@", &format!("load-{:08x}-{i}", self.run))
            .replace("@EXEC@", &exec)
            .replace("@TIME@", &now);
        (short, body)
    }
}

/// A u32 that differs between runs (no `rand` in this crate: the clock's nanoseconds).
fn rand_u32() -> u32 {
    Utc::now().timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)
}

/// One request of a load run.
#[derive(Debug, Clone)]
struct Sample {
    /// Short execution id of its event (matches the post).
    short: String,
    /// When it was due (wall clock), the zero of both latencies.
    due_wall: DateTime<Utc>,
    /// Due → response, when one came.
    response: Option<Duration>,
    /// When the response came, relative to the start of the run.
    done_at: Option<Duration>,
    /// How late the tool sent it (all connections busy or the tool starved of CPU).
    lag: Duration,
    /// HTTP status (0: no response).
    status: u16,
}

/// Sends `total` events at `rate` per second over `connections` keep-alive connections.
///
/// Open loop: event `i` is due at `start + i / rate` whatever happened to earlier ones. A worker
/// takes the next due event, waits for its time, sends it and waits for the answer; when all
/// workers are busy the due events queue up in the tool, and their latency (counted from the
/// due time) shows it. With `give_up`, events more than that late are not sent at all (a step
/// that has clearly fallen behind ends instead of queueing minutes of work); the result then
/// holds fewer than `total` samples. `answered` counts responses as they come, for watchers.
async fn drive(
    url: &str,
    rate: f64,
    total: usize,
    connections: usize,
    give_up: Option<Duration>,
    maker: &EventMaker,
    answered: &Arc<AtomicUsize>,
) -> Vec<Sample> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain reqwest client always builds");
    let start = tokio::time::Instant::now();
    let start_wall = Utc::now();
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let mut workers = Vec::new();
    for _ in 0..connections.max(1) {
        let (http, url, next, samples, maker, answered) = (
            http.clone(),
            url.to_owned(),
            Arc::clone(&next),
            Arc::clone(&samples),
            maker.clone(),
            Arc::clone(answered),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let offset = Duration::from_secs_f64(n as f64 / rate);
                let due = start + offset;
                tokio::time::sleep_until(due).await;
                let lag = due.elapsed();
                if give_up.is_some_and(|limit| lag > limit) {
                    break;
                }
                let (short, body) = maker.make(n);
                let sent = http
                    .post(&url)
                    .bearer_auth(API_TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let status = match sent {
                    // Read the body so the connection is free for the next request.
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                let now = tokio::time::Instant::now();
                answered.fetch_add(1, Ordering::Relaxed);
                let sample = Sample {
                    short,
                    due_wall: start_wall + chrono::Duration::from_std(offset).unwrap_or_default(),
                    response: (status != 0).then(|| now - due),
                    done_at: (status != 0).then(|| now - start),
                    lag,
                    status,
                };
                samples
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(sample);
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let mut samples = std::mem::take(
        &mut *samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    samples.sort_by_key(|s| s.due_wall);
    samples
}

/// When the Slack fake received the first post naming each short execution id.
fn first_posts(posts: &[SlackPost]) -> HashMap<String, DateTime<Utc>> {
    let mut first = HashMap::new();
    for post in posts.iter().filter(|p| p.is_accepted()) {
        let Some(text) = post.text() else { continue };
        let Some(at) = text.find("Execution ") else {
            continue;
        };
        let short: String = text[at + "Execution ".len()..].chars().take(8).collect();
        first.entry(short).or_insert(post.received_at);
    }
    first
}

/// [`first_posts`] once `expected` first posts arrived, or nothing new came for `quiet`.
///
/// The outbox's counter cannot tell when every FIRST post is out: it also counts other posts
/// (the daemon sometimes sends a "Diagnostics" thread reply), so the posts themselves are read.
async fn wait_first_posts(
    slack: &SlackFake,
    expected: usize,
    quiet: Duration,
) -> HashMap<String, DateTime<Utc>> {
    let mut last = (0, Instant::now());
    loop {
        let first = first_posts(&slack.posts());
        if first.len() >= expected {
            return first;
        }
        if first.len() > last.0 {
            last = (first.len(), Instant::now());
        } else if last.1.elapsed() > quiet {
            return first;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

/// Sorted milliseconds with nearest-rank percentiles.
#[derive(Debug, Default)]
struct Dist(Vec<f64>);

impl Dist {
    fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        Dist(v)
    }

    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms (n = {})",
            self.pct(50.0),
            self.pct(99.0),
            self.max(),
            self.0.len()
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn header(title: &str, args: &Args) {
    println!("== {title}");
    println!(
        "  daemon {} · {} · load average {} · {}",
        args.daemon.display(),
        if args.diagnostics {
            "diagnostics ON (fakes + moto)"
        } else {
            "diagnostics off"
        },
        load_average(),
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
    );
}

// ---------------------------------------------------------------------------------------------
// Fakes

/// The in-process fakes every scenario starts (moto only where a scenario needs it).
#[derive(Debug)]
struct Fakes {
    slack: SlackFake,
    codepipeline: CodePipelineFake,
    cloudwatch: CloudWatchFake,
    moto: Option<Moto>,
}

impl Fakes {
    async fn start(with_moto: bool) -> Fakes {
        let (slack, codepipeline, cloudwatch) = (
            SlackFake::start().await,
            CodePipelineFake::start().await,
            CloudWatchFake::start().await,
        );
        // Three healthy pipelines and OK alarms, as the watcher and the diagnostics expect them.
        let now = Utc::now();
        for env in ENVIRONMENTS {
            let exec = format!("{env}-ok-0001");
            let mut pipeline = PipelineModel::new(
                &format!("kiro-pipeline-{env}"),
                now - chrono::Duration::days(30),
            );
            for stage in ["Source", "Build", "TestEnv", "StagingEnv", "ProductionEnv"] {
                pipeline = pipeline.with_stage(
                    StageModel::new(stage)
                        .with_action(ActionModel::new(stage, "Succeeded", now))
                        .ran(&exec, "Succeeded"),
                );
            }
            let execution =
                ExecutionModel::new(&exec, "Succeeded", now - chrono::Duration::hours(2));
            codepipeline.set_pipeline(pipeline.with_execution(execution));
            for suffix in ["pipeline-failures", "deployment-duration", "test-coverage"] {
                cloudwatch.put_alarm(
                    AlarmModel::new(
                        &format!("kiro-pipeline-{env}-{suffix}"),
                        "KiroPipeline",
                        suffix,
                        now,
                    )
                    .in_state("OK", "healthy"),
                );
            }
        }
        let moto = if with_moto {
            let moto = Moto::start().await;
            // The build log group the diagnostics read (empty: "no matching lines").
            for env in ENVIRONMENTS {
                let group = format!("/aws/codebuild/kiro-pipeline-{env}-build");
                let _ = moto
                    .logs()
                    .create_log_group()
                    .log_group_name(&group)
                    .send()
                    .await;
            }
            Some(moto)
        } else {
            None
        };
        Fakes {
            slack,
            codepipeline,
            cloudwatch,
            moto,
        }
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            aws: self
                .moto
                .as_ref()
                .map_or(NOWHERE.to_string(), |m| m.endpoint().to_string()),
            codepipeline: self.codepipeline.endpoint().to_string(),
            cloudwatch: self.cloudwatch.endpoint().to_string(),
            slack_webhook: self.slack.webhook_url(),
        }
    }

    async fn queue(&self) -> String {
        let moto = self.moto.as_ref().expect("moto was started for SQS");
        moto.sqs()
            .create_queue()
            .queue_name("pipeline-responder-events")
            .send()
            .await
            .expect("moto creates the queue")
            .queue_url
            .expect("CreateQueue returns the URL")
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Latency of POST /api/v1/events → stored (202) and → first Slack post.
async fn http_latency(args: &Args) -> Result<(), String> {
    let rate = args.rate.unwrap_or(500.0);
    let seconds = args.seconds.unwrap_or(20.0);
    let connections = args.connections.unwrap_or(8);
    let total = (rate * seconds).round() as usize;
    header(
        &format!("http-latency: {total} failures at {rate}/s over {connections} connections"),
        args,
    );
    let fakes = Fakes::start(args.diagnostics).await;
    let settings = Settings {
        diagnostics: args.diagnostics,
        ..Settings::http()
    };
    let daemon = Daemon::start(args, &settings, &fakes.endpoints()).await?;
    let http = reqwest::Client::new();
    let maker = EventMaker::new();
    let url = format!("{}/api/v1/events", daemon.base);
    // Every second: responses so far and the daemon's CPU time, to see the cost per event
    // grow with the incidents already stored.
    let answered = Arc::new(AtomicUsize::new(0));
    let profile = {
        let (answered, pid) = (Arc::clone(&answered), daemon.pid);
        tokio::spawn(async move {
            let mut marks = vec![(0, cpu_secs(&format!("/proc/{pid}/stat")))];
            while marks.last().is_some_and(|m| m.0 < total) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let done = answered.load(Ordering::Relaxed);
                marks.push((done, cpu_secs(&format!("/proc/{pid}/stat"))));
            }
            marks
        })
    };
    let scraping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let scrapers: Vec<_> = (0..args.scrapers)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{}/metrics", daemon.base));
            let (scraping, scrapes) = (Arc::clone(&scraping), Arc::clone(&scrapes));
            tokio::spawn(async move {
                while scraping.load(Ordering::Relaxed) {
                    if let Ok(r) = http.get(&url).send().await {
                        let _ = r.bytes().await;
                        scrapes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let before = CpuMark::now(&daemon);
    let samples = drive(&url, rate, total, connections, None, &maker, &answered).await;
    let after = CpuMark::now(&daemon);
    scraping.store(false, Ordering::Relaxed);
    for scraper in scrapers {
        let _ = scraper.await;
    }
    if args.scrapers > 0 {
        println!(
            "  {} concurrent /metrics scrapers: {} scrapes during the run",
            args.scrapers,
            scrapes.load(Ordering::Relaxed)
        );
    }
    let marks = profile.await.unwrap_or_default();
    let stored = samples.iter().filter(|s| s.status == 202).count();
    let done = daemon
        .drain_slack(&http, stored as f64, Duration::from_secs(15))
        .await;
    let posts = wait_first_posts(&fakes.slack, stored, Duration::from_secs(5)).await;
    let to_stored = Dist::of(samples.iter().filter_map(|s| s.response.map(ms)));
    let to_post = Dist::of(samples.iter().filter_map(|s| {
        let at = posts.get(&s.short)?;
        Some((*at - s.due_wall).num_microseconds()? as f64 / 1000.0)
    }));
    let (d, t, o) = before.cores_until(&after);
    println!(
        "  responses 202: {stored}/{total}; first posts matched: {}; Slack posts sent (all kinds): {done}",
        to_post.0.len()
    );
    println!("  sent → 202 stored:      {}", to_stored.line());
    println!("  sent → first Slack post: {}", to_post.line());
    // Where the time goes as the store fills up: the first and the last tenth of the run.
    let tenth = (samples.len() / 10).max(1);
    for (name, part) in [
        ("first 10 %", &samples[..tenth.min(samples.len())]),
        ("last 10 %", &samples[samples.len().saturating_sub(tenth)..]),
    ] {
        let stored = Dist::of(part.iter().filter_map(|s| s.response.map(ms)));
        let post = Dist::of(part.iter().filter_map(|s| {
            Some((*posts.get(&s.short)? - s.due_wall).num_microseconds()? as f64 / 1000.0)
        }));
        println!(
            "    {name}: stored p50 {:.1} / p99 {:.1} ms · post p50 {:.1} / p99 {:.1} ms",
            stored.pct(50.0),
            stored.pct(99.0),
            post.pct(50.0),
            post.pct(99.0)
        );
    }
    println!("  daemon CPU per stored event, by incidents already stored (1 s intervals):");
    let step = (marks.len() / 8).max(1);
    for pair in marks.windows(2).step_by(step) {
        let ((n0, c0), (n1, c1)) = (pair[0], pair[1]);
        if n1 > n0 {
            println!(
                "    {n0:>6} → {n1:>6}: {:.2} ms CPU / event",
                (c1 - c0) * 1000.0 / (n1 - n0) as f64
            );
        }
    }
    let lag = Dist::of(samples.iter().map(|s| ms(s.lag)));
    println!(
        "  tool send lag: p99 {:.1} ms, max {:.1} ms",
        lag.pct(99.0),
        lag.max()
    );
    println!("  CPU while sending (cores): daemon {d:.2} · tool {t:.2} · other {o:.2}");
    println!(
        "  daemon RSS at the end: {:.1} MiB (peak {:.1} MiB)",
        mib(daemon.status_field_kib("VmRSS")),
        mib(daemon.status_field_kib("VmHWM"))
    );
    daemon.stop().await;
    Ok(())
}

/// One step of `http-max`: a fresh daemon, `rate` per second for `seconds`.
#[derive(Debug)]
struct Step {
    rate: f64,
    achieved: f64,
    errors: usize,
    unsent: usize,
    backlog: usize,
    stored: Dist,
    cpu: (f64, f64, f64),
    posts_done: f64,
    posts_drain: Duration,
    keeps_up: bool,
}

/// The highest rate whose stored responses keep up.
async fn http_max(args: &Args) -> Result<(), String> {
    let seconds = args.seconds.unwrap_or(10.0);
    let connections = args.connections.unwrap_or(32);
    header(
        &format!("http-max: steps {:?}/s, {seconds} s each, {connections} connections, a fresh daemon and store per step", args.steps),
        args,
    );
    let fakes = Fakes::start(args.diagnostics).await;
    let settings = Settings {
        diagnostics: args.diagnostics,
        ..Settings::http()
    };
    let http = reqwest::Client::new();
    let mut steps = Vec::new();
    for &rate in &args.steps {
        let daemon = Daemon::start(args, &settings, &fakes.endpoints()).await?;
        let total = (rate * seconds).round() as usize;
        let url = format!("{}/api/v1/events", daemon.base);
        let posted_before = daemon.slack_done(&http).await;
        // Halfway through the step, `top` sees the daemon and the tool side by side.
        let top = {
            let pids = format!("{},{}", daemon.pid, std::process::id());
            let half = Duration::from_secs_f64(seconds / 2.0);
            tokio::spawn(async move {
                tokio::time::sleep(half).await;
                top_lines(&pids).await
            })
        };
        let before = CpuMark::now(&daemon);
        let give_up = Some(Duration::from_secs(5));
        let answered = Arc::new(AtomicUsize::new(0));
        let maker = EventMaker::new();
        let samples = drive(&url, rate, total, connections, give_up, &maker, &answered).await;
        let after = CpuMark::now(&daemon);
        let ok: Vec<&Sample> = samples.iter().filter(|s| s.status == 202).collect();
        let window = Duration::from_secs_f64(seconds);
        // Answered within the step's own time: what the daemon absorbed at this rate.
        let in_window = ok
            .iter()
            .filter(|s| s.done_at.is_some_and(|d| d <= window))
            .count();
        let stored = Dist::of(ok.iter().filter_map(|s| s.response.map(ms)));
        let drain_start = Instant::now();
        let expected = posted_before + ok.len() as f64;
        let posts_done = daemon
            .drain_slack(&http, expected, Duration::from_secs(10))
            .await
            - posted_before;
        let step = Step {
            rate,
            achieved: in_window as f64 / seconds,
            errors: samples.len() - ok.len(),
            unsent: total - samples.len(),
            // Due but not answered within the step: the queue the daemon could not absorb.
            backlog: total - in_window,
            keeps_up: total == ok.len()
                && stored.pct(99.0) < 100.0
                && (total - in_window) as f64 <= rate * 0.1,
            stored,
            cpu: before.cores_until(&after),
            posts_done,
            posts_drain: drain_start.elapsed(),
        };
        println!(
            "  {:>6}/s: answered in window {:>6.0}/s · errors {} · not sent (> 5 s late) {} · backlog at end {} · stored {}",
            step.rate, step.achieved, step.errors, step.unsent, step.backlog, step.stored.line(),
        );
        println!(
            "           CPU (cores) daemon {:.2} · tool {:.2} · other {:.2} · Slack posts {} ({:.1} s after the step) · {}",
            step.cpu.0,
            step.cpu.1,
            step.cpu.2,
            step.posts_done,
            step.posts_drain.as_secs_f64(),
            if step.keeps_up { "keeps up" } else { "FALLS BEHIND" }
        );
        for line in top.await.unwrap_or_default() {
            println!("           top: {line}");
        }
        daemon.stop().await;
        let behind = !step.keeps_up;
        steps.push(step);
        if behind && steps.iter().filter(|s| !s.keeps_up).count() >= 2 {
            break;
        }
    }
    let best = steps
        .iter()
        .filter(|s| s.keeps_up)
        .map(|s| s.rate)
        .fold(0.0, f64::max);
    println!("  highest rate kept up: {best}/s");
    if let Some(first_miss) = steps.iter().find(|s| !s.keeps_up) {
        println!(
            "  saturates at {:.0}/s answered (step {}/s); daemon CPU {:.2} cores there",
            first_miss.achieved, first_miss.rate, first_miss.cpu.0
        );
    }
    Ok(())
}

/// SendMessage to moto's SQS → first Slack post.
async fn sqs_latency(args: &Args) -> Result<(), String> {
    let rate = args.rate.unwrap_or(5.0);
    let seconds = args.seconds.unwrap_or(20.0);
    let total = (rate * seconds).round() as usize;
    header(
        &format!("sqs-latency: {total} failures sent to SQS (moto) at {rate}/s"),
        args,
    );
    let fakes = Fakes::start(true).await;
    let queue = fakes.queue().await;
    let settings = Settings {
        queue_url: Some(queue.clone()),
        diagnostics: args.diagnostics,
        ..Settings::http()
    };
    let daemon = Daemon::start(args, &settings, &fakes.endpoints()).await?;
    let http = reqwest::Client::new();
    let sqs = fakes.moto.as_ref().expect("started with moto").sqs();
    let maker = EventMaker::new();
    // Let the consumer start its first long poll.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = tokio::time::Instant::now();
    let mut sent: Vec<(String, DateTime<Utc>, Duration)> = Vec::new();
    for i in 0..total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let (short, body) = maker.make(i);
        let at = Utc::now();
        let call = Instant::now();
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .map_err(|e| format!("SendMessage: {e}"))?;
        sent.push((short, at, call.elapsed()));
    }
    let done = daemon
        .drain_slack(&http, total as f64, Duration::from_secs(20))
        .await;
    let posts = wait_first_posts(&fakes.slack, total, Duration::from_secs(5)).await;
    let to_post = Dist::of(sent.iter().filter_map(|(short, at, _)| {
        Some((*posts.get(short)? - *at).num_microseconds()? as f64 / 1000.0)
    }));
    let send_call = Dist::of(sent.iter().map(|(_, _, d)| ms(*d)));
    println!(
        "  Slack posts sent (all kinds): {done}; first posts matched: {}/{total}",
        to_post.0.len()
    );
    println!("  SendMessage → first Slack post: {}", to_post.line());
    println!("  (of which moto's SendMessage call: {})", send_call.line());
    daemon.stop().await;
    Ok(())
}

/// RSS idle, after N incidents, after idling; idle CPU; binary size.
async fn footprint(args: &Args) -> Result<(), String> {
    let incidents = args.incidents;
    let rate = args.rate.unwrap_or(500.0);
    let idle = Duration::from_secs(args.idle_secs);
    header(
        &format!(
            "footprint: idle 10 s, {incidents} incidents over HTTP at {rate}/s, idle {} s",
            idle.as_secs()
        ),
        args,
    );
    // A production-like daemon: the SQS consumer long-polling moto (20 s), the watcher polling
    // the fakes at its default 300 s, the digest scheduled.
    let fakes = Fakes::start(true).await;
    let queue = fakes.queue().await;
    let settings = Settings {
        queue_url: Some(queue),
        watcher: true,
        diagnostics: args.diagnostics,
        ..Settings::http()
    };
    let daemon = Daemon::start(args, &settings, &fakes.endpoints()).await?;
    let http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_start = daemon.status_field_kib("VmRSS");
    let split_start = daemon.rss_split();
    let url = format!("{}/api/v1/events", daemon.base);
    let load_start = Instant::now();
    let samples = drive(
        &url,
        rate,
        incidents,
        8,
        None,
        &EventMaker::new(),
        &Arc::new(AtomicUsize::new(0)),
    )
    .await;
    let stored = samples.iter().filter(|s| s.status == 202).count();
    daemon
        .drain_slack(&http, stored as f64, Duration::from_secs(20))
        .await;
    let load_secs = load_start.elapsed().as_secs_f64();
    let rss_loaded = daemon.status_field_kib("VmRSS");
    let split_loaded = daemon.rss_split();
    let before = CpuMark::now(&daemon);
    tokio::time::sleep(idle).await;
    let after = CpuMark::now(&daemon);
    let rss_idle = daemon.status_field_kib("VmRSS");
    let split_idle = daemon.rss_split();
    let peak = daemon.status_field_kib("VmHWM");
    let cpu_idle = after.daemon - before.daemon;
    let size = std::fs::metadata(&args.daemon)
        .map(|m| m.len())
        .unwrap_or(0);
    let stripped = stripped_size(&args.daemon);
    println!(
        "  RSS after start + 10 s idle: {:.1} MiB ({split_start})",
        mib(rss_start)
    );
    println!(
        "  RSS after {stored} incidents ({load_secs:.0} s incl. posts): {:.1} MiB ({split_loaded}; peak {:.1} MiB)",
        mib(rss_loaded),
        mib(peak)
    );
    println!(
        "  RSS after {} s idle: {:.1} MiB ({split_idle})",
        idle.as_secs(),
        mib(rss_idle)
    );
    println!(
        "  CPU time during {} s idle: {:.2} s ({:.3} % of a core)",
        idle.as_secs(),
        cpu_idle,
        cpu_idle / idle.as_secs_f64() * 100.0
    );
    println!("  binary: {size} bytes as built; {stripped} bytes after strip --strip-all");
    daemon.stop().await;
    Ok(())
}

/// Size of a `strip --strip-all` copy of `binary` (0 if strip is missing).
fn stripped_size(binary: &Path) -> u64 {
    let copy = std::env::temp_dir().join(format!(
        "pipeline-responder-stripped-{}",
        std::process::id()
    ));
    if std::fs::copy(binary, &copy).is_err() {
        return 0;
    }
    let ok = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    let size = if ok {
        std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    let _ = std::fs::remove_file(&copy);
    size
}

/// N failures over T seconds with the product's storm control.
async fn storm(args: &Args) -> Result<(), String> {
    let failures = args.failures;
    let seconds = args.seconds.unwrap_or(60.0);
    header(
        &format!("storm: {failures} failures over {seconds} s, product storm settings (5 posts / 60 s / channel, then a summary)"),
        args,
    );
    let fakes = Fakes::start(args.diagnostics).await;
    let settings = Settings {
        storm_max: None,
        first_post_wait_secs: None,
        diagnostics: args.diagnostics,
        ..Settings::http()
    };
    let daemon = Daemon::start(args, &settings, &fakes.endpoints()).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/events", daemon.base);
    let rate = failures as f64 / seconds;
    let start = Instant::now();
    // The sender runs in the background; this task watches the store's counter meanwhile.
    let sender = {
        let url = url.clone();
        tokio::spawn(async move {
            let answered = Arc::new(AtomicUsize::new(0));
            drive(&url, rate, failures, 4, None, &EventMaker::new(), &answered).await
        })
    };
    let opened = "pipeline_responder_incidents_opened_total";
    let mut recorded_at = None;
    while recorded_at.is_none() && start.elapsed() < Duration::from_secs_f64(seconds + 120.0) {
        if daemon.metric(&http, opened, &[]).await >= failures as f64 {
            recorded_at = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let samples = sender.await.map_err(|e| e.to_string())?;
    let stored = samples.iter().filter(|s| s.status == 202).count();
    // Posts go on after the last failure: the summary of the window, then the next window's.
    daemon
        .drain_slack(&http, stored as f64, Duration::from_secs(150))
        .await;
    let accepted = fakes.slack.accepted();
    let summaries: Vec<&SlackPost> = accepted
        .iter()
        .filter(|p| p.text().is_some_and(|t| t.contains("Storm control")))
        .collect();
    let n = "pipeline_responder_notifications_total";
    let sent = daemon
        .metric(&http, n, &["slack", "outcome=\"sent\""])
        .await;
    let summarized = daemon
        .metric(&http, n, &["slack", "outcome=\"summarized\""])
        .await;
    let last_post = accepted.iter().map(|p| p.received_at).max().map(|t| {
        (t - samples.first().map_or(t, |s| s.due_wall)).num_milliseconds() as f64 / 1000.0
    });
    let to_stored = Dist::of(samples.iter().filter_map(|s| s.response.map(ms)));
    println!(
        "  responses 202: {stored}/{failures}; sent → 202 stored: {}",
        to_stored.line()
    );
    println!(
        "  all {failures} incidents recorded (incidents_opened_total) after {:.2} s from the first failure",
        recorded_at.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    println!(
        "  Slack posts received: {} ({} individual, {} storm summaries); outbox: {sent} sent, {summarized} grouped into summaries",
        accepted.len(),
        accepted.len() - summaries.len(),
        summaries.len()
    );
    println!(
        "  last post {:.1} s after the first failure",
        last_post.unwrap_or(f64::NAN)
    );
    daemon.stop().await;
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match args.scenario {
            Scenario::HttpLatency => http_latency(&args).await,
            Scenario::HttpMax => http_max(&args).await,
            Scenario::SqsLatency => sqs_latency(&args).await,
            Scenario::Footprint => footprint(&args).await,
            Scenario::Storm => storm(&args).await,
        }
    });
    if let Err(message) = result {
        eprintln!("load: {message}");
        std::process::exit(1);
    }
}
