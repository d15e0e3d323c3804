//! `open360-ingest`: Open360's RTMP ingest on its own, joined to the hub as `ingest-api`;
//! publishers' keys are checked with `web-api`. Its media (HLS, thumbnails, VODs) is served on
//! `--media-listen` under `/media`, with `/healthz`, `/readyz` (linked to the hub) and
//! `/metrics`.
//!
//! ```text
//! cargo run --release --bin open360-ingest -- --hub-url http://127.0.0.1:4000
//! ffmpeg -re -f lavfi -i testsrc2 -f lavfi -i sine -c:v libx264 -g 50 -c:a aac \
//!     -f flv rtmp://127.0.0.1:1935/live/<stream key>
//! ```

use clap::Parser;
use examples::{open360_demo::HubArgs, ops};
use open360_protocol::{
    INGEST_LABEL, IngestService, IngestServiceConfig, ServiceClient, media_router,
};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

/// Open360's RTMP ingest.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where publishers connect.
    #[arg(long, env = "OPEN360_RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    rtmp_listen: SocketAddr,
    /// Where the media (and health, metrics) are served over HTTP.
    #[arg(long, env = "OPEN360_MEDIA_LISTEN", default_value = "0.0.0.0:8001")]
    media_listen: SocketAddr,
    #[command(flatten)]
    hub: HubArgs,
    /// Where stream media goes, as `<username>/<stream id>/`.
    #[arg(
        long,
        env = "OPEN360_MEDIA_DIR",
        default_value = "./data/open360/media"
    )]
    media_dir: PathBuf,
    /// Make no thumbnails (and need no ffmpeg).
    #[arg(long, env = "OPEN360_NO_THUMBNAILS")]
    no_thumbnails: bool,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("open360-ingest", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = IngestServiceConfig::default();
    config.rtmp.rtmp_listen = args.rtmp_listen;
    config.media_dir = args.media_dir.clone();
    if args.no_thumbnails {
        config.thumbnail = None;
    }
    let hub = ServiceClient::builder(INGEST_LABEL).start(args.hub.transport()?);
    let ready = hub.link_state();
    let ingest = IngestService::bind(config, hub).await?;
    ops::announce("rtmp", ingest.local_addr());
    let listener = tokio::net::TcpListener::bind(args.media_listen).await?;
    ops::announce("media", listener.local_addr()?);
    let routes = media_router(args.media_dir)
        .merge(ops::ops_routes(metrics))
        .merge(ops::readiness_route(ready));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let media = tokio::spawn(async move {
        let mut stopping = stopping;
        axum::serve(listener, routes)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
    });
    ingest.run(ops::shutdown_signal()).await?;
    let _ = stop.send(true);
    media.await??;
    Ok(())
}
