//! What a credential looks like: the token formats services document (AWS, GitHub, Slack, npm,
//! PyPI, GitLab, Stripe, Google, SendGrid, OpenAI-style `sk-`), JWTs, private key blocks, and the
//! ways a build prints a secret it was given (`NAME=value`, `"name": "value"`, `--password x`,
//! `Authorization:` headers, `user:pass@host`, `mysql -p<pass>`, presigned URL signatures).

use super::REDACTED;
use regex::{Regex, RegexSet};
use std::borrow::Cow;
use std::sync::OnceLock;

/// Names whose value is a secret when assigned (`NAME=value`, `name: value`, `"name": "value"`).
const SECRET_NAMES: &str = r"secret|token|passw(?:or)?d|pwd|api[_-]?key|apikey|access[_-]?key|account[_-]?key|private[_-]?key|client[_-]?secret|credentials?|signing[_-]?key|encryption[_-]?key";

/// Each pattern and its replacement (`$1`, `$2` keep the name or the scheme in front).
fn rules() -> Vec<(String, &'static str)> {
    let value = r#"[^\s"',;&<>\[\]{}()]+"#;
    let assigned = format!(
        r#"\b[A-Za-z0-9_.-]*(?:{SECRET_NAMES})[A-Za-z0-9_.-]*(?:["']\s*:\s*|\s*=\s*|:\s+)"#
    );
    vec![
        // A private key block (PEM, OpenSSH, PGP), to its END line or the end of the text; and
        // the `private_key` of a service-account JSON.
        (
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)".into(),
            "[REDACTED PRIVATE KEY]",
        ),
        (r#"("private_key(?:_id)?"\s*:\s*")[^"]*"#.into(), "${1}[REDACTED]"),
        // AWS access key ids (long-term and temporary).
        (r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b".into(), REDACTED),
        // `aws configure set aws_secret_access_key VALUE` and the like.
        (
            r"(?i)\b(aws_secret_access_key|aws_session_token|aws_security_token)(\s+)[^\s=:]\S*".into(),
            "${1}${2}[REDACTED]",
        ),
        // Presigned URLs.
        (
            r"(?i)\b(X-Amz-(?:Security-Token|Signature|Credential)=)[^&\s]+".into(),
            "${1}[REDACTED]",
        ),
        // GitHub, Slack, npm, PyPI, GitLab, Stripe, Google, SendGrid, OpenAI-style keys.
        (r"\bgh[pousr]_[A-Za-z0-9]{20,}".into(), REDACTED),
        (r"\bgithub_pat_[A-Za-z0-9_]{20,}".into(), REDACTED),
        (r"\bxox[abprse]-[A-Za-z0-9-]{8,}".into(), REDACTED),
        (r"\bxapp-[0-9]+-[A-Za-z0-9-]{8,}".into(), REDACTED),
        (
            r#"(?i)\bhttps?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[^\s"'<>|]+"#.into(),
            REDACTED,
        ),
        (r"\bnpm_[A-Za-z0-9]{20,}".into(), REDACTED),
        (r"\bpypi-[A-Za-z0-9_-]{40,}".into(), REDACTED),
        (
            r"\bgl(?:pat|ptt|dt|rt|cbt|oas|soat|ft|imt|agent|ffct|wt)-[A-Za-z0-9_-]{20,}".into(),
            REDACTED,
        ),
        (r"\bGR1348941[A-Za-z0-9_-]{20,}".into(), REDACTED),
        (r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}".into(), REDACTED),
        (r"\bwhsec_[A-Za-z0-9]{16,}".into(), REDACTED),
        (r"\bAIza[0-9A-Za-z_-]{35}".into(), REDACTED),
        (r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}".into(), REDACTED),
        (r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}".into(), REDACTED),
        // JWTs (header and claims are base64url JSON objects).
        (
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*".into(),
            REDACTED,
        ),
        // Authorization headers (any scheme), then a bare bearer token.
        (
            r#"(?i)(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:basic|bearer|token|digest|negotiate|aws4-hmac-sha256)\s+)?)[^"'\r\n]+"#.into(),
            "${1}[REDACTED]",
        ),
        (
            r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}".into(),
            "${1}[REDACTED]",
        ),
        // Credentials in URLs: `scheme://user:pass@host`, and a long token as the user.
        (
            r#"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@"'<>]+):([^/\s@"'<>]+)@"#.into(),
            "${1}${2}:[REDACTED]@",
        ),
        (
            r#"(?i)\b([a-z][a-z0-9+.-]*://)[A-Za-z0-9_-]{20,}@"#.into(),
            "${1}[REDACTED]@",
        ),
        // `mysql -uroot -pSECRET`, `docker login -u x -p SECRET`.
        (
            r"((?i:\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlsh|mariadb)\b)[^\r\n]*?\s-p)[^\s'-][^\s']*".into(),
            "${1}[REDACTED]",
        ),
        (
            r"(\s-u\s?\S+\s+-p)[^\s'-][^\s']*".into(),
            "${1}[REDACTED]",
        ),
        (
            r"(?i)(\bcurl\b[^\r\n]*?\s(?:-u|--user)\s*[^\s:]+:)\S+".into(),
            "${1}[REDACTED]",
        ),
        (
            r"(?i)(\bdocker\s+login\b[^\r\n]*?\s-p\s+)\S+".into(),
            "${1}[REDACTED]",
        ),
        // `--password x`, `--token=x`.
        (
            format!(r#"(?i)(--?(?:password|passwd|token|secret|api-key|apikey|access-key|secret-key|client-secret)(?:=|\s+)["']?){value}"#),
            "${1}[REDACTED]",
        ),
        // `NAME=value`, `name: value`, `"name": "value"` for names that hold secrets (a quoted
        // value to its closing quote).
        (
            format!(r#"(?i)({assigned})"[^"\r\n]*""#),
            "${1}\"[REDACTED]\"",
        ),
        (format!(r"(?i)({assigned})'[^'\r\n]*'"), "${1}'[REDACTED]'"),
        (format!(r"(?i)({assigned}){value}"), "${1}[REDACTED]"),
    ]
}

struct Compiled {
    any: RegexSet,
    each: Vec<(Regex, &'static str)>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let rules = rules();
        #[allow(clippy::expect_used)]
        Compiled {
            any: RegexSet::new(rules.iter().map(|(p, _)| p)).expect("patterns are valid"),
            each: rules
                .into_iter()
                .map(|(p, r)| (Regex::new(&p).expect("pattern is valid"), r))
                .collect(),
        }
    })
}

/// `text` with every credential replaced by `[REDACTED]` (the name in front of an assigned
/// secret stays, so the reader sees what was hidden). Borrowed when there is none.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let c = compiled();
    let hits = c.any.matches(text);
    if !hits.matched_any() {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for i in hits.iter() {
        let (re, with) = &c.each[i];
        if let Cow::Owned(s) = re.replace_all(&out, *with) {
            out = s;
        }
    }
    Cow::Owned(out)
}

fn key_marker() -> &'static (Regex, Regex) {
    static MARKERS: OnceLock<(Regex, Regex)> = OnceLock::new();
    #[allow(clippy::expect_used)]
    MARKERS.get_or_init(|| {
        (
            Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----").expect("valid"),
            Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----").expect("valid"),
        )
    })
}

/// Whether a line opens a private key block that it does not close.
pub fn opens_private_key(line: &str) -> bool {
    let (begin, end) = key_marker();
    begin
        .find(line)
        .is_some_and(|m| !end.is_match(&line[m.end()..]))
}

/// Whether a line closes a private key block.
pub fn ends_private_key(line: &str) -> bool {
    key_marker().1.is_match(line)
}
