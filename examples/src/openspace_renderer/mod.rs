//! The OpenSpace test renderer (the `openspace-test-renderer` binary, and the demo's
//! instances): stands in for an OpenSpace instance under the supervisor's
//! `ProcessLauncher`. It listens on its API port (the supervisor's readiness probe) and
//! answers each API WebSocket message with `{"topic": …, "type": "ack"}` (the topic `exit`
//! makes it exit with status 3, as a crash would), and ends on SIGTERM.
//!
//! Like a rendering instance, it registers with the signaling server as peer `--webrtc-id`
//! (retrying with a backoff while the server is unreachable) and, when a browser opens a
//! session with it, **offers** one send-only VP8 video track carrying a moving test picture
//! (ffmpeg's `testsrc2` at `--width`×`--height`, 25 fps, a keyframe every second) and
//! trickles its ICE candidates. One session at a time: a new SESSION replaces the current
//! one; SESSION_END ends it (and stops ffmpeg).
//!
//! Its only ICE candidate is a host candidate on `--udp-addr` (default `127.0.0.1:0`: enough
//! for a browser on the same machine; no STUN, no TURN). For browsers elsewhere, pass the
//! address of an interface they can reach (`--udp-addr 192.0.2.10:0`); a wildcard address
//! (`0.0.0.0:0`) gathers the machine's non-loopback interfaces but not loopback.
//!
//! ```text
//! openspace-supervisor --instance-command "openspace-test-renderer --api-port {api_port} \
//!     --webrtc-id {webrtc_id} --width {width} --height {height} \
//!     --signaling-url {signaling_url} --token {token}"
//! ```

mod session;
mod signaling;
mod video;

use crate::ops;
use clap::Parser;
use futures::{SinkExt as _, StreamExt as _};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// A stand-in OpenSpace instance.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// The API WebSocket port.
    #[arg(long)]
    pub api_port: u16,
    /// Its WebRTC peer id.
    #[arg(long, default_value_t = 0)]
    pub webrtc_id: u32,
    /// The width it renders at.
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    /// The height it renders at.
    #[arg(long, default_value_t = 720)]
    pub height: u32,
    /// The signaling server.
    #[arg(long, default_value = "ws://127.0.0.1:8443")]
    pub signaling_url: String,
    /// Its signaling token.
    #[arg(long, default_value = "")]
    pub token: String,
    /// The ffmpeg that renders the test picture (needs libvpx).
    #[arg(long, env = "FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
    /// The local UDP address of its WebRTC connections, and so of its only ICE candidate.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub udp_addr: String,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: ops::LogFormat,
}

/// Runs the renderer until SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
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
    let signaling = signaling::SignalingConfig {
        url: args.signaling_url,
        peer: args.webrtc_id,
        token: args.token,
        session: session::SessionConfig {
            picture: video::PictureConfig {
                ffmpeg: args.ffmpeg,
                width: args.width,
                height: args.height,
            },
            udp_addr: args.udp_addr,
        },
    };
    let backoff = signaling::Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let signaling = signaling::run(signaling, backoff);
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
        () = signaling => {}
        () = ops::shutdown_signal() => {}
    }
    Ok(())
}
