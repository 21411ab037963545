//! The one way the fakes run an axum server: bound to 127.0.0.1:0, on the current runtime,
//! stopped when the handle drops.

use std::net::SocketAddr;

use axum::Router;
use tokio::sync::oneshot;

/// A running server; dropping it starts a graceful shutdown.
///
/// Graceful rather than aborted so that a request in flight when the test ends still gets its
/// answer; idle keep-alive connections (the SDK pools them) are closed by hyper.
#[derive(Debug)]
pub(crate) struct Server {
    /// Where the server listens, for building URLs.
    addr: SocketAddr,
    /// Fires the shutdown signal; `Option` so `Drop` can take it.
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and serves `router` on a spawned task.
    pub(crate) async fn spawn(router: Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 should always succeed");
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            // Serving only ends on the signal (or when the runtime goes away), and an
            // accept error inside axum is retried, so the result carries nothing to act on.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Server {
            addr,
            shutdown: Some(shutdown),
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server task may already be gone with its runtime; nothing to do then.
            let _ = shutdown.send(());
        }
    }
}
