//! Credentials out of every line that leaves the log reader.

use super::re;
use regex::Regex;
use std::sync::OnceLock;

/// Removes credentials from a log line (AWS keys, Slack/GitHub tokens, bearer tokens,
/// `password=`/`secret=`/`token=` values, private-key blocks).
pub fn scrub(line: &str) -> String {
    static SECRETS: OnceLock<Regex> = OnceLock::new();
    static ASSIGNED: OnceLock<Regex> = OnceLock::new();
    let secrets = re(
        &SECRETS,
        r"(?x)
          (AKIA|ASIA)[0-9A-Z]{16}
        | xox[abprs]-[0-9A-Za-z-]{10,}
        | (ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{20,}
        | github_pat_[0-9A-Za-z_]{20,}
        | hooks\.slack\.com/services/[0-9A-Za-z/]+
        | -----BEGIN[ A-Z]*PRIVATE\ KEY-----
        | (?i:bearer)\s+[0-9A-Za-z._~+/=-]{8,}
        ",
    );
    let assigned = re(
        &ASSIGNED,
        r#"(?i)((?:aws_secret_access_key|secret[_-]?access[_-]?key|password|passwd|secret|token|api[_-]?key)["']?\s*[:=]\s*["']?)[^\s"',;]+"#,
    );
    let line = secrets.replace_all(line, "[REDACTED]");
    assigned.replace_all(&line, "${1}[REDACTED]").into_owned()
}
