//! Where a CI system says which command failed. Each CI frames it its own way: CodeBuild's
//! `Running command X` … `Command did not exit successfully X exit status N`, GitHub Actions'
//! `##[group]Run X` … `##[error]Process completed with exit code N.`, GitLab's `$ X` … `ERROR: Job
//! failed: exit code N`, Jenkins' `+ X` … `ERROR: script returned exit code N`, Travis' `$ X` …
//! `The command "X" exited with N.`. The failing command's output is the region the excerpt is
//! taken from; without any framing (a pasted tool output) the whole log is.

use super::lines::Log;
use super::re;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The CI system whose framing was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ci {
    Codebuild,
    GithubActions,
    Gitlab,
    Jenkins,
    Travis,
}

/// What the framing says about the failure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Framing {
    pub ci: Option<Ci>,
    /// The command that failed, when the CI names it.
    pub command: Option<String>,
    /// Its exit status.
    pub exit_status: Option<i32>,
    /// Index of the first line of the failing command's output.
    pub start: usize,
    /// Index one past its last line (the CI's "command failed" line, or the end of the log).
    pub end: usize,
    /// A failure marker was found (otherwise the region is the whole log).
    pub found: bool,
    /// The CI stopped the build for taking too long (CodeBuild `TIMED_OUT`, GitLab and GitHub
    /// time limits, Travis' no-output limit).
    pub timed_out: bool,
    /// Index of the line that says so.
    pub timeout_line: Option<usize>,
}

impl Framing {
    /// The line is CI framing, not tool output (never part of an excerpt).
    pub fn is_framing(text: &str) -> bool {
        static FRAMING: OnceLock<Regex> = OnceLock::new();
        re(
            &FRAMING,
            r"^(?:\[Container\] |##\[(?:group|endgroup|section|command)\]|travis_(?:fold|time):|section_(?:start|end):|\[Pipeline\] |Done\. Your build exited with|Finished: (?:FAILURE|SUCCESS)|Cleaning up (?:project directory|file based variables)|\[WS-CLEANUP\])",
        )
        .is_match(text)
    }
}

/// A command starting, per CI: `(ci, command)`.
fn command_start(text: &str) -> Option<(Ci, String)> {
    static CODEBUILD: OnceLock<Regex> = OnceLock::new();
    static GITHUB: OnceLock<Regex> = OnceLock::new();
    static SHELL: OnceLock<Regex> = OnceLock::new();
    static JENKINS: OnceLock<Regex> = OnceLock::new();
    let codebuild = re(
        &CODEBUILD,
        r"^\[Container\] [\d/]+ [\d:.]+ Running command (.+)$",
    );
    let github = re(&GITHUB, r"^##\[group\]Run (.+)$");
    let shell = re(&SHELL, r"^\$ (.+)$");
    let jenkins = re(&JENKINS, r"^\+ (.+)$");
    if let Some(c) = codebuild.captures(text) {
        return Some((Ci::Codebuild, c[1].trim().to_string()));
    }
    if let Some(c) = github.captures(text) {
        return Some((Ci::GithubActions, c[1].trim().to_string()));
    }
    if let Some(c) = shell.captures(text) {
        // Travis and GitLab both echo `$ command`; the end marker tells them apart.
        return Some((Ci::Travis, c[1].trim().to_string()));
    }
    if let Some(c) = jenkins.captures(text) {
        return Some((Ci::Jenkins, c[1].trim().to_string()));
    }
    None
}

/// A command failing: `(ci, command if named, exit status)`.
fn command_failed(text: &str) -> Option<(Ci, Option<String>, Option<i32>)> {
    static CODEBUILD: OnceLock<Regex> = OnceLock::new();
    static GITHUB: OnceLock<Regex> = OnceLock::new();
    static GITLAB: OnceLock<Regex> = OnceLock::new();
    static JENKINS: OnceLock<Regex> = OnceLock::new();
    static TRAVIS: OnceLock<Regex> = OnceLock::new();
    let codebuild = re(
        &CODEBUILD,
        r"Command did not exit successfully (.+) exit status (\d+)\s*$",
    );
    let github = re(
        &GITHUB,
        r"^(?:##\[error\]|Error: )Process completed with exit code (\d+)\.",
    );
    let gitlab = re(&GITLAB, r"^ERROR: Job failed: (?:exit code (\d+)|.*)");
    let jenkins = re(
        &JENKINS,
        r"^(?:ERROR: script returned exit code (\d+)|Build step '.+' marked build as failure)",
    );
    let travis = re(
        &TRAVIS,
        r#"^The command "(.+)" (?:failed and )?exited with (\d+)"#,
    );
    let status = |m: Option<regex::Match>| m.and_then(|m| m.as_str().parse().ok());
    if let Some(c) = codebuild.captures(text) {
        return Some((
            Ci::Codebuild,
            Some(c[1].trim().to_string()),
            status(c.get(2)),
        ));
    }
    if let Some(c) = travis.captures(text) {
        let code = status(c.get(2));
        if code == Some(0) {
            return None;
        }
        return Some((Ci::Travis, Some(c[1].to_string()), code));
    }
    if let Some(c) = github.captures(text) {
        return Some((Ci::GithubActions, None, status(c.get(1))));
    }
    if let Some(c) = gitlab.captures(text) {
        return Some((Ci::Gitlab, None, status(c.get(1))));
    }
    if let Some(c) = jenkins.captures(text) {
        return Some((Ci::Jenkins, None, status(c.get(1))));
    }
    None
}

fn timeout_marker(text: &str) -> bool {
    static TIMEOUT: OnceLock<Regex> = OnceLock::new();
    re(
        &TIMEOUT,
        r"(?i)(?:Phase complete: \w+ State: TIMED_OUT|^Build timed out|BUILD_TIMED_OUT|has exceeded the maximum execution time|ERROR: Job failed: execution took longer than|No output has been received in the last \S+|The job exceeded the maximum time limit for jobs|Build timed out \(after \d+ minutes\)|The job (?:running on runner .* )?has exceeded)",
    )
    .is_match(text)
}

/// Finds the failing command and its output. The first failure wins: what fails after it
/// (post-build steps, `after_failure` scripts) is a consequence.
pub fn frame(log: &Log) -> Framing {
    let mut framing = Framing {
        end: log.len(),
        ..Framing::default()
    };
    let mut last_start: Option<(usize, Ci, String)> = None;
    for (i, line) in log.lines.iter().enumerate() {
        let text = line.text.as_str();
        if timeout_marker(text) && !framing.timed_out {
            framing.timed_out = true;
            framing.timeout_line = Some(i);
        }
        if framing.found {
            continue;
        }
        if let Some((ci, command)) = command_start(text) {
            // Jenkins `+` traces also appear inside Travis/GitLab scripts run with `set -x`;
            // keep the outer command unless no other framing is known.
            let outer = matches!(&last_start, Some((_, c, _)) if *c != Ci::Jenkins);
            if !(ci == Ci::Jenkins && outer) {
                last_start = Some((i, ci, command));
            }
            continue;
        }
        if let Some((ci, command, status)) = command_failed(text) {
            framing.found = true;
            framing.ci = Some(ci);
            framing.exit_status = status;
            framing.end = i;
            let started = last_start.as_ref().filter(|(_, start_ci, start_cmd)| {
                command.as_ref().is_none_or(|c| c == start_cmd) || *start_ci == ci
            });
            match (started, command) {
                (Some((at, start_ci, start_cmd)), command) => {
                    framing.start = at + 1;
                    framing.command = command.or_else(|| Some(start_cmd.clone()));
                    if ci == Ci::Gitlab && *start_ci == Ci::Travis {
                        framing.ci = Some(Ci::Gitlab);
                    }
                }
                (None, command) => framing.command = command,
            }
        }
    }
    if !framing.found {
        if let Some(at) = framing.timeout_line {
            framing.end = at;
            if let Some((start, ci, command)) = last_start.filter(|(s, _, _)| *s < at) {
                framing.start = start + 1;
                framing.ci = Some(ci);
                framing.command = Some(command);
            }
        }
    }
    if framing.ci.is_none() {
        framing.ci = log.lines.iter().find_map(|l| {
            if l.text.starts_with("[Container] ") {
                Some(Ci::Codebuild)
            } else if l.text.starts_with("##[") {
                Some(Ci::GithubActions)
            } else if l.text.starts_with("travis_") {
                Some(Ci::Travis)
            } else if l.text.starts_with("section_start:") {
                Some(Ci::Gitlab)
            } else if l.text.starts_with("[Pipeline] ") || l.text.starts_with("Started by ") {
                Some(Ci::Jenkins)
            } else {
                None
            }
        });
    }
    framing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(text: &str) -> Framing {
        frame(&Log::from_text(text))
    }

    #[test]
    fn codebuild_names_the_failing_command_and_its_output() {
        let f = framing(
            "[Container] 2024/05/14 10:02:09.871112 Running command npm ci\nadded 1 package\n\
             [Container] 2024/05/14 10:02:40.201901 Running command npm test\nFAIL a.test.js\n\
             [Container] 2024/05/14 10:03:01.654321 Command did not exit successfully npm test exit status 1\n\
             [Container] 2024/05/14 10:03:01.700000 Phase complete: BUILD State: FAILED\n",
        );
        assert_eq!(f.ci, Some(Ci::Codebuild));
        assert_eq!(f.command.as_deref(), Some("npm test"));
        assert_eq!(f.exit_status, Some(1));
        assert_eq!((f.start, f.end), (3, 4));
    }

    #[test]
    fn travis_github_gitlab_and_jenkins_frame_their_own_way() {
        let t =
            framing("$ npm ci\nok\n$ npm test\nboom\nThe command \"npm test\" exited with 1.\n");
        assert_eq!(
            (t.ci, t.command.as_deref(), t.start, t.end),
            (Some(Ci::Travis), Some("npm test"), 3, 4)
        );
        let g = framing("##[group]Run npm test\n##[endgroup]\nboom\n##[error]Process completed with exit code 2.\n");
        assert_eq!(
            (g.ci, g.command.as_deref(), g.exit_status),
            (Some(Ci::GithubActions), Some("npm test"), Some(2))
        );
        let l = framing("$ make\nboom\nERROR: Job failed: exit code 2\n");
        assert_eq!(
            (l.ci, l.command.as_deref()),
            (Some(Ci::Gitlab), Some("make"))
        );
        let j = framing("[Pipeline] sh\n+ mvn test\nboom\nERROR: script returned exit code 1\nFinished: FAILURE\n");
        assert_eq!(
            (j.ci, j.command.as_deref(), j.start, j.end),
            (Some(Ci::Jenkins), Some("mvn test"), 2, 3)
        );
        let none = framing("error: boom\n");
        assert!(!none.found);
        assert_eq!((none.start, none.end), (0, 1));
    }

    #[test]
    fn a_codebuild_timeout_is_seen() {
        let f = framing("[Container] 2024/05/14 10:02:40.2 Running command npm test\nrunning\n[Container] 2024/05/14 11:02:40.2 Phase complete: BUILD State: TIMED_OUT\n");
        assert!(f.timed_out);
        assert_eq!(f.command.as_deref(), Some("npm test"));
        assert_eq!(f.end, 2);
    }
}
