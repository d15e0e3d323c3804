//! `openspace-signaling`: the OpenSpace WebRTC signaling server. Rendering instances and
//! browsers connect over WebSocket, REGISTER their peer id with a signaling token, pair with
//! SESSION and exchange SDP and ICE (see `openspace_supervisor::signaling`).
//!
//! ```text
//! OPENSPACE_SIGNALING_SECRET=change-me-sixteen-bytes cargo run --release --bin openspace-signaling
//! # only instance n and browser 100+n may pair; health and metrics on 127.0.0.1:9443
//! … --browser-peer-offset 100 --ops-listen 127.0.0.1:9443
//! ```

use clap::Parser;
use examples::ops;
use openspace_supervisor::{SignalingConfig, SignalingServer, signaling::Pairing};
use std::{net::SocketAddr, process::ExitCode, time::Duration};
use tokio::sync::watch;

/// The OpenSpace WebRTC signaling server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the signaling WebSocket listens (the original's port 8443).
    #[arg(
        long,
        env = "OPENSPACE_SIGNALING_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    listen: SocketAddr,
    /// The secret signaling tokens are made with (16 bytes or more), shared with the
    /// supervisor and the backend.
    #[arg(long, env = "OPENSPACE_SIGNALING_SECRET", hide_env_values = true)]
    token_secret: String,
    /// How long a SESSION waits for its partner to register (seconds).
    #[arg(
        long,
        env = "OPENSPACE_SIGNALING_PENDING_SESSION_SECONDS",
        default_value_t = 60
    )]
    pending_session_seconds: u64,
    /// The largest signaling message, in bytes.
    #[arg(long, env = "OPENSPACE_SIGNALING_MAX_MESSAGE_BYTES", default_value_t = 256 << 10)]
    max_message_bytes: usize,
    /// When set, only instance n and browser `offset + n` may open a session (the original's
    /// offset is 100). Unset: any two registered peers may.
    #[arg(long, env = "OPENSPACE_SIGNALING_BROWSER_PEER_OFFSET")]
    browser_peer_offset: Option<u32>,
    /// Health and metrics (HTTP); the signaling port serves WebSocket only.
    #[arg(
        long,
        env = "OPENSPACE_SIGNALING_OPS_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    ops_listen: SocketAddr,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("openspace-signaling", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let (stop, shutdown) = watch::channel(false);
    let mut config = SignalingConfig::default();
    config.listen = args.listen;
    config.pending_session_ttl = Duration::from_secs(args.pending_session_seconds);
    config.max_message_bytes = args.max_message_bytes;
    let mut server = SignalingServer::bind(config, args.token_secret.as_bytes()).await?;
    if let Some(browser_offset) = args.browser_peer_offset {
        server = server.with_pairing(Pairing::InstanceAndBrowser { browser_offset });
    }
    ops::announce("signaling", server.local_addr()?);
    ops::spawn_ops_server(args.ops_listen, ops::ops_routes(metrics), shutdown).await?;
    server
        .run(async move {
            ops::shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await?;
    Ok(())
}
