//! moto in server mode: the local AWS emulator for SQS, SNS, DynamoDB and CloudWatch Logs.

use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

/// Where scripts/setup.sh installs moto when `PIPELINE_RESPONDER_VENV` is unset.
const DEFAULT_VENV: &str = "/var/tmp/pipeline-responder-venv";

/// moto_server with isolated DynamoDB transactions (see the script's docstring).
const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto_server.py");

/// How long to wait between readiness probes. moto answers in about a second on a 2-core
/// machine; a cold Python import under load can take several.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Probes before giving up (30 s in all), so a broken install fails the test instead of hanging.
const MAX_PROBES: u32 = 300;

/// Why moto could not be started.
#[derive(Debug)]
pub enum MotoError {
    /// The venv has no `bin/moto_server`.
    NotInstalled { binary: PathBuf },
    /// Spawning the process or creating its log file failed.
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    /// The process ended before it answered HTTP.
    Exited { status: ExitStatus, log: PathBuf },
    /// The process kept running but never answered HTTP.
    NotReady { endpoint: String, log: PathBuf },
}

impl fmt::Display for MotoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MotoError::NotInstalled { binary } => write!(
                f,
                "moto: {} not found; run scripts/setup.sh (it installs moto into \
                 $PIPELINE_RESPONDER_VENV, default {DEFAULT_VENV})",
                binary.display()
            ),
            MotoError::Spawn { binary, source } => write!(
                f,
                "moto: cannot start {}: {source}; run scripts/setup.sh to reinstall it",
                binary.display()
            ),
            MotoError::Exited { status, log } => write!(
                f,
                "moto: moto_server exited with {status} before answering; see {}",
                log.display()
            ),
            MotoError::NotReady { endpoint, log } => write!(
                f,
                "moto: no HTTP answer from {endpoint} after {}s; see {}",
                (PROBE_INTERVAL * MAX_PROBES).as_secs(),
                log.display()
            ),
        }
    }
}

impl std::error::Error for MotoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MotoError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A running moto server, private to one test; the process is killed when this drops.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    endpoint: String,
    /// Configuration pointing every SDK client at `endpoint`.
    config: aws_config::SdkConfig,
    /// moto's request log; removed on drop, kept when startup fails so it can be read.
    log: PathBuf,
    port: u16,
    /// Held for `kill_on_drop`: dropping `Moto` kills the server.
    child: Child,
}

impl Moto {
    /// Starts moto or panics with what to do (usually: run scripts/setup.sh).
    pub async fn start() -> Moto {
        match Moto::try_start().await {
            Ok(moto) => moto,
            Err(error) => panic!("{error}"),
        }
    }

    /// Starts moto on a free port and waits until it answers HTTP.
    pub async fn try_start() -> Result<Moto, MotoError> {
        let port = crate::free_port();
        let (child, log) = spawn(port).await?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let config = crate::sdk_config(&endpoint).await;
        Ok(Moto {
            endpoint,
            port,
            config,
            log,
            child,
        })
    }

    /// Stops the server (SIGKILL), as if the AWS endpoint went away.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Starts a fresh server on the same port (empty: queues and tables are gone, as after an
    /// outage that lost them; the test re-creates what it needs).
    pub async fn restart(&mut self) {
        self.stop().await;
        match spawn(self.port).await {
            Ok((child, log)) => {
                self.child = child;
                self.log = log;
            }
            Err(error) => panic!("{error}"),
        }
    }

    /// `http://127.0.0.1:<port>`, for configs that take an endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for this server: us-east-1, static test credentials, its endpoint.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.config.clone()
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Best effort: a leftover log in the temp dir is harmless.
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts the launcher on `port` and waits until it answers HTTP.
async fn spawn(port: u16) -> Result<(Child, PathBuf), MotoError> {
    let venv = std::env::var_os("PIPELINE_RESPONDER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VENV));
    // Our launcher (scripts/moto_server.py) runs moto with DynamoDB transactions isolated,
    // as DynamoDB's are; it needs the venv's Python with moto installed.
    if !venv.join("bin").join("moto_server").is_file() {
        return Err(MotoError::NotInstalled {
            binary: venv.join("bin").join("moto_server"),
        });
    }
    let binary = venv.join("bin").join("python");
    // moto logs every request to stderr; a file keeps test output clean and a pipe from
    // filling up, and is there to read when startup fails.
    let log = std::env::temp_dir().join(format!("pipeline-responder-moto-{port}.log"));
    let spawn_error = |source| MotoError::Spawn {
        binary: binary.clone(),
        source,
    };
    let log_file = std::fs::File::create(&log).map_err(spawn_error)?;
    let mut child = Command::new(&binary)
        .arg(LAUNCHER)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(spawn_error)?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut child, &endpoint, &log).await?;
    Ok((child, log))
}

/// Probes `endpoint` until any HTTP answer arrives, the process exits, or the probes run out.
async fn wait_until_ready(
    child: &mut Child,
    endpoint: &str,
    log: &std::path::Path,
) -> Result<(), MotoError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a plain reqwest client always builds");
    for _ in 0..MAX_PROBES {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(MotoError::Exited {
                status,
                log: log.to_owned(),
            });
        }
        if client.get(endpoint).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    Err(MotoError::NotReady {
        endpoint: endpoint.to_owned(),
        log: log.to_owned(),
    })
}
