//! `explain-log FAILED.log [--previous PASSED.log]`: the daemon's build-log reading, offline.
//! The same code the diagnosis runs: class, summary, matched cause, failing command, and the
//! excerpt with line numbers. Users tune `[[diagnosis.causes]]` with it; the corpus benchmark
//! (`scripts/diagnosis_bench.py`) runs it.

use crate::cli::EXIT_BAD_INPUT;
use pipeline_responder_core::config::{Config, Diagnostic, LogSearch};
use pipeline_responder_core::incident::IncidentType;
use pipeline_responder_core::logscan::{self, Comparison, LogFindings, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ExplainLogArgs {
    /// The failed build's log (`-` reads standard input): CodeBuild, GitHub Actions, GitLab,
    /// Jenkins, Travis or plain tool output.
    pub log: PathBuf,
    /// The last green build's log of the same action: lines both logs have are shown last.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The build-log search the failure policy runs (its patterns and line budget), or the default.
pub fn build_log_search(config: &Config) -> LogSearch {
    config
        .policy(IncidentType::PipelineExecutionFailure)
        .diagnostics
        .iter()
        .find_map(|d| match d {
            Diagnostic::BuildLog(s) => Some(s.clone()),
            _ => None,
        })
        .or_else(
            || match pipeline_responder_core::config::defaults::diagnostic("build_log") {
                Some(Diagnostic::BuildLog(s)) => Some(s),
                _ => None,
            },
        )
        .expect("build_log has defaults")
}

fn read(path: &Path) -> Result<String, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("standard input: {e}"))?;
        buf
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn run(config: &Config, args: &ExplainLogArgs) -> ExitCode {
    let failed = match read(&args.log) {
        Ok(text) => logscan::Log::from_text(&text),
        Err(e) => {
            errln!("explain-log: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let previous = match args.previous.as_deref().map(read) {
        None => None,
        Some(Ok(text)) => Some(logscan::Log::from_text(&text)),
        Some(Err(e)) => {
            errln!("explain-log: --previous {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let search = build_log_search(config);
    let findings = logscan::analyse(
        &failed,
        previous.as_ref(),
        &Options::from_config(config, &search),
    );
    if args.json {
        match serde_json::to_string_pretty(&findings) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                errln!("explain-log: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out!("{}", text(&findings));
    }
    ExitCode::SUCCESS
}

/// The reading as a person reads it. Control characters are already gone from the lines.
fn text(f: &LogFindings) -> String {
    let mut out = String::new();
    out.push_str(&format!("class:    {}\n", f.class.as_str()));
    out.push_str(&format!("summary:  {}\n", f.summary));
    if let Some(cause) = &f.cause {
        out.push_str(&format!("cause:    {} (line {})", cause.name, cause.line));
        if let Some(url) = &cause.runbook_url {
            out.push_str(&format!(" — {url}"));
        }
        out.push('\n');
    }
    if let Some(command) = &f.failing_command {
        let status = f
            .exit_status
            .map(|s| format!(" (exit status {s})"))
            .unwrap_or_default();
        out.push_str(&format!("command:  {command}{status}\n"));
    }
    if let Some(ci) = f.ci {
        out.push_str(&format!(
            "ci:       {}\n",
            serde_json::to_value(ci)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ));
    }
    if let Comparison::Compared {
        new_lines,
        shared_lines,
    } = f.comparison
    {
        out.push_str(&format!(
            "compared: {new_lines} line(s) new since the green build, {shared_lines} shared\n"
        ));
    }
    out.push_str(&format!(
        "excerpt ({} lines, most telling first):\n",
        f.excerpt.len()
    ));
    let width = f
        .excerpt
        .iter()
        .map(|l| l.line.to_string().len())
        .max()
        .unwrap_or(1);
    for line in &f.excerpt {
        out.push_str(&format!("{:>width$} | {}\n", line.line, line.text));
    }
    out
}
