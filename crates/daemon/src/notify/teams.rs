//! Microsoft Teams: a Workflows incoming webhook ("Post to a channel when a webhook request is
//! received") takes a message with one Adaptive Card: the headline, the facts, the text, and
//! buttons to the pipeline and details. Untrusted text is escaped for the card's Markdown.

use super::{post_json, JsonHook, Post, SendError, Summary};
use pipeline_responder_core::config::TeamsConfig;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Teams {
    pub config: TeamsConfig,
    pub http: reqwest::Client,
}

/// Escapes what Adaptive Card Markdown would interpret (emphasis, links, lists, headings), so
/// a commit message cannot make a link or hide text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.push(' ');
            continue;
        }
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '`'
                | '>'
                | '~'
                | '<'
                | '-'
                | '+'
                | '!'
                | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The card of one post.
pub fn card(post: &Post<'_>) -> Value {
    let i = post.incident;
    let mut facts = vec![
        json!({"title": "Environment", "value": escape(&i.environment)}),
        json!({"title": "Pipeline", "value": escape(&i.pipeline)}),
        json!({"title": "Severity", "value": i.severity.as_str()}),
        json!({"title": "Status", "value": format!("{:?}", i.status).to_lowercase()}),
    ];
    if let Some(stage) = &i.stage {
        facts.push(json!({"title": "Stage", "value": escape(stage)}));
    }
    let actions: Vec<Value> = post
        .message
        .links
        .iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": escape(&post.message.subject), "weight": "Bolder", "size": "Medium", "wrap": true},
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": escape(&post.message.plain), "wrap": true},
        ],
        "actions": actions,
    })
}

impl JsonHook for Teams {
    const KIND: &'static str = "teams";

    fn post_body(&self, post: &Post<'_>) -> Value {
        card(post)
    }

    fn summary_body(&self, summary: &Summary) -> Value {
        json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": escape(&summary.subject), "weight": "Bolder", "wrap": true},
                {"type": "TextBlock", "text": escape(&summary.plain), "wrap": true},
            ],
        })
    }

    async fn deliver(&self, target: &str, card: Value) -> Result<(), SendError> {
        let Some(url) = self.config.webhooks.get(target) else {
            return Err(SendError::permanent(format!(
                "teams: no webhook named {target:?}"
            )));
        };
        let body = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        });
        post_json(self.http.post(url.expose()), &body, "teams webhook")
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_is_escaped() {
        assert_eq!(
            super::escape("[click](https://evil) **x**"),
            r"\[click\]\(https://evil\) \*\*x\*\*"
        );
        assert_eq!(super::escape("a\u{1b}b\nc"), "a b\nc");
    }
}
