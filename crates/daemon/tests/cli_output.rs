//! What the CLI prints is safe for the operator's terminal: the incidents commands shown a
//! daemon (here a stand-in on a local port) whose answers carry terminal control sequences
//! from a build log (colour codes, a title-setting OSC, a screen clear, a bidi override, a bell)
//! print none of them, whatever the command and output mode.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pipeline-responder");
/// Control sequences a hostile build log can carry.
const HOSTILE: &str = "\u{1b}[31mred\u{1b}[0m \u{1b}]0;owned\u{7} \u{1b}[2J\u{1b}[H \u{202e}txt.exe \u{7}\u{8}\u{9b}31m done";

/// Answers every request with the canned body for its path, until the test ends.
fn hostile_api() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line.trim().is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let incident = serde_json::json!({
                "key": format!("pipeline_execution_failure/app-{HOSTILE}"),
                "severity": "high", "status": "open", "environment": "production",
                "incident_type": "pipeline_execution_failure",
                "title": format!("Build failed: {HOSTILE}"),
            });
            let (kind, answer) = if path.ends_with("/report") {
                (
                    "text/markdown",
                    format!("# Report\n\n- Root cause: {HOSTILE}\n"),
                )
            } else if path.starts_with("/api/v1/incidents?") {
                (
                    "application/json",
                    serde_json::json!({"incidents": [incident]}).to_string(),
                )
            } else {
                let timeline = [
                    serde_json::json!({"at": "2026-12-03T10:00:00Z", "kind": "diagnosis", "text": HOSTILE}),
                ];
                (
                    "application/json",
                    serde_json::json!({"incident": incident, "timeline": timeline}).to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn incidents_commands_print_no_terminal_control_sequences() {
    let api = hostile_api();
    let config = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-output.toml");
    std::fs::write(
        &config,
        "[aws]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
         [http]\napi_token = \"cli-output-token-0123456789abcdef0123\"\n\
         [sources.sqs]\nenabled = false\n[[environments]]\nname = \"production\"\n",
    )
    .unwrap();
    let runs: [&[&str]; 5] = [
        &["list"],
        &["show", "k"],
        &["report", "k"],
        &["--json", "report", "k"],
        &["--json", "show", "k"],
    ];
    for args in runs {
        let output = Command::new(BIN)
            .args(["incidents", "--config"])
            .arg(&config)
            .args(["--api", &api])
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let bad: Vec<char> = stdout
            .chars()
            .filter(|c| (c.is_control() && *c != '\n' && *c != '\t') || *c == '\u{202e}')
            .collect();
        assert!(
            bad.is_empty(),
            "{args:?} printed control characters {bad:?}: {stdout:?}"
        );
        assert!(
            stdout.contains("red") && stdout.contains("done"),
            "{args:?}: the text around them stays: {stdout:?}"
        );
    }
}
