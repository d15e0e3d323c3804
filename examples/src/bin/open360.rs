//! `open360`: the whole of Open360 in one process (hub in-process, web, RTMP ingest, chat,
//! external API). Sign up on the site, take a stream key from the dashboard, publish, watch.
//!
//! ```text
//! cargo run --release --bin open360          # then open http://127.0.0.1:8000/
//! ffmpeg -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine \
//!     -c:v libx264 -g 60 -c:a aac -f flv rtmp://127.0.0.1:1935/live/<stream key>
//! ```
//!
//! The same services run as separate processes over a Socket.IO hub with `open360-hub`,
//! `open360-web`, `open360-ingest`, `open360-chat` and `open360-external-api`.

use clap::Parser;
use examples::{
    open360_demo::{self, Open360Listen},
    ops,
};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

/// Open360, every service in one process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the site (and its media, `/healthz`, `/metrics`) listens.
    #[arg(long, env = "OPEN360_WEB_LISTEN", default_value = "127.0.0.1:8000")]
    web_listen: SocketAddr,
    /// Where publishers connect (`rtmp://host:1935/live/<stream key>`).
    #[arg(long, env = "OPEN360_RTMP_LISTEN", default_value = "127.0.0.1:1935")]
    rtmp_listen: SocketAddr,
    /// Where the chat's Socket.IO listens.
    #[arg(long, env = "OPEN360_CHAT_LISTEN", default_value = "127.0.0.1:4002")]
    chat_listen: SocketAddr,
    /// Where the external API listens.
    #[arg(
        long,
        env = "OPEN360_EXTERNAL_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    external_listen: SocketAddr,
    /// Users, channels, VODs (`open360-web.sqlite3`) and stream media (`media/`).
    #[arg(long, env = "OPEN360_DATA_DIR", default_value = "./data/open360")]
    data_dir: PathBuf,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("open360", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let listen = Open360Listen {
        web: args.web_listen,
        rtmp: args.rtmp_listen,
        chat: args.chat_listen,
        external: args.external_listen,
    };
    let running =
        open360_demo::start(listen, &args.data_dir, ops::ops_routes(metrics), stopping).await?;
    ops::announce("web", running.web);
    ops::announce("rtmp", running.rtmp);
    ops::announce("chat", running.chat);
    ops::announce("external", running.external);
    ops::shutdown_signal().await;
    let _ = stop.send(true);
    running.stopped().await;
    tracing::info!("stopped");
    Ok(())
}
