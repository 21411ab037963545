//! A fake Slack: the incoming webhook and the Web API methods the daemon uses
//! (`chat.postMessage`, thread replies through it, `chat.update`, `views.open`,
//! `usergroups.users.list`), and interaction `response_url`s.
//!
//! It enforces what would make a real post fail (auth, Slack's size limits, unknown message on
//! update) and can answer rate limits and server errors on demand, so the daemon's handling of
//! those is tested against the same responses Slack gives.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::recorder::Recorder;
use crate::server::Server;

/// Bot token the fake accepts unless started with another.
pub const DEFAULT_BOT_TOKEN: &str = "xoxb-pipeline-responder-test";
/// Slack refuses longer message text (`msg_too_long`).
const MAX_TEXT_CHARS: usize = 40_000;
/// Slack refuses more blocks per message (`invalid_blocks`).
const MAX_BLOCKS: usize = 50;
/// Longest `text` of a section block; a log excerpt pasted whole would exceed it.
const MAX_SECTION_TEXT_CHARS: usize = 3_000;
/// Longest `text` of a header block.
const MAX_HEADER_TEXT_CHARS: usize = 150;

/// Which Slack door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackEndpoint {
    /// `POST /webhook`, an incoming webhook.
    Webhook,
    /// `POST /api/chat.postMessage`, new messages and thread replies.
    PostMessage,
    /// `POST /api/chat.update`, editing a posted message.
    Update,
    /// `POST /api/views.open`, a modal opened for an interaction's `trigger_id`.
    ViewsOpen,
    /// `POST /api/usergroups.users.list` (a form: `usergroup=S…`); `body` holds the form.
    UsergroupUsers,
    /// `POST /response/<id>`, an answer through an interaction's `response_url`.
    Response,
}

/// What the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackOutcome {
    /// Slack took the message; `ts` identifies it (Web API only).
    Accepted { ts: Option<String> },
    /// Slack refused it; `error` is Slack's code (`invalid_auth`, `invalid_blocks`, ...).
    Rejected { error: String },
    /// An injected fault answered instead.
    Fault {
        status: u16,
        retry_after: Option<u64>,
    },
}

/// One request as Slack saw it.
#[derive(Debug, Clone)]
pub struct SlackPost {
    pub endpoint: SlackEndpoint,
    /// The `Authorization` header, to check the bot token is sent (and the webhook sends none).
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body; `Null` when it was not JSON.
    pub body: Value,
    pub received_at: DateTime<Utc>,
    /// HTTP status answered.
    pub status: u16,
    pub outcome: SlackOutcome,
    /// For [`SlackEndpoint::Response`]: the `<id>` of the `response_url` answered.
    pub response_id: Option<String>,
}

impl SlackPost {
    pub fn text(&self) -> Option<&str> {
        self.body.get("text").and_then(Value::as_str)
    }

    pub fn channel(&self) -> Option<&str> {
        self.body.get("channel").and_then(Value::as_str)
    }

    /// Set on thread replies: the `ts` of the parent message.
    pub fn thread_ts(&self) -> Option<&str> {
        self.body.get("thread_ts").and_then(Value::as_str)
    }

    pub fn blocks(&self) -> &[Value] {
        self.body
            .get("blocks")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self.outcome, SlackOutcome::Accepted { .. })
    }

    /// The `ts` Slack gave an accepted Web API message.
    pub fn ts(&self) -> Option<&str> {
        match &self.outcome {
            SlackOutcome::Accepted { ts } => ts.as_deref(),
            _ => None,
        }
    }
}

/// A running fake Slack; stops when dropped.
#[derive(Debug)]
pub struct SlackFake {
    server: Server,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The only bot token the Web API accepts.
    token: String,
    posts: Recorder<SlackPost>,
    state: Mutex<SlackState>,
}

#[derive(Debug, Default)]
struct SlackState {
    /// Faults to answer the next requests with, in order.
    faults: VecDeque<(u16, Option<u64>)>,
    /// Posted messages, `ts` → channel, so `chat.update` can refuse unknown ones.
    messages: HashMap<String, String>,
    /// Makes every `ts` unique.
    sequence: u64,
    /// User groups: id → member user ids.
    usergroups: HashMap<String, Vec<String>>,
    /// Answers per `response_url`: Slack takes at most 5.
    responses: HashMap<String, usize>,
}

/// Slack's title of a modal is at most 24 characters; its `private_metadata` 3,000.
const MAX_VIEW_TITLE_CHARS: usize = 24;
const MAX_PRIVATE_METADATA_CHARS: usize = 3_000;
/// A `response_url` takes up to 5 answers (within 30 minutes).
const MAX_RESPONSES: usize = 5;

impl SlackFake {
    /// Starts the fake accepting [`DEFAULT_BOT_TOKEN`].
    pub async fn start() -> SlackFake {
        SlackFake::start_with_token(DEFAULT_BOT_TOKEN).await
    }

    pub async fn start_with_token(token: &str) -> SlackFake {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            posts: Recorder::new(),
            state: Mutex::new(SlackState::default()),
        });
        let router = Router::new()
            .route("/webhook", post(webhook))
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .route("/api/views.open", post(views_open))
            .route("/api/usergroups.users.list", post(usergroup_users))
            .route("/response/{id}", post(respond))
            .with_state(Arc::clone(&shared));
        SlackFake {
            server: Server::spawn(router).await,
            shared,
        }
    }

    /// The incoming-webhook URL (`slack.webhook_url`).
    pub fn webhook_url(&self) -> String {
        format!("{}/webhook", self.server.base_url())
    }

    /// The Web API base (`slack.api_base_url`), without a trailing slash.
    pub fn api_base_url(&self) -> String {
        format!("{}/api", self.server.base_url())
    }

    pub fn bot_token(&self) -> &str {
        &self.shared.token
    }

    /// A `response_url` as Slack puts in an interaction payload (answers land in `posts()` as
    /// [`SlackEndpoint::Response`]).
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.server.base_url())
    }

    /// Makes user group `id` (`S…`) hold `users` for `usergroups.users.list`.
    pub fn set_usergroup(&self, id: &str, users: &[&str]) {
        self.shared.lock().usergroups.insert(
            id.to_owned(),
            users.iter().map(|u| (*u).to_owned()).collect(),
        );
    }

    /// The requests that came through `endpoint`, in arrival order.
    pub fn posts_to(&self, endpoint: SlackEndpoint) -> Vec<SlackPost> {
        self.posts()
            .into_iter()
            .filter(|p| p.endpoint == endpoint)
            .collect()
    }

    /// Waits until a request through `endpoint` satisfies `check`; returns it. Panics after
    /// `timeout` with what did arrive there.
    pub async fn wait_for(
        &self,
        endpoint: SlackEndpoint,
        timeout: Duration,
        check: impl Fn(&SlackPost) -> bool,
    ) -> SlackPost {
        let what = format!("a {endpoint:?} request as expected");
        let found = |posts: &[SlackPost]| {
            posts
                .iter()
                .find(|p| p.endpoint == endpoint && check(p))
                .cloned()
        };
        let posts = self
            .shared
            .posts
            .wait_until(&what, timeout, |posts| found(posts).is_some())
            .await;
        found(&posts).unwrap_or_else(|| unreachable!("wait_until returned without a match"))
    }

    /// The texts answered through the `response_url` of `id` (see [`Self::response_url`]).
    pub fn responses(&self, id: &str) -> Vec<String> {
        self.posts_to(SlackEndpoint::Response)
            .into_iter()
            .filter(|p| p.response_id.as_deref() == Some(id) && p.is_accepted())
            .filter_map(|p| p.text().map(str::to_owned))
            .collect()
    }

    /// Every request received, refused ones included, in arrival order.
    pub fn posts(&self) -> Vec<SlackPost> {
        self.shared.posts.snapshot()
    }

    /// Only the messages Slack took.
    pub fn accepted(&self) -> Vec<SlackPost> {
        self.posts()
            .into_iter()
            .filter(SlackPost::is_accepted)
            .collect()
    }

    /// Waits until at least `n` requests arrived (refused ones count); panics after `timeout`.
    pub async fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<SlackPost> {
        let what = format!("{n} Slack requests");
        self.shared
            .posts
            .wait_until(&what, timeout, |posts| posts.len() >= n)
            .await
    }

    /// Waits until at least `n` messages were accepted; returns only those.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<SlackPost> {
        let what = format!("{n} accepted Slack messages");
        let accepted = |posts: &[SlackPost]| posts.iter().filter(|p| p.is_accepted()).count();
        self.shared
            .posts
            .wait_until(&what, timeout, |posts| accepted(posts) >= n)
            .await
            .into_iter()
            .filter(SlackPost::is_accepted)
            .collect()
    }

    /// The next `n` requests get HTTP `status` (429 for a rate limit, 5xx for an outage), with
    /// `Retry-After: <secs>` when given, whatever their content.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut state = self.shared.lock();
        state
            .faults
            .extend(std::iter::repeat_n((status, retry_after), n));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SlackState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn webhook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&shared, SlackEndpoint::Webhook, &headers, &body)
}

async fn post_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, SlackEndpoint::PostMessage, &headers, &body)
}

async fn update(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&shared, SlackEndpoint::Update, &headers, &body)
}

async fn views_open(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, SlackEndpoint::ViewsOpen, &headers, &body)
}

async fn usergroup_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, SlackEndpoint::UsergroupUsers, &headers, &body)
}

/// A `response_url`: JSON in, `ok` out; more than 5 answers to one URL are refused (404
/// `used_url`), as Slack does.
async fn respond(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header_text(header::CONTENT_TYPE);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, outcome, text) = {
        let mut state = shared.lock();
        let used = state.responses.entry(id.clone()).or_default();
        *used += 1;
        let rejected = |error: &str| SlackOutcome::Rejected {
            error: error.to_owned(),
        };
        if *used > MAX_RESPONSES {
            (404, rejected("used_url"), "used_url")
        } else if !content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/json"))
            || !json.is_object()
        {
            (400, rejected("invalid_payload"), "invalid_payload")
        } else if json
            .get("text")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            (400, rejected("no_text"), "no_text")
        } else {
            (200, SlackOutcome::Accepted { ts: None }, "ok")
        }
    };
    shared.posts.push(SlackPost {
        endpoint: SlackEndpoint::Response,
        authorization: header_text(header::AUTHORIZATION),
        content_type,
        body: json,
        received_at: Utc::now(),
        status,
        outcome,
        response_id: Some(id),
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, text).into_response()
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: u16,
    outcome: SlackOutcome,
    /// JSON for the Web API, plain text for the webhook.
    body: Result<Value, &'static str>,
}

fn handle(shared: &Shared, endpoint: SlackEndpoint, headers: &HeaderMap, body: &[u8]) -> Response {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header_text(header::AUTHORIZATION);
    let content_type = header_text(header::CONTENT_TYPE);
    let body: Value = if endpoint == SlackEndpoint::UsergroupUsers {
        // A read method takes a form; kept as an object of its fields.
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            })
            .unwrap_or(Value::Null)
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    let reply = decide(
        shared,
        endpoint,
        authorization.as_deref(),
        content_type.as_deref(),
        &body,
    );
    shared.posts.push(SlackPost {
        endpoint,
        authorization,
        content_type,
        body,
        received_at: Utc::now(),
        status: reply.status,
        outcome: reply.outcome.clone(),
        response_id: None,
    });
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Ok(json) => (status, axum::Json(json)).into_response(),
        Err(text) => (status, text).into_response(),
    };
    if let SlackOutcome::Fault {
        retry_after: Some(secs),
        ..
    } = reply.outcome
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Slack's answer: faults first (a rate limit precedes everything), then auth, then content.
fn decide(
    shared: &Shared,
    endpoint: SlackEndpoint,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: &Value,
) -> Reply {
    let is_api = endpoint != SlackEndpoint::Webhook;
    let mut state = shared.lock();
    if let Some((status, retry_after)) = state.faults.pop_front() {
        let (code, text) = if status == 429 {
            ("ratelimited", "rate_limited")
        } else {
            ("fatal_error", "internal_error")
        };
        return Reply {
            status,
            outcome: SlackOutcome::Fault {
                status,
                retry_after,
            },
            body: if is_api {
                Ok(error_json(code))
            } else {
                Err(text)
            },
        };
    }
    let refused = |code: &'static str| Reply {
        // The Web API reports errors in a 200 body; the webhook with a 400 and a text code.
        status: if is_api { 200 } else { 400 },
        outcome: SlackOutcome::Rejected {
            error: code.to_owned(),
        },
        body: if is_api {
            Ok(error_json(code))
        } else {
            Err(code)
        },
    };
    if is_api {
        match authorization.and_then(|h| h.strip_prefix("Bearer ")) {
            None => return refused("not_authed"),
            Some(token) if token != shared.token => return refused("invalid_auth"),
            Some(_) => {}
        }
        if endpoint == SlackEndpoint::UsergroupUsers {
            if !content_type.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded")) {
                return refused("invalid_arguments");
            }
            let group = body.get("usergroup").and_then(Value::as_str);
            return match group.and_then(|g| state.usergroups.get(g)) {
                None => refused("no_such_subteam"),
                Some(users) => Reply {
                    status: 200,
                    outcome: SlackOutcome::Accepted { ts: None },
                    body: Ok(json!({"ok": true, "users": users})),
                },
            };
        }
        // A body not sent as JSON is read as a form by Slack, which loses every field.
        if !content_type.is_some_and(|ct| ct.starts_with("application/json")) {
            return refused("invalid_form_data");
        }
        if endpoint == SlackEndpoint::ViewsOpen {
            return match check_view(body) {
                Err(code) => refused(code),
                Ok(()) => {
                    state.sequence += 1;
                    let id = format!("V{:08}", state.sequence);
                    let mut view = body["view"].clone();
                    view["id"] = json!(id);
                    Reply {
                        status: 200,
                        outcome: SlackOutcome::Accepted { ts: None },
                        body: Ok(json!({"ok": true, "view": view})),
                    }
                }
            };
        }
    }
    if !body.is_object() {
        return refused(if is_api {
            "invalid_json"
        } else {
            "invalid_payload"
        });
    }
    if let Err(code) = check_content(body) {
        return refused(code);
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    match endpoint {
        SlackEndpoint::Webhook => Reply {
            status: 200,
            outcome: SlackOutcome::Accepted { ts: None },
            body: Err("ok"),
        },
        SlackEndpoint::PostMessage => {
            let channel = field("channel");
            if channel.is_empty() {
                return refused("channel_not_found");
            }
            state.sequence += 1;
            let ts = format!("{}.{:06}", Utc::now().timestamp(), state.sequence);
            state.messages.insert(ts.clone(), channel.to_owned());
            let mut message = json!({"type": "message", "text": field("text"), "ts": ts});
            if let Some(thread_ts) = body.get("thread_ts") {
                message["thread_ts"] = thread_ts.clone();
            }
            accepted(
                ts.clone(),
                json!({"ok": true, "channel": channel, "ts": ts, "message": message}),
            )
        }
        SlackEndpoint::ViewsOpen | SlackEndpoint::UsergroupUsers | SlackEndpoint::Response => {
            refused("unknown_method")
        }
        SlackEndpoint::Update => {
            let (channel, ts) = (field("channel"), field("ts"));
            match state.messages.get(ts) {
                None => refused("message_not_found"),
                Some(posted_in) if posted_in != channel => refused("channel_not_found"),
                Some(_) => accepted(
                    ts.to_owned(),
                    json!({"ok": true, "channel": channel, "ts": ts, "text": field("text")}),
                ),
            }
        }
    }
}

fn accepted(ts: String, body: Value) -> Reply {
    Reply {
        status: 200,
        outcome: SlackOutcome::Accepted { ts: Some(ts) },
        body: Ok(body),
    }
}

fn error_json(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

/// `views.open`'s rules: a trigger, a modal with a short title, metadata within its limit.
fn check_view(body: &Value) -> Result<(), &'static str> {
    if body
        .get("trigger_id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("invalid_trigger_id");
    }
    let view = body.get("view").ok_or("invalid_arguments")?;
    if view.get("type").and_then(Value::as_str) != Some("modal") {
        return Err("invalid_arguments");
    }
    let title = view.pointer("/title/text").and_then(Value::as_str);
    if title.is_none_or(|t| t.is_empty() || t.chars().count() > MAX_VIEW_TITLE_CHARS) {
        return Err("invalid_arguments");
    }
    let meta = view.get("private_metadata").and_then(Value::as_str);
    if meta.is_some_and(|m| m.chars().count() > MAX_PRIVATE_METADATA_CHARS) {
        return Err("invalid_arguments");
    }
    if view
        .get("blocks")
        .and_then(Value::as_array)
        .is_none_or(|b| b.is_empty() || b.len() > 100)
    {
        return Err("invalid_arguments");
    }
    Ok(())
}

/// Slack's content rules that a well-meaning daemon could break.
fn check_content(body: &Value) -> Result<(), &'static str> {
    let text = body.get("text").and_then(Value::as_str);
    let blocks = body.get("blocks").and_then(Value::as_array);
    let has_attachments = body
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if text.is_none_or(str::is_empty) && blocks.is_none_or(Vec::is_empty) && !has_attachments {
        return Err("no_text");
    }
    if text.is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS) {
        return Err("msg_too_long");
    }
    let blocks = blocks.map_or(&[][..], Vec::as_slice);
    if blocks.len() > MAX_BLOCKS {
        return Err("invalid_blocks");
    }
    for block in blocks {
        let limit = match block.get("type").and_then(Value::as_str) {
            Some("section") => MAX_SECTION_TEXT_CHARS,
            Some("header") => MAX_HEADER_TEXT_CHARS,
            Some(_) => continue,
            None => return Err("invalid_blocks"),
        };
        let block_text = block.pointer("/text/text").and_then(Value::as_str);
        if block_text.is_some_and(|t| t.chars().count() > limit) {
            return Err("invalid_blocks");
        }
    }
    Ok(())
}
