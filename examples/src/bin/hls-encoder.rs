//! `hls-encoder`: the coordinator's HLS encoder. It registers with its capacity, and for each
//! stream the coordinator assigns it pulls the stream from its streaming server and writes HLS
//! (and, when asked, a VOD and preview images) under `--root`.
//!
//! ```text
//! CONTROL_SECRET=change-me COORDINATOR_URL=ws://127.0.0.1:8080 cargo run --release --bin hls-encoder -- --root ./data
//! ```

use clap::Parser;
use coordinator_core::{
    Secret,
    peers::{Encoder, EncoderConfig, Uplink, UplinkConfig},
    proto::LinkRole,
};
use examples::ops;
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};
use tokio::sync::watch;

/// An HLS encoder run by the streaming coordinator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The coordinator, `ws://host:port`.
    #[arg(long, env = "COORDINATOR_URL")]
    coordinator_url: String,
    /// The secret shared with the coordinator.
    #[arg(long, env = "CONTROL_SECRET", hide_env_values = true)]
    control_secret: String,
    /// Where `hls/` and `img-preview/` are written (the shared file system of the original).
    #[arg(long, env = "ENCODER_ROOT", default_value = "./data")]
    root: PathBuf,
    /// Streams taken at once; 0 is unlimited.
    #[arg(long, env = "ENCODER_CAPACITY", default_value_t = 4)]
    capacity: i64,
    /// Target segment duration, in seconds.
    #[arg(long, env = "HLS_SEGMENT_SECONDS", default_value_t = 2.0)]
    segment_seconds: f64,
    /// Segments in the live playlist.
    #[arg(long, env = "HLS_LIVE_WINDOW", default_value_t = 10)]
    live_window: usize,
    /// The ffmpeg program, for scaled renditions and previews.
    #[arg(long, env = "FFMPEG", default_value = "ffmpeg")]
    ffmpeg: PathBuf,
    /// Health, readiness (registered with the coordinator) and metrics (HTTP).
    #[arg(long, env = "OPS_LISTEN", default_value = "127.0.0.1:0")]
    ops_listen: SocketAddr,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("hls-encoder", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let (stop, shutdown) = watch::channel(false);
    let mut config = EncoderConfig::new(&args.root);
    config.capacity = args.capacity;
    config.hls.target_segment_duration = Duration::try_from_secs_f64(args.segment_seconds)
        .map_err(|e| format!("--segment-seconds: {e}"))?;
    config.hls.live_window = args.live_window;
    config.ffmpeg.program = args.ffmpeg;

    let uplink_config = UplinkConfig::new(args.coordinator_url, Secret::new(args.control_secret));
    let (uplink, events) = Uplink::spawn(uplink_config, LinkRole::Encoder, shutdown.clone());
    let encoder = Encoder::new(config, uplink, events);

    let routes = ops::ops_routes(metrics).merge(ops::readiness_route(encoder.ready()));
    let serving = ops::spawn_ops_server(args.ops_listen, routes, shutdown.clone()).await?;
    let encoding = tokio::spawn(encoder.run(shutdown));
    ops::shutdown_signal().await;
    let _ = stop.send(true);
    let _ = tokio::join!(encoding, serving);
    Ok(())
}
