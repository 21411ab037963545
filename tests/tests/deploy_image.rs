//! The container image (issue 6 part 1). Docker Hub is unreachable here, so the image itself is
//! not built; what it promises is checked instead: the Dockerfile's shape, and the binary
//! starting as the image runs it — as uid 10001, with only the shipped config and environment
//! variables, from a directory it cannot write — answering /healthz, passing its own `probe`
//! health check, and exiting cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

use crate::support::{create_queues, daemon_binary, eventually, get, temp_dir};
use pipeline_responder_e2e::{Moto, SlackFake};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The instructions of the Dockerfile's stages: (stage index, instruction, arguments).
fn dockerfile() -> Vec<(usize, String, String)> {
    let text = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        joined.push(std::mem::take(&mut current));
    }
    let mut stage = 0;
    let mut out = Vec::new();
    for line in joined {
        let (instruction, args) = line.split_once(' ').unwrap_or((&line, ""));
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "FROM" {
            stage += 1;
        }
        out.push((stage, instruction, args.trim().to_string()));
    }
    out
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_non_root_in_exec_form_with_a_health_check() {
    let lines = dockerfile();
    let stages = lines.iter().filter(|(_, i, _)| i == "FROM").count();
    assert_eq!(stages, 2, "a build stage and a small runtime stage");
    let runtime: Vec<_> = lines.iter().filter(|(s, _, _)| *s == 2).collect();
    let get = |instruction: &str| {
        runtime
            .iter()
            .filter(|(_, i, _)| i == instruction)
            .map(|(_, _, a)| a.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        get("FROM")[0].contains("distroless"),
        "runtime stage: no shell, no package manager"
    );
    assert!(get("RUN").is_empty(), "nothing runs in the runtime stage");
    let user = get("USER");
    let uid: u32 = user[0].split(':').next().unwrap().parse().unwrap();
    assert!(
        uid >= 1000,
        "USER must be a numeric non-root uid, got {user:?}"
    );
    let entrypoint: Vec<String> = serde_json::from_str(&get("ENTRYPOINT")[0])
        .expect("ENTRYPOINT must be exec form (a JSON array) so SIGTERM reaches the daemon");
    assert_eq!(entrypoint, ["/usr/local/bin/pipeline-responder"]);
    let cmd: Vec<String> = serde_json::from_str(&get("CMD")[0]).unwrap();
    assert_eq!(cmd, ["run"]);
    let health = &get("HEALTHCHECK")[0];
    let probe: Vec<String> =
        serde_json::from_str(health.split_once("CMD").unwrap().1.trim()).unwrap();
    assert_eq!(
        probe,
        [
            "/usr/local/bin/pipeline-responder",
            "probe",
            "http://127.0.0.1:9090/healthz"
        ]
    );
    assert_eq!(get("EXPOSE"), ["9090"]);
    let config = get("ENV")
        .iter()
        .find_map(|e| {
            e.strip_prefix("PIPELINE_RESPONDER_CONFIG=")
                .map(String::from)
        })
        .expect("ENV PIPELINE_RESPONDER_CONFIG");
    assert!(
        get("COPY")
            .iter()
            .any(|c| c == &format!("config/pipeline-responder.toml {config}")),
        "the shipped config is copied where PIPELINE_RESPONDER_CONFIG points"
    );
    let build = lines
        .iter()
        .find(|(s, i, _)| *s == 1 && i == "RUN")
        .unwrap();
    assert!(build.2.contains("--locked") && build.2.contains("--release"));
}

/// The shipped config and the binary as the image lays them out, readable by anyone.
fn image_root(name: &str) -> std::path::PathBuf {
    let root = temp_dir(name);
    let bin = root.join("usr/local/bin");
    let etc = root.join("etc/pipeline-responder");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(daemon_binary(), bin.join("pipeline-responder")).unwrap();
    std::fs::copy(
        format!("{ROOT}/config/pipeline-responder.toml"),
        etc.join("pipeline-responder.toml"),
    )
    .unwrap();
    for dir in [
        &root,
        &root.join("usr"),
        &root.join("usr/local"),
        &bin,
        &root.join("etc"),
        &etc,
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        bin.join("pipeline-responder"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_as_uid_10001_with_only_its_config_answers_healthz_and_stops_on_sigterm() {
    if !nix_is_root() {
        eprintln!("skipped: switching to uid 10001 needs root (CI runs as root)");
        return;
    }
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "events-image", 30).await;
    let root = image_root("image");
    let binary = root.join("usr/local/bin/pipeline-responder");
    let config = root.join("etc/pipeline-responder/pipeline-responder.toml");
    let port = pipeline_responder_e2e::free_port();
    // The state table, created by the binary's own command (as an operator would, once).
    let env = |command: &mut std::process::Command| {
        command
            .env_clear()
            .env("PIPELINE_RESPONDER_CONFIG", &config)
            .env("PIPELINE_RESPONDER_STORE", "dynamodb")
            .env("PIPELINE_RESPONDER_TABLE", "responder-image")
            .env("PIPELINE_RESPONDER_QUEUE_URL", &queues.url)
            .env("PIPELINE_RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "PIPELINE_RESPONDER_API_TOKEN",
                "image-api-token-0123456789abcdef0123",
            )
            .env("SLACK_WEBHOOK_URL", slack.webhook_url())
            .env("AWS_ACCOUNT_ID", "123456789012")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .current_dir("/");
    };
    let as_user = |args: &[&str]| {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=10001", "--regid=10001", "--clear-groups", "--"])
            .arg(&binary)
            .args(args);
        env(&mut command);
        command
    };
    let created = as_user(&["create-table"]).output().unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let log = root.join("daemon.log");
    let mut daemon = tokio::process::Command::from(as_user(&["run"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(20), || async {
            reqwest::get(format!("{base}/healthz")).await.is_ok()
        })
        .await,
        "{}",
        read_log()
    );
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(
        get(&format!("{base}/readyz")).await.0,
        200,
        "{}",
        read_log()
    );
    // The image's HEALTHCHECK command, as the container runtime would run it.
    let healthy = as_user(&["probe", &format!("{base}/healthz")])
        .output()
        .unwrap();
    assert!(healthy.status.success());
    let unhealthy = as_user(&["probe", "http://127.0.0.1:9/healthz", "--timeout-secs", "1"])
        .output()
        .unwrap();
    assert!(
        !unhealthy.status.success(),
        "a dead endpoint fails the probe"
    );
    // It really runs as 10001, and it wrote nothing where it started.
    let pid = daemon.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    // setpriv execs the daemon in place: same pid.
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "10001"),
        "{uid_line}"
    );
    let started = tokio::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{}", read_log());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "inside ECS's stopTimeout"
    );
    let log = read_log();
    assert!(
        !log.contains("image-api-token-0123456789abcdef0123")
            && !log.contains(&slack.webhook_url())
    );
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "JSON logs off a terminal"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
