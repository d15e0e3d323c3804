//! `rtmp-server`: the coordinator's RTMP streaming server. Publishers connect to
//! `rtmp://host:1935/<channel>/<key>`; the coordinator decides (PUBLISH-REQUEST), can kill
//! streams (STREAM-KILL), and sends encoders to play them from here.
//!
//! ```text
//! CONTROL_SECRET=change-me COORDINATOR_URL=ws://127.0.0.1:8080 cargo run --release --bin rtmp-server
//! ```

use clap::Parser;
use coordinator_core::{
    Secret,
    peers::{ANSWER_TIMEOUT, CoordinatorVerifier, Uplink, UplinkConfig},
    proto::LinkRole,
};
use examples::ops;
use media_ingest::{IngestConfig, IngestServer};
use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};
use tokio::sync::watch;

/// An RTMP streaming server run by the streaming coordinator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where publishers and encoders connect (RTMP).
    #[arg(long, env = "RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    listen: SocketAddr,
    /// The coordinator, `ws://host:port`.
    #[arg(long, env = "COORDINATOR_URL")]
    coordinator_url: String,
    /// The secret shared with the coordinator.
    #[arg(long, env = "CONTROL_SECRET", hide_env_values = true)]
    control_secret: String,
    /// The address encoders use to reach this server (`x-external-ip`); default: the address
    /// the coordinator sees.
    #[arg(long, env = "EXTERNAL_IP")]
    external_ip: Option<String>,
    /// The port encoders use (`x-custom-port`); default: the RTMP port bound.
    #[arg(long, env = "EXTERNAL_PORT")]
    external_port: Option<u16>,
    /// Health, readiness and metrics (HTTP).
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
    ops::exit_code("rtmp-server", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let (stop, shutdown) = watch::channel(false);

    let mut ingest = IngestConfig::default();
    ingest.rtmp_listen = args.listen;
    // The coordinator has 20 s to answer; the server must not give up first.
    ingest.verify_timeout = ANSWER_TIMEOUT + Duration::from_secs(5);
    let verifier = CoordinatorVerifier::new(ANSWER_TIMEOUT);
    let server = IngestServer::bind(ingest, Arc::new(verifier.clone())).await?;
    let rtmp_addr = server.local_addr();
    ops::announce("rtmp", rtmp_addr);

    // The link tells the coordinator where encoders find this server.
    let mut uplink_config =
        UplinkConfig::new(args.coordinator_url, Secret::new(args.control_secret));
    if let Some(ip) = args.external_ip {
        uplink_config.headers.push(("x-external-ip".into(), ip));
    }
    let port = args.external_port.unwrap_or(rtmp_addr.port());
    uplink_config
        .headers
        .push(("x-custom-port".into(), port.to_string()));
    let (uplink, link_events) =
        Uplink::spawn(uplink_config, LinkRole::RtmpServer, shutdown.clone());
    let ready = uplink.connected();
    tokio::spawn(verifier.serve(server.handle(), uplink, link_events, shutdown.clone()));

    let routes = ops::ops_routes(metrics).merge(ops::readiness_route(ready));
    ops::spawn_ops_server(args.ops_listen, routes, shutdown.clone()).await?;

    server
        .run(async move {
            ops::shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await?;
    Ok(())
}
