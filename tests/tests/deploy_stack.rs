//! The deploy kit's CloudFormation stack (deploy/cloudformation/pipeline-responder.yaml): cfn-lint
//! clean, passes the security gate (deploy/guard/security-rules.guard, cfn-guard) while copies
//! broken one property at a time fail exactly the matching rule, grants the task role exactly the
//! AWS operations the code calls, and routes exactly the docs/specification.md section 1 events (EventBridge
//! and SNS in moto) to its queue.
#![allow(clippy::unwrap_used)]

mod sdk_calls;

use crate::support::queue_arn;
use pipeline_responder_e2e::Moto;
use sdk_calls::{code_actions, normalize, rust_files, without_test_items, OPERATOR_ONLY_FN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const TEMPLATE: &str = "deploy/cloudformation/pipeline-responder.yaml";
const RULES: &str = "deploy/guard/security-rules.guard";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/events");

fn root() -> PathBuf {
    PathBuf::from(ROOT)
}

/// The venv of scripts/setup.sh (moto, cfn-lint).
fn venv_bin(tool: &str) -> PathBuf {
    let path = PathBuf::from(
        std::env::var("PIPELINE_RESPONDER_VENV")
            .unwrap_or_else(|_| "/var/tmp/pipeline-responder-venv".into()),
    )
    .join("bin")
    .join(tool);
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup.sh (it installs cfn-lint into the venv)",
        path.display()
    );
    path
}

/// cfn-guard 3 (scripts/setup.sh builds it from crates.io).
fn cfn_guard() -> PathBuf {
    let path = std::env::var_os("CFN_GUARD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(
                std::env::var("PIPELINE_RESPONDER_TOOLS")
                    .unwrap_or_else(|_| "/var/tmp/pipeline-responder-tools".into()),
            )
            .join("bin/cfn-guard")
        });
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup.sh (it installs cfn-guard)",
        path.display()
    );
    path
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The template as JSON, decoded by cfn-lint (so `!Sub "x"` reads `{"Fn::Sub": "x"}`).
fn template() -> Value {
    let output = Command::new(venv_bin("python"))
        .arg(root().join("scripts/cfn_to_json.py"))
        .arg(root().join(TEMPLATE))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scripts/cfn_to_json.py could not read {TEMPLATE}:\n{}",
        output_text(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    let r = &template["Resources"][name];
    assert!(r.is_object(), "{TEMPLATE}: resource {name} is missing");
    r
}

/// A string or list of strings as a list.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

// ---- cfn-lint and cfn-guard ------------------------------------------------------------------

#[test]
fn template_is_cfn_lint_clean_including_informational_checks() {
    let output = Command::new(venv_bin("cfn-lint"))
        .current_dir(root())
        .args(["--include-checks", "I", "--", TEMPLATE])
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "cfn-lint reports problems in {TEMPLATE}; fix each one (exit {:?}):\n{}",
        output.status.code(),
        output_text(&output)
    );
}

/// Rule outcomes of one `cfn-guard validate` run.
#[derive(Debug)]
struct GuardReport {
    exit: Option<i32>,
    failed: BTreeSet<String>,
    passed: BTreeSet<String>,
    skipped: BTreeSet<String>,
    text: String,
}

fn guard(data: &Path) -> GuardReport {
    let output = Command::new(cfn_guard())
        .arg("validate")
        .arg("--rules")
        .arg(root().join(RULES))
        .arg("--data")
        .arg(data)
        .args(["--output-format", "json", "--show-summary", "none"])
        .output()
        .unwrap();
    let text = output_text(&output);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("cfn-guard printed no JSON report ({e}):\n{text}"));
    let names = |key: &str| -> BTreeSet<String> {
        report[key]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .map(|r| match r {
                Value::String(name) => name.clone(),
                rule => rule["Rule"]["name"].as_str().unwrap().to_string(),
            })
            .collect()
    };
    GuardReport {
        exit: output.status.code(),
        failed: names("not_compliant"),
        passed: names("compliant"),
        skipped: names("not_applicable"),
        text,
    }
}

/// The rules the gate defines (parameterized helpers, `rule f(x)`, are not reported).
fn guard_rule_names() -> BTreeSet<String> {
    std::fs::read_to_string(root().join(RULES))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("rule "))
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!rest[name.len()..].starts_with('(')).then_some(name)
        })
        .collect()
}

/// `guard` on a (broken) copy of the template, written to a temporary file for the run.
fn guard_copy(name: &str, template: &Value) -> GuardReport {
    let path = std::env::temp_dir().join(format!("pr-deploy-{}-{name}", std::process::id()));
    std::fs::write(&path, serde_json::to_string_pretty(template).unwrap()).unwrap();
    let report = guard(&path);
    let _ = std::fs::remove_file(&path);
    report
}

#[test]
fn template_passes_every_security_rule() {
    let report = guard(&root().join(TEMPLATE));
    let rules = guard_rule_names();
    assert!(
        rules.len() >= 9,
        "{RULES} defines only {rules:?}; the rule parser of this test is out of step"
    );
    assert!(
        report.exit == Some(0) && report.failed.is_empty(),
        "{TEMPLATE} fails the security gate {RULES}: {:?}; fix the template, not the rules:\n{}",
        report.failed,
        report.text
    );
    // The stack makes no SNS topic (it uses the pipelines' own), so only that rule has nothing
    // to check; every other rule must have looked at something.
    let expected_skips: BTreeSet<String> = ["sns_topic_encrypted".to_string()].into();
    assert_eq!(
        report.skipped, expected_skips,
        "rules that found nothing to check in {TEMPLATE} (a resource type renamed, or a rule's \
         query broken?)"
    );
    let expected_passes: BTreeSet<String> = rules.difference(&expected_skips).cloned().collect();
    assert_eq!(report.passed, expected_passes, "{}", report.text);
}

#[test]
fn broken_copy_with_a_wildcard_action_and_an_unencrypted_queue_fails_those_rules() {
    let mut broken = template();
    task_role_statements(&mut broken)[0]["Action"]
        .as_array_mut()
        .unwrap()
        .push(json!("sqs:*"));
    let queue = broken["Resources"]["EventQueue"]["Properties"]
        .as_object_mut()
        .unwrap();
    queue.remove("SqsManagedSseEnabled");
    let report = guard_copy("broken-template.json", &broken);
    assert_eq!(
        report.exit,
        Some(19),
        "cfn-guard must exit 19 (non-compliant) on the broken copy:\n{}",
        report.text
    );
    let expected: BTreeSet<String> = ["iam_no_wildcard_actions", "sqs_queue_encrypted"]
        .map(String::from)
        .into();
    assert_eq!(
        report.failed, expected,
        "the gate must name exactly the wildcard-action and queue-encryption rules:\n{}",
        report.text
    );
}

fn task_role_statements(template: &mut Value) -> &mut Vec<Value> {
    template["Resources"]["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
}

fn props<'a>(template: &'a mut Value, name: &str) -> &'a mut serde_json::Map<String, Value> {
    template["Resources"][name]["Properties"]
        .as_object_mut()
        .unwrap()
}

type Breakage = fn(&mut Value);

/// One way to break each property the gate protects, with the rule that must catch it.
const BREAKAGES: &[(&str, &str, Breakage)] = &[
    ("iam_no_wildcard_actions", "service:* action", |t| {
        task_role_statements(t)[0]["Action"] = json!(["sqs:*"]);
    }),
    (
        "iam_no_wildcard_actions",
        "\"*\" in the conditional remediation statement",
        |t| {
            let last = task_role_statements(t).last_mut().unwrap();
            last["Fn::If"][1]["Action"] = json!("*");
        },
    ),
    (
        "iam_no_wildcard_actions",
        "partial wildcard in the execution role",
        |t| {
            let role = props(t, "ExecutionRole");
            role["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] =
                json!("secretsmanager:Get*");
        },
    ),
    ("iam_no_wildcard_actions", "Allow with NotAction", |t| {
        task_role_statements(t)
            .push(json!({"Effect": "Allow", "NotAction": "iam:PassRole", "Resource": "x"}));
    }),
    (
        "iam_no_wildcard_actions",
        "wildcard in an AWS::IAM::ManagedPolicy",
        |t| {
            t["Resources"]["Extra"] = json!({"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:*"], "Resource": "x"}]}}});
        },
    ),
    (
        "sqs_queue_encrypted",
        "dead-letter queue without SSE",
        |t| {
            props(t, "EventDeadLetterQueue").remove("SqsManagedSseEnabled");
        },
    ),
    ("sqs_queue_encrypted", "SqsManagedSseEnabled: false", |t| {
        props(t, "EventQueue")["SqsManagedSseEnabled"] = json!(false);
    }),
    ("sns_topic_encrypted", "topic without KmsMasterKeyId", |t| {
        t["Resources"]["Extra"] = json!({"Type": "AWS::SNS::Topic", "Properties": {}});
    }),
    ("dynamodb_table_encrypted", "SSEEnabled: false", |t| {
        props(t, "StateTable")["SSESpecification"]["SSEEnabled"] = json!(false);
    }),
    ("dynamodb_table_point_in_time_recovery", "no PITR", |t| {
        props(t, "StateTable").remove("PointInTimeRecoverySpecification");
    }),
    (
        "queue_and_topic_policies_not_public",
        "Principal \"*\" without condition",
        |t| {
            props(t, "EventQueuePolicy")["PolicyDocument"]["Statement"]
                .as_array_mut()
                .unwrap()
                .push(
                    json!({"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
                         "Resource": "x"}),
                );
        },
    ),
    (
        "queue_and_topic_policies_not_public",
        "Principal AWS \"*\" in the Fn::If statement",
        |t| {
            let policy = props(t, "EventQueuePolicy");
            let stmt = &mut policy["PolicyDocument"]["Statement"][1]["Fn::If"][1];
            stmt["Principal"] = json!({"AWS": ["arn:aws:iam::111122223333:root", "*"]});
            stmt.as_object_mut().unwrap().remove("Condition");
        },
    ),
    ("ecs_service_no_public_ip", "AssignPublicIp: ENABLED", |t| {
        props(t, "Service")["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] =
            json!("ENABLED");
    }),
    ("log_group_retention_set", "no RetentionInDays", |t| {
        props(t, "LogGroup").remove("RetentionInDays");
    }),
    ("ecs_container_hardened", "writable root filesystem", |t| {
        props(t, "TaskDefinition")["ContainerDefinitions"][0]["ReadonlyRootFilesystem"] =
            json!(false);
    }),
    ("ecs_container_hardened", "runs as root", |t| {
        props(t, "TaskDefinition")["ContainerDefinitions"][0]["User"] = json!("0");
    }),
    ("ecs_container_hardened", "privileged", |t| {
        props(t, "TaskDefinition")["ContainerDefinitions"][0]["Privileged"] = json!(true);
    }),
];

#[test]
fn each_security_rule_fails_a_copy_broken_in_its_property_and_only_that_rule() {
    let base = template();
    let covered: BTreeSet<String> = BREAKAGES.iter().map(|(r, _, _)| r.to_string()).collect();
    assert_eq!(
        covered,
        guard_rule_names(),
        "every rule in {RULES} needs a breakage in BREAKAGES (and every breakage a rule)"
    );
    // Still compliant: "*" pinned to a source account is how cross-service grants look.
    let mut pinned = base.clone();
    props(&mut pinned, "EventQueuePolicy")["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
                     "Resource": "x",
                     "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}}}),
        );
    let report = guard_copy("pinned.json", &pinned);
    assert!(
        report.failed.is_empty(),
        "queue_and_topic_policies_not_public must accept Principal \"*\" with an \
         aws:SourceAccount condition:\n{}",
        report.text
    );
    for (i, (rule, what, breakage)) in BREAKAGES.iter().enumerate() {
        let mut broken = base.clone();
        breakage(&mut broken);
        let report = guard_copy(&format!("broken-{i}.json"), &broken);
        let expected: BTreeSet<String> = [rule.to_string()].into();
        assert!(
            report.exit == Some(19) && report.failed == expected,
            "{what}: expected exactly rule {rule} to fail, got {:?} (exit {:?}); fix that rule \
             in {RULES}:\n{}",
            report.failed,
            report.exit,
            report.text
        );
    }
}

// ---- IAM: the task role grants exactly what the code calls ----------------------------------

/// The task role's statements: (condition name or None, actions, resources).
fn task_role_grants(template: &Value) -> Vec<(Option<String>, BTreeSet<String>, Vec<Value>)> {
    let policies = resource(template, "TaskRole")["Properties"]["Policies"]
        .as_array()
        .unwrap();
    let mut grants = Vec::new();
    for policy in policies {
        for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
            let (condition, statement) = match statement.get("Fn::If") {
                Some(branches) => {
                    assert_eq!(
                        branches[2],
                        json!({"Ref": "AWS::NoValue"}),
                        "a conditional task-role statement grants only when its condition holds"
                    );
                    (
                        Some(branches[0].as_str().unwrap().to_string()),
                        &branches[1],
                    )
                }
                None => (None, statement),
            };
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            let resources = match &statement["Resource"] {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            grants.push((
                condition,
                strings(&statement["Action"]).into_iter().collect(),
                resources,
            ));
        }
    }
    grants
}

/// The operator actions' calls (approve/reject, retry, stop and restart, start).
const REMEDIATION: [&str; 4] = [
    "codepipeline:PutApprovalResult",
    "codepipeline:RetryStageExecution",
    "codepipeline:StartPipelineExecution",
    "codepipeline:StopPipelineExecution",
];

#[test]
fn task_role_grants_exactly_the_aws_operations_the_code_calls() {
    let (daemon, operator) = code_actions();
    let template = template();
    let grants = task_role_grants(&template);
    let unconditional: BTreeSet<String> = grants
        .iter()
        .filter(|(condition, _, _)| condition.is_none())
        .flat_map(|(_, actions, _)| actions.iter().cloned())
        .collect();
    // Remediation calls are granted by their own conditional statement (checked below).
    let called: BTreeSet<String> = daemon
        .keys()
        .filter(|a| !REMEDIATION.contains(&a.as_str()))
        .cloned()
        .collect();
    let missing: Vec<String> = called
        .difference(&unconditional)
        .map(|a| format!("{a} (called in {})", daemon[a]))
        .collect();
    let unused: Vec<&String> = unconditional.difference(&called).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "the task role in {TEMPLATE} must grant exactly the operations the code calls.\n\
         add to the task role, on the narrowest resources: {missing:#?}\n\
         remove from the task role (no code calls them): {unused:#?}"
    );
    assert!(
        called.contains("sqs:ReceiveMessage") && called.contains("dynamodb:ConditionCheckItem"),
        "the SDK-call scan found only {called:?}; its parser is out of step with the code"
    );

    // Operator-only calls stay off the role; today that is the table creation alone.
    let operator: BTreeSet<&String> = operator.keys().collect();
    assert_eq!(
        operator,
        BTreeSet::from([&"dynamodb:CreateTable".to_string()]),
        "{} now calls more than CreateTable: grant it to the task role if the daemon needs it",
        OPERATOR_ONLY_FN.0
    );
    for path in ["crates/daemon/src", "crates/aws/src", "crates/core/src"] {
        let mut files = Vec::new();
        rust_files(&root().join(path), &mut files);
        for file in files {
            let relative = file.strip_prefix(root()).unwrap().display().to_string();
            let code = without_test_items(normalize(&std::fs::read_to_string(&file).unwrap()));
            let calls_it = code.contains("DynamoStore::create_table(");
            assert!(
                !calls_it
                    || [
                        "crates/daemon/src/cli/mod.rs",
                        "crates/daemon/src/store/testing.rs"
                    ]
                    .contains(&relative.as_str()),
                "{relative} calls DynamoStore::create_table: the daemon now creates its table, so \
                 dynamodb:CreateTable belongs in the task role (and this test's OPERATOR_ONLY_FN)"
            );
        }
    }

    for (condition, actions, resources) in &grants {
        for resource in resources {
            let text = resource.to_string();
            let account_wide = text == "\"*\""
                || text.contains("${AWS::AccountId}:*")
                || text.contains(":alarm:*")
                || text.contains("table/*")
                || text.contains("log-group:*");
            assert!(
                !account_wide,
                "task-role grant of {actions:?} on {text} (condition {condition:?}): name the \
                 stack's own resources or the watched PipelineNamePrefix-* ones"
            );
        }
    }
}

#[test]
fn remediation_is_granted_only_with_enable_remediation_and_only_the_action_calls() {
    let template = template();
    let conditional: Vec<_> = task_role_grants(&template)
        .into_iter()
        .filter(|(condition, _, _)| condition.is_some())
        .collect();
    assert_eq!(
        conditional.len(),
        1,
        "the task role has one conditional statement, the remediation one: {conditional:?}"
    );
    let (condition, actions, resources) = &conditional[0];
    let expected: BTreeSet<String> = REMEDIATION.map(String::from).into();
    assert_eq!(
        actions, &expected,
        "the remediation statement holds exactly the operator actions' calls"
    );
    assert_eq!(condition.as_deref(), Some("RemediationEnabled"));
    assert_eq!(
        template["Conditions"]["RemediationEnabled"],
        json!({"Fn::Equals": [{"Ref": "EnableRemediation"}, "true"]}),
        "RemediationEnabled must hold only when the EnableRemediation parameter is \"true\""
    );
    assert_eq!(
        template["Parameters"]["EnableRemediation"]["Default"],
        "false"
    );
    assert_eq!(
        resources,
        &vec![
            json!({"Fn::Sub": "arn:${AWS::Partition}:codepipeline:${AWS::Region}:${AWS::AccountId}:${PipelineNamePrefix}-*"})
        ],
        "remediation applies to the watched pipelines only"
    );
    // Read-only everywhere else: no other CodePipeline write in the role.
    let writes: Vec<String> = task_role_grants(&template)
        .into_iter()
        .filter(|(condition, _, _)| condition.is_none())
        .flat_map(|(_, actions, _)| actions)
        .filter(|a| a.starts_with("codepipeline:") && !a.contains(":Get") && !a.contains(":List"))
        .collect();
    assert!(
        writes.is_empty(),
        "unconditional CodePipeline writes: {writes:?}"
    );
}

#[test]
fn execution_role_reads_only_the_configured_secrets() {
    let template = template();
    let role = &resource(&template, "ExecutionRole")["Properties"];
    assert_eq!(
        role["ManagedPolicyArns"],
        json!([{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}])
    );
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["Action"], "secretsmanager:GetSecretValue");
    let optional = |condition: &str, parameter: &str| json!({"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]});
    assert_eq!(
        statements[0]["Resource"],
        json!([
            {"Ref": "SlackWebhookUrlSecretArn"},
            {"Ref": "SlackSigningSecretArn"},
            {"Ref": "ApiTokenSecretArn"},
            optional("HasPagerDuty", "PagerDutySecretArn"),
            optional("HasOpsgenie", "OpsgenieSecretArn"),
            optional("HasTeams", "TeamsSecretArn"),
            optional("HasWebhook", "WebhookSecretArn"),
        ]),
        "GetSecretValue on the daemon's secrets only (the notifiers' when given)"
    );
    // Every container secret comes from one the role may read, under the same condition.
    let container = &resource(&template, "TaskDefinition")["Properties"]["ContainerDefinitions"][0];
    for secret in container["Secrets"].as_array().unwrap() {
        let (condition, entry) = match secret.get("Fn::If") {
            Some(branches) => (branches[0].as_str(), &branches[1]),
            None => (None, secret),
        };
        let from = entry["ValueFrom"].to_string();
        let readable = match condition {
            None => [
                "SlackWebhookUrlSecretArn",
                "SlackSigningSecretArn",
                "ApiTokenSecretArn",
            ]
            .iter()
            .any(|p| entry["ValueFrom"] == json!({"Ref": p})),
            Some("HasPagerDuty") => from.contains("${PagerDutySecretArn}:"),
            Some("HasOpsgenie") => from.contains("${OpsgenieSecretArn}:"),
            Some("HasTeams") => from.contains("${TeamsSecretArn}:"),
            Some("HasWebhook") => from.contains("${WebhookSecretArn}:"),
            Some(other) => panic!("unexpected condition {other}"),
        };
        assert!(readable, "{secret} is not a secret the role may read");
    }
}

// ---- Resources as the daemon expects them ---------------------------------------------------

#[test]
fn state_table_is_the_one_the_dynamodb_store_describes() {
    let template = template();
    let table = &resource(&template, "StateTable")["Properties"];
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/dynamodb/state-table.json")).unwrap(),
    )
    .unwrap();
    for key in [
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
    ] {
        assert_eq!(
            table[key], shipped[key],
            "StateTable {key} differs from deploy/dynamodb/state-table.json (what the store and \
             `create-table` use): copy it"
        );
    }
    assert_eq!(
        table["TimeToLiveSpecification"],
        json!({"AttributeName": "expires_at", "Enabled": true})
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
}

/// `${VAR}` references of the shipped configuration: (name, has a default).
fn config_variables() -> BTreeMap<String, bool> {
    let text = std::fs::read_to_string(root().join("config/pipeline-responder.toml")).unwrap();
    let mut vars = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for piece in line.split("${").skip(1) {
            let reference = &piece[..piece.find('}').unwrap()];
            let (name, default) = match reference.split_once(":-") {
                Some((name, _)) => (name, true),
                None => (reference, false),
            };
            vars.insert(name.to_string(), default);
        }
    }
    vars
}

#[test]
fn container_sets_what_the_shipped_configuration_reads_and_the_daemon_needs() {
    let template = template();
    let task = &resource(&template, "TaskDefinition")["Properties"];
    let container = &task["ContainerDefinitions"][0];
    let mut set: BTreeMap<String, Value> = BTreeMap::new();
    for env in container["Environment"].as_array().unwrap() {
        set.insert(env["Name"].as_str().unwrap().into(), env["Value"].clone());
    }
    for secret in container["Secrets"].as_array().unwrap() {
        // An optional secret is `Fn::If [condition, entry, AWS::NoValue]`.
        let secret = secret.get("Fn::If").map_or(secret, |b| &b[1]);
        set.insert(
            secret["Name"].as_str().unwrap().into(),
            secret["ValueFrom"].clone(),
        );
    }
    for (name, has_default) in config_variables() {
        assert!(
            has_default || set.contains_key(&name),
            "config/pipeline-responder.toml needs ${{{name}}}: set it in the container's \
             Environment or Secrets"
        );
    }
    // Always the DynamoDB store, so DesiredCount > 1 is safe; the stack's queue and table.
    assert_eq!(set["PIPELINE_RESPONDER_STORE"], "dynamodb");
    assert_eq!(
        set["PIPELINE_RESPONDER_TABLE"],
        json!({"Ref": "StateTable"})
    );
    assert_eq!(
        set["PIPELINE_RESPONDER_QUEUE_URL"],
        json!({"Ref": "EventQueue"})
    );
    assert_eq!(
        set["PIPELINE_RESPONDER_CONFIG"],
        json!({"Ref": "ConfigPath"})
    );

    assert_eq!(
        container["HealthCheck"]["Command"],
        json!([
            "CMD",
            "/usr/local/bin/pipeline-responder",
            "probe",
            "http://127.0.0.1:9090/healthz"
        ])
    );
    assert!(container["HealthCheck"]["StartPeriod"].as_u64().unwrap() > 0);
    assert_eq!(container["PortMappings"][0]["ContainerPort"], 9090);
    let config = std::fs::read_to_string(root().join("config/pipeline-responder.toml")).unwrap();
    let grace: u64 = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("shutdown_grace_secs"))
        .and_then(|rest| {
            rest.trim_start_matches([' ', '='])
                .split_whitespace()
                .next()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    assert!(
        container["StopTimeout"].as_u64().unwrap() > grace,
        "StopTimeout must exceed the daemon's shutdown_grace_secs ({grace}) so SIGKILL never \
         comes first"
    );
    assert_eq!(
        (task["Cpu"].as_str(), task["Memory"].as_str()),
        (Some("256"), Some("512"))
    );
    assert_eq!(container["LogConfiguration"]["LogDriver"], "awslogs");
    assert_eq!(
        container["LogConfiguration"]["Options"]["awslogs-group"],
        json!({"Ref": "LogGroup"})
    );
}

/// The rules that target the event queue, by logical id.
fn event_rules(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .map(|(name, r)| (name.clone(), r["Properties"].clone()))
        .collect()
}

#[test]
fn queue_has_a_dead_letter_queue_and_admits_only_this_stacks_rules() {
    let template = template();
    let queue = &resource(&template, "EventQueue")["Properties"];
    assert_eq!(
        queue["RedrivePolicy"],
        json!({"deadLetterTargetArn": {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]}, "maxReceiveCount": 5})
    );
    let dlq = &resource(&template, "EventDeadLetterQueue")["Properties"];
    assert_eq!(
        dlq["MessageRetentionPeriod"],
        14 * 24 * 3600,
        "keep dead letters 14 days"
    );
    let rules = event_rules(&template);
    assert_eq!(rules.len(), 3, "{rules:?}");
    let rule_arns: Vec<Value> = rules
        .keys()
        .map(|name| json!({"Fn::GetAtt": [name, "Arn"]}))
        .collect();
    for (policy, queue_name) in [
        ("EventQueuePolicy", "EventQueue"),
        ("EventDeadLetterQueuePolicy", "EventDeadLetterQueue"),
    ] {
        let statement =
            &resource(&template, policy)["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(
            statement["Principal"],
            json!({"Service": "events.amazonaws.com"})
        );
        assert_eq!(statement["Action"], "sqs:SendMessage");
        assert_eq!(
            statement["Resource"],
            json!({"Fn::GetAtt": [queue_name, "Arn"]})
        );
        let mut sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            .as_array()
            .unwrap()
            .clone();
        sources.sort_by_key(|v| v.to_string());
        let mut expected = rule_arns.clone();
        expected.sort_by_key(|v| v.to_string());
        assert_eq!(
            sources, expected,
            "{policy}: aws:SourceArn must be exactly the stack's rules"
        );
    }
    for (name, rule) in &rules {
        assert_eq!(rule["Targets"].as_array().unwrap().len(), 1, "{name}");
        assert_eq!(
            rule["Targets"][0]["Arn"],
            json!({"Fn::GetAtt": ["EventQueue", "Arn"]}),
            "{name}"
        );
    }
    // Alarms on the daemon itself.
    let dlq_alarm = &resource(&template, "DeadLetterQueueAlarm")["Properties"];
    assert_eq!(
        dlq_alarm["MetricName"],
        "ApproximateNumberOfMessagesVisible"
    );
    assert_eq!(
        dlq_alarm["Dimensions"][0]["Value"],
        json!({"Fn::GetAtt": ["EventDeadLetterQueue", "QueueName"]})
    );
    let tasks_alarm = resource(&template, "RunningTasksAlarm")["Properties"].to_string();
    assert!(
        tasks_alarm.contains("\"RunningTaskCount\"")
            && tasks_alarm.contains("ECS/ContainerInsights")
    );
    assert_eq!(
        resource(&template, "Cluster")["Properties"]["ClusterSettings"],
        json!([{"Name": "containerInsights", "Value": "enabled"}])
    );
}

// ---- Routing in moto: EventBridge rules and the SNS subscription filter ---------------------

/// Replaces `{"Fn::Sub": "...${Param}..."}` and `{"Ref": "Param"}` with the parameters' defaults.
fn resolve(value: &Value, params: &Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Sub") => {
            let mut text = map["Fn::Sub"].as_str().unwrap().to_string();
            for (name, param) in params.as_object().unwrap() {
                if let Some(default) = param["Default"].as_str() {
                    text = text.replace(&format!("${{{name}}}"), default);
                }
            }
            Value::String(text)
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
            params[map["Ref"].as_str().unwrap()]["Default"].clone()
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, params)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, params)).collect()),
        other => other.clone(),
    }
}

/// One EventBridge API call to moto (JSON protocol; moto does not check signatures).
async fn eventbridge(moto: &Moto, operation: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(moto.endpoint())
        .header("X-Amz-Target", format!("AWSEvents.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/events/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(
        status.is_success(),
        "EventBridge {operation} in moto: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A fixture event with its watched-name field set to `name`.
fn fixture(file: &str, field: &str, name: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap())
            .unwrap();
    event["detail"][field] = json!(name);
    event
}

async fn drain(moto: &Moto, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = moto
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body.unwrap_or_default());
            moto.sqs()
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_exactly_the_product_events_of_the_watched_names_to_the_queue() {
    let template = template();
    let params = &template["Parameters"];
    let moto = Moto::start().await;
    let url = moto
        .sqs()
        .create_queue()
        .queue_name("stack-events")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = queue_arn(&moto, &url).await;
    for (name, rule) in event_rules(&template) {
        let pattern = resolve(&rule["EventPattern"], params);
        eventbridge(
            &moto,
            "PutRule",
            json!({"Name": name, "EventPattern": pattern.to_string(), "State": "ENABLED"}),
        )
        .await;
        eventbridge(
            &moto,
            "PutTargets",
            json!({"Rule": name, "Targets": [{"Id": "queue", "Arn": arn}]}),
        )
        .await;
    }

    let watched = [
        (
            "codepipeline-pipeline-failed.json",
            "pipeline",
            "kiro-pipeline-production",
        ),
        (
            "codepipeline-stage-started.json",
            "pipeline",
            "kiro-pipeline-staging",
        ),
        (
            "codepipeline-action-failed.json",
            "pipeline",
            "kiro-pipeline-test",
        ),
        (
            "cloudwatch-alarm-state-change.json",
            "alarmName",
            "kiro-pipeline-production-pipeline-failures",
        ),
        (
            "codebuild-build-state-change-succeeded.json",
            "project-name",
            "kiro-pipeline-production-build",
        ),
    ];
    let ignored = [
        (
            "codepipeline-pipeline-failed.json",
            "pipeline",
            "other-pipeline-production",
        ),
        (
            "codepipeline-action-failed.json",
            "pipeline",
            "kiro-pipelinex",
        ),
        (
            "cloudwatch-alarm-state-change.json",
            "alarmName",
            "billing-alarm",
        ),
        (
            "codebuild-build-state-change-succeeded.json",
            "project-name",
            "other-build",
        ),
        // Not an input docs/specification.md lists, even for a watched project.
        (
            "codebuild-build-phase-change.json",
            "project-name",
            "kiro-pipeline-production-build",
        ),
    ];
    let entries: Vec<Value> = watched
        .iter()
        .chain(&ignored)
        .map(|(file, field, name)| {
            let event = fixture(file, field, name);
            json!({
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": event["detail"].to_string(),
                "Resources": event["resources"],
            })
        })
        .collect();
    let put = eventbridge(&moto, "PutEvents", json!({"Entries": entries})).await;
    assert_eq!(put["FailedEntryCount"], 0, "{put}");

    let mut arrived: Vec<(String, String)> = drain(&moto, &url)
        .await
        .iter()
        .map(|body| {
            let event: Value = serde_json::from_str(body).unwrap();
            let detail = &event["detail"];
            let name = ["pipeline", "alarmName", "project-name"]
                .iter()
                .find_map(|f| detail[f].as_str())
                .unwrap_or_default();
            (
                event["detail-type"].as_str().unwrap().to_string(),
                name.to_string(),
            )
        })
        .collect();
    arrived.sort();
    let mut expected: Vec<(String, String)> = watched
        .iter()
        .map(|(file, field, name)| {
            let event = fixture(file, field, name);
            (
                event["detail-type"].as_str().unwrap().to_string(),
                name.to_string(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(
        arrived, expected,
        "the EventBridge rules must deliver exactly docs/specification.md section 1's events for names under \
         PipelineNamePrefix-, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_subscription_delivers_pipeline_notifications_but_not_the_daemons_own_posts() {
    let template = template();
    let for_each = &template["Resources"]["Fn::ForEach::PipelineTopicEnvironments"];
    let inner = &for_each[2]["Fn::ForEach::PipelineTopics"][2];
    let subscription = &inner.as_object().unwrap().values().next().unwrap()["Properties"];
    assert!(
        subscription["FilterPolicy"].is_object(),
        "the pipeline-topic subscriptions need a FilterPolicy that drops the daemon's own posts \
         (they carry an incident_key attribute)"
    );
    assert_eq!(subscription["Protocol"], "sqs");
    assert_eq!(
        subscription["Endpoint"],
        json!({"Fn::GetAtt": ["EventQueue", "Arn"]})
    );

    let moto = Moto::start().await;
    let url = moto
        .sqs()
        .create_queue()
        .queue_name("stack-events")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let topic = moto
        .sns()
        .create_topic()
        .name("kiro-pipeline-production-deployments")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    moto.sns()
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn(&moto, &url).await)
        .attributes("FilterPolicy", subscription["FilterPolicy"].to_string())
        .attributes(
            "FilterPolicyScope",
            subscription["FilterPolicyScope"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let notification = json!({"event": "deployment_started", "environment": "production"});
    moto.sns()
        .publish()
        .topic_arn(&topic)
        .message(notification.to_string())
        .send()
        .await
        .unwrap();
    // What crates/daemon/src/notify/outbox.rs publishes: a text post with the incident's key.
    let attribute = |v: &str| {
        aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    moto.sns()
        .publish()
        .topic_arn(&topic)
        .subject("HIGH production: Pipeline execution failed")
        .message("Pipeline execution failed - kiro-pipeline-production")
        .message_attributes(
            "incident_key",
            attribute("pipeline_execution_failure/kiro-pipeline-production/x"),
        )
        .message_attributes("severity", attribute("high"))
        .send()
        .await
        .unwrap();
    let bodies = drain(&moto, &url).await;
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| {
            let envelope: Value = serde_json::from_str(b).unwrap();
            serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap_or(Value::Null)
        })
        .collect();
    assert_eq!(
        messages,
        vec![notification],
        "the queue must get the pipeline's notification and not the daemon's own post (the \
         subscription's FilterPolicy on incident_key)"
    );
}
