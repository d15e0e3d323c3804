//! OpenSpace's part of the demo: one rendering server (signaling, a supervisor whose
//! instances are this very binary run as test renderers, the Web GUI view) and the backend
//! with its frontend pages, all in this process but the instances.

use axum::{Router, http::header, routing::get};
use openspace_supervisor::{
    Backend, BackendConfig, ProcessLauncher, RenderingServer, SignalingConfig, SignalingServer,
    Supervisor, SupervisorConfig, TokenIssuer, signaling::Pairing, token,
};
use std::{net::SocketAddr, sync::Arc, time::SystemTime};
use tokio::sync::watch;

/// The first argument that makes the demo binary an OpenSpace instance (a test renderer).
pub const INSTANCE_ARGUMENT: &str = "openspace-instance";

/// The Web GUI's streaming view, served from the binary.
const GUI_INDEX: &str = include_str!("../../openspace-supervisor/static/gui/index.html");
const GUI_SCRIPT: &str = include_str!("../../openspace-supervisor/static/gui/stream.js");

/// Where the demo's OpenSpace is.
#[derive(Debug, Clone)]
pub struct OpenSpaceDemo {
    /// The frontend's page, where a visitor asks for a session.
    pub frontend: SocketAddr,
}

/// Why OpenSpace's part did not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenSpaceDemoError {
    /// A part of it failed to start.
    #[error("openspace: {0}")]
    OpenSpace(#[from] openspace_supervisor::Error),
    /// A socket could not be bound, or the binary not found.
    #[error("openspace: {0}")]
    Io(#[from] std::io::Error),
}

async fn serve(listener: tokio::net::TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let stopped = async move {
        let _ = stop.changed().await;
    };
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(%error, "an OpenSpace demo server failed");
    }
}

/// Starts signaling, a supervisor (instances on `api_port_base` + n), the Web GUI view and
/// the backend with its frontend on `listen`.
pub async fn start(
    listen: SocketAddr,
    api_port_base: u16,
    stopping: watch::Receiver<bool>,
) -> Result<OpenSpaceDemo, OpenSpaceDemoError> {
    let secret = format!("{:032x}", rand::random::<u128>());
    let localhost = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    let mut config = SignalingConfig::default();
    config.listen = localhost(0);
    let signaling = SignalingServer::bind(config, secret.as_bytes())
        .await?
        .with_pairing(Pairing::InstanceAndBrowser {
            browser_offset: 100,
        });
    let signaling_url = format!("ws://{}", signaling.local_addr()?);
    let mut stop = stopping.clone();
    tokio::spawn(signaling.run(async move {
        let _ = stop.changed().await;
    }));

    let demo = std::env::current_exe()?;
    let instance = format!(
        "{} {INSTANCE_ARGUMENT} --api-port {{api_port}} --webrtc-id {{webrtc_id}} --width {{width}} \
         --height {{height}} --signaling-url {{signaling_url}} --token {{token}}",
        demo.display()
    );
    let launcher = ProcessLauncher::new(&instance)
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let mut config = SupervisorConfig::default();
    config.listen = localhost(0);
    config.capacity = 2;
    config.api_port_base = api_port_base;
    config.signaling_url = signaling_url.clone();
    let instance_secret = secret.clone();
    let tokens: TokenIssuer = Arc::new(move |peer| {
        let expiry = token::unix_seconds(SystemTime::now()) + 24 * 3600;
        token::issue(instance_secret.as_bytes(), peer, expiry)
    });
    let supervisor = Supervisor::bind(config, Arc::new(launcher), tokens).await?;
    let commands = format!("ws://{}", supervisor.local_addr()?);
    let mut stop = stopping.clone();
    tokio::spawn(supervisor.run(async move {
        let _ = stop.changed().await;
    }));

    let gui = tokio::net::TcpListener::bind(localhost(0)).await?;
    let gui_url = format!("http://{}/index.html", gui.local_addr()?);
    let files = Router::new()
        .route(
            "/index.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    GUI_INDEX,
                )
            }),
        )
        .route(
            "/stream.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    GUI_SCRIPT,
                )
            }),
        );
    tokio::spawn(serve(gui, files, stopping.clone()));

    let mut server = RenderingServer::new("demo", commands, gui_url);
    server.browser_signaling_url = Some(signaling_url);
    let mut config = BackendConfig::default();
    config.listen = listen;
    config.servers = vec![server];
    config.signaling_secret = Some(secret);
    let backend = Backend::bind(config).await?;
    let frontend = backend.local_addr()?;
    let mut stop = stopping;
    tokio::spawn(backend.run(Router::new(), async move {
        let _ = stop.changed().await;
    }));
    Ok(OpenSpaceDemo { frontend })
}
