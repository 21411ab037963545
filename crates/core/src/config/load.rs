//! TOML text → validated [`Config`]. Pure: the environment is passed in as a lookup function.
//!
//! Every problem is collected and reported at once, each with its TOML path and what to do.

use super::raw::*;
use super::resolve::Resolver;
use super::Config;
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::Path;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// TOML path of the offending value, e.g. `environments[2].pipeline`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line per error whatever the parts hold (a TOML parser message spans lines).
        let one_line = |text: &str| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        };
        write!(f, "{}: {}", one_line(&self.path), one_line(&self.message))
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "config: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a configuration file, expanding `${VAR}` from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: path.display().to_string(),
            message: format!(
                "cannot read the configuration file ({e}); pass --config FILE or set PIPELINE_RESPONDER_CONFIG"
            ),
        }])
    })?;
    load_str(&text, &|name| std::env::var(name).ok())
}

/// Loads only what reading a build log needs (`[diagnosis]`, `[thresholds]`, `[escalation]` and
/// the failure policy's `diagnostics`), for offline tools such as `explain-log` that run where
/// the daemon's secrets and endpoints are not set. Those sections are validated as usual.
pub fn load_reading_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    let Ok(mut table) = toml::from_str::<toml::Table>(&text) else {
        // Let the full loader report the syntax error with its position.
        return load_str(&text, &|name| std::env::var(name).ok());
    };
    table.retain(|k, _| ["diagnosis", "thresholds", "escalation"].contains(&k));
    // Of the policies, the failure policy's diagnostics (the build-log search parameters).
    if let Some(diagnostics) = toml::from_str::<toml::Table>(&text).ok().and_then(|t| {
        t.get("policies")?
            .get("pipeline_execution_failure")?
            .get("diagnostics")
            .cloned()
    }) {
        let mut policy = toml::Table::new();
        policy.insert("diagnostics".into(), diagnostics);
        let mut policies = toml::Table::new();
        policies.insert(
            "pipeline_execution_failure".into(),
            toml::Value::Table(policy),
        );
        table.insert("policies".into(), toml::Value::Table(policies));
    }
    let mut sources = toml::Table::new();
    let mut sqs = toml::Table::new();
    sqs.insert("enabled".into(), toml::Value::Boolean(false));
    sources.insert("sqs".into(), toml::Value::Table(sqs));
    table.insert("sources".into(), toml::Value::Table(sources));
    let mut notifiers = toml::Table::new();
    let mut sns = toml::Table::new();
    sns.insert("enabled".into(), toml::Value::Boolean(false));
    notifiers.insert("sns".into(), toml::Value::Table(sns));
    table.insert("notifiers".into(), toml::Value::Table(notifiers));
    let mut environment = toml::Table::new();
    environment.insert("name".into(), toml::Value::String("production".into()));
    let mut staging = toml::Table::new();
    staging.insert("name".into(), toml::Value::String("staging".into()));
    table.insert(
        "environments".into(),
        toml::Value::Array(vec![
            toml::Value::Table(environment),
            toml::Value::Table(staging),
        ]),
    );
    let text = toml::to_string(&table).unwrap_or_default();
    load_str(&text, &|name| std::env::var(name).ok())
}

/// Parses and validates configuration text. `env` looks up `${VAR}` references.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let message = e.message().to_string();
        let position = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                // In characters, as editors count them (not bytes).
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let column = before[line_start..].chars().count() + 1;
                format!("line {line}, column {column}")
            })
            .unwrap_or_else(|| "(file)".into());
        ConfigErrors(vec![ConfigError {
            path: position,
            message: format!("TOML syntax error: {message}; fix the file so it is valid TOML"),
        }])
    })?;
    let mut errors = Vec::new();
    durations_in_bounds(&table, "", &mut errors);
    let raw = deserialize_raw(table, &mut errors);
    let config = Resolver::new(env, &mut errors).resolve(raw);
    // A template in [environment_defaults] is resolved once per environment; say it once.
    let mut seen = std::collections::BTreeSet::new();
    errors.retain(|e| seen.insert((e.path.clone(), e.message.clone())));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The longest duration any `*_secs` setting may hold: a year and a day. Every timer, window and
/// timeout is added to clock readings at run time; a bound here keeps that arithmetic in range
/// (`storm.window_secs = 10000000000000000` would otherwise overflow it).
pub const MAX_DURATION_SECS: i64 = 366 * 24 * 3600;

/// Every `*_secs` value anywhere in the file (sections, arrays of tables) at most
/// `MAX_DURATION_SECS`.
fn durations_in_bounds(table: &toml::Table, at: &str, errors: &mut Vec<ConfigError>) {
    for (key, value) in table {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match value {
            toml::Value::Table(inner) => durations_in_bounds(inner, &path, errors),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(inner) = item {
                        durations_in_bounds(inner, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            // Negative values are refused by type, with their own message.
            toml::Value::Integer(n) if key.ends_with("_secs") && *n > MAX_DURATION_SECS => {
                errors.push(ConfigError {
                    path,
                    message: format!(
                        "{n} seconds is too long; write a whole number of seconds up to {MAX_DURATION_SECS} (366 days)"
                    ),
                });
            }
            _ => {}
        }
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "daemon",
    "aws",
    "http",
    "store",
    "sources",
    "notifiers",
    "escalation",
    "storm",
    "digest",
    "remediation",
    "thresholds",
    "diagnosis",
    "detection",
    "environment_defaults",
    "environments",
    "policies",
];

/// Deserializes section by section (and entry by entry for environments and policies) so that
/// one bad value does not hide the problems in the other sections.
fn deserialize_raw(table: toml::Table, errors: &mut Vec<ConfigError>) -> RawConfig {
    let mut raw = RawConfig::default();
    for (key, value) in table {
        match key.as_str() {
            "daemon" => raw.daemon = unit(value, &key, errors),
            "aws" => raw.aws = unit(value, &key, errors),
            "http" => raw.http = unit(value, &key, errors),
            "store" => raw.store = unit(value, &key, errors),
            "sources" => raw.sources = unit(value, &key, errors),
            "notifiers" => raw.notifiers = unit(value, &key, errors),
            "escalation" => raw.escalation = unit(value, &key, errors),
            "storm" => raw.storm = unit(value, &key, errors),
            "digest" => raw.digest = unit(value, &key, errors),
            "remediation" => raw.remediation = unit(value, &key, errors),
            "thresholds" => raw.thresholds = unit(value, &key, errors),
            "detection" => raw.detection = unit(value, &key, errors),
            "diagnosis" => raw.diagnosis = unit(value, &key, errors),
            "environment_defaults" => raw.environment_defaults = unit(value, &key, errors),
            "environments" => raw.environments = Some(entries(value, &key, errors)),
            "policies" => match value {
                toml::Value::Table(policies) => {
                    raw.policies = Some(
                        policies
                            .into_iter()
                            .filter_map(|(name, v)| {
                                let path = format!("policies.{}", display_key(&name));
                                unit(v, &path, errors).map(|p| (name, p))
                            })
                            .collect(),
                    )
                }
                other => errors.push(ConfigError {
                    path: key.clone(),
                    message: format!(
                        "expected a table of incident types, found {}; write [policies.<incident_type>]",
                        other.type_str()
                    ),
                }),
            },
            _ => errors.push(ConfigError {
                path: display_key(&key),
                message: format!(
                    "unknown key; remove it or use one of: {}",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            }),
        }
    }
    raw
}

/// `[[environments]]`: each entry on its own.
fn entries(value: toml::Value, key: &str, errors: &mut Vec<ConfigError>) -> Vec<RawEnvironment> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| unit(item, &format!("{key}[{i}]"), errors).unwrap_or_default())
            .collect(),
        other => {
            errors.push(ConfigError {
                path: key.to_string(),
                message: format!(
                    "expected an array of tables, found {}; write each environment as [[environments]]",
                    other.type_str()
                ),
            });
            Vec::new()
        }
    }
}

/// Type errors reported per unit at most; past this the unit falls back to its defaults.
const MAX_TYPE_ERRORS_PER_UNIT: usize = 50;

/// Deserializes one unit, recording every unknown key and every type error with full paths.
///
/// On a type error the offending value is dropped and the unit deserialized again, so that one
/// wrong type neither hides the unit's other problems nor resets its other values to defaults
/// (which would report consequences such as "queue_url: required" for a queue URL that is set).
fn unit<T: DeserializeOwned>(
    mut value: toml::Value,
    prefix: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut unknown: Vec<String> = Vec::new();
    let mut type_errors = Vec::new();
    let parsed = loop {
        let mut track = serde_path_to_error::Track::new();
        let mut ignored = Vec::new();
        let result = serde_ignored::deserialize(
            serde_path_to_error::Deserializer::new(value.clone(), &mut track),
            |path| ignored.push(ignored_path(&path)),
        );
        for path in ignored {
            if !unknown.contains(&path) {
                unknown.push(path);
            }
        }
        match result {
            Ok(parsed) => break Some(parsed),
            Err(e) => {
                let path = track.path();
                let inner = path.to_string();
                type_errors.push(ConfigError {
                    path: join_path(prefix, if inner == "." { "" } else { &inner }),
                    // `message()`, not `to_string()`: the latter appends "in `key`" on its own line.
                    message: explain_type_error(e.message()),
                });
                let segments: Vec<_> = path.iter().cloned().collect();
                if type_errors.len() >= MAX_TYPE_ERRORS_PER_UNIT
                    || !remove_at(&mut value, &segments)
                {
                    break None;
                }
            }
        }
    };
    for path in unknown {
        errors.push(ConfigError {
            path: if path.starts_with('[') || prefix.is_empty() {
                format!("{prefix}{path}")
            } else {
                format!("{prefix}.{path}")
            },
            message: "unknown key; remove it or check its spelling against the configuration reference in README.md".into(),
        });
    }
    errors.extend(type_errors);
    parsed
}

/// Removes the value at `path`: the table key, or the whole array for an array element (removing
/// only the element would shift the indexes reported for later elements). False when there is
/// nothing to remove: the unit itself has the wrong type, or the path cannot be followed.
fn remove_at(value: &mut toml::Value, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    if matches!(last, Segment::Seq { .. }) {
        return remove_at(value, parents);
    }
    let mut current = value;
    for segment in parents {
        let next = match (segment, current) {
            (Segment::Map { key }, toml::Value::Table(t)) => t.get_mut(key),
            (Segment::Seq { index }, toml::Value::Array(a)) => a.get_mut(*index),
            _ => None,
        };
        match next {
            Some(v) => current = v,
            None => return false,
        }
    }
    match (last, current) {
        (Segment::Map { key }, toml::Value::Table(t)) => t.remove(key).is_some(),
        _ => false,
    }
}

/// A key as TOML would need it written: bare when it can be, quoted otherwise (an empty key, a
/// blank one, one with a dot or a line break stays visible and on one line).
fn display_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// An ignored (unknown) key's path inside a unit, as `a.b[0].c`, keys quoted where needed.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            let key = display_key(key);
            if parent.is_empty() {
                key
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

fn join_path(prefix: &str, inner: &str) -> String {
    // serde_ignored prints sequence indexes as `.0`; show them as `[0]` like TOML users read them.
    let mut out = prefix.to_string();
    for part in inner.split('.').filter(|p| !p.is_empty() && *p != "?") {
        if part.starts_with('[') {
            out.push_str(part);
        } else if part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn explain_type_error(message: &str) -> String {
    let hint = if message.contains("expected u64") {
        "; write a whole number of seconds (or a count), e.g. 300"
    } else if message.contains("expected f64") {
        "; write a number, e.g. 80"
    } else if message.contains("expected a boolean") {
        "; write true or false"
    } else if message.contains("expected a string") {
        "; write a quoted string"
    } else if message.contains("expected a sequence") {
        "; write an array, e.g. [\"a\", \"b\"]"
    } else {
        ""
    };
    format!("{message}{hint}")
}

#[cfg(test)]
mod tests {
    use super::super::defaults;
    use super::*;

    #[test]
    fn join_path_shows_indexes_in_brackets() {
        assert_eq!(
            join_path("environments[1]", "pipeline"),
            "environments[1].pipeline"
        );
        assert_eq!(
            join_path("policies.x", "escalation.0.level"),
            "policies.x.escalation[0].level"
        );
        assert_eq!(
            join_path("policies.x", "escalation[0].level"),
            "policies.x.escalation[0].level"
        );
        assert_eq!(join_path("aws", ""), "aws");
    }

    #[test]
    fn defaults_are_runbook_names() {
        assert_eq!(defaults::RESOURCE_PREFIX, "kiro-pipeline-{env}");
    }
}
