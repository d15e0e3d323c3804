//! `openspace-test-renderer`: stands in for an OpenSpace instance under the supervisor's
//! `ProcessLauncher`. It listens on its API port (the supervisor's readiness probe) and
//! answers each API WebSocket message with `{"topic": …, "type": "ack"}` (the topic `exit`
//! makes it exit with status 3, as a crash would), and ends on SIGTERM.
//!
//! ```text
//! openspace-supervisor --instance-command "openspace-test-renderer --api-port {api_port} \
//!     --webrtc-id {webrtc_id} --width {width} --height {height} \
//!     --signaling-url {signaling_url} --token {token}"
//! ```

use clap::Parser;
use examples::ops;
use futures::{SinkExt as _, StreamExt as _};
use std::{net::SocketAddr, process::ExitCode};

/// A stand-in OpenSpace instance.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The API WebSocket port.
    #[arg(long)]
    api_port: u16,
    /// Its WebRTC peer id.
    #[arg(long, default_value_t = 0)]
    webrtc_id: u32,
    /// The width it renders at.
    #[arg(long, default_value_t = 1280)]
    width: u32,
    /// The height it renders at.
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// The signaling server.
    #[arg(long, default_value = "ws://127.0.0.1:8443")]
    signaling_url: String,
    /// Its signaling token.
    #[arg(long, default_value = "")]
    token: String,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("openspace-test-renderer", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.api_port))).await?;
    ops::announce("api", listener.local_addr()?);
    tracing::info!(
        webrtc_id = args.webrtc_id,
        width = args.width,
        height = args.height,
        signaling = args.signaling_url,
        "test renderer up"
    );
    let serve = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    let topic = message
                        .to_text()
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                        .map(|v| v["topic"].clone())
                        .unwrap_or_default();
                    if topic == "exit" {
                        // A test's way to make an instance crash.
                        std::process::exit(3);
                    }
                    let ack = serde_json::json!({ "topic": topic, "type": "ack" });
                    if socket
                        .send(tokio_tungstenite::tungstenite::Message::text(
                            ack.to_string(),
                        ))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    };
    tokio::select! {
        () = serve => {}
        () = ops::shutdown_signal() => {}
    }
    Ok(())
}
