//! HTTP on both sides of a test: serve an axum router on `127.0.0.1:0` (a webhook receiver, a
//! page for the browser) and call servers with reqwest.

use crate::{error::Result, process::LocalServer};
use std::{sync::Once, time::Duration};

/// Serves `router` on `127.0.0.1:0` until the returned server is dropped.
pub async fn serve(router: axum::Router) -> Result<LocalServer> {
    LocalServer::spawn(|listener| async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("test HTTP server stopped: {error}");
        }
    })
    .await
}

/// An HTTP client for tests: 30 s timeout, no proxy, rustls with the ring provider installed
/// (reqwest panics without a process-wide provider; see DEPENDENCIES.md).
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap_or_else(|error| panic!("building the test HTTP client: {error}"))
}

/// Installs rustls' ring provider for the whole process, once.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another part of the process installed one first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// GETs `url` with the [`client`] and reads its body as JSON, whatever the status.
pub async fn get_json(url: &str) -> reqwest::Result<serde_json::Value> {
    client().get(url).send().await?.json().await
}

/// GETs `url` with the [`client`] and reads its body as text, whatever the status.
pub async fn get_text(url: &str) -> reqwest::Result<String> {
    client().get(url).send().await?.text().await
}
