//! `open360-web`: Open360's web service on its own, joined to the hub as `web-api`. `/healthz`,
//! `/readyz` (linked to the hub) and `/metrics` on the same port.
//!
//! ```text
//! OPEN360_CHAT_TOKEN_SECRET=shared-with-the-chat cargo run --release --bin open360-web -- \
//!     --hub-url http://127.0.0.1:4000 --media-url http://127.0.0.1:8001/media
//! ```

use clap::Parser;
use examples::{open360_demo::HubArgs, ops};
use open360_protocol::{WebConfig, WebService, web::store::SqlWebStore};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

/// Open360's web service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the site listens.
    #[arg(long, env = "OPEN360_WEB_LISTEN", default_value = "0.0.0.0:8000")]
    listen: SocketAddr,
    #[command(flatten)]
    hub: HubArgs,
    /// The store: a `postgres://` URL, or unset for SQLite in the data directory.
    #[arg(long, env = "OPEN360_WEB_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the SQLite store lives (`open360-web.sqlite3`).
    #[arg(long, env = "OPEN360_DATA_DIR", default_value = "./data/open360")]
    data_dir: PathBuf,
    /// Where browsers fetch stream media: the ingest's `--media-listen` address plus `/media`.
    #[arg(
        long,
        env = "OPEN360_MEDIA_URL",
        default_value = "http://127.0.0.1:8001/media"
    )]
    media_url: String,
    /// Where browsers reach the chat; unset, the page's own host on `--chat-port`.
    #[arg(long, env = "OPEN360_CHAT_URL")]
    chat_url: Option<String>,
    /// The chat's port on the page's own host.
    #[arg(long, env = "OPEN360_CHAT_PORT", default_value_t = 4002)]
    chat_port: u16,
    /// The RTMP address shown on the dashboard (`rtmp://host:1935/live`).
    #[arg(long, env = "OPEN360_RTMP_URL")]
    rtmp_url: Option<String>,
    /// The secret chat tokens are signed with, shared with the chat.
    #[arg(long, env = "OPEN360_CHAT_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Mark the session cookie `Secure` (the site is behind https).
    #[arg(long, env = "OPEN360_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("open360-web", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let store = match &args.database_url {
        Some(url) => SqlWebStore::open(url).await?,
        None => {
            std::fs::create_dir_all(&args.data_dir)?;
            let file = args
                .data_dir
                .join(open360_protocol::web::store::DEFAULT_SQLITE_FILE);
            SqlWebStore::open_sqlite(&file).await?
        }
    };
    let mut config = WebConfig::default();
    config.listen = args.listen;
    config.media_url = args.media_url;
    config.chat_url = args.chat_url;
    config.chat_port = args.chat_port;
    config.rtmp_url = args.rtmp_url;
    config.chat_token_secret = args.token_secret;
    config.secure_cookies = args.secure_cookies;
    let web = WebService::bind(config, Arc::new(store), Some(args.hub.transport()?)).await?;
    ops::announce("web", web.local_addr()?);
    let ready = web
        .hub()
        .map(|hub| hub.link_state())
        .unwrap_or_else(|| tokio::sync::watch::channel(true).1);
    let routes = ops::ops_routes(metrics).merge(ops::readiness_route(ready));
    web.run(routes, ops::shutdown_signal()).await?;
    Ok(())
}
