//! Secrets and `${ENV_VAR}` references.

use serde::{Serialize, Serializer};
use std::fmt;

/// A secret value (Slack webhook URL, bot token, API token). Its `Debug`, `Display` and
/// `Serialize` never show the value; call [`Secret::expose`] at the one place it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from (`${SLACK_WEBHOOK_URL}` or `(written in the file)`), safe to print.
    origin: String,
}

impl Secret {
    pub fn new(value: impl Into<String>, origin: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            origin: origin.into(),
        }
    }

    /// The secret itself. Never log or post what this returns.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where the value came from, safe to show.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted> from {})", self.origin)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("<redacted from {}>", self.origin))
    }
}

/// Why a `${...}` reference could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` names a variable that is not set (and has no `:-default`).
    Unset(String),
    /// `${` without a closing `}` or with an invalid variable name.
    Malformed(String),
}

/// Expands `${NAME}` and `${NAME:-default}` references in `raw` using `lookup`.
/// Returns the expanded text and the names of the variables used.
pub fn expand_env(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), ExpandError> {
    let mut out = String::with_capacity(raw.len());
    let mut used = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ExpandError::Malformed(format!(
                "`${{` at byte {} has no closing `}}`; write ${{NAME}} or ${{NAME:-default}}",
                raw.len() - rest.len() + start
            )));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(ExpandError::Malformed(format!(
                "`${{{inner}}}` is not a valid variable reference; use ${{NAME}} or ${{NAME:-default}}"
            )));
        }
        match lookup(name).filter(|v| !v.is_empty()) {
            Some(value) => out.push_str(&value),
            None => match default {
                Some(default) => out.push_str(default),
                None => return Err(ExpandError::Unset(name.to_string())),
            },
        }
        used.push(name.to_string());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("xoxb-secret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(
            expand_env("Bearer ${TOKEN}", &env),
            Ok(("Bearer xoxb-secret".into(), vec!["TOKEN".into()]))
        );
        assert_eq!(
            expand_env("${MISSING:-http://127.0.0.1:1}", &env).map(|r| r.0),
            Ok("http://127.0.0.1:1".into())
        );
        assert_eq!(expand_env("plain", &env).map(|r| r.0), Ok("plain".into()));
    }

    #[test]
    fn unset_and_empty_variables_are_errors() {
        assert_eq!(
            expand_env("${MISSING}", &env),
            Err(ExpandError::Unset("MISSING".into()))
        );
        assert_eq!(
            expand_env("${EMPTY}", &env),
            Err(ExpandError::Unset("EMPTY".into()))
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(
            expand_env("${TOKEN", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand_env("${1X}", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand_env("${A B}", &env),
            Err(ExpandError::Malformed(_))
        ));
    }

    #[test]
    fn debug_display_and_json_never_show_the_value() {
        let secret = Secret::new("xoxb-secret", "${TOKEN}");
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            serde_json::to_string(&secret).unwrap_or_default(),
        ] {
            assert!(!shown.contains("xoxb-secret"), "{shown}");
        }
    }
}
