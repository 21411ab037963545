//! The action buttons of a Slack post (Approve, Reject, Retry failed stage, Stop and restart,
//! Start new execution) and the reject modal. The interaction is answered at once (Slack wants
//! an answer within 3 s); the action runs after, and its outcome goes to the person who clicked
//! only (`response_url`, ephemeral), and to the incident's thread and timeline.

use super::Api;
use crate::actions::{Answer, Request};
use pipeline_responder_core::actions::{self, ActionKind};
use serde_json::{json, Value};

/// The modal's `callback_id`.
const REJECT_VIEW: &str = "reject";
/// Longest reason kept (the approval summary is at most 512 characters, with the name).
const REASON_CHARS: usize = 400;

/// A button of an action was clicked on the post of incident `key`.
pub(super) fn clicked(api: &Api, payload: &Value, action_id: &str, key: &str) {
    let Some(action) = ActionKind::parse(action_id) else {
        tracing::debug!(action_id = %action_id, "Slack interaction for no known action; ignored");
        return;
    };
    let (api, key) = (api.clone(), key.to_string());
    let user = payload["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let trigger = payload["trigger_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let response_url = payload["response_url"].as_str().map(String::from);
    tokio::spawn(async move {
        if action == ActionKind::Reject {
            open_reject(&api, &key, &trigger, response_url.as_deref()).await;
            return;
        }
        let request = Request {
            key,
            action,
            by: user,
            reason: None,
            interaction: Some(format!("slack/{trigger}/{}", action.as_str())),
            slack_user: true,
        };
        perform(&api, request, response_url.as_deref()).await;
    });
}

/// The reject modal was submitted with a reason.
pub(super) fn submitted(api: &Api, payload: &Value) {
    let view = &payload["view"];
    if view["callback_id"] != REJECT_VIEW {
        return;
    }
    let meta: Value = view["private_metadata"]
        .as_str()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let Some(key) = meta["key"].as_str().map(String::from) else {
        return;
    };
    let response_url = meta["response_url"].as_str().map(String::from);
    let reason: String = view
        .pointer("/state/values/reason/reason/value")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(REASON_CHARS)
        .collect();
    let id = payload["trigger_id"]
        .as_str()
        .or(view["id"].as_str())
        .unwrap_or_default();
    let request = Request {
        key,
        action: ActionKind::Reject,
        by: payload["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        reason: Some(reason),
        interaction: Some(format!("slack/{id}/reject")),
        slack_user: true,
    };
    let api = api.clone();
    tokio::spawn(async move { perform(&api, request, response_url.as_deref()).await });
}

async fn perform(api: &Api, request: Request, response_url: Option<&str>) {
    let key = request.key.clone();
    let text = match api.actions.perform(request).await {
        Ok(Answer::Recorded(_, text)) => text,
        Ok(Answer::Duplicate) => return,
        Ok(Answer::NotFound) => "Not done: no such incident (it may have been pruned)".into(),
        Err(e) => {
            tracing::warn!(incident_key = %key, error = %e, "Action not taken: the store failed");
            format!("Not done: {e}; nothing was called. Try again.")
        }
    };
    tell(api, response_url, &text).await;
}

/// Opens the modal that asks why, naming what will be rejected.
async fn open_reject(api: &Api, key: &str, trigger: &str, response_url: Option<&str>) {
    let Some(slack) = &api.actions.slack else {
        return;
    };
    let what = match api.store.incident(key).await {
        Ok(Some((incident, _))) => actions::describe(&incident, ActionKind::Reject),
        _ => "Reject this approval.".to_string(),
    };
    let meta = json!({"key": key, "response_url": response_url}).to_string();
    if meta.len() > 3000 {
        tell(api, response_url, "Not done: the incident key is too long for a Slack modal; use `pipeline-responder reject`").await;
        return;
    }
    let view = json!({
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "title": {"type": "plain_text", "text": "Reject approval"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": meta,
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": clip(&what, 2900)}},
            {"type": "input", "block_id": "reason",
             "label": {"type": "plain_text", "text": "Reason (sent as the approval's summary)"},
             "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true,
                         "min_length": 1, "max_length": REASON_CHARS}}
        ]
    });
    if let Err(e) = slack.open_view(trigger, &view).await {
        tracing::warn!(incident_key = %key, error = %e.message, "Slack views.open failed");
        let text = format!(
            "Not done: the reject dialog could not open ({}); use `pipeline-responder reject`",
            e.message
        );
        tell(api, response_url, &text).await;
    }
}

/// Answers the person who clicked, visible to them only.
async fn tell(api: &Api, response_url: Option<&str>, text: &str) {
    let (Some(url), Some(slack)) = (response_url, &api.actions.slack) else {
        return;
    };
    if let Err(e) = slack.respond_ephemeral(url, text).await {
        tracing::warn!(error = %e.message, "Slack response_url answer failed");
    }
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
