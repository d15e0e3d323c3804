//! What every binary needs to be operable: structured logs, metrics, health, graceful shutdown,
//! and an announcement of each bound address.

use axum::{Router, extract::Query, http::StatusCode, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    process::ExitCode,
    time::Duration,
};
use tokio::sync::watch;

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Starts logging to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) {
    init_tracing_with_default(format, "info");
}

/// Starts logging to stderr, filtered by `RUST_LOG` (default `default_filter`).
pub fn init_tracing_with_default(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Err means a subscriber is already installed (an embedder's, or a test's): keep it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the process-wide Prometheus recorder that the `metrics` macros of every crate
/// report to, and returns the handle that renders it.
pub fn install_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new().install_recorder()
}

/// `GET /healthz` (`ok` while the process serves) and `GET /metrics` (Prometheus text format).
pub fn ops_routes(metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(async || "ok"))
        .route("/metrics", get(async move || metrics.render()))
}

/// `GET /readyz`: 200 `ready` once `ready` holds true, else 503. With `?wait_seconds=N` (at
/// most 60) the answer waits up to N seconds for readiness, so a supervisor or a test can wait
/// for it without polling.
pub fn readiness_route(ready: watch::Receiver<bool>) -> Router {
    #[derive(serde::Deserialize)]
    struct Wait {
        wait_seconds: Option<u64>,
    }
    Router::new().route(
        "/readyz",
        get(move |Query(wait): Query<Wait>| {
            let mut ready = ready.clone();
            async move {
                let patience = Duration::from_secs(wait.wait_seconds.unwrap_or(0).min(60));
                let became = tokio::time::timeout(patience, ready.wait_for(|r| *r)).await;
                if matches!(became, Ok(Ok(_))) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }
        }),
    )
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Binds `listen`, announces it as `ops`, and serves `routes` (health, readiness, metrics) in a
/// task of its own until `shutdown` turns true.
pub async fn spawn_ops_server(
    listen: SocketAddr,
    routes: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    announce("ops", listener.local_addr()?);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, routes)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the ops server failed");
        }
    }))
}

/// A binary's exit: 0, or 1 with the error logged and printed on stderr as `<program>: <error>`.
pub fn exit_code(program: &str, result: Result<(), impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("{program}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `listening <name> <addr>` on stdout once a socket is bound. Supervisors and the test
/// harness read these lines to learn the addresses (ports may be 0, chosen by the kernel).
pub fn announce(name: &str, addr: SocketAddr) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop a server; the address is logged too.
    let _ = writeln!(stdout, "listening {name} {addr}");
    let _ = stdout.flush();
    tracing::info!(listener = name, %addr, "listening");
}
