//! The one HTTP listener under a flood (issue 14): idle and slowloris connections are closed by
//! the header timeout, at `http.max_connections` the oldest idle connection makes room so
//! `/healthz` still answers, and a wrong token is refused before routing and before the body is
//! read.
#![allow(clippy::unwrap_used)]

use super::common::create_queues;
use crate::support::{temp_dir, Daemon, Setup};
use pipeline_responder_e2e::{Moto, SlackFake};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "flood-api-token-0123456789abcdef0123";

/// Whether the server closed `stream` (EOF or reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before closing is fine; keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn raw_status(addr: &str, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(String::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_idle_and_over_cap_connections_are_closed_and_the_token_is_checked_first() {
    let moto = Moto::start().await;
    let slack = SlackFake::start().await;
    let queues = create_queues(&moto, "faults-flood", 5).await;
    let env = [("TEST_API_TOKEN", TOKEN.to_string())];
    let setup = Setup {
        env: &env,
        http_extra: "max_connections = 16",
        ..Setup::default()
    };
    let daemon = Daemon::launch(&moto, &slack, &queues.url, temp_dir("faults-flood"), &setup).await;
    let addr = daemon.http_addr().await;

    // The token before routing and before the body: a bad path is 401, and a 2 MB body that is
    // never sent is refused at once rather than waited for.
    let status = raw_status(&addr, "GET /no/such/path HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 401")),
        "{status:?}"
    );
    let status = raw_status(
        &addr,
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{\"a\":",
    )
    .await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 401")),
        "{status:?}"
    );
    // With the token, a body over the route's limit is refused by its size.
    let big = "x".repeat(300 * 1024);
    let over = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/incidents/k/ack"))
        .bearer_auth(TOKEN)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 413);

    // Slowloris: headers that never end; and connections that never send anything.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // At the cap (16 held, none with a request in flight): the health check still gets in, by
    // closing the oldest idle connection.
    let healthz = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(
        healthz.as_ref().is_ok_and(|r| r.status() == 200),
        "/healthz refused at the connection cap: {healthz:?}\n{}",
        daemon.log()
    );
    assert!(
        closed_within(&mut slow[0], Duration::from_secs(60)).await,
        "the oldest idle connection was not closed to make room"
    );
    // The header timeout (10 s) closes every slowloris connection, even one that keeps
    // trickling bytes.
    for s in &mut slow {
        let _ = s.write_all(b"a").await;
    }
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(60)).await,
            "slowloris connection {i} still open"
        );
    }
    // Idle connections go too (no request in 75 s at most, header timeout first); then
    // /healthz answers again.
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(120)).await,
            "idle connection {i} still open"
        );
    }
    let healthz = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
}
