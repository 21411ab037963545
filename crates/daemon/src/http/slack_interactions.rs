//! `POST /slack/interactions`: the Acknowledge button here, the action buttons and the reject
//! modal in `slack_actions`. Every request is verified with the Slack
//! signing secret (v0 HMAC-SHA256 over `v0:{timestamp}:{body}`) and refused when older than five
//! minutes, so a captured request cannot be replayed; nothing changes on a bad request.

use crate::http::Api;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Slack's replay window.
const MAX_AGE_SECS: u64 = 300;

/// Whether `signature` (`v0=<hex>`) signs `v0:{timestamp}:{body}` with `secret`, and the
/// timestamp is within the replay window of `now` (epoch seconds).
pub fn verify(secret: &str, timestamp: &str, body: &str, signature: &str, now: i64) -> bool {
    // Checked: any i64 (i64::MIN too) is refused as stale, never overflows.
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if now.abs_diff(ts) > MAX_AGE_SECS {
        return false;
    }
    let Some(hex_sig) = signature.strip_prefix("v0=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    // Over the header's bytes as sent, not a re-formatted number.
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body.as_bytes());
    // Constant-time comparison inside the MAC crate.
    mac.verify_slice(&expected).is_ok()
}

pub async fn interactions(State(api): State<Api>, headers: HeaderMap, body: String) -> Response {
    let Some(secret) = api
        .config
        .notifiers
        .slack
        .as_ref()
        .and_then(|s| s.signing_secret.as_ref())
    else {
        return (
            StatusCode::UNAUTHORIZED,
            "slack signing_secret is not configured",
        )
            .into_response();
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    if !verify(
        secret.expose(),
        header("x-slack-request-timestamp"),
        &body,
        header("x-slack-signature"),
        Utc::now().timestamp(),
    ) {
        tracing::warn!("Slack interaction refused: bad signature or stale timestamp");
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    let payload: Option<Value> = serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "payload"))
        .and_then(|(_, p)| serde_json::from_str(&p).ok());
    let Some(payload) = payload else {
        return (StatusCode::BAD_REQUEST, "no payload").into_response();
    };
    if payload["type"] == "view_submission" {
        super::slack_actions::submitted(&api, &payload);
        // An empty 200 closes the modal; the outcome is answered to the person afterwards.
        return StatusCode::OK.into_response();
    }
    let user = payload["user"]["username"]
        .as_str()
        .or(payload["user"]["name"].as_str())
        .or(payload["user"]["id"].as_str())
        .unwrap_or("someone");
    let mut acked = Vec::new();
    for action in payload["actions"].as_array().cloned().unwrap_or_default() {
        let Some(key) = action["value"].as_str() else {
            continue;
        };
        let id = action["action_id"].as_str().unwrap_or_default();
        if id != "acknowledge" {
            // Acted on after the answer: Slack wants one within 3 s.
            super::slack_actions::clicked(&api, &payload, id, key);
            continue;
        }
        let by = format!("@{user} (Slack)");
        match super::incident_actions::acknowledge(&api, key, &by).await {
            Ok(super::incident_actions::Outcome::Done) => acked.push(key.to_string()),
            Ok(_) => {}
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        }
    }
    tracing::debug!(acknowledged = acked.len(), "Slack interaction handled");
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: i64, body: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!());
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn slack_signatures_are_checked_with_a_five_minute_replay_window() {
        // Slack's documented example.
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let ts = 1531420618;
        assert!(verify(
            secret,
            "1531420618",
            body,
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ts
        ));
        assert!(verify(
            secret,
            "1531420618",
            body,
            &sign(secret, ts, body),
            ts + 299
        ));
        assert!(
            !verify(
                secret,
                "1531420618",
                body,
                &sign(secret, ts, body),
                ts + 301
            ),
            "too old"
        );
        assert!(
            !verify(
                secret,
                "1531420618",
                &format!("{body}x"),
                &sign(secret, ts, body),
                ts
            ),
            "body changed"
        );
        assert!(
            !verify(
                "other-secret",
                "1531420618",
                body,
                &sign(secret, ts, body),
                ts
            ),
            "other secret"
        );
        assert!(!verify(secret, "nope", body, "v0=00", ts));
        assert!(!verify(secret, "1531420618", body, "sha1=abc", ts));
    }

    #[test]
    fn extreme_or_respelled_timestamps_are_refused_without_overflow() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = "payload=%7B%7D";
        for ts in [i64::MIN, i64::MAX, -1, 0] {
            let header = ts.to_string();
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
                .unwrap_or_else(|_| unreachable!());
            mac.update(format!("v0:{header}:{body}").as_bytes());
            let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
            for now in [1_700_000_000, i64::MIN, i64::MAX] {
                // Well signed; refused unless it is within five minutes of `now`.
                let fresh = now == ts;
                assert_eq!(verify(secret, &header, body, &signature, now), fresh);
            }
        }
        // The signature covers the header as sent: "+1531420618" or " 1531420618" signed as
        // "1531420618" is not the same request.
        let ts = 1531420618;
        let signed = sign(secret, ts, body);
        assert!(verify(secret, "1531420618", body, &signed, ts));
        assert!(!verify(secret, "+1531420618", body, &signed, ts));
        assert!(!verify(secret, " 1531420618", body, &signed, ts));
    }
}
