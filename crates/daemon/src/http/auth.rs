//! Who may call: the bearer token on every path but the probes, the scrape and the signed
//! webhooks, checked before routing; and every request's deadline.

use super::{error, Api, REQUEST_TIMEOUT};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
/// Paths that answer without the bearer token: probes, the scrape, and the webhooks of Slack
/// and the pagers (which sign their requests).
pub(super) fn public(path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/readyz"
            | "/metrics"
            | "/slack/interactions"
            | "/pagerduty/webhook"
            | "/opsgenie/webhook"
    )
}

/// In front of routing: the token is checked before any body is read and before a bad path is
/// answered (an unauthenticated caller learns nothing but 401); every request has a deadline.
pub(super) async fn guard(
    State(api): State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !public(request.uri().path()) {
        if let Some(refused) = unauthorized(&api, request.headers()) {
            return refused;
        }
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "the request was not completed in time",
        ),
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 401 answer, unless the request carries the API token.
pub(super) fn unauthorized(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &api.config.http.api_token else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "the API is disabled: set http.api_token",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same(presented.as_bytes(), token.expose().as_bytes()) {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(super::same(b"secret-token", b"secret-token"));
        assert!(!super::same(b"secret-token", b"secret-tokeX"));
        assert!(!super::same(b"secret", b"secret-token"));
        assert!(!super::same(b"", b"x"));
    }
}
