//! The AWS operations the code calls, read from the sources: SDK client bindings (fields,
//! parameters, `let`s made by `pipeline_responder_aws::metrics::*`) and the method calls on them,
//! mapped to IAM actions. Test items (`#[cfg(test)]`) and comments do not count.

use super::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source with comments removed, string contents emptied and whitespace dropped except where it
/// separates two words (`self.client\n    .get_item()` reads `self.client.get_item()`).
pub(super) fn normalize(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::new();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    let mut pending_space = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            i += 1;
            continue;
        }
        if pending_space && out.chars().last().is_some_and(word) && word(c) {
            out.push(' ');
        }
        pending_space = false;
        // Raw strings r"..." / r#"..."#.
        if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !out.chars().last().is_some_and(word)
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = chars[j + 1..].iter().collect();
                let end = rest.find(&close).unwrap();
                out.push_str("\"\"");
                i = j + 1 + rest[..end].chars().count() + close.chars().count();
                continue;
            }
        }
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += 1;
            continue;
        }
        // Char literals ('x', '\n', '{'), not lifetimes ('a).
        if c == '\'' {
            if next == Some('\\') {
                // The escaped character at i + 2 may itself be a quote ('\'').
                let end = chars[i + 3..].iter().position(|&c| c == '\'').unwrap();
                out.push_str("' '");
                i += end + 4;
                continue;
            }
            if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The index just past the `}` matching the `{` at `open`.
fn block_end(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// `code` without `#[cfg(test)]` items (unit tests call SDK operations the daemon does not).
pub(super) fn without_test_items(mut code: String) -> String {
    while let Some(at) = code.find("#[cfg(test)]") {
        let rest = &code[at..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(b), Some(s)) if s < b => at + s + 1,
            (Some(b), _) => block_end(&code, at + b),
            (None, Some(s)) => at + s + 1,
            (None, None) => code.len(),
        };
        code.replace_range(at..end, "");
    }
    code
}

/// The aws-sdk crate (its name after `aws_sdk_`) behind each helper of crates/aws/src/metrics.rs.
const CLIENT_HELPERS: &[(&str, &str)] = &[
    ("sqs", "sqs"),
    ("sns", "sns"),
    ("dynamodb", "dynamodb"),
    ("logs", "cloudwatchlogs"),
    ("codepipeline", "codepipeline"),
    ("cloudwatch", "cloudwatch"),
];

/// A name bound to an SDK client in a normalized file.
#[derive(Debug)]
struct Binding {
    name: String,
    /// The aws-sdk crate, after `aws_sdk_`.
    krate: String,
    /// Where it can be used: a struct field (as `self.name`) anywhere, a parameter in its
    /// function's body, a `let` until the end of its block.
    scope: std::ops::Range<usize>,
    field: bool,
}

/// The index of the `}` that closes the block `at` is in.
fn enclosing_block_end(code: &str, at: usize) -> usize {
    let mut depth = 0;
    for (i, c) in code[at..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return at + i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    code.len()
}

fn client_bindings(code: &str) -> Vec<Binding> {
    let mut bindings = Vec::new();
    // `use aws_sdk_x::Client;` / `use aws_sdk_x::{..., Client, ...};` make a bare `Client` x's.
    let bare_client = code.split("use aws_sdk_").skip(1).find_map(|rest| {
        let statement = &rest[..rest.find(';').unwrap()];
        let krate = statement.split("::").next().unwrap();
        statement
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|token| token == "Client")
            .then(|| krate.to_string())
    });
    let ident_before = |end: usize| -> String {
        let start = code[..end]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        code[start..end].to_string()
    };
    let mut search = 0;
    while let Some(found) = code[search..].find(':') {
        let colon = search + found;
        search = colon + 1;
        let after = code[colon + 1..].trim_start_matches('&');
        let krate = if let Some(rest) = after.strip_prefix("aws_sdk_") {
            let krate: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
            if !rest[krate.len()..].starts_with("::Client") {
                continue;
            }
            krate
        } else if after.starts_with("Client")
            && !after["Client".len()..]
                .starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
        {
            match &bare_client {
                Some(krate) => krate.clone(),
                None => continue,
            }
        } else {
            continue;
        };
        if code[..colon].ends_with(':') {
            continue; // a path (`x::Client`), not a declaration
        }
        let name = ident_before(colon);
        // Inside a parameter list: an unclosed `(` after the last `fn`.
        let fn_at = code[..colon].rfind("fn ");
        let in_params = fn_at.is_some_and(|f| {
            let between = &code[f..colon];
            between.matches('(').count() > between.matches(')').count()
        });
        let (scope, field) = if in_params {
            let open = colon + code[colon..].find('{').unwrap();
            (open..block_end(code, open), false)
        } else {
            (0..code.len(), true)
        };
        bindings.push(Binding {
            name,
            krate,
            scope,
            field,
        });
    }
    for (helper, krate) in CLIENT_HELPERS {
        for pattern in [
            format!("crate::metrics::{helper}("),
            format!("aws::metrics::{helper}("),
        ] {
            for (at, _) in code.match_indices(&pattern) {
                let statement_start = code[..at].rfind([';', '{', '}']).map_or(0, |i| i + 1);
                let Some(binding) = code[statement_start..at].strip_prefix("let ") else {
                    continue;
                };
                let name: String = binding
                    .trim_start_matches("mut ")
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                bindings.push(Binding {
                    name,
                    krate: krate.to_string(),
                    scope: at..enclosing_block_end(code, at),
                    field: false,
                });
            }
        }
    }
    bindings
}

/// Operations called on SDK clients in normalized `code`, as (aws-sdk crate, snake_case method).
fn sdk_calls(code: &str) -> BTreeSet<(String, String)> {
    let mut calls = BTreeSet::new();
    for Binding {
        name,
        krate,
        scope,
        field,
    } in client_bindings(code)
    {
        let scope = &code[scope];
        let receiver = if field {
            format!("self.{name}.")
        } else {
            format!("{name}.")
        };
        for (at, _) in scope.match_indices(&receiver) {
            let before = scope[..at].chars().last();
            if !field && before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let rest = &scope[at + receiver.len()..];
            let method: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !method.is_empty()
                && rest[method.len()..].starts_with('(')
                && !["clone", "config"].contains(&method.as_str())
            {
                calls.insert((krate.clone(), method));
            }
        }
    }
    calls
}

/// The IAM actions that authorize one SDK operation (in `code`, for transactions' item kinds).
fn iam_actions(krate: &str, method: &str, code: &str) -> Vec<String> {
    let service = match krate {
        "cloudwatchlogs" => "logs",
        other => other,
    };
    let pascal: String = method
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect();
    match (service, method) {
        // SQS authorizes batch calls with the single-message action.
        ("sqs", "delete_message_batch") => vec!["sqs:DeleteMessage".into()],
        ("sqs", "change_message_visibility_batch") => vec!["sqs:ChangeMessageVisibility".into()],
        ("sqs", "send_message_batch") => vec!["sqs:SendMessage".into()],
        // DynamoDB has no transaction actions: each item kind needs its own.
        ("dynamodb", "transact_write_items") => [
            ("Put::builder", "dynamodb:PutItem"),
            ("Update::builder", "dynamodb:UpdateItem"),
            ("Delete::builder", "dynamodb:DeleteItem"),
            ("ConditionCheck::builder", "dynamodb:ConditionCheckItem"),
        ]
        .iter()
        .filter(|(builder, _)| {
            code.match_indices(builder).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|(_, action)| action.to_string())
        .collect(),
        ("dynamodb", "transact_get_items") => vec!["dynamodb:GetItem".into()],
        _ => vec![format!("{service}:{pascal}")],
    }
}

pub(super) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Operator setup, not the daemon: `DynamoStore::create_table` serves only the `create-table`
/// subcommand (the operator's credentials; the stack creates the table) and the tests.
pub(super) const OPERATOR_ONLY_FN: (&str, &str) = (
    "crates/daemon/src/store/dynamodb/table.rs",
    "fn create_table(",
);

/// IAM actions the code calls: (daemon's, operator-only), each with where it was found.
pub(super) fn code_actions() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut files = Vec::new();
    for krate in ["aws", "daemon", "core"] {
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
    }
    let (mut daemon, mut operator) = (BTreeMap::new(), BTreeMap::new());
    // A folder module (a `mod.rs` beside its files) is read as one unit: its struct and client
    // field are declared in one file and called in the others.
    let mut units: BTreeMap<String, String> = BTreeMap::new();
    for path in files {
        let relative = path.strip_prefix(root()).unwrap().display().to_string();
        let mut code = without_test_items(normalize(&std::fs::read_to_string(&path).unwrap()));
        if relative == OPERATOR_ONLY_FN.0 {
            let at = code.find(OPERATOR_ONLY_FN.1).unwrap_or_else(|| {
                panic!(
                    "{relative} has no {}: update OPERATOR_ONLY_FN",
                    OPERATOR_ONLY_FN.1
                )
            });
            let end = block_end(&code, at + code[at..].find('{').unwrap());
            // Scanned on its own, with the file's `use aws_sdk_...` (for a bare `Client`).
            let uses: String = code
                .split(';')
                .filter(|s| s.starts_with("use aws_sdk_"))
                .map(|s| format!("{s};"))
                .collect();
            let start = code[..at].rfind(['}', ';']).unwrap() + 1;
            let operator_code = format!("{uses}{}", &code[start..end]);
            for (krate, method) in sdk_calls(&operator_code) {
                for action in iam_actions(&krate, &method, &operator_code) {
                    operator.insert(action, format!("{relative} ({method})"));
                }
            }
            code.replace_range(at..end, "");
        }
        let dir = path.parent().unwrap();
        let unit = if dir.join("mod.rs").exists() {
            dir.strip_prefix(root()).unwrap().display().to_string() + "/"
        } else {
            relative
        };
        let text = units.entry(unit).or_default();
        text.push_str(&code);
        text.push('\n');
    }
    for (unit, code) in &units {
        for (krate, method) in sdk_calls(code) {
            for action in iam_actions(&krate, &method, code) {
                daemon.insert(action, format!("{unit} ({method})"));
            }
        }
    }
    (daemon, operator)
}
